//! The messages of a secure query (Stage-2), one type per message, with their canonical
//! encodings (header of [`crate::wire`], then the fields below, big-endian counts):
//!
//! | message | fields |
//! |---|---|
//! | [`CandidateRequest`] (`0x33`) | session (32) · min_band_votes (u32) · count (u16) · tokens (32 each) |
//! | [`CandidateResponse`] (`0x34`) | session (32) · node (1) · count (u32) · (image id (u64) · band votes (u32)) each |
//! | [`DistanceRequest`] (`0x41`) | session (32) · server (1) · count (u32) · image ids (u64 each, strictly ascending) · 64 bit shares (8 each) |
//! | [`DistanceResponse`] (`0x42`) | session (32) · server (1) · count (u32) · masked distance shares (8 each) |
//!
//! The querier sends every server the same [`CandidateRequest`] (the query's band tokens from
//! the threshold VOPRF), checks that the servers return the same candidates, then sends each
//! server of its chosen set a [`DistanceRequest`] with its own shares of the query bits and
//! the candidates in ascending id order (the order in which every server consumes its masks).
//! A server answers with one field element per candidate. Decoders bound every count by the
//! bytes left before allocating and never panic.

use phr_sis::fp61::Fp61;
use phr_sis::token_index::Token;
use phr_sis::{ImageId, NodeId};

use super::masks::{MaskPool, mask_distance_shares};
use super::{HASH_BITS, HashBitShares, MpcError};
use crate::wire::{MAX_MESSAGE_LEN, MessageKind, Reader, WireError, Writer};

/// Identifies one query; binds its messages together.
pub type SessionId = [u8; 32];

/// Querier → every server: look up the query's band tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandidateRequest {
    /// The query session.
    pub session: SessionId,
    /// Keep images sharing at least this many bands.
    pub min_band_votes: u32,
    /// The query's band tokens.
    pub tokens: Vec<Token>,
}

/// Server → querier: the images sharing bands with the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandidateResponse {
    /// The query session.
    pub session: SessionId,
    /// The answering server.
    pub node: NodeId,
    /// `(image, band votes)`, ascending by id.
    pub candidates: Vec<(ImageId, u32)>,
}

/// Querier → one server: the server's shares of the query bits and the candidates to rank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistanceRequest {
    /// The mask session: the dealing whose masks the server uses.
    pub session: SessionId,
    /// The server addressed (its shares are for this point only).
    pub server: NodeId,
    /// The position in the session's pool of the first candidate's mask; the others take the
    /// masks after it, in candidate order. Every server is sent the same.
    pub first_mask: u32,
    /// The candidates, strictly ascending.
    pub candidates: Vec<ImageId>,
    /// The server's shares of the 64 query bits.
    pub query: HashBitShares,
}

/// Server → querier: one masked distance share per candidate, in the request's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistanceResponse {
    /// The query session.
    pub session: SessionId,
    /// The answering server.
    pub server: NodeId,
    /// `d(server) + z(server)` per candidate.
    pub shares: Vec<Fp61>,
}

/// The candidate lists the servers returned for one query, grouped: the list most servers
/// agree on, who returned it and who did not.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CandidateAgreement {
    /// The list the most servers returned (ties: the greatest list).
    pub candidates: Vec<(ImageId, u32)>,
    /// The servers that returned it.
    pub agreeing: Vec<NodeId>,
    /// The servers that returned another list.
    pub disagreeing: std::collections::BTreeSet<NodeId>,
    /// The servers of each distinct list, in the order of the lists.
    pub groups: Vec<Vec<NodeId>>,
}

