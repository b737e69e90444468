//! The DKG's outcomes that are not a key: why a dealer was disqualified, which messages were
//! discarded, and the errors of a session, each naming its culprits.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use phr_sis::NodeId;

use super::Round;
use crate::wire::{MessageKind, WireError};

/// Why a dealer was disqualified.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Disqualification {
    /// It signed two different commitments in this session.
    Equivocation,
    /// A node said it got no deal and the dealer did not deliver a validly signed one for it
    /// in its justification.
    MissingJustification {
        /// The node that complained.
        accuser: NodeId,
    },
    /// A node proved that the share the dealer signed for it does not open or does not
    /// match the commitment ([`super::sealed::ShareEvidence`]).
    InvalidShare {
        /// The node that complained.
        accuser: NodeId,
    },
    /// `t` or more nodes complained about it (GJKR's bound): more than the `t − 1` faulty
    /// nodes the protocol tolerates could make against an honest dealer.
    TooManyComplaints {
        /// How many nodes complained.
        count: usize,
    },
    /// No valid commitment from the dealer reached this node, not even in a justification.
    NoCommitment,
    /// Nothing at all from the dealer reached this node in round 1, nor a commitment later:
    /// it was silent (it is not blamed for complaints it never saw).
    Silent,
    /// Its ephemeral key came without a valid proof of possession.
    BadEphemeralKey,
}

impl fmt::Display for Disqualification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Disqualification::Equivocation => f.write_str("signed two different commitments"),
            Disqualification::MissingJustification { accuser } => {
                write!(
                    f,
                    "delivered no deal to node {accuser}, even when it complained"
                )
            }
            Disqualification::InvalidShare { accuser } => {
                write!(
                    f,
                    "sealed a bad share for node {accuser} (proved by its evidence)"
                )
            }
            Disqualification::TooManyComplaints { count } => {
                write!(f, "drew complaints from {count} nodes, at least t")
            }
            Disqualification::NoCommitment => f.write_str("sent no valid commitment"),
            Disqualification::Silent => f.write_str("sent nothing in round 1"),
            Disqualification::BadEphemeralKey => {
                f.write_str("sent an ephemeral key it did not prove to own")
            }
        }
    }
}

/// A message that was received and discarded, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The claimed sender.
    pub from: NodeId,
    /// The round.
    pub round: Round,
    /// Why it was discarded.
    pub reason: String,
}

