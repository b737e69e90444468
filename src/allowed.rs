//! The allowed values of the settings several commands share — the sharing shape (T of N),
//! node ids and the search parameters — defined once, with the one message that refuses each.
//!
//! A flag takes its value through [`Setting::parser`] (clap checks it while parsing); a value
//! read from elsewhere (a config file) goes through [`Setting::check`], and a (T, N) pair
//! through [`shape`]. All three word a refusal the same way, `<label> must be <rule>, not
//! <value>`, so the same bad value gets the same message and exit code 2 from every command
//! (`split`, `dkg`, `cluster init|up`, `search`, `experiment`, ...). The rule for (T, N) is
//! `2 ≤ T ≤ N ≤ 255` everywhere: with T = 1 a single share gives the secret away.

use std::ffi::OsStr;
use std::marker::PhantomData;

use clap::builder::TypedValueParser;
use phr_sis::{BandLayout, Threshold};

use crate::UsageError;

/// The rule every (T, N) follows, as the messages say it.
pub(crate) const SHAPE_RULE: &str = "allowed: 2 ≤ T ≤ N ≤ 255";

/// A setting with a range of allowed values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Setting {
    /// N: the number of nodes (of shares).
    Nodes,
    /// T: the shares (nodes) needed.
    Threshold,
    /// A node's id, also its Shamir x-coordinate.
    NodeId,
    /// The most results a search keeps.
    Topk,
    /// The fewest bands a candidate shares with the query.
    MinBandVotes,
    /// The largest Hamming distance a search keeps.
    MaxHamming,
}

impl Setting {
    /// The smallest and the largest allowed value.
    fn range(self) -> (u64, u64) {
        match self {
            Setting::Nodes | Setting::Threshold => (2, 255),
            Setting::NodeId => (1, 255),
            Setting::Topk => (1, u64::try_from(usize::MAX).unwrap_or(u64::MAX)),
            Setting::MinBandVotes => (0, u64::from(BandLayout::default().bands())),
            Setting::MaxHamming => (0, 64),
        }
    }

    /// The rule a refused `value` breaks, in words.
    fn rule(self, value: Option<u64>) -> String {
        let (min, max) = self.range();
        match self {
            Setting::Nodes => format!("{min} to {max} ({SHAPE_RULE})"),
            Setting::Threshold if value.is_some_and(|v| v > max) => {
                format!("at most {max} ({SHAPE_RULE})")
            }
            Setting::Threshold => format!(
                "at least {min} ({SHAPE_RULE}; with T = 1 a single share gives the secret away)"
            ),
            Setting::NodeId => format!("{min} to {max} (a node's id)"),
            Setting::Topk => format!("at least {min} (the most results to keep)"),
            Setting::MinBandVotes => format!("{min} to {max} (a 64-bit hash has {max} bands)"),
            Setting::MaxHamming => format!("{min} to {max} (a 64-bit hash's distances)"),
        }
    }

    /// `value` if it is allowed, else why not.
    fn allow(self, value: u64) -> Result<u64, String> {
        let (min, max) = self.range();
        if (min..=max).contains(&value) {
            Ok(value)
        } else {
            Err(self.rule(Some(value)))
        }
    }

    /// Checks a value given other than by a flag: `label` names where it came from (e.g.
    /// `FILE: [mpc] topk`).
    ///
    /// # Errors
    /// A [`UsageError`] worded as the flag's parser words it.
    pub(crate) fn check<T: TryInto<u64> + std::fmt::Display + Copy>(
        self,
        label: &str,
        value: T,
    ) -> Result<T, UsageError> {
        match value.try_into() {
            Ok(v) => self
                .allow(v)
                .map(|_| value)
                .map_err(|rule| refusal(label, &rule, &value.to_string())),
            Err(_) => Err(refusal(label, &self.rule(None), &value.to_string())),
        }
    }

    /// The clap value parser of a flag of this setting, giving a `T`.
    pub(crate) fn parser<T>(self) -> Checked<T> {
        Checked {
            setting: self,
            output: PhantomData,
        }
    }
}

/// The message of a refused value.
fn refusal(label: &str, rule: &str, value: &str) -> UsageError {
    UsageError(format!("{label} must be {rule}, not {value}"))
}

