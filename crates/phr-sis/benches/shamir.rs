//! Shamir split and combine of a 1 MiB secret at (t, n) = (3, 5) and (5, 10): this crate
//! beside the peers `blahaj` 0.7 and `vsss-rs` 6 (its byte-level `Gf256::split_bytes` /
//! `Gf256::combine_bytes`), on the same data in the same run. Throughput is bytes of *secret*
//! per second.
//!
//! - **RNG.** Split includes generating the randomness. Everyone gets the same generator,
//!   `rand_chacha::ChaCha8Rng` (the peers through a rand_core 0.10 adapter, since they are on
//!   rand 0.10); this crate is also measured with `ChaCha12Rng`, and `chacha8 fill` times the
//!   `(t − 1) · len` random bytes alone, the floor any split pays with that generator.
//! - **Combine** gets exactly `t` shares, for every library.
//! - Outputs are dropped outside the timed region, one call at a time
//!   (`BatchSize::PerIteration`), for everyone: wiping is the caller's cost at a time of its
//!   choosing, and one output at a time lets the allocator reuse memory as a steady-state
//!   caller's would.
//! - `phr-sis split_into` reuses the share buffers of the previous call. An allocating `split`
//!   takes wiped buffers that earlier shares left in `SecretBytes`'s pool: on this VM a fresh
//!   4 KiB page costs about 1.5 µs to fault in, so without the pool an allocating split of
//!   1 MiB into 10 shares would spend milliseconds in the kernel whenever the allocator has
//!   returned the memory to the system (glibc trims freed heap tops over ~2 MiB).
//!
//! Under `cargo bench` the secret is 1 MiB; when the binary runs without `--bench` (as
//! `cargo test --benches` does) it is 4 KiB. Run it on one core:
//! `taskset -c 0 cargo bench -p phr-sis --bench shamir`. The GF(2^8) kernel in use is printed
//! first.

use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use phr_sis::shamir::{ShamirShare, combine, split, split_into};
use phr_sis::{Threshold, gf256};
use rand::{RngCore, SeedableRng};
use rand_chacha::{ChaCha8Rng, ChaCha12Rng};

/// The (t, n) pairs measured.
const PARAMS: [(u8, u8); 2] = [(3, 5), (5, 10)];

fn secret_len() -> usize {
    if std::env::args().any(|a| a == "--bench") {
        1 << 20
    } else {
        4 << 10
    }
}

/// A rand 0.9 generator seen through the rand_core 0.10 traits the peers ask for.
struct Rng010<R>(R);

impl<R: RngCore> rand_core_0_10::TryRng for Rng010<R> {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.0.next_u32())
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.0.next_u64())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.fill_bytes(dst);
        Ok(())
    }
}

// ChaCha is a CSPRNG; the adapter only forwards its output.
impl<R: RngCore + rand::CryptoRng> rand_core_0_10::TryCryptoRng for Rng010<R> {}

fn threshold(t: u8, n: u8) -> Threshold {
    match Threshold::new(t, n) {
        Ok(th) => th,
        Err(e) => panic!("bench parameters: {e}"),
    }
}

fn random_secret(len: usize) -> Vec<u8> {
    let mut secret = vec![0u8; len];
    ChaCha8Rng::seed_from_u64(0x5ec7e7).fill_bytes(&mut secret);
    secret
}

