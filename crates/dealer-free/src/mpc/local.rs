//! The whole secure ranking among in-process nodes, for tests, benchmarks and the
//! `bench secure-ranking` command: every node's stored bit shares, the masks dealt ahead of
//! time, the query, the nodes' masked distance shares, the opening and the ranking — the
//! same functions a networked deployment calls, without the network.

use std::collections::BTreeMap;

use phr_sis::fp61::Fp61;
use phr_sis::{ImageHash, ImageId, NodeId, RankedCandidate, SearchParams, Threshold};
use rand::CryptoRng;

use super::masks::{
    CHECKS, MaskCheck, MaskDeal, MaskPool, Verdict, deal_from_values, deal_zero_sharings, judge,
    masked_distance_shares,
};
use super::open::{Opened, open_distances};
use super::rank::rank;
use super::{HashBitShares, MpcError, check_servers, share_hash_bits};

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
        let (commitment, deals) =
            deal_from_values(session, *dealer, points.into_iter().collect(), rng)?;
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
        Ok(LocalCollection {
            threshold,
            ids: images.iter().map(|(id, _)| *id).collect(),
            shares,
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

    /// The whole query: share the query bits to `servers`, collect every server's answer,
    /// open and rank the candidates `(index into the collection, band votes)`.
    ///
    /// # Errors
    /// As [`LocalCollection::answer`] and [`open_distances`].
    pub fn query<R: CryptoRng + ?Sized>(
        &self,
        query: ImageHash,
        candidates: &[(usize, u32)],
        servers: &[NodeId],
        pools: &mut BTreeMap<NodeId, MaskPool>,
        params: &SearchParams,
        rng: &mut R,
    ) -> Result<(Vec<RankedCandidate>, Opened), MpcError> {
        check_servers(self.threshold, servers)?;
        let query_shares = share_hash_bits(query, self.threshold.t(), servers, rng)?;
        let indices: Vec<usize> = candidates.iter().map(|(i, _)| *i).collect();
        let mut answers = Vec::with_capacity(servers.len());
        for (node, q) in &query_shares {
            let pool = pools
                .get_mut(node)
                .ok_or_else(|| MpcError::Params(format!("no masks for node {node}")))?;
            answers.push((*node, self.answer(*node, &indices, q, pool)?));
        }
        let refs: Vec<(NodeId, &[Fp61])> =
            answers.iter().map(|(n, v)| (*n, v.as_slice())).collect();
        let opened = open_distances(&refs, self.threshold.t())?;
        let with_ids: Vec<(ImageId, u32)> = candidates
            .iter()
            .filter_map(|(i, votes)| self.ids.get(*i).map(|id| (*id, *votes)))
            .collect();
        let ranked = rank(&with_ids, &opened.distances, params)?;
        Ok((ranked, opened))
    }
}
