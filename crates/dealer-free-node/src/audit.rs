//! A node's append-only, hash-chained log of what it stored and served.
//!
//! One line per event in `audit.log`: `seq prev event hash`, where `hash` is
//! SHA-256(`"dealer-free-sis/audit/v1"` ‖ seq (u64, big-endian) ‖ prev ‖ event) and `prev`
//! is the hash of the line before (zero for the first). The head — the number of entries
//! and the last hash — commits to the whole history: two nodes (or an auditor) that compare
//! heads over time notice any rewritten or removed entry. Opening the log checks the whole
//! chain; a tail a crash left unsynced (a last line cut short, lines with zeros or bytes
//! that are not text, with no entry after them) is cut off, kept in `<log>.torn` and named
//! by [`AuditLog::dropped_tail`] (the node logs its size and hash); any other damage
//! (a whole line of text that is no entry, an entry out of the chain) is an error and the
//! node does not start on it.
//!
//! What holds:
//!
//! * **A failed write leaves no trace.** A write that fails part way (a full disk) is cut
//!   back to the last whole line and the head stays, so the next append continues the chain
//!   and the log still opens. A failed fsync is different: what was written since the last
//!   good one may be lost, so the log takes no more entries (every append fails) until the
//!   node starts again and verifies it from disk.
//! * **Group commit.** An append that must be durable writes its line under the log's lock
//!   and fsyncs after releasing it; appends that wait for the fsync meanwhile are covered by
//!   one fsync. No lock the writers take is held across an fsync.
//! * **Only synced entries are reported.** [`AuditLog::synced_head`] is the head of what is
//!   on disk; [`AuditLog::sync`] makes every entry so (an fsync only if one is not).
//! * A new log's folder is fsynced, so the file itself survives a power cut.
//! * **Rotation with checkpoints.** When `audit.log` passes its size (`audit_segment_bytes`),
//!   it is closed as `audit.log.<first entry>` and a new one opens with a checkpoint entry
//!   naming it (see [`segment`]). A start reads and hashes only `audit.log`, so its time is
//!   bounded by that size, not by the node's age; [`verify_all`] checks every file. The new
//!   file is written whole and fsynced under `audit.log.next` before either rename, so a
//!   crash at any step leaves a log that opens (an unfinished rotation is finished or undone
//!   at start). A rotation that fails (a full disk) is tried again later and loses nothing.
//!   It is the one step that holds the writers' lock across an fsync, once per file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

pub mod segment;

pub use segment::{Verified, verify_all};

/// The size past which `audit.log` is closed and a new one started, unless set.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;

const DOMAIN: &[u8] = b"dealer-free-sis/audit/v1";

/// Errors of the audit log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The chain does not verify.
    #[error("{path}: line {line}: {reason}")]
    Broken {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// The head of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditHead {
    /// Entries so far.
    pub entries: u64,
    /// The hash of the last entry (zero when empty).
    pub head: [u8; 32],
}

struct Inner {
    file: File,
    head: AuditHead,
    /// Bytes of whole lines: a failed write is cut back to this.
    len: u64,
    /// A failed write could not be cut back: the next append cuts it first.
    torn: bool,
    /// The first entry of the open file (its closed name).
    first: u64,
    /// SHA-256 of the open file's whole lines (its checkpoint when it is closed).
    sha256: Sha256,
    /// The length past which the open file is closed (moved on after a rotation failed).
    rotate_at: u64,
}

/// An open audit log.
pub struct AuditLog {
    path: PathBuf,
    inner: Mutex<Inner>,
    /// The size past which the open file is closed.
    segment_bytes: u64,
    /// A handle of the open file for fsync, used without `inner`'s lock (replaced when the
    /// file is closed; its own lock is never held across I/O).
    sync_file: Mutex<Arc<File>>,
    /// The bytes and SHA-256 of a crash's tail dropped when the log was opened (kept in
    /// `<log>.torn`).
    dropped: Option<(u64, [u8; 32])>,
    /// The head of what is on disk; its lock serialises the fsyncs.
    synced: Mutex<AuditHead>,
    /// An fsync failed: what was written since the last good one may be lost, so the log
    /// takes no more entries until the node starts again and verifies it from disk.
    broken: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .field("head", &self.head())
            .finish()
    }
}

