//! The secure-ranking service of a node: checked mask dealings (deal, check, judge, release)
//! and the distance shares of a query, with the signed commitments and checks the servers
//! exchange through the client.

#[allow(clippy::wildcard_imports)] // the handlers use the state's own types throughout
use super::*;

impl NodeState {
    fn participant(&self, key: &ClusterKey, id: NodeId) -> Result<NodePublicKeys, NodeError> {
        key.participants
            .get(&id)
            .copied()
            .ok_or_else(|| invalid(format!("node {id} is no participant of this cluster")))
    }

    fn servers_of(&self, bytes: &[u8]) -> Result<Vec<NodeId>, NodeError> {
        let mut servers: Vec<NodeId> = bytes
            .iter()
            .map(|b| {
                NodeId::new(*b)
                    .ok()
                    .filter(|id| id.get() <= self.threshold.n())
                    .ok_or_else(|| {
                        invalid(format!("server {b} is not in 1 to {}", self.threshold.n()))
                    })
            })
            .collect::<Result<_, _>>()?;
        servers.sort_unstable();
        servers.dedup();
        if servers.len() != bytes.len() {
            return Err(invalid("a server is listed twice"));
        }
        if servers.len() < usize::from(self.threshold.search_quorum()) {
            return Err(invalid(format!(
                "secure ranking needs 2t − 1 = {} servers, {} given",
                self.threshold.search_quorum(),
                servers.len()
            )));
        }
        if !servers.contains(&self.id) {
            return Err(invalid(format!(
                "node {} is not among the servers",
                self.id
            )));
        }
        Ok(servers)
    }

