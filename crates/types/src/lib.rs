//! Keygate's resource schemas and domain newtypes.
//!
//! Owns: the `kind / version / metadata / spec` resources of `RESOURCES.md`
//! (users, roles, tokens, locks, nodes, auth preferences), validated newtypes
//! built only by parsing (`UserName`, `RoleName`, `Login`, `Ttl`), and the
//! YAML/JSON loader that reports file, line, column and field on errors,
//! and the label-expression language ([`Expr`]: parser and total evaluator).
//! Does not own: storage, evaluation (see `keygate-policy`), or I/O — the
//! caller hands in text and gets typed values back.
#![forbid(unsafe_code)]

mod duration;
mod error;
pub mod expr;
mod labels;
mod load;
mod names;
mod resource;
mod role;
mod secret;

pub use duration::Ttl;
pub use error::TypesError;
pub use expr::{Expr, ExprEnv, ExprError};
pub use labels::{LabelSelector, LabelValues, Labels};
pub use load::{LoadedResource, load_documents, to_yaml};
pub use names::{Login, RoleName, UserName, validate_name};
pub use resource::{
    AnyResource, AuthPreference, AuthPreferenceSpec, ConnectorRef, Kind, Lock, LockSpec,
    LockTarget, LockoutSpec, Metadata, Node, NodeSpec, Resource, SecondFactor, Token, TokenSpec,
    User, UserSpec, UserStatus,
};
pub use role::{
    ClaimMapping, KubernetesResource, LockMode, RecordSession, RequestConditions, ReviewConditions,
    Role, RoleConditions, RoleOptions, RoleSpec, Rule, Threshold, builtin_roles,
};
pub use secret::REDACTED;

/// Resource API version this build speaks.
pub const V1: &str = "v1";
