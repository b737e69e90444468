#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
//! Token requests have the same number of blinded elements and the same encoded length
//! whatever the hash: images with 1 to 8 distinct band values, and batches of images with
//! any amount of shared bands, give identical sizes for the same image count.

use dealer_free::oprf::tokens::{TOKENS_PER_REQUEST, TokenContext, TokenRequest};
use dealer_free::wire::WireError;
use phr_sis::{BandLayout, ImageHash};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// A hash whose 8 bands hold exactly `distinct` different values (1..=8).
fn hash_with_distinct_bands(distinct: u64) -> ImageHash {
    let mut h = 0u64;
    for band in 0..8u64 {
        let value = 0x11 * (band % distinct) + 1;
        h = (h << 8) | value;
    }
    ImageHash(h)
}

#[test]
fn one_image_requests_have_one_size() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let layout = BandLayout::default();
    let ctx = TokenContext::new(b"collection-a", layout).unwrap();
    let expected = TokenRequest::encoded_len(TOKENS_PER_REQUEST, 1);
    for distinct in 1..=8 {
        let hash = hash_with_distinct_bands(distinct);
        let values: std::collections::BTreeSet<u16> =
            (0..8).map(|b| layout.band(hash, b).unwrap()).collect();
        assert_eq!(values.len() as u64, distinct);
        let (state, request) = TokenRequest::new(&ctx, hash, &mut rng).unwrap();
        // The band index is part of every input, so one image always has 8 distinct inputs.
        assert_eq!(state.real_slots(), TOKENS_PER_REQUEST);
        assert_eq!(request.blinded().len(), TOKENS_PER_REQUEST);
        let bytes = request.to_bytes();
        assert_eq!(bytes.len(), expected, "{distinct} distinct band values");
        assert_eq!(TokenRequest::from_bytes(&bytes).unwrap(), request);
    }
}

#[test]
fn batched_requests_depend_only_on_the_image_count() {
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let ctx = TokenContext::new(b"collection-a", BandLayout::default()).unwrap();
    let base = ImageHash(rng.random());
    for images in [1usize, 2, 5, 8] {
        // From all images equal (8 distinct inputs) to all different (8·images).
        for shared_bands in 0..=8u32 {
            let hashes: Vec<ImageHash> = (0..images)
                .map(|m| {
                    if m == 0 || shared_bands == 8 {
                        return base;
                    }
                    let keep = u64::MAX.checked_shl(64 - 8 * shared_bands).unwrap_or(0);
                    let noise: u64 = rng.random::<u64>() | 0x0101_0101_0101_0101;
                    ImageHash((base.0 & keep) | ((base.0 ^ noise) & !keep))
                })
                .collect();
            let (state, request) = TokenRequest::for_images(&ctx, &hashes, &mut rng).unwrap();
            assert!(state.real_slots() <= 8 * images);
            assert_eq!(state.images(), images);
            assert_eq!(request.blinded().len(), 8 * images);
            assert_eq!(
                request.to_bytes().len(),
                TokenRequest::encoded_len(8, images)
            );
        }
    }
    // Equal images share their slots: the rest are dummies.
    let (state, _) = TokenRequest::for_images(&ctx, &[base, base, base], &mut rng).unwrap();
    assert_eq!(state.real_slots(), 8);
}

#[test]
fn other_layouts_fix_their_own_size() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    for (bands, bits) in [(4u32, 16u32), (16, 4), (64, 1)] {
        let ctx = TokenContext::new(b"c", BandLayout::new(bands, bits).unwrap()).unwrap();
        assert_eq!(ctx.tokens_per_image(), bands as usize);
        for _ in 0..4 {
            let (_, request) = TokenRequest::new(&ctx, ImageHash(rng.random()), &mut rng).unwrap();
            let bytes = request.to_bytes();
            assert_eq!(bytes.len(), TokenRequest::encoded_len(bands as usize, 1));
            assert_eq!(TokenRequest::from_bytes(&bytes).unwrap(), request);
            let mut long = bytes.clone();
            long.push(0);
            assert_eq!(
                TokenRequest::from_bytes(&long),
                Err(WireError::TrailingBytes(1))
            );
        }
    }
}
