//! The experiment's figures: [`ExperimentData`] turned into [`Figure`]s, each with the rows
//! it was drawn from as its JSON data.

use serde_json::{Value, json};

use super::dkg_sizes::{Metric, RULES, Rule};
use super::fault_matrix::{self, Outcome};
use super::{ExperimentData, FigureSet, batching, scale};
use crate::figures::{CellStatus, Figure, Grid, GridCell, Panel, Series};

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
    let mut ns: Vec<u8> = data.dkg_overhead.iter().map(|r| r.n).collect();
    ns.sort_unstable();
    ns.dedup();
    let mut f = Figure::lines(
        "dkg_overhead",
        "DKG messages, bytes and CPU vs number of nodes",
        "nodes n (log scale)",
        "",
    )
    .with_log_axes(true, true)
    .with_x_ticks(ns.iter().map(|&n| f64::from(n)).collect());
    let [(half, rule_half), (third, rule_third)] = RULES;
    // Metric key, panel title, y label, the DKG's value, the dealer's value.
    let metrics: [(&str, &str, &str, Metric, Metric); 3] = [
        (
            "messages",
            "messages",
            "messages (log scale)",
            |r| r.messages as f64,
            |r| r.dealer_messages as f64,
        ),
        (
            "bytes",
            "bytes on the wire",
            "bytes (log scale)",
            |r| r.bytes as f64,
            |r| r.dealer_bytes as f64,
        ),
        (
            "cpu_ms",
            "CPU, all parties",
            "CPU in ms (log scale)",
            |r| r.cpu_ms,
            |r| r.dealer_cpu_ms,
        ),
    ];
    let exponent = |metric: &str, rule: &str| {
        data.dkg_exponents
            .get(metric)
            .and_then(|m| m.get(rule))
            .copied()
            .unwrap_or(f64::NAN)
    };
    let mut fitted = Vec::new();
    for (metric, title, y_label, dkg, dealer) in metrics {
        let points = |rule: Rule, value: Metric| -> Vec<(f64, f64)> {
            data.dkg_overhead
                .iter()
                .filter(|r| r.t == rule(r.n))
                .map(|r| (f64::from(r.n), value(r)))
                .collect()
        };
        f = f.with_panel(Panel {
            title: format!(
                "{title}: n^{:.2} / n^{:.2}",
                exponent(metric, half),
                exponent(metric, third)
            ),
            y_label: y_label.to_owned(),
            y_log: true,
            series: vec![
                Series::line(format!("DKG, {half}"), points(rule_half, dkg)),
                Series::line(format!("DKG, {third}"), points(rule_third, dkg)),
                Series::line(format!("dealer, {half}"), points(rule_half, dealer)),
            ],
        });
        let what = if metric == "cpu_ms" { "CPU" } else { metric };
        fitted.push(format!(
            "{what} n^{:.2} / n^{:.2}",
            exponent(metric, half),
            exponent(metric, third)
        ));
    }
    f.notes.push(format!(
        "fitted exponents in n for {half} / {third}: {}",
        fitted.join(", ")
    ));
    f.notes.push(
        "messages and bytes delivered (a broadcast once per recipient); CPU measured on one \
         thread; the dealer's key setup sends one message per node"
            .to_owned(),
    );
    (
        f,
        json!({
            "rows": data.dkg_overhead,
            "bytes_exponent": data.dkg_bytes_exponent,
            "exponents": data.dkg_exponents,
        }),
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
    let matrix = fault_matrix::fault_matrix(&data.fault_tolerance);
    let cells = matrix
        .rows
        .iter()
        .enumerate()
        .flat_map(|(i, row)| {
            let columns = &matrix.faulty;
            row.cells.iter().map(move |c| GridCell {
                row: i,
                column: columns
                    .iter()
                    .position(|k| *k == c.faulty)
                    .unwrap_or(usize::MAX),
                status: match c.outcome {
                    Outcome::Ok => CellStatus::Good,
                    Outcome::Partial => CellStatus::Partial,
                    Outcome::Failed => CellStatus::Bad,
                },
                text: fault_matrix::cell_lines(c).to_vec(),
            })
        })
        .collect();
    let grid = Grid {
        rows: matrix.rows.iter().map(|r| r.label.clone()).collect(),
        columns: matrix.faulty.iter().map(ToString::to_string).collect(),
        cells,
        legend: vec![
            (CellStatus::Good, "ok (WAN latency)".to_owned()),
            (CellStatus::Partial, "partly: what failed".to_owned()),
            (CellStatus::Bad, "failed: why".to_owned()),
            (CellStatus::Empty, "not injected".to_owned()),
        ],
    };
    let mut f = Figure::grid(
        "fault_tolerance",
        format!(
            "Which stage survives how many faulty nodes (t = {}, n = {})",
            data.t, data.n
        ),
        "faulty nodes",
        "stage: fault injected",
        grid,
    );
    f.notes.push(fault_matrix::tolerance(data.t, data.n));
    f.notes.push(
        "crashed: the last nodes (n, n − 1, …); misbehaving or delayed: the first (1, 2, …)"
            .to_owned(),
    );
    f.notes.push(
        "every scenario in words: summary.md and this figure's JSON (data.details)".to_owned(),
    );
    (
        f,
        json!({
            "rows": data.fault_tolerance,
            "matrix": matrix,
            "details": fault_matrix::details(&data.fault_tolerance),
        }),
    )
}
