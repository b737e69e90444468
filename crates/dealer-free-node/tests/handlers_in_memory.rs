//! A node's search handlers over an in-memory transport (a tokio duplex per connection, no
//! TLS, no process): the real service behind the real access layer, with each request's
//! caller injected by the test (a header the test layer turns into the peer fingerprint the
//! access layer reads), so that what a handler does for one caller and refuses another is
//! checked directly.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use dealer_free::mpc::messages::CandidateRequest;
use dealer_free_node::access::{AccessLayer, Policy, Role};
use dealer_free_node::cluster::{ClusterDir, InitOptions};
use dealer_free_node::config::{AuthorizedClient, NodeConfig};
use dealer_free_node::proto;
use dealer_free_node::proto::node_client::NodeClient;
use dealer_free_node::proto::node_server::NodeServer;
use dealer_free_node::server::NodeService;
use dealer_free_node::state::NodeState;
use hyper_util::rt::TokioIo;
use phr_sis::NodeId;
use tokio::io::DuplexStream;
use tokio::sync::mpsc;
use tonic::Code;
use tonic::transport::{Channel, Endpoint, Server};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// The header that names the caller's fingerprint byte.
const CALLER: &str = "x-test-caller";

/// The caller's fingerprint, put into the request's extensions by [`FromHeader`].
#[derive(Debug, Clone, Copy)]
struct TestPeer([u8; 32]);

fn test_peer(extensions: &http::Extensions) -> Option<[u8; 32]> {
    extensions.get::<TestPeer>().map(|p| p.0)
}

/// The test layer: the `x-test-caller` header becomes the peer fingerprint.
#[derive(Debug, Clone)]
struct FromHeader<S>(S);

impl<S, B> tower_service::Service<http::Request<B>> for FromHeader<S>
where
    S: tower_service::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let print = request
            .headers()
            .get(CALLER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u8>().ok());
        if let Some(p) = print {
            request.extensions_mut().insert(TestPeer([p; 32]));
        }
        self.0.call(request)
    }
}

#[derive(Debug, Clone)]
struct FromHeaderLayer;

impl<S> tower_layer::Layer<S> for FromHeaderLayer {
    type Service = FromHeader<S>;
    fn layer(&self, inner: S) -> FromHeader<S> {
        FromHeader(inner)
    }
}

/// Connects a client by handing the server the other end of a fresh duplex.
#[derive(Clone)]
struct InMemory(mpsc::UnboundedSender<DuplexStream>);

type Connecting =
    Pin<Box<dyn Future<Output = Result<TokioIo<DuplexStream>, std::io::Error>> + Send>>;

impl tower_service::Service<http::Uri> for InMemory {
    type Response = TokioIo<DuplexStream>;
    type Error = std::io::Error;
    type Future = Connecting;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: http::Uri) -> Self::Future {
        let (client, server) = tokio::io::duplex(1 << 20);
        let sent = self.0.send(server);
        Box::pin(async move {
            sent.map_err(|_| std::io::Error::other("the in-memory server is gone"))?;
            Ok(TokioIo::new(client))
        })
    }
}

fn client_entry(name: &str, print: u8, role: Role) -> AuthorizedClient {
    AuthorizedClient {
        name: name.into(),
        fingerprint: format!("sha256:{}", dealer_free_node::hex(&[print; 32])),
        role,
    }
}

/// Node 1 of a fresh (2, 3) cluster folder with `limits` (TOML) set in its config, served in
/// memory to callers `alice` (1, search), `bob` (2, search) and `owner` (3, owner).
struct Node {
    _temp: tempfile::TempDir,
    channel: Channel,
}

