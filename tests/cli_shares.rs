//! End-to-end: `dealer-free-sis split` and `combine`, run as a user runs them.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::path::Path;

#[path = "support/cli.rs"]
mod cli;

use cli::{run, stderr};
use phr_sis::testing::fixtures_dir;

fn split(dir: &Path, scheme: &str) -> Vec<String> {
    let image = fixtures_dir().join("images/sk_coins.png");
    let out = run(&[
        "split",
        "--threshold",
        "3",
        "--nodes",
        "5",
        "--scheme",
        scheme,
        "--out",
        dir.to_str().unwrap(),
        image.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    (1..=5)
        .map(|i| {
            dir.join(format!("sk_coins.png.{i}.share"))
                .display()
                .to_string()
        })
        .collect()
}

#[test]
fn split_then_combine_any_three_gives_the_same_bytes() {
    let original = std::fs::read(fixtures_dir().join("images/sk_coins.png")).unwrap();
    for scheme in ["shamir", "compact"] {
        let tmp = tempfile::tempdir().unwrap();
        let shares = split(tmp.path(), scheme);
        for s in &shares {
            assert!(Path::new(s).is_file(), "{s}");
        }
        for pick in [[0, 1, 2], [1, 3, 4], [4, 0, 2]] {
            let out_file = tmp.path().join("back.png");
            let mut args = vec!["combine", "--out", out_file.to_str().unwrap()];
            args.extend(pick.iter().map(|&i| shares[i].as_str()));
            let out = run(&args);
            assert!(out.status.success(), "{scheme} {pick:?}: {}", stderr(&out));
            assert_eq!(
                std::fs::read(&out_file).unwrap(),
                original,
                "{scheme} {pick:?}"
            );
        }
    }
}

#[test]
fn combine_names_a_tampered_share_and_routes_around_it() {
    let tmp = tempfile::tempdir().unwrap();
    let shares = split(tmp.path(), "shamir");
    let mut bytes = std::fs::read(&shares[1]).unwrap();
    bytes[500] ^= 1;
    std::fs::write(&shares[1], &bytes).unwrap();
    let out_file = tmp.path().join("back.png");
    let out = run(&[
        "combine",
        "--out",
        out_file.to_str().unwrap(),
        &shares[0],
        &shares[1],
        &shares[2],
        &shares[3],
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("sk_coins.png.2.share") && err.contains("node 2"),
        "{err}"
    );
    let original = std::fs::read(fixtures_dir().join("images/sk_coins.png")).unwrap();
    assert_eq!(std::fs::read(&out_file).unwrap(), original);
}

#[test]
fn combine_with_too_few_good_shares_writes_nothing_and_exits_1() {
    let tmp = tempfile::tempdir().unwrap();
    let shares = split(tmp.path(), "compact");
    // Node 3's file is truncated, node 1's corrupted: one good share of three needed.
    let b = std::fs::read(&shares[2]).unwrap();
    std::fs::write(&shares[2], &b[..b.len() / 2]).unwrap();
    let mut a = std::fs::read(&shares[0]).unwrap();
    a[60] ^= 0xff;
    std::fs::write(&shares[0], &a).unwrap();
    let out_file = tmp.path().join("back.png");
    let out = run(&[
        "combine",
        "--out",
        out_file.to_str().unwrap(),
        &shares[0],
        &shares[2],
        &shares[4],
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!out_file.exists(), "nothing may be written");
    let err = stderr(&out);
    assert!(
        err.contains("sk_coins.png.3.share") && err.contains("truncated"),
        "{err}"
    );
    assert!(
        err.contains("sk_coins.png.1.share") && err.contains("node 1"),
        "{err}"
    );
    assert!(err.contains("only 1 valid share, 3 needed"), "{err}");
}

#[test]
fn split_with_bad_parameters_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let image = fixtures_dir().join("images/sk_coins.png");
    let dir = tmp.path().to_str().unwrap();
    let img = image.to_str().unwrap();
    for args in [
        vec!["split", "-t", "4", "-n", "3", "--out", dir, img],
        vec!["split", "-t", "0", "-n", "3", "--out", dir, img],
        vec!["split", "-t", "1", "-n", "3", "--out", dir, img],
        vec!["split", "-t", "2", "-n", "300", "--out", dir, img],
        vec![
            "split", "-t", "2", "-n", "3", "--scheme", "xor", "--out", dir, img,
        ],
        vec!["combine", "--out", dir],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn a_smaller_split_into_the_same_folder_removes_the_stale_shares() {
    let tmp = tempfile::tempdir().unwrap();
    let image = fixtures_dir().join("images/sk_coins.png");
    let img = image.to_str().unwrap();
    let dir = tmp.path().join("shares");
    let d = dir.to_str().unwrap();
    let out = run(&["split", "-t", "3", "-n", "5", "-o", d, img]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Another file's shares and a file merely named like a share are left alone.
    std::fs::write(dir.join("sk_coins.png.6.share"), b"not a share").unwrap();
    std::fs::write(dir.join("other.png.4.share"), b"x").unwrap();
    let out = run(&["split", "-t", "2", "-n", "3", "--out", d, img]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    for i in [4, 5] {
        let stale = dir.join(format!("sk_coins.png.{i}.share"));
        assert!(!stale.exists(), "{} is left", stale.display());
        assert!(
            err.contains(&format!("removed {}", stale.display())),
            "{err}"
        );
    }
    assert!(err.contains("sk_coins.png.6.share: not a share"), "{err}");
    assert!(dir.join("sk_coins.png.6.share").exists());
    assert!(dir.join("other.png.4.share").exists());
    // The three left are the new set: any two give the image back.
    let back = tmp.path().join("back.png");
    let out = run(&[
        "combine",
        "-o",
        back.to_str().unwrap(),
        dir.join("sk_coins.png.1.share").to_str().unwrap(),
        dir.join("sk_coins.png.3.share").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(&back).unwrap(),
        std::fs::read(&image).unwrap()
    );
}
