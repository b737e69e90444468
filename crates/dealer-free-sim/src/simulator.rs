//! The simulator's core: every party of a deployment driven in this process, round by round,
//! with every delivered message and every party's CPU time recorded in a [`Trace`].
//!
//! [`DealerFreeSimulator`] owns a seeded ChaCha20 generator (all keys, polynomials and
//! protocol randomness come from it), the trace, and the key material of the last key
//! setup. Key setup comes in two flavours:
//!
//! * [`DealerFreeSimulator::run_dkg`]: the dealer-free GJKR DKG of `dealer_free::dkg`,
//!   recorded under [`Stage::Dkg`], with fault injection ([`Misbehaviour`]) and crashed
//!   nodes;
//! * [`DealerFreeSimulator::run_dealer_setup`]: the dealer-based baseline, one dealer that
//!   draws the OPRF key, Feldman-shares it and sends each node its share, recorded under
//!   [`Stage::DealerSetup`].
//!
//! **DKG rounds.** The simulator makes the calls of the lockstep driver
//! (`dealer_free::dkg::local`): the round's messages → their encoded bytes →
//! `handle_message` at each recipient → `end_round` at every node. Steps 1–4 of
//! [`Stage::Dkg`] are the rounds "deal", "complain", "justify", "confirm"; their message
//! records are the messages delivered in that round (a broadcast once per recipient, bytes =
//! the real encoded length, the same counts as the lockstep driver's `RoundStats`). CPU is
//! charged so that the network model can replay it: a round's CPU is what a party computes
//! *before* sending that round's messages (the session's start for "deal"; handling the
//! previous round's messages and ending that round for the others), and a final step
//! "output" holds the handling of the confirmations and the last `end_round`, which sends
//! nothing. (The lockstep driver charges each `end_round` to the round it ends instead, so
//! its per-round CPU is shifted by one round; totals agree.)
//!
//! **Crashed nodes** run no session: they send nothing, and messages addressed to them are
//! not delivered (nor recorded). Their peers see them as silent in every round.
//!
//! **Message faults** ([`MessageFaults`], [`DealerFreeSimulator::run_dkg_with`]). A dropped
//! message is one the driver does not deliver (nor record): the recipient's session never
//! sees it and, at the end of the round, treats it as missing exactly as it treats a silent
//! sender's (a missing deal leads to a complaint the dealer must answer; a missing complaint,
//! justification or confirmation counts as silence and may end in a transcript mismatch,
//! reported in [`DkgRunSummary::failures`]). The model does not stretch the round to the
//! recipient's deadline: a drop changes what is delivered, not the round's duration. Drops
//! are explicit `(round, sender, recipient)` triples and/or a rate, drawn per delivery in
//! delivery order from a ChaCha20 generator of its own seed (the protocol's randomness is
//! untouched), so a run with message faults is as deterministic as one without. Delays do not
//! change what the parties compute; they are kept with the drops so that one value describes
//! a run's message faults, and [`crate::network::NetworkModel::stage_latency_delayed`] adds
//! them to the arrival of the messages on those links.
//!
//! **Guarantees.** The same threshold, seed and calls give the same trace apart from the CPU
//! times ([`Trace::without_cpu_times`]) and the same key material. CPU is measured with
//! [`Instant`] around each party's calls on the calling thread, on which all parties run
//! one after another.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use dealer_free::dkg::{
    DkgOutput, DkgParams, DkgSession, KeyShare, Misbehaviour, Recipient, Round, local,
};
use dealer_free::identity::{NodeKeys, SEAL_OVERHEAD, SIGNATURE_LEN, SigningKey};
use dealer_free::oprf::PublicKey;
use dealer_free::oprf::threshold::verification_shares_from_points;
use dealer_free::vss::{FeldmanDealer, POINT_LEN, verify_share};
use dealer_free::wire::peek_kind;
use phr_sis::{NodeId, Threshold};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::SimError;
use crate::trace::{CpuRecord, MessageRecord, Party, Stage, Trace};

/// The name of the DKG's last step: handling the confirmations and ending the last round.
pub const DKG_OUTPUT_ROUND: &str = "output";

