//! The syslog sink: one TCP connection to the receiver, kept open between
//! batches and replaced after any error.
//!
//! Plain TCP syslog has no acknowledgements, so "delivered" means "written
//! to a connection the receiver had not closed". Before each batch the
//! connection is checked for an orderly close by the receiver (a receiver
//! never sends us data, so a readable socket means EOF or an error);
//! without that check the first batch after a receiver restart would be
//! written into a dead connection and lost.
//!
//! With TLS the check reads through the TLS layer, which consumes the
//! records a TLS 1.3 server sends after the handshake (session tickets)
//! and reports the receiver's close_notify as the end.

use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::ExportError;
use crate::batch::{Batch, Item};
use crate::rfc5424::{self, Header};

/// A connection to the receiver, plain or TLS.
trait Stream: AsyncRead + AsyncWrite + Send + Sync + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin> Stream for T {}

/// How to secure a connection.
#[derive(Clone)]
pub struct TlsSetup {
    /// Trusts the configured CAs.
    pub connector: TlsConnector,
    /// The name the receiver's certificate must carry.
    pub server_name: ServerName<'static>,
}

impl std::fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSetup")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// How long a connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long writing one batch may take (a receiver that stops reading
/// fills the socket buffer and would otherwise stall us forever).
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends batches to one syslog receiver.
pub struct SyslogSink {
    /// `host:port` of the receiver.
    addr: String,
    /// HOSTNAME and APP-NAME of every message.
    header: Header,
    /// TLS, when configured.
    tls: Option<TlsSetup>,
    /// The open connection, if any.
    conn: Option<Box<dyn Stream>>,
}

impl std::fmt::Debug for SyslogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyslogSink")
            .field("addr", &self.addr)
            .field("tls", &self.tls)
            .field("connected", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

impl SyslogSink {
    /// A sink for `addr`; connects on the first send.
    pub fn new(addr: String, header: Header, tls: Option<TlsSetup>) -> Self {
        Self {
            addr,
            header,
            tls,
            conn: None,
        }
    }

    /// Writes the whole batch, framed, on one connection.
    pub async fn send(&mut self, batch: &Batch) -> Result<(), ExportError> {
        let mut payload = Vec::new();
        for item in batch.items() {
            let msg = match item {
                Item::Event(r) => rfc5424::event_message(&self.header, r),
                Item::Checkpoint(c) => rfc5424::checkpoint_message(&self.header, c),
            };
            rfc5424::frame(&msg, &mut payload);
        }
        let addr = self.addr.clone();
        let conn = self.connection().await?;
        let write = async {
            conn.write_all(&payload).await?;
            conn.flush().await
        };
        match tokio::time::timeout(WRITE_TIMEOUT, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => {
                self.conn = None;
                Err(ExportError::Send { addr, source })
            }
            Err(_) => {
                self.conn = None;
                Err(ExportError::Timeout {
                    what: format!("sending to syslog receiver {addr}"),
                    after: WRITE_TIMEOUT,
                })
            }
        }
    }

    /// Closes the connection in an orderly way, so the receiver reads
    /// everything written before it sees the end.
    pub async fn close(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            let _ = tokio::time::timeout(CONNECT_TIMEOUT, conn.shutdown()).await;
        }
    }

    /// The open connection if the receiver has not closed it, else a new
    /// one.
    async fn connection(&mut self) -> Result<&mut Box<dyn Stream>, ExportError> {
        if self.conn.as_mut().is_none_or(|c| peer_closed(c.as_mut())) {
            if self.conn.take().is_some() {
                tracing::debug!(addr = %self.addr, "syslog receiver closed the connection");
            }
            self.conn = Some(self.connect().await?);
        }
        self.conn.as_mut().ok_or_else(|| ExportError::Connect {
            addr: self.addr.clone(),
            source: std::io::Error::other("no connection"),
        })
    }

    /// A new connection to the receiver (TCP, then TLS if configured),
    /// all within [`CONNECT_TIMEOUT`].
    async fn connect(&self) -> Result<Box<dyn Stream>, ExportError> {
        let connect = async {
            let tcp = TcpStream::connect(self.addr.as_str()).await?;
            // Batches are written whole; Nagle would only delay the last
            // segment.
            let _ = tcp.set_nodelay(true);
            Ok::<Box<dyn Stream>, std::io::Error>(match &self.tls {
                None => Box::new(tcp),
                Some(t) => Box::new(t.connector.connect(t.server_name.clone(), tcp).await?),
            })
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(c)) => {
                tracing::debug!(addr = %self.addr, tls = self.tls.is_some(), "connected to syslog receiver");
                Ok(c)
            }
            Ok(Err(source)) => Err(ExportError::Connect {
                addr: self.addr.clone(),
                source,
            }),
            Err(_) => Err(ExportError::Timeout {
                what: format!("connecting to syslog receiver {}", self.addr),
                after: CONNECT_TIMEOUT,
            }),
        }
    }
}

/// Whether the receiver closed (or reset) the connection. Receivers never
/// send application data on a syslog connection, so reading without
/// waiting either finds nothing (alive), or the end. Whatever data does
/// arrive is drained and ignored.
fn peer_closed(conn: &mut dyn Stream) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    let mut buf = [0u8; 512];
    // Bounded: a receiver that keeps sending must not keep us here.
    for _ in 0..64 {
        let mut rb = ReadBuf::new(&mut buf);
        match Pin::new(&mut *conn).poll_read(&mut cx, &mut rb) {
            Poll::Pending => return false,
            Poll::Ready(Ok(())) if rb.filled().is_empty() => return true,
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(_)) => return true,
        }
    }
    false
}
