//! `dealer_free::mpc::masks::check::MaskCommitment::from_bytes` on raw bytes.
//!
//! Documented: decoding never panics (`dealer_free::wire` module doc and the decoder's
//! doc), and "there is exactly one encoding of each message" (`dealer_free::wire`): a
//! decoded message re-encodes to exactly the input bytes, and those decode to the same value.
#![no_main]

use dealer_free::mpc::masks::check::MaskCommitment;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = MaskCommitment::from_bytes(data) {
        let bytes = msg.to_bytes();
        assert_eq!(&bytes[..], data, "a decoded MaskCommitment does not re-encode to its input");
        let again = MaskCommitment::from_bytes(&bytes).expect("the re-encoding of a decoded MaskCommitment decodes");
        assert_eq!(again, msg);
    }
});
