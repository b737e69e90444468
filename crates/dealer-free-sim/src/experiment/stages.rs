//! Stage-1 and Stage-2 of the experiment: one deployment over the experiment's images,
//! ingested once, searched and retrieved from as often as the figures need; and the
//! dealer-based design's stages modelled from the dealer-free trace.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use phr_sis::{ImageId, NodeId, SearchParams, SearchableSISIndex, Threshold};
use rand::CryptoRng;

use super::ExperimentImage;
use crate::SimError;
use crate::deployment::{IngestImage, IngestOptions, IngestReport, LocalDeployment};
use crate::ranking::{ServerFault, rank_candidates_secure_recorded};
use crate::simulator::KeyMaterial;
use crate::trace::{CpuRecord, MessageRecord, Party, Stage, StageRecorder, Trace};

/// A deployment holding the experiment's images.
pub(crate) struct Ingested {
    pub(crate) deployment: LocalDeployment,
    pub(crate) report: IngestReport,
    /// The plaintext index of the same images (the baseline).
    pub(crate) baseline: SearchableSISIndex,
}

/// Stage-1: a deployment on `key`'s shares, every image ingested with `options`, recorded
/// into `trace`.
pub(crate) fn ingest<R: CryptoRng + ?Sized>(
    threshold: Threshold,
    key: &KeyMaterial,
    images: &[ExperimentImage],
    options: &IngestOptions,
    rng: &mut R,
    trace: &mut Trace,
) -> Result<Ingested, SimError> {
    let mut deployment = LocalDeployment::from_key_material(threshold, key, None, rng)?;
    let ingest: Vec<IngestImage<'_>> = images.iter().map(ExperimentImage::as_ingest).collect();
    let mut rec = StageRecorder::new(trace, Stage::Stage1);
    let report = deployment.ingest_with(&ingest, options, rng, &mut rec)?;
    let mut baseline = SearchableSISIndex::new();
    baseline
        .insert_many(report.ids.iter().zip(images).map(|(id, i)| (*id, i.hash)))
        .map_err(|e| SimError::Params(e.to_string()))?;
    Ok(Ingested {
        deployment,
        report,
        baseline,
    })
}

/// What one Stage-2 run found.
pub(crate) struct Searched {
    /// The ranking's ids.
    pub(crate) ranking: Vec<ImageId>,
    /// Whether the best match was reconstructed with the bytes ingested.
    pub(crate) retrieved: bool,
    /// How many candidates were ranked.
    pub(crate) candidates: usize,
}

/// Stage-2 among the nodes `alive`: a secure query for the image at `query`, then the
/// retrieval of the best match from the first `t` alive nodes that hold it, recorded into
/// `trace`.
pub(crate) fn search<R: CryptoRng + ?Sized>(
    ingested: &Ingested,
    images: &[ExperimentImage],
    query: usize,
    alive: &[NodeId],
    params: &SearchParams,
    rng: &mut R,
    trace: &mut Trace,
) -> Result<Searched, SimError> {
    let deployment = &ingested.deployment;
    let threshold = deployment.threshold();
    let query_image = images
        .get(query)
        .ok_or_else(|| SimError::Params("no query image".into()))?;
    let mut rec = StageRecorder::new(trace, Stage::Stage2);
    let ranked = rank_candidates_secure_recorded(
        deployment,
        query_image.hash,
        alive,
        params,
        &BTreeMap::<NodeId, ServerFault>::new(),
        rng,
        &mut rec,
    )?;
    let mut retrieved = false;
    if let Some(best) = ranked.result.hits.first() {
        let missing = |n: &NodeId| {
            ingested
                .report
                .not_stored
                .get(n)
                .is_some_and(|ids| ids.contains(&best.id))
        };
        let from: Vec<NodeId> = alive
            .iter()
            .copied()
            .filter(|n| !missing(n))
            .take(usize::from(threshold.t()))
            .collect();
        let (bytes, _) = deployment.retrieve_recorded(best.id, &from, &mut rec)?;
        let index = ingested.report.ids.iter().position(|id| *id == best.id);
        retrieved = index
            .and_then(|i| images.get(i))
            .is_some_and(|i| i.bytes == bytes);
    }
    Ok(Searched {
        ranking: ranked.result.hits.iter().map(|c| c.id).collect(),
        retrieved,
        candidates: ranked.result.candidates,
    })
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
pub(crate) fn dealer_based_stages(free: &Trace, ranked: usize, rank_cpu: Duration) -> Trace {
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
