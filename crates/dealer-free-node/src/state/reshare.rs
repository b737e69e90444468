//! The `ReshareRound` handler: resharing with a two-phase commit whose prepared state is
//! sealed on disk.
//!
//! Steps 0 to 4 run the resharing session (`dealer_free::reshare`). When round 4 ends with
//! a new key share, the receiver seals it — with the new public state — into its secrets
//! file beside the old key, in one atomic write ("prepared"), and only then replies with the
//! outcome. The node keeps serving with its old key. Step 5 (commit, naming the agreed
//! transcript) swaps the prepared key in with one atomic write of the secrets file; step 6
//! (roll back) drops it. Both work from the sealed state alone, so a node restarted while
//! prepared completes or rolls back when told; both are idempotent. A node holding a
//! prepared resharing refuses to start another until it is resolved.
//!
//! Why no answer mixes two keys: a node serves OPRF evaluations only with its installed key
//! (`secrets.cluster`), old until its commit, new after; the client checks every partial
//! evaluation's proof against the verification shares of its one key file and combines only
//! valid ones, so a partial from the other polynomial is dropped, never interpolated with
//! shares of this one (docs/protocol.md, "Two-phase commit").

use dealer_free::reshare::{OldCommittee, ReshareOutgoing, ReshareParams, ReshareSession};
use dealer_free::wire::decode_point;
use phr_sis::Threshold;
use std::collections::BTreeMap;

use super::{
    NodeError, NodeState, ReshareRun, addressed_to, array32, check_label, invalid, key_result,
    node_id, participants_of, receivers, reshare_outbox,
};
use crate::failpoint;
use crate::proto;
use crate::secrets::{ClusterKey, PreparedKey};

/// The last round's step, the commit's and the roll-back's.
const LAST_ROUND: u32 = 4;
const COMMIT: u32 = 5;
const ROLL_BACK: u32 = 6;

impl NodeState {
    /// One step of resharing the DKG key to a new committee (node replacement): step 0
    /// starts a session, steps 1 to 4 deliver the relayed messages of a round and end it
    /// (a receiver seals its new key share as prepared at the end of round 4), step 5 commits
    /// the prepared key, step 6 rolls it back. Until the commit the node serves with its old
    /// key. A node named a dealer but not a receiver is refused: no node gives up its share.
    ///
    /// A node that holds a key share checks the old committee the request names against its
    /// own; a node without one (the replacement) can only be a receiver.
    ///
    /// # Errors
    /// [`NodeError::Invalid`] for an old committee that is not this node's, a new committee
    /// that is not `t` of this cluster's nodes, lists that do not hold this node's own keys,
    /// a step out of order, a commit of another transcript; [`NodeError::Conflict`] for a new
    /// resharing while one is prepared; [`NodeError::NotReady`] when resharing ends without
    /// a key (the reason named) or a commit finds nothing prepared.
    pub fn reshare_round(
        &self,
        caller: &str,
        req: &proto::ReshareRoundRequest,
    ) -> Result<proto::ReshareRoundReply, NodeError> {
        self.fresh(caller, req.meta.as_ref())?;
        failpoint::hit(&format!("reshare-step-{}", req.step), self.id);
        let mut guard = self
            .reshare
            .lock()
            .map_err(|_| NodeError::NotReady("the resharing lock is poisoned".into()))?;
        let mut rng = rand::rng();
        match req.step {
            COMMIT => return self.reshare_commit(req, &mut guard),
            ROLL_BACK => return self.reshare_roll_back(req, &mut guard),
            _ => {}
        }
        if req.step == 0 {
            if let Some(p) = &self.read_secrets()?.prepared {
                return Err(NodeError::Conflict(format!(
                    "node {} holds a prepared resharing (label {}, transcript {}) waiting for \
                     its commit or roll-back: run `cluster replace --resume`",
                    self.id,
                    crate::hex(&p.label),
                    crate::hex(&p.key.transcript)
                )));
            }
            let (session, out, _receiver) = self.start_reshare(req, &mut rng)?;
            *guard = Some(ReshareRun {
                label: req.label.clone(),
                step: 0,
                session,
            });
            self.log(
                &format!("reshare-start label={}", crate::hex(&req.label)),
                false,
            )?;
            return Ok(proto::ReshareRoundReply {
                outbox: reshare_outbox(&out),
                result: None,
                retired: false,
            });
        }
        let Some(run) = guard.as_mut() else {
            return Err(NodeError::NotReady(
                "no resharing session is running here".into(),
            ));
        };
        if run.label != req.label || req.step != run.step + 1 || req.step > LAST_ROUND {
            return Err(invalid(format!(
                "resharing step {} does not follow step {} of this session",
                req.step, run.step
            )));
        }
        // Bounded by the cluster, never by lists in this request (the session's dealers and
        // receivers are at most n each).
        if req.inbox.len() > 8 * usize::from(self.threshold.n()) {
            return Err(invalid("too many resharing messages in one round"));
        }
        for (from, message) in addressed_to(&req.inbox, self.id) {
            // A rejected message is recorded by the session (and counts as silence).
            let _ = run.session.handle_message(from, message);
        }
        let Some(mut run) = guard.take() else {
            return Err(NodeError::NotReady(
                "no resharing session is running here".into(),
            ));
        };
        let (session, out) = match run.session.end_round(&mut rng) {
            Ok(next) => next,
            Err(e) => {
                self.log(&format!("reshare-failed reason={e}"), true)?;
                return Err(NodeError::NotReady(format!(
                    "resharing ended without a key: {e}"
                )));
            }
        };
        run.session = session;
        run.step = req.step;
        let mut result = None;
        if let Some(output) = run.session.output() {
            let key = ClusterKey {
                threshold: self.threshold,
                key_share: output.key_share.clone(),
                group_public_key: output.group_public_key,
                verification_shares: output.verification_shares.clone(),
                transcript: output.transcript,
                // The committee the session was started with and checked against the
                // approved manifest, never a list from this later request.
                participants: run.session.params().receivers().clone(),
            };
            result = Some(key_result(&key, &output.dealers_used));
            let transcript = key.transcript;
            // Sealed and saved before it is held: a failed save leaves nothing prepared (the
            // resharing is rolled back or started again).
            self.change_secrets(|s| {
                s.prepared = Some(PreparedKey {
                    label: req.label.clone(),
                    key,
                });
                Ok(())
            })?;
            self.log(
                &format!("reshare-prepared transcript={}", crate::hex(&transcript)),
                true,
            )?;
            failpoint::hit("reshare-prepared", self.id);
        }
        *guard = Some(run);
        Ok(proto::ReshareRoundReply {
            outbox: reshare_outbox(&out),
            result,
            retired: false,
        })
    }

