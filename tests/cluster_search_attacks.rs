//! Attacks on the secure search over real node processes: a querier that shares non-bits or
//! asks for images that are not its candidates (raw gRPC, past the client's own checks), a
//! server that shifts the distance shares it returns, and a mask dealer whose points for one
//! server are off its sharings, together with a lying server. The corrupt servers and the
//! corrupt dealer are node processes with a failpoint of the `testing` build
//! (`distance-shift`, `mask-off-points`); the honest querier is the cluster client. Every
//! process is bounded by a timeout.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use dealer_free_node::client::ClusterClient;
use dealer_free_node::cluster::ClusterDir;
use dealer_free_node::failpoint::VAR;
use dealer_free_node::proto;
use dealer_free_node::proto::node_client::NodeClient;
use phr_sis::fp61::Fp61;
use phr_sis::{ImageHash, ImageId, NodeId, SearchParams};
use tonic::transport::Channel;

#[path = "support/pinned.rs"]
mod pinned;
use pinned::Identity;

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

const EXE: &str = env!("CARGO_BIN_EXE_dealer-free-sis");
/// The most any one CLI call may take.
const CALL_LIMIT: Duration = Duration::from_secs(180);

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
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
    /// `cluster up` with `n` nodes and threshold `t`, the nodes started with `failpoints`.
    fn up(n: u8, t: u8, failpoints: Option<&str>) -> TestResult<Cluster> {
        let temp = tempfile::tempdir()?;
        let dir = temp.path().join("cluster");
        let c = Cluster { _temp: temp, dir };
        let out = c.cli_with(
            &[
                "cluster",
                "up",
                "--nodes",
                &n.to_string(),
                "--threshold",
                &t.to_string(),
            ],
            failpoints,
        )?;
        assert!(out.status.success(), "cluster up: {}", text(&out.stderr));
        Ok(c)
    }

    /// Runs the CLI with `--dir`/`--cluster` pointing here, killed after [`CALL_LIMIT`].
    fn cli_with(&self, args: &[&str], failpoints: Option<&str>) -> Result<Output, std::io::Error> {
        let mut command = Command::new("timeout");
        command.args(["-s", "KILL", &CALL_LIMIT.as_secs().to_string(), EXE]);
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
        command.stdin(Stdio::null()).output()
    }

    /// Ingests the fixtures `names`; their ids and pHashes, in order.
    fn ingest(&self, names: &[&str]) -> TestResult<Vec<(ImageId, ImageHash)>> {
        let paths: Vec<String> = names
            .iter()
            .map(|n| fixtures().join(n).display().to_string())
            .collect();
        let mut args = vec!["ingest"];
        args.extend(paths.iter().map(String::as_str));
        let out = self.cli_with(&args, None)?;
        assert!(out.status.success(), "ingest: {}", text(&out.stderr));
        let stdout = text(&out.stdout);
        let mut found = Vec::new();
        for (name, path) in names.iter().zip(&paths) {
            let id = stdout
                .lines()
                .find(|l| l.contains(name))
                .and_then(|l| l.split_whitespace().next())
                .ok_or_else(|| format!("{name} not in the ingest output: {stdout}"))?;
            let bytes = std::fs::read(path)?;
            let hash = phr_sis::phash::phash(&phr_sis::phash::decode_luma(&bytes)?);
            found.push((id.parse::<ImageId>()?, hash));
        }
        Ok(found)
    }

    fn client(&self) -> TestResult<ClusterClient> {
        Ok(ClusterClient::open(
            &ClusterDir::new(&self.dir).profile(),
        )?)
    }

    /// A raw gRPC client of node `id` with the owner's certificate.
    fn raw(&self, id: u8) -> TestResult<NodeClient<Channel>> {
        let profile = dealer_free_node::config::ClientProfile::load(&self.dir.join("client.toml"))?;
        let entry = profile
            .raw
            .nodes
            .iter()
            .find(|n| n.id == id)
            .ok_or("no such node")?;
        let owner = Identity::from_pem(
            std::fs::read(self.dir.join("client.pem"))?,
            std::fs::read(self.dir.join("client.key"))?,
        );
        pinned::pinned(&self.dir, id, &entry.address, Some(&owner))
    }
}

fn meta(tag: u8) -> Option<proto::RequestMeta> {
    let mut request_id = vec![tag; 16];
    for b in request_id.iter_mut().take(8) {
        *b = rand::random();
    }
    Some(proto::RequestMeta {
        request_id,
        unix_ms: dealer_free_node::replay::unix_ms(),
    })
}

