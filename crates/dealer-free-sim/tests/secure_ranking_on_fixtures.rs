//! The secure ranking over the bundled sample images, end to end in process (DKG, threshold
//! VOPRF tokens, durable stores with bit shares, checked masks, distance shares, opening):
//! every fixture image as the query gives exactly the baseline's ranking; servers that cheat
//! are corrected and named; bad parameters are typed errors.
#![allow(clippy::unwrap_used)] // test code

use std::collections::BTreeMap;
use std::path::Path;

use dealer_free::mpc::MpcError;
use dealer_free::mpc::messages::DistanceResponse;
use dealer_free_sim::ranking::{COMPARISON_SCHEMA, ComparisonQuery};
use dealer_free_sim::{
    IngestImage, LocalDeployment, ServerFault, SimError, compare_secure_vs_baseline,
    rank_candidates_secure,
};
use phr_sis::share::{Scheme, SplitOptions};
use phr_sis::testing::reference_hashes;
use phr_sis::{ImageHash, ImageId, NodeId, SearchParams, SearchableSISIndex, Threshold};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

struct Setup {
    deployment: LocalDeployment,
    baseline: SearchableSISIndex,
    names: BTreeMap<ImageId, String>,
    hashes: Vec<(String, ImageHash)>,
}

/// The fixtures ingested into an (t, n) deployment. Image bytes are small stand-ins (the
/// file name): the ranking depends on the hashes only, and the stores hold real shares.
fn setup(t: u8, n: u8, seed: u64) -> Setup {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let th = Threshold::new(t, n).unwrap();
    let mut deployment = LocalDeployment::create(th, None, &mut rng).unwrap();
    let hashes: Vec<(String, ImageHash)> = reference_hashes("images")
        .into_iter()
        .map(|r| {
            let name = r.path.file_name().unwrap().to_string_lossy().into_owned();
            (name, r.phash.parse().unwrap())
        })
        .collect();
    assert!(hashes.len() >= 20);
    let images: Vec<IngestImage<'_>> = hashes
        .iter()
        .map(|(name, hash)| IngestImage {
            bytes: name.as_bytes(),
            hash: *hash,
        })
        .collect();
    let options = SplitOptions {
        scheme: Scheme::Shamir,
        ..SplitOptions::default()
    };
    let (ids, _) = deployment.ingest(&images, &options, &mut rng).unwrap();
    let mut baseline = SearchableSISIndex::new();
    baseline
        .insert_many(ids.iter().zip(&hashes).map(|(id, (_, h))| (*id, *h)))
        .unwrap();
    let names = ids
        .iter()
        .zip(&hashes)
        .map(|(id, (name, _))| (*id, name.clone()))
        .collect();
    Setup {
        deployment,
        baseline,
        names,
        hashes,
    }
}

fn nodes(ids: &[u8]) -> Vec<NodeId> {
    ids.iter().map(|i| NodeId::new(*i).unwrap()).collect()
}

#[test]
fn every_fixture_query_ranks_as_the_baseline() {
    let s = setup(3, 5, 1);
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let servers = nodes(&[1, 2, 3, 4, 5]);
    for params in [
        SearchParams::default(),
        SearchParams {
            topk: 3,
            min_band_votes: 0,
            max_hamming: 30,
        },
        SearchParams {
            topk: 50,
            min_band_votes: 2,
            max_hamming: 64,
        },
    ] {
        for (name, hash) in &s.hashes {
            let c = compare_secure_vs_baseline(
                &s.deployment,
                &s.baseline,
                &s.names,
                ComparisonQuery {
                    path: Path::new(name),
                    hash: *hash,
                },
                &servers,
                &params,
                &mut rng,
            )
            .unwrap();
            assert!(c.agree, "{name} {params:?}");
            assert_eq!(c.baseline.ranking, c.secure.ranking);
            assert_eq!(c.baseline.candidates, c.secure.candidates);
            assert!(c.secure.wrong_shares_from.is_empty());
            // The query image itself is stored: it ranks first at distance 0.
            if params.min_band_votes <= 8 {
                let first = &c.secure.ranking[0];
                assert_eq!(first.distance, 0);
            }
            // One field element per candidate and server, plus the message header.
            let count = c.secure.candidates;
            assert_eq!(
                c.secure.bytes.distance_responses,
                servers.len() * DistanceResponse::encoded_len(count)
            );
        }
    }
}

#[test]
fn a_subset_of_servers_and_other_thresholds_agree_too() {
    for (t, n, servers) in [
        (2u8, 3u8, vec![1u8, 2, 3]),
        (2, 5, vec![2, 4, 5]),
        (3, 7, vec![1, 3, 4, 6, 7]),
    ] {
        let s = setup(t, n, u64::from(t) * 10 + u64::from(n));
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        for (_, hash) in s.hashes.iter().step_by(5) {
            let r = rank_candidates_secure(
                &s.deployment,
                *hash,
                &nodes(&servers),
                &SearchParams::default(),
                &BTreeMap::new(),
                &mut rng,
            )
            .unwrap();
            assert_eq!(
                r.result.hits,
                s.baseline.rank_candidates(*hash, &SearchParams::default())
            );
        }
    }
}

