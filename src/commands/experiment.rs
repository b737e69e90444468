//! `dealer-free-sis experiment`: the dealer-free experiment on a folder of images: the figure
//! sets `--figures` names (default: all), and with `--mpc-query-image` the secure ranking
//! compared with the plaintext baseline (`secure_distance_comparison.json`, [`comparison`];
//! alone, unless figure sets are named); `summary.md` and `index.html` over whatever ran.
//!
//! The settings come from the flags over an optional `--config` TOML file over the defaults
//! ([`config`]). Every setting is checked, the query image hashed and the output folder
//! created and probed for writing before any other work; a usage error then exits 2 with
//! nothing written. `--check` makes the same checks, the output folder's included (folders it
//! creates for the probe are removed again), and runs nothing. The JSON is written to a
//! temporary file and renamed into place, so an interrupted run leaves no half-written file.
//!
//! With `--cluster DIR` the run also measures Stage-1 and Stage-2 on the running cluster of
//! DIR, with (t, n) read from it, and writes `cluster_stages.csv` and the `cluster_stages`
//! figure beside the simulated costs ([`cluster`]), with its section in `summary.md`
//! ([`sections`]). `cluster_stages` is not a figure set of `--figures`: `--cluster` writes it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Context;
use dealer_free_sim::experiment::figures::experiment_figures;
use dealer_free_sim::experiment::{
    ExperimentConfig, ExperimentImage, FIGURE_SET_NAMES, FigureSet, STAGE_NAMES, parse_stage,
    run_dealer_free_experiment,
};
use dealer_free_sim::figures::write_figure;
use dealer_free_sim::network::{NETWORK_PRESET_NAMES, NetworkPreset};
use dealer_free_sim::report::write_index_html;
use dealer_free_sim::summary::{RunInfo, Section, comparison_section, summary_markdown};
use dealer_free_sim::trace::Stage;
use indicatif::{ProgressBar, ProgressStyle};
use phr_sis::phash::{decode_luma, phash};
use phr_sis::{ImageHash, NodeId, SearchParams, Threshold};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;

use self::config::Settings;
use super::{bundled_images, expand_paths, write_atomically};
use crate::cli::ExperimentArgs;
use crate::{Outcome, UsageError};

mod cluster;
mod comparison;
mod config;
mod sections;

/// The largest batch of the batching figure (images per token request).
const MAX_BATCH: usize = 1 << 16;

/// The most stored images of the scaling figure.
const MAX_SCALE_IMAGES: usize = 200_000;

fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// The settings, checked.
struct Plan {
    threshold: Threshold,
    seed: u64,
    out: PathBuf,
    servers: Vec<NodeId>,
    params: SearchParams,
    images_folder: PathBuf,
    images: Vec<PathBuf>,
    query: Option<(PathBuf, ImageHash)>,
    config: ExperimentConfig,
    cluster: Option<ClusterPlan>,
}

/// `--cluster`: the cluster measured beside the simulation.
struct ClusterPlan {
    dir: PathBuf,
    /// Stage-2 queries (the first images).
    queries: usize,
    /// (t, n) were read from the folder (not with `--check` before `cluster up`).
    shape_known: bool,
    /// The user asked for these figure sets (the cluster run needs both computed).
    wants_latency: bool,
    wants_batching: bool,
    /// The connection, checked (not with `--check`).
    conn: Option<cluster::Connected>,
}

/// Parses every name of a list setting; at least one, repeats dropped (first kept).
fn names<T: PartialEq, E: std::fmt::Display>(
    s: &Settings,
    flag: &'static str,
    what: &str,
    accepted: &str,
    list: &[String],
    parse: impl Fn(&str) -> Result<T, E>,
) -> anyhow::Result<Vec<T>> {
    if list.is_empty() {
        return Err(usage(format!(
            "{}: name at least one {what} (of {accepted})",
            s.label(flag)
        )));
    }
    let mut out = Vec::with_capacity(list.len());
    for name in list {
        let item = parse(name.trim()).map_err(|e| usage(format!("{}: {e}", s.label(flag))))?;
        if !out.contains(&item) {
            out.push(item);
        }
    }
    Ok(out)
}

