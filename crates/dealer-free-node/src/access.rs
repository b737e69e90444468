//! Who may call what: client roles, the table of every RPC's required role, and the tower
//! layer that enforces it before a request body is read.
//!
//! What holds on a node served by [`crate::server::serve`]:
//!
//! * Every request passes [`AccessLayer`] first. It reads only the HTTP/2 request's path and
//!   the peer certificate of the TLS connection; it decodes nothing. A caller whose
//!   certificate fingerprint is not among the node's `[[clients]]` gets `PERMISSION_DENIED`,
//!   and so does a listed caller whose [`Role`] is below the method's ([`Method::role`]);
//!   in both cases the gRPC service is never called, so no handler runs and no byte of the
//!   body is decoded. A path that is no method of the service gets `UNIMPLEMENTED`, also
//!   without reaching the service.
//! * With a work queue ([`AccessLayer::with_queue`]), an admitted caller's share of the
//!   node's work is taken here too, before its body is read ([`crate::work`]); past its share
//!   it gets `RESOURCE_EXHAUSTED`, its body unread.
//! * An admitted request carries its [`Caller`] (name and role) in its extensions; the
//!   handlers take the caller's name from there and refuse a request without one, so a
//!   service served without the layer answers nothing.
//!
//! The roles, each allowed everything the ones below it are:
//!
//! | role | may |
//! |---|---|
//! | `search` | search: `Health`, `EvaluateTokens`, `Candidates`, the mask rounds, `QueryCheck`, `Distances` |
//! | `owner` | also ingest and get: `StoreRecords`, `GetShare`, `AuditHead` |
//! | `admin` | also the key ceremonies and repair: `Identity`, `DkgRound`, `ReshareRound`, `ExportRecords` |
//!
//! A `search` client never receives a share, a record or a key ceremony's message.

use std::collections::HashMap;
use std::fmt;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};

use phr_sis::NodeId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tonic::Status;
use tonic::codegen::{Service, http};

use crate::config::{AuthorizedClient, parse_fingerprint};
use crate::work::WorkQueue;

/// A bad role or client name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// Not one of `admin`, `owner`, `search`.
    #[error("unknown role {0:?}: the roles are admin, owner and search")]
    UnknownRole(String),
    /// A client name that cannot name a client (it becomes a folder name).
    #[error("client name {name:?}: {reason}")]
    BadName {
        /// The name given.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// What a client may do; each role may do everything the roles below it may
/// (`search` < `owner` < `admin`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub enum Role {
    /// Search the collection, nothing else.
    Search,
    /// Ingest, search and get images.
    Owner,
    /// Everything: also the key ceremonies (DKG, resharing), export and repair. A
    /// `[[clients]]` entry without a role is an admin, as every client was before roles.
    #[default]
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 3] = [Role::Search, Role::Owner, Role::Admin];

    /// The role's name in configs and on the command line.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Search => "search",
            Role::Owner => "owner",
            Role::Admin => "admin",
        }
    }

    /// Whether a client of this role may call `method`.
    #[must_use]
    pub fn may_call(self, method: Method) -> bool {
        self >= method.role()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = AccessError;

    fn from_str(s: &str) -> Result<Role, AccessError> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| AccessError::UnknownRole(s.to_owned()))
    }
}

impl TryFrom<String> for Role {
    type Error = AccessError;

    fn try_from(s: String) -> Result<Role, AccessError> {
        s.parse()
    }
}

impl From<Role> for String {
    fn from(r: Role) -> String {
        r.as_str().to_owned()
    }
}

/// A client's name: 1 to 64 ASCII letters, digits, `-` and `_`, starting with a letter or
/// digit (it names the client's folder, so it holds no path separator or dot).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientName(String);

