//! One session channel relayed between the client and the host.
//!
//! Requests (pty, shell, exec, subsystem…) arrive through the handler,
//! which forwards each upstream and waits for the host's answer before
//! answering the client (russh keeps one reply flag per channel, so a
//! reply cannot be deferred past the handler call). Data, EOF and close go
//! through two pump tasks, one per direction, in order, with the flow
//! control of both windows.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf, client, server};
use tokio::sync::oneshot;

use crate::authority::RelayEvent;
use crate::conn::Conn;

/// Longest wait for the host to answer a request.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// Commands longer than this are cut in events.
const MAX_LOGGED_COMMAND: usize = 4096;

/// Answers the host owes, oldest first (SSH answers in order).
type Pending = Arc<Mutex<VecDeque<oneshot::Sender<bool>>>>;

/// A request relayed with an answer.
pub(crate) enum UpRequest {
    /// `pty-req`.
    Pty {
        /// `TERM`.
        term: String,
        /// Columns.
        cols: u32,
        /// Rows.
        rows: u32,
        /// Width in pixels.
        pix_width: u32,
        /// Height in pixels.
        pix_height: u32,
        /// Terminal modes.
        modes: Vec<(russh::Pty, u32)>,
    },
    /// `shell`.
    Shell,
    /// `exec`.
    Exec(Vec<u8>),
    /// `subsystem`.
    Subsystem(String),
}

/// The handler's side of a relayed session channel.
pub(crate) struct SessionBridge {
    /// Writes to the host's channel (requests).
    up: Arc<ChannelWriteHalf<client::Msg>>,
    /// Answers awaited from the host.
    pending: Pending,
    /// What runs on the channel (for the exit-status event).
    command: Arc<Mutex<Option<String>>>,
}

impl SessionBridge {
    /// Connects a client channel to a freshly opened host channel and
    /// starts the pumps.
    pub(crate) fn start(
        conn: &Arc<Conn>,
        client_side: russh::Channel<server::Msg>,
        client_handle: server::Handle,
        host_side: russh::Channel<client::Msg>,
    ) -> Self {
        let (client_rd, client_wr) = client_side.split();
        let (host_rd, host_wr) = host_side.split();
        let up = Arc::new(host_wr);
        let pending: Pending = Arc::default();
        let command = Arc::new(Mutex::new(None));
        tokio::spawn(pump_up(conn.clone(), client_rd, up.clone()));
        tokio::spawn(pump_down(
            conn.clone(),
            host_rd,
            client_wr,
            client_handle,
            pending.clone(),
            command.clone(),
        ));
        Self {
            up,
            pending,
            command,
        }
    }

    /// The host channel, for requests without an answer.
    pub(crate) fn up(&self) -> &ChannelWriteHalf<client::Msg> {
        &self.up
    }

    /// Sends a request that wants an answer and waits for it.
    pub(crate) async fn ask(&self, req: UpRequest) -> bool {
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(tx);
        let up = &self.up;
        let sent = match req {
            UpRequest::Pty {
                term,
                cols,
                rows,
                pix_width,
                pix_height,
                modes,
            } => {
                up.request_pty(true, &term, cols, rows, pix_width, pix_height, &modes)
                    .await
            }
            UpRequest::Shell => up.request_shell(true).await,
            UpRequest::Exec(cmd) => up.exec(true, cmd).await,
            UpRequest::Subsystem(name) => up.request_subsystem(true, name).await,
        };
        if sent.is_err() {
            return false;
        }
        matches!(tokio::time::timeout(REPLY_TIMEOUT, rx).await, Ok(Ok(true)))
    }

    /// Remembers what runs on the channel.
    pub(crate) fn set_command(&self, command: &str) {
        let cut: String = command.chars().take(MAX_LOGGED_COMMAND).collect();
        *self.command.lock().unwrap_or_else(PoisonError::into_inner) = Some(cut);
    }
}

/// Client → host: data, EOF, close.
async fn pump_up(
    conn: Arc<Conn>,
    mut client_rd: ChannelReadHalf,
    up: Arc<ChannelWriteHalf<client::Msg>>,
) {
    while let Some(msg) = client_rd.wait().await {
        let sent = match msg {
            ChannelMsg::Data { data } => {
                conn.touch();
                conn.bytes_in
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
                up.data_bytes(data).await
            }
            ChannelMsg::ExtendedData { data, ext } => {
                conn.touch();
                conn.bytes_in
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
                up.extended_data_bytes(ext, data).await
            }
            ChannelMsg::Eof => up.eof().await,
            ChannelMsg::Close => break,
            // Requests are handled by the handler; nothing else travels up.
            _ => Ok(()),
        };
        if sent.is_err() {
            break;
        }
    }
    let _ = up.close().await;
}

/// Host → client: data, exit status, EOF, close, and the host's answers.
async fn pump_down(
    conn: Arc<Conn>,
    mut host_rd: ChannelReadHalf,
    client_wr: ChannelWriteHalf<server::Msg>,
    client_handle: server::Handle,
    pending: Pending,
    command: Arc<Mutex<Option<String>>>,
) {
    let id = client_wr.id();
    let answer = |ok: bool| {
        if let Some(tx) = pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
        {
            let _ = tx.send(ok);
        }
    };
    while let Some(msg) = host_rd.wait().await {
        let sent = match msg {
            ChannelMsg::Data { data } => {
                conn.touch();
                conn.bytes_out
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
                client_wr.data_bytes(data).await.is_ok()
            }
            ChannelMsg::ExtendedData { data, ext } => {
                conn.touch();
                conn.bytes_out
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
                client_wr.extended_data_bytes(ext, data).await.is_ok()
            }
            ChannelMsg::Eof => client_wr.eof().await.is_ok(),
            ChannelMsg::ExitStatus { exit_status } => {
                if let Some(session) = conn.session() {
                    let cmd = command
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clone()
                        .unwrap_or_default();
                    conn.emit(RelayEvent::ExitStatus {
                        session,
                        command: cmd,
                        status: exit_status,
                    });
                }
                client_wr.exit_status(exit_status).await.is_ok()
            }
            ChannelMsg::ExitSignal {
                signal_name,
                core_dumped,
                error_message,
                lang_tag,
            } => client_handle
                .exit_signal_request(id, signal_name, core_dumped, error_message, lang_tag)
                .await
                .is_ok(),
            ChannelMsg::Success => {
                answer(true);
                true
            }
            ChannelMsg::Failure => {
                answer(false);
                true
            }
            ChannelMsg::Close => break,
            _ => true,
        };
        if !sent {
            break;
        }
    }
    // Whatever is still awaited will never come.
    pending
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clear();
    let _ = client_wr.close().await;
}
