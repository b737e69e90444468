//! The canonical byte encoding shared by every protocol message of this crate.
//!
//! Every message starts with a two-byte header: the wire version ([`WIRE_VERSION`]) and the
//! message kind ([`MessageKind`]). The body follows in a fixed layout documented on each
//! message type: node ids are one byte, counts are big-endian `u16`, points and scalars are
//! their 32-byte canonical encodings. There is exactly one encoding of each message, so the
//! bytes can be hashed and signed, and golden-bytes tests freeze it.
//!
//! Decoding never panics: [`Reader`] returns a typed [`WireError`] for truncation, an unknown
//! version or kind, a non-canonical point or scalar, an invalid node id and trailing bytes.
//! Every decoded message is bounded by [`MAX_MESSAGE_LEN`].

#![deny(clippy::indexing_slicing)]

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use phr_sis::fp61::Fp61;
use phr_sis::{ImageId, NodeId};

/// The wire version of every message this crate encodes.
pub const WIRE_VERSION: u8 = 1;

/// The largest message any decoder accepts, in bytes (a DKG deal for t = 255 is 8.3 KB; a
/// justification revealing 254 shares is 33 KB; a partial evaluation or a token request of
/// 65535 elements, the most their `u16` count allows, is 2.1 MB).
pub const MAX_MESSAGE_LEN: usize = 1 << 22;

/// Which message a byte string claims to be (the second header byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum MessageKind {
    /// DKG round 1: a Pedersen commitment and one encrypted share.
    DkgDeal,
    /// DKG round 2: an echo of the commitments received and complaints.
    DkgComplaint,
    /// DKG round 3: revealed shares and equivocation evidence.
    DkgJustification,
    /// DKG round 4: transcript hash, verification share and its proof.
    DkgConfirmation,
    /// Resharing round 1: a Feldman commitment to an old key share and one encrypted share.
    ReshareDeal,
    /// Resharing round 2: complaints of the new nodes.
    ReshareComplaint,
    /// Resharing round 3: revealed shares.
    ReshareJustification,
    /// Resharing round 4: transcript hash.
    ReshareConfirmation,
    /// Threshold VOPRF: one node's evaluations of a batch with one batched DLEQ proof.
    OprfPartialEvaluation,
    /// Search tokens: a fixed-size batch of blinded band inputs.
    TokenRequest,
    /// Stage-2: the query's band tokens, to every server.
    CandidateRequest,
    /// Stage-2: one server's candidates with their band votes.
    CandidateResponse,
    /// Secure ranking: the querier's bit shares and the candidates, to one server.
    DistanceRequest,
    /// Secure ranking: one server's masked distance shares.
    DistanceResponse,
    /// Secure-ranking masks: a dealer's signed digests of its zero-sharings, to every server.
    MaskCommitment,
    /// Secure-ranking masks: one server's points of a dealer's zero-sharings.
    MaskDeal,
    /// Secure-ranking masks: a server's random linear combination of a dealer's points.
    MaskCheck,
    /// Secure ranking: a server's check values of the query's shares (bits, degree).
    QueryCheck,
    /// Secure ranking: every server's signed query check, relayed to every server.
    QueryChecks,
    /// Secure-ranking masks: the client's order to deal (session, servers, count).
    MaskOrder,
    /// Secure-ranking masks: a dealer's deal to one server, sealed for it.
    SealedMaskDeal,
    /// Stage-1: the record one node stores of one image (share, bit shares, tokens).
    StoredRecord,
    /// Masks: a server's signed confirmation of a judged dealing (`mpc::masks::confirm`).
    PoolConfirmation,
    /// Scrub: the client's order of a masked bit-share check (`mpc::share_check`).
    ShareCheckOrder,
    /// Scrub: one server's masked bit-share check values (`mpc::share_check`).
    ShareCheckAnswer,
}

