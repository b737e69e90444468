//! The `DkgRound` handler: the DKG among the nodes the coordinator names, with the key
//! installed only at a commit step.
//!
//! Rules (docs/protocol.md, "DkgRound"):
//!
//! - The participants are the nodes that answered the coordinator: at least `min(n, 2t − 1)`
//!   of this cluster's ids `1..=n` (so that `t − 1` of them may fall silent and `t` still
//!   finish), this node among them with its own keys. The session's `(t, m)` is `t` of
//!   those `m`; the nodes left out get their share later by resharing (`cluster replace`).
//! - A node that holds no installed key accepts a fresh step 0 at any time: it drops any
//!   session, failed or finished, and any key waiting for its commit. So a DKG that failed
//!   at any step, on any node, can be run again.
//! - After round 4 the node keeps its key **in memory only** and replies with the public
//!   outcome; step 5 (the commit, carrying the agreed transcript) seals it into the secrets
//!   file, and only from then on does the node refuse a new DKG. The coordinator sends the
//!   commit once at least `t` nodes reported the same outcome. A node that restarts before
//!   its commit has no key, like one that failed: it joins through resharing.

use dealer_free::dkg::{DkgParams, DkgSession};
use phr_sis::Threshold;

use super::{
    DkgRun, NodeError, NodeState, addressed_to, check_label, invalid, key_result, outbox,
    participants_of,
};
use crate::failpoint;
use crate::proto;
use crate::secrets::ClusterKey;

/// The last round's step, and the commit's.
const LAST_ROUND: u32 = 4;
const COMMIT: u32 = 5;

impl NodeState {
    /// One step of the DKG: step 0 starts a session, steps 1 to 4 deliver the relayed
    /// messages of a round and end it (after round 4 the reply carries the public outcome and
    /// the node holds its key share in memory), step 5 installs the key share whose
    /// transcript the request names, sealed at rest.
    ///
    /// # Errors
    /// [`NodeError::Conflict`] if the node already holds a key share (another one, at the
    /// commit); [`NodeError::Invalid`] for participants that are too few or not of this
    /// cluster, not this node's keys, a step out of order; [`NodeError::NotReady`] when the
    /// DKG ends without a key (the reason named) or there is nothing to commit.
    pub fn dkg_round(
        &self,
        caller: &str,
        req: &proto::DkgRoundRequest,
    ) -> Result<proto::DkgRoundReply, NodeError> {
        self.fresh(caller, req.meta.as_ref())?;
        failpoint::hit(&format!("dkg-step-{}", req.step), self.id);
        failpoint::hang(&format!("dkg-silent-{}", req.step), self.id);
        if req.step == COMMIT {
            return self.dkg_commit(req);
        }
        if let Some(c) = &self.read_secrets()?.cluster {
            return Err(NodeError::Conflict(format!(
                "node {} already holds a key share (DKG transcript {}); its data would be lost",
                self.id,
                crate::hex(&c.transcript)
            )));
        }
        let mut guard = self
            .dkg
            .lock()
            .map_err(|_| NodeError::NotReady("the DKG lock is poisoned".into()))?;
        let mut rng = rand::rng();
        if req.step == 0 {
            let (params, own) = self.dkg_params(req)?;
            let (session, out) =
                DkgSession::start(params, own, &mut rng).map_err(|e| invalid(e.to_string()))?;
            // A valid fresh run replaces whatever ran before, failed or waiting for its commit.
            *guard = Some(DkgRun {
                label: req.label.clone(),
                step: 0,
                session,
                pending: None,
            });
            self.log(
                &format!("dkg-start label={}", crate::hex(&req.label)),
                false,
            )?;
            return Ok(proto::DkgRoundReply {
                outbox: outbox(&out),
                result: None,
            });
        }
        let Some(run) = guard.as_mut() else {
            return Err(NodeError::NotReady("no DKG session is running here".into()));
        };
        if run.label != req.label || req.step != run.step + 1 || req.step > LAST_ROUND {
            return Err(invalid(format!(
                "DKG step {} does not follow step {} of this session",
                req.step, run.step
            )));
        }
        let n = run.session.params().threshold().n();
        if req.inbox.len() > 4 * usize::from(n) {
            return Err(invalid("too many DKG messages in one round"));
        }
        // The session leaves the slot: a round that fails drops it.
        let Some(mut run) = guard.take() else {
            return Err(NodeError::NotReady("no DKG session is running here".into()));
        };
        for (from, message) in addressed_to(&req.inbox, self.id) {
            // A rejected message is recorded by the session (and counts as silence).
            let _ = run.session.handle_message(from, message);
        }
        let (session, out) = match run.session.end_round(&mut rng) {
            Ok(next) => next,
            Err(e) => {
                self.log(&format!("dkg-failed reason={e}"), true)?;
                return Err(NodeError::NotReady(format!(
                    "the DKG ended without a key: {e}"
                )));
            }
        };
        let mut result = None;
        let mut pending = None;
        if let Some(output) = session.output() {
            let key = ClusterKey {
                // The cluster's (t, n), whatever subset ran the DKG: the key is a t-of-n key
                // whose missing shares come by resharing.
                threshold: self.threshold,
                key_share: output.key_share.clone(),
                group_public_key: output.group_public_key,
                verification_shares: output.verification_shares.clone(),
                transcript: output.transcript,
                participants: session.params().participants().clone(),
            };
            result = Some(key_result(&key, &output.qualified));
            self.log(
                &format!("dkg-prepared transcript={}", crate::hex(&key.transcript)),
                false,
            )?;
            pending = Some(key);
        }
        *guard = Some(DkgRun {
            label: run.label,
            step: req.step,
            session,
            pending,
        });
        Ok(proto::DkgRoundReply {
            outbox: outbox(&out),
            result,
        })
    }

