//! The two-phase commit of a resharing, and its resumption after an interruption.
//!
//! Phase one: every receiver seals its new key share beside its old one at the end of round
//! 4 ("prepared") and reports the outcome. The coordinator decides **commit** only if every
//! receiver reported the same outcome; it then writes the decision — the new key state and
//! the resharing's label — to `<key file>.pending` (atomically) *before* sending any commit.
//! Otherwise it decides **roll back**.
//!
//! Phase two: the commit (step 5) to each receiver in id order, or the roll-back (step 6) to
//! every node. When every receiver committed, the new key state replaces the key file and the
//! pending file is removed.
//!
//! Resuming ([`ClusterClient::resume_reshare`], `cluster replace --resume`) after a crash of
//! the coordinator or of nodes: the nodes report in `Health` what they hold prepared. The
//! decision was commit if and only if the pending file names that resharing, or a node
//! already serves with its transcript, or the key file already holds it — a commit is only
//! ever sent after the pending file was written, and only once every receiver had prepared,
//! so then every receiver holds it prepared or committed. Otherwise nobody committed, and
//! rolling back is safe. The resumed decision goes to every node still prepared; both steps
//! are idempotent on the nodes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use phr_sis::NodeId;
use serde::{Deserialize, Serialize};

use super::{ClientError, ClusterClient, ClusterKeyFile, short};
use crate::config::write_atomic;
use crate::failpoint;
use crate::proto;

/// The coordinator's commit decision, written before the first commit is sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PendingReshare {
    /// The resharing's label (hex).
    label: String,
    /// The new key state.
    key: ClusterKeyFile,
}

/// What [`ClusterClient::resume_reshare`] did.
#[derive(Debug, Clone)]
pub struct ResumeOutcome {
    /// The label of the resharing resolved (hex), if one was prepared anywhere.
    pub label: Option<String>,
    /// Whether it was committed (else rolled back, or nothing was pending).
    pub committed: bool,
    /// The nodes told the outcome.
    pub resolved: Vec<NodeId>,
}

fn pending_path(key_file: &Path) -> PathBuf {
    let mut name = key_file.as_os_str().to_owned();
    name.push(".pending");
    PathBuf::from(name)
}

impl ClusterClient {
    /// Phase two of a resharing every receiver prepared with outcome `key` (label `label`):
    /// writes the decision, commits on each receiver in id order, and on success writes the
    /// key file and removes the decision.
    ///
    /// # Errors
    /// [`ClientError::CommitIncomplete`] naming the receivers that did not acknowledge (the
    /// key file holds the new key state; they commit when resumed).
    pub(super) async fn commit_reshare(
        &self,
        label: &[u8],
        key: &ClusterKeyFile,
        receivers: &[NodeId],
    ) -> Result<(), ClientError> {
        let key_path = self.profile.raw.key_file.clone();
        let pending = pending_path(&key_path);
        let decision = PendingReshare {
            label: crate::hex(label),
            key: key.clone(),
        };
        let text = serde_json::to_string_pretty(&decision)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        write_atomic(&pending, text.as_bytes())?;
        let transcript = crate::unhex(&key.transcript)
            .ok_or_else(|| ClientError::Protocol("the transcript is no hex".into()))?;
        let mut committed = Vec::new();
        let mut failed = BTreeMap::new();
        for node in receivers {
            match self.decide(*node, label, &transcript, true).await {
                Ok(()) => {
                    committed.push(*node);
                    failpoint::hit("coordinator-commit", *node);
                }
                Err(e) => {
                    failed.insert(*node, short(&e));
                }
            }
        }
        key.save(&key_path)?;
        if !failed.is_empty() {
            return Err(ClientError::CommitIncomplete {
                committed,
                pending: failed,
            });
        }
        let _ = std::fs::remove_file(&pending);
        Ok(())
    }

    /// Tells every node of `nodes` to roll back the resharing `label`; returns the nodes that
    /// did not acknowledge (they roll back when resumed).
    pub(super) async fn roll_back_reshare(
        &self,
        label: &[u8],
        nodes: &[NodeId],
    ) -> BTreeMap<NodeId, String> {
        let mut failed = BTreeMap::new();
        for node in nodes {
            if let Err(e) = self.decide(*node, label, &[], false).await {
                failed.insert(*node, short(&e));
            }
        }
        failed
    }

