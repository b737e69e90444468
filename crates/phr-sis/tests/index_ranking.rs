//! Property tests of the band index against a brute-force reference: ranking, candidates and
//! scan after random inserts and removes over collections with many band collisions, and the
//! serialisation's round trip and robustness.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;

use phr_sis::index::{IndexError, SearchStrategy};
use phr_sis::{BandLayout, ImageHash, ImageId, RankedCandidate, SearchParams, SearchableSISIndex};
use proptest::prelude::*;
use proptest::sample::Index;

const LAYOUTS: [(u32, u32); 5] = [(64, 1), (32, 2), (16, 4), (8, 8), (4, 16)];
const STRATEGIES: [SearchStrategy; 3] = [
    SearchStrategy::Auto,
    SearchStrategy::Postings,
    SearchStrategy::Scan,
];

/// A hash near one of a few pool hashes, so that bands (and whole hashes) collide often.
#[derive(Debug, Clone)]
struct HashSpec {
    base: Index,
    kind: u8,
    bits: (u32, u32),
    noise: (u64, u64),
}

impl HashSpec {
    fn resolve(&self, pool: &[u64]) -> u64 {
        let base = *self.base.get(pool);
        let flip = match self.kind {
            0 => 0,
            1 => 1 << self.bits.0,
            2 => (1 << self.bits.0) | (1 << self.bits.1),
            _ => self.noise.0 & self.noise.1 & (self.noise.0 >> 7),
        };
        base ^ flip
    }
}

fn hash_spec() -> impl Strategy<Value = HashSpec> {
    (
        any::<Index>(),
        0u8..4,
        (0u32..64, 0u32..64),
        (any::<u64>(), any::<u64>()),
    )
        .prop_map(|(base, kind, bits, noise)| HashSpec {
            base,
            kind,
            bits,
            noise,
        })
}

#[derive(Debug, Clone)]
enum Op {
    Insert(u64, HashSpec),
    Remove(u64),
    InsertMany(Vec<(u64, HashSpec)>),
}

fn op() -> impl Strategy<Value = Op> {
    // Ids from a small range, so that duplicates and removals of present ids are common.
    prop_oneof![
        5 => (0u64..48, hash_spec()).prop_map(|(id, h)| Op::Insert(id, h)),
        2 => (0u64..48).prop_map(Op::Remove),
        1 => prop::collection::vec((0u64..48, hash_spec()), 0..12).prop_map(Op::InsertMany),
    ]
}

#[derive(Debug, Clone)]
struct Query {
    hash: HashSpec,
    topk: usize,
    votes_choice: u32,
    max_hamming: u32,
}

fn query() -> impl Strategy<Value = Query> {
    (
        hash_spec(),
        0usize..25,
        any::<u32>(),
        prop_oneof![0u32..=16, 0u32..=70],
    )
        .prop_map(|(hash, topk, votes_choice, max_hamming)| Query {
            hash,
            topk,
            votes_choice,
            max_hamming,
        })
}

fn layout() -> impl Strategy<Value = BandLayout> {
    let layouts: Vec<BandLayout> = LAYOUTS
        .iter()
        .filter_map(|&(bands, bits)| BandLayout::new(bands, bits).ok())
        .collect();
    prop::sample::select(layouts)
}

/// Per-band comparison by explicit extraction, independent of the index's code.
fn reference_votes(layout: BandLayout, a: u64, b: u64) -> u32 {
    let w = layout.bits_per_band();
    let mask = (1u64 << w) - 1;
    (0..layout.bands())
        .filter(|i| {
            let shift = 64 - (i + 1) * w;
            (a >> shift) & mask == (b >> shift) & mask
        })
        .count() as u32
}

fn reference_rank(
    layout: BandLayout,
    model: &BTreeMap<u64, u64>,
    q: u64,
    p: &SearchParams,
) -> Vec<RankedCandidate> {
    let mut all: Vec<RankedCandidate> = model
        .iter()
        .map(|(&id, &h)| RankedCandidate {
            id: ImageId(id),
            distance: (h ^ q).count_ones(),
            band_votes: reference_votes(layout, h, q),
        })
        .filter(|c| c.band_votes >= p.min_band_votes && c.distance <= p.max_hamming)
        .collect();
    all.sort_by_key(|c| (c.distance, c.id));
    all.truncate(p.topk);
    all
}

