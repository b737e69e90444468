//! Ids a writer stored but has not yet recorded elsewhere, kept in the store's own
//! `unsettled` table and written in the same transaction as the records: a crash between
//! the store's commit and the writer's own record (a node's audit line) leaves the ids here,
//! so the writer finds exactly the records it may not have recorded by reading this small
//! table, not by comparing the whole store with its whole log.
//!
//! A writer names the ids it has recorded as settled in its next
//! [`ShareStore::put_images_charged`] (no commit of its own) or with
//! [`ShareStore::settle`]; the table so holds at most the last few batches.

use redb::{ReadableTable, TableDefinition};

use super::{ShareStore, StoreError};
use crate::ImageId;

/// The table of unsettled ids.
pub(super) const UNSETTLED: TableDefinition<'static, u64, ()> = TableDefinition::new("unsettled");

/// The most ids [`ShareStore::unsettled`] returns.
pub const MAX_UNSETTLED: usize = 1 << 20;

impl ShareStore {
    /// The ids stored by [`ShareStore::put_images_charged`] and not settled since, in
    /// ascending order (at most [`MAX_UNSETTLED`]).
    ///
    /// # Errors
    /// redb's errors if the read fails.
    pub fn unsettled(&self) -> Result<Vec<ImageId>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = match txn.open_table(UNSETTLED) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut ids = Vec::new();
        for entry in table.iter()?.take(MAX_UNSETTLED) {
            ids.push(ImageId(entry?.0.value()));
        }
        Ok(ids)
    }

    /// Settles `ids` (durable when this returns; ids not unsettled are ignored).
    ///
    /// # Errors
    /// redb's errors if the write fails (nothing is changed then).
    pub fn settle(&self, ids: &[ImageId]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let txn = self.begin_write()?;
        settle_in(&txn, ids)?;
        txn.commit()?;
        Ok(())
    }
}

/// Removes `ids` from the table within `txn`.
pub(super) fn settle_in(txn: &redb::WriteTransaction, ids: &[ImageId]) -> Result<(), StoreError> {
    let mut table = txn.open_table(UNSETTLED)?;
    for id in ids {
        table.remove(id.0)?;
    }
    Ok(())
}

/// Adds `ids` to the table within `txn`.
pub(super) fn note_in(txn: &redb::WriteTransaction, ids: &[ImageId]) -> Result<(), StoreError> {
    let mut table = txn.open_table(UNSETTLED)?;
    for id in ids {
        table.insert(id.0, ())?;
    }
    Ok(())
}
