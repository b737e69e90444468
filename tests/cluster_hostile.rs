//! One authorised client abusing real node processes: each abuse is refused before the work
//! it asks for, and another client is served meanwhile. Each test was first run against the
//! build before these defences (`DEALER_FREE_SIS_TEST_EXE=<older build>`), where the abuse
//! got the work done.

#[path = "support/cluster.rs"]
mod cluster;

use std::time::Duration;

use cluster::{Cluster, TestResult, fixture, meta, text};
use dealer_free::dkg::SessionId;
use dealer_free::mpc::messages::CandidateRequest;
use dealer_free::oprf::tokens::{TokenContext, TokenRequest};
use dealer_free::wire::{MessageKind, Writer};
use dealer_free_node::client::ClusterClient;
use dealer_free_node::proto;
use dealer_free_node::proto::node_client::NodeClient;
use phr_sis::{BandLayout, ImageHash, NodeId, Threshold};
use rand::Rng;
use tonic::Code;
use tonic::transport::Channel;

/// A 3-node cluster (t = 2) with one image stored and a second client `other` (search role).
fn cluster() -> TestResult<(Cluster, String)> {
    cluster_with(&[("other", "search")])
}

/// A 3-node cluster (t = 2) with one image stored and the clients `(name, role)`.
fn cluster_with(clients: &[(&str, &str)]) -> TestResult<(Cluster, String)> {
    let c = Cluster::new()?;
    c.ok(&["cluster", "init", "--nodes", "3", "--threshold", "2"])?;
    for (name, role) in clients {
        c.ok(&["cluster", "add-client", "--name", name, "--role", role])?;
    }
    c.ok(&["cluster", "up", "--wait", "20"])?;
    let (ids, out) = c.ingest(&[fixture("sk_coffee.png")])?;
    let id = ids
        .first()
        .ok_or_else(|| format!("nothing stored: {}", text(&out.stderr)))?
        .clone();
    Ok((c, id))
}

fn runtime() -> TestResult<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

fn node(client: &ClusterClient, id: u8) -> TestResult<NodeClient<Channel>> {
    Ok(client
        .node_client(NodeId::new(id)?)
        .ok_or("no such node")?
        .max_encoding_message_size(64 << 20))
}

fn code<T>(r: Result<tonic::Response<T>, tonic::Status>) -> Code {
    r.map_or_else(|s| s.code(), |_| Code::Ok)
}

#[test]
fn a_body_larger_than_its_method_takes_is_refused_before_it_is_decoded() -> TestResult {
    let (c, _) = cluster()?;
    let rt = runtime()?;
    let _entered = rt.enter();
    let client = ClusterClient::open(&c.dir.join("client.toml"))?;
    let mut n1 = node(&client, 1)?;
    // 1.5 MiB of token request (the method takes 1 MiB) and 128 KiB of share request.
    let got = rt.block_on(n1.evaluate_tokens(proto::EvaluateTokensRequest {
        meta: meta(),
        token_request: vec![0; (1 << 20) + (1 << 19)],
    }));
    let status = got.err().ok_or("an oversized token request was answered")?;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("EvaluateTokens"), "{status:?}");
    let got = rt.block_on(n1.export_records(proto::ExportRecordsRequest {
        meta: meta(),
        ids: vec![1; 16 << 10],
        after: None,
        limit: 0,
    }));
    assert_eq!(got.err().map(|s| s.code()), Some(Code::ResourceExhausted));
    // A small body of many empty elements, which would decode to far more memory than its
    // bytes: refused before it is decoded.
    let got = rt.block_on(n1.mask_check(proto::MaskCheckRequest {
        deals: vec![Vec::new(); dealer_free_node::codec::MAX_FIELDS + 1],
        ..Default::default()
    }));
    let status = got
        .err()
        .ok_or("a message of 4,097 empty elements was decoded")?;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("fields"), "{status:?}");
    Ok(())
}

#[test]
fn an_export_naming_one_record_many_times_and_a_zero_vote_query_are_refused() -> TestResult {
    let (c, id) = cluster()?;
    let rt = runtime()?;
    let _entered = rt.enter();
    let client = ClusterClient::open(&c.dir.join("client.toml"))?;
    let mut n1 = node(&client, 1)?;
    let id = u64::from_str_radix(&id, 16)?;
    let got = rt.block_on(n1.export_records(proto::ExportRecordsRequest {
        meta: meta(),
        ids: vec![id; 256],
        after: None,
        limit: 0,
    }));
    let status = got.err().ok_or("256 copies of one record were exported")?;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("listed twice"), "{status:?}");
    // A query asking for 0 band votes would list every stored image.
    let session = SessionId::derive(b"t", Threshold::new(2, 3)?, &Default::default());
    let request = CandidateRequest {
        session: *session.as_bytes(),
        min_band_votes: 0,
        tokens: vec![[7; 32]; 8],
    }
    .to_bytes()?;
    let got = rt.block_on(n1.candidates(proto::CandidatesRequest {
        meta: meta(),
        candidate_request: request,
    }));
    assert_eq!(code(got), Code::InvalidArgument);
    Ok(())
}

