//! A local cluster of real node processes on loopback, driven through the CLI as a user
//! would: `cluster up`, `ingest`, `search`, `get`, with nodes stopped, killed (SIGKILL),
//! restarted and their stored shares flipped on disk; and raw gRPC calls that replay a
//! request, come without a certificate, or carry malformed, truncated and oversized payloads.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use dealer_free_node::cluster::ClusterDir;
use dealer_free_node::pki::ClusterCa;
use dealer_free_node::proto;
use dealer_free_node::proto::node_client::NodeClient;
use dealer_free_node::secrets::{AtRestKey, NodeSecrets};
use phr_sis::store::ShareStore;
use phr_sis::{ImageId, NodeId};
use tonic::Code;
use tonic::transport::Channel;

#[path = "support/pinned.rs"]
mod pinned;
use pinned::Identity;

#[path = "support/stage2.rs"]
mod stage2;

#[path = "support/flip.rs"]
mod flip;

type TestResult = Result<(), Box<dyn std::error::Error>>;
/// Each `(id, path)` line of an ingest, and its whole output.
type Ingested = (Vec<(String, String)>, Output);

const EXE: &str = env!("CARGO_BIN_EXE_dealer-free-sis");

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images")
}

/// A cluster folder whose nodes are stopped when the test ends, pass or fail.
struct Cluster {
    _temp: tempfile::TempDir,
    dir: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = ClusterDir::new(&self.dir).down(Duration::from_secs(5));
    }
}

