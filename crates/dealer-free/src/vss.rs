//! Feldman and Pedersen verifiable secret sharing (VSS) over ristretto255.
//!
//! A dealer shares a secret `a_0` with a random polynomial `f(x) = a_0 + a_1·x + … +
//! a_{t−1}·x^{t−1}` over the ristretto255 scalar field; node `j` (a [`NodeId`], which is
//! also its x-coordinate) receives `s_j = f(j)`. Any `t` shares reconstruct `a_0` by Lagrange
//! interpolation at 0 ([`interpolate_at_zero`]); any `t − 1` shares are independent of it.
//! The dealer also publishes a vector of `t` group elements, a *commitment* to the
//! polynomial, against which every node checks its share, so a dishonest dealer cannot hand
//! out inconsistent shares undetected.
//!
//! * **Feldman VSS** ([`FeldmanDealer`], [`FeldmanCommitment`]): `C_k = a_k·G`, and node `j`
//!   checks `s_j·G == Σ_k C_k·j^k` ([`verify_share`]). The commitment is perfectly binding
//!   but only computationally hiding, and it *reveals* `C_0 = secret·G`: use it only when
//!   the public key `secret·G` is meant to be public anyway (e.g. a DKG's output key).
//! * **Pedersen VSS** ([`PedersenDealer`], [`PedersenCommitment`]): two polynomials `f`,
//!   `f'`, `C_k = a_k·G + b_k·H`, node `j` receives `(s_j, s'_j) = (f(j), f'(j))` and checks
//!   `s_j·G + s'_j·H == Σ_k C_k·j^k` ([`verify_pedersen_share`]). The commitment is
//!   *perfectly hiding* (it is independent of the secret, information-theoretically) and
//!   *computationally binding*: a dealer who could open it two ways would learn `log_G H`,
//!   i.e. solve discrete log in ristretto255.
//!
//! `G` is the ristretto255 basepoint; `H` ([`generator_h`]) is obtained by hashing the
//! fixed domain-separation string [`PEDERSEN_H_DOMAIN`] to the group (SHA-512, then
//! Elligator-based `from_uniform_bytes`, exactly `RistrettoPoint::hash_from_bytes::<Sha512>`),
//! so nobody knows `log_G H`. A test pins its encoding.
//!
//! Many shares can be checked at once with one random-linear-combination multiscalar
//! multiplication ([`verify_batch_vartime`], [`verify_pedersen_batch_vartime`]); if the batch
//! fails, a per-share fallback names the failing entries. Verification uses variable-time
//! arithmetic: it only touches public data and shares the verifier already holds.
//!
//! Commitments encode as `32·t` bytes (compressed points); decoding rejects a wrong number of
//! points, non-canonical encodings and the identity point.
//!
//! This module is sans-IO and performs no communication; complaint handling belongs to the
//! DKG built on top of it.
//!
//! # References
//! * P. Feldman, "A Practical Scheme for Non-interactive Verifiable Secret Sharing",
//!   FOCS 1987.
//! * T. P. Pedersen, "Non-Interactive and Information-Theoretic Secure Verifiable Secret
//!   Sharing", CRYPTO 1991.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::OnceLock;

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoBasepointTable, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{Identity, IsIdentity, VartimeMultiscalarMul};
use phr_sis::{NodeId, Threshold};
use rand::CryptoRng;
use sha2::{Digest, Sha512};
use zeroize::Zeroize;

/// The domain-separation string hashed to the group to obtain the Pedersen generator `H`.
pub const PEDERSEN_H_DOMAIN: &[u8] = b"dealer-free-sis/v1/pedersen-generator-H";

/// Bytes per encoded (compressed) ristretto255 point.
pub const POINT_LEN: usize = 32;