impl MessageKind {
    /// The kind's name in reports (`token-request`, `distance-response`, …).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            MessageKind::DkgDeal => "dkg-deal",
            MessageKind::DkgComplaint => "dkg-complaint",
            MessageKind::DkgJustification => "dkg-justification",
            MessageKind::DkgConfirmation => "dkg-confirmation",
            MessageKind::ReshareDeal => "reshare-deal",
            MessageKind::ReshareComplaint => "reshare-complaint",
            MessageKind::ReshareJustification => "reshare-justification",
            MessageKind::ReshareConfirmation => "reshare-confirmation",
            MessageKind::OprfPartialEvaluation => "oprf-partial-evaluation",
            MessageKind::TokenRequest => "token-request",
            MessageKind::CandidateRequest => "candidate-request",
            MessageKind::CandidateResponse => "candidate-response",
            MessageKind::DistanceRequest => "distance-request",
            MessageKind::DistanceResponse => "distance-response",
            MessageKind::MaskCommitment => "mask-commitment",
            MessageKind::MaskDeal => "mask-deal",
            MessageKind::MaskCheck => "mask-check",
            MessageKind::QueryCheck => "query-check",
            MessageKind::QueryChecks => "query-checks",
            MessageKind::MaskOrder => "mask-order",
            MessageKind::SealedMaskDeal => "sealed-mask-deal",
            MessageKind::StoredRecord => "stored-record",
            MessageKind::PoolConfirmation => "pool-confirmation",
            MessageKind::ShareCheckOrder => "share-check-order",
            MessageKind::ShareCheckAnswer => "share-check-answer",
        }
    }

    /// The kind's byte on the wire.
    #[must_use]
    pub fn to_byte(self) -> u8 {
        match self {
            MessageKind::DkgDeal => 0x11,
            MessageKind::DkgComplaint => 0x12,
            MessageKind::DkgJustification => 0x13,
            MessageKind::DkgConfirmation => 0x14,
            MessageKind::ReshareDeal => 0x21,
            MessageKind::ReshareComplaint => 0x22,
            MessageKind::ReshareJustification => 0x23,
            MessageKind::ReshareConfirmation => 0x24,
            MessageKind::OprfPartialEvaluation => 0x31,
            MessageKind::TokenRequest => 0x32,
            MessageKind::CandidateRequest => 0x33,
            MessageKind::CandidateResponse => 0x34,
            MessageKind::DistanceRequest => 0x41,
            MessageKind::DistanceResponse => 0x42,
            MessageKind::MaskCommitment => 0x43,
            MessageKind::MaskDeal => 0x44,
            MessageKind::MaskCheck => 0x45,
            MessageKind::QueryCheck => 0x46,
            MessageKind::QueryChecks => 0x47,
            MessageKind::MaskOrder => 0x48,
            MessageKind::SealedMaskDeal => 0x49,
            MessageKind::StoredRecord => 0x51,
            MessageKind::PoolConfirmation => 0x4a,
            MessageKind::ShareCheckOrder => 0x52,
            MessageKind::ShareCheckAnswer => 0x53,
        }
    }

    /// The kind of a wire byte.
    ///
    /// # Errors
    /// [`WireError::UnknownKind`] for a byte that names no message.
    pub fn from_byte(byte: u8) -> Result<MessageKind, WireError> {
        Ok(match byte {
            0x11 => MessageKind::DkgDeal,
            0x12 => MessageKind::DkgComplaint,
            0x13 => MessageKind::DkgJustification,
            0x14 => MessageKind::DkgConfirmation,
            0x21 => MessageKind::ReshareDeal,
            0x22 => MessageKind::ReshareComplaint,
            0x23 => MessageKind::ReshareJustification,
            0x24 => MessageKind::ReshareConfirmation,
            0x31 => MessageKind::OprfPartialEvaluation,
            0x32 => MessageKind::TokenRequest,
            0x33 => MessageKind::CandidateRequest,
            0x34 => MessageKind::CandidateResponse,
            0x41 => MessageKind::DistanceRequest,
            0x42 => MessageKind::DistanceResponse,
            0x43 => MessageKind::MaskCommitment,
            0x44 => MessageKind::MaskDeal,
            0x45 => MessageKind::MaskCheck,
            0x46 => MessageKind::QueryCheck,
            0x47 => MessageKind::QueryChecks,
            0x48 => MessageKind::MaskOrder,
            0x49 => MessageKind::SealedMaskDeal,
            0x51 => MessageKind::StoredRecord,
            0x4a => MessageKind::PoolConfirmation,
            0x52 => MessageKind::ShareCheckOrder,
            0x53 => MessageKind::ShareCheckAnswer,
            other => return Err(WireError::UnknownKind(other)),
        })
    }
}

