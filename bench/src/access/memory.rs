//! Memory of a server process tree, read from `/proc`: resident set size
//! and proportional set size (PSS splits shared pages among the processes
//! mapping them, so summing PSS over sshd's per-connection processes does
//! not count its shared binary once per session).

use std::collections::BTreeMap;

/// Memory of the selected processes of one tree, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// Sum of `Rss` of the processes.
    pub rss_kib: u64,
    /// Sum of `Pss` of the processes.
    pub pss_kib: u64,
    /// How many processes were summed.
    pub processes: usize,
}

/// The value of `key` (a `Name:   123 kB` line) in `smaps_rollup` or
/// `status` text, in KiB.
pub fn kib_field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, rest) = line.split_once(':')?;
        if name.trim() != key {
            return None;
        }
        let mut parts = rest.split_whitespace();
        let value = parts.next()?.parse().ok()?;
        (parts.next() == Some("kB")).then_some(value)
    })
}

/// Parent pid and command name from a `/proc/<pid>/stat` line. The name
/// sits in parentheses and may itself hold spaces and parentheses, so the
/// fields are counted from the last `)`.
pub fn parse_stat(stat: &str) -> Option<(u32, String)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    let _state = rest.next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((ppid, name))
}

/// Every process: pid → (parent pid, command name).
fn process_table() -> BTreeMap<u32, (u32, String)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return BTreeMap::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            Some((pid, parse_stat(&stat)?))
        })
        .collect()
}

/// `root` and its descendants whose command name satisfies `keep` (the
/// root is always kept).
pub fn tree(root: u32, keep: impl Fn(&str) -> bool) -> Vec<u32> {
    let table = process_table();
    let mut out = vec![root];
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for (pid, (ppid, name)) in &table {
            if *ppid == parent {
                frontier.push(*pid);
                if keep(name) {
                    out.push(*pid);
                }
            }
        }
    }
    out
}

/// Summed memory of `pids`; a process that exited meanwhile is skipped.
pub fn measure(pids: &[u32]) -> Memory {
    let mut m = Memory::default();
    for pid in pids {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else {
            continue;
        };
        if let (Some(rss), Some(pss)) = (kib_field(&text, "Rss"), kib_field(&text, "Pss")) {
            m.rss_kib += rss;
            m.pss_kib += pss;
            m.processes += 1;
        }
    }
    m
}

/// Pids of the processes running exactly `argv` (`/proc/<pid>/cmdline`).
pub fn pids_with_cmdline(argv: &[&str]) -> Vec<u32> {
    let mut want = argv.join("\0");
    want.push('\0');
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            (cmdline == want.as_bytes()).then_some(pid)
        })
        .collect()
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

    const ROLLUP: &str = "55d0a0000000-7ffd [rollup]\nRss:               10496 kB\n\
                          Pss:                3172 kB\nPss_Anon:  1 kB\n";

    #[test]
    fn kib_fields_are_read_by_exact_name() {
        assert_eq!(kib_field(ROLLUP, "Rss"), Some(10496));
        assert_eq!(kib_field(ROLLUP, "Pss"), Some(3172));
        assert_eq!(kib_field(ROLLUP, "Pss_Anon"), Some(1));
        assert_eq!(kib_field(ROLLUP, "Swap"), None);
        assert_eq!(kib_field("Rss: lots kB", "Rss"), None);
        assert_eq!(kib_field("Rss: 12 pages", "Rss"), None);
        assert_eq!(kib_field("Rss: 12", "Rss"), None);
        assert_eq!(kib_field("", "Rss"), None);
    }

    #[test]
    fn stat_lines_give_parent_and_name() {
        assert_eq!(
            parse_stat("42 (sshd: root) (x) S 7 42 42 0"),
            Some((7, "sshd: root) (x".to_owned()))
        );
        assert_eq!(
            parse_stat("42 (keygate) S 1 42"),
            Some((1, "keygate".into()))
        );
        assert_eq!(parse_stat("42 keygate S 1"), None);
        assert_eq!(parse_stat("42 (keygate) S"), None);
        assert_eq!(parse_stat("42 (keygate) S x"), None);
        assert_eq!(parse_stat(") 42 ("), None);
    }

    #[test]
    fn this_process_is_measured_and_found() {
        let me = std::process::id();
        let m = measure(&tree(me, |_| false));
        assert_eq!(m.processes, 1);
        assert!(m.rss_kib > 0 && m.pss_kib > 0, "{m:?}");
        assert_eq!(measure(&[u32::MAX]), Memory::default());
        assert!(pids_with_cmdline(&["no-such-program", "--never"]).is_empty());
    }

    #[test]
    fn children_are_found_and_filtered_by_name() {
        let mut child = std::process::Command::new("sleep")
            .arg("30.4242")
            .spawn()
            .unwrap();
        let me = std::process::id();
        // Until the child has exec'd, its name and command line are ours.
        let mut found = Vec::new();
        for _ in 0..500 {
            found = pids_with_cmdline(&["sleep", "30.4242"]);
            if !found.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let all = tree(me, |n| n == "sleep");
        let none = tree(me, |n| n == "no-such-name");
        let m = measure(&all);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(all.contains(&child.id()), "{all:?}");
        assert_eq!(none, vec![me]);
        assert_eq!(found, vec![child.id()]);
        assert_eq!(m.processes, 2);
    }
}
