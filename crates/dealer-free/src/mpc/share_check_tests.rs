#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code

use std::collections::BTreeMap;

use phr_sis::ImageHash;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::*;
use crate::mpc::masks::{MaskCheck, MaskDeal, deal_checked, judge as judge_dealer};
use crate::mpc::share_hash_bits;

/// A checked dealing of `kind` among `servers`, every dealer honest: each server's pool.
fn pools(
    servers: &[NodeId],
    t: u8,
    count: usize,
    kind: MaskKind,
    rng: &mut ChaCha20Rng,
) -> BTreeMap<NodeId, MaskPool> {
    let session = [9; 32];
    let mut received: BTreeMap<NodeId, Vec<MaskDeal>> = BTreeMap::new();
    let mut verdicts = Vec::new();
    for dealer in servers {
        let (c, deals) = deal_checked(session, kind, *dealer, servers, t, count, rng).unwrap();
        let checks: Vec<MaskCheck> = deals.iter().map(|d| d.verify(&c).unwrap()).collect();
        let v = judge_dealer(&c, &checks, t).unwrap();
        assert!(v.is_clean(), "{v:?}");
        verdicts.push(v);
        for d in deals {
            received.entry(d.recipient()).or_default().push(d);
        }
    }
    servers
        .iter()
        .map(|j| {
            let mine = received.remove(j).unwrap();
            (
                *j,
                MaskPool::from_checked_deals(*j, &verdicts, &mine, t).unwrap(),
            )
        })
        .collect()
}

struct Cluster {
    servers: Vec<NodeId>,
    t: u8,
    /// Per image, every server's bit shares.
    records: BTreeMap<ImageId, BTreeMap<NodeId, HashBitShares>>,
    pools: BTreeMap<NodeId, MaskPool>,
}