#[test]
fn a_flood_of_token_requests_that_do_not_decode_runs_into_the_budget() -> TestResult {
    let (c, _) = cluster()?;
    let rt = runtime()?;
    let _entered = rt.enter();
    let client = ClusterClient::open(&c.dir.join("client.toml"))?;
    let mut n1 = node(&client, 1)?;
    // 3,000 images of 8 bands whose every element is no point: charged from the header.
    let mut w = Writer::new(MessageKind::TokenRequest);
    w.u8(8);
    w.u16(3_000);
    w.bytes(&vec![0xFF; 32 * 8 * 3_000]);
    let flood = w.finish();
    let first = rt.block_on(n1.evaluate_tokens(proto::EvaluateTokensRequest {
        meta: meta(),
        token_request: flood.clone(),
    }));
    let first = first.err().ok_or("a request of no points was answered")?;
    assert_eq!(first.code(), Code::InvalidArgument, "{first:?}");
    let mut codes = vec![first.code()];
    for _ in 1..20 {
        codes.push(code(rt.block_on(n1.evaluate_tokens(
            proto::EvaluateTokensRequest {
                meta: meta(),
                token_request: flood.clone(),
            },
        ))));
    }
    // 24,000 evaluations a minute (the ingest above took one): the 8th request of 3,000 is
    // past the budget.
    assert!(
        codes[..7].iter().all(|c| *c == Code::InvalidArgument),
        "{codes:?}"
    );
    assert!(
        codes[7..].iter().all(|c| *c == Code::ResourceExhausted),
        "{codes:?}"
    );
    // Another client's budget is its own.
    let other = ClusterClient::open(&c.dir.join("clients/other/client.toml"))?;
    let hit = rt.block_on(other.search(
        phr_sis::phash::phash(&phr_sis::phash::decode_luma(&std::fs::read(fixture(
            "sk_coffee.png",
        ))?)?),
        &phr_sis::SearchParams::default(),
    ))?;
    assert!(!hit.hits.is_empty());
    Ok(())
}

#[test]
fn a_caller_past_its_share_of_the_work_is_shed_while_another_is_served() -> TestResult {
    let (c, _) = cluster()?;
    for id in 1..=3 {
        c.set_limit(id, "max_concurrent_per_client", 2)?;
    }
    c.ok(&["cluster", "down"])?;
    c.ok(&["cluster", "up", "--wait", "20"])?;
    let rt = runtime()?;
    let _entered = rt.enter();
    let client = ClusterClient::open(&c.dir.join("client.toml"))?;
    // Valid token requests of 2,000 images each: real work for the node.
    let context = TokenContext::new(b"hostile", BandLayout::default())?;
    let mut rng = rand::rng();
    let hashes: Vec<ImageHash> = (0..2000).map(|_| ImageHash(rng.random())).collect();
    let (_, request) = TokenRequest::for_images(&context, &hashes, &mut rng)?;
    let body = request.to_bytes();
    let codes: Vec<Code> = rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..6 {
            let mut n1 = node(&client, 1)?;
            let body = body.clone();
            set.spawn(async move {
                code(
                    n1.evaluate_tokens(proto::EvaluateTokensRequest {
                        meta: meta(),
                        token_request: body,
                    })
                    .await,
                )
            });
        }
        // Meanwhile another client is served.
        let other = ClusterClient::open(&c.dir.join("clients/other/client.toml"))?;
        let image = phr_sis::phash::phash(&phr_sis::phash::decode_luma(&std::fs::read(fixture(
            "sk_coffee.png",
        ))?)?);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let hit = other
            .search(image, &phr_sis::SearchParams::default())
            .await?;
        assert!(!hit.hits.is_empty());
        let mut codes = Vec::new();
        while let Some(c) = set.join_next().await {
            codes.push(c?);
        }
        Ok::<_, Box<dyn std::error::Error>>(codes)
    })?;
    let shed = codes
        .iter()
        .filter(|c| **c == Code::ResourceExhausted)
        .count();
    let served = codes.iter().filter(|c| **c == Code::Ok).count();
    assert!(shed >= 1 && served >= 2 && shed + served == 6, "{codes:?}");
    Ok(())
}

