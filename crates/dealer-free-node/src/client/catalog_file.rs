//! The owner's catalog (`catalog.json` beside the client profile): for each stored image, the
//! absolute path it was ingested from and the SHA-256 of its bytes, and the deletes some node
//! has not yet acknowledged. It never leaves the owner's machine: file names and content
//! hashes never reach a node, so no node can match two owners' images by content.
//!
//! Changes go through [`Catalog::update`], which holds an exclusive lock on
//! `catalog.json.lock` across read, change and atomic write, so two commands at once never
//! lose each other's entries. A catalog that does not parse is an error, never read as empty
//! (and so never overwritten). The file is written mode 0600: it lists the owner's files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use phr_sis::{ImageId, NodeId};
use serde::{Deserialize, Serialize};

use super::ClientError;

/// The catalog's format version.
const VERSION: u32 = 2;

/// What the catalog knows of one stored image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogEntry {
    /// The absolute path it was ingested from.
    pub path: PathBuf,
    /// SHA-256 of the file's bytes (hex); absent for entries of an older catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// The owner's catalog.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    /// Every stored image the owner ingested from this profile.
    pub images: BTreeMap<ImageId, CatalogEntry>,
    /// Deletes not yet acknowledged, with the nodes that still owe them.
    pub pending_deletes: BTreeMap<ImageId, BTreeSet<NodeId>>,
}

/// The catalog as written: ids as 16 hex digits, nodes as numbers.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    version: u32,
    #[serde(default)]
    images: BTreeMap<String, CatalogEntry>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pending_deletes: BTreeMap<String, BTreeSet<u8>>,
}

/// The catalog of the first versions: id → path as given.
type CatalogV1 = BTreeMap<String, String>;

impl Catalog {
    /// Reads the catalog at `path` (empty when there is none).
    ///
    /// # Errors
    /// [`ClientError::Catalog`] if it cannot be read or does not parse.
    pub fn load(path: &Path) -> Result<Catalog, ClientError> {
        let bad = |reason: String| ClientError::Catalog {
            path: path.to_owned(),
            reason,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Catalog::default()),
            Err(e) => return Err(bad(e.to_string())),
        };
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if value.get("version").is_some() {
            let f: CatalogFile = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
            if f.version > VERSION {
                return Err(bad(format!(
                    "format version {} is newer than this build's {VERSION}",
                    f.version
                )));
            }
            let mut c = Catalog::default();
            for (id, entry) in f.images {
                c.images
                    .insert(id.parse().map_err(|e| bad(format!("{e}")))?, entry);
            }
            for (id, nodes) in f.pending_deletes {
                let nodes = nodes
                    .into_iter()
                    .map(NodeId::new)
                    .collect::<Result<BTreeSet<_>, _>>()
                    .map_err(|e| bad(e.to_string()))?;
                c.pending_deletes
                    .insert(id.parse().map_err(|e| bad(format!("{e}")))?, nodes);
            }
            return Ok(c);
        }
        let old: CatalogV1 = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
        let mut c = Catalog::default();
        for (id, p) in old {
            let id: ImageId = id.parse().map_err(|e| bad(format!("{e}")))?;
            c.images.insert(
                id,
                CatalogEntry {
                    path: PathBuf::from(p),
                    sha256: None,
                },
            );
        }
        Ok(c)
    }

    /// Reads the catalog at `path`, applies `change` and writes it back, holding its lock
    /// throughout; returns what `change` returned.
    ///
    /// # Errors
    /// [`ClientError::Catalog`] if it cannot be locked, read or written.
    pub fn update<T>(
        path: &Path,
        change: impl FnOnce(&mut Catalog) -> T,
    ) -> Result<T, ClientError> {
        let bad = |reason: String| ClientError::Catalog {
            path: path.to_owned(),
            reason,
        };
        let mut lock_path = path.as_os_str().to_owned();
        lock_path.push(".lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| bad(format!("cannot open its lock: {e}")))?;
        lock.lock()
            .map_err(|e| bad(format!("cannot lock it: {e}")))?;
        let mut catalog = Catalog::load(path)?;
        let out = change(&mut catalog);
        catalog.pending_deletes.retain(|_, nodes| !nodes.is_empty());
        let file = CatalogFile {
            version: VERSION,
            images: catalog
                .images
                .iter()
                .map(|(id, e)| (id.to_string(), e.clone()))
                .collect(),
            pending_deletes: catalog
                .pending_deletes
                .iter()
                .map(|(id, nodes)| (id.to_string(), nodes.iter().map(|n| n.get()).collect()))
                .collect(),
        };
        let text = serde_json::to_vec_pretty(&file).map_err(|e| bad(e.to_string()))?;
        crate::files::write_secret(path, &text).map_err(|e| bad(e.to_string()))?;
        drop(lock);
        Ok(out)
    }

    /// The hash by which the catalog knows a file's bytes (SHA-256, hex).
    #[must_use]
    pub fn content_hash(bytes: &[u8]) -> String {
        use sha2::Digest;
        crate::hex(&sha2::Sha256::digest(bytes))
    }

    /// The id already stored with these bytes (by SHA-256), if any.
    #[must_use]
    pub fn find_content(&self, sha256: &str) -> Option<ImageId> {
        self.images
            .iter()
            .find(|(_, e)| e.sha256.as_deref() == Some(sha256))
            .map(|(id, _)| *id)
    }

    /// The path an id was ingested from.
    #[must_use]
    pub fn path_of(&self, id: ImageId) -> Option<&Path> {
        self.images.get(&id).map(|e| e.path.as_path())
    }

    /// Ids with a delete some node still owes.
    #[must_use]
    pub fn pending_ids(&self) -> BTreeSet<ImageId> {
        self.pending_deletes.keys().copied().collect()
    }
}
