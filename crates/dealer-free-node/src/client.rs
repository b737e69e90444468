//! The cluster client: everything the owner does against running nodes — coordinate the
//! DKG, ingest (Stage-1), search (Stage-2) and get — over mutual TLS, with a timeout per
//! request and retries for nodes that are slow or unreachable.
//!
//! The client speaks the same protocol messages as the simulator's in-process deployment,
//! with the same payload framing (`dealer_free::payload`): token requests and partial evaluations of the threshold
//! VOPRF, image shares from `phr_sis::share`, bit shares, candidate and distance requests.
//! It relays what nodes send each other (DKG messages, mask deals and checks); those are
//! signed by their sender and, where secret, sealed for their recipient, so the client can
//! neither read nor forge them.
//!
//! What the client checks: every node's TLS certificate against the fingerprint the
//! enrolment manifest pins for its id, before anything is sent ([`pinned_channel`]); every partial evaluation's DLEQ proof (only `t` valid ones are
//! combined), every share's commitments (bad shares are named and routed around), that at
//! least `2t − 1` servers return the same candidate list, every server's signed check of the
//! query, and the distance shares' consistency (wrong ones are corrected and named by
//! Reed–Solomon decoding where the servers allow it; [`Integrity`] says what the opening
//! vouches for).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use curve25519_dalek::ristretto::RistrettoPoint;
use dealer_free::mpc::messages::{CandidateResponse, ChecksRelay, DistanceResponse};
use dealer_free::mpc::querier::{Agreed, Querier};
use dealer_free::mpc::query::SignedQueryCheck;
use dealer_free::mpc::{SearchError, share_hash_bits};
use dealer_free::oprf::PublicKey;
use dealer_free::oprf::threshold::{PartialEvaluation, verification_shares_from_points};
use dealer_free::oprf::tokens::{self, TokenContext, TokenRequest};
use dealer_free::payload::{frame_payload, unframe_payload};
use dealer_free::record::StoredRecord;
use dealer_free::wire::{MessageKind, decode_point};
use phr_sis::share::{Share, SplitOptions, reconstruct, split_image};
use phr_sis::token_index::Token;
use phr_sis::{BandLayout, ImageHash, ImageId, NodeId, SearchParams, Threshold};
use prost::Message as _;
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::config::{ClientProfile, ConfigError, LoadedProfile, write_atomic};
use crate::manifest::Manifest;

mod catalog;
mod catalog_file;
mod commit;
mod dkg;
mod error;
mod ingest;
mod masks;
mod pinned;
mod relay;
mod replace;
mod rpc;
mod search;
mod share_check;
mod wire_count;
use crate::proto;
use crate::proto::node_client::NodeClient;
use crate::replay::{REQUEST_ID_LEN, unix_ms};
pub use catalog::{
    LIST_PAGE, Listing, MAX_DAMAGED, MAX_LISTED, MAX_PAGES, NodeDeleted, OFF_CODEWORD,
    RepairOutcome, ScrubReport,
};
pub use catalog_file::{Catalog, CatalogEntry};
pub use commit::ResumeOutcome;
pub use dkg::DkgOutcome;
pub use error::ClientError;
pub use masks::DealtMasks;
pub use pinned::{PinError, PinWitness, pinned_channel};
pub use relay::{Dropped, route_checked, route_envelopes};
pub use replace::{REPAIR_PAGE, ReplaceOutcome};
use rpc::Rpc;
pub use share_check::{SHARE_CHECK_DEALING, SHARE_CHECK_ORDER, ShareCheckReport};
use wire_count::WireCounter;
pub use wire_count::{Direction, Tally, WireCounts};

/// The collection label of the band tokens.
pub const TOKEN_COLLECTION: &[u8] = b"dealer-free-sis";

/// Images per token request and store request, unless told otherwise.
pub const DEFAULT_BATCH: usize = 32;

/// Masks per dealing for a client that searches many times ([`ClusterClient::with_mask_pool`]):
/// two for each query's check and one per candidate, so a pool serves about fifty searches of
/// 300 candidates (the mean at 10,000 stored images); each server keeps 8 bytes per mask.
pub const SEARCH_MASK_POOL: u32 = 16_384;

