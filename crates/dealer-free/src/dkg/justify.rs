//! Round 3 of GJKR (steps 1(c)–(d)): justifications, disqualification and `QUAL` — without
//! ever opening an honest node's share.
//!
//! > Each dealer `P_i` who, as a dealer, received a complaint from player `P_j` broadcasts
//! > the values `s_ij, s'_ij` that satisfy Eq. (4). Each player marks as disqualified any
//! > player that either received more than `t` complaints in Step 1b, or answered to a
//! > complaint in Step 1c with values that falsify Eq. (4). Each player then builds the set
//! > of non-disqualified players `QUAL`.
//!
//! GJKR answers a complaint by making the complained-about share public. Over a relay that
//! is fatal: whoever drops or forges `t − 1` deals of an honest dealer collects `t` points of
//! its polynomial. Here nothing is opened by the dealer:
//!
//! * a complaint about a **bad share** carries the accuser's [`super::sealed::ShareEvidence`]; every node
//!   judges it alone — the dealer is disqualified if the signed ciphertext does not open to
//!   a share that matches the commitment, and the complaint is void otherwise (a false
//!   accuser only publishes its own share);
//! * a complaint about a **missing deal** is answered by the dealer delivering that signed
//!   deal again (ciphertext only) in its [`JustificationMessage`]; a dealer that does not is
//!   disqualified;
//! * a dealer with complaints from `t` or more nodes is disqualified (GJKR's bound: at most
//!   `t − 1` faulty nodes can complain about an honest dealer).
//!
//! A node that saw an echo mismatch, or holds the deal of a dealer some node never got, adds
//! the signed deals it holds ([`SignedDeal`]); two validly signed deals of one dealer with
//! different digests prove equivocation.
//!
//! Every node then applies the same rules to the same messages ([`Disqualification`]) and
//! gets the same `QUAL`; its key share is the sum of the shares of the qualified dealers,
//! taking a redelivered deal where it had none. If a qualified dealer's redelivered deal does
//! not open for this node, it ends with [`DkgError::ShareWithheld`] naming the dealer (the
//! others finish; the node is given its share later by resharing).
//!
//! Layout: `version ‖ kind ‖ sender ‖ has_redelivery (0|1) ‖ [commitment (32·t) ‖ E (32) ‖
//! count (u16) ‖ (recipient ‖ ciphertext ‖ signature)*] ‖ count (u16) ‖ (dealer ‖ digest ‖
//! recipient ‖ ciphertext ‖ signature)* ‖ signature (64)`, both lists sorted by node id.

use std::collections::{BTreeMap, BTreeSet};

use curve25519_dalek::ristretto::RistrettoPoint;
use phr_sis::{NodeId, Threshold};
use rand::CryptoRng;

use super::complain::{ComplaintReason, ComplaintsAgainst, broadcast};
use super::deal::{
    ENCRYPTED_SHARE_LEN, SHARE_LABEL, commitment_digest, committed_bytes, decode_share, open_share,
    read_commitment,
};
use super::sealed::{SealContext, Verdict, deal_signed_bytes};
use super::{Core, Disqualification, DkgError, DkgMessage, Outgoing, Round, SessionId, confirm};
use crate::identity::{NodePublicKeys, Signature, VerifyingKey};
use crate::vss::{PedersenCommitment, PedersenShare, verify_pedersen_share};
use crate::wire::{MessageKind, Reader, WireError, Writer};

/// A dealer's signed deal for one recipient, as relayed again: the ciphertext only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedDeal {
    /// The dealer.
    pub dealer: NodeId,
    /// The dealer's commitment digest `D_i`.
    pub digest: [u8; 32],
    /// The recipient.
    pub recipient: NodeId,
    /// The sealed share.
    pub ciphertext: Vec<u8>,
    /// The dealer's signature over digest, recipient and ciphertext.
    pub signature: Signature,
}

impl SignedDeal {
    /// Whether the dealer (keys `dealer_keys`) signed it.
    #[must_use]
    pub fn verify(&self, session: &[u8; 32], dealer_keys: &NodePublicKeys) -> bool {
        dealer_keys.signing.verify(
            &deal_signed_bytes(
                session,
                self.dealer,
                &self.digest,
                self.recipient,
                &self.ciphertext,
            ),
            &self.signature,
        )
    }
}

