//! The messages of a secure query (Stage-2), one type per message, with their canonical
//! encodings (header of [`crate::wire`], then the fields below, big-endian counts):
//!
//! | message | fields |
//! |---|---|
//! | [`CandidateRequest`] (`0x33`) | session (32) · min_band_votes (u32) · count (u16) · tokens (32 each) |
//! | [`CandidateResponse`] (`0x34`) | session (32) · node (1) · count (u32) · (image id (u64) · band votes (u32)) each |
//! | [`DistanceRequest`] (`0x41`) | session (32) · server (1) · count (u32) · image ids (u64 each, strictly ascending) · commitment (session (32) · mask session (32) · first mask (u32) · candidates digest (32) · servers (u8) · (server · digest (32)) each) · opening (salt (32) · 64 bit shares · 2 blinding shares, 8 each) |
//! | [`QueryCheck`](super::query::QueryCheck) (`0x46`) | session (32) · server (1) · commitment digest (32) · 2 degree values · 2 bit values (8 each) · signature (64) |
//! | [`ChecksRelay`] (`0x47`) | session (32) · count (u8) · signed query checks (each as above, without its header) |
//! | [`DistanceResponse`] (`0x42`) | session (32) · server (1) · count (u32) · masked distance shares (8 each) |
//!
//! The querier sends every server the same [`CandidateRequest`] (the query's band tokens from
//! the threshold VOPRF), checks that the servers return the same candidates, then sends each
//! server a [`DistanceRequest`] with the commitment to its query shares, its own opening and
//! the candidates in ascending id order (the order in which every server consumes its
//! masks). Each server answers with a signed [`QueryCheck`](super::query::QueryCheck); the
//! querier relays all of them to every server ([`ChecksRelay`]), and each server that accepts
//! them ([`super::query::judge_query`]) answers with one masked field element per candidate.
//! Decoders bound every count by the bytes left before allocating and never panic.

use phr_sis::fp61::Fp61;
use phr_sis::token_index::Token;
use phr_sis::{ImageId, NodeId};

use super::HashBitShares;
use super::query::{QueryCommitment, QueryOpening, SignedQueryCheck};
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

/// Querier → one server: the commitment to the query's shares, this server's opening and the
/// candidates to rank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistanceRequest {
    /// The query session (the [`CandidateRequest`]'s): the server ranks only its own
    /// candidates of this session.
    pub session: SessionId,
    /// The server addressed (its opening is for this point only).
    pub server: NodeId,
    /// The candidates, strictly ascending (their digest is the commitment's scope's).
    pub candidates: Vec<ImageId>,
    /// The querier's commitment to every server's opening and to the query's scope: the
    /// mask pool and the first mask (the check takes [`super::query::CHECK_MASKS`] masks
    /// from there, then each candidate one, in order). The same for every server.
    pub commitment: QueryCommitment,
    /// This server's shares of the query bits and of the blinding, and their salt.
    pub opening: QueryOpening,
}

/// Querier → every server: every server's signed check of the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecksRelay {
    /// The query session.
    pub session: SessionId,
    /// One signed check per server of the query.
    pub checks: Vec<SignedQueryCheck>,
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
    /// at least `t` servers return it, among the servers whose list holds it
    /// ([`super::querier::Querier::agree`]): each will rank only its own list.
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
    /// Encoded length for `count` candidates and `servers` servers.
    #[must_use]
    pub const fn encoded_len(count: usize, servers: usize) -> usize {
        2 + 32
            + 1
            + 4
            + 8 * count
            + QueryCommitment::encoded_len(servers)
            + QueryOpening::ENCODED_LEN
    }

    /// The canonical encoding.
    ///
    /// # Errors
    /// [`WireError::InvalidField`] if the candidates are not strictly ascending or too many.
    pub fn to_bytes(&self) -> Result<zeroize::Zeroizing<Vec<u8>>, WireError> {
        let len = Self::encoded_len(self.candidates.len(), self.commitment.servers().len());
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
        w.u32(
            u32::try_from(self.candidates.len())
                .map_err(|_| too_many("candidates", self.candidates.len()))?,
        );
        for id in &self.candidates {
            w.u64(id.0);
        }
        self.commitment.write(&mut w);
        self.opening.write(&mut w);
        Ok(zeroize::Zeroizing::new(w.finish()))
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
        let commitment = QueryCommitment::read(&mut r)?;
        let opening = QueryOpening::read(&mut r)?;
        r.finish()?;
        Ok(DistanceRequest {
            session,
            server,
            candidates,
            commitment,
            opening,
        })
    }
}

