//! The `fault_tolerance` data: what each stage still achieves when nodes crash, misbehave or
//! lose or delay messages, for the configured `(t, n)`.
//!
//! Scenarios (one [`FaultRow`] each):
//!
//! * **crash during the DKG**, `k = 0..=n − t + 1` nodes: whether the honest nodes agree on
//!   a key (the code tolerates `t − 1` silent nodes), who is disqualified, DKG latency.
//! * **crash during Stage-1**, `k = 0..=n − t + 1`: a fresh ingest of the images with the
//!   crashed nodes unreachable (they stay down in Stage-2). The secure search runs among the
//!   alive nodes (possible only with `2t − 1` of them holding bit shares), compared with
//!   the `k = 0` ingest's ranking (by image and distance, since every ingest draws new ids);
//!   the retrieval of the query image is measured on its own, from the first `t` alive nodes
//!   that hold it (possible with `k ≤ n − t`). Latency: Stage-1.
//! * **crash during Stage-2**, `k = 0..=n − t + 1`: the experiment's fault-free deployment,
//!   not ingested again, queried with `k` nodes down; the ranking must equal the fault-free
//!   one id for id; retrieval as above. Latency: Stage-2 (search and retrieval).
//! * **misbehaving in the DKG**: `m = 1..=t` nodes (`m = t` shows the limit) with one of
//!   bad commitment, bad justification, silence, equivocation; for `m = t − 1` the key is
//!   then used for an ingest and a search among the nodes that hold a key share, compared
//!   with the `k = 0` ingest's ranking (a silent node ends without a share and takes no
//!   part, like a crashed one).
//! * **dropped DKG messages** (`drop:deal-message`, `drop:all-deals`, `drop:link`): one deal
//!   message, all of one dealer's deal messages, every message on one link
//!   (`DealerFreeSimulator::run_dkg_with`; a dropped message is a missing one to its
//!   recipient).
//! * **delayed messages**: 100 ms more on every link out of `k` nodes in the DKG (`dkg_key`:
//!   the same key as the fault-free DKG under the seed) and on the links between the client
//!   and `k` nodes in Stage-2 (the fault-free Stage-2 run replayed with the delay).
//!
//! Crashed nodes are the last ones (`n, n − 1, …`), misbehaving and delayed ones the first
//! (`1, 2, …`); each scenario names them.
//!
//! **Guarantees.** Nothing here panics on a fault: an impossible search, retrieval or ingest
//! becomes a row with `reason` (the typed error's text in plain words:
//! [`plain_words`](super::fault_matrix::plain_words)). Every field but `latency_wan_ms` is a
//! function of the threshold, the images and the seed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use dealer_free::dkg::{Misbehaviour, Round};
use phr_sis::{ImageId, NodeId, RankedCandidate, Threshold};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::fault_matrix::plain_words;
use super::stages::{self, Ingested, Searched};
use super::{ExperimentConfig, ExperimentImage, FaultRow, ms};
use crate::SimError;
use crate::deployment::IngestOptions;
use crate::network::NetworkModel;
use crate::ranking::{ServerFault, rank_candidates_secure_recorded};
use crate::simulator::{DealerFreeSimulator, DkgRunSummary, KeyMaterial, MessageFaults};
use crate::trace::{Party, Stage, StageRecorder, Trace};

/// "1 node's", "2 nodes'".
fn nodes_of(k: usize) -> String {
    if k == 1 {
        "1 node's".to_owned()
    } else {
        format!("{k} nodes'")
    }
}

/// Dropped DKG messages: `(round, sender, recipient)`.
type Dropped = BTreeSet<(Round, NodeId, NodeId)>;

/// The extra delay of the delay scenarios.
const DELAY: Duration = Duration::from_millis(100);

/// A ranking by image (index into the experiment's images) and distance, sorted, so that
/// rankings of separate ingests (with different ids) compare.
type ByImage = Vec<(u32, Option<usize>)>;

fn by_image(ranked: &[RankedCandidate], ids: &[ImageId]) -> ByImage {
    let mut out: ByImage = ranked
        .iter()
        .map(|c| (c.distance, ids.iter().position(|id| *id == c.id)))
        .collect();
    out.sort_unstable();
    out
}

