//! [`SecretBytes`]: a byte buffer for secrets (shares, combined secrets) that is wiped when
//! dropped, and a small pool that keeps wiped buffers of 64 KiB and more for the next one.
//!
//! # Guarantees
//! - **Wiped on drop.** Every byte of the allocation, spare capacity included, is overwritten
//!   with zeros behind an optimisation barrier (`zeroize`'s bulk slice path: one `memset`, not
//!   a volatile write per byte) before the buffer is freed or pooled.
//! - **The pool holds zeros only.** A buffer enters the pool after that wipe, so the pool never
//!   holds secret bytes; a buffer taken from it is handed out as zeros, exactly as a fresh
//!   `vec![0; len]` would be.
//! - **Why the pool.** A freshly allocated megabyte costs one page fault per 4 KiB page when it
//!   is first written (about 1.5 µs each on the VM this was measured on: more than computing
//!   the bytes), and glibc returns freed heap tops over about 2 MiB to the system, so splitting
//!   megabytes into fresh shares faulted in every page of every share on each call. With the
//!   pool a steady caller's shares reuse pages already mapped.
//! - **Bounded.** Buffers under 64 KiB are left to the allocator (it reuses them without the
//!   kernel's help); the pool keeps at most 32 MiB of buffers (`POOL_BYTES`), dropping the
//!   oldest first. A process that once handled large secrets keeps at most that much zeroed
//!   memory for later ones.

use std::collections::VecDeque;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Buffers with at least this capacity are pooled when dropped.
const POOL_MIN: usize = 64 * 1024;
/// Bytes of capacity the pool keeps at most.
const POOL_BYTES: usize = 32 * 1024 * 1024;

/// Wiped buffers, oldest first; each has `len == capacity` and holds zeros only.
struct Pool {
    buffers: VecDeque<Vec<u8>>,
    bytes: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    buffers: VecDeque::new(),
    bytes: 0,
});

/// A pooled buffer of at least `len` bytes (the smallest that fits), cut to `len` zeros.
fn take_pooled(len: usize) -> Option<Vec<u8>> {
    if len < POOL_MIN {
        return None;
    }
    let mut pool = POOL.lock().ok()?;
    let (at, _) = pool
        .buffers
        .iter()
        .enumerate()
        .filter(|(_, b)| b.capacity() >= len)
        .min_by_key(|(_, b)| b.capacity())?;
    let mut buffer = pool.buffers.remove(at)?;
    pool.bytes -= buffer.capacity();
    drop(pool);
    // All zeros up to the capacity: the cut-off part stays zero in the spare capacity.
    buffer.truncate(len);
    Some(buffer)
}

/// Keeps `buffer` (wiped: `len == capacity`, all zeros) for reuse, within the pool's bound.
fn give_pooled(buffer: Vec<u8>) {
    let cap = buffer.capacity();
    if !(POOL_MIN..=POOL_BYTES).contains(&cap) {
        return;
    }
    let Ok(mut pool) = POOL.lock() else {
        return;
    };
    let mut evicted = Vec::new();
    while pool.bytes + cap > POOL_BYTES {
        let Some(old) = pool.buffers.pop_front() else {
            break;
        };
        pool.bytes -= old.capacity();
        evicted.push(old);
    }
    pool.bytes += cap;
    pool.buffers.push_back(buffer);
    drop(pool);
    // Evicted buffers hold zeros only; they are freed outside the lock.
    drop(evicted);
}

/// Secret bytes: a byte vector wiped when dropped (or [`Zeroize::zeroize`]d), with a redacted
/// `Debug` and constant-time equality. Reads and writes go through `Deref<Target = [u8]>`.
///
/// The wipe is a bulk `memset` behind an optimisation barrier (`zeroize`'s slice path), about
/// as fast as writing the bytes; `Zeroizing<Vec<u8>>` wipes byte by byte, several times slower
/// on megabytes. Buffers of 64 KiB and more are kept, wiped, for the next `SecretBytes` (see
/// the module documentation).
#[derive(Clone, Default)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// `len` zero bytes (a pooled buffer when one fits, else a fresh allocation).
    #[must_use]
    pub fn zeroed(len: usize) -> SecretBytes {
        SecretBytes(take_pooled(len).unwrap_or_else(|| vec![0; len]))
    }

    /// The bytes as a slice.
    #[must_use]
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// Shortens this to `len` bytes, wiping the bytes cut off; no effect if it is not longer.
    pub fn truncate(&mut self, len: usize) {
        if let Some(tail) = self.0.get_mut(len..) {
            tail.zeroize();
            self.0.truncate(len);
        }
    }

    /// Makes this exactly `len` bytes long for overwriting: bytes beyond `len` are wiped and
    /// dropped, missing ones zero-filled; a buffer too small is replaced (and the old one
    /// wiped) rather than grown, so no unwiped copy is left behind. The first `len` bytes are
    /// left as they were: the caller overwrites them all.
    pub(crate) fn resize_for_overwrite(&mut self, len: usize) {
        if self.0.capacity() < len {
            *self = SecretBytes::zeroed(len);
        } else if self.0.len() >= len {
            self.truncate(len);
        } else {
            self.0.resize(len, 0);
        }
    }

    /// The bytes, moved into a [`Zeroizing`] vector (for APIs that want one; note that it
    /// wipes byte by byte, and that its buffer does not go back to the pool).
    #[must_use]
    pub fn into_zeroizing(mut self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(std::mem::take(&mut self.0))
    }
}

