//! The client's TLS to a node, pinned to the node's certificate fingerprint in the enrolment
//! manifest.
//!
//! What holds: the client completes a TLS 1.3 handshake with node `i` only if the certificate
//! the server presents has exactly the SHA-256 fingerprint the manifest lists for node `i`
//! (and the server proves it holds that certificate's key, rustls's handshake signature
//! check). No CA is consulted: a certificate any CA issued, or the certificate node `i` had
//! before it was replaced, is refused during the handshake, before a single request byte is
//! sent. The refusal is recorded ([`PinWitness`]) so the client can name the fingerprint it
//! was shown instead of a bare transport error. The client still presents its own
//! certificate, which the node checks against the cluster CA and its `[[clients]]` list.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use phr_sis::NodeId;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;
use tonic::transport::Channel;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Errors setting up a pinned connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PinError {
    /// The client's certificate or key is no usable PEM.
    #[error("the client's certificate or key: {0}")]
    Pem(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The node's address is unusable.
    #[error("address {address:?}: {reason}")]
    Address {
        /// The address.
        address: String,
        /// What is wrong.
        reason: String,
    },
}

/// What the pinned verifier of one node saw: the fingerprint it expects and, after a refused
/// handshake, the one it was shown.
#[derive(Debug, Clone)]
pub struct PinWitness {
    /// The node.
    pub node: NodeId,
    /// The manifest's fingerprint for it (`sha256:…`).
    pub pinned: String,
    refused: Arc<Mutex<Option<String>>>,
}

impl PinWitness {
    /// The fingerprint of the certificate last refused, if the last handshake was refused.
    #[must_use]
    pub fn refused(&self) -> Option<String> {
        self.refused.lock().ok().and_then(|r| r.clone())
    }
}

#[derive(Debug)]
struct PinnedVerifier {
    pin: [u8; 32],
    witness: PinWitness,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = crate::pki::fingerprint(end_entity.as_ref());
        let ok = presented == format!("sha256:{}", crate::hex(&self.pin));
        if let Ok(mut r) = self.witness.refused.lock() {
            *r = (!ok).then(|| presented.clone());
        }
        if ok {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "node {}: certificate {presented} is not the enrolment manifest's {}",
                self.witness.node, self.witness.pinned
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Dials one node and runs the pinned TLS handshake; tonic speaks HTTP/2 over the result.
#[derive(Clone)]
struct PinnedConnector {
    address: String,
    name: ServerName<'static>,
    tls: TlsConnector,
}

type Connecting =
    Pin<Box<dyn Future<Output = Result<TokioIo<TlsStream<TcpStream>>, std::io::Error>> + Send>>;

impl tower_service::Service<http::Uri> for PinnedConnector {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = std::io::Error;
    type Future = Connecting;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: http::Uri) -> Self::Future {
        let (address, name, tls) = (self.address.clone(), self.name.clone(), self.tls.clone());
        Box::pin(async move {
            let tcp = TcpStream::connect(address.as_str()).await?;
            tcp.set_nodelay(true)?;
            Ok(TokioIo::new(tls.connect(name, tcp).await?))
        })
    }
}

/// A lazily connecting channel to node `node` at `address` that accepts only a server
/// certificate of fingerprint `pin`, presenting `identity` (certificate and key PEM) when
/// given; and the witness of its refusals.
///
/// # Errors
/// [`PinError`] for an unusable identity or address.
pub fn pinned_channel(
    node: NodeId,
    address: &str,
    pin: [u8; 32],
    identity: Option<(&[u8], &[u8])>,
    timeout: Duration,
) -> Result<(Channel, PinWitness), PinError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let witness = PinWitness {
        node,
        pinned: format!("sha256:{}", crate::hex(&pin)),
        refused: Arc::default(),
    };
    let verifier = Arc::new(PinnedVerifier {
        pin,
        witness: witness.clone(),
        provider: Arc::clone(&provider),
    });
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match identity {
        Some((cert, key)) => {
            let certs = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| PinError::Pem(e.to_string()))?;
            let key =
                PrivateKeyDer::from_pem_slice(key).map_err(|e| PinError::Pem(e.to_string()))?;
            builder.with_client_auth_cert(certs, key)?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let bad = |reason: String| PinError::Address {
        address: address.to_owned(),
        reason,
    };
    let name = ServerName::try_from(crate::pki::server_name(node.get()))
        .map_err(|e| bad(e.to_string()))?;
    let connector = PinnedConnector {
        address: address.to_owned(),
        name,
        tls: TlsConnector::from(Arc::new(config)),
    };
    let channel = Channel::from_shared(format!("http://{address}"))
        .map_err(|e| bad(e.to_string()))?
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect_with_connector_lazy(connector);
    Ok((channel, witness))
}
