//! A deterministic network model that turns a [`Trace`] into wall-clock latency.
//!
//! A [`NetworkModel`] has a one-way latency, a per-party uplink bandwidth and a jitter
//! bound. [`NetworkModel::stage_latency`] replays one stage of a trace:
//!
//! * rounds (the records' `step`) run one after another, each starting when the previous
//!   one ended;
//! * within a round every party first spends the CPU recorded for it in that round, then
//!   sends its messages;
//! * a party's messages leave one after another on its uplink, in recording order: message
//!   `k` of sender `s` arrives at `cpu_s + latency + jitter_k + (b_1 + … + b_k) / bandwidth`,
//!   where `b_1..b_k` are the bytes of `s`'s messages of the round up to and including it;
//! * the round ends when its last message arrives, or when the last party's CPU ends if
//!   that is later (or if the round has no message).
//!
//! [`NetworkModel::stage_latency_delayed`] replays the same way with an extra one-way delay
//! on chosen links (sender → recipient): those messages arrive that much later, every other
//! quantity (jitter draws included) is unchanged, so a delay can only lengthen a round.
//!
//! Jitter is drawn uniformly from `[0, jitter]` (whole nanoseconds) by a ChaCha20 generator
//! seeded with the caller's seed, one draw per message in recording order, so the same
//! trace, model and seed always give the same [`StageLatency`]. Receivers' processing is
//! the CPU the driver charged to the next round. Bandwidth that is not a positive finite
//! number counts as unlimited.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::Serialize;

use crate::trace::{Party, Stage, Trace};

/// Latency, bandwidth and jitter of the links between parties.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NetworkModel {
    /// One-way propagation delay of every message.
    pub latency: Duration,
    /// Each sender's uplink, in bytes per second.
    pub bandwidth_bytes_per_s: f64,
    /// Upper bound of the extra delay drawn per message.
    pub jitter: Duration,
}

/// The time one stage takes on a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageLatency {
    /// All rounds together.
    pub total: Duration,
    /// Each round's name and duration, by step.
    pub per_round: Vec<(String, Duration)>,
}

impl NetworkModel {
    /// A data-centre LAN: 0.2 ms latency, 1 Gbit/s, 0.05 ms jitter.
    #[must_use]
    pub fn lan() -> NetworkModel {
        NetworkModel {
            latency: Duration::from_micros(200),
            bandwidth_bytes_per_s: 1e9 / 8.0,
            jitter: Duration::from_micros(50),
        }
    }

    /// A wide-area network: 40 ms latency, 100 Mbit/s, 5 ms jitter.
    #[must_use]
    pub fn wan() -> NetworkModel {
        NetworkModel {
            latency: Duration::from_millis(40),
            bandwidth_bytes_per_s: 100e6 / 8.0,
            jitter: Duration::from_millis(5),
        }
    }

    /// The time `bytes` take on one uplink.
    #[must_use]
    pub fn transmission(&self, bytes: usize) -> Duration {
        let bw = self.bandwidth_bytes_per_s;
        if !(bw.is_finite() && bw > 0.0) {
            return Duration::ZERO;
        }
        // usize → f64 is exact for every realistic message size.
        #[allow(clippy::cast_precision_loss)]
        let secs = bytes as f64 / bw;
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
    }

    /// The wall-clock time `stage` of `trace` takes on this network (see the module docs);
    /// `seed` fixes the jitter.
    #[must_use]
    pub fn stage_latency(&self, trace: &Trace, stage: Stage, seed: u64) -> StageLatency {
        self.stage_latency_delayed(trace, stage, seed, &BTreeMap::new())
    }