    /// The checked bit shares of those `ids` this node holds: from memory, the others read
    /// from the store in one transaction (and kept in memory while there is room).
    ///
    /// # Errors
    /// [`NodeError::Corrupt`] for stored bit shares that fail their check or do not decode.
    fn bit_shares_of(
        &self,
        ids: &[ImageId],
    ) -> Result<BTreeMap<ImageId, HashBitShares>, NodeError> {
        let mut found = BTreeMap::new();
        let mut missing = Vec::new();
        {
            let cache = self
                .bit_shares
                .read()
                .map_err(|_| NodeError::NotReady("the bit-share cache lock is poisoned".into()))?;
            for id in ids {
                match cache.get(id) {
                    Some(shares) => {
                        found.insert(*id, shares.clone());
                    }
                    None => missing.push(*id),
                }
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let read = self.store.get_bit_shares_many(&missing)?;
        let mut fresh = Vec::new();
        for (id, bytes) in missing.iter().zip(read) {
            if let Some(bytes) = bytes {
                let shares = HashBitShares::from_bytes(&bytes)
                    .ok_or_else(|| NodeError::Corrupt(format!("the bit shares of image {id}")))?;
                fresh.push((*id, shares.clone()));
                found.insert(*id, shares);
            }
        }
        if let Ok(mut cache) = self.bit_shares.write() {
            let room = self.limits.bit_share_cache.saturating_sub(cache.len());
            cache.extend(fresh.into_iter().take(room));
        }
        Ok(found)
    }

    /// Whether a mask session `session` may be opened: not dealt already, and room left.
    fn may_open(
        &self,
        sessions: &HashMap<[u8; 32], MaskSession>,
        session: &[u8; 32],
    ) -> Result<(), NodeError> {
        if sessions.contains_key(session) {
            return Err(NodeError::Conflict(
                "this mask session was dealt already".into(),
            ));
        }
        if sessions.len() >= MAX_MASK_SESSIONS {
            return Err(NodeError::RateLimited(format!(
                "{MAX_MASK_SESSIONS} secure rankings are open on node {}",
                self.id
            )));
        }
        Ok(())
    }

    fn mask_sessions(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, HashMap<[u8; 32], MaskSession>>, NodeError> {
        let mut sessions = self
            .masks
            .lock()
            .map_err(|_| NodeError::NotReady("the mask lock is poisoned".into()))?;
        sessions.retain(|_, s| !s.expired());
        Ok(sessions)
    }

    /// Caller `caller`'s session `session`.
    fn own_session<'a>(
        sessions: &'a mut HashMap<[u8; 32], MaskSession>,
        session: &[u8; 32],
        caller: &str,
    ) -> Result<&'a mut MaskSession, NodeError> {
        sessions
            .get_mut(session)
            .filter(|s| s.owner == caller)
            .ok_or_else(|| NodeError::NotReady("no such mask session (expired?)".into()))
    }

    /// Offline phase 1 of the secure ranking: deals this node's zero-sharings for the servers
    /// and `count` masks (one per candidate of the queries the pool will serve); the
    /// commitment is signed, each other server's deal sealed for it (the relaying client
    /// reads neither). The session belongs to `caller`.
    ///
    /// # Errors
    /// [`NodeError::Invalid`] for bad servers, count or session; [`NodeError::Conflict`] for
    /// a session already dealt; [`NodeError::RateLimited`] with too many open sessions.
    pub fn mask_deal(
        &self,
        caller: &str,
        req: &proto::MaskDealRequest,
    ) -> Result<proto::MaskDealReply, NodeError> {
        self.fresh(req.meta.as_ref())?;
        let key = self.cluster_key()?;
        let session = array32(&req.session, "session")?;
        let servers = self.servers_of(&req.servers)?;
        let count = req.count;
        if count == 0 || count as usize > self.limits.max_candidates {
            return Err(invalid(format!(
                "{count} masks, 1 to {} per dealing",
                self.limits.max_candidates
            )));
        }
        // Refused before any work is done (and checked again when the session is kept).
        self.may_open(&*self.mask_sessions()?, &session)?;
        let mut rng = rand::rng();
        let (commitment, deals) = if crate::failpoint::active("mask-off-points", self.id) {
            off_points_deal(session, self.id, &servers, self.threshold.t(), count, &mut rng)
        } else {
            deal_checked(
                session,
                self.id,
                &servers,
                self.threshold.t(),
                count as usize,
                &mut rng,
            )
        }
        .map_err(|e| invalid(e.to_string()))?;
        let secrets = self.read_secrets()?;
        let commitment_bytes = commitment.to_bytes();
        let signature = secrets
            .keys
            .sign(&signed(COMMITMENT_DOMAIN, &commitment_bytes), &mut rng);
        let mut sealed = Vec::with_capacity(deals.len());
        let mut own = Vec::new();
        for deal in deals {
            if deal.recipient() == self.id {
                own.push(deal);
                continue;
            }
            let to = self.participant(&key, deal.recipient())?;
            let plain: Zeroizing<Vec<u8>> = deal.to_bytes();
            sealed.push(proto::SealedDeal {
                dealer: u32::from(self.id.get()),
                recipient: u32::from(deal.recipient().get()),
                sealed: secrets.keys.seal(
                    deal.recipient(),
                    &to.encryption,
                    &session,
                    MASK_DEAL_LABEL,
                    &commitment_bytes,
                    &plain,
                ),
            });
        }
        drop(secrets);
        let mut sessions = self.mask_sessions()?;
        self.may_open(&sessions, &session)?;
        let mut commitments = BTreeMap::new();
        commitments.insert(self.id, commitment);
        sessions.insert(
            session,
            MaskSession {
                created: Instant::now(),
                owner: caller.to_owned(),
                servers,
                count,
                phase: MaskPhase::Dealt(Dealing {
                    commitments,
                    deals: own,
                }),
            },
        );
        Ok(proto::MaskDealReply {
            commitment: Some(proto::SignedCommitment {
                dealer: u32::from(self.id.get()),
                commitment: commitment_bytes,
                signature: signature.to_bytes().to_vec(),
            }),
            deals: sealed,
        })
    }

    /// Offline phase 2: checks every deal addressed to this node against its dealer's signed
    /// commitment and returns the signed check values.
    ///
    /// # Errors
    /// [`NodeError::NotReady`] for an unknown session, [`NodeError::Invalid`] for a bad
    /// signature, a commitment of another session, or a deal that does not open.
    pub fn mask_check(
        &self,
        caller: &str,
        req: &proto::MaskCheckRequest,
    ) -> Result<proto::MaskCheckReply, NodeError> {
        self.fresh(req.meta.as_ref())?;
        let key = self.cluster_key()?;
        let session = array32(&req.session, "session")?;
        // The session is read here and written back at the end: the work between (opening and
        // verifying the deals) runs without the lock, so other sessions go on meanwhile.
        let (servers, count, own_commitments, own_deals) = {
            let mut sessions = self.mask_sessions()?;
            let state = Self::own_session(&mut sessions, &session, caller)?;
            let MaskPhase::Dealt(dealt) = &state.phase else {
                return Err(NodeError::Conflict(
                    "this mask session was checked already".into(),
                ));
            };
            (
                state.servers.clone(),
                state.count,
                dealt.commitments.clone(),
                dealt.deals.clone(),
            )
        };
        if req.commitments.len() > servers.len() || req.deals.len() > servers.len() {
            return Err(invalid(format!(
                "{} commitments and {} deals for {} servers",
                req.commitments.len(),
                req.deals.len(),
                servers.len()
            )));
        }
        let mut commitments = own_commitments;
        for c in &req.commitments {
            let dealer = node_id(c.dealer, "dealer")?;
            if !servers.contains(&dealer) {
                return Err(invalid(format!(
                    "dealer {dealer} is not a server of this ranking"
                )));
            }
            let keys = self.participant(&key, dealer)?;
            let sig = signature(&c.signature)?;
            if !keys
                .signing
                .verify(&signed(COMMITMENT_DOMAIN, &c.commitment), &sig)
            {
                return Err(invalid(format!(
                    "dealer {dealer}'s commitment is not signed by it"
                )));
            }
            let commitment = MaskCommitment::from_bytes(&c.commitment)
                .map_err(|e| invalid(format!("dealer {dealer}'s commitment: {e}")))?;
            if commitment.session() != session
                || commitment.dealer() != dealer
                || commitment.servers() != servers.as_slice()
                || commitment.count() != count
            {
                return Err(invalid(format!(
                    "dealer {dealer}'s commitment is for another session, dealer, servers or count"
                )));
            }
            if dealer == self.id {
                if commitments.get(&dealer) != Some(&commitment) {
                    return Err(invalid("this node's own commitment was changed"));
                }
                continue;
            }
            commitments.insert(dealer, commitment);
        }
        let secrets = self.read_secrets()?;
        let mut deals = own_deals;
        for d in &req.deals {
            let dealer = node_id(d.dealer, "dealer")?;
            if d.recipient != u32::from(self.id.get()) || dealer == self.id {
                continue;
            }
            let Some(commitment) = commitments.get(&dealer) else {
                return Err(invalid(format!(
                    "a deal from {dealer} without its commitment"
                )));
            };
            let keys = self.participant(&key, dealer)?;
            let plain = secrets
                .keys
                .open(
                    dealer,
                    &keys.encryption,
                    &session,
                    MASK_DEAL_LABEL,
                    &commitment.to_bytes(),
                    &d.sealed,
                )
                .map_err(|_| invalid(format!("the deal from {dealer} does not open")))?;
            let deal = MaskDeal::from_bytes(&plain)
                .map_err(|e| invalid(format!("the deal from {dealer}: {e}")))?;
            if deal.dealer() != dealer || deal.recipient() != self.id || deal.session() != session {
                return Err(invalid(format!(
                    "the deal from {dealer} is addressed otherwise"
                )));
            }
            if !deals.iter().any(|x| x.dealer() == dealer) {
                deals.push(deal);
            }
        }
        let mut rng = rand::rng();
        let mut checks = Vec::with_capacity(deals.len());
        for deal in &deals {
            let Some(commitment) = commitments.get(&deal.dealer()) else {
                continue;
            };
            // A deal that fails its commitment gets no check: the dealer is judged on the
            // others' checks (and named by them).
            if let Ok(check) = deal.verify(commitment) {
                let bytes = check.to_bytes();
                let sig = secrets.keys.sign(&signed(CHECK_DOMAIN, &bytes), &mut rng);
                checks.push(proto::SignedCheck {
                    checker: u32::from(self.id.get()),
                    check: bytes,
                    signature: sig.to_bytes().to_vec(),
                });
            }
        }
        drop(secrets);
        let mut sessions = self.mask_sessions()?;
        let state = Self::own_session(&mut sessions, &session, caller)?;
        if !matches!(state.phase, MaskPhase::Dealt(_)) {
            return Err(NodeError::Conflict(
                "this mask session was checked by another request".into(),
            ));
        }
        state.phase = MaskPhase::Checked(Dealing { commitments, deals });
        Ok(proto::MaskCheckReply { checks })
    }

    /// Offline phase 3: judges every dealer on the servers' signed checks; the accepted
    /// dealers' masks become the session's pool, which then serves distance requests until
    /// it is used up or [`MASK_POOL_TTL`] has passed. Every server judges the same broadcast
    /// checks, so all reach the same verdicts.
    ///
    /// # Errors
    /// [`NodeError::NotReady`] for an unknown or unchecked session or fewer than `t`
    /// accepted dealers, [`NodeError::Conflict`] for a session judged already,
    /// [`NodeError::Invalid`] for bad checks (the session stays as it was).
    pub fn mask_judge(
        &self,
        caller: &str,
        req: &proto::MaskJudgeRequest,
    ) -> Result<proto::MaskJudgeReply, NodeError> {
        self.fresh(req.meta.as_ref())?;
        let key = self.cluster_key()?;
        let session = array32(&req.session, "session")?;
        let (servers, commitments) = {
            let mut sessions = self.mask_sessions()?;
            let state = Self::own_session(&mut sessions, &session, caller)?;
            match &state.phase {
                MaskPhase::Checked(d) => (state.servers.clone(), d.commitments.clone()),
                MaskPhase::Dealt(_) => {
                    return Err(NodeError::NotReady("the masks were not checked yet".into()));
                }
                MaskPhase::Ready(_) => {
                    return Err(NodeError::Conflict(
                        "this mask session was judged already".into(),
                    ));
                }
            }
        };
        if req.checks.len() > servers.len() * servers.len() {
            return Err(invalid(format!(
                "{} checks for {} servers",
                req.checks.len(),
                servers.len()
            )));
        }
        // Every check's signature, verified in one batch (a failing batch names the checker).
        let mut signed_checks = Vec::with_capacity(req.checks.len());
        for c in &req.checks {
            let checker = node_id(c.checker, "checker")?;
            if !servers.contains(&checker) {
                return Err(invalid(format!(
                    "checker {checker} is not a server of this ranking"
                )));
            }
            let keys = self.participant(&key, checker)?;
            signed_checks.push((
                checker,
                keys,
                signed(CHECK_DOMAIN, &c.check),
                signature(&c.signature)?,
            ));
        }
        let items: Vec<_> = signed_checks
            .iter()
            .map(|(_, keys, message, sig)| (&keys.signing, message.as_slice(), sig))
            .collect();
        if let Err(bad) = verify_batch_vartime(&items, &mut rand::rng()) {
            let checker = bad
                .first()
                .and_then(|i| signed_checks.get(*i))
                .map_or(0, |c| c.0.get());
            return Err(invalid(format!("a check is not signed by node {checker}")));
        }
        let mut by_dealer: BTreeMap<NodeId, Vec<MaskCheck>> = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for (c, (checker, ..)) in req.checks.iter().zip(&signed_checks) {
            let checker = *checker;
            let check = MaskCheck::from_bytes(&c.check)
                .map_err(|e| invalid(format!("node {checker}'s check: {e}")))?;
            if check.node != checker || check.session != session {
                return Err(invalid(format!(
                    "node {checker}'s check is for another session or node"
                )));
            }
            if !seen.insert((check.dealer, checker)) {
                return Err(invalid(format!(
                    "node {checker} checked dealer {} twice",
                    check.dealer
                )));
            }
            by_dealer.entry(check.dealer).or_default().push(check);
        }
        let t = self.threshold.t();
        let mut verdicts: Vec<Verdict> = Vec::with_capacity(commitments.len());
        for (dealer, commitment) in &commitments {
            let checks = by_dealer.remove(dealer).unwrap_or_default();
            match judge(commitment, &checks, t) {
                Ok(v) => verdicts.push(v),
                // Too few checks to judge this dealer: its masks are left out.
                Err(_) => continue,
            }
        }
        let mut sessions = self.mask_sessions()?;
        let state = Self::own_session(&mut sessions, &session, caller)?;
        let MaskPhase::Checked(dealing) = &state.phase else {
            return Err(NodeError::Conflict(
                "this mask session was judged by another request".into(),
            ));
        };
        let deals: Vec<MaskDeal> = dealing
            .deals
            .iter()
            .filter(|d| verdicts.iter().any(|v| v.dealer() == d.dealer()))
            .cloned()
            .collect();
        let pool = MaskPool::from_checked_deals(self.id, &verdicts, &deals, t)
            .map_err(|e| NodeError::NotReady(format!("masks: {e}")))?;
        let accepted: Vec<u8> = verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::Accepted { .. }))
            .map(|v| v.dealer().get())
            .collect();
        let masks = state.count;
        state.phase = MaskPhase::Ready(pool);
        Ok(proto::MaskJudgeReply { accepted, masks })
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
        self.fresh(req.meta.as_ref())?;
        let session = array32(&req.session, "session")?;
        let mut sessions = self.mask_sessions()?;
        let released = Self::own_session(&mut sessions, &session, caller).is_ok();
        if released {
            sessions.remove(&session);
        }
        Ok(proto::MaskReleaseReply { released })
    }

    /// Online: answers a distance request with masked distance shares, using the masks the
    /// request names from its session's judged pool; each mask is used once, and the pool is
    /// dropped when every mask is used.
    ///
    /// # Errors
    /// [`NodeError::NotReady`] for an unknown or unjudged session, [`NodeError::Invalid`] for
    /// a bad distance request or masks used already (nothing is used up then);
    /// [`NodeError::Corrupt`] for stored bit shares that fail their check.
    pub fn distances(
        &self,
        caller: &str,
        req: &proto::DistancesRequest,
    ) -> Result<proto::DistancesReply, NodeError> {
        self.fresh(req.meta.as_ref())?;
        let request = DistanceRequest::from_bytes(&req.distance_request)
            .map_err(|e| invalid(format!("distance request: {e}")))?;
        let session = request.session;
        {
            let mut sessions = self.mask_sessions()?;
            let state = Self::own_session(&mut sessions, &session, caller)?;
            if !matches!(state.phase, MaskPhase::Ready(_)) {
                return Err(NodeError::NotReady("the masks were not judged yet".into()));
            }
        }
        let mut stored = self.bit_shares_of(&request.candidates)?;
        let response = {
            let mut sessions = self.mask_sessions()?;
            let state = Self::own_session(&mut sessions, &session, caller)?;
            let MaskPhase::Ready(pool) = &mut state.phase else {
                return Err(NodeError::NotReady("the masks were not judged yet".into()));
            };
            let response = request
                .respond(self.id, |id| stored.remove(&id), pool)
                .map_err(|e| invalid(e.to_string()))?;
            if pool.is_empty() {
                sessions.remove(&session);
            }
            response
        };
        let mut response = response;
        if crate::failpoint::active("distance-shift", self.id) {
            shift_distances(&mut response.shares, self.id, self.threshold.t());
        }
        let response = response.to_bytes().map_err(|e| invalid(e.to_string()))?;
        self.audit.append(
            &format!(
                "distances session={} first_mask={} candidates={}",
                crate::hex(&session),
                request.first_mask,
                request.candidates.len()
            ),
            false,
        )?;
        Ok(proto::DistancesReply {
            distance_response: response,
        })
    }
}

