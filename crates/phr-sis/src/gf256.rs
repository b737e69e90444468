//! Arithmetic in GF(2^8) with the AES polynomial x^8 + x^4 + x^3 + x + 1 (0x11B), scalar and
//! over byte slices at memory speed.
//!
//! This is the field of [`crate::shamir`]: one byte of a secret is one field element, addition
//! is XOR, and the bulk kernels ([`mul_acc`], [`mul_slice`], [`lin_comb`], [`mul_matrix`])
//! are what make splitting and combining megabytes cheap.
//!
//! # Guarantees
//! - **Constant time in the data.** [`mul`], [`inv`], [`div`] (and [`pow`] in its base) and
//!   the portable bulk kernels compute with shifts, masks, XOR and multiplies only: no branch
//!   and no memory access depends on any operand (the byte constants included). The SIMD kernels index their split-nibble tables
//!   with the data, but the "tables" are two 16-byte *registers* and the lookup is `pshufb`,
//!   a register shuffle whose timing does not depend on its indices; they do not branch on
//!   data either. Only slice *lengths* (public) steer control flow.
//! - **Kernels.** [`Kernel::Portable`] (SWAR on `u64`, any target), and on x86-64
//!   [`Kernel::Ssse3`] (16-byte `pshufb`) and [`Kernel::Avx2`] (32-byte `vpshufb`), the
//!   classic split-nibble technique: `c·v = T_lo[v & 15] ^ T_hi[v >> 4]` with two 16-entry
//!   tables per constant. The best one the CPU runs is chosen once, at the first call
//!   (the portable one when [`crate::kernels`] says `portable`; [`kernel`] tells which); the
//!   API is safe and identical for all of them. GFNI / AVX-512 kernels are not included yet: the machines this is built and
//!   tested on do not expose those instructions, and an untested kernel has no place here.
//! - **Tested** (unit tests of this module): every kernel available on the running CPU
//!   (portable included) against the scalar definition on random data, constants 0, 1, 2,
//!   0x80, 0xFF and random ones, every length 0..=300 plus 1 MiB + 7, unaligned sub-slices,
//!   1 to 17 sources and 1 to 9 outputs (so every register-blocking path of the matrix
//!   kernel); [`mul`] against textbook long division for all 65,536 pairs and FIPS 197's
//!   examples; the field axioms by proptest; `inv(x)·x = 1` for every non-zero x.
//! - **Speed** (AVX2, one Zen 3 core): about 55 GB/s of source bytes per matrix entry with
//!   data in L2, so a 5-term [`lin_comb`] runs near 10 GB/s of output; [`mul_acc`] runs at
//!   memory speed.
//!
//! # Caller obligations
//! The bulk kernels panic when the slices they combine have different lengths (like
//! [`slice::copy_from_slice`]); check lengths first where they come from outside.
//!
//! # References
//! - FIPS 197 (AES), §4.2: the field and its reduction polynomial.
//! - J. S. Plank, K. M. Greenan, E. L. Miller, "Screaming Fast Galois Field Arithmetic Using
//!   Intel SIMD Instructions", FAST 2013: the split-nibble `pshufb` multiplication.

#[cfg(target_arch = "x86_64")]
mod avx2;
mod portable;
#[cfg(target_arch = "x86_64")]
mod ssse3;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::OnceLock;

/// The reduction polynomial x^8 + x^4 + x^3 + x + 1 without its x^8 term.
const POLY: u8 = 0x1B;

/// `a · b` in GF(2^8), in constant time (eight shift-and-mask rounds, no table).
#[must_use]
pub const fn mul(a: u8, b: u8) -> u8 {
    let mut a = a;
    let mut b = b;
    let mut r = 0u8;
    let mut i = 0;
    while i < 8 {
        // All-ones when the low bit of b is set, else zero.
        r ^= a & (b & 1).wrapping_neg();
        // a · x, reduced: subtract (XOR) the polynomial when the top bit falls out.
        a = (a << 1) ^ (POLY & (a >> 7).wrapping_neg());
        b >>= 1;
        i += 1;
    }
    r
}

