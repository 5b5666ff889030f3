//! `kg ls`, `kg ssh`, `kg scp`, `kg proxy ssh`, `kg config`.
//!
//! Sessions run in the real OpenSSH client: `kg` hands it the profile's
//! key, certificate and `@cert-authority` known_hosts, and itself acts as
//! the ProxyCommand that carries the connection through the proxy. The SSH
//! session is end to end between `ssh` and the node; the host certificate
//! must name the node the user asked for.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use keygate_api::NodeInfo;
use keygate_client::output::{Format, out, structured, table};
use keygate_client::{Home, Profile, authenticated_client, connect_node};

use crate::Failure;

/// Exit status for kg's own failures in ssh-like commands (as ssh does).
const KG_FAILED: u8 = 255;

fn profile() -> Result<Profile, Failure> {
    use keygate_clock::Clock;
    let p = Home::from_env().current()?;
    if !p.is_valid(keygate_clock::SystemClock::new().now()) {
        return Err(Failure::no(format!(
            "your certificate expired at {}: run kg login",
            p.valid_until
        )));
    }
    Ok(p)
}

fn selector(args: &[String]) -> Result<Vec<(String, String)>, Failure> {
    args.iter()
        .map(|a| {
            a.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| Failure::usage(format!("{a:?}: filter nodes with key=value")))
        })
        .collect()
}

async fn nodes(p: &Profile) -> Result<Vec<NodeInfo>, Failure> {
    Ok(authenticated_client(p)?.get("/v1/nodes").await?)
}

fn matches(n: &NodeInfo, sel: &[(String, String)]) -> bool {
    sel.iter().all(|(k, v)| n.labels.get(k) == Some(v))
}

/// `kg ls [k=v …]`.
pub async fn ls(filters: &[String], format: Format) -> Result<(), Failure> {
    let sel = selector(filters)?;
    let p = profile()?;
    let list: Vec<NodeInfo> = nodes(&p)
        .await?
        .into_iter()
        .filter(|n| matches(n, &sel))
        .collect();
    match format {
        Format::Table => {
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|n| {
                    let labels: Vec<String> =
                        n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    vec![
                        n.name.clone(),
                        n.id.clone(),
                        labels.join(","),
                        n.logins.join(","),
                    ]
                })
                .collect();
            out(&table(&["NODE", "ID", "LABELS", "LOGINS"], &rows));
            Ok(())
        }
        f => structured(&list, f).map_err(Failure::usage),
    }
}

/// The OpenSSH options that route through `kg proxy ssh` and trust only
/// the cluster's host CA.
fn ssh_options(p: &Profile) -> Result<Vec<String>, Failure> {
    let me = std::env::current_exe()
        .map_err(|e| Failure::usage(format!("cannot find the kg binary: {e}")))?;
    Ok(vec![
        "-F".into(),
        "/dev/null".into(),
        "-o".into(),
        format!(
            "ProxyCommand=\"{}\" proxy ssh --proxy {} %r@%h:%p",
            me.display(),
            p.proxy
        ),
        "-o".into(),
        format!("UserKnownHostsFile=\"{}\"", p.known_hosts_path().display()),
        "-o".into(),
        "GlobalKnownHostsFile=/dev/null".into(),
        "-o".into(),
        "StrictHostKeyChecking=yes".into(),
        "-o".into(),
        format!("IdentityFile=\"{}\"", p.key_path().display()),
        "-o".into(),
        format!("CertificateFile=\"{}\"", p.cert_path().display()),
        "-o".into(),
        "IdentitiesOnly=yes".into(),
        "-o".into(),
        "ServerAliveInterval=15".into(),
    ])
}

fn default_login(p: &Profile) -> Option<String> {
    let me = std::env::var("USER").ok();
    match me {
        Some(u) if p.logins.contains(&u) => Some(u),
        _ => p.logins.first().cloned(),
    }
}