/// The collection's public key state, written by the DKG coordinator (`cluster up`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterKeyFile {
    /// `t`.
    pub threshold: u8,
    /// `n`.
    pub nodes: u8,
    /// The group public key (hex).
    pub group_public_key: String,
    /// Every node's verification share (hex), by node id.
    pub verification_shares: BTreeMap<u8, String>,
    /// The dealers that make up the key.
    pub qualified: Vec<u8>,
    /// The DKG transcript hash every node confirmed (hex).
    pub transcript: String,
}

impl ClusterKeyFile {
    /// The key file of a DKG's or resharing's public outcome.
    fn from_result(threshold: Threshold, result: &proto::DkgResult) -> ClusterKeyFile {
        ClusterKeyFile {
            threshold: threshold.t(),
            nodes: threshold.n(),
            group_public_key: crate::hex(&result.group_public_key),
            verification_shares: result
                .verification_shares
                .iter()
                .filter_map(|v| {
                    u8::try_from(v.node_id)
                        .ok()
                        .map(|id| (id, crate::hex(&v.point)))
                })
                .collect(),
            qualified: result
                .qualified
                .iter()
                .filter_map(|q| u8::try_from(*q).ok())
                .collect(),
            transcript: crate::hex(&result.transcript),
        }
    }

    /// Writes the key file (JSON, atomically).
    fn save(&self, path: &Path) -> Result<(), ClientError> {
        let text =
            serde_json::to_string_pretty(self).map_err(|e| ClientError::Protocol(e.to_string()))?;
        write_atomic(path, text.as_bytes())?;
        Ok(())
    }

    /// Reads the key file at `path`.
    ///
    /// # Errors
    /// [`ClientError::NoKey`] if it is missing, [`ClientError::Config`] if malformed.
    pub fn load_from(path: &Path) -> Result<ClusterKeyFile, ClientError> {
        ClusterKeyFile::load(path)
    }

    fn load(path: &Path) -> Result<ClusterKeyFile, ClientError> {
        let text =
            std::fs::read_to_string(path).map_err(|_| ClientError::NoKey(path.to_owned()))?;
        serde_json::from_str(&text).map_err(|e| {
            ClientError::Config(ConfigError::Parse {
                path: path.to_owned(),
                message: e.to_string(),
            })
        })
    }

    fn verification_shares(&self, path: &Path) -> Result<BTreeMap<NodeId, PublicKey>, ClientError> {
        let bad = |m: String| {
            ClientError::Config(ConfigError::Invalid {
                path: path.to_owned(),
                message: m,
            })
        };
        let mut points: BTreeMap<NodeId, RistrettoPoint> = BTreeMap::new();
        for (id, hex) in &self.verification_shares {
            let node = NodeId::new(*id).map_err(|e| bad(e.to_string()))?;
            let bytes: [u8; 32] = crate::unhex(hex)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| bad(format!("node {id}'s verification share is no 32-byte hex")))?;
            let p = decode_point(&bytes)
                .ok_or_else(|| bad(format!("node {id}'s share is no point")))?;
            points.insert(node, p);
        }
        verification_shares_from_points(&points).map_err(|e| bad(e.to_string()))
    }
}

/// One image to ingest.
#[derive(Debug, Clone)]
pub struct IngestFile {
    /// Where it came from (stays on the client).
    pub path: PathBuf,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Its pHash.
    pub hash: ImageHash,
}

/// What became of one ingested image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestOutcome {
    /// The image's new id.
    pub id: ImageId,
    /// Its file.
    pub path: PathBuf,
    /// The nodes that acknowledged its record (durably stored).
    pub stored_on: Vec<NodeId>,
    /// Why the others did not.
    pub failed: BTreeMap<NodeId, String>,
}

impl IngestOutcome {
    /// Stored on every node.
    #[must_use]
    pub fn complete(&self) -> bool {
        self.failed.is_empty()
    }
}

/// What a search found, who took part and what the opening vouches for: the protocol's one
/// result type.
pub use dealer_free::mpc::{Integrity, SearchResult};