/// Node `id`'s listening address, from its config.
fn listen_address(c: &Cluster, id: u8) -> TestResult<String> {
    let config: toml::Table = std::fs::read_to_string(c.node_dir(id).join("node.toml"))?.parse()?;
    Ok(config
        .get("listen")
        .and_then(|v| v.as_str())
        .ok_or("no listen address")?
        .to_owned())
}

/// Whether the peer answers `stream` (with bytes, an error or its end) within `wait`.
fn answers(stream: &mut std::net::TcpStream, wait: Duration) -> TestResult<bool> {
    use std::io::Read;
    stream.set_read_timeout(Some(wait))?;
    let mut buf = [0u8; 256];
    match stream.read(&mut buf) {
        Ok(_) => Ok(true),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Ok(false)
        }
        Err(_) => Ok(true),
    }
}

/// A TCP connection to `address` from the local address `from` that sends nothing.
async fn silent_from(from: &str, address: &str) -> TestResult<std::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(format!("{from}:0").parse()?)?;
    let stream = socket.connect(address.parse()?).await?;
    let stream = stream.into_std()?;
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// Whether a call failed because its connection was closed (not refused by a handler).
fn closed(status: &tonic::Status) -> bool {
    use std::error::Error;
    matches!(
        status.code(),
        Code::Unavailable | Code::Unknown | Code::Cancelled
    ) && status
        .source()
        .is_some_and(|e| e.downcast_ref::<tonic::transport::Error>().is_some())
}

/// Removes client `name` from node `id`'s config.
fn unlist(c: &Cluster, id: u8, name: &str) -> TestResult {
    let path = c.node_dir(id).join("node.toml");
    let mut config: toml::Table = std::fs::read_to_string(&path)?.parse()?;
    if let Some(toml::Value::Array(clients)) = config.get_mut("clients") {
        clients.retain(|c| c.get("name").and_then(|n| n.as_str()) != Some(name));
    }
    std::fs::write(&path, toml::to_string(&config)?)?;
    Ok(())
}

