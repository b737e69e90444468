//! `experiment --cluster DIR`: Stage-1 and Stage-2 measured on a running local cluster (the
//! gRPC nodes of `cluster up --dir DIR`), beside the simulator's costs for the same `(t, n)`
//! and images, in `cluster_stages.csv` and the `cluster_stages` figure.
//!
//! * **Stage-1**, per image: one `ClusterClient::ingest` of that image alone (tokens from the
//!   threshold VOPRF, image and bit shares, one store request to every node), timed from the
//!   client's side (wall clock). The simulated value beside it is the simulator's Stage-1 of
//!   the same images one at a time (batch 1, payloads padded as the client pads them) under
//!   each network model, divided by the number of images.
//! * **Stage-2**, per query: a secure search by the image's pHash, then `get` of the top hit
//!   (every share verified, the file reconstructed), timed together and apart. Each search
//!   deals its own masks (no pool dealt ahead), as the simulator's Stage-2 does. The
//!   simulated value beside it is the simulator's Stage-2 (one query and the retrieval of
//!   its top hit).
//!
//! **Bytes**, in `cluster_bytes.csv`: per stage, message kind and direction, the messages and
//! bytes the simulator counts (`sim_messages`, `sim_bytes`) for a twin of the same run
//! (`dealer_free_sim::twin`: the same images one at a time, the same queries among all nodes)
//! beside those the cluster client sent and received (`cluster_messages`, `cluster_bytes`),
//! counted from the encodings it actually sent and got back on calls that succeeded. The
//! gRPC bodies of every call (protobuf and the 5-byte gRPC frame, retries included), the
//! health checks and the retries are rows of their own, with no simulated value; TLS and
//! HTTP/2 framing are not counted. On a fault-free run of a fresh cluster the two counts are
//! equal kind by kind (`equal`); a cluster that held images before ranks more candidates.
//!
//! Ingest never deduplicates:
//! every run stores the images again under new ids, so a cluster that already held images
//! ranks more candidates. The CSV says how many images the cluster held before the run
//! (`stored_before`) and how many the run added.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use dealer_free_node::client::{ClientError, ClusterClient, Direction, IngestFile, WireCounts};
use dealer_free_node::cluster::ClusterDir;
use dealer_free_sim::experiment::ExperimentData;
use dealer_free_sim::figures::{Figure, Series};
use dealer_free_sim::network::NetworkPreset;
use phr_sis::{ImageHash, ImageId, SearchParams, Threshold};
use serde::Serialize;
use serde_json::{Value, json};

use crate::UsageError;
use crate::commands::bench::percentile;

/// The figure's (and the CSV's) file stem.
pub(super) const FIGURE_NAME: &str = "cluster_stages";

/// The name a user might give this comparison in `--figures`: refused there, with a message
/// saying that `--cluster DIR` writes it.
pub(super) const FIGURE_SET: &str = "cluster";

/// Whether `dir` holds a cluster (its cluster.toml).
pub(super) fn exists(dir: &Path) -> bool {
    ClusterDir::new(dir).exists()
}

/// The queries of Stage-2 unless `--cluster-queries` says otherwise (at most the images).
pub(super) const DEFAULT_QUERIES: usize = 10;

/// Wall-clock statistics of repeated operations, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(super) struct Timing {
    pub(super) mean: f64,
    pub(super) p50: f64,
    pub(super) p99: f64,
    pub(super) samples: usize,
}

impl Timing {
    /// Mean, p50 and p99 of `ms`.
    pub(super) fn of(ms: &[f64]) -> Timing {
        let mut sorted = ms.to_vec();
        sorted.sort_by(f64::total_cmp);
        let mean = if sorted.is_empty() {
            0.0
        } else {
            sorted.iter().sum::<f64>() / sorted.len() as f64
        };
        Timing {
            mean,
            p50: percentile(&sorted, 50.0),
            p99: percentile(&sorted, 99.0),
            samples: sorted.len(),
        }
    }
}

fn elapsed_ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

fn not_running(dir: &Path, why: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "cluster at {} is not running{why}: start it with `dealer-free-sis cluster up --dir {}`",
        dir.display(),
        dir.display()
    )
}

