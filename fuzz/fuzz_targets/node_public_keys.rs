//! The fixed-size identity encodings in `dealer_free::identity`:
//! `NodePublicKeys::from_bytes` (64 bytes, `signing ‖ encryption`), and the two parts it and
//! the signed messages are made of, `VerifyingKey::from_bytes` (the first 32 bytes) and
//! `Signature::from_bytes` (64 bytes, `R ‖ s`).
//!
//! Inputs shorter than 64 bytes are skipped; only the first 64 bytes are used.
//! Documented: non-canonical keys and the identity are refused (`InvalidPoint`), a signature
//! whose `s` is not canonical is refused and `R` is kept as given; so every accepted value
//! re-encodes to its input bytes.
#![no_main]

use dealer_free::identity::{NodePublicKeys, Signature, VerifyingKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(bytes) = data.first_chunk::<64>() else {
        return;
    };
    if let Ok(keys) = NodePublicKeys::from_bytes(bytes) {
        let encoded = keys.to_bytes();
        assert_eq!(&encoded, bytes, "decoded public keys do not re-encode to their input");
        assert_eq!(NodePublicKeys::from_bytes(&encoded).expect("re-decodes"), keys);
    }
    let Some(first) = bytes.first_chunk::<32>() else {
        return;
    };
    if let Ok(key) = VerifyingKey::from_bytes(first) {
        assert_eq!(&key.to_bytes(), first, "a decoded verifying key does not re-encode");
    }
    if let Some(sig) = Signature::from_bytes(bytes) {
        let encoded = sig.to_bytes();
        assert_eq!(&encoded, bytes, "a decoded signature does not re-encode to its input");
        assert_eq!(Signature::from_bytes(&encoded), Some(sig));
    }
});
