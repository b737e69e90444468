//! What a new cluster's shape allows is said when it is made: with `n < 2t` the secure
//! search (which needs `2t − 1` nodes) stops at the first lost node.

#[path = "support/cluster.rs"]
mod cluster;

use cluster::{Cluster, TestResult, text};

fn init(nodes: &str, t: &str) -> TestResult<String> {
    let c = Cluster::new()?;
    let out = c.ok(&["cluster", "init", "--nodes", nodes, "--threshold", t])?;
    Ok(text(&out.stderr))
}

#[test]
fn a_cluster_whose_search_stops_at_the_first_lost_node_is_warned_of() -> TestResult {
    let said = init("5", "3")?;
    assert!(said.contains("warning"), "{said}");
    assert!(said.contains("2t − 1 = 5"), "{said}");
    assert!(said.contains("stops when 1 node(s) are down"), "{said}");
    assert!(said.contains("--nodes 7 --threshold 3"), "{said}");
    // n = 2t and more: search survives a lost node, nothing to warn of.
    let said = init("6", "3")?;
    assert!(!said.contains("warning"), "{said}");
    let said = init("7", "3")?;
    assert!(!said.contains("warning"), "{said}");
    Ok(())
}
