//! One file of the audit log: reading and verifying it, the checkpoint line that opens every
//! file after the first, and the names of closed files.
//!
//! A log starts in `audit.log`. When that file passes its size, it is closed: renamed to
//! `audit.log.<first entry, 20 digits>`, and the new `audit.log` opens with a *checkpoint*
//! entry (chained like any other) naming the closed file, its entries, bytes and SHA-256.
//! Opening the log reads only `audit.log`: the checkpoint gives the chain's state before it,
//! and the closed file it names is checked by size. [`verify_all`] reads every file.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{AuditError, AuditHead, entry_hash, parse_hash};

/// The event a checkpoint entry starts with.
const CHECKPOINT: &str = "checkpoint";

/// What a checkpoint entry says of the file it closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Checkpoint {
    /// The closed file's name (in the log's folder).
    pub closed: String,
    /// Its entries.
    pub entries: u64,
    /// Its bytes.
    pub bytes: u64,
    /// Its SHA-256.
    pub sha256: [u8; 32],
}

impl Checkpoint {
    /// The event text.
    pub(super) fn event(&self) -> String {
        format!(
            "{CHECKPOINT} closed={} entries={} bytes={} sha256={}",
            self.closed,
            self.entries,
            self.bytes,
            crate::hex(&self.sha256)
        )
    }

    /// Parses a checkpoint event.
    fn parse(event: &str) -> Option<Checkpoint> {
        let mut words = event.split(' ');
        if words.next() != Some(CHECKPOINT) {
            return None;
        }
        let mut field = |name: &str| {
            words
                .next()
                .and_then(|w| w.strip_prefix(name))
                .and_then(|w| w.strip_prefix('='))
        };
        let closed = field("closed")?.to_owned();
        let entries = field("entries")?.parse().ok()?;
        let bytes = field("bytes")?.parse().ok()?;
        let sha256 = parse_hash(field("sha256")?)?;
        // A name, never a path: the closed file is in the log's own folder.
        if closed.is_empty() || closed.contains(['/', '\\']) || closed.starts_with('.') {
            return None;
        }
        Some(Checkpoint {
            closed,
            entries,
            bytes,
            sha256,
        })
    }
}

/// The name a file of the log gets when it is closed, by its first entry.
pub(super) fn closed_name(log: &Path, first: u64) -> String {
    format!("{}.{first:020}", file_name(log))
}

/// The name of the file a new `audit.log` is written under before it takes that name.
pub(super) fn next_path(log: &Path) -> PathBuf {
    log.with_file_name(format!("{}.next", file_name(log)))
}

fn file_name(log: &Path) -> String {
    log.file_name()
        .map_or_else(|| "audit.log".into(), |n| n.to_string_lossy().into_owned())
}

