//! The secure ranking, in process: a node's masked distance shares (candidates per second on
//! one core) and a whole query (share the query, every server answers, open, rank) over 1,000,
//! 10,000 and 100,000 candidates for (t, n) = (2,3), (3,5), (5,9) (the whole query with its
//! bit and degree check of the query shares), beside the plaintext
//! baseline `SearchableSISIndex::rank_candidates` over the same images, and the offline phase
//! (every server's checked dealing of the masks for that many candidates). Each server sends
//! one field element (8 bytes) per candidate.
//!
//! `cargo bench -p dealer-free --bench mpc -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::expect_used)] // bench code: a failed expect is a failed benchmark

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use dealer_free::mpc::local::LocalCollection;
use phr_sis::{ImageHash, ImageId, NodeId, SearchParams, SearchableSISIndex, Threshold};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

fn sizes() -> &'static [usize] {
    if std::env::args().any(|a| a == "--bench") {
        &[1_000, 10_000, 100_000]
    } else {
        &[1_000]
    }
}

fn bench_mpc(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let params = SearchParams {
        topk: 10,
        min_band_votes: 0,
        max_hamming: 64,
    };
    for &(t, n) in &[(2u8, 3u8), (3, 5), (5, 9)] {
        let th = Threshold::new(t, n).expect("valid");
        let servers: Vec<NodeId> = NodeId::first(n).collect();
        let mut group = c.benchmark_group(format!("secure-ranking/t={t},n={n}"));
        group.sample_size(10);
        for &count in sizes() {
            let images: Vec<(ImageId, ImageHash)> = (0..count as u64)
                .map(|i| (ImageId(i), ImageHash(rng.random())))
                .collect();
            let collection = LocalCollection::ingest(th, &images, &mut rng).expect("ingest");
            let candidates: Vec<(usize, u32)> = (0..count).map(|i| (i, 0)).collect();
            let indices: Vec<usize> = (0..count).collect();
            let query = ImageHash(rng.random());
            let query_shares =
                dealer_free::mpc::share_hash_bits(query, t, &servers, &mut rng).expect("share");
            group.throughput(Throughput::Elements(count as u64));
            group.bench_function(BenchmarkId::new("node_answer", count), |b| {
                b.iter_batched(
                    || {
                        collection
                            .deal_masks(&servers, count, &mut rng)
                            .expect("masks")
                    },
                    |mut pools| {
                        let pool = pools.get_mut(&servers[0]).expect("pool");
                        black_box(
                            collection
                                .answer(servers[0], &indices, &query_shares[0].1, pool)
                                .expect("answer"),
                        )
                    },
                    criterion::BatchSize::LargeInput,
                );
            });
            let mut query_rng = ChaCha20Rng::seed_from_u64(2);
            let mut mask_rng = ChaCha20Rng::seed_from_u64(3);
            group.bench_function(BenchmarkId::new("whole_query", count), |b| {
                b.iter_batched(
                    || {
                        collection
                            .deal_masks(
                                &servers,
                                count + dealer_free::mpc::query::CHECK_MASKS,
                                &mut mask_rng,
                            )
                            .expect("masks")
                    },
                    |mut pools| {
                        black_box(
                            collection
                                .query(
                                    query,
                                    &candidates,
                                    &servers,
                                    &mut pools,
                                    &params,
                                    &mut query_rng,
                                )
                                .expect("query"),
                        )
                    },
                    criterion::BatchSize::LargeInput,
                );
            });
            group.bench_function(BenchmarkId::new("masks_offline", count), |b| {
                b.iter(|| {
                    black_box(
                        collection
                            .deal_masks(&servers, count, &mut mask_rng)
                            .expect("masks"),
                    )
                });
            });
            if t == 3 {
                let mut index = SearchableSISIndex::new();
                index.insert_many(images.iter().copied()).expect("index");
                group.bench_function(BenchmarkId::new("baseline_rank_candidates", count), |b| {
                    b.iter(|| black_box(index.rank_candidates(query, &params)));
                });
            }
        }
        group.finish();
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_mpc(&mut c);
    c.final_summary();
}
