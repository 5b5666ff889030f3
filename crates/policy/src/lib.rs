//! The one authorization function.
//!
//! Owns: [`authorize`] — a pure decision over an identity, a resource, an
//! action and a context, returning a [`Permit`] (which privileged code must
//! hold) or a [`Denial`] that names the deciding role and rule; label and
//! trait matching; label expressions (`node_labels_expression`, parsed once
//! and cached); combining role options (strictest wins) and computing the
//! logins a certificate may carry; [`explain`], the same decision with the
//! trace of every check behind it.
//! Does not own: loading roles or locks (callers pass immutable snapshots),
//! logging or auditing the decision (callers do, with the Denial's text).
#![forbid(unsafe_code)]

mod decision;
mod explain;
mod expression;
mod labels;
mod options;
mod session;
mod traits;

pub use decision::{
    AccessContext, Action, Denial, Identity, Permit, Target, allowed_logins, authorize,
};
pub use explain::{
    Check, Explanation, ExpressionCheck, Grant, LabelCheck, LockStep, RoleStep, Step, explain,
    label_check,
};
pub use labels::{label_selector_matches, value_matches};
pub use options::{EffectiveOptions, combine_options};
pub use session::{
    CertFacts, ROLES_EXTENSION, SessionGrant, SessionHost, TRAITS_EXTENSION, decide_login,
};
pub use traits::expand_template;
