//! `experiment --cluster DIR` against a real 3-node cluster (t = 2) of this program's node
//! processes on loopback: Stage-1 and Stage-2 measured beside the simulated costs in
//! `cluster_stages.csv` and the `cluster_stages` figure; a second run on the same cluster says
//! how many images it held before; a stopped cluster is a clear error, not a panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use dealer_free_node::cluster::ClusterDir;

type TestResult = Result<(), Box<dyn std::error::Error>>;
/// One CSV row: stage, source, metric, value, samples, stored_before.
type CsvRow = (String, String, String, f64, usize, u64);

const EXE: &str = env!("CARGO_BIN_EXE_dealer-free-sis");

/// Small fixture images, so that the run stays short.
const IMAGES: [&str; 4] = [
    "sk_chelsea.jpg",
    "kpa_skagen.jpg",
    "sk_coins.png",
    "kpa_spiff.jpg",
];

/// A cluster folder whose nodes are stopped when the test ends, pass or fail.
struct Cluster {
    dir: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = ClusterDir::new(&self.dir).down(Duration::from_secs(5));
    }
}

fn cli(args: &[&std::ffi::OsStr]) -> Result<Output, std::io::Error> {
    Command::new(EXE).args(args).stdin(Stdio::null()).output()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The CSV's rows (checking its header and that every row has n = 3, t = 2).
fn read_csv(path: &Path) -> Result<Vec<CsvRow>, String> {
    let body = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines = body.lines();
    assert_eq!(
        lines.next(),
        Some("stage,source,metric,value,n,t,samples,stored_before,note")
    );
    lines
        .map(|l| {
            let f: Vec<&str> = l.splitn(9, ',').collect();
            if f.len() != 9 {
                return Err(format!("short CSV line {l:?}"));
            }
            assert_eq!((f[4], f[5]), ("3", "2"), "n and t of {l:?}");
            Ok((
                f[0].to_owned(),
                f[1].to_owned(),
                f[2].to_owned(),
                f[3].parse().map_err(|e| format!("{l:?}: {e}"))?,
                f[6].parse().map_err(|e| format!("{l:?}: {e}"))?,
                f[7].parse().map_err(|e| format!("{l:?}: {e}"))?,
            ))
        })
        .collect()
}

#[test]
fn experiment_measures_a_running_cluster_beside_the_simulation() -> TestResult {
    let temp = tempfile::tempdir()?;
    let images = temp.path().join("images");
    std::fs::create_dir_all(&images)?;
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images");
    for name in IMAGES {
        std::fs::copy(fixtures.join(name), images.join(name))?;
    }
    let cluster = Cluster {
        dir: temp.path().join("cluster"),
    };
    let dir = cluster.dir.as_os_str();
    let out = temp.path().join("out");

    // Not created yet: a usage error naming the command that creates it.
    let o = cli(&["experiment".as_ref(), "--cluster".as_ref(), dir])?;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("cluster up --dir"),
        "{}",
        text(&o.stderr)
    );

    let up = cli(&[
        "cluster".as_ref(),
        "up".as_ref(),
        "--dir".as_ref(),
        dir,
        "--nodes".as_ref(),
        "3".as_ref(),
        "--threshold".as_ref(),
        "2".as_ref(),
    ])?;
    assert!(up.status.success(), "cluster up: {}", text(&up.stderr));

    let run = |out: &Path| {
        cli(&[
            "experiment".as_ref(),
            "--cluster".as_ref(),
            dir,
            "--images".as_ref(),
            images.as_os_str(),
            "--cluster-queries".as_ref(),
            "3".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ])
    };

    // --check: the resolved settings with the cluster and its shape, nothing run or written.
    let check = cli(&[
        "experiment".as_ref(),
        "--cluster".as_ref(),
        dir,
        "--images".as_ref(),
        images.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--check".as_ref(),
    ])?;
    let printed = text(&check.stdout);
    assert!(check.status.success(), "{}", text(&check.stderr));
    assert!(printed.contains("cluster = "), "{printed}");
    assert!(printed.contains("nodes = 3\nthreshold = 2\n"), "{printed}");
    assert!(printed.contains("cluster_queries = 4"), "{printed}");
    assert!(!out.exists());

    // A threshold other than the cluster's is refused.
    let o = cli(&[
        "experiment".as_ref(),
        "--cluster".as_ref(),
        dir,
        "--threshold".as_ref(),
        "3".as_ref(),
        "--check".as_ref(),
    ])?;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));

    let o = run(&out)?;
    assert!(o.status.success(), "experiment: {}", text(&o.stderr));
    let rows = read_csv(&out.join("cluster_stages.csv"))?;
    let get = |stage: &str, source: &str, metric: &str| {
        rows.iter()
            .find(|r| r.0 == stage && r.1 == source && r.2 == metric)
            .map(|r| (r.3, r.4, r.5))
    };
    for stage in ["Stage-1", "Stage-2"] {
        for metric in ["latency_ms_mean", "latency_ms_p50", "latency_ms_p99"] {
            let (value, samples, before) = get(stage, "measured-cluster", metric)
                .ok_or_else(|| format!("no measured {stage} {metric} row"))?;
            assert!(value > 0.0, "{stage} {metric} = {value}");
            assert_eq!(before, 0, "a fresh cluster");
            assert_eq!(samples, if stage == "Stage-1" { 4 } else { 3 });
        }
        for source in ["simulated-lan", "simulated-wan"] {
            let (value, _, _) = get(stage, source, "latency_ms_mean")
                .ok_or_else(|| format!("no {source} {stage} row"))?;
            assert!(value > 0.0, "{source} {stage} = {value}");
        }
    }
    assert_eq!(
        get("Stage-1", "measured-cluster", "images_added").map(|r| r.0),
        Some(4.0)
    );
    for ext in ["svg", "png", "json"] {
        let f = out.join(format!("cluster_stages.{ext}"));
        assert!(std::fs::metadata(&f)?.len() > 0, "{} is empty", f.display());
    }
    let summary = std::fs::read_to_string(out.join("summary.md"))?;
    assert!(summary.contains("## cluster_stages"), "{summary}");
    assert!(
        std::fs::read_to_string(out.join("index.html"))?.contains("cluster_stages"),
        "index.html shows the comparison"
    );

    // The run deleted its own images: the owner's cluster is left as it was, with nothing
    // listed and nothing in the catalog.
    let listed = cli(&[
        "list".as_ref(),
        "--cluster".as_ref(),
        dir,
        "--json".as_ref(),
    ])?;
    assert!(listed.status.success(), "list: {}", text(&listed.stderr));
    assert_eq!(
        text(&listed.stdout),
        "",
        "the experiment's images stayed in the cluster"
    );

    // Again on the same cluster: it starts from the same (empty) collection.
    let again = temp.path().join("again");
    let o = run(&again)?;
    assert!(o.status.success(), "second experiment: {}", text(&o.stderr));
    let rows = read_csv(&again.join("cluster_stages.csv"))?;
    let stage1 = rows
        .iter()
        .find(|r| r.0 == "Stage-1" && r.1 == "measured-cluster" && r.2 == "latency_ms_mean")
        .ok_or("no measured Stage-1 row")?;
    assert_eq!(stage1.5, 0, "the first run's images were deleted");

    // Stopped: a clear error, no panic, nothing measured.
    let down = cli(&["cluster".as_ref(), "down".as_ref(), "--dir".as_ref(), dir])?;
    assert!(
        down.status.success(),
        "cluster down: {}",
        text(&down.stderr)
    );
    let stopped = temp.path().join("stopped");
    let o = run(&stopped)?;
    let err = text(&o.stderr);
    assert!(!o.status.success());
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("is not running: start it with `dealer-free-sis cluster up --dir"),
        "{err}"
    );
    assert!(!stopped.join("cluster_stages.csv").exists());
    Ok(())
}