#[derive(clap::Args)]
pub struct SshArgs {
    /// Local port forwarding, as ssh -L.
    #[arg(short = 'L', value_name = "[bind:]port:host:hostport")]
    forward: Vec<String>,
    /// Force a terminal.
    #[arg(short = 't')]
    tty: bool,
    /// Login to use (or write login@node).
    #[arg(short = 'l', long = "login")]
    login: Option<String>,
    /// [login@]node, or key=value to run on every matching node.
    target: String,
    /// Command to run (default: an interactive shell).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

fn ssh_command(p: &Profile, login: &str, node: &str, a: &SshArgs) -> Result<Command, Failure> {
    let mut c = Command::new("ssh");
    c.args(ssh_options(p)?);
    for f in &a.forward {
        c.arg("-L").arg(f);
    }
    if a.tty {
        c.arg("-t");
    }
    c.arg("-l").arg(login).arg(node);
    if !a.command.is_empty() {
        c.arg("--").args(&a.command);
    }
    Ok(c)
}

/// `kg ssh`: exits with the remote command's status, 255 for kg's own
/// failures.
pub async fn ssh(a: SshArgs) -> Result<u8, Failure> {
    let p = profile().map_err(|f| Failure {
        code: KG_FAILED,
        ..f
    })?;
    let (login, target) = match a.target.split_once('@') {
        Some((l, t)) => (Some(l.to_owned()), t.to_owned()),
        None => (a.login.clone(), a.target.clone()),
    };
    let login = login.or_else(|| default_login(&p)).ok_or_else(|| Failure {
        code: KG_FAILED,
        message: "your roles allow no logins: ask an admin, or see kg status".into(),
    })?;
    // The node only accepts logins among the certificate's principals and,
    // before authentication, cannot say why it refuses; say it here.
    if !p.logins.contains(&login) {
        return Err(Failure {
            code: KG_FAILED,
            message: format!(
                "login {login:?} is denied: it is not in your certificate (your logins: {}); a role denies it or none allows it; see kg status, or run kg login if an admin changed your roles",
                if p.logins.is_empty() {
                    "none".to_owned()
                } else {
                    p.logins.join(", ")
                }
            ),
        });
    }
    if target.contains('=') {
        return fan_out(&p, &login, &target, &a).await;
    }
    let mut c = ssh_command(&p, &login, &target, &a).map_err(|f| Failure {
        code: KG_FAILED,
        ..f
    })?;
    // Replace this process: ssh owns the terminal, signals and exit status.
    let err = c.exec();
    Err(Failure {
        code: KG_FAILED,
        message: format!("cannot run ssh ({err}): install openssh-client"),
    })
}

async fn fan_out(p: &Profile, login: &str, target: &str, a: &SshArgs) -> Result<u8, Failure> {
    if a.command.is_empty() {
        return Err(Failure {
            code: KG_FAILED,
            message: "a key=value selector needs a command to run".into(),
        });
    }
    let sel = selector(&[target.to_owned()]).map_err(|f| Failure {
        code: KG_FAILED,
        ..f
    })?;
    let list: Vec<NodeInfo> = nodes(p)
        .await
        .map_err(|f| Failure {
            code: KG_FAILED,
            ..f
        })?
        .into_iter()
        .filter(|n| matches(n, &sel))
        .collect();
    if list.is_empty() {
        return Err(Failure {
            code: KG_FAILED,
            message: format!("no node you may reach matches {target}"),
        });
    }
    let mut worst = 0u8;
    let mut children = Vec::new();
    for n in &list {
        let mut c = ssh_command(p, login, &n.name, a).map_err(|f| Failure {
            code: KG_FAILED,
            ..f
        })?;
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = c.spawn().map_err(|e| Failure {
            code: KG_FAILED,
            message: format!("cannot run ssh ({e}): install openssh-client"),
        })?;
        children.push((n.name.clone(), child));
    }
    for (name, child) in children {
        let o = child.wait_with_output().map_err(|e| Failure {
            code: KG_FAILED,
            message: e.to_string(),
        })?;
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            out(&format!("[{name}] {line}\n"));
        }
        for line in String::from_utf8_lossy(&o.stderr).lines() {
            eprintln!("[{name}] {line}");
        }
        let code = o
            .status
            .code()
            .and_then(|c| u8::try_from(c).ok())
            .unwrap_or(KG_FAILED);
        if worst == 0 {
            worst = code;
        }
    }
    Ok(worst)
}

/// `kg scp`: copies with OpenSSH's scp through the proxy.
pub fn scp(recursive: bool, paths: &[String]) -> Result<u8, Failure> {
    let p = profile().map_err(|f| Failure {
        code: KG_FAILED,
        ..f
    })?;
    if paths.len() < 2 {
        return Err(Failure {
            code: KG_FAILED,
            message: "kg scp needs a source and a destination".into(),
        });
    }
    let mut c = Command::new("scp");
    c.args(ssh_options(&p).map_err(|f| Failure {
        code: KG_FAILED,
        ..f
    })?);
    if recursive {
        c.arg("-r");
    }
    // Bare node:path gets the default login.
    let login = default_login(&p);
    for path in paths {
        match (path.split_once(':'), &login) {
            (Some((host, _)), Some(l)) if !host.contains('@') && !host.contains('/') => {
                c.arg(format!("{l}@{path}"))
            }
            _ => c.arg(path),
        };
    }
    let err = c.exec();
    Err(Failure {
        code: KG_FAILED,
        message: format!("cannot run scp ({err}): install openssh-client"),
    })
}

/// Bytes moved per read of stdin or of the connection.
const PIPE_CHUNK: usize = 64 * 1024;
/// Chunks in flight each way.
const PIPE_DEPTH: usize = 8;

