//! The records service of a node: storing images' records (Stage-1), token evaluation with
//! its per-caller budget, serving a share, and exporting records for a replacement. Every handler checks its bounds before it reads or writes.

#[allow(clippy::wildcard_imports)] // the handlers use the state's own types throughout
use super::*;

use dealer_free::record::StoredRecord;
use phr_sis::store::Charge;

/// The longest owner name a rebuild may give a record (client names are at most 64 bytes).
const MAX_OWNER_LEN: usize = 64;

/// The budget key of every caller together (no client name holds a NUL).
const ALL_CALLERS: &str = "\u{0}all callers";

impl NodeState {
    /// Full records (share, bit shares, band tokens) by id or as a page in id order, for
    /// repairing a replaced node. A record that fails its integrity check is left out (and
    /// logged), so the repair takes that image from the other nodes.
    ///
    /// # Errors
    /// [`NodeError::NotReady`] before the DKG, [`NodeError::Invalid`] for more ids or a
    /// larger page than `max_batch`.
    pub fn export_records(
        &self,
        caller: &str,
        req: &proto::ExportRecordsRequest,
    ) -> Result<proto::ExportRecordsReply, NodeError> {
        self.fresh(caller, req.meta.as_ref())?;
        self.cluster_key()?;
        let max = self.limits.max_batch;
        let (ids, next) = if req.ids.is_empty() {
            let limit = usize::try_from(req.limit).unwrap_or(usize::MAX);
            if limit == 0 || limit > max {
                return Err(invalid(format!(
                    "a page holds 1 to {max} records, {limit} asked"
                )));
            }
            let page = self
                .store()?
                .list(req.after.map(ImageId), limit)
                .map_err(|e| self.disk.failed(e))?;
            (page.ids, page.next.map(|n| n.0))
        } else {
            if req.ids.len() > max {
                return Err(invalid(format!(
                    "at most {max} ids in one request, got {}",
                    req.ids.len()
                )));
            }
            // Each id once: a list naming one large record many times is refused before any
            // record is read.
            let mut unique = BTreeSet::new();
            if let Some(twice) = req.ids.iter().find(|id| !unique.insert(**id)) {
                return Err(invalid(format!(
                    "image {} is listed twice: each id once",
                    ImageId(*twice)
                )));
            }
            (unique.into_iter().map(ImageId).collect(), None)
        };
        let store = self.store()?;
        let mut records = Vec::with_capacity(ids.len());
        let mut owners = Vec::with_capacity(ids.len());
        let mut damaged = Vec::new();
        let mut bytes_out: u64 = 0;
        let mut next = next;
        for (i, id) in ids.iter().copied().enumerate() {
            match store.get_image(id) {
                Ok(Some(r)) => match export_record(id, &r) {
                    Ok(bytes) => {
                        // A page ends before its bytes pass the cap (a record alone may pass
                        // it: it goes alone); the rest is asked again from where it ended.
                        let len = bytes.len() as u64;
                        if !records.is_empty()
                            && bytes_out.saturating_add(len) > self.limits.max_export_bytes
                        {
                            next = Some(ids.get(i.saturating_sub(1)).map_or(id.0, |p| p.0));
                            if req.ids.is_empty() {
                                break;
                            }
                            return Err(NodeError::Full(format!(
                                "the records asked are more than {} bytes \
                                 (max_export_bytes): ask for fewer ids at once",
                                self.limits.max_export_bytes
                            )));
                        }
                        bytes_out = bytes_out.saturating_add(len);
                        records.push(bytes);
                        owners.push(
                            store
                                .owner_of(id)
                                .map_err(|e| self.disk.failed(e))?
                                .unwrap_or_default(),
                        );
                    }
                    Err(_) => damaged.push(id),
                },
                Ok(None) => {}
                Err(
                    StoreError::Corrupt { .. }
                    | StoreError::Incomplete { .. }
                    | StoreError::UnknownRecordVersion { .. },
                ) => damaged.push(id),
                Err(e) => return Err(self.disk.failed(e)),
            }
        }
        self.log(
            &format!(
                "export records={} damaged={}",
                records.len(),
                damaged
                    .iter()
                    .map(|i| format!("{:016x}", i.0))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            false,
        )?;
        Ok(proto::ExportRecordsReply {
            records,
            next,
            owners,
        })
    }

    /// Threshold-VOPRF partial evaluation of a token request, charged to `caller`'s budget.
    ///
    /// # Errors
    /// [`NodeError::NotReady`] before the DKG, [`NodeError::Invalid`] for a malformed request,
    /// [`NodeError::RateLimited`] past the caller's budget.
    pub fn evaluate_tokens(
        &self,
        caller: &str,
        req: &proto::EvaluateTokensRequest,
    ) -> Result<proto::EvaluateTokensReply, NodeError> {
        self.fresh(caller, req.meta.as_ref())?;
        let key = self.cluster_key()?;
        // Charged from the header, before any point is decoded: per image of the default
        // layout's 8 bands (a request with more bands per image costs more evaluations and
        // is charged for them), to the caller and to the node's total.
        let (bands, images) = TokenRequest::peek(&req.token_request)
            .map_err(|e| invalid(format!("token request: {e}")))?;
        let units = u64::from(images) * u64::from(bands).div_ceil(8).max(1);
        self.charge(caller, units)?;
        // A request that does not decode keeps its charge: decoding is the work it asked
        // for, so a flood of malformed requests runs into the budget like any other.
        let request = TokenRequest::from_bytes(&req.token_request)
            .map_err(|e| invalid(format!("token request: {e}")))?;
        // Stopped (its charge kept) when the request is given up: a caller that cancels at
        // once gets no evaluation done for it.
        let partial =
            match tokens::respond_while(&key.key_share, &request, &mut rand::rng(), &mut || {
                !crate::work::cancelled()
            })
            .and_then(|p| p.to_bytes())
            {
                Ok(p) => p,
                Err(dealer_free::oprf::OprfError::Stopped) => {
                    return Err(NodeError::Unavailable(
                        "the request was given up: its evaluation stopped (its charge is kept)"
                            .into(),
                    ));
                }
                Err(e) => {
                    self.refund(caller, units);
                    return Err(invalid(format!("token request: {e}")));
                }
            };
        self.log(
            &format!("tokens caller={caller} images={}", request.images()),
            false,
        )?;
        Ok(proto::EvaluateTokensReply {
            partial_evaluation: partial,
        })
    }

    /// Gives back a charge whose evaluation failed, to the caller and the node's total.
    fn refund(&self, caller: &str, units: u64) {
        self.uncharge(&[caller, ALL_CALLERS], units);
    }

    /// Gives `units` back to each of `who`.
    fn uncharge(&self, who: &[&str], units: u64) {
        if let Ok(mut budgets) = self.budgets.lock() {
            for w in who {
                if let Some(b) = budgets.get_mut(*w) {
                    b.used = b.used.saturating_sub(units);
                }
            }
        }
    }

    /// Charges `images` token evaluations to `caller` and to the node's total.
    fn charge(&self, caller: &str, images: u64) -> Result<(), NodeError> {
        let limit = self.limits.token_images_per_minute;
        charge_minute(&self.budgets, caller, images, limit, |would| {
            format!(
                "{caller} asked for {would} token evaluations this minute, the limit is {limit}"
            )
        })?;
        let total = self.limits.token_images_per_minute_total;
        charge_minute(&self.budgets, ALL_CALLERS, images, total, |would| {
            format!(
                "all clients together asked node {} for {would} token evaluations this minute, \
                 the limit is {total} (token_images_per_minute_total)",
                self.id
            )
        })
        // Past the node's total, the caller's charge is given back.
        .inspect_err(|_| self.uncharge(&[caller], images))
    }

    /// Stores records atomically (all or none), their bytes counted to `caller` (and held to
    /// its quota with `quota`; an admin, not held to one, may name each record's owner, as
    /// a rebuild does), and indexes their tokens. Records of deleted ids are left out and
    /// named in the reply. A record already stored with the same bytes is acknowledged again (a
    /// retried request) and logged in a short line; one stored with other bytes is a
    /// conflict.
    ///
    /// # Errors
    /// [`NodeError::Invalid`] for a batch over the limit or a record that is not this node's
    /// (share of another node or image, bad bit shares or tokens); [`NodeError::Conflict`];
    /// [`NodeError::Full`] past the free-space reserve or the caller's quota;
    /// [`NodeError::Unavailable`] when a write fails (the store is then reopened). Nothing is
    /// stored on error.
    pub fn store_records(
        &self,
        caller: &str,
        quota: bool,
        req: &proto::StoreRecordsRequest,
    ) -> Result<proto::StoreRecordsReply, NodeError> {
        self.fresh(caller, req.meta.as_ref())?;
        self.cluster_key()?;
        if req.records.is_empty() || req.records.len() > self.limits.max_batch {
            return Err(invalid(format!(
                "a store request holds 1 to {} records, got {}",
                self.limits.max_batch,
                req.records.len()
            )));
        }
        if !req.owners.is_empty() {
            if quota {
                return Err(invalid(
                    "only an admin names the owners of the records it stores",
                ));
            }
            if req.owners.len() != req.records.len()
                || req.owners.iter().any(|o| o.len() > MAX_OWNER_LEN)
            {
                return Err(invalid(format!(
                    "owners: one per record, each at most {MAX_OWNER_LEN} bytes"
                )));
            }
        }
        let store = self.store()?;
        let mut fresh: Vec<(ImageId, ImageRecord, Vec<Token>)> = Vec::new();
        let mut fresh_owners: Vec<&str> = Vec::new();
        let mut again: Vec<(ImageId, Vec<Token>)> = Vec::new();
        let mut deleted: Vec<u64> = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, bytes) in req.records.iter().enumerate() {
            let r = StoredRecord::from_bytes(bytes).map_err(|e| invalid(format!("record: {e}")))?;
            let id = r.image_id;
            if !seen.insert(id) {
                return Err(invalid(format!("image {id} appears twice")));
            }
            let share = Share::from_bytes(&r.share)
                .map_err(|e| invalid(format!("image {id}: share: {e}")))?;
            if share.header.image_id != id || share.header.index != self.id {
                return Err(invalid(format!(
                    "image {id}: the share is node {}'s share of image {}",
                    share.header.index, share.header.image_id
                )));
            }
            if share.header.threshold != self.threshold {
                return Err(invalid(format!(
                    "image {id}: the share is for t = {} of n = {}",
                    share.header.threshold.t(),
                    share.header.threshold.n()
                )));
            }
            let record = ImageRecord {
                share: r.share.clone(),
                bit_shares: r.bit_shares.to_bytes().to_vec(),
                meta: r.token_bytes(),
            };
            let tokens = r.tokens;
            match store.get_image(id) {
                Ok(Some(existing)) if existing == record => again.push((id, tokens)),
                Ok(Some(_)) => {
                    return Err(NodeError::Conflict(format!(
                        "image {id} is stored with other contents"
                    )));
                }
                Ok(None) if store.is_deleted(id).map_err(|e| self.disk.failed(e))? => {
                    deleted.push(id.0);
                }
                Ok(None) => {
                    fresh_owners.push(
                        req.owners
                            .get(i)
                            .map(String::as_str)
                            .filter(|o| !o.is_empty())
                            .unwrap_or(caller),
                    );
                    fresh.push((id, record, tokens));
                }
                Err(e) => return Err(self.disk.failed(e)),
            }
        }
        // Records stored by an attempt that failed after its commit (the client retries) are
        // indexed and logged now, with their ids.
        let mut recovered = self.index_missing(&again)?;
        recovered.extend(self.unlogged_of(&store, &again, &recovered)?);
        if !recovered.is_empty() {
            self.log(&recovered_line(&recovered), true)?;
            if let Ok(mut s) = self.settled.lock() {
                s.extend(recovered.iter().map(|id| ImageId(*id)));
            }
        }
        if fresh.is_empty() {
            // Nothing new: acknowledged again, in one short line, not synced (nothing
            // changed that a crash could lose).
            self.log(&format!("store-again count={}", again.len()), false)?;
            return Ok(proto::StoreRecordsReply {
                stored: again.iter().map(|(i, _)| i.0).collect(),
                deleted,
            });
        }
        let adding: u64 = fresh
            .iter()
            .map(|(_, r, _)| (r.share.len() + r.bit_shares.len() + r.meta.len()) as u64)
            .sum();
        let charge = Charge {
            account: caller,
            limit: if quota {
                self.limits.max_stored_bytes_per_client
            } else {
                u64::MAX
            },
        };
        // Refused before any room is reserved (checked again in the store's transaction).
        store
            .check_charge(charge, adding)
            .map_err(|e| self.disk.failed(e))?;
        let room = self.disk.reserve(adding.saturating_mul(2))?;
        let batch: Vec<(ImageId, &ImageRecord)> = fresh.iter().map(|(id, r, _)| (*id, r)).collect();
        // The ids logged since the last store are settled in this transaction.
        let settled = self
            .settled
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default();
        let stored = if req.owners.is_empty() {
            store.put_images_charged(&batch, charge, &settled)
        } else {
            store.put_images_owned(&batch, &fresh_owners, charge, &settled)
        };
        // Once committed, the bytes are on disk: no longer reserved.
        drop(room);
        if stored.is_err()
            && let Ok(mut s) = self.settled.lock()
        {
            s.extend(settled);
        }
        stored.map_err(|e| self.disk.failed(e))?;
        crate::failpoint::hit("store-committed", self.id);
        {
            let mut index = self
                .index
                .write()
                .map_err(|_| NodeError::NotReady("the index lock is poisoned".into()))?;
            // Deleted since the commit (the delete holds this lock across its own commit):
            // not indexed again. One read for the batch; if it fails, none is indexed here.
            let deleted = store.deleted_among(fresh.iter().map(|(id, _, _)| *id));
            for (id, _, tokens) in &fresh {
                if !index.contains(*id) && deleted.as_ref().is_ok_and(|d| !d.contains(id)) {
                    index
                        .insert(*id, tokens)
                        .map_err(|e| invalid(format!("image {id}: {e}")))?;
                }
            }
            self.images.store(index.len() as u64, Ordering::Relaxed);
        }
        let new: Vec<u64> = fresh.iter().map(|(id, _, _)| id.0).collect();
        self.log(&store_line(&new, again.len()), true)?;
        if let Ok(mut s) = self.settled.lock() {
            s.extend(fresh.iter().map(|(id, _, _)| *id));
        }
        self.disk.wrote(disk::Part::Store);
        Ok(proto::StoreRecordsReply {
            stored: new
                .into_iter()
                .chain(again.iter().map(|(i, _)| i.0))
                .collect(),
            deleted,
        })
    }

