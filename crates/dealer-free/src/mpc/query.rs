//! Query validity: before a server computes a distance share, the servers check together that
//! the querier's shares encode bits and lie on one polynomial of degree `t − 1`, without
//! learning the query.
//!
//! Without the check a querier reads stored hashes: with `y_k = (1 − 2^k)/2` the opened
//! "distance" `Σ x_k·(1 − 2y_k) + Σ y_k` is `Σ 2^k·x_k` plus a known constant, 60 stored bits
//! in one query; shares off one polynomial of degree `t − 1` open linear combinations of
//! single servers' stored shares.
//!
//! 1. **Commit** ([`share_query`], [`commit_openings`]). For each server `j` the querier
//!    makes an opening ([`QueryOpening`]): its 64 bit shares `y_k(j)`, [`QUERY_CHECKS`]
//!    blinding shares `b_l(j)` (fresh sharings of degree `t − 1` with random constants) and a
//!    salt. The [`QueryCommitment`] holds one salted SHA-256 digest per server and the
//!    query's [`QueryScope`] (its mask pool, first mask and candidates); every server receives
//!    the same commitment with its own opening and refuses a request outside the scope.
//! 2. **Challenges** ([`QueryCommitment::challenges`]): `ρ_l` and `σ_l` from SHA-256 over a
//!    label, `l` and the encoded commitment, so they exist only once the querier is bound
//!    to all its shares.
//! 3. **Check** ([`QueryOpening::check`]). Server `j` checks its opening against the
//!    commitment and computes, for each `l`,
//!    * `v_l(j) = b_l(j) + Σ_k ρ_l^{k+1}·y_k(j)` (degree test), and
//!    * `u_l(j) = Σ_k σ_l^{k+1}·y_k(j)·(y_k(j) − 1) + z_l(j)` (bit test), `z_l` a mask of the
//!      query's pool: a zero-sharing of degree `2t − 2`.
//!
//!    It signs them ([`SignedQueryCheck`]) and the querier relays every server's check to
//!    every server.
//! 4. **Judge** ([`judge_query`]). Every server accepts only if all servers of the commitment
//!    checked the same commitment, every `v_l` lies on one polynomial of degree `t − 1` with
//!    no point off it, and every `u_l` lies on one polynomial of degree `2t − 2` with no point
//!    off it and constant term 0. Only then does it compute distance shares.
//!
//! **Soundness.** If some `y_k` has degree above `t − 1`, `Σ ρ^{k+1}·y_k + b_l` as a
//! polynomial in `ρ` of degree 64 has a non-zero coefficient above degree `t − 1`: it passes
//! for at most 64 of the `p` values of `ρ_l` (Schwartz–Zippel), and all lanes with
//! probability `(64/p)^QUERY_CHECKS ≈ 2^−110` per commitment. Given degree `t − 1`, the
//! products `y_k·(y_k − 1)` have degree `2t − 2` and `u_l(0) = Σ σ_l^{k+1}·y_k(0)(y_k(0) − 1)`,
//! zero for all lanes with probability at most `(64/p)^QUERY_CHECKS` unless every `y_k(0)` is
//! 0 or 1. A querier grinding `H` commitments succeeds with probability `≈ H·2^−110`.
//!
//! **Hiding.** `v_l` is a uniformly random polynomial of degree `t − 1` (the blinding has a
//! random constant), and `u_l` a uniformly random polynomial of degree `2t − 2` through
//! `(0, 0)` for an honest query: the servers learn nothing about the query. The querier
//! learns `u_l` and `v_l`: functions of its own shares and of the check masks, which it can
//! therefore compute, but which no server uses again (each mask is used once). A server that
//! was left out of a query keeps those positions unused, and the querier could compute its
//! masks there from the others'; that is why the scope binds the first mask and the
//! candidates for every server: a later request naming those positions at that server alone
//! is refused by the others, whose masks there are spent, so it never gets every server's
//! check and no distance is computed with a mask the querier knows. The check involves no
//! stored share.
//!
//! **Who is wrong.** A server cannot tell a cheating querier from a lying server: it refuses
//! either way (fail closed). The querier knows every `v_l(j)` in advance and names any server
//! whose degree values differ ([`audit_checks`]); a wrong `u_l(j)` is named when the servers
//! are enough to decode past it.

