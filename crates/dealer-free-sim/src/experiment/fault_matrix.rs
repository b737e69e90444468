//! The `fault_tolerance` figure set read as a success matrix: for each stage and kind of fault
//! (a row) and each number of faulty nodes (a column), whether the stage still did its job,
//! with the WAN latency of the stage hit where it did ([`fault_matrix`]); every scenario in
//! one plain sentence ([`details`]); and error texts in plain words ([`plain_words`]).
//!
//! **A cell's outcome** comes from the checks its scenario made: the DKG ended with a key
//! (`key`), the images were stored (`ingest`), the secure search gave the fault-free ranking
//! (`search`), the query image came back byte-identical (`retrieval`). A Stage-1 or Stage-2
//! scenario always counts `search` and `retrieval` (a search that was not possible failed);
//! a DKG scenario counts them only where they were run on its key. `ok`: every check passed;
//! `failed`: none did; `partial`: some did.

use std::collections::BTreeMap;

use serde::Serialize;

use super::FaultRow;

/// Whether a stage did its job under a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every check passed.
    Ok,
    /// Some checks passed, others did not.
    Partial,
    /// No check passed.
    Failed,
}

/// One cell: one scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatrixCell {
    /// Faulty nodes (the column).
    pub faulty: usize,
    /// The outcome.
    pub outcome: Outcome,
    /// Each check made: `key`, `ingest`, `search`, `retrieval` → passed.
    pub checks: BTreeMap<&'static str, bool>,
    /// The latency of the stage hit under the WAN model, where it did not fail.
    pub latency_wan_ms: Option<f64>,
    /// The scenario, in words.
    pub scenario: String,
}

/// One row: a stage and a kind of fault.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatrixRow {
    /// "DKG", "Stage-1" or "Stage-2".
    pub stage: &'static str,
    /// The fault as in [`FaultRow::fault`].
    pub fault: String,
    /// `"<stage>: <fault in words>"`.
    pub label: String,
    /// One cell per scenario, by faulty nodes.
    pub cells: Vec<MatrixCell>,
}

/// The success matrix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultMatrix {
    /// The columns: every number of faulty nodes injected, ascending.
    pub faulty: Vec<usize>,
    /// The rows: DKG first, then Stage-1, then Stage-2, each in the order the experiment
    /// injects its faults.
    pub rows: Vec<MatrixRow>,
}

/// The stages in report order.
const STAGE_ORDER: [&str; 3] = ["DKG", "Stage-1", "Stage-2"];

/// A fault in words: `crash`, `bad commitment`, `one deal message dropped`, ….
#[must_use]
pub fn fault_words(fault: &str) -> String {
    match fault {
        "crash" => "crash".to_owned(),
        "delay" => "+100 ms delay".to_owned(),
        "drop:deal-message" => "1 deal message dropped".to_owned(),
        "drop:all-deals" => "a node's deals dropped".to_owned(),
        "drop:link" => "a link's messages dropped".to_owned(),
        other => other
            .strip_prefix("misbehave:")
            .unwrap_or(other)
            .replace('-', " "),
    }
}

/// The checks a row made, in the order key, ingest, search, retrieval (module
/// documentation).
#[must_use]
pub fn checks(r: &FaultRow) -> Vec<(&'static str, bool)> {
    let stages = r.stage != "DKG";
    let mut out = Vec::new();
    if let Some(key) = r.dkg_key {
        out.push(("key", key));
    }
    if let Some(ingest) = r.ingest_ok {
        out.push(("ingest", ingest));
    }
    if stages || r.search_same.is_some() {
        out.push(("search", r.search_same == Some(true)));
    }
    if stages || r.retrieval_ok.is_some() {
        out.push(("retrieval", r.retrieval_ok == Some(true)));
    }
    out
}

/// The outcome of a row's checks.
#[must_use]
pub fn outcome(r: &FaultRow) -> Outcome {
    let checks = checks(r);
    let passed = checks.iter().filter(|(_, ok)| *ok).count();
    if passed == checks.len() {
        Outcome::Ok
    } else if passed == 0 {
        Outcome::Failed
    } else {
        Outcome::Partial
    }
}

