//! dealer-free-sis in process: the nodes and the client of a dealer-free deployment in one
//! process, driving the sans-IO protocols of `dealer-free` with every message passed through
//! its wire encoding, timed and with its bytes counted.
//!
//! * [`deployment`]: `n` nodes with durable stores, the DKG among them, and Stage-1 (ingest).
//! * [`ranking`]: Stage-2's secure ranking, [`ranking::rank_candidates_secure`], and its
//!   comparison with the plaintext baseline, [`ranking::compare_secure_vs_baseline`] →
//!   [`ranking::SecureDistanceComparison`] (versioned JSON).
//! * [`simulator`]: [`DealerFreeSimulator`], every party driven round by round with each
//!   delivered message and each party's CPU recorded: the DKG (with faulty and crashed
//!   nodes) and the dealer-based baseline of the key setup.
//! * [`trace`]: the records ([`Trace`]: stage, round, sender, recipient, encoded bytes, CPU)
//!   and their serialisable aggregates per stage, round and party.
//! * [`network`]: [`NetworkModel`] (LAN and WAN presets) replaying a trace's rounds as
//!   deterministic wall-clock latency.
//! * [`experiment`]: [`experiment::run_dealer_free_experiment`], the data of every overhead
//!   figure from recorded runs; [`summary`]: `summary.md`.
//! * [`figures`]: charts from plain data, [`figures::write_figure`] → `<name>.json`, `.svg`,
//!   `.png`.
//! * [`report`]: one self-contained `index.html` over written figures,
//!   [`report::write_index_html`].
//!
//! Clocks live here, not in the protocol crates: every time reported is measured on the
//! calling thread, on which all parties run one after another.

pub mod deployment;
pub mod experiment;
pub mod figures;
pub mod network;
pub mod ranking;
pub mod report;
pub mod simulator;
pub mod summary;
pub mod trace;
pub mod twin;

pub use deployment::{IngestImage, LocalDeployment};
pub use network::{NetworkModel, NetworkPreset, StageLatency};
pub use ranking::{
    SecureDistanceComparison, ServerFault, compare_secure_vs_baseline, rank_candidates_secure,
};
pub use simulator::{DealerFreeSimulator, DealerSetupSummary, DkgRunSummary, KeyMaterial};
pub use trace::{CpuRecord, MessageRecord, Party, Stage, Trace, TraceSummary};

/// What went wrong in an in-process run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// Parameters that cannot work.
    #[error("invalid parameters: {0}")]
    Params(String),
    /// The distributed key generation ended without a key.
    #[error("key generation failed: {0}")]
    Dkg(String),
    /// The threshold VOPRF failed.
    #[error("token evaluation failed: {0}")]
    Oprf(String),
    /// The secure distance failed.
    #[error(transparent)]
    Mpc(#[from] dealer_free::mpc::MpcError),
    /// A step of the secure search refused ([`dealer_free::mpc::SearchError::culprits`]
    /// names the nodes).
    #[error(transparent)]
    Search(#[from] dealer_free::mpc::SearchError),
    /// An image could not be split.
    #[error("sharing failed: {0}")]
    Share(String),
    /// A message could not be encoded or decoded.
    #[error("malformed message: {0}")]
    Wire(String),
    /// Stored or returned data is inconsistent.
    #[error("inconsistent data: {0}")]
    Corrupt(String),
    /// A node's store failed.
    #[error(transparent)]
    Store(#[from] phr_sis::store::StoreError),
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