use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use phr_sis::NodeId;
use phr_sis::fp61::reed_solomon::decode;
use phr_sis::fp61::{Fp61, split_values_for};
use rand::CryptoRng;

use super::messages::SessionId;
use super::{HASH_BITS, HashBitShares, MpcError, reduce_u128};
use crate::identity::{NodeKeys, NodePublicKeys, SIGNATURE_LEN, Signature};
use crate::wire::{MessageKind, Reader, WireError, Writer};

/// Independent lanes of each test (degree and bits), each with its own challenge.
pub const QUERY_CHECKS: usize = 2;

/// Masks a query uses for its bit test, ahead of its candidates' masks: the masks
/// `first_mask .. first_mask + CHECK_MASKS` of its range.
pub const CHECK_MASKS: usize = QUERY_CHECKS;

const SHARES_LABEL: &[u8] = b"dealer-free-sis/mpc/query-shares/v1";
const COMMITMENT_LABEL: &[u8] = b"dealer-free-sis/mpc/query-commitment/v1";
const CHALLENGE_LABEL: &[u8] = b"dealer-free-sis/mpc/query-challenge/v1";

/// The domain a server's [`QueryCheck`] is signed under.
pub const QUERY_CHECK_DOMAIN: &[u8] = b"dealer-free-sis/mpc/query-check/v1";

/// The querier's commitment to every server's opening: one salted digest per server. Public;
/// every server must see the same one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryCommitment {
    session: SessionId,
    scope: QueryScope,
    servers: Vec<NodeId>,
    digests: Vec<[u8; 32]>,
}

/// What every server of a query must use alike, bound into the commitment that every signed
/// check names: the mask pool, the query's first mask in it, and the candidates (their
/// digest). A server refuses a request whose own values differ, so no server spends a mask
/// others did not, and every opened value is one candidate's at every server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryScope {
    /// The mask session (pool) the query's masks come from.
    pub mask_session: SessionId,
    /// The position of the query's first mask in the pool: its check takes
    /// [`CHECK_MASKS`] masks from there, then each candidate one.
    pub first_mask: u32,
    /// [`QueryScope::candidates_digest`] of the candidates, ascending.
    pub candidates: [u8; 32],
}

const CANDIDATES_LABEL: &[u8] = b"dealer-free-sis/mpc/query-candidates/v1";

impl QueryScope {
    /// The scope of a query ranking `candidates` (ascending) with masks from `first_mask`
    /// of pool `mask_session`.
    #[must_use]
    pub fn new(mask_session: SessionId, first_mask: u32, candidates: &[phr_sis::ImageId]) -> Self {
        QueryScope {
            mask_session,
            first_mask,
            candidates: Self::candidates_digest(candidates),
        }
    }

    /// SHA-256 over a label, the count and the ids.
    #[must_use]
    pub fn candidates_digest(candidates: &[phr_sis::ImageId]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(CANDIDATES_LABEL);
        h.update(
            u64::try_from(candidates.len())
                .unwrap_or(u64::MAX)
                .to_be_bytes(),
        );
        for id in candidates {
            h.update(id.0.to_be_bytes());
        }
        h.finalize().into()
    }
}

/// One server's opening of the commitment: its shares of the 64 query bits, of the blinding
/// sharings, and the salt of its digest. Secret: zeroized on drop, `Debug` redacted.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct QueryOpening {
    salt: [u8; 32],
    shares: HashBitShares,
    blinding: [Fp61; QUERY_CHECKS],
}

/// The challenges of one commitment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Challenges {
    /// `ρ_l`: the degree test's.
    pub degree: [Fp61; QUERY_CHECKS],
    /// `σ_l`: the bit test's.
    pub bits: [Fp61; QUERY_CHECKS],
}

