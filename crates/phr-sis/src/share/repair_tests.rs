//! Tests of [`repair_share`]: a lost node's share is recomputed byte for byte from any `t`
//! others, tampered inputs are routed around, and bad requests are typed errors.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::*;

fn node(i: u8) -> NodeId {
    NodeId::new(i).unwrap()
}

fn random_image(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut image = vec![0u8; len];
    rng.fill(&mut image[..]);
    image
}

fn split(image: &[u8], scheme: Scheme, t: u8, n: u8, seed: u64) -> Vec<Share> {
    let options = SplitOptions {
        scheme,
        padding: Padding::None,
    };
    let th = Threshold::new(t, n).unwrap();
    split_image(
        image,
        ImageId(7),
        th,
        &options,
        &mut ChaCha20Rng::seed_from_u64(seed),
    )
    .unwrap()
}

/// The shares of `nodes` (1-based), cloned.
fn pick(shares: &[Share], nodes: &[usize]) -> Vec<Share> {
    nodes.iter().map(|&i| shares[i - 1].clone()).collect()
}

/// Every node but `lost`, 1-based.
fn others(n: u8, lost: usize) -> Vec<usize> {
    (1..=usize::from(n)).filter(|&i| i != lost).collect()
}

const PARAMS: [(u8, u8); 7] = [(1, 1), (1, 3), (2, 2), (2, 3), (2, 5), (3, 5), (4, 7)];

