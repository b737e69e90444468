//! Per-method caps on a request's body, before anything of it is decoded.
//!
//! tonic bounds a message per service, so every method would accept the largest any method
//! needs (64 MiB, for storing records). [`BodyLimitLayer`] wraps each request's body in a
//! [`CappedBody`] whose cap is the method's ([`Method::max_request_bytes`]): the body fails
//! with `RESOURCE_EXHAUSTED` as soon as its gRPC frame header (the first 5 bytes) declares a
//! message past the cap, or more bytes arrive than the cap; a request whose `content-length`
//! says more is refused before its body is read at all. A path that names no
//! method gets the smallest cap (the access layer refuses it anyway).
//!
//! All callers together: a body takes the bytes its frame header declares from the node's
//! [`BodyBudget`] before they are read, and gives them back when its request has been
//! answered (its decoded message is gone then too). A body that finds the budget spent is
//! refused with `UNAVAILABLE` (the client retries with backoff), so the request bodies a node
//! holds stay under `max_body_bytes_in_flight` however many clients send at once.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use tonic::Status;
use tonic::body::Body;
use tonic::codegen::{Bytes, Service, http};

use crate::access::{AccessFuture, Method};

/// The bytes of request bodies all callers together may have in the node at once, counted
/// in KiB from each body's declared length.
#[derive(Debug, Clone)]
pub struct BodyBudget {
    kib: Arc<Semaphore>,
    total_kib: u32,
}

impl BodyBudget {
    /// A budget of `bytes` (at least one largest body's worth is always allowed).
    #[must_use]
    pub fn new(bytes: u64) -> BodyBudget {
        let kib = u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, u32::try_from(Semaphore::MAX_PERMITS).unwrap_or(u32::MAX));
        BodyBudget {
            kib: Arc::new(Semaphore::new(kib as usize)),
            total_kib: kib,
        }
    }

    /// Takes `bytes` (a body past the whole budget takes all of it), or `None` if they are
    /// not free now.
    fn take(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        let kib = u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, self.total_kib);
        Arc::clone(&self.kib).try_acquire_many_owned(kib).ok()
    }

    /// Bytes free now.
    #[must_use]
    pub fn free(&self) -> u64 {
        self.kib.available_permits() as u64 * 1024
    }
}

/// Where a body puts the bytes it took from the budget, until its request is answered.
type Held = Arc<Mutex<Option<OwnedSemaphorePermit>>>;

/// A request body that fails once it passes `cap` bytes.
#[derive(Debug)]
pub struct CappedBody {
    inner: Body,
    cap: usize,
    seen: usize,
    /// The first bytes of the body, until the frame header's 5 are in.
    header: Vec<u8>,
    method: &'static str,
    /// The budget, and where the bytes taken from it are kept.
    budget: Option<(BodyBudget, Held)>,
    /// The budget had no room for this body: it fails without reading more.
    refused: bool,
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
            budget: None,
            refused: false,
        }
    }

    /// Takes its declared bytes from `budget` into `held` before reading them.
    fn with_budget(mut self, budget: BodyBudget, held: Held) -> CappedBody {
        self.budget = Some((budget, held));
        self
    }
}

