//! The dealer-free experiment: runs the real protocols in process, records every message,
//! and computes the data of each figure (`run_dealer_free_experiment`).
//!
//! * **stage_communication**: messages and bytes per stage and round, dealer-free vs
//!   dealer-based, for the configured `(t, n)` over the given images.
//! * **dkg_overhead**: DKG messages, bytes and CPU vs `n`, for two thresholds
//!   (`⌊n/2⌋ + 1` and `⌈n/3⌉ + 1`), beside the dealer's key setup; with the fitted exponent of
//!   bytes in `n`.
//! * **stage_latency**: each stage's latency under the LAN and WAN presets of
//!   [`NetworkModel`], both designs.
//! * **fault_tolerance**: whether the DKG ends with a key, and the secure search and the
//!   retrieval still work, as `k` nodes crash; the DKG with `t − 1` misbehaving nodes.
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

pub mod figures;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use dealer_free::dkg::Misbehaviour;
use phr_sis::share::SplitOptions;
use phr_sis::{ImageHash, ImageId, NodeId, SearchParams, SearchableSISIndex, Threshold};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::Serialize;

use crate::SimError;
use crate::deployment::{IngestImage, LocalDeployment};
use crate::network::NetworkModel;
use crate::ranking::{ServerFault, rank_candidates_secure_recorded};
use crate::simulator::DealerFreeSimulator;
use crate::trace::{CpuRecord, MessageRecord, Party, Stage, StageRecorder, Trace};

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
}

