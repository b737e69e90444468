//! Secure Hamming distance on secret-shared pHash bits (`docs/design.md#secure-ranking`): the
//! arithmetic of the secure ranking, sans-IO.
//!
//! * **Ingest** ([`share_hash_bits`]): the image owner Shamir-shares each of the 64 bits of
//!   a pHash over GF(2^61 − 1) with degree `t − 1`; node `j` keeps [`HashBitShares`].
//! * **Query**: the querier shares its own bits the same way, to a chosen set `S` of at least
//!   `2t − 1` nodes.
//! * **Distance shares** ([`distance_share`]): for each candidate, node `j` computes
//!   `d(j) = Σ_k x_k(j) + y_k(j) − 2·x_k(j)·y_k(j)`, a point of a polynomial `d` of degree
//!   `2t − 2` with `d(0)` = the Hamming distance (for bits `x, y ∈ {0,1}`,
//!   `x + y − 2xy = x ⊕ y`).
//! * **Re-randomisation** ([`masks`]): before it leaves the node, `d(j)` is masked with
//!   `z(j)`, where `z` is a random polynomial of degree `2t − 2` with `z(0) = 0`, the sum of
//!   zero-sharings every node of `S` dealt the others ahead of time. The querier then sees a
//!   uniformly random polynomial of degree `2t − 2` through `(0, distance)`: the distance and
//!   nothing else.
//!
//! **Why masking is necessary.** Unmasked, the coefficients of `d` above degree 0 mix the
//! stored sharing polynomials with the querier's. A querier that sends, for one bit `k`, the
//! sharing `y_k(x) = x` in one query and `y_k(x) = 0` in another learns `1 − 2·s_k` from the
//! difference of the opened linear coefficients: the stored bit `s_k`. The test
//! `secure_distance_leakage.rs` runs exactly this attack against an unmasked variant (which
//! recovers every bit) and against this protocol (which recovers none).
//!
//! * **Query validity** ([`query`]): before any distance share, the servers check together
//!   that the query shares encode bits and lie on one polynomial of degree `t − 1`; without
//!   it, a querier sharing `y_k = (1 − 2^k)/2` would open 60 stored bits in one query.
//! * **The protocol** as sans-IO states: the querier's ([`querier`]) and a server's
//!   ([`server`]), with one result type ([`SearchResult`]) and one error type
//!   ([`SearchError`]) whose culprits name nodes.
//!
//! What each party learns: a node sees shares of degree `t − 1` (of stored and query bits),
//! which `t − 1` nodes together cannot tell from random; the querier learns the distances of
//! its candidates (only images the servers listed for its tokens), nothing else about stored
//! bits.
//!
//! # References
//! * M. Ben-Or, S. Goldwasser, A. Wigderson, "Completeness Theorems for Non-Cryptographic
//!   Fault-Tolerant Distributed Computation", STOC 1988 (degree-`2t − 2` products and their
//!   re-randomisation).

pub mod error;
pub mod local;
pub mod masks;
pub mod messages;
pub mod open;
pub mod querier;
pub mod query;
pub mod rank;
pub mod server;
pub mod share_check;

pub use error::SearchError;
pub use querier::{Integrity, SearchResult};

use phr_sis::fp61::{Fp61, split_values_for};
use phr_sis::{ImageHash, NodeId, ParamsError, Threshold};
use rand::CryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Bits in a pHash.
pub const HASH_BITS: usize = 64;

