//! Attacks on the secure search over real node processes: a querier that shares non-bits or
//! asks for images that are not its candidates (raw gRPC, past the client's own checks), a
//! server that shifts the distance shares it returns, and a mask dealer whose points for one
//! server are off its sharings, together with a lying server. The corrupt servers and the
//! corrupt dealer are node processes with a failpoint of the `testing` build
//! (`distance-shift`, `mask-off-points`); the honest querier is the cluster client. Every
//! process is bounded by a timeout.
#![allow(clippy::expect_used)] // test code: a failed expect is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use dealer_free::mpc::HashBitShares;
use dealer_free::mpc::query::{
    CHECK_MASKS, QueryCommitment, QueryOpening, QueryScope, commit_openings,
};
use dealer_free_node::client::ClusterClient;
use dealer_free_node::cluster::ClusterDir;
use dealer_free_node::failpoint::VAR;
use dealer_free_node::proto::node_client::NodeClient;
use phr_sis::fp61::Fp61;
use phr_sis::token_index::Token;
use phr_sis::{ImageHash, ImageId, NodeId, SearchParams};
use tonic::transport::Channel;

#[path = "support/pinned.rs"]
mod pinned;
use pinned::Identity;

#[path = "support/stage2.rs"]
mod stage2;

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
        Ok(ClusterClient::open(&ClusterDir::new(&self.dir).profile())?)
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

