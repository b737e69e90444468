//! Resharing: hand a DKG's key to a new set of nodes (new `n`, new `t`) without ever
//! assembling it — proactive refresh and node replacement.
//!
//! The old committee holds shares `x_i` of `x` (threshold `t_old`) with public verification
//! shares `Y_i = x_i·G`. Each participating old node `i` (a *dealer*) shares its own `x_i`
//! with Feldman VSS of degree `t_new − 1` to the new committee (the *receivers*): a
//! polynomial `g_i` with `g_i(0) = x_i`, commitment `E_ik = g_ik·G`, share `g_i(j)` encrypted
//! to receiver `j`. Because `E_i0` must equal the public `Y_i`, a dealer cannot re-deal
//! anything but its real share. Receivers complain, accused dealers reveal, equivocation is
//! settled with signed digests, exactly as in the DKG ([`crate::dkg`]), and every receiver
//! then takes the same set `S` — the `t_old` lowest-numbered qualified dealers — and computes
//!
//! `x'_j = Σ_{i∈S} λ_i^S·g_i(j)`,   `Y'_k = Σ_{i∈S} λ_i^S·E_i(k)` for every receiver `k`.
//!
//! `Σ λ_i^S·g_i` is a fresh random polynomial of degree `t_new − 1` whose constant term is
//! `Σ λ_i^S·x_i = x`, so the group key is unchanged (checked: `Σ λ_i^S·E_i0 = X`), while the
//! new shares are independent of the old ones: old and new shares do not combine, and `t_old
//! − 1` old shares plus `t_new − 1` new ones reveal nothing. A last round confirms that every
//! receiver used the same transcript.
//!
//! | round | sender → receiver | content |
//! |---|---|---|
//! | 1 | dealer → each receiver | Feldman commitment, signature over its digest, encrypted `g_i(j)` |
//! | 2 | receiver → all | echo hash, complaints |
//! | 3 | dealer or receiver → all, when needed | revealed shares, own signed commitment, signed digests |
//! | 4 | receiver → all | transcript hash |
//!
//! Like the DKG, the state machine is sans-IO and tolerates up to `t_old − 1` faulty dealers
//! (a qualified set of `t_old` dealers must remain) and faulty receivers that lie in their
//! complaints.
//!
//! # References
//! * Y. Desmedt, S. Jajodia, "Redistributing Secret Shares to New Access Structures and Its
//!   Applications", GMU tech. report ISSE-TR-97-01, 1997.
//! * T. M. Wong, C. Wang, J. M. Wing, "Verifiable Secret Redistribution for Archive
//!   Systems", IEEE SISW 2002.
//! * A. Herzberg, S. Jarecki, H. Krawczyk, M. Yung, "Proactive Secret Sharing", CRYPTO 1995.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::VartimeMultiscalarMul;
use phr_sis::{NodeId, Threshold};
use rand::CryptoRng;
use sha2::{Digest, Sha512};

use crate::dkg::complain::{Complaint, ComplaintReason, echo_hash};
use crate::dkg::deal::{commitment_digest, commitment_signed_bytes};
use crate::dkg::{
    Disqualification, KeyShare, Recipient, Rejected, SessionId, body_of, signed_bytes,
};
use crate::identity::{NodeKeys, NodePublicKeys, SEAL_OVERHEAD, Signature};
use crate::vss::{FeldmanCommitment, FeldmanDealer, lagrange_at_zero, verify_share};
use crate::wire::{MessageKind, Reader, WireError, Writer, peek_kind};

const SESSION_DOMAIN: &[u8] = b"dealer-free-sis/v1/reshare-session";
const SHARE_LABEL: &[u8] = b"reshare-share";
const TRANSCRIPT_DOMAIN: &[u8] = b"dealer-free-sis/v1/reshare-transcript";
/// Bytes of an encrypted `g_i(j)`.
pub const ENCRYPTED_SHARE_LEN: usize = 32 + SEAL_OVERHEAD;

/// What the old committee publishes: its threshold, the group key and every verification
/// share (from [`crate::dkg::DkgOutput`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OldCommittee {
    /// `t_old`.
    pub threshold: u8,
    /// `X`.
    pub group_public_key: RistrettoPoint,
    /// `Y_i` of every old node.
    pub verification_shares: BTreeMap<NodeId, RistrettoPoint>,
}

/// Errors of resharing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReshareError {
    /// The parameters cannot work.
    #[error("invalid resharing parameters: {0}")]
    InvalidParams(String),
    /// A message does not decode.
    #[error("malformed message from node {from}: {error}")]
    Malformed {
        /// The transport's sender.
        from: NodeId,
        /// What is wrong.
        error: WireError,
    },
    /// A message from a node that has no role in the session, or that claims another sender,
    /// recipient or round.
    #[error("unexpected message from node {from}: {reason}")]
    Unexpected {
        /// The transport's sender.
        from: NodeId,
        /// What is wrong.
        reason: String,
    },
    /// Fewer than `t_old` dealers remain qualified.
    #[error("only {} dealers qualified, t_old = {needed} needed; disqualified: {:?}", qualified.len(), disqualified)]
    TooFewDealers {
        /// `t_old`.
        needed: u8,
        /// Qualified dealers.
        qualified: BTreeSet<NodeId>,
        /// Disqualified dealers and why.
        disqualified: BTreeMap<NodeId, Disqualification>,
    },
    /// Receivers confirmed different transcripts.
    #[error("receivers {nodes:?} confirmed a different transcript")]
    TranscriptMismatch {
        /// The receivers that differ.
        nodes: BTreeSet<NodeId>,
    },
    /// The session has ended.
    #[error("the resharing session has ended")]
    Finished,
}

