//! Folders that hold private keys (a cluster's, a node's) are never taken by git, wherever
//! they are created: each gets a `.gitignore` of `*`.

#[path = "support/cluster.rs"]
mod cluster;

use std::process::Command;

use cluster::{Cluster, TestResult, text};

#[test]
fn a_cluster_or_node_folder_inside_a_repository_is_ignored_by_git() -> TestResult {
    let c = Cluster::new()?;
    let repo = c.dir.parent().ok_or("no parent")?.to_path_buf();
    c.ok(&["cluster", "init", "--nodes", "3", "--threshold", "2"])?;
    let node = repo.join("node-2");
    let out = c.run(&[
        "node",
        "init",
        "--dir",
        &node.display().to_string(),
        "--id",
        "2",
    ])?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    for dir in [&c.dir, &node] {
        assert_eq!(
            std::fs::read_to_string(dir.join(".gitignore"))?,
            dealer_free_node::files::IGNORE_ALL
        );
    }
    // Where git is installed, it sees none of their files.
    let git = |args: &[&str]| Command::new("git").arg("-C").arg(&repo).args(args).output();
    match git(&["init", "-q"]) {
        Ok(o) if o.status.success() => {
            std::fs::write(repo.join("README"), b"a repository")?;
            let status = git(&["status", "--porcelain", "--untracked-files=all"])?;
            let listed = text(&status.stdout);
            assert!(status.status.success(), "{}", text(&status.stderr));
            assert!(listed.contains("README"), "{listed}");
            assert!(
                !listed.contains("cluster/") && !listed.contains("node-2/"),
                "git would take: {listed}"
            );
        }
        _ => eprintln!("git is not installed: only the .gitignore files were checked"),
    }
    Ok(())
}
