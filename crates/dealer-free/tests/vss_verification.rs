#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
//! Feldman and Pedersen VSS: honest shares verify (singly and in batch), bad shares are
//! caught and named, commitment decoding rejects malformed input, shares interpolate.

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use dealer_free::vss::{
    FeldmanCommitment, FeldmanDealer, PEDERSEN_H_DOMAIN, PedersenCommitment, PedersenDealer,
    PedersenShare, VssError, generator_g, generator_h, interpolate_at_zero, verify_batch_vartime,
    verify_pedersen_batch_vartime, verify_pedersen_share, verify_share,
};
use phr_sis::{NodeId, Threshold};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const PARAMS: [(u8, u8); 4] = [(1, 1), (2, 3), (3, 5), (6, 10)];

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn id(j: u8) -> NodeId {
    NodeId::new(j).unwrap()
}

#[test]
fn generator_h_is_pinned() {
    assert_eq!(
        PEDERSEN_H_DOMAIN,
        b"dealer-free-sis/v1/pedersen-generator-H"
    );
    let h = generator_h();
    assert_eq!(
        h,
        RistrettoPoint::from_uniform_bytes(&{
            use sha2::Digest;
            let mut w = [0u8; 64];
            w.copy_from_slice(&sha2::Sha512::digest(PEDERSEN_H_DOMAIN));
            w
        })
    );
    assert_eq!(
        hex(h.compress().as_bytes()),
        "a43c8f07393b883876cdbddaec404c88280e89222b770449abf8e9e6c598f45b"
    );
    assert_eq!(
        h,
        RistrettoPoint::hash_from_bytes::<sha2::Sha512>(PEDERSEN_H_DOMAIN)
    );
    assert_ne!(h, generator_g());
    assert_eq!(generator_g(), RISTRETTO_BASEPOINT_POINT);
}

#[test]
fn feldman_honest_shares_verify() {
    let mut rng = rng(1);
    for (t, n) in PARAMS {
        let th = Threshold::new(t, n).unwrap();
        let dealer = FeldmanDealer::new(th, &mut rng);
        let c = dealer.commitment();
        assert_eq!(c.threshold(), usize::from(t));
        assert_eq!(c.public_key(), dealer.secret() * generator_g());
        let shares: Vec<(NodeId, Scalar)> = th.nodes().map(|j| (j, dealer.share(j))).collect();
        for (j, s) in &shares {
            verify_share(*j, s, c).unwrap();
        }
        let batch: Vec<_> = shares.iter().map(|(j, s)| (*j, *s, c)).collect();
        verify_batch_vartime(&batch, &mut rng).unwrap();
    }
}

#[test]
fn pedersen_honest_shares_verify() {
    let mut rng = rng(2);
    for (t, n) in PARAMS {
        let th = Threshold::new(t, n).unwrap();
        let dealer = PedersenDealer::new(th, &mut rng);
        let c = dealer.commitment();
        let shares: Vec<PedersenShare> = th.nodes().map(|j| dealer.share(j)).collect();
        for s in &shares {
            verify_pedersen_share(s, c).unwrap();
        }
        let batch: Vec<_> = shares.iter().map(|s| (s, c)).collect();
        verify_pedersen_batch_vartime(&batch, &mut rng).unwrap();
    }
}

#[test]
fn feldman_off_by_one_share_fails_and_is_named() {
    let mut rng = rng(3);
    let th = Threshold::new(3, 5).unwrap();
    let dealer = FeldmanDealer::new(th, &mut rng);
    let c = dealer.commitment();
    let mut batch: Vec<_> = th.nodes().map(|j| (j, dealer.share(j), c)).collect();
    batch[1].1 += Scalar::ONE;
    batch[4].1 -= Scalar::ONE;
    assert_eq!(
        verify_share(batch[1].0, &batch[1].1, c),
        Err(VssError::InvalidShare { id: id(2) })
    );
    verify_share(batch[0].0, &batch[0].1, c).unwrap();
    assert_eq!(
        verify_batch_vartime(&batch, &mut rng),
        Err(VssError::BatchVerificationFailed {
            failing: vec![1, 4]
        })
    );
    // A share checked against the wrong node id fails too.
    assert!(verify_share(id(3), &dealer.share(id(2)), c).is_err());
}

