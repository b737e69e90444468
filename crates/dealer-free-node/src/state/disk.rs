//! A node's disk: the share store behind a slot that is reopened after an I/O error, the
//! free-space reserve, and the fault `Health` reports.
//!
//! What holds:
//!
//! * **A full disk is an error, never a wedge.** A store write that fails with an I/O error
//!   (a full disk, a failing device) stored nothing (one redb transaction). redb refuses every
//!   later read and write of that open file, so the node takes the store out of service,
//!   reports the fault in `Health`, and reopens the file (redb repairs it to its last commit)
//!   on the next request, at most once a second. While it cannot, requests that need the
//!   store are refused with `UNAVAILABLE` at once (one request reopens, the others do not
//!   wait for it), and everything else (health, other nodes) goes on. A read that finds one
//!   damaged value is that value's error (`DATA_LOSS`), not the store's.
//! * **The reserve.** A store request that would leave less than `min_free_bytes` free on the
//!   data folder's filesystem is refused with `RESOURCE_EXHAUSTED` before anything is written,
//!   and `Health` reports the node unhealthy while free space is below the reserve: the
//!   store's writes never take the last of the disk. Concurrent store requests reserve their
//!   bytes until they end, so together they cannot pass the reserve either. (The audit log's
//!   lines and key saves are not checked against it: the reserve is their room.)
//! * A store request refused for room leaves the node reporting itself full until that much
//!   is free again or a write succeeds.
//! * A store fault clears once the store is reopened or a store write succeeds (a node short
//!   of room stays reported full until that room is free); an audit-log fault once a durable
//!   append succeeds.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use phr_sis::NodeId;
use phr_sis::store::{MacKey, ShareStore, StoreError};

use super::NodeError;

/// How often a store out of service is tried again.
const REOPEN_EVERY: Duration = Duration::from_secs(1);

/// The file a full-disk test creates in a node's data folder to make its store's writes fail
/// (only with the `testing` feature and the `disk-full-marker` failpoint).
pub const FULL_MARKER: &str = "disk-full";

/// The node's store, its reserve and its fault.
pub(super) struct Disk {
    dir: PathBuf,
    path: PathBuf,
    mac_key: MacKey,
    min_free: u64,
    /// Whether writes fail while [`FULL_MARKER`] exists (a test failpoint).
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    marked: bool,
    store: RwLock<Option<Arc<ShareStore>>>,
    last_reopen: Mutex<Option<Instant>>,
    /// Whether a request is reopening the store now.
    reopening: std::sync::atomic::AtomicBool,
    /// Bytes reserved by store requests running now (released when they end).
    reserved: Arc<AtomicU64>,
    /// Free bytes the last write refused for room needed (0 after a write succeeds): the
    /// node reports itself full while fewer are free.
    needed: AtomicU64,
    /// Why the store or the audit log cannot be written, by [`Part`].
    faults: Mutex<[Option<String>; 2]>,
}

/// What failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    /// The share store.
    Store = 0,
    /// The audit log.
    Audit = 1,
}