#[test]
fn silent_connections_lock_nobody_out_and_unlisted_or_excess_ones_are_closed() -> TestResult {
    let (c, _) = cluster()?;
    c.set_limit(1, "max_handshakes_per_address", 4)?;
    c.set_limit(1, "max_connections_per_client", 2)?;
    // Node 1 does not list `other`, whose certificate is still the cluster CA's.
    unlist(&c, 1, "other")?;
    c.restart(1, None)?;
    let address = listen_address(&c, 1)?;
    let rt = runtime()?;
    let _entered = rt.enter();
    // Four connections from 127.0.0.2 that never start their handshake hold that address's
    // handshake slots; a fifth from it is closed at once, not parked behind them.
    let silent = rt.block_on(async {
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(silent_from("127.0.0.2", &address).await?);
        }
        Ok::<_, Box<dyn std::error::Error>>(held)
    })?;
    std::thread::sleep(Duration::from_millis(300));
    let mut fifth = rt.block_on(silent_from("127.0.0.2", &address))?;
    assert!(
        answers(&mut fifth, Duration::from_secs(2))?,
        "a connection past the address's handshakes was kept"
    );
    // Callers from another address are served meanwhile.
    let status = c.node_status(1)?;
    assert_eq!(status["up"], true, "{status}");
    assert_eq!(status["healthy"], true, "{status}");
    // The silent ones are dropped when the handshake timeout passes.
    let mut first = silent.into_iter().next().ok_or("no connection")?;
    assert!(
        answers(
            &mut first,
            dealer_free_node::server::HANDSHAKE_TIMEOUT + Duration::from_secs(5)
        )?,
        "a connection that never finished its handshake was kept"
    );
    // A certificate of the CA that node 1 does not list holds no connection: it is closed
    // after the handshake, before any request.
    let other = ClusterClient::open(&c.dir.join("clients/other/client.toml"))?;
    let got = rt.block_on(node(&other, 1)?.health(proto::HealthRequest {}));
    let status = got.err().ok_or("an unlisted certificate was answered")?;
    assert!(closed(&status), "{status:?}");
    // A client keeps at most two connections: a third is closed, and taken once one goes.
    let owners: Vec<ClusterClient> = (0..3)
        .map(|_| ClusterClient::open(&c.dir.join("client.toml")))
        .collect::<Result<_, _>>()?;
    let mut kept = Vec::new();
    for owner in &owners[..2] {
        let mut n1 = node(owner, 1)?;
        assert_eq!(
            code(rt.block_on(n1.health(proto::HealthRequest {}))),
            Code::Ok
        );
        kept.push(n1);
    }
    let mut third = node(&owners[2], 1)?;
    let got = rt.block_on(third.health(proto::HealthRequest {}));
    let status = got
        .err()
        .ok_or("a third connection of one client was served")?;
    assert!(closed(&status), "{status:?}");
    drop(kept);
    drop(owners);
    let mut fourth = node(&ClusterClient::open(&c.dir.join("client.toml"))?, 1)?;
    let started = std::time::Instant::now();
    while code(rt.block_on(fourth.health(proto::HealthRequest {}))) != Code::Ok {
        assert!(started.elapsed() < Duration::from_secs(10), "never taken");
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

#[test]
fn requests_whose_deadline_passes_mid_work_keep_their_share_until_their_work_ends() -> TestResult {
    let (c, _) = cluster()?;
    // A budget 20 such requests would spend: more than the caller's share of the queue (16)
    // running before the flood is over would spend it.
    c.set_limit(1, "token_images_per_minute", 20_000)?;
    c.restart(1, None)?;
    let rt = runtime()?;
    let _entered = rt.enter();
    let client = ClusterClient::open(&c.dir.join("client.toml"))?;
    let context = TokenContext::new(b"hostile", BandLayout::default())?;
    let mut rng = rand::rng();
    let hashes: Vec<ImageHash> = (0..1000).map(|_| ImageHash(rng.random())).collect();
    let (_, request) = TokenRequest::for_images(&context, &hashes, &mut rng)?;
    let body = request.to_bytes();
    let codes: Vec<Code> = rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..40 {
            let mut n1 = node(&client, 1)?;
            let body = body.clone();
            set.spawn(async move {
                let mut req = tonic::Request::new(proto::EvaluateTokensRequest {
                    meta: meta(),
                    token_request: body,
                });
                // Past the body's arrival, long before its work ends.
                req.set_timeout(Duration::from_millis(150));
                code(n1.evaluate_tokens(req).await)
            });
        }
        let mut codes = Vec::new();
        while let Some(c) = set.join_next().await {
            codes.push(c?);
        }
        Ok::<_, Box<dyn std::error::Error>>(codes)
    })?;
    assert!(
        codes.iter().all(|c| matches!(
            c,
            Code::DeadlineExceeded | Code::ResourceExhausted | Code::Cancelled
        )),
        "{codes:?}"
    );
    // Once the work that did start has ended, the caller's budget has room: the requests
    // shed at once were never worked on.
    let started = std::time::Instant::now();
    loop {
        let mut n1 = node(&client, 1)?;
        let got = rt.block_on(n1.evaluate_tokens(proto::EvaluateTokensRequest {
            meta: meta(),
            token_request: body.clone(),
        }));
        match got {
            Ok(_) => break,
            Err(s)
                if s.code() == Code::ResourceExhausted && !s.message().contains("this minute") =>
            {
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "still shed after a minute: {s:?}"
                );
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(s) => return Err(format!("after the flood: {s:?} ({codes:?})").into()),
        }
    }
    Ok(())
}

#[test]
fn a_flood_of_fresh_request_ids_is_remembered_only_up_to_its_bound() -> TestResult {
    let (c, id) = cluster()?;
    c.set_limit(1, "max_replay_ids", 200)?;
    c.restart(1, None)?;
    std::thread::sleep(Duration::from_millis(1500));
    let rt = runtime()?;
    let _entered = rt.enter();
    let client = ClusterClient::open(&c.dir.join("client.toml"))?;
    let image_id = u64::from_str_radix(&id, 16)?;
    let mut n1 = node(&client, 1)?;
    let before = meta().ok_or("no meta")?;
    std::thread::sleep(Duration::from_millis(20));
    for _ in 0..600 {
        let got = rt.block_on(n1.get_share(proto::GetShareRequest {
            meta: meta(),
            image_id,
        }));
        assert_eq!(code(got), Code::Ok);
    }
    // The guard forgot the oldest ids; a request older than what it forgot is refused as
    // stale (a fresh send is accepted), never remembered past the bound.
    let mut old = before;
    old.request_id = meta().ok_or("no meta")?.request_id;
    let got = rt.block_on(n1.get_share(proto::GetShareRequest {
        meta: Some(old),
        image_id,
    }));
    let status = got
        .err()
        .ok_or("a request older than the forgotten ids was accepted")?;
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let got = rt.block_on(n1.get_share(proto::GetShareRequest {
        meta: meta(),
        image_id,
    }));
    assert_eq!(code(got), Code::Ok);
    Ok(())
}

