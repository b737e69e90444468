//! `dealer-free-sis dkg`: the distributed key generation among in-process nodes, with what
//! each round cost and what the honest nodes agreed on.
//!
//! The nodes run [`dealer_free::dkg::local::run`] on one thread with one ChaCha20 generator
//! seeded by `--seed` (default 0), so a seed always gives the same run. Times come from
//! [`Instant`]: on one thread, wall-clock time is the CPU time of all nodes together.
//!
//! With `--json` one object is printed:
//!
//! | field | meaning |
//! |---|---|
//! | `n`, `t`, `seed` | the parameters |
//! | `faulty` | `{id: misbehaviour}` as given |
//! | `rounds` | `[{round, name, messages, bytes, cpu_ms}]`, in order |
//! | `messages`, `bytes`, `cpu_s` | totals (a broadcast counts once per recipient) |
//! | `qualified` | the dealers whose polynomials make up the key |
//! | `disqualified` | `{id: reason}` |
//! | `unconfirmed`, `invalid_confirmations` | nodes without a (valid) confirmation |
//! | `group_public_key` | compressed ristretto255 point, hex; `null` without agreement |
//! | `agree` | every honest node has the same key, QUAL and transcript |
//! | `errors` | `{id: message}` of every honest node that ended with an error |
//!
//! QUAL and the rest are taken from the first honest node (all honest nodes hold the same
//! when `agree` is true); when no honest node has an output, from a "too many disqualified"
//! error if there is one.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use dealer_free::dkg::faults::MISBEHAVIOUR_NAMES;
use dealer_free::dkg::local::{self, LocalRun};
use dealer_free::dkg::{Disqualification, DkgError, DkgOutput, Misbehaviour};
use phr_sis::{NodeId, Threshold};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde_json::{Map, Value, json};

use crate::cli::DkgArgs;
use crate::{Outcome, UsageError};

/// The session label of every run of this command.
pub(crate) const LABEL: &[u8] = b"dealer-free-sis dkg";

pub(crate) fn run(args: &DkgArgs) -> anyhow::Result<Outcome> {
    let threshold = parse_threshold(args.threshold, args.nodes)?;
    let faulty = match &args.faulty {
        Some(spec) => parse_faulty(spec, threshold.n())?,
        None => BTreeMap::new(),
    };
    let run = run_local(threshold, &faulty, args.seed)?;
    let report = Report::new(&run, &faulty);
    if args.json {
        println!("{}", report.to_json(&run, threshold, args.seed, &faulty));
    } else {
        print!("{}", report.to_text(&run, threshold, args.seed, &faulty));
    }
    for (id, message) in &report.errors {
        eprintln!("dealer-free-sis: node {id}: {message}");
    }
    if report.agree {
        Ok(Outcome::Success)
    } else {
        if report.errors.is_empty() {
            eprintln!("dealer-free-sis: the honest nodes did not agree on a key");
        }
        Ok(Outcome::PartialFailure)
    }
}

/// Runs the DKG among nodes `1..=n` on this thread, timed by the wall clock.
///
/// # Errors
/// A [`UsageError`] for parameters the protocol rejects.
pub(crate) fn run_local(
    threshold: Threshold,
    faulty: &BTreeMap<NodeId, Misbehaviour>,
    seed: u64,
) -> anyhow::Result<LocalRun> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let start = Instant::now();
    let mut clock = || start.elapsed();
    local::run(threshold, LABEL, faulty, &mut rng, &mut clock).map_err(|e| match e {
        DkgError::InvalidParams(_) => UsageError(e.to_string()).into(),
        other => anyhow::Error::new(other),
    })
}

/// `(t, n)` for the DKG, by the rule every command follows: `2 <= t <= n <= 255`
/// ([`crate::allowed::shape`]).
pub(crate) fn parse_threshold(t: usize, n: usize) -> Result<Threshold, UsageError> {
    crate::allowed::shape(&crate::allowed::Flags, t, n)
}