impl ClientName {
    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ClientName {
    type Err = AccessError;

    fn from_str(s: &str) -> Result<ClientName, AccessError> {
        let bad = |reason| AccessError::BadName {
            name: s.to_owned(),
            reason,
        };
        if s.is_empty() || s.len() > 64 {
            return Err(bad("must be 1 to 64 characters"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(bad("may hold only ASCII letters, digits, '-' and '_'"));
        }
        if !s.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric) {
            return Err(bad("must start with a letter or digit"));
        }
        Ok(ClientName(s.to_owned()))
    }
}

/// The gRPC service's full name, the first part of every method's path.
pub const SERVICE: &str = "dealerfreesis.node.v1.Node";

/// Every method of the `Node` service (`proto/node.proto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// `Health`.
    Health,
    /// `Identity`.
    Identity,
    /// `DkgRound`.
    DkgRound,
    /// `EvaluateTokens`.
    EvaluateTokens,
    /// `StoreRecords`.
    StoreRecords,
    /// `GetShare`.
    GetShare,
    /// `Candidates`.
    Candidates,
    /// `MaskDeal`.
    MaskDeal,
    /// `MaskCheck`.
    MaskCheck,
    /// `MaskJudge`.
    MaskJudge,
    /// `MaskRelease`.
    MaskRelease,
    /// `QueryCheck`.
    QueryCheck,
    /// `Distances`.
    Distances,
    /// `AuditHead`.
    AuditHead,
    /// `ReshareRound`.
    ReshareRound,
    /// `ExportRecords`.
    ExportRecords,
    /// `DeleteRecords`.
    DeleteRecords,
    /// `ListRecords`.
    ListRecords,
    /// `ScrubRecords`.
    ScrubRecords,
    /// `RemoveDamaged`.
    RemoveDamaged,
    /// `CheckBitShares`.
    CheckBitShares,
}

impl Method {
    /// Every method.
    pub const ALL: [Method; 21] = [
        Method::Health,
        Method::Identity,
        Method::DkgRound,
        Method::EvaluateTokens,
        Method::StoreRecords,
        Method::GetShare,
        Method::Candidates,
        Method::MaskDeal,
        Method::MaskCheck,
        Method::MaskJudge,
        Method::MaskRelease,
        Method::QueryCheck,
        Method::Distances,
        Method::AuditHead,
        Method::ReshareRound,
        Method::ExportRecords,
        Method::DeleteRecords,
        Method::ListRecords,
        Method::ScrubRecords,
        Method::RemoveDamaged,
        Method::CheckBitShares,
    ];

    /// The lowest role allowed to call the method: the whole access policy, in one place.
    #[must_use]
    pub fn role(self) -> Role {
        match self {
            // What a search needs: liveness, tokens of the query, candidates, the secure
            // ranking's offline (mask) and online (distance) rounds. No share, no record.
            Method::Health
            | Method::EvaluateTokens
            | Method::Candidates
            | Method::MaskDeal
            | Method::MaskCheck
            | Method::MaskJudge
            | Method::MaskRelease
            | Method::QueryCheck
            | Method::Distances => Role::Search,
            // Ingest, get, list and delete, and the audit head `cluster status` shows.
            Method::StoreRecords
            | Method::GetShare
            | Method::AuditHead
            | Method::DeleteRecords
            | Method::ListRecords => Role::Owner,
            // Key ceremonies (identity keys are only needed for them) and repair, which
            // reads every record.
            // Scrub and the removal of damaged records before their repair, too.
            Method::Identity
            | Method::DkgRound
            | Method::ReshareRound
            | Method::ExportRecords
            | Method::ScrubRecords
            | Method::RemoveDamaged
            | Method::CheckBitShares => Role::Admin,
        }
    }