impl CandidateAgreement {
    /// Groups the answers `(server, its candidate list)`. The querier uses the list only if
    /// at least `t` servers agree on it (fewer than `t` may be corrupt).
    #[must_use]
    pub fn from_answers(
        answers: impl IntoIterator<Item = (NodeId, Vec<(ImageId, u32)>)>,
    ) -> CandidateAgreement {
        let mut lists: std::collections::BTreeMap<Vec<(ImageId, u32)>, Vec<NodeId>> =
            std::collections::BTreeMap::new();
        for (server, list) in answers {
            lists.entry(list).or_default().push(server);
        }
        let (candidates, agreeing) = lists
            .iter()
            .max_by_key(|(_, nodes)| nodes.len())
            .map(|(c, n)| (c.clone(), n.clone()))
            .unwrap_or_default();
        let disagreeing = lists
            .values()
            .flatten()
            .filter(|s| !agreeing.contains(s))
            .copied()
            .collect();
        CandidateAgreement {
            candidates,
            agreeing,
            disagreeing,
            groups: lists.into_values().collect(),
        }
    }
}

/// Constant time: the shares are secret.
impl PartialEq for HashBitShares {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.0
            .iter()
            .zip(&other.0)
            .fold(subtle::Choice::from(1), |acc, (a, b)| {
                acc & a.value().ct_eq(&b.value())
            })
            .into()
    }
}

impl Eq for HashBitShares {}

/// A count that must fit the bytes left (`each` bytes per item).
fn bounded_count(
    count: usize,
    each: usize,
    left: usize,
    field: &'static str,
) -> Result<(), WireError> {
    if count.saturating_mul(each) > left {
        return Err(WireError::Truncated {
            field,
            need: count.saturating_mul(each),
            got: left,
        });
    }
    Ok(())
}

fn too_many(field: &'static str, count: usize) -> WireError {
    WireError::InvalidField {
        field,
        reason: format!("{count} items do not fit one message of at most {MAX_MESSAGE_LEN} bytes"),
    }
}

impl CandidateRequest {
    /// Encoded length for `tokens` tokens.
    #[must_use]
    pub const fn encoded_len(tokens: usize) -> usize {
        2 + 32 + 4 + 2 + 32 * tokens
    }

    /// The canonical encoding.
    ///
    /// # Errors
    /// [`WireError::InvalidField`] for more than 65,535 tokens.
    pub fn to_bytes(&self) -> Result<Vec<u8>, WireError> {
        let count =
            u16::try_from(self.tokens.len()).map_err(|_| too_many("tokens", self.tokens.len()))?;
        let mut w = Writer::with_capacity(
            MessageKind::CandidateRequest,
            Self::encoded_len(self.tokens.len()),
        );
        w.bytes(&self.session);
        w.u32(self.min_band_votes);
        w.u16(count);
        for t in &self.tokens {
            w.bytes(t);
        }
        Ok(w.finish())
    }

    /// Decodes [`CandidateRequest::to_bytes`].
    ///
    /// # Errors
    /// Any [`WireError`] of a malformed message.
    pub fn from_bytes(bytes: &[u8]) -> Result<CandidateRequest, WireError> {
        let mut r = Reader::new(bytes, MessageKind::CandidateRequest)?;
        let session = r.array::<32>("session")?;
        let min_band_votes = r.u32("min_band_votes")?;
        let count = usize::from(r.u16("token count")?);
        bounded_count(count, 32, r.remaining(), "tokens")?;
        let tokens = (0..count)
            .map(|_| r.array::<32>("token"))
            .collect::<Result<_, _>>()?;
        r.finish()?;
        Ok(CandidateRequest {
            session,
            min_band_votes,
            tokens,
        })
    }
}

impl CandidateResponse {
    /// Encoded length for `count` candidates.
    #[must_use]
    pub const fn encoded_len(count: usize) -> usize {
        2 + 32 + 1 + 4 + 12 * count
    }