#[test]
fn a_server_returning_wrong_shares_is_corrected_and_named() {
    let s = setup(2, 5, 4);
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let servers = nodes(&[1, 2, 3, 4, 5]);
    let faults = BTreeMap::from([(NodeId::new(4).unwrap(), ServerFault::WrongDistanceShares)]);
    let params = SearchParams {
        min_band_votes: 0,
        ..SearchParams::default()
    };
    for (_, hash) in s.hashes.iter().take(6) {
        let r = rank_candidates_secure(&s.deployment, *hash, &servers, &params, &faults, &mut rng)
            .unwrap();
        assert_eq!(r.result.hits, s.baseline.rank_candidates(*hash, &params));
        assert_eq!(
            r.result.wrong_shares_from.into_iter().collect::<Vec<_>>(),
            nodes(&[4])
        );
    }
}

#[test]
fn a_server_with_a_different_candidate_list_is_named_and_left_out() {
    // Six servers: the five that agree (2t − 1) rank; the one that differs is named.
    let s = setup(3, 6, 6);
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let faults = BTreeMap::from([(NodeId::new(2).unwrap(), ServerFault::DropsCandidate)]);
    let params = SearchParams {
        min_band_votes: 0,
        ..SearchParams::default()
    };
    let hash = s.hashes[0].1;
    let r = rank_candidates_secure(
        &s.deployment,
        hash,
        &nodes(&[1, 2, 3, 4, 5, 6]),
        &params,
        &faults,
        &mut rng,
    )
    .unwrap();
    assert_eq!(r.result.hits, s.baseline.rank_candidates(hash, &params));
    assert_eq!(r.result.servers, nodes(&[1, 3, 4, 5, 6]));
    assert_eq!(
        r.result.disagreeing.into_iter().collect::<Vec<_>>(),
        nodes(&[2])
    );
}

#[test]
fn bad_servers_are_typed_errors() {
    let s = setup(3, 5, 8);
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let hash = s.hashes[0].1;
    let params = SearchParams::default();
    let none = BTreeMap::new();
    let e = rank_candidates_secure(
        &s.deployment,
        hash,
        &nodes(&[1, 2, 4, 5]),
        &params,
        &none,
        &mut rng,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            SimError::Mpc(MpcError::TooFewNodes {
                needed: 5,
                got: 4,
                ..
            })
        ),
        "{e}"
    );
    assert!(e.to_string().contains("2t − 1 = 5"), "{e}");
    let s2 = setup(2, 3, 10);
    let e = rank_candidates_secure(
        &s2.deployment,
        hash,
        &nodes(&[1, 2, 9]),
        &params,
        &none,
        &mut rng,
    )
    .unwrap_err();
    assert!(matches!(e, SimError::Params(_)), "{e}");
    assert!(e.to_string().contains("server 9 does not exist"), "{e}");
}

#[test]
fn the_comparison_json_has_the_documented_schema() {
    let s = setup(2, 3, 11);
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let (name, hash) = &s.hashes[3];
    let c = compare_secure_vs_baseline(
        &s.deployment,
        &s.baseline,
        &s.names,
        ComparisonQuery {
            path: Path::new(name),
            hash: *hash,
        },
        &nodes(&[1, 2, 3]),
        &SearchParams::default(),
        &mut rng,
    )
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&c.to_json().unwrap()).unwrap();
    assert_eq!(json["schema"], COMPARISON_SCHEMA);
    assert_eq!(json["schema_version"], 2);
    assert!(
        json["secure"]["integrity"]
            .as_str()
            .is_some_and(|i| i.starts_with("unchecked"))
    );
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "schema",
            "schema_version",
            "query",
            "nodes",
            "threshold",
            "servers",
            "params",
            "images",
            "baseline",
            "secure",
            "agree",
            "timing_ms"
        ]
    );
    assert_eq!(json["query"]["phash"], hash.to_string());
    assert_eq!(json["servers"], serde_json::json!([1, 2, 3]));
    assert_eq!(json["secure"]["ranking"][0]["path"], name.as_str());
    for side in ["baseline", "secure"] {
        for hit in json[side]["ranking"].as_array().unwrap() {
            assert_eq!(hit["id"].as_str().unwrap().len(), 16);
            assert!(hit["distance"].as_u64().unwrap() <= 64);
        }
    }
    for key in [
        "tokens_ms",
        "candidate_lookup_ms",
        "masks_offline_ms",
        "query_sharing_ms",
        "node_distance_ms",
        "open_and_rank_ms",
        "online_total_ms",
    ] {
        assert!(
            json["timing_ms"]["secure"][key].as_f64().unwrap() >= 0.0,
            "{key}"
        );
    }
    assert_eq!(json["images"], s.hashes.len());
}
