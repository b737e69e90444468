//! A node under a failed key save, a crash between two writes and a full disk, over real
//! node processes. Nodes misbehave through the failpoints of `dealer_free_node::failpoint`
//! (the `testing` feature, which the root crate's dev-dependencies enable for the binary
//! these tests run): `secrets-save-fails` (the save of the secrets file fails as on a full
//! disk), `secrets-saved` and `store-committed` (the node aborts right after that write,
//! before the next), `disk-full-marker` (the share store's writes fail while a marker file
//! exists in the data folder).
//!
//! A killed process cannot show a missing fsync (the page cache outlives it); these tests
//! show what a crash between two writes leaves, and that the node comes back whole.

#[path = "support/cluster.rs"]
mod cluster;

use cluster::{Cluster, TestResult, fixture, text};

fn up(c: &Cluster, nodes: &str, t: &str, failpoints: Option<&str>) -> TestResult<String> {
    let out = c.cli_with(
        &[
            "cluster",
            "up",
            "--nodes",
            nodes,
            "--threshold",
            t,
            "--wait",
            "20",
        ],
        failpoints,
    )?;
    assert!(out.status.success(), "cluster up: {}", text(&out.stderr));
    Ok(format!("{}{}", text(&out.stdout), text(&out.stderr)))
}

#[test]
fn a_key_share_whose_save_failed_is_never_served() -> TestResult {
    let c = Cluster::new()?;
    // Node 3's save of its new key share fails (a full disk) at the DKG's commit.
    let said = up(&c, "3", "2", Some("secrets-save-fails@3"))?;
    assert!(said.contains("no space left on device"), "{said}");
    // It serves no key it does not hold on disk: its health says so before any restart...
    let status = c.node_status(3)?;
    assert_eq!(status["has_key"], false, "{status}");
    // ...and after one, it is the same.
    c.restart(3, None)?;
    assert_eq!(c.node_status(3)?["has_key"], false);
    // It joins by resharing, and the cluster serves.
    c.ok(&["cluster", "replace", "--node", "3"])?;
    assert_eq!(c.node_status(3)?["has_key"], true);
    let image = fixture("sk_coffee.png");
    let (ids, _) = c.ingest(std::slice::from_ref(&image))?;
    c.get_same(ids.first().ok_or("nothing ingested")?, &image)?;
    Ok(())
}

#[test]
fn a_crash_between_the_key_save_and_its_use_keeps_the_saved_key() -> TestResult {
    let c = Cluster::new()?;
    // Node 3 dies right after its key share is on disk, before it serves it.
    up(&c, "3", "2", Some("secrets-saved@3"))?;
    c.wait_exit(3);
    c.restart(3, None)?;
    // It comes back with the key the others serve.
    let states: Vec<serde_json::Value> = c.status()?;
    let transcripts: Vec<&serde_json::Value> = states.iter().map(|s| &s["transcript"]).collect();
    assert!(
        transcripts
            .iter()
            .all(|t| *t == transcripts[0] && t.as_str().is_some_and(|t| !t.is_empty())),
        "{states:?}"
    );
    Ok(())
}

#[test]
fn a_record_stored_before_a_crash_is_logged_when_the_node_comes_back() -> TestResult {
    let c = Cluster::new()?;
    up(&c, "3", "2", None)?;
    // Node 2 dies between its store's commit and the audit line of it.
    c.restart(2, Some("store-committed@2"))?;
    let image = fixture("sk_coffee.png");
    let (_, out) = c.ingest(std::slice::from_ref(&image))?;
    c.wait_exit(2);
    let stdout = text(&out.stdout);
    let id = stdout
        .lines()
        .chain(text(&out.stderr).lines())
        .find_map(|l| {
            l.split_whitespace()
                .find(|w| w.len() == 16 && w.chars().all(|ch| ch.is_ascii_hexdigit()))
        })
        .ok_or_else(|| format!("no id in {stdout} {}", text(&out.stderr)))?
        .to_owned();
    c.restart(2, None)?;
    let log = std::fs::read_to_string(c.data_dir(2).join("audit.log"))?;
    let recovered = log
        .lines()
        .find(|l| l.contains("store-recovered"))
        .ok_or_else(|| format!("no recovered line:\n{log}"))?;
    assert!(recovered.contains(&id), "{recovered}");
    // The log verified (the node started on it), the node serves, and the image is whole.
    assert_eq!(c.node_status(2)?["healthy"], true);
    c.get_same(&id, &image)?;
    Ok(())
}

