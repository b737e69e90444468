//! `summary.md`: a table of every figure's key numbers, and how the run was made (the exact
//! command line, seed, version and machine).

use std::fmt::Write;

use crate::experiment::ExperimentData;

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

/// The summary of `data` as Markdown.
#[must_use]
pub fn summary_markdown(data: &ExperimentData, run: &RunInfo) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# dealer-free-sis experiment\n");
    let _ = writeln!(s, "- command: `{}`", run.command_line);
    let _ = writeln!(s, "- seed: {}", data.seed);
    let _ = writeln!(s, "- version: {}", run.version);
    let _ = writeln!(s, "- machine: {}", run.machine);
    let _ = writeln!(
        s,
        "- setting: t = {}, n = {}, {} images\n",
        data.t, data.n, data.images
    );
    let _ = writeln!(s, "## stage_communication\n");
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
    let _ = writeln!(s, "\n## dkg_overhead\n");
    let _ = writeln!(
        s,
        "| n | t | messages | bytes | CPU (ms) | dealer setup bytes |\n|---:|---:|---:|---:|---:|---:|"
    );
    for r in &data.dkg_overhead {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.1} | {} |",
            r.n, r.t, r.messages, r.bytes, r.cpu_ms, r.dealer_bytes
        );
    }
    for (rule, b) in &data.dkg_bytes_exponent {
        let _ = writeln!(s, "\nDKG bytes grow as n^{b:.2} for {rule}.");
    }
    let _ = writeln!(s, "\n## fault_tolerance\n");
    let _ = writeln!(
        s,
        "| stage | fault | scenario | faulty | DKG key | disqualified | same search results | retrieval | latency WAN (ms) | reason |\n|---|---|---|---:|---|---|---|---|---:|---|"
    );
    let show = |b: Option<bool>| match b {
        Some(true) => "yes",
        Some(false) => "no",
        None => "—",
    };
    for r in &data.fault_tolerance {
        let disqualified: Vec<String> = r.disqualified.iter().map(u8::to_string).collect();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {} |",
            r.stage,
            r.fault,
            r.scenario,
            r.faulty,
            show(r.dkg_key),
            disqualified.join(", "),
            show(r.search_same),
            show(r.retrieval_ok),
            r.latency_wan_ms,
            r.reason.as_deref().unwrap_or("").replace('|', "/")
        );
    }
    batching_section(&mut s, data);
    scaling_section(&mut s, data);
    s
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
