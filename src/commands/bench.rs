//! `dealer-free-sis bench`: the user's `openssl speed` (`docs/design.md#bench-records`).
//!
//! Each measurement is one record: `primitive`, `implementation` (`"dealer-free-sis"`), `op`,
//! and the fields `docs/design.md#bench-records` lists for that primitive. With `--json` the
//! records are printed one JSON object per line and nothing else goes to stdout; otherwise as a
//! table. Figures are single-threaded unless `--threads` says otherwise.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use phr_sis::phash::decode::{DecodedImage, decode};
use phr_sis::phash::{phash, pillow_convert};
use rayon::prelude::*;
use serde_json::{Map, Value, json};

mod cluster;
mod hostile;

use super::{bundled_images, expand_paths};
use crate::cli::{BenchArgs, Primitive};
use crate::{Outcome, UsageError};

/// One measurement, in the order its fields are printed.
struct Record(Map<String, Value>);

impl Record {
    fn new(primitive: &str, op: &str, threads: u16) -> Record {
        let mut m = Map::new();
        m.insert("primitive".into(), json!(primitive));
        m.insert("implementation".into(), json!("dealer-free-sis"));
        m.insert("op".into(), json!(op));
        m.insert("threads".into(), json!(threads));
        Record(m)
    }

    fn with(mut self, key: &str, value: Value) -> Record {
        self.0.insert(key.to_owned(), value);
        self
    }
}

/// The nearest-rank percentile `p` (0 to 100) of ascending `sorted`; 0 when empty.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    sorted
        .get(rank.min(sorted.len() - 1))
        .copied()
        .unwrap_or(0.0)
}

pub(crate) fn run(args: &BenchArgs) -> anyhow::Result<Outcome> {
    let mut primitives = args.primitives.clone();
    if primitives.is_empty() {
        primitives = vec![
            Primitive::Phash,
            Primitive::Index,
            Primitive::ShamirGf256,
            Primitive::VoprfRistretto255,
            Primitive::ThresholdVoprf,
            Primitive::Dkg,
            Primitive::SecureRanking,
        ];
    }
    primitives.sort();
    primitives.dedup();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(usize::from(args.threads))
        .build()
        .context("starting worker threads")?;
    if !args.json {
        println!(
            "{:<18} {:<17} {:<44} result",
            "primitive", "op", "parameters"
        );
    }
    for primitive in primitives {
        let records = match primitive {
            Primitive::Phash => pool.install(|| bench_phash(args))?,
            Primitive::Index => pool.install(|| bench_index(args))?,
            Primitive::ShamirGf256 => bench_shamir(args)?,
            Primitive::VoprfRistretto255 => bench_voprf(args)?,
            Primitive::ThresholdVoprf => bench_threshold_voprf(args)?,
            Primitive::Dkg => bench_dkg(args)?,
            Primitive::SecureRanking => bench_secure_ranking(args)?,
            Primitive::Cluster => cluster::bench_cluster(args)?,
        };
        for record in records {
            print_record(&record, args.json);
        }
    }
    Ok(Outcome::Success)
}

