//! Which account stored each image, in the store's own `owners` table (and the `owned`
//! index by account), written in the same transaction as the record: a delete by an account
//! is limited to the images it stored, an account lists its own ids without reading any
//! other's, and the bytes a delete frees are given back to the account that paid for them.

use redb::{ReadableTable, TableDefinition};

use super::{LIST_PREALLOCATE, Page, ShareStore, StoreError};
use crate::ImageId;

/// The table of owners: id → account.
pub(super) const OWNERS: TableDefinition<'static, u64, &'static str> =
    TableDefinition::new("owners");

/// The same, as an index by account: (account, id) → (), so an account's ids are one range.
pub(super) const OWNED: TableDefinition<'static, (&'static str, u64), ()> =
    TableDefinition::new("owned");

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

    /// Up to `limit` stored ids greater than `after` that `account` owns, ascending, read
    /// from the account's own range of the `owned` index: no other account's id is read.
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
        let table = match txn.open_table(OWNED) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Page::default()),
            Err(e) => return Err(e.into()),
        };
        let start = match after {
            Some(a) if a.0 == u64::MAX => return Ok(Page::default()),
            Some(a) => (account, a.0 + 1),
            None => (account, 0),
        };
        let mut range = table.range(start..=(account, u64::MAX))?;
        let mut ids = Vec::with_capacity(limit.min(LIST_PREALLOCATE));
        for entry in range.by_ref() {
            ids.push(ImageId(entry?.0.value().1));
            if ids.len() == limit {
                break;
            }
        }
        let more = ids.len() == limit && range.next().transpose()?.is_some();
        let next = if more { ids.last().copied() } else { None };
        Ok(Page { ids, next })
    }
}

/// Notes each id's owner within `txn`.
pub(super) fn note_in(
    txn: &redb::WriteTransaction,
    ids: &[(ImageId, &str)],
) -> Result<u64, StoreError> {
    let mut table = txn.open_table(OWNERS)?;
    let mut owned = txn.open_table(OWNED)?;
    for (id, owner) in ids {
        table.insert(id.0, *owner)?;
        owned.insert((*owner, id.0), ())?;
    }
    Ok(0)
}

/// Removes and returns `id`'s owner within `txn`.
pub(super) fn take_in(
    txn: &redb::WriteTransaction,
    id: ImageId,
) -> Result<Option<String>, StoreError> {
    let mut table = txn.open_table(OWNERS)?;
    let owner = table.remove(id.0)?.map(|v| v.value().to_owned());
    if let Some(owner) = &owner {
        txn.open_table(OWNED)?.remove((owner.as_str(), id.0))?;
    }
    Ok(owner)
}

/// `id`'s owner within `txn`.
pub(super) fn get_in(
    txn: &redb::WriteTransaction,
    id: ImageId,
) -> Result<Option<String>, StoreError> {
    let table = txn.open_table(OWNERS)?;
    Ok(table.get(id.0)?.map(|v| v.value().to_owned()))
}
