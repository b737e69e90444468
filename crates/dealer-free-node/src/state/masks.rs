//! The mask service of a node: the checked mask dealings of the secure ranking (deal, check,
//! judge, release), each a step of [`dealer_free::mpc::masks::session`] whose messages the
//! client relays. The node keeps each session's state, refuses a session of another client,
//! and bounds the sessions and masks of every client and of all of them together
//! ([`crate::config::Limits`]) before it does any work.

#[allow(clippy::wildcard_imports)] // the handlers use the state's own types throughout
use super::*;

use dealer_free::mpc::masks::session::{
    self, Checked, Dealt, MaskOrder, SealedMaskDeal, SignedMaskCheck, SignedMaskCommitment,
};
use dealer_free::mpc::masks::{MaskKind, MaskPool, confirm};
use dealer_free::mpc::query::CHECK_MASKS;

/// One mask session: a checked dealing among one server set, then the pool it yields.
pub(super) struct MaskSession {
    created: Instant,
    /// The client that opened it: only it goes on with it.
    owner: String,
    pub(super) servers: Vec<NodeId>,
    count: u32,
    pub(super) phase: MaskPhase,
    /// The order dealt (a random order binds its image ids to the masks).
    pub(super) order: MaskOrder,
    /// What this node confirmed when it judged (`mpc::masks::confirm::digest`).
    pub(super) digest: [u8; 32],
    /// Every server confirmed the same order and dealers (`mpc::masks::confirm`).
    pub(super) confirmed: bool,
}

/// Where a mask session is.
pub(super) enum MaskPhase {
    /// Its slot is taken while this node deals (so concurrent orders cannot all do the work).
    Pending,
    /// Dealt: this node's own commitment and deal.
    Dealt(Box<Dealt>),
    /// Checked: every dealer's commitment and the deals this node received.
    Checked(Box<Checked>),
    /// Judged: the clean dealers' masks, each handed out once.
    Ready(MaskPool),
}

impl MaskSession {
    fn expired(&self) -> bool {
        let ttl = match self.phase {
            MaskPhase::Ready(_) => MASK_POOL_TTL,
            _ => MASK_SESSION_TTL,
        };
        self.created.elapsed() >= ttl
    }
}

/// Decodes each of `items` with `decode`, naming `what` in the error.
fn decode_all<T, E: std::fmt::Display>(
    items: &[Vec<u8>],
    what: &str,
    decode: impl Fn(&[u8]) -> Result<T, E>,
) -> Result<Vec<T>, NodeError> {
    items
        .iter()
        .map(|b| decode(b).map_err(|e| invalid(format!("{what}: {e}"))))
        .collect()
}

impl NodeState {
    /// The most masks one dealing may hold: one query of the most candidates, and its check.
    fn max_masks_per_dealing(&self) -> u32 {
        u32::try_from(self.limits.max_candidates.saturating_add(CHECK_MASKS)).unwrap_or(u32::MAX)
    }

    /// Whether `caller` may open mask session `session` of `count` masks: not dealt already,
    /// and room left for all clients and for this one (sessions and masks).
    fn may_open(
        &self,
        sessions: &HashMap<[u8; 32], MaskSession>,
        session: &[u8; 32],
        caller: &str,
        count: u32,
        servers: usize,
    ) -> Result<(), NodeError> {
        if sessions.contains_key(session) {
            return Err(NodeError::Conflict(
                "this mask session was dealt already".into(),
            ));
        }
        let l = &self.limits;
        if sessions.len() >= l.max_mask_sessions {
            return Err(NodeError::RateLimited(format!(
                "{} mask sessions are open on node {} (max_mask_sessions)",
                sessions.len(),
                self.id
            )));
        }
        // A session holds every dealer's points until it is judged: masks × servers.
        let points = |count: u32, servers: usize| u64::from(count) * servers as u64;
        let (mine, masks) = sessions
            .values()
            .filter(|s| s.owner == caller)
            .fold((0usize, 0u64), |(n, m), s| {
                (n + 1, m + points(s.count, s.servers.len()))
            });
        let count = points(count, servers);
        if mine >= l.max_mask_sessions_per_client {
            return Err(NodeError::RateLimited(format!(
                "client {caller} holds {mine} mask sessions on node {} \
                 (max_mask_sessions_per_client)",
                self.id
            )));
        }
        if masks + count > l.max_masks_per_client {
            return Err(NodeError::RateLimited(format!(
                "client {caller} would hold {} mask points on node {} (max_masks_per_client = {})",
                masks + count,
                self.id,
                l.max_masks_per_client
            )));
        }
        Ok(())
    }

