//! Round 1 of GJKR (step 1(a)): every node `i` deals a random secret with Pedersen VSS.
//!
//! > Each player `P_i` performs a Pedersen-VSS of a random value `z_i` as a dealer:
//! > `P_i` chooses two random polynomials `f_i(z)`, `f'_i(z)` over `Z_q` of degree `t` …
//! > broadcasts `C_ik = g^{a_ik} h^{b_ik}` … computes the shares `s_ij = f_i(j)`,
//! > `s'_ij = f'_i(j)` and sends `s_ij, s'_ij` to player `P_j`.
//!
//! (GJKR's degree `t` is our `t − 1`: here `t` shares reconstruct.) Node `i` sends each node
//! `j` one [`Deal`]: the commitment, `i`'s signature over its digest (transferable evidence of
//! what `i` committed to) and `(s_ij, s'_ij)` encrypted to `j`. The commitment part is the
//! same in every copy; a dealer that varies it is equivocating, which round 2's echo
//! catches. When the round ends, each receiver checks every signature in one batch, opens
//! its shares and checks all of them against their commitments with one multiscalar
//! multiplication (GJKR step 1(b)); shares that fail become complaints.
//!
//! Layout: `version ‖ kind ‖ dealer ‖ recipient ‖ commitment (32·t) ‖ signature (64) ‖
//! encrypted share (64 + 16)`.

use std::collections::{BTreeMap, BTreeSet};

use curve25519_dalek::scalar::Scalar;
use phr_sis::{NodeId, Threshold};
use rand::CryptoRng;
use sha2::{Digest, Sha512};

use super::faults::Misbehaviour;
use super::{Core, DkgMessage, HeldDeal, Outgoing, Recipient, Round, SessionId, complain};
use crate::identity::{SEAL_OVERHEAD, Signature, VerifyingKey, random_scalar};
use crate::vss::{
    PedersenCommitment, PedersenDealer, PedersenShare, verify_pedersen_batch_vartime,
};
use crate::wire::{MessageKind, Reader, WireError, Writer};

/// Bytes of an encrypted `(s_ij, s'_ij)`.
pub const ENCRYPTED_SHARE_LEN: usize = 64 + SEAL_OVERHEAD;

const DIGEST_DOMAIN: &[u8] = b"dealer-free-sis/v1/dkg-commitment";
const COMMITMENT_SIGNATURE_DOMAIN: &[u8] = b"dealer-free-sis/v1/dkg-commitment-signature";
const SHARE_LABEL: &[u8] = b"dkg-share";

/// The round-1 message from `dealer` to `recipient`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deal {
    /// The dealer `i`.
    pub dealer: NodeId,
    /// The recipient `j`.
    pub recipient: NodeId,
    /// `C_ik = a_ik·G + b_ik·H`, `k = 0..t`.
    pub commitment: PedersenCommitment,
    /// The dealer's signature over [`commitment_digest`].
    pub signature: Signature,
    /// `(s_ij ‖ s'_ij)` sealed for the recipient.
    pub encrypted_share: [u8; ENCRYPTED_SHARE_LEN],
}

/// The layout of a deal, from its parts (the commitment already encoded).
fn encode(
    dealer: NodeId,
    recipient: NodeId,
    commitment: &[u8],
    signature: &Signature,
    encrypted_share: &[u8; ENCRYPTED_SHARE_LEN],
) -> Vec<u8> {
    let len = 4 + commitment.len() + crate::identity::SIGNATURE_LEN + ENCRYPTED_SHARE_LEN;
    let mut w = Writer::with_capacity(MessageKind::DkgDeal, len);
    w.node(dealer);
    w.node(recipient);
    w.bytes(commitment);
    signature.write(&mut w);
    w.bytes(encrypted_share);
    w.finish()
}

impl Deal {
    /// The canonical encoding.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(
            self.dealer,
            self.recipient,
            &self.commitment.to_bytes(),
            &self.signature,
            &self.encrypted_share,
        )
    }

    /// Decodes a deal of a session with threshold `threshold`.
    ///
    /// # Errors
    /// A [`WireError`] naming the first bad field.
    pub fn from_bytes(bytes: &[u8], threshold: Threshold) -> Result<Deal, WireError> {
        let mut r = Reader::new(bytes, MessageKind::DkgDeal)?;
        let dealer = r.node("dealer")?;
        let recipient = r.node("recipient")?;
        let commitment = read_commitment(&mut r, threshold)?;
        let signature = Signature::read(&mut r)?;
        let encrypted_share = r.array::<ENCRYPTED_SHARE_LEN>("encrypted share")?;
        r.finish()?;
        Ok(Deal {
            dealer,
            recipient,
            commitment,
            signature,
            encrypted_share,
        })
    }
}

