//! Pillow's `Image.convert("L")`, mode by mode, bit for bit.
//!
//! The formulas are Pillow's own (`libImaging/Convert.c`):
//!
//! | mode | `L` value |
//! |---|---|
//! | `1` | 0 or 255 |
//! | `L`, `LA` | the grey sample (alpha dropped) |
//! | `RGB`, `RGBA` | `(R·19595 + G·38470 + B·7471 + 0x8000) >> 16` (ITU-R 601-2; alpha dropped) |
//! | `P` | the same formula on the palette entry (entries past the palette are black; transparency ignored) |
//! | `CMYK` | through RGB: `nk = 255 − K`, channel = `clip(nk − (X·nk + 128 + ((X·nk + 128) >> 8)) >> 8)` |
//! | `I;16` | the sample, clipped to 255 |
//! | `I` | the sample clipped to 0..=255 |
//! | `F` | 0 if ≤ 0, 255 if ≥ 255, else truncated toward zero |
//!
//! The RGB(A) kernel is the hot loop of hashing a PNG (it runs on whole images in [`to_luma`]
//! and on every decoded row). On a CPU with AVX2 (detected at run time, in one place; not when
//! [`crate::kernels`] says `portable`) it is an explicit AVX2 kernel: 32 pixels per step, deinterleaved by in-lane byte shuffles into the
//! 16-bit pairs `(R, G)` and `(G, B)`, multiplied and summed by `vpmaddwd` with the weights
//! `(19595, 19235)` and `(19235, 7471)` (19235·2 = 38470, so the 32-bit sum is Pillow's exactly),
//! then rounded, shifted and packed back to bytes; the last < 8 pixels go through the portable
//! scalar loop, which is also the kernel on other CPUs. Tests check the AVX2 kernel against
//! the portable one and the formula on every length up to 200 pixels, large odd lengths,
//! unaligned slices, all-0 and all-255 input, and on all 2²⁴ colours.

use super::LumaImage;
use super::decode::{DecodedImage, PixelData};

/// Converts decoded pixels to grayscale exactly as Pillow's `convert("L")`.
#[must_use]
pub fn to_luma(image: &DecodedImage) -> LumaImage {
    let pixels = match &image.data {
        PixelData::Bilevel(v) => v.iter().map(|&b| if b != 0 { 255 } else { 0 }).collect(),
        PixelData::L(v) => v.clone(),
        PixelData::La(v) => v.iter().step_by(2).copied().collect(),
        PixelData::Rgb(v) => rgb_to_luma(v, 3),
        PixelData::Rgba(v) => rgb_to_luma(v, 4),
        PixelData::Cmyk(v) => v
            .chunks_exact(4)
            .map(|p| {
                let nk = 255 - i32::from(p[3]);
                let channel = |x: u8| {
                    let t = i32::from(x) * nk + 128;
                    (nk - (((t >> 8) + t) >> 8)).clamp(0, 255)
                };
                luma_of(channel(p[0]), channel(p[1]), channel(p[2]))
            })
            .collect(),
        PixelData::P { indices, palette } => {
            let table = palette_luma(palette);
            indices.iter().map(|&i| table[usize::from(i)]).collect()
        }
        PixelData::I16(v) => v.iter().map(|&s| s.min(255) as u8).collect(),
        PixelData::I(v) => v.iter().map(|&s| s.clamp(0, 255) as u8).collect(),
        PixelData::F(v) => v
            .iter()
            .map(|&s| {
                if s <= 0.0 {
                    0
                } else if s >= 255.0 {
                    255
                } else {
                    s as u8
                }
            })
            .collect(),
    };
    LumaImage {
        width: image.width,
        height: image.height,
        pixels,
    }
}

/// The grey value of every palette index (Pillow's `p2l`); indices past the palette are black.
pub(super) fn palette_luma(palette: &[[u8; 3]]) -> [u8; 256] {
    let mut table = [0u8; 256];
    for (entry, rgb) in table.iter_mut().zip(palette) {
        *entry = luma_of(i32::from(rgb[0]), i32::from(rgb[1]), i32::from(rgb[2]));
    }
    table
}

