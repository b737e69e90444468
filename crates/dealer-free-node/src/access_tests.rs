use std::sync::atomic::{AtomicUsize, Ordering};

use tower_layer::Layer;

use super::*;

/// The method names of `proto/node.proto`'s `Node` service.
fn proto_methods() -> Vec<String> {
    include_str!("../proto/node.proto")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("rpc "))
        .filter_map(|l| l.split('(').next())
        .map(|name| name.trim().to_owned())
        .collect()
}

#[test]
fn every_method_of_the_proto_has_exactly_one_entry() {
    let methods = proto_methods();
    assert_eq!(methods.len(), Method::ALL.len(), "{methods:?}");
    for name in &methods {
        let path = format!("/{SERVICE}/{name}");
        let method = Method::from_path(&path);
        assert!(method.is_some(), "{name} has no entry in the access table");
        assert_eq!(method.map(Method::name), Some(name.as_str()));
    }
    assert_eq!(
        <crate::proto::node_server::NodeServer<crate::server::NodeService> as tonic::server::NamedService>::NAME,
        SERVICE
    );
    assert_eq!(Method::from_path("/dealerfreesis.node.v1.Node/Nope"), None);
    assert_eq!(Method::from_path("/other.Service/Health"), None);
    assert_eq!(Method::from_path("dealerfreesis.node.v1.Node/Health"), None);
}

#[test]
fn a_search_client_gets_no_share_record_or_ceremony() {
    for m in [
        Method::GetShare,
        Method::StoreRecords,
        Method::ExportRecords,
        Method::ReshareRound,
        Method::DkgRound,
        Method::Identity,
        Method::AuditHead,
        Method::DeleteRecords,
        Method::ListRecords,
        Method::ScrubRecords,
        Method::RemoveDamaged,
        Method::CheckBitShares,
    ] {
        assert!(!Role::Search.may_call(m), "search may call {m:?}");
    }
    for m in [
        Method::Health,
        Method::EvaluateTokens,
        Method::Candidates,
        Method::MaskDeal,
        Method::MaskCheck,
        Method::MaskJudge,
        Method::MaskRelease,
        Method::Distances,
    ] {
        assert!(Role::Search.may_call(m), "search may not call {m:?}");
    }
    for m in [
        Method::ExportRecords,
        Method::ReshareRound,
        Method::DkgRound,
        Method::ScrubRecords,
        Method::RemoveDamaged,
        Method::CheckBitShares,
    ] {
        assert!(!Role::Owner.may_call(m), "owner may call {m:?}");
    }
    for m in [
        Method::StoreRecords,
        Method::GetShare,
        Method::DeleteRecords,
        Method::ListRecords,
    ] {
        assert!(Role::Owner.may_call(m), "owner may not call {m:?}");
    }
    assert!(Method::ALL.into_iter().all(|m| Role::Admin.may_call(m)));
}

#[test]
fn roles_and_names_parse_one_way() -> Result<(), Box<dyn std::error::Error>> {
    for r in Role::ALL {
        assert_eq!(r.as_str().parse::<Role>()?, r);
    }
    assert_eq!(
        "root".parse::<Role>(),
        Err(AccessError::UnknownRole("root".into()))
    );
    assert!("Admin".parse::<Role>().is_err());
    // In a config: a missing role is admin (configs written before roles), a bad one refused.
    let old: AuthorizedClient = toml::from_str("name = \"owner\"\nfingerprint = \"x\"")?;
    assert_eq!(old.role, Role::Admin);
    let bad =
        toml::from_str::<AuthorizedClient>("name = \"a\"\nfingerprint = \"x\"\nrole = \"root\"");
    assert!(bad.is_err_and(|e| e.to_string().contains("unknown role \"root\"")));
    for good in ["search-1", "owner_2", "a", "X9"] {
        assert_eq!(good.parse::<ClientName>()?.as_str(), good);
    }
    for bad in [
        "",
        "../x",
        "a/b",
        ".hidden",
        "-x",
        "a b",
        "é",
        &"x".repeat(65),
    ] {
        assert!(
            matches!(bad.parse::<ClientName>(), Err(AccessError::BadName { .. })),
            "{bad:?}"
        );
    }
    Ok(())
}

