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

mod decide;
mod messages;
mod rounds;

use messages::{Body, HeldDeal, decode, seal_context};

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use phr_sis::{NodeId, Threshold};
use rand::CryptoRng;
use sha2::{Digest, Sha512};

use crate::dkg::complain::Complaint;
use crate::dkg::deal::{commitment_digest, committed_bytes};
use crate::dkg::inbox::{Arrival, Inbox, Kept, Refusal};
use crate::dkg::sealed::{Ephemeral, EphemeralKey, deal_signed_bytes};
use crate::dkg::{
    Disqualification, KeyShare, Recipient, Rejected, SessionId, body_of, signed_bytes,
};
use crate::identity::{NodeKeys, NodePublicKeys, Signature};
use crate::vss::{FeldmanCommitment, FeldmanDealer};
use crate::wire::{MessageKind, WireError, Writer, peek_kind};

const SESSION_DOMAIN: &[u8] = b"dealer-free-sis/v1/reshare-session";
const SHARE_LABEL: &[u8] = b"reshare-share";
const TRANSCRIPT_DOMAIN: &[u8] = b"dealer-free-sis/v1/reshare-transcript";
/// Bytes of an encrypted `g_i(j)`.
pub const ENCRYPTED_SHARE_LEN: usize = crate::dkg::sealed::sealed_len(32);

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
    /// A message whose signature does not verify under its claimed sender's key (forged by
    /// whoever relayed it); dropped, and a valid message from the sender is kept.
    #[error("a message claiming to be from node {from} is not signed by it")]
    Forged {
        /// The claimed sender (not to blame).
        from: NodeId,
    },
    /// The dealers' combined commitments do not give the old group key: no new share is
    /// output.
    #[error("the dealers {dealers:?} would change the group key")]
    GroupKeyChanged {
        /// The dealers used.
        dealers: BTreeSet<NodeId>,
    },
    /// A dealer's deal never opened for this receiver, even when redelivered.
    #[error("dealer {dealer} delivered this node no share that opens, even in its justification")]
    ShareWithheld {
        /// The dealer.
        dealer: NodeId,
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
            ReshareError::ShareWithheld { dealer } => BTreeSet::from([*dealer]),
            ReshareError::GroupKeyChanged { dealers } => dealers.clone(),
            ReshareError::InvalidParams(_)
            | ReshareError::Finished
            | ReshareError::Forged { .. } => BTreeSet::new(),
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

    /// The new committee: every receiver and its keys.
    #[must_use]
    pub fn receivers(&self) -> &BTreeMap<NodeId, NodePublicKeys> {
        &self.receivers
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

/// A qualified dealer's commitment, its digest and this receiver's share.
type QualifiedDeal = (FeldmanCommitment, [u8; 32], Scalar);

/// What this node dealt: its polynomial, ephemeral key, commitment and the signed deals.
struct Dealt {
    dealer: FeldmanDealer,
    ephemeral: Ephemeral,
    commitment_bytes: Vec<u8>,
    sent: BTreeMap<NodeId, ([u8; ENCRYPTED_SHARE_LEN], Signature)>,
}

/// One node's resharing session (as dealer, receiver, or both).
pub struct ReshareSession {
    params: ReshareParams,
    keys: NodeKeys,
    round: ReshareRound,
    dealt: Option<Dealt>,
    deals: BTreeMap<NodeId, HeldDeal>,
    complaints: BTreeMap<NodeId, BTreeMap<NodeId, Complaint>>,
    inbox: Inbox<Body>,
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
        let mut dealt = None;
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
            let ephemeral_key = EphemeralKey::generate(rng);
            let ephemeral = ephemeral_key.announce(params.session.as_bytes(), SHARE_LABEL, me, rng);
            let cbytes = d.commitment().to_bytes();
            let committed = committed_bytes(&cbytes, &ephemeral);
            let digest = commitment_digest(&params.session, me, &committed);
            let mut sent = BTreeMap::new();
            for (to, to_keys) in &params.receivers {
                let value = d.share(*to);
                let ctx = seal_context(&params.session, me, *to, &digest);
                let sealed = ephemeral_key.seal(&ctx, &to_keys.encryption, value.as_bytes());
                let mut ct = [0u8; ENCRYPTED_SHARE_LEN];
                if sealed.len() == ENCRYPTED_SHARE_LEN {
                    ct.copy_from_slice(&sealed);
                }
                let sig = keys.sign(
                    &deal_signed_bytes(params.session.as_bytes(), me, &digest, *to, &ct),
                    rng,
                );
                sent.insert(*to, (ct, sig));
                let mut w = Writer::new(MessageKind::ReshareDeal);
                w.node(me);
                w.node(*to);
                w.bytes(&committed);
                w.bytes(&ct);
                sig.write(&mut w);
                out.push(ReshareOutgoing {
                    round: ReshareRound::Deal,
                    from: me,
                    to: Recipient::Node(*to),
                    bytes: w.finish(),
                });
            }
            dealt = Some(Dealt {
                dealer: d,
                ephemeral,
                commitment_bytes: cbytes,
                sent,
            });
        }
        let mut s = ReshareSession {
            params,
            keys,
            round: ReshareRound::Deal,
            dealt,
            deals: BTreeMap::new(),
            complaints: BTreeMap::new(),
            inbox: Inbox::default(),
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

    /// The session's parameters (as checked when it started).
    #[must_use]
    pub fn params(&self) -> &ReshareParams {
        &self.params
    }

    /// The current round.
    #[must_use]
    pub fn round(&self) -> ReshareRound {
        self.round
    }

    fn reject(&mut self, from: NodeId, reason: impl Into<String>) {
        self.rejected.push(Rejected {
            from,
            round: crate::dkg::Round::Done,
            reason: format!("{:?}: {}", self.round, reason.into()),
        });
    }

    /// Accepts one message the transport says came from `from`. As in the DKG
    /// (the same inbox), a forged message never displaces a valid one.
    ///
    /// # Errors
    /// [`ReshareError::Malformed`], [`ReshareError::Unexpected`] or [`ReshareError::Forged`]
    /// reject the message; [`ReshareError::Finished`] after the end.
    pub fn handle_message(&mut self, from: NodeId, bytes: &[u8]) -> Result<(), ReshareError> {
        if self.round == ReshareRound::Done {
            return Err(ReshareError::Finished);
        }
        let unexpected = |reason: &str| ReshareError::Unexpected {
            from,
            reason: reason.into(),
        };
        let (sender, body, signature) = decode(bytes, self.params.new_threshold)
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
        let key = self.params.everyone().get(&from).map(|k| k.signing);
        let (true, Some(key)) = (allowed, key) else {
            return Err(unexpected("sender has no such role, or wrong recipient"));
        };
        let early = if round == self.round {
            false
        } else if round == self.round.next() {
            true
        } else {
            return Err(unexpected("message of another round"));
        };
        let signed = match &body {
            Body::Deal(d) => {
                let digest = commitment_digest(&self.params.session, from, &d.committed);
                deal_signed_bytes(
                    self.params.session.as_bytes(),
                    from,
                    &digest,
                    d.recipient,
                    &d.encrypted_share,
                )
            }
            _ => signed_bytes(&self.params.session, body_of(bytes)),
        };
        let arrival = Arrival::new(bytes.to_vec(), body, signed, signature);
        match self.inbox.offer(early, from, arrival, &key) {
            Ok(Kept::Held) => Ok(()),
            Ok(Kept::ReplacedForgery) => {
                self.reject(from, "a forged message held before this one was dropped");
                Ok(())
            }
            Err(Refusal::Forged) => {
                self.reject(from, "signature does not verify");
                Err(ReshareError::Forged { from })
            }
            Err(Refusal::Second) => Err(unexpected("a second, different message in this round")),
        }
    }

    fn take_verified<R: CryptoRng + ?Sized>(&mut self, rng: &mut R) -> BTreeMap<NodeId, Body> {
        let everyone = self.params.everyone();
        let (out, forged) = self
            .inbox
            .take_round(|id| everyone.get(&id).map(|k| &k.signing), rng);
        for from in forged {
            self.reject(from, "signature does not verify");
        }
        out.into_iter().map(|(f, (_, b))| (f, b)).collect()
    }

    fn broadcast<R: CryptoRng + ?Sized>(
        &mut self,
        round: ReshareRound,
        w: Writer,
        rng: &mut R,
    ) -> Vec<ReshareOutgoing> {
        let me = self.keys.id();
        let bytes = crate::dkg::sign_body(&self.keys, &self.params.session, w, rng);
        if let Ok((_, body, _)) = decode(&bytes, self.params.new_threshold) {
            self.inbox.insert_own(me, Arrival::own(bytes.clone(), body));
        }
        vec![ReshareOutgoing {
            round,
            from: me,
            to: Recipient::All,
            bytes,
        }]
    }

    /// Ends the current round, consuming the session: returns it in its next round with the
    /// messages to send (as [`crate::dkg::DkgSession::end_round`] does).
    ///
    /// # Errors
    /// [`ReshareError::TooFewDealers`], [`ReshareError::ShareWithheld`] or
    /// [`ReshareError::GroupKeyChanged`] after round 3, [`ReshareError::TranscriptMismatch`]
    /// after round 4, [`ReshareError::Finished`] once done; the session ends with the error.
    pub fn end_round<R: CryptoRng + ?Sized>(
        mut self,
        rng: &mut R,
    ) -> Result<(ReshareSession, Vec<ReshareOutgoing>), ReshareError> {
        let out = self.advance(rng)?;
        Ok((self, out))
    }

    fn advance<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
    ) -> Result<Vec<ReshareOutgoing>, ReshareError> {
        let me = self.keys.id();
        let receiving = self.params.receivers.contains_key(&me);
        let out = match self.round {
            ReshareRound::Deal => {
                let msgs = self.take_verified(rng);
                self.open_deals(msgs, rng);
                if receiving {
                    self.complain(rng)
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

    /// A receiver's result once done (`None` for a dealer that is not a receiver).
    #[must_use]
    pub fn output(&self) -> Option<&ReshareOutput> {
        (self.round == ReshareRound::Done)
            .then_some(self.result.as_ref())
            .flatten()
    }
}
