#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
//! The DKG's fault matrix: for (t, n) in {(2,3), (3,5), (4,7), (6,10)} and each documented
//! misbehaviour shown by up to t − 1 nodes, the honest nodes agree on QUAL and the public key,
//! and their key shares interpolate to the secret of that key; with t or more disqualified
//! dealers no honest node outputs a key.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use curve25519_dalek::scalar::Scalar;
use dealer_free::dkg::{DkgError, DkgOutput, Misbehaviour, local};
use dealer_free::vss::{generator_g, interpolate_at_zero};
use phr_sis::{NodeId, Threshold};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const PARAMS: [(u8, u8); 4] = [(2, 3), (3, 5), (4, 7), (6, 10)];

fn node(i: u8) -> NodeId {
    NodeId::new(i).unwrap()
}

fn run(t: u8, n: u8, faulty: &BTreeMap<NodeId, Misbehaviour>, seed: u64) -> local::LocalRun {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    local::run(
        Threshold::new(t, n).unwrap(),
        b"adversarial test",
        faulty,
        &mut rng,
        &mut || Duration::ZERO,
    )
    .unwrap()
}

/// Every honest node succeeded with the same QUAL, key and transcript; every honest node's
/// share is on the key's polynomial (any t of them interpolate to the secret of the key and
/// each Y_j = x_j·G). Returns one honest output.
fn assert_honest_agree(
    t: u8,
    run: &local::LocalRun,
    faulty: &BTreeMap<NodeId, Misbehaviour>,
) -> DkgOutput {
    let honest: Vec<(&NodeId, &DkgOutput)> = run
        .outcomes
        .iter()
        .filter(|(id, _)| !faulty.contains_key(id))
        .map(|(id, o)| match o {
            Ok(o) => (id, o),
            Err(e) => panic!("honest node {id} failed: {e}"),
        })
        .collect();
    let n_honest = run.params.participants().len() - faulty.len();
    assert_eq!(honest.len(), n_honest, "every honest node has an outcome");
    let (_, first) = honest[0];
    for (id, o) in &honest {
        assert_eq!(o.qualified, first.qualified, "node {id} QUAL");
        assert_eq!(o.group_public_key, first.group_public_key, "node {id} key");
        assert_eq!(o.transcript, first.transcript, "node {id} transcript");
        assert_eq!(
            o.key_share.secret() * generator_g(),
            first.verification_shares[id],
            "node {id} verification share"
        );
    }
    // Honest dealers are always qualified.
    for (id, _) in &honest {
        assert!(
            first.qualified.contains(id),
            "honest dealer {id} disqualified"
        );
    }
    // Any t honest shares (first and last window) reconstruct the key's secret.
    // Honest shares first; faulty nodes run the unmodified receiving side, so their shares
    // fill the window when fewer than t nodes are honest (n < 2t − 1).
    let mut shares: Vec<(NodeId, Scalar)> = honest
        .iter()
        .map(|(id, o)| (**id, *o.key_share.secret()))
        .collect();
    shares.extend(
        run.outcomes
            .iter()
            .filter(|(id, _)| faulty.contains_key(id))
            .filter_map(|(id, o)| o.as_ref().ok().map(|o| (*id, *o.key_share.secret()))),
    );
    let t = usize::from(t);
    for window in [&shares[..t], &shares[shares.len() - t..]] {
        let x = interpolate_at_zero(window).unwrap();
        assert_eq!(x * generator_g(), first.group_public_key);
    }
    first.clone()
}

/// The highest `k` of `n` ids misbehave; victims are honest (low ids).
fn faulty_set(n: u8, k: u8, m: impl Fn(u8) -> Misbehaviour) -> BTreeMap<NodeId, Misbehaviour> {
    (n - k + 1..=n).map(|i| (node(i), m(i))).collect()
}

fn check_fault(name: &str, m: impl Fn(u8) -> Misbehaviour + Copy) {
    for (seed, (t, n)) in PARAMS.into_iter().enumerate() {
        let max = if matches!(m(n), Misbehaviour::Silent | Misbehaviour::BadProof) {
            // A silent node never confirms validly: t honest confirmers are needed.
            (t - 1).min(n - t)
        } else {
            t - 1
        };
        for k in [1, max] {
            let faulty = faulty_set(n, k, m);
            let r = run(t, n, &faulty, seed as u64 * 100 + u64::from(k));
            let out = assert_honest_agree(t, &r, &faulty);
            for (id, mis) in &faulty {
                assert_eq!(
                    out.disqualified.contains_key(id),
                    mis.is_disqualifying(),
                    "{name} ({t},{n}) k={k}: node {id} disqualification: {:?}",
                    out.disqualified
                );
            }
        }
    }
}