fn node(i: u8) -> NodeId {
    NodeId::first(i).last().expect("a node id from 1")
}

/// One judged mask pool of `count` masks among nodes `1 ..= nodes.len()`, dealt through raw
/// RPCs.
async fn deal_raw_pool(
    nodes: &mut [NodeClient<Channel>],
    session: [u8; 32],
    count: u32,
) -> TestResult {
    let servers: Vec<u8> = (1..=u8::try_from(nodes.len())?).collect();
    let mut commitments = Vec::new();
    let mut sealed = Vec::new();
    for n in nodes.iter_mut() {
        let reply = n
            .mask_deal(proto::MaskDealRequest {
                meta: meta(30),
                session: session.to_vec(),
                servers: servers.clone(),
                count,
            })
            .await?
            .into_inner();
        commitments.extend(reply.commitment);
        sealed.extend(reply.deals);
    }
    let mut checks = Vec::new();
    for (i, n) in nodes.iter_mut().enumerate() {
        let recipient = u32::try_from(i + 1)?;
        let reply = n
            .mask_check(proto::MaskCheckRequest {
                meta: meta(31),
                session: session.to_vec(),
                commitments: commitments.clone(),
                deals: sealed
                    .iter()
                    .filter(|d| d.recipient == recipient)
                    .cloned()
                    .collect(),
            })
            .await?
            .into_inner();
        checks.extend(reply.checks);
    }
    for n in nodes.iter_mut() {
        n.mask_judge(proto::MaskJudgeRequest {
            meta: meta(32),
            session: session.to_vec(),
            checks: checks.clone(),
        })
        .await?;
    }
    Ok(())
}

/// The raw query: candidate request (with `tokens`), then each server's shares of the query
/// values `values` (shared with degree `t − 1`) for the images `ids`, masked distance shares
/// back. `Err` with the first refusal.
async fn raw_query(
    nodes: &mut [NodeClient<Channel>],
    t: u8,
    values: &[Fp61; 64],
    ids: &[ImageId],
) -> TestResult<Result<Vec<(NodeId, Vec<Fp61>)>, tonic::Status>> {
    use dealer_free::mpc::HashBitShares;
    use dealer_free::mpc::messages::DistanceRequest;
    let servers: Vec<NodeId> = (1..=u8::try_from(nodes.len())?).map(node).collect();
    let mask_session = [0x5a; 32];
    deal_raw_pool(nodes, mask_session, u32::try_from(ids.len())?).await?;
    let shared = phr_sis::fp61::split_values_for(values, t, &servers, &mut rand::rng())?;
    let mut answers = Vec::new();
    for ((server, shares), n) in shared.into_iter().zip(nodes.iter_mut()) {
        let mut arr = [Fp61::ZERO; 64];
        arr.copy_from_slice(&shares);
        let request = DistanceRequest {
            session: mask_session,
            server,
            first_mask: 0,
            candidates: ids.to_vec(),
            query: HashBitShares::from_shares(arr),
        }
        .to_bytes()?;
        match n
            .distances(proto::DistancesRequest {
                meta: meta(34),
                distance_request: request,
            })
            .await
        {
            Ok(reply) => {
                let response = dealer_free::mpc::messages::DistanceResponse::from_bytes(
                    &reply.into_inner().distance_response,
                )?;
                answers.push((server, response.shares));
            }
            Err(status) => return Ok(Err(status)),
        }
    }
    Ok(Ok(answers))
}

/// Σ λ_j·d_j over the answers: the opened value (any value, not only a distance).
fn open(answers: &[(NodeId, Vec<Fp61>)], k: usize) -> TestResult<Fp61> {
    let ids: Vec<NodeId> = answers.iter().map(|(id, _)| *id).collect();
    let l = phr_sis::fp61::lagrange_at_zero(&ids)?;
    Ok(l.iter()
        .zip(answers)
        .map(|(l, (_, v))| *l * v.get(k).copied().unwrap_or(Fp61::ZERO))
        .sum())
}

