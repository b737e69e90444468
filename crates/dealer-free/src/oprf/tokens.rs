//! Search tokens: the threshold VOPRF applied to the bands of a 64-bit perceptual hash, in
//! requests of a fixed size.
//!
//! A [`BandLayout`] cuts an [`ImageHash`] into bands (default 8 × 8 bits). The token of
//! band `i` with value `v` is the VOPRF output on
//! `TOKEN_DOMAIN ‖ len(collection) (1) ‖ collection ‖ bits_per_band (1) ‖ i (1) ‖ v (u16 BE)`
//! ([`TokenContext::input`]), truncated to 32 bytes ([`BandToken`]). Nodes index
//! token → image ids; only a client holding the blinds learns tokens, and only with the
//! help of `t` nodes.
//!
//! Fixed size: every [`TokenRequest`] carries exactly `bands` blinded elements per image
//! ([`TOKENS_PER_REQUEST`] for the default layout), whatever the hash. Equal inputs in one
//! request (the same band value in the same band of two images of a batch) are blinded once;
//! the freed slots carry dummy inputs (random band values whose outputs the client throws
//! away). A blinded element `r·H(x)` with a fresh uniform `r` is a uniformly random group
//! element, so nodes cannot tell real from dummy slots, nor learn anything about the
//! inputs, from a request: its byte length depends only on the layout and the number of
//! images. [`TokenRequest::for_images`] batches many images into one request, answered
//! with one proof per node.
//!
//! Flow: the client builds `(state, request)` with [`TokenRequest::new`] or
//! [`TokenRequest::for_images`] and sends the request to the nodes; each node answers with
//! [`respond`]; the client calls [`finish`] / [`finish_images`] with any `t` or more
//! answers, which verifies every answer, names bad nodes, combines `t` good ones and
//! finalizes (see [`super::threshold`]).
//!
//! Why 32 bytes of the 64-byte output are enough: a truncated PRF is a PRF, so a token is
//! as unpredictable as its 256 bits allow; two distinct band inputs collide with probability
//! 2⁻²⁵⁶ per pair, i.e. below 2⁻¹⁹⁰ even for 2³² tokens in one index (birthday bound), and
//! guessing a token is a 2²⁵⁶ search — well above the 128-bit security level of
//! ristretto255 itself.
//!
//! Leakage (by design, `docs/design.md#search-tokens`): nodes that index tokens see which
//! images share a band value and the access pattern of queries; a client allowed to query the
//! OPRF can enumerate all band tokens, so OPRF access must be authenticated and rate-limited.
//!
//! Wire encoding of a [`TokenRequest`], in the layout of [`crate::wire`] (kind
//! [`MessageKind::TokenRequest`]):
//! `version (1) ‖ kind (1) ‖ bands (1) ‖ images (u16 BE) ‖ bands·images × blinded element (32)`.
//!
//! # References
//! * RFC 9497 (VOPRF mode, ristretto255-SHA512).
//! * `docs/design.md#search-tokens`.

use std::collections::BTreeMap;
use std::fmt;

use phr_sis::{BandLayout, ImageHash, NodeId, Threshold};
use zeroize::Zeroize;

use super::threshold::{
    KeyShare, MAX_BATCH, PartialEvaluation, ThresholdError, combine_filtered, empty_batch,
};
use super::{
    Blind, BlindedElement, ELEMENT_LEN, Mode, OUTPUT_LEN, OprfError, PublicKey, blind_with_blind,
    finalize_hash, random_scalar,
};
use crate::wire::{MessageKind, Reader, WireError, Writer};

/// The domain string every token input starts with.
pub const TOKEN_DOMAIN: &[u8] = b"dealer-free-sis/v1/band-token";

/// Blinded elements per image in a request with the default layout (8 bands): one per band.
/// For other layouts it is [`BandLayout::bands`].
pub const TOKENS_PER_REQUEST: usize = 8;

/// Length of a [`BandToken`].
pub const BAND_TOKEN_LEN: usize = 32;

/// The longest collection label, in bytes (it is length-prefixed with one byte).
pub const MAX_COLLECTION_LEN: usize = u8::MAX as usize;

