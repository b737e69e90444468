//! End-to-end: the settings several commands share — (T, N), node ids, the search's topk,
//! min band votes and max Hamming distance — are refused the same way (exit code 2, the same
//! message) by every command that takes them, from a flag or from `experiment`'s config file,
//! before anything is written.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

#[path = "support/cli.rs"]
mod cli;

use cli::{run, stderr};
use phr_sis::testing::fixtures_dir;

/// The message of each refused value, as every command words it.
const THRESHOLD_ONE: &str = "--threshold must be at least 2 (allowed: 2 ≤ T ≤ N ≤ 255; with \
                             T = 1 a single share gives the secret away), not 1";
const NODES_300: &str = "--nodes must be 2 to 255 (allowed: 2 ≤ T ≤ N ≤ 255), not 300";
const NODES_ONE: &str = "--nodes must be 2 to 255 (allowed: 2 ≤ T ≤ N ≤ 255), not 1";
const THRESHOLD_ABOVE: &str =
    "--threshold must be at most N = 3, the number of nodes (allowed: 2 ≤ T ≤ N ≤ 255), not 4";
const TOPK_ZERO: &str = "topk must be at least 1 (the most results to keep), not 0";
const HAMMING_65: &str = "max-hamming must be 0 to 64 (a 64-bit hash's distances), not 65";
const VOTES_9: &str = "min-band-votes must be 0 to 8 (a 64-bit hash has 8 bands), not 9";
const NODE_ID_300: &str = "must be 1 to 255 (a node's id), not 300";

#[test]
fn the_same_bad_value_is_refused_the_same_way_by_every_command() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("made");
    let d = dir.to_str().unwrap();
    let image = fixtures_dir().join("images/sk_coins.png");
    let img = image.to_str().unwrap();
    // Each command's words for N and T, then the extra words it needs.
    let shaped: [(&[&str], &[&str]); 5] = [
        (&["split"], &["--out", d, img]),
        (&["dkg"], &[]),
        (&["cluster", "init"], &["--dir", d]),
        (&["cluster", "up"], &["--dir", d]),
        (&["experiment"], &["--check", "--out", d]),
    ];
    let mut cases: Vec<(Vec<&str>, &str)> = Vec::new();
    for (command, extra) in shaped {
        for (n, t, message) in [
            ("3", "1", THRESHOLD_ONE),
            ("300", "2", NODES_300),
            ("1", "1", NODES_ONE),
            ("3", "4", THRESHOLD_ABOVE),
        ] {
            let mut args = command.to_vec();
            args.extend(["--nodes", n, "--threshold", t]);
            args.extend(extra);
            cases.push((args, message));
        }
    }
    // Short flags of split, dkg and experiment: the same message.
    cases.push((
        vec!["split", "-n", "3", "-t", "1", "-o", d, img],
        THRESHOLD_ONE,
    ));
    cases.push((vec!["dkg", "-n", "300", "-t", "2"], NODES_300));
    cases.push((
        vec!["experiment", "-n", "3", "-t", "4", "--check"],
        THRESHOLD_ABOVE,
    ));
    // The search settings: `search` and `experiment`'s secure-ranking comparison.
    let nowhere = tmp.path().join("no-cluster");
    let c = nowhere.to_str().unwrap();
    for (flag, value, message) in [
        ("topk", "0", TOPK_ZERO),
        ("max-hamming", "65", HAMMING_65),
        ("min-band-votes", "9", VOTES_9),
    ] {
        let search = format!("--{flag}");
        let mpc = format!("--mpc-{flag}");
        cases.push((
            vec!["search", "--cluster", c, img, leak(search), value],
            message,
        ));
        cases.push((
            vec!["experiment", "--check", "--out", d, leak(mpc), value],
            message,
        ));
    }
    // Node ids.
    cases.push((vec!["node", "init", "--dir", d, "--id", "300"], NODE_ID_300));
    cases.push((
        vec!["cluster", "replace", "--dir", d, "--node", "300"],
        NODE_ID_300,
    ));
    for (args, message) in &cases {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(message),
            "{args:?}: {message:?} missing in {}",
            stderr(&out)
        );
        assert!(!dir.exists(), "{args:?} wrote {d}");
    }
}

#[test]
fn a_config_file_is_held_to_the_same_rules_in_the_same_words() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    for (text, message) in [
        ("nodes = 300\nthreshold = 2\n", "nodes must be 2 to 255"),
        ("nodes = 3\nthreshold = 1\n", "threshold must be at least 2"),
        (
            "nodes = 3\nthreshold = 4\n",
            "threshold must be at most N = 3, the number of nodes",
        ),
        ("[mpc]\ntopk = 0\n", "[mpc] topk must be at least 1"),
        (
            "[mpc]\nmax_hamming = 65\n",
            "[mpc] max_hamming must be 0 to 64 (a 64-bit hash's distances), not 65",
        ),
        (
            "[mpc]\nmin_band_votes = 9\n",
            "[mpc] min_band_votes must be 0 to 8 (a 64-bit hash has 8 bands), not 9",
        ),
    ] {
        let file = tmp.path().join("settings.toml");
        std::fs::write(&file, text).unwrap();
        let o = run(&[
            "experiment",
            "--config",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--check",
        ]);
        assert_eq!(o.status.code(), Some(2), "{text}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains("settings.toml: "), "{text}: {err}");
        assert!(
            err.contains(message),
            "{text}: {message:?} missing in {err}"
        );
        assert!(!out.exists());
    }
}

/// A flag built at run time, kept for the test's lifetime.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}
