//! The `scaling` data: how Stage-1 and Stage-2 grow with the number of nodes and with the
//! number of stored images, with the fitted exponent `b` of `cost ≈ a·x^b` of each.
//!
//! * **Nodes** (figure `scaling_nodes`). For each `n` of
//!   [`ScaleConfig::nodes`](super::ScaleConfig) with `t = ⌈n/2⌉` (the largest threshold
//!   whose secure search, `2t − 1` servers, fits in `n`): the DKG's key among `n` nodes, then
//!   Stage-1 over the first [`NODE_RUN_IMAGES`] images and one secure query with its
//!   retrieval (Stage-2) among all `n` nodes.
//! * **Stored images** (figure `scaling`). At the experiment's `(t, n)`, one deployment grows
//!   to each count of [`ScaleConfig::images`](super::ScaleConfig): the experiment's real
//!   images first, then synthetic ones (a random pHash drawn from the seed and a
//!   [`SYNTHETIC_FILE_LEN`]-byte random file), all ingested through the same Stage-1 as the
//!   real ones. At each count one secure query for a real image stored at every count runs
//!   among all nodes, with its retrieval. Stage-1 is reported for the synthetic images (so
//!   that its growth is that of the protocol, not of the sample files' sizes), the real
//!   images' Stage-1 apart.
//!
//! Stage-2 is reported in two parts: the **search** (query tokens, candidate lookup, checked
//! masks, distance shares, opening) and the **retrieval** of the best match
//! ([`RETRIEVAL_ROUNDS`]). Every count, message and byte is a function of the configuration,
//! the images and the seed; measured times sit under keys ending in `_ms` (the fitted time
//! exponents under `timing_ms`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use phr_sis::{ImageHash, NodeId, Threshold};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::Serialize;
use serde_json::{Value, json};

use super::dkg_sizes::round3;
use super::stages::{self, Ingested};
use super::{ExperimentConfig, ExperimentImage, loglog_slope, ms};
use crate::SimError;
use crate::deployment::{IngestImage, IngestOptions, IngestReport, LocalDeployment};
use crate::figures::{Figure, Series};
use crate::network::NetworkModel;
use crate::simulator::DealerFreeSimulator;
use crate::trace::{Stage, StageRecorder, Trace};

/// Real images ingested in each run of the node sweep.
pub const NODE_RUN_IMAGES: usize = 4;

/// Bytes of a synthetic image's file.
pub const SYNTHETIC_FILE_LEN: usize = 64;

/// The most stored images a scale run takes.
pub const MAX_SCALE_IMAGES: usize = 200_000;

/// One stage's totals in one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageCost {
    /// Messages delivered.
    pub messages: usize,
    /// Bytes delivered.
    pub bytes: usize,
    /// CPU of all parties (measured).
    pub cpu_ms: f64,
    /// Latency under the WAN preset (measured CPU and the model).
    pub wan_ms: f64,
}

/// The rounds of Stage-2 that retrieve the best match; the others are the search.
pub const RETRIEVAL_ROUNDS: [&str; 3] = ["share-request", "share-response", "reconstruct"];

impl StageCost {
    fn of(trace: &Trace, stage: Stage, seed: u64) -> StageCost {
        Self::of_rounds(trace, stage, seed, |_| true)
    }

    /// The totals of the rounds of `stage` that `keep` selects by name.
    fn of_rounds(trace: &Trace, stage: Stage, seed: u64, keep: impl Fn(&str) -> bool) -> StageCost {
        let rounds = trace.round_summaries(stage);
        let kept = || rounds.iter().filter(|r| keep(&r.round));
        let latency = NetworkModel::wan().stage_latency(trace, stage, seed);
        StageCost {
            messages: kept().map(|r| r.messages).sum(),
            bytes: kept().map(|r| r.bytes).sum(),
            cpu_ms: ms(Duration::from_nanos(kept().map(|r| r.cpu_ns).sum())),
            wan_ms: ms(latency
                .per_round
                .iter()
                .filter(|(name, _)| keep(name))
                .map(|(_, d)| *d)
                .sum()),
        }
    }

