//! The scrub's masked check of the bit shares, driven by the admin's client: the nodes deal
//! random masks among themselves (a checked dealing of `MaskKind::Random`, relayed as the
//! search's masks are), then answer orders of images with masked combinations of their bit
//! shares, which the client decodes ([`dealer_free::mpc::share_check`]).
//!
//! What holds: the client sees only values masked by sharings of secrets nobody knows, so
//! it learns whether each image's shares lie on one polynomial and which nodes are off it,
//! nothing about a bit. Every answer is checked on arrival: it must decode, name the node it
//! came from and belong to the order; a node whose answer fails is left out of that order
//! and named. Each order uses a fresh range of its pool; the pools are released at the end.

use std::collections::{BTreeMap, BTreeSet};

use dealer_free::mpc::share_check::{self, ShareCheckAnswer, ShareCheckOrder, ShareFinding};
use phr_sis::{ImageId, NodeId};

use super::{ClientError, ClusterClient, short};
use crate::proto;

/// Images per order: within a node's smallest sensible `max_batch`.
pub const SHARE_CHECK_ORDER: usize = 64;
/// Masks per dealing (one per image); a larger collection takes several dealings.
pub const SHARE_CHECK_DEALING: usize = 4096;

/// What the bit-share check found.
#[derive(Debug, Clone, Default)]
pub struct ShareCheckReport {
    /// The servers that took part.
    pub servers: Vec<NodeId>,
    /// Images whose bit shares were judged (held by at least `t + 1` of the servers).
    pub checked: u64,
    /// Each (node, image) whose bit shares are off the codeword the other holders agree on.
    pub off_codeword: Vec<(NodeId, ImageId)>,
    /// Images whose values are no codeword: too many holders off to name any.
    pub undecided: Vec<(ImageId, Vec<NodeId>)>,
    /// Images held by fewer than `t + 1` servers: not checkable.
    pub too_few_holders: Vec<ImageId>,
    /// Nodes left out of some order, and why.
    pub failed: BTreeMap<NodeId, String>,
    /// Why the check did not run or stopped, if it did.
    pub stopped: Option<String>,
    /// How long it took, dealings included.
    pub elapsed: std::time::Duration,
}

/// The node a failed dealing was unable to serve, if one: unreachable, unavailable, past
/// its deadline, or not the node pinned. A refusal of another node's message (a bad
/// commitment, deal or check) names no node here, since the refusing node may be the honest
/// one: the check then stops with the reason rather than leave an honest node out.
fn failing_node(e: &ClientError) -> Option<NodeId> {
    match e {
        ClientError::Refused { node, status }
            if matches!(
                status.code(),
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
            ) =>
        {
            Some(*node)
        }
        ClientError::CertificateMismatch { node, .. } | ClientError::Address { node, .. } => {
            Some(*node)
        }
        _ => None,
    }
}

impl ClusterClient {
    /// Checks the bit shares of the images in `holders` (each with the servers that list
    /// it) among `servers` (at least `t + 1`).
    pub(crate) async fn check_bit_shares(
        &self,
        holders: &BTreeMap<ImageId, BTreeSet<NodeId>>,
        servers: &[NodeId],
    ) -> ShareCheckReport {
        let start = std::time::Instant::now();
        let mut report = self.check_bit_shares_untimed(holders, servers).await;
        report.elapsed = start.elapsed();
        report
    }