/// Errors of the secure distance.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MpcError {
    /// Fewer nodes than a degree-`2t − 2` product needs.
    #[error("secure distance needs at least 2t − 1 = {needed} nodes, {got} given: {nodes:?}")]
    TooFewNodes {
        /// `2t − 1`.
        needed: usize,
        /// How many were given.
        got: usize,
        /// The nodes given.
        nodes: Vec<NodeId>,
    },
    /// The parameters cannot work.
    #[error("invalid parameters: {0}")]
    Params(String),
    /// A candidate's distance shares are too far off to decode: more nodes returned wrong
    /// shares than the answers can correct.
    #[error("distance shares from nodes {answered:?} cannot be decoded: {reason}")]
    TooManyWrongShares {
        /// The nodes that answered.
        answered: Vec<NodeId>,
        /// The decoder's explanation.
        reason: String,
    },
    /// The mask pool holds fewer masks than candidates.
    #[error("{needed} masks needed, {available} left in the pool")]
    MasksExhausted {
        /// Masks needed.
        needed: usize,
        /// Masks available.
        available: usize,
    },
    /// Masks asked for by position were used already, or lie beyond the pool: every mask is
    /// used once, so that no two answers share a mask.
    #[error("masks {first} to {} are used already or beyond the pool's {len}", first + count)]
    MasksUsed {
        /// The first mask asked for.
        first: usize,
        /// How many.
        count: usize,
        /// The pool's size.
        len: usize,
    },
    /// Too few dealers passed the check of their zero-sharings ([`masks::judge`]): with fewer
    /// than `t` accepted, all of them could be corrupt and the masks known to them.
    #[error(
        "only {} dealers' masks were accepted ({accepted:?}; rejected {rejected:?}), \
         {needed} needed",
        accepted.len()
    )]
    MasksRejected {
        /// The dealers accepted, sorted.
        accepted: Vec<NodeId>,
        /// The dealers rejected, sorted.
        rejected: Vec<NodeId>,
        /// `t`.
        needed: usize,
    },
    /// [`HashBitShares::repair`] was given fewer shares than the threshold.
    #[error(
        "repairing a bit share needs t = {needed} shares from distinct nodes, {} given: {given:?}",
        given.len()
    )]
    NotEnoughShares {
        /// `t`.
        needed: u8,
        /// The nodes whose shares were given.
        given: Vec<NodeId>,
    },
    /// [`HashBitShares::repair`] was given two shares of one node.
    #[error("node {0} appears more than once among the bit shares: each node is one point")]
    DuplicateShare(NodeId),
    /// [`HashBitShares::repair`] was given more than `t` shares, and some of them do not lie
    /// on the polynomials through the first `t`: at least one share is wrong.
    #[error(
        "the bit shares of nodes {disagreeing:?} do not lie on the polynomials through the \
         shares of nodes {used:?}: some share is wrong"
    )]
    InconsistentShares {
        /// The first `t` nodes, interpolated through.
        used: Vec<NodeId>,
        /// The further nodes whose shares disagree with them.
        disagreeing: Vec<NodeId>,
    },
}

impl From<ParamsError> for MpcError {
    fn from(e: ParamsError) -> MpcError {
        MpcError::Params(e.to_string())
    }
}

/// A node's shares of the 64 bits of one hash (bit 63 of the hash first, like the bands).
/// Zeroized on drop; `Debug` is redacted.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct HashBitShares(pub(crate) [Fp61; HASH_BITS]);

impl HashBitShares {
    /// The shares, bit 63 first.
    #[must_use]
    pub fn shares(&self) -> &[Fp61; HASH_BITS] {
        &self.0
    }

    /// Shares from their stored values.
    #[must_use]
    pub fn from_shares(shares: [Fp61; HASH_BITS]) -> HashBitShares {
        HashBitShares(shares)
    }

    /// `8 · 64` bytes, little-endian field elements (for the node's store).
    #[must_use]
    pub fn to_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        zeroize::Zeroizing::new(
            self.0
                .iter()
                .flat_map(|v| v.value().to_le_bytes())
                .collect(),
        )
    }

    /// Decodes [`HashBitShares::to_bytes`].
    ///
    /// # Errors
    /// `None` for a wrong length or a value that is not a canonical field element.
    #[must_use]
    pub fn from_bytes(bytes: &[u8]) -> Option<HashBitShares> {
        if bytes.len() != 8 * HASH_BITS {
            return None;
        }
        let mut out = [Fp61::ZERO; HASH_BITS];
        for (slot, chunk) in out.iter_mut().zip(bytes.chunks_exact(8)) {
            let word = u64::from_le_bytes(chunk.try_into().ok()?);
            *slot = Fp61::from_canonical(word)?;
        }
        Some(HashBitShares(out))
    }
}

