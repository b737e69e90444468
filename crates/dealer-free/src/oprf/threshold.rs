//! Threshold VOPRF evaluation: `t` of `n` nodes evaluate the RFC 9497 VOPRF under a key
//! that none of them holds.
//!
//! The OPRF key `k` is Shamir-shared (by a DKG, or by a [`FeldmanDealer`](crate::vss::FeldmanDealer)
//! in tests): node `j` holds a [`KeyShare`] `x_j = f(j)` with `f(0) = k`, and everybody
//! knows its *verification share* `Y_j = x_j·G`, a [`PublicKey`].
//!
//! * Node `j` answers a batch of blinded elements `B_1…B_m` with a [`PartialEvaluation`]:
//!   `Z_{j,i} = x_j·B_i` and **one** batched RFC 9497 DLEQ proof (`GenerateProof` of VOPRF
//!   mode, §2.2.1, with public key `Y_j`) that all `Z_{j,i}` use the discrete log of `Y_j`
//!   ([`partial_evaluate`]).
//! * The client verifies every node's proof, keeps any `t` valid partials from a set `S`,
//!   and combines them with Lagrange coefficients at 0,
//!   `Z_i = Σ_{j∈S} λ_j·Z_{j,i} = (Σ_{j∈S} λ_j·x_j)·B_i = k·B_i` ([`combine`]). The
//!   coefficients are computed once per set; each element costs one (variable-time, public
//!   data) multiscalar multiplication.
//! * It then finalizes exactly as RFC 9497 `Finalize` does ([`finalize_batch`]).
//!
//! Guarantees:
//! * The output equals the single-key RFC 9497 VOPRF output under `k` (with public key
//!   `k·G`), for any `t`-subset of honest nodes; tests check it against
//!   [`verifiable_finalize`](super::verifiable_finalize).
//! * A partial that cannot be used (unknown node, node seen twice, wrong batch length,
//!   proof that does not verify) is never combined; such nodes are named, in
//!   [`CombineReport::failed`] or [`ThresholdError::NotEnoughValidPartials`]
//!   ([`ThresholdError::culprits`]). `t − 1` corrupted nodes can therefore neither change
//!   the output nor stop it while `t` honest nodes answer.
//! * [`KeyShare`]s are zeroized on drop and their `Debug` output is redacted; all
//!   randomness comes from the caller's [`rand::CryptoRng`].
//! * [`PartialEvaluation::from_bytes`] never panics: truncation, trailing bytes, an unknown
//!   version or kind, node id 0, an empty batch, invalid points and non-canonical scalars
//!   are typed [`WireError`]s of the crate's wire layer ([`crate::wire`]).
//!
//! Wire encoding of a [`PartialEvaluation`], in the layout of [`crate::wire`] (kind
//! [`MessageKind::OprfPartialEvaluation`]):
//! `version (1) ‖ kind (1) ‖ node id (1) ‖ count (u16, big-endian) ‖ count × element (32) ‖
//! proof c (32) ‖ proof s (32)`.
//!
//! # References
//! * RFC 9497, "Oblivious Pseudorandom Functions (OPRFs) Using Prime-Order Groups", §2.2
//!   (batched DLEQ proofs) and §3.3.2 (VOPRF mode).
//! * S. Jarecki, A. Kiayias, H. Krawczyk, J. Xu, "TOPPSS: Cost-minimal Password-Protected
//!   Secret Sharing based on Threshold OPRF", ACNS 2017 (threshold evaluation by Lagrange
//!   combination of `x_j·B`).

use std::collections::{BTreeMap, BTreeSet};

use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use phr_sis::{NodeId, Threshold};
use zeroize::Zeroize;

use crate::wire::{MessageKind, Reader, WireError, Writer};

use super::{
    Blind, BlindedElement, ELEMENT_LEN, EvaluationElement, Mode, OUTPUT_LEN, OprfError, PROOF_LEN,
    Proof, PublicKey, dleq, finalize_hash, random_scalar,
};