    async fn check_bit_shares_untimed(
        &self,
        holders: &BTreeMap<ImageId, BTreeSet<NodeId>>,
        servers: &[NodeId],
    ) -> ShareCheckReport {
        let t = self.threshold().t();
        let mut report = ShareCheckReport {
            servers: servers.to_vec(),
            ..ShareCheckReport::default()
        };
        let needed = usize::from(t) + 1;
        if servers.len() < needed {
            report.stopped = Some(format!(
                "the bit-share check needs t + 1 = {needed} nodes, {} answered",
                servers.len()
            ));
            return report;
        }
        let mut ids = Vec::new();
        for (id, h) in holders {
            if h.iter().filter(|n| servers.contains(n)).count() >= needed {
                ids.push(*id);
            } else {
                report.too_few_holders.push(*id);
            }
        }
        let mut servers = servers.to_vec();
        for chunk in ids.chunks(SHARE_CHECK_DEALING) {
            // A node that fails the dealing is left out and the dealing run again among the
            // others, while at least t + 1 are left: one node cannot stop the check.
            let (session, confirmations) = loop {
                match self.deal_random_masks(&servers, chunk.to_vec()).await {
                    Ok((session, dealt)) => break (session, dealt.confirmations),
                    Err(e) => {
                        let culprit = failing_node(&e).filter(|n| servers.contains(n));
                        match culprit {
                            Some(node) if servers.len() > needed => {
                                report
                                    .failed
                                    .insert(node, format!("the random masks: {}", short(&e)));
                                servers.retain(|n| *n != node);
                            }
                            _ => {
                                report.stopped = Some(format!("the random masks: {}", short(&e)));
                                report.servers = servers;
                                return report;
                            }
                        }
                    }
                }
            };
            let mut first = 0u32;
            for ids in chunk.chunks(SHARE_CHECK_ORDER) {
                let order = ShareCheckOrder {
                    mask_session: session,
                    first_mask: first,
                    ids: ids.to_vec(),
                };
                first += u32::try_from(ids.len()).unwrap_or(u32::MAX);
                if let Err(e) = self
                    .check_order(&order, &confirmations, &servers, t, &mut report)
                    .await
                {
                    report.stopped = Some(short(&e));
                    self.release_pool(session, &servers);
                    report.servers = servers;
                    return report;
                }
            }
            self.release_pool(session, &servers);
        }
        report.off_codeword.sort_unstable();
        report.servers = servers;
        report
    }

    /// One order: every server's answer, checked, then judged.
    async fn check_order(
        &self,
        order: &ShareCheckOrder,
        confirmations: &[Vec<u8>],
        servers: &[NodeId],
        t: u8,
        report: &mut ShareCheckReport,
    ) -> Result<(), ClientError> {
        let bytes = std::sync::Arc::new(order.to_bytes());
        // The confirmations go with the pool's first order; a node holds it confirmed after.
        let confirmations = std::sync::Arc::new(if order.first_mask == 0 {
            confirmations.to_vec()
        } else {
            Vec::new()
        });
        let replies = self
            .call_all(servers, move |_, m| proto::CheckBitSharesRequest {
                meta: Some(m),
                order: bytes.as_ref().clone(),
                confirmations: confirmations.as_ref().clone(),
            })
            .await;
        let mut answers = Vec::with_capacity(servers.len());
        for (node, reply) in replies {
            let answer = reply.map_err(|e| short(&e)).and_then(|r| {
                let a = ShareCheckAnswer::from_bytes(&r.answer).map_err(|e| e.to_string())?;
                if a.node != node
                    || a.mask_session != order.mask_session
                    || a.first_mask != order.first_mask
                    || a.values.len() != order.ids.len()
                {
                    return Err("an answer that is not its own to this order".to_owned());
                }
                Ok(a)
            });
            match answer {
                Ok(a) => answers.push(a),
                Err(why) => {
                    report.failed.entry(node).or_insert(why);
                }
            }
        }
        let findings = share_check::judge(order, t, &answers)
            .map_err(|e| ClientError::Protocol(format!("the bit-share check: {e}")))?;
        let mut unjudged: BTreeSet<ImageId> = BTreeSet::new();
        for f in findings {
            match f {
                ShareFinding::OffCodeword { id, nodes } => {
                    report
                        .off_codeword
                        .extend(nodes.into_iter().map(|n| (n, id)));
                }
                ShareFinding::Undecided { id, holders } => report.undecided.push((id, holders)),
                ShareFinding::TooFewHolders { id, .. } => {
                    unjudged.insert(id);
                    report.too_few_holders.push(id);
                }
                _ => {}
            }
        }
        report.checked += (order.ids.len() - unjudged.len()) as u64;
        Ok(())
    }
}
