//! The byte stream under one SSH connection: counted, and closable from
//! outside at any protocol stage.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Bytes that crossed the wire of one connection.
#[derive(Debug, Default)]
pub(crate) struct WireCounters {
    /// Received from the client.
    bytes_in: AtomicU64,
    /// Sent to the client.
    bytes_out: AtomicU64,
}

impl WireCounters {
    /// Received so far.
    pub(crate) fn bytes_in(&self) -> u64 {
        self.bytes_in.load(Ordering::Relaxed)
    }

    /// Sent so far.
    pub(crate) fn bytes_out(&self) -> u64 {
        self.bytes_out.load(Ordering::Relaxed)
    }
}

/// Wraps a connection's stream so that cancelling `kill` fails every read
/// and write, which ends the russh session wherever it is (version
/// exchange, key exchange, a stalled write). russh's own `Handle` cannot do
/// that: it is not served during a key exchange.
pub(crate) struct GuardedStream<S> {
    /// The real stream.
    inner: S,
    /// Cancelled to close the connection.
    kill: CancellationToken,
    /// Wakes a pending read when `kill` is cancelled.
    killed: Pin<Box<WaitForCancellationFutureOwned>>,
    /// Where bytes are counted.
    counters: std::sync::Arc<WireCounters>,
}

impl<S> GuardedStream<S> {
    /// Wraps `inner`.
    pub(crate) fn new(
        inner: S,
        kill: CancellationToken,
        counters: std::sync::Arc<WireCounters>,
    ) -> Self {
        let killed = Box::pin(kill.clone().cancelled_owned());
        Self {
            inner,
            kill,
            killed,
            counters,
        }
    }
}

fn aborted() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "connection closed by the server",
    )
}

impl<S: AsyncRead + Unpin> AsyncRead for GuardedStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // russh always has a read outstanding, so registering the kill
        // waker here is enough to interrupt any stage.
        if self.killed.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(aborted()));
        }
        let before = buf.filled().len();
        let this = &mut *self;
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = res {
            let n = buf.filled().len().saturating_sub(before);
            this.counters
                .bytes_in
                .fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
        }
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for GuardedStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.kill.is_cancelled() {
            return Poll::Ready(Err(aborted()));
        }
        let this = &mut *self;
        let res = Pin::new(&mut this.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = res {
            this.counters
                .bytes_out
                .fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
        }
        res
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.kill.is_cancelled() {
            return Poll::Ready(Err(aborted()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn counts_bytes_and_kill_interrupts_a_pending_read() {
        let (a, mut b) = tokio::io::duplex(64);
        let kill = CancellationToken::new();
        let counters = Arc::new(WireCounters::default());
        let mut s = GuardedStream::new(a, kill.clone(), counters.clone());
        s.write_all(b"hello").await.unwrap();
        b.write_all(b"abc").await.unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(s.read(&mut buf).await.unwrap(), 3);
        assert_eq!((counters.bytes_in(), counters.bytes_out()), (3, 5));

        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 8];
            s.read(&mut buf).await
        });
        tokio::task::yield_now().await;
        kill.cancel();
        let err = reader.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted);
    }
}
