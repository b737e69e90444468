//! Share commitments: one SHA-256 per node's share, bound to the sharing's header.
//!
//! `commit(header, payload) = SHA-256(DST ‖ common header ‖ index ‖ payload)`, where the
//! common header is the 40-byte share header with the index byte zeroed (so it carries magic,
//! version, scheme, t, n, image id, original and padded lengths and payload length) and `DST` is
//! the domain-separation string below. A share whose payload, index or any header field was
//! altered no longer matches the vector every other share carries.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ShareHeader;
use super::format::common_header;

/// Domain separation for share commitments.
pub(super) const DST: &[u8] = b"dealer-free-sis/v1/share-commitment";

/// The commitment to one node's share.
pub(super) fn commit(header: &ShareHeader, payload: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(DST);
    h.update(common_header(header, payload.len() as u32));
    h.update([header.index.get()]);
    h.update(payload);
    h.finalize().into()
}

/// Constant-time equality of two commitments.
pub(super) fn equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.ct_eq(b).into()
}