/// The `mask-off-points` failpoint: an honest dealing whose points for the highest other
/// server are all shifted by one random value (committed to, so that server's digest check
/// passes and only the judge's codeword test can see it).
fn off_points_deal(
    session: [u8; 32],
    dealer: NodeId,
    servers: &[NodeId],
    t: u8,
    count: u32,
    rng: &mut (impl rand::CryptoRng + ?Sized),
) -> Result<(MaskCommitment, Vec<MaskDeal>), dealer_free::mpc::MpcError> {
    use dealer_free::mpc::masks::{CHECKS, deal_from_values, deal_zero_sharings};
    let mut points = deal_zero_sharings(servers, 2 * usize::from(t) - 2, count as usize + CHECKS, rng);
    let victim = servers.iter().rev().find(|s| **s != dealer).copied();
    let delta = phr_sis::fp61::Fp61::random(rng);
    if let Some(v) = victim.and_then(|v| points.get_mut(&v)) {
        for p in v.iter_mut() {
            *p += delta;
        }
    }
    deal_from_values(session, dealer, points.into_iter().collect(), rng)
}

/// The `distance-shift` failpoint: adds `λ_j^{-1}` to each share, `λ_j` node `j`'s Lagrange
/// coefficient at 0 among servers `1 ..= 2t − 1`, so that the distance opened among exactly
/// those servers is one more than the true one.
fn shift_distances(shares: &mut [phr_sis::fp61::Fp61], me: NodeId, t: u8) {
    let set: Vec<NodeId> = NodeId::first(2 * t - 1).collect();
    let Some(k) = set.iter().position(|s| *s == me) else {
        for s in shares.iter_mut() {
            *s += phr_sis::fp61::Fp61::ONE;
        }
        return;
    };
    let Some(lambda) = phr_sis::fp61::lagrange_at_zero(&set).ok().and_then(|l| l.get(k).copied())
    else {
        return;
    };
    let e = lambda.inv();
    for s in shares.iter_mut() {
        *s += e;
    }
}
