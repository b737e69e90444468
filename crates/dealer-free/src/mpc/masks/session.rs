//! A checked mask dealing among the servers of a query set, as sans-IO states, one per
//! round, with the signed and sealed messages the servers exchange through the relaying
//! client. Each step consumes the last:
//!
//! 1. [`deal`]: the [`MaskOrder`] (session, servers, count) → this server's [`Dealt`] and its
//!    [`SignedMaskCommitment`] (to every server) and one [`SealedMaskDeal`] per other server
//!    (sealed for it: the relay reads none).
//! 2. [`Dealt::check`]: every dealer's signed commitment and the deals sealed for this server
//!    → [`Checked`] and this server's [`SignedMaskCheck`] of every deal that matches its
//!    commitment.
//! 3. [`Checked::judge`]: every server's signed checks → [`Judged`]: the verdict on every
//!    dealer ([`super::judge`]) and this server's [`MaskPool`], summed from the dealers
//!    accepted with no server named ([`super::Verdict::is_clean`]).
//!
//! 4. [`super::confirm`]: each server signs the order and the dealers it summed
//!    ([`super::confirm::confirm`]); a pool serves only once every server's confirmation,
//!    relayed by the client, equals its own ([`super::confirm::check_confirmations`]), since a
//!    relay can show servers different subsets of the checks.
//!
//! What holds: every message is checked on arrival — signatures against the roster's keys,
//! sessions, dealers, servers and counts against the order — and every count is bounded
//! before anything is allocated or verified. A commitment of this server that comes back
//! changed is refused. Every honest server judges the same signed checks, so all reach the
//! same verdicts and sum the same dealers.

use std::collections::{BTreeMap, BTreeSet};

use phr_sis::{ImageId, NodeId};
use rand::CryptoRng;

use super::check::{MaskCheck, MaskCommitment, MaskDeal, Verdict, deal_checked, judge};
use super::{MAX_MASKS, MaskKind, MaskPool};
use crate::identity::{NodeKeys, NodePublicKeys, SIGNATURE_LEN, Signature};
use crate::mpc::SearchError;
use crate::mpc::error::verify_signatures;
use crate::mpc::messages::SessionId;
use crate::wire::{MessageKind, Reader, WireError, Writer};

/// The label deals are sealed under.
pub const MASK_DEAL_LABEL: &[u8] = b"dealer-free-sis/mpc/mask-deal/v1";
/// The domain a dealer signs its commitment under.
pub const COMMITMENT_DOMAIN: &[u8] = b"dealer-free-sis/mpc/mask-commitment/v1";
/// The domain a server signs its checks under.
pub const CHECK_DOMAIN: &[u8] = b"dealer-free-sis/mpc/mask-check/v1";

/// The client's order to deal: the session, the servers (ascending) and how many masks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskOrder {
    /// The dealing session.
    pub session: SessionId,
    /// The servers, ascending.
    pub servers: Vec<NodeId>,
    /// Masks each server's pool will hold.
    pub count: u32,
    /// What the sharings share: the search's zero-sharings or the scrub's random ones.
    pub kind: MaskKind,
    /// For random sharings, the images they serve, ascending, one per mask (`count` of
    /// them): mask `i` checks image `ids[i]` only, at every server. Empty for zero-sharings.
    pub ids: Vec<ImageId>,
}

/// A dealer's commitment, signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedMaskCommitment {
    /// The commitment.
    pub commitment: MaskCommitment,
    /// The dealer's signature under [`COMMITMENT_DOMAIN`].
    pub signature: Signature,
}

/// A dealer's deal to one other server, sealed for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedMaskDeal {
    /// The dealing session.
    pub session: SessionId,
    /// The dealer.
    pub dealer: NodeId,
    /// The server it is sealed for.
    pub recipient: NodeId,
    /// The sealed [`MaskDeal`] encoding (the commitment's encoding is its associated data).
    pub sealed: Vec<u8>,
}

/// A server's check of one dealer, signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedMaskCheck {
    /// The check.
    pub check: MaskCheck,
    /// The checker's signature under [`CHECK_DOMAIN`].
    pub signature: Signature,
}

