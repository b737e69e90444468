//! The prime field GF(p), p = 2^61 − 1 (a Mersenne prime), and Shamir sharing over it for
//! batches of small secrets (the bit shares of perceptual hashes in the secure search).
//!
//! GF(2^8) ([`crate::gf256`]) is right for bulk bytes; the search protocol instead adds and
//! multiplies shares of hash bits and needs a field where those sums do not wrap, hence this
//! 61-bit prime field. Multiplication is one `u64 × u64 → u128` product and the Mersenne
//! reduction `x mod p = (x & p) + (x >> 61)` (then one conditional subtraction).
//!
//! # Guarantees
//! - [`Fp61`] always holds the canonical representative in `0..p`.
//! - **Constant time.** `+`, `−`, `·`, negation, [`Fp61::from_u64`] and [`Fp61::inv`] do not
//!   branch on or index memory by their operands (conditional subtraction by masks); the
//!   exponent of [`Fp61::pow`] is treated as public. [`ConstantTimeEq`] is provided;
//!   `==` on `Fp61` is a single word comparison.
//! - **Uniform randomness.** [`Fp61::random`] draws 61-bit words and rejects the single value
//!   `p` (probability 2^-61): exactly uniform on `0..p`. Rejection only ever discards a draw,
//!   so its timing reveals nothing about the value kept.
//! - **Sharing.** [`split_values`] shares each value with its own polynomial of degree
//!   `t − 1` (random coefficients from the caller's CSPRNG, wiped after use);
//!   [`combine_values`] interpolates at 0 with [`lagrange_at_zero`] coefficients, which can be
//!   computed once and reused for many batches from the same nodes.
//!
//! # Caller obligations
//! Use a CSPRNG. Values are field elements: to share integers `≥ p`, reduce them first (or
//! choose a representation below `p`). As for [`crate::shamir`], [`combine_values`] does not
//! detect wrong shares; [`reed_solomon::decode`] opens from more shares than needed, correcting
//! and naming wrong ones.
//!
//! # References
//! - A. Shamir, "How to share a secret", CACM 22(11), 1979.
//! - R. Crandall, C. Pomerance, *Prime Numbers: A Computational Perspective*, §9.2.3
//!   (reduction modulo Mersenne numbers).

