//! Round 1 of GJKR (step 1(a)): every node `i` deals a random secret with Pedersen VSS.
//!
//! > Each player `P_i` performs a Pedersen-VSS of a random value `z_i` as a dealer:
//! > `P_i` chooses two random polynomials `f_i(z)`, `f'_i(z)` over `Z_q` of degree `t` …
//! > broadcasts `C_ik = g^{a_ik} h^{b_ik}` … computes the shares `s_ij = f_i(j)`,
//! > `s'_ij = f'_i(j)` and sends `s_ij, s'_ij` to player `P_j`.
//!
//! (GJKR's degree `t` is our `t − 1`: here `t` shares reconstruct.) Node `i` draws a fresh
//! ephemeral key `E_i` ([`super::sealed`]) and sends each node `j` one [`Deal`]: the
//! commitment, `E_i`, `(s_ij, s'_ij)` sealed to `j` under `E_i`, and `i`'s signature over
//! the commitment digest `D_i` (which covers the commitment and `E_i`), `j` and that
//! ciphertext. The signature makes every deal transferable evidence: nobody but `i` can make
//! a deal "from `i`", a relay cannot swap one recipient's ciphertext for another, and two
//! deals of `i` with different digests prove equivocation (round 2's echo compares `D_i`
//! across nodes). Receivers check deals as they arrive only when two differ
//! (the session's inbox); otherwise every signature of the round is checked in one batch when
//! it ends, each share opened and all of them checked against their commitments with one
//! multiscalar multiplication (GJKR step 1(b)); a share that fails becomes a complaint with
//! evidence.
//!
//! Layout: `version ‖ kind ‖ dealer ‖ recipient ‖ commitment (32·t) ‖ E_i (32) ‖ encrypted
//! share (64 + 16) ‖ signature (64)`.

use std::collections::BTreeMap;

use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use phr_sis::{NodeId, Threshold};
use rand::CryptoRng;
use sha2::{Digest, Sha512};

use super::faults::Misbehaviour;
use super::sealed::{Ephemeral, EphemeralKey, SealContext, deal_signed_bytes, sealed_len};
use super::{Core, HeldDeal, Outgoing, Recipient, Round, SessionId, complain};
use crate::identity::{Signature, random_scalar};
use crate::vss::{
    PedersenCommitment, PedersenDealer, PedersenShare, verify_pedersen_batch_vartime,
};
use crate::wire::{MessageKind, Reader, WireError, Writer};

/// Bytes of an encrypted `(s_ij, s'_ij)`.
pub const ENCRYPTED_SHARE_LEN: usize = sealed_len(64);

const DIGEST_DOMAIN: &[u8] = b"dealer-free-sis/v1/dkg-commitment";
/// The label sealed DKG shares are bound to.
pub(crate) const SHARE_LABEL: &[u8] = b"dkg-share";

/// The round-1 message from `dealer` to `recipient`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deal {
    /// The dealer `i`.
    pub dealer: NodeId,
    /// The recipient `j`.
    pub recipient: NodeId,
    /// `C_ik = a_ik·G + b_ik·H`, `k = 0..t`.
    pub commitment: PedersenCommitment,
    /// The dealer's ephemeral key `E_i` of this session, with its proof of possession.
    pub ephemeral: Ephemeral,
    /// `(s_ij ‖ s'_ij)` sealed for the recipient under `E_i`.
    pub encrypted_share: [u8; ENCRYPTED_SHARE_LEN],
    /// The dealer's signature over [`commitment_digest`], the recipient and the ciphertext.
    pub signature: Signature,
}

/// The layout of a deal, from its parts (commitment and ephemeral key already encoded).
fn encode(
    dealer: NodeId,
    recipient: NodeId,
    committed: &[u8],
    encrypted_share: &[u8; ENCRYPTED_SHARE_LEN],
    signature: &Signature,
) -> Vec<u8> {
    let len = 4 + committed.len() + ENCRYPTED_SHARE_LEN + crate::identity::SIGNATURE_LEN;
    let mut w = Writer::with_capacity(MessageKind::DkgDeal, len);
    w.node(dealer);
    w.node(recipient);
    w.bytes(committed);
    w.bytes(encrypted_share);
    signature.write(&mut w);
    w.finish()
}

