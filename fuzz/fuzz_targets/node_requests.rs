//! Prost decoding of every request message of the node's gRPC service
//! (`dealer_free_node::proto`, from `crates/dealer-free-node/proto/node.proto`): what a
//! node decodes from any peer or client before its handlers run.
//!
//! The first input byte picks the message type (modulo the 16 request types), the rest is
//! the protobuf encoding. Protobuf encodings are not canonical (field order, repeated
//! fields, unknown fields dropped), so the round trip is on values: a decoded message,
//! re-encoded with `encode_to_vec`, decodes to an equal message.
#![no_main]

use dealer_free_node::proto;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fn round_trip<M: Message + Default + PartialEq + std::fmt::Debug>(bytes: &[u8]) {
    if let Ok(msg) = M::decode(bytes) {
        let encoded = msg.encode_to_vec();
        assert_eq!(encoded.len(), msg.encoded_len());
        let again = M::decode(encoded.as_slice()).expect("a re-encoded message decodes");
        assert_eq!(again, msg);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&select, bytes)) = data.split_first() else {
        return;
    };
    match select % 16 {
        0 => round_trip::<proto::HealthRequest>(bytes),
        1 => round_trip::<proto::IdentityRequest>(bytes),
        2 => round_trip::<proto::DkgRoundRequest>(bytes),
        3 => round_trip::<proto::EvaluateTokensRequest>(bytes),
        4 => round_trip::<proto::StoreRecordsRequest>(bytes),
        5 => round_trip::<proto::GetShareRequest>(bytes),
        6 => round_trip::<proto::CandidatesRequest>(bytes),
        7 => round_trip::<proto::MaskDealRequest>(bytes),
        8 => round_trip::<proto::MaskCheckRequest>(bytes),
        9 => round_trip::<proto::DistancesRequest>(bytes),
        10 => round_trip::<proto::AuditHeadRequest>(bytes),
        11 => round_trip::<proto::ReshareRoundRequest>(bytes),
        12 => round_trip::<proto::MaskJudgeRequest>(bytes),
        13 => round_trip::<proto::MaskReleaseRequest>(bytes),
        14 => round_trip::<proto::QueryCheckRequest>(bytes),
        _ => round_trip::<proto::ExportRecordsRequest>(bytes),
    }
});