/// Errors of search-token requests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The collection label is longer than [`MAX_COLLECTION_LEN`] bytes.
    #[error("collection label is {len} bytes, at most {MAX_COLLECTION_LEN} allowed")]
    CollectionTooLong {
        /// The label's length.
        len: usize,
    },
    /// A request for no images.
    #[error("no images in the request")]
    NoImages,
    /// More images than fit in one request (at most 65535 blinded elements).
    #[error("{images} images do not fit in one request (at most {max})")]
    TooManyImages {
        /// The number of images asked for.
        images: usize,
        /// The most images one request holds with this layout.
        max: usize,
    },
    /// Verifying or combining the nodes' answers failed.
    #[error(transparent)]
    Threshold(#[from] ThresholdError),
    /// An OPRF-level error.
    #[error(transparent)]
    Oprf(#[from] OprfError),
}

impl TokenError {
    /// The nodes this error blames, as [`ThresholdError::culprits`].
    #[must_use]
    pub fn culprits(&self) -> Vec<NodeId> {
        match self {
            TokenError::Threshold(e) => e.culprits(),
            _ => Vec::new(),
        }
    }
}

/// What a token is bound to: a collection label and the band layout.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenContext {
    collection: Vec<u8>,
    layout: BandLayout,
}

impl TokenContext {
    /// The context of the collection `collection` with `layout`.
    ///
    /// # Errors
    /// [`TokenError::CollectionTooLong`] above [`MAX_COLLECTION_LEN`] bytes.
    pub fn new(collection: &[u8], layout: BandLayout) -> Result<TokenContext, TokenError> {
        if collection.len() > MAX_COLLECTION_LEN {
            return Err(TokenError::CollectionTooLong {
                len: collection.len(),
            });
        }
        Ok(TokenContext {
            collection: collection.to_vec(),
            layout,
        })
    }

    /// The band layout.
    #[must_use]
    pub fn layout(&self) -> BandLayout {
        self.layout
    }

    /// The collection label.
    #[must_use]
    pub fn collection(&self) -> &[u8] {
        &self.collection
    }

    /// Blinded elements per image: the number of bands.
    #[must_use]
    pub fn tokens_per_image(&self) -> usize {
        self.layout.bands() as usize
    }

    /// The VOPRF input of band `band` with value `value`:
    /// `TOKEN_DOMAIN ‖ len(collection) ‖ collection ‖ bits_per_band ‖ band ‖ value (u16 BE)`.
    /// (`band` < 64 and `bits_per_band` ≤ 16 by [`BandLayout`]'s invariants, so each fits
    /// one byte.)
    #[must_use]
    pub fn input(&self, band: u32, value: u16) -> Vec<u8> {
        let mut v = Vec::with_capacity(TOKEN_DOMAIN.len() + self.collection.len() + 5);
        v.extend_from_slice(TOKEN_DOMAIN);
        v.push(u8::try_from(self.collection.len()).unwrap_or(u8::MAX));
        v.extend_from_slice(&self.collection);
        v.push(u8::try_from(self.layout.bits_per_band()).unwrap_or(u8::MAX));
        v.push(u8::try_from(band).unwrap_or(u8::MAX));
        v.extend_from_slice(&value.to_be_bytes());
        v
    }

    /// The most images one request can hold with this layout.
    #[must_use]
    pub fn max_images(&self) -> usize {
        (MAX_BATCH / self.tokens_per_image()).min(usize::from(u16::MAX))
    }
}

/// A search token: the first 32 bytes of the VOPRF output of one band input.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BandToken(pub [u8; BAND_TOKEN_LEN]);

impl BandToken {
    /// The token of a 64-byte VOPRF output (its first 32 bytes).
    #[must_use]
    pub fn from_output(output: &[u8; OUTPUT_LEN]) -> BandToken {
        let mut t = [0u8; BAND_TOKEN_LEN];
        t.copy_from_slice(&output[..BAND_TOKEN_LEN]);
        BandToken(t)
    }

    /// The token's bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; BAND_TOKEN_LEN] {
        &self.0
    }
}

impl fmt::Debug for BandToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BandToken(")?;
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// A fixed-size request: `bands` blinded elements per image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    bands: u8,
    images: u16,
    blinded: Vec<BlindedElement>,
}

/// The client's secret state for one [`TokenRequest`]: the blinds, the real inputs and where
/// each image's bands sit. Inputs are zeroized on drop (they reveal the hashes); `Debug`
/// shows only sizes.
pub struct TokenRequestState {
    blinds: Vec<Blind>,
    blinded: Vec<BlindedElement>,
    /// The input of each slot, `None` for dummy slots.
    inputs: Vec<Option<Vec<u8>>>,
    /// For image `m`, band `i`: the slot at `m·bands + i`.
    band_slots: Vec<usize>,
    bands: usize,
}

