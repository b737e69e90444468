//! One module per subcommand; each is thin glue over the library crates.

mod bench;
mod capability;
mod catalog;
mod dkg;
mod experiment;
mod net;
mod phash;
mod scrub;
mod shares;

use std::path::{Path, PathBuf};

use anyhow::Context;

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
        Command::Node(args) => net::node(&args),
        Command::Cluster(args) => net::cluster(&args),
        Command::Ingest(args) => net::ingest(&args),
        Command::Search(args) => net::search(&args),
        Command::Get(args) => net::get(&args),
        Command::List(args) => catalog::list(&args),
        Command::Delete(args) => catalog::delete(&args),
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

/// What `phash` and `ingest` say of a folder given in which no image was found.
fn no_images_found(dir: &Path) -> String {
    format!("no images found in {}", dir.display())
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

/// Writes `bytes` to `path` through a temporary file and a rename, so an interrupted run
/// never leaves a half-written file.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        std::io::Write::write_all(&mut f, bytes)?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(anyhow::Error::new(e).context(format!("writing {}", tmp.display())));
    }
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
