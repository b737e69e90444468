//! `phr_sis::phash::decode_luma`: format detection and decoding of any image file into
//! Pillow's `convert("L")`, then the three hashes of the decoded image.
//!
//! Documented: "never panics on malformed input". There is no encoder, so no round trip;
//! a successfully decoded image (of any size, e.g. 1×N) is hashed with pHash, dHash and
//! aHash, which exercises the LANCZOS resize and the DCT on whatever the decoder accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use phr_sis::phash::{average_hash, decode_luma, dhash, phash};

fuzz_target!(|data: &[u8]| {
    if let Ok(image) = decode_luma(data) {
        let _ = phash(&image);
        let _ = dhash(&image);
        let _ = average_hash(&image);
    }
});
