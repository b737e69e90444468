//! `dealer_free::mpc::HashBitShares::from_bytes`: a node's stored shares of one hash's
//! 64 bits (read back from its store).
//!
//! Documented: `8 · 64` bytes of little-endian field elements, `None` for a wrong length or
//! a non-canonical element; so accepted bytes re-encode to themselves. `HashBitShares` has
//! no `PartialEq` (it is secret), so the values are compared through `shares()`.
#![no_main]

use dealer_free::mpc::HashBitShares;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(shares) = HashBitShares::from_bytes(data) {
        let encoded = shares.to_bytes();
        assert_eq!(&encoded[..], data, "decoded bit shares do not re-encode to their input");
        let again = HashBitShares::from_bytes(&encoded).expect("re-encoded bit shares decode");
        assert_eq!(again.shares(), shares.shares());
    }
});
