//! The files that say what a node is and where the cluster is: a node's `node.toml` and the
//! client's `client.toml` profile. Relative paths in either are relative to the file's own
//! folder, so a cluster folder can be moved as a whole.
//!
//! ```toml
//! # node.toml
//! id = 1
//! listen = "127.0.0.1:7101"
//! data_dir = "data"
//! threshold = 3
//! nodes = 5
//! key_file = "at-rest.key"        # or: key_env = "DEALER_FREE_SIS_NODE_KEY"
//! manifest = "manifest.json"      # the approved enrolment manifest (crate::manifest)
//! metrics_addr = "127.0.0.1:9101" # optional: Prometheus metrics over plain HTTP (crate::metrics)
//!
//! [tls]
//! ca = "../ca.pem"
//! cert = "node.pem"
//! key = "node.key"
//!
//! [[clients]]                     # who may call this node: certificate fingerprints
//! name = "owner"
//! fingerprint = "sha256:…"
//! role = "admin"                  # admin | owner | search (crate::access); missing: admin
//!
//! [[peers]]                       # the other nodes (informational; the client relays)
//! id = 2
//! address = "127.0.0.1:7102"
//! ```
//!
//! Every field is checked when the file is read ([`NodeConfig::load`],
//! [`ClientProfile::load`]); unknown fields are errors, so a typo never passes silently.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use phr_sis::{NodeId, Threshold};
use serde::{Deserialize, Serialize};

use crate::access::Role;

/// Errors reading or checking a config file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is no valid TOML of the expected shape.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A field has a value that cannot work.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Certificate files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The cluster CA's certificate (PEM).
    pub ca: PathBuf,
    /// This party's certificate (PEM).
    pub cert: PathBuf,
    /// This party's private key (PEM).
    pub key: PathBuf,
}

/// A caller a node accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizedClient {
    /// A name for logs.
    pub name: String,
    /// `sha256:` and the hex SHA-256 of the caller's certificate (DER).
    pub fingerprint: String,
    /// What the caller may do ([`crate::access::Role`]); an entry without one (a config
    /// written before roles) is an admin, so existing clusters keep working.
    #[serde(default)]
    pub role: Role,
}

/// Another node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    /// Its id.
    pub id: u8,
    /// Where it listens (`host:port`).
    pub address: String,
}

/// The smallest `limits.audit_segment_bytes`: a file holds a few entries at least.
pub const MIN_AUDIT_SEGMENT_BYTES: u64 = 4096;