/// `cluster_bytes.csv`'s rows: (stage, kind, direction, sim (messages, bytes) if any,
/// cluster (messages, bytes)).
type ByteRow = (String, String, String, Option<(u64, u64)>, (u64, u64));

fn read_bytes_csv(path: &Path) -> Result<Vec<ByteRow>, Box<dyn std::error::Error>> {
    let body = std::fs::read_to_string(path)?;
    let mut lines = body.lines();
    assert_eq!(
        lines.next(),
        Some("stage,kind,direction,sim_messages,sim_bytes,cluster_messages,cluster_bytes,equal")
    );
    let mut rows = Vec::new();
    for l in lines {
        let f: Vec<&str> = l.split(',').collect();
        if f.len() != 8 {
            return Err(format!("short line {l:?}").into());
        }
        let sim = if f[3].is_empty() {
            None
        } else {
            Some((f[3].parse()?, f[4].parse()?))
        };
        rows.push((
            f[0].to_owned(),
            f[1].to_owned(),
            f[2].to_owned(),
            sim,
            (f[5].parse()?, f[6].parse()?),
        ));
    }
    Ok(rows)
}

#[test]
fn the_simulator_counts_the_bytes_a_five_node_cluster_sends() -> TestResult {
    let temp = tempfile::tempdir()?;
    let images = temp.path().join("images");
    std::fs::create_dir_all(&images)?;
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images");
    for name in IMAGES {
        std::fs::copy(fixtures.join(name), images.join(name))?;
    }
    let cluster = Cluster {
        dir: temp.path().join("cluster"),
    };
    let dir = cluster.dir.as_os_str();
    let up = cli(&[
        "cluster".as_ref(),
        "up".as_ref(),
        "--dir".as_ref(),
        dir,
        "--nodes".as_ref(),
        "5".as_ref(),
        "--threshold".as_ref(),
        "3".as_ref(),
    ])?;
    assert!(up.status.success(), "cluster up: {}", text(&up.stderr));
    let out = temp.path().join("out");
    let o = cli(&[
        "experiment".as_ref(),
        "--cluster".as_ref(),
        dir,
        "--images".as_ref(),
        images.as_os_str(),
        "--cluster-queries".as_ref(),
        "2".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ])?;
    assert!(o.status.success(), "experiment: {}", text(&o.stderr));
    let rows = read_bytes_csv(&out.join("cluster_bytes.csv"))?;
    // Every protocol message kind: the same messages and bytes on both sides.
    for (stage, kind, direction, sim, cluster) in &rows {
        if let Some(sim) = sim {
            assert_eq!(sim, cluster, "{stage} {kind} {direction}");
        }
    }
    let has = |stage: &str, kind: &str, direction: &str| {
        rows.iter()
            .find(|r| r.0 == stage && r.1 == kind && r.2 == direction)
            .is_some_and(|r| r.4.0 > 0)
    };
    for (stage, kind, direction) in [
        ("Stage-1", "token-request", "sent"),
        ("Stage-1", "oprf-partial-evaluation", "received"),
        ("Stage-1", "stored-record", "sent"),
        ("Stage-2", "candidate-request", "sent"),
        ("Stage-2", "candidate-response", "received"),
        ("Stage-2", "mask-order", "sent"),
        ("Stage-2", "mask-commitment", "received"),
        ("Stage-2", "mask-commitment", "sent"),
        ("Stage-2", "sealed-mask-deal", "received"),
        ("Stage-2", "sealed-mask-deal", "sent"),
        ("Stage-2", "mask-check", "received"),
        ("Stage-2", "mask-check", "sent"),
        ("Stage-2", "distance-request", "sent"),
        ("Stage-2", "query-check", "received"),
        ("Stage-2", "query-checks", "sent"),
        ("Stage-2", "distance-response", "received"),
        ("Stage-1", "grpc-bodies", "both"),
        ("Stage-2", "grpc-bodies", "both"),
    ] {
        assert!(
            has(stage, kind, direction),
            "no {stage} {kind} {direction} row"
        );
    }
    // Four images, one token request each to t = 3 nodes; one record per node and image.
    let get = |kind: &str, direction: &str| {
        rows.iter()
            .find(|r| r.0 == "Stage-1" && r.1 == kind && r.2 == direction)
            .map(|r| r.4.0)
    };
    assert_eq!(get("token-request", "sent"), Some(4 * 3));
    assert_eq!(get("stored-record", "sent"), Some(4 * 5));
    Ok(())
}
