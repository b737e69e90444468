//! Fault injection: crashes at each stage, misbehaving DKG nodes, dropped and delayed
//! messages. Within tolerance the search and the retrieval give the fault-free results;
//! beyond it a row says why not; a delay only lengthens the modelled latency; the same seed
//! gives the same rows apart from measured times.
#![allow(clippy::unwrap_used)] // test code

mod common;

use common::{named_images, without_times};

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use dealer_free::dkg::{Misbehaviour, Round};
use dealer_free_sim::experiment::fault_matrix::{Outcome, details, fault_matrix};
use dealer_free_sim::experiment::{
    ExperimentConfig, FaultRow, FigureSet, run_dealer_free_experiment,
};
use dealer_free_sim::simulator::{DealerFreeSimulator, MessageFaults};
use dealer_free_sim::{NetworkModel, Party, Stage};
use phr_sis::{NodeId, Threshold};

fn fault_rows(t: u8, n: u8, seed: u64) -> Vec<FaultRow> {
    let mut config = ExperimentConfig::new(Threshold::new(t, n).unwrap(), seed);
    config.figures = BTreeSet::from([FigureSet::FaultTolerance]);
    run_dealer_free_experiment(&config, &named_images(6), &mut |_, _, _| {})
        .unwrap()
        .fault_tolerance
}

fn node(i: u8) -> NodeId {
    NodeId::new(i).unwrap()
}

#[test]
fn faults_within_tolerance_give_the_fault_free_results_and_beyond_say_why_not() {
    // (2, 5): retrieval tolerates n − t = 3 nodes down, the secure search n − (2t − 1) = 2,
    // the DKG t − 1 = 1 crashed or misbehaving node.
    let rows = fault_rows(2, 5, 11);
    let find = |stage: &str, fault: &str| -> Vec<&FaultRow> {
        rows.iter()
            .filter(|r| r.stage == stage && r.fault == fault)
            .collect()
    };
    for stage in ["Stage-1", "Stage-2"] {
        let crashes = find(stage, "crash");
        assert_eq!(crashes.len(), 5, "{stage}: k = 0..=4");
        for r in crashes {
            if r.faulty <= 2 {
                assert_eq!(r.search_same, Some(true), "{r:?}");
            } else {
                assert_eq!(r.search_same, None, "{r:?}");
                let reason = r.reason.as_deref().unwrap();
                assert!(reason.contains("not possible"), "{r:?}");
                if r.faulty == 3 {
                    assert!(reason.contains("2t − 1 = 3, 2 alive"), "{r:?}");
                }
            }
            assert_eq!(r.retrieval_ok, Some(r.faulty <= 3), "{r:?}");
            if r.faulty > 3 {
                assert!(r.reason.is_some(), "{r:?}");
            }
        }
    }
    for r in find("DKG", "crash") {
        assert_eq!(r.dkg_key, Some(r.faulty < 2), "{r:?}");
    }
    for kind in [
        "bad-commitment",
        "bad-justification",
        "silent",
        "equivocate",
    ] {
        let fault = format!("misbehave:{kind}");
        let within = find("DKG", &fault)
            .into_iter()
            .find(|r| r.faulty == 1)
            .unwrap();
        assert_eq!(within.dkg_key, Some(true), "{within:?}");
        assert_eq!(within.disqualified, vec![1], "{within:?}");
        // A silent node ends without a key share and takes no part in the stages; the
        // others still search and retrieve as without faults.
        assert_eq!(within.search_same, Some(true), "{within:?}");
        assert_eq!(within.retrieval_ok, Some(true), "{within:?}");
    }
    for r in find("DKG", "delay")
        .into_iter()
        .chain(find("Stage-2", "delay"))
    {
        assert_ne!(r.dkg_key, Some(false), "{r:?}");
        assert_ne!(r.search_same, Some(false), "{r:?}");
        assert_ne!(r.retrieval_ok, Some(false), "{r:?}");
    }
    let drops: Vec<&FaultRow> = rows
        .iter()
        .filter(|r| r.stage == "DKG" && r.fault.starts_with("drop:"))
        .collect();
    assert_eq!(drops.len(), 3);
    // A missing deal is complained about and answered: the key stands.
    assert_eq!(drops[0].dkg_key, Some(true), "{:?}", drops[0]);
    // Delays lengthen the modelled latency of the fault-free runs.
    let dkg_base = find("DKG", "crash")[0].latency_wan_ms;
    assert!(
        find("DKG", "delay")
            .iter()
            .all(|r| r.latency_wan_ms > dkg_base)
    );
    let stage2_base = find("Stage-2", "crash")[0].latency_wan_ms;
    assert!(
        find("Stage-2", "delay")
            .iter()
            .all(|r| r.latency_wan_ms > stage2_base)
    );
}