fn cluster(n: u8, t: u8, images: u64, seed: u64) -> Cluster {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let servers: Vec<NodeId> = NodeId::first(n).collect();
    let mut records = BTreeMap::new();
    for i in 0..images {
        let hash = ImageHash(0x0123_4567_89ab_cdef ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let shares = share_hash_bits(hash, t, &servers, &mut rng).unwrap();
        records.insert(ImageId(100 + i), shares.into_iter().collect());
    }
    let pools = pools(&servers, t, 64, MaskKind::Random, &mut rng);
    Cluster {
        servers,
        t,
        records,
        pools,
    }
}

impl Cluster {
    fn order(&self, first_mask: u32) -> ShareCheckOrder {
        ShareCheckOrder {
            mask_session: [9; 32],
            first_mask,
            ids: self.records.keys().copied().collect(),
        }
    }

    fn answers(&mut self, order: &ShareCheckOrder) -> Vec<ShareCheckAnswer> {
        let mut out = Vec::new();
        for j in self.servers.clone() {
            let records = &self.records;
            let pool = self.pools.get_mut(&j).unwrap();
            out.push(
                answer(order, j, pool, |id| {
                    records.get(&id).and_then(|r| r.get(&j)).cloned()
                })
                .unwrap(),
            );
        }
        out
    }
}

fn node(n: u8) -> NodeId {
    NodeId::new(n).unwrap()
}

#[test]
fn honest_shares_pass_and_one_wrong_share_is_named() {
    let mut c = cluster(5, 3, 6, 1);
    let order = c.order(0);
    let answers = c.answers(&order);
    assert_eq!(judge(&order, c.t, &answers).unwrap(), vec![]);
    // Node 4's share of one bit of the third image is off by one; nothing else changes.
    let id = ImageId(102);
    let shares = c.records.get_mut(&id).unwrap().get_mut(&node(4)).unwrap();
    shares.0[17] += Fp61::ONE;
    let order = c.order(6);
    let answers = c.answers(&order);
    assert_eq!(
        judge(&order, c.t, &answers).unwrap(),
        vec![ShareFinding::OffCodeword {
            id,
            nodes: vec![node(4)]
        }]
    );
}

#[test]
fn two_wrong_servers_are_named_among_seven_and_three_are_undecided() {
    let mut c = cluster(7, 3, 2, 2);
    let id = ImageId(101);
    for j in [2, 6] {
        c.records.get_mut(&id).unwrap().get_mut(&node(j)).unwrap().0[0] += Fp61::ONE;
    }
    let order = c.order(0);
    let answers = c.answers(&order);
    assert_eq!(
        judge(&order, c.t, &answers).unwrap(),
        vec![ShareFinding::OffCodeword {
            id,
            nodes: vec![node(2), node(6)]
        }]
    );
    c.records.get_mut(&id).unwrap().get_mut(&node(7)).unwrap().0[63] += Fp61::ONE;
    let order = c.order(2);
    let answers = c.answers(&order);
    assert!(matches!(
        judge(&order, c.t, &answers).unwrap().as_slice(),
        [ShareFinding::Undecided { id: i, holders }] if *i == id && holders.len() == 7
    ));
}

#[test]
fn images_held_by_too_few_servers_are_not_judged() {
    let mut c = cluster(4, 3, 2, 3);
    let id = ImageId(100);
    c.records.get_mut(&id).unwrap().remove(&node(2));
    let order = c.order(0);
    let answers = c.answers(&order);
    assert_eq!(
        judge(&order, c.t, &answers).unwrap(),
        vec![ShareFinding::TooFewHolders {
            id,
            holders: vec![node(1), node(3), node(4)]
        }]
    );
}

#[test]
fn the_values_hide_the_bits() {
    // The same bit shares answered with two fresh mask ranges give unrelated values, and
    // an image whose every bit is 0 opens (interpolated at 0) to the masks' random secret,
    // not to 0.
    let mut c = cluster(4, 2, 1, 4);
    let id = ImageId(100);
    let zero = share_hash_bits(
        ImageHash(0),
        2,
        &c.servers,
        &mut ChaCha20Rng::seed_from_u64(5),
    )
    .unwrap()
    .into_iter()
    .collect();
    c.records.insert(id, zero);
    let first = c.answers(&c.order(0));
    let second = c.answers(&c.order(1));
    assert_ne!(first[0].values, second[0].values);
    let points: Vec<(NodeId, Fp61)> = first
        .iter()
        .map(|a| (a.node, a.values[0].unwrap()))
        .collect();
    let opened = decode(&points, 1).unwrap();
    assert!(opened.wrong.is_empty());
    assert_ne!(opened.value_at_zero, Fp61::ZERO);
}

#[test]
fn a_mask_serves_once_and_search_masks_are_refused() {
    let mut c = cluster(4, 2, 2, 6);
    let order = c.order(0);
    let _ = c.answers(&order);
    let j = node(1);
    let pool = c.pools.get_mut(&j).unwrap();
    assert!(matches!(
        answer(&order, j, pool, |_| None),
        Err(MpcError::MasksUsed { .. })
    ));
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let mut zero = pools(&c.servers, 2, 4, MaskKind::ZeroSum, &mut rng);
    let pool = zero.get_mut(&j).unwrap();
    assert!(matches!(
        answer(&order, j, pool, |_| None),
        Err(MpcError::Params(_))
    ));
    assert_eq!(pool.len(), 4, "a refused order takes no mask");
}

#[test]
fn random_masks_are_refused_by_the_search() {
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let servers: Vec<NodeId> = NodeId::first(3).collect();
    let mut random = pools(&servers, 2, 4, MaskKind::Random, &mut rng);
    let pool = random.get_mut(&node(1)).unwrap();
    let query = share_hash_bits(ImageHash(7), 2, &servers, &mut rng).unwrap();
    let stored = query[0].1.clone();
    assert!(matches!(
        crate::mpc::masks::masked_distance_shares(&[&stored], &query[0].1, pool),
        Err(MpcError::Params(_))
    ));
}

#[test]
fn a_random_dealer_with_a_point_off_its_polynomial_is_named() {
    let mut rng = ChaCha20Rng::seed_from_u64(10);
    let servers: Vec<NodeId> = NodeId::first(5).collect();
    let (c, mut deals) = deal_checked(
        [1; 32],
        MaskKind::Random,
        servers[0],
        &servers,
        3,
        4,
        &mut rng,
    )
    .unwrap();
    // The dealer gives node 5 a point off the polynomial, then commits to it (a fresh
    // dealing from those values).
    let mut values: Vec<(NodeId, Vec<Fp61>)> = deals
        .drain(..)
        .map(|d| (d.recipient(), d.values().to_vec()))
        .collect();
    values[4].1[0] += Fp61::ONE;
    let (c2, deals) = crate::mpc::masks::deal_from_values(
        [1; 32],
        MaskKind::Random,
        servers[0],
        values,
        &mut rng,
    )
    .unwrap();
    assert_eq!(c.kind(), MaskKind::Random);
    let checks: Vec<MaskCheck> = deals.iter().map(|d| d.verify(&c2).unwrap()).collect();
    let v = judge_dealer(&c2, &checks, 3).unwrap();
    assert!(v.is_accepted() && !v.is_clean());
    assert_eq!(v.named(), vec![node(5)]);
    // With only t servers a random dealing cannot be checked.
    assert!(
        deal_checked(
            [1; 32],
            MaskKind::Random,
            servers[0],
            &servers[..3],
            3,
            1,
            &mut rng
        )
        .and_then(|(c, d)| {
            let checks: Vec<MaskCheck> = d.iter().map(|d| d.verify(&c).unwrap()).collect();
            judge_dealer(&c, &checks, 3)
        })
        .is_err()
    );
}

#[test]
fn orders_and_answers_round_trip_and_bad_bytes_are_refused() {
    let order = ShareCheckOrder {
        mask_session: [3; 32],
        first_mask: 5,
        ids: vec![ImageId(1), ImageId(9)],
    };
    assert_eq!(
        ShareCheckOrder::from_bytes(&order.to_bytes()).unwrap(),
        order
    );
    let unsorted = ShareCheckOrder {
        ids: vec![ImageId(9), ImageId(1)],
        ..order
    };
    assert!(ShareCheckOrder::from_bytes(&unsorted.to_bytes()).is_err());
    let overflow = ShareCheckOrder {
        first_mask: u32::MAX,
        ..order.clone()
    };
    assert!(ShareCheckOrder::from_bytes(&overflow.to_bytes()).is_err());
    let empty = ShareCheckOrder {
        ids: vec![],
        ..order
    };
    assert!(ShareCheckOrder::from_bytes(&empty.to_bytes()).is_err());
    let a = ShareCheckAnswer {
        mask_session: [3; 32],
        first_mask: 5,
        node: node(2),
        values: vec![Some(Fp61::from_u64(77)), None],
    };
    let bytes = a.to_bytes();
    assert_eq!(ShareCheckAnswer::from_bytes(&bytes).unwrap(), a);
    for cut in 0..bytes.len() {
        assert!(ShareCheckAnswer::from_bytes(&bytes[..cut]).is_err());
    }
    let mut bad_flag = bytes.clone();
    let flag_at = bytes.len() - 9 - 1;
    bad_flag[flag_at] = 2;
    assert!(ShareCheckAnswer::from_bytes(&bad_flag).is_err());
    // The judge refuses an answer of another order, of the wrong length, or repeated.
    let mut other = a.clone();
    other.first_mask = 6;
    assert!(judge(&order, 2, &[other]).is_err());
    let short = ShareCheckAnswer {
        values: vec![None],
        ..a
    };
    assert!(judge(&order, 2, &[short]).is_err());
    assert!(judge(&order, 2, &[a.clone(), a]).is_err());
}
