//! The `fault_tolerance` data: whether the DKG ends with a key and whether the secure
//! search and the retrieval still give the fault-free results as nodes crash, and the DKG
//! with `t − 1` misbehaving nodes.

use std::collections::{BTreeMap, BTreeSet};

use dealer_free::dkg::Misbehaviour;
use phr_sis::NodeId;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::stages::{self, Ingested, Searched};
use super::{ExperimentConfig, ExperimentImage, FaultRow, ms};
use crate::SimError;
use crate::network::NetworkModel;
use crate::simulator::DealerFreeSimulator;
use crate::trace::{Stage, Trace};

/// Every scenario, against the fault-free run's `reference` on the deployment `ingested`.
pub(crate) fn run(
    config: &ExperimentConfig,
    images: &[ExperimentImage],
    query: usize,
    ingested: &Ingested,
    reference: &Searched,
    progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<Vec<FaultRow>, SimError> {
    let th = config.threshold;
    let mut rows = Vec::new();
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
        let alive: Vec<NodeId> = th.nodes().filter(|n| !crashed.contains(n)).collect();
        let (search_same, retrieval_ok) = if alive.len() >= usize::from(th.search_quorum()) {
            let mut rng = ChaCha20Rng::seed_from_u64(config.seed ^ 0x5eed_0000 ^ k as u64);
            let found = stages::search(
                ingested,
                images,
                query,
                &alive,
                &config.params,
                &mut rng,
                &mut Trace::new(),
            )?;
            (
                Some(found.ranking == reference.ranking),
                Some(found.retrieved),
            )
        } else {
            (None, None)
        };
        rows.push(FaultRow {
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
    rows.push(FaultRow {
        scenario: format!("{bad} with bad commitments"),
        faulty: bad,
        dkg_key: run.honest_agree,
        search_same: None,
        retrieval_ok: None,
        dkg_wan_ms: ms(wan.total),
    });
    progress("faults", max_crash + 2, max_crash + 2);
    Ok(rows)
}
