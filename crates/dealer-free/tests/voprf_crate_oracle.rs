#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
//! Our RFC 9497 VOPRF against the `voprf` crate (facebook/voprf, ristretto255-SHA512) on
//! random keys and inputs: same blinded elements for the same blind, byte-identical
//! evaluations and proofs for the same proof randomness, each side's proofs verify on the
//! other side, same outputs; the threshold output equals their single-key output.
//!
//! `voprf` uses curve25519-dalek 4 and we use 5, so values cross only as byte encodings;
//! blinds and proof randomness reach `voprf` through an RNG that returns exactly the bytes
//! of our scalars (it samples 32 bytes and accepts canonical non-zero scalars).

use dealer_free::oprf::threshold::{
    KeyShare, combine, finalize_batch, partial_evaluate, verification_shares_of,
};
use dealer_free::oprf::{
    Blind, BlindedElement, EvaluationElement, Mode, Proof, ProofRandomness, PublicKey, SecretKey,
    blind, derive_key_pair, verifiable_blind_evaluate_batch,
    verifiable_blind_evaluate_batch_with_proof_randomness, verifiable_finalize_batch,
};
use dealer_free::vss::FeldmanDealer;
use phr_sis::Threshold;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use voprf::{Group, Ristretto255, VoprfClient, VoprfServer};

type Cs = Ristretto255;

/// An RNG that returns the given bytes, then panics.
struct FixedBytes(Vec<u8>);

impl rand::RngCore for FixedBytes {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        assert!(dst.len() <= self.0.len(), "FixedBytes exhausted");
        let rest = self.0.split_off(dst.len());
        dst.copy_from_slice(&self.0);
        self.0 = rest;
    }
}

impl rand::CryptoRng for FixedBytes {}

fn random_scalar_bytes(rng: &mut ChaCha20Rng) -> [u8; 32] {
    let mut wide = [0u8; 64];
    rng.fill(&mut wide[..]);
    curve25519_dalek::scalar::Scalar::from_bytes_mod_order_wide(&wide).to_bytes()
}

fn random_inputs(rng: &mut ChaCha20Rng) -> Vec<Vec<u8>> {
    let n = rng.random_range(1..=5);
    (0..n)
        .map(|_| {
            let len = rng.random_range(0..64);
            (0..len).map(|_| rng.random()).collect()
        })
        .collect()
}

fn their_pk(pk: &PublicKey) -> <<Cs as voprf::CipherSuite>::Group as Group>::Elem {
    <Cs as Group>::deserialize_elem(&pk.to_bytes()).unwrap()
}

