//! The plaintext band index: the reference search that a secure (MPC) ranking must reproduce.
//!
//! [`SearchableSISIndex`] holds one 64-bit perceptual hash ([`ImageHash`]) per image
//! ([`ImageId`]) and answers "which stored images look like this one?" in plaintext. It is the
//! baseline whose results a secure ranking over secret-shared hashes has to match exactly, so
//! everything a result depends on is specified here and nothing depends on insertion order,
//! storage order, the search strategy or the CPU.
//!
//! # Bands
//!
//! A [`BandLayout`] cuts the 64-bit hash into `bands` bands of `bits_per_band` bits each, with
//! `bands * bits_per_band == 64` and `bits_per_band` one of 1, 2, 4, 8, 16 (so `bands` is one
//! of 64, 32, 16, 8, 4); the default is 8 bands of 8 bits. Band 0 holds the most significant
//! bits (bit 63 is the first hash bit): with `w = bits_per_band`,
//! `band(h, i) = (h >> (64 - (i + 1) * w)) & (2^w - 1)`.
//! The *band votes* of two hashes are the number of bands in which they are equal
//! ([`BandLayout::band_votes`]); the *distance* is their Hamming distance (popcount of the xor).
//!
//! # Search semantics
//!
//! For a query `q` and [`SearchParams`] `{ topk, min_band_votes, max_hamming }`:
//!
//! * the **candidates** are the stored images `e` with `band_votes(q, e) >= min_band_votes`.
//!   `min_band_votes == 0` makes every stored image a candidate; `min_band_votes > bands`
//!   makes none a candidate. [`SearchableSISIndex::candidates`] returns them with their votes,
//!   sorted by id ascending.
//! * [`SearchableSISIndex::rank_candidates`] keeps the candidates with
//!   `distance(q, e) <= max_hamming` (any `max_hamming >= 64` filters nothing, 0 keeps exact
//!   matches only), sorts them by `(distance ascending, id ascending)` and returns the first
//!   `topk` ([`RankedCandidate`] carries id, distance and band votes). Ids are unique, so this
//!   order is total and the result is unique: images with equal hashes under different ids are
//!   ranked by id. `topk == 0`, an empty index or no candidate gives an empty result.
//! * [`SearchableSISIndex::scan`] is the exhaustive Hamming scan: exactly `rank_candidates`
//!   with `min_band_votes = 0`.
//!
//! # Guarantees
//!
//! * Ids are unique: inserting an id that is present is an error ([`IndexError::DuplicateId`]),
//!   never an overwrite, and [`SearchableSISIndex::insert_many`] is all-or-nothing.
//! * Queries take `&self`, hold no interior state and are safe to run from many threads.
//! * Results do not depend on the strategy ([`SearchStrategy`]): walking band postings and
//!   scanning every hash return identical vectors (the band votes of a hash are computed from
//!   the hash itself, so the postings only decide which hashes are looked at). Nor do they
//!   depend on the CPU: an AVX2 copy of the hot loops, chosen at run time (unless
//!   [`crate::kernels`] says `portable`), computes the same.
//! * [`SearchableSISIndex::from_bytes`] never panics, whatever the input; it accepts exactly
//!   the byte strings that [`SearchableSISIndex::to_bytes`] produces.
//!
//! # How it is stored and searched
//!
//! Entries live in two dense slot arrays (ids, hashes). An open-addressing table of `u32`
//! slots (linear probing, load at most 3/4) maps ids to slots. For layouts of 8 or 16 bits per
//! band, each band has one bucket per band value holding the slots of the images with that
//! value (the postings); removal swap-removes the slot and patches the moved entry.
//! Narrower bands are not worth postings (every bucket holds at least 1/16 of the collection,
//! so walking them costs more than scanning), and those layouts are always answered by a scan.
//!
//! A query with `min_band_votes = m >= 1` over postings walks the `bands - m + 1` smallest of
//! the query's buckets: by the pigeonhole principle every image with `m` equal bands is in at
//! least one of them. An image found in an earlier walked bucket is skipped (its equal bands
//! are computed from its hash), so each is considered once. When those buckets together hold
//! more than about a twelfth of the collection, the sequential scan is cheaper and is used
//! instead. The scan reads the contiguous hash array in chunks, skipping each chunk whose
//! smallest distance exceeds the current k-th best distance.
//!
//! Memory per entry: 16 bytes for id and hash, 4 per band for postings (none below 8 bits per
//! band) and 4/load for the id table. A bulk load ([`SearchableSISIndex::insert_many`])
//! reserves exactly (54 bytes per entry for the default layout); one-by-one insertion grows
//! vectors by 1/16 and the table from load 3/4 to 1/2 (at most about 59); removal shrinks a
//! vector with more than 1/8 unused and the table below load 3/8 (at most about 65). Plus
//! `bands * 2^bits_per_band` bucket headers of 24 bytes (49 KiB for 8 × 8, 6 MiB for 4 × 16),
//! allocated at the first insertion and freed when the index becomes empty.
//!
//! # Binary format (version 1)
//!
//! All integers little-endian; the encoding of an index is unique (canonical).
//!
//! | bytes | content |
//! | --- | --- |
//! | 6 | magic `PHRIDX` |
//! | 1 | format version, 1 |
//! | 1 | `bands` |
//! | 1 | `bits_per_band` |
//! | 8 | `count`, the number of entries (u64) |
//! | 16 × `count` | entries sorted by id, strictly ascending: id (u64), hash (u64) |
//!
//! The length must be exactly `17 + 16 * count`. Decoding reports a typed [`IndexError`] for a
//! wrong magic, an unknown version, an invalid layout, a short input, trailing bytes, a
//! repeated id and ids out of order.
#![deny(clippy::indexing_slicing)]

use std::fmt;

use crate::{ImageHash, ImageId};

/// The magic bytes that start every serialised index.
pub const FORMAT_MAGIC: [u8; 6] = *b"PHRIDX";

/// The serialisation format version that [`SearchableSISIndex::to_bytes`] writes and
/// [`SearchableSISIndex::from_bytes`] reads.
pub const FORMAT_VERSION: u8 = 1;

/// The most entries an index holds (slots are `u32`, and one value marks an empty table cell).
pub const MAX_ENTRIES: usize = u32::MAX as usize;

/// Bytes before the first entry: magic, version, bands, bits per band, count.
const HEADER_LEN: usize = FORMAT_MAGIC.len() + 1 + 1 + 1 + 8;

/// Bytes per serialised entry: id and hash.
const ENTRY_LEN: usize = 16;

/// An id table cell that holds no slot.
const EMPTY: u32 = u32::MAX;

/// A posting walk is used only while it visits fewer than `len / POSTING_COST` slots: one
/// random access into the hash array costs about as much as scanning this many hashes.
const POSTING_COST: usize = 12;

/// Hashes per scan chunk (the unit that is skipped when it cannot beat the current bound).
const SCAN_CHUNK: usize = 128;

/// What went wrong building, changing or decoding an index.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// The id is already in the index, or appears twice in one batch or encoding.
    #[error("image id {0} is already in the index (ids are unique; remove it first to replace it)")]
    DuplicateId(ImageId),
    /// The layout does not cut 64 bits into equal bands of 1, 2, 4, 8 or 16 bits.
    #[error(
        "invalid band layout {bands} x {bits_per_band}: bits_per_band must be 1, 2, 4, 8 or 16 \
         and bands x bits_per_band must be 64"
    )]
    InvalidLayout {
        /// The requested number of bands.
        bands: u32,
        /// The requested bits per band.
        bits_per_band: u32,
    },
    /// The index already holds [`MAX_ENTRIES`] entries, or an insertion would exceed that.
    #[error("the index is full: it holds at most {max} images")]
    Full {
        /// The limit, [`MAX_ENTRIES`].
        max: usize,
    },
    /// The bytes do not start with [`FORMAT_MAGIC`].
    #[error("not a serialised index: the bytes do not start with the magic \"PHRIDX\"")]
    BadMagic,
    /// The format version is not [`FORMAT_VERSION`].
    #[error("unsupported index format version {0} (this build reads version {FORMAT_VERSION})")]
    UnsupportedVersion(u8),
    /// The bytes end before the header or the announced entries are complete.
    #[error("serialised index is truncated: {needed} bytes needed, {available} present")]
    Truncated {
        /// Bytes the header and the announced entries need (saturated at `u64::MAX`).
        needed: u64,
        /// Bytes present.
        available: u64,
    },
    /// Bytes follow the last announced entry.
    #[error("serialised index has {extra} trailing bytes after its {count} entries")]
    TrailingBytes {
        /// The number of bytes after the last entry.
        extra: u64,
        /// The number of entries the header announced.
        count: u64,
    },
    /// An encoded entry's id is smaller than the id before it (the format is sorted by id).
    #[error(
        "serialised index is not canonical: entry {position} has id {id}, smaller than the \
         id before it (entries must be sorted by id)"
    )]
    UnsortedIds {
        /// The entry's position (0-based).
        position: u64,
        /// The entry's id.
        id: ImageId,
    },
}

