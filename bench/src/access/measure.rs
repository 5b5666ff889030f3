//! The three measurements: held sessions' memory (B8), session latency
//! (B3) and streaming throughput (B1 directly, B2 through a jump). Time
//! comes from the monotonic clock of `keygate_clock`.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use keygate_clock::SharedClock;

use super::client::{Route, command};
use super::cluster::{Killed, Peers, clock};
use super::memory::{self, Memory};
use super::report::SessionMemory;
use crate::BenchError;

/// How long held sessions may take to come up.
const SESSIONS_UP: Duration = Duration::from_secs(120);
/// How often to look whether they are up.
const POLL: Duration = Duration::from_millis(100);
/// Pause between the last session coming up and the reading: the
/// servers finish per-session set-up (buffers, bookkeeping) after the
/// command started.
const SETTLE: Duration = Duration::from_secs(1);
/// Sessions started at once: both servers see bursts, not 128 handshakes
/// in the same millisecond (which would measure the accept queue).
const BURST: usize = 16;
/// How long a held session's `sleep` lasts: long enough for 128 sessions
/// to come up on a busy machine, short enough not to linger for long
/// after the client is gone.
const HOLD_SECS: u64 = 300;

/// Timings of one route in B3, in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Latency {
    /// The route.
    pub route: Route,
    /// Every run's wall-clock time, in run order.
    pub secs: Vec<f64>,
}

/// The routes the throughput loop runs, in the order each round runs
/// them: B1's pair (agent and sshd directly), then B2's (agent through the
/// proxy, sshd through an sshd jump host) with the relay to an agentless
/// sshd last, next to the jump it is compared with (B2b).
pub const THROUGHPUT_ROUTES: [Route; 5] = [
    Route::AgentDirect,
    Route::SshdDirect,
    Route::AgentProxy,
    Route::SshdJump,
    Route::RelayProxy,
];

/// One route's transfers in the throughput loop.
#[derive(Debug, Clone, PartialEq)]
pub struct Transfers {
    /// The route.
    pub route: Route,
    /// Bytes per second, one per round, in round order.
    pub rates: Vec<f64>,
}

/// B1/B2's transfers: every route of [`THROUGHPUT_ROUTES`] once per
/// round, alternating, so a ratio pairs transfers of the same round.
#[derive(Debug, Clone, PartialEq)]
pub struct Throughput {
    /// File size.
    pub bytes: u64,
    /// One entry per route, in [`THROUGHPUT_ROUTES`] order.
    pub routes: Vec<Transfers>,
}

impl Throughput {
    /// `route`'s rates, one per round (empty when it did not run).
    pub fn rates(&self, route: Route) -> &[f64] {
        self.routes
            .iter()
            .find(|t| t.route == route)
            .map_or(&[], |t| t.rates.as_slice())
    }
}

/// The `p`-th percentile (0–100, nearest rank) of `values`; 0 for none.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v.get(rank.min(v.len()) - 1).copied().unwrap_or(0.0)
}

