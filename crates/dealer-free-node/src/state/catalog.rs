//! Deleting and listing a node's images, and checking its records (scrub): what an owner
//! needs to keep the collection as they want it, and an operator to find damage before a
//! read does.
//!
//! A delete removes the records and leaves a tombstone in the store, in one transaction
//! ([`phr_sis::store::ShareStore::delete_images`]); the index and the bit-share cache drop
//! the ids at once, and the audit log names them. A scrub reads every record as a read
//! would (integrity tag) and checks what the node alone can: its share decodes, is its own
//! share of that image for this cluster's `(t, n)` and matches its own commitment; its bit
//! shares and band tokens decode. Removing damaged records is the node's own decision: it
//! removes only the ids that fail its own check, whatever the caller claims.

#[allow(clippy::wildcard_imports)] // the handlers use the state's own types throughout
use super::*;

use phr_sis::store::{Deleted, Deleter};

/// Most ids in one page of [`NodeState::list_records`].
pub const MAX_LIST_PAGE: usize = 4096;

impl NodeState {
    /// Deletes images for good: records removed, tombstones written, the bytes given back to
    /// the account that stored each. An owner deletes only the images it stored (the others
    /// are named in `not_yours` and left; an id not stored gets no tombstone); an admin any
    /// image, and writes the tombstones of ids not held too (a replaced node learning what
    /// the others deleted).
    ///
    /// # Errors
    /// [`NodeError::Invalid`] for no ids, more than `max_batch` or an id twice;
    /// [`NodeError::Unavailable`] when the write fails (nothing is deleted then).
    pub fn delete_records(
        &self,
        caller: &str,
        admin: bool,
        req: &proto::DeleteRecordsRequest,
    ) -> Result<proto::DeleteRecordsReply, NodeError> {
        self.fresh(caller, req.meta.as_ref())?;
        let ids = self.distinct_ids(&req.ids, "delete")?;
        let store = self.store()?;
        let by = if admin {
            Deleter::Admin
        } else {
            Deleter::Account(caller)
        };
        // The index stays locked from the store's delete until the ids are out of it, so a
        // store finishing meanwhile cannot put a deleted id back into the index.
        let mut index = self
            .index
            .write()
            .map_err(|_| NodeError::NotReady("the index lock is poisoned".into()))?;
        let outcome = store
            .delete_images(&ids, by)
            .map_err(|e| self.disk.failed(e))?;
        for id in &ids {
            index.remove(*id);
        }
        self.images.store(index.len() as u64, Ordering::Relaxed);
        drop(index);
        self.forget_records(&ids)?;
        let mut reply = proto::DeleteRecordsReply::default();
        for (id, what) in outcome {
            match what {
                Deleted::Removed => reply.removed.push(id.0),
                Deleted::Absent => reply.absent.push(id.0),
                Deleted::Already => reply.already.push(id.0),
                Deleted::NotYours => reply.not_yours.push(id.0),
            }
        }
        self.log(
            &format!(
                "delete caller={caller} removed={} absent={} already={} not-yours={} ids={}",
                reply.removed.len(),
                reply.absent.len(),
                reply.already.len(),
                reply.not_yours.len(),
                hex_ids(&ids)
            ),
            true,
        )?;
        self.disk.wrote(disk::Part::Store);
        Ok(reply)
    }

    /// A page of the stored ids, ascending: every id for an admin, the ids it stored for an
    /// owner; with `deleted` (admin only), of the tombstones.
    ///
    /// # Errors
    /// [`NodeError::Invalid`] for a page of 0 or more than [`MAX_LIST_PAGE`] ids, or an
    /// owner asking for the deleted ids.
    pub fn list_records(
        &self,
        caller: &str,
        admin: bool,
        req: &proto::ListRecordsRequest,
    ) -> Result<proto::ListRecordsReply, NodeError> {
        self.fresh(caller, req.meta.as_ref())?;
        let limit = usize::try_from(req.limit).unwrap_or(usize::MAX);
        if limit == 0 || limit > MAX_LIST_PAGE {
            return Err(invalid(format!(
                "a page lists 1 to {MAX_LIST_PAGE} ids, {limit} asked"
            )));
        }
        let store = self.store()?;
        let after = req.after.map(ImageId);
        if req.deleted && !admin {
            return Err(invalid("only an admin lists the deleted ids"));
        }
        let page = if req.deleted {
            store.list_deleted(after, limit)
        } else if admin {
            store.list(after, limit)
        } else {
            store.list_owned(caller, after, limit)
        }
        .map_err(|e| self.disk.failed(e))?;
        Ok(proto::ListRecordsReply {
            ids: page.ids.iter().map(|i| i.0).collect(),
            next: page.next.map(|n| n.0),
        })
    }

