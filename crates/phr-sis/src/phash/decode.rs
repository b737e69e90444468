//! Decoding image files into the pixels and mode Pillow's `Image.open(f)` gives.
//!
//! The format is recognised from the file's first bytes, never from its name. Each decoder
//! keeps the file's own mode (`1`, `L`, `LA`, `P`, `RGB`, `RGBA`, `I;16`, `CMYK`, …) with the
//! sample values Pillow stores, so that [`super::pillow_convert`] can apply Pillow's own
//! conversion to `L`:
//!
//! - **PNG** (`png` crate, no transformations): grey 1-bit → `1`; grey 2/4-bit scaled by 85/17;
//!   16-bit samples keep their most significant byte, except 16-bit grey which becomes `I;16`
//!   (Pillow clips it to 255 on conversion); palette images stay indexed (`P`), and palette
//!   entries past the end of the `PLTE` chunk are black, as in Pillow. CRCs are checked.
//! - **JPEG** (libjpeg-turbo code through `mozjpeg`, islow IDCT and fancy upsampling, as in
//!   Pillow): grey → `L`, YCbCr/RGB → `RGB`, CMYK/YCCK → `CMYK` in Adobe polarity (Pillow's
//!   `CMYK;I`). A file that ends early is an error (libjpeg itself would pad it with grey).
//! - **GIF** (`gif` crate, indexed output): the first frame on a canvas of the logical screen
//!   (grown to the frame if larger), filled with the transparent index or 0, as Pillow does.
//! - **BMP, TIFF, WebP** (`image` crate).
//!
//! EXIF orientation is not applied (neither does `imagehash`). Images with more than
//! [`MAX_PIXELS`] pixels are refused before their pixels are allocated, as Pillow refuses
//! decompression bombs. No input makes these functions panic.

use std::cell::Cell;
use std::io::{BufRead, Cursor, Read};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use super::{ImageError, LumaImage, pillow_convert};

/// Pillow's decompression-bomb limit (`2 * Image.MAX_IMAGE_PIXELS`): larger images are refused.
pub const MAX_PIXELS: u64 = 2 * 89_478_485;

/// The container format of an image file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    /// Portable Network Graphics.
    Png,
    /// JPEG (JFIF/EXIF/Adobe).
    Jpeg,
    /// Graphics Interchange Format (first frame).
    Gif,
    /// Windows bitmap.
    Bmp,
    /// Tagged Image File Format.
    Tiff,
    /// WebP (lossless and lossy).
    WebP,
}

impl ImageFormat {
    /// Recognises a format from a file's first bytes.
    #[must_use]
    pub fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
        let starts = |magic: &[u8]| bytes.starts_with(magic);
        if starts(b"\x89PNG\r\n\x1a\n") {
            Some(ImageFormat::Png)
        } else if starts(b"\xff\xd8\xff") {
            Some(ImageFormat::Jpeg)
        } else if starts(b"GIF87a") || starts(b"GIF89a") {
            Some(ImageFormat::Gif)
        } else if starts(b"BM") {
            Some(ImageFormat::Bmp)
        } else if starts(b"II*\0") || starts(b"MM\0*") {
            Some(ImageFormat::Tiff)
        } else if starts(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
            Some(ImageFormat::WebP)
        } else {
            None
        }
    }

    /// The format's usual name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Png => "PNG",
            ImageFormat::Jpeg => "JPEG",
            ImageFormat::Gif => "GIF",
            ImageFormat::Bmp => "BMP",
            ImageFormat::Tiff => "TIFF",
            ImageFormat::WebP => "WebP",
        }
    }
}

/// Decoded samples, one variant per Pillow mode. Multi-channel data is interleaved, row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum PixelData {
    /// Mode `1`: one byte per pixel, 0 or 255.
    Bilevel(Vec<u8>),
    /// Mode `L`.
    L(Vec<u8>),
    /// Mode `LA` (grey, alpha).
    La(Vec<u8>),
    /// Mode `RGB`.
    Rgb(Vec<u8>),
    /// Mode `RGBA`.
    Rgba(Vec<u8>),
    /// Mode `CMYK`, in Pillow's polarity (0 = no ink).
    Cmyk(Vec<u8>),
    /// Mode `P`: palette indices and the palette's RGB entries (missing entries are black).
    P {
        /// One index per pixel.
        indices: Vec<u8>,
        /// Up to 256 RGB entries.
        palette: Vec<[u8; 3]>,
    },
    /// Mode `I;16`: unsigned 16-bit grey.
    I16(Vec<u16>),
    /// Mode `I`: signed 32-bit grey.
    I(Vec<i32>),
    /// Mode `F`: 32-bit float grey.
    F(Vec<f32>),
}

