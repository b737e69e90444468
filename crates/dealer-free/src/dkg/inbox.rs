//! The round core shared by the DKG and resharing: one slot per sender and round, where an
//! unverified message never displaces a verified one.
//!
//! Signatures are checked in one batch when a round ends (one multiscalar multiplication for
//! all of a round's messages), which keeps the honest run cheap. A relay or a network
//! attacker can deliver a forged message before the real one; so when a second, different
//! message arrives for an occupied slot, both are checked on the spot: a slot whose message
//! fails its signature is emptied and the valid newcomer takes it; a slot whose message is
//! valid keeps it, and the newcomer is refused (as forged, or — if it is valid too — as the
//! sender's second message in the round, which only the sender can make). Each arrival
//! costs at most its own signature check and, once per slot, the held message's (a verdict is
//! kept, so no message is checked twice): a flood of forgeries cannot buy more work than it
//! sends, and whatever order messages arrive in, the slot ends with the sender's first valid
//! message.

use std::collections::BTreeMap;

use phr_sis::NodeId;
use rand::CryptoRng;

use crate::identity::{Signature, VerifyingKey, failing_signatures};

/// One received message: its bytes, its decoding, and what its signature covers.
#[derive(Debug, Clone)]
pub(crate) struct Arrival<M> {
    pub(crate) bytes: Vec<u8>,
    pub(crate) msg: M,
    signed: Vec<u8>,
    signature: Signature,
    /// `None` until checked; then whether the signature holds.
    verified: Option<bool>,
}

impl<M> Arrival<M> {
    /// A message whose signature `signature` covers `signed`.
    pub(crate) fn new(bytes: Vec<u8>, msg: M, signed: Vec<u8>, signature: Signature) -> Arrival<M> {
        Arrival {
            bytes,
            msg,
            signed,
            signature,
            verified: None,
        }
    }

    /// A message this node made itself (no check needed).
    pub(crate) fn own(bytes: Vec<u8>, msg: M) -> Arrival<M> {
        Arrival {
            bytes,
            msg,
            signed: Vec::new(),
            signature: Signature::placeholder(),
            verified: Some(true),
        }
    }

    fn check(&mut self, key: &VerifyingKey) -> bool {
        *self
            .verified
            .get_or_insert_with(|| key.verify(&self.signed, &self.signature))
    }
}

/// A round's verified messages by sender (bytes and decoding), and the senders whose
/// message failed its signature.
pub(crate) type RoundMessages<M> = (BTreeMap<NodeId, (Vec<u8>, M)>, Vec<NodeId>);

/// Why an arrival was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Its signature does not verify.
    Forged,
    /// The sender already has a different, validly signed message in this round.
    Second,
}

/// What happened to an arrival that was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kept {
    /// It took an empty slot (to be checked when the round ends), or repeats the message
    /// already there.
    Held,
    /// It replaced a message whose signature failed.
    ReplacedForgery,
}

/// The slots of the current round and of the next one (messages that arrived early).
#[derive(Debug)]
pub(crate) struct Inbox<M> {
    current: BTreeMap<NodeId, Arrival<M>>,
    early: BTreeMap<NodeId, Arrival<M>>,
}

impl<M> Default for Inbox<M> {
    fn default() -> Inbox<M> {
        Inbox {
            current: BTreeMap::new(),
            early: BTreeMap::new(),
        }
    }
}

impl<M> Inbox<M> {
    /// Offers a message from `from` for the current round (`early == false`) or the next.
    pub(crate) fn offer(
        &mut self,
        early: bool,
        from: NodeId,
        mut arrival: Arrival<M>,
        key: &VerifyingKey,
    ) -> Result<Kept, Refusal> {
        let slots = if early {
            &mut self.early
        } else {
            &mut self.current
        };
        let Some(held) = slots.get_mut(&from) else {
            slots.insert(from, arrival);
            return Ok(Kept::Held);
        };
        if held.bytes == arrival.bytes {
            return Ok(Kept::Held);
        }
        if held.check(key) {
            return Err(if arrival.check(key) {
                Refusal::Second
            } else {
                Refusal::Forged
            });
        }
        if arrival.check(key) {
            *held = arrival;
            Ok(Kept::ReplacedForgery)
        } else {
            Err(Refusal::Forged)
        }
    }

    /// Puts this node's own message into the current round.
    pub(crate) fn insert_own(&mut self, from: NodeId, arrival: Arrival<M>) {
        self.current.insert(from, arrival);
    }