#[test]
fn honest_run_agrees() {
    for (t, n) in PARAMS {
        let r = run(t, n, &BTreeMap::new(), 1);
        let out = assert_honest_agree(t, &r, &BTreeMap::new());
        assert_eq!(out.qualified.len(), usize::from(n));
        assert!(out.disqualified.is_empty());
        assert_eq!(out.verification_shares.len(), usize::from(n));
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
        // No justification round traffic without faults.
        assert_eq!(r.rounds[2].messages, 0);
    }
}

#[test]
fn a_bad_share_is_proved_by_its_victim_and_disqualifies() {
    check_fault("bad-share", |_| Misbehaviour::BadShare { victim: node(1) });
}

#[test]
fn bad_justification_disqualifies() {
    check_fault("bad-justification", |_| Misbehaviour::BadJustification {
        victim: node(1),
    });
}

#[test]
fn bad_commitment_disqualifies() {
    check_fault("bad-commitment", |_| Misbehaviour::BadCommitment);
}

#[test]
fn silent_nodes_are_disqualified_and_unconfirmed() {
    check_fault("silent", |_| Misbehaviour::Silent);
    // (6,10) with 5 silent nodes: only 5 < t nodes can ever confirm.
    let faulty = faulty_set(10, 5, |_| Misbehaviour::Silent);
    let r = run(6, 10, &faulty, 7);
    for id in NodeId::first(5) {
        assert!(matches!(
            r.outcomes[&id],
            Err(DkgError::NotEnoughConfirmations { .. })
        ));
    }
}

#[test]
fn equivocating_dealers_are_disqualified() {
    check_fault("equivocate", |_| Misbehaviour::Equivocate);
}

#[test]
fn false_complaints_do_not_disqualify_honest_dealers() {
    check_fault("false-complaint", |_| Misbehaviour::FalseComplaint {
        accused: node(1),
    });
}

#[test]
fn bad_confirmation_proofs_are_named() {
    check_fault("bad-proof", |_| Misbehaviour::BadProof);
    let faulty = faulty_set(5, 2, |_| Misbehaviour::BadProof);
    let r = run(3, 5, &faulty, 500);
    for id in NodeId::first(3) {
        let o = r.outcomes[&id].as_ref().unwrap();
        assert_eq!(o.invalid_confirmations, BTreeSet::from([node(4), node(5)]));
        assert!(!o.verification_shares.contains_key(&node(4)));
        assert!(o.disqualified.is_empty());
    }
}

#[test]
fn mixed_faults_agree() {
    // (4,7): one node of each of three kinds.
    let faulty: BTreeMap<NodeId, Misbehaviour> = [
        (node(5), Misbehaviour::Equivocate),
        (node(6), Misbehaviour::FalseComplaint { accused: node(2) }),
        (node(7), Misbehaviour::BadJustification { victim: node(3) }),
    ]
    .into();
    let r = run(4, 7, &faulty, 11);
    let out = assert_honest_agree(4, &r, &faulty);
    assert_eq!(
        out.disqualified.keys().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from([node(5), node(7)])
    );
}

#[test]
fn t_or_more_disqualified_dealers_end_with_an_error() {
    for (seed, (t, n)) in PARAMS.into_iter().enumerate() {
        for m in [
            Misbehaviour::BadCommitment,
            Misbehaviour::Equivocate,
            Misbehaviour::BadJustification { victim: node(1) },
            Misbehaviour::Silent,
        ] {
            let faulty = faulty_set(n, t, |_| m);
            let r = run(t, n, &faulty, 1000 + seed as u64);
            let mut keys = BTreeSet::new();
            for (id, o) in &r.outcomes {
                if faulty.contains_key(id) {
                    continue;
                }
                match o {
                    Err(
                        DkgError::TooManyDisqualified { .. }
                        | DkgError::NotEnoughConfirmations { .. },
                    ) => {}
                    Err(e) => panic!("({t},{n}) {m}: unexpected error {e}"),
                    Ok(o) => {
                        keys.insert(o.group_public_key.compress().to_bytes());
                    }
                }
            }
            assert!(keys.is_empty(), "({t},{n}) {m}: honest node output a key");
        }
    }
}

#[test]
fn errors_name_the_culprits() {
    let faulty = faulty_set(5, 3, |_| Misbehaviour::BadCommitment);
    let r = run(3, 5, &faulty, 5);
    let Err(e) = &r.outcomes[&node(1)] else {
        panic!("expected an error");
    };
    assert_eq!(e.culprits(), BTreeSet::from([node(3), node(4), node(5)]));
    assert!(e.to_string().contains("node 3"), "{e}");
}
