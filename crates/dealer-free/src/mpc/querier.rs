//! The querier's side of one secure query, sans-IO: each step consumes the last, and the
//! caller (the cluster client, the simulator, the in-process collection) only carries the
//! messages.
//!
//! 1. [`Querier::candidate_request`]: the band tokens (from the threshold VOPRF) to every
//!    server.
//! 2. [`Querier::agree`]: the servers' candidate lists; the list `t` or more servers return
//!    is used, among the servers whose own list holds it, at least `2t − 1` ([`Agreed`]); the
//!    others are named.
//! 3. [`Agreed::share`]: the query's bits shared and committed ([`super::query`]), one
//!    [`DistanceRequest`] per server with the masks of a pool range ([`AwaitingChecks`]).
//! 4. [`AwaitingChecks::checks`]: every server's signed check; the querier verifies them
//!    itself first (a server whose check values differ from what its shares give lied, and is
//!    named) and relays them all ([`ChecksRelay`], [`AwaitingDistances`]).
//! 5. [`AwaitingDistances::open`]: the masked distance shares, decoded ([`open_distances`])
//!    and ranked ([`rank`]) into the one [`SearchResult`].
//!
//! **Integrity**, by the number `m` of servers whose shares are opened
//! ([`Integrity`]): up to `⌊(m − 2t + 1)/2⌋` wrong shares per candidate are corrected and
//! their servers named, up to `m − 2t + 1` detected (the search fails); with `m = 2t − 1` a
//! wrong share cannot be detected, and the result says so.

use std::collections::{BTreeMap, BTreeSet};

use phr_sis::fp61::Fp61;
use phr_sis::token_index::Token;
use phr_sis::{ImageHash, ImageId, NodeId, RankedCandidate, SearchParams, Threshold};
use rand::CryptoRng;

use super::error::SearchError;
use super::messages::{
    CandidateAgreement, CandidateRequest, CandidateResponse, ChecksRelay, DistanceRequest,
    DistanceResponse, SessionId,
};
use super::open::open_distances;
use super::query::{
    CHECK_MASKS, QueryCommitment, QueryOpening, QueryScope, SignedQueryCheck, audit_checks,
    judge_query, share_query,
};
use super::rank::rank;
use crate::identity::NodePublicKeys;

/// What the opening of the distances can vouch for, from the number `m` of servers whose
/// shares were opened. A wrong share is one a server changed, or one made wrong by a corrupt
/// mask dealer's points at a server: up to [`Integrity::corrects`] of them per candidate are
/// corrected and their servers named, up to [`Integrity::detects`] detected (the search then
/// fails rather than return a distance). Against `k` corrupt nodes (dealers included) the
/// distances are thus vouched for while `k ≤ detects`; with `t − 1` of them, detection needs
/// `m ≥ 3t − 2` ([`Integrity::detects_any_coalition`]) and correction `m ≥ 4t − 3`. With
/// `m = 2t − 1` nothing is detected, and the result says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Integrity {
    servers: usize,
    t: u8,
}

impl Integrity {
    /// What `m` opened shares give for threshold `t`.
    #[must_use]
    pub fn of(m: usize, t: u8) -> Integrity {
        Integrity { servers: m, t }
    }

    /// The servers whose shares were opened.
    #[must_use]
    pub fn servers(&self) -> usize {
        self.servers
    }

    /// Wrong shares per candidate that are detected: `m − (2t − 1)`.
    #[must_use]
    pub fn detects(&self) -> usize {
        self.servers
            .saturating_sub(2 * usize::from(self.t.max(1)) - 1)
    }

    /// Wrong shares per candidate that are corrected and named: `⌊(m − 2t + 1)/2⌋`.
    #[must_use]
    pub fn corrects(&self) -> usize {
        self.detects() / 2
    }

    /// Whether any `t − 1` corrupt nodes are detected: `m ≥ 3t − 2`.
    #[must_use]
    pub fn detects_any_coalition(&self) -> bool {
        self.detects() + 1 >= usize::from(self.t.max(1))
    }

    /// Whether any `t − 1` corrupt nodes are corrected and named: `m ≥ 4t − 3`.
    #[must_use]
    pub fn corrects_any_coalition(&self) -> bool {
        self.corrects() + 1 >= usize::from(self.t.max(1))
    }
}

