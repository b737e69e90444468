//! Bytes stored per account, kept in the store's own `usage` table and changed in the same
//! transaction as the records they count: a crash never leaves a count that disagrees with
//! the records, and a quota checked inside that transaction cannot be overrun by two writers
//! at once.

use redb::{ReadableTable, TableDefinition};

use super::{ImageRecord, ShareStore, StoreError};
use crate::ImageId;

/// The table of stored bytes per account.
pub(super) const USAGE: TableDefinition<'static, &'static str, u64> = TableDefinition::new("usage");

/// Whom a write is charged to and how much that account may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charge<'a> {
    /// The account (e.g. a client's name).
    pub account: &'a str,
    /// The most bytes the account may hold after the write.
    pub limit: u64,
}

impl ShareStore {
    /// [`ShareStore::put_images`], charging the stored bytes (every part as stored, with its
    /// tag) to `charge.account` in the same transaction. The new ids are noted
    /// [unsettled](ShareStore::unsettled), and the ids of `settled` (recorded by the writer
    /// since) settled, in that transaction too. Returns the account's bytes after the write.
    ///
    /// # Errors
    /// [`StoreError::QuotaExceeded`] if the account would hold more than `charge.limit`
    /// (nothing is changed); the errors of [`ShareStore::put_images`].
    pub fn put_images_charged(
        &self,
        records: &[(ImageId, &ImageRecord)],
        charge: Charge<'_>,
        settled: &[ImageId],
    ) -> Result<u64, StoreError> {
        self.put_images_in(records, None, Some(charge), Some(settled))
            .map(|used| used.unwrap_or(0))
    }

    /// [`ShareStore::put_images_charged`] of records each owned by `owners[i]` (e.g. records
    /// rebuilt by an operator for their owners): the bytes of the records `charge.account`
    /// owns are held to its limit, the others charged to their owners without one.
    ///
    /// # Errors
    /// As [`ShareStore::put_images_charged`].
    pub fn put_images_owned(
        &self,
        records: &[(ImageId, &ImageRecord)],
        owners: &[&str],
        charge: Charge<'_>,
        settled: &[ImageId],
    ) -> Result<u64, StoreError> {
        self.put_images_in(records, Some(owners), Some(charge), Some(settled))
            .map(|used| used.unwrap_or(0))
    }

    /// Whether `bytes` more fit `charge` now, without storing anything (a writer checks
    /// before it does costly work; [`ShareStore::put_images_charged`] checks again in its
    /// transaction).
    ///
    /// # Errors
    /// [`StoreError::QuotaExceeded`]; redb's errors if the read fails.
    pub fn check_charge(&self, charge: Charge<'_>, bytes: u64) -> Result<(), StoreError> {
        charge.after(self.usage(charge.account)?, bytes).map(|_| ())
    }

    /// The bytes charged to `account` so far (0 for an account never charged).
    ///
    /// # Errors
    /// redb's errors if the read fails.
    pub fn usage(&self, account: &str) -> Result<u64, StoreError> {
        let txn = self.db.begin_read()?;
        let table = match txn.open_table(USAGE) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        Ok(table.get(account)?.map_or(0, |v| v.value()))
    }
}

/// Adds `bytes` to `charge.account` within `txn`, or refuses past its limit.
pub(super) fn charge_in(
    txn: &redb::WriteTransaction,
    charge: Charge<'_>,
    bytes: u64,
) -> Result<u64, StoreError> {
    let mut table = txn.open_table(USAGE)?;
    let used = table.get(charge.account)?.map_or(0, |v| v.value());
    let after = charge.after(used, bytes)?;
    table.insert(charge.account, after)?;
    Ok(after)
}

/// Gives `bytes` back to `account` within `txn` (saturating at zero; an account never
/// charged stays absent).
pub(super) fn credit_in(
    txn: &redb::WriteTransaction,
    account: &str,
    bytes: u64,
) -> Result<(), StoreError> {
    let mut table = txn.open_table(USAGE)?;
    let used = table.get(account)?.map(|v| v.value());
    if let Some(used) = used {
        table.insert(account, used.saturating_sub(bytes))?;
    }
    Ok(())
}

impl Charge<'_> {
    /// The account's bytes after adding `bytes` to `used`, or the refusal past its limit.
    fn after(self, used: u64, bytes: u64) -> Result<u64, StoreError> {
        let after = used.saturating_add(bytes);
        if after > self.limit {
            return Err(StoreError::QuotaExceeded {
                account: self.account.to_owned(),
                used,
                adding: bytes,
                limit: self.limit,
            });
        }
        Ok(after)
    }
}