/// The dealer baseline's rounds: the dealer's work and messages, then the nodes' checks.
pub const DEALER_DEAL_ROUND: &str = "deal";
/// See [`DEALER_DEAL_ROUND`].
pub const DEALER_VERIFY_ROUND: &str = "verify";

const DEALER_SIGNATURE_DOMAIN: &[u8] = b"dealer-free-sis/v1/sim-dealer-commitment";

/// The bytes of the dealer baseline's message to one node, for threshold `t`: a computed
/// size from the crate's encodings, not an encoding of its own:
/// `version ‖ kind ‖ recipient` (3) ‖ the Feldman commitment (`32·t`, as
/// `FeldmanCommitment::to_bytes`) ‖ the dealer's signature over it (64) ‖ the share sealed
/// to the node (32 + the AEAD tag, 16, as the DKG's encrypted shares).
#[must_use]
pub fn dealer_share_message_len(t: u8) -> usize {
    3 + POINT_LEN * usize::from(t) + SIGNATURE_LEN + 32 + SEAL_OVERHEAD
}

/// The OPRF key as the nodes hold it after a key setup.
#[derive(Debug, Clone)]
pub struct KeyMaterial {
    /// The stage that produced it: [`Stage::Dkg`] or [`Stage::DealerSetup`].
    pub source: Stage,
    /// The group public key `X = x·G`, compressed.
    pub group_public_key: [u8; 32],
    /// Each node's key share (only nodes that ended with the agreed key).
    pub key_shares: BTreeMap<NodeId, KeyShare>,
    /// Every node's public verification share, as the client uses them.
    pub verification_shares: BTreeMap<NodeId, PublicKey>,
}

/// Faults of the messages of a DKG run (module documentation): which are dropped and which
/// links are slower.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageFaults {
    /// Messages not delivered: `(round, sender, recipient)`.
    pub drop: BTreeSet<(Round, NodeId, NodeId)>,
    /// The probability with which any other delivery is dropped (`0`: none; values outside
    /// `[0, 1]` are clamped).
    pub drop_rate: f64,
    /// Seed of the generator that draws the rate's drops.
    pub drop_seed: u64,
    /// Extra one-way delay on the link `sender → recipient`, in every round and stage
    /// replayed with it ([`crate::network::NetworkModel::stage_latency_delayed`]).
    pub delay: BTreeMap<(Party, Party), Duration>,
}

impl MessageFaults {
    /// Whether nothing is dropped.
    #[must_use]
    pub fn drops_nothing(&self) -> bool {
        self.drop.is_empty() && (self.drop_rate.is_nan() || self.drop_rate <= 0.0)
    }
}

/// The outcome of [`DealerFreeSimulator::run_dkg`].
#[derive(Debug, Clone)]
pub struct DkgRunSummary {
    /// The nodes that neither crashed nor were told to misbehave.
    pub honest: BTreeSet<NodeId>,
    /// Whether every honest node ended with a key and all of them agree on the group key,
    /// `QUAL` and the verification shares.
    pub honest_agree: bool,
    /// The qualified dealers in the honest nodes' view (empty if no honest node finished).
    pub qualified: BTreeSet<NodeId>,
    /// The disqualified dealers and why, in the honest nodes' view.
    pub disqualified: BTreeMap<NodeId, String>,
    /// The agreed group public key, compressed, if the honest nodes agree.
    pub group_public_key: Option<[u8; 32]>,
    /// Nodes (crashed ones excepted) whose session ended with an error, and the error.
    pub failures: BTreeMap<NodeId, String>,
    /// The key shares kept for later stages: every node that ended with the agreed key
    /// (empty if the honest nodes do not agree). The simulator keeps a copy
    /// ([`DealerFreeSimulator::key_material`]).
    pub key_shares: BTreeMap<NodeId, KeyShare>,
    /// Messages delivered in this run.
    pub messages: usize,
    /// Bytes delivered in this run.
    pub bytes: usize,
    /// Messages dropped in this run ([`MessageFaults`]).
    pub dropped: usize,
}

