#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
//! The secure ranking (bit shares → masked distance shares → opened distances → rank)
//! returns exactly `SearchableSISIndex::rank_candidates` on 10,000 random collections and
//! queries, for several thresholds and search parameters.

use std::collections::BTreeMap;

use dealer_free::mpc::masks::{MaskPool, deal_zero_sharings, masked_distance_shares};
use dealer_free::mpc::rank::rank;
use dealer_free::mpc::{HashBitShares, share_hash_bits};
use phr_sis::fp61::{Fp61, lagrange_at_zero};
use phr_sis::{ImageHash, ImageId, NodeId, SearchParams, SearchableSISIndex};
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

        // The nodes' stored bit shares, per image.
        let mut stored: BTreeMap<ImageId, Vec<HashBitShares>> = BTreeMap::new();
        for (id, h) in &entries {
            let s = share_hash_bits(*h, t, &servers, &mut rng).unwrap();
            stored.insert(*id, s.into_iter().map(|(_, s)| s).collect());
        }
        // Candidates as a token index would return them (same rule as the baseline).
        let candidates = index.candidates(query, params.min_band_votes);
        let query_shares: Vec<HashBitShares> = share_hash_bits(query, t, &servers, &mut rng)
            .unwrap()
            .into_iter()
            .map(|(_, s)| s)
            .collect();
        // Masks dealt by every server for this query's candidates.
        let degree = usize::from(2 * t - 2);
        let deals: Vec<BTreeMap<NodeId, Vec<Fp61>>> = servers
            .iter()
            .map(|_| deal_zero_sharings(&servers, degree, candidates.len(), &mut rng))
            .collect();
        let answers: Vec<Vec<Fp61>> = servers
            .iter()
            .enumerate()
            .map(|(pos, j)| {
                let mine: Vec<&[Fp61]> = deals.iter().map(|d| d[j].as_slice()).collect();
                let mut pool = MaskPool::from_deals(&mine).unwrap();
                let cands: Vec<&HashBitShares> =
                    candidates.iter().map(|(id, _)| &stored[id][pos]).collect();
                masked_distance_shares(&cands, &query_shares[pos], &mut pool).unwrap()
            })
            .collect();
        let lambdas = lagrange_at_zero(&servers).unwrap();
        let distances: Vec<u32> = (0..candidates.len())
            .map(|c| {
                let v: Fp61 = lambdas.iter().zip(&answers).map(|(l, a)| *l * a[c]).sum();
                u32::try_from(v.value()).unwrap()
            })
            .collect();
        let got = rank(&candidates, &distances, &params).unwrap();
        assert_eq!(got, expected, "case {case}");
    }
}

#[test]
fn rank_rejects_inconsistent_input() {
    assert!(rank(&[(ImageId(1), 3)], &[], &SearchParams::default()).is_err());
    assert!(rank(&[(ImageId(1), 3)], &[65], &SearchParams::default()).is_err());
}

#[test]
fn the_local_driver_ranks_like_the_baseline() {
    use dealer_free::mpc::local::LocalCollection;
    use phr_sis::Threshold;
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
        .deal_masks(&servers, candidates.len(), &mut rng)
        .unwrap();
    let (ranked, opened) = collection
        .query(query, &candidates, &servers, &mut pools, &params, &mut rng)
        .unwrap();
    assert!(opened.wrong.is_empty());
    assert_eq!(ranked, index.rank_candidates(query, &params));
    assert!(!ranked.is_empty());
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
