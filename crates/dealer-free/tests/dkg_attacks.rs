#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
//! Attacks on the DKG's secrecy by a corrupt node that is also the relay (or a network
//! attacker beside it), run in process against the real sessions. In each the attacker
//! collects every point of the dealers' polynomials it can see, makes its best guess of the
//! group secret `x` and checks `x·G` against the group key; the test asserts that the
//! check fails while the honest nodes still finish with a key.

use std::collections::BTreeMap;

use curve25519_dalek::scalar::Scalar;
use dealer_free::dkg::deal::Deal;
use dealer_free::dkg::{DkgMessage, DkgParams, DkgSession, Misbehaviour, Outgoing, Recipient};
use dealer_free::identity::NodeKeys;
use dealer_free::vss::{generator_g, interpolate_at_zero};
use phr_sis::{NodeId, Threshold};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

fn node(i: u8) -> NodeId {
    NodeId::new(i).unwrap()
}

/// How the attacking relay treats the deals of honest dealers.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Tamper {
    /// A forged deal "from i to j" (i's real commitment and signature, a garbage share)
    /// delivered before the real one.
    Forge,
    /// The real deal dropped.
    Drop,
    /// A second corrupt node (4) stays silent too, and corrupt node 5 deals each honest `j`
    /// a deal of its own whose ephemeral key is that of another honest dealer, so that
    /// `j`'s complaint publishes the exchange point that opens that dealer's share to `j`.
    CopyEphemeral,
}

/// What the attacker saw: points `(x, f_i(x))` of dealer `i`'s polynomial, by dealer.
type Points = BTreeMap<NodeId, BTreeMap<NodeId, Scalar>>;

/// Runs a (3, 5) DKG whose node 5 is corrupt and relays every message, tampering with the
/// deals of each honest dealer to `t − 1` honest recipients. Returns the honest outcomes'
/// group key (if they agree on one) and the attacker's best guess of the secret.
fn attack(tamper: Tamper, seed: u64) -> (Option<curve25519_dalek::RistrettoPoint>, Scalar) {
    let (t, n) = (3u8, 5u8);
    let threshold = Threshold::new(t, n).unwrap();
    let attacker = node(n);
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let keys: BTreeMap<NodeId, NodeKeys> = NodeId::first(n)
        .map(|id| (id, NodeKeys::generate(id, &mut rng)))
        .collect();
    let publics = keys.iter().map(|(id, k)| (*id, k.public())).collect();
    let params = DkgParams::new(b"attack", threshold, publics).unwrap();
    let mut sessions = BTreeMap::new();
    let mut outbox: Vec<Outgoing> = Vec::new();
    let attacker_keys = keys[&attacker].clone();
    let accomplice_keys = keys[&node(n - 1)].clone();
    for (id, k) in keys {
        // The attacker deals nothing (and is disqualified): the group secret is then the sum
        // of the honest dealers' secrets alone, which is what it tries to learn.
        let m = if id == attacker || (tamper == Tamper::CopyEphemeral && id == node(n - 1)) {
            Misbehaviour::Silent
        } else {
            Misbehaviour::Honest
        };
        let (s, out) = DkgSession::start_with(params.clone(), k, m, &mut rng).unwrap();
        sessions.insert(id, s);
        outbox.extend(out);
    }
    let mut seen: Points = BTreeMap::new();
    let mut attacker_deals: BTreeMap<NodeId, Deal> = BTreeMap::new();
    let mut relayed: BTreeMap<(NodeId, NodeId), Deal> = BTreeMap::new();
    // The honest recipients each honest dealer's deal is tampered with: the next t − 1
    // honest nodes after it.
    let honest: Vec<NodeId> = NodeId::first(n - 1).collect();
    let victims = |dealer: NodeId| -> Vec<NodeId> {
        honest
            .iter()
            .cycle()
            .skip_while(|id| **id != dealer)
            .skip(1)
            .take(usize::from(t - 1))
            .copied()
            .collect()
    };
    for round in 0..4 {
        let mut deliveries: Vec<(NodeId, NodeId, Vec<u8>)> = Vec::new();
        // The attacker's forged deals go first.
        if round == 0 {
            for msg in &outbox {
                let Ok(DkgMessage::Deal(deal)) = DkgMessage::from_bytes(&msg.bytes, threshold)
                else {
                    continue;
                };
                if deal.recipient != attacker {
                    continue;
                }
                if tamper == Tamper::CopyEphemeral && deal.dealer < node(n - 1) {
                    // Honest dealer h's ephemeral key goes to the next honest node j.
                    let h = deal.dealer.get();
                    let j = node(h % (n - 2) + 1);
                    let mut copied = deal.clone();
                    copied.dealer = attacker;
                    copied.recipient = j;
                    copied.encrypted_share = [9u8; dealer_free::dkg::deal::ENCRYPTED_SHARE_LEN];
                    copied.signature =
                        attacker_keys.sign(&copied.signed_bytes(&params.session()), &mut rng);
                    deliveries.push((attacker, j, copied.to_bytes()));
                }
                if let Tamper::Forge = tamper {
                    for victim in victims(deal.dealer) {
                        let mut forged = deal.clone();
                        forged.recipient = victim;
                        forged.encrypted_share = [7u8; dealer_free::dkg::deal::ENCRYPTED_SHARE_LEN];
                        deliveries.push((deal.dealer, victim, forged.to_bytes()));
                    }
                }
            }
        }
        for msg in std::mem::take(&mut outbox) {
            let targets: Vec<NodeId> = match msg.to {
                Recipient::All => sessions
                    .keys()
                    .copied()
                    .filter(|id| *id != msg.from)
                    .collect(),
                Recipient::Node(to) => vec![to],
            };
            for to in targets {
                if round == 0
                    && msg.from != attacker
                    && matches!(tamper, Tamper::Drop)
                    && victims(msg.from).contains(&to)
                {
                    continue;
                }
                deliveries.push((msg.from, to, msg.bytes.clone()));
            }
        }
        for (from, to, bytes) in deliveries {
            // The relay reads everything it relays.
            if let Ok(m) = DkgMessage::from_bytes(&bytes, threshold) {
                for k in [&attacker_keys, &accomplice_keys] {
                    collect(&mut seen, &mut attacker_deals, k, &params, to, &m);
                }
                if let DkgMessage::Deal(d) = &m {
                    relayed.insert((d.dealer, d.recipient), d.clone());
                }
                leak(&mut seen, &relayed, &params, &m);
            }
            if let Some(s) = sessions.get_mut(&to) {
                let _ = s.handle_message(from, &bytes);
            }
        }
        let mut next = BTreeMap::new();
        for (id, s) in std::mem::take(&mut sessions) {
            match s.end_round(&mut rng) {
                Ok((s, out)) => {
                    outbox.extend(out);
                    next.insert(id, s);
                }
                Err(e) => eprintln!("node {id} ended without a key: {e}"),
            }
        }
        sessions = next;
    }
    let keys: Vec<_> = sessions
        .iter()
        .filter(|(id, _)| **id != attacker)
        .filter_map(|(_, s)| s.output().map(|o| o.group_public_key))
        .collect();
    let agreed = (keys.len() == usize::from(n - 1) && keys.windows(2).all(|w| w[0] == w[1]))
        .then(|| keys[0]);
    // The attacker's own share of each polynomial is the one its session opened.
    let guess = best_guess(&seen, t);
    (agreed, guess)
}

