//! A bound on the connections a node holds at once.
//!
//! [`Limited`] wraps the stream of accepted connections: a connection is taken from the
//! listener only with one of `max` permits, and gives it back when it closes (its TLS and
//! HTTP/2 state with it). Past `max`, new connections wait in the kernel's backlog, and
//! nothing of them is held in the node, however many are opened.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};
use tokio_stream::Stream;
use tonic::transport::server::Connected;

type Acquire = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

/// The accepted connections of `inner`, at most `max` open at once.
pub struct Limited<S> {
    inner: S,
    slots: Arc<Semaphore>,
    /// The permit for the next connection, once acquired.
    permit: Option<OwnedSemaphorePermit>,
    acquiring: Option<Acquire>,
}

impl<S> Limited<S> {
    /// `inner`'s connections, at most `max` (at least 1) open at once.
    #[must_use]
    pub fn new(inner: S, max: usize) -> Limited<S> {
        Limited {
            inner,
            slots: Arc::new(Semaphore::new(max.clamp(1, Semaphore::MAX_PERMITS))),
            permit: None,
            acquiring: None,
        }
    }

    /// Connections that could open now.
    #[must_use]
    pub fn free(&self) -> usize {
        self.slots.available_permits()
    }
}

impl<S, IO, E> Stream for Limited<S>
where
    S: Stream<Item = Result<IO, E>> + Unpin,
{
    type Item = Result<Counted<IO>, E>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.permit.is_none() {
            let slots = Arc::clone(&this.slots);
            let acquiring = this
                .acquiring
                .get_or_insert_with(|| Box::pin(slots.acquire_owned()));
            match acquiring.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                // The semaphore is never closed.
                Poll::Ready(Err(_)) => return Poll::Ready(None),
                Poll::Ready(Ok(p)) => {
                    this.acquiring = None;
                    this.permit = Some(p);
                }
            }
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(io))) => match this.permit.take() {
                Some(permit) => Poll::Ready(Some(Ok(Counted {
                    inner: io,
                    _permit: permit,
                }))),
                None => Poll::Ready(None),
            },
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A connection holding one of the node's connection slots until it is dropped.
#[derive(Debug)]
pub struct Counted<IO> {
    inner: IO,
    _permit: OwnedSemaphorePermit,
}

impl<IO: Connected> Connected for Counted<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Counted<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Counted<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use tokio_stream::StreamExt;

    use super::*;

    #[tokio::test]
    async fn a_connection_past_the_bound_waits_until_one_closes() {
        let (tx, rx) =
            tokio::sync::mpsc::unbounded_channel::<Result<tokio::io::DuplexStream, ()>>();
        let mut limited = Limited::new(tokio_stream::wrappers::UnboundedReceiverStream::new(rx), 2);
        let mut keep = Vec::new();
        for _ in 0..3 {
            let (a, _b) = tokio::io::duplex(8);
            assert!(tx.send(Ok(a)).is_ok());
            keep.push(_b);
        }
        let first = limited.next().await;
        let second = limited.next().await;
        assert!(matches!(first, Some(Ok(_))) && matches!(second, Some(Ok(_))));
        assert_eq!(limited.free(), 0);
        // The third waits while both are open...
        let third =
            tokio::time::timeout(std::time::Duration::from_millis(50), limited.next()).await;
        assert!(
            third.is_err(),
            "a third connection was taken past the bound"
        );
        // ...and is taken once one closes.
        drop(first);
        let third = tokio::time::timeout(std::time::Duration::from_secs(5), limited.next()).await;
        assert!(matches!(third, Ok(Some(Ok(_)))));
    }
}
