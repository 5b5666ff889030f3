use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use keygate_api::{LoginRequest, RenewRequest, SignupRequest};
use keygate_client::output::{Format, out};
use keygate_client::{
    ClientKey, Home, add_to_agent, anonymous_client, authenticated_client, fetch_ca,
};
use keygate_tls::CertificateDer;

use crate::Failure;
use crate::status::print_profile;

#[derive(clap::Args)]
pub struct LoginArgs {
    /// Proxy address HOST:PORT [default: the current profile's].
    #[arg(long)]
    proxy: Option<String>,
    /// User name [default: $USER].
    #[arg(long)]
    user: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
    /// One-time code from your authenticator app.
    #[arg(long)]
    otp: Option<String>,
    /// Certificate lifetime, e.g. 1h (capped by your roles).
    #[arg(long)]
    ttl: Option<String>,
    /// Expected CA pin (sha256:…), as printed by keygate start / kgctl status.
    #[arg(long)]
    ca_pin: Option<String>,
    /// Trust the cluster without checking its CA pin. Dangerous.
    #[arg(long)]
    insecure: bool,
}

#[derive(clap::Args)]
pub struct SignupArgs {
    /// Proxy address HOST:PORT.
    #[arg(long)]
    proxy: String,
    /// The sign-up token from kgctl users add.
    #[arg(long)]
    token: String,
    /// Read the new password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
    /// Expected CA pin (sha256:…).
    #[arg(long)]
    ca_pin: Option<String>,
    /// Trust the cluster without checking its CA pin. Dangerous.
    #[arg(long)]
    insecure: bool,
}

fn parse_ttl(s: &str) -> Result<Duration, Failure> {
    s.parse::<keygate_types::Ttl>()
        .map(|t| t.as_duration())
        .map_err(|e| Failure::usage(format!("--ttl: {e}")))
}

fn read_secret(from_stdin: bool, prompt: &str) -> Result<String, Failure> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Failure::usage(format!("reading the password from stdin: {e}")))?;
        return Ok(line.trim_end_matches(['\n', '\r']).to_owned());
    }
    rpassword::prompt_password(prompt).map_err(|e| {
        Failure::usage(format!(
            "cannot prompt for a password ({e}); use --password-stdin"
        ))
    })
}

/// Decides which host CA to trust: the profile's, the pinned one, or the
/// one the user accepts at the first-use prompt.
async fn trusted_ca(
    proxy: &str,
    pin: Option<&str>,
    insecure: bool,
) -> Result<(CertificateDer<'static>, String), Failure> {
    if let Some(pin) = pin {
        let ca = fetch_ca(proxy, Some(pin))
            .await
            .map_err(|e| Failure::no(e.to_string()))?;
        return Ok((ca, pin.to_owned()));
    }
    let ca = fetch_ca(proxy, None)
        .await
        .map_err(|e| Failure::usage(e.to_string()))?;
    let seen = keygate_tls::ca_pin_of(&ca)
        .ok_or_else(|| Failure::usage("the proxy presented no usable CA certificate"))?;
    if insecure {
        eprintln!(
            "WARNING: --insecure: trusting the cluster at {proxy} WITHOUT checking its CA pin ({seen})."
        );
        eprintln!(
            "WARNING: anyone between you and the proxy could impersonate it. Use --ca-pin instead."
        );
        return Ok((ca, seen));
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::usage(format!(
            "the cluster at {proxy} is not trusted yet and there is no terminal to ask: pass --ca-pin {seen} if your admin confirms it"
        )));
    }
    eprint!(
        "The authenticity of the cluster at {proxy} can't be established.\nCA pin: {seen}\nCompare it with the pin your admin gave you. Trust it (yes/no)? "
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if answer.trim().eq_ignore_ascii_case("yes") {
        Ok((ca, seen))
    } else {
        Err(Failure::no("not trusted; nothing was sent"))
    }
}