/// The `(t, n)` of the cluster folder `dir` (its cluster.toml), without contacting a node.
///
/// # Errors
/// A usage error when `dir` holds no cluster or its cluster.toml is unusable.
pub(super) fn shape(dir: &Path) -> anyhow::Result<Threshold> {
    let cluster = ClusterDir::new(dir);
    if !cluster.exists() {
        return Err(UsageError(format!(
            "--cluster {}: holds no cluster: create and start one with `dealer-free-sis cluster \
             up --dir {} --nodes 5 --threshold 3`",
            dir.display(),
            dir.display()
        ))
        .into());
    }
    let file = cluster
        .read()
        .map_err(|e| UsageError(format!("--cluster {}: {e}", dir.display())))?;
    Threshold::new(file.threshold, file.nodes).map_err(|e| {
        UsageError(format!(
            "--cluster {}: t = {} of n = {}: {e}",
            dir.display(),
            file.threshold,
            file.nodes
        ))
        .into()
    })
}

/// A client of a cluster whose every node answered and holds a key share.
pub(super) struct Connected {
    rt: tokio::runtime::Runtime,
    client: ClusterClient,
    dir: PathBuf,
    /// The most images any node held when connected.
    stored_before: u64,
}

/// Opens the client of `dir` and checks that every node answers with a key share.
///
/// # Errors
/// "cluster at DIR is not running …" when any node does not answer (each named); a usage error
/// for an unusable client profile.
pub(super) fn connect(dir: &Path) -> anyhow::Result<Connected> {
    let cluster = ClusterDir::new(dir);
    if !cluster.profile().exists() {
        return Err(UsageError(format!(
            "--cluster {}: holds no client.toml: create and start the cluster with \
             `dealer-free-sis cluster up --dir {} --nodes 5 --threshold 3`",
            dir.display(),
            dir.display()
        ))
        .into());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let client = {
        let _entered = rt.enter();
        ClusterClient::open(&cluster.profile()).map_err(|e| match e {
            ClientError::Config(c) => {
                anyhow::Error::from(UsageError(format!("--cluster {}: {c}", dir.display())))
            }
            other => anyhow::Error::from(other),
        })?
    };
    let statuses = rt.block_on(client.status());
    let mut down = Vec::new();
    let mut stored_before = 0;
    for s in &statuses {
        match &s.health {
            Ok(h) if h.has_key => stored_before = stored_before.max(h.images),
            Ok(_) => down.push(format!("node {} holds no key share", s.id)),
            Err(e) => down.push(format!("node {} ({}): {e}", s.id, s.address)),
        }
    }
    if statuses.is_empty() || down.len() == statuses.len() {
        return Err(not_running(dir, ""));
    }
    if !down.is_empty() {
        return Err(not_running(
            dir,
            &format!(
                " on every node ({} of {} up; {})",
                statuses.len() - down.len(),
                statuses.len(),
                down.join("; ")
            ),
        ));
    }
    Ok(Connected {
        rt,
        client,
        dir: dir.to_owned(),
        stored_before,
    })
}

/// What the cluster run measured.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Measured {
    pub(super) ingest: Timing,
    pub(super) stage2: Timing,
    pub(super) search: Timing,
    pub(super) get: Timing,
    /// Images not stored on every node (each reported on stderr).
    pub(super) incomplete: usize,
    /// Images the cluster held before the run (the most of any node).
    pub(super) stored_before: u64,
    /// Images it held after the ingest (the most of any node).
    pub(super) stored_after: u64,
    /// Searches that found no hit (no `get` then).
    pub(super) no_hit: usize,
    /// Retrievals whose bytes are none of the ingested files'.
    pub(super) get_mismatch: usize,
    /// Mean candidates ranked per search.
    pub(super) mean_candidates: f64,
    /// The images this run stored, deleted again when it ended (on every node that answered;
    /// the others owe the delete in the catalog, sent by the next `delete`, `list` or
    /// `ingest`).
    pub(super) deleted_after: usize,
    /// What the client sent and received in Stage-1 (the ingest) and in Stage-2 (the
    /// searches and gets), counted from the messages.
    #[serde(skip)]
    pub(super) wire: [WireCounts; 2],
}

fn images_held(rt: &tokio::runtime::Runtime, client: &ClusterClient) -> u64 {
    rt.block_on(client.status())
        .iter()
        .filter_map(|s| s.health.as_ref().ok().map(|h| h.images))
        .max()
        .unwrap_or(0)
}