impl ExperimentConfig {
    /// Defaults for `threshold`: DKG sizes 3, 5, 8, 16, 32, 64; the default search.
    #[must_use]
    pub fn new(threshold: Threshold, seed: u64) -> ExperimentConfig {
        ExperimentConfig {
            threshold,
            seed,
            dkg_nodes: vec![3, 5, 8, 16, 32, 64],
            params: SearchParams::default(),
        }
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
    pub network: &'static str,
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
    /// The dealer's key setup for the same `(t, n)`: bytes.
    pub dealer_bytes: usize,
}

/// One fault scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultRow {
    /// What was injected.
    pub scenario: String,
    /// Nodes crashed or misbehaving.
    pub faulty: usize,
    /// The DKG ended with an agreed key.
    pub dkg_key: bool,
    /// The secure search returned the fault-free ranking (`None`: not run, too few nodes).
    pub search_same: Option<bool>,
    /// The best match was reconstructed byte-identically.
    pub retrieval_ok: Option<bool>,
    /// DKG latency under the WAN preset (measured CPU plus the model).
    pub dkg_wan_ms: f64,
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
    /// Per fault scenario.
    pub fault_tolerance: Vec<FaultRow>,
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

/// The rounds the two designs share (image shares to and from the nodes).
const SHARED_ROUNDS: [&str; 5] = [
    "share",
    "store",
    "share-request",
    "share-response",
    "reconstruct",
];

/// The dealer-based design's Stage-1 and Stage-2, modelled from the dealer-free trace (module
/// documentation).
fn dealer_based_stages(free: &Trace, ranked: usize, rank_cpu: Duration) -> Trace {
    let mut out = Trace::new();
    for stage in [Stage::Stage1, Stage::Stage2] {
        let mut rec = StageRecorder::new(&mut out, stage);
        let msgs: Vec<&MessageRecord> = free.messages.iter().filter(|m| m.stage == stage).collect();
        let cpus: Vec<&CpuRecord> = free.cpu.iter().filter(|c| c.stage == stage).collect();
        let steps: BTreeSet<u32> = msgs
            .iter()
            .map(|m| m.step)
            .chain(cpus.iter().map(|c| c.step))
            .collect();
        for step in steps {
            let name = msgs
                .iter()
                .map(|m| (m.step, &m.round))
                .chain(cpus.iter().map(|c| (c.step, &c.round)))
                .find(|(s, _)| *s == step)
                .map(|(_, r)| r.clone())
                .unwrap_or_default();
            let in_step = |m: &&&MessageRecord| m.step == step;
            let cpu_of = |party: Party| -> Duration {
                cpus.iter()
                    .filter(|c| c.step == step && c.party == party)
                    .map(|c| c.cpu)
                    .sum()
            };
            match name.as_str() {
                "token-request" => {
                    rec.round("token-request");
                    rec.cpu(Party::Client, cpu_of(Party::Client));
                    if let Some(m) = msgs.iter().find(in_step) {
                        rec.message(Party::Client, Party::Dealer, m.bytes, m.kind);
                    }
                }
                "token-response" => {
                    rec.round("token-response");
                    if let Some(m) = msgs.iter().find(in_step) {
                        let node_cpu = match m.from {
                            Party::Node(_) => cpu_of(m.from),
                            _ => Duration::ZERO,
                        };
                        rec.cpu(Party::Dealer, node_cpu);
                        rec.message(Party::Dealer, Party::Client, m.bytes, m.kind);
                    }
                }
                "token-combine" => {
                    rec.round("token-combine");
                    rec.cpu(Party::Client, cpu_of(Party::Client));
                }
                round if SHARED_ROUNDS.contains(&round) => {
                    rec.round(round);
                    for c in cpus.iter().filter(|c| c.step == step) {
                        rec.cpu(c.party, c.cpu);
                    }
                    for m in msgs.iter().filter(in_step) {
                        rec.message(m.from, m.to, m.bytes, m.kind);
                    }
                }
                "candidate-request" => {
                    // The plaintext ranking replaces lookup, masks and distance shares.
                    let server = NodeId::first(1).next().map_or(Party::Dealer, Party::Node);
                    rec.round("rank-request");
                    let tokens = msgs.iter().find(in_step).map_or(0, |m| m.bytes);
                    rec.message(Party::Client, server, tokens + 24, None);
                    rec.round("rank-response");
                    rec.cpu(server, rank_cpu);
                    rec.message(server, Party::Client, 2 + 4 + 16 * ranked, None);
                }
                _ => {}
            }
        }
    }
    out
}

/// Least-squares slope of `ln y` on `ln x`.
fn loglog_slope(points: &[(f64, f64)]) -> f64 {
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

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// One full dealer-free run over `images` with `crashed` nodes: ingest (Stage-1), then a
/// secure query for the image at `query` and the retrieval of the best match (Stage-2),
/// every round recorded into `trace`. Returns the ranking's ids and whether the retrieval
/// gave the stored bytes.
fn stages(
    threshold: Threshold,
    images: &[ExperimentImage],
    query: usize,
    crashed: &BTreeSet<NodeId>,
    params: &SearchParams,
    seed: u64,
    trace: &mut Trace,
) -> Result<(Vec<ImageId>, bool, SearchableSISIndex), SimError> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut deployment = LocalDeployment::create(threshold, None, &mut rng)?;
    let ingest: Vec<IngestImage<'_>> = images
        .iter()
        .map(|i| IngestImage {
            bytes: &i.bytes,
            hash: i.hash,
        })
        .collect();
    let mut rec = StageRecorder::new(trace, Stage::Stage1);
    let (ids, _) =
        deployment.ingest_recorded(&ingest, &SplitOptions::default(), &mut rng, &mut rec)?;
    let mut baseline = SearchableSISIndex::new();
    baseline
        .insert_many(ids.iter().zip(images).map(|(id, i)| (*id, i.hash)))
        .map_err(|e| SimError::Params(e.to_string()))?;
    let alive: Vec<NodeId> = threshold.nodes().filter(|n| !crashed.contains(n)).collect();
    let query_image = images
        .get(query)
        .ok_or_else(|| SimError::Params("no query image".into()))?;
    let mut rec = StageRecorder::new(trace, Stage::Stage2);
    let ranked = rank_candidates_secure_recorded(
        &deployment,
        query_image.hash,
        &alive,
        params,
        &BTreeMap::<NodeId, ServerFault>::new(),
        &mut rng,
        &mut rec,
    )?;
    let mut retrieved = false;
    if let Some(best) = ranked.ranked.first() {
        let from: Vec<NodeId> = alive
            .iter()
            .copied()
            .take(usize::from(threshold.t()))
            .collect();
        let (bytes, _) = deployment.retrieve_recorded(best.id, &from, &mut rec)?;
        let index = ids.iter().position(|id| *id == best.id);
        retrieved = index
            .and_then(|i| images.get(i))
            .is_some_and(|i| i.bytes == bytes);
    }
    Ok((
        ranked.ranked.iter().map(|c| c.id).collect(),
        retrieved,
        baseline,
    ))
}

/// Runs the whole experiment (module documentation). `progress(stage name, done, total)` is
/// called as work advances.
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
    // Key setup: the DKG and the dealer's.
    progress("key setup", 0, 1);
    let mut sim = DealerFreeSimulator::new(th, config.seed);
    let dkg = sim.run_dkg(&BTreeMap::new(), &BTreeSet::new())?;
    if !dkg.honest_agree {
        return Err(SimError::Dkg(
            "the fault-free DKG ended without a key".into(),
        ));
    }
    let mut free = sim.take_trace();
    let mut dealer_sim = DealerFreeSimulator::new(th, config.seed);
    dealer_sim.run_dealer_setup()?;
    let mut based = dealer_sim.take_trace();
    progress("key setup", 1, 1);