impl ReshareError {
    /// The nodes this error blames.
    #[must_use]
    pub fn culprits(&self) -> BTreeSet<NodeId> {
        match self {
            ReshareError::Malformed { from, .. } | ReshareError::Unexpected { from, .. } => {
                BTreeSet::from([*from])
            }
            ReshareError::TooFewDealers { disqualified, .. } => {
                disqualified.keys().copied().collect()
            }
            ReshareError::TranscriptMismatch { nodes } => nodes.clone(),
            ReshareError::InvalidParams(_) | ReshareError::Finished => BTreeSet::new(),
        }
    }
}

/// The parameters every dealer and receiver agrees on.
#[derive(Debug, Clone)]
pub struct ReshareParams {
    session: SessionId,
    old: OldCommittee,
    dealers: BTreeMap<NodeId, NodePublicKeys>,
    new_threshold: Threshold,
    receivers: BTreeMap<NodeId, NodePublicKeys>,
}

impl ReshareParams {
    /// Resharing from `dealers` (old nodes, at least `t_old` of them) to `receivers` (the
    /// new committee, `new_threshold.n()` nodes). A node in both sets must have the same
    /// keys in both.
    ///
    /// # Errors
    /// [`ReshareError::InvalidParams`] for fewer than `t_old` dealers, a dealer without a
    /// verification share, a receiver count that is not `n_new`, `t_new < 2`, or a node
    /// registered with two different keys.
    pub fn new(
        label: &[u8],
        old: OldCommittee,
        dealers: BTreeMap<NodeId, NodePublicKeys>,
        new_threshold: Threshold,
        receivers: BTreeMap<NodeId, NodePublicKeys>,
    ) -> Result<ReshareParams, ReshareError> {
        let bad = |m: String| Err(ReshareError::InvalidParams(m));
        if dealers.len() < usize::from(old.threshold) || old.threshold < 2 {
            return bad(format!(
                "{} dealers given, t_old = {} (at least 2) needed",
                dealers.len(),
                old.threshold
            ));
        }
        if let Some(d) = dealers
            .keys()
            .find(|d| !old.verification_shares.contains_key(d))
        {
            return bad(format!("dealer {d} has no old verification share"));
        }
        if receivers.len() != usize::from(new_threshold.n()) || new_threshold.t() < 2 {
            return bad(format!(
                "{} receivers for new (t, n) = ({}, {}); need n receivers and t ≥ 2",
                receivers.len(),
                new_threshold.t(),
                new_threshold.n()
            ));
        }
        if let Some(id) = dealers
            .iter()
            .find(|(id, k)| receivers.get(id).is_some_and(|r| r != *k))
            .map(|(id, _)| id)
        {
            return bad(format!("node {id} is registered with two different keys"));
        }
        let mut h = Sha512::new()
            .chain_update(SESSION_DOMAIN)
            .chain_update((label.len() as u64).to_be_bytes())
            .chain_update(label)
            .chain_update([old.threshold])
            .chain_update(old.group_public_key.compress().as_bytes());
        for (id, y) in &old.verification_shares {
            h.update([id.get()]);
            h.update(y.compress().as_bytes());
        }
        for (tag, set) in [(b'D', &dealers), (b'R', &receivers)] {
            h.update([tag]);
            for (id, k) in set {
                h.update([id.get()]);
                h.update(k.to_bytes());
            }
        }
        h.update([new_threshold.t(), new_threshold.n()]);
        let mut sid = [0u8; 32];
        sid.copy_from_slice(&h.finalize()[..32]);
        Ok(ReshareParams {
            session: SessionId::from_bytes(sid),
            old,
            dealers,
            new_threshold,
            receivers,
        })
    }

    /// The session id.
    #[must_use]
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// Every node with a role, and its keys.
    fn everyone(&self) -> BTreeMap<NodeId, NodePublicKeys> {
        let mut all = self.dealers.clone();
        all.extend(self.receivers.iter().map(|(k, v)| (*k, *v)));
        all
    }
}

/// The rounds of resharing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReshareRound {
    /// Round 1.
    Deal,
    /// Round 2.
    Complain,
    /// Round 3.
    Justify,
    /// Round 4.
    Confirm,
    /// Ended.
    Done,
}

impl ReshareRound {
    fn of(kind: MessageKind) -> Option<ReshareRound> {
        match kind {
            MessageKind::ReshareDeal => Some(ReshareRound::Deal),
            MessageKind::ReshareComplaint => Some(ReshareRound::Complain),
            MessageKind::ReshareJustification => Some(ReshareRound::Justify),
            MessageKind::ReshareConfirmation => Some(ReshareRound::Confirm),
            _ => None,
        }
    }

