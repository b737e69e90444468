//! `list` and `delete`: the owner's view of what a running cluster stores, and deleting
//! images for good. The catalog (ids, absolute paths, content hashes, pending deletes) stays
//! on this machine ([`dealer_free_node::client::Catalog`]).

use std::collections::{BTreeMap, BTreeSet};

use dealer_free_node::client::{Catalog, ClusterClient};
use phr_sis::{ImageId, NodeId};

use super::net::{open_client, runtime};
use crate::cli::{DeleteArgs, ListArgs};
use crate::{Outcome, UsageError};

/// Sends the deletes the catalog still holds to the nodes that owe them; returns the nodes
/// that still owe one (with why), after saying so on stderr.
pub(super) fn flush_pending(
    rt: &tokio::runtime::Runtime,
    client: &ClusterClient,
) -> anyhow::Result<BTreeMap<NodeId, String>> {
    let path = client.profile().raw.catalog.clone();
    let pending = Catalog::load(&path)?.pending_ids();
    if pending.is_empty() {
        return Ok(BTreeMap::new());
    }
    send_deletes(rt, client, &pending.into_iter().collect::<Vec<_>>())
}

/// Deletes `ids` on every node and records in the catalog which nodes still owe it; the
/// nodes that failed, with why (also on stderr).
pub(super) fn send_deletes(
    rt: &tokio::runtime::Runtime,
    client: &ClusterClient,
    ids: &[ImageId],
) -> anyhow::Result<BTreeMap<NodeId, String>> {
    let path = client.profile().raw.catalog.clone();
    let all: BTreeSet<NodeId> = client.node_ids().into_iter().collect();
    // Noted as owed by every node before anything is sent: an interruption leaves them
    // pending, never forgotten.
    Catalog::update(&path, |c| {
        for id in ids {
            c.images.remove(id);
            c.pending_deletes.entry(*id).or_insert_with(|| all.clone());
        }
    })?;
    // Each id only to the nodes that still owe it.
    let owing: BTreeSet<NodeId> = Catalog::load(&path)?
        .pending_deletes
        .iter()
        .filter(|(id, _)| ids.contains(id))
        .flat_map(|(_, nodes)| nodes.iter().copied())
        .collect();
    let owing: Vec<NodeId> = owing.into_iter().collect();
    let results = rt.block_on(client.delete_on(&owing, ids));
    let done: BTreeSet<NodeId> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(n, _)| *n)
        .collect();
    Catalog::update(&path, |c| {
        for id in ids {
            if let Some(owed) = c.pending_deletes.get_mut(id) {
                owed.retain(|n| !done.contains(n));
            }
        }
    })?;
    // An image another client stored on a node is not this client's to delete there: said
    // once, and not owed any more (an admin's `delete` removes it).
    for (node, r) in &results {
        if let Ok(done) = r {
            for id in &done.not_yours {
                eprintln!(
                    "dealer-free-sis: node {node}: {id} was stored there by another client: \
                     only it or an admin can delete it there"
                );
            }
        }
    }
    let failed: BTreeMap<NodeId, String> = results
        .into_iter()
        .filter_map(|(n, r)| r.err().map(|e| (n, e)))
        .collect();
    for (node, why) in &failed {
        eprintln!(
            "dealer-free-sis: node {node}: {why}: {} delete(s) kept in the catalog, sent again by \
             the next delete, list or ingest",
            ids.len()
        );
    }
    Ok(failed)
}

/// `delete --cluster DIR ID...`.
pub(crate) fn delete(args: &DeleteArgs) -> anyhow::Result<Outcome> {
    let mut ids = Vec::with_capacity(args.ids.len());
    for text in &args.ids {
        let id: ImageId = text
            .parse()
            .map_err(|e: phr_sis::image_id::ParseImageIdError| UsageError(e.to_string()))?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let rt = runtime()?;
    let client = open_client(
        &rt,
        args.target.cluster.as_deref(),
        args.target.client.as_deref(),
    )?;
    let path = client.profile().raw.catalog.clone();
    let catalog = Catalog::load(&path)?;
    let mut all: BTreeSet<ImageId> = catalog.pending_ids();
    all.extend(ids.iter().copied());
    let all: Vec<ImageId> = all.into_iter().collect();
    let failed = send_deletes(&rt, &client, &all)?;
    for id in &ids {
        let from = catalog
            .path_of(*id)
            .map_or_else(String::new, |p| format!("  {}", p.display()));
        println!("deleted {id}{from}");
    }
    Ok(if failed.is_empty() {
        Outcome::Success
    } else {
        Outcome::PartialFailure
    })
}

/// `list --cluster DIR`.
pub(crate) fn list(args: &ListArgs) -> anyhow::Result<Outcome> {
    let rt = runtime()?;
    let client = open_client(
        &rt,
        args.target.cluster.as_deref(),
        args.target.client.as_deref(),
    )?;
    let owed = flush_pending(&rt, &client)?;
    let listing = rt.block_on(client.list(false));
    let catalog = Catalog::load(&client.profile().raw.catalog)?;
    let n = client.node_ids().len();
    let t = usize::from(client.threshold().t());
    let mut ids: BTreeSet<ImageId> = listing.holders.keys().copied().collect();
    ids.extend(catalog.images.keys().copied());
    // A deleted id still on a node that has not acknowledged the delete is not listed.
    ids.retain(|id| !catalog.pending_deletes.contains_key(id));
    let none = BTreeSet::new();
    if !args.json {
        println!("{:<16}  {:>5}  path", "id", "nodes");
    }
    for id in &ids {
        let nodes = listing.holders.get(id).unwrap_or(&none);
        let path = catalog.path_of(*id);
        if args.json {
            println!(
                "{}",
                serde_json::json!({
                    "id": id.to_string(),
                    "path": path.map(|p| p.display().to_string()),
                    "nodes": nodes.iter().map(|n| n.get()).collect::<Vec<_>>(),
                })
            );
        } else {
            let below = if nodes.len() < t {
                format!("  (on fewer than t = {t} nodes: it cannot be read)")
            } else {
                String::new()
            };
            println!(
                "{id}  {:>5}  {}{below}",
                format!("{}/{n}", nodes.len()),
                path.map_or_else(String::new, |p| p.display().to_string())
            );
        }
    }
    for (node, why) in &listing.failed {
        eprintln!("dealer-free-sis: node {node}: not listed: {why}");
    }
    eprintln!(
        "{} image(s); {} of {n} nodes listed",
        ids.len(),
        n - listing.failed.len()
    );
    Ok(if listing.failed.is_empty() && owed.is_empty() {
        Outcome::Success
    } else {
        Outcome::PartialFailure
    })
}