#[test]
fn pedersen_off_by_one_share_fails_and_is_named() {
    let mut rng = rng(4);
    let th = Threshold::new(2, 3).unwrap();
    let dealer = PedersenDealer::new(th, &mut rng);
    let c = dealer.commitment();
    let good: Vec<PedersenShare> = th.nodes().map(|j| dealer.share(j)).collect();
    let bad_value = PedersenShare::new(id(2), good[1].value() + Scalar::ONE, good[1].blinding());
    let bad_blind = PedersenShare::new(id(3), good[2].value(), good[2].blinding() + Scalar::ONE);
    assert_eq!(
        verify_pedersen_share(&bad_value, c),
        Err(VssError::InvalidShare { id: id(2) })
    );
    assert!(verify_pedersen_share(&bad_blind, c).is_err());
    let batch = vec![(&good[0], c), (&bad_value, c), (&bad_blind, c)];
    assert_eq!(
        verify_pedersen_batch_vartime(&batch, &mut rng),
        Err(VssError::BatchVerificationFailed {
            failing: vec![1, 2]
        })
    );
    assert!(!format!("{bad_value:?}").contains(&format!("{:?}", bad_value.value())));
}

#[test]
fn batch_with_several_dealers() {
    let mut rng = rng(5);
    let th = Threshold::new(3, 5).unwrap();
    let d1 = FeldmanDealer::new(th, &mut rng);
    let d2 = FeldmanDealer::new(th, &mut rng);
    let mut batch: Vec<_> = th
        .nodes()
        .flat_map(|j| {
            [
                (j, d1.share(j), d1.commitment()),
                (j, d2.share(j), d2.commitment()),
            ]
        })
        .collect();
    verify_batch_vartime(&batch, &mut rng).unwrap();
    // Swapping dealers' shares is caught.
    batch[0].2 = d2.commitment();
    assert_eq!(
        verify_batch_vartime(&batch, &mut rng),
        Err(VssError::BatchVerificationFailed { failing: vec![0] })
    );
}

#[test]
fn batch_of_1000_shares_verifies() {
    let mut rng = rng(6);
    let th = Threshold::new(4, 250).unwrap();
    let dealers: Vec<FeldmanDealer> = (0..4).map(|_| FeldmanDealer::new(th, &mut rng)).collect();
    let batch: Vec<_> = dealers
        .iter()
        .flat_map(|d| th.nodes().map(move |j| (j, d.share(j), d.commitment())))
        .collect();
    assert_eq!(batch.len(), 1000);
    verify_batch_vartime(&batch, &mut rng).unwrap();
    let mut bad = batch.clone();
    bad[777].1 += Scalar::ONE;
    assert_eq!(
        verify_batch_vartime(&bad, &mut rng),
        Err(VssError::BatchVerificationFailed { failing: vec![777] })
    );
}

#[test]
fn commitment_encoding_round_trips() {
    let mut rng = rng(7);
    for (t, n) in PARAMS {
        let th = Threshold::new(t, n).unwrap();
        let f = FeldmanDealer::new(th, &mut rng);
        let bytes = f.commitment().to_bytes();
        assert_eq!(bytes.len(), 32 * usize::from(t));
        assert_eq!(
            &FeldmanCommitment::from_bytes(&bytes, th).unwrap(),
            f.commitment()
        );
        let p = PedersenDealer::new(th, &mut rng);
        let bytes = p.commitment().to_bytes();
        assert_eq!(
            &PedersenCommitment::from_bytes(&bytes, th).unwrap(),
            p.commitment()
        );
    }
}