/// Why a byte string is not a valid message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The input ended before a field.
    #[error("message truncated: {field} needs {need} more bytes, {got} left")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Bytes the field needs.
        need: usize,
        /// Bytes that were left.
        got: usize,
    },
    /// The first byte is not a wire version this build understands.
    #[error("unknown wire version {0} (this build speaks version {WIRE_VERSION})")]
    UnknownVersion(u8),
    /// The second byte names no message kind.
    #[error("unknown message kind 0x{0:02x}")]
    UnknownKind(u8),
    /// The message is of another kind than the decoder expects.
    #[error("expected a {expected:?} message, got {got:?}")]
    UnexpectedKind {
        /// The kind the decoder expects.
        expected: MessageKind,
        /// The kind the header names.
        got: MessageKind,
    },
    /// Bytes remain after the last field.
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    /// The message is longer than [`MAX_MESSAGE_LEN`].
    #[error("message of {0} bytes exceeds the limit of {MAX_MESSAGE_LEN}")]
    TooLong(usize),
    /// A point field is not a canonical ristretto255 encoding, or is the identity.
    #[error("{field} is not a canonical non-identity ristretto255 point")]
    InvalidPoint {
        /// The field.
        field: &'static str,
    },
    /// A scalar field is not a canonical scalar.
    #[error("{field} is not a canonical scalar")]
    InvalidScalar {
        /// The field.
        field: &'static str,
    },
    /// A node id is 0.
    #[error("{field} is node id 0; node ids are 1 to 255")]
    InvalidNodeId {
        /// The field.
        field: &'static str,
    },
    /// A field has a value the message does not allow.
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Appends canonical fields to a byte buffer.
#[derive(Debug, Default)]
pub struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    /// A buffer that starts with the header of `kind`.
    #[must_use]
    pub fn new(kind: MessageKind) -> Writer {
        Writer::with_capacity(kind, 256)
    }

    /// [`Writer::new`] for a message of about `len` bytes (one allocation).
    #[must_use]
    pub fn with_capacity(kind: MessageKind, len: usize) -> Writer {
        let mut bytes = Vec::with_capacity(len.max(2));
        bytes.push(WIRE_VERSION);
        bytes.push(kind.to_byte());
        Writer { bytes }
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) {
        self.bytes.push(v);
    }

    /// A node id.
    pub fn node(&mut self, id: NodeId) {
        self.bytes.push(id.get());
    }

    /// A big-endian `u16` count.
    pub fn u16(&mut self, v: u16) {
        self.bytes.extend_from_slice(&v.to_be_bytes());
    }

    /// A big-endian `u32` count.
    pub fn u32(&mut self, v: u32) {
        self.bytes.extend_from_slice(&v.to_be_bytes());
    }

    /// A big-endian `u64`.
    pub fn u64(&mut self, v: u64) {
        self.bytes.extend_from_slice(&v.to_be_bytes());
    }

    /// A field element of GF(2^61 − 1), 8 bytes little-endian (canonical).
    pub fn fp61(&mut self, v: Fp61) {
        self.bytes.extend_from_slice(&v.value().to_le_bytes());
    }

    /// Raw bytes of a fixed-size field.
    pub fn bytes(&mut self, v: &[u8]) {
        self.bytes.extend_from_slice(v);
    }

    /// A compressed point.
    pub fn point(&mut self, p: &RistrettoPoint) {
        self.bytes.extend_from_slice(p.compress().as_bytes());
    }

    /// A canonical scalar.
    pub fn scalar(&mut self, s: &Scalar) {
        self.bytes.extend_from_slice(s.as_bytes());
    }

    /// The bytes written so far.
    #[must_use]
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes
    }

    /// The finished encoding.
    #[must_use]
    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// Reads canonical fields from a byte string, front to back.
