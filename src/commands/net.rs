//! `node`, `cluster`, `ingest`, `search`, `get`: the networked deployment, glue over
//! `dealer_free_node`. Every command that talks to the nodes acts as the client of
//! `--client FILE` when given, else of the cluster folder's own `client.toml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use dealer_free_node::client::{Catalog, CatalogEntry, ClientError, ClusterClient, IngestFile};
use dealer_free_node::cluster::{ClusterDir, ClusterError, InitOptions};
use dealer_free_node::config::NodeConfig;
use indicatif::{ProgressBar, ProgressStyle};
use phr_sis::phash::{decode_luma, phash};
use phr_sis::{ImageHash, ImageId, NodeId, SearchParams};
use rayon::prelude::*;

use super::{expand_paths, no_images_found};
use crate::cli::{
    ClusterArgs, ClusterCommand, ClusterShape, GetArgs, IngestArgs, NodeArgs, NodeCommand,
    SearchArgs,
};
use crate::{Outcome, UsageError};

pub(super) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Config errors and bad folders are the user's to fix (exit 2).
fn usage_or(e: ClusterError) -> anyhow::Error {
    match e {
        ClusterError::Usage(m) => UsageError(m).into(),
        ClusterError::Config(c) => UsageError(c.to_string()).into(),
        ClusterError::Client(ClientError::Config(c)) => UsageError(c.to_string()).into(),
        other => other.into(),
    }
}

pub(super) fn client_error(e: ClientError) -> anyhow::Error {
    match e {
        ClientError::Config(c) => UsageError(c.to_string()).into(),
        ClientError::NoKey(_) => UsageError(e.to_string()).into(),
        other => other.into(),
    }
}

/// The client of the profile `client`, else of the cluster folder `cluster`'s own
/// client.toml, opened within `rt`.
pub(super) fn open_client(
    rt: &tokio::runtime::Runtime,
    cluster: Option<&Path>,
    client: Option<&Path>,
) -> anyhow::Result<ClusterClient> {
    let _entered = rt.enter();
    let profile = match (client, cluster) {
        (Some(profile), _) => profile.to_owned(),
        (None, Some(cluster)) => {
            let profile = ClusterDir::new(cluster).profile();
            if !profile.exists() {
                return Err(UsageError(format!(
                    "{} holds no client.toml: create the cluster with `dealer-free-sis cluster up --dir {} --nodes 5 --threshold 3`",
                    cluster.display(),
                    cluster.display()
                ))
                .into());
            }
            profile
        }
        (None, None) => return Err(UsageError("give --cluster DIR or --client FILE".into()).into()),
    };
    if !profile.is_file() {
        return Err(UsageError(format!("{}: no such client profile", profile.display())).into());
    }
    ClusterClient::open(&profile).map_err(client_error)
}

/// `node init`: one node's keys, on this machine.
fn node_init(dir: &Path, id: u8, address: &str) -> anyhow::Result<Outcome> {
    let id = NodeId::new(id).map_err(|e| UsageError(format!("--id {id}: {e}")))?;
    let record = dealer_free_node::enrol::init_node(
        dir,
        &dealer_free_node::enrol::NodeInit {
            id,
            address: address.to_owned(),
            hosts: address
                .rsplit_once(':')
                .map(|(h, _)| vec![h.to_owned()])
                .unwrap_or_default(),
            replace: false,
        },
    )
    .map_err(|e| match e {
        dealer_free_node::enrol::EnrolError::Usage(m) => UsageError(m).into(),
        other => anyhow::Error::from(other),
    })?;
    println!("{}", serde_json::to_string_pretty(&record)?);
    eprintln!(
        "node {id}: keys in {} (private, mode 0600); send {} to the cluster's owner",
        dir.display(),
        dir.join(dealer_free_node::enrol::ENROLMENT_FILE).display()
    );
    Ok(Outcome::Success)
}

