//! `phr_sis::share::Share::from_bytes`: one node's share of one image, as stored and sent.
//!
//! Documented (`share::format`): "never panics, whatever the input", and "the encoding is
//! canonical ... one share has exactly one encoding"; so a decoded share re-encodes to its
//! input and decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use phr_sis::share::Share;

fuzz_target!(|data: &[u8]| {
    if let Ok(share) = Share::from_bytes(data) {
        let encoded = share.to_bytes();
        assert_eq!(encoded, data, "a decoded share does not re-encode to its input");
        assert_eq!(Share::from_bytes(&encoded).expect("a re-encoded share decodes"), share);
    }
});