fn print_record(record: &Record, json: bool) {
    if json {
        println!("{}", Value::Object(record.0.clone()));
        return;
    }
    let get = |k: &str| record.0.get(k).map(ToString::to_string).unwrap_or_default();
    let skip = ["primitive", "implementation", "op"];
    let result_keys = [
        "per_second",
        "p50_ms",
        "p99_ms",
        "bytes_per_entry",
        "mb_per_s",
        "cpu_s",
        "bytes",
        "errors",
        "lost",
    ];
    let params: Vec<String> = record
        .0
        .iter()
        .filter(|(k, _)| !skip.contains(&k.as_str()) && !result_keys.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let results: Vec<String> = record
        .0
        .iter()
        .filter(|(k, _)| result_keys.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={}", format_number(v)))
        .collect();
    println!(
        "{:<18} {:<17} {:<44} {}",
        get("primitive").trim_matches('"'),
        get("op").trim_matches('"'),
        params.join(" "),
        results.join(" ")
    );
}

fn format_number(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if f >= 100.0 => format!("{f:.0}"),
        Some(f) => format!("{f:.3}"),
        None => v.to_string(),
    }
}

/// Runs `pass` (which processes `per_pass` items) until `min_time` has passed, at least twice
/// (the first pass warms caches and is not counted), and returns items per second.
fn throughput(min_time: Duration, per_pass: usize, mut pass: impl FnMut()) -> f64 {
    pass();
    let start = Instant::now();
    let mut passes = 0u64;
    while passes == 0 || start.elapsed() < min_time {
        pass();
        passes += 1;
    }
    (passes as f64 * per_pass as f64) / start.elapsed().as_secs_f64()
}

fn bench_phash(args: &BenchArgs) -> anyhow::Result<Vec<Record>> {
    let dir = match &args.images {
        Some(dir) if dir.is_dir() => dir.clone(),
        Some(dir) => {
            return Err(UsageError(format!("--images {}: not a folder", dir.display())).into());
        }
        None => bundled_images()?,
    };
    let files: Vec<PathBuf> = expand_paths(std::slice::from_ref(&dir))
        .into_iter()
        .filter_map(Result::ok)
        .collect();
    // Only images that decode take part; a broken file would measure error handling.
    let decoded: Vec<(PathBuf, DecodedImage)> = files
        .iter()
        .filter_map(|p| {
            let bytes = std::fs::read(p).ok()?;
            decode(&bytes).ok().map(|d| (p.clone(), d))
        })
        .collect();
    if decoded.is_empty() {
        return Err(UsageError(format!("no decodable images in {}", dir.display())).into());
    }
    let min_time = Duration::from_millis(if args.quick { 300 } else { 2000 });
    let n = decoded.len();
    let parallel = args.threads > 1;

    let hash_decoded = throughput(min_time, n, || {
        let work = |(_, d): &(PathBuf, DecodedImage)| phash(&pillow_convert::to_luma(d));
        let sum: u64 = if parallel {
            decoded
                .par_iter()
                .map(|x| work(x).0)
                .reduce(|| 0, u64::wrapping_add)
        } else {
            decoded.iter().map(|x| work(x).0).fold(0, u64::wrapping_add)
        };
        std::hint::black_box(sum);
    });
    let open_decode_hash = throughput(min_time, n, || {
        let work = |(p, _): &(PathBuf, DecodedImage)| {
            phr_sis::phash::hash_file(p, phr_sis::HashAlgorithm::Phash).map_or(0, |h| h.0)
        };
        let sum: u64 = if parallel {
            decoded.par_iter().map(work).reduce(|| 0, u64::wrapping_add)
        } else {
            decoded.iter().map(work).fold(0, u64::wrapping_add)
        };
        std::hint::black_box(sum);
    });
    let folder = dir.display().to_string();
    Ok(vec![
        Record::new("phash", "hash_decoded", args.threads)
            .with("images", json!(n))
            .with("folder", json!(folder))
            .with("per_second", json!(round3(hash_decoded))),
        Record::new("phash", "open_decode_hash", args.threads)
            .with("images", json!(n))
            .with("folder", json!(folder))
            .with("per_second", json!(round3(open_decode_hash))),
    ])
}

fn bench_index(args: &BenchArgs) -> anyhow::Result<Vec<Record>> {
    use phr_sis::index::synthetic;
    use phr_sis::{SearchParams, SearchableSISIndex};
    use rand::SeedableRng;

    let sizes = if args.entries.is_empty() {
        vec![if args.quick { 100_000 } else { 1_000_000 }]
    } else {
        args.entries.clone()
    };
    if sizes.contains(&0) {
        return Err(UsageError("--entries must be at least 1".to_owned()).into());
    }
    let query_count = if args.quick { 300 } else { 2000 };
    let params = SearchParams::default();
    let mut records = Vec::new();
    for &entries in &sizes {
        for distribution in ["random", "clustered"] {
            let mut rng = rand::rngs::StdRng::seed_from_u64(0x1de8);
            let data = match distribution {
                "random" => synthetic::random_entries(entries, &mut rng),
                _ => synthetic::clustered_entries(entries, &mut rng),
            };
            let mut index = SearchableSISIndex::new();
            index.insert_many(data.iter().copied())?;
            let queries = synthetic::queries_for(&data, query_count, &mut rng);
            let bytes_per_entry = index.memory_bytes() as f64 / entries as f64;
            let ranked = synthetic::measure_query_latency(&index, &queries, &params);
            let scanned =
                synthetic::measure_scan_latency(&index, &queries, params.topk, params.max_hamming);
            for (op, stats) in [("rank_candidates", ranked), ("scan", scanned)] {
                records.push(
                    Record::new("index", op, 1)
                        .with("entries", json!(entries))
                        .with("distribution", json!(distribution))
                        .with("queries", json!(queries.len()))
                        .with("topk", json!(params.topk))
                        .with(
                            "min_band_votes",
                            json!(if op == "scan" {
                                0
                            } else {
                                params.min_band_votes
                            }),
                        )
                        .with("p50_ms", json!(round4(stats.p50_ms)))
                        .with("p99_ms", json!(round4(stats.p99_ms)))
                        .with("bytes_per_entry", json!(round3(bytes_per_entry))),
                );
            }
        }
    }
    Ok(records)
}

/// Shamir over GF(2^8): split (including drawing the coefficients) and combine of 1 MiB secrets.
fn bench_shamir(args: &BenchArgs) -> anyhow::Result<Vec<Record>> {
    use phr_sis::Threshold;
    use phr_sis::shamir;
    use rand::{RngCore, SeedableRng};

    let size = 1 << 20;
    let min_time = Duration::from_millis(if args.quick { 300 } else { 2000 });
    let mut secret = vec![0u8; size];
    let mut rng = rand_chacha::ChaCha12Rng::from_os_rng();
    rng.fill_bytes(&mut secret);
    let mut records = Vec::new();
    for (t, n) in [(3u8, 5u8), (5, 10)] {
        let threshold = Threshold::new(t, n)?;
        let split_rate = throughput(min_time, 1, || {
            std::hint::black_box(shamir::split(&secret, threshold, &mut rng));
        });
        let shares = shamir::split(&secret, threshold, &mut rng);
        let combine_rate = throughput(min_time, 1, || {
            std::hint::black_box(shamir::combine(&shares, t).map(|s| s.len()).unwrap_or(0));
        });
        for (op, per_second) in [("split", split_rate), ("combine", combine_rate)] {
            records.push(
                Record::new("shamir-gf256", op, 1)
                    .with("t", json!(t))
                    .with("n", json!(n))
                    .with("size_bytes", json!(size))
                    .with("rng", json!("ChaCha12"))
                    .with("kernel", json!(format!("{:?}", phr_sis::gf256::kernel())))
                    .with("mb_per_s", json!(round3(per_second * size as f64 / 1e6)))
                    .with("per_second", json!(round3(per_second))),
            );
        }
    }
    Ok(records)
}

/// The whole DKG (every node, all rounds, in one process on one thread) for each node count,
/// with t = floor(n/2) + 1 and no faulty node. `cpu_s` is the mean over repeated runs (at
/// least one, until the time budget is spent), `bytes` what one run puts on the wire.
fn bench_dkg(args: &BenchArgs) -> anyhow::Result<Vec<Record>> {
    use std::collections::BTreeMap;

    let sizes = if args.dkg_nodes.is_empty() {
        if args.quick {
            vec![5, 16]
        } else {
            vec![5, 16, 32, 64]
        }
    } else {
        args.dkg_nodes.clone()
    };
    let min_time = Duration::from_millis(if args.quick { 300 } else { 2000 });
    let mut records = Vec::new();
    for &n in &sizes {
        if !(2..=255).contains(&n) {
            return Err(UsageError(format!("--n {n}: the DKG needs 2 to 255 nodes")).into());
        }
        let threshold = super::dkg::parse_threshold(n / 2 + 1, n)?;
        let start = Instant::now();
        let mut runs = 0u32;
        let mut cpu = Duration::ZERO;
        let mut bytes = 0;
        while runs == 0 || start.elapsed() < min_time {
            let run = super::dkg::run_local(threshold, &BTreeMap::new(), u64::from(runs))?;
            if run.outcomes.values().any(Result::is_err) {
                anyhow::bail!("an honest DKG run with n = {n} failed");
            }
            cpu += run.cpu();
            bytes = run.bytes();
            runs += 1;
        }
        records.push(
            Record::new("dkg", "run", 1)
                .with("n", json!(n))
                .with("t", json!(threshold.t()))
                .with("runs", json!(runs))
                .with(
                    "cpu_s",
                    json!((cpu.as_secs_f64() / f64::from(runs) * 1e6).round() / 1e6),
                )
                .with("bytes", json!(bytes)),
        );
    }
    Ok(records)
}

/// A client's batch: random 32-byte inputs, their blinds and blinded elements (VOPRF mode).
struct BlindedBatch {
    inputs: Vec<Vec<u8>>,
    blinds: Vec<dealer_free::oprf::Blind>,
    blinded: Vec<dealer_free::oprf::BlindedElement>,
}

fn blinded_batch(batch: usize, rng: &mut rand_chacha::ChaCha12Rng) -> anyhow::Result<BlindedBatch> {
    use dealer_free::oprf::{Mode, blind};
    use rand::RngCore;

    let mut b = BlindedBatch {
        inputs: Vec::with_capacity(batch),
        blinds: Vec::with_capacity(batch),
        blinded: Vec::with_capacity(batch),
    };
    for _ in 0..batch {
        let mut input = vec![0u8; 32];
        rng.fill_bytes(&mut input);
        let (factor, element) = blind(Mode::Voprf, &input, rng)?;
        b.inputs.push(input);
        b.blinds.push(factor);
        b.blinded.push(element);
    }
    Ok(b)
}

/// RFC 9497 VOPRF: the server's batched evaluation with one proof, and the client's proof
/// verification plus finalize; `per_second` counts elements.
fn bench_voprf(args: &BenchArgs) -> anyhow::Result<Vec<Record>> {
    use dealer_free::oprf::{
        SecretKey, verifiable_blind_evaluate_batch, verifiable_finalize_batch,
    };
    use rand::SeedableRng;

    let min_time = Duration::from_millis(if args.quick { 300 } else { 2000 });
    let mut rng = rand_chacha::ChaCha12Rng::from_os_rng();
    let sk = SecretKey::random(&mut rng);
    let pk = sk.public_key();
    let mut records = Vec::new();
    for batch in [1usize, 16] {
        let BlindedBatch {
            inputs,
            blinds,
            blinded,
        } = blinded_batch(batch, &mut rng)?;
        let refs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
        let server = throughput(min_time, batch, || {
            std::hint::black_box(verifiable_blind_evaluate_batch(&sk, &blinded, &mut rng).ok());
        });
        let (evaluated, proof) = verifiable_blind_evaluate_batch(&sk, &blinded, &mut rng)?;
        let client = throughput(min_time, batch, || {
            std::hint::black_box(
                verifiable_finalize_batch(&refs, &blinds, &blinded, &evaluated, &pk, &proof).ok(),
            );
        });
        for (op, per_second) in [("server_evaluate", server), ("client_finalize", client)] {
            records.push(
                Record::new("voprf-ristretto255", op, 1)
                    .with("batch", json!(batch))
                    .with("per_second", json!(round3(per_second))),
            );
        }
    }
    Ok(records)
}

/// Threshold VOPRF, batches of 16: one node's partial evaluation (with its proof), and the
/// client's verification of `t` partials plus their combination; `per_second` counts
/// elements.
fn bench_threshold_voprf(args: &BenchArgs) -> anyhow::Result<Vec<Record>> {
    use dealer_free::oprf::threshold::{
        KeyShare, combine, partial_evaluate, verification_shares_of,
    };
    use dealer_free::vss::FeldmanDealer;
    use phr_sis::Threshold;
    use rand::SeedableRng;

    const BATCH: usize = 16;
    let min_time = Duration::from_millis(if args.quick { 300 } else { 2000 });
    let mut rng = rand_chacha::ChaCha12Rng::from_os_rng();
    let blinded = blinded_batch(BATCH, &mut rng)?.blinded;
    let mut records = Vec::new();
    for (t, n) in [(3u8, 5u8), (11, 21)] {
        let threshold = Threshold::new(t, n)?;
        let dealer = FeldmanDealer::new(threshold, &mut rng);
        let shares = threshold
            .nodes()
            .map(|j| KeyShare::new(j, dealer.share(j)))
            .collect::<Vec<_>>();
        let verification = verification_shares_of(&shares);
        let first = shares.first().context("no key shares")?;
        let partial = throughput(min_time, BATCH, || {
            std::hint::black_box(partial_evaluate(first, &blinded, &mut rng).ok());
        });
        let partials = shares[..usize::from(t)]
            .iter()
            .map(|s| partial_evaluate(s, &blinded, &mut rng))
            .collect::<Result<Vec<_>, _>>()?;
        let combined = throughput(min_time, BATCH, || {
            std::hint::black_box(combine(&blinded, &partials, &verification, threshold).ok());
        });
        for (op, per_second) in [("partial_evaluate", partial), ("combine", combined)] {
            records.push(
                Record::new("threshold-voprf", op, 1)
                    .with("t", json!(t))
                    .with("n", json!(n))
                    .with("batch", json!(BATCH))
                    .with("per_second", json!(round3(per_second))),
            );
        }
    }
    Ok(records)
}

fn round4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

/// The secure ranking for (t, n) = (2,3), (3,5), (5,9) over 10,000 candidates (1,000 with
/// `--quick`): `query_ms` is a whole query (every server lists the candidates, the querier
/// shares and commits its bits, every server checks them and signs its check, the checks are
/// relayed and verified, every server's masked distance shares, opening, ranking; the masks
/// are dealt beforehand, as the nodes do ahead of time), `node_candidates_per_s` one node's answer, `bytes_per_candidate_per_node` the size
/// of that answer's wire encoding per candidate, `baseline_rank_ms` the plaintext
/// `rank_candidates` over the same hashes, `masks_offline_ms` and
/// `masks_offline_bytes_per_candidate` the checked dealing of the query's masks (all servers,
/// all messages).
fn bench_secure_ranking(args: &BenchArgs) -> anyhow::Result<Vec<Record>> {
    use dealer_free::mpc::local::LocalCollection;
    use dealer_free::mpc::messages::DistanceResponse;
    use phr_sis::{ImageHash, ImageId, NodeId, SearchParams, Threshold};
    use rand::{Rng, SeedableRng};

    let count: usize = if args.quick { 1_000 } else { 10_000 };
    let min_time = Duration::from_millis(if args.quick { 300 } else { 2000 });
    let mut rng = rand_chacha::ChaCha12Rng::from_os_rng();
    let params = SearchParams {
        topk: 10,
        min_band_votes: 0,
        max_hamming: 64,
    };
    let mut records = Vec::new();
    for (t, n) in [(2u8, 3u8), (3, 5), (5, 9)] {
        let threshold = Threshold::new(t, n)?;
        let servers: Vec<NodeId> = NodeId::first(n).collect();
        let images: Vec<(ImageId, ImageHash)> = (0..count as u64)
            .map(|i| (ImageId(i), ImageHash(rng.random())))
            .collect();
        let collection = LocalCollection::ingest(threshold, &images, &mut rng)?;
        let candidates: Vec<(usize, u32)> = (0..count).map(|i| (i, 0)).collect();
        let indices: Vec<usize> = (0..count).collect();
        let query = ImageHash(rng.random());
        let first = servers.first().copied().context("no servers")?;
        let query_shares = dealer_free::mpc::share_hash_bits(query, t, &servers, &mut rng)?;
        let (_, first_share) = query_shares.first().context("no query share")?;
        // Time the query apart from the (checked) dealing of its masks, the offline phase.
        let (mut query_time, mut node_time, mut runs) = (Duration::ZERO, Duration::ZERO, 0u32);
        let mut offline_time = Duration::ZERO;
        let mut answer_bytes = 0usize;
        while runs == 0 || query_time + node_time < min_time {
            let start = Instant::now();
            let mut pools = collection.deal_masks(
                &servers,
                2 * count + dealer_free::mpc::query::CHECK_MASKS,
                &mut rng,
            )?;
            offline_time += start.elapsed();
            let start = Instant::now();
            let ranked =
                collection.query(query, &candidates, &servers, &mut pools, &params, &mut rng)?;
            query_time += start.elapsed();
            std::hint::black_box(ranked);
            let pool = pools.get_mut(&first).context("no mask pool")?;
            let start = Instant::now();
            let answer = collection.answer(first, &indices, first_share, pool)?;
            node_time += start.elapsed();
            // What the node sends: its answer's wire encoding.
            answer_bytes = DistanceResponse {
                session: [0; 32],
                server: first,
                shares: answer,
            }
            .to_bytes()?
            .len();
            runs += 1;
        }
        let mut index = phr_sis::SearchableSISIndex::new();
        index.insert_many(images.iter().copied())?;
        let (mut baseline_time, mut baseline_runs) = (Duration::ZERO, 0u32);
        while baseline_runs == 0 || baseline_time < min_time / 4 {
            let start = Instant::now();
            std::hint::black_box(index.rank_candidates(query, &params));
            baseline_time += start.elapsed();
            baseline_runs += 1;
        }
        let baseline_ms = baseline_time.as_secs_f64() * 1e3 / f64::from(baseline_runs);
        let offline_bytes = dealer_free::mpc::masks::offline_bytes(usize::from(n), count);
        let per_run = f64::from(runs);
        records.push(
            Record::new("secure-ranking", "query", 1)
                .with("t", json!(t))
                .with("n", json!(n))
                .with("candidates", json!(count))
                .with(
                    "query_ms",
                    json!(round3(query_time.as_secs_f64() * 1e3 / per_run)),
                )
                .with(
                    "node_candidates_per_s",
                    json!((count as f64 * per_run / node_time.as_secs_f64()).round()),
                )
                .with(
                    "bytes_per_candidate_per_node",
                    json!(round4(answer_bytes as f64 / count as f64)),
                )
                .with("baseline_rank_ms", json!(round4(baseline_ms)))
                .with(
                    "masks_offline_ms",
                    json!(round3(offline_time.as_secs_f64() * 1e3 / per_run / 2.0)),
                )
                .with(
                    "masks_offline_bytes_per_candidate",
                    json!(round4(offline_bytes as f64 / count as f64)),
                ),
        );
    }
    Ok(records)
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}