/// Appends the grey values of interleaved RGB (`channels` = 3) or RGBA (4) samples to `out`.
pub(super) fn extend_luma_from_rgb(samples: &[u8], channels: usize, out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + samples.len() / channels, 0);
    if let Some(dst) = out.get_mut(start..) {
        rgb_to_luma_into(samples, channels, dst);
    }
}

/// Pillow's `L24(rgb) >> 16`.
#[inline(always)]
fn luma_of(r: i32, g: i32, b: i32) -> u8 {
    ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16) as u8
}

/// The RGB(A) → L kernel into a new buffer.
fn rgb_to_luma(samples: &[u8], channels: usize) -> Vec<u8> {
    let mut out = vec![0u8; samples.len() / channels];
    rgb_to_luma_into(samples, channels, &mut out);
    out
}

/// The RGB(A) → L kernel, dispatched on the CPU's features; fills `out` (one byte per pixel).
fn rgb_to_luma_into(samples: &[u8], channels: usize, out: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::avx2() {
        #[allow(unsafe_code)]
        // SAFETY: `rgb_to_luma_avx2` only needs AVX2, which the CPU was just found to have.
        return unsafe { rgb_to_luma_avx2(samples, channels, out) };
    }
    rgb_to_luma_body(samples, channels, out);
}

