//! The one error type of the secure search's protocol steps ([`super::server`],
//! [`super::querier`], [`super::masks::session`]): each variant says what went wrong and
//! [`SearchError::culprits`] names the nodes to blame, when any can be named.

use std::collections::BTreeMap;

use phr_sis::{ImageId, NodeId};
use rand::CryptoRng;

use super::MpcError;
use super::query::QueryRejection;
use crate::identity::{NodePublicKeys, Signature, verify_batch_vartime};
use crate::wire::WireError;

/// Why a step of the secure search failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SearchError {
    /// The arithmetic refused (too few servers, masks used, shares that cannot be decoded).
    #[error(transparent)]
    Mpc(#[from] MpcError),
    /// A message does not decode.
    #[error("{what} from {}: {source}", from_text(*.from))]
    Malformed {
        /// The node it came from, if a node sent it.
        from: Option<NodeId>,
        /// Which message.
        what: &'static str,
        /// Why.
        #[source]
        source: WireError,
    },
    /// A message is not signed by the node it claims.
    #[error("node {node}'s {what} is not signed by it")]
    Forged {
        /// The node named as its signer.
        node: NodeId,
        /// Which message.
        what: &'static str,
    },
    /// A message is for another session, server, pool or count.
    #[error("{what} from {}: {reason}", from_text(*.from))]
    Misaddressed {
        /// The node it came from, if a node sent it.
        from: Option<NodeId>,
        /// Which message.
        what: &'static str,
        /// What does not match.
        reason: String,
    },
    /// The querier asked a server for an image that is not among that server's candidates of
    /// the query.
    #[error("image {id} is not among node {server}'s candidates for this query")]
    NotACandidate {
        /// The server asked.
        server: NodeId,
        /// The image.
        id: ImageId,
    },
    /// A count above its bound.
    #[error("{got} {what}, at most {max}")]
    TooMany {
        /// What was counted.
        what: &'static str,
        /// How many came.
        got: usize,
        /// The bound.
        max: usize,
    },
    /// The servers refuse the query: its shares failed the check.
    #[error("the query was refused: {0}")]
    Rejected(QueryRejection),
    /// Servers returned check values of the query other than its shares give: they lied.
    #[error("servers {0:?} returned wrong check values of the query")]
    LyingServers(Vec<NodeId>),
    /// Not `2t − 1` servers returned the same candidates.
    #[error(
        "no candidate list is returned by 2t − 1 = {needed} servers (the servers grouped by \
         their lists: {groups:?})"
    )]
    NoAgreement {
        /// `2t − 1`.
        needed: usize,
        /// The servers of each distinct list.
        groups: Vec<Vec<NodeId>>,
    },
    /// A server holds no stored bit shares of a candidate it listed.
    #[error("node {server} holds no bit shares of its candidate {id}")]
    MissingRecord {
        /// The server.
        server: NodeId,
        /// The image.
        id: ImageId,
    },
}

fn from_text(node: Option<NodeId>) -> String {
    node.map_or_else(|| "the querier".to_owned(), |n| format!("node {n}"))
}

impl SearchError {
    /// The nodes this error blames, sorted: those that sent something malformed, forged,
    /// misaddressed or wrong. Empty when nobody can be named (or the querier is to blame).
    #[must_use]
    pub fn culprits(&self) -> Vec<NodeId> {
        let mut v = match self {
            SearchError::Malformed { from, .. } | SearchError::Misaddressed { from, .. } => {
                from.iter().copied().collect()
            }
            SearchError::Forged { node, .. } => vec![*node],
            SearchError::Rejected(r) => r.named(),
            SearchError::LyingServers(v) => v.clone(),
            SearchError::Mpc(MpcError::MasksRejected { rejected, .. }) => rejected.clone(),
            SearchError::Mpc(_)
            | SearchError::NotACandidate { .. }
            | SearchError::TooMany { .. }
            | SearchError::NoAgreement { .. }
            | SearchError::MissingRecord { .. } => Vec::new(),
        };
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Verifies every `(signer, signed bytes, signature)` of `items` in one batch against the
/// signers' keys in `roster`. A signer without keys is [`SearchError::Forged`] with
/// `no_key`; a failing batch is `Forged` with `what`, naming the first signer whose signature
/// fails (`fallback` if the batch cannot say which).
pub(crate) fn verify_signatures<R: CryptoRng + ?Sized>(
    items: &[(NodeId, Vec<u8>, &Signature)],
    roster: &BTreeMap<NodeId, NodePublicKeys>,
    what: &'static str,
    no_key: &'static str,
    fallback: NodeId,
    rng: &mut R,
) -> Result<(), SearchError> {
    let mut batch = Vec::with_capacity(items.len());
    for (node, message, signature) in items {
        let Some(keys) = roster.get(node) else {
            return Err(SearchError::Forged {
                node: *node,
                what: no_key,
            });
        };
        batch.push((&keys.signing, message.as_slice(), *signature));
    }
    verify_batch_vartime(&batch, rng).map_err(|bad| SearchError::Forged {
        node: bad
            .first()
            .and_then(|i| items.get(*i))
            .map_or(fallback, |(node, ..)| *node),
        what,
    })
}