/// Checks a list of counts against `range`; at least one, returned sorted without repeats.
fn counts<T: Copy + Ord + std::fmt::Display>(
    s: &Settings,
    flag: &'static str,
    list: &[T],
    range: std::ops::RangeInclusive<T>,
    what: &str,
) -> anyhow::Result<Vec<T>> {
    if list.is_empty() {
        return Err(usage(format!(
            "{}: give at least one value ({} to {})",
            s.label(flag),
            range.start(),
            range.end()
        )));
    }
    if let Some(bad) = list.iter().find(|v| !range.contains(v)) {
        return Err(usage(format!(
            "{}: {bad} {what}; allowed: {} to {}",
            s.label(flag),
            range.start(),
            range.end()
        )));
    }
    let mut sorted = list.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    Ok(sorted)
}

/// `--figures`: `none` (or an empty list) for no figure set, else figure set names; `cluster`
/// is refused with where its figure comes from.
fn figure_sets(s: &Settings, list: &[String]) -> anyhow::Result<BTreeSet<FigureSet>> {
    let list: Vec<&str> = list.iter().map(|n| n.trim()).collect();
    if list.is_empty() || list == ["none"] {
        return Ok(BTreeSet::new());
    }
    if list.contains(&"none") {
        return Err(usage(format!(
            "{}: none selects no figure set; name it alone",
            s.show("figures", list.join(","))
        )));
    }
    let mut sets = BTreeSet::new();
    for name in list {
        if name == cluster::FIGURE_SET {
            return Err(usage(format!(
                "{}: {name:?} is not a figure set: --cluster DIR writes the {} figure; expected \
                 none or some of: {FIGURE_SET_NAMES}",
                s.label("figures"),
                cluster::FIGURE_NAME
            )));
        }
        let set = name
            .parse::<FigureSet>()
            .map_err(|e| usage(format!("{}: {e}; or none", s.label("figures"))))?;
        sets.insert(set);
    }
    Ok(sets)
}