#[cfg(test)]
fn rgb_to_luma_portable(samples: &[u8], channels: usize) -> Vec<u8> {
    let mut out = vec![0u8; samples.len() / channels];
    rgb_to_luma_body(samples, channels, &mut out);
    out
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn rgb_to_luma_avx2(samples: &[u8], channels: usize, out: &mut [u8]) {
    if channels == 3 {
        avx2::rgb_to_luma::<3>(samples, out);
    } else {
        avx2::rgb_to_luma::<4>(samples, out);
    }
}

/// The explicit AVX2 RGB(A) → L kernel.
///
/// Eight pixels sit in one 256-bit register, four per 128-bit lane (RGB: the lane holds the
/// 12 bytes of its four pixels, at byte 0 in the low lane and byte 4 in the high one, so that
/// no load reaches past the pixels; RGBA: the lane holds them whole). Two in-lane byte
/// shuffles widen them to the 16-bit pairs `(R, G)` and `(G, B)`, and `vpmaddwd` with the
/// weights `(19595, 19235)` and `(19235, 7471)` gives, summed, the exact 32-bit
/// `R·19595 + G·38470 + B·7471` (every weight fits `i16`; 19235·2 = 38470; the sum is at most
/// 255·65536 < 2³¹). Adding `0x8000` and shifting right by 16 is then Pillow's formula to the
/// bit; four such registers pack to 32 output bytes.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256i, _mm_loadu_si128, _mm_storel_epi64, _mm256_add_epi32, _mm256_castsi256_si128,
        _mm256_loadu_si256, _mm256_madd_epi16, _mm256_packus_epi16, _mm256_packus_epi32,
        _mm256_permutevar8x32_epi32, _mm256_set_m128i, _mm256_set1_epi32, _mm256_setr_epi8,
        _mm256_setr_epi32, _mm256_shuffle_epi8, _mm256_srli_epi32, _mm256_storeu_si256,
    };

    /// Pixels per block of the main loop.
    const BLOCK: usize = 32;
    /// Pixels per register.
    const GROUP: usize = 8;
    /// Byte-shuffle index that zeroes its byte.
    const Z: i8 = -1;

    /// The constant registers of the kernel.
    #[derive(Clone, Copy)]
    struct Consts {
        rg: __m256i,
        gb: __m256i,
        w_rg: __m256i,
        w_gb: __m256i,
        round: __m256i,
        order: __m256i,
    }

    #[target_feature(enable = "avx2")]
    fn consts<const CH: usize>() -> Consts {
        let (rg, gb) = if CH == 3 {
            (
                _mm256_setr_epi8(
                    0, Z, 1, Z, 3, Z, 4, Z, 6, Z, 7, Z, 9, Z, 10, Z, //
                    4, Z, 5, Z, 7, Z, 8, Z, 10, Z, 11, Z, 13, Z, 14, Z,
                ),
                _mm256_setr_epi8(
                    1, Z, 2, Z, 4, Z, 5, Z, 7, Z, 8, Z, 10, Z, 11, Z, //
                    5, Z, 6, Z, 8, Z, 9, Z, 11, Z, 12, Z, 14, Z, 15, Z,
                ),
            )
        } else {
            (
                _mm256_setr_epi8(
                    0, Z, 1, Z, 4, Z, 5, Z, 8, Z, 9, Z, 12, Z, 13, Z, //
                    0, Z, 1, Z, 4, Z, 5, Z, 8, Z, 9, Z, 12, Z, 13, Z,
                ),
                _mm256_setr_epi8(
                    1, Z, 2, Z, 5, Z, 6, Z, 9, Z, 10, Z, 13, Z, 14, Z, //
                    1, Z, 2, Z, 5, Z, 6, Z, 9, Z, 10, Z, 13, Z, 14, Z,
                ),
            )
        };
        Consts {
            rg,
            gb,
            // Little-endian words: the low one weighs the first of each pair.
            w_rg: _mm256_set1_epi32((19235 << 16) | 19595),
            w_gb: _mm256_set1_epi32((7471 << 16) | 19235),
            round: _mm256_set1_epi32(0x8000),
            order: _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7),
        }
    }

    /// Loads the eight pixels at the start of `src` (`src.len() >= GROUP * CH`).
    #[target_feature(enable = "avx2")]
    #[inline]
    #[allow(unsafe_code)]
    fn load<const CH: usize>(src: &[u8]) -> __m256i {
        assert!(src.len() >= GROUP * CH);
        let p = src.as_ptr();
        if CH == 3 {
            // SAFETY: both 16-byte loads lie within the first 24 bytes of `src` (bytes 0..16
            // and 8..24), which the assertion above guarantees; `loadu` has no alignment needs.
            unsafe {
                let lo = _mm_loadu_si128(p.cast());
                let hi = _mm_loadu_si128(p.add(8).cast());
                _mm256_set_m128i(hi, lo)
            }
        } else {
            // SAFETY: the 32-byte load lies within `src`, which the assertion above guarantees;
            // `loadu` has no alignment needs.
            unsafe { _mm256_loadu_si256(p.cast()) }
        }
    }

    /// The grey values of eight pixels, one per 32-bit lane.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn luma8(v: __m256i, k: Consts) -> __m256i {
        let rg = _mm256_madd_epi16(_mm256_shuffle_epi8(v, k.rg), k.w_rg);
        let gb = _mm256_madd_epi16(_mm256_shuffle_epi8(v, k.gb), k.w_gb);
        _mm256_srli_epi32::<16>(_mm256_add_epi32(_mm256_add_epi32(rg, gb), k.round))
    }

    /// Packs four registers of `luma8` (pixels 0..8, 8..16, 16..24, 24..32) to 32 bytes in order.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn pack4(a: __m256i, b: __m256i, c: __m256i, d: __m256i, k: Consts) -> __m256i {
        // Lane-wise packs leave the 4-pixel runs as a0 b0 c0 d0 | a1 b1 c1 d1.
        let bytes = _mm256_packus_epi16(_mm256_packus_epi32(a, b), _mm256_packus_epi32(c, d));
        _mm256_permutevar8x32_epi32(bytes, k.order)
    }

    /// RGB (`CH` = 3) or RGBA (4) → L, as many pixels as both `samples` and `out` hold.
    #[target_feature(enable = "avx2")]
    #[allow(unsafe_code)]
    pub(super) fn rgb_to_luma<const CH: usize>(samples: &[u8], out: &mut [u8]) {
        let k = consts::<CH>();
        let pixels = out.len().min(samples.len() / CH);
        let blocks = pixels / BLOCK;
        let (src_blocks, src_rest) = samples.split_at(blocks * BLOCK * CH);
        let (dst_blocks, dst_rest) = out.split_at_mut(blocks * BLOCK);
        for (src, dst) in src_blocks
            .chunks_exact(BLOCK * CH)
            .zip(dst_blocks.chunks_exact_mut(BLOCK))
        {
            let a = luma8(load::<CH>(src), k);
            let b = luma8(load::<CH>(&src[GROUP * CH..]), k);
            let c = luma8(load::<CH>(&src[2 * GROUP * CH..]), k);
            let d = luma8(load::<CH>(&src[3 * GROUP * CH..]), k);
            let v = pack4(a, b, c, d, k);
            // SAFETY: `dst` is a chunk of exactly 32 bytes; `storeu` has no alignment needs.
            unsafe { _mm256_storeu_si256(dst.as_mut_ptr().cast(), v) };
        }
        let groups = (pixels - blocks * BLOCK) / GROUP;
        let (src_groups, src_tail) = src_rest.split_at(groups * GROUP * CH);
        let (dst_groups, dst_tail) = dst_rest.split_at_mut(groups * GROUP);
        for (src, dst) in src_groups
            .chunks_exact(GROUP * CH)
            .zip(dst_groups.chunks_exact_mut(GROUP))
        {
            let a = luma8(load::<CH>(src), k);
            let v = pack4(a, a, a, a, k);
            // SAFETY: `dst` is a chunk of exactly 8 bytes, and `storel` writes 8 bytes; it has
            // no alignment needs.
            unsafe { _mm_storel_epi64(dst.as_mut_ptr().cast(), _mm256_castsi256_si128(v)) };
        }
        super::rgb_to_luma_body(src_tail, CH, dst_tail);
    }
}

