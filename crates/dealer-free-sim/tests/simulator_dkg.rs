//! The simulator's DKG against the lockstep driver, its determinism, its fault tolerance and
//! the network model over its trace.

#![allow(clippy::unwrap_used)] // test code

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use dealer_free::dkg::{Misbehaviour, local};
use dealer_free_sim::network::NetworkModel;
use dealer_free_sim::simulator::DKG_OUTPUT_ROUND;
use dealer_free_sim::{DealerFreeSimulator, Party, Stage};
use phr_sis::{NodeId, Threshold};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

fn id(i: u8) -> NodeId {
    NodeId::new(i).unwrap()
}

fn honest_run(t: u8, n: u8, seed: u64) -> DealerFreeSimulator {
    let mut sim = DealerFreeSimulator::new(Threshold::new(t, n).unwrap(), seed);
    let out = sim.run_dkg(&BTreeMap::new(), &BTreeSet::new()).unwrap();
    assert!(out.honest_agree, "{:?}", out.failures);
    sim
}

#[test]
fn honest_dkg_bytes_per_round_match_the_lockstep_driver() {
    let th = Threshold::new(3, 5).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    let lockstep = local::run(th, b"lockstep", &BTreeMap::new(), &mut rng, &mut || {
        Duration::ZERO
    })
    .unwrap();
    let sim = honest_run(3, 5, 7);
    let rounds = sim.trace().round_summaries(Stage::Dkg);
    // Four protocol rounds, then the output step with CPU only.
    assert_eq!(rounds.len(), 5);
    for (r, expected) in rounds.iter().zip(&lockstep.rounds) {
        assert_eq!(r.round, expected.round.name());
        assert_eq!(
            (r.messages, r.bytes),
            (expected.messages, expected.bytes),
            "{}",
            r.round
        );
    }
    assert_eq!(rounds[4].round, DKG_OUTPUT_ROUND);
    assert_eq!((rounds[4].messages, rounds[4].bytes), (0, 0));
    // Deals are point to point (n(n−1)), complaints and confirmations broadcast (n(n−1)
    // deliveries), no justification in an honest run.
    assert_eq!(rounds[0].messages, 20);
    assert_eq!(rounds[2].messages, 0);
    let summary = sim.trace().stage_summary(Stage::Dkg);
    assert_eq!(summary.bytes, lockstep.bytes());
    assert_eq!(summary.messages, lockstep.messages());
    // Every node computed in every step.
    for r in &rounds {
        assert!(r.cpu_ns > 0, "{}", r.round);
    }
    // Every node sent and received the same in an honest run.
    let parties = sim.trace().party_summaries(Some(Stage::Dkg));
    assert_eq!(parties.len(), 5);
    assert!(parties.iter().all(
        |p| p.sent_bytes == parties[0].sent_bytes && p.received_bytes == parties[0].sent_bytes
    ));
}

#[test]
fn same_seed_same_trace_apart_from_cpu() {
    let a = honest_run(2, 4, 3);
    let b = honest_run(2, 4, 3);
    assert_eq!(a.trace().without_cpu_times(), b.trace().without_cpu_times());
    assert_eq!(
        a.key_material().unwrap().group_public_key,
        b.key_material().unwrap().group_public_key
    );
    let c = honest_run(2, 4, 4);
    assert_ne!(
        a.key_material().unwrap().group_public_key,
        c.key_material().unwrap().group_public_key
    );
}

#[test]
fn honest_nodes_agree_with_t_minus_1_misbehaving() {
    let th = Threshold::new(3, 5).unwrap();
    let faulty = BTreeMap::from([
        (id(4), Misbehaviour::BadCommitment),
        (id(5), Misbehaviour::BadShare { victim: id(1) }),
    ]);
    let mut sim = DealerFreeSimulator::new(th, 11);
    let out = sim.run_dkg(&faulty, &BTreeSet::new()).unwrap();
    assert!(out.honest_agree, "{:?}", out.failures);
    assert_eq!(out.honest, BTreeSet::from([id(1), id(2), id(3)]));
    assert!(!out.qualified.contains(&id(4)));
    assert!(
        !out.qualified.contains(&id(5)),
        "a bad share, proved by its victim's evidence, disqualifies its dealer"
    );
    assert!(out.disqualified.contains_key(&id(4)));
    assert!(out.group_public_key.is_some());
    // Bad shares are settled by the complaints' evidence: no dealer reveals anything, so
    // the justification round stays empty.
    let rounds = sim.trace().round_summaries(Stage::Dkg);
    assert_eq!(rounds[2].messages, 0);
    let keys = sim.key_material().unwrap();
    assert_eq!(keys.source, Stage::Dkg);
    assert!(out.honest.iter().all(|h| keys.key_shares.contains_key(h)));
}

