//! dealer-free-sis over the network: each storage node is its own process, a gRPC server
//! (tonic) behind mutual TLS (rustls), that drives the same sans-IO protocol code as the
//! simulator; a client that ingests, searches and retrieves through a cluster of such nodes;
//! and a local cluster started in one command.
//!
//! | module | what it is for |
//! |---|---|
//! | [`proto`] | the generated gRPC messages and stubs of `proto/node.proto` |
//! | [`access`] | client roles, the role each RPC needs, the layer that checks them before decoding |
//! | [`files`] | files written atomically and durably, secrets with mode `0600` from the first byte |
//! | [`config`] | a node's `node.toml` and the client's `client.toml` profile |
//! | [`pki`] | the cluster's certificate authority for clients, nodes' self-signed certificates |
//! | [`manifest`] | the enrolment manifest: every node's pinned identity keys and certificate fingerprint, its digest |
//! | [`enrol`] | `node init` (one node's keys, on its machine) and `node approve` (a manifest change) |
//! | [`secrets`] | a node's secrets at rest: identity keys, MAC key, DKG key share, AES-256-GCM sealed |
//! | [`audit`] | the append-only, hash-chained audit log of what a node stored and served |
//! | [`replay`] | request ids and clocks: a replayed request is refused |
//! | [`state`] | a node's state and the handler of every request, without gRPC |
//! | [`server`] | the gRPC service over [`state`]: authentication, authorisation, bounds |
//! | [`codec`] | prost's codec with a bound on a message's fields before it is decoded |
//! | [`body_limit`] | per-method caps on a request's body before it is decoded, and all bodies together |
//! | [`work`] | the work queue: a caller's share taken before its body is read, slots held until work ends |
//! | [`reply_cache`] | a retried request that must apply once gets its first reply back |
//! | [`refusals`] | refusals logged at a bounded rate, the node's own faults apart |
//! | [`connections`] | the node's own TLS handshakes: bounded per address and in total, unlisted certificates closed, connections bounded per client and in total |
//! | [`metrics`] | Prometheus metrics of requests, latencies, refusals and what the node holds, on a listener of their own (`--metrics-addr`) |
//! | [`client`] | the cluster client: ingest, search, get, DKG coordination, retries |
//! | [`cluster`] | `cluster init/up/status/down`: configs, certificates, node processes |
//!
//! What holds: a caller without a certificate of the cluster's CA gets no answer (the TLS
//! handshake fails); one whose certificate is not listed in the node's config has its
//! connection closed after the handshake; one whose role does not allow the method gets
//! `PERMISSION_DENIED` before its request is decoded; every request is bounded in size and count and a malformed one gets
//! `INVALID_ARGUMENT` without changing any state; a node takes part in a DKG or resharing
//! only with the identity keys its approved enrolment manifest lists, and the client talks
//! to a node only if its certificate has the manifest's fingerprint; an acknowledged store is durable (redb,
//! fsync) before the acknowledgement leaves the node.

pub mod access;
pub mod audit;
pub mod body_limit;
pub mod client;
pub mod cluster;
pub mod codec;
pub mod config;
pub mod connections;
pub mod enrol;
pub mod failpoint;
pub mod files;
pub mod manifest;
pub mod metrics;
pub mod pki;
pub mod refusals;
pub mod replay;
pub mod reply_cache;
pub mod secrets;
pub mod server;
pub mod state;
pub mod work;

/// The generated gRPC messages and service stubs of `proto/node.proto`.
#[allow(
    missing_docs,
    unreachable_pub,
    unused_qualifications,
    clippy::all,
    clippy::pedantic
)]
pub mod proto {
    tonic::include_proto!("dealerfreesis.node.v1");
}

/// The largest gRPC message a node accepts or sends (bytes).
pub const MAX_GRPC_MESSAGE: usize = 64 * 1024 * 1024;

/// Hex of `bytes`, lower case.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Bytes of a hex string (either case); `None` if it is not hex of whole bytes.
#[must_use]
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect()
}
