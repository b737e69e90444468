#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
//! The checked mask dealing: honest dealers are accepted and the masks open the right
//! distances; a dealer whose sharings do not share 0, or are of too high a degree, is
//! rejected and named; a dealer's bad point to one recipient and a recipient's lying check
//! are named, corrected, and do not get an honest dealer rejected (with `|S| ≥ 2t + 1`);
//! fewer than `t` accepted dealers is [`MpcError::MasksRejected`].

use std::collections::BTreeMap;

use dealer_free::mpc::local::{CheckedDealing, LocalCollection, deal_masks, deal_masks_with};
use dealer_free::mpc::masks::{MaskCheck, MaskPool, Rejection, Verdict};
use dealer_free::mpc::open::{Opened, open_distances};
use dealer_free::mpc::{MpcError, share_hash_bits};
use phr_sis::fp61::Fp61;
use phr_sis::{ImageHash, ImageId, NodeId, Threshold};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

const COUNT: usize = 5;

fn node(i: u8) -> NodeId {
    NodeId::new(i).unwrap()
}

/// A query over `COUNT` random images through `pools`; asserts the opened distances are right.
fn query_opens(
    t: u8,
    n: u8,
    pools: &mut BTreeMap<NodeId, MaskPool>,
    rng: &mut ChaCha20Rng,
) -> Opened {
    let servers: Vec<NodeId> = NodeId::first(n).collect();
    let hashes: Vec<ImageHash> = (0..COUNT).map(|_| ImageHash(rng.random())).collect();
    let images: Vec<(ImageId, ImageHash)> = (0u64..)
        .zip(&hashes)
        .map(|(i, h)| (ImageId(i), *h))
        .collect();
    let collection = LocalCollection::ingest(Threshold::new(t, n).unwrap(), &images, rng).unwrap();
    let query = ImageHash(rng.random());
    let q = share_hash_bits(query, t, &servers, rng).unwrap();
    let candidates: Vec<usize> = (0..COUNT).collect();
    let answers: Vec<(NodeId, Vec<Fp61>)> = q
        .iter()
        .map(|(j, share)| {
            let pool = pools.get_mut(j).unwrap();
            (*j, collection.answer(*j, &candidates, share, pool).unwrap())
        })
        .collect();
    let refs: Vec<(NodeId, &[Fp61])> = answers.iter().map(|(j, v)| (*j, v.as_slice())).collect();
    let opened = open_distances(&refs, t).unwrap();
    let expected: Vec<u32> = hashes.iter().map(|h| h.hamming(query)).collect();
    assert_eq!(opened.distances, expected, "({t},{n})");
    opened
}

fn dealing(
    t: u8,
    n: u8,
    rng: &mut ChaCha20Rng,
    deal_hook: impl FnMut(NodeId, &mut BTreeMap<NodeId, Vec<Fp61>>),
    check_hook: impl FnMut(&mut MaskCheck),
) -> Result<CheckedDealing, MpcError> {
    let servers: Vec<NodeId> = NodeId::first(n).collect();
    deal_masks_with(
        Threshold::new(t, n).unwrap(),
        &servers,
        COUNT,
        rng,
        deal_hook,
        check_hook,
    )
}

fn verdict(d: &CheckedDealing, dealer: u8) -> &Verdict {
    d.verdicts
        .iter()
        .find(|v| v.dealer() == node(dealer))
        .unwrap()
}

fn reason(v: &Verdict) -> Option<Rejection> {
    match v {
        Verdict::Rejected { reason, .. } => Some(*reason),
        _ => None,
    }
}

/// Adds `x^e · r` to every recipient's point `c` of a dealing (`e = 0`: a constant term).
fn add_monomial(points: &mut BTreeMap<NodeId, Vec<Fp61>>, c: usize, e: u64, r: Fp61) {
    for (j, values) in points.iter_mut() {
        values[c] += Fp61::from(*j).pow(e) * r;
    }
}

#[test]
fn honest_dealing_is_accepted_and_opens_the_distances() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    for (t, n) in [(2u8, 3u8), (3, 5), (3, 7)] {
        let mut d = dealing(t, n, &mut rng, |_, _| {}, |_| {}).unwrap();
        assert_eq!(d.verdicts.len(), usize::from(n));
        for v in &d.verdicts {
            assert!(v.is_accepted(), "({t},{n}) {v:?}");
            assert!(v.named().is_empty(), "({t},{n}) {v:?}");
        }
        assert!(d.pools.values().all(|p| p.len() == COUNT));
        let opened = query_opens(t, n, &mut d.pools, &mut rng);
        assert!(opened.wrong.is_empty());
        // The plain entry point goes through the same check.
        let servers: Vec<NodeId> = NodeId::first(n).collect();
        let mut pools =
            deal_masks(Threshold::new(t, n).unwrap(), &servers, COUNT, &mut rng).unwrap();
        query_opens(t, n, &mut pools, &mut rng);
    }
}