fn node_list(ids: impl IntoIterator<Item = NodeId>) -> Vec<u8> {
    ids.into_iter().map(NodeId::get).collect()
}

/// The nodes of a scenario in words, ascending: `""`, `" (node 5)"`, `" (nodes 4, 5)"`.
fn which(ids: impl IntoIterator<Item = NodeId>) -> String {
    let mut ids = node_list(ids);
    ids.sort_unstable();
    let list: Vec<String> = ids.iter().map(u8::to_string).collect();
    match list.len() {
        0 => String::new(),
        1 => format!(" (node {})", list.join("")),
        _ => format!(" (nodes {})", list.join(", ")),
    }
}

/// The last `k` nodes (`n, n − 1, …`): the ones crashed.
fn last_nodes(th: Threshold, k: usize) -> BTreeSet<NodeId> {
    let all: Vec<NodeId> = th.nodes().collect();
    all.into_iter().rev().take(k).collect()
}

fn one(ids: impl IntoIterator<Item = NodeId>) -> Result<NodeId, SimError> {
    ids.into_iter()
        .next()
        .ok_or_else(|| SimError::Params("no nodes".into()))
}

/// The first `k` nodes: the ones misbehaving or delayed.
fn first_nodes(th: Threshold, k: usize) -> Vec<NodeId> {
    th.nodes().take(k).collect()
}

fn rng_for(config: &ExperimentConfig, tag: u64, k: usize) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(config.seed ^ tag ^ (k as u64))
}

/// The DKG part of a row: a fresh simulator under the seed.
struct DkgRun {
    summary: DkgRunSummary,
    key: Option<KeyMaterial>,
    wan_ms: f64,
}

fn dkg(
    config: &ExperimentConfig,
    faulty: &BTreeMap<NodeId, Misbehaviour>,
    crashed: &BTreeSet<NodeId>,
    messages: &MessageFaults,
) -> Result<DkgRun, SimError> {
    let mut sim = DealerFreeSimulator::new(config.threshold, config.seed);
    let summary = sim.run_dkg_with(faulty, crashed, messages)?;
    let wan = NetworkModel::wan().stage_latency_delayed(
        sim.trace(),
        Stage::Dkg,
        config.seed,
        &messages.delay,
    );
    let key = sim.key_material().cloned().filter(|_| summary.honest_agree);
    Ok(DkgRun {
        summary,
        key,
        wan_ms: ms(wan.total),
    })
}

fn dkg_row(scenario: String, fault: String, faulty: usize, run: &DkgRun) -> FaultRow {
    // The first failing node's error (the others' are usually the same, seen from them).
    let reason = (!run.summary.honest_agree).then(|| {
        let failures = &run.summary.failures;
        match failures.iter().next() {
            None => "no agreed key".to_owned(),
            Some((id, e)) if failures.len() == 1 => format!("no agreed key (node {id}: {e})"),
            Some((id, e)) if failures.len() == 2 => {
                format!("no agreed key (node {id}: {e}; 1 more node failed)")
            }
            Some((id, e)) => format!(
                "no agreed key (node {id}: {e}; {} more nodes failed)",
                failures.len() - 1
            ),
        }
    });
    FaultRow {
        scenario,
        stage: Stage::Dkg.name(),
        fault,
        faulty,
        dkg_key: Some(run.summary.honest_agree),
        disqualified: node_list(run.summary.disqualified.keys().copied()),
        ingest_ok: None,
        search_same: None,
        retrieval_ok: None,
        reason,
        latency_wan_ms: run.wan_ms,
    }
}

/// The outcome of a Stage-2 run among `alive`: the secure search and, on its own, the
/// retrieval of the image at `known`.
struct Stage2 {
    ranking: Result<Vec<RankedCandidate>, SimError>,
    retrieval: Result<bool, SimError>,
    trace: Trace,
}