fn node(i: u8) -> NodeId {
    NodeId::first(i).last().expect("a node id from 1")
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

/// The servers' shares of `values` (degree `t − 1`), committed to with honest blinding: a
/// cheating querier that follows the protocol's form, so that only the servers' check can
/// catch it.
fn committed(
    session: [u8; 32],
    scope: QueryScope,
    values: &[Fp61; 64],
    t: u8,
    servers: &[NodeId],
) -> TestResult<(QueryCommitment, Vec<(NodeId, QueryOpening)>)> {
    let mut rng = rand::rng();
    let shared = phr_sis::fp61::split_values_for(values, t, servers, &mut rng)?;
    let blinding = phr_sis::fp61::split_values_for(
        &[Fp61::random(&mut rng), Fp61::random(&mut rng)],
        t,
        servers,
        &mut rng,
    )?;
    let parts = shared
        .into_iter()
        .zip(blinding)
        .map(|((id, v), (_, b))| {
            let mut arr = [Fp61::ZERO; 64];
            arr.copy_from_slice(&v);
            (id, HashBitShares::from_shares(arr), [b[0], b[1]])
        })
        .collect();
    Ok(commit_openings(session, scope, parts, &mut rng)?)
}

/// A query of `values` for the images `ids` through raw calls: candidates (by `tokens`), the
/// query's check, then the distances. The distance shares, or the refusal.
async fn raw_query(
    nodes: &mut [stage2::Raw],
    t: u8,
    values: &[Fp61; 64],
    tokens: Vec<Token>,
    ids: &[ImageId],
) -> TestResult<Result<Vec<(NodeId, Vec<Fp61>)>, tonic::Status>> {
    let servers: Vec<NodeId> = nodes.iter().map(|(id, _)| *id).collect();
    let (session, mask_session): ([u8; 32], [u8; 32]) = (rand::random(), rand::random());
    let count = u32::try_from(ids.len() + CHECK_MASKS)?;
    stage2::deal_raw_pool(nodes, mask_session, count).await?;
    stage2::candidates(nodes, session, tokens, 1).await?;
    let scope = QueryScope::new(mask_session, 0, ids);
    let (commitment, openings) = committed(session, scope, values, t, &servers)?;
    let requests = stage2::requests(session, ids, &commitment, &openings)?;
    let checks = match stage2::query_checks(nodes, &requests).await? {
        Ok(c) => c,
        Err(status) => return Ok(Err(status)),
    };
    let checks = checks.into_iter().map(|(_, c)| c).collect();
    stage2::distances(nodes, session, checks).await
}

#[test]
fn a_querier_that_shares_non_bits_reads_no_stored_hash() -> TestResult {
    let c = Cluster::up(3, 2, None)?;
    let stored = c.ingest(&["sk_coffee.png"])?;
    let (id, hash) = *stored.first().ok_or("nothing ingested")?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let mut nodes = vec![
            (node(1), c.raw(1)?),
            (node(2), c.raw(2)?),
            (node(3), c.raw(3)?),
        ];
        // y_k = (1 − 2^k)/2 for the first 60 positions and 1/2 for the rest: 1 − 2·y_k is
        // 2^k, then 0, so the opened "distance" is Σ_{k<60} 2^k·x_k + Σ y_k, and x_k is bit
        // k of the difference.
        let half = Fp61::from(2u8).inv();
        let mut values = [half; 64];
        for (k, v) in values.iter_mut().enumerate().take(60) {
            *v = (Fp61::ONE - Fp61::from_u64(1u64 << k)) * half;
        }
        // The target's band tokens: what any client allowed to search may get.
        let tokens = c.client()?.tokens(&[hash]).await?.remove(0);
        match raw_query(&mut nodes, 2, &values, tokens.clone(), &[id]).await? {
            Err(status) => {
                assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
                assert!(
                    status.message().contains("do not encode bits"),
                    "{status:?}"
                );
            }
            Ok(answers) => {
                let read = (open(&answers, 0)? - values.iter().copied().sum::<Fp61>()).value();
                let actual: u64 = (0..60).map(|k| ((hash.0 >> (63 - k)) & 1) << k).sum();
                panic!(
                    "the servers answered a query of non-bits: it read {read:#x}, the stored \
                     hash's 60 bits are {actual:#x} (equal: {})",
                    read == actual
                );
            }
        }
        // Bits at every server, but of no one sharing of degree t − 1 (each server's shares
        // chosen apart): refused by the degree test.
        let servers = [node(1), node(2), node(3)];
        let (session, mask_session): ([u8; 32], [u8; 32]) = (rand::random(), rand::random());
        stage2::deal_raw_pool(&mut nodes, mask_session, 1 + u32::try_from(CHECK_MASKS)?).await?;
        stage2::candidates(&mut nodes, session, tokens, 1).await?;
        let mut rng = rand::rng();
        let parts = servers
            .iter()
            .map(|s| {
                let mut v = [Fp61::ZERO; 64];
                for (k, x) in v.iter_mut().enumerate() {
                    *x = Fp61::from(k % usize::from(s.get() + 1) == 0);
                }
                (
                    *s,
                    HashBitShares::from_shares(v),
                    [Fp61::random(&mut rng), Fp61::random(&mut rng)],
                )
            })
            .collect();
        let scope = QueryScope::new(mask_session, 0, &[id]);
        let (commitment, openings) = commit_openings(session, scope, parts, &mut rng)?;
        let requests = stage2::requests(session, &[id], &commitment, &openings)?;
        let checks = stage2::query_checks(&mut nodes, &requests)
            .await?
            .map_err(|s| format!("{s:?}"))?;
        let refused = stage2::distances(
            &mut nodes,
            session,
            checks.into_iter().map(|(_, c)| c).collect(),
        )
        .await?
        .err()
        .ok_or("the servers answered shares of no one polynomial")?;
        assert!(
            refused.message().contains("one polynomial of degree t − 1"),
            "{refused:?}"
        );
        Ok(())
    })
}

