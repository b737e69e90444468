//! Per-method caps on a request's body, before anything of it is decoded.
//!
//! tonic bounds a message per service, so every method would accept the largest any method
//! needs (64 MiB, for storing records). [`BodyLimitLayer`] wraps each request's body in a
//! [`CappedBody`] whose cap is the method's ([`Method::max_request_bytes`]): the body fails
//! with `RESOURCE_EXHAUSTED` as soon as its gRPC frame header (the first 5 bytes) declares a
//! message past the cap, or more bytes arrive than the cap; a request whose `content-length`
//! says more is refused before its body is read at all. A path that names no
//! method gets the smallest cap (the access layer refuses it anyway).

use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::Status;
use tonic::body::Body;
use tonic::codegen::{Bytes, Service, http};

use crate::access::{AccessFuture, Method};

/// A request body that fails once it passes `cap` bytes.
#[derive(Debug)]
pub struct CappedBody {
    inner: Body,
    cap: usize,
    seen: usize,
    /// The first bytes of the body, until the frame header's 5 are in.
    header: Vec<u8>,
    method: &'static str,
}

impl CappedBody {
    /// `inner`, capped at `cap` bytes for `method` (named in the error).
    #[must_use]
    pub fn new(inner: Body, cap: usize, method: &'static str) -> CappedBody {
        CappedBody {
            inner,
            cap,
            seen: 0,
            header: Vec::with_capacity(GRPC_HEADER),
            method,
        }
    }
}

/// Bytes of a gRPC frame's header: a compression flag and the message's length (u32, BE).
const GRPC_HEADER: usize = 5;

fn too_large(method: &str, cap: usize) -> Status {
    Status::resource_exhausted(format!("a {method} request may carry at most {cap} bytes"))
}

impl http_body::Body for CappedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Status>>> {
        let this = &mut *self;
        if this.seen > this.cap {
            return Poll::Ready(Some(Err(too_large(this.method, this.cap))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.seen = this.seen.saturating_add(data.len());
                    if this.header.len() < GRPC_HEADER {
                        let want = GRPC_HEADER - this.header.len();
                        this.header
                            .extend_from_slice(data.get(..want.min(data.len())).unwrap_or(&[]));
                        if let Some(len) = this.header.get(1..GRPC_HEADER) {
                            // The message's declared length, before its bytes are read.
                            let declared = u32::from_be_bytes([len[0], len[1], len[2], len[3]]);
                            if (declared as usize).saturating_add(GRPC_HEADER) > this.cap {
                                this.seen = usize::MAX;
                            }
                        }
                    }
                    if this.seen > this.cap {
                        return Poll::Ready(Some(Err(too_large(this.method, this.cap))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The tower layer that caps every request's body by its method.
#[derive(Debug, Clone, Copy, Default)]
pub struct BodyLimitLayer;

impl<S> tower_layer::Layer<S> for BodyLimitLayer {
    type Service = BodyLimit<S>;

    fn layer(&self, inner: S) -> BodyLimit<S> {
        BodyLimit { inner }
    }
}

/// The service of [`BodyLimitLayer`].
#[derive(Debug, Clone)]
pub struct BodyLimit<S> {
    inner: S,
}

/// The cap of a request path, and the method's name for errors.
fn cap_of(path: &str) -> (usize, &'static str) {
    Method::from_path(path).map_or((64 << 10, "unknown"), |m| (m.max_request_bytes(), m.name()))
}

impl<S, R> Service<http::Request<Body>> for BodyLimit<S>
where
    S: Service<http::Request<Body>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = AccessFuture<http::Response<R>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let (cap, method) = cap_of(request.uri().path());
        let declared = request
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|d| d > cap as u64) {
            let response = too_large(method, cap).into_http();
            return Box::pin(std::future::ready(Ok(response)));
        }
        let request = request.map(|b| Body::new(CappedBody::new(b, cap, method)));
        Box::pin(crate::access::take_ready(&mut self.inner).call(request))
    }
}
