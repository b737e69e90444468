//! Benchmarks of the share store (`phr_sis::store`): durable puts and integrity-checked reads
//! of share-sized records.
//!
//! Records are a 100 KB or 300 KB share, 8 KB of bit shares and 64 bytes of metadata. A put is
//! one fsync'd, two-phase write transaction; a read checks the HMAC of every part it returns.
//! Before Criterion's means it prints, per record size, stores/s and MB/s over a run of puts
//! and reads/s of whole images and of bit shares alone. Under `cargo bench` a run is 200 puts;
//! without `--bench` (as `cargo test --benches` runs it) 10. `STORE_BENCH_PUTS=n` overrides.
//! The numbers depend on the disk's fsync latency. Run it on one core, e.g.
//! `taskset -c 0 cargo bench -p phr-sis --bench store`.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use phr_sis::ImageId;
use phr_sis::store::{ImageRecord, MacKey, ShareStore, StoreError};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Bit-share bytes per record.
const BIT_SHARES_LEN: usize = 8 * 1024;
/// Metadata bytes per record.
const META_LEN: usize = 64;
/// Share sizes benchmarked.
const SHARE_LENS: [usize; 2] = [100_000, 300_000];

fn puts_to_run() -> u64 {
    if let Some(n) = std::env::var("STORE_BENCH_PUTS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return n;
    }
    if std::env::args().any(|a| a == "--bench") {
        200
    } else {
        10
    }
}

fn record(share_len: usize, seed: u64) -> ImageRecord {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut r = ImageRecord {
        share: vec![0; share_len],
        bit_shares: vec![0; BIT_SHARES_LEN],
        meta: vec![0; META_LEN],
    };
    rng.fill_bytes(&mut r.share);
    rng.fill_bytes(&mut r.bit_shares);
    rng.fill_bytes(&mut r.meta);
    r
}

fn record_bytes(r: &ImageRecord) -> u64 {
    (r.share.len() + r.bit_shares.len() + r.meta.len()) as u64
}

fn open(dir: &Path) -> Result<ShareStore, StoreError> {
    ShareStore::open(
        dir.join("bench.redb"),
        MacKey::generate(&mut ChaCha8Rng::seed_from_u64(1)),
    )
}

/// Stores `puts` images and reads them back, printing rates.
fn report(share_len: usize, puts: u64) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path())?;
    let rec = record(share_len, 7);
    let bytes = record_bytes(&rec);

    // Warm-up: the first puts also grow a new file.
    for i in 0..puts / 10 {
        store.put_image(ImageId(u64::MAX - i), &rec)?;
    }
    let start = Instant::now();
    for i in 0..puts {
        store.put_image(ImageId(i), &rec)?;
    }
    let put_s = start.elapsed().as_secs_f64();

    // The first pass reads pages redb has not cached yet; the second is the repeat read.
    let start = Instant::now();
    for i in 0..puts {
        black_box(store.get_image(ImageId(i))?.ok_or("missing")?);
    }
    let first_get_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    for i in 0..puts {
        black_box(store.get_image(ImageId(i))?.ok_or("missing")?);
    }
    let get_s = start.elapsed().as_secs_f64();

    let start = Instant::now();
    for i in 0..puts {
        black_box(store.get_bit_shares(ImageId(i))?.ok_or("missing")?);
    }
    let bits_s = start.elapsed().as_secs_f64();

    let n = puts as f64;
    println!(
        "store {}KB share + 8KB bit shares: {:.1} stores/s, {:.1} MB/s stored; \
         get_image {:.0} reads/s first, {:.0} reads/s ({:.0} MB/s) repeated; \
         get_bit_shares {:.0} reads/s ({puts} images)",
        share_len / 1000,
        n / put_s,
        n * bytes as f64 / put_s / 1e6,
        n / first_get_s,
        n / get_s,
        n * bytes as f64 / get_s / 1e6,
        n / bits_s,
    );
    Ok(())
}

fn bench_put(c: &mut Criterion, dir: &Path) -> Result<(), StoreError> {
    let store = open(dir)?;
    let mut group = c.benchmark_group("store_put");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    let mut next = 0u64;
    for share_len in SHARE_LENS {
        let rec = record(share_len, share_len as u64);
        group.throughput(Throughput::Bytes(record_bytes(&rec)));
        group.bench_function(format!("{}KB_share", share_len / 1000), |b| {
            b.iter(|| {
                next += 1;
                let result = store.put_image(ImageId(next), black_box(&rec));
                assert!(result.is_ok(), "{result:?}");
            })
        });
    }
    group.finish();
    Ok(())
}

fn bench_get(c: &mut Criterion, dir: &Path) -> Result<(), StoreError> {
    const STORED: u64 = 100;
    let store = open(dir)?;
    let mut group = c.benchmark_group("store_get");
    for share_len in SHARE_LENS {
        let rec = record(share_len, share_len as u64);
        let base = (share_len as u64) << 32;
        for i in 0..STORED {
            store.put_image(ImageId(base + i), &rec)?;
        }
        let label = format!("{}KB_share", share_len / 1000);

        group.throughput(Throughput::Bytes(record_bytes(&rec)));
        let mut next = 0u64;
        group.bench_function(format!("get_image/{label}"), |b| {
            b.iter(|| {
                next = (next + 1) % STORED;
                let got = store.get_image(ImageId(base + next));
                assert!(matches!(got, Ok(Some(_))), "{got:?}");
                black_box(got)
            })
        });

        group.throughput(Throughput::Bytes(BIT_SHARES_LEN as u64));
        group.bench_function(format!("get_bit_shares/{label}"), |b| {
            b.iter(|| {
                next = (next + 1) % STORED;
                let got = store.get_bit_shares(ImageId(base + next));
                assert!(matches!(got, Ok(Some(_))), "{got:?}");
                black_box(got)
            })
        });
    }
    group.finish();
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let puts = puts_to_run();
    for share_len in SHARE_LENS {
        report(share_len, puts)?;
    }
    let mut criterion = Criterion::default().configure_from_args();
    let put_dir = tempfile::tempdir()?;
    bench_put(&mut criterion, put_dir.path())?;
    drop(put_dir);
    let get_dir = tempfile::tempdir()?;
    bench_get(&mut criterion, get_dir.path())?;
    criterion.final_summary();
    Ok(())
}
