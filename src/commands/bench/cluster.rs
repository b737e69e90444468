//! `bench cluster`: a local cluster of real node processes on loopback (this program's own
//! `node run`), measured as a user would see it.
//!
//! 1. `ingest`: the bundled fixture images, cycled to `--ingest-images`, in batches of 32
//!    (one token request and one store request per node and batch): images per second.
//! 2. `fill`: synthetic images (random 512-byte payloads with random hashes) until
//!    `--stored` images are stored, so that searches run against a collection of that size.
//! 3. `masks`: the offline phase of the secure ranking — one dealing of
//!    [`SEARCH_MASK_POOL`] checked masks among the `2t − 1` servers (deal, check, judge):
//!    its wall time and masks per second.
//! 4. `search`: for each `--clients` count, that many clients (each with its own identity,
//!    connections and mask pool, dealt before the clock starts) search by the
//!    fixture images for `--duration` seconds: p50/p99 latency of a whole secure search
//!    (tokens, candidates, distances, and the dealing of a pool whenever one runs out).
//!    Pools are topped up in the background while the searches run, so that load is
//!    measured too; `dealings` counts them.
//! 5. `soak` (with `--soak SECS`): 16 clients, each its own owner identity, mixing searches,
//!    ingests and gets; every image read back is compared with what was ingested. Errors and
//!    lost images are counted.
//!
//! 6. `hostile` (with `--hostile SECS`, instead of 2 to 5): one client abusing the nodes
//!    beside four honest searching clients ([`super::hostile`]).
//!
//! Records: `primitive` `cluster`, `op` one of the above, with `nodes`, `t` and the
//! measured fields.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use dealer_free_node::client::{ClusterClient, IngestFile, SEARCH_MASK_POOL};
use dealer_free_node::cluster::{ClusterDir, InitOptions};
use phr_sis::{ImageHash, ImageId, SearchParams};
use rand::{Rng, RngCore};
use serde_json::json;

use super::{Record, bundled_images, expand_paths, percentile};
use crate::cli::BenchArgs;

/// Stops the cluster's nodes however the bench ends.
struct Running(ClusterDir);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.down(Duration::from_secs(5));
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn fixtures() -> anyhow::Result<Vec<IngestFile>> {
    let dir = bundled_images()?;
    let mut files = Vec::new();
    for path in expand_paths(&[dir]).into_iter().flatten() {
        let bytes = std::fs::read(&path).with_context(|| path.display().to_string())?;
        let image = phr_sis::phash::decode_luma(&bytes)
            .with_context(|| format!("decoding {}", path.display()))?;
        files.push(IngestFile {
            path,
            hash: phr_sis::phash::phash(&image),
            bytes,
        });
    }
    anyhow::ensure!(!files.is_empty(), "no fixture images");
    Ok(files)
}

fn synthetic(count: usize) -> Vec<IngestFile> {
    let mut rng = rand::rng();
    (0..count)
        .map(|i| {
            let mut bytes = vec![0u8; 512];
            rng.fill_bytes(&mut bytes);
            IngestFile {
                path: format!("synthetic-{i}").into(),
                bytes,
                hash: ImageHash(rng.random()),
            }
        })
        .collect()
}

/// Clients of the soak run.
const SOAK_CLIENTS: usize = 16;

/// The name of the `i`th client of the soak run.
fn soaker(i: usize) -> anyhow::Result<dealer_free_node::access::ClientName> {
    Ok(format!("soaker-{i}").parse()?)
}

/// The name of the `i`th searching client.
fn searcher(i: usize) -> anyhow::Result<dealer_free_node::access::ClientName> {
    Ok(format!("searcher-{i}").parse()?)
}