/// The hash of entry `seq` after `prev`.
#[must_use]
pub fn entry_hash(seq: u64, prev: &[u8; 32], event: &str) -> [u8; 32] {
    Sha256::new()
        .chain_update(DOMAIN)
        .chain_update(seq.to_be_bytes())
        .chain_update(prev)
        .chain_update(event.as_bytes())
        .finalize()
        .into()
}

/// The line of entry `seq` after `prev` (with its new line) and its hash.
fn entry_line(seq: u64, prev: &[u8; 32], event: &str) -> (String, [u8; 32]) {
    let hash = entry_hash(seq, prev, event);
    let line = format!("{seq} {} {event} {}\n", crate::hex(prev), crate::hex(&hash));
    (line, hash)
}

pub(crate) fn parse_hash(text: &str) -> Option<[u8; 32]> {
    crate::unhex(text).and_then(|b| b.try_into().ok())
}

/// A line's `(seq, prev, event, hash)`, or why it is no entry.
fn parse_line(
    body: &str,
    path: &Path,
    number: usize,
) -> Result<(u64, [u8; 32], String, [u8; 32]), AuditError> {
    let broken = |reason: &str| AuditError::Broken {
        path: path.to_owned(),
        line: number,
        reason: reason.to_owned(),
    };
    let mut parts = body.splitn(3, ' ');
    let seq: u64 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| broken("no sequence number"))?;
    let prev = parts
        .next()
        .and_then(parse_hash)
        .ok_or_else(|| broken("no previous hash"))?;
    let rest = parts.next().ok_or_else(|| broken("no event"))?;
    let (event, hash) = rest.rsplit_once(' ').ok_or_else(|| broken("no hash"))?;
    let hash = parse_hash(hash).ok_or_else(|| broken("bad hash"))?;
    Ok((seq, prev, event.to_owned(), hash))
}

impl AuditLog {
    /// Opens (or creates) `path`, verifying the chain, with files of
    /// [`DEFAULT_SEGMENT_BYTES`].
    ///
    /// # Errors
    /// [`AuditError::Broken`] for a chain that does not verify, [`AuditError::Io`].
    pub fn open(path: &Path) -> Result<AuditLog, AuditError> {
        Self::open_with(path, DEFAULT_SEGMENT_BYTES, |_| {})
    }

