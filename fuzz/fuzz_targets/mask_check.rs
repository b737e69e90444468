//! `dealer_free::mpc::masks::check::MaskCheck::from_bytes` on raw bytes.
//!
//! Documented: decoding never panics (`dealer_free::wire` module doc and the decoder's
//! doc), and "there is exactly one encoding of each message" (`dealer_free::wire`): a
//! decoded message re-encodes to exactly the input bytes, and those decode to the same value.
#![no_main]

use dealer_free::mpc::masks::check::MaskCheck;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = MaskCheck::from_bytes(data) {
        let bytes = msg.to_bytes();
        assert_eq!(&bytes[..], data, "a decoded MaskCheck does not re-encode to its input");
        let again = MaskCheck::from_bytes(&bytes).expect("the re-encoding of a decoded MaskCheck decodes");
        assert_eq!(again, msg);
    }
});
