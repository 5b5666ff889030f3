#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! Ansible (PyPI `ansible-core`) end to end: `ansible all -m ping` over
//! plain OpenSSH configured only by `kg config` (ProxyCommand
//! `kg proxy ssh`, the profile's key and certificate, a known_hosts file
//! holding the cluster's `@cert-authority` line) against the two-node
//! cluster: `n1` inside the all-in-one daemon and `n2` reachable only
//! through its reverse tunnel. Host key checking stays on, so the host
//! certificates are what let Ansible in.
//!
//! Ansible runs with its default SSH arguments (ControlMaster/ControlPersist),
//! copies modules over sftp and runs them with the host's `python3` as the
//! throw-away `kgt-*` login: these tests need root, and ansible-core
//! (`scripts/test` installs it; without it they fail, never skip).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Output;

use keygate_e2e::{Cluster, LOCAL_NODE, REMOTE_NODE, Stopwatch, run, text};
use keygate_testkit::OsUser;
use keygate_testkit::ansible::{Ansible, AnsibleWorkspace};
use serde_json::Value;

/// ansible's exit status when some host was unreachable.
const UNREACHABLE: i32 = 4;

/// A role that allows the login trait on `env=dev` nodes only: `n1`.
const DEV_ONLY: &str = "
kind: role
version: v1
metadata: {name: dev-only}
spec:
  allow:
    logins: ['{{internal.logins}}']
    node_labels: {env: dev}
    rules:
      - resources: [node]
        verbs: [list, read]
";

/// A cluster, the `kg config` file and an inventory of both nodes.
struct Setup {
    /// Ansible's private config, temp dirs and control sockets. Declared
    /// first: dropped first, so its SSH masters close before the nodes
    /// stop and the login is deleted.
    ws: AnsibleWorkspace,
    /// The running cluster.
    c: Cluster,
    /// `kg config` output.
    ssh_config: PathBuf,
    /// The INI inventory.
    inventory: PathBuf,
    /// Inventory names of `n1`, `n2`: `<node>.<cluster>`, which the
    /// `Host *.<cluster>` block of `kg config` matches.
    hosts: [String; 2],
}

impl Setup {
    fn start() -> Setup {
        // First, so a machine without ansible fails before any cluster starts.
        let ansible = Ansible::find().unwrap_or_else(|e| panic!("{e}"));
        eprintln!(
            "{} ({})",
            ansible.version().unwrap(),
            ansible.program().display()
        );
        let c = Cluster::start().unwrap();
        let ws = ansible.workspace().unwrap();
        let ssh_config = c.ssh_config().unwrap();
        let hosts = [LOCAL_NODE.0, REMOTE_NODE.0].map(|n| format!("{n}.{}", c.name));
        let inventory = ws
            .write(
                "inventory.ini",
                &format!(
                    "[keygate]\n{}\n{}\n\n[keygate:vars]\nansible_user={}\n\
                     ansible_ssh_common_args='-F {}'\n",
                    hosts[0],
                    hosts[1],
                    c.login(),
                    ssh_config.display()
                ),
            )
            .unwrap();
        Setup {
            ws,
            c,
            ssh_config,
            inventory,
            hosts,
        }
    }

    /// `ansible all -i INVENTORY ARGS` with the profile's `KEYGATE_HOME`
    /// (which `kg proxy ssh` reads), timed, with each host's result read
    /// back from `--tree`.
    fn ansible(&self, args: &[&str]) -> Run {
        let tree = tempfile::Builder::new()
            .prefix("tree-")
            .tempdir_in(self.ws.path())
            .unwrap();
        let watch = Stopwatch::start();
        let out = run(
            self.ws
                .command()
                .env("KEYGATE_HOME", &self.c.home)
                .arg("all")
                .arg("-i")
                .arg(&self.inventory)
                .arg("--tree")
                .arg(tree.path())
                .args(args),
            "",
        );
        eprintln!(
            "ansible all {args:?}: {:?}, {}",
            watch.elapsed(),
            out.status
        );
        let mut hosts = BTreeMap::new();
        for entry in std::fs::read_dir(tree.path()).unwrap() {
            let path = entry.unwrap().path();
            let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}: {}", path.display(), text(&out)));
            let host = path.file_name().unwrap().to_string_lossy().into_owned();
            hosts.insert(host, v);
        }
        Run { out, hosts }
    }
}

/// What one `ansible` run did.
struct Run {
    /// Its exit status and output.
    out: Output,
    /// Each host's result, as the `tree` callback wrote it.
    hosts: BTreeMap<String, Value>,
}

/// How a host fared, as ansible's recap counts it.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    Failed,
    Unreachable,
}

impl Run {
    /// The exit code.
    fn code(&self) -> Option<i32> {
        self.out.status.code()
    }

