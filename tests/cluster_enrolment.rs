//! Enrolment on a local cluster of real node processes: each node's keys made in its own
//! folder, the manifest every node and client pins, and what that stops — a coordinator
//! substituting a node's identity keys in the DKG, and a replaced node's old certificate
//! posing as the fresh node to the client. Every process is bounded by a timeout and every
//! node started here is stopped when its test ends.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dealer_free::identity::NodeKeys;
use dealer_free_node::cluster::ClusterDir;
use dealer_free_node::manifest::Manifest;
use dealer_free_node::proto;
use dealer_free_node::secrets::{AtRestKey, NodeSecrets};
use phr_sis::NodeId;
use sha2::{Digest, Sha256};
use tonic::Code;

#[path = "support/pinned.rs"]
mod pinned;
use pinned::Identity;

#[path = "support/process.rs"]
mod process;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const EXE: &str = env!("CARGO_BIN_EXE_dealer-free-sis");
const LIMIT: Duration = Duration::from_secs(90);

/// Runs the CLI with `args`, killed after [`LIMIT`].
fn cli(args: &[&str]) -> Result<Output, Box<dyn std::error::Error>> {
    process::run_bounded(EXE, args, LIMIT)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A cluster folder; the nodes `cluster up` started, and any started here, are stopped when
/// the test ends, pass or fail.
struct Cluster {
    _temp: tempfile::TempDir,
    dir: PathBuf,
    children: Vec<Child>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = ClusterDir::new(&self.dir).down(Duration::from_secs(5));
    }
}

impl Cluster {
    /// `cluster init` (`up`: `cluster up`) of 3 nodes, t = 2.
    fn new(up: bool) -> Result<Cluster, Box<dyn std::error::Error>> {
        let temp = tempfile::tempdir()?;
        let dir = temp.path().join("cluster");
        let c = Cluster {
            _temp: temp,
            dir,
            children: Vec::new(),
        };
        let verb = if up { "up" } else { "init" };
        let out = cli(&[
            "cluster",
            verb,
            "--dir",
            &c.arg(),
            "--nodes",
            "3",
            "--threshold",
            "2",
        ])?;
        assert!(out.status.success(), "cluster {verb}: {}", text(&out));
        Ok(c)
    }

    fn arg(&self) -> String {
        self.dir.display().to_string()
    }

    fn address(&self, node: u8) -> Result<String, Box<dyn std::error::Error>> {
        let profile = dealer_free_node::config::ClientProfile::load(&self.dir.join("client.toml"))?;
        Ok(profile
            .raw
            .nodes
            .iter()
            .find(|n| n.id == node)
            .ok_or("no such node")?
            .address
            .clone())
    }

    fn owner(&self) -> Result<Identity, std::io::Error> {
        Ok(Identity::from_pem(
            std::fs::read(self.dir.join("client.pem"))?,
            std::fs::read(self.dir.join("client.key"))?,
        ))
    }

    fn manifest(&self) -> Result<Manifest, Box<dyn std::error::Error>> {
        Ok(Manifest::load(&self.dir.join("manifest.json"))?)
    }

    /// Starts node `id` as a child process (`node run`), without the DKG `cluster up` runs.
    fn start(&mut self, id: u8) -> TestResult {
        let config = self.dir.join(format!("node-{id}/node.toml"));
        let log = std::fs::File::create(self.dir.join(format!("node-{id}/node.log")))?;
        self.children.push(
            Command::new(EXE)
                .args(["node", "run", "--config"])
                .arg(config)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()?,
        );
        Ok(())
    }

    fn audit(&self, node: u8) -> std::io::Result<String> {
        std::fs::read_to_string(self.dir.join(format!("node-{node}/data/audit.log")))
    }
}

fn meta() -> Option<proto::RequestMeta> {
    Some(proto::RequestMeta {
        request_id: (0..16).map(|_| rand::random::<u8>()).collect(),
        unix_ms: dealer_free_node::replay::unix_ms(),
    })
}

