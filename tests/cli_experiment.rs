//! End-to-end: `dealer-free-sis experiment --mpc-*`: both rankings side by side, the
//! comparison JSON, determinism under a seed, and bad flags exiting 2 with nothing written.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

#[path = "support/cli.rs"]
mod cli;

use std::path::{Path, PathBuf};

use cli::{run, stderr, stdout};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images")
}

fn query(name: &str) -> String {
    fixtures().join(name).display().to_string()
}

/// Runs `experiment ARGS --images FIXTURES --out OUT`.
fn experiment(out: &Path, args: &[&str]) -> std::process::Output {
    let images = fixtures().display().to_string();
    let out = out.display().to_string();
    let mut all = vec![
        "experiment",
        "--images",
        &images,
        "--out",
        &out,
        "--dkg-nodes",
        "3,5",
    ];
    all.extend_from_slice(args);
    run(&all)
}

fn comparison(out: &Path) -> Value {
    let text = std::fs::read_to_string(out.join("secure_distance_comparison.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn the_comparison_prints_both_rankings_and_writes_the_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("figures");
    let q = query("sk_coffee.png");
    let o = experiment(
        &out,
        &[
            "--mpc-query-image",
            &q,
            "--mpc-servers",
            "1,3,4",
            "--nodes",
            "4",
            "--threshold",
            "2",
            "--mpc-topk",
            "4",
            "--mpc-min-band-votes",
            "0",
            "--mpc-max-hamming",
            "40",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("baseline (plaintext hashes)"), "{text}");
    assert!(text.contains("secure (MPC on bit shares)"), "{text}");
    assert!(text.contains("agree    yes"), "{text}");
    // The query image is stored: rank 1 on both sides at distance 0.
    let first = text
        .lines()
        .find(|l| l.trim_start().starts_with("1 "))
        .unwrap();
    assert_eq!(first.matches("sk_coffee.png").count(), 2, "{first}");
    let v = comparison(&out);
    assert_eq!(v["schema"], "dealer-free-sis/secure-distance-comparison");
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["agree"], true);
    assert_eq!(v["nodes"], 4);
    assert_eq!(v["threshold"], 2);
    assert_eq!(v["servers"], serde_json::json!([1, 3, 4]));
    assert_eq!(
        v["params"],
        serde_json::json!({"topk": 4, "min_band_votes": 0, "max_hamming": 40})
    );
    assert_eq!(v["query"]["path"], q);
    assert_eq!(v["secure"]["ranking"], v["baseline"]["ranking"]);
    let ranking = v["secure"]["ranking"].as_array().unwrap();
    assert!(!ranking.is_empty() && ranking.len() <= 4);
    assert_eq!(ranking[0]["path"], "sk_coffee.png");
    assert_eq!(ranking[0]["distance"], 0);
    assert!(
        ranking
            .iter()
            .all(|h| h["distance"].as_u64().unwrap() <= 40)
    );
    // min band votes 0: every stored image is a candidate.
    assert_eq!(v["secure"]["candidates"], v["images"]);
    assert!(
        text.contains(
            &out.join("secure_distance_comparison.json")
                .display()
                .to_string()
        )
    );
}

#[test]
fn the_same_seed_gives_the_same_json_apart_from_the_times() {
    let dir = tempfile::tempdir().unwrap();
    let q = query("sk_moon.png");
    let mut runs = Vec::new();
    for i in 0..2 {
        let out = dir.path().join(format!("run{i}"));
        let o = experiment(
            &out,
            &[
                "--mpc-query-image",
                &q,
                "--seed",
                "7",
                "--mpc-min-band-votes",
                "0",
            ],
        );
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let mut v = comparison(&out);
        assert!(
            v["timing_ms"]["secure"]["online_total_ms"]
                .as_f64()
                .unwrap()
                > 0.0
        );
        v.as_object_mut().unwrap().remove("timing_ms");
        runs.push(v);
    }
    assert_eq!(runs[0], runs[1]);
    let other = dir.path().join("other");
    let o = experiment(
        &other,
        &[
            "--mpc-query-image",
            &q,
            "--seed",
            "8",
            "--mpc-min-band-votes",
            "0",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut v = comparison(&other);
    v.as_object_mut().unwrap().remove("timing_ms");
    // Other image ids (ties between equal distances break by id), the same distances.
    assert_ne!(v, runs[0]);
    let distances = |v: &Value| -> Vec<Value> {
        v["secure"]["ranking"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["distance"].clone())
            .collect()
    };
    assert_eq!(distances(&v), distances(&runs[0]));
}

#[test]
fn bad_flags_exit_2_with_a_clear_message_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let q = query("sk_moon.png");
    let not_an_image = fixtures().join("SOURCES.md").display().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--mpc-query-image", &q, "--mpc-servers", "1,2,9"],
            "there is no node 9",
        ),
        (
            vec!["--mpc-query-image", &q, "--mpc-servers", "1,2,3,4"],
            "at least 2T − 1 = 5 servers",
        ),
        (
            vec!["--mpc-query-image", &q, "--mpc-servers", "1,2,2,3,4"],
            "listed twice",
        ),
        (
            vec!["--mpc-query-image", &q, "--mpc-topk", "0"],
            "--mpc-topk must be at least 1",
        ),
        (
            vec!["--mpc-query-image", &q, "--mpc-max-hamming", "65"],
            "0 to 64",
        ),
        (
            vec!["--mpc-query-image", "/nonexistent/q.png"],
            "cannot read it as an image",
        ),
        (
            vec!["--mpc-query-image", &not_an_image],
            "cannot read it as an image",
        ),
        (
            vec!["--mpc-query-image", &q, "--nodes", "3", "--threshold", "4"],
            "allowed: 2 ≤ T ≤ N",
        ),
        (
            vec!["--mpc-query-image", &q, "--nodes", "4", "--threshold", "3"],
            "2T − 1 = 5 servers",
        ),
    ];
    for (i, (args, message)) in cases.iter().enumerate() {
        let out = dir.path().join(format!("case{i}"));
        let o = experiment(&out, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(message), "{args:?}: {}", stderr(&o));
        assert!(!out.exists(), "{args:?} wrote {}", out.display());
    }
    let out = dir.path().join("missing-images");
    let o = run(&[
        "experiment",
        "--images",
        "/nonexistent/folder",
        "--out",
        &out.display().to_string(),
        "--mpc-query-image",
        &q,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a folder"), "{}", stderr(&o));
    assert!(!out.exists());
    // Not a number: clap's own usage error, also exit 2.
    let o = experiment(
        &dir.path().join("nan"),
        &["--mpc-query-image", &q, "--mpc-servers", "one"],
    );
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn without_a_query_it_writes_every_figure_the_summary_and_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("figures");
    let o = experiment(&out, &["--nodes", "4", "--threshold", "2"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for name in [
        "stage_communication",
        "dkg_overhead",
        "stage_latency",
        "fault_tolerance",
    ] {
        for ext in ["json", "svg", "png"] {
            assert!(out.join(format!("{name}.{ext}")).is_file(), "{name}.{ext}");
        }
        let v: Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(format!("{name}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(v["schema"], "dealer-free-sis/figure");
        assert_eq!(v["figure"]["name"], name);
    }
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("- seed: 0"), "{summary}");
    assert!(summary.contains("experiment"), "{summary}");
    let page = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert_eq!(page.matches("<svg").count(), 6);
    assert!(
        stdout(&o).trim_end().ends_with("index.html"),
        "{}",
        stdout(&o)
    );
    assert!(!out.join("secure_distance_comparison.json").exists());
}
