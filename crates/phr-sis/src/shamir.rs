//! Shamir secret sharing of byte strings over GF(2^8), with the nodes' ids as x-coordinates.
//!
//! [`split`] turns a secret of `L` bytes into one [`ShamirShare`] of `L` bytes per node: byte
//! `i` of node `x`'s share is `f_i(x)`, where `f_i` is a polynomial of degree `t − 1` with
//! `f_i(0)` = byte `i` of the secret and its other `t − 1` coefficients uniformly random.
//! [`combine`] recovers the secret from any `t` shares by Lagrange interpolation at 0.
//!
//! # Guarantees
//! - **Threshold.** Any `t` distinct shares determine the secret; any `t − 1` are uniformly
//!   distributed and independent of it (perfect secrecy), provided the RNG is a CSPRNG. The
//!   integration tests check both: every `t`-subset in every order reconstructs, and the joint
//!   distribution of `t − 1` shares passes a chi-square test for two different secrets.
//! - **How the polynomial is drawn.** Instead of drawing the `t − 1` random coefficients, split
//!   draws the *values* of the first `t − 1` shares uniformly (straight into those shares) and
//!   interpolates the others through them and `(0, secret)`. The map from coefficients
//!   `(a_1 … a_{t−1})` to values `(f(x_1) … f(x_{t−1}))` at distinct non-zero points is a
//!   bijection for a fixed `f(0)` (a Vandermonde system), so the polynomial has exactly the
//!   distribution of textbook Shamir, at `(n − t + 1) · t` instead of `n · (t − 1)`
//!   multiplications per byte and with no coefficient buffer.
//! - **Hygiene.** Share data and combined secrets are [`SecretBytes`], wiped on drop (a bulk
//!   wipe behind an optimisation barrier). Split draws and computes straight into the shares
//!   and combine straight into the secret: no secret byte is copied anywhere else.
//!   [`SecretBytes`]'s and [`ShamirShare`]'s `Debug` print `<redacted>`, and their equality is
//!   constant time ([`ConstantTimeEq`]).
//! - **Constant time in the secret.** All arithmetic on secret bytes goes through the
//!   [`gf256`] bulk kernels (no secret-indexed memory, no secret branches); ids, lengths and
//!   the threshold are public and do steer control flow.
//! - **Speed.** [`split`] works in cache-sized blocks: the block's random shares are drawn
//!   with `fill_bytes`, then one [`gf256::mul_matrix`] computes every other share's block
//!   from them and the secret (each source byte split into nibbles once for all outputs).
//!   [`combine`] computes one Lagrange coefficient per share, then a single
//!   [`gf256::lin_comb`] pass over the data. Outputs are allocated once at their final size;
//!   buffers of 64 KiB and more are taken, already zeroed, from the wiped buffers earlier
//!   `SecretBytes` left behind, so a steady caller's outputs reuse mapped pages instead of
//!   faulting in fresh ones (see [`SecretBytes`]).
//!
//! # Caller obligations
//! - Pass a cryptographically secure RNG (the bound is [`rand::CryptoRng`]); the secrecy of
//!   the shares is exactly that of its output.
//! - Shamir sharing alone does not detect a wrong or tampered share: [`combine`] then returns
//!   a wrong secret. Authenticate shares (or the secret) where that matters.
//!
//! # References
//! - A. Shamir, "How to share a secret", Communications of the ACM 22(11), 1979.
//! - The field and its kernels: [`gf256`].

mod secret_bytes;

use std::fmt;
use std::iter;

use rand::CryptoRng;
use subtle::{Choice, ConstantTimeEq};

use crate::gf256;
use crate::params::{NodeId, Threshold};

pub use secret_bytes::SecretBytes;

/// Bytes of all shares together per block of [`split`] (each block between 256 B and 32 KiB):
/// a block's drawn shares are still in L2 when the other shares' blocks are computed from
/// them. Measured flat between 64 and 256 KiB on Zen 3; smaller blocks pay per-call overhead.
const SCRATCH: usize = 160 * 1024;

/// One node's share of a byte string: the node's id (its x-coordinate) and `f(id)` for every
/// byte of the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ShamirShare {
    /// The node this share belongs to; the x-coordinate of its points.
    pub id: NodeId,
    /// The share bytes, as long as the secret; wiped on drop.
    pub data: SecretBytes,
}

