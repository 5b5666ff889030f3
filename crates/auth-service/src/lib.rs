//! The auth service: CAs, users, roles, login, certificate issuance, audit.
