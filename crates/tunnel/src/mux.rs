//! Drives one yamux session.
//!
//! A `yamux::Connection` makes progress only while someone polls it, and
//! opening a stream needs `&mut` access to it; so one task owns it
//! ([`drive`]) and everyone else asks for new streams through a channel
//! ([`Opener`]).

use std::future::poll_fn;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use futures::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::TunnelError;

/// Most stream-open requests queued for the driver at once.
const OPEN_QUEUE: usize = 64;
/// How long a graceful close may take before the connection is just dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long opening one stream may take (the driver is busy or the peer
/// has not acknowledged earlier streams yet).
pub(crate) const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// A request for a new outbound stream, answered by the driver.
type OpenRequest = oneshot::Sender<Result<yamux::Stream, yamux::ConnectionError>>;

/// The yamux configuration for a session that may hold `max_streams`
/// streams at once. The connection receive window is set to the smallest
/// value yamux allows (each stream its default 256 KiB), so a peer can
/// never make us buffer more than `max_streams * 256 KiB`.
pub(crate) fn config(max_streams: usize) -> yamux::Config {
    // yamux asserts window >= streams * 256 KiB; 4096 streams fit in its
    // default 1 GiB window, so this order of calls never trips it.
    let n = max_streams.clamp(1, 4096);
    let mut cfg = yamux::Config::default();
    cfg.set_max_num_streams(n);
    cfg.set_max_connection_receive_window(Some(n.saturating_mul(yamux::DEFAULT_CREDIT as usize)));
    cfg
}

/// Asks the driver of one session for new outbound streams.
#[derive(Debug, Clone)]
pub(crate) struct Opener {
    /// Requests to the driver; closed when the driver ends.
    tx: mpsc::Sender<OpenRequest>,
}

impl Opener {
    /// A new outbound stream, already announced to the peer (yamux would
    /// otherwise send nothing until the first write, and the peer's handler
    /// would not start while our side waits for it to speak first, as an
    /// SSH client waits for the server's banner).
    pub(crate) async fn open(&self) -> Result<yamux::Stream, TunnelError> {
        let work = async {
            let (reply, answer) = oneshot::channel();
            self.tx.send(reply).await.map_err(|_| TunnelError::Closed)?;
            let mut stream = answer.await.map_err(|_| TunnelError::Closed)??;
            // An empty write sends a data frame with no body and the SYN
            // flag (`write_all` would skip it); there is no amount to check.
            let _empty: usize = stream.write(&[]).await?;
            Ok(stream)
        };
        tokio::time::timeout(OPEN_TIMEOUT, work)
            .await
            .map_err(|_| TunnelError::Timeout {
                what: "opening a stream through the tunnel",
                after: OPEN_TIMEOUT,
            })?
    }
}

/// A session's opener and the receiving end its driver reads.
pub(crate) fn opener() -> (Opener, mpsc::Receiver<OpenRequest>) {
    let (tx, rx) = mpsc::channel(OPEN_QUEUE);
    (Opener { tx }, rx)
}

/// Runs the session until the peer closes it, it fails, or `stop` is
/// cancelled (then it is closed gracefully, within [`CLOSE_TIMEOUT`]).
/// Streams the peer opens are passed to `on_inbound`, which must not block.
pub(crate) async fn drive<T, F>(
    mut conn: yamux::Connection<T>,
    mut requests: mpsc::Receiver<OpenRequest>,
    mut on_inbound: F,
    stop: CancellationToken,
) -> Result<(), yamux::ConnectionError>
where
    T: AsyncRead + AsyncWrite + Unpin,
    F: FnMut(yamux::Stream),
{
    let mut waiting: Option<OpenRequest> = None;
    let mut cancelled = pin!(stop.cancelled());
    let outcome = poll_fn(|cx| {
        if cancelled.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        // Outbound before inbound: yamux registers a new stream's command
        // channel without polling it, and only `poll_next_inbound` polls
        // (and so subscribes to) it. The other order would leave the new
        // stream's first frame unsent until some unrelated wake-up.
        loop {
            let reply = match waiting.take() {
                Some(reply) => reply,
                None => match requests.poll_recv(cx) {
                    Poll::Ready(Some(reply)) => reply,
                    Poll::Ready(None) | Poll::Pending => break,
                },
            };
            if reply.is_closed() {
                // The requester gave up (timed out); do not open for nobody.
                continue;
            }
            match conn.poll_new_outbound(cx) {
                Poll::Ready(Ok(stream)) => {
                    // If the requester left meanwhile, dropping the stream resets it.
                    let _ = reply.send(Ok(stream));
                }
                Poll::Ready(Err(e)) => {
                    let _ = reply.send(Err(yamux::ConnectionError::Closed));
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Pending => {
                    waiting = Some(reply);
                    break;
                }
            }
        }
        loop {
            match conn.poll_next_inbound(cx) {
                Poll::Ready(Some(Ok(stream))) => on_inbound(stream),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => return Poll::Ready(Some(Ok(()))),
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await;
    match outcome {
        Some(result) => result,
        None => {
            // Refuse queued requests quickly instead of letting them time out.
            requests.close();
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, poll_fn(|cx| conn.poll_close(cx))).await;
            Ok(())
        }
    }
}

/// Why a tunnel ended, from its driver's result and its keepalive's
/// (`None` when the keepalive was stopped rather than failing). `Ok` means
/// an orderly close: by the peer, by replacement or by shutdown.
pub(crate) fn outcome(
    driven: Result<(), yamux::ConnectionError>,
    kept: Option<TunnelError>,
) -> Result<(), TunnelError> {
    match (driven, kept) {
        (Err(e), _) if !matches!(e, yamux::ConnectionError::Closed) => Err(e.into()),
        (_, None | Some(TunnelError::Closed)) => Ok(()),
        (_, Some(e)) => Err(e),
    }
}