/// Reads a `t`-point Pedersen commitment.
pub(crate) fn read_commitment(
    r: &mut Reader<'_>,
    threshold: Threshold,
) -> Result<PedersenCommitment, WireError> {
    let bytes = r.slice("commitment", 32 * usize::from(threshold.t()))?;
    PedersenCommitment::from_bytes(bytes, threshold).map_err(|e| WireError::InvalidField {
        field: "commitment",
        reason: e.to_string(),
    })
}

/// The digest of dealer `i`'s commitment in a session: what `i` signs and what round 2
/// echoes.
#[must_use]
pub fn commitment_digest(session: &SessionId, dealer: NodeId, commitment: &[u8]) -> [u8; 32] {
    let d = Sha512::new()
        .chain_update(DIGEST_DOMAIN)
        .chain_update(session.as_bytes())
        .chain_update([dealer.get()])
        .chain_update(commitment)
        .finalize();
    let mut out = [0u8; 32];
    out.copy_from_slice(&d[..32]);
    out
}

/// The bytes a dealer signs for its commitment.
#[must_use]
pub fn commitment_signed_bytes(digest: &[u8; 32]) -> Vec<u8> {
    [COMMITMENT_SIGNATURE_DOMAIN, digest].concat()
}

/// The indices of the `(dealer's key, commitment digest, signature)` claims that fail (no
/// key, or a signature that does not verify), checked in one batch.
pub(crate) fn failing_commitment_signatures<R: CryptoRng + ?Sized>(
    claims: &[(Option<&VerifyingKey>, &[u8; 32], &Signature)],
    rng: &mut R,
) -> BTreeSet<usize> {
    let signed: Vec<Vec<u8>> = claims
        .iter()
        .map(|(_, digest, _)| commitment_signed_bytes(digest))
        .collect();
    let checks: Vec<_> = claims
        .iter()
        .zip(&signed)
        .map(|((key, _, sig), msg)| (*key, msg.as_slice(), Some(*sig)))
        .collect();
    crate::identity::failing_signatures(&checks, rng)
}

/// Round 1, sending side: deal to every other participant.
pub(super) fn start<R: CryptoRng + ?Sized>(core: &mut Core, rng: &mut R) -> Vec<Outgoing> {
    let threshold = core.params.threshold;
    let session = core.params.session;
    let me = core.id();
    let dealer = PedersenDealer::new(threshold, rng);
    // An equivocating dealer keeps a second, unrelated polynomial pair for half the nodes.
    let other = matches!(core.misbehaviour, Misbehaviour::Equivocate)
        .then(|| PedersenDealer::new(threshold, rng));
    let mut commitment = dealer.commitment().clone();
    if matches!(core.misbehaviour, Misbehaviour::BadCommitment) {
        commitment = corrupt_commitment(&commitment, threshold, rng);
    }
    // Compressing a point costs a field inversion: encode each commitment once, not once per
    // recipient.
    let sign = |c: &PedersenCommitment, rng: &mut R| {
        let bytes = c.to_bytes();
        let digest = commitment_digest(&session, me, &bytes);
        let sig = core.keys.sign(&commitment_signed_bytes(&digest), rng);
        (bytes, digest, sig)
    };
    let (commitment_bytes, digest, signature) = sign(&commitment, rng);
    let alternative = other.as_ref().map(|d| {
        let (bytes, dg, sig) = sign(d.commitment(), rng);
        (d, bytes, dg, sig)
    });
    core.deals.insert(
        me,
        HeldDeal {
            commitment: commitment.clone(),
            digest,
            signature,
            share: Some(dealer.share(me)),
        },
    );
    let mut out = Vec::new();
    let others: Vec<NodeId> = core.others().collect();
    let half = others.len() / 2;
    for (pos, to) in others.into_iter().enumerate() {
        let Some(to_keys) = core.params.participants.get(&to) else {
            continue;
        };
        let (this_dealer, this_bytes, this_digest, this_sig) = match &alternative {
            Some((alt, bytes, dg, sig)) if pos >= half => (*alt, bytes, *dg, *sig),
            _ => (&dealer, &commitment_bytes, digest, signature),
        };
        let share = this_dealer.share(to);
        let mut value = share.value();
        if core.misbehaviour.corrupts_share_for(to) {
            value += Scalar::ONE;
        }
        let mut plain = zeroize::Zeroizing::new([0u8; 64]);
        plain[..32].copy_from_slice(value.as_bytes());
        plain[32..].copy_from_slice(share.blinding().as_bytes());
        let sealed = core.keys.seal(
            to,
            &to_keys.encryption,
            session.as_bytes(),
            SHARE_LABEL,
            &this_digest,
            plain.as_slice(),
        );
        let mut encrypted_share = [0u8; ENCRYPTED_SHARE_LEN];
        if sealed.len() == ENCRYPTED_SHARE_LEN {
            encrypted_share.copy_from_slice(&sealed);
        }
        if !core.misbehaviour.is_silent() {
            out.push(Outgoing {
                round: Round::Deal,
                from: me,
                to: Recipient::Node(to),
                bytes: encode(me, to, this_bytes, &this_sig, &encrypted_share),
            });
        }
    }
    core.polynomial = Some(dealer);
    out
}