/// Errors of VSS dealing, decoding and verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VssError {
    /// A commitment encoding is not a whole number of 32-byte points.
    #[error("commitment encoding is {found} bytes, not a multiple of {POINT_LEN}")]
    TruncatedEncoding {
        /// The length found, in bytes.
        found: usize,
    },
    /// A commitment has the wrong number of points: it must have exactly `t`.
    #[error("commitment has {found} points, expected t = {expected}")]
    WrongCommitmentLength {
        /// The threshold `t`, i.e. the number of points expected.
        expected: usize,
        /// The number of points found.
        found: usize,
    },
    /// A point's encoding is not the canonical encoding of a ristretto255 point.
    #[error("commitment point {index} is not a canonical ristretto255 encoding")]
    NonCanonicalPoint {
        /// The position of the offending point in the commitment.
        index: usize,
    },
    /// A commitment point is the identity, which no honest dealer produces.
    #[error("commitment point {index} is the identity")]
    IdentityPoint {
        /// The position of the offending point in the commitment.
        index: usize,
    },
    /// A share does not match the dealer's commitment.
    #[error("share for node {id} does not match the commitment")]
    InvalidShare {
        /// The node whose share failed.
        id: NodeId,
    },
    /// Batch verification failed; these entries (indices into the batch) are bad.
    #[error("batch verification failed for entries {failing:?}")]
    BatchVerificationFailed {
        /// Indices into the batch of every entry that fails individually.
        failing: Vec<usize>,
    },
    /// The same node id appears twice among the shares to interpolate.
    #[error("node {id} appears more than once")]
    DuplicateNodeId {
        /// The repeated node id.
        id: NodeId,
    },
    /// Interpolation was asked for with no shares at all.
    #[error("no shares to interpolate")]
    NoShares,
}

/// The ristretto255 basepoint `G`.
#[must_use]
pub fn generator_g() -> RistrettoPoint {
    RISTRETTO_BASEPOINT_POINT
}

/// The Pedersen generator `H`: [`PEDERSEN_H_DOMAIN`] hashed to the group with SHA-512
/// (equal to `RistrettoPoint::hash_from_bytes::<Sha512>(PEDERSEN_H_DOMAIN)`). Computed once.
#[must_use]
pub fn generator_h() -> RistrettoPoint {
    static H: OnceLock<RistrettoPoint> = OnceLock::new();
    *H.get_or_init(|| {
        let digest = Sha512::digest(PEDERSEN_H_DOMAIN);
        let mut wide = [0u8; 64];
        wide.copy_from_slice(digest.as_slice());
        RistrettoPoint::from_uniform_bytes(&wide)
    })
}

/// A precomputed multiplication table for [`generator_h`] (fixed-base multiplications by `H`
/// are as fast as by the basepoint). Computed once.
#[must_use]
pub fn generator_h_table() -> &'static RistrettoBasepointTable {
    static TABLE: OnceLock<RistrettoBasepointTable> = OnceLock::new();
    TABLE.get_or_init(|| RistrettoBasepointTable::create(&generator_h()))
}

/// A uniformly random scalar from 64 random bytes reduced mod ℓ (bias ≤ 2^-250).
fn random_scalar<R: CryptoRng + ?Sized>(rng: &mut R) -> Scalar {
    let mut wide = [0u8; 64];
    rng.fill_bytes(&mut wide);
    let s = Scalar::from_bytes_mod_order_wide(&wide);
    wide.zeroize();
    s
}

/// A random non-zero scalar (zero occurs with probability 2^-252; resampled anyway so that
/// an honest commitment never contains the identity).
fn random_nonzero_scalar<R: CryptoRng + ?Sized>(rng: &mut R) -> Scalar {
    loop {
        let s = random_scalar(rng);
        if s != Scalar::ZERO {
            return s;
        }
    }
}

fn node_scalar(id: NodeId) -> Scalar {
    Scalar::from(id.get())
}

/// A secret polynomial of degree `t − 1`; coefficients are zeroized on drop.
#[derive(Clone)]
pub struct SecretPolynomial {
    coefficients: Vec<Scalar>,
}

impl SecretPolynomial {
    /// A polynomial of degree `t − 1` with constant term `secret` and random other
    /// coefficients.
    pub fn with_secret<R: CryptoRng + ?Sized>(
        secret: Scalar,
        threshold: Threshold,
        rng: &mut R,
    ) -> SecretPolynomial {
        let mut coefficients = Vec::with_capacity(usize::from(threshold.t()));
        coefficients.push(secret);
        for _ in 1..threshold.t() {
            coefficients.push(random_nonzero_scalar(rng));
        }
        SecretPolynomial { coefficients }
    }