impl PixelData {
    /// Pillow's name for the mode.
    #[must_use]
    pub fn mode(&self) -> &'static str {
        match self {
            PixelData::Bilevel(_) => "1",
            PixelData::L(_) => "L",
            PixelData::La(_) => "LA",
            PixelData::Rgb(_) => "RGB",
            PixelData::Rgba(_) => "RGBA",
            PixelData::Cmyk(_) => "CMYK",
            PixelData::P { .. } => "P",
            PixelData::I16(_) => "I;16",
            PixelData::I(_) => "I",
            PixelData::F(_) => "F",
        }
    }
}

/// An image as Pillow opens it: size, format and samples in the file's own mode.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedImage {
    /// Width in pixels (non-zero).
    pub width: u32,
    /// Height in pixels (non-zero).
    pub height: u32,
    /// The container format.
    pub format: ImageFormat,
    /// The samples.
    pub data: PixelData,
}

/// Decodes an image file's bytes.
///
/// # Errors
/// [`ImageError::UnknownFormat`] when the bytes are no supported image; `Truncated`,
/// `Corrupt`, `Unsupported`, `Empty` or `TooLarge` from the format's decoder.
pub fn decode(bytes: &[u8]) -> Result<DecodedImage, ImageError> {
    match ImageFormat::sniff(bytes).ok_or(ImageError::UnknownFormat)? {
        ImageFormat::Png => decode_png(bytes),
        ImageFormat::Jpeg => decode_jpeg(bytes),
        ImageFormat::Gif => decode_gif(bytes),
        format @ (ImageFormat::Bmp | ImageFormat::Tiff | ImageFormat::WebP) => {
            decode_with_image_crate(bytes, format)
        }
    }
}

/// Refuses empty images and decompression bombs before anything is allocated.
fn check_size(width: u32, height: u32) -> Result<usize, ImageError> {
    if width == 0 || height == 0 {
        return Err(ImageError::Empty);
    }
    let pixels = u64::from(width) * u64::from(height);
    if pixels > MAX_PIXELS {
        return Err(ImageError::TooLarge {
            width,
            height,
            limit: MAX_PIXELS,
        });
    }
    usize::try_from(pixels).map_err(|_| ImageError::TooLarge {
        width,
        height,
        limit: MAX_PIXELS,
    })
}

// ---------------------------------------------------------------------------------------------
// PNG

fn png_error(e: png::DecodingError) -> ImageError {
    match e {
        png::DecodingError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            ImageError::Truncated { format: "PNG" }
        }
        png::DecodingError::IoError(io) => ImageError::Corrupt {
            format: "PNG",
            reason: io.to_string(),
        },
        png::DecodingError::Format(f) => ImageError::Corrupt {
            format: "PNG",
            reason: f.to_string(),
        },
        png::DecodingError::Parameter(p) => ImageError::Corrupt {
            format: "PNG",
            reason: p.to_string(),
        },
        png::DecodingError::LimitsExceeded => ImageError::Unsupported {
            format: "PNG",
            what: "decoder memory limit exceeded".to_owned(),
        },
    }
}

/// A PNG reader past its header, with what the row decoders need to know.
struct PngStream<'a> {
    reader: png::Reader<Cursor<&'a [u8]>>,
    width: u32,
    height: u32,
    color: png::ColorType,
    depth: png::BitDepth,
    interlaced: bool,
    palette: Vec<[u8; 3]>,
}

fn open_png(bytes: &[u8]) -> Result<PngStream<'_>, ImageError> {
    let mut decoder =
        png::Decoder::new_with_limits(Cursor::new(bytes), png::Limits { bytes: usize::MAX });
    decoder.set_transformations(png::Transformations::IDENTITY);
    let reader = decoder.read_info().map_err(png_error)?;
    let info = reader.info();
    let (width, height) = (info.width, info.height);
    check_size(width, height)?;
    let palette = info
        .palette
        .as_deref()
        .map(|p| p.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect())
        .unwrap_or_default();
    Ok(PngStream {
        width,
        height,
        color: info.color_type,
        depth: info.bit_depth,
        interlaced: info.interlaced,
        palette,
        reader,
    })
}