    fn next(self) -> ReshareRound {
        match self {
            ReshareRound::Deal => ReshareRound::Complain,
            ReshareRound::Complain => ReshareRound::Justify,
            ReshareRound::Justify => ReshareRound::Confirm,
            ReshareRound::Confirm | ReshareRound::Done => ReshareRound::Done,
        }
    }
}

/// A message for the driver to deliver (`Recipient::All` = every other node with a role).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReshareOutgoing {
    /// The round.
    pub round: ReshareRound,
    /// The sender.
    pub from: NodeId,
    /// The recipient(s).
    pub to: Recipient,
    /// The signed encoding.
    pub bytes: Vec<u8>,
}

/// What a receiver holds at the end.
#[derive(Debug, Clone)]
pub struct ReshareOutput {
    /// Its new key share.
    pub key_share: KeyShare,
    /// The (unchanged) group key.
    pub group_public_key: RistrettoPoint,
    /// `(t_new, n_new)`.
    pub threshold: Threshold,
    /// `Y'_k` of every receiver.
    pub verification_shares: BTreeMap<NodeId, RistrettoPoint>,
    /// The dealers whose shares were combined.
    pub dealers_used: BTreeSet<NodeId>,
    /// The transcript hash every receiver confirmed (round 4).
    pub transcript: [u8; 32],
    /// Dealers left out, and why.
    pub disqualified: BTreeMap<NodeId, Disqualification>,
    /// Messages discarded, with the reason.
    pub rejected: Vec<Rejected>,
}

/// Round-1 message: `version ‖ kind ‖ dealer ‖ recipient ‖ commitment (32·t_new) ‖
/// signature ‖ encrypted share (32 + 16)`.
#[derive(Debug, Clone)]
struct ReshareDeal {
    recipient: NodeId,
    commitment: FeldmanCommitment,
    commitment_bytes: Vec<u8>,
    signature: Signature,
    encrypted_share: [u8; ENCRYPTED_SHARE_LEN],
}

/// Round-2: `version ‖ kind ‖ sender ‖ echo ‖ count ‖ (accused ‖ reason)* ‖ signature`.
#[derive(Debug, Clone)]
struct ReshareComplaints {
    echo: [u8; 32],
    complaints: Vec<Complaint>,
}

/// Round-3: `version ‖ kind ‖ sender ‖ has_commitment ‖ [commitment ‖ signature] ‖ count ‖
/// (accuser ‖ share)* ‖ count ‖ (dealer ‖ digest ‖ signature)* ‖ signature`.
#[derive(Debug, Clone)]
struct ReshareJustification {
    commitment: Option<(FeldmanCommitment, Vec<u8>, Signature)>,
    revealed: Vec<(NodeId, Scalar)>,
    evidence: Vec<(NodeId, [u8; 32], Signature)>,
}

#[derive(Debug, Clone)]
enum Body {
    Deal(ReshareDeal),
    Complaints(ReshareComplaints),
    Justification(ReshareJustification),
    Confirmation([u8; 32]),
}

fn read_feldman(
    r: &mut Reader<'_>,
    t: Threshold,
) -> Result<(FeldmanCommitment, Vec<u8>), WireError> {
    let bytes = r.slice("commitment", 32 * usize::from(t.t()))?;
    let c = FeldmanCommitment::from_bytes(bytes, t).map_err(|e| WireError::InvalidField {
        field: "commitment",
        reason: e.to_string(),
    })?;
    Ok((c, bytes.to_vec()))
}