/// A dealer's answer to complaints about missing deals: its commitment, its ephemeral key
/// and the signed deals of the complaining nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redelivery<C> {
    /// The dealer's commitment.
    pub commitment: C,
    /// Its encoding.
    pub commitment_bytes: Vec<u8>,
    /// The dealer's ephemeral key `E_i` with its proof of possession.
    pub ephemeral: super::sealed::Ephemeral,
    /// `(recipient, ciphertext, signature)`, sorted by recipient.
    pub deals: Vec<(NodeId, Vec<u8>, Signature)>,
}

/// The body of a justification: an optional redelivery and signed deals as evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JustificationBody<C> {
    pub(crate) redelivery: Option<Redelivery<C>>,
    pub(crate) evidence: Vec<SignedDeal>,
}

impl<C> JustificationBody<C> {
    pub(crate) fn write(&self, w: &mut Writer) {
        match &self.redelivery {
            Some(r) => {
                w.u8(1);
                w.bytes(&r.commitment_bytes);
                w.bytes(&r.ephemeral.to_bytes());
                w.u16(u16::try_from(r.deals.len()).unwrap_or(u16::MAX));
                for (to, ct, sig) in &r.deals {
                    w.node(*to);
                    w.bytes(ct);
                    sig.write(w);
                }
            }
            None => w.u8(0),
        }
        w.u16(u16::try_from(self.evidence.len()).unwrap_or(u16::MAX));
        for e in &self.evidence {
            w.node(e.dealer);
            w.bytes(&e.digest);
            w.node(e.recipient);
            w.bytes(&e.ciphertext);
            e.signature.write(w);
        }
    }

    /// Reads a body whose commitment is read by `read_commitment` and whose ciphertexts have
    /// `ciphertext_len` bytes.
    pub(crate) fn read(
        r: &mut Reader<'_>,
        commitment_len: usize,
        parse: impl Fn(&[u8]) -> Result<C, WireError>,
        ciphertext_len: usize,
    ) -> Result<JustificationBody<C>, WireError> {
        let redelivery = match r.u8("redelivery flag")? {
            0 => None,
            1 => {
                let commitment_bytes = r.slice("commitment", commitment_len)?.to_vec();
                let commitment = parse(&commitment_bytes)?;
                let ephemeral = super::sealed::Ephemeral::read(r)?;
                let mut deals: Vec<(NodeId, Vec<u8>, Signature)> = Vec::new();
                for _ in 0..r.u16("redelivered count")? {
                    let to = r.node("redelivered recipient")?;
                    if deals.last().is_some_and(|(p, _, _)| *p >= to) {
                        return Err(unsorted("redelivered deals"));
                    }
                    let ct = r.slice("redelivered ciphertext", ciphertext_len)?.to_vec();
                    deals.push((to, ct, Signature::read(r)?));
                }
                Some(Redelivery {
                    commitment,
                    commitment_bytes,
                    ephemeral,
                    deals,
                })
            }
            other => {
                return Err(WireError::InvalidField {
                    field: "redelivery flag",
                    reason: format!("{other} is neither 0 nor 1"),
                });
            }
        };
        let mut evidence: Vec<SignedDeal> = Vec::new();
        for _ in 0..r.u16("evidence count")? {
            let dealer = r.node("evidence dealer")?;
            if evidence.last().is_some_and(|p| p.dealer >= dealer) {
                return Err(unsorted("evidence"));
            }
            evidence.push(SignedDeal {
                dealer,
                digest: r.array::<32>("evidence digest")?,
                recipient: r.node("evidence recipient")?,
                ciphertext: r.slice("evidence ciphertext", ciphertext_len)?.to_vec(),
                signature: Signature::read(r)?,
            });
        }
        Ok(JustificationBody {
            redelivery,
            evidence,
        })
    }
}

/// The round-3 broadcast of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JustificationMessage {
    /// The sender.
    pub sender: NodeId,
    /// The sender's deals for the nodes that said they got none.
    pub redelivery: Option<Redelivery<PedersenCommitment>>,
    /// Other dealers' signed deals, sorted by dealer.
    pub evidence: Vec<SignedDeal>,
    /// The sender's signature.
    pub signature: Signature,
}

impl JustificationMessage {
    fn body(sender: NodeId, body: &JustificationBody<PedersenCommitment>) -> Writer {
        let mut w = Writer::new(MessageKind::DkgJustification);
        w.node(sender);
        body.write(&mut w);
        w
    }