/// A retrieved image.
#[derive(Debug, Clone)]
pub struct Retrieved {
    /// The file's bytes, verified.
    pub bytes: Vec<u8>,
    /// Nodes whose shares were rejected (bad commitments, failed integrity checks).
    pub rejected: BTreeMap<NodeId, String>,
    /// Nodes that did not answer.
    pub unreachable: BTreeMap<NodeId, String>,
}

/// One node's answer to [`ClusterClient::status`].
#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    /// The node.
    pub id: u8,
    /// Its address.
    pub address: String,
    /// Health, or why not.
    pub health: Result<NodeHealth, String>,
}

/// A node's health report.
#[derive(Debug, Clone, Serialize)]
pub struct NodeHealth {
    /// It holds a key share.
    pub has_key: bool,
    /// Images it holds.
    pub images: u64,
    /// Its audit log entries.
    pub audit_entries: u64,
    /// Its audit log head (hex).
    pub audit_head: String,
    /// Its version.
    pub version: String,
    /// The transcript of the key share it serves with (hex; empty without one).
    pub transcript: String,
    /// The transcript of a resharing it holds prepared, waiting for its commit or roll-back
    /// (hex).
    pub prepared: Option<String>,
    /// Why it cannot serve now (a failed write of its store or audit log, a full disk); none
    /// when it is healthy.
    pub problem: Option<String>,
}

/// A connection to every node of a cluster.
#[derive(Debug, Clone)]
pub struct ClusterClient {
    profile: LoadedProfile,
    /// The enrolment manifest whose fingerprints the connections pin.
    manifest: std::sync::Arc<Manifest>,
    nodes: BTreeMap<NodeId, (String, NodeClient<Channel>)>,
    /// What each node's pinned verifier refused.
    pins: BTreeMap<NodeId, PinWitness>,
    timeout: Duration,
    retries: u32,
    /// The nodes that last answered a health check with a key, and when.
    up: std::sync::Arc<std::sync::Mutex<Option<HealthCheck>>>,
    /// The mask pools dealt among the servers of the secure ranking.
    masks: std::sync::Arc<masks::MaskReserve>,
    /// Masks a search deals when no pool has enough (0: just what it needs).
    mask_pool: u32,
    /// What this client and its clones sent and received.
    wire: std::sync::Arc<WireCounter>,
}

/// When a health check ran, and the nodes that answered with a key.
type HealthCheck = (std::time::Instant, Vec<NodeId>);

/// How long a search trusts the last health check (a failed search forgets it).
pub const HEALTH_TTL: Duration = Duration::from_secs(2);

fn read(path: &Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|source| ClientError::Tls {
        path: path.to_owned(),
        source,
    })
}

fn meta() -> proto::RequestMeta {
    let mut id = vec![0u8; REQUEST_ID_LEN];
    rand::rng().fill_bytes(&mut id);
    proto::RequestMeta {
        request_id: id,
        unix_ms: unix_ms(),
    }
}

fn retryable(s: &Status) -> bool {
    matches!(
        s.code(),
        Code::Unavailable | Code::DeadlineExceeded | Code::Unknown | Code::Cancelled
    )
}

fn refused(node: NodeId, status: Status) -> ClientError {
    ClientError::Refused {
        node,
        status: Box::new(status),
    }
}

