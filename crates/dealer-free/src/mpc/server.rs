//! A server's side of one secure query, sans-IO: each step consumes the last.
//!
//! 1. [`answer_candidates`]: the candidate lookup; the server keeps its answer
//!    ([`AnsweredQuery`]) and will rank nothing else for this query.
//! 2. [`AnsweredQuery::check`]: the querier's [`DistanceRequest`]. The server checks every
//!    named image is among its candidates, the commitment's servers are the pool's, takes the
//!    query's masks (all of them at once, each used once) and its opening's check values
//!    ([`super::query`]): a [`QueryCheck`] to sign and return ([`CheckedQuery`]).
//! 3. [`CheckedQuery::verify`]: every server's signed check, relayed by the querier: the
//!    signatures, then [`judge_query`]. Only a query that passes gets a [`VerifiedQuery`].
//! 4. [`VerifiedQuery::respond`]: the masked distance shares of the candidates.
//!
//! What holds: a server computes distance shares only of its own candidates of the query's
//! session, only of a query whose shares every server checked to be bits of one sharing of
//! degree `t − 1`, and with masks no other answer used. Counts are bounded before any work.
//! The caller (a node, the simulator) keeps the states, reads the stored bit shares and
//! carries the messages.

use std::collections::BTreeMap;

use phr_sis::fp61::Fp61;
use phr_sis::token_index::Token;
use phr_sis::{ImageId, NodeId};
use rand::CryptoRng;
use zeroize::Zeroizing;

use super::error::{SearchError, verify_signatures};
use super::masks::MaskPool;
use super::messages::{
    CandidateRequest, CandidateResponse, ChecksRelay, DistanceRequest, DistanceResponse, SessionId,
};
use super::query::{CHECK_MASKS, QueryCheck, QueryScope, judge_query};
use super::{HashBitShares, PreparedQuery};
use crate::identity::NodePublicKeys;

/// The bounds a server applies to a query before any work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryBounds {
    /// Tokens per candidate request.
    pub max_tokens: usize,
    /// Candidates one query may rank.
    pub max_candidates: usize,
}

/// A server's candidates of one query, kept until the query's distance request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnsweredQuery {
    server: NodeId,
    session: SessionId,
    ids: Vec<ImageId>,
}

/// A query whose shares this server checked, waiting for every server's check. Holds the
/// query's masks (secret, zeroized on drop).
pub struct CheckedQuery {
    server: NodeId,
    request: DistanceRequest,
    masks: Zeroizing<Vec<Fp61>>,
}

/// A query every server's check accepted: ready to answer.
pub struct VerifiedQuery {
    inner: CheckedQuery,
}

/// Step 1: answers `request` with this server's candidates, looked up by `lookup(tokens,
/// min_band_votes)`.
///
/// # Errors
/// [`SearchError::TooMany`] for more tokens than the bound (before the lookup) or more
/// candidates than one query may rank.
pub fn answer_candidates(
    server: NodeId,
    request: &CandidateRequest,
    bounds: QueryBounds,
    lookup: impl FnOnce(&[Token], u32) -> Vec<(ImageId, u32)>,
) -> Result<(AnsweredQuery, CandidateResponse), SearchError> {
    if request.tokens.len() > bounds.max_tokens {
        return Err(SearchError::TooMany {
            what: "tokens",
            got: request.tokens.len(),
            max: bounds.max_tokens,
        });
    }
    let candidates = lookup(&request.tokens, request.min_band_votes);
    if candidates.len() > bounds.max_candidates {
        return Err(SearchError::TooMany {
            what: "candidates (ask for more band votes)",
            got: candidates.len(),
            max: bounds.max_candidates,
        });
    }
    let answered = AnsweredQuery {
        server,
        session: request.session,
        ids: candidates.iter().map(|(id, _)| *id).collect(),
    };
    Ok((
        answered,
        CandidateResponse {
            session: request.session,
            node: server,
            candidates,
        },
    ))
}

fn misaddressed(what: &'static str, reason: impl Into<String>) -> SearchError {
    SearchError::Misaddressed {
        from: None,
        what,
        reason: reason.into(),
    }
}