fn stage2(
    config: &ExperimentConfig,
    ingested: &Ingested,
    images: &[ExperimentImage],
    query: usize,
    alive: &[NodeId],
    rng: &mut ChaCha20Rng,
) -> Result<Stage2, SimError> {
    let query_image = images
        .get(query)
        .ok_or_else(|| SimError::Params("no query image".into()))?;
    let known = ingested
        .report
        .ids
        .get(query)
        .copied()
        .ok_or_else(|| SimError::Params("the query image has no id".into()))?;
    let mut trace = Trace::new();
    let mut rec = StageRecorder::new(&mut trace, Stage::Stage2);
    let ranking = rank_candidates_secure_recorded(
        &ingested.deployment,
        query_image.hash,
        alive,
        &config.params,
        &BTreeMap::<NodeId, ServerFault>::new(),
        rng,
        &mut rec,
    )
    .map(|r| r.result.hits);
    let holders: Vec<NodeId> = alive
        .iter()
        .copied()
        .filter(|n| {
            !ingested
                .report
                .not_stored
                .get(n)
                .is_some_and(|ids| ids.contains(&known))
        })
        .collect();
    let t = usize::from(ingested.deployment.threshold().t());
    let retrieval = if holders.len() < t {
        Err(SimError::Share(format!(
            "retrieval needs t = {t} shares, {} alive nodes hold one",
            holders.len()
        )))
    } else {
        let from: Vec<NodeId> = holders.into_iter().take(t).collect();
        ingested
            .deployment
            .retrieve_recorded(known, &from, &mut rec)
            .map(|(bytes, _)| bytes == query_image.bytes)
    };
    Ok(Stage2 {
        ranking,
        retrieval,
        trace,
    })
}

/// `search_same`, `retrieval_ok` and `reason` of a Stage-2 outcome; `same` compares a
/// ranking with the reference.
fn stage2_outcome(
    th: Threshold,
    alive: usize,
    out: &Stage2,
    same: impl Fn(&[RankedCandidate]) -> bool,
) -> (Option<bool>, Option<bool>, Option<String>) {
    let mut reasons = Vec::new();
    let search_same = match &out.ranking {
        Ok(r) => Some(same(r)),
        Err(e) => {
            reasons.push(format!(
                "search not possible (needs 2t − 1 = {}, {alive} alive): {e}",
                th.search_quorum()
            ));
            None
        }
    };
    let retrieval_ok = match &out.retrieval {
        Ok(ok) => Some(*ok),
        Err(e) => {
            reasons.push(format!(
                "retrieval not possible (needs t = {}, {alive} alive): {e}",
                th.t()
            ));
            Some(false)
        }
    };
    let reason = (!reasons.is_empty()).then(|| reasons.join("; "));
    (search_same, retrieval_ok, reason)
}

fn wan_ms(
    trace: &Trace,
    stage: Stage,
    seed: u64,
    delay: &BTreeMap<(Party, Party), Duration>,
) -> f64 {
    ms(NetworkModel::wan()
        .stage_latency_delayed(trace, stage, seed, delay)
        .total)
}

