//! The scaling data: the node sweep and the stored-image sweep run the real stages, their
//! counts follow the protocol's structure, and the same seed gives the same data apart from
//! measured times.
#![allow(clippy::unwrap_used)] // test code

mod common;

use common::{named_images, without_times};

use std::collections::BTreeSet;

use dealer_free_sim::experiment::{
    ExperimentConfig, ExperimentData, FigureSet, ScaleConfig, run_dealer_free_experiment,
};
use phr_sis::Threshold;

fn run(seed: u64) -> ExperimentData {
    let mut config = ExperimentConfig::new(Threshold::new(2, 3).unwrap(), seed);
    config.figures = BTreeSet::from([FigureSet::Scaling]);
    config.scale = ScaleConfig {
        nodes: vec![3, 5, 9],
        images: vec![10, 40, 160],
    };
    run_dealer_free_experiment(&config, &named_images(12), &mut |_, _, _| {}).unwrap()
}

#[test]
fn both_sweeps_run_and_grow_as_the_protocol_says() {
    let d = run(3);
    let s = d.scaling.as_ref().unwrap();
    assert!(d.stage_communication.is_empty(), "only the scaling set ran");
    let ns: Vec<u8> = s.by_nodes.iter().map(|r| r.n).collect();
    assert_eq!(ns, [3, 5, 9]);
    for r in &s.by_nodes {
        assert_eq!(r.t, r.n.div_ceil(2));
        assert!(r.candidates >= 1, "the query finds itself at n = {}", r.n);
        // Every node gets a token request, a record and sends an acknowledgement per image.
        assert!(r.stage1.messages >= 3 * usize::from(r.n) * r.images.min(1));
    }
    // More nodes, more bytes in both stages.
    for w in s.by_nodes.windows(2) {
        assert!(w[1].stage1.bytes > w[0].stage1.bytes);
        assert!(w[1].search.bytes > w[0].search.bytes);
        // The retrieval asks t = ceil(n/2) nodes for one share each.
        assert!(w[1].retrieval.messages > w[0].retrieval.messages);
    }
    let stored: Vec<usize> = s.by_images.iter().map(|r| r.stored).collect();
    assert_eq!(stored, [10, 40, 160]);
    assert_eq!(s.by_images[0].synthetic, 0);
    assert_eq!(s.by_images[2].synthetic, 160 - 12);
    for w in s.by_images.windows(2) {
        assert!(w[1].stage1.bytes >= w[0].stage1.bytes);
        assert!(w[1].candidates >= w[0].candidates);
    }
    // The real images' Stage-1 is kept apart; at 10 stored images nothing synthetic is.
    assert!(s.real_stage1.as_ref().unwrap().bytes > 0);
    assert_eq!(s.by_images[0].stage1.bytes, 0);
    // Every synthetic image costs the same Stage-1 bytes (one record per node, same sizes),
    // apart from the token requests, which are batched.
    let per = |r: &dealer_free_sim::experiment::scale::ImagesRow| r.stage1_bytes_per_image;
    let (a, b) = (per(&s.by_images[1]), per(&s.by_images[2]));
    assert!((a - b).abs() / a < 0.05, "{a} vs {b}");
    for key in [
        "Stage-1 bytes vs n",
        "search bytes vs n",
        "search messages vs n",
        "Stage-1 bytes vs synthetic images",
        "candidates vs stored images",
    ] {
        let b = s.exponents[key];
        assert!(b.is_finite() && b > 0.0, "{key}: {b}");
    }
    // Stage-1 of the synthetic images grows linearly in their number.
    let b = s.exponents["Stage-1 bytes vs synthetic images"];
    assert!((0.95..1.05).contains(&b), "{b}");
}

#[test]
fn the_same_seed_gives_the_same_scaling_data_apart_from_times() {
    let a = serde_json::to_value(run(5).scaling).unwrap();
    let b = serde_json::to_value(run(5).scaling).unwrap();
    assert_eq!(without_times(&a), without_times(&b));
}