impl PngStream<'_> {
    /// Calls `row` with each unfiltered, de-interlaced row of raw samples, top to bottom.
    fn for_each_row(mut self, mut row: impl FnMut(&[u8])) -> Result<(), ImageError> {
        if self.interlaced {
            let size = self
                .reader
                .output_buffer_size()
                .ok_or(ImageError::TooLarge {
                    width: self.width,
                    height: self.height,
                    limit: MAX_PIXELS,
                })?;
            let mut buf = vec![0u8; size];
            let frame = self.reader.next_frame(&mut buf).map_err(png_error)?;
            buf.chunks_exact(frame.line_size)
                .take(self.height as usize)
                .for_each(row);
        } else {
            for _ in 0..self.height {
                match self.reader.next_row().map_err(png_error)? {
                    Some(r) => row(r.data()),
                    None => return Err(ImageError::Truncated { format: "PNG" }),
                }
            }
        }
        Ok(())
    }

    /// Bits per palette index or grey sample, for the sub-byte layouts.
    fn index_bits(&self) -> u32 {
        match self.depth {
            png::BitDepth::One => 1,
            png::BitDepth::Two => 2,
            png::BitDepth::Four => 4,
            png::BitDepth::Eight => 8,
            png::BitDepth::Sixteen => 16,
        }
    }
}

fn decode_png(bytes: &[u8]) -> Result<DecodedImage, ImageError> {
    use png::{BitDepth, ColorType};
    let stream = open_png(bytes)?;
    let (width, height) = (stream.width, stream.height);
    let w = width as usize;
    let n = w * height as usize;
    let bits = stream.index_bits();
    let corrupt = |reason: String| ImageError::Corrupt {
        format: "PNG",
        reason,
    };
    let data = match (stream.color, stream.depth) {
        (ColorType::Grayscale, BitDepth::Sixteen) => {
            let mut v = Vec::with_capacity(n);
            stream.for_each_row(|r| {
                v.extend(
                    r.chunks_exact(2)
                        .take(w)
                        .map(|s| u16::from_be_bytes([s[0], s[1]])),
                );
            })?;
            PixelData::I16(v)
        }
        (ColorType::Grayscale, BitDepth::One) => {
            let mut v = Vec::with_capacity(n);
            stream.for_each_row(|r| {
                v.extend(unpack_row(r, w, 1).map(|b| if b != 0 { 255 } else { 0 }))
            })?;
            PixelData::Bilevel(v)
        }
        (ColorType::Grayscale, BitDepth::Two | BitDepth::Four | BitDepth::Eight) => {
            // Pillow's L;2 and L;4 unpackers scale to 0..=255 (×85, ×17).
            let scale = (255 / ((1u32 << bits) - 1)) as u8;
            let mut v = Vec::with_capacity(n);
            stream.for_each_row(|r| v.extend(unpack_row(r, w, bits).map(|s| s * scale)))?;
            PixelData::L(v)
        }
        (ColorType::Indexed, BitDepth::Sixteen) => {
            return Err(corrupt("16-bit palette image".to_owned()));
        }
        (ColorType::Indexed, _) => {
            let palette = stream.palette.clone();
            let mut v = Vec::with_capacity(n);
            stream.for_each_row(|r| v.extend(unpack_row(r, w, bits)))?;
            PixelData::P {
                indices: v,
                palette,
            }
        }
        (color, depth) => {
            let channels = match color {
                ColorType::Rgb => 3,
                ColorType::GrayscaleAlpha => 2,
                ColorType::Rgba => 4,
                ColorType::Grayscale | ColorType::Indexed => {
                    return Err(corrupt(format!(
                        "invalid colour type {color:?} with bit depth {depth:?}"
                    )));
                }
            };
            let mut v = Vec::with_capacity(n * channels);
            stream.for_each_row(|r| match depth {
                // 16-bit samples keep their most significant byte (Pillow's `*;16B` rawmodes;
                // 16-bit grey+alpha opens as RGBA in Pillow, with the same grey value).
                BitDepth::Sixteen => v.extend(r.chunks_exact(2).take(w * channels).map(|s| s[0])),
                _ => v.extend_from_slice(r.get(..w * channels).unwrap_or(r)),
            })?;
            match color {
                ColorType::Rgb => PixelData::Rgb(v),
                ColorType::GrayscaleAlpha => PixelData::La(v),
                _ => PixelData::Rgba(v),
            }
        }
    };
    Ok(DecodedImage {
        width,
        height,
        format: ImageFormat::Png,
        data,
    })
}

