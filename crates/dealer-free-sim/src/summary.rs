//! `summary.md`: how the run was made (the exact command line, seed, version and machine),
//! then a section of key numbers for each figure set that ran — and only for those — and the
//! sections the caller adds ([`Section`]: the secure-ranking comparison
//! ([`comparison_section`]), a measured cluster).

use std::fmt::Write;

use crate::experiment::{ExperimentData, FigureSet, fault_matrix};
use crate::ranking::{Hit, SecureDistanceComparison};

/// How a run was made.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// The command line, as typed.
    pub command_line: String,
    /// The crate version.
    pub version: String,
    /// The machine (CPU model, cores).
    pub machine: String,
}

/// A section of `summary.md` that is not one of the simulator's figure sets (the
/// secure-ranking comparison, a measured cluster): `## title`, then `body` (Markdown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The heading, e.g. `"secure_distance_comparison"`.
    pub title: String,
    /// The Markdown under it.
    pub body: String,
}

/// The summary of `data` as Markdown: how the run was made, one section per figure set that
/// ran (none for the others), then `extra`.
#[must_use]
pub fn summary_markdown(data: &ExperimentData, run: &RunInfo, extra: &[Section]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# dealer-free-sis experiment\n");
    let _ = writeln!(s, "- command: `{}`", run.command_line);
    let _ = writeln!(s, "- seed: {}", data.seed);
    let _ = writeln!(s, "- version: {}", run.version);
    let _ = writeln!(s, "- machine: {}", run.machine);
    let _ = writeln!(
        s,
        "- setting: t = {}, n = {}, {} images",
        data.t, data.n, data.images
    );
    let ran: Vec<&str> = FigureSet::ALL
        .iter()
        .filter(|f| data.figures.contains(f))
        .map(|f| f.name())
        .collect();
    let _ = writeln!(
        s,
        "- figure sets: {}",
        if ran.is_empty() {
            "none".to_owned()
        } else {
            ran.join(", ")
        }
    );
    let wants = |set: FigureSet| data.figures.contains(&set);
    if wants(FigureSet::StageCommunication) {
        stage_communication_section(&mut s, data);
    }
    if wants(FigureSet::StageLatency) {
        stage_latency_section(&mut s, data);
    }
    if wants(FigureSet::DkgOverhead) {
        dkg_section(&mut s, data);
    }
    if wants(FigureSet::FaultTolerance) {
        fault_section(&mut s, data);
    }
    if wants(FigureSet::Batching) {
        batching_section(&mut s, data);
    }
    if wants(FigureSet::Scaling) {
        scaling_section(&mut s, data);
    }
    for section in extra {
        let _ = writeln!(s, "\n## {}\n", section.title);
        s.push_str(section.body.trim_end());
        s.push('\n');
    }
    s
}

fn stage_communication_section(s: &mut String, data: &ExperimentData) {
    let _ = writeln!(s, "\n## stage_communication\n");
    let _ = writeln!(
        s,
        "| design | stage | messages | bytes |\n|---|---|---:|---:|"
    );
    let mut totals: Vec<(&str, &str, usize, usize)> = Vec::new();
    for r in &data.stage_communication {
        match totals
            .iter_mut()
            .find(|(d, st, _, _)| *d == r.design && *st == r.stage)
        {
            Some(t) => {
                t.2 += r.messages;
                t.3 += r.bytes;
            }
            None => totals.push((r.design, r.stage, r.messages, r.bytes)),
        }
    }
    for (d, st, m, b) in totals {
        let _ = writeln!(s, "| {d} | {st} | {m} | {b} |");
    }
}

fn stage_latency_section(s: &mut String, data: &ExperimentData) {
    let _ = writeln!(s, "\n## stage_latency\n");
    let _ = writeln!(
        s,
        "| design | stage | network | latency (ms) |\n|---|---|---|---:|"
    );
    for r in &data.stage_latency {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.2} |",
            r.design, r.stage, r.network, r.latency_ms
        );
    }
}

