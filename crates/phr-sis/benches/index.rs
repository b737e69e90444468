//! Benchmarks of the band index: `rank_candidates` (default parameters) over 1,000,000 uniformly
//! random and 1,000,000 clustered (near-duplicate) hashes, and the exhaustive `scan`.
//!
//! Before Criterion's means it prints, per collection, the build time, heap bytes per entry and
//! the p50/p99 latency of 2,000 single queries (`synthetic::measure_query_latency`). Under
//! `cargo bench` the collections have 1,000,000 entries; when the binary runs without
//! `--bench` (as `cargo test --benches` does) they have 10,000, to keep the test run short.
//! `INDEX_BENCH_ENTRIES=n` overrides both. Run it on one core, e.g.
//! `taskset -c 0 cargo bench --bench index`.

use std::hint::black_box;
use std::time::Instant;

use criterion::Criterion;
use phr_sis::index::IndexError;
use phr_sis::index::synthetic::{
    clustered_entries, measure_query_latency, measure_scan_latency, queries_for, random_entries,
};
use phr_sis::{ImageHash, SearchParams, SearchableSISIndex};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Queries timed one by one for the percentiles.
const LATENCY_QUERIES: usize = 2_000;

struct Fixture {
    name: String,
    index: SearchableSISIndex,
    queries: Vec<ImageHash>,
}

fn entries_to_use() -> usize {
    if let Some(n) = std::env::var("INDEX_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return n;
    }
    if std::env::args().any(|a| a == "--bench") {
        1_000_000
    } else {
        10_000
    }
}

fn label(n: usize) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

fn fixtures(n: usize) -> Result<Vec<Fixture>, IndexError> {
    let mut rng = ChaCha8Rng::seed_from_u64(0x1dea_5eed);
    let collections = [
        ("random", random_entries(n, &mut rng)),
        ("clustered", clustered_entries(n, &mut rng)),
    ];
    collections
        .into_iter()
        .map(|(kind, entries)| {
            let start = Instant::now();
            let mut index = SearchableSISIndex::new();
            index.insert_many(entries.iter().copied())?;
            let built = start.elapsed();
            let queries = queries_for(&entries, LATENCY_QUERIES, &mut rng);
            let name = format!("{}_{kind}", label(n));
            let params = SearchParams::default();
            let rank = measure_query_latency(&index, &queries, &params);
            let scan = measure_scan_latency(&index, &queries, params.topk, params.max_hamming);
            println!(
                "index {name}: built in {:.0} ms, {:.1} heap bytes/entry; \
                 rank_candidates p50 {:.3} ms p99 {:.3} ms; scan p50 {:.3} ms p99 {:.3} ms \
                 ({LATENCY_QUERIES} queries)",
                built.as_secs_f64() * 1e3,
                index.memory_bytes() as f64 / n.max(1) as f64,
                rank.p50_ms,
                rank.p99_ms,
                scan.p50_ms,
                scan.p99_ms,
            );
            Ok(Fixture {
                name,
                index,
                queries,
            })
        })
        .collect()
}

fn bench_rank_candidates(c: &mut Criterion, fixtures: &[Fixture]) {
    let params = SearchParams::default();
    let mut group = c.benchmark_group("rank_candidates");
    for f in fixtures {
        let mut next = 0;
        group.bench_function(&f.name, |b| {
            b.iter(|| {
                let q = f.queries[next % f.queries.len()];
                next += 1;
                black_box(f.index.rank_candidates(black_box(q), &params))
            })
        });
    }
    group.finish();
}

fn bench_scan(c: &mut Criterion, fixtures: &[Fixture]) {
    let mut group = c.benchmark_group("scan");
    for f in fixtures {
        let mut next = 0;
        group.bench_function(&f.name, |b| {
            b.iter(|| {
                let q = f.queries[next % f.queries.len()];
                next += 1;
                black_box(f.index.scan(black_box(q), 10, 64))
            })
        });
    }
    group.finish();
}

fn main() -> Result<(), IndexError> {
    let fixtures = fixtures(entries_to_use())?;
    let mut criterion = Criterion::default().configure_from_args();
    bench_rank_candidates(&mut criterion, &fixtures);
    bench_scan(&mut criterion, &fixtures);
    criterion.final_summary();
    Ok(())
}