/// Stage-1 (every file, one at a time) and Stage-2 (the first `queries` files as queries, each
/// followed by `get` of its top hit) on the cluster.
///
/// # Errors
/// The client's error when a request fails outright (too few nodes, refused, protocol).
pub(super) fn measure(
    conn: &Connected,
    files: &[(PathBuf, Vec<u8>, ImageHash)],
    queries: usize,
    params: &SearchParams,
) -> anyhow::Result<Measured> {
    let Connected {
        rt, client, dir, ..
    } = conn;
    let context = || format!("the cluster at {}", dir.display());
    client.reset_wire_counts();
    let mut ingest_ms = Vec::with_capacity(files.len());
    let mut incomplete = 0;
    let mut stored: Vec<ImageId> = Vec::with_capacity(files.len());
    for (path, bytes, hash) in files {
        let file = IngestFile {
            path: path.clone(),
            bytes: bytes.clone(),
            hash: *hash,
        };
        let start = Instant::now();
        let outcomes = rt
            .block_on(client.ingest(std::slice::from_ref(&file), 1, |_| {}))
            .with_context(|| format!("ingesting {} into {}", path.display(), context()))?;
        ingest_ms.push(elapsed_ms(start));
        stored.extend(outcomes.iter().map(|o| o.id));
        for o in outcomes.iter().filter(|o| !o.complete()) {
            incomplete += 1;
            let why: Vec<String> = o
                .failed
                .iter()
                .map(|(n, e)| format!("node {n}: {e}"))
                .collect();
            eprintln!(
                "dealer-free-sis: {}: not stored on every node ({})",
                path.display(),
                why.join("; ")
            );
        }
    }
    let stage1 = client.wire_counts();
    let stored_after = images_held(rt, client);
    client.reset_wire_counts();

    let mut stage2_ms = Vec::new();
    let mut search_ms = Vec::new();
    let mut get_ms = Vec::new();
    let mut no_hit = 0;
    let mut get_mismatch = 0;
    let mut candidates = 0usize;
    for (path, _, hash) in files.iter().take(queries) {
        let start = Instant::now();
        let found = rt
            .block_on(client.search(*hash, params))
            .with_context(|| format!("searching by {} on {}", path.display(), context()))?;
        search_ms.push(elapsed_ms(start));
        candidates += found.candidates;
        let Some(top) = found.hits.first() else {
            no_hit += 1;
            stage2_ms.push(elapsed_ms(start));
            continue;
        };
        let got_at = Instant::now();
        let got = rt
            .block_on(client.get(top.id))
            .with_context(|| format!("retrieving {} from {}", top.id, context()))?;
        get_ms.push(elapsed_ms(got_at));
        stage2_ms.push(elapsed_ms(start));
        if !files.iter().any(|(_, b, _)| *b == got.bytes) {
            get_mismatch += 1;
            eprintln!(
                "dealer-free-sis: the top hit {} of {} is none of the ingested files (stored \
                 before this run?)",
                top.id,
                path.display()
            );
        }
    }
    let searches = search_ms.len();
    let stage2 = client.wire_counts();
    let deleted_after = remove_run_images(rt, client, &stored)?;
    Ok(Measured {
        ingest: Timing::of(&ingest_ms),
        stage2: Timing::of(&stage2_ms),
        search: Timing::of(&search_ms),
        get: Timing::of(&get_ms),
        incomplete,
        stored_before: conn.stored_before,
        stored_after,
        no_hit,
        get_mismatch,
        deleted_after,
        mean_candidates: if searches == 0 {
            0.0
        } else {
            candidates as f64 / searches as f64
        },
        wire: [stage1, stage2],
    })
}

/// Deletes the images a run stored, so the owner's cluster is left as it was: returns how
/// many. Nodes that do not acknowledge owe the delete in the catalog (sent again by the next
/// `delete`, `list` or `ingest`), and are named on stderr.
///
/// # Errors
/// The catalog's, if it cannot be written.
fn remove_run_images(
    rt: &tokio::runtime::Runtime,
    client: &ClusterClient,
    ids: &[ImageId],
) -> anyhow::Result<usize> {
    if ids.is_empty() {
        return Ok(0);
    }
    // Noted in the catalog as owed before anything is sent; the nodes that do not answer
    // keep owing it there.
    crate::commands::catalog::send_deletes(rt, client, ids)?;
    Ok(ids.len())
}

