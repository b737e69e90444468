//! The command line: every subcommand and flag (clap derive).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

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
    /// gif, bmp, tif, tiff, webp) are taken from them. Images are hashed in parallel.
    Phash(PhashArgs),
    /// Measure the speed of each primitive on this machine (like `openssl speed`).
    Bench(BenchArgs),
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
    /// Print one JSON object per image (`{"path", "algo", "hash"}`) instead of text.
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
}
