use super::*;
use crate::identity::NodeKeys;
use crate::mpc::local::deal_masks;
use crate::mpc::query::{QueryScope, share_query};
use crate::mpc::{MpcError, SearchError};
use phr_sis::{ImageHash, Threshold};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const T: u8 = 2;

fn servers() -> Vec<NodeId> {
    NodeId::first(3).collect()
}

fn listed(ids: &[ImageId]) -> impl Fn(&[Token], u32) -> Vec<(ImageId, u32)> + '_ {
    move |_, _| ids.iter().map(|id| (*id, 1)).collect()
}

/// Every server's answer to a candidate request of `session` listing `ids`.
fn answered(session: SessionId, ids: &[ImageId]) -> BTreeMap<NodeId, AnsweredQuery> {
    let request = CandidateRequest {
        session,
        min_band_votes: 1,
        tokens: Vec::new(),
    };
    let bounds = QueryBounds {
        max_tokens: 8,
        max_candidates: 100,
    };
    servers()
        .into_iter()
        .map(|s| {
            (
                s,
                answer_candidates(s, &request, bounds, listed(ids))
                    .unwrap()
                    .0,
            )
        })
        .collect()
}

/// The query's distance request to each server, in scope `scope`.
fn requests(
    session: SessionId,
    scope: QueryScope,
    ids: &[ImageId],
    rng: &mut ChaCha20Rng,
) -> Vec<(NodeId, DistanceRequest)> {
    let (commitment, openings) =
        share_query(session, scope, ImageHash(5), T, &servers(), rng).unwrap();
    openings
        .into_iter()
        .map(|(server, opening)| {
            (
                server,
                DistanceRequest {
                    session,
                    server,
                    candidates: ids.to_vec(),
                    commitment: commitment.clone(),
                    opening,
                },
            )
        })
        .collect()
}

#[test]
fn a_request_outside_its_commitments_scope_is_refused() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let th = Threshold::new(T, 3).unwrap();
    let mut pools = deal_masks(th, &servers(), 20, &mut rng).unwrap();
    let (x, y) = (ImageId(1), ImageId(2));
    let session = [1; 32];
    let mut states = answered(session, &[x, y]);
    // The commitment binds candidate x; server 1 is asked for y instead.
    let scope = QueryScope::new([0; 32], 0, &[x]);
    let (server, mut request) = requests(session, scope, &[x], &mut rng).remove(0);
    request.candidates = vec![y];
    let e = states
        .remove(&server)
        .unwrap()
        .check(request, &servers(), pools.get_mut(&server).unwrap())
        .unwrap_err();
    assert!(matches!(e, SearchError::Misaddressed { .. }), "{e}");
    // Nothing was taken from its pool.
    assert_eq!(pools[&server].len(), 20);
}

#[test]
fn masks_a_left_out_server_kept_never_serve_a_distance() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let th = Threshold::new(T, 3).unwrap();
    let mut pools = deal_masks(th, &servers(), 20, &mut rng).unwrap();
    let x = ImageId(1);
    let scope = QueryScope::new([0; 32], 0, &[x]);
    // Query 1 reaches servers 1 and 2 only: their check values would let the querier compute
    // server 3's masks at positions 0 and 1, which server 3 keeps unused.
    let mut states = answered([1; 32], &[x]);
    for (server, request) in requests([1; 32], scope, &[x], &mut rng).into_iter().take(2) {
        let s = states.remove(&server).unwrap();
        s.check(request, &servers(), pools.get_mut(&server).unwrap())
            .unwrap();
    }
    // Query 2, in the same scope: servers 1 and 2 refuse (their masks are spent); server 3
    // checks, but never gets every server's check, so it computes no distance.
    let keys = NodeKeys::generate(NodeId::first(3).last().unwrap(), &mut rng);
    let mut states = answered([2; 32], &[x]);
    let mut third = None;
    for (server, request) in requests([2; 32], scope, &[x], &mut rng) {
        let s = states.remove(&server).unwrap();
        match s.check(request, &servers(), pools.get_mut(&server).unwrap()) {
            Err(SearchError::Mpc(MpcError::MasksUsed { .. })) => {
                assert_ne!(server.get(), 3);
            }
            Ok((checked, check)) => {
                assert_eq!(server.get(), 3);
                third = Some((checked, check.sign(&keys, &mut rng)));
            }
            Err(e) => panic!("{e}"),
        }
    }
    let (checked, signed) = third.unwrap();
    let roster = BTreeMap::from([(signed.check.server, keys.public())]);
    let relay = ChecksRelay {
        session: [2; 32],
        checks: vec![signed],
    };
    let e = checked.verify(&relay, &roster, T, &mut rng).unwrap_err();
    assert!(
        matches!(
            e,
            SearchError::Rejected(crate::mpc::query::QueryRejection::MissingChecks(_))
        ),
        "{e}"
    );
}