impl From<Vec<u8>> for SecretBytes {
    /// Takes ownership of `bytes` (earlier copies or reallocations of it are not wiped).
    fn from(bytes: Vec<u8>) -> SecretBytes {
        SecretBytes(bytes)
    }
}

impl Deref for SecretBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl DerefMut for SecretBytes {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl AsRef<[u8]> for SecretBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Zeroize for SecretBytes {
    /// Wipes every byte of the allocation (spare capacity included) and empties it.
    fn zeroize(&mut self) {
        self.0.as_mut_slice().zeroize();
        self.0.spare_capacity_mut().zeroize();
        self.0.clear();
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        if self.0.capacity() < POOL_MIN {
            self.zeroize();
            return;
        }
        let mut buffer = std::mem::take(&mut self.0);
        // The whole allocation as the slice (zero-filling the spare capacity), then one bulk
        // wipe of it behind the barrier.
        buffer.resize(buffer.capacity(), 0);
        buffer.as_mut_slice().zeroize();
        give_pooled(buffer);
    }
}

impl ZeroizeOnDrop for SecretBytes {}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<redacted, {} bytes>)", self.0.len())
    }
}

impl ConstantTimeEq for SecretBytes {
    /// Constant time in the bytes (the lengths are public).
    fn ct_eq(&self, other: &SecretBytes) -> Choice {
        self.0.as_slice().ct_eq(other.0.as_slice())
    }
}

impl PartialEq for SecretBytes {
    fn eq(&self, other: &SecretBytes) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for SecretBytes {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every buffer in the pool is all zeros, with `len == capacity`, and the count is right.
    fn assert_pool_holds_zeros_only() {
        let pool = POOL.lock().unwrap();
        let mut bytes = 0;
        for b in &pool.buffers {
            assert_eq!(b.len(), b.capacity());
            assert!(
                b.iter().all(|&x| x == 0),
                "a pooled buffer holds non-zero bytes"
            );
            bytes += b.capacity();
        }
        assert_eq!(bytes, pool.bytes);
        assert!(pool.bytes <= POOL_BYTES);
    }

    #[test]
    fn dropped_buffers_are_pooled_wiped_and_come_back_as_zeros() {
        // Lengths no other test of the crate uses, so that this test finds its own buffers.
        let len = POOL_MIN + 4_093;
        for round in 0..3u8 {
            let mut secret = SecretBytes::zeroed(len);
            assert_eq!(secret.len(), len);
            assert!(secret.iter().all(|&b| b == 0), "round {round}: not zeros");
            secret.fill(0xA5 ^ round);
            secret.truncate(len - 100);
            assert_eq!(secret.len(), len - 100);
            drop(secret);
            assert_pool_holds_zeros_only();
        }
        // A larger request than any pooled buffer of this size gets a fresh one of its own.
        let big = SecretBytes::zeroed(2 * len + 1);
        assert!(big.0.capacity() > 2 * len);
        assert!(big.iter().all(|&b| b == 0));
    }

    #[test]
    fn the_pool_stays_within_its_bound() {
        let many: Vec<SecretBytes> = (0..40)
            .map(|i| {
                let mut s = SecretBytes::zeroed(1024 * 1024 + i);
                s.fill(0x5A);
                s
            })
            .collect();
        drop(many);
        assert_pool_holds_zeros_only();
        // A buffer larger than the whole pool is freed, not kept.
        drop(SecretBytes::from(vec![1u8; POOL_BYTES + 1]));
        assert_pool_holds_zeros_only();
    }

    #[test]
    fn small_buffers_are_wiped_and_freed() {
        let mut s = SecretBytes::zeroed(100);
        s.fill(7);
        s.zeroize();
        assert!(s.is_empty());
        assert!(s.0.capacity() >= 100, "zeroize keeps the allocation");
    }
}