impl Drop for TokenRequestState {
    fn drop(&mut self) {
        for input in self.inputs.iter_mut().flatten() {
            input.zeroize();
        }
        self.band_slots.zeroize();
    }
}

impl fmt::Debug for TokenRequestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRequestState")
            .field("slots", &self.blinds.len())
            .field("bands", &self.bands)
            .field("inputs", &"<redacted>")
            .finish()
    }
}

impl TokenRequestState {
    /// The number of images in the request.
    #[must_use]
    pub fn images(&self) -> usize {
        self.band_slots.len() / self.bands.max(1)
    }

    /// The number of distinct real inputs (the other slots are dummies).
    #[must_use]
    pub fn real_slots(&self) -> usize {
        self.inputs.iter().filter(|i| i.is_some()).count()
    }
}

fn blind_input<R: rand::CryptoRng + ?Sized>(
    input: &[u8],
    rng: &mut R,
) -> Result<(Blind, BlindedElement), OprfError> {
    let b = Blind(random_scalar(rng));
    let be = blind_with_blind(Mode::Voprf, input, &b)?;
    Ok((b, be))
}

impl TokenRequest {
    /// A request for the bands of one image hash.
    ///
    /// # Errors
    /// [`TokenError::Oprf`] with [`OprfError::InvalidInput`] if an input hashes to the
    /// identity (probability ≈ 2⁻²⁵²).
    pub fn new<R: rand::CryptoRng + ?Sized>(
        context: &TokenContext,
        hash: ImageHash,
        rng: &mut R,
    ) -> Result<(TokenRequestState, TokenRequest), TokenError> {
        TokenRequest::for_images(context, &[hash], rng)
    }

    /// One request for the bands of many images (`bands` slots per image, equal inputs
    /// blinded once, dummies in the freed slots); nodes answer it with one proof each.
    ///
    /// # Errors
    /// [`TokenError::NoImages`] for an empty slice, [`TokenError::TooManyImages`] above
    /// [`TokenContext::max_images`], [`TokenError::Oprf`] as [`TokenRequest::new`].
    pub fn for_images<R: rand::CryptoRng + ?Sized>(
        context: &TokenContext,
        hashes: &[ImageHash],
        rng: &mut R,
    ) -> Result<(TokenRequestState, TokenRequest), TokenError> {
        if hashes.is_empty() {
            return Err(TokenError::NoImages);
        }
        let max = context.max_images();
        if hashes.len() > max {
            return Err(TokenError::TooManyImages {
                images: hashes.len(),
                max,
            });
        }
        let layout = context.layout;
        let bands = context.tokens_per_image();
        let slots = bands * hashes.len();
        let mut slot_of: BTreeMap<(u32, u16), usize> = BTreeMap::new();
        let mut inputs: Vec<Option<Vec<u8>>> = Vec::with_capacity(slots);
        let mut band_slots = Vec::with_capacity(slots);
        for hash in hashes {
            for band in 0..layout.bands() {
                let value = layout.band(*hash, band).unwrap_or(0);
                let slot = *slot_of.entry((band, value)).or_insert_with(|| {
                    inputs.push(Some(context.input(band, value)));
                    inputs.len() - 1
                });
                band_slots.push(slot);
            }
        }
        let value_mask = u16::try_from((1u32 << layout.bits_per_band()) - 1).unwrap_or(u16::MAX);
        while inputs.len() < slots {
            inputs.push(None);
        }
        let mut blinds = Vec::with_capacity(slots);
        let mut blinded = Vec::with_capacity(slots);
        for input in &inputs {
            let (b, be) = match input {
                Some(input) => blind_input(input, rng)?,
                None => {
                    let mut r = [0u8; 3];
                    rng.fill_bytes(&mut r);
                    let band = u32::from(r[0]) % layout.bands();
                    let value = u16::from_be_bytes([r[1], r[2]]) & value_mask;
                    blind_input(&context.input(band, value), rng)?
                }
            };
            blinds.push(b);
            blinded.push(be);
        }
        let request = TokenRequest {
            bands: u8::try_from(bands).map_err(|_| OprfError::BatchTooLarge)?,
            images: u16::try_from(hashes.len()).map_err(|_| OprfError::BatchTooLarge)?,
            blinded: blinded.clone(),
        };
        let state = TokenRequestState {
            blinds,
            blinded,
            inputs,
            band_slots,
            bands,
        };
        Ok((state, request))
    }

