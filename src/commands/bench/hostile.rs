//! `bench cluster --hostile SECS`: one authorised client abusing the nodes beside four honest
//! searching clients, and the same honest clients beside a harmless client sending as many
//! well-formed requests per second, so that both runs share the machine alike.
//!
//! The abuses, each sent round-robin to every node, with the status codes counted:
//!
//! | abuse | request | expected |
//! |---|---|---|
//! | `oversized_body` | a 1.5 MiB token request (`EvaluateTokens` takes 1 MiB) | `RESOURCE_EXHAUSTED` from the frame's header, before the message is read |
//! | `unauthorised_body` | a 1.5 MiB `StoreRecords` from a certificate of the cluster CA no node lists | its connection closed after the TLS handshake, before any request (a transport error) |
//! | `short_deadline` | a valid token request of 3,000 images with a 5 ms deadline | `DEADLINE_EXCEEDED`/`CANCELLED`, or `RESOURCE_EXHAUSTED` |
//! | `duplicate_id_export` | `ExportRecords` naming one stored id 256 times | `INVALID_ARGUMENT` |
//! | `zero_vote_candidates` | a candidate request asking for 0 band votes | `INVALID_ARGUMENT` |
//! | `token_flood` | token requests of 24,000 elements that are no points | `INVALID_ARGUMENT`, then `RESOURCE_EXHAUSTED` |
//! | `fresh_id_flood` | `GetShare` of an id nobody stored, each with a fresh request id | `NOT_FOUND` |
//!
//! The record (`op: "hostile"`) gives per abuse the requests sent and the codes received;
//! `honest_p50_ms`/`honest_p99_ms` (beside the abuser), `unloaded_p50_ms`/`unloaded_p99_ms`
//! (beside the harmless client), `honest_errors`, and each node's peak resident memory
//! (`node_rss_mb`, from `/proc`). The bench fails if any abuse was answered `OK`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use dealer_free::dkg::SessionId;
use dealer_free::mpc::messages::CandidateRequest;
use dealer_free::oprf::tokens::{TokenContext, TokenRequest};
use dealer_free::wire::{MessageKind, Writer};
use dealer_free_node::access::{ClientName, Role};
use dealer_free_node::client::{ClusterClient, IngestFile, SEARCH_MASK_POOL};
use dealer_free_node::cluster::ClusterDir;
use dealer_free_node::proto;
use dealer_free_node::proto::node_client::NodeClient;
use phr_sis::{BandLayout, ImageHash, NodeId, Threshold};
use rand::{Rng, RngCore};
use serde_json::json;
use tonic::transport::Channel;

use super::cluster::{Searched, search_back_to_back};
use super::{Record, percentile};

/// Honest searching clients.
const HONEST: usize = 4;
/// Requests the abuser (and the harmless client) keeps in flight.
const IN_FLIGHT: usize = 8;

/// The abuses, in the order they are sent.
const ABUSES: [&str; 7] = [
    "oversized_body",
    "unauthorised_body",
    "short_deadline",
    "duplicate_id_export",
    "zero_vote_candidates",
    "token_flood",
    "fresh_id_flood",
];

fn meta() -> Option<proto::RequestMeta> {
    let mut id = vec![0u8; 16];
    rand::rng().fill_bytes(&mut id);
    let unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Some(proto::RequestMeta {
        request_id: id,
        unix_ms,
    })
}

/// The prepared bodies of the abuses.
struct Bodies {
    oversized: Vec<u8>,
    big_tokens: Vec<u8>,
    not_points: Vec<u8>,
    zero_votes: Vec<u8>,
    unauthorised: Vec<u8>,
    stored: u64,
}

impl Bodies {
    fn new(stored: u64, threshold: Threshold) -> anyhow::Result<Bodies> {
        let mut rng = rand::rng();
        let context = TokenContext::new(b"bench-hostile", BandLayout::default())?;
        // 3,000 images: 768,000 bytes of blinded elements, under the method's 1 MiB.
        let hashes: Vec<ImageHash> = (0..3_000).map(|_| ImageHash(rng.random())).collect();
        let (_, big) = TokenRequest::for_images(&context, &hashes, &mut rng)?;
        let count = 8 * 3_000;
        let mut w = Writer::new(MessageKind::TokenRequest);
        w.u8(8);
        w.u16(3_000);
        w.bytes(&vec![0xFF; 32 * count]);
        let session = SessionId::derive(b"bench-hostile", threshold, &BTreeMap::new());
        let zero_votes = CandidateRequest {
            session: *session.as_bytes(),
            min_band_votes: 0,
            tokens: vec![[7u8; 32]; 8],
        }
        .to_bytes()?;
        Ok(Bodies {
            oversized: vec![0u8; (1 << 20) + (1 << 19)],
            big_tokens: big.to_bytes(),
            not_points: w.finish(),
            zero_votes,
            unauthorised: vec![0u8; (1 << 20) + (1 << 19)],
            stored,
        })
    }
}

