//! The owner's view of what the nodes store: deleting images for good, listing the ids each
//! node holds (or deleted), and the operator's scrub and repair of damaged records.
//!
//! Every node's answer is checked before it is used: a listing's ids must rise strictly and
//! stay within [`MAX_LISTED`], a scrub names only ids of the page it was asked for. A repair
//! asks the damaged node to remove only the records that fail its *own* check (the node
//! decides, not the client), then rebuilds them from the other nodes exactly as a replaced
//! node's records are rebuilt ([`ClusterClient::repair_node`]).

use std::collections::{BTreeMap, BTreeSet};

use phr_sis::{ImageId, NodeId};
use tokio::task::JoinHandle;

use super::catalog_file::Catalog;
use super::replace::REPAIR_PAGE;
use super::share_check::ShareCheckReport;
use super::{ClientError, ClusterClient, short};
use crate::proto;

/// Ids asked of a node per page of a listing.
pub const LIST_PAGE: u32 = 4096;
/// The most ids a listing takes from one node; a node that lists more is cut off there and
/// named.
pub const MAX_LISTED: usize = 1 << 24;
/// The most pages a listing or a scrub asks of one node (a page may be empty while more
/// follow, so the count of pages is bounded on its own).
pub const MAX_PAGES: usize = 1 << 18;
/// The longest reason a scrub keeps for one damaged record (in characters).
const MAX_REASON: usize = 200;
/// The most damaged records a scrub takes from one node.
pub const MAX_DAMAGED: usize = 1 << 20;

/// What every node holds: for each id, the nodes that list it.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Each id and the nodes that hold it (or, for deleted ids, hold its tombstone).
    pub holders: BTreeMap<ImageId, BTreeSet<NodeId>>,
    /// The nodes whose listing failed or was cut, and why.
    pub failed: BTreeMap<NodeId, String>,
}

/// What a scrub found.
#[derive(Debug, Clone, Default)]
pub struct ScrubReport {
    /// Records checked per node.
    pub checked: BTreeMap<NodeId, u64>,
    /// Each damaged record: node, image, why (the node's own check, or the masked bit-share
    /// check's [`OFF_CODEWORD`]).
    pub damaged: Vec<(NodeId, ImageId, String)>,
    /// The nodes whose scrub did not finish, and why.
    pub failed: BTreeMap<NodeId, String>,
    /// The masked check of the bit shares across the nodes.
    pub bit_shares: ShareCheckReport,
}

/// The reason a scrub gives for bit shares the masked check found off the codeword.
pub const OFF_CODEWORD: &str =
    "bit shares off the polynomial the other nodes' shares agree on (masked check)";

/// What one node did with a delete.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeDeleted {
    /// The ids whose records it removed.
    pub removed: BTreeSet<ImageId>,
    /// The ids another client stored there, which it left (an owner deletes only its own).
    pub not_yours: BTreeSet<ImageId>,
}

/// What a repair of damaged records did.
#[derive(Debug, Clone, Default)]
pub struct RepairOutcome {
    /// The records rebuilt, by node.
    pub repaired: Vec<(NodeId, ImageId)>,
    /// The records that could not be rebuilt (or removed), and why.
    pub failed: Vec<(NodeId, ImageId, String)>,
}

impl ClusterClient {
    /// Deletes `ids` on every node (records removed, tombstones left): for each node, the ids
    /// whose records it removed, or why it failed. A node that fails keeps its records until
    /// a later delete reaches it (deleting twice is harmless).
    pub async fn delete(&self, ids: &[ImageId]) -> BTreeMap<NodeId, Result<NodeDeleted, String>> {
        self.delete_on(&self.node_ids(), ids).await
    }