/// This server after dealing: its own commitment and deal.
#[derive(Debug, Clone)]
pub struct Dealt {
    order: MaskOrder,
    me: NodeId,
    t: u8,
    commitments: BTreeMap<NodeId, MaskCommitment>,
    deals: Vec<MaskDeal>,
}

/// This server after checking: every dealer's commitment and the deals it received.
#[derive(Debug, Clone)]
pub struct Checked {
    order: MaskOrder,
    me: NodeId,
    t: u8,
    commitments: BTreeMap<NodeId, MaskCommitment>,
    deals: Vec<MaskDeal>,
}

/// A judged dealing: this server's pool and the verdicts.
#[derive(Debug)]
pub struct Judged {
    /// This server's masks.
    pub pool: MaskPool,
    /// The verdict on every dealer judged.
    pub verdicts: Vec<Verdict>,
    /// The dealers whose masks the pool sums, ascending (the same at every server).
    pub used: Vec<NodeId>,
    /// What this server confirms ([`super::confirm::digest`]): the order, the dealers summed
    /// and every commitment it holds.
    pub digest: [u8; 32],
}

fn with_domain(domain: &[u8], message: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(domain.len() + message.len());
    v.extend_from_slice(domain);
    v.extend_from_slice(message);
    v
}

fn invalid(field: &'static str, reason: &str) -> WireError {
    WireError::InvalidField {
        field,
        reason: reason.to_owned(),
    }
}

fn misaddressed(from: NodeId, what: &'static str, reason: impl Into<String>) -> SearchError {
    SearchError::Misaddressed {
        from: Some(from),
        what,
        reason: reason.into(),
    }
}

fn key_of(
    roster: &BTreeMap<NodeId, NodePublicKeys>,
    node: NodeId,
    what: &'static str,
) -> Result<NodePublicKeys, SearchError> {
    roster
        .get(&node)
        .copied()
        .ok_or(SearchError::Forged { node, what })
}

impl MaskOrder {
    /// Encoded length for `servers` servers (and no image ids: a zero-sum order).
    #[must_use]
    pub const fn encoded_len(servers: usize) -> usize {
        2 + 32 + 1 + servers + 4 + 1
    }

    /// `version ‖ kind ‖ session (32) ‖ servers (u8) ‖ server ids ‖ count (u32) ‖ mask kind
    /// (0 zero-sum, 1 random) ‖ for random sharings, `count` image ids (u64 BE each)`.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(
            MessageKind::MaskOrder,
            Self::encoded_len(self.servers.len()),
        );
        w.bytes(&self.session);
        w.u8(u8::try_from(self.servers.len()).unwrap_or(u8::MAX));
        for s in &self.servers {
            w.node(*s);
        }
        w.u32(self.count);
        w.u8(self.kind.to_byte());
        for id in &self.ids {
            w.u64(id.0);
        }
        w.finish()
    }

    /// Decodes [`MaskOrder::to_bytes`]: servers strictly ascending, at least one.
    ///
    /// # Errors
    /// Any [`WireError`] of a malformed message.
    pub fn from_bytes(bytes: &[u8]) -> Result<MaskOrder, WireError> {
        let mut r = Reader::new(bytes, MessageKind::MaskOrder)?;
        let session = r.array::<32>("session")?;
        let n = usize::from(r.u8("servers")?);
        if n == 0 {
            return Err(invalid("servers", "no server"));
        }
        let mut servers: Vec<NodeId> = Vec::with_capacity(n);
        for _ in 0..n {
            let s = r.node("server")?;
            if servers.last().is_some_and(|l| *l >= s) {
                return Err(invalid("server", "servers not strictly ascending"));
            }
            servers.push(s);
        }
        let count = r.u32("count")?;
        let kind = MaskKind::from_byte(r.u8("mask kind")?)
            .ok_or_else(|| invalid("mask kind", "neither zero-sum (0) nor random (1)"))?;
        // One id per mask of a random order, bounded by the bytes left before anything is
        // allocated.
        let ids = match kind {
            MaskKind::Random => r.ascending_ids("ids", count as usize)?,
            MaskKind::ZeroSum => Vec::new(),
        };
        r.finish()?;
        Ok(MaskOrder {
            session,
            servers,
            count,
            kind,
            ids,
        })
    }

    /// Checks the order for server `me` of a cluster of `n` nodes with threshold `t`, and at
    /// most `max_count` masks.
    ///
    /// # Errors
    /// [`SearchError::Misaddressed`] naming what is wrong.
    pub fn validate(&self, me: NodeId, t: u8, n: u8, max_count: u32) -> Result<(), SearchError> {
        let bad = |reason: String| SearchError::Misaddressed {
            from: None,
            what: "mask order",
            reason,
        };
        if self.servers.windows(2).any(|w| w[0] >= w[1]) {
            return Err(bad("servers not strictly ascending".into()));
        }
        if let Some(s) = self.servers.iter().find(|s| s.get() > n) {
            return Err(bad(format!("server {s} is not in 1 to {n}")));
        }
        let quorum = self.kind.min_servers(t);
        if self.servers.len() < quorum {
            let rule = match self.kind {
                MaskKind::ZeroSum => "secure ranking needs 2t − 1",
                MaskKind::Random => "a bit-share check needs t + 1",
            };
            return Err(bad(format!(
                "{rule} = {quorum} servers, {} given",
                self.servers.len()
            )));
        }
        if !self.servers.contains(&me) {
            return Err(bad(format!("node {me} is not among the servers")));
        }
        let max = max_count.min(u32::try_from(MAX_MASKS).unwrap_or(u32::MAX));
        if self.count == 0 || self.count > max {
            return Err(bad(format!("{} masks, 1 to {max} per dealing", self.count)));
        }
        let ids_wanted = match self.kind {
            MaskKind::ZeroSum => 0,
            MaskKind::Random => self.count as usize,
        };
        if self.ids.len() != ids_wanted || self.ids.windows(2).any(|w| w[0] >= w[1]) {
            return Err(bad(format!(
                "{} image ids: a random order names one per mask, ascending, a zero-sum one none",
                self.ids.len()
            )));
        }
        Ok(())
    }
}