fn decode(bytes: &[u8], t: Threshold) -> Result<(NodeId, Body), WireError> {
    let kind = peek_kind(bytes)?;
    let mut r = Reader::new(bytes, kind)?;
    let sender = r.node("sender")?;
    let body = match kind {
        MessageKind::ReshareDeal => {
            let recipient = r.node("recipient")?;
            let (commitment, commitment_bytes) = read_feldman(&mut r, t)?;
            Body::Deal(ReshareDeal {
                recipient,
                commitment,
                commitment_bytes,
                signature: Signature::read(&mut r)?,
                encrypted_share: r.array("encrypted share")?,
            })
        }
        MessageKind::ReshareComplaint => {
            let echo = r.array::<32>("echo")?;
            let mut complaints: Vec<Complaint> = Vec::new();
            for _ in 0..r.u16("complaint count")? {
                let accused = r.node("accused")?;
                let reason = match r.u8("complaint reason")? {
                    1 => ComplaintReason::MissingDeal,
                    2 => ComplaintReason::InvalidShare,
                    other => {
                        return Err(WireError::InvalidField {
                            field: "complaint reason",
                            reason: format!("unknown reason {other}"),
                        });
                    }
                };
                if complaints.last().is_some_and(|c| c.accused >= accused) {
                    return Err(unsorted("complaints"));
                }
                complaints.push(Complaint { accused, reason });
            }
            Signature::read(&mut r)?;
            Body::Complaints(ReshareComplaints { echo, complaints })
        }
        MessageKind::ReshareJustification => {
            let commitment = match r.u8("commitment flag")? {
                0 => None,
                1 => {
                    let (c, b) = read_feldman(&mut r, t)?;
                    Some((c, b, Signature::read(&mut r)?))
                }
                other => {
                    return Err(WireError::InvalidField {
                        field: "commitment flag",
                        reason: format!("{other} is neither 0 nor 1"),
                    });
                }
            };
            let mut revealed: Vec<(NodeId, Scalar)> = Vec::new();
            for _ in 0..r.u16("revealed count")? {
                let a = r.node("accuser")?;
                if revealed.last().is_some_and(|(p, _)| *p >= a) {
                    return Err(unsorted("revealed shares"));
                }
                revealed.push((a, r.scalar("revealed share")?));
            }
            let mut evidence: Vec<(NodeId, [u8; 32], Signature)> = Vec::new();
            for _ in 0..r.u16("evidence count")? {
                let d = r.node("evidence dealer")?;
                if evidence.last().is_some_and(|(p, _, _)| *p >= d) {
                    return Err(unsorted("evidence"));
                }
                evidence.push((d, r.array("evidence digest")?, Signature::read(&mut r)?));
            }
            Signature::read(&mut r)?;
            Body::Justification(ReshareJustification {
                commitment,
                revealed,
                evidence,
            })
        }
        MessageKind::ReshareConfirmation => {
            let t = r.array::<32>("transcript")?;
            Signature::read(&mut r)?;
            Body::Confirmation(t)
        }
        other => {
            return Err(WireError::UnexpectedKind {
                expected: MessageKind::ReshareDeal,
                got: other,
            });
        }
    };
    r.finish()?;
    Ok((sender, body))
}

/// A qualified dealer's commitment, its digest and this receiver's share.
type QualifiedDeal = (FeldmanCommitment, [u8; 32], Scalar);

fn unsorted(field: &'static str) -> WireError {
    WireError::InvalidField {
        field,
        reason: "entries must be sorted by node id and unique".into(),
    }
}

fn trailing_signature(bytes: &[u8]) -> Option<Signature> {
    let start = bytes.len().checked_sub(64)?;
    Signature::from_bytes(bytes.get(start..)?.try_into().ok()?)
}

/// One node's resharing session (as dealer, receiver, or both).
pub struct ReshareSession {
    params: ReshareParams,
    keys: NodeKeys,
    round: ReshareRound,
    dealer: Option<FeldmanDealer>,
    /// Deals held: dealer → (commitment, digest, signature, share if valid).
    deals: BTreeMap<NodeId, (FeldmanCommitment, [u8; 32], Signature, Option<Scalar>)>,
    complaints: BTreeMap<NodeId, BTreeMap<NodeId, ComplaintReason>>,
    inbox: BTreeMap<NodeId, (Vec<u8>, Body)>,
    early: BTreeMap<NodeId, (Vec<u8>, Body)>,
    rejected: Vec<Rejected>,
    transcript: [u8; 32],
    result: Option<ReshareOutput>,
}

impl fmt::Debug for ReshareSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReshareSession")
            .field("node", &self.keys.id())
            .field("round", &self.round)
            .finish_non_exhaustive()
    }
}

impl ReshareSession {
    /// Starts resharing for the node holding `keys`; a dealer passes its old key share.
    ///
    /// # Errors
    /// [`ReshareError::InvalidParams`] if the node has no role, its keys differ from the
    /// registered ones, or a dealer's share does not match its verification share.
    pub fn start<R: CryptoRng + ?Sized>(
        params: ReshareParams,
        keys: NodeKeys,
        old_share: Option<&KeyShare>,
        rng: &mut R,
    ) -> Result<(ReshareSession, Vec<ReshareOutgoing>), ReshareError> {
        let me = keys.id();
        let registered = params.everyone().get(&me).copied();
        if registered != Some(keys.public()) {
            return Err(ReshareError::InvalidParams(format!(
                "node {me} has no role in this resharing or its keys differ"
            )));
        }
        let mut out = Vec::new();
        let mut dealer = None;
        if params.dealers.contains_key(&me) {
            let share = old_share.ok_or_else(|| {
                ReshareError::InvalidParams(format!("dealer {me} needs its old key share"))
            })?;
            let y = params.old.verification_shares.get(&me).copied();
            if share.id() != me || Some(share.secret() * crate::vss::generator_g()) != y {
                return Err(ReshareError::InvalidParams(format!(
                    "node {me}'s key share does not match its verification share"
                )));
            }
            let d = FeldmanDealer::with_secret(*share.secret(), params.new_threshold, rng);
            let cbytes = d.commitment().to_bytes();
            let digest = commitment_digest(&params.session, me, &cbytes);
            let sig = keys.sign(&commitment_signed_bytes(&digest), rng);
            for (to, to_keys) in &params.receivers {
                let value = d.share(*to);
                let sealed = keys.seal(
                    *to,
                    &to_keys.encryption,
                    params.session.as_bytes(),
                    SHARE_LABEL,
                    &digest,
                    value.as_bytes(),
                );
                let mut w = Writer::new(MessageKind::ReshareDeal);
                w.node(me);
                w.node(*to);
                w.bytes(&cbytes);
                sig.write(&mut w);
                w.bytes(&sealed);
                out.push(ReshareOutgoing {
                    round: ReshareRound::Deal,
                    from: me,
                    to: Recipient::Node(*to),
                    bytes: w.finish(),
                });
            }
            dealer = Some(d);
        }
        let mut s = ReshareSession {
            params,
            keys,
            round: ReshareRound::Deal,
            dealer,
            deals: BTreeMap::new(),
            complaints: BTreeMap::new(),
            inbox: BTreeMap::new(),
            early: BTreeMap::new(),
            rejected: Vec::new(),
            transcript: [0; 32],
            result: None,
        };
        // A dealer that is also a receiver delivers its own deal to itself.
        let mine: Vec<Vec<u8>> = out
            .iter()
            .filter(|o| o.to == Recipient::Node(me))
            .map(|o| o.bytes.clone())
            .collect();
        out.retain(|o| o.to != Recipient::Node(me));
        for b in mine {
            s.handle_message(me, &b)?;
        }
        Ok((s, out))
    }

