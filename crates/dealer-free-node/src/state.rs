//! A node's state and the handler of every request, with no gRPC in sight: the server
//! ([`crate::server`]) decodes a call, checks who is calling, and hands it here.
//!
//! What a node holds: its share store (redb, HMAC-tagged records, one transaction per
//! store request), its token index (rebuilt at start from the band tokens kept in each
//! record's metadata, so index and records never disagree), its secrets sealed at rest
//! ([`crate::secrets`]), its audit log ([`crate::audit`]) and the replay guard
//! ([`crate::replay`]). Protocol logic is the `dealer-free` crate's: [`DkgSession`] for
//! the key generation, [`tokens::respond`] for the threshold VOPRF, and for the secure
//! ranking the mask dealing's states ([`dealer_free::mpc::masks::session`]) and a server's
//! query states ([`dealer_free::mpc::server`]); the node keeps the states, bounds them per
//! client and carries their messages.
//!
//! Every handler checks its input before it changes anything: a malformed or oversized
//! request is an [`NodeError::Invalid`] and leaves the store, the index, the key and the
//! log as they were.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use dealer_free::dkg::{DkgSession, Recipient};
use dealer_free::identity::NodePublicKeys;
use dealer_free::mpc::messages::CandidateRequest;
use dealer_free::mpc::{HashBitShares, SearchError};
use dealer_free::oprf::tokens::{self, TokenRequest};
use dealer_free::reshare::{ReshareOutgoing, ReshareSession};
use phr_sis::share::Share;
use phr_sis::store::{ImageRecord, ShareStore, StoreError};
use phr_sis::token_index::Token;
use phr_sis::{ImageId, NodeId, Threshold, TokenIndex};

use crate::audit::{AuditError, AuditLog};
use crate::config::{Limits, LoadedNodeConfig};
use crate::manifest::{ManifestError, MembershipError};
use crate::proto;
use crate::replay::{ReplayError, ReplayGuard, unix_ms};
use crate::secrets::{AtRestKey, ClusterKey, NodeSecrets, SecretsError};

mod catalog;
mod disk;
mod dkg;
mod enrolment;
mod masks;
mod receivers;
mod records;
mod reshare;
mod search;
mod share_check;

pub use catalog::MAX_LIST_PAGE;
pub use disk::FULL_MARKER;