/// One row of `cluster_stages.csv`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct Row {
    /// "Stage-1" (per image) or "Stage-2" (per query).
    pub(super) stage: &'static str,
    /// "simulated-lan", "simulated-wan" or "measured-cluster".
    pub(super) source: &'static str,
    pub(super) metric: &'static str,
    pub(super) value: f64,
    /// Nodes.
    pub(super) n: u8,
    pub(super) t: u8,
    /// Operations measured (images, queries; 1 for a modelled value).
    pub(super) samples: usize,
    /// Images the deployment held before Stage-1 (0: the simulator's fresh one).
    pub(super) stored_before: u64,
    pub(super) note: String,
}

/// The CSV header.
pub(super) const CSV_HEADER: &str = "stage,source,metric,value,n,t,samples,stored_before,note";

fn round3(v: f64) -> f64 {
    (v * 1e3).round() / 1e3
}

/// Every row: the simulated ones from `data` (the networks in `networks`), then the measured.
pub(super) fn rows(
    data: &ExperimentData,
    networks: &[NetworkPreset],
    measured: &Measured,
    query_name: &str,
) -> Vec<Row> {
    let (n, t) = (data.n, data.t);
    let images = data.images.max(1);
    let mut out = Vec::new();
    let mut push = |stage, source, metric, value: f64, samples, stored_before, note: &str| {
        out.push(Row {
            stage,
            source,
            metric,
            value: round3(value),
            n,
            t,
            samples,
            stored_before,
            note: note.to_owned(),
        });
    };
    let batch1 = data.batching.as_ref().and_then(|b| {
        b.rows
            .iter()
            .find(|r| r.batch == 1 && r.padded && !r.compressed)
    });
    let stage2_bytes: usize = data
        .stage_communication
        .iter()
        .filter(|r| r.design == "dealer-free" && r.stage == "Stage-2")
        .map(|r| r.bytes)
        .sum();
    for preset in networks {
        let (source, name) = match preset {
            NetworkPreset::Lan => ("simulated-lan", "lan"),
            NetworkPreset::Wan => ("simulated-wan", "wan"),
        };
        if let Some(r) = batch1 {
            let ms = if name == "lan" { r.lan_ms } else { r.wan_ms };
            let note = format!(
                "per image: the simulator's Stage-1 of the {images} images one at a time (batch \
                 1, padded payloads) under the {} model, divided by {images}",
                name.to_uppercase()
            );
            push(
                "Stage-1",
                source,
                "latency_ms_mean",
                ms / images as f64,
                images,
                0,
                &note,
            );
            push(
                "Stage-1",
                source,
                "bytes_mean",
                r.bytes as f64 / images as f64,
                images,
                0,
                "per image: all Stage-1 messages (tokens, records to every node)",
            );
        }
        if let Some(r) = data
            .stage_latency
            .iter()
            .find(|r| r.design == "dealer-free" && r.stage == "Stage-2" && r.network == name)
        {
            let note = format!(
                "one query ({query_name}) and the retrieval of its top hit, secure ranking \
                 among all {n} nodes, under the {} model",
                name.to_uppercase()
            );
            push(
                "Stage-2",
                source,
                "latency_ms_mean",
                r.latency_ms,
                1,
                0,
                &note,
            );
            push(
                "Stage-2",
                source,
                "bytes_mean",
                stage2_bytes as f64,
                1,
                0,
                "all Stage-2 messages of the one query (tokens, candidates, masks, distances, \
                 shares)",
            );
        }
    }
    let m = measured;
    let before = m.stored_before;
    let added = m.stored_after.saturating_sub(m.stored_before);
    let s1 = format!(
        "wall time of one ingest per image (threshold-VOPRF tokens, split, store on every \
         node); latency only: the cluster client does not count bytes; the cluster held \
         {before} images before, this run added {added} and deleted them again when it \
         ended ({} deleted); {} not stored on every node",
        m.deleted_after, m.incomplete
    );
    let s = m.ingest.samples;
    push(
        "Stage-1",
        "measured-cluster",
        "latency_ms_mean",
        m.ingest.mean,
        s,
        before,
        &s1,
    );
    push(
        "Stage-1",
        "measured-cluster",
        "latency_ms_p50",
        m.ingest.p50,
        s,
        before,
        &s1,
    );
    push(
        "Stage-1",
        "measured-cluster",
        "latency_ms_p99",
        m.ingest.p99,
        s,
        before,
        &s1,
    );
    push(
        "Stage-1",
        "measured-cluster",
        "images_added",
        added as f64,
        s,
        before,
        "images the busiest node holds more after Stage-1 than before",
    );
    let s2 = format!(
        "wall time of a secure search (2t − 1 = {} servers) plus get of its top hit, per query; \
         latency only: the cluster client does not count bytes; {:.1} candidates per search \
         (the cluster held {} images); {} searches without a hit; {} retrievals not an ingested \
         file",
        2 * u16::from(t) - 1,
        m.mean_candidates,
        m.stored_after,
        m.no_hit,
        m.get_mismatch
    );
    let s = m.stage2.samples;
    push(
        "Stage-2",
        "measured-cluster",
        "latency_ms_mean",
        m.stage2.mean,
        s,
        before,
        &s2,
    );
    push(
        "Stage-2",
        "measured-cluster",
        "latency_ms_p50",
        m.stage2.p50,
        s,
        before,
        &s2,
    );
    push(
        "Stage-2",
        "measured-cluster",
        "latency_ms_p99",
        m.stage2.p99,
        s,
        before,
        &s2,
    );
    push(
        "Stage-2",
        "measured-cluster",
        "search_ms_mean",
        m.search.mean,
        m.search.samples,
        before,
        "the secure search alone",
    );
    push(
        "Stage-2",
        "measured-cluster",
        "get_ms_mean",
        m.get.mean,
        m.get.samples,
        before,
        "the retrieval of the top hit alone",
    );
    push(
        "Stage-2",
        "measured-cluster",
        "candidates_mean",
        m.mean_candidates,
        m.search.samples,
        before,
        "candidates ranked per search",
    );
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// `rows` as CSV text (header first).
pub(super) fn csv(rows: &[Row]) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{}",
            r.stage,
            r.source,
            r.metric,
            r.value,
            r.n,
            r.t,
            r.samples,
            r.stored_before,
            csv_field(&r.note)
        );
    }
    out
}