/// How a 64-bit hash is cut into bands: `bands` bands of `bits_per_band` bits, band 0 the
/// most significant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BandLayout {
    bands: u32,
    bits_per_band: u32,
}

impl BandLayout {
    /// The layout of `bands` bands of `bits_per_band` bits; fails with
    /// [`IndexError::InvalidLayout`] unless `bits_per_band` is 1, 2, 4, 8 or 16 and
    /// `bands * bits_per_band == 64`.
    pub fn new(bands: u32, bits_per_band: u32) -> Result<Self, IndexError> {
        if matches!(bits_per_band, 1 | 2 | 4 | 8 | 16)
            && bands.checked_mul(bits_per_band) == Some(64)
        {
            Ok(Self {
                bands,
                bits_per_band,
            })
        } else {
            Err(IndexError::InvalidLayout {
                bands,
                bits_per_band,
            })
        }
    }

    /// The number of bands (64, 32, 16, 8 or 4).
    pub const fn bands(self) -> u32 {
        self.bands
    }

    /// The width of one band in bits (1, 2, 4, 8 or 16).
    pub const fn bits_per_band(self) -> u32 {
        self.bits_per_band
    }

    /// Whether an index with this layout keeps band postings (8 or 16 bits per band); the
    /// others answer every query by scanning.
    pub const fn has_postings(self) -> bool {
        self.bits_per_band >= 8
    }

    /// The value of band `band` of `hash`, `(hash >> (64 - (band + 1) * w)) & (2^w - 1)` with
    /// `w = bits_per_band`, or `None` when `band >= bands`.
    pub fn band(self, hash: ImageHash, band: u32) -> Option<u16> {
        (band < self.bands).then(|| self.band_value(hash.0, band) as u16)
    }

    /// The number of bands in which `a` and `b` are equal (0 to `bands`).
    pub fn band_votes(self, a: ImageHash, b: ImageHash) -> u32 {
        Lanes::new(self).equal(a.0 ^ b.0).count_ones()
    }

    /// Band values per band, `2^bits_per_band`.
    const fn buckets_per_band(self) -> usize {
        1 << self.bits_per_band
    }

    /// The band value as a bucket offset (`band < bands`).
    #[inline(always)]
    fn band_value(self, hash: u64, band: u32) -> usize {
        let shift = 64 - (band + 1) * self.bits_per_band;
        ((hash >> shift) & ((1u64 << self.bits_per_band) - 1)) as usize
    }

    /// The bucket (in the band-major bucket array) that holds `hash` in band `band`.
    #[inline(always)]
    fn bucket_index(self, hash: u64, band: u32) -> usize {
        band as usize * self.buckets_per_band() + self.band_value(hash, band)
    }

    /// The most significant bit of band `band`.
    const fn band_bit(self, band: u32) -> u64 {
        1 << (63 - band * self.bits_per_band)
    }
}

impl Default for BandLayout {
    /// 8 bands of 8 bits.
    fn default() -> Self {
        Self {
            bands: 8,
            bits_per_band: 8,
        }
    }
}

/// Branch-free per-band equality: which bands of `x = a ^ b` are zero.
#[derive(Debug, Clone, Copy)]
struct Lanes {
    /// The most significant bit of every band.
    high: u64,
    /// Every other bit.
    low: u64,
}

impl Lanes {
    fn new(layout: BandLayout) -> Self {
        let high = (0..layout.bands).fold(0, |acc, band| acc | layout.band_bit(band));
        Self { high, low: !high }
    }

    /// The most significant bit of every band in which `x` is zero. Per band, adding the
    /// all-ones low part to the low bits carries into the band's top bit exactly when a low
    /// bit is set, and never out of the band.
    #[inline(always)]
    fn equal(self, x: u64) -> u64 {
        !(((x & self.low).wrapping_add(self.low)) | x) & self.high
    }
}

/// How many results and how close: the parameters of [`SearchableSISIndex::rank_candidates`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchParams {
    /// The most results to return; 0 returns none.
    pub topk: usize,
    /// The fewest equal bands a candidate needs; 0 admits every image, more than the layout's
    /// bands admits none.
    pub min_band_votes: u32,
    /// The largest Hamming distance kept; 64 (or more) keeps all, 0 keeps exact matches.
    pub max_hamming: u32,
}

impl Default for SearchParams {
    /// `topk` 10, `min_band_votes` 1, `max_hamming` 64.
    fn default() -> Self {
        Self {
            topk: 10,
            min_band_votes: 1,
            max_hamming: 64,
        }
    }
}

/// One ranked result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RankedCandidate {
    /// The image.
    pub id: ImageId,
    /// Hamming distance between its hash and the query.
    pub distance: u32,
    /// Number of bands in which its hash equals the query.
    pub band_votes: u32,
}

/// Which way a query finds its candidates; every strategy returns the same result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SearchStrategy {
    /// Walk postings when they visit few enough slots, otherwise scan.
    #[default]
    Auto,
    /// Walk postings whenever possible (`min_band_votes >= 1` and a layout with postings);
    /// otherwise scan.
    Postings,
    /// Scan every hash.
    Scan,
}

/// The id → slot table: open addressing with linear probing over `u32` slots, the probe
/// comparing `ids[slot]`. Its load stays at most 3/4, so a probe always meets an empty cell.
#[derive(Debug, Clone, Default)]
struct SlotTable {
    cells: Vec<u32>,
}

impl SlotTable {
    /// The cell where a probe for `id` starts.
    #[inline(always)]
    fn home(&self, id: ImageId) -> usize {
        ((u128::from(mix64(id.0)) * self.cells.len() as u128) >> 64) as usize
    }

    #[inline(always)]
    fn next(&self, cell: usize) -> usize {
        if cell + 1 == self.cells.len() {
            0
        } else {
            cell + 1
        }
    }

    /// The cell holding `id` and its slot, if present.
    fn find(&self, ids: &[ImageId], id: ImageId) -> Option<(usize, u32)> {
        if self.cells.is_empty() {
            return None;
        }
        let mut cell = self.home(id);
        for _ in 0..self.cells.len() {
            let slot = *self.cells.get(cell)?;
            if slot == EMPTY {
                return None;
            }
            if ids.get(slot as usize) == Some(&id) {
                return Some((cell, slot));
            }
            cell = self.next(cell);
        }
        None
    }

    /// Stores `slot` for `id`, which must be absent, in the first empty cell of its probe.
    fn place(&mut self, id: ImageId, slot: u32) {
        if self.cells.is_empty() {
            return;
        }
        let mut cell = self.home(id);
        for _ in 0..self.cells.len() {
            if let Some(c) = self.cells.get_mut(cell)
                && *c == EMPTY
            {
                *c = slot;
                return;
            }
            cell = self.next(cell);
        }
    }

    /// Whether holding `len` entries needs a larger table (load above 3/4).
    fn needs_growth(&self, len: usize) -> bool {
        len.saturating_mul(4) > self.cells.len().saturating_mul(3)
    }

    /// Rebuilds with `capacity` cells from the slot arrays.
    fn rebuild(&mut self, ids: &[ImageId], capacity: usize) {
        self.cells = vec![EMPTY; capacity.max(16)];
        for (slot, &id) in ids.iter().enumerate() {
            self.place(id, slot as u32);
        }
    }

    /// Points the cell at `cell` to `slot`.
    fn set(&mut self, cell: usize, slot: u32) {
        if let Some(c) = self.cells.get_mut(cell) {
            *c = slot;
        }
    }

    /// Empties `cell` and shifts later entries of the probe run back (no tombstones).
    fn delete(&mut self, ids: &[ImageId], mut hole: usize) {
        self.set(hole, EMPTY);
        let mut cell = hole;
        for _ in 0..self.cells.len() {
            cell = self.next(cell);
            let slot = match self.cells.get(cell) {
                Some(&slot) if slot != EMPTY => slot,
                _ => return,
            };
            let Some(&id) = ids.get(slot as usize) else {
                return;
            };
            let home = self.home(id);
            // The entry may move into the hole unless its home lies cyclically in (hole, cell].
            let stays = if hole <= cell {
                hole < home && home <= cell
            } else {
                hole < home || home <= cell
            };
            if !stays {
                self.set(hole, slot);
                self.set(cell, EMPTY);
                hole = cell;
            }
        }
    }
}

