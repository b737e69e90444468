//! The portable kernels: SWAR on 64-bit words, constant time in data and constants.
//!
//! `c · v` for eight bytes `v` at once is `Σ_i bit_i(v) · (c · x^i)`: the bit-`i` plane of
//! the word becomes a byte mask (`(v >> i & 0x01..01) · 0xFF`, no carry crosses a byte) that
//! selects the splatted constant `c · x^i`. Shifts, ANDs, XORs and one multiply per bit; no
//! table and no branch on anything but lengths.

use super::mul;

/// One in the low bit of every byte.
const LSB: u64 = 0x0101_0101_0101_0101;

/// `c · x^i` for `i = 0..8`, each copied into all eight bytes of a word.
#[derive(Clone, Copy)]
struct Splat([u64; 8]);

impl Splat {
    fn new(c: u8) -> Splat {
        let mut words = [0u64; 8];
        let mut p = c;
        for w in &mut words {
            *w = u64::from(p).wrapping_mul(LSB);
            p = mul(p, 2);
        }
        Splat(words)
    }

    /// `c · v` bytewise.
    #[inline]
    fn mul(&self, v: u64) -> u64 {
        let mut r = 0u64;
        for (i, k) in self.0.iter().enumerate() {
            let mask = ((v >> i) & LSB).wrapping_mul(0xFF);
            r ^= mask & k;
        }
        r
    }
}

#[inline]
fn load(b: &[u8; 8]) -> u64 {
    u64::from_le_bytes(*b)
}

/// The same byte positions of `dst` and of each source, word by word, with the ragged end
/// zero-padded into one last word; `f(dst_word, source_words)` returns the new `dst` word.
#[inline]
fn for_each_word<const N: usize>(
    dst: &mut [u8],
    srcs: [&[u8]; N],
    mut f: impl FnMut(u64, [u64; N]) -> u64,
) {
    let (dw, dt) = dst.as_chunks_mut::<8>();
    let sw: [&[[u8; 8]]; N] = srcs.map(|s| s.as_chunks::<8>().0);
    for (i, d) in dw.iter_mut().enumerate() {
        let s = sw.map(|w| load(&w[i]));
        *d = f(load(d), s).to_le_bytes();
    }
    if !dt.is_empty() {
        let off = dw.len() * 8;
        let mut d = [0u8; 8];
        d[..dt.len()].copy_from_slice(dt);
        let s = srcs.map(|s| {
            let mut w = [0u8; 8];
            w[..dt.len()].copy_from_slice(&s[off..]);
            load(&w)
        });
        let r = f(load(&d), s).to_le_bytes();
        dt.copy_from_slice(&r[..dt.len()]);
    }
}

pub(super) fn mul_acc(dst: &mut [u8], src: &[u8], c: u8) {
    let k = Splat::new(c);
    for_each_word(dst, [src], |d, [s]| d ^ k.mul(s));
}

pub(super) fn mul_slice(dst: &mut [u8], c: u8) {
    let k = Splat::new(c);
    for_each_word(dst, [], |d, []| k.mul(d));
}

/// One output at a time, one source at a time (the first overwrites, the rest accumulate).
pub(super) fn mul_matrix(dsts: &mut [&mut [u8]], srcs: &[&[u8]], coeffs: &[u8]) {
    for (dst, row) in dsts.iter_mut().zip(coeffs.chunks_exact(srcs.len())) {
        for (k, (s, &c)) in srcs.iter().zip(row).enumerate() {
            let m = Splat::new(c);
            if k == 0 {
                for_each_word(dst, [s], |_, [s]| m.mul(s));
            } else {
                for_each_word(dst, [s], |d, [s]| d ^ m.mul(s));
            }
        }
    }
}
