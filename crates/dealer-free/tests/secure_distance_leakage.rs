#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
//! The re-randomisation is what keeps a malicious querier from reading stored bits.
//!
//! The attack (`docs/design.md#secure-ranking`): the querier sends, for one bit `k`, the query
//! sharing `y_k(x) = x` (its value at 0 is 0, so the query "bit" is 0) and, in a second query, the
//! all-zero sharing. Unmasked, the difference of the linear coefficients of the two opened
//! distance polynomials is `1 − 2·s_k`: the stored bit. The test runs the attack on every bit
//! against a deliberately naive variant (no masks), which must reveal all 64 bits, and against
//! the protocol, whose differences must look like random field elements (never ±1).

use std::collections::BTreeMap;

use dealer_free::mpc::masks::{MaskPool, deal_zero_sharings, masked_distance_shares};
use dealer_free::mpc::{HASH_BITS, HashBitShares, distance_share, share_hash_bits};
use phr_sis::fp61::{Fp61, lagrange_at_zero};
use phr_sis::{ImageHash, NodeId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// t = 2, servers 1, 2, 3: distance polynomials of degree 2 through the three points.
fn coefficients(y: [Fp61; 3]) -> (Fp61, Fp61, Fp61) {
    let half = Fp61::from(2u8).inv();
    let (d1, d2) = (y[1] - y[0], y[2] - y[1]);
    let c2 = (d2 - d1) * half;
    let c1 = d1 - Fp61::from(3u8) * c2;
    let c0 = y[0] - c1 - c2;
    (c0, c1, c2)
}

/// The querier's sharing for the attack on bit `k`: `y_k(x) = x` if `probe`, else 0.
fn probe_query(servers: &[NodeId], k: usize, probe: bool) -> Vec<HashBitShares> {
    servers
        .iter()
        .map(|j| {
            let mut shares = [Fp61::ZERO; HASH_BITS];
            if probe {
                shares[k] = Fp61::from(*j);
            }
            HashBitShares::from_shares(shares)
        })
        .collect()
}

/// What the querier receives from servers 1, 2, 3 for one candidate.
fn answers(
    stored: &[HashBitShares],
    query: &[HashBitShares],
    pools: Option<&mut [MaskPool]>,
) -> [Fp61; 3] {
    let mut out = [Fp61::ZERO; 3];
    match pools {
        None => {
            for (o, (s, q)) in out.iter_mut().zip(stored.iter().zip(query)) {
                *o = distance_share(s, q);
            }
        }
        Some(pools) => {
            for ((o, (s, q)), pool) in out.iter_mut().zip(stored.iter().zip(query)).zip(pools) {
                *o = masked_distance_shares(&[s], q, pool).unwrap()[0];
            }
        }
    }
    out
}

fn pools(servers: &[NodeId], count: usize, rng: &mut ChaCha20Rng) -> Vec<MaskPool> {
    let deals: Vec<BTreeMap<NodeId, Vec<Fp61>>> = servers
        .iter()
        .map(|_| deal_zero_sharings(servers, 2, count, rng))
        .collect();
    servers
        .iter()
        .map(|j| {
            let mine: Vec<&[Fp61]> = deals.iter().map(|d| d[j].as_slice()).collect();
            MaskPool::from_deals(&mine).unwrap()
        })
        .collect()
}

/// Every server's shares of `hash` for t = 2.
fn stored_shares(hash: ImageHash, servers: &[NodeId], rng: &mut ChaCha20Rng) -> Vec<HashBitShares> {
    share_hash_bits(hash, 2, servers, rng)
        .unwrap()
        .into_iter()
        .map(|(_, s)| s)
        .collect()
}

fn stored_bit(hash: ImageHash, k: usize) -> bool {
    (hash.0 >> (63 - k)) & 1 == 1
}

#[test]
fn naive_unmasked_distances_leak_every_stored_bit() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let servers: Vec<NodeId> = NodeId::first(3).collect();
    let hash = ImageHash(rng.random());
    let stored = stored_shares(hash, &servers, &mut rng);
    for k in 0..HASH_BITS {
        let a = coefficients(answers(&stored, &probe_query(&servers, k, true), None));
        let b = coefficients(answers(&stored, &probe_query(&servers, k, false), None));
        let diff = a.1 - b.1;
        // diff = 1 − 2·s_k.
        let recovered = diff == -Fp61::ONE;
        assert!(diff == Fp61::ONE || diff == -Fp61::ONE);
        assert_eq!(recovered, stored_bit(hash, k), "bit {k}");
        // The opened distances themselves are right (query bits are all 0).
        assert_eq!(a.0, Fp61::from(hash.0.count_ones()));
    }
}

#[test]
fn masked_distances_reveal_only_the_distance() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let servers: Vec<NodeId> = NodeId::first(3).collect();
    let hash = ImageHash(rng.random());
    let stored = stored_shares(hash, &servers, &mut rng);
    let mut pools = pools(&servers, 2 * HASH_BITS, &mut rng);
    let lambdas = lagrange_at_zero(&servers).unwrap();
    for k in 0..HASH_BITS {
        let ya = answers(&stored, &probe_query(&servers, k, true), Some(&mut pools));
        let yb = answers(&stored, &probe_query(&servers, k, false), Some(&mut pools));
        let (a, b) = (coefficients(ya), coefficients(yb));
        let diff = a.1 - b.1;
        assert!(
            diff != Fp61::ONE && diff != -Fp61::ONE,
            "bit {k}: the masked difference still reveals the stored bit"
        );
        // The distance opens correctly through the masks.
        let opened: Fp61 = lambdas.iter().zip(&ya).map(|(l, y)| *l * *y).sum();
        assert_eq!(opened, Fp61::from(hash.0.count_ones()));
        assert_eq!(a.0, opened);
    }
    assert!(pools.iter().all(MaskPool::is_empty));
}
