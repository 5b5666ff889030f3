//! Typed access to the backend: where each record lives and how it is
//! encoded. Resources are JSON under `/resources/<kind>/<name>`; secrets
//! (password hashes, sealed TOTP seeds, sealed CA keys) live under
//! `/secrets/…`, apart from the resources `kgctl get` prints.

use keygate_store::{Compare, KeyValue, Op, SharedBackend};
use keygate_types::{AnyResource, Kind, Lock, Role, User};
use serde::{Serialize, de::DeserializeOwned};

use crate::AuthError;

/// Where resources of `kind` live.
pub fn resource_prefix(kind: Kind) -> String {
    format!("/resources/{}/", kind.as_str())
}

/// The key of one resource.
pub fn resource_key(kind: Kind, name: &str) -> String {
    format!("/resources/{}/{name}", kind.as_str())
}

/// Per-user login secrets.
pub fn local_auth_key(user: &str) -> String {
    format!("/secrets/local_auth/{user}")
}

/// A CA's stored keys.
pub fn ca_key(kind: &str) -> String {
    format!("/secrets/ca/{kind}")
}

/// Failed-login record of a user.
pub fn failures_key(user: &str) -> String {
    format!("/failures/user/{user}")
}

/// The cluster's name.
pub const CLUSTER_NAME_KEY: &str = "/cluster/name";

/// Typed view of the backend.
#[derive(Clone)]
pub struct Repo {
    /// The store.
    pub backend: SharedBackend,
}

impl Repo {
    pub fn new(backend: SharedBackend) -> Self {
        Self { backend }
    }

