//! `node init` and `node approve`: a node's keys made on its own machine, and the manifest
//! change its operator approves there.
//!
//! What holds:
//!
//! * [`init_node`] makes, in the node's folder and nowhere else, the node's TLS key pair with a
//!   self-signed certificate ([`crate::pki::self_signed_node`]), its at-rest key, and its
//!   identity and store MAC keys sealed under the at-rest key in `data/secrets.bin`. Every
//!   private file is written with mode `0600` from its first byte ([`crate::files`]). What it
//!   returns and writes to `enrolment.json` is public: id, address, identity public keys and
//!   the certificate's fingerprint ([`Enrolment`]). It never overwrites keys a node already
//!   has unless told to ([`NodeInit::replace`], for `cluster replace`), and even then not a
//!   data folder that still holds secrets.
//! * [`approve`] installs a new manifest as the node's approved one (`manifest.json` in its
//!   folder) only if it lists this node exactly as the node's own record says (its keys, its
//!   certificate's fingerprint), keeps `(t, n)`, and — when the operator gives the digest
//!   they compared out of band — has that digest. A node takes part in a DKG or a resharing
//!   only with the keys of its approved manifest (`crate::state`).

use std::path::{Path, PathBuf};

use phr_sis::NodeId;

use crate::manifest::{Enrolment, Manifest, ManifestError, MembershipError};
use crate::pki::{PkiError, fingerprint_pem, self_signed_node};
use crate::secrets::{AtRestKey, NodeSecrets, SecretsError, secrets_path};

