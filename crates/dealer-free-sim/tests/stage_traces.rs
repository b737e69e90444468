//! Stage-1 and Stage-2 recorded into a trace: the recorded bytes are the encoded sizes of the
//! real messages, the same seed gives the same trace apart from CPU times, the retrieval
//! returns the stored bytes, and the network model turns the trace into latencies.
#![allow(clippy::unwrap_used)] // test code

use std::collections::BTreeMap;

use dealer_free::mpc::messages::{ChecksRelay, DistanceRequest, DistanceResponse};
use dealer_free::mpc::query::SignedQueryCheck;
use dealer_free::oprf::threshold::PartialEvaluation;
use dealer_free::oprf::tokens::TokenRequest;
use dealer_free_sim::deployment::{SHARE_REQUEST_LEN, STORE_ACK_LEN};
use dealer_free_sim::ranking::rank_candidates_secure_recorded;
use dealer_free_sim::trace::StageRecorder;
use dealer_free_sim::{IngestImage, LocalDeployment, NetworkModel, Party, Stage, Trace};
use phr_sis::share::SplitOptions;
use phr_sis::testing::reference_hashes;
use phr_sis::{ImageHash, NodeId, SearchParams, Threshold};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

struct Run {
    trace: Trace,
    ranked: usize,
    candidates: usize,
    retrieved_ok: bool,
    store_bytes: usize,
}

fn run(seed: u64) -> Run {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let th = Threshold::new(3, 5).unwrap();
    let mut d = LocalDeployment::create(th, None, &mut rng).unwrap();
    let rows: Vec<(String, ImageHash)> = reference_hashes("images")
        .into_iter()
        .map(|r| (r.path.display().to_string(), r.phash.parse().unwrap()))
        .collect();
    let images: Vec<IngestImage<'_>> = rows
        .iter()
        .map(|(name, hash)| IngestImage {
            bytes: name.as_bytes(),
            hash: *hash,
        })
        .collect();
    let mut trace = Trace::new();
    let mut rec = StageRecorder::new(&mut trace, Stage::Stage1);
    let (ids, bytes) = d
        .ingest_recorded(&images, &SplitOptions::default(), &mut rng, &mut rec)
        .unwrap();
    let servers: Vec<NodeId> = NodeId::first(5).collect();
    let params = SearchParams {
        min_band_votes: 0,
        ..SearchParams::default()
    };
    let mut rec = StageRecorder::new(&mut trace, Stage::Stage2);
    let r = rank_candidates_secure_recorded(
        &d,
        rows[2].1,
        &servers,
        &params,
        &BTreeMap::new(),
        &mut rng,
        &mut rec,
    )
    .unwrap();
    let best = r.result.hits[0].id;
    let (image, rejected) = d.retrieve_recorded(best, &servers[..3], &mut rec).unwrap();
    Run {
        trace,
        ranked: r.result.hits.len(),
        candidates: r.result.candidates,
        retrieved_ok: best == ids[2] && image == rows[2].0.as_bytes() && rejected.is_empty(),
        store_bytes: bytes.store,
    }
}

fn round_bytes(trace: &Trace, stage: Stage, round: &str) -> Vec<usize> {
    trace
        .messages
        .iter()
        .filter(|m| m.stage == stage && m.round == round)
        .map(|m| m.bytes)
        .collect()
}

