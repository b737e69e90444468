//! Stage-2 on the client: the querier's states of [`dealer_free::mpc::querier`], carried
//! over gRPC — candidates from every reachable server, masks from a pool or a fresh dealing,
//! the query's shares and their checks, the relayed checks and the masked distance shares,
//! opened and ranked into one [`SearchResult`].

#[allow(clippy::wildcard_imports)] // the calls use the client's own types throughout
use super::*;

/// How often the candidate round is asked again while the servers' lists differ (records
/// being ingested reach the nodes one after the other, each node's store committing on its
/// own), and the pauses before.
const CANDIDATE_PAUSES_MS: [u64; 3] = [20, 100, 400];

impl ClusterClient {
    /// Stage-2 for the pHash `query`: tokens, candidates, the secure ranking among every
    /// reachable node that lists the same candidates (at least `2t − 1`), ranked as
    /// `params` say.
    ///
    /// # Errors
    /// [`ClientError::TooFewNodes`] with fewer than `2t − 1` reachable nodes (naming the
    /// others and why), [`ClientError::Search`] naming the culprits when no `2t − 1` servers
    /// agree on the candidates, a server lies about the query's check or the distance shares
    /// cannot be decoded; [`ClientError::Refused`].
    pub async fn search(
        &self,
        query: ImageHash,
        params: &SearchParams,
    ) -> Result<SearchResult, ClientError> {
        let servers = self.search_servers().await?;
        let outcome = self.search_among(query, params, &servers).await;
        if outcome.is_err()
            && let Ok(mut c) = self.up.lock()
        {
            *c = None;
        }
        outcome
    }

    async fn search_among(
        &self,
        query: ImageHash,
        params: &SearchParams,
        servers: &[NodeId],
    ) -> Result<SearchResult, ClientError> {
        let (tokens, _) = self.band_tokens(&[query], servers).await?;
        let tokens = tokens.into_iter().next().unwrap_or_default();
        // A pool a server no longer holds (restarted, expired) fails the query's check there;
        // the query is then asked again, from its candidates, with a fresh dealing. A query
        // that fails naming servers (a lying check, a forged or malformed message) is asked
        // again without them, while 2t − 1 are left.
        let mut servers = servers.to_vec();
        let quorum = usize::from(self.threshold().search_quorum());
        let mut attempts = 0;
        loop {
            attempts += 1;
            let querier = Querier::new(self.threshold(), query, *params, &mut rand::rng());
            let agreed = self.agree(&querier, tokens.clone(), &servers).await?;
            if agreed.candidates().is_empty() {
                return Ok(agreed.no_candidates());
            }
            let count = u32::try_from(agreed.masks_needed())
                .map_err(|_| ClientError::Protocol("too many candidates".into()))?;
            let (range, fresh) = self.reserve_masks(agreed.servers(), count).await?;
            let round = self.distance_rounds(agreed, range).await;
            self.masks_used(&range, round.is_err());
            let culprits = match &round {
                Err(ClientError::Search(e)) => e.culprits(),
                _ => Vec::new(),
            };
            let left = servers.iter().filter(|s| !culprits.contains(s)).count();
            match round {
                Err(e) if !culprits.is_empty() && left >= quorum && attempts < 3 => {
                    tracing::warn!("search asked again without nodes {culprits:?}: {e}");
                    servers.retain(|s| !culprits.contains(s));
                }
                Err(e) if !fresh && attempts < 3 => {
                    tracing::debug!("search retried with fresh masks after: {e}");
                }
                other => return other,
            }
        }
    }

