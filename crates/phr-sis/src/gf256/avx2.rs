//! AVX2 kernels: 32-byte split-nibble `vpshufb` multiplication.
//!
//! `c · v = T_lo[v & 15] ^ T_hi[v >> 4]`, with the two 16-entry tables of `c` broadcast to
//! both 128-bit lanes of a register; `vpshufb` looks up 32 bytes at once in registers, in
//! time independent of the indices (the secret data). The matrix kernel splits each 32-byte
//! source vector into nibbles once and feeds up to [`ROWS`] output accumulators held in
//! registers, loading the tables from L1.

// `unsafe` is confined to this module (and its SSSE3 sibling): raw-pointer vector loads and
// stores (the matrix kernel's hot loop uses offsets into pointers taken from slices it has
// bounds-checked once, to keep per-source bounds checks out of the loop), and entering `#[target_feature(enable = "avx2")]` functions from the token, which
// exists only after run-time detection found AVX2. Each block says why it is sound.
#![allow(unsafe_code)]

use std::arch::x86_64::{
    __m256i, _mm_loadu_si128, _mm256_and_si256, _mm256_broadcastsi128_si256, _mm256_loadu_si256,
    _mm256_set1_epi8, _mm256_setzero_si256, _mm256_shuffle_epi8, _mm256_srli_epi64,
    _mm256_storeu_si256, _mm256_xor_si256,
};
use std::array;

use zeroize::Zeroize;

use super::nibble_tables;

/// Bytes per vector.
const W: usize = 32;
/// Outputs accumulated in registers in one pass of [`mul_matrix`]. With [`COLS`] this keeps
/// a pass at 20 tables pairs or fewer: measured on Zen 3, larger passes spill so badly that
/// they run at half speed.
const ROWS: usize = 4;
/// Sources read in one pass of [`mul_matrix`].
const COLS: usize = 5;

/// Proof that this CPU runs AVX2: only [`Avx2::detect`] makes one.
#[derive(Debug, Clone, Copy)]
pub(super) struct Avx2(());

impl Avx2 {
    /// `Some` exactly when the CPU supports AVX2.
    pub(super) fn detect() -> Option<Avx2> {
        crate::kernels::cpu::avx2().then_some(Avx2(()))
    }

    /// `dst ^= c · src`; lengths are equal (checked by the caller).
    pub(super) fn mul_acc(self, dst: &mut [u8], src: &[u8], c: u8) {
        // SAFETY: `self` exists only if `detect` found AVX2 on this CPU.
        unsafe { mul_acc(dst, src, c) }
    }

    /// `dst = c · dst`.
    pub(super) fn mul_slice(self, dst: &mut [u8], c: u8) {
        // SAFETY: `self` exists only if `detect` found AVX2 on this CPU.
        unsafe { mul_slice(dst, c) }
    }

    /// `dsts[j] = Σ_k coeffs[j·S + k] · srcs[k]`; at least one source and one output,
    /// lengths equal (checked by the caller).
    pub(super) fn mul_matrix(self, dsts: &mut [&mut [u8]], srcs: &[&[u8]], coeffs: &[u8]) {
        // SAFETY: `self` exists only if `detect` found AVX2 on this CPU.
        unsafe { mul_matrix(dsts, srcs, coeffs) }
    }
}

/// The split-nibble tables of one constant, in both lanes.
#[derive(Clone, Copy)]
struct Tables {
    lo: __m256i,
    hi: __m256i,
}

#[target_feature(enable = "avx2")]
fn tables(c: u8) -> Tables {
    let (lo, hi) = nibble_tables(c);
    Tables {
        lo: broadcast(&lo),
        hi: broadcast(&hi),
    }
}

#[target_feature(enable = "avx2")]
fn broadcast(t: &[u8; 16]) -> __m256i {
    // SAFETY: `t` is 16 readable bytes and `loadu` has no alignment requirement.
    let v = unsafe { _mm_loadu_si128(t.as_ptr().cast()) };
    _mm256_broadcastsi128_si256(v)
}

