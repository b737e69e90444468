//! The `batching` data: Stage-1's messages, bytes and time as the number of images per
//! token request grows, with and without padding.

use serde::Serialize;

use super::{ExperimentConfig, ExperimentImage};
use crate::SimError;
use crate::simulator::KeyMaterial;

/// One batch size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchRow {
    /// Images per token request.
    pub batch: usize,
}

/// Every batch size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchingData {
    /// One row per batch size and padding.
    pub rows: Vec<BatchRow>,
}

/// Stage-1 over `images` for every batch size of `config`.
pub(crate) fn run(
    _config: &ExperimentConfig,
    _images: &[ExperimentImage],
    _key: &KeyMaterial,
    _progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<BatchingData, SimError> {
    Ok(BatchingData { rows: Vec::new() })
}

/// The figure of `data`, with its data.
#[must_use]
pub fn figure(
    data: &BatchingData,
    _all: &super::ExperimentData,
) -> (crate::figures::Figure, serde_json::Value) {
    let f = crate::figures::Figure::lines("batching", "batching", "x", "y");
    (f, serde_json::to_value(data).unwrap_or_default())
}
