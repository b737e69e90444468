//! Hashing primitives of the ristretto255-SHA512 ciphersuite: `expand_message_xmd`
//! (RFC 9380 §5.3.1) with SHA-512, `HashToGroup` and `HashToScalar` (RFC 9497 §4.1).

use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha512};

/// SHA-512 output size in bytes (`b_in_bytes`).
const B_IN_BYTES: usize = 64;
/// SHA-512 block size in bytes (`s_in_bytes`).
const S_IN_BYTES: usize = 128;

/// `expand_message_xmd` with SHA-512 producing exactly 64 bytes (RFC 9380 §5.3.1).
///
/// `msg` is given as a list of parts that are concatenated. `dst` must be at
/// most 255 bytes (all DSTs of this module are short constants).
pub(super) fn expand_message_xmd_64(msg: &[&[u8]], dst: &[u8]) -> [u8; 64] {
    debug_assert!(dst.len() <= 255);
    // len_in_bytes = 64, ell = 1.
    let dst_len = [u8::try_from(dst.len()).unwrap_or(u8::MAX)];
    let mut h = Sha512::new();
    h.update([0u8; S_IN_BYTES]);
    for part in msg {
        h.update(part);
    }
    h.update(64u16.to_be_bytes());
    h.update([0u8]);
    h.update(dst);
    h.update(dst_len);
    let b0 = h.finalize();

    let mut h = Sha512::new();
    h.update(&b0[..]);
    h.update([1u8]);
    h.update(dst);
    h.update(dst_len);
    let b1 = h.finalize();

    let mut out = [0u8; B_IN_BYTES];
    out.copy_from_slice(&b1[..]);
    out
}

/// `HashToGroup`: ristretto255 `hash_to_ristretto255` (RFC 9380 Appendix B).
pub(super) fn hash_to_group(msg: &[&[u8]], dst: &[u8]) -> RistrettoPoint {
    let uniform = expand_message_xmd_64(msg, dst);
    RistrettoPoint::from_uniform_bytes(&uniform)
}

/// `HashToScalar`: 64 bytes of `expand_message_xmd`, read little-endian, reduced mod ℓ.
pub(super) fn hash_to_scalar(msg: &[&[u8]], dst: &[u8]) -> Scalar {
    let uniform = expand_message_xmd_64(msg, dst);
    Scalar::from_bytes_mod_order_wide(&uniform)
}

/// Plain SHA-512 over concatenated parts.
pub(super) fn sha512(parts: &[&[u8]]) -> [u8; 64] {
    let mut h = Sha512::new();
    for part in parts {
        h.update(part);
    }
    let d = h.finalize();
    let mut out = [0u8; 64];
    out.copy_from_slice(&d[..]);
    out
}