/// (a) The coordinator substitutes one node's identity keys in the DKG's participants: every
/// node refuses at step 0, naming that node, and starts no session; the honest DKG then runs.
#[test]
fn a_coordinator_substituting_a_nodes_identity_keys_is_refused_by_every_node() -> TestResult {
    let mut c = Cluster::new(false)?;
    for id in 1..=3 {
        c.start(id)?;
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let owner = c.owner()?;
        let mut channels = BTreeMap::new();
        for id in 1..=3u8 {
            channels.insert(
                id,
                pinned::pinned(&c.dir, id, &c.address(id)?, Some(&owner))?,
            );
        }
        // Every node answers, as itself, with the keys its manifest lists.
        let manifest = c.manifest()?;
        let mut participants = Vec::new();
        let start = Instant::now();
        for (id, ch) in &mut channels {
            let reply = loop {
                match ch.identity(proto::IdentityRequest { meta: meta() }).await {
                    Ok(r) => break r.into_inner(),
                    Err(e) if start.elapsed() < Duration::from_secs(20) => {
                        let _ = e;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => return Err(format!("node {id} did not answer: {e}").into()),
                }
            };
            let pinned_keys = manifest
                .member(NodeId::new(*id)?)
                .ok_or("not in the manifest")?
                .identity_keys()?;
            assert_eq!(reply.public_keys, pinned_keys.to_bytes().to_vec());
            participants.push(proto::Participant {
                node_id: u32::from(*id),
                public_keys: reply.public_keys,
            });
        }
        // The attack: node 2's entry carries the attacker's own keys.
        let attacker = NodeKeys::generate(NodeId::new(2)?, &mut rand::rng());
        participants[1].public_keys = attacker.public().to_bytes().to_vec();
        for (id, ch) in &mut channels {
            let e = ch
                .dkg_round(proto::DkgRoundRequest {
                    meta: meta(),
                    label: b"substituted".to_vec(),
                    t: 2,
                    participants: participants.clone(),
                    step: 0,
                    inbox: Vec::new(),
                    commit_transcript: Vec::new(),
                })
                .await
                .err()
                .ok_or(format!(
                    "node {id} started a DKG with node 2's keys swapped"
                ))?;
            assert_eq!(e.code(), Code::PermissionDenied, "node {id}: {e:?}");
            assert!(
                e.message()
                    .contains("participant list gives node 2 other identity keys"),
                "node {id}: {}",
                e.message()
            );
        }
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    for node in 1..=3 {
        let log = c.audit(node)?;
        assert!(!log.contains("dkg-start"), "node {node}: {log}");
    }
    // The honest coordinator's DKG, with the keys every node's manifest lists, runs.
    let out = cli(&[
        "cluster",
        "up",
        "--dir",
        &c.arg(),
        "--no-start",
        "--wait",
        "20",
    ])?;
    assert!(out.status.success(), "{}", text(&out));
    assert!(c.dir.join("cluster-key.json").is_file());
    Ok(())
}

/// A TLS server on `address` with `cert` and `key` (PEM) that counts the handshakes it
/// completed and the application bytes it received.
struct Impostor {
    handshakes: Arc<AtomicUsize>,
    bytes: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Impostor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn impostor(
    address: &str,
    cert: &[u8],
    key: &[u8],
) -> Result<Impostor, Box<dyn std::error::Error>> {
    use tokio::io::AsyncReadExt;
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(cert).collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(key)?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind(address).await?;
    let handshakes = Arc::new(AtomicUsize::new(0));
    let bytes = Arc::new(AtomicUsize::new(0));
    let (h, b) = (Arc::clone(&handshakes), Arc::clone(&bytes));
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, h, b) = (acceptor.clone(), Arc::clone(&h), Arc::clone(&b));
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    h.fetch_add(1, Ordering::SeqCst);
                    // Count what the client sends first, then hang up (no gRPC here).
                    let mut buf = [0u8; 4096];
                    if let Ok(n) = tls.read(&mut buf).await {
                        b.fetch_add(n, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    Ok(Impostor {
        handshakes,
        bytes,
        task,
    })
}

/// `cluster status --json` as the owner: node `id`'s entry.
fn status_of(
    c: &Cluster,
    id: u8,
) -> Result<(serde_json::Value, String), Box<dyn std::error::Error>> {
    let out = cli(&["cluster", "status", "--dir", &c.arg(), "--json"])?;
    let all: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", text(&out)))?;
    let node = all["node_status"]
        .as_array()
        .and_then(|l| l.iter().find(|n| n["id"] == id))
        .cloned()
        .ok_or("no such node in the status")?;
    Ok((
        node,
        all["manifest_digest"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    ))
}

/// (b) After `cluster replace --node 2`, a server with node 2's old certificate and key on
/// node 2's address gets nothing from the client: the handshake is refused, no byte of a
/// request arrives, and the client names the fingerprint. Before the replacement the same
/// server was taken for node 2 (so the refusal is the new pin's doing). The old fingerprint
/// is gone from the manifest and every node's folder.
#[test]
fn a_replaced_nodes_old_certificate_is_refused_and_forgotten() -> TestResult {
    let c = Cluster::new(true)?;
    let folder = ClusterDir::new(&c.dir);
    let old_cert = std::fs::read(c.dir.join("node-2/node.pem"))?;
    let old_key = std::fs::read(c.dir.join("node-2/node.key"))?;
    let old_fp = dealer_free_node::pki::fingerprint_pem(&String::from_utf8(old_cert.clone())?)?;
    let rt = tokio::runtime::Runtime::new()?;

    // Before: node 2 down, the impostor with its (still pinned) certificate is spoken to.
    let _ = folder.stop_node(2, Duration::from_secs(5));
    let address = c.address(2)?;
    {
        let fake = rt.block_on(impostor(&address, &old_cert, &old_key))?;
        let _ = status_of(&c, 2)?;
        assert!(fake.handshakes.load(Ordering::SeqCst) > 0);
        assert!(
            fake.bytes.load(Ordering::SeqCst) > 0,
            "the pinned certificate was trusted"
        );
    }
    let out = cli(&["cluster", "up", "--dir", &c.arg(), "--wait", "20"])?;
    assert!(out.status.success(), "{}", text(&out));

    let out = cli(&[
        "cluster",
        "replace",
        "--dir",
        &c.arg(),
        "--node",
        "2",
        "--wait",
        "20",
    ])?;
    assert!(out.status.success(), "replace: {}", text(&out));

    // The old fingerprint is nowhere; the new one is node 2's new certificate.
    let new_fp = dealer_free_node::pki::fingerprint_pem(&std::fs::read_to_string(
        c.dir.join("node-2/node.pem"),
    )?)?;
    assert_ne!(new_fp, old_fp);
    let manifest = c.manifest()?;
    assert_eq!(
        manifest
            .member(NodeId::new(2)?)
            .map(|m| m.tls_fingerprint.clone()),
        Some(new_fp.clone())
    );
    let mut checked = vec![c.dir.join("manifest.json"), c.dir.join("client.toml")];
    for id in 1..=3 {
        for file in ["node.toml", "manifest.json", "enrolment.json"] {
            checked.push(c.dir.join(format!("node-{id}/{file}")));
        }
        // Every node folder approved the new manifest.
        assert_eq!(
            Manifest::load(&c.dir.join(format!("node-{id}/manifest.json")))?,
            manifest
        );
    }
    for path in &checked {
        let body = std::fs::read_to_string(path)?;
        assert!(
            !body.contains(&old_fp),
            "{} still names {old_fp}",
            path.display()
        );
    }

    // After: node 2 down, the impostor with the old certificate gets no request byte.
    let _ = folder.stop_node(2, Duration::from_secs(5));
    let address = c.address(2)?;
    let fake = rt.block_on(impostor(&address, &old_cert, &old_key))?;
    let (node, _) = status_of(&c, 2)?;
    let error = node["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&old_fp) && error.contains(&new_fp) && error.contains("nothing was sent"),
        "{node}"
    );
    // An ingest, which would send node 2 its image shares, sends it nothing and names it.
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images/sk_coffee.png");
    let out = cli(&[
        "ingest",
        "--cluster",
        &c.arg(),
        &image.display().to_string(),
    ])?;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&old_fp), "{}", text(&out));
    assert_eq!(
        fake.handshakes.load(Ordering::SeqCst),
        0,
        "a handshake completed"
    );
    assert_eq!(
        fake.bytes.load(Ordering::SeqCst),
        0,
        "bytes reached the impostor"
    );
    Ok(())
}

/// (c) After `cluster init`, every private key file lies in exactly one node folder (or is
/// the client's or the CA's own at the top), and no other file of the cluster holds any of
/// its bytes; each node's sealed identity keys are the ones the manifest pins.
#[test]
fn every_private_key_lies_in_exactly_one_node_folder() -> TestResult {
    let c = Cluster::new(false)?;
    let mut files = Vec::new();
    let mut stack = vec![c.dir.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    let private = [
        "node.key",
        "at-rest.key",
        "secrets.bin",
        "client.key",
        "ca.key",
    ];
    let mut secrets: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    for f in &files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if !private.contains(&name) {
            continue;
        }
        let rel = f.strip_prefix(&c.dir)?;
        let top = rel
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned());
        match name {
            "client.key" | "ca.key" => assert_eq!(rel, Path::new(name), "{}", rel.display()),
            _ => {
                let top = top.unwrap_or_default();
                assert!(
                    (1..=3).filter(|i| top == format!("node-{i}")).count() == 1,
                    "{} is in no node folder",
                    rel.display()
                );
            }
        }
        secrets.push((rel.to_owned(), std::fs::read(f)?));
    }
    assert_eq!(secrets.len(), 2 + 3 * 3, "{secrets:?}");
    // No other file holds a private key's bytes: the base64 of a PEM key's private scalar
    // (after PKCS#8's fixed 36-byte header for P-256) or the at-rest key's hex. secrets.bin
    // is sealed under the at-rest key.
    for (rel, bytes) in &secrets {
        let body = String::from_utf8_lossy(bytes);
        let joined: String = body
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .join("");
        let needle = if body.starts_with("-----BEGIN") {
            joined.get(49..81).unwrap_or_default().to_owned()
        } else if rel.ends_with("at-rest.key") {
            joined.clone()
        } else {
            continue;
        };
        assert!(needle.len() >= 32, "{}", rel.display());
        for f in &files {
            if f.strip_prefix(&c.dir)? == rel.as_path() {
                continue;
            }
            let other: String = String::from_utf8_lossy(&std::fs::read(f)?)
                .lines()
                .collect::<Vec<_>>()
                .join("");
            assert!(
                !other.contains(&needle),
                "{} holds bytes of {}",
                f.display(),
                rel.display()
            );
        }
    }
    // Each node's sealed identity keys are the manifest's, under its own at-rest key.
    let manifest = c.manifest()?;
    for id in 1..=3u8 {
        let node = c.dir.join(format!("node-{id}"));
        let key = AtRestKey::from_hex(&std::fs::read_to_string(node.join("at-rest.key"))?)?;
        let sealed =
            NodeSecrets::open(&node.join("data"), NodeId::new(id)?, &key)?.ok_or("no secrets")?;
        assert_eq!(
            manifest.participants().get(&NodeId::new(id)?),
            Some(&sealed.keys.public())
        );
    }
    Ok(())
}

/// The digest of a manifest file computed here, independently: SHA-256 of the domain, a zero
/// byte, t, n, and per node its id, identity keys and certificate fingerprint.
fn digest_of(path: &Path) -> Result<String, Box<dyn std::error::Error>> {
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let byte = |v: &serde_json::Value| -> Result<u8, Box<dyn std::error::Error>> {
        Ok(u8::try_from(v.as_u64().ok_or("not a number")?)?)
    };
    let hex = |v: &serde_json::Value| -> Result<Vec<u8>, Box<dyn std::error::Error>> {
        let s = v.as_str().ok_or("not a string")?;
        Ok(dealer_free_node::unhex(s.trim_start_matches("sha256:")).ok_or("not hex")?)
    };
    let mut h = Sha256::new();
    h.update(b"dealer-free-sis/enrolment-manifest/v1");
    h.update([0, byte(&m["threshold"])?, byte(&m["nodes"])?]);
    for member in m["members"].as_array().ok_or("no members")? {
        h.update([byte(&member["node"])?]);
        h.update(hex(&member["identity"])?);
        h.update(hex(&member["tls_fingerprint"])?);
    }
    Ok(format!("sha256:{}", dealer_free_node::hex(&h.finalize())))
}

/// (d) The manifest digest `cluster status` prints is the one computed from the file, and
/// each node folder's approved copy has it too.
#[test]
fn the_digest_cluster_status_prints_is_the_files() -> TestResult {
    let c = Cluster::new(false)?;
    let expected = digest_of(&c.dir.join("manifest.json"))?;
    for id in 1..=3 {
        assert_eq!(
            digest_of(&c.dir.join(format!("node-{id}/manifest.json")))?,
            expected
        );
    }
    // The nodes are not running: status still prints the digest (and exits 1).
    let out = cli(&["cluster", "status", "--dir", &c.arg()])?;
    let printed = text(&out);
    let line = printed
        .lines()
        .find(|l| l.starts_with("manifest "))
        .ok_or(format!("no manifest line: {printed}"))?;
    assert_eq!(
        line.split_whitespace().nth(1),
        Some(expected.as_str()),
        "{printed}"
    );
    let (_, json_digest) = status_of(&c, 1)?;
    assert_eq!(json_digest, expected);
    Ok(())
}

/// The digest `cluster enrol` printed (`manifest sha256:… written to …`).
fn enrolled_digest(out: &Output) -> Result<String, Box<dyn std::error::Error>> {
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            l.strip_prefix("manifest ")?
                .split_whitespace()
                .next()
                .map(str::to_owned)
        })
        .ok_or(format!("no digest in {}", text(out)))?)
}