/// PNG straight to grey, row by row: the fast path for the 8-bit layouts (no intermediate
/// image), with the very same per-pixel formulas as [`super::pillow_convert`]. `None` for the
/// layouts it does not cover, which go through [`decode`] instead.
pub(super) fn decode_png_luma(bytes: &[u8]) -> Option<Result<LumaImage, ImageError>> {
    use png::{BitDepth, ColorType};
    let stream = match open_png(bytes) {
        Ok(s) => s,
        Err(e) => return Some(Err(e)),
    };
    if stream.depth != BitDepth::Eight {
        return None;
    }
    let (width, height) = (stream.width, stream.height);
    let w = width as usize;
    let mut out = Vec::with_capacity(w * height as usize);
    let result = match stream.color {
        ColorType::Grayscale => {
            stream.for_each_row(|r| out.extend_from_slice(r.get(..w).unwrap_or(r)))
        }
        ColorType::Rgb => {
            stream.for_each_row(|r| pillow_convert::extend_luma_from_rgb(r, 3, &mut out))
        }
        ColorType::Rgba => {
            stream.for_each_row(|r| pillow_convert::extend_luma_from_rgb(r, 4, &mut out))
        }
        ColorType::GrayscaleAlpha => {
            stream.for_each_row(|r| out.extend(r.iter().step_by(2).take(w)))
        }
        ColorType::Indexed => {
            let table = pillow_convert::palette_luma(&stream.palette);
            stream.for_each_row(|r| out.extend(r.iter().take(w).map(|&i| table[usize::from(i)])))
        }
    };
    Some(result.and_then(|()| LumaImage::new(width, height, out)))
}

/// Unpacks `bits`-bit samples (MSB first) of `width` pixels from one row.
fn unpack_row(row: &[u8], width: usize, bits: u32) -> impl Iterator<Item = u8> + '_ {
    let per_byte = (8 / bits) as usize;
    let mask = ((1u16 << bits) - 1) as u8;
    (0..width).map(move |x| {
        let byte = row.get(x / per_byte).copied().unwrap_or(0);
        let shift = 8 - bits * (x % per_byte + 1) as u32;
        (byte >> shift) & mask
    })
}

// ---------------------------------------------------------------------------------------------
// JPEG

/// A reader that remembers whether libjpeg asked for bytes past the end of the file: a complete
/// JPEG ends with its EOI marker and is never read past, so this means the file is truncated.
struct EofWatch<'a> {
    inner: &'a [u8],
    hit_eof: Rc<Cell<bool>>,
}

impl Read for EofWatch<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.hit_eof.set(true);
        }
        Ok(n)
    }
}

impl BufRead for EofWatch<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.inner.is_empty() {
            self.hit_eof.set(true);
        }
        Ok(self.inner)
    }

    fn consume(&mut self, amt: usize) {
        self.inner.consume(amt);
    }
}

fn decode_jpeg(bytes: &[u8]) -> Result<DecodedImage, ImageError> {
    let hit_eof = Rc::new(Cell::new(false));
    let reader = EofWatch {
        inner: bytes,
        hit_eof: Rc::clone(&hit_eof),
    };
    // libjpeg reports fatal errors by unwinding out of its error handler (the `mozjpeg` crate's
    // design); they are caught here and become typed errors.
    let result = catch_unwind(AssertUnwindSafe(|| decode_jpeg_inner(reader)));
    if hit_eof.get() {
        return Err(ImageError::Truncated { format: "JPEG" });
    }
    match result {
        Ok(result) => result,
        Err(panic) => {
            let reason = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "libjpeg error".to_owned());
            Err(ImageError::Corrupt {
                format: "JPEG",
                reason: reason
                    .trim_start_matches("libjpeg fatal error: ")
                    .to_owned(),
            })
        }
    }
}

