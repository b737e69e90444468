//! The gRPC service of a node over [`NodeState`]: mutual TLS, authorisation by certificate
//! fingerprint, bounded messages, typed status codes.
//!
//! * **Authentication.** The TLS handshake requires a client certificate that chains to the
//!   cluster CA and that the node's config lists; a caller without one never reaches a
//!   handler.
//! * **Authorisation.** The server's [`AccessLayer`] admits only callers whose certificate
//!   fingerprint the node's config lists (`[[clients]]`) and whose role allows the method
//!   ([`crate::access::Method::role`]); any other gets `PERMISSION_DENIED` before its request
//!   is decoded. Each handler takes the admitted [`Caller`] from the request and refuses a
//!   request that carries none, so the service answers nothing without the layer.
//! * **Bounds.** Messages above [`crate::MAX_GRPC_MESSAGE`] are refused by the transport;
//!   handlers bound batches, tokens and candidates ([`NodeState`]) and answer malformed
//!   protocol bytes with `INVALID_ARGUMENT`.
//! * **Status codes.** [`status`] maps each [`NodeError`] to one code: `INVALID_ARGUMENT`,
//!   `NOT_FOUND`, `FAILED_PRECONDITION`, `ALREADY_EXISTS`, `RESOURCE_EXHAUSTED`,
//!   `PERMISSION_DENIED` (replays too, and DKG or resharing lists whose keys are not the
//!   approved manifest's, naming the node), `DATA_LOSS` (a stored share failed its check),
//!   `INTERNAL`.
//!
//! * **Bounded work.** Handlers run on the blocking pool (the store fsyncs), so a slow disk
//!   never stalls the transport, each in a slot of the node's [`WorkQueue`] held until its
//!   work ends; a caller's share of the queue is taken before its body is read.
//! * **Bounded bodies.** Each method's body is capped before it is decoded
//!   ([`crate::body_limit`]).
//! * **Bounded connections.** The node runs its own TLS handshakes ([`crate::connections`]):
//!   bounded per IP address and in total, each within [`HANDSHAKE_TIMEOUT`]; a certificate
//!   the config does not list is closed after its handshake; open connections are bounded
//!   per client and in total. Idle connections are pinged and closed when they stop
//!   answering; every connection is closed after [`MAX_CONNECTION_AGE`]. The request bodies held at once are bounded by
//!   `limits.max_body_bytes_in_flight` ([`crate::body_limit::BodyBudget`]).
//! * **Quiet refusals.** Refused requests are logged at a bounded rate
//!   ([`crate::refusals`]).
//! * **Metrics.** With a metrics address, every request is counted and timed by the
//!   outermost layer and the metrics are served on a listener of their own
//!   ([`crate::metrics`]); without one, nothing is listened on.

use std::sync::Arc;
use std::time::Duration;

use tonic::transport::Server;
use tonic::{Code, Request, Response, Status};

use crate::access::Method;
use crate::access::{AccessLayer, Caller, Policy};
use crate::config::LoadedNodeConfig;
use crate::proto;
use crate::proto::node_server::{Node, NodeServer};
use crate::reply_cache::{Lookup, ReplyCache};
use crate::state::{NodeError, NodeState};
use crate::work::{Admission, WorkQueue};

/// A TLS handshake not done by then is dropped (a connection that never finishes its
/// handshake holds nothing longer).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A request not answered by then gets `DEADLINE_EXCEEDED`; its work, if it started, runs on
/// in its slot ([`crate::work`]).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How often an idle connection is pinged (HTTP/2 keepalive).
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// A connection whose ping is not answered by then is closed.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection is closed (gracefully) after this long, so none is held forever.
pub const MAX_CONNECTION_AGE: Duration = Duration::from_secs(3600);
/// How long a connection past its age may finish its requests.
pub const MAX_CONNECTION_AGE_GRACE: Duration = Duration::from_secs(120);