/// Nodes of different operators: `cluster init --remote` makes no node key; each node makes
/// its own (`node init`), the owner builds the manifest from the records (`cluster enrol`), each
/// node approves it with the digest (a wrong digest is refused), and the cluster runs. A node
/// replaced on a new machine is let in by a resharing only once every node's operator
/// approved the changed manifest: the node that did not refuses, naming the replaced node.
#[test]
fn a_remote_cluster_enrols_its_nodes_and_a_resharing_waits_for_every_approval() -> TestResult {
    let temp = tempfile::tempdir()?;
    let mut c = Cluster {
        dir: temp.path().join("cluster"),
        _temp: temp,
        children: Vec::new(),
    };
    let out = cli(&[
        "cluster",
        "init",
        "--dir",
        &c.arg(),
        "--nodes",
        "3",
        "--threshold",
        "2",
        "--remote",
    ])?;
    assert!(out.status.success(), "{}", text(&out));
    assert!(!c.dir.join("manifest.json").exists());
    assert!(!c.dir.join("node-1/node.key").exists());
    // On each node's machine (here: in its folder), its own keys.
    let root = c.dir.clone();
    let node_dir = |i: u8| root.join(format!("node-{i}")).display().to_string();
    let mut records = Vec::new();
    for i in 1..=3u8 {
        let out = cli(&[
            "node",
            "init",
            "--dir",
            &node_dir(i),
            "--id",
            &i.to_string(),
            "--address",
            &c.address(i)?,
        ])?;
        assert!(out.status.success(), "{}", text(&out));
        records.push(
            c.dir
                .join(format!("node-{i}/enrolment.json"))
                .display()
                .to_string(),
        );
    }
    let mut args = vec!["cluster", "enrol", "--dir"];
    let dir_arg = c.arg();
    args.push(&dir_arg);
    args.extend(records.iter().map(String::as_str));
    let out = cli(&args)?;
    assert!(out.status.success(), "{}", text(&out));
    let digest = enrolled_digest(&out)?;
    assert_eq!(digest, digest_of(&c.dir.join("manifest.json"))?);
    let manifest_arg = c.dir.join("manifest.json").display().to_string();
    let wrong = format!("sha256:{}", "0".repeat(64));
    let out = cli(&[
        "node",
        "approve",
        "--dir",
        &node_dir(1),
        "--manifest",
        &manifest_arg,
        "--digest",
        &wrong,
    ])?;
    assert!(
        !out.status.success() && text(&out).contains("not approved"),
        "{}",
        text(&out)
    );
    assert!(!c.dir.join("node-1/manifest.json").exists());
    for i in 1..=3u8 {
        let out = cli(&[
            "node",
            "approve",
            "--dir",
            &node_dir(i),
            "--manifest",
            &manifest_arg,
            "--digest",
            &digest,
        ])?;
        assert!(out.status.success(), "{}", text(&out));
    }
    let out = cli(&["cluster", "up", "--dir", &c.arg(), "--wait", "20"])?;
    assert!(out.status.success(), "{}", text(&out));

    // Node 3 comes back on a new machine: a fresh folder, its own new keys.
    let folder = ClusterDir::new(&c.dir);
    let _ = folder.stop_node(3, Duration::from_secs(5));
    let three = c.dir.join("node-3");
    std::fs::rename(three.join("data"), three.join("data.lost"))?;
    for f in ["node.key", "node.pem", "at-rest.key", "enrolment.json"] {
        std::fs::remove_file(three.join(f))?;
    }
    let out = cli(&[
        "node",
        "init",
        "--dir",
        &node_dir(3),
        "--id",
        "3",
        "--address",
        &c.address(3)?,
    ])?;
    assert!(out.status.success(), "{}", text(&out));
    let record = three.join("enrolment.json").display().to_string();
    let out = cli(&["cluster", "enrol", "--dir", &c.arg(), &record])?;
    assert!(
        out.status.success() && text(&out).contains("nodes changed: 3"),
        "{}",
        text(&out)
    );
    let digest = enrolled_digest(&out)?;
    // Nodes 1 and 3 approve; node 2's operator has not yet.
    for i in [1u8, 3] {
        let out = cli(&[
            "node",
            "approve",
            "--dir",
            &node_dir(i),
            "--manifest",
            &manifest_arg,
            "--digest",
            &digest,
        ])?;
        assert!(out.status.success(), "{}", text(&out));
    }
    c.start(3)?;
    let replace = [
        "cluster",
        "replace",
        "--dir",
        &dir_arg,
        "--node",
        "3",
        "--running",
        "--wait",
        "20",
    ];
    let out = cli(&replace)?;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("node 2")
            && text(&out).contains("receiver list gives node 3 other identity keys"),
        "{}",
        text(&out)
    );
    assert!(
        !c.audit(2)?.contains("reshare-start"),
        "node 2 started a resharing"
    );
    // Once node 2's operator approves, the same replacement runs.
    let out = cli(&[
        "node",
        "approve",
        "--dir",
        &node_dir(2),
        "--manifest",
        &manifest_arg,
        "--digest",
        &digest,
    ])?;
    assert!(
        out.status.success() && text(&out).contains("nodes changed: 3"),
        "{}",
        text(&out)
    );
    let out = cli(&replace)?;
    assert!(out.status.success(), "{}", text(&out));
    Ok(())
}
