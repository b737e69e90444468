//! Stage-1 and retrieval on the client: band tokens from the threshold VOPRF (every partial
//! checked against the key file's verification shares), ingest of records to every node, and
//! `get`, which verifies every share and rebuilds the image from any `t` good ones.

#[allow(clippy::wildcard_imports)] // the calls use the client's own types throughout
use super::*;

impl ClusterClient {
    fn oprf(&self) -> Result<(TokenContext, BTreeMap<NodeId, PublicKey>), ClientError> {
        let path = &self.profile.raw.key_file;
        let key = ClusterKeyFile::load(path)?;
        let context = TokenContext::new(TOKEN_COLLECTION, BandLayout::default())
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok((context, key.verification_shares(path)?))
    }

    /// The band tokens of `hashes` (at most one token request's worth), from the threshold
    /// VOPRF of the cluster: what any client allowed to search may obtain.
    ///
    /// # Errors
    /// [`ClientError::TooFewNodes`] if fewer than `t` nodes answer with valid evaluations.
    pub async fn tokens(&self, hashes: &[ImageHash]) -> Result<Vec<Vec<Token>>, ClientError> {
        let all = self.node_ids();
        Ok(self.band_tokens(hashes, &all).await?.0)
    }

    /// Band tokens of `hashes` from the threshold VOPRF (one request per call, at most the
    /// context's maximum): asks the first `t` nodes of `from` and, if one of them fails to
    /// answer or answers wrongly, all of `from` again; needs `t` valid answers.
    pub(super) async fn band_tokens(
        &self,
        hashes: &[ImageHash],
        from: &[NodeId],
    ) -> Result<(Vec<Vec<Token>>, BTreeMap<NodeId, String>), ClientError> {
        let t = usize::from(self.threshold().t());
        if from.len() > t
            && let Some(first) = from.get(..t)
            && let Ok(done) = self.band_tokens_from(hashes, first).await
        {
            return Ok(done);
        }
        self.band_tokens_from(hashes, from).await
    }

    async fn band_tokens_from(
        &self,
        hashes: &[ImageHash],
        from: &[NodeId],
    ) -> Result<(Vec<Vec<Token>>, BTreeMap<NodeId, String>), ClientError> {
        let (context, shares) = self.oprf()?;
        let (state, request) = TokenRequest::for_images(&context, hashes, &mut rand::rng())
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let wire = request.to_bytes();
        let sent = wire.len();
        let answers = self
            .call_all(from, move |_, m| proto::EvaluateTokensRequest {
                meta: Some(m),
                token_request: wire.clone(),
            })
            .await;
        let mut partials = Vec::new();
        let mut failures = BTreeMap::new();
        for (id, r) in answers {
            if let Ok(a) = &r {
                self.wire
                    .payload(MessageKind::TokenRequest, Direction::Sent, sent);
                self.wire.payload(
                    MessageKind::OprfPartialEvaluation,
                    Direction::Received,
                    a.partial_evaluation.len(),
                );
            }
            match r.map(|a| PartialEvaluation::from_bytes(&a.partial_evaluation)) {
                Ok(Ok(p)) => partials.push(p),
                Ok(Err(e)) => {
                    failures.insert(id, format!("malformed answer: {e}"));
                }
                Err(e) => {
                    failures.insert(id, short(&e));
                }
            }
        }
        let t = usize::from(self.threshold().t());
        if partials.len() < t {
            return Err(ClientError::TooFewNodes {
                what: "the threshold VOPRF",
                needed: t,
                answered: partials.len(),
                failures,
            });
        }
        let images = tokens::finish_images(state, &partials, &shares, self.threshold())
            .map_err(|e| ClientError::Protocol(format!("token evaluation: {e}")))?;
        Ok((
            images
                .into_iter()
                .map(|ts| ts.iter().map(|t| *t.as_bytes()).collect())
                .collect(),
            failures,
        ))
    }

