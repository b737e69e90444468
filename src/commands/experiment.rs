//! `dealer-free-sis experiment`: the dealer-free experiment on a folder of images. With
//! `--mpc-query-image`, the secure ranking compared with the plaintext baseline
//! (`secure_distance_comparison.json`).
//!
//! Every flag is checked, the query image hashed and the output folder created before any
//! other work; a usage error then exits 2 with nothing written. The JSON is written to a
//! temporary file and renamed into place, so an interrupted run leaves no half-written file.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use dealer_free_sim::experiment::figures::experiment_figures;
use dealer_free_sim::experiment::{ExperimentConfig, ExperimentImage, run_dealer_free_experiment};
use dealer_free_sim::figures::write_figure;
use dealer_free_sim::ranking::{ComparisonQuery, Hit, SecureDistanceComparison};
use dealer_free_sim::report::write_index_html;
use dealer_free_sim::summary::{RunInfo, summary_markdown};
use dealer_free_sim::{IngestImage, LocalDeployment, compare_secure_vs_baseline};
use indicatif::{ProgressBar, ProgressStyle};
use phr_sis::phash::{decode_luma, phash};
use phr_sis::share::SplitOptions;
use phr_sis::{ImageHash, ImageId, NodeId, SearchParams, SearchableSISIndex, Threshold};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;

use super::{bundled_images, expand_paths, write_atomically};
use crate::cli::ExperimentArgs;
use crate::{Outcome, UsageError};

/// The comparison's file name in the output folder.
const COMPARISON_FILE: &str = "secure_distance_comparison.json";

fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// The flags, checked.
struct Plan {
    threshold: Threshold,
    servers: Vec<NodeId>,
    params: SearchParams,
    images: Vec<PathBuf>,
    query: Option<(PathBuf, ImageHash)>,
}

fn plan(args: &ExperimentArgs) -> anyhow::Result<Plan> {
    let threshold = Threshold::from_usize(args.threshold, args.nodes).map_err(|e| {
        usage(format!(
            "--nodes {} --threshold {}: {e} (allowed: 2 ≤ T ≤ N ≤ 255)",
            args.nodes, args.threshold
        ))
    })?;
    let quorum = usize::from(threshold.search_quorum());
    if quorum > args.nodes {
        return Err(usage(format!(
            "--threshold {}: the secure ranking needs 2T − 1 = {quorum} servers but there are \
             only {} nodes (allowed: T ≤ (N + 1) / 2 = {})",
            args.threshold,
            args.nodes,
            args.nodes.div_ceil(2)
        )));
    }
    let servers: Vec<NodeId> = if args.mpc_servers.is_empty() {
        threshold.nodes().collect()
    } else {
        let mut servers = Vec::with_capacity(args.mpc_servers.len());
        for &id in &args.mpc_servers {
            let node = u8::try_from(id)
                .ok()
                .filter(|i| (1..=threshold.n()).contains(i))
                .and_then(|i| NodeId::new(i).ok())
                .ok_or_else(|| {
                    usage(format!(
                        "--mpc-servers: there is no node {id}; the nodes are 1 to {}",
                        args.nodes
                    ))
                })?;
            if servers.contains(&node) {
                return Err(usage(format!("--mpc-servers: node {id} is listed twice")));
            }
            servers.push(node);
        }
        servers
    };
    if servers.len() < quorum {
        let listed: Vec<String> = servers.iter().map(ToString::to_string).collect();
        return Err(usage(format!(
            "--mpc-servers {}: the secure ranking needs at least 2T − 1 = {quorum} servers for \
             T = {}, {} given",
            listed.join(","),
            args.threshold,
            servers.len()
        )));
    }
    if args.mpc_topk == 0 {
        return Err(usage("--mpc-topk must be at least 1"));
    }
    if args.mpc_max_hamming > 64 {
        return Err(usage(format!(
            "--mpc-max-hamming {}: a 64-bit hash's distances are 0 to 64",
            args.mpc_max_hamming
        )));
    }
    let params = SearchParams {
        topk: args.mpc_topk,
        min_band_votes: args.mpc_min_band_votes,
        max_hamming: args.mpc_max_hamming,
    };
    let folder = match &args.images {
        Some(dir) if dir.is_dir() => dir.clone(),
        Some(dir) => {
            return Err(usage(format!("--images {}: not a folder", dir.display())));
        }
        None => bundled_images()?,
    };
    let mut images = Vec::new();
    for entry in expand_paths(std::slice::from_ref(&folder)) {
        match entry {
            Ok(path) => images.push(path),
            Err((path, e)) => eprintln!("dealer-free-sis: {}: {e} (skipped)", path.display()),
        }
    }
    if images.is_empty() {
        return Err(usage(format!(
            "--images {}: no images in it (png, jpg, jpeg, gif, bmp, tif, tiff, webp)",
            folder.display()
        )));
    }
    let query = match args.mpc_query_image.clone() {
        None => None,
        Some(path) => Some((path.clone(), hash_query(&path)?)),
    };
    for &n in &args.dkg_nodes {
        if !(3..=255).contains(&n) {
            return Err(usage(format!(
                "--dkg-nodes: {n} nodes; the DKG figure takes 3 to 255"
            )));
        }
    }
    Ok(Plan {
        threshold,
        servers,
        params,
        images,
        query,
    })
}

