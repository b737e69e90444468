//! The metrics listener: plain HTTP/1.1 on an address of its own, `GET /metrics` and nothing
//! else.
//!
//! * **Unauthenticated.** No TLS, no client check: bind it to loopback or a private network
//!   that only the Prometheus server reaches. It serves nothing but [`super::Metrics`], which
//!   carry no secret and nothing of a client or a request.
//! * **Apart from the gRPC service.** Its own listener and tasks; a scrape reads the node's
//!   counters on a blocking thread, so no lock the handlers take is waited on by an async
//!   worker.
//! * **Bounded.** At most [`MAX_CONNECTIONS`] connections at once (more are closed at once);
//!   a request's head within [`MAX_HEAD_BYTES`] (else `431`) and [`HEAD_TIMEOUT`]; one request
//!   per connection, the whole of it within [`CONNECTION_TIMEOUT`], so a slow client holds a
//!   slot for that long at most and never the node's workers. A request body is never read.
//! * `GET` or `HEAD /metrics` gets the OpenMetrics text (`200`); another method `405`; any
//!   other path `404`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::Metrics;

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 8;
/// The longest request head (request line and headers) read.
pub const MAX_HEAD_BYTES: usize = 8192;
/// The longest wait for a request's head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a connection is kept, its answer sent or not.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// The content type of the metrics.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Listens on `address` for scrapes.
///
/// # Errors
/// The bind's error (the address is in use or not this machine's).
pub async fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(address).await
}

/// The task serving scrapes: it stops when this is dropped or aborted.
#[derive(Debug)]
pub struct Serving(JoinHandle<()>);

impl Serving {
    /// Stops taking scrapes (those under way end within [`CONNECTION_TIMEOUT`]).
    pub fn abort(self) {
        drop(self);
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves `metrics` on `listener` until the returned [`Serving`] is dropped.
#[must_use]
pub fn spawn(listener: TcpListener, metrics: Arc<Metrics>) -> Serving {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    Serving(tokio::spawn(async move {
        loop {
            let tcp = match listener.accept().await {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    tracing::debug!(error = %e, "a metrics connection could not be accepted");
                    // Out of file descriptors or memory: pause rather than spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Past the bound the connection is closed at once (dropped unanswered).
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                continue;
            };
            let metrics = Arc::clone(&metrics);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    answer(request, Arc::clone(&metrics))
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .keep_alive(false)
                    .max_buf_size(MAX_HEAD_BYTES)
                    .max_header_size(MAX_HEAD_BYTES)
                    .max_headers(32)
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEAD_TIMEOUT)
                    .serve_connection(TokioIo::new(tcp), service);
                let _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
                drop(slot);
            });
        }
    }))
}

fn plain(status: StatusCode, text: &'static str) -> Response<String> {
    let mut r = Response::new(text.to_owned());
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The answer to one request.
async fn answer(
    request: Request<Incoming>,
    metrics: Arc<Metrics>,
) -> Result<Response<String>, Infallible> {
    if request.uri().path() != "/metrics" {
        return Ok(plain(StatusCode::NOT_FOUND, "not found: GET /metrics\n"));
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "GET /metrics\n");
        r.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return Ok(r);
    }
    drop(request);
    let Ok(text) = tokio::task::spawn_blocking(move || metrics.render()).await else {
        return Ok(plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the metrics could not be read\n",
        ));
    };
    let mut r = Response::new(text);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(CONTENT_TYPE),
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Snapshot, Source};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn served() -> Option<(SocketAddr, Serving)> {
        let source: Source = Arc::new(|| Snapshot {
            images: 4,
            ..Snapshot::default()
        });
        let node = phr_sis::NodeId::new(2).ok()?;
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.ok()?;
        let address = listener.local_addr().ok()?;
        Some((address, spawn(listener, Metrics::new(node, source))))
    }

    /// Sends `request` and reads the answer until the server closes.
    async fn ask(address: SocketAddr, request: &[u8]) -> String {
        let Ok(mut s) = tokio::net::TcpStream::connect(address).await else {
            return String::new();
        };
        let _ = s.write_all(request).await;
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn the_metrics_path_alone_is_served_and_a_long_head_is_refused() {
        let Some((address, task)) = served().await else {
            panic!("no listener");
        };
        let ok = ask(address, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(ok.contains("application/openmetrics-text"), "{ok}");
        assert!(ok.contains("dealer_free_sis_stored_images 4"), "{ok}");
        assert!(ok.trim_end().ends_with("# EOF"), "{ok}");
        let other = ask(
            address,
            b"GET /metrics/../secrets HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .await;
        assert!(other.starts_with("HTTP/1.1 404"), "{other}");
        let post = ask(address, b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(post.starts_with("HTTP/1.1 405"), "{post}");
        let long = format!(
            "GET /metrics HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n",
            "a".repeat(2 * MAX_HEAD_BYTES)
        );
        let refused = ask(address, long.as_bytes()).await;
        assert!(refused.starts_with("HTTP/1.1 431"), "{refused}");
        // Dropped, it stops listening.
        drop(task);
        let mut closed = false;
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(address).await.is_err() {
                closed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(closed, "still listening after the drop");
    }

    #[tokio::test]
    async fn silent_connections_past_the_bound_are_closed_and_scrapes_go_on_after_them() {
        let Some((address, task)) = served().await else {
            panic!("no listener");
        };
        // Connections that say nothing hold every slot...
        let mut silent = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            if let Ok(s) = tokio::net::TcpStream::connect(address).await {
                silent.push(s);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        // ...so one more is closed unanswered...
        let closed = ask(address, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(closed, "");
        // ...until they are gone.
        drop(silent);
        let mut answered = String::new();
        for _ in 0..100 {
            answered = ask(address, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
            if !answered.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
        task.abort();
    }
}