#[test]
fn a_querier_that_shares_non_bits_reads_no_stored_hash() -> TestResult {
    let c = Cluster::up(3, 2, None)?;
    let stored = c.ingest(&["sk_coffee.png"])?;
    let (id, hash) = *stored.first().ok_or("nothing ingested")?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let mut nodes = vec![c.raw(1)?, c.raw(2)?, c.raw(3)?];
        // y_k = (1 − 2^k)/2 for the first 60 positions and 1/2 for the rest: 1 − 2·y_k is
        // 2^k, then 0, so the opened "distance" is Σ_{k<60} 2^k·x_k + Σ y_k, and x_k is bit
        // k of the difference.
        let half = Fp61::from(2u8).inv();
        let mut values = [half; 64];
        for (k, v) in values.iter_mut().enumerate().take(60) {
            *v = (Fp61::ONE - Fp61::from_u64(1u64 << k)) * half;
        }
        let answers = raw_query(&mut nodes, 2, &values, &[id]).await?;
        let Ok(answers) = answers else {
            return Ok(());
        };
        let read = (open(&answers, 0)? - values.iter().copied().sum::<Fp61>()).value();
        let actual: u64 = (0..60).map(|k| ((hash.0 >> (63 - k)) & 1) << k).sum();
        panic!(
            "the servers answered a query of non-bits: it read {read:#x}, the stored hash's 60 \
             bits are {actual:#x} (equal: {})",
            read == actual
        );
    })
}

#[test]
fn a_querier_gets_no_distance_of_an_image_that_is_not_its_candidate() -> TestResult {
    let c = Cluster::up(3, 2, None)?;
    let stored = c.ingest(&["sk_coffee.png"])?;
    let (id, hash) = *stored.first().ok_or("nothing ingested")?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let mut nodes = vec![c.raw(1)?, c.raw(2)?, c.raw(3)?];
        // An honest query of bits, but no band in common with anything: no candidate.
        let mut values = [Fp61::ZERO; 64];
        for (k, v) in values.iter_mut().enumerate() {
            *v = Fp61::from((!hash.0 >> (63 - k)) & 1 == 1);
        }
        let answers = raw_query(&mut nodes, 2, &values, &[id]).await?;
        if let Ok(answers) = answers {
            panic!(
                "the servers gave the distance of image {id}, no candidate of the query: {}",
                open(&answers, 0)?.value()
            );
        }
        Ok(())
    })
}

/// Searches for each of `images` and returns, per image, the top hit and the servers named.
fn search_all(
    c: &Cluster,
    images: &[(ImageId, ImageHash)],
) -> TestResult<Vec<Result<dealer_free_node::client::SearchOutcome, String>>> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let client = c.client()?;
        let mut out = Vec::new();
        for (_, hash) in images {
            out.push(
                client
                    .search(*hash, &SearchParams::default())
                    .await
                    .map_err(|e| e.to_string()),
            );
        }
        Ok(out)
    })
}

const IMAGES: [&str; 3] = ["sk_coffee.png", "kpa_skagen.jpg", "plasma_path.jpg"];

#[test]
fn a_lying_server_among_seven_is_corrected_and_named() -> TestResult {
    let c = Cluster::up(7, 3, Some("distance-shift@2"))?;
    let images = c.ingest(&IMAGES)?;
    for ((id, _), found) in images.iter().zip(search_all(&c, &images)?) {
        let found = found?;
        let top = found.hits.first().ok_or("no hit")?;
        assert_eq!((top.id, top.distance), (*id, 0), "{found:?}");
        assert_eq!(
            found.wrong_shares_from.iter().copied().collect::<Vec<_>>(),
            vec![node(2)],
            "{found:?}"
        );
    }
    Ok(())
}

#[test]
fn a_lying_server_among_five_gives_no_silent_wrong_distance() -> TestResult {
    let c = Cluster::up(5, 3, Some("distance-shift@2"))?;
    let images = c.ingest(&IMAGES)?;
    for ((id, _), found) in images.iter().zip(search_all(&c, &images)?) {
        if let Ok(found) = found {
            let top = found.hits.first().ok_or("no hit")?;
            assert_eq!((top.id, top.distance), (*id, 0), "{found:?}");
        }
    }
    Ok(())
}

#[test]
fn a_dealer_with_bad_check_points_and_a_lying_server_change_no_distance() -> TestResult {
    let c = Cluster::up(7, 3, Some("mask-off-points@1,distance-shift@3"))?;
    let images = c.ingest(&IMAGES)?;
    for ((id, _), found) in images.iter().zip(search_all(&c, &images)?) {
        let found = found?;
        let top = found.hits.first().ok_or("no hit")?;
        assert_eq!((top.id, top.distance), (*id, 0), "{found:?}");
        assert_eq!(
            found.wrong_shares_from.iter().copied().collect::<Vec<_>>(),
            vec![node(3)],
            "only the lying server is named: {found:?}"
        );
    }
    Ok(())
}