/// The node's public enrolment record in its folder.
pub const ENROLMENT_FILE: &str = "enrolment.json";
/// The node's approved manifest in its folder.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Errors of `node init` and `node approve`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnrolError {
    /// The folder is not in a state that allows it.
    #[error("{0}")]
    Usage(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The certificate could not be made or read.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// The sealed secrets could not be written.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    /// The manifest or the record is unusable.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The manifest does not list this node as it is.
    #[error(transparent)]
    Membership(#[from] MembershipError),
    /// The manifest's digest is not the one the operator compared.
    #[error("the manifest's digest is {found}, not the {expected} you were given: not approved")]
    DigestMismatch {
        /// The digest the operator gave.
        expected: String,
        /// The manifest's.
        found: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EnrolError + '_ {
    move |source| EnrolError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What `node init` is asked for.
#[derive(Debug, Clone)]
pub struct NodeInit {
    /// The node's id.
    pub id: NodeId,
    /// `host:port` where it will listen (informational, in the record).
    pub address: String,
    /// Extra names for its certificate (host names or IP addresses).
    pub hosts: Vec<String>,
    /// Replace the TLS key, certificate and at-rest key the folder holds (a node being
    /// replaced); its data folder must hold no secrets any more.
    pub replace: bool,
}

/// Makes node `options.id`'s keys in `dir` (see the module docs) and returns its public
/// record, also written to `dir/enrolment.json`.
///
/// # Errors
/// [`EnrolError::Usage`] if the folder already holds keys (without `replace`) or its data
/// folder holds secrets; I/O, certificate and secrets errors.
pub fn init_node(dir: &Path, options: &NodeInit) -> Result<Enrolment, EnrolError> {
    let data = dir.join("data");
    let key_path = dir.join("node.key");
    if secrets_path(&data).exists() {
        return Err(EnrolError::Usage(format!(
            "{} holds a node's secrets already: move the data folder aside first (cluster \
             replace does)",
            secrets_path(&data).display()
        )));
    }
    if key_path.exists() && !options.replace {
        return Err(EnrolError::Usage(format!(
            "{} exists: this folder has a node already",
            key_path.display()
        )));
    }
    std::fs::create_dir_all(&data).map_err(io(&data))?;
    crate::files::ignore_folder(dir).map_err(io(dir))?;
    let id = options.id;
    let cert = self_signed_node(id.get(), &options.hosts)?;
    crate::files::write_secret(&key_path, cert.key_pem.as_bytes()).map_err(io(&key_path))?;
    let pem_path = dir.join("node.pem");
    crate::files::write_atomic(&pem_path, cert.cert_pem.as_bytes()).map_err(io(&pem_path))?;
    let mut rng = rand::rng();
    let at_rest = AtRestKey::generate(&mut rng);
    let at_rest_path = dir.join("at-rest.key");
    crate::files::write_secret(&at_rest_path, at_rest.to_hex().as_bytes())
        .map_err(io(&at_rest_path))?;
    let secrets = NodeSecrets::generate(id, &mut rng);
    secrets.save(&data, &at_rest, &mut rng)?;
    let record = Enrolment::new(
        id,
        &secrets.keys.public(),
        &cert.fingerprint,
        &options.address,
    );
    write_record(&dir.join(ENROLMENT_FILE), &record)?;
    Ok(record)
}

fn write_record(path: &Path, record: &Enrolment) -> Result<(), EnrolError> {
    let text = serde_json::to_string_pretty(record)
        .map_err(|e| EnrolError::Usage(format!("encoding the record: {e}")))?;
    crate::files::write_atomic(path, format!("{text}\n").as_bytes()).map_err(io(path))
}

/// What [`approve`] installed.
#[derive(Debug, Clone)]
pub struct Approval {
    /// The node.
    pub node: NodeId,
    /// The approved manifest's digest.
    pub digest: String,
    /// The nodes whose keys or certificate the new manifest changes (all of them when the
    /// node had no manifest yet).
    pub changed: Vec<u8>,
}

/// Installs `manifest` as the approved manifest of the node in `dir` (see the module docs);
/// `expect_digest`, when given, must be its digest.
///
/// # Errors
/// [`EnrolError::DigestMismatch`]; [`EnrolError::Membership`] if the manifest's entry for
/// this node is not its own record or its certificate; [`EnrolError::Usage`] for a change of
/// `(t, n)`; I/O and manifest errors.
pub fn approve(
    dir: &Path,
    manifest: &Manifest,
    expect_digest: Option<&str>,
) -> Result<Approval, EnrolError> {
    let digest = manifest.digest_hex();
    if let Some(expected) = expect_digest {
        let normal = |d: &str| d.trim().trim_start_matches("sha256:").to_ascii_lowercase();
        if normal(expected) != normal(&digest) {
            return Err(EnrolError::DigestMismatch {
                expected: expected.to_owned(),
                found: digest,
            });
        }
    }
    let own = Enrolment::load(&dir.join(ENROLMENT_FILE))?;
    let id = own.id().map_err(EnrolError::Usage)?;
    let not_own = |what: String| EnrolError::Membership(MembershipError::NotOwn { node: id, what });
    let entry = manifest
        .member(id)
        .ok_or_else(|| not_own("the manifest does not list it".into()))?;
    if entry.identity != own.identity {
        return Err(not_own(
            "other identity keys than the node's own record".into(),
        ));
    }
    let pem_path = dir.join("node.pem");
    let pem = std::fs::read_to_string(&pem_path).map_err(io(&pem_path))?;
    let fingerprint = fingerprint_pem(&pem)?;
    if entry.tls_fingerprint != fingerprint || own.tls_fingerprint != fingerprint {
        return Err(not_own(format!(
            "the manifest pins certificate {}, the node's certificate is {fingerprint}",
            entry.tls_fingerprint
        )));
    }
    let path = dir.join(MANIFEST_FILE);
    let changed = match Manifest::load(&path) {
        Ok(old) => {
            if (old.threshold, old.nodes) != (manifest.threshold, manifest.nodes) {
                return Err(EnrolError::Usage(format!(
                    "the manifest is for t = {} of n = {}, this node's for t = {} of n = {}",
                    manifest.threshold, manifest.nodes, old.threshold, old.nodes
                )));
            }
            manifest
                .members
                .iter()
                .filter(|m| {
                    old.members
                        .iter()
                        .find(|o| o.node == m.node)
                        .is_none_or(|o| {
                            o.identity != m.identity || o.tls_fingerprint != m.tls_fingerprint
                        })
                })
                .map(|m| m.node)
                .collect()
        }
        Err(ManifestError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            manifest.members.iter().map(|m| m.node).collect()
        }
        Err(e) => return Err(e.into()),
    };
    manifest.save(&path)?;
    Ok(Approval {
        node: id,
        digest,
        changed,
    })
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn init(dir: &Path, id: u8) -> Result<Enrolment, Box<dyn std::error::Error>> {
        Ok(init_node(
            dir,
            &NodeInit {
                id: NodeId::new(id)?,
                address: format!("127.0.0.1:{}", 7000 + u16::from(id)),
                hosts: Vec::new(),
                replace: false,
            },
        )?)
    }

    #[test]
    fn init_keeps_secrets_private_and_approve_checks_the_own_entry()
    -> Result<(), Box<dyn std::error::Error>> {
        let temp = tempfile::tempdir()?;
        let dirs: Vec<PathBuf> = (1..=3).map(|i| temp.path().join(format!("n{i}"))).collect();
        let mut records = Vec::new();
        for (i, dir) in (1..=3).zip(&dirs) {
            records.push(init(dir, i)?);
            for secret in ["node.key", "at-rest.key", "data/secrets.bin"] {
                let mode = std::fs::metadata(dir.join(secret))?.permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{secret}");
            }
        }
        // A second init in the same folder is refused.
        let again = init_node(
            &dirs[0],
            &NodeInit {
                id: NodeId::new(1)?,
                address: String::new(),
                hosts: Vec::new(),
                replace: false,
            },
        );
        assert!(matches!(again, Err(EnrolError::Usage(_))));
        let manifest = Manifest::new(phr_sis::Threshold::new(2, 3)?, records.clone())?;
        let approval = approve(&dirs[0], &manifest, Some(&manifest.digest_hex()))?;
        assert_eq!(approval.changed, vec![1, 2, 3]);
        assert!(matches!(
            approve(&dirs[1], &manifest, Some("sha256:00")),
            Err(EnrolError::DigestMismatch { .. })
        ));
        // A manifest with another node's keys in node 1's place is refused by node 1.
        let mut swapped = records[1].clone();
        swapped.node = 1;
        let forged = manifest.with_member(swapped)?;
        assert!(matches!(
            approve(&dirs[0], &forged, None),
            Err(EnrolError::Membership(MembershipError::NotOwn { .. }))
        ));
        assert_eq!(Manifest::load(&dirs[0].join(MANIFEST_FILE))?, manifest);
        Ok(())
    }
}
