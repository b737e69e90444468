//! End-to-end: `dealer-free-sis bench --json` prints the records that
//! `docs/design.md#bench-records` lists, and nothing else.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::process::Command;
use std::time::Duration;

#[path = "support/process.rs"]
mod process;

use phr_sis::testing::fixtures_dir;
use process::run_bounded_with_env;
use serde_json::Value;

fn bench(args: &[&str]) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_dealer-free-sis"))
        .arg("bench")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

fn check_common(r: &Value, primitive: &str) {
    assert_eq!(r["primitive"], primitive);
    assert_eq!(r["implementation"], "dealer-free-sis");
    assert!(r["op"].is_string());
}

#[test]
fn bench_phash_json_has_the_design_fields() {
    let dir = fixtures_dir().join("images-modes");
    let records = bench(&[
        "phash",
        "--quick",
        "--json",
        "--images",
        dir.to_str().unwrap(),
    ]);
    let ops: Vec<&str> = records.iter().map(|r| r["op"].as_str().unwrap()).collect();
    assert_eq!(ops, ["hash_decoded", "open_decode_hash"]);
    for r in &records {
        check_common(r, "phash");
        assert_eq!(r["images"], 24);
        assert!(r["per_second"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn bench_index_json_has_the_design_fields() {
    let records = bench(&["index", "--quick", "--json", "--entries", "5000"]);
    assert_eq!(records.len(), 4);
    for r in &records {
        check_common(r, "index");
        assert!(["rank_candidates", "scan"].contains(&r["op"].as_str().unwrap()));
        assert_eq!(r["entries"], 5000);
        for field in ["p50_ms", "p99_ms", "bytes_per_entry"] {
            assert!(r[field].as_f64().unwrap() > 0.0, "{field} in {r}");
        }
        assert!(r["p50_ms"].as_f64() <= r["p99_ms"].as_f64());
    }
}

#[test]
fn bench_voprf_json_has_the_design_fields() {
    let records = bench(&["voprf-ristretto255", "threshold-voprf", "--quick", "--json"]);
    let ops: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r["primitive"].as_str().unwrap(), r["op"].as_str().unwrap()))
        .collect();
    assert_eq!(
        ops,
        [
            ("voprf-ristretto255", "server_evaluate"),
            ("voprf-ristretto255", "client_finalize"),
            ("voprf-ristretto255", "server_evaluate"),
            ("voprf-ristretto255", "client_finalize"),
            ("threshold-voprf", "partial_evaluate"),
            ("threshold-voprf", "combine"),
            ("threshold-voprf", "partial_evaluate"),
            ("threshold-voprf", "combine"),
        ]
    );
    for r in &records {
        check_common(r, r["primitive"].as_str().unwrap());
        assert!(r["batch"].as_u64().unwrap() >= 1);
        assert!(r["per_second"].as_f64().unwrap() > 0.0, "{r}");
        if r["primitive"] == "threshold-voprf" {
            assert!(r["t"].as_u64().unwrap() <= r["n"].as_u64().unwrap());
        }
    }
}

#[test]
fn bench_rejects_bad_arguments_with_exit_2() {
    let status = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_dealer-free-sis"))
            .arg("bench")
            .args(args)
            .output()
            .unwrap()
            .status
            .code()
    };
    assert_eq!(status(&["no-such-primitive"]), Some(2));
    assert_eq!(status(&["phash", "--images", "/no/such/dir"]), Some(2));
    assert_eq!(status(&["index", "--entries", "0"]), Some(2));
    assert_eq!(status(&["--threads", "0"]), Some(2));
    assert_eq!(status(&["dkg", "--n", "1"]), Some(2));
}

#[test]
fn bench_dkg_json_has_the_design_fields() {
    let records = bench(&["dkg", "--quick", "--json", "--n", "3,5"]);
    let ns: Vec<u64> = records.iter().map(|r| r["n"].as_u64().unwrap()).collect();
    assert_eq!(ns, [3, 5]);
    for r in &records {
        check_common(r, "dkg");
        assert_eq!(r["op"], "run");
        assert_eq!(r["t"].as_u64().unwrap(), r["n"].as_u64().unwrap() / 2 + 1);
        assert!(r["cpu_s"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["bytes"].as_u64().unwrap() > 0, "{r}");
    }
}

#[test]
fn bench_secure_ranking_json_has_the_design_fields() {
    let records = bench(&["secure-ranking", "--quick", "--json"]);
    let tn: Vec<(u64, u64)> = records
        .iter()
        .map(|r| (r["t"].as_u64().unwrap(), r["n"].as_u64().unwrap()))
        .collect();
    assert_eq!(tn, [(2, 3), (3, 5), (5, 9)]);
    for r in &records {
        check_common(r, "secure-ranking");
        assert_eq!(r["op"], "query");
        assert_eq!(r["candidates"].as_u64().unwrap(), 1_000);
        assert!(r["query_ms"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["node_candidates_per_s"].as_f64().unwrap() > 0.0, "{r}");
        // One 8-byte field element per candidate, plus the 39-byte message header.
        assert_eq!(
            r["bytes_per_candidate_per_node"].as_f64().unwrap(),
            (39.0 + 8.0 * 1000.0) / 1000.0,
            "{r}"
        );
        assert!(r["baseline_rank_ms"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["masks_offline_ms"].as_f64().unwrap() > 0.0, "{r}");
        assert!(
            r["masks_offline_bytes_per_candidate"].as_f64().unwrap() > 8.0,
            "{r}"
        );
    }
}

#[test]
fn bench_shamir_runs_the_portable_kernel_when_asked() {
    let out = run_bounded_with_env(
        env!("CARGO_BIN_EXE_dealer-free-sis"),
        &["bench", "shamir-gf256", "--quick", "--json"],
        &[("DEALER_FREE_SIS_KERNELS", "portable")],
        Duration::from_secs(300),
    )
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    let ops: Vec<(&str, u64, u64)> = records
        .iter()
        .map(|r| {
            check_common(r, "shamir-gf256");
            assert_eq!(r["kernel"], "Portable", "{r}");
            assert_eq!(r["size_bytes"], 1 << 20, "{r}");
            assert!(r["mb_per_s"].as_f64().unwrap() > 0.0, "{r}");
            (
                r["op"].as_str().unwrap(),
                r["t"].as_u64().unwrap(),
                r["n"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ops,
        [
            ("split", 3, 5),
            ("combine", 3, 5),
            ("split", 5, 10),
            ("combine", 5, 10)
        ]
    );
}
