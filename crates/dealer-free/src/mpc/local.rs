//! The whole secure ranking among in-process nodes, for tests, benchmarks and the
//! `bench secure-ranking` command: every node's stored bit shares, the masks dealt ahead of
//! time, and a query through the querier's and the servers' states ([`super::querier`],
//! [`super::server`]) — the steps a networked deployment runs, with the messages passed by
//! value instead of over the network (the checks are signed and verified as on the network).

use std::collections::BTreeMap;

use phr_sis::fp61::Fp61;
use phr_sis::{ImageHash, ImageId, NodeId, SearchParams, Threshold};
use rand::CryptoRng;

use super::masks::{
    CHECKS, MaskCheck, MaskDeal, MaskKind, MaskPool, Verdict, deal_from_values, deal_zero_sharings,
    judge, masked_distance_shares,
};
use super::messages::{CandidateResponse, ChecksRelay};
use super::querier::{Querier, SearchResult};
use super::server::{AnsweredQuery, QueryBounds, answer_candidates};
use super::{HashBitShares, MpcError, SearchError, check_servers, share_hash_bits};
use crate::identity::{NodeKeys, NodePublicKeys};

/// The offline phase among in-process servers: every server of `servers` deals zero-sharings
/// of degree `2t − 2` for `count` candidates to the others, checked ([`judge`]);
/// returns every server's pool, built from the accepted dealers.
///
/// # Errors
/// [`MpcError::TooFewNodes`] for fewer than `2t − 1` servers, [`MpcError::MasksRejected`] if
/// fewer than `t` dealers are accepted.
pub fn deal_masks<R: CryptoRng + ?Sized>(
    threshold: Threshold,
    servers: &[NodeId],
    count: usize,
    rng: &mut R,
) -> Result<BTreeMap<NodeId, MaskPool>, MpcError> {
    deal_masks_with(threshold, servers, count, rng, |_, _| {}, |_| {}).map(|d| d.pools)
}

/// The outcome of a checked dealing among in-process servers.
#[derive(Debug)]
pub struct CheckedDealing {
    /// Every server's pool.
    pub pools: BTreeMap<NodeId, MaskPool>,
    /// The verdict on every dealer, by dealer.
    pub verdicts: Vec<Verdict>,
}

/// [`deal_masks`] with hooks that let tests make servers cheat: `deal_hook(dealer, points)`
/// may change a dealer's points (per recipient, `count + CHECKS` of them, the blinding sharings'
/// last) before it commits to them, and `check_hook` may change any check before it is
/// broadcast.
///
/// # Errors
/// As [`deal_masks`].
pub fn deal_masks_with<R, D, C>(
    threshold: Threshold,
    servers: &[NodeId],
    count: usize,
    rng: &mut R,
    mut deal_hook: D,
    mut check_hook: C,
) -> Result<CheckedDealing, MpcError>
where
    R: CryptoRng + ?Sized,
    D: FnMut(NodeId, &mut BTreeMap<NodeId, Vec<Fp61>>),
    C: FnMut(&mut MaskCheck),
{
    check_servers(threshold, servers)?;
    let t = threshold.t();
    let degree = usize::from(threshold.search_quorum()) - 1;
    let mut session = [0u8; 32];
    rng.fill_bytes(&mut session);
    let mut commitments = Vec::with_capacity(servers.len());
    let mut received: BTreeMap<NodeId, Vec<MaskDeal>> = BTreeMap::new();
    for dealer in servers {
        let mut points = deal_zero_sharings(servers, degree, count + CHECKS, rng);
        deal_hook(*dealer, &mut points);
        let (commitment, deals) = deal_from_values(
            session,
            MaskKind::ZeroSum,
            *dealer,
            points.into_iter().collect(),
            rng,
        )?;
        commitments.push(commitment);
        for d in deals {
            received.entry(d.recipient()).or_default().push(d);
        }
    }
    let mut verdicts = Vec::with_capacity(commitments.len());
    for commitment in &commitments {
        let mut checks = Vec::with_capacity(servers.len());
        for deal in received.values().flatten() {
            if deal.dealer() == commitment.dealer()
                && let Ok(mut check) = deal.verify(commitment)
            {
                check_hook(&mut check);
                checks.push(check);
            }
        }
        verdicts.push(judge(commitment, &checks, t)?);
    }
    let mut pools = BTreeMap::new();
    for j in servers {
        let mine = received.remove(j).unwrap_or_default();
        pools.insert(*j, MaskPool::from_checked_deals(*j, &verdicts, &mine, t)?);
    }
    Ok(CheckedDealing { pools, verdicts })
}

/// The nodes' bit shares of a collection.
#[derive(Debug)]
pub struct LocalCollection {
    threshold: Threshold,
    ids: Vec<ImageId>,
    /// Per node (all `n`), one entry per image in `ids` order.
    shares: BTreeMap<NodeId, Vec<HashBitShares>>,
    /// Every node's identity keys (they sign their query checks).
    keys: BTreeMap<NodeId, NodeKeys>,
}

impl LocalCollection {
    /// Shares every image's bits to nodes `1..=n` (the ingest).
    ///
    /// # Errors
    /// [`MpcError::Params`] for parameters that cannot work.
    pub fn ingest<R: CryptoRng + ?Sized>(
        threshold: Threshold,
        images: &[(ImageId, ImageHash)],
        rng: &mut R,
    ) -> Result<LocalCollection, MpcError> {
        let nodes: Vec<NodeId> = threshold.nodes().collect();
        let mut shares: BTreeMap<NodeId, Vec<HashBitShares>> = nodes
            .iter()
            .map(|n| (*n, Vec::with_capacity(images.len())))
            .collect();
        for (_, hash) in images {
            for (node, s) in share_hash_bits(*hash, threshold.t(), &nodes, rng)? {
                shares.entry(node).or_default().push(s);
            }
        }
        let keys = nodes
            .iter()
            .map(|n| (*n, NodeKeys::generate(*n, rng)))
            .collect();
        Ok(LocalCollection {
            threshold,
            ids: images.iter().map(|(id, _)| *id).collect(),
            shares,
            keys,
        })
    }