    /// Step 5: installs the prepared key whose label and transcript the request names (one
    /// atomic write: the old key is gone from then on); a no-op when that key is already
    /// installed; a dealer that is no receiver erases its old share.
    fn reshare_commit(
        &self,
        req: &proto::ReshareRoundRequest,
        guard: &mut Option<ReshareRun>,
    ) -> Result<proto::ReshareRoundReply, NodeError> {
        failpoint::hit("reshare-commit", self.id);
        let reply = |retired| proto::ReshareRoundReply {
            outbox: Vec::new(),
            result: None,
            retired,
        };
        let wanted = req.commit_transcript.as_slice();
        let committed = self.change_secrets(|secrets| {
            if secrets
                .cluster
                .as_ref()
                .is_some_and(|c| c.transcript.as_slice() == wanted)
            {
                return Ok(false);
            }
            let Some(p) = secrets.prepared.as_ref().filter(|p| p.label == req.label) else {
                return Err(NodeError::NotReady(format!(
                    "node {} holds no prepared resharing with this label to commit",
                    self.id
                )));
            };
            if p.key.transcript.as_slice() != wanted {
                return Err(invalid(format!(
                    "the resharing prepared here has transcript {}, not {}",
                    crate::hex(&p.key.transcript),
                    crate::hex(wanted)
                )));
            }
            secrets.cluster = secrets.prepared.take().map(|p| p.key);
            Ok(true)
        });
        match committed {
            // Already installed: nothing was written.
            Ok(false) => Ok(reply(false)),
            Ok(true) => {
                failpoint::hit("reshare-committed", self.id);
                if guard.as_ref().is_some_and(|r| r.label == req.label) {
                    *guard = None;
                }
                self.log(
                    &format!("reshare-done transcript={}", crate::hex(wanted)),
                    true,
                )?;
                Ok(reply(false))
            }
            Err(e) => Err(e),
        }
    }

    /// Step 6: drops the prepared key of the resharing the request names (and its session);
    /// the old key stays. A no-op when nothing of it is prepared.
    fn reshare_roll_back(
        &self,
        req: &proto::ReshareRoundRequest,
        guard: &mut Option<ReshareRun>,
    ) -> Result<proto::ReshareRoundReply, NodeError> {
        if guard.as_ref().is_some_and(|r| r.label == req.label) {
            *guard = None;
        }
        let prepared_here = self
            .read_secrets()?
            .prepared
            .as_ref()
            .is_some_and(|p| p.label == req.label);
        if !prepared_here {
            return Ok(proto::ReshareRoundReply {
                outbox: Vec::new(),
                result: None,
                retired: false,
            });
        }
        let dropped = self.change_secrets(|secrets| {
            Ok(
                if secrets
                    .prepared
                    .as_ref()
                    .is_some_and(|p| p.label == req.label)
                {
                    secrets.prepared.take().map(|p| p.key.transcript)
                } else {
                    None
                },
            )
        })?;
        if let Some(dropped) = dropped {
            self.log(
                &format!("reshare-rolled-back transcript={}", crate::hex(&dropped)),
                true,
            )?;
        }
        Ok(proto::ReshareRoundReply {
            outbox: Vec::new(),
            result: None,
            retired: false,
        })
    }