/// `a^e` in GF(2^8), in constant time for `a`; the exponent steers the square-and-multiply
/// chain, so treat it as public.
#[must_use]
pub const fn pow(a: u8, e: u32) -> u8 {
    let mut result = 1u8;
    let mut base = a;
    let mut e = e;
    while e > 0 {
        if e & 1 == 1 {
            result = mul(result, base);
        }
        base = mul(base, base);
        e >>= 1;
    }
    result
}

/// The multiplicative inverse `a^-1`, with `inv(0) = 0`; constant time (`a^254` by a fixed
/// chain of 13 multiplications).
#[must_use]
pub const fn inv(a: u8) -> u8 {
    // a^254 = a^(2^8 - 2); a^255 = 1 for a != 0, and 0^254 = 0.
    let a2 = mul(a, a);
    let a3 = mul(a2, a);
    let a6 = mul(a3, a3);
    let a7 = mul(a6, a);
    let a14 = mul(a7, a7);
    let a15 = mul(a14, a);
    let a30 = mul(a15, a15);
    let a31 = mul(a30, a);
    let a62 = mul(a31, a31);
    let a63 = mul(a62, a);
    let a126 = mul(a63, a63);
    let a127 = mul(a126, a);
    mul(a127, a127)
}

/// `a / b = a · b^-1`, in constant time; `a / 0 = 0` (check `b` yourself where that matters).
#[must_use]
pub const fn div(a: u8, b: u8) -> u8 {
    mul(a, inv(b))
}

/// The split-nibble tables of a constant: `lo[i] = c·i`, `hi[i] = c·(i << 4)`, so that
/// `c·v = lo[v & 15] ^ hi[v >> 4]`.
fn nibble_tables(c: u8) -> ([u8; 16], [u8; 16]) {
    let mut lo = [0u8; 16];
    let mut hi = [0u8; 16];
    for (i, (l, h)) in (0u8..).zip(lo.iter_mut().zip(hi.iter_mut())) {
        *l = mul(c, i);
        *h = mul(c, i << 4);
    }
    (lo, hi)
}

/// A bulk kernel implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kernel {
    /// SWAR on 64-bit words; every target.
    Portable,
    /// 16-byte split-nibble `pshufb` (x86-64 with SSSE3).
    Ssse3,
    /// 32-byte split-nibble `vpshufb` (x86-64 with AVX2).
    Avx2,
}

impl fmt::Display for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kernel::Portable => "portable",
            Kernel::Ssse3 => "ssse3",
            Kernel::Avx2 => "avx2",
        })
    }
}

/// The bulk kernel this process uses: the best one the CPU supports, detected once, or the
/// portable one when [`crate::kernels::active`] is [`crate::kernels::KernelSet::Portable`].
#[must_use]
pub fn kernel() -> Kernel {
    Backend::get().kernel()
}

/// A kernel together with the proof (a token from feature detection) that the CPU runs it.
#[derive(Debug, Clone, Copy)]
enum Backend {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Ssse3(ssse3::Ssse3),
    #[cfg(target_arch = "x86_64")]
    Avx2(avx2::Avx2),
}

impl Backend {
    /// The one dispatch point: the best available kernel, detected at the first call (the
    /// portable one if the kernel set says so).
    fn get() -> Backend {
        static BACKEND: OnceLock<Backend> = OnceLock::new();
        *BACKEND.get_or_init(|| {
            if !crate::kernels::simd_allowed() {
                return Backend::Portable;
            }
            Backend::available()
                .last()
                .copied()
                .unwrap_or(Backend::Portable)
        })
    }

    /// Every kernel this CPU runs, slowest first, whatever the kernel set (the tests run them
    /// all).
    fn available() -> Vec<Backend> {
        #[allow(unused_mut)] // Only the portable kernel on other architectures.
        let mut all = vec![Backend::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            all.extend(ssse3::Ssse3::detect().map(Backend::Ssse3));
            all.extend(avx2::Avx2::detect().map(Backend::Avx2));
        }
        all
    }

    fn kernel(self) -> Kernel {
        match self {
            Backend::Portable => Kernel::Portable,
            #[cfg(target_arch = "x86_64")]
            Backend::Ssse3(_) => Kernel::Ssse3,
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2(_) => Kernel::Avx2,
        }
    }

