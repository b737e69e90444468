#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
//! Decoding partial evaluations and token requests never panics: arbitrary bytes and
//! mutations of valid encodings give a value or a typed error, and whatever decodes
//! re-encodes to the same bytes. Both are messages of the crate's wire layer, so neither
//! decodes as the other (their kind bytes differ).

use dealer_free::oprf::threshold::{KeyShare, PartialEvaluation, partial_evaluate};
use dealer_free::oprf::tokens::{TokenContext, TokenRequest};
use dealer_free::wire::{MessageKind, peek_kind};
use phr_sis::{BandLayout, ImageHash, NodeId};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

fn valid_encodings(seed: u64, images: usize) -> (Vec<u8>, Vec<u8>) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let ctx = TokenContext::new(b"fuzz", BandLayout::default()).unwrap();
    let hashes: Vec<ImageHash> = (0..images as u64).map(|i| ImageHash(seed ^ i)).collect();
    let (_, request) = TokenRequest::for_images(&ctx, &hashes, &mut rng).unwrap();
    let share = KeyShare::from_bytes(NodeId::new(7).unwrap(), &[9u8; 32]).unwrap();
    let partial = partial_evaluate(&share, request.blinded(), &mut rng).unwrap();
    (request.to_bytes(), partial.to_bytes().unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(p) = PartialEvaluation::from_bytes(&bytes) {
            prop_assert_eq!(p.to_bytes().unwrap(), bytes.clone());
        }
        if let Ok(r) = TokenRequest::from_bytes(&bytes) {
            prop_assert_eq!(r.to_bytes(), bytes);
        }
    }

    #[test]
    fn mutated_valid_encodings(
        seed in any::<u64>(),
        images in 1usize..3,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cut in any::<usize>(),
        truncate in any::<bool>(),
    ) {
        let (request, partial) = valid_encodings(seed, images);
        prop_assert_eq!(peek_kind(&request), Ok(MessageKind::TokenRequest));
        prop_assert_eq!(peek_kind(&partial), Ok(MessageKind::OprfPartialEvaluation));
        prop_assert!(PartialEvaluation::from_bytes(&request).is_err());
        prop_assert!(TokenRequest::from_bytes(&partial).is_err());
        for mut bytes in [request, partial] {
            for (at, x) in &flips {
                let i = at % bytes.len();
                bytes[i] ^= x;
            }
            if truncate {
                bytes.truncate(cut % (bytes.len() + 1));
            }
            if let Ok(p) = PartialEvaluation::from_bytes(&bytes) {
                prop_assert_eq!(p.to_bytes().unwrap(), bytes.clone());
            }
            if let Ok(r) = TokenRequest::from_bytes(&bytes) {
                prop_assert_eq!(r.to_bytes(), bytes);
            }
        }
    }
}
