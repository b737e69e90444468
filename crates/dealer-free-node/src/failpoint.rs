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
//! | `dkg-step-S` (S = 0 to 5) | a node, on receiving DKG step S, before anything |
//! | `reshare-prepared` | a node, right after sealing its prepared resharing, before replying |
//! | `reshare-commit` | a node, on receiving the commit, before writing anything |
//! | `reshare-committed` | a node, right after the commit's write, before replying |
//! | `coordinator-commit` | the client, right after node `node` acknowledged the commit |

use phr_sis::NodeId;

/// The environment variable naming the failpoints to fire.
pub const VAR: &str = "DEALER_FREE_SIS_FAILPOINT";

/// Aborts the process if [`VAR`] names `point` at `node` (only with the `testing` feature).
#[cfg(feature = "testing")]
pub fn hit(point: &str, node: NodeId) {
    let Ok(value) = std::env::var(VAR) else {
        return;
    };
    let me = format!("{point}@{node}");
    if value.split(',').any(|p| p.trim() == me) {
        eprintln!("failpoint {me}: aborting");
        std::process::abort();
    }
}

/// A no-op: failpoints exist only with the `testing` feature.
#[cfg(not(feature = "testing"))]
#[inline(always)]
pub fn hit(_point: &str, _node: NodeId) {}
