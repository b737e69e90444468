//! Property: any `t − 1` shares are uniformly distributed whatever the secret, so they say
//! nothing about it.
//!
//! Each byte position of a long secret is shared with its own independent polynomial, so one
//! split of `N` equal bytes gives `N` independent samples of the shares of that byte. For a
//! secret of all 0s and one of all 255s we bin the bytes of `t − 1` shares (one share for
//! `t = 2`, pairs of bytes of two shares for `t = 3`) and apply Pearson's chi-square test for
//! uniformity and a two-sample chi-square test of the two secrets against each other. The
//! bound is the mean plus 6 standard deviations of the chi-square distribution (a false alarm
//! is about a one-in-a-billion event), and the RNG is seeded, so the test is deterministic. The
//! negative controls show the same test rejecting splitters that leak: a generator that
//! returns zeros (so every share is a fixed function of the secret) and one whose bytes never
//! have the top bit set (a subtler bias).

use phr_sis::shamir::{self, ShamirShare};
use phr_sis::{NodeId, Threshold};
use rand::{CryptoRng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Independent samples per test.
const SAMPLES: usize = 1 << 20;

/// How many standard deviations `stat` lies above the mean of chi-square with `df` degrees of
/// freedom (mean `df`, variance `2 df`). Passing means below [`Z_BOUND`].
fn z_score(stat: f64, df: usize) -> f64 {
    let df = df as f64;
    (stat - df) / (2.0 * df).sqrt()
}

/// Six standard deviations: a false alarm is about a one-in-a-billion event.
const Z_BOUND: f64 = 6.0;

/// Pearson's statistic for uniformity over `counts.len()` bins.
fn chi_square_uniform(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    let expected = total as f64 / counts.len() as f64;
    counts
        .iter()
        .map(|&o| (o as f64 - expected).powi(2) / expected)
        .sum()
}

/// The two-sample statistic (equal sample sizes): `Σ (a − b)² / (a + b)`.
fn chi_square_two_sample(a: &[u64], b: &[u64]) -> f64 {
    a.iter()
        .zip(b)
        .filter(|&(&x, &y)| x + y > 0)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2) / (x + y) as f64)
        .sum()
}

/// Bins the bytes of the shares of `nodes` (1 or 2 of them) into 256 or 65536 bins.
fn histogram(shares: &[ShamirShare], nodes: &[u8]) -> Vec<u64> {
    let data: Vec<&[u8]> = nodes
        .iter()
        .map(|&id| {
            let Some(s) = shares.iter().find(|s| s.id.get() == id) else {
                panic!("no share for node {id}");
            };
            &s.data[..]
        })
        .collect();
    let mut counts = vec![0u64; 1 << (8 * nodes.len())];
    for i in 0..SAMPLES {
        let bin = data
            .iter()
            .fold(0usize, |acc, d| acc << 8 | usize::from(d[i]));
        counts[bin] += 1;
    }
    counts
}

fn split_constant<R: CryptoRng + RngCore>(byte: u8, t: u8, n: u8, rng: &mut R) -> Vec<ShamirShare> {
    let Ok(th) = Threshold::new(t, n) else {
        panic!("valid threshold");
    };
    shamir::split(&vec![byte; SAMPLES], th, rng)
}

/// The worst z-score over the given (t − 1)-sets of nodes and the two secrets (uniformity of
/// each, and the two against each other).
fn worst_statistic<R: CryptoRng + RngCore>(t: u8, n: u8, node_sets: &[&[u8]], rng: &mut R) -> f64 {
    let zeros = split_constant(0, t, n, rng);
    let ones = split_constant(255, t, n, rng);
    let mut worst = f64::NEG_INFINITY;
    for nodes in node_sets {
        let a = histogram(&zeros, nodes);
        let b = histogram(&ones, nodes);
        let df = a.len() - 1;
        for stat in [
            chi_square_uniform(&a),
            chi_square_uniform(&b),
            chi_square_two_sample(&a, &b),
        ] {
            worst = worst.max(z_score(stat, df));
        }
    }
    worst
}