#[test]
fn an_audit_log_in_many_files_starts_from_its_open_file_and_verifies_whole() -> TestResult {
    let c = Cluster::new()?;
    up(&c, "3", "2", None)?;
    // Node 1 closes its audit file every 4 KiB.
    c.set_limit(1, "audit_segment_bytes", 4096)?;
    c.restart(1, None)?;
    let images = images();
    let mut stored = Vec::new();
    for image in &images {
        let (ids, _) = c.ingest(std::slice::from_ref(image))?;
        let id = ids.first().ok_or("nothing ingested")?.clone();
        for _ in 0..4 {
            c.get_same(&id, image)?;
        }
        stored.push((id, image));
    }
    c.restart(1, None)?;
    let status = c.node_status(1)?;
    assert_eq!(status["healthy"], true, "{status}");
    let open = c.data_dir(1).join("audit.log");
    assert!(std::fs::metadata(&open)?.len() < 2 * 4096);
    // Every file verifies, and the chain reaches the head the node reports.
    let config = c.node_dir(1).join("node.toml").display().to_string();
    let out = c.run(&["node", "verify-audit", "--config", &config])?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    let files: Vec<&str> = said.lines().filter(|l| l.contains("audit.log")).collect();
    assert!(files.len() >= 2, "{said}");
    let entries = status["audit_entries"].as_u64().ok_or("no audit_entries")?;
    assert!(
        said.contains(&format!("entries 0 to {entries},")),
        "{said} (the node reports {entries})"
    );
    for (id, image) in &stored {
        c.get_same(id, image)?;
    }
    // No crash, so no record is logged as recovered: every store's ids were settled.
    for file in &files {
        let text = std::fs::read_to_string(file)?;
        assert!(!text.contains("store-recovered"), "{file}: {text}");
    }
    // One closed file edited in place (the same size): the start does not read it, the
    // full check finds it.
    let oldest = files.first().ok_or("no file")?;
    let text_of = std::fs::read_to_string(oldest)?;
    assert!(text_of.contains("start node=1"), "{text_of}");
    std::fs::write(oldest, text_of.replacen("start node=1", "start node=9", 1))?;
    let out = c.run(&["node", "verify-audit", "--config", &config])?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("does not verify"),
        "{}",
        text(&out.stderr)
    );
    Ok(())
}

/// The images ingested in the full-disk tests, in batches.
fn images() -> Vec<std::path::PathBuf> {
    [
        "sk_coffee.png",
        "sk_astronaut.png",
        "kpa_spiff.jpg",
        "plasma_grey.jpg",
        "kpa_skagen.jpg",
        "mate_silk_rgba.png",
    ]
    .into_iter()
    .map(fixture)
    .collect()
}

#[test]
fn a_full_disk_is_an_error_and_the_node_serves_again_when_space_returns() -> TestResult {
    let c = Cluster::new()?;
    up(&c, "3", "2", None)?;
    c.restart(3, Some("disk-full-marker@3"))?;
    let images = images();
    let (first, _) = c.ingest(&images[..2])?;
    assert_eq!(first.len(), 2);
    // Node 3's disk fills.
    let marker = c.data_dir(3).join(dealer_free_node::state::FULL_MARKER);
    std::fs::write(&marker, b"")?;
    let (_, out) = c.ingest(&images[2..4])?;
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("node 3"),
        "the full node is named: {stderr}"
    );
    let status = c.node_status(3)?;
    assert_eq!(status["up"], true, "{status}");
    assert_eq!(status["healthy"], false, "{status}");
    assert!(
        status["problem"]
            .as_str()
            .is_some_and(|p| p.contains("share store")),
        "{status}"
    );
    // The others serve, and so does the full node's store for reading once reopened.
    for (id, image) in first.iter().zip(&images) {
        c.get_same(id, image)?;
    }
    // Space returns: the node serves new records again, without a restart.
    std::fs::remove_file(&marker)?;
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (later, out) = c.ingest(&images[4..])?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(c.node_status(3)?["healthy"], true);
    for (id, image) in first
        .iter()
        .chain(&later)
        .zip(images[..2].iter().chain(&images[4..]))
    {
        c.get_same(id, image)?;
    }
    // Its audit log verifies (a node does not start on a broken one).
    c.restart(3, None)?;
    assert_eq!(c.node_status(3)?["healthy"], true);
    Ok(())
}

