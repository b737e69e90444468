//! The sections of `summary.md` that come from this command rather than from the simulator:
//! `cluster_stages`, the key numbers of `cluster_stages.csv` (the measured mean, p50 and p99
//! per stage beside the simulator's LAN and WAN latency and bytes for the same (t, n) and
//! images). Every number is one of the CSV's values, rounded for reading.

use std::fmt::Write as _;
use std::path::Path;

use dealer_free_sim::summary::Section;

use super::cluster::{FIGURE_NAME, Row};

/// The value of `metric` for `stage` from `source`, if the rows have it.
fn value(rows: &[Row], stage: &str, source: &str, metric: &str) -> Option<f64> {
    rows.iter()
        .find(|r| r.stage == stage && r.source == source && r.metric == metric)
        .map(|r| r.value)
}

/// A latency in ms with one decimal, or "—".
fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_owned(), |v| format!("{v:.1}"))
}

/// The `cluster_stages` section: a table per stage (measured mean, p50, p99 and samples;
/// simulated LAN and WAN latency and bytes), then what else the CSV says (Stage-2's search
/// and get alone, candidates per search, images held before and added), and how many message
/// kinds the simulator and the cluster put different bytes on the wire for.
pub(super) fn cluster_section(rows: &[Row], dir: &Path, unequal_kinds: usize) -> Section {
    let mut s = String::new();
    let (n, t) = rows.first().map_or((0, 0), |r| (r.n, r.t));
    let _ = writeln!(
        s,
        "The running cluster at `{}` (n = {n}, t = {t}) measured beside the simulator \
         (`{FIGURE_NAME}.csv`, `{FIGURE_NAME}.png`). Measured: wall time over loopback with \
         mutual TLS, latency only (the cluster client does not count bytes); simulated: the \
         simulator's latency under the LAN and WAN models and its bytes, for the same images.\n",
        dir.display()
    );
    let _ = writeln!(
        s,
        "| stage | measured mean (ms) | p50 (ms) | p99 (ms) | samples | simulated LAN (ms) | \
         simulated WAN (ms) | simulated bytes |\n|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (stage, what) in [
        ("Stage-1", "Stage-1 (per image)"),
        ("Stage-2", "Stage-2 (per query and get)"),
    ] {
        let measured = |metric| value(rows, stage, "measured-cluster", metric);
        let samples = rows
            .iter()
            .find(|r| r.stage == stage && r.source == "measured-cluster")
            .map_or(0, |r| r.samples);
        let bytes = value(rows, stage, "simulated-lan", "bytes_mean")
            .or_else(|| value(rows, stage, "simulated-wan", "bytes_mean"))
            .map_or_else(|| "—".to_owned(), |b| format!("{b:.0}"));
        let _ = writeln!(
            s,
            "| {what} | {} | {} | {} | {samples} | {} | {} | {bytes} |",
            ms(measured("latency_ms_mean")),
            ms(measured("latency_ms_p50")),
            ms(measured("latency_ms_p99")),
            ms(value(rows, stage, "simulated-lan", "latency_ms_mean")),
            ms(value(rows, stage, "simulated-wan", "latency_ms_mean")),
        );
    }
    let _ = writeln!(s);
    let measured = |stage, metric| value(rows, stage, "measured-cluster", metric);
    let _ = writeln!(
        s,
        "- Stage-2 alone: the secure search {} ms, the get of its top hit {} ms (means); {} \
         candidates per search",
        ms(measured("Stage-2", "search_ms_mean")),
        ms(measured("Stage-2", "get_ms_mean")),
        ms(measured("Stage-2", "candidates_mean")),
    );
    let before = rows
        .iter()
        .find(|r| r.source == "measured-cluster")
        .map_or(0, |r| r.stored_before);
    let added = measured("Stage-1", "images_added").unwrap_or(0.0);
    let _ = writeln!(
        s,
        "- the cluster held {before} images before this run; it added {added:.0}"
    );
    let _ = writeln!(
        s,
        "- message kinds where the simulator's bytes and the cluster's differ: {unequal_kinds} \
         (cluster_bytes.csv)"
    );
    Section {
        title: FIGURE_NAME.to_owned(),
        body: s,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::*;

    fn row(stage: &'static str, source: &'static str, metric: &'static str, value: f64) -> Row {
        Row {
            stage,
            source,
            metric,
            value,
            n: 3,
            t: 2,
            samples: 4,
            stored_before: 8,
            note: String::new(),
        }
    }

    #[test]
    fn the_cluster_section_puts_the_measured_beside_the_simulated() {
        let rows = vec![
            row("Stage-1", "simulated-lan", "latency_ms_mean", 10.04),
            row("Stage-1", "simulated-lan", "bytes_mean", 181_000.0),
            row("Stage-1", "simulated-wan", "latency_ms_mean", 170.0),
            row("Stage-2", "simulated-wan", "latency_ms_mean", 600.0),
            row("Stage-1", "measured-cluster", "latency_ms_mean", 52.0),
            row("Stage-1", "measured-cluster", "latency_ms_p50", 50.0),
            row("Stage-1", "measured-cluster", "latency_ms_p99", 80.0),
            row("Stage-1", "measured-cluster", "images_added", 4.0),
            row("Stage-2", "measured-cluster", "latency_ms_mean", 30.0),
            row("Stage-2", "measured-cluster", "search_ms_mean", 20.0),
        ];
        let s = cluster_section(&rows, Path::new("cluster"), 0);
        assert_eq!(s.title, "cluster_stages");
        assert!(
            s.body.contains(
                "| Stage-1 (per image) | 52.0 | 50.0 | 80.0 | 4 | 10.0 | 170.0 | 181000 |"
            ),
            "{}",
            s.body
        );
        assert!(
            s.body
                .contains("| Stage-2 (per query and get) | 30.0 | — | — | 4 | — | 600.0 | — |"),
            "{}",
            s.body
        );
        assert!(s.body.contains("held 8 images before this run; it added 4"));
        assert!(s.body.contains("n = 3, t = 2"));
    }
}
