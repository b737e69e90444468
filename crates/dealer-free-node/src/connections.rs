//! How a node takes connections: its own TLS handshakes, bounded per address and in total,
//! and the caller's certificate checked against the node's clients before anything of HTTP/2
//! is spoken.
//!
//! [`accept`] runs the listener. For each TCP connection:
//!
//! 1. It takes a handshake slot: at most `max_handshakes` at once, `max_handshakes_per_address`
//!    from one IP address. With none free, the connection is closed at once — never parked in
//!    the kernel's backlog, where it would wait ahead of later callers.
//! 2. The TLS 1.3 handshake must end within the handshake timeout, with a client certificate
//!    of the cluster's CA.
//! 3. The certificate must be one the node's config lists (`[[clients]]`); any other
//!    connection is closed after the handshake, so a certificate of the CA that no node lists
//!    holds no connection.
//! 4. It takes a connection slot: at most `max_connections` open, `max_connections_per_client`
//!    per client. With none free it is closed.
//!
//! Slots are given back when the handshake ends and when the connection closes. Each open
//! connection carries [`PeerInfo`] (the caller's certificate fingerprint) into every request
//! it makes, where the access layer reads it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::server::TlsStream;
use tonic::transport::server::Connected;

/// The bounds on a node's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections open at once, all clients together.
    pub max_connections: usize,
    /// Connections one client (certificate) keeps open at once.
    pub max_connections_per_client: usize,
    /// TLS handshakes under way at once.
    pub max_handshakes: usize,
    /// TLS handshakes under way at once from one IP address.
    pub max_handshakes_per_address: usize,
    /// The longest a handshake may take.
    pub handshake_timeout: Duration,
    /// Idle time before TCP keepalive probes start.
    pub tcp_keepalive: Duration,
}

/// What handshakes are counted under: an IPv4 address, or an IPv6 address's /64 (one host
/// is usually given a whole /64), after mapping an IPv4-mapped IPv6 address back to IPv4.
#[must_use]
pub fn bucket(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

/// Who is on the other end of a connection: put into every request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerInfo {
    /// SHA-256 of the caller's certificate (DER).
    pub fingerprint: [u8; 32],
    /// Its address.
    pub remote: Option<SocketAddr>,
}

