//! The tower layer that counts every request of the gRPC service and times it.
//!
//! [`MetricsLayer`] is the outermost of the node's layers, so it sees every request that
//! reaches the service, those the access check or the body caps refuse included. A request
//! is counted once, when its status is known:
//!
//! * a reply whose head carries `grpc-status` (an error, answered without a body) when the
//!   head is ready;
//! * any other reply when its body yields the trailers with `grpc-status`;
//! * a request whose future or reply body is dropped first (its deadline passed, the client
//!   went away) as `CANCELLED`.
//!
//! Its latency runs from the request's arrival until then. The method label is the path's
//! method or `unknown`; nothing else of the request is read.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use tonic::codegen::{Service, http};

use super::{Metrics, code_name};
use crate::access::{AccessFuture, Method, take_ready};

/// The layer; without metrics it passes every request through untouched.
#[derive(Debug, Clone, Default)]
pub struct MetricsLayer {
    metrics: Option<Arc<Metrics>>,
}

impl MetricsLayer {
    /// The layer that counts into `metrics`, or counts nothing with `None`.
    #[must_use]
    pub fn new(metrics: Option<Arc<Metrics>>) -> MetricsLayer {
        MetricsLayer { metrics }
    }
}

impl<S> tower_layer::Layer<S> for MetricsLayer {
    type Service = Metered<S>;

    fn layer(&self, inner: S) -> Metered<S> {
        Metered {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service [`MetricsLayer`] wraps around the node's other layers.
#[derive(Debug, Clone)]
pub struct Metered<S> {
    inner: S,
    metrics: Option<Arc<Metrics>>,
}

/// One request being answered: counted when finished, or as `CANCELLED` when dropped first.
struct Call {
    metrics: Arc<Metrics>,
    method: &'static str,
    start: Instant,
    done: bool,
}

impl Call {
    fn finish(mut self, code: &'static str) {
        self.record(code);
    }

    fn record(&mut self, code: &'static str) {
        if !self.done {
            self.done = true;
            self.metrics
                .record(self.method, code, self.start.elapsed().as_secs_f64());
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.record("CANCELLED");
    }
}

/// The code of a `grpc-status` header or trailer, if there is one.
fn status_of(headers: &http::HeaderMap) -> Option<&'static str> {
    let value = headers.get("grpc-status")?;
    let code = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<i32>().ok())
        .unwrap_or(2);
    Some(code_name(code))
}

impl<S, B, R> Service<http::Request<B>> for Metered<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: http_body::Body + Unpin + Send + 'static,
{
    type Response = http::Response<MeteredBody<R>>;
    type Error = S::Error;
    type Future = AccessFuture<http::Response<MeteredBody<R>>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let call = self.metrics.as_ref().map(|m| Call {
            metrics: Arc::clone(m),
            method: Method::from_path(request.uri().path()).map_or("unknown", Method::name),
            start: Instant::now(),
            done: false,
        });
        let answered = take_ready(&mut self.inner).call(request);
        Box::pin(async move {
            let response = answered.await?;
            let call = match call {
                Some(call) => match status_of(response.headers()) {
                    Some(code) => {
                        call.finish(code);
                        None
                    }
                    None => Some(call),
                },
                None => None,
            };
            Ok(response.map(|inner| MeteredBody { inner, call }))
        })
    }
}

/// A reply body that counts its request when its trailers pass (or as `CANCELLED` when it
/// is dropped before).
pub struct MeteredBody<R> {
    inner: R,
    call: Option<Call>,
}

impl<R: std::fmt::Debug> std::fmt::Debug for MeteredBody<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeteredBody")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<R: http_body::Body + Unpin> http_body::Body for MeteredBody<R> {
    type Data = R::Data;
    type Error = R::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<R::Data>, R::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        let code = match &polled {
            Poll::Ready(Some(Ok(frame))) => frame
                .trailers_ref()
                .map(|t| status_of(t).unwrap_or("UNKNOWN")),
            // A body that fails or ends without a status: the client sees no status either.
            Poll::Ready(Some(Err(_)) | None) => Some("UNKNOWN"),
            Poll::Pending => None,
        };
        if let Some(code) = code
            && let Some(call) = this.call.take()
        {
            call.finish(code);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Snapshot, Source};
    use http_body::Body as _;
    use tonic::codegen::Bytes;