#[inline]
#[target_feature(enable = "avx2")]
fn load(b: &[u8; W]) -> __m256i {
    // SAFETY: `b` is 32 readable bytes and `loadu` has no alignment requirement.
    unsafe { _mm256_loadu_si256(b.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx2")]
fn store(b: &mut [u8; W], v: __m256i) {
    // SAFETY: `b` is 32 writable bytes and `storeu` has no alignment requirement.
    unsafe { _mm256_storeu_si256(b.as_mut_ptr().cast(), v) }
}

/// `c · v` bytewise: two register lookups, no memory access indexed by `v`.
#[inline]
#[target_feature(enable = "avx2")]
fn mul(t: Tables, v: __m256i) -> __m256i {
    let (lo, hi) = nibbles(v);
    _mm256_xor_si256(_mm256_shuffle_epi8(t.lo, lo), _mm256_shuffle_epi8(t.hi, hi))
}

/// Runs `step(dst_vector, source_vectors)` over every 32-byte position of `dst` and the
/// sources (all of `dst`'s length), the ragged end through zero-padded copies that are wiped
/// afterwards.
#[inline]
#[target_feature(enable = "avx2")]
fn for_each_vector<const N: usize>(
    dst: &mut [u8],
    srcs: [&[u8]; N],
    mut step: impl FnMut(&mut [u8; W], [&[u8; W]; N]),
) {
    let (dv, dt) = dst.as_chunks_mut::<W>();
    let n = dv.len();
    let sv: [&[[u8; W]]; N] = srcs.map(|s| &s.as_chunks::<W>().0[..n]);
    for (i, d) in dv.iter_mut().enumerate() {
        step(d, array::from_fn(|k| &sv[k][i]));
    }
    if !dt.is_empty() {
        let off = n * W;
        let mut d = [0u8; W];
        d[..dt.len()].copy_from_slice(dt);
        let mut s: [[u8; W]; N] = array::from_fn(|k| {
            let mut v = [0u8; W];
            v[..dt.len()].copy_from_slice(&srcs[k][off..]);
            v
        });
        step(&mut d, array::from_fn(|k| &s[k]));
        dt.copy_from_slice(&d[..dt.len()]);
        d.zeroize();
        s.zeroize();
    }
}

#[target_feature(enable = "avx2")]
fn mul_acc(dst: &mut [u8], src: &[u8], c: u8) {
    let t = tables(c);
    for_each_vector(dst, [src], |d, [s]| {
        store(d, _mm256_xor_si256(load(d), mul(t, load(s))));
    });
}

#[target_feature(enable = "avx2")]
fn mul_slice(dst: &mut [u8], c: u8) {
    let t = tables(c);
    for_each_vector(dst, [], |d, []| store(d, mul(t, load(d))));
}

/// The low and high nibbles of every byte of `v`, each in the low half of its byte.
#[inline]
#[target_feature(enable = "avx2")]
fn nibbles(v: __m256i) -> (__m256i, __m256i) {
    let mask = _mm256_set1_epi8(0x0f);
    (
        _mm256_and_si256(v, mask),
        _mm256_and_si256(_mm256_srli_epi64::<4>(v), mask),
    )
}

/// `acc[j] ^= Σ_k t[k][j] · v[k]` for the `D` rows `j`: each source vector is split into
/// nibbles once for all rows.
#[inline]
#[target_feature(enable = "avx2")]
fn dot<const D: usize, const S: usize>(
    acc: &mut [__m256i; D],
    t: &[[Tables; D]; S],
    v: [__m256i; S],
) {
    for k in 0..S {
        let (lo, hi) = nibbles(v[k]);
        for j in 0..D {
            let p = _mm256_xor_si256(
                _mm256_shuffle_epi8(t[k][j].lo, lo),
                _mm256_shuffle_epi8(t[k][j].hi, hi),
            );
            acc[j] = _mm256_xor_si256(acc[j], p);
        }
    }
}

/// One pass of [`mul_matrix`]: `D` outputs from `S` sources, the coefficient of source `k`
/// in output `j` at `rows[j * stride + k]`. With `acc` the outputs are added to, otherwise
/// overwritten. `D`, `S` ≥ 1 and all lengths equal (checked by the caller).
#[target_feature(enable = "avx2")]
fn pass<const D: usize, const S: usize>(
    dsts: &mut [&mut [u8]],
    srcs: &[&[u8]],
    rows: &[u8],
    stride: usize,
    acc: bool,
) {
    let t: [[Tables; D]; S] = array::from_fn(|k| array::from_fn(|j| tables(rows[j * stride + k])));
    let len = dsts.first().map_or(0, |d| d.len());
    let nv = len / W;
    let sp: [*const u8; S] = array::from_fn(|k| srcs[k][..nv * W].as_ptr());
    let dp: Vec<*mut u8> = dsts.iter_mut().map(|d| d[..nv * W].as_mut_ptr()).collect();
    let Ok::<[_; D], _>(dp) = dp.try_into() else {
        return; // The caller passes exactly D outputs.
    };
    for p in 0..nv {
        let off = p * W;
        let mut a = [_mm256_setzero_si256(); D];
        if acc {
            // SAFETY: `off + W <= nv * W`, within every output (each was sliced to `nv * W`
            // bytes above); unaligned loads are allowed; no other reference to the outputs is
            // used while these pointers are.
            a = array::from_fn(|j| unsafe { _mm256_loadu_si256(dp[j].add(off).cast()) });
        }
        // SAFETY: as above, within every source (each sliced to `nv * W` bytes above).
        let v = array::from_fn(|k| unsafe { _mm256_loadu_si256(sp[k].add(off).cast()) });
        dot(&mut a, &t, v);
        for (d, a) in dp.iter().zip(a) {
            // SAFETY: as above; the outputs are distinct `&mut` slices, so no source aliases
            // them.
            unsafe { _mm256_storeu_si256(d.add(off).cast(), a) };
        }
    }
    let tail = len - nv * W;
    if tail > 0 {
        let mut padded: [[u8; W]; S] = array::from_fn(|k| {
            let mut v = [0u8; W];
            v[..tail].copy_from_slice(&srcs[k][nv * W..]);
            v
        });
        let mut out = [[0u8; W]; D];
        for (o, d) in out.iter_mut().zip(dsts.iter()) {
            o[..tail].copy_from_slice(&d[nv * W..]);
        }
        let mut a = [_mm256_setzero_si256(); D];
        if acc {
            for (a, o) in a.iter_mut().zip(&out) {
                *a = load(o);
            }
        }
        dot(&mut a, &t, array::from_fn(|k| load(&padded[k])));
        for ((o, d), a) in out.iter_mut().zip(dsts.iter_mut()).zip(a) {
            store(o, a);
            d[nv * W..].copy_from_slice(&o[..tail]);
        }
        padded.zeroize();
        out.zeroize();
    }
}

/// `pass::<D, S>` for run-time `D` in `1..=ROWS`, `S` in `1..=COLS`.
macro_rules! pass_dispatch {
    ($d:expr, $s:expr, $args:tt) => {
        match $d {
            1 => pass_dispatch!(@s 1, $s, $args),
            2 => pass_dispatch!(@s 2, $s, $args),
            3 => pass_dispatch!(@s 3, $s, $args),
            _ => pass_dispatch!(@s 4, $s, $args),
        }
    };
    (@s $d:literal, $s:expr, ($($a:expr),*)) => {
        match $s {
            1 => pass::<$d, 1>($($a),*),
            2 => pass::<$d, 2>($($a),*),
            3 => pass::<$d, 3>($($a),*),
            4 => pass::<$d, 4>($($a),*),
            _ => pass::<$d, 5>($($a),*),
        }
    };
}

/// Outputs in groups of up to [`ROWS`], sources in groups of up to [`COLS`] (later source
/// groups accumulate into the outputs).
#[target_feature(enable = "avx2")]
fn mul_matrix(dsts: &mut [&mut [u8]], srcs: &[&[u8]], coeffs: &[u8]) {
    let stride = srcs.len();
    for (g, d) in dsts.chunks_mut(ROWS).enumerate() {
        for (h, s) in srcs.chunks(COLS).enumerate() {
            let rows = &coeffs[g * ROWS * stride + h * COLS..];
            pass_dispatch!(d.len(), s.len(), (d, s, rows, stride, h > 0));
        }
    }
}
