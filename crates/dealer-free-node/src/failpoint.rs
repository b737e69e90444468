//! Failpoints for the liveness tests: with the `testing` feature, a process aborts
//! (`std::process::abort`, no clean-up, like a crash or SIGKILL) at a named point when the
//! environment variable [`VAR`] names that point and this node. Without the feature the
//! variable is never read and every point is a no-op.
//!
//! The value is a comma-separated list of `point@node`, e.g. `reshare-prepared@2` or
//! `dkg-step-3@4,coordinator-commit@1`. Points:
//!
//! | point | where |
//! |---|---|
//! | `start` | a node, when it starts, before it opens its data |
//! | `dkg-step-S` (S = 0 to 5) | a node, on receiving DKG step S, before anything |
//! | `dkg-silent-S` (S = 0 to 5) | a node does not answer DKG step S (the handler sleeps [`HANG`]) |
//! | `reshare-step-S` (S = 0 to 6) | a node, on receiving resharing step S, before anything |
//! | `reshare-prepared` | a node, right after sealing its prepared resharing, before replying |
//! | `reshare-commit` | a node, on receiving the commit, before writing anything |
//! | `reshare-committed` | a node, right after the commit's write, before replying |
//! | `coordinator-commit` | the client, right after node `node` acknowledged the commit |
//! | `distance-shift` | a lying server: adds to each masked distance share it returns what moves the distance opened among servers `1 ..= 2t − 1` by +1 |
//! | `mask-off-points` | a corrupt mask dealer: its points for the highest other server are off its sharings (committed to, so they pass that server's digest check) |
//! | `mask-deal-refused` | a node refuses every mask dealing (`MaskDeal` answers `UNAVAILABLE`) |

use phr_sis::NodeId;

/// The environment variable naming the failpoints to fire.
pub const VAR: &str = "DEALER_FREE_SIS_FAILPOINT";

/// How long a `…-silent-…` failpoint keeps a request unanswered.
pub const HANG: std::time::Duration = std::time::Duration::from_secs(120);

/// Whether [`VAR`] names `point` at `node`.
#[cfg(feature = "testing")]
fn named(point: &str, node: NodeId) -> bool {
    let Ok(value) = std::env::var(VAR) else {
        return false;
    };
    let me = format!("{point}@{node}");
    value.split(',').any(|p| p.trim() == me)
}

/// Aborts the process if [`VAR`] names `point` at `node` (only with the `testing` feature).
#[cfg(feature = "testing")]
pub fn hit(point: &str, node: NodeId) {
    if named(point, node) {
        eprintln!("failpoint {point}@{node}: aborting");
        std::process::abort();
    }
}

/// Blocks the calling thread for [`HANG`] if [`VAR`] names `point` at `node` (only with the
/// `testing` feature): the request stays unanswered, as from a node that fell silent.
#[cfg(feature = "testing")]
pub fn hang(point: &str, node: NodeId) {
    if named(point, node) {
        eprintln!("failpoint {point}@{node}: not answering");
        std::thread::sleep(HANG);
    }
}

/// Whether [`VAR`] names `point` at `node` (always `false` without the `testing` feature):
/// for the points where a node misbehaves instead of crashing.
#[cfg(feature = "testing")]
#[must_use]
pub fn active(point: &str, node: NodeId) -> bool {
    let on = named(point, node);
    if on {
        eprintln!("failpoint {point}@{node}: misbehaving");
    }
    on
}

/// Always `false`: failpoints exist only with the `testing` feature.
#[cfg(not(feature = "testing"))]
#[inline(always)]
#[must_use]
pub fn active(_point: &str, _node: NodeId) -> bool {
    false
}

/// A no-op: failpoints exist only with the `testing` feature.
#[cfg(not(feature = "testing"))]
#[inline(always)]
pub fn hit(_point: &str, _node: NodeId) {}

/// A no-op: failpoints exist only with the `testing` feature.
#[cfg(not(feature = "testing"))]
#[inline(always)]
pub fn hang(_point: &str, _node: NodeId) {}
