//! A lockstep driver that runs every node of a DKG in one process: round by round, every
//! message is delivered to its recipients, then every node ends its round.
//!
//! This is the smallest honest driver of [`DkgSession`] (tests, benchmarks, the
//! `dealer-free-sis dkg` command); the simulator adds a network model on top of the same
//! calls. It measures bytes exactly as they would go on the wire (a broadcast counts once
//! per recipient) and takes CPU time from a caller-supplied clock, so that this crate
//! itself never reads one.

use std::collections::BTreeMap;
use std::time::Duration;

use phr_sis::{NodeId, Threshold};
use rand::CryptoRng;

use super::{DkgError, DkgOutput, DkgParams, DkgSession, Misbehaviour, Outgoing, Recipient, Round};
use crate::identity::NodeKeys;

/// What one round cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundStats {
    /// The round.
    pub round: Round,
    /// Messages delivered (a broadcast counts once per recipient).
    pub messages: usize,
    /// Bytes delivered.
    pub bytes: usize,
    /// CPU time of all nodes together, by the caller's clock.
    pub cpu: Duration,
}

/// The result of a local run.
#[derive(Debug)]
pub struct LocalRun {
    /// The parameters every node used.
    pub params: DkgParams,
    /// Each node's output or error.
    pub outcomes: BTreeMap<NodeId, Result<DkgOutput, DkgError>>,
    /// Per-round cost, in order.
    pub rounds: Vec<RoundStats>,
    /// CPU time per node, all rounds together.
    pub cpu_per_node: BTreeMap<NodeId, Duration>,
}

impl LocalRun {
    /// Total bytes on the wire.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.rounds.iter().map(|r| r.bytes).sum()
    }

    /// Total messages.
    #[must_use]
    pub fn messages(&self) -> usize {
        self.rounds.iter().map(|r| r.messages).sum()
    }

    /// Total CPU time of all nodes.
    #[must_use]
    pub fn cpu(&self) -> Duration {
        self.rounds.iter().map(|r| r.cpu).sum()
    }
}

/// Long-term keys for nodes `1..=n`.
pub fn generate_keys<R: CryptoRng + ?Sized>(n: u8, rng: &mut R) -> BTreeMap<NodeId, NodeKeys> {
    NodeId::first(n)
        .map(|id| (id, NodeKeys::generate(id, rng)))
        .collect()
}

/// Runs a DKG among nodes `1..=n` with fresh keys; nodes in `faulty` misbehave.
/// `clock` returns a monotonic CPU or wall time (pass `|| Duration::ZERO` to skip timing).
///
/// # Errors
/// [`DkgError::InvalidParams`] for parameters that cannot work.
pub fn run<R: CryptoRng + ?Sized>(
    threshold: Threshold,
    label: &[u8],
    faulty: &BTreeMap<NodeId, Misbehaviour>,
    rng: &mut R,
    clock: &mut dyn FnMut() -> Duration,
) -> Result<LocalRun, DkgError> {
    let keys = generate_keys(threshold.n(), rng);
    run_with_keys(threshold, label, keys, faulty, rng, clock)
}

/// [`run`] with given long-term keys.
///
/// # Errors
/// As [`run`].
pub fn run_with_keys<R: CryptoRng + ?Sized>(
    threshold: Threshold,
    label: &[u8],
    keys: BTreeMap<NodeId, NodeKeys>,
    faulty: &BTreeMap<NodeId, Misbehaviour>,
    rng: &mut R,
    clock: &mut dyn FnMut() -> Duration,
) -> Result<LocalRun, DkgError> {
    let publics = keys.iter().map(|(id, k)| (*id, k.public())).collect();
    let params = DkgParams::new(label, threshold, publics)?;
    let mut cpu_per_node: BTreeMap<NodeId, Duration> = BTreeMap::new();
    let mut sessions: BTreeMap<NodeId, DkgSession> = BTreeMap::new();
    let mut outcomes: BTreeMap<NodeId, Result<DkgOutput, DkgError>> = BTreeMap::new();
    let mut outbox: Vec<Outgoing> = Vec::new();
    let mut start_cpu = Duration::ZERO;
    for (id, k) in keys {
        let misbehaviour = faulty.get(&id).copied().unwrap_or_default();
        let t0 = clock();
        let (session, out) = DkgSession::start_with(params.clone(), k, misbehaviour, rng)?;
        let dt = clock().saturating_sub(t0);
        start_cpu += dt;
        *cpu_per_node.entry(id).or_default() += dt;
        sessions.insert(id, session);
        outbox.extend(out);
    }
    let mut rounds = Vec::new();
    // Starting (dealing) is charged to round 1, each round's end to that round.
    let mut pending_cpu = start_cpu;
    for round in [Round::Deal, Round::Complain, Round::Justify, Round::Confirm] {
        let mut stats = RoundStats {
            round,
            messages: 0,
            bytes: 0,
            cpu: pending_cpu,
        };
        for msg in std::mem::take(&mut outbox) {
            let targets: Vec<NodeId> = match msg.to {
                Recipient::All => sessions
                    .keys()
                    .copied()
                    .filter(|id| *id != msg.from)
                    .collect(),
                Recipient::Node(to) => vec![to],
            };
            for to in targets {
                stats.messages += 1;
                stats.bytes += msg.bytes.len();
                if let Some(s) = sessions.get_mut(&to) {
                    let t0 = clock();
                    // A rejected message is recorded by the session's round logic or is
                    // simply not used; the run goes on.
                    let _ = s.handle_message(msg.from, &msg.bytes);
                    let dt = clock().saturating_sub(t0);
                    stats.cpu += dt;
                    *cpu_per_node.entry(to).or_default() += dt;
                }
            }
        }
        for (id, session) in std::mem::take(&mut sessions) {
            let t0 = clock();
            let result = session.end_round(rng);
            let dt = clock().saturating_sub(t0);
            // Round r's end produces round r + 1's messages; charge it to round r.
            stats.cpu += dt;
            *cpu_per_node.entry(id).or_default() += dt;
            match result {
                Ok((s, out)) => {
                    outbox.extend(out);
                    if s.round() == Round::Done {
                        if let Some(o) = s.into_output() {
                            outcomes.insert(id, Ok(o));
                        }
                    } else {
                        sessions.insert(id, s);
                    }
                }
                Err(e) => {
                    outcomes.insert(id, Err(e));
                }
            }
        }
        pending_cpu = Duration::ZERO;
        rounds.push(stats);
    }
    Ok(LocalRun {
        params,
        outcomes,
        rounds,
        cpu_per_node,
    })
}
