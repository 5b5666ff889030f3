use keygate_api::ApiClient;
use keygate_client::{Home, authenticated_client, parse_identity_file};

use crate::{Cli, Failure};

/// The API client for this invocation: admin socket, identity file, or the
/// current `kg` profile, in that order.
pub fn client(cli: &Cli) -> Result<ApiClient, Failure> {
    if let Some(dir) = &cli.data_dir {
        return Ok(ApiClient::unix(dir.join("admin.sock")));
    }
    if let Some(path) = &cli.identity {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Failure::usage(format!("cannot read identity file {}: {e}", path.display()))
        })?;
        return Ok(parse_identity_file(&text)?.client()?);
    }
    let profile = Home::from_env().current().map_err(|_| {
        Failure::usage("no credentials: use --data-dir DIR on the auth host, -i IDENTITY_FILE, or kg login first")
    })?;
    Ok(authenticated_client(&profile)?)
}

/// Prefix for the proxy to print in join/sign-up hints.
pub fn proxy_hint(cli: &Cli) -> String {
    if let Some(path) = &cli.identity
        && let Ok(text) = std::fs::read_to_string(path)
        && let Ok(id) = parse_identity_file(&text)
    {
        return id.proxy;
    }
    Home::from_env()
        .current()
        .map(|p| p.proxy)
        .unwrap_or_else(|_| "PROXY:3080".into())
}
