//! Local port forwarding (`direct-tcpip`) and agent forwarding.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use russh::server::{ChannelOpenHandle, Msg};
use russh::{Channel, ChannelOpenFailure};
use tokio::net::{TcpStream, UnixListener};
use tokio::sync::Semaphore;

use crate::auth::{PERMIT_AGENT_FORWARDING, PERMIT_PORT_FORWARDING, cert_permits};
use crate::conn::{Authenticated, Conn};
use crate::error::{Result, SshdError};
use crate::events::SshEvent;

/// How long to try reaching a forwarding destination.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Agent connections open at once per session (each is an SSH channel).
const MAX_AGENT_CONNECTIONS: usize = 16;
/// Pause after a failed accept on the agent socket.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Why a forwarding kind is not allowed, if it is not: the roles (grant)
/// and the certificate extension must both allow it.
fn forbidden(auth: &Authenticated, granted: bool, extension: &str) -> Option<String> {
    if !granted {
        Some("not allowed by the user's roles".to_owned())
    } else if !cert_permits(&auth.cert, extension) {
        Some(format!("the certificate lacks {extension}"))
    } else {
        None
    }
}

/// Handles a `direct-tcpip` open: refuse, or connect and splice.
pub(crate) async fn direct_tcpip(
    conn: &Arc<Conn>,
    auth: &Arc<Authenticated>,
    channel: Channel<Msg>,
    host: &str,
    port: u32,
    reply: ChannelOpenHandle,
) {
    let refusal =
        forbidden(auth, auth.grant.port_forwarding, PERMIT_PORT_FORWARDING).or_else(|| {
            u16::try_from(port)
                .is_err()
                .then(|| format!("invalid port {port}"))
        });
    let event = |allowed: bool, reason: Option<String>| SshEvent::PortForward {
        identity: auth.identity.clone(),
        host: host.to_owned(),
        port,
        allowed,
        reason,
    };
    if let Some(reason) = refusal {
        conn.emit(event(false, Some(reason)));
        reply
            .reject(ChannelOpenFailure::AdministrativelyProhibited)
            .await;
        return;
    }
    let (conn, auth, host) = (conn.clone(), auth.clone(), host.to_owned());
    // Connecting may take seconds: not on the connection's russh task.
    tokio::spawn(async move {
        let port16 = u16::try_from(port).unwrap_or(0);
        let connected =
            tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host.as_str(), port16)))
                .await;
        let event = |allowed: bool, reason: Option<String>| SshEvent::PortForward {
            identity: auth.identity.clone(),
            host: host.clone(),
            port,
            allowed,
            reason,
        };
        let mut tcp = match connected {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => {
                conn.emit(event(false, Some(format!("connect failed: {e}"))));
                reply.reject(ChannelOpenFailure::ConnectFailed).await;
                return;
            }
            Err(_) => {
                conn.emit(event(false, Some("connect timed out".to_owned())));
                reply.reject(ChannelOpenFailure::ConnectFailed).await;
                return;
            }
        };
        let _ = tcp.set_nodelay(true);
        conn.emit(event(true, None));
        reply.accept().await;
        let mut stream = channel.into_stream();
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut stream, &mut tcp) => {}
            () = conn.closed.cancelled() => {}
        }
    });
}

/// Handles `auth-agent-req@openssh.com`: returns the socket path when
/// allowed (creating it on first use), or why not.
pub(crate) fn agent_forwarding(
    conn: &Arc<Conn>,
    auth: &Arc<Authenticated>,
    handle: &russh::server::Handle,
) -> std::result::Result<PathBuf, String> {
    if let Some(reason) = forbidden(auth, auth.grant.agent_forwarding, PERMIT_AGENT_FORWARDING) {
        return Err(reason);
    }
    let mut slot = Conn::lock(&conn.agent_socket);
    if let Some(path) = slot.as_ref() {
        return Ok(path.clone());
    }
    let path = listen_for_agent_clients(conn, auth, handle.clone()).map_err(|e| e.to_string())?;
    *slot = Some(path.clone());
    Ok(path)
}

/// Creates a private directory owned by the login user with a socket in
/// it; every connection to the socket becomes an agent channel back to the
/// client.
fn listen_for_agent_clients(
    conn: &Arc<Conn>,
    auth: &Authenticated,
    handle: russh::server::Handle,
) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("keygate-agent-{}", uuid::Uuid::new_v4().simple()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(SshdError::io(format!("create {}", dir.display())))?;
    let sock = dir.join("agent.sock");
    let listener =
        UnixListener::bind(&sock).map_err(SshdError::io(format!("listen on {}", sock.display())));
    let listener = match listener {
        Ok(l) => l,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
    };
    let owned = std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600))
        .map_err(SshdError::io("chmod the agent socket"))
        .and_then(|()| {
            if auth.user.switch {
                for p in [&dir, &sock] {
                    nix::unistd::chown(p, Some(auth.user.uid), Some(auth.user.gid))
                        .map_err(SshdError::sys(format!("chown {}", p.display())))?;
                }
            }
            Ok(())
        });
    if let Err(e) = owned {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e);
    }
    let closed = conn.closed.clone();
    let cleanup_dir = dir.clone();
    tokio::spawn(async move {
        let limit = Arc::new(Semaphore::new(MAX_AGENT_CONNECTIONS));
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                () = closed.cancelled() => break,
            };
            let Ok((mut local, _)) = accepted else {
                // Out of descriptors or similar: do not spin.
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            };
            // Beyond the limit the local client is simply closed.
            let Ok(permit) = limit.clone().try_acquire_owned() else {
                continue;
            };
            let (handle, closed) = (handle.clone(), closed.clone());
            tokio::spawn(async move {
                let _permit = permit;
                let Ok(channel) = handle.channel_open_agent().await else {
                    return;
                };
                let mut remote = channel.into_stream();
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut local, &mut remote) => {}
                    () = closed.cancelled() => {}
                }
            });
        }
        let _ = std::fs::remove_dir_all(&cleanup_dir);
    });
    Ok(sock)
}
