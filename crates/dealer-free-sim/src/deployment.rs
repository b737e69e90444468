//! A whole dealer-free deployment in one process: `n` nodes, each with its own durable share
//! store (redb, in a folder of its own), its DKG key share and its token index, and the
//! owner's client. Every exchange goes through the wire encoding of its message, so the
//! bytes counted are the bytes a networked deployment sends.
//!
//! [`LocalDeployment::create`] runs the distributed key generation among the nodes (no
//! dealer); [`LocalDeployment::ingest`] is Stage-1: for each image the client computes the
//! band tokens with the threshold VOPRF (one batched request per group of images), splits
//! the file into image shares and the pHash into bit shares, and each node stores its share
//! and bit shares atomically in its store and indexes the tokens. The nodes never see a
//! hash, a band value or a file name.
//!
//! Two client-side options of [`IngestOptions`] hide or shrink what the nodes receive
//! without changing any message format:
//!
//! * **Padded token requests** ([`IngestOptions::padded`]): every token request holds
//!   exactly `batch` images; a short last group is filled with dummy images (random hashes)
//!   whose tokens the client drops, so the size of a request and of its answers never tells
//!   how many images a group had. (Image payloads are padded separately, by
//!   [`SplitOptions::padding`].)
//! * **Compressed payloads** ([`IngestOptions::compress`]): the client deflates each file
//!   before splitting it, when that makes it smaller. Every shared secret is framed
//!   ([`frame_payload`]): a one-byte marker (raw or deflated) and the payload, so a share
//!   says by itself how to read it back, whoever retrieves it. The marker is part of the
//!   shared secret, so a node learns nothing from it that the (padded) share length does not
//!   already tell; [`LocalDeployment::retrieve_recorded`] undoes the framing, so retrieval
//!   returns the bytes ingested.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dealer_free::dkg::{KeyShare, local};
use dealer_free::identity::{NodeKeys, NodePublicKeys};
use dealer_free::mpc::{HashBitShares, share_hash_bits};
use dealer_free::oprf::PublicKey;
use dealer_free::oprf::threshold::{PartialEvaluation, verification_shares_from_points};
use dealer_free::oprf::tokens::{self, TokenContext, TokenRequest};
use dealer_free::record::StoredRecord;
use phr_sis::share::{Share, SplitOptions, reconstruct, split_image};
use phr_sis::store::{ImageRecord, MacKey, ShareStore};
use phr_sis::token_index::Token;
use phr_sis::{BandLayout, ImageHash, ImageId, NodeId, Threshold, TokenIndex};
use rand::{CryptoRng, Rng};

use crate::SimError;
use crate::simulator::KeyMaterial;
use crate::trace::{Party, Stage, StageRecorder, Trace};
use dealer_free::wire::MessageKind;

/// One storage node. It holds no hash, band value or file name.
pub struct LocalNode {
    id: NodeId,
    store: ShareStore,
    key_share: KeyShare,
    tokens: TokenIndex,
    /// Its identity keys: it signs its mask commitments, checks and query checks.
    identity: NodeKeys,
}

impl LocalNode {
    /// The node's id.
    #[must_use]
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The node's durable store.
    #[must_use]
    pub fn store(&self) -> &ShareStore {
        &self.store
    }

    /// The node's token index.
    #[must_use]
    pub fn tokens(&self) -> &TokenIndex {
        &self.tokens
    }

    /// The node's DKG key share.
    #[must_use]
    pub fn key_share(&self) -> &KeyShare {
        &self.key_share
    }

    /// The node's identity keys.
    #[must_use]
    pub fn identity(&self) -> &NodeKeys {
        &self.identity
    }

    /// The node's stored bit shares of `id`.
    ///
    /// # Errors
    /// [`SimError::Store`] if the store fails, [`SimError::Corrupt`] if the stored bytes are
    /// no bit shares.
    pub fn bit_shares(&self, id: ImageId) -> Result<Option<HashBitShares>, SimError> {
        let Some(bytes) = self.store.get_bit_shares(id)? else {
            return Ok(None);
        };
        HashBitShares::from_bytes(&bytes)
            .map(Some)
            .ok_or_else(|| SimError::Corrupt(format!("node {}'s bit shares of {id}", self.id)))
    }
}