/// Parses `ID=MISBEHAVIOUR[,ID=MISBEHAVIOUR…]` for nodes `1..=n`.
pub(crate) fn parse_faulty(
    spec: &str,
    n: u8,
) -> Result<BTreeMap<NodeId, Misbehaviour>, UsageError> {
    let mut out = BTreeMap::new();
    let in_range = |what: &str, text: &str| -> Result<NodeId, UsageError> {
        text.trim()
            .parse::<NodeId>()
            .ok()
            .filter(|id| id.get() <= n)
            .ok_or_else(|| {
                UsageError(format!(
                    "--faulty: {what} {text:?} is not a node: ids are 1 to n = {n}"
                ))
            })
    };
    for item in spec.split(',').filter(|s| !s.trim().is_empty()) {
        let (id, behaviour) = item.split_once('=').ok_or_else(|| {
            UsageError(format!(
                "--faulty: {item:?} is not ID=MISBEHAVIOUR; misbehaviours: {MISBEHAVIOUR_NAMES}"
            ))
        })?;
        let id = in_range("node id", id)?;
        let behaviour: Misbehaviour = behaviour
            .trim()
            .parse()
            .map_err(|e: String| UsageError(format!("--faulty {item}: {e}")))?;
        let target = match behaviour {
            Misbehaviour::BadShare { victim } | Misbehaviour::BadJustification { victim } => {
                Some(("victim", victim))
            }
            Misbehaviour::FalseComplaint { accused } => Some(("accused node", accused)),
            _ => None,
        };
        if let Some((what, target)) = target {
            in_range(what, &target.to_string())?;
            if target == id {
                return Err(UsageError(format!(
                    "--faulty {item}: the {what} must be another node than {id}"
                )));
            }
        }
        if out.insert(id, behaviour).is_some() {
            return Err(UsageError(format!(
                "--faulty: node {id} is given more than once"
            )));
        }
    }
    Ok(out)
}

/// What the honest nodes ended with.
struct Report<'a> {
    /// The first honest node's output.
    output: Option<&'a DkgOutput>,
    qualified: BTreeSet<NodeId>,
    disqualified: BTreeMap<NodeId, Disqualification>,
    agree: bool,
    /// Honest nodes that ended with an error, and the error.
    errors: BTreeMap<NodeId, String>,
}

