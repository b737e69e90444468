//! Round 3 of GJKR (steps 1(c)–(d)): justifications, disqualification and `QUAL`.
//!
//! > Each dealer `P_i` who, as a dealer, received a complaint from player `P_j` broadcasts
//! > the values `s_ij, s'_ij` that satisfy Eq. (4). Each player marks as disqualified any
//! > player that either received more than `t` complaints in Step 1b, or answered to a
//! > complaint in Step 1c with values that falsify Eq. (4). Each player then builds the set
//! > of non-disqualified players `QUAL`.
//!
//! A [`JustificationMessage`] is sent only by nodes that need to: a dealer that was accused
//! reveals the shares complained about (and, if a node said it got no deal at all, its
//! signed commitment); a node that saw an echo mismatch, or holds the deal of a dealer some
//! node never got, adds the dealer digests it holds with the dealers' signatures
//! ([`SignedDigest`]). Two valid signatures of one dealer over different digests prove
//! equivocation. The "more than `t` complaints" rule is not needed: with at most `t − 1`
//! faulty nodes an honest dealer cannot collect `t` complaints, and revealing a faulty
//! dealer's shares costs nothing.
//!
//! Every node then applies the same rules to the same messages ([`Disqualification`]) and
//! gets the same `QUAL`; its key share is the sum of the shares of the qualified dealers,
//! taking the revealed share where its own was bad.
//!
//! Layout: `version ‖ kind ‖ sender ‖ has_commitment (0|1) ‖ [commitment (32·t) ‖
//! commitment signature (64)] ‖ count (u16) ‖ (accuser ‖ s ‖ s')* ‖ count (u16) ‖ (dealer ‖
//! digest ‖ signature)* ‖ signature (64)`, both lists sorted by node id.

use std::collections::{BTreeMap, BTreeSet};

use curve25519_dalek::scalar::Scalar;
use phr_sis::{NodeId, Threshold};
use rand::CryptoRng;

use super::complain::{ComplaintReason, ComplaintsAgainst, broadcast};
use super::deal::{commitment_digest, commitment_signed_bytes, read_commitment};
use super::{Core, Disqualification, DkgError, DkgMessage, Outgoing, Round, confirm};
use crate::identity::Signature;
use crate::vss::{PedersenCommitment, PedersenShare, verify_pedersen_share};
use crate::wire::{MessageKind, Reader, WireError, Writer};

/// A share revealed in answer to a complaint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevealedShare {
    /// The node that complained; the share is `(f_i(accuser), f'_i(accuser))`.
    pub accuser: NodeId,
    /// `s_ij`.
    pub value: Scalar,
    /// `s'_ij`.
    pub blinding: Scalar,
}

/// A dealer's signed commitment digest, relayed as evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedDigest {
    /// The dealer.
    pub dealer: NodeId,
    /// The digest of its commitment.
    pub digest: [u8; 32],
    /// The dealer's signature over the digest.
    pub signature: Signature,
}

/// The round-3 broadcast of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JustificationMessage {
    /// The sender.
    pub sender: NodeId,
    /// The sender's own commitment and signature, present when some node got no deal.
    pub commitment: Option<(PedersenCommitment, Signature)>,
    /// Shares revealed for complaints against the sender, sorted by accuser.
    pub revealed: Vec<RevealedShare>,
    /// Other dealers' signed digests, sorted by dealer.
    pub evidence: Vec<SignedDigest>,
    /// The sender's signature.
    pub signature: Signature,
}

impl JustificationMessage {
    fn body(
        sender: NodeId,
        commitment: Option<&(PedersenCommitment, Signature)>,
        revealed: &[RevealedShare],
        evidence: &[SignedDigest],
    ) -> Writer {
        let mut w = Writer::new(MessageKind::DkgJustification);
        w.node(sender);
        match commitment {
            Some((c, sig)) => {
                w.u8(1);
                w.bytes(&c.to_bytes());
                sig.write(&mut w);
            }
            None => w.u8(0),
        }
        w.u16(u16::try_from(revealed.len()).unwrap_or(u16::MAX));
        for r in revealed {
            w.node(r.accuser);
            w.scalar(&r.value);
            w.scalar(&r.blinding);
        }
        w.u16(u16::try_from(evidence.len()).unwrap_or(u16::MAX));
        for e in evidence {
            w.node(e.dealer);
            w.bytes(&e.digest);
            e.signature.write(&mut w);
        }
        w
    }

