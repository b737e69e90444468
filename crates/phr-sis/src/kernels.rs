//! Which set of compute kernels this crate runs: the SIMD kernels chosen from the CPU's
//! features (`auto`, the default), or the portable kernels everywhere (`portable`), as the
//! environment variable `DEALER_FREE_SIS_KERNELS` says.
//!
//! Every run-time CPU-feature dispatch of the crate asks this module: the GF(2^8) bulk kernels
//! of [`crate::gf256`] (and so Shamir splitting and combining), Pillow's `convert("L")` and
//! LANCZOS resize in [`crate::phash`], and the scan and postings loops of [`crate::index`].
//! `portable` is for checking results and measuring the SIMD kernels' gain on the machine at
//! hand, and for CPUs whose SIMD units are suspected of misbehaving.
//!
//! # Guarantees
//! - **Read once.** The variable is read at the first dispatch (or the first [`check`] or
//!   [`active`]) and never again: the kernel set does not change while the process runs.
//! - **Values.** Unset, empty or `auto`: [`KernelSet::Auto`]. `portable`:
//!   [`KernelSet::Portable`]. Anything else is refused: [`check`] returns
//!   [`KernelsError::Unknown`] naming the value and the accepted ones, and the command-line
//!   tool reports it at start and exits with code 2. A library caller that dispatches without
//!   calling [`check`] gets the portable kernels for such a value (results are the same with
//!   either set, so the slower, simpler one is the safe reading of a value nobody checked).
//! - **Same results.** Every SIMD kernel has a portable twin it is tested against, bit for
//!   bit, so the set changes speed only; the imagehash fixture tests also run with
//!   `DEALER_FREE_SIS_KERNELS=portable` in CI.
//! - **Scope.** Only this crate's own kernels: the JPEG decoder (libjpeg-turbo),
//!   `reed-solomon-simd` and curve25519-dalek choose their kernels themselves.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

/// The environment variable that selects the kernel set.
pub const ENV_VAR: &str = "DEALER_FREE_SIS_KERNELS";

/// A set of kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KernelSet {
    /// The fastest kernel the CPU runs, detected at run time (SIMD where there is one).
    #[default]
    Auto,
    /// The portable kernels everywhere: no SIMD kernel of this crate runs.
    Portable,
}

impl KernelSet {
    /// The set's name, as `DEALER_FREE_SIS_KERNELS` spells it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            KernelSet::Auto => "auto",
            KernelSet::Portable => "portable",
        }
    }
}

impl fmt::Display for KernelSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KernelSet {
    type Err = KernelsError;

    /// `auto` or `portable`; the empty string is `auto` (as if the variable were unset).
    fn from_str(value: &str) -> Result<KernelSet, KernelsError> {
        match value {
            "" | "auto" => Ok(KernelSet::Auto),
            "portable" => Ok(KernelSet::Portable),
            other => Err(KernelsError::Unknown(other.to_owned())),
        }
    }
}

/// A `DEALER_FREE_SIS_KERNELS` value that names no kernel set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KernelsError {
    /// The value is neither `auto` nor `portable`.
    #[error(
        "{ENV_VAR}={0:?} is not a kernel set: use `auto` (the default: SIMD kernels chosen \
         from the CPU's features) or `portable` (the portable kernels everywhere)"
    )]
    Unknown(String),
}

/// The variable's reading, made once.
fn reading() -> &'static Result<KernelSet, KernelsError> {
    static READING: OnceLock<Result<KernelSet, KernelsError>> = OnceLock::new();
    READING.get_or_init(|| match std::env::var_os(ENV_VAR) {
        None => Ok(KernelSet::Auto),
        Some(value) => value.to_string_lossy().parse(),
    })
}

/// The kernel set `DEALER_FREE_SIS_KERNELS` asks for.
///
/// # Errors
/// [`KernelsError::Unknown`] when the variable holds anything but `auto`, `portable` or
/// nothing; the crate then runs the portable kernels.
pub fn check() -> Result<KernelSet, KernelsError> {
    reading().clone()
}

/// The kernel set in use: [`check`]'s answer, or [`KernelSet::Portable`] for a refused value.
#[must_use]
pub fn active() -> KernelSet {
    reading().as_ref().map_or(KernelSet::Portable, |set| *set)
}

/// Whether SIMD kernels may run at all.
pub(crate) fn simd_allowed() -> bool {
    active() == KernelSet::Auto
}

/// Whether the AVX2 kernels run: allowed and supported by the CPU.
#[cfg(target_arch = "x86_64")]
pub(crate) fn avx2() -> bool {
    simd_allowed() && cpu::avx2()
}

/// Whether the kernels compiled for AVX2 and POPCNT run: allowed and supported by the CPU.
#[cfg(target_arch = "x86_64")]
pub(crate) fn avx2_popcnt() -> bool {
    simd_allowed() && cpu::avx2_popcnt()
}

/// What the CPU supports, whatever the kernel set: the proof an `unsafe` call into a kernel
/// needs, and what the tests comparing SIMD with portable kernels ask. Dispatch goes through
/// the functions above instead.
#[cfg(target_arch = "x86_64")]
pub(crate) mod cpu {
    /// The CPU has SSSE3.
    pub(crate) fn ssse3() -> bool {
        std::arch::is_x86_feature_detected!("ssse3")
    }

    /// The CPU has AVX2.
    pub(crate) fn avx2() -> bool {
        std::arch::is_x86_feature_detected!("avx2")
    }

    /// The CPU has AVX2 and POPCNT.
    pub(crate) fn avx2_popcnt() -> bool {
        avx2() && std::arch::is_x86_feature_detected!("popcnt")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_to_their_sets() {
        assert_eq!("auto".parse(), Ok(KernelSet::Auto));
        assert_eq!("".parse(), Ok(KernelSet::Auto));
        assert_eq!("portable".parse(), Ok(KernelSet::Portable));
        for set in [KernelSet::Auto, KernelSet::Portable] {
            assert_eq!(set.name().parse(), Ok(set));
            assert_eq!(set.to_string(), set.name());
        }
    }

    #[test]
    fn other_values_are_refused_with_the_accepted_ones() {
        for bad in ["Portable", "avx2", " auto", "scalar", "portable,auto"] {
            let err = bad.parse::<KernelSet>().unwrap_err();
            assert_eq!(err, KernelsError::Unknown(bad.to_owned()));
            let text = err.to_string();
            assert!(
                text.contains(ENV_VAR) && text.contains("`auto`") && text.contains("`portable`"),
                "{text}"
            );
        }
    }

    #[test]
    fn active_follows_the_check() {
        match check() {
            Ok(set) => assert_eq!(active(), set),
            Err(_) => assert_eq!(active(), KernelSet::Portable),
        }
        assert_eq!(simd_allowed(), active() == KernelSet::Auto);
    }
}
