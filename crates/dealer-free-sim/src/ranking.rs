//! The secure ranking of Stage-2, timed and with its bytes counted, and its comparison with
//! the plaintext baseline (`docs/design.md#secure-ranking`).
//!
//! [`rank_candidates_secure`] runs one query among the in-process nodes of a
//! [`LocalDeployment`], every exchange through the wire encoding of its message:
//!
//! 1. **Tokens.** The querier blinds the query's bands into one fixed-size token request;
//!    every chosen server answers with its partial evaluation and proof; the querier verifies
//!    and combines `t` of them.
//! 2. **Candidates.** Every server looks the tokens up in its token index and keeps its
//!    answer; the querier takes the list that `2t − 1` or more servers returned, ranks among
//!    those servers and names the others.
//! 3. **Masks** (the offline phase, in practice done ahead of time): the servers deal each
//!    other checked zero-sharings of degree `2t − 2`, one per candidate and two for the
//!    query's check, through the client (signed commitments, sealed deals, signed checks).
//! 4. **Query check and distance shares.** The querier commits to its shares and sends
//!    each server its opening; every server checks it (bits, degree `t − 1`) and signs its
//!    check; the querier relays every check to every server; each server that accepts them
//!    reads its candidates' bit shares from its durable store and answers one masked share
//!    per candidate.
//! 5. **Open and rank.** The querier decodes every candidate's shares as a Reed–Solomon
//!    codeword (correcting and naming servers that returned wrong shares where the servers
//!    allow it) and ranks exactly as [`SearchableSISIndex::rank_candidates`] does.
//!
//! Every step is a state of `dealer_free::mpc` ([`dealer_free::mpc::querier`],
//! [`dealer_free::mpc::server`], [`dealer_free::mpc::masks::session`]); this module only
//! carries, counts and times the messages, and injects [`ServerFault`]s.
//!
//! [`compare_secure_vs_baseline`] runs the same query through the baseline — a plaintext
//! [`SearchableSISIndex`] over the hashes, the design in which a server holds them — and
//! returns a [`SecureDistanceComparison`], serialised as versioned JSON (schema in
//! `docs/secure-ranking.md`). Times are wall-clock on this thread (all parties run on it) and
//! are kept under their own key, `timing_ms`, so that runs under one seed give identical JSON
//! apart from it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use dealer_free::mpc::SearchResult;
use phr_sis::{ImageHash, ImageId, NodeId, RankedCandidate, SearchParams, SearchableSISIndex};
use rand::CryptoRng;
use serde::Serialize;

use crate::SimError;
use crate::deployment::LocalDeployment;
use crate::trace::{Stage, StageRecorder, Trace};

/// The schema name of [`SecureDistanceComparison`]'s JSON.
pub const COMPARISON_SCHEMA: &str = "dealer-free-sis/secure-distance-comparison";
/// The schema version of [`SecureDistanceComparison`]'s JSON.
pub const COMPARISON_SCHEMA_VERSION: u32 = 2;

/// Bytes on the wire of one secure query, by step (every message counted once per recipient).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct SecureBytes {
    /// Token requests to the servers.
    pub token_requests: usize,
    /// The servers' partial evaluations.
    pub token_responses: usize,
    /// Candidate lookups to the servers.
    pub candidate_requests: usize,
    /// The servers' candidate lists.
    pub candidate_responses: usize,
    /// The offline phase through the client: the orders, the servers' signed commitments,
    /// sealed deals and signed checks, each on both hops.
    pub masks_offline: usize,
    /// Distance requests (the querier's commitment, each server's opening, the candidates).
    pub distance_requests: usize,
    /// The servers' signed checks of the query's shares.
    pub query_checks: usize,
    /// Every check relayed to every server.
    pub checks_relays: usize,
    /// The servers' masked distance shares.
    pub distance_responses: usize,
    /// Everything online (all but `masks_offline`).
    pub online_total: usize,
    /// `distance_responses` per candidate and server (the ranking's own cost: 8 plus the
    /// message header amortised).
    pub distance_bytes_per_candidate_per_server: f64,
}

/// Time of one secure query, by step (wall clock, all parties on one thread).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct SecureTimes {
    /// Token request, the servers' evaluations, verification and combination.
    pub tokens_ms: f64,
    /// The servers' token-index lookups and the querier's check.
    pub candidate_lookup_ms: f64,
    /// The offline phase (masks).
    pub masks_offline_ms: f64,
    /// The querier sharing its bits.
    pub query_sharing_ms: f64,
    /// The servers' work: reading bit shares and computing masked distance shares.
    pub node_distance_ms: f64,
    /// Opening (Reed–Solomon decoding) and ranking.
    pub open_and_rank_ms: f64,
    /// Everything online (all but `masks_offline_ms`).
    pub online_total_ms: f64,
}