fn dkg_section(s: &mut String, data: &ExperimentData) {
    let _ = writeln!(s, "\n## dkg_overhead\n");
    let _ = writeln!(
        s,
        "| n | t | messages | bytes | CPU (ms) | dealer setup messages | dealer setup bytes | dealer setup CPU (ms) |\n|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in &data.dkg_overhead {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.1} | {} | {} | {:.2} |",
            r.n,
            r.t,
            r.messages,
            r.bytes,
            r.cpu_ms,
            r.dealer_messages,
            r.dealer_bytes,
            r.dealer_cpu_ms
        );
    }
    let _ = writeln!(s);
    for (metric, by_rule) in &data.dkg_exponents {
        let what = match metric.as_str() {
            "cpu_ms" => "CPU (measured)",
            other => other,
        };
        for (rule, b) in by_rule {
            let _ = writeln!(s, "- DKG {what} grow as n^{b:.2} for {rule}.");
        }
    }
}

fn fault_section(s: &mut String, data: &ExperimentData) {
    let _ = writeln!(s, "\n## fault_tolerance\n");
    let _ = writeln!(s, "{}.\n", fault_matrix::tolerance(data.t, data.n));
    let matrix = fault_matrix::fault_matrix(&data.fault_tolerance);
    let columns: Vec<String> = matrix
        .faulty
        .iter()
        .map(|k| format!("{k} faulty"))
        .collect();
    let _ = writeln!(
        s,
        "| stage: fault | {} |\n|---|{}",
        columns.join(" | "),
        "---|".repeat(columns.len())
    );
    for row in &matrix.rows {
        let cells: Vec<String> = matrix
            .faulty
            .iter()
            .map(|k| {
                row.cells.iter().find(|c| c.faulty == *k).map_or_else(
                    || "—".to_owned(),
                    |c| {
                        let [a, b] = fault_matrix::cell_lines(c);
                        if b.is_empty() { a } else { format!("{a}, {b}") }
                    },
                )
            })
            .collect();
        let _ = writeln!(s, "| {} | {} |", row.label, cells.join(" | "));
    }
    let _ = writeln!(
        s,
        "\n(ok: the stage did its job, with its WAN latency; \"no search\" etc.: what did not work; \
         —: not injected.) Every scenario:\n"
    );
    for line in fault_matrix::details(&data.fault_tolerance) {
        let _ = writeln!(s, "- {}", line.replace('|', "/"));
    }
}

/// The `## secure_distance_comparison` section: both rankings side by side, then the time
/// and bytes of each.
#[must_use]
pub fn comparison_section(c: &SecureDistanceComparison) -> Section {
    let mut s = String::new();
    let servers: Vec<String> = c.servers.iter().map(ToString::to_string).collect();
    let _ = writeln!(
        s,
        "Query `{}` (pHash {}); n = {}, t = {}; secure ranking among servers {}; top {}, at \
         least {} band vote(s), Hamming distance at most {}; {} images stored, {} candidate(s).\n",
        c.query.path,
        c.query.phash,
        c.nodes,
        c.threshold,
        servers.join(", "),
        c.params.topk,
        c.params.min_band_votes,
        c.params.max_hamming,
        c.images,
        c.secure.candidates
    );
    let _ = writeln!(
        s,
        "| rank | baseline: distance | votes | image | secure: distance | votes | image |\n\
         |---:|---:|---:|---|---:|---:|---|"
    );
    let cell = |h: Option<&Hit>| -> String {
        h.map_or_else(
            || " | | ".to_owned(),
            |h| {
                let name = h.path.as_deref().unwrap_or(&h.id).replace('|', "/");
                format!("{} | {} | {name}", h.distance, h.band_votes)
            },
        )
    };
    let rows = c.baseline.ranking.len().max(c.secure.ranking.len());
    for i in 0..rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            i + 1,
            cell(c.baseline.ranking.get(i)),
            cell(c.secure.ranking.get(i))
        );
    }
    if rows == 0 {
        let _ = writeln!(s, "| — | no match within the parameters | | | | | |");
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "- agree: {}",
        if c.agree {
            "yes, identical rankings"
        } else {
            "NO, the rankings differ"
        }
    );
    if !c.secure.wrong_shares_from.is_empty() {
        let ids: Vec<String> = c
            .secure
            .wrong_shares_from
            .iter()
            .map(u8::to_string)
            .collect();
        let _ = writeln!(
            s,
            "- wrong distance shares corrected from nodes {}",
            ids.join(", ")
        );
    }
    let t = &c.timing_ms.secure;
    let _ = writeln!(
        s,
        "- time: baseline {:.3} ms; secure online {:.2} ms (tokens {:.2}, candidate lookup \
         {:.2}, query sharing {:.2}, servers {:.2}, open and rank {:.2}) + masks offline {:.2} ms",
        c.timing_ms.baseline_rank_ms,
        t.online_total_ms,
        t.tokens_ms,
        t.candidate_lookup_ms,
        t.query_sharing_ms,
        t.node_distance_ms,
        t.open_and_rank_ms,
        t.masks_offline_ms
    );
    let b = &c.secure.bytes;
    let _ = writeln!(
        s,
        "- bytes: baseline {} (request {}, response {}); secure online {} (distance shares {} = \
         {:.1} per candidate and server) + masks offline {}",
        c.baseline.bytes.total,
        c.baseline.bytes.request,
        c.baseline.bytes.response,
        b.online_total,
        b.distance_responses,
        b.distance_bytes_per_candidate_per_server,
        b.masks_offline
    );
    Section {
        title: "secure_distance_comparison".to_owned(),
        body: s,
    }
}

