//! The versioned binary encoding of a [`Share`] (documented in `docs/share-format.md`).
//!
//! ```text
//! offset  size  field
//!      0     4  magic "DFSS"
//!      4     1  format version (1)
//!      5     1  scheme: 1 = shamir, 2 = compact
//!      6     1  t
//!      7     1  n
//!      8     1  index: the holder's node id, 1..=n
//!      9     3  reserved, zero
//!     12     8  image id (little-endian)
//!     20     8  original length of the image in bytes
//!     28     8  padded length (the size bucket), >= original length
//!     36     4  payload length P
//!     40     P  payload
//!   40+P  32·n  commitments: SHA-256 of every node's share, node 1 first
//! ```
//!
//! The encoding is canonical: every field is checked on decoding (reserved bytes zero, index
//! within `1..=n`, `1 <= t <= n`, payload length exactly the one the scheme implies, total
//! length exact), so one share has exactly one encoding. Decoding never panics and never
//! allocates more than the input's length.
#![deny(clippy::indexing_slicing)]

use super::{MAX_PADDED_LEN, Scheme, Share, ShareHeader};
use crate::{ImageId, NodeId, Threshold};

/// The four bytes every share starts with.
pub const MAGIC: [u8; 4] = *b"DFSS";
/// The format version this library writes and reads.
pub const VERSION: u8 = 1;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 40;
/// Bytes of one commitment (SHA-256).
pub const COMMITMENT_LEN: usize = 32;

/// Why bytes are not a valid share.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShareFormatError {
    /// The input ends before the share does.
    #[error("share is truncated: {need} bytes needed, {got} present")]
    Truncated {
        /// Bytes the share needs (as far as known).
        need: usize,
        /// Bytes present.
        got: usize,
    },
    /// The input goes on after the share.
    #[error("{extra} unexpected bytes after the share")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// Not a share of this system.
    #[error("not a dealer-free-sis share (bad magic)")]
    BadMagic,
    /// Written by a newer (or unknown) version of the format.
    #[error("unsupported share format version {0} (this build reads version {VERSION})")]
    UnknownVersion(u8),
    /// An unknown sharing scheme.
    #[error("unknown share scheme {0} (1 = shamir, 2 = compact)")]
    UnknownScheme(u8),
    /// `t` and `n` cannot be.
    #[error("invalid parameters in share header: {0}")]
    BadParams(crate::ParamsError),
    /// The holder's index is not one of the `n` nodes.
    #[error("share index {index} is not a node of 1..={n}")]
    IndexOutOfRange {
        /// The index in the header.
        index: u8,
        /// The number of nodes.
        n: u8,
    },
    /// Reserved bytes must be zero.
    #[error("reserved header bytes are not zero")]
    NonZeroReserved,
    /// The lengths in the header contradict each other.
    #[error("inconsistent lengths: {0}")]
    InconsistentLength(&'static str),
    /// Larger than any share this library writes.
    #[error("share declares an image of {len} bytes, above the limit of {max}")]
    Oversized {
        /// The declared (padded) length.
        len: u64,
        /// The limit.
        max: u64,
    },
}

fn read<const N: usize>(bytes: &[u8], at: usize) -> Result<[u8; N], ShareFormatError> {
    bytes
        .get(at..at + N)
        .and_then(|s| s.try_into().ok())
        .ok_or(ShareFormatError::Truncated {
            need: at + N,
            got: bytes.len(),
        })
}

/// The header fields common to every node's share of one image (index zeroed): what each
/// commitment and the compact scheme's AEAD bind to.
pub(super) fn common_header(h: &ShareHeader, payload_len: u32) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    let mut w = Writer(&mut out[..], 0);
    w.put(&MAGIC);
    w.put(&[
        VERSION,
        h.scheme.code(),
        h.threshold.t(),
        h.threshold.n(),
        0,
        0,
        0,
        0,
    ]);
    w.put(&h.image_id.0.to_le_bytes());
    w.put(&h.original_len.to_le_bytes());
    w.put(&h.padded_len.to_le_bytes());
    w.put(&payload_len.to_le_bytes());
    out
}

