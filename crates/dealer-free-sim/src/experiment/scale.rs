//! The `scaling` data: how Stage-1 and Stage-2 costs grow with the number of nodes and the
//! number of stored images, with fitted exponents.

use serde::Serialize;

use super::{ExperimentConfig, ExperimentImage};
use crate::SimError;

/// How each cost grows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScalingData {}

/// The scale runs of `config`.
pub(crate) fn run(
    _config: &ExperimentConfig,
    _images: &[ExperimentImage],
    _progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<ScalingData, SimError> {
    Ok(ScalingData {})
}

/// The figure of `data`, with its data.
#[must_use]
pub fn figure(
    data: &ScalingData,
    _all: &super::ExperimentData,
) -> (crate::figures::Figure, serde_json::Value) {
    let f = crate::figures::Figure::lines("scaling", "scaling", "x", "y");
    (f, serde_json::to_value(data).unwrap_or_default())
}
