//! `cluster scrub` and `cluster repair`: every node checks every record it holds, and the
//! damaged ones are rebuilt from the other nodes.

use std::path::Path;

use dealer_free_node::client::ScrubReport;

use super::net::{client_error, open_client, runtime};
use crate::Outcome;

/// Prints a scrub's findings (lines on stdout, or one JSON object).
fn print_report(report: &ScrubReport, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({
                "checked": report.checked.iter()
                    .map(|(n, c)| (n.get().to_string(), serde_json::Value::from(*c)))
                    .collect::<serde_json::Map<_, _>>(),
                "damaged": report.damaged.iter().map(|(n, id, why)| serde_json::json!({
                    "node": n.get(), "id": id.to_string(), "reason": why,
                })).collect::<Vec<_>>(),
                "failed": report.failed.iter()
                    .map(|(n, why)| (n.get().to_string(), serde_json::Value::from(why.as_str())))
                    .collect::<serde_json::Map<_, _>>(),
                "bit_shares": {
                    "nodes": report.bit_shares.servers.iter().map(|n| n.get()).collect::<Vec<_>>(),
                    "checked": report.bit_shares.checked,
                    "off_codeword": report.bit_shares.off_codeword.iter()
                        .map(|(n, id)| serde_json::json!({"node": n.get(), "id": id.to_string()}))
                        .collect::<Vec<_>>(),
                    "undecided": report.bit_shares.undecided.iter()
                        .map(|(id, h)| serde_json::json!({
                            "id": id.to_string(),
                            "holders": h.iter().map(|n| n.get()).collect::<Vec<_>>(),
                        }))
                        .collect::<Vec<_>>(),
                    "too_few_holders": report.bit_shares.too_few_holders.iter()
                        .map(ToString::to_string).collect::<Vec<_>>(),
                    "failed": report.bit_shares.failed.iter()
                        .map(|(n, why)| (n.get().to_string(), serde_json::Value::from(why.as_str())))
                        .collect::<serde_json::Map<_, _>>(),
                    "stopped": report.bit_shares.stopped,
                },
            })
        );
        return;
    }
    for (node, id, why) in &report.damaged {
        println!("damaged  node {node}  {id}  {why}");
    }
    for (node, why) in &report.failed {
        eprintln!("dealer-free-sis: node {node}: scrub did not finish: {why}");
    }
    let bits = &report.bit_shares;
    for (id, holders) in &bits.undecided {
        let nodes: Vec<String> = holders.iter().map(ToString::to_string).collect();
        println!(
            "undecided  {id}  bit shares on nodes {} fit no polynomial: too many are off to name one",
            nodes.join(", ")
        );
    }
    for (node, why) in &bits.failed {
        eprintln!("dealer-free-sis: node {node}: left out of the bit-share check: {why}");
    }
    if let Some(why) = &bits.stopped {
        eprintln!("dealer-free-sis: the bit-share check did not finish: {why}");
    }
    let checked: u64 = report.checked.values().sum();
    eprintln!(
        "{} damaged record(s) of {checked} checked on {} node(s); bit shares of {} image(s) \
         checked across {} node(s) without revealing them ({} held by too few nodes to check)",
        report.damaged.len(),
        report.checked.len() - report.failed.len(),
        bits.checked,
        bits.servers.len(),
        bits.too_few_holders.len(),
    );
}

/// Whether the scrub found everything in order: nothing damaged, every node and the whole
/// bit-share check done.
fn clean(report: &ScrubReport) -> bool {
    let bits = &report.bit_shares;
    report.damaged.is_empty()
        && report.failed.is_empty()
        && bits.undecided.is_empty()
        && bits.failed.is_empty()
        && bits.stopped.is_none()
}

/// `cluster scrub --dir DIR`.
pub(crate) fn scrub(dir: &Path, json: bool, client: Option<&Path>) -> anyhow::Result<Outcome> {
    let rt = runtime()?;
    let client = open_client(&rt, Some(dir), client)?;
    let report = rt.block_on(client.scrub());
    print_report(&report, json);
    Ok(if clean(&report) {
        Outcome::Success
    } else {
        Outcome::PartialFailure
    })
}

/// `cluster repair --dir DIR`.
pub(crate) fn repair(dir: &Path, client: Option<&Path>) -> anyhow::Result<Outcome> {
    let rt = runtime()?;
    let client = open_client(&rt, Some(dir), client)?;
    let report = rt.block_on(client.scrub());
    print_report(&report, false);
    let mut outcome = rt
        .block_on(client.repair_damaged(&report))
        .map_err(client_error)?;
    // Then the records nodes lack: images stored while a node was down, or a rebuild an
    // interruption cut short.
    let missing = rt.block_on(client.repair_missing()).map_err(client_error)?;
    outcome.repaired.extend(missing.repaired);
    outcome.failed.extend(missing.failed);
    for (node, id) in &outcome.repaired {
        println!("repaired  node {node}  {id}");
    }
    for (node, id, why) in &outcome.failed {
        eprintln!("dealer-free-sis: node {node}: {id} not repaired: {why}");
    }
    Ok(if outcome.failed.is_empty() && report.failed.is_empty() {
        Outcome::Success
    } else {
        Outcome::PartialFailure
    })
}