    /// The canonical encoding.
    ///
    /// # Errors
    /// [`WireError::InvalidField`] if the candidates are not strictly ascending or too many.
    pub fn to_bytes(&self) -> Result<Vec<u8>, WireError> {
        let len = Self::encoded_len(self.candidates.len());
        if len > MAX_MESSAGE_LEN {
            return Err(too_many("candidates", self.candidates.len()));
        }
        if !self.candidates.windows(2).all(|w| w[0].0 < w[1].0) {
            return Err(WireError::InvalidField {
                field: "candidates",
                reason: "not strictly ascending".into(),
            });
        }
        let mut w = Writer::with_capacity(MessageKind::CandidateResponse, len);
        w.bytes(&self.session);
        w.node(self.node);
        w.u32(
            u32::try_from(self.candidates.len())
                .map_err(|_| too_many("candidates", self.candidates.len()))?,
        );
        for (id, votes) in &self.candidates {
            w.u64(id.0);
            w.u32(*votes);
        }
        Ok(w.finish())
    }

    /// Decodes [`CandidateResponse::to_bytes`].
    ///
    /// # Errors
    /// Any [`WireError`] of a malformed message, including ids out of order.
    pub fn from_bytes(bytes: &[u8]) -> Result<CandidateResponse, WireError> {
        let mut r = Reader::new(bytes, MessageKind::CandidateResponse)?;
        let session = r.array::<32>("session")?;
        let node = r.node("node")?;
        let count = r.u32("candidate count")? as usize;
        bounded_count(count, 12, r.remaining(), "candidates")?;
        let mut candidates: Vec<(ImageId, u32)> = Vec::with_capacity(count);
        for _ in 0..count {
            let id = ImageId(r.u64("image id")?);
            let votes = r.u32("band votes")?;
            if candidates.last().is_some_and(|(last, _)| *last >= id) {
                return Err(WireError::InvalidField {
                    field: "candidates",
                    reason: "not strictly ascending".into(),
                });
            }
            candidates.push((id, votes));
        }
        r.finish()?;
        Ok(CandidateResponse {
            session,
            node,
            candidates,
        })
    }
}

impl DistanceRequest {
    /// Encoded length for `count` candidates.
    #[must_use]
    pub const fn encoded_len(count: usize) -> usize {
        2 + 32 + 1 + 4 + 4 + 8 * count + 8 * HASH_BITS
    }

    /// The canonical encoding.
    ///
    /// # Errors
    /// [`WireError::InvalidField`] if the candidates are not strictly ascending or too many.
    pub fn to_bytes(&self) -> Result<Vec<u8>, WireError> {
        let len = Self::encoded_len(self.candidates.len());
        if len > MAX_MESSAGE_LEN {
            return Err(too_many("candidates", self.candidates.len()));
        }
        if !self.candidates.windows(2).all(|w| w[0] < w[1]) {
            return Err(WireError::InvalidField {
                field: "candidates",
                reason: "not strictly ascending".into(),
            });
        }
        let mut w = Writer::with_capacity(MessageKind::DistanceRequest, len);
        w.bytes(&self.session);
        w.node(self.server);
        w.u32(self.first_mask);
        w.u32(
            u32::try_from(self.candidates.len())
                .map_err(|_| too_many("candidates", self.candidates.len()))?,
        );
        for id in &self.candidates {
            w.u64(id.0);
        }
        for s in self.query.shares() {
            w.fp61(*s);
        }
        Ok(w.finish())
    }

    /// Decodes [`DistanceRequest::to_bytes`].
    ///
    /// # Errors
    /// Any [`WireError`] of a malformed message, including ids out of order and field
    /// elements that are not canonical.
    pub fn from_bytes(bytes: &[u8]) -> Result<DistanceRequest, WireError> {
        let mut r = Reader::new(bytes, MessageKind::DistanceRequest)?;
        let session = r.array::<32>("session")?;
        let server = r.node("server")?;
        let first_mask = r.u32("first mask")?;
        let count = r.u32("candidate count")? as usize;
        bounded_count(count, 8, r.remaining(), "candidates")?;
        let mut candidates: Vec<ImageId> = Vec::with_capacity(count);
        for _ in 0..count {
            let id = ImageId(r.u64("image id")?);
            if candidates.last().is_some_and(|last| *last >= id) {
                return Err(WireError::InvalidField {
                    field: "candidates",
                    reason: "not strictly ascending".into(),
                });
            }
            candidates.push(id);
        }
        let mut shares = [Fp61::ZERO; HASH_BITS];
        for s in &mut shares {
            *s = r.fp61("query bit share")?;
        }
        r.finish()?;
        Ok(DistanceRequest {
            session,
            server,
            first_mask,
            candidates,
            query: HashBitShares(shares),
        })
    }
}