impl HashBitShares {
    /// Recomputes node `index`'s shares of a hash's bits from other nodes' shares, for
    /// replacing a lost node: the 64 bits were shared with degree `t − 1` at `x = node id`
    /// ([`share_hash_bits`]), so the shares of any `t` distinct nodes determine every other
    /// node's by Lagrange interpolation at `x = index` over GF(2^61 − 1).
    ///
    /// The first `t` shares are interpolated through. Every further share is checked to lie
    /// on the same 64 polynomials, so with more than `t` shares a wrong one is detected (not
    /// corrected; give other shares to route around it). With exactly `t` nothing can be
    /// checked: a wrong share gives a wrong result. If `index` is among the shares given, the
    /// result equals its share (when the check passes).
    ///
    /// # Security
    /// `t` shares reveal the hash: run this only where the hash may be known (the owner's
    /// client), and send the result only to the replacement node. The arithmetic is constant
    /// time in the shares; ids and counts are public.
    ///
    /// # Errors
    /// [`MpcError::Params`] for `t = 0`; [`MpcError::DuplicateShare`] if a node appears twice;
    /// [`MpcError::NotEnoughShares`] with fewer than `t` shares;
    /// [`MpcError::InconsistentShares`] naming the extra shares that disagree.
    pub fn repair(
        shares: &[(NodeId, HashBitShares)],
        t: u8,
        index: NodeId,
    ) -> Result<HashBitShares, MpcError> {
        if t == 0 {
            return Err(MpcError::Params("threshold t = 0 is not allowed".into()));
        }
        let mut seen = [false; 256];
        for (id, _) in shares {
            if std::mem::replace(&mut seen[usize::from(id.get())], true) {
                return Err(MpcError::DuplicateShare(*id));
            }
        }
        if shares.len() < usize::from(t) {
            return Err(MpcError::NotEnoughShares {
                needed: t,
                given: shares.iter().map(|(id, _)| *id).collect(),
            });
        }
        let (basis, extra) = shares.split_at(usize::from(t));
        let ids: Vec<NodeId> = basis.iter().map(|(id, _)| *id).collect();
        let disagreeing: Vec<NodeId> = extra
            .iter()
            .filter(|(id, share)| interpolate_at(basis, *id) != *share)
            .map(|(id, _)| *id)
            .collect();
        if !disagreeing.is_empty() {
            return Err(MpcError::InconsistentShares {
                used: ids,
                disagreeing,
            });
        }
        Ok(interpolate_at(basis, index))
    }
}

/// `f_k(x)` for each of the 64 polynomials `f_k` of degree below `basis.len()` through the
/// points `(id, share_k)` of `basis` (distinct ids), by Lagrange interpolation.
fn interpolate_at(basis: &[(NodeId, HashBitShares)], x: NodeId) -> HashBitShares {
    let x = Fp61::from(x);
    let mut out = HashBitShares([Fp61::ZERO; HASH_BITS]);
    for (j, (xj, share)) in basis.iter().enumerate() {
        let xj = Fp61::from(*xj);
        let (num, den) = basis.iter().enumerate().filter(|&(m, _)| m != j).fold(
            (Fp61::ONE, Fp61::ONE),
            |(num, den), (_, (xm, _))| {
                let xm = Fp61::from(*xm);
                (num * (x - xm), den * (xj - xm))
            },
        );
        let lambda = num * den.inv();
        for (o, v) in out.0.iter_mut().zip(&share.0) {
            *o += lambda * *v;
        }
    }
    out
}

impl std::fmt::Debug for HashBitShares {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashBitShares(<redacted>)")
    }
}

/// The bits of a hash as field elements, bit 63 first.
fn bits(hash: ImageHash) -> [Fp61; HASH_BITS] {
    let mut out = [Fp61::ZERO; HASH_BITS];
    for (k, slot) in out.iter_mut().enumerate() {
        *slot = Fp61::from((hash.0 >> (63 - k)) & 1 == 1);
    }
    out
}

/// Shares the 64 bits of `hash` with degree `t − 1` among `nodes` (every node at ingest; the
/// chosen servers `S` at query time).
///
/// # Errors
/// [`MpcError::Params`] for `t = 0`, fewer than `t` nodes or a repeated node.
pub fn share_hash_bits<R: CryptoRng + ?Sized>(
    hash: ImageHash,
    t: u8,
    nodes: &[NodeId],
    rng: &mut R,
) -> Result<Vec<(NodeId, HashBitShares)>, MpcError> {
    let mut values = bits(hash);
    let shared =
        split_values_for(&values, t, nodes, rng).map_err(|e| MpcError::Params(e.to_string()));
    values.zeroize();
    Ok(shared?
        .into_iter()
        .map(|(id, mut v)| {
            let mut arr = [Fp61::ZERO; HASH_BITS];
            for (slot, x) in arr.iter_mut().zip(&v) {
                *slot = *x;
            }
            v.zeroize();
            (id, HashBitShares(arr))
        })
        .collect())
}

