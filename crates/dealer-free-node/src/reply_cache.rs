//! The first reply of a request that must not apply twice, kept for its retries.
//!
//! A client that gets no answer (a timeout, a dropped connection) cannot know whether the
//! node did the step: a DKG or resharing round, a mask round, a query's step. It sends the
//! request again with the **same** request id ([`crate::access::Method::applies_once`]); the
//! node answers a retry with the first attempt's reply (or its refusal) from this cache,
//! without doing the step again, and a retry that arrives while the first attempt still runs
//! is told to try again (`UNAVAILABLE`). Without the cache the retry would be refused as a
//! replay.
//!
//! The cache is bounded per caller: at most [`MAX_ENTRIES`] replies and [`MAX_BYTES`] bytes
//! of each caller, its oldest forgotten first, so no caller can push another's replies out.
//! A retry of a forgotten reply is refused as a replay, as without the cache. Entries are
//! keyed by caller, method and id, so no caller sees another's reply (client names are unique
//! in a node's config). An outcome that says "try again" (`UNAVAILABLE`,
//! `RESOURCE_EXHAUSTED`) is not kept: the node forgets the request id too, so the retry runs.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tonic::{Code, Status};

use crate::access::Method;
use crate::replay::REQUEST_ID_LEN;

/// Replies kept per caller at most.
pub const MAX_ENTRIES: usize = 512;
/// Bytes of one caller's replies kept at most.
pub const MAX_BYTES: usize = 4 << 20;

type Key = (Method, [u8; REQUEST_ID_LEN]);

enum Slot {
    /// The first attempt runs; the number tells its claim from a later one's.
    Running(u64),
    Done(Result<Vec<u8>, (Code, String)>),
}

impl Slot {
    fn bytes(&self) -> usize {
        match self {
            Slot::Running(_) => 0,
            Slot::Done(Ok(b)) => b.len(),
            Slot::Done(Err((_, m))) => m.len(),
        }
    }
}

#[derive(Default)]
struct Inner {
    slots: HashMap<Key, Slot>,
    order: VecDeque<Key>,
    bytes: usize,
    /// The next claim's number.
    next: u64,
}

/// The cache of one node.
#[derive(Default)]
pub struct ReplyCache {
    callers: Arc<Mutex<HashMap<String, Inner>>>,
}

impl std::fmt::Debug for ReplyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplyCache").finish_non_exhaustive()
    }
}

/// What to do with a request.
pub enum Lookup {
    /// A first attempt: run it and [`Claim::finish`] with its outcome.
    Run(Claim),
    /// A retry of a request that ended: its first reply (encoded) or refusal.
    Done(Result<Vec<u8>, Status>),
    /// A retry of a request whose first attempt still runs.
    Running,
}

/// The right to record a request's outcome; a claim dropped unfinished is forgotten.
pub struct Claim {
    caller: String,
    generation: u64,
    key: Option<Key>,
    callers: Arc<Mutex<HashMap<String, Inner>>>,
}

impl Claim {
    /// Records the first attempt's outcome (unless its entry was forgotten meanwhile: then
    /// a retry is refused as a replay, as if it had been forgotten after).
    pub fn finish(mut self, outcome: Result<Vec<u8>, &Status>) {
        let Some(key) = self.key.take() else { return };
        let slot = Slot::Done(outcome.map_err(|s| (s.code(), s.message().to_owned())));
        let Ok(mut callers) = self.callers.lock() else {
            return;
        };
        let Some(inner) = callers.get_mut(&self.caller) else {
            return;
        };
        if !matches!(inner.slots.get(&key), Some(Slot::Running(g)) if *g == self.generation) {
            return;
        }
        let bytes = slot.bytes();
        if bytes > MAX_BYTES {
            inner.slots.remove(&key);
            return;
        }
        inner.bytes = inner.bytes.saturating_add(bytes);
        inner.slots.insert(key, slot);
        evict(inner);
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(key) = self.key.take()
            && let Ok(mut callers) = self.callers.lock()
            && let Some(inner) = callers.get_mut(&self.caller)
            && matches!(inner.slots.get(&key), Some(Slot::Running(g)) if *g == self.generation)
        {
            inner.slots.remove(&key);
        }
    }
}