#[test]
fn repair_gives_the_exact_share_from_t_subsets_and_from_all_others() {
    for scheme in [Scheme::Shamir, Scheme::Compact] {
        for (len, seed) in [(0usize, 1u64), (1, 2), (1000, 3), (5001, 4)] {
            let image = random_image(len, seed);
            for (t, n) in PARAMS {
                let shares = split(&image, scheme, t, n, seed);
                for lost in 1..=usize::from(n) {
                    let rest = others(n, lost);
                    let want = shares[lost - 1].to_bytes();
                    let mut inputs: Vec<Vec<usize>> = Vec::new();
                    if rest.len() >= usize::from(t) {
                        inputs.push(rest.clone());
                        inputs.push(rest[..usize::from(t)].to_vec());
                        inputs.push(rest[rest.len() - usize::from(t)..].to_vec());
                        // Every other t-subset, reversed (input order must not matter).
                        let mut spread: Vec<usize> = rest.iter().copied().step_by(2).collect();
                        spread.extend(rest.iter().copied().skip(1).step_by(2));
                        spread.truncate(usize::from(t));
                        spread.reverse();
                        inputs.push(spread);
                    }
                    for input in inputs {
                        let got = repair_share(&pick(&shares, &input), node(lost as u8))
                            .unwrap_or_else(|e| {
                                panic!("{scheme:?} {t}-of-{n} len {len} lost {lost} from {input:?}: {e}")
                            });
                        assert!(got.verify());
                        assert_eq!(
                            got.to_bytes(),
                            want,
                            "{scheme:?} {t}-of-{n} len {len} lost {lost} from {input:?}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn t_equal_n_cannot_repair_a_missing_share_but_returns_a_present_one() {
    for scheme in [Scheme::Shamir, Scheme::Compact] {
        let image = random_image(777, 9);
        for n in [1u8, 2, 4] {
            let shares = split(&image, scheme, n, n, 9);
            for lost in 1..=usize::from(n) {
                let e = repair_share(&pick(&shares, &others(n, lost)), node(lost as u8));
                if n == 1 {
                    assert_eq!(e, Err(ShareError::NoShares));
                } else {
                    assert!(
                        matches!(e, Err(ShareError::NotEnoughValidShares { needed, .. }) if needed == n),
                        "{e:?}"
                    );
                }
                let got = repair_share(&shares, node(lost as u8)).unwrap();
                assert_eq!(got.to_bytes(), shares[lost - 1].to_bytes());
            }
        }
    }
}

#[test]
fn a_present_valid_share_of_the_node_is_returned_as_is() {
    let image = random_image(300, 10);
    let shares = split(&image, Scheme::Shamir, 2, 4, 10);
    let got = repair_share(&pick(&shares, &[3, 1, 4]), node(3)).unwrap();
    assert_eq!(got, shares[2]);
}

#[test]
fn a_tampered_input_share_is_routed_around() {
    for scheme in [Scheme::Shamir, Scheme::Compact] {
        let image = random_image(2000, 11);
        let shares = split(&image, scheme, 3, 6, 11);
        let want = shares[5].to_bytes();
        let mut input = pick(&shares, &[1, 2, 3, 4]);
        input[0].payload[NONCE_LEN + KEY_LEN + 1] ^= 0x40;
        let got = repair_share(&input, node(6)).unwrap();
        assert_eq!(got.to_bytes(), want, "{scheme:?}");

        // A share that disagrees with the others' commitment vector is routed around too.
        let mut input = pick(&shares, &[1, 2, 3, 4]);
        input[1].commitments[5][0] ^= 1;
        let got = repair_share(&input, node(6)).unwrap();
        assert_eq!(got.to_bytes(), want, "{scheme:?}");

        // The node's own share, corrupted on disk, is dropped and recomputed.
        let mut input = pick(&shares, &[2, 4, 5, 6]);
        input[3].payload[0] ^= 1;
        let got = repair_share(&input, node(6)).unwrap();
        assert_eq!(got.to_bytes(), want, "{scheme:?}");

        // Tampering that leaves fewer than t good shares is an error naming the bad node.
        let mut input = pick(&shares, &[1, 2, 3]);
        input[2].payload[0] ^= 1;
        match repair_share(&input, node(6)) {
            Err(ShareError::NotEnoughValidShares { needed, valid, bad }) => {
                assert_eq!(needed, 3);
                assert_eq!(valid, [node(1), node(2)]);
                assert_eq!(
                    bad,
                    [BadShare {
                        node: node(3),
                        reason: BadShareReason::DoesNotMatchCommitment
                    }]
                );
            }
            other => panic!("{scheme:?}: {other:?}"),
        }
    }
}

#[test]
fn fewer_than_t_shares_and_bad_requests_are_errors() {
    for scheme in [Scheme::Shamir, Scheme::Compact] {
        let image = random_image(500, 12);
        let shares = split(&image, scheme, 3, 5, 12);
        assert!(matches!(
            repair_share(&pick(&shares, &[1, 2]), node(4)),
            Err(ShareError::NotEnoughValidShares { needed: 3, .. })
        ));
        assert_eq!(repair_share(&[], node(1)), Err(ShareError::NoShares));
        for bad in [6u8, 7, 255] {
            let e = repair_share(&pick(&shares, &[1, 2, 3]), node(bad)).unwrap_err();
            assert_eq!(
                e,
                ShareError::IndexOutOfRange {
                    index: node(bad),
                    n: 5
                }
            );
            assert!(e.to_string().contains("1..=5"), "{e}");
        }
        // Node 0 does not exist: it is the secret's x-coordinate, and no NodeId can name it.
        assert!(NodeId::new(0).is_err());
        // Shares of two images.
        let other = split(&image, scheme, 3, 5, 13);
        let mut mixed = pick(&shares, &[1, 2]);
        let mut foreign = other[2].clone();
        foreign.header.image_id = ImageId(8);
        mixed.push(foreign);
        assert!(matches!(
            repair_share(&mixed, node(4)),
            Err(ShareError::MixedImages { .. })
        ));
    }
}

#[test]
fn two_conflicting_sharings_are_refused() {
    let image = random_image(500, 14);
    let a = split(&image, Scheme::Shamir, 2, 5, 14);
    let b = split(&image, Scheme::Shamir, 2, 5, 15);
    let mut input = pick(&a, &[1, 2]);
    input.extend(pick(&b, &[3, 4]));
    assert!(matches!(
        repair_share(&input, node(5)),
        Err(ShareError::Conflicting { .. })
    ));
}

/// Rewrites the commitment vector of every share to match the shares as they now are, so that
/// each verifies and all agree (what a malicious owner, or a majority of colluding nodes,
/// could produce).
fn recommit(shares: &mut [Share]) {
    let vector: Vec<[u8; 32]> = shares
        .iter()
        .map(|s| commitment::commit(&s.header, &s.payload))
        .collect();
    for s in shares {
        s.commitments.clone_from(&vector);
    }
}

#[test]
fn consistently_forged_shares_that_do_not_determine_the_node_are_a_typed_error() {
    for scheme in [Scheme::Shamir, Scheme::Compact] {
        let image = random_image(900, 16);
        let mut shares = split(&image, scheme, 2, 4, 16);
        // Share 2 moved off the polynomial (and fragment code), every commitment recomputed.
        shares[1].payload[NONCE_LEN + 3] ^= 0x11;
        shares[1].payload[NONCE_LEN + KEY_LEN + 2] ^= 0x22;
        recommit(&mut shares);
        assert!(shares.iter().all(Share::verify));
        for (input, lost) in [(vec![1usize, 2], 4u8), (vec![2, 3], 1), (vec![1, 2, 3], 4)] {
            let e = repair_share(&pick(&shares, &input), node(lost)).unwrap_err();
            assert_eq!(
                e,
                ShareError::RepairMismatch {
                    index: node(lost),
                    used: input.iter().take(2).map(|&i| node(i as u8)).collect()
                },
                "{scheme:?}"
            );
            assert!(
                e.to_string()
                    .contains(&format!("do not determine node {lost}'s share")),
                "{e}"
            );
        }
        // Shares 1 and 3 are still on the sharing: they determine node 4's share.
        let got = repair_share(&pick(&shares, &[1, 3]), node(4)).unwrap();
        assert_eq!(got.payload, shares[3].payload, "{scheme:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn repair_equals_the_split_share(
        image in prop::collection::vec(any::<u8>(), 0..1500),
        compact in any::<bool>(),
        n in 1u8..=9,
        t_seed in any::<u8>(),
        lost_seed in any::<u8>(),
        pick_seed in any::<u64>(),
        seed in any::<u64>(),
    ) {
        let scheme = if compact { Scheme::Compact } else { Scheme::Shamir };
        let t = 1 + t_seed % n;
        let lost = 1 + usize::from(lost_seed % n);
        let shares = split(&image, scheme, t, n, seed);
        let mut rest = others(n, lost);
        // A pseudo-random order; the first t (or more) of it are given.
        let mut rng = ChaCha20Rng::seed_from_u64(pick_seed);
        for i in (1..rest.len()).rev() {
            rest.swap(i, rng.random_range(0..=i));
        }
        let t_us = usize::from(t);
        let given = if rest.len() < t_us {
            rest.len()
        } else {
            t_us + (pick_seed as usize) % (rest.len() - t_us + 1)
        };
        let input = pick(&shares, &rest[..given]);
        let got = repair_share(&input, node(lost as u8));
        if input.is_empty() {
            prop_assert_eq!(got, Err(ShareError::NoShares));
        } else if input.len() < t_us {
            let is_not_enough = matches!(got, Err(ShareError::NotEnoughValidShares { .. }));
            prop_assert!(is_not_enough);
        } else {
            prop_assert_eq!(got.map(|s| s.to_bytes()), Ok(shares[lost - 1].to_bytes()));
        }
    }
}