/// Per-node limits on what one request and one client may ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Records in one store request.
    pub max_batch: usize,
    /// Candidates one secure ranking may cover.
    pub max_candidates: usize,
    /// Token evaluations (images) one client may ask per minute.
    pub token_images_per_minute: u64,
    /// The replay window: requests whose clock is further off are refused (seconds).
    pub replay_window_s: u64,
    /// Images whose checked bit shares the node keeps in memory for the secure ranking
    /// (512 bytes each); 0 reads every ranking's bit shares from the store.
    pub bit_share_cache: usize,
    /// Mask sessions (dealings and pools) the node keeps open at once, all clients together.
    pub max_mask_sessions: usize,
    /// Mask sessions one client may keep open: no client can hold every slot.
    pub max_mask_sessions_per_client: usize,
    /// Mask points one client's open sessions may hold together, counted as masks × servers
    /// (a session holds every dealer's points until it is judged; 8 bytes each).
    pub max_masks_per_client: u64,
    /// Queries between their candidates and their distances, all clients together.
    pub max_query_sessions: usize,
    /// Such queries one client may keep open.
    pub max_query_sessions_per_client: usize,
    /// Band tokens one candidate request may carry (the band layout has 8 bands): more
    /// would list the images of many band values at once.
    pub max_query_tokens: usize,
    /// The fewest band votes a candidate request may ask for; 0 would list every stored
    /// image as a candidate.
    pub min_band_votes: u32,
    /// Candidate requests (queries) one client may make per minute.
    pub queries_per_minute: u64,
    /// Token evaluations all clients together may ask per minute: the node's CPU for the
    /// VOPRF, whatever the number of clients.
    pub token_images_per_minute_total: u64,
    /// Bytes of records one client may have stored on this node (shares, bit shares and
    /// tokens with their tags), counted in the store itself.
    pub max_stored_bytes_per_client: u64,
    /// Free bytes the node keeps on its data folder's filesystem: a write that would leave
    /// less is refused (`RESOURCE_EXHAUSTED`) and `Health` reports the node unhealthy, so the
    /// store and the audit log never meet a full disk from the node's own writes.
    pub min_free_bytes: u64,
    /// Requests whose work runs at once, all clients together; more wait for a slot.
    pub max_concurrent_requests: usize,
    /// Requests of one client that run or wait at once; more are refused at once
    /// (`RESOURCE_EXHAUSTED`), so one client's overload never holds every slot.
    pub max_concurrent_per_client: usize,
    /// Longest a request waits for a slot before it is refused (milliseconds).
    pub queue_timeout_ms: u64,
    /// Request ids the replay guard keeps; past it the oldest is forgotten and requests no
    /// newer than it are refused as stale, so memory stays bounded under a flood of fresh ids.
    pub max_replay_ids: usize,
    /// Bytes of records one `ExportRecords` reply carries at most (a page ends before it).
    pub max_export_bytes: u64,
    /// Bytes past which the open audit log file is closed (`audit.log.<first entry>`) and a
    /// new one started with a checkpoint: a start reads and hashes only the open file.
    pub audit_segment_bytes: u64,
    /// Connections the node keeps open at once, all clients together; past it a new one is
    /// closed after its handshake.
    pub max_connections: usize,
    /// Connections one client (certificate) keeps open at once.
    pub max_connections_per_client: usize,
    /// TLS handshakes under way at once; past it a new connection is closed at once.
    pub max_handshakes: usize,
    /// TLS handshakes under way at once from one IP address.
    pub max_handshakes_per_address: usize,
    /// Bytes of request bodies the node holds at once, all callers together (from each
    /// body's declared length until its request is answered); a body past it is refused
    /// with `UNAVAILABLE` before it is read.
    pub max_body_bytes_in_flight: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_batch: 256,
            max_candidates: 100_000,
            token_images_per_minute: 24_000,
            replay_window_s: 300,
            bit_share_cache: 1 << 18,
            max_mask_sessions: 1024,
            max_mask_sessions_per_client: 128,
            max_masks_per_client: 16_000_000,
            max_query_sessions: 4096,
            max_query_sessions_per_client: 512,
            max_query_tokens: 8,
            min_band_votes: 1,
            queries_per_minute: 60_000,
            token_images_per_minute_total: 60_000,
            max_stored_bytes_per_client: 100 << 30,
            min_free_bytes: 256 << 20,
            max_concurrent_requests: 32,
            max_concurrent_per_client: 16,
            queue_timeout_ms: 10_000,
            max_replay_ids: 100_000,
            max_export_bytes: 32 << 20,
            audit_segment_bytes: crate::audit::DEFAULT_SEGMENT_BYTES,
            max_connections: 1024,
            max_connections_per_client: 64,
            max_handshakes: 128,
            max_handshakes_per_address: 16,
            max_body_bytes_in_flight: 512 << 20,
        }
    }
}

/// A node's configuration (`node.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The node's id, 1 to `nodes`.
    pub id: u8,
    /// The address to listen on.
    pub listen: String,
    /// The folder of the node's store, secrets and audit log.
    pub data_dir: PathBuf,
    /// `t`.
    pub threshold: u8,
    /// `n`.
    pub nodes: u8,
    /// A file holding the at-rest key (64 hex digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// An environment variable holding the at-rest key (64 hex digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_env: Option<String>,
    /// The node's approved enrolment manifest ([`crate::manifest`], written by `node
    /// approve`); default `manifest.json` beside the config.
    #[serde(default = "default_manifest")]
    pub manifest: PathBuf,
    /// Where to serve Prometheus metrics over plain, unauthenticated HTTP (an IP address and
    /// port, [`crate::metrics`]); none by default. `node run --metrics-addr` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_addr: Option<String>,
    /// Certificates.
    pub tls: TlsFiles,
    /// The callers this node answers.
    #[serde(default)]
    pub clients: Vec<AuthorizedClient>,
    /// Limits.
    #[serde(default)]
    pub limits: Limits,
    /// The other nodes.
    #[serde(default)]
    pub peers: Vec<Peer>,
}

/// A [`NodeConfig`] checked and with its paths resolved.
#[derive(Debug, Clone)]
pub struct LoadedNodeConfig {
    /// The node's id.
    pub id: NodeId,
    /// `t` of `n`.
    pub threshold: Threshold,
    /// The listen address.
    pub listen: SocketAddr,
    /// Where to serve the node's metrics, if anywhere (`metrics_addr`).
    pub metrics: Option<SocketAddr>,
    /// The file as read, paths resolved against its folder.
    pub raw: NodeConfig,
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_owned()
    } else {
        base.join(p)
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_owned(),
        source,
    })
}