impl SignedMaskCommitment {
    /// The commitment's encoding, then the signature.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = self.commitment.to_bytes();
        v.extend_from_slice(&self.signature.to_bytes());
        v
    }

    /// Encoded length for `servers` servers.
    #[must_use]
    pub const fn encoded_len(servers: usize) -> usize {
        MaskCommitment::encoded_len(servers) + SIGNATURE_LEN
    }

    /// Decodes [`SignedMaskCommitment::to_bytes`] (the signature is not verified here).
    ///
    /// # Errors
    /// Any [`WireError`] of a malformed message.
    pub fn from_bytes(bytes: &[u8]) -> Result<SignedMaskCommitment, WireError> {
        let split = bytes
            .len()
            .checked_sub(SIGNATURE_LEN)
            .ok_or(WireError::Truncated {
                field: "signature",
                need: SIGNATURE_LEN,
                got: bytes.len(),
            })?;
        let (body, sig) = bytes.split_at(split);
        let commitment = MaskCommitment::from_bytes(body)?;
        let sig: [u8; SIGNATURE_LEN] = sig
            .try_into()
            .map_err(|_| invalid("signature", "not 64 bytes"))?;
        let signature =
            Signature::from_bytes(&sig).ok_or_else(|| invalid("signature", "malformed"))?;
        Ok(SignedMaskCommitment {
            commitment,
            signature,
        })
    }

    fn signed_message(&self) -> Vec<u8> {
        with_domain(COMMITMENT_DOMAIN, &self.commitment.to_bytes())
    }
}

impl SealedMaskDeal {
    /// Encoded length for a sealed deal of `count` masks.
    #[must_use]
    pub const fn encoded_len(count: usize) -> usize {
        // The AES-GCM tag adds 16 bytes to the plaintext deal.
        2 + 32 + 1 + 1 + 4 + MaskDeal::encoded_len(count) + 16
    }