    /// Checks step 0 and builds the session's parameters and this node's keys.
    fn dkg_params(
        &self,
        req: &proto::DkgRoundRequest,
    ) -> Result<(DkgParams, dealer_free::identity::NodeKeys), NodeError> {
        let t = self.threshold.t();
        let n = self.threshold.n();
        if req.t != u32::from(t) {
            return Err(invalid(format!(
                "the DKG asks t = {}, this node is configured for t = {t}",
                req.t
            )));
        }
        let participants = participants_of(&req.participants, "participant")?;
        // Every participant with the keys its operator approved (the coordinator cannot
        // stand in for a node); nodes may be left out, down to the bound below.
        self.approved_manifest()?
            .check_members("participant", &participants, false)?;
        if let Some(stranger) = participants.keys().find(|id| id.get() > n) {
            return Err(invalid(format!(
                "participant {stranger} is no node of this cluster (ids 1 to {n})"
            )));
        }
        let needed = usize::from(n).min(2 * usize::from(t) - 1);
        if participants.len() < needed {
            return Err(invalid(format!(
                "a DKG needs at least {needed} of the {n} nodes (2t − 1, so that t − 1 may \
                 fall silent), {} given",
                participants.len()
            )));
        }
        let own = self.read_secrets()?.keys.clone();
        if participants.get(&self.id) != Some(&own.public()) {
            return Err(invalid(format!(
                "the participants do not list node {}'s own public keys",
                self.id
            )));
        }
        check_label(&req.label)?;
        let m = u8::try_from(participants.len()).map_err(|_| invalid("too many participants"))?;
        let threshold = Threshold::new(t, m).map_err(|e| invalid(e.to_string()))?;
        let params = DkgParams::new(&req.label, threshold, participants)
            .map_err(|e| invalid(e.to_string()))?;
        Ok((params, own))
    }

    /// Step 5: installs the key share waiting for its commit, if its transcript is the one
    /// the coordinator names. Committing the key already installed is a no-op (a repeated
    /// or resumed commit).
    fn dkg_commit(&self, req: &proto::DkgRoundRequest) -> Result<proto::DkgRoundReply, NodeError> {
        let done = proto::DkgRoundReply {
            outbox: Vec::new(),
            result: None,
        };
        if let Some(c) = &self.read_secrets()?.cluster {
            if c.transcript.as_slice() == req.commit_transcript.as_slice() {
                return Ok(done);
            }
            return Err(NodeError::Conflict(format!(
                "node {} already holds another key share (DKG transcript {})",
                self.id,
                crate::hex(&c.transcript)
            )));
        }
        let mut guard = self
            .dkg
            .lock()
            .map_err(|_| NodeError::NotReady("the DKG lock is poisoned".into()))?;
        let matches = guard.as_ref().is_some_and(|run| {
            run.pending
                .as_ref()
                .is_some_and(|k| k.transcript.as_slice() == req.commit_transcript.as_slice())
        });
        if !matches {
            return Err(NodeError::NotReady(format!(
                "node {} holds no DKG key with transcript {} to commit",
                self.id,
                crate::hex(&req.commit_transcript)
            )));
        }
        let Some(key) = guard.as_ref().and_then(|run| run.pending.clone()) else {
            return Err(NodeError::NotReady("no DKG session is running here".into()));
        };
        let transcript = key.transcript;
        // Saved first, then served: a failed save keeps the run, so the commit can be sent
        // again.
        self.change_secrets(|s| {
            // Checked again under the writers' lock: a key installed meanwhile (a resharing's
            // commit) is never overwritten.
            if let Some(c) = &s.cluster {
                return Err(NodeError::Conflict(format!(
                    "node {} already holds another key share (transcript {})",
                    self.id,
                    crate::hex(&c.transcript)
                )));
            }
            s.cluster = Some(key);
            Ok(())
        })?;
        *guard = None;
        self.log(
            &format!("dkg-done transcript={}", crate::hex(&transcript)),
            true,
        )?;
        Ok(done)
    }
}