    /// Stage-1 for `files`, in batches of `batch` images (one token request and one store
    /// request per node and batch): tokens from the threshold VOPRF, image shares and bit
    /// shares, each node's records stored atomically. `progress` is called after each batch
    /// with the number of images done. Returns one outcome per file, in order.
    ///
    /// # Errors
    /// [`ClientError::TooFewNodes`] if fewer than `t` nodes answer the token requests (no
    /// image of that batch is stored then), [`ClientError::NoKey`].
    pub async fn ingest(
        &self,
        files: &[IngestFile],
        batch: usize,
        mut progress: impl FnMut(usize),
    ) -> Result<Vec<IngestOutcome>, ClientError> {
        let threshold = self.threshold();
        let all = self.node_ids();
        let (context, _) = self.oprf()?;
        let batch = batch.clamp(1, context.max_images().max(1));
        let mut outcomes = Vec::with_capacity(files.len());
        let mut done = 0;
        for group in files.chunks(batch) {
            let hashes: Vec<ImageHash> = group.iter().map(|f| f.hash).collect();
            let (tokens, _) = self.band_tokens(&hashes, &all).await?;
            let mut per_node: BTreeMap<NodeId, Vec<Vec<u8>>> = BTreeMap::new();
            let mut ids = Vec::with_capacity(group.len());
            {
                let mut rng = rand::rng();
                for (file, tokens) in group.iter().zip(&tokens) {
                    let id = ImageId(rng.random());
                    let secret = frame_payload(&file.bytes, false);
                    let shares =
                        split_image(&secret, id, threshold, &SplitOptions::default(), &mut rng)
                            .map_err(|e| ClientError::Image {
                                path: file.path.clone(),
                                reason: e.to_string(),
                            })?;
                    let bits = share_hash_bits(file.hash, threshold.t(), &all, &mut rng)
                        .map_err(|e| ClientError::Protocol(e.to_string()))?;
                    for (share, (node, bits)) in shares.iter().zip(bits) {
                        let record = StoredRecord {
                            image_id: id,
                            share: share.to_bytes(),
                            bit_shares: bits,
                            tokens: tokens.clone(),
                        }
                        .to_bytes()
                        .map_err(|e| ClientError::Protocol(e.to_string()))?;
                        per_node.entry(node).or_default().push(record.to_vec());
                    }
                    ids.push(id);
                }
            }
            let mut set = JoinSet::new();
            for (node, records) in per_node {
                let this = self.clone();
                set.spawn(async move {
                    let r = this
                        .call(node, |m| proto::StoreRecordsRequest {
                            owners: Vec::new(),
                            meta: Some(m),
                            records: records.clone(),
                        })
                        .await;
                    if r.is_ok() {
                        this.wire
                            .payloads(MessageKind::StoredRecord, Direction::Sent, &records);
                    }
                    (node, r)
                });
            }
            let mut acks: BTreeMap<NodeId, Result<BTreeSet<u64>, String>> = BTreeMap::new();
            while let Some(joined) = set.join_next().await {
                if let Ok((node, r)) = joined {
                    acks.insert(
                        node,
                        r.map(|a| a.stored.into_iter().collect())
                            .map_err(|e| short(&e)),
                    );
                }
            }
            for (file, id) in group.iter().zip(ids) {
                let mut stored_on = Vec::new();
                let mut failed = BTreeMap::new();
                for node in &all {
                    match acks.get(node) {
                        Some(Ok(set)) if set.contains(&id.0) => stored_on.push(*node),
                        Some(Ok(_)) => {
                            failed.insert(*node, "not acknowledged".to_owned());
                        }
                        Some(Err(e)) => {
                            failed.insert(*node, e.clone());
                        }
                        None => {
                            failed.insert(*node, "no answer".to_owned());
                        }
                    }
                }
                outcomes.push(IngestOutcome {
                    id,
                    path: file.path.clone(),
                    stored_on,
                    failed,
                });
            }
            done += group.len();
            progress(done);
        }
        Ok(outcomes)
    }

    /// Retrieval: every node's share of `id`, verified; the image from any `t` good ones.
    ///
    /// # Errors
    /// [`ClientError::NotFound`] if no node holds it, [`ClientError::TooFewNodes`] with
    /// fewer than `t` good shares (naming why each other node failed).
    pub async fn get(&self, id: ImageId) -> Result<Retrieved, ClientError> {
        let ids = self.node_ids();
        let answers = self
            .call_all(&ids, move |_, m| proto::GetShareRequest {
                meta: Some(m),
                image_id: id.0,
            })
            .await;
        let mut shares = Vec::new();
        let mut rejected = BTreeMap::new();
        let mut unreachable = BTreeMap::new();
        let mut not_found = 0;
        for (node, r) in answers {
            match r {
                Ok(reply) => match Share::from_bytes(&reply.share) {
                    Ok(s) if s.header.image_id == id && s.header.index == node => shares.push(s),
                    Ok(_) => {
                        rejected.insert(node, "a share of another image or node".to_owned());
                    }
                    Err(e) => {
                        rejected.insert(node, format!("malformed share: {e}"));
                    }
                },
                Err(ClientError::Refused { status, .. }) if status.code() == Code::NotFound => {
                    not_found += 1;
                    unreachable.insert(node, "does not hold it".to_owned());
                }
                Err(ClientError::Refused { status, .. }) if status.code() == Code::DataLoss => {
                    rejected.insert(node, status.message().to_owned());
                }
                Err(e) => {
                    unreachable.insert(node, short(&e));
                }
            }
        }
        if shares.is_empty() && not_found > 0 && rejected.is_empty() {
            return Err(ClientError::NotFound(id));
        }
        let t = usize::from(self.threshold().t());
        let done = reconstruct(&shares).map_err(|e| {
            let mut failures = unreachable.clone();
            failures.extend(rejected.clone());
            if shares.len() >= t {
                ClientError::Protocol(format!("image {id}: {e}"))
            } else {
                ClientError::TooFewNodes {
                    what: "retrieval (t good shares)",
                    needed: t,
                    answered: shares.len(),
                    failures,
                }
            }
        })?;
        for bad in &done.rejected {
            rejected.insert(bad.node, "share fails its commitment".to_owned());
        }
        let bytes =
            unframe_payload(&done.image).map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok(Retrieved {
            bytes,
            rejected,
            unreachable,
        })
    }
}