/// Errors starting a node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The node's state did not open.
    #[error(transparent)]
    State(#[from] NodeError),
    /// A certificate file could not be read.
    #[error("{path}: {source}")]
    Tls {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The transport failed (TLS configuration).
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The node's certificate, key or CA does not make a TLS configuration.
    #[error("TLS: {0}")]
    TlsSetup(#[from] crate::connections::TlsSetupError),
    /// The address could not be listened on (in use, not this machine's).
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: std::net::SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// Whether `e` is the node's own trouble (its disk, its data, its secrets) rather than a
/// refusal of the request.
fn is_fault(e: &NodeError) -> bool {
    matches!(
        e,
        NodeError::Corrupt(_)
            | NodeError::Store(_)
            | NodeError::Audit(_)
            | NodeError::Secrets(_)
            | NodeError::Io { .. }
            | NodeError::Unavailable(_)
    )
}

/// The gRPC status of a node error.
#[must_use]
pub fn status(e: &NodeError) -> Status {
    let m = e.to_string();
    match e {
        NodeError::Invalid(_) => Status::invalid_argument(m),
        NodeError::NotFound(_) => Status::not_found(m),
        NodeError::NotReady(_) => Status::failed_precondition(m),
        NodeError::Conflict(_) => Status::already_exists(m),
        NodeError::RateLimited(_) | NodeError::Full(_) => Status::resource_exhausted(m),
        NodeError::Unavailable(_) => Status::unavailable(m),
        // Stale under load: the request is fine, a fresh send of it is accepted.
        NodeError::Replay(crate::replay::ReplayError::Stale { .. }) => Status::unavailable(m),
        NodeError::Replay(_) => Status::permission_denied(m),
        NodeError::Corrupt(_) => Status::data_loss(m),
        NodeError::Membership(_) => Status::permission_denied(m),
        NodeError::Manifest(_) => Status::failed_precondition(m),
        NodeError::Search(e) => search_status(e, m),
        _ => Status::internal(m),
    }
}

/// The gRPC status of a refused search step: bad input is `INVALID_ARGUMENT`, too few clean
/// mask dealers `FAILED_PRECONDITION`, a record the node lists but does not hold `DATA_LOSS`.
fn search_status(e: &dealer_free::mpc::SearchError, m: String) -> Status {
    use dealer_free::mpc::{MpcError, SearchError};
    match e {
        SearchError::Mpc(MpcError::MasksRejected { .. }) => Status::failed_precondition(m),
        SearchError::MissingRecord { .. } => Status::data_loss(m),
        _ => Status::invalid_argument(m),
    }
}

/// The service: the node's state and its work queue.
#[derive(Debug, Clone)]
pub struct NodeService {
    state: Arc<NodeState>,
    work: Arc<WorkQueue>,
    replies: Arc<ReplyCache>,
}

impl NodeService {
    /// The service over `state`, its work bounded by `state`'s limits; serve it behind the
    /// [`AccessLayer`] of the node's config.
    #[must_use]
    pub fn new(state: Arc<NodeState>) -> NodeService {
        let work = Arc::new(WorkQueue::new(state.limits()));
        NodeService {
            state,
            work,
            replies: Arc::new(ReplyCache::default()),
        }
    }

    /// The service over `state` with the work queue `work` (shared with the access layer,
    /// which takes each caller's share before the body is read).
    #[must_use]
    pub fn with_queue(state: Arc<NodeState>, work: Arc<WorkQueue>) -> NodeService {
        NodeService {
            state,
            work,
            replies: Arc::new(ReplyCache::default()),
        }
    }

    /// [`NodeService::blocking`] for a method that must not apply twice: a retry (the same
    /// id) gets the first attempt's reply from the [`ReplyCache`] instead of a second run.
    async fn once<R, F>(
        &self,
        caller: &(String, Holds),
        method: Method,
        meta: Option<proto::RequestMeta>,
        f: F,
    ) -> Result<Response<R>, Status>
    where
        F: FnOnce() -> Result<R, NodeError> + Send + 'static,
        R: prost::Message + Default + Send + 'static,
    {
        match meta
            .as_ref()
            .and_then(|m| self.replies.lookup(&caller.0, method, &m.request_id))
        {
            None => self.blocking(caller, f).await,
            Some(Lookup::Running) => Err(Status::unavailable(
                "the first attempt of this request is still running: send it again later",
            )),
            Some(Lookup::Done(Ok(bytes))) => R::decode(bytes.as_slice())
                .map(Response::new)
                .map_err(|e| Status::internal(format!("a kept reply does not decode: {e}"))),
            Some(Lookup::Done(Err(s))) => Err(s),
            Some(Lookup::Run(claim)) => {
                let state = Arc::clone(&self.state);
                let who = caller.0.clone();
                self.blocking(caller, move || {
                    let r = f();
                    match &r {
                        Ok(reply) => claim.finish(Ok(reply.encode_to_vec())),
                        Err(e) => {
                            let s = status(e);
                            if matches!(s.code(), Code::Unavailable | Code::ResourceExhausted) {
                                // Not done, for a passing reason: the retry runs it (the id
                                // forgotten first, so no retry finds it taken).
                                if let Some(m) = meta {
                                    state.forget_request(&who, &m);
                                }
                                drop(claim);
                            } else {
                                claim.finish(Err(&s));
                            }
                        }
                    }
                    r
                })
                .await
            }
        }
    }

    /// Runs a handler for the request's caller in the work queue ([`WorkQueue::run`]).
    async fn blocking<R, F>(&self, caller: &(String, Holds), f: F) -> Result<Response<R>, Status>
    where
        F: FnOnce() -> Result<R, NodeError> + Send + 'static,
        R: Send + 'static,
    {
        // The request's body bytes stay counted until its work ends, like its slot.
        let body = caller.1.body.clone();
        let f = move || {
            let r = f();
            drop(body);
            r
        };
        match self
            .work
            .run(&caller.0, caller.1.admission.as_ref(), f)
            .await
        {
            Ok(Ok(r)) => Ok(Response::new(r)),
            Ok(Err(e)) => {
                crate::metrics::refused_for(&e);
                if is_fault(&e) {
                    // The node's own trouble, never rate-limited away.
                    crate::refusals::error("request failed", &e);
                } else {
                    crate::refusals::warn("request refused", &e);
                }
                Err(status(&e))
            }
            Err(s) => {
                crate::refusals::warn("request shed", &s.message());
                Err(s)
            }
        }
    }
}

/// The name of the caller the [`AccessLayer`] admitted; none means the layer did not run, and
/// the request is refused.
fn caller<T>(request: &Request<T>) -> Result<(String, Holds), Status> {
    let name = request
        .extensions()
        .get::<Caller>()
        .map(|c| c.name.clone())
        .ok_or_else(|| Status::permission_denied("the caller was not admitted"))?;
    Ok((
        name,
        Holds {
            admission: request.extensions().get::<Admission>().cloned(),
            body: request
                .extensions()
                .get::<crate::body_limit::BodyHold>()
                .cloned(),
        },
    ))
}

/// What a request holds until its work ends: its share of the work queue and its body's
/// bytes of the node's budget.
struct Holds {
    admission: Option<Admission>,
    body: Option<crate::body_limit::BodyHold>,
}

#[tonic::async_trait]
impl Node for NodeService {
    async fn health(
        &self,
        request: Request<proto::HealthRequest>,
    ) -> Result<Response<proto::HealthReply>, Status> {
        caller(&request)?;
        Ok(Response::new(self.state.health()))
    }

    async fn identity(
        &self,
        request: Request<proto::IdentityRequest>,
    ) -> Result<Response<proto::IdentityReply>, Status> {
        let caller = caller(&request)?;
        let name = caller.0.clone();
        let s = Arc::clone(&self.state);
        let r = request.into_inner();
        self.blocking(&caller, move || s.identity(&name, &r)).await
    }

    async fn dkg_round(
        &self,
        request: Request<proto::DkgRoundRequest>,
    ) -> Result<Response<proto::DkgRoundReply>, Status> {
        let caller = caller(&request)?;
        let name = caller.0.clone();
        let s = Arc::clone(&self.state);
        let r = request.into_inner();
        self.once(&caller, Method::DkgRound, r.meta.clone(), move || {
            s.dkg_round(&name, &r)
        })
        .await
    }

    async fn evaluate_tokens(
        &self,
        request: Request<proto::EvaluateTokensRequest>,
    ) -> Result<Response<proto::EvaluateTokensReply>, Status> {
        let caller = caller(&request)?;
        let name = caller.0.clone();
        let s = Arc::clone(&self.state);
        let r = request.into_inner();
        self.blocking(&caller, move || s.evaluate_tokens(&name, &r))
            .await
    }

    async fn store_records(
        &self,
        request: Request<proto::StoreRecordsRequest>,
    ) -> Result<Response<proto::StoreRecordsReply>, Status> {
        let caller = caller(&request)?;
        // Admins (the operators: a replacement's repair stores a whole node) are not held
        // to the quota of stored bytes; owners are.
        let quota = !is_admin(&request);
        let name = caller.0.clone();
        let s = Arc::clone(&self.state);
        let r = request.into_inner();
        self.blocking(&caller, move || s.store_records(&name, quota, &r))
            .await
    }

    async fn get_share(
        &self,
        request: Request<proto::GetShareRequest>,
    ) -> Result<Response<proto::GetShareReply>, Status> {
        let caller = caller(&request)?;
        let name = caller.0.clone();
        let s = Arc::clone(&self.state);
        let r = request.into_inner();
        self.blocking(&caller, move || s.get_share(&name, &r)).await
    }

    async fn candidates(
        &self,
        request: Request<proto::CandidatesRequest>,
    ) -> Result<Response<proto::CandidatesReply>, Status> {
        let caller = caller(&request)?;
        let name = caller.0.clone();
        let s = Arc::clone(&self.state);
        let r = request.into_inner();
        self.once(&caller, Method::Candidates, r.meta.clone(), move || {
            s.candidates(&name, &r)
        })
        .await
    }

    async fn mask_deal(
        &self,
        request: Request<proto::MaskDealRequest>,
    ) -> Result<Response<proto::MaskDealReply>, Status> {
        let caller = caller(&request)?;
        let admin = is_admin(&request);
        let name = caller.0.clone();
        let s = Arc::clone(&self.state);
        let r = request.into_inner();
        self.once(&caller, Method::MaskDeal, r.meta.clone(), move || {
            s.mask_deal(&name, admin, &r)
        })
        .await
    }

    async fn mask_check(
        &self,
        request: Request<proto::MaskCheckRequest>,
    ) -> Result<Response<proto::MaskCheckReply>, Status> {
        let caller = caller(&request)?;
        let name = caller.0.clone();
        let s = Arc::clone(&self.state);
        let r = request.into_inner();
        self.once(&caller, Method::MaskCheck, r.meta.clone(), move || {
            s.mask_check(&name, &r)
        })
        .await
    }

    async fn mask_judge(
        &self,
        request: Request<proto::MaskJudgeRequest>,
    ) -> Result<Response<proto::MaskJudgeReply>, Status> {
        let caller = caller(&request)?;
        let name = caller.0.clone();
        let s = Arc::clone(&self.state);
        let r = request.into_inner();
        self.once(&caller, Method::MaskJudge, r.meta.clone(), move || {
            s.mask_judge(&name, &r)
        })
        .await
    }

    async fn mask_release(
        &self,
        request: Request<proto::MaskReleaseRequest>,
    ) -> Result<Response<proto::MaskReleaseReply>, Status> {
        let caller = caller(&request)?;
        let name = caller.0.clone();
        let s = Arc::clone(&self.state);
        let r = request.into_inner();
        self.once(&caller, Method::MaskRelease, r.meta.clone(), move || {
            s.mask_release(&name, &r)
        })
        .await
    }

    async fn query_check(
        &self,
        request: Request<proto::QueryCheckRequest>,
    ) -> Result<Response<proto::QueryCheckReply>, Status> {
        let caller = caller(&request)?;
        let name = caller.0.clone();
        let s = Arc::clone(&self.state);
        let r = request.into_inner();
        self.once(&caller, Method::QueryCheck, r.meta.clone(), move || {
            s.query_check(&name, &r)
        })
        .await
    }

    async fn distances(
        &self,
        request: Request<proto::DistancesRequest>,
    ) -> Result<Response<proto::DistancesReply>, Status> {
        let caller = caller(&request)?;
        let name = caller.0.clone();
        let s = Arc::clone(&self.state);
        let r = request.into_inner();
        self.once(&caller, Method::Distances, r.meta.clone(), move || {
            s.distances(&name, &r)
        })
        .await
    }

    async fn audit_head(
        &self,
        request: Request<proto::AuditHeadRequest>,
    ) -> Result<Response<proto::AuditHeadReply>, Status> {
        let caller = caller(&request)?;
        let name = caller.0.clone();
        let s = Arc::clone(&self.state);
        let r = request.into_inner();
        self.blocking(&caller, move || s.audit_head(&name, &r))
            .await
    }

    async fn reshare_round(
        &self,
        request: Request<proto::ReshareRoundRequest>,
    ) -> Result<Response<proto::ReshareRoundReply>, Status> {
        let caller = caller(&request)?;
        let name = caller.0.clone();
        let s = Arc::clone(&self.state);
        let r = request.into_inner();
        self.once(&caller, Method::ReshareRound, r.meta.clone(), move || {
            s.reshare_round(&name, &r)
        })
        .await
    }

    async fn export_records(
        &self,
        request: Request<proto::ExportRecordsRequest>,
    ) -> Result<Response<proto::ExportRecordsReply>, Status> {
        let caller = caller(&request)?;
        let name = caller.0.clone();
        let s = Arc::clone(&self.state);
        let r = request.into_inner();
        self.blocking(&caller, move || s.export_records(&name, &r))
            .await
    }

    async fn delete_records(
        &self,
        request: Request<proto::DeleteRecordsRequest>,
    ) -> Result<Response<proto::DeleteRecordsReply>, Status> {
        let caller = caller(&request)?;
        let admin = is_admin(&request);
        let name = caller.0.clone();
        let s = Arc::clone(&self.state);
        let r = request.into_inner();
        self.blocking(&caller, move || s.delete_records(&name, admin, &r))
            .await
    }

    async fn list_records(
        &self,
        request: Request<proto::ListRecordsRequest>,
    ) -> Result<Response<proto::ListRecordsReply>, Status> {
        let caller = caller(&request)?;
        let admin = is_admin(&request);
        let name = caller.0.clone();
        let s = Arc::clone(&self.state);
        let r = request.into_inner();
        self.blocking(&caller, move || s.list_records(&name, admin, &r))
            .await
    }

    async fn scrub_records(
        &self,
        request: Request<proto::ScrubRecordsRequest>,
    ) -> Result<Response<proto::ScrubRecordsReply>, Status> {
        let caller = caller(&request)?;
        let name = caller.0.clone();
        let s = Arc::clone(&self.state);
        let r = request.into_inner();
        self.blocking(&caller, move || s.scrub_records(&name, &r))
            .await
    }

    async fn check_bit_shares(
        &self,
        request: Request<proto::CheckBitSharesRequest>,
    ) -> Result<Response<proto::CheckBitSharesReply>, Status> {
        let caller = caller(&request)?;
        let name = caller.0.clone();
        let s = Arc::clone(&self.state);
        let r = request.into_inner();
        self.blocking(&caller, move || s.check_bit_shares(&name, &r))
            .await
    }

    async fn remove_damaged(
        &self,
        request: Request<proto::RemoveDamagedRequest>,
    ) -> Result<Response<proto::RemoveDamagedReply>, Status> {
        let caller = caller(&request)?;
        let name = caller.0.clone();
        let s = Arc::clone(&self.state);
        let r = request.into_inner();
        self.blocking(&caller, move || s.remove_damaged(&name, &r))
            .await
    }
}

/// Whether the caller of `request` is an admin (the access layer put its role there).
fn is_admin<T>(request: &Request<T>) -> bool {
    request
        .extensions()
        .get::<Caller>()
        .is_some_and(|c| c.role == crate::access::Role::Admin)
}

/// File descriptors kept for the node's own files (store, audit log, secrets, logs).
const RESERVED_FILES: u64 = 128;

/// `max_connections`, lowered (with a warning) to what the process's file limit leaves once
/// the handshakes and the node's own files have theirs; the soft limit is first raised to
/// the hard one.
fn fit_to_file_limit(max_connections: usize, max_handshakes: usize) -> usize {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let mut limit = getrlimit(Resource::Nofile);
        if limit.current < limit.maximum {
            limit.current = limit.maximum;
            let _ = setrlimit(Resource::Nofile, limit);
            limit = getrlimit(Resource::Nofile);
        }
        if let Some(files) = limit.current {
            let room = files
                .saturating_sub(RESERVED_FILES)
                .saturating_sub(max_handshakes as u64);
            let room = usize::try_from(room).unwrap_or(usize::MAX).max(1);
            if room < max_connections {
                tracing::warn!(
                    max_connections,
                    files,
                    used = room,
                    "the process may open fewer files than max_connections needs: fewer \
                     connections are kept open (raise the file limit, `ulimit -n`)"
                );
                return room;
            }
        }
        max_connections
    }
    #[cfg(not(unix))]
    {
        let _ = max_handshakes;
        max_connections
    }
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, ServeError> {
    std::fs::read(path).map_err(|source| ServeError::Tls {
        path: path.to_owned(),
        source,
    })
}

/// Opens the node of `config` and serves it until `shutdown` resolves.
///
/// # Errors
/// [`ServeError`] if the state does not open, a certificate is missing or the address is
/// taken.
pub async fn serve(
    config: &LoadedNodeConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let files = &config.raw.tls;
    let tls = crate::connections::server_config(
        &read(&files.cert)?,
        &read(&files.key)?,
        &read(&files.ca)?,
    )?;
    let state = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || NodeState::open(&config))
            .await
            .map_err(|e| NodeError::NotReady(format!("opening the node failed: {e}")))??
    };
    let state = Arc::new(state);
    let gated = Arc::clone(&state);
    let work = Arc::new(WorkQueue::new(state.limits()).with_gate(Arc::new(
        move |caller: &str, method: Method| {
            gated.before_body(caller, method).map_err(|e| {
                crate::metrics::refused_for(&e);
                status(&e)
            })
        },
    )));
    let service = NodeService::with_queue(Arc::clone(&state), Arc::clone(&work));
    let access =
        AccessLayer::new(Policy::new(config.id, &config.raw.clients)).with_queue(Arc::clone(&work));
    tracing::info!(
        node = %config.id,
        listen = %config.listen,
        health = ?state.health(),
        "node serving"
    );
    let limits = state.limits();
    let metrics = match config.metrics {
        Some(address) => {
            let slots = limits.max_concurrent_requests.max(1);
            let source = crate::metrics::source(Arc::clone(&state), Arc::clone(&work), slots);
            let metrics = crate::metrics::Metrics::new(config.id, source);
            let listener = crate::metrics::http::bind(address)
                .await
                .map_err(|source| ServeError::Listen { address, source })?;
            tracing::info!(
                node = %config.id,
                metrics = %address,
                "metrics served at GET /metrics (plain HTTP, unauthenticated)"
            );
            let task = crate::metrics::http::spawn(listener, Arc::clone(&metrics));
            Some((metrics, task))
        }
        None => None,
    };
    let max_connections = fit_to_file_limit(limits.max_connections, limits.max_handshakes);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Listen {
            address: config.listen,
            source,
        })?;
    let known = Policy::new(config.id, &config.raw.clients);
    let incoming = crate::connections::accept(
        listener,
        Arc::new(tls),
        Arc::new(move |fingerprint: &[u8; 32]| known.knows(fingerprint)),
        crate::connections::ConnectionLimits {
            max_connections,
            max_connections_per_client: limits.max_connections_per_client,
            max_handshakes: limits.max_handshakes,
            max_handshakes_per_address: limits.max_handshakes_per_address,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            tcp_keepalive: KEEPALIVE_INTERVAL,
        },
    );
    let served = Server::builder()
        .timeout(REQUEST_TIMEOUT)
        .concurrency_limit_per_connection(64)
        // Streams beyond those that run are refused by HTTP/2 itself, not queued.
        .max_concurrent_streams(Some(64))
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .max_connection_age(MAX_CONNECTION_AGE)
        .max_connection_age_grace(MAX_CONNECTION_AGE_GRACE)
        .layer(crate::metrics::MetricsLayer::new(
            metrics.as_ref().map(|(m, _)| Arc::clone(m)),
        ))
        .layer(access)
        .layer(crate::body_limit::BodyLimitLayer::new(
            crate::body_limit::BodyBudget::new(limits.max_body_bytes_in_flight),
        ))
        .add_service(
            NodeServer::new(service)
                .max_decoding_message_size(crate::MAX_GRPC_MESSAGE)
                .max_encoding_message_size(crate::MAX_GRPC_MESSAGE),
        )
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await;
    if let Some((_, task)) = metrics {
        task.abort();
    }
    served?;
    tracing::info!(node = %config.id, "node stopped");
    Ok(())
}