/// A bijective 64-bit mixer (the SplitMix64 finaliser).
#[inline(always)]
const fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Appends, growing the capacity by 1/16 (at least 4 elements) instead of doubling.
#[inline]
fn push_tight<T>(v: &mut Vec<T>, value: T) {
    if v.len() == v.capacity() {
        v.reserve_exact((v.len() / 16).max(4));
    }
    v.push(value);
}

/// Gives back capacity once more than 1/8 (plus 4 elements) is unused, keeping 1/16, and all of
/// it when the vector is empty.
fn shrink_slack<T>(v: &mut Vec<T>) {
    let len = v.len();
    if len == 0 {
        *v = Vec::new();
    } else if v.capacity() > len + len / 8 + 4 {
        v.shrink_to(len + len / 16);
    }
}

/// One accepted hit while searching.
#[derive(Debug, Clone, Copy)]
struct Hit {
    distance: u32,
    votes: u32,
    id: ImageId,
}

impl Hit {
    fn key(&self) -> (u32, ImageId) {
        (self.distance, self.id)
    }
}

/// Collects the `k` best hits by `(distance, id)`; `bound` is a distance no better hit can
/// exceed (`max_hamming`, then the current k-th best distance).
#[derive(Debug)]
struct TopK {
    k: usize,
    bound: u32,
    compact_at: usize,
    hits: Vec<Hit>,
}

impl TopK {
    fn new(k: usize, max_hamming: u32) -> Self {
        Self {
            k,
            bound: max_hamming.min(64),
            compact_at: k.saturating_mul(2).max(256),
            hits: Vec::new(),
        }
    }

    /// Keeps everything (for `candidates`).
    fn unbounded() -> Self {
        Self::new(usize::MAX, 64)
    }

    #[inline(always)]
    fn offer(&mut self, distance: u32, votes: u32, id: ImageId) {
        if distance <= self.bound {
            self.hits.push(Hit {
                distance,
                votes,
                id,
            });
            if self.hits.len() >= self.compact_at {
                self.compact();
            }
        }
    }

    /// Keeps the k best and lowers the bound to the k-th best distance.
    #[inline(never)]
    fn compact(&mut self) {
        if self.k == 0 || self.hits.len() <= self.k {
            return;
        }
        self.hits.select_nth_unstable_by_key(self.k - 1, Hit::key);
        self.hits.truncate(self.k);
        if let Some(kth) = self.hits.last() {
            self.bound = kth.distance;
        }
    }

    fn finish(mut self) -> Vec<Hit> {
        self.hits.sort_unstable_by_key(Hit::key);
        self.hits.truncate(self.k);
        self.hits
    }
}

/// What one search visits.
#[derive(Debug, Clone, Copy)]
struct Job<'a> {
    query: u64,
    min_votes: u32,
    lanes: Lanes,
    hashes: &'a [u64],
    ids: &'a [ImageId],
    /// `None`: scan every hash. `Some`: walk these buckets, each with its band's top bit.
    postings: Option<&'a [(&'a [u32], u64)]>,
}

/// Which copy of the hot loops runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    /// Plain Rust for the build's baseline target.
    Portable,
    /// The same code compiled with AVX2 and POPCNT (used only when the CPU has both and
    /// [`crate::kernels`] allows SIMD).
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Kernel {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if crate::kernels::avx2_popcnt() {
            return Kernel::Avx2;
        }
        Kernel::Portable
    }

    fn run(self, job: Job<'_>, top: &mut TopK) {
        match self {
            Kernel::Portable => run_portable(job, top),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => {
                if crate::kernels::cpu::avx2_popcnt() {
                    #[allow(unsafe_code)]
                    // SAFETY: `run_avx2` is safe Rust whose only requirement is that the CPU
                    // supports its target features, AVX2 and POPCNT, checked just above.
                    unsafe {
                        run_avx2(job, top);
                    }
                } else {
                    run_portable(job, top);
                }
            }
        }
    }
}

