//! A local cluster driven through the CLI, for the tests over real node processes: a
//! temporary folder whose nodes are stopped when the test ends (pass or fail), every call
//! killed after a time limit, failpoints passed to the nodes a call starts.
#![allow(dead_code)] // each test file uses a subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use dealer_free_node::cluster::ClusterDir;
use dealer_free_node::failpoint::VAR;

/// The result of a test step.
pub(crate) type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

const EXE: &str = env!("CARGO_BIN_EXE_dealer-free-sis");

/// The program run: this build's, or another build named by `DEALER_FREE_SIS_TEST_EXE` (to
/// run an attack test against an older build and see the attack succeed there).
fn exe() -> String {
    std::env::var("DEALER_FREE_SIS_TEST_EXE").unwrap_or_else(|_| EXE.to_owned())
}
/// No CLI call may take longer.
const CALL_LIMIT: Duration = Duration::from_secs(90);

/// A cluster folder whose nodes are stopped when the test ends.
pub(crate) struct Cluster {
    _temp: tempfile::TempDir,
    /// The cluster folder.
    pub(crate) dir: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = ClusterDir::new(&self.dir).down(Duration::from_secs(5));
    }
}

/// Fresh request metadata for a raw call.
pub(crate) fn meta() -> Option<dealer_free_node::proto::RequestMeta> {
    Some(dealer_free_node::proto::RequestMeta {
        request_id: (0..16).map(|_| rand::random::<u8>()).collect(),
        unix_ms: dealer_free_node::replay::unix_ms(),
    })
}

/// Output bytes as text.
pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A fixture image of the repository.
pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/images")
        .join(name)
}

impl Cluster {
    /// A folder for a new cluster (nothing created yet).
    pub(crate) fn new() -> TestResult<Cluster> {
        let temp = tempfile::tempdir()?;
        let dir = temp.path().join("cluster");
        Ok(Cluster { _temp: temp, dir })
    }

    /// Runs the CLI with `--dir`/`--cluster` pointing here (after the subcommand words), with
    /// `failpoints` in the environment (inherited by the nodes it starts), killed after the
    /// call limit.
    pub(crate) fn cli_with(&self, args: &[&str], failpoints: Option<&str>) -> TestResult<Output> {
        let mut command = Command::new("timeout");
        command.args(["-s", "KILL", &CALL_LIMIT.as_secs().to_string(), &exe()]);
        let words = if args.first() == Some(&"cluster") {
            2
        } else {
            1
        };
        let (head, tail) = args.split_at(words.min(args.len()));
        command.args(head);
        command.arg(if words == 2 { "--dir" } else { "--cluster" });
        command.arg(&self.dir);
        command.args(tail);
        command.env_remove(VAR);
        if let Some(f) = failpoints {
            command.env(VAR, f);
        }
        Ok(command.stdin(Stdio::null()).output()?)
    }

    /// Runs the CLI with `args` as given (no folder added), killed after the call limit.
    pub(crate) fn run(&self, args: &[&str]) -> TestResult<Output> {
        let mut command = Command::new("timeout");
        command.args(["-s", "KILL", &CALL_LIMIT.as_secs().to_string(), &exe()]);
        command.args(args).env_remove(VAR);
        Ok(command.stdin(Stdio::null()).output()?)
    }

    /// [`Cluster::cli_with`] without failpoints.
    pub(crate) fn cli(&self, args: &[&str]) -> TestResult<Output> {
        self.cli_with(args, None)
    }

    /// [`Cluster::cli`], which must succeed.
    pub(crate) fn ok(&self, args: &[&str]) -> TestResult<Output> {
        let out = self.cli(args)?;
        if !out.status.success() {
            return Err(format!("{args:?}: {}", text(&out.stderr)).into());
        }
        Ok(out)
    }

    /// The cluster folder's helper.
    pub(crate) fn folder(&self) -> ClusterDir {
        ClusterDir::new(&self.dir)
    }

    /// Node `id`'s folder.
    pub(crate) fn node_dir(&self, id: u8) -> PathBuf {
        self.dir.join(format!("node-{id}"))
    }

    /// Node `id`'s data folder.
    pub(crate) fn data_dir(&self, id: u8) -> PathBuf {
        self.node_dir(id).join("data")
    }