fn reference_candidates(
    layout: BandLayout,
    model: &BTreeMap<u64, u64>,
    q: u64,
    min_votes: u32,
) -> Vec<(ImageId, u32)> {
    model
        .iter()
        .map(|(&id, &h)| (ImageId(id), reference_votes(layout, h, q)))
        .filter(|&(_, votes)| votes >= min_votes)
        .collect()
}

/// Applies `ops` to an index and to a map model, checking every outcome on the way.
fn build(
    layout: BandLayout,
    pool: &[u64],
    ops: &[Op],
) -> Result<(SearchableSISIndex, BTreeMap<u64, u64>), TestCaseError> {
    let mut index = SearchableSISIndex::with_layout(layout);
    let mut model = BTreeMap::new();
    for op in ops {
        match op {
            Op::Insert(id, spec) => {
                let h = spec.resolve(pool);
                let result = index.insert(ImageId(*id), ImageHash(h));
                if model.contains_key(id) {
                    prop_assert!(
                        matches!(result, Err(IndexError::DuplicateId(ImageId(d))) if d == *id)
                    );
                } else {
                    prop_assert!(result.is_ok());
                    model.insert(*id, h);
                }
            }
            Op::Remove(id) => {
                prop_assert_eq!(index.remove(ImageId(*id)).map(|h| h.0), model.remove(id));
            }
            Op::InsertMany(batch) => {
                let batch: Vec<(u64, u64)> = batch
                    .iter()
                    .map(|(id, spec)| (*id, spec.resolve(pool)))
                    .collect();
                let mut seen = std::collections::BTreeSet::new();
                let conflict = batch
                    .iter()
                    .find(|(id, _)| model.contains_key(id) || !seen.insert(*id))
                    .map(|&(id, _)| id);
                let result =
                    index.insert_many(batch.iter().map(|&(id, h)| (ImageId(id), ImageHash(h))));
                match conflict {
                    Some(expected) => prop_assert!(
                        matches!(result, Err(IndexError::DuplicateId(ImageId(d))) if d == expected),
                        "{result:?}, expected duplicate {expected}"
                    ),
                    None => {
                        prop_assert!(result.is_ok());
                        model.extend(batch);
                    }
                }
            }
        }
        prop_assert_eq!(index.len(), model.len());
    }
    for (&id, &h) in &model {
        prop_assert_eq!(index.get(ImageId(id)), Some(ImageHash(h)));
    }
    Ok((index, model))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn ranking_matches_brute_force(
        layout in layout(),
        pool in prop::collection::vec(any::<u64>(), 1..5),
        ops in prop::collection::vec(op(), 0..80),
        queries in prop::collection::vec(query(), 1..8),
    ) {
        let (index, model) = build(layout, &pool, &ops)?;
        for query in &queries {
            let q = query.hash.resolve(&pool);
            let params = SearchParams {
                topk: query.topk,
                min_band_votes: query.votes_choice % (layout.bands() + 2),
                max_hamming: query.max_hamming,
            };
            let expected = reference_rank(layout, &model, q, &params);
            prop_assert_eq!(&index.rank_candidates(ImageHash(q), &params), &expected);
            for strategy in STRATEGIES {
                prop_assert_eq!(
                    &index.rank_candidates_with(ImageHash(q), &params, strategy),
                    &expected,
                    "{:?}", strategy
                );
                prop_assert_eq!(
                    index.candidates_with(ImageHash(q), params.min_band_votes, strategy),
                    reference_candidates(layout, &model, q, params.min_band_votes)
                );
            }
            let all = SearchParams { min_band_votes: 0, ..params };
            prop_assert_eq!(
                index.scan(ImageHash(q), params.topk, params.max_hamming),
                reference_rank(layout, &model, q, &all)
            );
        }
    }

    #[test]
    fn ranking_matches_brute_force_beyond_one_compaction(
        layout in layout(),
        pool in prop::collection::vec(any::<u64>(), 1..4),
        batch in prop::collection::vec((0u64..100_000, hash_spec()), 300..1500),
        removals in prop::collection::vec(any::<Index>(), 0..200),
        queries in prop::collection::vec(query(), 1..6),
    ) {
        // Hundreds of hits per query, many at equal distances: the top-k collector compacts
        // and tightens its bound several times.
        let mut seen = std::collections::BTreeSet::new();
        let mut ops: Vec<Op> = vec![Op::InsertMany(
            batch.into_iter().filter(|(id, _)| seen.insert(*id)).collect(),
        )];
        let present: Vec<u64> = seen.into_iter().collect();
        ops.extend(removals.iter().map(|r| Op::Remove(*r.get(&present))));
        let (index, model) = build(layout, &pool, &ops)?;
        for query in &queries {
            let q = query.hash.resolve(&pool);
            for topk in [1, query.topk, 300] {
                let params = SearchParams {
                    topk,
                    min_band_votes: query.votes_choice % (layout.bands() + 2),
                    max_hamming: query.max_hamming,
                };
                let expected = reference_rank(layout, &model, q, &params);
                for strategy in STRATEGIES {
                    prop_assert_eq!(
                        &index.rank_candidates_with(ImageHash(q), &params, strategy),
                        &expected,
                        "{:?}", strategy
                    );
                }
                let all = SearchParams { min_band_votes: 0, ..params };
                prop_assert_eq!(
                    index.scan(ImageHash(q), topk, params.max_hamming),
                    reference_rank(layout, &model, q, &all)
                );
            }
        }
    }

    #[test]
    fn serialisation_round_trips(
        layout in layout(),
        pool in prop::collection::vec(any::<u64>(), 1..5),
        ops in prop::collection::vec(op(), 0..60),
    ) {
        let (index, model) = build(layout, &pool, &ops)?;
        let bytes = index.to_bytes();
        prop_assert_eq!(bytes.len(), 17 + 16 * model.len());
        let back = SearchableSISIndex::from_bytes(&bytes).unwrap();
        prop_assert_eq!(&back, &index);
        prop_assert_eq!(&back.to_bytes(), &bytes);
        // The encoding depends on the entries only, not on their history.
        let mut fresh = SearchableSISIndex::with_layout(layout);
        fresh.insert_many(model.iter().map(|(&id, &h)| (ImageId(id), ImageHash(h)))).unwrap();
        prop_assert_eq!(fresh.to_bytes(), bytes);
    }

    #[test]
    fn decoding_truncated_or_flipped_bytes_never_panics(
        layout in layout(),
        pool in prop::collection::vec(any::<u64>(), 1..5),
        ops in prop::collection::vec(op(), 0..30),
        flips in prop::collection::vec(any::<Index>(), 1..4),
        cut in any::<Index>(),
    ) {
        let (index, _) = build(layout, &pool, &ops)?;
        let bytes = index.to_bytes();
        let cut = cut.index(bytes.len());
        let truncated = SearchableSISIndex::from_bytes(&bytes[..cut]);
        prop_assert!(
            matches!(truncated, Err(IndexError::Truncated { .. })),
            "{:?}", truncated
        );
        let mut flipped = bytes;
        for flip in &flips {
            let bit = flip.index(flipped.len() * 8);
            flipped[bit / 8] ^= 1 << (bit % 8);
        }
        // Accepted input is canonical: it re-encodes to itself.
        if let Ok(decoded) = SearchableSISIndex::from_bytes(&flipped) {
            prop_assert_eq!(decoded.to_bytes(), flipped);
        }
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(
        header in prop::sample::select(vec![0usize, 6, 7, 9, 17]),
        bands in any::<u8>(),
        bits in any::<u8>(),
        count in prop_oneof![0u64..8, any::<u64>()],
        tail in prop::collection::vec(any::<u8>(), 0..160),
    ) {
        // Arbitrary bytes, and arbitrary bytes after a plausible header prefix.
        let mut bytes = b"PHRIDX".to_vec();
        bytes.push(1);
        bytes.extend([bands, bits]);
        bytes.extend(count.to_le_bytes());
        bytes.truncate(header);
        bytes.extend(tail);
        if let Ok(decoded) = SearchableSISIndex::from_bytes(&bytes) {
            prop_assert_eq!(decoded.to_bytes(), bytes);
        }
    }
}