/// `commitment ‖ E ‖ proof of possession`: what the commitment digest covers.
pub(crate) fn committed_bytes(commitment: &[u8], ephemeral: &Ephemeral) -> Vec<u8> {
    let mut v = Vec::with_capacity(commitment.len() + super::sealed::EPHEMERAL_LEN);
    v.extend_from_slice(commitment);
    v.extend_from_slice(&ephemeral.to_bytes());
    v
}

impl Deal {
    /// The canonical encoding.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(
            self.dealer,
            self.recipient,
            &committed_bytes(&self.commitment.to_bytes(), &self.ephemeral),
            &self.encrypted_share,
            &self.signature,
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
        let ephemeral = Ephemeral::read(&mut r)?;
        let encrypted_share = r.array::<ENCRYPTED_SHARE_LEN>("encrypted share")?;
        let signature = Signature::read(&mut r)?;
        r.finish()?;
        Ok(Deal {
            dealer,
            recipient,
            commitment,
            ephemeral,
            encrypted_share,
            signature,
        })
    }

    /// `D_i` of this deal.
    #[must_use]
    pub fn digest(&self, session: &SessionId) -> [u8; 32] {
        commitment_digest(
            session,
            self.dealer,
            &committed_bytes(&self.commitment.to_bytes(), &self.ephemeral),
        )
    }

    /// The share this deal seals, opened by its recipient (`None` if it does not open).
    #[must_use]
    pub fn open(
        &self,
        keys: &crate::identity::NodeKeys,
        session: &SessionId,
    ) -> Option<PedersenShare> {
        let shared = keys.exchange(&self.ephemeral.point);
        self.open_for(session, self.recipient, &shared, &self.encrypted_share)
    }

    /// The share a complaint's evidence about this dealer opens for `accuser` — public by
    /// design, for anyone holding any deal of the dealer (`None` if it does not open).
    #[must_use]
    pub fn open_evidence(
        &self,
        evidence: &super::sealed::ShareEvidence,
        accuser: NodeId,
        session: &SessionId,
    ) -> Option<PedersenShare> {
        self.open_for(session, accuser, &evidence.shared, &evidence.ciphertext)
    }

    /// This deal's share, opened with an exchange point `K` published by its recipient
    /// (`None` if `K` does not open it).
    #[must_use]
    pub fn open_with(&self, shared: &RistrettoPoint, session: &SessionId) -> Option<PedersenShare> {
        self.open_for(session, self.recipient, shared, &self.encrypted_share)
    }

    /// Opens `ciphertext`, sealed by this deal's dealer for `recipient`, with the exchange
    /// point `shared`.
    fn open_for(
        &self,
        session: &SessionId,
        recipient: NodeId,
        shared: &RistrettoPoint,
        ciphertext: &[u8],
    ) -> Option<PedersenShare> {
        let digest = self.digest(session);
        let ctx = SealContext {
            session: session.as_bytes(),
            label: SHARE_LABEL,
            dealer: self.dealer,
            recipient,
            aad: &digest,
        };
        decode_share(
            recipient,
            &ctx.open_with(&self.ephemeral.point, shared, ciphertext)?,
        )
    }

    /// The bytes the dealer's signature covers.
    #[must_use]
    pub fn signed_bytes(&self, session: &SessionId) -> Vec<u8> {
        deal_signed_bytes(
            session.as_bytes(),
            self.dealer,
            &self.digest(session),
            self.recipient,
            &self.encrypted_share,
        )
    }

    /// The commitment digest `D_i`, from the deal's encoding `bytes`.
    pub(crate) fn digest_of(&self, session: &SessionId, bytes: &[u8]) -> [u8; 32] {
        let len = self.commitment.threshold() * 32 + super::sealed::EPHEMERAL_LEN;
        commitment_digest(
            session,
            self.dealer,
            bytes.get(4..4 + len).unwrap_or_default(),
        )
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

/// The digest `D_i` of dealer `i`'s commitment and ephemeral key (`committed`, see
/// `committed_bytes`) in a session: what every deal's signature covers and round 2 echoes.
#[must_use]
pub fn commitment_digest(session: &SessionId, dealer: NodeId, committed: &[u8]) -> [u8; 32] {
    let d = Sha512::new()
        .chain_update(DIGEST_DOMAIN)
        .chain_update(session.as_bytes())
        .chain_update([dealer.get()])
        .chain_update(committed)
        .finalize();
    let mut out = [0u8; 32];
    out.copy_from_slice(&d[..32]);
    out
}

/// Round 1, sending side: deal to every other participant.
pub(super) fn start<R: CryptoRng + ?Sized>(core: &mut Core, rng: &mut R) -> Vec<Outgoing> {
    let threshold = core.params.threshold;
    let session = core.params.session;
    let me = core.id();
    let dealer = PedersenDealer::new(threshold, rng);
    let ephemeral_key = EphemeralKey::generate(rng);
    let ephemeral = ephemeral_key.announce(session.as_bytes(), SHARE_LABEL, me, rng);
    // An equivocating dealer keeps a second, unrelated polynomial pair for half the nodes.
    let other = matches!(core.misbehaviour, Misbehaviour::Equivocate)
        .then(|| PedersenDealer::new(threshold, rng));
    let mut commitment = dealer.commitment().clone();
    if matches!(core.misbehaviour, Misbehaviour::BadCommitment) {
        commitment = corrupt_commitment(&commitment, threshold, rng);
    }
    // Compressing a point costs a field inversion: encode each commitment once, not once per
    // recipient.
    let committed = |c: &PedersenCommitment| {
        let bytes = committed_bytes(&c.to_bytes(), &ephemeral);
        let digest = commitment_digest(&session, me, &bytes);
        (bytes, digest)
    };
    let (main_bytes, main_digest) = committed(&commitment);
    let alternative = other.as_ref().map(|d| (d, committed(d.commitment())));
    core.deals.insert(
        me,
        HeldDeal {
            commitment: commitment.clone(),
            ephemeral,
            possession: true,
            digest: main_digest,
            sealed: None,
            share: Some(dealer.share(me)),
        },
    );
    let mut out = Vec::new();
    let others: Vec<NodeId> = core
        .others()
        .filter(|to| core.params.participants.contains_key(to))
        .collect();
    let to_keys: Vec<RistrettoPoint> = others
        .iter()
        .filter_map(|to| core.params.participants.get(to).map(|k| k.encryption))
        .collect();
    // Every recipient's exchange point, encoded with one field inversion.
    let exchanges = ephemeral_key.exchanges(&to_keys);
    let half = others.len() / 2;
    for (pos, to) in others.into_iter().enumerate() {
        let Some(exchange) = exchanges.get(pos) else {
            continue;
        };
        let (this_dealer, this_bytes, this_digest) = match &alternative {
            Some((alt, (bytes, dg))) if pos >= half => (*alt, bytes, *dg),
            _ => (&dealer, &main_bytes, main_digest),
        };
        let share = this_dealer.share(to);
        let mut value = share.value();
        if core.misbehaviour.corrupts_share_for(to) {
            value += Scalar::ONE;
        }
        let mut plain = zeroize::Zeroizing::new([0u8; 64]);
        plain[..32].copy_from_slice(value.as_bytes());
        plain[32..].copy_from_slice(share.blinding().as_bytes());
        let ctx = SealContext {
            session: session.as_bytes(),
            label: SHARE_LABEL,
            dealer: me,
            recipient: to,
            aad: &this_digest,
        };
        let sealed = ephemeral_key.seal_prepared(&ctx, exchange, plain.as_slice());
        let mut encrypted_share = [0u8; ENCRYPTED_SHARE_LEN];
        if sealed.len() == ENCRYPTED_SHARE_LEN {
            encrypted_share.copy_from_slice(&sealed);
        }
        let signature = core.keys.sign(
            &deal_signed_bytes(session.as_bytes(), me, &this_digest, to, &encrypted_share),
            rng,
        );
        core.sent.insert(to, (encrypted_share, signature));
        if !core.misbehaviour.is_silent() && !core.misbehaviour.withholds_deal_for(to) {
            out.push(Outgoing {
                round: Round::Deal,
                from: me,
                to: Recipient::Node(to),
                bytes: encode(me, to, this_bytes, &encrypted_share, &signature),
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

/// Opens a sealed `(s, s')` for `me` and checks nothing yet.
pub(crate) fn open_share(
    core: &Core,
    dealer: NodeId,
    ephemeral: &RistrettoPoint,
    digest: &[u8; 32],
    ciphertext: &[u8],
) -> Option<PedersenShare> {
    let me = core.id();
    let ctx = SealContext {
        session: core.params.session.as_bytes(),
        label: SHARE_LABEL,
        dealer,
        recipient: me,
        aad: digest,
    };
    let plain = ctx.open(&core.keys, ephemeral, ciphertext)?;
    decode_share(me, &plain)
}

/// Round 1, receiving side: check and open the deals, then send the round-2 message.
pub(super) fn finish<R: CryptoRng + ?Sized>(core: &mut Core, rng: &mut R) -> Vec<Outgoing> {
    let participants = core.params.participants.clone();
    let (inbox, forged) = core
        .inbox
        .take_round(|id| participants.get(&id).map(|k| &k.signing), rng);
    for from in forged {
        core.reject(from, Round::Deal, "deal signature does not verify");
    }
    let session = core.params.session;
    let mut opened: Vec<(NodeId, Deal, [u8; 32], Option<PedersenShare>)> = Vec::new();
    for (from, (bytes, msg)) in inbox {
        let super::DkgMessage::Deal(deal) = msg else {
            continue;
        };
        let digest = deal.digest_of(&session, &bytes);
        opened.push((from, deal, digest, None));
    }
    // Every ephemeral key's proof of possession, one batch. A deal whose proof fails is never
    // opened, so its recipient publishes nothing about it; every node holding the dealer's
    // commitment disqualifies it in round 3.
    let claims: Vec<_> = opened
        .iter()
        .map(|(from, deal, _, _)| deal.ephemeral.claim(session.as_bytes(), SHARE_LABEL, *from))
        .collect();
    let entries: Vec<_> = claims
        .iter()
        .zip(&opened)
        .map(|((key, msg), (_, deal, _, _))| {
            (key.as_ref(), msg.as_slice(), Some(&deal.ephemeral.proof))
        })
        .collect();
    let bad_possession = crate::identity::failing_signatures(&entries, rng);
    // The exchange points with every dealer's ephemeral key, encoded with one inversion.
    let held: Vec<usize> = (0..opened.len())
        .filter(|i| !bad_possession.contains(i))
        .collect();
    let mut points: Vec<RistrettoPoint> = held
        .iter()
        .filter_map(|i| opened.get(*i))
        .map(|(_, deal, _, _)| core.keys.exchange(&deal.ephemeral.point))
        .collect();
    let exchanges = super::sealed::exchange_bytes(&points);
    zeroize::Zeroize::zeroize(&mut points);
    for (i, (from, _, _, _)) in opened.iter().enumerate() {
        if bad_possession.contains(&i) {
            core.reject(
                *from,
                Round::Deal,
                "ephemeral key without a valid proof of possession",
            );
        }
    }
    let me = core.id();
    for (k, i) in held.into_iter().enumerate() {
        let (Some((from, deal, digest, share)), Some(exchange)) =
            (opened.get_mut(i), exchanges.get(k))
        else {
            continue;
        };
        let ctx = SealContext {
            session: session.as_bytes(),
            label: SHARE_LABEL,
            dealer: *from,
            recipient: me,
            aad: digest,
        };
        *share = ctx
            .open_prepared(&deal.ephemeral.bytes(), exchange, &deal.encrypted_share)
            .and_then(|plain| decode_share(me, &plain));
        if share.is_none() {
            core.reject(*from, Round::Deal, "encrypted share does not open");
        }
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
        let possession = !bad_possession.contains(&i);
        core.deals.insert(
            from,
            HeldDeal {
                commitment: deal.commitment,
                ephemeral: deal.ephemeral,
                possession,
                digest,
                sealed: Some((deal.encrypted_share, deal.signature)),
                share,
            },
        );
    }
    complain::send(core, rng)
}

pub(crate) fn decode_share(me: NodeId, plain: &[u8]) -> Option<PedersenShare> {
    let (a, b) = plain.split_at_checked(32)?;
    let value: Option<Scalar> = Scalar::from_canonical_bytes(a.try_into().ok()?).into();
    let blinding: Option<Scalar> = Scalar::from_canonical_bytes(b.try_into().ok()?).into();
    Some(PedersenShare::new(me, value?, blinding?))
}

/// The dealers' digests this node holds, for the echo.
pub(super) fn held_digests(core: &Core) -> BTreeMap<NodeId, [u8; 32]> {
    core.deals.iter().map(|(id, d)| (*id, d.digest)).collect()
}
