//! A node's Prometheus metrics over real node processes: `metrics_addr` in `node.toml` serves
//! them, `node run --metrics-addr` overrides it, the counters of the methods a status, an
//! ingest and a search call grow, the stored-images gauge is the number ingested, the
//! latency histograms have their buckets, any other path is 404, and nothing of the client
//! (its certificate's fingerprint, its name) or of the images (file names, ids) is in them.
//! Scraped with a plain `std::net::TcpStream`; every process is bounded by a timeout.

#[path = "support/cluster.rs"]
mod cluster;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cluster::{Cluster, TestResult, fixture, text};
use dealer_free_node::cluster::free_port;

const EXE: &str = env!("CARGO_BIN_EXE_dealer-free-sis");

/// `GET path` on `address`: the status code and the body.
fn get(address: SocketAddr, path: &str) -> TestResult<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(15)))?;
    s.set_write_timeout(Some(Duration::from_secs(15)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer)?;
    let answer = String::from_utf8(answer)?;
    let (head, body) = answer.split_once("\r\n\r\n").ok_or("no end of head")?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status line: {head}"))?;
    Ok((code, body.to_owned()))
}

/// `GET /metrics` once the listener answers (within 20 s).
fn scrape(address: SocketAddr) -> TestResult<String> {
    let start = Instant::now();
    loop {
        match get(address, "/metrics") {
            Ok((200, body)) => return Ok(body),
            Ok((code, body)) => return Err(format!("/metrics: {code} {body}").into()),
            Err(e) if start.elapsed() > Duration::from_secs(20) => {
                return Err(format!("no metrics at {address}: {e}").into());
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The value of the sample `series` (name and labels exactly as written), if present.
fn value(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn requests(body: &str, method: &str) -> f64 {
    value(
        body,
        &format!("dealer_free_sis_rpc_requests_total{{method=\"{method}\",code=\"OK\"}}"),
    )
    .unwrap_or(0.0)
}

/// A node started by hand, in its own process group under `timeout`: stopped (SIGTERM, then
/// SIGKILL to the group) when the test ends.
struct Node(Child);

impl Node {
    fn start(config: &Path, metrics: SocketAddr, log: &Path) -> TestResult<Node> {
        use std::os::unix::process::CommandExt;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let child = Command::new("timeout")
            .args(["-s", "KILL", "300", EXE, "node", "run", "--config"])
            .arg(config)
            .arg("--metrics-addr")
            .arg(metrics.to_string())
            .env_remove(dealer_free_node::failpoint::VAR)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()?;
        Ok(Node(child))
    }

    fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([sig, "--", &format!("-{}", self.0.id())])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.signal("-TERM");
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.signal("-KILL");
        let _ = self.0.wait();
    }
}

/// Sets `metrics_addr` in node `id`'s config.
fn set_metrics_addr(c: &Cluster, id: u8, address: &str) -> TestResult {
    let path = c.node_dir(id).join("node.toml");
    let mut config: toml::Table = std::fs::read_to_string(&path)?.parse()?;
    config.insert("metrics_addr".into(), toml::Value::String(address.into()));
    std::fs::write(&path, toml::to_string(&config)?)?;
    Ok(())
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[test]
fn a_node_serves_its_metrics_and_they_follow_what_it_answered() -> TestResult {
    let c = Cluster::new()?;
    c.ok(&["cluster", "init", "--nodes", "3", "--threshold", "2"])?;
    // Node 2 serves its metrics at the config's address when the cluster starts it.
    let from_config = loopback(free_port()?);
    set_metrics_addr(&c, 2, &from_config.to_string())?;
    c.ok(&["cluster", "up", "--wait", "20"])?;
    let first = scrape(from_config)?;
    assert!(
        first.contains("dealer_free_sis_node_info{node=\"2\""),
        "{first}"
    );
    // Started by hand with --metrics-addr, it serves them there and not at the config's.
    assert!(c.folder().stop_node(2, Duration::from_secs(5)));
    let from_flag = loopback(free_port()?);
    let _node = Node::start(
        &c.node_dir(2).join("node.toml"),
        from_flag,
        &c.node_dir(2).join("node.log"),
    )?;
    let before = scrape(from_flag)?;
    let start = Instant::now();
    while c.node_status(2)?["up"] != true {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "node 2 did not come up: {}",
            c.folder().log_tail(2, 20)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        TcpStream::connect_timeout(&from_config, Duration::from_secs(2)).is_err(),
        "the config's address is served although the flag overrides it"
    );
    let before = scrape(from_flag).unwrap_or(before);

    // A status, an ingest of two images, a search, while scrapers that never send a request
    // hold every connection of the metrics listener: the gRPC service does not notice them.
    let stuck: Vec<TcpStream> = (0..dealer_free_node::metrics::http::MAX_CONNECTIONS)
        .filter_map(|_| TcpStream::connect_timeout(&from_flag, Duration::from_secs(2)).ok())
        .collect();
    c.ok(&["cluster", "status"])?;
    let images = [fixture("lxqt_drop.png"), fixture("kpa_skagen_2.png")];
    let (ids, out) = c.ingest(&images)?;
    assert!(out.status.success(), "ingest: {}", text(&out.stderr));
    assert_eq!(ids.len(), 2, "{}", text(&out.stdout));
    let found = c.cli(&["search", &images[0].display().to_string(), "--json"])?;
    assert!(found.status.success(), "search: {}", text(&found.stderr));
    drop(stuck);
    let after = scrape(from_flag)?;

    for method in [
        "Health",
        "AuditHead",
        "EvaluateTokens",
        "StoreRecords",
        "Candidates",
    ] {
        assert!(
            requests(&after, method) > requests(&before, method),
            "{method}: {} then {}\n{after}",
            requests(&before, method),
            requests(&after, method)
        );
    }
    assert_eq!(value(&before, "dealer_free_sis_stored_images"), Some(0.0));
    assert_eq!(value(&after, "dealer_free_sis_stored_images"), Some(2.0));
    assert!(
        value(&after, "dealer_free_sis_audit_entries")
            > value(&before, "dealer_free_sis_audit_entries"),
        "the audit head did not advance:\n{after}"
    );
    assert_eq!(value(&after, "dealer_free_sis_has_key"), Some(1.0));
    assert_eq!(value(&after, "dealer_free_sis_healthy"), Some(1.0));
    // The latency histogram of a method used has its buckets, +Inf holding every request.
    let stored = value(
        &after,
        "dealer_free_sis_rpc_duration_seconds_count{method=\"StoreRecords\"}",
    )
    .ok_or("no StoreRecords histogram")?;
    assert!(stored >= 1.0);
    assert_eq!(
        value(
            &after,
            "dealer_free_sis_rpc_duration_seconds_bucket{le=\"+Inf\",method=\"StoreRecords\"}"
        ),
        Some(stored)
    );
    assert!(
        after.contains(
            "dealer_free_sis_rpc_duration_seconds_bucket{le=\"0.005\",method=\"Health\"}"
        ),
        "{after}"
    );
    assert!(
        after.contains("dealer_free_sis_refusals_total{reason=\"busy\"}"),
        "{after}"
    );

    // Nothing of the client or of the images.
    let config = std::fs::read_to_string(c.node_dir(2).join("node.toml"))?;
    let fingerprints: Vec<String> = config
        .lines()
        .filter_map(|l| l.split_once("sha256:"))
        .map(|(_, hex)| hex.trim_end_matches('"').to_lowercase())
        .collect();
    assert!(!fingerprints.is_empty(), "{config}");
    for f in &fingerprints {
        assert!(
            !after.to_lowercase().contains(f.as_str()),
            "fingerprint {f}"
        );
        assert!(
            !after.to_lowercase().contains(f.get(..16).unwrap_or(f)),
            "fingerprint {f}"
        );
    }
    for secret in [
        "=\"owner\"",
        "lxqt_drop",
        "kpa_skagen",
        ".png",
        "sha256",
        &c.dir.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(ids)
    {
        assert!(
            !after.contains(&secret),
            "{secret} in the metrics:\n{after}"
        );
    }

    // Any other path is not found; the listener answers nothing else.
    let (code, _) = get(from_flag, "/")?;
    assert_eq!(code, 404);
    let (code, _) = get(from_flag, "/metrics/../node.toml")?;
    assert_eq!(code, 404);
    Ok(())
}

#[test]
fn a_metrics_address_that_is_no_ip_and_port_is_a_usage_error() -> TestResult {
    let c = Cluster::new()?;
    c.ok(&["cluster", "init", "--nodes", "3", "--threshold", "2"])?;
    let config = c.node_dir(1).join("node.toml").display().to_string();
    let flag = c.run(&[
        "node",
        "run",
        "--config",
        &config,
        "--metrics-addr",
        "nowhere",
    ])?;
    assert_eq!(flag.status.code(), Some(2), "{}", text(&flag.stderr));
    assert!(
        text(&flag.stderr).contains("--metrics-addr"),
        "{}",
        text(&flag.stderr)
    );
    set_metrics_addr(&c, 1, "localhost:9100")?;
    let file = c.run(&["node", "run", "--config", &config])?;
    assert_eq!(file.status.code(), Some(2), "{}", text(&file.stderr));
    assert!(
        text(&file.stderr).contains("metrics_addr"),
        "{}",
        text(&file.stderr)
    );
    Ok(())
}
