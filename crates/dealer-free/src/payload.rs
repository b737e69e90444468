//! Stage-1's payload framing: the secret an image's shares carry is the file itself or its
//! deflate, behind a one-byte marker, so that the owner can choose compression per image and
//! every reader knows which it got. Used alike by the simulator and by the networked client,
//! so that both share the same bytes.
//!
//! Guarantees: a framed payload is never more than one byte longer than the file; unframing
//! inflates at most [`phr_sis::share::MAX_PADDED_LEN`] bytes, so a hostile payload cannot
//! make a reader allocate more than any stored image could hold.

/// Marker of a payload that is the file itself.
pub const PAYLOAD_RAW: u8 = 0;
/// Marker of a payload that is the file deflated.
pub const PAYLOAD_DEFLATE: u8 = 1;
/// The deflate level of [`frame_payload`].
pub const DEFLATE_LEVEL: u8 = 6;

/// Why a payload does not unframe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The payload is empty.
    #[error("an empty framed payload")]
    Empty,
    /// The first byte is no known marker.
    #[error("a payload with the unknown marker {0}")]
    UnknownMarker(u8),
    /// The deflate stream is bad or inflates past the limit.
    #[error("a deflated payload: {0}")]
    Inflate(String),
}

/// The secret shared for `file`: with `compress`, [`PAYLOAD_DEFLATE`] and the file deflated
/// if that is shorter than the file; otherwise [`PAYLOAD_RAW`] and the file.
#[must_use]
pub fn frame_payload(file: &[u8], compress: bool) -> Vec<u8> {
    let deflated = compress
        .then(|| miniz_oxide::deflate::compress_to_vec(file, DEFLATE_LEVEL))
        .filter(|d| d.len() < file.len());
    let mut out = Vec::with_capacity(1 + deflated.as_ref().map_or(file.len(), Vec::len));
    match deflated {
        Some(d) => {
            out.push(PAYLOAD_DEFLATE);
            out.extend_from_slice(&d);
        }
        None => {
            out.push(PAYLOAD_RAW);
            out.extend_from_slice(file);
        }
    }
    out
}

/// The file of a payload framed by [`frame_payload`].
///
/// # Errors
/// [`PayloadError`] for an empty payload, an unknown marker or a bad deflate stream.
pub fn unframe_payload(payload: &[u8]) -> Result<Vec<u8>, PayloadError> {
    let limit = usize::try_from(phr_sis::share::MAX_PADDED_LEN).unwrap_or(usize::MAX);
    match payload.split_first() {
        Some((&PAYLOAD_RAW, file)) => Ok(file.to_vec()),
        Some((&PAYLOAD_DEFLATE, deflated)) => {
            miniz_oxide::inflate::decompress_to_vec_with_limit(deflated, limit)
                .map_err(|e| PayloadError::Inflate(e.to_string()))
        }
        Some((marker, _)) => Err(PayloadError::UnknownMarker(*marker)),
        None => Err(PayloadError::Empty),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_round_trips_and_refuses_what_it_did_not_make() {
        let repetitive = vec![7u8; 4096];
        let framed = frame_payload(&repetitive, true);
        assert_eq!(framed.first(), Some(&PAYLOAD_DEFLATE));
        assert!(framed.len() < 100);
        assert_eq!(unframe_payload(&framed), Ok(repetitive.clone()));
        let raw = frame_payload(&repetitive, false);
        assert_eq!(raw.len(), repetitive.len() + 1);
        assert_eq!(unframe_payload(&raw), Ok(repetitive));
        assert_eq!(unframe_payload(&[]), Err(PayloadError::Empty));
        assert_eq!(
            unframe_payload(&[9, 1]),
            Err(PayloadError::UnknownMarker(9))
        );
        assert!(matches!(
            unframe_payload(&[PAYLOAD_DEFLATE, 0xff, 0xff]),
            Err(PayloadError::Inflate(_))
        ));
    }
}