fn decode_jpeg_inner(reader: EofWatch<'_>) -> Result<DecodedImage, ImageError> {
    use mozjpeg::ColorSpace;
    let corrupt = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            ImageError::Truncated { format: "JPEG" }
        } else {
            ImageError::Corrupt {
                format: "JPEG",
                reason: e.to_string(),
            }
        }
    };
    let decompress = mozjpeg::Decompress::builder()
        .from_reader(reader)
        .map_err(corrupt)?;
    let width = u32::try_from(decompress.width()).map_err(|_| ImageError::Empty)?;
    let height = u32::try_from(decompress.height()).map_err(|_| ImageError::Empty)?;
    check_size(width, height)?;
    let components = decompress.components().len();
    let (data, finish) = match (decompress.color_space(), components) {
        (ColorSpace::JCS_GRAYSCALE, _) => {
            let mut started = decompress.grayscale().map_err(corrupt)?;
            let px: Vec<u8> = started.read_scanlines().map_err(corrupt)?;
            (PixelData::L(px), started.finish())
        }
        (ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK, 4) => {
            let mut started = decompress
                .to_colorspace(ColorSpace::JCS_CMYK)
                .map_err(corrupt)?;
            let px: Vec<u8> = started.read_scanlines().map_err(corrupt)?;
            // Pillow reads 4-channel JPEGs as "CMYK;I": Adobe's inverted polarity.
            (
                PixelData::Cmyk(px.into_iter().map(|v| 255 - v).collect()),
                started.finish(),
            )
        }
        (_, 3) => {
            let mut started = decompress.rgb().map_err(corrupt)?;
            let px: Vec<u8> = started.read_scanlines().map_err(corrupt)?;
            (PixelData::Rgb(px), started.finish())
        }
        (cs, n) => {
            return Err(ImageError::Unsupported {
                format: "JPEG",
                what: format!("colour space {cs:?} with {n} components"),
            });
        }
    };
    finish.map_err(corrupt)?;
    Ok(DecodedImage {
        width,
        height,
        format: ImageFormat::Jpeg,
        data,
    })
}

// ---------------------------------------------------------------------------------------------
// GIF

fn gif_error(e: gif::DecodingError) -> ImageError {
    match e {
        gif::DecodingError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            ImageError::Truncated { format: "GIF" }
        }
        other => ImageError::Corrupt {
            format: "GIF",
            reason: other.to_string(),
        },
    }
}

fn decode_gif(bytes: &[u8]) -> Result<DecodedImage, ImageError> {
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::Indexed);
    options.check_frame_consistency(false);
    let mut decoder = options.read_info(bytes).map_err(gif_error)?;
    let global_palette = decoder.global_palette().map(<[u8]>::to_vec);
    let (screen_w, screen_h) = (u32::from(decoder.width()), u32::from(decoder.height()));
    let frame = decoder
        .read_next_frame()
        .map_err(gif_error)?
        .ok_or(ImageError::Corrupt {
            format: "GIF",
            reason: "no image in file".to_owned(),
        })?;
    let (left, top) = (u32::from(frame.left), u32::from(frame.top));
    let (fw, fh) = (u32::from(frame.width), u32::from(frame.height));
    // Pillow grows the canvas of the first frame to hold the frame.
    let width = screen_w.max(left + fw);
    let height = screen_h.max(top + fh);
    let count = check_size(width, height)?;
    let fill = frame.transparent.unwrap_or(0);
    let mut indices = vec![fill; count];
    for (y, row) in frame
        .buffer
        .chunks_exact(usize::from(frame.width).max(1))
        .enumerate()
    {
        let start = (top as usize + y) * width as usize + left as usize;
        if let Some(dst) = indices.get_mut(start..start + row.len()) {
            dst.copy_from_slice(row);
        }
    }
    let palette_bytes = frame.palette.clone().or(global_palette);
    let data = match palette_bytes {
        Some(p) => PixelData::P {
            indices,
            palette: p.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect(),
        },
        // Without any colour table Pillow opens the image as L, the indices being grey levels.
        None => PixelData::L(indices),
    };
    Ok(DecodedImage {
        width,
        height,
        format: ImageFormat::Gif,
        data,
    })
}