#[test]
fn the_matrix_says_which_stage_survives_how_many_faulty_nodes_in_plain_words() {
    // (2, 5): the DKG tolerates t − 1 = 1 faulty node; the search n − (2t − 1) = 2 nodes
    // down, the retrieval n − t = 3.
    let rows = fault_rows(2, 5, 4);
    let m = fault_matrix(&rows);
    assert_eq!(m.faulty, vec![0, 1, 2, 3, 4]);
    let cell = |label: &str, k: usize| -> Outcome {
        let row = m.rows.iter().find(|r| r.label == label).unwrap();
        row.cells.iter().find(|c| c.faulty == k).unwrap().outcome
    };
    let labels: Vec<&str> = m.rows.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "DKG: crash",
            "DKG: bad commitment",
            "DKG: bad justification",
            "DKG: silent",
            "DKG: equivocate",
            "DKG: 1 deal message dropped",
            "DKG: a node's deals dropped",
            "DKG: a link's messages dropped",
            "DKG: +100 ms delay",
            "Stage-1: crash",
            "Stage-2: crash",
            "Stage-2: +100 ms delay",
        ]
    );
    for (label, k, want) in [
        ("DKG: crash", 0, Outcome::Ok),
        ("DKG: crash", 1, Outcome::Ok),
        ("DKG: crash", 2, Outcome::Failed),
        ("DKG: silent", 1, Outcome::Ok),
        ("DKG: silent", 2, Outcome::Failed),
        ("DKG: bad commitment", 2, Outcome::Failed),
        ("Stage-2: crash", 2, Outcome::Ok),
        // The search needs 2t − 1 = 3 alive, the retrieval t = 2.
        ("Stage-2: crash", 3, Outcome::Partial),
        ("Stage-2: crash", 4, Outcome::Failed),
        ("Stage-1: crash", 3, Outcome::Partial),
        ("Stage-1: crash", 4, Outcome::Failed),
        ("Stage-2: +100 ms delay", 3, Outcome::Ok),
    ] {
        assert_eq!(cell(label, k), want, "{label}, {k} faulty");
    }
    let crashed = m.rows.iter().find(|r| r.label == "DKG: crash").unwrap();
    assert!(
        crashed.cells[2].scenario.ends_with("(nodes 4, 5)"),
        "{crashed:?}"
    );
    // Every text in plain words: no Rust debug forms.
    let texts: Vec<String> = details(&rows)
        .into_iter()
        .chain(rows.iter().filter_map(|r| r.reason.clone()))
        .collect();
    assert!(texts.iter().any(|t| t.contains("not possible")));
    for t in &texts {
        assert!(!t.contains("NodeId(") && !t.contains("[]"), "{t}");
    }
}

#[test]
fn the_same_seed_gives_the_same_rows_apart_from_times() {
    let a = serde_json::to_value(fault_rows(2, 5, 3)).unwrap();
    let b = serde_json::to_value(fault_rows(2, 5, 3)).unwrap();
    assert_eq!(without_times(&a), without_times(&b));
}

#[test]
fn a_delay_lengthens_the_dkg_and_leaves_its_key() {
    let th = Threshold::new(3, 5).unwrap();
    let mut plain = DealerFreeSimulator::new(th, 5);
    let a = plain.run_dkg(&BTreeMap::new(), &BTreeSet::new()).unwrap();
    let delay = BTreeMap::from([
        (
            (Party::Node(node(1)), Party::Node(node(2))),
            Duration::from_millis(50),
        ),
        (
            (Party::Node(node(3)), Party::Node(node(4))),
            Duration::from_millis(70),
        ),
    ]);
    let faults = MessageFaults {
        delay: delay.clone(),
        ..MessageFaults::default()
    };
    let mut slow = DealerFreeSimulator::new(th, 5);
    let b = slow
        .run_dkg_with(&BTreeMap::new(), &BTreeSet::new(), &faults)
        .unwrap();
    assert!(a.honest_agree && b.honest_agree);
    assert_eq!(a.group_public_key, b.group_public_key);
    assert_eq!((a.messages, a.bytes), (b.messages, b.bytes));
    let wan = NetworkModel::wan();
    let before = wan.stage_latency(slow.trace(), Stage::Dkg, 5).total;
    let after = wan
        .stage_latency_delayed(slow.trace(), Stage::Dkg, 5, &delay)
        .total;
    assert!(after > before, "{after:?} vs {before:?}");
    assert!(after <= before + Duration::from_millis(70 * 5));
}