    /// The ids of `again` (besides those of `besides`) whose commit may never have been
    /// logged: still unsettled in the store, and not logged since this start (an attempt whose
    /// audit line failed after its commit, retried).
    fn unlogged_of(
        &self,
        store: &ShareStore,
        again: &[(ImageId, Vec<Token>)],
        besides: &[u64],
    ) -> Result<Vec<u64>, NodeError> {
        if again.is_empty() {
            return Ok(Vec::new());
        }
        let unsettled: BTreeSet<ImageId> = store
            .unsettled()
            .map_err(|e| self.disk.failed(e))?
            .into_iter()
            .collect();
        let logged: BTreeSet<ImageId> = self
            .settled
            .lock()
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        Ok(again
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| unsettled.contains(id) && !logged.contains(id) && !besides.contains(&id.0))
            .map(|id| id.0)
            .collect())
    }

    /// Indexes the records of `again` the index lacks; returns their ids.
    fn index_missing(&self, again: &[(ImageId, Vec<Token>)]) -> Result<Vec<u64>, NodeError> {
        let missing = {
            let index = self
                .index
                .read()
                .map_err(|_| NodeError::NotReady("the index lock is poisoned".into()))?;
            again.iter().filter(|(id, _)| !index.contains(*id)).count()
        };
        if missing == 0 {
            return Ok(Vec::new());
        }
        let mut index = self
            .index
            .write()
            .map_err(|_| NodeError::NotReady("the index lock is poisoned".into()))?;
        let mut added = Vec::new();
        // Deleted since it was read (the delete holds this lock across its commit): not
        // indexed again. One read for the batch; if it fails, none is indexed here.
        let deleted = self.store()?.deleted_among(again.iter().map(|(id, _)| *id));
        for (id, tokens) in again {
            if !index.contains(*id)
                && deleted.as_ref().is_ok_and(|d| !d.contains(id))
                && index.insert(*id, tokens).is_ok()
            {
                added.push(id.0);
            }
        }
        self.images.store(index.len() as u64, Ordering::Relaxed);
        Ok(added)
    }

    /// This node's share of one image.
    ///
    /// # Errors
    /// [`NodeError::NotFound`], [`NodeError::Corrupt`] if the stored share fails its
    /// integrity check (it is never returned then).
    pub fn get_share(
        &self,
        caller: &str,
        req: &proto::GetShareRequest,
    ) -> Result<proto::GetShareReply, NodeError> {
        self.fresh(caller, req.meta.as_ref())?;
        let id = ImageId(req.image_id);
        let share = self
            .store()?
            .get_share(id)
            .map_err(|e| self.disk.failed(e))?
            .ok_or_else(|| NodeError::NotFound(format!("node {} holds no image {id}", self.id)))?;
        self.log(&format!("get id={:016x}", id.0), false)?;
        Ok(proto::GetShareReply { share })
    }
}

