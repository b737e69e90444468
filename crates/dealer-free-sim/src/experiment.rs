//! The dealer-free experiment: runs the real protocols in process, records every message,
//! and computes the data of each figure (`run_dealer_free_experiment`).
//!
//! * **stage_communication**: messages and bytes per stage and round, dealer-free vs
//!   dealer-based, for the configured `(t, n)` over the given images.
//! * **dkg_overhead**: DKG messages, bytes and CPU vs `n`, for two thresholds
//!   (`⌊n/2⌋ + 1` and `⌈n/3⌉ + 1`), beside the dealer's key setup; with the fitted exponent of
//!   each in `n`.
//! * **stage_latency**: each stage's latency under the LAN and WAN presets of
//!   [`NetworkModel`](crate::network::NetworkModel), both designs.
//! * **fault_tolerance**: nodes crash during the DKG, Stage-1 or Stage-2, up to `t`
//!   nodes misbehave in the DKG, DKG messages are dropped, messages are delayed: whether the
//!   DKG ends with a key, the ingest stores the images, the secure search gives the fault-free
//!   ranking and the retrieval the right bytes, and the latency of the stage hit; as a success
//!   matrix stage and fault × faulty nodes ([`fault_matrix`]).
//! * **batching**: Stage-1's messages, bytes and time vs images per token request, with and
//!   without padding ([`batching`]).
//! * **scaling**: how the stages' costs grow with `n` and the number of stored images, with
//!   fitted exponents ([`scale`]).
//!
//! [`ExperimentConfig::figures`] selects the figure sets (none: nothing is run) and
//! [`ExperimentConfig::stages`] the stages the stage figures show. The key setup is run once, by [`DealerFreeSimulator`]; the
//! deployment of Stage-1 and Stage-2 holds the key shares it produced.
//!
//! **The dealer-based design** is modelled from the same measurements: its key setup is
//! [`DealerFreeSimulator::run_dealer_setup`]; in Stage-1 the client's token request goes to the
//! dealer alone, which answers with one evaluation of the same encoding (a single-key
//! VOPRF); shares go to the nodes exactly as in the dealer-free design; in Stage-2 the
//! token request goes to the dealer, then one server that holds the plaintext hashes ranks
//! the candidates (the query hash and parameters, 24 bytes, in; 16 bytes per hit out), and
//! the retrieval is the same. Its CPU times are the corresponding dealer-free parties'
//! (one node's evaluation for the dealer's) and the measured plaintext ranking.
//!
//! Everything but measured times is a function of the inputs and the seed: the JSON keeps
//! times under keys ending in `_ms` or named `cpu_ns`, so that runs under one seed can be
//! compared after dropping them.

pub mod batching;
pub mod dkg_sizes;
pub mod fault_matrix;
mod faults;
pub mod figures;
pub mod scale;
pub use scale::ScalingData;
mod stages;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use phr_sis::{ImageHash, NodeId, SearchParams, Threshold};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::Serialize;

use crate::SimError;
use crate::deployment::{IngestImage, IngestOptions};
use crate::network::NetworkPreset;
use crate::simulator::DealerFreeSimulator;
use crate::trace::{Stage, Trace};

/// One figure set of the experiment (one `<name>.{svg,png,json}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FigureSet {
    /// `stage_communication`.
    StageCommunication,
    /// `dkg_overhead`.
    DkgOverhead,
    /// `stage_latency`.
    StageLatency,
    /// `batching`.
    Batching,
    /// `fault_tolerance`.
    FaultTolerance,
    /// `scaling`.
    Scaling,
}

/// The names [`FigureSet::from_str`] accepts.
pub const FIGURE_SET_NAMES: &str =
    "stage_communication, dkg_overhead, stage_latency, batching, fault_tolerance, scaling";

/// A figure set name that is not one of [`FIGURE_SET_NAMES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown figure set {0:?}; expected one of: {FIGURE_SET_NAMES}")]
pub struct UnknownFigureSet(pub String);

