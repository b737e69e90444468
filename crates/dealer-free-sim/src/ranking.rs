//! The secure ranking of Stage-2, timed and with its bytes counted, and its comparison with
//! the plaintext baseline (DESIGN §4.5).
//!
//! [`rank_candidates_secure`] runs one query among the in-process nodes of a
//! [`LocalDeployment`], every exchange through the wire encoding of its message:
//!
//! 1. **Tokens.** The querier blinds the query's bands into one fixed-size token request;
//!    every chosen server answers with its partial evaluation and proof; the querier verifies
//!    and combines `t` of them.
//! 2. **Candidates.** Every server looks the tokens up in its token index
//!    ([`CandidateRequest`] → [`CandidateResponse`]); the querier takes the list that most
//!    servers returned (at least `t` must agree) and names the servers that differ.
//! 3. **Masks** (the offline phase, in practice done ahead of time): the servers deal each
//!    other checked zero-sharings of degree `2t − 2`, one per candidate.
//! 4. **Distance shares.** The querier shares its 64 bits to the servers
//!    ([`DistanceRequest`]); each server reads the candidates' bit shares from its durable
//!    store and answers one masked share per candidate ([`DistanceResponse`]).
//! 5. **Open and rank.** The querier decodes every candidate's shares as a Reed–Solomon
//!    codeword (correcting and naming servers that returned wrong shares) and ranks exactly
//!    as [`SearchableSISIndex::rank_candidates`] does.
//!
//! [`compare_secure_vs_baseline`] runs the same query through the baseline — a plaintext
//! [`SearchableSISIndex`] over the hashes, the design in which a server holds them — and
//! returns a [`SecureDistanceComparison`], serialised as versioned JSON (schema in
//! `docs/secure-ranking.md`). Times are wall-clock on this thread (all parties run on it) and
//! are kept under their own key, `timing_ms`, so that runs under one seed give identical JSON
//! apart from it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use dealer_free::mpc::masks::{MaskCheck, MaskCommitment, MaskDeal, offline_bytes};
use dealer_free::mpc::messages::{
    CandidateAgreement, CandidateRequest, CandidateResponse, DistanceRequest, DistanceResponse,
    SessionId,
};
use dealer_free::mpc::open::open_distances;
use dealer_free::mpc::rank::rank;
use dealer_free::mpc::{HashBitShares, check_servers, local, share_hash_bits};
use phr_sis::fp61::Fp61;
use phr_sis::{ImageHash, ImageId, NodeId, RankedCandidate, SearchParams, SearchableSISIndex};
use rand::{CryptoRng, Rng};
use serde::Serialize;

use crate::SimError;
use crate::deployment::LocalDeployment;
use crate::trace::{Party, Stage, StageRecorder, Trace};
use dealer_free::wire::MessageKind;

/// The schema name of [`SecureDistanceComparison`]'s JSON.
pub const COMPARISON_SCHEMA: &str = "dealer-free-sis/secure-distance-comparison";
/// The schema version of [`SecureDistanceComparison`]'s JSON.
pub const COMPARISON_SCHEMA_VERSION: u32 = 1;

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
    /// The offline phase: the servers' zero-sharing deals, commitments and checks.
    pub masks_offline: usize,
    /// Distance requests (the querier's bit shares and the candidates).
    pub distance_requests: usize,
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

