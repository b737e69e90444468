//! What a cluster can do now, for `cluster status`: for ingest, search, `get` and node
//! replacement, whether it works with the nodes that answer healthy with a key share, and how
//! many more lost nodes it survives.
//!
//! The rules are the client's own: ingest and `get` need `t` such nodes (the threshold VOPRF,
//! `t` good shares), the secure search `2t − 1`, and a replacement every other node that
//! holds a key share, at least `t` (so it works while at most one node is lost).

use dealer_free_node::client::NodeStatus;

/// One operation's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Capability {
    /// The operation, as the CLI names it.
    pub(super) name: &'static str,
    /// Whether it works now.
    pub(super) works: bool,
    /// Nodes it needs (healthy, with a key share).
    pub(super) needs: usize,
    /// How many more nodes may be lost while it keeps working (0 when it does not work).
    pub(super) survives: usize,
    /// The rule, in words.
    pub(super) rule: &'static str,
}

/// The capabilities of a cluster of `n` nodes, threshold `t`, whose nodes answered `statuses`.
pub(super) fn capabilities(n: usize, t: usize, statuses: &[NodeStatus]) -> Vec<Capability> {
    let serving = statuses
        .iter()
        .filter(|s| {
            s.health
                .as_ref()
                .is_ok_and(|h| h.problem.is_none() && h.has_key && h.prepared.is_none())
        })
        .count();
    let lost = n.saturating_sub(serving);
    let quorum = |name, needs: usize, rule| Capability {
        name,
        works: serving >= needs,
        needs,
        survives: serving.saturating_sub(needs),
        rule,
    };
    let search = 2 * t - 1;
    vec![
        quorum("ingest", t, "t nodes (the others are named as incomplete)"),
        quorum("search", search, "2t − 1 nodes"),
        quorum("get", t, "t nodes with good shares"),
        Capability {
            name: "replace",
            works: lost <= 1 && serving >= t.max(n.saturating_sub(1)),
            needs: n.saturating_sub(1).max(t),
            survives: usize::from(lost == 0),
            rule: "every node but the one replaced, at least t",
        },
    ]
}

/// The capabilities as lines for the status table.
pub(super) fn lines(caps: &[Capability]) -> Vec<String> {
    caps.iter()
        .map(|c| {
            if c.works {
                format!(
                    "{:<8} works; survives {} more lost node(s) (needs {}: {})",
                    c.name, c.survives, c.needs, c.rule
                )
            } else {
                format!(
                    "{:<8} STOPPED: needs {} ({}); bring nodes back or replace them",
                    c.name, c.needs, c.rule
                )
            }
        })
        .collect()
}

/// The capabilities as a JSON object keyed by operation.
pub(super) fn json(caps: &[Capability]) -> serde_json::Value {
    serde_json::Value::Object(
        caps.iter()
            .map(|c| {
                (
                    c.name.to_owned(),
                    serde_json::json!({
                        "works": c.works, "needs": c.needs, "survives": c.survives,
                        "rule": c.rule,
                    }),
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use dealer_free_node::client::NodeHealth;

    use super::*;

    fn node(id: u8, up: bool) -> NodeStatus {
        NodeStatus {
            id,
            address: String::new(),
            health: if up {
                Ok(NodeHealth {
                    has_key: true,
                    images: 0,
                    audit_entries: 0,
                    audit_head: String::new(),
                    version: String::new(),
                    transcript: String::new(),
                    prepared: None,
                    problem: None,
                })
            } else {
                Err("unreachable".into())
            },
        }
    }

    fn by_name(caps: &[Capability], name: &str) -> (bool, usize) {
        caps.iter()
            .find(|c| c.name == name)
            .map_or((false, 0), |c| (c.works, c.survives))
    }

    #[test]
    fn seven_nodes_threshold_three() {
        let all: Vec<NodeStatus> = (1..=7).map(|i| node(i, true)).collect();
        let caps = capabilities(7, 3, &all);
        assert_eq!(by_name(&caps, "ingest"), (true, 4));
        assert_eq!(by_name(&caps, "search"), (true, 2));
        assert_eq!(by_name(&caps, "get"), (true, 4));
        assert_eq!(by_name(&caps, "replace"), (true, 1));
        let two_down: Vec<NodeStatus> = (1..=7).map(|i| node(i, i < 6)).collect();
        let caps = capabilities(7, 3, &two_down);
        assert_eq!(by_name(&caps, "search"), (true, 0));
        assert_eq!(by_name(&caps, "get"), (true, 2));
        assert_eq!(by_name(&caps, "replace"), (false, 0));
    }

    #[test]
    fn five_nodes_threshold_three_lose_search_first() {
        let one_down: Vec<NodeStatus> = (1..=5).map(|i| node(i, i != 2)).collect();
        let caps = capabilities(5, 3, &one_down);
        assert_eq!(by_name(&caps, "search"), (false, 0));
        assert_eq!(by_name(&caps, "get"), (true, 1));
        assert_eq!(by_name(&caps, "replace"), (true, 0));
        assert!(
            lines(&caps)
                .iter()
                .any(|l| l.starts_with("search") && l.contains("STOPPED"))
        );
    }
}
