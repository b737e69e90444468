//! `dealer_free_sim::deployment::unframe_payload`: the marker byte (raw or deflate) and
//! optional deflate stream in front of a share's payload.
//!
//! Documented: an error for an empty payload, an unknown marker or a bad deflate stream,
//! inflating at most `MAX_PADDED_LEN` bytes. Deflate is not canonical, so the round trip is
//! on the file: framing an unframed file again (raw and compressed) unframes to that file.
#![no_main]

use dealer_free_sim::deployment::{frame_payload, unframe_payload};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = unframe_payload(data) {
        assert!(file.len() as u64 <= phr_sis::share::MAX_PADDED_LEN);
        // Re-compressing is costly: only for files of at most 1 MiB.
        if file.len() <= 1 << 20 {
            for compress in [false, true] {
                let framed = frame_payload(&file, compress);
                let again = unframe_payload(&framed).expect("a framed file unframes");
                assert!(again == file, "framing and unframing changed the file");
            }
        }
    }
});
