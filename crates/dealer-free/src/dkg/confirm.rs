//! Round 4: transcript confirmation and verification shares (GJKR's extraction, compressed).
//!
//! Every node broadcasts a [`ConfirmationMessage`]: the hash of what it used (`QUAL` and
//! each qualified dealer's commitment digest, [`transcript_hash`]), its verification share
//! `Y_j = x_j·G` and a [`RepresentationProof`] that it knows `(x_j, x'_j)` with
//! `Y_j = x_j·G` and `A(j) = x_j·G + x'_j·H`, where `A = Σ_{i∈QUAL} C_i` is the sum of the
//! qualified Pedersen commitments (so `A(j)` commits to node `j`'s key share). The proof is a
//! two-base Schnorr proof made non-interactive with Fiat–Shamir, its challenge bound to the
//! session, the transcript, `j` and `Y_j`; it keeps its commitments `R1, R2` (not the
//! challenge) so that all `n` proofs verify in one multiscalar multiplication of `3n + t`
//! points.
//!
//! When the round ends a node requires every confirmation it received to carry its own
//! transcript hash ([`DkgError::TranscriptMismatch`] otherwise), drops confirmations whose
//! proof fails (named in [`DkgOutput::invalid_confirmations`]), and needs at least `t` valid
//! ones. The group key is `X = Σ λ_j·Y_j` over any `t` of them: by the binding of the
//! commitments every valid `Y_j` lies on the same polynomial `F(x)·G`.
//!
//! Layout: `version ‖ kind ‖ sender ‖ transcript (32) ‖ Y_j (32) ‖ R1 (32) ‖ R2 (32) ‖
//! z (32) ‖ z' (32) ‖ signature (64)`: 259 bytes.

use std::collections::{BTreeMap, BTreeSet};

use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{Identity, IsIdentity, VartimeMultiscalarMul};
use phr_sis::NodeId;
use rand::CryptoRng;
use sha2::{Digest, Sha512};
use zeroize::Zeroize;

use super::complain::broadcast;
use super::{Core, Disqualification, DkgError, DkgMessage, DkgOutput, KeyShare, Outgoing, Round};
use crate::identity::{Signature, hash_to_scalar, random_nonzero_scalar, random_weight};
use crate::vss::{PedersenCommitment, PedersenShare, generator_g, generator_h, generator_h_table};
use crate::wire::{MessageKind, Reader, WireError, Writer};

const TRANSCRIPT_DOMAIN: &[u8] = b"dealer-free-sis/v1/dkg-transcript";
const PROOF_DOMAIN: &[u8] = b"dealer-free-sis/v1/dkg-representation-proof";

/// A proof of knowledge of `(x, x')` with `Y = x·G` and `A(j) = x·G + x'·H`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepresentationProof {
    /// `R1 = k·G`.
    pub r1: RistrettoPoint,
    /// `R2 = k·G + k'·H`.
    pub r2: RistrettoPoint,
    /// `z = k + c·x`.
    pub z: Scalar,
    /// `z' = k' + c·x'`.
    pub z_blinding: Scalar,
}

/// The round-4 broadcast of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmationMessage {
    /// The sender `j`.
    pub sender: NodeId,
    /// [`transcript_hash`] of the sender's view.
    pub transcript: [u8; 32],
    /// `Y_j = x_j·G`.
    pub verification_share: RistrettoPoint,
    /// The proof that `Y_j` matches the commitments.
    pub proof: RepresentationProof,
    /// The sender's signature.
    pub signature: Signature,
}

/// Bytes of an encoded [`ConfirmationMessage`].
pub const CONFIRMATION_LEN: usize = 2 + 1 + 32 * 6 + 64;

