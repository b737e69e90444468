//! The node's side of the scrub's masked bit-share check
//! ([`dealer_free::mpc::share_check`]): for each image of the admin's order, this node's
//! stored bit shares combined and masked by one mask of the caller's own random-mask pool.
//!
//! What holds: the pool must be the caller's, judged, and of random sharings (a search pool
//! is refused before any mask is taken); each mask is handed out once, so an order cannot be
//! answered twice with the same masks; the bit shares are read from the store (not from the
//! search's cache), so the check sees what is on disk. A record that fails its integrity tag
//! is answered as not held: the scrub's own check names it.

#[allow(clippy::wildcard_imports)] // the handlers use the state's own types throughout
use super::*;

use dealer_free::mpc::share_check::{self, ShareCheckOrder};
use phr_sis::store::StoreError;

use super::masks::MaskPhase;

impl NodeState {
    /// Answers a bit-share check order (admin role) from the caller's random-mask pool.
    ///
    /// # Errors
    /// [`NodeError::Invalid`] for a malformed order or more than `max_batch` images;
    /// [`NodeError::NotReady`] for no such pool of the caller's, or one not judged yet;
    /// [`NodeError::Search`] for a search pool or masks handed out already;
    /// [`NodeError::Unavailable`] when the store fails.
    pub fn check_bit_shares(
        &self,
        caller: &str,
        req: &proto::CheckBitSharesRequest,
    ) -> Result<proto::CheckBitSharesReply, NodeError> {
        self.fresh(caller, req.meta.as_ref())?;
        let order = ShareCheckOrder::from_bytes(&req.order)
            .map_err(|e| invalid(format!("share check order: {e}")))?;
        let max = self.limits.max_batch;
        if order.ids.len() > max {
            return Err(invalid(format!(
                "a share check holds 1 to {max} images, {} asked",
                order.ids.len()
            )));
        }
        let store = self.store()?;
        let mut stored = BTreeMap::new();
        for id in &order.ids {
            let shares = match store.get_bit_shares(*id) {
                Ok(bytes) => bytes.and_then(|b| HashBitShares::from_bytes(&b)),
                Err(
                    StoreError::Corrupt { .. }
                    | StoreError::Incomplete { .. }
                    | StoreError::UnknownRecordVersion { .. },
                ) => None,
                Err(e) => return Err(self.disk.failed(e)),
            };
            if let Some(s) = shares {
                stored.insert(*id, s);
            }
        }
        let key = self.cluster_key()?;
        let answer = {
            let mut sessions = self.mask_sessions()?;
            let state = Self::own_session(&mut sessions, &order.mask_session, caller)?;
            if !matches!(state.phase, MaskPhase::Ready(_)) {
                return Err(NodeError::NotReady("the masks were not judged yet".into()));
            }
            self.confirm_pool(state, &req.confirmations, &key)?;
            let first = order.first_mask as usize;
            let bound = first
                .checked_add(order.ids.len())
                .and_then(|end| state.order.ids.get(first..end));
            if bound != Some(order.ids.as_slice()) {
                return Err(invalid(
                    "these images are not the ones the pool's dealing bound to that range",
                ));
            }
            let MaskPhase::Ready(pool) = &mut state.phase else {
                return Err(NodeError::NotReady("the masks were not judged yet".into()));
            };
            let answer = share_check::answer(&order, self.id, pool, |id| stored.remove(&id));
            if pool.is_empty() {
                sessions.remove(&order.mask_session);
            }
            answer.map_err(|e| NodeError::Search(e.into()))?
        };
        self.log(
            &format!(
                "check-bit-shares caller={caller} session={} first_mask={} images={} ids={}",
                crate::hex(&order.mask_session),
                order.first_mask,
                order.ids.len(),
                catalog::hex_ids(&order.ids)
            ),
            false,
        )?;
        Ok(proto::CheckBitSharesReply {
            answer: answer.to_bytes(),
        })
    }
}
