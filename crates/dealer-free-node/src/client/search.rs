//! Stage-2 on the client: candidates agreed among the servers, the query's distance round
//! with masks from a pool or a fresh dealing, and the opened ranking.

#[allow(clippy::wildcard_imports)] // the calls use the client's own types throughout
use super::*;

impl ClusterClient {
    /// Stage-2 for the pHash `query`: tokens, candidates, the secure ranking among `2t − 1`
    /// reachable nodes, ranked as `params` say.
    ///
    /// # Errors
    /// [`ClientError::TooFewNodes`] with fewer than `2t − 1` reachable nodes (naming the
    /// others and why), [`ClientError::Protocol`] if no `t` servers agree on the candidates
    /// or the distance shares cannot be decoded; [`ClientError::Refused`].
    pub async fn search(
        &self,
        query: ImageHash,
        params: &SearchParams,
    ) -> Result<SearchOutcome, ClientError> {
        let servers = self.search_servers().await?;
        let outcome = self.search_among(query, params, servers).await;
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
        servers: Vec<NodeId>,
    ) -> Result<SearchOutcome, ClientError> {
        let threshold = self.threshold();
        let (tokens, _) = self.band_tokens(&[query], &servers).await?;
        let tokens = tokens.into_iter().next().unwrap_or_default();
        let mut session = [0u8; 32];
        rand::rng().fill_bytes(&mut session);

        // Candidates. Records being ingested reach the nodes one after the other, so lists
        // may differ for a moment: without `t` agreeing lists the client asks again (twice,
        // after 20 and 100 ms) before it gives up.
        let request = CandidateRequest {
            session,
            min_band_votes: params.min_band_votes,
            tokens,
        }
        .to_bytes()
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let mut pauses = [20, 100].into_iter();
        let CandidateAgreement {
            candidates,
            disagreeing,
            ..
        } = loop {
            let agreement = self.candidate_round(&servers, &request, session).await?;
            if agreement.agreeing.len() >= usize::from(threshold.t()) {
                break agreement;
            }
            let Some(pause) = pauses.next() else {
                return Err(ClientError::Protocol(format!(
                    "no candidate list is returned by t = {} servers",
                    threshold.t()
                )));
            };
            tokio::time::sleep(Duration::from_millis(pause)).await;
        };
        if candidates.is_empty() {
            return Ok(SearchOutcome {
                hits: Vec::new(),
                candidates: 0,
                servers,
                wrong_shares_from: BTreeSet::new(),
                disagreeing,
            });
        }
        let count = u32::try_from(candidates.len())
            .map_err(|_| ClientError::Protocol("too many candidates".into()))?;

        // Masks: from a pool dealt ahead of time, or dealt now (the offline phase). A pool a
        // server no longer holds (restarted, expired) is forgotten and the query answered
        // once more from a fresh dealing.
        let ids: Vec<ImageId> = candidates.iter().map(|(id, _)| *id).collect();
        let (mut range, mut fresh) = self.reserve_masks(&servers, count).await?;
        let received = loop {
            let round = self.distance_round(query, &servers, &ids, range).await;
            self.masks_used(&range, round.is_err());
            match round {
                Ok(received) => break received,
                Err(e) if fresh => return Err(e),
                Err(_) => (range, fresh) = self.reserve_masks(&servers, count).await?,
            }
        };
        let refs: Vec<(NodeId, &[Fp61])> =
            received.iter().map(|(n, v)| (*n, v.as_slice())).collect();
        let opened = open_distances(&refs, threshold.t())
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let ranked: Vec<RankedCandidate> = rank(&candidates, &opened.distances, params)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok(SearchOutcome {
            hits: ranked,
            candidates: candidates.len(),
            servers,
            wrong_shares_from: opened.wrong,
            disagreeing,
        })
    }

    /// One candidate request to every server, the answers grouped.
    async fn candidate_round(
        &self,
        servers: &[NodeId],
        request: &[u8],
        session: [u8; 32],
    ) -> Result<CandidateAgreement, ClientError> {
        let request = std::sync::Arc::new(request.to_vec());
        let answers = self
            .call_all(servers, move |_, mut c, m| {
                let req = proto::CandidatesRequest {
                    meta: Some(m),
                    candidate_request: request.as_ref().clone(),
                };
                async move { c.candidates(req).await }
            })
            .await;
        let mut lists = Vec::with_capacity(servers.len());
        for (id, r) in answers {
            let reply = r?;
            let answer = CandidateResponse::from_bytes(&reply.candidate_response)
                .map_err(|e| ClientError::Protocol(format!("node {id}'s candidates: {e}")))?;
            if answer.session != session || answer.node != id {
                return Err(ClientError::Protocol(format!(
                    "node {id} answered for another query or node"
                )));
            }
            lists.push((id, answer.candidates));
        }
        Ok(CandidateAgreement::from_answers(lists))
    }

    /// The online step: the query's bit shares to each server with the mask range, masked
    /// distance shares back.
    async fn distance_round(
        &self,
        query: ImageHash,
        servers: &[NodeId],
        ids: &[ImageId],
        range: masks::MaskRange,
    ) -> Result<Vec<(NodeId, Vec<Fp61>)>, ClientError> {
        let query_shares = share_hash_bits(query, self.threshold().t(), servers, &mut rand::rng())
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let mut requests: BTreeMap<NodeId, Vec<u8>> = BTreeMap::new();
        for (server, shares) in query_shares {
            let bytes = DistanceRequest {
                session: range.session,
                server,
                first_mask: range.first,
                candidates: ids.to_vec(),
                query: shares,
            }
            .to_bytes()
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
            requests.insert(server, bytes);
        }
        let requests = std::sync::Arc::new(requests);
        let answers = self
            .call_all(servers, move |node, mut c, m| {
                let req = proto::DistancesRequest {
                    meta: Some(m),
                    distance_request: requests.get(&node).cloned().unwrap_or_default(),
                };
                async move { c.distances(req).await }
            })
            .await;
        let mut received: Vec<(NodeId, Vec<Fp61>)> = Vec::with_capacity(servers.len());
        for (server, r) in answers {
            let reply = r?;
            let answer = DistanceResponse::from_bytes(&reply.distance_response)
                .map_err(|e| ClientError::Protocol(format!("node {server}'s distances: {e}")))?;
            if answer.session != range.session || answer.server != server {
                return Err(ClientError::Protocol(format!(
                    "node {server} answered for another query or node"
                )));
            }
            received.push((server, answer.shares));
        }
        Ok(received)
    }
}
