//! The relay of the protocols whose messages nodes send each other through the client (the
//! DKG, resharing).
//!
//! What holds: an envelope is delivered only if the node that returned it is its sender
//! (`from`) and its recipient (`to`) is a broadcast (0) or a participant of the run; one
//! envelope that breaks either rule stops the run with [`ClientError::ForgedEnvelope`] naming
//! the node that returned it, and nothing of that step is delivered. Messages are also
//! signed by their sender and checked by every recipient; the relay's check keeps a node
//! from even putting words in another's mouth, and names it when it tries.

use std::collections::BTreeMap;
use std::future::Future;

use phr_sis::NodeId;
use tokio::task::JoinSet;
use tonic::transport::Channel;
use tonic::{Response, Status};

use super::{ClientError, ClusterClient};
use crate::proto;
use crate::proto::node_client::NodeClient;

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
    for (node, outbox) in &returned {
        for e in outbox {
            let forged = |reason| ClientError::ForgedEnvelope {
                node: *node,
                from: e.from,
                to: e.to,
                reason,
            };
            if e.from != u32::from(node.get()) {
                return Err(forged("the sender is not the node that returned it"));
            }
            if e.to != 0 && !ids.iter().any(|id| u32::from(id.get()) == e.to) {
                return Err(forged("the recipient takes no part in the run"));
            }
        }
    }
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
    Ok(inboxes)
}

impl ClusterClient {
    /// Runs `steps` of a relayed protocol (the DKG, resharing) on every node of `ids`: each
    /// step, a node gets the envelopes addressed to it and every other node's broadcasts from
    /// the step before. `send(client, meta, step, inbox)` makes one node's call. Returns the
    /// outcome of every node that reported one.
    ///
    /// # Errors
    /// The first node's refusal or transport failure; [`ClientError::ForgedEnvelope`]
    /// naming a node that returned an envelope it may not send ([`route_envelopes`]).
    pub(super) async fn relay<R, F, Fut>(
        &self,
        ids: &[NodeId],
        steps: std::ops::RangeInclusive<u32>,
        send: F,
    ) -> Result<BTreeMap<NodeId, proto::DkgResult>, ClientError>
    where
        R: RelayReply,
        F: Fn(NodeClient<Channel>, proto::RequestMeta, u32, Vec<proto::DkgEnvelope>) -> Fut
            + Clone
            + Send
            + Sync
            + 'static,
        Fut: Future<Output = Result<Response<R>, Status>> + Send + 'static,
    {
        let mut inboxes: BTreeMap<NodeId, Vec<proto::DkgEnvelope>> = BTreeMap::new();
        let mut results = BTreeMap::new();
        for step in steps {
            let mut set = JoinSet::new();
            for id in ids {
                let inbox = inboxes.remove(id).unwrap_or_default();
                let this = self.clone();
                let send = send.clone();
                let id = *id;
                set.spawn(async move {
                    let r = this.call(id, |c, m| send(c, m, step, inbox.clone())).await;
                    (id, r)
                });
            }
            let mut returned = BTreeMap::new();
            while let Some(joined) = set.join_next().await {
                let (id, r) = joined.map_err(|e| ClientError::Protocol(e.to_string()))?;
                let (outbox, result) = r?.into_parts();
                if let Some(result) = result {
                    results.insert(id, result);
                }
                returned.insert(id, outbox);
            }
            inboxes = route_envelopes(ids, returned)?;
        }
        Ok(results)
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
