//! Perceptual hashes that equal Python `imagehash`'s, bit for bit.
//!
//! Users arrive with hashes computed by `imagehash` 4.3 on images opened by Pillow; a hash
//! computed here must be the same 64 bits, or their existing index is useless. So every step of
//! `imagehash.phash(PIL.Image.open(f))` is reproduced exactly, not approximated:
//!
//! | step | Python | here |
//! |---|---|---|
//! | open | `PIL.Image.open(f)`: the file's own mode (RGB, RGBA, P, LA, L, I;16, I, F, 1, CMYK); EXIF orientation **not** applied | [`decode`] (PNG via `png`, JPEG via libjpeg-turbo code in `mozjpeg`, GIF via `gif`, BMP/TIFF/WebP via `image`) |
//! | `convert("L")` | Pillow's per-mode converters (ITU-R 601 in 16.16 fixed point, palette lookup, clipping of I;16/I/F, CMYK→RGB→L) | [`pillow_convert`] |
//! | `resize(…, LANCZOS)` | Pillow's separable 22-bit fixed-point kernels, in Pillow 13.0's pass order | `phash/lanczos.rs` |
//! | `scipy.fftpack.dct` | pocketfft's DCT-II (float64), along axis 0 then axis 1 | `phash/dct.rs` |
//! | `numpy.median`, `>` | mean of the two middle values; strict comparison | [`phash`] |
//!
//! The hex text of an [`ImageHash`] is imagehash's `str(hash)`: the bits in row-major order,
//! first bit most significant.
//!
//! # What is guaranteed
//! For lossless formats (PNG, GIF, BMP, TIFF, lossless WebP) the decoded pixels are Pillow's,
//! and every later step is integer-exact or replays the same float64 operations, so the hash
//! is identical on any image, including degenerate ones (flat, or with DCT coefficients tying
//! the median). JPEG is decoded by libjpeg-turbo code with the settings Pillow uses (islow
//! IDCT, fancy upsampling), which gave Pillow's exact pixels on every file measured. Lossy WebP
//! is decoded by a pure-Rust decoder and may differ from libwebp by a few levels.

mod dct;
pub mod decode;
mod lanczos;
pub mod pillow_convert;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use decode::{DecodedImage, ImageFormat, PixelData};

/// A 64-bit perceptual hash (imagehash's default `hash_size = 8`).
///
/// Bit 63 is the first element of imagehash's boolean array (row 0, column 0); the text form is
/// 16 lower-case hex digits, exactly `str(imagehash.phash(img))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageHash(pub u64);

impl ImageHash {
    /// The Hamming distance to `other`: the number of differing bits (0 to 64).
    #[must_use]
    pub fn hamming(self, other: ImageHash) -> u32 {
        (self.0 ^ other.0).count_ones()
    }

    /// Builds a hash from booleans in imagehash's row-major order (first = most significant).
    fn from_bits(bits: impl IntoIterator<Item = bool>) -> ImageHash {
        ImageHash(
            bits.into_iter()
                .fold(0u64, |acc, b| (acc << 1) | u64::from(b)),
        )
    }
}

impl fmt::Display for ImageHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// The text was not 16 hexadecimal digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image hash {text:?}: expected 16 hexadecimal digits")]
pub struct ParseImageHashError {
    /// The text that failed to parse.
    pub text: String,
}

impl FromStr for ImageHash {
    type Err = ParseImageHashError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseImageHashError { text: s.to_owned() };
        if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err());
        }
        u64::from_str_radix(s, 16).map(ImageHash).map_err(|_| err())
    }
}

/// The perceptual hash algorithms, each with imagehash's default parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HashAlgorithm {
    /// `imagehash.phash`: DCT of a 32×32 LANCZOS thumbnail, low 8×8 frequencies vs their median.
    #[default]
    Phash,
    /// `imagehash.dhash`: horizontal gradient signs of a 9×8 thumbnail.
    Dhash,
    /// `imagehash.average_hash`: an 8×8 thumbnail vs its mean.
    AverageHash,
}