impl std::fmt::Display for Integrity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.detects() == 0 {
            return f.write_str(
                "unchecked: 2t − 1 servers, so a wrong share from one of them would go unnoticed",
            );
        }
        write!(
            f,
            "checked: up to {} wrong share(s) corrected and named, up to {} detected",
            self.corrects(),
            self.detects()
        )?;
        if !self.detects_any_coalition() {
            write!(
                f,
                " (t − 1 = {} corrupt nodes could go unnoticed)",
                self.t - 1
            )?;
        }
        Ok(())
    }
}

/// The outcome of one secure search: the one result type of the querier, the simulator and
/// the cluster client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchResult {
    /// The ranked results: id, Hamming distance to the query, bands equal to the query's.
    pub hits: Vec<RankedCandidate>,
    /// Candidates ranked.
    pub candidates: usize,
    /// The servers whose distance shares were opened.
    pub servers: Vec<NodeId>,
    /// Servers whose distance shares were wrong (corrected).
    pub wrong_shares_from: BTreeSet<NodeId>,
    /// Servers whose candidate list differed from the one used.
    pub disagreeing: BTreeSet<NodeId>,
    /// What the opening vouches for.
    pub integrity: Integrity,
}

/// A query before its candidates.
#[derive(Debug, Clone)]
pub struct Querier {
    threshold: Threshold,
    hash: ImageHash,
    params: SearchParams,
    session: SessionId,
}

/// The candidates `2t − 1` or more servers agree on, and those servers.
#[derive(Debug, Clone)]
pub struct Agreed {
    querier: Querier,
    candidates: Vec<(ImageId, u32)>,
    servers: Vec<NodeId>,
    disagreeing: BTreeSet<NodeId>,
}

/// The distance requests are out; waiting for every server's check.
#[derive(Debug)]
pub struct AwaitingChecks {
    agreed: Agreed,
    commitment: QueryCommitment,
    openings: Vec<(NodeId, QueryOpening)>,
}

/// The checks are relayed; waiting for the distance shares.
#[derive(Debug)]
pub struct AwaitingDistances {
    agreed: Agreed,
}

impl Querier {
    /// A query for `hash`, ranked as `params` say.
    pub fn new<R: CryptoRng + ?Sized>(
        threshold: Threshold,
        hash: ImageHash,
        params: SearchParams,
        rng: &mut R,
    ) -> Querier {
        let mut session = [0u8; 32];
        rng.fill_bytes(&mut session);
        Querier {
            threshold,
            hash,
            params,
            session,
        }
    }

    /// The query session.
    #[must_use]
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// Step 1: the candidate request with the query's band `tokens`, to every server.
    #[must_use]
    pub fn candidate_request(&self, tokens: Vec<Token>) -> CandidateRequest {
        CandidateRequest {
            session: self.session,
            min_band_votes: self.params.min_band_votes,
            tokens,
        }
    }

    /// Step 2: the servers' answers. The list returned by the most servers is used if at
    /// least `t` returned it, among every server whose own list holds it (each server ranks
    /// only images of its own list), at least `2t − 1`; the other servers are named in
    /// [`Agreed`].
    ///
    /// # Errors
    /// [`SearchError::Misaddressed`] naming a server that answered for another session or
    /// node (nothing else is judged then); [`SearchError::NoAgreement`] if fewer than `t`
    /// servers return one list or fewer than `2t − 1` hold it.
    pub fn agree(&self, answers: Vec<(NodeId, CandidateResponse)>) -> Result<Agreed, SearchError> {
        let mut lists = Vec::with_capacity(answers.len());
        for (from, answer) in answers {
            if answer.session != self.session || answer.node != from {
                return Err(SearchError::Misaddressed {
                    from: Some(from),
                    what: "candidate response",
                    reason: "for another query or node".into(),
                });
            }
            lists.push((from, answer.candidates));
        }
        let CandidateAgreement {
            candidates,
            agreeing,
            groups,
            ..
        } = CandidateAgreement::from_answers(lists.clone());
        let needed = usize::from(self.threshold.search_quorum());
        // The list at least t servers return (fewer than t may be corrupt), ranked by every
        // server whose own list holds it: a server that already holds an image still being
        // ingested elsewhere lists it too, and can rank the others' list.
        if agreeing.len() < usize::from(self.threshold.t()) {
            return Err(SearchError::NoAgreement { needed, groups });
        }
        let (mut servers, mut disagreeing) = (Vec::new(), BTreeSet::new());
        for (server, list) in &lists {
            if holds(list, &candidates) {
                servers.push(*server);
            } else {
                disagreeing.insert(*server);
            }
        }
        if servers.len() < needed {
            return Err(SearchError::NoAgreement { needed, groups });
        }
        servers.sort_unstable();
        Ok(Agreed {
            querier: self.clone(),
            candidates,
            servers,
            disagreeing,
        })
    }
}