impl Node {
    async fn start(limits: &str) -> TestResult<Node> {
        let temp = tempfile::tempdir()?;
        let dir = ClusterDir::new(&temp.path().join("cluster"));
        dir.init(&InitOptions {
            nodes: 3,
            threshold: 2,
            base_port: None,
            host: "127.0.0.1".into(),
            remote: false,
        })?;
        let path = dir.dir.join("node-1/node.toml");
        let mut config: toml::Table = std::fs::read_to_string(&path)?.parse()?;
        let overrides: toml::Table = limits.parse()?;
        if let Some(toml::Value::Table(table)) = config.get_mut("limits") {
            table.extend(overrides);
        } else {
            config.insert("limits".into(), toml::Value::Table(overrides));
        }
        std::fs::write(&path, toml::to_string(&config)?)?;
        let config = NodeConfig::load(&path)?;
        let state = NodeState::open(&config)?;
        let policy = Policy::new(
            NodeId::new(1)?,
            &[
                client_entry("alice", 1, Role::Search),
                client_entry("bob", 2, Role::Search),
                client_entry("owner", 3, Role::Owner),
            ],
        );
        let (tx, rx) = mpsc::unbounded_channel::<DuplexStream>();
        let incoming =
            tokio_stream::wrappers::UnboundedReceiverStream::new(rx).map(Ok::<_, std::io::Error>);
        tokio::spawn(
            Server::builder()
                .layer(FromHeaderLayer)
                .layer(AccessLayer::with_peer(policy, test_peer))
                .add_service(NodeServer::new(NodeService::new(Arc::new(state))))
                .serve_with_incoming(incoming),
        );
        let channel = Endpoint::try_from("http://in-memory")?
            .connect_with_connector(InMemory(tx))
            .await?;
        Ok(Node {
            _temp: temp,
            channel,
        })
    }

    fn client(&self) -> NodeClient<Channel> {
        NodeClient::new(self.channel.clone())
    }
}

use tokio_stream::StreamExt as _;

fn meta() -> Option<proto::RequestMeta> {
    Some(proto::RequestMeta {
        request_id: (0..16).map(|_| rand::random()).collect(),
        unix_ms: dealer_free_node::replay::unix_ms(),
    })
}

/// `message` sent as the caller of fingerprint byte `who`.
fn as_caller<T>(who: u8, message: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    if let Ok(v) = who.to_string().parse() {
        r.metadata_mut().insert(CALLER, v);
    }
    r
}

fn candidates(
    session: [u8; 32],
    votes: u32,
    tokens: usize,
) -> TestResult<proto::CandidatesRequest> {
    Ok(proto::CandidatesRequest {
        meta: meta(),
        candidate_request: CandidateRequest {
            session,
            min_band_votes: votes,
            tokens: vec![[9; 32]; tokens],
        }
        .to_bytes()?,
    })
}

const ALICE: u8 = 1;
const BOB: u8 = 2;
const OWNER: u8 = 3;

#[tokio::test]
async fn a_query_session_belongs_to_the_client_that_asked() -> TestResult {
    let node = Node::start("").await?;
    let mut c = node.client();
    let session = [5; 32];
    c.candidates(as_caller(ALICE, candidates(session, 1, 8)?))
        .await?;
    // Bob may not answer for it, nor list candidates under it.
    let e = c
        .candidates(as_caller(BOB, candidates(session, 1, 8)?))
        .await
        .err()
        .ok_or("bob listed under alice's session")?;
    assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");
    assert!(e.message().contains("another client's"), "{e:?}");
    let e = c
        .query_check(as_caller(
            BOB,
            proto::QueryCheckRequest {
                meta: meta(),
                distance_request: Vec::new(),
                pool_confirmations: Vec::new(),
            },
        ))
        .await
        .err()
        .ok_or("a malformed request was checked")?;
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    // Alice may ask her candidates again (the lists of a session may change while records
    // arrive), and a distance step with no checked query finds nothing.
    c.candidates(as_caller(ALICE, candidates(session, 1, 8)?))
        .await?;
    let relay = dealer_free::mpc::messages::ChecksRelay {
        session,
        checks: Vec::new(),
    }
    .to_bytes()?;
    for who in [ALICE, BOB] {
        let e = c
            .distances(as_caller(
                who,
                proto::DistancesRequest {
                    meta: meta(),
                    checks_relay: relay.clone(),
                },
            ))
            .await
            .err()
            .ok_or("distances without a checked query")?;
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    }
    // Without a key share there is no mask dealing.
    let order = dealer_free::mpc::masks::session::MaskOrder {
        session: [6; 32],
        servers: NodeId::first(3).collect(),
        count: 4,
        kind: dealer_free::mpc::masks::MaskKind::ZeroSum,
        ids: Vec::new(),
    }
    .to_bytes();
    let e = c
        .mask_deal(as_caller(
            ALICE,
            proto::MaskDealRequest {
                meta: meta(),
                order,
            },
        ))
        .await
        .err()
        .ok_or("a keyless node dealt masks")?;
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("no key share"), "{e:?}");
    // The scrub's random masks are an admin's to order, refused to a search client first.
    let order = dealer_free::mpc::masks::session::MaskOrder {
        session: [7; 32],
        servers: NodeId::first(3).collect(),
        count: 4,
        kind: dealer_free::mpc::masks::MaskKind::Random,
        ids: (1..=4).map(phr_sis::ImageId).collect(),
    }
    .to_bytes();
    let e = c
        .mask_deal(as_caller(
            ALICE,
            proto::MaskDealRequest {
                meta: meta(),
                order,
            },
        ))
        .await
        .err()
        .ok_or("a search client ordered random masks")?;
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("admin role"), "{e:?}");
    Ok(())
}