/// A server's check values of the query's shares. Public.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryCheck {
    /// The query session.
    pub session: SessionId,
    /// The server that computed it.
    pub server: NodeId,
    /// [`QueryCommitment::digest`] of the commitment it checked against.
    pub commitment: [u8; 32],
    /// `v_l(j)`, the degree test.
    pub degree: [Fp61; QUERY_CHECKS],
    /// `u_l(j)`, the bit test, masked.
    pub bits: [Fp61; QUERY_CHECKS],
}

/// A [`QueryCheck`] signed by its server under [`QUERY_CHECK_DOMAIN`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedQueryCheck {
    /// The check.
    pub check: QueryCheck,
    /// The server's signature.
    pub signature: Signature,
}

/// Why the servers refuse a query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryRejection {
    /// Servers of the commitment sent no check.
    #[error("servers {0:?} sent no check of the query")]
    MissingChecks(Vec<NodeId>),
    /// A check of a node that is no server of the query, of another session or commitment,
    /// or a second check of one server.
    #[error(
        "node {0}'s check is no check of this query (another session, commitment or a second check)"
    )]
    ForeignCheck(NodeId),
    /// The degree test failed: the shares do not lie on one polynomial of degree `t − 1`.
    /// `off` names the servers whose values are off the closest polynomial when it could be
    /// decoded (the querier gave them other shares, or they lied).
    #[error("the query's shares do not lie on one polynomial of degree t − 1 (off: {off:?})")]
    NotOneSharing {
        /// Servers off the decoded polynomial; empty if none could be decoded.
        off: Vec<NodeId>,
    },
    /// The bit test failed: some query share does not encode 0 or 1, or `off` lied.
    #[error("the query's shares do not encode bits (off: {off:?})")]
    NotBits {
        /// Servers off the decoded polynomial; empty if the constant term is what failed.
        off: Vec<NodeId>,
    },
}

impl QueryRejection {
    /// The servers named (possibly empty: then the querier is to blame, or nobody can tell).
    #[must_use]
    pub fn named(&self) -> Vec<NodeId> {
        match self {
            QueryRejection::MissingChecks(v) => v.clone(),
            QueryRejection::ForeignCheck(n) => vec![*n],
            QueryRejection::NotOneSharing { off } | QueryRejection::NotBits { off } => off.clone(),
        }
    }
}

fn invalid(field: &'static str, reason: &str) -> WireError {
    WireError::InvalidField {
        field,
        reason: reason.to_owned(),
    }
}

fn opening_digest(session: &SessionId, server: NodeId, opening: &QueryOpening) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(SHARES_LABEL);
    h.update(session);
    h.update([server.get()]);
    h.update(opening.salt);
    for v in opening.shares.shares().iter().chain(&opening.blinding) {
        h.update(v.value().to_le_bytes());
    }
    h.finalize().into()
}

/// Querier side: shares the bits of `hash` with degree `t − 1` among `servers`, with fresh
/// blinding sharings, and commits to every server's opening.
///
/// # Errors
/// [`MpcError::Params`] for `t = 0`, fewer servers than `t` or a repeated server.
pub fn share_query<R: CryptoRng + ?Sized>(
    session: SessionId,
    scope: QueryScope,
    hash: phr_sis::ImageHash,
    t: u8,
    servers: &[NodeId],
    rng: &mut R,
) -> Result<(QueryCommitment, Vec<(NodeId, QueryOpening)>), MpcError> {
    let bits = super::share_hash_bits(hash, t, servers, rng)?;
    let mut constants = [Fp61::ZERO; QUERY_CHECKS];
    for c in &mut constants {
        *c = Fp61::random(rng);
    }
    let blinding =
        split_values_for(&constants, t, servers, rng).map_err(|e| MpcError::Params(e.to_string()));
    constants.zeroize();
    let openings = bits
        .into_iter()
        .zip(blinding?)
        .map(|((id, shares), (_, mut b))| {
            let mut lanes = [Fp61::ZERO; QUERY_CHECKS];
            for (l, v) in lanes.iter_mut().zip(&b) {
                *l = *v;
            }
            b.zeroize();
            (id, shares, lanes)
        })
        .collect();
    commit_openings(session, scope, openings, rng)
}

