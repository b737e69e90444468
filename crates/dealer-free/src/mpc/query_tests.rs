use super::*;
use crate::mpc::masks::deal_zero_sharings;
use phr_sis::ImageHash;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

fn scope() -> QueryScope {
    QueryScope::new([0; 32], 0, &[])
}

fn servers(m: u8) -> Vec<NodeId> {
    NodeId::first(m).collect()
}

/// Every server's check of `openings`, with masks of one dealer's zero-sharings.
fn checks_of(
    commitment: &QueryCommitment,
    openings: &[(NodeId, QueryOpening)],
    t: u8,
    rng: &mut ChaCha20Rng,
) -> Vec<QueryCheck> {
    let ids: Vec<NodeId> = openings.iter().map(|(id, _)| *id).collect();
    let masks = deal_zero_sharings(&ids, 2 * usize::from(t) - 2, CHECK_MASKS, rng);
    openings
        .iter()
        .map(|(id, o)| o.check(*id, commitment, masks[id].clone()).unwrap())
        .collect()
}

#[test]
fn an_honest_query_passes_at_every_size() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    for (t, m) in [(1u8, 1u8), (2, 3), (2, 4), (3, 5), (3, 6), (3, 7), (4, 9)] {
        for _ in 0..5 {
            let (c, o) = share_query(
                rng.random(),
                scope(),
                ImageHash(rng.random()),
                t,
                &servers(m),
                &mut rng,
            )
            .unwrap();
            let checks = checks_of(&c, &o, t, &mut rng);
            assert_eq!(judge_query(&c, &checks, t), Ok(()), "({t}, {m})");
            assert!(audit_checks(&c, &o, &checks).is_empty());
        }
    }
}

/// Openings of arbitrary per-server values.
fn openings_of(
    values: Vec<(NodeId, [Fp61; HASH_BITS])>,
    t: u8,
    rng: &mut ChaCha20Rng,
) -> (QueryCommitment, Vec<(NodeId, QueryOpening)>) {
    let ids: Vec<NodeId> = values.iter().map(|(id, _)| *id).collect();
    let blinding = split_values_for(&[Fp61::random(rng), Fp61::random(rng)], t, &ids, rng).unwrap();
    let parts = values
        .into_iter()
        .zip(blinding)
        .map(|((id, v), (_, b))| (id, HashBitShares(v), [b[0], b[1]]))
        .collect();
    commit_openings([9; 32], scope(), parts, rng).unwrap()
}

#[test]
fn shares_of_non_bits_are_refused() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    for (t, m) in [(2u8, 3u8), (3, 5), (3, 7)] {
        // The attack of the module docs: y_k = (1 − 2^k)/2, a proper sharing of degree t − 1.
        let half = Fp61::from(2u8).inv();
        let mut values = [half; HASH_BITS];
        for (k, v) in values.iter_mut().enumerate().take(60) {
            *v = (Fp61::ONE - Fp61::from_u64(1 << k)) * half;
        }
        let shared = split_values_for(&values, t, &servers(m), &mut rng).unwrap();
        let (c, o) = openings_of(
            shared
                .into_iter()
                .map(|(id, v)| (id, v.try_into().unwrap()))
                .collect(),
            t,
            &mut rng,
        );
        let checks = checks_of(&c, &o, t, &mut rng);
        assert!(
            matches!(judge_query(&c, &checks, t), Err(QueryRejection::NotBits { off }) if off.is_empty()),
            "({t}, {m})"
        );
        // A single 2 among bits is refused too.
        let mut values = [Fp61::ZERO; HASH_BITS];
        values[17] = Fp61::from(2u8);
        let shared = split_values_for(&values, t, &servers(m), &mut rng).unwrap();
        let (c, o) = openings_of(
            shared
                .into_iter()
                .map(|(id, v)| (id, v.try_into().unwrap()))
                .collect(),
            t,
            &mut rng,
        );
        let checks = checks_of(&c, &o, t, &mut rng);
        assert!(matches!(
            judge_query(&c, &checks, t),
            Err(QueryRejection::NotBits { .. })
        ));
    }
}