/// Checks every setting, hashes the query image and creates the output folder (with
/// `--check`, creates and probes it as the run would, then removes the folders it created),
/// in that order: a usage error before the last step leaves nothing written.
fn plan(s: &Settings) -> anyhow::Result<Plan> {
    // With `--check` a cluster folder not created yet is fine: (t, n) are then not known.
    let cluster_shape = match &s.cluster {
        Some(dir) if s.check && !cluster::exists(dir) => None,
        Some(dir) => Some(cluster::shape(dir)?),
        None => None,
    };
    let (mut t_wanted, mut n_wanted) = (s.threshold, s.nodes);
    if let Some(shape) = cluster_shape {
        let (t, n) = (usize::from(shape.t()), usize::from(shape.n()));
        let differs = (s.shape_given.0 && s.nodes != n) || (s.shape_given.1 && s.threshold != t);
        if differs {
            return Err(usage(format!(
                "{} {}: the cluster at {} has n = {n}, t = {t}; leave them out with --cluster",
                s.show("nodes", s.nodes),
                s.show("threshold", s.threshold),
                s.cluster.as_deref().unwrap_or(Path::new("")).display()
            )));
        }
        (t_wanted, n_wanted) = (t, n);
    }
    let threshold = Threshold::from_usize(t_wanted, n_wanted).map_err(|e| {
        usage(format!(
            "{} {}: {e} (allowed: 2 ≤ T ≤ N ≤ 255)",
            s.show("nodes", s.nodes),
            s.show("threshold", s.threshold)
        ))
    })?;
    let quorum = usize::from(threshold.search_quorum());
    if quorum > s.nodes {
        return Err(usage(format!(
            "{}: the secure ranking needs 2T − 1 = {quorum} servers but there are only {} \
             nodes (allowed: T ≤ (N + 1) / 2 = {})",
            s.show("threshold", s.threshold),
            s.nodes,
            s.nodes.div_ceil(2)
        )));
    }
    let servers: Vec<NodeId> = match &s.mpc_servers {
        None => threshold.nodes().collect(),
        Some(ids) => {
            let mut servers = Vec::with_capacity(ids.len());
            for &id in ids {
                let node = u8::try_from(id)
                    .ok()
                    .filter(|i| (1..=threshold.n()).contains(i))
                    .and_then(|i| NodeId::new(i).ok())
                    .ok_or_else(|| {
                        usage(format!(
                            "{}: there is no node {id}; the nodes are 1 to {}",
                            s.label("mpc-servers"),
                            s.nodes
                        ))
                    })?;
                if servers.contains(&node) {
                    return Err(usage(format!(
                        "{}: node {id} is listed twice",
                        s.label("mpc-servers")
                    )));
                }
                servers.push(node);
            }
            servers
        }
    };
    if servers.len() < quorum {
        let listed: Vec<String> = servers.iter().map(ToString::to_string).collect();
        return Err(usage(format!(
            "{}: the secure ranking needs at least 2T − 1 = {quorum} servers for T = {}, {} \
             given",
            s.show("mpc-servers", listed.join(",")),
            s.threshold,
            servers.len()
        )));
    }
    if s.mpc_topk == 0 {
        return Err(usage(format!("{} must be at least 1", s.label("mpc-topk"))));
    }
    if s.mpc_max_hamming > 64 {
        return Err(usage(format!(
            "{}: a 64-bit hash's distances are 0 to 64",
            s.show("mpc-max-hamming", s.mpc_max_hamming)
        )));
    }
    let params = SearchParams {
        topk: s.mpc_topk,
        min_band_votes: s.mpc_min_band_votes,
        max_hamming: s.mpc_max_hamming,
    };

    let mut config = ExperimentConfig::new(threshold, s.seed);
    config.figures = match &s.figures {
        Some(list) => figure_sets(s, list)?,
        // The comparison or the cluster alone, unless figure sets are named.
        None if s.mpc_query_image.is_some() || s.cluster.is_some() => BTreeSet::new(),
        None => config.figures,
    };
    if config.figures.is_empty() && s.mpc_query_image.is_none() && s.cluster.is_none() {
        return Err(usage(format!(
            "{}: no figure set, and neither --mpc-query-image nor --cluster: nothing to run \
             (name figure sets: {FIGURE_SET_NAMES})",
            s.show(
                "figures",
                if s.figures.as_ref().is_some_and(Vec::is_empty) {
                    "[]"
                } else {
                    "none"
                }
            )
        )));
    }
    if let Some(list) = &s.stages {
        config.stages = names(s, "stages", "stage", STAGE_NAMES, list, parse_stage)?
            .into_iter()
            .collect();
    }
    if let Some(list) = &s.network {
        config.networks = names(
            s,
            "network",
            "network preset",
            NETWORK_PRESET_NAMES,
            list,
            |n| n.parse::<NetworkPreset>(),
        )?;
    }
    if let Some(list) = &s.dkg_nodes {
        config.dkg_nodes = counts(s, "dkg-nodes", list, 3..=255, "nodes")?
            .into_iter()
            .filter_map(|n| u8::try_from(n).ok())
            .collect();
    }
    if let Some(list) = &s.batch_sizes {
        config.batch_sizes = counts(
            s,
            "batch-sizes",
            list,
            1..=MAX_BATCH,
            "images per token request",
        )?;
    }
    if let Some(list) = &s.scale_nodes {
        config.scale.nodes = counts(s, "scale-nodes", list, 3..=64, "nodes")?
            .into_iter()
            .filter_map(|n| u8::try_from(n).ok())
            .collect();
    }
    if let Some(list) = &s.scale_images {
        config.scale.images = counts(
            s,
            "scale-images",
            list,
            1..=MAX_SCALE_IMAGES,
            "stored images",
        )?;
    }

    let folder = match &s.images {
        Some(dir) if dir.is_dir() => dir.clone(),
        Some(dir) => {
            return Err(usage(format!(
                "{}: not a folder",
                s.show("images", dir.display())
            )));
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
            "{}: no images in it (png, jpg, jpeg, gif, bmp, tif, tiff, webp)",
            s.show("images", folder.display())
        )));
    }
    let query = match &s.mpc_query_image {
        None => None,
        Some(path) => Some((path.clone(), hash_query(s, path)?)),
    };
    let cluster = match &s.cluster {
        None => None,
        Some(dir) => {
            let queries = match s.cluster_queries {
                None => cluster::DEFAULT_QUERIES,
                Some(q) => usize::try_from(q).unwrap_or(usize::MAX),
            }
            .min(images.len());
            if queries == 0 {
                return Err(usage(format!(
                    "{} must be at least 1",
                    s.label("cluster-queries")
                )));
            }
            // The comparison needs the simulated Stage-1 at batch 1 and Stage-2's latency.
            let wants_latency = config.wants(FigureSet::StageLatency);
            let wants_batching = config.wants(FigureSet::Batching);
            config.figures.insert(FigureSet::StageLatency);
            config.figures.insert(FigureSet::Batching);
            if !wants_batching {
                config.batch_sizes = vec![1];
            } else if !config.batch_sizes.contains(&1) {
                config.batch_sizes.insert(0, 1);
            }
            config.stages.insert(Stage::Stage1);
            config.stages.insert(Stage::Stage2);
            Some(ClusterPlan {
                dir: dir.clone(),
                shape_known: cluster_shape.is_some(),
                queries,
                wants_latency,
                wants_batching,
                conn: if s.check {
                    None
                } else {
                    Some(cluster::connect(dir)?)
                },
            })
        }
    };
    check_out(s)?;
    Ok(Plan {
        threshold,
        seed: s.seed,
        out: s.out.clone(),
        servers,
        params,
        images_folder: folder,
        images,
        query,
        config,
        cluster,
    })
}

