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
use crate::manifest::{Manifest, ManifestError, MembershipError};

/// Loads the manifest at `path` and checks that it is for `threshold` and lists node `id`
/// with `own` keys and the certificate at `cert`.
pub(super) fn load_own(
    path: &Path,
    id: NodeId,
    threshold: Threshold,
    own: &NodePublicKeys,
    cert: &Path,
) -> Result<Manifest, NodeError> {
    let manifest = match Manifest::load(path) {
        Err(ManifestError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(NodeError::NotReady(format!(
                "{}: node {id} has no approved enrolment manifest: run `dealer-free-sis node \
                 approve --dir <node folder> --manifest <manifest.json>`",
                path.display()
            )));
        }
        other => other?,
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrol::{NodeInit, init_node};
    use crate::secrets::{AtRestKey, NodeSecrets};

    #[test]
    fn a_node_starts_only_with_a_manifest_that_lists_it_as_it_is()
    -> Result<(), Box<dyn std::error::Error>> {
        let temp = tempfile::tempdir()?;
        let mut records = Vec::new();
        for i in 1..=3u8 {
            records.push(init_node(
                &temp.path().join(format!("n{i}")),
                &NodeInit {
                    id: NodeId::new(i)?,
                    address: String::new(),
                    hosts: Vec::new(),
                    replace: false,
                },
            )?);
        }
        let dir = temp.path().join("n1");
        let id = NodeId::new(1)?;
        let key = AtRestKey::from_hex(&std::fs::read_to_string(dir.join("at-rest.key"))?)?;
        let own = NodeSecrets::open(&dir.join("data"), id, &key)?
            .ok_or("no secrets")?
            .keys
            .public();
        let threshold = Threshold::new(2, 3)?;
        let path = dir.join("manifest.json");
        let cert = dir.join("node.pem");
        // No manifest: not ready, and it says what to run.
        assert!(matches!(
            load_own(&path, id, threshold, &own, &cert),
            Err(NodeError::NotReady(m)) if m.contains("node approve")
        ));
        let manifest = Manifest::new(threshold, records.clone())?;
        manifest.save(&path)?;
        load_own(&path, id, threshold, &own, &cert)?;
        // Another (t, n), another node's keys in its place, another certificate: refused.
        assert!(load_own(&path, id, Threshold::new(3, 3)?, &own, &cert).is_err());
        let mut swapped = records[1].clone();
        swapped.node = 1;
        manifest.with_member(swapped)?.save(&path)?;
        assert!(matches!(
            load_own(&path, id, threshold, &own, &cert),
            Err(NodeError::Membership(MembershipError::NotOwn { node, .. })) if node == id
        ));
        manifest.save(&path)?;
        let other_cert = temp.path().join("n2/node.pem");
        assert!(matches!(
            load_own(&path, id, threshold, &own, &other_cert),
            Err(NodeError::Membership(MembershipError::NotOwn { .. }))
        ));
        Ok(())
    }
}
