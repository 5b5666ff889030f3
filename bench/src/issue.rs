//! Full in-process issuance: `AuthServer::issue_user_certs` (store reads,
//! policy, SSH + X.509 signing, one durable audit event) on a memory
//! backend and a real audit log in a temp dir.

use std::sync::Arc;
use std::time::Duration;

use keygate_audit::{AuditLog, AuditOptions, WriterStats};
use keygate_auth_service::{AuthOptions, AuthServer, IssueContext, load_or_create_kek};
use keygate_authn::Argon2Params;
use keygate_client::ClientKey;
use keygate_clock::SharedClock;
use keygate_store::MemoryBackend;
use tempfile::TempDir;

use crate::BenchError;
use crate::measure::{Op, Rate, run_concurrent};

/// An auth server with nothing but its first admin, ready to issue.
pub struct IssueBench {
    /// The clock everything is timed and stamped with.
    clock: SharedClock,
    /// The server under test.
    auth: AuthServer,
    /// Its audit log, closed at the end so every event is on disk.
    audit: AuditLog,
    /// The user's public key (OpenSSH line).
    public_key: String,
    /// Holds the audit database and KEK; removed on drop.
    _dir: TempDir,
}

/// The in-process issuance measurements, one per round.
#[derive(Debug, Clone, PartialEq)]
pub struct IssueRates {
    /// One caller at a time: every issuance waits for its own fsync.
    pub one_caller: Vec<Rate>,
    /// Many concurrent callers: the audit writer commits them in groups.
    pub many_callers: Vec<Rate>,
    /// How many callers `many_callers` used.
    pub callers: usize,
}

/// One issuance for the admin, as a renewal would ask for it.
#[derive(Clone)]
struct IssueOp {
    /// The server.
    auth: AuthServer,
    /// Key to certify.
    public_key: Arc<str>,
}

impl Op for IssueOp {
    async fn once(&self) -> Result<(), BenchError> {
        // What a renewal passes; other fields keep their defaults so new
        // context fields do not break the benchmark.
        let ctx = IssueContext {
            method: "renewal",
            ..IssueContext::default()
        };
        let certs = self
            .auth
            .issue_user_certs("admin", &self.public_key, None, &ctx)
            .await
            .map_err(|e| BenchError::op("issue_user_certs", e))?;
        std::hint::black_box(certs);
        Ok(())
    }
}

impl IssueBench {
    /// Opens a fresh cluster state (memory backend, audit log in a temp
    /// dir). Must run inside a tokio runtime.
    pub async fn open(clock: SharedClock) -> Result<Self, BenchError> {
        let dir = tempfile::tempdir().map_err(|e| BenchError::setup("create a temp dir", e))?;
        let audit = AuditLog::open(
            &dir.path().join("audit.db"),
            clock.clone(),
            AuditOptions::default(),
        )
        .await
        .map_err(|e| BenchError::setup("open the audit log", e))?;
        let kek = load_or_create_kek(&dir.path().join("kek"))
            .map_err(|e| BenchError::setup("create the KEK", e))?;
        let mut opts = AuthOptions::new("bench", "root");
        opts.admin_password = Some("bench-admin-password-0123".into());
        // Only the first admin's hash is made here; login cost is measured
        // separately with the production parameters.
        opts.argon2 = Argon2Params::dangerous_cheap_for_tests();
        let backend = Arc::new(MemoryBackend::new(clock.clone()));
        let (auth, _first) = AuthServer::open(backend, audit.clone(), clock.clone(), kek, opts)
            .await
            .map_err(|e| BenchError::setup("open the auth server", e))?;
        let public_key = ClientKey::generate()
            .public_openssh()
            .map_err(|e| BenchError::setup("encode the client public key", e))?;
        Ok(Self {
            clock,
            auth,
            audit,
            public_key,
            _dir: dir,
        })
    }

    fn op(&self) -> IssueOp {
        IssueOp {
            auth: self.auth.clone(),
            public_key: Arc::from(self.public_key.as_str()),
        }
    }

    /// Issuances per `window` with `callers` concurrent callers.
    pub async fn measure(&self, window: Duration, callers: usize) -> Result<Rate, BenchError> {
        run_concurrent(&self.clock, window, vec![self.op(); callers.max(1)]).await
    }

    /// `rounds` interleaved rounds of one caller, then `callers` callers.
    pub async fn compare(
        &self,
        rounds: usize,
        window: Duration,
        callers: usize,
    ) -> Result<IssueRates, BenchError> {
        self.measure(window / 10, callers).await?;
        let mut out = IssueRates {
            one_caller: Vec::with_capacity(rounds),
            many_callers: Vec::with_capacity(rounds),
            callers,
        };
        for _ in 0..rounds {
            out.one_caller.push(self.measure(window, 1).await?);
            out.many_callers.push(self.measure(window, callers).await?);
        }
        Ok(out)
    }

    /// Flushes and closes the audit log; returns its group-commit
    /// counters (events per transaction shows how well fsyncs are shared).
    pub async fn close(self) -> Result<WriterStats, BenchError> {
        self.audit
            .close()
            .await
            .map_err(|e| BenchError::setup("close the audit log", e))?;
        Ok(self.audit.stats())
    }
}
