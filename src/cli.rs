//! The command line: every subcommand and flag (clap derive).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use dealer_free_node::access::{ClientName, Role};

use crate::allowed::Setting;

/// Dealer-free searchable secret image sharing.
///
/// Keep images with n independent storage nodes so that fewer than t of them learn nothing,
/// and still search the collection by example image.
#[derive(Debug, Parser)]
#[command(name = "dealer-free-sis", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print the perceptual hash of each image, exactly as Python imagehash computes it.
    ///
    /// One line per image, `<hex>  <path>`, in the order given; directories are walked
    /// recursively in sorted order and only files with an image extension (png, jpg, jpeg,
    /// gif, bmp, tif, tiff, webp) are taken from them. Images are hashed in parallel. Each
    /// file that fails gets one line on stderr (with --json, a `{"path", "error"}` object);
    /// exit code 1 if any failed or no image was found.
    Phash(PhashArgs),
    /// Measure the speed of each primitive on this machine (like `openssl speed`).
    Bench(BenchArgs),
    /// Split an image file into one share per node (any T of N reconstruct it).
    ///
    /// Writes `DIR/<file name>.<i>.share` for i = 1..N and prints their paths; shares of an
    /// earlier split of the same file name numbered above N are removed (and named on stderr).
    Split(SplitArgs),
    /// Verify shares and reconstruct the image from any T good ones.
    ///
    /// Bad shares are named on stderr and routed around; with fewer than T good shares nothing
    /// is written and the exit code is 1.
    Combine(CombineArgs),
    /// Run the distributed key generation among N in-process nodes and report what it cost.
    ///
    /// Every node runs the full protocol (GJKR over ristretto255: deal, complain, justify,
    /// confirm) in this one process, in lockstep. Prints per round the messages, bytes on the
    /// wire (a broadcast counts once per recipient) and CPU time of all nodes together (one
    /// thread, so wall-clock time is CPU time); then the qualified set, the disqualified
    /// nodes and why, whether every honest node agrees on the group key, QUAL and transcript,
    /// and the group public key. Exit code 0 when the honest nodes agree on a key, 1 when the
    /// run ends without one (each honest node's error is printed), 2 for bad parameters.
    Dkg(DkgArgs),
    /// Run the dealer-free experiment on a folder of images (default: the bundled samples).
    ///
    /// Runs the real protocols in process — the DKG, Stage-1 (threshold-VOPRF tokens, image
    /// and bit shares, durable stores), Stage-2 (token lookup, secure ranking, retrieval) —
    /// records every message, and writes the overhead figures (SVG, PNG and JSON each),
    /// summary.md and index.html to OUT. With `--mpc-query-image Q` it runs only the
    /// secure-ranking comparison unless figure sets are named (`--figures`, or `figures` in
    /// the config): it ingests the images into N in-process nodes (the DKG among them, band
    /// tokens from the threshold VOPRF, image shares and pHash bit shares in each node's
    /// durable store), then ranks Q's candidates twice — by the plaintext baseline and by the
    /// secure ranking (MPC) among the chosen servers — prints both rankings side by side and
    /// writes OUT/secure_distance_comparison.json, with its section in summary.md and
    /// index.html. `--config FILE` reads the same
    /// settings from a TOML file (see experiments/); flags given on the command line override
    /// it. Bad flags or a bad file exit with code 2 before any work starts, and nothing is
    /// written then; `--check` only checks and prints the resolved settings.
    Experiment(Box<ExperimentArgs>),
    /// Run a storage node: the gRPC server of one node, with mutual TLS.
    Node(NodeArgs),
    /// Create, start, inspect and stop a cluster of nodes on this machine.
    Cluster(ClusterArgs),
    /// Store images in a running cluster (Stage-1): prints `<id>  <path>` per image.
    ///
    /// Folders are walked recursively in sorted order (image extensions only). Each batch of
    /// images gets its band tokens from the threshold VOPRF in one request per node, and each
    /// node stores its records of the batch in one transaction. File names never leave this
    /// machine (they are kept in the cluster folder's catalog.json). Exit code 1 if any image
    /// was not stored on every node (each such image and node is named on stderr).
    Ingest(IngestArgs),
    /// Search a running cluster by example image (Stage-2): the secure ranking among 2t − 1
    /// nodes; prints a header line `rank  distance  votes  id  path`, then one line per hit,
    /// best first (the path from the cluster folder's catalog.json, empty if unknown).
    Search(SearchArgs),
    /// Retrieve one image from a running cluster: every share verified, the file
    /// reconstructed byte for byte from any t good ones.
    Get(GetArgs),
    /// List the images a running cluster stores: per id, the path it was ingested from (from
    /// the catalog) and how many nodes hold its record; deletes some node has not yet
    /// acknowledged are sent again first.
    List(ListArgs),
    /// Delete images from a running cluster for good: every node removes their records and
    /// keeps a tombstone (it refuses to store them again), and the catalog forgets them. A
    /// node that is down gets the delete when a later `delete`, `list` or `ingest` finds it
    /// up (the catalog keeps the pending deletes).
    Delete(DeleteArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct NodeArgs {
    #[command(subcommand)]
    pub(crate) command: NodeCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum NodeCommand {
    /// Serve one node until SIGTERM or Ctrl-C.
    Run {
        /// The node's config (node.toml).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Write the log to FILE (without colour), moved to FILE.1 each time it passes
        /// 16 MiB, instead of to standard error.
        #[arg(long, value_name = "FILE")]
        log: Option<PathBuf>,
        /// Serve Prometheus metrics at GET /metrics over plain HTTP on IP:PORT (overrides the
        /// config's metrics_addr). Unauthenticated: bind it to loopback or a private network.
        #[arg(long, value_name = "IP:PORT")]
        metrics_addr: Option<std::net::SocketAddr>,
    },
    /// Make ONE node's keys on this machine, in DIR: its TLS key and self-signed certificate,
    /// its at-rest key, its identity keys (sealed in DIR/data/secrets.bin). Prints and writes
    /// (DIR/enrolment.json) only its public enrolment record.
    Init {
        /// The node's folder.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// The node's id (1 to n).
        #[arg(long, value_name = "I", value_parser = Setting::NodeId.parser::<u8>())]
        id: u8,
        /// Where it will listen, HOST:PORT (in the record; its host also goes into the
        /// certificate).
        #[arg(long, value_name = "HOST:PORT", default_value = "")]
        address: String,
    },
    /// Approve an enrolment manifest for the node in DIR: it must list this node's own keys
    /// and certificate; it becomes DIR/manifest.json, the only keys the node takes part in a
    /// DKG or resharing with.
    Approve {
        /// The node's folder.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// The new manifest.
        #[arg(long, value_name = "FILE")]
        manifest: PathBuf,
        /// The digest compared out of band (as `cluster status` prints it); refused if the
        /// manifest's differs.
        #[arg(long, value_name = "SHA256")]
        digest: Option<String>,
    },
    /// Verify the node's whole audit log: the open file and every closed one beside it
    /// (a start checks only the open file). Prints the files and the head; exits 1 if
    /// anything does not verify.
    VerifyAudit {
        /// The node's config (node.toml): the log is in its data folder.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct ClusterArgs {
    #[command(subcommand)]
    pub(crate) command: ClusterCommand,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ClusterShape {
    /// Number of nodes (N, 2 ≤ T ≤ N ≤ 255; secure search needs 2T − 1 ≤ N).
    #[arg(long, value_name = "N", value_parser = Setting::Nodes.parser::<u8>())]
    pub(crate) nodes: Option<u8>,
    /// Threshold (T, 2 ≤ T ≤ N).
    #[arg(long, value_name = "T", value_parser = Setting::Threshold.parser::<u8>())]
    pub(crate) threshold: Option<u8>,
    /// Node i listens on BASE + i (default: free ports).
    #[arg(long, value_name = "BASE")]
    pub(crate) base_port: Option<u16>,
    /// The address the nodes listen on (and put in their certificates).
    #[arg(long, default_value = "127.0.0.1")]
    pub(crate) host: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ClusterCommand {
    /// Write node configs, a cluster CA with the client's certificate and profile to DIR;
    /// run `node init` in every node folder and approve the manifest of their records there.
    Init {
        /// The cluster folder.
        #[arg(long, visible_alias = "cluster", value_name = "DIR")]
        dir: PathBuf,
        #[command(flatten)]
        shape: ClusterShape,
        /// The nodes run on other machines: write their configs only; each operator runs
        /// `node init` there and sends its enrolment.json (then `cluster enrol`).
        #[arg(long)]
        remote: bool,
    },
    /// Build (or change) DIR/manifest.json from nodes' public enrolment records (the
    /// enrolment.json `node init` wrote) and print its digest; each node's operator then
    /// approves it with `node approve`.
    Enrol {
        /// The cluster folder.
        #[arg(long, visible_alias = "cluster", value_name = "DIR")]
        dir: PathBuf,
        /// The records (enrolment.json files).
        #[arg(required = true, value_name = "RECORD")]
        records: Vec<PathBuf>,
    },
    /// Start the nodes of DIR in the background and run the DKG if the cluster has no key;
    /// with --nodes and --threshold, first init DIR if it holds no cluster.
    Up {
        /// The cluster folder.
        #[arg(long, visible_alias = "cluster", value_name = "DIR")]
        dir: PathBuf,
        #[command(flatten)]
        shape: ClusterShape,
        /// Seconds to wait for the nodes to answer.
        #[arg(long, default_value_t = 30)]
        wait: u64,
        /// Start no process here: the nodes run elsewhere (e.g. on other machines, at the
        /// addresses client.toml names); wait for them and run the DKG if needed.
        #[arg(long)]
        no_start: bool,
        /// Act as the client of this profile (one `cluster add-client` wrote) instead of
        /// DIR/client.toml.
        #[arg(long, value_name = "FILE")]
        client: Option<PathBuf>,
    },
    /// Show each node's process, health, images and audit-log head.
    Status {
        /// The cluster folder.
        #[arg(long, visible_alias = "cluster", value_name = "DIR")]
        dir: PathBuf,
        /// One JSON object instead of the table.
        #[arg(long)]
        json: bool,
        /// Act as the client of this profile (one `cluster add-client` wrote) instead of
        /// DIR/client.toml.
        #[arg(long, value_name = "FILE")]
        client: Option<PathBuf>,
    },
    /// Have every node check every record it holds (integrity tag, share commitment,
    /// encodings) and name each damaged (node, image); exit 1 if any is damaged or a node
    /// could not be scrubbed.
    Scrub {
        /// The cluster folder.
        #[arg(long, visible_alias = "cluster", value_name = "DIR")]
        dir: PathBuf,
        /// One JSON object instead of the lines.
        #[arg(long)]
        json: bool,
        /// Act as the client of this profile (an admin) instead of DIR/client.toml.
        #[arg(long, value_name = "FILE")]
        client: Option<PathBuf>,
    },
    /// Scrub, then rebuild every damaged record from the other nodes (as `replace` rebuilds
    /// a whole node); deleted images are not rebuilt. Exit 1 if any record stays damaged.
    Repair {
        /// The cluster folder.
        #[arg(long, visible_alias = "cluster", value_name = "DIR")]
        dir: PathBuf,
        /// Act as the client of this profile (an admin) instead of DIR/client.toml.
        #[arg(long, value_name = "FILE")]
        client: Option<PathBuf>,
    },
    /// Stop the nodes of DIR (SIGTERM, then SIGKILL after 10 s).
    Down {
        /// The cluster folder.
        #[arg(long, visible_alias = "cluster", value_name = "DIR")]
        dir: PathBuf,
    },
    /// Replace node ID by a fresh one (new keys, empty store) without re-ingesting: the other
    /// nodes reshare the key to it and its records are repaired from theirs. Its old data
    /// folder is moved aside, not deleted.
    Replace {
        /// The cluster folder.
        #[arg(long, visible_alias = "cluster", value_name = "DIR")]
        dir: PathBuf,
        /// The node to replace.
        #[arg(long, value_name = "ID", value_parser = Setting::NodeId.parser::<u8>())]
        node: u8,
        /// The fresh node already runs (e.g. on another machine, at the address the client
        /// profile names): only reshare and repair, start and stop nothing here.
        #[arg(long)]
        running: bool,
        /// Resolve a resharing an interruption left prepared on some nodes (commit it if the
        /// coordinator had decided so, else roll it back), then repair node ID's records if it
        /// got its key. Starts and stops nothing.
        #[arg(long, conflicts_with = "running")]
        resume: bool,
        /// Seconds to wait for the node to answer.
        #[arg(long, default_value_t = 30)]
        wait: u64,
        /// Act as the client of this profile (one `cluster add-client` wrote) instead of
        /// DIR/client.toml.
        #[arg(long, value_name = "FILE")]
        client: Option<PathBuf>,
    },
    /// Issue another client a certificate from the cluster CA (DIR/ca.key must be present) and
    /// a profile DIR/clients/NAME/client.toml, and list it with its role in every node's
    /// config. Running nodes admit it after their next restart.
    AddClient {
        /// The cluster folder.
        #[arg(long, visible_alias = "cluster", value_name = "DIR")]
        dir: PathBuf,
        /// The client's name: 1 to 64 ASCII letters, digits, '-' and '_'.
        #[arg(long, value_name = "NAME")]
        name: ClientName,
        /// What it may do: admin (everything), owner (ingest, search, get) or search (search
        /// only).
        #[arg(long, value_name = "ROLE")]
        role: Role,
    },
}

/// Which running cluster a client command talks to, and as which client.
#[derive(Debug, clap::Args)]
pub(crate) struct ClusterTarget {
    /// The cluster folder (its client.toml says where the nodes are).
    #[arg(
        long,
        visible_alias = "dir",
        value_name = "DIR",
        required_unless_present = "client"
    )]
    pub(crate) cluster: Option<PathBuf>,
    /// Act as the client of this profile (e.g. DIR/clients/NAME/client.toml from `cluster
    /// add-client`) instead of DIR/client.toml.
    #[arg(long, value_name = "FILE")]
    pub(crate) client: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct IngestArgs {
    #[command(flatten)]
    pub(crate) target: ClusterTarget,
    /// Images per token request and store request.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub(crate) batch: u16,
    /// Store a file even if the catalog holds the same bytes already (by default its
    /// existing id is printed and nothing is stored; the check is the catalog's alone, no
    /// node sees a content hash).
    #[arg(long)]
    pub(crate) allow_duplicates: bool,
    /// Image files and folders.
    #[arg(required = true, value_name = "IMAGES")]
    pub(crate) images: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct SearchArgs {
    #[command(flatten)]
    pub(crate) target: ClusterTarget,
    /// The query image.
    #[arg(value_name = "QUERY")]
    pub(crate) query: PathBuf,
    /// Most results (at least 1).
    #[arg(long, value_name = "K", default_value_t = 10, value_parser = Setting::Topk.parser::<usize>())]
    pub(crate) topk: usize,
    /// Fewest equal bands a candidate needs (0 to 8; 0 ranks every stored image).
    #[arg(long, value_name = "V", default_value_t = 1, value_parser = Setting::MinBandVotes.parser::<u32>())]
    pub(crate) min_band_votes: u32,
    /// Largest Hamming distance kept (0 to 64).
    #[arg(long, value_name = "H", default_value_t = 64, value_parser = Setting::MaxHamming.parser::<u32>())]
    pub(crate) max_hamming: u32,
    /// Print a JSON list of {id, distance, band_votes, path} (path from the catalog, null if
    /// unknown) and nothing else on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    pub(crate) target: ClusterTarget,
    /// One JSON object per line: {id, path, nodes} (path null if the catalog lacks it).
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct DeleteArgs {
    #[command(flatten)]
    pub(crate) target: ClusterTarget,
    /// The image ids (as `ingest` printed them).
    #[arg(value_name = "ID", required = true)]
    pub(crate) ids: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct GetArgs {
    #[command(flatten)]
    pub(crate) target: ClusterTarget,
    /// The image id (as `ingest` printed it).
    #[arg(value_name = "ID")]
    pub(crate) id: String,
    /// Where to write the image (missing folders are created).
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub(crate) out: PathBuf,
}

/// The sharing scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SchemeArg {
    /// Shamir over GF(2^8): information-theoretic, each share as large as the image.
    Shamir,
    /// AES-256-GCM + Reed-Solomon + Shamir-shared key: each share about size/T.
    Compact,
}

/// How image sizes are padded (what share sizes reveal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PaddingArg {
    /// Exact sizes.
    None,
    /// Next power of two.
    Pow2,
    /// Next m·2^k with 8 <= m < 16 (at most 12.5% larger).
    Eighths,
}

#[derive(Debug, clap::Args)]
pub(crate) struct SplitArgs {
    /// Shares needed to reconstruct (T, 2 ≤ T ≤ N).
    #[arg(long, short = 't', value_name = "T", value_parser = Setting::Threshold.parser::<u8>())]
    pub(crate) threshold: u8,
    /// Number of shares / nodes (N, 2 to 255).
    #[arg(long, short = 'n', value_name = "N", value_parser = Setting::Nodes.parser::<u8>())]
    pub(crate) nodes: u8,
    /// The sharing scheme.
    #[arg(long, value_enum, default_value = "shamir")]
    pub(crate) scheme: SchemeArg,
    /// Size padding.
    #[arg(long, value_enum, default_value = "eighths")]
    pub(crate) padding: PaddingArg,
    /// The image id to record (16 hex digits; default random).
    #[arg(long)]
    pub(crate) id: Option<phr_sis::ImageId>,
    /// Folder for the share files (created if missing).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// The image file.
    pub(crate) file: PathBuf,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CombineArgs {
    /// Where to write the reconstructed image.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub(crate) out: PathBuf,
    /// Share files.
    #[arg(required = true, value_name = "SHARE")]
    pub(crate) shares: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct DkgArgs {
    /// Number of nodes (N, 2 to 255).
    #[arg(long, short = 'n', value_name = "N", value_parser = Setting::Nodes.parser::<usize>())]
    pub(crate) nodes: usize,
    /// Shares needed to use the key (T, 2 ≤ T ≤ N).
    #[arg(long, short = 't', value_name = "T", value_parser = Setting::Threshold.parser::<usize>())]
    pub(crate) threshold: usize,
    /// Nodes that misbehave: comma-separated `ID=MISBEHAVIOUR`, e.g. `4=silent,5=bad-share:1`.
    #[arg(
        long,
        value_name = "SPEC",
        long_help = format!(
            "Nodes that misbehave: comma-separated `ID=MISBEHAVIOUR`, e.g. \
             `4=silent,5=bad-share:1`.\n\nMisbehaviours: {}.",
            dealer_free::dkg::faults::MISBEHAVIOUR_NAMES
        )
    )]
    pub(crate) faulty: Option<String>,
    /// Seed of the ChaCha20 generator every node draws from (the same seed gives the same run).
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

/// The flags of `experiment`. Every setting is an `Option` so that a flag given on the command
/// line can be told apart from one left out: a given flag overrides `--config`, a left-out one
/// takes the file's value, else the default shown in `--help`.
#[derive(Debug, clap::Args)]
pub(crate) struct ExperimentArgs {
    /// A TOML file with the same settings (keys as the flags with `_` for `-`, the `mpc_*`
    /// ones in an `[mpc]` table, lists as arrays); flags given on the command line override it.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Check the settings, print them resolved (as TOML) and exit without running anything.
    #[arg(long)]
    pub(crate) check: bool,
    /// Folder of images to ingest [default: the bundled samples].
    #[arg(long, value_name = "DIR")]
    pub(crate) images: Option<PathBuf>,
    /// Number of nodes (N, 2 ≤ T ≤ N ≤ 255) [default: 5].
    #[arg(long, short = 'n', value_name = "N", value_parser = Setting::Nodes.parser::<usize>())]
    pub(crate) nodes: Option<usize>,
    /// Shares needed to reconstruct an image or evaluate the OPRF (T); the secure ranking
    /// needs 2T − 1 servers [default: 3].
    #[arg(long, short = 't', value_name = "T", value_parser = Setting::Threshold.parser::<usize>())]
    pub(crate) threshold: Option<usize>,
    /// Seed of every random choice (the same seed gives the same JSON apart from the measured
    /// times: keys ending in `_ms` and `cpu_ns`) [default: 0].
    #[arg(long, value_name = "SEED")]
    pub(crate) seed: Option<u64>,
    /// Output folder (created if missing; must be writable) [default: output/figures/dealer_free].
    #[arg(long, short = 'o', value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
    /// Figure sets to produce, comma-separated, of stage_communication, dkg_overhead,
    /// stage_latency, batching, fault_tolerance, scaling; or none (with --mpc-query-image:
    /// the comparison alone; with --cluster: the cluster_stages figure alone, which --cluster
    /// always writes) [default: all; with --mpc-query-image or --cluster: none].
    #[arg(long, value_name = "SETS", value_delimiter = ',')]
    pub(crate) figures: Option<Vec<String>>,
    /// Stages the stage figures show, comma-separated, of dkg, stage1, stage2 (the DKG brings
    /// the dealer's key setup beside it) [default: dkg,stage1,stage2].
    #[arg(long, value_name = "STAGES", value_delimiter = ',')]
    pub(crate) stages: Option<Vec<String>>,
    /// Network presets of the latency figures, comma-separated, of lan, wan [default: lan,wan].
    #[arg(long, value_name = "PRESETS", value_delimiter = ',')]
    pub(crate) network: Option<Vec<String>>,
    /// Node counts of the DKG-overhead figure, comma-separated, 3 to 255 each
    /// [default: 3,5,8,16,32,64].
    #[arg(long, value_name = "N", value_delimiter = ',')]
    pub(crate) dkg_nodes: Option<Vec<u32>>,
    /// Images per token request of the batching figure, comma-separated, at least 1 each
    /// [default: 1,2,4,8,16,32].
    #[arg(long, value_name = "B", value_delimiter = ',')]
    pub(crate) batch_sizes: Option<Vec<usize>>,
    /// Node counts of the scaling figure, comma-separated, 3 to 64 each; the secure search at
    /// n nodes uses t = ceil(n/2) [default: 3,5,9,17,33,64].
    #[arg(long, value_name = "N", value_delimiter = ',')]
    pub(crate) scale_nodes: Option<Vec<u32>>,
    /// Stored-image counts of the scaling figure, comma-separated, 1 to 200000 each (the real
    /// images first, synthetic ones after) [default: 100,1000,3000].
    #[arg(long, value_name = "M", value_delimiter = ',')]
    pub(crate) scale_images: Option<Vec<usize>>,
    /// The query image of the secure-ranking comparison.
    #[arg(long, value_name = "FILE")]
    pub(crate) mpc_query_image: Option<PathBuf>,
    /// Servers of the secure ranking, comma-separated node ids; at least 2T − 1 [default: all
    /// N nodes].
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    pub(crate) mpc_servers: Option<Vec<u32>>,
    /// Keep at most this many matches (at least 1) [default: 10].
    #[arg(long, value_name = "K", value_parser = Setting::Topk.parser::<usize>())]
    pub(crate) mpc_topk: Option<usize>,
    /// Candidates share at least this many bands with the query (0 to 8; 0 ranks every image)
    /// [default: 1].
    #[arg(long, value_name = "V", value_parser = Setting::MinBandVotes.parser::<u32>())]
    pub(crate) mpc_min_band_votes: Option<u32>,
    /// Keep matches within this Hamming distance (0 to 64) [default: 64].
    #[arg(long, value_name = "H", value_parser = Setting::MaxHamming.parser::<u32>())]
    pub(crate) mpc_max_hamming: Option<u32>,
    /// Also measure Stage-1 and Stage-2 on the RUNNING cluster of this folder (started with
    /// `cluster up --dir DIR`; (t, n) are read from it) and write cluster_stages.{csv,svg,png}
    /// with the measured costs beside the simulated ones (not a figure set of --figures:
    /// written whenever --cluster is given).
    #[arg(long, value_name = "DIR")]
    pub(crate) cluster: Option<PathBuf>,
    /// `--cluster`: search by this many of the images (each search then gets its top hit)
    /// [default: 10, or fewer when there are fewer images].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub(crate) cluster_queries: Option<u64>,
}

/// Which imagehash function to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Algo {
    /// `imagehash.phash` (DCT).
    Phash,
    /// `imagehash.dhash` (gradient).
    Dhash,
    /// `imagehash.average_hash` (mean).
    Ahash,
}

#[derive(Debug, clap::Args)]
pub(crate) struct PhashArgs {
    /// The hash algorithm.
    #[arg(long, value_enum, default_value = "phash")]
    pub(crate) algo: Algo,
    /// Print one JSON object per image (`{"path", "algo", "hash"}`) instead of text; each
    /// failure is then a `{"path", "error"}` object on stderr, one per line.
    #[arg(long)]
    pub(crate) json: bool,
    /// Image files or directories.
    #[arg(required = true, value_name = "FILE_OR_DIR")]
    pub(crate) paths: Vec<PathBuf>,
}

/// A primitive that `bench` can measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub(crate) enum Primitive {
    /// Perceptual hashing: decoded images, and open + decode + hash.
    Phash,
    /// The band index: ranked queries and the exhaustive scan.
    Index,
    /// Shamir secret sharing over GF(2^8): split and combine of 1 MiB secrets.
    #[value(name = "shamir-gf256")]
    ShamirGf256,
    /// The RFC 9497 VOPRF (ristretto255-SHA512): server evaluation and client finalize.
    #[value(name = "voprf-ristretto255")]
    VoprfRistretto255,
    /// The threshold VOPRF: one node's partial evaluation and the client's combination.
    #[value(name = "threshold-voprf")]
    ThresholdVoprf,
    /// Distributed key generation: a whole run, all nodes in one process.
    Dkg,
    /// The secure ranking: a node's masked distance shares and a whole query, in process.
    #[value(name = "secure-ranking")]
    SecureRanking,
    /// A local cluster of real node processes over loopback: ingest throughput, search
    /// latency under concurrent clients, and a soak run (only when asked for by name).
    Cluster,
}

#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// Primitives to measure (default: all).
    #[arg(value_enum)]
    pub(crate) primitives: Vec<Primitive>,
    /// Shorter runs and smaller inputs, for a quick look.
    #[arg(long)]
    pub(crate) quick: bool,
    /// Print one JSON object per measurement and nothing else on stdout.
    #[arg(long)]
    pub(crate) json: bool,
    /// Worker threads (default 1: single-core figures).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub(crate) threads: u16,
    /// Folder of images for the `phash` primitive (default: the bundled samples).
    #[arg(long, value_name = "DIR")]
    pub(crate) images: Option<PathBuf>,
    /// Index sizes for the `index` primitive (default 1000000; 100000 with --quick).
    #[arg(long, value_name = "N", value_delimiter = ',')]
    pub(crate) entries: Vec<usize>,
    /// Node counts for the `dkg` primitive, t = floor(n/2) + 1 (default 5,16,32,64; 5,16 with
    /// --quick).
    #[arg(long = "n", value_name = "N", value_delimiter = ',')]
    pub(crate) dkg_nodes: Vec<usize>,
    /// `cluster`: nodes of the local cluster (t = floor(n/2) + 1).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u8).range(3..=32))]
    pub(crate) cluster_nodes: u8,
    /// `cluster`: fixture images ingested to measure ingest throughput (default 640; 96 with
    /// --quick).
    #[arg(long, value_name = "N")]
    pub(crate) ingest_images: Option<usize>,
    /// `cluster`: images stored when search latency is measured, the rest synthetic
    /// (default 10000; 1000 with --quick).
    #[arg(long, value_name = "N")]
    pub(crate) stored: Option<usize>,
    /// `cluster`: concurrent clients of the search measurements.
    #[arg(long, value_name = "N", value_delimiter = ',', default_values_t = [1, 16])]
    pub(crate) clients: Vec<usize>,
    /// `cluster`: seconds of searches per client count (default 10; 3 with --quick).
    #[arg(long, value_name = "SECS")]
    pub(crate) duration: Option<u64>,
    /// `cluster`: then run 16 clients for SECS seconds of mixed search, ingest and get,
    /// checking every image read back (the soak mode; 300 for five minutes).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub(crate) soak: u64,
    /// `cluster`: instead of the fill, mask, search and soak steps, run SECS seconds of one
    /// authorised client abusing the nodes (oversized and unauthorised bodies, 5 ms deadlines,
    /// duplicate-id exports, zero-vote candidates, token and fresh-id floods) beside four
    /// honest searching clients, then SECS seconds of the same clients beside a harmless one;
    /// fails if any abuse is answered OK.
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub(crate) hostile: u64,
}
