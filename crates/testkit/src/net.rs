//! Loopback ports for peers under test.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::{Mutex, PoisonError};

use crate::{Result, TestkitError};

/// Ports already handed out by this process. The kernel readily gives a
/// just-released port to the next `bind(0)`, so two tests running in
/// parallel would otherwise often be told the same "free" port.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
/// Tries before giving up on finding a port not handed out before.
const ATTEMPTS: u32 = 64;

/// A TCP port on 127.0.0.1 that was free a moment ago and that this
/// process has not returned before.
///
/// The port is released before returning, so another process may grab it
/// before the caller binds; launchers that use it ([`crate::Sshd`]) retry
/// with a new port when the bind fails.
pub fn free_port() -> Result<u16> {
    let mut seen = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
    let seen = seen.get_or_insert_with(HashSet::new);
    let mut last = 0;
    for _ in 0..ATTEMPTS {
        let listener =
            TcpListener::bind(("127.0.0.1", 0)).map_err(TestkitError::io("bind 127.0.0.1:0"))?;
        last = listener
            .local_addr()
            .map_err(TestkitError::io("read the local address of 127.0.0.1:0"))?
            .port();
        if seen.insert(last) {
            return Ok(last);
        }
    }
    // Every try repeated a port: the ephemeral range is nearly exhausted;
    // a repeat is still better than failing the test here.
    Ok(last)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )]
    use super::*;

    #[test]
    fn free_port_is_bindable() {
        let port = free_port().unwrap();
        assert_ne!(port, 0);
        TcpListener::bind(("127.0.0.1", port)).unwrap();
    }

    #[test]
    fn free_port_does_not_repeat() {
        let ports: Vec<u16> = (0..20).map(|_| free_port().unwrap()).collect();
        let unique: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(unique.len(), ports.len(), "{ports:?}");
    }
}
