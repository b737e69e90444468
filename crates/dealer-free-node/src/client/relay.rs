//! The relay of the protocols whose messages nodes send each other through the client (the
//! DKG, resharing).
//!
//! What holds: an envelope is delivered only if the node that returned it is its sender
//! (`from`) and its recipient (`to`) is a broadcast (0) or a participant of the run. A node
//! that returns an envelope breaking either rule, refuses a step, fails or does not answer
//! in time is dropped from the run: nothing it returned in that step is delivered, it gets no
//! further step, and the outcome names it with the step and the reason. The others go on —
//! the protocols treat a missing message as its sender's silence and tolerate `t − 1` silent
//! or faulty nodes. Messages are also signed by their sender and checked by every recipient;
//! the relay's check keeps a node from even putting words in another's mouth, and names it
//! when it tries.

use std::collections::BTreeMap;

use phr_sis::NodeId;
use tokio::task::JoinSet;

use super::rpc::Rpc;
use super::{ClientError, ClusterClient};
use crate::proto;

/// Each node's inbox for the next step, from the envelopes every node of `ids` returned
/// (`returned`, by the node that returned them): an envelope to `i` goes to `i`, a broadcast
/// to every node but its sender.
///
/// # Errors
/// [`ClientError::ForgedEnvelope`] naming the first node (in id order) that returned an
/// envelope whose `from` is not itself or whose `to` is neither 0 nor one of `ids`.
pub fn route_envelopes(
    ids: &[NodeId],
    returned: BTreeMap<NodeId, Vec<proto::DkgEnvelope>>,
) -> Result<BTreeMap<NodeId, Vec<proto::DkgEnvelope>>, ClientError> {
    let (inboxes, mut forgers) = route_checked(ids, returned);
    match forgers.pop_first() {
        Some((_, e)) => Err(e),
        None => Ok(inboxes),
    }
}

/// The first envelope of `outbox` (returned by `node`) that `node` may not send.
fn forged_in(ids: &[NodeId], node: NodeId, outbox: &[proto::DkgEnvelope]) -> Option<ClientError> {
    outbox.iter().find_map(|e| {
        let forged = |reason| ClientError::ForgedEnvelope {
            node,
            from: e.from,
            to: e.to,
            reason,
        };
        if e.from != u32::from(node.get()) {
            Some(forged("the sender is not the node that returned it"))
        } else if e.to != 0 && !ids.iter().any(|id| u32::from(id.get()) == e.to) {
            Some(forged("the recipient takes no part in the run"))
        } else {
            None
        }
    })
}

/// Like [`route_envelopes`], but a node that returned an envelope it may not send is left
/// out (none of its envelopes is delivered) and named with its
/// [`ClientError::ForgedEnvelope`], and the others' envelopes are routed.
pub fn route_checked(
    ids: &[NodeId],
    mut returned: BTreeMap<NodeId, Vec<proto::DkgEnvelope>>,
) -> (
    BTreeMap<NodeId, Vec<proto::DkgEnvelope>>,
    BTreeMap<NodeId, ClientError>,
) {
    let mut forgers = BTreeMap::new();
    for (node, outbox) in &returned {
        if let Some(e) = forged_in(ids, *node, outbox) {
            forgers.insert(*node, e);
        }
    }
    returned.retain(|node, _| !forgers.contains_key(node));
    let mut inboxes: BTreeMap<NodeId, Vec<proto::DkgEnvelope>> = BTreeMap::new();
    for (sender, outbox) in returned {
        for envelope in outbox {
            for id in ids {
                let to_me = envelope.to == u32::from(id.get());
                let broadcast = envelope.to == 0 && *id != sender;
                if to_me || broadcast {
                    inboxes.entry(*id).or_default().push(envelope.clone());
                }
            }
        }
    }
    (inboxes, forgers)
}

/// Why a node was dropped from a relayed run.
#[derive(Debug)]
pub struct Dropped {
    /// The step it failed at.
    pub step: u32,
    /// What happened: its refusal, a transport failure or a forged envelope.
    pub error: ClientError,
}

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "dropped at step {}: {}",
            self.step,
            super::short(&self.error)
        )
    }
}

/// What a relayed run ended with.
#[derive(Debug, Default)]
pub(super) struct Relayed {
    /// The outcome of every node that reported one.
    pub(super) results: BTreeMap<NodeId, proto::DkgResult>,
    /// The nodes dropped from the run, and why.
    pub(super) dropped: BTreeMap<NodeId, Dropped>,
}

