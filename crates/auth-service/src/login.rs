//! Password (+ TOTP) logins, sign-up, and renewal.

use std::net::IpAddr;
use std::time::Duration;

use keygate_api::{CertsResponse, LoginRequest, SignupRequest, SignupResponse};
use keygate_audit_model::EventType;
use keygate_authn::{
    Credentials, FailureRecord, LockoutPolicy, LoginAttempt, LoginOutcome, Password, RejectReason,
    SecondFactor, TotpFacts, TotpSecret, UserFacts, check_password_policy, hash_password_with,
};
use keygate_ca::Sealed;
use keygate_types::{AnyResource, AuthPreferenceSpec, Kind, Token};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::issue::IssueContext;
use crate::ratelimit::source_policy;
use crate::repo::{failures_key, local_auth_key};
use crate::{AuthError, AuthServer};

/// Additional data binding a sealed TOTP seed to its user.
fn totp_aad(user: &str) -> Vec<u8> {
    format!("totp/{user}").into_bytes()
}

/// A user's login secrets, stored apart from the user resource.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct LocalAuth {
    /// argon2id PHC string.
    pub password_hash: Option<String>,
    /// Enrolled TOTP device.
    pub totp: Option<StoredTotp>,
}

/// A TOTP seed sealed with the KEK, and the last step used (replay guard).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredTotp {
    /// Seed, encrypted at rest.
    pub sealed_secret: Sealed,
    /// Last accepted 30 s step.
    pub last_step: Option<u64>,
}