    /// The current round.
    #[must_use]
    pub fn round(&self) -> ReshareRound {
        self.round
    }

    /// Accepts one message the transport says came from `from`.
    ///
    /// # Errors
    /// [`ReshareError::Malformed`] or [`ReshareError::Unexpected`] reject the message;
    /// [`ReshareError::Finished`] after the end.
    pub fn handle_message(&mut self, from: NodeId, bytes: &[u8]) -> Result<(), ReshareError> {
        if self.round == ReshareRound::Done {
            return Err(ReshareError::Finished);
        }
        let unexpected = |reason: &str| ReshareError::Unexpected {
            from,
            reason: reason.into(),
        };
        let (sender, body) = decode(bytes, self.params.new_threshold)
            .map_err(|error| ReshareError::Malformed { from, error })?;
        if sender != from {
            return Err(unexpected("the message names another sender"));
        }
        let kind = peek_kind(bytes).map_err(|error| ReshareError::Malformed { from, error })?;
        let round = ReshareRound::of(kind).ok_or_else(|| unexpected("not a resharing message"))?;
        let me = self.keys.id();
        let allowed = match &body {
            Body::Deal(d) => self.params.dealers.contains_key(&from) && d.recipient == me,
            Body::Complaints(_) | Body::Confirmation(_) => {
                self.params.receivers.contains_key(&from)
            }
            Body::Justification(_) => self.params.everyone().contains_key(&from),
        };
        if !allowed {
            return Err(unexpected("sender has no such role, or wrong recipient"));
        }
        let slot = if round == self.round {
            &mut self.inbox
        } else if round == self.round.next() {
            &mut self.early
        } else {
            return Err(unexpected("message of another round"));
        };
        slot.entry(from).or_insert((bytes.to_vec(), body));
        Ok(())
    }

    fn take_verified<R: CryptoRng + ?Sized>(&mut self, rng: &mut R) -> BTreeMap<NodeId, Body> {
        let inbox = std::mem::replace(&mut self.inbox, std::mem::take(&mut self.early));
        let everyone = self.params.everyone();
        let session = self.params.session;
        let entries: Vec<(NodeId, Vec<u8>, Option<Signature>, Body)> = inbox
            .into_iter()
            .map(|(from, (bytes, body))| {
                let sig = trailing_signature(&bytes);
                (from, signed_bytes(&session, body_of(&bytes)), sig, body)
            })
            .collect();
        let checks: Vec<_> = entries
            .iter()
            .map(|(f, m, sig, body)| {
                // A deal carries no message signature; one arriving after round 1 is dropped.
                let sig = if matches!(body, Body::Deal(_)) {
                    None
                } else {
                    sig.as_ref()
                };
                (everyone.get(f).map(|k| &k.signing), m.as_slice(), sig)
            })
            .collect();
        let bad = crate::identity::failing_signatures(&checks, rng);
        let mut out = BTreeMap::new();
        for (i, (from, _, _, body)) in entries.into_iter().enumerate() {
            if bad.contains(&i) {
                self.rejected.push(Rejected {
                    from,
                    round: crate::dkg::Round::Done,
                    reason: format!("{:?} signature does not verify", self.round),
                });
            } else {
                out.insert(from, body);
            }
        }
        out
    }

    fn broadcast<R: CryptoRng + ?Sized>(
        &mut self,
        round: ReshareRound,
        w: Writer,
        rng: &mut R,
    ) -> Vec<ReshareOutgoing> {
        let me = self.keys.id();
        let bytes = crate::dkg::sign_body(&self.keys, &self.params.session, w, rng);
        if let Ok((_, body)) = decode(&bytes, self.params.new_threshold) {
            self.inbox.insert(me, (bytes.clone(), body));
        }
        vec![ReshareOutgoing {
            round,
            from: me,
            to: Recipient::All,
            bytes,
        }]
    }