    /// Every server's mask pool for `count` candidates (the offline phase, [`deal_masks`]).
    ///
    /// # Errors
    /// As [`deal_masks`].
    pub fn deal_masks<R: CryptoRng + ?Sized>(
        &self,
        servers: &[NodeId],
        count: usize,
        rng: &mut R,
    ) -> Result<BTreeMap<NodeId, MaskPool>, MpcError> {
        deal_masks(self.threshold, servers, count, rng)
    }

    /// One node's answer: its masked distance share of each candidate (indices into the
    /// collection, in the order given).
    ///
    /// # Errors
    /// [`MpcError::Params`] for an unknown node or candidate, [`MpcError::MasksExhausted`].
    pub fn answer(
        &self,
        node: NodeId,
        candidates: &[usize],
        query: &HashBitShares,
        pool: &mut MaskPool,
    ) -> Result<Vec<Fp61>, MpcError> {
        let mine = self
            .shares
            .get(&node)
            .ok_or_else(|| MpcError::Params(format!("node {node} holds no shares")))?;
        let stored: Vec<&HashBitShares> = candidates
            .iter()
            .map(|c| {
                mine.get(*c)
                    .ok_or_else(|| MpcError::Params(format!("no image at index {c}")))
            })
            .collect::<Result<_, _>>()?;
        masked_distance_shares(&stored, query, pool)
    }

    /// The whole query among `servers` (the pools' servers): every server lists the
    /// candidates `(index into the collection, band votes)`, the querier shares and commits
    /// its bits, every server checks them, the checks are relayed and verified, every server
    /// answers its masked distance shares, and the querier opens and ranks them. The masks
    /// are taken from position 0 of each pool.
    ///
    /// # Errors
    /// The [`SearchError`] of the step that fails.
    pub fn query<R: CryptoRng + ?Sized>(
        &self,
        query: ImageHash,
        candidates: &[(usize, u32)],
        servers: &[NodeId],
        pools: &mut BTreeMap<NodeId, MaskPool>,
        params: &SearchParams,
        rng: &mut R,
    ) -> Result<SearchResult, SearchError> {
        check_servers(self.threshold, servers)?;
        let mut listed: Vec<(ImageId, u32)> = candidates
            .iter()
            .map(|(i, votes)| {
                self.ids
                    .get(*i)
                    .map(|id| (*id, *votes))
                    .ok_or_else(|| MpcError::Params(format!("no image at index {i}")))
            })
            .collect::<Result<_, _>>()?;
        listed.sort_unstable();
        // The candidates' places in the collection, ascending by id: the order in which every
        // server reads them.
        let mut order: Vec<(ImageId, usize)> = candidates
            .iter()
            .filter_map(|(i, _)| self.ids.get(*i).map(|id| (*id, *i)))
            .collect();
        order.sort_unstable();
        let querier = Querier::new(self.threshold, query, *params, rng);
        let request = querier.candidate_request(Vec::new());
        let bounds = QueryBounds {
            max_tokens: usize::MAX,
            max_candidates: usize::MAX,
        };
        let mut answered: BTreeMap<NodeId, AnsweredQuery> = BTreeMap::new();
        let mut responses: Vec<(NodeId, CandidateResponse)> = Vec::with_capacity(servers.len());
        for s in servers {
            let (a, r) = answer_candidates(*s, &request, bounds, |_, _| listed.clone())?;
            answered.insert(*s, a);
            responses.push((*s, r));
        }
        let agreed = querier.agree(responses)?;
        if agreed.candidates().is_empty() {
            return Ok(agreed.no_candidates());
        }
        let pool_servers: Vec<NodeId> = pools.keys().copied().collect();
        let (awaiting, requests) = agreed.share([0; 32], 0, rng)?;
        let mut checked = Vec::with_capacity(requests.len());
        let mut signed = Vec::with_capacity(requests.len());
        for (server, request) in requests {
            let pool = pools
                .get_mut(&server)
                .ok_or_else(|| MpcError::Params(format!("no masks for node {server}")))?;
            let a = answered
                .remove(&server)
                .ok_or_else(|| MpcError::Params(format!("node {server} listed nothing")))?;
            let (state, check) = a.check(request, &pool_servers, pool)?;
            let keys = self
                .keys
                .get(&server)
                .ok_or_else(|| MpcError::Params(format!("node {server} has no keys")))?;
            signed.push((server, check.sign(keys, rng)));
            checked.push((server, state));
        }
        let public: BTreeMap<NodeId, NodePublicKeys> =
            self.keys.iter().map(|(id, k)| (*id, k.public())).collect();
        let (awaiting, relay): (_, ChecksRelay) = awaiting.checks(signed, Some(&public))?;
        let mut answers = Vec::with_capacity(checked.len());
        for (server, state) in checked {
            let verified = state.verify(&relay, &public, self.threshold.t(), rng)?;
            let mine = self
                .shares
                .get(&server)
                .ok_or_else(|| MpcError::Params(format!("node {server} holds no shares")))?;
            let mut next = order.iter();
            let response = verified.respond(|id| {
                next.find(|(i, _)| *i == id)
                    .and_then(|(_, k)| mine.get(*k))
                    .cloned()
            })?;
            answers.push((server, response));
        }
        awaiting.open(answers)
    }
}