pub async fn login(a: LoginArgs, format: Format) -> Result<(), Failure> {
    let home = Home::from_env();
    let current = home.current().ok();
    let proxy = match (&a.proxy, &current) {
        (Some(p), _) => p.clone(),
        (None, Some(c)) => c.proxy.clone(),
        (None, None) => {
            return Err(Failure::usage(
                "no cluster given: kg login --proxy HOST:PORT",
            ));
        }
    };
    let ttl = a.ttl.as_deref().map(parse_ttl).transpose()?;
    let key = ClientKey::generate();
    let public_key = key.public_openssh()?;
    let existing = home.load(&proxy).ok();
    // Renewal: a valid certificate for the same user logs in again without
    // the password (roles and locks are re-checked by auth).
    if let Some(p) = existing.as_ref().filter(|p| {
        use keygate_clock::Clock;
        p.is_valid(keygate_clock::SystemClock::new().now())
            && !a.password_stdin
            && a.user.as_deref().is_none_or(|u| u == p.user)
            && a.ca_pin.as_deref().is_none_or(|pin| pin == p.ca_pin)
    }) {
        let client = authenticated_client(p)?;
        let certs = client
            .post(
                "/v1/certs/renew",
                &RenewRequest {
                    public_key,
                    ttl_secs: ttl.map(|t| t.as_secs()),
                },
            )
            .await?;
        return finish(&home, &proxy, &p.ca_pin.clone(), &key, &certs, format);
    }
    let (ca, pin) = match existing.as_ref() {
        Some(p) if a.ca_pin.as_deref().is_none_or(|pin| pin == p.ca_pin) => {
            let pem = std::fs::read(p.ca_path())
                .map_err(|e| Failure::usage(format!("{}: {e}", p.ca_path().display())))?;
            let ca = <CertificateDer as keygate_tls::PemObject>::from_pem_slice(&pem)
                .map_err(|e| Failure::usage(format!("damaged profile CA ({e}): run kg logout")))?;
            (ca, p.ca_pin.clone())
        }
        _ => trusted_ca(&proxy, a.ca_pin.as_deref(), a.insecure).await?,
    };
    let user = match a.user.clone().or_else(|| std::env::var("USER").ok()) {
        Some(u) => u,
        None => return Err(Failure::usage("no user given: kg login --user NAME")),
    };
    let password = read_secret(a.password_stdin, &format!("Password for {user}: "))?;
    let client = anonymous_client(&proxy, ca)?;
    let req = LoginRequest {
        user,
        password,
        otp: a.otp.clone(),
        public_key,
        ttl_secs: ttl.map(|t| t.as_secs()),
    };
    let certs = client.post("/v1/login", &req).await?;
    finish(&home, &proxy, &pin, &key, &certs, format)
}

fn finish(
    home: &Home,
    proxy: &str,
    pin: &str,
    key: &ClientKey,
    certs: &keygate_api::CertsResponse,
    format: Format,
) -> Result<(), Failure> {
    let profile = home.save(proxy, pin, key, certs)?;
    use keygate_clock::Clock;
    let left = (certs.valid_before - keygate_clock::SystemClock::new().now())
        .whole_seconds()
        .max(1);
    match add_to_agent(&profile.key_path(), u64::try_from(left).unwrap_or(1)) {
        Ok(true) | Ok(false) => {}
        Err(e) => eprintln!("kg: warning: {e}"),
    }
    print_profile(&profile, format)
}

pub async fn signup(a: SignupArgs) -> Result<(), Failure> {
    let (ca, _pin) = trusted_ca(&a.proxy, a.ca_pin.as_deref(), a.insecure).await?;
    let password = read_secret(a.password_stdin, "New password (at least 12 characters): ")?;
    let client = anonymous_client(&a.proxy, ca)?;
    let resp: keygate_api::SignupResponse = client
        .post(
            "/v1/signup",
            &SignupRequest {
                token: a.token,
                password,
            },
        )
        .await?;
    let mut text = format!("Signed up as {}.\n", resp.user);
    if let Some(uri) = resp.totp_uri {
        text.push_str("Add this to your authenticator app now (it is shown only once):\n");
        text.push_str(&uri);
        text.push('\n');
    }
    text.push_str(&format!(
        "Next: kg login --proxy {} --user {}\n",
        a.proxy, resp.user
    ));
    out(&text);
    Ok(())
}
