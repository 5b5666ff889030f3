//! Helpers shared by the policy test files: the fixed decision time, the
//! check that `explain` agrees with `authorize`, and a deterministic
//! generator.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use keygate_policy::{
    AccessContext, Action, Check, Explanation, Identity, LabelCheck, Step, Target, authorize,
    label_selector_matches,
};
use time::OffsetDateTime;

pub fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

/// Decisions made by all roles together (the grant may name several).
fn joint(target: Target<'_>, action: Action<'_>) -> bool {
    matches!(
        (target, action),
        (Target::AccessRequest(_), Action::Request | Action::Review)
    )
}

/// The explanation's decision is `authorize`'s, `decided_by` points at a
/// step that says so, and each step's outcome follows from the details it
/// shows.
pub fn assert_agrees(
    e: &Explanation,
    id: &Identity,
    target: Target<'_>,
    action: Action<'_>,
    ctx: &AccessContext<'_>,
) {
    let truth = authorize(id, target, action, ctx, now());
    let joint = joint(target, action);
    match (&truth, &e.decision) {
        (Ok(p), Ok(g)) => {
            assert_eq!((p.role(), p.rule()), (g.role.as_str(), g.rule.as_str()));
            match &e.steps[e.decided_by.expect("an allow is decided by a step")] {
                Step::Allow(s) if joint => {
                    assert_eq!(Some(s.role.as_str()), g.role.split(", ").next());
                    assert!(s.matched.is_some());
                }
                Step::Allow(s) => {
                    assert_eq!(s.role, g.role);
                    assert_eq!(s.matched.as_deref(), Some(g.rule.as_str()));
                }
                other => panic!("allowed, but decided by {other:?}"),
            }
        }
        (Err(d), Err(x)) => {
            assert_eq!(d, x, "denials differ");
            match (e.decided_by.map(|i| &e.steps[i]), d.rule.as_str()) {
                (Some(Step::Lock(l)), "lock") => {
                    assert!(d.reason.contains(&format!("locked by {}", l.lock)));
                }
                (Some(Step::Deny(s)), rule) => {
                    assert_eq!(d.role.as_deref(), Some(s.role.as_str()));
                    assert_eq!(s.matched.as_deref(), Some(rule));
                }
                (None, "no allow rule matched") if joint => {
                    // Some roles may cover part of the request; none of the
                    // deny steps matched.
                    assert!(e.steps.iter().all(|s| match s {
                        Step::Deny(a) => a.matched.is_none(),
                        Step::Allow(_) => true,
                        Step::Lock(_) => false,
                    }));
                }
                (None, "no allow rule matched") => {
                    assert!(e.steps.iter().all(|s| match s {
                        Step::Allow(a) | Step::Deny(a) => a.matched.is_none(),
                        Step::Lock(_) => false,
                    }));
                }
                (
                    None,
                    "review.own_request"
                    | "request.user"
                    | "request.roles"
                    | "allow.request.reason_required",
                ) => assert!(joint),
                (step, rule) => panic!("denied by {rule}, but decided by {step:?}"),
            }
        }
        (t, x) => panic!("authorize says {t:?}, explain says {x:?}"),
    }
    for step in &e.steps {
        let (Step::Allow(s) | Step::Deny(s)) = step else {
            continue;
        };
        let role = id.roles.iter().find(|r| r.metadata.name == s.role).unwrap();
        let deny = matches!(step, Step::Deny(_));
        let side = if deny {
            &role.spec.deny
        } else {
            &role.spec.allow
        };
        if let (Check::NodeLogin { node_labels, .. }, Target::Node { labels, .. }) =
            (&s.check, target)
        {
            assert_eq!(
                node_labels.matched(),
                label_selector_matches(&side.node_labels, labels, &id.traits),
                "{step}"
            );
        }
        let (want_match, want_rule) = expected(&s.check, deny, target, action);
        assert_eq!(s.matched.is_some(), want_match, "{step}");
        if let Some(rule) = want_rule {
            assert_eq!(s.matched.as_deref(), Some(rule.as_str()), "{step}");
        }
        // Every step renders as one line.
        assert!(!step.to_string().contains('\n'));
    }
}

