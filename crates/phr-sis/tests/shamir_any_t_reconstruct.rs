//! Property: any `t` of the `n` shares, in any order, reconstruct the secret; so do more than
//! `t`. For byte strings over GF(2^8) ([`phr_sis::shamir`]) and for batches over GF(2^61 − 1)
//! ([`phr_sis::fp61`]).

use phr_sis::fp61::{self, Fp61};
use phr_sis::shamir::{self, ShamirShare};
use phr_sis::{NodeId, Threshold};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// `(t, n)` with `1 <= t <= n <= max_n`.
fn threshold(max_n: u8) -> impl Strategy<Value = Threshold> {
    (1..=max_n)
        .prop_flat_map(|n| (1..=n, Just(n)))
        .prop_filter_map("valid threshold", |(t, n)| Threshold::new(t, n).ok())
}

/// `k` of the shares, chosen and ordered by `rng`.
fn pick<T: Clone>(shares: &[T], k: usize, rng: &mut ChaCha8Rng) -> Vec<T> {
    let mut v = shares.to_vec();
    v.shuffle(rng);
    v.truncate(k);
    v
}

fn check_bytes(secret: &[u8], th: Threshold, seed: u64) -> Result<(), TestCaseError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let shares = shamir::split(secret, th, &mut rng);
    prop_assert_eq!(shares.len(), usize::from(th.n()));
    let ids: Vec<u8> = shares.iter().map(|s| s.id.get()).collect();
    prop_assert_eq!(ids, (1..=th.n()).collect::<Vec<u8>>());
    let t = usize::from(th.t());
    for k in [t, (t + 1).min(shares.len()), shares.len()] {
        let subset = pick(&shares, k, &mut rng);
        let back = shamir::combine(&subset, th.t());
        prop_assert_eq!(
            back.as_deref(),
            Ok(secret),
            "{} of {} shares (ids {:?})",
            k,
            th,
            subset.iter().map(|s| s.id.get()).collect::<Vec<_>>()
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_t_of_up_to_20_shares_reconstruct(
        secret in prop::collection::vec(any::<u8>(), 0..2000),
        th in threshold(20),
        seed in any::<u64>(),
    ) {
        check_bytes(&secret, th, seed)?;
    }

    #[test]
    fn explicit_node_sets_and_reused_buffers_reconstruct(
        secret in prop::collection::vec(any::<u8>(), 0..700),
        next in prop::collection::vec(any::<u8>(), 0..700),
        ids in prop::collection::btree_set(1u8..=255, 1..12),
        t_frac in 0.0f64..1.0,
        seed in any::<u64>(),
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut nodes: Vec<NodeId> = ids.iter().filter_map(|&i| NodeId::new(i).ok()).collect();
        nodes.shuffle(&mut rng);
        let t = 1 + (t_frac * nodes.len() as f64) as u8 % nodes.len() as u8;
        let mut shares = shamir::split_for(&secret, t, &nodes, &mut rng)?;
        prop_assert_eq!(shares.iter().map(|s| s.id).collect::<Vec<_>>(), nodes.clone());
        let subset = pick(&shares, usize::from(t), &mut rng);
        let back = shamir::combine(&subset, t)?;
        prop_assert_eq!(back.as_slice(), &secret[..]);
        // The same shares, refilled with another secret of another length.
        shamir::split_into(&next, t, &mut shares, &mut rng)?;
        let subset = pick(&shares, usize::from(t), &mut rng);
        let back = shamir::combine(&subset, t)?;
        prop_assert_eq!(back.as_slice(), &next[..]);
    }

    #[test]
    fn fp61_batches_reconstruct(
        values in prop::collection::vec(any::<u64>().prop_map(Fp61::from_u64), 0..80),
        th in threshold(20),
        seed in any::<u64>(),
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let shares = fp61::split_values(&values, th, &mut rng);
        prop_assert_eq!(shares.len(), usize::from(th.n()));
        let t = usize::from(th.t());
        for k in [t, shares.len()] {
            let subset = pick(&shares, k, &mut rng);
            let views: Vec<(NodeId, &[Fp61])> =
                subset.iter().map(|(id, v)| (*id, v.as_slice())).collect();
            prop_assert_eq!(&fp61::combine_values(&views, th.t())?, &values);
            // The reusable coefficients give the same answer as a dot product.
            let ids: Vec<NodeId> = views[..t].iter().map(|&(id, _)| id).collect();
            let lambdas = fp61::lagrange_at_zero(&ids)?;
            let by_hand: Vec<Fp61> = (0..values.len())
                .map(|i| views[..t].iter().zip(&lambdas).map(|(&(_, s), &l)| l * s[i]).sum())
                .collect();
            prop_assert_eq!(&by_hand, &values);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn any_t_of_up_to_255_shares_reconstruct(
        secret in prop::collection::vec(any::<u8>(), 0..100),
        th in (200u8..=255)
            .prop_flat_map(|n| (1..=n, Just(n)))
            .prop_filter_map("valid threshold", |(t, n)| Threshold::new(t, n).ok()),
        seed in any::<u64>(),
    ) {
        check_bytes(&secret, th, seed)?;
    }
}

#[test]
fn one_mebibyte_at_the_benchmark_thresholds() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let secret: Vec<u8> = (0..(1 << 20) + 13)
        .map(|i| (i * 31 + i / 7) as u8)
        .collect();
    for (t, n) in [(3, 5), (5, 10)] {
        let Ok(th) = Threshold::new(t, n) else {
            panic!("valid threshold");
        };
        let shares: Vec<ShamirShare> = shamir::split(&secret, th, &mut rng);
        for subset in [&shares[..usize::from(t)], &shares[usize::from(n - t)..]] {
            let back = shamir::combine(subset, t);
            assert!(back.as_deref() == Ok(&secret[..]), "({t}, {n})");
        }
    }
}
