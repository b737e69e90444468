//! The search service of a node: a query's candidate lookup, the check of its shares and its
//! masked distance shares, each a step of a server's query states
//! ([`dealer_free::mpc::server`]). The node keeps each query's state between its steps (its
//! candidates, then its checked shares and masks), for the client that asked only, for
//! [`QUERY_SESSION_TTL`], bounded per client and in all ([`crate::config::Limits`]).
//!
//! What holds: distance shares only of the caller's own candidates of the query session
//! (at most as many as it listed), only for a query whose shares every server checked, each
//! query answered once.

#[allow(clippy::wildcard_imports)] // the handlers use the state's own types throughout
use super::*;

use dealer_free::mpc::messages::{ChecksRelay, DistanceRequest};
use dealer_free::mpc::server::{AnsweredQuery, CheckedQuery, QueryBounds, answer_candidates};

use super::masks::MaskPhase;

/// One query between its steps.
pub(super) struct QuerySession {
    created: Instant,
    /// The client that asked: only it goes on with it.
    owner: String,
    phase: QueryPhase,
}

/// Where a query is.
enum QueryPhase {
    /// Its candidates were listed.
    Answered(AnsweredQuery),
    /// Its shares were checked; its masks are taken.
    Checked(Box<CheckedQuery>),
}