impl<'a> Report<'a> {
    fn new(run: &'a LocalRun, faulty: &BTreeMap<NodeId, Misbehaviour>) -> Report<'a> {
        let is_honest = |id: &NodeId| faulty.get(id).is_none_or(|m| *m == Misbehaviour::Honest);
        let honest: Vec<(NodeId, &Result<DkgOutput, DkgError>)> = run
            .params
            .participants()
            .keys()
            .filter(|id| is_honest(id))
            .map(|id| {
                (
                    *id,
                    run.outcomes.get(id).unwrap_or(&Err(DkgError::Finished)),
                )
            })
            .collect();
        let errors: BTreeMap<NodeId, String> = honest
            .iter()
            .filter_map(|(id, o)| o.as_ref().err().map(|e| (*id, e.to_string())))
            .collect();
        let outputs: Vec<&DkgOutput> = honest.iter().filter_map(|(_, o)| o.as_ref().ok()).collect();
        let output = outputs.first().copied();
        let agree = errors.is_empty()
            && output.is_some_and(|first| {
                outputs.iter().all(|o| {
                    o.group_public_key == first.group_public_key
                        && o.qualified == first.qualified
                        && o.transcript == first.transcript
                })
            });
        let (qualified, disqualified) = match output {
            Some(o) => (o.qualified.clone(), o.disqualified.clone()),
            None => honest
                .iter()
                .find_map(|(_, o)| match o {
                    Err(DkgError::TooManyDisqualified {
                        qualified,
                        disqualified,
                        ..
                    }) => Some((qualified.clone(), disqualified.clone())),
                    _ => None,
                })
                .unwrap_or_default(),
        };
        Report {
            output,
            qualified,
            disqualified,
            agree,
            errors,
        }
    }

    fn group_key_hex(&self) -> Option<String> {
        self.output
            .filter(|_| self.agree)
            .map(|o| hex(&o.group_public_key.compress().to_bytes()))
    }

    fn unconfirmed(&self) -> BTreeSet<NodeId> {
        self.output
            .map(|o| o.unconfirmed.clone())
            .unwrap_or_default()
    }

    fn invalid_confirmations(&self) -> BTreeSet<NodeId> {
        self.output
            .map(|o| o.invalid_confirmations.clone())
            .unwrap_or_default()
    }

    fn to_json(
        &self,
        run: &LocalRun,
        threshold: Threshold,
        seed: u64,
        faulty: &BTreeMap<NodeId, Misbehaviour>,
    ) -> Value {
        let ids = |s: &BTreeSet<NodeId>| s.iter().map(|id| id.get()).collect::<Vec<u8>>();
        let by_id = |m: BTreeMap<String, String>| {
            Value::Object(
                m.into_iter()
                    .map(|(k, v)| (k, json!(v)))
                    .collect::<Map<_, _>>(),
            )
        };
        let rounds: Vec<Value> = run
            .rounds
            .iter()
            .map(|r| {
                json!({
                    "round": r.round.number(),
                    "name": r.round.name(),
                    "messages": r.messages,
                    "bytes": r.bytes,
                    "cpu_ms": millis(r.cpu),
                })
            })
            .collect();
        json!({
            "n": threshold.n(),
            "t": threshold.t(),
            "seed": seed,
            "faulty": by_id(faulty.iter().map(|(id, m)| (id.to_string(), m.to_string())).collect()),
            "rounds": rounds,
            "messages": run.messages(),
            "bytes": run.bytes(),
            "cpu_s": (run.cpu().as_secs_f64() * 1e6).round() / 1e6,
            "qualified": ids(&self.qualified),
            "disqualified": by_id(
                self.disqualified
                    .iter()
                    .map(|(id, why)| (id.to_string(), why.to_string()))
                    .collect()
            ),
            "unconfirmed": ids(&self.unconfirmed()),
            "invalid_confirmations": ids(&self.invalid_confirmations()),
            "group_public_key": self.group_key_hex(),
            "agree": self.agree,
            "errors": by_id(self.errors.iter().map(|(id, e)| (id.to_string(), e.clone())).collect()),
        })
    }

    fn to_text(
        &self,
        run: &LocalRun,
        threshold: Threshold,
        seed: u64,
        faulty: &BTreeMap<NodeId, Misbehaviour>,
    ) -> String {
        let mut s = String::new();
        let faulty_text = if faulty.is_empty() {
            "none".to_owned()
        } else {
            faulty
                .iter()
                .map(|(id, m)| format!("{id}={m}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        // Writing to a String cannot fail.
        let _ = writeln!(
            s,
            "DKG {threshold} (GJKR, ristretto255), seed {seed}, faulty: {faulty_text}"
        );
        let _ = writeln!(
            s,
            "{:<12} {:>9} {:>12} {:>10}",
            "round", "messages", "bytes", "cpu ms"
        );
        for r in &run.rounds {
            let name = format!("{} {}", r.round.number(), r.round.name());
            let _ = writeln!(
                s,
                "{name:<12} {:>9} {:>12} {:>10.3}",
                r.messages,
                r.bytes,
                millis(r.cpu)
            );
        }
        let _ = writeln!(
            s,
            "{:<12} {:>9} {:>12} {:>10.3}",
            "total",
            run.messages(),
            run.bytes(),
            millis(run.cpu())
        );
        let _ = writeln!(s, "qualified: {}", list(&self.qualified));
        if self.disqualified.is_empty() {
            let _ = writeln!(s, "disqualified: none");
        } else {
            let _ = writeln!(s, "disqualified:");
            for (id, why) in &self.disqualified {
                let _ = writeln!(s, "  node {id}: {why}");
            }
        }
        let _ = writeln!(s, "unconfirmed: {}", list(&self.unconfirmed()));
        let _ = writeln!(
            s,
            "invalid confirmations: {}",
            list(&self.invalid_confirmations())
        );
        let _ = writeln!(
            s,
            "honest nodes agree (group key, QUAL, transcript): {}",
            if self.agree { "yes" } else { "no" }
        );
        let _ = writeln!(
            s,
            "group public key: {}",
            self.group_key_hex().unwrap_or_else(|| "none".to_owned())
        );
        s
    }
}

fn list(ids: &BTreeSet<NodeId>) -> String {
    if ids.is_empty() {
        return "none".to_owned();
    }
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 * bytes.len());
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}