impl ConfirmationMessage {
    fn body(
        sender: NodeId,
        transcript: &[u8; 32],
        y: &RistrettoPoint,
        p: &RepresentationProof,
    ) -> Writer {
        let mut w = Writer::new(MessageKind::DkgConfirmation);
        w.node(sender);
        w.bytes(transcript);
        w.point(y);
        w.point(&p.r1);
        w.point(&p.r2);
        w.scalar(&p.z);
        w.scalar(&p.z_blinding);
        w
    }

    /// The canonical encoding.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = ConfirmationMessage::body(
            self.sender,
            &self.transcript,
            &self.verification_share,
            &self.proof,
        );
        self.signature.write(&mut w);
        w.finish()
    }

    /// Decodes a confirmation.
    ///
    /// # Errors
    /// A [`WireError`] naming the first bad field.
    pub fn from_bytes(bytes: &[u8]) -> Result<ConfirmationMessage, WireError> {
        let mut r = Reader::new(bytes, MessageKind::DkgConfirmation)?;
        let sender = r.node("sender")?;
        let transcript = r.array::<32>("transcript")?;
        let verification_share = r.point("verification share")?;
        let proof = RepresentationProof {
            r1: r.point("proof R1")?,
            r2: r.point("proof R2")?,
            z: r.scalar("proof z")?,
            z_blinding: r.scalar("proof z'")?,
        };
        let signature = Signature::read(&mut r)?;
        r.finish()?;
        Ok(ConfirmationMessage {
            sender,
            transcript,
            verification_share,
            proof,
            signature,
        })
    }
}

/// `H(domain ‖ session ‖ |QUAL| ‖ (dealer ‖ digest)*)` over the qualified dealers.
#[must_use]
pub fn transcript_hash(
    session: &super::SessionId,
    qualified: &BTreeMap<NodeId, [u8; 32]>,
) -> [u8; 32] {
    let mut h = Sha512::new()
        .chain_update(TRANSCRIPT_DOMAIN)
        .chain_update(session.as_bytes())
        .chain_update([u8::try_from(qualified.len()).unwrap_or(u8::MAX)]);
    for (d, digest) in qualified {
        h.update([d.get()]);
        h.update(digest);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(&h.finalize()[..32]);
    out
}

/// `Y ‖ R1 ‖ R2`, compressed, as the message carries them.
type ProofPoints = [u8; 96];

fn challenge(
    session: &super::SessionId,
    transcript: &[u8; 32],
    j: NodeId,
    points: &ProofPoints,
) -> Scalar {
    hash_to_scalar(&[
        PROOF_DOMAIN,
        session.as_bytes(),
        transcript,
        &[j.get()],
        points,
    ])
}

/// The compressed `Y ‖ R1 ‖ R2` of an encoded confirmation (offsets 35..131).
fn proof_points(bytes: &[u8]) -> ProofPoints {
    let mut out = [0u8; 96];
    if let Some(src) = bytes.get(35..131) {
        out.copy_from_slice(src);
    }
    out
}

/// What the last round needs.
pub(crate) struct Pending {
    qualified: BTreeSet<NodeId>,
    disqualified: BTreeMap<NodeId, Disqualification>,
    /// `A_k = Σ_{i∈QUAL} C_ik`.
    aggregate: Vec<RistrettoPoint>,
    key_share: KeyShare,
    blinding: Scalar,
    transcript: [u8; 32],
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.blinding.zeroize();
    }
}

/// Sums the shares and commitments of the qualified dealers.
pub(super) fn prepare(
    core: &Core,
    qualified: BTreeSet<NodeId>,
    disqualified: BTreeMap<NodeId, Disqualification>,
    commitments: &BTreeMap<NodeId, (&PedersenCommitment, [u8; 32])>,
    my_shares: &[PedersenShare],
) -> Pending {
    let t = usize::from(core.t());
    let mut aggregate = vec![RistrettoPoint::identity(); t];
    for (c, _) in commitments.values() {
        for (a, p) in aggregate.iter_mut().zip(c.points()) {
            *a += p;
        }
    }
    let mut x = Scalar::ZERO;
    let mut x_blinding = Scalar::ZERO;
    for s in my_shares {
        x += s.value();
        x_blinding += s.blinding();
    }
    let digests: BTreeMap<NodeId, [u8; 32]> =
        commitments.iter().map(|(d, (_, dg))| (*d, *dg)).collect();
    let transcript = transcript_hash(&core.params.session, &digests);
    let pending = Pending {
        qualified,
        disqualified,
        aggregate,
        key_share: KeyShare::new(core.id(), x),
        blinding: x_blinding,
        transcript,
    };
    x.zeroize();
    x_blinding.zeroize();
    pending
}