    /// [`ClusterClient::delete`] on `nodes` only.
    pub async fn delete_on(
        &self,
        nodes: &[NodeId],
        ids: &[ImageId],
    ) -> BTreeMap<NodeId, Result<NodeDeleted, String>> {
        let mut out: BTreeMap<NodeId, Result<NodeDeleted, String>> = nodes
            .iter()
            .map(|n| (*n, Ok(NodeDeleted::default())))
            .collect();
        for chunk in ids.chunks(REPAIR_PAGE as usize) {
            let pending: Vec<NodeId> = out
                .iter()
                .filter(|(_, r)| r.is_ok())
                .map(|(n, _)| *n)
                .collect();
            let raw: Vec<u64> = chunk.iter().map(|i| i.0).collect();
            let asked: BTreeSet<u64> = raw.iter().copied().collect();
            let answers = self
                .call_all(&pending, move |_, m| proto::DeleteRecordsRequest {
                    meta: Some(m),
                    ids: raw.clone(),
                })
                .await;
            for node in pending {
                let result = match answers.get(&node) {
                    Some(Ok(reply)) => {
                        let of = |list: &[u64]| -> BTreeSet<ImageId> {
                            list.iter()
                                .filter(|i| asked.contains(i))
                                .map(|i| ImageId(*i))
                                .collect()
                        };
                        Ok(NodeDeleted {
                            removed: of(&reply.removed),
                            not_yours: of(&reply.not_yours),
                        })
                    }
                    Some(Err(e)) => Err(short(e)),
                    None => Err("no answer".to_owned()),
                };
                match (result, out.get_mut(&node)) {
                    (Ok(done), Some(Ok(all))) => {
                        all.removed.extend(done.removed);
                        all.not_yours.extend(done.not_yours);
                    }
                    (Err(why), Some(slot)) => *slot = Err(why),
                    _ => {}
                }
            }
        }
        out
    }

    /// Every node's stored ids (or, with `deleted`, its tombstones), page by page.
    pub async fn list(&self, deleted: bool) -> Listing {
        let tasks =
            self.on_each_node(move |c, node| async move { c.list_node(node, deleted).await });
        let mut listing = Listing::default();
        for (node, task) in tasks {
            let (ids, failure) = task
                .await
                .unwrap_or_else(|e| (Vec::new(), Some(format!("its listing failed: {e}"))));
            for id in ids {
                listing.holders.entry(id).or_default().insert(node);
            }
            if let Some(why) = failure {
                listing.failed.insert(node, why);
            }
        }
        listing
    }