pub(super) fn bench_cluster(args: &BenchArgs) -> anyhow::Result<Vec<Record>> {
    let nodes = args.cluster_nodes;
    let t = nodes / 2 + 1;
    let ingest_images = args
        .ingest_images
        .unwrap_or(if args.quick { 96 } else { 640 });
    let stored = args
        .stored
        .unwrap_or(if args.quick { 1_000 } else { 10_000 });
    let duration = Duration::from_secs(args.duration.unwrap_or(if args.quick { 3 } else { 10 }));
    let temp = tempfile::Builder::new()
        .prefix("dealer-free-sis-bench-cluster-")
        .tempdir()?;
    let dir = ClusterDir::new(&temp.path().join("cluster"));
    dir.init(&InitOptions {
        nodes,
        threshold: t,
        base_port: None,
        host: "127.0.0.1".into(),
        remote: false,
    })?;
    if args.hostile > 0 {
        super::hostile::prepare(&dir, nodes)?;
    } else {
        // Each searching client has its own identity, as `deployment.md` advises: the nodes'
        // per-client shares and budgets are then each client's own.
        for i in 1..=args.clients.iter().copied().max().unwrap_or(0) {
            dir.add_client(&searcher(i)?, dealer_free_node::access::Role::Search)?;
        }
        if args.soak > 0 {
            for i in 1..=SOAK_CLIENTS {
                dir.add_client(&soaker(i)?, dealer_free_node::access::Role::Owner)?;
            }
        }
    }
    let exe = std::env::current_exe().context("finding this program's path")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let running = Running(dir.clone());
    rt.block_on(dir.up(&exe, Duration::from_secs(60), true))?;
    let _entered = rt.enter();
    let client = ClusterClient::open(&dir.profile())?;
    let base = |op: &str| {
        Record::new("cluster", op, 1)
            .with("nodes", json!(nodes))
            .with("t", json!(t))
    };
    let mut records = Vec::new();

    // 1. Ingest throughput on the fixture images.
    let fixtures = fixtures()?;
    let files: Vec<IngestFile> = fixtures
        .iter()
        .cycle()
        .take(ingest_images)
        .cloned()
        .collect();
    let bytes: usize = files.iter().map(|f| f.bytes.len()).sum();
    let start = Instant::now();
    let outcomes = rt.block_on(client.ingest(&files, 32, |_| {}))?;
    let secs = start.elapsed().as_secs_f64();
    let incomplete = outcomes.iter().filter(|o| !o.complete()).count();
    records.push(
        base("ingest")
            .with("images", json!(files.len()))
            .with("batch", json!(32))
            .with("mean_image_bytes", json!(bytes / files.len().max(1)))
            .with("errors", json!(incomplete))
            .with("per_second", json!(round2(files.len() as f64 / secs))),
    );

    // With --hostile, only the hostile measurement follows, on the images ingested.
    if args.hostile > 0 {
        let stored: Vec<(u64, IngestFile)> = outcomes
            .iter()
            .zip(&files)
            .filter(|(o, _)| o.complete())
            .map(|(o, f)| (o.id.0, f.clone()))
            .collect();
        records.push(super::hostile::run(
            &rt,
            &dir,
            &stored,
            args.hostile,
            nodes,
            t,
        )?);
        drop(running);
        return Ok(records);
    }

    // 2. Fill up to `stored` with synthetic images.
    let fill = stored.saturating_sub(outcomes.len());
    if fill > 0 {
        let start = Instant::now();
        let mut done = 0;
        for chunk in synthetic(fill).chunks(256) {
            let o = rt.block_on(client.ingest(chunk, 256, |_| {}))?;
            done += o.iter().filter(|o| o.complete()).count();
        }
        records.push(
            base("fill")
                .with("images", json!(done))
                .with("payload_bytes", json!(512))
                .with(
                    "per_second",
                    json!(round2(done as f64 / start.elapsed().as_secs_f64())),
                ),
        );
    }

    // 3. Every node checks every record it holds (`cluster scrub`), then the nodes check
    // their bit shares against each other (the masked check, timed on its own), and lists
    // its ids.
    let start = Instant::now();
    let report = rt.block_on(client.scrub());
    let secs = start.elapsed().as_secs_f64();
    let checked: u64 = report.checked.values().sum();
    let bits = &report.bit_shares;
    let bit_secs = bits.elapsed.as_secs_f64();
    let own_secs = (secs - bit_secs).max(f64::MIN_POSITIVE);
    records.push(
        base("scrub")
            .with("records", json!(checked))
            .with("damaged", json!(report.damaged.len()))
            .with("errors", json!(report.failed.len()))
            .with("ms", json!(round2(secs * 1e3)))
            .with("without_bit_shares_ms", json!(round2(own_secs * 1e3)))
            .with("per_second", json!(round2(checked as f64 / own_secs)))
            .with("bit_share_images", json!(bits.checked))
            .with("bit_share_nodes", json!(bits.servers.len()))
            .with("bit_share_ms", json!(round2(bit_secs * 1e3)))
            .with(
                "bit_share_images_per_second",
                json!(round2(
                    bits.checked as f64 / bit_secs.max(f64::MIN_POSITIVE)
                )),
            )
            .with("bit_share_stopped", json!(bits.stopped)),
    );
    let start = Instant::now();
    let listing = rt.block_on(client.list(false));
    let secs = start.elapsed().as_secs_f64();
    records.push(
        base("list")
            .with("images", json!(listing.holders.len()))
            .with("errors", json!(listing.failed.len()))
            .with("ms", json!(round2(secs * 1e3))),
    );

    // 4. The offline phase: one dealing of a search pool.
    let servers = rt.block_on(client.search_servers())?;
    let start = Instant::now();
    let dealt = rt.block_on(client.deal_masks(&servers, SEARCH_MASK_POOL))?;
    let secs = start.elapsed().as_secs_f64();
    records.push(
        base("masks")
            .with("servers", json!(servers.len()))
            .with("masks", json!(dealt.masks))
            .with("accepted_dealers", json!(dealt.accepted.len()))
            .with("ms", json!(round2(secs * 1e3)))
            .with("per_second", json!(round2(f64::from(dealt.masks) / secs))),
    );

    // 5. Search latency under 1..k concurrent clients.
    let queries: Arc<Vec<ImageHash>> = Arc::new(fixtures.iter().map(|f| f.hash).collect());
    for &clients in &args.clients {
        let searchers = rt.block_on(async {
            let mut searchers = Vec::with_capacity(clients);
            for i in 1..=clients {
                let profile = dir.client_dir(&searcher(i)?).join("client.toml");
                let client = ClusterClient::open(&profile)?.with_mask_pool(SEARCH_MASK_POOL);
                let servers = client.search_servers().await?;
                client.deal_masks(&servers, SEARCH_MASK_POOL).await?;
                searchers.push(client);
            }
            Ok::<_, anyhow::Error>(searchers)
        })?;
        let watched: Vec<ClusterClient> = searchers.clone();
        let dealt_before: u64 = watched.iter().map(ClusterClient::mask_dealings).sum();
        let wall = Instant::now();
        let searched = rt.block_on(async {
            let mut set = tokio::task::JoinSet::new();
            for (c, client) in searchers.into_iter().enumerate() {
                set.spawn(search_back_to_back(
                    client,
                    Arc::clone(&queries),
                    c,
                    clients,
                    duration,
                ));
            }
            let mut all = Searched::default();
            while let Some(one) = set.join_next().await {
                all.add(one?);
            }
            Ok::<_, anyhow::Error>(all)
        })?;
        let wall = wall.elapsed().as_secs_f64();
        let Searched {
            latencies_ms: l,
            candidates,
            errors,
        } = searched;
        for (e, n) in &errors {
            eprintln!("bench cluster: {n} search(es) failed: {e}");
        }
        let searches = l.len();
        let mean_candidates = candidates / searches.max(1);
        records.push(
            base("search")
                .with("stored", json!(stored.max(outcomes.len())))
                .with("clients", json!(clients))
                .with("searches", json!(searches))
                .with(
                    "dealings",
                    json!(
                        watched
                            .iter()
                            .map(ClusterClient::mask_dealings)
                            .sum::<u64>()
                            - dealt_before
                    ),
                )
                .with("mean_candidates", json!(mean_candidates))
                .with("errors", json!(errors.values().sum::<usize>()))
                .with("p50_ms", json!(round2(percentile(&l, 50.0))))
                .with("p99_ms", json!(round2(percentile(&l, 99.0))))
                .with("per_second", json!(round2(searches as f64 / wall))),
        );
    }

    // 6. Soak: mixed load, every read checked.
    if args.soak > 0 {
        records.push(soak(
            &rt,
            &dir,
            &fixtures,
            Duration::from_secs(args.soak),
            nodes,
            t,
        )?);
    }
    drop(running);
    Ok(records)
}