/// Whether the ascending list `list` holds every entry of the ascending list `part`.
fn holds(list: &[(ImageId, u32)], part: &[(ImageId, u32)]) -> bool {
    let mut it = list.iter().peekable();
    part.iter().all(|p| {
        while it.next_if(|l| l.0 < p.0).is_some() {}
        it.next_if(|l| *l == p).is_some()
    })
}

impl Agreed {
    /// The candidates, ascending by id, with their band votes.
    #[must_use]
    pub fn candidates(&self) -> &[(ImageId, u32)] {
        &self.candidates
    }

    /// The servers that agree, ascending: the query's servers.
    #[must_use]
    pub fn servers(&self) -> &[NodeId] {
        &self.servers
    }

    /// Leaves servers out (they are unreachable, or named); `Err` naming the query's servers
    /// if fewer than `2t − 1` are left.
    ///
    /// # Errors
    /// [`SearchError::Mpc`] with `TooFewNodes`.
    pub fn without(mut self, out: &BTreeSet<NodeId>) -> Result<Agreed, SearchError> {
        self.servers.retain(|s| !out.contains(s));
        super::check_servers(self.querier.threshold, &self.servers)?;
        Ok(self)
    }

    /// Masks the query takes from its pool: [`CHECK_MASKS`] and one per candidate.
    #[must_use]
    pub fn masks_needed(&self) -> usize {
        CHECK_MASKS + self.candidates.len()
    }

    /// The result of a query without candidates (no distance round is needed).
    #[must_use]
    pub fn no_candidates(self) -> SearchResult {
        let integrity = Integrity::of(self.servers.len(), self.querier.threshold.t());
        SearchResult {
            hits: Vec::new(),
            candidates: 0,
            servers: self.servers,
            wrong_shares_from: BTreeSet::new(),
            disagreeing: self.disagreeing,
            integrity,
        }
    }

    /// Step 3: shares and commits the query among the servers; one distance request per
    /// server, with masks from `first_mask` of the pool `mask_session` (dealt among exactly
    /// these servers).
    ///
    /// # Errors
    /// [`SearchError::Mpc`] if the query cannot be shared (too few servers).
    pub fn share<R: CryptoRng + ?Sized>(
        self,
        mask_session: SessionId,
        first_mask: u32,
        rng: &mut R,
    ) -> Result<(AwaitingChecks, Vec<(NodeId, DistanceRequest)>), SearchError> {
        super::check_servers(self.querier.threshold, &self.servers)?;
        let ids: Vec<ImageId> = self.candidates.iter().map(|(id, _)| *id).collect();
        let scope = QueryScope::new(mask_session, first_mask, &ids);
        let (commitment, openings) = share_query(
            self.querier.session,
            scope,
            self.querier.hash,
            self.querier.threshold.t(),
            &self.servers,
            rng,
        )?;
        let requests = openings
            .iter()
            .map(|(server, opening)| {
                (
                    *server,
                    DistanceRequest {
                        session: self.querier.session,
                        server: *server,
                        candidates: ids.clone(),
                        commitment: commitment.clone(),
                        opening: opening.clone(),
                    },
                )
            })
            .collect();
        Ok((
            AwaitingChecks {
                agreed: self,
                commitment,
                openings,
            },
            requests,
        ))
    }
}

impl AwaitingChecks {
    /// The query's servers.
    #[must_use]
    pub fn servers(&self) -> &[NodeId] {
        &self.agreed.servers
    }

