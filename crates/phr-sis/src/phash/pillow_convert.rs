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
//! The RGB kernel is the hot loop of hashing a PNG; it is compiled twice, portable and with
//! AVX2 (chosen at run time), from one body, so both give the same bytes by construction
//! (and a test checks it).

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
    if std::arch::is_x86_feature_detected!("avx2") {
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
    rgb_to_luma_body(samples, channels, out);
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