    /// The blinded elements, `bands · images` of them.
    #[must_use]
    pub fn blinded(&self) -> &[BlindedElement] {
        &self.blinded
    }

    /// The number of bands per image.
    #[must_use]
    pub fn bands(&self) -> usize {
        usize::from(self.bands)
    }

    /// The number of images.
    #[must_use]
    pub fn images(&self) -> usize {
        usize::from(self.images)
    }

    /// The encoded length of a request for `images` images of `bands` bands.
    #[must_use]
    pub const fn encoded_len(bands: usize, images: usize) -> usize {
        2 + 3 + bands * images * ELEMENT_LEN
    }

    /// `version ‖ kind ‖ bands ‖ images (u16 BE) ‖ blinded elements`.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(MessageKind::TokenRequest);
        w.u8(self.bands);
        w.u16(self.images);
        for b in &self.blinded {
            w.point(&b.0);
        }
        w.finish()
    }

    /// Decodes a request. Never panics.
    ///
    /// # Errors
    /// A [`WireError`] naming the first bad field: [`WireError::Truncated`],
    /// [`WireError::TrailingBytes`], [`WireError::UnknownVersion`],
    /// [`WireError::UnknownKind`] / [`WireError::UnexpectedKind`],
    /// [`WireError::InvalidField`] (a band count no [`BandLayout`] has, no images, or more
    /// than 65535 elements), [`WireError::InvalidPoint`].
    pub fn from_bytes(bytes: &[u8]) -> Result<TokenRequest, WireError> {
        let (mut r, bands, images, count) = Self::header(bytes)?;
        let blinded = r
            .points("blinded element", count)?
            .into_iter()
            .map(BlindedElement)
            .collect();
        r.finish()?;
        Ok(TokenRequest {
            bands,
            images,
            blinded,
        })
    }

    /// The bands and images an encoded request asks for, read from its header alone (no
    /// point is decoded): what a node charges before it does the work of decoding. The length
    /// must be the header's and the points' exactly.
    ///
    /// # Errors
    /// As [`TokenRequest::from_bytes`] for the header and the length.
    pub fn peek(bytes: &[u8]) -> Result<(u8, u16), WireError> {
        let (r, bands, images, count) = Self::header(bytes)?;
        if r.remaining() != count.saturating_mul(32) {
            return Err(WireError::InvalidField {
                field: "blinded element",
                reason: format!("{} bytes for {count} elements of 32 bytes", r.remaining()),
            });
        }
        Ok((bands, images))
    }

    /// The reader after the header, and the header's bands, images and element count.
    fn header(bytes: &[u8]) -> Result<(Reader<'_>, u8, u16, usize), WireError> {
        let mut r = Reader::new(bytes, MessageKind::TokenRequest)?;
        let bands = r.u8("bands")?;
        if !matches!(bands, 4 | 8 | 16 | 32 | 64) {
            return Err(WireError::InvalidField {
                field: "bands",
                reason: format!("{bands} bands; a layout has 4, 8, 16, 32 or 64"),
            });
        }
        let images = r.u16("images")?;
        if images == 0 {
            return Err(empty_batch("images"));
        }
        let count = usize::from(bands) * usize::from(images);
        if count > MAX_BATCH {
            return Err(WireError::InvalidField {
                field: "images",
                reason: format!("{count} elements; at most {MAX_BATCH} fit in one request"),
            });
        }
        Ok((r, bands, images, count))
    }
}

/// Node side: evaluates a token request under the node's key share (one proof for the
/// whole request).
///
/// # Errors
/// As [`super::threshold::partial_evaluate`] (never for a request built or decoded here).
pub fn respond<R: rand::CryptoRng + ?Sized>(
    share: &KeyShare,
    request: &TokenRequest,
    rng: &mut R,
) -> Result<PartialEvaluation, OprfError> {
    super::threshold::partial_evaluate(share, &request.blinded, rng)
}

/// [`respond`], stopping when `go_on` says no (asked between chunks of the work, see
/// [`super::threshold::partial_evaluate_while`]).
///
/// # Errors
/// As [`respond`]; [`OprfError::Stopped`].
pub fn respond_while<R: rand::CryptoRng + ?Sized>(
    share: &KeyShare,
    request: &TokenRequest,
    rng: &mut R,
    go_on: &mut dyn FnMut() -> bool,
) -> Result<PartialEvaluation, OprfError> {
    super::threshold::partial_evaluate_while(share, &request.blinded, rng, go_on)
}