    /// Step 4: every server's signed check. Each is verified against `keys` (the servers'
    /// identity keys; `None` leaves that to the servers) and judged by the querier first, so
    /// that a lying server is named here: its degree values differ from what its shares give.
    /// Returns the relay every server is sent.
    ///
    /// # Errors
    /// [`SearchError::Misaddressed`] for a check from another server or session,
    /// [`SearchError::Forged`] for a bad signature, [`SearchError::LyingServers`] naming
    /// servers whose check values are wrong, [`SearchError::Rejected`] if the checks fail in
    /// another way (a missing check, a bit value off: the servers would refuse too).
    pub fn checks(
        self,
        answers: Vec<(NodeId, SignedQueryCheck)>,
        keys: Option<&BTreeMap<NodeId, NodePublicKeys>>,
    ) -> Result<(AwaitingDistances, ChecksRelay), SearchError> {
        let session = self.agreed.querier.session;
        let mut checks = Vec::with_capacity(answers.len());
        for (from, signed) in &answers {
            if signed.check.server != *from || signed.check.session != session {
                return Err(SearchError::Misaddressed {
                    from: Some(*from),
                    what: "query check",
                    reason: "for another query or server".into(),
                });
            }
            if let Some(keys) = keys
                && !keys.get(from).is_some_and(|k| signed.verify(k))
            {
                return Err(SearchError::Forged {
                    node: *from,
                    what: "query check",
                });
            }
            checks.push(signed.check);
        }
        let lied = audit_checks(&self.commitment, &self.openings, &checks);
        if !lied.is_empty() {
            return Err(SearchError::LyingServers(lied));
        }
        judge_query(&self.commitment, &checks, self.agreed.querier.threshold.t())
            .map_err(SearchError::Rejected)?;
        Ok((
            AwaitingDistances {
                agreed: self.agreed,
            },
            ChecksRelay {
                session,
                checks: answers.into_iter().map(|(_, c)| c).collect(),
            },
        ))
    }
}

impl AwaitingDistances {
    /// Step 5: the servers' masked distance shares (at least `2t − 1` of the query's
    /// servers), opened and ranked.
    ///
    /// # Errors
    /// [`SearchError::Misaddressed`] for an answer from another server, of another session,
    /// or with another number of shares than candidates; [`SearchError::Mpc`] if the shares
    /// cannot be decoded (too few, too many wrong, or a wrong one detected).
    pub fn open(
        self,
        answers: Vec<(NodeId, DistanceResponse)>,
    ) -> Result<SearchResult, SearchError> {
        let Agreed {
            querier,
            candidates,
            servers,
            disagreeing,
        } = self.agreed;
        let mut received: Vec<(NodeId, Vec<Fp61>)> = Vec::with_capacity(answers.len());
        for (from, answer) in answers {
            if answer.server != from
                || answer.session != querier.session
                || !servers.contains(&from)
                || answer.shares.len() != candidates.len()
                || received.iter().any(|(n, _)| *n == from)
            {
                return Err(SearchError::Misaddressed {
                    from: Some(from),
                    what: "distance response",
                    reason: "for another query or server, a second one, or not one share \
                             per candidate"
                        .into(),
                });
            }
            received.push((from, answer.shares));
        }
        let refs: Vec<(NodeId, &[Fp61])> =
            received.iter().map(|(n, v)| (*n, v.as_slice())).collect();
        let opened = open_distances(&refs, querier.threshold.t())?;
        let hits = rank(&candidates, &opened.distances, &querier.params)?;
        Ok(SearchResult {
            hits,
            candidates: candidates.len(),
            integrity: Integrity::of(received.len(), querier.threshold.t()),
            servers: received.into_iter().map(|(n, _)| n).collect(),
            wrong_shares_from: opened.wrong,
            disagreeing,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_server_that_holds_more_ranks_the_agreed_list_and_one_that_holds_less_is_named() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let th = Threshold::new(3, 6).unwrap();
        let q = Querier::new(th, ImageHash(1), SearchParams::default(), &mut rng);
        let list = vec![(ImageId(1), 2), (ImageId(5), 1)];
        let more = vec![(ImageId(1), 2), (ImageId(3), 1), (ImageId(5), 1)];
        let less = vec![(ImageId(5), 1)];
        let answers: Vec<(NodeId, CandidateResponse)> = NodeId::first(6)
            .map(|n| {
                let candidates = match n.get() {
                    1 | 2 => more.clone(),
                    6 => less.clone(),
                    _ => list.clone(),
                };
                (
                    n,
                    CandidateResponse {
                        session: q.session(),
                        node: n,
                        candidates,
                    },
                )
            })
            .collect();
        let agreed = q.agree(answers.clone()).unwrap();
        assert_eq!(agreed.candidates(), list.as_slice());
        assert_eq!(agreed.servers(), &NodeId::first(5).collect::<Vec<_>>()[..]);
        assert_eq!(
            agreed.disagreeing.iter().copied().collect::<Vec<_>>(),
            vec![NodeId::first(6).last().unwrap()]
        );
        // Fewer than t servers on any one list: no agreement.
        let split: Vec<(NodeId, CandidateResponse)> = answers
            .into_iter()
            .map(|(n, mut r)| {
                r.candidates = vec![(ImageId(u64::from(n.get())), 1)];
                (n, r)
            })
            .collect();
        assert!(matches!(
            q.agree(split),
            Err(SearchError::NoAgreement { .. })
        ));
    }
}
