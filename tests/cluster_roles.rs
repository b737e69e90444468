//! Client roles on a local cluster of real node processes: an admin made by `cluster init`, an
//! owner and a search client made by `cluster add-client`. Each client is driven through the
//! CLI (`--client`) and through raw gRPC calls with its own certificate; a second client's
//! attempt to start a resharing to itself is refused before anything is dealt. One cluster
//! serves the whole file, and every process is bounded by a timeout.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use dealer_free::identity::NodeKeys;
use dealer_free_node::cluster::ClusterDir;
use dealer_free_node::proto;
use dealer_free_node::proto::node_client::NodeClient;
use phr_sis::NodeId;
use tonic::Code;
use tonic::transport::Channel;

#[path = "support/pinned.rs"]
mod pinned;
use pinned::Identity;

#[path = "support/process.rs"]
mod process;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const EXE: &str = env!("CARGO_BIN_EXE_dealer-free-sis");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/images")
        .join(name)
}

/// Runs the CLI with `args`, killed after `limit`.
fn cli(args: &[&str], limit: Duration) -> Result<Output, Box<dyn std::error::Error>> {
    process::run_bounded(EXE, args, limit)
}

const SHORT: Duration = Duration::from_secs(60);

/// The cluster folder; its nodes are stopped when the test ends, pass or fail.
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
    fn arg(&self) -> String {
        self.dir.display().to_string()
    }

    fn profile(&self, name: &str) -> String {
        self.dir
            .join("clients")
            .join(name)
            .join("client.toml")
            .display()
            .to_string()
    }

    fn identity(&self, folder: &Path) -> Result<Identity, std::io::Error> {
        Ok(Identity::from_pem(
            std::fs::read(folder.join("client.pem"))?,
            std::fs::read(folder.join("client.key"))?,
        ))
    }

    async fn channel(
        &self,
        node: u8,
        identity: Identity,
    ) -> Result<NodeClient<Channel>, Box<dyn std::error::Error>> {
        let profile = dealer_free_node::config::ClientProfile::load(&self.dir.join("client.toml"))?;
        let entry = profile
            .raw
            .nodes
            .iter()
            .find(|n| n.id == node)
            .ok_or("no node")?;
        pinned::pinned(&self.dir, node, &entry.address, Some(&identity))
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

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The resharing a client would start to get a share dealt to `me` (posing as node 3):
/// nodes 1 and 2 deal, the receivers are nodes 1, 2 and `me`.
fn reshare_to_me(
    key: &serde_json::Value,
    nodes: &[proto::Participant],
    me: &NodeKeys,
) -> Result<proto::ReshareRoundRequest, Box<dyn std::error::Error>> {
    let hex = |v: &serde_json::Value| -> Result<Vec<u8>, Box<dyn std::error::Error>> {
        Ok(dealer_free_node::unhex(v.as_str().ok_or("not a string")?).ok_or("not hex")?)
    };
    let mut old_verification_shares = Vec::new();
    for (id, point) in key["verification_shares"]
        .as_object()
        .ok_or("no verification shares")?
    {
        old_verification_shares.push(proto::VerificationShare {
            node_id: id.parse()?,
            point: hex(point)?,
        });
    }
    let mut receivers: Vec<proto::Participant> = nodes.iter().take(2).cloned().collect();
    receivers.push(proto::Participant {
        node_id: 3,
        public_keys: me.public().to_bytes().to_vec(),
    });
    Ok(proto::ReshareRoundRequest {
        meta: meta(),
        label: b"not the owner's resharing".to_vec(),
        old_t: 2,
        group_public_key: hex(&key["group_public_key"])?,
        old_verification_shares,
        dealers: nodes.iter().take(2).cloned().collect(),
        new_t: 2,
        receivers,
        step: 0,
        inbox: Vec::new(),
        commit_transcript: Vec::new(),
    })
}

#[test]
fn each_role_gets_what_it_may_and_a_second_client_cannot_reshare_to_itself() -> TestResult {
    let temp = tempfile::tempdir()?;
    let c = Cluster {
        dir: temp.path().join("cluster"),
        _temp: temp,
    };
    let dir = c.arg();
    let out = cli(
        &[
            "cluster",
            "init",
            "--dir",
            &dir,
            "--nodes",
            "3",
            "--threshold",
            "2",
        ],
        SHORT,
    )?;
    assert!(out.status.success(), "init: {}", text(&out));

    // Bad names and roles are refused with exit code 2, and nothing is written.
    for (name, role) in [
        ("../evil", "search"),
        ("", "owner"),
        ("ok", "root"),
        ("ok", "Admin"),
    ] {
        let out = cli(
            &[
                "cluster",
                "add-client",
                "--dir",
                &dir,
                "--name",
                name,
                "--role",
                role,
            ],
            SHORT,
        )?;
        assert_eq!(out.status.code(), Some(2), "{name} {role}: {}", text(&out));
    }
    assert!(!c.dir.join("clients").exists());
    for (name, role) in [("searcher", "search"), ("clerk", "owner")] {
        let out = cli(
            &[
                "cluster",
                "add-client",
                "--dir",
                &dir,
                "--name",
                name,
                "--role",
                role,
            ],
            SHORT,
        )?;
        assert!(out.status.success(), "add-client {name}: {}", text(&out));
    }
    let out = cli(
        &["cluster", "up", "--dir", &dir, "--wait", "60"],
        Duration::from_secs(150),
    )?;
    assert!(out.status.success(), "up: {}", text(&out));

    // The admin ingests; the search client finds the image but cannot get or store one.
    let coffee = fixture("sk_coffee.png");
    let out = cli(
        &["ingest", "--cluster", &dir, &coffee.display().to_string()],
        SHORT,
    )?;
    assert!(out.status.success(), "ingest: {}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let id = stdout.split_whitespace().next().ok_or("no id")?.to_owned();
    let searcher = c.profile("searcher");
    let out = cli(
        &[
            "search",
            "--client",
            &searcher,
            &coffee.display().to_string(),
            "--json",
        ],
        SHORT,
    )?;
    assert!(out.status.success(), "search: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&id),
        "{}",
        text(&out)
    );
    let got = c.dir.join("got-by-searcher.png");
    let out = cli(
        &[
            "get",
            "--client",
            &searcher,
            &id,
            "-o",
            &got.display().to_string(),
        ],
        SHORT,
    )?;
    assert!(!out.status.success(), "a search client got an image");
    assert!(!got.exists(), "a search client's get wrote a file");
    assert!(text(&out).contains("PermissionDenied"), "{}", text(&out));
    let skagen = fixture("kpa_skagen.jpg").display().to_string();
    let out = cli(&["ingest", "--client", &searcher, &skagen], SHORT)?;
    assert!(!out.status.success(), "a search client ingested");

    // The owner ingests and gets.
    let clerk = c.profile("clerk");
    let out = cli(&["ingest", "--client", &clerk, &skagen], SHORT)?;
    assert!(out.status.success(), "owner ingest: {}", text(&out));
    let skagen_id = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .ok_or("no id")?
        .to_owned();
    let got = c.dir.join("got-by-clerk.jpg");
    let out = cli(
        &[
            "get",
            "--client",
            &clerk,
            &skagen_id,
            "-o",
            &got.display().to_string(),
        ],
        SHORT,
    )?;
    assert!(out.status.success(), "owner get: {}", text(&out));
    assert_eq!(
        std::fs::read(&got)?,
        std::fs::read(fixture("kpa_skagen.jpg"))?
    );

    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let admin = c.identity(&c.dir)?;
        let searcher = c.identity(&c.dir.join("clients/searcher"))?;
        let clerk = c.identity(&c.dir.join("clients/clerk"))?;
        // The real nodes' keys (only an admin may ask for them).
        let mut nodes = Vec::new();
        for node in 1..=3 {
            let mut ch = c.channel(node, admin.clone()).await?;
            let reply = ch
                .identity(proto::IdentityRequest { meta: meta() })
                .await?
                .into_inner();
            nodes.push(proto::Participant {
                node_id: reply.node_id,
                public_keys: reply.public_keys,
            });
        }
        let key: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(c.dir.join("cluster-key.json"))?)?;
        let stored: u64 = id.parse::<phr_sis::ImageId>()?.0;

        for (who, identity, may_get) in [("searcher", searcher, false), ("clerk", clerk, true)] {
            let mut ch = c.channel(1, identity).await?;
            let mut denied: Vec<(&str, Result<(), tonic::Status>)> = vec![
                (
                    "ExportRecords",
                    ch.export_records(proto::ExportRecordsRequest {
                        meta: meta(),
                        ids: Vec::new(),
                        after: None,
                        limit: 10,
                    })
                    .await
                    .map(drop),
                ),
                (
                    "DkgRound",
                    ch.dkg_round(proto::DkgRoundRequest {
                        meta: meta(),
                        label: b"x".to_vec(),
                        t: 2,
                        participants: nodes.clone(),
                        step: 0,
                        inbox: Vec::new(),
                        commit_transcript: Vec::new(),
                    })
                    .await
                    .map(drop),
                ),
            ];
            if !may_get {
                denied.push((
                    "GetShare",
                    ch.get_share(proto::GetShareRequest {
                        meta: meta(),
                        image_id: stored,
                    })
                    .await
                    .map(drop),
                ));
                denied.push((
                    "StoreRecords",
                    ch.store_records(proto::StoreRecordsRequest {
                        owners: Vec::new(),
                        meta: meta(),
                        records: Vec::new(),
                    })
                    .await
                    .map(drop),
                ));
            }
            for (method, r) in denied {
                let e = r.err().ok_or(format!("{who} was answered {method}"))?;
                assert_eq!(e.code(), Code::PermissionDenied, "{who} {method}: {e:?}");
            }

            // The attack: the client starts a resharing naming nodes 1 and 2 as dealers and
            // itself as the receiver of node 3's share. Every dealer refuses it at once.
            let me = NodeKeys::generate(NodeId::new(3)?, &mut rand::rng());
            for dealer in 1..=2 {
                let mut ch = c
                    .channel(
                        dealer,
                        c.identity(&match who {
                            "searcher" => c.dir.join("clients/searcher"),
                            _ => c.dir.join("clients/clerk"),
                        })?,
                    )
                    .await?;
                let e = ch
                    .reshare_round(reshare_to_me(&key, &nodes, &me)?)
                    .await
                    .err()
                    .ok_or(format!("node {dealer} dealt to {who}"))?;
                assert_eq!(e.code(), Code::PermissionDenied, "{who}: {e:?}");
            }
        }
        // Even the admin cannot name strangers as receivers: the nodes take the receivers'
        // keys from their approved enrolment manifest, and refuse naming the first node
        // whose keys differ.
        let mut strangers = reshare_to_me(
            &key,
            &nodes,
            &NodeKeys::generate(NodeId::new(3)?, &mut rand::rng()),
        )?;
        if let Some(r) = strangers.receivers.get_mut(1) {
            r.public_keys = NodeKeys::generate(NodeId::new(2)?, &mut rand::rng())
                .public()
                .to_bytes()
                .to_vec();
        }
        let mut ch = c.channel(1, admin).await?;
        let e = ch
            .reshare_round(strangers)
            .await
            .err()
            .ok_or("a resharing to two strangers started")?;
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
        assert!(
            e.message()
                .contains("receiver list gives node 2 other identity keys"),
            "{e:?}"
        );
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    // Nothing was dealt: no node started a resharing session.
    for node in 1..=3 {
        let log = c.audit(node)?;
        assert!(!log.contains("reshare-start"), "node {node}: {log}");
    }
    Ok(())
}