/// Errors of the DKG. Errors of [`super::DkgSession::handle_message`] reject one message and leave
/// the session running; errors of [`super::DkgSession::end_round`] end it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DkgError {
    /// The parameters cannot work.
    #[error("invalid DKG parameters: {0}")]
    InvalidParams(String),
    /// A message does not decode.
    #[error("malformed message from node {from}: {error}")]
    Malformed {
        /// The node the transport says sent it.
        from: NodeId,
        /// What is wrong.
        error: WireError,
    },
    /// A message names a sender that is not a participant.
    #[error("node {0} is not a participant of this session")]
    UnknownSender(NodeId),
    /// The transport's sender and the message's sender differ.
    #[error("message from node {transport} claims to be from node {claimed}")]
    SenderMismatch {
        /// The sender the transport reports.
        transport: NodeId,
        /// The sender the message names.
        claimed: NodeId,
    },
    /// A point-to-point message addressed to another node.
    #[error("message from node {from} is addressed to node {to}")]
    WrongRecipient {
        /// The sender.
        from: NodeId,
        /// The addressee.
        to: NodeId,
    },
    /// A message of a round that has already ended (or of another protocol).
    #[error("unexpected {got:?} message from node {from} in {round}")]
    UnexpectedMessage {
        /// The current round.
        round: Round,
        /// The kind received.
        got: MessageKind,
        /// The sender.
        from: NodeId,
    },
    /// A message whose signature does not verify under its claimed sender's key: forged by
    /// whoever relayed or injected it. It was dropped; a valid message from the sender, if
    /// any, is kept.
    #[error("a message of {round} claiming to be from node {from} is not signed by it")]
    Forged {
        /// The claimed sender (not to blame: anybody can claim it).
        from: NodeId,
        /// The round.
        round: Round,
    },
    /// A second, different message from the same sender in the same round.
    #[error("node {from} sent two different messages in {round}")]
    Duplicate {
        /// The sender.
        from: NodeId,
        /// The round.
        round: Round,
    },
    /// `t` or more dealers were disqualified: more nodes misbehaved than the protocol
    /// tolerates, and a coalition able to reconstruct the key may exist. No key is output.
    #[error("{} dealers disqualified, at most t − 1 = {max} tolerated: {}", disqualified.len(), describe(disqualified))]
    TooManyDisqualified {
        /// `t − 1`.
        max: u8,
        /// The dealers still qualified.
        qualified: BTreeSet<NodeId>,
        /// The disqualified dealers and why.
        disqualified: BTreeMap<NodeId, Disqualification>,
    },
    /// Some nodes confirmed a different transcript: the honest nodes' views diverged (or
    /// these nodes lie). No key is output.
    #[error("nodes {} confirmed a different transcript", list(nodes.iter()))]
    TranscriptMismatch {
        /// The nodes whose transcript hash differs from this node's.
        nodes: BTreeSet<NodeId>,
    },
    /// Fewer than `t` nodes confirmed with a valid proof, so the key cannot be used.
    #[error("only {} valid confirmations, t = {needed} needed; silent: {}; invalid proofs: {}",
        confirmed.len(), list(silent.iter()), list(invalid.iter()))]
    NotEnoughConfirmations {
        /// `t`.
        needed: u8,
        /// Nodes that confirmed validly.
        confirmed: BTreeSet<NodeId>,
        /// Nodes that sent no confirmation.
        silent: BTreeSet<NodeId>,
        /// Nodes whose proof failed.
        invalid: BTreeSet<NodeId>,
    },
    /// A qualified dealer's deal for this node never opened: it withheld the deal and its
    /// justification delivered one that does not open or does not match its commitment. The
    /// other nodes finish without this one; it gets its share by resharing.
    #[error("dealer {dealer} delivered this node no share that opens, even in its justification")]
    ShareWithheld {
        /// The dealer.
        dealer: NodeId,
    },
    /// The session has already ended.
    #[error("the DKG session has ended")]
    Finished,
}

fn describe(d: &BTreeMap<NodeId, Disqualification>) -> String {
    let v: Vec<String> = d
        .iter()
        .map(|(id, why)| format!("node {id} {why}"))
        .collect();
    v.join("; ")
}

fn list<'a>(ids: impl Iterator<Item = &'a NodeId>) -> String {
    let v: Vec<String> = ids.map(ToString::to_string).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

impl DkgError {
    /// The nodes this error blames.
    #[must_use]
    pub fn culprits(&self) -> BTreeSet<NodeId> {
        match self {
            DkgError::Malformed { from, .. }
            | DkgError::UnknownSender(from)
            | DkgError::WrongRecipient { from, .. }
            | DkgError::UnexpectedMessage { from, .. }
            | DkgError::Duplicate { from, .. } => BTreeSet::from([*from]),
            DkgError::SenderMismatch { transport, .. } => BTreeSet::from([*transport]),
            DkgError::ShareWithheld { dealer } => BTreeSet::from([*dealer]),
            DkgError::TooManyDisqualified { disqualified, .. } => {
                disqualified.keys().copied().collect()
            }
            DkgError::TranscriptMismatch { nodes } => nodes.clone(),
            DkgError::NotEnoughConfirmations {
                silent, invalid, ..
            } => silent.union(invalid).copied().collect(),
            DkgError::InvalidParams(_) | DkgError::Finished | DkgError::Forged { .. } => {
                BTreeSet::new()
            }
        }
    }
}
