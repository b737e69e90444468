//! The records service of a node: storing images' records (Stage-1), token evaluation with
//! its per-caller budget, serving a share, and exporting records for a replacement. Every handler checks its bounds before it reads or writes.

#[allow(clippy::wildcard_imports)] // the handlers use the state's own types throughout
use super::*;

use dealer_free::record::StoredRecord;

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
        req: &proto::ExportRecordsRequest,
    ) -> Result<proto::ExportRecordsReply, NodeError> {
        self.fresh(req.meta.as_ref())?;
        self.cluster_key()?;
        let max = self.limits.max_batch;
        let (ids, next) = if req.ids.is_empty() {
            let limit = usize::try_from(req.limit).unwrap_or(usize::MAX);
            if limit == 0 || limit > max {
                return Err(invalid(format!(
                    "a page holds 1 to {max} records, {limit} asked"
                )));
            }
            let page = self.store.list(req.after.map(ImageId), limit)?;
            (page.ids, page.next.map(|n| n.0))
        } else {
            if req.ids.len() > max {
                return Err(invalid(format!(
                    "at most {max} ids in one request, got {}",
                    req.ids.len()
                )));
            }
            (req.ids.iter().map(|i| ImageId(*i)).collect(), None)
        };
        let mut records = Vec::with_capacity(ids.len());
        let mut damaged = Vec::new();
        for id in ids {
            match self.store.get_image(id) {
                Ok(Some(r)) => match export_record(id, &r) {
                    Ok(bytes) => records.push(bytes),
                    Err(_) => damaged.push(id),
                },
                Ok(None) => {}
                Err(
                    StoreError::Corrupt { .. }
                    | StoreError::Incomplete { .. }
                    | StoreError::UnknownRecordVersion { .. },
                ) => damaged.push(id),
                Err(e) => return Err(e.into()),
            }
        }
        self.audit.append(
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
        Ok(proto::ExportRecordsReply { records, next })
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
        self.fresh(req.meta.as_ref())?;
        let key = self.cluster_key()?;
        let request = TokenRequest::from_bytes(&req.token_request)
            .map_err(|e| invalid(format!("token request: {e}")))?;
        // Charged per image of the default layout's 8 bands: a request with more bands per
        // image costs more evaluations and is charged for them.
        let units = (request.images() * request.bands().div_ceil(8).max(1)) as u64;
        self.charge(caller, units)?;
        let partial = match tokens::respond(&key.key_share, &request, &mut rand::rng())
            .and_then(|p| p.to_bytes())
        {
            Ok(p) => p,
            Err(e) => {
                self.refund(caller, units);
                return Err(invalid(format!("token request: {e}")));
            }
        };
        self.audit.append(
            &format!("tokens caller={caller} images={}", request.images()),
            false,
        )?;
        Ok(proto::EvaluateTokensReply {
            partial_evaluation: partial,
        })
    }

    /// Gives back a charge whose evaluation failed.
    fn refund(&self, caller: &str, units: u64) {
        if let Ok(mut budgets) = self.budgets.lock()
            && let Some(b) = budgets.get_mut(caller)
        {
            b.used = b.used.saturating_sub(units);
        }
    }

    fn charge(&self, caller: &str, images: u64) -> Result<(), NodeError> {
        let limit = self.limits.token_images_per_minute;
        charge_minute(&self.budgets, caller, images, limit, |would| {
            format!(
                "{caller} asked for {would} token evaluations this minute, the limit is {limit}"
            )
        })
    }

    /// Stores records atomically (all or none) and indexes their tokens. A record already
    /// stored with the same bytes is acknowledged again (a retried request); one stored with
    /// other bytes is a conflict.
    ///
    /// # Errors
    /// [`NodeError::Invalid`] for a batch over the limit or a record that is not this node's
    /// (share of another node or image, bad bit shares or tokens); [`NodeError::Conflict`];
    /// [`NodeError::Store`]. Nothing is stored on error.
    pub fn store_records(
        &self,
        req: &proto::StoreRecordsRequest,
    ) -> Result<proto::StoreRecordsReply, NodeError> {
        self.fresh(req.meta.as_ref())?;
        self.cluster_key()?;
        if req.records.is_empty() || req.records.len() > self.limits.max_batch {
            return Err(invalid(format!(
                "a store request holds 1 to {} records, got {}",
                self.limits.max_batch,
                req.records.len()
            )));
        }
        let mut fresh: Vec<(ImageId, ImageRecord, Vec<Token>)> = Vec::new();
        let mut again = Vec::new();
        let mut seen = BTreeSet::new();
        for bytes in &req.records {
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
            match self.store.get_image(id) {
                Ok(Some(existing)) if existing == record => again.push(id),
                Ok(Some(_)) => {
                    return Err(NodeError::Conflict(format!(
                        "image {id} is stored with other contents"
                    )));
                }
                Ok(None) => fresh.push((id, record, tokens)),
                Err(e) => return Err(e.into()),
            }
        }
        let batch: Vec<(ImageId, &ImageRecord)> = fresh.iter().map(|(id, r, _)| (*id, r)).collect();
        if !batch.is_empty() {
            self.store.put_images(&batch)?;
            let mut index = self
                .index
                .write()
                .map_err(|_| NodeError::NotReady("the index lock is poisoned".into()))?;
            for (id, _, tokens) in &fresh {
                if !index.contains(*id) {
                    index
                        .insert(*id, tokens)
                        .map_err(|e| invalid(format!("image {id}: {e}")))?;
                }
            }
        }
        let stored: Vec<u64> = fresh
            .iter()
            .map(|(id, _, _)| id.0)
            .chain(again.iter().map(|i| i.0))
            .collect();
        self.audit.append(
            &format!(
                "store new={} again={} ids={}",
                fresh.len(),
                again.len(),
                stored
                    .iter()
                    .map(|i| format!("{i:016x}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            true,
        )?;
        Ok(proto::StoreRecordsReply { stored })
    }

    /// This node's share of one image.
    ///
    /// # Errors
    /// [`NodeError::NotFound`], [`NodeError::Corrupt`] if the stored share fails its
    /// integrity check (it is never returned then).
    pub fn get_share(
        &self,
        req: &proto::GetShareRequest,
    ) -> Result<proto::GetShareReply, NodeError> {
        self.fresh(req.meta.as_ref())?;
        let id = ImageId(req.image_id);
        let share = self
            .store
            .get_share(id)?
            .ok_or_else(|| NodeError::NotFound(format!("node {} holds no image {id}", self.id)))?;
        self.audit.append(&format!("get id={:016x}", id.0), false)?;
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
        tokens: tokens_of(&r.meta).map_err(|_| corrupt("tokens"))?,
    };
    Ok(record.to_bytes().map_err(|_| corrupt("tokens"))?.to_vec())
}