/// Sends abuse `which` to `node` (`stranger` is a client no node lists).
async fn abuse(
    which: &str,
    mut node: NodeClient<Channel>,
    mut stranger: NodeClient<Channel>,
    bodies: &Bodies,
) -> tonic::Code {
    let code = |r: Result<tonic::Code, tonic::Status>| r.unwrap_or_else(|s| s.code());
    match which {
        "oversized_body" => code(
            node.evaluate_tokens(proto::EvaluateTokensRequest {
                meta: meta(),
                token_request: bodies.oversized.clone(),
            })
            .await
            .map(|_| tonic::Code::Ok),
        ),
        "unauthorised_body" => code(
            stranger
                .store_records(proto::StoreRecordsRequest {
                    owners: Vec::new(),
                    meta: meta(),
                    records: vec![bodies.unauthorised.clone()],
                })
                .await
                .map(|_| tonic::Code::Ok),
        ),
        "short_deadline" => {
            let mut request = tonic::Request::new(proto::EvaluateTokensRequest {
                meta: meta(),
                token_request: bodies.big_tokens.clone(),
            });
            request.set_timeout(Duration::from_millis(5));
            code(node.evaluate_tokens(request).await.map(|_| tonic::Code::Ok))
        }
        "duplicate_id_export" => code(
            node.export_records(proto::ExportRecordsRequest {
                meta: meta(),
                ids: vec![bodies.stored; 256],
                after: None,
                limit: 0,
            })
            .await
            .map(|_| tonic::Code::Ok),
        ),
        "zero_vote_candidates" => code(
            node.candidates(proto::CandidatesRequest {
                meta: meta(),
                candidate_request: bodies.zero_votes.clone(),
            })
            .await
            .map(|_| tonic::Code::Ok),
        ),
        "token_flood" => code(
            node.evaluate_tokens(proto::EvaluateTokensRequest {
                meta: meta(),
                token_request: bodies.not_points.clone(),
            })
            .await
            .map(|_| tonic::Code::Ok),
        ),
        _ => {
            let image_id = rand::rng().random::<u64>() | 1 << 63;
            code(
                node.get_share(proto::GetShareRequest {
                    meta: meta(),
                    image_id,
                })
                .await
                .map(|_| tonic::Code::Ok),
            )
        }
    }
}

/// What one phase measured.
struct Phase {
    latencies: Vec<f64>,
    honest_errors: BTreeMap<String, usize>,
    sent: u64,
    codes: BTreeMap<String, BTreeMap<String, u64>>,
}

/// Runs the honest clients for `duration` beside `load` (the abuser or the harmless client).
fn phase<F, Fut>(
    rt: &tokio::runtime::Runtime,
    honest: &[ClusterClient],
    queries: &Arc<Vec<ImageHash>>,
    duration: Duration,
    load: F,
) -> Phase
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = (String, tonic::Code)> + Send,
{
    let codes = Arc::new(Mutex::new(BTreeMap::<String, BTreeMap<String, u64>>::new()));
    let sent = Arc::new(AtomicU64::new(0));
    let load = Arc::new(load);
    let honest = rt.block_on(async {
        let mut searches = tokio::task::JoinSet::new();
        for (c, client) in honest.iter().cloned().enumerate() {
            searches.spawn(search_back_to_back(
                client,
                Arc::clone(queries),
                c,
                HONEST,
                duration,
            ));
        }
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..IN_FLIGHT {
            let (load, codes, sent) = (Arc::clone(&load), Arc::clone(&codes), Arc::clone(&sent));
            set.spawn(async move {
                let start = Instant::now();
                while start.elapsed() < duration {
                    let n = sent.fetch_add(1, Ordering::Relaxed);
                    let (what, code) = load(n).await;
                    if let Ok(mut m) = codes.lock() {
                        *m.entry(what)
                            .or_default()
                            .entry(format!("{code:?}"))
                            .or_default() += 1;
                    }
                }
            });
        }
        while set.join_next().await.is_some() {}
        let mut all = Searched::default();
        while let Some(one) = searches.join_next().await {
            if let Ok(one) = one {
                all.add(one);
            }
        }
        all
    });
    Phase {
        latencies: honest.latencies_ms,
        honest_errors: honest.errors,
        sent: sent.load(Ordering::Relaxed),
        codes: codes.lock().map(|c| c.clone()).unwrap_or_default(),
    }
}

