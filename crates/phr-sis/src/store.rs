//! One storage node's durable store of image records.
//!
//! A node keeps, per [`ImageId`], three opaque byte strings produced elsewhere: its share of
//! the image, its shares of the perceptual-hash bits, and small metadata (an [`ImageRecord`]).
//! [`ShareStore`] keeps them in an embedded, transactional database file
//! ([redb](https://docs.rs/redb) 2.6) and never interprets them.
//!
//! # Guarantees
//!
//! - **Atomicity.** [`ShareStore::put_image`], [`ShareStore::replace_image`] and
//!   [`ShareStore::delete_image`] each run in one write transaction: after a crash at any
//!   point (process killed; power lost, on a disk that honours `fsync`) an image is either
//!   entirely there, all three parts as written by one call, or entirely absent. Each read
//!   sees one consistent snapshot.
//! - **Durability.** A write has reached the disk (`fsync`) when the call returns `Ok`. Every
//!   commit is a two-phase commit that also saves redb's allocator state ("quick repair"), so
//!   reopening after a crash does not walk the whole file. Creating a new store is crash safe
//!   too (the file is initialised under a temporary name and then published in one step).
//! - **No silent overwrite.** `put_image` of an id that is present fails with
//!   [`StoreError::AlreadyExists`]; replacing is the explicit [`ShareStore::replace_image`].
//! - **Integrity.** Every stored value carries an HMAC-SHA256 tag under the node's secret
//!   [`MacKey`], over a domain-separation string, the table name, the image id, the record
//!   version and the value. Every read checks it (in constant time) before returning any
//!   byte. A value changed on disk, a value moved to another image id or another table, or a
//!   file written under another node's key fails with [`StoreError::Corrupt`]; the bad bytes
//!   are never returned.
//!
//! What the MAC does **not** protect against: someone who can write the file can roll the
//! whole file (or individual records, image by image) back to an older, validly tagged
//! state, delete images (rows or tables), or destroy the file. It gives integrity of each
//! record's content and binding to its id, not freshness or completeness; those need an
//! external reference such as the other nodes or a signed manifest. A missing part of an
//! image whose other parts are present is reported as [`StoreError::Incomplete`]. The MAC
//! also gives no confidentiality: values are stored as given.
//!
//! Nothing read from a record is trusted: lengths and version bytes are checked, and a bad
//! record is an error, never a panic. Damage to redb's own structures (page headers, the
//! B-trees) is redb's to detect: it reports most as [`redb::StorageError::Corrupted`], wrapped
//! in [`StoreError::Storage`], though a damaged file header can still make redb panic.
//!
//! # Layout
//!
//! Three redb tables, each keyed by the image id as a `u64` (so iteration is by id
//! ascending), each value one *record*:
//!
//! | table              | part of [`ImageRecord`]    |
//! |--------------------|----------------------------|
//! | `image_share`      | [`ImageRecord::share`]     |
//! | `image_bit_shares` | [`ImageRecord::bit_shares`] |
//! | `image_meta`       | [`ImageRecord::meta`]      |
//!
//! A record, version 1 (the only one so far), is
//!
//! ```text
//! version: u8 = 1 | tag: [u8; 32] | value: the bytes as given (any length, may be empty)
//! tag = HMAC-SHA256(key, "phr-sis/share-store/v1" || len(table): u8 || table
//!                        || image id: u64 big-endian || version: u8 || value)
//! ```
//!
//! The version byte comes first so that a later layout can be told apart; a record with a
//! version this build does not know fails with [`StoreError::UnknownRecordVersion`].
//!
//! New files are created in redb's v3 file format (the only one redb 3.x reads).
//!
//! ```
//! use phr_sis::ImageId;
//! use phr_sis::store::{ImageRecord, MacKey, ShareStore};
//!
//! let dir = tempfile::tempdir()?;
//! let key = MacKey::generate(&mut rand::rng());
//! let store = ShareStore::open(dir.path().join("node-1.redb"), key)?;
//!
//! let record = ImageRecord { share: vec![1; 1000], bit_shares: vec![2; 64], meta: vec![] };
//! store.put_image(ImageId(0xab), &record)?;
//! assert_eq!(store.get_image(ImageId(0xab))?, Some(record));
//! assert!(store.get_share(ImageId(0xcd))?.is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::ffi::OsString;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::{fmt, fs, io};

use hmac::{Hmac, KeyInit, Mac};
use rand::CryptoRng;
use redb::{
    Builder, Database, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction,
};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::ImageId;

#[cfg(feature = "testing")]
mod faults;
mod owners;
mod tombstones;
mod unsettled;
mod usage;

pub use tombstones::{Deleted, Deleter};
pub use unsettled::MAX_UNSETTLED;
pub use usage::Charge;

type HmacSha256 = Hmac<Sha256>;

/// The record layout version written by this build.
const RECORD_VERSION: u8 = 1;

/// Bytes of an HMAC-SHA256 tag.
const TAG_LEN: usize = 32;

/// Bytes before the value in a version-1 record: version and tag.
const RECORD_HEADER_LEN: usize = 1 + TAG_LEN;

/// Domain-separation prefix of every MAC input.
const MAC_DOMAIN: &[u8] = b"phr-sis/share-store/v1";

/// SHA-256's block size: HMAC pads shorter keys with zeros to this length.
const HMAC_BLOCK_LEN: usize = 64;

/// The most ids [`ShareStore::list`] reserves room for up front, whatever the `limit`.
const LIST_PREALLOCATE: usize = 1024;

type RecordTable = TableDefinition<'static, u64, &'static [u8]>;

/// One of the three parts of an image, with its table.
#[derive(Clone, Copy)]
struct Part {
    /// The redb table, also bound into the MAC.
    name: &'static str,
    /// How errors name it.
    what: &'static str,
    /// The part of a record stored in this table.
    field: fn(&ImageRecord) -> &[u8],
}

impl Part {
    fn table(self) -> RecordTable {
        TableDefinition::new(self.name)
    }
}

