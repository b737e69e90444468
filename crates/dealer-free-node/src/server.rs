//! The gRPC service of a node over [`NodeState`]: mutual TLS, authorisation by certificate
//! fingerprint, bounded messages, typed status codes.
//!
//! * **Authentication.** The TLS handshake requires a client certificate that chains to the
//!   cluster CA; a caller without one never reaches a handler.
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
//! Handlers run on the blocking pool (the store fsyncs), so a slow disk never stalls the
//! transport.

use std::sync::Arc;
use std::time::Duration;

use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status};

use crate::access::{AccessLayer, Caller, Policy};
use crate::config::LoadedNodeConfig;
use crate::proto;
use crate::proto::node_server::{Node, NodeServer};
use crate::state::{NodeError, NodeState};

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
    /// The transport failed (address in use, TLS configuration).
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
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

/// The service: the node's state.
#[derive(Debug, Clone)]
pub struct NodeService {
    state: Arc<NodeState>,
}

impl NodeService {
    /// The service over `state`; serve it behind the [`AccessLayer`] of the node's config.
    #[must_use]
    pub fn new(state: Arc<NodeState>) -> NodeService {
        NodeService { state }
    }
}

/// The name of the caller the [`AccessLayer`] admitted; none means the layer did not run, and
/// the request is refused.
fn caller<T>(request: &Request<T>) -> Result<String, Status> {
    request
        .extensions()
        .get::<Caller>()
        .map(|c| c.name.clone())
        .ok_or_else(|| Status::permission_denied("the caller was not admitted"))
}