impl DistanceRequest {
    /// Server side: answers the request with this server's masked distance share of every
    /// candidate, reading each candidate's stored bit shares through `stored` and using the
    /// masks `first_mask ..` of `pool`, one per candidate.
    ///
    /// # Errors
    /// [`MpcError::Params`] if the request is addressed to another server or names an image
    /// this server does not hold, [`MpcError::MasksUsed`] if a mask it names was used already
    /// or lies beyond the pool (nothing is consumed then).
    pub fn respond(
        &self,
        server: NodeId,
        mut stored: impl FnMut(ImageId) -> Option<HashBitShares>,
        pool: &mut MaskPool,
    ) -> Result<DistanceResponse, MpcError> {
        if self.server != server {
            return Err(MpcError::Params(format!(
                "a distance request for node {} reached node {server}",
                self.server
            )));
        }
        let shares: Vec<HashBitShares> = self
            .candidates
            .iter()
            .map(|id| {
                stored(*id).ok_or_else(|| {
                    MpcError::Params(format!("node {server} holds no bit shares of image {id}"))
                })
            })
            .collect::<Result<_, _>>()?;
        let refs: Vec<&HashBitShares> = shares.iter().collect();
        let masks = pool.take_at(self.first_mask as usize, refs.len())?;
        Ok(DistanceResponse {
            session: self.session,
            server,
            shares: mask_distance_shares(&refs, &self.query, masks),
        })
    }
}

impl DistanceResponse {
    /// Encoded length for `count` candidates.
    #[must_use]
    pub const fn encoded_len(count: usize) -> usize {
        2 + 32 + 1 + 4 + 8 * count
    }

    /// The canonical encoding.
    ///
    /// # Errors
    /// [`WireError::InvalidField`] for too many shares.
    pub fn to_bytes(&self) -> Result<Vec<u8>, WireError> {
        let len = Self::encoded_len(self.shares.len());
        if len > MAX_MESSAGE_LEN {
            return Err(too_many("shares", self.shares.len()));
        }
        let mut w = Writer::with_capacity(MessageKind::DistanceResponse, len);
        w.bytes(&self.session);
        w.node(self.server);
        w.u32(u32::try_from(self.shares.len()).map_err(|_| too_many("shares", self.shares.len()))?);
        for s in &self.shares {
            w.fp61(*s);
        }
        Ok(w.finish())
    }