/// The most elements one partial evaluation (or one request) may carry: the count is a
/// `u16` on the wire.
pub const MAX_BATCH: usize = u16::MAX as usize;

/// Why one node's partial evaluation was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PartialFailure {
    /// The node has no verification share.
    #[error("unknown node")]
    UnknownNode,
    /// The node already sent a partial evaluation in this set; only its first one counts.
    #[error("duplicate partial evaluation")]
    DuplicateNode,
    /// The partial carries a different number of elements than the request.
    #[error("{found} elements for a batch of {expected}")]
    WrongBatchLength {
        /// The request's batch size.
        expected: usize,
        /// The number of elements the node returned.
        found: usize,
    },
    /// The DLEQ proof does not verify against the node's verification share.
    #[error("proof does not verify")]
    InvalidProof,
}

/// Errors of threshold VOPRF evaluation and combination.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ThresholdError {
    /// Fewer than `t` partial evaluations could be used.
    #[error("{} valid partial evaluations, {needed} needed; failed: {failed:?}", valid.len())]
    NotEnoughValidPartials {
        /// The threshold `t`.
        needed: usize,
        /// The nodes whose partials verified.
        valid: Vec<NodeId>,
        /// The nodes whose partials were rejected, with the reason, in input order.
        failed: Vec<(NodeId, PartialFailure)>,
    },
    /// A verification share is the identity element, which no valid key share gives.
    #[error("verification share of node {node} is the identity")]
    IdentityVerificationShare {
        /// The node.
        node: NodeId,
    },
    /// An OPRF-level error (empty or oversized batch, mismatched lengths, zero key share, …).
    #[error(transparent)]
    Oprf(#[from] OprfError),
}

impl ThresholdError {
    /// The nodes this error blames (those whose partial evaluation was rejected), in input
    /// order; empty for errors that blame no node.
    #[must_use]
    pub fn culprits(&self) -> Vec<NodeId> {
        match self {
            ThresholdError::NotEnoughValidPartials { failed, .. } => {
                failed.iter().map(|(node, _)| *node).collect()
            }
            ThresholdError::IdentityVerificationShare { node } => vec![*node],
            ThresholdError::Oprf(_) => Vec::new(),
        }
    }
}

pub use crate::dkg::KeyShare;

/// Verification shares as public keys, from the points a DKG outputs.
///
/// # Errors
/// [`ThresholdError::IdentityVerificationShare`] naming a node whose point is the identity.
pub fn verification_shares_from_points(
    points: &BTreeMap<NodeId, RistrettoPoint>,
) -> Result<BTreeMap<NodeId, PublicKey>, ThresholdError> {
    points
        .iter()
        .map(|(node, point)| {
            if point.is_identity() {
                Err(ThresholdError::IdentityVerificationShare { node: *node })
            } else {
                Ok((*node, PublicKey(*point)))
            }
        })
        .collect()
}

/// The verification shares of a set of key shares (tests and simulations that hold them
/// all).
#[must_use]
pub fn verification_shares_of(shares: &[KeyShare]) -> BTreeMap<NodeId, PublicKey> {
    shares
        .iter()
        .map(|s| (s.id(), s.verification_share()))
        .collect()
}

/// One node's answer to a batch: `x_j·B_i` for every blinded element, with one DLEQ proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialEvaluation {
    /// The answering node.
    pub node: NodeId,
    /// `x_j·B_i`, in the order of the request.
    pub elements: Vec<EvaluationElement>,
    /// One batched DLEQ proof that every element uses `log_G Y_j`.
    pub proof: Proof,
}

impl PartialEvaluation {
    /// The encoded length of a partial evaluation of `count` elements.
    #[must_use]
    pub const fn encoded_len(count: usize) -> usize {
        2 + 3 + count * ELEMENT_LEN + PROOF_LEN
    }