const SHARE: Part = Part {
    name: "image_share",
    what: "stored share",
    field: |r| &r.share,
};
const BIT_SHARES: Part = Part {
    name: "image_bit_shares",
    what: "stored bit shares",
    field: |r| &r.bit_shares,
};
const META: Part = Part {
    name: "image_meta",
    what: "stored metadata",
    field: |r| &r.meta,
};
const PARTS: [Part; 3] = [SHARE, BIT_SHARES, META];

/// A node's 32-byte secret key for the integrity tags of its store.
///
/// Zeroed when dropped; its `Debug` output does not show it. Keep it outside the database
/// file (a node that loses it can no longer read its store; one that leaks it lets whoever
/// can write the file forge records).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MacKey([u8; MacKey::LEN]);

impl MacKey {
    /// Bytes of a key.
    pub const LEN: usize = 32;

    /// The key with these bytes (the caller should zero its own copy).
    #[must_use]
    pub fn from_bytes(bytes: [u8; Self::LEN]) -> Self {
        Self(bytes)
    }

    /// A fresh random key.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = [0u8; Self::LEN];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The key's bytes, to save it (e.g. in the node's key file).
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; Self::LEN] {
        &self.0
    }
}

impl fmt::Debug for MacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MacKey(<redacted>)")
    }
}

/// Everything a node stores for one image. The store does not parse any of it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ImageRecord {
    /// The node's share of the image.
    pub share: Vec<u8>,
    /// The node's shares of the perceptual-hash bits.
    pub bit_shares: Vec<u8>,
    /// Small metadata.
    pub meta: Vec<u8>,
}

impl fmt::Debug for ImageRecord {
    /// Lengths only: shares are secret material and large.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImageRecord")
            .field("share_len", &self.share.len())
            .field("bit_shares_len", &self.bit_shares.len())
            .field("meta_len", &self.meta.len())
            .finish()
    }
}

/// One page of image ids from [`ShareStore::list`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    /// Ids in ascending order.
    pub ids: Vec<ImageId>,
    /// `Some(last id of this page)` when more ids follow: pass it as `after` to get the next
    /// page. `None` when this page ends the listing.
    pub next: Option<ImageId>,
}

/// What went wrong opening, reading or writing a [`ShareStore`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database file could not be opened or created (I/O error, not a redb file, already
    /// open elsewhere, or damaged beyond repair).
    #[error("cannot open the share store at {}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// redb's reason.
        #[source]
        source: Box<redb::DatabaseError>,
    },
    /// A new store file could not be created (e.g. the directory is missing or not writable).
    #[error("cannot create the share store at {}", path.display())]
    Create {
        /// The file.
        path: PathBuf,
        /// The reason.
        #[source]
        source: io::Error,
    },
    /// A read or write transaction could not be started.
    #[error("cannot start a share store transaction")]
    Transaction(#[source] Box<redb::TransactionError>),
    /// A table could not be opened (e.g. the file holds a table of that name with another
    /// type: it is not a share store).
    #[error("cannot open a share store table")]
    Table(#[source] Box<redb::TableError>),
    /// Reading or writing the file failed (I/O error, a value over redb's 3 GiB limit, or
    /// damage to redb's own structures).
    #[error("share store storage error")]
    Storage(#[source] Box<redb::StorageError>),
    /// A write transaction could not be committed; none of its changes were stored.
    #[error("cannot commit to the share store")]
    Commit(#[source] Box<redb::CommitError>),
    /// [`ShareStore::put_image`] was given an id that is already stored; nothing was changed.
    #[error("image {0} is already stored (ids are unique; use replace_image to overwrite)")]
    AlreadyExists(ImageId),
    /// [`ShareStore::put_images_charged`] would take an account past its limit; nothing was
    /// changed.
    #[error(
        "storing {adding} more bytes for {account:?} would pass its quota of {limit} bytes \
         ({used} stored)"
    )]
    QuotaExceeded {
        /// The account charged.
        account: String,
        /// Its bytes stored before.
        used: u64,
        /// The bytes of the refused write.
        adding: u64,
        /// Its quota.
        limit: u64,
    },
    /// [`ShareStore::replace_image`] was given an id that is not stored; nothing was changed.
    #[error("image {0} is not stored, so it cannot be replaced")]
    NotFound(ImageId),
    /// The image was deleted here (it has a tombstone): it is never stored again; nothing
    /// was changed.
    #[error("image {0} was deleted: a deleted image is never stored again")]
    Deleted(ImageId),

    /// A stored value failed its integrity check: it was changed on disk, moved from another
    /// id or table, truncated, or written under another node's key.
    #[error("{what} of image {id} failed its integrity check")]
    Corrupt {
        /// The image.
        id: ImageId,
        /// Which part: "stored share", "stored bit shares" or "stored metadata".
        what: &'static str,
    },
    /// A stored value has a record version this build does not read (corrupt, or written by a
    /// newer version).
    #[error(
        "{what} of image {id} has record version {version}, which this build does not read \
         (it reads version {RECORD_VERSION}); the record is corrupt or newer than this build"
    )]
    UnknownRecordVersion {
        /// The image.
        id: ImageId,
        /// Which part, as in [`StoreError::Corrupt`].
        what: &'static str,
        /// The version byte found.
        version: u8,
    },
    /// Some parts of an image are stored and this one is not (the store never writes such a
    /// state, so a row was deleted behind its back).
    #[error("image {id} is incomplete: its {missing} is missing")]
    Incomplete {
        /// The image.
        id: ImageId,
        /// The missing part, as in [`StoreError::Corrupt`].
        missing: &'static str,
    },
}

// redb's errors are large (up to 160 bytes); boxed, a `Result<_, StoreError>` stays small.
impl StoreError {
    /// Whether the file or the device failed (an I/O error, now or earlier on this open
    /// file), rather than the request or one stored value: after such an error redb refuses
    /// every later call on the open file, and the store must be opened again.
    #[must_use]
    pub fn is_device_failure(&self) -> bool {
        fn io(e: &redb::StorageError) -> bool {
            matches!(
                e,
                redb::StorageError::Io(_)
                    | redb::StorageError::PreviousIo
                    | redb::StorageError::LockPoisoned(_)
            )
        }
        match self {
            StoreError::Open { .. } | StoreError::Create { .. } => true,
            StoreError::Storage(e) => io(e),
            StoreError::Commit(e) => matches!(&**e, redb::CommitError::Storage(s) if io(s)),
            StoreError::Transaction(e) => {
                matches!(&**e, redb::TransactionError::Storage(s) if io(s))
            }
            StoreError::Table(e) => matches!(&**e, redb::TableError::Storage(s) if io(s)),
            _ => false,
        }
    }
}