/// A commitment with point 1 (or 0 for t = 1) replaced by a random point.
fn corrupt_commitment<R: CryptoRng + ?Sized>(
    c: &PedersenCommitment,
    threshold: Threshold,
    rng: &mut R,
) -> PedersenCommitment {
    let mut bytes = c.to_bytes();
    let random = random_scalar(rng) * crate::vss::generator_g();
    let at = if bytes.len() >= 64 { 32 } else { 0 };
    if let Some(slot) = bytes.get_mut(at..at + 32) {
        slot.copy_from_slice(random.compress().as_bytes());
    }
    PedersenCommitment::from_bytes(&bytes, threshold).unwrap_or_else(|_| c.clone())
}

/// Round 1, receiving side: check and open the deals, then send the round-2 message.
pub(super) fn finish<R: CryptoRng + ?Sized>(core: &mut Core, rng: &mut R) -> Vec<Outgoing> {
    let inbox = core.take_inbox();
    let session = core.params.session;
    let me = core.id();
    // Signatures over the commitment digests, one batch.
    let mut received: Vec<(NodeId, Deal, [u8; 32])> = Vec::new();
    for (from, (bytes, msg)) in inbox {
        if let DkgMessage::Deal(deal) = msg {
            let c_len = deal.commitment.threshold() * 32;
            let digest =
                commitment_digest(&session, from, bytes.get(4..4 + c_len).unwrap_or_default());
            received.push((from, deal, digest));
        }
    }
    let claims: Vec<_> = received
        .iter()
        .map(|(from, deal, digest)| {
            let key = core.params.participants.get(from).map(|k| &k.signing);
            (key, digest, &deal.signature)
        })
        .collect();
    let bad_sig = failing_commitment_signatures(&claims, rng);
    // Open the shares of the deals whose signature holds.
    let mut opened: Vec<(NodeId, Deal, [u8; 32], Option<PedersenShare>)> = Vec::new();
    for (i, (from, deal, digest)) in received.into_iter().enumerate() {
        if bad_sig.contains(&i) {
            core.reject(from, Round::Deal, "commitment signature does not verify");
            continue;
        }
        let share = core
            .params
            .participants
            .get(&from)
            .and_then(|k| {
                core.keys
                    .open(
                        from,
                        &k.encryption,
                        session.as_bytes(),
                        SHARE_LABEL,
                        &digest,
                        &deal.encrypted_share,
                    )
                    .ok()
            })
            .and_then(|plain| decode_share(me, &plain));
        if share.is_none() {
            core.reject(from, Round::Deal, "encrypted share does not open");
        }
        opened.push((from, deal, digest, share));
    }
    // All shares against their commitments, one multiscalar multiplication.
    let pairs: Vec<(usize, &PedersenShare, &PedersenCommitment)> = opened
        .iter()
        .enumerate()
        .filter_map(|(i, (_, deal, _, s))| s.as_ref().map(|s| (i, s, &deal.commitment)))
        .collect();
    let batch: Vec<(&PedersenShare, &PedersenCommitment)> =
        pairs.iter().map(|(_, s, c)| (*s, *c)).collect();
    let failing: Vec<usize> = match verify_pedersen_batch_vartime(&batch, rng) {
        Ok(()) => Vec::new(),
        Err(crate::vss::VssError::BatchVerificationFailed { failing }) => failing
            .into_iter()
            .filter_map(|f| pairs.get(f).map(|(i, _, _)| *i))
            .collect(),
        Err(_) => pairs.iter().map(|(i, _, _)| *i).collect(),
    };
    for (i, (from, deal, digest, share)) in opened.into_iter().enumerate() {
        let share = if failing.contains(&i) { None } else { share };
        core.deals.insert(
            from,
            HeldDeal {
                commitment: deal.commitment,
                digest,
                signature: deal.signature,
                share,
            },
        );
    }
    complain::send(core, rng)
}

fn decode_share(me: NodeId, plain: &[u8]) -> Option<PedersenShare> {
    let (a, b) = plain.split_at_checked(32)?;
    let value: Option<Scalar> = Scalar::from_canonical_bytes(a.try_into().ok()?).into();
    let blinding: Option<Scalar> = Scalar::from_canonical_bytes(b.try_into().ok()?).into();
    Some(PedersenShare::new(me, value?, blinding?))
}

/// The dealers' digests this node holds, for the echo.
pub(super) fn held_digests(core: &Core) -> BTreeMap<NodeId, [u8; 32]> {
    core.deals.iter().map(|(id, d)| (*id, d.digest)).collect()
}
