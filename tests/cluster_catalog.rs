//! The owner's catalog over real node processes: `cluster status` saying what still works,
//! `ingest` returning the stored id for content it already holds (decided from the catalog
//! alone) with absolute paths in the catalog, `list`, `delete` with tombstones (a node that
//! was down gets the delete when it is back; a replacement keeps deleted images deleted),
//! and `cluster scrub` naming a record flipped on disk, which `cluster repair` rebuilds, and
//! bit shares stored wrong under a valid integrity tag, which only the masked check across
//! the nodes can see.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/flip.rs"]
mod flip;

use std::process::{Command, Stdio};
use std::time::Duration;

use cluster::{Cluster, TestResult, fixture, meta, text};
use dealer_free::mpc::HashBitShares;
use dealer_free::record::StoredRecord;
use dealer_free_node::client::ClusterClient;
use dealer_free_node::proto;
use phr_sis::NodeId;
use phr_sis::fp61::Fp61;

/// A runtime and a raw client of node `node` with the cluster's admin identity.
type AdminNode = (
    tokio::runtime::Runtime,
    proto::node_client::NodeClient<tonic::transport::Channel>,
);

fn admin_node(c: &Cluster, node: u8) -> TestResult<AdminNode> {
    let rt = tokio::runtime::Runtime::new()?;
    let n = {
        let _entered = rt.enter();
        ClusterClient::open(&c.dir.join("client.toml"))?
            .node_client(NodeId::new(node)?)
            .ok_or("no such node")?
    };
    Ok((rt, n))
}

/// Node `node`'s record of image `id`, exported by the cluster's admin client.
fn exported(c: &Cluster, node: u8, id: &str) -> TestResult<(StoredRecord, Vec<String>)> {
    let (rt, mut n) = admin_node(c, node)?;
    let reply = rt
        .block_on(n.export_records(proto::ExportRecordsRequest {
            meta: meta(),
            ids: vec![u64::from_str_radix(id, 16)?],
            after: None,
            limit: 0,
        }))?
        .into_inner();
    let record = reply.records.first().ok_or("not exported")?;
    Ok((StoredRecord::from_bytes(record)?, reply.owners))
}

/// Stores on node `node`, in place of its record of image `id`, the same record with one
/// bit share shifted by one: what a dishonest ingest (or a fault of the node's own) leaves,
/// under a valid integrity tag, since the node tags what it is sent.
fn store_wrong_bit_share(c: &Cluster, node: u8, id: &str) -> TestResult<StoredRecord> {
    let (original, owners) = exported(c, node, id)?;
    let mut shares = *original.bit_shares.shares();
    shares[17] += Fp61::ONE;
    let mut record = original.clone();
    record.bit_shares = HashBitShares::from_shares(shares);
    let (rt, mut n) = admin_node(c, node)?;
    let raw = u64::from_str_radix(id, 16)?;
    let removed = rt
        .block_on(n.remove_damaged(proto::RemoveDamagedRequest {
            meta: meta(),
            ids: vec![raw],
            off_codeword: true,
        }))?
        .into_inner()
        .removed;
    assert_eq!(removed, vec![raw]);
    let stored = rt
        .block_on(n.store_records(proto::StoreRecordsRequest {
            meta: meta(),
            records: vec![record.to_bytes()?.to_vec()],
            owners,
        }))?
        .into_inner();
    assert_eq!(stored.stored, vec![raw], "{stored:?}");
    // The node's own check (the whole scrub before the masked check) finds nothing wrong.
    let page = rt
        .block_on(n.scrub_records(proto::ScrubRecordsRequest {
            meta: meta(),
            after: None,
            limit: 64,
        }))?
        .into_inner();
    assert!(page.damaged.is_empty(), "{:?}", page.damaged);
    Ok(original)
}

/// `cluster status --json`'s capability `what`: (works, survives).
fn capability(c: &Cluster, what: &str) -> TestResult<(bool, u64)> {
    let out = c.cli(&["cluster", "status", "--json"])?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let cap = &v["capabilities"][what];
    Ok((
        cap["works"].as_bool().ok_or("no works")?,
        cap["survives"].as_u64().ok_or("no survives")?,
    ))
}

/// `list --json`: each id with the nodes that hold it.
fn listed(c: &Cluster) -> TestResult<Vec<(String, Option<String>, usize)>> {
    let out = c.cli(&["list", "--json"])?;
    let mut rows = Vec::new();
    for line in text(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        rows.push((
            v["id"].as_str().ok_or("no id")?.to_owned(),
            v["path"].as_str().map(str::to_owned),
            v["nodes"].as_array().map_or(0, Vec::len),
        ));
    }
    Ok(rows)
}

