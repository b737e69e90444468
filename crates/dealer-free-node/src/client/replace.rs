//! Node replacement: a node whose machine, disk or key was lost is brought back as a fresh
//! node (new identity keys, empty store) without re-ingesting any image.
//!
//! Two steps, both driven by the owner's client:
//!
//! 1. **Resharing** ([`dealer_free::reshare`]): the surviving nodes re-share their DKG key
//!    shares to the committee that includes the fresh node, relayed by the client like the
//!    DKG (signed, shares sealed end to end). The group key — and so every band token
//!    already in the nodes' indexes — is unchanged; every node gets a new key share, the old
//!    shares stop combining with the new ones, and the client's key file gets the new
//!    verification shares. No node installs its new share before every receiver reported
//!    the same outcome (a commit step), so a failed run leaves the cluster on its old key.
//! 2. **Repair**: page by page, the client reads the surviving nodes' records of every
//!    image and computes the fresh node's record: its image share (the exact bytes it had,
//!    checked against the commitment every share carries), its bit shares (Lagrange
//!    interpolation over `Fp61`, checked against the extra nodes' shares), and the band
//!    tokens (which every node holds alike). The fresh node receives only its own record;
//!    the client, the collection's owner, sees what it could reconstruct anyway.

use std::collections::{BTreeMap, BTreeSet};

use dealer_free::mpc::HashBitShares;
use dealer_free::record::StoredRecord;
use phr_sis::share::{Share, repair_share};
use phr_sis::{ImageId, NodeId};
use rand::RngCore;

use super::{ClientError, ClusterClient, ClusterKeyFile, short};
use crate::proto;

/// Records asked of each node per page during repair.
pub const REPAIR_PAGE: u32 = 64;

/// What [`ClusterClient::replace_node`] did.
#[derive(Debug, Clone)]
pub struct ReplaceOutcome {
    /// The node brought back.
    pub node: NodeId,
    /// The nodes whose old shares make up the new ones.
    pub dealers_used: Vec<NodeId>,
    /// The resharing transcript every node confirmed (hex).
    pub transcript: String,
    /// Images whose record the new node now holds.
    pub repaired: usize,
    /// Images that could not be repaired, and why.
    pub failed: BTreeMap<ImageId, String>,
}

impl ClusterClient {
    /// Replaces node `node` — running fresh (no key share, empty store) at its address in the
    /// profile — by resharing the key from the nodes that hold it and repairing its records.
    /// The resharing's commit is two-phase (`client/commit.rs`).
    ///
    /// # Errors
    /// [`ClientError::Prepared`] if a node holds a prepared resharing (resume it first);
    /// [`ClientError::TooFewNodes`] if fewer than `t` other nodes hold the key or one that
    /// holds it does not answer; [`ClientError::Protocol`] if the node to replace still holds
    /// a key share; [`ClientError::ReshareFailed`] naming the nodes dropped or disagreeing
    /// (then no node changed its key); [`ClientError::CommitIncomplete`] naming the receivers
    /// that did not acknowledge the commit; [`ClientError::Refused`].
    pub async fn replace_node(&self, node: NodeId) -> Result<ReplaceOutcome, ClientError> {
        let (dealers_used, transcript) = self.reshare_to(node).await?;
        let (repaired, failed) = self.repair(node).await?;
        Ok(ReplaceOutcome {
            node,
            dealers_used,
            transcript,
            repaired,
            failed,
        })
    }