#[tokio::test]
async fn every_bound_holds_per_client_before_any_work() -> TestResult {
    let node = Node::start(
        "max_query_sessions_per_client = 2\nqueries_per_minute = 4\nmax_query_tokens = 8\nmin_band_votes = 1",
    )
    .await?;
    let mut c = node.client();
    // Every image at once: no band votes, or more tokens than bands.
    for (votes, tokens, why) in [
        (0, 8, "at least 1 band votes"),
        (1, 9, "9 tokens, at most 8"),
    ] {
        let e = c
            .candidates(as_caller(ALICE, candidates([1; 32], votes, tokens)?))
            .await
            .err()
            .ok_or(why)?;
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        assert!(e.message().contains(why), "{e:?}");
    }
    // Two open queries per client; the third is refused for alice, not for bob.
    for s in [1u8, 2] {
        c.candidates(as_caller(ALICE, candidates([s; 32], 1, 8)?))
            .await?;
    }
    let e = c
        .candidates(as_caller(ALICE, candidates([3; 32], 1, 8)?))
        .await
        .err()
        .ok_or("a third open query")?;
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(
        e.message().contains("max_query_sessions_per_client"),
        "{e:?}"
    );
    c.candidates(as_caller(BOB, candidates([4; 32], 1, 8)?))
        .await?;
    // Alice's four queries this minute are used up (two listed, two refused above after the
    // budget was charged); bob's are his own.
    let e = c
        .candidates(as_caller(ALICE, candidates([1; 32], 1, 8)?))
        .await
        .err()
        .ok_or("a fifth query this minute")?;
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains("queries_per_minute"), "{e:?}");
    c.candidates(as_caller(BOB, candidates([5; 32], 1, 8)?))
        .await?;
    Ok(())
}

#[tokio::test]
async fn the_roles_reach_the_handlers_they_may() -> TestResult {
    let node = Node::start("").await?;
    let mut c = node.client();
    // A search client reaches the query check (and is refused there for its request), not a
    // share.
    let e = c
        .query_check(as_caller(
            BOB,
            proto::QueryCheckRequest {
                meta: meta(),
                distance_request: vec![1, 2, 3],
                pool_confirmations: Vec::new(),
            },
        ))
        .await
        .err()
        .ok_or("a malformed request was checked")?;
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let e = c
        .get_share(as_caller(
            BOB,
            proto::GetShareRequest {
                meta: meta(),
                image_id: 1,
            },
        ))
        .await
        .err()
        .ok_or("a search client read a share")?;
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let e = c
        .get_share(as_caller(
            OWNER,
            proto::GetShareRequest {
                meta: meta(),
                image_id: 1,
            },
        ))
        .await
        .err()
        .ok_or("a share of nothing")?;
    assert_ne!(e.code(), Code::PermissionDenied, "{e:?}");
    // A caller no node lists.
    let e = c
        .candidates(as_caller(9, candidates([1; 32], 1, 8)?))
        .await
        .err()
        .ok_or("a stranger listed candidates")?;
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    Ok(())
}

#[tokio::test]
async fn a_retried_step_gets_its_first_reply_and_no_other_client_does() -> TestResult {
    let node = Node::start("min_band_votes = 1").await?;
    let mut c = node.client();
    let request = candidates([7; 32], 1, 8)?;
    let first = c
        .candidates(as_caller(ALICE, request.clone()))
        .await?
        .into_inner();
    // The same request under the same id (a retry after a lost answer): the first reply,
    // not a replay refusal, and the query is not listed twice.
    let again = c
        .candidates(as_caller(ALICE, request.clone()))
        .await?
        .into_inner();
    assert_eq!(first, again);
    // Another client sending those bytes gets nothing of alice's: its own request runs (and
    // is refused, the session being alice's).
    let e = c
        .candidates(as_caller(BOB, request))
        .await
        .err()
        .ok_or("bob got alice's reply")?;
    assert_ne!(e.code(), Code::Ok);
    assert!(!e.message().contains("replayed"), "{e:?}");
    Ok(())
}