#[test]
fn one_crashed_node_leaves_a_key_without_it() {
    let th = Threshold::new(3, 5).unwrap();
    let crashed = BTreeSet::from([id(2)]);
    let mut sim = DealerFreeSimulator::new(th, 5);
    let out = sim.run_dkg(&BTreeMap::new(), &crashed).unwrap();
    assert!(out.honest_agree, "{:?}", out.failures);
    assert!(out.group_public_key.is_some());
    assert!(!out.qualified.contains(&id(2)));
    assert_eq!(out.qualified.len(), 4);
    assert!(!out.key_shares.contains_key(&id(2)));
    assert_eq!(out.key_shares.len(), 4);
    // The crashed node neither sent nor received anything.
    let crashed_party = Party::Node(id(2));
    assert!(
        sim.trace()
            .messages
            .iter()
            .all(|m| m.from != crashed_party && m.to != crashed_party)
    );
    assert!(sim.trace().cpu.iter().all(|c| c.party != crashed_party));
    // Deals among the 4 live nodes only.
    assert_eq!(sim.trace().round_summaries(Stage::Dkg)[0].messages, 12);
}

#[test]
fn lan_is_faster_than_wan_and_deterministic() {
    let sim = honest_run(3, 5, 21);
    let trace = sim.trace();
    let lan = NetworkModel::lan().stage_latency(trace, Stage::Dkg, 1);
    let wan = NetworkModel::wan().stage_latency(trace, Stage::Dkg, 1);
    assert!(lan.total < wan.total, "{lan:?} vs {wan:?}");
    assert_eq!(lan, NetworkModel::lan().stage_latency(trace, Stage::Dkg, 1));
    assert_eq!(wan, NetworkModel::wan().stage_latency(trace, Stage::Dkg, 1));
    assert_eq!(lan.per_round.len(), 5);
    // Three rounds with messages each take at least one WAN latency.
    assert!(wan.total >= 3 * NetworkModel::wan().latency);
    assert_eq!(lan.total, lan.per_round.iter().map(|(_, d)| *d).sum());
}

#[test]
fn dealer_setup_is_cheaper_than_the_dkg() {
    let mut sim = honest_run(3, 5, 2);
    let setup = sim.run_dealer_setup().unwrap();
    let trace = sim.trace();
    assert_eq!(trace.stage_summary(Stage::DealerSetup).bytes, setup.bytes);
    assert!(setup.bytes < trace.stage_summary(Stage::Dkg).bytes);
    let summary = trace.summary();
    let names: Vec<&str> = summary.stages.iter().map(|s| s.stage.as_str()).collect();
    assert_eq!(names, ["dealer setup", "DKG"]);
    assert!(summary.parties.iter().any(|p| p.party == "dealer"));
    let json = serde_json::to_string(&summary).unwrap();
    assert!(json.contains("\"DkgDeal\""));
    let wan = NetworkModel::wan();
    assert!(
        wan.stage_latency(trace, Stage::DealerSetup, 0).total
            < wan.stage_latency(trace, Stage::Dkg, 0).total
    );
}

#[test]
fn every_misbehaviour_of_t_minus_1_nodes_is_tolerated() {
    let th = Threshold::new(3, 5).unwrap();
    let kinds = [
        Misbehaviour::Silent,
        Misbehaviour::Equivocate,
        Misbehaviour::BadProof,
        Misbehaviour::BadJustification { victim: id(1) },
        Misbehaviour::FalseComplaint { accused: id(2) },
    ];
    for (i, m) in kinds.into_iter().enumerate() {
        let faulty = BTreeMap::from([(id(4), m), (id(5), m)]);
        let mut sim = DealerFreeSimulator::new(th, 100 + i as u64);
        let out = sim.run_dkg(&faulty, &BTreeSet::new()).unwrap();
        assert!(out.honest_agree, "{m}: {:?}", out.failures);
        assert_eq!(out.qualified.contains(&id(4)), !m.is_disqualifying(), "{m}");
        assert!(out.qualified.is_superset(&out.honest), "{m}");
    }
}

#[test]
fn too_many_crashed_nodes_leave_no_key() {
    let th = Threshold::new(3, 5).unwrap();
    let crashed = BTreeSet::from([id(3), id(4), id(5)]);
    let mut sim = DealerFreeSimulator::new(th, 8);
    let out = sim.run_dkg(&BTreeMap::new(), &crashed).unwrap();
    assert!(!out.honest_agree);
    assert!(out.group_public_key.is_none() && out.key_shares.is_empty());
    assert_eq!(out.failures.len(), 2);
    assert!(sim.key_material().is_none());
}
