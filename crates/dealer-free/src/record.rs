//! The record one node stores of one image (Stage-1): the node's image share, its shares of
//! the hash's 64 bits and the image's band tokens. One type with one encoding: what the owner
//! sends each node, what a node exports to repair a replaced node, and what the simulator
//! counts.
//!
//! `version ‖ kind (0x51) ‖ image id (u64) ‖ share length (u32) ‖ share ‖ 64 bit shares
//! (8 bytes each) ‖ token count (u16) ‖ tokens (32 each)`, counts big-endian, field elements
//! little-endian. The decoder bounds every length by the bytes left before allocating, refuses
//! more than [`MAX_TOKENS`] tokens and non-canonical field elements, and never panics. The
//! share's own format is `phr_sis::share`'s; the node checks it.

use phr_sis::ImageId;
use phr_sis::fp61::Fp61;
use phr_sis::token_index::Token;
use zeroize::Zeroizing;

use crate::mpc::{HASH_BITS, HashBitShares};
use crate::wire::{MessageKind, Reader, WireError, Writer};

/// Most band tokens in one record: one per band, and a band layout has at most 64 bands
/// (64 bands of 1 bit).
pub const MAX_TOKENS: usize = 64;

/// One image's record at one node.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The image.
    pub image_id: ImageId,
    /// The node's image share (`phr_sis::share` format).
    pub share: Vec<u8>,
    /// The node's shares of the hash's bits. Secret.
    pub bit_shares: HashBitShares,
    /// The image's band tokens.
    pub tokens: Vec<Token>,
}

impl StoredRecord {
    /// Encoded length for a share of `share_len` bytes and `tokens` tokens.
    #[must_use]
    pub const fn encoded_len(share_len: usize, tokens: usize) -> usize {
        2 + 8 + 4 + share_len + 8 * HASH_BITS + 2 + 32 * tokens
    }

    /// The encoding; it holds the bit shares, so it is zeroized when dropped.
    ///
    /// # Errors
    /// [`WireError::InvalidField`] for more than [`MAX_TOKENS`] tokens or a share above
    /// 4 GiB.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, WireError> {
        if self.tokens.len() > MAX_TOKENS {
            return Err(WireError::InvalidField {
                field: "tokens",
                reason: format!("{} tokens, at most {MAX_TOKENS}", self.tokens.len()),
            });
        }
        let share_len = u32::try_from(self.share.len()).map_err(|_| WireError::InvalidField {
            field: "share",
            reason: "longer than 4 GiB".into(),
        })?;
        let mut w = Writer::with_capacity(
            MessageKind::StoredRecord,
            Self::encoded_len(self.share.len(), self.tokens.len()),
        );
        w.u64(self.image_id.0);
        w.u32(share_len);
        w.bytes(&self.share);
        for s in self.bit_shares.shares() {
            w.fp61(*s);
        }
        w.u16(u16::try_from(self.tokens.len()).unwrap_or(u16::MAX));
        for t in &self.tokens {
            w.bytes(t);
        }
        Ok(Zeroizing::new(w.finish()))
    }

    /// Decodes [`StoredRecord::to_bytes`].
    ///
    /// # Errors
    /// Any [`WireError`] of a malformed record.
    pub fn from_bytes(bytes: &[u8]) -> Result<StoredRecord, WireError> {
        let mut r = Reader::new(bytes, MessageKind::StoredRecord)?;
        let image_id = ImageId(r.u64("image id")?);
        let len = r.u32("share length")? as usize;
        let share = r.slice("share", len)?.to_vec();
        let mut bits = [Fp61::ZERO; HASH_BITS];
        for b in &mut bits {
            *b = r.fp61("bit share")?;
        }
        let count = usize::from(r.u16("token count")?);
        if count > MAX_TOKENS {
            return Err(WireError::InvalidField {
                field: "tokens",
                reason: format!("{count} tokens, at most {MAX_TOKENS}"),
            });
        }
        if r.remaining() < 32 * count {
            return Err(WireError::Truncated {
                field: "tokens",
                need: 32 * count,
                got: r.remaining(),
            });
        }
        let tokens = (0..count)
            .map(|_| r.array::<32>("token"))
            .collect::<Result<_, _>>()?;
        r.finish()?;
        Ok(StoredRecord {
            image_id,
            share,
            bit_shares: HashBitShares::from_shares(bits),
            tokens,
        })
    }

    /// The tokens as one byte string, 32 bytes each (how a node's store keeps them).
    #[must_use]
    pub fn token_bytes(&self) -> Vec<u8> {
        self.tokens.iter().flatten().copied().collect()
    }
}

impl std::fmt::Debug for StoredRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredRecord")
            .field("image_id", &self.image_id)
            .field("share_bytes", &self.share.len())
            .field("bit_shares", &self.bit_shares)
            .field("tokens", &self.tokens.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> StoredRecord {
        let mut bits = [Fp61::ZERO; HASH_BITS];
        for (i, b) in bits.iter_mut().enumerate() {
            *b = Fp61::from_u64(i as u64 * 977);
        }
        StoredRecord {
            image_id: ImageId(0xfeed),
            share: vec![7; 45],
            bit_shares: HashBitShares::from_shares(bits),
            tokens: vec![[1; 32], [2; 32], [3; 32]],
        }
    }

    #[test]
    fn a_record_round_trips_at_its_encoded_length() {
        let r = sample();
        let bytes = r.to_bytes().unwrap();
        assert_eq!(bytes.len(), StoredRecord::encoded_len(45, 3));
        assert_eq!(StoredRecord::from_bytes(&bytes).unwrap(), r);
        for cut in 0..bytes.len() {
            assert!(StoredRecord::from_bytes(&bytes[..cut]).is_err());
        }
        assert!(format!("{r:?}").contains("redacted"));
    }

    #[test]
    fn too_many_tokens_and_huge_lengths_are_refused() {
        let mut r = sample();
        r.tokens = vec![[0; 32]; MAX_TOKENS + 1];
        assert!(r.to_bytes().is_err());
        let mut bytes = sample().to_bytes().unwrap().to_vec();
        bytes[10..14].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            StoredRecord::from_bytes(&bytes),
            Err(WireError::Truncated { .. })
        ));
    }

    proptest! {
        #[test]
        fn mutated_records_never_panic(at in any::<usize>(), byte in any::<u8>(), cut in any::<usize>()) {
            let mut bytes = sample().to_bytes().unwrap().to_vec();
            let i = at % bytes.len();
            bytes[i] = byte;
            bytes.truncate(cut % (bytes.len() + 1));
            if let Ok(r) = StoredRecord::from_bytes(&bytes) {
                prop_assert_eq!(r.to_bytes().unwrap().to_vec(), bytes);
            }
        }
    }
}