fn hash_query(query_path: &Path) -> anyhow::Result<ImageHash> {
    std::fs::read(query_path)
        .map_err(|e| e.to_string())
        .and_then(|bytes| decode_luma(&bytes).map_err(|e| e.to_string()))
        .map(|img| phash(&img))
        .map_err(|e| {
            usage(format!(
                "--mpc-query-image {}: cannot read it as an image: {e}",
                query_path.display()
            ))
        })
}

pub(crate) fn run(args: &ExperimentArgs) -> anyhow::Result<Outcome> {
    let plan = plan(args)?;
    std::fs::create_dir_all(&args.out).map_err(|e| {
        usage(format!(
            "--out {}: cannot create the folder: {e}",
            args.out.display()
        ))
    })?;

    // The images, read and hashed in parallel (the owner's side).
    let loaded: Vec<_> = plan
        .images
        .par_iter()
        .map(|path| {
            let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
            let hash = decode_luma(&bytes).map_err(|e| e.to_string())?;
            Ok::<_, String>((path.clone(), bytes, phash(&hash)))
        })
        .collect();
    let mut files = Vec::with_capacity(loaded.len());
    let mut skipped = false;
    for (path, result) in plan.images.iter().zip(loaded) {
        match result {
            Ok(file) => files.push(file),
            Err(e) => {
                skipped = true;
                eprintln!("dealer-free-sis: {}: {e} (skipped)", path.display());
            }
        }
    }
    if files.is_empty() {
        return Err(usage("none of the images could be read"));
    }

    let figures = run_figures(args, &plan, &files)?;
    if let Some((query_path, query_hash)) = &plan.query {
        compare(args, &plan, &files, query_path, *query_hash)?;
    }
    println!("open {}", figures.display());
    Ok(if skipped {
        Outcome::PartialFailure
    } else {
        Outcome::Success
    })
}

/// The overhead figures: runs the experiment, writes every figure, `summary.md` and
/// `index.html`; returns the path of `index.html`.
fn run_figures(
    args: &ExperimentArgs,
    plan: &Plan,
    files: &[(PathBuf, Vec<u8>, ImageHash)],
) -> anyhow::Result<PathBuf> {
    let images: Vec<ExperimentImage> = files
        .iter()
        .map(|(path, bytes, hash)| ExperimentImage {
            name: display_name(path),
            bytes: bytes.clone(),
            hash: *hash,
        })
        .collect();
    let mut config = ExperimentConfig::new(plan.threshold, args.seed);
    if !args.dkg_nodes.is_empty() {
        config.dkg_nodes = args
            .dkg_nodes
            .iter()
            .filter_map(|n| u8::try_from(*n).ok())
            .collect();
    }
    let progress = ProgressBar::new(1).with_style(
        ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut current = String::new();
    let data = run_dealer_free_experiment(&config, &images, &mut |stage, done, total| {
        if stage != current {
            if !current.is_empty() {
                progress.finish();
            }
            current = stage.to_owned();
            progress.reset();
            progress.set_prefix(stage.to_owned());
        }
        progress.set_length(total as u64);
        progress.set_position(done as u64);
    })?;
    progress.finish_and_clear();
    let mut written = Vec::new();
    for (figure, json) in experiment_figures(&data) {
        let files = write_figure(&args.out, &figure, &json)
            .with_context(|| format!("writing the figure {}", figure.name))?;
        eprintln!("wrote {}", files.svg.display());
        written.push((figure, files));
    }
    let run = RunInfo {
        command_line: std::env::args().collect::<Vec<_>>().join(" "),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        machine: machine(),
    };
    let summary = summary_markdown(&data, &run);
    let summary_path = args.out.join("summary.md");
    write_atomically(&summary_path, summary.as_bytes())
        .with_context(|| format!("writing {}", summary_path.display()))?;
    let index = write_index_html(&args.out, &written, &summary, "dealer-free-sis experiment")
        .context("writing index.html")?;
    Ok(index)
}

/// The CPU model and core count, from /proc/cpuinfo where there is one.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
    format!("{model}, {cores} cores, {}", std::env::consts::OS)
}

/// The secure-ranking comparison for the query image.
fn compare(
    args: &ExperimentArgs,
    plan: &Plan,
    files: &[(PathBuf, Vec<u8>, ImageHash)],
    query_path: &Path,
    query_hash: ImageHash,
) -> anyhow::Result<()> {
    let mut rng = ChaCha20Rng::seed_from_u64(args.seed);
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
    let target = args.out.join(COMPARISON_FILE);
    write_atomically(&target, comparison.to_json()?.as_bytes())
        .with_context(|| format!("writing {}", target.display()))?;
    print_side_by_side(&comparison)?;
    println!("wrote {}", target.display());
    Ok(())
}

fn display_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
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