    /// `version ‖ kind ‖ node id ‖ count (u16 BE) ‖ elements ‖ proof`.
    ///
    /// # Errors
    /// [`OprfError::BatchTooLarge`] above [`MAX_BATCH`] elements (never for a partial built
    /// by [`partial_evaluate`]).
    pub fn to_bytes(&self) -> Result<Vec<u8>, OprfError> {
        let count = u16::try_from(self.elements.len()).map_err(|_| OprfError::BatchTooLarge)?;
        let mut w = Writer::new(MessageKind::OprfPartialEvaluation);
        w.node(self.node);
        w.u16(count);
        for e in &self.elements {
            w.point(&e.0);
        }
        w.scalar(&self.proof.c);
        w.scalar(&self.proof.s);
        Ok(w.finish())
    }

    /// Decodes a partial evaluation. Never panics.
    ///
    /// # Errors
    /// A [`WireError`] naming the first bad field: [`WireError::Truncated`],
    /// [`WireError::TrailingBytes`], [`WireError::UnknownVersion`],
    /// [`WireError::UnknownKind`] / [`WireError::UnexpectedKind`],
    /// [`WireError::InvalidNodeId`] (node id 0), [`WireError::InvalidField`] (an empty
    /// batch), [`WireError::InvalidPoint`] (an invalid or identity element),
    /// [`WireError::InvalidScalar`] (a non-canonical proof scalar).
    pub fn from_bytes(bytes: &[u8]) -> Result<PartialEvaluation, WireError> {
        let mut r = Reader::new(bytes, MessageKind::OprfPartialEvaluation)?;
        let node = r.node("node")?;
        let count = usize::from(r.u16("count")?);
        if count == 0 {
            return Err(empty_batch("count"));
        }
        let elements = r
            .points("element", count)?
            .into_iter()
            .map(EvaluationElement)
            .collect();
        let c = r.scalar("proof c")?;
        let s = r.scalar("proof s")?;
        r.finish()?;
        Ok(PartialEvaluation {
            node,
            elements,
            proof: Proof { c, s },
        })
    }
}

/// The error of a message that declares no elements.
pub(super) fn empty_batch(field: &'static str) -> WireError {
    WireError::InvalidField {
        field,
        reason: "the batch is empty".to_owned(),
    }
}

fn check_batch(len: usize) -> Result<(), OprfError> {
    if len == 0 {
        return Err(OprfError::EmptyBatch);
    }
    if len > MAX_BATCH {
        return Err(OprfError::BatchTooLarge);
    }
    Ok(())
}

/// Node side: evaluates a batch under the key share, `x_j·B_i`, with one batched DLEQ proof
/// against `Y_j`.
///
/// # Errors
/// [`OprfError::EmptyBatch`] / [`OprfError::BatchTooLarge`] for batch sizes outside
/// `1..=`[`MAX_BATCH`].
pub fn partial_evaluate<R: rand::CryptoRng + ?Sized>(
    share: &KeyShare,
    blinded: &[BlindedElement],
    rng: &mut R,
) -> Result<PartialEvaluation, OprfError> {
    partial_evaluate_while(share, blinded, rng, &mut || true)
}

/// Elements [`partial_evaluate_while`] evaluates between two looks at its `go_on`.
pub const EVALUATION_CHUNK: usize = 256;