/// One share (t = 2): the drawn share (node 1) and interpolated ones (nodes 2, 3).
const T2_SETS: &[&[u8]] = &[&[1], &[2], &[3]];
/// Pairs of shares (t = 3): drawn, mixed and interpolated pairs.
const T3_SETS: &[&[u8]] = &[&[1, 2], &[1, 4], &[3, 4]];

#[test]
fn one_share_of_a_2_of_3_sharing_is_uniform() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed_0002);
    let worst = worst_statistic(2, 3, T2_SETS, &mut rng);
    eprintln!("t = 2: worst chi-square z-score {worst:.2}");
    assert!(worst < Z_BOUND, "chi-square z-score {worst:.2}");
}

#[test]
fn two_shares_of_a_3_of_4_sharing_are_jointly_uniform() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed_0003);
    let worst = worst_statistic(3, 4, T3_SETS, &mut rng);
    eprintln!("t = 3: worst chi-square z-score {worst:.2}");
    assert!(worst < Z_BOUND, "chi-square z-score {worst:.2}");
}

/// A "generator" that returns zeros: the random coefficients vanish and shares equal the
/// secret. Marked `CryptoRng` only to exercise the test's power.
struct Zeros;

impl RngCore for Zeros {
    fn next_u32(&mut self) -> u32 {
        0
    }
    fn next_u64(&mut self) -> u64 {
        0
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        dst.fill(0);
    }
}

impl CryptoRng for Zeros {}

/// ChaCha with the top bit of every byte cleared: half the values never occur.
struct TopBitCleared(ChaCha8Rng);

impl RngCore for TopBitCleared {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32() & 0x7f7f_7f7f
    }
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64() & 0x7f7f_7f7f_7f7f_7f7f
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        self.0.fill_bytes(dst);
        for b in dst {
            *b &= 0x7f;
        }
    }
}

impl CryptoRng for TopBitCleared {}

#[test]
fn negative_control_the_test_rejects_zero_coefficients() {
    let worst = worst_statistic(2, 3, T2_SETS, &mut Zeros);
    assert!(
        worst > 100.0 * Z_BOUND,
        "a leaking splitter passed: z = {worst:.2}"
    );
    let worst = worst_statistic(3, 4, T3_SETS, &mut Zeros);
    assert!(
        worst > 100.0 * Z_BOUND,
        "a leaking splitter passed: z = {worst:.2}"
    );
}

#[test]
fn negative_control_the_test_rejects_a_biased_generator() {
    let mut rng = TopBitCleared(ChaCha8Rng::seed_from_u64(9));
    let worst = worst_statistic(2, 3, T2_SETS, &mut rng);
    assert!(worst > Z_BOUND, "a biased splitter passed: z = {worst:.2}");
    let worst = worst_statistic(3, 4, T3_SETS, &mut rng);
    assert!(worst > Z_BOUND, "a biased splitter passed: z = {worst:.2}");
}

#[test]
fn explicit_node_sets_hide_too() {
    // Interpolated shares at large x (split_for with arbitrary ids).
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed_0004);
    let nodes: Vec<NodeId> = [200u8, 7, 255]
        .iter()
        .filter_map(|&i| NodeId::new(i).ok())
        .collect();
    let mut hist = Vec::new();
    for byte in [0u8, 255] {
        let shares = match shamir::split_for(&vec![byte; SAMPLES], 2, &nodes, &mut rng) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        hist.push(histogram(&shares, &[255]));
    }
    for stat in [
        chi_square_uniform(&hist[0]),
        chi_square_uniform(&hist[1]),
        chi_square_two_sample(&hist[0], &hist[1]),
    ] {
        assert!(
            z_score(stat, 255) < Z_BOUND,
            "chi-square {stat:.1} over 255 df"
        );
    }
}