    /// A polynomial of degree `t − 1` with all coefficients (including the secret) random.
    pub fn random<R: CryptoRng + ?Sized>(threshold: Threshold, rng: &mut R) -> SecretPolynomial {
        let secret = random_nonzero_scalar(rng);
        SecretPolynomial::with_secret(secret, threshold, rng)
    }

    /// The constant term `f(0)`.
    #[must_use]
    pub fn secret(&self) -> Scalar {
        self.coefficients.first().copied().unwrap_or(Scalar::ZERO)
    }

    /// The number of coefficients, `t`.
    #[must_use]
    pub fn len(&self) -> usize {
        self.coefficients.len()
    }

    /// Whether the polynomial has no coefficients (never, for one built from a
    /// [`Threshold`]).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.coefficients.is_empty()
    }

    /// `f(x)` at a node's x-coordinate (Horner's rule).
    #[must_use]
    pub fn evaluate(&self, id: NodeId) -> Scalar {
        let x = node_scalar(id);
        self.coefficients
            .iter()
            .rev()
            .fold(Scalar::ZERO, |acc, c| acc * x + c)
    }

    fn commit_to_g(&self) -> Vec<RistrettoPoint> {
        self.coefficients
            .iter()
            .map(RistrettoPoint::mul_base)
            .collect()
    }
}

impl Drop for SecretPolynomial {
    fn drop(&mut self) {
        self.coefficients.zeroize();
    }
}

impl fmt::Debug for SecretPolynomial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretPolynomial(<redacted>)")
    }
}

/// `k·P` for a small public `k` (a node id), by double-and-add: at most 8 doublings and 8
/// additions, far cheaper than a full scalar multiplication. Variable time (public data).
fn mul_small_vartime(p: &RistrettoPoint, k: u8) -> RistrettoPoint {
    let mut acc = RistrettoPoint::identity();
    let top = 8 - k.leading_zeros();
    for bit in (0..top).rev() {
        acc = acc + acc;
        if (k >> bit) & 1 == 1 {
            acc += p;
        }
    }
    acc
}

/// `Σ_k C_k·j^k`, by Horner's rule in the small x-coordinate `j` (`t` small
/// multiplications instead of a `t`-point multiscalar multiplication with full-size
/// scalars). Variable time (public data).
pub(crate) fn evaluate_commitment(points: &[RistrettoPoint], id: NodeId) -> RistrettoPoint {
    points
        .iter()
        .rev()
        .fold(RistrettoPoint::identity(), |acc, c| {
            mul_small_vartime(&acc, id.get()) + c
        })
}

fn encode_points(points: &[RistrettoPoint]) -> Vec<u8> {
    points
        .iter()
        .flat_map(|p| p.compress().to_bytes())
        .collect()
}

fn decode_points(bytes: &[u8], threshold: Threshold) -> Result<Vec<RistrettoPoint>, VssError> {
    if !bytes.len().is_multiple_of(POINT_LEN) {
        return Err(VssError::TruncatedEncoding { found: bytes.len() });
    }
    let expected = usize::from(threshold.t());
    let found = bytes.len() / POINT_LEN;
    if found != expected {
        return Err(VssError::WrongCommitmentLength { expected, found });
    }
    bytes
        .chunks_exact(POINT_LEN)
        .enumerate()
        .map(|(index, chunk)| {
            let compressed = CompressedRistretto::from_slice(chunk)
                .map_err(|_| VssError::NonCanonicalPoint { index })?;
            let point = compressed
                .decompress()
                .ok_or(VssError::NonCanonicalPoint { index })?;
            if point.is_identity() {
                return Err(VssError::IdentityPoint { index });
            }
            Ok(point)
        })
        .collect()
}

/// A Feldman commitment: `C_k = a_k·G` for `k = 0..t`. `C_0 = secret·G` is revealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeldmanCommitment(Vec<RistrettoPoint>);

