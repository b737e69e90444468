//! The client's mask pools: the offline phase of the secure ranking, run ahead of the queries
//! it serves.
//!
//! A dealing ([`ClusterClient::deal_masks`]) is three relayed rounds among one server set —
//! every server deals checked zero-sharings (`MaskDeal`), checks what it received
//! (`MaskCheck`), then judges every dealer on all the checks (`MaskJudge`) — after which each
//! server holds a pool of masks for that set. A query then only names a range of the pool
//! (the first mask of its commitment's scope: two masks for its check, then one per
//! candidate), so the online path of a search is tokens, candidates, the query's check and
//! the distance shares.
//!
//! What holds: the client hands every range out once ([`MaskReserve::reserve`] under one
//! lock), and the servers enforce it on their side as well (a mask asked for twice is
//! refused), so no two answers share a mask. A pool is used only while its servers keep it
//! ([`MASK_POOL_TTL`], less a margin); a pool a server no longer has is abandoned and the
//! query is answered from a fresh dealing. Abandoned pools, and dealings that fail part-way,
//! are released on the servers (`MaskRelease`) so they take no room there. The pools hold no
//! secret on the client: the masks stay on the servers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use phr_sis::{ImageId, NodeId};
use rand::RngCore;

use dealer_free::mpc::SearchError;
use dealer_free::mpc::masks::MaskKind;
use dealer_free::mpc::masks::session::{MaskOrder, SealedMaskDeal};

use super::wire_count::Direction;
use super::{ClientError, ClusterClient};
use crate::proto;
use crate::state::MASK_POOL_TTL;
use dealer_free::wire::MessageKind;

/// How long before the servers drop a pool the client stops using it.
const POOL_MARGIN: Duration = Duration::from_secs(60);

/// One judged dealing among a server set.
#[derive(Debug, Clone)]
struct Pool {
    session: [u8; 32],
    servers: Vec<NodeId>,
    masks: u32,
    next: u32,
    dealt: Instant,
    /// Queries holding a range of it whose distance step has not finished.
    in_flight: u32,
    /// No range will be taken from it again: released once no query holds a range of it.
    abandoned: bool,
    /// Every server's signed confirmation of the dealing, relayed with each use until every
    /// server took the pool into use.
    confirmations: std::sync::Arc<Vec<Vec<u8>>>,
    /// Every server answered a query from the pool, so each holds it confirmed.
    confirmed: bool,
}

impl Pool {
    fn new(session: [u8; 32], servers: &[NodeId], masks: u32, confirmations: Vec<Vec<u8>>) -> Pool {
        Pool {
            confirmations: std::sync::Arc::new(confirmations),
            confirmed: false,
            session,
            servers: servers.to_vec(),
            masks,
            next: 0,
            dealt: Instant::now(),
            in_flight: 0,
            abandoned: false,
        }
    }

    fn usable(&self) -> bool {
        self.dealt.elapsed() + POOL_MARGIN < MASK_POOL_TTL
    }

    fn left(&self) -> u32 {
        self.masks - self.next
    }
}

/// Masks reserved for one query: masks from `first` of the dealing `session`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MaskRange {
    pub(crate) session: [u8; 32],
    pub(crate) first: u32,
}

/// What a dealing produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealtMasks {
    /// The servers that hold the pool.
    pub servers: Vec<NodeId>,
    /// Masks in it (one per candidate of the queries it serves).
    pub masks: u32,
    /// The dealers whose masks the pools sum: accepted with no server named (the same at
    /// every server).
    pub accepted: Vec<NodeId>,
    /// Every server's signed confirmation of the order and the dealers it summed, to relay
    /// to each before a random-mask pool is used.
    pub confirmations: Vec<Vec<u8>>,
}

/// A pool the servers should drop: `(session, servers)`.
pub(crate) type Release = ([u8; 32], Vec<NodeId>);

/// The client's pools, by server set.
#[derive(Debug, Default)]
pub(crate) struct MaskReserve {
    pools: Mutex<Vec<Pool>>,
    /// Server sets a pool is being dealt for in the background.
    refilling: Mutex<BTreeSet<Vec<NodeId>>>,
    /// Dealings this client completed.
    dealings: AtomicU64,
}