#[test]
fn a_deleted_image_stays_deleted_and_no_client_removes_a_good_record() -> TestResult {
    let (c, id) = cluster_with(&[("other", "search"), ("clerk", "owner")])?;
    let rt = runtime()?;
    let _entered = rt.enter();
    let admin = ClusterClient::open(&c.dir.join("client.toml"))?;
    let other = ClusterClient::open(&c.dir.join("clients/other/client.toml"))?;
    let clerk = ClusterClient::open(&c.dir.join("clients/clerk/client.toml"))?;
    let raw = u64::from_str_radix(&id, 16)?;
    let mut n1 = node(&admin, 1)?;
    let record = rt
        .block_on(n1.export_records(proto::ExportRecordsRequest {
            meta: meta(),
            ids: vec![raw],
            after: None,
            limit: 0,
        }))?
        .into_inner()
        .records;
    assert_eq!(record.len(), 1);
    let listing = |deleted: bool| proto::ListRecordsRequest {
        meta: meta(),
        after: None,
        limit: 16,
        deleted,
    };

    // A search client may neither list nor delete.
    let mut o1 = node(&other, 1)?;
    let got = rt.block_on(o1.delete_records(proto::DeleteRecordsRequest {
        meta: meta(),
        ids: vec![raw],
    }));
    assert_eq!(code(got), Code::PermissionDenied);
    assert_eq!(
        code(rt.block_on(o1.list_records(listing(false)))),
        Code::PermissionDenied
    );

    // Another owner neither lists nor deletes the images it did not store.
    let mut k1 = node(&clerk, 1)?;
    assert!(
        rt.block_on(k1.list_records(listing(false)))?
            .into_inner()
            .ids
            .is_empty()
    );
    let got = rt
        .block_on(k1.delete_records(proto::DeleteRecordsRequest {
            meta: meta(),
            ids: vec![raw],
        }))?
        .into_inner();
    assert!(got.removed.is_empty(), "another owner deleted the image");
    assert_eq!(got.not_yours, vec![raw]);
    let listed = rt
        .block_on(n1.list_records(listing(false)))?
        .into_inner()
        .ids;
    assert_eq!(listed, vec![raw], "the image is still stored");
    // Nor does it plant tombstones for ids it never stored.
    let planted = rt
        .block_on(k1.delete_records(proto::DeleteRecordsRequest {
            meta: meta(),
            ids: vec![raw ^ 1],
        }))?
        .into_inner();
    assert_eq!(planted.absent, vec![raw ^ 1]);
    assert_eq!(
        code(rt.block_on(k1.list_records(listing(true)))),
        Code::InvalidArgument
    );

    // A client naming an intact record as damaged does not get it removed: the node checks.
    let removed = rt
        .block_on(n1.remove_damaged(proto::RemoveDamagedRequest {
            meta: meta(),
            ids: vec![raw],
            off_codeword: false,
        }))?
        .into_inner()
        .removed;
    assert!(removed.is_empty(), "an intact record was removed");
    let listed = rt
        .block_on(n1.list_records(listing(false)))?
        .into_inner()
        .ids;
    assert_eq!(listed, vec![raw]);

    // Deleted: the record sent again (a replay, a stale client, a repair) is not stored and
    // is named as deleted.
    c.ok(&["delete", &id])?;
    let again = rt
        .block_on(n1.store_records(proto::StoreRecordsRequest {
            owners: Vec::new(),
            meta: meta(),
            records: record,
        }))?
        .into_inner();
    assert!(again.stored.is_empty(), "a deleted image was stored again");
    assert_eq!(again.deleted, vec![raw]);
    assert!(
        rt.block_on(n1.list_records(listing(false)))?
            .into_inner()
            .ids
            .is_empty()
    );
    assert_eq!(
        rt.block_on(n1.list_records(listing(true)))?
            .into_inner()
            .ids,
        vec![raw]
    );
    // Out-of-bounds pages are refused before anything is read.
    let mut huge = listing(false);
    huge.limit = 1 << 20;
    assert_eq!(
        code(rt.block_on(n1.list_records(huge))),
        Code::InvalidArgument
    );
    let got = rt.block_on(n1.delete_records(proto::DeleteRecordsRequest {
        meta: meta(),
        ids: vec![raw, raw],
    }));
    assert_eq!(code(got), Code::InvalidArgument);
    Ok(())
}
