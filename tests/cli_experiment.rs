//! End-to-end: `dealer-free-sis experiment --mpc-*`: both rankings side by side, the
//! comparison JSON (alone unless figure sets are named, with its section in summary.md and
//! index.html), determinism under a seed, and bad flags exiting 2 with nothing written; the
//! figure-set (`none` among them), stage, network, batching and scaling flags, `--config`
//! files (every experiments/*.toml among them) and their precedence, summary.md's sections
//! (only for what ran), the fault-tolerance matrix, the DKG figure's three metrics, and the
//! output folder's checks (`--check` failing as the run would). Every run is killed after
//! [`LIMIT`].
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

#[path = "support/cli.rs"]
mod cli;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use cli::{stderr, stdout};
use serde_json::Value;

/// The longest any one run of the binary may take (debug build, small sweeps).
const LIMIT: Duration = Duration::from_secs(900);

/// Runs the binary with `args` in `dir` (or the current folder), killed after [`LIMIT`]. Its
/// output goes to files, so no pipe can fill up and stall it.
fn run_limited(dir: Option<&Path>, args: &[&str]) -> Output {
    let tmp = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (tmp.path().join("stdout"), tmp.path().join("stderr"));
    let mut command = Command::new(env!("CARGO_BIN_EXE_dealer-free-sis"));
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let mut child = command.spawn().expect("the dealer-free-sis binary runs");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?} did not end within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: std::fs::read(&err_path).unwrap(),
    }
}

/// Runs the binary with `args`, bounded.
fn run(args: &[&str]) -> Output {
    run_limited(None, args)
}

/// Runs the binary with `args` in `dir`, bounded.
fn run_in(dir: &Path, args: &[&str]) -> Output {
    run_limited(Some(dir), args)
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images")
}

fn query(name: &str) -> String {
    fixtures().join(name).display().to_string()
}