/// Client side: verifies the answers, combines `t` valid ones and finalizes; returns the
/// tokens of every image, image by image, each in band order.
///
/// # Errors
/// [`TokenError::Threshold`] with [`ThresholdError::NotEnoughValidPartials`] (naming the
/// rejected nodes, see [`TokenError::culprits`]) if fewer than `t` answers verify.
pub fn finish_images(
    state: TokenRequestState,
    partials: &[PartialEvaluation],
    verification_shares: &BTreeMap<NodeId, PublicKey>,
    threshold: Threshold,
) -> Result<Vec<Vec<BandToken>>, TokenError> {
    let combined = combine_filtered(
        &state.blinded,
        partials,
        verification_shares,
        threshold,
        |i| state.inputs.get(i).is_some_and(Option::is_some),
    )?;
    let mut slot_tokens: Vec<Option<BandToken>> = Vec::with_capacity(state.inputs.len());
    for ((input, blind), z) in state
        .inputs
        .iter()
        .zip(&state.blinds)
        .zip(&combined.elements)
    {
        slot_tokens.push(match input {
            Some(input) => Some(BandToken::from_output(&finalize_hash(input, blind, z)?)),
            None => None,
        });
    }
    let tokens: Vec<BandToken> = state
        .band_slots
        .iter()
        .map(|&slot| {
            slot_tokens
                .get(slot)
                .copied()
                .flatten()
                .ok_or(TokenError::Oprf(OprfError::LengthMismatch))
        })
        .collect::<Result<_, _>>()?;
    Ok(tokens
        .chunks(state.bands.max(1))
        .map(<[BandToken]>::to_vec)
        .collect())
}

/// Client side: as [`finish_images`], with the tokens of all images concatenated (for a
/// one-image request: one token per band, in band order).
///
/// # Errors
/// As [`finish_images`].
pub fn finish(
    state: TokenRequestState,
    partials: &[PartialEvaluation],
    verification_shares: &BTreeMap<NodeId, PublicKey>,
    threshold: Threshold,
) -> Result<Vec<BandToken>, TokenError> {
    finish_images(state, partials, verification_shares, threshold)
        .map(|images| images.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code
    use super::*;

    #[test]
    fn input_layout_and_request_wire_rejections() {
        let ctx = TokenContext::new(b"c", BandLayout::default()).unwrap();
        let mut expected = TOKEN_DOMAIN.to_vec();
        expected.extend_from_slice(&[1, b'c', 8, 3, 0x00, 0xab]);
        assert_eq!(ctx.input(3, 0xab), expected);
        assert!(matches!(
            TokenContext::new(&[0u8; 256], BandLayout::default()),
            Err(TokenError::CollectionTooLong { len: 256 })
        ));
        assert_eq!(
            TokenRequest::from_bytes(&[1, 0x32, 8, 0]),
            Err(WireError::Truncated {
                field: "images",
                need: 2,
                got: 1
            })
        );
        assert_eq!(
            TokenRequest::from_bytes(&[2, 0x32, 8, 0, 1]),
            Err(WireError::UnknownVersion(2))
        );
        assert_eq!(
            TokenRequest::from_bytes(&[1, 0x31, 8, 0, 1]),
            Err(WireError::UnexpectedKind {
                expected: MessageKind::TokenRequest,
                got: MessageKind::OprfPartialEvaluation
            })
        );
        assert!(matches!(
            TokenRequest::from_bytes(&[1, 0x32, 7, 0, 1]),
            Err(WireError::InvalidField { field: "bands", .. })
        ));
        assert!(matches!(
            TokenRequest::from_bytes(&[1, 0x32, 8, 0, 0]),
            Err(WireError::InvalidField {
                field: "images",
                ..
            })
        ));
        assert!(matches!(
            TokenRequest::from_bytes(&[1, 0x32, 64, 0xff, 0xff]),
            Err(WireError::InvalidField {
                field: "images",
                ..
            })
        ));
        assert_eq!(
            TokenRequest::from_bytes(&[1, 0x32, 4, 0, 1]),
            Err(WireError::Truncated {
                field: "blinded element",
                need: 128,
                got: 0
            })
        );
        assert_eq!(TokenRequest::encoded_len(4, 1), 133);
    }
}
