//! Resources as code: `kgctl plan` and `kgctl apply`. A set of resources is
//! compared with the store field by field; applying writes every change in
//! ONE store transaction guarded by the revisions that were compared, so it
//! is all or nothing and a concurrent edit makes it fail cleanly.

use std::collections::{BTreeMap, BTreeSet};

use keygate_api::{ApplyRequest, ApplyResponse, PlannedChange};
use keygate_store::{Compare, Op};
use keygate_types::{AnyResource, Kind};
use serde_json::Value;

use crate::repo::resource_key;
use crate::{AuthError, AuthServer, Caller};

/// Kinds that can be managed as code.
const MANAGED: &[Kind] = &[Kind::User, Kind::Role, Kind::Lock, Kind::AuthPreference];
/// Most resources in one apply.
const MAX_RESOURCES: usize = 5000;

/// Dotted paths whose values differ between `old` and `new` (`revision` is
/// ignored: it is the store's, not the resource's).
pub fn changed_fields(old: Option<&Value>, new: Option<&Value>) -> Vec<String> {
    let mut out = Vec::new();
    diff("", old, new, &mut out);
    out.retain(|p| p != "metadata.revision");
    out
}

fn diff(path: &str, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<String>) {
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                diff(&p, x.get(k), y.get(k), out);
            }
        }
        (x, y) if x == y => {}
        // Absent and empty mean the same in our schemas.
        (None, Some(v)) | (Some(v), None) if is_empty(v) => {}
        _ => out.push(if path.is_empty() {
            ".".into()
        } else {
            path.to_owned()
        }),
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_empty),
        Value::Bool(b) => !b,
        _ => false,
    }
}

/// Status, revision and other server-kept fields never come from input.
fn normalized(r: &AnyResource) -> Result<Value, AuthError> {
    let mut v = r.to_json().map_err(AuthError::internal)?;
    if let Some(md) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        md.remove("revision");
    }
    if let (Kind::User, Some(spec)) = (r.kind(), v.get_mut("spec").and_then(Value::as_object_mut)) {
        spec.remove("status");
    }
    Ok(v)
}