    /// `version ‖ kind ‖ session (32) ‖ dealer ‖ recipient ‖ length (u32) ‖ sealed bytes`.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(MessageKind::SealedMaskDeal, 40 + self.sealed.len());
        w.bytes(&self.session);
        w.node(self.dealer);
        w.node(self.recipient);
        w.u32(u32::try_from(self.sealed.len()).unwrap_or(u32::MAX));
        w.bytes(&self.sealed);
        w.finish()
    }

    /// Decodes [`SealedMaskDeal::to_bytes`]; the length is checked against the bytes left.
    ///
    /// # Errors
    /// Any [`WireError`] of a malformed message.
    pub fn from_bytes(bytes: &[u8]) -> Result<SealedMaskDeal, WireError> {
        let mut r = Reader::new(bytes, MessageKind::SealedMaskDeal)?;
        let session = r.array::<32>("session")?;
        let dealer = r.node("dealer")?;
        let recipient = r.node("recipient")?;
        let len = r.u32("sealed length")? as usize;
        let sealed = r.slice("sealed deal", len)?.to_vec();
        r.finish()?;
        Ok(SealedMaskDeal {
            session,
            dealer,
            recipient,
            sealed,
        })
    }
}

impl SignedMaskCheck {
    /// Encoded length.
    pub const ENCODED_LEN: usize = MaskCheck::ENCODED_LEN + SIGNATURE_LEN;

    /// The check's encoding, then the signature.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = self.check.to_bytes();
        v.extend_from_slice(&self.signature.to_bytes());
        v
    }

    /// Decodes [`SignedMaskCheck::to_bytes`] (the signature is not verified here).
    ///
    /// # Errors
    /// Any [`WireError`] of a malformed message.
    pub fn from_bytes(bytes: &[u8]) -> Result<SignedMaskCheck, WireError> {
        if bytes.len() != Self::ENCODED_LEN {
            return Err(WireError::Truncated {
                field: "signed mask check",
                need: Self::ENCODED_LEN,
                got: bytes.len(),
            });
        }
        let (body, sig) = bytes.split_at(MaskCheck::ENCODED_LEN);
        let check = MaskCheck::from_bytes(body)?;
        let sig: [u8; SIGNATURE_LEN] = sig
            .try_into()
            .map_err(|_| invalid("signature", "not 64 bytes"))?;
        let signature =
            Signature::from_bytes(&sig).ok_or_else(|| invalid("signature", "malformed"))?;
        Ok(SignedMaskCheck { check, signature })
    }

    fn signed_message(&self) -> Vec<u8> {
        with_domain(CHECK_DOMAIN, &self.check.to_bytes())
    }
}

/// Round 1: this server (`keys`) deals its zero-sharings for `order` (already validated,
/// [`MaskOrder::validate`]), signs the commitment and seals each other server's deal for it
/// with the keys of `roster`.
///
/// # Errors
/// [`SearchError::Mpc`] if the dealing cannot be made; [`SearchError::Forged`] for a server
/// without keys in the roster.
pub fn deal<R: CryptoRng + ?Sized>(
    order: &MaskOrder,
    t: u8,
    keys: &NodeKeys,
    roster: &BTreeMap<NodeId, NodePublicKeys>,
    rng: &mut R,
) -> Result<(Dealt, SignedMaskCommitment, Vec<SealedMaskDeal>), SearchError> {
    let me = keys.id();
    let (commitment, deals) = deal_checked(
        order.session,
        order.kind,
        me,
        &order.servers,
        t,
        order.count as usize,
        rng,
    )?;
    seal_dealing(order, t, keys, roster, commitment, deals, rng)
}

/// [`deal`] from a dealing made elsewhere (a test's dishonest one): signs and seals it.
///
/// # Errors
/// As [`deal`]; [`SearchError::Misaddressed`] for a dealing of another session, dealer or
/// servers.
pub fn seal_dealing<R: CryptoRng + ?Sized>(
    order: &MaskOrder,
    t: u8,
    keys: &NodeKeys,
    roster: &BTreeMap<NodeId, NodePublicKeys>,
    commitment: MaskCommitment,
    deals: Vec<MaskDeal>,
    rng: &mut R,
) -> Result<(Dealt, SignedMaskCommitment, Vec<SealedMaskDeal>), SearchError> {
    let me = keys.id();
    if commitment.session() != order.session
        || commitment.kind() != order.kind
        || commitment.dealer() != me
        || commitment.servers() != order.servers.as_slice()
        || commitment.count() != order.count
    {
        return Err(misaddressed(me, "mask dealing", "not of this order"));
    }
    let bytes = commitment.to_bytes();
    let signature = keys.sign(&with_domain(COMMITMENT_DOMAIN, &bytes), rng);
    let mut sealed = Vec::with_capacity(deals.len());
    let mut own = Vec::new();
    for d in deals {
        if d.recipient() == me {
            own.push(d);
            continue;
        }
        let to = key_of(roster, d.recipient(), "mask deal recipient (no keys)")?;
        sealed.push(SealedMaskDeal {
            session: order.session,
            dealer: me,
            recipient: d.recipient(),
            sealed: keys.seal(
                d.recipient(),
                &to.encryption,
                &order.session,
                MASK_DEAL_LABEL,
                &bytes,
                &d.to_bytes(),
            ),
        });
    }
    let mut commitments = BTreeMap::new();
    commitments.insert(me, commitment.clone());
    Ok((
        Dealt {
            order: order.clone(),
            me,
            t,
            commitments,
            deals: own,
        },
        SignedMaskCommitment {
            commitment,
            signature,
        },
        sealed,
    ))
}