    /// Checks a page of records (in id order) and names each that fails, with why.
    ///
    /// # Errors
    /// [`NodeError::Invalid`] for a page of 0 or more than `max_batch` records.
    pub fn scrub_records(
        &self,
        caller: &str,
        req: &proto::ScrubRecordsRequest,
    ) -> Result<proto::ScrubRecordsReply, NodeError> {
        self.fresh(caller, req.meta.as_ref())?;
        let max = self.limits.max_batch;
        let limit = usize::try_from(req.limit).unwrap_or(usize::MAX);
        if limit == 0 || limit > max {
            return Err(invalid(format!(
                "a scrub page holds 1 to {max} records, {limit} asked"
            )));
        }
        let store = self.store()?;
        let page = store
            .list(req.after.map(ImageId), limit)
            .map_err(|e| self.disk.failed(e))?;
        let mut damaged = Vec::new();
        for id in &page.ids {
            if crate::work::cancelled() {
                return Err(NodeError::Unavailable(
                    "the scrub was given up: ask for the page again".into(),
                ));
            }
            if let Some(reason) = self.record_damage(&store, *id)? {
                damaged.push(proto::DamagedRecord { id: id.0, reason });
            }
        }
        self.log(
            &format!(
                "scrub caller={caller} checked={} damaged={}",
                page.ids.len(),
                hex_ids(&damaged.iter().map(|d| ImageId(d.id)).collect::<Vec<_>>())
            ),
            false,
        )?;
        Ok(proto::ScrubRecordsReply {
            checked: u32::try_from(page.ids.len()).unwrap_or(u32::MAX),
            damaged,
            next: page.next.map(|n| n.0),
        })
    }

    /// Removes the records among `ids` that fail this node's own check (no tombstone: a
    /// repair stores them again); the others are left as they are. With `off_codeword`, the
    /// ids are those whose bit shares the cluster's masked check found off the codeword (a
    /// fault the node cannot see alone), and every one held is removed; the audit log says
    /// which way.
    ///
    /// # Errors
    /// As [`NodeState::delete_records`].
    pub fn remove_damaged(
        &self,
        caller: &str,
        req: &proto::RemoveDamagedRequest,
    ) -> Result<proto::RemoveDamagedReply, NodeError> {
        self.fresh(caller, req.meta.as_ref())?;
        let ids = self.distinct_ids(&req.ids, "remove")?;
        let store = self.store()?;
        let mut removed = Vec::new();
        for id in ids {
            if (req.off_codeword || self.record_damage(&store, id)?.is_some())
                && store.delete_image(id).map_err(|e| self.disk.failed(e))?
            {
                removed.push(id);
            }
        }
        self.forget_records(&removed)?;
        self.log(
            &format!(
                "remove-damaged caller={caller} off_codeword={} removed={} ids={}",
                req.off_codeword,
                removed.len(),
                hex_ids(&removed)
            ),
            true,
        )?;
        Ok(proto::RemoveDamagedReply {
            removed: removed.iter().map(|i| i.0).collect(),
        })
    }

    /// Why the stored record of `id` is damaged, or `None` when it passes every check the
    /// node can make alone (or is no longer stored).
    ///
    /// # Errors
    /// [`NodeError::Unavailable`] when the store itself fails.
    fn record_damage(&self, store: &ShareStore, id: ImageId) -> Result<Option<String>, NodeError> {
        let record = match store.get_image(id) {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(None),
            Err(
                e @ (StoreError::Corrupt { .. }
                | StoreError::Incomplete { .. }
                | StoreError::UnknownRecordVersion { .. }),
            ) => return Ok(Some(e.to_string())),
            Err(e) => return Err(self.disk.failed(e)),
        };
        let share = match Share::from_bytes(&record.share) {
            Ok(s) => s,
            Err(e) => return Ok(Some(format!("stored share does not decode: {e}"))),
        };
        if share.header.image_id != id || share.header.index != self.id {
            return Ok(Some(format!(
                "stored share is node {}'s share of image {}",
                share.header.index, share.header.image_id
            )));
        }
        if share.header.threshold != self.threshold {
            return Ok(Some(format!(
                "stored share is for t = {} of n = {}",
                share.header.threshold.t(),
                share.header.threshold.n()
            )));
        }
        if !share.verify() {
            return Ok(Some("stored share does not match its commitment".into()));
        }
        if HashBitShares::from_bytes(&record.bit_shares).is_none() {
            return Ok(Some("stored bit shares do not decode".into()));
        }
        if tokens_of_stored(&record.meta).is_err() {
            return Ok(Some("stored band tokens do not decode".into()));
        }
        Ok(None)
    }

    /// `raw` as distinct ids, 1 to `max_batch` of them.
    fn distinct_ids(&self, raw: &[u64], what: &str) -> Result<Vec<ImageId>, NodeError> {
        let max = self.limits.max_batch;
        if raw.is_empty() || raw.len() > max {
            return Err(invalid(format!(
                "a {what} request names 1 to {max} ids, got {}",
                raw.len()
            )));
        }
        let mut seen = BTreeSet::new();
        if let Some(twice) = raw.iter().find(|id| !seen.insert(**id)) {
            return Err(invalid(format!(
                "image {} is listed twice: each id once",
                ImageId(*twice)
            )));
        }
        Ok(raw.iter().copied().map(ImageId).collect())
    }

    /// Drops `ids` from the index and the bit-share cache (their records are gone): the
    /// index first, so a reader that finds an id out of the index caches nothing of it.
    fn forget_records(&self, ids: &[ImageId]) -> Result<(), NodeError> {
        if ids.is_empty() {
            return Ok(());
        }
        {
            let mut index = self
                .index
                .write()
                .map_err(|_| NodeError::NotReady("the index lock is poisoned".into()))?;
            for id in ids {
                index.remove(*id);
            }
            self.images.store(index.len() as u64, Ordering::Relaxed);
        }
        if let Ok(mut cache) = self.bit_shares.write() {
            for id in ids {
                cache.remove(id);
            }
        }
        Ok(())
    }
}

/// Ids as comma-separated hex, for an audit line.
pub(super) fn hex_ids(ids: &[ImageId]) -> String {
    ids.iter()
        .map(|i| format!("{:016x}", i.0))
        .collect::<Vec<_>>()
        .join(",")
}