/// The matrix of `rows` (module documentation).
#[must_use]
pub fn fault_matrix(rows: &[FaultRow]) -> FaultMatrix {
    let mut faulty: Vec<usize> = rows.iter().map(|r| r.faulty).collect();
    faulty.sort_unstable();
    faulty.dedup();
    let mut out: Vec<MatrixRow> = Vec::new();
    for stage in STAGE_ORDER {
        for r in rows.iter().filter(|r| r.stage == stage) {
            let cell = MatrixCell {
                faulty: r.faulty,
                outcome: outcome(r),
                checks: checks(r).into_iter().collect(),
                latency_wan_ms: (outcome(r) != Outcome::Failed).then_some(r.latency_wan_ms),
                scenario: r.scenario.clone(),
            };
            match out
                .iter_mut()
                .find(|m| m.stage == r.stage && m.fault == r.fault)
            {
                Some(row) => row.cells.push(cell),
                None => out.push(MatrixRow {
                    stage: r.stage,
                    fault: r.fault.clone(),
                    label: format!("{}: {}", r.stage, fault_words(&r.fault)),
                    cells: vec![cell],
                }),
            }
        }
    }
    FaultMatrix { faulty, rows: out }
}

/// A cell in two short lines: what happened, then the latency (or why it failed).
#[must_use]
pub fn cell_lines(cell: &MatrixCell) -> [String; 2] {
    // In the order the stages make them.
    let failing: Vec<&str> = ["key", "ingest", "search", "retrieval"]
        .into_iter()
        .filter(|what| cell.checks.get(what) == Some(&false))
        .collect();
    let latency = cell
        .latency_wan_ms
        .map_or_else(String::new, |ms| format!("{ms:.0} ms"));
    match cell.outcome {
        Outcome::Ok => ["ok".to_owned(), latency],
        Outcome::Partial => {
            let words: Vec<String> = failing.iter().map(|w| format!("no {w}")).collect();
            [words.join(", "), latency]
        }
        Outcome::Failed => {
            let why = if failing.contains(&"key") {
                "no key".to_owned()
            } else if failing.contains(&"ingest") {
                "no ingest".to_owned()
            } else {
                let words: Vec<&str> = failing
                    .iter()
                    .map(|w| if *w == "retrieval" { "get" } else { w })
                    .collect();
                format!("no {}", words.join(" or "))
            };
            ["failed".to_owned(), why]
        }
    }
}

/// What the configuration tolerates, in one line.
#[must_use]
pub fn tolerance(t: u8, n: u8) -> String {
    let (t, n) = (usize::from(t), usize::from(n));
    format!(
        "tolerated: DKG t − 1 = {} faulty; retrieval n − t = {} down; secure search \
         n − (2t − 1) = {} down",
        t - 1,
        n - t,
        n.saturating_sub(2 * t - 1)
    )
}

/// Every scenario in one plain sentence: stage and scenario, what each check gave, who was
/// disqualified and why something was not possible; no measured time (those are in the
/// matrix and the rows, under keys ending in `_ms`), so the sentences are a function of the
/// inputs and the seed.
#[must_use]
pub fn details(rows: &[FaultRow]) -> Vec<String> {
    rows.iter()
        .map(|r| {
            let mut parts = Vec::new();
            if let Some(key) = r.dkg_key {
                parts.push(if key { "key agreed" } else { "no key" }.to_owned());
                let ids: Vec<String> = r.disqualified.iter().map(u8::to_string).collect();
                parts.push(if ids.is_empty() {
                    "none disqualified".to_owned()
                } else {
                    format!("disqualified: {}", ids.join(", "))
                });
            }
            if let Some(ingest) = r.ingest_ok {
                parts.push(if ingest { "ingest ok" } else { "ingest failed" }.to_owned());
            }
            for (what, ok) in checks(r) {
                let text = match (what, ok) {
                    ("search", true) => "search as without faults",
                    ("search", false) if r.search_same.is_none() => "search not possible",
                    ("search", false) => "search DIFFERENT from without faults",
                    ("retrieval", true) => "retrieval byte-identical",
                    ("retrieval", false) => "retrieval failed",
                    _ => continue,
                };
                parts.push(text.to_owned());
            }
            if let Some(reason) = &r.reason {
                parts.push(format!("why: {}", plain_words(reason)));
            }
            format!("{}, {}: {}", r.stage, r.scenario, parts.join("; "))
        })
        .collect()
}

