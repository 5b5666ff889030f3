//! One stream through a tunnel, as a tokio byte stream.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt};

/// A bidirectional byte stream carried by a tunnel (one SSH connection).
///
/// `shutdown` half-closes (the peer reads EOF, and may keep writing);
/// dropping the stream without shutting it down resets it.
pub struct TunnelStream {
    /// The yamux stream seen through tokio's I/O traits.
    inner: Compat<yamux::Stream>,
    /// On the proxy side, this stream's share of the per-tunnel stream
    /// limit, given back when the stream is dropped.
    _permit: Option<OwnedSemaphorePermit>,
}

impl TunnelStream {
    pub(crate) fn new(stream: yamux::Stream, permit: Option<OwnedSemaphorePermit>) -> Self {
        Self {
            inner: stream.compat(),
            _permit: permit,
        }
    }
}

impl fmt::Debug for TunnelStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TunnelStream")
            .field("id", &self.inner.get_ref().id())
            .finish()
    }
}

impl AsyncRead for TunnelStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for TunnelStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