    /// Resharing to the committee whose node `fresh` has no key; returns the dealers used and
    /// the transcript, after writing the new key file.
    async fn reshare_to(&self, fresh: NodeId) -> Result<(Vec<NodeId>, String), ClientError> {
        let ids = self.node_ids();
        if !ids.contains(&fresh) {
            return Err(ClientError::Protocol(format!(
                "the cluster has no node {fresh}"
            )));
        }
        let key_path = self.profile.raw.key_file.clone();
        let key = ClusterKeyFile::load(&key_path)?;
        let t = self.threshold().t();
        let health = self.call_all(&ids, |_, _| proto::HealthRequest {}).await;
        let prepared: Vec<NodeId> = health
            .iter()
            .filter(|(_, h)| h.as_ref().is_ok_and(|h| !h.prepared_label.is_empty()))
            .map(|(id, _)| *id)
            .collect();
        if !prepared.is_empty() {
            return Err(ClientError::Prepared { nodes: prepared });
        }
        let (participants, mut failures) = self.participants(&ids).await;
        // A node that never held the key (absent from the DKG, no verification share) and
        // does not answer now is left out: it joins by its own replacement later.
        failures.retain(|id, _| *id == fresh || key.verification_shares.contains_key(&id.get()));
        let mut receivers = Vec::new();
        let mut dealers = Vec::new();
        for (id, participant) in participants {
            let has_key = matches!(health.get(&id), Some(Ok(h)) if h.has_key);
            if id == fresh && has_key {
                return Err(ClientError::Protocol(format!(
                    "node {fresh} still holds a key share: start it fresh (an empty data \
                     folder) before replacing it"
                )));
            }
            if id != fresh && !has_key {
                // Another node without a key: it joins by its own replacement.
                continue;
            }
            if id != fresh {
                dealers.push(participant.clone());
            }
            receivers.push(participant);
        }
        if !failures.is_empty() || dealers.len() < usize::from(t) {
            return Err(ClientError::TooFewNodes {
                what: "resharing (every node that holds the key, at least t)",
                needed: ids.len(),
                answered: receivers.len(),
                failures,
            });
        }
        let members: Vec<NodeId> = receivers
            .iter()
            .filter_map(|p| {
                u8::try_from(p.node_id)
                    .ok()
                    .and_then(|i| NodeId::new(i).ok())
            })
            .collect();
        let group_public_key = crate::unhex(&key.group_public_key).ok_or_else(|| {
            ClientError::Protocol(format!("{}: the group key is no hex", key_path.display()))
        })?;
        let old_verification_shares = key
            .verification_shares
            .iter()
            .map(|(id, hex)| {
                crate::unhex(hex)
                    .map(|point| proto::VerificationShare {
                        node_id: u32::from(*id),
                        point,
                    })
                    .ok_or_else(|| {
                        ClientError::Protocol(format!(
                            "{}: node {id}'s verification share is no hex",
                            key_path.display()
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut label = b"replace-".to_vec();
        label.push(fresh.get());
        let mut nonce = [0u8; 16];
        rand::rng().fill_bytes(&mut nonce);
        label.extend_from_slice(crate::hex(&nonce).as_bytes());
        let group_key = group_public_key.clone();
        let request = proto::ReshareRoundRequest {
            meta: None,
            label,
            old_t: u32::from(key.threshold),
            group_public_key,
            old_verification_shares,
            dealers,
            new_t: u32::from(t),
            receivers,
            step: 0,
            inbox: Vec::new(),
            commit_transcript: Vec::new(),
        };
        let label = request.label.clone();
        let send = move |m: proto::RequestMeta, step: u32, inbox: Vec<proto::DkgEnvelope>| {
            let mut req = request.clone();
            req.meta = Some(m);
            req.step = step;
            req.inbox = inbox;
            req
        };
        let relayed = self.relay(&members, 0..=4, send).await?;
        let first = relayed.results.values().next().cloned();
        let disagreeing: Vec<NodeId> = relayed
            .results
            .iter()
            .filter(|(_, r)| Some(*r) != first.as_ref() || r.group_public_key != group_key)
            .map(|(id, _)| *id)
            .collect();
        let first = first.filter(|_| {
            relayed.dropped.is_empty()
                && disagreeing.is_empty()
                && relayed.results.len() == members.len()
        });
        let Some(first) = first else {
            // No commit: every node that prepared rolls back (one that cannot be told now
            // rolls back when resumed).
            let mut dropped: BTreeMap<NodeId, String> = relayed
                .dropped
                .iter()
                .map(|(id, d)| (*id, d.to_string()))
                .collect();
            let missing = self.roll_back_reshare(&label, &members).await;
            for (id, why) in missing {
                dropped.entry(id).or_insert(why);
            }
            return Err(ClientError::ReshareFailed {
                dropped,
                disagreeing,
            });
        };
        // Every receiver prepared the same key: commit.
        let new_key = ClusterKeyFile::from_result(self.threshold(), &first);
        self.commit_reshare(&label, &new_key, &members).await?;
        let dealers_used: Vec<NodeId> = first
            .qualified
            .iter()
            .filter_map(|q| u8::try_from(*q).ok().and_then(|q| NodeId::new(q).ok()))
            .collect();
        Ok((dealers_used, new_key.transcript))
    }

    /// Repairs node `node`'s records from the others' (after a resharing gave it its key, e.g.
    /// one completed by [`ClusterClient::resume_reshare`]): the images repaired, and those
    /// that could not be, with why. Images deleted for good (a tombstone on at least `t`
    /// nodes, or a delete the catalog still holds for some node) are not rebuilt: the node
    /// gets their tombstones instead.
    ///
    /// # Errors
    /// As the repair step of [`ClusterClient::replace_node`].
    pub async fn repair_node(
        &self,
        node: NodeId,
    ) -> Result<(usize, BTreeMap<ImageId, String>), ClientError> {
        self.repair(node).await
    }

    /// Computes and stores node `fresh`'s record of every image the other nodes hold, but
    /// the deleted ones.
    async fn repair(
        &self,
        fresh: NodeId,
    ) -> Result<(usize, BTreeMap<ImageId, String>), ClientError> {
        let deleted = self.deleted_ids().await?;
        self.send_tombstones(fresh, &deleted).await?;
        let others: Vec<NodeId> = self
            .node_ids()
            .into_iter()
            .filter(|n| *n != fresh)
            .collect();
        let mut repaired = 0;
        let mut failed = BTreeMap::new();
        let mut after: Option<u64> = None;
        for page_number in 0.. {
            if page_number >= super::catalog::MAX_PAGES {
                return Err(ClientError::Protocol(format!(
                    "the repair's listing passed {} pages",
                    super::catalog::MAX_PAGES
                )));
            }
            // The listing comes from the first other node that answers; the records of
            // that page from every other node by id, so the pages line up.
            let mut listing = None;
            let mut failures = BTreeMap::new();
            for node in &others {
                let r = self
                    .call(*node, |m| proto::ExportRecordsRequest {
                        meta: Some(m),
                        ids: Vec::new(),
                        after,
                        limit: REPAIR_PAGE,
                    })
                    .await;
                match r {
                    Ok(page) => {
                        listing = Some((*node, page));
                        break;
                    }
                    Err(e) => {
                        failures.insert(*node, short(&e));
                    }
                }
            }
            let Some((lister, page)) = listing else {
                return Err(ClientError::TooFewNodes {
                    what: "repair (a node to list the images)",
                    needed: 1,
                    answered: 0,
                    failures,
                });
            };
            // The lister's page must move forward, or a lying lister would loop the repair.
            if let (Some(next), Some(a)) = (page.next, after)
                && next <= a
            {
                return Err(ClientError::Protocol(format!(
                    "node {lister} listed a page that does not move forward"
                )));
            }
            let listed: Vec<(StoredRecord, String)> = decode_owned(&page.records, &page.owners)
                .into_iter()
                .filter(|(r, _)| !deleted.contains(&r.image_id))
                .collect();
            let ids: Vec<u64> = listed.iter().map(|(r, _)| r.image_id.0).collect();
            let (done, not) = self.rebuild(fresh, &ids, Some((lister, listed))).await?;
            repaired += done.len();
            failed.extend(not);
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        Ok((repaired, failed))
    }

    /// Writes the tombstones of `deleted` on `node` (a fresh node must refuse them too).
    async fn send_tombstones(
        &self,
        node: NodeId,
        deleted: &BTreeSet<ImageId>,
    ) -> Result<(), ClientError> {
        let ids: Vec<u64> = deleted.iter().map(|i| i.0).collect();
        for chunk in ids.chunks(REPAIR_PAGE as usize) {
            self.call(node, |m| proto::DeleteRecordsRequest {
                meta: Some(m),
                ids: chunk.to_vec(),
            })
            .await?;
        }
        Ok(())
    }

    /// Rebuilds node `fresh`'s records of `ids` from every other node's and stores them on
    /// it: the ids stored, and those that could not be, with why.
    ///
    /// # Errors
    /// [`ClientError::Protocol`] if a rebuilt record does not encode; the store call's
    /// errors.
    pub(super) async fn rebuild_ids(
        &self,
        fresh: NodeId,
        ids: &[u64],
    ) -> Result<(Vec<ImageId>, BTreeMap<ImageId, String>), ClientError> {
        let mut done = Vec::new();
        let mut failed = BTreeMap::new();
        for chunk in ids.chunks(REPAIR_PAGE as usize) {
            let (d, f) = self.rebuild(fresh, chunk, None).await?;
            done.extend(d);
            failed.extend(f);
        }
        Ok((done, failed))
    }

    /// [`ClusterClient::rebuild_ids`] for one page, with the records one node already sent.
    async fn rebuild(
        &self,
        fresh: NodeId,
        ids: &[u64],
        known: Option<(NodeId, Vec<(StoredRecord, String)>)>,
    ) -> Result<(Vec<ImageId>, BTreeMap<ImageId, String>), ClientError> {
        let t = usize::from(self.threshold().t());
        let mut failed = BTreeMap::new();
        let mut done = Vec::new();
        if ids.is_empty() {
            return Ok((done, failed));
        }
        let mut by_node: BTreeMap<NodeId, Vec<(StoredRecord, String)>> = BTreeMap::new();
        let known_node = known.as_ref().map(|(n, _)| *n);
        if let Some((node, records)) = known {
            by_node.insert(node, records);
        }
        let rest: Vec<NodeId> = self
            .node_ids()
            .into_iter()
            .filter(|n| *n != fresh && Some(*n) != known_node)
            .collect();
        let wanted = ids.to_vec();
        let answers = self
            .call_all(&rest, move |_, m| proto::ExportRecordsRequest {
                meta: Some(m),
                ids: wanted.clone(),
                after: None,
                limit: 0,
            })
            .await;
        for (node, r) in answers {
            if let Ok(reply) = r {
                by_node.insert(node, decode_owned(&reply.records, &reply.owners));
            }
        }
        let mut records = Vec::with_capacity(ids.len());
        let mut owners = Vec::with_capacity(ids.len());
        for id in ids {
            let found: Vec<(NodeId, &StoredRecord, &str)> = by_node
                .iter()
                .filter_map(|(n, list)| {
                    list.iter()
                        .find(|(r, _)| r.image_id.0 == *id)
                        .map(|(r, o)| (*n, r, o.as_str()))
                })
                .collect();
            let plain: Vec<(NodeId, &StoredRecord)> =
                found.iter().map(|(n, r, _)| (*n, *r)).collect();
            match repair_record(&plain, fresh, t) {
                Ok(record) => {
                    records.push(record);
                    owners.push(agreed_owner(&found));
                }
                Err(reason) => {
                    failed.insert(ImageId(*id), reason);
                }
            }
        }
        if !records.is_empty() {
            let encoded: Vec<Vec<u8>> = records
                .iter()
                .map(|r| r.to_bytes().map(|b| b.to_vec()))
                .collect::<Result<_, _>>()
                .map_err(|e| ClientError::Protocol(e.to_string()))?;
            let stored = self
                .call(fresh, |m| proto::StoreRecordsRequest {
                    meta: Some(m),
                    records: encoded.clone(),
                    owners: owners.clone(),
                })
                .await?;
            let acked: BTreeSet<u64> = stored.stored.into_iter().collect();
            let deleted: BTreeSet<u64> = stored.deleted.into_iter().collect();
            for r in &records {
                if acked.contains(&r.image_id.0) {
                    done.push(r.image_id);
                } else if !deleted.contains(&r.image_id.0) {
                    // A deleted image is not rebuilt, and that is no failure.
                    failed.insert(r.image_id, "not acknowledged".into());
                }
            }
        }
        Ok((done, failed))
    }
}

/// The records of an export with the owner each was stored for (as many owners as records
/// or none: an older node's answer).
fn decode_owned(records: &[Vec<u8>], owners: &[String]) -> Vec<(StoredRecord, String)> {
    records
        .iter()
        .enumerate()
        .filter_map(|(i, b)| {
            StoredRecord::from_bytes(b).ok().map(|r| {
                let owner = if owners.len() == records.len() {
                    owners.get(i).cloned().unwrap_or_default()
                } else {
                    String::new()
                };
                (r, owner)
            })
        })
        .collect()
}

/// The owner more than half of the exporting nodes name (with at most `t − 1` lying among
/// at least `2t − 1` exporters, the honest ones' answer), else none: the rebuilt record is
/// then the operator's.
fn agreed_owner(found: &[(NodeId, &StoredRecord, &str)]) -> String {
    let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, _, o) in found {
        *votes.entry(*o).or_default() += 1;
    }
    votes
        .into_iter()
        .find(|(o, v)| !o.is_empty() && o.len() <= 64 && 2 * *v > found.len())
        .map(|(o, _)| o.to_owned())
        .unwrap_or_default()
}

/// Node `fresh`'s record of one image from the other nodes' records of it.
fn repair_record(
    found: &[(NodeId, &StoredRecord)],
    fresh: NodeId,
    t: usize,
) -> Result<StoredRecord, String> {
    let Some((_, first)) = found.first() else {
        return Err("no node holds it".into());
    };
    let image_id = first.image_id;
    let shares: Vec<Share> = found
        .iter()
        .filter_map(|(n, r)| {
            Share::from_bytes(&r.share)
                .ok()
                .filter(|s| s.header.index == *n && s.header.image_id == image_id)
        })
        .collect();
    let share = repair_share(&shares, fresh).map_err(|e| format!("image share: {e}"))?;
    let bits: Vec<(NodeId, HashBitShares)> = found
        .iter()
        .map(|(n, r)| (*n, r.bit_shares.clone()))
        .collect();
    let t8 = u8::try_from(t).map_err(|_| "t out of range".to_owned())?;
    let bit_shares =
        HashBitShares::repair(&bits, t8, fresh).map_err(|e| format!("bit shares: {e}"))?;
    // Every node holds the same band tokens; take the value at least t nodes agree on.
    let mut votes: BTreeMap<&[phr_sis::token_index::Token], usize> = BTreeMap::new();
    for (_, r) in found {
        *votes.entry(r.tokens.as_slice()).or_default() += 1;
    }
    let tokens = votes
        .into_iter()
        .filter(|(_, v)| *v >= t)
        .max_by_key(|(_, v)| *v)
        .map(|(tokens, _)| tokens.to_vec())
        .ok_or_else(|| format!("no {t} nodes hold the same band tokens"))?;
    Ok(StoredRecord {
        image_id,
        share: share.to_bytes(),
        bit_shares,
        tokens,
    })
}
