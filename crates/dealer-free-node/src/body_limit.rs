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

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use tonic::Status;
use tonic::body::Body;
use tonic::codegen::{Bytes, Service, http};

use crate::access::{AccessFuture, Method};

/// Bodies up to this many bytes take nothing from the budget: their count is bounded by the
/// callers' shares of the work queue, and the node's small requests (health, a share, a
/// key ceremony's small rounds) are never refused for want of it.
pub const SMALL_BODY: usize = 64 << 10;

/// The bytes of request bodies the node holds at once, counted in KiB from each body's
/// declared length: all callers together, and each caller at most a quarter of that, so no
/// one caller can take it all.
#[derive(Debug, Clone)]
pub struct BodyBudget {
    total: Arc<Semaphore>,
    total_kib: u32,
    share_kib: u32,
    callers: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

/// One request's view of the budget: the node's total and its caller's share.
#[derive(Debug, Clone)]
pub struct BudgetFor {
    total: Arc<Semaphore>,
    total_kib: u32,
    caller: Option<(Arc<Semaphore>, u32)>,
}

/// The bytes a body took from the budget (and its caller's share).
type Taken = (OwnedSemaphorePermit, Option<OwnedSemaphorePermit>);

impl BodyBudget {
    /// A budget of `bytes` in total, a quarter of it per caller.
    #[must_use]
    pub fn new(bytes: u64) -> BodyBudget {
        let kib = u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(4, u32::try_from(Semaphore::MAX_PERMITS).unwrap_or(u32::MAX));
        BodyBudget {
            total: Arc::new(Semaphore::new(kib as usize)),
            total_kib: kib,
            share_kib: kib / 4,
            callers: Arc::default(),
        }
    }

    /// The budget as a request of the caller the access layer admitted sees it.
    fn share<B>(&self, request: &http::Request<B>) -> BudgetFor {
        let caller = request
            .extensions()
            .get::<crate::access::Caller>()
            .and_then(|c| {
                let mut callers = self.callers.lock().ok()?;
                Some(Arc::clone(callers.entry(c.name.clone()).or_insert_with(
                    || Arc::new(Semaphore::new(self.share_kib as usize)),
                )))
            });
        BudgetFor {
            total: Arc::clone(&self.total),
            total_kib: self.total_kib,
            caller: caller.map(|c| (c, self.share_kib)),
        }
    }
}

impl BudgetFor {
    /// Takes `bytes` from the caller's share and the total (a body past either takes all of
    /// it), or says which has no room.
    fn take(&self, bytes: usize) -> Result<Taken, &'static str> {
        let kib = u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX);
        let mine = match &self.caller {
            Some((share, of)) => Some(
                Arc::clone(share)
                    .try_acquire_many_owned(kib.clamp(1, *of))
                    .map_err(|_| "this client's share of it (a quarter)")?,
            ),
            None => None,
        };
        let all = Arc::clone(&self.total)
            .try_acquire_many_owned(kib.clamp(1, self.total_kib))
            .map_err(|_| "all clients together")?;
        Ok((all, mine))
    }
}

/// Where a body puts the bytes it took from the budget; they are given back when the last
/// holder drops it: the body, the request's future, and the request's work.
type Held = Arc<Mutex<Option<Taken>>>;

/// A request's hold on its body's bytes, in its extensions: the handler keeps it until its
/// work ends, which may be after the request was answered (a deadline that passed).
#[derive(Debug, Clone)]
pub struct BodyHold(#[allow(dead_code)] Held);

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
    budget: Option<(BudgetFor, Held)>,
    /// The header's 5 bytes and the message they declare: a unary request carries one.
    expected: Option<usize>,
    /// The budget had no room for this body (and what had none): it fails without reading
    /// more.
    refused: Option<&'static str>,
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
            refused: None,
            expected: None,
        }
    }

    /// Takes its declared bytes from `budget` into `held` before reading them.
    fn with_budget(mut self, budget: BudgetFor, held: Held) -> CappedBody {
        self.budget = Some((budget, held));
        self
    }
}

/// The refusal of a body that finds the node's budget for bodies spent.
fn budget_spent(method: &str, whose: &str) -> Status {
    crate::metrics::refused(crate::metrics::Refusal::BodyBudget);
    Status::unavailable(format!(
        "the node holds as many request bytes as it may for {whose} \
         (max_body_bytes_in_flight); this {method} request was not read: retry"
    ))
}

fn second_message(method: &str) -> Status {
    Status::invalid_argument(format!("a {method} request carries one message"))
}

/// Bytes of a gRPC frame's header: a compression flag and the message's length (u32, BE).
const GRPC_HEADER: usize = 5;

