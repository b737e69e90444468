//! A cluster folder and the node processes of a local cluster: `cluster init`, `up`,
//! `status`, `down`.
//!
//! ```text
//! DIR/cluster.toml                 name, t, n (what `init` created)
//! DIR/ca.pem, DIR/ca.key           the cluster CA of the clients (keep ca.key offline once set up)
//! DIR/manifest.json                the enrolment manifest: every node's pinned public keys
//! DIR/client.toml                  the client profile: where the nodes are, its certificate
//! DIR/client.pem, DIR/client.key   the client's certificate
//! DIR/cluster-key.json             the public key state after the DKG (written by `up`)
//! DIR/catalog.json                 the client's own id → file record (never sent to nodes)
//! DIR/node-<i>/node.toml           node i's config
//! DIR/node-<i>/node.pem, node.key  its self-signed certificate and key (`node init`)
//! DIR/node-<i>/at-rest.key         the key sealing its secrets (`node init`)
//! DIR/node-<i>/enrolment.json      its public enrolment record (`node init`)
//! DIR/node-<i>/manifest.json       the manifest it approved (`node approve`)
//! DIR/clients/<name>/              another client's profile, certificate and key (`add-client`)
//! DIR/node-<i>/data/               its store, sealed secrets and audit log
//! DIR/node-<i>/node.log, node.pid  its log and process id while running
//! ```
//!
//! Every private key (`ca.key`, `client.key`, `node.key`, `at-rest.key`, `secrets.bin`) is
//! created with mode `0600` before its first byte is written ([`crate::files`]). A node's
//! private keys are made by `node init` inside its own folder ([`crate::enrol::init_node`])
//! and no file outside that folder holds them: `init` only collects the public records into
//! the manifest and has each node approve it, as operators on separate machines would.
//!
//! Every node's config names its own listen address and its peers, so the same files work
//! for nodes on different machines (docs/deployment.md): copy `node-<i>/` and `ca.pem` to
//! machine i and change the addresses.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use phr_sis::NodeId;
use serde::{Deserialize, Serialize};

use crate::access::Role;
use crate::client::{ClientError, ClusterClient, ClusterKeyFile, DkgOutcome, ReplaceOutcome};
use crate::config::{
    AuthorizedClient, ClientProfile, ConfigError, Limits, NodeConfig, NodeEntry, Peer, TlsFiles,
    write_atomic, write_secret,
};
use crate::pki::{ClusterCa, PkiError};

mod add_client;
mod enrolment;
pub use add_client::AddedClient;

/// What [`ClusterDir::up`] did.
#[derive(Debug)]
pub struct UpOutcome {
    /// The DKG, if one ran.
    pub dkg: Option<DkgOutcome>,
    /// Nodes that did not answer within the wait, and why.
    pub absent: BTreeMap<NodeId, String>,
    /// Nodes that hold no key share: each joins by `cluster replace --node I`.
    pub without_key: Vec<NodeId>,
}

/// Errors of cluster management.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// Bad parameters or a folder in a state that does not allow it.
    #[error("{0}")]
    Usage(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A config file.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Certificates.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// The client failed (DKG, health checks).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Nodes did not come up.
    #[error("{0}")]
    Start(String),
    /// A node's keys or its approval of the manifest.
    #[error(transparent)]
    Enrol(#[from] crate::enrol::EnrolError),
    /// The enrolment manifest.
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ClusterError + '_ {
    move |source| ClusterError::Io {
        path: path.to_owned(),
        source,
    }
}

/// `DIR/cluster.toml`: what the cluster is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// The cluster's name (in its certificates).
    pub name: String,
    /// `t`.
    pub threshold: u8,
    /// `n`.
    pub nodes: u8,
}