/// Runs `route`'s `remote` command to completion and returns its wall
/// time and stdout length; a failing session stops the benchmark.
fn timed(
    peers: &Peers,
    clock: &SharedClock,
    route: Route,
    remote: &str,
) -> Result<(Duration, u64), BenchError> {
    let start = clock.monotonic();
    let mut child = command(peers, route, remote)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| BenchError::op("run ssh", e))?;
    let mut bytes = 0u64;
    if let Some(mut out) = child.stdout.take() {
        // Counted, not stored: the client writes into a pipe as it would
        // into `> /dev/null`, and the count proves every byte arrived.
        let mut buf = vec![0u8; 256 << 10];
        loop {
            match out.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => bytes += n as u64,
                Err(e) => return Err(BenchError::op("read ssh's stdout", e)),
            }
        }
    }
    let o = child
        .wait_with_output()
        .map_err(|e| BenchError::op("wait for ssh", e))?;
    let elapsed = clock.monotonic().saturating_sub(start);
    if !o.status.success() {
        return Err(BenchError::Operation(format!(
            "ssh via {route:?} `{remote}` exited with {}: {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        )));
    }
    Ok((elapsed, bytes))
}

/// B3: `exec true` over each route, interleaved so load bursts hit every
/// route alike; one untimed warm-up each (host keys, page cache).
pub fn latency(peers: &Peers, runs: usize) -> Result<Vec<Latency>, BenchError> {
    let clock = clock();
    let routes = [
        Route::AgentDirect,
        Route::SshdDirect,
        Route::AgentProxy,
        Route::SshdJump,
    ];
    let mut out: Vec<Latency> = routes
        .iter()
        .map(|r| Latency {
            route: *r,
            secs: Vec::with_capacity(runs),
        })
        .collect();
    for route in routes {
        timed(peers, &clock, route, "true")?;
    }
    for _ in 0..runs {
        for l in &mut out {
            let (t, _) = timed(peers, &clock, l.route, "true")?;
            l.secs.push(t.as_secs_f64());
        }
    }
    Ok(out)
}

/// Writes `bytes` of incompressible-looking data to `path` (a pattern
/// that changes every block, so nothing is sparse or all zeros).
fn write_file(path: &Path, bytes: u64) -> Result<(), BenchError> {
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(path).map_err(|e| BenchError::setup("create the big file", e))?,
    );
    let mut block = vec![0u8; 1 << 20];
    let mut written = 0u64;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    while written < bytes {
        for chunk in block.chunks_mut(8) {
            // xorshift: cheap, and no two blocks alike.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let le = seed.to_le_bytes();
            chunk.copy_from_slice(le.get(..chunk.len()).unwrap_or(&[]));
        }
        let n = usize::try_from((bytes - written).min(block.len() as u64)).unwrap_or(0);
        f.write_all(block.get(..n).unwrap_or(&[]))
            .map_err(|e| BenchError::setup("write the big file", e))?;
        written += n as u64;
    }
    f.flush()
        .map_err(|e| BenchError::setup("write the big file", e))
}

/// B1 and B2: `cat FILE` over every route of [`THROUGHPUT_ROUTES`], one
/// after another in each round.
pub fn throughput(peers: &Peers, bytes: u64, rounds: usize) -> Result<Throughput, BenchError> {
    let clock = clock();
    let path = peers.dir.path().join("bigfile");
    write_file(&path, bytes)?;
    let remote = format!("cat {}", path.display());
    let mut t = Throughput {
        bytes,
        routes: THROUGHPUT_ROUTES
            .iter()
            .map(|r| Transfers {
                route: *r,
                rates: Vec::with_capacity(rounds),
            })
            .collect(),
    };
    for _ in 0..rounds {
        for transfers in &mut t.routes {
            let route = transfers.route;
            let (elapsed, got) = timed(peers, &clock, route, &remote)?;
            if got != bytes {
                return Err(BenchError::Operation(format!(
                    "{route:?}: received {got} of {bytes} bytes"
                )));
            }
            transfers
                .rates
                .push(bytes as f64 / elapsed.as_secs_f64().max(1e-9));
        }
    }
    let _ = std::fs::remove_file(&path);
    Ok(t)
}

/// Which processes of a server's tree are the server: the node agent's
/// own (re-executed) processes, or sshd's listener and per-connection
/// processes — never the sessions' `sleep`s.
fn agent_proc(name: &str) -> bool {
    name == "keygate"
}

fn sshd_proc(name: &str) -> bool {
    name.starts_with("sshd")
}

/// Whether an sshd child (by its retitled command line) belongs to an
/// authenticated session (`sshd: root@notty`, `sshd: alice [priv]`), not
/// to a connection still before authentication (`[accepted]`, `[net]`,
/// `[preauth]`, or the raw re-exec `/usr/sbin/sshd … -R`) such as the one
/// sshd's start-up check leaves waiting out its grace time.
fn sshd_session(cmdline: &str) -> bool {
    cmdline.starts_with("sshd: ")
        && !["[listener]", "[accepted]", "[net]", "[preauth]"]
            .iter()
            .any(|tag| cmdline.contains(tag))
}

/// Held sessions: the clients (killed on drop) and the `sleep` they run.
struct Held {
    /// The `ssh` clients.
    clients: Vec<Killed>,
    /// `sleep`'s argument, unique to this run and batch.
    arg: String,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.clients.clear();
        // sshd leaves a session's command running when its client goes
        // (no PTY, so no hangup); end the `sleep`s this batch started.
        for pid in memory::pids_with_cmdline(&["sleep", &self.arg]) {
            // One may end by itself meanwhile; that is fine, so quietly.
            let _ = std::process::Command::new("kill")
                .arg(pid.to_string())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Opens `n` sessions `ssh … sleep HOLD.<pid><tag>` over `route`, waits
/// until every `sleep` runs, and returns them.
fn hold(peers: &Peers, route: Route, n: usize, tag: usize) -> Result<Held, BenchError> {
    let clock = clock();
    // This process's id makes the argument unique, so no other run's
    // leftovers are counted.
    let arg = format!("{HOLD_SECS}.{:07}{tag:03}", std::process::id());
    let mut held = Held {
        clients: Vec::with_capacity(n),
        arg: arg.clone(),
    };
    let clients = &mut held.clients;
    while clients.len() < n {
        let burst = BURST.min(n - clients.len());
        for _ in 0..burst {
            let child = command(peers, route, &format!("sleep {arg}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| BenchError::op("run ssh", e))?;
            clients.push(Killed(child));
        }
        let deadline = clock.monotonic().saturating_add(SESSIONS_UP);
        loop {
            let up = memory::pids_with_cmdline(&["sleep", &arg]).len();
            if up >= clients.len() {
                break;
            }
            if clock.monotonic() >= deadline {
                return Err(BenchError::Operation(format!(
                    "{route:?}: only {up} of {} held sessions came up in {SESSIONS_UP:?}",
                    clients.len()
                )));
            }
            std::thread::sleep(POLL);
        }
    }
    std::thread::sleep(SETTLE);
    Ok(held)
}

/// B8: idle memory of both servers, then with each count of held
/// sessions (agent and sshd measured at the same count back to back).
pub fn sessions(
    peers: &Peers,
    counts: &[usize],
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<SessionMemory>, BenchError> {
    let agent = || memory::measure(&memory::tree(peers.node_pid(), agent_proc));
    let sshd = || {
        let root = peers.sshd.pid();
        let mut pids = memory::tree(root, sshd_proc);
        pids.retain(|p| {
            *p == root
                || std::fs::read(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| sshd_session(&String::from_utf8_lossy(&c)))
        });
        memory::measure(&pids)
    };
    let mut out = vec![SessionMemory {
        sessions: 0,
        agent: agent(),
        sshd: sshd(),
    }];
    for (i, &n) in counts.iter().enumerate() {
        progress(&format!("B8: {n} held sessions"));
        let held = hold(peers, Route::AgentDirect, n, i * 2)?;
        let a: Memory = agent();
        drop(held);
        let held = hold(peers, Route::SshdDirect, n, i * 2 + 1)?;
        let s: Memory = sshd();
        drop(held);
        out.push(SessionMemory {
            sessions: n,
            agent: a,
            sshd: s,
        });
    }
    Ok(out)
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
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 5.0);
        assert_eq!(percentile(&v, 90.0), 9.0);
        assert_eq!(percentile(&v, 100.0), 10.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&[3.0], 90.0), 3.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn rates_are_found_by_route_and_empty_for_a_route_not_run() {
        let t = Throughput {
            bytes: 1,
            routes: vec![
                Transfers {
                    route: Route::AgentProxy,
                    rates: vec![1.0, 2.0],
                },
                Transfers {
                    route: Route::SshdJump,
                    rates: vec![3.0],
                },
            ],
        };
        assert_eq!(t.rates(Route::AgentProxy), [1.0, 2.0]);
        assert_eq!(t.rates(Route::SshdJump), [3.0]);
        assert!(t.rates(Route::RelayProxy).is_empty());
    }

    #[test]
    fn the_big_file_has_the_exact_size_and_no_zero_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_file(&path, (1 << 20) + 3).unwrap();
        let data = std::fs::read(&path).unwrap();
        assert_eq!(data.len(), (1 << 20) + 3);
        assert!(data.chunks(4096).all(|c| c.iter().any(|b| *b != 0)));
        assert_ne!(data[..4096], data[4096..8192]);
    }

    #[test]
    fn only_server_processes_are_summed() {
        assert!(agent_proc("keygate"));
        assert!(!agent_proc("sleep") && !agent_proc("bash"));
        assert!(sshd_proc("sshd") && sshd_proc("sshd-session"));
        assert!(!sshd_proc("sleep"));
        assert!(sshd_session("sshd: root@notty\0"));
        assert!(sshd_session("sshd: alice [priv]\0"));
        for preauth in [
            "sshd: [accepted]\0",
            "sshd: [net]\0",
            "sshd: root [preauth]\0",
            "/usr/sbin/sshd\0-D\0-e\0-R\0",
            "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups\0",
            "",
        ] {
            assert!(!sshd_session(preauth), "{preauth:?}");
        }
    }
}
