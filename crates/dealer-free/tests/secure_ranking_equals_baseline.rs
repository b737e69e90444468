#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
//! The secure ranking (bit shares → masked distance shares → opened distances → rank)
//! returns exactly `SearchableSISIndex::rank_candidates` on 10,000 random collections and
//! queries, for several thresholds and search parameters.

use std::collections::BTreeMap;

use dealer_free::mpc::local::LocalCollection;
use dealer_free::mpc::rank::rank;
use phr_sis::{ImageHash, ImageId, NodeId, SearchParams, SearchableSISIndex, Threshold};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

#[test]
fn secure_ranking_equals_the_baseline() {
    let mut rng = ChaCha20Rng::seed_from_u64(2026);
    for case in 0..10_000u32 {
        let t = [2u8, 3][(case % 2) as usize];
        let servers: Vec<NodeId> = NodeId::first(2 * t - 1).collect();
        let query = ImageHash(rng.random());
        // A few near duplicates of the query among random hashes.
        let entries: Vec<(ImageId, ImageHash)> = (0..rng.random_range(0..8u64))
            .map(|i| {
                let h = if rng.random_bool(0.5) {
                    query.0 ^ (rng.random::<u64>() & rng.random::<u64>() & rng.random::<u64>())
                } else {
                    rng.random()
                };
                (ImageId(i * 3 + u64::from(case)), ImageHash(h))
            })
            .collect();
        let params = SearchParams {
            topk: rng.random_range(0..6),
            min_band_votes: rng.random_range(0..4),
            max_hamming: rng.random_range(0..40),
        };
        let mut index = SearchableSISIndex::new();
        index.insert_many(entries.iter().copied()).unwrap();
        let expected = index.rank_candidates(query, &params);

        // The nodes' bit shares, masks dealt ahead of time, and the whole secure query over
        // the candidates a token index would return (the same rule as the baseline's).
        let collection =
            LocalCollection::ingest(Threshold::new(t, 2 * t - 1).unwrap(), &entries, &mut rng)
                .unwrap();
        let position: BTreeMap<ImageId, usize> = entries
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (*id, i))
            .collect();
        let candidates: Vec<(usize, u32)> = index
            .candidates(query, params.min_band_votes)
            .into_iter()
            .map(|(id, votes)| (position[&id], votes))
            .collect();
        let mut pools = collection
            .deal_masks(
                &servers,
                candidates.len() + dealer_free::mpc::query::CHECK_MASKS,
                &mut rng,
            )
            .unwrap();
        let got = collection
            .query(query, &candidates, &servers, &mut pools, &params, &mut rng)
            .unwrap();
        assert!(got.wrong_shares_from.is_empty());
        assert_eq!(got.hits, expected, "case {case}");
    }
}

#[test]
fn rank_rejects_inconsistent_input() {
    assert!(rank(&[(ImageId(1), 3)], &[], &SearchParams::default()).is_err());
    assert!(rank(&[(ImageId(1), 3)], &[65], &SearchParams::default()).is_err());
}

#[test]
fn the_local_driver_ranks_like_the_baseline() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let th = Threshold::new(3, 5).unwrap();
    let query = ImageHash(rng.random());
    let images: Vec<(ImageId, ImageHash)> = (0..300u64)
        .map(|i| {
            let h = if i % 4 == 0 {
                query.0 ^ (rng.random::<u64>() & rng.random::<u64>())
            } else {
                rng.random()
            };
            (ImageId(1000 - i), ImageHash(h))
        })
        .collect();
    let collection = LocalCollection::ingest(th, &images, &mut rng).unwrap();
    let mut index = SearchableSISIndex::new();
    index.insert_many(images.iter().copied()).unwrap();
    let params = SearchParams {
        topk: 10,
        min_band_votes: 1,
        max_hamming: 30,
    };
    let by_id: BTreeMap<ImageId, usize> = images
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (*id, i))
        .collect();
    let candidates: Vec<(usize, u32)> = index
        .candidates(query, params.min_band_votes)
        .into_iter()
        .map(|(id, v)| (by_id[&id], v))
        .collect();
    let servers: Vec<NodeId> = NodeId::first(5).collect();
    let mut pools = collection
        .deal_masks(
            &servers,
            candidates.len() + dealer_free::mpc::query::CHECK_MASKS,
            &mut rng,
        )
        .unwrap();
    let found = collection
        .query(query, &candidates, &servers, &mut pools, &params, &mut rng)
        .unwrap();
    assert!(found.wrong_shares_from.is_empty());
    assert_eq!(found.hits, index.rank_candidates(query, &params));
    assert!(!found.hits.is_empty());
    // Four servers are too few for t = 3.
    let err = collection
        .query(
            query,
            &candidates,
            &servers[..4],
            &mut pools,
            &params,
            &mut rng,
        )
        .unwrap_err();
    assert!(err.to_string().contains("2t − 1 = 5"), "{err}");
}
