//! `dealer-free-sis phash`: imagehash-exact hashes of files and folders, in parallel.
//!
//! Results are printed in the order given, one per line on stdout; each failure is one line
//! on stderr, `dealer-free-sis: PATH: REASON`, or with `--json` one `{"path", "error"}`
//! object, so that a JSON reader can parse both streams. Folders with no image in them, when
//! nothing at all was found, are failures too (exit code 1), worded as `ingest` words them.

use std::io::Write;
use std::path::Path;

use phr_sis::phash::{HashAlgorithm, hash_file};
use rayon::prelude::*;

use super::{expand_paths, no_images_found};
use crate::Outcome;
use crate::cli::{Algo, PhashArgs};

/// Reports one failure on stderr: text, or with `json` a `{"path", "error"}` object.
fn report(json: bool, path: &Path, error: &str) {
    if json {
        let record = serde_json::json!({
            "path": path.display().to_string(),
            "error": error,
        });
        eprintln!("{record}");
    } else {
        eprintln!("dealer-free-sis: {}: {error}", path.display());
    }
}

pub(crate) fn run(args: &PhashArgs) -> anyhow::Result<Outcome> {
    let algorithm = match args.algo {
        Algo::Phash => HashAlgorithm::Phash,
        Algo::Dhash => HashAlgorithm::Dhash,
        Algo::Ahash => HashAlgorithm::AverageHash,
    };
    let paths = expand_paths(&args.paths);
    if paths.is_empty() {
        for path in &args.paths {
            if args.json {
                report(true, path, no_images_found(path).as_str());
            } else {
                eprintln!("dealer-free-sis: {}", no_images_found(path));
            }
        }
        return Ok(Outcome::PartialFailure);
    }
    // Hash in parallel, print in the order given.
    let results: Vec<_> = paths
        .par_iter()
        .map(|entry| match entry {
            Ok(path) => hash_file(path, algorithm)
                .map(|h| (path, h))
                .map_err(|e| (path.as_path(), e.source.to_string())),
            Err((path, e)) => Err((path.as_path(), e.to_string())),
        })
        .collect();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut failed = false;
    for result in results {
        match result {
            Ok((path, hash)) if args.json => {
                let record = serde_json::json!({
                    "path": path.display().to_string(),
                    "algo": algorithm.name(),
                    "hash": hash.to_string(),
                });
                writeln!(out, "{record}")?;
            }
            Ok((path, hash)) => writeln!(out, "{hash}  {}", path.display())?,
            Err((path, message)) => {
                failed = true;
                out.flush()?;
                report(args.json, path, &message);
            }
        }
    }
    out.flush()?;
    Ok(if failed {
        Outcome::PartialFailure
    } else {
        Outcome::Success
    })
}
