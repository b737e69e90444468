//! The scrub's masked check of the stored bit shares: every server's shares of an image's
//! 64 hash bits must lie on polynomials of degree `t − 1` (as [`super::share_hash_bits`]
//! dealt them), and the check finds the (server, image) pairs off them without revealing a
//! bit, a share or a hash to the client or to any `t − 1` servers.
//!
//! 1. **Masks.** The servers run a checked dealing of [`MaskKind::Random`] sharings among
//!    themselves ([`super::masks::session`]) whose order binds one image id to each mask:
//!    each server's pool then holds its points of `K` sharings `M_c` of degree `t − 1` whose
//!    constant terms are uniformly random and known to nobody, as long as one of the `t` or
//!    more dealers summed is honest. Every server confirms the same order and dealers before
//!    the pool serves ([`super::masks::confirm`]).
//! 2. **Order** ([`ShareCheckOrder`]): the client names the pool, the first mask of the range
//!    it uses, and the images (ascending, distinct, at most [`MAX_CHECK_IDS`]); a node answers
//!    only if they are the ids its dealing bound to that range, so every server answers for
//!    the same image with the same mask.
//! 3. **Answer** ([`answer`], each server `j`): for every image `c` it holds, with bit shares
//!    `b_{c,k}(j)`, `y_c(j) = Σ_k ρ_c^{k+1}·b_{c,k}(j) + M_c(j)`, where `ρ_c` is SHA-256 over a
//!    label, the pool's session and the image id ([`challenge`]); for an image it does not
//!    hold, nothing. It takes one mask per image of the order either way, from its pool,
//!    which hands every mask out once.
//! 4. **Judge** ([`judge`], the client): for every image, the values of the servers that hold
//!    it are decoded as a Reed–Solomon codeword of degree `t − 1`. A server off the codeword
//!    is named; an image whose values are no codeword within the correctable distance is
//!    reported undecided; one held by fewer than `t + 1` servers cannot be checked.
//!
//! **Why it finds a wrong share.** If server `j`'s bit shares of image `c` are off by
//! `e_k` (any `e ≠ 0`), its value is off by `Σ_k ρ_c^{k+1}·e_k`, a non-zero polynomial of
//! degree 64 in `ρ_c`: zero for at most 64 of the `p ≈ 2^61` values of `ρ_c`. The other
//! servers' values still lie on the codeword `Σ_k ρ_c^{k+1}·b_{c,k} + M_c`, so with `m`
//! holders up to `⌊(m − t)/2⌋` wrong servers are corrected and named (one for `m = t + 2`).
//!
//! **Why it reveals nothing.** `M_c` is a uniform polynomial of degree `t − 1`, so
//! `y_c = Σ_k ρ_c^{k+1}·b_{c,k} + M_c` is one too, whatever the bits: the client sees a
//! random codeword (or a random codeword plus the errors, which depend on the errors only).
//! `t − 1` servers with the client know their own points of `M_c` and of the bit shares; the
//! constant term of `M_c` stays uniform to them, and so do the combination's secret and the
//! other servers' shares. This needs every server to mask image `c` with the same `M_c`
//! (the bound ids and the confirmation see to it: a relay that asked one node about a known
//! image and the others about a target with the same mask could solve for the target's
//! combination). Each mask is used once: a second order for the same range is refused by
//! the pool ([`MaskPool::take_at`]), and a mask of the search's kind (a zero-sharing, which
//! would reveal the combination) is refused by [`answer`].
//!
//! **Against whom.** The client here is the cluster's admin, which can already export any
//! node's records (a repair needs them); the check reveals it nothing more. What it keeps
//! from the admin's output, logs and transcripts is every bit: a scrub's report names
//! (node, image) pairs only.
//!
//! **What it does not check.** That each shared value is a bit (0 or 1): a consistent
//! sharing of 2 passes. And a server that lies in its answer can make its own shares look
//! right or an image look undecided; what it cannot do is make another server's good shares
//! look wrong while at most `⌊(m − t)/2⌋` servers are off the codeword.

use std::collections::BTreeSet;

use phr_sis::fp61::Fp61;
use phr_sis::fp61::reed_solomon::{DecodeError, decode};
use phr_sis::{ImageId, NodeId};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::masks::{MaskKind, MaskPool};
use super::messages::SessionId;
use super::{HashBitShares, MpcError, reduce_u128};
use crate::wire::{MessageKind, Reader, WireError, Writer};

/// The most images one order checks.
pub const MAX_CHECK_IDS: usize = 4096;

const CHALLENGE_LABEL: &[u8] = b"dealer-free-sis/mpc/share-check/v1";

/// The client's order to every server: check the bit shares of `ids` with masks
/// `first_mask ..` of the random-mask pool `mask_session`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareCheckOrder {
    /// The pool's dealing session ([`MaskKind::Random`]).
    pub mask_session: SessionId,
    /// The first mask of the range (one mask per image, in order).
    pub first_mask: u32,
    /// The images, strictly ascending, 1 to [`MAX_CHECK_IDS`].
    pub ids: Vec<ImageId>,
}

