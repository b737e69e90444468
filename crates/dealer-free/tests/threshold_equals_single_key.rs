#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
//! The threshold VOPRF output equals the single-key RFC 9497 VOPRF output under the combined
//! key, for any `t`-subset of nodes, with keys dealt by Feldman VSS and with keys from the
//! DKG; bad partials are named and skipped; with fewer than `t`
//! valid partials the error names the failing nodes.

use std::collections::BTreeMap;

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use curve25519_dalek::ristretto::RistrettoPoint;
use dealer_free::oprf::threshold::{
    KeyShare, PartialEvaluation, PartialFailure, ThresholdError, combine, combine_with_report,
    finalize_batch, partial_evaluate, verification_shares_from_points, verification_shares_of,
};
use dealer_free::oprf::{
    Blind, BlindedElement, EvaluationElement, Mode, Proof, PublicKey, SecretKey, blind,
    verifiable_blind_evaluate_batch, verifiable_finalize_batch,
};
use dealer_free::vss::FeldmanDealer;
use phr_sis::{NodeId, Threshold};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

const PARAMS: [(u8, u8); 5] = [(1, 1), (2, 3), (3, 5), (4, 7), (6, 10)];

fn id(j: u8) -> NodeId {
    NodeId::new(j).unwrap()
}

struct Setup {
    threshold: Threshold,
    shares: Vec<KeyShare>,
    verification: BTreeMap<NodeId, PublicKey>,
    key: SecretKey,
}

/// A Feldman-dealt key; verification shares built from points, as a DKG hands them out.
fn setup(t: u8, n: u8, rng: &mut ChaCha20Rng) -> Setup {
    let threshold = Threshold::new(t, n).unwrap();
    let dealer = FeldmanDealer::new(threshold, rng);
    let shares: Vec<KeyShare> = threshold
        .nodes()
        .map(|j| KeyShare::new(j, dealer.share(j)))
        .collect();
    let points: BTreeMap<NodeId, RistrettoPoint> = threshold
        .nodes()
        .map(|j| (j, dealer.commitment().evaluate(j)))
        .collect();
    let verification = verification_shares_from_points(&points).unwrap();
    assert_eq!(verification, verification_shares_of(&shares));
    let key = SecretKey::from_bytes(&dealer.secret().to_bytes()).unwrap();
    assert_eq!(
        key.public_key().to_bytes(),
        dealer.commitment().public_key().compress().to_bytes()
    );
    Setup {
        threshold,
        shares,
        verification,
        key,
    }
}

/// A key from the DKG among n in-process nodes: the key shares and verification shares
/// the nodes output; the single key is only assembled here, by the test, to compare.
fn dkg_setup(t: u8, n: u8, rng: &mut ChaCha20Rng) -> Setup {
    let threshold = Threshold::new(t, n).unwrap();
    let run = dealer_free::dkg::local::run(
        threshold,
        b"threshold VOPRF test",
        &BTreeMap::new(),
        rng,
        &mut || std::time::Duration::ZERO,
    )
    .unwrap();
    let outputs: Vec<_> = run.outcomes.into_values().map(Result::unwrap).collect();
    let shares: Vec<KeyShare> = outputs.iter().map(|o| o.key_share.clone()).collect();
    let verification = verification_shares_from_points(&outputs[0].verification_shares).unwrap();
    let pairs: Vec<(NodeId, curve25519_dalek::scalar::Scalar)> = shares
        .iter()
        .take(usize::from(t))
        .map(|s| (s.id(), *s.secret()))
        .collect();
    let x = dealer_free::vss::interpolate_at_zero(&pairs).unwrap();
    let key = SecretKey::from_bytes(&x.to_bytes()).unwrap();
    assert_eq!(
        key.public_key().to_bytes(),
        outputs[0].group_public_key.compress().to_bytes(),
        "the shares interpolate to the DKG's group key"
    );
    Setup {
        threshold,
        shares,
        verification,
        key,
    }
}

