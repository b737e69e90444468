//! Replay protection: every request carries a fresh 16-byte id and the client's clock.
//!
//! A node refuses a request whose id it has already accepted, whose clock is more than the
//! window away from its own, or whose clock is older than the node's own start (so a request
//! captured before a restart cannot be replayed after it, though the ids seen before the
//! restart are forgotten).
//!
//! Memory is bounded whatever a client sends. Each caller has its own ids and floor: no
//! caller's requests can push another's out. A caller's ids are kept in the order of their
//! request's clock; one whose clock has left the window is forgotten (a replay of it is
//! refused as out of the window). At most `max_ids` are kept per caller: past it, the id with
//! the oldest clock is forgotten and that caller's floor rises to its clock, and from then on
//! a request of that caller whose clock is not newer than the floor is refused as stale (sent
//! again, with a fresh clock, it is accepted). So no forgotten id can be replayed, and a
//! caller who floods fresh ids (or ids with clocks far ahead) only raises its own floor.

use std::collections::{BTreeSet, HashMap, HashSet};
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
    /// The clock is not newer than the oldest the guard still remembers (it forgot older ids
    /// to stay within its memory bound).
    #[error(
        "request clock {request_ms} ms is not newer than {floor_ms} ms, the oldest this node \
         still remembers under load: send it again"
    )]
    Stale {
        /// The request's clock.
        request_ms: u64,
        /// The floor.
        floor_ms: u64,
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
    ids: HashSet<[u8; REQUEST_ID_LEN]>,
    /// `(request clock, id)`, oldest clock first.
    order: BTreeSet<(u64, [u8; REQUEST_ID_LEN])>,
    /// Requests whose clock is not newer are refused (0: none yet).
    floor_ms: u64,
}

/// The ids a node accepted within the window, per caller.
pub struct ReplayGuard {
    window_ms: u64,
    started_ms: u64,
    max_ids: usize,
    seen: Mutex<HashMap<String, Seen>>,
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
    /// A guard with a window of `window_ms`, for a node that started at `started_ms`,
    /// keeping at most `max_ids` ids per caller.
    #[must_use]
    pub fn new(window_ms: u64, started_ms: u64, max_ids: usize) -> ReplayGuard {
        ReplayGuard {
            window_ms,
            started_ms,
            max_ids: max_ids.max(1),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Ids kept now, all callers together.
    #[must_use]
    pub fn len(&self) -> usize {
        self.seen
            .lock()
            .map_or(0, |s| s.values().map(|c| c.ids.len()).sum())
    }

    /// Forgets `caller`'s id `id` sent with clock `request_ms`, so that a retry of a request
    /// that was not done runs.
    pub fn forget(&self, caller: &str, id: &[u8], request_ms: u64) {
        let Ok(id) = <[u8; REQUEST_ID_LEN]>::try_from(id) else {
            return;
        };
        if let Ok(mut seen) = self.seen.lock()
            && let Some(c) = seen.get_mut(caller)
            && c.order.remove(&(request_ms, id))
        {
            c.ids.remove(&id);
        }
    }

    /// Whether no id is kept.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Accepts `caller`'s `(id, clock)` at `now_ms`, or says why not. An accepted id is
    /// refused from then on.
    ///
    /// # Errors
    /// [`ReplayError`].
    pub fn check(
        &self,
        caller: &str,
        id: &[u8],
        request_ms: u64,
        now_ms: u64,
    ) -> Result<(), ReplayError> {
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
        let mut all = self.seen.lock().map_err(|_| ReplayError::Missing)?;
        let seen = all.entry(caller.to_owned()).or_insert_with(|| Seen {
            ids: HashSet::new(),
            order: BTreeSet::new(),
            floor_ms: 0,
        });
        // Forget ids whose clock has left the window: a replay of one is out of the window.
        let oldest_in_window = now_ms.saturating_sub(self.window_ms);
        while let Some(&(at, old)) = seen.order.first() {
            if at >= oldest_in_window {
                break;
            }
            seen.order.pop_first();
            seen.ids.remove(&old);
        }
        if seen.ids.contains(&id) {
            return Err(ReplayError::Replayed(crate::hex(&id)));
        }
        if request_ms <= seen.floor_ms {
            return Err(ReplayError::Stale {
                request_ms,
                floor_ms: seen.floor_ms,
            });
        }
        seen.ids.insert(id);
        seen.order.insert((request_ms, id));
        while seen.ids.len() > self.max_ids {
            let Some((at, old)) = seen.order.pop_first() else {
                break;
            };
            seen.ids.remove(&old);
            seen.floor_ms = seen.floor_ms.max(at);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replayed_stale_or_pre_restart_request_is_refused() {
        let guard = ReplayGuard::new(1_000, 10_000, 100);
        let id = [7u8; REQUEST_ID_LEN];
        assert_eq!(guard.check("a", &id, 20_000, 20_010), Ok(()));
        assert!(matches!(
            guard.check("a", &id, 20_000, 20_020),
            Err(ReplayError::Replayed(_))
        ));
        assert!(matches!(
            guard.check("a", &[8; REQUEST_ID_LEN], 15_000, 20_000),
            Err(ReplayError::OutOfWindow { .. })
        ));
        assert!(matches!(
            guard.check("a", &[9; REQUEST_ID_LEN], 8_000, 8_500),
            Err(ReplayError::BeforeStart { .. })
        ));
        assert_eq!(
            guard.check("a", &[1; 3], 20_000, 20_000),
            Err(ReplayError::Missing)
        );
    }

    #[test]
    fn a_flood_of_fresh_ids_stays_within_the_bound_and_no_forgotten_id_replays() {
        let guard = ReplayGuard::new(60_000, 0, 1_000);
        let now = 1_000_000;
        let id = |i: u32| {
            let mut b = [0u8; REQUEST_ID_LEN];
            b[..4].copy_from_slice(&i.to_be_bytes());
            b
        };
        // 10,000 fresh ids within one millisecond-spread second: never more than 1,000 kept.
        for i in 0..10_000u32 {
            let clock = now - 1_000 + u64::from(i / 10);
            let _ = guard.check("flood", &id(i), clock, now);
            assert!(guard.len() <= 1_000);
        }
        // Every id accepted, forgotten or not, is refused again.
        for i in 0..10_000u32 {
            let clock = now - 1_000 + u64::from(i / 10);
            assert!(
                guard.check("flood", &id(i), clock, now).is_err(),
                "id {i} replayed"
            );
        }
        // A request sent now is still accepted, and another caller was never affected.
        assert_eq!(guard.check("flood", &id(20_000), now, now), Ok(()));
        assert_eq!(guard.check("other", &id(0), now - 5_000, now), Ok(()));
        // Ids with clocks far ahead raise only their own caller's floor.
        for i in 0..2_000u32 {
            let _ = guard.check("ahead", &id(i), now + 59_000, now);
        }
        assert_eq!(guard.check("other", &id(1), now, now), Ok(()));
    }
}
