//! A node's search index over keyed band tokens: what a storage node keeps instead of hashes.
//!
//! The client turns each band of an image's pHash into a *token* (an OPRF output under the
//! nodes' joint key, computed without the nodes seeing the band) and sends the node one token
//! per band. [`TokenIndex`] maps each token to the images that carry it, so a query's tokens
//! find the stored images that share bands with the query — the candidates of
//! [`crate::SearchableSISIndex`], computed without a single band value: the token of band `i`
//! with value `v` is equal for two images exactly when both have `v` in band `i`, so
//! *votes* (matching tokens) equal band votes.
//!
//! # Semantics
//!
//! * [`TokenIndex::candidates`] returns the stored images with at least `min_band_votes`
//!   tokens in common with the query, with their vote counts, sorted by id — the same list
//!   as [`crate::SearchableSISIndex::candidates`] for the same hashes when tokens are one per
//!   band and distinct across bands. `min_band_votes == 0` returns every image.
//! * An image's tokens are a set: repeats are counted once. Query tokens likewise.
//! * Ids are unique: inserting a present id is [`TokenIndexError::DuplicateId`].
//!
//! # What a node learns
//!
//! Which stored images share a band value (equal tokens), and which images a query touches
//! (its access pattern): the documented leakage of `docs/design.md#search-tokens`. Not the
//! band values.
//!
//! # Binary format (version 1)
//!
//! `PHRTOK ‖ version (1) ‖ count (u64 LE) ‖ (id (u64 LE) ‖ token count (u16 LE) ‖ tokens
//! (32 bytes each, ascending))*`, images by id ascending. Canonical; decoding never panics.
#![deny(clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::ImageId;

/// A band token as the index stores it.
pub type Token = [u8; 32];

/// The magic bytes of a serialised token index.
pub const TOKEN_INDEX_MAGIC: [u8; 6] = *b"PHRTOK";

/// Errors of the token index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenIndexError {
    /// The id is already stored.
    #[error("image {0} is already in the token index")]
    DuplicateId(ImageId),
    /// More tokens for one image than the format holds (65535).
    #[error("{0} tokens for one image; at most 65535")]
    TooManyTokens(usize),
    /// The bytes are not a serialised token index.
    #[error("invalid token index encoding: {0}")]
    Format(String),
}

/// Token → image ids, and image id → its tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenIndex {
    postings: HashMap<Token, Vec<ImageId>>,
    images: BTreeMap<ImageId, Vec<Token>>,
}

impl TokenIndex {
    /// An empty index.
    #[must_use]
    pub fn new() -> TokenIndex {
        TokenIndex::default()
    }

