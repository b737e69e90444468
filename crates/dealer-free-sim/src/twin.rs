//! The simulator's run of what `experiment --cluster` asks of a running cluster, message for
//! message, so that the bytes the simulator counts can be set beside the bytes the cluster
//! client sent and received ([`twin_run`], [`tally`]).
//!
//! The twin does what the cluster client does: each image ingested alone (one token request
//! of that image to the first `t` nodes, the payload not deflated, the image split with the
//! default options, one [`dealer_free::record::StoredRecord`] to every node), then each query
//! searched among all `n` nodes with a dealing of exactly the masks it needs. Its messages are
//! the encodings the nodes send; on a fault-free run of a fresh cluster the counts are equal
//! kind by kind.

use std::collections::BTreeMap;

use dealer_free::wire::MessageKind;
use phr_sis::{ImageHash, NodeId, SearchParams, Threshold};
use rand::CryptoRng;

use crate::SimError;
use crate::deployment::{IngestImage, IngestOptions, LocalDeployment};
use crate::ranking::rank_candidates_secure_recorded;
use crate::trace::{Party, Stage, StageRecorder, Trace};

/// Messages and bytes of one kind in one direction (seen from the client).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindTally {
    /// Messages.
    pub messages: u64,
    /// Bytes of their encodings.
    pub bytes: u64,
}

/// Whether a message went to or from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Way {
    /// Client to a node.
    Sent,
    /// A node to the client.
    Received,
}

/// The twin of a cluster run: Stage-1 of every image alone, then Stage-2 of the first
/// `queries` images.
///
/// # Errors
/// As [`LocalDeployment::create`], [`LocalDeployment::ingest_with`] and
/// [`rank_candidates_secure_recorded`].
pub fn twin_run<R: CryptoRng + ?Sized>(
    threshold: Threshold,
    images: &[(Vec<u8>, ImageHash)],
    queries: usize,
    params: &SearchParams,
    rng: &mut R,
) -> Result<Trace, SimError> {
    let mut deployment = LocalDeployment::create(threshold, None, rng)?;
    let mut trace = Trace::new();
    let options = IngestOptions {
        batch_images: 1,
        padded: false,
        compress: false,
        ..IngestOptions::default()
    };
    {
        let mut rec = StageRecorder::new(&mut trace, Stage::Stage1);
        for (bytes, hash) in images {
            let image = IngestImage { bytes, hash: *hash };
            deployment.ingest_with(std::slice::from_ref(&image), &options, rng, &mut rec)?;
        }
    }
    let servers: Vec<NodeId> = threshold.nodes().collect();
    let no_faults = BTreeMap::new();
    let mut rec = StageRecorder::new(&mut trace, Stage::Stage2);
    for (_, hash) in images.iter().take(queries) {
        rank_candidates_secure_recorded(
            &deployment,
            *hash,
            &servers,
            params,
            &no_faults,
            rng,
            &mut rec,
        )?;
    }
    Ok(trace)
}

/// The messages of `stage` in `trace` that went to or from the client and have a wire kind,
/// by kind and direction.
#[must_use]
pub fn tally(trace: &Trace, stage: Stage) -> BTreeMap<(MessageKind, Way), KindTally> {
    let mut out: BTreeMap<(MessageKind, Way), KindTally> = BTreeMap::new();
    for m in trace.messages.iter().filter(|m| m.stage == stage) {
        let way = match (m.from, m.to) {
            (Party::Client, _) => Way::Sent,
            (_, Party::Client) => Way::Received,
            _ => continue,
        };
        let Some(kind) = m.kind else { continue };
        let t = out.entry((kind, way)).or_default();
        t.messages += 1;
        t.bytes += m.bytes as u64;
    }
    out
}