/// The refusal of a body that finds the node's budget for bodies spent.
fn budget_spent(method: &str) -> Status {
    Status::unavailable(format!(
        "the node holds as many request bytes as it may (max_body_bytes_in_flight); this \
         {method} request was not read: retry"
    ))
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
        if this.refused {
            return Poll::Ready(Some(Err(budget_spent(this.method))));
        }
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
                            let total = (declared as usize).saturating_add(GRPC_HEADER);
                            if total > this.cap {
                                this.seen = usize::MAX;
                            } else if let Some((budget, held)) = &this.budget {
                                match budget.take(total) {
                                    Some(permit) => {
                                        if let Ok(mut h) = held.lock() {
                                            *h = Some(permit);
                                        }
                                    }
                                    None => {
                                        this.refused = true;
                                        return Poll::Ready(Some(Err(budget_spent(this.method))));
                                    }
                                }
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

/// The tower layer that caps every request's body by its method, and all bodies together
/// by a [`BodyBudget`].
#[derive(Debug, Clone)]
pub struct BodyLimitLayer {
    budget: BodyBudget,
}

impl BodyLimitLayer {
    /// Caps by method, and all bodies together by `budget`.
    #[must_use]
    pub fn new(budget: BodyBudget) -> BodyLimitLayer {
        BodyLimitLayer { budget }
    }
}

impl<S> tower_layer::Layer<S> for BodyLimitLayer {
    type Service = BodyLimit<S>;

    fn layer(&self, inner: S) -> BodyLimit<S> {
        BodyLimit {
            inner,
            budget: self.budget.clone(),
        }
    }
}

/// The service of [`BodyLimitLayer`].
#[derive(Debug, Clone)]
pub struct BodyLimit<S> {
    inner: S,
    budget: BodyBudget,
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
        let held: Held = Arc::new(Mutex::new(None));
        let budget = self.budget.clone();
        let kept = Arc::clone(&held);
        let request =
            request.map(|b| Body::new(CappedBody::new(b, cap, method).with_budget(budget, kept)));
        let answered = crate::access::take_ready(&mut self.inner).call(request);
        Box::pin(async move {
            let response = answered.await;
            // The request is answered: its body and decoded message are gone.
            if let Ok(mut h) = held.lock() {
                h.take();
            }
            response
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body of one data frame.
    struct Once(Option<Bytes>);

    impl http_body::Body for Once {
        type Data = Bytes;
        type Error = Status;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, Status>>> {
            Poll::Ready(self.0.take().map(|b| Ok(http_body::Frame::data(b))))
        }
    }

    /// A gRPC frame of a `len`-byte message.
    fn framed(len: u32) -> Bytes {
        let mut bytes = vec![0];
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.resize(GRPC_HEADER + len as usize, 7);
        Bytes::from(bytes)
    }

    /// The first frame of a body of a `len`-byte message under `budget`.
    fn first_frame(
        budget: &BodyBudget,
        held: &Held,
        len: u32,
    ) -> Option<Result<http_body::Frame<Bytes>, Status>> {
        let mut body = CappedBody::new(Body::new(Once(Some(framed(len)))), 1 << 20, "StoreRecords")
            .with_budget(budget.clone(), Arc::clone(held));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match http_body::Body::poll_frame(Pin::new(&mut body), &mut cx) {
            Poll::Ready(frame) => frame,
            Poll::Pending => None,
        }
    }

    #[test]
    fn bodies_past_the_budget_together_are_refused_until_one_is_answered() {
        let budget = BodyBudget::new(100 << 10);
        let first: Held = Arc::new(Mutex::new(None));
        assert!(matches!(
            first_frame(&budget, &first, 60 << 10),
            Some(Ok(_))
        ));
        assert!(budget.free() < 41 << 10);
        // A second body of the same size does not fit beside the first: refused unread.
        let second: Held = Arc::new(Mutex::new(None));
        let refused = first_frame(&budget, &second, 60 << 10);
        assert!(
            matches!(&refused, Some(Err(s)) if s.code() == tonic::Code::Unavailable),
            "{refused:?}"
        );
        // A small one fits.
        let small: Held = Arc::new(Mutex::new(None));
        assert!(matches!(first_frame(&budget, &small, 1 << 10), Some(Ok(_))));
        // Once the first request is answered, its bytes are free again.
        first.lock().map(|mut h| h.take()).ok();
        let third: Held = Arc::new(Mutex::new(None));
        assert!(matches!(
            first_frame(&budget, &third, 60 << 10),
            Some(Ok(_))
        ));
        // A body past the method's cap is refused as too large, whatever the budget.
        let big: Held = Arc::new(Mutex::new(None));
        let too_big = first_frame(&BodyBudget::new(1 << 30), &big, 2 << 20);
        assert!(
            matches!(&too_big, Some(Err(s)) if s.code() == tonic::Code::ResourceExhausted),
            "{too_big:?}"
        );
    }
}
