//! Access explanations for admins: why a user may or may not log in to a
//! node (`kgctl access explain`), who can reach a node (`who-can`), and what
//! a user can reach (`what-can`).
//!
//! Every answer comes from the policy engine over the store's current users,
//! roles, nodes and locks — the same inputs and the same function a node
//! decides with — so the explanation cannot disagree with enforcement.
//! Requests carry no certificate, so serial and MFA-device locks never match
//! here (they do at login time).

use std::collections::BTreeMap;

use keygate_api::{
    ExplainRequest, ExplainResponse, ExplainStep, FailedLabel, WhatCanEntry, WhoCanEntry,
};
use keygate_policy::{
    AccessContext, Action, Check, Identity, LabelCheck, NodeFilter, Step, Target, explain,
};
use keygate_types::{AnyResource, Kind, Labels, Lock, Node, Role, User};
use time::OffsetDateTime;

use crate::{AuthError, AuthServer, Caller};

/// The kind admins need `read` on (the built-in `admin` role has `*`).
const ACCESS_KIND: &str = "access";

/// A node as policy sees it.
struct NodeView {
    /// Registered name.
    name: String,
    /// Id assigned at join.
    id: String,
    /// Self labels, overridden by the authoritative ones.
    labels: Labels,
}

impl NodeView {
    fn of(n: &Node) -> Self {
        let mut labels = n.spec.self_labels.clone();
        labels.extend(n.metadata.labels.clone());
        Self {
            name: n.metadata.name.clone(),
            id: n.spec.id.clone(),
            labels,
        }
    }

    fn target(&self) -> Target<'_> {
        Target::Node {
            name: &self.name,
            id: &self.id,
            labels: &self.labels,
        }
    }
}

/// Everything a reachability answer is computed from, read once.
struct Snapshot {
    /// Every user.
    users: Vec<User>,
    /// Every role by name.
    roles: BTreeMap<String, Role>,
    /// Every node.
    nodes: Vec<NodeView>,
    /// Every lock (`authorize` skips expired ones).
    locks: Vec<Lock>,
    /// The moment of the decisions.
    now: OffsetDateTime,
}

impl Snapshot {
    /// The user's identity with roles resolved like `Repo::roles_of`: a
    /// role that does not exist grants nothing.
    fn identity(&self, user: &User) -> Identity {
        Identity {
            user: user.metadata.name.clone(),
            roles: user
                .spec
                .roles
                .iter()
                .filter_map(|r| self.roles.get(r.as_str()).cloned())
                .collect(),
            traits: user.spec.traits.clone(),
        }
    }

    fn user(&self, name: &str) -> Result<&User, AuthError> {
        self.users
            .iter()
            .find(|u| u.metadata.name == name)
            .ok_or_else(|| {
                AuthError::NotFound(format!("user {name:?} not found; see kgctl users ls"))
            })
    }

    /// A node by name, else by id.
    fn node(&self, key: &str) -> Result<&NodeView, AuthError> {
        self.nodes
            .iter()
            .find(|n| n.name == key)
            .or_else(|| self.nodes.iter().find(|n| n.id == key))
            .ok_or_else(|| {
                AuthError::NotFound(format!(
                    "node {key:?} not found (by name or id); see kgctl nodes ls"
                ))
            })
    }

    /// The node-login decision for `id` against this snapshot's locks,
    /// compiled once for every node it is asked about.
    fn filter<'a>(&self, id: &'a Identity) -> NodeFilter<'a> {
        let ctx = AccessContext {
            locks: &self.locks,
            ..AccessContext::default()
        };
        NodeFilter::new(id, &ctx, self.now)
    }

    /// The logins `filter`'s identity may use on `node`, each with the
    /// granting role and rule (what `authorize` would permit). Candidates
    /// are the logins a certificate would carry, so the answer matches what
    /// the node accepts.
    fn grants(filter: &NodeFilter<'_>, node: &NodeView) -> Vec<(String, String, String)> {
        filter
            .grants(&node.name, &node.id, &node.labels)
            .into_iter()
            .map(|(login, p)| (login, p.role().to_owned(), p.rule().to_owned()))
            .collect()
    }
}

impl AuthServer {
    async fn access_snapshot(&self) -> Result<Snapshot, AuthError> {
        let mut users = Vec::new();
        for r in self.repo().list_resources(Kind::User).await? {
            if let AnyResource::User(u) = r {
                users.push(u);
            }
        }
        let mut roles = BTreeMap::new();
        for r in self.repo().list_resources(Kind::Role).await? {
            if let AnyResource::Role(r) = r {
                roles.insert(r.metadata.name.clone(), r);
            }
        }
        let mut nodes = Vec::new();
        for r in self.repo().list_resources(Kind::Node).await? {
            if let AnyResource::Node(n) = r {
                nodes.push(NodeView::of(&n));
            }
        }
        Ok(Snapshot {
            users,
            roles,
            nodes,
            locks: self.repo().locks().await?,
            now: self.clock().now(),
        })
    }