/// The result of [`rank_candidates_secure`].
#[derive(Debug, Clone)]
pub struct SecureRanking {
    /// The ranking: equal to the baseline's for the same candidates.
    pub ranked: Vec<RankedCandidate>,
    /// How many candidates were ranked.
    pub candidates: usize,
    /// Servers caught returning a wrong distance share (corrected).
    pub wrong_shares_from: BTreeSet<NodeId>,
    /// Servers whose candidate list differed from the one most servers returned.
    pub disagreeing_candidate_lists: BTreeSet<NodeId>,
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

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn wire(e: impl std::fmt::Display) -> SimError {
    SimError::Wire(e.to_string())
}

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

/// [`rank_candidates_secure`], recording Stage-2's rounds with every message and each
/// party's CPU time: the token rounds, `candidate-request`, `candidate-response`,
/// `mask-deal` and `mask-check` (the offline phase: every dealer's commitment and deal to
/// every other server, every recipient's checks to the others; its CPU, measured for all
/// servers together, is split evenly among them), `distance-request`, `distance-response`
/// and `open-rank`.
///
/// # Errors
/// As [`rank_candidates_secure`].
pub fn rank_candidates_secure_recorded<R: CryptoRng + ?Sized>(
    deployment: &LocalDeployment,
    query: ImageHash,
    servers: &[NodeId],
    params: &SearchParams,
    faults: &BTreeMap<NodeId, ServerFault>,
    rng: &mut R,
    rec: &mut StageRecorder<'_>,
) -> Result<SecureRanking, SimError> {
    let threshold = deployment.threshold();
    check_servers(threshold, servers)?;
    if let Some(s) = servers.iter().find(|s| deployment.node(**s).is_none()) {
        return Err(SimError::Params(format!(
            "server {s} does not exist: the nodes are 1 to {}",
            threshold.n()
        )));
    }
    let mut bytes = SecureBytes::default();
    let mut time = SecureTimes::default();
    let session: SessionId = rng.random();

    // 1. Tokens.
    let start = Instant::now();
    let (tokens, token_bytes) = deployment.band_tokens_recorded(&[query], servers, rng, rec)?;
    let tokens = tokens.into_iter().next().unwrap_or_default();
    bytes.token_requests = token_bytes.token_requests;
    bytes.token_responses = token_bytes.token_responses;
    time.tokens_ms = ms(start.elapsed());

    // 2. Candidates.
    let start = Instant::now();
    rec.round("candidate-request");
    let lookup_start = Instant::now();
    let request = CandidateRequest {
        session,
        min_band_votes: params.min_band_votes,
        tokens,
    }
    .to_bytes()
    .map_err(wire)?;
    rec.cpu(Party::Client, lookup_start.elapsed());
    for id in servers {
        rec.message(
            Party::Client,
            Party::Node(*id),
            request.len(),
            Some(MessageKind::CandidateRequest),
        );
    }
    rec.round("candidate-response");
    let mut answers = Vec::with_capacity(servers.len());
    for id in servers {
        let node_start = Instant::now();
        let node = deployment
            .node(*id)
            .ok_or_else(|| SimError::Params(format!("there is no node {id}")))?;
        bytes.candidate_requests += request.len();
        let received = CandidateRequest::from_bytes(&request).map_err(wire)?;
        let mut candidates = node
            .tokens()
            .candidates(&received.tokens, received.min_band_votes);
        if faults.get(id) == Some(&ServerFault::DropsCandidate) {
            candidates.pop();
        }
        let answer = CandidateResponse {
            session,
            node: *id,
            candidates,
        }
        .to_bytes()
        .map_err(wire)?;
        rec.cpu(Party::Node(*id), node_start.elapsed());
        rec.message(
            Party::Node(*id),
            Party::Client,
            answer.len(),
            Some(MessageKind::CandidateResponse),
        );
        bytes.candidate_responses += answer.len();
        let answer = CandidateResponse::from_bytes(&answer).map_err(wire)?;
        if answer.session != session || answer.node != *id {
            return Err(SimError::Wire(format!(
                "node {id} answered for another query or node"
            )));
        }
        answers.push((*id, answer.candidates));
    }
    let CandidateAgreement {
        candidates,
        agreeing,
        disagreeing,
        groups,
    } = CandidateAgreement::from_answers(answers);
    if agreeing.len() < usize::from(threshold.t()) {
        return Err(SimError::Corrupt(format!(
            "no candidate list is returned by t = {} servers: {groups:?}",
            threshold.t(),
        )));
    }
    time.candidate_lookup_ms = ms(start.elapsed());

    // 3. Masks (offline).
    let start = Instant::now();
    let mut pools = local::deal_masks(threshold, servers, candidates.len(), rng)?;
    bytes.masks_offline = offline_bytes(servers.len(), candidates.len());
    let offline = start.elapsed();
    time.masks_offline_ms = ms(offline);
    let per_server = offline / u32::try_from(servers.len().max(1)).unwrap_or(u32::MAX);
    rec.round("mask-deal");
    for dealer in servers {
        rec.cpu(Party::Node(*dealer), per_server);
        for to in servers.iter().filter(|s| *s != dealer) {
            rec.message(
                Party::Node(*dealer),
                Party::Node(*to),
                MaskCommitment::encoded_len(servers.len()),
                Some(MessageKind::MaskCommitment),
            );
            rec.message(
                Party::Node(*dealer),
                Party::Node(*to),
                MaskDeal::encoded_len(candidates.len()),
                Some(MessageKind::MaskDeal),
            );
        }
    }
    rec.round("mask-check");
    for from in servers {
        for to in servers.iter().filter(|s| *s != from) {
            for _dealer in servers {
                rec.message(
                    Party::Node(*from),
                    Party::Node(*to),
                    MaskCheck::ENCODED_LEN,
                    Some(MessageKind::MaskCheck),
                );
            }
        }
    }

    // 4. The query's bit shares and the servers' distance shares.
    rec.round("distance-request");
    let start = Instant::now();
    let ids: Vec<ImageId> = candidates.iter().map(|(id, _)| *id).collect();
    let query_shares = share_hash_bits(query, threshold.t(), servers, rng)?;
    let requests: Vec<(NodeId, Vec<u8>)> = query_shares
        .into_iter()
        .map(|(server, shares)| {
            DistanceRequest {
                session,
                server,
                first_mask: 0,
                candidates: ids.clone(),
                query: shares,
            }
            .to_bytes()
            .map(|b| (server, b))
            .map_err(wire)
        })
        .collect::<Result<_, _>>()?;
    time.query_sharing_ms = ms(start.elapsed());
    rec.cpu(Party::Client, start.elapsed());
    for (server, request) in &requests {
        rec.message(
            Party::Client,
            Party::Node(*server),
            request.len(),
            Some(MessageKind::DistanceRequest),
        );
    }
    rec.round("distance-response");
    let start = Instant::now();
    let mut answers: Vec<(NodeId, Vec<u8>)> = Vec::with_capacity(servers.len());
    for (server, request) in &requests {
        let node_start = Instant::now();
        bytes.distance_requests += request.len();
        let node = deployment
            .node(*server)
            .ok_or_else(|| SimError::Params(format!("there is no node {server}")))?;
        let received = DistanceRequest::from_bytes(request).map_err(wire)?;
        let mut stored: BTreeMap<ImageId, HashBitShares> = BTreeMap::new();
        for id in &received.candidates {
            if let Some(s) = node.bit_shares(*id)? {
                stored.insert(*id, s);
            }
        }
        let pool = pools
            .get_mut(server)
            .ok_or_else(|| SimError::Params(format!("no masks for node {server}")))?;
        let mut response = received.respond(*server, |id| stored.remove(&id), pool)?;
        if faults.get(server) == Some(&ServerFault::WrongDistanceShares) {
            for s in &mut response.shares {
                *s += Fp61::ONE;
            }
        }
        let encoded = response.to_bytes().map_err(wire)?;
        rec.cpu(Party::Node(*server), node_start.elapsed());
        rec.message(
            Party::Node(*server),
            Party::Client,
            encoded.len(),
            Some(MessageKind::DistanceResponse),
        );
        answers.push((*server, encoded));
    }
    time.node_distance_ms = ms(start.elapsed());

    // 5. Open and rank.
    rec.round("open-rank");
    let start = Instant::now();
    let mut received: Vec<(NodeId, Vec<Fp61>)> = Vec::with_capacity(answers.len());
    for (server, answer) in &answers {
        bytes.distance_responses += answer.len();
        let answer = DistanceResponse::from_bytes(answer).map_err(wire)?;
        if answer.session != session || answer.server != *server {
            return Err(SimError::Wire(format!(
                "node {server} answered for another query or node"
            )));
        }
        received.push((*server, answer.shares));
    }
    let refs: Vec<(NodeId, &[Fp61])> = received.iter().map(|(n, v)| (*n, v.as_slice())).collect();
    let opened = open_distances(&refs, threshold.t())?;
    let ranked = rank(&candidates, &opened.distances, params)?;
    time.open_and_rank_ms = ms(start.elapsed());
    rec.cpu(Party::Client, start.elapsed());

    time.online_total_ms = time.tokens_ms
        + time.candidate_lookup_ms
        + time.query_sharing_ms
        + time.node_distance_ms
        + time.open_and_rank_ms;
    bytes.online_total = bytes.token_requests
        + bytes.token_responses
        + bytes.candidate_requests
        + bytes.candidate_responses
        + bytes.distance_requests
        + bytes.distance_responses;
    bytes.distance_bytes_per_candidate_per_server = if candidates.is_empty() {
        0.0
    } else {
        bytes.distance_responses as f64 / (candidates.len() * servers.len()) as f64
    };
    Ok(SecureRanking {
        ranked,
        candidates: candidates.len(),
        wrong_shares_from: opened.wrong,
        disagreeing_candidate_lists: disagreeing,
        bytes,
        time,
    })
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
        agree: plain == secure.ranked,
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
            ranking: hits(&secure.ranked),
            candidates: secure.candidates,
            wrong_shares_from: secure.wrong_shares_from.iter().map(|s| s.get()).collect(),
            disagreeing_candidate_lists: secure
                .disagreeing_candidate_lists
                .iter()
                .map(|s| s.get())
                .collect(),
            bytes: secure.bytes,
        },
        timing_ms: ComparisonTiming {
            baseline_rank_ms,
            secure: secure.time,
        },
    })
}
