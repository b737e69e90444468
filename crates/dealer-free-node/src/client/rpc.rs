//! One RPC of the node service as a type: each request type knows its method and its reply,
//! so that the client's one call path ([`super::ClusterClient`]'s `call`) builds, sends,
//! retries and counts every call the same way.

use std::future::Future;
use std::pin::Pin;

use tonic::transport::Channel;
use tonic::{Response, Status};

use crate::access::Method;
use crate::proto;
use crate::proto::node_client::NodeClient;

/// The future of one call.
pub(crate) type Call<R> = Pin<Box<dyn Future<Output = Result<Response<R>, Status>> + Send>>;

/// A request of the node service.
pub(crate) trait Rpc: prost::Message + Clone + Send + Sync + 'static {
    /// Its reply.
    type Reply: prost::Message + Send + 'static;
    /// Its method.
    const METHOD: Method;
    /// Sends it on `client`.
    fn send(self, client: NodeClient<Channel>) -> Call<Self::Reply>;
}

macro_rules! rpc {
    ($($request:ident => $reply:ident, $call:ident, $method:ident;)*) => {$(
        impl Rpc for proto::$request {
            type Reply = proto::$reply;
            const METHOD: Method = Method::$method;
            fn send(self, mut client: NodeClient<Channel>) -> Call<Self::Reply> {
                Box::pin(async move { client.$call(self).await })
            }
        }
    )*};
}

rpc! {
    HealthRequest => HealthReply, health, Health;
    IdentityRequest => IdentityReply, identity, Identity;
    DkgRoundRequest => DkgRoundReply, dkg_round, DkgRound;
    EvaluateTokensRequest => EvaluateTokensReply, evaluate_tokens, EvaluateTokens;
    StoreRecordsRequest => StoreRecordsReply, store_records, StoreRecords;
    GetShareRequest => GetShareReply, get_share, GetShare;
    CandidatesRequest => CandidatesReply, candidates, Candidates;
    MaskDealRequest => MaskDealReply, mask_deal, MaskDeal;
    MaskCheckRequest => MaskCheckReply, mask_check, MaskCheck;
    MaskJudgeRequest => MaskJudgeReply, mask_judge, MaskJudge;
    MaskReleaseRequest => MaskReleaseReply, mask_release, MaskRelease;
    QueryCheckRequest => QueryCheckReply, query_check, QueryCheck;
    DistancesRequest => DistancesReply, distances, Distances;
    AuditHeadRequest => AuditHeadReply, audit_head, AuditHead;
    ReshareRoundRequest => ReshareRoundReply, reshare_round, ReshareRound;
    ExportRecordsRequest => ExportRecordsReply, export_records, ExportRecords;
    DeleteRecordsRequest => DeleteRecordsReply, delete_records, DeleteRecords;
    ListRecordsRequest => ListRecordsReply, list_records, ListRecords;
    ScrubRecordsRequest => ScrubRecordsReply, scrub_records, ScrubRecords;
    RemoveDamagedRequest => RemoveDamagedReply, remove_damaged, RemoveDamaged;
    CheckBitSharesRequest => CheckBitSharesReply, check_bit_shares, CheckBitShares;
}