    /// The canonical encoding.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let body = JustificationBody {
            redelivery: self.redelivery.clone(),
            evidence: self.evidence.clone(),
        };
        let mut w = JustificationMessage::body(self.sender, &body);
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
        let body = JustificationBody::read(
            &mut r,
            32 * usize::from(threshold.t()),
            |b| {
                let mut inner = Reader::raw(b);
                read_commitment(&mut inner, threshold)
            },
            ENCRYPTED_SHARE_LEN,
        )?;
        let signature = Signature::read(&mut r)?;
        r.finish()?;
        Ok(JustificationMessage {
            sender,
            redelivery: body.redelivery,
            evidence: body.evidence,
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

/// The dealers some node said it got no deal from.
pub(crate) fn missing_somewhere<T>(
    complaints: &BTreeMap<NodeId, BTreeMap<NodeId, T>>,
    reason: impl Fn(&T) -> ComplaintReason,
) -> BTreeSet<NodeId> {
    complaints
        .iter()
        .filter(|(_, by)| {
            by.values()
                .any(|c| reason(c) == ComplaintReason::MissingDeal)
        })
        .map(|(d, _)| *d)
        .collect()
}

/// End of round 2, sending side.
pub(super) fn send<R: CryptoRng + ?Sized>(
    core: &mut Core,
    pending: &Pending,
    echo_mismatch: bool,
    rng: &mut R,
) -> Vec<Outgoing> {
    let me = core.id();
    let mut redelivery = None;
    if let (Some(accusers), Some(own)) = (pending.complaints.get(&me), core.deals.get(&me)) {
        let mut deals = Vec::new();
        for (accuser, c) in accusers {
            if c.reason != ComplaintReason::MissingDeal {
                continue;
            }
            if let Some((ct, sig)) = core.sent.get(accuser) {
                let mut sig = *sig;
                if core.misbehaviour.corrupts_justification_for(*accuser) {
                    sig = Signature::placeholder();
                }
                deals.push((*accuser, ct.to_vec(), sig));
            }
        }
        if !deals.is_empty() {
            redelivery = Some(Redelivery {
                commitment_bytes: own.commitment.to_bytes(),
                commitment: own.commitment.clone(),
                ephemeral: own.ephemeral,
                deals,
            });
        }
    }
    let missing = missing_somewhere(&pending.complaints, |c| c.reason);
    let evidence: Vec<SignedDeal> = core
        .deals
        .iter()
        .filter(|(d, _)| **d != me && (echo_mismatch || missing.contains(d)))
        .filter_map(|(d, held)| {
            let (ct, sig) = held.sealed.as_ref()?;
            Some(SignedDeal {
                dealer: *d,
                digest: held.digest,
                recipient: me,
                ciphertext: ct.to_vec(),
                signature: *sig,
            })
        })
        .collect();
    if redelivery.is_none() && evidence.is_empty() {
        return Vec::new();
    }
    let body = JustificationBody {
        redelivery,
        evidence,
    };
    let w = JustificationMessage::body(me, &body);
    let bytes = super::sign_body(&core.keys, &core.params.session, w, rng);
    broadcast(core, Round::Justify, bytes)
}

/// A dealer's commitment and ephemeral key as this node knows them.
struct Known<'a> {
    commitment: &'a PedersenCommitment,
    ephemeral: RistrettoPoint,
    possession: bool,
    digest: [u8; 32],
}

/// End of round 3: decide `QUAL`, compute the key share, send the confirmation.
pub(super) fn finish<R: CryptoRng + ?Sized>(
    core: &mut Core,
    pending: Pending,
    rng: &mut R,
) -> Result<(Box<confirm::Pending>, Vec<Outgoing>), DkgError> {
    let msgs = core.verified_round(Round::Justify, rng);
    let session = core.params.session;
    let me = core.id();
    let t = usize::from(core.t());
    let justifications: BTreeMap<NodeId, JustificationMessage> = msgs
        .into_iter()
        .filter_map(|(from, m)| match m {
            DkgMessage::Justification(j) => Some((from, j)),
            _ => None,
        })
        .collect();

    // Every digest each dealer is proved to have signed: held deals, its own redelivery
    // (inside its signed justification), and signed deals relayed as evidence.
    let mut digests: BTreeMap<NodeId, BTreeSet<[u8; 32]>> = core
        .deals
        .iter()
        .map(|(d, h)| (*d, BTreeSet::from([h.digest])))
        .collect();
    let mut adopted: BTreeMap<NodeId, [u8; 32]> = BTreeMap::new();
    for (from, j) in &justifications {
        if let Some(r) = &j.redelivery {
            let digest = commitment_digest(
                &session,
                *from,
                &committed_bytes(&r.commitment_bytes, &r.ephemeral),
            );
            digests.entry(*from).or_default().insert(digest);
            if !core.deals.contains_key(from) {
                adopted.insert(*from, digest);
            }
        }
        for e in &j.evidence {
            let known = digests
                .get(&e.dealer)
                .is_some_and(|s| s.contains(&e.digest));
            if !known
                && core
                    .params
                    .participants
                    .get(&e.dealer)
                    .is_some_and(|k| e.verify(session.as_bytes(), k))
            {
                digests.entry(e.dealer).or_default().insert(e.digest);
            }
        }
    }

    let mut disqualified: BTreeMap<NodeId, Disqualification> = BTreeMap::new();
    let mut my_shares: Vec<PedersenShare> = Vec::new();
    let mut withheld: Option<NodeId> = None;
    let mut void: Vec<(NodeId, String)> = Vec::new();
    let participants: Vec<NodeId> = core.params.participants.keys().copied().collect();
    for dealer in participants {
        let known = core
            .deals
            .get(&dealer)
            .map(|h| Known {
                commitment: &h.commitment,
                ephemeral: h.ephemeral.point,
                possession: h.possession,
                digest: h.digest,
            })
            .or_else(|| {
                let r = justifications.get(&dealer)?.redelivery.as_ref()?;
                Some(Known {
                    commitment: &r.commitment,
                    ephemeral: r.ephemeral.point,
                    possession: r.ephemeral.verify(session.as_bytes(), SHARE_LABEL, dealer),
                    digest: *adopted.get(&dealer)?,
                })
            });
        let Some(known) = known else {
            let why = if core.heard_in_deal.contains(&dealer) {
                Disqualification::NoCommitment
            } else {
                Disqualification::Silent
            };
            disqualified.insert(dealer, why);
            continue;
        };
        if digests.get(&dealer).is_some_and(|s| s.len() > 1) {
            disqualified.insert(dealer, Disqualification::Equivocation);
            continue;
        }
        if !known.possession {
            disqualified.insert(dealer, Disqualification::BadEphemeralKey);
            continue;
        }
        let Some(dealer_keys) = core.params.participants.get(&dealer) else {
            continue;
        };
        let facts = DealerFacts {
            session: &session,
            dealer,
            dealer_key: &dealer_keys.signing,
            digest: &known.digest,
            redelivered: justifications
                .get(&dealer)
                .and_then(|j| j.redelivery.as_ref())
                .map(|r| r.deals.as_slice()),
            me,
            bound: t,
        };
        let ruling = rule_on_complaints(
            &facts,
            pending.complaints.get(&dealer).into_iter().flatten(),
            |accuser, c| Some(judge(core, dealer, accuser, &known, c.evidence.as_ref())),
        );
        for (accuser, share_valid) in ruling.void {
            void.push((
                accuser,
                if share_valid {
                    format!("complained about a valid share of dealer {dealer}")
                } else {
                    format!("its evidence against dealer {dealer} does not hold")
                },
            ));
        }
        if let Some(v) = ruling.verdict {
            disqualified.insert(dealer, v);
            continue;
        }
        let redelivered_for_me = ruling.redelivered_for_me;
        let own = core.deals.get(&dealer).and_then(|h| h.share.clone());
        let redelivered_share = redelivered_for_me
            .and_then(|ct| open_share(core, dealer, &known.ephemeral, &known.digest, &ct))
            .filter(|s| verify_pedersen_share(s, known.commitment).is_ok());
        match own.or(redelivered_share) {
            Some(share) => my_shares.push(share),
            None => withheld = withheld.or(Some(dealer)),
        }
    }
    for (accuser, why) in void {
        core.reject(accuser, Round::Complain, why);
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
    if disqualified.len() >= t {
        return Err(DkgError::TooManyDisqualified {
            max: core.t() - 1,
            qualified,
            disqualified,
        });
    }
    if let Some(dealer) = withheld {
        return Err(DkgError::ShareWithheld { dealer });
    }
    let redelivered: BTreeMap<NodeId, &PedersenCommitment> = justifications
        .iter()
        .filter_map(|(d, j)| j.redelivery.as_ref().map(|r| (*d, &r.commitment)))
        .collect();
    let commitments: BTreeMap<NodeId, (&PedersenCommitment, [u8; 32])> = qualified
        .iter()
        .filter_map(|d| {
            let digest = digests.get(d).and_then(|s| s.first().copied())?;
            let c = core
                .deals
                .get(d)
                .map(|h| &h.commitment)
                .or_else(|| redelivered.get(d).copied())?;
            Some((*d, (c, digest)))
        })
        .collect();
    let pending = confirm::prepare(core, qualified, disqualified, &commitments, &my_shares);
    // The node's own polynomials are no longer needed.
    core.polynomial = None;
    let out = confirm::send(core, &pending, rng);
    Ok((Box::new(pending), out))
}

/// What the complaints against one dealer decide (the same rules in the DKG and resharing).
pub(crate) struct ComplaintRuling {
    /// Why the dealer is disqualified, if it is.
    pub(crate) verdict: Option<Disqualification>,
    /// The ciphertext the dealer redelivered to this node, if this node said it got none.
    pub(crate) redelivered_for_me: Option<Vec<u8>>,
    /// Complaints about a share that did not hold: the accuser, and whether the share it
    /// complained about opened and was valid (else its evidence was void).
    pub(crate) void: Vec<(NodeId, bool)>,
}

/// The facts a ruling on one dealer's complaints needs.
pub(crate) struct DealerFacts<'a> {
    pub(crate) session: &'a SessionId,
    pub(crate) dealer: NodeId,
    pub(crate) dealer_key: &'a VerifyingKey,
    /// `D_i` as this node knows it.
    pub(crate) digest: &'a [u8; 32],
    /// The deals the dealer redelivered in its justification.
    pub(crate) redelivered: Option<&'a [(NodeId, Vec<u8>, Signature)]>,
    /// This node.
    pub(crate) me: NodeId,
    /// Complaints from this many nodes disqualify the dealer.
    pub(crate) bound: usize,
}

/// Rules on every complaint against one dealer: a missing deal must have been redelivered
/// with the dealer's signature; a bad share is judged by `judge_share` from its evidence
/// (`None`: the complaint is ignored); complaints from `bound` nodes or more disqualify.
pub(crate) fn rule_on_complaints<'c>(
    facts: &DealerFacts<'_>,
    complaints: impl IntoIterator<Item = (&'c NodeId, &'c super::complain::Complaint)>,
    mut judge_share: impl FnMut(NodeId, &super::complain::Complaint) -> Option<Verdict>,
) -> ComplaintRuling {
    let mut ruling = ComplaintRuling {
        verdict: None,
        redelivered_for_me: None,
        void: Vec::new(),
    };
    let mut standing = 0usize;
    for (accuser, c) in complaints {
        match c.reason {
            ComplaintReason::MissingDeal => {
                standing += 1;
                let deal = facts
                    .redelivered
                    .and_then(|r| r.iter().find(|d| d.0 == *accuser));
                let signed = deal.is_some_and(|(to, ct, sig)| {
                    facts.dealer_key.verify(
                        &deal_signed_bytes(
                            facts.session.as_bytes(),
                            facts.dealer,
                            facts.digest,
                            *to,
                            ct,
                        ),
                        sig,
                    )
                });
                if !signed {
                    ruling.verdict =
                        Some(Disqualification::MissingJustification { accuser: *accuser });
                    return ruling;
                }
                if *accuser == facts.me {
                    ruling.redelivered_for_me = deal.map(|(_, ct, _)| ct.clone());
                }
            }
            ComplaintReason::InvalidShare => match judge_share(*accuser, c) {
                Some(Verdict::DealerGuilty) => {
                    ruling.verdict = Some(Disqualification::InvalidShare { accuser: *accuser });
                    return ruling;
                }
                Some(Verdict::ShareValid(_)) => ruling.void.push((*accuser, true)),
                Some(Verdict::Void) => ruling.void.push((*accuser, false)),
                None => {}
            },
        }
    }
    if standing >= facts.bound {
        ruling.verdict = Some(Disqualification::TooManyComplaints { count: standing });
    }
    ruling
}

/// Judges a complaint about a bad share by its evidence.
fn judge(
    core: &Core,
    dealer: NodeId,
    accuser: NodeId,
    known: &Known<'_>,
    evidence: Option<&super::sealed::ShareEvidence>,
) -> Verdict {
    let (Some(evidence), Some(dealer_keys), Some(accuser_keys)) = (
        evidence,
        core.params.participants.get(&dealer),
        core.params.participants.get(&accuser),
    ) else {
        return Verdict::Void;
    };
    let ctx = SealContext {
        session: core.params.session.as_bytes(),
        label: SHARE_LABEL,
        dealer,
        recipient: accuser,
        aad: &known.digest,
    };
    evidence.judge(
        &ctx,
        &dealer_keys.signing,
        &known.ephemeral,
        &accuser_keys.encryption,
        |plain| {
            decode_share(accuser, plain)
                .is_some_and(|s| verify_pedersen_share(&s, known.commitment).is_ok())
        },
    )
}
