//! End-to-end: the `dealer-free-sis phash` binary, run as a user runs it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[path = "support/cli.rs"]
mod cli;
#[path = "support/process.rs"]
mod process;

use cli::{run, stderr, stdout};
use phr_sis::testing::{fixtures_dir, reference_hashes};
use process::run_bounded_with_env;

/// Time allowed to one `phash` run over fixture folders.
const LIMIT: Duration = Duration::from_secs(300);

#[test]
fn phash_of_the_bundled_folder_prints_imagehash_lines_in_sorted_order() {
    let dir = fixtures_dir().join("images");
    let out = run(&["phash", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut expected = reference_hashes("images");
    expected.sort_by(|a, b| a.path.cmp(&b.path));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), expected.len());
    for (line, row) in lines.iter().zip(&expected) {
        let (hex, path) = line.split_once("  ").unwrap();
        assert_eq!(Path::new(path), row.path.as_path());
        assert_eq!(hex, row.phash, "{path}");
    }
}

#[test]
fn phash_keeps_the_order_given_and_every_algorithm_matches() {
    let rows = reference_hashes("images-modes");
    let picked = [&rows[5], &rows[0], &rows[17]];
    for (algo, pick) in [("phash", 0usize), ("dhash", 1), ("ahash", 2)] {
        let mut args = vec!["phash", "--algo", algo];
        let paths: Vec<String> = picked
            .iter()
            .map(|r| r.path.display().to_string())
            .collect();
        args.extend(paths.iter().map(String::as_str));
        let out = run(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        let got: Vec<String> = stdout(&out)
            .lines()
            .map(|l| l.split_once("  ").unwrap().0.to_owned())
            .collect();
        let want: Vec<&String> = picked
            .iter()
            .map(|r| [&r.phash, &r.dhash, &r.ahash][pick])
            .collect();
        assert_eq!(got.iter().collect::<Vec<_>>(), want, "{algo}");
    }
}

#[test]
fn phash_json_prints_one_object_per_image() {
    let row = &reference_hashes("images")[0];
    let out = run(&["phash", "--json", row.path.to_str().unwrap()]);
    assert!(out.status.success());
    let text = stdout(&out);
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(v["hash"], row.phash.as_str());
    assert_eq!(v["algo"], "phash");
    assert_eq!(v["path"], row.path.to_str().unwrap());
}

#[test]
fn phash_reports_bad_files_and_still_hashes_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let not_image = tmp.path().join("notes.png");
    std::fs::write(&not_image, b"this is not a PNG").unwrap();
    let truncated = tmp.path().join("cut.jpg");
    let jpeg = std::fs::read(fixtures_dir().join("images/sk_chelsea.jpg")).unwrap();
    std::fs::write(&truncated, &jpeg[..jpeg.len() / 2]).unwrap();
    let good = reference_hashes("images")[3].clone();
    let missing = tmp.path().join("missing.png");
    let out = run(&[
        "phash",
        not_image.to_str().unwrap(),
        good.path.to_str().unwrap(),
        truncated.to_str().unwrap(),
        missing.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        format!("{}  {}\n", good.phash, good.path.display())
    );
    let err = stderr(&out);
    assert!(
        err.contains("notes.png") && err.contains("not a supported image"),
        "{err}"
    );
    assert!(
        err.contains("cut.jpg") && err.contains("truncated"),
        "{err}"
    );
    assert!(
        err.contains("missing.png") && err.contains("No such file"),
        "{err}"
    );
}

#[test]
fn phash_bad_usage_exits_2() {
    assert_eq!(run(&["phash"]).status.code(), Some(2));
    assert_eq!(
        run(&["phash", "--algo", "sha1", "x.png"]).status.code(),
        Some(2)
    );
    assert_eq!(run(&["no-such-command"]).status.code(), Some(2));
}

#[test]
fn phash_with_portable_kernels_matches_imagehash_on_every_fixture() {
    let sets = ["images", "images-modes", "synthetic"];
    let dirs: Vec<String> = sets
        .iter()
        .map(|set| fixtures_dir().join(set).display().to_string())
        .collect();
    let rows: Vec<_> = sets.iter().flat_map(|set| reference_hashes(set)).collect();
    for algo in ["phash", "dhash", "ahash"] {
        let mut args = vec!["phash", "--algo", algo];
        args.extend(dirs.iter().map(String::as_str));
        let out = run_bounded_with_env(
            env!("CARGO_BIN_EXE_dealer-free-sis"),
            &args,
            &[("DEALER_FREE_SIS_KERNELS", "portable")],
            LIMIT,
        )
        .unwrap();
        assert!(out.status.success(), "{algo}: {}", stderr(&out));
        let got: HashMap<PathBuf, String> = stdout(&out)
            .lines()
            .map(|line| {
                let (hex, path) = line.split_once("  ").unwrap();
                (PathBuf::from(path), hex.to_owned())
            })
            .collect();
        assert_eq!(got.len(), rows.len(), "{algo}: one line per fixture image");
        let mismatches: Vec<String> = rows
            .iter()
            .filter_map(|row| {
                let want = match algo {
                    "phash" => &row.phash,
                    "dhash" => &row.dhash,
                    _ => &row.ahash,
                };
                let have = got.get(&row.path).map_or("<missing>", String::as_str);
                (have != want)
                    .then(|| format!("{}: {have} vs imagehash {want}", row.path.display()))
            })
            .collect();
        assert!(
            mismatches.is_empty(),
            "{algo} with portable kernels differs from imagehash:\n{}",
            mismatches.join("\n")
        );
    }
}

#[test]
fn an_unknown_kernel_set_is_bad_usage() {
    let image = reference_hashes("images")[0].path.display().to_string();
    for bad in ["avx9000", "Portable", "scalar"] {
        let out = run_bounded_with_env(
            env!("CARGO_BIN_EXE_dealer-free-sis"),
            &["phash", &image],
            &[("DEALER_FREE_SIS_KERNELS", bad)],
            LIMIT,
        )
        .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
        assert!(stdout(&out).is_empty(), "{bad}: nothing is hashed");
        let err = stderr(&out);
        assert!(
            err.contains(&format!("DEALER_FREE_SIS_KERNELS=\"{bad}\""))
                && err.contains("`auto`")
                && err.contains("`portable`"),
            "{err}"
        );
    }
    for good in ["auto", "portable", ""] {
        let out = run_bounded_with_env(
            env!("CARGO_BIN_EXE_dealer-free-sis"),
            &["phash", &image],
            &[("DEALER_FREE_SIS_KERNELS", good)],
            LIMIT,
        )
        .unwrap();
        assert!(out.status.success(), "{good:?}: {}", stderr(&out));
    }
}

#[test]
fn phash_of_a_folder_without_images_says_so_and_exits_1() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("notes.txt"), b"no image here").unwrap();
    let dir = tmp.path().to_str().unwrap();
    let out = run(&["phash", dir]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    assert_eq!(
        stderr(&out),
        format!("dealer-free-sis: no images found in {dir}\n")
    );
    // ingest words it the same way, before it looks for a cluster.
    let out = run(&["ingest", "--cluster", dir, dir]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!("dealer-free-sis: no images found in {dir}\n")
    );
    // With --json the failure is a JSON object on stderr.
    let out = run(&["phash", "--json", dir]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(stderr(&out).trim()).unwrap();
    assert_eq!(v["path"], dir);
    assert_eq!(v["error"], format!("no images found in {dir}"));
}

#[test]
fn phash_json_reports_each_failure_as_a_json_object_on_stderr() {
    let tmp = tempfile::tempdir().unwrap();
    let not_image = tmp.path().join("notes.png");
    std::fs::write(&not_image, b"this is not a PNG").unwrap();
    let missing = tmp.path().join("missing.png");
    let good = reference_hashes("images")[3].clone();
    let out = run(&[
        "phash",
        "--json",
        not_image.to_str().unwrap(),
        good.path.to_str().unwrap(),
        missing.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let hashed: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(hashed.len(), 1);
    assert_eq!(hashed[0]["hash"], good.phash.as_str());
    let errors: Vec<serde_json::Value> = stderr(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(errors.len(), 2, "{}", stderr(&out));
    assert_eq!(errors[0]["path"], not_image.to_str().unwrap());
    assert!(
        errors[0]["error"]
            .as_str()
            .unwrap()
            .contains("not a supported image"),
        "{}",
        errors[0]
    );
    assert_eq!(errors[1]["path"], missing.to_str().unwrap());
    assert!(
        errors[1]["error"]
            .as_str()
            .unwrap()
            .contains("No such file"),
        "{}",
        errors[1]
    );
}
