//! One secure query among in-process nodes, carried by the simulator: the querier's and the
//! servers' states of `dealer_free::mpc` (and the mask dealing's), every message encoded,
//! counted as it travels (through the client, which relays between servers as the cluster
//! client does), decoded by its recipient, and timed per party. The simulator adds no
//! protocol step; it injects the faults of [`ServerFault`].

use std::collections::BTreeMap;
use std::time::Instant;

use dealer_free::mpc::masks::MaskPool;
use dealer_free::mpc::masks::confirm;
use dealer_free::mpc::masks::session::{
    self, MaskOrder, SealedMaskDeal, SignedMaskCheck, SignedMaskCommitment,
};
use dealer_free::mpc::messages::{
    CandidateRequest, CandidateResponse, ChecksRelay, DistanceRequest, DistanceResponse,
};
use dealer_free::mpc::querier::Querier;
use dealer_free::mpc::query::SignedQueryCheck;
use dealer_free::mpc::server::{AnsweredQuery, CheckedQuery, QueryBounds, answer_candidates};
use dealer_free::mpc::{HashBitShares, check_servers};
use dealer_free::wire::MessageKind;
use phr_sis::fp61::Fp61;
use phr_sis::{ImageHash, ImageId, NodeId, SearchParams};
use rand::{CryptoRng, Rng};

use super::{SecureBytes, SecureRanking, SecureTimes, ServerFault, ms, wire};
use crate::SimError;
use crate::deployment::{LocalDeployment, LocalNode};
use crate::trace::{Party, StageRecorder};

/// The bounds a node applies to a candidate request by default (`node.toml`'s
/// `max_query_tokens`, `max_candidates`).
const BOUNDS: QueryBounds = QueryBounds {
    max_tokens: 8,
    max_candidates: 100_000,
};

fn node(deployment: &LocalDeployment, id: NodeId) -> Result<&LocalNode, SimError> {
    deployment
        .node(id)
        .ok_or_else(|| SimError::Params(format!("there is no node {id}")))
}

/// Records one message of `len` bytes of `kind` and adds it to `total`.
fn send(
    rec: &mut StageRecorder<'_>,
    total: &mut usize,
    from: Party,
    to: Party,
    len: usize,
    kind: MessageKind,
) {
    rec.message(from, to, len, Some(kind));
    *total += len;
}

/// Records each of `messages` going `from → to` as `kind` ([`send`]).
fn send_each(
    rec: &mut StageRecorder<'_>,
    total: &mut usize,
    (from, to): (Party, Party),
    messages: &[Vec<u8>],
    kind: MessageKind,
) {
    for m in messages {
        send(rec, total, from, to, m.len(), kind);
    }
}