    fn search(trace: &Trace, seed: u64) -> StageCost {
        Self::of_rounds(trace, Stage::Stage2, seed, |r| {
            !RETRIEVAL_ROUNDS.contains(&r)
        })
    }

    fn retrieval(trace: &Trace, seed: u64) -> StageCost {
        Self::of_rounds(trace, Stage::Stage2, seed, |r| {
            RETRIEVAL_ROUNDS.contains(&r)
        })
    }
}

/// One node count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodesRow {
    /// Nodes.
    pub n: u8,
    /// Threshold, `⌈n/2⌉`.
    pub t: u8,
    /// Images ingested.
    pub images: usize,
    /// Candidates the query ranked.
    pub candidates: usize,
    /// Stage-1 over the images.
    pub stage1: StageCost,
    /// Stage-2's search: query tokens, candidate lookup, secure ranking.
    pub search: StageCost,
    /// Stage-2's retrieval of the best match.
    pub retrieval: StageCost,
}

/// One stored-image count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImagesRow {
    /// Images stored.
    pub stored: usize,
    /// Of them, synthetic.
    pub synthetic: usize,
    /// Candidates the query ranked.
    pub candidates: usize,
    /// Stage-1 of the synthetic images stored so far (cumulative; the real images'
    /// Stage-1 is [`ScalingData::real_stage1`]).
    pub stage1: StageCost,
    /// Stage-1 bytes per synthetic image.
    pub stage1_bytes_per_image: f64,
    /// Stage-2's search over everything stored: query tokens, candidate lookup, secure
    /// ranking.
    pub search: StageCost,
    /// Stage-2's retrieval of the best match.
    pub retrieval: StageCost,
}

/// How each cost grows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScalingData {
    /// Threshold of the stored-image sweep.
    pub t: u8,
    /// Nodes of the stored-image sweep.
    pub n: u8,
    /// The node sweep.
    pub by_nodes: Vec<NodesRow>,
    /// The stored-image sweep.
    pub by_images: Vec<ImagesRow>,
    /// Stage-1 of the real images of the stored-image sweep (ingested first).
    pub real_stage1: Option<StageCost>,
    /// Fitted exponents of the counts (`bytes ≈ a·x^b`, messages, candidates).
    pub exponents: BTreeMap<String, f64>,
    /// Fitted exponents of the measured times.
    pub timing_ms: BTreeMap<String, f64>,
}

/// The threshold of the node sweep for `n`: `⌈n/2⌉`, at least 2.
#[must_use]
pub fn node_sweep_threshold(n: u8) -> u8 {
    n.div_ceil(2).max(2)
}

