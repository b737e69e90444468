//! `dealer-free-sis split` and `combine`: image shares without the search.
//!
//! `split` writes `<name>.<i>.share` for i = 1..N into its folder, each atomically, and then
//! removes that folder's shares of an earlier split of the same file name numbered above N
//! (only files that read as shares; each removal is named on stderr), so the folder never
//! mixes two share sets of one file.

use std::path::{Path, PathBuf};

use anyhow::Context;
use phr_sis::ImageId;
use phr_sis::share::{Padding, Scheme, Share, SplitOptions, reconstruct, split_image};
use rand::Rng;

use super::write_atomically;
use crate::cli::{CombineArgs, PaddingArg, SchemeArg, SplitArgs};
use crate::{Outcome, UsageError};

pub(crate) fn split(args: &SplitArgs) -> anyhow::Result<Outcome> {
    let threshold = crate::allowed::shape(&crate::allowed::Flags, args.threshold, args.nodes)?;
    let image =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let name = args
        .file
        .file_name()
        .ok_or_else(|| UsageError(format!("{}: not a file name", args.file.display())))?
        .to_string_lossy()
        .into_owned();
    let options = SplitOptions {
        scheme: match args.scheme {
            SchemeArg::Shamir => Scheme::Shamir,
            SchemeArg::Compact => Scheme::Compact,
        },
        padding: match args.padding {
            PaddingArg::None => Padding::None,
            PaddingArg::Pow2 => Padding::PowerOfTwo,
            PaddingArg::Eighths => Padding::Eighths,
        },
    };
    let mut rng = rand::rng();
    let id = args.id.unwrap_or_else(|| ImageId(rng.random()));
    let shares = split_image(&image, id, threshold, &options, &mut rng)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    for share in &shares {
        let path = args.out.join(format!("{name}.{}.share", share.index()));
        write_atomically(&path, &share.to_bytes())?;
        println!("{}", path.display());
    }
    remove_stale_shares(&args.out, &name, threshold.n())?;
    eprintln!(
        "split {} ({} bytes, image id {id}) into {} {} shares, any {} reconstruct",
        args.file.display(),
        image.len(),
        shares.len(),
        options.scheme.name(),
        threshold.t()
    );
    Ok(Outcome::Success)
}

/// Removes `dir/<name>.<i>.share` for `i` above `n` (up to 255) where it reads as a share:
/// what an earlier split of the same file into more shares left. Each removal is named on
/// stderr; a file of such a name that is not a share is left and named too.
fn remove_stale_shares(dir: &Path, name: &str, n: u8) -> anyhow::Result<()> {
    for i in u16::from(n) + 1..=255 {
        let path = dir.join(format!("{name}.{i}.share"));
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        if Share::from_bytes(&bytes).is_err() {
            eprintln!(
                "dealer-free-sis: left {}: not a share, though named like one",
                path.display()
            );
            continue;
        }
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        eprintln!(
            "removed {}: a share of an earlier split of {name} (this split has {n} shares)",
            path.display()
        );
    }
    Ok(())
}

pub(crate) fn combine(args: &CombineArgs) -> anyhow::Result<Outcome> {
    let mut shares = Vec::new();
    let mut unreadable = Vec::new();
    for path in &args.shares {
        match std::fs::read(path) {
            Ok(bytes) => match Share::from_bytes(&bytes) {
                Ok(share) => shares.push((path.clone(), share)),
                Err(e) => unreadable.push(format!("{}: {e}", path.display())),
            },
            Err(e) => unreadable.push(format!("{}: {e}", path.display())),
        }
    }
    for message in &unreadable {
        eprintln!("dealer-free-sis: bad share {message}");
    }
    if shares.is_empty() {
        anyhow::bail!("no readable shares; nothing written");
    }
    let path_of = |node| {
        shares
            .iter()
            .find(|(_, s)| s.index() == node)
            .map_or_else(PathBuf::new, |(p, _)| p.clone())
    };
    let list: Vec<Share> = shares.iter().map(|(_, s)| s.clone()).collect();
    match reconstruct(&list) {
        Ok(done) => {
            for bad in &done.rejected {
                eprintln!(
                    "dealer-free-sis: bad share {} (node {}): {}; not used",
                    path_of(bad.node).display(),
                    bad.node,
                    bad.reason
                );
            }
            write_atomically(&args.out, &done.image)?;
            let used: Vec<String> = done.used.iter().map(ToString::to_string).collect();
            eprintln!(
                "reconstructed image {} ({} bytes) from nodes {} into {}",
                done.image_id,
                done.image.len(),
                used.join(","),
                args.out.display()
            );
            Ok(Outcome::Success)
        }
        Err(phr_sis::share::ShareError::NotEnoughValidShares { needed, valid, bad }) => {
            for b in &bad {
                eprintln!(
                    "dealer-free-sis: bad share {} (node {}): {}",
                    path_of(b.node).display(),
                    b.node,
                    b.reason
                );
            }
            anyhow::bail!(
                "only {} valid share{}, {needed} needed; nothing written",
                valid.len(),
                if valid.len() == 1 { "" } else { "s" }
            )
        }
        Err(e) => Err(anyhow::Error::new(e).context("nothing written")),
    }
}
