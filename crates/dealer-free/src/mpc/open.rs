//! The querier opens the masked distance shares: Reed–Solomon decoding of each candidate's
//! codeword of degree `2t − 2`, which corrects and names nodes that returned wrong shares.
//!
//! With exactly `2t − 1` answers the distances are interpolated and a wrong share cannot be
//! detected (it shifts the distance). With `m > 2t − 1` answers every codeword is decoded
//! ([`phr_sis::fp61::reed_solomon`]): up to `⌊(m − 2t + 1)/2⌋` wrong shares per candidate are
//! corrected, and every node whose share was off is named. This works because the masks are a
//! zero-sharing of the *same* degree `2t − 2`, so the masked shares of honest nodes stay on
//! one polynomial (plain additive masks would only allow exactly `2t − 1` answers).

use std::collections::BTreeSet;

use phr_sis::NodeId;
use phr_sis::fp61::Fp61;
use phr_sis::fp61::reed_solomon::{DecodeError, decode_batch};

use super::MpcError;

/// The opened distances and the nodes caught returning wrong shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// One distance per candidate, in the order of the answers.
    pub distances: Vec<u32>,
    /// Nodes whose share was wrong for at least one candidate (corrected), sorted.
    pub wrong: BTreeSet<NodeId>,
}

/// Opens the answers of the servers (`(node, one masked share per candidate)`) for
/// threshold `t`.
///
/// # Errors
/// [`MpcError::TooFewNodes`] with fewer than `2t − 1` answers (naming those that answered),
/// [`MpcError::TooManyWrongShares`] when a candidate's shares cannot be decoded (too many
/// wrong shares to correct), [`MpcError::Params`] for answers of different lengths, a
/// repeated node, or a decoded value that is no distance (above 64).
pub fn open_distances(answers: &[(NodeId, &[Fp61])], t: u8) -> Result<Opened, MpcError> {
    let needed = 2 * usize::from(t) - 1;
    let ids: Vec<NodeId> = answers.iter().map(|(id, _)| *id).collect();
    if answers.len() < needed {
        return Err(MpcError::TooFewNodes {
            needed,
            got: answers.len(),
            nodes: ids,
        });
    }
    let values: Vec<&[Fp61]> = answers.iter().map(|(_, v)| *v).collect();
    let decoded = decode_batch(&ids, &values, needed - 1).map_err(|e| match e {
        DecodeError::TooManyErrors { .. } | DecodeError::TooManyErrorsInCodeword { .. } => {
            MpcError::TooManyWrongShares {
                answered: ids.clone(),
                reason: e.to_string(),
            }
        }
        other => MpcError::Params(other.to_string()),
    })?;
    let mut wrong = BTreeSet::new();
    let mut distances = Vec::with_capacity(decoded.len());
    for d in decoded {
        wrong.extend(d.wrong.iter().copied());
        let v = d.value_at_zero.value();
        if v > 64 {
            return Err(MpcError::Params(format!(
                "an opened distance is {v}, not 0 to 64: the shares are inconsistent"
            )));
        }
        distances.push(u32::try_from(v).unwrap_or(u32::MAX));
    }
    Ok(Opened { distances, wrong })
}