#[inline(always)]
fn rgb_to_luma_body(samples: &[u8], channels: usize, out: &mut [u8]) {
    if channels == 3 {
        for (o, p) in out.iter_mut().zip(samples.chunks_exact(3)) {
            *o = luma_of(i32::from(p[0]), i32::from(p[1]), i32::from(p[2]));
        }
    } else {
        for (o, p) in out.iter_mut().zip(samples.chunks_exact(4)) {
            *o = luma_of(i32::from(p[0]), i32::from(p[1]), i32::from(p[2]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phash::decode::ImageFormat;

    fn img(data: PixelData, width: u32) -> DecodedImage {
        DecodedImage {
            width,
            height: 1,
            format: ImageFormat::Png,
            data,
        }
    }

    #[test]
    fn rgb_kernels_agree_on_random_input_of_odd_lengths() {
        let mut state = 0x1234_5678_u32;
        for len in [0usize, 1, 7, 31, 32, 33, 100, 1001, 4099] {
            let bytes: Vec<u8> = (0..len * 4)
                .map(|_| {
                    state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (state >> 24) as u8
                })
                .collect();
            for channels in [3, 4] {
                let input = &bytes[..len * channels];
                let portable = rgb_to_luma_portable(input, channels);
                assert_eq!(rgb_to_luma(input, channels), portable);
                for (o, p) in portable.iter().zip(input.chunks_exact(channels)) {
                    let exact = (u32::from(p[0]) * 19595
                        + u32::from(p[1]) * 38470
                        + u32::from(p[2]) * 7471
                        + 0x8000)
                        >> 16;
                    assert_eq!(u32::from(*o), exact);
                }
            }
        }
    }

    /// Pillow's formula, written out independently of the kernels.
    fn exact(p: &[u8]) -> u8 {
        ((u32::from(p[0]) * 19595 + u32::from(p[1]) * 38470 + u32::from(p[2]) * 7471 + 0x8000)
            >> 16) as u8
    }

    fn random_bytes(state: &mut u32, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                *state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (*state >> 24) as u8
            })
            .collect()
    }

    /// The dispatched kernel, which is the explicit AVX2 one on a CPU with AVX2.
    fn dispatched(samples: &[u8], channels: usize) -> Vec<u8> {
        #[cfg(target_arch = "x86_64")]
        if !crate::kernels::avx2() {
            eprintln!(
                "no AVX2 on this CPU, or portable kernels asked for: only the portable kernel is tested"
            );
        }
        rgb_to_luma(samples, channels)
    }

    /// Checks the dispatched kernel against the portable one and the formula, also through
    /// `extend_luma_from_rgb` onto a non-empty buffer.
    fn check(input: &[u8], channels: usize) {
        let portable = rgb_to_luma_portable(input, channels);
        assert_eq!(portable.len(), input.len() / channels);
        for (o, p) in portable.iter().zip(input.chunks_exact(channels)) {
            assert_eq!(*o, exact(p), "{p:?}");
        }
        assert_eq!(
            dispatched(input, channels),
            portable,
            "{channels} channels, {} bytes",
            input.len()
        );
        let mut out = vec![7u8; 3];
        extend_luma_from_rgb(input, channels, &mut out);
        assert_eq!(out[..3], [7, 7, 7]);
        assert_eq!(out[3..], portable[..]);
    }

    #[test]
    fn avx2_kernel_matches_portable_on_every_length_to_200_and_unaligned_slices() {
        let mut state = 0x9e37_79b9_u32;
        let bytes = random_bytes(&mut state, 200 * 4 + 64);
        for channels in [3, 4] {
            for len in 0..=200 {
                for offset in [0, 1, 3, 17, 31] {
                    check(&bytes[offset..offset + len * channels], channels);
                }
                // A ragged end (a partial pixel) is ignored.
                check(&bytes[5..5 + len * channels + channels - 1], channels);
                check(&vec![255; len * channels], channels);
                check(&vec![0; len * channels], channels);
            }
        }
    }

    #[test]
    fn avx2_kernel_matches_portable_on_large_odd_lengths() {
        let mut state = 0x0bad_cafe_u32;
        for len in [1023usize, 4099, 100_003] {
            let bytes = random_bytes(&mut state, len * 4 + 7);
            for channels in [3, 4] {
                for offset in [0, 7] {
                    check(&bytes[offset..offset + len * channels], channels);
                }
                check(&vec![255; len * channels], channels);
                check(&vec![0; len * channels], channels);
            }
        }
    }

    #[test]
    fn avx2_kernel_is_exact_on_every_colour() {
        // All 2^24 colours, 65536 at a time, as RGB and as RGBA with varying alpha, so every
        // colour passes through the vector loop (each run is a multiple of 32 pixels).
        for r in 0..=255u8 {
            let rgb: Vec<u8> = (0..=u16::MAX)
                .flat_map(|gb| {
                    let [g, b] = gb.to_be_bytes();
                    [r, g, b]
                })
                .collect();
            let rgba: Vec<u8> = rgb
                .chunks_exact(3)
                .flat_map(|p| [p[0], p[1], p[2], p[1] ^ r])
                .collect();
            for (input, channels) in [(&rgb, 3), (&rgba, 4)] {
                let got = dispatched(input, channels);
                for (o, p) in got.iter().zip(input.chunks_exact(channels)) {
                    assert_eq!(*o, exact(p), "{p:?}");
                }
            }
        }
    }

    #[test]
    fn luma_formula_matches_pillow_on_known_values() {
        // Values from Pillow 13: Image.new("RGB", (1, 1), c).convert("L").getpixel((0, 0)).
        let cases = [
            ([255, 255, 255], 255),
            ([0, 0, 0], 0),
            ([255, 0, 0], 76),
            ([0, 255, 0], 150),
            ([0, 0, 255], 29),
            ([12, 200, 99], 132),
        ];
        for (rgb, l) in cases {
            let out = to_luma(&img(PixelData::Rgb(rgb.to_vec()), 1));
            assert_eq!(out.pixels(), &[l], "{rgb:?}");
        }
    }

    #[test]
    fn other_modes_clip_and_map_like_pillow() {
        let i16 = to_luma(&img(PixelData::I16(vec![0, 17, 255, 256, 65535]), 5));
        assert_eq!(i16.pixels(), &[0, 17, 255, 255, 255]);
        let i = to_luma(&img(PixelData::I(vec![-5, 0, 100, 255, 1000]), 5));
        assert_eq!(i.pixels(), &[0, 0, 100, 255, 255]);
        let f = to_luma(&img(
            PixelData::F(vec![-1.0, 0.9, 100.99, 254.999, 300.0, f32::NAN]),
            6,
        ));
        assert_eq!(f.pixels(), &[0, 0, 100, 254, 255, 0]);
        let p = to_luma(&img(
            PixelData::P {
                indices: vec![0, 1, 2, 200],
                palette: vec![[255, 0, 0], [10, 10, 10], [0, 0, 0]],
            },
            4,
        ));
        assert_eq!(p.pixels(), &[76, 10, 0, 0]);
        let la = to_luma(&img(PixelData::La(vec![9, 0, 200, 255]), 2));
        assert_eq!(la.pixels(), &[9, 200]);
        // CMYK (Pillow polarity): no ink is white, full K is black, pure cyan.
        let cmyk = to_luma(&img(
            PixelData::Cmyk(vec![0, 0, 0, 0, 0, 0, 0, 255, 255, 0, 0, 0]),
            3,
        ));
        assert_eq!(cmyk.pixels(), &[255, 0, 179]);
    }
}
