//! Flipping a byte of a node's stored share on disk, for the tests of integrity checks.

use std::path::Path;

use dealer_free_node::secrets::{AtRestKey, NodeSecrets};
use phr_sis::store::ShareStore;
use phr_sis::{ImageId, NodeId};

/// Flips one byte inside the share of `image` that node `node` (its folder `dir`) stores;
/// the node must be stopped. The record's bytes are found in the store file by a window of
/// the share.
pub(crate) fn flip_stored_share(
    dir: &Path,
    node: u8,
    image: ImageId,
) -> Result<(), Box<dyn std::error::Error>> {
    let key = AtRestKey::from_hex(&std::fs::read_to_string(dir.join("at-rest.key"))?)?;
    let secrets =
        NodeSecrets::open(&dir.join("data"), NodeId::new(node)?, &key)?.ok_or("no secrets")?;
    let path = dir.join("data/shares.redb");
    let share = ShareStore::open(&path, secrets.mac_key)?
        .get_share(image)?
        .ok_or("no share")?;
    let window = share.get(200..264).ok_or("share too short")?;
    let mut file = std::fs::read(&path)?;
    let at = file
        .windows(window.len())
        .position(|w| w == window)
        .ok_or("share bytes not found in the store file")?;
    if let Some(b) = file.get_mut(at + 10) {
        *b ^= 0x01;
    }
    std::fs::write(&path, file)?;
    Ok(())
}