/// The `cluster_stages` figure: per stage, the simulated latency under each network model
/// beside the measured mean, p50 and p99; its JSON data is the rows.
pub(super) fn figure(rows: &[Row], dir: &Path, images: usize, queries: usize) -> (Figure, Value) {
    let Some(first) = rows.first() else {
        return (
            Figure::bars(FIGURE_NAME, "no data", "stage", "latency in ms", Vec::new()),
            json!({ "rows": rows }),
        );
    };
    let (t, n) = (first.t, first.n);
    let stages = ["Stage-1", "Stage-2"];
    let value = |stage: &str, source: &str, metric: &str| -> f64 {
        rows.iter()
            .find(|r| r.stage == stage && r.source == source && r.metric == metric)
            .map_or(0.0, |r| r.value)
    };
    let mut f = Figure::bars(
        FIGURE_NAME,
        format!("Simulated vs measured cluster latency per stage (t = {t}, n = {n})"),
        "stage",
        "latency in ms (log scale)",
        vec![
            format!("Stage-1 (per image, {images} images)"),
            format!("Stage-2 (per query + get, {queries} queries)"),
        ],
    )
    .with_log_axes(false, true);
    for (source, label) in [
        ("simulated-lan", "simulated, LAN"),
        ("simulated-wan", "simulated, WAN"),
    ] {
        if rows.iter().any(|r| r.source == source) {
            f.series.push(Series::bars(
                label,
                stages
                    .iter()
                    .map(|s| value(s, source, "latency_ms_mean"))
                    .collect(),
            ));
        }
    }
    for (metric, label) in [
        ("latency_ms_mean", "measured cluster, mean"),
        ("latency_ms_p50", "measured cluster, p50"),
        ("latency_ms_p99", "measured cluster, p99"),
    ] {
        f.series.push(Series::bars(
            label,
            stages
                .iter()
                .map(|s| value(s, "measured-cluster", metric))
                .collect(),
        ));
    }
    f.notes.push(format!(
        "measured: wall clock at the client, real node processes of {} over loopback \
         (latency only: the cluster client does not count bytes)",
        dir.display()
    ));
    f.notes.push(
        "simulated: measured CPU + network model (LAN 0.2 ms, 1 Gbit/s; WAN 40 ms, 100 Mbit/s); \
         Stage-1 at batch 1, Stage-2 one query + get"
            .to_owned(),
    );
    if let Some(r) = rows
        .iter()
        .find(|r| r.source == "measured-cluster" && r.stored_before > 0)
    {
        f.notes.push(format!(
            "the cluster held {} images before this run (left as they were: the run's own \
             images are stored under new ids and deleted when it ends)",
            r.stored_before
        ));
    }
    (f, json!({ "rows": rows }))
}