macro_rules! from_redb {
    ($($redb:ident => $variant:ident),* $(,)?) => {$(
        impl From<redb::$redb> for StoreError {
            fn from(e: redb::$redb) -> Self {
                StoreError::$variant(Box::new(e))
            }
        }
    )*};
}

from_redb! {
    TransactionError => Transaction,
    TableError => Table,
    StorageError => Storage,
    CommitError => Commit,
}

/// One storage node's durable, integrity-checked store of [`ImageRecord`]s.
///
/// All methods take `&self`; the store is `Send + Sync` and may be shared between threads
/// (writes are serialised by redb, reads run concurrently on snapshots). Only one
/// `ShareStore` (in any process) can have a given file open at a time.
pub struct ShareStore {
    db: Database,
    /// HMAC-SHA256 keyed with the node's key, cloned for each tag (its key-derived SHA-256
    /// states are zeroed on drop).
    mac: HmacSha256,
    path: PathBuf,
}

impl fmt::Debug for ShareStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShareStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl ShareStore {
    /// Opens the store in the file at `path`, creating it if it is missing or empty (the
    /// directory must exist). Creation is crash safe: the file is initialised under the
    /// temporary name `.<name>.creating` in the same directory and then published under
    /// `path` in one step. After an unclean shutdown the file is repaired first (quickly:
    /// every commit saves redb's allocator state).
    ///
    /// Records are tagged and checked with `key`; opening a store with another key succeeds,
    /// but then every read of a record fails with [`StoreError::Corrupt`].
    ///
    /// # Errors
    /// [`StoreError::Create`] if a new file cannot be created; [`StoreError::Open`] if the
    /// file cannot be opened, is not a redb database, or is already open; [`StoreError::Table`] if it is a redb database of something else;
    /// others if the tables cannot be created.
    pub fn open(path: impl AsRef<Path>, key: MacKey) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        ensure_file(&path)?;
        let db = builder().create(&path).map_err(|source| StoreError::Open {
            path: path.clone(),
            source: Box::new(source),
        })?;
        Self::with_db(db, path, &key)
    }

    /// [`ShareStore::open`], with every write of the file failing as on a full disk while
    /// `marker` exists (feature `testing`; for the full-disk tests).
    ///
    /// # Errors
    /// As [`ShareStore::open`].
    #[cfg(feature = "testing")]
    pub fn open_full_when_marked(
        path: impl AsRef<Path>,
        key: MacKey,
        marker: &Path,
    ) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        ensure_file(&path)?;
        let open = |source: io::Error| StoreError::Create {
            path: path.clone(),
            source,
        };
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(open)?;
        let backend = faults::FullWhenMarked::new(file, marker).map_err(open)?;
        let db = builder()
            .create_with_backend(backend)
            .map_err(|source| StoreError::Open {
                path: path.clone(),
                source: Box::new(source),
            })?;
        Self::with_db(db, path, &key)
    }

    fn with_db(db: Database, path: PathBuf, key: &MacKey) -> Result<Self, StoreError> {
        create_tables(&db)?;

        // HMAC pads a key shorter than the hash's block with zeros, so keying with the zero
        // padded block is HMAC under the 32-byte key, and cannot fail.
        let mut block = [0u8; HMAC_BLOCK_LEN];
        block[..MacKey::LEN].copy_from_slice(key.as_bytes());
        let mac = HmacSha256::new(&block.into());
        block.zeroize();

        Ok(Self { db, mac, path })
    }

    /// The database file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stores a new image: its three parts in one transaction, durable when this returns.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] if any part of `id` is stored (nothing is changed);
    /// redb's errors if the write fails, in which case nothing of it is stored.
    pub fn put_image(&self, id: ImageId, record: &ImageRecord) -> Result<(), StoreError> {
        self.write_image(id, record, false)
    }

    /// Stores new images, all of them in one transaction: either every record is stored and
    /// durable when this returns, or none is (one fsync for the batch instead of one per
    /// image).
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] if any part of any id is stored, or an id appears twice
    /// in `records` (nothing is changed); redb's errors if the write fails, in which case
    /// nothing of the batch is stored.
    pub fn put_images(&self, records: &[(ImageId, &ImageRecord)]) -> Result<(), StoreError> {
        self.put_images_in(records, None, None, None).map(|_| ())
    }

    /// Stores new images in one transaction, charged to `charge` if given (its bytes after);
    /// with `journal`, the new ids are noted unsettled and the ids `journal` names settled,
    /// in the same transaction. With a charge, each record's owner (`owners[i]`, else the
    /// charged account) is noted, and the bytes of records owned by another account are
    /// charged to that account without a limit.
    fn put_images_in(
        &self,
        records: &[(ImageId, &ImageRecord)],
        owners: Option<&[&str]>,
        charge: Option<Charge<'_>>,
        journal: Option<&[ImageId]>,
    ) -> Result<Option<u64>, StoreError> {
        let sealed: Vec<(ImageId, [Vec<u8>; 3])> = records
            .iter()
            .map(|(id, record)| {
                (
                    *id,
                    PARTS.map(|part| self.seal(part, *id, (part.field)(record))),
                )
            })
            .collect();
        let txn = self.begin_write()?;
        if let Some(id) = tombstones::first_deleted_in(&txn, sealed.iter().map(|(id, _)| *id))? {
            txn.abort()?;
            return Err(StoreError::Deleted(id));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (id, _) in &sealed {
            let mut exists = !seen.insert(id.0);
            for part in PARTS {
                let table = txn.open_table(part.table())?;
                exists |= table.get(id.0)?.is_some();
            }
            if exists {
                txn.abort()?;
                return Err(StoreError::AlreadyExists(*id));
            }
        }
        let used = match charge {
            Some(charge) => {
                let owner_of = |i: usize| {
                    owners
                        .and_then(|o| o.get(i).copied())
                        .unwrap_or(charge.account)
                };
                let mut by_owner: std::collections::BTreeMap<&str, u64> = Default::default();
                for (i, (_, values)) in sealed.iter().enumerate() {
                    let bytes: u64 = values.iter().map(|v| v.len() as u64).sum();
                    *by_owner.entry(owner_of(i)).or_default() += bytes;
                }
                let own = by_owner.remove(charge.account).unwrap_or(0);
                let mut result = usage::charge_in(&txn, charge, own);
                for (account, bytes) in by_owner {
                    if result.is_err() {
                        break;
                    }
                    let unlimited = Charge {
                        account,
                        limit: u64::MAX,
                    };
                    result = usage::charge_in(&txn, unlimited, bytes).and(result);
                }
                if result.is_ok() {
                    let ids: Vec<(ImageId, &str)> = sealed
                        .iter()
                        .enumerate()
                        .map(|(i, (id, _))| (*id, owner_of(i)))
                        .collect();
                    result = owners::note_in(&txn, &ids).and(result);
                }
                match result {
                    Ok(used) => Some(used),
                    Err(e) => {
                        txn.abort()?;
                        return Err(e);
                    }
                }
            }
            None => None,
        };
        for (i, part) in PARTS.iter().enumerate() {
            let mut table = txn.open_table(part.table())?;
            for (id, values) in &sealed {
                if let Some(value) = values.get(i) {
                    table.insert(id.0, value.as_slice())?;
                }
            }
        }
        if let Some(settled) = journal {
            unsettled::settle_in(&txn, settled)?;
            let new: Vec<ImageId> = sealed.iter().map(|(id, _)| *id).collect();
            unsettled::note_in(&txn, &new)?;
        }
        txn.commit()?;
        Ok(used)
    }

    /// Overwrites a stored image with `record`, all three parts in one transaction (e.g.
    /// after a share refresh), durable when this returns.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] if no part of `id` is stored (nothing is changed); redb's
    /// errors if the write fails, in which case the old record is kept.
    pub fn replace_image(&self, id: ImageId, record: &ImageRecord) -> Result<(), StoreError> {
        self.write_image(id, record, true)
    }

    /// The image's three parts, each checked, or `None` if it is not stored.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] or [`StoreError::UnknownRecordVersion`] if a part fails its
    /// check, [`StoreError::Incomplete`] if only some parts are stored; redb's errors if the
    /// read fails.
    pub fn get_image(&self, id: ImageId) -> Result<Option<ImageRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        let mut parts: [Option<Vec<u8>>; 3] = [None, None, None];
        for (slot, part) in parts.iter_mut().zip(PARTS) {
            let table = txn.open_table(part.table())?;
            if let Some(guard) = table.get(id.0)? {
                *slot = Some(self.unseal(part, id, guard.value())?.to_vec());
            }
        }
        match parts {
            [Some(share), Some(bit_shares), Some(meta)] => Ok(Some(ImageRecord {
                share,
                bit_shares,
                meta,
            })),
            [None, None, None] => Ok(None),
            parts => {
                let missing = parts
                    .iter()
                    .zip(PARTS)
                    .find(|(p, _)| p.is_none())
                    .map_or(SHARE.what, |(_, part)| part.what);
                Err(StoreError::Incomplete { id, missing })
            }
        }
    }

    /// The image's share, checked, or `None` if it is not stored.
    ///
    /// # Errors
    /// As [`ShareStore::get_image`], for this part only.
    pub fn get_share(&self, id: ImageId) -> Result<Option<Vec<u8>>, StoreError> {
        self.get_part(SHARE, id)
    }

    /// The image's bit shares, checked, or `None` if it is not stored.
    ///
    /// # Errors
    /// As [`ShareStore::get_image`], for this part only.
    pub fn get_bit_shares(&self, id: ImageId) -> Result<Option<Vec<u8>>, StoreError> {
        self.get_part(BIT_SHARES, id)
    }

    /// The bit shares of many images in one read transaction (what a node reads for one
    /// ranking), each checked, `None` for an image that is not stored; in the order of `ids`.
    ///
    /// # Errors
    /// As [`ShareStore::get_bit_shares`]: the first record that fails its check.
    pub fn get_bit_shares_many(&self, ids: &[ImageId]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(BIT_SHARES.table())?;
        ids.iter()
            .map(|id| match table.get(id.0)? {
                Some(guard) => Ok(Some(self.unseal(BIT_SHARES, *id, guard.value())?.to_vec())),
                None => Ok(None),
            })
            .collect()
    }

    /// The image's metadata, checked, or `None` if it is not stored.
    ///
    /// # Errors
    /// As [`ShareStore::get_image`], for this part only.
    pub fn get_meta(&self, id: ImageId) -> Result<Option<Vec<u8>>, StoreError> {
        self.get_part(META, id)
    }

    /// Whether the image's share is stored (its records are not read or checked).
    ///
    /// # Errors
    /// redb's errors if the read fails.
    pub fn contains(&self, id: ImageId) -> Result<bool, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SHARE.table())?;
        Ok(table.get(id.0)?.is_some())
    }

    /// Removes the image (all three parts, in one transaction, durable when this returns)
    /// without a tombstone, so it may be stored again (e.g. a damaged record removed to be
    /// repaired); [`ShareStore::delete_images`] deletes for good. Returns whether any part of
    /// it was stored.
    ///
    /// # Errors
    /// redb's errors if the write fails, in which case nothing is deleted.
    pub fn delete_image(&self, id: ImageId) -> Result<bool, StoreError> {
        let txn = self.begin_write()?;
        let mut existed = false;
        let mut freed: u64 = 0;
        for part in PARTS {
            let mut table = txn.open_table(part.table())?;
            if let Some(old) = table.remove(id.0)? {
                existed = true;
                freed = freed.saturating_add(old.value().len() as u64);
            }
        }
        if let Some(owner) = owners::take_in(&txn, id)? {
            usage::credit_in(&txn, &owner, freed)?;
        }
        if existed {
            txn.commit()?;
        } else {
            txn.abort()?;
        }
        Ok(existed)
    }

    /// Up to `limit` stored image ids greater than `after` (all ids if `None`), ascending. A
    /// `limit` of 0 is taken as 1. Ids are listed from the share table; records are not read.
    ///
    /// # Errors
    /// redb's errors if the read fails.
    pub fn list(&self, after: Option<ImageId>, limit: usize) -> Result<Page, StoreError> {
        let limit = limit.max(1);
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SHARE.table())?;
        let start = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.0));
        let mut range = table.range::<u64>((start, Bound::Unbounded))?;
        let mut ids = Vec::with_capacity(limit.min(LIST_PREALLOCATE));
        for entry in range.by_ref() {
            let (key, _) = entry?;
            ids.push(ImageId(key.value()));
            if ids.len() == limit {
                break;
            }
        }
        let more = ids.len() == limit && range.next().transpose()?.is_some();
        let next = if more { ids.last().copied() } else { None };
        Ok(Page { ids, next })
    }

    /// The number of stored images (rows of the share table).
    ///
    /// # Errors
    /// redb's errors if the read fails.
    pub fn len(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SHARE.table())?;
        Ok(table.len()?)
    }

    /// Whether no image is stored.
    ///
    /// # Errors
    /// redb's errors if the read fails.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    fn begin_write(&self) -> Result<WriteTransaction, StoreError> {
        begin_write(&self.db)
    }

    fn write_image(
        &self,
        id: ImageId,
        record: &ImageRecord,
        replace: bool,
    ) -> Result<(), StoreError> {
        // Tag before taking redb's write lock.
        let sealed = PARTS.map(|part| self.seal(part, id, (part.field)(record)));
        let txn = self.begin_write()?;
        if !replace && tombstones::first_deleted_in(&txn, std::iter::once(id))?.is_some() {
            txn.abort()?;
            return Err(StoreError::Deleted(id));
        }
        let mut exists = false;
        for part in PARTS {
            let table = txn.open_table(part.table())?;
            exists |= table.get(id.0)?.is_some();
        }
        if exists != replace {
            txn.abort()?;
            return Err(if replace {
                StoreError::NotFound(id)
            } else {
                StoreError::AlreadyExists(id)
            });
        }
        for (part, value) in PARTS.iter().zip(&sealed) {
            let mut table = txn.open_table(part.table())?;
            table.insert(id.0, value.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    fn get_part(&self, part: Part, id: ImageId) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(part.table())?;
        let Some(guard) = table.get(id.0)? else {
            return Ok(None);
        };
        Ok(Some(self.unseal(part, id, guard.value())?.to_vec()))
    }

    /// HMAC state over everything but the value, which the caller feeds.
    fn mac_for(&self, part: Part, id: ImageId, version: u8) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(MAC_DOMAIN);
        // Table names are short constants; the length byte keeps the encoding unambiguous.
        mac.update(&[u8::try_from(part.name.len()).unwrap_or(u8::MAX)]);
        mac.update(part.name.as_bytes());
        mac.update(&id.0.to_be_bytes());
        mac.update(&[version]);
        mac
    }

    /// The record stored for `value`.
    fn seal(&self, part: Part, id: ImageId, value: &[u8]) -> Vec<u8> {
        let mut mac = self.mac_for(part, id, RECORD_VERSION);
        mac.update(value);
        let tag = mac.finalize().into_bytes();
        let mut record = Vec::with_capacity(RECORD_HEADER_LEN + value.len());
        record.push(RECORD_VERSION);
        record.extend_from_slice(&tag);
        record.extend_from_slice(value);
        record
    }

    /// The value of a stored record, after checking its version and tag.
    fn unseal<'a>(
        &self,
        part: Part,
        id: ImageId,
        record: &'a [u8],
    ) -> Result<&'a [u8], StoreError> {
        let corrupt = || StoreError::Corrupt {
            id,
            what: part.what,
        };
        let (&version, rest) = record.split_first().ok_or_else(corrupt)?;
        if version != RECORD_VERSION {
            return Err(StoreError::UnknownRecordVersion {
                id,
                what: part.what,
                version,
            });
        }
        let (tag, value) = rest.split_at_checked(TAG_LEN).ok_or_else(corrupt)?;
        let mut mac = self.mac_for(part, id, version);
        mac.update(value);
        mac.verify_slice(tag).map_err(|_| corrupt())?;
        Ok(value)
    }
}