impl std::fmt::Debug for LocalNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalNode")
            .field("id", &self.id)
            .field("store", &self.store.path())
            .field("images", &self.tokens.len())
            .finish_non_exhaustive()
    }
}

/// What the client knows of the OPRF key: every node's public verification share.
#[derive(Debug, Clone)]
pub struct OprfPublic {
    /// The collection's token context.
    pub context: TokenContext,
    /// Every node's verification share.
    pub verification_shares: BTreeMap<NodeId, PublicKey>,
}

/// One image handed to [`LocalDeployment::ingest`].
#[derive(Debug, Clone, Copy)]
pub struct IngestImage<'a> {
    /// The file's bytes (shared losslessly).
    pub bytes: &'a [u8],
    /// Its pHash (the client's own; bit-shared, never sent in the clear).
    pub hash: ImageHash,
}

/// Bytes on the wire of the ingest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestBytes {
    /// Token requests, once per node asked.
    pub token_requests: usize,
    /// The nodes' partial evaluations.
    pub token_responses: usize,
    /// Image shares, bit shares and tokens to the nodes.
    pub store: usize,
}

/// How [`LocalDeployment::ingest_with`] runs Stage-1.
#[derive(Debug, Clone, Default)]
pub struct IngestOptions {
    /// How each image is split.
    pub split: SplitOptions,
    /// Images per token request (`0`: as many as one request holds).
    pub batch_images: usize,
    /// Every token request holds exactly `batch_images` images (with `0`: as many as the
    /// first request), a short last group filled with dummy images whose tokens are dropped.
    pub padded: bool,
    /// Deflate each file before splitting when that makes it smaller ([`frame_payload`]).
    pub compress: bool,
    /// Nodes that are down during the ingest (crashed): no token request, no record.
    pub unreachable: BTreeSet<NodeId>,
}

/// What [`LocalDeployment::ingest_with`] did.
#[derive(Debug, Clone, Default)]
pub struct IngestReport {
    /// The new ids, in the order of the images.
    pub ids: Vec<ImageId>,
    /// Bytes on the wire.
    pub bytes: IngestBytes,
    /// Per node that stored nothing or part: the ids it misses.
    pub not_stored: BTreeMap<NodeId, Vec<ImageId>>,
    /// Bytes of the secrets split, all images together: the framed files ([`frame_payload`],
    /// deflated with [`IngestOptions::compress`] where that is shorter); before padding.
    pub payload_bytes: usize,
    /// Dummy images added to token requests by [`IngestOptions::padded`].
    pub dummy_images: usize,
}

pub use dealer_free::payload::{DEFLATE_LEVEL, PAYLOAD_DEFLATE, PAYLOAD_RAW, frame_payload};

/// The file of a payload framed by [`frame_payload`] ([`dealer_free::payload`]).
///
/// # Errors
/// [`SimError::Corrupt`] for an empty payload, an unknown marker or a bad deflate stream.
pub fn unframe_payload(payload: &[u8]) -> Result<Vec<u8>, SimError> {
    dealer_free::payload::unframe_payload(payload).map_err(|e| SimError::Corrupt(e.to_string()))
}

/// Bytes of a request for one image's share: header and image id.
pub const SHARE_REQUEST_LEN: usize = 2 + 8;

/// Bytes of a node's acknowledgement of one stored image: header, image id, node id.
pub const STORE_ACK_LEN: usize = 2 + 8 + 1;

/// `n` in-process nodes and the client's public OPRF view.
pub struct LocalDeployment {
    threshold: Threshold,
    nodes: Vec<LocalNode>,
    oprf: OprfPublic,
    dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for LocalDeployment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalDeployment")
            .field("threshold", &self.threshold)
            .field("dir", &self.dir)
            .field("nodes", &self.nodes)
            .finish_non_exhaustive()
    }
}