/// [`partial_evaluate`], asking `go_on` before every [`EVALUATION_CHUNK`] elements and before
/// the proof, and stopping when it says no (a node whose caller gave up ends the work then).
///
/// # Errors
/// As [`partial_evaluate`]; [`OprfError::Stopped`] when `go_on` said no.
pub fn partial_evaluate_while<R: rand::CryptoRng + ?Sized>(
    share: &KeyShare,
    blinded: &[BlindedElement],
    rng: &mut R,
    go_on: &mut dyn FnMut() -> bool,
) -> Result<PartialEvaluation, OprfError> {
    check_batch(blinded.len())?;
    // A zero share's evaluations would be the identity, which cannot be sent.
    if *share.secret() == Scalar::ZERO {
        return Err(OprfError::ZeroScalar);
    }
    let c: Vec<RistrettoPoint> = blinded.iter().map(|b| b.0).collect();
    let mut d = Vec::with_capacity(c.len());
    let mut d_enc = Vec::with_capacity(c.len());
    for chunk in c.chunks(EVALUATION_CHUNK) {
        if !go_on() {
            return Err(OprfError::Stopped);
        }
        let (points, encodings) = dleq::evaluate_and_encode(share.secret(), chunk);
        d.extend(points);
        d_enc.extend(encodings);
    }
    if !go_on() {
        return Err(OprfError::Stopped);
    }
    let c_enc = dleq::encode_all(&c);
    let y = share.verification_share();
    let pairs = dleq::Pairs {
        c: &c,
        c_enc: &c_enc,
        d: &d,
        d_enc: &d_enc,
    };
    let mut r = random_scalar(rng);
    let proof = dleq::generate_proof(Mode::Voprf, share.secret(), &y.0, &pairs, &r);
    r.zeroize();
    let (pc, ps) = proof?;
    Ok(PartialEvaluation {
        node: share.id(),
        elements: d.into_iter().map(EvaluationElement).collect(),
        proof: Proof { c: pc, s: ps },
    })
}

/// The result of a successful [`combine_with_report`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CombineReport {
    /// `k·B_i` for every blinded element, in order.
    pub elements: Vec<EvaluationElement>,
    /// The `t` nodes whose partials were combined, in input order.
    pub used: Vec<NodeId>,
    /// The nodes whose partials were rejected, with the reason, in input order (possibly
    /// non-empty even on success).
    pub failed: Vec<(NodeId, PartialFailure)>,
}

/// Client side: verifies every partial, combines the first `t` valid ones, and reports
/// which nodes were used and which were rejected.
///
/// Only the elements at positions where `wanted` is true are combined (the others are
/// returned as the first valid node's partial element; callers that pass a filter must
/// ignore them).
pub(super) fn combine_filtered(
    blinded: &[BlindedElement],
    partials: &[PartialEvaluation],
    verification_shares: &BTreeMap<NodeId, PublicKey>,
    threshold: Threshold,
    wanted: impl Fn(usize) -> bool,
) -> Result<CombineReport, ThresholdError> {
    check_batch(blinded.len())?;
    let needed = usize::from(threshold.t());
    let c: Vec<RistrettoPoint> = blinded.iter().map(|b| b.0).collect();
    // Encoded once for all nodes' proofs.
    let c_enc = dleq::encode_all(&c);
    let mut seen = BTreeSet::new();
    let mut valid: Vec<&PartialEvaluation> = Vec::new();
    let mut failed = Vec::new();
    for p in partials {
        let verdict = if !seen.insert(p.node) {
            Err(PartialFailure::DuplicateNode)
        } else if let Some(y) = verification_shares.get(&p.node) {
            if p.elements.len() == blinded.len() {
                let d: Vec<RistrettoPoint> = p.elements.iter().map(|e| e.0).collect();
                let d_enc = dleq::encode_all(&d);
                let pairs = dleq::Pairs {
                    c: &c,
                    c_enc: &c_enc,
                    d: &d,
                    d_enc: &d_enc,
                };
                dleq::verify_proof(Mode::Voprf, &y.0, &pairs, &p.proof.c, &p.proof.s)
                    .map_err(|_| PartialFailure::InvalidProof)
            } else {
                Err(PartialFailure::WrongBatchLength {
                    expected: blinded.len(),
                    found: p.elements.len(),
                })
            }
        } else {
            Err(PartialFailure::UnknownNode)
        };
        match verdict {
            Ok(()) => valid.push(p),
            Err(reason) => failed.push((p.node, reason)),
        }
    }
    if valid.len() < needed {
        return Err(ThresholdError::NotEnoughValidPartials {
            needed,
            valid: valid.iter().map(|p| p.node).collect(),
            failed,
        });
    }
    let chosen = &valid[..needed];
    let used: Vec<NodeId> = chosen.iter().map(|p| p.node).collect();
    let lambdas = crate::vss::lagrange_at_zero(&used);
    let elements = (0..blinded.len())
        .map(|i| {
            if wanted(i) {
                EvaluationElement(RistrettoPoint::vartime_multiscalar_mul(
                    &lambdas,
                    chosen.iter().map(|p| p.elements[i].0),
                ))
            } else {
                chosen[0].elements[i]
            }
        })
        .collect();
    Ok(CombineReport {
        elements,
        used,
        failed,
    })
}

