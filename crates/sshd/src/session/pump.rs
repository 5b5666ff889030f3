//! Moving bytes between a channel and its process: client input into
//! stdin or the PTY, process output (through the recording tap) to the
//! client.
//!
//! Flow control: russh re-opens the client's window as soon as data
//! arrives, so the only back-pressure on a client that sends faster than
//! its process reads is the bounded per-channel queue russh fills before
//! it stops reading the connection. That stalls this connection only.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use russh::server::Msg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::ChildStdin;

use crate::conn::Conn;
use crate::session::pty::PtyMaster;

/// Read size for process output (one SSH packet's worth).
const CHUNK: usize = 32 * 1024;

/// Where process output is shown before it goes to the client.
pub(crate) struct Tap {
    /// The connection (its server's `SessionEvents`).
    pub conn: Arc<Conn>,
    /// sftp traffic is file data, not terminal output: not recorded.
    pub record: bool,
}

pub(crate) fn boxed<R: AsyncRead + Unpin + Send + 'static>(
    r: R,
) -> Box<dyn AsyncRead + Unpin + Send> {
    Box::new(r)
}

/// Copies process output to the channel (stdout as data, stderr as
/// extended data 1), through the recording tap.
pub(crate) async fn pump_output<R: OutputSource>(
    mut reader: R,
    write_half: Arc<ChannelWriteHalf<Msg>>,
    ext: Option<u32>,
    tap: Tap,
    counter: Arc<AtomicU64>,
) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match reader.read_chunk(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let Some(chunk) = buf.get(..n) else { return };
        if tap.record {
            tap.conn.server.events.output(&tap.conn.id, chunk);
        }
        counter.fetch_add(u64::try_from(n).unwrap_or(0), Ordering::Relaxed);
        let data = Bytes::copy_from_slice(chunk);
        let sent = match ext {
            None => write_half.data_bytes(data).await,
            Some(code) => write_half.extended_data_bytes(code, data).await,
        };
        if sent.is_err() {
            return;
        }
    }
}

/// A source of process output.
pub(crate) trait OutputSource: Send + 'static {
    /// Reads some bytes; 0 at the end.
    fn read_chunk(&mut self, buf: &mut [u8])
    -> impl Future<Output = std::io::Result<usize>> + Send;
}

impl OutputSource for Box<dyn AsyncRead + Unpin + Send> {
    async fn read_chunk(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.read(buf).await
    }
}

/// Reads a PTY master.
pub(crate) struct PtyReader(pub Arc<PtyMaster>);

impl OutputSource for PtyReader {
    async fn read_chunk(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf).await
    }
}

/// Copies client data into the process's stdin; EOF from the client closes
/// stdin. Data after stdin broke is read and dropped, so the channel keeps
/// flowing.
pub(crate) async fn pump_input(
    mut read_half: ChannelReadHalf,
    mut stdin: Option<ChildStdin>,
    counter: Arc<AtomicU64>,
) {
    while let Some(msg) = read_half.wait().await {
        match msg {
            ChannelMsg::Data { data } => {
                counter.fetch_add(u64::try_from(data.len()).unwrap_or(0), Ordering::Relaxed);
                if let Some(pipe) = stdin.as_mut()
                    && pipe.write_all(&data).await.is_err()
                {
                    stdin = None;
                }
            }
            ChannelMsg::Eof => stdin = None,
            ChannelMsg::Close => return,
            _ => {}
        }
    }
}

/// Copies client data into the PTY.
pub(crate) async fn pump_pty_input(
    mut read_half: ChannelReadHalf,
    master: Arc<PtyMaster>,
    counter: Arc<AtomicU64>,
) {
    while let Some(msg) = read_half.wait().await {
        match msg {
            ChannelMsg::Data { data } => {
                counter.fetch_add(u64::try_from(data.len()).unwrap_or(0), Ordering::Relaxed);
                if master.write_all(&data).await.is_err() {
                    return;
                }
            }
            ChannelMsg::Close => return,
            _ => {}
        }
    }
}