impl ShamirShare {
    /// The share of node `id` with these bytes.
    #[must_use]
    pub fn new(id: NodeId, data: Vec<u8>) -> ShamirShare {
        ShamirShare {
            id,
            data: SecretBytes::from(data),
        }
    }
}

impl fmt::Debug for ShamirShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShamirShare")
            .field("id", &self.id.get())
            .field("len", &self.data.len())
            .field("data", &format_args!("<redacted>"))
            .finish()
    }
}

impl ConstantTimeEq for ShamirShare {
    /// Constant time in the share bytes (ids and lengths are public).
    fn ct_eq(&self, other: &ShamirShare) -> Choice {
        self.id.get().ct_eq(&other.id.get()) & self.data.ct_eq(&other.data)
    }
}

/// Shares that cannot be split or combined as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShamirError {
    /// `t = 0`: a threshold needs at least one share.
    #[error("threshold t = 0 is not allowed: t must be at least 1")]
    ZeroThreshold,
    /// Fewer shares than the threshold: the secret is information-theoretically hidden.
    #[error(
        "only {given} share(s) given but threshold t = {needed} needs {needed} shares from \
         distinct nodes: collect more shares"
    )]
    NotEnoughShares {
        /// Shares given.
        given: usize,
        /// Shares needed (the threshold).
        needed: u8,
    },
    /// Fewer nodes than the threshold to split for: the secret could never be recovered.
    #[error(
        "only {given} node(s) given to split for but threshold t = {needed} needs at least \
         {needed}: add nodes or lower t"
    )]
    TooFewNodes {
        /// Nodes given.
        given: usize,
        /// Nodes needed (the threshold).
        needed: u8,
    },
    /// Two shares (or two nodes to split for) carry the same id: each id is one point.
    #[error("node id {0} appears more than once: every share must come from a distinct node")]
    DuplicateId(NodeId),
    /// Shares of one secret all have the secret's length; this one does not.
    #[error(
        "the share of node {id} has {len} bytes/values but the share of node {first} has \
         {expected}: shares of one secret all have the same length"
    )]
    LengthMismatch {
        /// The node whose share differs.
        id: NodeId,
        /// Its length.
        len: usize,
        /// The first share's node.
        first: NodeId,
        /// The first share's length.
        expected: usize,
    },
}

/// Splits `secret` into `n` shares for nodes `1..=n`, any `t` of which recover it.
///
/// Draws `(t − 1) · secret.len()` bytes from `rng` with `fill_bytes` (in blocks; the order
/// is not part of the API): the values of the first `t − 1` shares, from which the others are
/// interpolated (see the module docs for why this is textbook Shamir). Use a CSPRNG: a seeded
/// `ChaCha12Rng`/`ChaCha8Rng` for speed, or the OS generator.
#[must_use]
pub fn split<R>(secret: &[u8], threshold: Threshold, rng: &mut R) -> Vec<ShamirShare>
where
    R: CryptoRng + ?Sized,
{
    let nodes: Vec<NodeId> = threshold.nodes().collect();
    split_at_points(secret, threshold.t(), &nodes, rng)
}

/// Like [`split`], for an explicit set of nodes: one share per entry of `nodes`, in order.
///
/// # Errors
/// [`ShamirError::ZeroThreshold`] for `t = 0`, [`ShamirError::TooFewNodes`] if `nodes` has
/// fewer than `t` entries, [`ShamirError::DuplicateId`] if a node appears twice.
pub fn split_for<R>(
    secret: &[u8],
    t: u8,
    nodes: &[NodeId],
    rng: &mut R,
) -> Result<Vec<ShamirShare>, ShamirError>
where
    R: CryptoRng + ?Sized,
{
    check_nodes(t, nodes)?;
    Ok(split_at_points(secret, t, nodes, rng))
}

/// Checks a node set to split for: `t ≥ 1`, at least `t` nodes, no duplicates.
pub(crate) fn check_nodes(t: u8, nodes: &[NodeId]) -> Result<(), ShamirError> {
    if t == 0 {
        return Err(ShamirError::ZeroThreshold);
    }
    if nodes.len() < usize::from(t) {
        return Err(ShamirError::TooFewNodes {
            given: nodes.len(),
            needed: t,
        });
    }
    first_duplicate(nodes.iter().copied()).map_or(Ok(()), |id| Err(ShamirError::DuplicateId(id)))
}

/// The first id seen twice.
fn first_duplicate(ids: impl IntoIterator<Item = NodeId>) -> Option<NodeId> {
    let mut seen = [false; 256];
    ids.into_iter()
        .find(|id| std::mem::replace(&mut seen[usize::from(id.get())], true))
}

