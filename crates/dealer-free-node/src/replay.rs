//! Replay protection: every request carries a fresh 16-byte id and the client's clock.
//!
//! A node refuses a request whose id it has already accepted, whose clock is more than the
//! window away from its own, or whose clock is older than the node's own start (so a request
//! captured before a restart cannot be replayed after it, though the ids seen before the
//! restart are forgotten). Ids are kept for two windows, then forgotten: by then their clock
//! is out of the window anyway (whichever side of the node's clock it was on).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Bytes of a request id.
pub const REQUEST_ID_LEN: usize = 16;

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// No request metadata, or an id of the wrong length.
    #[error("the request carries no valid id ({REQUEST_ID_LEN} bytes) and clock")]
    Missing,
    /// The id was accepted before.
    #[error("replayed request: id {0} was already accepted")]
    Replayed(String),
    /// The clock is outside the window.
    #[error(
        "request clock {request_ms} ms is {off_ms} ms away from this node's; the window is {window_ms} ms"
    )]
    OutOfWindow {
        /// The request's clock.
        request_ms: u64,
        /// How far off.
        off_ms: u64,
        /// The window.
        window_ms: u64,
    },
    /// The clock is before the node started.
    #[error(
        "request clock {request_ms} ms is before this node started ({started_ms} ms): a request from before a restart"
    )]
    BeforeStart {
        /// The request's clock.
        request_ms: u64,
        /// The node's start.
        started_ms: u64,
    },
}

struct Seen {
    ids: HashMap<[u8; REQUEST_ID_LEN], u64>,
    order: VecDeque<([u8; REQUEST_ID_LEN], u64)>,
}

/// The ids a node accepted within the window.
pub struct ReplayGuard {
    window_ms: u64,
    started_ms: u64,
    seen: Mutex<Seen>,
}

impl std::fmt::Debug for ReplayGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayGuard")
            .field("window_ms", &self.window_ms)
            .field("started_ms", &self.started_ms)
            .finish_non_exhaustive()
    }
}

/// Milliseconds since the Unix epoch.
#[must_use]
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl ReplayGuard {
    /// A guard with a window of `window_ms`, for a node that started at `started_ms`.
    #[must_use]
    pub fn new(window_ms: u64, started_ms: u64) -> ReplayGuard {
        ReplayGuard {
            window_ms,
            started_ms,
            seen: Mutex::new(Seen {
                ids: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }

    /// Accepts `(id, clock)` at `now_ms`, or says why not. An accepted id is refused from
    /// then on.
    ///
    /// # Errors
    /// [`ReplayError`].
    pub fn check(&self, id: &[u8], request_ms: u64, now_ms: u64) -> Result<(), ReplayError> {
        let id: [u8; REQUEST_ID_LEN] = id.try_into().map_err(|_| ReplayError::Missing)?;
        let off_ms = request_ms.abs_diff(now_ms);
        if off_ms > self.window_ms {
            return Err(ReplayError::OutOfWindow {
                request_ms,
                off_ms,
                window_ms: self.window_ms,
            });
        }
        // A little slack for clients whose clock runs slightly behind the node's.
        if request_ms.saturating_add(1_000) < self.started_ms {
            return Err(ReplayError::BeforeStart {
                request_ms,
                started_ms: self.started_ms,
            });
        }
        let mut seen = self.seen.lock().map_err(|_| ReplayError::Missing)?;
        while let Some((old, at)) = seen.order.front().copied() {
            if now_ms.saturating_sub(at) <= 2 * self.window_ms {
                break;
            }
            seen.order.pop_front();
            seen.ids.remove(&old);
        }
        if seen.ids.contains_key(&id) {
            return Err(ReplayError::Replayed(crate::hex(&id)));
        }
        seen.ids.insert(id, now_ms);
        seen.order.push_back((id, now_ms));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replayed_stale_or_pre_restart_request_is_refused() {
        let guard = ReplayGuard::new(1_000, 10_000);
        let id = [7u8; REQUEST_ID_LEN];
        assert_eq!(guard.check(&id, 20_000, 20_010), Ok(()));
        assert!(matches!(
            guard.check(&id, 20_000, 20_020),
            Err(ReplayError::Replayed(_))
        ));
        assert!(matches!(
            guard.check(&[8; REQUEST_ID_LEN], 15_000, 20_000),
            Err(ReplayError::OutOfWindow { .. })
        ));
        assert!(matches!(
            guard.check(&[9; REQUEST_ID_LEN], 8_000, 8_500),
            Err(ReplayError::BeforeStart { .. })
        ));
        assert_eq!(
            guard.check(&[1; 3], 20_000, 20_000),
            Err(ReplayError::Missing)
        );
    }
}