/// The outcome of [`DealerFreeSimulator::run_dealer_setup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealerSetupSummary {
    /// The group public key, compressed.
    pub group_public_key: [u8; 32],
    /// Whether every node's share and the dealer's signature verified.
    pub all_shares_valid: bool,
    /// Messages sent (one per node).
    pub messages: usize,
    /// Bytes sent ([`dealer_share_message_len`] per node).
    pub bytes: usize,
}

/// `n` nodes (and later a client) in one process, with a trace of what they did.
pub struct DealerFreeSimulator {
    threshold: Threshold,
    rng: ChaCha20Rng,
    node_keys: BTreeMap<NodeId, NodeKeys>,
    trace: Trace,
    keys: Option<KeyMaterial>,
    runs: u32,
}

impl std::fmt::Debug for DealerFreeSimulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DealerFreeSimulator")
            .field("threshold", &self.threshold)
            .field("messages", &self.trace.messages.len())
            .field("keys", &self.keys.as_ref().map(|k| k.source))
            .finish_non_exhaustive()
    }
}

fn elapsed(t0: Instant) -> Duration {
    t0.elapsed()
}

impl DealerFreeSimulator {
    /// A simulator for nodes `1..=n` of `threshold`, every random choice drawn from a
    /// ChaCha20 generator seeded with `seed`; the nodes' long-term keys are drawn now.
    #[must_use]
    pub fn new(threshold: Threshold, seed: u64) -> DealerFreeSimulator {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let node_keys = local::generate_keys(threshold.n(), &mut rng);
        DealerFreeSimulator {
            threshold,
            rng,
            node_keys,
            trace: Trace::new(),
            keys: None,
            runs: 0,
        }
    }

    /// `(t, n)`.
    #[must_use]
    pub fn threshold(&self) -> Threshold {
        self.threshold
    }

    /// Everything recorded so far.
    #[must_use]
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Takes the trace, leaving an empty one.
    pub fn take_trace(&mut self) -> Trace {
        std::mem::take(&mut self.trace)
    }

    /// The key material of the last successful key setup.
    #[must_use]
    pub fn key_material(&self) -> Option<&KeyMaterial> {
        self.keys.as_ref()
    }

