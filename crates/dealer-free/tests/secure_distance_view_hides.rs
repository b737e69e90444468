#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
//! Any `t − 1` nodes' view is independent of the shared bits: the best linear guess a
//! coalition can make from its shares (their Lagrange combination at 0) is uniformly
//! distributed whatever the bit. Stored bits and query bits are shared by the same function
//! (`share_hash_bits`, degree `t − 1`), so this covers both. A negative control with `t`
//! nodes, who can interpolate, shows the same statistic exposing the bit.

use dealer_free::mpc::share_hash_bits;
use phr_sis::fp61::{Fp61, lagrange_at_zero};
use phr_sis::{ImageHash, NodeId};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const TRIALS: usize = 4000;
/// χ² with 31 degrees of freedom (2 × 16 bins, minus 1): p < 10^-6 beyond about 77.
const CHI2_LIMIT: f64 = 77.0;

fn node(i: u8) -> NodeId {
    NodeId::new(i).unwrap()
}

/// χ² of the low 4 bits of the coalition's combination, split by the secret bit.
fn chi2(t: u8, coalition: &[NodeId], rng: &mut ChaCha20Rng) -> f64 {
    let all: Vec<NodeId> = NodeId::first(5).collect();
    let lambdas = lagrange_at_zero(coalition).unwrap();
    let mut counts = [[0usize; 16]; 2];
    for trial in 0..TRIALS {
        let bit = trial % 2;
        let hash = ImageHash(if bit == 1 { 1 << 63 } else { 0 });
        let shares = share_hash_bits(hash, t, &all, rng).unwrap();
        // The coalition's shares of bit 0.
        let v: Fp61 = coalition
            .iter()
            .zip(&lambdas)
            .map(|(id, l)| {
                let (_, s) = shares.iter().find(|(n, _)| n == id).unwrap();
                *l * s.shares()[0]
            })
            .sum();
        counts[bit][(v.value() & 15) as usize] += 1;
    }
    let expected = (TRIALS / 2) as f64 / 16.0;
    counts
        .iter()
        .flatten()
        .map(|c| (*c as f64 - expected).powi(2) / expected)
        .sum()
}

#[test]
fn t_minus_1_nodes_learn_nothing_about_the_shared_bits() {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    // t = 3 of 5: nodes 2 and 4 together, and nodes 1 and 5.
    for coalition in [[node(2), node(4)], [node(1), node(5)]] {
        let hidden = chi2(3, &coalition, &mut rng);
        assert!(
            hidden < CHI2_LIMIT,
            "t − 1 nodes {coalition:?}: χ² = {hidden}"
        );
    }
    // Negative control: t = 3 nodes interpolate the bit.
    let exposed = chi2(3, &[node(1), node(2), node(4)], &mut rng);
    assert!(exposed > 10.0 * CHI2_LIMIT, "t nodes: χ² = {exposed}");
}
