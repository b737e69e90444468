//! `dealer-free-sis`: the command-line tool of dealer-free searchable secret image sharing.
//!
//! This binary is glue: it parses the command line ([`cli`]), runs one subcommand
//! ([`commands`]) and maps the outcome to an exit code once, here: 0 success, 1 failure (some
//! input could not be processed; each failure was already reported on stderr), 2 bad usage.

mod allowed;
mod cli;
mod commands;
mod log_file;

use std::process::ExitCode;

use clap::Parser;

/// How a subcommand ended when it did not fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Everything asked for was done.
    Success,
    /// Some inputs failed; each was reported on stderr.
    PartialFailure,
}

/// An error that is the user's to fix: reported with exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub(crate) String);

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // DEALER_FREE_SIS_KERNELS is read once; a value naming no kernel set is bad usage.
    if let Err(err) = phr_sis::kernels::check() {
        eprintln!("dealer-free-sis: {err}");
        return ExitCode::from(2);
    }
    match commands::run(cli) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::PartialFailure) => ExitCode::from(1),
        Err(err) => {
            let code = if err.downcast_ref::<UsageError>().is_some() {
                2
            } else {
                1
            };
            eprintln!("dealer-free-sis: {err:#}");
            ExitCode::from(code)
        }
    }
}