fn run_portable(job: Job<'_>, top: &mut TopK) {
    run_inline(job, top);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt")]
fn run_avx2(job: Job<'_>, top: &mut TopK) {
    run_inline(job, top);
}

#[inline(always)]
fn run_inline(job: Job<'_>, top: &mut TopK) {
    match job.postings {
        None => scan_kernel(job, top),
        Some(lists) => postings_kernel(job, lists, top),
    }
}

/// Offers every hash with enough votes, chunk by chunk, skipping chunks whose best distance
/// exceeds the bound.
#[inline(always)]
fn scan_kernel(job: Job<'_>, top: &mut TopK) {
    let q = job.query;
    for (chunk, chunk_ids) in job
        .hashes
        .chunks(SCAN_CHUNK)
        .zip(job.ids.chunks(SCAN_CHUNK))
    {
        let mut best = u32::MAX;
        for &h in chunk {
            best = best.min((h ^ q).count_ones());
        }
        if best > top.bound {
            continue;
        }
        for (&h, &id) in chunk.iter().zip(chunk_ids) {
            let x = h ^ q;
            let distance = x.count_ones();
            if distance > top.bound {
                continue;
            }
            let votes = job.lanes.equal(x).count_ones();
            if votes >= job.min_votes {
                top.offer(distance, votes, id);
            }
        }
    }
}

/// Offers every slot of the buckets with enough votes, each slot once: a slot whose hash
/// equals the query in an earlier walked band was already offered there.
#[inline(always)]
fn postings_kernel(job: Job<'_>, lists: &[(&[u32], u64)], top: &mut TopK) {
    let q = job.query;
    let mut walked = 0u64;
    for &(list, band_bit) in lists {
        for &slot in list {
            let Some(&h) = job.hashes.get(slot as usize) else {
                continue;
            };
            let x = h ^ q;
            let equal = job.lanes.equal(x);
            if equal & walked != 0 {
                continue;
            }
            let distance = x.count_ones();
            if distance > top.bound {
                continue;
            }
            let votes = equal.count_ones();
            if votes < job.min_votes {
                continue;
            }
            if let Some(&id) = job.ids.get(slot as usize) {
                top.offer(distance, votes, id);
            }
        }
        walked |= band_bit;
    }
}

/// The plaintext band index over `(ImageId, ImageHash)` entries; see the [module
/// documentation](self) for its exact semantics.
///
/// Two indexes are equal when they have the same layout and the same entries, whatever the
/// order they were inserted in.
#[derive(Clone)]
pub struct SearchableSISIndex {
    layout: BandLayout,
    ids: Vec<ImageId>,
    hashes: Vec<u64>,
    /// Band-major postings, `bands * 2^bits_per_band` buckets of slots; empty when the layout
    /// has no postings.
    buckets: Vec<Vec<u32>>,
    table: SlotTable,
}

impl SearchableSISIndex {
    /// An empty index with the default layout (8 bands of 8 bits).
    pub fn new() -> Self {
        Self::with_layout(BandLayout::default())
    }

    /// An empty index with `layout`. It allocates nothing until the first insertion.
    pub fn with_layout(layout: BandLayout) -> Self {
        Self {
            layout,
            ids: Vec::new(),
            hashes: Vec::new(),
            buckets: Vec::new(),
            table: SlotTable::default(),
        }
    }

    /// Allocates the bucket array of a layout with postings (before the first insertion).
    fn ensure_buckets(&mut self) {
        if self.layout.has_postings() && self.buckets.is_empty() {
            self.buckets =
                vec![Vec::new(); self.layout.bands as usize * self.layout.buckets_per_band()];
        }
    }

    /// The band layout.
    pub fn layout(&self) -> BandLayout {
        self.layout
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the index has no entries.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The hash stored for `id`.
    pub fn get(&self, id: ImageId) -> Option<ImageHash> {
        let (_, slot) = self.table.find(&self.ids, id)?;
        self.hashes.get(slot as usize).map(|&h| ImageHash(h))
    }

    /// Whether `id` is in the index.
    pub fn contains(&self, id: ImageId) -> bool {
        self.table.find(&self.ids, id).is_some()
    }

    /// The entries in storage order (insertion order, except that a removal moves the last
    /// entry into the freed place).
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (ImageId, ImageHash)> + '_ {
        self.ids
            .iter()
            .zip(&self.hashes)
            .map(|(&id, &h)| (id, ImageHash(h)))
    }

    /// Adds one entry. Fails with [`IndexError::DuplicateId`] if `id` is present (the stored
    /// hash is kept) and with [`IndexError::Full`] at [`MAX_ENTRIES`].
    pub fn insert(&mut self, id: ImageId, hash: ImageHash) -> Result<(), IndexError> {
        if self.contains(id) {
            return Err(IndexError::DuplicateId(id));
        }
        let len = self.len();
        if len >= MAX_ENTRIES {
            return Err(IndexError::Full { max: MAX_ENTRIES });
        }
        if self.table.needs_growth(len + 1) {
            self.table.rebuild(&self.ids, (len + 1) * 2);
        }
        self.ensure_buckets();
        self.push_entry(id, hash.0);
        Ok(())
    }

    /// Adds all `entries`, or none: fails without changing the index if any id is present or
    /// appears twice in `entries` ([`IndexError::DuplicateId`] names the first such entry in
    /// iteration order), or if the total would exceed [`MAX_ENTRIES`]. Capacities are
    /// reserved exactly, so a bulk load leaves no slack.
    pub fn insert_many(
        &mut self,
        entries: impl IntoIterator<Item = (ImageId, ImageHash)>,
    ) -> Result<(), IndexError> {
        let batch: Vec<(ImageId, u64)> = entries.into_iter().map(|(id, h)| (id, h.0)).collect();
        if let Some(id) = self.first_conflict(&batch) {
            return Err(IndexError::DuplicateId(id));
        }
        self.extend_unchecked(&batch)
    }

    /// The first entry of `batch` (in order) whose id is present or repeats an earlier one.
    fn first_conflict(&self, batch: &[(ImageId, u64)]) -> Option<ImageId> {
        let mut first = batch.iter().position(|&(id, _)| self.contains(id));
        let mut order: Vec<(ImageId, usize)> = batch
            .iter()
            .enumerate()
            .map(|(position, &(id, _))| (id, position))
            .collect();
        order.sort_unstable();
        for pair in order.windows(2) {
            if let [(a, _), (b, position)] = pair
                && a == b
            {
                first = Some(first.map_or(*position, |f| f.min(*position)));
            }
        }
        first
            .and_then(|position| batch.get(position))
            .map(|&(id, _)| id)
    }

    /// Adds `batch`, whose ids must be new and distinct, reserving every capacity exactly.
    fn extend_unchecked(&mut self, batch: &[(ImageId, u64)]) -> Result<(), IndexError> {
        let total = self
            .len()
            .checked_add(batch.len())
            .filter(|&total| total <= MAX_ENTRIES)
            .ok_or(IndexError::Full { max: MAX_ENTRIES })?;
        if batch.is_empty() {
            return Ok(());
        }
        self.ensure_buckets();
        self.ids.reserve_exact(batch.len());
        self.hashes.reserve_exact(batch.len());
        if self.table.needs_growth(total) {
            self.table.rebuild(&self.ids, total + total / 2);
        }
        if !self.buckets.is_empty() {
            let mut counts = vec![0usize; self.buckets.len()];
            for &(_, h) in batch {
                for band in 0..self.layout.bands {
                    if let Some(c) = counts.get_mut(self.layout.bucket_index(h, band)) {
                        *c += 1;
                    }
                }
            }
            for (bucket, count) in self.buckets.iter_mut().zip(counts) {
                bucket.reserve_exact(count);
            }
        }
        for &(id, h) in batch {
            self.push_entry(id, h);
        }
        Ok(())
    }

    /// Appends a new entry (id absent, table already large enough).
    fn push_entry(&mut self, id: ImageId, hash: u64) {
        let slot = self.ids.len() as u32;
        push_tight(&mut self.ids, id);
        push_tight(&mut self.hashes, hash);
        self.table.place(id, slot);
        if !self.buckets.is_empty() {
            for band in 0..self.layout.bands {
                if let Some(bucket) = self.buckets.get_mut(self.layout.bucket_index(hash, band)) {
                    push_tight(bucket, slot);
                }
            }
        }
    }

    /// Removes `id` and returns its hash, or `None` if it is absent. Takes time proportional to
    /// the sizes of the entry's buckets (and of the last entry's, which moves into its slot).
    pub fn remove(&mut self, id: ImageId) -> Option<ImageHash> {
        let (cell, slot) = self.table.find(&self.ids, id)?;
        let hash = *self.hashes.get(slot as usize)?;
        let last = self.ids.len() - 1;
        self.table.delete(&self.ids, cell);
        let moved = (slot as usize != last)
            .then(|| Some((*self.ids.get(last)?, *self.hashes.get(last)?)))
            .flatten();
        if let Some((moved_id, _)) = moved
            && let Some((moved_cell, _)) = self.table.find(&self.ids, moved_id)
        {
            self.table.set(moved_cell, slot);
        }
        if !self.buckets.is_empty() {
            for band in 0..self.layout.bands {
                let bucket_index = self.layout.bucket_index(hash, band);
                if let Some(bucket) = self.buckets.get_mut(bucket_index) {
                    if let Some(p) = bucket.iter().position(|&s| s == slot) {
                        bucket.swap_remove(p);
                    }
                    shrink_slack(bucket);
                }
                if let Some((_, moved_hash)) = moved {
                    let moved_index = self.layout.bucket_index(moved_hash, band);
                    if let Some(bucket) = self.buckets.get_mut(moved_index)
                        && let Some(s) = bucket.iter_mut().find(|s| **s as usize == last)
                    {
                        *s = slot;
                    }
                }
            }
        }
        self.ids.swap_remove(slot as usize);
        self.hashes.swap_remove(slot as usize);
        shrink_slack(&mut self.ids);
        shrink_slack(&mut self.hashes);
        let len = self.ids.len();
        if len == 0 {
            *self = Self::with_layout(self.layout);
        } else if self.table.cells.len() > 64 && len.saturating_mul(8) < self.table.cells.len() * 3
        {
            // Load below 3/8: rebuild at 1/2.
            self.table.rebuild(&self.ids, len * 2);
        }
        Some(ImageHash(hash))
    }

    /// Every image with at least `min_band_votes` bands equal to `query`, with its band votes,
    /// sorted by id. `min_band_votes == 0` returns every image; more than the layout's bands
    /// returns none.
    pub fn candidates(&self, query: ImageHash, min_band_votes: u32) -> Vec<(ImageId, u32)> {
        self.candidates_with(query, min_band_votes, SearchStrategy::Auto)
    }

    /// [`candidates`](Self::candidates) with a chosen strategy (the result is the same).
    pub fn candidates_with(
        &self,
        query: ImageHash,
        min_band_votes: u32,
        strategy: SearchStrategy,
    ) -> Vec<(ImageId, u32)> {
        if min_band_votes > self.layout.bands || self.is_empty() {
            return Vec::new();
        }
        let mut top = TopK::unbounded();
        self.search(
            query.0,
            min_band_votes,
            strategy,
            &mut top,
            Kernel::detect(),
        );
        let mut out: Vec<(ImageId, u32)> = top.hits.iter().map(|h| (h.id, h.votes)).collect();
        out.sort_unstable_by_key(|&(id, _)| id);
        out
    }

    /// The best `params.topk` candidates (at least `params.min_band_votes` equal bands) within
    /// Hamming distance `params.max_hamming`, sorted by distance, then id.
    pub fn rank_candidates(&self, query: ImageHash, params: &SearchParams) -> Vec<RankedCandidate> {
        self.rank_candidates_with(query, params, SearchStrategy::Auto)
    }

    /// [`rank_candidates`](Self::rank_candidates) with a chosen strategy (the result is the
    /// same).
    pub fn rank_candidates_with(
        &self,
        query: ImageHash,
        params: &SearchParams,
        strategy: SearchStrategy,
    ) -> Vec<RankedCandidate> {
        self.rank(query, params, strategy, Kernel::detect())
    }

    /// The best `topk` of all entries within Hamming distance `max_hamming`, sorted by
    /// distance, then id: an exhaustive scan, equal to
    /// [`rank_candidates`](Self::rank_candidates) with `min_band_votes = 0`.
    pub fn scan(&self, query: ImageHash, topk: usize, max_hamming: u32) -> Vec<RankedCandidate> {
        let params = SearchParams {
            topk,
            min_band_votes: 0,
            max_hamming,
        };
        self.rank(query, &params, SearchStrategy::Scan, Kernel::detect())
    }

    fn rank(
        &self,
        query: ImageHash,
        params: &SearchParams,
        strategy: SearchStrategy,
        kernel: Kernel,
    ) -> Vec<RankedCandidate> {
        if params.topk == 0 || params.min_band_votes > self.layout.bands || self.is_empty() {
            return Vec::new();
        }
        let mut top = TopK::new(params.topk, params.max_hamming);
        self.search(query.0, params.min_band_votes, strategy, &mut top, kernel);
        top.finish()
            .into_iter()
            .map(|hit| RankedCandidate {
                id: hit.id,
                distance: hit.distance,
                band_votes: hit.votes,
            })
            .collect()
    }

    /// Offers every entry with at least `min_votes` equal bands (`min_votes <= bands`) to `top`.
    fn search(
        &self,
        query: u64,
        min_votes: u32,
        strategy: SearchStrategy,
        top: &mut TopK,
        kernel: Kernel,
    ) {
        let mut job = Job {
            query,
            min_votes,
            lanes: Lanes::new(self.layout),
            hashes: &self.hashes,
            ids: &self.ids,
            postings: None,
        };
        if min_votes == 0 || strategy == SearchStrategy::Scan || self.buckets.is_empty() {
            return kernel.run(job, top);
        }
        // Any `bands - min_votes + 1` bands contain an equal band of every image with
        // `min_votes` equal bands: walk the smallest such buckets.
        let mut lists: Vec<(&[u32], u64)> = (0..self.layout.bands)
            .filter_map(|band| {
                let bucket = self.buckets.get(self.layout.bucket_index(query, band))?;
                Some((bucket.as_slice(), self.layout.band_bit(band)))
            })
            .collect();
        lists.sort_by_key(|&(bucket, bit)| (bucket.len(), std::cmp::Reverse(bit)));
        lists.truncate((self.layout.bands - min_votes + 1) as usize);
        let visits: usize = lists.iter().map(|(bucket, _)| bucket.len()).sum();
        if strategy == SearchStrategy::Auto && visits.saturating_mul(POSTING_COST) > self.len() {
            return kernel.run(job, top);
        }
        job.postings = Some(&lists);
        kernel.run(job, top);
    }

    /// Heap bytes held: the capacities of the slot arrays, the id table and the postings
    /// (including the bucket headers); not the struct itself or allocator overhead.
    pub fn memory_bytes(&self) -> usize {
        let postings: usize = self
            .buckets
            .iter()
            .map(|bucket| bucket.capacity() * size_of::<u32>())
            .sum();
        self.ids.capacity() * size_of::<ImageId>()
            + self.hashes.capacity() * size_of::<u64>()
            + self.table.cells.capacity() * size_of::<u32>()
            + self.buckets.capacity() * size_of::<Vec<u32>>()
            + postings
    }

    /// The canonical version-1 encoding (see the module documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut entries: Vec<(ImageId, u64)> = self
            .ids
            .iter()
            .copied()
            .zip(self.hashes.iter().copied())
            .collect();
        entries.sort_unstable_by_key(|&(id, _)| id);
        let mut out = Vec::with_capacity(HEADER_LEN + ENTRY_LEN * entries.len());
        out.extend_from_slice(&FORMAT_MAGIC);
        out.push(FORMAT_VERSION);
        out.push(self.layout.bands as u8);
        out.push(self.layout.bits_per_band as u8);
        out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
        for (id, hash) in entries {
            out.extend_from_slice(&id.0.to_le_bytes());
            out.extend_from_slice(&hash.to_le_bytes());
        }
        out
    }

    /// Decodes [`to_bytes`](Self::to_bytes)'s format. Never panics; any other input gives a
    /// typed error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, IndexError> {
        let available = bytes.len() as u64;
        let truncated = |needed: u64| IndexError::Truncated { needed, available };
        let Some((magic, rest)) = bytes.split_first_chunk::<6>() else {
            return Err(if FORMAT_MAGIC.starts_with(bytes) {
                truncated(HEADER_LEN as u64)
            } else {
                IndexError::BadMagic
            });
        };
        if *magic != FORMAT_MAGIC {
            return Err(IndexError::BadMagic);
        }
        let Some((&[version], rest)) = rest.split_first_chunk::<1>() else {
            return Err(truncated(HEADER_LEN as u64));
        };
        if version != FORMAT_VERSION {
            return Err(IndexError::UnsupportedVersion(version));
        }
        let Some((&[bands, bits_per_band], rest)) = rest.split_first_chunk::<2>() else {
            return Err(truncated(HEADER_LEN as u64));
        };
        let layout = BandLayout::new(bands.into(), bits_per_band.into())?;
        let Some((count, body)) = rest.split_first_chunk::<8>() else {
            return Err(truncated(HEADER_LEN as u64));
        };
        let count = u64::from_le_bytes(*count);
        let body_len = body.len() as u64;
        let needed = count.checked_mul(ENTRY_LEN as u64);
        match needed {
            Some(needed) if needed == body_len => {}
            Some(needed) if needed < body_len => {
                return Err(IndexError::TrailingBytes {
                    extra: body_len - needed,
                    count,
                });
            }
            _ => {
                let total = needed.and_then(|n| n.checked_add(HEADER_LEN as u64));
                return Err(truncated(total.unwrap_or(u64::MAX)));
            }
        }
        if count > MAX_ENTRIES as u64 {
            return Err(IndexError::Full { max: MAX_ENTRIES });
        }
        let mut entries = Vec::with_capacity(body.len() / ENTRY_LEN);
        let mut previous: Option<ImageId> = None;
        for (position, entry) in body.chunks_exact(ENTRY_LEN).enumerate() {
            let Some((id, hash)) = entry.split_first_chunk::<8>() else {
                return Err(truncated(u64::MAX));
            };
            let Ok(hash) = <[u8; 8]>::try_from(hash) else {
                return Err(truncated(u64::MAX));
            };
            let id = ImageId(u64::from_le_bytes(*id));
            match previous {
                Some(p) if p == id => return Err(IndexError::DuplicateId(id)),
                Some(p) if p > id => {
                    return Err(IndexError::UnsortedIds {
                        position: position as u64,
                        id,
                    });
                }
                _ => {}
            }
            previous = Some(id);
            entries.push((id, u64::from_le_bytes(hash)));
        }
        let mut index = Self::with_layout(layout);
        index.extend_unchecked(&entries)?;
        Ok(index)
    }
}