struct Writer<'a>(&'a mut [u8], usize);

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        if let Some(dst) = self.0.get_mut(self.1..self.1 + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        self.1 += bytes.len();
    }
}

pub(super) fn encode(share: &Share) -> Vec<u8> {
    let payload_len = share.payload.len() as u32;
    let mut header = common_header(&share.header, payload_len);
    if let Some(index) = header.get_mut(8) {
        *index = share.header.index.get();
    }
    let mut out = Vec::with_capacity(
        HEADER_LEN + share.payload.len() + COMMITMENT_LEN * share.commitments.len(),
    );
    out.extend_from_slice(&header);
    out.extend_from_slice(&share.payload);
    for c in &share.commitments {
        out.extend_from_slice(c);
    }
    out
}

pub(super) fn decode(bytes: &[u8]) -> Result<Share, ShareFormatError> {
    let magic: [u8; 4] = read(bytes, 0)?;
    if magic != MAGIC {
        return Err(ShareFormatError::BadMagic);
    }
    let [version, scheme, t, n, index, r0, r1, r2] = read::<8>(bytes, 4)?;
    if version != VERSION {
        return Err(ShareFormatError::UnknownVersion(version));
    }
    let scheme = Scheme::from_code(scheme).ok_or(ShareFormatError::UnknownScheme(scheme))?;
    let threshold = Threshold::new(t, n).map_err(ShareFormatError::BadParams)?;
    if index == 0 || index > n {
        return Err(ShareFormatError::IndexOutOfRange { index, n });
    }
    let index = NodeId::new(index).map_err(ShareFormatError::BadParams)?;
    if [r0, r1, r2] != [0, 0, 0] {
        return Err(ShareFormatError::NonZeroReserved);
    }
    let image_id = ImageId(u64::from_le_bytes(read(bytes, 12)?));
    let original_len = u64::from_le_bytes(read(bytes, 20)?);
    let padded_len = u64::from_le_bytes(read(bytes, 28)?);
    let payload_len = u32::from_le_bytes(read(bytes, 36)?);
    if padded_len > MAX_PADDED_LEN {
        return Err(ShareFormatError::Oversized {
            len: padded_len,
            max: MAX_PADDED_LEN,
        });
    }
    if original_len > padded_len {
        return Err(ShareFormatError::InconsistentLength(
            "original length exceeds padded length",
        ));
    }
    let expected = scheme.payload_len(padded_len, threshold.t());
    if u64::from(payload_len) != expected {
        return Err(ShareFormatError::InconsistentLength(
            "payload length does not match the scheme, t and padded length",
        ));
    }
    let payload_len = payload_len as usize;
    let total = HEADER_LEN + payload_len + COMMITMENT_LEN * usize::from(n);
    if bytes.len() < total {
        return Err(ShareFormatError::Truncated {
            need: total,
            got: bytes.len(),
        });
    }
    if bytes.len() > total {
        return Err(ShareFormatError::TrailingBytes {
            extra: bytes.len() - total,
        });
    }
    let (payload, commitments) = bytes
        .get(HEADER_LEN..total)
        .map(|rest| rest.split_at(payload_len))
        .ok_or(ShareFormatError::Truncated {
            need: total,
            got: bytes.len(),
        })?;
    let commitments = commitments
        .chunks_exact(COMMITMENT_LEN)
        .map(|c| {
            let mut a = [0u8; COMMITMENT_LEN];
            a.copy_from_slice(c);
            a
        })
        .collect();
    Ok(Share {
        header: ShareHeader {
            scheme,
            threshold,
            index,
            image_id,
            original_len,
            padded_len,
        },
        payload: payload.to_vec(),
        commitments,
    })
}
