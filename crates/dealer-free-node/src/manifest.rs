//! The enrolment manifest: who the cluster's nodes are, as every node and client pins them.
//!
//! Each node makes its own keys on its own machine (`dealer-free-sis node init`,
//! [`crate::enrol`]) and publishes only an [`Enrolment`] record: its id, its address, its
//! identity public keys (signing and Diffie–Hellman, [`NodePublicKeys`]) and the SHA-256
//! fingerprint of its self-signed TLS certificate. The manifest is `(t, n)` and one record per
//! node, 1 to `n`, each once.
//!
//! What holds:
//!
//! * **One digest.** [`Manifest::digest`] is SHA-256 over a canonical encoding of `(t, n)` and
//!   every node's id, identity keys and fingerprint, in id order ([`Manifest::canonical`]):
//!   two manifests with the same digest pin the same keys. The address is where the node was
//!   when it enrolled and is not pinned (clients dial the address of their profile and check
//!   the certificate against the id's fingerprint), so it is not in the digest and a node may
//!   move without a new approval. Operators compare the digest out of band (`cluster status`
//!   prints it, `node approve` prints it and can require it).
//! * **Pinned participants.** A node takes part in a DKG or a resharing only with the
//!   identity keys its own approved manifest lists: [`Manifest::check_members`] refuses a list
//!   that names a node the manifest does not, leaves one out, or gives one other keys, with a
//!   [`MembershipError`] naming that node.
//! * **Pinned certificates.** A client accepts a node's TLS certificate only if its
//!   fingerprint is the manifest's for that node id ([`Manifest::fingerprint_of`],
//!   `crate::client`'s verifier), so a certificate that was valid before a replacement stops
//!   working the moment the manifest changes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dealer_free::identity::NodePublicKeys;
use phr_sis::{NodeId, Threshold};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The domain label that starts the canonical encoding ([`Manifest::canonical`]).
pub const MANIFEST_DOMAIN: &[u8] = b"dealer-free-sis/enrolment-manifest/v1";

/// The manifest file's version.
pub const MANIFEST_VERSION: u32 = 1;

/// Errors reading or checking a manifest or an enrolment record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is no JSON of the expected shape.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A value that cannot work: a bad `(t, n)`, a node listed twice or missing, keys or a
    /// fingerprint that do not parse.
    #[error("{path}: {message}")]
    Invalid {
        /// The file (or `<manifest>` for one built in memory).
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// A list of nodes (DKG participants, resharing dealers or receivers) that does not match
/// the approved manifest, naming the node that differs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MembershipError {
    /// The list gives a node other identity keys than the manifest.
    #[error(
        "the {role} list gives node {node} other identity keys than the approved manifest \
         (digest {digest}): refused"
    )]
    KeysDiffer {
        /// Which list: `participant`, `dealer`, `receiver`.
        role: &'static str,
        /// The node whose keys differ.
        node: NodeId,
        /// The approved manifest's digest (hex).
        digest: String,
    },
    /// The list names a node the manifest does not list.
    #[error("the {role} list names node {node}, which the approved manifest does not list")]
    Unknown {
        /// Which list.
        role: &'static str,
        /// The node.
        node: NodeId,
    },
    /// The list leaves out a node of the manifest.
    #[error("the {role} list leaves out node {node} of the approved manifest")]
    Missing {
        /// Which list.
        role: &'static str,
        /// The node.
        node: NodeId,
    },
    /// This node's own keys or certificate are not the manifest's entry for it.
    #[error("node {node}: the approved manifest's entry is not this node's own: {what}")]
    NotOwn {
        /// The node.
        node: NodeId,
        /// What differs.
        what: String,
    },
}

