//! Authenticated re-issue over the public API: a real in-process cluster
//! (`keygate::start`: proxy → auth over mTLS, SQLite store, durable audit
//! log), hammered through the proxy with the admin's client certificate.
//! The baseline is `GET /v1/ping` on the same server through the same
//! proxy path with the same clients, which does no authentication, store
//! access, signing or auditing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use keygate::config::Config;
use keygate::{Running, StartOptions};
use keygate_api::{ApiClient, CertsResponse, LoginRequest, RenewRequest};
use keygate_authn::{Argon2Params, TotpSecret, totp_code_at};
use keygate_ca::verify_user_cert;
use keygate_client::{ClientKey, Home, anonymous_client, authenticated_client, fetch_ca};
use keygate_clock::SharedClock;
use serde::de::IgnoredAny;
use tempfile::TempDir;

use crate::BenchError;
use crate::measure::{Op, Rate, run_concurrent};

/// The first admin's password in the benchmark cluster.
const ADMIN_PASSWORD: &str = "bench-admin-password-0123";

/// A running cluster and clients logged in as its admin.
pub struct ApiBench {
    /// The clock everything is timed and stamped with.
    clock: SharedClock,
    /// The cluster; stopped (audit log flushed) by [`ApiBench::stop`].
    running: Running,
    /// Independent clients (one HTTP/2 connection each) with the admin's
    /// certificate.
    clients: Vec<ApiClient>,
    /// What every renewal sends.
    renew: Arc<RenewRequest>,
    /// Holds the data dir and the client profile; removed on drop.
    _dir: TempDir,
}

/// The API measurements, one per round.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiRates {
    /// `GET /v1/ping`.
    pub ping: Vec<Rate>,
    /// `POST /v1/certs/renew`.
    pub renew: Vec<Rate>,
    /// Concurrent request tasks.
    pub tasks: usize,
    /// Clients (connections) the tasks shared.
    pub clients: usize,
}

/// `GET /v1/ping`, response ignored (but it must be a 2xx).
#[derive(Clone)]
struct PingOp {
    /// Who sends it.
    client: ApiClient,
}

impl Op for PingOp {
    async fn once(&self) -> Result<(), BenchError> {
        let _: IgnoredAny = self
            .client
            .get("/v1/ping")
            .await
            .map_err(|e| BenchError::Api(format!("GET /v1/ping: {e}")))?;
        Ok(())
    }
}

/// `POST /v1/certs/renew`, response skipped over (but it must be a 2xx).
#[derive(Clone)]
struct RenewOp {
    /// Who sends it.
    client: ApiClient,
    /// The body.
    body: Arc<RenewRequest>,
}

impl Op for RenewOp {
    async fn once(&self) -> Result<(), BenchError> {
        let _: IgnoredAny = self
            .client
            .post("/v1/certs/renew", self.body.as_ref())
            .await
            .map_err(|e| BenchError::Api(format!("POST /v1/certs/renew: {e}")))?;
        Ok(())
    }
}

/// The TOTP seed in an `otpauth://` URI's `secret` parameter.
pub fn totp_secret_from_uri(uri: &str) -> Result<TotpSecret, BenchError> {
    let query = uri
        .strip_prefix("otpauth://")
        .and_then(|rest| rest.split_once('?'))
        .map(|(_, q)| q)
        .ok_or_else(|| BenchError::Setup("the admin TOTP URI is not an otpauth:// URI".into()))?;
    let secret = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("secret="))
        .ok_or_else(|| BenchError::Setup("the admin TOTP URI has no secret parameter".into()))?;
    TotpSecret::from_base32(secret)
        .map_err(|e| BenchError::setup("the admin TOTP secret is not base32", e))
}

impl ApiBench {
    /// Starts a cluster on loopback ports chosen by the OS, logs in as the
    /// admin once (password + TOTP) and builds `clients` authenticated
    /// clients from the saved profile, as `kg` would.
    pub async fn start(clock: SharedClock, clients: usize) -> Result<Self, BenchError> {
        keygate_tls::install_crypto_provider();
        let dir = tempfile::tempdir().map_err(|e| BenchError::setup("create a temp dir", e))?;
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut config = Config {
            data_dir: Some(dir.path().join("data")),
            cluster_name: Some("bench".into()),
            ..Config::default()
        };
        // Every listener on a port the OS picks, so runs never collide.
        config.auth.listen_addr = Some(any_port);
        config.proxy.web_addr = Some(any_port);
        config.proxy.ssh_addr = Some(any_port);
        config.proxy.tunnel_addr = Some(any_port);
        let running = keygate::start(StartOptions {
            config,
            admin_login: "root".into(),
            admin_password: Some(ADMIN_PASSWORD.into()),
            clock: clock.clone(),
            // Only the one setup login pays for it; the production cost
            // is measured on its own (see `measure_argon2`).
            argon2: Argon2Params::dangerous_cheap_for_tests(),
            // No node: B4 is about issuance, and a node's heartbeats and
            // snapshot refreshes would only add noise.
            local_node: None,
        })
        .await
        .map_err(|e| BenchError::setup("start the cluster", e))?;
        match Self::log_in(&clock, &running, &dir, clients).await {
            Ok((clients, renew)) => Ok(Self {
                clock,
                running,
                clients,
                renew: Arc::new(renew),
                _dir: dir,
            }),
            Err(e) => {
                running.stop().await;
                Err(e)
            }
        }
    }

