//! The querier's last step: rank the candidates from their opened distances exactly as
//! [`phr_sis::SearchableSISIndex::rank_candidates`] does — keep `distance ≤ max_hamming`,
//! sort by `(distance, id)`, keep the first `topk` — so that the secure ranking and the
//! plaintext baseline return identical vectors for the same candidates.

use phr_sis::{ImageId, RankedCandidate, SearchParams};

use super::MpcError;

/// Ranks `candidates` (`(id, band votes)`, as the token index returns them) by their opened
/// `distances` (same order).
///
/// # Errors
/// [`MpcError::Params`] if the two lists differ in length or a distance exceeds 64.
pub fn rank(
    candidates: &[(ImageId, u32)],
    distances: &[u32],
    params: &SearchParams,
) -> Result<Vec<RankedCandidate>, MpcError> {
    if candidates.len() != distances.len() {
        return Err(MpcError::Params(format!(
            "{} candidates but {} distances",
            candidates.len(),
            distances.len()
        )));
    }
    if let Some(d) = distances.iter().find(|d| **d > 64) {
        return Err(MpcError::Params(format!(
            "opened distance {d} exceeds 64: the shares are inconsistent"
        )));
    }
    let mut ranked: Vec<RankedCandidate> = candidates
        .iter()
        .zip(distances)
        .filter(|(_, d)| **d <= params.max_hamming)
        .map(|((id, votes), d)| RankedCandidate {
            id: *id,
            distance: *d,
            band_votes: *votes,
        })
        .collect();
    ranked.sort_unstable_by_key(|c| (c.distance, c.id));
    ranked.truncate(params.topk);
    Ok(ranked)
}