#[test]
fn a_querier_gets_no_distance_of_an_image_that_is_not_its_candidate() -> TestResult {
    let c = Cluster::up(3, 2, None)?;
    let stored = c.ingest(&["sk_coffee.png", "kpa_skagen.jpg"])?;
    let (id, hash) = *stored.first().ok_or("nothing ingested")?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let mut nodes = vec![
            (node(1), c.raw(1)?),
            (node(2), c.raw(2)?),
            (node(3), c.raw(3)?),
        ];
        let servers = [node(1), node(2), node(3)];
        let mut values = [Fp61::ZERO; 64];
        for (k, v) in values.iter_mut().enumerate() {
            *v = Fp61::from((!hash.0 >> (63 - k)) & 1 == 1);
        }
        let mask_session: [u8; 32] = rand::random();
        stage2::deal_raw_pool(&mut nodes, mask_session, 64).await?;
        // No candidate round at all, then one that lists nothing (a token no image has):
        // either way the image is no candidate of the query, and nothing is answered.
        for ask_candidates in [false, true] {
            let session: [u8; 32] = rand::random();
            if ask_candidates {
                let lists = stage2::candidates(&mut nodes, session, vec![[0x42; 32]], 1).await?;
                assert!(lists.iter().all(|(_, l)| l.candidates.is_empty()));
            }
            let scope = QueryScope::new(mask_session, 0, &[id]);
            let (commitment, openings) = committed(session, scope, &values, 2, &servers)?;
            let requests = stage2::requests(session, &[id], &commitment, &openings)?;
            let refused = stage2::query_checks(&mut nodes, &requests)
                .await?
                .err()
                .ok_or_else(|| {
                    format!("the servers checked a query for image {id}, no candidate")
                })?;
            let want = if ask_candidates {
                tonic::Code::InvalidArgument
            } else {
                tonic::Code::FailedPrecondition
            };
            assert_eq!(refused.code(), want, "{refused:?}");
        }
        // Every image listed at once is refused: no band votes asked for, or more tokens
        // than the layout has bands.
        let tokens = c.client()?.tokens(&[hash]).await?.remove(0);
        for (tokens, votes, why) in [
            (tokens.clone(), 0, "at least 1 band votes"),
            (vec![[7u8; 32]; 9], 1, "9 tokens, at most 8"),
        ] {
            let e = stage2::candidates(&mut nodes, rand::random(), tokens, votes)
                .await
                .err()
                .ok_or(why)?;
            assert!(e.to_string().contains(why), "{e}");
        }
        // The image listed, but a request for more ids than listed: refused before any
        // masks are taken, then the session is over.
        let session: [u8; 32] = rand::random();
        let lists = stage2::candidates(&mut nodes, session, tokens, 1).await?;
        let listed: Vec<ImageId> = lists[0].1.candidates.iter().map(|(i, _)| *i).collect();
        let mut more = listed.clone();
        more.push(ImageId(u64::MAX));
        let scope = QueryScope::new(mask_session, 0, &more);
        let (commitment, openings) = committed(session, scope, &values, 2, &servers)?;
        let requests = stage2::requests(session, &more, &commitment, &openings)?;
        let refused = stage2::query_checks(&mut nodes, &requests)
            .await?
            .err()
            .ok_or("the servers checked a query of more images than they listed")?;
        assert!(
            refused.message().contains("images asked for"),
            "{refused:?}"
        );
        Ok(())
    })
}

