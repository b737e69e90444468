//! `dealer_free::dkg::DkgMessage::from_bytes(bytes, threshold)`: every DKG round's message
//! (deal, complaint, justification, confirmation) on raw bytes.
//!
//! The first input byte picks the session's `(t, n)` from a fixed list; the rest is the
//! message. Documented: decoding never panics (`dealer_free::wire`), and every message has
//! exactly one encoding, so a decoded message's `to_bytes` is the input, which decodes to the
//! same value.
#![no_main]

use dealer_free::dkg::DkgMessage;
use libfuzzer_sys::fuzz_target;
use phr_sis::Threshold;

/// `(t, n)` pairs: the smallest, the experiment's 3-of-5, a larger odd and an even one.
const THRESHOLDS: [(u8, u8); 4] = [(1, 1), (2, 3), (3, 5), (4, 8)];

fuzz_target!(|data: &[u8]| {
    let Some((&select, bytes)) = data.split_first() else {
        return;
    };
    let (t, n) = THRESHOLDS[usize::from(select) % THRESHOLDS.len()];
    let threshold = Threshold::new(t, n).expect("a valid threshold");
    if let Ok(msg) = DkgMessage::from_bytes(bytes, threshold) {
        let encoded = match &msg {
            DkgMessage::Deal(m) => m.to_bytes(),
            DkgMessage::Complaint(m) => m.to_bytes(),
            DkgMessage::Justification(m) => m.to_bytes(),
            DkgMessage::Confirmation(m) => m.to_bytes(),
        };
        assert_eq!(encoded, bytes, "a decoded DKG message does not re-encode to its input");
        let again = DkgMessage::from_bytes(&encoded, threshold)
            .expect("the re-encoding of a decoded DKG message decodes");
        assert_eq!(again, msg);
    }
});