impl Default for SearchableSISIndex {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for SearchableSISIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SearchableSISIndex")
            .field("layout", &self.layout)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl PartialEq for SearchableSISIndex {
    fn eq(&self, other: &Self) -> bool {
        self.layout == other.layout
            && self.len() == other.len()
            && self.iter().all(|(id, hash)| other.get(id) == Some(hash))
    }
}

impl Eq for SearchableSISIndex {}

pub mod synthetic {
    //! Synthetic collections, queries and latency measurement, for benchmarks and the CLI's
    //! `bench index`. Every function is deterministic given the random generator's state.

    use std::hint::black_box;
    use std::time::Instant;

    use rand::Rng;

    use super::{SearchParams, SearchableSISIndex, mix64};
    use crate::{ImageHash, ImageId};

    /// `n` entries with distinct pseudo-random ids and uniformly random hashes.
    pub fn random_entries(n: usize, rng: &mut impl Rng) -> Vec<(ImageId, ImageHash)> {
        let salt: u64 = rng.random();
        (0..n)
            .map(|i| (distinct_id(i, salt), ImageHash(rng.random())))
            .collect()
    }

    /// `n` entries of near-duplicates: `max(1, ceil(n / 100))` uniformly random centres, entry
    /// `i` a copy of centre `i mod centres` with 0 to 6 (uniform) distinct random bits flipped.
    /// Ids are distinct and pseudo-random.
    pub fn clustered_entries(n: usize, rng: &mut impl Rng) -> Vec<(ImageId, ImageHash)> {
        let salt: u64 = rng.random();
        let centres: Vec<u64> = (0..n.div_ceil(100).max(1)).map(|_| rng.random()).collect();
        (0..n)
            .map(|i| {
                let centre = centres.get(i % centres.len()).copied().unwrap_or_default();
                let flips = rng.random_range(0..=6);
                (
                    distinct_id(i, salt),
                    ImageHash(flip_bits(centre, flips, rng)),
                )
            })
            .collect()
    }

    /// `count` queries drawn from `entries`: each the hash of a uniformly chosen entry, and
    /// with probability 1/2 perturbed by 1 to 4 (uniform) distinct random bit flips. With no
    /// entries, uniformly random hashes.
    pub fn queries_for(
        entries: &[(ImageId, ImageHash)],
        count: usize,
        rng: &mut impl Rng,
    ) -> Vec<ImageHash> {
        (0..count)
            .map(|_| {
                let Some(&(_, hash)) = entries.get(rng.random_range(0..entries.len().max(1)))
                else {
                    return ImageHash(rng.random());
                };
                if rng.random_bool(0.5) {
                    let flips = rng.random_range(1..=4);
                    ImageHash(flip_bits(hash.0, flips, rng))
                } else {
                    hash
                }
            })
            .collect()
    }

