//! Coordinating the DKG among the nodes that answer, and its commit.
//!
//! What holds: the client writes a key file only for an outcome that at least `t` nodes
//! reported identically, and a node installs its key share only when the client commits that
//! outcome (step 5, naming its transcript). With at most `t − 1` faulty nodes, a group of `t`
//! identical reports holds an honest node, and every honest node that finishes finishes with
//! the same outcome (the protocol's transcript confirmation), so the accepted outcome is the
//! honest one. Nodes dropped from the run, nodes that reported another outcome and nodes
//! whose commit failed are named; they hold no key and join by resharing (`cluster replace`).

use std::collections::BTreeMap;

use phr_sis::NodeId;

use super::{ClientError, ClusterClient, ClusterKeyFile, short};
use crate::proto;

/// What [`ClusterClient::run_dkg`] did.
#[derive(Debug, Clone)]
pub struct DkgOutcome {
    /// The key state written to the key file.
    pub key: ClusterKeyFile,
    /// The nodes the DKG ran among.
    pub participants: Vec<NodeId>,
    /// Participants dropped from the run (refused, failed or silent at a step), and why.
    pub dropped: BTreeMap<NodeId, String>,
    /// Participants that reported another outcome than the accepted one.
    pub disagreeing: Vec<NodeId>,
    /// Participants whose commit failed, and why.
    pub uncommitted: BTreeMap<NodeId, String>,
    /// Every node of the cluster that holds no key share now (absent from the run, dropped,
    /// disagreeing, not committed): each must be replaced (`cluster replace --node I`).
    pub without_key: Vec<NodeId>,
}

/// The largest group of identical outcomes, if it is the only group of at least `t`.
fn agreed(
    results: &BTreeMap<NodeId, proto::DkgResult>,
    t: usize,
) -> (Option<proto::DkgResult>, usize) {
    let mut groups: Vec<(proto::DkgResult, usize)> = Vec::new();
    for r in results.values() {
        match groups.iter_mut().find(|(g, _)| g == r) {
            Some((_, count)) => *count += 1,
            None => groups.push((r.clone(), 1)),
        }
    }
    let largest = groups.iter().map(|(_, c)| *c).max().unwrap_or(0);
    let mut big = groups.into_iter().filter(|(_, c)| *c >= t);
    match (big.next(), big.next()) {
        (Some((r, c)), None) => (Some(r), c),
        _ => (None, largest),
    }
}

impl ClusterClient {
    /// Runs the DKG among the nodes `ids` (at least `min(n, 2t − 1)` of the cluster's),
    /// relaying every message; a node that fails or falls silent at a step is dropped and the
    /// others go on. Accepts the outcome at least `t` nodes reported identically, writes the
    /// key file, then commits it on those nodes.
    ///
    /// # Errors
    /// [`ClientError::TooFewNodes`] if fewer than `min(n, 2t − 1)` of `ids` give their
    /// identity; [`ClientError::DkgFailed`] naming the dropped and disagreeing nodes if no
    /// `t` agree, or fewer than `t` acknowledge the commit.
    pub async fn run_dkg(&self, label: &[u8], ids: &[NodeId]) -> Result<DkgOutcome, ClientError> {
        let threshold = self.threshold();
        let t = threshold.t();
        let needed = usize::from(threshold.n()).min(2 * usize::from(t) - 1);
        let (participants, failures) = self.participants(ids).await;
        if participants.len() < needed {
            return Err(ClientError::TooFewNodes {
                what: "the DKG (2t − 1 nodes)",
                needed,
                answered: participants.len(),
                failures,
            });
        }
        let ids: Vec<NodeId> = participants.keys().copied().collect();
        let list: Vec<proto::Participant> = participants.into_values().collect();
        let label = label.to_vec();
        let relayed = self
            .relay(&ids, 0..=4, move |m, step, inbox| proto::DkgRoundRequest {
                meta: Some(m),
                label: label.clone(),
                t: u32::from(t),
                participants: list.clone(),
                step,
                inbox,
                commit_transcript: Vec::new(),
            })
            .await?;
        let mut dropped: BTreeMap<NodeId, String> = failures;
        dropped.extend(relayed.dropped.iter().map(|(id, d)| (*id, d.to_string())));
        let (accepted, agreeing) = agreed(&relayed.results, usize::from(t));
        let disagreeing: Vec<NodeId> = relayed
            .results
            .iter()
            .filter(|(_, r)| accepted.as_ref() != Some(*r))
            .map(|(id, _)| *id)
            .collect();
        let Some(result) = accepted else {
            return Err(ClientError::DkgFailed {
                needed: usize::from(t),
                agreeing,
                dropped,
                disagreeing,
            });
        };
        let key = ClusterKeyFile::from_result(threshold, &result);
        // The key file first: a commit interrupted after it can be completed (`cluster up`
        // commits it on the nodes still holding the key in memory).
        key.save(&self.profile.raw.key_file)?;
        let agreeing_ids: Vec<NodeId> = relayed
            .results
            .iter()
            .filter(|(_, r)| **r == result)
            .map(|(id, _)| *id)
            .collect();
        let uncommitted = self.commit_dkg(&agreeing_ids, &result.transcript).await;
        let committed = agreeing_ids.len() - uncommitted.len();
        if committed < usize::from(t) {
            let mut dropped = dropped;
            dropped.extend(uncommitted);
            return Err(ClientError::DkgFailed {
                needed: usize::from(t),
                agreeing: committed,
                dropped,
                disagreeing,
            });
        }
        let without_key = self
            .node_ids()
            .into_iter()
            .filter(|id| !agreeing_ids.contains(id) || uncommitted.contains_key(id))
            .collect();
        Ok(DkgOutcome {
            key,
            participants: ids,
            dropped,
            disagreeing,
            uncommitted,
            without_key,
        })
    }

    /// Commits the DKG key of `transcript` (step 5) on `nodes`; returns the nodes that did
    /// not acknowledge it, and why.
    pub(crate) async fn commit_dkg(
        &self,
        nodes: &[NodeId],
        transcript: &[u8],
    ) -> BTreeMap<NodeId, String> {
        let transcript = transcript.to_vec();
        let answers = self
            .call_all(nodes, move |_, m| proto::DkgRoundRequest {
                meta: Some(m),
                step: 5,
                commit_transcript: transcript.clone(),
                ..Default::default()
            })
            .await;
        nodes
            .iter()
            .filter_map(|id| match answers.get(id) {
                Some(Ok(_)) => None,
                Some(Err(e)) => Some((*id, short(e))),
                None => Some((*id, "no answer".to_owned())),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(tag: u8) -> proto::DkgResult {
        proto::DkgResult {
            transcript: vec![tag; 32],
            ..Default::default()
        }
    }

    #[test]
    fn the_one_group_of_t_identical_outcomes_is_accepted() -> Result<(), phr_sis::ParamsError> {
        let id = NodeId::new;
        let mut results = BTreeMap::from([
            (id(1)?, result(1)),
            (id(2)?, result(1)),
            (id(3)?, result(2)),
        ]);
        assert_eq!(agreed(&results, 2), (Some(result(1)), 2));
        assert_eq!(agreed(&results, 3), (None, 2));
        // Two groups of t: no outcome is accepted.
        results.insert(id(4)?, result(2));
        assert_eq!(agreed(&results, 2), (None, 2));
        Ok(())
    }
}