/// [`super::rank_candidates_secure`], recording Stage-2's rounds with every message and
/// each party's CPU time: the token rounds, `candidate-request`, `candidate-response`, the
/// mask dealing among the agreeing servers through the client (`mask-deal`: the order to
/// every server, each dealer's signed commitment and sealed deals back; `mask-check`: every
/// commitment and the deals sealed for it to every server, its signed checks back;
/// `mask-judge`: every check to every server), `distance-request` (the query's commitment
/// and each server's opening), `query-check` (each server's signed check back),
/// `checks-relay` (every check to every server), `distance-response` and `open-rank`.
///
/// # Errors
/// As [`super::rank_candidates_secure`].
#[allow(clippy::too_many_lines)] // one query's rounds, in order
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
    let roster = deployment.roster();
    let t = threshold.t();
    let mut bytes = SecureBytes::default();
    let mut time = SecureTimes::default();

    // 1. Tokens.
    let start = Instant::now();
    let (tokens, token_bytes) = deployment.band_tokens_recorded(&[query], servers, rng, rec)?;
    let tokens = tokens.into_iter().next().unwrap_or_default();
    bytes.token_requests = token_bytes.token_requests;
    bytes.token_responses = token_bytes.token_responses;
    time.tokens_ms = ms(start.elapsed());

    // 2. Candidates: every server lists and keeps its own.
    let start = Instant::now();
    rec.round("candidate-request");
    let lookup_start = Instant::now();
    let querier = Querier::new(threshold, query, *params, rng);
    let request = querier.candidate_request(tokens).to_bytes().map_err(wire)?;
    rec.cpu(Party::Client, lookup_start.elapsed());
    for id in servers {
        send(
            rec,
            &mut bytes.candidate_requests,
            Party::Client,
            Party::Node(*id),
            request.len(),
            MessageKind::CandidateRequest,
        );
    }
    rec.round("candidate-response");
    let bounds = BOUNDS;
    let mut answered: BTreeMap<NodeId, AnsweredQuery> = BTreeMap::new();
    let mut answers = Vec::with_capacity(servers.len());
    for id in servers {
        let node_start = Instant::now();
        let n = node(deployment, *id)?;
        let received = CandidateRequest::from_bytes(&request).map_err(wire)?;
        let (state, response) = answer_candidates(*id, &received, bounds, |tokens, votes| {
            let mut c = n.tokens().candidates(tokens, votes);
            if faults.get(id) == Some(&ServerFault::DropsCandidate) {
                c.pop();
            }
            c
        })?;
        answered.insert(*id, state);
        let encoded = response.to_bytes().map_err(wire)?;
        rec.cpu(Party::Node(*id), node_start.elapsed());
        send(
            rec,
            &mut bytes.candidate_responses,
            Party::Node(*id),
            Party::Client,
            encoded.len(),
            MessageKind::CandidateResponse,
        );
        answers.push((*id, CandidateResponse::from_bytes(&encoded).map_err(wire)?));
    }
    let agreed = querier.agree(answers)?;
    time.candidate_lookup_ms = ms(start.elapsed());
    if agreed.candidates().is_empty() {
        return Ok(SecureRanking {
            result: agreed.no_candidates(),
            bytes: finish_bytes(bytes, 0, servers.len()),
            time: finish_times(time),
        });
    }
    let query_servers = agreed.servers().to_vec();

    // 3. Masks (offline): a checked dealing among the query's servers, relayed.
    let start = Instant::now();
    let count = u32::try_from(agreed.masks_needed())
        .map_err(|_| SimError::Params("too many candidates".into()))?;
    let mut pools = deal_masks(
        deployment,
        &roster,
        &query_servers,
        count,
        rng,
        rec,
        &mut bytes,
    )?;
    time.masks_offline_ms = ms(start.elapsed());

    // 4. The query's shares, every server's check, the relay, the distance shares.
    rec.round("distance-request");
    let start = Instant::now();
    let client_start = Instant::now();
    let (awaiting, requests) = agreed.share([0; 32], 0, rng)?;
    let encoded: Vec<(NodeId, _)> = requests
        .into_iter()
        .map(|(s, r)| r.to_bytes().map(|b| (s, b)).map_err(wire))
        .collect::<Result<_, _>>()?;
    time.query_sharing_ms = ms(start.elapsed());
    rec.cpu(Party::Client, client_start.elapsed());
    for (server, request) in &encoded {
        send(
            rec,
            &mut bytes.distance_requests,
            Party::Client,
            Party::Node(*server),
            request.len(),
            MessageKind::DistanceRequest,
        );
    }
    rec.round("query-check");
    let node_start_all = Instant::now();
    let mut checked: BTreeMap<NodeId, CheckedQuery> = BTreeMap::new();
    let mut checks = Vec::with_capacity(encoded.len());
    for (server, request) in &encoded {
        let node_start = Instant::now();
        let n = node(deployment, *server)?;
        let received = DistanceRequest::from_bytes(request).map_err(wire)?;
        let state = answered
            .remove(server)
            .ok_or_else(|| SimError::Params(format!("node {server} listed no candidates")))?;
        let pool = pools
            .get_mut(server)
            .ok_or_else(|| SimError::Params(format!("no masks for node {server}")))?;
        let (state, check) = state.check(received, &query_servers, pool)?;
        let signed = check.sign(n.identity(), rng).to_bytes();
        checked.insert(*server, state);
        rec.cpu(Party::Node(*server), node_start.elapsed());
        send(
            rec,
            &mut bytes.query_checks,
            Party::Node(*server),
            Party::Client,
            signed.len(),
            MessageKind::QueryCheck,
        );
        checks.push((
            *server,
            SignedQueryCheck::from_bytes(&signed).map_err(wire)?,
        ));
    }
    rec.round("checks-relay");
    let client_start = Instant::now();
    let (awaiting, relay) = awaiting.checks(checks, Some(&roster))?;
    let relay = relay.to_bytes().map_err(wire)?;
    rec.cpu(Party::Client, client_start.elapsed());
    for server in &query_servers {
        send(
            rec,
            &mut bytes.checks_relays,
            Party::Client,
            Party::Node(*server),
            relay.len(),
            MessageKind::QueryChecks,
        );
    }
    rec.round("distance-response");
    let mut answers = Vec::with_capacity(checked.len());
    for (server, state) in checked {
        let node_start = Instant::now();
        let n = node(deployment, server)?;
        let received = ChecksRelay::from_bytes(&relay).map_err(wire)?;
        let verified = state.verify(&received, &roster, t, rng)?;
        let mut stored: BTreeMap<ImageId, HashBitShares> = BTreeMap::new();
        for id in verified.candidates() {
            if let Some(s) = n.bit_shares(*id)? {
                stored.insert(*id, s);
            }
        }
        let mut response = verified.respond(|id| stored.remove(&id))?;
        if faults.get(&server) == Some(&ServerFault::WrongDistanceShares) {
            for s in &mut response.shares {
                *s += Fp61::ONE;
            }
        }
        let encoded = response.to_bytes().map_err(wire)?;
        rec.cpu(Party::Node(server), node_start.elapsed());
        send(
            rec,
            &mut bytes.distance_responses,
            Party::Node(server),
            Party::Client,
            encoded.len(),
            MessageKind::DistanceResponse,
        );
        answers.push((server, encoded));
    }
    time.node_distance_ms = ms(node_start_all.elapsed());

    // 5. Open and rank.
    rec.round("open-rank");
    let start = Instant::now();
    let received: Vec<(NodeId, DistanceResponse)> = answers
        .iter()
        .map(|(s, a)| {
            DistanceResponse::from_bytes(a)
                .map(|r| (*s, r))
                .map_err(wire)
        })
        .collect::<Result<_, _>>()?;
    let result = awaiting.open(received)?;
    time.open_and_rank_ms = ms(start.elapsed());
    rec.cpu(Party::Client, start.elapsed());
    let candidates = result.candidates;
    Ok(SecureRanking {
        result,
        bytes: finish_bytes(bytes, candidates, query_servers.len()),
        time: finish_times(time),
    })
}