/// Sends this node's confirmation.
pub(super) fn send<R: CryptoRng + ?Sized>(
    core: &mut Core,
    pending: &Pending,
    rng: &mut R,
) -> Vec<Outgoing> {
    let me = core.id();
    let wrong;
    let x = if matches!(core.misbehaviour, super::Misbehaviour::BadProof) {
        wrong = pending.key_share.secret() + Scalar::ONE;
        &wrong
    } else {
        pending.key_share.secret()
    };
    let y = RistrettoPoint::mul_base(x);
    let mut k = random_nonzero_scalar(rng);
    let mut k_blinding = random_nonzero_scalar(rng);
    let r1 = RistrettoPoint::mul_base(&k);
    let r2 = r1 + &k_blinding * generator_h_table();
    let mut points = [0u8; 96];
    for (slot, p) in points.chunks_exact_mut(32).zip([&y, &r1, &r2]) {
        slot.copy_from_slice(p.compress().as_bytes());
    }
    let c = challenge(&core.params.session, &pending.transcript, me, &points);
    let proof = RepresentationProof {
        r1,
        r2,
        z: k + c * x,
        z_blinding: k_blinding + c * pending.blinding,
    };
    k.zeroize();
    k_blinding.zeroize();
    let w = ConfirmationMessage::body(me, &pending.transcript, &y, &proof);
    let bytes = super::sign_body(&core.keys, &core.params.session, w, rng);
    broadcast(core, Round::Confirm, bytes)
}

fn verify_one(
    session: &super::SessionId,
    p: &Pending,
    (m, encoded): &(ConfirmationMessage, ProofPoints),
) -> bool {
    let c = challenge(session, &p.transcript, m.sender, encoded);
    let g = generator_g();
    let lhs1 = RistrettoPoint::vartime_multiscalar_mul(
        [m.proof.z, -c, -Scalar::ONE],
        [g, m.verification_share, m.proof.r1],
    );
    let a = crate::vss::evaluate_commitment(&p.aggregate, m.sender);
    let lhs2 = RistrettoPoint::vartime_multiscalar_mul(
        [m.proof.z, m.proof.z_blinding, -c, -Scalar::ONE],
        [g, generator_h(), a, m.proof.r2],
    );
    lhs1.is_identity() && lhs2.is_identity()
}

/// All proofs at once: `Σ_j u_j(z_j·G − R1_j − c_j·Y_j) + v_j(z_j·G + z'_j·H − R2_j −
/// c_j·Σ_k j^k·A_k) = 0`.
fn verify_batch<R: CryptoRng + ?Sized>(
    session: &super::SessionId,
    p: &Pending,
    msgs: &[(ConfirmationMessage, ProofPoints)],
    rng: &mut R,
) -> bool {
    let mut scalars = Vec::with_capacity(3 * msgs.len() + p.aggregate.len() + 2);
    let mut points = Vec::with_capacity(scalars.capacity());
    let (mut g, mut h) = (Scalar::ZERO, Scalar::ZERO);
    let mut a_coeffs = vec![Scalar::ZERO; p.aggregate.len()];
    for (m, encoded) in msgs {
        let c = challenge(session, &p.transcript, m.sender, encoded);
        let (u, v) = (random_weight(rng), random_weight(rng));
        g += (u + v) * m.proof.z;
        h += v * m.proof.z_blinding;
        scalars.extend([-u, -v, -u * c]);
        points.extend([m.proof.r1, m.proof.r2, m.verification_share]);
        let x = Scalar::from(m.sender.get());
        let mut power = v * c;
        for a in &mut a_coeffs {
            *a -= power;
            power *= x;
        }
    }
    scalars.extend(a_coeffs);
    points.extend(p.aggregate.iter().copied());
    scalars.extend([g, h]);
    points.extend([generator_g(), generator_h()]);
    RistrettoPoint::vartime_multiscalar_mul(&scalars, &points).is_identity()
}

