//! The experiment's figures: [`ExperimentData`] turned into [`Figure`]s, each with the rows
//! it was drawn from as its JSON data.

use serde_json::{Value, json};

use super::{ExperimentData, FigureSet, batching, scale};
use crate::figures::{Figure, Series};

const STAGES: [(&str, &str, &str); 3] = [
    ("key setup", "DKG", "dealer setup"),
    ("Stage-1", "Stage-1", "Stage-1"),
    ("Stage-2", "Stage-2", "Stage-2"),
];

/// Every figure of `data`, with its data.
#[must_use]
pub fn experiment_figures(data: &ExperimentData) -> Vec<(Figure, Value)> {
    let mut out = Vec::new();
    let setting = format!("t = {}, n = {}, {} images", data.t, data.n, data.images);

    let wants = |set: FigureSet| data.figures.contains(&set);
    if wants(FigureSet::StageCommunication) {
        out.push(stage_communication(data, &setting));
    }
    if wants(FigureSet::DkgOverhead) {
        out.push(dkg_overhead(data));
    }
    if wants(FigureSet::StageLatency) {
        out.push(stage_latency(data, &setting));
    }
    if let Some(b) = data
        .batching
        .as_ref()
        .filter(|_| wants(FigureSet::Batching))
    {
        out.push(batching::figure(b, data));
    }
    if wants(FigureSet::FaultTolerance) {
        out.push(fault_tolerance(data));
    }
    if let Some(s) = data.scaling.as_ref().filter(|_| wants(FigureSet::Scaling)) {
        out.extend(scale::figures(s));
    }
    out
}

/// The stages present in `data`'s rows, in report order.
fn stages_of(data: &ExperimentData) -> Vec<(&'static str, &'static str, &'static str)> {
    STAGES
        .into_iter()
        .filter(|s| {
            data.stage_communication
                .iter()
                .any(|r| r.stage == s.1 || r.stage == s.2)
        })
        .collect()
}

fn stage_communication(data: &ExperimentData, setting: &str) -> (Figure, Value) {
    let stages = stages_of(data);
    let total = |design: &str, stage: &str, bytes: bool| -> f64 {
        data.stage_communication
            .iter()
            .filter(|r| r.design == design && r.stage == stage)
            .map(|r| if bytes { r.bytes } else { r.messages })
            .sum::<usize>() as f64
    };
    let mut f = Figure::bars(
        "stage_communication",
        format!("Bytes on the wire per stage ({setting})"),
        "stage",
        "bytes on the wire (log scale)",
        stages.iter().map(|s| s.0.to_owned()).collect(),
    )
    .with_log_axes(false, true);
    f.series = vec![
        Series::bars(
            "dealer-free",
            stages
                .iter()
                .map(|s| total("dealer-free", s.1, true))
                .collect(),
        ),
        Series::bars(
            "dealer-based",
            stages
                .iter()
                .map(|s| total("dealer-based", s.2, true))
                .collect(),
        ),
    ];
    for s in &stages {
        f.notes.push(format!(
            "{}: dealer-free {} messages, {} bytes; dealer-based {} messages, {} bytes",
            s.0,
            total("dealer-free", s.1, false),
            total("dealer-free", s.1, true),
            total("dealer-based", s.2, false),
            total("dealer-based", s.2, true),
        ));
    }
    (f, json!({ "rounds": data.stage_communication }))
}

fn dkg_overhead(data: &ExperimentData) -> (Figure, Value) {
    let mut f = Figure::lines(
        "dkg_overhead",
        "DKG bytes on the wire vs number of nodes",
        "nodes n (log scale)",
        "bytes on the wire (log scale)",
    )
    .with_log_axes(true, true);
    let rule_half = |n: u8| n / 2 + 1;
    let rule_third = |n: u8| n.div_ceil(3) + 1;
    f.series = vec![
        Series::line(
            "DKG, t = floor(n/2) + 1",
            data.dkg_overhead
                .iter()
                .filter(|r| r.t == rule_half(r.n))
                .map(|r| (f64::from(r.n), r.bytes as f64))
                .collect(),
        ),
        Series::line(
            "DKG, t = ceil(n/3) + 1",
            data.dkg_overhead
                .iter()
                .filter(|r| r.t == rule_third(r.n))
                .map(|r| (f64::from(r.n), r.bytes as f64))
                .collect(),
        ),
        Series::line(
            "dealer setup, t = floor(n/2) + 1",
            data.dkg_overhead
                .iter()
                .filter(|r| r.t == rule_half(r.n))
                .map(|r| (f64::from(r.n), r.dealer_bytes as f64))
                .collect(),
        ),
    ];
    for (rule, b) in &data.dkg_bytes_exponent {
        f.notes.push(format!("{rule}: bytes grow as n^{b:.2}"));
    }
    (
        f,
        json!({ "rows": data.dkg_overhead, "bytes_exponent": data.dkg_bytes_exponent }),
    )
}