impl FigureSet {
    /// Every set, in report order.
    pub const ALL: [FigureSet; 6] = [
        FigureSet::StageCommunication,
        FigureSet::DkgOverhead,
        FigureSet::StageLatency,
        FigureSet::Batching,
        FigureSet::FaultTolerance,
        FigureSet::Scaling,
    ];

    /// The file name stem.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            FigureSet::StageCommunication => "stage_communication",
            FigureSet::DkgOverhead => "dkg_overhead",
            FigureSet::StageLatency => "stage_latency",
            FigureSet::Batching => "batching",
            FigureSet::FaultTolerance => "fault_tolerance",
            FigureSet::Scaling => "scaling",
        }
    }
}

impl fmt::Display for FigureSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FigureSet {
    type Err = UnknownFigureSet;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FigureSet::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| UnknownFigureSet(s.to_owned()))
    }
}

/// The names [`parse_stage`] accepts.
pub const STAGE_NAMES: &str = "dkg, stage1, stage2";

/// A stage of the stage figures by its flag name: "dkg" (with the dealer's setup beside it),
/// "stage1", "stage2" (case-insensitive; "Stage-1" and "stage-1" too).
///
/// # Errors
/// The unknown name, with [`STAGE_NAMES`].
pub fn parse_stage(s: &str) -> Result<Stage, String> {
    match s.to_ascii_lowercase().replace('-', "").as_str() {
        "dkg" => Ok(Stage::Dkg),
        "stage1" => Ok(Stage::Stage1),
        "stage2" => Ok(Stage::Stage2),
        _ => Err(format!(
            "unknown stage {s:?}; expected one of: {STAGE_NAMES}"
        )),
    }
}

/// The scale runs of [`scale`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleConfig {
    /// Node counts (3 to 64).
    pub nodes: Vec<u8>,
    /// Stored-image counts (real images first, synthetic ones after).
    pub images: Vec<usize>,
}

impl Default for ScaleConfig {
    fn default() -> Self {
        ScaleConfig {
            nodes: vec![3, 5, 9, 17, 33, 64],
            images: vec![100, 1_000, 3_000],
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct ExperimentConfig {
    /// The deployment's threshold for the stage figures.
    pub threshold: Threshold,
    /// Seed of every random choice.
    pub seed: u64,
    /// Node counts of the DKG figure (3 to 64 by default).
    pub dkg_nodes: Vec<u8>,
    /// Search parameters of the Stage-2 query.
    pub params: SearchParams,
    /// The figure sets to produce.
    pub figures: BTreeSet<FigureSet>,
    /// The stages the stage figures show (of [`Stage::Dkg`], [`Stage::Stage1`],
    /// [`Stage::Stage2`]; the DKG brings the dealer's setup beside it).
    pub stages: BTreeSet<Stage>,
    /// The network presets of the latency figures.
    pub networks: Vec<NetworkPreset>,
    /// Images per token request of the batching figure.
    pub batch_sizes: Vec<usize>,
    /// The scale runs.
    pub scale: ScaleConfig,
}

impl ExperimentConfig {
    /// Defaults for `threshold`: every figure set and stage, DKG sizes 3, 5, 8, 16, 32, 64,
    /// the default search, LAN and WAN, batches of 1 to 32 images, the default
    /// [`ScaleConfig`].
    #[must_use]
    pub fn new(threshold: Threshold, seed: u64) -> ExperimentConfig {
        ExperimentConfig {
            threshold,
            seed,
            dkg_nodes: vec![3, 5, 8, 16, 32, 64],
            params: SearchParams::default(),
            figures: FigureSet::ALL.into_iter().collect(),
            stages: [Stage::Dkg, Stage::Stage1, Stage::Stage2]
                .into_iter()
                .collect(),
            networks: vec![NetworkPreset::Lan, NetworkPreset::Wan],
            batch_sizes: vec![1, 2, 4, 8, 16, 32],
            scale: ScaleConfig::default(),
        }
    }

    /// Whether `set` is produced.
    #[must_use]
    pub fn wants(&self, set: FigureSet) -> bool {
        self.figures.contains(&set)
    }
}

/// One image of the experiment: its name (for reports), bytes and pHash.
#[derive(Debug, Clone)]
pub struct ExperimentImage {
    /// File name.
    pub name: String,
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// Its pHash.
    pub hash: ImageHash,
}

impl ExperimentImage {
    /// The image as Stage-1 takes it.
    #[must_use]
    pub fn as_ingest(&self) -> IngestImage<'_> {
        IngestImage {
            bytes: &self.bytes,
            hash: self.hash,
        }
    }
}

/// One round of one stage of one design.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoundRow {
    /// "dealer-free" or "dealer-based".
    pub design: &'static str,
    /// The stage's name.
    pub stage: &'static str,
    /// The round's name.
    pub round: String,
    /// Messages delivered.
    pub messages: usize,
    /// Bytes delivered.
    pub bytes: usize,
    /// CPU of all parties (measured).
    pub cpu_ns: u64,
}

/// One stage's latency under one network preset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencyRow {
    /// "dealer-free" or "dealer-based".
    pub design: &'static str,
    /// The stage's name.
    pub stage: &'static str,
    /// "lan" or "wan".
    pub network: String,
    /// The modelled latency (from measured CPU and the network model).
    pub latency_ms: f64,
}