/// Checks that the output folder can be written: creates it and creates and removes a probe
/// file in it. With `--check` the folders created for this are removed again (innermost
/// first), so the check leaves nothing behind and fails exactly where the run would.
fn check_out(s: &Settings) -> anyhow::Result<()> {
    let out = &s.out;
    let fail = |e: &dyn std::fmt::Display| {
        usage(format!(
            "{}: cannot write there: {e}",
            s.show("out", out.display())
        ))
    };
    // The folders the check creates: `out` and its missing ancestors.
    let created: Vec<&Path> = if s.check {
        out.ancestors()
            .take_while(|a| !a.as_os_str().is_empty() && !a.exists())
            .collect()
    } else {
        Vec::new()
    };
    let probe = out.join(format!(".dealer-free-sis-probe-{}", std::process::id()));
    let result = std::fs::create_dir_all(out)
        .and_then(|()| {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&probe)
        })
        .and_then(|_| std::fs::remove_file(&probe));
    for dir in &created {
        // Only empty folders go; one that something else filled meanwhile stays.
        let _ = std::fs::remove_dir(dir);
    }
    result.map_err(|e| fail(&e))
}

/// The resolved settings as a TOML config file (what `--check` prints).
fn resolved_toml(plan: &Plan) -> String {
    fn list<T: std::fmt::Display>(items: impl IntoIterator<Item = T>, quote: bool) -> String {
        let items: Vec<String> = items
            .into_iter()
            .map(|i| {
                if quote {
                    format!("{:?}", i.to_string())
                } else {
                    i.to_string()
                }
            })
            .collect();
        format!("[{}]", items.join(", "))
    }
    let c = &plan.config;
    let stage = |s: &Stage| match s {
        Stage::DealerSetup => "dealer_setup",
        Stage::Dkg => "dkg",
        Stage::Stage1 => "stage1",
        Stage::Stage2 => "stage2",
    };
    let mut t = String::new();
    let mut line = |k: &str, v: String| {
        t.push_str(k);
        t.push_str(" = ");
        t.push_str(&v);
        t.push('\n');
    };
    line("nodes", plan.threshold.n().to_string());
    line("threshold", plan.threshold.t().to_string());
    line("seed", plan.seed.to_string());
    line(
        "images",
        format!("{:?}", plan.images_folder.display().to_string()),
    );
    line("out", format!("{:?}", plan.out.display().to_string()));
    // The figure sets asked for (not the ones `--cluster` adds for its comparison).
    let shown = c.figures.iter().filter(|f| match (&plan.cluster, **f) {
        (Some(cp), FigureSet::StageLatency) => cp.wants_latency,
        (Some(cp), FigureSet::Batching) => cp.wants_batching,
        _ => true,
    });
    line("figures", list(shown, true));
    line("stages", list(c.stages.iter().map(stage), true));
    line("network", list(c.networks.iter(), true));
    line("dkg_nodes", list(c.dkg_nodes.iter(), false));
    line("batch_sizes", list(c.batch_sizes.iter(), false));
    line("scale_nodes", list(c.scale.nodes.iter(), false));
    line("scale_images", list(c.scale.images.iter(), false));
    if let Some(cp) = &plan.cluster {
        line("cluster", format!("{:?}", cp.dir.display().to_string()));
        line("cluster_queries", cp.queries.to_string());
        let shape = if cp.shape_known {
            format!(
                "n = {}, t = {} from its cluster.toml (nodes not contacted)",
                plan.threshold.n(),
                plan.threshold.t()
            )
        } else {
            "no cluster there yet: (t, n) will be read from it once `cluster up` made it".to_owned()
        };
        t.push_str(&format!(
            "# cluster: {shape}; Stage-1 per image, Stage-2 by the first {} images; writes the \
             cluster_stages figure; the simulated stage latency and Stage-1 at batch 1 are run \
             for the comparison\n",
            cp.queries
        ));
    }
    t.push_str("\n[mpc]\n");
    let mut line = |k: &str, v: String| {
        t.push_str(k);
        t.push_str(" = ");
        t.push_str(&v);
        t.push('\n');
    };
    if let Some((path, _)) = &plan.query {
        line("query_image", format!("{:?}", path.display().to_string()));
    }
    line("servers", list(plan.servers.iter(), false));
    line("topk", plan.params.topk.to_string());
    line("min_band_votes", plan.params.min_band_votes.to_string());
    line("max_hamming", plan.params.max_hamming.to_string());
    t
}

