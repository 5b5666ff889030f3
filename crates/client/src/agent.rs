use std::path::Path;
use std::process::Command;

/// Adds a key (and the `<key>-cert.pub` next to it) to the running
/// ssh-agent for `lifetime_secs`. Returns Ok(false) when no agent runs.
pub fn add_to_agent(key_path: &Path, lifetime_secs: u64) -> Result<bool, String> {
    if std::env::var_os("SSH_AUTH_SOCK").is_none() {
        return Ok(false);
    }
    let out = Command::new("ssh-add")
        .arg("-t")
        .arg(lifetime_secs.max(1).to_string())
        .arg(key_path)
        .output()
        .map_err(|e| format!("cannot run ssh-add ({e}); install openssh-client"))?;
    if out.status.success() {
        Ok(true)
    } else {
        Err(format!(
            "ssh-add failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
