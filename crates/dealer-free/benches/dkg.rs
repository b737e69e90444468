//! The whole distributed key generation, every node in one process on one thread, for
//! n = 5, 16, 32, 64 with t = ⌊n/2⌋ + 1: this crate's GJKR DKG ([`local::run_with_keys`],
//! all four rounds, signing, encryption and every check included) beside
//! `frost-ristretto255` 3's Pedersen DKG (`dkg::part1`, `part2`, `part3` for every
//! participant), in the same criterion group.
//!
//! - **Work compared.** Both produce every node's key share, the group key and every
//!   node's verification share. Ours also signs every broadcast and encrypts every private
//!   share (FROST leaves authenticated, confidential channels to the caller), has a complaint
//!   round and proves each verification share; FROST has each dealer prove knowledge of its
//!   secret and publishes Feldman commitments of `t` points to everyone.
//! - **RNG.** Both draw from `rand_chacha::ChaCha20Rng` (FROST through a rand_core 0.6
//!   adapter). The long-term node keys are generated once, outside the timed region (FROST
//!   has none).
//! - **Bytes.** Before the measurements a table of bytes on the wire is printed to stderr,
//!   counted the same way for both: ours as the driver counts them (a broadcast once per
//!   recipient); FROST's round-1 package serialized once for each of the `n − 1` other
//!   participants plus every round-2 package serialized once (each has one recipient).
//!
//! Under `cargo bench` all four sizes run; when the binary runs without `--bench` (as
//! `cargo test --benches` does) only n = 5. For n = 64 one iteration takes seconds:
//! `cargo bench -p dealer-free --bench dkg -- --warm-up-time 1 --measurement-time 5
//! --sample-size 10`.
#![allow(clippy::expect_used)] // bench code: a failed expect is a failed benchmark

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, SamplingMode};
use dealer_free::dkg::local;
use dealer_free::identity::NodeKeys;
use frost_ristretto255 as frost;
use frost_ristretto255::Identifier;
use frost_ristretto255::keys::dkg::{part1, part2, part3, round1, round2};
use phr_sis::{NodeId, Threshold};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// A rand 0.9 generator seen through the rand_core 0.6 traits FROST asks for.
struct Rng06<R>(R);

impl<R: RngCore> frost::rand_core::RngCore for Rng06<R> {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }

    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), frost::rand_core::Error> {
        self.0.fill_bytes(dest);
        Ok(())
    }
}

impl<R: RngCore + rand::CryptoRng> frost::rand_core::CryptoRng for Rng06<R> {}

fn sizes() -> &'static [u16] {
    if std::env::args().any(|a| a == "--bench") {
        &[5, 16, 32, 64]
    } else {
        &[5]
    }
}

fn threshold_for(n: u16) -> (u16, u16) {
    (n / 2 + 1, n)
}

/// Runs FROST's DKG for every participant; returns the bytes on the wire.
fn frost_dkg(t: u16, n: u16, rng: &mut Rng06<ChaCha20Rng>) -> usize {
    let ids: Vec<Identifier> = (1..=n)
        .map(|i| Identifier::try_from(i).expect("identifiers 1..=n are valid"))
        .collect();
    let mut bytes = 0;
    let mut secrets1 = BTreeMap::new();
    let mut packages1: BTreeMap<Identifier, round1::Package> = BTreeMap::new();
    for id in &ids {
        let (secret, package) = part1(*id, n, t, &mut *rng).expect("part1");
        bytes += package.serialize().expect("round 1 serializes").len() * usize::from(n - 1);
        secrets1.insert(*id, secret);
        packages1.insert(*id, package);
    }
    let mut secrets2 = BTreeMap::new();
    let mut inbox2: BTreeMap<Identifier, BTreeMap<Identifier, round2::Package>> = BTreeMap::new();
    for (id, secret) in secrets1 {
        let received: BTreeMap<Identifier, round1::Package> = packages1
            .iter()
            .filter(|(from, _)| **from != id)
            .map(|(from, p)| (*from, p.clone()))
            .collect();
        let (secret2, outgoing) = part2(secret, &received).expect("part2");
        for (to, package) in outgoing {
            bytes += package.serialize().expect("round 2 serializes").len();
            inbox2.entry(to).or_default().insert(id, package);
        }
        secrets2.insert(id, (secret2, received));
    }
    for (id, (secret2, received1)) in &secrets2 {
        let received2 = &inbox2[id];
        black_box(part3(secret2, received1, received2).expect("part3"));
    }
    bytes
}

fn ours(threshold: Threshold, keys: &BTreeMap<NodeId, NodeKeys>, rng: &mut ChaCha20Rng) -> usize {
    let run = local::run_with_keys(
        threshold,
        b"dkg bench",
        keys.clone(),
        &BTreeMap::new(),
        rng,
        &mut || Duration::ZERO,
    )
    .expect("valid parameters");
    assert!(run.outcomes.values().all(Result::is_ok), "honest run fails");
    run.bytes()
}

fn print_bytes() {
    eprintln!("bytes on the wire, whole DKG (all nodes)");
    eprintln!(
        "{:>4} {:>4} {:>14} {:>14} {:>11}",
        "n", "t", "dealer-free", "frost", "ours/frost"
    );
    for &n in sizes() {
        let (t, n) = threshold_for(n);
        let threshold = threshold_of(t, n);
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let keys = local::generate_keys(threshold.n(), &mut rng);
        let ours = ours(threshold, &keys, &mut rng);
        let frost = frost_dkg(t, n, &mut Rng06(ChaCha20Rng::seed_from_u64(1)));
        eprintln!(
            "{n:>4} {t:>4} {ours:>14} {frost:>14} {:>10.2}×",
            ours as f64 / frost as f64
        );
    }
}

fn threshold_of(t: u16, n: u16) -> Threshold {
    Threshold::from_usize(usize::from(t), usize::from(n)).expect("t <= n <= 255")
}

fn bench_dkg(c: &mut Criterion) {
    let mut group = c.benchmark_group("dkg");
    group.sampling_mode(SamplingMode::Flat);
    for &n in sizes() {
        let (t, n) = threshold_for(n);
        let threshold = threshold_of(t, n);
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let keys = local::generate_keys(threshold.n(), &mut rng);
        group.bench_function(format!("dealer-free/n={n},t={t}"), |b| {
            b.iter(|| ours(threshold, &keys, &mut rng));
        });
        let mut frost_rng = Rng06(ChaCha20Rng::seed_from_u64(2));
        group.bench_function(format!("frost-ristretto255/n={n},t={t}"), |b| {
            b.iter(|| frost_dkg(t, n, &mut frost_rng));
        });
    }
    group.finish();
}

fn main() {
    print_bytes();
    let mut c = Criterion::default().configure_from_args();
    bench_dkg(&mut c);
    c.final_summary();
}
