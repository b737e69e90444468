//! `dealer-free-sis phash`: imagehash-exact hashes of files and folders, in parallel.

use std::io::Write;

use phr_sis::phash::{HashAlgorithm, hash_file};
use rayon::prelude::*;

use super::expand_paths;
use crate::Outcome;
use crate::cli::{Algo, PhashArgs};

pub(crate) fn run(args: &PhashArgs) -> anyhow::Result<Outcome> {
    let algorithm = match args.algo {
        Algo::Phash => HashAlgorithm::Phash,
        Algo::Dhash => HashAlgorithm::Dhash,
        Algo::Ahash => HashAlgorithm::AverageHash,
    };
    let paths = expand_paths(&args.paths);
    // Hash in parallel, print in the order given.
    let results: Vec<_> = paths
        .par_iter()
        .map(|entry| match entry {
            Ok(path) => hash_file(path, algorithm)
                .map(|h| (path, h))
                .map_err(|e| e.to_string()),
            Err((path, e)) => Err(format!("{}: {e}", path.display())),
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
            Err(message) => {
                failed = true;
                out.flush()?;
                eprintln!("dealer-free-sis: {message}");
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