/// The result of [`rank_candidates_secure`]: the protocol's one result type, and what it cost.
#[derive(Debug, Clone)]
pub struct SecureRanking {
    /// What the querier got: the ranking (equal to the baseline's for the same candidates),
    /// the servers, those named, and what the opening vouches for.
    pub result: SearchResult,
    /// Bytes by step.
    pub bytes: SecureBytes,
    /// Time by step.
    pub time: SecureTimes,
}

/// A server that deviates, for tests and demonstrations of the correction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerFault {
    /// Adds 1 to every distance share it returns.
    WrongDistanceShares,
    /// Leaves the last candidate out of its candidate list.
    DropsCandidate,
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub(crate) fn wire(e: impl std::fmt::Display) -> SimError {
    SimError::Wire(e.to_string())
}

mod rounds;
pub use rounds::rank_candidates_secure_recorded;

/// Ranks the candidates of `query` by secure Hamming distance among `servers` (at least
/// `2t − 1` of the deployment's nodes), with `faults` applied to the servers named.
///
/// # Errors
/// [`SimError::Mpc`] with `MpcError::TooFewNodes` (how many are needed, which were given)
/// for too few servers, or when too many wrong shares come back to correct;
/// [`SimError::Params`] for a server the deployment does not have; [`SimError::Oprf`] if the
/// token evaluation fails; [`SimError::Corrupt`] if fewer than `t` servers agree on the
/// candidates or a store holds unreadable bit shares.
pub fn rank_candidates_secure<R: CryptoRng + ?Sized>(
    deployment: &LocalDeployment,
    query: ImageHash,
    servers: &[NodeId],
    params: &SearchParams,
    faults: &BTreeMap<NodeId, ServerFault>,
    rng: &mut R,
) -> Result<SecureRanking, SimError> {
    let mut scratch = Trace::new();
    let mut rec = StageRecorder::new(&mut scratch, Stage::Stage2);
    rank_candidates_secure_recorded(deployment, query, servers, params, faults, rng, &mut rec)
}

/// One ranked image in the comparison's JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hit {
    /// The image id (16 hex digits).
    pub id: String,
    /// Hamming distance to the query.
    pub distance: u32,
    /// Bands shared with the query.
    pub band_votes: u32,
    /// The file it was ingested from (known to the client only).
    pub path: Option<String>,
}

/// The query of the comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueryInfo {
    /// The query image's path, as given.
    pub path: String,
    /// Its pHash in imagehash's text form.
    pub phash: String,
}

/// The search parameters, as used by both rankings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ParamsInfo {
    /// Keep at most this many.
    pub topk: usize,
    /// Candidates share at least this many bands with the query.
    pub min_band_votes: u32,
    /// Keep distances up to this.
    pub max_hamming: u32,
}

/// Bytes of the baseline query: the query hash and parameters to the server that holds the
/// hashes, and the ranked list back (image id 8, distance 4, band votes 4 per hit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BaselineBytes {
    /// Query hash (8) and parameters (16).
    pub request: usize,
    /// 16 per ranked image.
    pub response: usize,
    /// Both.
    pub total: usize,
}

/// The baseline's side of the comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BaselineSide {
    /// `SearchableSISIndex::rank_candidates` on the plaintext hashes.
    pub ranking: Vec<Hit>,
    /// Candidates it ranked (images with at least `min_band_votes` shared bands).
    pub candidates: usize,
    /// Bytes on the wire.
    pub bytes: BaselineBytes,
}

/// The secure ranking's side of the comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecureSide {
    /// The ranking opened by the querier.
    pub ranking: Vec<Hit>,
    /// Candidates it ranked.
    pub candidates: usize,
    /// Servers caught returning wrong distance shares (corrected).
    pub wrong_shares_from: Vec<u8>,
    /// Servers whose candidate list differed from the majority's.
    pub disagreeing_candidate_lists: Vec<u8>,
    /// What the opening vouches for ([`dealer_free::mpc::Integrity`]).
    pub integrity: String,
    /// Bytes on the wire, by step.
    pub bytes: SecureBytes,
}