/// Client side: verifies every partial's proof, combines the first `t` valid ones with
/// Lagrange coefficients at 0, and reports the nodes used and rejected.
///
/// # Errors
/// [`ThresholdError::NotEnoughValidPartials`] (naming every rejected node) if fewer than
/// `t` partials are valid; [`ThresholdError::Oprf`] with [`OprfError::EmptyBatch`] /
/// [`OprfError::BatchTooLarge`] for a batch size outside `1..=`[`MAX_BATCH`].
pub fn combine_with_report(
    blinded: &[BlindedElement],
    partials: &[PartialEvaluation],
    verification_shares: &BTreeMap<NodeId, PublicKey>,
    threshold: Threshold,
) -> Result<CombineReport, ThresholdError> {
    combine_filtered(blinded, partials, verification_shares, threshold, |_| true)
}

/// Client side: verifies every partial's proof and combines any `t` valid ones into
/// `k·B_i` for every blinded element; finalize them with [`finalize_batch`].
///
/// # Errors
/// As [`combine_with_report`].
pub fn combine(
    blinded: &[BlindedElement],
    partials: &[PartialEvaluation],
    verification_shares: &BTreeMap<NodeId, PublicKey>,
    threshold: Threshold,
) -> Result<Vec<EvaluationElement>, ThresholdError> {
    combine_with_report(blinded, partials, verification_shares, threshold).map(|r| r.elements)
}