#[test]
fn dealer_with_a_non_zero_constant_term_is_rejected_and_named() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    // Exactly 2t − 1 servers, then more; a shifted mask, then a shifted blinding sharing.
    for (t, n) in [(2u8, 3u8), (3, 5), (2, 5), (3, 7)] {
        for c in [1, COUNT] {
            let mut d = dealing(
                t,
                n,
                &mut rng,
                |dealer, points| {
                    if dealer == node(2) {
                        add_monomial(points, c, 0, Fp61::from(3u8));
                    }
                },
                |_| {},
            )
            .unwrap();
            let v = verdict(&d, 2);
            assert_eq!(
                reason(v),
                Some(Rejection::NonZeroConstant),
                "({t},{n}) {v:?}"
            );
            for v in d.verdicts.iter().filter(|v| v.dealer() != node(2)) {
                assert!(v.is_accepted(), "({t},{n}) {v:?}");
            }
            // The rejected dealer's shift is not in the masks.
            let opened = query_opens(t, n, &mut d.pools, &mut rng);
            assert!(opened.wrong.is_empty());
        }
    }
}

#[test]
fn dealer_of_too_high_a_degree_is_rejected_with_more_than_2t_minus_1_servers() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    for (t, n) in [(2u8, 4u8), (2, 5), (3, 6), (3, 7)] {
        let mut d = dealing(
            t,
            n,
            &mut rng,
            |dealer, points| {
                if dealer == node(n) {
                    add_monomial(points, 2, u64::from(2 * t - 1), Fp61::from(9u8));
                }
            },
            |_| {},
        )
        .unwrap();
        let v = verdict(&d, n);
        assert_eq!(reason(v), Some(Rejection::NotACodeword), "({t},{n}) {v:?}");
        assert_eq!(
            d.verdicts.iter().filter(|v| v.is_accepted()).count(),
            usize::from(n - 1)
        );
        let opened = query_opens(t, n, &mut d.pools, &mut rng);
        assert!(opened.wrong.is_empty());
    }
}

#[test]
fn bad_point_to_one_recipient_is_named_and_its_dealer_left_out() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    for (t, n) in [(2u8, 5u8), (3, 7), (2, 7)] {
        let mut d = dealing(
            t,
            n,
            &mut rng,
            |dealer, points| {
                if dealer == node(1) {
                    points.get_mut(&node(3)).unwrap()[0] += Fp61::ONE;
                }
            },
            |_| {},
        )
        .unwrap();
        let v = verdict(&d, 1);
        assert!(v.is_accepted() && !v.is_clean(), "({t},{n}) {v:?}");
        assert_eq!(v.named(), vec![node(3)]);
        assert!(d.verdicts.iter().all(Verdict::is_accepted));
        // Every server leaves dealer 1 out, so node 3's masks are not off: no server's share
        // is wrong, and the querier's correction is not spent on an honest server.
        let opened = query_opens(t, n, &mut d.pools, &mut rng);
        assert!(opened.wrong.is_empty(), "({t},{n}) {opened:?}");
    }
}

#[test]
fn recipient_lying_in_its_check_is_named_and_the_dealer_left_out() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    for (t, n) in [(2u8, 5u8), (3, 7)] {
        let mut d = dealing(
            t,
            n,
            &mut rng,
            |_, _| {},
            |check| {
                if check.node == node(4) && check.dealer == node(2) {
                    check.values[1] += Fp61::ONE;
                }
            },
        )
        .unwrap();
        let v = verdict(&d, 2);
        assert!(v.is_accepted() && !v.is_clean(), "({t},{n}) {v:?}");
        assert_eq!(v.named(), vec![node(4)]);
        assert!(d.verdicts.iter().all(Verdict::is_accepted));
        let opened = query_opens(t, n, &mut d.pools, &mut rng);
        assert!(opened.wrong.is_empty());
    }
    // With exactly 2t − 1 checks a lie cannot be told apart: the honest dealer is rejected.
    let d = dealing(
        2,
        3,
        &mut rng,
        |_, _| {},
        |check| {
            if check.node == node(3) && check.dealer == node(1) {
                check.values[1] += Fp61::ONE;
            }
        },
    )
    .unwrap();
    assert_eq!(reason(verdict(&d, 1)), Some(Rejection::NonZeroConstant));
}

#[test]
fn fewer_than_t_accepted_dealers_is_masks_rejected() {
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let err = dealing(
        3,
        5,
        &mut rng,
        |dealer, points| {
            if dealer.get() <= 3 {
                add_monomial(points, 0, 0, Fp61::ONE);
            }
        },
        |_| {},
    )
    .unwrap_err();
    assert_eq!(
        err,
        MpcError::MasksRejected {
            accepted: vec![node(4), node(5)],
            rejected: vec![node(1), node(2), node(3)],
            needed: 3,
        }
    );
    assert!(err.to_string().contains("3 needed"), "{err}");
    // t accepted dealers are enough.
    let d = dealing(
        3,
        5,
        &mut rng,
        |dealer, points| {
            if dealer.get() <= 2 {
                add_monomial(points, 0, 0, Fp61::ONE);
            }
        },
        |_| {},
    )
    .unwrap();
    assert_eq!(d.verdicts.iter().filter(|v| v.is_accepted()).count(), 3);
}
