//! `phr_sis::token_index::TokenIndex::from_bytes`: a node's serialised index of band tokens.
//!
//! Documented (module doc, binary format): "Canonical; decoding never panics"; so a decoded
//! index re-encodes to its input and decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use phr_sis::TokenIndex;

fuzz_target!(|data: &[u8]| {
    if let Ok(index) = TokenIndex::from_bytes(data) {
        let encoded = index.to_bytes();
        assert_eq!(encoded, data, "a decoded token index does not re-encode to its input");
        assert_eq!(TokenIndex::from_bytes(&encoded).expect("re-decodes"), index);
    }
});
