//! A node's state and the handler of every request, with no gRPC in sight: the server
//! ([`crate::server`]) decodes a call, checks who is calling, and hands it here.
//!
//! What a node holds: its share store (redb, HMAC-tagged records, one transaction per
//! store request), its token index (rebuilt at start from the band tokens kept in each
//! record's metadata, so index and records never disagree), its secrets sealed at rest
//! ([`crate::secrets`]), its audit log ([`crate::audit`]) and the replay guard
//! ([`crate::replay`]). Protocol logic is the `dealer-free` crate's: [`DkgSession`] for
//! the key generation, [`tokens::respond`] for the threshold VOPRF, the checked mask
//! dealing and [`DistanceRequest::respond`] for the secure ranking.
//!
//! Every handler checks its input before it changes anything: a malformed or oversized
//! request is an [`NodeError::Invalid`] and leaves the store, the index, the key and the
//! log as they were.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use dealer_free::dkg::{DkgSession, Recipient};
use dealer_free::identity::{NodePublicKeys, Signature, verify_batch_vartime};
use dealer_free::mpc::HashBitShares;
use dealer_free::mpc::masks::MaskPool;
use dealer_free::mpc::masks::check::{
    MaskCheck, MaskCommitment, MaskDeal, Verdict, deal_checked, judge,
};
use dealer_free::mpc::messages::{CandidateRequest, CandidateResponse, DistanceRequest};
use dealer_free::oprf::tokens::{self, TokenRequest};
use dealer_free::reshare::{ReshareOutgoing, ReshareSession};
use phr_sis::share::Share;
use phr_sis::store::{ImageRecord, ShareStore, StoreError};
use phr_sis::token_index::Token;
use phr_sis::{ImageId, NodeId, Threshold, TokenIndex};
use zeroize::Zeroizing;

use crate::audit::{AuditError, AuditLog};
use crate::config::{Limits, LoadedNodeConfig};
use crate::manifest::{ManifestError, MembershipError};
use crate::proto;
use crate::replay::{ReplayError, ReplayGuard, unix_ms};
use crate::secrets::{AtRestKey, ClusterKey, NodeSecrets, SecretsError};

mod dkg;
mod enrolment;
mod receivers;
mod reshare;

/// Most band tokens in one record or one candidate request.
pub const MAX_TOKENS: usize = 1024;
/// Mask sessions a node keeps open at once.
pub const MAX_MASK_SESSIONS: usize = 256;
/// How long a mask session is kept until it is judged.
pub const MASK_SESSION_TTL: Duration = Duration::from_secs(120);
/// How long a judged mask pool serves queries, from its dealing.
pub const MASK_POOL_TTL: Duration = Duration::from_secs(600);

const MASK_DEAL_LABEL: &[u8] = b"dealer-free-sis/node/mask-deal/v1";
const COMMITMENT_DOMAIN: &[u8] = b"dealer-free-sis/node/mask-commitment/v1";
const CHECK_DOMAIN: &[u8] = b"dealer-free-sis/node/mask-check/v1";

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

/// One mask session: a checked dealing among one server set, then the pool it yields.
struct MaskSession {
    created: Instant,
    /// The client that opened it: only it goes on with it.
    owner: String,
    servers: Vec<NodeId>,
    count: u32,
    phase: MaskPhase,
}

/// Where a mask session is.
enum MaskPhase {
    /// Dealt: this node's own commitment and its deal to itself.
    Dealt(Dealing),
    /// Checked: every dealer's commitment and the deals this node received.
    Checked(Dealing),
    /// Judged: the accepted dealers' masks, each handed out once.
    Ready(MaskPool),
}

/// The commitments and deals of a mask session before it is judged.
struct Dealing {
    commitments: BTreeMap<NodeId, MaskCommitment>,
    deals: Vec<MaskDeal>,
}