/// One DKG size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DkgRow {
    /// Nodes.
    pub n: u8,
    /// Threshold.
    pub t: u8,
    /// Messages delivered (a broadcast once per recipient).
    pub messages: usize,
    /// Bytes delivered.
    pub bytes: usize,
    /// Whether the honest nodes agreed on a key.
    pub agree: bool,
    /// CPU of all nodes (measured).
    pub cpu_ms: f64,
    /// The dealer's key setup for the same `(t, n)`: messages (one per node).
    pub dealer_messages: usize,
    /// The dealer's key setup: bytes.
    pub dealer_bytes: usize,
    /// The dealer's key setup: CPU of the dealer and the nodes (measured).
    pub dealer_cpu_ms: f64,
}

/// One fault scenario (see the `fault_tolerance` figure set in the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultRow {
    /// What was injected, in words.
    pub scenario: String,
    /// The stage the fault hits: "DKG", "Stage-1" or "Stage-2".
    pub stage: &'static str,
    /// "crash", `misbehave:<kind>` (the `Misbehaviour`'s name), `drop:<what>`
    /// (`deal-message`, `all-deals`, `link`) or "delay".
    pub fault: String,
    /// Nodes crashed, misbehaving, or whose messages were dropped or delayed.
    pub faulty: usize,
    /// The honest nodes agreed on a key (for a delay: the fault-free run's key); `None`: no
    /// DKG in this scenario.
    pub dkg_key: Option<bool>,
    /// The dealers the honest nodes disqualified.
    pub disqualified: Vec<u8>,
    /// The images were stored (on the alive nodes, each on at least `t`); `None`: no ingest
    /// in this scenario.
    pub ingest_ok: Option<bool>,
    /// The secure search returned the fault-free ranking; `None`: not run or not possible
    /// (see `reason`).
    pub search_same: Option<bool>,
    /// A known image (the query's own) was reconstructed byte-identically from the alive
    /// nodes that hold it; `Some(false)` with `reason` when too few do; `None`: not run.
    pub retrieval_ok: Option<bool>,
    /// Why something was not possible, in plain words (node ids as numbers), if anything
    /// was not.
    pub reason: Option<String>,
    /// The latency of the stage hit, under the WAN preset (measured CPU plus the model,
    /// with the scenario's delays).
    pub latency_wan_ms: f64,
}