/// Querier side from given shares (`(server, bit shares, blinding shares)`): draws the salts
/// and commits. [`share_query`] gives honest shares; a test of a cheating querier gives
/// others.
///
/// # Errors
/// [`MpcError::Params`] for no servers or a repeated server.
pub fn commit_openings<R: CryptoRng + ?Sized>(
    session: SessionId,
    scope: QueryScope,
    mut openings: Vec<(NodeId, HashBitShares, [Fp61; QUERY_CHECKS])>,
    rng: &mut R,
) -> Result<(QueryCommitment, Vec<(NodeId, QueryOpening)>), MpcError> {
    openings.sort_unstable_by_key(|(id, ..)| *id);
    if openings.is_empty() || openings.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(MpcError::Params(
            "a query needs distinct servers, at least one".into(),
        ));
    }
    let mut servers = Vec::with_capacity(openings.len());
    let mut digests = Vec::with_capacity(openings.len());
    let mut out = Vec::with_capacity(openings.len());
    for (id, shares, blinding) in openings {
        let mut salt = [0u8; 32];
        rng.fill_bytes(&mut salt);
        let opening = QueryOpening {
            salt,
            shares,
            blinding,
        };
        servers.push(id);
        digests.push(opening_digest(&session, id, &opening));
        out.push((id, opening));
    }
    Ok((
        QueryCommitment {
            session,
            scope,
            servers,
            digests,
        },
        out,
    ))
}

impl QueryCommitment {
    /// The query session.
    #[must_use]
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// The servers, ascending.
    #[must_use]
    pub fn servers(&self) -> &[NodeId] {
        &self.servers
    }

    /// What every server must use alike.
    #[must_use]
    pub fn scope(&self) -> QueryScope {
        self.scope
    }

    /// Encoded length (inside a distance request) for `servers` servers.
    #[must_use]
    pub const fn encoded_len(servers: usize) -> usize {
        32 + 32 + 4 + 32 + 1 + 33 * servers
    }

    /// `session (32) ‖ mask session (32) ‖ first mask (u32) ‖ candidates digest (32) ‖
    /// servers (u8) ‖ (server ‖ digest (32))*`, servers ascending.
    pub(crate) fn write(&self, w: &mut Writer) {
        w.bytes(&self.session);
        w.bytes(&self.scope.mask_session);
        w.u32(self.scope.first_mask);
        w.bytes(&self.scope.candidates);
        w.u8(u8::try_from(self.servers.len()).unwrap_or(u8::MAX));
        for (id, d) in self.servers.iter().zip(&self.digests) {
            w.node(*id);
            w.bytes(d);
        }
    }

    /// Reads [`QueryCommitment::write`]: at least one server, ascending, counts bounded by
    /// the bytes left.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<QueryCommitment, WireError> {
        let session = r.array::<32>("commitment session")?;
        let scope = QueryScope {
            mask_session: r.array::<32>("mask session")?,
            first_mask: r.u32("first mask")?,
            candidates: r.array::<32>("candidates digest")?,
        };
        let n = usize::from(r.u8("commitment servers")?);
        if n == 0 {
            return Err(invalid("commitment servers", "no server"));
        }
        if r.remaining() < 33 * n {
            return Err(WireError::Truncated {
                field: "commitment digests",
                need: 33 * n,
                got: r.remaining(),
            });
        }
        let mut servers: Vec<NodeId> = Vec::with_capacity(n);
        let mut digests = Vec::with_capacity(n);
        for _ in 0..n {
            let id = r.node("commitment server")?;
            if servers.last().is_some_and(|last| *last >= id) {
                return Err(invalid(
                    "commitment server",
                    "servers not strictly ascending",
                ));
            }
            servers.push(id);
            digests.push(r.array::<32>("commitment digest")?);
        }
        Ok(QueryCommitment {
            session,
            scope,
            servers,
            digests,
        })
    }

    /// SHA-256 over a label and the encoding: what every check names.
    #[must_use]
    pub fn digest(&self) -> [u8; 32] {
        let mut w = Writer::new(MessageKind::QueryCheck);
        self.write(&mut w);
        let mut h = Sha256::new();
        h.update(COMMITMENT_LABEL);
        h.update(w.as_slice());
        h.finalize().into()
    }

    /// The challenges: SHA-256 over a label, the test, the lane and the commitment's digest,
    /// reduced mod `p` from 128 bits.
    #[must_use]
    pub fn challenges(&self) -> Challenges {
        let digest = self.digest();
        let draw = |test: u8, lane: u8| {
            let mut h = Sha256::new();
            h.update(CHALLENGE_LABEL);
            h.update([test, lane]);
            h.update(digest);
            let out: [u8; 32] = h.finalize().into();
            let mut head = [0u8; 16];
            head.copy_from_slice(out.get(..16).unwrap_or(&[0u8; 16]));
            reduce_u128(u128::from_le_bytes(head))
        };
        let mut c = Challenges {
            degree: [Fp61::ZERO; QUERY_CHECKS],
            bits: [Fp61::ZERO; QUERY_CHECKS],
        };
        for (l, (d, b)) in (0u8..).zip(c.degree.iter_mut().zip(c.bits.iter_mut())) {
            *d = draw(0, l);
            *b = draw(1, l);
        }
        c
    }

    fn digest_of(&self, server: NodeId) -> Option<&[u8; 32]> {
        let k = self.servers.iter().position(|s| *s == server)?;
        self.digests.get(k)
    }
}