impl NodeState {
    fn query_sessions(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, HashMap<[u8; 32], QuerySession>>, NodeError> {
        let mut q = self
            .queries
            .lock()
            .map_err(|_| NodeError::NotReady("the query lock is poisoned".into()))?;
        q.retain(|_, s| s.created.elapsed() < QUERY_SESSION_TTL);
        Ok(q)
    }

    /// Keeps `caller`'s candidates of query `session`: a new session within the caps, or the
    /// caller's own not yet checked (a candidate round asked again).
    fn keep_answer(&self, caller: &str, answered: AnsweredQuery) -> Result<(), NodeError> {
        let session = answered.session();
        let mut q = self.query_sessions()?;
        match q.get(&session) {
            Some(s) if s.owner != caller => {
                return Err(NodeError::Conflict(
                    "this query session is another client's".into(),
                ));
            }
            Some(QuerySession {
                phase: QueryPhase::Checked(_),
                ..
            }) => {
                return Err(NodeError::Conflict(
                    "this query's shares were checked already".into(),
                ));
            }
            Some(_) => {}
            None => {
                let l = &self.limits;
                if q.len() >= l.max_query_sessions {
                    return Err(NodeError::RateLimited(format!(
                        "{} queries are open on node {} (max_query_sessions)",
                        q.len(),
                        self.id
                    )));
                }
                let mine = q.values().filter(|s| s.owner == caller).count();
                if mine >= l.max_query_sessions_per_client {
                    return Err(NodeError::RateLimited(format!(
                        "client {caller} has {mine} queries open on node {} \
                         (max_query_sessions_per_client)",
                        self.id
                    )));
                }
            }
        }
        q.insert(
            session,
            QuerySession {
                created: Instant::now(),
                owner: caller.to_owned(),
                phase: QueryPhase::Answered(answered),
            },
        );
        Ok(())
    }

    /// Charges `caller` one query of its `queries_per_minute`.
    fn charge_query(&self, caller: &str) -> Result<(), NodeError> {
        let limit = self.limits.queries_per_minute;
        charge_minute(&self.query_budgets, caller, 1, limit, |_| {
            format!(
                "{caller} made {limit} queries this minute on node {} (queries_per_minute)",
                self.id
            )
        })
    }

    /// Candidate lookup: the images sharing at least `min_band_votes` band tokens with the
    /// query (no fewer than this node's `min_band_votes`, with at most `max_query_tokens`
    /// tokens), kept as this query's candidates for `caller`.
    ///
    /// # Errors
    /// [`NodeError::Invalid`] for a malformed request, too few band votes, too many tokens
    /// or candidates; [`NodeError::RateLimited`] past the query caps or the caller's queries
    /// per minute; [`NodeError::Conflict`] for a session of another client or checked
    /// already.
    pub fn candidates(
        &self,
        caller: &str,
        req: &proto::CandidatesRequest,
    ) -> Result<proto::CandidatesReply, NodeError> {
        self.fresh(caller, req.meta.as_ref())?;
        let request = CandidateRequest::from_bytes(&req.candidate_request)
            .map_err(|e| invalid(format!("candidate request: {e}")))?;
        if request.min_band_votes < self.limits.min_band_votes {
            return Err(invalid(format!(
                "a query asks for at least {} band votes on node {} (min_band_votes), {} asked",
                self.limits.min_band_votes, self.id, request.min_band_votes
            )));
        }
        self.charge_query(caller)?;
        let bounds = QueryBounds {
            max_tokens: self.limits.max_query_tokens.min(MAX_TOKENS),
            max_candidates: self.limits.max_candidates,
        };
        if request.tokens.len() > bounds.max_tokens {
            return Err(invalid(format!(
                "{} tokens, at most {}",
                request.tokens.len(),
                bounds.max_tokens
            )));
        }
        let listed = {
            let index = self
                .index
                .read()
                .map_err(|_| NodeError::NotReady("the index lock is poisoned".into()))?;
            index.candidates_at_most(
                &request.tokens,
                request.min_band_votes,
                bounds.max_candidates,
            )
        }
        .ok_or_else(|| {
            invalid(format!(
                "the query's tokens name too many stored images to answer within \
                 max_candidates = {} on node {}: ask for more band votes",
                bounds.max_candidates, self.id
            ))
        })?;
        let (answered, response) = answer_candidates(self.id, &request, bounds, |_, _| listed)
            .map_err(|e| invalid(e.to_string()))?;
        let found = answered.len();
        self.keep_answer(caller, answered)?;
        let response = response.to_bytes().map_err(|e| invalid(e.to_string()))?;
        self.log(
            &format!(
                "candidates session={} found={found}",
                crate::hex(&request.session)
            ),
            false,
        )?;
        Ok(proto::CandidatesReply {
            candidate_response: response,
        })
    }

    /// Online step 1: the query's shares. The caller's candidates of the query session and
    /// the caller's judged pool are looked up; the request must name only those candidates,
    /// the pool's servers and unused masks. The query's masks are taken and its opening
    /// checked ([`AnsweredQuery::check`]); the signed check values go back for the querier
    /// to relay. A query gets one try: a refused request ends its session.
    ///
    /// # Errors
    /// [`NodeError::NotReady`] for no candidates of the session or no such pool,
    /// [`NodeError::Conflict`] for a query checked already, [`NodeError::Invalid`] for a
    /// malformed request and [`NodeError::Search`] for one the check refuses.
    pub fn query_check(
        &self,
        caller: &str,
        req: &proto::QueryCheckRequest,
    ) -> Result<proto::QueryCheckReply, NodeError> {
        self.fresh(caller, req.meta.as_ref())?;
        let request = DistanceRequest::from_bytes(&req.distance_request)
            .map_err(|e| invalid(format!("distance request: {e}")))?;
        let session = request.session;
        let answered = {
            let q = self.query_sessions()?;
            match q.get(&session) {
                Some(s) if s.owner == caller => match &s.phase {
                    QueryPhase::Answered(a) => a.clone(),
                    QueryPhase::Checked(_) => {
                        return Err(NodeError::Conflict(
                            "this query's shares were checked already".into(),
                        ));
                    }
                },
                _ => {
                    return Err(NodeError::NotReady(
                        "no candidates of this query session (expired, or never asked)".into(),
                    ));
                }
            }
        };
        let scope = request.commitment.scope();
        let (first, count) = (scope.first_mask, request.candidates.len());
        let key = self.cluster_key()?;
        let outcome = {
            let mut sessions = self.mask_sessions()?;
            let pool_session = scope.mask_session;
            let state = Self::own_session(&mut sessions, &pool_session, caller)?;
            if !matches!(state.phase, MaskPhase::Ready(_)) {
                return Err(NodeError::NotReady("the masks were not judged yet".into()));
            }
            self.confirm_pool(state, &req.pool_confirmations, &key)?;
            let servers = state.servers.clone();
            let MaskPhase::Ready(pool) = &mut state.phase else {
                return Err(NodeError::NotReady("the masks were not judged yet".into()));
            };
            let outcome = answered.check(request, &servers, pool);
            if pool.is_empty() {
                sessions.remove(&pool_session);
            }
            outcome
        };
        let mut q = self.query_sessions()?;
        let (checked, check) = match outcome {
            Ok(r) => r,
            Err(e) => {
                q.remove(&session);
                return Err(e.into());
            }
        };
        let signed = check.sign(&self.read_secrets()?.keys, &mut rand::rng());
        match q.get_mut(&session) {
            Some(s) if s.owner == caller && matches!(s.phase, QueryPhase::Answered(_)) => {
                s.phase = QueryPhase::Checked(Box::new(checked));
            }
            _ => {
                return Err(NodeError::Conflict(
                    "this query's session ended meanwhile".into(),
                ));
            }
        }
        drop(q);
        self.log(
            &format!(
                "query-check session={} first_mask={first} candidates={count}",
                crate::hex(&session),
            ),
            false,
        )?;
        Ok(proto::QueryCheckReply {
            query_check: signed.to_bytes(),
        })
    }

    /// Online step 2: every server's signed check of the query, relayed by the querier. The
    /// signatures and the checks are verified ([`CheckedQuery::verify`]); only a query that
    /// passes gets its masked distance shares. The query's session ends either way.
    ///
    /// # Errors
    /// [`NodeError::NotReady`] for no checked query of the session, [`NodeError::Invalid`]
    /// for a malformed relay, [`NodeError::Search`] for forged or failing checks (the query
    /// is refused), [`NodeError::Corrupt`] for stored bit shares that fail their check.
    pub fn distances(
        &self,
        caller: &str,
        req: &proto::DistancesRequest,
    ) -> Result<proto::DistancesReply, NodeError> {
        self.fresh(caller, req.meta.as_ref())?;
        let relay = ChecksRelay::from_bytes(&req.checks_relay)
            .map_err(|e| invalid(format!("checks relay: {e}")))?;
        // A store out of service refuses before the query's session is used up, so the
        // retry finds it.
        self.store()?;
        let checked = {
            let mut q = self.query_sessions()?;
            match q.get(&relay.session) {
                Some(s) if s.owner == caller && matches!(s.phase, QueryPhase::Checked(_)) => {}
                _ => {
                    return Err(NodeError::NotReady(
                        "no checked query of this session (expired, or not checked)".into(),
                    ));
                }
            }
            match q.remove(&relay.session).map(|s| s.phase) {
                Some(QueryPhase::Checked(c)) => *c,
                _ => return Err(NodeError::NotReady("no checked query".into())),
            }
        };
        let key = self.cluster_key()?;
        let verified = checked.verify(
            &relay,
            &key.participants,
            self.threshold.t(),
            &mut rand::rng(),
        )?;
        let mut stored = self.bit_shares_of(verified.candidates())?;
        let count = verified.candidates().len();
        let mut response = verified.respond(|id| stored.remove(&id))?;
        if crate::failpoint::active("distance-shift", self.id) {
            shift_distances(&mut response.shares, self.id, self.threshold.t());
        }
        let bytes = response.to_bytes().map_err(|e| invalid(e.to_string()))?;
        self.log(
            &format!(
                "distances session={} candidates={count}",
                crate::hex(&relay.session),
            ),
            false,
        )?;
        Ok(proto::DistancesReply {
            distance_response: bytes,
        })
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
        let read = self
            .store()?
            .get_bit_shares_many(&missing)
            .map_err(|e| self.disk.failed(e))?;
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
            // Only ids still indexed: a delete takes an id out of the index before it empties
            // the cache, so an id it deleted since the read above is not cached again.
            let index = self
                .index
                .read()
                .map_err(|_| NodeError::NotReady("the index lock is poisoned".into()))?;
            let room = self.limits.bit_share_cache.saturating_sub(cache.len());
            cache.extend(
                fresh
                    .into_iter()
                    .filter(|(id, _)| index.contains(*id))
                    .take(room),
            );
        }
        Ok(found)
    }
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
    let Some(lambda) = phr_sis::fp61::lagrange_at_zero(&set)
        .ok()
        .and_then(|l| l.get(k).copied())
    else {
        return;
    };
    let e = lambda.inv();
    for s in shares.iter_mut() {
        *s += e;
    }
}