impl ChecksRelay {
    /// Encoded length for `count` checks.
    #[must_use]
    pub const fn encoded_len(count: usize) -> usize {
        2 + 32 + 1 + (SignedQueryCheck::ENCODED_LEN - 2) * count
    }

    /// The canonical encoding.
    ///
    /// # Errors
    /// [`WireError::InvalidField`] for more than 255 checks.
    pub fn to_bytes(&self) -> Result<Vec<u8>, WireError> {
        let count =
            u8::try_from(self.checks.len()).map_err(|_| too_many("checks", self.checks.len()))?;
        let mut w = Writer::with_capacity(
            MessageKind::QueryChecks,
            Self::encoded_len(self.checks.len()),
        );
        w.bytes(&self.session);
        w.u8(count);
        for c in &self.checks {
            let bytes = c.to_bytes();
            w.bytes(bytes.get(2..).unwrap_or_default());
        }
        Ok(w.finish())
    }

    /// Decodes [`ChecksRelay::to_bytes`] (the signatures are not verified here).
    ///
    /// # Errors
    /// Any [`WireError`] of a malformed message.
    pub fn from_bytes(bytes: &[u8]) -> Result<ChecksRelay, WireError> {
        let mut r = Reader::new(bytes, MessageKind::QueryChecks)?;
        let session = r.array::<32>("session")?;
        let count = usize::from(r.u8("check count")?);
        let each = SignedQueryCheck::ENCODED_LEN - 2;
        bounded_count(count, each, r.remaining(), "checks")?;
        let mut checks = Vec::with_capacity(count);
        let mut framed = Vec::with_capacity(SignedQueryCheck::ENCODED_LEN);
        for _ in 0..count {
            framed.clear();
            framed
                .extend_from_slice(&[crate::wire::WIRE_VERSION, MessageKind::QueryCheck.to_byte()]);
            framed.extend_from_slice(r.slice("check", each)?);
            checks.push(SignedQueryCheck::from_bytes(&framed)?);
        }
        r.finish()?;
        Ok(ChecksRelay { session, checks })
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

    fn distance_request(candidates: Vec<ImageId>) -> DistanceRequest {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let servers = [node(1), node(2), node(3)];
        let scope = crate::mpc::query::QueryScope::new([8; 32], 3, &candidates);
        let (commitment, mut openings) = crate::mpc::query::share_query(
            [7; 32],
            scope,
            phr_sis::ImageHash(0xabc),
            2,
            &servers,
            &mut rng,
        )
        .unwrap();
        DistanceRequest {
            session: [7; 32],
            server: node(2),
            candidates,
            commitment,
            opening: openings.swap_remove(1).1,
        }
    }

    fn relay() -> ChecksRelay {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2);
        let keys = crate::identity::NodeKeys::generate(node(1), &mut rng);
        let check = crate::mpc::query::QueryCheck {
            session: [7; 32],
            server: node(1),
            commitment: [3; 32],
            degree: [Fp61::from_u64(4), Fp61::from_u64(5)],
            bits: [Fp61::from_u64(6), Fp61::from_u64(7)],
        };
        ChecksRelay {
            session: [7; 32],
            checks: vec![check.sign(&keys, &mut rng), check.sign(&keys, &mut rng)],
        }
    }

    fn samples() -> Vec<Vec<u8>> {
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
            distance_request(vec![ImageId(1), ImageId(9)])
                .to_bytes()
                .unwrap()
                .to_vec(),
            DistanceResponse {
                session: [7; 32],
                server: node(2),
                shares: vec![Fp61::from_u64(5), Fp61::from_u64(phr_sis::fp61::P - 1)],
            }
            .to_bytes()
            .unwrap(),
            relay().to_bytes().unwrap(),
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
            MessageKind::DistanceRequest => DistanceRequest::from_bytes(bytes)
                .ok()?
                .to_bytes()
                .ok()
                .map(|b| b.to_vec()),
            MessageKind::QueryChecks => ChecksRelay::from_bytes(bytes).ok()?.to_bytes().ok(),
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
        assert_eq!(s[2].len(), DistanceRequest::encoded_len(2, 3));
        assert_eq!(s[3].len(), DistanceResponse::encoded_len(2));
        assert_eq!(s[4].len(), ChecksRelay::encoded_len(2));
        for bytes in &s {
            assert_eq!(decode_any(bytes).as_ref(), Some(bytes));
        }
    }

    #[test]
    fn out_of_order_ids_and_non_canonical_elements_are_rejected() {
        let unordered = distance_request(vec![ImageId(2), ImageId(2)]);
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
        fn mutated_messages_never_panic(which in 0usize..5, at in any::<usize>(), byte in any::<u8>(), cut in any::<usize>()) {
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
