//! What the client sent and received, counted from the messages themselves: every protocol
//! message (a `dealer-free` encoding carried in a `bytes` field of an RPC) by kind and
//! direction, counted from the bytes actually sent or received on a call that succeeded;
//! and apart from them the gRPC bodies of every call (the protobuf encoding of each request
//! and reply with its 5-byte gRPC frame, retried requests included), the health checks and
//! the retries. TLS and HTTP/2 framing are not counted.
//!
//! The counts are what `experiment --cluster` sets beside the simulator's, kind by kind.

use std::collections::BTreeMap;
use std::sync::Mutex;

use dealer_free::wire::MessageKind;
use serde::Serialize;

/// Which way a message went, seen from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Client to node.
    Sent,
    /// Node to client.
    Received,
}

/// Messages and bytes of one kind and direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Messages.
    pub messages: u64,
    /// Bytes of their encodings.
    pub bytes: u64,
}

/// A snapshot of the counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WireCounts {
    /// Protocol messages by kind (its wire byte) and direction.
    pub payload: BTreeMap<(u8, Direction), Tally>,
    /// gRPC calls made (each attempt), and the bytes of their protobuf bodies with the
    /// 5-byte gRPC frame of each request and reply.
    pub rpc: Tally,
    /// Health checks among those calls.
    pub health: u64,
    /// Calls retried after a failure.
    pub retries: u64,
}

impl WireCounts {
    /// The payload of `kind` sent or received.
    #[must_use]
    pub fn of(&self, kind: MessageKind, direction: Direction) -> Tally {
        self.payload
            .get(&(kind.to_byte(), direction))
            .copied()
            .unwrap_or_default()
    }

    /// All payload bytes, both ways.
    #[must_use]
    pub fn payload_bytes(&self) -> u64 {
        self.payload.values().map(|t| t.bytes).sum()
    }
}

/// The client's counter; shared by its clones.
#[derive(Debug, Default)]
pub(crate) struct WireCounter(Mutex<WireCounts>);

/// The gRPC frame of one message: a compressed flag and a 4-byte length.
const GRPC_FRAME: u64 = 5;

impl WireCounter {
    fn with(&self, f: impl FnOnce(&mut WireCounts)) {
        if let Ok(mut c) = self.0.lock() {
            f(&mut c);
        }
    }

    /// One protocol message of `kind` and `len` bytes went `direction`.
    pub(crate) fn payload(&self, kind: MessageKind, direction: Direction, len: usize) {
        self.with(|c| {
            let t = c.payload.entry((kind.to_byte(), direction)).or_default();
            t.messages += 1;
            t.bytes += len as u64;
        });
    }

    /// Every message of `items` went `direction` as `kind`.
    pub(crate) fn payloads<B: AsRef<[u8]>>(
        &self,
        kind: MessageKind,
        direction: Direction,
        items: &[B],
    ) {
        for b in items {
            self.payload(kind, direction, b.as_ref().len());
        }
    }

    /// One call's request body (`len` bytes of protobuf).
    pub(crate) fn request(&self, len: usize) {
        self.with(|c| {
            c.rpc.messages += 1;
            c.rpc.bytes += len as u64 + GRPC_FRAME;
        });
    }

    /// One call's reply body.
    pub(crate) fn reply(&self, len: usize) {
        self.with(|c| c.rpc.bytes += len as u64 + GRPC_FRAME);
    }

    /// A health check.
    pub(crate) fn health(&self) {
        self.with(|c| c.health += 1);
    }

    /// A retried call.
    pub(crate) fn retry(&self) {
        self.with(|c| c.retries += 1);
    }

    /// The counts so far.
    pub(crate) fn snapshot(&self) -> WireCounts {
        self.0.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Starts over from zero.
    pub(crate) fn reset(&self) {
        self.with(|c| *c = WireCounts::default());
    }
}