    /// The candidate round, asked again while the servers' lists differ: the list `2t − 1`
    /// or more servers return, and those servers.
    async fn agree(
        &self,
        querier: &Querier,
        tokens: Vec<Token>,
        servers: &[NodeId],
    ) -> Result<Agreed, ClientError> {
        let request = querier
            .candidate_request(tokens)
            .to_bytes()
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let mut pauses = CANDIDATE_PAUSES_MS.into_iter();
        loop {
            let answers = self.candidate_round(servers, &request).await?;
            let agreed = querier.agree(answers);
            let settled = matches!(&agreed, Ok(a) if a.servers().len() == servers.len());
            match pauses.next() {
                Some(pause) if !settled => {
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                _ => return Ok(agreed?),
            }
        }
    }

    /// One candidate request to every server; each answer decoded.
    async fn candidate_round(
        &self,
        servers: &[NodeId],
        request: &[u8],
    ) -> Result<Vec<(NodeId, CandidateResponse)>, ClientError> {
        let sent = request.len();
        let request = std::sync::Arc::new(request.to_vec());
        let answers = self
            .call_all(servers, move |_, m| proto::CandidatesRequest {
                meta: Some(m),
                candidate_request: request.as_ref().clone(),
            })
            .await;
        let mut lists = Vec::with_capacity(servers.len());
        for (id, r) in answers {
            let reply = r?;
            self.wire
                .payload(MessageKind::CandidateRequest, Direction::Sent, sent);
            self.wire.payload(
                MessageKind::CandidateResponse,
                Direction::Received,
                reply.candidate_response.len(),
            );
            let answer =
                CandidateResponse::from_bytes(&reply.candidate_response).map_err(|source| {
                    SearchError::Malformed {
                        from: Some(id),
                        what: "candidate response",
                        source,
                    }
                })?;
            lists.push((id, answer));
        }
        Ok(lists)
    }

    /// The online rounds: the query's shares to each server (each checks them and signs its
    /// check), every check relayed to every server, masked distance shares back, opened.
    async fn distance_rounds(
        &self,
        agreed: Agreed,
        range: masks::MaskRange,
    ) -> Result<SearchResult, ClientError> {
        let servers = agreed.servers().to_vec();
        let (awaiting, requests) = agreed.share(range.session, range.first, &mut rand::rng())?;
        let mut encoded: BTreeMap<NodeId, zeroize::Zeroizing<Vec<u8>>> = BTreeMap::new();
        for (server, request) in requests {
            let bytes = request
                .to_bytes()
                .map_err(|e| ClientError::Protocol(e.to_string()))?;
            encoded.insert(server, bytes);
        }
        let sizes: BTreeMap<NodeId, usize> = encoded.iter().map(|(n, b)| (*n, b.len())).collect();
        let encoded = std::sync::Arc::new(encoded);
        let confirmations = self.masks.confirmations(&range.session);
        let relayed = std::sync::Arc::clone(&confirmations);
        let answers = self
            .call_all(&servers, move |node, m| proto::QueryCheckRequest {
                meta: Some(m),
                distance_request: encoded.get(&node).map(|b| b.to_vec()).unwrap_or_default(),
                pool_confirmations: relayed.as_ref().clone(),
            })
            .await;
        let mut checks = Vec::with_capacity(servers.len());
        for (server, r) in answers {
            let reply = r?;
            let size = sizes.get(&server).copied().unwrap_or_default();
            self.wire
                .payload(MessageKind::DistanceRequest, Direction::Sent, size);
            self.wire.payloads(
                MessageKind::PoolConfirmation,
                Direction::Sent,
                &confirmations,
            );
            self.wire.payload(
                MessageKind::QueryCheck,
                Direction::Received,
                reply.query_check.len(),
            );
            let check = SignedQueryCheck::from_bytes(&reply.query_check).map_err(|source| {
                SearchError::Malformed {
                    from: Some(server),
                    what: "query check",
                    source,
                }
            })?;
            checks.push((server, check));
        }
        // Every server took the pool into use: later queries relay no confirmation.
        self.masks.mark_confirmed(&range.session);
        let keys = self.manifest.participants();
        let (awaiting, relay) = awaiting.checks(checks, Some(&keys))?;
        let relay: ChecksRelay = relay;
        let relay = std::sync::Arc::new(
            relay
                .to_bytes()
                .map_err(|e| ClientError::Protocol(e.to_string()))?,
        );
        let relay_len = relay.len();
        let answers = self
            .call_all(&servers, move |_, m| proto::DistancesRequest {
                meta: Some(m),
                checks_relay: relay.as_ref().clone(),
            })
            .await;
        let mut received = Vec::with_capacity(servers.len());
        for (server, r) in answers {
            let reply = r?;
            self.wire
                .payload(MessageKind::QueryChecks, Direction::Sent, relay_len);
            self.wire.payload(
                MessageKind::DistanceResponse,
                Direction::Received,
                reply.distance_response.len(),
            );
            let answer =
                DistanceResponse::from_bytes(&reply.distance_response).map_err(|source| {
                    SearchError::Malformed {
                        from: Some(server),
                        what: "distance response",
                        source,
                    }
                })?;
            received.push((server, answer));
        }
        Ok(awaiting.open(received)?)
    }
}