#[test]
fn with_dkg_keys_the_threshold_output_is_the_rfc_output_under_the_group_key() {
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    for (t, n) in [(2, 3), (3, 5), (4, 7)] {
        let s = dkg_setup(t, n, &mut rng);
        let b = batch(8, &mut rng);
        let expected = single_key_outputs(&s, &b, &mut rng);
        let all = partials(&s, &b, &mut rng);
        for subset in [&all[..usize::from(t)], &all[usize::from(n - t)..]] {
            let combined = combine(&b.blinded, subset, &s.verification, s.threshold).unwrap();
            let out = finalize_batch(&input_refs(&b), &b.blinds, &combined).unwrap();
            assert_eq!(out, expected, "({t},{n})");
        }
    }
}

struct Batch {
    inputs: Vec<Vec<u8>>,
    blinds: Vec<Blind>,
    blinded: Vec<BlindedElement>,
}

fn batch(len: usize, rng: &mut ChaCha20Rng) -> Batch {
    let inputs: Vec<Vec<u8>> = (0..len)
        .map(|_| {
            let n = rng.random_range(0..40);
            (0..n).map(|_| rng.random()).collect()
        })
        .collect();
    let (blinds, blinded) = inputs
        .iter()
        .map(|i| blind(Mode::Voprf, i, rng).unwrap())
        .unzip();
    Batch {
        inputs,
        blinds,
        blinded,
    }
}

fn input_refs(b: &Batch) -> Vec<&[u8]> {
    b.inputs.iter().map(Vec::as_slice).collect()
}

/// The RFC 9497 single-key output for the same blinded batch.
fn single_key_outputs(s: &Setup, b: &Batch, rng: &mut ChaCha20Rng) -> Vec<[u8; 64]> {
    let (evs, proof) = verifiable_blind_evaluate_batch(&s.key, &b.blinded, rng).unwrap();
    verifiable_finalize_batch(
        &input_refs(b),
        &b.blinds,
        &b.blinded,
        &evs,
        &s.key.public_key(),
        &proof,
    )
    .unwrap()
}

fn partials(s: &Setup, b: &Batch, rng: &mut ChaCha20Rng) -> Vec<PartialEvaluation> {
    s.shares
        .iter()
        .map(|share| partial_evaluate(share, &b.blinded, rng).unwrap())
        .collect()
}

#[test]
fn any_t_subset_gives_the_single_key_output() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    for (t, n) in PARAMS {
        let s = setup(t, n, &mut rng);
        for round in 0..3 {
            let b = batch(1 + round * 3, &mut rng);
            let expected = single_key_outputs(&s, &b, &mut rng);
            let all = partials(&s, &b, &mut rng);
            // First t, last t, and random t-subsets in random order.
            let mut subsets: Vec<Vec<PartialEvaluation>> = vec![
                all[..usize::from(t)].to_vec(),
                all[usize::from(n - t)..].to_vec(),
            ];
            for _ in 0..3 {
                let mut shuffled = all.clone();
                shuffled.shuffle(&mut rng);
                shuffled.truncate(usize::from(t));
                subsets.push(shuffled);
            }
            for subset in subsets {
                let combined = combine(&b.blinded, &subset, &s.verification, s.threshold)
                    .unwrap_or_else(|e| panic!("({t},{n}): {e}"));
                let out = finalize_batch(&input_refs(&b), &b.blinds, &combined).unwrap();
                assert_eq!(out, expected, "({t},{n}) subset {:?}", nodes(&subset));
            }
            // All n partials: the first t valid ones are used, the rest ignored.
            let report =
                combine_with_report(&b.blinded, &all, &s.verification, s.threshold).unwrap();
            assert_eq!(report.used, nodes(&all[..usize::from(t)]));
            assert!(report.failed.is_empty());
            let out = finalize_batch(&input_refs(&b), &b.blinds, &report.elements).unwrap();
            assert_eq!(out, expected);
        }
    }
}

fn nodes(ps: &[PartialEvaluation]) -> Vec<NodeId> {
    ps.iter().map(|p| p.node).collect()
}

/// A different valid-looking element: the honest one plus G.
fn corrupt_element(p: &mut PartialEvaluation) {
    let e = p.elements[0].to_bytes();
    let point = curve25519_dalek::ristretto::CompressedRistretto(e)
        .decompress()
        .unwrap()
        + RISTRETTO_BASEPOINT_POINT;
    p.elements[0] = EvaluationElement::from_bytes(&point.compress().to_bytes()).unwrap();
}