/// Creates the store file at `path` if there is none, or it is empty (crash safe: see
/// [`create_file`]); any other state of the path is left for redb to report.
fn ensure_file(path: &Path) -> Result<(), StoreError> {
    match fs::metadata(path) {
        Ok(m) if m.len() > 0 => Ok(()),
        Ok(_) => create_file(path, true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => create_file(path, false),
        Err(_) => Ok(()),
    }
}

/// redb's settings for a share store file.
fn builder() -> Builder {
    let mut builder = Builder::new();
    builder.create_with_file_format_v3(true);
    builder
}

/// A write transaction with fsync-on-commit (redb's default), two-phase commit and saved
/// allocator state.
fn begin_write(db: &Database) -> Result<WriteTransaction, StoreError> {
    let mut txn = db.begin_write()?;
    txn.set_quick_repair(true);
    Ok(txn)
}

fn create_tables(db: &Database) -> Result<(), StoreError> {
    let txn = begin_write(db)?;
    for part in PARTS {
        txn.open_table(part.table())?;
    }
    txn.open_table(usage::USAGE)?;
    txn.open_table(unsettled::UNSETTLED)?;
    txn.open_table(tombstones::TOMBSTONES)?;
    txn.open_table(owners::OWNERS)?;
    txn.open_table(owners::OWNED)?;
    txn.commit()?;
    Ok(())
}

/// Creates a new, empty store at `path` so that a crash at any point leaves either no file
/// there (or the empty file that was there) or a complete one: redb's in-place initialisation
/// of a new file is not crash safe (a file killed half way is rejected as not a database
/// forever), so the file is initialised under a temporary name in the same directory,
/// `.<name>.creating`, and then published under `path` in one step: a hard link, which fails
/// rather than replace a file another process created meanwhile (that file is then used), or
/// a rename over the empty file that was there.
fn create_file(path: &Path, replace_empty: bool) -> Result<(), StoreError> {
    let create_err = |source: io::Error| StoreError::Create {
        path: path.to_path_buf(),
        source,
    };
    let file_name = path.file_name().ok_or_else(|| {
        create_err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path does not name a file",
        ))
    })?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut temp_name = OsString::from(".");
    temp_name.push(file_name);
    temp_name.push(".creating");
    let temp = dir.join(temp_name);

    // A leftover of a creation that was interrupted.
    match fs::remove_file(&temp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(create_err(e)),
        _ => {}
    }
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(create_err)?;
    let result = builder()
        .create_file(file)
        .map_err(|source| StoreError::Open {
            path: temp.clone(),
            source: Box::new(source),
        })
        .and_then(|db| create_tables(&db))
        .and_then(|()| {
            if replace_empty {
                fs::rename(&temp, path)
            } else {
                match fs::hard_link(&temp, path) {
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
                    other => other,
                }
            }
            .map_err(create_err)
        })
        .and_then(|()| sync_dir(dir).map_err(create_err));
    // Gone after a rename; otherwise removed, or replaced by the next creation if this fails.
    let _ = fs::remove_file(&temp);
    result
}

