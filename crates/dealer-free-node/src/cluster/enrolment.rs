//! Enrolment in a local cluster: each node's keys made in its own folder, the manifest built
//! from their public records, and each node's approval of it.
//!
//! What holds: [`ClusterDir::init_node`] runs `node init` ([`crate::enrol::init_node`]) in
//! the node's folder, so the node's private keys are written there and nowhere else; the
//! cluster folder receives only the public [`Enrolment`] records, from which it writes
//! `DIR/manifest.json`; then every node folder approves the manifest
//! ([`crate::enrol::approve`], with the digest the cluster computed), exactly as an operator
//! would on the node's machine. A replacement ([`ClusterDir::reenrol`]) changes the
//! manifest's record of one node id and nothing else, and every node folder approves the new
//! manifest before any resharing starts.

use std::path::Path;

use phr_sis::{NodeId, Threshold};

use super::{ClusterDir, ClusterError};
use crate::enrol::{Approval, NodeInit, approve, init_node};
use crate::manifest::{Enrolment, Manifest};

impl ClusterDir {
    /// `DIR/manifest.json`: the enrolment manifest the client pins.
    #[must_use]
    pub fn manifest_path(&self) -> std::path::PathBuf {
        self.dir.join("manifest.json")
    }

    /// `node init` in node `id`'s folder, for a node listening at `address`.
    pub(super) fn init_node(
        &self,
        id: u8,
        address: &str,
        replace: bool,
    ) -> Result<Enrolment, ClusterError> {
        let node = NodeId::new(id).map_err(|e| ClusterError::Usage(e.to_string()))?;
        let host = address
            .rsplit_once(':')
            .map_or(address, |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']');
        Ok(init_node(
            &self.node_dir(id),
            &NodeInit {
                id: node,
                address: address.to_owned(),
                hosts: vec![host.to_owned()],
                replace,
            },
        )?)
    }

    /// Writes the manifest of `records` and has every node folder approve it.
    pub(super) fn enrol(
        &self,
        threshold: Threshold,
        records: Vec<Enrolment>,
    ) -> Result<Manifest, ClusterError> {
        let manifest = Manifest::new(threshold, records)?;
        manifest.save(&self.manifest_path())?;
        self.approve_everywhere(&manifest)?;
        Ok(manifest)
    }

    /// `node approve` of `manifest` in every node folder, each checking the digest the
    /// cluster computed; returns each node's approval.
    ///
    /// # Errors
    /// [`ClusterError::Enrol`] naming the node folder that refused it.
    pub fn approve_everywhere(&self, manifest: &Manifest) -> Result<Vec<Approval>, ClusterError> {
        let digest = manifest.digest_hex();
        (1..=manifest.nodes)
            .map(|id| Ok(approve(&self.node_dir(id), manifest, Some(&digest))?))
            .collect()
    }

    /// New keys for node `id` (at `address`) made in its folder, the manifest's record of
    /// `id` replaced by the new one, and the new manifest approved in every node folder.
    ///
    /// # Errors
    /// [`ClusterError::Enrol`], [`ClusterError::Manifest`].
    pub fn reenrol(&self, id: u8, address: &str) -> Result<Manifest, ClusterError> {
        let record = self.init_node(id, address, true)?;
        let manifest = Manifest::load(&self.manifest_path())?.with_member(record)?;
        manifest.save(&self.manifest_path())?;
        self.approve_everywhere(&manifest)?;
        Ok(manifest)
    }

    /// Builds `DIR/manifest.json` from the public records `records` (`enrolment.json` files
    /// that `node init` wrote on the nodes' machines): a manifest that exists keeps its other
    /// nodes' records; without one, every node 1 to `n` needs a record. Nothing is approved
    /// here: each node's operator approves the result on the node's machine. Returns the
    /// manifest and the nodes whose record changed.
    ///
    /// # Errors
    /// [`ClusterError::Usage`] for a folder that is no cluster or a record of another `n`;
    /// [`ClusterError::Manifest`] for a record that does not parse or nodes left out.
    pub fn enrol_records(&self, records: &[&Path]) -> Result<(Manifest, Vec<u8>), ClusterError> {
        let file = self.read()?;
        let threshold = Threshold::new(file.threshold, file.nodes)
            .map_err(|e| ClusterError::Usage(e.to_string()))?;
        let mut loaded = Vec::new();
        for path in records {
            loaded.push(Enrolment::load(path)?);
        }
        let path = self.manifest_path();
        let old = if path.exists() {
            Some(Manifest::load(&path)?)
        } else {
            None
        };
        let manifest = match &old {
            Some(old) => loaded
                .iter()
                .try_fold(old.clone(), |m, r| m.with_member(r.clone()))?,
            None => Manifest::new(threshold, loaded)?,
        };
        let changed = manifest
            .members
            .iter()
            .filter(|m| {
                old.as_ref()
                    .and_then(|o| o.members.iter().find(|x| x.node == m.node))
                    != Some(*m)
            })
            .map(|m| m.node)
            .collect();
        manifest.save(&path)?;
        Ok((manifest, changed))
    }
}