/// Peak resident memory of each node's process, in MiB (Linux; none elsewhere).
fn node_rss_mb(dir: &ClusterDir, nodes: u8) -> Vec<Option<f64>> {
    (1..=nodes)
        .map(|id| {
            let pid = dir.running_pid(id)?;
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let kb: f64 = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()?;
            Some((kb / 1024.0 * 10.0).round() / 10.0)
        })
        .collect()
}

/// Adds the clients of the measurement to cluster `dir` (before its nodes start).
pub(super) fn prepare(dir: &ClusterDir, nodes: u8) -> anyhow::Result<()> {
    for i in 1..=HONEST {
        let name: ClientName = format!("honest-{i}").parse()?;
        dir.add_client(&name, Role::Search)?;
    }
    dir.add_client(&"hostile".parse()?, Role::Admin)?;
    dir.add_client(&"harmless".parse()?, Role::Owner)?;
    // A client of the cluster CA that no node lists: its certificate passes the handshake,
    // its requests the access layer refuses.
    dir.add_client(&"stranger".parse()?, Role::Search)?;
    for id in 1..=nodes {
        let path = dir.node_config(id);
        let mut config: toml::Table = std::fs::read_to_string(&path)?.parse()?;
        if let Some(toml::Value::Array(clients)) = config.get_mut("clients") {
            clients.retain(|c| c.get("name").and_then(toml::Value::as_str) != Some("stranger"));
        }
        std::fs::write(&path, toml::to_string(&config)?)?;
    }
    Ok(())
}