    /// Ends the current round; returns the messages of the next one.
    ///
    /// # Errors
    /// [`ReshareError::TooFewDealers`] after round 3, [`ReshareError::TranscriptMismatch`]
    /// after round 4, [`ReshareError::Finished`] once done.
    pub fn end_round<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
    ) -> Result<Vec<ReshareOutgoing>, ReshareError> {
        let me = self.keys.id();
        let receiving = self.params.receivers.contains_key(&me);
        let out = match self.round {
            ReshareRound::Deal => {
                let msgs = std::mem::replace(&mut self.inbox, std::mem::take(&mut self.early));
                self.open_deals(msgs, rng);
                if receiving {
                    let mut complaints = Vec::new();
                    for d in self.params.dealers.keys() {
                        match self.deals.get(d) {
                            None => complaints.push(Complaint {
                                accused: *d,
                                reason: ComplaintReason::MissingDeal,
                            }),
                            Some((_, _, _, None)) => complaints.push(Complaint {
                                accused: *d,
                                reason: ComplaintReason::InvalidShare,
                            }),
                            Some(_) => {}
                        }
                    }
                    let digests: BTreeMap<NodeId, [u8; 32]> =
                        self.deals.iter().map(|(d, h)| (*d, h.1)).collect();
                    let mut w = Writer::new(MessageKind::ReshareComplaint);
                    w.node(me);
                    w.bytes(&echo_hash(&self.params.session, &digests));
                    w.u16(u16::try_from(complaints.len()).unwrap_or(u16::MAX));
                    for c in &complaints {
                        w.node(c.accused);
                        w.u8(match c.reason {
                            ComplaintReason::MissingDeal => 1,
                            ComplaintReason::InvalidShare => 2,
                        });
                    }
                    self.broadcast(ReshareRound::Complain, w, rng)
                } else {
                    Vec::new()
                }
            }
            ReshareRound::Complain => self.justify(rng),
            ReshareRound::Justify => self.decide(rng)?,
            ReshareRound::Confirm => {
                let msgs = self.take_verified(rng);
                let differ: BTreeSet<NodeId> = msgs
                    .iter()
                    .filter_map(|(from, b)| match b {
                        Body::Confirmation(t) if *t != self.transcript => Some(*from),
                        _ => None,
                    })
                    .collect();
                if receiving && !differ.is_empty() {
                    self.round = ReshareRound::Done;
                    return Err(ReshareError::TranscriptMismatch { nodes: differ });
                }
                if let Some(o) = &mut self.result {
                    o.rejected = std::mem::take(&mut self.rejected);
                }
                Vec::new()
            }
            ReshareRound::Done => return Err(ReshareError::Finished),
        };
        self.round = self.round.next();
        Ok(out)
    }

    fn open_deals<R: CryptoRng + ?Sized>(
        &mut self,
        msgs: BTreeMap<NodeId, (Vec<u8>, Body)>,
        rng: &mut R,
    ) {
        let session = self.params.session;
        let mut deals = Vec::new();
        for (from, (_, body)) in msgs {
            if let Body::Deal(d) = body {
                deals.push((
                    from,
                    commitment_digest(&session, from, &d.commitment_bytes),
                    d,
                ));
            }
        }
        let claims: Vec<_> = deals
            .iter()
            .map(|(f, digest, d)| {
                let key = self.params.dealers.get(f).map(|k| &k.signing);
                (key, digest, &d.signature)
            })
            .collect();
        let bad = crate::dkg::deal::failing_commitment_signatures(&claims, rng);
        let mut checks = Vec::new();
        for (i, (from, digest, d)) in deals.into_iter().enumerate() {
            if bad.contains(&i) {
                self.rejected.push(Rejected {
                    from,
                    round: crate::dkg::Round::Deal,
                    reason: "commitment signature does not verify".into(),
                });
                continue;
            }
            let expected_c0 = self.params.old.verification_shares.get(&from).copied();
            let share = self
                .params
                .dealers
                .get(&from)
                .and_then(|k| {
                    self.keys
                        .open(
                            from,
                            &k.encryption,
                            session.as_bytes(),
                            SHARE_LABEL,
                            &digest,
                            &d.encrypted_share,
                        )
                        .ok()
                })
                .and_then(|p| <[u8; 32]>::try_from(p.as_slice()).ok())
                .and_then(|b| Option::<Scalar>::from(Scalar::from_canonical_bytes(b)))
                .filter(|_| Some(d.commitment.public_key()) == expected_c0);
            if let Some(s) = share {
                checks.push((from, s, d.commitment.clone()));
            }
            self.deals
                .insert(from, (d.commitment, digest, d.signature, None));
        }
        let me = self.keys.id();
        let batch: Vec<(NodeId, Scalar, &FeldmanCommitment)> =
            checks.iter().map(|(_, s, c)| (me, *s, c)).collect();
        let failing: Vec<usize> = match crate::vss::verify_batch_vartime(&batch, rng) {
            Ok(()) => Vec::new(),
            Err(crate::vss::VssError::BatchVerificationFailed { failing }) => failing,
            Err(_) => (0..batch.len()).collect(),
        };
        for (i, (from, s, _)) in checks.into_iter().enumerate() {
            if !failing.contains(&i)
                && let Some(h) = self.deals.get_mut(&from)
            {
                h.3 = Some(s);
            }
        }
    }

    fn justify<R: CryptoRng + ?Sized>(&mut self, rng: &mut R) -> Vec<ReshareOutgoing> {
        let me = self.keys.id();
        let msgs = self.take_verified(rng);
        let session = self.params.session;
        let digests: BTreeMap<NodeId, [u8; 32]> =
            self.deals.iter().map(|(d, h)| (*d, h.1)).collect();
        let mut mismatch = false;
        for (from, body) in &msgs {
            let Body::Complaints(c) = body else { continue };
            let missing: BTreeSet<NodeId> = c
                .complaints
                .iter()
                .filter(|x| x.reason == ComplaintReason::MissingDeal)
                .map(|x| x.accused)
                .collect();
            for x in &c.complaints {
                if self.params.dealers.contains_key(&x.accused) {
                    self.complaints
                        .entry(x.accused)
                        .or_default()
                        .insert(*from, x.reason);
                }
            }
            let claimed: Vec<NodeId> = self
                .params
                .dealers
                .keys()
                .filter(|d| !missing.contains(d))
                .copied()
                .collect();
            if self.params.receivers.contains_key(&me)
                && claimed.iter().all(|d| digests.contains_key(d))
            {
                let expected = echo_hash(
                    &session,
                    claimed.iter().filter_map(|d| digests.get_key_value(d)),
                );
                mismatch |= expected != c.echo;
            }
        }
        let missing_somewhere: BTreeSet<NodeId> = self
            .complaints
            .iter()
            .filter(|(_, by)| by.values().any(|r| *r == ComplaintReason::MissingDeal))
            .map(|(d, _)| *d)
            .collect();
        let mut w = Writer::new(MessageKind::ReshareJustification);
        w.node(me);
        let mut needed = false;
        let accusers = self.complaints.get(&me).cloned().unwrap_or_default();
        match (
            &self.dealer,
            accusers
                .values()
                .any(|r| *r == ComplaintReason::MissingDeal),
        ) {
            (Some(d), true) => {
                let c = d.commitment();
                let digest = commitment_digest(&session, me, &c.to_bytes());
                w.u8(1);
                w.bytes(&c.to_bytes());
                self.keys
                    .sign(&commitment_signed_bytes(&digest), rng)
                    .write(&mut w);
                needed = true;
            }
            _ => w.u8(0),
        }
        let revealed: Vec<(NodeId, Scalar)> = match &self.dealer {
            Some(d) => accusers.keys().map(|a| (*a, d.share(*a))).collect(),
            None => Vec::new(),
        };
        w.u16(u16::try_from(revealed.len()).unwrap_or(u16::MAX));
        for (a, s) in &revealed {
            w.node(*a);
            w.scalar(s);
        }
        let evidence: Vec<(NodeId, [u8; 32], Signature)> = self
            .deals
            .iter()
            .filter(|(d, _)| **d != me && (mismatch || missing_somewhere.contains(d)))
            .map(|(d, h)| (*d, h.1, h.2))
            .collect();
        w.u16(u16::try_from(evidence.len()).unwrap_or(u16::MAX));
        for (d, dg, sig) in &evidence {
            w.node(*d);
            w.bytes(dg);
            sig.write(&mut w);
        }
        needed |= !revealed.is_empty() || !evidence.is_empty();
        if needed {
            self.broadcast(ReshareRound::Justify, w, rng)
        } else {
            Vec::new()
        }
    }

    fn decide<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
    ) -> Result<Vec<ReshareOutgoing>, ReshareError> {
        let me = self.keys.id();
        let session = self.params.session;
        let msgs = self.take_verified(rng);
        self.dealer = None;
        if !self.params.receivers.contains_key(&me) {
            return Ok(Vec::new());
        }
        let justifications: BTreeMap<NodeId, ReshareJustification> = msgs
            .into_iter()
            .filter_map(|(f, b)| match b {
                Body::Justification(j) => Some((f, j)),
                _ => None,
            })
            .collect();
        let mut digests: BTreeMap<NodeId, BTreeSet<[u8; 32]>> = self
            .deals
            .iter()
            .map(|(d, h)| (*d, BTreeSet::from([h.1])))
            .collect();
        let mut adopted: BTreeMap<NodeId, FeldmanCommitment> = BTreeMap::new();
        let mut claims = Vec::new();
        for (from, j) in &justifications {
            if let Some((c, bytes, sig)) = &j.commitment {
                claims.push((*from, commitment_digest(&session, *from, bytes), *sig));
                if !self.deals.contains_key(from) {
                    adopted.insert(*from, c.clone());
                }
            }
            claims.extend(j.evidence.iter().copied());
        }
        for (dealer, digest, sig) in claims {
            if digests.get(&dealer).is_some_and(|s| s.contains(&digest)) {
                continue;
            }
            if self
                .params
                .dealers
                .get(&dealer)
                .is_some_and(|k| k.signing.verify(&commitment_signed_bytes(&digest), &sig))
            {
                digests.entry(dealer).or_default().insert(digest);
            }
        }
        let mut disqualified = BTreeMap::new();
        let mut qualified: BTreeMap<NodeId, QualifiedDeal> = BTreeMap::new();
        for dealer in self.params.dealers.keys().copied() {
            if digests.get(&dealer).is_some_and(|s| s.len() > 1) {
                disqualified.insert(dealer, Disqualification::Equivocation);
                continue;
            }
            let commitment = self
                .deals
                .get(&dealer)
                .map(|h| h.0.clone())
                .or_else(|| adopted.get(&dealer).cloned());
            let Some(commitment) = commitment else {
                disqualified.insert(dealer, Disqualification::NoCommitment);
                continue;
            };
            if Some(commitment.public_key())
                != self.params.old.verification_shares.get(&dealer).copied()
            {
                disqualified.insert(
                    dealer,
                    Disqualification::InvalidJustification { accuser: me },
                );
                continue;
            }
            let j = justifications.get(&dealer);
            let mut verdict = None;
            let mut mine = None;
            for (accuser, reason) in self.complaints.get(&dealer).into_iter().flatten() {
                let revealed = j.and_then(|j| j.revealed.iter().find(|(a, _)| a == accuser));
                let Some((_, value)) = revealed else {
                    verdict = Some(Disqualification::MissingJustification { accuser: *accuser });
                    break;
                };
                if *reason == ComplaintReason::MissingDeal
                    && j.is_some_and(|j| j.commitment.is_none())
                {
                    verdict = Some(Disqualification::MissingJustification { accuser: *accuser });
                    break;
                }
                if verify_share(*accuser, value, &commitment).is_err() {
                    verdict = Some(Disqualification::InvalidJustification { accuser: *accuser });
                    break;
                }
                if *accuser == me {
                    mine = Some(*value);
                }
            }
            if let Some(v) = verdict {
                disqualified.insert(dealer, v);
                continue;
            }
            let own = self.deals.get(&dealer).and_then(|h| h.3);
            let digest = digests
                .get(&dealer)
                .and_then(|s| s.first().copied())
                .unwrap_or_default();
            match own.or(mine) {
                Some(s) => {
                    qualified.insert(dealer, (commitment, digest, s));
                }
                None => {
                    disqualified.insert(
                        dealer,
                        Disqualification::MissingJustification { accuser: me },
                    );
                }
            }
        }
        let t_old = usize::from(self.params.old.threshold);
        if qualified.len() < t_old {
            self.round = ReshareRound::Done;
            return Err(ReshareError::TooFewDealers {
                needed: self.params.old.threshold,
                qualified: qualified.keys().copied().collect(),
                disqualified,
            });
        }
        let used: Vec<(NodeId, QualifiedDeal)> = qualified.into_iter().take(t_old).collect();
        let ids: Vec<NodeId> = used.iter().map(|(d, _)| *d).collect();
        let lambdas = lagrange_at_zero(&ids);
        let mut x = Scalar::ZERO;
        for (l, (_, (_, _, s))) in lambdas.iter().zip(&used) {
            x += l * s;
        }
        // Y'_k = Σ λ_i·E_i(k): the λ-weighted sum of the commitments, evaluated at k.
        let tn = usize::from(self.params.new_threshold.t());
        let combined: Vec<RistrettoPoint> = (0..tn)
            .map(|k| {
                let pts: Vec<RistrettoPoint> = used
                    .iter()
                    .filter_map(|(_, (c, _, _))| c.points().get(k).copied())
                    .collect();
                RistrettoPoint::vartime_multiscalar_mul(&lambdas, &pts)
            })
            .collect();
        let verification_shares: BTreeMap<NodeId, RistrettoPoint> = self
            .params
            .receivers
            .keys()
            .map(|k| {
                let xk = Scalar::from(k.get());
                let mut acc = RistrettoPoint::default();
                for c in combined.iter().rev() {
                    acc = acc * xk + c;
                }
                (*k, acc)
            })
            .collect();
        let group_public_key = combined.first().copied().unwrap_or_default();
        let mut h = Sha512::new()
            .chain_update(TRANSCRIPT_DOMAIN)
            .chain_update(session.as_bytes());
        for (d, (_, digest, _)) in &used {
            h.update([d.get()]);
            h.update(digest);
        }
        self.transcript.copy_from_slice(&h.finalize()[..32]);
        self.result = Some(ReshareOutput {
            key_share: KeyShare::new(me, x),
            group_public_key,
            threshold: self.params.new_threshold,
            verification_shares,
            dealers_used: ids.into_iter().collect(),
            transcript: self.transcript,
            disqualified,
            rejected: Vec::new(),
        });
        let mut w = Writer::new(MessageKind::ReshareConfirmation);
        w.node(me);
        w.bytes(&self.transcript);
        Ok(self.broadcast(ReshareRound::Confirm, w, rng))
    }

    /// A receiver's result once done (`None` for a dealer that is not a receiver).
    #[must_use]
    pub fn output(&self) -> Option<&ReshareOutput> {
        (self.round == ReshareRound::Done)
            .then_some(self.result.as_ref())
            .flatten()
    }
}