async fn blocking<R, F>(f: F) -> Result<Response<R>, Status>
where
    F: FnOnce() -> Result<R, NodeError> + Send + 'static,
    R: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(r)) => Ok(Response::new(r)),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "request refused");
            Err(status(&e))
        }
        Err(e) => Err(Status::internal(format!("handler failed: {e}"))),
    }
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
        let _caller = caller(&request)?;
        let s = Arc::clone(&self.state);
        let r = request.into_inner();
        blocking(move || s.identity(&r)).await
    }

    async fn dkg_round(
        &self,
        request: Request<proto::DkgRoundRequest>,
    ) -> Result<Response<proto::DkgRoundReply>, Status> {
        let _caller = caller(&request)?;
        let s = Arc::clone(&self.state);
        let r = request.into_inner();
        blocking(move || s.dkg_round(&r)).await
    }

    async fn evaluate_tokens(
        &self,
        request: Request<proto::EvaluateTokensRequest>,
    ) -> Result<Response<proto::EvaluateTokensReply>, Status> {
        let caller = caller(&request)?;
        let s = Arc::clone(&self.state);
        let r = request.into_inner();
        blocking(move || s.evaluate_tokens(&caller, &r)).await
    }

    async fn store_records(
        &self,
        request: Request<proto::StoreRecordsRequest>,
    ) -> Result<Response<proto::StoreRecordsReply>, Status> {
        let caller = caller(&request)?;
        let s = Arc::clone(&self.state);
        let r = request.into_inner();
        blocking(move || s.store_records(&caller, &r)).await
    }

    async fn get_share(
        &self,
        request: Request<proto::GetShareRequest>,
    ) -> Result<Response<proto::GetShareReply>, Status> {
        let _caller = caller(&request)?;
        let s = Arc::clone(&self.state);
        let r = request.into_inner();
        blocking(move || s.get_share(&r)).await
    }

    async fn candidates(
        &self,
        request: Request<proto::CandidatesRequest>,
    ) -> Result<Response<proto::CandidatesReply>, Status> {
        let caller = caller(&request)?;
        let s = Arc::clone(&self.state);
        let r = request.into_inner();
        blocking(move || s.candidates(&caller, &r)).await
    }

    async fn mask_deal(
        &self,
        request: Request<proto::MaskDealRequest>,
    ) -> Result<Response<proto::MaskDealReply>, Status> {
        let caller = caller(&request)?;
        let s = Arc::clone(&self.state);
        let r = request.into_inner();
        blocking(move || s.mask_deal(&caller, &r)).await
    }

    async fn mask_check(
        &self,
        request: Request<proto::MaskCheckRequest>,
    ) -> Result<Response<proto::MaskCheckReply>, Status> {
        let caller = caller(&request)?;
        let s = Arc::clone(&self.state);
        let r = request.into_inner();
        blocking(move || s.mask_check(&caller, &r)).await
    }

    async fn mask_judge(
        &self,
        request: Request<proto::MaskJudgeRequest>,
    ) -> Result<Response<proto::MaskJudgeReply>, Status> {
        let caller = caller(&request)?;
        let s = Arc::clone(&self.state);
        let r = request.into_inner();
        blocking(move || s.mask_judge(&caller, &r)).await
    }

    async fn mask_release(
        &self,
        request: Request<proto::MaskReleaseRequest>,
    ) -> Result<Response<proto::MaskReleaseReply>, Status> {
        let caller = caller(&request)?;
        let s = Arc::clone(&self.state);
        let r = request.into_inner();
        blocking(move || s.mask_release(&caller, &r)).await
    }

    async fn query_check(
        &self,
        request: Request<proto::QueryCheckRequest>,
    ) -> Result<Response<proto::QueryCheckReply>, Status> {
        let caller = caller(&request)?;
        let s = Arc::clone(&self.state);
        let r = request.into_inner();
        blocking(move || s.query_check(&caller, &r)).await
    }

    async fn distances(
        &self,
        request: Request<proto::DistancesRequest>,
    ) -> Result<Response<proto::DistancesReply>, Status> {
        let caller = caller(&request)?;
        let s = Arc::clone(&self.state);
        let r = request.into_inner();
        blocking(move || s.distances(&caller, &r)).await
    }

    async fn audit_head(
        &self,
        request: Request<proto::AuditHeadRequest>,
    ) -> Result<Response<proto::AuditHeadReply>, Status> {
        let _caller = caller(&request)?;
        let s = Arc::clone(&self.state);
        let r = request.into_inner();
        blocking(move || s.audit_head(&r)).await
    }

    async fn reshare_round(
        &self,
        request: Request<proto::ReshareRoundRequest>,
    ) -> Result<Response<proto::ReshareRoundReply>, Status> {
        let _caller = caller(&request)?;
        let s = Arc::clone(&self.state);
        let r = request.into_inner();
        blocking(move || s.reshare_round(&r)).await
    }

    async fn export_records(
        &self,
        request: Request<proto::ExportRecordsRequest>,
    ) -> Result<Response<proto::ExportRecordsReply>, Status> {
        let _caller = caller(&request)?;
        let s = Arc::clone(&self.state);
        let r = request.into_inner();
        blocking(move || s.export_records(&r)).await
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
    let tls = &config.raw.tls;
    let identity = Identity::from_pem(read(&tls.cert)?, read(&tls.key)?);
    let ca = Certificate::from_pem(read(&tls.ca)?);
    let state = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || NodeState::open(&config))
            .await
            .map_err(|e| NodeError::NotReady(format!("opening the node failed: {e}")))??
    };
    let state = Arc::new(state);
    let service = NodeService::new(Arc::clone(&state));
    let access = AccessLayer::new(Policy::new(config.id, &config.raw.clients));
    tracing::info!(
        node = %config.id,
        listen = %config.listen,
        health = ?state.health(),
        "node serving"
    );
    Server::builder()
        .tls_config(ServerTlsConfig::new().identity(identity).client_ca_root(ca))?
        .timeout(Duration::from_secs(60))
        .concurrency_limit_per_connection(64)
        .layer(access)
        .add_service(
            NodeServer::new(service)
                .max_decoding_message_size(crate::MAX_GRPC_MESSAGE)
                .max_encoding_message_size(crate::MAX_GRPC_MESSAGE),
        )
        .serve_with_shutdown(config.listen, shutdown)
        .await?;
    tracing::info!(node = %config.id, "node stopped");
    Ok(())
}