/// Takes out of `pools` the abandoned pools no query holds a range of: those with masks
/// left are returned for release (the servers drop used-up pools themselves).
fn sweep(pools: &mut Vec<Pool>) -> Vec<Release> {
    let mut released = Vec::new();
    pools.retain(|p| {
        if p.in_flight > 0 || !(p.abandoned || p.left() == 0) {
            return true;
        }
        if p.left() > 0 {
            released.push((p.session, p.servers.clone()));
        }
        false
    });
    released
}

impl MaskReserve {
    /// `count` masks for `servers` from the oldest pool that has them, and the masks the
    /// pools for `servers` have left; `None` if no pool has. Pools too old to use, or with
    /// fewer masks left than this query needs, are abandoned; those no query holds a range
    /// of are returned, for the servers to release.
    pub(crate) fn reserve(
        &self,
        servers: &[NodeId],
        count: u32,
    ) -> (Option<(MaskRange, u32)>, Vec<Release>) {
        let Ok(mut pools) = self.pools.lock() else {
            return (None, Vec::new());
        };
        pools.sort_by_key(|p| p.dealt);
        let mut range = None;
        for p in pools
            .iter_mut()
            .filter(|p| p.servers == servers && !p.abandoned)
        {
            if !p.usable() || p.left() < count {
                p.abandoned = true;
                continue;
            }
            range = Some(MaskRange {
                session: p.session,
                first: p.next,
            });
            p.next += count;
            p.in_flight += 1;
            break;
        }
        let released = sweep(&mut pools);
        let left = pools
            .iter()
            .filter(|p| p.servers == servers && !p.abandoned)
            .map(Pool::left)
            .sum();
        (range.map(|r| (r, left)), released)
    }

    /// The servers' confirmations of the dealing `session` to relay with a query: none once
    /// every server took the pool into use (or for no such pool).
    pub(crate) fn confirmations(&self, session: &[u8; 32]) -> std::sync::Arc<Vec<Vec<u8>>> {
        self.pools
            .lock()
            .ok()
            .and_then(|p| {
                p.iter()
                    .find(|p| p.session == *session && !p.confirmed)
                    .map(|p| std::sync::Arc::clone(&p.confirmations))
            })
            .unwrap_or_default()
    }

    /// Every server answered a query from the pool `session`: each holds it confirmed, and
    /// later queries relay no confirmation.
    pub(crate) fn mark_confirmed(&self, session: &[u8; 32]) {
        if let Ok(mut pools) = self.pools.lock()
            && let Some(p) = pools.iter_mut().find(|p| p.session == *session)
        {
            p.confirmed = true;
        }
    }

    /// Adds a dealt pool; `first_use` reserves its first `first_use` masks for the query
    /// that dealt it.
    fn add(&self, mut pool: Pool, first_use: u32) {
        self.dealings.fetch_add(1, Ordering::Relaxed);
        pool.next = first_use;
        pool.in_flight = u32::from(first_use > 0);
        if let Ok(mut pools) = self.pools.lock() {
            pools.push(pool);
        }
    }

    /// The distance step of a query with masks of `range` finished; `failed` says whether
    /// it failed (the pool is then abandoned: a server may no longer hold it). Returns the
    /// pools to release.
    pub(crate) fn finish(&self, range: &MaskRange, failed: bool) -> Vec<Release> {
        let Ok(mut pools) = self.pools.lock() else {
            return Vec::new();
        };
        if let Some(p) = pools.iter_mut().find(|p| p.session == range.session) {
            p.in_flight = p.in_flight.saturating_sub(1);
            p.abandoned |= failed;
        }
        sweep(&mut pools)
    }

    /// Whether a background dealing for `servers` may start (none runs).
    fn start_refill(&self, servers: &[NodeId]) -> bool {
        self.refilling
            .lock()
            .is_ok_and(|mut r| r.insert(servers.to_vec()))
    }

    fn end_refill(&self, servers: &[NodeId]) {
        if let Ok(mut r) = self.refilling.lock() {
            r.remove(servers);
        }
    }

    /// Dealings completed.
    pub(crate) fn dealings(&self) -> u64 {
        self.dealings.load(Ordering::Relaxed)
    }

    /// Masks left for `servers` in pools still in use.
    pub(crate) fn left(&self, servers: &[NodeId]) -> u32 {
        self.pools.lock().map_or(0, |p| {
            p.iter()
                .filter(|p| p.servers == servers && p.usable() && !p.abandoned)
                .map(Pool::left)
                .sum()
        })
    }
}