/// Forgets the oldest entries past the bounds.
fn evict(inner: &mut Inner) {
    while inner.slots.len() > MAX_ENTRIES || inner.bytes > MAX_BYTES {
        let Some(old) = inner.order.pop_front() else {
            break;
        };
        if let Some(slot) = inner.slots.remove(&old) {
            inner.bytes = inner.bytes.saturating_sub(slot.bytes());
        }
    }
    // Keys of entries already gone (a dropped claim) leave the order lazily.
    if inner.order.len() > 2 * MAX_ENTRIES {
        let Inner { slots, order, .. } = inner;
        order.retain(|k| slots.contains_key(k));
    }
}

impl ReplyCache {
    /// A first attempt to run, a retry's first outcome, or a retry of one still running;
    /// `None` for an id that is not one (the handler refuses it).
    #[must_use]
    pub fn lookup(&self, caller: &str, method: Method, id: &[u8]) -> Option<Lookup> {
        let id: [u8; REQUEST_ID_LEN] = id.try_into().ok()?;
        let key = (method, id);
        let mut callers = self.callers.lock().ok()?;
        let inner = callers.entry(caller.to_owned()).or_default();
        Some(match inner.slots.get(&key) {
            Some(Slot::Running(_)) => Lookup::Running,
            Some(Slot::Done(outcome)) => Lookup::Done(
                outcome
                    .clone()
                    .map_err(|(code, message)| Status::new(code, message)),
            ),
            None => {
                let generation = inner.next;
                inner.next = inner.next.wrapping_add(1);
                inner.slots.insert(key, Slot::Running(generation));
                inner.order.push_back(key);
                evict(inner);
                Lookup::Run(Claim {
                    caller: caller.to_owned(),
                    generation,
                    key: Some(key),
                    callers: Arc::clone(&self.callers),
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_gets_the_first_outcome_and_no_other_caller_does() {
        let cache = ReplyCache::default();
        let id = [1u8; REQUEST_ID_LEN];
        let Some(Lookup::Run(claim)) = cache.lookup("a", Method::DkgRound, &id) else {
            panic!("a first attempt runs");
        };
        assert!(matches!(
            cache.lookup("a", Method::DkgRound, &id),
            Some(Lookup::Running)
        ));
        claim.finish(Ok(b"reply".to_vec()));
        assert!(matches!(
            cache.lookup("a", Method::DkgRound, &id),
            Some(Lookup::Done(Ok(ref b))) if b == b"reply"
        ));
        assert!(matches!(
            cache.lookup("b", Method::DkgRound, &id),
            Some(Lookup::Run(_))
        ));
        assert!(cache.lookup("a", Method::DkgRound, &[1u8; 3]).is_none());
    }

    #[test]
    fn the_cache_stays_within_its_bounds() {
        let cache = ReplyCache::default();
        let first = [9u8; REQUEST_ID_LEN];
        let Some(Lookup::Run(b)) = cache.lookup("b", Method::DkgRound, &first) else {
            panic!("a first attempt runs");
        };
        b.finish(Ok(b"b's".to_vec()));
        // A request still running when its entry is pushed out...
        let Some(Lookup::Run(slow)) = cache.lookup("a", Method::Distances, &first) else {
            panic!("a first attempt runs");
        };
        for i in 0..(MAX_ENTRIES + 100) as u64 {
            let mut id = [0u8; REQUEST_ID_LEN];
            id[..8].copy_from_slice(&i.to_be_bytes());
            if let Some(Lookup::Run(c)) = cache.lookup("a", Method::MaskDeal, &id) {
                c.finish(Ok(vec![0; 16]));
            }
        }
        // ...leaves nothing behind when it ends.
        slow.finish(Ok(vec![0; 16]));
        let kept = |who: &str| {
            cache
                .callers
                .lock()
                .map_or(usize::MAX, |c| c.get(who).map_or(0, |i| i.slots.len()))
        };
        assert!(kept("a") <= MAX_ENTRIES, "{}", kept("a"));
        // Another caller's reply stayed.
        assert!(matches!(
            cache.lookup("b", Method::DkgRound, &first),
            Some(Lookup::Done(Ok(ref r))) if r == b"b's"
        ));
    }
}