impl HashAlgorithm {
    /// Every algorithm, in a fixed order.
    pub const ALL: [HashAlgorithm; 3] = [
        HashAlgorithm::Phash,
        HashAlgorithm::Dhash,
        HashAlgorithm::AverageHash,
    ];

    /// The short name used on the command line (`phash`, `dhash`, `ahash`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Phash => "phash",
            HashAlgorithm::Dhash => "dhash",
            HashAlgorithm::AverageHash => "ahash",
        }
    }

    /// Hashes an image already converted to 8-bit grayscale.
    #[must_use]
    pub fn hash(self, image: &LumaImage) -> ImageHash {
        match self {
            HashAlgorithm::Phash => phash(image),
            HashAlgorithm::Dhash => dhash(image),
            HashAlgorithm::AverageHash => average_hash(image),
        }
    }
}

/// An 8-bit grayscale image (Pillow mode `L`), row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LumaImage {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

impl LumaImage {
    /// Wraps row-major pixels.
    ///
    /// # Errors
    /// [`ImageError::Empty`] for a zero dimension, [`ImageError::Corrupt`] when
    /// `pixels.len() != width * height`.
    pub fn new(width: u32, height: u32, pixels: Vec<u8>) -> Result<LumaImage, ImageError> {
        if width == 0 || height == 0 {
            return Err(ImageError::Empty);
        }
        if pixels.len() as u64 != u64::from(width) * u64::from(height) {
            return Err(ImageError::Corrupt {
                format: "raw",
                reason: format!("{} pixels given for a {width}x{height} image", pixels.len()),
            });
        }
        Ok(LumaImage {
            width,
            height,
            pixels,
        })
    }

    /// Width in pixels.
    #[must_use]
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    #[must_use]
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The row-major pixels.
    #[must_use]
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// Pillow's `resize((width, height), Image.Resampling.LANCZOS)`, bit for bit.
    ///
    /// # Panics
    /// If `width` or `height` is zero.
    #[must_use]
    pub fn resize_lanczos(&self, width: u32, height: u32) -> LumaImage {
        assert!(width > 0 && height > 0, "resize target must be non-empty");
        let pixels = lanczos::resize(
            &self.pixels,
            self.width as usize,
            self.height as usize,
            width as usize,
            height as usize,
        );
        LumaImage {
            width,
            height,
            pixels,
        }
    }
}

/// Why an image could not be opened or hashed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The file could not be read.
    #[error("cannot read file: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes are not in any supported image format.
    #[error("not a supported image (PNG, JPEG, GIF, BMP, TIFF or WebP)")]
    UnknownFormat,
    /// The data ends before the image does.
    #[error("{format} image is truncated")]
    Truncated {
        /// The format being decoded.
        format: &'static str,
    },
    /// The data is malformed.
    #[error("corrupt {format} image: {reason}")]
    Corrupt {
        /// The format being decoded.
        format: &'static str,
        /// What the decoder found wrong.
        reason: String,
    },
    /// A valid file using a feature this decoder does not handle.
    #[error("unsupported {format} image: {what}")]
    Unsupported {
        /// The format being decoded.
        format: &'static str,
        /// The feature.
        what: String,
    },
    /// Width or height is zero.
    #[error("image has no pixels")]
    Empty,
    /// More pixels than Pillow would open (its decompression-bomb limit).
    #[error("image of {width}x{height} pixels exceeds the limit of {limit} pixels")]
    TooLarge {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// The pixel limit.
        limit: u64,
    },
}

/// An [`ImageError`] together with the file it concerns.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct FileError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    #[source]
    pub source: ImageError,
}

/// Decodes an image file's bytes and converts it to grayscale exactly as
/// `PIL.Image.open(f).convert("L")`.
///
/// # Errors
/// Any [`ImageError`] the decoder reports; never panics on malformed input.
pub fn decode_luma(bytes: &[u8]) -> Result<LumaImage, ImageError> {
    if ImageFormat::sniff(bytes) == Some(ImageFormat::Png)
        && let Some(result) = decode::decode_png_luma(bytes)
    {
        return result;
    }
    let decoded = decode::decode(bytes)?;
    Ok(pillow_convert::to_luma(&decoded))
}

