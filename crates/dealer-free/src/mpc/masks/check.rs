//! Verifiable mask dealing: a batched random-linear-combination check that a dealer's
//! sharings are zero-sharings of degree at most `2t − 2`, without revealing them.
//!
//! 1. **Deal** ([`deal_checked`], [`deal_from_values`]). For a session id, servers `S`,
//!    threshold `t` and `K` masks, dealer `i` draws `K + CHECKS` random zero-sharings of
//!    degree `2t − 2`; the last [`CHECKS`], the *blinding* sharings `b_l`, are used by the
//!    check only and never as masks. Recipient `j` gets a [`MaskDeal`] with its `K + CHECKS`
//!    points and a random salt;
//!    every server gets the same [`MaskCommitment`]: one digest per recipient, SHA-256 over a
//!    domain label, the session, the dealer, the recipient, the salt and the points.
//! 2. **Challenges** ([`MaskCommitment::challenges`]): `ρ_l ∈ GF(p)` from SHA-256 over a
//!    label, `l` and the whole encoded commitment, so the dealer fixes its points before any
//!    `ρ_l` exists.
//! 3. **Check** ([`MaskDeal::verify`]): recipient `j` checks its deal against the commitment
//!    and broadcasts `v_{l,j} = b_l(j) + Σ_{c<K} ρ_l^{c+1}·g_c(j)` for every `l`
//!    ([`MaskCheck`]).
//! 4. **Judge** ([`judge`]): every server decodes, for every `l`, the `v_{l,j}` as a
//!    Reed–Solomon codeword of degree `2t − 2` over the servers that sent a check. The dealer
//!    is accepted iff all decode with constant term 0; the servers off the codeword are named (the dealer sent them
//!    bad points, or they lied; either way their distance shares will be corrected by the
//!    querier's decoding). It is rejected, and named, if the constant term is not 0 or the
//!    checks are no codeword.
//!
//! **Soundness.** If some `g_c` has `g_c(0) ≠ 0` or degree above `2t − 2`, the combination
//! `b_l + Σ ρ_l^{c+1}·g_c` is, as a polynomial in `ρ_l` of degree `K`, non-zero in the
//! offending coefficient, so by Schwartz–Zippel it passes for at most `K` of the `p` values of
//! `ρ_l`: `≈ K/p ≈ K·2^−61` per challenge, `(K/p)^CHECKS` for all. The challenges are hashes of
//! the commitment, so a dealer can try many commitments offline: `H` hash evaluations succeed
//! with probability `≈ H·(K/p)^CHECKS` (`2^−95` for `K = 2^16`, `H = 2^40`; a single
//! challenge would give `2^−5`).
//!
//! **Hiding.** Each `b_l` is a fresh uniform zero-sharing of degree `2t − 2`, independent of
//! the masks and used once, so each lane of broadcast `v_{l,j}` is a uniform zero-sharing
//! too: they reveal nothing about the `g_c`. The salts keep the digests from being searched for the points.
//!
//! **With exactly `2t − 1` checks** the codeword has no redundancy (any `2t − 1` values lie
//! on a polynomial of degree `2t − 2`): only the constant-term test is possible. That is
//! still the test that matters for masks used at exactly those points, but no wrong check can
//! be told apart, and a single server lying in its check gets an honest dealer rejected. With
//! `m` checks, up to `⌊(m − 2t + 1)/2⌋` wrong checks are corrected and named, and a degree
//! above `2t − 2` is caught.
//!
//! **Random sharings** ([`MaskKind::Random`], the scrub's bit-share check): the same steps
//! with sharings (and blinding sharings) of degree `t − 1` whose constant terms are uniformly
//! random; the judge decodes degree `t − 1` and tests no constant term. It needs at least
//! `t + 1` checks: any `t` values lie on a polynomial of degree `t − 1`. With `m` checks, up to
//! `⌊(m − t)/2⌋` wrong checks are corrected and named. The kind is in the commitment, so in
//! the challenges and in the associated data each deal is sealed under.
//!
//! The commitment must reach every server unchanged: the transport signs it with the
//! dealer's `identity::NodeKeys` and the servers compare what they received (not done here).

