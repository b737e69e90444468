//! `phr_sis::SearchableSISIndex::from_bytes`: the serialised plaintext band index.
//!
//! Documented: "Never panics; any other input gives a typed error", and "the encoding of an
//! index is unique (canonical)"; so a decoded index re-encodes to its input and decodes to an
//! equal index.
#![no_main]

use libfuzzer_sys::fuzz_target;
use phr_sis::SearchableSISIndex;

fuzz_target!(|data: &[u8]| {
    if let Ok(index) = SearchableSISIndex::from_bytes(data) {
        let encoded = index.to_bytes();
        assert!(encoded == data, "a decoded index does not re-encode to its input");
        let again = SearchableSISIndex::from_bytes(&encoded).expect("re-decodes");
        assert!(again == index, "the re-decoded index differs");
    }
});
