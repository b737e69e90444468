//! VOPRF (RFC 9497, ristretto255-SHA512) benchmarks: ours beside the `voprf` crate on the
//! same keys and inputs, and the threshold VOPRF (partial evaluation, client combination).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)] // benchmark code

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dealer_free::oprf::threshold::{
    KeyShare, combine, finalize_batch, partial_evaluate, verification_shares_of,
};
use dealer_free::oprf::{
    Blind, BlindedElement, Mode, SecretKey, blind, verifiable_blind_evaluate_batch,
    verifiable_finalize_batch,
};
use dealer_free::vss::FeldmanDealer;
use phr_sis::Threshold;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use voprf::{Ristretto255, VoprfClient, VoprfServer};

type Cs = Ristretto255;

struct Inputs {
    inputs: Vec<Vec<u8>>,
    blinds: Vec<Blind>,
    blinded: Vec<BlindedElement>,
    clients: Vec<VoprfClient<Cs>>,
    their_blinded: Vec<voprf::BlindedElement<Cs>>,
}

fn inputs(n: usize, rng: &mut ChaCha20Rng) -> Inputs {
    let inputs: Vec<Vec<u8>> = (0..n).map(|_| rng.random::<[u8; 32]>().to_vec()).collect();
    let (blinds, blinded): (Vec<Blind>, Vec<BlindedElement>) = inputs
        .iter()
        .map(|i| blind(Mode::Voprf, i, rng).unwrap())
        .unzip();
    // The same blinded elements, deserialized by the voprf crate; the client states carry
    // the same blinds.
    let mut clients = Vec::new();
    let mut their_blinded = Vec::new();
    for (b, be) in blinds.iter().zip(&blinded) {
        let mut state = b.to_bytes().to_vec();
        state.extend_from_slice(&be.to_bytes());
        clients.push(VoprfClient::<Cs>::deserialize(&state).unwrap());
        their_blinded.push(voprf::BlindedElement::<Cs>::deserialize(&be.to_bytes()).unwrap());
    }
    Inputs {
        inputs,
        blinds,
        blinded,
        clients,
        their_blinded,
    }
}

fn server_evaluate(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let sk = SecretKey::random(&mut rng);
    let server = VoprfServer::<Cs>::new_with_key(&sk.to_bytes()).unwrap();
    let mut group = c.benchmark_group("voprf-ristretto255/server_evaluate");
    for batch in [1usize, 16] {
        let x = inputs(batch, &mut rng);
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(BenchmarkId::new("dealer-free", batch), |b| {
            b.iter(|| {
                verifiable_blind_evaluate_batch(&sk, black_box(&x.blinded), &mut rng).unwrap()
            })
        });
        group.bench_function(BenchmarkId::new("voprf", batch), |b| {
            b.iter(|| {
                server
                    .batch_blind_evaluate(&mut rng, black_box(&x.their_blinded))
                    .unwrap()
            })
        });
    }
    group.finish();
}

fn client_finalize(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let sk = SecretKey::random(&mut rng);
    let pk = sk.public_key();
    let server = VoprfServer::<Cs>::new_with_key(&sk.to_bytes()).unwrap();
    let mut group = c.benchmark_group("voprf-ristretto255/client_verify_finalize");
    for batch in [1usize, 16] {
        let x = inputs(batch, &mut rng);
        let refs: Vec<&[u8]> = x.inputs.iter().map(Vec::as_slice).collect();
        let (evs, proof) = verifiable_blind_evaluate_batch(&sk, &x.blinded, &mut rng).unwrap();
        let their = server
            .batch_blind_evaluate(&mut rng, &x.their_blinded)
            .unwrap();
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(BenchmarkId::new("dealer-free", batch), |b| {
            b.iter(|| {
                verifiable_finalize_batch(
                    &refs,
                    &x.blinds,
                    &x.blinded,
                    black_box(&evs),
                    &pk,
                    &proof,
                )
                .unwrap()
            })
        });
        group.bench_function(BenchmarkId::new("voprf", batch), |b| {
            b.iter(|| {
                VoprfClient::batch_finalize(
                    &refs,
                    &x.clients,
                    black_box(&their.messages),
                    &their.proof,
                    server.get_public_key(),
                )
                .unwrap()
                .map(|o| o.unwrap())
                .collect::<Vec<_>>()
            })
        });
    }
    group.finish();
}

fn threshold(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    const BATCH: usize = 16;
    let x = inputs(BATCH, &mut rng);
    let refs: Vec<&[u8]> = x.inputs.iter().map(Vec::as_slice).collect();
    let mut group = c.benchmark_group("threshold-voprf");
    group.throughput(Throughput::Elements(BATCH as u64));
    for (t, n) in [(3u8, 5u8), (11, 21)] {
        let threshold = Threshold::new(t, n).unwrap();
        let dealer = FeldmanDealer::new(threshold, &mut rng);
        let shares: Vec<KeyShare> = threshold
            .nodes()
            .map(|j| KeyShare::new(j, dealer.share(j)))
            .collect();
        let verification = verification_shares_of(&shares);
        let label = format!("t={t},n={n},batch={BATCH}");
        group.bench_function(BenchmarkId::new("partial_evaluate", &label), |b| {
            b.iter(|| partial_evaluate(&shares[0], black_box(&x.blinded), &mut rng).unwrap())
        });
        // The client gets exactly t partials, verifies every proof and combines them.
        let partials: Vec<_> = shares[..usize::from(t)]
            .iter()
            .map(|s| partial_evaluate(s, &x.blinded, &mut rng).unwrap())
            .collect();
        group.bench_function(BenchmarkId::new("combine", &label), |b| {
            b.iter(|| combine(&x.blinded, black_box(&partials), &verification, threshold).unwrap())
        });
        let combined = combine(&x.blinded, &partials, &verification, threshold).unwrap();
        group.bench_function(BenchmarkId::new("finalize", &label), |b| {
            b.iter(|| finalize_batch(&refs, &x.blinds, black_box(&combined)).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, server_evaluate, client_finalize, threshold);
criterion_main!(benches);
