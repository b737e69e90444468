//! Re-randomisation masks: random zero-sharings of degree `2t − 2`, dealt by the nodes to
//! each other ahead of time, so that no dealer is needed and no node knows the sum.
//!
//! For a fixed server set `S`, every node `i ∈ S` deals, for each future candidate, a random
//! polynomial `g_i` of degree `2t − 2` with `g_i(0) = 0` and sends `g_i(j)` to every `j ∈ S`
//! ([`deal_zero_sharings`]). Node `j`'s mask for that candidate is `z(j) = Σ_i g_i(j)`
//! ([`MaskPool`]). `z` is a uniformly random zero-sharing of degree `2t − 2` as soon as one
//! dealer is honest, and any `t − 1` nodes learn nothing about it beyond their own points.
//! The querier receives `d(j) + z(j)` and can open the constant term only.
//!
//! **Checked dealing** ([`check`]): a cheating dealer with `g_i(0) = c ≠ 0` would shift every
//! distance by `c`, so the dealing is verifiable, like the DKG's shares. Each dealer commits
//! to its points ([`MaskCommitment`], one salted digest per recipient), deals `K` mask
//! sharings plus [`CHECKS`] *blinding* sharings ([`deal_checked`], [`MaskDeal`]); each recipient
//! checks its deal and broadcasts [`CHECKS`] random linear combinations of its points, blinded
//! ([`MaskDeal::verify`], [`MaskCheck`]); every server decodes those as a Reed–Solomon
//! codeword of degree `2t − 2` and accepts the dealer iff it decodes with constant term 0
//! ([`judge`], [`Verdict`]), naming the servers off the codeword. A node's pool sums the
//! masks of the dealers accepted with no server named only ([`Verdict::is_clean`]: the same
//! dealers at every server), and needs at least `t` of them
//! ([`MaskPool::from_checked_deals`], [`MpcError::MasksRejected`]), so that with at most
//! `t − 1` corrupt nodes one honest dealer contributes and the masks stay uniformly random.
//! The blinding sharings are dropped. Soundness error `≈ (K/p)^CHECKS` per commitment
//! (Schwartz–Zippel, independent challenges);
//! with exactly `2t − 1` servers only the constant term can be tested.
//! [`deal_zero_sharings`] and [`MaskPool::from_deals`] remain the unchecked building blocks.
//!
//! Every server must use the same mask for the same candidate, and masks dealt for one server
//! set are only valid for that set. A pool serves many queries: each query names the first
//! mask of its range ([`MaskPool::take_at`]; candidates sorted by image id take consecutive
//! masks), and a pool hands out every mask once, so that no two answers share a mask (two
//! answers masked alike would give away the difference of their distance polynomials). The
//! masks are secret: the pool zeroizes each when it hands it out or drops it, and so does a
//! [`MaskDeal`].

use std::collections::{BTreeMap, BTreeSet};

use phr_sis::NodeId;
use phr_sis::fp61::Fp61;
use rand::CryptoRng;
use zeroize::Zeroize;

use super::{HashBitShares, MpcError, PreparedQuery};

pub mod check;
pub mod confirm;
pub mod session;

pub use check::{
    CHECKS, MAX_MASKS, MaskCheck, MaskCommitment, MaskDeal, Rejection, Verdict, deal_checked,
    deal_from_values, judge,
};

/// What a checked dealing deals: the search's zero-sharings, or the scrub's random sharings.
/// The kind is part of the order, the commitment (so of the challenges) and the pool, and
/// each use takes only the pools of its own kind: a zero-sharing of degree `2t − 2` added to
/// a degree-`t − 1` combination of bit shares would reveal that combination's secret, and a
/// random sharing added to a distance share would shift the distance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum MaskKind {
    /// Zero-sharings of degree `2t − 2` (constant term 0): the secure ranking's masks, for
    /// at least `2t − 1` servers.
    #[default]
    ZeroSum,
    /// Sharings of a uniformly random secret, of degree `t − 1`: the masks of the scrub's
    /// bit-share check ([`crate::mpc::share_check`]), for at least `t + 1` servers (with `t`
    /// any `t` points fit, and nothing could be checked).
    Random,
}