impl ClusterClient {
    /// Runs `steps` of a relayed protocol (the DKG, resharing) on every node of `ids`: each
    /// step, a node gets the envelopes addressed to it and every other node's broadcasts from
    /// the step before. `send(client, meta, step, inbox)` makes one node's call. A node that
    /// fails a step (refusal, transport failure after the retries, timeout, a forged
    /// envelope) is dropped from the run — silent from then on — and named in the outcome;
    /// the others go on.
    ///
    /// # Errors
    /// Only a task that could not be joined ([`ClientError::Protocol`]).
    pub(super) async fn relay<Q, F>(
        &self,
        ids: &[NodeId],
        steps: std::ops::RangeInclusive<u32>,
        send: F,
    ) -> Result<Relayed, ClientError>
    where
        Q: Rpc,
        Q::Reply: RelayReply,
        F: Fn(proto::RequestMeta, u32, Vec<proto::DkgEnvelope>) -> Q
            + Clone
            + Send
            + Sync
            + 'static,
    {
        let mut inboxes: BTreeMap<NodeId, Vec<proto::DkgEnvelope>> = BTreeMap::new();
        let mut out = Relayed::default();
        for step in steps {
            let mut set = JoinSet::new();
            for id in ids.iter().filter(|id| !out.dropped.contains_key(id)) {
                let inbox = inboxes.remove(id).unwrap_or_default();
                let this = self.clone();
                let send = send.clone();
                let id = *id;
                set.spawn(async move {
                    let r = this.call(id, |m| send(m, step, inbox.clone())).await;
                    (id, r)
                });
            }
            let mut returned = BTreeMap::new();
            while let Some(joined) = set.join_next().await {
                let (id, r) = joined.map_err(|e| ClientError::Protocol(e.to_string()))?;
                match r {
                    Ok(reply) => {
                        let (outbox, result) = reply.into_parts();
                        if let Some(result) = result {
                            out.results.insert(id, result);
                        }
                        returned.insert(id, outbox);
                    }
                    Err(error) => {
                        tracing::warn!(node = %id, step, "dropped from the run: {error}");
                        out.dropped.insert(id, Dropped { step, error });
                    }
                }
            }
            let (next, forgers) = route_checked(ids, returned);
            for (id, error) in forgers {
                tracing::warn!(node = %id, step, "dropped from the run: {error}");
                out.results.remove(&id);
                out.dropped.insert(id, Dropped { step, error });
            }
            inboxes = next;
        }
        Ok(out)
    }
}

/// The reply of one step of a relayed protocol.
pub(super) trait RelayReply: Send + 'static {
    /// The envelopes to deliver, and the node's outcome once it finished.
    fn into_parts(self) -> (Vec<proto::DkgEnvelope>, Option<proto::DkgResult>);
}

impl RelayReply for proto::DkgRoundReply {
    fn into_parts(self) -> (Vec<proto::DkgEnvelope>, Option<proto::DkgResult>) {
        (self.outbox, self.result)
    }
}

impl RelayReply for proto::ReshareRoundReply {
    fn into_parts(self) -> (Vec<proto::DkgEnvelope>, Option<proto::DkgResult>) {
        (self.outbox, self.result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(from: u32, to: u32, tag: u8) -> proto::DkgEnvelope {
        proto::DkgEnvelope {
            from,
            to,
            message: vec![tag],
        }
    }

    fn ids(n: u8) -> Result<Vec<NodeId>, phr_sis::ParamsError> {
        (1..=n).map(NodeId::new).collect()
    }

    #[test]
    fn envelopes_go_to_their_recipient_and_broadcasts_to_the_others()
    -> Result<(), Box<dyn std::error::Error>> {
        let ids = ids(3)?;
        let (n1, n2, n3) = (ids[0], ids[1], ids[2]);
        let returned = BTreeMap::from([
            (n1, vec![env(1, 0, 10), env(1, 3, 13)]),
            (n2, vec![env(2, 1, 21)]),
            (n3, Vec::new()),
        ]);
        let inboxes = route_envelopes(&ids, returned)?;
        let tags = |n: NodeId| -> Vec<u8> {
            inboxes
                .get(&n)
                .map(|v| v.iter().flat_map(|e| e.message.clone()).collect())
                .unwrap_or_default()
        };
        assert_eq!(tags(n1), vec![21]);
        assert_eq!(tags(n2), vec![10]);
        assert_eq!(tags(n3), vec![10, 13]);
        Ok(())
    }

    #[test]
    fn a_node_speaking_for_another_is_named_and_nothing_is_relayed()
    -> Result<(), Box<dyn std::error::Error>> {
        let ids = ids(3)?;
        // Node 2 returns, besides its own broadcast, a message signed… by node 1's name.
        let returned = BTreeMap::from([
            (ids[0], vec![env(1, 0, 10)]),
            (ids[1], vec![env(2, 0, 20), env(1, 3, 99)]),
        ]);
        let (inboxes, forgers) = route_checked(&ids, returned.clone());
        assert_eq!(forgers.keys().copied().collect::<Vec<_>>(), vec![ids[1]]);
        assert_eq!(
            inboxes.get(&ids[2]).map(Vec::len),
            Some(1),
            "node 1's broadcast only"
        );
        match route_envelopes(&ids, returned) {
            Err(ClientError::ForgedEnvelope { node, from, to, .. }) => {
                assert_eq!((node, from, to), (ids[1], 1, 3));
            }
            other => panic!("a forged sender was relayed: {other:?}"),
        }
        Ok(())
    }

    #[test]
    fn a_message_to_a_stranger_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let ids = ids(3)?;
        for to in [4, 255, 1000] {
            let returned = BTreeMap::from([(ids[2], vec![env(3, to, 1)])]);
            assert!(
                matches!(
                    route_envelopes(&ids, returned),
                    Err(ClientError::ForgedEnvelope { node, .. }) if node == ids[2]
                ),
                "to {to}"
            );
        }
        Ok(())
    }
}