    /// The method's name in the proto.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Method::Health => "Health",
            Method::Identity => "Identity",
            Method::DkgRound => "DkgRound",
            Method::EvaluateTokens => "EvaluateTokens",
            Method::StoreRecords => "StoreRecords",
            Method::GetShare => "GetShare",
            Method::Candidates => "Candidates",
            Method::MaskDeal => "MaskDeal",
            Method::MaskCheck => "MaskCheck",
            Method::MaskJudge => "MaskJudge",
            Method::MaskRelease => "MaskRelease",
            Method::QueryCheck => "QueryCheck",
            Method::Distances => "Distances",
            Method::AuditHead => "AuditHead",
            Method::ReshareRound => "ReshareRound",
            Method::ExportRecords => "ExportRecords",
            Method::DeleteRecords => "DeleteRecords",
            Method::ListRecords => "ListRecords",
            Method::ScrubRecords => "ScrubRecords",
            Method::RemoveDamaged => "RemoveDamaged",
            Method::CheckBitShares => "CheckBitShares",
        }
    }

    /// The largest request body the method accepts, gRPC frame included: a body past it is
    /// refused (`RESOURCE_EXHAUSTED`) as soon as that many bytes arrived, before it is
    /// decoded ([`crate::body_limit`]). Only storing records and relaying every dealer's
    /// masks need the transport's whole [`crate::MAX_GRPC_MESSAGE`].
    #[must_use]
    pub fn max_request_bytes(self) -> usize {
        const SMALL: usize = 64 << 10;
        // A token request of 256 images (`max_batch`) in the 64-band layout: 512 KiB.
        const TOKENS: usize = 1 << 20;
        const MESSAGES: usize = 4 << 20;
        const CEREMONY: usize = 16 << 20;
        match self {
            Method::Health
            | Method::Identity
            | Method::AuditHead
            | Method::GetShare
            | Method::MaskRelease
            | Method::ExportRecords
            | Method::ListRecords
            | Method::ScrubRecords
            | Method::DeleteRecords
            | Method::RemoveDamaged
            | Method::CheckBitShares => SMALL,
            Method::EvaluateTokens => TOKENS,
            Method::Candidates
            | Method::QueryCheck
            | Method::Distances
            | Method::MaskDeal
            | Method::MaskJudge => MESSAGES,
            Method::DkgRound | Method::ReshareRound => CEREMONY,
            Method::StoreRecords | Method::MaskCheck => crate::MAX_GRPC_MESSAGE,
        }
    }

    /// Whether a call of the method must not apply twice (a ceremony's round, a mask round, a
    /// query's step): a client retries it with the same request id, and the node answers the
    /// retry with the first reply ([`crate::reply_cache`]).
    #[must_use]
    pub fn applies_once(self) -> bool {
        matches!(
            self,
            Method::DkgRound
                | Method::ReshareRound
                | Method::MaskDeal
                | Method::MaskCheck
                | Method::MaskJudge
                | Method::MaskRelease
                | Method::Candidates
                | Method::QueryCheck
                | Method::Distances
        )
    }

    /// The method of an HTTP/2 request path (`/dealerfreesis.node.v1.Node/<Method>`).
    #[must_use]
    pub fn from_path(path: &str) -> Option<Method> {
        let name = path
            .strip_prefix('/')?
            .strip_prefix(SERVICE)?
            .strip_prefix('/')?;
        Method::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// An admitted caller, put into the request's extensions by [`AccessLayer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Its name in the node's config (for logs and per-client budgets).
    pub name: String,
    /// Its role.
    pub role: Role,
}

/// Why [`Policy::admit`] refused a request; each names its culprit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Denied {
    /// The connection carries no client certificate.
    #[error("no client certificate")]
    NoCertificate,
    /// The certificate is not listed in the node's `[[clients]]`.
    #[error("certificate sha256:{} is not authorised on node {node}", crate::hex(.fingerprint))]
    Unlisted {
        /// The node.
        node: NodeId,
        /// The certificate's SHA-256.
        fingerprint: [u8; 32],
    },
    /// The path names no method of the service.
    #[error("no such method: {0}")]
    UnknownMethod(String),
    /// The caller's role is below the method's.
    #[error("client {caller:?} has role {role}; {} needs {}", .method.name(), .method.role())]
    Role {
        /// The caller's name.
        caller: String,
        /// Its role.
        role: Role,
        /// The method it called.
        method: Method,
    },
}

impl Denied {
    /// The gRPC status of the refusal.
    #[must_use]
    pub fn status(&self) -> Status {
        let m = self.to_string();
        match self {
            Denied::NoCertificate => Status::unauthenticated(m),
            Denied::UnknownMethod(_) => Status::unimplemented(m),
            _ => Status::permission_denied(m),
        }
    }
}

/// The node's clients and their roles.
#[derive(Debug, Clone)]
pub struct Policy {
    node: NodeId,
    clients: HashMap<[u8; 32], Caller>,
}

impl Policy {
    /// The policy of node `node` over its config's `[[clients]]` (entries whose fingerprint
    /// does not parse are left out; [`crate::config::NodeConfig::load`] refuses them).
    #[must_use]
    pub fn new(node: NodeId, clients: &[AuthorizedClient]) -> Policy {
        let clients = clients
            .iter()
            .filter_map(|c| {
                parse_fingerprint(&c.fingerprint).map(|f| {
                    (
                        f,
                        Caller {
                            name: c.name.clone(),
                            role: c.role,
                        },
                    )
                })
            })
            .collect();
        Policy { node, clients }
    }

    /// Whether the certificate with SHA-256 `fingerprint` is one of the node's clients.
    #[must_use]
    pub fn knows(&self, fingerprint: &[u8; 32]) -> bool {
        self.clients.contains_key(fingerprint)
    }