    /// Per-query wall-clock latency, in milliseconds.
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub struct LatencyStats {
        /// Median (nearest-rank 50th percentile).
        pub p50_ms: f64,
        /// Nearest-rank 99th percentile.
        pub p99_ms: f64,
        /// Mean.
        pub mean_ms: f64,
        /// Slowest query.
        pub max_ms: f64,
    }

    /// Times [`SearchableSISIndex::rank_candidates`] once per query (after one untimed warm-up
    /// pass over up to 100 queries). All statistics are 0 when `queries` is empty.
    pub fn measure_query_latency(
        index: &SearchableSISIndex,
        queries: &[ImageHash],
        params: &SearchParams,
    ) -> LatencyStats {
        measure(queries, |q| {
            black_box(index.rank_candidates(q, params));
        })
    }

    /// Times [`SearchableSISIndex::scan`] once per query, like [`measure_query_latency`].
    pub fn measure_scan_latency(
        index: &SearchableSISIndex,
        queries: &[ImageHash],
        topk: usize,
        max_hamming: u32,
    ) -> LatencyStats {
        measure(queries, |q| {
            black_box(index.scan(q, topk, max_hamming));
        })
    }

    fn measure(queries: &[ImageHash], mut run: impl FnMut(ImageHash)) -> LatencyStats {
        for &q in queries.iter().take(100) {
            run(black_box(q));
        }
        let mut ms: Vec<f64> = queries
            .iter()
            .map(|&q| {
                let start = Instant::now();
                run(black_box(q));
                start.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        ms.sort_by(f64::total_cmp);
        let rank = |p: f64| -> f64 {
            let r = (p * ms.len() as f64).ceil() as usize;
            ms.get(r.saturating_sub(1)).copied().unwrap_or(0.0)
        };
        LatencyStats {
            p50_ms: rank(0.50),
            p99_ms: rank(0.99),
            mean_ms: if ms.is_empty() {
                0.0
            } else {
                ms.iter().sum::<f64>() / ms.len() as f64
            },
            max_ms: ms.last().copied().unwrap_or(0.0),
        }
    }

    /// The `i`-th of a sequence of distinct ids (a bijection of `i`).
    fn distinct_id(i: usize, salt: u64) -> ImageId {
        ImageId(mix64(i as u64 ^ salt))
    }

    /// `hash` with exactly `flips` (at most 64) distinct random bits flipped.
    fn flip_bits(hash: u64, flips: u32, rng: &mut impl Rng) -> u64 {
        let mut mask = 0u64;
        while mask.count_ones() < flips.min(64) {
            mask |= 1 << rng.random_range(0..64);
        }
        hash ^ mask
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use std::collections::BTreeMap;

    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    const ALL_LAYOUTS: [(u32, u32); 5] = [(64, 1), (32, 2), (16, 4), (8, 8), (4, 16)];

    fn id(v: u64) -> ImageId {
        ImageId(v)
    }

    fn h(v: u64) -> ImageHash {
        ImageHash(v)
    }

    fn layout(bands: u32, bits: u32) -> BandLayout {
        BandLayout::new(bands, bits).unwrap()
    }

    fn index_of(layout: BandLayout, entries: &[(u64, u64)]) -> SearchableSISIndex {
        let mut index = SearchableSISIndex::with_layout(layout);
        for &(i, hash) in entries {
            index.insert(id(i), h(hash)).unwrap();
        }
        index
    }

    fn naive_band_votes(layout: BandLayout, a: u64, b: u64) -> u32 {
        let w = layout.bits_per_band();
        (0..layout.bands())
            .filter(|&i| {
                let shift = 64 - (i + 1) * w;
                let mask = if w == 64 { u64::MAX } else { (1u64 << w) - 1 };
                (a >> shift) & mask == (b >> shift) & mask
            })
            .count() as u32
    }

    /// Brute force over the entries: the specification of `rank_candidates`.
    fn naive_rank(index: &SearchableSISIndex, q: u64, p: &SearchParams) -> Vec<RankedCandidate> {
        let layout = index.layout();
        let mut all: Vec<RankedCandidate> = index
            .iter()
            .map(|(id, hash)| RankedCandidate {
                id,
                distance: (hash.0 ^ q).count_ones(),
                band_votes: naive_band_votes(layout, hash.0, q),
            })
            .filter(|c| c.band_votes >= p.min_band_votes && c.distance <= p.max_hamming)
            .collect();
        all.sort_by_key(|c| (c.distance, c.id));
        all.truncate(p.topk);
        all
    }

    #[test]
    fn layout_accepts_exactly_the_five_partitions() {
        for bands in 0..=70 {
            for bits in 0..=70 {
                let ok = ALL_LAYOUTS.contains(&(bands, bits));
                assert_eq!(BandLayout::new(bands, bits).is_ok(), ok, "{bands} x {bits}");
            }
        }
        assert!(BandLayout::new(u32::MAX, 16).is_err());
        assert!(BandLayout::new(1 << 31, 2).is_err());
        let d = BandLayout::default();
        assert_eq!((d.bands(), d.bits_per_band()), (8, 8));
        let err = BandLayout::new(8, 7).unwrap_err().to_string();
        assert!(err.contains("8 x 7"), "{err}");
    }

    #[test]
    fn band_zero_is_the_most_significant() {
        let l = layout(8, 8);
        let hash = h(0x0123_4567_89ab_cdef);
        let bands: Vec<u16> = (0..8).map(|i| l.band(hash, i).unwrap()).collect();
        assert_eq!(bands, [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
        assert_eq!(l.band(hash, 8), None);
        let l = layout(4, 16);
        assert_eq!(l.band(hash, 0), Some(0x0123));
        assert_eq!(l.band(hash, 3), Some(0xcdef));
        let l = layout(64, 1);
        assert_eq!(l.band(h(1 << 63), 0), Some(1));
        assert_eq!(l.band(h(1 << 63), 1), Some(0));
        assert_eq!(l.band(h(1), 63), Some(1));
    }

    #[test]
    fn band_votes_match_per_band_comparison() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for &(bands, bits) in &ALL_LAYOUTS {
            let l = layout(bands, bits);
            assert_eq!(l.band_votes(h(5), h(5)), bands);
            assert_eq!(l.band_votes(h(0), h(u64::MAX)), 0);
            for _ in 0..2000 {
                let a: u64 = rng.random();
                // Many equal bands: flip a few bits only.
                let b = a ^ (rng.random::<u64>() & rng.random::<u64>() & rng.random::<u64>());
                let c: u64 = rng.random();
                assert_eq!(l.band_votes(h(a), h(b)), naive_band_votes(l, a, b));
                assert_eq!(l.band_votes(h(a), h(c)), naive_band_votes(l, a, c));
            }
        }
    }

    #[test]
    fn duplicate_insert_is_an_error_not_an_overwrite() {
        let mut index = SearchableSISIndex::new();
        index.insert(id(7), h(1)).unwrap();
        let err = index.insert(id(7), h(2)).unwrap_err();
        assert!(matches!(err, IndexError::DuplicateId(ImageId(7))));
        assert!(err.to_string().contains("0000000000000007"), "{err}");
        assert_eq!(index.get(id(7)), Some(h(1)));
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn insert_many_is_all_or_nothing() {
        let mut index = index_of(BandLayout::default(), &[(1, 10), (2, 20)]);
        let before = index.clone();
        // Duplicate of an existing id.
        let err = index
            .insert_many([(id(3), h(30)), (id(2), h(0)), (id(4), h(40))])
            .unwrap_err();
        assert!(matches!(err, IndexError::DuplicateId(ImageId(2))));
        assert_eq!(index, before);
        // Duplicate inside the batch: the first offending entry in order is named.
        let err = index
            .insert_many([(id(9), h(0)), (id(5), h(0)), (id(9), h(1)), (id(5), h(2))])
            .unwrap_err();
        assert!(matches!(err, IndexError::DuplicateId(ImageId(9))));
        let err = index
            .insert_many([(id(5), h(0)), (id(8), h(0)), (id(1), h(1)), (id(5), h(2))])
            .unwrap_err();
        assert!(matches!(err, IndexError::DuplicateId(ImageId(1))));
        assert_eq!(index, before);
        assert_eq!(index.len(), 2);
        index.insert_many([(id(3), h(30)), (id(4), h(40))]).unwrap();
        assert_eq!(index.len(), 4);
        assert_eq!(index.get(id(4)), Some(h(40)));
        index.insert_many([]).unwrap();
        assert_eq!(index.len(), 4);
    }

    #[test]
    fn remove_returns_the_hash_and_patches_the_moved_entry() {
        for &(bands, bits) in &ALL_LAYOUTS {
            let mut index = index_of(layout(bands, bits), &[(1, 10), (2, 20), (3, 10)]);
            assert_eq!(index.remove(id(1)), Some(h(10)));
            assert_eq!(index.remove(id(1)), None);
            assert!(!index.contains(id(1)));
            assert_eq!(index.get(id(3)), Some(h(10)));
            let exact = SearchParams {
                max_hamming: 0,
                ..SearchParams::default()
            };
            let found = index.rank_candidates(h(10), &exact);
            assert_eq!(found.iter().map(|c| c.id).collect::<Vec<_>>(), [id(3)]);
            index.insert(id(1), h(11)).unwrap();
            assert_eq!(index.get(id(1)), Some(h(11)));
            assert_eq!(index.remove(id(2)), Some(h(20)));
            assert_eq!(index.remove(id(3)), Some(h(10)));
            assert_eq!(index.remove(id(1)), Some(h(11)));
            assert!(index.is_empty());
            assert_eq!(index.remove(id(1)), None);
        }
    }

    #[test]
    fn random_inserts_and_removes_match_a_map() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for &(bands, bits) in &[(8, 8), (4, 16), (16, 4)] {
            let mut index = SearchableSISIndex::with_layout(layout(bands, bits));
            let mut model = BTreeMap::new();
            for step in 0..20_000 {
                let key = id(rng.random_range(0..3000));
                let value = h(rng.random::<u64>() & 0xff00_ff00_ff00_ff00);
                if rng.random_bool(0.55) {
                    let fresh = !model.contains_key(&key);
                    assert_eq!(index.insert(key, value).is_ok(), fresh);
                    model.entry(key).or_insert(value);
                } else {
                    assert_eq!(index.remove(key), model.remove(&key));
                }
                if step % 2000 == 0 {
                    let q = rng.random::<u64>() & 0xff00_ff00_ff00_ff00;
                    let p = SearchParams {
                        topk: 20,
                        min_band_votes: rng.random_range(0..=bands),
                        max_hamming: 40,
                    };
                    assert_eq!(index.rank_candidates(h(q), &p), naive_rank(&index, q, &p));
                }
            }
            assert_eq!(index.len(), model.len());
            for (&k, &v) in &model {
                assert_eq!(index.get(k), Some(v));
            }
            let from_model: Vec<_> = model.iter().map(|(&k, &v)| (k, v)).collect();
            let mut rebuilt = SearchableSISIndex::with_layout(layout(bands, bits));
            rebuilt.insert_many(from_model).unwrap();
            assert_eq!(index, rebuilt);
            for k in model.keys() {
                index.remove(*k).unwrap();
            }
            assert!(index.is_empty());
            assert_eq!(index.memory_bytes(), 0);
        }
    }

    #[test]
    fn candidates_cover_the_edge_cases() {
        let l = layout(8, 8);
        let index = index_of(
            l,
            &[
                (5, 0x1111_1111_1111_1111),
                (2, 0x1111_1111_1111_1100),
                (9, 0x2222_2222_2222_2222),
            ],
        );
        let q = h(0x1111_1111_1111_1111);
        assert_eq!(index.candidates(q, 1), [(id(2), 7), (id(5), 8)]);
        assert_eq!(index.candidates(q, 8), [(id(5), 8)]);
        assert_eq!(index.candidates(q, 9), []);
        assert_eq!(index.candidates(q, 0), [(id(2), 7), (id(5), 8), (id(9), 0)]);
        assert_eq!(SearchableSISIndex::new().candidates(q, 0), []);
        for s in [
            SearchStrategy::Auto,
            SearchStrategy::Postings,
            SearchStrategy::Scan,
        ] {
            assert_eq!(index.candidates_with(q, 1, s), [(id(2), 7), (id(5), 8)]);
        }
    }

    #[test]
    fn rank_candidates_edge_cases() {
        let q = 0xffff_0000_ffff_0000u64;
        let index = index_of(
            layout(8, 8),
            &[
                (40, q),          // exact, larger id
                (10, q),          // exact, smaller id: same hash under two ids
                (30, q ^ 1),      // distance 1, 7 votes
                (20, q ^ 0x0101), // distance 2, 6 votes
                (50, !q),         // distance 64, 0 votes
            ],
        );
        let ids = |r: Vec<RankedCandidate>| r.into_iter().map(|c| c.id.0).collect::<Vec<_>>();
        let p = SearchParams::default();
        let all = index.rank_candidates(h(q), &p);
        assert_eq!(ids(all.clone()), [10, 40, 30, 20]);
        assert_eq!(
            all[2],
            RankedCandidate {
                id: id(30),
                distance: 1,
                band_votes: 7
            }
        );
        // topk 0 and truncation.
        assert_eq!(
            index.rank_candidates(h(q), &SearchParams { topk: 0, ..p }),
            []
        );
        assert_eq!(
            ids(index.rank_candidates(h(q), &SearchParams { topk: 3, ..p })),
            [10, 40, 30]
        );
        // max_hamming 0: exact matches only; 64: no filter (with min_band_votes 0).
        let exact = SearchParams {
            max_hamming: 0,
            ..p
        };
        assert_eq!(ids(index.rank_candidates(h(q), &exact)), [10, 40]);
        let everything = SearchParams {
            min_band_votes: 0,
            max_hamming: 64,
            ..p
        };
        assert_eq!(
            ids(index.rank_candidates(h(q), &everything)),
            [10, 40, 30, 20, 50]
        );
        let above = SearchParams {
            max_hamming: 1000,
            ..everything
        };
        assert_eq!(
            ids(index.rank_candidates(h(q), &above)),
            [10, 40, 30, 20, 50]
        );
        // min_band_votes bands and above.
        let all_bands = SearchParams {
            min_band_votes: 8,
            ..p
        };
        assert_eq!(ids(index.rank_candidates(h(q), &all_bands)), [10, 40]);
        let too_many = SearchParams {
            min_band_votes: 9,
            ..everything
        };
        assert_eq!(index.rank_candidates(h(q), &too_many), []);
        // No candidates: every band differs from every entry.
        let far = 0x0f0f_f0f0_0f0f_f0f0u64;
        assert!(
            index
                .iter()
                .all(|(_, e)| index.layout().band_votes(e, h(far)) == 0)
        );
        assert_eq!(index.rank_candidates(h(far), &p), []);
        assert_eq!(index.scan(h(far), 10, 64).len(), 5);
        // Empty index.
        assert_eq!(
            SearchableSISIndex::new().rank_candidates(h(q), &everything),
            []
        );
        assert_eq!(SearchableSISIndex::new().scan(h(q), 10, 64), []);
        // scan is rank with min_band_votes 0, band votes filled in.
        assert_eq!(
            index.scan(h(q), 10, 64),
            index.rank_candidates(h(q), &everything)
        );
        assert_eq!(index.scan(h(q), 10, 64)[4].band_votes, 0);
        assert_eq!(ids(index.scan(h(q), 10, 1)), [10, 40, 30]);
        assert_eq!(index.scan(h(q), 0, 64), []);
    }

    #[test]
    fn ties_at_the_kth_distance_are_broken_by_id() {
        // Many entries at the same distances, inserted in scrambled id order, more than one
        // compaction's worth.
        let mut entries: Vec<(u64, u64)> = (0..5000u64)
            .map(|i| (mix64(i) % 1_000_000_007, (i % 7) | 0xab00_0000_0000_0000))
            .collect();
        entries.sort_unstable();
        entries.dedup_by_key(|e| e.0);
        let index = index_of(layout(8, 8), &entries);
        for topk in [1, 5, 100, 300, 1000, 10_000] {
            for m in [0, 1, 7, 8] {
                let p = SearchParams {
                    topk,
                    min_band_votes: m,
                    max_hamming: 64,
                };
                for q in [0xab00_0000_0000_0000, 0xab00_0000_0000_0003, 0] {
                    let expected = naive_rank(&index, q, &p);
                    for s in [
                        SearchStrategy::Auto,
                        SearchStrategy::Postings,
                        SearchStrategy::Scan,
                    ] {
                        assert_eq!(index.rank_candidates_with(h(q), &p, s), expected);
                    }
                }
            }
        }
    }

    #[test]
    fn kernels_and_strategies_agree_with_brute_force() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let kernels = [
            Kernel::Portable,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2,
        ];
        #[cfg(target_arch = "x86_64")]
        if !crate::kernels::cpu::avx2_popcnt() {
            eprintln!("this CPU lacks AVX2/POPCNT: the Avx2 kernel runs the portable code");
        }
        for &(bands, bits) in &ALL_LAYOUTS {
            let l = layout(bands, bits);
            // Hashes near a few centres, so that bands collide often.
            let centres: Vec<u64> = (0..8).map(|_| rng.random()).collect();
            let near = |rng: &mut ChaCha8Rng| {
                let c = centres[rng.random_range(0..centres.len())];
                c ^ (rng.random::<u64>() & rng.random::<u64>() & rng.random::<u64>())
            };
            let mut index = SearchableSISIndex::with_layout(l);
            for i in 0..3000u64 {
                let hash = near(&mut rng);
                index.insert(id(i * 7919 % 3001), h(hash)).unwrap();
            }
            for _ in 0..60 {
                let q = near(&mut rng);
                let p = SearchParams {
                    topk: rng.random_range(0..40),
                    min_band_votes: rng.random_range(0..=bands + 1),
                    max_hamming: rng.random_range(0..=65),
                };
                let expected = naive_rank(&index, q, &p);
                for kernel in kernels {
                    for s in [
                        SearchStrategy::Auto,
                        SearchStrategy::Postings,
                        SearchStrategy::Scan,
                    ] {
                        assert_eq!(
                            index.rank(h(q), &p, s, kernel),
                            expected,
                            "{kernel:?} {s:?}"
                        );
                    }
                    let scan = SearchParams {
                        min_band_votes: 0,
                        ..p
                    };
                    let expected_scan = naive_rank(&index, q, &scan);
                    let got = index.rank(h(q), &scan, SearchStrategy::Scan, kernel);
                    assert_eq!(got, expected_scan, "{kernel:?}");
                }
                assert_eq!(
                    index.scan(h(q), p.topk, p.max_hamming),
                    naive_rank(&index, q, &{
                        SearchParams {
                            min_band_votes: 0,
                            ..p
                        }
                    })
                );
            }
        }
    }

    #[test]
    fn serialisation_round_trips_and_is_canonical() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        for &(bands, bits) in &ALL_LAYOUTS {
            let l = layout(bands, bits);
            let entries: Vec<(u64, u64)> = (0..200).map(|i| (i * 31 + 5, rng.random())).collect();
            let index = index_of(l, &entries);
            let bytes = index.to_bytes();
            assert_eq!(bytes.len(), HEADER_LEN + 16 * 200);
            assert_eq!(&bytes[..6], b"PHRIDX");
            assert_eq!(bytes[6..9], [1, bands as u8, bits as u8]);
            let back = SearchableSISIndex::from_bytes(&bytes).unwrap();
            assert_eq!(back, index);
            assert_eq!(back.layout(), l);
            // Insertion order does not change the encoding.
            let mut reversed = entries.clone();
            reversed.reverse();
            assert_eq!(index_of(l, &reversed).to_bytes(), bytes);
        }
        let empty = SearchableSISIndex::new();
        let bytes = empty.to_bytes();
        assert_eq!(bytes.len(), HEADER_LEN);
        assert_eq!(SearchableSISIndex::from_bytes(&bytes).unwrap(), empty);
    }

    #[test]
    fn decoding_errors_are_typed() {
        let index = index_of(layout(8, 8), &[(1, 10), (2, 20), (3, 30)]);
        let good = index.to_bytes();
        let decode = SearchableSISIndex::from_bytes;

        assert!(matches!(decode(b""), Err(IndexError::Truncated { .. })));
        assert!(matches!(decode(b"PHR"), Err(IndexError::Truncated { .. })));
        assert!(matches!(decode(b"XY"), Err(IndexError::BadMagic)));
        let mut bad = good.clone();
        bad[0] = b'Q';
        assert!(matches!(decode(&bad), Err(IndexError::BadMagic)));
        let mut bad = good.clone();
        bad[6] = 2;
        assert!(matches!(
            decode(&bad),
            Err(IndexError::UnsupportedVersion(2))
        ));
        let mut bad = good.clone();
        bad[7] = 7;
        assert!(matches!(
            decode(&bad),
            Err(IndexError::InvalidLayout {
                bands: 7,
                bits_per_band: 8
            })
        ));
        for cut in 0..good.len() {
            let err = decode(&good[..cut]).unwrap_err();
            assert!(matches!(err, IndexError::Truncated { .. }), "{cut}: {err}");
        }
        let mut long = good.clone();
        long.push(0);
        match decode(&long) {
            Err(IndexError::TrailingBytes { extra: 1, count: 3 }) => {}
            other => panic!("{other:?}"),
        }
        // A huge count must not overflow or allocate.
        let mut huge = good.clone();
        huge[9..17].copy_from_slice(&u64::MAX.to_le_bytes());
        match decode(&huge) {
            Err(IndexError::Truncated { needed, available }) => {
                assert_eq!(needed, u64::MAX);
                assert_eq!(available, good.len() as u64);
            }
            other => panic!("{other:?}"),
        }
        // Entries: swap the ids of entries 0 and 1 -> unsorted; copy 0 over 1 -> duplicate.
        let entry = |i: usize| HEADER_LEN + 16 * i;
        let mut unsorted = good.clone();
        unsorted[entry(0)..entry(0) + 8].copy_from_slice(&2u64.to_le_bytes());
        unsorted[entry(1)..entry(1) + 8].copy_from_slice(&1u64.to_le_bytes());
        assert!(matches!(
            decode(&unsorted),
            Err(IndexError::UnsortedIds {
                position: 1,
                id: ImageId(1)
            })
        ));
        let mut duplicate = good;
        duplicate[entry(1)..entry(1) + 8].copy_from_slice(&1u64.to_le_bytes());
        assert!(matches!(
            decode(&duplicate),
            Err(IndexError::DuplicateId(ImageId(1)))
        ));
        for err in [decode(&unsorted).unwrap_err(), decode(&huge).unwrap_err()] {
            assert!(!err.to_string().is_empty());
        }
    }

    #[test]
    fn memory_stays_small_per_entry() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let n = 200_000;
        let entries = synthetic::random_entries(n, &mut rng);
        let mut bulk = SearchableSISIndex::new();
        bulk.insert_many(entries.iter().copied()).unwrap();
        let mut one_by_one = SearchableSISIndex::new();
        for &(i, hash) in &entries {
            one_by_one.insert(i, hash).unwrap();
        }
        for index in [&bulk, &one_by_one] {
            let per_entry = index.memory_bytes() as f64 / n as f64;
            assert!(per_entry < 64.0, "{per_entry} bytes per entry");
        }
        assert_eq!(bulk, one_by_one);
        // Removing most entries gives memory back.
        for &(i, _) in &entries[1000..] {
            one_by_one.remove(i).unwrap();
        }
        let headers = 2048 * size_of::<Vec<u32>>();
        let left = one_by_one.memory_bytes() - headers;
        assert!(left < 1000 * 64 + 2048 * 4 * 4, "{left}");
    }

    #[test]
    fn synthetic_data_has_the_promised_shape() {
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let clustered = synthetic::clustered_entries(10_000, &mut rng);
        assert_eq!(clustered.len(), 10_000);
        let mut ids: Vec<ImageId> = clustered.iter().map(|e| e.0).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 10_000);
        // Entry i and i + 100 share a centre: at most 12 bits apart.
        for i in 0..100 {
            assert!(clustered[i].1.hamming(clustered[i + 100].1) <= 12);
        }
        let queries = synthetic::queries_for(&clustered, 500, &mut rng);
        assert_eq!(queries.len(), 500);
        let mut index = SearchableSISIndex::new();
        index.insert_many(clustered).unwrap();
        for &q in &queries {
            let best = index.rank_candidates(q, &SearchParams::default());
            assert!(best.first().is_some_and(|c| c.distance <= 4));
        }
        let stats = synthetic::measure_query_latency(&index, &queries, &SearchParams::default());
        assert!(stats.p50_ms <= stats.p99_ms && stats.p99_ms <= stats.max_ms);
        assert_eq!(
            synthetic::measure_scan_latency(&index, &[], 10, 64),
            synthetic::LatencyStats {
                p50_ms: 0.0,
                p99_ms: 0.0,
                mean_ms: 0.0,
                max_ms: 0.0
            }
        );
        assert_eq!(synthetic::queries_for(&[], 3, &mut rng).len(), 3);
        assert_eq!(synthetic::random_entries(0, &mut rng), []);
    }

    #[test]
    fn index_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SearchableSISIndex>();
    }
}