/// How messages name a setting: by its flag (`--nodes`), or by where a file set it.
pub(crate) trait Labels {
    /// The label of the setting whose long flag is `--flag`.
    fn label(&self, flag: &'static str) -> String;
}

/// Settings given as flags: `--flag`.
pub(crate) struct Flags;

impl Labels for Flags {
    fn label(&self, flag: &'static str) -> String {
        format!("--{flag}")
    }
}

/// The (T, N) of `threshold` of `nodes`, each checked as its flag's parser checks it and
/// T ≤ N. `labels` names the settings `threshold` and `nodes`.
///
/// # Errors
/// A [`UsageError`] naming the setting at fault.
pub(crate) fn shape<T, N>(labels: &dyn Labels, t: T, n: N) -> Result<Threshold, UsageError>
where
    T: TryInto<u64> + std::fmt::Display + Copy,
    N: TryInto<u64> + std::fmt::Display + Copy,
{
    let n_label = labels.label("nodes");
    let t_label = labels.label("threshold");
    let n64 = Setting::Nodes
        .check(&n_label, n)?
        .try_into()
        .unwrap_or(u64::MAX);
    let t64 = Setting::Threshold
        .check(&t_label, t)?
        .try_into()
        .unwrap_or(u64::MAX);
    if t64 > n64 {
        return Err(refusal(
            &t_label,
            &format!("at most N = {n64}, the number of nodes ({SHAPE_RULE})"),
            &t.to_string(),
        ));
    }
    let (t8, n8) = (u8::try_from(t64), u8::try_from(n64));
    match (t8, n8) {
        (Ok(t8), Ok(n8)) => Threshold::new(t8, n8).map_err(|e| UsageError(e.to_string())),
        _ => Err(refusal(
            &n_label,
            &Setting::Nodes.rule(None),
            &n.to_string(),
        )),
    }
}

/// A clap value parser checking one [`Setting`] (see [`Setting::parser`]).
#[derive(Debug)]
pub(crate) struct Checked<T> {
    setting: Setting,
    output: PhantomData<fn() -> T>,
}

impl<T> Clone for Checked<T> {
    fn clone(&self) -> Self {
        Checked {
            setting: self.setting,
            output: PhantomData,
        }
    }
}

impl<T> TypedValueParser for Checked<T>
where
    T: TryFrom<u64> + Clone + Send + Sync + 'static,
{
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        let label = arg
            .and_then(clap::Arg::get_long)
            .map_or_else(|| "the value".to_owned(), |long| format!("--{long}"));
        let text = value.to_string_lossy();
        let parsed = text
            .trim()
            .parse::<u64>()
            .map_err(|_| self.setting.rule(None))
            .and_then(|v| self.setting.allow(v))
            .and_then(|v| T::try_from(v).map_err(|_| self.setting.rule(Some(v))));
        parsed.map_err(|rule| {
            let message = refusal(&label, &rule, &text).0;
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("{message}\n"),
            )
            .with_cmd(cmd)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shape_rule_is_two_to_n_to_255() {
        assert!(shape(&Flags, 2usize, 2usize).is_ok());
        assert!(shape(&Flags, 255u8, 255u8).is_ok());
        let message = |t: usize, n: usize| shape(&Flags, t, n).err().map(|e| e.0);
        assert_eq!(
            message(1, 3).as_deref(),
            Some(
                "--threshold must be at least 2 (allowed: 2 ≤ T ≤ N ≤ 255; with T = 1 a single \
                 share gives the secret away), not 1"
            )
        );
        assert_eq!(
            message(4, 3).as_deref(),
            Some(
                "--threshold must be at most N = 3, the number of nodes (allowed: 2 ≤ T ≤ N ≤ \
                 255), not 4"
            )
        );
        assert_eq!(
            message(2, 300).as_deref(),
            Some("--nodes must be 2 to 255 (allowed: 2 ≤ T ≤ N ≤ 255), not 300")
        );
        assert!(message(2, usize::MAX).is_some());
    }

    #[test]
    fn the_search_settings_have_their_ranges() {
        assert!(Setting::Topk.check("--topk", 0usize).is_err());
        assert!(Setting::Topk.check("--topk", 1usize).is_ok());
        assert!(Setting::MaxHamming.check("--max-hamming", 64u32).is_ok());
        assert!(Setting::MaxHamming.check("--max-hamming", 65u32).is_err());
        assert!(
            Setting::MinBandVotes
                .check("--min-band-votes", 0u32)
                .is_ok()
        );
        assert!(
            Setting::MinBandVotes
                .check("--min-band-votes", 8u32)
                .is_ok()
        );
        assert!(
            Setting::MinBandVotes
                .check("--min-band-votes", 9u32)
                .is_err()
        );
    }
}