/// What a step's details say its outcome must be: whether it matches and,
/// when the details determine it, the rule.
fn expected(
    check: &Check,
    deny: bool,
    target: Target<'_>,
    action: Action<'_>,
) -> (bool, Option<String>) {
    let exact = |rule: Option<&str>| (rule.is_some(), rule.map(str::to_owned));
    match check {
        Check::NodeLogin {
            login_matched,
            node_labels,
            node_labels_expression,
            ..
        } if deny => {
            let expr = node_labels_expression.as_ref().is_some_and(|e| e.holds);
            exact(match (*login_matched, node_labels.matched(), expr) {
                (true, _, _) => Some("deny.logins"),
                (false, true, _) => Some("deny.node_labels"),
                (false, false, true) => Some("deny.node_labels_expression"),
                _ => None,
            })
        }
        Check::NodeLogin {
            login_matched,
            node_labels,
            node_labels_expression,
            ..
        } => {
            let empty = *node_labels == LabelCheck::Empty;
            exact(match node_labels_expression {
                None => (*login_matched && node_labels.matched())
                    .then_some("allow.logins+allow.node_labels"),
                Some(e) if empty => (*login_matched && e.holds)
                    .then_some("allow.logins+allow.node_labels_expression"),
                Some(e) => (*login_matched && node_labels.matched() && e.holds)
                    .then_some("allow.logins+allow.node_labels+allow.node_labels_expression"),
            })
        }
        Check::AdminVerb {
            rule_matched,
            unconditional,
            conditions,
            ..
        } => {
            let a_where_holds = conditions.iter().any(|c| c.holds);
            if deny {
                exact((*unconditional || a_where_holds).then_some("deny.rules"))
            } else if *unconditional {
                exact(Some("allow.rules"))
            } else if matches!(target, Target::Kind(_)) {
                exact(rule_matched.then_some("allow.rules.where"))
            } else {
                exact(a_where_holds.then_some("allow.rules.where"))
            }
        }
        Check::Kubernetes { matched, .. } => {
            let field = match action {
                Action::KubernetesGroup(_) => "kubernetes_groups",
                Action::KubernetesUser(_) => "kubernetes_users",
                _ => "kubernetes_resources",
            };
            let side = if deny { "deny" } else { "allow" };
            (*matched, matched.then(|| format!("{side}.{field}")))
        }
        Check::Database {
            user_matched,
            name_matched,
            db_labels,
            ..
        } if deny => exact(match (db_labels.matched(), user_matched, name_matched) {
            (true, _, _) => Some("deny.db_labels"),
            (false, true, _) => Some("deny.db_users"),
            (false, false, true) => Some("deny.db_names"),
            _ => None,
        }),
        Check::Database {
            user_matched,
            name_matched,
            db_labels,
            ..
        } => exact(
            (db_labels.matched() && *user_matched && *name_matched)
                .then_some("allow.db_labels+allow.db_users+allow.db_names"),
        ),
        Check::App { app_labels } => exact(app_labels.matched().then_some(if deny {
            "deny.app_labels"
        } else {
            "allow.app_labels"
        })),
        Check::AccessRequest {
            review: true,
            covered,
            condition,
            ..
        } => {
            let holds = condition.as_ref().is_none_or(|c| c.holds);
            let m = !covered.is_empty() && holds;
            (
                m,
                m.then(|| {
                    if deny {
                        "deny.review_requests"
                    } else {
                        "allow.review_requests"
                    }
                    .to_owned()
                }),
            )
        }
        Check::AccessRequest { covered, .. } => (!covered.is_empty(), None),
        Check::Certificate => exact((!deny).then_some("role")),
        Check::NotApplicable => exact(None),
    }
}

/// A small deterministic generator (xorshift64*), so agreement tests cover
/// many combinations and fail the same way every run.
pub struct Gen(pub u64);

impl Gen {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    pub fn word(&mut self, items: &[&'static str]) -> &'static str {
        items[self.below(items.len())]
    }
    pub fn subset<T: Clone>(&mut self, items: &[T], max: usize) -> Vec<T> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.pick(items).clone()).collect()
    }
}
