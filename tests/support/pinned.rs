//! Raw gRPC channels to a cluster's nodes as the client makes them: TLS pinned to each node's
//! certificate fingerprint in the cluster's enrolment manifest, with a client certificate.
#![allow(dead_code)] // each test file uses a subset

use std::path::Path;
use std::time::Duration;

use dealer_free_node::manifest::Manifest;
use dealer_free_node::proto::node_client::NodeClient;
use phr_sis::NodeId;
use tonic::transport::Channel;

/// A client certificate and its key, PEM.
#[derive(Clone)]
pub(crate) struct Identity {
    cert: Vec<u8>,
    key: Vec<u8>,
}

impl Identity {
    /// The identity of `cert` and `key` (PEM).
    pub(crate) fn from_pem(cert: impl AsRef<[u8]>, key: impl AsRef<[u8]>) -> Identity {
        Identity {
            cert: cert.as_ref().to_vec(),
            key: key.as_ref().to_vec(),
        }
    }
}

/// A channel to node `node` of the cluster in `dir` at `address`, pinned to the fingerprint
/// `dir/manifest.json` lists for it, presenting `identity` if given.
pub(crate) fn pinned(
    dir: &Path,
    node: u8,
    address: &str,
    identity: Option<&Identity>,
) -> Result<NodeClient<Channel>, Box<dyn std::error::Error>> {
    let id = NodeId::new(node)?;
    let manifest = Manifest::load(&dir.join("manifest.json"))?;
    let pin = manifest
        .fingerprint_of(id)
        .ok_or("the manifest pins no such node")?;
    let (channel, _witness) = dealer_free_node::client::pinned_channel(
        id,
        address,
        pin,
        identity.map(|i| (i.cert.as_slice(), i.key.as_slice())),
        Duration::from_secs(10),
    )?;
    Ok(NodeClient::new(channel))
}