#[cfg(test)]
mod tests {
    use super::{Timing, csv_field};

    #[test]
    fn timing_and_csv_quoting() {
        let t = Timing::of(&[3.0, 1.0, 2.0, 10.0]);
        assert!((t.mean - 4.0).abs() < 1e-9);
        assert!((t.p50 - 3.0).abs() < 1e-9 || (t.p50 - 2.0).abs() < 1e-9);
        assert!((t.p99 - 10.0).abs() < 1e-9);
        assert_eq!(t.samples, 4);
        assert_eq!(Timing::of(&[]).mean, 0.0);
        assert_eq!(csv_field("a, b"), "\"a, b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}

/// One row of `cluster_bytes.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ByteRow {
    pub(super) stage: &'static str,
    pub(super) kind: String,
    pub(super) direction: &'static str,
    pub(super) sim: Option<(u64, u64)>,
    pub(super) cluster: (u64, u64),
}

/// The header of `cluster_bytes.csv`.
pub(super) const BYTES_HEADER: &str =
    "stage,kind,direction,sim_messages,sim_bytes,cluster_messages,cluster_bytes,equal";

/// Per stage and message kind, the twin's counts beside the cluster client's; then the
/// client's gRPC bodies, health checks and retries.
pub(super) fn byte_rows(
    twin: &dealer_free_sim::trace::Trace,
    wire: &[WireCounts; 2],
) -> Vec<ByteRow> {
    use dealer_free::wire::MessageKind;
    use dealer_free_sim::trace::Stage;
    use dealer_free_sim::twin::{Way, tally};
    let mut rows = Vec::new();
    for ((stage, name), counts) in [(Stage::Stage1, "Stage-1"), (Stage::Stage2, "Stage-2")]
        .into_iter()
        .zip(wire)
    {
        let sim = tally(twin, stage);
        let mut kinds: BTreeSet<(u8, bool)> = sim
            .keys()
            .map(|(k, w)| (k.to_byte(), *w == Way::Sent))
            .collect();
        kinds.extend(
            counts
                .payload
                .keys()
                .map(|(k, d)| (*k, *d == Direction::Sent)),
        );
        for (byte, sent) in kinds {
            let Ok(kind) = MessageKind::from_byte(byte) else {
                continue;
            };
            let (way, direction) = if sent {
                (Way::Sent, Direction::Sent)
            } else {
                (Way::Received, Direction::Received)
            };
            let s = sim.get(&(kind, way)).copied().unwrap_or_default();
            let c = counts.of(kind, direction);
            rows.push(ByteRow {
                stage: name,
                kind: kind.name().to_owned(),
                direction: if sent { "sent" } else { "received" },
                sim: Some((s.messages, s.bytes)),
                cluster: (c.messages, c.bytes),
            });
        }
        for (kind, value) in [
            ("grpc-bodies", (counts.rpc.messages, counts.rpc.bytes)),
            ("health-checks", (counts.health, 0)),
            ("retries", (counts.retries, 0)),
        ] {
            rows.push(ByteRow {
                stage: name,
                kind: kind.to_owned(),
                direction: "both",
                sim: None,
                cluster: value,
            });
        }
    }
    rows
}

/// `cluster_bytes.csv`.
pub(super) fn bytes_csv(rows: &[ByteRow]) -> String {
    let mut out = String::from(BYTES_HEADER);
    out.push('\n');
    for r in rows {
        let (sim_m, sim_b, equal) = match r.sim {
            Some((m, b)) => (
                m.to_string(),
                b.to_string(),
                if (m, b) == r.cluster { "yes" } else { "no" },
            ),
            None => (String::new(), String::new(), ""),
        };
        let _ = writeln!(
            out,
            "{},{},{},{sim_m},{sim_b},{},{},{equal}",
            r.stage, r.kind, r.direction, r.cluster.0, r.cluster.1
        );
    }
    out
}