fn hash_query(s: &Settings, query_path: &Path) -> anyhow::Result<ImageHash> {
    std::fs::read(query_path)
        .map_err(|e| e.to_string())
        .and_then(|bytes| decode_luma(&bytes).map_err(|e| e.to_string()))
        .map(|img| phash(&img))
        .map_err(|e| {
            usage(format!(
                "{}: cannot read it as an image: {e}",
                s.show("mpc-query-image", query_path.display())
            ))
        })
}

pub(crate) fn run(args: &ExperimentArgs) -> anyhow::Result<Outcome> {
    let settings = Settings::resolve(args)?;
    let plan = plan(&settings)?;
    if settings.check {
        print!("{}", resolved_toml(&plan));
        println!(
            "# {} images; settings checked, nothing run",
            plan.images.len()
        );
        return Ok(Outcome::Success);
    }

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

    let (index, incomplete) = run_and_report(&plan, &files)?;
    let skipped = skipped || incomplete;
    println!("open {}", index.display());
    Ok(if skipped {
        Outcome::PartialFailure
    } else {
        Outcome::Success
    })
}

/// Runs what the plan asks for — the figure sets, with `--cluster` the measurements on the
/// cluster, with a query image the secure-ranking comparison — and writes its figures,
/// `summary.md` (a section for each of those, none for the rest) and `index.html`; returns
/// the path of `index.html` and whether some image was not stored on every node of the
/// cluster.
fn run_and_report(
    plan: &Plan,
    files: &[(PathBuf, Vec<u8>, ImageHash)],
) -> anyhow::Result<(PathBuf, bool)> {
    let images: Vec<ExperimentImage> = files
        .iter()
        .map(|(path, bytes, hash)| ExperimentImage {
            name: display_name(path),
            bytes: bytes.clone(),
            hash: *hash,
        })
        .collect();
    let progress = ProgressBar::new(1).with_style(
        ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut current = String::new();
    let data = run_dealer_free_experiment(&plan.config, &images, &mut |stage, done, total| {
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
    let mut data = data;
    let mut extra = Vec::new();
    let mut sections: Vec<Section> = Vec::new();
    let mut incomplete = false;
    if let Some(cp) = &plan.cluster {
        let (figure, json, section, partial) = run_cluster(plan, cp, files, &data)?;
        incomplete = partial;
        extra.push((figure, json));
        sections.push(section);
        if !cp.wants_latency {
            data.figures.remove(&FigureSet::StageLatency);
        }
        if !cp.wants_batching {
            data.figures.remove(&FigureSet::Batching);
        }
    }
    if let Some((query_path, query_hash)) = &plan.query {
        let comparison = comparison::compare(plan, files, query_path, *query_hash)?;
        sections.push(comparison_section(&comparison));
    }
    let mut written = Vec::new();
    for (figure, json) in experiment_figures(&data).into_iter().chain(extra) {
        let files = write_figure(&plan.out, &figure, &json)
            .with_context(|| format!("writing the figure {}", figure.name))?;
        eprintln!("wrote {}", files.svg.display());
        written.push((figure, files));
    }
    let run = RunInfo {
        command_line: std::env::args().collect::<Vec<_>>().join(" "),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        machine: machine(),
    };
    let summary = summary_markdown(&data, &run, &sections);
    let summary_path = plan.out.join("summary.md");
    write_atomically(&summary_path, summary.as_bytes())
        .with_context(|| format!("writing {}", summary_path.display()))?;
    let index = write_index_html(&plan.out, &written, &summary, "dealer-free-sis experiment")
        .context("writing index.html")?;
    Ok((index, incomplete))
}

/// `--cluster`: measures the stages on the cluster, writes `cluster_stages.csv` and returns
/// the comparison figure (written with the others), its section of `summary.md` and whether
/// some image was not stored on every node.
fn run_cluster(
    plan: &Plan,
    cp: &ClusterPlan,
    files: &[(PathBuf, Vec<u8>, ImageHash)],
    data: &dealer_free_sim::experiment::ExperimentData,
) -> anyhow::Result<(
    dealer_free_sim::figures::Figure,
    serde_json::Value,
    Section,
    bool,
)> {
    let Some(conn) = &cp.conn else {
        return Err(anyhow::anyhow!("the cluster was not connected"));
    };
    eprintln!(
        "measuring the cluster at {}: Stage-1 of {} images one at a time, Stage-2 by {} of them",
        cp.dir.display(),
        files.len(),
        cp.queries
    );
    let measured = cluster::measure(conn, files, cp.queries, &plan.config.params)?;
    let query_name = files
        .get(files.len() / 2)
        .map_or_else(String::new, |(p, _, _)| display_name(p));
    let rows = cluster::rows(data, &plan.config.networks, &measured, &query_name);
    let target = plan.out.join(format!("{}.csv", cluster::FIGURE_NAME));
    write_atomically(&target, cluster::csv(&rows).as_bytes())
        .with_context(|| format!("writing {}", target.display()))?;
    eprintln!("wrote {}", target.display());
    // The simulator's twin of the same run, for the bytes kind by kind.
    let images: Vec<(Vec<u8>, ImageHash)> = files.iter().map(|(_, b, h)| (b.clone(), *h)).collect();
    let mut rng = ChaCha20Rng::seed_from_u64(plan.seed);
    let twin = dealer_free_sim::twin::twin_run(
        plan.threshold,
        &images,
        cp.queries,
        &plan.config.params,
        &mut rng,
    )?;
    let byte_rows = cluster::byte_rows(&twin, &measured.wire);
    let bytes_target = plan.out.join("cluster_bytes.csv");
    write_atomically(&bytes_target, cluster::bytes_csv(&byte_rows).as_bytes())
        .with_context(|| format!("writing {}", bytes_target.display()))?;
    let unequal = byte_rows
        .iter()
        .filter(|r| r.sim.is_some_and(|s| s != r.cluster))
        .count();
    eprintln!(
        "wrote {} ({unequal} message kind(s) where the simulator and the cluster differ{})",
        bytes_target.display(),
        if measured.stored_before > 0 {
            ": the cluster held images before this run"
        } else {
            ""
        }
    );
    let m = &measured;
    println!(
        "cluster  Stage-1 per image: mean {:.1} ms, p50 {:.1}, p99 {:.1} ({} images); Stage-2 \
         per query + get: mean {:.1} ms, p50 {:.1}, p99 {:.1} ({} queries)",
        m.ingest.mean,
        m.ingest.p50,
        m.ingest.p99,
        m.ingest.samples,
        m.stage2.mean,
        m.stage2.p50,
        m.stage2.p99,
        m.stage2.samples
    );
    let (figure, json) = cluster::figure(&rows, &cp.dir, files.len(), cp.queries);
    let section = sections::cluster_section(&rows, &cp.dir, unequal);
    Ok((figure, json, section, m.incomplete > 0))
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

fn display_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