/// Every figure's data.
#[derive(Debug, Clone, Serialize)]
pub struct ExperimentData {
    /// `t`.
    pub t: u8,
    /// `n`.
    pub n: u8,
    /// Images ingested.
    pub images: usize,
    /// The seed.
    pub seed: u64,
    /// Per stage and round, both designs.
    pub stage_communication: Vec<RoundRow>,
    /// Per stage, design and preset.
    pub stage_latency: Vec<LatencyRow>,
    /// Per DKG size and threshold.
    pub dkg_overhead: Vec<DkgRow>,
    /// Fitted exponent `b` of `bytes ≈ a·n^b` per threshold rule.
    pub dkg_bytes_exponent: BTreeMap<String, f64>,
    /// Fitted exponents of messages, bytes and CPU (`cpu_ms`, measured) in `n`: metric →
    /// threshold rule → `b`.
    pub dkg_exponents: dkg_sizes::Exponents,
    /// Per fault scenario.
    pub fault_tolerance: Vec<FaultRow>,
    /// The batching figure's data.
    pub batching: Option<batching::BatchingData>,
    /// The scaling figure's data.
    pub scaling: Option<ScalingData>,
    /// The figure sets produced.
    #[serde(skip)]
    pub figures: BTreeSet<FigureSet>,
}

fn rows(trace: &Trace, design: &'static str, stages: &[Stage]) -> Vec<RoundRow> {
    stages
        .iter()
        .flat_map(|s| {
            trace
                .round_summaries(*s)
                .into_iter()
                .map(move |r| RoundRow {
                    design,
                    stage: s.name(),
                    round: r.round,
                    messages: r.messages,
                    bytes: r.bytes,
                    cpu_ns: r.cpu_ns,
                })
        })
        .collect()
}

/// Least-squares slope of `ln y` on `ln x`.
pub(crate) fn loglog_slope(points: &[(f64, f64)]) -> f64 {
    let pts: Vec<(f64, f64)> = points
        .iter()
        .filter(|(x, y)| *x > 0.0 && *y > 0.0)
        .map(|(x, y)| (x.ln(), y.ln()))
        .collect();
    let n = pts.len() as f64;
    if pts.len() < 2 {
        return f64::NAN;
    }
    let (sx, sy) = pts.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) = pts.iter().fold((0.0, 0.0), |(a, b), (x, y)| {
        (a + (x - mx) * (y - my), b + (x - mx) * (x - mx))
    });
    if den == 0.0 { f64::NAN } else { num / den }
}