use std::collections::BTreeSet;

use phr_sis::NodeId;
use phr_sis::fp61::Fp61;
use phr_sis::fp61::reed_solomon::{DecodeError, decode};
use rand::CryptoRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use super::{MaskKind, deal_sharings};
use crate::mpc::{MpcError, reduce_u128};
use crate::wire::{MessageKind, Reader, WireError, Writer};

/// Independent challenges per commitment, each with its own blinding sharing: a dealer that
/// grinds `H` commitments passes all of them with probability `≈ H·(K/p)^CHECKS`.
pub const CHECKS: usize = 3;

/// The most masks one commitment can cover (a [`MaskDeal`] of `MAX_MASKS + CHECKS` points stays
/// below [`crate::wire::MAX_MESSAGE_LEN`]). Deal more in several sessions.
pub const MAX_MASKS: usize = 500_000;

const DIGEST_LABEL: &[u8] = b"dealer-free-sis/mpc/mask-deal/v1";
const CHALLENGE_LABEL: &[u8] = b"dealer-free-sis/mpc/mask-challenge/v1";

/// A dealer's commitment to its zero-sharings: one digest per server. Broadcast to every
/// server of `S`; public.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskCommitment {
    session: [u8; 32],
    kind: MaskKind,
    dealer: NodeId,
    servers: Vec<NodeId>,
    count: u32,
    digests: Vec<[u8; 32]>,
}

/// One recipient's points of a dealer's `K + CHECKS` zero-sharings (the last [`CHECKS`]
/// are the blinding sharings), and the salt of its digest. Secret: zeroized on drop, `Debug` redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct MaskDeal {
    session: [u8; 32],
    dealer: NodeId,
    recipient: NodeId,
    salt: [u8; 32],
    values: Vec<Fp61>,
}

/// A recipient's check value of one dealer's deal, broadcast to every server. Public.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaskCheck {
    /// The dealing session.
    pub session: [u8; 32],
    /// The dealer checked.
    pub dealer: NodeId,
    /// The recipient that computed the check.
    pub node: NodeId,
    /// `b_l(j) + Σ_{c<K} ρ_l^{c+1}·g_c(j)` for each challenge `l`.
    pub values: [Fp61; CHECKS],
}

/// Why a dealer was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// The checks decode, but to a polynomial with a non-zero constant term: some sharing
    /// does not share 0.
    NonZeroConstant,
    /// The checks are no codeword of degree `2t − 2` within the correctable distance: the
    /// degree is too high, or too many points are wrong.
    NotACodeword,
}

/// The outcome of [`judge`] for one dealer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// The dealer's sharings are zero-sharings of degree at most `2t − 2` (except for the
    /// servers named).
    Accepted {
        /// The dealing session.
        session: [u8; 32],
        /// What the sharings share.
        kind: MaskKind,
        /// The dealer.
        dealer: NodeId,
        /// Masks dealt.
        count: u32,
        /// Servers whose check is off the decoded codeword, sorted.
        off_codeword: Vec<NodeId>,
        /// Servers of `S` that sent no check, sorted.
        missing: Vec<NodeId>,
    },
    /// The dealer cheated (or too many servers lied about it): its masks are not used.
    Rejected {
        /// The dealing session.
        session: [u8; 32],
        /// What the sharings were to share.
        kind: MaskKind,
        /// The dealer.
        dealer: NodeId,
        /// Why.
        reason: Rejection,
    },
}

impl Verdict {
    /// The dealer judged.
    #[must_use]
    pub fn dealer(&self) -> NodeId {
        match self {
            Verdict::Accepted { dealer, .. } | Verdict::Rejected { dealer, .. } => *dealer,
        }
    }