impl AnsweredQuery {
    /// The query session.
    #[must_use]
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// How many candidates this server listed.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether it listed none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Step 2: checks `request` against this server's answer and `pool` (the pool its
    /// commitment's scope names, dealt among `pool_servers`): its candidates are the scope's
    /// and this server's own, its servers the pool's. Then takes the query's masks from the
    /// scope's first mask and computes the check of its opening. Nothing is taken from the
    /// pool unless every other check passed first.
    ///
    /// # Errors
    /// [`SearchError::Misaddressed`] for a request to another server or of another session,
    /// or whose commitment is not among the pool's servers; [`SearchError::TooMany`] for more
    /// images than this server's candidates; [`SearchError::NotACandidate`] for an image it
    /// did not list; [`SearchError::Mpc`] for masks used already or an opening that does
    /// not match its commitment.
    pub fn check(
        self,
        request: DistanceRequest,
        pool_servers: &[NodeId],
        pool: &mut MaskPool,
    ) -> Result<(CheckedQuery, QueryCheck), SearchError> {
        if request.server != self.server {
            return Err(misaddressed(
                "distance request",
                format!("addressed to node {}, not {}", request.server, self.server),
            ));
        }
        if request.session != self.session || request.commitment.session() != self.session {
            return Err(misaddressed("distance request", "of another query session"));
        }
        let scope = request.commitment.scope();
        if QueryScope::candidates_digest(&request.candidates) != scope.candidates {
            return Err(misaddressed(
                "distance request",
                "its candidates are not the ones its commitment binds",
            ));
        }
        if request.candidates.len() > self.ids.len() {
            return Err(SearchError::TooMany {
                what: "images asked for",
                got: request.candidates.len(),
                max: self.ids.len(),
            });
        }
        // Both ascending: one merge.
        let mut mine = self.ids.iter().peekable();
        for id in &request.candidates {
            while mine.next_if(|m| *m < id).is_some() {}
            if mine.next_if(|m| *m == id).is_none() {
                return Err(SearchError::NotACandidate {
                    server: self.server,
                    id: *id,
                });
            }
        }
        if request.commitment.servers() != pool_servers {
            return Err(misaddressed(
                "distance request",
                "its servers are not the mask pool's",
            ));
        }
        request.opening.matches(self.server, &request.commitment)?;
        pool.expect_kind(super::masks::MaskKind::ZeroSum)?;
        let count = CHECK_MASKS + request.candidates.len();
        let mut masks = Zeroizing::new(pool.take_at(scope.first_mask as usize, count)?);
        let (check_masks, rest) = masks.split_at(CHECK_MASKS.min(masks.len()));
        let check =
            request
                .opening
                .check(self.server, &request.commitment, check_masks.to_vec())?;
        let candidate_masks = Zeroizing::new(rest.to_vec());
        masks.iter_mut().for_each(zeroize::Zeroize::zeroize);
        Ok((
            CheckedQuery {
                server: self.server,
                request,
                masks: candidate_masks,
            },
            check,
        ))
    }
}

impl CheckedQuery {
    /// The query session.
    #[must_use]
    pub fn session(&self) -> SessionId {
        self.request.session
    }

    /// The servers of the query.
    #[must_use]
    pub fn servers(&self) -> &[NodeId] {
        self.request.commitment.servers()
    }

    /// Step 3: every server's signed check of the query (relayed by the querier), verified
    /// against `keys` (every server's identity keys) and judged ([`judge_query`]) for
    /// threshold `t`.
    ///
    /// # Errors
    /// [`SearchError::Misaddressed`] for a relay of another session, [`SearchError::TooMany`]
    /// for more checks than servers (before any signature is checked),
    /// [`SearchError::Forged`] naming a check not signed by its server or of a node without
    /// keys, [`SearchError::Rejected`] if the checks do not pass.
    pub fn verify<R: CryptoRng + ?Sized>(
        self,
        relay: &ChecksRelay,
        keys: &BTreeMap<NodeId, NodePublicKeys>,
        t: u8,
        rng: &mut R,
    ) -> Result<VerifiedQuery, SearchError> {
        if relay.session != self.request.session {
            return Err(misaddressed("check relay", "of another query session"));
        }
        let servers = self.servers().len();
        if relay.checks.len() > servers {
            return Err(SearchError::TooMany {
                what: "query checks",
                got: relay.checks.len(),
                max: servers,
            });
        }
        let signed: Vec<_> = relay
            .checks
            .iter()
            .map(|c| (c.check.server, c.signed_message(), &c.signature))
            .collect();
        verify_signatures(
            &signed,
            keys,
            "query check",
            "query check (no such participant)",
            self.server,
            rng,
        )?;
        let checks: Vec<QueryCheck> = relay.checks.iter().map(|c| c.check).collect();
        judge_query(&self.request.commitment, &checks, t).map_err(SearchError::Rejected)?;
        Ok(VerifiedQuery { inner: self })
    }
}

impl VerifiedQuery {
    /// The images to rank, ascending.
    #[must_use]
    pub fn candidates(&self) -> &[ImageId] {
        &self.inner.request.candidates
    }

    /// Step 4: this server's masked distance share of every candidate, reading the stored bit
    /// shares through `stored`.
    ///
    /// # Errors
    /// [`SearchError::MissingRecord`] for a candidate `stored` does not give.
    pub fn respond(
        self,
        mut stored: impl FnMut(ImageId) -> Option<HashBitShares>,
    ) -> Result<DistanceResponse, SearchError> {
        let q = &self.inner;
        let prepared = PreparedQuery::new(q.request.opening.shares());
        let mut shares = Vec::with_capacity(q.request.candidates.len());
        for (id, z) in q.request.candidates.iter().zip(q.masks.iter()) {
            let x = stored(*id).ok_or(SearchError::MissingRecord {
                server: q.server,
                id: *id,
            })?;
            shares.push(prepared.distance_share(&x) + *z);
        }
        Ok(DistanceResponse {
            session: q.request.session,
            server: q.server,
            shares,
        })
    }
}

impl std::fmt::Debug for CheckedQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CheckedQuery({} candidates, <redacted>)",
            self.request.candidates.len()
        )
    }
}

impl std::fmt::Debug for VerifiedQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Verified{:?}", self.inner)
    }
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
