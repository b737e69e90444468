//! The cluster client's errors: each names the nodes it concerns.

use std::collections::BTreeMap;
use std::path::PathBuf;

use phr_sis::{ImageId, NodeId};
use tonic::Status;

use crate::config::ConfigError;
use crate::manifest::ManifestError;

/// Errors of the cluster client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The profile or key file is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A certificate file could not be read.
    #[error("{path}: {source}")]
    Tls {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The enrolment manifest is missing or unusable, or does not fit the profile.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A node presented a TLS certificate other than the one the manifest pins for it: the
    /// client sent it nothing.
    #[error(
        "node {node}: its certificate {presented} is not the enrolment manifest's {pinned}; \
         nothing was sent to it"
    )]
    CertificateMismatch {
        /// The node.
        node: NodeId,
        /// The fingerprint of the certificate it presented.
        presented: String,
        /// The manifest's fingerprint for it.
        pinned: String,
    },
    /// A node's address is unusable.
    #[error("node {node}: address {address:?}: {reason}")]
    Address {
        /// The node.
        node: NodeId,
        /// Its address.
        address: String,
        /// What is wrong.
        reason: String,
    },
    /// The cluster has no key yet.
    #[error("the cluster has no key yet ({0} missing): run `dealer-free-sis cluster up`")]
    NoKey(PathBuf),
    /// The owner's catalog cannot be read, locked or written (it is left as it was).
    #[error("catalog {}: {reason}", path.display())]
    Catalog {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// Too few nodes answered for what was asked.
    #[error("{what} needs {needed} nodes, only {answered} answered{}", unreachable_note(.failures))]
    TooFewNodes {
        /// What was asked.
        what: &'static str,
        /// Nodes needed.
        needed: usize,
        /// Nodes that answered.
        answered: usize,
        /// Why each other node did not.
        failures: BTreeMap<NodeId, String>,
    },
    /// A node refused a request.
    #[error("node {node}: {status}")]
    Refused {
        /// The node.
        node: NodeId,
        /// Its answer.
        status: Box<Status>,
    },
    /// The protocol failed (bad proofs, inconsistent answers).
    #[error("{0}")]
    Protocol(String),
    /// A step of the secure search failed; [`dealer_free::mpc::SearchError::culprits`] names the nodes to
    /// blame.
    #[error(transparent)]
    Search(#[from] dealer_free::mpc::SearchError),
    /// A node returned a protocol message it may not send: one claiming another sender, or
    /// addressed to a node that takes no part in the run. Nothing of that step is relayed.
    #[error("node {node} returned a message from {from} to {to}: {reason}")]
    ForgedEnvelope {
        /// The node that returned it.
        node: NodeId,
        /// The envelope's sender field.
        from: u32,
        /// The envelope's recipient field (0: broadcast).
        to: u32,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An image could not be read or hashed.
    #[error("{path}: {reason}")]
    Image {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The image is not in the cluster.
    #[error("image {0} is not stored on any node that answered")]
    NotFound(ImageId),
    /// The DKG ended without `needed` nodes reporting one key; no node installed a key.
    #[error(
        "the DKG ended without {needed} nodes agreeing on one key ({agreeing} did){}{}",
        unreachable_note(.dropped),
        disagree_note(.disagreeing)
    )]
    DkgFailed {
        /// Nodes that must agree (`t`).
        needed: usize,
        /// The largest group that reported the same outcome.
        agreeing: usize,
        /// Nodes dropped from the run, and why.
        dropped: BTreeMap<NodeId, String>,
        /// Nodes that reported another outcome than the largest group.
        disagreeing: Vec<NodeId>,
    },
    /// A resharing ended without every receiver preparing the same outcome: no commit was
    /// sent and every node that prepared was told to roll back (or will be, by `--resume`).
    #[error(
        "resharing did not end with the same key on every receiver; no node changed its key{}{}",
        unreachable_note(.dropped),
        disagree_note(.disagreeing)
    )]
    ReshareFailed {
        /// Nodes dropped from the run (or from the roll-back), and why.
        dropped: BTreeMap<NodeId, String>,
        /// Receivers that reported another outcome.
        disagreeing: Vec<NodeId>,
    },
    /// Nodes hold a prepared resharing, which must be committed or rolled back first.
    #[error(
        "nodes {nodes:?} hold a prepared resharing: run `dealer-free-sis cluster replace --node N --resume`"
    )]
    Prepared {
        /// The nodes.
        nodes: Vec<NodeId>,
    },
    /// The resharing was decided (committed) but some receivers did not acknowledge the
    /// commit yet; they keep it prepared on disk and serve with the old key until resumed.
    #[error(
        "resharing committed on nodes {committed:?}; still prepared on{}: bring them back and run \
         `dealer-free-sis cluster replace --node N --resume`",
        unreachable_note(.pending)
    )]
    CommitIncomplete {
        /// The nodes that installed the new key.
        committed: Vec<NodeId>,
        /// The receivers that did not acknowledge the commit, and why.
        pending: BTreeMap<NodeId, String>,
    },
}

fn disagree_note(nodes: &[NodeId]) -> String {
    if nodes.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = nodes.iter().map(ToString::to_string).collect();
        format!("; nodes {} reported another outcome", list.join(", "))
    }
}

fn unreachable_note(failures: &BTreeMap<NodeId, String>) -> String {
    if failures.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = failures
            .iter()
            .map(|(n, e)| format!("node {n}: {e}"))
            .collect();
        format!(" ({})", list.join("; "))
    }
}
