//! Login state machines: password (argon2id), TOTP, lockout (L0).