    /// The session.
    #[must_use]
    pub fn session(&self) -> [u8; 32] {
        match self {
            Verdict::Accepted { session, .. } | Verdict::Rejected { session, .. } => *session,
        }
    }

    /// What the dealer's sharings were to share.
    #[must_use]
    pub fn kind(&self) -> MaskKind {
        match self {
            Verdict::Accepted { kind, .. } | Verdict::Rejected { kind, .. } => *kind,
        }
    }

    /// Whether the checks accept the dealer's sharings (some servers may be named).
    #[must_use]
    pub fn is_accepted(&self) -> bool {
        matches!(self, Verdict::Accepted { .. })
    }

    /// Whether the dealer's masks are used: accepted with no server named. A dealer whose
    /// checks name a server (off the codeword, or silent) is left out by every server, since
    /// nobody can tell whether it dealt that server bad points: its masks would leave that
    /// server's distance shares off, spending the querier's correction on an honest server.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.is_accepted() && self.named().is_empty()
    }

    /// Servers named for this dealer: off the codeword or silent (empty when rejected).
    #[must_use]
    pub fn named(&self) -> Vec<NodeId> {
        match self {
            Verdict::Accepted {
                off_codeword,
                missing,
                ..
            } => {
                let mut v: Vec<NodeId> = off_codeword.iter().chain(missing).copied().collect();
                v.sort_unstable();
                v.dedup();
                v
            }
            Verdict::Rejected { .. } => Vec::new(),
        }
    }
}

fn digest(
    session: &[u8; 32],
    dealer: NodeId,
    recipient: NodeId,
    salt: &[u8; 32],
    values: &[Fp61],
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(DIGEST_LABEL);
    h.update(session);
    h.update([dealer.get(), recipient.get()]);
    h.update(salt);
    h.update(
        u64::try_from(values.len())
            .unwrap_or(u64::MAX)
            .to_be_bytes(),
    );
    for v in values {
        h.update(v.value().to_le_bytes());
    }
    h.finalize().into()
}

fn params(e: impl Into<String>) -> MpcError {
    MpcError::Params(e.into())
}

fn invalid(field: &'static str, reason: &str) -> WireError {
    WireError::InvalidField {
        field,
        reason: reason.to_owned(),
    }
}

/// Dealer side: `count` random zero-sharings of degree `2t − 2` and the blinding sharings, for
/// the servers `servers` (sorted in the commitment); returns the commitment to broadcast and
/// one deal per server (in sorted order).
///
/// # Errors
/// As [`deal_from_values`].
pub fn deal_checked<R: CryptoRng + ?Sized>(
    session: [u8; 32],
    kind: MaskKind,
    dealer: NodeId,
    servers: &[NodeId],
    t: u8,
    count: usize,
    rng: &mut R,
) -> Result<(MaskCommitment, Vec<MaskDeal>), MpcError> {
    if t == 0 {
        return Err(params("t = 0"));
    }
    if count > MAX_MASKS {
        return Err(params(format!("at most {MAX_MASKS} masks per session")));
    }
    let mut sorted = servers.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != servers.len() {
        return Err(params("a server is listed twice"));
    }
    let values = deal_sharings(servers, kind, t, count + CHECKS, rng);
    deal_from_values(session, kind, dealer, values.into_iter().collect(), rng)
}