/// The `## scaling` section: both sweeps, then the fitted exponents.
fn scaling_section(s: &mut String, data: &ExperimentData) {
    let Some(d) = &data.scaling else {
        return;
    };
    let _ = writeln!(s, "\n## scaling\n");
    if !d.by_images.is_empty() {
        let _ = writeln!(
            s,
            "Stored images at t = {}, n = {} (the real images first, then synthetic ones):\n",
            d.t, d.n
        );
        let _ = writeln!(
            s,
            "| stored | synthetic | candidates | Stage-1 bytes (synthetic) | per image | search messages | search bytes | search CPU (ms) | search WAN (ms) | retrieval bytes |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for r in &d.by_images {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.1} | {} | {} | {:.1} | {:.1} | {} |",
                r.stored,
                r.synthetic,
                r.candidates,
                r.stage1.bytes,
                r.stage1_bytes_per_image,
                r.search.messages,
                r.search.bytes,
                r.search.cpu_ms,
                r.search.wan_ms,
                r.retrieval.bytes
            );
        }
        let _ = writeln!(s);
    }
    if !d.by_nodes.is_empty() {
        let _ = writeln!(s, "Nodes, t = ceil(n/2):\n");
        let _ = writeln!(
            s,
            "| n | t | Stage-1 messages | Stage-1 bytes | search messages | search bytes | search CPU (ms) | search WAN (ms) | retrieval bytes |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for r in &d.by_nodes {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {:.1} | {:.1} | {} |",
                r.n,
                r.t,
                r.stage1.messages,
                r.stage1.bytes,
                r.search.messages,
                r.search.bytes,
                r.search.cpu_ms,
                r.search.wan_ms,
                r.retrieval.bytes
            );
        }
        let _ = writeln!(s);
    }
    for (what, b) in &d.exponents {
        let _ = writeln!(s, "- {what}: grows as x^{b:.2}");
    }
    for (what, b) in &d.timing_ms {
        let _ = writeln!(s, "- {what} (measured): grows as x^{b:.2}");
    }
}

/// The `## batching` section: one line per run, then what each option saves or costs.
fn batching_section(s: &mut String, data: &ExperimentData) {
    let Some(b) = &data.batching else {
        return;
    };
    let _ = writeln!(s, "\n## batching\n");
    let _ = writeln!(
        s,
        "| images per request | padded | compressed | token requests | messages | bytes | token bytes | share bytes | LAN (ms) | WAN (ms) |\n|---:|---|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    let yes = |b: bool| if b { "yes" } else { "no" };
    for r in &b.rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.1} |",
            r.batch,
            yes(r.padded),
            yes(r.compressed),
            r.token_requests,
            r.messages,
            r.bytes,
            r.token_bytes,
            r.share_bytes,
            r.lan_ms,
            r.wan_ms
        );
    }
    let _ = writeln!(s);
    for note in b.findings() {
        let _ = writeln!(s, "- {note}");
    }
}