/// Like [`split_for`], writing into existing shares: the nodes are the shares' ids, and their
/// buffers are reused when large enough (overwritten in place; bytes beyond the new length are
/// wiped; a buffer too small is replaced and the old one wiped). Splitting many secrets of
/// similar size into the same shares this way allocates nothing after the first, which can
/// matter as much as the arithmetic: each fresh page of a new buffer costs a page fault
/// (about 1.5 µs per 4 KiB on the VM this was measured on, i.e. more than computing it).
///
/// # Errors
/// As [`split_for`], for the shares' ids: [`ShamirError::ZeroThreshold`],
/// [`ShamirError::TooFewNodes`], [`ShamirError::DuplicateId`]. The shares are untouched then.
pub fn split_into<R>(
    secret: &[u8],
    t: u8,
    shares: &mut [ShamirShare],
    rng: &mut R,
) -> Result<(), ShamirError>
where
    R: CryptoRng + ?Sized,
{
    let nodes: Vec<NodeId> = shares.iter().map(|s| s.id).collect();
    check_nodes(t, &nodes)?;
    fill_shares(secret, t, shares, rng);
    Ok(())
}

/// `t ≥ 1`, `nodes` distinct and at least `t` of them (checked by the callers).
fn split_at_points<R>(secret: &[u8], t: u8, nodes: &[NodeId], rng: &mut R) -> Vec<ShamirShare>
where
    R: CryptoRng + ?Sized,
{
    let mut shares: Vec<ShamirShare> = nodes
        .iter()
        .map(|&id| ShamirShare {
            id,
            data: SecretBytes::default(),
        })
        .collect();
    fill_shares(secret, t, &mut shares, rng);
    shares
}

/// Overwrites every share's data with its share of `secret`. `t ≥ 1`, ids distinct and at
/// least `t` shares (checked by the callers).
fn fill_shares<R>(secret: &[u8], t: u8, shares: &mut [ShamirShare], rng: &mut R)
where
    R: CryptoRng + ?Sized,
{
    let len = secret.len();
    let n = shares.len();
    let drawn = usize::from(t) - 1;
    // The polynomial is pinned by (0, secret) and the drawn shares; every other share is a
    // Lagrange combination of those t values.
    let points: Vec<u8> = iter::once(0)
        .chain(shares[..drawn].iter().map(|s| s.id.get()))
        .collect();
    let matrix: Vec<u8> = shares[drawn..]
        .iter()
        .flat_map(|s| lagrange_at(&points, s.id.get()))
        .collect();
    for share in shares.iter_mut() {
        share.data.resize_for_overwrite(len);
    }
    let (drawn_shares, computed_shares) = shares.split_at_mut(drawn);
    // Block by block, so that the drawn blocks are still in cache when the others are computed
    // from them.
    let block = (SCRATCH / n).clamp(256, 32 * 1024) & !63;
    for start in (0..len).step_by(block) {
        let end = (start + block).min(len);
        for share in drawn_shares.iter_mut() {
            rng.fill_bytes(&mut share.data[start..end]);
        }
        let srcs: Vec<&[u8]> = iter::once(&secret[start..end])
            .chain(drawn_shares.iter().map(|s| &s.data[start..end]))
            .collect();
        let mut dsts: Vec<&mut [u8]> = computed_shares
            .iter_mut()
            .map(|s| &mut s.data[start..end])
            .collect();
        gf256::mul_matrix(&mut dsts, &srcs, &matrix);
    }
}

/// Recovers the secret from the first `t` of `shares` by Lagrange interpolation at 0.
///
/// Every share given is checked (distinct ids, equal lengths), and there must be at least
/// `t`; only the first `t` are used, so extra shares cost nothing and are *not* checked for
/// consistency with the others (a wrong share silently gives a wrong secret: see the module
/// docs). The work is one Lagrange coefficient per used share and one [`gf256::lin_comb`]
/// pass over the data.
///
/// The secret comes back as [`SecretBytes`], wiped on drop.
///
/// # Errors
/// [`ShamirError::ZeroThreshold`] for `t = 0`, [`ShamirError::DuplicateId`] if two shares
/// carry the same id, [`ShamirError::LengthMismatch`] if their lengths differ,
/// [`ShamirError::NotEnoughShares`] if fewer than `t` are given.
pub fn combine(shares: &[ShamirShare], t: u8) -> Result<SecretBytes, ShamirError> {
    let len = check_shares(shares.iter().map(|s| (s.id, s.data.len())), t)?;
    let used = &shares[..usize::from(t)];
    let points: Vec<u8> = used.iter().map(|s| s.id.get()).collect();
    let lambdas = lagrange_at(&points, 0);
    // Straight into the output, allocated once at its size (zeros: a pooled buffer, or fresh
    // pages the kernel zeroes anyway); each byte is then written once.
    let mut secret = SecretBytes::zeroed(len);
    let srcs: Vec<&[u8]> = used.iter().map(|s| &s.data[..]).collect();
    gf256::lin_comb(&mut secret, &srcs, &lambdas);
    Ok(secret)
}