    fn check_nodes<'a>(
        &self,
        what: &str,
        ids: impl Iterator<Item = &'a NodeId>,
    ) -> Result<(), SimError> {
        for id in ids {
            if !self.node_keys.contains_key(id) {
                return Err(SimError::Params(format!(
                    "{what} node {id} is not one of the {} nodes",
                    self.threshold.n()
                )));
            }
        }
        Ok(())
    }

    /// Runs the DKG among all nodes: those in `faulty` misbehave as given, those in
    /// `crashed` run nothing (see the module docs). Records every delivered message and
    /// every party's CPU under [`Stage::Dkg`]. If the honest nodes agree on a key, it
    /// becomes the simulator's [`KeyMaterial`].
    ///
    /// A DKG that ends without a key is an outcome, not an error: see
    /// [`DkgRunSummary::honest_agree`] and [`DkgRunSummary::failures`].
    ///
    /// # Errors
    /// [`SimError::Params`] for a faulty or crashed node that does not exist;
    /// [`SimError::Dkg`] if the DKG cannot start (e.g. `t < 2`).
    pub fn run_dkg(
        &mut self,
        faulty: &BTreeMap<NodeId, Misbehaviour>,
        crashed: &BTreeSet<NodeId>,
    ) -> Result<DkgRunSummary, SimError> {
        self.run_dkg_with(faulty, crashed, &MessageFaults::default())
    }

    /// [`DealerFreeSimulator::run_dkg`] with the messages in `msg_faults.drop` (and a share
    /// `msg_faults.drop_rate` of the others) not delivered (module documentation). The
    /// delays of `msg_faults` do not change the run.
    ///
    /// # Errors
    /// As [`DealerFreeSimulator::run_dkg`]; [`SimError::Params`] for a dropped message of a
    /// node that does not exist.
    pub fn run_dkg_with(
        &mut self,
        faulty: &BTreeMap<NodeId, Misbehaviour>,
        crashed: &BTreeSet<NodeId>,
        msg_faults: &MessageFaults,
    ) -> Result<DkgRunSummary, SimError> {
        self.check_nodes(
            "dropped message's",
            msg_faults.drop.iter().flat_map(|(_, a, b)| [a, b]),
        )?;
        let mut drop_rng = ChaCha20Rng::seed_from_u64(msg_faults.drop_seed);
        let drop_rate = if msg_faults.drop_rate.is_nan() {
            0.0
        } else {
            msg_faults.drop_rate.clamp(0.0, 1.0)
        };
        let mut dropped = 0;
        self.check_nodes("faulty", faulty.keys())?;
        self.check_nodes("crashed", crashed.iter())?;
        self.runs += 1;
        let label = format!("dealer-free-sis simulator dkg {}", self.runs);
        let publics = self
            .node_keys
            .iter()
            .map(|(id, k)| (*id, k.public()))
            .collect();
        let params = DkgParams::new(label.as_bytes(), self.threshold, publics)
            .map_err(|e| SimError::Dkg(e.to_string()))?;
        let base = self.trace.next_step(Stage::Dkg);
        let alive: Vec<NodeId> = self
            .node_keys
            .keys()
            .copied()
            .filter(|id| !crashed.contains(id))
            .collect();
        let honest: BTreeSet<NodeId> = alive
            .iter()
            .copied()
            .filter(|id| faulty.get(id).is_none_or(|m| *m == Misbehaviour::Honest))
            .collect();

        let mut sessions: BTreeMap<NodeId, DkgSession> = BTreeMap::new();
        let mut outbox = Vec::new();
        let mut outputs: BTreeMap<NodeId, DkgOutput> = BTreeMap::new();
        let mut failures: BTreeMap<NodeId, String> = BTreeMap::new();
        let mut cpu: BTreeMap<NodeId, Duration> = BTreeMap::new();
        for id in &alive {
            let Some(keys) = self.node_keys.get(id).cloned() else {
                continue;
            };
            let misbehaviour = faulty.get(id).copied().unwrap_or_default();
            let t0 = Instant::now();
            let started = DkgSession::start_with(params.clone(), keys, misbehaviour, &mut self.rng);
            *cpu.entry(*id).or_default() += elapsed(t0);
            let (session, out) = started.map_err(|e| SimError::Dkg(format!("node {id}: {e}")))?;
            sessions.insert(*id, session);
            outbox.extend(out);
        }
        let rounds = [Round::Deal, Round::Complain, Round::Justify, Round::Confirm];
        let messages_dropped =
            |round: Round, from: NodeId, to: NodeId| msg_faults.drop.contains(&(round, from, to));
        let (mut messages, mut bytes) = (0, 0);
        for (i, round) in rounds.into_iter().enumerate() {
            let step = base + u32::try_from(i).unwrap_or(u32::MAX);
            // The CPU spent before this round's messages leave.
            self.record_node_cpu(step, round.name(), &mut cpu);
            for msg in std::mem::take(&mut outbox) {
                let targets: Vec<NodeId> = match msg.to {
                    Recipient::All => alive.iter().copied().filter(|id| *id != msg.from).collect(),
                    Recipient::Node(to) if alive.contains(&to) => vec![to],
                    Recipient::Node(_) => Vec::new(),
                };
                let kind = peek_kind(&msg.bytes).ok();
                for to in targets {
                    let random_drop = drop_rate > 0.0 && drop_rng.random::<f64>() < drop_rate;
                    if random_drop || messages_dropped(msg.round, msg.from, to) {
                        dropped += 1;
                        continue;
                    }
                    messages += 1;
                    bytes += msg.bytes.len();
                    self.trace.record_message(MessageRecord {
                        stage: Stage::Dkg,
                        round: round.name().to_owned(),
                        step,
                        from: Party::Node(msg.from),
                        to: Party::Node(to),
                        bytes: msg.bytes.len(),
                        kind,
                    });
                    if let Some(s) = sessions.get_mut(&to) {
                        let t0 = Instant::now();
                        // A rejected message is left out by the session; the run goes on.
                        let _ = s.handle_message(msg.from, &msg.bytes);
                        *cpu.entry(to).or_default() += elapsed(t0);
                    }
                }
            }
            for (id, session) in std::mem::take(&mut sessions) {
                let t0 = Instant::now();
                let result = session.end_round(&mut self.rng);
                *cpu.entry(id).or_default() += elapsed(t0);
                match result {
                    Ok((s, out)) => {
                        outbox.extend(out);
                        if s.round() == Round::Done {
                            if let Some(o) = s.into_output() {
                                outputs.insert(id, o);
                            }
                        } else {
                            sessions.insert(id, s);
                        }
                    }
                    Err(e) => {
                        failures.insert(id, e.to_string());
                    }
                }
            }
        }
        let last = base + u32::try_from(rounds.len()).unwrap_or(u32::MAX);
        self.record_node_cpu(last, DKG_OUTPUT_ROUND, &mut cpu);

        let reference = honest.iter().find_map(|id| outputs.get(id));
        let honest_agree = reference.is_some_and(|r| {
            honest.iter().all(|id| {
                outputs.get(id).is_some_and(|o| {
                    o.group_public_key == r.group_public_key
                        && o.qualified == r.qualified
                        && o.verification_shares == r.verification_shares
                })
            })
        });
        let mut summary = DkgRunSummary {
            honest,
            honest_agree,
            qualified: reference.map(|r| r.qualified.clone()).unwrap_or_default(),
            disqualified: reference
                .map(|r| {
                    r.disqualified
                        .iter()
                        .map(|(id, why)| (*id, why.to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            group_public_key: None,
            failures,
            key_shares: BTreeMap::new(),
            messages,
            bytes,
            dropped,
        };
        if let Some(r) = reference.filter(|_| honest_agree) {
            let verification_shares = verification_shares_from_points(&r.verification_shares)
                .map_err(|e| SimError::Dkg(e.to_string()))?;
            let key_shares: BTreeMap<NodeId, KeyShare> = outputs
                .iter()
                .filter(|(_, o)| o.group_public_key == r.group_public_key)
                .map(|(id, o)| (*id, o.key_share.clone()))
                .collect();
            let group = r.group_public_key.compress().to_bytes();
            summary.group_public_key = Some(group);
            summary.key_shares.clone_from(&key_shares);
            self.keys = Some(KeyMaterial {
                source: Stage::Dkg,
                group_public_key: group,
                key_shares,
                verification_shares,
            });
        }
        Ok(summary)
    }

    /// Records the accumulated CPU of each node for `step` and clears it.
    fn record_node_cpu(&mut self, step: u32, round: &str, cpu: &mut BTreeMap<NodeId, Duration>) {
        for (id, d) in std::mem::take(cpu) {
            self.trace.record_cpu(CpuRecord {
                stage: Stage::Dkg,
                round: round.to_owned(),
                step,
                party: Party::Node(id),
                cpu: d,
            });
        }
    }

    /// The dealer-based baseline of the key setup: one dealer draws the OPRF key,
    /// Feldman-shares it (`dealer_free::vss::FeldmanDealer`), signs the commitment and sends
    /// each node its share and the commitment; each node checks the signature and its share.
    /// Recorded under [`Stage::DealerSetup`]: step "deal" (the dealer's CPU, one message of
    /// [`dealer_share_message_len`] bytes per node) then "verify" (each node's CPU). The
    /// shares are not actually encrypted (their size is counted as if sealed), so the
    /// dealer's CPU leaves out `n` AEAD encryptions of 32 bytes. The key becomes the
    /// simulator's [`KeyMaterial`].
    ///
    /// # Errors
    /// [`SimError::Corrupt`] if a share the dealer computed does not verify (a bug).
    pub fn run_dealer_setup(&mut self) -> Result<DealerSetupSummary, SimError> {
        let step = self.trace.next_step(Stage::DealerSetup);
        // The dealer's long-term key exists before the setup: not timed.
        let dealer_key = SigningKey::random(&mut self.rng);
        let len = dealer_share_message_len(self.threshold.t());
        let nodes: Vec<NodeId> = self.node_keys.keys().copied().collect();

        let t0 = Instant::now();
        let dealer = FeldmanDealer::new(self.threshold, &mut self.rng);
        let commitment_bytes = dealer.commitment().to_bytes();
        let signed = [DEALER_SIGNATURE_DOMAIN, &commitment_bytes].concat();
        let signature = dealer_key.sign(&signed, &mut self.rng);
        let shares: Vec<(NodeId, KeyShare)> = nodes
            .iter()
            .map(|id| (*id, KeyShare::new(*id, dealer.share(*id))))
            .collect();
        let dealer_cpu = t0.elapsed();
        self.trace.record_cpu(CpuRecord {
            stage: Stage::DealerSetup,
            round: DEALER_DEAL_ROUND.to_owned(),
            step,
            party: Party::Dealer,
            cpu: dealer_cpu,
        });
        for id in &nodes {
            self.trace.record_message(MessageRecord {
                stage: Stage::DealerSetup,
                round: DEALER_DEAL_ROUND.to_owned(),
                step,
                from: Party::Dealer,
                to: Party::Node(*id),
                bytes: len,
                kind: None,
            });
        }

        let verifying = dealer_key.verifying_key();
        let mut all_valid = true;
        for (id, share) in &shares {
            let t0 = Instant::now();
            let ok = verifying.verify(&signed, &signature)
                && verify_share(*id, share.secret(), dealer.commitment()).is_ok();
            let cpu = t0.elapsed();
            all_valid &= ok;
            self.trace.record_cpu(CpuRecord {
                stage: Stage::DealerSetup,
                round: DEALER_VERIFY_ROUND.to_owned(),
                step: step + 1,
                party: Party::Node(*id),
                cpu,
            });
        }
        if !all_valid {
            return Err(SimError::Corrupt(
                "a dealer's share fails its Feldman commitment".into(),
            ));
        }
        let group = dealer.commitment().public_key().compress().to_bytes();
        let verification_shares = shares
            .iter()
            .map(|(id, s)| (*id, s.verification_share()))
            .collect();
        self.keys = Some(KeyMaterial {
            source: Stage::DealerSetup,
            group_public_key: group,
            key_shares: shares.into_iter().collect(),
            verification_shares,
        });
        Ok(DealerSetupSummary {
            group_public_key: group,
            all_shares_valid: all_valid,
            messages: nodes.len(),
            bytes: len * nodes.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dealer_setup_counts_one_message_per_node() {
        let th = Threshold::new(3, 5).unwrap();
        let mut sim = DealerFreeSimulator::new(th, 1);
        let s = sim.run_dealer_setup().unwrap();
        assert!(s.all_shares_valid);
        assert_eq!(s.messages, 5);
        assert_eq!(dealer_share_message_len(3), 3 + 96 + 64 + 48);
        assert_eq!(s.bytes, 5 * dealer_share_message_len(3));
        let summary = sim.trace().stage_summary(Stage::DealerSetup);
        assert_eq!(summary.bytes, s.bytes);
        assert_eq!(summary.rounds.len(), 2);
        let keys = sim.key_material().unwrap();
        assert_eq!(keys.source, Stage::DealerSetup);
        assert_eq!(keys.key_shares.len(), 5);
        // Any t shares interpolate to the group key.
        let ids: Vec<NodeId> = keys.key_shares.keys().copied().take(3).collect();
        let pts: Vec<(NodeId, _)> = ids
            .iter()
            .map(|id| (*id, *keys.key_shares[id].secret()))
            .collect();
        let x = dealer_free::vss::interpolate_at_zero(&pts).unwrap();
        let pk = KeyShare::new(NodeId::new(1).unwrap(), x).verification_share();
        assert_eq!(pk.to_bytes(), keys.group_public_key);
    }

    #[test]
    fn unknown_nodes_are_rejected() {
        let th = Threshold::new(2, 3).unwrap();
        let mut sim = DealerFreeSimulator::new(th, 1);
        let crashed = BTreeSet::from([NodeId::new(9).unwrap()]);
        assert!(matches!(
            sim.run_dkg(&BTreeMap::new(), &crashed),
            Err(SimError::Params(_))
        ));
    }
}
