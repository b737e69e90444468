//! Running the built `dealer-free-sis` binary from end-to-end tests.
#![allow(dead_code, clippy::expect_used)] // each test file uses a subset; a failed spawn is a failed test

use std::process::{Command, Output};

/// Runs the binary with `args` and waits for it.
pub(crate) fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dealer-free-sis"))
        .args(args)
        .output()
        .expect("the dealer-free-sis binary runs")
}

/// The process's stdout as text.
pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The process's stderr as text.
pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs the binary with `args` in the folder `dir` and waits for it.
pub(crate) fn run_in(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dealer-free-sis"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the dealer-free-sis binary runs")
}