    /// Runs `work` for every node at once, each on its own task: every node's task, by node,
    /// so that a task that fails is still that node's failure.
    fn on_each_node<T, F, Fut>(&self, work: F) -> Vec<(NodeId, JoinHandle<T>)>
    where
        F: Fn(ClusterClient, NodeId) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.node_ids()
            .into_iter()
            .map(|node| (node, tokio::spawn(work(self.clone(), node))))
            .collect()
    }

    /// One node's listing, and why it stopped early (if it did).
    async fn list_node(&self, node: NodeId, deleted: bool) -> (Vec<ImageId>, Option<String>) {
        let mut ids = Vec::new();
        let mut after: Option<u64> = None;
        for _ in 0..MAX_PAGES {
            let page = match self
                .call(node, |m| proto::ListRecordsRequest {
                    meta: Some(m),
                    after,
                    limit: LIST_PAGE,
                    deleted,
                })
                .await
            {
                Ok(p) => p,
                Err(e) => return (ids, Some(short(&e))),
            };
            if page.ids.len() > LIST_PAGE as usize {
                return (
                    ids,
                    Some(format!("listed more than the {LIST_PAGE} ids asked")),
                );
            }
            // Strictly rising, after the cursor: a node cannot make the client loop.
            let mut last = after;
            for id in &page.ids {
                if last.is_some_and(|l| *id <= l) {
                    return (ids, Some("listed ids out of order".into()));
                }
                last = Some(*id);
            }
            if ids.len() + page.ids.len() > MAX_LISTED {
                return (ids, Some(format!("listed more than {MAX_LISTED} ids")));
            }
            ids.extend(page.ids.iter().copied().map(ImageId));
            // The cursor moves past this page's ids and past where the page began.
            match page.next {
                Some(next) if last.is_none_or(|l| next >= l) && after.is_none_or(|a| next > a) => {
                    after = Some(next);
                }
                Some(_) => return (ids, Some("a page cursor that does not move forward".into())),
                None => return (ids, None),
            }
        }
        (ids, Some(format!("listed more than {MAX_PAGES} pages")))
    }

    /// Has every node check every record it holds, then the nodes whose scrub finished check
    /// their bit shares against each other without revealing them
    /// ([`dealer_free::mpc::share_check`]); names each damaged (node, image).
    pub async fn scrub(&self) -> ScrubReport {
        let tasks = self.on_each_node(|c, node| async move { c.scrub_node(node).await });
        let mut report = ScrubReport::default();
        for (node, task) in tasks {
            let (checked, damaged, failure) = task
                .await
                .unwrap_or_else(|e| (0, Vec::new(), Some(format!("its scrub failed: {e}"))));
            report.checked.insert(node, checked);
            report
                .damaged
                .extend(damaged.into_iter().map(|(id, why)| (node, id, why)));
            if let Some(why) = failure {
                report.failed.insert(node, why);
            }
        }
        let listing = self.list(false).await;
        let servers: Vec<NodeId> = report
            .checked
            .keys()
            .filter(|n| !report.failed.contains_key(n) && !listing.failed.contains_key(n))
            .copied()
            .collect();
        report.bit_shares = self.check_bit_shares(&listing.holders, &servers).await;
        let locally: BTreeSet<(NodeId, ImageId)> =
            report.damaged.iter().map(|(n, i, _)| (*n, *i)).collect();
        for (node, id) in &report.bit_shares.off_codeword {
            if !locally.contains(&(*node, *id)) {
                report.damaged.push((*node, *id, OFF_CODEWORD.to_owned()));
            }
        }
        report.damaged.sort_by_key(|(n, i, _)| (*n, *i));
        report
    }

    /// One node's scrub: records checked, the damaged ones, and why it stopped early.
    async fn scrub_node(&self, node: NodeId) -> (u64, Vec<(ImageId, String)>, Option<String>) {
        let mut checked = 0u64;
        let mut damaged = Vec::new();
        let mut after: Option<u64> = None;
        for _ in 0..MAX_PAGES {
            let page = match self
                .call(node, |m| proto::ScrubRecordsRequest {
                    meta: Some(m),
                    after,
                    limit: REPAIR_PAGE,
                })
                .await
            {
                Ok(p) => p,
                Err(e) => return (checked, damaged, Some(short(&e))),
            };
            if page.checked > REPAIR_PAGE || page.damaged.len() > page.checked as usize {
                return (
                    checked,
                    damaged,
                    Some("answered for more records than asked".into()),
                );
            }
            if page.next.is_some_and(|n| after.is_some_and(|a| n <= a)) {
                return (
                    checked,
                    damaged,
                    Some("a page cursor that does not move forward".into()),
                );
            }
            checked += u64::from(page.checked);
            for d in page.damaged {
                if after.is_some_and(|a| d.id <= a) || page.next.is_some_and(|n| d.id > n) {
                    return (
                        checked,
                        damaged,
                        Some("named a record outside its page".into()),
                    );
                }
                if damaged.len() >= MAX_DAMAGED {
                    return (
                        checked,
                        damaged,
                        Some(format!("named more than {MAX_DAMAGED} damaged records")),
                    );
                }
                let reason: String = d.reason.chars().take(MAX_REASON).collect();
                damaged.push((ImageId(d.id), reason));
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return (checked, damaged, None),
            }
        }
        (
            checked,
            damaged,
            Some(format!("scrubbed more than {MAX_PAGES} pages")),
        )
    }

    /// Rebuilds the damaged records `report` names: each node removes those that fail its own
    /// check, then they are rebuilt from the other nodes; images deleted for good
    /// ([`ClusterClient::deleted_ids`]) are not rebuilt.
    ///
    /// # Errors
    /// [`ClientError::Catalog`] if the catalog cannot be read; [`ClientError::Protocol`] if
    /// encoding a rebuilt record fails.
    pub async fn repair_damaged(&self, report: &ScrubReport) -> Result<RepairOutcome, ClientError> {
        let deleted = self.deleted_ids().await?;
        // Named off the codeword by the masked check itself, not by a node's reason.
        let off: BTreeSet<(NodeId, ImageId)> =
            report.bit_shares.off_codeword.iter().copied().collect();
        let mut by_node: BTreeMap<NodeId, Vec<(ImageId, bool)>> = BTreeMap::new();
        for (node, id, _) in &report.damaged {
            by_node
                .entry(*node)
                .or_default()
                .push((*id, off.contains(&(*node, *id))));
        }
        let mut outcome = RepairOutcome::default();
        for (node, marked) in by_node {
            let ids: Vec<ImageId> = marked.iter().map(|(i, _)| *i).collect();
            let mut removed = Vec::new();
            let (off, own): (Vec<_>, Vec<_>) = marked.iter().partition(|(_, off)| *off);
            let groups = [(own, false), (off, true)];
            for (group, off_codeword) in &groups {
                let group: Vec<ImageId> = group.iter().map(|(i, _)| *i).collect();
                for chunk in group.chunks(REPAIR_PAGE as usize) {
                    let raw: Vec<u64> = chunk.iter().map(|i| i.0).collect();
                    match self
                        .call(node, |m| proto::RemoveDamagedRequest {
                            meta: Some(m),
                            ids: raw.clone(),
                            off_codeword: *off_codeword,
                        })
                        .await
                    {
                        Ok(reply) => {
                            let asked: BTreeSet<u64> = raw.iter().copied().collect();
                            removed.extend(
                                reply
                                    .removed
                                    .into_iter()
                                    .filter(|i| asked.contains(i))
                                    .map(ImageId),
                            );
                        }
                        Err(e) => {
                            let why = short(&e);
                            outcome
                                .failed
                                .extend(chunk.iter().map(|i| (node, *i, why.clone())));
                        }
                    }
                }
            }
            let removed_set: BTreeSet<ImageId> = removed.iter().copied().collect();
            let unreached: BTreeSet<ImageId> = outcome
                .failed
                .iter()
                .filter(|(n, _, _)| *n == node)
                .map(|(_, i, _)| *i)
                .collect();
            for id in &ids {
                if !removed_set.contains(id) && !unreached.contains(id) {
                    outcome.failed.push((
                        node,
                        *id,
                        "the node found it intact (not removed)".into(),
                    ));
                }
            }
            let wanted: Vec<u64> = removed
                .iter()
                .filter(|i| !deleted.contains(i))
                .map(|i| i.0)
                .collect();
            let (done, failed) = self.rebuild_ids(node, &wanted).await?;
            outcome.repaired.extend(done.into_iter().map(|i| (node, i)));
            outcome
                .failed
                .extend(failed.into_iter().map(|(i, why)| (node, i, why)));
        }
        Ok(outcome)
    }

    /// Rebuilds on each node that answers the records it lacks of images that at least `t`
    /// other nodes hold and that were not deleted for good (e.g. images ingested while the
    /// node was down, or a rebuild an interruption cut short).
    ///
    /// # Errors
    /// As [`ClusterClient::repair_damaged`].
    pub async fn repair_missing(&self) -> Result<RepairOutcome, ClientError> {
        let deleted = self.deleted_ids().await?;
        let listing = self.list(false).await;
        let t = usize::from(self.threshold().t());
        let mut outcome = RepairOutcome::default();
        for node in self.node_ids() {
            if listing.failed.contains_key(&node) {
                continue;
            }
            let missing: Vec<u64> = listing
                .holders
                .iter()
                .filter(|(id, holders)| {
                    holders.len() >= t && !holders.contains(&node) && !deleted.contains(id)
                })
                .map(|(id, _)| id.0)
                .collect();
            let (done, failed) = self.rebuild_ids(node, &missing).await?;
            outcome.repaired.extend(done.into_iter().map(|i| (node, i)));
            outcome
                .failed
                .extend(failed.into_iter().map(|(i, why)| (node, i, why)));
        }
        Ok(outcome)
    }

    /// The ids deleted for good: those whose tombstone at least `t` nodes hold (fewer could
    /// be one node's claim alone), and the deletes the catalog still holds for some node.
    ///
    /// # Errors
    /// [`ClientError::Catalog`] if the catalog cannot be read.
    pub async fn deleted_ids(&self) -> Result<BTreeSet<ImageId>, ClientError> {
        let pending = Catalog::load(&self.profile().raw.catalog)?.pending_ids();
        let t = usize::from(self.threshold().t());
        let listing = self.list(true).await;
        Ok(listing
            .holders
            .into_iter()
            .filter(|(_, nodes)| nodes.len() >= t)
            .map(|(id, _)| id)
            .chain(pending)
            .collect())
    }
}
