//! Running the CLI from a test with a time limit: a process that does not end in time is
//! killed and the call fails, so no test waits forever.
#![allow(dead_code)] // each test file uses a subset

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `exe args`, with no standard input and both outputs captured, killed after `limit`.
pub(crate) fn run_bounded(
    exe: &str,
    args: &[&str],
    limit: Duration,
) -> Result<Output, Box<dyn std::error::Error>> {
    run_bounded_with_env(exe, args, &[], limit)
}

/// [`run_bounded`] with `env` added to the child's environment.
pub(crate) fn run_bounded_with_env(
    exe: &str,
    args: &[&str],
    env: &[(&str, &str)],
    limit: Duration,
) -> Result<Output, Box<dyn std::error::Error>> {
    let mut child = Command::new(exe)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let start = Instant::now();
    while child.try_wait()?.is_none() {
        if start.elapsed() > limit {
            child.kill()?;
            return Err(format!("{args:?} did not end within {limit:?}").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(child.wait_with_output()?)
}