impl FeldmanCommitment {
    /// The points `C_0, …, C_{t−1}`.
    #[must_use]
    pub fn points(&self) -> &[RistrettoPoint] {
        &self.0
    }

    /// `C_0 = secret·G`, the public key of the shared secret.
    #[must_use]
    pub fn public_key(&self) -> RistrettoPoint {
        self.0
            .first()
            .copied()
            .unwrap_or_else(RistrettoPoint::identity)
    }

    /// `t`, the number of points.
    #[must_use]
    pub fn threshold(&self) -> usize {
        self.0.len()
    }

    /// The commitment evaluated at node `j`: `Σ_k C_k·j^k`, which should equal `s_j·G`.
    #[must_use]
    pub fn evaluate(&self, id: NodeId) -> RistrettoPoint {
        evaluate_commitment(&self.0, id)
    }

    /// `32·t` bytes: the compressed points in order.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        encode_points(&self.0)
    }

    /// Decodes a commitment for a `threshold.t()`-point polynomial.
    ///
    /// # Errors
    /// [`VssError::TruncatedEncoding`] if the length is not a multiple of 32,
    /// [`VssError::WrongCommitmentLength`] if it does not hold exactly `t` points,
    /// [`VssError::NonCanonicalPoint`] for an invalid or non-canonical point encoding,
    /// [`VssError::IdentityPoint`] for the identity.
    pub fn from_bytes(bytes: &[u8], threshold: Threshold) -> Result<FeldmanCommitment, VssError> {
        decode_points(bytes, threshold).map(FeldmanCommitment)
    }
}

/// A Pedersen commitment: `C_k = a_k·G + b_k·H` for `k = 0..t`. Perfectly hiding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PedersenCommitment(Vec<RistrettoPoint>);

impl PedersenCommitment {
    /// The points `C_0, …, C_{t−1}`.
    #[must_use]
    pub fn points(&self) -> &[RistrettoPoint] {
        &self.0
    }

    /// `t`, the number of points.
    #[must_use]
    pub fn threshold(&self) -> usize {
        self.0.len()
    }

    /// The commitment evaluated at node `j`: `Σ_k C_k·j^k`, which should equal
    /// `s_j·G + s'_j·H`.
    #[must_use]
    pub fn evaluate(&self, id: NodeId) -> RistrettoPoint {
        evaluate_commitment(&self.0, id)
    }

    /// `32·t` bytes: the compressed points in order.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        encode_points(&self.0)
    }

    /// Decodes a commitment for a `threshold.t()`-point polynomial.
    ///
    /// # Errors
    /// As [`FeldmanCommitment::from_bytes`].
    pub fn from_bytes(bytes: &[u8], threshold: Threshold) -> Result<PedersenCommitment, VssError> {
        decode_points(bytes, threshold).map(PedersenCommitment)
    }
}

/// A Pedersen share `(s_j, s'_j) = (f(j), f'(j))`; zeroized on drop, `Debug` redacted (no
/// `PartialEq`: compare secret scalars only in constant time, with `subtle`).
#[derive(Clone)]
pub struct PedersenShare {
    id: NodeId,
    value: Scalar,
    blinding: Scalar,
}

impl PedersenShare {
    /// A share from its parts (e.g. as received from a dealer).
    #[must_use]
    pub fn new(id: NodeId, value: Scalar, blinding: Scalar) -> PedersenShare {
        PedersenShare {
            id,
            value,
            blinding,
        }
    }

    /// The receiving node, `j`.
    #[must_use]
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// `s_j = f(j)`, the share of the secret.
    #[must_use]
    pub fn value(&self) -> Scalar {
        self.value
    }

    /// `s'_j = f'(j)`, the share of the blinding polynomial.
    #[must_use]
    pub fn blinding(&self) -> Scalar {
        self.blinding
    }
}

impl Drop for PedersenShare {
    fn drop(&mut self) {
        self.value.zeroize();
        self.blinding.zeroize();
    }
}

impl fmt::Debug for PedersenShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PedersenShare")
            .field("id", &self.id)
            .field("value", &"<redacted>")
            .field("blinding", &"<redacted>")
            .finish()
    }
}