impl LocalDeployment {
    /// Runs the DKG among nodes `1..=n` and opens each node's store under `dir`
    /// (`node-<i>.redb`), or under a temporary folder removed on drop when `dir` is `None`.
    ///
    /// # Errors
    /// [`SimError::Params`] if `2t − 1 > n` (no secure search possible), [`SimError::Dkg`] if
    /// the DKG ends without a key, [`SimError::Io`]/[`SimError::Store`] for the stores.
    pub fn create<R: CryptoRng + ?Sized>(
        threshold: Threshold,
        dir: Option<&Path>,
        rng: &mut R,
    ) -> Result<LocalDeployment, SimError> {
        Self::check_quorum(threshold)?;
        let (temp, dir) = Self::folder(dir)?;
        let run = local::run(
            threshold,
            b"dealer-free-sis local deployment",
            &BTreeMap::new(),
            rng,
            &mut || Duration::ZERO,
        )
        .map_err(|e| SimError::Dkg(e.to_string()))?;
        let mut key_shares = BTreeMap::new();
        let mut public = None;
        for (id, outcome) in run.outcomes {
            let output = outcome.map_err(|e| SimError::Dkg(format!("node {id}: {e}")))?;
            match &public {
                None => public = Some(output.verification_shares.clone()),
                Some(p) if *p != output.verification_shares => {
                    return Err(SimError::Dkg("the nodes disagree on the key".into()));
                }
                Some(_) => {}
            }
            key_shares.insert(id, output.key_share);
        }
        let public = public.ok_or_else(|| SimError::Dkg("no node finished".into()))?;
        let verification_shares =
            verification_shares_from_points(&public).map_err(|e| SimError::Dkg(e.to_string()))?;
        Self::open(threshold, key_shares, verification_shares, temp, dir, rng)
    }

    /// A deployment whose nodes hold `key`'s shares (from a key setup run elsewhere, e.g.
    /// [`crate::DealerFreeSimulator::run_dkg`]); stores as in [`LocalDeployment::create`].
    /// A node of `1..=n` without a share in `key` (one that ended the key setup without the
    /// key) is absent: it is never asked or sent anything, like a crashed node.
    ///
    /// # Errors
    /// [`SimError::Params`] if `2t − 1 > n` or `key` holds fewer than `t` shares of nodes
    /// `1..=n`, [`SimError::Io`]/[`SimError::Store`] for the stores.
    pub fn from_key_material<R: CryptoRng + ?Sized>(
        threshold: Threshold,
        key: &KeyMaterial,
        dir: Option<&Path>,
        rng: &mut R,
    ) -> Result<LocalDeployment, SimError> {
        Self::check_quorum(threshold)?;
        let key_shares: BTreeMap<NodeId, KeyShare> = key
            .key_shares
            .iter()
            .filter(|(id, _)| threshold.nodes().any(|n| n == **id))
            .map(|(id, share)| (*id, share.clone()))
            .collect();
        if key_shares.len() < usize::from(threshold.t()) {
            return Err(SimError::Params(format!(
                "the key material holds {} shares of nodes 1 to {}, t = {} needed",
                key_shares.len(),
                threshold.n(),
                threshold.t()
            )));
        }
        let (temp, dir) = Self::folder(dir)?;
        Self::open(
            threshold,
            key_shares,
            key.verification_shares.clone(),
            temp,
            dir,
            rng,
        )
    }

    fn check_quorum(threshold: Threshold) -> Result<(), SimError> {
        if usize::from(threshold.search_quorum()) > usize::from(threshold.n()) {
            return Err(SimError::Params(format!(
                "secure search needs 2t − 1 = {} nodes but there are only n = {}",
                threshold.search_quorum(),
                threshold.n()
            )));
        }
        Ok(())
    }

    fn folder(dir: Option<&Path>) -> Result<(Option<tempfile::TempDir>, PathBuf), SimError> {
        Ok(match dir {
            Some(d) => {
                std::fs::create_dir_all(d)?;
                (None, d.to_owned())
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("dealer-free-sis-nodes-")
                    .tempdir()?;
                let d = t.path().to_owned();
                (Some(t), d)
            }
        })
    }

    fn open<R: CryptoRng + ?Sized>(
        threshold: Threshold,
        key_shares: BTreeMap<NodeId, KeyShare>,
        verification_shares: BTreeMap<NodeId, PublicKey>,
        temp: Option<tempfile::TempDir>,
        dir: PathBuf,
        rng: &mut R,
    ) -> Result<LocalDeployment, SimError> {
        let oprf = OprfPublic {
            context: TokenContext::new(b"dealer-free-sis", BandLayout::default())
                .map_err(|e| SimError::Params(e.to_string()))?,
            verification_shares,
        };
        let mut nodes = Vec::with_capacity(key_shares.len());
        for (id, key_share) in key_shares {
            let path = dir.join(format!("node-{id}.redb"));
            nodes.push(LocalNode {
                id,
                store: ShareStore::open(&path, MacKey::generate(rng))?,
                key_share,
                tokens: TokenIndex::new(),
                identity: NodeKeys::generate(id, rng),
            });
        }
        Ok(LocalDeployment {
            threshold,
            nodes,
            oprf,
            dir,
            _temp: temp,
        })
    }

