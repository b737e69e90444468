//! `dealer_free::vss::{FeldmanCommitment, PedersenCommitment}::from_bytes(bytes, threshold)`:
//! the commitments carried inside DKG deals and justifications, decoded on their own.
//!
//! The first input byte picks `(t, n)` and which commitment; the rest is the encoding.
//! Documented: `32·t` bytes of compressed points, non-canonical points and the identity
//! refused; so an accepted encoding re-encodes to the input and decodes to the same value.
#![no_main]

use dealer_free::vss::{FeldmanCommitment, PedersenCommitment};
use libfuzzer_sys::fuzz_target;
use phr_sis::Threshold;

const THRESHOLDS: [(u8, u8); 4] = [(1, 1), (2, 3), (3, 5), (4, 8)];

fuzz_target!(|data: &[u8]| {
    let Some((&select, bytes)) = data.split_first() else {
        return;
    };
    let (t, n) = THRESHOLDS[usize::from(select >> 1) % THRESHOLDS.len()];
    let threshold = Threshold::new(t, n).expect("a valid threshold");
    if select & 1 == 0 {
        if let Ok(c) = FeldmanCommitment::from_bytes(bytes, threshold) {
            let encoded = c.to_bytes();
            assert_eq!(encoded, bytes, "a decoded Feldman commitment does not re-encode");
            let again = FeldmanCommitment::from_bytes(&encoded, threshold).expect("re-decodes");
            assert_eq!(again, c);
        }
    } else if let Ok(c) = PedersenCommitment::from_bytes(bytes, threshold) {
        let encoded = c.to_bytes();
        assert_eq!(encoded, bytes, "a decoded Pedersen commitment does not re-encode");
        let again = PedersenCommitment::from_bytes(&encoded, threshold).expect("re-decodes");
        assert_eq!(again, c);
    }
});