/// End of round 4: check the transcripts and proofs, derive the group key.
pub(super) fn finish<R: CryptoRng + ?Sized>(
    core: &mut Core,
    pending: Pending,
    rng: &mut R,
) -> Result<DkgOutput, DkgError> {
    let msgs = core.verified_round_bytes(Round::Confirm, rng);
    let session = core.params.session;
    let entries: Vec<(ConfirmationMessage, ProofPoints)> = msgs
        .into_values()
        .filter_map(|(bytes, m)| match m {
            DkgMessage::Confirmation(c) => Some((c, proof_points(&bytes))),
            _ => None,
        })
        .collect();
    let confirmations: Vec<&ConfirmationMessage> = entries.iter().map(|(c, _)| c).collect();
    let mismatched: BTreeSet<NodeId> = confirmations
        .iter()
        .filter(|c| c.transcript != pending.transcript)
        .map(|c| c.sender)
        .collect();
    if !mismatched.is_empty() {
        return Err(DkgError::TranscriptMismatch { nodes: mismatched });
    }
    let invalid: BTreeSet<NodeId> = if verify_batch(&session, &pending, &entries, rng) {
        BTreeSet::new()
    } else {
        entries
            .iter()
            .filter(|e| !verify_one(&session, &pending, e))
            .map(|(m, _)| m.sender)
            .collect()
    };
    let verification_shares: BTreeMap<NodeId, RistrettoPoint> = confirmations
        .iter()
        .filter(|c| !invalid.contains(&c.sender))
        .map(|c| (c.sender, c.verification_share))
        .collect();
    let unconfirmed: BTreeSet<NodeId> = core
        .params
        .participants
        .keys()
        .filter(|id| !confirmations.iter().any(|c| c.sender == **id))
        .copied()
        .collect();
    let t = usize::from(core.t());
    if verification_shares.len() < t {
        return Err(DkgError::NotEnoughConfirmations {
            needed: core.t(),
            confirmed: verification_shares.keys().copied().collect(),
            silent: unconfirmed,
            invalid,
        });
    }
    let group_public_key = interpolate_in_exponent(verification_shares.iter().take(t));
    for id in &invalid {
        core.reject(
            *id,
            Round::Confirm,
            "verification-share proof does not verify",
        );
    }
    Ok(DkgOutput {
        key_share: pending.key_share.clone(),
        group_public_key,
        verification_shares,
        qualified: pending.qualified.clone(),
        disqualified: pending.disqualified.clone(),
        unconfirmed,
        invalid_confirmations: invalid,
        transcript: pending.transcript,
        rejected: std::mem::take(&mut core.rejected),
    })
}

/// `Σ λ_j·P_j` with the Lagrange coefficients at 0 of the given ids.
pub(crate) fn interpolate_in_exponent<'a>(
    points: impl Iterator<Item = (&'a NodeId, &'a RistrettoPoint)>,
) -> RistrettoPoint {
    let (ids, pts): (Vec<NodeId>, Vec<RistrettoPoint>) = points.map(|(i, p)| (*i, *p)).unzip();
    let lambdas = crate::vss::lagrange_at_zero(&ids);
    RistrettoPoint::vartime_multiscalar_mul(&lambdas, &pts)
}