fn stage_latency(data: &ExperimentData, setting: &str) -> (Figure, Value) {
    let stages = stages_of(data);
    let mut networks: Vec<&str> = Vec::new();
    for r in &data.stage_latency {
        if !networks.contains(&r.network.as_str()) {
            networks.push(&r.network);
        }
    }
    let latency = |design: &str, stage: &str, network: &str| -> f64 {
        data.stage_latency
            .iter()
            .find(|r| r.design == design && r.stage == stage && r.network == network)
            .map_or(0.0, |r| r.latency_ms)
    };
    let mut f = Figure::bars(
        "stage_latency",
        format!("Latency per stage under the network model ({setting})"),
        "stage",
        "latency in ms (log scale)",
        stages.iter().map(|s| s.0.to_owned()).collect(),
    )
    .with_log_axes(false, true);
    for network in networks {
        for design in ["dealer-free", "dealer-based"] {
            f.series.push(Series::bars(
                format!("{design}, {}", network.to_uppercase()),
                stages
                    .iter()
                    .map(|s| {
                        let stage = if design == "dealer-free" { s.1 } else { s.2 };
                        latency(design, stage, network)
                    })
                    .collect(),
            ));
        }
    }
    f.notes.push(
        "LAN: 0.2 ms latency, 1 Gbit/s, 0.05 ms jitter; WAN: 40 ms, 100 Mbit/s, 5 ms jitter"
            .to_owned(),
    );
    (f, json!({ "rows": data.stage_latency }))
}

fn fault_tolerance(data: &ExperimentData) -> (Figure, Value) {
    let mut f = Figure::lines(
        "fault_tolerance",
        format!(
            "Latency (WAN) of the stage hit, while it succeeds (t = {}, n = {})",
            data.t, data.n
        ),
        "faulty nodes (crashed, misbehaving or delayed)",
        "latency of the stage hit, WAN, in ms (log scale)",
    )
    .with_log_axes(false, true);
    // One series per (stage, fault), in row order, with a point only where the stage hit
    // still did its job (the DKG ended with a key; after Stage-1 the image can be
    // retrieved; Stage-2 searched as without faults and retrieved), so a line ends where the
    // fault goes beyond what the stage tolerates. Dropped messages are in
    // the notes only (every drop scenario has one faulty sender).
    let succeeded = |r: &&super::FaultRow| match r.stage {
        "DKG" => r.dkg_key == Some(true),
        "Stage-1" => r.retrieval_ok == Some(true),
        _ => r.search_same == Some(true) && r.retrieval_ok == Some(true),
    };
    let mut keys: Vec<(&str, &str)> = Vec::new();
    for r in data.fault_tolerance.iter().filter(|r| r.fault != "drop") {
        if !keys.contains(&(r.stage, r.fault.as_str())) {
            keys.push((r.stage, &r.fault));
        }
    }
    f.series = keys
        .iter()
        .map(|(stage, fault)| {
            Series::line(
                format!("{stage}, {fault}"),
                data.fault_tolerance
                    .iter()
                    .filter(|r| r.stage == *stage && r.fault == *fault)
                    .filter(succeeded)
                    .map(|r| (r.faulty as f64, r.latency_wan_ms))
                    .collect(),
            )
        })
        .collect();
    let (t, n) = (usize::from(data.t), usize::from(data.n));
    f.notes.push(format!(
        "tolerance: retrieval up to n − t = {} nodes down; secure search up to n − (2t − 1) = {}; \
         DKG up to t − 1 = {} crashed, misbehaving or silent nodes",
        n - t,
        n.saturating_sub(2 * t - 1),
        t - 1
    ));
    let yes = |b: Option<bool>, ok: &str, bad: &str| match b {
        Some(true) => ok.to_owned(),
        Some(false) => bad.to_owned(),
        None => "not run".to_owned(),
    };
    for r in &data.fault_tolerance {
        let mut parts = Vec::new();
        if let Some(key) = r.dkg_key {
            parts.push(if key { "DKG key" } else { "NO DKG key" }.to_owned());
            if !r.disqualified.is_empty() {
                let ids: Vec<String> = r.disqualified.iter().map(u8::to_string).collect();
                parts.push(format!("disqualified {}", ids.join(", ")));
            }
        }
        if r.dkg_key.is_none() || r.search_same.is_some() || r.retrieval_ok.is_some() {
            parts.push(format!(
                "search {}",
                yes(r.search_same, "same as fault-free", "DIFFERENT")
            ));
            parts.push(format!(
                "retrieval {}",
                yes(r.retrieval_ok, "byte-identical", "FAILED")
            ));
        }
        if let Some(reason) = &r.reason {
            parts.push(reason.clone());
        }
        f.notes.push(format!(
            "{}, {}: {} ({:.0} ms)",
            r.stage,
            r.scenario,
            parts.join("; "),
            r.latency_wan_ms
        ));
    }
    (f, json!({ "rows": data.fault_tolerance }))
}