impl QueryOpening {
    /// The server's shares of the query bits. Secret.
    #[must_use]
    pub fn shares(&self) -> &HashBitShares {
        &self.shares
    }

    /// Encoded length inside a distance request.
    pub const ENCODED_LEN: usize = 32 + 8 * (HASH_BITS + QUERY_CHECKS);

    pub(crate) fn write(&self, w: &mut Writer) {
        w.bytes(&self.salt);
        for v in self.shares.shares().iter().chain(&self.blinding) {
            w.fp61(*v);
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<QueryOpening, WireError> {
        let salt = r.array::<32>("salt")?;
        let mut shares = [Fp61::ZERO; HASH_BITS];
        for s in &mut shares {
            *s = r.fp61("query bit share")?;
        }
        let mut blinding = [Fp61::ZERO; QUERY_CHECKS];
        for b in &mut blinding {
            *b = r.fp61("blinding share")?;
        }
        Ok(QueryOpening {
            salt,
            shares: HashBitShares(shares),
            blinding,
        })
    }

    /// Checks that this is server `server`'s opening of `commitment`: a server of it, with
    /// this digest (compared in constant time).
    ///
    /// # Errors
    /// [`MpcError::Params`] naming the mismatch.
    pub fn matches(&self, server: NodeId, commitment: &QueryCommitment) -> Result<(), MpcError> {
        let Some(digest) = commitment.digest_of(server) else {
            return Err(MpcError::Params(format!(
                "node {server} is not a server of the query's commitment"
            )));
        };
        let mine = opening_digest(&commitment.session, server, self);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&mine[..], &digest[..])) {
            return Err(MpcError::Params(format!(
                "the query shares for node {server} do not match the querier's commitment"
            )));
        }
        Ok(())
    }

    /// `v_l = b_l + Σ_k ρ_l^{k+1}·y_k` for each lane.
    fn degree_values(&self, challenges: &Challenges) -> [Fp61; QUERY_CHECKS] {
        let mut out = [Fp61::ZERO; QUERY_CHECKS];
        for ((v, rho), b) in out.iter_mut().zip(challenges.degree).zip(self.blinding) {
            *v = horner(self.shares.shares().iter().copied(), rho) + b;
        }
        out
    }