/// What clients' back-to-back searches measured: latencies (sorted, ms), candidates ranked
/// in all, and the errors by message.
#[derive(Debug, Default)]
pub(super) struct Searched {
    pub(super) latencies_ms: Vec<f64>,
    pub(super) candidates: usize,
    pub(super) errors: BTreeMap<String, usize>,
}

impl Searched {
    /// Adds another client's measurements (the latencies stay sorted).
    pub(super) fn add(&mut self, other: Searched) {
        self.latencies_ms.extend(other.latencies_ms);
        self.latencies_ms.sort_by(f64::total_cmp);
        self.candidates += other.candidates;
        for (e, n) in other.errors {
            *self.errors.entry(e).or_default() += n;
        }
    }
}

/// `client` searches back to back for `duration`, by `queries[first]`,
/// `queries[first + stride]`, … (cycling), each search timed whole.
pub(super) async fn search_back_to_back(
    client: ClusterClient,
    queries: Arc<Vec<ImageHash>>,
    first: usize,
    stride: usize,
    duration: Duration,
) -> Searched {
    let params = SearchParams::default();
    let mut out = Searched::default();
    let start = Instant::now();
    let mut i = first;
    while start.elapsed() < duration {
        let q = queries[i % queries.len()];
        i += stride;
        let t0 = Instant::now();
        match client.search(q, &params).await {
            Ok(o) => {
                out.latencies_ms.push(t0.elapsed().as_secs_f64() * 1e3);
                out.candidates += o.candidates;
            }
            Err(e) => *out.errors.entry(e.to_string()).or_default() += 1,
        }
    }
    out.latencies_ms.sort_by(f64::total_cmp);
    out
}

