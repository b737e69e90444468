//! Raw gRPC calls of the secure search for the cluster tests: a mask pool dealt through the
//! three mask rounds, and a query's candidate, check and distance rounds, each call made by
//! the test itself so that it can send what the cluster client never would.
#![allow(dead_code)] // each test file uses a subset

use std::error::Error;

use dealer_free::mpc::masks::session::MaskOrder;
use dealer_free::mpc::messages::{
    CandidateRequest, CandidateResponse, ChecksRelay, DistanceRequest, DistanceResponse,
};
use dealer_free::mpc::query::{QueryCommitment, QueryOpening, SignedQueryCheck};
use dealer_free_node::proto;
use dealer_free_node::proto::node_client::NodeClient;
use phr_sis::fp61::Fp61;
use phr_sis::token_index::Token;
use phr_sis::{ImageId, NodeId};
use tonic::transport::Channel;

type R<T> = Result<T, Box<dyn Error>>;

/// A node's raw client, with its id.
pub(crate) type Raw = (NodeId, NodeClient<Channel>);

/// Fresh request metadata.
pub(crate) fn meta() -> Option<proto::RequestMeta> {
    let mut request_id = vec![0u8; 16];
    for b in &mut request_id {
        *b = rand::random();
    }
    Some(proto::RequestMeta {
        request_id,
        unix_ms: dealer_free_node::replay::unix_ms(),
    })
}

/// The servers' confirmations of each pool [`deal_raw_pool`] dealt, by session: the
/// query-check round relays them as a client does.
static CONFIRMATIONS: std::sync::Mutex<Vec<PoolConfirmations>> = std::sync::Mutex::new(Vec::new());

/// A pool's session and every server's signed confirmation of it.
type PoolConfirmations = ([u8; 32], Vec<Vec<u8>>);

/// One judged mask pool of `count` masks among every node of `nodes`, dealt through raw
/// calls; every node's judge reply.
pub(crate) async fn deal_raw_pool(
    nodes: &mut [Raw],
    session: [u8; 32],
    count: u32,
) -> R<Vec<proto::MaskJudgeReply>> {
    let order = MaskOrder {
        session,
        servers: nodes.iter().map(|(id, _)| *id).collect(),
        count,
        kind: dealer_free::mpc::masks::MaskKind::ZeroSum,
        ids: Vec::new(),
    };
    deal_raw_pool_with(nodes, &order, |_, _, _| false).await
}

/// [`deal_raw_pool`] of `order`, relayed by a client that withholds from judge `j` the check
/// of dealer `d` by checker `c` whenever `withhold(j, d, c)`.
pub(crate) async fn deal_raw_pool_with(
    nodes: &mut [Raw],
    order: &MaskOrder,
    withhold: impl Fn(NodeId, NodeId, NodeId) -> bool,
) -> R<Vec<proto::MaskJudgeReply>> {
    let session = order.session;
    let order = order.to_bytes();
    let mut commitments = Vec::new();
    let mut sealed = Vec::new();
    for (_, n) in nodes.iter_mut() {
        let reply = n
            .mask_deal(proto::MaskDealRequest {
                meta: meta(),
                order: order.clone(),
            })
            .await?
            .into_inner();
        commitments.push(reply.commitment);
        for d in reply.deals {
            let to = dealer_free::mpc::masks::session::SealedMaskDeal::from_bytes(&d)?.recipient;
            sealed.push((to, d));
        }
    }
    let mut checks = Vec::new();
    for (id, n) in nodes.iter_mut() {
        let reply = n
            .mask_check(proto::MaskCheckRequest {
                meta: meta(),
                session: session.to_vec(),
                commitments: commitments.clone(),
                deals: sealed
                    .iter()
                    .filter(|(to, _)| to == id)
                    .map(|(_, d)| d.clone())
                    .collect(),
            })
            .await?
            .into_inner();
        checks.extend(reply.checks);
    }
    let mut judged = Vec::new();
    for (judge, n) in nodes.iter_mut() {
        let mut relayed = Vec::with_capacity(checks.len());
        for c in &checks {
            let check = dealer_free::mpc::masks::session::SignedMaskCheck::from_bytes(c)?.check;
            if !withhold(*judge, check.dealer, check.node) {
                relayed.push(c.clone());
            }
        }
        judged.push(
            n.mask_judge(proto::MaskJudgeRequest {
                meta: meta(),
                session: session.to_vec(),
                checks: relayed,
            })
            .await?
            .into_inner(),
        );
    }
    let confirmations = judged.iter().map(|j| j.confirmation.clone()).collect();
    CONFIRMATIONS
        .lock()
        .map_err(|_| "poisoned")?
        .push((session, confirmations));
    Ok(judged)
}