impl MaskKind {
    /// The sharings' degree for threshold `t ≥ 1`.
    #[must_use]
    pub fn degree(self, t: u8) -> usize {
        let t = usize::from(t.max(1));
        match self {
            MaskKind::ZeroSum => 2 * t - 2,
            MaskKind::Random => t - 1,
        }
    }

    /// The fewest servers a dealing of this kind serves: `2t − 1`, or `t + 1`.
    #[must_use]
    pub fn min_servers(self, t: u8) -> usize {
        match self {
            MaskKind::ZeroSum => self.degree(t) + 1,
            MaskKind::Random => self.degree(t) + 2,
        }
    }

    /// Whether the constant term is fixed at 0 (and checked to be).
    #[must_use]
    pub fn zero_constant(self) -> bool {
        matches!(self, MaskKind::ZeroSum)
    }

    /// The byte on the wire.
    #[must_use]
    pub fn to_byte(self) -> u8 {
        match self {
            MaskKind::ZeroSum => 0,
            MaskKind::Random => 1,
        }
    }

    /// The kind of a wire byte, if any.
    #[must_use]
    pub fn from_byte(b: u8) -> Option<MaskKind> {
        match b {
            0 => Some(MaskKind::ZeroSum),
            1 => Some(MaskKind::Random),
            _ => None,
        }
    }
}

/// Bytes on the wire of one checked dealing among `servers` servers for `count` masks,
/// relayed by the client as a deployment does ([`session`]), from the encoded sizes of its
/// messages, each counted on both hops: the order to every server; every dealer's signed
/// commitment to the client and from it to every server; every sealed deal to the client
/// and on to its recipient; every server's signed check of every dealer to the client, and
/// every check to every server; every server's signed confirmation to the client, and every
/// confirmation to every server (with the pool's first use).
#[must_use]
pub fn offline_bytes(servers: usize, count: usize) -> usize {
    let m = servers;
    let others = m.saturating_sub(1);
    m * session::MaskOrder::encoded_len(m)
        + (m + m * m) * session::SignedMaskCommitment::encoded_len(m)
        + 2 * m * others * session::SealedMaskDeal::encoded_len(count)
        + (m * m + m * m * m) * session::SignedMaskCheck::ENCODED_LEN
        + (m + m * m) * confirm::SignedPoolConfirmation::ENCODED_LEN
}

/// One dealer's zero-sharings for `count` candidates: `g_c(j)` for every server `j` and
/// candidate `c` (random `g_c` of degree `degree` with `g_c(0) = 0`).
pub fn deal_zero_sharings<R: CryptoRng + ?Sized>(
    servers: &[NodeId],
    degree: usize,
    count: usize,
    rng: &mut R,
) -> BTreeMap<NodeId, Vec<Fp61>> {
    let mut out: BTreeMap<NodeId, Vec<Fp61>> = servers
        .iter()
        .map(|j| (*j, Vec::with_capacity(count)))
        .collect();
    let mut coefficients = vec![Fp61::ZERO; degree];
    for _ in 0..count {
        for c in &mut coefficients {
            *c = Fp61::random(rng);
        }
        for (j, values) in &mut out {
            let x = Fp61::from(*j);
            // Horner without a constant term: ((c_D·x + c_{D−1})·x + … + c_1)·x.
            let v = coefficients
                .iter()
                .rev()
                .fold(Fp61::ZERO, |acc, c| acc * x + *c)
                * x;
            values.push(v);
        }
    }
    coefficients.zeroize();
    out
}