    /// The threshold.
    #[must_use]
    pub fn threshold(&self) -> Threshold {
        self.threshold
    }

    /// Every node's public identity keys.
    #[must_use]
    pub fn roster(&self) -> BTreeMap<NodeId, NodePublicKeys> {
        self.nodes
            .iter()
            .map(|n| (n.id, n.identity.public()))
            .collect()
    }

    /// The nodes, by id.
    #[must_use]
    pub fn nodes(&self) -> &[LocalNode] {
        &self.nodes
    }

    /// Node `id`, if it exists.
    #[must_use]
    pub fn node(&self, id: NodeId) -> Option<&LocalNode> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The client's view of the OPRF key.
    #[must_use]
    pub fn oprf(&self) -> &OprfPublic {
        &self.oprf
    }

    /// The folder of the node stores.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The band tokens of every hash (image by image, band order) from the threshold VOPRF
    /// answered by the nodes `from`, batched [`TokenContext::max_images`] images per request.
    /// Returns the tokens and the bytes of requests and answers.
    ///
    /// # Errors
    /// [`SimError::Oprf`] if fewer than `t` answers verify, [`SimError::Params`] for an
    /// unknown node.
    pub fn band_tokens<R: CryptoRng + ?Sized>(
        &self,
        hashes: &[ImageHash],
        from: &[NodeId],
        rng: &mut R,
    ) -> Result<(Vec<Vec<Token>>, IngestBytes), SimError> {
        let mut scratch = Trace::new();
        let mut rec = StageRecorder::new(&mut scratch, Stage::Stage1);
        self.band_tokens_recorded(hashes, from, rng, &mut rec)
    }

    /// [`LocalDeployment::band_tokens`], recording its rounds (`token-request`,
    /// `token-response`, `token-combine`) with every message and each party's CPU time.
    ///
    /// # Errors
    /// As [`LocalDeployment::band_tokens`].
    pub fn band_tokens_recorded<R: CryptoRng + ?Sized>(
        &self,
        hashes: &[ImageHash],
        from: &[NodeId],
        rng: &mut R,
        rec: &mut StageRecorder<'_>,
    ) -> Result<(Vec<Vec<Token>>, IngestBytes), SimError> {
        self.band_tokens_batched(hashes, from, 0, rng, rec)
    }

    /// [`LocalDeployment::band_tokens_recorded`] with at most `batch` images per request
    /// (`0`: as many as one request holds, [`TokenContext::max_images`]).
    ///
    /// # Errors
    /// As [`LocalDeployment::band_tokens`].
    pub fn band_tokens_batched<R: CryptoRng + ?Sized>(
        &self,
        hashes: &[ImageHash],
        from: &[NodeId],
        batch: usize,
        rng: &mut R,
        rec: &mut StageRecorder<'_>,
    ) -> Result<(Vec<Vec<Token>>, IngestBytes), SimError> {
        self.band_tokens_padded(hashes, from, batch, false, rng, rec)
            .map(|(tokens, bytes, _)| (tokens, bytes))
    }