impl ClusterClient {
    /// A client for the profile at `path` (connections are opened lazily, on first use).
    /// Call it within a Tokio runtime.
    ///
    /// # Errors
    /// [`ClientError::Config`], [`ClientError::Tls`], [`ClientError::Address`];
    /// [`ClientError::Protocol`] outside a Tokio runtime.
    pub fn open(path: &Path) -> Result<ClusterClient, ClientError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ClientError::Protocol(
                "ClusterClient::open must be called within a Tokio runtime".into(),
            ));
        }
        let profile = ClientProfile::load(path)?;
        let raw = &profile.raw;
        let manifest = Manifest::load(&raw.manifest)?;
        if (manifest.threshold, manifest.nodes) != (profile.threshold.t(), profile.threshold.n()) {
            return Err(ClientError::Config(ConfigError::Invalid {
                path: raw.manifest.clone(),
                message: format!(
                    "the manifest is for t = {} of n = {}, the profile {} for t = {} of n = {}",
                    manifest.threshold,
                    manifest.nodes,
                    path.display(),
                    profile.threshold.t(),
                    profile.threshold.n()
                ),
            }));
        }
        let cert = read(&raw.tls.cert)?;
        let key = zeroize::Zeroizing::new(read(&raw.tls.key)?);
        let timeout = Duration::from_millis(raw.timeout_ms);
        let retries = raw.retries;
        let mut nodes = BTreeMap::new();
        let mut pins = BTreeMap::new();
        for entry in &raw.nodes {
            let id = NodeId::new(entry.id).map_err(|e| ClientError::Protocol(e.to_string()))?;
            let bad = |reason: String| ClientError::Address {
                node: id,
                address: entry.address.clone(),
                reason,
            };
            let pin = manifest.fingerprint_of(id).ok_or_else(|| {
                bad(format!(
                    "the manifest {} pins no certificate for it",
                    raw.manifest.display()
                ))
            })?;
            let (channel, witness) =
                pinned_channel(id, &entry.address, pin, Some((&cert, &key)), timeout)
                    .map_err(|e| bad(e.to_string()))?;
            let client = NodeClient::new(channel)
                .max_decoding_message_size(crate::MAX_GRPC_MESSAGE)
                .max_encoding_message_size(crate::MAX_GRPC_MESSAGE);
            nodes.insert(id, (entry.address.clone(), client));
            pins.insert(id, witness);
        }
        Ok(ClusterClient {
            profile,
            manifest: std::sync::Arc::new(manifest),
            nodes,
            pins,
            timeout,
            retries,
            up: std::sync::Arc::default(),
            masks: std::sync::Arc::default(),
            mask_pool: 0,
            wire: std::sync::Arc::default(),
        })
    }

    /// A raw gRPC client of node `id` over this profile's pinned connection, for calls the
    /// cluster client does not make (load generators, tests); the node checks every byte of
    /// them as it checks any caller's.
    #[must_use]
    pub fn node_client(&self, id: NodeId) -> Option<NodeClient<Channel>> {
        self.nodes.get(&id).map(|(_, c)| c.clone())
    }

    /// The enrolment manifest the client pins the nodes' certificates by.
    #[must_use]
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Searches deal `masks` masks at a time when no pool has enough for them, and top the
    /// pools up in the background when fewer than half that many are left, so that most
    /// searches find their masks dealt already. 0 (the default, right for a client that
    /// searches once) deals just what each search needs.
    #[must_use]
    pub fn with_mask_pool(mut self, masks: u32) -> ClusterClient {
        self.mask_pool = masks;
        self
    }

    /// The servers a search would use now: every node that answers a health check with a
    /// key (at least `2t − 1`), so that the opening has shares to spare where it can.
    ///
    /// # Errors
    /// [`ClientError::TooFewNodes`] with fewer than `2t − 1` reachable nodes.
    pub async fn search_servers(&self) -> Result<Vec<NodeId>, ClientError> {
        let quorum = usize::from(self.threshold().search_quorum());
        let cached = self
            .up
            .lock()
            .ok()
            .and_then(|c| c.clone())
            .filter(|(at, up)| at.elapsed() < HEALTH_TTL && up.len() >= quorum)
            .map(|(_, up)| up);
        let up = match cached {
            Some(up) => up,
            None => {
                let (up, down) = self.reachable().await;
                if up.len() < quorum {
                    return Err(ClientError::TooFewNodes {
                        what: "secure search (2t − 1 nodes)",
                        needed: quorum,
                        answered: up.len(),
                        failures: down,
                    });
                }
                if let Ok(mut c) = self.up.lock() {
                    *c = Some((std::time::Instant::now(), up.clone()));
                }
                up
            }
        };
        Ok(up)
    }

    /// Masks left in this client's pools for `servers`.
    #[must_use]
    pub fn masks_left(&self, servers: &[NodeId]) -> u32 {
        self.masks.left(servers)
    }

    /// Mask dealings this client (and its clones) completed, in searches, in the background
    /// and through [`ClusterClient::deal_masks`].
    #[must_use]
    pub fn mask_dealings(&self) -> u64 {
        self.masks.dealings()
    }

    /// `t` of `n`.
    #[must_use]
    pub fn threshold(&self) -> Threshold {
        self.profile.threshold
    }

    /// The node ids.
    #[must_use]
    pub fn node_ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    /// The profile.
    #[must_use]
    pub fn profile(&self) -> &LoadedProfile {
        &self.profile
    }

    /// The per-request timeout.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn client(&self, node: NodeId) -> Result<NodeClient<Channel>, ClientError> {
        self.nodes
            .get(&node)
            .map(|(_, c)| c.clone())
            .ok_or_else(|| ClientError::Protocol(format!("there is no node {node}")))
    }

    /// Calls `node` with the request `build` makes (a fresh request id each attempt),
    /// retrying transport failures; every attempt's request and the reply are counted
    /// ([`ClusterClient::wire_counts`]).
    async fn call<Q: Rpc>(
        &self,
        node: NodeId,
        build: impl Fn(proto::RequestMeta) -> Q,
    ) -> Result<Q::Reply, ClientError> {
        let client = self.client(node)?;
        let mut attempt = 0;
        // A step that must not apply twice is retried under its first id: the node answers
        // a retry with the first reply (`crate::reply_cache`).
        let once = Q::METHOD.applies_once().then(meta);
        loop {
            let request = build(once.clone().unwrap_or_else(meta));
            self.wire.request(request.encoded_len());
            if Q::METHOD == crate::access::Method::Health {
                self.wire.health();
            }
            match request.send(client.clone()).await {
                Ok(r) => {
                    let reply = r.into_inner();
                    self.wire.reply(reply.encoded_len());
                    return Ok(reply);
                }
                Err(_) if self.pin_refused(node).is_some() => {
                    let presented = self.pin_refused(node).unwrap_or_default();
                    let pinned = self
                        .pins
                        .get(&node)
                        .map(|w| w.pinned.clone())
                        .unwrap_or_default();
                    return Err(ClientError::CertificateMismatch {
                        node,
                        presented,
                        pinned,
                    });
                }
                Err(s) if retryable(&s) && attempt < self.retries => {
                    attempt += 1;
                    self.wire.retry();
                    // Exponential backoff with jitter, so clients shed by a busy node do not
                    // come back in step.
                    let base = 50u64 << attempt.min(6);
                    let jitter = rand::random::<u64>() % base.max(1);
                    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
                }
                Err(s) => return Err(refused(node, s)),
            }
        }
    }

    /// The fingerprint of the certificate `node` presented, if the last handshake with it was
    /// refused because it is not the manifest's.
    fn pin_refused(&self, node: NodeId) -> Option<String> {
        self.pins.get(&node).and_then(PinWitness::refused)
    }

    /// Calls every node of `nodes` at once with the request `build` makes for it; each
    /// result by node.
    async fn call_all<Q, F>(
        &self,
        nodes: &[NodeId],
        build: F,
    ) -> BTreeMap<NodeId, Result<Q::Reply, ClientError>>
    where
        Q: Rpc,
        F: Fn(NodeId, proto::RequestMeta) -> Q + Clone + Send + Sync + 'static,
    {
        let mut set = JoinSet::new();
        for node in nodes {
            let this = self.clone();
            let build = build.clone();
            let node = *node;
            set.spawn(async move {
                let r = this.call(node, |m| build(node, m)).await;
                (node, r)
            });
        }
        let mut out = BTreeMap::new();
        while let Some(joined) = set.join_next().await {
            if let Ok((node, r)) = joined {
                out.insert(node, r);
            }
        }
        out
    }

    /// What this client (and its clones) sent and received so far, counted from the messages
    /// themselves.
    #[must_use]
    pub fn wire_counts(&self) -> WireCounts {
        self.wire.snapshot()
    }

    /// Starts the counts of [`ClusterClient::wire_counts`] over from zero.
    pub fn reset_wire_counts(&self) {
        self.wire.reset();
    }

    /// Health and audit head of every node.
    pub async fn status(&self) -> Vec<NodeStatus> {
        let ids = self.node_ids();
        let health = self.call_all(&ids, |_, _| proto::HealthRequest {}).await;
        let audit = self
            .call_all(&ids, |_, m| proto::AuditHeadRequest { meta: Some(m) })
            .await;
        ids.iter()
            .map(|id| {
                let address = self
                    .nodes
                    .get(id)
                    .map(|(a, _)| a.clone())
                    .unwrap_or_default();
                let health = match (health.get(id), audit.get(id)) {
                    (Some(Ok(h)), Some(Ok(a))) => Ok(NodeHealth {
                        has_key: h.has_key,
                        images: h.images,
                        audit_entries: a.entries,
                        audit_head: crate::hex(&a.head),
                        version: h.version.clone(),
                        transcript: crate::hex(&h.transcript),
                        prepared: (!h.prepared_transcript.is_empty())
                            .then(|| crate::hex(&h.prepared_transcript)),
                        problem: (!h.problem.is_empty()).then(|| h.problem.clone()),
                    }),
                    (Some(Err(e)), _) | (_, Some(Err(e))) => Err(short(e)),
                    _ => Err("no answer".into()),
                };
                NodeStatus {
                    id: id.get(),
                    address,
                    health,
                }
            })
            .collect()
    }

    /// The nodes that answer a health check, and why the others do not.
    pub async fn reachable(&self) -> (Vec<NodeId>, BTreeMap<NodeId, String>) {
        let ids = self.node_ids();
        let answers = self.call_all(&ids, |_, _| proto::HealthRequest {}).await;
        let mut up = Vec::new();
        let mut down = BTreeMap::new();
        for id in ids {
            match answers.get(&id) {
                Some(Ok(h)) if !h.problem.is_empty() => {
                    down.insert(id, format!("unhealthy: {}", h.problem));
                }
                Some(Ok(h)) if h.has_key => up.push(id),
                Some(Ok(_)) => {
                    down.insert(id, "holds no key share".to_owned());
                }
                Some(Err(e)) => {
                    down.insert(id, short(e));
                }
                None => {
                    down.insert(id, "no answer".to_owned());
                }
            }
        }
        (up, down)
    }

    /// Every node's long-term public keys as a relayed participant (by node id), and why the
    /// nodes that gave none did not (no answer, an answer as another node, or keys other
    /// than the enrolment manifest's: the nodes would refuse them anyway).
    async fn participants(
        &self,
        ids: &[NodeId],
    ) -> (
        BTreeMap<NodeId, proto::Participant>,
        BTreeMap<NodeId, String>,
    ) {
        let identities = self
            .call_all(ids, |_, m| proto::IdentityRequest { meta: Some(m) })
            .await;
        let mut participants = BTreeMap::new();
        let mut failures = BTreeMap::new();
        for id in ids {
            match identities.get(id) {
                Some(Ok(reply))
                    if reply.node_id == u32::from(id.get())
                        && self
                            .manifest
                            .participants()
                            .get(id)
                            .is_none_or(|k| k.to_bytes().as_slice() != reply.public_keys) =>
                {
                    failures.insert(
                        *id,
                        format!(
                            "answers with identity keys that are not the enrolment manifest's \
                             ({}): enrol its record and have every node approve it",
                            self.manifest.digest_hex()
                        ),
                    );
                }
                Some(Ok(reply)) if reply.node_id == u32::from(id.get()) => {
                    participants.insert(
                        *id,
                        proto::Participant {
                            node_id: reply.node_id,
                            public_keys: reply.public_keys.clone(),
                        },
                    );
                }
                Some(Ok(reply)) => {
                    failures.insert(*id, format!("answers as node {}", reply.node_id));
                }
                Some(Err(e)) => {
                    failures.insert(*id, short(e));
                }
                None => {
                    failures.insert(*id, "no answer".to_owned());
                }
            }
        }
        (participants, failures)
    }
}

/// A one-line description of a client error, for per-node reports.
#[must_use]
pub fn short(e: &ClientError) -> String {
    match e {
        ClientError::Refused { status, .. } => match status.code() {
            Code::Unavailable => "unreachable".to_owned(),
            Code::DeadlineExceeded => "timed out".to_owned(),
            // The channel's own timeout (the profile's `timeout_ms`).
            Code::Cancelled if status.message().contains("Timeout expired") => {
                "timed out".to_owned()
            }
            _ => format!("{:?}: {}", status.code(), status.message()),
        },
        other => other.to_string(),
    }
}
