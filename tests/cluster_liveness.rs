//! Liveness over real node processes: a node that dies at any step of the DKG, and a
//! resharing commit interrupted on a node or in the coordinator. Nodes abort at named points
//! through the failpoints of `dealer_free_node::failpoint` (the `testing` feature, which the
//! root crate's dev-dependencies enable for the binary these tests run).

#[path = "support/cluster.rs"]
mod cluster;

use cluster::{Cluster, TestResult, fixture, text};

#[test]
fn the_dkg_finishes_without_a_node_that_dies_at_any_step() -> TestResult {
    for step in 0..=4u32 {
        let c = Cluster::new()?;
        // Node 4 of 4 (t = 2) aborts on receiving DKG step `step`.
        let out = c.cli_with(
            &["cluster", "up", "--nodes", "4", "--threshold", "2"],
            Some(&format!("dkg-step-{step}@4")),
        )?;
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(out.status.success(), "step {step}: {stderr}");
        assert!(
            stderr.contains("node 4: dropped at step"),
            "step {step}: {stderr}"
        );
        assert!(
            stdout.contains("to replace (`cluster replace --node I`): 4"),
            "step {step}: {stdout}"
        );
        let key = c.key()?;
        let shares = key["verification_shares"].as_object().ok_or("no shares")?;
        // Before round 4's confirmation node 4 has no verification share; dying at step 4,
        // after it confirmed, it has one but never got its key share installed.
        assert_eq!(shares.contains_key("4"), step == 4, "step {step}: {key}");
        c.search_and_get(&fixture("sk_coffee.png"))?;
        if step == 2 {
            // The node left out joins later by resharing, with the same group key.
            let out = c.cli(&["cluster", "replace", "--node", "4"])?;
            assert!(out.status.success(), "replace: {}", text(&out.stderr));
            let after = c.key()?;
            assert_eq!(after["group_public_key"], key["group_public_key"]);
            assert!(after["verification_shares"]["4"].is_string(), "{after}");
            c.search_and_get(&fixture("sk_astronaut.png"))?;
        }
    }
    Ok(())
}

#[test]
fn the_dkg_runs_among_the_nodes_that_answer_and_goes_on_without_a_silent_one() -> TestResult {
    let c = Cluster::new()?;
    let out = c.cli(&["cluster", "init", "--nodes", "5", "--threshold", "2"])?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A silent node costs the client its timeout and retries: keep them short.
    let profile = c.dir.join("client.toml");
    let toml = std::fs::read_to_string(&profile)?
        .replace("timeout_ms = 10000", "timeout_ms = 1500")
        .replace("retries = 2", "retries = 0");
    std::fs::write(&profile, toml)?;
    // Node 5 dies as it starts (absent); node 4 takes part but never answers step 2.
    let out = c.cli_with(
        &["cluster", "up", "--wait", "10"],
        Some("start@5,dkg-silent-2@4"),
    )?;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("node 5 did not answer"), "{stderr}");
    assert!(
        stderr.contains("node 4: dropped at step 2: timed out"),
        "{stderr}"
    );
    assert!(
        stdout.contains("DKG done among nodes 1, 2, 3, 4"),
        "{stdout}"
    );
    assert!(
        stdout.contains("to replace (`cluster replace --node I`): 4, 5"),
        "{stdout}"
    );
    let key = c.key()?;
    let shares: Vec<&String> = key["verification_shares"]
        .as_object()
        .ok_or("no shares")?
        .keys()
        .collect();
    assert_eq!(shares, ["1", "2", "3"]);
    c.search_and_get(&fixture("sk_coffee.png"))?;
    // Both join by resharing, one per run: node 5 while node 4 (up, no key) is left out,
    // then node 4; the group key stays and every node serves one key.
    for node in ["5", "4"] {
        let out = c.cli(&["cluster", "replace", "--node", node])?;
        assert!(
            out.status.success(),
            "replace {node}: {}",
            text(&out.stderr)
        );
    }
    one_key_state(&c, &key["group_public_key"])?;
    c.search_and_get(&fixture("sk_astronaut.png"))?;
    Ok(())
}

#[test]
fn a_dkg_that_failed_runs_again() -> TestResult {
    let c = Cluster::new()?;
    // Two of 4 nodes (t = 2) die at step 0: more than t − 1 silent, the DKG fails on every
    // node and names them; no node keeps anything of it.
    let out = c.cli_with(
        &[
            "cluster",
            "up",
            "--nodes",
            "4",
            "--threshold",
            "2",
            "--wait",
            "5",
        ],
        Some("dkg-step-0@3,dkg-step-0@4"),
    )?;
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("node 3") && stderr.contains("node 4"),
        "{stderr}"
    );
    // The nodes that failed come back; the DKG runs again from scratch among all.
    let out = c.cli(&["cluster", "up", "--wait", "20"])?;
    assert!(out.status.success(), "rerun: {}", text(&out.stderr));
    let key = c.key()?;
    assert_eq!(
        key["verification_shares"].as_object().map(|m| m.len()),
        Some(4)
    );
    Ok(())
}

/// Every node's transcript, and whether one holds a resharing prepared.
fn key_states(c: &Cluster) -> Result<Vec<(String, bool)>, Box<dyn std::error::Error>> {
    Ok(c.status()?
        .iter()
        .map(|s| {
            (
                s["transcript"].as_str().unwrap_or("down").to_owned(),
                !s["prepared"].is_null(),
            )
        })
        .collect())
}