/// `kg proxy ssh LOGIN@NODE:PORT`: the ProxyCommand. Splices stdin/stdout
/// with a stream to the node.
pub async fn proxy_ssh(target: &str, proxy: Option<String>) -> Result<(), Failure> {
    let home = Home::from_env();
    let p = match proxy {
        Some(px) => home.load(&px)?,
        None => home.current()?,
    };
    let host_port = target.rsplit_once('@').map_or(target, |(_, h)| h);
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, pt)) => (h, pt.parse::<u16>().unwrap_or(22)),
        None => (host_port, 22),
    };
    // `node.cluster` (from `kg config`'s Host pattern) names node `node`.
    let node = host
        .strip_suffix(&format!(".{}", p.cluster))
        .unwrap_or(host);
    let stream = connect_node(&p, node, port).await.map_err(|e| match e {
        keygate_client::ClientError::Connect {
            denied: true,
            message,
        } => Failure::no(message),
        other => Failure::usage(other.to_string()),
    })?;
    let (mut rd, mut wr) = tokio::io::split(stream);
    // Plain threads with large buffers move stdin and stdout: tokio's
    // stdio hands every small write to a blocking-pool thread, which made
    // this hop the bottleneck of bulk transfers (BENCHMARKS.md, B2).
    let (in_tx, mut in_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(PIPE_DEPTH);
    let (eof_tx, eof_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; PIPE_CHUNK];
        let mut forwarding = true;
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                // Once the far side is gone, keep reading (and dropping)
                // so ssh never blocks on a full pipe.
                Ok(n) => {
                    if forwarding {
                        forwarding = in_tx
                            .blocking_send(buf.get(..n).unwrap_or_default().to_vec())
                            .is_ok();
                    }
                }
            }
        }
        let _ = eof_tx.send(());
    });
    let (out_tx, mut out_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(PIPE_DEPTH);
    let (written_tx, written_rx) = tokio::sync::oneshot::channel::<std::io::Result<()>>();
    std::thread::spawn(move || {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        let mut result = Ok(());
        while let Some(chunk) = out_rx.blocking_recv() {
            if let Err(e) = stdout.write_all(&chunk).and_then(|()| stdout.flush()) {
                result = Err(e);
                break;
            }
        }
        drop(stdout);
        // The far side is done: point stdout at /dev/null so ssh reads what
        // was written, then EOF at once (it would otherwise wait for this
        // process to exit to learn the connection is gone).
        if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
            let _ = nix::unistd::dup2_stdout(&null);
        }
        let _ = written_tx.send(result);
    });
    let up = async {
        while let Some(chunk) = in_rx.recv().await {
            if tokio::io::AsyncWriteExt::write_all(&mut wr, &chunk)
                .await
                .is_err()
            {
                break;
            }
        }
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut wr).await;
    };
    let down = async {
        let mut buf = vec![0u8; PIPE_CHUNK];
        loop {
            let n = tokio::io::AsyncReadExt::read(&mut rd, &mut buf).await?;
            if n == 0 {
                break;
            }
            if out_tx
                .send(buf.get(..n).unwrap_or_default().to_vec())
                .await
                .is_err()
            {
                break;
            }
        }
        drop(out_tx);
        // Everything received is written out before the session counts as over.
        written_rx.await.unwrap_or(Ok(()))
    };
    // The session ends when the node closes its side.
    let r = tokio::select! {
        r = down => r.map_err(|e| Failure::usage(format!("connection to {node} broke: {e}"))),
        () = async { up.await; std::future::pending::<()>().await } => Ok(()),
    };
    // ssh may still be writing when the far side closes (e.g. right after
    // a refusal whose reason is in the disconnect message it has not read
    // yet): keep its pipe open briefly, so it reads the reason instead of
    // dying on EPIPE.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), eof_rx).await;
    r
}

/// `kg config`: an ssh_config block for plain OpenSSH.
pub fn config() -> Result<(), Failure> {
    let p = Home::from_env().current()?;
    let me = std::env::current_exe()
        .map_err(|e| Failure::usage(format!("cannot find the kg binary: {e}")))?;
    out(&format!(
        "# Keygate cluster {cluster} via {proxy} (generated by kg config)\nHost *.{cluster}\n    ProxyCommand \"{kg}\" proxy ssh --proxy {proxy} %r@%h:%p\n    UserKnownHostsFile \"{kh}\"\n    IdentityFile \"{key}\"\n    CertificateFile \"{cert}\"\n    IdentitiesOnly yes\n    StrictHostKeyChecking yes\n",
        cluster = p.cluster,
        proxy = p.proxy,
        kg = me.display(),
        kh = p.known_hosts_path().display(),
        key = p.key_path().display(),
        cert = p.cert_path().display()
    ));
    Ok(())
}