    /// `POST /v1/access/explain`: the full decision trace for one login.
    pub async fn explain_access(
        &self,
        caller: &Caller,
        req: ExplainRequest,
    ) -> Result<ExplainResponse, AuthError> {
        self.authorize_admin(caller, ACCESS_KIND, "read").await?;
        if req.login.is_empty() {
            return Err(AuthError::BadRequest(
                "login is empty: say which OS login, e.g. --login root".into(),
            ));
        }
        let snap = self.access_snapshot().await?;
        let user = snap.user(&req.user)?;
        let node = snap.node(&req.node)?;
        let id = snap.identity(user);
        let ctx = AccessContext {
            locks: &snap.locks,
            ..AccessContext::default()
        };
        let e = explain(
            &id,
            node.target(),
            Action::Login(&req.login),
            &ctx,
            snap.now,
        );
        let (allowed, role, rule, reason) = match e.decision {
            Ok(g) => {
                let reason = format!(
                    "role {:?} allows login {:?} on node {:?} ({})",
                    g.role, req.login, node.name, g.rule
                );
                (true, Some(g.role), g.rule, reason)
            }
            Err(d) => (false, d.role, d.rule, d.reason),
        };
        Ok(ExplainResponse {
            user: id.user.clone(),
            node: node.name.clone(),
            node_id: node.id.clone(),
            labels: node.labels.clone(),
            login: req.login,
            roles: id.roles.iter().map(|r| r.metadata.name.clone()).collect(),
            allowed,
            role,
            rule,
            reason,
            steps: e.steps.iter().map(step_json).collect(),
            decided_by: e.decided_by,
        })
    }

    /// `GET /v1/access/who-can?node=N[&login=L]`: every user who may log in
    /// to the node, per login, with the granting role and rule.
    pub async fn who_can(
        &self,
        caller: &Caller,
        node: &str,
        login: Option<&str>,
    ) -> Result<Vec<WhoCanEntry>, AuthError> {
        self.authorize_admin(caller, ACCESS_KIND, "read").await?;
        let snap = self.access_snapshot().await?;
        let node = snap.node(node)?;
        let mut out = Vec::new();
        for user in &snap.users {
            let id = snap.identity(user);
            for (l, role, rule) in Snapshot::grants(&snap.filter(&id), node) {
                if login.is_some_and(|want| want != l) {
                    continue;
                }
                // Access lasts until the user or the granting role expires,
                // whichever comes first.
                let role_expires = snap.roles.get(&role).and_then(|r| r.metadata.expires);
                let until = [user.metadata.expires, role_expires]
                    .into_iter()
                    .flatten()
                    .min();
                out.push(WhoCanEntry {
                    user: id.user.clone(),
                    login: l,
                    role,
                    rule,
                    until,
                });
            }
        }
        Ok(out)
    }

    /// `GET /v1/access/what-can?user=U`: every node the user may log in to,
    /// with the logins.
    pub async fn what_can(
        &self,
        caller: &Caller,
        user: &str,
    ) -> Result<Vec<WhatCanEntry>, AuthError> {
        self.authorize_admin(caller, ACCESS_KIND, "read").await?;
        let snap = self.access_snapshot().await?;
        let id = snap.identity(snap.user(user)?);
        let filter = snap.filter(&id);
        Ok(snap
            .nodes
            .iter()
            .filter_map(|n| {
                let logins: Vec<String> = filter.logins(&n.name, &n.id, &n.labels);
                (!logins.is_empty()).then(|| WhatCanEntry {
                    node: n.name.clone(),
                    id: n.id.clone(),
                    logins,
                })
            })
            .collect())
    }
}

/// One policy step as the API shows it.
fn step_json(s: &Step) -> ExplainStep {
    let detail = s.to_string();
    match s {
        Step::Lock(l) => ExplainStep {
            phase: "lock".into(),
            name: l.lock.clone(),
            matched: true,
            rule: Some("lock".into()),
            logins: Vec::new(),
            login_matched: None,
            node_labels_matched: None,
            failed_label: None,
            detail,
        },
        Step::Deny(r) | Step::Allow(r) => {
            let phase = if matches!(s, Step::Deny(_)) {
                "deny"
            } else {
                "allow"
            };
            let (logins, login_matched, labels) = match &r.check {
                Check::NodeLogin {
                    logins,
                    login_matched,
                    node_labels,
                    ..
                } => (logins.clone(), Some(*login_matched), Some(node_labels)),
                _ => (Vec::new(), None, None),
            };
            let failed_label = match labels {
                Some(LabelCheck::KeyFailed {
                    key,
                    patterns,
                    actual,
                }) => Some(FailedLabel {
                    key: key.clone(),
                    wants: patterns.clone(),
                    has: actual.clone(),
                }),
                _ => None,
            };
            ExplainStep {
                phase: phase.into(),
                name: r.role.clone(),
                matched: r.matched.is_some(),
                rule: r.matched.clone(),
                logins,
                login_matched,
                node_labels_matched: labels.map(LabelCheck::matched),
                failed_label,
                detail,
            }
        }
    }
}