#[test]
fn commitment_decoding_rejects_malformed_input() {
    let mut rng = rng(8);
    let th = Threshold::new(3, 5).unwrap();
    let bytes = FeldmanDealer::new(th, &mut rng).commitment().to_bytes();

    // Wrong number of points.
    let th2 = Threshold::new(2, 5).unwrap();
    assert_eq!(
        FeldmanCommitment::from_bytes(&bytes, th2),
        Err(VssError::WrongCommitmentLength {
            expected: 2,
            found: 3
        })
    );
    assert_eq!(
        PedersenCommitment::from_bytes(&bytes[..64], th),
        Err(VssError::WrongCommitmentLength {
            expected: 3,
            found: 2
        })
    );
    assert_eq!(
        FeldmanCommitment::from_bytes(&[], th),
        Err(VssError::WrongCommitmentLength {
            expected: 3,
            found: 0
        })
    );
    assert_eq!(
        FeldmanCommitment::from_bytes(&bytes[..95], th),
        Err(VssError::TruncatedEncoding { found: 95 })
    );

    // Identity point.
    let mut with_identity = bytes.clone();
    with_identity[32..64].copy_from_slice(RistrettoPoint::identity().compress().as_bytes());
    assert_eq!(
        FeldmanCommitment::from_bytes(&with_identity, th),
        Err(VssError::IdentityPoint { index: 1 })
    );
    assert_eq!(
        PedersenCommitment::from_bytes(&with_identity, th),
        Err(VssError::IdentityPoint { index: 1 })
    );

    // Non-canonical encodings: field element ≥ p, high bit set, negative (odd) s.
    let mut cases = Vec::new();
    let mut over_p = bytes.clone();
    over_p[64..96].copy_from_slice(&[0xff; 32]);
    cases.push(over_p);
    let mut high_bit = bytes.clone();
    high_bit[95] |= 0x80;
    cases.push(high_bit);
    let mut p_itself = bytes.clone();
    let mut p = [0xffu8; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    p_itself[64..96].copy_from_slice(&p); // p ≡ 0, non-canonical identity
    cases.push(p_itself);
    let mut odd = bytes;
    odd[64] ^= 1; // flips the sign bit of s: negative, hence non-canonical (or invalid)
    cases.push(odd);
    for bad in cases {
        assert_eq!(
            FeldmanCommitment::from_bytes(&bad, th),
            Err(VssError::NonCanonicalPoint { index: 2 })
        );
    }
}

#[test]
fn any_t_shares_interpolate_to_the_secret() {
    let mut rng = rng(9);
    for (t, n) in PARAMS {
        let th = Threshold::new(t, n).unwrap();
        let secret = Scalar::from(1234u32 + u32::from(t));
        let f = FeldmanDealer::with_secret(secret, th, &mut rng);
        let p = PedersenDealer::with_secret(secret, th, &mut rng);
        assert_eq!(f.secret(), secret);
        assert_eq!(p.secret(), secret);
        let fs: Vec<(NodeId, Scalar)> = th.nodes().map(|j| (j, f.share(j))).collect();
        let ps: Vec<(NodeId, Scalar)> = th.nodes().map(|j| (j, p.share(j).value())).collect();
        let t = usize::from(t);
        // Every window of t consecutive nodes, and the last t in reverse order.
        for start in 0..=(fs.len() - t) {
            assert_eq!(interpolate_at_zero(&fs[start..start + t]).unwrap(), secret);
            assert_eq!(interpolate_at_zero(&ps[start..start + t]).unwrap(), secret);
        }
        let mut rev: Vec<_> = fs[fs.len() - t..].to_vec();
        rev.reverse();
        assert_eq!(interpolate_at_zero(&rev).unwrap(), secret);
        // All n shares also give the secret.
        assert_eq!(interpolate_at_zero(&fs).unwrap(), secret);
        if t > 1 {
            // t − 1 shares give something else (with overwhelming probability).
            assert_ne!(interpolate_at_zero(&fs[..t - 1]).unwrap(), secret);
        }
    }
}

#[test]
fn interpolation_rejects_duplicates_and_empty() {
    let s = Scalar::from(5u8);
    assert_eq!(
        interpolate_at_zero(&[(id(1), s), (id(2), s), (id(1), s)]),
        Err(VssError::DuplicateNodeId { id: id(1) })
    );
    assert_eq!(interpolate_at_zero(&[]), Err(VssError::NoShares));
}

#[test]
fn secret_material_debug_is_redacted() {
    let mut rng = rng(10);
    let th = Threshold::new(2, 3).unwrap();
    let secret = Scalar::from(424_242u32);
    let d = FeldmanDealer::with_secret(secret, th, &mut rng);
    let dbg = format!("{d:?}");
    assert!(dbg.contains("redacted"));
    assert!(!dbg.contains(&format!("{secret:?}")));
    let p = PedersenDealer::with_secret(secret, th, &mut rng);
    assert!(!format!("{p:?}").contains(&format!("{secret:?}")));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn random_subsets_interpolate(seed in any::<u64>(), t in 1u8..=6, extra in 0u8..=4, pick in any::<u64>()) {
        let n = t + extra;
        let th = Threshold::new(t, n).unwrap();
        let mut rng = rng(seed);
        let d = PedersenDealer::new(th, &mut rng);
        let mut shares: Vec<PedersenShare> = th.nodes().map(|j| d.share(j)).collect();
        // Deterministic shuffle from `pick`.
        let mut k = pick;
        for i in (1..shares.len()).rev() {
            shares.swap(i, usize::try_from(k % (i as u64 + 1)).unwrap());
            k = k.rotate_left(7) ^ 0x9e37_79b9_7f4a_7c15;
        }
        let chosen: Vec<(NodeId, Scalar)> =
            shares[..usize::from(t)].iter().map(|s| (s.id(), s.value())).collect();
        prop_assert_eq!(interpolate_at_zero(&chosen).unwrap(), d.secret());
        let batch: Vec<_> = shares.iter().map(|s| (s, d.commitment())).collect();
        prop_assert!(verify_pedersen_batch_vartime(&batch, &mut rng).is_ok());
    }
}
