//! What the experiment tests share: the fixture images and the comparison of JSON without
//! measured times.
#![allow(dead_code, clippy::unwrap_used)] // test code; not every test uses every helper

use dealer_free_sim::experiment::ExperimentImage;
use phr_sis::testing::reference_hashes;
use serde_json::Value;

/// The first `count` fixture images with their reference pHashes, each standing in with its
/// file name as its bytes (small and distinct, so the runs stay fast).
pub(crate) fn named_images(count: usize) -> Vec<ExperimentImage> {
    reference_hashes("images")
        .into_iter()
        .take(count)
        .map(|r| {
            let name = r.path.file_name().unwrap().to_string_lossy().into_owned();
            ExperimentImage {
                bytes: name.as_bytes().to_vec(),
                name,
                hash: r.phash.parse().unwrap(),
            }
        })
        .collect()
}

/// The `count` smallest fixture images with their real bytes.
pub(crate) fn smallest_images(count: usize) -> Vec<ExperimentImage> {
    let mut all: Vec<ExperimentImage> = reference_hashes("images")
        .into_iter()
        .map(|r| ExperimentImage {
            name: r.path.file_name().unwrap().to_string_lossy().into_owned(),
            bytes: std::fs::read(&r.path).unwrap(),
            hash: r.phash.parse().unwrap(),
        })
        .collect();
    all.sort_by_key(|i| i.bytes.len());
    all.truncate(count);
    all
}

/// `v` without measured times: keys ending in `_ms`, and `cpu_ns`.
pub(crate) fn without_times(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.ends_with("_ms") && k.as_str() != "cpu_ns")
                .map(|(k, v)| (k.clone(), without_times(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_times).collect()),
        other => other.clone(),
    }
}
