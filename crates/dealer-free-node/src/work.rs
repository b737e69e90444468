//! Bounded work: how a node hands its handlers' work to blocking threads.
//!
//! Handlers run on tokio's blocking pool (the store fsyncs), and blocking work cannot be
//! cancelled: when a request's deadline passes (the server's timeout, or the client's
//! `grpc-timeout`), its future is dropped but its work runs on. So the bound is on the work,
//! not on the request:
//!
//! * **A slot per piece of work.** Work takes one of `max_concurrent_requests` slots before it
//!   is handed to a blocking thread, and the slot goes back only when the work ends, whatever
//!   happened to the request. At most that many handlers run at once; the blocking pool never
//!   queues more.
//! * **A share per caller.** A caller may have at most `max_concurrent_per_client` requests
//!   being read, waiting for a slot or running; past it the request is refused at once with
//!   `RESOURCE_EXHAUSTED`, so one caller's overload is shed while the others keep the
//!   remaining slots. On a served node the share is taken by the access layer before the
//!   request's body is read ([`Admission`]), so a caller holds at most that many bodies in
//!   memory; it is held until the request's work ends.
//! * **A bounded wait.** A request waits for a slot at most `queue_timeout_ms` (slots are
//!   handed out first come, first served), then it is refused with `UNAVAILABLE` ("busy"),
//!   which a client retries after a pause.
//! * **Work given up ends early where it can.** When a request's future is dropped before its
//!   work ends (its deadline passed, its caller cancelled), the work is told so
//!   ([`cancelled`]); work that can stop between steps does (a token evaluation stops within
//!   256 images), so a caller that gives up at once gets no work done for it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tonic::Status;

use crate::access::Method;
use crate::config::Limits;

/// A check of a caller's budgets for a method, before its request's body is read.
pub type Gate = Arc<dyn Fn(&str, Method) -> Result<(), Status> + Send + Sync>;

/// The node's work slots and each caller's share of them.
pub struct WorkQueue {
    gate: Option<Gate>,
    slots: Arc<Semaphore>,
    per_caller: Arc<Mutex<HashMap<String, usize>>>,
    max_per_caller: usize,
    wait: Duration,
}

/// A caller's place in the queue, given back when dropped.
struct Ticket {
    caller: String,
    per_caller: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Ok(mut m) = self.per_caller.lock()
            && let Some(n) = m.get_mut(&self.caller)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.caller);
            }
        }
    }
}

/// A caller's share taken before its request's body is read, carried in the request's
/// extensions to the handler, which hands it to [`WorkQueue::run`].
#[derive(Clone)]
pub struct Admission(Arc<Mutex<Option<Ticket>>>);

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Admission")
    }
}

impl Admission {
    fn take(&self) -> Option<Ticket> {
        self.0.lock().ok().and_then(|mut t| t.take())
    }
}

impl std::fmt::Debug for WorkQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkQueue")
            .field("free_slots", &self.slots.available_permits())
            .field("max_per_caller", &self.max_per_caller)
            .finish_non_exhaustive()
    }
}

impl WorkQueue {
    /// Checks `gate` before each admission: a caller whose budget for the method is spent
    /// is refused before its body is read.
    #[must_use]
    pub fn with_gate(mut self, gate: Gate) -> WorkQueue {
        self.gate = Some(gate);
        self
    }

    /// Takes `caller`'s share for one request of `method`.
    ///
    /// # Errors
    /// The gate's refusal; `RESOURCE_EXHAUSTED` past the caller's share.
    pub fn admission(&self, caller: &str, method: Method) -> Result<Admission, Status> {
        if let Some(gate) = &self.gate {
            gate(caller, method)?;
        }
        Ok(Admission(Arc::new(Mutex::new(Some(self.admit(caller)?)))))
    }

    /// The queue of a node with `limits`.
    #[must_use]
    pub fn new(limits: &Limits) -> WorkQueue {
        WorkQueue {
            gate: None,
            slots: Arc::new(Semaphore::new(limits.max_concurrent_requests.max(1))),
            per_caller: Arc::new(Mutex::new(HashMap::new())),
            max_per_caller: limits.max_concurrent_per_client.max(1),
            wait: Duration::from_millis(limits.queue_timeout_ms),
        }
    }

    /// Slots free now.
    #[must_use]
    pub fn free_slots(&self) -> usize {
        self.slots.available_permits()
    }

    /// Requests admitted and not ended (read, waiting for a slot or running), all callers.
    #[must_use]
    pub fn admitted(&self) -> usize {
        self.per_caller.lock().map_or(0, |m| m.values().sum())
    }

    fn admit(&self, caller: &str) -> Result<Ticket, Status> {
        let mut m = self
            .per_caller
            .lock()
            .map_err(|_| Status::internal("the work queue's lock is poisoned"))?;
        let n = m.entry(caller.to_owned()).or_insert(0);
        if *n >= self.max_per_caller {
            crate::metrics::refused(crate::metrics::Refusal::ClientShare);
            return Err(Status::resource_exhausted(format!(
                "{caller} has {} requests running or waiting on this node \
                 (max_concurrent_per_client)",
                self.max_per_caller
            )));
        }
        *n += 1;
        Ok(Ticket {
            caller: caller.to_owned(),
            per_caller: Arc::clone(&self.per_caller),
        })
    }

