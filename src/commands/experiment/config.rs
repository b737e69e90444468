//! `experiment --config FILE`: the TOML file of the experiment's settings, and their merge with
//! the command line (a flag given on the command line overrides the file; a setting in neither
//! takes its default).
//!
//! The file's keys are the flags' names with `_` for `-` — `nodes`, `threshold`, `seed`,
//! `images`, `out`, `figures`, `stages`, `network`, `dkg_nodes`, `batch_sizes`, `scale_nodes`,
//! `scale_images`, `cluster`, `cluster_queries` — lists as TOML arrays, and the secure-ranking comparison's settings in an
//! `[mpc]` table: `query_image`, `servers`, `topk`, `min_band_votes`, `max_hamming`. Paths are
//! taken as written, so relative ones are resolved against the current directory. An unknown
//! key is an error.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::usage;
use crate::cli::ExperimentArgs;

/// The default output folder.
pub(super) const DEFAULT_OUT: &str = "output/figures/dealer_free";

/// The settings a `--config` file may hold (every one optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConfigFile {
    nodes: Option<usize>,
    threshold: Option<usize>,
    seed: Option<u64>,
    images: Option<PathBuf>,
    out: Option<PathBuf>,
    figures: Option<Vec<String>>,
    stages: Option<Vec<String>>,
    network: Option<Vec<String>>,
    dkg_nodes: Option<Vec<u32>>,
    batch_sizes: Option<Vec<usize>>,
    scale_nodes: Option<Vec<u32>>,
    scale_images: Option<Vec<usize>>,
    cluster: Option<PathBuf>,
    cluster_queries: Option<u64>,
    mpc: Option<MpcTable>,
}

/// The `[mpc]` table: the secure-ranking comparison.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MpcTable {
    query_image: Option<PathBuf>,
    servers: Option<Vec<u32>>,
    topk: Option<usize>,
    min_band_votes: Option<u32>,
    max_hamming: Option<u32>,
}

/// Reads and parses a config file; every failure is a usage error naming the file.
pub(super) fn load(path: &Path) -> anyhow::Result<ConfigFile> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("--config {}: cannot read it: {e}", path.display())))?;
    parse(&text).map_err(|e| usage(format!("--config {}: {e}", path.display())))
}

/// Parses a config file's text.
pub(super) fn parse(text: &str) -> Result<ConfigFile, String> {
    toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())
}

/// Every setting, merged from the command line, the config file and the defaults; lists left
/// `None` take the library's defaults. Values are not checked yet (that is `plan`'s job), but
/// each remembers whether it came from the file, for the error messages.
#[derive(Debug)]
pub(super) struct Settings {
    file: Option<PathBuf>,
    from_file: BTreeSet<&'static str>,
    pub(super) check: bool,
    pub(super) images: Option<PathBuf>,
    pub(super) nodes: usize,
    pub(super) threshold: usize,
    /// `nodes` and `threshold` were given (flag or file), not defaults.
    pub(super) shape_given: (bool, bool),
    pub(super) seed: u64,
    pub(super) out: PathBuf,
    pub(super) figures: Option<Vec<String>>,
    pub(super) stages: Option<Vec<String>>,
    pub(super) network: Option<Vec<String>>,
    pub(super) dkg_nodes: Option<Vec<u32>>,
    pub(super) batch_sizes: Option<Vec<usize>>,
    pub(super) scale_nodes: Option<Vec<u32>>,
    pub(super) scale_images: Option<Vec<usize>>,
    pub(super) mpc_query_image: Option<PathBuf>,
    pub(super) mpc_servers: Option<Vec<u32>>,
    pub(super) mpc_topk: usize,
    pub(super) mpc_min_band_votes: u32,
    pub(super) mpc_max_hamming: u32,
    pub(super) cluster: Option<PathBuf>,
    pub(super) cluster_queries: Option<u64>,
}

/// The flag's value if given, else the file's (recorded in `from_file`).
fn pick<T: Clone>(
    from_file: &mut BTreeSet<&'static str>,
    flag: &'static str,
    cli: Option<&T>,
    file: Option<T>,
) -> Option<T> {
    match (cli, file) {
        (Some(v), _) => Some(v.clone()),
        (None, Some(v)) => {
            from_file.insert(flag);
            Some(v)
        }
        (None, None) => None,
    }
}

