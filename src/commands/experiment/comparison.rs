//! `experiment --mpc-query-image Q`: the secure ranking of Q's candidates beside the
//! plaintext baseline, over the images ingested into N in-process nodes; written to
//! `secure_distance_comparison.json` (atomically) and printed side by side.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use dealer_free_sim::ranking::{ComparisonQuery, Hit, SecureDistanceComparison};
use dealer_free_sim::{IngestImage, LocalDeployment, compare_secure_vs_baseline};
use phr_sis::share::SplitOptions;
use phr_sis::{ImageHash, ImageId, SearchableSISIndex};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::{Plan, display_name, write_atomically};

/// The comparison's file name in the output folder.
const COMPARISON_FILE: &str = "secure_distance_comparison.json";

/// The secure-ranking comparison for the query image: written to its JSON file, printed side
/// by side, and returned.
pub(super) fn compare(
    plan: &Plan,
    files: &[(PathBuf, Vec<u8>, ImageHash)],
    query_path: &Path,
    query_hash: ImageHash,
) -> anyhow::Result<SecureDistanceComparison> {
    let mut rng = ChaCha20Rng::seed_from_u64(plan.seed);
    eprintln!(
        "ingesting {} images into {} nodes (t = {}) for the secure-ranking comparison",
        files.len(),
        plan.threshold.n(),
        plan.threshold.t()
    );
    let mut deployment = LocalDeployment::create(plan.threshold, None, &mut rng)?;
    let images: Vec<IngestImage<'_>> = files
        .iter()
        .map(|(_, bytes, hash)| IngestImage { bytes, hash: *hash })
        .collect();
    let (ids, _) = deployment.ingest(&images, &SplitOptions::default(), &mut rng)?;
    let mut baseline = SearchableSISIndex::new();
    baseline.insert_many(ids.iter().zip(files).map(|(id, (_, _, h))| (*id, *h)))?;
    let names: BTreeMap<ImageId, String> = ids
        .iter()
        .zip(files)
        .map(|(id, (path, _, _))| (*id, display_name(path)))
        .collect();
    let comparison = compare_secure_vs_baseline(
        &deployment,
        &baseline,
        &names,
        ComparisonQuery {
            path: query_path,
            hash: query_hash,
        },
        &plan.servers,
        &plan.params,
        &mut rng,
    )?;
    let target = plan.out.join(COMPARISON_FILE);
    write_atomically(&target, comparison.to_json()?.as_bytes())
        .with_context(|| format!("writing {}", target.display()))?;
    print_side_by_side(&comparison)?;
    println!("wrote {}", target.display());
    Ok(comparison)
}

fn print_side_by_side(c: &SecureDistanceComparison) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let servers: Vec<String> = c.servers.iter().map(ToString::to_string).collect();
    writeln!(out, "query    {}  pHash {}", c.query.path, c.query.phash)?;
    writeln!(
        out,
        "nodes    {} (t = {}), secure ranking among servers {}",
        c.nodes,
        c.threshold,
        servers.join(",")
    )?;
    writeln!(
        out,
        "params   topk {}, min band votes {}, max Hamming {}; {} images, {} candidate{}",
        c.params.topk,
        c.params.min_band_votes,
        c.params.max_hamming,
        c.images,
        c.secure.candidates,
        if c.secure.candidates == 1 { "" } else { "s" }
    )?;
    writeln!(out)?;
    const W: usize = 44;
    writeln!(
        out,
        "rank  {:<W$}  secure (MPC on bit shares)",
        "baseline (plaintext hashes)"
    )?;
    writeln!(out, "      {:<W$}  dist votes  image", "dist votes  image")?;
    let cell = |h: Option<&Hit>| -> String {
        h.map_or_else(String::new, |h| {
            let name = h.path.as_deref().unwrap_or(&h.id);
            let mut s = format!("{:>4} {:>5}  {name}", h.distance, h.band_votes);
            if s.chars().count() > W {
                s = s.chars().take(W - 1).collect::<String>() + "…";
            }
            s
        })
    };
    let rows = c.baseline.ranking.len().max(c.secure.ranking.len());
    for i in 0..rows {
        let line = format!(
            "{:>4}  {:<W$}  {}",
            i + 1,
            cell(c.baseline.ranking.get(i)),
            cell(c.secure.ranking.get(i))
        );
        writeln!(out, "{}", line.trim_end())?;
    }
    if rows == 0 {
        writeln!(out, "      (no match within the parameters)")?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "agree    {}",
        if c.agree {
            "yes: identical rankings"
        } else {
            "NO: the rankings differ"
        }
    )?;
    if !c.secure.wrong_shares_from.is_empty() {
        writeln!(
            out,
            "wrong distance shares corrected from nodes {:?}",
            c.secure.wrong_shares_from
        )?;
    }
    let s = &c.timing_ms.secure;
    writeln!(
        out,
        "time     baseline {:.3} ms; secure online {:.2} ms (tokens {:.2}, lookup {:.2}, sharing {:.2}, servers {:.2}, open+rank {:.2}) + masks offline {:.2} ms",
        c.timing_ms.baseline_rank_ms,
        s.online_total_ms,
        s.tokens_ms,
        s.candidate_lookup_ms,
        s.query_sharing_ms,
        s.node_distance_ms,
        s.open_and_rank_ms,
        s.masks_offline_ms
    )?;
    let b = &c.secure.bytes;
    writeln!(
        out,
        "bytes    baseline {}; secure online {} (distance shares {} = {:.1} per candidate and server) + masks offline {}",
        c.baseline.bytes.total,
        b.online_total,
        b.distance_responses,
        b.distance_bytes_per_candidate_per_server,
        b.masks_offline
    )?;
    Ok(())
}
