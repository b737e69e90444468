//! The approved enrolment manifest as a node uses it: the one source of its peers' identity
//! keys.
//!
//! What holds: a node starts only if its approved manifest (`manifest` in `node.toml`, written
//! by `node approve`) is for its `(t, n)` and lists it with its own identity keys and its own
//! certificate's fingerprint. It re-reads the manifest when a DKG or a resharing starts (so an
//! approval takes effect without a restart) and takes part only if the participants, or the
//! resharing's receivers and dealers, come with exactly the keys the manifest lists
//! ([`crate::manifest::Manifest::check_members`]); anything else is refused with a
//! [`crate::manifest::MembershipError`] naming the node whose keys differ, before any
//! session starts.

use std::path::Path;

use dealer_free::identity::NodePublicKeys;
use phr_sis::{NodeId, Threshold};

use super::{NodeError, NodeState, invalid};
use crate::manifest::{Manifest, MembershipError};

/// Loads the manifest at `path` and checks that it is for `threshold` and lists node `id`
/// with `own` keys and the certificate at `cert`.
pub(super) fn load_own(
    path: &Path,
    id: NodeId,
    threshold: Threshold,
    own: &NodePublicKeys,
    cert: &Path,
) -> Result<Manifest, NodeError> {
    let manifest = Manifest::load(path)?;
    if (manifest.threshold, manifest.nodes) != (threshold.t(), threshold.n()) {
        return Err(invalid(format!(
            "{}: the manifest is for t = {} of n = {}, the node for t = {} of n = {}",
            path.display(),
            manifest.threshold,
            manifest.nodes,
            threshold.t(),
            threshold.n()
        )));
    }
    let not_own = |what: String| NodeError::Membership(MembershipError::NotOwn { node: id, what });
    let entry = manifest
        .member(id)
        .ok_or_else(|| not_own("the manifest does not list it".into()))?;
    if entry.identity_keys().map_err(&not_own)? != *own {
        return Err(not_own(format!(
            "{} lists other identity keys (run `dealer-free-sis node approve` with the \
             manifest that lists this node's keys)",
            path.display()
        )));
    }
    let pem = std::fs::read_to_string(cert).map_err(|source| NodeError::Io {
        path: cert.to_owned(),
        source,
    })?;
    let fingerprint = crate::pki::fingerprint_pem(&pem)
        .map_err(|e| invalid(format!("{}: {e}", cert.display())))?;
    if entry.tls_fingerprint != fingerprint {
        return Err(not_own(format!(
            "{} pins certificate {}, the node serves {fingerprint}",
            path.display(),
            entry.tls_fingerprint
        )));
    }
    Ok(manifest)
}

impl NodeState {
    /// The node's approved manifest as on disk now, checked to list this node as it is.
    pub(super) fn approved_manifest(&self) -> Result<Manifest, NodeError> {
        let own = self.read_secrets()?.keys.public();
        load_own(
            &self.manifest_path,
            self.id,
            self.threshold,
            &own,
            &self.cert_path,
        )
    }
}