/// Client side: RFC 9497 `Finalize` of the combined elements (the proofs were checked in
/// [`combine`]): `Hash(len ‖ input ‖ len ‖ blind⁻¹·Z ‖ "Finalize")` for each input.
///
/// # Errors
/// [`OprfError::LengthMismatch`] if the slices differ in length;
/// [`OprfError::InputTooLong`] if an input exceeds 65535 bytes.
pub fn finalize_batch(
    inputs: &[&[u8]],
    blinds: &[Blind],
    combined: &[EvaluationElement],
) -> Result<Vec<[u8; OUTPUT_LEN]>, OprfError> {
    if blinds.len() != inputs.len() || combined.len() != inputs.len() {
        return Err(OprfError::LengthMismatch);
    }
    inputs
        .iter()
        .zip(blinds)
        .zip(combined)
        .map(|((input, b), z)| finalize_hash(input, b, z))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code
    use super::*;
    use crate::oprf::blind;
    use rand::SeedableRng;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn an_evaluation_in_chunks_is_whole_and_stops_when_told() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(12);
        let share = KeyShare::from_bytes(NodeId::new(2).unwrap(), &[9u8; 32]).unwrap();
        let blinded: Vec<BlindedElement> = (0..EVALUATION_CHUNK * 2 + 88)
            .map(|i| blind(Mode::Voprf, &i.to_le_bytes(), &mut rng).unwrap().1)
            .collect();
        let mut asked = 0;
        let p = partial_evaluate_while(&share, &blinded, &mut rng, &mut || {
            asked += 1;
            true
        })
        .unwrap();
        // Three chunks and the proof.
        assert_eq!(asked, 4);
        for (b, e) in blinded.iter().zip(&p.elements) {
            assert_eq!(e.0, share.secret() * b.0);
        }
        // Told to stop after the first chunk: stopped, and asked no more.
        let mut asked = 0;
        let stopped = partial_evaluate_while(&share, &blinded, &mut rng, &mut || {
            asked += 1;
            asked < 2
        });
        assert_eq!(stopped, Err(OprfError::Stopped));
        assert_eq!(asked, 2);
    }

    #[test]
    fn wire_golden_and_rejections() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
        let id = NodeId::new(3).unwrap();
        let share = KeyShare::from_bytes(id, &[7u8; 32]).unwrap();
        let (_, be) = blind(Mode::Voprf, b"golden", &mut rng).unwrap();
        let p = partial_evaluate(&share, &[be], &mut rng).unwrap();
        let bytes = p.to_bytes().unwrap();
        assert_eq!(bytes.len(), PartialEvaluation::encoded_len(1));
        assert_eq!(
            hex(&bytes),
            // version 1, kind 0x31 (partial evaluation), node 3, count 1, element, proof
            // (c ‖ s).
            "0131\
             030001\
             72bd53a8c7da4e9630a4a138593c3831dcb24ee421fde99e9539f40d956c874d\
             dc2c05e31682fcdfd8ac4a75e7ffc5360baea0bc1ac9102a30cc85b361dcc500\
             c33300d3e2f64e0ed5536e9c589582cd24fd7f0ae9a8790a34f455feea866b04"
        );
        assert_eq!(PartialEvaluation::from_bytes(&bytes).unwrap(), p);
        for cut in 0..bytes.len() {
            assert!(matches!(
                PartialEvaluation::from_bytes(&bytes[..cut]),
                Err(WireError::Truncated { .. } | WireError::InvalidField { .. })
            ));
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            PartialEvaluation::from_bytes(&long),
            Err(WireError::TrailingBytes(1))
        );
        let mut bad = bytes.clone();
        bad[0] = 2;
        assert_eq!(
            PartialEvaluation::from_bytes(&bad),
            Err(WireError::UnknownVersion(2))
        );
        let mut bad = bytes.clone();
        bad[1] = MessageKind::TokenRequest.to_byte();
        assert_eq!(
            PartialEvaluation::from_bytes(&bad),
            Err(WireError::UnexpectedKind {
                expected: MessageKind::OprfPartialEvaluation,
                got: MessageKind::TokenRequest
            })
        );
        let mut bad = bytes.clone();
        bad[2] = 0;
        assert_eq!(
            PartialEvaluation::from_bytes(&bad),
            Err(WireError::InvalidNodeId { field: "node" })
        );
        let mut bad = bytes.clone();
        bad[5..37].copy_from_slice(&[0u8; 32]);
        assert_eq!(
            PartialEvaluation::from_bytes(&bad),
            Err(WireError::InvalidPoint { field: "element" })
        );
        let mut bad = bytes;
        bad[37..69].copy_from_slice(&[0xffu8; 32]);
        assert_eq!(
            PartialEvaluation::from_bytes(&bad),
            Err(WireError::InvalidScalar { field: "proof c" })
        );
        assert!(matches!(
            PartialEvaluation::from_bytes(&[1, 0x31, 1, 0, 0]),
            Err(WireError::InvalidField { field: "count", .. })
        ));
        assert_eq!(
            format!("{share:?}"),
            "KeyShare { id: NodeId(3), secret: \"<redacted>\" }"
        );
    }

    #[test]
    fn lagrange_reconstructs_constant() {
        // f(x) = 5 + 2x: shares at 1, 4 interpolate to 5.
        let ids = [NodeId::new(1).unwrap(), NodeId::new(4).unwrap()];
        let l = crate::vss::lagrange_at_zero(&ids);
        let f = |x: u64| Scalar::from(5u64) + Scalar::from(2u64) * Scalar::from(x);
        assert_eq!(l[0] * f(1) + l[1] * f(4), Scalar::from(5u64));
    }
}
