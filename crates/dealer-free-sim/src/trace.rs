//! What a simulated run did, message by message and party by party: the [`Trace`].
//!
//! A driver records every delivered message ([`MessageRecord`]: stage, round, sender,
//! recipient, the length of its real encoding) and every party's CPU time per round
//! ([`CpuRecord`]). Nothing here reads a clock or encodes a message: the records are what
//! the driver measured. The trace is the single input of the network model
//! ([`crate::network`]) and of the reports ([`Trace::summary`]).
//!
//! Guarantees:
//! * Records keep the order in which they were made; aggregates iterate stages in the
//!   order of [`Stage::ALL`], rounds by their `step` and parties in [`Party`]'s order, so a
//!   deterministic run gives byte-identical summaries (apart from CPU times).
//! * A broadcast is one record per recipient: counts and bytes are what the network
//!   carries.
//! * Summaries ([`TraceSummary`], [`StageSummary`], [`RoundSummary`], [`PartySummary`]) are
//!   serde-serialisable; parties and message kinds appear as strings, CPU as nanoseconds.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use dealer_free::wire::MessageKind;
use phr_sis::NodeId;
use serde::Serialize;

/// A phase of a deployment, as the design names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// The dealer-based baseline: one dealer creates the OPRF key and shares it.
    DealerSetup,
    /// The distributed key generation among the nodes (no dealer).
    Dkg,
    /// Ingest: tokenization via the threshold VOPRF, sharing, storage.
    Stage1,
    /// Search: query tokens, candidate lookup, secure ranking, retrieval and
    /// reconstruction.
    Stage2,
}

impl Stage {
    /// Every stage, in report order.
    pub const ALL: [Stage; 4] = [Stage::DealerSetup, Stage::Dkg, Stage::Stage1, Stage::Stage2];

    /// The stage's name in reports: "dealer setup", "DKG", "Stage-1", "Stage-2".
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Stage::DealerSetup => "dealer setup",
            Stage::Dkg => "DKG",
            Stage::Stage1 => "Stage-1",
            Stage::Stage2 => "Stage-2",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Who sends, receives or computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Party {
    /// A storage node.
    Node(NodeId),
    /// The owner's (or querier's) client.
    Client,
    /// The trusted dealer of the baseline.
    Dealer,
}

impl Party {
    /// The party's name in reports: "node 3", "client", "dealer".
    #[must_use]
    pub fn label(self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Party {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Party::Node(id) => write!(f, "node {id}"),
            Party::Client => f.write_str("client"),
            Party::Dealer => f.write_str("dealer"),
        }
    }
}

/// One delivered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    /// The stage it belongs to.
    pub stage: Stage,
    /// The round's name, e.g. "deal", "complain", "token-request".
    pub round: String,
    /// The round's sequence number within the stage (rounds run in increasing `step`).
    pub step: u32,
    /// The sender.
    pub from: Party,
    /// The recipient.
    pub to: Party,
    /// The length of its real encoding.
    pub bytes: usize,
    /// The wire kind, when it has one of the crate's encodings.
    pub kind: Option<MessageKind>,
}

/// CPU time one party spent in one round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuRecord {
    /// The stage.
    pub stage: Stage,
    /// The round's name.
    pub round: String,
    /// The round's sequence number within the stage.
    pub step: u32,
    /// The party that computed.
    pub party: Party,
    /// The time, measured by the driver.
    pub cpu: Duration,
}

/// Every message and CPU record of a run, in recording order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    /// Delivered messages.
    pub messages: Vec<MessageRecord>,
    /// CPU spent, per party and round.
    pub cpu: Vec<CpuRecord>,
}

/// Records one stage's rounds into a [`Trace`] in order: [`StageRecorder::round`] starts the
/// next round (its `step` follows the stage's last one), then messages and CPU are recorded
/// under it. Drivers of Stage-1 and Stage-2 use it so that their rounds are numbered the same
/// way as the DKG's.
#[derive(Debug)]
pub struct StageRecorder<'a> {
    trace: &'a mut Trace,
    stage: Stage,
    round: String,
    step: u32,
}

impl<'a> StageRecorder<'a> {
    /// A recorder for `stage`; nothing is recorded before the first [`StageRecorder::round`].
    pub fn new(trace: &'a mut Trace, stage: Stage) -> StageRecorder<'a> {
        StageRecorder {
            trace,
            stage,
            round: String::new(),
            step: 0,
        }
    }

    /// Starts the next round, named `name`.
    pub fn round(&mut self, name: &str) {
        self.step = self.trace.next_step(self.stage).max(self.step + 1);
        self.round = name.to_owned();
    }

    /// Records a delivered message of the current round.
    pub fn message(&mut self, from: Party, to: Party, bytes: usize, kind: Option<MessageKind>) {
        self.trace.record_message(MessageRecord {
            stage: self.stage,
            round: self.round.clone(),
            step: self.step,
            from,
            to,
            bytes,
            kind,
        });
    }

    /// Records CPU time of `party` in the current round.
    pub fn cpu(&mut self, party: Party, cpu: Duration) {
        self.trace.record_cpu(CpuRecord {
            stage: self.stage,
            round: self.round.clone(),
            step: self.step,
            party,
            cpu,
        });
    }
}

/// Messages, bytes and CPU of one round of a stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoundSummary {
    /// The round's sequence number.
    pub step: u32,
    /// The round's name.
    pub round: String,
    /// Messages delivered.
    pub messages: usize,
    /// Bytes delivered.
    pub bytes: usize,
    /// CPU of all parties together, in nanoseconds.
    pub cpu_ns: u64,
    /// Message counts by wire kind (`Debug` name; "other" for messages without one).
    pub kinds: BTreeMap<String, usize>,
}