    /// [`LocalDeployment::band_tokens_batched`], asking the first `t` of `from` (all of
    /// them if those fail, as the cluster client does); with `padded`, every request holds exactly
    /// `batch` images (with `batch = 0`: as many as the first request), a short last group
    /// filled with dummy images (uniformly random hashes) whose tokens are dropped. The
    /// requests are ordinary [`TokenRequest`]s: the nodes cannot tell a dummy image from a
    /// real one. Also returns the number of dummy images.
    ///
    /// # Errors
    /// As [`LocalDeployment::band_tokens`].
    pub fn band_tokens_padded<R: CryptoRng + ?Sized>(
        &self,
        hashes: &[ImageHash],
        from: &[NodeId],
        batch: usize,
        padded: bool,
        rng: &mut R,
        rec: &mut StageRecorder<'_>,
    ) -> Result<(Vec<Vec<Token>>, IngestBytes, usize), SimError> {
        // As the cluster client does: the first t nodes are asked, and all of them again if
        // those do not give t valid answers (the first attempt's messages were sent too).
        let t = usize::from(self.threshold.t());
        if from.len() > t
            && let Some(first) = from.get(..t)
            && let Ok(done) = self.band_tokens_from(hashes, first, batch, padded, rng, rec)
        {
            return Ok(done);
        }
        self.band_tokens_from(hashes, from, batch, padded, rng, rec)
    }

    fn band_tokens_from<R: CryptoRng + ?Sized>(
        &self,
        hashes: &[ImageHash],
        from: &[NodeId],
        batch: usize,
        padded: bool,
        rng: &mut R,
        rec: &mut StageRecorder<'_>,
    ) -> Result<(Vec<Vec<Token>>, IngestBytes, usize), SimError> {
        let oprf = |e: &dyn std::fmt::Display| SimError::Oprf(e.to_string());
        let mut out = Vec::with_capacity(hashes.len());
        let mut bytes = IngestBytes::default();
        let mut dummies = 0;
        let most = self.oprf.context.max_images().max(1);
        let batch = if batch == 0 {
            most.min(hashes.len().max(1))
        } else {
            batch.min(most)
        };
        for group in hashes.chunks(batch) {
            rec.round("token-request");
            let start = Instant::now();
            let mut request_hashes = group.to_vec();
            if padded {
                while request_hashes.len() < batch {
                    request_hashes.push(ImageHash(rng.random()));
                    dummies += 1;
                }
            }
            let (state, request) =
                TokenRequest::for_images(&self.oprf.context, &request_hashes, rng)
                    .map_err(|e| oprf(&e))?;
            let wire = request.to_bytes();
            rec.cpu(Party::Client, start.elapsed());
            for id in from {
                rec.message(
                    Party::Client,
                    Party::Node(*id),
                    wire.len(),
                    Some(MessageKind::TokenRequest),
                );
                bytes.token_requests += wire.len();
            }
            rec.round("token-response");
            let mut answers = Vec::with_capacity(from.len());
            for id in from {
                let node = self
                    .node(*id)
                    .ok_or_else(|| SimError::Params(format!("there is no node {id}")))?;
                let start = Instant::now();
                let received = TokenRequest::from_bytes(&wire).map_err(|e| oprf(&e))?;
                let answer = tokens::respond(&node.key_share, &received, rng)
                    .and_then(|p| p.to_bytes())
                    .map_err(|e| oprf(&e))?;
                rec.cpu(Party::Node(*id), start.elapsed());
                rec.message(
                    Party::Node(*id),
                    Party::Client,
                    answer.len(),
                    Some(MessageKind::OprfPartialEvaluation),
                );
                bytes.token_responses += answer.len();
                answers.push(answer);
            }
            rec.round("token-combine");
            let start = Instant::now();
            let partials: Vec<PartialEvaluation> = answers
                .iter()
                .map(|a| PartialEvaluation::from_bytes(a).map_err(|e| oprf(&e)))
                .collect::<Result<_, _>>()?;
            let images = tokens::finish_images(
                state,
                &partials,
                &self.oprf.verification_shares,
                self.threshold,
            )
            .map_err(|e| oprf(&e))?;
            out.extend(
                images
                    .into_iter()
                    .take(group.len())
                    .map(|tokens| tokens.iter().map(|t| *t.as_bytes()).collect()),
            );
            rec.cpu(Party::Client, start.elapsed());
        }
        Ok((out, bytes, dummies))
    }