pub(crate) fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Runs the figure sets of `config` (module documentation); with none, returns the empty
/// data of the setting at once. `progress(stage name, done, total)` is called as work
/// advances.
///
/// # Errors
/// [`SimError::Params`] for an empty image list or a threshold without a secure search
/// (`2t − 1 > n`); any protocol error of the runs without faults.
pub fn run_dealer_free_experiment(
    config: &ExperimentConfig,
    images: &[ExperimentImage],
    progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<ExperimentData, SimError> {
    let th = config.threshold;
    if images.is_empty() {
        return Err(SimError::Params("no images".into()));
    }
    if usize::from(th.search_quorum()) > usize::from(th.n()) {
        return Err(SimError::Params(format!(
            "secure search needs 2t − 1 = {} nodes but n = {}",
            th.search_quorum(),
            th.n()
        )));
    }
    let mut data = ExperimentData {
        t: th.t(),
        n: th.n(),
        images: images.len(),
        seed: config.seed,
        stage_communication: Vec::new(),
        stage_latency: Vec::new(),
        dkg_overhead: Vec::new(),
        dkg_bytes_exponent: BTreeMap::new(),
        dkg_exponents: BTreeMap::new(),
        fault_tolerance: Vec::new(),
        batching: None,
        scaling: None,
        figures: config.figures.clone(),
    };
    if config.figures.is_empty() {
        return Ok(data);
    }
    // Key setup: the DKG and the dealer's.
    progress("key setup", 0, 1);
    let mut sim = DealerFreeSimulator::new(th, config.seed);
    let dkg = sim.run_dkg(&BTreeMap::new(), &BTreeSet::new())?;
    if !dkg.honest_agree {
        return Err(SimError::Dkg(
            "the fault-free DKG ended without a key".into(),
        ));
    }
    let key = sim
        .key_material()
        .cloned()
        .ok_or_else(|| SimError::Dkg("the DKG left no key material".into()))?;
    let mut free = sim.take_trace();
    let mut dealer_sim = DealerFreeSimulator::new(th, config.seed);
    dealer_sim.run_dealer_setup()?;
    let mut based = dealer_sim.take_trace();
    progress("key setup", 1, 1);

    let needs_stages = [
        FigureSet::StageCommunication,
        FigureSet::StageLatency,
        FigureSet::FaultTolerance,
    ]
    .iter()
    .any(|s| config.wants(*s));
    if needs_stages {
        // Stage-1 and Stage-2, fault-free.
        progress("stages", 0, 1);
        let query = images.len() / 2;
        let mut rng = ChaCha20Rng::seed_from_u64(config.seed);
        let ingested = stages::ingest(
            th,
            &key,
            images,
            &IngestOptions::default(),
            &mut rng,
            &mut free,
        )?;
        let all: Vec<NodeId> = th.nodes().collect();
        let found = stages::search(
            &ingested,
            images,
            query,
            &all,
            &config.params,
            &mut rng,
            &mut free,
        )?;
        if !found.retrieved {
            return Err(SimError::Corrupt("the fault-free retrieval failed".into()));
        }
        let start = Instant::now();
        let plain = ingested
            .baseline
            .rank_candidates(images[query].hash, &config.params);
        let rank_cpu = start.elapsed();
        based.extend(stages::dealer_based_stages(&free, plain.len(), rank_cpu));
        progress("stages", 1, 1);
        stage_figures(config, &free, &based, &mut data);
        if config.wants(FigureSet::FaultTolerance) {
            data.fault_tolerance = faults::run(config, images, query, &ingested, &found, progress)?;
        }
    }
    if config.wants(FigureSet::DkgOverhead) {
        (data.dkg_overhead, data.dkg_exponents) = dkg_sizes::run(config, progress)?;
        data.dkg_bytes_exponent = data.dkg_exponents.get("bytes").cloned().unwrap_or_default();
    }
    if config.wants(FigureSet::Batching) {
        data.batching = Some(batching::run(config, images, &key, progress)?);
    }
    if config.wants(FigureSet::Scaling) {
        data.scaling = Some(scale::run(config, images, progress)?);
    }
    Ok(data)
}

/// The stages of each design the stage figures show.
fn shown(config: &ExperimentConfig) -> [Vec<Stage>; 2] {
    let free: Vec<Stage> = [Stage::Dkg, Stage::Stage1, Stage::Stage2]
        .into_iter()
        .filter(|s| config.stages.contains(s))
        .collect();
    let based = free
        .iter()
        .map(|s| {
            if *s == Stage::Dkg {
                Stage::DealerSetup
            } else {
                *s
            }
        })
        .collect();
    [free, based]
}

fn stage_figures(
    config: &ExperimentConfig,
    free: &Trace,
    based: &Trace,
    data: &mut ExperimentData,
) {
    let [free_stages, based_stages] = shown(config);
    data.stage_communication = rows(free, "dealer-free", &free_stages);
    data.stage_communication
        .extend(rows(based, "dealer-based", &based_stages));
    for preset in &config.networks {
        let model = preset.model();
        for (design, trace, stages) in [
            ("dealer-free", free, &free_stages),
            ("dealer-based", based, &based_stages),
        ] {
            for stage in stages {
                data.stage_latency.push(LatencyRow {
                    design,
                    stage: stage.name(),
                    network: preset.name().to_owned(),
                    latency_ms: ms(model.stage_latency(trace, *stage, config.seed).total),
                });
            }
        }
    }
}