impl AuthServer {
    /// `POST /v1/resources/apply`: plans (always) and applies (unless
    /// `dry_run`) a set of resources atomically.
    pub async fn apply(
        &self,
        caller: &Caller,
        req: ApplyRequest,
    ) -> Result<ApplyResponse, AuthError> {
        if req.resources.len() > MAX_RESOURCES {
            return Err(AuthError::BadRequest(format!(
                "at most {MAX_RESOURCES} resources per apply"
            )));
        }
        let mut wanted: BTreeMap<(Kind, String), AnyResource> = BTreeMap::new();
        for (i, v) in req.resources.into_iter().enumerate() {
            let r = AnyResource::from_json(v)
                .map_err(|e| AuthError::BadRequest(format!("resource #{}: {e}", i + 1)))?;
            if !MANAGED.contains(&r.kind()) {
                return Err(AuthError::BadRequest(format!(
                    "{} resources cannot be applied as code (use user, role, lock, auth_preference)",
                    r.kind()
                )));
            }
            let key = (r.kind(), r.name().to_owned());
            if wanted.insert(key.clone(), r).is_some() {
                return Err(AuthError::BadRequest(format!(
                    "{} {:?} appears twice",
                    key.0, key.1
                )));
            }
        }
        let kinds: BTreeSet<Kind> = wanted.keys().map(|(k, _)| *k).collect();
        let mut changes = Vec::new();
        // The items each change touches, as they are and would become,
        // for rules with a `where`.
        let mut items: Vec<Vec<Value>> = Vec::new();
        let mut compares = Vec::new();
        let mut ops = Vec::new();
        let builtin: BTreeSet<String> = keygate_types::builtin_roles()
            .iter()
            .map(|r| r.name().to_owned())
            .collect();
        for kind in &kinds {
            let existing: BTreeMap<String, (AnyResource, i64)> = {
                let mut m = BTreeMap::new();
                for r in self.repo().list_resources(*kind).await? {
                    let rev = r.metadata().revision.unwrap_or(0);
                    m.insert(r.name().to_owned(), (r, rev));
                }
                m
            };
            for ((k, name), r) in wanted.iter().filter(|((k, _), _)| k == kind) {
                let old = existing.get(name);
                let mut r = r.clone();
                if let (AnyResource::User(u), Some((AnyResource::User(o), _))) = (&mut r, old) {
                    u.spec.status = o.spec.status.clone();
                }
                let new_json = normalized(&r)?;
                let old_json = old.map(|(o, _)| normalized(o)).transpose()?;
                let fields = changed_fields(old_json.as_ref(), Some(&new_json));
                let action = match old {
                    None => "create",
                    Some(_) if fields.is_empty() => continue,
                    Some(_) => "update",
                };
                let key = resource_key(*k, name);
                compares.push(Compare::ModRevision {
                    key: key.clone(),
                    equals: old.map_or(0, |(_, rev)| *rev),
                });
                let mut stored = r.to_json().map_err(AuthError::internal)?;
                if let Some(md) = stored.get_mut("metadata").and_then(Value::as_object_mut) {
                    md.remove("revision");
                }
                ops.push(Op::Put {
                    key,
                    value: serde_json::to_vec(&stored).map_err(AuthError::internal)?,
                    lease: None,
                });
                // A creation lists no fields: everything is new.
                let fields = if action == "create" {
                    Vec::new()
                } else {
                    fields
                };
                changes.push(PlannedChange {
                    kind: k.as_str().into(),
                    name: name.clone(),
                    action: action.into(),
                    fields,
                });
                items.push(old_json.into_iter().chain([new_json]).collect());
            }
            if req.prune {
                for (name, (_, rev)) in &existing {
                    if wanted.contains_key(&(*kind, name.clone()))
                        || (*kind == Kind::Role && builtin.contains(name))
                    {
                        continue;
                    }
                    let key = resource_key(*kind, name);
                    compares.push(Compare::ModRevision {
                        key: key.clone(),
                        equals: *rev,
                    });
                    ops.push(Op::Delete { key });
                    changes.push(PlannedChange {
                        kind: kind.as_str().into(),
                        name: name.clone(),
                        action: "delete".into(),
                        fields: vec![],
                    });
                    let old = existing.get(name).map(|(o, _)| normalized(o)).transpose()?;
                    items.push(old.into_iter().collect());
                }
            }
        }
        // Every change is authorized before anything is written.
        for (c, touched) in changes.iter().zip(&items) {
            self.authorize_admin_kind(caller, &c.kind, &c.action)
                .await?;
            for item in touched {
                self.authorize_item(caller, &c.kind, &c.action, item)
                    .await?;
            }
        }
        if req.dry_run || changes.is_empty() {
            return Ok(ApplyResponse {
                applied: false,
                changes,
            });
        }
        if !self.repo().backend.txn(compares, ops).await?.succeeded {
            return Err(AuthError::Conflict(
                "resources changed while applying; nothing was written — run kgctl plan and apply again".into(),
            ));
        }
        for c in &changes {
            let kind: Kind = c.kind.parse()?;
            self.audit_change(caller, kind, &c.name, &c.action, &c.fields)
                .await?;
        }
        Ok(ApplyResponse {
            applied: true,
            changes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_level_diff() {
        let a = json!({"spec": {"allow": {"logins": ["a"]}, "deny": {}}, "metadata": {"name": "x", "revision": 3}});
        let b = json!({"spec": {"allow": {"logins": ["a", "b"]}}, "metadata": {"name": "x", "description": "d"}});
        assert_eq!(
            changed_fields(Some(&a), Some(&b)),
            vec!["metadata.description", "spec.allow.logins"]
        );
        assert!(changed_fields(Some(&a), Some(&a)).is_empty());
    }
}