#[test]
fn recorded_bytes_are_the_encoded_sizes_of_the_messages() {
    let r = run(1);
    assert!(r.retrieved_ok);
    assert_eq!(r.ranked, 10);
    let images = reference_hashes("images").len();
    assert_eq!(r.candidates, images);
    let t = &r.trace;
    // Stage-1: one batched token request to each of the first t = 3 nodes (as the cluster
    // client asks), one partial evaluation back.
    let bands = 8;
    let requests = round_bytes(t, Stage::Stage1, "token-request");
    assert_eq!(requests.len(), 3);
    assert!(
        requests
            .iter()
            .all(|b| *b == TokenRequest::encoded_len(bands, images))
    );
    let responses = round_bytes(t, Stage::Stage1, "token-response");
    assert_eq!(responses.len(), 3);
    assert!(
        responses
            .iter()
            .all(|b| *b > PartialEvaluation::encoded_len(0))
    );
    assert_eq!(
        round_bytes(t, Stage::Stage1, "share").iter().sum::<usize>(),
        r.store_bytes
    );
    assert_eq!(
        round_bytes(t, Stage::Stage1, "store"),
        vec![STORE_ACK_LEN; 5 * images]
    );
    // Stage-2: the secure ranking's messages.
    assert_eq!(
        round_bytes(t, Stage::Stage2, "distance-request"),
        vec![DistanceRequest::encoded_len(images, 5); 5]
    );
    assert_eq!(
        round_bytes(t, Stage::Stage2, "query-check"),
        vec![SignedQueryCheck::ENCODED_LEN; 5]
    );
    assert_eq!(
        round_bytes(t, Stage::Stage2, "checks-relay"),
        vec![ChecksRelay::encoded_len(5); 5]
    );
    assert_eq!(
        round_bytes(t, Stage::Stage2, "distance-response"),
        vec![DistanceResponse::encoded_len(images); 5]
    );
    // The mask dealing through the client: the order, each dealer's commitment and four
    // sealed deals (mask-deal); to each server the five commitments and its four deals, its
    // five checks back (mask-check); all 25 checks to each server and its confirmation back
    // (mask-judge); all five confirmations to each server (mask-confirm). The whole dealing's
    // bytes are the relayed messages' sizes.
    assert_eq!(
        round_bytes(t, Stage::Stage2, "mask-deal").len(),
        5 * (1 + 1 + 4)
    );
    assert_eq!(
        round_bytes(t, Stage::Stage2, "mask-check").len(),
        5 * (5 + 4 + 5)
    );
    assert_eq!(
        round_bytes(t, Stage::Stage2, "mask-judge").len(),
        5 * 25 + 5
    );
    assert_eq!(
        round_bytes(t, Stage::Stage2, "mask-confirm"),
        vec![dealer_free::mpc::masks::confirm::SignedPoolConfirmation::ENCODED_LEN; 5 * 5]
    );
    let dealing: usize = ["mask-deal", "mask-check", "mask-judge", "mask-confirm"]
        .iter()
        .flat_map(|r| round_bytes(t, Stage::Stage2, r))
        .sum();
    assert_eq!(
        dealing,
        dealer_free::mpc::masks::offline_bytes(5, images + dealer_free::mpc::query::CHECK_MASKS)
    );
    assert_eq!(
        round_bytes(t, Stage::Stage2, "share-request"),
        vec![SHARE_REQUEST_LEN; 3]
    );
    // Every node and the client spent time in Stage-2.
    let parties: std::collections::BTreeSet<Party> = t
        .cpu
        .iter()
        .filter(|c| c.stage == Stage::Stage2)
        .map(|c| c.party)
        .collect();
    assert_eq!(parties.len(), 6);
    // Rounds are numbered in order.
    let steps: Vec<u32> = t
        .messages
        .iter()
        .filter(|m| m.stage == Stage::Stage2)
        .map(|m| m.step)
        .collect();
    assert!(steps.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn the_same_seed_gives_the_same_trace_apart_from_cpu() {
    let (a, b) = (run(3), run(3));
    assert_eq!(a.trace.messages, b.trace.messages);
    assert_eq!(a.trace.without_cpu_times(), b.trace.without_cpu_times());
}

#[test]
fn stage_latencies_follow_the_network_model() {
    let r = run(5);
    for stage in [Stage::Stage1, Stage::Stage2] {
        let lan = NetworkModel::lan().stage_latency(&r.trace, stage, 9);
        let wan = NetworkModel::wan().stage_latency(&r.trace, stage, 9);
        assert!(lan.total < wan.total, "{stage:?}");
        assert_eq!(lan, NetworkModel::lan().stage_latency(&r.trace, stage, 9));
        // At least one latency per round on the WAN.
        let rounds = wan.per_round.len() as u32;
        assert!(
            wan.total >= NetworkModel::wan().latency * rounds / 2,
            "{stage:?}"
        );
    }
}