/// One node's public enrolment record: everything of it that leaves its machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enrolment {
    /// The node id, 1 to `n`.
    pub node: u8,
    /// `host:port` where it listens (informational: not pinned, not in the digest).
    #[serde(default)]
    pub address: String,
    /// Its identity public keys ([`NodePublicKeys::to_bytes`], 64 bytes) as hex.
    pub identity: String,
    /// Its TLS certificate's fingerprint, `sha256:` and 64 hex digits.
    pub tls_fingerprint: String,
}

impl Enrolment {
    /// The record of node `id` with `keys`, the certificate fingerprint `fingerprint` and
    /// `address`.
    #[must_use]
    pub fn new(id: NodeId, keys: &NodePublicKeys, fingerprint: &str, address: &str) -> Enrolment {
        Enrolment {
            node: id.get(),
            address: address.to_owned(),
            identity: crate::hex(&keys.to_bytes()),
            tls_fingerprint: fingerprint.to_owned(),
        }
    }

    /// The node id.
    ///
    /// # Errors
    /// A message for id 0.
    pub fn id(&self) -> Result<NodeId, String> {
        NodeId::new(self.node).map_err(|e| format!("node {}: {e}", self.node))
    }

    /// The identity public keys.
    ///
    /// # Errors
    /// A message naming the node if they are no 64-byte hex or no valid keys.
    pub fn identity_keys(&self) -> Result<NodePublicKeys, String> {
        let bytes: [u8; 64] = crate::unhex(&self.identity)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("node {}: identity must be 128 hex digits", self.node))?;
        NodePublicKeys::from_bytes(&bytes).map_err(|e| format!("node {}: {e}", self.node))
    }

    /// The certificate fingerprint's 32 bytes.
    ///
    /// # Errors
    /// A message naming the node if it is not `sha256:` and 64 hex digits.
    pub fn fingerprint(&self) -> Result<[u8; 32], String> {
        crate::config::parse_fingerprint(&self.tls_fingerprint).ok_or_else(|| {
            format!(
                "node {}: tls_fingerprint must be sha256: and 64 hex digits",
                self.node
            )
        })
    }

    /// Reads a record written by `node init` (`enrolment.json`).
    ///
    /// # Errors
    /// [`ManifestError`] naming the file.
    pub fn load(path: &Path) -> Result<Enrolment, ManifestError> {
        let record: Enrolment = read_json(path)?;
        let bad = |message| ManifestError::Invalid {
            path: path.to_owned(),
            message,
        };
        record.id().map_err(bad)?;
        record.identity_keys().map_err(bad)?;
        record.fingerprint().map_err(bad)?;
        Ok(record)
    }
}

/// The enrolment manifest (`manifest.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`MANIFEST_VERSION`].
    pub version: u32,
    /// `t`.
    pub threshold: u8,
    /// `n`.
    pub nodes: u8,
    /// One record per node, in id order.
    pub members: Vec<Enrolment>,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| ManifestError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

impl Manifest {
    /// The manifest of `(t, n)` and `records` (any order; one per node 1 to `n`).
    ///
    /// # Errors
    /// [`ManifestError::Invalid`] for a bad `(t, n)`, a node missing or twice, or a record
    /// that does not parse.
    pub fn new(threshold: Threshold, records: Vec<Enrolment>) -> Result<Manifest, ManifestError> {
        let mut members = records;
        members.sort_by_key(|r| r.node);
        let m = Manifest {
            version: MANIFEST_VERSION,
            threshold: threshold.t(),
            nodes: threshold.n(),
            members,
        };
        m.check(Path::new("<manifest>"))?;
        Ok(m)
    }

    fn check(&self, path: &Path) -> Result<Threshold, ManifestError> {
        let bad = |message: String| ManifestError::Invalid {
            path: path.to_owned(),
            message,
        };
        if self.version != MANIFEST_VERSION {
            return Err(bad(format!("unknown version {}", self.version)));
        }
        let threshold = Threshold::new(self.threshold, self.nodes)
            .map_err(|e| bad(format!("t = {}, n = {}: {e}", self.threshold, self.nodes)))?;
        let ids: Vec<u8> = self.members.iter().map(|m| m.node).collect();
        if ids != (1..=self.nodes).collect::<Vec<u8>>() {
            return Err(bad(format!(
                "the members must be nodes 1 to {} once each, in order; found {ids:?}",
                self.nodes
            )));
        }
        for m in &self.members {
            m.identity_keys().map_err(&bad)?;
            m.fingerprint().map_err(&bad)?;
        }
        Ok(threshold)
    }

