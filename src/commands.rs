//! One module per subcommand; each is thin glue over the library crates.

mod bench;
mod dkg;
mod experiment;
mod phash;
mod shares;

use std::path::{Path, PathBuf};

use crate::cli::{Cli, Command};
use crate::{Outcome, UsageError};

/// Runs the parsed command.
pub(crate) fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Phash(args) => phash::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Split(args) => shares::split(&args),
        Command::Combine(args) => shares::combine(&args),
        Command::Dkg(args) => dkg::run(&args),
        Command::Experiment(args) => experiment::run(&args),
    }
}

/// File extensions taken from directories (lower case).
const IMAGE_EXTENSIONS: [&str; 8] = ["png", "jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp"];

/// Whether a path has one of the image extensions.
fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Expands directories (recursively, sorted, image extensions only); files stay as given,
/// in order. A path that cannot be listed is returned as an error entry for the caller to
/// report, so one bad argument never stops the others.
fn expand_paths(paths: &[PathBuf]) -> Vec<Result<PathBuf, (PathBuf, std::io::Error)>> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            walk_dir(path, &mut out);
        } else {
            out.push(Ok(path.clone()));
        }
    }
    out
}

fn walk_dir(dir: &Path, out: &mut Vec<Result<PathBuf, (PathBuf, std::io::Error)>>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            out.push(Err((dir.to_owned(), e)));
            return;
        }
    };
    let mut children: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    children.sort();
    for child in children {
        if child.is_dir() {
            walk_dir(&child, out);
        } else if has_image_extension(&child) {
            out.push(Ok(child));
        }
    }
}

/// The bundled sample images: `./tests/fixtures/images` when run from a checkout, else the
/// copy next to the sources this binary was built from.
fn bundled_images() -> anyhow::Result<PathBuf> {
    let local = PathBuf::from("tests/fixtures/images");
    if local.is_dir() {
        return Ok(local);
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images");
    if built.is_dir() {
        return Ok(built);
    }
    Err(UsageError("the bundled sample images were not found; pass --images DIR".to_owned()).into())
}
