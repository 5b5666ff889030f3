//! Noticing a dead peer.
//!
//! TCP alone may take many minutes to notice that a proxy vanished (or
//! never notice a hung one), so the node pings over a dedicated control
//! stream — the first stream it opens — and the proxy answers. Each side
//! drops the tunnel when the other falls silent. One byte each way, so the
//! control stream can never run out of flow-control credit.

use std::io;
use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{Keepalive, TunnelError};

/// The node's ping.
const PING: u8 = b'p';
/// The proxy's answer.
const PONG: u8 = b'P';

/// Node side: ping every `ka.interval` and wait at most `ka.timeout` for
/// each answer; `on_alive` runs after every answer. Returns why it stopped.
pub(crate) async fn ping<S>(
    mut control: S,
    ka: Keepalive,
    mut on_alive: impl FnMut(),
) -> TunnelError
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let round = async {
            control.write_all(&[PING]).await.map_err(io_error)?;
            control.flush().await.map_err(io_error)?;
            expect_byte(&mut control, PONG).await
        };
        match tokio::time::timeout(ka.timeout, round).await {
            Err(_) => return TunnelError::KeepaliveTimeout(ka.timeout),
            Ok(Err(e)) => return e,
            Ok(Ok(())) => on_alive(),
        }
        tokio::time::sleep(ka.interval).await;
    }
}

/// Proxy side: answer every ping; give up after `idle` without one.
/// Returns why it stopped.
pub(crate) async fn answer<S>(mut control: S, idle: Duration) -> TunnelError
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match tokio::time::timeout(idle, expect_byte(&mut control, PING)).await {
            Err(_) => return TunnelError::KeepaliveTimeout(idle),
            Ok(Err(e)) => return e,
            Ok(Ok(())) => {}
        }
        let pong = async {
            control.write_all(&[PONG]).await?;
            control.flush().await
        };
        match tokio::time::timeout(idle, pong).await {
            Err(_) => return TunnelError::KeepaliveTimeout(idle),
            Ok(Err(e)) => return io_error(e),
            Ok(Ok(())) => {}
        }
    }
}

/// Reads one byte and checks that it is `want`.
async fn expect_byte<S>(control: &mut S, want: u8) -> Result<(), TunnelError>
where
    S: AsyncRead + Unpin,
{
    let mut byte = [0u8; 1];
    control.read_exact(&mut byte).await.map_err(io_error)?;
    if byte != [want] {
        return Err(TunnelError::Protocol(format!(
            "unexpected byte {:#04x} on the keepalive stream (expected {want:#04x})",
            byte.first().copied().unwrap_or_default()
        )));
    }
    Ok(())
}

/// EOF on the control stream means the peer closed the tunnel.
fn io_error(e: io::Error) -> TunnelError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::WriteZero
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionReset => TunnelError::Closed,
        _ => TunnelError::Io(e),
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

    use tokio_util::compat::TokioAsyncReadCompatExt;

    use super::*;

    fn ka(ms: u64) -> Keepalive {
        Keepalive {
            interval: Duration::from_millis(ms),
            timeout: Duration::from_millis(ms),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn ping_and_answer_keep_each_other_alive() {
        let (a, b) = tokio::io::duplex(64);
        let proxy = tokio::spawn(answer(b.compat(), Duration::from_millis(200)));
        let mut answers = 0u32;
        let node = ping(a.compat(), ka(100), || answers += 1);
        // Ten rounds later both are still alive.
        let r = tokio::time::timeout(Duration::from_millis(2000), node).await;
        assert!(r.is_err(), "pinger stopped: {r:?}");
        assert!(!proxy.is_finished());
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_proxy_times_out() {
        let (a, _b) = tokio::io::duplex(64);
        let e = ping(a.compat(), ka(100), || {}).await;
        assert!(matches!(e, TunnelError::KeepaliveTimeout(_)), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_node_times_out() {
        let (_a, b) = tokio::io::duplex(64);
        let e = answer(b.compat(), Duration::from_millis(300)).await;
        assert!(matches!(e, TunnelError::KeepaliveTimeout(_)), "{e}");
    }

    #[tokio::test]
    async fn wrong_bytes_are_a_protocol_error() {
        let (a, b) = tokio::io::duplex(64);
        let mut a = a.compat();
        a.write_all(b"x").await.unwrap();
        let e = answer(b.compat(), Duration::from_secs(5)).await;
        assert!(matches!(e, TunnelError::Protocol(_)), "{e}");

        let (a, b) = tokio::io::duplex(64);
        let mut b = b.compat();
        b.write_all(b"?").await.unwrap();
        let e = ping(a.compat(), ka(1000), || {}).await;
        assert!(matches!(e, TunnelError::Protocol(_)), "{e}");
    }

    #[tokio::test]
    async fn eof_means_closed() {
        let (a, b) = tokio::io::duplex(64);
        drop(b);
        let e = ping(a.compat(), ka(1000), || {}).await;
        assert!(matches!(e, TunnelError::Closed), "{e}");
        let (a, b) = tokio::io::duplex(64);
        drop(a);
        let e = answer(b.compat(), Duration::from_secs(5)).await;
        assert!(matches!(e, TunnelError::Closed), "{e}");
    }
}
