//! The decoders of the secure search's signed, sealed and relayed messages and of Stage-1's
//! record, on raw bytes: `SignedQueryCheck`, `ChecksRelay`, `MaskOrder`,
//! `SignedMaskCommitment`, `SealedMaskDeal`, `SignedMaskCheck` and `StoredRecord`. The first
//! input byte picks the decoder (modulo 7).
//!
//! Documented: decoding never panics, and each encoding is canonical: a decoded message
//! re-encodes to exactly the input bytes (signatures are not verified by the decoders).
#![no_main]

use dealer_free::mpc::masks::session::{
    MaskOrder, SealedMaskDeal, SignedMaskCheck, SignedMaskCommitment,
};
use dealer_free::mpc::messages::ChecksRelay;
use dealer_free::mpc::query::SignedQueryCheck;
use dealer_free::record::StoredRecord;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&select, bytes)) = data.split_first() else {
        return;
    };
    let again: Option<Vec<u8>> = match select % 7 {
        0 => SignedQueryCheck::from_bytes(bytes).ok().map(|m| m.to_bytes()),
        1 => ChecksRelay::from_bytes(bytes)
            .ok()
            .map(|m| m.to_bytes().expect("a decoded relay re-encodes")),
        2 => MaskOrder::from_bytes(bytes).ok().map(|m| m.to_bytes()),
        3 => SignedMaskCommitment::from_bytes(bytes).ok().map(|m| m.to_bytes()),
        4 => SealedMaskDeal::from_bytes(bytes).ok().map(|m| m.to_bytes()),
        5 => SignedMaskCheck::from_bytes(bytes).ok().map(|m| m.to_bytes()),
        _ => StoredRecord::from_bytes(bytes)
            .ok()
            .map(|m| m.to_bytes().expect("a decoded record re-encodes").to_vec()),
    };
    if let Some(again) = again {
        assert_eq!(again, bytes, "a decoded message does not re-encode to its input");
    }
});