/// Node side: the (unmasked) share `d(j) = Σ_k x_k + y_k − 2·x_k·y_k` of the Hamming
/// distance between a stored hash and the query, from this node's shares of both.
///
/// Computed as `Σx + Σy − 2·Σ x·y` with one modular reduction per sum: the 64 products are
/// below 2^122 each, so they add up in a `u128` without overflow. Constant time.
#[must_use]
pub fn distance_share(stored: &HashBitShares, query: &HashBitShares) -> Fp61 {
    let mut sum: u128 = 0;
    let mut dot: u128 = 0;
    for (x, y) in stored.0.iter().zip(&query.0) {
        let (x, y) = (u128::from(x.value()), u128::from(y.value()));
        sum += x + y;
        dot += x * y;
    }
    let two = Fp61::from(2u8);
    reduce_u128(sum) - two * reduce_u128(dot)
}

/// A server's query shares prepared for many candidates: `d(j) = c + Σ_k x_k·w_k` with
/// `w_k = 1 − 2·y_k` and `c = Σ_k y_k` (the same value as [`distance_share`], which
/// computes `Σ x + y − 2xy` directly), so that each candidate costs 64 products and no
/// additions of query terms. Secret (derived from the query shares): zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PreparedQuery {
    weights: [u64; HASH_BITS],
    constant: Fp61,
}

impl PreparedQuery {
    /// Prepares `query` (one server's shares of the query bits).
    #[must_use]
    pub fn new(query: &HashBitShares) -> PreparedQuery {
        let two = Fp61::from(2u8);
        let mut weights = [0u64; HASH_BITS];
        let mut constant = Fp61::ZERO;
        for (w, y) in weights.iter_mut().zip(&query.0) {
            *w = (Fp61::ONE - two * *y).value();
            constant += *y;
        }
        PreparedQuery { weights, constant }
    }

    /// This server's (unmasked) distance share of one stored hash: equal to
    /// [`distance_share`]`(stored, query)`.
    ///
    /// Four independent `u128` accumulators keep the carry chains short; each takes 16
    /// products below 2^122, so none overflows. Constant time.
    #[must_use]
    pub fn distance_share(&self, stored: &HashBitShares) -> Fp61 {
        let (x, w) = (&stored.0, &self.weights);
        let (mut a, mut b, mut c, mut d) = (0u128, 0u128, 0u128, 0u128);
        for i in (0..HASH_BITS).step_by(4) {
            a += u128::from(x[i].value()) * u128::from(w[i]);
            b += u128::from(x[i + 1].value()) * u128::from(w[i + 1]);
            c += u128::from(x[i + 2].value()) * u128::from(w[i + 2]);
            d += u128::from(x[i + 3].value()) * u128::from(w[i + 3]);
        }
        reduce_u128(a) + reduce_u128(b) + reduce_u128(c) + reduce_u128(d) + self.constant
    }
}

impl std::fmt::Debug for PreparedQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PreparedQuery(<redacted>)")
    }
}

/// `v mod p` for any `u128` below 2^128 (constant time).
fn reduce_u128(v: u128) -> Fp61 {
    const P: u128 = phr_sis::fp61::P as u128;
    // v = hi·2^61 + lo ≡ hi + lo (mod p), twice: below 2^67 + 2^61, then below 2^62.
    let r = (v & P) + (v >> 61);
    let r = (r & P) + (r >> 61);
    Fp61::from_u64(u64::try_from(r).unwrap_or(u64::MAX))
}

