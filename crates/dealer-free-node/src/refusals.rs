//! Refusals logged at a bounded rate: a hostile client that sends thousands of bad requests a
//! second must not fill the node's log (or its disk). At most [`PER_WINDOW`] refusals are
//! logged per [`WINDOW`]; the next one logged after a quiet spell says how many were left out.
//! The node's own faults (its disk, its data) have a window of their own, so refusals never
//! crowd them out.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Refusals logged per window.
pub const PER_WINDOW: u32 = 20;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(10);

struct Window {
    start: Instant,
    logged: u32,
    left_out: u64,
}

static REFUSALS: Mutex<Option<Window>> = Mutex::new(None);
static FAULTS: Mutex<Option<Window>> = Mutex::new(None);

/// Whether to log a refusal now, and how many were left out before it.
#[must_use]
pub fn admit() -> Option<u64> {
    admit_in(&REFUSALS)
}

fn admit_in(state: &Mutex<Option<Window>>) -> Option<u64> {
    let mut guard = state.lock().ok()?;
    let now = Instant::now();
    let w = guard.get_or_insert(Window {
        start: now,
        logged: 0,
        left_out: 0,
    });
    if now.duration_since(w.start) >= WINDOW {
        w.start = now;
        w.logged = 0;
    }
    if w.logged >= PER_WINDOW {
        w.left_out = w.left_out.saturating_add(1);
        return None;
    }
    w.logged += 1;
    Some(std::mem::take(&mut w.left_out))
}

/// Logs a refused request (a warning), within the rate.
pub fn warn(what: &str, error: &dyn std::fmt::Display) {
    if let Some(left_out) = admit() {
        if left_out > 0 {
            tracing::warn!(error = %error, left_out, "{what} ({left_out} refusals not logged before this one)");
        } else {
            tracing::warn!(error = %error, "{what}");
        }
    }
}

/// Logs a fault of the node itself (an error), within its own rate: refusals never crowd
/// faults out of the log, and a burst of faults does not flood it either.
pub fn error(what: &str, error: &dyn std::fmt::Display) {
    if let Some(left_out) = admit_in(&FAULTS) {
        if left_out > 0 {
            tracing::error!(error = %error, left_out, "{what} ({left_out} faults not logged before this one)");
        } else {
            tracing::error!(error = %error, "{what}");
        }
    }
}