    /// Stored images.
    #[must_use]
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// Whether nothing is stored.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// The stored images' ids, in order.
    pub fn ids(&self) -> impl Iterator<Item = ImageId> + '_ {
        self.images.keys().copied()
    }

    /// Whether `id` is stored.
    #[must_use]
    pub fn contains(&self, id: ImageId) -> bool {
        self.images.contains_key(&id)
    }

    /// Adds an image with its tokens.
    ///
    /// # Errors
    /// [`TokenIndexError::DuplicateId`] if `id` is present (nothing changes),
    /// [`TokenIndexError::TooManyTokens`] for more than 65535 distinct tokens.
    pub fn insert(&mut self, id: ImageId, tokens: &[Token]) -> Result<(), TokenIndexError> {
        if self.images.contains_key(&id) {
            return Err(TokenIndexError::DuplicateId(id));
        }
        let set: BTreeSet<Token> = tokens.iter().copied().collect();
        if set.len() > usize::from(u16::MAX) {
            return Err(TokenIndexError::TooManyTokens(set.len()));
        }
        for t in &set {
            self.postings.entry(*t).or_default().push(id);
        }
        self.images.insert(id, set.into_iter().collect());
        Ok(())
    }

    /// Removes an image; returns its tokens if it was stored.
    pub fn remove(&mut self, id: ImageId) -> Option<Vec<Token>> {
        let tokens = self.images.remove(&id)?;
        for t in &tokens {
            if let Some(ids) = self.postings.get_mut(t) {
                ids.retain(|i| *i != id);
                if ids.is_empty() {
                    self.postings.remove(t);
                }
            }
        }
        Some(tokens)
    }

    /// The images with at least `min_band_votes` tokens in common with `query`, with their
    /// votes, sorted by id.
    #[must_use]
    pub fn candidates(&self, query: &[Token], min_band_votes: u32) -> Vec<(ImageId, u32)> {
        let mut votes: BTreeMap<ImageId, u32> = BTreeMap::new();
        let distinct: BTreeSet<&Token> = query.iter().collect();
        for t in distinct {
            for id in self.postings.get(t).into_iter().flatten() {
                *votes.entry(*id).or_default() += 1;
            }
        }
        if min_band_votes == 0 {
            return self
                .images
                .keys()
                .map(|id| (*id, votes.get(id).copied().unwrap_or(0)))
                .collect();
        }
        votes
            .into_iter()
            .filter(|(_, v)| *v >= min_band_votes)
            .collect()
    }

    /// [`TokenIndex::candidates`] with at least one vote (`min_band_votes` 0 counts as 1),
    /// bounded by `limit` and the query, never by the size of the index: at most `limit + 1`
    /// entries come back (more than `limit` means "too many"), and `None` means the query is
    /// too broad to answer within the bound.
    ///
    /// An image with `v` of the query's `d` distinct tokens holds at least one of any
    /// `d − v + 1` of them, so only the `d − v + 1` shortest posting lists are read, at most
    /// `limit + 1` postings each; each image found there has its votes counted from its own
    /// tokens. A token shared by very many images (a common band value, or many records
    /// stored to make it so) costs a query nothing unless `d − v + 1` of its tokens are such.
    /// A query asking more votes than it has distinct tokens finds nothing and reads nothing.
    #[must_use]
    pub fn candidates_at_most(
        &self,
        query: &[Token],
        min_band_votes: u32,
        limit: usize,
    ) -> Option<Vec<(ImageId, u32)>> {
        let wanted: BTreeSet<&Token> = query.iter().collect();
        let d = wanted.len();
        let v = usize::try_from(min_band_votes.max(1)).unwrap_or(usize::MAX);
        if v > d {
            return Some(Vec::new());
        }
        if v == 1 {
            // Every posting is a candidate: count votes straight from the postings, stopping
            // once more than `limit` images are found.
            let mut votes: BTreeMap<ImageId, u32> = BTreeMap::new();
            for t in &wanted {
                for id in self.postings.get(*t).into_iter().flatten() {
                    *votes.entry(*id).or_default() += 1;
                    if votes.len() > limit {
                        return Some(votes.into_iter().collect());
                    }
                }
            }
            return Some(votes.into_iter().collect());
        }
        let mut by_length: Vec<&Token> = wanted.iter().copied().collect();
        by_length.sort_by_key(|t| self.postings.get(*t).map_or(0, Vec::len));
        let scan = by_length.get(..d - v + 1).unwrap_or(&by_length);
        let budget = limit.saturating_add(1).saturating_mul(scan.len());
        if scan
            .iter()
            .map(|t| self.postings.get(*t).map_or(0, Vec::len))
            .sum::<usize>()
            > budget
        {
            return None;
        }
        let found: BTreeSet<ImageId> = scan
            .iter()
            .flat_map(|t| self.postings.get(*t).into_iter().flatten())
            .copied()
            .collect();
        Some(
            found
                .into_iter()
                .map(|id| (id, self.votes(id, &wanted)))
                .filter(|(_, votes)| usize::try_from(*votes).is_ok_and(|n| n >= v))
                .take(limit.saturating_add(1))
                .collect(),
        )
    }

    /// How many of `wanted` image `id` holds.
    fn votes(&self, id: ImageId, wanted: &BTreeSet<&Token>) -> u32 {
        self.images.get(&id).map_or(0, |tokens| {
            let own: BTreeSet<&Token> = tokens.iter().collect();
            u32::try_from(own.iter().filter(|t| wanted.contains(*t)).count()).unwrap_or(u32::MAX)
        })
    }

    /// The canonical encoding (module doc).
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(15 + self.images.len() * (10 + 8 * 32));
        out.extend_from_slice(&TOKEN_INDEX_MAGIC);
        out.push(1);
        out.extend_from_slice(&(self.images.len() as u64).to_le_bytes());
        for (id, tokens) in &self.images {
            out.extend_from_slice(&id.0.to_le_bytes());
            out.extend_from_slice(
                &u16::try_from(tokens.len())
                    .unwrap_or(u16::MAX)
                    .to_le_bytes(),
            );
            for t in tokens {
                out.extend_from_slice(t);
            }
        }
        out
    }

    /// Decodes [`TokenIndex::to_bytes`]' output.
    ///
    /// # Errors
    /// [`TokenIndexError::Format`] naming the problem: magic, version, truncation, ids or
    /// tokens out of order or repeated, trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<TokenIndex, TokenIndexError> {
        let bad = |m: &str| TokenIndexError::Format(m.to_owned());
        let rest = bytes
            .strip_prefix(TOKEN_INDEX_MAGIC.as_slice())
            .ok_or_else(|| bad("wrong magic"))?;
        let (version, rest) = rest.split_first().ok_or_else(|| bad("truncated header"))?;
        if *version != 1 {
            return Err(bad(&format!("unknown version {version}")));
        }
        let (count, mut rest) = rest
            .split_first_chunk::<8>()
            .ok_or_else(|| bad("truncated header"))?;
        let count = u64::from_le_bytes(*count);
        let mut index = TokenIndex::new();
        let mut last: Option<ImageId> = None;
        for _ in 0..count {
            let (id, r) = rest
                .split_first_chunk::<8>()
                .ok_or_else(|| bad("truncated entry"))?;
            let (n, r) = r
                .split_first_chunk::<2>()
                .ok_or_else(|| bad("truncated entry"))?;
            let id = ImageId(u64::from_le_bytes(*id));
            if last.is_some_and(|l| l >= id) {
                return Err(bad("ids out of order or repeated"));
            }
            last = Some(id);
            let n = usize::from(u16::from_le_bytes(*n));
            let (toks, r) = r
                .split_at_checked(n * 32)
                .ok_or_else(|| bad("truncated tokens"))?;
            let tokens: Vec<Token> = toks
                .chunks_exact(32)
                .filter_map(|c| Token::try_from(c).ok())
                .collect();
            if tokens.windows(2).any(|w| matches!(w, [a, b] if a >= b)) {
                return Err(bad("tokens out of order or repeated"));
            }
            index.insert(id, &tokens)?;
            rest = r;
        }
        if !rest.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BandLayout, ImageHash, SearchableSISIndex};
    use proptest::prelude::*;
    use sha2::{Digest, Sha256};

    proptest! {
        #[test]
        fn the_bounded_lookup_equals_the_unbounded_one_within_its_bound(
            stored in proptest::collection::vec(proptest::collection::vec(0u8..6, 1..5), 0..60),
            query in proptest::collection::vec(0u8..6, 1..6),
            votes in 0u32..5,
        ) {
            let token = |b: u8| [b; 32];
            let mut index = TokenIndex::new();
            for (i, tokens) in stored.iter().enumerate() {
                let tokens: Vec<Token> = tokens.iter().map(|b| token(*b)).collect();
                index.insert(ImageId(i as u64), &tokens).unwrap();
            }
            let query: Vec<Token> = query.iter().map(|b| token(*b)).collect();
            let all = index.candidates(&query, votes.max(1));
            prop_assert_eq!(index.candidates_at_most(&query, votes, 1_000), Some(all));
        }
    }

    #[test]
    fn a_lookup_is_bounded_by_its_limit_not_by_the_index() {
        let common = [1u8; 32];
        let mut index = TokenIndex::new();
        for i in 0..1_000u64 {
            let mut own = [2u8; 32];
            own[..8].copy_from_slice(&i.to_be_bytes());
            index.insert(ImageId(i), &[common, own]).unwrap();
        }
        // One vote: stops once more than the limit qualify.
        let got = index.candidates_at_most(&[common], 1, 10).unwrap();
        assert_eq!(got.len(), 11);
        // More votes than distinct tokens: nothing, and nothing read.
        assert_eq!(index.candidates_at_most(&[common], 2, 10), Some(Vec::new()));
        // Two votes over a token every image has and one that none has: only the short list
        // is read, and nothing qualifies.
        assert_eq!(
            index.candidates_at_most(&[common, [9; 32]], 2, 10),
            Some(Vec::new())
        );
        // Two votes over two tokens every image has: too broad to answer within the bound.
        let mut index2 = TokenIndex::new();
        for i in 0..1_000u64 {
            index2.insert(ImageId(i), &[common, [3; 32]]).unwrap();
        }
        assert_eq!(index2.candidates_at_most(&[common, [3; 32]], 2, 10), None);
        assert_eq!(
            index2.candidates_at_most(&[common, [3; 32]], 2, 5_000),
            Some(index2.candidates(&[common, [3; 32]], 2))
        );
        // Within the bound, the same answer as the unbounded lookup.
        let all = index.candidates(&[common], 1);
        assert_eq!(index.candidates_at_most(&[common], 1, 5_000), Some(all));
    }

    /// A stand-in for the OPRF: any injective function of (band index, band value).
    fn tokens(layout: BandLayout, h: ImageHash) -> Vec<Token> {
        (0..8)
            .filter_map(|i| layout.band(h, i).map(|v| (i, v)))
            .map(|(i, v)| {
                let mut t = [0u8; 32];
                t.copy_from_slice(
                    &Sha256::new()
                        .chain_update(i.to_be_bytes())
                        .chain_update(v.to_be_bytes())
                        .finalize(),
                );
                t
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn candidates_equal_the_plaintext_index(
            hashes in prop::collection::vec(any::<u64>(), 0..60),
            flips in prop::collection::vec(any::<u64>(), 60),
            q in any::<u64>(),
            m in 0u32..10,
        ) {
            let layout = BandLayout::default();
            let mut plain = SearchableSISIndex::new();
            let mut tok = TokenIndex::new();
            // Near duplicates of the query among random hashes, so that votes vary.
            for (i, (h, f)) in hashes.iter().zip(&flips).enumerate() {
                let h = if i % 3 == 0 { q ^ (f & f.rotate_left(7) & f.rotate_left(19)) } else { *h };
                let id = ImageId(i as u64 * 7 + 1);
                plain.insert(id, ImageHash(h)).unwrap();
                tok.insert(id, &tokens(layout, ImageHash(h))).unwrap();
            }
            let query = tokens(layout, ImageHash(q));
            prop_assert_eq!(tok.candidates(&query, m), plain.candidates(ImageHash(q), m));
            let again = TokenIndex::from_bytes(&tok.to_bytes()).unwrap();
            prop_assert_eq!(&again, &tok);
        }

        #[test]
        fn from_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let mut b = TOKEN_INDEX_MAGIC.to_vec();
            b.push(1);
            b.extend_from_slice(&bytes);
            let _ = TokenIndex::from_bytes(&b);
            let _ = TokenIndex::from_bytes(&bytes);
        }
    }

    #[test]
    fn duplicates_and_removal() {
        let mut idx = TokenIndex::new();
        idx.insert(ImageId(1), &[[1; 32], [2; 32], [2; 32]])
            .unwrap();
        idx.insert(ImageId(2), &[[2; 32]]).unwrap();
        assert_eq!(
            idx.insert(ImageId(1), &[]),
            Err(TokenIndexError::DuplicateId(ImageId(1)))
        );
        assert_eq!(
            idx.candidates(&[[2; 32], [1; 32], [1; 32]], 1),
            vec![(ImageId(1), 2), (ImageId(2), 1)]
        );
        assert_eq!(idx.remove(ImageId(1)), Some(vec![[1; 32], [2; 32]]));
        assert_eq!(idx.candidates(&[[1; 32]], 1), vec![]);
        assert_eq!(idx.candidates(&[[1; 32]], 0), vec![(ImageId(2), 0)]);
        let mut enc = idx.to_bytes();
        enc.push(0);
        assert!(TokenIndex::from_bytes(&enc).is_err());
    }
}
