//! Who may receive a resharing: the cluster's own nodes, with the keys they registered in the
//! DKG, except one node being replaced.
//!
//! What holds: a node holding a key share starts a resharing only if every receiver is a node
//! of its cluster (an id among the participants its key state pinned, or an id of `1..=n` that
//! took no part in the DKG and so has none pinned) and at most one receiver comes with keys
//! other than the ones pinned or with none pinned — the node being replaced or joining, whose
//! new keys it cannot know — and that one deals nothing. So no stranger, whoever asks, appears among the
//! receivers; the one receiver with new keys gets one share of a `t`-of-`n` sharing (`t ≥ 2`),
//! which alone reveals nothing of the key.

use std::collections::BTreeMap;

use dealer_free::identity::NodePublicKeys;
use phr_sis::NodeId;

use super::{NodeError, invalid};

/// Checks a resharing's `receivers` (and `dealers`) against the participants `registered`
/// this node's key state pinned.
///
/// # Errors
/// [`NodeError::Invalid`] naming the receiver that is no node of the cluster, the receivers
/// that come with new keys when more than one does, or a dealer among them.
pub(super) fn check_receivers(
    registered: &BTreeMap<NodeId, NodePublicKeys>,
    dealers: &BTreeMap<NodeId, NodePublicKeys>,
    receivers: &BTreeMap<NodeId, NodePublicKeys>,
    n: u8,
) -> Result<(), NodeError> {
    let mut renewed = Vec::new();
    for (id, keys) in receivers {
        match registered.get(id) {
            // A node of the cluster that was absent from the DKG joins like a replaced one.
            None if id.get() <= n => renewed.push(*id),
            None => {
                return Err(invalid(format!(
                    "receiver {id} is no node of this cluster (the DKG registered nodes {:?})",
                    registered.keys().map(|k| k.get()).collect::<Vec<_>>()
                )));
            }
            Some(pinned) if pinned != keys => renewed.push(*id),
            Some(_) => {}
        }
    }
    if renewed.len() > 1 {
        return Err(invalid(format!(
            "receivers {renewed:?} come with other keys than the DKG registered; only the one \
             node being replaced may"
        )));
    }
    if let Some(id) = renewed.first().filter(|id| dealers.contains_key(id)) {
        return Err(invalid(format!(
            "node {id} is listed as a dealer and as a receiver with new keys"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use dealer_free::identity::NodeKeys;

    use super::*;

    fn keys(n: u8) -> Result<BTreeMap<NodeId, NodePublicKeys>, phr_sis::ParamsError> {
        let mut rng = rand::rng();
        (1..=n)
            .map(|i| NodeId::new(i).map(|id| (id, NodeKeys::generate(id, &mut rng).public())))
            .collect()
    }

    #[test]
    fn only_the_replaced_node_may_come_with_new_keys() -> Result<(), Box<dyn std::error::Error>> {
        let registered = keys(5)?;
        let strangers = keys(5)?;
        let dealers: BTreeMap<_, _> = registered.iter().take(3).map(|(i, k)| (*i, *k)).collect();
        let id = NodeId::new;
        // The same committee: fine. One node (5, no dealer) with new keys: fine.
        check_receivers(&registered, &dealers, &registered, 5)?;
        let mut replaced = registered.clone();
        replaced.insert(id(5)?, strangers[&id(5)?]);
        check_receivers(&registered, &dealers, &replaced, 5)?;
        // Two with new keys: refused.
        let mut two = replaced.clone();
        two.insert(id(4)?, strangers[&id(4)?]);
        assert!(check_receivers(&registered, &dealers, &two, 5).is_err());
        // A dealer with new keys as receiver: refused.
        let mut dealer = registered.clone();
        dealer.insert(id(1)?, strangers[&id(1)?]);
        assert!(check_receivers(&registered, &dealers, &dealer, 5).is_err());
        // A receiver that is no node of the cluster: refused.
        let mut outsider = registered.clone();
        outsider.remove(&id(5)?);
        outsider.insert(id(6)?, strangers[&id(5)?]);
        assert!(check_receivers(&registered, &dealers, &outsider, 5).is_err());
        // Node 5 took no part in the DKG: it joins as the one new receiver, not beside another.
        let mut four = registered;
        four.remove(&id(5)?);
        check_receivers(&four, &dealers, &replaced, 5)?;
        assert!(check_receivers(&four, &dealers, &two, 5).is_err());
        Ok(())
    }
}
