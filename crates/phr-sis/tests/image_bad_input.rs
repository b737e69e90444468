//! Corrupt, truncated and foreign input gets a typed error, never a panic and never a hash of
//! made-up pixels.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use phr_sis::phash::{ImageError, decode_luma};
use phr_sis::testing::fixtures_dir;
use proptest::prelude::*;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(name)).unwrap()
}

const SAMPLES: [&str; 8] = [
    "images/sk_chelsea.jpg",
    "images/plasma_path.jpg",
    "images/sk_coins.png",
    "images/lxqt_fog_pal.png",
    "images-modes/sk_astronaut__gif.gif",
    "images-modes/sk_astronaut__bmp.bmp",
    "images-modes/sk_astronaut__tif.tif",
    "images-modes/sk_astronaut__webpll.webp",
];

#[test]
fn truncated_files_are_errors_at_every_cut() {
    for name in SAMPLES {
        let bytes = fixture(name);
        assert!(decode_luma(&bytes).is_ok(), "{name} must decode whole");
        // Cut inside the header, the middle and near the end of the image data.
        let len = bytes.len();
        for cut in [1, 8, 20, 64, len / 4, len / 2, len - len / 10, len - 64] {
            let result = decode_luma(&bytes[..cut]);
            assert!(
                result.is_err(),
                "{name} cut at {cut}/{len} decoded without error"
            );
        }
    }
}

#[test]
fn png_cut_after_its_pixel_data_still_hashes_like_pillow() {
    // Pillow stops reading a PNG once the image data is complete: a file whose trailing CRC
    // and IEND chunk are cut off opens with every pixel, and so does it here.
    let bytes = fixture("images/sk_coins.png");
    let whole = decode_luma(&bytes).unwrap();
    assert_eq!(decode_luma(&bytes[..bytes.len() - 16]).unwrap(), whole);
}

#[test]
fn truncated_jpeg_is_reported_as_truncated() {
    let bytes = fixture("images/sk_chelsea.jpg");
    let err = decode_luma(&bytes[..bytes.len() / 2]).unwrap_err();
    assert!(
        matches!(err, ImageError::Truncated { format: "JPEG" }),
        "{err}"
    );
}

#[test]
fn unknown_bytes_are_unknown_format() {
    assert!(matches!(decode_luma(b""), Err(ImageError::UnknownFormat)));
    assert!(matches!(
        decode_luma(b"%PDF-1.7"),
        Err(ImageError::UnknownFormat)
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn flipped_bytes_never_panic(sample in 0usize..SAMPLES.len(), flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..), 1..8)) {
        let mut bytes = fixture(SAMPLES[sample]);
        for (at, xor) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= xor;
        }
        // Any outcome but a panic is acceptable: corrupt entropy-coded data can still decode.
        let _ = decode_luma(&bytes);
    }

    #[test]
    fn arbitrary_bytes_after_a_magic_never_panic(magic in 0usize..6, tail in prop::collection::vec(any::<u8>(), 0..600)) {
        let magics: [&[u8]; 6] = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"BM", b"II*\0", b"RIFF\0\0\0\0WEBP"];
        let mut bytes = magics[magic].to_vec();
        bytes.extend_from_slice(&tail);
        let _ = decode_luma(&bytes);
    }
}