/// Dealer side from given points: `values` holds, per server, its `K + CHECKS` points (the
/// last [`CHECKS`] of the blinding sharings). [`deal_checked`] draws them honestly; tests pass others.
///
/// # Errors
/// [`MpcError::Params`] for no or repeated servers, a dealer not among them, point lists of
/// different or zero lengths, or more than [`MAX_MASKS`] masks.
pub fn deal_from_values<R: CryptoRng + ?Sized>(
    session: [u8; 32],
    kind: MaskKind,
    dealer: NodeId,
    mut values: Vec<(NodeId, Vec<Fp61>)>,
    rng: &mut R,
) -> Result<(MaskCommitment, Vec<MaskDeal>), MpcError> {
    values.sort_unstable_by_key(|(j, _)| *j);
    let servers: Vec<NodeId> = values.iter().map(|(j, _)| *j).collect();
    if servers.windows(2).any(|w| w.first() == w.get(1)) {
        return Err(params("a server is listed twice"));
    }
    if !servers.contains(&dealer) {
        return Err(params(format!("dealer {dealer} is not a server")));
    }
    let len = values.first().map_or(0, |(_, v)| v.len());
    if len < CHECKS || values.iter().any(|(_, v)| v.len() != len) {
        return Err(params(format!(
            "point lists of different lengths or shorter than the {CHECKS} blinding sharings"
        )));
    }
    let count = u32::try_from(len - CHECKS)
        .ok()
        .filter(|c| *c as usize <= MAX_MASKS)
        .ok_or_else(|| params(format!("at most {MAX_MASKS} masks per session")))?;
    let mut deals = Vec::with_capacity(values.len());
    let mut digests = Vec::with_capacity(values.len());
    for (recipient, v) in values {
        let mut salt = [0u8; 32];
        rng.fill_bytes(&mut salt);
        digests.push(digest(&session, dealer, recipient, &salt, &v));
        deals.push(MaskDeal {
            session,
            dealer,
            recipient,
            salt,
            values: v,
        });
    }
    Ok((
        MaskCommitment {
            session,
            kind,
            dealer,
            servers,
            count,
            digests,
        },
        deals,
    ))
}

impl MaskCommitment {
    /// The dealing session.
    #[must_use]
    pub fn session(&self) -> [u8; 32] {
        self.session
    }

    /// The dealer.
    #[must_use]
    pub fn dealer(&self) -> NodeId {
        self.dealer
    }

    /// What the sharings share.
    #[must_use]
    pub fn kind(&self) -> MaskKind {
        self.kind
    }

    /// The servers `S`, ascending.
    #[must_use]
    pub fn servers(&self) -> &[NodeId] {
        &self.servers
    }

    /// Masks dealt, `K` (each deal holds `K + CHECKS` points).
    #[must_use]
    pub fn count(&self) -> u32 {
        self.count
    }

    /// One digest per server, in [`MaskCommitment::servers`] order.
    #[must_use]
    pub fn digests(&self) -> &[[u8; 32]] {
        &self.digests
    }

    /// The encoded length of a commitment to `servers` servers.
    #[must_use]
    pub const fn encoded_len(servers: usize) -> usize {
        2 + 32 + 1 + 1 + 4 + 2 + 33 * servers
    }

    /// The challenges `ρ_0 … ρ_{CHECKS−1}`: SHA-256 over a label, the challenge's index and
    /// the encoded commitment, reduced mod `p` (from 128 bits: the bias is below 2^−66).
    #[must_use]
    pub fn challenges(&self) -> [Fp61; CHECKS] {
        let encoded = self.to_bytes();
        let mut out = [Fp61::ZERO; CHECKS];
        for (l, rho) in (0u8..).zip(out.iter_mut()) {
            let mut h = Sha256::new();
            h.update(CHALLENGE_LABEL);
            h.update([l]);
            h.update(&encoded);
            let digest: [u8; 32] = h.finalize().into();
            let mut head = [0u8; 16];
            head.copy_from_slice(digest.get(..16).unwrap_or(&[0u8; 16]));
            *rho = reduce_u128(u128::from_le_bytes(head));
        }
        out
    }

