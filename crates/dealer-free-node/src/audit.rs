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

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

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
}

/// An open audit log.
pub struct AuditLog {
    path: PathBuf,
    inner: Mutex<Inner>,
    /// A handle of the same file for fsync, used without `inner`'s lock.
    sync_file: File,
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

fn parse_hash(text: &str) -> Option<[u8; 32]> {
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
    /// Opens (or creates) `path`, verifying the chain.
    ///
    /// # Errors
    /// [`AuditError::Broken`] for a chain that does not verify, [`AuditError::Io`].
    pub fn open(path: &Path) -> Result<AuditLog, AuditError> {
        Self::open_with(path, |_| {})
    }

    /// [`AuditLog::open`], showing `seen` every verified event in order.
    ///
    /// # Errors
    /// As [`AuditLog::open`].
    pub fn open_with(path: &Path, mut seen: impl FnMut(&str)) -> Result<AuditLog, AuditError> {
        let io = |source| AuditError::Io {
            path: path.to_owned(),
            source,
        };
        let mut head = AuditHead {
            entries: 0,
            head: [0; 32],
        };
        let mut good_len: u64 = 0;
        let opened = match File::open(path) {
            Ok(f) => Some(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(e)),
        };
        if let Some(f) = opened {
            let mut reader = BufReader::new(f);
            let mut raw = Vec::new();
            let mut number = 0;
            // The first line that did not verify, and why; the log is broken only if a line
            // that parses follows it (a crash can leave an unsynced tail of zeros or of bytes
            // that are not text, which is dropped like a torn last line).
            let mut bad: Option<AuditError> = None;
            loop {
                raw.clear();
                let read = reader.read_until(b'\n', &mut raw).map_err(io)?;
                if read == 0 {
                    break;
                }
                number += 1;
                // What a crash can leave unsynced: a last line without its newline, zeros,
                // bytes that are not text. A whole line of text that does not parse is damage.
                let crash_like = raw.last() != Some(&b'\n')
                    || raw.contains(&0)
                    || std::str::from_utf8(&raw).is_err();
                let parsed = std::str::from_utf8(&raw)
                    .ok()
                    .filter(|_| !crash_like)
                    .and_then(|l| l.strip_suffix('\n'))
                    .map(|body| parse_line(body, path, number));
                if let Some(first) = bad.take() {
                    if matches!(parsed, Some(Ok(_))) {
                        return Err(first);
                    }
                    bad = Some(first);
                    continue;
                }
                let (seq, prev, event, hash) = match parsed {
                    // A torn last line (no newline), or not text: a crash's unsynced tail if
                    // nothing that parses follows.
                    None => {
                        bad = Some(AuditError::Broken {
                            path: path.to_owned(),
                            line: number,
                            reason: "not a whole line of text".into(),
                        });
                        continue;
                    }
                    Some(Err(e)) => return Err(e),
                    Some(Ok(l)) => l,
                };
                let broken = |reason: &str| AuditError::Broken {
                    path: path.to_owned(),
                    line: number,
                    reason: reason.to_owned(),
                };
                if seq != head.entries {
                    return Err(broken(&format!(
                        "sequence {seq}, expected {}",
                        head.entries
                    )));
                }
                if prev != head.head {
                    return Err(broken("previous hash does not match the line before"));
                }
                if entry_hash(seq, &prev, &event) != hash {
                    return Err(broken("hash does not match the entry"));
                }
                head = AuditHead {
                    entries: seq + 1,
                    head: hash,
                };
                seen(&event);
                good_len += read as u64;
            }
        }
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
        let sync_file = file.try_clone().map_err(io)?;
        Ok(AuditLog {
            path: path.to_owned(),
            inner: Mutex::new(Inner {
                file,
                head,
                len: good_len,
                torn: false,
            }),
            sync_file,
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
        // Every line written before this read is covered by the fsync below.
        let head = self.head();
        if let Err(source) = self.sync_file.sync_data() {
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
        let io = |source| AuditError::Io {
            path: self.path.clone(),
            source,
        };
        self.check_whole()?;
        let head = {
            let mut inner = self.inner.lock().map_err(|_| self.poisoned())?;
            let seq = inner.head.entries;
            let prev = inner.head.head;
            let hash = entry_hash(seq, &prev, &event);
            let line = format!(
                "{seq} {} {event} {}\n",
                crate::hex(&prev),
                crate::hex(&hash)
            );
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
            inner.head = AuditHead {
                entries: seq + 1,
                head: hash,
            };
            inner.head
        };
        if sync {
            self.sync_to(head.entries)?;
        }
        Ok(head)
    }
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