#[test]
fn bits_off_one_polynomial_are_refused() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    for (t, m) in [(2u8, 3u8), (3, 5), (3, 6)] {
        // Every point a bit, but the points of no polynomial of degree t − 1: the bit test
        // alone would pass, the degree test does not.
        let values: Vec<(NodeId, [Fp61; HASH_BITS])> = servers(m)
            .into_iter()
            .map(|id| {
                let mut v = [Fp61::ZERO; HASH_BITS];
                for x in &mut v {
                    *x = Fp61::from(rng.random::<bool>());
                }
                (id, v)
            })
            .collect();
        let (c, o) = openings_of(values, t, &mut rng);
        let checks = checks_of(&c, &o, t, &mut rng);
        assert!(
            matches!(
                judge_query(&c, &checks, t),
                Err(QueryRejection::NotOneSharing { .. })
            ),
            "({t}, {m})"
        );
    }
}

#[test]
fn a_lying_server_is_named_by_the_querier_and_the_query_refused() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let (c, o) = share_query([1; 32], scope(), ImageHash(99), 3, &servers(7), &mut rng).unwrap();
    let mut all = checks_of(&c, &o, 3, &mut rng);
    all[2].degree[1] += Fp61::ONE;
    assert_eq!(
        judge_query(&c, &all, 3),
        Err(QueryRejection::NotOneSharing {
            off: vec![NodeId::first(3).last().unwrap()]
        })
    );
    assert_eq!(audit_checks(&c, &o, &all), vec![all[2].server]);
    // A wrong bit value: decoded past with 7 servers, named.
    let mut all = checks_of(&c, &o, 3, &mut rng);
    all[4].bits[0] += Fp61::ONE;
    assert_eq!(
        judge_query(&c, &all, 3),
        Err(QueryRejection::NotBits {
            off: vec![all[4].server]
        })
    );
}

#[test]
fn checks_must_be_complete_and_of_this_commitment() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let (c, o) = share_query([1; 32], scope(), ImageHash(5), 2, &servers(3), &mut rng).unwrap();
    let all = checks_of(&c, &o, 2, &mut rng);
    assert_eq!(
        judge_query(&c, &all[..2], 2),
        Err(QueryRejection::MissingChecks(vec![all[2].server]))
    );
    let mut twice = all.clone();
    twice.push(all[0]);
    assert_eq!(
        judge_query(&c, &twice, 2),
        Err(QueryRejection::ForeignCheck(all[0].server))
    );
    // Another commitment (the querier showed this server other shares): refused.
    let (c2, o2) = share_query([1; 32], scope(), ImageHash(5), 2, &servers(3), &mut rng).unwrap();
    let mut mixed = all;
    mixed[1] = checks_of(&c2, &o2, 2, &mut rng)[1];
    assert_eq!(
        judge_query(&c, &mixed, 2),
        Err(QueryRejection::ForeignCheck(mixed[1].server))
    );
}

#[test]
fn an_opening_must_match_its_digest() {
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let (c, o) = share_query([1; 32], scope(), ImageHash(5), 2, &servers(3), &mut rng).unwrap();
    let masks = vec![Fp61::ZERO; CHECK_MASKS];
    let (id, opening) = &o[0];
    assert!(opening.check(*id, &c, masks.clone()).is_ok());
    // Node 2's opening presented as node 1's, a changed share, too few masks.
    assert!(o[1].1.check(*id, &c, masks.clone()).is_err());
    let mut changed = opening.clone();
    changed.shares.0[3] += Fp61::ONE;
    assert!(changed.check(*id, &c, masks.clone()).is_err());
    assert!(opening.check(*id, &c, vec![Fp61::ZERO]).is_err());
    let stranger = NodeId::first(9).last().unwrap();
    assert!(opening.check(stranger, &c, masks).is_err());
}

#[test]
fn signed_checks_round_trip_and_verify() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let (c, o) = share_query([1; 32], scope(), ImageHash(5), 2, &servers(3), &mut rng).unwrap();
    let check = checks_of(&c, &o, 2, &mut rng)[0];
    let keys = NodeKeys::generate(NodeId::first(1).last().unwrap(), &mut rng);
    let signed = check.sign(&keys, &mut rng);
    let bytes = signed.to_bytes();
    assert_eq!(bytes.len(), SignedQueryCheck::ENCODED_LEN);
    let back = SignedQueryCheck::from_bytes(&bytes).unwrap();
    assert_eq!(back, signed);
    assert!(back.verify(&keys.public()));
    assert!(!back.verify(&NodeKeys::generate(NodeId::first(2).last().unwrap(), &mut rng).public()));
    let mut forged = back;
    forged.check.bits[0] += Fp61::ONE;
    assert!(!forged.verify(&keys.public()));
    assert_eq!(QueryCheck::from_bytes(&check.to_bytes()), Ok(check));
    for cut in 0..bytes.len() {
        assert!(SignedQueryCheck::from_bytes(&bytes[..cut]).is_err());
    }
}