    /// [`AuditLog::open`], closing the open file past `segment_bytes` and showing `seen`
    /// every verified event of the open file in order.
    ///
    /// # Errors
    /// As [`AuditLog::open`].
    pub fn open_with(
        path: &Path,
        segment_bytes: u64,
        seen: impl FnMut(&str),
    ) -> Result<AuditLog, AuditError> {
        let io = |source| AuditError::Io {
            path: path.to_owned(),
            source,
        };
        finish_rotation(path).map_err(io)?;
        let read = if path.exists() {
            let read = segment::read(path, seen)?;
            match &read.checkpoint {
                Some(c) if read.first > 0 => segment::check_closed(path, c)?,
                // A log that starts at 0 must be the first file: with closed files beside it,
                // it would begin a second chain.
                _ => {
                    let closed = segment::closed_files(path).map_err(io)?;
                    if let Some((_, last)) = closed.last() {
                        return Err(AuditError::Broken {
                            path: path.to_owned(),
                            line: 1,
                            reason: format!(
                                "the log does not open with a checkpoint, though its closed \
                                 file {} is there",
                                last.display()
                            ),
                        });
                    }
                }
            }
            Some(read)
        } else {
            let closed = segment::closed_files(path).map_err(io)?;
            if let Some((_, last)) = closed.last() {
                return Err(AuditError::Broken {
                    path: path.to_owned(),
                    line: 0,
                    reason: format!(
                        "the log is missing, though its closed file {} is there",
                        last.display()
                    ),
                });
            }
            None
        };
        let (head, good_len, first, sha256) = match read {
            Some(r) => (r.head, r.good_len, r.first, r.sha256),
            None => (
                AuditHead {
                    entries: 0,
                    head: [0; 32],
                },
                0,
                0,
                Sha256::new(),
            ),
        };
        let created = !path.exists();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut dropped = None;
        if len > good_len {
            // Kept beside the log before it is cut, and named by the start's first entry.
            let tail = {
                use std::io::{Read, Seek, SeekFrom};
                let mut f = File::open(path).map_err(io)?;
                f.seek(SeekFrom::Start(good_len)).map_err(io)?;
                let mut tail = Vec::new();
                f.read_to_end(&mut tail).map_err(io)?;
                tail
            };
            let mut name = path.as_os_str().to_owned();
            name.push(".torn");
            crate::files::write_atomic(Path::new(&name), &tail).map_err(io)?;
            tracing::warn!(
                path = %path.display(),
                dropped = tail.len(),
                kept = %Path::new(&name).display(),
                "the audit log's unsynced tail from a crash is dropped"
            );
            dropped = Some((tail.len() as u64, Sha256::digest(&tail).into()));
        }
        if len != good_len {
            file.set_len(good_len).map_err(io)?;
            file.sync_data().map_err(io)?;
        }
        if created {
            file.sync_all().map_err(io)?;
            sync_parent(path).map_err(io)?;
        }
        let sync_file = Arc::new(file.try_clone().map_err(io)?);
        Ok(AuditLog {
            path: path.to_owned(),
            inner: Mutex::new(Inner {
                file,
                head,
                len: good_len,
                torn: false,
                first,
                sha256,
                rotate_at: segment_bytes,
            }),
            segment_bytes,
            sync_file: Mutex::new(sync_file),
            dropped,
            synced: Mutex::new(head),
            broken: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The current head.
    #[must_use]
    pub fn head(&self) -> AuditHead {
        self.inner.lock().map_or(
            AuditHead {
                entries: 0,
                head: [0; 32],
            },
            |i| i.head,
        )
    }

    /// The bytes and SHA-256 of a crash's tail dropped when the log was opened, if any (the
    /// bytes are kept in `<log>.torn`).
    #[must_use]
    pub fn dropped_tail(&self) -> Option<(u64, [u8; 32])> {
        self.dropped
    }

    /// The head of the entries known to be on disk.
    #[must_use]
    pub fn synced_head(&self) -> AuditHead {
        self.synced.lock().map_or(
            AuditHead {
                entries: 0,
                head: [0; 32],
            },
            |h| *h,
        )
    }

    /// Makes every entry appended so far durable; returns their head.
    ///
    /// # Errors
    /// [`AuditError::Io`].
    pub fn sync(&self) -> Result<AuditHead, AuditError> {
        self.sync_to(self.head().entries)
    }

    /// fsyncs unless entry `upto - 1` is on disk already (a group commit: whoever holds the
    /// lock syncs every entry written so far, the others find theirs covered).
    fn sync_to(&self, upto: u64) -> Result<AuditHead, AuditError> {
        let mut synced = self.synced.lock().map_err(|_| self.poisoned())?;
        self.check_whole()?;
        if synced.entries >= upto {
            return Ok(*synced);
        }
        // Every line written before this read is covered by the fsync below: it is in the
        // file fetched next, or in a closed one, fsynced when it was closed.
        let head = self.head();
        let file = Arc::clone(&*self.sync_file.lock().map_err(|_| self.poisoned())?);
        let done = file.sync_data();
        // Whatever failed meanwhile is seen before anything is reported durable.
        self.check_whole()?;
        if let Err(source) = done {
            // The kernel reports a lost write-back once; a later fsync would "succeed" over
            // it. The log takes nothing more until a restart verifies it from disk.
            self.broken.store(true, std::sync::atomic::Ordering::SeqCst);
            return Err(AuditError::Io {
                path: self.path.clone(),
                source,
            });
        }
        *synced = head;
        Ok(head)
    }

    /// Refuses work on a log whose fsync failed.
    fn check_whole(&self) -> Result<(), AuditError> {
        if self.broken.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(AuditError::Io {
                path: self.path.clone(),
                source: std::io::Error::other(
                    "an fsync of the audit log failed, so entries since the last one may be \
                     lost: restart the node to verify the log from disk",
                ),
            });
        }
        Ok(())
    }

    fn poisoned(&self) -> AuditError {
        AuditError::Io {
            path: self.path.clone(),
            source: std::io::Error::other("the audit log lock is poisoned"),
        }
    }

    /// Appends `event` (one line: new lines and carriage returns become spaces); with
    /// `sync`, it is on disk when this returns.
    ///
    /// # Errors
    /// [`AuditError::Io`]; a line written in part is cut back and the head is unchanged then.
    pub fn append(&self, event: &str, sync: bool) -> Result<AuditHead, AuditError> {
        let event: String = event
            .chars()
            .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
            .collect();
        self.check_whole()?;
        let (head, full) = {
            let mut inner = self.inner.lock().map_err(|_| self.poisoned())?;
            let head = self.write_line(&mut inner, &event)?;
            (head, inner.len >= inner.rotate_at)
        };
        if sync {
            self.sync_to(head.entries)?;
        }
        if full {
            self.rotate();
        }
        Ok(head)
    }

    /// Writes the line of `event` to the open file; the new head.
    fn write_line(&self, inner: &mut Inner, event: &str) -> Result<AuditHead, AuditError> {
        let io = |source| AuditError::Io {
            path: self.path.clone(),
            source,
        };
        let seq = inner.head.entries;
        let (line, hash) = entry_line(seq, &inner.head.head, event);
        if inner.torn {
            let len = inner.len;
            inner.file.set_len(len).map_err(io)?;
            inner.torn = false;
        }
        if let Err(e) = inner.file.write_all(line.as_bytes()) {
            // Whatever part of the line reached the file goes: the chain stays whole.
            let len = inner.len;
            inner.torn = inner.file.set_len(len).is_err();
            return Err(io(e));
        }
        inner.len += line.len() as u64;
        inner.sha256.update(line.as_bytes());
        inner.head = AuditHead {
            entries: seq + 1,
            head: hash,
        };
        Ok(inner.head)
    }

    /// Closes the open file if it is past its size and starts the next with a checkpoint. A
    /// failure before the new file takes the log's name is logged and tried again after
    /// another sixteenth of a file; a failure after it latches the log like a failed fsync.
    fn rotate(&self) {
        // The fsyncs' lock first (the order `sync_to` takes them in): no other fsync runs
        // while the file is closed, so a failure reported to this one is seen by none other.
        let Ok(_fsyncs) = self.synced.lock() else {
            return;
        };
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner.len < inner.rotate_at || self.check_whole().is_err() {
            return;
        }
        match self.rotate_locked(&mut inner) {
            Ok(()) => {}
            Err(Rotation::NotStarted(e)) => {
                inner.rotate_at = inner.len.saturating_add((self.segment_bytes / 16).max(1));
                tracing::warn!(error = %e, "the audit log could not be closed; it is tried again later");
            }
            Err(Rotation::Broken(e)) => {
                self.broken.store(true, std::sync::atomic::Ordering::SeqCst);
                tracing::error!(error = %e, "closing the audit log failed half way; restart the node to finish it");
            }
        }
    }

    fn rotate_locked(&self, inner: &mut Inner) -> Result<(), Rotation> {
        let not_started = |e: std::io::Error| Rotation::NotStarted(e);
        // Everything written so far is on disk before the file is closed.
        inner
            .file
            .sync_data()
            .map_err(|e| Rotation::Broken(std::io::Error::other(format!("fsync: {e}"))))?;
        let closed = segment::closed_name(&self.path, inner.first);
        let checkpoint = segment::Checkpoint {
            closed: closed.clone(),
            entries: inner.head.entries - inner.first,
            bytes: inner.len,
            sha256: inner.sha256.clone().finalize().into(),
        };
        let event = checkpoint.event();
        let seq = inner.head.entries;
        let (line, hash) = entry_line(seq, &inner.head.head, &event);
        // The new file, whole and on disk under its temporary name first.
        let next = segment::next_path(&self.path);
        let written = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&next)?;
            f.write_all(line.as_bytes())?;
            f.sync_all()?;
            sync_parent(&next)?;
            let target = self.path.with_file_name(&closed);
            if target.exists() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!("{} is there already", target.display()),
                ));
            }
            std::fs::rename(&self.path, target)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&next);
            return Err(not_started(e));
        }
        // From here the log's name is free: a crash now is finished at start.
        let opened = (|| {
            std::fs::rename(&next, &self.path)?;
            sync_parent(&self.path)?;
            OpenOptions::new().append(true).open(&self.path)
        })()
        .map_err(Rotation::Broken)?;
        let sync_file = Arc::new(opened.try_clone().map_err(Rotation::Broken)?);
        inner.file = opened;
        inner.len = line.len() as u64;
        inner.torn = false;
        inner.first = seq;
        inner.sha256 = Sha256::new();
        inner.sha256.update(line.as_bytes());
        inner.rotate_at = self.segment_bytes;
        inner.head = AuditHead {
            entries: seq + 1,
            head: hash,
        };
        if let Ok(mut f) = self.sync_file.lock() {
            *f = sync_file;
        }
        tracing::info!(closed = %closed, entries = checkpoint.entries, "the audit log was closed and a new file started");
        Ok(())
    }
}

