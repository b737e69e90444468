#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
//! Band tokens from `t` nodes equal the truncated single-key RFC 9497 VOPRF output on the
//! band inputs; batching images changes no token; equal bands give equal tokens; bad nodes
//! are named.

use std::collections::BTreeMap;

use dealer_free::oprf::threshold::{KeyShare, PartialFailure, verification_shares_of};
use dealer_free::oprf::tokens::{
    BandToken, TokenContext, TokenError, TokenRequest, finish, finish_images, respond,
};
use dealer_free::oprf::{
    Mode, Proof, PublicKey, SecretKey, blind, verifiable_blind_evaluate, verifiable_finalize,
};
use dealer_free::vss::FeldmanDealer;
use phr_sis::{BandLayout, ImageHash, NodeId, Threshold};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

struct Cluster {
    threshold: Threshold,
    shares: Vec<KeyShare>,
    verification: BTreeMap<NodeId, PublicKey>,
    key: SecretKey,
}

fn cluster(t: u8, n: u8, rng: &mut ChaCha20Rng) -> Cluster {
    let threshold = Threshold::new(t, n).unwrap();
    let dealer = FeldmanDealer::new(threshold, rng);
    let shares: Vec<KeyShare> = threshold
        .nodes()
        .map(|j| KeyShare::new(j, dealer.share(j)))
        .collect();
    Cluster {
        threshold,
        verification: verification_shares_of(&shares),
        shares,
        key: SecretKey::from_bytes(&dealer.secret().to_bytes()).unwrap(),
    }
}

fn single_key_token(c: &Cluster, input: &[u8], rng: &mut ChaCha20Rng) -> BandToken {
    let (b, be) = blind(Mode::Voprf, input, rng).unwrap();
    let (ev, proof) = verifiable_blind_evaluate(&c.key, &be, rng).unwrap();
    let out = verifiable_finalize(input, &b, &be, &ev, &c.key.public_key(), &proof).unwrap();
    BandToken::from_output(&out)
}

#[test]
fn tokens_equal_single_key_outputs_and_ignore_batching() {
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let c = cluster(3, 5, &mut rng);
    let layout = BandLayout::default();
    let ctx = TokenContext::new(b"photos", layout).unwrap();
    let a = ImageHash(rng.random());
    let b = ImageHash((a.0 & 0xffff_ffff_0000_0000) | u64::from(rng.random::<u32>()));
    let hashes = [a, b, a];

    let (state, request) = TokenRequest::new(&ctx, a, &mut rng).unwrap();
    let answers: Vec<_> = c.shares[1..4]
        .iter()
        .map(|s| respond(s, &request, &mut rng).unwrap())
        .collect();
    let tokens_a = finish(state, &answers, &c.verification, c.threshold).unwrap();
    assert_eq!(tokens_a.len(), 8);
    for (band, token) in tokens_a.iter().enumerate() {
        let band = u32::try_from(band).unwrap();
        let input = ctx.input(band, layout.band(a, band).unwrap());
        assert_eq!(*token, single_key_token(&c, &input, &mut rng));
    }

    let (state, request) = TokenRequest::for_images(&ctx, &hashes, &mut rng).unwrap();
    let answers: Vec<_> = c
        .shares
        .iter()
        .map(|s| respond(s, &request, &mut rng).unwrap())
        .collect();
    let per_image = finish_images(state, &answers, &c.verification, c.threshold).unwrap();
    assert_eq!(per_image.len(), 3);
    assert_eq!(per_image[0], tokens_a);
    assert_eq!(per_image[2], tokens_a);
    // b shares its first four bands with a, and (with overwhelming probability) no other.
    for band in 0..8 {
        let same = layout.band(a, band as u32) == layout.band(b, band as u32);
        assert_eq!(per_image[1][band] == tokens_a[band], same, "band {band}");
    }

    // Another collection label gives unrelated tokens.
    let other = TokenContext::new(b"other", layout).unwrap();
    let (state, request) = TokenRequest::new(&other, a, &mut rng).unwrap();
    let answers: Vec<_> = c
        .shares
        .iter()
        .map(|s| respond(s, &request, &mut rng).unwrap())
        .collect();
    let tokens_other = finish(state, &answers, &c.verification, c.threshold).unwrap();
    assert!(tokens_other.iter().zip(&tokens_a).all(|(x, y)| x != y));
}

#[test]
fn bad_nodes_are_named() {
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let c = cluster(3, 5, &mut rng);
    let ctx = TokenContext::new(b"photos", BandLayout::default()).unwrap();
    let hash = ImageHash(rng.random());
    let (state, request) = TokenRequest::new(&ctx, hash, &mut rng).unwrap();
    let mut answers: Vec<_> = c
        .shares
        .iter()
        .map(|s| respond(s, &request, &mut rng).unwrap())
        .collect();
    for a in &mut answers[..3] {
        let mut bytes = a.proof.to_bytes();
        bytes[33] ^= 4;
        a.proof = Proof::from_bytes(&bytes).unwrap();
    }
    let err = finish(state, &answers, &c.verification, c.threshold).unwrap_err();
    assert!(matches!(err, TokenError::Threshold(_)));
    let ids: Vec<NodeId> = (1..=3).map(|j| NodeId::new(j).unwrap()).collect();
    assert_eq!(err.culprits(), ids);
    if let TokenError::Threshold(
        dealer_free::oprf::threshold::ThresholdError::NotEnoughValidPartials { failed, .. },
    ) = err
    {
        assert!(
            failed
                .iter()
                .all(|(_, r)| *r == PartialFailure::InvalidProof)
        );
    }
}