    /// Admits the caller whose certificate has SHA-256 `peer` to the request path `path`.
    ///
    /// # Errors
    /// [`Denied`] with the culprit.
    pub fn admit(&self, path: &str, peer: Option<[u8; 32]>) -> Result<Caller, Denied> {
        let fingerprint = peer.ok_or(Denied::NoCertificate)?;
        let caller = self.clients.get(&fingerprint).ok_or(Denied::Unlisted {
            node: self.node,
            fingerprint,
        })?;
        let method =
            Method::from_path(path).ok_or_else(|| Denied::UnknownMethod(path.to_owned()))?;
        if !caller.role.may_call(method) {
            return Err(Denied::Role {
                caller: caller.name.clone(),
                role: caller.role,
                method,
            });
        }
        Ok(caller.clone())
    }
}

/// Reads the SHA-256 of the caller's certificate from a request's extensions.
pub type PeerFingerprint = fn(&http::Extensions) -> Option<[u8; 32]>;

/// The SHA-256 of the caller's certificate: the node's own listener puts it into every
/// request's extensions ([`crate::connections::PeerInfo`]); a server on tonic's TLS puts the
/// certificates there (`TlsConnectInfo`).
#[must_use]
pub fn tls_peer(extensions: &http::Extensions) -> Option<[u8; 32]> {
    use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    if let Some(peer) = extensions.get::<crate::connections::PeerInfo>() {
        return Some(peer.fingerprint);
    }
    let certs = extensions
        .get::<TlsConnectInfo<TcpConnectInfo>>()?
        .peer_certs()?;
    let cert = certs.first()?;
    Some(Sha256::digest(cert.as_ref()).into())
}

/// The tower layer that enforces a [`Policy`] on a tonic server
/// (`Server::builder().layer(AccessLayer::new(policy))`).
#[derive(Debug, Clone)]
pub struct AccessLayer {
    policy: Arc<Policy>,
    peer: PeerFingerprint,
    queue: Option<Arc<WorkQueue>>,
}

impl AccessLayer {
    /// The layer of `policy`, identifying callers by their TLS client certificate.
    #[must_use]
    pub fn new(policy: Policy) -> AccessLayer {
        AccessLayer::with_peer(policy, tls_peer)
    }

    /// The layer of `policy`, identifying callers with `peer` (to test the layer without a
    /// TLS connection).
    #[must_use]
    pub fn with_peer(policy: Policy, peer: PeerFingerprint) -> AccessLayer {
        AccessLayer {
            policy: Arc::new(policy),
            peer,
            queue: None,
        }
    }

    /// Takes each admitted caller's share of `queue` before the request's body is read
    /// ([`crate::work::Admission`]); a caller past its share is refused then.
    #[must_use]
    pub fn with_queue(mut self, queue: Arc<WorkQueue>) -> AccessLayer {
        self.queue = Some(queue);
        self
    }
}

impl<S> tower_layer::Layer<S> for AccessLayer {
    type Service = Access<S>;

    fn layer(&self, inner: S) -> Access<S> {
        Access {
            inner,
            policy: Arc::clone(&self.policy),
            peer: self.peer,
            queue: self.queue.clone(),
        }
    }
}

/// The service [`AccessLayer`] wraps around the gRPC routes.
#[derive(Debug, Clone)]
pub struct Access<S> {
    inner: S,
    policy: Arc<Policy>,
    peer: PeerFingerprint,
    queue: Option<Arc<WorkQueue>>,
}

/// The service that was polled ready, to take a call; its clone stays to wait for the next.
pub(crate) fn take_ready<S: Clone>(inner: &mut S) -> S {
    let clone = inner.clone();
    std::mem::replace(inner, clone)
}

/// The future of [`Access`].
pub type AccessFuture<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

impl<S, B, R> Service<http::Request<B>> for Access<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = AccessFuture<http::Response<R>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let peer = (self.peer)(request.extensions());
        match self.policy.admit(request.uri().path(), peer) {
            Ok(caller) => {
                if let Some(queue) = &self.queue
                    && let Some(method) = Method::from_path(request.uri().path())
                {
                    match queue.admission(&caller.name, method) {
                        Ok(admission) => {
                            request.extensions_mut().insert(admission);
                        }
                        Err(status) => {
                            crate::refusals::warn("request shed", &status.message());
                            return Box::pin(std::future::ready(Ok(status.into_http())));
                        }
                    }
                }
                request.extensions_mut().insert(caller);
                Box::pin(take_ready(&mut self.inner).call(request))
            }
            Err(denied) => {
                crate::metrics::refused(crate::metrics::Refusal::Denied);
                crate::refusals::warn("request refused before its body was read", &denied);
                let response = denied.status().into_http();
                Box::pin(std::future::ready(Ok(response)))
            }
        }
    }
}

#[cfg(test)]
#[path = "access_tests.rs"]
mod tests;