    /// Decodes [`DistanceResponse::to_bytes`].
    ///
    /// # Errors
    /// Any [`WireError`] of a malformed message.
    pub fn from_bytes(bytes: &[u8]) -> Result<DistanceResponse, WireError> {
        let mut r = Reader::new(bytes, MessageKind::DistanceResponse)?;
        let session = r.array::<32>("session")?;
        let server = r.node("server")?;
        let count = r.u32("share count")? as usize;
        bounded_count(count, 8, r.remaining(), "shares")?;
        let shares = (0..count)
            .map(|_| r.fp61("distance share"))
            .collect::<Result<_, _>>()?;
        r.finish()?;
        Ok(DistanceResponse {
            session,
            server,
            shares,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn node(i: u8) -> NodeId {
        NodeId::new(i).unwrap()
    }

    fn samples() -> Vec<Vec<u8>> {
        let mut shares = [Fp61::ZERO; HASH_BITS];
        for (i, s) in shares.iter_mut().enumerate() {
            *s = Fp61::from_u64(i as u64 * 0x1234_5678_9abc);
        }
        vec![
            CandidateRequest {
                session: [7; 32],
                min_band_votes: 2,
                tokens: vec![[1; 32], [2; 32]],
            }
            .to_bytes()
            .unwrap(),
            CandidateResponse {
                session: [7; 32],
                node: node(3),
                candidates: vec![(ImageId(1), 2), (ImageId(9), 8)],
            }
            .to_bytes()
            .unwrap(),
            DistanceRequest {
                session: [7; 32],
                server: node(2),
                first_mask: 3,
                candidates: vec![ImageId(1), ImageId(9)],
                query: HashBitShares(shares),
            }
            .to_bytes()
            .unwrap(),
            DistanceResponse {
                session: [7; 32],
                server: node(2),
                shares: vec![Fp61::from_u64(5), Fp61::from_u64(phr_sis::fp61::P - 1)],
            }
            .to_bytes()
            .unwrap(),
        ]
    }

    fn decode_any(bytes: &[u8]) -> Option<Vec<u8>> {
        match crate::wire::peek_kind(bytes).ok()? {
            MessageKind::CandidateRequest => {
                CandidateRequest::from_bytes(bytes).ok()?.to_bytes().ok()
            }
            MessageKind::CandidateResponse => {
                CandidateResponse::from_bytes(bytes).ok()?.to_bytes().ok()
            }
            MessageKind::DistanceRequest => {
                DistanceRequest::from_bytes(bytes).ok()?.to_bytes().ok()
            }
            MessageKind::DistanceResponse => {
                DistanceResponse::from_bytes(bytes).ok()?.to_bytes().ok()
            }
            _ => None,
        }
    }

    #[test]
    fn messages_round_trip_at_their_encoded_length() {
        let s = samples();
        assert_eq!(s[0].len(), CandidateRequest::encoded_len(2));
        assert_eq!(s[1].len(), CandidateResponse::encoded_len(2));
        assert_eq!(s[2].len(), DistanceRequest::encoded_len(2));
        assert_eq!(s[3].len(), DistanceResponse::encoded_len(2));
        for bytes in &s {
            assert_eq!(decode_any(bytes).as_ref(), Some(bytes));
        }
    }

    #[test]
    fn out_of_order_ids_and_non_canonical_elements_are_rejected() {
        let unordered = DistanceRequest {
            session: [0; 32],
            server: node(1),
            first_mask: 0,
            candidates: vec![ImageId(2), ImageId(2)],
            query: HashBitShares([Fp61::ZERO; HASH_BITS]),
        };
        assert!(unordered.to_bytes().is_err());
        let mut bytes = samples()[3].clone();
        let last = bytes.len() - 8;
        bytes[last..].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            DistanceResponse::from_bytes(&bytes),
            Err(WireError::InvalidField { .. })
        ));
        let mut bytes = samples()[1].clone();
        // Swap the two ids: 9 before 1.
        bytes[39..47].copy_from_slice(&9u64.to_be_bytes());
        bytes[51..59].copy_from_slice(&1u64.to_be_bytes());
        assert!(CandidateResponse::from_bytes(&bytes).is_err());
    }

    #[test]
    fn a_huge_count_is_refused_before_allocating() {
        let mut bytes = samples()[3].clone();
        bytes[35..39].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            DistanceResponse::from_bytes(&bytes),
            Err(WireError::Truncated { .. })
        ));
    }

    proptest! {
        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
            let _ = decode_any(&bytes);
        }

        #[test]
        fn mutated_messages_never_panic(which in 0usize..4, at in any::<usize>(), byte in any::<u8>(), cut in any::<usize>()) {
            let mut bytes = samples()[which].clone();
            let i = at % bytes.len();
            bytes[i] = byte;
            bytes.truncate(cut % (bytes.len() + 1));
            if let Some(again) = decode_any(&bytes) {
                prop_assert_eq!(again, bytes);
            }
        }
    }
}