fn too_large(method: &str, cap: usize) -> Status {
    crate::metrics::refused(crate::metrics::Refusal::BodyTooLarge);
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
        if let Some(whose) = this.refused {
            return Poll::Ready(Some(Err(budget_spent(this.method, whose))));
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
                            this.expected = Some(total);
                            if total > this.cap {
                                this.seen = usize::MAX;
                            } else if let Some((budget, held)) = &this.budget
                                && total > SMALL_BODY
                            {
                                match budget.take(total) {
                                    Ok(taken) => {
                                        if let Ok(mut h) = held.lock() {
                                            *h = Some(taken);
                                        }
                                    }
                                    Err(whose) => {
                                        this.refused = Some(whose);
                                        return Poll::Ready(Some(Err(budget_spent(
                                            this.method,
                                            whose,
                                        ))));
                                    }
                                }
                            }
                        }
                    }
                    if this.seen > this.cap {
                        return Poll::Ready(Some(Err(too_large(this.method, this.cap))));
                    }
                    if this.expected.is_some_and(|e| this.seen > e) {
                        // More bytes than the first message: a second message, which the
                        // budget never counted.
                        this.seen = usize::MAX;
                        this.cap = 0;
                        return Poll::Ready(Some(Err(second_message(this.method))));
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
        let budget = self.budget.share(&request);
        let mut request = request.map(|b| {
            Body::new(CappedBody::new(b, cap, method).with_budget(budget, Arc::clone(&held)))
        });
        request.extensions_mut().insert(BodyHold(Arc::clone(&held)));
        let answered = crate::access::take_ready(&mut self.inner).call(request);
        Box::pin(async move {
            let response = answered.await;
            // The bytes go back once the work that holds them has ended too.
            drop(held);
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

    /// The budget as a request of `caller` sees it.
    fn of(budget: &BodyBudget, caller: &str) -> BudgetFor {
        let mut request = http::Request::new(());
        request.extensions_mut().insert(crate::access::Caller {
            name: caller.to_owned(),
            role: crate::access::Role::Owner,
        });
        budget.share(&request)
    }

    /// The first frame of a body of `bytes` under `budget`; the bytes taken stay in `held`.
    fn first_frame(
        budget: BudgetFor,
        held: &Held,
        bytes: Bytes,
    ) -> Option<Result<http_body::Frame<Bytes>, Status>> {
        let mut body = CappedBody::new(Body::new(Once(Some(bytes))), 1 << 20, "StoreRecords")
            .with_budget(budget, Arc::clone(held));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match http_body::Body::poll_frame(Pin::new(&mut body), &mut cx) {
            Poll::Ready(frame) => frame,
            Poll::Pending => None,
        }
    }

    fn hold() -> Held {
        Arc::new(Mutex::new(None))
    }

    fn code(frame: &Option<Result<http_body::Frame<Bytes>, Status>>) -> tonic::Code {
        match frame {
            Some(Ok(_)) => tonic::Code::Ok,
            Some(Err(s)) => s.code(),
            None => tonic::Code::Unknown,
        }
    }

    #[test]
    fn large_bodies_are_bounded_per_caller_and_in_total_until_their_requests_end() {
        use tonic::Code;
        // 400 KiB in all, 100 KiB per caller.
        let budget = BodyBudget::new(400 << 10);
        let a1 = hold();
        assert_eq!(
            code(&first_frame(of(&budget, "a"), &a1, framed(90 << 10))),
            Code::Ok
        );
        // A second large body of the same caller passes its share: refused unread.
        let refused = first_frame(of(&budget, "a"), &hold(), framed(90 << 10));
        assert_eq!(code(&refused), Code::Unavailable, "{refused:?}");
        // A small body takes nothing: it passes whatever the budget.
        assert_eq!(
            code(&first_frame(of(&budget, "a"), &hold(), framed(10 << 10))),
            Code::Ok
        );
        // Other callers have their own shares, up to the total.
        let others: Vec<Held> = (0..3).map(|_| hold()).collect();
        for (i, h) in others.iter().enumerate() {
            let got = first_frame(of(&budget, &format!("c{i}")), h, framed(90 << 10));
            assert_eq!(code(&got), Code::Ok);
        }
        let past_total = first_frame(of(&budget, "z"), &hold(), framed(90 << 10));
        assert!(
            matches!(&past_total, Some(Err(s)) if s.message().contains("all clients")),
            "{past_total:?}"
        );
        // When the first request's holders are gone, its bytes are free again.
        drop(a1);
        assert_eq!(
            code(&first_frame(of(&budget, "a"), &hold(), framed(90 << 10))),
            Code::Ok
        );
        // A body past the method's cap is refused as too large, whatever the budget.
        let too_big = first_frame(of(&BodyBudget::new(1 << 30), "a"), &hold(), framed(2 << 20));
        assert_eq!(code(&too_big), Code::ResourceExhausted, "{too_big:?}");
    }

    #[test]
    fn a_second_message_in_a_body_is_refused() {
        let mut two = framed(10).to_vec();
        two.extend_from_slice(&framed(200 << 10));
        let got = first_frame(
            of(&BodyBudget::new(1 << 30), "a"),
            &hold(),
            Bytes::from(two),
        );
        assert_eq!(code(&got), tonic::Code::InvalidArgument, "{got:?}");
    }
}