    /// Checks a resharing request against what this node holds and starts its session.
    fn start_reshare(
        &self,
        req: &proto::ReshareRoundRequest,
        rng: &mut rand::rngs::ThreadRng,
    ) -> Result<(ReshareSession, Vec<ReshareOutgoing>, bool), NodeError> {
        check_label(&req.label)?;
        let new_t = u8::try_from(req.new_t)
            .ok()
            .and_then(|t| u8::try_from(req.receivers.len()).ok().map(|n| (t, n)))
            .and_then(|(t, n)| Threshold::new(t, n).ok())
            .ok_or_else(|| invalid("the new committee's (t, n) is out of range"))?;
        // The new committee is t of the cluster's nodes that take part: all n, or fewer when
        // some have no key yet and join by a later resharing; every receiver is one of 1..=n.
        let n = self.threshold.n();
        if new_t.t() != self.threshold.t() || new_t.n() > n {
            return Err(invalid(format!(
                "the new committee is t = {} of n = {}, this node is configured for t = {} of n = {n}",
                new_t.t(),
                new_t.n(),
                self.threshold.t(),
            )));
        }
        if let Some(stranger) = req
            .receivers
            .iter()
            .find(|r| r.node_id == 0 || r.node_id > u32::from(n))
        {
            return Err(invalid(format!(
                "receiver {} is no node of this cluster (ids 1 to {n})",
                stranger.node_id
            )));
        }
        let old_t = u8::try_from(req.old_t).map_err(|_| invalid("old t out of range"))?;
        let group: [u8; 32] = array32(&req.group_public_key, "the group public key")?;
        let group_public_key =
            decode_point(&group).ok_or_else(|| invalid("the group public key is no point"))?;
        if req.old_verification_shares.len() > usize::from(u8::MAX) {
            return Err(invalid("more than 255 verification shares"));
        }
        let mut verification_shares = BTreeMap::new();
        for v in &req.old_verification_shares {
            let id = node_id(v.node_id, "verification share")?;
            let p = decode_point(&array32(&v.point, "a verification share")?)
                .ok_or_else(|| invalid(format!("node {id}'s verification share is no point")))?;
            if verification_shares.insert(id, p).is_some() {
                return Err(invalid(format!("verification share {id} is listed twice")));
            }
        }
        let old = OldCommittee {
            threshold: old_t,
            group_public_key,
            verification_shares,
        };
        let dealers = participants_of(&req.dealers, "dealer")?;
        let dealing = dealers.contains_key(&self.id);
        let receivers = participants_of(&req.receivers, "receiver")?;
        // A node that deals must also receive: a dealer that only dealt would erase its share
        // at the commit, on the coordinator's word alone, and a coordinator could wipe the
        // key node by node. Shrinking the committee is not done over the network.
        if dealing && !receivers.contains_key(&self.id) {
            return Err(invalid(format!(
                "node {} is named a dealer but not a receiver: a node never gives up its key \
                 share in a resharing",
                self.id
            )));
        }
        // Dealers and receivers with the keys every operator approved; a replaced node counts
        // only once its new keys are in this node's approved manifest.
        let approved = self.approved_manifest()?;
        approved.check_members("receiver", &receivers, false)?;
        approved.check_members("dealer", &dealers, false)?;
        let (own, held) = {
            let secrets = self.read_secrets()?;
            (secrets.keys.clone(), secrets.cluster.clone())
        };
        let me = self.id;
        if receivers.get(&me).is_some_and(|k| *k != own.public())
            || dealers.get(&me).is_some_and(|k| *k != own.public())
        {
            return Err(invalid(format!(
                "the resharing lists other keys for node {me} than its own"
            )));
        }
        match &held {
            Some(key) => {
                if key.threshold.t() != old.threshold
                    || key.group_public_key != old.group_public_key
                    || key.verification_shares != old.verification_shares
                {
                    return Err(invalid(
                        "the old committee named is not the one this node's key belongs to",
                    ));
                }
                if let Some(d) = dealers.iter().find(|(id, k)| {
                    key.participants
                        .get(id)
                        .is_some_and(|registered| registered != *k)
                }) {
                    return Err(invalid(format!(
                        "dealer {} is listed with other keys than the DKG registered",
                        d.0
                    )));
                }
                receivers::check_receivers(&key.participants, &dealers, &receivers, n)?;
            }
            None if dealers.contains_key(&me) => {
                return Err(invalid(format!(
                    "node {me} holds no key share, so it cannot deal one"
                )));
            }
            None => {}
        }
        let receiving = receivers.contains_key(&me);
        let params = ReshareParams::new(&req.label, old, dealers, new_t, receivers)
            .map_err(|e| invalid(e.to_string()))?;
        let old_share = held.as_ref().filter(|_| dealing).map(|k| &k.key_share);
        let (session, out) = ReshareSession::start(params, own, old_share, rng)
            .map_err(|e| invalid(e.to_string()))?;
        Ok((session, out, receiving))
    }
}
