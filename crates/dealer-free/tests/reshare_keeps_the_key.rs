#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
//! Resharing hands the DKG's key to a new committee (new n, new t) without assembling it:
//! the group key is unchanged, any t_new new shares give the same secret, old shares do not
//! combine with new ones, and a silent dealer is routed around.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use curve25519_dalek::scalar::Scalar;
use dealer_free::dkg::{DkgOutput, Recipient, local};
use dealer_free::identity::NodeKeys;
use dealer_free::reshare::{
    OldCommittee, ReshareError, ReshareOutput, ReshareParams, ReshareSession,
};
use dealer_free::vss::{generator_g, interpolate_at_zero};
use phr_sis::{NodeId, Threshold};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

fn node(i: u8) -> NodeId {
    NodeId::new(i).unwrap()
}

struct Old {
    t: u8,
    keys: BTreeMap<NodeId, NodeKeys>,
    outputs: BTreeMap<NodeId, DkgOutput>,
}

fn dkg(t: u8, n: u8, rng: &mut ChaCha20Rng) -> Old {
    let keys = local::generate_keys(n, rng);
    let run = local::run_with_keys(
        Threshold::new(t, n).unwrap(),
        b"before resharing",
        keys.clone(),
        &BTreeMap::new(),
        rng,
        &mut || Duration::ZERO,
    )
    .unwrap();
    let outputs = run
        .outcomes
        .into_iter()
        .map(|(id, o)| (id, o.unwrap()))
        .collect();
    Old { t, keys, outputs }
}

/// Runs resharing among `dealers` (old ids) and receivers `1..=new.n()`, where ids that
/// exist in `old` keep their keys and the others are new nodes. Dealers in `silent` send
/// nothing.
fn reshare(
    old: &Old,
    dealers: &[u8],
    new: Threshold,
    silent: &[u8],
    rng: &mut ChaCha20Rng,
) -> BTreeMap<NodeId, Result<ReshareOutput, ReshareError>> {
    let first = old.outputs.values().next().unwrap();
    let committee = OldCommittee {
        threshold: old.t,
        group_public_key: first.group_public_key,
        verification_shares: first.verification_shares.clone(),
    };
    let mut keys = old.keys.clone();
    for id in NodeId::first(new.n()) {
        keys.entry(id)
            .or_insert_with(|| NodeKeys::generate(id, rng));
    }
    let dealer_keys = dealers
        .iter()
        .map(|d| (node(*d), keys[&node(*d)].public()))
        .collect();
    let receiver_keys = NodeId::first(new.n())
        .map(|id| (id, keys[&id].public()))
        .collect();
    let params =
        ReshareParams::new(b"reshare", committee, dealer_keys, new, receiver_keys).unwrap();
    let roles: BTreeSet<NodeId> = dealers
        .iter()
        .map(|d| node(*d))
        .chain(NodeId::first(new.n()))
        .collect();
    let mut sessions = BTreeMap::new();
    let mut outbox = Vec::new();
    for id in &roles {
        let share = old
            .outputs
            .get(id)
            .filter(|_| dealers.contains(&id.get()))
            .map(|o| &o.key_share);
        let (s, out) = ReshareSession::start(params.clone(), keys[id].clone(), share, rng).unwrap();
        sessions.insert(*id, s);
        if !silent.contains(&id.get()) {
            outbox.extend(out);
        }
    }
    let mut results = BTreeMap::new();
    for _round in 0..4 {
        for msg in std::mem::take(&mut outbox) {
            let targets: Vec<NodeId> = match msg.to {
                Recipient::All => roles.iter().copied().filter(|r| *r != msg.from).collect(),
                Recipient::Node(to) => vec![to],
            };
            for to in targets {
                sessions
                    .get_mut(&to)
                    .unwrap()
                    .handle_message(msg.from, &msg.bytes)
                    .unwrap();
            }
        }
        for (id, s) in std::mem::take(&mut sessions) {
            if results.contains_key(&id) {
                sessions.insert(id, s);
                continue;
            }
            match s.end_round(rng) {
                Ok((s, out)) => {
                    if !silent.contains(&id.get()) {
                        outbox.extend(out);
                    }
                    sessions.insert(id, s);
                }
                Err(e) => {
                    results.insert(id, Err(e));
                }
            }
        }
    }
    for (id, s) in &sessions {
        if let Some(o) = s.output() {
            results.entry(*id).or_insert_with(|| Ok(o.clone()));
        }
    }
    results
}