fn invalid(path: &Path, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// Writes `text` to `path` atomically and durably ([`crate::files::write_atomic`]).
///
/// # Errors
/// [`ConfigError::Io`].
pub fn write_atomic(path: &Path, text: &[u8]) -> Result<(), ConfigError> {
    crate::files::write_atomic(path, text).map_err(|source| ConfigError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Writes a secret (a private key, an at-rest key) to `path` atomically, durably and with
/// mode `0600` from its first byte ([`crate::files::write_secret`]).
///
/// # Errors
/// [`ConfigError::Io`].
pub fn write_secret(path: &Path, text: &[u8]) -> Result<(), ConfigError> {
    crate::files::write_secret(path, text).map_err(|source| ConfigError::Io {
        path: path.to_owned(),
        source,
    })
}

fn to_toml<T: Serialize>(path: &Path, value: &T) -> Result<String, ConfigError> {
    toml::to_string(value).map_err(|e| invalid(path, e.to_string()))
}

fn threshold_of(path: &Path, t: u8, n: u8) -> Result<Threshold, ConfigError> {
    Threshold::new(t, n).map_err(|e| invalid(path, format!("threshold = {t}, nodes = {n}: {e}")))
}

impl NodeConfig {
    /// Reads and checks `path`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file and the problem.
    pub fn load(path: &Path) -> Result<LoadedNodeConfig, ConfigError> {
        let text = read(path)?;
        let mut raw: NodeConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        raw.data_dir = resolve(base, &raw.data_dir);
        raw.tls.ca = resolve(base, &raw.tls.ca);
        raw.tls.cert = resolve(base, &raw.tls.cert);
        raw.tls.key = resolve(base, &raw.tls.key);
        raw.key_file = raw.key_file.as_deref().map(|k| resolve(base, k));
        raw.manifest = resolve(base, &raw.manifest);
        let threshold = threshold_of(path, raw.threshold, raw.nodes)?;
        let id = NodeId::new(raw.id)
            .ok()
            .filter(|id| id.get() <= raw.nodes)
            .ok_or_else(|| {
                invalid(
                    path,
                    format!("id = {} is not in 1 to {}", raw.id, raw.nodes),
                )
            })?;
        let listen = raw.listen.parse::<SocketAddr>().map_err(|e| {
            invalid(
                path,
                format!("listen = {:?} is no socket address: {e}", raw.listen),
            )
        })?;
        let metrics = raw
            .metrics_addr
            .as_deref()
            .map(|a| {
                a.parse::<SocketAddr>().map_err(|e| {
                    invalid(
                        path,
                        format!("metrics_addr = {a:?} is no socket address (IP:PORT): {e}"),
                    )
                })
            })
            .transpose()?;
        match (&raw.key_file, &raw.key_env) {
            (Some(_), Some(_)) => return Err(invalid(path, "give key_file or key_env, not both")),
            (None, None) => {
                return Err(invalid(
                    path,
                    "no at-rest key: give key_file or key_env (64 hex digits)",
                ));
            }
            _ => {}
        }
        let mut names = std::collections::BTreeSet::new();
        let mut prints = std::collections::BTreeSet::new();
        for c in &raw.clients {
            // A client's name keys its budgets, sessions, quota and replies: one name, one
            // certificate.
            if let Err(e) = c.name.parse::<crate::access::ClientName>() {
                return Err(invalid(path, e.to_string()));
            }
            if !names.insert(c.name.as_str()) {
                return Err(invalid(
                    path,
                    format!("client {:?} is listed twice", c.name),
                ));
            }
            if !prints.insert(parse_fingerprint(&c.fingerprint)) {
                return Err(invalid(
                    path,
                    format!("client {:?}: its fingerprint is another client's", c.name),
                ));
            }
            if parse_fingerprint(&c.fingerprint).is_none() {
                return Err(invalid(
                    path,
                    format!(
                        "client {:?}: fingerprint must be sha256: and 64 hex digits",
                        c.name
                    ),
                ));
            }
        }
        let l = &raw.limits;
        if l.max_batch == 0
            || l.max_candidates == 0
            || l.max_concurrent_requests == 0
            || l.max_concurrent_per_client == 0
            || l.max_replay_ids == 0
            || l.max_export_bytes == 0
            || l.min_band_votes == 0
            || l.max_connections == 0
            || l.max_connections_per_client == 0
            || l.max_handshakes == 0
            || l.max_handshakes_per_address == 0
            || l.max_body_bytes_in_flight == 0
        {
            return Err(invalid(
                path,
                "limits must be positive (max_batch, max_candidates, max_concurrent_requests, \
                 max_concurrent_per_client, max_replay_ids, max_export_bytes, min_band_votes, \
                 max_connections, max_connections_per_client, max_handshakes, \
                 max_handshakes_per_address, max_body_bytes_in_flight)",
            ));
        }
        if l.audit_segment_bytes < MIN_AUDIT_SEGMENT_BYTES {
            return Err(invalid(
                path,
                format!(
                    "limits.audit_segment_bytes must be at least {MIN_AUDIT_SEGMENT_BYTES}, got {}",
                    l.audit_segment_bytes
                ),
            ));
        }
        Ok(LoadedNodeConfig {
            id,
            threshold,
            listen,
            metrics,
            raw,
        })
    }

    /// Writes the config to `path` (atomically).
    ///
    /// # Errors
    /// [`ConfigError`].
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        write_atomic(path, to_toml(path, self)?.as_bytes())
    }
}

/// The 32 bytes of a `sha256:<hex>` fingerprint.
#[must_use]
pub fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    text.strip_prefix("sha256:")
        .and_then(crate::unhex)
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
}

/// One node as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    /// Its id.
    pub id: u8,
    /// `host:port`.
    pub address: String,
}