    /// Reads and decodes a JSON value, with its revision.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<(T, i64)>, AuthError> {
        match self.backend.get(key).await? {
            Some(kv) => Ok(Some((decode(&kv)?, kv.mod_revision))),
            None => Ok(None),
        }
    }

    /// Writes a JSON value unconditionally.
    pub async fn put_json<T: Serialize>(&self, key: &str, value: &T) -> Result<i64, AuthError> {
        let bytes = serde_json::to_vec(value).map_err(AuthError::internal)?;
        Ok(self.backend.put(key, bytes, None).await?)
    }

    /// Writes a JSON value if the key is still at `revision` (0 = absent).
    /// Returns false when someone else changed it first.
    pub async fn cas_json<T: Serialize>(
        &self,
        key: &str,
        revision: i64,
        value: &T,
    ) -> Result<bool, AuthError> {
        let bytes = serde_json::to_vec(value).map_err(AuthError::internal)?;
        let r = self
            .backend
            .txn(
                vec![Compare::ModRevision {
                    key: key.to_owned(),
                    equals: revision,
                }],
                vec![Op::Put {
                    key: key.to_owned(),
                    value: bytes,
                    lease: None,
                }],
            )
            .await?;
        Ok(r.succeeded)
    }

    /// Reads one resource of any kind.
    pub async fn get_resource(
        &self,
        kind: Kind,
        name: &str,
    ) -> Result<Option<AnyResource>, AuthError> {
        let Some(kv) = self.backend.get(&resource_key(kind, name)).await? else {
            return Ok(None);
        };
        Ok(Some(decode_resource(&kv)?))
    }

    /// Lists every resource of a kind.
    pub async fn list_resources(&self, kind: Kind) -> Result<Vec<AnyResource>, AuthError> {
        let kvs = self.backend.range(&resource_prefix(kind)).await?;
        kvs.iter().map(decode_resource).collect()
    }

    /// Reads one resource with its revision.
    pub async fn get_resource_rev(
        &self,
        kind: Kind,
        name: &str,
    ) -> Result<Option<(AnyResource, i64)>, AuthError> {
        let Some(kv) = self.backend.get(&resource_key(kind, name)).await? else {
            return Ok(None);
        };
        Ok(Some((decode_resource(&kv)?, kv.mod_revision)))
    }

    /// Writes a resource owned by a lease (it disappears when the lease
    /// expires).
    pub async fn put_resource_leased(
        &self,
        r: &AnyResource,
        lease: keygate_store::LeaseId,
    ) -> Result<i64, AuthError> {
        let json = r.to_json().map_err(AuthError::internal)?;
        let bytes = serde_json::to_vec(&json).map_err(AuthError::internal)?;
        Ok(self
            .backend
            .put(&resource_key(r.kind(), r.name()), bytes, Some(lease))
            .await?)
    }

    pub async fn get_user(&self, name: &str) -> Result<Option<User>, AuthError> {
        match self.get_resource(Kind::User, name).await? {
            Some(AnyResource::User(u)) => Ok(Some(u)),
            _ => Ok(None),
        }
    }

    pub async fn get_role(&self, name: &str) -> Result<Option<Role>, AuthError> {
        match self.get_resource(Kind::Role, name).await? {
            Some(AnyResource::Role(r)) => Ok(Some(r)),
            _ => Ok(None),
        }
    }

    /// The roles a user holds, resolved; unknown role names are skipped
    /// (and logged), never treated as grants.
    pub async fn roles_of(&self, user: &User) -> Result<Vec<Role>, AuthError> {
        let mut out = Vec::with_capacity(user.spec.roles.len());
        for name in &user.spec.roles {
            match self.get_role(name.as_str()).await? {
                Some(r) => out.push(r),
                None => {
                    tracing::warn!(user = %user.metadata.name, role = %name, "user refers to a missing role")
                }
            }
        }
        Ok(out)
    }

    /// Every lock in the store (expired ones are ignored by `authorize`).
    pub async fn locks(&self) -> Result<Vec<Lock>, AuthError> {
        Ok(self
            .list_resources(Kind::Lock)
            .await?
            .into_iter()
            .filter_map(|r| match r {
                AnyResource::Lock(l) => Some(l),
                _ => None,
            })
            .collect())
    }

    /// Writes a resource; with `expect_revision` = Some(0) it must be new,
    /// Some(r) it must be unchanged since r, None overwrites.
    pub async fn put_resource(
        &self,
        r: &AnyResource,
        expect_revision: Option<i64>,
    ) -> Result<i64, AuthError> {
        let key = resource_key(r.kind(), r.name());
        let mut json = r.to_json().map_err(AuthError::internal)?;
        if let Some(md) = json.get_mut("metadata").and_then(|m| m.as_object_mut()) {
            // The revision is the store's, never part of the stored value.
            md.remove("revision");
        }
        let bytes = serde_json::to_vec(&json).map_err(AuthError::internal)?;
        let compares = match expect_revision {
            Some(rev) => vec![Compare::ModRevision {
                key: key.clone(),
                equals: rev,
            }],
            None => vec![],
        };
        let res = self
            .backend
            .txn(
                compares,
                vec![Op::Put {
                    key: key.clone(),
                    value: bytes,
                    lease: None,
                }],
            )
            .await?;
        if !res.succeeded {
            return Err(match expect_revision {
                Some(0) => AuthError::Conflict(format!(
                    "{} {:?} already exists; use --force to overwrite",
                    r.kind(),
                    r.name()
                )),
                _ => AuthError::Conflict(format!(
                    "{} {:?} was changed by someone else; read it again and retry",
                    r.kind(),
                    r.name()
                )),
            });
        }
        Ok(res.revision)
    }

    /// Deletes a resource; false when it did not exist.
    pub async fn delete_resource(&self, kind: Kind, name: &str) -> Result<bool, AuthError> {
        Ok(self
            .backend
            .delete(&resource_key(kind, name))
            .await?
            .is_some())
    }
}

fn decode<T: DeserializeOwned>(kv: &KeyValue) -> Result<T, AuthError> {
    serde_json::from_slice(&kv.value)
        .map_err(|e| AuthError::Internal(format!("corrupt record {}: {e}", kv.key)))
}

fn decode_resource(kv: &KeyValue) -> Result<AnyResource, AuthError> {
    let mut v: serde_json::Value = decode(kv)?;
    if let Some(md) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        md.insert("revision".into(), serde_json::Value::from(kv.mod_revision));
    }
    AnyResource::from_json(v)
        .map_err(|e| AuthError::Internal(format!("corrupt resource {}: {e}", kv.key)))
}