fn secret_of(shares: &[(NodeId, Scalar)]) -> Scalar {
    interpolate_at_zero(shares).unwrap()
}

#[test]
fn resharing_to_a_larger_committee_keeps_the_key() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let old = dkg(3, 5, &mut rng);
    let pk = old.outputs[&node(1)].group_public_key;
    let new = Threshold::new(4, 7).unwrap();
    let results = reshare(&old, &[1, 2, 3, 4, 5], new, &[], &mut rng);
    assert_eq!(results.len(), 7);
    let outs: BTreeMap<NodeId, ReshareOutput> = results
        .into_iter()
        .map(|(id, r)| (id, r.unwrap()))
        .collect();
    let new_shares: Vec<(NodeId, Scalar)> = outs
        .iter()
        .map(|(id, o)| (*id, *o.key_share.secret()))
        .collect();
    for o in outs.values() {
        assert_eq!(o.group_public_key, pk);
        assert_eq!(o.threshold, new);
        for (id, s) in &new_shares {
            assert_eq!(o.verification_shares[id], s * generator_g());
        }
    }
    // Any 4 new shares give the old secret; 3 new shares do not.
    let x = secret_of(&new_shares[..4]);
    assert_eq!(x * generator_g(), pk);
    assert_eq!(secret_of(&new_shares[3..]), x);
    assert_ne!(secret_of(&new_shares[..3]) * generator_g(), pk);
    // Old shares are useless with new ones.
    let old_share = |i: u8| (node(i), *old.outputs[&node(i)].key_share.secret());
    let mixed = [old_share(1), old_share(2), new_shares[5], new_shares[6]];
    assert_ne!(secret_of(&mixed) * generator_g(), pk);
    let mixed3 = [old_share(1), new_shares[1], new_shares[2]];
    assert_ne!(secret_of(&mixed3) * generator_g(), pk);
    // And the new shares are not the old ones.
    assert_ne!(new_shares[0].1, old_share(1).1);
}

#[test]
fn node_replacement_without_the_old_node() {
    // (3,5): node 5 leaves; nodes 1–4 reshare to 1–4 and a new node 5 (fresh keys).
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let mut old = dkg(3, 5, &mut rng);
    let pk = old.outputs[&node(1)].group_public_key;
    old.keys.remove(&node(5));
    let results = reshare(
        &old,
        &[1, 2, 3, 4],
        Threshold::new(3, 5).unwrap(),
        &[],
        &mut rng,
    );
    let shares: Vec<(NodeId, Scalar)> = results
        .iter()
        .map(|(id, r)| (*id, *r.as_ref().unwrap().key_share.secret()))
        .collect();
    assert_eq!(secret_of(&shares[2..]) * generator_g(), pk);
}

#[test]
fn a_silent_dealer_is_disqualified_and_routed_around() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let old = dkg(3, 5, &mut rng);
    let pk = old.outputs[&node(1)].group_public_key;
    // Dealers 1–5; dealer 2 is silent (it still receives as a new node? it stays silent).
    let results = reshare(
        &old,
        &[1, 2, 3, 4, 5],
        Threshold::new(3, 5).unwrap(),
        &[2],
        &mut rng,
    );
    let honest: Vec<(NodeId, ReshareOutput)> = results
        .into_iter()
        .filter(|(id, _)| *id != node(2))
        .map(|(id, r)| (id, r.unwrap()))
        .collect();
    for (_, o) in &honest {
        assert!(o.disqualified.contains_key(&node(2)));
        assert!(!o.dealers_used.contains(&node(2)));
        assert_eq!(o.group_public_key, pk);
    }
    let shares: Vec<(NodeId, Scalar)> = honest
        .iter()
        .map(|(id, o)| (*id, *o.key_share.secret()))
        .collect();
    assert_eq!(secret_of(&shares[..3]) * generator_g(), pk);
}

#[test]
fn too_few_dealers_is_an_error() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let old = dkg(3, 5, &mut rng);
    let results = reshare(
        &old,
        &[1, 2, 3],
        Threshold::new(3, 5).unwrap(),
        &[3],
        &mut rng,
    );
    for (id, r) in &results {
        if *id != node(3) {
            assert!(
                matches!(r, Err(ReshareError::TooFewDealers { .. })),
                "{id}: {r:?}"
            );
        }
    }
}