/// The client's profile (`client.toml`): where the nodes are and how to reach them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientProfile {
    /// `t`.
    pub threshold: u8,
    /// The nodes.
    pub nodes: Vec<NodeEntry>,
    /// Certificates.
    pub tls: TlsFiles,
    /// Time allowed per request before it is retried (milliseconds).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Retries of a request that timed out or found the node unreachable.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// The collection's public key state after the DKG (written by `cluster up`).
    #[serde(default = "default_key_file")]
    pub key_file: PathBuf,
    /// The client's own record of ingested images (id → path); never sent to the nodes.
    #[serde(default = "default_catalog")]
    pub catalog: PathBuf,
    /// The enrolment manifest whose certificate fingerprints the client pins
    /// ([`crate::manifest`]).
    #[serde(default = "default_manifest")]
    pub manifest: PathBuf,
}

fn default_timeout_ms() -> u64 {
    10_000
}
fn default_retries() -> u32 {
    2
}
fn default_key_file() -> PathBuf {
    PathBuf::from("cluster-key.json")
}
fn default_catalog() -> PathBuf {
    PathBuf::from("catalog.json")
}
fn default_manifest() -> PathBuf {
    PathBuf::from("manifest.json")
}

/// A [`ClientProfile`] checked, its paths resolved.
#[derive(Debug, Clone)]
pub struct LoadedProfile {
    /// `t` of `n`.
    pub threshold: Threshold,
    /// The file's folder.
    pub dir: PathBuf,
    /// The profile, paths resolved.
    pub raw: ClientProfile,
}

impl ClientProfile {
    /// Reads and checks `path`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file and the problem.
    pub fn load(path: &Path) -> Result<LoadedProfile, ConfigError> {
        let text = read(path)?;
        let mut raw: ClientProfile = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or_else(|| Path::new(".")).to_owned();
        raw.tls.ca = resolve(&base, &raw.tls.ca);
        raw.tls.cert = resolve(&base, &raw.tls.cert);
        raw.tls.key = resolve(&base, &raw.tls.key);
        raw.key_file = resolve(&base, &raw.key_file);
        raw.catalog = resolve(&base, &raw.catalog);
        raw.manifest = resolve(&base, &raw.manifest);
        let n = u8::try_from(raw.nodes.len()).map_err(|_| invalid(path, "at most 255 nodes"))?;
        let threshold = threshold_of(path, raw.threshold, n)?;
        let mut ids: Vec<u8> = raw.nodes.iter().map(|e| e.id).collect();
        ids.sort_unstable();
        if ids != (1..=n).collect::<Vec<u8>>() {
            return Err(invalid(
                path,
                format!("the nodes must be numbered 1 to {n} once each, found {ids:?}"),
            ));
        }
        if raw.timeout_ms == 0 {
            return Err(invalid(path, "timeout_ms must be positive"));
        }
        Ok(LoadedProfile {
            threshold,
            dir: base,
            raw,
        })
    }

    /// Writes the profile to `path` (atomically).
    ///
    /// # Errors
    /// [`ConfigError`].
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        write_atomic(path, to_toml(path, self)?.as_bytes())
    }
}