/// Checks that `servers` can compute a secure distance for threshold `threshold`: at least
/// `2t − 1` distinct nodes.
///
/// # Errors
/// [`MpcError::TooFewNodes`] saying how many are needed and which were given.
pub fn check_servers(threshold: Threshold, servers: &[NodeId]) -> Result<(), MpcError> {
    let needed = usize::from(threshold.search_quorum());
    let mut distinct = servers.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() != servers.len() {
        return Err(MpcError::Params("a server is listed twice".into()));
    }
    if servers.len() < needed {
        return Err(MpcError::TooFewNodes {
            needed,
            got: servers.len(),
            nodes: servers.to_vec(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use phr_sis::fp61::lagrange_at_zero;
    use rand::{Rng, SeedableRng};

    fn node(i: u8) -> NodeId {
        NodeId::new(i).unwrap()
    }

    #[test]
    fn opened_distance_shares_give_the_hamming_distance() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
        for t in 2u8..=4 {
            let servers: Vec<NodeId> = (1..=2 * t - 1).map(node).collect();
            for _ in 0..20 {
                let (a, b) = (ImageHash(rng.random()), ImageHash(rng.random()));
                let sa = share_hash_bits(a, t, &servers, &mut rng).unwrap();
                let sb = share_hash_bits(b, t, &servers, &mut rng).unwrap();
                let d: Vec<Fp61> = sa
                    .iter()
                    .zip(&sb)
                    .map(|((_, x), (_, y))| distance_share(x, y))
                    .collect();
                let l = lagrange_at_zero(&servers).unwrap();
                let opened: Fp61 = l.iter().zip(&d).map(|(l, d)| *l * *d).sum();
                assert_eq!(opened, Fp61::from(a.hamming(b)));
            }
        }
    }

    #[test]
    fn lazy_reduction_equals_field_arithmetic() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(8);
        let max = HashBitShares([Fp61::from_u64(phr_sis::fp61::P - 1); HASH_BITS]);
        let reference = |a: &HashBitShares, b: &HashBitShares| -> Fp61 {
            let two = Fp61::from(2u8);
            a.0.iter()
                .zip(&b.0)
                .map(|(x, y)| *x + *y - two * *x * *y)
                .sum()
        };
        assert_eq!(distance_share(&max, &max), reference(&max, &max));
        for _ in 0..200 {
            let mut a = [Fp61::ZERO; HASH_BITS];
            let mut b = [Fp61::ZERO; HASH_BITS];
            for (x, y) in a.iter_mut().zip(&mut b) {
                *x = Fp61::random(&mut rng);
                *y = Fp61::random(&mut rng);
            }
            let (a, b) = (HashBitShares(a), HashBitShares(b));
            assert_eq!(distance_share(&a, &b), reference(&a, &b));
        }
    }

    #[test]
    fn prepared_query_equals_the_direct_share() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
        let max = HashBitShares([Fp61::from_u64(phr_sis::fp61::P - 1); HASH_BITS]);
        assert_eq!(
            PreparedQuery::new(&max).distance_share(&max),
            distance_share(&max, &max)
        );
        for _ in 0..200 {
            let mut a = [Fp61::ZERO; HASH_BITS];
            let mut b = [Fp61::ZERO; HASH_BITS];
            for (x, y) in a.iter_mut().zip(&mut b) {
                *x = Fp61::random(&mut rng);
                *y = Fp61::random(&mut rng);
            }
            let (a, b) = (HashBitShares(a), HashBitShares(b));
            assert_eq!(
                PreparedQuery::new(&b).distance_share(&a),
                distance_share(&a, &b)
            );
        }
    }

    #[test]
    fn too_few_servers_is_an_error_naming_them() {
        let th = Threshold::new(3, 5).unwrap();
        let e = check_servers(th, &[node(1), node(2), node(4), node(5)]).unwrap_err();
        assert!(matches!(
            e,
            MpcError::TooFewNodes {
                needed: 5,
                got: 4,
                ..
            }
        ));
        assert!(e.to_string().contains("2t − 1 = 5"), "{e}");
        assert!(check_servers(th, &[node(1), node(1), node(2), node(3), node(4)]).is_err());
        assert!(check_servers(th, &[node(1), node(2), node(3), node(4), node(5)]).is_ok());
    }

    #[test]
    fn bit_shares_round_trip_and_redact() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(6);
        let s = share_hash_bits(ImageHash(7), 2, &[node(1), node(2)], &mut rng).unwrap();
        let b = s[0].1.to_bytes();
        assert_eq!(
            HashBitShares::from_bytes(&b).unwrap().shares(),
            s[0].1.shares()
        );
        assert!(HashBitShares::from_bytes(&b[1..]).is_none());
        assert_eq!(format!("{:?}", s[0].1), "HashBitShares(<redacted>)");
    }
}