/// Every node serves with the key file's key, none holds anything prepared.
fn one_key_state(c: &Cluster, group: &serde_json::Value) -> TestResult {
    let key = c.key()?;
    assert_eq!(&key["group_public_key"], group, "the group key changed");
    let transcript = key["transcript"].as_str().ok_or("no transcript")?;
    for (i, (t, prepared)) in key_states(c)?.iter().enumerate() {
        assert_eq!(t, transcript, "node {}: {:?}", i + 1, key_states(c)?);
        assert!(!prepared, "node {} still prepared", i + 1);
    }
    Ok(())
}

#[test]
fn an_interrupted_resharing_commit_leaves_every_node_on_one_key() -> TestResult {
    let c = Cluster::new()?;
    let out = c.cli(&["cluster", "up", "--nodes", "3", "--threshold", "2"])?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let coffee = fixture("sk_coffee.png");
    c.search_and_get(&coffee)?;
    let group = c.key()?["group_public_key"].clone();
    let old = c.key()?["transcript"].clone();

    // 1. Node 1 dies right after sealing its prepared share: no commit, every node rolls
    //    back (node 1 once it is back, by --resume); the old key stays on nodes 1 and 2.
    c.restart(1, Some("reshare-prepared@1"))?;
    let out = c.cli(&["cluster", "replace", "--node", "3"])?;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no node changed its key"),
        "{}",
        text(&out.stderr)
    );
    c.wait_exit(1);
    c.restart(1, None)?;
    assert!(key_states(&c)?[0].1, "node 1 restarted prepared");
    // Nothing new starts while a resharing is prepared somewhere.
    let out = c.cli(&["cluster", "replace", "--node", "3", "--running"])?;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("hold a prepared resharing"),
        "{}",
        text(&out.stderr)
    );
    let out = c.cli(&["cluster", "replace", "--node", "3", "--resume"])?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("rolled back"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(c.key()?["transcript"], old);
    let states = key_states(&c)?;
    assert_eq!(states[0], states[1]);
    assert!(states.iter().all(|(_, p)| !p));
    // Node 3 has no key (a search needs 2t − 1 = 3 nodes): a new resharing runs at once.
    let out = c.cli(&["cluster", "replace", "--node", "3", "--running"])?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    one_key_state(&c, &group)?;
    c.search_and_get(&coffee)?;

    // 2. Node 2 dies on receiving the commit: nodes 1 and 3 commit, node 2 keeps the share
    //    prepared on disk and serves the old key until --resume commits it.
    let old = c.key()?["transcript"].clone();
    c.restart(2, Some("reshare-commit@2"))?;
    let out = c.cli(&["cluster", "replace", "--node", "3"])?;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("still prepared on"),
        "{}",
        text(&out.stderr)
    );
    c.wait_exit(2);
    c.restart(2, None)?;
    assert!(key_states(&c)?[1].1, "node 2 restarted prepared");
    let out = c.cli(&["cluster", "replace", "--node", "3", "--resume"])?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("committed"),
        "{}",
        text(&out.stdout)
    );
    one_key_state(&c, &group)?;
    assert_ne!(c.key()?["transcript"], old);
    c.search_and_get(&coffee)?;

    // 3. Node 1 dies right after its commit's write, before replying: --resume finds it
    //    committed and finishes.
    c.restart(1, Some("reshare-committed@1"))?;
    let out = c.cli(&["cluster", "replace", "--node", "2"])?;
    assert!(!out.status.success());
    c.wait_exit(1);
    c.restart(1, None)?;
    let out = c.cli(&["cluster", "replace", "--node", "2", "--resume"])?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    one_key_state(&c, &group)?;
    c.search_and_get(&coffee)?;

    // 4. The coordinator dies mid-commit, after node 1 committed: --resume reads its
    //    decision and commits the rest.
    let out = c.cli_with(
        &["cluster", "replace", "--node", "3"],
        Some("coordinator-commit@1"),
    )?;
    assert!(!out.status.success());
    let states = key_states(&c)?;
    assert!(
        states[1].1 && states[2].1,
        "nodes 2 and 3 prepared: {states:?}"
    );
    let out = c.cli(&["cluster", "replace", "--node", "3", "--resume"])?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    one_key_state(&c, &group)?;
    c.search_and_get(&fixture("sk_astronaut.png"))?;
    Ok(())
}

/// A node (dealer and receiver) dies at each step of a replacement's resharing: the
/// replacement fails naming no change of key, the group key stays, and once the node is back
/// the replacement runs and a search and a `get` succeed.
#[test]
fn a_node_dying_at_any_resharing_step_leaves_the_key_as_it_was() -> TestResult {
    let c = Cluster::new()?;
    let out = c.cli(&["cluster", "up", "--nodes", "3", "--threshold", "2"])?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let group = c.key()?["group_public_key"].clone();
    let coffee = fixture("sk_coffee.png");
    for step in 0..=4 {
        let transcript = c.key()?["transcript"].clone();
        c.restart(1, Some(&format!("reshare-step-{step}@1")))?;
        let out = c.cli(&["cluster", "replace", "--node", "3"])?;
        assert!(
            !out.status.success(),
            "step {step}: the replacement went through"
        );
        c.wait_exit(1);
        c.restart(1, None)?;
        assert_eq!(
            c.key()?["transcript"],
            transcript,
            "step {step}: key file changed"
        );
        if key_states(&c)?.iter().any(|(_, prepared)| *prepared) {
            let out = c.cli(&["cluster", "replace", "--node", "3", "--resume"])?;
            assert!(out.status.success(), "step {step}: {}", text(&out.stderr));
        }
        let out = c.cli(&["cluster", "replace", "--node", "3", "--running"])?;
        assert!(out.status.success(), "step {step}: {}", text(&out.stderr));
        one_key_state(&c, &group)?;
        c.search_and_get(&coffee)?;
    }
    Ok(())
}