    /// Stage-1 for `images`: tokens from the threshold VOPRF of every node, image shares
    /// (Shamir over GF(2^8) by default), bit shares of the pHash, one atomic record per node
    /// and image, and the tokens indexed. Returns the new ids (random, drawn from `rng`) in
    /// the order of `images`, and the bytes sent.
    ///
    /// # Errors
    /// [`SimError::Share`] for an image that cannot be split, [`SimError::Store`] if a
    /// store fails (images stored before stay stored), [`SimError::Oprf`].
    pub fn ingest<R: CryptoRng + ?Sized>(
        &mut self,
        images: &[IngestImage<'_>],
        options: &SplitOptions,
        rng: &mut R,
    ) -> Result<(Vec<ImageId>, IngestBytes), SimError> {
        let mut scratch = Trace::new();
        let mut rec = StageRecorder::new(&mut scratch, Stage::Stage1);
        self.ingest_recorded(images, options, rng, &mut rec)
    }

    /// [`LocalDeployment::ingest`], recording Stage-1's rounds: the token rounds of
    /// [`LocalDeployment::band_tokens_recorded`], then `share` (the client splits each image
    /// and its hash and sends each node its record) and `store` (each node stores its records
    /// atomically, indexes the tokens and acknowledges). A record's size is
    /// a [`StoredRecord`]'s encoding; an acknowledgement is [`STORE_ACK_LEN`] bytes.
    ///
    /// # Errors
    /// As [`LocalDeployment::ingest`].
    pub fn ingest_recorded<R: CryptoRng + ?Sized>(
        &mut self,
        images: &[IngestImage<'_>],
        options: &SplitOptions,
        rng: &mut R,
        rec: &mut StageRecorder<'_>,
    ) -> Result<(Vec<ImageId>, IngestBytes), SimError> {
        let options = IngestOptions {
            split: *options,
            ..IngestOptions::default()
        };
        let report = self.ingest_with(images, &options, rng, rec)?;
        Ok((report.ids, report.bytes))
    }

    /// Stage-1 with every option of [`IngestOptions`], recorded as in
    /// [`LocalDeployment::ingest_recorded`]. Nodes in `options.unreachable` are neither
    /// asked for tokens nor sent records; [`IngestReport::not_stored`] lists what each of
    /// them misses.
    ///
    /// # Errors
    /// As [`LocalDeployment::ingest`]; [`SimError::Oprf`] if fewer than `t` nodes are
    /// reachable.
    pub fn ingest_with<R: CryptoRng + ?Sized>(
        &mut self,
        images: &[IngestImage<'_>],
        options: &IngestOptions,
        rng: &mut R,
        rec: &mut StageRecorder<'_>,
    ) -> Result<IngestReport, SimError> {
        let all: Vec<NodeId> = self.threshold.nodes().collect();
        let reachable: Vec<NodeId> = all
            .iter()
            .copied()
            .filter(|n| !options.unreachable.contains(n) && self.node(*n).is_some())
            .collect();
        let hashes: Vec<ImageHash> = images.iter().map(|i| i.hash).collect();
        let (tokens, mut bytes, dummy_images) = self.band_tokens_padded(
            &hashes,
            &reachable,
            options.batch_images,
            options.padded,
            rng,
            rec,
        )?;
        rec.round("share");
        let start = Instant::now();
        // Per image: its id and every node's encoded record, in the order of `all`.
        let mut prepared: Vec<(ImageId, Vec<_>)> = Vec::with_capacity(images.len());
        let mut payload_bytes = 0;
        for (image, tokens) in images.iter().zip(&tokens) {
            let id = ImageId(rng.random());
            let secret = frame_payload(image.bytes, options.compress);
            payload_bytes += secret.len();
            let shares = split_image(&secret, id, self.threshold, &options.split, rng)
                .map_err(|e| SimError::Share(e.to_string()))?;
            let bit_shares = share_hash_bits(image.hash, self.threshold.t(), &all, rng)
                .map_err(|e| SimError::Params(e.to_string()))?;
            let records = shares
                .iter()
                .zip(bit_shares)
                .map(|(share, (_, bits))| {
                    StoredRecord {
                        image_id: id,
                        share: share.to_bytes(),
                        bit_shares: bits,
                        tokens: tokens.clone(),
                    }
                    .to_bytes()
                    .map_err(|e| SimError::Wire(e.to_string()))
                })
                .collect::<Result<_, _>>()?;
            prepared.push((id, records));
        }
        rec.cpu(Party::Client, start.elapsed());
        for (_, records) in &prepared {
            for (node, record) in all.iter().zip(records) {
                if reachable.contains(node) {
                    rec.message(
                        Party::Client,
                        Party::Node(*node),
                        record.len(),
                        Some(MessageKind::StoredRecord),
                    );
                    bytes.store += record.len();
                }
            }
        }
        rec.round("store");
        let mut not_stored = BTreeMap::new();
        for absent in all.iter().filter(|n| self.node(**n).is_none()) {
            not_stored.insert(*absent, prepared.iter().map(|(id, _)| *id).collect());
        }
        for node in &mut self.nodes {
            // The records are in the order of `all`.
            let index = all.iter().position(|n| *n == node.id).unwrap_or(usize::MAX);
            if !reachable.contains(&node.id) {
                not_stored.insert(node.id, prepared.iter().map(|(id, _)| *id).collect());
                continue;
            }
            let start = Instant::now();
            // The node decodes its records; one transaction per node and request: all of
            // them or none.
            let mut received = Vec::with_capacity(prepared.len());
            for (_, records) in &prepared {
                let bytes = records
                    .get(index)
                    .ok_or_else(|| SimError::Corrupt("a node without its record".into()))?;
                received.push(
                    StoredRecord::from_bytes(bytes).map_err(|e| SimError::Wire(e.to_string()))?,
                );
            }
            let stored: Vec<(ImageId, ImageRecord)> = received
                .iter()
                .map(|r| {
                    (
                        r.image_id,
                        ImageRecord {
                            share: r.share.clone(),
                            bit_shares: r.bit_shares.to_bytes().to_vec(),
                            meta: r.token_bytes(),
                        },
                    )
                })
                .collect();
            let batch: Vec<(ImageId, &ImageRecord)> =
                stored.iter().map(|(id, r)| (*id, r)).collect();
            node.store.put_images(&batch)?;
            for r in &received {
                node.tokens
                    .insert(r.image_id, &r.tokens)
                    .map_err(|e| SimError::Corrupt(e.to_string()))?;
            }
            rec.cpu(Party::Node(node.id), start.elapsed());
            for _ in &prepared {
                rec.message(Party::Node(node.id), Party::Client, STORE_ACK_LEN, None);
            }
        }
        Ok(IngestReport {
            ids: prepared.iter().map(|(id, _)| *id).collect(),
            bytes,
            not_stored,
            payload_bytes,
            dummy_images,
        })
    }

    /// Retrieval (the end of Stage-2): asks the nodes `from` for their shares of `id`
    /// (`share-request`, [`SHARE_REQUEST_LEN`] bytes each), each answers with its stored
    /// share (`share-response`), and the client verifies them and reconstructs the image
    /// from any `t` good ones (`reconstruct`), undoing [`frame_payload`]. Returns the image bytes and the nodes
    /// whose shares were rejected.
    ///
    /// # Errors
    /// [`SimError::Share`] with fewer than `t` good shares, [`SimError::Store`],
    /// [`SimError::Corrupt`] for a framed payload that does not decode.
    pub fn retrieve_recorded(
        &self,
        id: ImageId,
        from: &[NodeId],
        rec: &mut StageRecorder<'_>,
    ) -> Result<(Vec<u8>, Vec<NodeId>), SimError> {
        rec.round("share-request");
        for node in from {
            rec.message(Party::Client, Party::Node(*node), SHARE_REQUEST_LEN, None);
        }
        rec.round("share-response");
        let mut answers = Vec::with_capacity(from.len());
        for node_id in from {
            let node = self
                .node(*node_id)
                .ok_or_else(|| SimError::Params(format!("there is no node {node_id}")))?;
            let start = Instant::now();
            let share = node.store.get_share(id)?;
            rec.cpu(Party::Node(*node_id), start.elapsed());
            if let Some(share) = share {
                rec.message(
                    Party::Node(*node_id),
                    Party::Client,
                    2 + 4 + share.len(),
                    None,
                );
                answers.push(share);
            }
        }
        rec.round("reconstruct");
        let start = Instant::now();
        let shares: Vec<Share> = answers
            .iter()
            .filter_map(|b| Share::from_bytes(b).ok())
            .collect();
        let done = reconstruct(&shares).map_err(|e| SimError::Share(e.to_string()))?;
        let image = unframe_payload(&done.image)?;
        rec.cpu(Party::Client, start.elapsed());
        let rejected = done.rejected.iter().map(|r| r.node).collect();
        Ok((image, rejected))
    }
}