/// Measured times (the only part of the JSON that differs between runs under one seed).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ComparisonTiming {
    /// The baseline's `rank_candidates`.
    pub baseline_rank_ms: f64,
    /// The secure query, by step.
    pub secure: SecureTimes,
}

/// `compare_secure_vs_baseline`'s result: both rankings of one query image, whether they
/// agree, and what each cost. Serialised as JSON (`schema`, `schema_version` first).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecureDistanceComparison {
    /// [`COMPARISON_SCHEMA`].
    pub schema: &'static str,
    /// [`COMPARISON_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The query image.
    pub query: QueryInfo,
    /// Nodes in the deployment.
    pub nodes: u8,
    /// The threshold t.
    pub threshold: u8,
    /// The servers the secure ranking used.
    pub servers: Vec<u8>,
    /// The search parameters.
    pub params: ParamsInfo,
    /// Images stored.
    pub images: usize,
    /// The plaintext baseline.
    pub baseline: BaselineSide,
    /// The secure ranking.
    pub secure: SecureSide,
    /// Whether both rankings are identical (ids, distances, band votes, order).
    pub agree: bool,
    /// Measured times.
    pub timing_ms: ComparisonTiming,
}

impl SecureDistanceComparison {
    /// Pretty-printed JSON with a final newline.
    ///
    /// # Errors
    /// Never in practice (every field serialises); a serde error otherwise.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self).map(|mut s| {
            s.push('\n');
            s
        })
    }
}

/// The query of a comparison.
#[derive(Debug, Clone, Copy)]
pub struct ComparisonQuery<'a> {
    /// The query image's path (reported as given).
    pub path: &'a Path,
    /// Its pHash.
    pub hash: ImageHash,
}

/// Runs the baseline (plaintext `baseline.rank_candidates`) and the secure ranking among
/// `servers` for the same query and parameters. `names` maps stored ids to their files, for
/// the report.
///
/// # Errors
/// As [`rank_candidates_secure`].
pub fn compare_secure_vs_baseline<R: CryptoRng + ?Sized>(
    deployment: &LocalDeployment,
    baseline: &SearchableSISIndex,
    names: &BTreeMap<ImageId, String>,
    query: ComparisonQuery<'_>,
    servers: &[NodeId],
    params: &SearchParams,
    rng: &mut R,
) -> Result<SecureDistanceComparison, SimError> {
    let start = Instant::now();
    let plain = baseline.rank_candidates(query.hash, params);
    let baseline_rank_ms = ms(start.elapsed());
    let baseline_candidates = baseline.candidates(query.hash, params.min_band_votes).len();
    let secure = rank_candidates_secure(
        deployment,
        query.hash,
        servers,
        params,
        &BTreeMap::new(),
        rng,
    )?;
    let hits = |ranked: &[RankedCandidate]| -> Vec<Hit> {
        ranked
            .iter()
            .map(|c| Hit {
                id: c.id.to_string(),
                distance: c.distance,
                band_votes: c.band_votes,
                path: names.get(&c.id).cloned(),
            })
            .collect()
    };
    let threshold = deployment.threshold();
    Ok(SecureDistanceComparison {
        schema: COMPARISON_SCHEMA,
        schema_version: COMPARISON_SCHEMA_VERSION,
        query: QueryInfo {
            path: query.path.display().to_string(),
            phash: query.hash.to_string(),
        },
        nodes: threshold.n(),
        threshold: threshold.t(),
        servers: servers.iter().map(|s| s.get()).collect(),
        params: ParamsInfo {
            topk: params.topk,
            min_band_votes: params.min_band_votes,
            max_hamming: params.max_hamming,
        },
        images: baseline.len(),
        agree: plain == secure.result.hits,
        baseline: BaselineSide {
            ranking: hits(&plain),
            candidates: baseline_candidates,
            bytes: BaselineBytes {
                request: 8 + 16,
                response: 16 * plain.len(),
                total: 8 + 16 + 16 * plain.len(),
            },
        },
        secure: SecureSide {
            ranking: hits(&secure.result.hits),
            candidates: secure.result.candidates,
            wrong_shares_from: secure
                .result
                .wrong_shares_from
                .iter()
                .map(|s| s.get())
                .collect(),
            disagreeing_candidate_lists: secure
                .result
                .disagreeing
                .iter()
                .map(|s| s.get())
                .collect(),
            integrity: secure.result.integrity.to_string(),
            bytes: secure.bytes,
        },
        timing_ms: ComparisonTiming {
            baseline_rank_ms,
            secure: secure.time,
        },
    })
}