/// The candidate round of query `session` with `tokens` (no tokens and `min_band_votes` 0
/// list every stored image); every node's answer.
pub(crate) async fn candidates(
    nodes: &mut [Raw],
    session: [u8; 32],
    tokens: Vec<Token>,
    min_band_votes: u32,
) -> R<Vec<(NodeId, CandidateResponse)>> {
    let request = CandidateRequest {
        session,
        min_band_votes,
        tokens,
    }
    .to_bytes()?;
    let mut out = Vec::new();
    for (id, n) in nodes.iter_mut() {
        let reply = n
            .candidates(proto::CandidatesRequest {
                meta: meta(),
                candidate_request: request.clone(),
            })
            .await?
            .into_inner();
        out.push((
            *id,
            CandidateResponse::from_bytes(&reply.candidate_response)?,
        ));
    }
    Ok(out)
}

/// One distance request per server of `openings`: query `session`, images `ids` (the
/// commitment names the mask pool and the first mask).
pub(crate) fn requests(
    session: [u8; 32],
    ids: &[ImageId],
    commitment: &QueryCommitment,
    openings: &[(NodeId, QueryOpening)],
) -> R<Vec<(NodeId, Vec<u8>)>> {
    openings
        .iter()
        .map(|(server, opening)| {
            Ok((
                *server,
                DistanceRequest {
                    session,
                    server: *server,
                    candidates: ids.to_vec(),
                    commitment: commitment.clone(),
                    opening: opening.clone(),
                }
                .to_bytes()?
                .to_vec(),
            ))
        })
        .collect()
}

/// The query-check round: each node its request; the signed checks, or the first refusal.
pub(crate) async fn query_checks(
    nodes: &mut [Raw],
    requests: &[(NodeId, Vec<u8>)],
) -> R<Result<Vec<(NodeId, SignedQueryCheck)>, tonic::Status>> {
    let mut out = Vec::new();
    for (id, n) in nodes.iter_mut() {
        let Some((_, request)) = requests.iter().find(|(s, _)| s == id) else {
            continue;
        };
        // The pool's confirmations, as a client relays them (none for a request that does
        // not decode or names no pool dealt here).
        let pool = DistanceRequest::from_bytes(request)
            .map(|r| r.commitment.scope().mask_session)
            .ok();
        let pool_confirmations = CONFIRMATIONS
            .lock()
            .map_err(|_| "poisoned")?
            .iter()
            .find(|(s, _)| Some(*s) == pool)
            .map(|(_, c)| c.clone())
            .unwrap_or_default();
        match n
            .query_check(proto::QueryCheckRequest {
                meta: meta(),
                distance_request: request.clone(),
                pool_confirmations,
            })
            .await
        {
            Ok(reply) => out.push((
                *id,
                SignedQueryCheck::from_bytes(&reply.into_inner().query_check)?,
            )),
            Err(status) => return Ok(Err(status)),
        }
    }
    Ok(Ok(out))
}

/// The distance round: every node the relay of `checks`; each node's masked distance
/// shares, or the first refusal.
pub(crate) async fn distances(
    nodes: &mut [Raw],
    session: [u8; 32],
    checks: Vec<SignedQueryCheck>,
) -> R<Result<Vec<(NodeId, Vec<Fp61>)>, tonic::Status>> {
    let relay = ChecksRelay { session, checks }.to_bytes()?;
    let mut out = Vec::new();
    for (id, n) in nodes.iter_mut() {
        match n
            .distances(proto::DistancesRequest {
                meta: meta(),
                checks_relay: relay.clone(),
            })
            .await
        {
            Ok(reply) => out.push((
                *id,
                DistanceResponse::from_bytes(&reply.into_inner().distance_response)?.shares,
            )),
            Err(status) => return Ok(Err(status)),
        }
    }
    Ok(Ok(out))
}
