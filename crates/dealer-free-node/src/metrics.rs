//! A node's Prometheus metrics: what it served, how fast, what it refused and what it holds,
//! for an operator's dashboards and alerts. Off unless the node is given an address
//! (`node run --metrics-addr`, or `metrics_addr` in `node.toml`); then [`http`] serves them
//! as OpenMetrics text at `GET /metrics` on a listener of their own.
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `dealer_free_sis_rpc_requests_total` | counter | `method`, `code` | requests answered, by gRPC method and status code |
//! | `dealer_free_sis_rpc_duration_seconds` | histogram | `method` | from a request's arrival until its status is handed to the transport |
//! | `dealer_free_sis_refusals_total` | counter | `reason` | requests and connections refused by a limit ([`Refusal`]) |
//! | `dealer_free_sis_stored_images` | gauge | | images the node holds (indexed) |
//! | `dealer_free_sis_mask_sessions` | gauge | | mask sessions held (`max_mask_sessions`) |
//! | `dealer_free_sis_query_sessions` | gauge | | queries between their candidates and distances (`max_query_sessions`) |
//! | `dealer_free_sis_audit_entries` | gauge | | the audit log's head: its entries on disk |
//! | `dealer_free_sis_healthy` | gauge | | 1 while `Health` reports no problem, else 0 |
//! | `dealer_free_sis_has_key` | gauge | | 1 once the node holds a key share |
//! | `dealer_free_sis_work_slots` | gauge | | `max_concurrent_requests` |
//! | `dealer_free_sis_work_slots_busy` | gauge | | work slots running a handler now |
//! | `dealer_free_sis_work_admitted` | gauge | | requests admitted and not ended: read, waiting or running |
//! | `dealer_free_sis_node_info` | info | `node`, `version` | the node's id and build |
//!
//! What holds:
//!
//! * **Bounded labels.** A label value is one of a fixed set: `method` is a method of the
//!   service ([`crate::access::Method::ALL`]) or `unknown` (any other path), `code` one of the
//!   17 gRPC codes, `reason` one of [`Refusal::ALL`]. So there are at most 17 request
//!   counters and one histogram per method, however many clients, images or requests there
//!   are.
//! * **Nothing of a request or a client.** No label or value carries a client's name or
//!   certificate, an address, a path, an image id or any byte of a request; the audit head's
//!   hash is left out too (a label that changes with every entry would make a new series
//!   each time; its count says whether the log advances, and the hash itself is served to
//!   clients over the authenticated `AuditHead`).
//! * **Counted where the node already decides.** Requests and latencies are counted by one
//!   tower layer around the whole service ([`MetricsLayer`]), outside the access check, so
//!   requests refused before their body is read count too. Refusals are counted at the one
//!   place each limit refuses ([`refused`]); those counters are the process's (a node is one
//!   process).
//! * **Off costs nothing.** Without an address the layer passes every request through
//!   untouched and no listener is opened.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use phr_sis::NodeId;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::state::NodeState;
use crate::work::WorkQueue;

pub mod http;
mod layer;

pub use layer::{Metered, MeteredBody, MetricsLayer};

/// The prefix of every metric's name.
pub const PREFIX: &str = "dealer_free_sis";

/// The upper bounds of the latency histogram's buckets (seconds): from a health check to a
/// store of a full batch or a request that waited its whole queue timeout.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// A limit that refused a request or a connection: the `reason` label of
/// `dealer_free_sis_refusals_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// A budget of the minute or a session limit (`token_images_per_minute`,
    /// `token_images_per_minute_total`, `queries_per_minute`, `max_mask_sessions`,
    /// `max_mask_sessions_per_client`, `max_masks_per_client`, `max_query_sessions`,
    /// `max_query_sessions_per_client`).
    RateLimited,
    /// No room: the disk's reserve (`min_free_bytes`) or the client's stored bytes
    /// (`max_stored_bytes_per_client`).
    NoRoom,
    /// The caller's share of the work queue (`max_concurrent_per_client`).
    ClientShare,
    /// No work slot freed in time (`max_concurrent_requests`, `queue_timeout_ms`).
    Busy,
    /// A body past its method's cap.
    BodyTooLarge,
    /// The bytes of bodies held at once (`max_body_bytes_in_flight`).
    BodyBudget,
    /// The access check: no certificate, an unlisted one, a role below the method's, no such
    /// method.
    Denied,
    /// Too many TLS handshakes under way (`max_handshakes`, `max_handshakes_per_address`).
    Handshakes,
    /// A TLS handshake failed or timed out.
    HandshakeFailed,
    /// A certificate of the CA that the node's config does not list.
    UnlistedCertificate,
    /// Too many connections open (`max_connections`, `max_connections_per_client`).
    Connections,
}

impl Refusal {
    /// Every reason.
    pub const ALL: [Refusal; 11] = [
        Refusal::RateLimited,
        Refusal::NoRoom,
        Refusal::ClientShare,
        Refusal::Busy,
        Refusal::BodyTooLarge,
        Refusal::BodyBudget,
        Refusal::Denied,
        Refusal::Handshakes,
        Refusal::HandshakeFailed,
        Refusal::UnlistedCertificate,
        Refusal::Connections,
    ];