    /// The canonical encoding.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = JustificationMessage::body(
            self.sender,
            self.commitment.as_ref(),
            &self.revealed,
            &self.evidence,
        );
        self.signature.write(&mut w);
        w.finish()
    }

    /// Decodes a justification of a session with threshold `threshold`.
    ///
    /// # Errors
    /// A [`WireError`] naming the first bad field.
    pub fn from_bytes(
        bytes: &[u8],
        threshold: Threshold,
    ) -> Result<JustificationMessage, WireError> {
        let mut r = Reader::new(bytes, MessageKind::DkgJustification)?;
        let sender = r.node("sender")?;
        let commitment = match r.u8("commitment flag")? {
            0 => None,
            1 => Some((
                read_commitment(&mut r, threshold)?,
                Signature::read(&mut r)?,
            )),
            other => {
                return Err(WireError::InvalidField {
                    field: "commitment flag",
                    reason: format!("{other} is neither 0 nor 1"),
                });
            }
        };
        let mut revealed: Vec<RevealedShare> = Vec::new();
        for _ in 0..r.u16("revealed count")? {
            let accuser = r.node("accuser")?;
            if revealed.last().is_some_and(|p| p.accuser >= accuser) {
                return Err(unsorted("revealed shares"));
            }
            revealed.push(RevealedShare {
                accuser,
                value: r.scalar("revealed share")?,
                blinding: r.scalar("revealed blinding share")?,
            });
        }
        let mut evidence: Vec<SignedDigest> = Vec::new();
        for _ in 0..r.u16("evidence count")? {
            let dealer = r.node("evidence dealer")?;
            if evidence.last().is_some_and(|p| p.dealer >= dealer) {
                return Err(unsorted("evidence"));
            }
            evidence.push(SignedDigest {
                dealer,
                digest: r.array::<32>("evidence digest")?,
                signature: Signature::read(&mut r)?,
            });
        }
        let signature = Signature::read(&mut r)?;
        r.finish()?;
        Ok(JustificationMessage {
            sender,
            commitment,
            revealed,
            evidence,
            signature,
        })
    }
}

fn unsorted(field: &'static str) -> WireError {
    WireError::InvalidField {
        field,
        reason: "entries must be sorted by node id and unique".into(),
    }
}

/// What round 3 needs from round 2.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) complaints: ComplaintsAgainst,
}

/// End of round 2, sending side.
pub(super) fn send<R: CryptoRng + ?Sized>(
    core: &mut Core,
    pending: &Pending,
    echo_mismatch: bool,
    rng: &mut R,
) -> Vec<Outgoing> {
    let me = core.id();
    let mut revealed = Vec::new();
    let mut commitment = None;
    if let (Some(accusers), Some(dealer)) = (pending.complaints.get(&me), &core.polynomial) {
        for (accuser, reason) in accusers {
            let share = dealer.share(*accuser);
            let mut value = share.value();
            if core.misbehaviour.corrupts_justification_for(*accuser) {
                value += Scalar::ONE;
            }
            revealed.push(RevealedShare {
                accuser: *accuser,
                value,
                blinding: share.blinding(),
            });
            if *reason == ComplaintReason::MissingDeal
                && let Some(own) = core.deals.get(&me)
            {
                commitment = Some((own.commitment.clone(), own.signature));
            }
        }
    }
    let missing_somewhere: BTreeSet<NodeId> = pending
        .complaints
        .iter()
        .filter(|(_, by)| by.values().any(|r| *r == ComplaintReason::MissingDeal))
        .map(|(d, _)| *d)
        .collect();
    let evidence: Vec<SignedDigest> = core
        .deals
        .iter()
        .filter(|(d, _)| **d != me && (echo_mismatch || missing_somewhere.contains(d)))
        .map(|(d, held)| SignedDigest {
            dealer: *d,
            digest: held.digest,
            signature: held.signature,
        })
        .collect();
    if revealed.is_empty() && evidence.is_empty() && commitment.is_none() {
        return Vec::new();
    }
    let w = JustificationMessage::body(me, commitment.as_ref(), &revealed, &evidence);
    let bytes = super::sign_body(&core.keys, &core.params.session, w, rng);
    broadcast(core, Round::Justify, bytes)
}