/// An error and its causes, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl Disk {
    /// Opens the store in `dir`.
    pub(super) fn open(
        dir: &Path,
        mac_key: MacKey,
        min_free: u64,
        id: NodeId,
    ) -> Result<Disk, NodeError> {
        let disk = Disk {
            dir: dir.to_owned(),
            path: dir.join("shares.redb"),
            mac_key,
            min_free,
            marked: crate::failpoint::active("disk-full-marker", id),
            store: RwLock::new(None),
            last_reopen: Mutex::new(None),
            reopening: std::sync::atomic::AtomicBool::new(false),
            reserved: Arc::new(AtomicU64::new(0)),
            needed: AtomicU64::new(0),
            faults: Mutex::new([None, None]),
        };
        let store = disk.open_store()?;
        if let Ok(mut slot) = disk.store.write() {
            *slot = Some(Arc::new(store));
        }
        Ok(disk)
    }

    #[cfg(feature = "testing")]
    fn open_store(&self) -> Result<ShareStore, StoreError> {
        if self.marked {
            return ShareStore::open_full_when_marked(
                &self.path,
                self.mac_key.clone(),
                &self.dir.join(FULL_MARKER),
            );
        }
        ShareStore::open(&self.path, self.mac_key.clone())
    }

    #[cfg(not(feature = "testing"))]
    fn open_store(&self) -> Result<ShareStore, StoreError> {
        ShareStore::open(&self.path, self.mac_key.clone())
    }

    /// The store, reopened first if an I/O error took it out of service.
    ///
    /// # Errors
    /// [`NodeError::Unavailable`] while it cannot be reopened.
    pub(super) fn store(&self) -> Result<Arc<ShareStore>, NodeError> {
        if let Ok(slot) = self.store.try_read()
            && let Some(s) = slot.as_ref()
        {
            return Ok(Arc::clone(s));
        }
        let unavailable = || {
            NodeError::Unavailable(
                self.fault()
                    .unwrap_or_else(|| "the store is out of service".into()),
            )
        };
        // One reopen at a time, at most once a second, with no lock held while redb repairs
        // the file; everyone else is refused at once.
        if self.reopening.swap(true, Ordering::SeqCst) {
            return Err(unavailable());
        }
        let reopened = self.reopen();
        self.reopening.store(false, Ordering::SeqCst);
        reopened.ok_or_else(unavailable)
    }

    /// Opens the store again if it is out of service and the last try is a second old.
    fn reopen(&self) -> Option<Arc<ShareStore>> {
        if let Ok(slot) = self.store.read()
            && let Some(s) = slot.as_ref()
        {
            return Some(Arc::clone(s));
        }
        {
            let mut last = self.last_reopen.lock().ok()?;
            if last.is_some_and(|t| t.elapsed() < REOPEN_EVERY) {
                return None;
            }
            *last = Some(Instant::now());
        }
        match self.open_store() {
            Ok(s) => {
                tracing::warn!(path = %self.path.display(), "share store reopened");
                let s = Arc::new(s);
                if let Ok(mut slot) = self.store.write() {
                    *slot = Some(Arc::clone(&s));
                }
                self.clear_fault(Part::Store);
                Some(s)
            }
            Err(e) => {
                self.set_fault(
                    Part::Store,
                    format!("the share store cannot be reopened: {}", chain(&e)),
                );
                None
            }
        }
    }

    /// The node error of a failed store call; an I/O failure takes the store out of service
    /// and records the fault.
    pub(super) fn failed(&self, e: StoreError) -> NodeError {
        if !e.is_device_failure() {
            return e.into();
        }
        let text = format!("a write of the share store failed: {}", chain(&e));
        tracing::error!(path = %self.path.display(), error = %text, "share store out of service");
        self.set_fault(Part::Store, text.clone());
        if let Ok(mut slot) = self.store.write() {
            *slot = None;
        }
        NodeError::Unavailable(text)
    }

    /// Reserves room for a write of about `adding` bytes until the returned guard drops, or
    /// refuses it if, with every write running now, less than the reserve would stay free.
    ///
    /// # Errors
    /// [`NodeError::Full`].
    pub(super) fn reserve(&self, adding: u64) -> Result<Reservation, NodeError> {
        let taken = self.reserved.fetch_add(adding, Ordering::SeqCst);
        let guard = Reservation {
            bytes: adding,
            reserved: Arc::clone(&self.reserved),
        };
        let Some(free) = self.free_bytes() else {
            return Ok(guard);
        };
        let needed = taken.saturating_add(adding).saturating_add(self.min_free);
        if free < needed {
            // Health reports the node full while this request's own room is missing.
            self.needed
                .store(adding.saturating_add(self.min_free), Ordering::Relaxed);
            return Err(NodeError::Full(format!(
                "{}: {free} bytes free, a write of about {adding} bytes (with {taken} reserved by \
                 writes running now) would leave less than the reserve of {} bytes \
                 (min_free_bytes)",
                self.dir.display(),
                self.min_free
            )));
        }
        Ok(guard)
    }

    /// Free bytes for the node on its data folder's filesystem (none where unknown).
    fn free_bytes(&self) -> Option<u64> {
        free_bytes(&self.dir)
    }

    /// Records why `part` cannot be written.
    pub(super) fn set_fault(&self, part: Part, text: String) {
        if let Ok(mut f) = self.faults.lock()
            && let Some(slot) = f.get_mut(part as usize)
        {
            *slot = Some(text);
        }
    }

    /// A write of `part` succeeded: its fault, if any, is over.
    pub(super) fn wrote(&self, part: Part) {
        if part == Part::Store {
            self.needed.store(0, Ordering::Relaxed);
        }
        self.clear_fault(part);
    }

    /// `part`'s fault, if any, is over.
    fn clear_fault(&self, part: Part) {
        if let Ok(mut f) = self.faults.lock()
            && let Some(slot) = f.get_mut(part as usize)
            && slot.take().is_some()
        {
            tracing::warn!(dir = %self.dir.display(), ?part, "writes succeed again");
        }
    }

    /// The recorded faults, on one line.
    pub(super) fn fault(&self) -> Option<String> {
        let f = self.faults.lock().ok()?;
        let all: Vec<&str> = f.iter().flatten().map(String::as_str).collect();
        (!all.is_empty()).then(|| all.join("; "))
    }

    /// Why the node cannot serve now: a recorded fault, free space below the reserve, or
    /// too little for the last write it refused (until that much is free again).
    pub(super) fn problem(&self) -> Option<String> {
        self.fault().or_else(|| {
            let free = self.free_bytes()?;
            let needed = self.needed.load(Ordering::Relaxed);
            if free < self.min_free {
                Some(format!(
                    "{}: {free} bytes free, below the reserve of {} bytes (min_free_bytes)",
                    self.dir.display(),
                    self.min_free
                ))
            } else if free < needed {
                Some(format!(
                    "{}: disk full: {free} bytes free, the last store request refused needed \
                     {needed}",
                    self.dir.display()
                ))
            } else {
                None
            }
        })
    }
}

/// Free bytes for unprivileged writers on the filesystem of `dir` (statvfs(2)).
#[cfg(unix)]
fn free_bytes(dir: &Path) -> Option<u64> {
    let s = rustix::fs::statvfs(dir).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

#[cfg(not(unix))]
fn free_bytes(_dir: &Path) -> Option<u64> {
    None
}

/// Room reserved for a running write, given back when dropped.
pub(super) struct Reservation {
    bytes: u64,
    reserved: Arc<AtomicU64>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.reserved.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}