    /// Sends node `node` the commit (step 5) of `transcript` or the roll-back (step 6) of the
    /// resharing `label`.
    async fn decide(
        &self,
        node: NodeId,
        label: &[u8],
        transcript: &[u8],
        commit: bool,
    ) -> Result<(), ClientError> {
        let (label, transcript) = (label.to_vec(), transcript.to_vec());
        self.call(node, |m| proto::ReshareRoundRequest {
            meta: Some(m),
            label: label.clone(),
            step: if commit { 5 } else { 6 },
            commit_transcript: transcript.clone(),
            ..Default::default()
        })
        .await
        .map(drop)
    }

    /// Resolves a resharing left prepared by an interruption (module docs): commits it on
    /// every node still prepared if the decision was commit, else rolls it back; updates the
    /// key file and removes the decision file.
    ///
    /// # Errors
    /// [`ClientError::CommitIncomplete`] or [`ClientError::ReshareFailed`] naming the nodes
    /// that did not acknowledge (still prepared: resume again once they answer).
    pub async fn resume_reshare(&self) -> Result<ResumeOutcome, ClientError> {
        let key_path = self.profile.raw.key_file.clone();
        let pending_file = pending_path(&key_path);
        let decision: Option<PendingReshare> = std::fs::read_to_string(&pending_file)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        let key_file = ClusterKeyFile::load(&key_path).ok();
        let ids = self.node_ids();
        let health = self.call_all(&ids, |_, _| proto::HealthRequest {}).await;
        let prepared: Vec<(NodeId, Vec<u8>, Vec<u8>)> = health
            .iter()
            .filter_map(|(id, h)| h.as_ref().ok().map(|h| (*id, h)))
            .filter(|(_, h)| !h.prepared_label.is_empty())
            .map(|(id, h)| (id, h.prepared_label.clone(), h.prepared_transcript.clone()))
            .collect();
        let Some((_, label, transcript)) = prepared.first().cloned().or_else(|| {
            let d = decision.as_ref()?;
            Some((
                NodeId::new(1).ok()?,
                crate::unhex(&d.label)?,
                crate::unhex(&d.key.transcript)?,
            ))
        }) else {
            return Ok(ResumeOutcome {
                label: None,
                committed: false,
                resolved: Vec::new(),
            });
        };
        let hex_transcript = crate::hex(&transcript);
        let decided = decision
            .as_ref()
            .is_some_and(|d| d.label == crate::hex(&label) && d.key.transcript == hex_transcript);
        let serving = health
            .values()
            .filter_map(|h| h.as_ref().ok())
            .any(|h| h.transcript == transcript);
        let in_key_file = key_file
            .as_ref()
            .is_some_and(|k| k.transcript == hex_transcript);
        let commit = decided || serving || in_key_file;
        let nodes: Vec<NodeId> = prepared
            .iter()
            .filter(|(_, l, _)| *l == label)
            .map(|(id, _, _)| *id)
            .collect();
        let mut failed = BTreeMap::new();
        let mut resolved = Vec::new();
        for node in &nodes {
            match self.decide(*node, &label, &transcript, commit).await {
                Ok(()) => resolved.push(*node),
                Err(e) => {
                    failed.insert(*node, short(&e));
                }
            }
        }
        if commit {
            if let Some(d) = decision.as_ref().filter(|_| decided) {
                d.key.save(&key_path)?;
            } else if !in_key_file {
                // The nodes are on the new key, but neither the decision file nor the key
                // file holds its verification shares (the decision file was lost).
                return Err(ClientError::Protocol(format!(
                    "resharing {} is committed on the nodes, but {} does not hold its key \
                     state and no decision file does: restore {} from the machine that \
                     coordinated it",
                    crate::hex(&label),
                    key_path.display(),
                    pending_file.display()
                )));
            }
            if !failed.is_empty() {
                return Err(ClientError::CommitIncomplete {
                    committed: resolved,
                    pending: failed,
                });
            }
        } else if !failed.is_empty() {
            return Err(ClientError::ReshareFailed {
                dropped: failed,
                disagreeing: Vec::new(),
            });
        }
        let _ = std::fs::remove_file(&pending_file);
        Ok(ResumeOutcome {
            label: Some(crate::hex(&label)),
            committed: commit,
            resolved,
        })
    }
}