#[test]
fn list_delete_dedupe_scrub_and_repair_over_real_nodes() -> TestResult {
    let c = Cluster::new()?;
    c.ok(&["cluster", "up", "--nodes", "5", "--threshold", "3"])?;
    assert_eq!(capability(&c, "search")?, (true, 0));
    assert_eq!(capability(&c, "get")?, (true, 2));
    let status = text(&c.ok(&["cluster", "status"])?.stdout);
    assert!(status.contains("what works now:"), "{status}");

    // Ingest from a relative path: the catalog keeps it absolute.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("timeout")
        .args([
            "-s",
            "KILL",
            "90",
            env!("CARGO_BIN_EXE_dealer-free-sis"),
            "ingest",
        ])
        .arg("--cluster")
        .arg(&c.dir)
        .args(["tests/fixtures/images/sk_coffee.png"])
        .current_dir(root)
        .stdin(Stdio::null())
        .output()?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let coffee = text(&out.stdout)
        .split_whitespace()
        .next()
        .ok_or("no id")?
        .to_owned();
    let (ids, out) = c.ingest(&[fixture("kpa_skagen.jpg"), fixture("kpa_skagen_2.png")])?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (skagen, skagen_2) = (ids[0].clone(), ids[1].clone());
    let catalog: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.dir.join("catalog.json"))?)?;
    let path = catalog["images"][&coffee]["path"]
        .as_str()
        .ok_or("no path")?;
    assert!(std::path::Path::new(path).is_absolute(), "{path}");

    // The same bytes again: the stored id, nothing stored; --allow-duplicates stores a copy.
    let (again, out) = c.ingest(&[fixture("sk_coffee.png")])?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(again, vec![coffee.clone()]);
    assert!(
        text(&out.stderr).contains("already stored"),
        "{}",
        text(&out.stderr)
    );
    let (copy, _) = {
        let out = c.ok(&[
            "ingest",
            "--allow-duplicates",
            &fixture("sk_coffee.png").display().to_string(),
        ])?;
        (
            text(&out.stdout)
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned(),
            out,
        )
    };
    assert_ne!(copy, coffee);
    let rows = listed(&c)?;
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(
        rows.iter().all(|(_, p, n)| p.is_some() && *n == 5),
        "{rows:?}"
    );

    // A delete with node 4 down: exit 1, the delete kept for node 4, the image gone.
    assert!(c.folder().stop_node(4, Duration::from_secs(10)));
    assert_eq!(capability(&c, "search")?, (false, 0));
    let out = c.cli(&["delete", &copy])?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("deleted {copy}")));
    assert!(
        text(&out.stderr).contains("node 4"),
        "{}",
        text(&out.stderr)
    );
    let target = c.dir.join("deleted.png");
    let got = c.cli(&["get", &copy, "-o", &target.display().to_string()])?;
    assert!(!got.status.success(), "a deleted image came back");
    // Node 4 back: the next list sends it the delete.
    c.ok(&["cluster", "up", "--wait", "20"])?;
    let rows = listed(&c)?;
    assert!(rows.iter().all(|(id, _, _)| *id != copy), "{rows:?}");
    let catalog: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.dir.join("catalog.json"))?)?;
    assert!(catalog.get("pending_deletes").is_none(), "{catalog}");
    assert_eq!(rows.len(), 3);

    // A replaced node gets the others' records, not the deleted image's.
    c.ok(&["delete", &skagen_2])?;
    c.ok(&["cluster", "replace", "--node", "5"])?;
    let rows = listed(&c)?;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|(_, _, n)| *n == 5), "{rows:?}");

    // A share flipped on disk: scrub names exactly that (node, id); repair rebuilds it.
    assert!(c.folder().stop_node(1, Duration::from_secs(10)));
    flip::flip_stored_share(&c.node_dir(1), 1, skagen.parse()?)?;
    c.ok(&["cluster", "up", "--wait", "20"])?;
    let out = c.cli(&["cluster", "scrub"])?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let damaged: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(damaged.len(), 1, "{damaged:?}");
    assert!(
        damaged[0].starts_with(&format!("damaged  node 1  {skagen}")),
        "{damaged:?}"
    );
    let out = c.ok(&["cluster", "repair"])?;
    assert!(
        text(&out.stdout).contains(&format!("repaired  node 1  {skagen}")),
        "{}",
        text(&out.stdout)
    );
    c.ok(&["cluster", "scrub"])?;

    // A bit share stored wrong under a valid tag: the masked check names exactly (node 2,
    // coffee), without any node or the client seeing a bit; repair rebuilds node 2's bit
    // shares from the others, exactly as they were dealt.
    let original = store_wrong_bit_share(&c, 2, &coffee)?;
    let out = c.cli(&["cluster", "scrub", "--json"])?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(
        v["bit_shares"]["off_codeword"],
        serde_json::json!([{"node": 2, "id": coffee}]),
        "{v}"
    );
    assert_eq!(v["bit_shares"]["checked"], 2, "{v}");
    let damaged = v["damaged"].as_array().ok_or("no damaged")?;
    assert_eq!(damaged.len(), 1, "{v}");
    let out = c.cli(&["cluster", "scrub"])?;
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!("damaged  node 2  {coffee}  bit shares off")),
        "{lines:?}"
    );
    let out = c.ok(&["cluster", "repair"])?;
    assert!(
        text(&out.stdout).contains(&format!("repaired  node 2  {coffee}")),
        "{}",
        text(&out.stdout)
    );
    assert!(
        exported(&c, 2, &coffee)?.0 == original,
        "not rebuilt as dealt"
    );
    c.ok(&["cluster", "scrub"])?;

    // A node that refuses the random masks is left out of the check and named; the other
    // four still check every image.
    c.restart(5, Some("mask-deal-refused@5"))?;
    let out = c.cli(&["cluster", "scrub", "--json"])?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let bits = &v["bit_shares"];
    assert_eq!(bits["nodes"], serde_json::json!([1, 2, 3, 4]), "{v}");
    assert_eq!(bits["checked"], 2, "{v}");
    assert!(bits["stopped"].is_null(), "{v}");
    assert!(
        bits["failed"]["5"]
            .as_str()
            .is_some_and(|w| w.contains("random masks")),
        "{v}"
    );
    c.restart(5, None)?;
    // With nodes 2 and 3 down, get needs node 1's repaired share.
    assert!(c.folder().stop_node(2, Duration::from_secs(10)));
    assert!(c.folder().stop_node(3, Duration::from_secs(10)));
    c.get_same(&skagen, &fixture("kpa_skagen.jpg"))?;
    c.get_same(&coffee, &fixture("sk_coffee.png"))?;
    Ok(())
}