/// One dealer's sharings of `kind` for `count` masks: per server, its points (see
/// [`deal_zero_sharings`]; a [`MaskKind::Random`] sharing has a uniformly random constant term).
pub fn deal_sharings<R: CryptoRng + ?Sized>(
    servers: &[NodeId],
    kind: MaskKind,
    t: u8,
    count: usize,
    rng: &mut R,
) -> BTreeMap<NodeId, Vec<Fp61>> {
    let degree = kind.degree(t);
    match kind {
        MaskKind::ZeroSum => deal_zero_sharings(servers, degree, count, rng),
        MaskKind::Random => {
            // A random polynomial of degree `t − 1` is a zero-sharing of that degree plus a
            // random constant: the same points, each shifted by it.
            let mut out = deal_zero_sharings(servers, degree, count, rng);
            let mut constants: Vec<Fp61> = (0..count).map(|_| Fp61::random(rng)).collect();
            for values in out.values_mut() {
                for (v, c) in values.iter_mut().zip(&constants) {
                    *v += *c;
                }
            }
            constants.zeroize();
            out
        }
    }
}

/// A node's masks for one server set, by position; each is handed out once. Zeroized on
/// drop.
#[derive(Default)]
pub struct MaskPool {
    kind: MaskKind,
    masks: Vec<Fp61>,
    used: Vec<bool>,
    /// Where [`MaskPool::take`] goes on: past every range handed out.
    next: usize,
    /// Masks not handed out.
    left: usize,
}

impl MaskPool {
    /// The pool from every dealer's values for this node (`Σ_i g_i(j)` per candidate).
    ///
    /// # Errors
    /// [`MpcError::Params`] if the dealers sent different numbers of values.
    pub fn from_deals(deals: &[&[Fp61]]) -> Result<MaskPool, MpcError> {
        let len = deals.first().map_or(0, |d| d.len());
        if deals.iter().any(|d| d.len() != len) {
            return Err(MpcError::Params(
                "zero-sharing deals of different lengths".into(),
            ));
        }
        let masks = (0..len)
            .map(|c| deals.iter().filter_map(|d| d.get(c)).copied().sum())
            .collect();
        Ok(MaskPool::new(MaskKind::ZeroSum, masks))
    }

    /// Node `node`'s pool from the checked dealing of one session: the verdicts of every
    /// dealer ([`judge`], the same at every server since they judge the same broadcast data)
    /// and the deals `node` received (verified with [`MaskDeal::verify`]). Only the masks of
    /// dealers accepted with no server named ([`Verdict::is_clean`]) are summed, so every
    /// server sums the same dealers and no dealer can leave one server's masks off; the
    /// blinding sharings are dropped.
    ///
    /// # Errors
    /// [`MpcError::MasksRejected`] unless at least `t` dealers were accepted clean (so at
    /// least one honest dealer contributes when at most `t − 1` are corrupt); the others are
    /// listed as rejected. [`MpcError::Params`] for
    /// verdicts of different sessions or counts, a dealer judged twice, or a deal that is
    /// not `node`'s, of another session, or of the wrong length.
    pub fn from_checked_deals(
        node: NodeId,
        verdicts: &[Verdict],
        deals: &[MaskDeal],
        t: u8,
    ) -> Result<MaskPool, MpcError> {
        let session = verdicts.first().map(Verdict::session);
        let mut accepted: BTreeMap<NodeId, u32> = BTreeMap::new();
        let mut rejected = Vec::new();
        let kind = verdicts.first().map_or(MaskKind::ZeroSum, Verdict::kind);
        for v in verdicts {
            if Some(v.session()) != session {
                return Err(MpcError::Params("verdicts of different sessions".into()));
            }
            if v.kind() != kind {
                return Err(MpcError::Params("verdicts of different kinds".into()));
            }
            if accepted.contains_key(&v.dealer()) || rejected.contains(&v.dealer()) {
                return Err(MpcError::Params(format!(
                    "dealer {} judged twice",
                    v.dealer()
                )));
            }
            match v {
                Verdict::Accepted { dealer, count, .. } if v.is_clean() => {
                    accepted.insert(*dealer, *count);
                }
                _ => rejected.push(v.dealer()),
            }
        }
        if accepted.len() < usize::from(t) || t == 0 {
            rejected.sort_unstable();
            return Err(MpcError::MasksRejected {
                accepted: accepted.into_keys().collect(),
                rejected,
                needed: usize::from(t),
            });
        }
        let mut counts = accepted.values().copied();
        let count = counts.next().unwrap_or(0);
        if counts.any(|c| c != count) {
            return Err(MpcError::Params(
                "accepted dealers dealt different numbers of masks".into(),
            ));
        }
        let mut masks = vec![Fp61::ZERO; count as usize];
        let mut used = BTreeSet::new();
        for d in deals {
            if d.recipient() != node || Some(d.session()) != session {
                return Err(MpcError::Params(format!(
                    "a deal from {} is not {node}'s of this session",
                    d.dealer()
                )));
            }
            if !accepted.contains_key(&d.dealer()) {
                continue;
            }
            if !used.insert(d.dealer()) {
                return Err(MpcError::Params(format!("two deals from {}", d.dealer())));
            }
            if d.masks().len() != count as usize {
                return Err(MpcError::Params(format!(
                    "dealer {}'s deal holds {} masks, not {count}",
                    d.dealer(),
                    d.masks().len()
                )));
            }
            for (m, v) in masks.iter_mut().zip(d.masks()) {
                *m += *v;
            }
        }
        if let Some(dealer) = accepted.keys().find(|d| !used.contains(*d)) {
            return Err(MpcError::Params(format!(
                "no deal from dealer {dealer}, whose masks every other server uses"
            )));
        }
        Ok(MaskPool::new(kind, masks))
    }