impl ClusterClient {
    /// Deals a pool of `masks` masks among `servers` (at least `2t − 1` nodes): the offline
    /// phase of the secure ranking, relayed through this client, sealed and signed by the
    /// nodes. Searches among the same servers then use the pool
    /// ([`ClusterClient::with_mask_pool`] sets how many masks a search deals when none are
    /// left).
    ///
    /// # Errors
    /// [`ClientError::Refused`] or an unreachable node if any server does not take part;
    /// [`ClientError::Protocol`] if the servers judge differently.
    pub async fn deal_masks(
        &self,
        servers: &[NodeId],
        masks: u32,
    ) -> Result<DealtMasks, ClientError> {
        let (pool, dealt) = self
            .deal_pool(servers, masks, MaskKind::ZeroSum, Vec::new())
            .await?;
        self.masks.add(pool, 0);
        Ok(dealt)
    }

    /// Deals one random sharing of degree `t − 1` per image of `ids` (ascending) among
    /// `servers` (at least `t + 1` nodes) for the scrub's bit-share check, each mask bound to
    /// its image: the session of the servers' pools and the
    /// dealers they sum. The pools serve only that check; release them with
    /// [`ClusterClient::release_pool`] when done.
    ///
    /// # Errors
    /// As [`ClusterClient::deal_masks`].
    pub(crate) async fn deal_random_masks(
        &self,
        servers: &[NodeId],
        ids: Vec<ImageId>,
    ) -> Result<([u8; 32], DealtMasks), ClientError> {
        let count = u32::try_from(ids.len()).unwrap_or(u32::MAX);
        let (pool, dealt) = self
            .deal_pool(servers, count, MaskKind::Random, ids)
            .await?;
        Ok((pool.session, dealt))
    }

    /// Has `servers` drop mask session `session` (in the background).
    pub(crate) fn release_pool(&self, session: [u8; 32], servers: &[NodeId]) {
        self.release(vec![(session, servers.to_vec())]);
    }

    /// One dealing of `count` masks among `servers`. A dealing that fails part-way is
    /// released on the servers (in the background), so its session takes no room there.
    async fn deal_pool(
        &self,
        servers: &[NodeId],
        count: u32,
        kind: MaskKind,
        ids: Vec<ImageId>,
    ) -> Result<(Pool, DealtMasks), ClientError> {
        let mut session = [0u8; 32];
        rand::rng().fill_bytes(&mut session);
        let dealt = self.deal_rounds(session, servers, count, kind, ids).await;
        if dealt.is_err() {
            self.release(vec![(session, servers.to_vec())]);
        }
        dealt
    }