/// Reads and decodes a file to grayscale (see [`decode_luma`]).
///
/// # Errors
/// A [`FileError`] naming the file and the reason.
pub fn open_luma(path: &Path) -> Result<LumaImage, FileError> {
    let wrap = |source| FileError {
        path: path.to_owned(),
        source,
    };
    let bytes = std::fs::read(path).map_err(|e| wrap(ImageError::Io(e)))?;
    decode_luma(&bytes).map_err(wrap)
}

/// Hashes an image file with `algorithm`: `str(imagehash.<algorithm>(PIL.Image.open(path)))`.
///
/// # Errors
/// A [`FileError`] naming the file and the reason (missing, not an image, truncated, corrupt).
pub fn hash_file(path: &Path, algorithm: HashAlgorithm) -> Result<ImageHash, FileError> {
    open_luma(path).map(|img| algorithm.hash(&img))
}

/// `imagehash.phash(image)` with `hash_size = 8`, `highfreq_factor = 4`.
#[must_use]
pub fn phash(image: &LumaImage) -> ImageHash {
    let small = image.resize_lanczos(32, 32);
    let mut pixels = [0u8; 1024];
    pixels.copy_from_slice(small.pixels());
    let coefficients = dct::scipy_dct2_32x32(&pixels);
    ImageHash(dct::phash_bits_from_dct(&coefficients))
}

/// `imagehash.dhash(image)` with `hash_size = 8`: for each of 8 rows of a 9×8 thumbnail,
/// whether each pixel is brighter than its left neighbour.
#[must_use]
pub fn dhash(image: &LumaImage) -> ImageHash {
    let small = image.resize_lanczos(9, 8);
    let px = small.pixels();
    ImageHash::from_bits(
        px.chunks_exact(9)
            .flat_map(|row| row.windows(2).map(|w| w[1] > w[0])),
    )
}

/// `imagehash.average_hash(image)` with `hash_size = 8`: each pixel of an 8×8 thumbnail
/// against the thumbnail's mean (`pixel > mean`, computed exactly as `64·pixel > sum`).
#[must_use]
pub fn average_hash(image: &LumaImage) -> ImageHash {
    let small = image.resize_lanczos(8, 8);
    let px = small.pixels();
    let sum: u32 = px.iter().map(|&p| u32::from(p)).sum();
    ImageHash::from_bits(px.iter().map(|&p| 64 * u32::from(p) > sum))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_text_round_trips() {
        let h = ImageHash(0x95c3_3d25_0fb0_cd3c);
        assert_eq!(h.to_string(), "95c33d250fb0cd3c");
        assert_eq!("95c33d250fb0cd3c".parse::<ImageHash>().unwrap(), h);
        assert!("95c33d250fb0cd3".parse::<ImageHash>().is_err());
        assert!("95c33d250fb0cd3g".parse::<ImageHash>().is_err());
    }

    #[test]
    fn flat_image_hashes_like_imagehash() {
        // imagehash on a constant image: phash 8000000000000000 (only the DC term exceeds the
        // zero median; all zero for black), dhash and average_hash all zero.
        for v in [0u8, 1, 128, 255] {
            let img = LumaImage::new(50, 37, vec![v; 50 * 37]).unwrap();
            let want = if v == 0 { 0 } else { 1 << 63 };
            assert_eq!(phash(&img), ImageHash(want), "value {v}");
            assert_eq!(dhash(&img).0, 0);
            assert_eq!(average_hash(&img).0, 0);
        }
    }

    #[test]
    fn luma_image_rejects_inconsistent_sizes() {
        assert!(matches!(
            LumaImage::new(0, 3, vec![]),
            Err(ImageError::Empty)
        ));
        assert!(matches!(
            LumaImage::new(2, 2, vec![0; 3]),
            Err(ImageError::Corrupt { .. })
        ));
    }
}