#[cfg(test)]
mod repair_tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn node(i: u8) -> NodeId {
        NodeId::new(i).unwrap()
    }

    fn deal(hash: ImageHash, t: u8, n: u8, seed: u64) -> Vec<(NodeId, HashBitShares)> {
        let nodes: Vec<NodeId> = (1..=n).map(node).collect();
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        share_hash_bits(hash, t, &nodes, &mut rng).unwrap()
    }

    #[test]
    fn a_dropped_bit_share_is_repaired_exactly() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        for (t, n) in [(1u8, 1u8), (1, 3), (2, 3), (2, 5), (3, 5), (4, 7), (5, 5)] {
            for _ in 0..5 {
                let hash = ImageHash(rng.random());
                let shares = deal(hash, t, n, rng.random());
                for lost in 1..=n {
                    let want = &shares[usize::from(lost) - 1].1;
                    let mut rest: Vec<(NodeId, HashBitShares)> = shares
                        .iter()
                        .filter(|(id, _)| id.get() != lost)
                        .cloned()
                        .collect();
                    if rest.len() < usize::from(t) {
                        // t = n: the others cannot determine it.
                        assert!(matches!(
                            HashBitShares::repair(&rest, t, node(lost)),
                            Err(MpcError::NotEnoughShares { .. })
                        ));
                        continue;
                    }
                    // From all the others (the extras checked), from the last t, reversed.
                    let all = HashBitShares::repair(&rest, t, node(lost)).unwrap();
                    assert_eq!(&all, want, "{t}-of-{n}, lost {lost}");
                    rest.reverse();
                    rest.truncate(usize::from(t));
                    let some = HashBitShares::repair(&rest, t, node(lost)).unwrap();
                    assert_eq!(&some, want, "{t}-of-{n}, lost {lost}");
                }
                // The opened bits are the hash's (the repaired share is a real share).
                let ids: Vec<NodeId> = shares.iter().map(|(id, _)| *id).collect();
                let l = phr_sis::fp61::lagrange_at_zero(&ids[..usize::from(t)]).unwrap();
                for k in 0..HASH_BITS {
                    let bit: Fp61 = l.iter().zip(&shares).map(|(l, (_, s))| *l * s.0[k]).sum();
                    assert_eq!(bit, Fp61::from((hash.0 >> (63 - k)) & 1 == 1));
                }
            }
        }
    }

    #[test]
    fn repair_at_a_given_node_returns_its_share() {
        let shares = deal(ImageHash(0xDEAD_BEEF), 3, 6, 2);
        let got = HashBitShares::repair(&shares[1..4], 3, node(3)).unwrap();
        assert_eq!(got, shares[2].1);
    }

    #[test]
    fn a_tampered_extra_share_is_detected_and_named() {
        let shares = deal(ImageHash(0x0123_4567_89AB_CDEF), 3, 6, 3);
        let mut given: Vec<(NodeId, HashBitShares)> = shares[1..].to_vec();
        given[4].1.0[17] += Fp61::ONE; // node 6
        given[3].1.0[0] += Fp61::from(5u8); // node 5
        let e = HashBitShares::repair(&given, 3, node(1)).unwrap_err();
        assert_eq!(
            e,
            MpcError::InconsistentShares {
                used: vec![node(2), node(3), node(4)],
                disagreeing: vec![node(5), node(6)],
            }
        );
        assert!(
            e.to_string().contains("do not lie on the polynomials"),
            "{e}"
        );
        // A tampered share among the first t is detected by the honest extras.
        let mut given: Vec<(NodeId, HashBitShares)> = shares[1..].to_vec();
        given[0].1.0[63] += Fp61::ONE;
        assert!(matches!(
            HashBitShares::repair(&given, 3, node(1)),
            Err(MpcError::InconsistentShares { .. })
        ));
        // Routed around by leaving it out.
        assert_eq!(
            HashBitShares::repair(&given[1..], 3, node(1)).unwrap(),
            shares[0].1
        );
    }

    #[test]
    fn duplicates_too_few_and_zero_threshold_are_errors() {
        let shares = deal(ImageHash(42), 3, 5, 4);
        let mut dup = shares[..3].to_vec();
        dup.push(shares[1].clone());
        assert_eq!(
            HashBitShares::repair(&dup, 3, node(5)),
            Err(MpcError::DuplicateShare(node(2)))
        );
        // A duplicate id with different values is refused too, even within the first t.
        let mut dup = shares[..2].to_vec();
        dup.push((node(1), shares[2].1.clone()));
        assert_eq!(
            HashBitShares::repair(&dup, 3, node(5)),
            Err(MpcError::DuplicateShare(node(1)))
        );
        let e = HashBitShares::repair(&shares[..2], 3, node(5)).unwrap_err();
        assert_eq!(
            e,
            MpcError::NotEnoughShares {
                needed: 3,
                given: vec![node(1), node(2)],
            }
        );
        assert!(e.to_string().contains("t = 3"), "{e}");
        assert!(matches!(
            HashBitShares::repair(&[], 1, node(1)),
            Err(MpcError::NotEnoughShares { .. })
        ));
        assert!(matches!(
            HashBitShares::repair(&shares, 0, node(1)),
            Err(MpcError::Params(_))
        ));
        // Node 0 (the hash itself) cannot be asked for: no NodeId names it.
        assert!(NodeId::new(0).is_err());
    }
}
