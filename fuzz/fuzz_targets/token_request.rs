//! `dealer_free::oprf::tokens::TokenRequest::from_bytes` on raw bytes.
//!
//! Documented: decoding never panics (`dealer_free::wire` module doc and the decoder's
//! doc), and "there is exactly one encoding of each message" (`dealer_free::wire`): a
//! decoded message re-encodes to exactly the input bytes, and those decode to the same value.
#![no_main]

use dealer_free::oprf::tokens::TokenRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = TokenRequest::from_bytes(data) {
        let bytes = msg.to_bytes();
        assert_eq!(&bytes[..], data, "a decoded TokenRequest does not re-encode to its input");
        let again = TokenRequest::from_bytes(&bytes).expect("the re-encoding of a decoded TokenRequest decodes");
        assert_eq!(again, msg);
    }
});
