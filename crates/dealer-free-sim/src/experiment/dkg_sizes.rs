//! The `dkg_overhead` data: the DKG's messages, bytes and CPU for each node count, under two
//! threshold rules, beside the dealer's key setup; and the fitted exponent of bytes in `n`.

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

/// Every DKG size of `config.dkg_nodes` under both rules.
pub(crate) fn run(
    config: &ExperimentConfig,
    progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<(Vec<DkgRow>, BTreeMap<String, f64>), SimError> {
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
            rows.push(DkgRow {
                n,
                t,
                messages: run.messages,
                bytes: run.bytes,
                agree: run.honest_agree,
                cpu_ms: ms(cpu),
                dealer_bytes: setup.bytes,
            });
        }
    }
    progress("DKG sizes", total, total);
    let mut exponents = BTreeMap::new();
    for (rule, pick) in RULES {
        let pts: Vec<(f64, f64)> = rows
            .iter()
            .filter(|r| r.t == pick(r.n))
            .map(|r| (f64::from(r.n), r.bytes as f64))
            .collect();
        exponents.insert(rule.to_owned(), round3(loglog_slope(&pts)));
    }
    Ok((rows, exponents))
}

/// `x` to three decimals.
pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