/// `node approve`: a manifest becomes the node's approved one.
fn node_approve(dir: &Path, manifest: &Path, digest: Option<&str>) -> anyhow::Result<Outcome> {
    let m = dealer_free_node::manifest::Manifest::load(manifest)
        .map_err(|e| UsageError(e.to_string()))?;
    let approval = dealer_free_node::enrol::approve(dir, &m, digest)?;
    println!(
        "node {}: approved manifest {} (nodes changed: {})",
        approval.node,
        approval.digest,
        approval
            .changed
            .iter()
            .map(u8::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(Outcome::Success)
}

/// Warns, when a new cluster has `n < 2t`, that its secure search stops at the first lost
/// node: it needs `2t − 1` nodes, while ingest and `get` need `t`.
fn warn_if_search_is_fragile(n: u8, t: u8) {
    let (n, t) = (u16::from(n), u16::from(t));
    if n + 1 < 2 * t {
        eprintln!(
            "warning: with {n} nodes and t = {t}, search needs 2t − 1 = {} nodes: it cannot \
             run on this cluster",
            2 * t - 1
        );
    } else if n < 2 * t {
        eprintln!(
            "warning: with {n} nodes and t = {t}, search needs 2t − 1 = {} nodes answering, so \
             it stops when {} node(s) are down (ingest and get need t = {t} and survive {} \
             lost); for search to survive a lost node, use at least 2t = {} nodes (e.g. \
             --nodes {} --threshold {t})",
            2 * t - 1,
            n + 2 - 2 * t,
            n - t,
            2 * t,
            2 * t + 1,
        );
    }
}

/// `node verify-audit`: every file of the node's audit log, checked.
fn node_verify_audit(config: &Path) -> anyhow::Result<Outcome> {
    let loaded = NodeConfig::load(config).map_err(|e| UsageError(e.to_string()))?;
    let log = loaded.raw.data_dir.join("audit.log");
    match dealer_free_node::audit::verify_all(&log) {
        Ok(v) => {
            for f in &v.files {
                println!("{}", f.display());
            }
            println!(
                "node {}: audit log verified: entries {} to {}, head {}",
                loaded.id,
                v.first,
                v.head.entries,
                dealer_free_node::hex(&v.head.head)
            );
            Ok(Outcome::Success)
        }
        Err(e) => {
            eprintln!("node {}: the audit log does not verify: {e}", loaded.id);
            Ok(Outcome::PartialFailure)
        }
    }
}

/// `node run --config FILE`, `node init`, `node approve`, `node verify-audit`.
pub(crate) fn node(args: &NodeArgs) -> anyhow::Result<Outcome> {
    let (config, log, metrics_addr) = match &args.command {
        NodeCommand::Run {
            config,
            log,
            metrics_addr,
        } => (config, log, metrics_addr),
        NodeCommand::Init { dir, id, address } => return node_init(dir, *id, address),
        NodeCommand::Approve {
            dir,
            manifest,
            digest,
        } => return node_approve(dir, manifest, digest.as_deref()),
        NodeCommand::VerifyAudit { config } => return node_verify_audit(config),
    };
    let mut loaded = NodeConfig::load(config).map_err(|e| UsageError(e.to_string()))?;
    if metrics_addr.is_some() {
        loaded.metrics = *metrics_addr;
    }
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
    };
    match log {
        Some(path) => {
            let file = crate::log_file::RotatingLog::open(path, crate::log_file::MAX_BYTES)
                .map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
            let _ = tracing_subscriber::fmt()
                .with_writer(file)
                .with_ansi(false)
                .with_env_filter(filter())
                .try_init();
        }
        None => {
            // Colour codes only for a terminal: stderr sent to a file stays plain text.
            let _ = tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_env_filter(filter())
                .try_init();
        }
    }
    runtime()?.block_on(async move {
        let shutdown = async {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{SignalKind, signal};
                match signal(SignalKind::terminate()) {
                    Ok(mut term) => {
                        tokio::select! {
                            _ = tokio::signal::ctrl_c() => {}
                            _ = term.recv() => {}
                        }
                    }
                    Err(_) => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            }
            #[cfg(not(unix))]
            {
                let _ = tokio::signal::ctrl_c().await;
            }
        };
        dealer_free_node::server::serve(&loaded, shutdown)
            .await
            .with_context(|| format!("node {}", loaded.id))
    })?;
    Ok(Outcome::Success)
}

fn init_options(shape: &ClusterShape, remote: bool) -> anyhow::Result<InitOptions> {
    match (shape.nodes, shape.threshold) {
        (Some(nodes), Some(threshold)) => Ok(InitOptions {
            nodes: crate::allowed::shape(&crate::allowed::Flags, threshold, nodes)?.n(),
            threshold,
            base_port: shape.base_port,
            host: shape.host.clone(),
            remote,
        }),
        _ => Err(UsageError("give both --nodes N and --threshold T".into()).into()),
    }
}

/// `cluster init|up|status|down`.
pub(crate) fn cluster(args: &ClusterArgs) -> anyhow::Result<Outcome> {
    match &args.command {
        ClusterCommand::Enrol { dir, records } => {
            let paths: Vec<&Path> = records.iter().map(PathBuf::as_path).collect();
            let (manifest, changed) = ClusterDir::new(dir)
                .enrol_records(&paths)
                .map_err(usage_or)?;
            println!(
                "manifest {} written to {} (nodes changed: {})",
                manifest.digest_hex(),
                ClusterDir::new(dir).manifest_path().display(),
                changed
                    .iter()
                    .map(u8::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            println!(
                "on each node's machine: dealer-free-sis node approve --dir NODE_DIR --manifest manifest.json --digest {}",
                manifest.digest_hex()
            );
            Ok(Outcome::Success)
        }
        ClusterCommand::Init { dir, shape, remote } => {
            let options = init_options(shape, *remote)?;
            let file = ClusterDir::new(dir).init(&options).map_err(usage_or)?;
            println!(
                "cluster {:?}: {} nodes, t = {}, in {}",
                file.name,
                file.nodes,
                file.threshold,
                dir.display()
            );
            warn_if_search_is_fragile(file.nodes, file.threshold);
            if *remote {
                println!(
                    "no node keys were made here: on machine i, with node-<i>/node.toml and \
                     ca.pem, run `dealer-free-sis node init --dir node-<i> --id i --address \
                     HOST:PORT`; then `dealer-free-sis cluster enrol --dir {} RECORD...` with \
                     their enrolment.json files",
                    dir.display()
                );
            } else {
                println!(
                    "start it with: dealer-free-sis cluster up --dir {}",
                    dir.display()
                );
            }
            Ok(Outcome::Success)
        }
        ClusterCommand::Up {
            dir,
            shape,
            wait,
            no_start,
            client,
        } => {
            let cluster = ClusterDir::new(dir).with_client(client.as_deref());
            if !cluster.exists() {
                if shape.nodes.is_none() && shape.threshold.is_none() {
                    return Err(UsageError(format!(
                        "{} holds no cluster: give --nodes N --threshold T to create one",
                        dir.display()
                    ))
                    .into());
                }
                let file = cluster
                    .init(&init_options(shape, false)?)
                    .map_err(usage_or)?;
                eprintln!(
                    "created cluster {:?} ({} nodes, t = {}) in {}",
                    file.name,
                    file.nodes,
                    file.threshold,
                    dir.display()
                );
                warn_if_search_is_fragile(file.nodes, file.threshold);
            } else if let (Some(n), Some(t)) = (shape.nodes, shape.threshold) {
                let file = cluster.read().map_err(usage_or)?;
                if file.nodes != n || file.threshold != t {
                    return Err(UsageError(format!(
                        "{} holds a cluster of {} nodes with t = {}, not {n} with t = {t}",
                        dir.display(),
                        file.nodes,
                        file.threshold
                    ))
                    .into());
                }
            }
            let exe = std::env::current_exe().context("finding this program's path")?;
            let spinner = ProgressBar::new_spinner().with_message("starting the nodes");
            spinner.enable_steady_tick(Duration::from_millis(100));
            let key = runtime()?
                .block_on(cluster.up(&exe, Duration::from_secs(*wait), !*no_start))
                .map_err(usage_or);
            spinner.finish_and_clear();
            let up = key?;
            let file = cluster.read().map_err(usage_or)?;
            let list = |ids: &mut dyn Iterator<Item = &NodeId>| {
                ids.map(ToString::to_string).collect::<Vec<_>>().join(", ")
            };
            for (id, why) in &up.absent {
                eprintln!("node {id} did not answer: {why}");
            }
            match &up.dkg {
                Some(d) => {
                    for (id, why) in d.dropped.iter().chain(&d.uncommitted) {
                        eprintln!("node {id}: {why}");
                    }
                    if !d.disagreeing.is_empty() {
                        eprintln!(
                            "nodes {} reported another outcome",
                            list(&mut d.disagreeing.iter())
                        );
                    }
                    println!(
                        "cluster up: {} nodes, DKG done among nodes {} (group key {}, transcript {})",
                        file.nodes,
                        list(&mut d.participants.iter()),
                        short_hex(&d.key.group_public_key),
                        short_hex(&d.key.transcript)
                    );
                }
                None => println!("cluster up: {} nodes, key from an earlier DKG", file.nodes),
            }
            if !up.without_key.is_empty() {
                println!(
                    "nodes without a key share, to replace (`cluster replace --node I`): {}",
                    list(&mut up.without_key.iter())
                );
            }
            Ok(Outcome::Success)
        }
        ClusterCommand::Status { dir, json, client } => status(dir, *json, client.as_deref()),
        ClusterCommand::Scrub { dir, json, client } => {
            super::scrub::scrub(dir, *json, client.as_deref())
        }
        ClusterCommand::Repair { dir, client } => super::scrub::repair(dir, client.as_deref()),
        ClusterCommand::Down { dir } => {
            let stopped = ClusterDir::new(dir)
                .down(Duration::from_secs(10))
                .map_err(usage_or)?;
            println!(
                "cluster down: stopped {} node(s){}",
                stopped.len(),
                if stopped.is_empty() {
                    String::new()
                } else {
                    format!(
                        " ({})",
                        stopped
                            .iter()
                            .map(u8::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            );
            Ok(Outcome::Success)
        }
        ClusterCommand::Replace {
            dir,
            node,
            running,
            resume,
            wait,
            client,
        } => {
            let cluster = ClusterDir::new(dir).with_client(client.as_deref());
            if *resume {
                resume_replace(&cluster, *node)
            } else {
                replace(&cluster, *node, *running, *wait)
            }
        }
        ClusterCommand::AddClient { dir, name, role } => {
            let added = ClusterDir::new(dir)
                .add_client(name, *role)
                .map_err(usage_or)?;
            println!(
                "client {name} ({role}): profile {}, certificate {}",
                added.profile.display(),
                added.fingerprint
            );
            println!(
                "listed in {} node config(s); running nodes admit it after their next restart",
                added.nodes.len()
            );
            Ok(Outcome::Success)
        }
    }
}

/// `cluster replace --resume`: resolves a resharing left prepared, then repairs `node`'s
/// records if the resharing was committed and gave it a key.
fn resume_replace(cluster: &ClusterDir, node: u8) -> anyhow::Result<Outcome> {
    let id = NodeId::new(node).map_err(|e| UsageError(e.to_string()))?;
    let rt = runtime()?;
    let client = rt.block_on(async { ClusterClient::open(&cluster.profile()) })?;
    let outcome = rt.block_on(client.resume_reshare())?;
    match &outcome.label {
        None => println!("no resharing was pending"),
        Some(label) => println!(
            "resharing {} {} on nodes {}",
            short_hex(label),
            if outcome.committed {
                "committed"
            } else {
                "rolled back"
            },
            outcome
                .resolved
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
    if outcome.committed {
        let (repaired, failed) = rt.block_on(client.repair_node(id))?;
        println!("node {node}: {repaired} image records repaired");
        if !failed.is_empty() {
            for (image, why) in &failed {
                eprintln!("image {image}: {why}");
            }
            return Ok(Outcome::PartialFailure);
        }
    }
    Ok(Outcome::Success)
}

fn replace(cluster: &ClusterDir, node: u8, running: bool, wait: u64) -> anyhow::Result<Outcome> {
    let dir = &cluster.dir;
    let file = cluster.read().map_err(usage_or)?;
    let id = NodeId::new(node)
        .ok()
        .filter(|_| node <= file.nodes)
        .ok_or_else(|| {
            UsageError(format!(
                "the cluster in {} has nodes 1 to {}, not {node}",
                dir.display(),
                file.nodes
            ))
        })?;
    let spinner = ProgressBar::new_spinner().with_message(format!(
        "replacing node {node}: resharing the key and repairing its records"
    ));
    spinner.enable_steady_tick(Duration::from_millis(100));
    let rt = runtime()?;
    let outcome = if running {
        rt.block_on(async {
            let client = ClusterClient::open(&cluster.profile())?;
            client.replace_node(id).await
        })
        .map_err(anyhow::Error::from)
    } else {
        let exe = std::env::current_exe().context("finding this program's path")?;
        rt.block_on(cluster.replace(&exe, node, Duration::from_secs(wait)))
            .map_err(usage_or)
    };
    spinner.finish_and_clear();
    let outcome = outcome?;
    println!(
        "node {node} replaced: key reshared by nodes {} (transcript {}), {} image records repaired",
        outcome
            .dealers_used
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        short_hex(&outcome.transcript),
        outcome.repaired
    );
    for (id, reason) in &outcome.failed {
        eprintln!("not repaired: {id}: {reason}");
    }
    Ok(if outcome.failed.is_empty() {
        Outcome::Success
    } else {
        Outcome::PartialFailure
    })
}

fn short_hex(h: &str) -> &str {
    h.get(..16).unwrap_or(h)
}

fn status(dir: &Path, json: bool, client: Option<&Path>) -> anyhow::Result<Outcome> {
    let cluster = ClusterDir::new(dir);
    let file = cluster.read().map_err(usage_or)?;
    let rt = runtime()?;
    let client = open_client(&rt, Some(dir), client)?;
    let statuses = rt.block_on(client.status());
    let up = statuses.iter().filter(|s| s.health.is_ok()).count();
    let healthy = statuses
        .iter()
        .filter(|s| s.health.as_ref().is_ok_and(|h| h.problem.is_none()))
        .count();
    let caps = super::capability::capabilities(
        usize::from(file.nodes),
        usize::from(file.threshold),
        &statuses,
    );
    if json {
        let nodes: Vec<serde_json::Value> = statuses
            .iter()
            .map(|s| {
                let pid = cluster.running_pid(s.id);
                match &s.health {
                    Ok(h) => serde_json::json!({
                        "id": s.id, "address": s.address, "pid": pid, "up": true,
                        "has_key": h.has_key, "images": h.images,
                        "audit_entries": h.audit_entries, "audit_head": h.audit_head,
                        "version": h.version, "transcript": h.transcript,
                        "prepared": h.prepared,
                        "healthy": h.problem.is_none(), "problem": h.problem,
                    }),
                    Err(e) => serde_json::json!({
                        "id": s.id, "address": s.address, "pid": pid, "up": false, "error": e,
                    }),
                }
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "name": file.name, "nodes": file.nodes, "threshold": file.threshold,
                "up": up, "healthy": healthy, "manifest_digest": client.manifest().digest_hex(),
                "node_status": nodes,
                "capabilities": super::capability::json(&caps),
            })
        );
    } else {
        println!(
            "cluster {:?}: {up} of {} nodes up, {healthy} healthy, t = {}",
            file.name, file.nodes, file.threshold
        );
        println!(
            "manifest {} (compare it with every node's operator)",
            client.manifest().digest_hex()
        );
        println!(
            "{:>4}  {:<21}  {:>7}  {:<5}  {:>8}  {:>7}  audit head",
            "node", "address", "pid", "key", "images", "entries"
        );
        for s in &statuses {
            let pid = cluster
                .running_pid(s.id)
                .map_or_else(|| "-".to_owned(), |p| p.to_string());
            match &s.health {
                Ok(h) if h.problem.is_some() => println!(
                    "{:>4}  {:<21}  {:>7}  unhealthy: {}",
                    s.id,
                    s.address,
                    pid,
                    h.problem.as_deref().unwrap_or_default()
                ),
                Ok(h) => println!(
                    "{:>4}  {:<21}  {:>7}  {:<5}  {:>8}  {:>7}  {}",
                    s.id,
                    s.address,
                    pid,
                    match (&h.prepared, h.has_key) {
                        (Some(_), _) => "prep",
                        (None, true) => "yes",
                        (None, false) => "no",
                    },
                    h.images,
                    h.audit_entries,
                    short_hex(&h.audit_head)
                ),
                Err(e) => println!("{:>4}  {:<21}  {:>7}  down: {e}", s.id, s.address, pid),
            }
        }
        println!("what works now:");
        for line in super::capability::lines(&caps) {
            println!("  {line}");
        }
    }
    Ok(if healthy == statuses.len() {
        Outcome::Success
    } else {
        Outcome::PartialFailure
    })
}

fn hash_bytes(bytes: &[u8]) -> Result<ImageHash, String> {
    decode_luma(bytes)
        .map(|img| phash(&img))
        .map_err(|e| e.to_string())
}

/// The client's own id → path record (never sent to the nodes); a catalog that cannot be
/// read is said on stderr and shows no paths.
fn load_catalog(path: &Path) -> BTreeMap<String, String> {
    match Catalog::load(path) {
        Ok(c) => c
            .images
            .iter()
            .map(|(id, e)| (id.to_string(), e.path.display().to_string()))
            .collect(),
        Err(e) => {
            eprintln!("dealer-free-sis: {e}");
            BTreeMap::new()
        }
    }
}

/// The files of `files` whose bytes the catalog (or an earlier file of this run) holds
/// already, each said on stdout with its id (or, for a twin, the index of its first copy);
/// the rest, with the SHA-256 of each.
/// What [`without_duplicates`] keeps: the files to store with their SHA-256, and each twin
/// of an earlier file of the run with the index of that file.
type Deduplicated = (Vec<(IngestFile, String)>, Vec<(PathBuf, usize)>);

fn without_duplicates(files: Vec<IngestFile>, catalog: &Catalog, allow: bool) -> Deduplicated {
    let shas: Vec<String> = files
        .par_iter()
        .map(|f| Catalog::content_hash(&f.bytes))
        .collect();
    let mut fresh: Vec<(IngestFile, String)> = Vec::with_capacity(files.len());
    let mut twins = Vec::new();
    for (f, sha) in files.into_iter().zip(shas) {
        if !allow {
            if let Some(id) = catalog.find_content(&sha) {
                println!("{id}  {}", f.path.display());
                eprintln!(
                    "dealer-free-sis: {}: already stored as {id}, not stored again \
                     (--allow-duplicates stores a second copy)",
                    f.path.display()
                );
                continue;
            }
            if let Some(first) = fresh.iter().position(|(_, s)| *s == sha) {
                twins.push((f.path, first));
                continue;
            }
        }
        fresh.push((f, sha));
    }
    (fresh, twins)
}

/// `ingest --cluster DIR IMAGES...`.
pub(crate) fn ingest(args: &IngestArgs) -> anyhow::Result<Outcome> {
    let found = expand_paths(&args.images);
    if found.is_empty() {
        for path in &args.images {
            eprintln!("dealer-free-sis: {}", no_images_found(path));
        }
        return Ok(Outcome::PartialFailure);
    }
    let rt = runtime()?;
    let client = open_client(
        &rt,
        args.target.cluster.as_deref(),
        args.target.client.as_deref(),
    )?;
    let mut failed = false;
    let paths: Vec<PathBuf> = found
        .into_iter()
        .filter_map(|r| match r {
            Ok(p) => Some(p),
            Err((p, e)) => {
                eprintln!("dealer-free-sis: {}: {e}", p.display());
                failed = true;
                None
            }
        })
        .collect();
    let read: Vec<Result<IngestFile, String>> = paths
        .par_iter()
        .map(|path| {
            let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let hash = hash_bytes(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(IngestFile {
                path: path.clone(),
                bytes,
                hash,
            })
        })
        .collect();
    let mut files = Vec::with_capacity(read.len());
    for r in read {
        match r {
            Ok(f) => files.push(f),
            Err(e) => {
                eprintln!("dealer-free-sis: {e}");
                failed = true;
            }
        }
    }
    if files.is_empty() {
        eprintln!("dealer-free-sis: no image to ingest");
        return Ok(Outcome::PartialFailure);
    }
    let catalog_path = client.profile().raw.catalog.clone();
    if !super::catalog::flush_pending(&rt, &client)?.is_empty() {
        failed = true;
    }
    let (fresh, twins) = without_duplicates(
        files,
        &Catalog::load(&catalog_path).map_err(client_error)?,
        args.allow_duplicates,
    );
    let shas: BTreeMap<PathBuf, String> = fresh
        .iter()
        .map(|(f, sha)| (f.path.clone(), sha.clone()))
        .collect();
    let files: Vec<IngestFile> = fresh.into_iter().map(|(f, _)| f).collect();
    let mut ids_by_path: BTreeMap<PathBuf, ImageId> = BTreeMap::new();
    let bar = ProgressBar::new(files.len() as u64).with_style(
        ProgressStyle::with_template("ingest [{bar:30}] {pos}/{len} images ({per_sec}, {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let t = usize::from(client.threshold().t());
    let batch = usize::from(args.batch);
    let mut error = None;
    for chunk in files.chunks(batch) {
        let result = rt.block_on(client.ingest(chunk, batch, |_| {}));
        match result {
            Ok(outcomes) => {
                // Recorded chunk by chunk: an interruption loses no stored image's entry.
                let stored: Vec<(ImageId, PathBuf)> = outcomes
                    .iter()
                    .filter(|o| o.stored_on.len() >= t)
                    .map(|o| (o.id, o.path.clone()))
                    .collect();
                Catalog::update(&catalog_path, |c| {
                    for (id, path) in &stored {
                        c.images.insert(
                            *id,
                            CatalogEntry {
                                path: std::path::absolute(path).unwrap_or_else(|_| path.clone()),
                                sha256: shas.get(path).cloned(),
                            },
                        );
                    }
                })
                .map_err(client_error)?;
                for o in outcomes {
                    if o.stored_on.len() >= t {
                        bar.suspend(|| println!("{}  {}", o.id, o.path.display()));
                        ids_by_path.insert(o.path.clone(), o.id);
                    }
                    if !o.complete() {
                        failed = true;
                        let why: Vec<String> = o
                            .failed
                            .iter()
                            .map(|(n, e)| format!("node {n}: {e}"))
                            .collect();
                        bar.suspend(|| {
                            eprintln!(
                                "dealer-free-sis: {}: {} not complete: stored on {} of {} nodes ({})",
                                o.path.display(),
                                o.id,
                                o.stored_on.len(),
                                o.stored_on.len() + o.failed.len(),
                                why.join("; ")
                            );
                        });
                    }
                }
            }
            Err(e) => {
                for f in chunk {
                    bar.suspend(|| {
                        eprintln!("dealer-free-sis: {}: not stored", f.path.display());
                    });
                }
                error = Some(e);
                break;
            }
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    for (path, first) in twins {
        match files.get(first).and_then(|f| ids_by_path.get(&f.path)) {
            Some(id) => {
                println!("{id}  {}", path.display());
                eprintln!(
                    "dealer-free-sis: {}: the same bytes as {}, stored once as {id}",
                    path.display(),
                    files
                        .get(first)
                        .map_or_else(String::new, |f| f.path.display().to_string())
                );
            }
            None => {
                failed = true;
                eprintln!("dealer-free-sis: {}: not stored", path.display());
            }
        }
    }
    if let Some(e) = error {
        return Err(client_error(e));
    }
    Ok(if failed {
        Outcome::PartialFailure
    } else {
        Outcome::Success
    })
}

/// The header line of `search`'s table (its columns as wide as the rows').
fn search_header() -> String {
    format!(
        "{:>4}  {:>8}  {:>5}  {:<16}  path",
        "rank", "distance", "votes", "id"
    )
}

/// `search --cluster DIR QUERY`.
pub(crate) fn search(args: &SearchArgs) -> anyhow::Result<Outcome> {
    let rt = runtime()?;
    let client = open_client(
        &rt,
        args.target.cluster.as_deref(),
        args.target.client.as_deref(),
    )?;
    let bytes = std::fs::read(&args.query)
        .with_context(|| format!("{}", args.query.display()))
        .map_err(|e| UsageError(format!("{e:#}")))?;
    let query =
        hash_bytes(&bytes).map_err(|e| UsageError(format!("{}: {e}", args.query.display())))?;
    let params = SearchParams {
        topk: args.topk,
        min_band_votes: args.min_band_votes,
        max_hamming: args.max_hamming,
    };
    let outcome = rt
        .block_on(client.search(query, &params))
        .map_err(client_error)?;
    let catalog = load_catalog(&client.profile().raw.catalog);
    let path_of = |id: ImageId| catalog.get(&id.to_string()).map(String::as_str);
    if args.json {
        let hits: Vec<serde_json::Value> = outcome
            .hits
            .iter()
            .map(|h| {
                serde_json::json!({
                    "id": h.id.to_string(), "distance": h.distance, "band_votes": h.band_votes,
                    "path": path_of(h.id),
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(hits));
    } else {
        println!("{}", search_header());
        for (rank, h) in outcome.hits.iter().enumerate() {
            println!(
                "{:>4}  {:>8}  {:>5}  {}  {}",
                rank + 1,
                h.distance,
                h.band_votes,
                h.id,
                path_of(h.id).unwrap_or_default()
            );
        }
        eprintln!(
            "{} hit(s) of {} candidate(s); secure ranking among nodes {:?}; distances {}",
            outcome.hits.len(),
            outcome.candidates,
            outcome.servers.iter().map(|s| s.get()).collect::<Vec<_>>(),
            outcome.integrity
        );
    }
    if !outcome.wrong_shares_from.is_empty() || !outcome.disagreeing.is_empty() {
        eprintln!(
            "dealer-free-sis: corrected wrong distance shares from {:?}; disagreeing candidate lists from {:?}",
            outcome.wrong_shares_from, outcome.disagreeing
        );
    }
    Ok(Outcome::Success)
}

/// `get --cluster DIR ID -o FILE`.
pub(crate) fn get(args: &GetArgs) -> anyhow::Result<Outcome> {
    let id: ImageId = args
        .id
        .parse()
        .map_err(|e: phr_sis::image_id::ParseImageIdError| UsageError(e.to_string()))?;
    let rt = runtime()?;
    let client = open_client(
        &rt,
        args.target.cluster.as_deref(),
        args.target.client.as_deref(),
    )?;
    let got = rt.block_on(client.get(id)).map_err(client_error)?;
    for (node, why) in &got.rejected {
        eprintln!("dealer-free-sis: node {node}: share rejected: {why}");
    }
    for (node, why) in &got.unreachable {
        eprintln!("dealer-free-sis: node {node}: {why}");
    }
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    dealer_free_node::files::write_atomic(&args.out, &got.bytes)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!("{}  {}  {} bytes", id, args.out.display(), got.bytes.len());
    Ok(Outcome::Success)
}