/// The totals of `bytes`.
fn finish_bytes(mut bytes: SecureBytes, candidates: usize, servers: usize) -> SecureBytes {
    bytes.online_total = bytes.token_requests
        + bytes.token_responses
        + bytes.candidate_requests
        + bytes.candidate_responses
        + bytes.distance_requests
        + bytes.query_checks
        + bytes.checks_relays
        + bytes.distance_responses;
    bytes.distance_bytes_per_candidate_per_server = if candidates == 0 {
        0.0
    } else {
        bytes.distance_responses as f64 / (candidates * servers) as f64
    };
    bytes
}

fn finish_times(mut time: SecureTimes) -> SecureTimes {
    time.online_total_ms = time.tokens_ms
        + time.candidate_lookup_ms
        + time.query_sharing_ms
        + time.node_distance_ms
        + time.open_and_rank_ms;
    time
}

/// The checked mask dealing of `count` masks among `servers`, through the client: the
/// order, every dealer's signed commitment and sealed deals, every server's signed checks,
/// each counted on both hops. Returns every server's pool.
fn deal_masks<R: CryptoRng + ?Sized>(
    deployment: &LocalDeployment,
    roster: &BTreeMap<NodeId, dealer_free::identity::NodePublicKeys>,
    servers: &[NodeId],
    count: u32,
    rng: &mut R,
    rec: &mut StageRecorder<'_>,
    bytes: &mut SecureBytes,
) -> Result<BTreeMap<NodeId, MaskPool>, SimError> {
    let t = deployment.threshold().t();
    let n = deployment.threshold().n();
    let order = MaskOrder {
        session: rng.random(),
        servers: servers.to_vec(),
        count,
        kind: dealer_free::mpc::masks::MaskKind::ZeroSum,
        ids: Vec::new(),
    }
    .to_bytes();
    let total = &mut bytes.masks_offline;
    rec.round("mask-deal");
    let mut dealt = BTreeMap::new();
    let mut commitments: Vec<Vec<u8>> = Vec::with_capacity(servers.len());
    let mut sealed: BTreeMap<NodeId, Vec<Vec<u8>>> = BTreeMap::new();
    for s in servers {
        send(
            rec,
            total,
            Party::Client,
            Party::Node(*s),
            order.len(),
            MessageKind::MaskOrder,
        );
        let start = Instant::now();
        let me = node(deployment, *s)?;
        let received = MaskOrder::from_bytes(&order).map_err(wire)?;
        received.validate(*s, t, n, count)?;
        let (d, commitment, deals) = session::deal(&received, t, me.identity(), roster, rng)?;
        dealt.insert(*s, d);
        let commitment = commitment.to_bytes();
        rec.cpu(Party::Node(*s), start.elapsed());
        send(
            rec,
            total,
            Party::Node(*s),
            Party::Client,
            commitment.len(),
            MessageKind::MaskCommitment,
        );
        commitments.push(commitment);
        for deal in deals {
            let b = deal.to_bytes();
            send(
                rec,
                total,
                Party::Node(*s),
                Party::Client,
                b.len(),
                MessageKind::SealedMaskDeal,
            );
            sealed.entry(deal.recipient).or_default().push(b);
        }
    }
    rec.round("mask-check");
    let mut checked = BTreeMap::new();
    let mut checks: Vec<Vec<u8>> = Vec::new();
    for (s, d) in dealt {
        let mine = sealed.remove(&s).unwrap_or_default();
        let to = (Party::Client, Party::Node(s));
        send_each(rec, total, to, &commitments, MessageKind::MaskCommitment);
        send_each(rec, total, to, &mine, MessageKind::SealedMaskDeal);
        let start = Instant::now();
        let me = node(deployment, s)?;
        let cs = commitments
            .iter()
            .map(|b| SignedMaskCommitment::from_bytes(b).map_err(wire))
            .collect::<Result<Vec<_>, _>>()?;
        let ds = mine
            .iter()
            .map(|b| SealedMaskDeal::from_bytes(b).map_err(wire))
            .collect::<Result<Vec<_>, _>>()?;
        let (c, out) = d.check(&cs, &ds, me.identity(), roster, rng)?;
        checked.insert(s, c);
        rec.cpu(Party::Node(s), start.elapsed());
        for check in out {
            let b = check.to_bytes();
            send(
                rec,
                total,
                Party::Node(s),
                Party::Client,
                b.len(),
                MessageKind::MaskCheck,
            );
            checks.push(b);
        }
    }
    rec.round("mask-judge");
    let mut pools = BTreeMap::new();
    let mut confirmations: Vec<Vec<u8>> = Vec::with_capacity(servers.len());
    for (s, c) in checked {
        send_each(
            rec,
            total,
            (Party::Client, Party::Node(s)),
            &checks,
            MessageKind::MaskCheck,
        );
        let start = Instant::now();
        let all = checks
            .iter()
            .map(|b| SignedMaskCheck::from_bytes(b).map_err(wire))
            .collect::<Result<Vec<_>, _>>()?;
        let order = c.order().clone();
        let judged = c.judge(&all, roster, rng)?;
        let me = node(deployment, s)?;
        let confirmation = confirm::confirm(&order, judged.digest, me.identity(), rng).to_bytes();
        rec.cpu(Party::Node(s), start.elapsed());
        send(
            rec,
            total,
            Party::Node(s),
            Party::Client,
            confirmation.len(),
            MessageKind::PoolConfirmation,
        );
        confirmations.push(confirmation);
        pools.insert(s, (order, judged.digest, judged.pool));
    }
    // Every server's confirmation to every server (a deployment relays them with the pool's
    // first use): each server takes its pool into use once all confirm its order and dealers.
    rec.round("mask-confirm");
    let mut confirmed = BTreeMap::new();
    for (s, (order, digest, pool)) in pools {
        send_each(
            rec,
            total,
            (Party::Client, Party::Node(s)),
            &confirmations,
            MessageKind::PoolConfirmation,
        );
        let start = Instant::now();
        let all = confirmations
            .iter()
            .map(|b| confirm::SignedPoolConfirmation::from_bytes(b).map_err(wire))
            .collect::<Result<Vec<_>, _>>()?;
        confirm::check_confirmations(&order, digest, s, &all, roster, rng)?;
        rec.cpu(Party::Node(s), start.elapsed());
        confirmed.insert(s, pool);
    }
    Ok(confirmed)
}