/// Messages, bytes and CPU of one stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageSummary {
    /// The stage's name ([`Stage::name`]).
    pub stage: String,
    /// Messages delivered.
    pub messages: usize,
    /// Bytes delivered.
    pub bytes: usize,
    /// CPU of all parties together, in nanoseconds.
    pub cpu_ns: u64,
    /// Its rounds, by step.
    pub rounds: Vec<RoundSummary>,
}

/// What one party sent, received and computed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartySummary {
    /// The party ([`Party::label`]).
    pub party: String,
    /// The node id, for a node.
    pub node: Option<u8>,
    /// Messages sent.
    pub sent_messages: usize,
    /// Bytes sent.
    pub sent_bytes: usize,
    /// Messages received.
    pub received_messages: usize,
    /// Bytes received.
    pub received_bytes: usize,
    /// CPU time, in nanoseconds.
    pub cpu_ns: u64,
}

/// A whole trace, aggregated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceSummary {
    /// Every stage with at least one record, in [`Stage::ALL`] order.
    pub stages: Vec<StageSummary>,
    /// Every party with at least one record, over all stages.
    pub parties: Vec<PartySummary>,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Trace {
    /// An empty trace.
    #[must_use]
    pub fn new() -> Trace {
        Trace::default()
    }

    /// Records one delivered message.
    pub fn record_message(&mut self, record: MessageRecord) {
        self.messages.push(record);
    }

    /// Records CPU time of one party in one round.
    pub fn record_cpu(&mut self, record: CpuRecord) {
        self.cpu.push(record);
    }

    /// Appends every record of `other`.
    pub fn extend(&mut self, other: Trace) {
        self.messages.extend(other.messages);
        self.cpu.extend(other.cpu);
    }

    /// The first unused step of `stage` (one past the largest recorded, 1 if none), for a
    /// driver that appends another run of the stage.
    #[must_use]
    pub fn next_step(&self, stage: Stage) -> u32 {
        let m = self
            .messages
            .iter()
            .filter(|r| r.stage == stage)
            .map(|r| r.step);
        let c = self.cpu.iter().filter(|r| r.stage == stage).map(|r| r.step);
        m.chain(c).max().map_or(1, |s| s.saturating_add(1))
    }

    /// The messages of `stage`.
    pub fn stage_messages(&self, stage: Stage) -> impl Iterator<Item = &MessageRecord> + '_ {
        self.messages.iter().filter(move |r| r.stage == stage)
    }

    /// The CPU records of `stage`.
    pub fn stage_cpu(&self, stage: Stage) -> impl Iterator<Item = &CpuRecord> + '_ {
        self.cpu.iter().filter(move |r| r.stage == stage)
    }

    /// Whether anything of `stage` was recorded.
    #[must_use]
    pub fn has_stage(&self, stage: Stage) -> bool {
        self.stage_messages(stage).next().is_some() || self.stage_cpu(stage).next().is_some()
    }

    /// The total CPU of every party in `stage`.
    #[must_use]
    pub fn stage_cpu_total(&self, stage: Stage) -> Duration {
        self.stage_cpu(stage).map(|r| r.cpu).sum()
    }

    /// Per round of `stage` (by step): messages, bytes, CPU.
    #[must_use]
    pub fn round_summaries(&self, stage: Stage) -> Vec<RoundSummary> {
        fn entry<'a>(
            rounds: &'a mut BTreeMap<u32, RoundSummary>,
            step: u32,
            round: &str,
        ) -> &'a mut RoundSummary {
            rounds.entry(step).or_insert_with(|| RoundSummary {
                step,
                round: round.to_owned(),
                messages: 0,
                bytes: 0,
                cpu_ns: 0,
                kinds: BTreeMap::new(),
            })
        }
        let mut rounds: BTreeMap<u32, RoundSummary> = BTreeMap::new();
        for m in self.stage_messages(stage) {
            let r = entry(&mut rounds, m.step, &m.round);
            r.messages += 1;
            r.bytes += m.bytes;
            let kind = m
                .kind
                .map_or_else(|| "other".to_owned(), |k| format!("{k:?}"));
            *r.kinds.entry(kind).or_default() += 1;
        }
        for c in self.stage_cpu(stage) {
            let r = entry(&mut rounds, c.step, &c.round);
            r.cpu_ns = r.cpu_ns.saturating_add(nanos(c.cpu));
        }
        rounds.into_values().collect()
    }

    /// The totals of `stage` and its rounds.
    #[must_use]
    pub fn stage_summary(&self, stage: Stage) -> StageSummary {
        let rounds = self.round_summaries(stage);
        StageSummary {
            stage: stage.name().to_owned(),
            messages: rounds.iter().map(|r| r.messages).sum(),
            bytes: rounds.iter().map(|r| r.bytes).sum(),
            cpu_ns: rounds.iter().fold(0, |a, r| a.saturating_add(r.cpu_ns)),
            rounds,
        }
    }

    /// Per party: messages and bytes sent and received, CPU; only `stage`'s records, or all
    /// of them for `None`.
    #[must_use]
    pub fn party_summaries(&self, stage: Option<Stage>) -> Vec<PartySummary> {
        let keep = |s: Stage| stage.is_none_or(|want| want == s);
        fn entry(parties: &mut BTreeMap<Party, PartySummary>, p: Party) -> &mut PartySummary {
            parties.entry(p).or_insert_with(|| PartySummary {
                party: p.label(),
                node: match p {
                    Party::Node(id) => Some(id.get()),
                    Party::Client | Party::Dealer => None,
                },
                sent_messages: 0,
                sent_bytes: 0,
                received_messages: 0,
                received_bytes: 0,
                cpu_ns: 0,
            })
        }
        let mut parties: BTreeMap<Party, PartySummary> = BTreeMap::new();
        for m in self.messages.iter().filter(|m| keep(m.stage)) {
            let s = entry(&mut parties, m.from);
            s.sent_messages += 1;
            s.sent_bytes += m.bytes;
            let r = entry(&mut parties, m.to);
            r.received_messages += 1;
            r.received_bytes += m.bytes;
        }
        for c in self.cpu.iter().filter(|c| keep(c.stage)) {
            let p = entry(&mut parties, c.party);
            p.cpu_ns = p.cpu_ns.saturating_add(nanos(c.cpu));
        }
        parties.into_values().collect()
    }

    /// Every recorded stage and every party, aggregated.
    #[must_use]
    pub fn summary(&self) -> TraceSummary {
        TraceSummary {
            stages: Stage::ALL
                .into_iter()
                .filter(|s| self.has_stage(*s))
                .map(|s| self.stage_summary(s))
                .collect(),
            parties: self.party_summaries(None),
        }
    }

    /// The trace with every CPU time set to zero (to compare two runs, whose clocks
    /// differ).
    #[must_use]
    pub fn without_cpu_times(&self) -> Trace {
        Trace {
            messages: self.messages.clone(),
            cpu: self
                .cpu
                .iter()
                .map(|c| CpuRecord {
                    cpu: Duration::ZERO,
                    ..c.clone()
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(i: u8) -> Party {
        Party::Node(NodeId::new(i).unwrap())
    }

    fn msg(step: u32, round: &str, from: Party, to: Party, bytes: usize) -> MessageRecord {
        MessageRecord {
            stage: Stage::Dkg,
            round: round.into(),
            step,
            from,
            to,
            bytes,
            kind: None,
        }
    }

    #[test]
    fn names() {
        assert_eq!(Stage::Dkg.name(), "DKG");
        assert_eq!(Stage::Stage1.name(), "Stage-1");
        assert_eq!(Stage::Stage2.name(), "Stage-2");
        assert_eq!(Stage::DealerSetup.name(), "dealer setup");
        assert_eq!(node(3).label(), "node 3");
        assert_eq!(Party::Client.label(), "client");
    }

    #[test]
    fn aggregates_per_round_and_party() {
        let mut t = Trace::new();
        t.record_message(msg(1, "deal", node(1), node(2), 100));
        t.record_message(msg(1, "deal", node(2), node(1), 100));
        t.record_message(msg(2, "complain", node(1), node(2), 10));
        t.record_cpu(CpuRecord {
            stage: Stage::Dkg,
            round: "deal".into(),
            step: 1,
            party: node(1),
            cpu: Duration::from_micros(5),
        });
        t.record_cpu(CpuRecord {
            stage: Stage::Dkg,
            round: "finish".into(),
            step: 3,
            party: node(2),
            cpu: Duration::from_micros(7),
        });
        let s = t.stage_summary(Stage::Dkg);
        assert_eq!((s.messages, s.bytes, s.cpu_ns), (3, 210, 12_000));
        let rounds: Vec<_> = s
            .rounds
            .iter()
            .map(|r| (r.step, r.round.as_str(), r.messages, r.bytes, r.cpu_ns))
            .collect();
        assert_eq!(
            rounds,
            [
                (1, "deal", 2, 200, 5_000),
                (2, "complain", 1, 10, 0),
                (3, "finish", 0, 0, 7_000)
            ]
        );
        let p = t.party_summaries(None);
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].sent_bytes, p[0].received_bytes), (110, 100));
        assert_eq!(p[1].node, Some(2));
        assert_eq!(t.next_step(Stage::Dkg), 4);
        assert_eq!(t.next_step(Stage::Stage1), 1);
        let summary = t.summary();
        assert_eq!(summary.stages.len(), 1);
        assert!(serde_json::to_string(&summary).unwrap().contains("\"DKG\""));
    }
}