fn soak(
    rt: &tokio::runtime::Runtime,
    dir: &ClusterDir,
    fixtures: &[IngestFile],
    duration: Duration,
    nodes: u8,
    t: u8,
) -> anyhow::Result<Record> {
    let clients = SOAK_CLIENTS;
    let fixtures = Arc::new(fixtures.to_vec());
    let ops = Arc::new(Mutex::new((0usize, 0usize, 0usize, 0usize)));
    let errors = Arc::new(Mutex::new(BTreeMap::<String, usize>::new()));
    rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for c in 0..clients {
            // Each its own identity (an owner), as for the searching clients.
            let profile = dir.client_dir(&soaker(c + 1)?).join("client.toml");
            let client = ClusterClient::open(&profile)?.with_mask_pool(SEARCH_MASK_POOL);
            let fixtures = Arc::clone(&fixtures);
            let ops = Arc::clone(&ops);
            let errors = Arc::clone(&errors);
            set.spawn(async move {
                let start = Instant::now();
                let mut mine: Vec<(ImageId, usize)> = Vec::new();
                let mut i = c;
                let fail = |e: String| {
                    if let Ok(mut m) = errors.lock() {
                        *m.entry(e).or_default() += 1;
                    }
                };
                while start.elapsed() < duration {
                    i += 1;
                    let f = i % fixtures.len();
                    match i % 10 {
                        0 => match client.ingest(&fixtures[f..=f], 1, |_| {}).await {
                            Ok(o) if o.iter().all(|o| o.complete()) => {
                                mine.extend(o.iter().map(|o| (o.id, f)));
                                if let Ok(mut n) = ops.lock() {
                                    n.1 += 1;
                                }
                            }
                            Ok(_) => fail("an ingest was not stored on every node".into()),
                            Err(e) => fail(e.to_string()),
                        },
                        5 if !mine.is_empty() => {
                            let (id, f) = mine[i % mine.len()];
                            match client.get(id).await {
                                Ok(got) if got.bytes == fixtures[f].bytes => {
                                    if let Ok(mut n) = ops.lock() {
                                        n.2 += 1;
                                    }
                                }
                                Ok(_) => {
                                    if let Ok(mut n) = ops.lock() {
                                        n.3 += 1;
                                    }
                                }
                                Err(e) => {
                                    if let Ok(mut n) = ops.lock() {
                                        n.3 += 1;
                                    }
                                    fail(e.to_string());
                                }
                            }
                        }
                        _ => match client
                            .search(fixtures[f].hash, &SearchParams::default())
                            .await
                        {
                            Ok(_) => {
                                if let Ok(mut n) = ops.lock() {
                                    n.0 += 1;
                                }
                            }
                            Err(e) => fail(e.to_string()),
                        },
                    }
                }
            });
        }
        while set.join_next().await.is_some() {}
        Ok::<(), anyhow::Error>(())
    })?;
    let (searches, ingests, gets, lost) = ops.lock().map(|o| *o).unwrap_or_default();
    let errors = errors.lock().map(|e| e.clone()).unwrap_or_default();
    for (e, n) in &errors {
        eprintln!("bench cluster soak: {n} operation(s) failed: {e}");
    }
    Ok(Record::new("cluster", "soak", 1)
        .with("nodes", json!(nodes))
        .with("t", json!(t))
        .with("clients", json!(clients))
        .with("seconds", json!(duration.as_secs()))
        .with("searches", json!(searches))
        .with("ingests", json!(ingests))
        .with("gets", json!(gets))
        .with("errors", json!(errors.values().sum::<usize>()))
        .with("lost", json!(lost)))
}