/// One server's answer to a [`ShareCheckOrder`]: per image of the order, its masked check
/// value, or `None` for an image it does not hold. Public (masked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareCheckAnswer {
    /// The pool's dealing session.
    pub mask_session: SessionId,
    /// The first mask of the range.
    pub first_mask: u32,
    /// The server that answered.
    pub node: NodeId,
    /// One entry per image of the order, in its order.
    pub values: Vec<Option<Fp61>>,
}

/// What the check found for one image.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShareFinding {
    /// These servers' bit shares are off the codeword the others agree on.
    OffCodeword {
        /// The image.
        id: ImageId,
        /// The servers named, ascending.
        nodes: Vec<NodeId>,
    },
    /// The values are no codeword within the correctable distance: more servers are off
    /// than the holders can outvote, and none can be named.
    Undecided {
        /// The image.
        id: ImageId,
        /// The servers that hold it, ascending.
        holders: Vec<NodeId>,
    },
    /// Fewer than `t + 1` servers hold the image: any `t` values fit, nothing is checked.
    TooFewHolders {
        /// The image.
        id: ImageId,
        /// The servers that hold it, ascending.
        holders: Vec<NodeId>,
    },
}

fn invalid(field: &'static str, reason: &str) -> WireError {
    WireError::InvalidField {
        field,
        reason: reason.to_owned(),
    }
}

fn params(e: impl Into<String>) -> MpcError {
    MpcError::Params(e.into())
}

/// `ρ_c`: SHA-256 over a label, the pool's session and the image id, reduced mod `p` from
/// 128 bits.
#[must_use]
pub fn challenge(mask_session: &SessionId, id: ImageId) -> Fp61 {
    let mut h = Sha256::new();
    h.update(CHALLENGE_LABEL);
    h.update(mask_session);
    h.update(id.0.to_be_bytes());
    let digest: [u8; 32] = h.finalize().into();
    let mut head = [0u8; 16];
    head.copy_from_slice(digest.get(..16).unwrap_or(&[0u8; 16]));
    reduce_u128(u128::from_le_bytes(head))
}

/// `Σ_k ρ^{k+1}·b_k` over the 64 bit shares (Horner).
fn combine(shares: &HashBitShares, rho: Fp61) -> Fp61 {
    shares
        .shares()
        .iter()
        .rev()
        .fold(Fp61::ZERO, |acc, b| acc * rho + *b)
        * rho
}

impl ShareCheckOrder {
    /// Encoded length for `ids` images.
    #[must_use]
    pub const fn encoded_len(ids: usize) -> usize {
        2 + 32 + 4 + 2 + 8 * ids
    }

    /// `version ‖ kind ‖ mask session (32) ‖ first mask (u32 BE) ‖ ids (u16 BE) ‖ ids (u64
    /// BE each)`.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(
            MessageKind::ShareCheckOrder,
            Self::encoded_len(self.ids.len()),
        );
        w.bytes(&self.mask_session);
        w.u32(self.first_mask);
        w.u16(u16::try_from(self.ids.len()).unwrap_or(u16::MAX));
        for id in &self.ids {
            w.u64(id.0);
        }
        w.finish()
    }

    /// Decodes [`ShareCheckOrder::to_bytes`]: 1 to [`MAX_CHECK_IDS`] ids, strictly
    /// ascending, a range of masks that does not overflow. Never panics.
    ///
    /// # Errors
    /// Any [`WireError`] of a malformed order.
    pub fn from_bytes(bytes: &[u8]) -> Result<ShareCheckOrder, WireError> {
        let mut r = Reader::new(bytes, MessageKind::ShareCheckOrder)?;
        let mask_session = r.array::<32>("mask session")?;
        let first_mask = r.u32("first mask")?;
        let n = usize::from(r.u16("ids")?);
        if n == 0 || n > MAX_CHECK_IDS {
            return Err(invalid("ids", "1 to MAX_CHECK_IDS images"));
        }
        if first_mask
            .checked_add(u32::try_from(n).unwrap_or(u32::MAX))
            .is_none()
        {
            return Err(invalid("first mask", "the range of masks overflows"));
        }
        let ids = r.ascending_ids("ids", n)?;
        r.finish()?;
        Ok(ShareCheckOrder {
            mask_session,
            first_mask,
            ids,
        })
    }
}