// ---------------------------------------------------------------------------------------------
// BMP, TIFF, WebP

fn decode_with_image_crate(bytes: &[u8], format: ImageFormat) -> Result<DecodedImage, ImageError> {
    let name = format.name();
    let image_format = match format {
        ImageFormat::Bmp => image::ImageFormat::Bmp,
        ImageFormat::Tiff => image::ImageFormat::Tiff,
        ImageFormat::WebP => image::ImageFormat::WebP,
        ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Gif => {
            return Err(ImageError::UnknownFormat);
        }
    };
    let map_err = |e: image::ImageError| match e {
        image::ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            ImageError::Truncated { format: name }
        }
        image::ImageError::Unsupported(u) => ImageError::Unsupported {
            format: name,
            what: u.to_string(),
        },
        other => ImageError::Corrupt {
            format: name,
            reason: other.to_string(),
        },
    };
    let reader = image::ImageReader::with_format(Cursor::new(bytes), image_format);
    let (width, height) = reader.into_dimensions().map_err(map_err)?;
    check_size(width, height)?;
    let image = image::ImageReader::with_format(Cursor::new(bytes), image_format)
        .decode()
        .map_err(map_err)?;
    use image::DynamicImage as D;
    let data = match image {
        D::ImageLuma8(b) => PixelData::L(b.into_raw()),
        D::ImageLumaA8(b) => PixelData::La(b.into_raw()),
        D::ImageRgb8(b) => PixelData::Rgb(b.into_raw()),
        D::ImageRgba8(b) => PixelData::Rgba(b.into_raw()),
        D::ImageLuma16(b) => PixelData::I16(b.into_raw()),
        D::ImageLumaA16(b) => PixelData::La(b.into_raw().iter().map(|v| (v >> 8) as u8).collect()),
        D::ImageRgb16(b) => PixelData::Rgb(b.into_raw().iter().map(|v| (v >> 8) as u8).collect()),
        D::ImageRgba16(b) => PixelData::Rgba(b.into_raw().iter().map(|v| (v >> 8) as u8).collect()),
        D::ImageRgb32F(b) => {
            PixelData::Rgb(b.into_raw().iter().map(|v| unit_float_to_u8(*v)).collect())
        }
        D::ImageRgba32F(b) => {
            PixelData::Rgba(b.into_raw().iter().map(|v| unit_float_to_u8(*v)).collect())
        }
        other => {
            return Err(ImageError::Unsupported {
                format: name,
                what: format!("pixel layout {:?}", other.color()),
            });
        }
    };
    Ok(DecodedImage {
        width,
        height,
        format,
        data,
    })
}

fn unit_float_to_u8(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniff_recognises_magic_numbers_only() {
        assert_eq!(
            ImageFormat::sniff(b"\x89PNG\r\n\x1a\nxxxx"),
            Some(ImageFormat::Png)
        );
        assert_eq!(
            ImageFormat::sniff(b"\xff\xd8\xff\xe0"),
            Some(ImageFormat::Jpeg)
        );
        assert_eq!(ImageFormat::sniff(b"GIF89a"), Some(ImageFormat::Gif));
        assert_eq!(
            ImageFormat::sniff(b"RIFF\0\0\0\0WEBPVP8L"),
            Some(ImageFormat::WebP)
        );
        assert_eq!(ImageFormat::sniff(b"RIFF\0\0\0\0WAVE"), None);
        assert_eq!(ImageFormat::sniff(b""), None);
        assert_eq!(ImageFormat::sniff(b"hello"), None);
    }

    #[test]
    fn decode_rejects_garbage_with_typed_errors() {
        assert!(matches!(
            decode(b"not an image"),
            Err(ImageError::UnknownFormat)
        ));
        for magic in [
            &b"\x89PNG\r\n\x1a\n"[..],
            b"\xff\xd8\xff",
            b"GIF89a",
            b"BM",
            b"II*\0",
            b"RIFF\0\0\0\0WEBP",
        ] {
            let mut bytes = magic.to_vec();
            bytes.extend_from_slice(&[0x5a; 40]);
            assert!(decode(&bytes).is_err(), "{magic:?}");
        }
    }
}