#[derive(Debug)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over bytes without a header (a field inside a message).
    #[must_use]
    pub fn raw(bytes: &'a [u8]) -> Reader<'a> {
        Reader { rest: bytes }
    }

    /// Checks the header (version and kind) and positions the reader after it.
    ///
    /// # Errors
    /// [`WireError::TooLong`], [`WireError::Truncated`], [`WireError::UnknownVersion`],
    /// [`WireError::UnknownKind`], [`WireError::UnexpectedKind`].
    pub fn new(bytes: &'a [u8], expected: MessageKind) -> Result<Reader<'a>, WireError> {
        let got = peek_kind(bytes)?;
        if got != expected {
            return Err(WireError::UnexpectedKind { expected, got });
        }
        Ok(Reader {
            rest: bytes.get(2..).unwrap_or_default(),
        })
    }

    /// The next `N` bytes.
    ///
    /// # Errors
    /// [`WireError::Truncated`].
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], WireError> {
        let Some((head, tail)) = self.rest.split_first_chunk::<N>() else {
            return Err(WireError::Truncated {
                field,
                need: N,
                got: self.rest.len(),
            });
        };
        self.rest = tail;
        Ok(*head)
    }

    /// The next `len` bytes.
    ///
    /// # Errors
    /// [`WireError::Truncated`].
    pub fn slice(&mut self, field: &'static str, len: usize) -> Result<&'a [u8], WireError> {
        if self.rest.len() < len {
            return Err(WireError::Truncated {
                field,
                need: len,
                got: self.rest.len(),
            });
        }
        let (head, tail) = self.rest.split_at(len);
        self.rest = tail;
        Ok(head)
    }

    /// One byte.
    ///
    /// # Errors
    /// [`WireError::Truncated`].
    pub fn u8(&mut self, field: &'static str) -> Result<u8, WireError> {
        self.array::<1>(field).map(|[b]| b)
    }

    /// A big-endian `u16`.
    ///
    /// # Errors
    /// [`WireError::Truncated`].
    pub fn u16(&mut self, field: &'static str) -> Result<u16, WireError> {
        self.array::<2>(field).map(u16::from_be_bytes)
    }

    /// A big-endian `u32`.
    ///
    /// # Errors
    /// [`WireError::Truncated`].
    pub fn u32(&mut self, field: &'static str) -> Result<u32, WireError> {
        self.array::<4>(field).map(u32::from_be_bytes)
    }

    /// A big-endian `u64`.
    ///
    /// # Errors
    /// [`WireError::Truncated`].
    pub fn u64(&mut self, field: &'static str) -> Result<u64, WireError> {
        self.array::<8>(field).map(u64::from_be_bytes)
    }

    /// A canonical field element of GF(2^61 − 1) (8 bytes little-endian, below p).
    ///
    /// # Errors
    /// [`WireError::Truncated`], [`WireError::InvalidField`] for a value not below p.
    pub fn fp61(&mut self, field: &'static str) -> Result<Fp61, WireError> {
        let word = u64::from_le_bytes(self.array::<8>(field)?);
        Fp61::from_canonical(word).ok_or_else(|| WireError::InvalidField {
            field,
            reason: format!("{word} is not below 2^61 − 1"),
        })
    }

    /// `n` image ids (8 bytes big-endian each), strictly ascending; the bytes left are
    /// checked to hold them before anything is allocated.
    ///
    /// # Errors
    /// [`WireError::Truncated`]; [`WireError::InvalidField`] for ids not strictly ascending.
    pub fn ascending_ids(
        &mut self,
        field: &'static str,
        n: usize,
    ) -> Result<Vec<ImageId>, WireError> {
        let need = n.saturating_mul(8);
        if self.rest.len() < need {
            return Err(WireError::Truncated {
                field,
                need,
                got: self.rest.len(),
            });
        }
        let mut ids: Vec<ImageId> = Vec::with_capacity(n);
        for _ in 0..n {
            let id = ImageId(self.u64(field)?);
            if ids.last().is_some_and(|l| *l >= id) {
                return Err(WireError::InvalidField {
                    field,
                    reason: "ids not strictly ascending".into(),
                });
            }
            ids.push(id);
        }
        Ok(ids)
    }

    /// A node id (1 to 255).
    ///
    /// # Errors
    /// [`WireError::Truncated`], [`WireError::InvalidNodeId`].
    pub fn node(&mut self, field: &'static str) -> Result<NodeId, WireError> {
        let b = self.u8(field)?;
        NodeId::new(b).map_err(|_| WireError::InvalidNodeId { field })
    }

    /// A canonical, non-identity point.
    ///
    /// # Errors
    /// [`WireError::Truncated`], [`WireError::InvalidPoint`].
    pub fn point(&mut self, field: &'static str) -> Result<RistrettoPoint, WireError> {
        let bytes = self.array::<32>(field)?;
        decode_point(&bytes).ok_or(WireError::InvalidPoint { field })
    }

    /// `count` consecutive canonical, non-identity points. The length is checked before
    /// anything is decoded or allocated.
    ///
    /// # Errors
    /// [`WireError::Truncated`], [`WireError::InvalidPoint`].
    pub fn points(
        &mut self,
        field: &'static str,
        count: usize,
    ) -> Result<Vec<RistrettoPoint>, WireError> {
        let need = count.saturating_mul(32);
        if self.rest.len() < need {
            return Err(WireError::Truncated {
                field,
                need,
                got: self.rest.len(),
            });
        }
        (0..count).map(|_| self.point(field)).collect()
    }

    /// A canonical scalar.
    ///
    /// # Errors
    /// [`WireError::Truncated`], [`WireError::InvalidScalar`].
    pub fn scalar(&mut self, field: &'static str) -> Result<Scalar, WireError> {
        let bytes = self.array::<32>(field)?;
        Option::from(Scalar::from_canonical_bytes(bytes)).ok_or(WireError::InvalidScalar { field })
    }

    /// Bytes not read yet.
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Ends decoding.
    ///
    /// # Errors
    /// [`WireError::TrailingBytes`] if anything is left.
    pub fn finish(self) -> Result<(), WireError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(WireError::TrailingBytes(self.rest.len()))
        }
    }
}