/// Token resources are named by the SHA-256 of their secret.
pub(crate) fn token_name(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl AuthServer {
    pub(crate) async fn auth_preference(&self) -> Result<AuthPreferenceSpec, AuthError> {
        Ok(
            match self
                .repo()
                .get_resource(Kind::AuthPreference, "cluster")
                .await?
            {
                Some(AnyResource::AuthPreference(p)) => p.spec,
                _ => AuthPreferenceSpec::default(),
            },
        )
    }

    /// `POST /v1/login`.
    pub async fn login(
        &self,
        req: LoginRequest,
        remote: Option<IpAddr>,
    ) -> Result<CertsResponse, AuthError> {
        let pref = self.auth_preference().await?;
        let policy = LockoutPolicy {
            max_failures: pref.lockout.max_failures,
            window: time::Duration::try_from(pref.lockout.window.as_duration())
                .map_err(AuthError::internal)?,
            duration: time::Duration::try_from(pref.lockout.duration.as_duration())
                .map_err(AuthError::internal)?,
        };
        let now = self.clock().now();
        let user_exists = keygate_types::UserName::try_from(req.user.clone()).is_ok()
            && self.repo().get_user(&req.user).await?.is_some();
        let (local, local_rev) = if user_exists {
            self.repo()
                .get_json::<LocalAuth>(&local_auth_key(&req.user))
                .await?
                .unwrap_or_default()
        } else {
            (LocalAuth::default(), 0)
        };
        let (failures, failures_rev) = if user_exists {
            self.repo()
                .get_json::<FailureRecord>(&failures_key(&req.user))
                .await?
                .unwrap_or_default()
        } else {
            (FailureRecord::default(), 0)
        };
        let source_policy = source_policy(&policy);
        let name_lock = if user_exists {
            failures.locked_until(&policy, now)
        } else {
            self.unknown_users().locked_until(
                &req.user.chars().take(256).collect::<String>(),
                &policy,
                now,
            )
        };
        let locked_until = [
            name_lock,
            remote.and_then(|ip| self.limiter().locked_until(&ip, &source_policy, now)),
        ]
        .into_iter()
        .flatten()
        .max();
        let facts = if user_exists {
            let totp = match &local.totp {
                Some(t) => Some(TotpFacts {
                    secret: self.open_totp(&req.user, &t.sealed_secret)?,
                    last_used_step: t.last_step,
                }),
                None => None,
            };
            Some(UserFacts {
                password_hash: local.password_hash.clone(),
                totp,
                has_webauthn: false,
            })
        } else {
            None
        };
        let second = match pref.second_factor {
            keygate_types::SecondFactor::Off => SecondFactor::Off,
            keygate_types::SecondFactor::Otp => SecondFactor::Otp,
            keygate_types::SecondFactor::On => SecondFactor::On,
            keygate_types::SecondFactor::Webauthn => SecondFactor::Webauthn,
        };
        let creds = Credentials {
            password: Password::new(req.password.clone()),
            otp: req.otp.clone(),
        };
        // argon2 takes tens of milliseconds of CPU: keep it off the reactor,
        // and bound how many run at once.
        let _permit = self.hash_permit().await?;
        let outcome = tokio::task::spawn_blocking(move || {
            LoginAttempt::new(second, facts, locked_until).handle(creds, now)
        })
        .await
        .map_err(AuthError::internal)?;
        match outcome {
            LoginOutcome::Accepted {
                totp_step,
                mfa_used,
            } => {
                if let (Some(step), Some(mut t)) = (totp_step, local.totp.clone()) {
                    // Burn the code's window before anything is issued; a
                    // concurrent login with the same code loses this race.
                    t.last_step = Some(step);
                    let updated = LocalAuth {
                        totp: Some(t),
                        ..local.clone()
                    };
                    if !self
                        .repo()
                        .cas_json(&local_auth_key(&req.user), local_rev, &updated)
                        .await?
                    {
                        return self
                            .reject(
                                &req.user,
                                user_exists,
                                remote,
                                RejectReason::OtpReplay,
                                None,
                            )
                            .await;
                    }
                }
                if failures.failure_count() > 0 {
                    let _ = self
                        .repo()
                        .cas_json(
                            &failures_key(&req.user),
                            failures_rev,
                            &FailureRecord::new(),
                        )
                        .await;
                }
                let method = if mfa_used {
                    "password+totp"
                } else {
                    "password"
                };
                let ctx = IssueContext {
                    remote,
                    actor: None,
                    method,
                    max_ttl: None,
                };
                let ttl = req.ttl_secs.map(Duration::from_secs);
                let certs = self
                    .issue_user_certs(&req.user, &req.public_key, ttl, &ctx)
                    .await?;
                let mut ev = self
                    .event(EventType::UserLogin)
                    .user(req.user.clone())
                    .success(true)
                    .field("method", method);
                if let Some(r) = remote {
                    ev = ev.remote_addr(r.to_string());
                }
                self.audit(ev).await?;
                Ok(certs)
            }
            LoginOutcome::Need(_) => Err(AuthError::MfaRequired(
                "this account needs a one-time code: run kg login again with --otp CODE".into(),
            )),
            LoginOutcome::Rejected(reason) => {
                let rec = reason
                    .counts_as_failure()
                    .then_some((failures, failures_rev));
                self.reject(&req.user, user_exists, remote, reason, rec)
                    .await
            }
        }
    }

    async fn reject<T>(
        &self,
        user: &str,
        user_exists: bool,
        remote: Option<IpAddr>,
        reason: RejectReason,
        record: Option<(FailureRecord, i64)>,
    ) -> Result<T, AuthError> {
        let now = self.clock().now();
        if let Some((mut rec, rev)) = record {
            if let Some(ip) = remote {
                self.limiter().record_failure(&ip, now);
            }
            // Real users get a persisted record; unknown names are tracked
            // in memory (bounded) so they lock out the same way without
            // letting an attacker fill the store.
            if user_exists {
                rec.record_failure(now);
                let _ = self.repo().cas_json(&failures_key(user), rev, &rec).await;
            } else {
                self.unknown_users()
                    .record_failure(&user.chars().take(256).collect::<String>(), now);
            }
        }
        let mut ev = self
            .event(EventType::UserLoginFailed)
            .user(user.chars().take(256).collect::<String>())
            .success(false)
            .error(reason.audit_reason());
        if let Some(r) = remote {
            ev = ev.remote_addr(r.to_string());
        }
        self.audit(ev).await?;
        Err(match reason {
            RejectReason::Locked { until } => AuthError::LockedOut(format!(
                "too many failed logins: try again after {} or ask an admin to run kgctl users reset",
                until
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
            )),
            other => AuthError::InvalidCredentials(other.public_message().to_owned()),
        })
    }

    /// A fresh TOTP device for `user`: the sealed record to store and the
    /// `otpauth://` URI to show once.
    pub(crate) fn new_totp(&self, user: &str) -> Result<(StoredTotp, String), AuthError> {
        let secret = TotpSecret::generate();
        let uri = secret.otpauth_uri(&format!("Keygate {}", self.cluster()), user);
        let sealed = self.kek().seal(secret.expose_bytes(), &totp_aad(user))?;
        Ok((
            StoredTotp {
                sealed_secret: sealed,
                last_step: None,
            },
            uri,
        ))
    }

    fn open_totp(&self, user: &str, sealed: &Sealed) -> Result<TotpSecret, AuthError> {
        let bytes = self.kek().open(sealed, &totp_aad(user))?;
        TotpSecret::from_bytes(bytes.to_vec()).map_err(AuthError::internal)
    }

    /// `POST /v1/signup`: sets the password of an invited user; enrols TOTP
    /// when the cluster requires it and returns the otpauth URI once.
    pub async fn signup(&self, req: SignupRequest) -> Result<SignupResponse, AuthError> {
        let name = token_name(&req.token);
        let bad_token = || {
            AuthError::InvalidCredentials("the sign-up token is invalid, used or expired; ask an admin for a new one (kgctl users reset)".into())
        };
        let Some(AnyResource::Token(token)) = self.repo().get_resource(Kind::Token, &name).await?
        else {
            return Err(bad_token());
        };
        let now = self.clock().now();
        if token.metadata.expires.is_none_or(|e| e <= now)
            || !token.spec.roles.iter().any(|r| r == "signup")
        {
            return Err(bad_token());
        }
        let user = token.spec.user.clone().ok_or_else(bad_token)?;
        // A token outliving its user must not write credentials that a
        // later user of the same name would inherit.
        if self.repo().get_user(user.as_str()).await?.is_none() {
            return Err(bad_token());
        }
        let password = Password::new(req.password);
        check_password_policy(&password).map_err(|e| AuthError::BadRequest(e.to_string()))?;
        let params = self.opts().argon2;
        let _permit = self.hash_permit().await?;
        let hash = tokio::task::spawn_blocking(move || hash_password_with(&password, params))
            .await
            .map_err(AuthError::internal)?
            .map_err(AuthError::internal)?;
        let pref = self.auth_preference().await?;
        let (totp, uri) = if pref.second_factor_wants_totp() {
            let (stored, uri) = self.new_totp(user.as_str())?;
            (Some(stored), Some(uri))
        } else {
            (None, None)
        };
        // Single use: delete the token first; whoever deletes it wins.
        if !self.repo().delete_resource(Kind::Token, &name).await? {
            return Err(bad_token());
        }
        self.repo()
            .put_json(
                &local_auth_key(user.as_str()),
                &LocalAuth {
                    password_hash: Some(hash),
                    totp,
                },
            )
            .await?;
        if let Some(mut u) = self.repo().get_user(user.as_str()).await? {
            u.spec.status.has_password = true;
            u.spec.status.has_totp = uri.is_some();
            self.repo()
                .put_resource(&AnyResource::User(u), None)
                .await?;
        }
        self.audit(
            self.event(EventType::UserPasswordChange)
                .user(user.as_str())
                .success(true)
                .field("method", "signup"),
        )
        .await?;
        Ok(SignupResponse {
            user: user.to_string(),
            totp_uri: uri,
        })
    }

    /// A sign-up token for `user` (invite or reset), shown once.
    pub(crate) async fn create_signup_token(
        &self,
        user: &str,
        ttl: Duration,
    ) -> Result<keygate_api::SignupToken, AuthError> {
        use rand::RngCore;
        let mut raw = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut raw);
        let secret = hex::encode(raw);
        let expires = self.expiry(ttl)?;
        let mut token: Token = keygate_types::Resource::new(
            Kind::Token,
            token_name(&secret),
            keygate_types::TokenSpec {
                roles: vec!["signup".into()],
                user: Some(user.parse()?),
                ..Default::default()
            },
        );
        token.metadata.expires = Some(expires);
        self.repo()
            .put_resource(&AnyResource::Token(token), Some(0))
            .await?;
        Ok(keygate_api::SignupToken {
            user: user.to_owned(),
            token: secret,
            expires,
        })
    }
}