    /// Server side: checks this opening against `commitment` (this server among its servers,
    /// the digest) and computes the check values, the bit test masked by `masks` (the
    /// query's first [`CHECK_MASKS`] masks, zeroized here).
    ///
    /// # Errors
    /// [`MpcError::Params`] naming the mismatch.
    pub fn check(
        &self,
        server: NodeId,
        commitment: &QueryCommitment,
        mut masks: Vec<Fp61>,
    ) -> Result<QueryCheck, MpcError> {
        self.matches(server, commitment)?;
        if masks.len() != CHECK_MASKS {
            return Err(MpcError::Params(format!(
                "{} masks for the query's check, {CHECK_MASKS} needed",
                masks.len()
            )));
        }
        let challenges = commitment.challenges();
        let mut bits = [Fp61::ZERO; QUERY_CHECKS];
        for ((u, sigma), z) in bits.iter_mut().zip(challenges.bits).zip(&masks) {
            let products = self.shares.shares().iter().map(|y| *y * (*y - Fp61::ONE));
            *u = horner(products, sigma) + *z;
        }
        masks.zeroize();
        Ok(QueryCheck {
            session: commitment.session,
            server,
            commitment: commitment.digest(),
            degree: self.degree_values(&challenges),
            bits,
        })
    }
}

impl std::fmt::Debug for QueryOpening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QueryOpening(<redacted>)")
    }
}

/// `Σ_k ρ^{k+1}·a_k` by Horner's rule.
fn horner(values: impl DoubleEndedIterator<Item = Fp61>, rho: Fp61) -> Fp61 {
    values.rev().fold(Fp61::ZERO, |acc, a| acc * rho + a) * rho
}

impl QueryCheck {
    /// Encoded length.
    pub const ENCODED_LEN: usize = 2 + 32 + 1 + 32 + 16 * QUERY_CHECKS;

    /// `version ‖ kind ‖ session (32) ‖ server ‖ commitment digest (32) ‖ degree values ‖ bit
    /// values` (8 bytes each).
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(MessageKind::QueryCheck, Self::ENCODED_LEN);
        self.write_body(&mut w);
        w.finish()
    }

    fn write_body(&self, w: &mut Writer) {
        w.bytes(&self.session);
        w.node(self.server);
        w.bytes(&self.commitment);
        for v in self.degree.iter().chain(&self.bits) {
            w.fp61(*v);
        }
    }

    fn read_body(r: &mut Reader<'_>) -> Result<QueryCheck, WireError> {
        let session = r.array::<32>("session")?;
        let server = r.node("server")?;
        let commitment = r.array::<32>("commitment digest")?;
        let mut degree = [Fp61::ZERO; QUERY_CHECKS];
        for v in &mut degree {
            *v = r.fp61("degree check")?;
        }
        let mut bits = [Fp61::ZERO; QUERY_CHECKS];
        for v in &mut bits {
            *v = r.fp61("bit check")?;
        }
        Ok(QueryCheck {
            session,
            server,
            commitment,
            degree,
            bits,
        })
    }

    /// Decodes [`QueryCheck::to_bytes`]. Never panics.
    ///
    /// # Errors
    /// Any [`WireError`] of a malformed message.
    pub fn from_bytes(bytes: &[u8]) -> Result<QueryCheck, WireError> {
        let mut r = Reader::new(bytes, MessageKind::QueryCheck)?;
        let check = Self::read_body(&mut r)?;
        r.finish()?;
        Ok(check)
    }

    /// Signs the check with the server's identity keys.
    pub fn sign<R: CryptoRng + ?Sized>(self, keys: &NodeKeys, rng: &mut R) -> SignedQueryCheck {
        let signature = keys.sign(&signed_bytes(&self.to_bytes()), rng);
        SignedQueryCheck {
            check: self,
            signature,
        }
    }
}

fn signed_bytes(check: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(QUERY_CHECK_DOMAIN.len() + check.len());
    v.extend_from_slice(QUERY_CHECK_DOMAIN);
    v.extend_from_slice(check);
    v
}

impl SignedQueryCheck {
    /// Encoded length.
    pub const ENCODED_LEN: usize = QueryCheck::ENCODED_LEN + SIGNATURE_LEN;

