//! Deleted images: a delete removes an image's three parts and leaves a tombstone (the id)
//! in the store's own `tombstones` table, in one transaction. An id with a tombstone is never
//! stored again ([`StoreError::Deleted`]): a retried or replayed store of a deleted image,
//! or a repair built from a node that missed the delete, cannot bring it back.
//!
//! Tombstones are kept for good (8 bytes of key each); ids are 64-bit random, so a new image
//! never needs a deleted one's id.

use std::ops::Bound;

use redb::{ReadableTable, TableDefinition};

use super::{LIST_PREALLOCATE, PARTS, Page, ShareStore, StoreError, owners, usage};
use crate::ImageId;

/// The table of deleted ids.
pub(super) const TOMBSTONES: TableDefinition<'static, u64, ()> = TableDefinition::new("tombstones");

/// Who asks [`ShareStore::delete_images`] to delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleter<'a> {
    /// An account: it may delete only the images it stored, and an id not stored gets no
    /// tombstone (so deletes cost an account only what it stored first).
    Account(&'a str),
    /// An operator: any image, and an id not stored gets its tombstone all the same (a
    /// replaced node learning what the others deleted).
    Admin,
}

/// What [`ShareStore::delete_images`] did with each id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    /// The image was stored: its parts are removed and its tombstone written.
    Removed,
    /// It was not stored (and had no tombstone): nothing was removed; for
    /// [`Deleter::Admin`] the tombstone is written, so it can never be stored here later.
    Absent,
    /// It had a tombstone already: nothing changed.
    Already,
    /// Another account (or none this store noted) stored it, and an
    /// [account](Deleter::Account) asked: nothing changed.
    NotYours,
}

impl ShareStore {
    /// Deletes `ids`: every stored part removed and a tombstone written for each, all in one
    /// transaction, durable when this returns. The bytes removed are given back to the
    /// account that stored each image (saturating at zero). Returns what happened to each
    /// id, in order.
    ///
    /// An [account](Deleter::Account) naming an image another account (or no account) stored
    /// gets [`Deleted::NotYours`] for it, and that image is left as it is.
    ///
    /// # Errors
    /// redb's errors if the write fails; nothing is deleted then.
    pub fn delete_images(
        &self,
        ids: &[ImageId],
        by: Deleter<'_>,
    ) -> Result<Vec<(ImageId, Deleted)>, StoreError> {
        let txn = self.begin_write()?;
        let mut outcome = Vec::with_capacity(ids.len());
        let mut removed = Vec::new();
        {
            let mut tombs = txn.open_table(TOMBSTONES)?;
            for id in ids {
                if tombs.get(id.0)?.is_some() {
                    outcome.push((*id, Deleted::Already));
                    continue;
                }
                // An account deletes only what it stored: a record whose parts any table
                // holds, with another owner or none, is left as it is.
                if let Deleter::Account(account) = by {
                    let mut held = false;
                    for part in PARTS {
                        held |= txn.open_table(part.table())?.get(id.0)?.is_some();
                    }
                    if held && owners::get_in(&txn, *id)?.as_deref() != Some(account) {
                        outcome.push((*id, Deleted::NotYours));
                        continue;
                    }
                }
                let mut freed: u64 = 0;
                let mut existed = false;
                for part in PARTS {
                    let mut table = txn.open_table(part.table())?;
                    if let Some(old) = table.remove(id.0)? {
                        existed = true;
                        freed = freed.saturating_add(old.value().len() as u64);
                    }
                }
                if existed || by == Deleter::Admin {
                    tombs.insert(id.0, ())?;
                }
                if let Some(owner) = owners::take_in(&txn, *id)? {
                    removed.push((owner, freed));
                }
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
        let changed = outcome.iter().any(|(_, d)| {
            *d == Deleted::Removed || (*d == Deleted::Absent && by == Deleter::Admin)
        });
        if !changed {
            // Nothing to write: no commit, no fsync.
            txn.abort()?;
            return Ok(outcome);
        }
        for (owner, freed) in removed {
            usage::credit_in(&txn, &owner, freed)?;
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

    /// The ids of `ids` that have a tombstone, read in one transaction.
    ///
    /// # Errors
    /// redb's errors if the read fails.
    pub fn deleted_among(
        &self,
        ids: impl IntoIterator<Item = ImageId>,
    ) -> Result<std::collections::BTreeSet<ImageId>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = match txn.open_table(TOMBSTONES) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Default::default()),
            Err(e) => return Err(e.into()),
        };
        let mut deleted = std::collections::BTreeSet::new();
        for id in ids {
            if table.get(id.0)?.is_some() {
                deleted.insert(id);
            }
        }
        Ok(deleted)
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
            ids.push(ImageId(entry?.0.value()));
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