/// Most band tokens in one record or one candidate request: one per band, and a band layout
/// has at most 64 bands.
pub const MAX_TOKENS: usize = dealer_free::record::MAX_TOKENS;
/// How long a mask session is kept until it is judged.
pub const MASK_SESSION_TTL: Duration = Duration::from_secs(120);
/// How long a judged mask pool serves queries, from its dealing.
pub const MASK_POOL_TTL: Duration = Duration::from_secs(600);
/// How long a query's candidates and checked shares are kept for its next step.
pub const QUERY_SESSION_TTL: Duration = Duration::from_secs(60);

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The request is malformed or out of bounds.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// What was asked for is not here.
    #[error("not found: {0}")]
    NotFound(String),
    /// The node cannot do it now (no key share yet, no such session).
    #[error("not ready: {0}")]
    NotReady(String),
    /// It conflicts with what the node holds.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The caller asked too much.
    #[error("rate limit: {0}")]
    RateLimited(String),
    /// A replayed or stale request.
    #[error("refused: {0}")]
    Replay(#[from] ReplayError),
    /// Stored data failed its integrity check.
    #[error("data loss: {0}")]
    Corrupt(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(StoreError),
    /// The node cannot serve this now: its store is out of service after a failed write
    /// (it is reopened on a later request).
    #[error("node unavailable: {0}")]
    Unavailable(String),
    /// The disk is too full for the write, or the caller's quota is used up.
    #[error("no room: {0}")]
    Full(String),
    /// The audit log failed.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The secrets file failed.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    /// The approved enrolment manifest is missing or unusable.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A list of nodes (or this node itself) is not as the approved manifest lists it.
    #[error(transparent)]
    Membership(#[from] MembershipError),
    /// A step of the secure search refused (its culprits are kept: [`SearchError::culprits`]).
    #[error(transparent)]
    Search(#[from] SearchError),
    /// The data folder could not be prepared.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl From<StoreError> for NodeError {
    fn from(e: StoreError) -> NodeError {
        match e {
            StoreError::Corrupt { .. } | StoreError::Incomplete { .. } => {
                NodeError::Corrupt(e.to_string())
            }
            StoreError::QuotaExceeded { .. } => {
                NodeError::Full(format!("{e} (max_stored_bytes_per_client)"))
            }
            // Two requests storing the same new record at once: the second finds it stored.
            StoreError::AlreadyExists(_) => NodeError::Conflict(format!(
                "{e}: it was stored meanwhile; send the request again"
            )),
            StoreError::Deleted(_) => NodeError::Conflict(e.to_string()),
            other => NodeError::Store(other),
        }
    }
}

fn invalid(m: impl Into<String>) -> NodeError {
    NodeError::Invalid(m.into())
}

fn node_id(raw: u32, what: &str) -> Result<NodeId, NodeError> {
    u8::try_from(raw)
        .ok()
        .and_then(|b| NodeId::new(b).ok())
        .ok_or_else(|| invalid(format!("{what}: {raw} is no node id (1 to 255)")))
}

fn array32(bytes: &[u8], what: &str) -> Result<[u8; 32], NodeError> {
    bytes
        .try_into()
        .map_err(|_| invalid(format!("{what} must be 32 bytes, got {}", bytes.len())))
}

/// A DKG run in progress.
struct DkgRun {
    label: Vec<u8>,
    step: u32,
    session: DkgSession,
    /// The key this node got from the last round, installed only by the commit (step 5).
    pending: Option<ClusterKey>,
}

/// A resharing run in progress.
struct ReshareRun {
    label: Vec<u8>,
    step: u32,
    session: ReshareSession,
}

/// The token-evaluation budget of one caller.
struct Budget {
    window_start_ms: u64,
    used: u64,
    /// A request was refused this window: the next are refused before their body is read.
    refused: bool,
}

impl Budget {
    /// Whether the budget's minute is still running at `now`.
    fn current(&self, now: u64) -> bool {
        now.saturating_sub(self.window_start_ms) < 60_000
    }
}

/// What `Health` reports of the node's key, copied whenever the secrets change: `Health`
/// reads it under a lock held only for an `Arc` clone, never across I/O.
#[derive(Debug, Clone, Default)]
struct KeyStatus {
    has_key: bool,
    transcript: Vec<u8>,
    prepared_label: Vec<u8>,
    prepared_transcript: Vec<u8>,
}

impl KeyStatus {
    fn of(s: &NodeSecrets) -> KeyStatus {
        KeyStatus {
            has_key: s.cluster.is_some(),
            transcript: s
                .cluster
                .as_ref()
                .map(|c| c.transcript.to_vec())
                .unwrap_or_default(),
            prepared_label: s
                .prepared
                .as_ref()
                .map(|p| p.label.clone())
                .unwrap_or_default(),
            prepared_transcript: s
                .prepared
                .as_ref()
                .map(|p| p.key.transcript.to_vec())
                .unwrap_or_default(),
        }
    }
}

/// Everything one node holds, and its handlers.
pub struct NodeState {
    id: NodeId,
    threshold: Threshold,
    limits: Limits,
    data_dir: PathBuf,
    /// The approved enrolment manifest (re-read when a DKG or resharing starts).
    manifest_path: PathBuf,
    /// The node's TLS certificate (its fingerprint is pinned in the manifest).
    cert_path: PathBuf,
    at_rest: AtRestKey,
    disk: disk::Disk,
    index: RwLock<TokenIndex>,
    secrets: RwLock<NodeSecrets>,
    /// Held by whoever changes the secrets, across the save: writers take turns, readers
    /// never wait on the disk ([`NodeState::change_secrets`]).
    secrets_writer: Mutex<()>,
    /// The key's public status, for `Health`.
    key_status: Mutex<Arc<KeyStatus>>,
    /// Images indexed, for `Health`.
    images: AtomicU64,
    audit: AuditLog,
    /// Ids the audit log holds durably whose store rows are still unsettled: the next store
    /// transaction settles them.
    settled: Mutex<Vec<ImageId>>,
    replay: ReplayGuard,
    dkg: Mutex<Option<DkgRun>>,
    reshare: Mutex<Option<ReshareRun>>,
    masks: Mutex<HashMap<[u8; 32], masks::MaskSession>>,
    /// Queries between their candidate lookup and their distance shares.
    queries: Mutex<HashMap<[u8; 32], search::QuerySession>>,
    budgets: Mutex<HashMap<String, Budget>>,
    /// Candidate requests per caller in the current minute.
    query_budgets: Mutex<HashMap<String, Budget>>,
    /// Bit shares read from the store and checked, up to `limits.bit_share_cache` images. A
    /// stored record never changes (the store refuses other contents under a stored id), so
    /// an entry stays what the store holds.
    bit_shares: RwLock<HashMap<ImageId, HashBitShares>>,
}

impl std::fmt::Debug for NodeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeState")
            .field("id", &self.id)
            .field("threshold", &self.threshold)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

/// Most tokens of a record stored by an earlier build, which allowed 1,024: such a record is
/// still indexed at start.
const MAX_STORED_TOKENS: usize = 1024;

/// The tokens of a stored record (new records hold at most [`MAX_TOKENS`], checked when they
/// arrive).
fn tokens_of_stored(bytes: &[u8]) -> Result<Vec<Token>, NodeError> {
    let max = MAX_STORED_TOKENS;
    if !bytes.len().is_multiple_of(32) {
        return Err(invalid(format!(
            "tokens must be 32 bytes each, got {} bytes",
            bytes.len()
        )));
    }
    if bytes.len() / 32 > max {
        return Err(invalid(format!("more than {max} tokens")));
    }
    Ok(bytes
        .chunks_exact(32)
        .filter_map(|c| <[u8; 32]>::try_from(c).ok())
        .collect())
}

impl NodeState {
    /// Opens the node of `config`: its data folder (created if needed), its secrets
    /// (generated and sealed on first start), its store, its index (rebuilt from the store)
    /// and its audit log (chain verified).
    ///
    /// # Errors
    /// [`NodeError::Secrets`] for a missing or wrong at-rest key or a damaged secrets file,
    /// [`NodeError::Audit`] for a broken audit chain, [`NodeError::Store`]/[`NodeError::Corrupt`].
    pub fn open(config: &LoadedNodeConfig) -> Result<NodeState, NodeError> {
        crate::failpoint::hit("start", config.id);
        let raw = &config.raw;
        let dir = raw.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|source| NodeError::Io {
            path: dir.clone(),
            source,
        })?;
        let at_rest = AtRestKey::load(raw.key_file.as_deref(), raw.key_env.as_deref())?;
        let Some(secrets) = NodeSecrets::open(&dir, config.id, &at_rest)? else {
            return Err(NodeError::NotReady(format!(
                "{}: node {} has no identity keys: run `dealer-free-sis node init` in its folder \
                 and have its record enrolled",
                crate::secrets::secrets_path(&dir).display(),
                config.id
            )));
        };
        enrolment::load_own(
            &raw.manifest,
            config.id,
            config.threshold,
            &secrets.keys.public(),
            &raw.tls.cert,
        )?;
        if let Some(c) = secrets
            .cluster
            .as_ref()
            .into_iter()
            .chain(secrets.prepared.as_ref().map(|p| &p.key))
            .find(|c| c.threshold != config.threshold)
        {
            return Err(invalid(format!(
                "the config says t = {} of n = {}, the key share is for t = {} of n = {}",
                config.threshold.t(),
                config.threshold.n(),
                c.threshold.t(),
                c.threshold.n()
            )));
        }
        let disk = disk::Disk::open(
            &dir,
            secrets.mac_key.clone(),
            raw.limits.min_free_bytes,
            config.id,
        )?;
        let store = disk.store()?;
        let mut index = TokenIndex::new();
        let mut unindexed: Vec<(ImageId, String)> = Vec::new();
        let mut after = None;
        loop {
            let page = store.list(after, 4096)?;
            for id in &page.ids {
                // A record whose tokens cannot be indexed is left out of the index (and
                // logged), never a reason not to start: its share is still served, and a
                // repair rebuilds it.
                let meta = match store.get_meta(*id) {
                    Ok(m) => m.unwrap_or_default(),
                    Err(e) if e.is_device_failure() => return Err(e.into()),
                    Err(e) => {
                        unindexed.push((*id, e.to_string()));
                        continue;
                    }
                };
                let indexed = tokens_of_stored(&meta).and_then(|tokens| {
                    index
                        .insert(*id, &tokens)
                        .map_err(|e| invalid(e.to_string()))
                });
                if let Err(e) = indexed {
                    unindexed.push((*id, e.to_string()));
                }
            }
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        // Records committed but maybe never logged (a crash between the store's commit and
        // its audit line) are the store's unsettled ids; those the open audit file does not
        // log are logged now, before anything else. A log never closed is the whole history:
        // then every stored record is compared with it (which also finds records an earlier
        // build, without the unsettled table, left unlogged).
        let unsettled = store.unsettled()?;
        let mut logged: BTreeSet<u64> = BTreeSet::new();
        let mut whole_history = None;
        let wanted: BTreeSet<u64> = unsettled.iter().map(|id| id.0).collect();
        let audit = AuditLog::open_with(
            &dir.join("audit.log"),
            raw.limits.audit_segment_bytes,
            |event| {
                let whole = *whole_history.get_or_insert_with(|| !event.starts_with("checkpoint "));
                logged.extend(records::logged_ids(event).filter(|id| whole || wanted.contains(id)));
            },
        )?;
        let unlogged: Vec<u64> = if whole_history.unwrap_or(true) {
            index
                .ids()
                .map(|id| id.0)
                .filter(|id| !logged.contains(id))
                .collect()
        } else {
            wanted
                .iter()
                .copied()
                .filter(|id| index.contains(ImageId(*id)) && !logged.contains(id))
                .collect()
        };
        drop(logged);
        if let Some((bytes, hash)) = audit.dropped_tail() {
            audit.append(
                &format!(
                    "audit-tail-dropped bytes={bytes} sha256={} kept=audit.log.torn",
                    crate::hex(&hash)
                ),
                true,
            )?;
        }
        if !unlogged.is_empty() {
            audit.append(&records::recovered_line(&unlogged), true)?;
        }
        // Every unsettled id is logged now: the next store settles them in its transaction.
        for (id, why) in &unindexed {
            tracing::warn!(image = %id, reason = %why, "a stored record left out of the index");
            audit.append(&format!("index-skip id={:016x} reason={why}", id.0), false)?;
        }
        audit.append(
            &format!(
                "start node={} images={}{}",
                config.id,
                index.len(),
                secrets.prepared.as_ref().map_or(String::new(), |p| format!(
                    " prepared={}",
                    crate::hex(&p.key.transcript)
                ))
            ),
            true,
        )?;
        let key_status = Mutex::new(Arc::new(KeyStatus::of(&secrets)));
        let images = AtomicU64::new(index.len() as u64);
        Ok(NodeState {
            id: config.id,
            threshold: config.threshold,
            limits: raw.limits,
            data_dir: dir,
            manifest_path: raw.manifest.clone(),
            cert_path: raw.tls.cert.clone(),
            at_rest,
            disk,
            index: RwLock::new(index),
            secrets: RwLock::new(secrets),
            secrets_writer: Mutex::new(()),
            key_status,
            images,
            audit,
            settled: Mutex::new(unsettled),
            replay: ReplayGuard::new(
                raw.limits.replay_window_s * 1000,
                unix_ms(),
                raw.limits.max_replay_ids,
            ),
            dkg: Mutex::new(None),
            reshare: Mutex::new(None),
            masks: Mutex::new(HashMap::new()),
            queries: Mutex::new(HashMap::new()),
            query_budgets: Mutex::new(HashMap::new()),
            budgets: Mutex::new(HashMap::new()),
            bit_shares: RwLock::new(HashMap::new()),
        })
    }

    /// Refuses a request of `caller` for `method` whose budget this minute is spent, before
    /// its body is read (the handler charges the request itself once it is decoded).
    ///
    /// # Errors
    /// [`NodeError::RateLimited`].
    pub fn before_body(
        &self,
        caller: &str,
        method: crate::access::Method,
    ) -> Result<(), NodeError> {
        use crate::access::Method;
        let (budgets, limit, what) = match method {
            Method::EvaluateTokens => (
                &self.budgets,
                self.limits.token_images_per_minute,
                "token evaluations (token_images_per_minute)",
            ),
            Method::Candidates => (
                &self.query_budgets,
                self.limits.queries_per_minute,
                "queries (queries_per_minute)",
            ),
            _ => return Ok(()),
        };
        if spent(budgets, caller, limit) {
            return Err(NodeError::RateLimited(format!(
                "{caller} has used its {limit} {what} of this minute on node {}",
                self.id
            )));
        }
        Ok(())
    }

    /// The node's limits.
    #[must_use]
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The node's id.
    #[must_use]
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Mask sessions held and queries open, for the node's metrics (each map's lock is held
    /// only to count).
    #[must_use]
    pub fn open_sessions(&self) -> (usize, usize) {
        let masks = self.masks.lock().map_or(0, |m| m.len());
        let queries = self.queries.lock().map_or(0, |q| q.len());
        (masks, queries)
    }

    /// The audit log's entries on disk, for the node's metrics.
    #[must_use]
    pub fn audit_entries(&self) -> u64 {
        self.audit.synced_head().entries
    }

    /// The node's store.
    ///
    /// # Errors
    /// [`NodeError::Unavailable`] while a failed write keeps it out of service.
    pub fn store(&self) -> Result<Arc<ShareStore>, NodeError> {
        self.disk.store()
    }

    /// Appends `event` to the audit log (durably with `sync`); a failed write marks the node
    /// unhealthy until a later write succeeds.
    ///
    /// # Errors
    /// [`NodeError::Audit`].
    fn log(&self, event: &str, sync: bool) -> Result<(), NodeError> {
        match self.audit.append(event, sync) {
            Ok(_) => {
                if sync {
                    self.disk.wrote(disk::Part::Audit);
                }
                Ok(())
            }
            Err(e) => {
                self.disk.set_fault(
                    disk::Part::Audit,
                    format!("a write of the audit log failed: {e}"),
                );
                Err(e.into())
            }
        }
    }

    /// Accepts `caller`'s request id and clock, or refuses them.
    fn fresh(&self, caller: &str, meta: Option<&proto::RequestMeta>) -> Result<(), NodeError> {
        let meta = meta.ok_or(NodeError::Replay(ReplayError::Missing))?;
        self.replay
            .check(caller, &meta.request_id, meta.unix_ms, unix_ms())
            .map_err(NodeError::from)
    }

    /// Forgets `caller`'s request of `meta` (it failed for a passing reason and was not done:
    /// a retry under the same id runs it).
    pub fn forget_request(&self, caller: &str, meta: &proto::RequestMeta) {
        self.replay.forget(caller, &meta.request_id, meta.unix_ms);
    }

    fn read_secrets(&self) -> Result<std::sync::RwLockReadGuard<'_, NodeSecrets>, NodeError> {
        self.secrets
            .read()
            .map_err(|_| NodeError::NotReady("the node's key lock is poisoned".into()))
    }

    fn cluster_key(&self) -> Result<ClusterKey, NodeError> {
        self.read_secrets()?.cluster.clone().ok_or_else(|| {
            NodeError::NotReady(format!(
                "node {} holds no key share yet: run the DKG (cluster up)",
                self.id
            ))
        })
    }

    /// Liveness and what the node holds. Reads only a snapshot and counters (no lock held
    /// by any I/O), so it answers at once on an async worker whatever the handlers do.
    #[must_use]
    pub fn health(&self) -> proto::HealthReply {
        let key = self
            .key_status
            .lock()
            .map(|k| Arc::clone(&k))
            .unwrap_or_default();
        proto::HealthReply {
            transcript: key.transcript.clone(),
            prepared_label: key.prepared_label.clone(),
            prepared_transcript: key.prepared_transcript.clone(),
            node_id: u32::from(self.id.get()),
            t: u32::from(self.threshold.t()),
            n: u32::from(self.threshold.n()),
            has_key: key.has_key,
            images: self.images.load(Ordering::Relaxed),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            problem: self.disk.problem().unwrap_or_default(),
        }
    }

    /// Changes the node's secrets: `change` edits a copy, the copy is sealed and saved (the
    /// file and its folder fsynced) and only then swapped in. So the node never serves a key
    /// that is not on disk, and a save that fails before its rename leaves memory and disk
    /// as they were (the step can be sent again; should the folder's fsync after the rename
    /// fail, the new file is on disk and the node serves it from its next start). Writers
    /// take turns; readers never wait on the disk.
    ///
    /// # Errors
    /// What `change` returns; [`NodeError::Secrets`] if the save fails.
    fn change_secrets<T>(
        &self,
        change: impl FnOnce(&mut NodeSecrets) -> Result<T, NodeError>,
    ) -> Result<T, NodeError> {
        let _writer = self
            .secrets_writer
            .lock()
            .map_err(|_| NodeError::NotReady("the node's key lock is poisoned".into()))?;
        let mut next = self.read_secrets()?.clone();
        let out = change(&mut next)?;
        if crate::failpoint::active("secrets-save-fails", self.id) {
            return Err(NodeError::Secrets(SecretsError::Io {
                path: crate::secrets::secrets_path(&self.data_dir),
                source: std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    "no space left on device (failpoint)",
                ),
            }));
        }
        next.save(&self.data_dir, &self.at_rest, &mut rand::rng())?;
        crate::failpoint::hit("secrets-saved", self.id);
        let status = Arc::new(KeyStatus::of(&next));
        *self
            .secrets
            .write()
            .map_err(|_| NodeError::NotReady("the node's key lock is poisoned".into()))? = next;
        if let Ok(mut k) = self.key_status.lock() {
            *k = status;
        }
        Ok(out)
    }

    /// The node's public identity keys.
    ///
    /// # Errors
    /// [`NodeError::Replay`].
    pub fn identity(
        &self,
        caller: &str,
        req: &proto::IdentityRequest,
    ) -> Result<proto::IdentityReply, NodeError> {
        self.fresh(caller, req.meta.as_ref())?;
        Ok(proto::IdentityReply {
            node_id: u32::from(self.id.get()),
            public_keys: self.read_secrets()?.keys.public().to_bytes().to_vec(),
        })
    }

    /// The audit log's head.
    ///
    /// # Errors
    /// [`NodeError::Replay`].
    pub fn audit_head(
        &self,
        caller: &str,
        req: &proto::AuditHeadRequest,
    ) -> Result<proto::AuditHeadReply, NodeError> {
        self.fresh(caller, req.meta.as_ref())?;
        // Only entries on disk are reported.
        let head = self.audit.sync()?;
        Ok(proto::AuditHeadReply {
            entries: head.entries,
            head: head.head.to_vec(),
        })
    }
}

/// A DKG's or resharing's session label: 1 to 256 bytes.
fn check_label(label: &[u8]) -> Result<(), NodeError> {
    if label.is_empty() || label.len() > 256 {
        return Err(invalid("the session label must be 1 to 256 bytes"));
    }
    Ok(())
}

/// Node ids and public keys from a relayed list (each id once, at most 255).
fn participants_of(
    list: &[proto::Participant],
    what: &str,
) -> Result<BTreeMap<NodeId, NodePublicKeys>, NodeError> {
    if list.len() > usize::from(u8::MAX) {
        return Err(invalid(format!("more than 255 {what}s")));
    }
    let mut out = BTreeMap::new();
    for p in list {
        let id = node_id(p.node_id, what)?;
        let bytes: [u8; 64] = p
            .public_keys
            .as_slice()
            .try_into()
            .map_err(|_| invalid(format!("{what} {id}: public keys must be 64 bytes")))?;
        let keys =
            NodePublicKeys::from_bytes(&bytes).map_err(|e| invalid(format!("{what} {id}: {e}")))?;
        if out.insert(id, keys).is_some() {
            return Err(invalid(format!("{what} {id} is listed twice")));
        }
    }
    Ok(out)
}

/// The public outcome of a key (the reply of the DKG's and resharing's last step).
fn key_result(key: &ClusterKey, qualified: &BTreeSet<NodeId>) -> proto::DkgResult {
    proto::DkgResult {
        group_public_key: key.group_public_key.compress().to_bytes().to_vec(),
        verification_shares: key
            .verification_shares
            .iter()
            .map(|(id, p)| proto::VerificationShare {
                node_id: u32::from(id.get()),
                point: p.compress().to_bytes().to_vec(),
            })
            .collect(),
        qualified: qualified.iter().map(|q| u32::from(q.get())).collect(),
        transcript: key.transcript.to_vec(),
    }
}

fn reshare_outbox(out: &[ReshareOutgoing]) -> Vec<proto::DkgEnvelope> {
    envelopes(out.iter().map(|o| (o.from, o.to, o.bytes.as_slice())))
}

fn outbox(out: &[dealer_free::dkg::Outgoing]) -> Vec<proto::DkgEnvelope> {
    envelopes(out.iter().map(|o| (o.from, o.to, o.bytes.as_slice())))
}

/// The relayed envelopes of `inbox` addressed to node `me` (to it, or to all) whose sender is
/// a valid node id, as `(sender, message)`; the others are skipped.
fn addressed_to(inbox: &[proto::DkgEnvelope], me: NodeId) -> impl Iterator<Item = (NodeId, &[u8])> {
    inbox
        .iter()
        .filter(move |m| m.to == 0 || m.to == u32::from(me.get()))
        .filter_map(|m| Some((node_id(m.from, "sender").ok()?, m.message.as_slice())))
}

/// Relayed envelopes of `(sender, recipient, message)`; a broadcast is addressed to 0.
fn envelopes<'a>(
    out: impl Iterator<Item = (NodeId, Recipient, &'a [u8])>,
) -> Vec<proto::DkgEnvelope> {
    out.map(|(from, to, message)| proto::DkgEnvelope {
        from: u32::from(from.get()),
        to: match to {
            Recipient::All => 0,
            Recipient::Node(n) => u32::from(n.get()),
        },
        message: message.to_vec(),
    })
    .collect()
}

/// Whether `caller`'s budget in `budgets` is spent for the current minute.
fn spent(budgets: &Mutex<HashMap<String, Budget>>, caller: &str, limit: u64) -> bool {
    let now = unix_ms();
    budgets.lock().is_ok_and(|b| {
        b.get(caller)
            .is_some_and(|budget| budget.current(now) && (budget.refused || budget.used >= limit))
    })
}

/// Charges `units` to `caller` in `budgets` for the current minute (a minute's window from its
/// first charge); past `limit` nothing is charged and the error says `message(would be)`.
fn charge_minute(
    budgets: &Mutex<HashMap<String, Budget>>,
    caller: &str,
    units: u64,
    limit: u64,
    message: impl FnOnce(u64) -> String,
) -> Result<(), NodeError> {
    let now = unix_ms();
    let mut budgets = budgets
        .lock()
        .map_err(|_| NodeError::RateLimited("the budget lock is poisoned".into()))?;
    let budget = budgets.entry(caller.to_owned()).or_insert(Budget {
        window_start_ms: now,
        used: 0,
        refused: false,
    });
    if !budget.current(now) {
        budget.window_start_ms = now;
        budget.used = 0;
        budget.refused = false;
    }
    let would = budget.used.saturating_add(units);
    if would > limit {
        budget.refused = true;
        return Err(NodeError::RateLimited(message(would)));
    }
    budget.used = would;
    Ok(())
}

/// The bytes a node signs for a relayed message: a domain label and the message.
#[must_use]
pub fn signed(domain: &[u8], message: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(domain.len() + message.len());
    v.extend_from_slice(domain);
    v.extend_from_slice(message);
    v
}