/// Every scenario (module documentation), on the experiment's fault-free deployment
/// `ingested` and its Stage-2 result `reference`.
pub(crate) fn run(
    config: &ExperimentConfig,
    images: &[ExperimentImage],
    query: usize,
    ingested: &Ingested,
    reference: &Searched,
    progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<Vec<FaultRow>, SimError> {
    let th = config.threshold;
    let n = usize::from(th.n());
    let t = usize::from(th.t());
    let max_crash = n - t + 1;
    let first = one(first_nodes(th, 1))?;
    let last = one(last_nodes(th, 1))?;
    let kinds = [
        Misbehaviour::BadCommitment,
        Misbehaviour::BadJustification { victim: last },
        Misbehaviour::Silent,
        Misbehaviour::Equivocate,
    ];
    let total = 3 * (max_crash + 1) + kinds.len() + 2;
    let mut done = 0;
    let mut step = |progress: &mut dyn FnMut(&str, usize, usize)| {
        progress("faults", done, total);
        done += 1;
    };
    let mut rows = Vec::new();
    let none = BTreeMap::new();
    let nobody = BTreeSet::new();
    let no_faults = MessageFaults::default();

    // Crash during the DKG.
    let mut fault_free_key = None;
    let mut fault_free_material = None;
    for k in 0..=max_crash {
        step(progress);
        let run = dkg(config, &none, &last_nodes(th, k), &no_faults)?;
        if k == 0 {
            fault_free_key = run.summary.group_public_key;
            fault_free_material.clone_from(&run.key);
        }
        rows.push(dkg_row(
            format!("{k} crashed in the DKG{}", which(last_nodes(th, k))),
            "crash".into(),
            k,
            &run,
        ));
    }

    // Crash during Stage-1: an ingest with the crashed nodes unreachable.
    let mut stage1_reference: Option<ByImage> = None;
    let fault_free_material = fault_free_material
        .ok_or_else(|| SimError::Dkg("the fault-free DKG ended without a key".into()))?;
    for k in 0..=max_crash {
        step(progress);
        let crashed = last_nodes(th, k);
        let options = IngestOptions {
            unreachable: crashed.clone(),
            ..IngestOptions::default()
        };
        let mut rng = rng_for(config, 0x5a9e_0001_0000, k);
        let mut trace = Trace::new();
        let ingest = stages::ingest(
            th,
            &fault_free_material,
            images,
            &options,
            &mut rng,
            &mut trace,
        );
        let latency = wan_ms(&trace, Stage::Stage1, config.seed, &BTreeMap::new());
        let mut row = FaultRow {
            scenario: format!("{k} crashed in Stage-1{}", which(crashed.iter().copied())),
            stage: Stage::Stage1.name(),
            fault: "crash".into(),
            faulty: k,
            dkg_key: None,
            disqualified: Vec::new(),
            ingest_ok: Some(ingest.is_ok()),
            search_same: None,
            retrieval_ok: None,
            reason: None,
            latency_wan_ms: latency,
        };
        match ingest {
            Err(e) => {
                row.retrieval_ok = Some(false);
                row.reason = Some(format!(
                    "ingest not possible (needs t = {t} nodes, {} alive): {e}",
                    n - k
                ));
            }
            Ok(ingested_k) => {
                let alive: Vec<NodeId> = th.nodes().filter(|n| !crashed.contains(n)).collect();
                let out = stage2(config, &ingested_k, images, query, &alive, &mut rng)?;
                let ids = &ingested_k.report.ids;
                if k == 0 {
                    stage1_reference = out.ranking.as_ref().ok().map(|r| by_image(r, ids));
                }
                (row.search_same, row.retrieval_ok, row.reason) =
                    stage2_outcome(th, alive.len(), &out, |r| {
                        stage1_reference
                            .as_ref()
                            .is_some_and(|reference| by_image(r, ids) == *reference)
                    });
            }
        }
        rows.push(row);
    }

    // Crash during Stage-2: the fault-free deployment, queried with k nodes down.
    let mut stage2_fault_free: Option<Stage2> = None;
    for k in 0..=max_crash {
        step(progress);
        let crashed = last_nodes(th, k);
        let alive: Vec<NodeId> = th.nodes().filter(|n| !crashed.contains(n)).collect();
        let mut rng = rng_for(config, 0x5a9e_0002_0000, k);
        let out = stage2(config, ingested, images, query, &alive, &mut rng)?;
        let (search_same, retrieval_ok, reason) = stage2_outcome(th, alive.len(), &out, |r| {
            r.iter().map(|c| c.id).eq(reference.ranking.iter().copied())
        });
        rows.push(FaultRow {
            scenario: format!("{k} crashed in Stage-2{}", which(crashed.iter().copied())),
            stage: Stage::Stage2.name(),
            fault: "crash".into(),
            faulty: k,
            dkg_key: None,
            disqualified: Vec::new(),
            ingest_ok: None,
            search_same,
            retrieval_ok,
            reason,
            latency_wan_ms: wan_ms(&out.trace, Stage::Stage2, config.seed, &BTreeMap::new()),
        });
        if k == 0 {
            stage2_fault_free = Some(out);
        }
    }

    // Misbehaving nodes in the DKG.
    for kind in kinds {
        step(progress);
        let name = match kind {
            Misbehaviour::BadJustification { .. } => "bad-justification".to_owned(),
            other => other.to_string(),
        };
        for m in 1..=t {
            let faulty: BTreeMap<NodeId, Misbehaviour> = first_nodes(th, m)
                .into_iter()
                .map(|id| (id, kind))
                .collect();
            let run = dkg(config, &faulty, &nobody, &no_faults)?;
            let mut row = dkg_row(
                format!("{m} {name} in the DKG{}", which(faulty.keys().copied())),
                format!("misbehave:{name}"),
                m,
                &run,
            );
            if m + 1 == t
                && let Some(key) = &run.key
            {
                let mut rng = rng_for(config, 0x5a9e_0003_0000, m);
                let mut trace = Trace::new();
                let ingest = stages::ingest(
                    th,
                    key,
                    images,
                    &IngestOptions::default(),
                    &mut rng,
                    &mut trace,
                );
                row.ingest_ok = Some(ingest.is_ok());
                match ingest {
                    Err(e) => row.reason = Some(format!("ingest on this key failed: {e}")),
                    Ok(ingested_m) => {
                        // Nodes that ended the DKG without the key take no part.
                        let all: Vec<NodeId> = th
                            .nodes()
                            .filter(|n| ingested_m.deployment.node(*n).is_some())
                            .collect();
                        let out = stage2(config, &ingested_m, images, query, &all, &mut rng)?;
                        let ids = &ingested_m.report.ids;
                        (row.search_same, row.retrieval_ok, row.reason) =
                            stage2_outcome(th, all.len(), &out, |r| {
                                stage1_reference
                                    .as_ref()
                                    .is_some_and(|reference| by_image(r, ids) == *reference)
                            });
                    }
                }
            }
            rows.push(row);
        }
    }

    // Dropped DKG messages.
    step(progress);
    let others: Vec<NodeId> = th.nodes().filter(|id| *id != first).collect();
    let drops: [(&str, String, Dropped); 3] = [
        (
            "drop:deal-message",
            format!("deal message {first} → {last} dropped"),
            BTreeSet::from([(Round::Deal, first, last)]),
        ),
        (
            "drop:all-deals",
            format!("every deal message of node {first} dropped"),
            others.iter().map(|to| (Round::Deal, first, *to)).collect(),
        ),
        (
            "drop:link",
            format!("every message {first} → {last} dropped"),
            [Round::Deal, Round::Complain, Round::Justify, Round::Confirm]
                .into_iter()
                .map(|r| (r, first, last))
                .collect(),
        ),
    ];
    for (fault, scenario, drop) in drops {
        let faults = MessageFaults {
            drop,
            ..MessageFaults::default()
        };
        let run = dkg(config, &none, &nobody, &faults)?;
        rows.push(dkg_row(scenario, fault.into(), 1, &run));
    }

    // Delayed messages.
    step(progress);
    for k in 1..t {
        let slow = first_nodes(th, k);
        let delay = slow
            .iter()
            .flat_map(|from| {
                th.nodes()
                    .filter(move |to| to != from)
                    .map(move |to| ((Party::Node(*from), Party::Node(to)), DELAY))
            })
            .collect();
        let faults = MessageFaults {
            delay,
            ..MessageFaults::default()
        };
        let run = dkg(config, &none, &nobody, &faults)?;
        let mut row = dkg_row(
            format!(
                "{} DKG messages +{} ms{}",
                nodes_of(k),
                DELAY.as_millis(),
                which(slow.iter().copied())
            ),
            "delay".into(),
            k,
            &run,
        );
        row.dkg_key = Some(
            run.summary.honest_agree
                && run.summary.group_public_key.is_some()
                && run.summary.group_public_key == fault_free_key,
        );
        rows.push(row);
    }
    if let Some(out) = &stage2_fault_free {
        for k in 1..=n - t {
            let delay = first_nodes(th, k)
                .into_iter()
                .flat_map(|id| {
                    [
                        ((Party::Client, Party::Node(id)), DELAY),
                        ((Party::Node(id), Party::Client), DELAY),
                    ]
                })
                .collect();
            let (search_same, retrieval_ok, reason) = stage2_outcome(th, n, out, |r| {
                r.iter().map(|c| c.id).eq(reference.ranking.iter().copied())
            });
            rows.push(FaultRow {
                scenario: format!(
                    "{} Stage-2 links +{} ms{}",
                    nodes_of(k),
                    DELAY.as_millis(),
                    which(first_nodes(th, k))
                ),
                stage: Stage::Stage2.name(),
                fault: "delay".into(),
                faulty: k,
                dkg_key: None,
                disqualified: Vec::new(),
                ingest_ok: None,
                search_same,
                retrieval_ok,
                reason,
                latency_wan_ms: wan_ms(&out.trace, Stage::Stage2, config.seed, &delay),
            });
        }
    }
    progress("faults", total, total);
    for row in &mut rows {
        row.reason = row.reason.take().map(|r| plain_words(&r));
    }
    Ok(rows)
}
