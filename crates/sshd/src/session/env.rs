//! The environment of a session's processes.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::Path;

use crate::auth::LoginUser;

/// Most `env` requests kept per channel.
pub(crate) const MAX_CLIENT_VARS: usize = 64;
/// Longest accepted value of a client variable.
const MAX_VALUE_LEN: usize = 4096;
/// `PATH` for ordinary users (Debian's default).
const USER_PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/games";
/// `PATH` for root.
const ROOT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Whether a client may set `name` to `value` (`env` request). Only
/// locale, time zone and terminal variables: anything else (`LD_PRELOAD`,
/// `PATH`, `BASH_ENV`…) could change what runs.
pub(crate) fn client_var_allowed(name: &str, value: &str) -> bool {
    let name_ok = matches!(name, "LANG" | "LANGUAGE" | "TZ" | "TERM" | "COLORTERM")
        || name.strip_prefix("LC_").is_some_and(|rest| {
            !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
        });
    name_ok && value.len() <= MAX_VALUE_LEN && !value.contains('\0')
}

/// Where the session's processes run and who they talk to.
pub(crate) struct EnvContext<'a> {
    /// The OS account.
    pub user: &'a LoginUser,
    /// The session id.
    pub session_id: &'a str,
    /// The client's address.
    pub remote: SocketAddr,
    /// Our address, if known.
    pub local: Option<SocketAddr>,
    /// `(TERM, /dev/pts/N)` when a PTY was allocated.
    pub tty: Option<(&'a str, &'a str)>,
    /// Variables the client set (already filtered).
    pub client: &'a [(String, String)],
    /// The forwarded agent's socket.
    pub agent_socket: Option<&'a Path>,
}

/// The full environment (the daemon's own environment is never passed on).
pub(crate) fn build(ctx: &EnvContext<'_>) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = Vec::new();
    let mut set = |k: &str, v: OsString| {
        env.retain(|(name, _)| name != k);
        env.push((k.into(), v));
    };
    for (k, v) in ctx.client {
        set(k, v.into());
    }
    let user = ctx.user;
    set("USER", user.name.clone().into());
    set("LOGNAME", user.name.clone().into());
    set("HOME", user.home.clone().into_os_string());
    set("SHELL", user.shell.clone().into_os_string());
    set("MAIL", format!("/var/mail/{}", user.name).into());
    let path = if user.uid.is_root() {
        ROOT_PATH
    } else {
        USER_PATH
    };
    set("PATH", path.into());
    let (lip, lport) = ctx.local.map_or_else(
        || ("0.0.0.0".to_owned(), 0),
        |l| (l.ip().to_string(), l.port()),
    );
    set(
        "SSH_CONNECTION",
        format!("{} {} {lip} {lport}", ctx.remote.ip(), ctx.remote.port()).into(),
    );
    set(
        "SSH_CLIENT",
        format!("{} {} {lport}", ctx.remote.ip(), ctx.remote.port()).into(),
    );
    if let Some((term, tty)) = ctx.tty {
        set("TERM", term.into());
        set("SSH_TTY", tty.into());
    }
    if let Some(sock) = ctx.agent_socket {
        set("SSH_AUTH_SOCK", sock.as_os_str().to_owned());
    }
    set("KEYGATE_SESSION_ID", ctx.session_id.into());
    env
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]
    use std::path::PathBuf;

    use nix::unistd::{Gid, Uid};

    use super::*;

    #[test]
    fn only_locale_and_terminal_variables_are_accepted() {
        for ok in ["LANG", "LC_ALL", "LC_CTYPE", "TZ", "TERM"] {
            assert!(client_var_allowed(ok, "x"), "{ok}");
        }
        for bad in [
            "LD_PRELOAD",
            "PATH",
            "BASH_ENV",
            "LC_",
            "LC_all",
            "HOME",
            "KEYGATE_SESSION_ID",
        ] {
            assert!(!client_var_allowed(bad, "x"), "{bad}");
        }
        assert!(!client_var_allowed("LANG", "a\0b"));
        assert!(!client_var_allowed("LANG", &"x".repeat(5000)));
    }

    #[test]
    fn our_variables_override_the_clients() {
        let user = LoginUser {
            name: "kgt-x".into(),
            uid: Uid::from_raw(1234),
            gid: Gid::from_raw(1234),
            groups: vec![],
            home: PathBuf::from("/home/kgt-x"),
            shell: PathBuf::from("/bin/bash"),
            switch: true,
        };
        let client = vec![
            ("TERM".to_owned(), "dumb".to_owned()),
            ("LANG".to_owned(), "C.UTF-8".to_owned()),
        ];
        let env = build(&EnvContext {
            user: &user,
            session_id: "sid",
            remote: "10.0.0.1:5555".parse().unwrap(),
            local: Some("127.0.0.1:22".parse().unwrap()),
            tty: Some(("xterm", "/dev/pts/3")),
            client: &client,
            agent_socket: None,
        });
        let get = |k: &str| {
            env.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.to_str().unwrap().to_owned())
        };
        assert_eq!(get("TERM").as_deref(), Some("xterm"));
        assert_eq!(get("LANG").as_deref(), Some("C.UTF-8"));
        assert_eq!(
            get("SSH_CONNECTION").as_deref(),
            Some("10.0.0.1 5555 127.0.0.1 22")
        );
        assert_eq!(get("SSH_CLIENT").as_deref(), Some("10.0.0.1 5555 22"));
        assert_eq!(get("PATH").as_deref(), Some(USER_PATH));
        assert_eq!(get("KEYGATE_SESSION_ID").as_deref(), Some("sid"));
        assert_eq!(get("SSH_AUTH_SOCK"), None);
        assert_eq!(env.iter().filter(|(n, _)| n == "TERM").count(), 1);
    }
}
