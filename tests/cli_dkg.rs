//! End-to-end: `dealer-free-sis dkg`, honest and with faulty nodes, and its exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

#[path = "support/cli.rs"]
mod cli;

use cli::{run, stderr, stdout};
use serde_json::Value;

/// Runs `dkg ARGS --json`, returning the exit code and the parsed object.
fn dkg_json(args: &[&str]) -> (Option<i32>, Value) {
    let mut all = vec!["dkg", "--json"];
    all.extend_from_slice(args);
    let out = run(&all);
    let value = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", stdout(&out), stderr(&out)));
    (out.status.code(), value)
}

#[test]
fn honest_run_agrees_on_a_key_with_every_node_qualified() {
    let (code, v) = dkg_json(&["--nodes", "5", "--threshold", "3"]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["agree"], true);
    assert_eq!(v["n"], 5);
    assert_eq!(v["t"], 3);
    assert_eq!(v["seed"], 0);
    assert_eq!(v["qualified"], serde_json::json!([1, 2, 3, 4, 5]));
    assert_eq!(v["disqualified"], serde_json::json!({}));
    assert_eq!(v["errors"], serde_json::json!({}));
    assert_eq!(v["group_public_key"].as_str().unwrap().len(), 64);
    let rounds = v["rounds"].as_array().unwrap();
    let names: Vec<&str> = rounds.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["deal", "complain", "justify", "confirm"]);
    let bytes: u64 = rounds.iter().map(|r| r["bytes"].as_u64().unwrap()).sum();
    assert_eq!(v["bytes"].as_u64(), Some(bytes));
    assert!(v["cpu_s"].as_f64().unwrap() > 0.0);
    // The same seed gives the same key.
    let (_, again) = dkg_json(&["--nodes", "5", "--threshold", "3"]);
    assert_eq!(again["group_public_key"], v["group_public_key"]);
}

#[test]
fn text_output_names_rounds_qual_and_the_key() {
    let out = run(&["dkg", "-n", "3", "-t", "2", "--seed", "7"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for needle in [
        "1 deal",
        "4 confirm",
        "total",
        "qualified: 1, 2, 3",
        "agree (group key, QUAL, transcript): yes",
        "group public key: ",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in\n{text}");
    }
}

#[test]
fn an_equivocating_node_is_disqualified_and_the_rest_agree() {
    let (code, v) = dkg_json(&["-n", "5", "-t", "3", "--faulty", "3=equivocate"]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["agree"], true);
    assert_eq!(v["faulty"]["3"], "equivocate");
    assert_eq!(v["qualified"], serde_json::json!([1, 2, 4, 5]));
    assert_eq!(
        v["disqualified"]["3"], "signed two different commitments",
        "{v}"
    );
}

#[test]
fn a_silent_node_is_named_silent_and_blamed_for_nothing_else() {
    let out = run(&["dkg", "-n", "5", "-t", "3", "--faulty", "4=silent"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let named: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("node 4:"))
        .collect();
    assert_eq!(named, ["  node 4: sent nothing in round 1"], "{text}");
    let (code, v) = dkg_json(&["-n", "5", "-t", "3", "--faulty", "4=silent"]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["disqualified"]["4"], "sent nothing in round 1", "{v}");
    // A node that did send in round 1, but a commitment that does not hold, is named so.
    let (_, v) = dkg_json(&["-n", "5", "-t", "3", "--faulty", "4=bad-commitment"]);
    assert_ne!(v["disqualified"]["4"], "sent nothing in round 1", "{v}");
}

#[test]
fn too_many_bad_commitments_end_without_a_key_and_exit_1() {
    let (code, v) = dkg_json(&[
        "-n",
        "5",
        "-t",
        "3",
        "--faulty",
        "1=bad-commitment,2=bad-commitment,3=bad-commitment",
    ]);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["agree"], false);
    assert_eq!(v["group_public_key"], Value::Null);
    let errors = v["errors"].as_object().unwrap();
    assert_eq!(errors.keys().collect::<Vec<_>>(), ["4", "5"]);
    assert!(
        errors["4"].as_str().unwrap().contains("disqualified"),
        "{v}"
    );
    assert_eq!(v["disqualified"].as_object().unwrap().len(), 3);
}

#[test]
fn bad_parameters_exit_2_and_say_what_is_allowed() {
    let cases: [(&[&str], &[&str]); 7] = [
        (
            &["-n", "5", "-t", "6"],
            &["--threshold must be at most N = 5"],
        ),
        (&["-n", "5", "-t", "1"], &["--threshold must be at least 2"]),
        (&["-n", "300", "-t", "3"], &["--nodes must be 2 to 255"]),
        (&["-n", "0", "-t", "0"], &["--nodes must be 2 to 255"]),
        (
            &["-n", "5", "-t", "3", "--faulty", "2=lazy"],
            &["unknown misbehaviour", "equivocate", "bad-share:VICTIM"],
        ),
        (
            &["-n", "5", "-t", "3", "--faulty", "6=silent"],
            &["1 to n = 5"],
        ),
        (
            &["-n", "5", "-t", "3", "--faulty", "2=bad-share:9"],
            &["victim", "1 to n = 5"],
        ),
    ];
    for (args, needles) in cases {
        let mut all = vec!["dkg"];
        all.extend_from_slice(args);
        let out = run(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stdout(&out).is_empty(), "{args:?}");
        for needle in needles {
            assert!(
                stderr(&out).contains(needle),
                "{args:?}: {needle:?} missing in {}",
                stderr(&out)
            );
        }
    }
}