/// How closing the open file failed.
enum Rotation {
    /// Before the log's name was freed: the open file goes on.
    NotStarted(std::io::Error),
    /// After: the log takes nothing more until a restart finishes the step.
    Broken(std::io::Error),
}

/// Finishes or undoes a rotation a crash interrupted: a new file under `<log>.next` is the
/// log if the log's own name is free (the old file was closed), and is dropped otherwise
/// (the old file is still the log).
fn finish_rotation(path: &Path) -> std::io::Result<()> {
    let next = segment::next_path(path);
    if !next.exists() {
        return Ok(());
    }
    if path.exists() {
        std::fs::remove_file(&next)?;
    } else {
        std::fs::rename(&next, path)?;
    }
    sync_parent(path)
}

/// fsyncs the folder of `path` (a no-op where folders cannot be opened).
fn sync_parent(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// Appends `count` events of about 100 bytes.
    fn fill(log: &AuditLog, from: usize, count: usize) -> Result<AuditHead, AuditError> {
        let mut head = log.head();
        for i in from..from + count {
            head = log.append(
                &format!("get image={i:016x} {}", "x".repeat(60)),
                i % 7 == 0,
            )?;
        }
        Ok(head)
    }

    #[test]
    fn a_full_file_is_closed_with_a_checkpoint_and_a_start_reads_only_the_open_one() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("audit.log");
        let log = AuditLog::open_with(&path, 4096, |_| {})?;
        let head = fill(&log, 0, 200)?;
        assert_eq!(log.head(), head);
        drop(log);
        let closed = segment::closed_files(&path)?;
        assert!(closed.len() >= 4, "{} closed files", closed.len());
        assert_eq!(closed[0].0, 0);
        assert!(std::fs::metadata(&path)?.len() < 4096 + 200);
        // A start sees only the open file's events, and the head is the whole log's.
        let mut seen = 0;
        let log = AuditLog::open_with(&path, 4096, |_| seen += 1)?;
        assert_eq!(log.head(), head);
        assert!(seen < 60, "a start read {seen} events");
        let head = fill(&log, 200, 10)?;
        drop(log);
        let all = verify_all(&path)?;
        assert_eq!(all.head, head);
        assert_eq!(all.first, 0);
        assert_eq!(all.files.len(), segment::closed_files(&path)?.len() + 1);
        // The oldest files may be moved away; a file from the middle may not.
        std::fs::remove_file(&closed[0].1)?;
        assert_eq!(verify_all(&path)?.head, head);
        std::fs::remove_file(&closed[2].1)?;
        assert!(matches!(verify_all(&path), Err(AuditError::Broken { .. })));
        Ok(())
    }

    #[test]
    fn an_edited_closed_file_fails_the_full_check_and_a_cut_one_fails_the_start() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("audit.log");
        let log = AuditLog::open_with(&path, 4096, |_| {})?;
        fill(&log, 0, 60)?;
        drop(log);
        let closed = segment::closed_files(&path)?;
        let last = &closed.last().ok_or("no closed file")?.1;
        // The same size, one entry changed: a start checks sizes only; the full check sees it.
        let text = std::fs::read_to_string(last)?;
        let edited = text.replacen("get image=", "put image=", 1);
        std::fs::write(last, &edited)?;
        assert!(AuditLog::open_with(&path, 4096, |_| {}).is_ok());
        assert!(matches!(verify_all(&path), Err(AuditError::Broken { .. })));
        // Cut short: the start refuses.
        std::fs::write(last, &text.as_bytes()[..text.len() - 10])?;
        assert!(matches!(
            AuditLog::open_with(&path, 4096, |_| {}),
            Err(AuditError::Broken { .. })
        ));
        Ok(())
    }

    #[test]
    fn a_crash_at_any_step_of_closing_a_file_leaves_a_log_that_opens() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("audit.log");
        let log = AuditLog::open_with(&path, 1 << 20, |_| {})?;
        let head = fill(&log, 0, 30)?;
        drop(log);
        // Before the renames: a whole new file under `.next` beside the old log is dropped.
        std::fs::write(segment::next_path(&path), b"0 junk\n")?;
        let log = AuditLog::open_with(&path, 1 << 20, |_| {})?;
        assert_eq!(log.head(), head);
        assert!(!segment::next_path(&path).exists());
        drop(log);
        // Between the renames: the old log closed, the new one (its checkpoint alone) still
        // under `.next`.
        let log = AuditLog::open_with(&path, 4096, |_| {})?;
        let mut head = log.head();
        let mut i = 30;
        while segment::closed_files(&path)?.is_empty() {
            head = fill(&log, i, 1)?;
            i += 1;
        }
        head = AuditHead {
            entries: head.entries + 1,
            ..log.head()
        };
        assert_eq!(log.head(), head, "the checkpoint is the last entry");
        drop(log);
        assert_eq!(std::fs::read_to_string(&path)?.lines().count(), 1);
        std::fs::rename(&path, segment::next_path(&path))?;
        let log = AuditLog::open_with(&path, 4096, |_| {})?;
        assert_eq!(log.head(), head);
        drop(log);
        assert_eq!(verify_all(&path)?.head, head);
        // An empty log beside closed files (a chain begun anew) is refused.
        let kept = std::fs::read(&path)?;
        std::fs::write(&path, b"")?;
        assert!(matches!(
            AuditLog::open_with(&path, 4096, |_| {}),
            Err(AuditError::Broken { .. })
        ));
        std::fs::write(&path, kept)?;
        // The log itself gone while closed files are there: refused, never started afresh.
        std::fs::remove_file(&path)?;
        assert!(matches!(
            AuditLog::open_with(&path, 4096, |_| {}),
            Err(AuditError::Broken { .. })
        ));
        Ok(())
    }

    #[test]
    fn a_file_that_cannot_be_closed_stays_open_and_is_closed_later() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("audit.log");
        let log = AuditLog::open_with(&path, 4096, |_| {})?;
        // The new file cannot be written (its temporary name is taken by a folder).
        std::fs::create_dir(segment::next_path(&path))?;
        let head = fill(&log, 0, 60)?;
        assert!(segment::closed_files(&path)?.is_empty());
        std::fs::remove_dir(segment::next_path(&path))?;
        let head2 = fill(&log, 60, 10)?;
        assert!(!segment::closed_files(&path)?.is_empty());
        assert!(head2.entries > head.entries);
        drop(log);
        assert_eq!(verify_all(&path)?.head, head2);
        Ok(())
    }

    #[test]
    fn the_chain_survives_reopening_and_detects_edits() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path)?;
        log.append("store 1", true)?;
        let head = log.append("get 1", false)?;
        drop(log);
        let log = AuditLog::open(&path)?;
        assert_eq!(log.head(), head);
        drop(log);
        // A torn line (no newline) is dropped.
        let mut f = OpenOptions::new().append(true).open(&path)?;
        f.write_all(b"2 abc")?;
        drop(f);
        assert_eq!(AuditLog::open(&path)?.head(), head);
        // Nor is an unsynced tail of zeros and bytes that are not text; it is kept aside.
        let mut f = OpenOptions::new().append(true).open(&path)?;
        f.write_all(&[0u8; 4096])?;
        f.write_all(&[0xFF, 0xFE, b'\n', 0, 0])?;
        drop(f);
        let log = AuditLog::open(&path)?;
        assert_eq!(log.head(), head);
        assert_eq!(log.dropped_tail().map(|d| d.0), Some(4096 + 5));
        assert_eq!(
            std::fs::read(dir.path().join("audit.log.torn"))?.len(),
            4096 + 5
        );
        drop(log);
        // An edited entry is not.
        let text = std::fs::read_to_string(&path)?.replace("store 1", "store 2");
        std::fs::write(&path, text)?;
        assert!(matches!(
            AuditLog::open(&path),
            Err(AuditError::Broken { line: 1, .. })
        ));
        Ok(())
    }
}