#[test]
fn dropped_messages_are_outcomes_never_panics() {
    let th = Threshold::new(3, 5).unwrap();
    // A dropped deal message is a missing deal: complained about, answered, key agreed.
    let faults = MessageFaults {
        drop: BTreeSet::from([(Round::Deal, node(1), node(5))]),
        ..MessageFaults::default()
    };
    let mut sim = DealerFreeSimulator::new(th, 9);
    let s = sim
        .run_dkg_with(&BTreeMap::new(), &BTreeSet::new(), &faults)
        .unwrap();
    assert_eq!(s.dropped, 1);
    assert!(s.honest_agree, "{s:?}");
    // Random drops: whatever happens is reported, and the same seed repeats it.
    for rate in [0.05, 0.3, 1.0] {
        let faults = MessageFaults {
            drop_rate: rate,
            drop_seed: 4,
            ..MessageFaults::default()
        };
        let run = |faults: &MessageFaults| {
            let mut sim = DealerFreeSimulator::new(th, 9);
            sim.run_dkg_with(&BTreeMap::new(), &BTreeSet::new(), faults)
                .unwrap()
        };
        let (a, b) = (run(&faults), run(&faults));
        assert!(a.dropped > 0, "rate {rate}");
        assert_eq!(
            (a.honest_agree, a.dropped, a.messages, &a.failures),
            (b.honest_agree, b.dropped, b.messages, &b.failures)
        );
        assert_eq!(a.honest_agree, a.group_public_key.is_some());
    }
    // A dropped message of a node that does not exist is a parameter error.
    let bad = MessageFaults {
        drop: BTreeSet::from([(Round::Deal, node(1), node(9))]),
        ..MessageFaults::default()
    };
    assert!(
        DealerFreeSimulator::new(th, 9)
            .run_dkg_with(&BTreeMap::new(), &BTreeSet::new(), &bad)
            .is_err()
    );
}

#[test]
fn misbehaving_nodes_up_to_the_limit_are_reported() {
    let th = Threshold::new(3, 5).unwrap();
    for kind in [
        Misbehaviour::BadCommitment,
        Misbehaviour::BadJustification { victim: node(5) },
        Misbehaviour::Silent,
        Misbehaviour::Equivocate,
    ] {
        for m in 1..=3u8 {
            let faulty: BTreeMap<NodeId, Misbehaviour> = (1..=m).map(|i| (node(i), kind)).collect();
            let mut sim = DealerFreeSimulator::new(th, 2);
            let s = sim.run_dkg(&faulty, &BTreeSet::new()).unwrap();
            if m < 3 {
                assert!(s.honest_agree, "{kind} × {m}: {s:?}");
            }
        }
    }
}

/// The `fault_tolerance` section of `summary.md` at (3, 5) over every reference image
/// (run with `--ignored --nocapture`, in release).
#[test]
#[ignore = "slow: the whole fault_tolerance set over every reference image"]
fn print_the_fault_tolerance_summary_at_3_5() {
    let all = named_images(usize::MAX);
    let mut config = ExperimentConfig::new(Threshold::new(3, 5).unwrap(), 0);
    config.figures = BTreeSet::from([FigureSet::FaultTolerance]);
    let data = run_dealer_free_experiment(&config, &all, &mut |_, _, _| {}).unwrap();
    let run = dealer_free_sim::summary::RunInfo {
        command_line: String::new(),
        version: String::new(),
        machine: String::new(),
    };
    let summary = dealer_free_sim::summary::summary_markdown(&data, &run, &[]);
    let section = summary.split("## fault_tolerance").nth(1).unwrap_or("");
    println!("{} images\n## fault_tolerance{section}", all.len());
}