    /// The label value.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Refusal::RateLimited => "rate_limited",
            Refusal::NoRoom => "no_room",
            Refusal::ClientShare => "client_share",
            Refusal::Busy => "busy",
            Refusal::BodyTooLarge => "body_too_large",
            Refusal::BodyBudget => "body_budget",
            Refusal::Denied => "denied",
            Refusal::Handshakes => "handshakes",
            Refusal::HandshakeFailed => "handshake_failed",
            Refusal::UnlistedCertificate => "unlisted_certificate",
            Refusal::Connections => "connections",
        }
    }

    fn index(self) -> usize {
        Refusal::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// The process's refusal counts, one per [`Refusal`].
static REFUSALS: [AtomicU64; Refusal::ALL.len()] =
    [const { AtomicU64::new(0) }; Refusal::ALL.len()];

/// Counts a refusal for `reason` (one atomic add, metrics served or not).
pub fn refused(reason: Refusal) {
    if let Some(n) = REFUSALS.get(reason.index()) {
        n.fetch_add(1, Ordering::Relaxed);
    }
}

/// Refusals counted for `reason` so far in this process.
#[must_use]
pub fn refusals(reason: Refusal) -> u64 {
    REFUSALS
        .get(reason.index())
        .map_or(0, |n| n.load(Ordering::Relaxed))
}

/// Counts the refusal a handler's error is, if it is one of a limit.
pub fn refused_for(e: &crate::state::NodeError) {
    use crate::state::NodeError;
    match e {
        NodeError::RateLimited(_) => refused(Refusal::RateLimited),
        NodeError::Full(_) => refused(Refusal::NoRoom),
        _ => {}
    }
}

/// What the node holds at a scrape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Images held.
    pub images: u64,
    /// Mask sessions held.
    pub mask_sessions: u64,
    /// Queries open.
    pub query_sessions: u64,
    /// Audit log entries on disk.
    pub audit_entries: u64,
    /// `Health` reports no problem.
    pub healthy: bool,
    /// The node holds a key share.
    pub has_key: bool,
    /// Work slots in all.
    pub work_slots: u64,
    /// Work slots running a handler.
    pub work_slots_busy: u64,
    /// Requests admitted and not ended.
    pub work_admitted: u64,
}

/// Where a scrape reads the node's [`Snapshot`] from.
pub type Source = Arc<dyn Fn() -> Snapshot + Send + Sync>;

/// The [`Source`] of a served node: its state and its work queue of `slots` slots. It takes
/// the state's session locks only to count; a scrape runs it on a blocking thread
/// ([`http`]).
#[must_use]
pub fn source(state: Arc<NodeState>, work: Arc<WorkQueue>, slots: usize) -> Source {
    Arc::new(move || {
        let health = state.health();
        let (masks, queries) = state.open_sessions();
        let free = work.free_slots();
        Snapshot {
            images: health.images,
            mask_sessions: masks as u64,
            query_sessions: queries as u64,
            audit_entries: state.audit_entries(),
            healthy: health.problem.is_empty(),
            has_key: health.has_key,
            work_slots: slots as u64,
            work_slots_busy: slots.saturating_sub(free) as u64,
            work_admitted: work.admitted() as u64,
        }
    })
}

/// The labels of a request counter: the method and the status code's name.
type RpcLabels = [(&'static str, &'static str); 2];
/// The label of a latency histogram: the method.
type MethodLabels = [(&'static str, &'static str); 1];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// A node's metrics: the request counters and histograms the layer feeds, and the registry
/// a scrape encodes (with the node's [`Snapshot`] and the refusal counts read then).
pub struct Metrics {
    registry: Registry,
    requests: Family<RpcLabels, Counter>,
    latency: Family<MethodLabels, Histogram, fn() -> Histogram>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// The metrics read at each scrape: the node's snapshot and the refusal counts.
struct AtScrape {
    source: Source,
}

impl std::fmt::Debug for AtScrape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AtScrape")
    }
}

fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
    g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)
}

impl Collector for AtScrape {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let s = (self.source)();
        {
            let mut family = encoder.encode_descriptor(
                "refusals",
                "Requests and connections refused by a limit, by reason.",
                None,
                MetricType::Counter,
            )?;
            for r in Refusal::ALL {
                let labels = [("reason", r.name())];
                ConstCounter::new(refusals(r)).encode(family.encode_family(&labels)?)?;
            }
        }
        let e = &mut encoder;
        gauge(e, "stored_images", "Images the node holds.", s.images)?;
        gauge(
            e,
            "mask_sessions",
            "Mask sessions held (max_mask_sessions).",
            s.mask_sessions,
        )?;
        gauge(
            e,
            "query_sessions",
            "Queries between their candidates and their distances (max_query_sessions).",
            s.query_sessions,
        )?;
        gauge(
            e,
            "audit_entries",
            "The audit log's head: its entries on disk.",
            s.audit_entries,
        )?;
        gauge(
            e,
            "healthy",
            "1 while Health reports no problem, else 0.",
            u64::from(s.healthy),
        )?;
        gauge(
            e,
            "has_key",
            "1 once the node holds a key share.",
            u64::from(s.has_key),
        )?;
        gauge(
            e,
            "work_slots",
            "Work slots (max_concurrent_requests).",
            s.work_slots,
        )?;
        gauge(
            e,
            "work_slots_busy",
            "Work slots running a handler now.",
            s.work_slots_busy,
        )?;
        gauge(
            e,
            "work_admitted",
            "Requests admitted and not ended: being read, waiting for a slot or running.",
            s.work_admitted,
        )
    }
}

