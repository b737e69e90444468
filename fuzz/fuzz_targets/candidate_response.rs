//! `dealer_free::mpc::messages::CandidateResponse::from_bytes` on raw bytes.
//!
//! Documented: decoding never panics (`dealer_free::wire` module doc and the decoder's
//! doc), and "there is exactly one encoding of each message" (`dealer_free::wire`): a
//! decoded message re-encodes to exactly the input bytes, and those decode to the same value.
#![no_main]

use dealer_free::mpc::messages::CandidateResponse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = CandidateResponse::from_bytes(data) {
        let bytes = msg.to_bytes().expect("a decoded CandidateResponse re-encodes");
        assert_eq!(&bytes[..], data, "a decoded CandidateResponse does not re-encode to its input");
        let again = CandidateResponse::from_bytes(&bytes).expect("the re-encoding of a decoded CandidateResponse decodes");
        assert_eq!(again, msg);
    }
});
