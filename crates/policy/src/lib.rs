//! The one authorization function.
//!
//! Owns: [`authorize`] — a pure decision over an identity, a resource, an
//! action and a context, returning a [`Permit`] (which privileged code must
//! hold) or a [`Denial`] that names the deciding role and rule — for every
//! kind of access: node logins, admin verbs on resource kinds and on single
//! resources (rules with `where`, and [`rule_filter`] for listings),
//! Kubernetes groups/users/verbs, databases, apps, and filing and reviewing
//! access requests; label and trait matching (templates with
//! `email.local` and `regexp.replace`); expressions (`node_labels_expression`
//! and `where`, parsed once and cached); combining role options (strictest
//! wins) and computing the logins a certificate may carry; [`explain`], the
//! same decision with the trace of every check behind it; [`NodeFilter`],
//! the node-login decision compiled once per listing.
//! Does not own: loading roles or locks (callers pass immutable snapshots),
//! logging or auditing the decision (callers do, with the Denial's text).
#![forbid(unsafe_code)]

mod admin;
mod db_app;
mod decision;
mod explain;
mod explain_fmt;
mod expression;
mod kube;
mod label_memo;
mod labels;
mod node;
mod node_filter;
mod options;
mod regexes;
mod requests;
mod session;
mod traits;

pub use admin::{ResourceFilter, rule_filter};
pub use decision::{
    AccessContext, Action, Denial, Identity, Permit, Target, allowed_logins, authorize,
};
pub use explain::{
    Check, Explanation, ExpressionCheck, Grant, LabelCheck, LockStep, RoleStep, Step, explain,
    label_check,
};
pub use kube::KubeResource;
pub use labels::{label_selector_matches, value_matches};
pub use node_filter::NodeFilter;
pub use options::{EffectiveOptions, combine_options};
pub use requests::RequestFacts;
pub use session::{
    CertFacts, ROLES_EXTENSION, SessionGrant, SessionHost, TRAITS_EXTENSION, decide_login,
};
pub use traits::expand_template;
