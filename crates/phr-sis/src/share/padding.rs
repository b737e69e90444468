//! Size buckets: padding image lengths so stored and transferred sizes leak only a bucket.
//!
//! A share of the `shamir` scheme is exactly as long as the (padded) image; a `compact` share
//! is about `1/t` of it. Without padding every node learns each image's exact byte length,
//! which can identify a known file. With [`Padding::PowerOfTwo`] a node learns only
//! `⌈log2 len⌉` (at most 2× overhead); with [`Padding::Eighths`] it learns the length rounded
//! up to the next value of the form `m · 2^k` with `8 ≤ m < 16` (at most 12.5% overhead, 8
//! buckets per doubling). Buckets start at [`MIN_BUCKET`] bytes, so all small images look alike.

/// The smallest bucket, in bytes.
pub const MIN_BUCKET: u64 = 4096;

/// How image lengths are padded before sharing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Padding {
    /// No padding: shares reveal the exact length.
    None,
    /// Round up to a power of two (at least [`MIN_BUCKET`]).
    PowerOfTwo,
    /// Round up to `m · 2^k` with `8 ≤ m < 16` (at least [`MIN_BUCKET`]); the default.
    #[default]
    Eighths,
}

impl Padding {
    /// The padded length for an image of `len` bytes (never less than `len`).
    #[must_use]
    pub fn bucket(self, len: u64) -> u64 {
        match self {
            Padding::None => len,
            Padding::PowerOfTwo => len
                .max(MIN_BUCKET)
                .checked_next_power_of_two()
                .unwrap_or(len),
            Padding::Eighths => {
                let len = len.max(MIN_BUCKET);
                // The step is 1/8 of the largest power of two not above len.
                let step = (1u64 << (63 - len.leading_zeros())) / 8;
                len.div_ceil(step).checked_mul(step).unwrap_or(len)
            }
        }
    }

    /// The name used on the command line and in docs.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Padding::None => "none",
            Padding::PowerOfTwo => "pow2",
            Padding::Eighths => "eighths",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_and_bound_the_overhead() {
        for len in (0..200_000u64)
            .step_by(997)
            .chain([1 << 20, (1 << 20) + 1, 3 << 30])
        {
            let p2 = Padding::PowerOfTwo.bucket(len);
            assert!(p2 >= len && p2.is_power_of_two() && p2 >= MIN_BUCKET);
            assert!(len < MIN_BUCKET || p2 < 2 * len.max(1));
            let e = Padding::Eighths.bucket(len);
            assert!(e >= len && e >= MIN_BUCKET);
            assert!(len < MIN_BUCKET || (e - len) * 8 <= len, "{len} -> {e}");
            assert_eq!(Padding::None.bucket(len), len);
        }
    }

    #[test]
    fn eighths_has_eight_buckets_per_doubling() {
        let buckets: std::collections::BTreeSet<u64> = (65_536..131_072)
            .map(|l| Padding::Eighths.bucket(l))
            .collect();
        assert_eq!(buckets.len(), 9); // 65536 itself, then 8 steps up to 131072
    }
}
