//! `run_dealer_free_experiment`'s data: both designs in every stage, faults within tolerance
//! end with the fault-free search results, and the same seed gives the same data apart from
//! measured times.
#![allow(clippy::unwrap_used)] // test code

mod common;

use common::{named_images, without_times};

use dealer_free_sim::experiment::figures::experiment_figures;
use dealer_free_sim::experiment::{
    ExperimentConfig, ExperimentData, ScaleConfig, run_dealer_free_experiment,
};
use phr_sis::Threshold;

fn run(t: u8, n: u8, seed: u64) -> ExperimentData {
    let mut config = ExperimentConfig::new(Threshold::new(t, n).unwrap(), seed);
    config.dkg_nodes = vec![3, 5, 8];
    config.batch_sizes = vec![1, 8];
    config.scale = ScaleConfig {
        nodes: vec![3, 5],
        images: vec![8, 40],
    };
    run_dealer_free_experiment(&config, &named_images(usize::MAX), &mut |_, _, _| {}).unwrap()
}

/// The JSON without measured times (keys ending in `_ms`, and `cpu_ns`).
#[test]
fn both_designs_appear_in_every_stage_and_the_secure_search_costs_more_bytes() {
    let d = run(2, 5, 1);
    let bytes = |design: &str, stage: &str| -> usize {
        d.stage_communication
            .iter()
            .filter(|r| r.design == design && r.stage == stage)
            .map(|r| r.bytes)
            .sum()
    };
    for stage in ["Stage-1", "Stage-2"] {
        assert!(bytes("dealer-free", stage) > 0, "{stage}");
        assert!(bytes("dealer-based", stage) > 0, "{stage}");
    }
    assert!(bytes("dealer-free", "DKG") > bytes("dealer-based", "dealer setup"));
    assert!(bytes("dealer-free", "Stage-2") > bytes("dealer-based", "Stage-2"));
    // The image shares cost the same in both designs.
    let shares = |design: &str| -> usize {
        d.stage_communication
            .iter()
            .filter(|r| r.design == design && r.round == "share")
            .map(|r| r.bytes)
            .sum()
    };
    assert_eq!(shares("dealer-free"), shares("dealer-based"));
    // WAN latency above LAN latency for every stage and design.
    for lan in d.stage_latency.iter().filter(|r| r.network == "lan") {
        let wan = d
            .stage_latency
            .iter()
            .find(|r| r.network == "wan" && r.design == lan.design && r.stage == lan.stage)
            .unwrap();
        assert!(wan.latency_ms > lan.latency_ms, "{lan:?}");
    }
    assert_eq!(d.dkg_overhead.len(), 4); // n = 3 (t = 2), 5 (t = 3), 8 (t = 5, 4)
    assert!(
        d.dkg_overhead
            .iter()
            .all(|r| r.agree && r.bytes > r.dealer_bytes)
    );
    let exponent = d.dkg_bytes_exponent["t = floor(n/2) + 1"];
    assert!((1.5..3.5).contains(&exponent), "{exponent}");
}

#[test]
fn the_dkg_figure_plots_messages_bytes_and_cpu_from_the_smallest_n() {
    let d = run(2, 5, 1);
    for r in &d.dkg_overhead {
        assert!(r.messages > 0 && r.bytes > 0 && r.cpu_ms > 0.0, "{r:?}");
        assert!(
            r.dealer_messages == usize::from(r.n) && r.dealer_cpu_ms > 0.0,
            "{r:?}"
        );
    }
    for metric in ["messages", "bytes", "cpu_ms"] {
        assert_eq!(d.dkg_exponents[metric].len(), 2, "{metric}");
    }
    assert_eq!(d.dkg_exponents["bytes"], d.dkg_bytes_exponent);
    let figures = experiment_figures(&d);
    let (fig, json) = figures
        .iter()
        .find(|(f, _)| f.name == "dkg_overhead")
        .unwrap();
    // The x axis is labelled at the data's n only, so it starts at 3 (not at 1).
    assert_eq!(fig.x_ticks, vec![3.0, 5.0, 8.0]);
    let titles: Vec<&str> = fig.panels.iter().map(|p| p.title.as_str()).collect();
    assert_eq!(titles.len(), 3, "{titles:?}");
    assert!(titles[0].starts_with("messages") && titles[1].starts_with("bytes"));
    assert!(titles[2].starts_with("CPU"));
    for panel in &fig.panels {
        // Both thresholds and the dealer, one point per n each.
        assert_eq!(panel.series.len(), 3);
        for s in &panel.series {
            let xs: Vec<f64> = s.points.iter().map(|p| p.0).collect();
            assert_eq!(xs, [3.0, 5.0, 8.0], "{}: {}", panel.title, s.name);
        }
    }
    assert!(json["exponents"]["cpu_ms"].is_object());
}

#[test]
fn faults_within_tolerance_end_with_the_same_search_results() {
    let d = run(2, 5, 2);
    for row in &d.fault_tolerance {
        match (row.stage, row.fault.as_str()) {
            // The DKG tolerates t − 1 = 1 crashed node.
            ("DKG", "crash") => assert_eq!(row.dkg_key, Some(row.faulty < 2), "{row:?}"),
            // The secure search needs 2t − 1 = 3 live nodes, the retrieval t = 2.
            ("Stage-1" | "Stage-2", "crash") => {
                let search = (row.faulty <= 2).then_some(true);
                assert_eq!(row.search_same, search, "{row:?}");
                assert_eq!(row.retrieval_ok, Some(row.faulty <= 3), "{row:?}");
            }
            _ => {}
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_data_apart_from_times() {
    let a = serde_json::to_value(run(3, 5, 7)).unwrap();
    let b = serde_json::to_value(run(3, 5, 7)).unwrap();
    assert_eq!(without_times(&a), without_times(&b));
}