/// Errors building the TLS acceptor.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// A PEM file does not parse.
    #[error("{what}: {reason}")]
    Pem {
        /// Which file.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error(transparent)]
    Tls(#[from] rustls::Error),
    /// The CA does not make a client verifier.
    #[error("client verifier: {0}")]
    Verifier(String),
}

/// The TLS 1.3 configuration of a node: its certificate and key, client certificates of the
/// CA in `ca_pem` required, HTTP/2 offered.
///
/// # Errors
/// [`TlsSetupError`].
pub fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    ca_pem: &[u8],
) -> Result<rustls::ServerConfig, TlsSetupError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let pem = |what: &'static str| {
        move |e: rustls::pki_types::pem::Error| TlsSetupError::Pem {
            what,
            reason: e.to_string(),
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem("the node's certificate"))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(pem("the node's key"))?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(ca.map_err(pem("the CA certificate"))?)?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::clone(&provider),
    )
    .build()
    .map_err(|e| TlsSetupError::Verifier(e.to_string()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// Slots counted in total and per key, each bounded; a slot is given back when dropped.
#[derive(Debug)]
pub struct Pool<K> {
    max_total: usize,
    max_each: usize,
    /// Slots held in all, and per key (only keys that hold one).
    held: Mutex<(usize, HashMap<K, usize>)>,
}

/// A slot of a [`Pool`], given back when dropped.
#[derive(Debug)]
pub struct Slot<K: std::hash::Hash + Eq> {
    pool: Arc<Pool<K>>,
    key: K,
}

impl<K: std::hash::Hash + Eq + Clone> Pool<K> {
    fn new(max_total: usize, max_each: usize) -> Arc<Pool<K>> {
        Arc::new(Pool {
            max_total,
            max_each,
            held: Mutex::new((0, HashMap::new())),
        })
    }

    /// A slot for `key`, if one is free both in total and for `key`.
    fn take(self: &Arc<Self>, key: K) -> Option<Slot<K>> {
        let mut held = self.held.lock().ok()?;
        let (total, each) = &mut *held;
        let mine = each.get(&key).copied().unwrap_or(0);
        if *total >= self.max_total || mine >= self.max_each {
            return None;
        }
        *total += 1;
        each.insert(key.clone(), mine + 1);
        Some(Slot {
            pool: Arc::clone(self),
            key,
        })
    }

    /// Slots held in all.
    fn total(&self) -> usize {
        self.held.lock().map_or(0, |h| h.0)
    }
}

impl<K: std::hash::Hash + Eq> Drop for Slot<K> {
    fn drop(&mut self) {
        if let Ok(mut held) = self.pool.held.lock() {
            let (total, each) = &mut *held;
            *total = total.saturating_sub(1);
            if let Some(n) = each.get_mut(&self.key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    each.remove(&self.key);
                }
            }
        }
    }
}

/// A handshake slot, given back when dropped.
pub type HandshakeSlot = Slot<IpAddr>;

/// A connection slot, given back when dropped.
pub type ConnectionSlot = Slot<[u8; 32]>;

/// The slots of one node, against [`ConnectionLimits`].
#[derive(Debug)]
pub struct Slots {
    handshakes: Arc<Pool<IpAddr>>,
    connections: Arc<Pool<[u8; 32]>>,
}

impl Slots {
    /// No slot taken yet.
    #[must_use]
    pub fn new(limits: ConnectionLimits) -> Arc<Slots> {
        Arc::new(Slots {
            handshakes: Pool::new(limits.max_handshakes, limits.max_handshakes_per_address),
            connections: Pool::new(limits.max_connections, limits.max_connections_per_client),
        })
    }

    /// A handshake slot for a connection from `address`, if one is free.
    #[must_use]
    pub fn handshake(&self, address: IpAddr) -> Option<HandshakeSlot> {
        self.handshakes.take(address)
    }

    /// A connection slot for `client`, if one is free.
    #[must_use]
    pub fn connection(&self, client: [u8; 32]) -> Option<ConnectionSlot> {
        self.connections.take(client)
    }

    /// Handshakes under way and connections open.
    #[must_use]
    pub fn held(&self) -> (usize, usize) {
        (self.handshakes.total(), self.connections.total())
    }
}

/// An open connection: TLS done, its caller listed, its slot held until it is dropped.
#[derive(Debug)]
pub struct Connection {
    inner: TlsStream<TcpStream>,
    peer: PeerInfo,
    _slot: ConnectionSlot,
}

impl Connected for Connection {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> PeerInfo {
        self.peer
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Whether a certificate fingerprint is one of the node's clients.
pub type Listed = Arc<dyn Fn(&[u8; 32]) -> bool + Send + Sync>;

/// Runs the listener on `listener` (see the module): a stream of open connections for
/// tonic's `serve_with_incoming_shutdown`. The listener stops when the stream is dropped.
pub fn accept(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    listed: Listed,
    limits: ConnectionLimits,
) -> tokio_stream::wrappers::ReceiverStream<std::io::Result<Connection>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let slots = Slots::new(limits);
    let acceptor = TlsAcceptor::from(tls);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = tx.closed() => return,
                a = listener.accept() => a,
            };
            let (tcp, remote) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    use std::io::ErrorKind;
                    crate::refusals::warn("a connection could not be accepted", &e.to_string());
                    // One connection's trouble: go on. Out of file descriptors or memory:
                    // pause rather than spin.
                    if !matches!(
                        e.kind(),
                        ErrorKind::ConnectionAborted
                            | ErrorKind::ConnectionReset
                            | ErrorKind::Interrupted
                    ) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    continue;
                }
            };
            let Some(handshake) = slots.handshake(bucket(remote.ip())) else {
                crate::metrics::refused(crate::metrics::Refusal::Handshakes);
                crate::refusals::warn(
                    "a connection closed at once: too many TLS handshakes under way",
                    &remote.to_string(),
                );
                continue;
            };
            let _ = tcp.set_nodelay(true);
            // A peer that vanishes without a word is found out by the kernel too.
            let _ = socket2::SockRef::from(&tcp)
                .set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(limits.tcp_keepalive));
            let (acceptor, slots, listed, tx) = (
                acceptor.clone(),
                Arc::clone(&slots),
                Arc::clone(&listed),
                tx.clone(),
            );
            tokio::spawn(async move {
                let done =
                    tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await;
                drop(handshake);
                let stream = match done {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        crate::metrics::refused(crate::metrics::Refusal::HandshakeFailed);
                        crate::refusals::warn("a TLS handshake failed", &format!("{remote}: {e}"));
                        return;
                    }
                    Err(_) => {
                        crate::metrics::refused(crate::metrics::Refusal::HandshakeFailed);
                        crate::refusals::warn("a TLS handshake timed out", &remote.to_string());
                        return;
                    }
                };
                let Some(cert) = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                else {
                    return;
                };
                let fingerprint: [u8; 32] = Sha256::digest(cert.as_ref()).into();
                if !listed(&fingerprint) {
                    crate::metrics::refused(crate::metrics::Refusal::UnlistedCertificate);
                    crate::refusals::warn(
                        "a connection closed: its certificate is not one of the node's clients",
                        &format!("{remote}: sha256:{}", crate::hex(&fingerprint)),
                    );
                    return;
                }
                let Some(slot) = slots.connection(fingerprint) else {
                    crate::metrics::refused(crate::metrics::Refusal::Connections);
                    crate::refusals::warn(
                        "a connection closed: too many open (max_connections, \
                         max_connections_per_client)",
                        &format!("{remote}: sha256:{}", crate::hex(&fingerprint)),
                    );
                    return;
                };
                let connection = Connection {
                    inner: stream,
                    peer: PeerInfo {
                        fingerprint,
                        remote: Some(remote),
                    },
                    _slot: slot,
                };
                let _ = tx.send(Ok(connection)).await;
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            max_connections: 3,
            max_connections_per_client: 2,
            max_handshakes: 3,
            max_handshakes_per_address: 2,
            handshake_timeout: Duration::from_secs(1),
            tcp_keepalive: Duration::from_secs(30),
        }
    }

    #[test]
    fn an_ipv6_host_counts_as_its_64_and_a_mapped_ipv4_as_itself() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1"
            .parse()
            .unwrap_or(IpAddr::from([0u8; 4]));
        let b: IpAddr = "2001:db8:1:2:ffff::9"
            .parse()
            .unwrap_or(IpAddr::from([0u8; 4]));
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap_or(IpAddr::from([0u8; 4]));
        assert_eq!(bucket(a), bucket(b));
        assert_ne!(bucket(a), bucket(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap_or(IpAddr::from([0u8; 4]));
        assert_eq!(bucket(mapped), IpAddr::from([10, 0, 0, 1]));
        let slots = Slots::new(limits());
        let _held = (slots.handshake(bucket(a)), slots.handshake(bucket(b)));
        assert!(slots.handshake(bucket(a)).is_none(), "a third from one /64");
    }

    #[test]
    fn handshakes_are_bounded_per_address_and_in_total_and_given_back() {
        let slots = Slots::new(limits());
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let c: IpAddr = [10, 0, 0, 3].into();
        let a1 = slots.handshake(a);
        let a2 = slots.handshake(a);
        assert!(a1.is_some() && a2.is_some());
        assert!(slots.handshake(a).is_none(), "a third from one address");
        let b1 = slots.handshake(b);
        assert!(b1.is_some());
        assert!(slots.handshake(c).is_none(), "past the total");
        drop(a1);
        assert!(slots.handshake(c).is_some());
        drop((a2, b1));
        assert_eq!(slots.held().0, 0);
    }

    #[test]
    fn connections_are_bounded_per_client_and_in_total_and_given_back() {
        let slots = Slots::new(limits());
        let x = [1u8; 32];
        let y = [2u8; 32];
        let x1 = slots.connection(x);
        let x2 = slots.connection(x);
        assert!(x1.is_some() && x2.is_some());
        assert!(slots.connection(x).is_none(), "a third of one client");
        let y1 = slots.connection(y);
        assert!(y1.is_some());
        assert!(slots.connection(y).is_none(), "past the total");
        drop(x1);
        assert!(slots.connection(y).is_some());
        drop((x2, y1));
        assert_eq!(slots.held().1, 0);
    }
}