/// Runs the hostile and the harmless phase; fails if any abuse got `OK`.
pub(super) fn run(
    rt: &tokio::runtime::Runtime,
    dir: &ClusterDir,
    stored: &[(u64, IngestFile)],
    seconds: u64,
    nodes: u8,
    t: u8,
) -> anyhow::Result<Record> {
    let duration = Duration::from_secs(seconds);
    let profile = |name: &str| -> anyhow::Result<std::path::PathBuf> {
        Ok(dir.client_dir(&name.parse()?).join("client.toml"))
    };
    let _entered = rt.enter();
    let honest: Vec<ClusterClient> = rt.block_on(async {
        let mut v = Vec::new();
        for i in 1..=HONEST {
            let c = ClusterClient::open(&profile(&format!("honest-{i}"))?)?
                .with_mask_pool(SEARCH_MASK_POOL);
            let servers = c.search_servers().await?;
            c.deal_masks(&servers, SEARCH_MASK_POOL).await?;
            v.push(c);
        }
        Ok::<_, anyhow::Error>(v)
    })?;
    let hostile = ClusterClient::open(&profile("hostile")?)?;
    let stranger = ClusterClient::open(&profile("stranger")?)?;
    let harmless = ClusterClient::open(&profile("harmless")?)?;
    let ids: Vec<NodeId> = hostile.node_ids();
    let pick = |c: &ClusterClient, n: u64| -> anyhow::Result<NodeClient<Channel>> {
        let id = ids[(n as usize) % ids.len()];
        c.node_client(id).context("no such node")
    };
    let (first_id, _) = stored.first().context("nothing stored")?;
    let threshold = Threshold::new(t, nodes)?;
    let bodies = Arc::new(Bodies::new(*first_id, threshold)?);
    let queries: Arc<Vec<ImageHash>> = Arc::new(stored.iter().map(|(_, f)| f.hash).collect());

    // The abuser.
    let clients: Vec<(NodeClient<Channel>, NodeClient<Channel>)> = (0..ids.len() as u64)
        .map(|n| Ok((pick(&hostile, n)?, pick(&stranger, n)?)))
        .collect::<anyhow::Result<_>>()?;
    let clients = Arc::new(clients);
    let b = Arc::clone(&bodies);
    let abused = phase(rt, &honest, &queries, duration, move |n| {
        let (clients, bodies) = (Arc::clone(&clients), Arc::clone(&b));
        async move {
            let which = ABUSES[(n as usize) % ABUSES.len()];
            let (node, stranger) = clients[(n as usize / ABUSES.len()) % clients.len()].clone();
            (
                which.to_owned(),
                abuse(which, node, stranger, &bodies).await,
            )
        }
    });
    let rss = node_rss_mb(dir, nodes);

    // The harmless client, at the abuser's rate.
    let rate = abused.sent as f64 / duration.as_secs_f64().max(1e-9);
    let harmless_nodes: Arc<Vec<NodeClient<Channel>>> = Arc::new(
        (0..ids.len() as u64)
            .map(|n| pick(&harmless, n))
            .collect::<anyhow::Result<_>>()?,
    );
    let share_ids: Arc<Vec<u64>> = Arc::new(stored.iter().map(|(id, _)| *id).collect());
    let start = Instant::now();
    let calm = phase(rt, &honest, &queries, duration, move |n| {
        let (nodes, ids) = (Arc::clone(&harmless_nodes), Arc::clone(&share_ids));
        async move {
            // Paced to the abuser's rate, all in-flight tasks together.
            let due = start + Duration::from_secs_f64(n as f64 / rate.max(1e-9));
            tokio::time::sleep_until(due.into()).await;
            let mut node = nodes[(n as usize) % nodes.len()].clone();
            let r = node
                .get_share(proto::GetShareRequest {
                    meta: meta(),
                    image_id: ids[(n as usize) % ids.len()],
                })
                .await;
            (
                "get_share".to_owned(),
                r.map_or_else(|s| s.code(), |_| tonic::Code::Ok),
            )
        }
    });

    let abuses: serde_json::Map<String, serde_json::Value> = ABUSES
        .iter()
        .map(|a| {
            let codes = abused.codes.get(*a).cloned().unwrap_or_default();
            let sent: u64 = codes.values().sum();
            ((*a).to_owned(), json!({ "sent": sent, "codes": codes }))
        })
        .collect();
    let got_ok: Vec<&str> = ABUSES
        .iter()
        .copied()
        .filter(|a| abused.codes.get(*a).is_some_and(|c| c.contains_key("Ok")))
        .collect();
    for (e, n) in abused.honest_errors.iter().chain(&calm.honest_errors) {
        eprintln!("bench cluster --hostile: {n} honest search(es) failed: {e}");
    }
    let p99 = percentile(&abused.latencies, 99.0);
    let unloaded_p99 = percentile(&calm.latencies, 99.0);
    let max_rss = rss.iter().flatten().copied().fold(0.0, f64::max);
    let record = Record::new("cluster", "hostile", 1)
        .with("nodes", json!(nodes))
        .with("t", json!(t))
        .with("seconds", json!(seconds))
        .with("honest_clients", json!(HONEST))
        .with(
            "abuse_requests_per_second",
            json!((rate * 10.0).round() / 10.0),
        )
        .with("abuses", serde_json::Value::Object(abuses))
        .with(
            "harmless",
            json!({ "sent": calm.sent, "codes": calm.codes.get("get_share") }),
        )
        .with("honest_searches", json!(abused.latencies.len()))
        .with(
            "honest_p50_ms",
            json!(round2(percentile(&abused.latencies, 50.0))),
        )
        .with("honest_p99_ms", json!(round2(p99)))
        .with("unloaded_searches", json!(calm.latencies.len()))
        .with(
            "unloaded_p50_ms",
            json!(round2(percentile(&calm.latencies, 50.0))),
        )
        .with("unloaded_p99_ms", json!(round2(unloaded_p99)))
        .with(
            "honest_errors",
            json!(abused.honest_errors.values().sum::<usize>()),
        )
        .with(
            "unloaded_errors",
            json!(calm.honest_errors.values().sum::<usize>()),
        )
        .with("node_rss_mb", json!(rss))
        .with("abuse_answered_ok", json!(got_ok))
        .with(
            "goal_met",
            json!(
                got_ok.is_empty()
                    && abused.honest_errors.is_empty()
                    && p99 <= 2.0 * unloaded_p99
                    && max_rss < 1024.0
            ),
        );
    anyhow::ensure!(
        got_ok.is_empty(),
        "abuses answered OK: {} (the node did work it must refuse)",
        got_ok.join(", ")
    );
    Ok(record)
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}
