//! Keygate's resource schemas and domain newtypes.
//!
//! Owns: the `kind / version / metadata / spec` resources of `RESOURCES.md`
//! (users, roles, tokens, locks, nodes, auth preferences), validated newtypes
//! built only by parsing (`UserName`, `RoleName`, `Login`, `Ttl`), and the
//! YAML/JSON loader that reports file, line, column and field on errors,
//! the expression language of label expressions and `where` predicates
//! ([`Expr`]: parser and total evaluator), role value templates
//! ([`Template`]: `{{internal.X}}`, `email.local`, `regexp.replace`), and
//! the built-in roles.
//! Does not own: storage, evaluation (see `keygate-policy`), or I/O — the
//! caller hands in text and gets typed values back.
#![forbid(unsafe_code)]

mod builtin;
mod duration;
mod error;
pub mod expr;
mod labels;
mod load;
mod names;
mod resource;
mod role;
mod role_check;
mod secret;
pub mod template;

pub use builtin::builtin_roles;
pub use duration::Ttl;
pub use error::TypesError;
pub use expr::{Expr, ExprEnv, ExprError, FIELD_ROOTS, Fields};
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
    Role, RoleConditions, RoleOptions, RoleSpec, Rule, Threshold,
};
pub use role_check::{REVIEW_WHERE_ROOTS, RULE_WHERE_ROOTS};
pub use secret::REDACTED;
pub use template::Template;

/// Resource API version this build speaks.
pub const V1: &str = "v1";