fn corrupt_proof(p: &mut PartialEvaluation) {
    let mut bytes = p.proof.to_bytes();
    bytes[0] ^= 1;
    p.proof = Proof::from_bytes(&bytes).unwrap();
}

#[test]
fn bad_nodes_are_named_and_skipped() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    for (t, n) in [(3u8, 5u8), (6, 10), (2, 4)] {
        let s = setup(t, n, &mut rng);
        let b = batch(5, &mut rng);
        let expected = single_key_outputs(&s, &b, &mut rng);
        let mut all = partials(&s, &b, &mut rng);
        corrupt_element(&mut all[0]); // node 1: wrong element, honest-looking proof
        corrupt_proof(&mut all[2]); // node 3: right elements, wrong proof
        let report = combine_with_report(&b.blinded, &all, &s.verification, s.threshold).unwrap();
        assert_eq!(
            report.failed,
            vec![
                (id(1), PartialFailure::InvalidProof),
                (id(3), PartialFailure::InvalidProof)
            ]
        );
        assert!(!report.used.contains(&id(1)) && !report.used.contains(&id(3)));
        assert_eq!(report.used.len(), usize::from(t));
        let out = finalize_batch(&input_refs(&b), &b.blinds, &report.elements).unwrap();
        assert_eq!(out, expected, "({t},{n})");
    }
}

#[test]
fn fewer_than_t_valid_partials_name_the_failing_nodes() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let s = setup(3, 5, &mut rng);
    let b = batch(4, &mut rng);
    let all = partials(&s, &b, &mut rng);

    // Nodes 1 and 2 honest, node 3 wrong element, node 4 wrong proof, node 2 again,
    // node 5 with a short batch, and a partial from node 9, which has no verification share.
    let mut bad_element = all[2].clone();
    corrupt_element(&mut bad_element);
    let mut bad_proof = all[3].clone();
    corrupt_proof(&mut bad_proof);
    let mut short = all[4].clone();
    short.elements.pop();
    let mut unknown = all[0].clone();
    unknown.node = id(9);
    let given = vec![
        all[0].clone(),
        all[1].clone(),
        bad_element,
        bad_proof,
        all[1].clone(),
        short,
        unknown,
    ];
    let err = combine(&b.blinded, &given, &s.verification, s.threshold).unwrap_err();
    assert_eq!(
        err,
        ThresholdError::NotEnoughValidPartials {
            needed: 3,
            valid: vec![id(1), id(2)],
            failed: vec![
                (id(3), PartialFailure::InvalidProof),
                (id(4), PartialFailure::InvalidProof),
                (id(2), PartialFailure::DuplicateNode),
                (
                    id(5),
                    PartialFailure::WrongBatchLength {
                        expected: 4,
                        found: 3
                    }
                ),
                (id(9), PartialFailure::UnknownNode),
            ],
        }
    );
    assert_eq!(err.culprits(), vec![id(3), id(4), id(2), id(5), id(9)]);
    assert!(
        err.to_string()
            .contains("2 valid partial evaluations, 3 needed")
    );

    // No partials at all: nothing valid, nobody to blame.
    let err = combine(&b.blinded, &[], &s.verification, s.threshold).unwrap_err();
    assert!(err.culprits().is_empty());
}

#[test]
fn partials_roundtrip_through_the_wire() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let s = setup(3, 5, &mut rng);
    let b = batch(16, &mut rng);
    let expected = single_key_outputs(&s, &b, &mut rng);
    let decoded: Vec<PartialEvaluation> = partials(&s, &b, &mut rng)
        .iter()
        .map(|p| {
            let bytes = p.to_bytes().unwrap();
            assert_eq!(bytes.len(), PartialEvaluation::encoded_len(16));
            PartialEvaluation::from_bytes(&bytes).unwrap()
        })
        .collect();
    let combined = combine(&b.blinded, &decoded[2..], &s.verification, s.threshold).unwrap();
    assert_eq!(
        finalize_batch(&input_refs(&b), &b.blinds, &combined).unwrap(),
        expected
    );
}