    /// What ansible printed on stdout.
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }

    /// One host's result.
    fn result(&self, host: &str) -> &Value {
        self.hosts
            .get(host)
            .unwrap_or_else(|| panic!("no result for {host}: {self}"))
    }

    /// One host's outcome.
    fn outcome(&self, host: &str) -> Outcome {
        let r = self.result(host);
        if r["unreachable"] == true {
            Outcome::Unreachable
        } else if r["failed"] == true {
            Outcome::Failed
        } else {
            Outcome::Ok
        }
    }

    /// One host's error message.
    fn msg(&self, host: &str) -> &str {
        self.result(host)["msg"].as_str().unwrap_or_default()
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ansible: {}\n{}\nper host: {:?}",
            self.out.status,
            text(&self.out),
            self.hosts
        )
    }
}

#[test]
fn ansible_ping_two_nodes_through_kg_config() {
    let s = Setup::start();
    let config = std::fs::read_to_string(&s.ssh_config).unwrap();
    assert!(
        config.contains(&format!("Host *.{}", s.c.name)) && config.contains("proxy ssh"),
        "{config}"
    );

    let r = s.ansible(&["-m", "ping"]);
    assert_eq!(r.code(), Some(0), "{r}");
    for host in &s.hosts {
        assert_eq!(r.outcome(host), Outcome::Ok, "{host}: {r}");
        assert_eq!(r.result(host)["ping"], "pong", "{host}: {r}");
        // What a user sees: `n1.<cluster> | SUCCESS => { … "ping": "pong" }`.
        assert!(r.stdout().contains(&format!("{host} | SUCCESS =>")), "{r}");
    }
    assert_eq!(r.stdout().matches("\"ping\": \"pong\"").count(), 2, "{r}");

    let r = s.ansible(&["-m", "command", "-a", "id -un"]);
    assert_eq!(r.code(), Some(0), "{r}");
    for host in &s.hosts {
        let res = r.result(host);
        assert_eq!(res["rc"], 0, "{host}: {r}");
        assert_eq!(res["stdout"], s.c.login(), "{host} runs as the login: {r}");
    }
}

#[test]
fn ansible_host_key_checking_rests_on_the_host_ca() {
    let s = Setup::start();
    // The same run, but with a known_hosts file that lacks the cluster's
    // @cert-authority line: OpenSSH refuses both hosts, so ansible does.
    let empty = s.ws.write("empty_known_hosts", "").unwrap();
    let extra = format!(
        "ansible_ssh_extra_args='-o UserKnownHostsFile={}'",
        empty.display()
    );
    let r = s.ansible(&["-m", "ping", "-e", &extra]);
    assert_eq!(r.code(), Some(UNREACHABLE), "{r}");
    for host in &s.hosts {
        assert_eq!(r.outcome(host), Outcome::Unreachable, "{host}: {r}");
        assert!(
            r.msg(host).contains("Host key verification failed"),
            "{host}: {r}"
        );
    }
}

#[test]
fn ansible_reports_denied_hosts_and_logins_unreachable() {
    let s = Setup::start();
    let [n1, n2] = &s.hosts;

    // Roles that allow env=dev only: n1 answers, n2 is refused by the
    // proxy before any SSH is spoken.
    s.c.apply(DEV_ONLY).unwrap();
    s.c.set_admin(&["dev-only"], &[s.c.login()]).unwrap();
    let r = s.ansible(&["-m", "ping"]);
    assert_eq!(r.code(), Some(UNREACHABLE), "{r}");
    assert_eq!(r.outcome(n1), Outcome::Ok, "{r}");
    assert_eq!(r.result(n1)["ping"], "pong", "{r}");
    assert_eq!(r.outcome(n2), Outcome::Unreachable, "{r}");
    assert!(r.msg(n2).contains("Connection closed"), "{r}");
    // kg's reason is on the ProxyCommand's stderr, which OpenSSH sends to
    // /dev/null when ControlPersist is on (Ansible's default). Without it
    // the reason reaches ansible's message.
    let r = s.ansible(&[
        "-m",
        "ping",
        "--limit",
        n2,
        "-e",
        "ansible_ssh_args='-o ControlMaster=no'",
    ]);
    assert_eq!(r.code(), Some(UNREACHABLE), "{r}");
    assert_eq!(r.outcome(n2), Outcome::Unreachable, "{r}");
    assert!(
        r.msg(n2)
            .contains("does not exist or none of your roles allows a login there"),
        "{r}"
    );

    // A real OS account that is not among the certificate's logins: the
    // nodes refuse the certificate.
    let other = OsUser::create().unwrap();
    let r = s.ansible(&[
        "-m",
        "ping",
        "-e",
        &format!("ansible_user={}", other.name()),
    ]);
    assert_eq!(r.code(), Some(UNREACHABLE), "{r}");
    for host in &s.hosts {
        assert_eq!(r.outcome(host), Outcome::Unreachable, "{host}: {r}");
    }
    assert!(r.msg(n1).contains("Permission denied"), "{r}");
}