    /// Runs `work` for `caller` on a blocking thread once a slot is free, holding the slot
    /// and the caller's share until the work ends (even if the request is dropped first).
    ///
    /// # Errors
    /// `RESOURCE_EXHAUSTED` past the caller's share, `UNAVAILABLE` when no slot frees within
    /// the wait, `INTERNAL` if the work panicked.
    pub async fn run<R, F>(
        &self,
        caller: &str,
        admitted: Option<&Admission>,
        work: F,
    ) -> Result<R, Status>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let ticket = match admitted.and_then(Admission::take) {
            Some(t) => t,
            None => self.admit(caller)?,
        };
        let slot =
            match tokio::time::timeout(self.wait, Arc::clone(&self.slots).acquire_owned()).await {
                Ok(Ok(slot)) => slot,
                Ok(Err(_)) => return Err(Status::unavailable("the node is shutting down")),
                Err(_) => {
                    crate::metrics::refused(crate::metrics::Refusal::Busy);
                    return Err(Status::unavailable(format!(
                        "node busy: no work slot freed within {} ms (max_concurrent_requests)",
                        self.wait.as_millis()
                    )));
                }
            };
        let given_up = Arc::new(AtomicBool::new(false));
        let mut watch = GiveUp {
            flag: Arc::clone(&given_up),
            done: false,
        };
        let result = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let _ticket = ticket;
            GIVEN_UP.with(|g| *g.borrow_mut() = Some(given_up));
            // Cleared however the work ends (a panic included).
            let _clear = ClearOnDrop;
            work()
        })
        .await
        .map_err(|e| Status::internal(format!("handler failed: {e}")));
        watch.done = true;
        result
    }
}

thread_local! {
    /// The given-up flag of the request whose work runs on this thread.
    static GIVEN_UP: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// Whether the request whose work runs on this thread was given up (its future dropped
/// before the work ended: a deadline passed, the caller cancelled). Work that can stop
/// between its steps asks this and stops.
#[must_use]
pub fn cancelled() -> bool {
    GIVEN_UP.with(|g| {
        g.borrow()
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    })
}

/// Clears this thread's given-up flag when dropped.
struct ClearOnDrop;

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        GIVEN_UP.with(|g| *g.borrow_mut() = None);
    }
}

/// Raises its flag when dropped before its work is done.
struct GiveUp {
    flag: Arc<AtomicBool>,
    done: bool,
}

impl Drop for GiveUp {
    fn drop(&mut self) {
        if !self.done {
            self.flag.store(true, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(slots: usize, per_caller: usize) -> Limits {
        Limits {
            max_concurrent_requests: slots,
            max_concurrent_per_client: per_caller,
            queue_timeout_ms: 100,
            ..Limits::default()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_whose_request_is_given_up_is_told_so_and_other_work_is_not() {
        let q = Arc::new(WorkQueue::new(&limits(4, 2)));
        let (tx, rx) = std::sync::mpsc::channel::<bool>();
        let waits = |tx: std::sync::mpsc::Sender<bool>| {
            move || {
                let start = std::time::Instant::now();
                while !cancelled() && start.elapsed() < Duration::from_millis(300) {
                    std::thread::sleep(Duration::from_millis(2));
                }
                let _ = tx.send(cancelled());
            }
        };
        // Given up after 20 ms: the work sees it.
        let given_up = tokio::time::timeout(
            Duration::from_millis(20),
            q.run("a", None, waits(tx.clone())),
        )
        .await;
        assert!(given_up.is_err());
        assert_eq!(
            tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(5)))
                .await
                .ok()
                .and_then(Result::ok),
            Some(true)
        );
        // Waited for: it is not told, and no flag is left on the thread for later work.
        let (tx, rx) = std::sync::mpsc::channel::<bool>();
        assert!(q.run("a", None, waits(tx)).await.is_ok());
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).ok(), Some(false));
        assert!(q.run("a", None, cancelled).await.is_ok_and(|c| !c));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_caller_past_its_share_is_refused_while_another_is_served() {
        let q = Arc::new(WorkQueue::new(&limits(4, 2)));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = Arc::new(Mutex::new(rx));
        // Two long pieces of work of `greedy` hold its share.
        let mut held = Vec::new();
        for _ in 0..2 {
            let q = Arc::clone(&q);
            let rx = Arc::clone(&rx);
            held.push(tokio::spawn(async move {
                q.run("greedy", None, move || {
                    let _ = rx.lock().map(|r| r.recv());
                })
                .await
            }));
        }
        while q.free_slots() > 2 {
            tokio::task::yield_now().await;
        }
        let refused = q.run("greedy", None, || ()).await;
        assert_eq!(
            refused.map_err(|s| s.code()),
            Err(tonic::Code::ResourceExhausted)
        );
        assert_eq!(q.run("honest", None, || 7).await.ok(), Some(7));
        // Work whose request was dropped keeps its slot until it ends.
        drop(held);
        assert_eq!(q.free_slots(), 2);
        for _ in 0..2 {
            let _ = tx.send(());
        }
        while q.free_slots() < 4 {
            tokio::task::yield_now().await;
        }
        assert_eq!(q.run("greedy", None, || 1).await.ok(), Some(1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_that_finds_no_slot_in_time_is_told_the_node_is_busy() {
        let q = Arc::new(WorkQueue::new(&limits(1, 4)));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let busy = {
            let q = Arc::clone(&q);
            tokio::spawn(async move {
                q.run("a", None, move || {
                    let _ = rx.recv();
                })
                .await
            })
        };
        while q.free_slots() > 0 {
            tokio::task::yield_now().await;
        }
        let refused = q.run("b", None, || ()).await;
        assert_eq!(refused.map_err(|s| s.code()), Err(tonic::Code::Unavailable));
        let _ = tx.send(());
        assert!(busy.await.is_ok());
    }
}