/// Error text in plain words: `NodeId(3)` → `3`, an empty list `[]` → `none` (`failed: []` →
/// `none failed`), the brackets of a list dropped, and CamelCase names (`InvalidProof`) in
/// lower-case words (`invalid proof`).
#[must_use]
pub fn plain_words(text: &str) -> String {
    // NodeId(7) → 7.
    let mut s = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("NodeId(") {
        s.push_str(&rest[..i]);
        let after = &rest[i + "NodeId(".len()..];
        let digits = after.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with(')') {
            s.push_str(&after[..digits]);
            rest = &after[digits + 1..];
        } else {
            s.push_str("NodeId(");
            rest = after;
        }
    }
    s.push_str(rest);
    let s = s.replace("failed: []", "none failed").replace("[]", "none");
    let s: String = s.chars().filter(|c| !matches!(c, '[' | ']')).collect();
    // CamelCase words → lower-case words.
    let mut out = String::with_capacity(s.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        out.push_str(&camel_to_words(word));
        word.clear();
    };
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// `InvalidProof` → `invalid proof`; other words as they are (`DKG`, `node`, `Stage1`).
fn camel_to_words(word: &str) -> String {
    let camel = word.len() > 2
        && word.chars().all(|c| c.is_ascii_alphabetic())
        && word.starts_with(|c: char| c.is_ascii_uppercase())
        && word
            .chars()
            .zip(word.chars().skip(1))
            .any(|(a, b)| a.is_ascii_lowercase() && b.is_ascii_uppercase());
    if !camel {
        return word.to_owned();
    }
    let mut out = String::with_capacity(word.len() + 4);
    for (i, c) in word.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(stage: &'static str, fault: &str, faulty: usize) -> FaultRow {
        FaultRow {
            scenario: format!("{faulty} {fault} in {stage}"),
            stage,
            fault: fault.to_owned(),
            faulty,
            dkg_key: None,
            disqualified: Vec::new(),
            ingest_ok: None,
            search_same: None,
            retrieval_ok: None,
            reason: None,
            latency_wan_ms: 10.0,
        }
    }

    #[test]
    fn error_texts_become_plain_words() {
        assert_eq!(
            plain_words("needs 5 nodes, 4 given: [NodeId(1), NodeId(2), NodeId(3), NodeId(4)]"),
            "needs 5 nodes, 4 given: 1, 2, 3, 4"
        );
        assert_eq!(
            plain_words("2 valid partial evaluations, 3 needed; failed: []"),
            "2 valid partial evaluations, 3 needed; none failed"
        );
        assert_eq!(
            plain_words("failed: [(NodeId(2), InvalidProof)]"),
            "failed: (2, invalid proof)"
        );
        assert_eq!(
            plain_words("DKG on Stage-1, t − 1"),
            "DKG on Stage-1, t − 1"
        );
        assert_eq!(plain_words("NodeId(x)"), "node id(x)");
    }

    #[test]
    fn outcomes_follow_the_checks() {
        let mut key = row("DKG", "crash", 1);
        key.dkg_key = Some(true);
        assert_eq!(outcome(&key), Outcome::Ok);
        key.dkg_key = Some(false);
        assert_eq!(outcome(&key), Outcome::Failed);
        // A Stage-2 crash that leaves the retrieval but not the search.
        let mut s2 = row("Stage-2", "crash", 1);
        s2.retrieval_ok = Some(true);
        assert_eq!(outcome(&s2), Outcome::Partial);
        let m = fault_matrix(&[s2, key.clone()]);
        assert_eq!(m.faulty, vec![1]);
        assert_eq!(m.rows[0].stage, "DKG");
        assert_eq!(m.rows[1].cells[0].latency_wan_ms, Some(10.0));
        assert_eq!(m.rows[0].cells[0].latency_wan_ms, None);
        assert_eq!(cell_lines(&m.rows[1].cells[0]), ["no search", "10 ms"]);
        assert_eq!(cell_lines(&m.rows[0].cells[0]), ["failed", "no key"]);
        let mut gone = row("Stage-2", "crash", 3);
        gone.retrieval_ok = Some(false);
        let m = fault_matrix(&[gone]);
        assert_eq!(m.rows[0].cells[0].outcome, Outcome::Failed);
        assert_eq!(
            cell_lines(&m.rows[0].cells[0]),
            ["failed", "no search or get"]
        );
        let d = details(&[key]);
        assert!(d[0].contains("no key; none disqualified"), "{d:?}");
    }
}