    /// `version ‖ kind ‖ session (32) ‖ mask kind (0 zero-sum, 1 random) ‖ dealer ‖ count
    /// (u32 BE) ‖ servers (u16 BE) ‖ (server ‖ digest (32))*`, servers ascending.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(
            MessageKind::MaskCommitment,
            MaskCommitment::encoded_len(self.servers.len()),
        );
        w.bytes(&self.session);
        w.u8(self.kind.to_byte());
        w.node(self.dealer);
        w.u32(self.count);
        w.u16(u16::try_from(self.servers.len()).unwrap_or(u16::MAX));
        for (j, d) in self.servers.iter().zip(&self.digests) {
            w.node(*j);
            w.bytes(d);
        }
        w.finish()
    }

    /// Decodes [`MaskCommitment::to_bytes`]. Never panics.
    ///
    /// # Errors
    /// A [`WireError`]: truncation, trailing bytes, a wrong header, node id 0, no servers,
    /// servers not strictly ascending, the dealer not among them, a count above
    /// [`MAX_MASKS`].
    pub fn from_bytes(bytes: &[u8]) -> Result<MaskCommitment, WireError> {
        let mut r = Reader::new(bytes, MessageKind::MaskCommitment)?;
        let session = r.array::<32>("session")?;
        let kind = MaskKind::from_byte(r.u8("mask kind")?)
            .ok_or_else(|| invalid("mask kind", "neither zero-sum (0) nor random (1)"))?;
        let dealer = r.node("dealer")?;
        let count = r.u32("count")?;
        if count as usize > MAX_MASKS {
            return Err(invalid("count", "more masks than MAX_MASKS"));
        }
        let n = usize::from(r.u16("servers")?);
        if n == 0 || n > 255 {
            return Err(invalid("servers", "1 to 255 servers"));
        }
        if r.remaining() < 33 * n {
            return Err(WireError::Truncated {
                field: "digests",
                need: 33 * n,
                got: r.remaining(),
            });
        }
        let mut servers: Vec<NodeId> = Vec::with_capacity(n);
        let mut digests = Vec::with_capacity(n);
        for _ in 0..n {
            let j = r.node("server")?;
            if servers.last().is_some_and(|last| *last >= j) {
                return Err(invalid("server", "servers not strictly ascending"));
            }
            servers.push(j);
            digests.push(r.array::<32>("digest")?);
        }
        r.finish()?;
        if !servers.contains(&dealer) {
            return Err(invalid("dealer", "the dealer is not a server"));
        }
        Ok(MaskCommitment {
            session,
            kind,
            dealer,
            servers,
            count,
            digests,
        })
    }
}

impl MaskDeal {
    /// The dealing session.
    #[must_use]
    pub fn session(&self) -> [u8; 32] {
        self.session
    }

    /// The dealer.
    #[must_use]
    pub fn dealer(&self) -> NodeId {
        self.dealer
    }

    /// The recipient.
    #[must_use]
    pub fn recipient(&self) -> NodeId {
        self.recipient
    }

    /// The `K + CHECKS` points, the blinding sharings' last. Secret.
    #[must_use]
    pub fn values(&self) -> &[Fp61] {
        &self.values
    }

    /// The `K` mask points (without the blinding sharings'). Secret.
    #[must_use]
    pub fn masks(&self) -> &[Fp61] {
        self.values
            .get(..self.values.len().saturating_sub(CHECKS))
            .unwrap_or(&[])
    }