/// Runs `experiment ARGS --images FIXTURES --out OUT`, with small sweeps (DKG sizes, batch
/// sizes, scale runs) where ARGS gives none.
fn experiment(out: &Path, args: &[&str]) -> Output {
    let images = fixtures().display().to_string();
    let out = out.display().to_string();
    let mut all = vec!["experiment", "--images", &images, "--out", &out];
    for (flag, small) in [
        ("--dkg-nodes", "3,5"),
        ("--batch-sizes", "1,4"),
        ("--scale-nodes", "3,5"),
        ("--scale-images", "40,80"),
    ] {
        if !args.contains(&flag) && !args.contains(&"--config") {
            all.extend([flag, small]);
        }
    }
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
    assert_eq!(v["schema_version"], 2);
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

/// A list of rows in a figure's data, with the keys of each row.
type RowSchema = (&'static str, &'static [&'static str]);

/// A figure's name, the keys of its data and its lists of rows.
type FigureSchema = (&'static str, &'static [&'static str], &'static [RowSchema]);

/// Every figure set with the keys of its JSON data, and of the rows in it.
const SCHEMAS: [FigureSchema; 7] = [
    (
        "stage_communication",
        &["rounds"],
        &[(
            "rounds",
            &["design", "stage", "round", "messages", "bytes", "cpu_ns"],
        )],
    ),
    (
        "dkg_overhead",
        &["rows", "bytes_exponent", "exponents"],
        &[(
            "rows",
            &[
                "n",
                "t",
                "messages",
                "bytes",
                "agree",
                "cpu_ms",
                "dealer_messages",
                "dealer_bytes",
                "dealer_cpu_ms",
            ],
        )],
    ),
    (
        "stage_latency",
        &["rows"],
        &[("rows", &["design", "stage", "network", "latency_ms"])],
    ),
    (
        "batching",
        &["t", "n", "images", "file_bytes", "payload_padding", "rows"],
        &[(
            "rows",
            &[
                "batch",
                "padded",
                "compressed",
                "token_requests",
                "dummy_images",
                "messages",
                "bytes",
                "token_bytes",
                "share_bytes",
                "payload_bytes",
                "cpu_ms",
                "lan_ms",
                "wan_ms",
            ],
        )],
    ),
    (
        "fault_tolerance",
        &["rows", "matrix", "details"],
        &[(
            "rows",
            &[
                "scenario",
                "stage",
                "fault",
                "faulty",
                "dkg_key",
                "disqualified",
                "ingest_ok",
                "search_same",
                "retrieval_ok",
                "reason",
                "latency_wan_ms",
            ],
        )],
    ),
    (
        "scaling",
        &[
            "t",
            "n",
            "by_nodes",
            "by_images",
            "real_stage1",
            "exponents",
            "timing_ms",
        ],
        &[
            (
                "by_nodes",
                &[
                    "n",
                    "t",
                    "images",
                    "candidates",
                    "stage1",
                    "search",
                    "retrieval",
                ],
            ),
            (
                "by_images",
                &[
                    "stored",
                    "synthetic",
                    "candidates",
                    "stage1",
                    "stage1_bytes_per_image",
                    "search",
                    "retrieval",
                ],
            ),
        ],
    ),
    (
        "scaling_nodes",
        &[
            "t",
            "n",
            "by_nodes",
            "by_images",
            "real_stage1",
            "exponents",
            "timing_ms",
        ],
        &[(
            "by_nodes",
            &[
                "n",
                "t",
                "images",
                "candidates",
                "stage1",
                "search",
                "retrieval",
            ],
        )],
    ),
];

fn keys(v: &Value) -> Vec<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn without_a_query_it_writes_every_figure_with_its_schema_the_summary_and_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("figures");
    let o = experiment(&out, &["--nodes", "4", "--threshold", "2"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for (name, data_keys, rows) in SCHEMAS {
        for ext in ["json", "svg", "png"] {
            assert!(out.join(format!("{name}.{ext}")).is_file(), "{name}.{ext}");
        }
        let v = json(&out.join(format!("{name}.json")));
        assert_eq!(
            keys(&v),
            ["schema", "schema_version", "figure", "render_notes", "data"],
            "{name}"
        );
        assert_eq!(v["schema"], "dealer-free-sis/figure");
        assert_eq!(v["schema_version"], 1);
        assert_eq!(v["figure"]["name"], name);
        let mut want: Vec<String> = data_keys.iter().map(|k| (*k).to_owned()).collect();
        want.sort();
        let mut got = keys(&v["data"]);
        got.sort();
        assert_eq!(got, want, "{name}");
        for (list, row_keys) in rows {
            let rows = v["data"][list].as_array().unwrap();
            assert!(!rows.is_empty(), "{name}.{list}");
            for row in rows {
                let mut want: Vec<String> = row_keys.iter().map(|k| (*k).to_owned()).collect();
                want.sort();
                let mut got = keys(row);
                got.sort();
                assert_eq!(got, want, "{name}.{list}");
            }
        }
    }
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("- seed: 0"), "{summary}");
    assert!(summary.contains("experiment"), "{summary}");
    for section in SCHEMAS
        .iter()
        .map(|s| s.0)
        .filter(|n| *n != "scaling_nodes")
    {
        assert!(summary.contains(&format!("## {section}")), "{section}");
    }
    let page = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert_eq!(page.matches("<svg").count(), SCHEMAS.len());
    assert!(
        stdout(&o).trim_end().ends_with("index.html"),
        "{}",
        stdout(&o)
    );
    assert!(!out.join("secure_distance_comparison.json").exists());
}

/// The repository root.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Writes a config file and returns its path.
fn config(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The file names in a folder, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn bad_figure_network_batch_and_scale_flags_exit_2_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--network", "lan,moon"],
            "--network: unknown network preset \"moon\"; expected one of: lan, wan",
        ),
        (
            vec!["--stages", "dkg,stage3"],
            "--stages: unknown stage \"stage3\"; expected one of: dkg, stage1, stage2",
        ),
        (
            vec!["--figures", "dkg_overhead,plots"],
            "--figures: unknown figure set \"plots\"; expected one of: stage_communication",
        ),
        (vec!["--figures", ""], "--figures: unknown figure set \"\""),
        (
            vec!["--figures", "none,batching"],
            "--figures none,batching: none selects no figure set; name it alone",
        ),
        (
            vec!["--figures", "none"],
            "--figures none: no figure set, and neither --mpc-query-image nor --cluster: \
             nothing to run",
        ),
        (
            vec!["--figures", "batching,cluster"],
            "--figures: \"cluster\" is not a figure set: --cluster DIR writes the cluster_stages \
             figure; expected none or some of: stage_communication, dkg_overhead, \
             stage_latency, batching, fault_tolerance, scaling",
        ),
        (
            vec!["--batch-sizes", "1,0,4"],
            "--batch-sizes: 0 images per token request; allowed: 1 to",
        ),
        (
            vec!["--scale-nodes", "3,2"],
            "--scale-nodes: 2 nodes; allowed: 3 to 64",
        ),
        (
            vec!["--scale-nodes", "65"],
            "--scale-nodes: 65 nodes; allowed: 3 to 64",
        ),
        (
            vec!["--scale-images", "0"],
            "--scale-images: 0 stored images; allowed: 1 to 200000",
        ),
        (
            vec!["--scale-images", "100,200001"],
            "--scale-images: 200001 stored images; allowed: 1 to 200000",
        ),
        (
            vec!["--dkg-nodes", "2"],
            "--dkg-nodes: 2 nodes; allowed: 3 to 255",
        ),
    ];
    for (i, (args, message)) in cases.iter().enumerate() {
        let out = dir.path().join(format!("case{i}"));
        let o = experiment(&out, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(message), "{args:?}: {}", stderr(&o));
        assert!(!out.exists(), "{args:?} wrote {}", out.display());
    }
    // Not a number: clap's own usage error.
    let out = dir.path().join("nan");
    let o = experiment(&out, &["--batch-sizes", "1,two"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!out.exists());
}

#[test]
fn bad_config_files_exit_2_naming_the_file_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let missing = d.join("missing.toml").display().to_string();
    let cases: Vec<(String, Vec<&str>)> = vec![
        (missing, vec!["missing.toml: cannot read it"]),
        (
            config(d, "syntax.toml", "nodes = 5\nfigures = [\"dkg_overhead\"\n"),
            vec!["syntax.toml", "line 2"],
        ),
        (
            config(d, "unknown.toml", "nodes = 5\nnode_count = 5\n"),
            vec!["unknown.toml", "unknown field `node_count`"],
        ),
        (
            config(d, "unknown_mpc.toml", "[mpc]\ntop_k = 3\n"),
            vec!["unknown_mpc.toml", "unknown field `top_k`"],
        ),
        (
            config(d, "type.toml", "nodes = \"five\"\n"),
            vec!["type.toml", "nodes"],
        ),
        (
            config(d, "negative.toml", "seed = -1\n"),
            vec!["negative.toml", "seed"],
        ),
        (
            config(d, "scale.toml", "scale_nodes = [3, 100]\n"),
            vec!["scale.toml: scale_nodes: 100 nodes; allowed: 3 to 64"],
        ),
        (
            config(d, "network.toml", "network = [\"lan\", \"mars\"]\n"),
            vec!["network.toml: network: unknown network preset \"mars\""],
        ),
        (
            config(d, "empty_list.toml", "figures = []\n"),
            vec![
                "empty_list.toml: figures = []: no figure set",
                "nothing to run",
            ],
        ),
        (
            config(d, "threshold.toml", "nodes = 4\nthreshold = 3\n"),
            vec!["threshold.toml: threshold = 3", "2T − 1 = 5 servers"],
        ),
        (
            config(d, "topk.toml", "[mpc]\ntopk = 0\n"),
            vec!["topk.toml: [mpc] topk must be at least 1"],
        ),
        (
            config(d, "images.toml", "images = \"/nonexistent/folder\"\n"),
            vec!["images.toml: images = /nonexistent/folder: not a folder"],
        ),
    ];
    for (i, (file, messages)) in cases.iter().enumerate() {
        let out = d.join(format!("case{i}"));
        let o = run(&[
            "experiment",
            "--config",
            file,
            "--out",
            &out.display().to_string(),
        ]);
        assert_eq!(o.status.code(), Some(2), "{file}: {}", stderr(&o));
        for m in messages {
            assert!(stderr(&o).contains(m), "{file}: {m:?} in {}", stderr(&o));
        }
        assert!(!out.exists(), "{file} wrote {}", out.display());
    }
    // The file's out is checked too, and named.
    let blocker = d.join("a-file");
    std::fs::write(&blocker, "x").unwrap();
    let file = config(
        d,
        "out.toml",
        &format!(
            "out = {:?}\n",
            blocker.join("figures").display().to_string()
        ),
    );
    let o = run(&["experiment", "--config", &file]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("out.toml: out = "), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot write there"), "{}", stderr(&o));
}

#[test]
fn an_unwritable_out_exits_2_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, "not a folder").unwrap();
    for out in [
        blocker.join("figures"),
        blocker.join("a/b"),
        blocker.clone(),
    ] {
        let mut messages = Vec::new();
        for check in [false, true] {
            let images = fixtures().display().to_string();
            let out_s = out.display().to_string();
            let mut args = vec!["experiment", "--images", &images, "--out", &out_s];
            if check {
                args.push("--check");
            }
            let o = run(&args);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
            assert!(
                stderr(&o).contains(&format!("--out {}: cannot write there", out.display())),
                "{}",
                stderr(&o)
            );
            assert!(!stderr(&o).contains("wrote"), "{}", stderr(&o));
            assert_eq!(stdout(&o), "", "{args:?}");
            messages.push(stderr(&o));
        }
        // --check fails exactly as the run does, with the same message.
        assert_eq!(messages[0], messages[1], "{}", out.display());
    }
    assert_eq!(std::fs::read_to_string(&blocker).unwrap(), "not a folder");
    assert_eq!(listing(dir.path()), ["a-file"]);

    // A read-only folder (only where the permissions bind: not for root).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let ro = dir.path().join("read-only");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        if std::fs::write(ro.join("probe"), "x").is_err() {
            let out = ro.join("figures");
            let o = experiment(&out, &[]);
            assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
            assert!(stderr(&o).contains("cannot write there"), "{}", stderr(&o));
            let o = experiment(&ro, &[]);
            assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
            assert_eq!(listing(&ro).len(), 0);
        }
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[test]
fn relative_paths_in_a_config_are_taken_from_the_current_folder() {
    let dir = tempfile::tempdir().unwrap();
    let file = config(
        dir.path(),
        "relative.toml",
        "images = \"tests/fixtures/images\"\nout = \"output/figures/dealer_free/relative\"\n",
    );
    let o = run_in(root(), &["experiment", "--config", &file, "--check"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("images = \"tests/fixtures/images\"\n"),
        "{}",
        stdout(&o)
    );
    let o = run_in(dir.path(), &["experiment", "--config", &file, "--check"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("relative.toml: images = tests/fixtures/images: not a folder"),
        "{}",
        stderr(&o)
    );
    assert_eq!(listing(dir.path()), ["relative.toml"]);
}

#[test]
fn only_the_selected_figure_set_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("figures");
    let o = experiment(&out, &["--figures", "dkg_overhead"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        listing(&out),
        [
            "dkg_overhead.json",
            "dkg_overhead.png",
            "dkg_overhead.svg",
            "index.html",
            "summary.md"
        ]
    );
    let v = json(&out.join("dkg_overhead.json"));
    let ns: Vec<u64> = v["data"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["n"].as_u64().unwrap())
        .collect();
    assert!(ns.contains(&3) && ns.contains(&5) && ns.iter().all(|n| [3, 5].contains(n)));
    let page = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert_eq!(page.matches("<svg").count(), 1);
}

#[test]
fn selected_batching_and_scaling_sets_write_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("figures");
    let o = experiment(
        &out,
        &[
            "--figures",
            "batching,scaling",
            "--batch-sizes",
            "4,1",
            "--scale-nodes",
            "5,3",
            "--scale-images",
            "50,100",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for name in ["batching", "scaling"] {
        for ext in ["json", "svg", "png"] {
            assert!(out.join(format!("{name}.{ext}")).is_file(), "{name}.{ext}");
        }
    }
    assert!(!out.join("dkg_overhead.json").exists());
    assert!(!out.join("stage_communication.json").exists());
}

/// The networks of the stage_latency rows.
fn latency_networks(out: &Path) -> std::collections::BTreeSet<String> {
    json(&out.join("stage_latency.json"))["data"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["network"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn network_lan_gives_lan_rows_only() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("figures");
    let o = experiment(&out, &["--figures", "stage_latency", "--network", "lan"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(latency_networks(&out), ["lan".to_owned()].into());
    let out = dir.path().join("both");
    let o = experiment(&out, &["--figures", "stage_latency"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        latency_networks(&out),
        ["lan".to_owned(), "wan".to_owned()].into()
    );
}

#[test]
fn a_flag_given_on_the_command_line_overrides_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("from-file");
    let file = config(
        dir.path(),
        "latency.toml",
        &format!(
            "figures = [\"stage_latency\"]\nnetwork = [\"wan\"]\nseed = 3\nimages = {:?}\n\
             out = {:?}\ndkg_nodes = [3]\nstages = [\"stage1\"]\n",
            fixtures().display().to_string(),
            out.display().to_string()
        ),
    );
    let o = run(&["experiment", "--config", &file, "--network", "lan"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The flag's network, the file's seed, out, figures and stages.
    assert_eq!(latency_networks(&out), ["lan".to_owned()].into());
    let stages: std::collections::BTreeSet<String> = json(&out.join("stage_latency.json"))["data"]
        ["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["stage"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(stages.len(), 1, "{stages:?}");
    assert!(
        std::fs::read_to_string(out.join("summary.md"))
            .unwrap()
            .contains("- seed: 3")
    );
    assert_eq!(
        listing(&out),
        [
            "index.html",
            "stage_latency.json",
            "stage_latency.png",
            "stage_latency.svg",
            "summary.md"
        ]
    );
    // --check shows the merge without running anything.
    let o = run(&["experiment", "--config", &file, "--seed", "11", "--check"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("seed = 11\n"), "{text}");
    assert!(text.contains("network = [\"wan\"]\n"), "{text}");
    assert!(text.contains("stages = [\"stage1\"]\n"), "{text}");
}

/// Drops every key ending in `_ms` or named `cpu_ns` (the measured times).
fn without_times(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|k, _| !k.ends_with("_ms") && k != "cpu_ns");
            map.values_mut().for_each(without_times);
        }
        Value::Array(items) => items.iter_mut().for_each(without_times),
        _ => {}
    }
}

#[test]
fn the_same_seed_gives_the_same_figure_data_apart_from_the_times() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--seed",
        "5",
        "--batch-sizes",
        "1,4",
        "--scale-nodes",
        "3,5",
        "--scale-images",
        "50,100",
    ];
    let mut runs = Vec::new();
    for i in 0..2 {
        let out = dir.path().join(format!("run{i}"));
        let o = experiment(&out, &args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let files: Vec<String> = listing(&out)
            .into_iter()
            .filter(|n| n.ends_with(".json"))
            .collect();
        assert_eq!(files.len(), 7, "{files:?}");
        let mut all = Vec::new();
        for name in files {
            let mut v = json(&out.join(&name));
            without_times(&mut v);
            // The drawn series of the latency figures (and the DKG's CPU panel) are times
            // (under `values`/`points`); the byte figure is compared whole.
            if name != "stage_communication.json" {
                v = v["data"].take();
            }
            all.push((name, v));
        }
        runs.push(all);
    }
    assert_eq!(runs[0], runs[1]);
}

#[test]
fn every_experiments_toml_is_a_valid_config() {
    let mut files: Vec<_> = std::fs::read_dir(root().join("experiments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let stems: Vec<String> = files
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for set in [
        "stage_communication",
        "dkg_overhead",
        "stage_latency",
        "batching",
        "fault_tolerance",
        "scaling",
        "default",
        "scale_100k",
    ] {
        assert!(
            stems.iter().any(|s| s == set),
            "experiments/{set}.toml is missing"
        );
    }
    for (file, stem) in files.iter().zip(&stems) {
        let rel = format!("experiments/{stem}.toml");
        let text = std::fs::read_to_string(file).unwrap();
        assert!(
            text.contains(&format!("dealer-free-sis experiment --config {rel}")),
            "{rel}: the header does not say how to run it"
        );
        let o = run_in(root(), &["experiment", "--config", &rel, "--check"]);
        assert_eq!(o.status.code(), Some(0), "{rel}: {}", stderr(&o));
        let resolved = stdout(&o);
        let out = resolved
            .lines()
            .find_map(|l| l.strip_prefix("out = "))
            .unwrap();
        assert!(
            out.starts_with("\"output/figures/dealer_free"),
            "{rel}: {out}"
        );
        match stem.as_str() {
            "default" => {
                let plain = run_in(root(), &["experiment", "--check"]);
                assert_eq!(plain.status.code(), Some(0), "{}", stderr(&plain));
                assert_eq!(
                    resolved,
                    stdout(&plain),
                    "{rel} differs from the default run"
                );
            }
            "cluster" => {
                // cluster_stages is no figure set: --cluster writes it.
                assert!(resolved.contains("figures = []\n"), "{resolved}");
                assert!(resolved.contains("cluster = \"cluster\"\n"), "{resolved}");
                assert_eq!(out, "\"output/figures/dealer_free/cluster\"");
            }
            "scale_100k" => {
                assert!(resolved.contains("figures = [\"scaling\"]\n"), "{resolved}");
                assert!(resolved.contains("64]\n"), "{resolved}");
                assert!(resolved.contains("100000]\n"), "{resolved}");
            }
            set => {
                assert!(
                    resolved.contains(&format!("figures = [\"{set}\"]\n")),
                    "{rel}: {resolved}"
                );
                assert_eq!(out, format!("\"output/figures/dealer_free/{set}\""));
            }
        }
    }
}

#[test]
fn check_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a/b/figures");
    let o = experiment(&out, &["--check", "--figures", "scaling"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("figures = [\"scaling\"]"),
        "{}",
        stdout(&o)
    );
    assert!(!dir.path().join("a").exists());
}

/// The names of the `## ` sections of a summary, in order.
fn sections(summary: &str) -> Vec<String> {
    summary
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_query_alone_runs_only_the_comparison_with_its_section_in_the_summary_and_page() {
    let dir = tempfile::tempdir().unwrap();
    let q = query("sk_coffee.png");
    let args = [
        "--mpc-query-image",
        &q,
        "--mpc-min-band-votes",
        "0",
        "--mpc-topk",
        "3",
    ];
    let out = dir.path().join("flag");
    let o = experiment(&out, &args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // No figure set ran: no figure file.
    assert_eq!(
        listing(&out),
        [
            "index.html",
            "secure_distance_comparison.json",
            "summary.md"
        ]
    );
    assert_eq!(comparison(&out)["agree"], true);
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert_eq!(
        sections(&summary),
        ["secure_distance_comparison"],
        "{summary}"
    );
    assert!(summary.contains("- figure sets: none"), "{summary}");
    assert!(
        summary.contains(
            "| rank | baseline: distance | votes | image | secure: distance | votes | image |"
        ),
        "{summary}"
    );
    // The query is stored: rank 1 on both sides at distance 0.
    assert!(
        summary.contains("| 1 | 0 | ") && summary.contains("sk_coffee.png | 0 |"),
        "{summary}"
    );
    for line in ["- agree: yes", "- time: baseline ", "- bytes: baseline "] {
        assert!(summary.contains(line), "{line} in {summary}");
    }
    let page = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(
        page.contains("<h3>secure_distance_comparison</h3>"),
        "{page}"
    );
    assert!(page.contains("<th>secure: distance</th>"), "{page}");
    assert!(!page.contains("<svg"));
    assert!(
        stdout(&o).trim_end().ends_with("index.html"),
        "{}",
        stdout(&o)
    );

    // --figures none and figures = [] say the same; naming a set runs it beside.
    let none = dir.path().join("none");
    let o = experiment(&none, &[&args[..], &["--figures", "none"]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(listing(&none), listing(&out));
    let file = config(
        dir.path(),
        "query.toml",
        &format!(
            "figures = []\nimages = {:?}\nout = {:?}\n[mpc]\nquery_image = {q:?}\n",
            fixtures().display().to_string(),
            dir.path().join("file").display().to_string()
        ),
    );
    let o = run(&["experiment", "--config", &file]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(listing(&dir.path().join("file")), listing(&out));
    let o = run(&["experiment", "--config", &file, "--check"]);
    assert!(stdout(&o).contains("figures = []\n"), "{}", stdout(&o));
    let both = dir.path().join("both");
    let o = experiment(&both, &[&args[..], &["--figures", "dkg_overhead"]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(both.join("dkg_overhead.png").is_file());
    assert!(both.join("secure_distance_comparison.json").is_file());
    let summary = std::fs::read_to_string(both.join("summary.md")).unwrap();
    assert_eq!(
        sections(&summary),
        ["dkg_overhead", "secure_distance_comparison"]
    );
}

#[test]
fn the_summary_has_sections_only_for_the_figure_sets_that_ran() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("figures");
    let o = experiment(&out, &["--figures", "batching", "--batch-sizes", "1,2"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert_eq!(sections(&summary), ["batching"], "{summary}");
    assert!(summary.contains("- figure sets: batching"), "{summary}");
    // The section has its rows: one per batch size, padded and not.
    assert_eq!(
        summary
            .lines()
            .filter(|l| l.starts_with("| 1 |") || l.starts_with("| 2 |"))
            .count(),
        json(&out.join("batching.json"))["data"]["rows"]
            .as_array()
            .unwrap()
            .len()
    );
}

/// The fixture images `names`, copied into `dir/images` (a small run).
fn few_images(dir: &Path, names: &[&str]) -> String {
    let images = dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    for name in names {
        std::fs::copy(fixtures().join(name), images.join(name)).unwrap();
    }
    images.display().to_string()
}

#[test]
fn the_fault_tolerance_figure_is_a_success_matrix_in_plain_words() {
    let dir = tempfile::tempdir().unwrap();
    let images = few_images(
        dir.path(),
        &["sk_coins.png", "kpa_spiff.jpg", "sk_chelsea.jpg"],
    );
    let out = dir.path().join("figures");
    let out_s = out.display().to_string();
    // (t, n) = (2, 3): the DKG tolerates t − 1 = 1 faulty node; the experiment crashes up to
    // n − t + 1 = 2 nodes and makes up to t = 2 misbehave.
    let o = run(&[
        "experiment",
        "--images",
        &images,
        "--out",
        &out_s,
        "--figures",
        "fault_tolerance",
        "--nodes",
        "3",
        "--threshold",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&out.join("fault_tolerance.json"));
    assert_eq!(v["figure"]["kind"], "grid");
    let m = &v["data"]["matrix"];
    assert_eq!(m["faulty"], serde_json::json!([0, 1, 2]));
    let cell = |label: &str, k: u64| -> (String, Value) {
        let row = m["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["label"] == label)
            .unwrap_or_else(|| panic!("no row {label}"));
        let c = row["cells"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["faulty"] == k)
            .unwrap_or_else(|| panic!("no cell {label}, {k}"));
        (
            c["outcome"].as_str().unwrap().to_owned(),
            c["latency_wan_ms"].clone(),
        )
    };
    for (label, k, want) in [
        ("DKG: crash", 0, "ok"),
        ("DKG: crash", 1, "ok"),
        ("DKG: crash", 2, "failed"),
        ("DKG: silent", 1, "ok"),
        ("DKG: silent", 2, "failed"),
        ("DKG: equivocate", 1, "ok"),
        ("Stage-1: crash", 0, "ok"),
        // One node down: the secure search needs 2t − 1 = 3, the retrieval t = 2.
        ("Stage-2: crash", 1, "partial"),
        ("Stage-2: crash", 2, "failed"),
    ] {
        let (outcome, latency) = cell(label, k);
        assert_eq!(outcome, want, "{label}, {k} faulty");
        // The latency where the stage did its job (or part of it), none where it failed.
        assert_eq!(
            latency.is_f64(),
            want != "failed",
            "{label}, {k}: {latency}"
        );
    }
    // Grid cells of the figure: one per scenario, the latency inside where it succeeded.
    let cells = v["figure"]["grid"]["cells"].as_array().unwrap();
    assert_eq!(cells.len(), v["data"]["rows"].as_array().unwrap().len());
    assert!(
        cells
            .iter()
            .any(|c| c["status"] == "good" && c["text"][1].as_str().unwrap().ends_with(" ms"))
    );
    // Notes and details in plain words, and few enough notes to be drawn whole.
    let mut texts: Vec<String> = Vec::new();
    for list in [
        &v["figure"]["notes"],
        &v["render_notes"],
        &v["data"]["details"],
    ] {
        texts.extend(
            list.as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_owned()),
        );
    }
    texts.extend(
        v["data"]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["reason"].as_str().map(str::to_owned)),
    );
    assert!(
        texts.iter().any(|t| t.contains("not possible")),
        "{texts:?}"
    );
    for t in &texts {
        assert!(!t.contains("NodeId(") && !t.contains("[]"), "{t}");
    }
    let notes = v["figure"]["notes"].as_array().unwrap().len()
        + v["render_notes"].as_array().unwrap().len();
    assert!(notes <= 5, "{notes} notes: more than the image shows");
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert_eq!(sections(&summary), ["fault_tolerance"]);
    assert!(
        summary.contains("| stage: fault | 0 faulty | 1 faulty | 2 faulty |"),
        "{summary}"
    );
    assert!(summary.contains("| DKG: crash | ok, "), "{summary}");
    let details = v["data"]["details"].as_array().unwrap();
    for d in details {
        assert!(
            summary.contains(d.as_str().unwrap()),
            "{d} not in the summary"
        );
    }
}

#[test]
fn the_dkg_figure_has_messages_bytes_and_cpu_per_n_from_the_smallest_n() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("figures");
    let o = experiment(&out, &["--figures", "dkg_overhead", "--dkg-nodes", "5,3,8"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&out.join("dkg_overhead.json"));
    for r in v["data"]["rows"].as_array().unwrap() {
        for k in ["messages", "bytes", "dealer_messages", "dealer_bytes"] {
            assert!(r[k].as_u64().unwrap() > 0, "{k}: {r}");
        }
        for k in ["cpu_ms", "dealer_cpu_ms"] {
            assert!(r[k].as_f64().unwrap() > 0.0, "{k}: {r}");
        }
    }
    for metric in ["messages", "bytes", "cpu_ms"] {
        assert_eq!(
            v["data"]["exponents"][metric].as_object().unwrap().len(),
            2,
            "{metric}"
        );
    }
    let fig = &v["figure"];
    // Labelled at the data's n only: the axis starts at 3, not at 1.
    assert_eq!(fig["x_ticks"], serde_json::json!([3.0, 5.0, 8.0]));
    let panels = fig["panels"].as_array().unwrap();
    let titles: Vec<&str> = panels
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert!(
        titles[0].starts_with("messages: n^")
            && titles[1].starts_with("bytes on the wire: n^")
            && titles[2].starts_with("CPU, all parties: n^"),
        "{titles:?}"
    );
    for p in panels {
        let series = p["series"].as_array().unwrap();
        assert_eq!(series.len(), 3, "{p}");
        for s in series {
            let xs: Vec<f64> = s["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|pt| pt[0].as_f64().unwrap())
                .collect();
            assert_eq!(xs, [3.0, 5.0, 8.0], "{s}");
        }
    }
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert_eq!(sections(&summary), ["dkg_overhead"]);
    assert!(
        summary.contains("- DKG CPU (measured) grow as n^"),
        "{summary}"
    );
}

#[test]
fn help_readme_and_errors_name_the_same_figure_sets() {
    let sets =
        "stage_communication, dkg_overhead, stage_latency, batching, fault_tolerance, scaling";
    let flat = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let help = flat(&stdout(&run(&["experiment", "--help"])));
    assert!(help.contains(&format!("of {sets}; or none")), "{help}");
    assert!(
        help.contains("--cluster: the cluster_stages figure alone"),
        "{help}"
    );
    let readme = flat(&std::fs::read_to_string(root().join("README.md")).unwrap());
    let readme_sets = sets
        .split(", ")
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ");
    assert!(
        readme.contains(&format!("of {readme_sets}; or `none`")),
        "README"
    );
    let dir = tempfile::tempdir().unwrap();
    let o = experiment(&dir.path().join("x"), &["--figures", "plots"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(&format!("expected one of: {sets}; or none")),
        "{}",
        stderr(&o)
    );
}
