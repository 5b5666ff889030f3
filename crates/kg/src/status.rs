use keygate_client::output::{Format, out, structured};
use keygate_client::{Home, Profile};
use time::OffsetDateTime;

use crate::Failure;

fn now() -> OffsetDateTime {
    use keygate_clock::Clock;
    keygate_clock::SystemClock::new().now()
}

fn remaining(p: &Profile) -> String {
    let left = p.valid_until - now();
    if left.is_negative() {
        return "EXPIRED: run kg login".into();
    }
    let mins = left.whole_minutes();
    format!("valid for {}h{:02}m", mins / 60, mins % 60)
}

/// Prints a profile in the chosen format.
pub fn print_profile(p: &Profile, format: Format) -> Result<(), Failure> {
    match format {
        Format::Table => {
            out(&format!(
                "> Profile:      https://{}\n  Logged in as: {}\n  Cluster:      {}\n  Roles:        {}\n  Logins:       {}\n  Valid until:  {} [{}]\n",
                p.proxy,
                p.user,
                p.cluster,
                p.roles.join(", "),
                if p.logins.is_empty() {
                    "-".into()
                } else {
                    p.logins.join(", ")
                },
                p.valid_until
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
                remaining(p)
            ));
            Ok(())
        }
        f => {
            let v = serde_json::json!({
                "proxy": p.proxy, "user": p.user, "cluster": p.cluster, "roles": p.roles,
                "logins": p.logins,
                "valid_until": p.valid_until.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                "expired": !p.is_valid(now()), "ca_pin": p.ca_pin,
            });
            structured(&v, f).map_err(Failure::usage)
        }
    }
}

/// `kg status`: exit 1 when not logged in or expired.
pub fn status(format: Format) -> Result<(), Failure> {
    let p = Home::from_env().current()?;
    print_profile(&p, format)?;
    if !p.is_valid(now()) {
        return Err(Failure::no(format!(
            "the certificate for {} expired at {}: run kg login",
            p.user, p.valid_until
        )));
    }
    Ok(())
}

/// `kg logout`.
pub fn logout() -> Result<(), Failure> {
    let home = Home::from_env();
    let current = home.current().ok();
    if let Some(p) = &current
        && std::env::var_os("SSH_AUTH_SOCK").is_some()
    {
        let _ = std::process::Command::new("ssh-add")
            .arg("-d")
            .arg(p.key_path())
            .output();
    }
    match home.logout()? {
        Some(p) => out(&format!("Logged out {} from {}.\n", p.user, p.proxy)),
        None => out("Not logged in.\n"),
    }
    Ok(())
}