    /// [`NetworkModel::stage_latency`] with `delay[(sender, recipient)]` added to the
    /// arrival of every message on that link (module documentation).
    #[must_use]
    pub fn stage_latency_delayed(
        &self,
        trace: &Trace,
        stage: Stage,
        seed: u64,
        delay: &BTreeMap<(Party, Party), Duration>,
    ) -> StageLatency {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let jitter_ns = u64::try_from(self.jitter.as_nanos()).unwrap_or(u64::MAX);
        // step → (round name, CPU per party, messages as (sender, recipient, bytes) in order)
        struct RoundRecords {
            name: String,
            cpu: BTreeMap<Party, Duration>,
            sends: Vec<(Party, Party, usize)>,
        }
        let mut rounds: BTreeMap<u32, RoundRecords> = BTreeMap::new();
        fn entry<'a>(
            rounds: &'a mut BTreeMap<u32, RoundRecords>,
            step: u32,
            name: &str,
        ) -> &'a mut RoundRecords {
            rounds.entry(step).or_insert_with(|| RoundRecords {
                name: name.to_owned(),
                cpu: BTreeMap::new(),
                sends: Vec::new(),
            })
        }
        for c in trace.stage_cpu(stage) {
            *entry(&mut rounds, c.step, &c.round)
                .cpu
                .entry(c.party)
                .or_default() += c.cpu;
        }
        for m in trace.stage_messages(stage) {
            entry(&mut rounds, m.step, &m.round)
                .sends
                .push((m.from, m.to, m.bytes));
        }
        let mut total = Duration::ZERO;
        let mut per_round = Vec::with_capacity(rounds.len());
        for round in rounds.into_values() {
            let mut end = round.cpu.values().copied().max().unwrap_or_default();
            let mut uplink: BTreeMap<Party, usize> = BTreeMap::new();
            for (from, to, bytes) in round.sends {
                let queued = uplink.entry(from).or_default();
                *queued = queued.saturating_add(bytes);
                let jitter = Duration::from_nanos(if jitter_ns == 0 {
                    0
                } else {
                    rng.random_range(0..=jitter_ns)
                });
                let cpu = round.cpu.get(&from).copied().unwrap_or_default();
                let arrival = cpu
                    .saturating_add(self.latency)
                    .saturating_add(jitter)
                    .saturating_add(self.transmission(*queued))
                    .saturating_add(delay.get(&(from, to)).copied().unwrap_or_default());
                end = end.max(arrival);
            }
            total = total.saturating_add(end);
            per_round.push((round.name, end));
        }
        StageLatency { total, per_round }
    }
}

/// A named [`NetworkModel`]: "lan" or "wan".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetworkPreset {
    /// [`NetworkModel::lan`].
    Lan,
    /// [`NetworkModel::wan`].
    Wan,
}

/// The names [`NetworkPreset::from_str`] accepts.
pub const NETWORK_PRESET_NAMES: &str = "lan, wan";

/// A network preset name that is not one of [`NETWORK_PRESET_NAMES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown network preset {0:?}; expected one of: {NETWORK_PRESET_NAMES}")]
pub struct UnknownNetworkPreset(pub String);

impl NetworkPreset {
    /// The model.
    #[must_use]
    pub fn model(self) -> NetworkModel {
        match self {
            NetworkPreset::Lan => NetworkModel::lan(),
            NetworkPreset::Wan => NetworkModel::wan(),
        }
    }

    /// The preset's name, "lan" or "wan".
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            NetworkPreset::Lan => "lan",
            NetworkPreset::Wan => "wan",
        }
    }
}