impl Dealt {
    /// The order being dealt.
    #[must_use]
    pub fn order(&self) -> &MaskOrder {
        &self.order
    }

    /// Round 2: every dealer's signed commitment and the deals sealed for this server. Each
    /// commitment must be signed by its dealer, a server of the order, for this session,
    /// servers and count; this server's own must come back unchanged. Each deal for this
    /// server must open and be addressed to it. A deal that does not match its commitment
    /// gets no check: its dealer is judged on the others' checks, and named.
    ///
    /// # Errors
    /// [`SearchError::TooMany`] for more commitments or deals than servers (before any
    /// work); [`SearchError::Forged`] for a bad signature; [`SearchError::Misaddressed`] or
    /// [`SearchError::Malformed`] naming the dealer of a wrong commitment or deal.
    pub fn check<R: CryptoRng + ?Sized>(
        self,
        commitments: &[SignedMaskCommitment],
        deals: &[SealedMaskDeal],
        keys: &NodeKeys,
        roster: &BTreeMap<NodeId, NodePublicKeys>,
        rng: &mut R,
    ) -> Result<(Checked, Vec<SignedMaskCheck>), SearchError> {
        let servers = self.order.servers.len();
        for (what, got) in [("commitments", commitments.len()), ("deals", deals.len())] {
            if got > servers {
                return Err(SearchError::TooMany {
                    what,
                    got,
                    max: servers,
                });
            }
        }
        let mut known = self.commitments;
        for c in commitments {
            let dealer = c.commitment.dealer();
            if !self.order.servers.contains(&dealer) {
                return Err(misaddressed(dealer, "mask commitment", "not a server"));
            }
            let k = key_of(roster, dealer, "mask commitment")?;
            if !k.signing.verify(&c.signed_message(), &c.signature) {
                return Err(SearchError::Forged {
                    node: dealer,
                    what: "mask commitment",
                });
            }
            let co = &c.commitment;
            if co.session() != self.order.session
                || co.kind() != self.order.kind
                || co.servers() != self.order.servers.as_slice()
                || co.count() != self.order.count
            {
                return Err(misaddressed(
                    dealer,
                    "mask commitment",
                    "for another session, kind, servers or count",
                ));
            }
            if dealer == self.me {
                if known.get(&dealer) != Some(co) {
                    return Err(misaddressed(
                        dealer,
                        "mask commitment",
                        "this server's own commitment came back changed",
                    ));
                }
                continue;
            }
            if let Some(prior) = known.get(&dealer)
                && prior != co
            {
                return Err(misaddressed(dealer, "mask commitment", "two commitments"));
            }
            known.insert(dealer, co.clone());
        }
        let mut received = self.deals;
        for d in deals {
            let dealer = d.dealer;
            if d.recipient != self.me || dealer == self.me || d.session != self.order.session {
                return Err(misaddressed(
                    dealer,
                    "sealed mask deal",
                    "not for this server and session",
                ));
            }
            let Some(commitment) = known.get(&dealer) else {
                return Err(misaddressed(
                    dealer,
                    "sealed mask deal",
                    "without its commitment",
                ));
            };
            let k = key_of(roster, dealer, "sealed mask deal")?;
            let plain = keys
                .open(
                    dealer,
                    &k.encryption,
                    &self.order.session,
                    MASK_DEAL_LABEL,
                    &commitment.to_bytes(),
                    &d.sealed,
                )
                .map_err(|_| misaddressed(dealer, "sealed mask deal", "does not open"))?;
            let deal = MaskDeal::from_bytes(&plain).map_err(|source| SearchError::Malformed {
                from: Some(dealer),
                what: "mask deal",
                source,
            })?;
            if deal.dealer() != dealer
                || deal.recipient() != self.me
                || deal.session() != self.order.session
            {
                return Err(misaddressed(dealer, "mask deal", "addressed otherwise"));
            }
            if !received.iter().any(|x| x.dealer() == dealer) {
                received.push(deal);
            }
        }
        let mut checks = Vec::with_capacity(received.len());
        for deal in &received {
            let Some(commitment) = known.get(&deal.dealer()) else {
                continue;
            };
            if let Ok(check) = deal.verify(commitment) {
                let signature = keys.sign(&with_domain(CHECK_DOMAIN, &check.to_bytes()), rng);
                checks.push(SignedMaskCheck { check, signature });
            }
        }
        Ok((
            Checked {
                order: self.order,
                me: self.me,
                t: self.t,
                commitments: known,
                deals: received,
            },
            checks,
        ))
    }
}