#[test]
fn agrees_with_the_voprf_crate() {
    let mut rng = ChaCha20Rng::seed_from_u64(0x5eed);
    for case in 0..50 {
        // Keys: half from DeriveKeyPair(seed, info), half from a serialized scalar.
        let (sk, server) = if case % 2 == 0 {
            let seed: [u8; 32] = rng.random();
            let info: Vec<u8> = (0..rng.random_range(0..16)).map(|_| rng.random()).collect();
            let (sk, _) = derive_key_pair(Mode::Voprf, &seed, &info).unwrap();
            (sk, VoprfServer::<Cs>::new_from_seed(&seed, &info).unwrap())
        } else {
            let sk = SecretKey::random(&mut rng);
            let server = VoprfServer::<Cs>::new_with_key(&sk.to_bytes()).unwrap();
            (sk, server)
        };
        let pk = sk.public_key();
        assert_eq!(
            server.get_public_key().compress().to_bytes(),
            pk.to_bytes(),
            "case {case}: public key"
        );
        let inputs = random_inputs(&mut rng);
        let input_refs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();

        // Same blind ⇒ same blinded element.
        let mut blinds: Vec<Blind> = Vec::new();
        let mut blinded: Vec<BlindedElement> = Vec::new();
        let mut clients: Vec<VoprfClient<Cs>> = Vec::new();
        let mut their_blinded = Vec::new();
        for input in &inputs {
            let (b, be) = blind(Mode::Voprf, input, &mut rng).unwrap();
            let theirs =
                VoprfClient::<Cs>::blind(input, &mut FixedBytes(b.to_bytes().to_vec())).unwrap();
            assert_eq!(
                theirs.message.serialize().as_slice(),
                be.to_bytes().as_slice(),
                "case {case}: blinded element"
            );
            blinds.push(b);
            blinded.push(be);
            clients.push(theirs.state);
            their_blinded.push(theirs.message);
        }

        // Same proof randomness ⇒ byte-identical evaluations and proof.
        let r = random_scalar_bytes(&mut rng);
        let (evs, proof) = verifiable_blind_evaluate_batch_with_proof_randomness(
            &sk,
            &blinded,
            &ProofRandomness::from_bytes(&r).unwrap(),
        )
        .unwrap();
        let their = server
            .batch_blind_evaluate(&mut FixedBytes(r.to_vec()), &their_blinded)
            .unwrap();
        for (ours, theirs) in evs.iter().zip(&their.messages) {
            assert_eq!(ours.to_bytes().as_slice(), theirs.serialize().as_slice());
        }
        assert_eq!(
            proof.to_bytes().as_slice(),
            their.proof.serialize().as_slice(),
            "case {case}: proof"
        );

        // Independent randomness: each side verifies the other's proof.
        let (evs, proof) = verifiable_blind_evaluate_batch(&sk, &blinded, &mut rng).unwrap();
        let ours_in_theirs: Vec<voprf::EvaluationElement<Cs>> = evs
            .iter()
            .map(|e| voprf::EvaluationElement::deserialize(&e.to_bytes()).unwrap())
            .collect();
        let their_outputs: Vec<Vec<u8>> = VoprfClient::batch_finalize(
            &input_refs,
            &clients,
            &ours_in_theirs,
            &voprf::Proof::deserialize(&proof.to_bytes()).unwrap(),
            their_pk(&pk),
        )
        .unwrap()
        .map(|o| o.unwrap().to_vec())
        .collect();
        let our_outputs =
            verifiable_finalize_batch(&input_refs, &blinds, &blinded, &evs, &pk, &proof).unwrap();

        let mut their_rng = ChaCha20Rng::seed_from_u64(case);
        let their = server
            .batch_blind_evaluate(&mut their_rng, &their_blinded)
            .unwrap();
        let theirs_in_ours: Vec<EvaluationElement> = their
            .messages
            .iter()
            .map(|m| EvaluationElement::from_bytes(&m.serialize().into()).unwrap())
            .collect();
        let their_proof = Proof::from_bytes(&their.proof.serialize().into()).unwrap();
        let verified_theirs = verifiable_finalize_batch(
            &input_refs,
            &blinds,
            &blinded,
            &theirs_in_ours,
            &pk,
            &their_proof,
        )
        .unwrap();

        for (i, input) in inputs.iter().enumerate() {
            let direct = server.evaluate(input).unwrap();
            assert_eq!(our_outputs[i].as_slice(), direct.as_slice(), "case {case}");
            assert_eq!(their_outputs[i], direct.to_vec(), "case {case}");
            assert_eq!(
                verified_theirs[i].as_slice(),
                direct.as_slice(),
                "case {case}"
            );
        }
    }
}

#[test]
fn threshold_output_equals_their_single_key_output() {
    let mut rng = ChaCha20Rng::seed_from_u64(0x7e5_u64);
    for (t, n) in [(2u8, 3u8), (3, 5), (6, 10)] {
        let threshold = Threshold::new(t, n).unwrap();
        let dealer = FeldmanDealer::new(threshold, &mut rng);
        let server = VoprfServer::<Cs>::new_with_key(&dealer.secret().to_bytes()).unwrap();
        let shares: Vec<KeyShare> = threshold
            .nodes()
            .map(|j| KeyShare::new(j, dealer.share(j)))
            .collect();
        let verification = verification_shares_of(&shares);
        let inputs = random_inputs(&mut rng);
        let input_refs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
        let (blinds, blinded): (Vec<Blind>, Vec<BlindedElement>) = inputs
            .iter()
            .map(|i| blind(Mode::Voprf, i, &mut rng).unwrap())
            .unzip();
        let partials: Vec<_> = shares[usize::from(n - t)..]
            .iter()
            .map(|s| partial_evaluate(s, &blinded, &mut rng).unwrap())
            .collect();
        let combined = combine(&blinded, &partials, &verification, threshold).unwrap();
        let outputs = finalize_batch(&input_refs, &blinds, &combined).unwrap();
        for (input, out) in inputs.iter().zip(&outputs) {
            assert_eq!(out.as_slice(), server.evaluate(input).unwrap().as_slice());
        }
    }
}