    /// Recipient side: checks the deal against the broadcast commitment (session, dealer,
    /// recipient among the servers, `K + CHECKS` points, digest) and computes the check values
    /// `v_l = b_l(j) + Σ_{c<K} ρ_l^{c+1}·g_c(j)` to broadcast.
    ///
    /// # Errors
    /// [`MpcError::Params`] naming the mismatch.
    pub fn verify(&self, commitment: &MaskCommitment) -> Result<MaskCheck, MpcError> {
        if self.session != commitment.session || self.dealer != commitment.dealer {
            return Err(params("the deal belongs to another session or dealer"));
        }
        let Some(k) = commitment.servers.iter().position(|j| *j == self.recipient) else {
            return Err(params(format!(
                "recipient {} is not a server of the commitment",
                self.recipient
            )));
        };
        if self.values.len() != commitment.count as usize + CHECKS {
            return Err(params(format!(
                "{} points, the commitment says {} + {CHECKS}",
                self.values.len(),
                commitment.count
            )));
        }
        let d = digest(
            &self.session,
            self.dealer,
            self.recipient,
            &self.salt,
            &self.values,
        );
        if commitment.digests.get(k) != Some(&d) {
            return Err(params(format!(
                "dealer {}'s points for {} do not match its commitment",
                self.dealer, self.recipient
            )));
        }
        let split = self.values.len() - CHECKS;
        let (masks, blinding) = self.values.split_at(split);
        let mut values = [Fp61::ZERO; CHECKS];
        for ((v, rho), b) in values.iter_mut().zip(commitment.challenges()).zip(blinding) {
            *v = masks.iter().rev().fold(Fp61::ZERO, |acc, m| acc * rho + *m) * rho + *b;
        }
        Ok(MaskCheck {
            session: self.session,
            dealer: self.dealer,
            node: self.recipient,
            values,
        })
    }

    /// The encoded length of a deal of `count` masks.
    #[must_use]
    pub const fn encoded_len(count: usize) -> usize {
        72 + 8 * (count + CHECKS)
    }

    /// `version ‖ kind ‖ session (32) ‖ dealer ‖ recipient ‖ salt (32) ‖ count K (u32 BE) ‖
    /// K + CHECKS points (8 bytes LE each)`. The bytes are secret: zeroize them after sending.
    #[must_use]
    pub fn to_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let count = self.values.len().saturating_sub(CHECKS);
        let mut w = Writer::with_capacity(MessageKind::MaskDeal, 72 + 8 * self.values.len());
        w.bytes(&self.session);
        w.node(self.dealer);
        w.node(self.recipient);
        w.bytes(&self.salt);
        w.u32(u32::try_from(count).unwrap_or(u32::MAX));
        for v in &self.values {
            w.fp61(*v);
        }
        zeroize::Zeroizing::new(w.finish())
    }

    /// Decodes [`MaskDeal::to_bytes`]. Never panics; the length is checked before the
    /// points are allocated.
    ///
    /// # Errors
    /// A [`WireError`]: truncation, trailing bytes, a wrong header, node id 0, a count above
    /// [`MAX_MASKS`], a point not below `p`.
    pub fn from_bytes(bytes: &[u8]) -> Result<MaskDeal, WireError> {
        let mut r = Reader::new(bytes, MessageKind::MaskDeal)?;
        let session = r.array::<32>("session")?;
        let dealer = r.node("dealer")?;
        let recipient = r.node("recipient")?;
        let salt = r.array::<32>("salt")?;
        let count = r.u32("count")? as usize;
        if count > MAX_MASKS {
            return Err(invalid("count", "more masks than MAX_MASKS"));
        }
        let need = 8 * (count + CHECKS);
        if r.remaining() < need {
            return Err(WireError::Truncated {
                field: "points",
                need,
                got: r.remaining(),
            });
        }
        let mut deal = MaskDeal {
            session,
            dealer,
            recipient,
            salt,
            values: Vec::with_capacity(count + CHECKS),
        };
        for _ in 0..count + CHECKS {
            deal.values.push(r.fp61("point")?);
        }
        r.finish()?;
        Ok(deal)
    }
}

impl Drop for MaskDeal {
    fn drop(&mut self) {
        self.values.zeroize();
        self.salt.zeroize();
    }
}

impl std::fmt::Debug for MaskDeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MaskDeal {{ dealer: {}, recipient: {}, {} points, <redacted> }}",
            self.dealer,
            self.recipient,
            self.values.len()
        )
    }
}

impl MaskCheck {
    /// The encoded length.
    pub const ENCODED_LEN: usize = 2 + 32 + 1 + 1 + 8 * CHECKS;

