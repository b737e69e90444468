//! Which account stored each image, in the store's own `owners` table, written in the same
//! transaction as the record: a delete by an account is limited to the images it stored, and
//! the bytes a delete frees are given back to the account that paid for them.

use std::ops::Bound;

use redb::{ReadableTable, TableDefinition};

use super::{LIST_PREALLOCATE, Page, SHARE, ShareStore, StoreError};
use crate::ImageId;

/// The table of owners.
pub(super) const OWNERS: TableDefinition<'static, u64, &'static str> =
    TableDefinition::new("owners");

/// The most rows one [`ShareStore::list_owned`] call reads past the ids it returns.
const SCAN_PER_PAGE: usize = 8 * LIST_PREALLOCATE;

impl ShareStore {
    /// The account that stored `id`, if the store noted one (records stored without a charge,
    /// or before owners were kept, have none).
    ///
    /// # Errors
    /// redb's errors if the read fails.
    pub fn owner_of(&self, id: ImageId) -> Result<Option<String>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = match txn.open_table(OWNERS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(table.get(id.0)?.map(|v| v.value().to_owned()))
    }

    /// Up to `limit` stored ids greater than `after` that `account` owns, ascending. A call
    /// reads at most `limit` plus a bounded number of other rows: a page may hold fewer ids
    /// (even none) while `next` says where to go on.
    ///
    /// # Errors
    /// redb's errors if the read fails.
    pub fn list_owned(
        &self,
        account: &str,
        after: Option<ImageId>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let limit = limit.max(1);
        let txn = self.db.begin_read()?;
        let shares = txn.open_table(SHARE.table())?;
        let owners = match txn.open_table(OWNERS) {
            Ok(t) => Some(t),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let start = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.0));
        let mut range = shares.range::<u64>((start, Bound::Unbounded))?;
        let mut ids = Vec::with_capacity(limit.min(LIST_PREALLOCATE));
        let mut scanned = 0usize;
        let mut last = None;
        for entry in range.by_ref() {
            let id = entry?.0.value();
            last = Some(ImageId(id));
            scanned += 1;
            let mine = match &owners {
                Some(t) => t.get(id)?.is_some_and(|o| o.value() == account),
                None => false,
            };
            if mine {
                ids.push(ImageId(id));
            }
            if ids.len() == limit || scanned >= limit.saturating_add(SCAN_PER_PAGE) {
                break;
            }
        }
        let more = last.is_some() && range.next().transpose()?.is_some();
        Ok(Page {
            ids,
            next: if more { last } else { None },
        })
    }
}

/// Notes each id's owner within `txn`.
pub(super) fn note_in(
    txn: &redb::WriteTransaction,
    ids: &[(ImageId, &str)],
) -> Result<u64, StoreError> {
    let mut table = txn.open_table(OWNERS)?;
    for (id, owner) in ids {
        table.insert(id.0, *owner)?;
    }
    Ok(0)
}

/// Removes and returns `id`'s owner within `txn`.
pub(super) fn take_in(
    txn: &redb::WriteTransaction,
    id: ImageId,
) -> Result<Option<String>, StoreError> {
    let mut table = txn.open_table(OWNERS)?;
    Ok(table.remove(id.0)?.map(|v| v.value().to_owned()))
}

/// `id`'s owner within `txn`.
pub(super) fn get_in(
    txn: &redb::WriteTransaction,
    id: ImageId,
) -> Result<Option<String>, StoreError> {
    let table = txn.open_table(OWNERS)?;
    Ok(table.get(id.0)?.map(|v| v.value().to_owned()))
}