    async fn log_in(
        clock: &SharedClock,
        running: &Running,
        dir: &TempDir,
        clients: usize,
    ) -> Result<(Vec<ApiClient>, RenewRequest), BenchError> {
        let proxy = running.web_addr.to_string();
        let ca = fetch_ca(&proxy, Some(&running.ca_pin))
            .await
            .map_err(|e| BenchError::setup("fetch the host CA", e))?;
        let anonymous =
            anonymous_client(&proxy, ca).map_err(|e| BenchError::setup("build a client", e))?;
        let otp = match &running.first.admin_totp_uri {
            Some(uri) => Some(
                totp_code_at(&totp_secret_from_uri(uri)?, clock.now())
                    .map_err(|e| BenchError::setup("compute the TOTP code", e))?,
            ),
            None => None,
        };
        let key = ClientKey::generate();
        let public_key = key
            .public_openssh()
            .map_err(|e| BenchError::setup("encode the client public key", e))?;
        let certs: CertsResponse = anonymous
            .post(
                "/v1/login",
                &LoginRequest {
                    user: "admin".into(),
                    password: ADMIN_PASSWORD.into(),
                    otp,
                    public_key: public_key.clone(),
                    ttl_secs: None,
                },
            )
            .await
            .map_err(|e| BenchError::setup("log in as admin", e))?;
        let profile = Home::at(dir.path().join("home"))
            .save(&proxy, &running.ca_pin, &key, &certs)
            .map_err(|e| BenchError::setup("save the profile", e))?;
        let clients = (0..clients.max(1))
            .map(|_| authenticated_client(&profile))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| BenchError::setup("build an authenticated client", e))?;
        let renew = RenewRequest {
            public_key,
            ttl_secs: None,
        };
        // One checked renewal: the loop below must measure real issuance.
        let first = clients
            .first()
            .ok_or_else(|| BenchError::Setup("no client was built".into()))?;
        let renewed: CertsResponse = first
            .post("/v1/certs/renew", &renew)
            .await
            .map_err(|e| BenchError::Api(format!("first renewal: {e}")))?;
        verify_user_cert(&renewed.ssh_cert, &renewed.user_ca_ssh, clock.now())
            .map_err(|e| BenchError::Api(format!("renewed certificate does not verify: {e}")))?;
        Ok((clients, renew))
    }

    fn pings(&self, tasks: usize) -> Vec<PingOp> {
        self.spread(tasks, |client| PingOp { client })
    }

    fn renewals(&self, tasks: usize) -> Vec<RenewOp> {
        self.spread(tasks, |client| RenewOp {
            client,
            body: self.renew.clone(),
        })
    }

    /// `tasks` operations, assigned to the clients round-robin.
    fn spread<O>(&self, tasks: usize, make: impl Fn(ApiClient) -> O) -> Vec<O> {
        self.clients
            .iter()
            .cycle()
            .take(tasks.max(1))
            .map(|c| make(c.clone()))
            .collect()
    }

    /// Pings per second with `tasks` concurrent tasks.
    pub async fn ping(&self, window: Duration, tasks: usize) -> Result<Rate, BenchError> {
        run_concurrent(&self.clock, window, self.pings(tasks)).await
    }

    /// Renewals per second with `tasks` concurrent tasks.
    pub async fn renew(&self, window: Duration, tasks: usize) -> Result<Rate, BenchError> {
        run_concurrent(&self.clock, window, self.renewals(tasks)).await
    }

    /// `rounds` interleaved rounds: ping, then renew, then ping again…
    pub async fn compare(
        &self,
        rounds: usize,
        window: Duration,
        tasks: usize,
    ) -> Result<ApiRates, BenchError> {
        // Warm up connections, the SQLite page cache and the audit writer.
        self.ping(window / 5, tasks).await?;
        self.renew(window / 5, tasks).await?;
        let mut out = ApiRates {
            ping: Vec::with_capacity(rounds),
            renew: Vec::with_capacity(rounds),
            tasks,
            clients: self.clients.len(),
        };
        for _ in 0..rounds {
            out.ping.push(self.ping(window, tasks).await?);
            out.renew.push(self.renew(window, tasks).await?);
        }
        Ok(out)
    }

    /// Stops the cluster in order (the audit log is flushed last).
    pub async fn stop(self) {
        self.running.stop().await;
    }
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
    fn totp_secret_is_read_from_the_uri() {
        let secret = TotpSecret::generate();
        let uri = secret.otpauth_uri("Keygate bench", "admin");
        assert_eq!(totp_secret_from_uri(&uri).unwrap(), secret);
    }

    #[test]
    fn bad_totp_uris_are_refused() {
        for uri in [
            "",
            "https://example.com/?secret=JBSWY3DPEHPK3PXP",
            "otpauth://totp/x:admin",
            "otpauth://totp/x:admin?issuer=x",
            "otpauth://totp/x:admin?secret=not*base32!",
            "otpauth://totp/x:admin?secret=",
        ] {
            assert!(
                matches!(totp_secret_from_uri(uri), Err(BenchError::Setup(_))),
                "{uri:?} was accepted"
            );
        }
    }
}