/// A stored record as the exported [`StoredRecord`] encoding.
///
/// # Errors
/// [`NodeError::Corrupt`] for stored bit shares or tokens that do not decode.
fn export_record(id: ImageId, r: &ImageRecord) -> Result<Vec<u8>, NodeError> {
    let corrupt = |what: &str| NodeError::Corrupt(format!("image {id}: stored {what}"));
    let record = StoredRecord {
        image_id: id,
        share: r.share.clone(),
        bit_shares: HashBitShares::from_bytes(&r.bit_shares)
            .ok_or_else(|| corrupt("bit shares"))?,
        tokens: tokens_of_stored(&r.meta).map_err(|_| corrupt("tokens"))?,
    };
    Ok(record.to_bytes().map_err(|_| corrupt("tokens"))?.to_vec())
}

/// The audit line of a store request: the new ids (what start-up compares with the store) and
/// how many were stored already.
pub(super) fn store_line(new: &[u64], again: usize) -> String {
    format!(
        "store new={} again={again} ids={}",
        new.len(),
        new.iter()
            .map(|i| format!("{i:016x}"))
            .collect::<Vec<_>>()
            .join(",")
    )
}

/// The audit line of records found stored but never logged (start-up).
pub(super) fn recovered_line(ids: &[u64]) -> String {
    format!(
        "store-recovered new={} ids={}",
        ids.len(),
        ids.iter()
            .map(|i| format!("{i:016x}"))
            .collect::<Vec<_>>()
            .join(",")
    )
}

/// The ids an audit event logs as stored (a store line or a recovered line).
pub(super) fn logged_ids(event: &str) -> impl Iterator<Item = u64> + '_ {
    let stores = event.starts_with("store ") || event.starts_with("store-recovered ");
    event
        .split(' ')
        .filter(move |_| stores)
        .filter_map(|w| w.strip_prefix("ids="))
        .flat_map(|list| list.split(','))
        .filter_map(|h| u64::from_str_radix(h, 16).ok())
}