/// A Feldman dealer: a secret polynomial and its commitment.
#[derive(Debug)]
pub struct FeldmanDealer {
    polynomial: SecretPolynomial,
    commitment: FeldmanCommitment,
}

impl FeldmanDealer {
    /// Shares a fresh random secret.
    pub fn new<R: CryptoRng + ?Sized>(threshold: Threshold, rng: &mut R) -> FeldmanDealer {
        FeldmanDealer::from_polynomial(SecretPolynomial::random(threshold, rng))
    }

    /// Shares `secret`. (A zero secret gives an identity `C_0`, which
    /// [`FeldmanCommitment::from_bytes`] rejects.)
    pub fn with_secret<R: CryptoRng + ?Sized>(
        secret: Scalar,
        threshold: Threshold,
        rng: &mut R,
    ) -> FeldmanDealer {
        FeldmanDealer::from_polynomial(SecretPolynomial::with_secret(secret, threshold, rng))
    }

    fn from_polynomial(polynomial: SecretPolynomial) -> FeldmanDealer {
        let commitment = FeldmanCommitment(polynomial.commit_to_g());
        FeldmanDealer {
            polynomial,
            commitment,
        }
    }

    /// The public commitment to broadcast.
    #[must_use]
    pub fn commitment(&self) -> &FeldmanCommitment {
        &self.commitment
    }

    /// The shared secret `f(0)`.
    #[must_use]
    pub fn secret(&self) -> Scalar {
        self.polynomial.secret()
    }

    /// Node `j`'s share `s_j = f(j)`.
    #[must_use]
    pub fn share(&self, id: NodeId) -> Scalar {
        self.polynomial.evaluate(id)
    }
}

/// A Pedersen dealer: secret and blinding polynomials and their commitment.
#[derive(Debug)]
pub struct PedersenDealer {
    polynomial: SecretPolynomial,
    blinding: SecretPolynomial,
    commitment: PedersenCommitment,
}

impl PedersenDealer {
    /// Shares a fresh random secret.
    pub fn new<R: CryptoRng + ?Sized>(threshold: Threshold, rng: &mut R) -> PedersenDealer {
        let polynomial = SecretPolynomial::random(threshold, rng);
        PedersenDealer::from_polynomial(polynomial, threshold, rng)
    }

    /// Shares `secret`.
    pub fn with_secret<R: CryptoRng + ?Sized>(
        secret: Scalar,
        threshold: Threshold,
        rng: &mut R,
    ) -> PedersenDealer {
        let polynomial = SecretPolynomial::with_secret(secret, threshold, rng);
        PedersenDealer::from_polynomial(polynomial, threshold, rng)
    }

    fn from_polynomial<R: CryptoRng + ?Sized>(
        polynomial: SecretPolynomial,
        threshold: Threshold,
        rng: &mut R,
    ) -> PedersenDealer {
        let blinding = SecretPolynomial::random(threshold, rng);
        let h = generator_h_table();
        let points = polynomial
            .coefficients
            .iter()
            .zip(&blinding.coefficients)
            .map(|(a, b)| RistrettoPoint::mul_base(a) + b * h)
            .collect();
        PedersenDealer {
            polynomial,
            blinding,
            commitment: PedersenCommitment(points),
        }
    }

    /// The public commitment to broadcast.
    #[must_use]
    pub fn commitment(&self) -> &PedersenCommitment {
        &self.commitment
    }

    /// The shared secret `f(0)`.
    #[must_use]
    pub fn secret(&self) -> Scalar {
        self.polynomial.secret()
    }

    /// Node `j`'s share `(f(j), f'(j))`.
    #[must_use]
    pub fn share(&self, id: NodeId) -> PedersenShare {
        PedersenShare::new(id, self.polynomial.evaluate(id), self.blinding.evaluate(id))
    }
}

/// Checks a Feldman share: `s_j·G == Σ_k C_k·j^k`. Variable time (the share is the
/// verifier's own).
///
/// # Errors
/// [`VssError::InvalidShare`] if it does not match.
pub fn verify_share(
    id: NodeId,
    share: &Scalar,
    commitment: &FeldmanCommitment,
) -> Result<(), VssError> {
    let lhs = RistrettoPoint::vartime_multiscalar_mul([share], [generator_g()]);
    if lhs == commitment.evaluate(id) {
        Ok(())
    } else {
        Err(VssError::InvalidShare { id })
    }
}