/// What `init` is asked for.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// `n`.
    pub nodes: u8,
    /// `t`.
    pub threshold: u8,
    /// Ports `base_port + i` for node `i`; free loopback ports when `None`.
    pub base_port: Option<u16>,
    /// The address nodes listen on (default loopback).
    pub host: String,
    /// The nodes will run on other machines: write their configs but make no node keys and
    /// no manifest here; each node's operator runs `node init` on its machine and the owner
    /// builds the manifest from their records ([`ClusterDir::enrol_records`]).
    pub remote: bool,
}

/// Paths of a cluster folder.
#[derive(Debug, Clone)]
pub struct ClusterDir {
    /// The folder.
    pub dir: PathBuf,
    /// The client profile to use instead of `DIR/client.toml` (`--client`).
    pub client: Option<PathBuf>,
}

/// A free TCP port on the loopback interface (free when asked; bound by nobody).
///
/// # Errors
/// [`ClusterError::Io`].
pub fn free_port() -> Result<u16, ClusterError> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(io(Path::new("127.0.0.1:0")))?;
    Ok(l.local_addr().map_err(io(Path::new("127.0.0.1:0")))?.port())
}

fn port_free(address: &str) -> bool {
    TcpListener::bind(address).is_ok()
}

/// Whether process `pid` runs (a zombie, killed but not yet reaped, does not).
fn alive(pid: u32) -> bool {
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // `pid (comm) state …`: the state follows the last parenthesis.
        return stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X");
    }
    if Path::new("/proc/self").exists() {
        return false;
    }
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl ClusterDir {
    /// The cluster folder `dir`.
    #[must_use]
    pub fn new(dir: &Path) -> ClusterDir {
        ClusterDir {
            dir: dir.to_owned(),
            client: None,
        }
    }

    /// The same folder, its commands run as the client of the profile `profile` (one that
    /// `add-client` wrote) instead of `DIR/client.toml`.
    #[must_use]
    pub fn with_client(mut self, profile: Option<&Path>) -> ClusterDir {
        self.client = profile.map(Path::to_owned);
        self
    }

    /// `DIR/cluster.toml`.
    #[must_use]
    pub fn cluster_file(&self) -> PathBuf {
        self.dir.join("cluster.toml")
    }

    /// The client profile the commands use: `--client`'s, else `DIR/client.toml`.
    #[must_use]
    pub fn profile(&self) -> PathBuf {
        self.client
            .clone()
            .unwrap_or_else(|| self.dir.join("client.toml"))
    }

    /// `DIR/node-<i>`.
    #[must_use]
    pub fn node_dir(&self, id: u8) -> PathBuf {
        self.dir.join(format!("node-{id}"))
    }

    /// `DIR/node-<i>/node.toml`.
    #[must_use]
    pub fn node_config(&self, id: u8) -> PathBuf {
        self.node_dir(id).join("node.toml")
    }

    fn pid_file(&self, id: u8) -> PathBuf {
        self.node_dir(id).join("node.pid")
    }

    /// Whether `init` ran here.
    #[must_use]
    pub fn exists(&self) -> bool {
        self.cluster_file().exists()
    }

    /// Reads `DIR/cluster.toml`.
    ///
    /// # Errors
    /// [`ClusterError::Usage`] if the folder is no cluster.
    pub fn read(&self) -> Result<ClusterFile, ClusterError> {
        let path = self.cluster_file();
        let text = std::fs::read_to_string(&path).map_err(|_| {
            ClusterError::Usage(format!(
                "{} is no cluster folder (no cluster.toml): run `dealer-free-sis cluster init --dir {}`",
                self.dir.display(),
                self.dir.display()
            ))
        })?;
        toml::from_str(&text).map_err(|e| {
            ClusterError::Config(ConfigError::Parse {
                path,
                message: e.to_string(),
            })
        })
    }

    /// Creates the cluster: the CA and the client's certificate and profile, every node's
    /// config; unless `options.remote`, `node init` in every node folder (its keys made
    /// there), the manifest of their public records and its approval in every node folder.
    /// Refuses a folder that already holds a cluster.
    ///
    /// # Errors
    /// [`ClusterError::Usage`] for bad parameters or an existing cluster.
    pub fn init(&self, options: &InitOptions) -> Result<ClusterFile, ClusterError> {
        let threshold = phr_sis::Threshold::new(options.threshold, options.nodes).map_err(|e| {
            ClusterError::Usage(format!(
                "--threshold {} --nodes {}: {e}",
                options.threshold, options.nodes
            ))
        })?;
        if threshold.t() < 2 {
            return Err(ClusterError::Usage(
                "--threshold must be at least 2: with t = 1 every node would hold the whole key"
                    .into(),
            ));
        }
        if usize::from(threshold.search_quorum()) > usize::from(threshold.n()) {
            return Err(ClusterError::Usage(format!(
                "secure search needs 2t − 1 = {} nodes, --nodes is {}",
                threshold.search_quorum(),
                threshold.n()
            )));
        }
        if self.exists() {
            return Err(ClusterError::Usage(format!(
                "{} already holds a cluster (cluster.toml); use another --dir or remove it",
                self.dir.display()
            )));
        }
        if let Some(base) = options.base_port
            && u32::from(base) + u32::from(options.nodes) > 65_535
        {
            return Err(ClusterError::Usage(format!(
                "--base-port {base} leaves no room for {} nodes",
                options.nodes
            )));
        }
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        // Private keys from here on: git takes nothing of the folder.
        crate::files::ignore_folder(&self.dir).map_err(io(&self.dir))?;
        let name = self
            .dir
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "cluster".to_owned());
        let ca = ClusterCa::generate(&name)?;
        write_atomic(&self.dir.join("ca.pem"), ca.cert_pem().as_bytes())?;
        write_secret(&self.dir.join("ca.key"), ca.key_pem().as_bytes())?;
        let client = ca.issue_client("owner")?;
        write_atomic(&self.dir.join("client.pem"), client.cert_pem.as_bytes())?;
        write_secret(&self.dir.join("client.key"), client.key_pem.as_bytes())?;
        let mut addresses = BTreeMap::new();
        for id in 1..=options.nodes {
            let port = match options.base_port {
                Some(b) => b + u16::from(id),
                None => free_port()?,
            };
            addresses.insert(id, format!("{}:{port}", options.host));
        }
        let mut records = Vec::new();
        for id in 1..=options.nodes {
            let dir = self.node_dir(id);
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
            if !options.remote {
                records.push(self.init_node(
                    id,
                    addresses.get(&id).map_or("", String::as_str),
                    false,
                )?);
            }
            let config = NodeConfig {
                id,
                listen: addresses.get(&id).cloned().unwrap_or_default(),
                data_dir: PathBuf::from("data"),
                threshold: options.threshold,
                nodes: options.nodes,
                key_file: Some(PathBuf::from("at-rest.key")),
                key_env: None,
                manifest: PathBuf::from(crate::enrol::MANIFEST_FILE),
                metrics_addr: None,
                tls: TlsFiles {
                    ca: PathBuf::from("../ca.pem"),
                    cert: PathBuf::from("node.pem"),
                    key: PathBuf::from("node.key"),
                },
                clients: vec![AuthorizedClient {
                    name: "owner".into(),
                    fingerprint: client.fingerprint.clone(),
                    role: Role::Admin,
                }],
                limits: Limits::default(),
                peers: addresses
                    .iter()
                    .filter(|(p, _)| **p != id)
                    .map(|(p, a)| Peer {
                        id: *p,
                        address: a.clone(),
                    })
                    .collect(),
            };
            config.save(&self.node_config(id))?;
        }
        let profile = ClientProfile {
            threshold: options.threshold,
            nodes: addresses
                .iter()
                .map(|(id, address)| NodeEntry {
                    id: *id,
                    address: address.clone(),
                })
                .collect(),
            tls: TlsFiles {
                ca: PathBuf::from("ca.pem"),
                cert: PathBuf::from("client.pem"),
                key: PathBuf::from("client.key"),
            },
            timeout_ms: 10_000,
            retries: 2,
            key_file: PathBuf::from("cluster-key.json"),
            catalog: PathBuf::from("catalog.json"),
            manifest: PathBuf::from("manifest.json"),
        };
        profile.save(&self.dir.join("client.toml"))?;
        if !options.remote {
            self.enrol(threshold, records)?;
        }
        let file = ClusterFile {
            name,
            threshold: options.threshold,
            nodes: options.nodes,
        };
        let text = toml::to_string(&file).map_err(|e| ClusterError::Usage(e.to_string()))?;
        // Written last: a folder with cluster.toml is a complete cluster.
        write_atomic(&self.cluster_file(), text.as_bytes())?;
        Ok(file)
    }

    /// The running node's process id, if its pid file names a live process.
    #[must_use]
    pub fn running_pid(&self, id: u8) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.pid_file(id))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        alive(pid).then_some(pid)
    }

    /// Starts every node that is not running (`exe node run --config …`, in the background,
    /// logging to `node-<i>/node.log`) unless `start` is false (nodes that run elsewhere),
    /// waits up to `wait` for them to answer (less when every silent local node has exited),
    /// and runs the DKG among those that answered if the cluster has no key yet — when they
    /// are at least `min(n, 2t − 1)`; the others are named and join later by `cluster
    /// replace`. A key file whose commit was interrupted is committed on the nodes still
    /// holding it. A node whose port is taken by another program gets a new free port (its
    /// config and the client profile are updated), unless ports were fixed.
    ///
    /// # Errors
    /// [`ClusterError::Start`] if too few nodes answer or the cluster is in a mixed state
    /// (some nodes hold a key, fewer than `t`); the DKG's errors.
    pub async fn up(
        &self,
        exe: &Path,
        wait: Duration,
        start: bool,
    ) -> Result<UpOutcome, ClusterError> {
        let file = self.read()?;
        for id in 1..=file.nodes {
            if start && self.running_pid(id).is_none() {
                self.spawn(exe, id)?;
            }
        }
        let client = ClusterClient::open(&self.profile())?;
        let absent = self.wait_some(&client, wait, start).await;
        let t = usize::from(file.threshold);
        let answering: Vec<NodeId> = client
            .node_ids()
            .into_iter()
            .filter(|id| !absent.contains_key(id))
            .collect();
        let key_file = client.profile().raw.key_file.clone();
        let mut keyed = self.keyed(&client).await;
        if let Some(key) = key_file
            .exists()
            .then(|| ClusterKeyFile::load_from(&key_file))
            .transpose()?
        {
            // Complete an interrupted DKG commit on the nodes that still hold the key.
            let unkeyed: Vec<NodeId> = answering
                .iter()
                .filter(|id| !keyed.contains(id))
                .copied()
                .collect();
            if !unkeyed.is_empty()
                && let Some(transcript) = crate::unhex(&key.transcript)
            {
                let _ = client.commit_dkg(&unkeyed, &transcript).await;
                keyed = self.keyed(&client).await;
            }
            if keyed.len() >= t {
                let without_key = client
                    .node_ids()
                    .into_iter()
                    .filter(|id| !keyed.contains(id))
                    .collect();
                return Ok(UpOutcome {
                    dkg: None,
                    absent,
                    without_key,
                });
            }
        }
        if !keyed.is_empty() {
            return Err(ClusterError::Start(format!(
                "nodes {keyed:?} hold a key share, fewer than t = {t}, and {} has {}: the cluster is \
                 in a mixed state",
                self.dir.display(),
                if key_file.exists() {
                    "a key file"
                } else {
                    "no key file"
                }
            )));
        }
        let mut label = format!("dealer-free-sis cluster {} ", file.name).into_bytes();
        let mut nonce = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut nonce);
        label.extend_from_slice(crate::hex(&nonce).as_bytes());
        let outcome = client.run_dkg(&label, &answering).await?;
        let without_key = outcome.without_key.clone();
        Ok(UpOutcome {
            dkg: Some(outcome),
            absent,
            without_key,
        })
    }

    /// The nodes that answer a health check holding a key share.
    async fn keyed(&self, client: &ClusterClient) -> Vec<NodeId> {
        let status = client.status().await;
        status
            .iter()
            .filter(|s| s.health.as_ref().is_ok_and(|h| h.has_key))
            .filter_map(|s| NodeId::new(s.id).ok())
            .collect()
    }

    /// Waits until every node answers a health check, at most `wait`, and less when every
    /// node that does not answer is a local process that exited; returns the nodes that did
    /// not answer, and why.
    async fn wait_some(
        &self,
        client: &ClusterClient,
        wait: Duration,
        local: bool,
    ) -> BTreeMap<NodeId, String> {
        let start = Instant::now();
        loop {
            let status = client.status().await;
            let down: BTreeMap<NodeId, String> = status
                .iter()
                .filter_map(|s| {
                    let why = s.health.as_ref().err()?;
                    let id = NodeId::new(s.id).ok()?;
                    let exited = local && self.running_pid(s.id).is_none();
                    Some((
                        id,
                        if exited {
                            format!(
                                "exited (log: {})",
                                self.node_dir(s.id).join("node.log").display()
                            )
                        } else {
                            why.clone()
                        },
                    ))
                })
                .collect();
            let all_exited = local && down.keys().all(|id| self.running_pid(id.get()).is_none());
            if down.is_empty() || all_exited || start.elapsed() > wait {
                return down;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Starts node `id` in the background (`exe node run --config …`, logging to
    /// `node-<i>/node.log`), moving it to a free port if its own is taken.
    fn spawn(&self, exe: &Path, id: u8) -> Result<(), ClusterError> {
        let config_path = self.node_config(id);
        let mut config: NodeConfig = {
            let text = std::fs::read_to_string(&config_path).map_err(io(&config_path))?;
            toml::from_str(&text).map_err(|e| ConfigError::Parse {
                path: config_path.clone(),
                message: e.to_string(),
            })?
        };
        if !port_free(&config.listen) {
            let host = config
                .listen
                .rsplit_once(':')
                .map_or("127.0.0.1", |(h, _)| h)
                .to_owned();
            let new = format!("{host}:{}", free_port()?);
            self.move_node(id, &config.listen, &new)?;
            config.listen = new;
            config.save(&config_path)?;
        }
        // The node writes its log itself, rotated by size; what else reaches its standard
        // output and error (a crash's last words) goes to the same file.
        let log_path = self.node_dir(id).join("node.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io(&log_path))?;
        let err = log.try_clone().map_err(io(&log_path))?;
        let mut command = Command::new(exe);
        command
            .args(["node", "run", "--config"])
            .arg(&config_path)
            .arg("--log")
            .arg(&log_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            command.process_group(0);
        }
        let child = command.spawn().map_err(io(exe))?;
        write_atomic(&self.pid_file(id), child.id().to_string().as_bytes())?;
        Ok(())
    }

    /// Replaces node `id` by a fresh one: stops it, moves its data folder aside (to
    /// `data.replaced-<unix seconds>`, nothing is deleted), starts it with new identity keys
    /// and an empty store, reshares the key to it from the other nodes and repairs its
    /// records ([`ClusterClient::replace_node`]). The other nodes keep running throughout.
    ///
    /// # Errors
    /// [`ClusterError::Usage`] for a node the cluster does not have; start errors as
    /// [`ClusterDir::up`]; the resharing's and repair's errors.
    pub async fn replace(
        &self,
        exe: &Path,
        id: u8,
        wait: Duration,
    ) -> Result<ReplaceOutcome, ClusterError> {
        let file = self.read()?;
        if id == 0 || id > file.nodes {
            return Err(ClusterError::Usage(format!(
                "the cluster has nodes 1 to {}, not {id}",
                file.nodes
            )));
        }
        let _ = self.stop_node(id, Duration::from_secs(5));
        let config_path = self.node_config(id);
        let config: NodeConfig = {
            let text = std::fs::read_to_string(&config_path).map_err(io(&config_path))?;
            toml::from_str(&text).map_err(|e| ConfigError::Parse {
                path: config_path.clone(),
                message: e.to_string(),
            })?
        };
        let data = if config.data_dir.is_absolute() {
            config.data_dir.clone()
        } else {
            self.node_dir(id).join(&config.data_dir)
        };
        if data.exists() {
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let aside = data.with_file_name(format!("data.replaced-{stamp}"));
            std::fs::rename(&data, &aside).map_err(io(&data))?;
        }
        // New keys made in the node's folder, the manifest changed for this id alone and
        // approved in every node's folder; the old certificate's fingerprint is gone.
        self.reenrol(id, &config.listen)?;
        self.spawn(exe, id)?;
        let client = ClusterClient::open(&self.profile())?;
        // The fresh node must answer; another node that is down is the resharing's concern
        // (one that holds the key must take part, one without is left out).
        let absent = self.wait_some(&client, wait, true).await;
        if let Some(why) = NodeId::new(id).ok().and_then(|n| absent.get(&n)) {
            return Err(ClusterError::Start(format!(
                "node {id} did not answer within {} s: {why}; the end of its log:\n{}",
                wait.as_secs(),
                self.log_tail(id, 15)
            )));
        }
        Ok(client
            .replace_node(NodeId::new(id).map_err(|e| ClusterError::Usage(e.to_string()))?)
            .await?)
    }

    /// Moves node `id` from address `old` to `new` in every client profile of the folder.
    fn move_node(&self, id: u8, old: &str, new: &str) -> Result<(), ClusterError> {
        let mut paths = self.profiles();
        if let Some(p) = &self.client
            && !paths.contains(p)
        {
            paths.push(p.clone());
        }
        for path in paths {
            let mut profile: ClientProfile = {
                let text = std::fs::read_to_string(&path).map_err(io(&path))?;
                toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: path.clone(),
                    message: e.to_string(),
                })?
            };
            for n in &mut profile.nodes {
                if n.id == id && n.address == old {
                    n.address = new.to_owned();
                }
            }
            profile.save(&path)?;
        }
        Ok(())
    }

    /// The last `lines` lines of node `id`'s log.
    #[must_use]
    pub fn log_tail(&self, id: u8, lines: usize) -> String {
        let text = std::fs::read_to_string(self.node_dir(id).join("node.log")).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Stops node `id` if it runs (SIGTERM, then SIGKILL after `grace`); whether it ran.
    #[must_use]
    pub fn stop_node(&self, id: u8, grace: Duration) -> bool {
        let stopped = match self.running_pid(id) {
            Some(pid) => {
                signal(pid, "-TERM");
                let start = Instant::now();
                while alive(pid) && start.elapsed() < grace {
                    std::thread::sleep(Duration::from_millis(20));
                }
                if alive(pid) {
                    signal(pid, "-KILL");
                    while alive(pid) && start.elapsed() < grace + Duration::from_secs(5) {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
                true
            }
            None => false,
        };
        let _ = std::fs::remove_file(self.pid_file(id));
        stopped
    }

    /// Stops every running node (SIGTERM, then SIGKILL after `grace`); returns the ids stopped.
    ///
    /// # Errors
    /// [`ClusterError::Usage`] if the folder is no cluster.
    pub fn down(&self, grace: Duration) -> Result<Vec<u8>, ClusterError> {
        let file = self.read()?;
        Ok((1..=file.nodes)
            .filter(|id| self.stop_node(*id, grace))
            .collect())
    }
}