    /// `version ‖ kind ‖ session (32) ‖ dealer ‖ node ‖ CHECKS values (8 bytes LE each)`.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(MessageKind::MaskCheck, MaskCheck::ENCODED_LEN);
        w.bytes(&self.session);
        w.node(self.dealer);
        w.node(self.node);
        for v in self.values {
            w.fp61(v);
        }
        w.finish()
    }

    /// Decodes [`MaskCheck::to_bytes`]. Never panics.
    ///
    /// # Errors
    /// A [`WireError`]: truncation, trailing bytes, a wrong header, node id 0, a value not
    /// below `p`.
    pub fn from_bytes(bytes: &[u8]) -> Result<MaskCheck, WireError> {
        let mut r = Reader::new(bytes, MessageKind::MaskCheck)?;
        let session = r.array::<32>("session")?;
        let dealer = r.node("dealer")?;
        let node = r.node("node")?;
        let mut values = [Fp61::ZERO; CHECKS];
        for v in &mut values {
            *v = r.fp61("value")?;
        }
        r.finish()?;
        Ok(MaskCheck {
            session,
            dealer,
            node,
            values,
        })
    }
}

/// Every server: judges one dealer from its broadcast commitment and the checks received,
/// for threshold `t` (see the module documentation). Every server runs it on the same
/// broadcast data and reaches the same verdict.
///
/// # Errors
/// [`MpcError::Params`] for `t = 0`, a check of another session or dealer, from a node not in
/// `S`, or repeated; [`MpcError::TooFewNodes`] with fewer than `2t − 1` checks (or servers).
pub fn judge(
    commitment: &MaskCommitment,
    checks: &[MaskCheck],
    t: u8,
) -> Result<Verdict, MpcError> {
    if t == 0 {
        return Err(params("t = 0"));
    }
    let kind = commitment.kind;
    let needed = kind.min_servers(t);
    let degree = kind.degree(t);
    if commitment.servers.len() < needed {
        return Err(MpcError::TooFewNodes {
            needed,
            got: commitment.servers.len(),
            nodes: commitment.servers.clone(),
        });
    }
    let mut seen = BTreeSet::new();
    let mut points = Vec::with_capacity(checks.len());
    for c in checks {
        if c.session != commitment.session || c.dealer != commitment.dealer {
            return Err(params(format!(
                "node {}'s check belongs to another session or dealer",
                c.node
            )));
        }
        if !commitment.servers.contains(&c.node) {
            return Err(params(format!("node {} is not a server", c.node)));
        }
        if !seen.insert(c.node) {
            return Err(params(format!("node {} sent two checks", c.node)));
        }
        points.push((c.node, c.values));
    }
    if points.len() < needed {
        return Err(MpcError::TooFewNodes {
            needed,
            got: points.len(),
            nodes: seen.into_iter().collect(),
        });
    }
    let (session, dealer) = (commitment.session, commitment.dealer);
    let mut off_codeword: BTreeSet<NodeId> = BTreeSet::new();
    for l in 0..CHECKS {
        let lane: Vec<(NodeId, Fp61)> = points
            .iter()
            .map(|(node, v)| (*node, v.get(l).copied().unwrap_or(Fp61::ZERO)))
            .collect();
        let reason = match decode(&lane, degree) {
            Ok(d) if !kind.zero_constant() || d.value_at_zero == Fp61::ZERO => {
                off_codeword.extend(d.wrong);
                continue;
            }
            Ok(_) => Rejection::NonZeroConstant,
            Err(DecodeError::TooManyErrors { .. }) => Rejection::NotACodeword,
            Err(e) => return Err(params(e.to_string())),
        };
        return Ok(Verdict::Rejected {
            session,
            kind,
            dealer,
            reason,
        });
    }
    Ok(Verdict::Accepted {
        session,
        kind,
        dealer,
        count: commitment.count,
        off_codeword: off_codeword.into_iter().collect(),
        missing: commitment
            .servers
            .iter()
            .filter(|j| !seen.contains(j))
            .copied()
            .collect(),
    })
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
