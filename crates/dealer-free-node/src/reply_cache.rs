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
//! The cache is bounded: at most [`MAX_ENTRIES`] replies and [`MAX_BYTES`] bytes, the oldest
//! forgotten first. A retry of a forgotten reply is refused as a replay, as without the
//! cache. Entries are keyed by caller, method and id, so no caller sees another's reply.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tonic::{Code, Status};

use crate::access::Method;
use crate::replay::REQUEST_ID_LEN;

/// Replies kept at most.
pub const MAX_ENTRIES: usize = 4096;
/// Bytes of replies kept at most.
pub const MAX_BYTES: usize = 64 << 20;

type Key = (String, Method, [u8; REQUEST_ID_LEN]);

enum Slot {
    Running,
    Done(Result<Vec<u8>, (Code, String)>),
}

impl Slot {
    fn bytes(&self) -> usize {
        match self {
            Slot::Running => 0,
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
}

/// The cache of one node.
#[derive(Default)]
pub struct ReplyCache {
    inner: Arc<Mutex<Inner>>,
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
    key: Option<Key>,
    inner: Arc<Mutex<Inner>>,
}

impl Claim {
    /// Records the first attempt's outcome.
    pub fn finish(mut self, outcome: Result<Vec<u8>, &Status>) {
        let Some(key) = self.key.take() else { return };
        let slot = Slot::Done(outcome.map_err(|s| (s.code(), s.message().to_owned())));
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let bytes = slot.bytes();
        if bytes > MAX_BYTES {
            inner.slots.remove(&key);
            return;
        }
        inner.bytes = inner.bytes.saturating_add(bytes);
        if let Some(old) = inner.slots.insert(key, slot) {
            inner.bytes = inner.bytes.saturating_sub(old.bytes());
        }
        evict(&mut inner);
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(key) = self.key.take()
            && let Ok(mut inner) = self.inner.lock()
            && matches!(inner.slots.get(&key), Some(Slot::Running))
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
        let key = (caller.to_owned(), method, id);
        let mut inner = self.inner.lock().ok()?;
        Some(match inner.slots.get(&key) {
            Some(Slot::Running) => Lookup::Running,
            Some(Slot::Done(outcome)) => Lookup::Done(
                outcome
                    .clone()
                    .map_err(|(code, message)| Status::new(code, message)),
            ),
            None => {
                inner.slots.insert(key.clone(), Slot::Running);
                inner.order.push_back(key.clone());
                evict(&mut inner);
                Lookup::Run(Claim {
                    key: Some(key),
                    inner: Arc::clone(&self.inner),
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
        for i in 0..(MAX_ENTRIES + 100) as u64 {
            let mut id = [0u8; REQUEST_ID_LEN];
            id[..8].copy_from_slice(&i.to_be_bytes());
            if let Some(Lookup::Run(c)) = cache.lookup("a", Method::MaskDeal, &id) {
                c.finish(Ok(vec![0; 16]));
            }
        }
        let inner = cache.inner.lock().map_or(usize::MAX, |i| i.slots.len());
        assert!(inner <= MAX_ENTRIES, "{inner}");
    }
}