    /// The three rounds of a dealing: deal, check, judge. The client carries the servers'
    /// signed commitments, sealed deals and signed checks as they are; it can neither read
    /// nor forge them.
    async fn deal_rounds(
        &self,
        session: [u8; 32],
        servers: &[NodeId],
        count: u32,
        kind: MaskKind,
        ids: Vec<ImageId>,
    ) -> Result<(Pool, DealtMasks), ClientError> {
        let order = std::sync::Arc::new(
            MaskOrder {
                session,
                servers: servers.to_vec(),
                count,
                kind,
                ids,
            }
            .to_bytes(),
        );
        let order_len = order.len();
        let deals = self
            .call_all(servers, move |_, m| proto::MaskDealRequest {
                meta: Some(m),
                order: order.as_ref().clone(),
            })
            .await;
        let mut commitments = Vec::new();
        let mut sealed: BTreeMap<NodeId, Vec<Vec<u8>>> = BTreeMap::new();
        for (dealer, r) in deals {
            let reply = r?;
            self.wire
                .payload(MessageKind::MaskOrder, Direction::Sent, order_len);
            self.wire.payload(
                MessageKind::MaskCommitment,
                Direction::Received,
                reply.commitment.len(),
            );
            self.wire.payloads(
                MessageKind::SealedMaskDeal,
                Direction::Received,
                &reply.deals,
            );
            commitments.push(reply.commitment);
            for d in reply.deals {
                // Routed by the recipient it names; the recipient checks the rest.
                let deal =
                    SealedMaskDeal::from_bytes(&d).map_err(|source| SearchError::Malformed {
                        from: Some(dealer),
                        what: "sealed mask deal",
                        source,
                    })?;
                if deal.dealer != dealer || !servers.contains(&deal.recipient) {
                    return Err(SearchError::Misaddressed {
                        from: Some(dealer),
                        what: "sealed mask deal",
                        reason: "from another dealer or to no server of the dealing".into(),
                    }
                    .into());
                }
                sealed.entry(deal.recipient).or_default().push(d);
            }
        }
        let (commitments_sent, sealed_sent) = (commitments.clone(), sealed.clone());
        let sealed = std::sync::Arc::new(sealed);
        let commitments = std::sync::Arc::new(commitments);
        let checks = self
            .call_all(servers, move |node, m| proto::MaskCheckRequest {
                meta: Some(m),
                session: session.to_vec(),
                commitments: commitments.as_ref().clone(),
                deals: sealed.get(&node).cloned().unwrap_or_default(),
            })
            .await;
        let mut all_checks = Vec::new();
        for (node, r) in checks {
            let reply = r?;
            self.wire.payloads(
                MessageKind::MaskCommitment,
                Direction::Sent,
                &commitments_sent,
            );
            if let Some(d) = sealed_sent.get(&node) {
                self.wire
                    .payloads(MessageKind::SealedMaskDeal, Direction::Sent, d);
            }
            self.wire
                .payloads(MessageKind::MaskCheck, Direction::Received, &reply.checks);
            all_checks.extend(reply.checks);
        }
        let checks_sent = all_checks.clone();
        let all_checks = std::sync::Arc::new(all_checks);
        let judged = self
            .call_all(servers, move |_, m| proto::MaskJudgeRequest {
                meta: Some(m),
                session: session.to_vec(),
                checks: all_checks.as_ref().clone(),
            })
            .await;
        let mut verdicts = BTreeSet::new();
        let mut confirmations = Vec::with_capacity(servers.len());
        for (node, r) in judged {
            let reply = r?;
            self.wire.payload(
                MessageKind::PoolConfirmation,
                Direction::Received,
                reply.confirmation.len(),
            );
            confirmations.push(reply.confirmation.clone());
            self.wire
                .payloads(MessageKind::MaskCheck, Direction::Sent, &checks_sent);
            if reply.masks != count {
                return Err(ClientError::Protocol(format!(
                    "node {node} judged a pool of {} masks, {count} were dealt",
                    reply.masks
                )));
            }
            verdicts.insert(reply.accepted);
        }
        let accepted = match verdicts.into_iter().collect::<Vec<_>>().as_slice() {
            [one] => one
                .iter()
                .map(|id| NodeId::new(*id))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ClientError::Protocol(format!("a judged dealer: {e}")))?,
            _ => {
                return Err(ClientError::Protocol(
                    "the servers accepted different dealers".into(),
                ));
            }
        };
        Ok((
            Pool::new(session, servers, count, confirmations.clone()),
            DealtMasks {
                servers: servers.to_vec(),
                masks: count,
                confirmations,
                accepted,
            },
        ))
    }

    /// `count` masks for one query among `servers`: from a pool if one has them (then a
    /// background dealing tops the pools up when they run low), else from a dealing of
    /// `max(count, pool size)` masks made now. The flag says whether the range is fresh.
    /// The caller reports the end of the query's distance step with
    /// [`ClusterClient::masks_used`].
    pub(crate) async fn reserve_masks(
        &self,
        servers: &[NodeId],
        count: u32,
    ) -> Result<(MaskRange, bool), ClientError> {
        let (reserved, released) = self.masks.reserve(servers, count);
        self.release(released);
        if let Some((range, left)) = reserved {
            if self.mask_pool > 0 && left < self.mask_pool / 2 {
                self.refill(servers);
            }
            return Ok((range, false));
        }
        let (pool, _) = self
            .deal_pool(
                servers,
                count.max(self.mask_pool),
                MaskKind::ZeroSum,
                Vec::new(),
            )
            .await?;
        let range = MaskRange {
            session: pool.session,
            first: 0,
        };
        self.masks.add(pool, count);
        Ok((range, true))
    }

    /// The distance step with masks of `range` is over (`failed`: without an answer).
    pub(crate) fn masks_used(&self, range: &MaskRange, failed: bool) {
        let released = self.masks.finish(range, failed);
        self.release(released);
    }

    /// Asks the servers, in the background, to drop pools this client will not use again.
    fn release(&self, pools: Vec<Release>) {
        if pools.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let this = self.clone();
        runtime.spawn(async move {
            for (session, servers) in pools {
                // Best effort: a server that misses it drops the pool when it expires.
                let _ = this
                    .call_all(&servers, move |_, m| proto::MaskReleaseRequest {
                        meta: Some(m),
                        session: session.to_vec(),
                    })
                    .await;
            }
        });
    }

    /// Deals a pool for `servers` in the background, unless one is being dealt already.
    fn refill(&self, servers: &[NodeId]) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if !self.masks.start_refill(servers) {
            return;
        }
        let this = self.clone();
        let servers = servers.to_vec();
        runtime.spawn(async move {
            // A failed refill is not an error of any search: the next search that finds no
            // masks deals them itself.
            if let Ok((pool, _)) = this
                .deal_pool(&servers, this.mask_pool, MaskKind::ZeroSum, Vec::new())
                .await
            {
                this.masks.add(pool, 0);
            }
            this.masks.end_refill(&servers);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn servers() -> Vec<NodeId> {
        NodeId::first(3).collect()
    }

    fn pool(session: u8, masks: u32) -> Pool {
        Pool::new([session; 32], &servers(), masks, Vec::new())
    }

    fn reserve(r: &MaskReserve, count: u32) -> Option<(MaskRange, u32)> {
        r.reserve(&servers(), count).0
    }

    #[test]
    fn ranges_are_handed_out_once_and_in_order() {
        let r = MaskReserve::default();
        assert!(reserve(&r, 1).is_none());
        r.add(pool(1, 10), 0);
        let (a, left) = reserve(&r, 4).unwrap();
        assert_eq!((a.first, left), (0, 6));
        let (b, left) = reserve(&r, 6).unwrap();
        assert_eq!((b.first, left), (4, 0));
        assert_eq!(a.session, b.session);
        assert!(reserve(&r, 1).is_none());
        // Another server set has no masks.
        let other: Vec<NodeId> = NodeId::first(4).skip(1).collect();
        r.add(pool(2, 5), 0);
        assert!(r.reserve(&other, 1).0.is_none());
        assert_eq!(r.left(&servers()), 5);
        // A failed query abandons its pool.
        let (c, _) = reserve(&r, 1).unwrap();
        assert_eq!(c.session, [2; 32]);
        assert_eq!(r.finish(&c, true), vec![([2; 32], servers())]);
        assert_eq!(r.left(&servers()), 0);
    }

    #[test]
    fn a_pool_too_short_for_a_query_is_released_once_no_query_holds_it() {
        let r = MaskReserve::default();
        r.add(pool(1, 5), 0);
        r.add(pool(2, 5), 0);
        let (a, _) = reserve(&r, 3).unwrap();
        assert_eq!(a.session, [1; 32]);
        // Pool 1 has 2 left, too few: it is abandoned, but `a` still uses it.
        let (reserved, released) = r.reserve(&servers(), 3);
        let (b, left) = reserved.unwrap();
        assert_eq!((b.session, b.first, left), ([2; 32], 0, 2));
        assert!(released.is_empty());
        assert_eq!(r.finish(&a, false), vec![([1; 32], servers())]);
        // A used-up pool is not released (the servers drop it themselves).
        let (reserved, _) = r.reserve(&servers(), 2);
        let (c, _) = reserved.unwrap();
        assert_eq!((c.session, c.first), ([2; 32], 3));
        assert!(r.finish(&b, false).is_empty());
        assert!(r.finish(&c, false).is_empty());
        assert!(reserve(&r, 1).is_none());
    }

    #[test]
    fn concurrent_reservations_never_overlap() {
        let r = std::sync::Arc::new(MaskReserve::default());
        r.add(pool(1, 1000), 0);
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let r = std::sync::Arc::clone(&r);
                std::thread::spawn(move || {
                    (0..25)
                        .filter_map(|_| reserve(&r, 5).map(|(m, _)| m.first))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut firsts: Vec<u32> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        firsts.sort_unstable();
        let expected: Vec<u32> = (0..200).map(|i| i * 5).collect();
        assert_eq!(firsts, expected);
    }
}