fn bench_split(c: &mut Criterion) {
    let len = secret_len();
    let secret = random_secret(len);
    for (t, n) in PARAMS {
        let th = threshold(t, n);
        let mut group = c.benchmark_group(format!("split_{t}_of_{n}"));
        group.throughput(Throughput::Bytes(len as u64));
        group
            .sample_size(20)
            .warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(2));

        group.bench_function("phr-sis chacha8", |b| {
            let mut rng = ChaCha8Rng::seed_from_u64(1);
            b.iter_batched(
                || (),
                |()| split(black_box(&secret), th, &mut rng),
                BatchSize::PerIteration,
            );
        });
        group.bench_function("phr-sis chacha12", |b| {
            let mut rng = ChaCha12Rng::seed_from_u64(1);
            b.iter_batched(
                || (),
                |()| split(black_box(&secret), th, &mut rng),
                BatchSize::PerIteration,
            );
        });
        group.bench_function("phr-sis split_into chacha8", |b| {
            let mut rng = ChaCha8Rng::seed_from_u64(1);
            let mut shares = split(&secret, th, &mut rng);
            b.iter(|| split_into(black_box(&secret), t, &mut shares, &mut rng));
        });
        group.bench_function("chacha8 fill (t-1)*len", |b| {
            let mut rng = ChaCha8Rng::seed_from_u64(1);
            let mut buf = vec![0u8; usize::from(t - 1) * len];
            b.iter(|| rng.fill_bytes(black_box(&mut buf)));
        });

        // The peers take hundreds of milliseconds per call: ten flat samples.
        group.sampling_mode(SamplingMode::Flat).sample_size(10);
        group.warm_up_time(Duration::from_millis(100));
        group.bench_function("blahaj chacha8", |b| {
            let mut rng = Rng010(ChaCha8Rng::seed_from_u64(1));
            let sharks = blahaj::Sharks(t);
            b.iter_batched(
                || (),
                |()| {
                    sharks
                        .dealer_rng(black_box(&secret), &mut rng)
                        .take(usize::from(n))
                        .collect::<Vec<blahaj::Share>>()
                },
                BatchSize::PerIteration,
            );
        });
        group.bench_function("vsss-rs chacha8", |b| {
            let mut rng = Rng010(ChaCha8Rng::seed_from_u64(1));
            b.iter_batched(
                || (),
                |()| {
                    vsss_rs::Gf256::split_bytes(
                        usize::from(t),
                        usize::from(n),
                        black_box(&secret),
                        &mut rng,
                    )
                    .ok()
                },
                BatchSize::PerIteration,
            );
        });
        group.finish();
    }
}

fn bench_combine(c: &mut Criterion) {
    let len = secret_len();
    let secret = random_secret(len);
    for (t, n) in PARAMS {
        let th = threshold(t, n);
        let tu = usize::from(t);
        let ours: Vec<ShamirShare> = split(&secret, th, &mut ChaCha8Rng::seed_from_u64(2));
        let theirs_blahaj: Vec<blahaj::Share> = blahaj::Sharks(t)
            .dealer_rng(&secret, &mut Rng010(ChaCha8Rng::seed_from_u64(2)))
            .take(usize::from(n))
            .collect();
        let theirs_vsss: Vec<Vec<u8>> = match vsss_rs::Gf256::split_bytes(
            tu,
            usize::from(n),
            &secret,
            Rng010(ChaCha8Rng::seed_from_u64(2)),
        ) {
            Ok(s) => s,
            Err(e) => panic!("vsss-rs split: {e:?}"),
        };
        // Everyone reconstructs from the same positions: the last t shares.
        let (ours, theirs_blahaj, theirs_vsss) = (
            &ours[n as usize - tu..],
            &theirs_blahaj[n as usize - tu..],
            &theirs_vsss[n as usize - tu..],
        );
        assert_eq!(combine(ours, t).ok().as_deref(), Some(&secret[..]));
        assert_eq!(
            blahaj::Sharks(t).recover(theirs_blahaj).ok(),
            Some(secret.clone())
        );
        assert_eq!(
            vsss_rs::Gf256::combine_bytes(theirs_vsss).ok(),
            Some(secret.clone())
        );

        let mut group = c.benchmark_group(format!("combine_{t}_of_{n}"));
        group.throughput(Throughput::Bytes(len as u64));
        group
            .sample_size(30)
            .warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(2));
        group.bench_function("phr-sis", |b| {
            b.iter_batched(
                || (),
                |()| combine(black_box(ours), t),
                BatchSize::PerIteration,
            );
        });

        group.sampling_mode(SamplingMode::Flat).sample_size(10);
        group.warm_up_time(Duration::from_millis(100));
        group.bench_function("blahaj", |b| {
            let sharks = blahaj::Sharks(t);
            b.iter_batched(
                || (),
                |()| sharks.recover(black_box(theirs_blahaj)).ok(),
                BatchSize::PerIteration,
            );
        });
        group.bench_function("vsss-rs", |b| {
            b.iter_batched(
                || (),
                |()| vsss_rs::Gf256::combine_bytes(black_box(theirs_vsss)).ok(),
                BatchSize::PerIteration,
            );
        });
        group.finish();
    }
}

fn print_kernel(_: &mut Criterion) {
    println!("gf256 kernel: {}", gf256::kernel());
}

criterion_group!(benches, print_kernel, bench_split, bench_combine);
criterion_main!(benches);
