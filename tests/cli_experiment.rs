//! End-to-end: `dealer-free-sis experiment --mpc-*`: both rankings side by side, the
//! comparison JSON, determinism under a seed, and bad flags exiting 2 with nothing written;
//! the figure-set, stage, network, batching and scaling flags, `--config` files (every
//! experiments/*.toml among them) and their precedence, and the output folder's checks.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

#[path = "support/cli.rs"]
mod cli;

use std::path::{Path, PathBuf};

use cli::{run, run_in, stderr, stdout};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images")
}

fn query(name: &str) -> String {
    fixtures().join(name).display().to_string()
}

/// Runs `experiment ARGS --images FIXTURES --out OUT`, with small sweeps (DKG sizes, batch
/// sizes, scale runs) where ARGS gives none.
fn experiment(out: &Path, args: &[&str]) -> std::process::Output {
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
        &["rows", "bytes_exponent"],
        &[(
            "rows",
            &[
                "n",
                "t",
                "messages",
                "bytes",
                "agree",
                "cpu_ms",
                "dealer_bytes",
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
        &["rows"],
        &[(
            "rows",
            &[
                "scenario",
                "stage",
                "fault",
                "faulty",
                "dkg_key",
                "disqualified",
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
            vec!["empty_list.toml: figures: name at least one figure set"],
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
    for out in [blocker.join("figures"), blocker.clone()] {
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
        }
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
            // The drawn series of the latency figures are times (under `values`/`points`);
            // the byte figures are compared whole.
            if !["stage_communication.json", "dkg_overhead.json"].contains(&name.as_str()) {
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
