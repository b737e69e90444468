//! Deleted images: a delete removes an image's three parts and leaves a tombstone (the id)
//! in the store's own `tombstones` table, in one transaction. An id with a tombstone is never
//! stored again ([`StoreError::Deleted`]): a retried or replayed store of a deleted image,
//! or a repair built from a node that missed the delete, cannot bring it back.
//!
//! Tombstones are kept for good (8 bytes of key each); ids are 64-bit random, so a new image
//! never needs a deleted one's id.

use std::ops::Bound;

use redb::{ReadableTable, TableDefinition};

use super::{LIST_PREALLOCATE, PARTS, Page, ShareStore, StoreError, usage};
use crate::ImageId;

/// The table of deleted ids.
pub(super) const TOMBSTONES: TableDefinition<'static, u64, ()> = TableDefinition::new("tombstones");

/// What [`ShareStore::delete_images`] did with each id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    /// The image was stored: its parts are removed and its tombstone written.
    Removed,
    /// It was not stored (and had no tombstone): only the tombstone is written, so it can
    /// never be stored here later.
    Absent,
    /// It had a tombstone already: nothing changed.
    Already,
}

impl ShareStore {
    /// Deletes `ids`: every stored part removed and a tombstone written for each, all in one
    /// transaction, durable when this returns. The bytes removed are given back to
    /// `account` (saturating at zero), if given. Returns what happened to each id, in order.
    ///
    /// # Errors
    /// redb's errors if the write fails, in which case nothing is deleted.
    pub fn delete_images(
        &self,
        ids: &[ImageId],
        account: Option<&str>,
    ) -> Result<Vec<(ImageId, Deleted)>, StoreError> {
        let txn = self.begin_write()?;
        let mut outcome = Vec::with_capacity(ids.len());
        let mut freed: u64 = 0;
        {
            let mut tombs = txn.open_table(TOMBSTONES)?;
            for id in ids {
                if tombs.get(id.0)?.is_some() {
                    outcome.push((*id, Deleted::Already));
                    continue;
                }
                let mut existed = false;
                for part in PARTS {
                    let mut table = txn.open_table(part.table())?;
                    if let Some(old) = table.remove(id.0)? {
                        existed = true;
                        freed = freed.saturating_add(old.value().len() as u64);
                    }
                }
                tombs.insert(id.0, ())?;
                outcome.push((
                    *id,
                    if existed {
                        Deleted::Removed
                    } else {
                        Deleted::Absent
                    },
                ));
            }
        }
        if let Some(account) = account {
            usage::credit_in(&txn, account, freed)?;
        }
        super::unsettled::settle_in(&txn, ids)?;
        txn.commit()?;
        Ok(outcome)
    }

    /// Whether `id` has a tombstone.
    ///
    /// # Errors
    /// redb's errors if the read fails.
    pub fn is_deleted(&self, id: ImageId) -> Result<bool, StoreError> {
        let txn = self.db.begin_read()?;
        let table = match txn.open_table(TOMBSTONES) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        Ok(table.get(id.0)?.is_some())
    }

    /// Up to `limit` deleted ids greater than `after`, ascending (as [`ShareStore::list`]).
    ///
    /// # Errors
    /// redb's errors if the read fails.
    pub fn list_deleted(&self, after: Option<ImageId>, limit: usize) -> Result<Page, StoreError> {
        let limit = limit.max(1);
        let txn = self.db.begin_read()?;
        let table = match txn.open_table(TOMBSTONES) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => {
                return Ok(Page {
                    ids: Vec::new(),
                    next: None,
                });
            }
            Err(e) => return Err(e.into()),
        };
        let start = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.0));
        let mut range = table.range::<u64>((start, Bound::Unbounded))?;
        let mut ids = Vec::with_capacity(limit.min(LIST_PREALLOCATE));
        for entry in range.by_ref() {
            let (key, ()) = entry.map(|(k, v)| (k, v.value()))?;
            ids.push(ImageId(key.value()));
            if ids.len() == limit {
                break;
            }
        }
        let more = ids.len() == limit && range.next().transpose()?.is_some();
        let next = if more { ids.last().copied() } else { None };
        Ok(Page { ids, next })
    }
}

/// The first of `ids` that has a tombstone, within `txn`.
pub(super) fn first_deleted_in(
    txn: &redb::WriteTransaction,
    ids: impl Iterator<Item = ImageId>,
) -> Result<Option<ImageId>, StoreError> {
    let table = txn.open_table(TOMBSTONES)?;
    for id in ids {
        if table.get(id.0)?.is_some() {
            return Ok(Some(id));
        }
    }
    Ok(None)
}
