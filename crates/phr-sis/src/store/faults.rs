//! A store file whose writes fail as on a full disk while a marker file exists (feature
//! `testing`): the full-disk tests of a node fill and free its "disk" from outside the
//! process, and redb meets the same `StorageFull` errors a real full disk gives it.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use redb::StorageBackend;
use redb::backends::FileBackend;

/// redb's file backend, failing every write, growth and sync while `marker` exists.
#[derive(Debug)]
pub(super) struct FullWhenMarked {
    file: FileBackend,
    marker: PathBuf,
}

impl FullWhenMarked {
    pub(super) fn new(file: File, marker: &Path) -> io::Result<FullWhenMarked> {
        Ok(FullWhenMarked {
            file: FileBackend::new(file).map_err(|e| io::Error::other(e.to_string()))?,
            marker: marker.to_owned(),
        })
    }

    fn full(&self) -> io::Result<()> {
        if self.marker.exists() {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "no space left on device (marked full)",
            ));
        }
        Ok(())
    }
}

impl StorageBackend for FullWhenMarked {
    fn len(&self) -> Result<u64, io::Error> {
        self.file.len()
    }

    fn read(&self, offset: u64, len: usize) -> Result<Vec<u8>, io::Error> {
        self.file.read(offset, len)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        if len > self.file.len()? {
            self.full()?;
        }
        self.file.set_len(len)
    }

    fn sync_data(&self, eventual: bool) -> Result<(), io::Error> {
        self.full()?;
        self.file.sync_data(eventual)
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        self.full()?;
        self.file.write(offset, data)
    }
}
