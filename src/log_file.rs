//! A node's log file, rotated by size: a node that runs for months under hostile load keeps
//! at most [`MAX_BYTES`] in its log and as much again in the one rotated before it
//! (`node.log.1`); older lines are dropped. Lines are written whole, without colour codes.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Bytes of a log file before it is rotated.
pub(crate) const MAX_BYTES: u64 = 16 << 20;

struct Inner {
    file: File,
    len: u64,
}

/// A log file that moves itself to `<name>.1` once it passes its size.
#[derive(Clone)]
pub(crate) struct RotatingLog {
    path: PathBuf,
    max: u64,
    inner: Arc<Mutex<Inner>>,
}

impl RotatingLog {
    /// Opens (appends to) `path`, rotated at `max` bytes.
    pub(crate) fn open(path: &Path, max: u64) -> io::Result<RotatingLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let len = file.metadata()?.len();
        Ok(RotatingLog {
            path: path.to_owned(),
            max: max.max(1),
            inner: Arc::new(Mutex::new(Inner { file, len })),
        })
    }

    fn rotated(&self) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".1");
        PathBuf::from(name)
    }
}

impl Write for RotatingLog {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| io::Error::other("the log's lock is poisoned"))?;
        if inner.len > 0 && inner.len.saturating_add(buf.len() as u64) > self.max {
            std::fs::rename(&self.path, self.rotated())?;
            inner.file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            inner.len = 0;
        }
        inner.file.write_all(buf)?;
        inner.len = inner.len.saturating_add(buf.len() as u64);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner
            .lock()
            .map_err(|_| io::Error::other("the log's lock is poisoned"))?
            .file
            .flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RotatingLog {
    type Writer = RotatingLog;

    fn make_writer(&'a self) -> RotatingLog {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_and_its_one_rotation_stay_within_the_size() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("node.log");
        let mut log = RotatingLog::open(&path, 1_000)?;
        for i in 0..1_000 {
            log.write_all(format!("line {i:04} of the log\n").as_bytes())?;
        }
        let now = std::fs::metadata(&path)?.len();
        let before = std::fs::metadata(dir.path().join("node.log.1"))?.len();
        assert!(now <= 1_000 && before <= 1_000, "{now} {before}");
        let text = std::fs::read_to_string(&path)?;
        assert!(text.ends_with("line 0999 of the log\n"));
        assert!(
            text.lines().all(|l| l.starts_with("line ")),
            "whole lines only"
        );
        assert_eq!(std::fs::read_dir(dir.path())?.count(), 2);
        Ok(())
    }
}
