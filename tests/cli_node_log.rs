//! End-to-end: a node's log is plain text wherever it is not a terminal — the file of
//! `node run --log FILE`, and standard error sent to a file or a pipe — with no ANSI colour
//! codes in it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_dealer-free-sis");
/// The longest a node may take to say it serves.
const START_LIMIT: Duration = Duration::from_secs(60);

/// A node process, killed when dropped (the test's end, pass or fail).
struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `node run` with `args`, its stderr piped.
fn node_run(args: &[&str]) -> Node {
    Node(
        Command::new(EXE)
            .args(["node", "run"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node run starts"),
    )
}

/// Waits until `read` returns text holding `needle`; returns that text.
fn wait_for(mut read: impl FnMut() -> String, needle: &str) -> String {
    let start = Instant::now();
    loop {
        let text = read();
        if text.contains(needle) || start.elapsed() > START_LIMIT {
            return text;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_node_logs_without_colour_codes_to_a_file_and_to_a_piped_stderr() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster");
    let init = Command::new(EXE)
        .args(["cluster", "init", "--dir", dir.to_str().unwrap()])
        .args(["--nodes", "3", "--threshold", "2"])
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let config = dir.join("node-1/node.toml");
    let config = config.to_str().unwrap();

    // Standard error, a pipe here: read it line by line until the node says it serves.
    let mut node = node_run(&["--config", config]);
    let stderr = node.0.stderr.take().unwrap();
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    let text = wait_for(
        || {
            while let Ok(line) = lines.try_recv() {
                seen.push_str(&line);
                seen.push('\n');
            }
            seen.clone()
        },
        "node serving",
    );
    drop(node);
    assert!(text.contains("node serving"), "{text}");
    assert!(
        !text.contains("\x1b["),
        "colour codes on a piped stderr: {text:?}"
    );

    // --log FILE.
    let log = tmp.path().join("node.log");
    let node = node_run(&["--config", config, "--log", log.to_str().unwrap()]);
    let text = wait_for(|| read(&log), "node serving");
    drop(node);
    assert!(text.contains("node serving"), "{text}");
    assert!(
        !text.contains("\x1b["),
        "colour codes in the log file: {text:?}"
    );
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