/// The closed files of the log at `log`, by first entry.
pub(super) fn closed_files(log: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let dir = log
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let prefix = format!("{}.", file_name(log));
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        if rest.len() == 20
            && rest.bytes().all(|b| b.is_ascii_digit())
            && let Ok(first) = rest.parse()
        {
            found.push((first, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// What reading one file of the log found.
#[derive(Debug)]
pub(super) struct Read {
    /// The sequence number of its first entry (0 for an empty file).
    pub first: u64,
    /// The chain's state before its first entry.
    pub before: AuditHead,
    /// The chain's state after its last verified entry.
    pub head: AuditHead,
    /// Bytes of its verified lines.
    pub good_len: u64,
    /// SHA-256 of those bytes, still open for more.
    pub sha256: Sha256,
    /// Its checkpoint, if it opens with one.
    pub checkpoint: Option<Checkpoint>,
    /// The first line past the verified ones that did not verify, if any (a crash's
    /// unsynced tail when nothing that parses follows it).
    pub tail_error: Option<AuditError>,
}

/// Reads `path`, verifying its chain. The first entry starts the chain: at 0 from zero, or
/// later with a checkpoint, which gives the state before it. Lines after the last
/// that verifies are accepted only as a crash's tail: cut short, with zeros or with bytes
/// that are not text, and no line that parses after them. `seen` gets each verified event.
pub(super) fn read(path: &Path, mut seen: impl FnMut(&str)) -> Result<Read, AuditError> {
    let io = |source| AuditError::Io {
        path: path.to_owned(),
        source,
    };
    let zero = AuditHead {
        entries: 0,
        head: [0; 32],
    };
    let mut out = Read {
        first: 0,
        before: zero,
        head: zero,
        good_len: 0,
        sha256: Sha256::new(),
        checkpoint: None,
        tail_error: None,
    };
    let mut reader = BufReader::new(File::open(path).map_err(io)?);
    let mut raw = Vec::new();
    let mut number = 0;
    loop {
        raw.clear();
        let read = reader.read_until(b'\n', &mut raw).map_err(io)?;
        if read == 0 {
            break;
        }
        number += 1;
        let broken = |reason: &str| AuditError::Broken {
            path: path.to_owned(),
            line: number,
            reason: reason.to_owned(),
        };
        // What a crash can leave unsynced: a last line without its newline, zeros, bytes
        // that are not text. A whole line of text that does not parse is damage.
        let crash_like =
            raw.last() != Some(&b'\n') || raw.contains(&0) || std::str::from_utf8(&raw).is_err();
        let parsed = std::str::from_utf8(&raw)
            .ok()
            .filter(|_| !crash_like)
            .and_then(|l| l.strip_suffix('\n'))
            .map(|body| super::parse_line(body, path, number));
        if let Some(first) = out.tail_error.take() {
            if matches!(parsed, Some(Ok(_))) {
                return Err(first);
            }
            out.tail_error = Some(first);
            continue;
        }
        let (seq, prev, event, hash) = match parsed {
            None => {
                out.tail_error = Some(broken("not a whole line of text"));
                continue;
            }
            Some(Err(e)) => return Err(e),
            Some(Ok(l)) => l,
        };
        if number == 1 && seq != 0 {
            // A later file: it opens with a checkpoint, which gives the state before it.
            out.checkpoint = Some(Checkpoint::parse(&event).ok_or_else(|| {
                broken("a file that starts after entry 0 must open with a checkpoint")
            })?);
            out.before = AuditHead {
                entries: seq,
                head: prev,
            };
            out.head = out.before;
        } else if number == 1 {
            out.checkpoint = Checkpoint::parse(&event);
        }
        if number == 1 {
            out.first = seq;
        }
        if seq != out.head.entries {
            return Err(broken(&format!(
                "sequence {seq}, expected {}",
                out.head.entries
            )));
        }
        if prev != out.head.head {
            return Err(broken("previous hash does not match the line before"));
        }
        if entry_hash(seq, &prev, &event) != hash {
            return Err(broken("hash does not match the entry"));
        }
        out.head = AuditHead {
            entries: seq + 1,
            head: hash,
        };
        seen(&event);
        out.sha256.update(&raw);
        out.good_len += read as u64;
    }
    if number == 0 {
        out.first = out.head.entries;
    }
    Ok(out)
}

/// Checks that the file a checkpoint names is beside `log` with the bytes it says (its hash
/// is checked by [`verify_all`]).
pub(super) fn check_closed(log: &Path, checkpoint: &Checkpoint) -> Result<(), AuditError> {
    let closed = log.with_file_name(&checkpoint.closed);
    let bytes = std::fs::metadata(&closed)
        .map_err(|source| AuditError::Io {
            path: closed.clone(),
            source,
        })?
        .len();
    if bytes != checkpoint.bytes {
        return Err(AuditError::Broken {
            path: closed,
            line: 0,
            reason: format!(
                "the checkpoint in {} says {} bytes, the file has {bytes}",
                log.display(),
                checkpoint.bytes
            ),
        });
    }
    Ok(())
}

/// What [`verify_all`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The files read, oldest first (closed files, then the open one).
    pub files: Vec<PathBuf>,
    /// The first entry of the oldest file kept (0 unless older files were moved away).
    pub first: u64,
    /// The head of the whole log.
    pub head: AuditHead,
}

/// Verifies the whole log at `log` (`audit.log` and every closed file beside it): each file's
/// chain, that each continues the one before, and that each checkpoint names the file before
/// it with its entries, bytes and SHA-256. Closed files may have been moved away from the
/// start of the log, never from its middle.
///
/// # Errors
/// [`AuditError::Broken`] for the first thing that does not verify (closed files must be
/// whole: no crash tail), [`AuditError::Io`].
pub fn verify_all(log: &Path) -> Result<Verified, AuditError> {
    let list = || {
        closed_files(log).map_err(|source| AuditError::Io {
            path: log.to_owned(),
            source,
        })
    };
    // A running node may close a file meanwhile: then the files are read again.
    let mut tries = 0;
    loop {
        let closed = list()?;
        let verified = verify_files(log, &closed);
        tries += 1;
        if tries >= 3 || list()? == closed {
            return verified;
        }
    }
}

/// [`verify_all`] over the closed files `closed`.
fn verify_files(log: &Path, closed: &[(u64, PathBuf)]) -> Result<Verified, AuditError> {
    let mut files = Vec::new();
    let mut state: Option<(AuditHead, PathBuf, u64, [u8; 32])> = None;
    let mut first = None;
    for path in closed
        .iter()
        .map(|(_, p)| p)
        .chain(std::iter::once(&log.to_path_buf()))
    {
        let is_open = path == log;
        let read = read(path, |_| {})?;
        if let Some(e) = read.tail_error
            && !is_open
        {
            return Err(e);
        }
        first.get_or_insert(read.first);
        if let Some((head, before, entries, sha256)) = &state {
            let broken = |reason: String| AuditError::Broken {
                path: path.clone(),
                line: 1,
                reason,
            };
            if read.before != *head {
                return Err(broken(format!(
                    "does not continue {} (its chain ends at entry {})",
                    before.display(),
                    head.entries
                )));
            }
            let name = before
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let expected = Checkpoint {
                closed: name,
                entries: *entries,
                bytes: std::fs::metadata(before)
                    .map_err(|source| AuditError::Io {
                        path: before.clone(),
                        source,
                    })?
                    .len(),
                sha256: *sha256,
            };
            if read.checkpoint.as_ref() != Some(&expected) {
                return Err(broken(format!(
                    "its checkpoint does not describe {}",
                    before.display()
                )));
            }
        }
        let sha256: [u8; 32] = read.sha256.finalize().into();
        state = Some((
            read.head,
            path.clone(),
            read.head.entries - read.first,
            sha256,
        ));
        files.push(path.clone());
    }
    let head = state.map_or(
        AuditHead {
            entries: 0,
            head: [0; 32],
        },
        |s| s.0,
    );
    Ok(Verified {
        files,
        first: first.unwrap_or(0),
        head,
    })
}