/// The scale runs of `config`.
pub(crate) fn run(
    config: &ExperimentConfig,
    images: &[ExperimentImage],
    progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<ScalingData, SimError> {
    let query = images.len() / 2;
    let mut by_nodes = Vec::new();
    let nodes: BTreeSet<u8> = config.scale.nodes.iter().copied().collect();
    let steps = nodes.len() + config.scale.images.len();
    for (i, &n) in nodes.iter().enumerate() {
        progress("scale", i, steps);
        by_nodes.push(node_run(config, images, n)?);
    }
    let counts: BTreeSet<usize> = config
        .scale
        .images
        .iter()
        .copied()
        .filter(|c| (1..=MAX_SCALE_IMAGES).contains(c))
        .collect();
    let (by_images, real_stage1) = images_runs(config, images, query, &counts, &mut |done| {
        progress("scale", nodes.len() + done, steps);
    })?;
    progress("scale", steps, steps);

    let mut exponents = BTreeMap::new();
    let mut timing_ms = BTreeMap::new();
    let fit = |pts: Vec<(f64, f64)>| round3(loglog_slope(&pts));
    type Part = fn(&NodesRow) -> &StageCost;
    if by_nodes.len() >= 2 {
        let parts: [(&str, Part); 3] = [
            ("Stage-1", |r| &r.stage1),
            ("search", |r| &r.search),
            ("retrieval", |r| &r.retrieval),
        ];
        for (what, cost) in parts {
            let pts = |v: fn(&StageCost) -> f64| -> Vec<(f64, f64)> {
                by_nodes
                    .iter()
                    .map(|r| (f64::from(r.n), v(cost(r))))
                    .collect()
            };
            exponents.insert(format!("{what} bytes vs n"), fit(pts(|c| c.bytes as f64)));
            exponents.insert(
                format!("{what} messages vs n"),
                fit(pts(|c| c.messages as f64)),
            );
            timing_ms.insert(format!("{what} CPU vs n"), fit(pts(|c| c.cpu_ms)));
        }
    }
    // The stored-image fits start where synthetic images are stored.
    let synthetic: Vec<&ImagesRow> = by_images.iter().filter(|r| r.synthetic > 0).collect();
    if synthetic.len() >= 2 {
        let pts = |v: fn(&ImagesRow) -> f64| -> Vec<(f64, f64)> {
            synthetic.iter().map(|r| (r.stored as f64, v(r))).collect()
        };
        // Stage-1 of the synthetic images against their own number.
        let own = |v: fn(&ImagesRow) -> f64| -> Vec<(f64, f64)> {
            synthetic
                .iter()
                .map(|r| (r.synthetic as f64, v(r)))
                .collect()
        };
        exponents.insert(
            "Stage-1 bytes vs synthetic images".to_owned(),
            fit(own(|r| r.stage1.bytes as f64)),
        );
        exponents.insert(
            "search bytes vs stored images".to_owned(),
            fit(pts(|r| r.search.bytes as f64)),
        );
        exponents.insert(
            "candidates vs stored images".to_owned(),
            fit(pts(|r| r.candidates as f64)),
        );
        timing_ms.insert(
            "Stage-1 CPU vs synthetic images".to_owned(),
            fit(own(|r| r.stage1.cpu_ms)),
        );
        timing_ms.insert(
            "search CPU vs stored images".to_owned(),
            fit(pts(|r| r.search.cpu_ms)),
        );
    }
    Ok(ScalingData {
        t: config.threshold.t(),
        n: config.threshold.n(),
        by_nodes,
        by_images,
        real_stage1,
        exponents,
        timing_ms,
    })
}

/// A seed for one part of the scale runs.
fn seed_for(config: &ExperimentConfig, part: u64) -> u64 {
    config.seed ^ 0x5ca1_e000_0000_0000 ^ part
}

/// One node count: DKG, Stage-1 of the first images, one query.
fn node_run(
    config: &ExperimentConfig,
    images: &[ExperimentImage],
    n: u8,
) -> Result<NodesRow, SimError> {
    let th = Threshold::new(node_sweep_threshold(n), n)
        .map_err(|e| SimError::Params(format!("scale nodes {n}: {e}")))?;
    let seed = seed_for(config, u64::from(n));
    let mut sim = DealerFreeSimulator::new(th, seed);
    sim.run_dkg(&BTreeMap::new(), &BTreeSet::new())?;
    let key = sim
        .key_material()
        .cloned()
        .ok_or_else(|| SimError::Dkg(format!("the DKG among {n} nodes left no key")))?;
    let used = &images[..images.len().min(NODE_RUN_IMAGES)];
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut trace = Trace::new();
    let ingested = stages::ingest(
        th,
        &key,
        used,
        &IngestOptions::default(),
        &mut rng,
        &mut trace,
    )?;
    let all: Vec<NodeId> = th.nodes().collect();
    let found = stages::search(
        &ingested,
        used,
        used.len() / 2,
        &all,
        &config.params,
        &mut rng,
        &mut trace,
    )?;
    if !found.ranking.is_empty() && !found.retrieved {
        return Err(SimError::Corrupt(format!(
            "the retrieval among {n} nodes did not give the stored image"
        )));
    }
    Ok(NodesRow {
        n,
        t: th.t(),
        images: used.len(),
        candidates: found.candidates,
        stage1: StageCost::of(&trace, Stage::Stage1, seed),
        search: StageCost::search(&trace, seed),
        retrieval: StageCost::retrieval(&trace, seed),
    })
}

/// A synthetic image: a random pHash and a random file.
fn synthetic<R: Rng>(rng: &mut R) -> ExperimentImage {
    let mut bytes = vec![0; SYNTHETIC_FILE_LEN];
    rng.fill_bytes(&mut bytes);
    ExperimentImage {
        name: String::new(),
        bytes,
        hash: ImageHash(rng.random()),
    }
}

/// One deployment grown to each of `counts` stored images, queried at each; and the
/// Stage-1 cost of its real images.
fn images_runs(
    config: &ExperimentConfig,
    images: &[ExperimentImage],
    query: usize,
    counts: &BTreeSet<usize>,
    progress: &mut dyn FnMut(usize),
) -> Result<(Vec<ImagesRow>, Option<StageCost>), SimError> {
    let Some(&largest) = counts.last() else {
        return Ok((Vec::new(), None));
    };
    let th = config.threshold;
    let seed = seed_for(config, 0);
    let mut sim = DealerFreeSimulator::new(th, seed);
    sim.run_dkg(&BTreeMap::new(), &BTreeSet::new())?;
    let key = sim
        .key_material()
        .cloned()
        .ok_or_else(|| SimError::Dkg("the DKG left no key".into()))?;
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut synthetic_rng = ChaCha20Rng::seed_from_u64(seed ^ 1);
    // The real images first, then synthetic ones, in ingest order.
    let real = images.len().min(largest);
    let mut all: Vec<ExperimentImage> = images[..real].to_vec();
    all.extend((real..largest).map(|_| synthetic(&mut synthetic_rng)));
    // A query image stored at every count.
    let smallest = counts.first().copied().unwrap_or(1);
    let query = query.min(real.min(smallest).saturating_sub(1));

    let deployment = LocalDeployment::from_key_material(th, &key, None, &mut rng)?;
    let mut ingested = Ingested {
        deployment,
        report: IngestReport::default(),
        baseline: phr_sis::SearchableSISIndex::new(),
    };
    let mut real_trace = Trace::new();
    let mut synthetic_trace = Trace::new();
    let mut stored = 0;
    let mut rows = Vec::new();
    let nodes: Vec<NodeId> = th.nodes().collect();
    for (i, &count) in counts.iter().enumerate() {
        // Real images into one trace, synthetic ones into the other.
        for (from, to, trace) in [
            (stored.min(real), count.min(real), &mut real_trace),
            (stored.max(real), count.max(real), &mut synthetic_trace),
        ] {
            if from >= to {
                continue;
            }
            let batch = &all[from..to];
            let ingest: Vec<IngestImage<'_>> =
                batch.iter().map(ExperimentImage::as_ingest).collect();
            let mut rec = StageRecorder::new(trace, Stage::Stage1);
            let report = ingested.deployment.ingest_with(
                &ingest,
                &IngestOptions::default(),
                &mut rng,
                &mut rec,
            )?;
            ingested
                .baseline
                .insert_many(report.ids.iter().zip(batch).map(|(id, i)| (*id, i.hash)))
                .map_err(|e| SimError::Params(e.to_string()))?;
            ingested.report.ids.extend(report.ids);
        }
        stored = count;
        let mut trace = Trace::new();
        let found = stages::search(
            &ingested,
            &all,
            query,
            &nodes,
            &config.params,
            &mut rng,
            &mut trace,
        )?;
        if !found.ranking.is_empty() && !found.retrieved {
            return Err(SimError::Corrupt(format!(
                "the retrieval over {count} stored images did not give the stored image"
            )));
        }
        let s1 = StageCost::of(&synthetic_trace, Stage::Stage1, seed);
        let synthetic = count.saturating_sub(real);
        rows.push(ImagesRow {
            stored: count,
            synthetic,
            candidates: found.candidates,
            stage1_bytes_per_image: if synthetic == 0 {
                0.0
            } else {
                (s1.bytes as f64 / synthetic as f64 * 10.0).round() / 10.0
            },
            stage1: s1,
            search: StageCost::search(&trace, seed),
            retrieval: StageCost::retrieval(&trace, seed),
        });
        progress(i + 1);
    }
    Ok((rows, Some(StageCost::of(&real_trace, Stage::Stage1, seed))))
}

/// The figures of `data`, with their data: `scaling`, bytes against the stored images, and
/// `scaling_nodes`, bytes against `n`, each on log–log axes with the fitted exponents in the
/// notes.
#[must_use]
pub fn figures(data: &ScalingData) -> Vec<(Figure, Value)> {
    let value = serde_json::to_value(data).unwrap_or_else(|_| json!({}));
    let mut out = Vec::new();
    let mut f = Figure::lines(
        "scaling",
        format!(
            "Bytes on the wire vs stored images (t = {}, n = {})",
            data.t, data.n
        ),
        "stored images (log scale)",
        "bytes on the wire (log scale)",
    )
    .with_log_axes(true, true);
    let pts = |v: fn(&ImagesRow) -> f64| -> Vec<(f64, f64)> {
        data.by_images
            .iter()
            .filter(|r| r.synthetic > 0)
            .map(|r| (r.stored as f64, v(r)))
            .collect()
    };
    f.series = vec![
        Series::line("Stage-1, synthetic images", pts(|r| r.stage1.bytes as f64)),
        Series::line("Stage-2 search (one query)", pts(|r| r.search.bytes as f64)),
        Series::line(
            "Stage-2 retrieval (best match)",
            pts(|r| r.retrieval.bytes as f64),
        ),
    ];
    for (what, b) in data
        .exponents
        .iter()
        .filter(|(k, _)| k.ends_with(" images"))
    {
        f.notes.push(format!("{what}: grows as x^{b:.2}"));
    }
    if let (Some(first), Some(last)) = (data.by_images.first(), data.by_images.last()) {
        f.notes.push(format!(
            "{} → {} stored images: {} → {} candidates per query; search WAN latency {:.0} → {:.0} ms",
            first.stored,
            last.stored,
            first.candidates,
            last.candidates,
            first.search.wan_ms,
            last.search.wan_ms
        ));
    }
    if let Some(real) = &data.real_stage1 {
        f.notes.push(format!(
            "stored first: the real images, Stage-1 {} bytes; then synthetic images: a random pHash and a {SYNTHETIC_FILE_LEN}-byte file each (its shares padded to {} bytes)",
            real.bytes,
            phr_sis::share::padding::MIN_BUCKET
        ));
    }
    for (what, b) in data
        .timing_ms
        .iter()
        .filter(|(k, _)| k.ends_with(" images"))
    {
        f.notes
            .push(format!("{what} (measured): grows as x^{b:.2}"));
    }
    out.push((f, value.clone()));

    let mut f = Figure::lines(
        "scaling_nodes",
        format!("Bytes on the wire vs nodes (t = ceil(n/2), {NODE_RUN_IMAGES} images)"),
        "nodes n (log scale)",
        "bytes on the wire (log scale)",
    )
    .with_log_axes(true, true);
    let pts = |v: fn(&NodesRow) -> f64| -> Vec<(f64, f64)> {
        data.by_nodes
            .iter()
            .map(|r| (f64::from(r.n), v(r)))
            .collect()
    };
    f.series = vec![
        Series::line("Stage-1", pts(|r| r.stage1.bytes as f64)),
        Series::line("Stage-2 search (one query)", pts(|r| r.search.bytes as f64)),
        Series::line(
            "Stage-2 retrieval (best match)",
            pts(|r| r.retrieval.bytes as f64),
        ),
    ];
    for (what, b) in data.exponents.iter().filter(|(k, _)| k.ends_with("vs n")) {
        f.notes.push(format!("{what}: grows as n^{b:.2}"));
    }
    for (what, b) in data.timing_ms.iter().filter(|(k, _)| k.ends_with("vs n")) {
        f.notes
            .push(format!("{what} (measured): grows as n^{b:.2}"));
    }
    out.push((f, value));
    out
}