#[test]
fn a_write_that_would_pass_the_free_space_reserve_is_refused() -> TestResult {
    let c = Cluster::new()?;
    up(&c, "3", "2", None)?;
    // A reserve larger than any disk: node 3 is "full" from the start.
    c.set_limit(3, "min_free_bytes", 1 << 60)?;
    c.restart(3, None)?;
    let status = c.node_status(3)?;
    assert_eq!(status["healthy"], false, "{status}");
    assert!(
        status["problem"]
            .as_str()
            .is_some_and(|p| p.contains("min_free_bytes")),
        "{status}"
    );
    let (_, out) = c.ingest(&images()[..1])?;
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("node 3") && stderr.contains("min_free_bytes"),
        "{stderr}"
    );
    Ok(())
}

/// A tmpfs mounted over a folder for one test, unmounted when it ends.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (mount(8)'s units) over `dir`, keeping what `dir` held.
    fn over(dir: &std::path::Path, size: &str) -> TestResult<Tmpfs> {
        let saved = dir.with_extension("saved");
        std::fs::rename(dir, &saved)?;
        std::fs::create_dir(dir)?;
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status()?;
        if !status.success() {
            return Err(format!("mount {}: {status}", dir.display()).into());
        }
        let mounted = Tmpfs(dir.to_owned());
        for entry in std::fs::read_dir(&saved)? {
            let entry = entry?;
            std::fs::copy(entry.path(), dir.join(entry.file_name()))?;
        }
        Ok(mounted)
    }

    /// Gives the filesystem `size` (space returns).
    fn resize(&self, size: &str) -> TestResult {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()?;
        if !status.success() {
            return Err(format!("remount {}: {status}", self.0.display()).into());
        }
        Ok(())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Whether this process may mount a filesystem (it runs as root, as CI does), and why not.
fn can_mount() -> Result<(), String> {
    let probe = tempfile::tempdir().map_err(|e| e.to_string())?;
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(probe.path())
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("mount(8): {e}"))?;
    if !status.success() {
        return Err("mounting a tmpfs needs root (or CAP_SYS_ADMIN), as CI has".into());
    }
    let _ = std::process::Command::new("umount")
        .arg(probe.path())
        .status();
    Ok(())
}

#[test]
fn a_node_whose_filesystem_fills_during_an_ingest_serves_again_when_space_returns() -> TestResult {
    if let Err(why) = can_mount() {
        eprintln!("skipped: {why}");
        return Ok(());
    }
    let c = Cluster::new()?;
    c.ok(&["cluster", "init", "--nodes", "3", "--threshold", "2"])?;
    // Node 3's data on 6 MiB (the empty store takes about 2.6), no reserve: its own writes
    // meet the full filesystem.
    let disk = Tmpfs::over(&c.data_dir(3), "6m")?;
    c.set_limit(3, "min_free_bytes", 0)?;
    up(&c, "3", "2", None)?;
    let all: Vec<std::path::PathBuf> = std::fs::read_dir(fixture(""))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "png" || x == "jpg"))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut acknowledged = Vec::new();
    let mut refused = None;
    for batch in all.chunks(3) {
        let (ids, out) = c.ingest(batch)?;
        if out.status.success() {
            acknowledged.extend(ids.into_iter().zip(batch.iter().cloned()));
        } else {
            refused = Some(text(&out.stderr));
            break;
        }
    }
    let stderr = refused.ok_or("the filesystem never filled")?;
    assert!(
        acknowledged.len() >= 3,
        "filled only after {acknowledged:?}"
    );
    assert!(
        stderr.contains("node 3"),
        "the full node is named: {stderr}"
    );
    let status = c.node_status(3)?;
    assert_eq!(status["healthy"], false, "{status}");
    // Everything acknowledged comes back, byte for byte.
    for (id, image) in &acknowledged {
        c.get_same(id, image)?;
    }
    // Space returns: the node takes new records again, and nothing acknowledged is lost.
    disk.resize("64m")?;
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let image = fixture("sk_coffee.png");
    let (ids, out) = c.ingest(std::slice::from_ref(&image))?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(c.node_status(3)?["healthy"], true);
    acknowledged.extend(ids.into_iter().map(|id| (id, image.clone())));
    c.restart(3, None)?;
    assert_eq!(c.node_status(3)?["healthy"], true, "its audit log verifies");
    for (id, image) in &acknowledged {
        c.get_same(id, image)?;
    }
    drop(c);
    drop(disk);
    Ok(())
}