    /// Stops node `id` (if it runs) and starts the stopped nodes again with `failpoints`.
    pub(crate) fn restart(&self, id: u8, failpoints: Option<&str>) -> TestResult {
        let _ = self.folder().stop_node(id, Duration::from_secs(5));
        let out = self.cli_with(&["cluster", "up", "--wait", "20"], failpoints)?;
        if !out.status.success() {
            return Err(format!("restart: {}", text(&out.stderr)).into());
        }
        Ok(())
    }

    /// Waits until node `id`'s process is gone (it aborted at a failpoint).
    pub(crate) fn wait_exit(&self, id: u8) {
        let start = std::time::Instant::now();
        while self.folder().running_pid(id).is_some() && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `cluster status --json`'s per-node objects.
    pub(crate) fn status(&self) -> TestResult<Vec<serde_json::Value>> {
        let out = self.cli(&["cluster", "status", "--json"])?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        Ok(v["node_status"].as_array().cloned().unwrap_or_default())
    }

    /// Node `id`'s object in `cluster status --json`.
    pub(crate) fn node_status(&self, id: u8) -> TestResult<serde_json::Value> {
        self.status()?
            .into_iter()
            .find(|s| s["id"] == id)
            .ok_or_else(|| format!("no status of node {id}").into())
    }

    /// Ingests `images` in one batch; returns the ids printed (stored on every node) and the
    /// output.
    pub(crate) fn ingest(&self, images: &[PathBuf]) -> TestResult<(Vec<String>, Output)> {
        let mut args = vec!["ingest".to_owned()];
        args.extend(images.iter().map(|p| p.display().to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.cli(&args)?;
        let ids = text(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .collect();
        Ok((ids, out))
    }

    /// Gets image `id` and checks it is `original` byte for byte.
    pub(crate) fn get_same(&self, id: &str, original: &Path) -> TestResult {
        let target = self.dir.join(format!("got-{id}"));
        let got = self.ok(&["get", id, "-o", &target.display().to_string()])?;
        drop(got);
        if std::fs::read(&target)? != std::fs::read(original)? {
            return Err(format!("{id} came back other than {}", original.display()).into());
        }
        Ok(())
    }

    /// Sets `key = value` in `[limits]` of node `id`'s config (the node reads it at start).
    pub(crate) fn set_limit(&self, id: u8, key: &str, value: i64) -> TestResult {
        let path = self.node_dir(id).join("node.toml");
        let mut config: toml::Table = std::fs::read_to_string(&path)?.parse()?;
        let limits = config
            .entry("limits")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(t) = limits {
            t.insert(key.to_owned(), toml::Value::Integer(value));
        }
        std::fs::write(&path, toml::to_string(&config)?)?;
        Ok(())
    }

    /// The cluster's `cluster-key.json`.
    pub(crate) fn key(&self) -> TestResult<serde_json::Value> {
        Ok(serde_json::from_slice(&std::fs::read(
            self.dir.join("cluster-key.json"),
        )?)?)
    }

    /// Ingests `image` (a node may be down: the exit code may say partial), then finds it by
    /// search at distance 0 and gets it back byte for byte.
    pub(crate) fn search_and_get(&self, image: &Path) -> TestResult {
        let out = self.cli(&["ingest", &image.display().to_string()])?;
        let stdout = text(&out.stdout);
        let id = stdout
            .lines()
            .find_map(|l| l.split_whitespace().next().filter(|_| l.contains("png")))
            .ok_or_else(|| format!("not ingested: {stdout} {}", text(&out.stderr)))?
            .to_owned();
        let found = self.cli(&["search", &image.display().to_string(), "--json"])?;
        assert!(found.status.success(), "search: {}", text(&found.stderr));
        let hits: serde_json::Value = serde_json::from_slice(&found.stdout)?;
        // The same image may be stored more than once (each ingest gives a new id).
        let hits = hits.as_array().ok_or("no hits")?;
        assert!(
            hits.iter()
                .any(|h| h["id"] == id.as_str() && h["distance"] == 0),
            "{id} not found: {hits:?}"
        );
        let target = self.dir.join("got.png");
        let got = self.cli(&["get", &id, "-o", &target.display().to_string()])?;
        assert!(got.status.success(), "get: {}", text(&got.stderr));
        assert_eq!(std::fs::read(&target)?, std::fs::read(image)?);
        Ok(())
    }
}