    fn new(kind: MaskKind, masks: Vec<Fp61>) -> MaskPool {
        MaskPool {
            kind,
            used: vec![false; masks.len()],
            next: 0,
            left: masks.len(),
            masks,
        }
    }

    /// What the pool's masks share: zero ([`MaskKind::ZeroSum`]) or a random secret.
    #[must_use]
    pub fn kind(&self) -> MaskKind {
        self.kind
    }

    /// Refuses a pool of another kind than `wanted` (before any mask is taken).
    ///
    /// # Errors
    /// [`MpcError::Params`] naming both kinds.
    pub fn expect_kind(&self, wanted: MaskKind) -> Result<(), MpcError> {
        if self.kind == wanted {
            Ok(())
        } else {
            Err(MpcError::Params(format!(
                "these masks are {:?} sharings, this use needs {wanted:?} ones",
                self.kind
            )))
        }
    }

    /// Masks not handed out yet.
    #[must_use]
    pub fn len(&self) -> usize {
        self.left
    }

    /// Whether every mask was handed out.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.left == 0
    }

    /// The pool's size: masks dealt, used or not.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.masks.len()
    }

    /// The next `n` masks, after every range handed out so far.
    ///
    /// # Errors
    /// [`MpcError::MasksExhausted`] if fewer than `n` are left there (none is taken then).
    pub fn take(&mut self, n: usize) -> Result<Vec<Fp61>, MpcError> {
        let available = self.masks.len() - self.next;
        if n > available {
            return Err(MpcError::MasksExhausted {
                needed: n,
                available,
            });
        }
        self.take_at(self.next, n)
    }

    /// Masks `first .. first + n`, each handed out once.
    ///
    /// # Errors
    /// [`MpcError::MasksUsed`] if any of them was handed out already or lies beyond the pool
    /// (none is taken then).
    pub fn take_at(&mut self, first: usize, n: usize) -> Result<Vec<Fp61>, MpcError> {
        let used = MpcError::MasksUsed {
            first,
            count: n,
            len: self.masks.len(),
        };
        let end = first.checked_add(n).ok_or_else(|| used.clone())?;
        match self.used.get(first..end) {
            Some(range) if !range.contains(&true) => {}
            _ => return Err(used),
        }
        let mut out = Vec::with_capacity(n);
        for (mask, used) in self.masks[first..end]
            .iter_mut()
            .zip(&mut self.used[first..end])
        {
            out.push(*mask);
            mask.zeroize();
            *used = true;
        }
        self.left -= n;
        self.next = self.next.max(end);
        Ok(out)
    }
}

impl Drop for MaskPool {
    fn drop(&mut self) {
        for m in &mut self.masks {
            m.zeroize();
        }
    }
}