    fn metrics() -> Arc<Metrics> {
        let source: Source = Arc::new(Snapshot::default);
        let Ok(node) = phr_sis::NodeId::new(1) else {
            panic!("1 is a node id");
        };
        Metrics::new(node, source)
    }

    /// A gRPC reply: a message, then trailers with `code`.
    #[derive(Debug, Default)]
    struct Reply {
        sent: u8,
        code: Option<i32>,
    }

    impl http_body::Body for Reply {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            self.sent += 1;
            Poll::Ready(match self.sent {
                1 => Some(Ok(http_body::Frame::data(Bytes::from_static(
                    b"\0\0\0\0\0",
                )))),
                2 => {
                    let mut t = http::HeaderMap::new();
                    let code = self.code.unwrap_or(0).to_string();
                    if let Ok(v) = http::HeaderValue::from_str(&code) {
                        t.insert("grpc-status", v);
                    }
                    Some(Ok(http_body::Frame::trailers(t)))
                }
                _ => None,
            })
        }
    }

    /// Answers `/…/Health` with an OK reply, `/…/GetShare` with a trailers-only
    /// `NOT_FOUND`, anything else never.
    #[derive(Debug, Clone)]
    struct Fake;

    impl Service<http::Request<()>> for Fake {
        type Response = http::Response<Reply>;
        type Error = std::convert::Infallible;
        type Future = AccessFuture<http::Response<Reply>, Self::Error>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: http::Request<()>) -> Self::Future {
            let path = request.uri().path().to_owned();
            Box::pin(async move {
                if path.ends_with("/Health") {
                    Ok(http::Response::new(Reply::default()))
                } else if path.ends_with("/GetShare") {
                    let mut r = http::Response::new(Reply::default());
                    r.headers_mut()
                        .insert("grpc-status", http::HeaderValue::from_static("5"));
                    Ok(r)
                } else {
                    std::future::pending().await
                }
            })
        }
    }

    fn request(method: &str) -> http::Request<()> {
        let mut r = http::Request::new(());
        if let Ok(uri) = format!("/dealerfreesis.node.v1.Node/{method}").parse() {
            *r.uri_mut() = uri;
        }
        r
    }

    async fn drain<B: http_body::Body + Unpin>(mut body: B) {
        while std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx))
            .await
            .is_some()
        {}
    }

    #[tokio::test]
    async fn each_request_is_counted_once_with_its_status_or_as_cancelled() {
        let m = metrics();
        let mut svc = tower_layer::Layer::layer(&MetricsLayer::new(Some(Arc::clone(&m))), Fake);
        // OK in the trailers: counted when the body has passed them, not before.
        let Ok(ok) = svc.call(request("Health")).await;
        assert!(!m.render().contains("method=\"Health\""));
        drain(ok.into_body()).await;
        // An error in the head: counted at once.
        let Ok(_nf) = svc.call(request("GetShare")).await;
        // A request dropped before its reply, one whose body is dropped unread, and a path
        // that names no method.
        let pending = svc.call(request("Distances"));
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut pending = pending;
        assert!(pending.as_mut().poll(&mut cx).is_pending());
        drop(pending);
        let Ok(unread) = svc.call(request("Health")).await;
        drop(unread);
        let Ok(other) = svc.call(request("Nope/../Health")).await;
        drain(other.into_body()).await;
        let text = m.render();
        for line in [
            "rpc_requests_total{method=\"Health\",code=\"OK\"} 1",
            "rpc_requests_total{method=\"Health\",code=\"CANCELLED\"} 1",
            "rpc_requests_total{method=\"GetShare\",code=\"NOT_FOUND\"} 1",
            "rpc_requests_total{method=\"Distances\",code=\"CANCELLED\"} 1",
            "rpc_duration_seconds_count{method=\"Health\"} 2",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
        assert!(!text.contains("Nope"), "{text}");
        assert!(text.contains("method=\"unknown\""), "{text}");
    }

    #[tokio::test]
    async fn without_metrics_the_layer_passes_replies_through() {
        let mut svc = tower_layer::Layer::layer(&MetricsLayer::new(None), Fake);
        let Ok(ok) = svc.call(request("Health")).await;
        let mut body = ok.into_body();
        let mut frames = 0;
        while std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx))
            .await
            .is_some()
        {
            frames += 1;
        }
        assert_eq!(frames, 2);
    }
}
