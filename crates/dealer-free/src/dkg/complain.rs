//! Round 2 of GJKR (step 1(b)): complaints, and an echo that checks the broadcast.
//!
//! > Each player `P_j` verifies the shares he received from the other players. For each
//! > `i = 1, …, n`, `P_j` checks if `g^{s_ij} h^{s'_ij} = Π_k (C_ik)^{j^k}`. If the check
//! > fails for an index `i`, `P_j` broadcasts a complaint against `P_i`.
//!
//! A complaint about a bad share carries [`ShareEvidence`]: the dealer's signed ciphertext,
//! the exchange point that opens it and a proof that the point is the accuser's, so every
//! node can judge the dealer in round 3 without the dealer revealing anything. A complaint
//! about a missing deal carries nothing; the dealer answers it by delivering the signed deal
//! again (round 3), which reveals nothing either.
//!
//! Every node sends one [`ComplaintMessage`], even with no complaint: it carries the
//! *echo*, a hash of the commitment digest of every dealer whose deal this node holds
//! ([`echo_hash`]). A receiver recomputes the echo from its own view over the same dealers;
//! a difference means some dealer sent different commitments to different nodes (or the
//! echoing node lies), and then round 3 carries the signed digests that settle it.
//!
//! Layout: `version ‖ kind ‖ sender ‖ echo (32) ‖ count (u16) ‖ (accused ‖ reason ‖
//! [evidence, for a bad share])* ‖ signature (64)`, complaints sorted by accused, at most one
//! per dealer; evidence is `ciphertext ‖ dealer's signature ‖ K (32) ‖ proof (64)`.

use std::collections::{BTreeMap, BTreeSet};

use phr_sis::NodeId;
use rand::CryptoRng;
use sha2::{Digest, Sha512};

use super::inbox::Arrival;
use super::sealed::{SealContext, ShareEvidence};
use super::{Core, DkgError, DkgMessage, Outgoing, Recipient, Round, SessionId, deal, justify};
use crate::identity::Signature;
use crate::wire::{MessageKind, Reader, WireError, Writer};

const ECHO_DOMAIN: &[u8] = b"dealer-free-sis/v1/dkg-echo";

/// Why a node complains against a dealer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ComplaintReason {
    /// No deal with a valid signature arrived from the dealer.
    MissingDeal,
    /// The share did not open or does not match the commitment.
    InvalidShare,
}

impl ComplaintReason {
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            ComplaintReason::MissingDeal => 1,
            ComplaintReason::InvalidShare => 2,
        }
    }

    pub(crate) fn from_byte(b: u8) -> Result<ComplaintReason, WireError> {
        match b {
            1 => Ok(ComplaintReason::MissingDeal),
            2 => Ok(ComplaintReason::InvalidShare),
            other => Err(WireError::InvalidField {
                field: "complaint reason",
                reason: format!("unknown reason {other}"),
            }),
        }
    }
}

/// One complaint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Complaint {
    /// The dealer complained against.
    pub accused: NodeId,
    /// Why.
    pub reason: ComplaintReason,
    /// For [`ComplaintReason::InvalidShare`]: the proof (absent for a missing deal).
    pub evidence: Option<ShareEvidence>,
}

/// Writes a complaint list: `count ‖ (accused ‖ reason ‖ [evidence])*`.
pub(crate) fn write_complaints(w: &mut Writer, complaints: &[Complaint]) {
    w.u16(u16::try_from(complaints.len()).unwrap_or(u16::MAX));
    for c in complaints {
        w.node(c.accused);
        w.u8(c.reason.to_byte());
        if let Some(e) = &c.evidence {
            e.write(w);
        }
    }
}

/// Reads a complaint list of `sender` whose evidence is about ciphertexts of
/// `ciphertext_len` bytes.
pub(crate) fn read_complaints(
    r: &mut Reader<'_>,
    sender: NodeId,
    ciphertext_len: usize,
) -> Result<Vec<Complaint>, WireError> {
    let count = r.u16("complaint count")?;
    let mut complaints: Vec<Complaint> = Vec::new();
    for _ in 0..count {
        let accused = r.node("accused")?;
        let reason = ComplaintReason::from_byte(r.u8("complaint reason")?)?;
        if accused == sender || complaints.last().is_some_and(|c| c.accused >= accused) {
            return Err(WireError::InvalidField {
                field: "complaints",
                reason: "must be sorted, unique and not against the sender".into(),
            });
        }
        let evidence = match reason {
            ComplaintReason::MissingDeal => None,
            ComplaintReason::InvalidShare => Some(ShareEvidence::read(r, ciphertext_len)?),
        };
        complaints.push(Complaint {
            accused,
            reason,
            evidence,
        });
    }
    Ok(complaints)
}

/// The round-2 broadcast of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComplaintMessage {
    /// The sender.
    pub sender: NodeId,
    /// [`echo_hash`] of the digests the sender holds.
    pub echo: [u8; 32],
    /// Complaints, sorted by accused.
    pub complaints: Vec<Complaint>,
    /// The sender's signature.
    pub signature: Signature,
}

impl ComplaintMessage {
    fn body(sender: NodeId, echo: &[u8; 32], complaints: &[Complaint]) -> Writer {
        let mut w = Writer::new(MessageKind::DkgComplaint);
        w.node(sender);
        w.bytes(echo);
        write_complaints(&mut w, complaints);
        w
    }

