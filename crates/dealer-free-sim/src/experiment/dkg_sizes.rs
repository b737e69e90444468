//! The `dkg_overhead` data: the DKG's messages, bytes and CPU for each node count, under two
//! threshold rules, beside the dealer's key setup; and the fitted exponent of each in `n`.

use std::collections::{BTreeMap, BTreeSet};

use phr_sis::Threshold;

use super::{DkgRow, ExperimentConfig, loglog_slope, ms};
use crate::SimError;
use crate::simulator::DealerFreeSimulator;
use crate::trace::Stage;

/// A threshold rule: `t` for `n`.
pub type Rule = fn(u8) -> u8;

/// The threshold rules of the figure: name and `t` for `n`.
pub const RULES: [(&str, Rule); 2] = [
    ("t = floor(n/2) + 1", |n| n / 2 + 1),
    ("t = ceil(n/3) + 1", |n| n.div_ceil(3) + 1),
];

/// One measure of a DKG row, as a number.
pub type Metric = fn(&DkgRow) -> f64;

/// The fitted exponents of the DKG's costs in `n`: metric (`"messages"`, `"bytes"`,
/// `"cpu_ms"`, the last measured) → rule → exponent.
pub type Exponents = BTreeMap<String, BTreeMap<String, f64>>;

/// Every DKG size of `config.dkg_nodes` under both rules, and the exponents.
pub(crate) fn run(
    config: &ExperimentConfig,
    progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<(Vec<DkgRow>, Exponents), SimError> {
    let mut rows = Vec::new();
    let total = config.dkg_nodes.len();
    for (i, &n) in config.dkg_nodes.iter().enumerate() {
        progress("DKG sizes", i, total);
        let ts: BTreeSet<u8> = RULES
            .iter()
            .map(|(_, rule)| rule(n))
            .filter(|t| (2..=n).contains(t))
            .collect();
        for t in ts {
            let th = Threshold::new(t, n).map_err(|e| SimError::Params(e.to_string()))?;
            let mut sim = DealerFreeSimulator::new(th, config.seed);
            let run = sim.run_dkg(&BTreeMap::new(), &BTreeSet::new())?;
            let cpu = sim.trace().stage_cpu_total(Stage::Dkg);
            let mut dealer = DealerFreeSimulator::new(th, config.seed);
            let setup = dealer.run_dealer_setup()?;
            let dealer_cpu = dealer.trace().stage_cpu_total(Stage::DealerSetup);
            rows.push(DkgRow {
                n,
                t,
                messages: run.messages,
                bytes: run.bytes,
                agree: run.honest_agree,
                cpu_ms: ms(cpu),
                dealer_messages: setup.messages,
                dealer_bytes: setup.bytes,
                dealer_cpu_ms: ms(dealer_cpu),
            });
        }
    }
    progress("DKG sizes", total, total);
    let metrics: [(&str, Metric); 3] = [
        ("messages", |r| r.messages as f64),
        ("bytes", |r| r.bytes as f64),
        ("cpu_ms", |r| r.cpu_ms),
    ];
    let mut exponents = Exponents::new();
    for (metric, value) in metrics {
        let by_rule = exponents.entry(metric.to_owned()).or_default();
        for (rule, pick) in RULES {
            let pts: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| r.t == pick(r.n))
                .map(|r| (f64::from(r.n), value(r)))
                .collect();
            by_rule.insert(rule.to_owned(), round3(loglog_slope(&pts)));
        }
    }
    Ok((rows, exponents))
}

/// `x` to three decimals.
pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