impl Settings {
    /// Merges `args` over the file `args.config` (when given) over the defaults.
    pub(super) fn resolve(args: &ExperimentArgs) -> anyhow::Result<Settings> {
        let file = match &args.config {
            Some(path) => load(path)?,
            None => ConfigFile::default(),
        };
        let mpc = file.mpc.unwrap_or_default();
        let mut f = BTreeSet::new();
        let s = &mut f;
        let nodes = pick(s, "nodes", args.nodes.as_ref(), file.nodes);
        let threshold = pick(s, "threshold", args.threshold.as_ref(), file.threshold);
        let settings = Settings {
            check: args.check,
            images: pick(s, "images", args.images.as_ref(), file.images),
            shape_given: (nodes.is_some(), threshold.is_some()),
            nodes: nodes.unwrap_or(5),
            threshold: threshold.unwrap_or(3),
            seed: pick(s, "seed", args.seed.as_ref(), file.seed).unwrap_or(0),
            out: pick(s, "out", args.out.as_ref(), file.out)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_OUT)),
            figures: pick(s, "figures", args.figures.as_ref(), file.figures),
            stages: pick(s, "stages", args.stages.as_ref(), file.stages),
            network: pick(s, "network", args.network.as_ref(), file.network),
            dkg_nodes: pick(s, "dkg-nodes", args.dkg_nodes.as_ref(), file.dkg_nodes),
            batch_sizes: pick(
                s,
                "batch-sizes",
                args.batch_sizes.as_ref(),
                file.batch_sizes,
            ),
            scale_nodes: pick(
                s,
                "scale-nodes",
                args.scale_nodes.as_ref(),
                file.scale_nodes,
            ),
            scale_images: pick(
                s,
                "scale-images",
                args.scale_images.as_ref(),
                file.scale_images,
            ),
            mpc_query_image: pick(
                s,
                "mpc-query-image",
                args.mpc_query_image.as_ref(),
                mpc.query_image,
            ),
            mpc_servers: pick(s, "mpc-servers", args.mpc_servers.as_ref(), mpc.servers),
            mpc_topk: pick(s, "mpc-topk", args.mpc_topk.as_ref(), mpc.topk).unwrap_or(10),
            mpc_min_band_votes: pick(
                s,
                "mpc-min-band-votes",
                args.mpc_min_band_votes.as_ref(),
                mpc.min_band_votes,
            )
            .unwrap_or(1),
            mpc_max_hamming: pick(
                s,
                "mpc-max-hamming",
                args.mpc_max_hamming.as_ref(),
                mpc.max_hamming,
            )
            .unwrap_or(64),
            cluster: pick(s, "cluster", args.cluster.as_ref(), file.cluster),
            cluster_queries: pick(
                s,
                "cluster-queries",
                args.cluster_queries.as_ref(),
                file.cluster_queries,
            ),
            file: args.config.clone(),
            from_file: BTreeSet::new(),
        };
        let settings = Settings {
            from_file: f,
            ..settings
        };
        settings.check_shared()?;
        Ok(settings)
    }

    /// The settings other commands share, checked by the rules and words they use
    /// ([`crate::allowed`]): (T, N), and the search's topk, min band votes and max Hamming.
    fn check_shared(&self) -> Result<(), crate::UsageError> {
        use crate::allowed::{Setting, shape};
        shape(self, self.threshold, self.nodes)?;
        Setting::Topk.check(&self.label("mpc-topk"), self.mpc_topk)?;
        Setting::MinBandVotes.check(&self.label("mpc-min-band-votes"), self.mpc_min_band_votes)?;
        Setting::MaxHamming.check(&self.label("mpc-max-hamming"), self.mpc_max_hamming)?;
        Ok(())
    }

    /// Where a setting came from, for messages: `--flag`, or `FILE: key` when the file set it.
    pub(super) fn label(&self, flag: &'static str) -> String {
        match &self.file {
            Some(file) if self.from_file.contains(flag) => {
                let key = match flag.strip_prefix("mpc-") {
                    Some(rest) => format!("[mpc] {}", rest.replace('-', "_")),
                    None => flag.replace('-', "_"),
                };
                format!("{}: {key}", file.display())
            }
            _ => format!("--{flag}"),
        }
    }

    /// A setting and its value, for messages: `--flag VALUE` or `FILE: key = VALUE`.
    pub(super) fn show(&self, flag: &'static str, value: impl std::fmt::Display) -> String {
        let label = self.label(flag);
        if label.starts_with("--") {
            format!("{label} {value}")
        } else {
            format!("{label} = {value}")
        }
    }
}

impl crate::allowed::Labels for Settings {
    fn label(&self, flag: &'static str) -> String {
        Settings::label(self, flag)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::parse;

    #[test]
    fn every_key_parses_and_unknown_keys_are_refused() {
        let text = r#"
            nodes = 7
            threshold = 4
            seed = 9
            images = "tests/fixtures/images"
            out = "output/x"
            figures = ["dkg_overhead"]
            stages = ["dkg", "stage2"]
            network = ["wan"]
            dkg_nodes = [3, 5]
            batch_sizes = [1, 4]
            scale_nodes = [3, 5]
            scale_images = [100]
            cluster = "cluster"
            cluster_queries = 4
            [mpc]
            query_image = "q.png"
            servers = [1, 2, 3, 4, 5, 6, 7]
            topk = 4
            min_band_votes = 0
            max_hamming = 30
        "#;
        let file = parse(text).unwrap();
        assert_eq!(file.nodes, Some(7));
        assert_eq!(file.mpc.unwrap().max_hamming, Some(30));
        assert!(parse("nodez = 5").unwrap_err().contains("nodez"));
        assert!(parse("[mpc]\ntop_k = 5").unwrap_err().contains("top_k"));
        assert!(parse("nodes = -1").is_err());
        assert!(parse("figures = \"dkg_overhead\"").is_err());
    }
}