    /// The canonical encoding.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = ComplaintMessage::body(self.sender, &self.echo, &self.complaints);
        self.signature.write(&mut w);
        w.finish()
    }

    /// Decodes a complaint message.
    ///
    /// # Errors
    /// A [`WireError`] naming the first bad field (complaints out of order, against the
    /// sender itself, or repeated are invalid).
    pub fn from_bytes(bytes: &[u8]) -> Result<ComplaintMessage, WireError> {
        let mut r = Reader::new(bytes, MessageKind::DkgComplaint)?;
        let sender = r.node("sender")?;
        let echo = r.array::<32>("echo")?;
        let complaints = read_complaints(&mut r, sender, deal::ENCRYPTED_SHARE_LEN)?;
        let signature = Signature::read(&mut r)?;
        r.finish()?;
        Ok(ComplaintMessage {
            sender,
            echo,
            complaints,
            signature,
        })
    }
}

/// `H(domain ‖ session ‖ (dealer ‖ digest)*)` over the given dealers, in id order.
#[must_use]
pub fn echo_hash<'a>(
    session: &SessionId,
    digests: impl IntoIterator<Item = (&'a NodeId, &'a [u8; 32])>,
) -> [u8; 32] {
    let mut h = Sha512::new()
        .chain_update(ECHO_DOMAIN)
        .chain_update(session.as_bytes());
    for (id, d) in digests {
        h.update([id.get()]);
        h.update(d);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(&h.finalize()[..32]);
    out
}

/// End of round 1: complain about every dealer without a valid share (with evidence where
/// a signed deal failed), echo the rest.
pub(super) fn send<R: CryptoRng + ?Sized>(core: &mut Core, rng: &mut R) -> Vec<Outgoing> {
    let me = core.id();
    let session = core.params.session;
    let mut complaints = Vec::new();
    for dealer in core.others().collect::<Vec<_>>() {
        let held = core.deals.get(&dealer);
        let bad_share = match held {
            None => {
                complaints.push(Complaint {
                    accused: dealer,
                    reason: ComplaintReason::MissingDeal,
                    evidence: None,
                });
                continue;
            }
            // A deal whose ephemeral key is not provably the dealer's is never complained
            // about with evidence (that would publish `p_j·E` for someone else's `E`); every
            // node disqualifies its dealer in round 3.
            Some(d) if !d.possession => false,
            Some(d) => d.share.is_none() || core.misbehaviour.falsely_accuses(dealer),
        };
        if let (true, Some(d)) = (bad_share, held)
            && let Some((ciphertext, signature)) = &d.sealed
        {
            let ctx = SealContext {
                session: session.as_bytes(),
                label: deal::SHARE_LABEL,
                dealer,
                recipient: me,
                aad: &d.digest,
            };
            let evidence = ShareEvidence::new(
                &core.keys,
                &ctx,
                &d.ephemeral.point,
                ciphertext,
                *signature,
                rng,
            );
            complaints.push(Complaint {
                accused: dealer,
                reason: ComplaintReason::InvalidShare,
                evidence: Some(evidence),
            });
        }
    }
    let digests = deal::held_digests(core);
    let echo = echo_hash(&core.params.session, &digests);
    let w = ComplaintMessage::body(me, &echo, &complaints);
    let bytes = super::sign_body(&core.keys, &core.params.session, w, rng);
    broadcast(core, Round::Complain, bytes)
}

/// Queues a broadcast and delivers it to this node too, so that every round processes its
/// own message like the others'.
pub(super) fn broadcast(core: &mut Core, round: Round, bytes: Vec<u8>) -> Vec<Outgoing> {
    let me = core.id();
    if let Ok(msg) = DkgMessage::from_bytes(&bytes, core.params.threshold) {
        core.inbox.insert_own(me, Arrival::own(bytes.clone(), msg));
    }
    if core.misbehaviour.is_silent() {
        return Vec::new();
    }
    vec![Outgoing {
        round,
        from: me,
        to: Recipient::All,
        bytes,
    }]
}

/// Complaints against each dealer: accused → (accuser → complaint).
pub(crate) type ComplaintsAgainst = BTreeMap<NodeId, BTreeMap<NodeId, Complaint>>;

/// End of round 2: collect complaints, check echoes, send justifications and evidence.
pub(super) fn finish<R: CryptoRng + ?Sized>(
    core: &mut Core,
    rng: &mut R,
) -> Result<(Box<justify::Pending>, Vec<Outgoing>), DkgError> {
    let msgs = core.verified_round(Round::Complain, rng);
    let session = core.params.session;
    let held = deal::held_digests(core);
    let participants: BTreeSet<NodeId> = core.params.participants.keys().copied().collect();
    let mut against: ComplaintsAgainst = BTreeMap::new();
    let mut echo_mismatch = false;
    for (from, msg) in &msgs {
        let DkgMessage::Complaint(m) = msg else {
            continue;
        };
        let mut missing = BTreeSet::new();
        for c in &m.complaints {
            if participants.contains(&c.accused) {
                against
                    .entry(c.accused)
                    .or_default()
                    .insert(*from, c.clone());
            }
            if c.reason == ComplaintReason::MissingDeal {
                missing.insert(c.accused);
            }
        }
        // The dealers the sender claims to hold: all but those it says are missing.
        let claimed: Vec<NodeId> = participants.difference(&missing).copied().collect();
        if claimed.iter().all(|d| held.contains_key(d)) {
            let expected = echo_hash(
                &session,
                claimed.iter().filter_map(|d| held.get_key_value(d)),
            );
            if expected != m.echo {
                echo_mismatch = true;
                core.reject(
                    *from,
                    Round::Complain,
                    "echo differs from this node's view of the commitments",
                );
            }
        }
    }
    let pending = Box::new(justify::Pending {
        complaints: against,
    });
    let out = justify::send(core, &pending, echo_mismatch, rng);
    Ok((pending, out))
}