/// The kind a message claims, after checking its length and version.
///
/// # Errors
/// [`WireError::TooLong`], [`WireError::Truncated`], [`WireError::UnknownVersion`],
/// [`WireError::UnknownKind`].
pub fn peek_kind(bytes: &[u8]) -> Result<MessageKind, WireError> {
    if bytes.len() > MAX_MESSAGE_LEN {
        return Err(WireError::TooLong(bytes.len()));
    }
    let [version, kind, ..] = bytes else {
        return Err(WireError::Truncated {
            field: "header",
            need: 2,
            got: bytes.len(),
        });
    };
    if *version != WIRE_VERSION {
        return Err(WireError::UnknownVersion(*version));
    }
    MessageKind::from_byte(*kind)
}

/// A canonical, non-identity point, or `None`.
#[must_use]
pub fn decode_point(bytes: &[u8; 32]) -> Option<RistrettoPoint> {
    CompressedRistretto(*bytes)
        .decompress()
        .filter(|p| !p.is_identity())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_errors_are_typed() {
        assert_eq!(
            peek_kind(&[]),
            Err(WireError::Truncated {
                field: "header",
                need: 2,
                got: 0
            })
        );
        assert_eq!(peek_kind(&[9, 0x11]), Err(WireError::UnknownVersion(9)));
        assert_eq!(peek_kind(&[1, 0x99]), Err(WireError::UnknownKind(0x99)));
        assert!(matches!(
            Reader::new(&[1, 0x12], MessageKind::DkgDeal),
            Err(WireError::UnexpectedKind { .. })
        ));
        let mut r = Reader::new(&[1, 0x11, 0], MessageKind::DkgDeal).unwrap();
        assert_eq!(
            r.node("dealer"),
            Err(WireError::InvalidNodeId { field: "dealer" })
        );
        let mut r = Reader::new(&[1, 0x11, 5, 6], MessageKind::DkgDeal).unwrap();
        assert!(matches!(
            r.point("commitment"),
            Err(WireError::Truncated {
                need: 32,
                got: 2,
                ..
            })
        ));
        let r = Reader::new(&[1, 0x11, 5], MessageKind::DkgDeal).unwrap();
        assert_eq!(r.finish(), Err(WireError::TrailingBytes(1)));
        let mut r = Reader::new(&[1, 0x31, 0, 1], MessageKind::OprfPartialEvaluation).unwrap();
        assert_eq!(
            r.points("element", 1),
            Err(WireError::Truncated {
                field: "element",
                need: 32,
                got: 2
            })
        );
    }

    #[test]
    fn kinds_round_trip_through_their_byte() {
        for kind in [
            MessageKind::DkgDeal,
            MessageKind::DkgComplaint,
            MessageKind::DkgJustification,
            MessageKind::DkgConfirmation,
            MessageKind::ReshareDeal,
            MessageKind::ReshareComplaint,
            MessageKind::ReshareJustification,
            MessageKind::ReshareConfirmation,
            MessageKind::OprfPartialEvaluation,
            MessageKind::TokenRequest,
            MessageKind::CandidateRequest,
            MessageKind::CandidateResponse,
            MessageKind::DistanceRequest,
            MessageKind::DistanceResponse,
            MessageKind::MaskCommitment,
            MessageKind::MaskDeal,
            MessageKind::MaskCheck,
            MessageKind::QueryCheck,
            MessageKind::QueryChecks,
            MessageKind::MaskOrder,
            MessageKind::SealedMaskDeal,
            MessageKind::StoredRecord,
            MessageKind::PoolConfirmation,
            MessageKind::ShareCheckOrder,
            MessageKind::ShareCheckAnswer,
        ] {
            assert_eq!(MessageKind::from_byte(kind.to_byte()), Ok(kind));
        }
        assert_eq!(MessageKind::OprfPartialEvaluation.to_byte(), 0x31);
        assert_eq!(MessageKind::TokenRequest.to_byte(), 0x32);
    }
}