impl fmt::Display for NetworkPreset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for NetworkPreset {
    type Err = UnknownNetworkPreset;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "lan" => Ok(NetworkPreset::Lan),
            "wan" => Ok(NetworkPreset::Wan),
            _ => Err(UnknownNetworkPreset(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use phr_sis::NodeId;

    use super::*;
    use crate::trace::{CpuRecord, MessageRecord};

    fn node(i: u8) -> Party {
        Party::Node(NodeId::new(i).unwrap())
    }

    fn msg(step: u32, from: Party, to: Party, bytes: usize) -> MessageRecord {
        MessageRecord {
            stage: Stage::Dkg,
            round: format!("r{step}"),
            step,
            from,
            to,
            bytes,
            kind: None,
        }
    }

    fn cpu(step: u32, party: Party, us: u64) -> CpuRecord {
        CpuRecord {
            stage: Stage::Dkg,
            round: format!("r{step}"),
            step,
            party,
            cpu: Duration::from_micros(us),
        }
    }

    /// 1 ms latency, 1000 bytes/s (1 ms per byte), no jitter.
    fn slow() -> NetworkModel {
        NetworkModel {
            latency: Duration::from_millis(1),
            bandwidth_bytes_per_s: 1000.0,
            jitter: Duration::ZERO,
        }
    }

    #[test]
    fn hand_computed_rounds() {
        let mut t = Trace::new();
        // Round 1: node 1 computes 2 ms and sends 3 then 5 bytes; node 2 computes 1 ms and
        // sends 10 bytes. Arrivals: 2 + 1 + 3 = 6, 2 + 1 + 8 = 11, 1 + 1 + 10 = 12 ms.
        t.record_cpu(cpu(1, node(1), 2000));
        t.record_cpu(cpu(1, node(2), 1000));
        t.record_message(msg(1, node(1), node(2), 3));
        t.record_message(msg(1, node(1), node(3), 5));
        t.record_message(msg(1, node(2), node(1), 10));
        // Round 2: CPU only, 4 ms (twice 2 ms for node 3) and 1 ms.
        t.record_cpu(cpu(2, node(3), 2000));
        t.record_cpu(cpu(2, node(3), 2000));
        t.record_cpu(cpu(2, node(1), 1000));
        // Round 3: a message from a party without CPU: 0 + 1 + 1 = 2 ms.
        t.record_message(msg(3, Party::Client, node(1), 1));
        // Another stage is ignored.
        t.record_message(MessageRecord {
            stage: Stage::Stage1,
            ..msg(1, node(1), node(2), 1_000_000)
        });
        let l = slow().stage_latency(&t, Stage::Dkg, 7);
        let ms = Duration::from_millis;
        assert_eq!(
            l.per_round,
            [
                ("r1".to_owned(), ms(12)),
                ("r2".to_owned(), ms(4)),
                ("r3".to_owned(), ms(2))
            ]
        );
        assert_eq!(l.total, ms(18));
        assert_eq!(
            slow().stage_latency(&Trace::new(), Stage::Dkg, 0).total,
            Duration::ZERO
        );
    }

    #[test]
    fn a_delayed_link_delays_its_messages_only() {
        let mut t = Trace::new();
        t.record_message(msg(1, node(1), node(2), 3));
        t.record_message(msg(1, node(2), node(1), 3));
        let ms = Duration::from_millis;
        assert_eq!(slow().stage_latency(&t, Stage::Dkg, 1).total, ms(4));
        let late = BTreeMap::from([((node(1), node(2)), ms(10))]);
        assert_eq!(
            slow().stage_latency_delayed(&t, Stage::Dkg, 1, &late).total,
            ms(14)
        );
        let elsewhere = BTreeMap::from([((node(1), node(3)), ms(10))]);
        assert_eq!(
            slow()
                .stage_latency_delayed(&t, Stage::Dkg, 1, &elsewhere)
                .total,
            ms(4)
        );
    }

    #[test]
    fn jitter_is_bounded_and_seeded() {
        let mut t = Trace::new();
        for i in 0..20 {
            t.record_message(msg(i, node(1), node(2), 0));
        }
        let model = NetworkModel {
            jitter: Duration::from_millis(1),
            ..slow()
        };
        let a = model.stage_latency(&t, Stage::Dkg, 1);
        assert_eq!(a, model.stage_latency(&t, Stage::Dkg, 1));
        assert_ne!(a, model.stage_latency(&t, Stage::Dkg, 2));
        for (_, d) in &a.per_round {
            assert!(*d >= Duration::from_millis(1) && *d <= Duration::from_millis(2));
        }
    }

    #[test]
    fn presets_parse() {
        assert_eq!("lan".parse::<NetworkPreset>(), Ok(NetworkPreset::Lan));
        assert_eq!("WAN".parse::<NetworkPreset>(), Ok(NetworkPreset::Wan));
        let err = "moon".parse::<NetworkPreset>().unwrap_err().to_string();
        assert!(
            err.contains("\"moon\"") && err.contains("lan, wan"),
            "{err}"
        );
        assert_eq!(NetworkPreset::Wan.model(), NetworkModel::wan());
        assert!(NetworkModel::lan().latency < NetworkModel::wan().latency);
        assert_eq!(
            NetworkModel::lan().transmission(125),
            Duration::from_micros(1)
        );
        let unlimited = NetworkModel {
            bandwidth_bytes_per_s: 0.0,
            ..slow()
        };
        assert_eq!(unlimited.transmission(10), Duration::ZERO);
    }
}