/// Makes a new directory entry durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Makes a new directory entry durable (nothing to do, or possible, here).
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use rand::{RngCore, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use tempfile::TempDir;

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn key(byte: u8) -> MacKey {
        MacKey::from_bytes([byte; MacKey::LEN])
    }

    fn temp_store() -> Result<(TempDir, ShareStore), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = ShareStore::open(dir.path().join("store.redb"), key(7))?;
        Ok((dir, store))
    }

    fn record(seed: u64, share_len: usize) -> ImageRecord {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut share = vec![0; share_len];
        rng.fill_bytes(&mut share);
        let mut bit_shares = vec![0; 512];
        rng.fill_bytes(&mut bit_shares);
        ImageRecord {
            share,
            bit_shares,
            meta: seed.to_le_bytes().to_vec(),
        }
    }

    #[test]
    fn stored_ids_stay_unsettled_until_a_later_write_or_settle_names_them() -> TestResult {
        let (dir, store) = temp_store()?;
        let recs: Vec<ImageRecord> = (0..6).map(|i| record(i, 64)).collect();
        let batch: Vec<(ImageId, &ImageRecord)> = recs
            .iter()
            .enumerate()
            .map(|(i, r)| (ImageId(i as u64), r))
            .collect();
        let charge = Charge {
            account: "a",
            limit: u64::MAX,
        };
        store.put_images_charged(&batch[..2], charge, &[])?;
        assert_eq!(store.unsettled()?, vec![ImageId(0), ImageId(1)]);
        // A refused write changes nothing, not even what it names settled.
        let refused = store.put_images_charged(&batch[1..3], charge, &[ImageId(0)]);
        assert!(matches!(refused, Err(StoreError::AlreadyExists(_))));
        assert_eq!(store.unsettled()?, vec![ImageId(0), ImageId(1)]);
        store.put_images_charged(&batch[2..4], charge, &[ImageId(0), ImageId(1)])?;
        assert_eq!(store.unsettled()?, vec![ImageId(2), ImageId(3)]);
        // A plain write is no journaled write.
        store.put_images(&batch[4..])?;
        drop(store);
        let store = ShareStore::open(dir.path().join("store.redb"), key(7))?;
        assert_eq!(store.unsettled()?, vec![ImageId(2), ImageId(3)]);
        store.settle(&[ImageId(3), ImageId(9)])?;
        assert_eq!(store.unsettled()?, vec![ImageId(2)]);
        Ok(())
    }

    #[test]
    fn a_batch_is_stored_whole_or_not_at_all() -> TestResult {
        let (_dir, store) = temp_store()?;
        let recs: Vec<ImageRecord> = (0..20).map(|i| record(i, 100 + i as usize)).collect();
        let batch: Vec<(ImageId, &ImageRecord)> = recs
            .iter()
            .enumerate()
            .map(|(i, r)| (ImageId(i as u64), r))
            .collect();
        store.put_images(&batch[..10])?;
        assert_eq!(store.len()?, 10);
        // One id already stored: nothing of the batch is stored.
        let overlapping: Vec<(ImageId, &ImageRecord)> = batch[9..].to_vec();
        assert!(matches!(
            store.put_images(&overlapping),
            Err(StoreError::AlreadyExists(ImageId(9)))
        ));
        assert_eq!(store.len()?, 10);
        // An id twice in the batch: nothing is stored.
        let twice = vec![batch[10], batch[11], batch[10]];
        assert!(matches!(
            store.put_images(&twice),
            Err(StoreError::AlreadyExists(ImageId(10)))
        ));
        assert_eq!(store.len()?, 10);
        store.put_images(&batch[10..])?;
        for (id, rec) in &batch {
            assert_eq!(store.get_image(*id)?.as_ref(), Some(*rec));
        }
        store.put_images(&[])?;
        assert_eq!(store.len()?, 20);
        Ok(())
    }

    #[test]
    fn bit_shares_of_many_images_read_in_one_transaction() -> TestResult {
        let (_dir, store) = temp_store()?;
        let a = record(1, 100);
        let b = record(2, 100);
        store.put_images(&[(ImageId(1), &a), (ImageId(3), &b)])?;
        let ids = [ImageId(3), ImageId(2), ImageId(1)];
        assert_eq!(
            store.get_bit_shares_many(&ids)?,
            vec![Some(b.bit_shares), None, Some(a.bit_shares)]
        );
        for id in ids {
            assert_eq!(
                store.get_bit_shares_many(&[id])?,
                vec![store.get_bit_shares(id)?]
            );
        }
        assert!(store.get_bit_shares_many(&[])?.is_empty());
        Ok(())
    }

    #[test]
    fn put_then_get_returns_every_part() -> TestResult {
        let (_dir, store) = temp_store()?;
        let rec = record(1, 10_000);
        store.put_image(ImageId(0xab), &rec)?;
        assert_eq!(store.get_image(ImageId(0xab))?, Some(rec.clone()));
        assert_eq!(store.get_share(ImageId(0xab))?, Some(rec.share));
        assert_eq!(store.get_bit_shares(ImageId(0xab))?, Some(rec.bit_shares));
        assert_eq!(store.get_meta(ImageId(0xab))?, Some(rec.meta));
        assert!(store.contains(ImageId(0xab))?);
        assert_eq!(store.len()?, 1);
        assert!(!store.is_empty()?);
        Ok(())
    }

    #[test]
    fn missing_image_is_none() -> TestResult {
        let (_dir, store) = temp_store()?;
        assert!(store.is_empty()?);
        assert_eq!(store.get_image(ImageId(1))?, None);
        assert_eq!(store.get_share(ImageId(1))?, None);
        assert_eq!(store.get_bit_shares(ImageId(1))?, None);
        assert_eq!(store.get_meta(ImageId(1))?, None);
        assert!(!store.contains(ImageId(1))?);
        assert!(!store.delete_image(ImageId(1))?);
        Ok(())
    }

    #[test]
    fn duplicate_put_is_rejected_and_keeps_the_first() -> TestResult {
        let (_dir, store) = temp_store()?;
        let first = record(1, 1000);
        store.put_image(ImageId(5), &first)?;
        let err = store.put_image(ImageId(5), &record(2, 2000));
        assert!(
            matches!(err, Err(StoreError::AlreadyExists(ImageId(5)))),
            "{err:?}"
        );
        assert_eq!(store.get_image(ImageId(5))?, Some(first));
        assert_eq!(store.len()?, 1);
        Ok(())
    }

    #[test]
    fn replace_overwrites_only_existing_images() -> TestResult {
        let (_dir, store) = temp_store()?;
        let err = store.replace_image(ImageId(5), &record(1, 10));
        assert!(
            matches!(err, Err(StoreError::NotFound(ImageId(5)))),
            "{err:?}"
        );
        assert_eq!(store.get_image(ImageId(5))?, None);
        store.put_image(ImageId(5), &record(1, 100))?;
        let second = record(2, 50);
        store.replace_image(ImageId(5), &second)?;
        assert_eq!(store.get_image(ImageId(5))?, Some(second));
        assert_eq!(store.len()?, 1);
        Ok(())
    }

    #[test]
    fn delete_removes_every_part() -> TestResult {
        let (_dir, store) = temp_store()?;
        store.put_image(ImageId(1), &record(1, 100))?;
        store.put_image(ImageId(2), &record(2, 100))?;
        assert!(store.delete_image(ImageId(1))?);
        assert!(!store.delete_image(ImageId(1))?);
        assert_eq!(store.get_image(ImageId(1))?, None);
        assert_eq!(store.get_bit_shares(ImageId(1))?, None);
        assert_eq!(store.get_meta(ImageId(1))?, None);
        assert_eq!(store.get_image(ImageId(2))?, Some(record(2, 100)));
        assert_eq!(store.len()?, 1);
        // The id can be stored again after deletion.
        store.put_image(ImageId(1), &record(3, 10))?;
        assert_eq!(store.get_image(ImageId(1))?, Some(record(3, 10)));
        Ok(())
    }

    #[test]
    fn empty_values_round_trip() -> TestResult {
        let (_dir, store) = temp_store()?;
        let empty = ImageRecord::default();
        store.put_image(ImageId(0), &empty)?;
        store.put_image(ImageId(u64::MAX), &empty)?;
        assert_eq!(store.get_image(ImageId(0))?, Some(empty.clone()));
        assert_eq!(store.get_image(ImageId(u64::MAX))?, Some(empty));
        assert_eq!(store.get_share(ImageId(0))?, Some(Vec::new()));
        Ok(())
    }

    #[test]
    fn large_values_round_trip_and_persist() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("store.redb");
        let big = record(9, 6 * 1024 * 1024 + 3);
        {
            let store = ShareStore::open(&path, key(1))?;
            store.put_image(ImageId(42), &big)?;
            store.put_image(ImageId(43), &record(10, 3 * 1024 * 1024))?;
        }
        let store = ShareStore::open(&path, key(1))?;
        assert_eq!(store.get_image(ImageId(42))?, Some(big));
        assert_eq!(
            store.get_share(ImageId(43))?.map(|s| s.len()),
            Some(3 * 1024 * 1024)
        );
        Ok(())
    }

    #[test]
    fn list_pages_through_ids_in_order() -> TestResult {
        let (_dir, store) = temp_store()?;
        let mut ids: Vec<u64> = vec![u64::MAX, 0, 17, 3, 1 << 40, 99, 5, 1 << 63];
        for &id in &ids {
            store.put_image(ImageId(id), &record(id, 16))?;
        }
        ids.sort_unstable();
        for limit in [1, 2, 3, 7, 8, 9, 100] {
            let mut seen = Vec::new();
            let mut after = None;
            loop {
                let page = store.list(after, limit)?;
                assert!(page.ids.len() <= limit);
                seen.extend(page.ids.iter().map(|id| id.0));
                match page.next {
                    Some(next) => {
                        assert_eq!(page.ids.last(), Some(&next));
                        after = Some(next);
                    }
                    None => break,
                }
            }
            assert_eq!(seen, ids, "limit {limit}");
        }
        // An exactly full last page says there is no more.
        let page = store.list(None, ids.len())?;
        assert_eq!(page.next, None);
        assert_eq!(page.ids.len(), ids.len());
        // Limit 0 is taken as 1; after the largest id nothing follows.
        assert_eq!(store.list(None, 0)?.ids, vec![ImageId(0)]);
        assert_eq!(store.list(Some(ImageId(u64::MAX)), 10)?, Page::default());
        assert_eq!(
            store.list(Some(ImageId(17)), 2)?.ids,
            vec![ImageId(99), ImageId(1 << 40)]
        );
        Ok(())
    }

    #[test]
    fn list_of_empty_store_is_empty() -> TestResult {
        let (_dir, store) = temp_store()?;
        assert_eq!(store.list(None, 10)?, Page::default());
        Ok(())
    }

    #[test]
    fn wrong_key_fails_integrity_check() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("store.redb");
        ShareStore::open(&path, key(1))?.put_image(ImageId(0xab), &record(1, 100))?;
        let store = ShareStore::open(&path, key(2))?;
        let err = store.get_image(ImageId(0xab));
        assert!(
            matches!(
                err,
                Err(StoreError::Corrupt {
                    id: ImageId(0xab),
                    what: "stored share"
                })
            ),
            "{err:?}"
        );
        assert!(store.contains(ImageId(0xab))?);
        Ok(())
    }

    #[test]
    fn records_are_bound_to_their_id_and_table() -> TestResult {
        let (_dir, store) = temp_store()?;
        let sealed = store.seal(SHARE, ImageId(1), b"value");
        assert_eq!(store.unseal(SHARE, ImageId(1), &sealed)?, b"value");
        for (part, id) in [
            (SHARE, ImageId(2)),
            (BIT_SHARES, ImageId(1)),
            (META, ImageId(1)),
        ] {
            let err = store.unseal(part, id, &sealed);
            assert!(matches!(err, Err(StoreError::Corrupt { .. })), "{err:?}");
        }
        Ok(())
    }

    #[test]
    fn malformed_records_are_errors_not_panics() -> TestResult {
        let (_dir, store) = temp_store()?;
        let id = ImageId(0xab);
        let sealed = store.seal(BIT_SHARES, id, b"bits");
        for len in 0..sealed.len() {
            let err = store.unseal(BIT_SHARES, id, &sealed[..len]);
            assert!(
                matches!(err, Err(StoreError::Corrupt { .. })),
                "{len}: {err:?}"
            );
        }
        for byte in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[byte] ^= 0x01;
            let err = store.unseal(BIT_SHARES, id, &bad);
            if byte == 0 {
                assert!(
                    matches!(
                        err,
                        Err(StoreError::UnknownRecordVersion { version: 0, .. })
                    ),
                    "{err:?}"
                );
            } else {
                assert!(
                    matches!(err, Err(StoreError::Corrupt { .. })),
                    "{byte}: {err:?}"
                );
            }
        }
        let Err(err) = store.unseal(BIT_SHARES, id, &sealed[..5]) else {
            return Err("truncated record accepted".into());
        };
        assert_eq!(
            err.to_string(),
            "stored bit shares of image 00000000000000ab failed its integrity check"
        );
        Ok(())
    }

    #[test]
    fn record_layout_is_version_tag_value() -> TestResult {
        let (_dir, store) = temp_store()?;
        let sealed = store.seal(META, ImageId(3), b"abc");
        assert_eq!(sealed.len(), RECORD_HEADER_LEN + 3);
        assert_eq!(sealed[0], RECORD_VERSION);
        assert_eq!(&sealed[RECORD_HEADER_LEN..], b"abc");
        // The tag is HMAC-SHA256 under the plain 32-byte key (the zero padding is HMAC's own).
        let mut mac = HmacSha256::new_from_slice(&[7; MacKey::LEN])?;
        mac.update(b"phr-sis/share-store/v1");
        mac.update(&[10]);
        mac.update(b"image_meta");
        mac.update(&3u64.to_be_bytes());
        mac.update(&[1]);
        mac.update(b"abc");
        mac.verify_slice(&sealed[1..RECORD_HEADER_LEN])?;
        Ok(())
    }

    #[test]
    fn open_rejects_a_file_that_is_not_a_database() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("not-a-db");
        fs::write(&path, vec![0x5a; 8192])?;
        let err = ShareStore::open(&path, key(1));
        assert!(matches!(err, Err(StoreError::Open { .. })), "{err:?}");
        Ok(())
    }

    #[test]
    fn open_initialises_an_empty_file_and_replaces_a_stale_temporary() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("store.redb");
        let temp = dir.path().join(".store.redb.creating");
        fs::write(&path, b"")?;
        // What an interrupted creation leaves: not (yet) a database.
        fs::write(&temp, vec![0; 4096])?;
        let store = ShareStore::open(&path, key(1))?;
        assert!(!temp.exists());
        store.put_image(ImageId(1), &record(1, 10))?;
        drop(store);
        let store = ShareStore::open(&path, key(1))?;
        assert_eq!(store.get_image(ImageId(1))?, Some(record(1, 10)));
        let names: Vec<_> = fs::read_dir(dir.path())?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        assert_eq!(names, vec![OsString::from("store.redb")]);
        Ok(())
    }

    #[test]
    fn open_in_a_missing_directory_fails_to_create() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("missing").join("store.redb");
        let err = ShareStore::open(&path, key(1));
        assert!(
            matches!(&err, Err(StoreError::Create { path: p, .. }) if *p == path),
            "{err:?}"
        );
        Ok(())
    }

    #[test]
    fn second_open_of_the_same_file_fails() -> TestResult {
        let (dir, _store) = temp_store()?;
        let err = ShareStore::open(dir.path().join("store.redb"), key(7));
        assert!(matches!(err, Err(StoreError::Open { .. })), "{err:?}");
        Ok(())
    }

    #[test]
    fn mac_key_debug_is_redacted() {
        let key = MacKey::generate(&mut rand::rng());
        assert_eq!(format!("{key:?}"), "MacKey(<redacted>)");
        assert_ne!(key.as_bytes(), &[0; MacKey::LEN]);
        let rec = record(1, 10);
        assert_eq!(
            format!("{rec:?}"),
            "ImageRecord { share_len: 10, bit_shares_len: 512, meta_len: 8 }"
        );
    }

    #[test]
    fn store_is_send_and_sync_and_its_key_state_zeroized() {
        fn assert_send_sync<T: Send + Sync>() {}
        fn assert_zeroize_on_drop<T: ZeroizeOnDrop>() {}
        assert_send_sync::<ShareStore>();
        // The keyed HMAC's inner and outer SHA-256 states (sha2's `zeroize` feature).
        assert_zeroize_on_drop::<sha2::block_api::Sha256VarCore>();
        assert_zeroize_on_drop::<MacKey>();
    }
}