impl Cluster {
    fn up(nodes: u8, t: u8) -> Result<Cluster, Box<dyn std::error::Error>> {
        let temp = tempfile::tempdir()?;
        let dir = temp.path().join("cluster");
        let c = Cluster { _temp: temp, dir };
        let out = c.cli(&[
            "cluster",
            "up",
            "--nodes",
            &nodes.to_string(),
            "--threshold",
            &t.to_string(),
        ])?;
        assert!(
            out.status.success(),
            "cluster up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(c)
    }

    /// Runs the CLI with `--dir`/`--cluster` pointing here (after the subcommand words).
    fn cli(&self, args: &[&str]) -> Result<Output, std::io::Error> {
        let mut command = Command::new(EXE);
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
        command.stdin(Stdio::null()).output()
    }

    fn folder(&self) -> ClusterDir {
        ClusterDir::new(&self.dir)
    }

    fn sigkill(&self, id: u8) {
        if let Some(pid) = self.folder().running_pid(id) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            let start = std::time::Instant::now();
            while self.folder().running_pid(id).is_some()
                && start.elapsed() < Duration::from_secs(10)
            {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// `(id, path)` per line of `ingest` output.
    fn ingest(
        &self,
        paths: &[&Path],
        extra: &[&str],
    ) -> Result<Ingested, Box<dyn std::error::Error>> {
        let mut args: Vec<String> = vec!["ingest".into()];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args.extend(paths.iter().map(|p| p.display().to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.cli(&refs)?;
        Ok((parse_ids(&out.stdout), out))
    }
}

fn parse_ids(stdout: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| {
            l.split_once("  ")
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
        })
        .collect()
}

fn id_of(ids: &[(String, String)], name: &str) -> Option<String> {
    ids.iter()
        .find(|(_, p)| p.ends_with(name))
        .map(|(id, _)| id.clone())
}

fn get_is_identical(
    c: &Cluster,
    id: &str,
    original: &Path,
) -> Result<Output, Box<dyn std::error::Error>> {
    let out_file = c.dir.join(format!("got-{id}"));
    let out = c.cli(&["get", id, "-o", &out_file.display().to_string()])?;
    assert!(
        out.status.success(),
        "get {id}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(&out_file)?,
        std::fs::read(original)?,
        "get {id} is not byte-identical"
    );
    Ok(out)
}

fn node_images(c: &Cluster, id: u8) -> Result<u64, Box<dyn std::error::Error>> {
    let out = c.cli(&["cluster", "status", "--json"])?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let node = v["node_status"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["id"] == id))
        .ok_or("no such node")?;
    node["images"]
        .as_u64()
        .ok_or_else(|| format!("node {id} is down: {node}").into())
}

/// Opens node `node`'s share store (the node must be stopped).
fn open_store(c: &Cluster, node: u8) -> Result<ShareStore, Box<dyn std::error::Error>> {
    let dir = c.folder().node_dir(node);
    let key = AtRestKey::from_hex(&std::fs::read_to_string(dir.join("at-rest.key"))?)?;
    let secrets =
        NodeSecrets::open(&dir.join("data"), NodeId::new(node)?, &key)?.ok_or("no secrets")?;
    Ok(ShareStore::open(
        dir.join("data/shares.redb"),
        secrets.mac_key,
    )?)
}

/// Flips one byte inside node `node`'s stored share of `image` (the node must be stopped).
fn flip_stored_share(c: &Cluster, node: u8, image: ImageId) -> TestResult {
    flip::flip_stored_share(&c.folder().node_dir(node), node, image)
}

/// The text and JSON of `search`, `get` into folders not made yet or below a file, both
/// spellings of the folder flags, and the nodes' logs free of colour codes.
fn search_and_get_as_a_user_writes_them(c: &Cluster, id: &str, query: &Path) -> TestResult {
    let q = query.display().to_string();
    let dir = c.dir.display().to_string();
    let raw = |args: &[&str]| {
        Command::new("timeout")
            .args(["-s", "KILL", "90", EXE])
            .args(args)
            .stdin(Stdio::null())
            .output()
    };
    // A header line, then rank, distance, votes, id and the path the catalog holds.
    let out = raw(&["search", "--dir", &dir, &q, "--topk", "3"])?;
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "search: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows.first().map(Vec::as_slice),
        Some(&["rank", "distance", "votes", "id", "path"][..]),
        "{table}"
    );
    let best = rows.get(1).ok_or("no hit")?;
    assert_eq!(
        (best[0], best[1], best[3], best[4]),
        ("1", "0", id, q.as_str()),
        "{table}"
    );
    let out = c.cli(&["search", &q, "--json", "--topk", "1"])?;
    let hits: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(hits[0]["path"], q.as_str(), "{hits}");
    // get makes the folders -o names, and takes --dir and --out as well.
    for (folder, out_flag) in [("--cluster", "-o"), ("--dir", "--out")] {
        let target = c.dir.join(format!("new{out_flag}/sub/got.jpg"));
        let out = raw(&[
            "get",
            folder,
            &dir,
            id,
            out_flag,
            &target.display().to_string(),
        ])?;
        assert!(
            out.status.success(),
            "get: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(std::fs::read(&target)?, std::fs::read(query)?);
    }
    // A folder that cannot be made: one error, said once.
    let file = c.dir.join("a-file");
    std::fs::write(&file, "x")?;
    let below = file.join("sub/got.jpg");
    let out = raw(&[
        "get",
        "--cluster",
        &dir,
        id,
        "-o",
        &below.display().to_string(),
    ])?;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(err.matches("Not a directory").count(), 1, "{err}");
    // cluster subcommands take --cluster as well as --dir.
    let out = raw(&["cluster", "status", "--cluster", &dir, "--json"])?;
    assert!(
        out.status.success(),
        "status: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The nodes' logs are plain text.
    for n in 1..=5u8 {
        let log = std::fs::read_to_string(c.folder().node_dir(n).join("node.log"))?;
        assert!(log.contains("node serving"), "node {n}: {log}");
        assert!(!log.contains("\x1b["), "colour codes in node {n}'s log");
    }
    Ok(())
}

#[test]
fn a_cluster_survives_restarts_flipped_shares_and_lost_nodes() -> TestResult {
    let c = Cluster::up(5, 3)?;
    let images = fixtures();
    let (ids, out) = c.ingest(&[&images], &[])?;
    assert!(
        out.status.success(),
        "ingest: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = std::fs::read_dir(&images)?
        .filter_map(Result::ok)
        .filter(|e| {
            e.path().extension().is_some_and(|x| {
                ["png", "jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp"]
                    .contains(&x.to_string_lossy().to_lowercase().as_str())
            })
        })
        .count();
    assert_eq!(ids.len(), expected, "one `<id>  <path>` line per image");

    // Search finds the query itself at distance 0; file names never reached the nodes.
    let query = images.join("kpa_skagen.jpg");
    let skagen = id_of(&ids, "kpa_skagen.jpg").ok_or("kpa_skagen.jpg not ingested")?;
    let out = c.cli(&[
        "search",
        &query.display().to_string(),
        "--json",
        "--topk",
        "3",
    ])?;
    assert!(
        out.status.success(),
        "search: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first_hits = out.stdout.clone();
    let hits: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(hits[0]["id"], skagen.as_str());
    assert_eq!(hits[0]["distance"], 0);
    assert!(hits[0]["band_votes"].as_u64() >= Some(1));
    for n in 1..=5u8 {
        let log = std::fs::read_to_string(c.folder().node_dir(n).join("data/audit.log"))?;
        assert!(!log.contains("kpa_skagen"), "a file name reached node {n}");
    }
    get_is_identical(&c, &skagen, &query)?;
    search_and_get_as_a_user_writes_them(&c, &skagen, &query)?;

    // A node restarted keeps its key share, shares and index: no new DKG, same results.
    let key_before = std::fs::read_to_string(c.dir.join("cluster-key.json"))?;
    assert!(c.folder().stop_node(2, Duration::from_secs(10)));
    let out = c.cli(&["cluster", "up"])?;
    assert!(
        out.status.success(),
        "restart: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("key from an earlier DKG"));
    assert_eq!(
        std::fs::read_to_string(c.dir.join("cluster-key.json"))?,
        key_before
    );
    assert_eq!(node_images(&c, 2)?, expected as u64);
    let again = c.cli(&[
        "search",
        &query.display().to_string(),
        "--json",
        "--topk",
        "3",
    ])?;
    assert_eq!(
        again.stdout, first_hits,
        "the same results after the restart"
    );

    // A share flipped on disk is detected (its integrity tag) and routed around.
    let id: ImageId = skagen.parse()?;
    assert!(c.folder().stop_node(1, Duration::from_secs(10)));
    flip_stored_share(&c, 1, id)?;
    assert!(c.cli(&["cluster", "up"])?.status.success());
    let out = get_is_identical(&c, &skagen, &query)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("node 1") && stderr.contains("integrity"),
        "{stderr}"
    );

    // With n − t = 2 nodes killed, get still returns byte-identical images.
    c.sigkill(4);
    c.sigkill(5);
    for name in ["kpa_skagen_2.png", "sk_coffee.png", "gnome_adwaita_l.png"] {
        let id = id_of(&ids, name).ok_or("missing")?;
        get_is_identical(&c, &id, &images.join(name))?;
    }
    // With fewer than 2t − 1 = 5 nodes alive, search says how many it needs.
    let out = c.cli(&["search", &query.display().to_string()])?;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("needs 5 nodes, only 3 answered"),
        "{stderr}"
    );
    assert!(
        stderr.contains("node 4") && stderr.contains("node 5"),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn a_replaced_node_gets_a_new_key_share_and_its_records_without_re_ingest() -> TestResult {
    let c = Cluster::up(5, 3)?;
    let images = fixtures();
    let names = ["kpa_skagen.jpg", "kpa_skagen_2.png", "sk_coffee.png"];
    let paths: Vec<PathBuf> = names.iter().map(|n| images.join(n)).collect();
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let (ids, out) = c.ingest(&refs, &[])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let query = paths[0].display().to_string();
    let before = c.cli(&["search", &query, "--json"])?;
    assert!(before.status.success());
    let key_before: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.dir.join("cluster-key.json"))?)?;

    // A node that still holds its key share is not replaced.
    let out = c.cli(&["cluster", "replace", "--node", "2", "--running"])?;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("still holds a key share"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Node 2's data is lost: it comes back fresh, the others reshare, its records are repaired.
    let out = c.cli(&["cluster", "replace", "--node", "2"])?;
    assert!(
        out.status.success(),
        "replace: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("3 image records repaired"), "{stdout}");
    assert!(
        std::fs::read_dir(c.folder().node_dir(2))?
            .filter_map(Result::ok)
            .any(|e| e
                .file_name()
                .to_string_lossy()
                .starts_with("data.replaced-")),
        "the old data folder is kept aside"
    );
    let key_after: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.dir.join("cluster-key.json"))?)?;
    assert_eq!(
        key_after["group_public_key"],
        key_before["group_public_key"]
    );
    for n in 1..=5 {
        let k = n.to_string();
        assert_ne!(
            key_after["verification_shares"][&k], key_before["verification_shares"][&k],
            "node {n} got a new key share"
        );
    }
    assert_eq!(node_images(&c, 2)?, 3);

    // Tokens did not change (same group key): the same search, the same answer.
    let after = c.cli(&["search", &query, "--json"])?;
    assert!(
        after.status.success(),
        "{}",
        String::from_utf8_lossy(&after.stderr)
    );
    assert_eq!(after.stdout, before.stdout);
    // The new key shares evaluate tokens: an image ingested now is found.
    let astronaut = images.join("sk_astronaut.png");
    let (new_ids, out) = c.ingest(&[&astronaut], &[])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new_id = id_of(&new_ids, "sk_astronaut.png").ok_or("not ingested")?;
    let found = c.cli(&["search", &astronaut.display().to_string(), "--json"])?;
    let hits: serde_json::Value = serde_json::from_slice(&found.stdout)?;
    assert_eq!(hits[0]["id"], new_id.as_str());
    assert_eq!(hits[0]["distance"], 0);
    // With nodes 1 and 3 gone, node 2's repaired shares take part in every retrieval.
    c.sigkill(1);
    c.sigkill(3);
    for (name, path) in names.iter().zip(&paths) {
        let id = id_of(&ids, name).ok_or("missing")?;
        get_is_identical(&c, &id, path)?;
    }
    Ok(())
}

#[test]
fn a_node_killed_during_ingest_loses_nothing_it_acknowledged() -> TestResult {
    let c = Cluster::up(3, 2)?;
    let images = fixtures();
    let child = Command::new(EXE)
        .args(["ingest", "--batch", "1", "--cluster"])
        .arg(&c.dir)
        .arg(&images)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Kill node 2 once a few images are in.
    let start = std::time::Instant::now();
    while node_images(&c, 2).unwrap_or(0) < 4 && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(10));
    }
    c.sigkill(2);
    let out = child.wait_with_output()?;
    assert_eq!(
        out.status.code(),
        Some(1),
        "the ingest reports incomplete images"
    );
    let ids = parse_ids(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let missing_on_2: Vec<&(String, String)> = ids
        .iter()
        .filter(|(id, _)| {
            stderr
                .lines()
                .any(|l| l.contains(id.as_str()) && l.contains("node 2"))
        })
        .collect();
    assert!(
        !missing_on_2.is_empty(),
        "some images did not reach node 2: {stderr}"
    );
    assert!(missing_on_2.len() < ids.len());
    // Node 2 holds every record it acknowledged. It may hold one more: the record it
    // committed when the kill came, before its reply left (`--batch 1` keeps one in flight).
    let acknowledged: Vec<ImageId> = ids
        .iter()
        .filter(|entry| !missing_on_2.contains(entry))
        .map(|(id, _)| id.parse())
        .collect::<Result<_, _>>()?;
    let (held, total) = {
        let store = open_store(&c, 2)?;
        let held = acknowledged
            .iter()
            .map(|id| store.contains(*id))
            .collect::<Result<Vec<bool>, _>>()?;
        (held, store.len()?)
    };
    assert!(
        held.iter().all(|h| *h),
        "node 2 lost an acknowledged record"
    );
    let extra = total - acknowledged.len() as u64;
    assert!(extra <= 1, "node 2 holds {extra} records nobody sent it");
    // Restarted, it reports what its store holds.
    assert!(c.cli(&["cluster", "up"])?.status.success());
    assert_eq!(node_images(&c, 2)?, total);
    // And every image is still retrievable (t = 2 of the 3 nodes hold each).
    for (id, path) in ids
        .iter()
        .take(3)
        .chain(missing_on_2.iter().copied().take(3))
    {
        get_is_identical(&c, id, Path::new(path))?;
    }
    Ok(())
}

async fn channel(
    c: &Cluster,
    node: u8,
    identity: Option<Identity>,
    _ca: &[u8],
) -> Result<NodeClient<Channel>, Box<dyn std::error::Error>> {
    let profile = dealer_free_node::config::ClientProfile::load(&c.dir.join("client.toml"))?;
    let entry = profile
        .raw
        .nodes
        .iter()
        .find(|n| n.id == node)
        .ok_or("no node")?;
    // As the client does: the node's certificate pinned by the manifest's fingerprint.
    let client = pinned::pinned(&c.dir, node, &entry.address, identity.as_ref())?;
    Ok(client.max_encoding_message_size(256 << 20))
}

fn meta(id: u8) -> Option<proto::RequestMeta> {
    let mut request_id = vec![id; 16];
    request_id[0] = rand::random();
    request_id[1] = rand::random();
    Some(proto::RequestMeta {
        request_id,
        unix_ms: dealer_free_node::replay::unix_ms(),
    })
}

#[test]
fn replays_strangers_and_malformed_requests_are_refused() -> TestResult {
    let c = Cluster::up(3, 2)?;
    let image = fixtures().join("sk_coffee.png");
    let (ids, out) = c.ingest(&[&image], &[])?;
    assert!(out.status.success());
    let stored: ImageId = ids.first().ok_or("nothing ingested")?.0.parse()?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let ca = std::fs::read(c.dir.join("ca.pem"))?;
        let owner = Identity::from_pem(
            std::fs::read(c.dir.join("client.pem"))?,
            std::fs::read(c.dir.join("client.key"))?,
        );
        let mut node = channel(&c, 1, Some(owner), &ca).await?;

        // A replayed request is refused.
        let req = proto::GetShareRequest {
            meta: meta(1),
            image_id: stored.0,
        };
        let share = node.get_share(req.clone()).await?.into_inner().share;
        let replay = node
            .get_share(req)
            .await
            .err()
            .ok_or("a replay was answered")?;
        assert_eq!(replay.code(), Code::PermissionDenied);
        assert!(
            replay.message().contains("replayed"),
            "{}",
            replay.message()
        );
        // So is one with a stale clock.
        let mut stale = meta(2);
        if let Some(m) = stale.as_mut() {
            m.unix_ms -= 3_600_000;
        }
        let err = node
            .get_share(proto::GetShareRequest {
                meta: stale,
                image_id: stored.0,
            })
            .await
            .err()
            .ok_or("stale answered")?;
        assert_eq!(err.code(), Code::PermissionDenied);

        // A client without a certificate gets nothing; nor one of another CA; nor one of
        // this CA that the node's config does not list (its connection is closed).
        let mut anonymous = channel(&c, 1, None, &ca).await?;
        assert!(anonymous.health(proto::HealthRequest {}).await.is_err());
        let other = ClusterCa::generate("other")?.issue_client("mallory")?;
        let mut stranger = channel(
            &c,
            1,
            Some(Identity::from_pem(&other.cert_pem, &other.key_pem)),
            &ca,
        )
        .await?;
        assert!(stranger.health(proto::HealthRequest {}).await.is_err());
        let ca_key = std::fs::read_to_string(c.dir.join("ca.key"))?;
        let name = c.folder().read()?.name;
        let unlisted = ClusterCa::load(&name, &String::from_utf8_lossy(&ca), &ca_key)?
            .issue_client("unlisted")?;
        let mut unlisted = channel(
            &c,
            1,
            Some(Identity::from_pem(&unlisted.cert_pem, &unlisted.key_pem)),
            &ca,
        )
        .await?;
        let err = unlisted
            .health(proto::HealthRequest {})
            .await
            .err()
            .ok_or("an unlisted client was answered")?;
        // Its connection is closed right after the handshake, before any request.
        assert!(
            matches!(
                err.code(),
                Code::Unavailable | Code::Unknown | Code::Cancelled
            ),
            "{err:?}"
        );

        // Malformed, truncated, random and oversized payloads to every service.
        let before = node.health(proto::HealthRequest {}).await?.into_inner();
        let random: Vec<u8> = (0..4096).map(|_| rand::random::<u8>()).collect();
        let truncated = share.get(..share.len() / 2).unwrap_or_default().to_vec();
        for payload in [Vec::new(), vec![0x31], truncated.clone(), random.clone()] {
            let e = node
                .evaluate_tokens(proto::EvaluateTokensRequest {
                    meta: meta(3),
                    token_request: payload.clone(),
                })
                .await
                .err()
                .ok_or("bad tokens answered")?;
            assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
            let e = node
                .candidates(proto::CandidatesRequest {
                    meta: meta(4),
                    candidate_request: payload.clone(),
                })
                .await
                .err()
                .ok_or("bad candidates answered")?;
            assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
            let e = node
                .store_records(proto::StoreRecordsRequest {
                    owners: Vec::new(),
                    meta: meta(5),
                    records: vec![payload.clone()],
                })
                .await
                .err()
                .ok_or("bad record stored")?;
            assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
            let e = node
                .mask_deal(proto::MaskDealRequest {
                    meta: meta(6),
                    order: payload.clone(),
                })
                .await
                .err()
                .ok_or("bad deal answered")?;
            assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
            let e = node
                .mask_check(proto::MaskCheckRequest {
                    meta: meta(7),
                    session: payload.clone(),
                    commitments: vec![],
                    deals: vec![],
                })
                .await
                .err()
                .ok_or("bad check answered")?;
            assert!(
                matches!(e.code(), Code::InvalidArgument | Code::FailedPrecondition),
                "{e:?}"
            );
            let e = node
                .distances(proto::DistancesRequest {
                    meta: meta(8),
                    checks_relay: payload.clone(),
                })
                .await
                .err()
                .ok_or("bad distances answered")?;
            assert!(
                matches!(e.code(), Code::InvalidArgument | Code::FailedPrecondition),
                "{e:?}"
            );
            let e = node
                .query_check(proto::QueryCheckRequest {
                    meta: meta(9),
                    distance_request: payload.clone(),
                    pool_confirmations: Vec::new(),
                })
                .await
                .err()
                .ok_or("bad query check answered")?;
            assert!(
                matches!(e.code(), Code::InvalidArgument | Code::FailedPrecondition),
                "{e:?}"
            );
            let e = node
                .mask_judge(proto::MaskJudgeRequest {
                    meta: meta(20),
                    session: payload.clone(),
                    checks: vec![],
                })
                .await
                .err()
                .ok_or("bad judging answered")?;
            assert!(
                matches!(e.code(), Code::InvalidArgument | Code::FailedPrecondition),
                "{e:?}"
            );
            if payload.len() != 32 {
                let e = node
                    .mask_release(proto::MaskReleaseRequest {
                        meta: meta(21),
                        session: payload.clone(),
                    })
                    .await
                    .err()
                    .ok_or("a bad release answered")?;
                // A body past the method's cap is refused before it is decoded.
                let cap = dealer_free_node::access::Method::MaskRelease.max_request_bytes();
                let expected = if payload.len() > cap {
                    Code::ResourceExhausted
                } else {
                    Code::InvalidArgument
                };
                assert_eq!(e.code(), expected, "{e:?}");
            }
            let e = node
                .dkg_round(proto::DkgRoundRequest {
                    meta: meta(9),
                    label: payload.clone(),
                    t: 2,
                    participants: vec![],
                    step: 1,
                    inbox: vec![],
                    commit_transcript: vec![],
                })
                .await
                .err()
                .ok_or("bad DKG answered")?;
            assert_eq!(
                e.code(),
                Code::AlreadyExists,
                "a keyed node refuses a new DKG: {e:?}"
            );
            let e = node
                .get_share(proto::GetShareRequest {
                    meta: meta(10),
                    image_id: 12345,
                })
                .await
                .err()
                .ok_or("a missing share answered")?;
            assert_eq!(e.code(), Code::NotFound);
        }
        // A stored image cannot be overwritten with other contents.
        let e = node
            .store_records(proto::StoreRecordsRequest {
                owners: Vec::new(),
                meta: meta(11),
                records: vec![
                    dealer_free::record::StoredRecord {
                        image_id: stored,
                        share: share.clone(),
                        bit_shares: dealer_free::mpc::HashBitShares::from_shares(
                            [phr_sis::fp61::Fp61::ONE; 64],
                        ),
                        tokens: vec![],
                    }
                    .to_bytes()?
                    .to_vec(),
                ],
            })
            .await
            .err()
            .ok_or("an overwrite was accepted")?;
        assert!(
            matches!(e.code(), Code::AlreadyExists | Code::InvalidArgument),
            "{e:?}"
        );
        // Too many records, and a message over the size limit.
        let many = vec![Vec::new(); 257];
        let e = node
            .store_records(proto::StoreRecordsRequest {
                owners: Vec::new(),
                meta: meta(12),
                records: many,
            })
            .await
            .err()
            .ok_or("an oversized batch was accepted")?;
        assert_eq!(e.code(), Code::InvalidArgument);
        let huge = proto::EvaluateTokensRequest {
            meta: meta(13),
            token_request: vec![0; 65 << 20],
        };
        assert!(node.evaluate_tokens(huge).await.is_err());

        // The node keeps serving, its store unchanged.
        let after = node.health(proto::HealthRequest {}).await?.into_inner();
        assert_eq!(after.images, before.images);
        let again = node
            .get_share(proto::GetShareRequest {
                meta: meta(14),
                image_id: stored.0,
            })
            .await?
            .into_inner()
            .share;
        assert_eq!(again, share);
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    get_is_identical(&c, &stored.to_string(), &image)?;
    Ok(())
}

#[test]
fn a_mask_pool_serves_many_searches_and_hands_out_each_mask_once() -> TestResult {
    use dealer_free_node::client::ClusterClient;
    use phr_sis::SearchParams;

    let c = Cluster::up(3, 2)?;
    let names = [
        "sk_coffee.png",
        "kpa_skagen.jpg",
        "lomiri_seeding.png",
        "plasma_path.jpg",
    ];
    let paths: Vec<PathBuf> = names.iter().map(|n| fixtures().join(n)).collect();
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let (ids, out) = c.ingest(&refs, &[])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        // A client that deals its pool ahead of its searches: eight concurrent searches
        // take their masks from it, each range once, and all rank correctly.
        let client = ClusterClient::open(&c.folder().profile())?.with_mask_pool(64);
        let servers = client.search_servers().await?;
        let dealt = client.deal_masks(&servers, 64).await?;
        assert_eq!(dealt.accepted, servers, "every honest dealer is accepted");
        assert_eq!(client.masks_left(&servers), 64);
        let mut searches = tokio::task::JoinSet::new();
        for round in 0..2 {
            for (name, path) in names.iter().zip(&paths) {
                let bytes = std::fs::read(path)?;
                let hash = phr_sis::phash::phash(&phr_sis::phash::decode_luma(&bytes)?);
                let expected = id_of(&ids, name).ok_or("not ingested")?;
                let client = client.clone();
                searches.spawn(async move {
                    let found = client.search(hash, &SearchParams::default()).await;
                    (round, expected, found)
                });
            }
        }
        let mut candidates = 0;
        while let Some(joined) = searches.join_next().await {
            let (_, expected, found) = joined?;
            let found = found?;
            let top = found.hits.first().ok_or("no hit")?;
            assert_eq!((top.id.to_string(), top.distance), (expected, 0));
            candidates += u32::try_from(found.candidates)?;
        }
        assert!(candidates <= 64, "{candidates} candidates in 8 searches");
        assert!(
            client.mask_dealings() <= 2,
            "one dealing and at most one top-up, not one per search: {}",
            client.mask_dealings()
        );

        // On the nodes: a range is answered once; masks beyond the pool are refused; a pool
        // is judged once.
        let ca = std::fs::read(c.dir.join("ca.pem"))?;
        let owner = || {
            Ok::<_, std::io::Error>(Identity::from_pem(
                std::fs::read(c.dir.join("client.pem"))?,
                std::fs::read(c.dir.join("client.key"))?,
            ))
        };
        let mut nodes = Vec::new();
        for id in 1..=3 {
            nodes.push((
                NodeId::new(id)?,
                channel(&c, id, Some(owner()?), &ca).await?,
            ));
        }
        let session = [0x5a; 32];
        let judged = stage2::deal_raw_pool(&mut nodes, session, 6).await?;
        for j in &judged {
            assert_eq!((j.accepted.as_slice(), j.masks), (&[1u8, 2, 3][..], 6));
        }
        let again = nodes[0]
            .1
            .mask_judge(proto::MaskJudgeRequest {
                meta: meta(33),
                session: session.to_vec(),
                checks: Vec::new(),
            })
            .await
            .err()
            .ok_or("a pool was judged twice")?;
        assert_eq!(again.code(), Code::AlreadyExists, "{again:?}");
        let mut two: Vec<ImageId> = ids
            .iter()
            .take(2)
            .map(|(id, _)| id.parse())
            .collect::<Result<_, _>>()?;
        two.sort_unstable();
        let stored = *two.first().ok_or("nothing ingested")?;
        let stored_path = ids
            .iter()
            .find(|(i, _)| i.parse::<ImageId>().ok() == Some(stored))
            .map(|(_, p)| PathBuf::from(p))
            .ok_or("no path of the stored image")?;
        let stored_hash =
            phr_sis::phash::phash(&phr_sis::phash::decode_luma(&std::fs::read(&stored_path)?)?);
        let tokens = client.tokens(&[stored_hash]).await?.remove(0);
        let servers = [NodeId::new(1)?, NodeId::new(2)?, NodeId::new(3)?];
        // A query of one candidate checked at node 1 with masks from `first`: its candidates
        // listed first (a fresh query session each time).
        let ask =
            async |nodes: &mut [stage2::Raw], pool: [u8; 32], first: u32, images: &[ImageId]| {
                let query: [u8; 32] = rand::random();
                stage2::candidates(&mut nodes[..1], query, tokens.clone(), 1).await?;
                let scope = dealer_free::mpc::query::QueryScope::new(pool, first, images);
                let (commitment, openings) = dealer_free::mpc::query::share_query(
                    query,
                    scope,
                    phr_sis::ImageHash(7),
                    2,
                    &servers,
                    &mut rand::rng(),
                )?;
                let requests = stage2::requests(query, images, &commitment, &openings)?;
                stage2::query_checks(&mut nodes[..1], &requests[..1]).await
            };
        // Masks 0 to 2 (two for the check, one for the candidate).
        ask(&mut nodes, session, 0, &[stored])
            .await?
            .map_err(|s| format!("{s:?}"))?;
        for (first, why) in [(0, "a used mask"), (4, "masks beyond the pool")] {
            let e = ask(&mut nodes, session, first, &[stored])
                .await?
                .err()
                .ok_or(why)?;
            assert_eq!(e.code(), Code::InvalidArgument, "{why}: {e:?}");
        }
        // A refused request used no mask: masks 3 to 5 still answer, once; then the pool,
        // used up, is gone.
        ask(&mut nodes, session, 3, &[stored])
            .await?
            .map_err(|s| format!("{s:?}"))?;
        let e = ask(&mut nodes, session, 3, &[stored])
            .await?
            .err()
            .ok_or("a used-up pool answered")?;
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");

        // A released pool answers no more; releasing it again finds nothing.
        let session = [0xa5; 32];
        stage2::deal_raw_pool(&mut nodes, session, 4).await?;
        let release = |n: u8| proto::MaskReleaseRequest {
            meta: meta(n),
            session: session.to_vec(),
        };
        assert!(
            nodes[0]
                .1
                .mask_release(release(35))
                .await?
                .into_inner()
                .released
        );
        assert!(
            !nodes[0]
                .1
                .mask_release(release(36))
                .await?
                .into_inner()
                .released
        );
        let e = ask(&mut nodes, session, 0, &[stored])
            .await?
            .err()
            .ok_or("a released pool answered")?;
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
        // Node 2 still holds its part of the pool.
        let query: [u8; 32] = rand::random();
        stage2::candidates(&mut nodes[1..2], query, tokens.clone(), 1).await?;
        let scope = dealer_free::mpc::query::QueryScope::new(session, 0, &[stored]);
        let (commitment, openings) = dealer_free::mpc::query::share_query(
            query,
            scope,
            phr_sis::ImageHash(7),
            2,
            &servers,
            &mut rand::rng(),
        )?;
        let requests = stage2::requests(query, &[stored], &commitment, &openings)?;
        stage2::query_checks(&mut nodes[1..2], &requests)
            .await?
            .map_err(|s| format!("{s:?}"))?;
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    Ok(())
}