/// An in-memory gRPC service: counts its calls, answers 200 with the caller it saw.
#[derive(Clone, Default)]
struct Inner {
    calls: Arc<AtomicUsize>,
}

impl Service<http::Request<String>> for Inner {
    type Response = http::Response<String>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<http::Response<String>, std::convert::Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<String>) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let caller = request
            .extensions()
            .get::<Caller>()
            .map(|c| format!("{}:{}", c.name, c.role))
            .unwrap_or_default();
        std::future::ready(Ok(http::Response::new(caller)))
    }
}

/// The peer of a test request: a fingerprint in the extensions, as the TLS info would be.
#[derive(Clone, Copy)]
struct TestPeer([u8; 32]);

fn test_peer(extensions: &http::Extensions) -> Option<[u8; 32]> {
    extensions.get::<TestPeer>().map(|p| p.0)
}

fn client(name: &str, print: u8, role: Role) -> AuthorizedClient {
    AuthorizedClient {
        name: name.into(),
        fingerprint: format!("sha256:{}", crate::hex(&[print; 32])),
        role,
    }
}

fn request(method: &str, peer: Option<u8>) -> Result<http::Request<String>, http::Error> {
    let mut r = http::Request::builder()
        .uri(format!("https://node-1/{SERVICE}/{method}"))
        .body("an undecodable body".to_owned())?;
    if let Some(p) = peer {
        r.extensions_mut().insert(TestPeer([p; 32]));
    }
    Ok(r)
}

#[tokio::test]
async fn the_layer_refuses_before_the_service_is_called() -> Result<(), Box<dyn std::error::Error>>
{
    let inner = Inner::default();
    let calls = Arc::clone(&inner.calls);
    let policy = Policy::new(
        NodeId::new(1)?,
        &[
            client("admin", 1, Role::Admin),
            client("searcher", 2, Role::Search),
        ],
    );
    let mut svc = AccessLayer::with_peer(policy, test_peer).layer(inner);
    let status_of = |r: &http::Response<String>| {
        r.headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let denied = (tonic::Code::PermissionDenied as i32).to_string();
    // A stranger, on any method.
    for method in ["Health", "ExportRecords", "NoSuchMethod"] {
        let r = svc.call(request(method, Some(9))?).await?;
        assert_eq!(status_of(&r), Some(denied.clone()), "{method}");
    }
    // No certificate at all.
    let r = svc.call(request("Health", None)?).await?;
    assert_eq!(
        status_of(&r),
        Some((tonic::Code::Unauthenticated as i32).to_string())
    );
    // A search client on what it may not call.
    for method in [
        "ExportRecords",
        "ReshareRound",
        "DkgRound",
        "GetShare",
        "StoreRecords",
    ] {
        let r = svc.call(request(method, Some(2))?).await?;
        assert_eq!(status_of(&r), Some(denied.clone()), "{method}");
        assert!(
            r.headers()
                .get("grpc-message")
                .is_some_and(|m| m.to_str().is_ok_and(|m| m.contains("searcher"))),
            "the refusal names the caller"
        );
    }
    // A listed client on an unknown path.
    let r = svc.call(request("NoSuchMethod", Some(1))?).await?;
    assert_eq!(
        status_of(&r),
        Some((tonic::Code::Unimplemented as i32).to_string())
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "no refused request reached the service"
    );
    // Allowed calls reach it, carrying their caller.
    let r = svc.call(request("Distances", Some(2))?).await?;
    assert_eq!(r.body(), "searcher:search");
    let r = svc.call(request("ExportRecords", Some(1))?).await?;
    assert_eq!(r.body(), "admin:admin");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    Ok(())
}
