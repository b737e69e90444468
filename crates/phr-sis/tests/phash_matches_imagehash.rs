//! Every fixture image hashes to exactly what Python imagehash 4.3.2 on Pillow 13 gave
//! (`tests/fixtures/*/reference_hashes.csv`), bit for bit for every algorithm, JPEGs included
//! (their decoder is libjpeg-turbo, as Pillow's is).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use phr_sis::phash::{HashAlgorithm, ImageHash, hash_file};
use phr_sis::testing::{ReferenceHashes, reference_hashes};

fn is_jpeg(row: &ReferenceHashes) -> bool {
    matches!(
        row.path.extension().and_then(|e| e.to_str()),
        Some("jpg" | "jpeg")
    )
}

fn expected(row: &ReferenceHashes, algo: HashAlgorithm) -> ImageHash {
    let text = match algo {
        HashAlgorithm::Phash => &row.phash,
        HashAlgorithm::Dhash => &row.dhash,
        HashAlgorithm::AverageHash => &row.ahash,
    };
    text.parse().unwrap()
}

fn check_set(set: &str) {
    let rows = reference_hashes(set);
    assert!(rows.len() >= 20, "{set}: too few fixture rows");
    let mut failures = Vec::new();
    for row in &rows {
        for algo in HashAlgorithm::ALL {
            let want = expected(row, algo);
            let got = hash_file(&row.path, algo)
                .unwrap_or_else(|e| panic!("{}: {e}", row.path.display()));
            if got != want {
                let name = row.path.file_name().unwrap().to_string_lossy();
                let kind = if is_jpeg(row) { "JPEG" } else { "lossless" };
                failures.push(format!(
                    "{name} {}: {got} vs imagehash {want} ({kind}, {} bits differ)",
                    algo.name(),
                    got.hamming(want)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{set}: {} of {} hashes differ from imagehash (every one must match exactly):\n{}",
        failures.len(),
        rows.len() * HashAlgorithm::ALL.len(),
        failures.join("\n")
    );
}

#[test]
fn fixture_images_match_imagehash() {
    check_set("images");
}

#[test]
fn fixture_modes_and_formats_match_imagehash() {
    check_set("images-modes");
}

#[test]
fn synthetic_degenerate_images_match_imagehash() {
    // Flat, striped, checkered, mirrored and few-level images in every lossless mode and
    // format: DCT coefficients tie the median here, so only an exact replay of SciPy matches.
    check_set("synthetic");
}