    /// Reads and checks `path`.
    ///
    /// # Errors
    /// [`ManifestError`] naming the file.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let m: Manifest = read_json(path)?;
        m.check(path)?;
        Ok(m)
    }

    /// Writes the manifest to `path` (atomically, [`crate::files::write_atomic`]).
    ///
    /// # Errors
    /// [`ManifestError::Io`].
    pub fn save(&self, path: &Path) -> Result<(), ManifestError> {
        let io = |source| ManifestError::Io {
            path: path.to_owned(),
            source,
        };
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| io(std::io::Error::other(e.to_string())))?;
        crate::files::write_atomic(path, format!("{text}\n").as_bytes()).map_err(io)
    }

    /// `(t, n)`.
    ///
    /// # Errors
    /// [`ManifestError::Invalid`] if they are out of range (never for a checked manifest).
    pub fn threshold(&self) -> Result<Threshold, ManifestError> {
        self.check(Path::new("<manifest>"))
    }

    /// The canonical encoding the digest is taken of: [`MANIFEST_DOMAIN`], a zero byte, `t`,
    /// `n`, then per node in id order its id (1 byte), identity keys (64 bytes) and
    /// certificate fingerprint (32 bytes). Records that do not parse encode as zeros (a
    /// loaded manifest has none).
    #[must_use]
    pub fn canonical(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MANIFEST_DOMAIN.len() + 3 + self.members.len() * 97);
        out.extend_from_slice(MANIFEST_DOMAIN);
        out.extend_from_slice(&[0, self.threshold, self.nodes]);
        let mut members: Vec<&Enrolment> = self.members.iter().collect();
        members.sort_by_key(|m| m.node);
        for m in members {
            out.push(m.node);
            out.extend_from_slice(&m.identity_keys().map_or([0u8; 64], |k| k.to_bytes()));
            out.extend_from_slice(&m.fingerprint().unwrap_or([0u8; 32]));
        }
        out
    }

    /// SHA-256 of [`Manifest::canonical`].
    #[must_use]
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.canonical()).into()
    }

    /// [`Manifest::digest`] as `sha256:` and hex, as printed and compared.
    #[must_use]
    pub fn digest_hex(&self) -> String {
        format!("sha256:{}", crate::hex(&self.digest()))
    }

    /// Node `id`'s record.
    #[must_use]
    pub fn member(&self, id: NodeId) -> Option<&Enrolment> {
        self.members.iter().find(|m| m.node == id.get())
    }

    /// Node `id`'s pinned certificate fingerprint.
    #[must_use]
    pub fn fingerprint_of(&self, id: NodeId) -> Option<[u8; 32]> {
        self.member(id).and_then(|m| m.fingerprint().ok())
    }

    /// Every node's pinned identity keys.
    #[must_use]
    pub fn participants(&self) -> BTreeMap<NodeId, NodePublicKeys> {
        self.members
            .iter()
            .filter_map(|m| Some((m.id().ok()?, m.identity_keys().ok()?)))
            .collect()
    }

    /// The same manifest with `record` in place of its node's record.
    ///
    /// # Errors
    /// [`ManifestError::Invalid`] for a record of a node the manifest does not have, or one
    /// that does not parse.
    pub fn with_member(&self, record: Enrolment) -> Result<Manifest, ManifestError> {
        let mut next = self.clone();
        let Some(slot) = next.members.iter_mut().find(|m| m.node == record.node) else {
            return Err(ManifestError::Invalid {
                path: PathBuf::from("<manifest>"),
                message: format!(
                    "node {} is not in 1 to {}: a replacement keeps the node's id",
                    record.node, self.nodes
                ),
            });
        };
        *slot = record;
        next.check(Path::new("<manifest>"))?;
        Ok(next)
    }

    /// Checks a list of nodes and keys against the manifest: with `all`, it must be exactly
    /// the manifest's nodes (a DKG's participants, a resharing's receivers); without, any of
    /// them (a resharing's dealers). Every node listed must come with the manifest's keys.
    ///
    /// # Errors
    /// [`MembershipError`] naming the first node (in id order) that differs.
    pub fn check_members(
        &self,
        role: &'static str,
        given: &BTreeMap<NodeId, NodePublicKeys>,
        all: bool,
    ) -> Result<(), MembershipError> {
        let pinned = self.participants();
        for (id, keys) in given {
            match pinned.get(id) {
                None => return Err(MembershipError::Unknown { role, node: *id }),
                Some(p) if p != keys => {
                    return Err(MembershipError::KeysDiffer {
                        role,
                        node: *id,
                        digest: self.digest_hex(),
                    });
                }
                Some(_) => {}
            }
        }
        if all && let Some(id) = pinned.keys().find(|id| !given.contains_key(id)) {
            return Err(MembershipError::Missing { role, node: *id });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use dealer_free::identity::NodeKeys;

    use super::*;

    fn record(id: u8) -> Result<(Enrolment, NodePublicKeys), Box<dyn std::error::Error>> {
        let node = NodeId::new(id)?;
        let keys = NodeKeys::generate(node, &mut rand::rng()).public();
        let fp = format!("sha256:{}", crate::hex(&[id; 32]));
        Ok((Enrolment::new(node, &keys, &fp, "127.0.0.1:1"), keys))
    }

    #[test]
    fn the_digest_pins_keys_and_fingerprints_not_addresses()
    -> Result<(), Box<dyn std::error::Error>> {
        let records: Vec<Enrolment> = (1..=3)
            .map(|i| record(i).map(|r| r.0))
            .collect::<Result<_, _>>()?;
        let m = Manifest::new(Threshold::new(2, 3)?, records.clone())?;
        let mut moved = m.clone();
        moved.members[0].address = "10.0.0.1:9".into();
        assert_eq!(m.digest(), moved.digest());
        let (fresh, _) = record(2)?;
        let replaced = m.with_member(fresh)?;
        assert_ne!(m.digest(), replaced.digest());
        let mut other_fp = m.clone();
        other_fp.members[2].tls_fingerprint = format!("sha256:{}", crate::hex(&[9; 32]));
        assert_ne!(m.digest(), other_fp.digest());
        // Twice, missing or out of range: refused.
        assert!(Manifest::new(Threshold::new(2, 3)?, records[..2].to_vec()).is_err());
        let (stranger, _) = record(4)?;
        assert!(m.with_member(stranger).is_err());
        Ok(())
    }

    #[test]
    fn a_list_with_other_keys_for_a_node_is_refused_naming_it()
    -> Result<(), Box<dyn std::error::Error>> {
        let records: Vec<Enrolment> = (1..=3)
            .map(|i| record(i).map(|r| r.0))
            .collect::<Result<_, _>>()?;
        let m = Manifest::new(Threshold::new(2, 3)?, records)?;
        let mut given = m.participants();
        m.check_members("participant", &given, true)?;
        let two = NodeId::new(2)?;
        given.insert(two, NodeKeys::generate(two, &mut rand::rng()).public());
        assert!(matches!(
            m.check_members("participant", &given, true),
            Err(MembershipError::KeysDiffer { node, .. }) if node == two
        ));
        given.remove(&two);
        assert!(matches!(
            m.check_members("participant", &given, true),
            Err(MembershipError::Missing { node, .. }) if node == two
        ));
        m.check_members("dealer", &given, false)?;
        Ok(())
    }
}
