//! Helpers shared by the workspace's tests and benches (feature `testing`).
//!
//! Tests read only files inside the repository; this module is the one place that knows where
//! the bundled fixtures live, so the path logic is not copied into every crate.

use std::path::PathBuf;

/// The repository's `tests/fixtures` folder.
#[must_use]
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// One row of a fixture `reference_hashes.csv`: Python imagehash's answers for one file.
#[derive(Debug, Clone)]
pub struct ReferenceHashes {
    /// The file's path.
    pub path: PathBuf,
    /// `str(imagehash.phash(img))`.
    pub phash: String,
    /// `str(imagehash.dhash(img))`.
    pub dhash: String,
    /// `str(imagehash.average_hash(img))`.
    pub ahash: String,
    /// `str(imagehash.whash(img))`.
    pub whash: String,
}

/// Reads `tests/fixtures/<set>/reference_hashes.csv` (`set` is `images` or `images-modes`).
///
/// # Panics
/// If the file is missing or malformed: it is a fixture of this repository.
#[must_use]
pub fn reference_hashes(set: &str) -> Vec<ReferenceHashes> {
    let dir = fixtures_dir().join(set);
    let text = std::fs::read_to_string(dir.join("reference_hashes.csv"))
        .unwrap_or_else(|e| panic!("reading {set}/reference_hashes.csv: {e}"));
    let mut rows = Vec::new();
    let mut header: Option<Vec<String>> = None;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        let Some(names) = &header else {
            header = Some(fields.iter().map(|s| (*s).to_owned()).collect());
            continue;
        };
        let col = |name: &str| -> String {
            let i = names
                .iter()
                .position(|n| n == name)
                .unwrap_or_else(|| panic!("column {name} missing"));
            fields[i].to_owned()
        };
        rows.push(ReferenceHashes {
            path: dir.join(col("file")),
            phash: col("phash_hex"),
            dhash: col("dhash_hex"),
            ahash: col("ahash_hex"),
            whash: col("whash_hex"),
        });
    }
    rows
}