/// Checks shares given as `(id, length)`: `t ≥ 1`, distinct ids, one length, at least `t`
/// shares. Returns the common length (0 for no shares).
pub(crate) fn check_shares(
    shares: impl IntoIterator<Item = (NodeId, usize)>,
    t: u8,
) -> Result<usize, ShamirError> {
    if t == 0 {
        return Err(ShamirError::ZeroThreshold);
    }
    let mut seen = [false; 256];
    let mut first: Option<(NodeId, usize)> = None;
    let mut given = 0usize;
    for (id, len) in shares {
        if std::mem::replace(&mut seen[usize::from(id.get())], true) {
            return Err(ShamirError::DuplicateId(id));
        }
        match first {
            None => first = Some((id, len)),
            Some((first, expected)) if len != expected => {
                return Err(ShamirError::LengthMismatch {
                    id,
                    len,
                    first,
                    expected,
                });
            }
            Some(_) => {}
        }
        given += 1;
    }
    if given < usize::from(t) {
        return Err(ShamirError::NotEnoughShares { given, needed: t });
    }
    Ok(first.map_or(0, |(_, len)| len))
}

/// The Lagrange basis at `x` for the distinct `points`: `ℓ_i(x) = Π_{j≠i} (x − x_j) / (x_i − x_j)`
/// in GF(2^8) (subtraction is XOR), so that `f(x) = Σ ℓ_i(x) f(x_i)` for every polynomial of
/// degree below `points.len()`.
pub(crate) fn lagrange_at(points: &[u8], x: u8) -> Vec<u8> {
    points
        .iter()
        .enumerate()
        .map(|(i, &xi)| {
            let (num, den) = points
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .fold((1u8, 1u8), |(num, den), (_, &xj)| {
                    (gf256::mul(num, x ^ xj), gf256::mul(den, xi ^ xj))
                });
            gf256::div(num, den)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn lagrange_basis_interpolates() {
        // f(x) = 3 + 5x + 7x^2 through three points, evaluated elsewhere.
        let f = |x: u8| 3 ^ gf256::mul(5, x) ^ gf256::mul(7, gf256::mul(x, x));
        for (points, x) in [
            (&[1u8, 2, 3][..], 0u8),
            (&[0, 7, 200], 9),
            (&[255, 3, 4], 1),
        ] {
            let l = lagrange_at(points, x);
            let y = points
                .iter()
                .zip(&l)
                .fold(0, |acc, (&p, &c)| acc ^ gf256::mul(c, f(p)));
            assert_eq!(y, f(x), "points {points:?} at {x}");
        }
        // The constant 1 interpolates to 1.
        assert_eq!(lagrange_at(&[9], 0), [1]);
    }

    #[test]
    fn split_block_boundaries_round_trip() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for len in [0, 1, 255, 256, 257, 16 * 1024 + 1, 3 * 16 * 1024 + 17] {
            let secret: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            for (t, n) in [(1, 1), (2, 3), (9, 12)] {
                let Ok(th) = Threshold::new(t, n) else {
                    panic!("valid threshold");
                };
                let shares = split(&secret, th, &mut rng);
                let back = combine(&shares[n as usize - t as usize..], t);
                assert_eq!(back.as_deref(), Ok(&secret[..]));
                let back = combine(&shares[..t as usize], t);
                assert_eq!(back.as_deref(), Ok(&secret[..]));
            }
        }
    }

    #[test]
    fn debug_redacts_data() {
        let Ok(id) = NodeId::new(3) else {
            panic!("valid id");
        };
        let s = ShamirShare::new(id, vec![0xAB; 4]);
        let text = format!("{s:?}");
        assert!(text.contains("<redacted>"), "{text}");
        assert!(!text.contains("171"), "{text}");
    }
}