impl ShareCheckAnswer {
    /// `version ‖ kind ‖ mask session (32) ‖ first mask (u32 BE) ‖ node ‖ values (u16 BE) ‖
    /// (flag (0 not held, 1 held) ‖ value (8 bytes LE) when held)*`.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let held = self.values.iter().filter(|v| v.is_some()).count();
        let mut w = Writer::with_capacity(
            MessageKind::ShareCheckAnswer,
            32 + 4 + 1 + 2 + self.values.len() + 8 * held,
        );
        w.bytes(&self.mask_session);
        w.u32(self.first_mask);
        w.node(self.node);
        w.u16(u16::try_from(self.values.len()).unwrap_or(u16::MAX));
        for v in &self.values {
            match v {
                Some(v) => {
                    w.u8(1);
                    w.fp61(*v);
                }
                None => w.u8(0),
            }
        }
        w.finish()
    }

    /// Decodes [`ShareCheckAnswer::to_bytes`]: at most [`MAX_CHECK_IDS`] values, canonical
    /// field elements. Never panics.
    ///
    /// # Errors
    /// Any [`WireError`] of a malformed answer.
    pub fn from_bytes(bytes: &[u8]) -> Result<ShareCheckAnswer, WireError> {
        let mut r = Reader::new(bytes, MessageKind::ShareCheckAnswer)?;
        let mask_session = r.array::<32>("mask session")?;
        let first_mask = r.u32("first mask")?;
        let node = r.node("node")?;
        let n = usize::from(r.u16("values")?);
        if n > MAX_CHECK_IDS || r.remaining() < n {
            return Err(invalid("values", "more than MAX_CHECK_IDS, or truncated"));
        }
        let mut values = Vec::with_capacity(n);
        for _ in 0..n {
            values.push(match r.u8("flag")? {
                0 => None,
                1 => Some(r.fp61("value")?),
                _ => return Err(invalid("flag", "neither 0 nor 1")),
            });
        }
        r.finish()?;
        Ok(ShareCheckAnswer {
            mask_session,
            first_mask,
            node,
            values,
        })
    }
}

/// Server `me`'s answer to `order` from its pool of the order's session and its stored bit
/// shares (`stored` gives `None` for an image it does not hold). Takes the order's masks
/// from the pool (all of them, held or not) before anything else, so a refused order uses
/// none and an answered one cannot be asked again.
///
/// # Errors
/// [`MpcError::Params`] for a pool of the search's kind; [`MpcError::MasksUsed`] for a range
/// handed out already or beyond the pool.
pub fn answer(
    order: &ShareCheckOrder,
    me: NodeId,
    pool: &mut MaskPool,
    mut stored: impl FnMut(ImageId) -> Option<HashBitShares>,
) -> Result<ShareCheckAnswer, MpcError> {
    pool.expect_kind(MaskKind::Random)?;
    let masks = Zeroizing::new(pool.take_at(order.first_mask as usize, order.ids.len())?);
    let values = order
        .ids
        .iter()
        .zip(masks.iter())
        .map(|(id, m)| stored(*id).map(|b| combine(&b, challenge(&order.mask_session, *id)) + *m))
        .collect();
    Ok(ShareCheckAnswer {
        mask_session: order.mask_session,
        first_mask: order.first_mask,
        node: me,
        values,
    })
}

/// The client: judges every server's answer to `order` for threshold `t`, and returns the
/// findings (images whose values all lie on one codeword are not listed). Every answer must
/// be of the order (session, range, one value per image) and come from a distinct server;
/// the caller has checked that each came from the server it names.
///
/// # Errors
/// [`MpcError::Params`] for `t = 0`, or an answer of another order or repeated.
pub fn judge(
    order: &ShareCheckOrder,
    t: u8,
    answers: &[ShareCheckAnswer],
) -> Result<Vec<ShareFinding>, MpcError> {
    if t == 0 {
        return Err(params("t = 0"));
    }
    let degree = usize::from(t) - 1;
    let mut seen = BTreeSet::new();
    for a in answers {
        if a.mask_session != order.mask_session || a.first_mask != order.first_mask {
            return Err(params(format!(
                "node {}'s answer belongs to another order",
                a.node
            )));
        }
        if a.values.len() != order.ids.len() {
            return Err(params(format!(
                "node {} answered {} values for {} images",
                a.node,
                a.values.len(),
                order.ids.len()
            )));
        }
        if !seen.insert(a.node) {
            return Err(params(format!("node {} answered twice", a.node)));
        }
    }
    let mut findings = Vec::new();
    for (k, id) in order.ids.iter().enumerate() {
        let mut points: Vec<(NodeId, Fp61)> = answers
            .iter()
            .filter_map(|a| a.values.get(k).copied().flatten().map(|v| (a.node, v)))
            .collect();
        points.sort_unstable_by_key(|(n, _)| *n);
        let holders = || points.iter().map(|(n, _)| *n).collect::<Vec<_>>();
        if points.len() < degree + 2 {
            findings.push(ShareFinding::TooFewHolders {
                id: *id,
                holders: holders(),
            });
            continue;
        }
        match decode(&points, degree) {
            Ok(d) if d.wrong.is_empty() => {}
            Ok(d) => findings.push(ShareFinding::OffCodeword {
                id: *id,
                nodes: d.wrong,
            }),
            Err(DecodeError::TooManyErrors { .. }) => findings.push(ShareFinding::Undecided {
                id: *id,
                holders: holders(),
            }),
            Err(e) => return Err(params(e.to_string())),
        }
    }
    Ok(findings)
}

#[cfg(test)]
#[path = "share_check_tests.rs"]
mod tests;