/// Checks a Pedersen share: `s_j·G + s'_j·H == Σ_k C_k·j^k`. Variable time.
///
/// # Errors
/// [`VssError::InvalidShare`] if it does not match.
pub fn verify_pedersen_share(
    share: &PedersenShare,
    commitment: &PedersenCommitment,
) -> Result<(), VssError> {
    let lhs = RistrettoPoint::vartime_multiscalar_mul(
        [share.value, share.blinding],
        [generator_g(), generator_h()],
    );
    if lhs == commitment.evaluate(share.id) {
        Ok(())
    } else {
        Err(VssError::InvalidShare { id: share.id })
    }
}

/// One entry of a generic batch: `s·G + s'·H == Σ_k C_k·j^k`.
struct BatchEntry<'a> {
    id: NodeId,
    value: Scalar,
    blinding: Scalar,
    points: &'a [RistrettoPoint],
}

/// `Σ_i r_i·(s_i·G + s'_i·H − C_i(j_i)) == 0` with random 128-bit weights `r_i`: each
/// `C_i(j_i)` by Horner's rule, then one multiscalar multiplication of `|entries| + 2`
/// points with half-size scalars. A bad entry passes with probability at most 2^-128.
fn batch_holds<R: CryptoRng + ?Sized>(entries: &[BatchEntry<'_>], rng: &mut R) -> bool {
    let mut scalars = Vec::with_capacity(entries.len() + 2);
    let mut points = Vec::with_capacity(entries.len() + 2);
    let (mut g_coeff, mut h_coeff) = (Scalar::ZERO, Scalar::ZERO);
    for entry in entries {
        let mut wide = [0u8; 32];
        rng.fill_bytes(&mut wide[..16]);
        let r = Scalar::from_bytes_mod_order(wide);
        g_coeff += r * entry.value;
        h_coeff += r * entry.blinding;
        scalars.push(-r);
        points.push(evaluate_commitment(entry.points, entry.id));
    }
    scalars.push(g_coeff);
    points.push(generator_g());
    scalars.push(h_coeff);
    points.push(generator_h());
    RistrettoPoint::vartime_multiscalar_mul(&scalars, &points).is_identity()
}

fn verify_entries<R: CryptoRng + ?Sized>(
    entries: &[BatchEntry<'_>],
    rng: &mut R,
) -> Result<(), VssError> {
    if batch_holds(entries, rng) {
        return Ok(());
    }
    let failing: Vec<usize> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            let lhs = RistrettoPoint::vartime_multiscalar_mul(
                [e.value, e.blinding],
                [generator_g(), generator_h()],
            );
            lhs != evaluate_commitment(e.points, e.id)
        })
        .map(|(i, _)| i)
        .collect();
    if failing.is_empty() {
        // Every entry holding implies the combination holds; unreachable in practice.
        Ok(())
    } else {
        Err(VssError::BatchVerificationFailed { failing })
    }
}

/// Verifies many Feldman `(j, s_j, commitment)` triples at once: one multiscalar
/// multiplication over a random linear combination with weights from `rng` (a bad share
/// slips through with probability ≈ 2^-252). Variable time: for public data and the
/// verifier's own shares. Commitments may differ between entries (several dealers).
///
/// # Errors
/// [`VssError::BatchVerificationFailed`] listing the indices (into `items`) of every share
/// that fails individually.
pub fn verify_batch_vartime<R: CryptoRng + ?Sized>(
    items: &[(NodeId, Scalar, &FeldmanCommitment)],
    rng: &mut R,
) -> Result<(), VssError> {
    let entries: Vec<BatchEntry<'_>> = items
        .iter()
        .map(|(id, value, commitment)| BatchEntry {
            id: *id,
            value: *value,
            blinding: Scalar::ZERO,
            points: commitment.points(),
        })
        .collect();
    verify_entries(&entries, rng)
}