    // Stage-1 and Stage-2, fault-free.
    progress("stages", 0, 1);
    let query = images.len() / 2;
    let (ranking, retrieved, baseline) = stages(
        th,
        images,
        query,
        &BTreeSet::new(),
        &config.params,
        config.seed,
        &mut free,
    )?;
    if !retrieved {
        return Err(SimError::Corrupt("the fault-free retrieval failed".into()));
    }
    let start = Instant::now();
    let plain = baseline.rank_candidates(images[query].hash, &config.params);
    let rank_cpu = start.elapsed();
    based.extend(dealer_based_stages(&free, plain.len(), rank_cpu));
    progress("stages", 1, 1);

    let mut stage_communication = rows(
        &free,
        "dealer-free",
        &[Stage::Dkg, Stage::Stage1, Stage::Stage2],
    );
    stage_communication.extend(rows(
        &based,
        "dealer-based",
        &[Stage::DealerSetup, Stage::Stage1, Stage::Stage2],
    ));

    let mut stage_latency = Vec::new();
    for (name, model) in [("lan", NetworkModel::lan()), ("wan", NetworkModel::wan())] {
        for (design, trace, stages) in [
            (
                "dealer-free",
                &free,
                [Stage::Dkg, Stage::Stage1, Stage::Stage2],
            ),
            (
                "dealer-based",
                &based,
                [Stage::DealerSetup, Stage::Stage1, Stage::Stage2],
            ),
        ] {
            for stage in stages {
                stage_latency.push(LatencyRow {
                    design,
                    stage: stage.name(),
                    network: name,
                    latency_ms: ms(model.stage_latency(trace, stage, config.seed).total),
                });
            }
        }
    }