    /// Ends the round: checks every unverified signature in one batch and returns the
    /// messages that hold, by sender, and the senders whose message failed. Early messages
    /// become the next round's.
    pub(crate) fn take_round<'k, R: CryptoRng + ?Sized>(
        &mut self,
        key_of: impl Fn(NodeId) -> Option<&'k VerifyingKey>,
        rng: &mut R,
    ) -> RoundMessages<M> {
        let round = std::mem::replace(&mut self.current, std::mem::take(&mut self.early));
        let (verified, unverified): (Vec<_>, Vec<_>) =
            round.into_iter().partition(|(_, a)| a.verified.is_some());
        let checks: Vec<_> = unverified
            .iter()
            .map(|(from, a)| (key_of(*from), a.signed.as_slice(), Some(&a.signature)))
            .collect();
        let failing = failing_signatures(&checks, rng);
        let mut out: BTreeMap<NodeId, (Vec<u8>, M)> = BTreeMap::new();
        let mut bad = Vec::new();
        for (from, a) in verified {
            if a.verified == Some(true) {
                out.insert(from, (a.bytes, a.msg));
            } else {
                bad.push(from);
            }
        }
        for (i, (from, a)) in unverified.into_iter().enumerate() {
            if failing.contains(&i) {
                bad.push(from);
            } else {
                out.insert(from, (a.bytes, a.msg));
            }
        }
        (out, bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::NodeKeys;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[allow(clippy::unwrap_used)] // test code
    fn node(i: u8) -> NodeId {
        NodeId::new(i).unwrap()
    }

    fn arrival(keys: &NodeKeys, body: &[u8], rng: &mut ChaCha20Rng) -> Arrival<u8> {
        let sig = keys.sign(body, rng);
        Arrival::new(body.to_vec(), body[0], body.to_vec(), sig)
    }

    #[test]
    fn a_forgery_never_displaces_a_valid_message_and_never_blocks_one() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let sender = NodeKeys::generate(node(1), &mut rng);
        let attacker = NodeKeys::generate(node(2), &mut rng);
        let key = sender.public().signing;
        let real = || arrival(&sender, b"real", &mut ChaCha20Rng::seed_from_u64(4));
        let forged = || arrival(&attacker, b"forged", &mut ChaCha20Rng::seed_from_u64(5));

        // Forged first: the real one replaces it.
        let mut inbox = Inbox::default();
        assert_eq!(inbox.offer(false, node(1), forged(), &key), Ok(Kept::Held));
        assert_eq!(
            inbox.offer(false, node(1), real(), &key),
            Ok(Kept::ReplacedForgery)
        );
        assert_eq!(
            inbox.offer(false, node(1), forged(), &key),
            Err(Refusal::Forged)
        );
        let (out, bad) = inbox.take_round(|_| Some(&key), &mut rng);
        assert_eq!(out.get(&node(1)).map(|m| m.1), Some(b'r'));
        assert!(bad.is_empty());

        // Real first: forgeries are refused.
        let mut inbox = Inbox::default();
        assert_eq!(inbox.offer(false, node(1), real(), &key), Ok(Kept::Held));
        assert_eq!(
            inbox.offer(false, node(1), forged(), &key),
            Err(Refusal::Forged)
        );
        // A second, different valid message of the sender is refused as such.
        let other = arrival(&sender, b"other", &mut rng);
        assert_eq!(
            inbox.offer(false, node(1), other, &key),
            Err(Refusal::Second)
        );
        let (out, _) = inbox.take_round(|_| Some(&key), &mut rng);
        assert_eq!(out.get(&node(1)).map(|m| m.1), Some(b'r'));

        // A forgery alone is dropped when the round ends, and its sender named.
        let mut inbox = Inbox::default();
        assert_eq!(inbox.offer(false, node(1), forged(), &key), Ok(Kept::Held));
        let (out, bad) = inbox.take_round(|_| Some(&key), &mut rng);
        assert!(out.is_empty());
        assert_eq!(bad, vec![node(1)]);
    }

    #[test]
    fn early_messages_wait_for_their_round() {
        let mut rng = ChaCha20Rng::seed_from_u64(6);
        let sender = NodeKeys::generate(node(1), &mut rng);
        let key = sender.public().signing;
        let mut inbox = Inbox::default();
        let next = arrival(&sender, b"next", &mut rng);
        assert_eq!(inbox.offer(true, node(1), next, &key), Ok(Kept::Held));
        let (now, _) = inbox.take_round(|_| Some(&key), &mut rng);
        assert!(now.is_empty());
        let (then, _) = inbox.take_round(|_| Some(&key), &mut rng);
        assert_eq!(then.get(&node(1)).map(|m| m.1), Some(b'n'));
    }
}