/// Searches for each of `images` and returns, per image, the top hit and the servers named.
/// A relaying client (the cluster's admin, over raw calls) that withholds one check from
/// one server, so that it sums other dealers than the others, gets no answer from the pool;
/// and the scrub's random masks answer only for the images their dealing bound to them,
/// only once every server confirmed, and only once.
#[test]
fn a_relay_that_splits_the_dealers_or_the_images_gets_no_mask_used() -> TestResult {
    use dealer_free::mpc::masks::MaskKind;
    use dealer_free::mpc::masks::session::MaskOrder;
    use dealer_free::mpc::share_check::{ShareCheckAnswer, ShareCheckOrder};
    use dealer_free_node::proto;

    let c = Cluster::up(3, 2, None)?;
    let stored = c.ingest(&["sk_coffee.png", "kpa_skagen.jpg"])?;
    let (id, hash) = *stored.first().ok_or("nothing ingested")?;
    let other = stored.get(1).ok_or("one image only")?.0;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let mut nodes = vec![
            (node(1), c.raw(1)?),
            (node(2), c.raw(2)?),
            (node(3), c.raw(3)?),
        ];
        let servers: Vec<NodeId> = nodes.iter().map(|(n, _)| *n).collect();

        // Node 1 never sees node 2's check of dealer 3: it cannot judge dealer 3 and sums
        // dealers 1 and 2, the others all three. Before the confirmation each server would
        // have answered from its own sum; now none takes the pool into use.
        let mask_session: [u8; 32] = rand::random();
        let order = MaskOrder {
            session: mask_session,
            servers: servers.clone(),
            count: 64,
            kind: MaskKind::ZeroSum,
            ids: Vec::new(),
        };
        let judged = stage2::deal_raw_pool_with(&mut nodes, &order, |judge, dealer, checker| {
            judge == node(1) && dealer == node(3) && checker == node(2)
        })
        .await?;
        let accepted: Vec<Vec<u8>> = judged.iter().map(|j| j.accepted.clone()).collect();
        assert_eq!(accepted[0], vec![1, 2], "{accepted:?}");
        assert_eq!(accepted[1], vec![1, 2, 3], "{accepted:?}");
        let mut values = [Fp61::ZERO; 64];
        for (k, v) in values.iter_mut().enumerate() {
            *v = Fp61::from((hash.0 >> (63 - k)) & 1 == 1);
        }
        let session: [u8; 32] = rand::random();
        let tokens = c.client()?.tokens(&[hash]).await?.remove(0);
        stage2::candidates(&mut nodes, session, tokens, 1).await?;
        let scope = QueryScope::new(mask_session, 0, &[id]);
        let (commitment, openings) = committed(session, scope, &values, 2, &servers)?;
        let requests = stage2::requests(session, &[id], &commitment, &openings)?;
        let refused = stage2::query_checks(&mut nodes, &requests)
            .await?
            .err()
            .ok_or("a pool the servers sum differently was used")?;
        assert!(refused.message().contains("confirmation"), "{refused:?}");

        // The scrub's random masks, bound to the two images in order.
        let random: [u8; 32] = rand::random();
        let mut ids = vec![id, other];
        ids.sort_unstable();
        let order = MaskOrder {
            session: random,
            servers: servers.clone(),
            count: 2,
            kind: MaskKind::Random,
            ids: ids.clone(),
        };
        let judged = stage2::deal_raw_pool_with(&mut nodes, &order, |_, _, _| false).await?;
        let confirmations: Vec<Vec<u8>> = judged.iter().map(|j| j.confirmation.clone()).collect();
        let ask = |ids: Vec<ImageId>, confirmations: Vec<Vec<u8>>| proto::CheckBitSharesRequest {
            meta: stage2::meta(),
            order: ShareCheckOrder {
                mask_session: random,
                first_mask: 0,
                ids,
            }
            .to_bytes(),
            confirmations,
        };
        let n1 = &mut nodes[0].1;
        // Without every server's confirmation: refused.
        let e = n1
            .check_bit_shares(ask(ids.clone(), confirmations[..2].to_vec()))
            .await
            .err()
            .ok_or("answered without every confirmation")?;
        assert!(e.message().contains("confirmation"), "{e:?}");
        // Another image at mask 0 than the dealing bound there (one node asked for `other`
        // with the mask the others use for `id`): refused.
        let e = n1
            .check_bit_shares(ask(vec![ids[1]], confirmations.clone()))
            .await
            .err()
            .ok_or("answered for an image not bound to that mask")?;
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
        assert!(e.message().contains("bound"), "{e:?}");
        // The bound images: answered, once.
        let answer = n1
            .check_bit_shares(ask(ids.clone(), confirmations.clone()))
            .await?
            .into_inner();
        let answer = ShareCheckAnswer::from_bytes(&answer.answer)?;
        assert_eq!(answer.values.len(), 2);
        assert!(answer.values.iter().all(Option::is_some));
        let e = n1
            .check_bit_shares(ask(ids.clone(), confirmations.clone()))
            .await
            .err()
            .ok_or("the same masks answered twice")?;
        assert!(e.message().contains("mask"), "{e:?}");
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    Ok(())
}

fn search_all(
    c: &Cluster,
    images: &[(ImageId, ImageHash)],
) -> TestResult<Vec<Result<dealer_free_node::client::SearchResult, String>>> {
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
            found.servers.len(),
            7,
            "every reachable node is asked: {found:?}"
        );
        assert_eq!(
            (found.integrity.corrects(), found.integrity.detects()),
            (1, 2)
        );
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
    // 2t − 1 servers: no share to spare, so the shift cannot be seen in the shares; the
    // result says so instead of vouching for the distances.
    let c = Cluster::up(5, 3, Some("distance-shift@2"))?;
    let images = c.ingest(&IMAGES)?;
    for ((id, _), found) in images.iter().zip(search_all(&c, &images)?) {
        let found = found?;
        let top = found.hits.first().ok_or("no hit")?;
        assert_eq!(top.id, *id, "{found:?}");
        assert_eq!(found.integrity.detects(), 0, "{found:?}");
        assert!(
            found.integrity.to_string().contains("would go unnoticed"),
            "{}",
            found.integrity
        );
    }
    // Six nodes, one lying: a wrong share is detected and the search fails rather than
    // return it.
    let c = Cluster::up(6, 3, Some("distance-shift@2"))?;
    let images = c.ingest(&IMAGES[..1])?;
    for found in search_all(&c, &images)? {
        let e = found
            .err()
            .ok_or("a wrong share among 2t servers went unnoticed")?;
        assert!(e.contains("cannot be decoded"), "{e}");
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