/// Records every plaintext point of a dealer's polynomial the attacker can read from a
/// relayed message: its own deals, and any share a complaint's evidence opens.
fn collect(
    seen: &mut Points,
    deals: &mut BTreeMap<NodeId, Deal>,
    me: &NodeKeys,
    params: &DkgParams,
    to: NodeId,
    m: &DkgMessage,
) {
    let session = params.session();
    if let DkgMessage::Deal(d) = m
        && to == me.id()
        && let Some(share) = d.open(me, &session)
    {
        seen.entry(d.dealer).or_default().insert(to, share.value());
        deals.insert(d.dealer, d.clone());
    }
    if let DkgMessage::Complaint(c) = m {
        for complaint in &c.complaints {
            if let (Some(e), Some(deal)) = (&complaint.evidence, deals.get(&complaint.accused))
                && let Some(share) = deal.open_evidence(e, c.sender, &session)
            {
                seen.entry(complaint.accused)
                    .or_default()
                    .insert(c.sender, share.value());
            }
        }
    }
}

/// Opens every relayed deal of an honest dealer to `j` with each exchange point `j`
/// published in a complaint.
fn leak(
    seen: &mut Points,
    relayed: &BTreeMap<(NodeId, NodeId), Deal>,
    params: &DkgParams,
    m: &DkgMessage,
) {
    let DkgMessage::Complaint(c) = m else { return };
    for complaint in &c.complaints {
        let Some(e) = &complaint.evidence else {
            continue;
        };
        for ((dealer, to), deal) in relayed {
            if *to == c.sender
                && let Some(share) = deal.open_with(&e.shared, &params.session())
            {
                seen.entry(*dealer).or_default().insert(*to, share.value());
            }
        }
    }
}

/// Σ_i f_i(0) over the dealers of which the attacker holds `t` points (and 0 for the
/// others: the best it can do without them).
fn best_guess(seen: &Points, t: u8) -> Scalar {
    seen.values()
        .filter(|pts| pts.len() >= usize::from(t))
        .map(|pts| {
            let v: Vec<(NodeId, Scalar)> = pts.iter().map(|(k, v)| (*k, *v)).collect();
            interpolate_at_zero(&v[..usize::from(t)]).unwrap()
        })
        .sum()
}

fn check(tamper: Tamper) {
    let (key, guess) = attack(tamper, 7);
    let key = key.expect("the honest nodes still agree on a key");
    assert_ne!(
        guess * generator_g(),
        key,
        "{tamper:?}: the attacker recovered the group secret"
    );
}

#[test]
fn forged_deals_reveal_nothing() {
    check(Tamper::Forge);
}

#[test]
fn dropped_deals_reveal_nothing() {
    check(Tamper::Drop);
}

#[test]
fn a_copied_ephemeral_key_reveals_nothing() {
    check(Tamper::CopyEphemeral);
}