    // DKG overhead vs n.
    let mut dkg_overhead = Vec::new();
    let total = config.dkg_nodes.len() * 2;
    for (i, &n) in config.dkg_nodes.iter().enumerate() {
        let mut ts = vec![n / 2 + 1, n.div_ceil(3) + 1];
        ts.retain(|t| (2..=n).contains(t));
        ts.dedup();
        for (j, t) in ts.into_iter().enumerate() {
            progress("DKG sizes", 2 * i + j, total);
            let th = Threshold::new(t, n).map_err(|e| SimError::Params(e.to_string()))?;
            let mut sim = DealerFreeSimulator::new(th, config.seed);
            let run = sim.run_dkg(&BTreeMap::new(), &BTreeSet::new())?;
            let cpu = sim.trace().stage_cpu_total(Stage::Dkg);
            let mut dealer = DealerFreeSimulator::new(th, config.seed);
            let setup = dealer.run_dealer_setup()?;
            dkg_overhead.push(DkgRow {
                n,
                t,
                messages: run.messages,
                bytes: run.bytes,
                agree: run.honest_agree,
                cpu_ms: ms(cpu),
                dealer_bytes: setup.bytes,
            });
        }
    }
    progress("DKG sizes", total, total);
    let mut dkg_bytes_exponent = BTreeMap::new();
    for (rule, pick) in [
        ("t = floor(n/2) + 1", (|n: u8| n / 2 + 1) as fn(u8) -> u8),
        ("t = ceil(n/3) + 1", |n: u8| n.div_ceil(3) + 1),
    ] {
        let pts: Vec<(f64, f64)> = dkg_overhead
            .iter()
            .filter(|r| r.t == pick(r.n))
            .map(|r| (f64::from(r.n), r.bytes as f64))
            .collect();
        dkg_bytes_exponent.insert(
            rule.to_owned(),
            (loglog_slope(&pts) * 1000.0).round() / 1000.0,
        );
    }

    // Faults.
    let mut fault_tolerance = Vec::new();
    let n = th.n();
    let max_crash = usize::from(n - th.t()) + 1;
    for k in 0..=max_crash {
        progress("faults", k, max_crash + 2);
        let crashed: BTreeSet<NodeId> = (0..k)
            .filter_map(|i| u8::try_from(i).ok())
            .filter_map(|i| NodeId::new(n - i).ok())
            .collect();
        let mut sim = DealerFreeSimulator::new(th, config.seed);
        let run = sim.run_dkg(&BTreeMap::new(), &crashed)?;
        let wan = NetworkModel::wan().stage_latency(sim.trace(), Stage::Dkg, config.seed);
        let alive = usize::from(n) - k;
        let (search_same, retrieval_ok) = if alive >= usize::from(th.search_quorum()) {
            let mut t = Trace::new();
            let (r, ok, _) = stages(
                th,
                images,
                query,
                &crashed,
                &config.params,
                config.seed,
                &mut t,
            )?;
            (Some(r == ranking), Some(ok))
        } else {
            (None, None)
        };
        fault_tolerance.push(FaultRow {
            scenario: format!("{k} crashed"),
            faulty: k,
            dkg_key: run.honest_agree,
            search_same,
            retrieval_ok,
            dkg_wan_ms: ms(wan.total),
        });
    }
    let bad = usize::from(th.t()) - 1;
    let faulty: BTreeMap<NodeId, Misbehaviour> = (0..bad)
        .filter_map(|i| u8::try_from(i).ok())
        .filter_map(|i| NodeId::new(i + 1).ok())
        .map(|id| (id, Misbehaviour::BadCommitment))
        .collect();
    let mut sim = DealerFreeSimulator::new(th, config.seed);
    let run = sim.run_dkg(&faulty, &BTreeSet::new())?;
    let wan = NetworkModel::wan().stage_latency(sim.trace(), Stage::Dkg, config.seed);
    fault_tolerance.push(FaultRow {
        scenario: format!("{bad} with bad commitments"),
        faulty: bad,
        dkg_key: run.honest_agree,
        search_same: None,
        retrieval_ok: None,
        dkg_wan_ms: ms(wan.total),
    });
    progress("faults", max_crash + 2, max_crash + 2);

    Ok(ExperimentData {
        t: th.t(),
        n,
        images: images.len(),
        seed: config.seed,
        stage_communication,
        stage_latency,
        dkg_overhead,
        dkg_bytes_exponent,
        fault_tolerance,
    })
}