/// Verifies many Pedersen `(share, commitment)` pairs at once, like
/// [`verify_batch_vartime`].
///
/// # Errors
/// [`VssError::BatchVerificationFailed`] listing the indices (into `items`) of every share
/// that fails individually.
pub fn verify_pedersen_batch_vartime<R: CryptoRng + ?Sized>(
    items: &[(&PedersenShare, &PedersenCommitment)],
    rng: &mut R,
) -> Result<(), VssError> {
    let entries: Vec<BatchEntry<'_>> = items
        .iter()
        .map(|(share, commitment)| BatchEntry {
            id: share.id,
            value: share.value,
            blinding: share.blinding,
            points: commitment.points(),
        })
        .collect();
    verify_entries(&entries, rng)
}

/// Lagrange interpolation at 0: `Σ_i s_i·Π_{m≠i} x_m/(x_m − x_i)`. With `t` shares of a
/// degree-`(t − 1)` polynomial this is the secret.
///
/// # Errors
/// [`VssError::NoShares`] for an empty slice, [`VssError::DuplicateNodeId`] if an id repeats.
pub fn interpolate_at_zero(shares: &[(NodeId, Scalar)]) -> Result<Scalar, VssError> {
    if shares.is_empty() {
        return Err(VssError::NoShares);
    }
    let mut seen = BTreeSet::new();
    for (id, _) in shares {
        if !seen.insert(*id) {
            return Err(VssError::DuplicateNodeId { id: *id });
        }
    }
    let mut secret = Scalar::ZERO;
    for (i, (id_i, s_i)) in shares.iter().enumerate() {
        let x_i = node_scalar(*id_i);
        let mut num = Scalar::ONE;
        let mut den = Scalar::ONE;
        for (m, (id_m, _)) in shares.iter().enumerate() {
            if m != i {
                let x_m = node_scalar(*id_m);
                num *= x_m;
                den *= x_m - x_i;
            }
        }
        // den ≠ 0: ids are distinct and < ℓ.
        secret += s_i * num * den.invert();
    }
    Ok(secret)
}

/// The Lagrange coefficients at 0 for distinct node ids: `λ_i = Π_{m≠i} x_m/(x_m − x_i)`,
/// so that `Σ λ_i·f(x_i) = f(0)` for every polynomial of degree below `ids.len()`. The
/// denominators are inverted together (one field inversion). Ids must be distinct (a
/// repeated id gives a zero denominator, and then all-zero coefficients).
#[must_use]
pub fn lagrange_at_zero(ids: &[NodeId]) -> Vec<Scalar> {
    let xs: Vec<Scalar> = ids.iter().map(|id| node_scalar(*id)).collect();
    let mut nums = Vec::with_capacity(xs.len());
    let mut dens = Vec::with_capacity(xs.len());
    for (i, x_i) in xs.iter().enumerate() {
        let mut num = Scalar::ONE;
        let mut den = Scalar::ONE;
        for (m, x_m) in xs.iter().enumerate() {
            if m != i {
                num *= x_m;
                den *= x_m - x_i;
            }
        }
        nums.push(num);
        dens.push(den);
    }
    Scalar::invert_batch_alloc(&mut dens);
    nums.iter().zip(&dens).map(|(n, d)| n * d).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn horner_evaluation_equals_the_multiscalar_definition() {
        let points: Vec<RistrettoPoint> = (1u64..=9)
            .map(|k| Scalar::from(k * 7919) * generator_g() + Scalar::from(k) * generator_h())
            .collect();
        for j in [1u8, 2, 3, 64, 127, 128, 255] {
            let x = Scalar::from(j);
            let mut power = Scalar::ONE;
            let powers: Vec<Scalar> = points
                .iter()
                .map(|_| {
                    let p = power;
                    power *= x;
                    p
                })
                .collect();
            let id = NodeId::new(j).unwrap_or_else(|_| unreachable!());
            assert_eq!(
                evaluate_commitment(&points, id),
                RistrettoPoint::vartime_multiscalar_mul(&powers, &points)
            );
            assert_eq!(mul_small_vartime(&points[0], j), x * points[0]);
        }
    }
}