impl Metrics {
    /// The metrics of node `node`, reading what it holds from `source` at each scrape.
    #[must_use]
    pub fn new(node: NodeId, source: Source) -> Arc<Metrics> {
        let mut registry = Registry::with_prefix(PREFIX);
        let requests = Family::<RpcLabels, Counter>::default();
        let latency = Family::<MethodLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "rpc_requests",
            // The registry ends each help text with a full stop.
            "Requests answered, by gRPC method and status code",
            requests.clone(),
        );
        registry.register(
            "rpc_duration_seconds",
            "Seconds from a request's arrival until its status is handed to the transport, \
             by gRPC method",
            latency.clone(),
        );
        registry.register(
            "node",
            "The node's id and build",
            Info::new([
                ("node", node.get().to_string()),
                ("version", env!("CARGO_PKG_VERSION").to_owned()),
            ]),
        );
        registry.register_collector(Box::new(AtScrape { source }));
        Arc::new(Metrics {
            registry,
            requests,
            latency,
        })
    }

    /// Counts one request of `method` answered with `code` after `seconds`.
    pub fn record(&self, method: &'static str, code: &'static str, seconds: f64) {
        self.requests
            .get_or_create(&[("method", method), ("code", code)])
            .inc();
        self.latency
            .get_or_create(&[("method", method)])
            .observe(seconds);
    }

    /// The metrics as OpenMetrics text (reads the node's snapshot: run it off the async
    /// workers).
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            // Writing to a String does not fail; a collector's error leaves what was written.
            out.push_str("# EOF\n");
        }
        out
    }
}

/// The name of gRPC status code `code` (`OK`, `INVALID_ARGUMENT`, …); `UNKNOWN` for a
/// number that is none.
#[must_use]
pub fn code_name(code: i32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("UNKNOWN")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed() -> Source {
        Arc::new(|| Snapshot {
            images: 7,
            mask_sessions: 2,
            query_sessions: 1,
            audit_entries: 42,
            healthy: true,
            has_key: true,
            work_slots: 32,
            work_slots_busy: 3,
            work_admitted: 5,
        })
    }

    #[test]
    fn a_scrape_shows_requests_latencies_refusals_and_what_the_node_holds() {
        let Ok(node) = NodeId::new(3) else {
            panic!("3 is a node id");
        };
        let m = Metrics::new(node, fixed());
        m.record("StoreRecords", "OK", 0.003);
        m.record("StoreRecords", "OK", 0.2);
        m.record("Health", "PERMISSION_DENIED", 0.000_1);
        refused(Refusal::Busy);
        let text = m.render();
        for line in [
            "dealer_free_sis_rpc_requests_total{method=\"StoreRecords\",code=\"OK\"} 2",
            "dealer_free_sis_rpc_requests_total{method=\"Health\",code=\"PERMISSION_DENIED\"} 1",
            "dealer_free_sis_rpc_duration_seconds_bucket{le=\"0.005\",method=\"StoreRecords\"} 1",
            "dealer_free_sis_rpc_duration_seconds_bucket{le=\"0.25\",method=\"StoreRecords\"} 2",
            "dealer_free_sis_rpc_duration_seconds_count{method=\"StoreRecords\"} 2",
            "dealer_free_sis_stored_images 7",
            "dealer_free_sis_mask_sessions 2",
            "dealer_free_sis_query_sessions 1",
            "dealer_free_sis_audit_entries 42",
            "dealer_free_sis_healthy 1",
            "dealer_free_sis_work_slots_busy 3",
            "dealer_free_sis_node_info{node=\"3\",version=",
            "# EOF",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
        assert!(!text.contains(".."), "{text}");
        // Every reason is listed, counted or not.
        for r in Refusal::ALL {
            let name = format!("dealer_free_sis_refusals_total{{reason=\"{}\"}} ", r.name());
            assert!(text.contains(&name), "{name} missing from:\n{text}");
        }
        assert!(refusals(Refusal::Busy) >= 1);
    }

    #[test]
    fn every_code_has_its_name_and_others_are_unknown() {
        assert_eq!(code_name(0), "OK");
        assert_eq!(code_name(8), "RESOURCE_EXHAUSTED");
        assert_eq!(code_name(16), "UNAUTHENTICATED");
        assert_eq!(code_name(17), "UNKNOWN");
        assert_eq!(code_name(-1), "UNKNOWN");
        for c in 0..17 {
            assert_eq!(
                code_name(c),
                code_name(tonic::Code::from_i32(c) as i32),
                "{c}"
            );
        }
    }
}