/// End of round 3: decide `QUAL`, compute the key share, send the confirmation.
pub(super) fn finish<R: CryptoRng + ?Sized>(
    core: &mut Core,
    pending: Pending,
    rng: &mut R,
) -> Result<(Box<confirm::Pending>, Vec<Outgoing>), DkgError> {
    let inbox = core.take_inbox();
    let msgs: BTreeMap<NodeId, DkgMessage> = core
        .verify_broadcasts(Round::Justify, inbox, rng)
        .into_iter()
        .map(|(from, (_, m))| (from, m))
        .collect();
    let session = core.params.session;
    let me = core.id();
    let justifications: BTreeMap<NodeId, JustificationMessage> = msgs
        .into_iter()
        .filter_map(|(from, m)| match m {
            DkgMessage::Justification(j) => Some((from, j)),
            _ => None,
        })
        .collect();

    // Every validly signed digest per dealer: held deals, justified commitments, evidence.
    let mut digests: BTreeMap<NodeId, BTreeSet<[u8; 32]>> = core
        .deals
        .iter()
        .map(|(d, h)| (*d, BTreeSet::from([h.digest])))
        .collect();
    let mut adopted: BTreeMap<NodeId, PedersenCommitment> = BTreeMap::new();
    let mut claims: Vec<(NodeId, [u8; 32], Signature)> = Vec::new();
    for (from, j) in &justifications {
        if let Some((c, sig)) = &j.commitment {
            let digest = commitment_digest(&session, *from, &c.to_bytes());
            claims.push((*from, digest, *sig));
            if !core.deals.contains_key(from) {
                adopted.insert(*from, c.clone());
            }
        }
        for e in &j.evidence {
            claims.push((e.dealer, e.digest, e.signature));
        }
    }
    let signed: Vec<Vec<u8>> = claims
        .iter()
        .map(|(_, d, _)| commitment_signed_bytes(d))
        .collect();
    for ((dealer, digest, sig), msg) in claims.iter().zip(&signed) {
        let known = digests.get(dealer).is_some_and(|s| s.contains(digest));
        if known {
            continue;
        }
        let valid = core
            .params
            .participants
            .get(dealer)
            .is_some_and(|k| k.signing.verify(msg, sig));
        if valid {
            digests.entry(*dealer).or_default().insert(*digest);
        }
    }

    let mut disqualified: BTreeMap<NodeId, Disqualification> = BTreeMap::new();
    let mut my_shares: Vec<PedersenShare> = Vec::new();
    let participants: Vec<NodeId> = core.params.participants.keys().copied().collect();
    for dealer in participants {
        if digests.get(&dealer).is_some_and(|s| s.len() > 1) {
            disqualified.insert(dealer, Disqualification::Equivocation);
            continue;
        }
        let commitment = core
            .deals
            .get(&dealer)
            .map(|h| &h.commitment)
            .or_else(|| adopted.get(&dealer));
        let justification = justifications.get(&dealer);
        let mut verdict = None;
        let mut revealed_for_me = None;
        for (accuser, reason) in pending.complaints.get(&dealer).into_iter().flatten() {
            let revealed =
                justification.and_then(|j| j.revealed.iter().find(|r| r.accuser == *accuser));
            let has_commitment = justification.is_some_and(|j| j.commitment.is_some());
            let (Some(revealed), Some(commitment)) = (revealed, commitment) else {
                verdict = Some(Disqualification::MissingJustification { accuser: *accuser });
                break;
            };
            if *reason == ComplaintReason::MissingDeal && !has_commitment {
                verdict = Some(Disqualification::MissingJustification { accuser: *accuser });
                break;
            }
            let share = PedersenShare::new(*accuser, revealed.value, revealed.blinding);
            if verify_pedersen_share(&share, commitment).is_err() {
                verdict = Some(Disqualification::InvalidJustification { accuser: *accuser });
                break;
            }
            if *accuser == me {
                revealed_for_me = Some(share);
            }
        }
        if commitment.is_none() && verdict.is_none() {
            verdict = Some(Disqualification::NoCommitment);
        }
        if let Some(v) = verdict {
            disqualified.insert(dealer, v);
            continue;
        }
        let own = core.deals.get(&dealer).and_then(|h| h.share.clone());
        match own.or(revealed_for_me) {
            Some(share) => my_shares.push(share),
            // Unreachable for an honest node: a dealer it holds no share from is one it
            // complained about, and a qualified dealer answered that complaint.
            None => {
                disqualified.insert(
                    dealer,
                    Disqualification::MissingJustification { accuser: me },
                );
            }
        }
    }
    let qualified: BTreeSet<NodeId> = core
        .params
        .participants
        .keys()
        .filter(|d| !disqualified.contains_key(d))
        .copied()
        .collect();
    // t or more provably faulty dealers mean a coalition that could reconstruct the key
    // exists: refuse to output one.
    if disqualified.len() >= usize::from(core.t()) {
        return Err(DkgError::TooManyDisqualified {
            max: core.t() - 1,
            qualified,
            disqualified,
        });
    }
    let commitments: BTreeMap<NodeId, (&PedersenCommitment, [u8; 32])> = qualified
        .iter()
        .filter_map(|d| {
            let digest = digests.get(d).and_then(|s| s.first().copied())?;
            let c = core
                .deals
                .get(d)
                .map(|h| &h.commitment)
                .or_else(|| adopted.get(d))?;
            Some((*d, (c, digest)))
        })
        .collect();
    let pending = confirm::prepare(core, qualified, disqualified, &commitments, &my_shares);
    // The node's own polynomials are no longer needed.
    core.polynomial = None;
    let out = confirm::send(core, &pending, rng);
    Ok((Box::new(pending), out))
}
