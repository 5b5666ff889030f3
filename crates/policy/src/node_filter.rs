//! Node logins for a whole listing (`kg ls`, who-can, what-can): the
//! decision of [`authorize`](crate::authorize) for
//! `Action::Login(l)` on a node, for every `l` of
//! [`allowed_logins`](crate::allowed_logins), compiled once per listing.
//!
//! `authorize` answers one (node, login) question and, when it refuses,
//! explains why. A listing asks every login on every node and keeps only
//! the yeses, so per question it would redo work that depends on neither:
//! expanding templates, classifying patterns, evaluating the same role's
//! label selector once per login although labels do not depend on the
//! login, and phrasing refusals nobody reads. [`NodeFilter`] does that work
//! once, evaluates each role side's node conditions at most once per node,
//! matches each selector pattern once per distinct label value rather than
//! once per node, and writes no refusal text; ask `authorize` or `explain`
//! for the reason.

use std::collections::BTreeMap;

use keygate_types::{Expr, ExprEnv, Labels, LockTarget, Login, RoleConditions};
use time::OffsetDateTime;

use crate::decision::{AccessContext, Identity, Permit};
use crate::expression::{Parsed, parsed};
use crate::label_memo::{Matches, SelectorSet};
use crate::labels::contains_expanded;
use crate::node::{allow_node_rule, allowed_logins};

/// A role side's node conditions, compiled.
#[derive(Debug, Clone)]
struct NodeConditions {
    /// `node_labels`, as an index into the filter's [`SelectorSet`]:
    /// `None` when absent or never matching.
    selector: Option<usize>,
    /// Whether `node_labels` is set at all (on the allow side an empty
    /// selector means "no label condition", not "no node").
    has_selector: bool,
    /// `node_labels_expression`, parsed (`Err`: it does not parse).
    expression: Option<Parsed>,
}

impl NodeConditions {
    fn compile(
        c: &RoleConditions,
        traits: &BTreeMap<String, Vec<String>>,
        selectors: &mut SelectorSet,
    ) -> Self {
        Self {
            selector: selectors.add(&c.node_labels, traits),
            has_selector: !c.node_labels.is_empty(),
            expression: c.node_labels_expression.as_deref().map(parsed),
        }
    }
}

/// One role's allow side, as far as node logins go.
#[derive(Debug, Clone)]
struct AllowSide {
    /// The role's name (the permit's role).
    role: String,
    /// The rule a grant by this side carries.
    rule: &'static str,
    /// Where it reaches.
    node: NodeConditions,
}

/// One login a certificate for the identity carries, with the allow sides
/// listing it.
#[derive(Debug, Clone)]
struct Candidate {
    /// The login.
    login: String,
    /// Indices into [`NodeFilter::allow`] of the sides that list it, in
    /// role order (the first one reaching a node grants, as in
    /// `authorize`).
    sides: Vec<usize>,
}

/// The node-login decision for one identity, compiled once per listing.
///
/// [`NodeFilter::logins`] agrees exactly with keeping each `l` of
/// `allowed_logins(id)` for which `authorize(id, Target::Node{..},
/// Action::Login(l), ctx, now)` is `Ok`, and [`NodeFilter::grants`] returns
/// the same [`Permit`]s. Locks and templates are read at construction:
/// build a new filter per listing. It remembers, as it goes, which
/// selectors accept each label value it meets (see `label_memo`), so it is
/// `Send` but not `Sync`: one listing, one thread.
#[derive(Debug)]
pub struct NodeFilter<'a> {
    /// Who asks (traits and name for expressions).
    id: &'a Identity,
    /// The identity's role names (`user.roles` in expressions).
    role_names: Vec<String>,
    /// A lock in force covers every decision (user, role, MFA device,
    /// serial or session lock).
    locked: bool,
    /// Node names or ids under a lock in force.
    locked_nodes: Vec<String>,
    /// Deny sides that can refuse a node (every login at once).
    deny: Vec<NodeConditions>,
    /// Allow sides of the roles, in role order (sides reaching no node are
    /// kept so indices stay simple; they never match).
    allow: Vec<AllowSide>,
    /// The logins that may be granted, in `allowed_logins` order.
    candidates: Vec<Candidate>,
    /// Every side's `node_labels`, compiled, with the per-value memo.
    selectors: SelectorSet,
    /// Some allow side has a `node_labels_expression` (worth remembering
    /// per node which sides reach it).
    allow_expressions: bool,
}