    fn mul_acc(self, dst: &mut [u8], src: &[u8], c: u8) {
        match self {
            Backend::Portable => portable::mul_acc(dst, src, c),
            #[cfg(target_arch = "x86_64")]
            Backend::Ssse3(k) => k.mul_acc(dst, src, c),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2(k) => k.mul_acc(dst, src, c),
        }
    }

    fn mul_slice(self, dst: &mut [u8], c: u8) {
        match self {
            Backend::Portable => portable::mul_slice(dst, c),
            #[cfg(target_arch = "x86_64")]
            Backend::Ssse3(k) => k.mul_slice(dst, c),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2(k) => k.mul_slice(dst, c),
        }
    }

    fn mul_matrix(self, dsts: &mut [&mut [u8]], srcs: &[&[u8]], coeffs: &[u8]) {
        match self {
            Backend::Portable => portable::mul_matrix(dsts, srcs, coeffs),
            #[cfg(target_arch = "x86_64")]
            Backend::Ssse3(k) => k.mul_matrix(dsts, srcs, coeffs),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2(k) => k.mul_matrix(dsts, srcs, coeffs),
        }
    }
}

/// `dst[i] ^= c · src[i]` for every `i`: multiply-accumulate, the inner step of Lagrange
/// interpolation.
///
/// # Panics
/// If `dst` and `src` have different lengths.
pub fn mul_acc(dst: &mut [u8], src: &[u8], c: u8) {
    assert_eq!(
        dst.len(),
        src.len(),
        "gf256::mul_acc: dst has {} bytes but src has {}",
        dst.len(),
        src.len()
    );
    Backend::get().mul_acc(dst, src, c);
}

/// `dst[i] = c · dst[i]` for every `i`.
pub fn mul_slice(dst: &mut [u8], c: u8) {
    Backend::get().mul_slice(dst, c);
}

/// `dst[i] = Σ_k coeffs[k] · srcs[k][i]` (overwriting `dst`): a linear combination of byte
/// strings in one pass over `dst` (Lagrange interpolation is one of these). With no terms
/// `dst` becomes all zeros.
///
/// # Panics
/// If `srcs` and `coeffs` have different lengths, or a source's length differs from `dst`'s.
pub fn lin_comb(dst: &mut [u8], srcs: &[&[u8]], coeffs: &[u8]) {
    mul_matrix(&mut [dst], srcs, coeffs);
}

/// `dsts[j][i] = Σ_k coeffs[j · srcs.len() + k] · srcs[k][i]` for every output `j`
/// (overwriting each): the product of a byte matrix (row-major, one row per output) with a
/// vector of byte strings, as in Reed–Solomon encoding. Each source byte is loaded and split
/// into nibbles once for all outputs, so `m` outputs cost less than `m` [`lin_comb`]s. With no
/// sources every output becomes all zeros.
///
/// # Panics
/// If `coeffs.len() != dsts.len() · srcs.len()`, or any source or output differs in length
/// from the first output.
pub fn mul_matrix(dsts: &mut [&mut [u8]], srcs: &[&[u8]], coeffs: &[u8]) {
    assert_eq!(
        coeffs.len(),
        dsts.len() * srcs.len(),
        "gf256::mul_matrix: {} coefficients for {} outputs × {} sources",
        coeffs.len(),
        dsts.len(),
        srcs.len()
    );
    let Some(len) = dsts.first().map(|d| d.len()) else {
        return;
    };
    for (j, d) in dsts.iter().enumerate() {
        assert_eq!(
            d.len(),
            len,
            "gf256::mul_matrix: output {j} has {} bytes but output 0 has {len}",
            d.len()
        );
    }
    for (k, s) in srcs.iter().enumerate() {
        assert_eq!(
            s.len(),
            len,
            "gf256::mul_matrix: source {k} has {} bytes but the outputs have {len}",
            s.len()
        );
    }
    if srcs.is_empty() {
        for d in dsts.iter_mut() {
            d.fill(0);
        }
        return;
    }
    Backend::get().mul_matrix(dsts, srcs, coeffs);
}