impl std::fmt::Debug for MaskPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MaskPool({} masks, <redacted>)", self.masks.len())
    }
}

/// Node side: the masked distance share `d_c(j) + z_c(j)` of every candidate `c` (in the
/// order given, which must be the same at every server), consuming one mask per candidate.
///
/// # Errors
/// [`MpcError::MasksExhausted`] if the pool has fewer masks than candidates.
pub fn masked_distance_shares(
    candidates: &[&HashBitShares],
    query: &HashBitShares,
    pool: &mut MaskPool,
) -> Result<Vec<Fp61>, MpcError> {
    pool.expect_kind(MaskKind::ZeroSum)?;
    let masks = pool.take(candidates.len())?;
    Ok(mask_distance_shares(candidates, query, masks))
}

/// `d_c(j) + z_c(j)` for every candidate `c` and its mask `z_c` (the masks are zeroized).
pub(crate) fn mask_distance_shares(
    candidates: &[&HashBitShares],
    query: &HashBitShares,
    masks: Vec<Fp61>,
) -> Vec<Fp61> {
    let prepared = PreparedQuery::new(query);
    candidates
        .iter()
        .zip(masks)
        .map(|(stored, mut z)| {
            let v = prepared.distance_share(stored) + z;
            z.zeroize();
            v
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use phr_sis::fp61::lagrange_at_zero;
    use rand::SeedableRng;

    #[test]
    fn each_mask_is_handed_out_once() {
        let values: Vec<Fp61> = (1..=6).map(Fp61::from_u64).collect();
        let mut pool = MaskPool::from_deals(&[&values]).unwrap();
        assert_eq!((pool.len(), pool.capacity()), (6, 6));
        assert_eq!(pool.take_at(2, 2).unwrap(), values[2..4]);
        // Used, overlapping, or beyond the pool: refused, and nothing is taken.
        for (first, n) in [(2, 1), (3, 2), (1, 2), (5, 2), (7, 0), (usize::MAX, 2)] {
            assert!(
                matches!(pool.take_at(first, n), Err(MpcError::MasksUsed { .. })),
                "{first} + {n}"
            );
        }
        assert_eq!(pool.len(), 4);
        // `take` goes on after the last range handed out; the holes stay available.
        assert_eq!(pool.take(2).unwrap(), values[4..6]);
        assert!(matches!(
            pool.take(1),
            Err(MpcError::MasksExhausted {
                needed: 1,
                available: 0
            })
        ));
        assert_eq!(pool.take_at(0, 2).unwrap(), values[0..2]);
        assert!(pool.is_empty());
        assert!(pool.take_at(0, 1).is_err());
        assert_eq!(pool.take_at(6, 0).unwrap(), Vec::<Fp61>::new());
    }

    #[test]
    fn summed_deals_are_zero_sharings() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let servers: Vec<NodeId> = NodeId::first(5).collect();
        let deals: Vec<BTreeMap<NodeId, Vec<Fp61>>> = servers
            .iter()
            .map(|_| deal_zero_sharings(&servers, 4, 10, &mut rng))
            .collect();
        let mut pools: Vec<MaskPool> = servers
            .iter()
            .map(|j| {
                let mine: Vec<&[Fp61]> = deals.iter().map(|d| d[j].as_slice()).collect();
                MaskPool::from_deals(&mine).unwrap()
            })
            .collect();
        let l = lagrange_at_zero(&servers).unwrap();
        for _ in 0..10 {
            let z: Vec<Fp61> = pools.iter_mut().map(|p| p.take(1).unwrap()[0]).collect();
            assert_eq!(
                l.iter().zip(&z).map(|(l, z)| *l * *z).sum::<Fp61>(),
                Fp61::ZERO
            );
            assert!(z.iter().any(|v| *v != Fp61::ZERO));
        }
        assert!(matches!(
            pools[0].take(1),
            Err(MpcError::MasksExhausted {
                needed: 1,
                available: 0
            })
        ));
        let short = [Fp61::ONE];
        assert!(MaskPool::from_deals(&[&short, &[]]).is_err());
    }
}