use std::fmt;
use std::iter::{Product, Sum};
use std::ops::{Add, AddAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use rand::CryptoRng;
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use zeroize::{Zeroize, Zeroizing};

use crate::params::{NodeId, Threshold};
use crate::shamir::{ShamirError, check_nodes, check_shares};

pub mod reed_solomon;

/// The modulus p = 2^61 − 1.
pub const P: u64 = (1 << 61) - 1;

/// An element of GF(2^61 − 1), always canonical (`0 ≤ value < p`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Zeroize)]
pub struct Fp61(u64);

/// `x mod p` for `x < 2p`, by a masked (branch-free) subtraction.
const fn reduce_once(x: u64) -> u64 {
    let s = x.wrapping_sub(P);
    // x < 2p < 2^62: the top bit of s is set exactly when x < p.
    let mask = (s >> 63).wrapping_neg();
    s.wrapping_add(P & mask)
}

impl Fp61 {
    /// 0.
    pub const ZERO: Fp61 = Fp61(0);
    /// 1.
    pub const ONE: Fp61 = Fp61(1);

    /// `v mod p`, for any `u64`, in constant time.
    #[must_use]
    pub const fn from_u64(v: u64) -> Fp61 {
        // v = hi·2^61 + lo ≡ hi + lo (mod p); hi ≤ 7, so the sum is below 2p.
        Fp61(reduce_once((v & P) + (v >> 61)))
    }

    /// `v` if it is already canonical (`v < p`), else `None`.
    #[must_use]
    pub const fn from_canonical(v: u64) -> Option<Fp61> {
        if v < P { Some(Fp61(v)) } else { None }
    }

    /// The canonical representative, `0..p`.
    #[must_use]
    pub const fn value(self) -> u64 {
        self.0
    }

    /// A uniformly random element: 61-bit draws from `rng`, rejecting the one value `p`.
    pub fn random<R>(rng: &mut R) -> Fp61
    where
        R: CryptoRng + ?Sized,
    {
        loop {
            let v = rng.next_u64() & P;
            if v != P {
                return Fp61(v);
            }
        }
    }

    /// `self + rhs`.
    #[must_use]
    pub const fn add(self, rhs: Fp61) -> Fp61 {
        Fp61(reduce_once(self.0 + rhs.0))
    }

    /// `self − rhs`.
    #[must_use]
    pub const fn sub(self, rhs: Fp61) -> Fp61 {
        let d = self.0.wrapping_sub(rhs.0);
        // |self − rhs| < 2^61: the top bit of d is set exactly when it wrapped.
        let mask = (d >> 63).wrapping_neg();
        Fp61(d.wrapping_add(P & mask))
    }

    /// `−self`.
    #[must_use]
    pub const fn neg(self) -> Fp61 {
        Fp61::ZERO.sub(self)
    }

    /// `self · rhs`: a 122-bit product folded twice at bit 61.
    #[must_use]
    pub const fn mul(self, rhs: Fp61) -> Fp61 {
        let x = (self.0 as u128) * (rhs.0 as u128);
        // x < 2^122: lo ≤ p and hi < 2^61 − 3, so lo + hi < 2p.
        let lo = (x as u64) & P;
        let hi = (x >> 61) as u64;
        Fp61(reduce_once(lo + hi))
    }

    /// `self^2`.
    #[must_use]
    pub const fn square(self) -> Fp61 {
        self.mul(self)
    }

    /// `self^e` by square-and-multiply; constant time in `self`, the exponent is public.
    #[must_use]
    pub const fn pow(self, e: u64) -> Fp61 {
        let mut result = Fp61::ONE;
        let mut base = self;
        let mut e = e;
        while e > 0 {
            if e & 1 == 1 {
                result = result.mul(base);
            }
            base = base.square();
            e >>= 1;
        }
        result
    }

    /// The inverse `self^(p−2)` (Fermat); `inv(0) = 0`. Constant time: the exponent is fixed.
    #[must_use]
    pub const fn inv(self) -> Fp61 {
        self.pow(P - 2)
    }

    /// Whether this is 0, in constant time.
    #[must_use]
    pub fn is_zero(self) -> Choice {
        self.0.ct_eq(&0)
    }
}

impl fmt::Display for Fp61 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<u8> for Fp61 {
    fn from(v: u8) -> Fp61 {
        Fp61(u64::from(v))
    }
}

impl From<u32> for Fp61 {
    fn from(v: u32) -> Fp61 {
        Fp61(u64::from(v))
    }
}

impl From<bool> for Fp61 {
    fn from(v: bool) -> Fp61 {
        Fp61(u64::from(v))
    }
}

impl From<NodeId> for Fp61 {
    fn from(id: NodeId) -> Fp61 {
        Fp61::from(id.get())
    }
}

impl ConstantTimeEq for Fp61 {
    fn ct_eq(&self, other: &Fp61) -> Choice {
        self.0.ct_eq(&other.0)
    }
}

impl ConditionallySelectable for Fp61 {
    fn conditional_select(a: &Fp61, b: &Fp61, choice: Choice) -> Fp61 {
        Fp61(u64::conditional_select(&a.0, &b.0, choice))
    }
}

impl Add for Fp61 {
    type Output = Fp61;
    fn add(self, rhs: Fp61) -> Fp61 {
        Fp61::add(self, rhs)
    }
}

impl Sub for Fp61 {
    type Output = Fp61;
    fn sub(self, rhs: Fp61) -> Fp61 {
        Fp61::sub(self, rhs)
    }
}

impl Mul for Fp61 {
    type Output = Fp61;
    fn mul(self, rhs: Fp61) -> Fp61 {
        Fp61::mul(self, rhs)
    }
}

impl Neg for Fp61 {
    type Output = Fp61;
    fn neg(self) -> Fp61 {
        Fp61::neg(self)
    }
}

impl AddAssign for Fp61 {
    fn add_assign(&mut self, rhs: Fp61) {
        *self = *self + rhs;
    }
}

impl SubAssign for Fp61 {
    fn sub_assign(&mut self, rhs: Fp61) {
        *self = *self - rhs;
    }
}

impl MulAssign for Fp61 {
    fn mul_assign(&mut self, rhs: Fp61) {
        *self = *self * rhs;
    }
}

impl Sum for Fp61 {
    fn sum<I: Iterator<Item = Fp61>>(iter: I) -> Fp61 {
        iter.fold(Fp61::ZERO, Add::add)
    }
}

impl Product for Fp61 {
    fn product<I: Iterator<Item = Fp61>>(iter: I) -> Fp61 {
        iter.fold(Fp61::ONE, Mul::mul)
    }
}

/// Shares every value among nodes `1..=n`: value `i` gets its own random polynomial `f_i`
/// of degree `t − 1` with `f_i(0)` = the value, and node `x` receives `f_i(x)` for every `i`.
///
/// Returns one `(node, shares)` pair per node, each with `values.len()` shares in the order
/// of `values`. Coefficients come from `rng` ([`Fp61::random`]) and are wiped after use.
#[must_use]
pub fn split_values<R>(
    values: &[Fp61],
    threshold: Threshold,
    rng: &mut R,
) -> Vec<(NodeId, Vec<Fp61>)>
where
    R: CryptoRng + ?Sized,
{
    let nodes: Vec<NodeId> = threshold.nodes().collect();
    split_at_points(values, threshold.t(), &nodes, rng)
}

/// Like [`split_values`], for an explicit set of nodes (one entry per node, in order).
///
/// # Errors
/// [`ShamirError::ZeroThreshold`] for `t = 0`, [`ShamirError::TooFewNodes`] if `nodes` has
/// fewer than `t` entries, [`ShamirError::DuplicateId`] if a node appears twice.
pub fn split_values_for<R>(
    values: &[Fp61],
    t: u8,
    nodes: &[NodeId],
    rng: &mut R,
) -> Result<Vec<(NodeId, Vec<Fp61>)>, ShamirError>
where
    R: CryptoRng + ?Sized,
{
    check_nodes(t, nodes)?;
    Ok(split_at_points(values, t, nodes, rng))
}

/// `t ≥ 1`, `nodes` distinct and at least `t` of them (checked by the callers).
fn split_at_points<R>(
    values: &[Fp61],
    t: u8,
    nodes: &[NodeId],
    rng: &mut R,
) -> Vec<(NodeId, Vec<Fp61>)>
where
    R: CryptoRng + ?Sized,
{
    let xs: Vec<Fp61> = nodes.iter().map(|&id| Fp61::from(id)).collect();
    let mut out: Vec<(NodeId, Vec<Fp61>)> = nodes
        .iter()
        .map(|&id| (id, Vec::with_capacity(values.len())))
        .collect();
    // coeffs[0] is the value, coeffs[1..t] the random ones.
    let mut coeffs = Zeroizing::new(vec![Fp61::ZERO; usize::from(t)]);
    for &v in values {
        coeffs[0] = v;
        for c in &mut coeffs[1..] {
            *c = Fp61::random(rng);
        }
        for ((_, shares), &x) in out.iter_mut().zip(&xs) {
            let y = coeffs.iter().rev().fold(Fp61::ZERO, |acc, &c| acc * x + c);
            shares.push(y);
        }
    }
    out
}

/// The Lagrange coefficients at 0 of the points `ids`: `λ_i = Π_{j≠i} x_j / (x_j − x_i)`, so
/// that `f(0) = Σ λ_i · f(x_i)` for every polynomial `f` of degree below `ids.len()`.
///
/// They depend only on the ids: compute them once and reuse them (a dot product with the
/// shares) for every batch from the same nodes.
///
/// # Errors
/// [`ShamirError::NotEnoughShares`] for no ids, [`ShamirError::DuplicateId`] if an id repeats.
pub fn lagrange_at_zero(ids: &[NodeId]) -> Result<Vec<Fp61>, ShamirError> {
    check_shares(ids.iter().map(|&id| (id, 0)), 1)?;
    let xs: Vec<Fp61> = ids.iter().map(|&id| Fp61::from(id)).collect();
    Ok(xs
        .iter()
        .enumerate()
        .map(|(i, &xi)| {
            let (num, den) = xs
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .fold((Fp61::ONE, Fp61::ONE), |(num, den), (_, &xj)| {
                    (num * xj, den * (xj - xi))
                });
            num * den.inv()
        })
        .collect())
}

/// Recovers the values from the first `t` of `shares` (node, that node's shares of every
/// value) by Lagrange interpolation at 0.
///
/// As [`crate::shamir::combine`]: every share is checked (distinct ids, one length), at least
/// `t` are needed, the first `t` are used. For a product of two degree-`t − 1` sharings pass
/// the product's threshold, `2t − 1`.
///
/// # Errors
/// [`ShamirError::ZeroThreshold`] for `t = 0`, [`ShamirError::DuplicateId`],
/// [`ShamirError::LengthMismatch`], [`ShamirError::NotEnoughShares`].
pub fn combine_values(shares: &[(NodeId, &[Fp61])], t: u8) -> Result<Vec<Fp61>, ShamirError> {
    let len = check_shares(shares.iter().map(|&(id, s)| (id, s.len())), t)?;
    let used = &shares[..usize::from(t)];
    let ids: Vec<NodeId> = used.iter().map(|&(id, _)| id).collect();
    let lambdas = lagrange_at_zero(&ids)?;
    Ok((0..len)
        .map(|i| {
            used.iter()
                .zip(&lambdas)
                .map(|(&(_, s), &l)| l * s[i])
                .sum()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fp() -> impl Strategy<Value = Fp61> {
        prop_oneof![
            Just(Fp61::ZERO),
            Just(Fp61::ONE),
            Just(Fp61(P - 1)),
            Just(Fp61(P - 2)),
            (0..P).prop_map(Fp61),
        ]
    }

    /// Reference arithmetic on u128.
    fn r(x: u128) -> Fp61 {
        Fp61((x % u128::from(P)) as u64)
    }

    proptest! {
        #[test]
        fn ops_match_u128_reference(a in fp(), b in fp()) {
            let (x, y) = (u128::from(a.0), u128::from(b.0));
            let p = u128::from(P);
            prop_assert_eq!(a + b, r(x + y));
            prop_assert_eq!(a - b, r(x + p - y));
            prop_assert_eq!(a * b, r(x * y));
            prop_assert_eq!(-a, r(p - x));
            prop_assert_eq!((a - b) + b, a);
        }

        #[test]
        fn from_u64_reduces(v in any::<u64>()) {
            prop_assert_eq!(Fp61::from_u64(v), r(u128::from(v)));
        }

        #[test]
        fn inverse_is_inverse(a in fp()) {
            if a == Fp61::ZERO {
                prop_assert_eq!(a.inv(), Fp61::ZERO);
            } else {
                prop_assert_eq!(a * a.inv(), Fp61::ONE);
            }
        }
    }

    #[test]
    fn edges() {
        assert_eq!(Fp61::from_u64(P), Fp61::ZERO);
        assert_eq!(Fp61::from_u64(u64::MAX), Fp61::from_u64(u64::MAX % P));
        assert_eq!(Fp61::from_canonical(P), None);
        assert_eq!(Fp61(P - 1) + Fp61::ONE, Fp61::ZERO);
        assert_eq!(Fp61(P - 1) * Fp61(P - 1), Fp61::ONE);
        assert!(bool::from(Fp61::ZERO.is_zero()));
    }
}