impl MaskSession {
    fn expired(&self) -> bool {
        let ttl = match self.phase {
            MaskPhase::Ready(_) => MASK_POOL_TTL,
            _ => MASK_SESSION_TTL,
        };
        self.created.elapsed() >= ttl
    }
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
    store: ShareStore,
    index: RwLock<TokenIndex>,
    secrets: RwLock<NodeSecrets>,
    audit: AuditLog,
    replay: ReplayGuard,
    dkg: Mutex<Option<DkgRun>>,
    reshare: Mutex<Option<ReshareRun>>,
    masks: Mutex<HashMap<[u8; 32], MaskSession>>,
    budgets: Mutex<HashMap<String, Budget>>,
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

fn tokens_of(bytes: &[u8]) -> Result<Vec<Token>, NodeError> {
    if !bytes.len().is_multiple_of(32) {
        return Err(invalid(format!(
            "tokens must be 32 bytes each, got {} bytes",
            bytes.len()
        )));
    }
    if bytes.len() / 32 > MAX_TOKENS {
        return Err(invalid(format!("more than {MAX_TOKENS} tokens")));
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
        let store = ShareStore::open(dir.join("shares.redb"), secrets.mac_key.clone())?;
        let mut index = TokenIndex::new();
        let mut after = None;
        loop {
            let page = store.list(after, 4096)?;
            for id in &page.ids {
                let meta = store.get_meta(*id)?.unwrap_or_default();
                let tokens = tokens_of(&meta)
                    .map_err(|e| NodeError::Corrupt(format!("the tokens of image {id}: {e}")))?;
                index
                    .insert(*id, &tokens)
                    .map_err(|e| NodeError::Corrupt(format!("image {id}: {e}")))?;
            }
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        let audit = AuditLog::open(&dir.join("audit.log"))?;
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
        Ok(NodeState {
            id: config.id,
            threshold: config.threshold,
            limits: raw.limits,
            data_dir: dir,
            manifest_path: raw.manifest.clone(),
            cert_path: raw.tls.cert.clone(),
            at_rest,
            store,
            index: RwLock::new(index),
            secrets: RwLock::new(secrets),
            audit,
            replay: ReplayGuard::new(raw.limits.replay_window_s * 1000, unix_ms()),
            dkg: Mutex::new(None),
            reshare: Mutex::new(None),
            masks: Mutex::new(HashMap::new()),
            budgets: Mutex::new(HashMap::new()),
            bit_shares: RwLock::new(HashMap::new()),
        })
    }

    /// The node's id.
    #[must_use]
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The node's store.
    #[must_use]
    pub fn store(&self) -> &ShareStore {
        &self.store
    }

    /// Accepts the request's id and clock, or refuses it.
    fn fresh(&self, meta: Option<&proto::RequestMeta>) -> Result<(), NodeError> {
        let meta = meta.ok_or(NodeError::Replay(ReplayError::Missing))?;
        self.replay
            .check(&meta.request_id, meta.unix_ms, unix_ms())
            .map_err(NodeError::from)
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

    /// Liveness and what the node holds.
    #[must_use]
    pub fn health(&self) -> proto::HealthReply {
        let (has_key, transcript, prepared_label, prepared_transcript) = self
            .read_secrets()
            .map(|s| {
                (
                    s.cluster.is_some(),
                    s.cluster
                        .as_ref()
                        .map(|c| c.transcript.to_vec())
                        .unwrap_or_default(),
                    s.prepared
                        .as_ref()
                        .map(|p| p.label.clone())
                        .unwrap_or_default(),
                    s.prepared
                        .as_ref()
                        .map(|p| p.key.transcript.to_vec())
                        .unwrap_or_default(),
                )
            })
            .unwrap_or_default();
        proto::HealthReply {
            transcript,
            prepared_label,
            prepared_transcript,
            node_id: u32::from(self.id.get()),
            t: u32::from(self.threshold.t()),
            n: u32::from(self.threshold.n()),
            has_key,
            images: self.index.read().map_or(0, |i| i.len() as u64),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }

    /// The node's public identity keys.
    ///
    /// # Errors
    /// [`NodeError::Replay`].
    pub fn identity(
        &self,
        req: &proto::IdentityRequest,
    ) -> Result<proto::IdentityReply, NodeError> {
        self.fresh(req.meta.as_ref())?;
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
        req: &proto::AuditHeadRequest,
    ) -> Result<proto::AuditHeadReply, NodeError> {
        self.fresh(req.meta.as_ref())?;
        let head = self.audit.head();
        Ok(proto::AuditHeadReply {
            entries: head.entries,
            head: head.head.to_vec(),
        })
    }

    /// Full records (share, bit shares, band tokens) by id or as a page in id order, for
    /// repairing a replaced node. A record that fails its integrity check is left out (and
    /// logged), so the repair takes that image from the other nodes.
    ///
    /// # Errors
    /// [`NodeError::NotReady`] before the DKG, [`NodeError::Invalid`] for more ids or a
    /// larger page than `max_batch`.
    pub fn export_records(
        &self,
        req: &proto::ExportRecordsRequest,
    ) -> Result<proto::ExportRecordsReply, NodeError> {
        self.fresh(req.meta.as_ref())?;
        self.cluster_key()?;
        let max = self.limits.max_batch;
        let (ids, next) = if req.ids.is_empty() {
            let limit = usize::try_from(req.limit).unwrap_or(usize::MAX);
            if limit == 0 || limit > max {
                return Err(invalid(format!(
                    "a page holds 1 to {max} records, {limit} asked"
                )));
            }
            let page = self.store.list(req.after.map(ImageId), limit)?;
            (page.ids, page.next.map(|n| n.0))
        } else {
            if req.ids.len() > max {
                return Err(invalid(format!(
                    "at most {max} ids in one request, got {}",
                    req.ids.len()
                )));
            }
            (req.ids.iter().map(|i| ImageId(*i)).collect(), None)
        };
        let mut records = Vec::with_capacity(ids.len());
        let mut damaged = Vec::new();
        for id in ids {
            match self.store.get_image(id) {
                Ok(Some(r)) => records.push(proto::ImageRecord {
                    image_id: id.0,
                    share: r.share,
                    bit_shares: r.bit_shares,
                    tokens: r.meta,
                }),
                Ok(None) => {}
                Err(
                    StoreError::Corrupt { .. }
                    | StoreError::Incomplete { .. }
                    | StoreError::UnknownRecordVersion { .. },
                ) => damaged.push(id),
                Err(e) => return Err(e.into()),
            }
        }
        self.audit.append(
            &format!(
                "export records={} damaged={}",
                records.len(),
                damaged
                    .iter()
                    .map(|i| format!("{:016x}", i.0))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            false,
        )?;
        Ok(proto::ExportRecordsReply { records, next })
    }

    /// Threshold-VOPRF partial evaluation of a token request, charged to `caller`'s budget.
    ///
    /// # Errors
    /// [`NodeError::NotReady`] before the DKG, [`NodeError::Invalid`] for a malformed request,
    /// [`NodeError::RateLimited`] past the caller's budget.
    pub fn evaluate_tokens(
        &self,
        caller: &str,
        req: &proto::EvaluateTokensRequest,
    ) -> Result<proto::EvaluateTokensReply, NodeError> {
        self.fresh(req.meta.as_ref())?;
        let key = self.cluster_key()?;
        let request = TokenRequest::from_bytes(&req.token_request)
            .map_err(|e| invalid(format!("token request: {e}")))?;
        // Charged per image of the default layout's 8 bands: a request with more bands per
        // image costs more evaluations and is charged for them.
        let units = (request.images() * request.bands().div_ceil(8).max(1)) as u64;
        self.charge(caller, units)?;
        let partial = match tokens::respond(&key.key_share, &request, &mut rand::rng())
            .and_then(|p| p.to_bytes())
        {
            Ok(p) => p,
            Err(e) => {
                self.refund(caller, units);
                return Err(invalid(format!("token request: {e}")));
            }
        };
        self.audit.append(
            &format!("tokens caller={caller} images={}", request.images()),
            false,
        )?;
        Ok(proto::EvaluateTokensReply {
            partial_evaluation: partial,
        })
    }

    /// Gives back a charge whose evaluation failed.
    fn refund(&self, caller: &str, units: u64) {
        if let Ok(mut budgets) = self.budgets.lock()
            && let Some(b) = budgets.get_mut(caller)
        {
            b.used = b.used.saturating_sub(units);
        }
    }

    fn charge(&self, caller: &str, images: u64) -> Result<(), NodeError> {
        let now = unix_ms();
        let mut budgets = self
            .budgets
            .lock()
            .map_err(|_| NodeError::RateLimited("the budget lock is poisoned".into()))?;
        let budget = budgets.entry(caller.to_owned()).or_insert(Budget {
            window_start_ms: now,
            used: 0,
        });
        if now.saturating_sub(budget.window_start_ms) >= 60_000 {
            budget.window_start_ms = now;
            budget.used = 0;
        }
        let limit = self.limits.token_images_per_minute;
        if budget.used.saturating_add(images) > limit {
            return Err(NodeError::RateLimited(format!(
                "{caller} asked for {} token evaluations this minute, the limit is {limit}",
                budget.used.saturating_add(images)
            )));
        }
        budget.used += images;
        Ok(())
    }

    /// Stores records atomically (all or none) and indexes their tokens. A record already
    /// stored with the same bytes is acknowledged again (a retried request); one stored with
    /// other bytes is a conflict.
    ///
    /// # Errors
    /// [`NodeError::Invalid`] for a batch over the limit or a record that is not this node's
    /// (share of another node or image, bad bit shares or tokens); [`NodeError::Conflict`];
    /// [`NodeError::Store`]. Nothing is stored on error.
    pub fn store_records(
        &self,
        req: &proto::StoreRecordsRequest,
    ) -> Result<proto::StoreRecordsReply, NodeError> {
        self.fresh(req.meta.as_ref())?;
        self.cluster_key()?;
        if req.records.is_empty() || req.records.len() > self.limits.max_batch {
            return Err(invalid(format!(
                "a store request holds 1 to {} records, got {}",
                self.limits.max_batch,
                req.records.len()
            )));
        }
        let mut fresh: Vec<(ImageId, ImageRecord, Vec<Token>)> = Vec::new();
        let mut again = Vec::new();
        let mut seen = BTreeSet::new();
        for r in &req.records {
            let id = ImageId(r.image_id);
            if !seen.insert(id) {
                return Err(invalid(format!("image {id} appears twice")));
            }
            let share = Share::from_bytes(&r.share)
                .map_err(|e| invalid(format!("image {id}: share: {e}")))?;
            if share.header.image_id != id || share.header.index != self.id {
                return Err(invalid(format!(
                    "image {id}: the share is node {}'s share of image {}",
                    share.header.index, share.header.image_id
                )));
            }
            if share.header.threshold != self.threshold {
                return Err(invalid(format!(
                    "image {id}: the share is for t = {} of n = {}",
                    share.header.threshold.t(),
                    share.header.threshold.n()
                )));
            }
            if HashBitShares::from_bytes(&r.bit_shares).is_none() {
                return Err(invalid(format!("image {id}: malformed bit shares")));
            }
            let tokens = tokens_of(&r.tokens).map_err(|e| invalid(format!("image {id}: {e}")))?;
            let record = ImageRecord {
                share: r.share.clone(),
                bit_shares: r.bit_shares.clone(),
                meta: r.tokens.clone(),
            };
            match self.store.get_image(id) {
                Ok(Some(existing)) if existing == record => again.push(id),
                Ok(Some(_)) => {
                    return Err(NodeError::Conflict(format!(
                        "image {id} is stored with other contents"
                    )));
                }
                Ok(None) => fresh.push((id, record, tokens)),
                Err(e) => return Err(e.into()),
            }
        }
        let batch: Vec<(ImageId, &ImageRecord)> = fresh.iter().map(|(id, r, _)| (*id, r)).collect();
        if !batch.is_empty() {
            self.store.put_images(&batch)?;
            let mut index = self
                .index
                .write()
                .map_err(|_| NodeError::NotReady("the index lock is poisoned".into()))?;
            for (id, _, tokens) in &fresh {
                if !index.contains(*id) {
                    index
                        .insert(*id, tokens)
                        .map_err(|e| invalid(format!("image {id}: {e}")))?;
                }
            }
        }
        let stored: Vec<u64> = fresh
            .iter()
            .map(|(id, _, _)| id.0)
            .chain(again.iter().map(|i| i.0))
            .collect();
        self.audit.append(
            &format!(
                "store new={} again={} ids={}",
                fresh.len(),
                again.len(),
                stored
                    .iter()
                    .map(|i| format!("{i:016x}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            true,
        )?;
        Ok(proto::StoreRecordsReply { stored })
    }

    /// This node's share of one image.
    ///
    /// # Errors
    /// [`NodeError::NotFound`], [`NodeError::Corrupt`] if the stored share fails its
    /// integrity check (it is never returned then).
    pub fn get_share(
        &self,
        req: &proto::GetShareRequest,
    ) -> Result<proto::GetShareReply, NodeError> {
        self.fresh(req.meta.as_ref())?;
        let id = ImageId(req.image_id);
        let share = self
            .store
            .get_share(id)?
            .ok_or_else(|| NodeError::NotFound(format!("node {} holds no image {id}", self.id)))?;
        self.audit.append(&format!("get id={:016x}", id.0), false)?;
        Ok(proto::GetShareReply { share })
    }

    /// Candidate lookup: the images sharing at least `min_band_votes` band tokens with the query.
    ///
    /// # Errors
    /// [`NodeError::Invalid`] for a malformed request or too many tokens.
    pub fn candidates(
        &self,
        req: &proto::CandidatesRequest,
    ) -> Result<proto::CandidatesReply, NodeError> {
        self.fresh(req.meta.as_ref())?;
        let request = CandidateRequest::from_bytes(&req.candidate_request)
            .map_err(|e| invalid(format!("candidate request: {e}")))?;
        if request.tokens.len() > MAX_TOKENS {
            return Err(invalid(format!("more than {MAX_TOKENS} tokens")));
        }
        let candidates = self
            .index
            .read()
            .map_err(|_| NodeError::NotReady("the index lock is poisoned".into()))?
            .candidates(&request.tokens, request.min_band_votes);
        let found = candidates.len();
        if found > self.limits.max_candidates {
            return Err(invalid(format!(
                "{found} candidates, more than the {} one ranking may hold: ask for more \
                 band votes",
                self.limits.max_candidates
            )));
        }
        let response = CandidateResponse {
            session: request.session,
            node: self.id,
            candidates,
        }
        .to_bytes()
        .map_err(|e| invalid(e.to_string()))?;
        self.audit.append(
            &format!(
                "candidates session={} found={found}",
                crate::hex(&request.session)
            ),
            false,
        )?;
        Ok(proto::CandidatesReply {
            candidate_response: response,
        })
    }

    fn participant(&self, key: &ClusterKey, id: NodeId) -> Result<NodePublicKeys, NodeError> {
        key.participants
            .get(&id)
            .copied()
            .ok_or_else(|| invalid(format!("node {id} is no participant of this cluster")))
    }

    fn servers_of(&self, bytes: &[u8]) -> Result<Vec<NodeId>, NodeError> {
        let mut servers: Vec<NodeId> = bytes
            .iter()
            .map(|b| {
                NodeId::new(*b)
                    .ok()
                    .filter(|id| id.get() <= self.threshold.n())
                    .ok_or_else(|| {
                        invalid(format!("server {b} is not in 1 to {}", self.threshold.n()))
                    })
            })
            .collect::<Result<_, _>>()?;
        servers.sort_unstable();
        servers.dedup();
        if servers.len() != bytes.len() {
            return Err(invalid("a server is listed twice"));
        }
        if servers.len() < usize::from(self.threshold.search_quorum()) {
            return Err(invalid(format!(
                "secure ranking needs 2t − 1 = {} servers, {} given",
                self.threshold.search_quorum(),
                servers.len()
            )));
        }
        if !servers.contains(&self.id) {
            return Err(invalid(format!(
                "node {} is not among the servers",
                self.id
            )));
        }
        Ok(servers)
    }

    /// The checked bit shares of those `ids` this node holds: from memory, the others read
    /// from the store in one transaction (and kept in memory while there is room).
    ///
    /// # Errors
    /// [`NodeError::Corrupt`] for stored bit shares that fail their check or do not decode.
    fn bit_shares_of(
        &self,
        ids: &[ImageId],
    ) -> Result<BTreeMap<ImageId, HashBitShares>, NodeError> {
        let mut found = BTreeMap::new();
        let mut missing = Vec::new();
        {
            let cache = self
                .bit_shares
                .read()
                .map_err(|_| NodeError::NotReady("the bit-share cache lock is poisoned".into()))?;
            for id in ids {
                match cache.get(id) {
                    Some(shares) => {
                        found.insert(*id, shares.clone());
                    }
                    None => missing.push(*id),
                }
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let read = self.store.get_bit_shares_many(&missing)?;
        let mut fresh = Vec::new();
        for (id, bytes) in missing.iter().zip(read) {
            if let Some(bytes) = bytes {
                let shares = HashBitShares::from_bytes(&bytes)
                    .ok_or_else(|| NodeError::Corrupt(format!("the bit shares of image {id}")))?;
                fresh.push((*id, shares.clone()));
                found.insert(*id, shares);
            }
        }
        if let Ok(mut cache) = self.bit_shares.write() {
            let room = self.limits.bit_share_cache.saturating_sub(cache.len());
            cache.extend(fresh.into_iter().take(room));
        }
        Ok(found)
    }

    /// Whether a mask session `session` may be opened: not dealt already, and room left.
    fn may_open(
        &self,
        sessions: &HashMap<[u8; 32], MaskSession>,
        session: &[u8; 32],
    ) -> Result<(), NodeError> {
        if sessions.contains_key(session) {
            return Err(NodeError::Conflict(
                "this mask session was dealt already".into(),
            ));
        }
        if sessions.len() >= MAX_MASK_SESSIONS {
            return Err(NodeError::RateLimited(format!(
                "{MAX_MASK_SESSIONS} secure rankings are open on node {}",
                self.id
            )));
        }
        Ok(())
    }

    fn mask_sessions(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, HashMap<[u8; 32], MaskSession>>, NodeError> {
        let mut sessions = self
            .masks
            .lock()
            .map_err(|_| NodeError::NotReady("the mask lock is poisoned".into()))?;
        sessions.retain(|_, s| !s.expired());
        Ok(sessions)
    }

    /// Caller `caller`'s session `session`.
    fn own_session<'a>(
        sessions: &'a mut HashMap<[u8; 32], MaskSession>,
        session: &[u8; 32],
        caller: &str,
    ) -> Result<&'a mut MaskSession, NodeError> {
        sessions
            .get_mut(session)
            .filter(|s| s.owner == caller)
            .ok_or_else(|| NodeError::NotReady("no such mask session (expired?)".into()))
    }

    /// Offline phase 1 of the secure ranking: deals this node's zero-sharings for the servers
    /// and `count` masks (one per candidate of the queries the pool will serve); the
    /// commitment is signed, each other server's deal sealed for it (the relaying client
    /// reads neither). The session belongs to `caller`.
    ///
    /// # Errors
    /// [`NodeError::Invalid`] for bad servers, count or session; [`NodeError::Conflict`] for
    /// a session already dealt; [`NodeError::RateLimited`] with too many open sessions.
    pub fn mask_deal(
        &self,
        caller: &str,
        req: &proto::MaskDealRequest,
    ) -> Result<proto::MaskDealReply, NodeError> {
        self.fresh(req.meta.as_ref())?;
        let key = self.cluster_key()?;
        let session = array32(&req.session, "session")?;
        let servers = self.servers_of(&req.servers)?;
        let count = req.count;
        if count == 0 || count as usize > self.limits.max_candidates {
            return Err(invalid(format!(
                "{count} masks, 1 to {} per dealing",
                self.limits.max_candidates
            )));
        }
        // Refused before any work is done (and checked again when the session is kept).
        self.may_open(&*self.mask_sessions()?, &session)?;
        let mut rng = rand::rng();
        let (commitment, deals) = deal_checked(
            session,
            self.id,
            &servers,
            self.threshold.t(),
            count as usize,
            &mut rng,
        )
        .map_err(|e| invalid(e.to_string()))?;
        let secrets = self.read_secrets()?;
        let commitment_bytes = commitment.to_bytes();
        let signature = secrets
            .keys
            .sign(&signed(COMMITMENT_DOMAIN, &commitment_bytes), &mut rng);
        let mut sealed = Vec::with_capacity(deals.len());
        let mut own = Vec::new();
        for deal in deals {
            if deal.recipient() == self.id {
                own.push(deal);
                continue;
            }
            let to = self.participant(&key, deal.recipient())?;
            let plain: Zeroizing<Vec<u8>> = deal.to_bytes();
            sealed.push(proto::SealedDeal {
                dealer: u32::from(self.id.get()),
                recipient: u32::from(deal.recipient().get()),
                sealed: secrets.keys.seal(
                    deal.recipient(),
                    &to.encryption,
                    &session,
                    MASK_DEAL_LABEL,
                    &commitment_bytes,
                    &plain,
                ),
            });
        }
        drop(secrets);
        let mut sessions = self.mask_sessions()?;
        self.may_open(&sessions, &session)?;
        let mut commitments = BTreeMap::new();
        commitments.insert(self.id, commitment);
        sessions.insert(
            session,
            MaskSession {
                created: Instant::now(),
                owner: caller.to_owned(),
                servers,
                count,
                phase: MaskPhase::Dealt(Dealing {
                    commitments,
                    deals: own,
                }),
            },
        );
        Ok(proto::MaskDealReply {
            commitment: Some(proto::SignedCommitment {
                dealer: u32::from(self.id.get()),
                commitment: commitment_bytes,
                signature: signature.to_bytes().to_vec(),
            }),
            deals: sealed,
        })
    }

    /// Offline phase 2: checks every deal addressed to this node against its dealer's signed
    /// commitment and returns the signed check values.
    ///
    /// # Errors
    /// [`NodeError::NotReady`] for an unknown session, [`NodeError::Invalid`] for a bad
    /// signature, a commitment of another session, or a deal that does not open.
    pub fn mask_check(
        &self,
        caller: &str,
        req: &proto::MaskCheckRequest,
    ) -> Result<proto::MaskCheckReply, NodeError> {
        self.fresh(req.meta.as_ref())?;
        let key = self.cluster_key()?;
        let session = array32(&req.session, "session")?;
        // The session is read here and written back at the end: the work between (opening and
        // verifying the deals) runs without the lock, so other sessions go on meanwhile.
        let (servers, count, own_commitments, own_deals) = {
            let mut sessions = self.mask_sessions()?;
            let state = Self::own_session(&mut sessions, &session, caller)?;
            let MaskPhase::Dealt(dealt) = &state.phase else {
                return Err(NodeError::Conflict(
                    "this mask session was checked already".into(),
                ));
            };
            (
                state.servers.clone(),
                state.count,
                dealt.commitments.clone(),
                dealt.deals.clone(),
            )
        };
        if req.commitments.len() > servers.len() || req.deals.len() > servers.len() {
            return Err(invalid(format!(
                "{} commitments and {} deals for {} servers",
                req.commitments.len(),
                req.deals.len(),
                servers.len()
            )));
        }
        let mut commitments = own_commitments;
        for c in &req.commitments {
            let dealer = node_id(c.dealer, "dealer")?;
            if !servers.contains(&dealer) {
                return Err(invalid(format!(
                    "dealer {dealer} is not a server of this ranking"
                )));
            }
            let keys = self.participant(&key, dealer)?;
            let sig = signature(&c.signature)?;
            if !keys
                .signing
                .verify(&signed(COMMITMENT_DOMAIN, &c.commitment), &sig)
            {
                return Err(invalid(format!(
                    "dealer {dealer}'s commitment is not signed by it"
                )));
            }
            let commitment = MaskCommitment::from_bytes(&c.commitment)
                .map_err(|e| invalid(format!("dealer {dealer}'s commitment: {e}")))?;
            if commitment.session() != session
                || commitment.dealer() != dealer
                || commitment.servers() != servers.as_slice()
                || commitment.count() != count
            {
                return Err(invalid(format!(
                    "dealer {dealer}'s commitment is for another session, dealer, servers or count"
                )));
            }
            if dealer == self.id {
                if commitments.get(&dealer) != Some(&commitment) {
                    return Err(invalid("this node's own commitment was changed"));
                }
                continue;
            }
            commitments.insert(dealer, commitment);
        }
        let secrets = self.read_secrets()?;
        let mut deals = own_deals;
        for d in &req.deals {
            let dealer = node_id(d.dealer, "dealer")?;
            if d.recipient != u32::from(self.id.get()) || dealer == self.id {
                continue;
            }
            let Some(commitment) = commitments.get(&dealer) else {
                return Err(invalid(format!(
                    "a deal from {dealer} without its commitment"
                )));
            };
            let keys = self.participant(&key, dealer)?;
            let plain = secrets
                .keys
                .open(
                    dealer,
                    &keys.encryption,
                    &session,
                    MASK_DEAL_LABEL,
                    &commitment.to_bytes(),
                    &d.sealed,
                )
                .map_err(|_| invalid(format!("the deal from {dealer} does not open")))?;
            let deal = MaskDeal::from_bytes(&plain)
                .map_err(|e| invalid(format!("the deal from {dealer}: {e}")))?;
            if deal.dealer() != dealer || deal.recipient() != self.id || deal.session() != session {
                return Err(invalid(format!(
                    "the deal from {dealer} is addressed otherwise"
                )));
            }
            if !deals.iter().any(|x| x.dealer() == dealer) {
                deals.push(deal);
            }
        }
        let mut rng = rand::rng();
        let mut checks = Vec::with_capacity(deals.len());
        for deal in &deals {
            let Some(commitment) = commitments.get(&deal.dealer()) else {
                continue;
            };
            // A deal that fails its commitment gets no check: the dealer is judged on the
            // others' checks (and named by them).
            if let Ok(check) = deal.verify(commitment) {
                let bytes = check.to_bytes();
                let sig = secrets.keys.sign(&signed(CHECK_DOMAIN, &bytes), &mut rng);
                checks.push(proto::SignedCheck {
                    checker: u32::from(self.id.get()),
                    check: bytes,
                    signature: sig.to_bytes().to_vec(),
                });
            }
        }
        drop(secrets);
        let mut sessions = self.mask_sessions()?;
        let state = Self::own_session(&mut sessions, &session, caller)?;
        if !matches!(state.phase, MaskPhase::Dealt(_)) {
            return Err(NodeError::Conflict(
                "this mask session was checked by another request".into(),
            ));
        }
        state.phase = MaskPhase::Checked(Dealing { commitments, deals });
        Ok(proto::MaskCheckReply { checks })
    }

    /// Offline phase 3: judges every dealer on the servers' signed checks; the accepted
    /// dealers' masks become the session's pool, which then serves distance requests until
    /// it is used up or [`MASK_POOL_TTL`] has passed. Every server judges the same broadcast
    /// checks, so all reach the same verdicts.
    ///
    /// # Errors
    /// [`NodeError::NotReady`] for an unknown or unchecked session or fewer than `t`
    /// accepted dealers, [`NodeError::Conflict`] for a session judged already,
    /// [`NodeError::Invalid`] for bad checks (the session stays as it was).
    pub fn mask_judge(
        &self,
        caller: &str,
        req: &proto::MaskJudgeRequest,
    ) -> Result<proto::MaskJudgeReply, NodeError> {
        self.fresh(req.meta.as_ref())?;
        let key = self.cluster_key()?;
        let session = array32(&req.session, "session")?;
        let (servers, commitments) = {
            let mut sessions = self.mask_sessions()?;
            let state = Self::own_session(&mut sessions, &session, caller)?;
            match &state.phase {
                MaskPhase::Checked(d) => (state.servers.clone(), d.commitments.clone()),
                MaskPhase::Dealt(_) => {
                    return Err(NodeError::NotReady("the masks were not checked yet".into()));
                }
                MaskPhase::Ready(_) => {
                    return Err(NodeError::Conflict(
                        "this mask session was judged already".into(),
                    ));
                }
            }
        };
        if req.checks.len() > servers.len() * servers.len() {
            return Err(invalid(format!(
                "{} checks for {} servers",
                req.checks.len(),
                servers.len()
            )));
        }
        // Every check's signature, verified in one batch (a failing batch names the checker).
        let mut signed_checks = Vec::with_capacity(req.checks.len());
        for c in &req.checks {
            let checker = node_id(c.checker, "checker")?;
            if !servers.contains(&checker) {
                return Err(invalid(format!(
                    "checker {checker} is not a server of this ranking"
                )));
            }
            let keys = self.participant(&key, checker)?;
            signed_checks.push((
                checker,
                keys,
                signed(CHECK_DOMAIN, &c.check),
                signature(&c.signature)?,
            ));
        }
        let items: Vec<_> = signed_checks
            .iter()
            .map(|(_, keys, message, sig)| (&keys.signing, message.as_slice(), sig))
            .collect();
        if let Err(bad) = verify_batch_vartime(&items, &mut rand::rng()) {
            let checker = bad
                .first()
                .and_then(|i| signed_checks.get(*i))
                .map_or(0, |c| c.0.get());
            return Err(invalid(format!("a check is not signed by node {checker}")));
        }
        let mut by_dealer: BTreeMap<NodeId, Vec<MaskCheck>> = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for (c, (checker, ..)) in req.checks.iter().zip(&signed_checks) {
            let checker = *checker;
            let check = MaskCheck::from_bytes(&c.check)
                .map_err(|e| invalid(format!("node {checker}'s check: {e}")))?;
            if check.node != checker || check.session != session {
                return Err(invalid(format!(
                    "node {checker}'s check is for another session or node"
                )));
            }
            if !seen.insert((check.dealer, checker)) {
                return Err(invalid(format!(
                    "node {checker} checked dealer {} twice",
                    check.dealer
                )));
            }
            by_dealer.entry(check.dealer).or_default().push(check);
        }
        let t = self.threshold.t();
        let mut verdicts: Vec<Verdict> = Vec::with_capacity(commitments.len());
        for (dealer, commitment) in &commitments {
            let checks = by_dealer.remove(dealer).unwrap_or_default();
            match judge(commitment, &checks, t) {
                Ok(v) => verdicts.push(v),
                // Too few checks to judge this dealer: its masks are left out.
                Err(_) => continue,
            }
        }
        let mut sessions = self.mask_sessions()?;
        let state = Self::own_session(&mut sessions, &session, caller)?;
        let MaskPhase::Checked(dealing) = &state.phase else {
            return Err(NodeError::Conflict(
                "this mask session was judged by another request".into(),
            ));
        };
        let deals: Vec<MaskDeal> = dealing
            .deals
            .iter()
            .filter(|d| verdicts.iter().any(|v| v.dealer() == d.dealer()))
            .cloned()
            .collect();
        let pool = MaskPool::from_checked_deals(self.id, &verdicts, &deals, t)
            .map_err(|e| NodeError::NotReady(format!("masks: {e}")))?;
        let accepted: Vec<u8> = verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::Accepted { .. }))
            .map(|v| v.dealer().get())
            .collect();
        let masks = state.count;
        state.phase = MaskPhase::Ready(pool);
        Ok(proto::MaskJudgeReply { accepted, masks })
    }

    /// Drops the caller's mask session `session` in whatever phase it is (its masks are
    /// zeroized): a pool the client will not use again no longer takes room.
    ///
    /// # Errors
    /// [`NodeError::Invalid`] for a session that is not 32 bytes; replays.
    pub fn mask_release(
        &self,
        caller: &str,
        req: &proto::MaskReleaseRequest,
    ) -> Result<proto::MaskReleaseReply, NodeError> {
        self.fresh(req.meta.as_ref())?;
        let session = array32(&req.session, "session")?;
        let mut sessions = self.mask_sessions()?;
        let released = Self::own_session(&mut sessions, &session, caller).is_ok();
        if released {
            sessions.remove(&session);
        }
        Ok(proto::MaskReleaseReply { released })
    }

    /// Online: answers a distance request with masked distance shares, using the masks the
    /// request names from its session's judged pool; each mask is used once, and the pool is
    /// dropped when every mask is used.
    ///
    /// # Errors
    /// [`NodeError::NotReady`] for an unknown or unjudged session, [`NodeError::Invalid`] for
    /// a bad distance request or masks used already (nothing is used up then);
    /// [`NodeError::Corrupt`] for stored bit shares that fail their check.
    pub fn distances(
        &self,
        caller: &str,
        req: &proto::DistancesRequest,
    ) -> Result<proto::DistancesReply, NodeError> {
        self.fresh(req.meta.as_ref())?;
        let request = DistanceRequest::from_bytes(&req.distance_request)
            .map_err(|e| invalid(format!("distance request: {e}")))?;
        let session = request.session;
        {
            let mut sessions = self.mask_sessions()?;
            let state = Self::own_session(&mut sessions, &session, caller)?;
            if !matches!(state.phase, MaskPhase::Ready(_)) {
                return Err(NodeError::NotReady("the masks were not judged yet".into()));
            }
        }
        let mut stored = self.bit_shares_of(&request.candidates)?;
        let response = {
            let mut sessions = self.mask_sessions()?;
            let state = Self::own_session(&mut sessions, &session, caller)?;
            let MaskPhase::Ready(pool) = &mut state.phase else {
                return Err(NodeError::NotReady("the masks were not judged yet".into()));
            };
            let response = request
                .respond(self.id, |id| stored.remove(&id), pool)
                .map_err(|e| invalid(e.to_string()))?;
            if pool.is_empty() {
                sessions.remove(&session);
            }
            response
        };
        let response = response.to_bytes().map_err(|e| invalid(e.to_string()))?;
        self.audit.append(
            &format!(
                "distances session={} first_mask={} candidates={}",
                crate::hex(&session),
                request.first_mask,
                request.candidates.len()
            ),
            false,
        )?;
        Ok(proto::DistancesReply {
            distance_response: response,
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

/// The bytes a node signs for a relayed message: a domain label and the message.
#[must_use]
pub fn signed(domain: &[u8], message: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(domain.len() + message.len());
    v.extend_from_slice(domain);
    v.extend_from_slice(message);
    v
}

fn signature(bytes: &[u8]) -> Result<Signature, NodeError> {
    let b: [u8; 64] = bytes
        .try_into()
        .map_err(|_| invalid("a signature must be 64 bytes"))?;
    Signature::from_bytes(&b).ok_or_else(|| invalid("malformed signature"))
}