    /// The check's encoding, then the signature.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(MessageKind::QueryCheck, Self::ENCODED_LEN);
        self.check.write_body(&mut w);
        self.signature.write(&mut w);
        w.finish()
    }

    /// Decodes [`SignedQueryCheck::to_bytes`] (the signature is not verified here). Never
    /// panics.
    ///
    /// # Errors
    /// Any [`WireError`] of a malformed message.
    pub fn from_bytes(bytes: &[u8]) -> Result<SignedQueryCheck, WireError> {
        let mut r = Reader::new(bytes, MessageKind::QueryCheck)?;
        let check = QueryCheck::read_body(&mut r)?;
        let sig = r.array::<SIGNATURE_LEN>("signature")?;
        r.finish()?;
        let signature =
            Signature::from_bytes(&sig).ok_or_else(|| invalid("signature", "malformed"))?;
        Ok(SignedQueryCheck { check, signature })
    }

    /// The bytes the server signs: [`QUERY_CHECK_DOMAIN`] and the check's encoding.
    #[must_use]
    pub fn signed_message(&self) -> Vec<u8> {
        signed_bytes(&self.check.to_bytes())
    }

    /// Whether `keys` (the server's) signed the check.
    #[must_use]
    pub fn verify(&self, keys: &NodePublicKeys) -> bool {
        keys.signing.verify(&self.signed_message(), &self.signature)
    }
}

/// Judges the checks of every server of `commitment` (signatures verified by the caller):
/// `Ok` only if each server checked this commitment once, the degree lanes lie on polynomials
/// of degree `t − 1` and the bit lanes on polynomials of degree `2t − 2` through `(0, 0)`,
/// with no point off any of them.
///
/// # Errors
/// The [`QueryRejection`].
pub fn judge_query(
    commitment: &QueryCommitment,
    checks: &[QueryCheck],
    t: u8,
) -> Result<(), QueryRejection> {
    let digest = commitment.digest();
    let mut by_server: std::collections::BTreeMap<NodeId, &QueryCheck> =
        std::collections::BTreeMap::new();
    for c in checks {
        if c.session != commitment.session
            || c.commitment != digest
            || !commitment.servers.contains(&c.server)
            || by_server.insert(c.server, c).is_some()
        {
            return Err(QueryRejection::ForeignCheck(c.server));
        }
    }
    let missing: Vec<NodeId> = commitment
        .servers
        .iter()
        .filter(|s| !by_server.contains_key(s))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Err(QueryRejection::MissingChecks(missing));
    }
    let t = usize::from(t.max(1));
    for l in 0..QUERY_CHECKS {
        let lane = |f: fn(&QueryCheck) -> [Fp61; QUERY_CHECKS]| -> Vec<(NodeId, Fp61)> {
            by_server
                .iter()
                .map(|(id, c)| (*id, f(c).get(l).copied().unwrap_or(Fp61::ZERO)))
                .collect()
        };
        match decode(&lane(|c| c.degree), t - 1) {
            Ok(d) if d.wrong.is_empty() => {}
            Ok(d) => return Err(QueryRejection::NotOneSharing { off: d.wrong }),
            Err(_) => return Err(QueryRejection::NotOneSharing { off: Vec::new() }),
        }
        match decode(&lane(|c| c.bits), 2 * t - 2) {
            Ok(d) if d.wrong.is_empty() && d.value_at_zero == Fp61::ZERO => {}
            Ok(d) => return Err(QueryRejection::NotBits { off: d.wrong }),
            Err(_) => return Err(QueryRejection::NotBits { off: Vec::new() }),
        }
    }
    Ok(())
}

/// Querier side: the servers whose degree values differ from what the querier's own
/// openings give (the querier knows them exactly, so these servers lied), sorted.
#[must_use]
pub fn audit_checks(
    commitment: &QueryCommitment,
    openings: &[(NodeId, QueryOpening)],
    checks: &[QueryCheck],
) -> Vec<NodeId> {
    let challenges = commitment.challenges();
    let mut lied: Vec<NodeId> = checks
        .iter()
        .filter(|c| {
            openings
                .iter()
                .find(|(id, _)| *id == c.server)
                .is_none_or(|(_, o)| o.degree_values(&challenges) != c.degree)
        })
        .map(|c| c.server)
        .collect();
    lied.sort_unstable();
    lied.dedup();
    lied
}

#[cfg(test)]
#[path = "query_tests.rs"]
mod tests;