impl<'a> NodeFilter<'a> {
    /// Compiles the decision for `id` with the locks and facts of `ctx` at
    /// `now`.
    pub fn new(id: &'a Identity, ctx: &AccessContext<'_>, now: OffsetDateTime) -> Self {
        let mut locked = false;
        let mut locked_nodes = Vec::new();
        let mut locked_logins = Vec::new();
        for lock in ctx.locks {
            if lock.metadata.expires.is_some_and(|e| e <= now) {
                continue;
            }
            match &lock.spec.target {
                LockTarget::User(u) => locked |= u == &id.user,
                LockTarget::Role(r) => {
                    locked |= id.roles.iter().any(|role| &role.metadata.name == r);
                }
                LockTarget::Login(l) => locked_logins.push(l.as_str()),
                LockTarget::Node(n) => locked_nodes.push(n.clone()),
                LockTarget::MfaDevice(d) => locked |= ctx.mfa_device == Some(d.as_str()),
                LockTarget::Serial(s) => {
                    locked |= ctx.serial.is_some_and(|serial| serial.to_string() == *s);
                }
                LockTarget::Session(s) => locked |= ctx.session_id == Some(s.as_str()),
                LockTarget::AccessRequest(_) => {}
            }
        }
        let mut selectors = SelectorSet::default();
        let deny = id
            .roles
            .iter()
            .map(|r| NodeConditions::compile(&r.spec.deny, &id.traits, &mut selectors))
            .filter(|n| n.selector.is_some() || n.expression.is_some())
            .collect();
        let allow: Vec<AllowSide> = id
            .roles
            .iter()
            .map(|r| AllowSide {
                role: r.metadata.name.clone(),
                rule: allow_node_rule(&r.spec.allow),
                node: NodeConditions::compile(&r.spec.allow, &id.traits, &mut selectors),
            })
            .collect();
        let allow_expressions = allow.iter().any(|a| a.node.expression.is_some());
        let denies_login = |l: &str| {
            id.roles.iter().any(|r| {
                contains_expanded(&r.spec.deny.logins, &id.traits, l)
                    || contains_expanded(&r.spec.deny.logins, &id.traits, "*")
            })
        };
        let candidates = allowed_logins(id)
            .into_iter()
            .filter(|l| {
                !locked_logins.contains(&l.as_str())
                    && !denies_login(l)
                    && l.parse::<Login>().is_ok()
            })
            .map(|login| Candidate {
                sides: id
                    .roles
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| contains_expanded(&r.spec.allow.logins, &id.traits, &login))
                    .map(|(i, _)| i)
                    .collect(),
                login,
            })
            .filter(|c| !c.sides.is_empty())
            .collect();
        Self {
            id,
            role_names: id.roles.iter().map(|r| r.metadata.name.clone()).collect(),
            locked,
            locked_nodes,
            deny,
            allow,
            candidates,
            selectors,
            allow_expressions,
        }
    }

    /// The logins `authorize` allows on this node, in `allowed_logins`
    /// order, each with the permit it would return.
    pub fn grants(&self, name: &str, node_id: &str, labels: &Labels) -> Vec<(String, Permit)> {
        let mut out = Vec::new();
        self.decide(name, node_id, labels, |login, side| {
            out.push((
                login.to_owned(),
                Permit::new(side.role.clone(), side.rule.to_owned()),
            ));
        });
        out
    }

    /// The logins `authorize` allows on this node, in `allowed_logins`
    /// order.
    pub fn logins(&self, name: &str, node_id: &str, labels: &Labels) -> Vec<String> {
        let mut out = Vec::new();
        self.decide(name, node_id, labels, |login, _| out.push(login.to_owned()));
        out
    }

    /// Calls `grant` with each allowed login and the side granting it.
    fn decide(
        &self,
        name: &str,
        node_id: &str,
        labels: &Labels,
        mut grant: impl FnMut(&str, &AllowSide),
    ) {
        if self.candidates.is_empty()
            || self.locked
            || self.locked_nodes.iter().any(|n| n == name || n == node_id)
        {
            return;
        }
        let matches = self.selectors.matching(labels);
        let denied = self.deny.iter().any(|d| {
            d.selector.is_some_and(|s| matches.has(s))
                || d.expression
                    .as_ref()
                    .is_some_and(|e| self.expression_holds(e, labels, true))
        });
        if denied {
            return;
        }
        // Each allow side's node conditions, evaluated at most once (only
        // expressions cost anything to re-evaluate; selectors are one bit).
        let mut reach: Vec<Option<bool>> = if self.allow_expressions {
            vec![None; self.allow.len()]
        } else {
            Vec::new()
        };
        for c in &self.candidates {
            let granted = c.sides.iter().find_map(|&i| {
                let side = self.allow.get(i)?;
                let reaches = match reach.get_mut(i) {
                    Some(hit) => {
                        *hit.get_or_insert_with(|| self.allow_reaches(&side.node, &matches, labels))
                    }
                    None => self.allow_reaches(&side.node, &matches, labels),
                };
                reaches.then_some(side)
            });
            if let Some(side) = granted {
                grant(&c.login, side);
            }
        }
    }

    /// `allow_node_matches` on compiled conditions.
    fn allow_reaches(&self, n: &NodeConditions, matches: &Matches, labels: &Labels) -> bool {
        if !n.has_selector && n.expression.is_none() {
            return false;
        }
        let labels_ok = if n.has_selector {
            n.selector.is_some_and(|s| matches.has(s))
        } else {
            true
        };
        labels_ok
            && n.expression
                .as_ref()
                .is_none_or(|e| self.expression_holds(e, labels, false))
    }

    /// An expression's value for this node; one that does not parse
    /// matches on the deny side and never on the allow side.
    fn expression_holds(
        &self,
        expr: &Result<Expr, String>,
        labels: &Labels,
        deny_side: bool,
    ) -> bool {
        match expr {
            Ok(e) => e.eval_with(
                &ExprEnv {
                    labels,
                    user_name: &self.id.user,
                    traits: &self.id.traits,
                    roles: &self.role_names,
                },
                &[],
            ),
            Err(_) => deny_side,
        }
    }
}