impl Checked {
    /// The order being dealt.
    #[must_use]
    pub fn order(&self) -> &MaskOrder {
        &self.order
    }

    /// Round 3: every server's signed checks (batch-verified; a failing batch names the
    /// checker), judged per dealer. Dealers with too few checks to judge are left out.
    ///
    /// # Errors
    /// [`SearchError::TooMany`] for more than `servers²` checks (before any signature is
    /// checked); [`SearchError::Forged`] or [`SearchError::Misaddressed`] naming a checker;
    /// [`SearchError::Mpc`] with `MasksRejected` if fewer than `t` dealers are accepted
    /// with no server named.
    pub fn judge<R: CryptoRng + ?Sized>(
        self,
        checks: &[SignedMaskCheck],
        roster: &BTreeMap<NodeId, NodePublicKeys>,
        rng: &mut R,
    ) -> Result<Judged, SearchError> {
        let servers = self.order.servers.len();
        let max = servers * servers;
        if checks.len() > max {
            return Err(SearchError::TooMany {
                what: "mask checks",
                got: checks.len(),
                max,
            });
        }
        let mut signed = Vec::with_capacity(checks.len());
        for c in checks {
            let checker = c.check.node;
            if !self.order.servers.contains(&checker) {
                return Err(misaddressed(checker, "mask check", "not a server"));
            }
            signed.push((checker, c.signed_message(), &c.signature));
        }
        verify_signatures(&signed, roster, "mask check", "mask check", self.me, rng)?;
        let mut by_dealer: BTreeMap<NodeId, Vec<MaskCheck>> = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for c in checks {
            let check = c.check;
            if check.session != self.order.session {
                return Err(misaddressed(check.node, "mask check", "another session"));
            }
            if !seen.insert((check.dealer, check.node)) {
                return Err(misaddressed(
                    check.node,
                    "mask check",
                    format!("dealer {} checked twice", check.dealer),
                ));
            }
            by_dealer.entry(check.dealer).or_default().push(check);
        }
        let mut verdicts = Vec::with_capacity(self.commitments.len());
        for (dealer, commitment) in &self.commitments {
            let of = by_dealer.remove(dealer).unwrap_or_default();
            // Too few checks to judge this dealer: its masks are left out.
            if let Ok(v) = judge(commitment, &of, self.t) {
                verdicts.push(v);
            }
        }
        let deals: Vec<MaskDeal> = self
            .deals
            .into_iter()
            .filter(|d| {
                verdicts
                    .iter()
                    .any(|v| v.dealer() == d.dealer() && v.is_clean())
            })
            .collect();
        let pool = MaskPool::from_checked_deals(self.me, &verdicts, &deals, self.t)?;
        let used: Vec<NodeId> = verdicts
            .iter()
            .filter(|v| v.is_clean())
            .map(Verdict::dealer)
            .collect();
        let held: Vec<MaskCommitment> = self.commitments.values().cloned().collect();
        let digest = super::confirm::digest(&self.order, &used, &held);
        Ok(Judged {
            pool,
            verdicts,
            used,
            digest,
        })
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