    pub(super) fn mask_sessions(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, HashMap<[u8; 32], MaskSession>>, NodeError> {
        let mut sessions = self
            .masks
            .lock()
            .map_err(|_| NodeError::NotReady("the mask lock is poisoned".into()))?;
        sessions.retain(|_, s| !s.expired());
        Ok(sessions)
    }

    /// Confirms `state`'s pool once (`mpc::masks::confirm`): every server of its order must
    /// have signed the same order and dealers as this node, in `raw` (the relayed
    /// confirmations); until then the pool serves nothing.
    ///
    /// # Errors
    /// [`NodeError::Invalid`] for more confirmations than nodes or one that does not decode;
    /// [`NodeError::Search`] naming the server whose confirmation is missing, differs or is
    /// forged.
    pub(super) fn confirm_pool(
        &self,
        state: &mut MaskSession,
        raw: &[Vec<u8>],
        key: &ClusterKey,
    ) -> Result<(), NodeError> {
        if state.confirmed {
            return Ok(());
        }
        if raw.len() > usize::from(self.threshold.n()) {
            return Err(invalid(format!(
                "{} pool confirmations for at most {} servers",
                raw.len(),
                self.threshold.n()
            )));
        }
        let confirmations = decode_all(
            raw,
            "pool confirmation",
            confirm::SignedPoolConfirmation::from_bytes,
        )?;
        confirm::check_confirmations(
            &state.order,
            state.digest,
            self.id,
            &confirmations,
            &key.participants,
            &mut rand::rng(),
        )?;
        state.confirmed = true;
        Ok(())
    }

    /// Caller `caller`'s session `session`.
    pub(super) fn own_session<'a>(
        sessions: &'a mut HashMap<[u8; 32], MaskSession>,
        session: &[u8; 32],
        caller: &str,
    ) -> Result<&'a mut MaskSession, NodeError> {
        sessions
            .get_mut(session)
            .filter(|s| s.owner == caller)
            .ok_or_else(|| NodeError::NotReady("no such mask session (expired?)".into()))
    }

    /// Offline phase 1 of the secure ranking (or of the scrub's bit-share check): deals this
    /// node's sharings of the order's kind for its servers and masks; the commitment is
    /// signed, each other server's deal sealed for it (the relaying client reads neither).
    /// The session belongs to `caller`. Random sharings serve only the scrub, so only an
    /// admin (`admin`) orders them.
    ///
    /// # Errors
    /// [`NodeError::Invalid`] for a malformed or out-of-bounds order, or random sharings
    /// ordered by a caller that is not an admin; [`NodeError::Conflict`] for a session dealt
    /// already; [`NodeError::RateLimited`] past a session or mask cap.
    pub fn mask_deal(
        &self,
        caller: &str,
        admin: bool,
        req: &proto::MaskDealRequest,
    ) -> Result<proto::MaskDealReply, NodeError> {
        self.fresh(caller, req.meta.as_ref())?;
        if crate::failpoint::active("mask-deal-refused", self.id) {
            return Err(NodeError::Unavailable(
                "this node refuses mask dealings (failpoint)".into(),
            ));
        }
        let order =
            MaskOrder::from_bytes(&req.order).map_err(|e| invalid(format!("mask order: {e}")))?;
        if order.kind == MaskKind::Random && !admin {
            return Err(invalid(
                "random masks serve only the scrub's bit-share check, which needs the admin role",
            ));
        }
        let key = self.cluster_key()?;
        order.validate(
            self.id,
            self.threshold.t(),
            self.threshold.n(),
            self.max_masks_per_dealing(),
        )?;
        if let Some(s) = order
            .servers
            .iter()
            .find(|s| !key.participants.contains_key(s))
        {
            return Err(invalid(format!(
                "server {s} took no part in this cluster's key generation: no deal can be \
                 sealed for it"
            )));
        }
        // The slot is taken before any work is done, so that concurrent orders past a cap
        // are refused, not all dealt.
        {
            let mut sessions = self.mask_sessions()?;
            self.may_open(
                &sessions,
                &order.session,
                caller,
                order.count,
                order.servers.len(),
            )?;
            sessions.insert(
                order.session,
                MaskSession {
                    created: Instant::now(),
                    owner: caller.to_owned(),
                    servers: order.servers.clone(),
                    count: order.count,
                    phase: MaskPhase::Pending,
                    order: order.clone(),
                    digest: [0; 32],
                    confirmed: false,
                },
            );
        }
        let dealt = self.deal_order(&key, &order);
        let mut sessions = self.mask_sessions()?;
        let (dealt, commitment, deals) = match dealt {
            Ok(d) => d,
            Err(e) => {
                sessions.remove(&order.session);
                return Err(e);
            }
        };
        let Some(state) = sessions
            .get_mut(&order.session)
            .filter(|s| s.owner == caller && matches!(s.phase, MaskPhase::Pending))
        else {
            return Err(NodeError::Conflict(
                "this mask session ended while it was dealt".into(),
            ));
        };
        state.phase = MaskPhase::Dealt(Box::new(dealt));
        Ok(proto::MaskDealReply {
            commitment: commitment.to_bytes(),
            deals: deals.iter().map(SealedMaskDeal::to_bytes).collect(),
        })
    }

    /// This node's dealing of `order`, signed and sealed (a failpoint may make it dishonest).
    fn deal_order(
        &self,
        key: &ClusterKey,
        order: &MaskOrder,
    ) -> Result<(Dealt, SignedMaskCommitment, Vec<SealedMaskDeal>), NodeError> {
        let mut rng = rand::rng();
        let secrets = self.read_secrets()?;
        if crate::failpoint::active("mask-off-points", self.id) {
            let (c, d) = off_points_deal(order, self.id, self.threshold.t(), &mut rng)?;
            Ok(session::seal_dealing(
                order,
                self.threshold.t(),
                &secrets.keys,
                &key.participants,
                c,
                d,
                &mut rng,
            )?)
        } else {
            Ok(session::deal(
                order,
                self.threshold.t(),
                &secrets.keys,
                &key.participants,
                &mut rng,
            )?)
        }
    }

    /// Offline phase 2: checks every deal addressed to this node against its dealer's signed
    /// commitment and returns the signed check values.
    ///
    /// # Errors
    /// [`NodeError::NotReady`] for an unknown session, [`NodeError::Conflict`] for one
    /// checked already, [`NodeError::Invalid`] for more messages than servers, a malformed
    /// one, and [`NodeError::Search`] naming the dealer of a forged or misaddressed one.
    pub fn mask_check(
        &self,
        caller: &str,
        req: &proto::MaskCheckRequest,
    ) -> Result<proto::MaskCheckReply, NodeError> {
        self.fresh(caller, req.meta.as_ref())?;
        let key = self.cluster_key()?;
        let session = array32(&req.session, "session")?;
        // The state is copied out and written back at the end: the work between (opening and
        // verifying the deals) runs without the lock, so other sessions go on meanwhile.
        let dealt = {
            let mut sessions = self.mask_sessions()?;
            let state = Self::own_session(&mut sessions, &session, caller)?;
            let dealt = match &state.phase {
                MaskPhase::Dealt(dealt) => dealt,
                MaskPhase::Pending => {
                    return Err(NodeError::NotReady("the masks are being dealt".into()));
                }
                _ => {
                    return Err(NodeError::Conflict(
                        "this mask session was checked already".into(),
                    ));
                }
            };
            dealt.as_ref().clone()
        };
        let servers = dealt.order().servers.len();
        if req.commitments.len() > servers || req.deals.len() > servers {
            return Err(invalid(format!(
                "{} commitments and {} deals for {servers} servers",
                req.commitments.len(),
                req.deals.len(),
            )));
        }
        let commitments = decode_all(
            &req.commitments,
            "mask commitment",
            SignedMaskCommitment::from_bytes,
        )?;
        let deals = decode_all(&req.deals, "sealed mask deal", SealedMaskDeal::from_bytes)?;
        let (checked, checks) = {
            let secrets = self.read_secrets()?;
            dealt.check(
                &commitments,
                &deals,
                &secrets.keys,
                &key.participants,
                &mut rand::rng(),
            )?
        };
        let mut sessions = self.mask_sessions()?;
        let state = Self::own_session(&mut sessions, &session, caller)?;
        if !matches!(state.phase, MaskPhase::Dealt(_)) {
            return Err(NodeError::Conflict(
                "this mask session was checked by another request".into(),
            ));
        }
        state.phase = MaskPhase::Checked(Box::new(checked));
        Ok(proto::MaskCheckReply {
            checks: checks.iter().map(SignedMaskCheck::to_bytes).collect(),
        })
    }

    /// Offline phase 3: judges every dealer on the servers' signed checks; the clean dealers'
    /// masks become the session's pool, which then serves queries until it is used up or
    /// [`MASK_POOL_TTL`] has passed. Every server judges the same signed checks, so all reach
    /// the same verdicts.
    ///
    /// # Errors
    /// [`NodeError::NotReady`] for an unknown or unchecked session, [`NodeError::Conflict`]
    /// for a session judged already, [`NodeError::Invalid`] for more checks than `servers²`
    /// or a malformed one, [`NodeError::Search`] naming a forged check's checker or saying
    /// that fewer than `t` dealers are clean (the session stays as it was).
    pub fn mask_judge(
        &self,
        caller: &str,
        req: &proto::MaskJudgeRequest,
    ) -> Result<proto::MaskJudgeReply, NodeError> {
        self.fresh(caller, req.meta.as_ref())?;
        let key = self.cluster_key()?;
        let session = array32(&req.session, "session")?;
        let checked = {
            let mut sessions = self.mask_sessions()?;
            let state = Self::own_session(&mut sessions, &session, caller)?;
            match &state.phase {
                MaskPhase::Checked(c) => c.as_ref().clone(),
                MaskPhase::Pending | MaskPhase::Dealt(_) => {
                    return Err(NodeError::NotReady("the masks were not checked yet".into()));
                }
                MaskPhase::Ready(_) => {
                    return Err(NodeError::Conflict(
                        "this mask session was judged already".into(),
                    ));
                }
            }
        };
        let servers = checked.order().servers.len();
        if req.checks.len() > servers * servers {
            return Err(invalid(format!(
                "{} checks for {servers} servers",
                req.checks.len()
            )));
        }
        let checks = decode_all(&req.checks, "mask check", SignedMaskCheck::from_bytes)?;
        let count = checked.order().count;
        let order = checked.order().clone();
        let judged = checked.judge(&checks, &key.participants, &mut rand::rng())?;
        let confirmation = confirm::confirm(
            &order,
            judged.digest,
            &self.read_secrets()?.keys,
            &mut rand::rng(),
        );
        let mut sessions = self.mask_sessions()?;
        let state = Self::own_session(&mut sessions, &session, caller)?;
        if !matches!(state.phase, MaskPhase::Checked(_)) {
            return Err(NodeError::Conflict(
                "this mask session was judged by another request".into(),
            ));
        }
        state.phase = MaskPhase::Ready(judged.pool);
        state.digest = judged.digest;
        Ok(proto::MaskJudgeReply {
            accepted: judged.used.iter().map(|d| d.get()).collect(),
            masks: count,
            confirmation: confirmation.to_bytes(),
        })
    }

    /// Drops the caller's mask session `session` in whatever phase it is (its masks are
    /// zeroized): a pool the client will not use again no longer takes room.
    ///
    /// # Errors
    /// [`NodeError::Invalid`] for a session that is not 32 bytes; replays.
    pub fn mask_release(
        &self,
        caller: &str,
        req: &proto::MaskReleaseRequest,
    ) -> Result<proto::MaskReleaseReply, NodeError> {
        self.fresh(caller, req.meta.as_ref())?;
        let session = array32(&req.session, "session")?;
        let mut sessions = self.mask_sessions()?;
        let released = Self::own_session(&mut sessions, &session, caller).is_ok();
        if released {
            sessions.remove(&session);
        }
        Ok(proto::MaskReleaseReply { released })
    }
}

/// The `mask-off-points` failpoint: an honest dealing whose points for the highest other
/// server are all shifted by one random value (committed to, so that server's digest check
/// passes and only the judge's codeword test can see it).
fn off_points_deal(
    order: &MaskOrder,
    dealer: NodeId,
    t: u8,
    rng: &mut (impl rand::CryptoRng + ?Sized),
) -> Result<
    (
        dealer_free::mpc::masks::MaskCommitment,
        Vec<dealer_free::mpc::masks::MaskDeal>,
    ),
    NodeError,
> {
    use dealer_free::mpc::masks::{CHECKS, deal_from_values, deal_sharings};
    let mut points = deal_sharings(
        &order.servers,
        order.kind,
        t,
        order.count as usize + CHECKS,
        rng,
    );
    let victim = order.servers.iter().rev().find(|s| **s != dealer).copied();
    let delta = phr_sis::fp61::Fp61::random(rng);
    if let Some(v) = victim.and_then(|v| points.get_mut(&v)) {
        for p in v.iter_mut() {
            *p += delta;
        }
    }
    deal_from_values(
        order.session,
        order.kind,
        dealer,
        points.into_iter().collect(),
        rng,
    )
    .map_err(|e| NodeError::Search(e.into()))
}
