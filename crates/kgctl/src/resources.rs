use std::path::Path;

use keygate_api::{Ack, ApiClient, PutResourceRequest};
use keygate_client::output::{Format, out, structured, table};
use keygate_types::{AnyResource, Kind, load_documents, to_yaml};

use crate::Failure;

fn split_target(target: &str) -> Result<(Kind, Option<&str>), Failure> {
    let (kind, name) = match target.split_once('/') {
        Some((k, n)) if !n.is_empty() => (k, Some(n)),
        Some(_) => return Err(Failure::usage(format!("{target:?}: write KIND/NAME"))),
        None => (target, None),
    };
    let kind: Kind = kind
        .parse()
        .map_err(|e: keygate_types::TypesError| Failure::usage(e.to_string()))?;
    Ok((kind, name))
}

fn summary(r: &AnyResource) -> Vec<String> {
    let name = r.name().to_owned();
    match r {
        AnyResource::User(u) => vec![
            name,
            u.spec
                .roles
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join(","),
            u.spec
                .traits
                .get("logins")
                .map(|l| l.join(","))
                .unwrap_or_default(),
            if u.spec.status.has_password {
                "active".into()
            } else {
                "invited".into()
            },
        ],
        AnyResource::Role(role) => vec![
            name,
            role.spec.allow.logins.join(","),
            role.metadata.description.clone().unwrap_or_default(),
        ],
        AnyResource::Node(n) => {
            let mut labels = n.spec.self_labels.clone();
            labels.extend(n.metadata.labels.clone());
            let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            vec![
                name,
                n.spec.id.clone(),
                labels.join(","),
                n.spec.addr.clone().unwrap_or_else(|| "⟵ tunnel".into()),
            ]
        }
        AnyResource::Lock(l) => vec![
            name,
            l.spec.target.to_string(),
            l.spec.message.clone().unwrap_or_default(),
        ],
        other => vec![
            name,
            other.metadata().description.clone().unwrap_or_default(),
        ],
    }
}

fn headers(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::User => &["NAME", "ROLES", "LOGINS", "STATUS"],
        Kind::Role => &["NAME", "ALLOW LOGINS", "DESCRIPTION"],
        Kind::Lock => &["NAME", "TARGET", "MESSAGE"],
        Kind::Node => &["NAME", "ID", "LABELS", "ADDRESS"],
        _ => &["NAME", "DESCRIPTION"],
    }
}

/// `kgctl get KIND[/NAME]`.
pub async fn get(client: &ApiClient, target: &str, format: Format) -> Result<(), Failure> {
    let (kind, name) = split_target(target)?;
    let values: Vec<serde_json::Value> = match name {
        Some(n) => vec![
            client
                .get(&format!("/v1/resources/{}/{n}", kind.as_str()))
                .await?,
        ],
        None => {
            client
                .get(&format!("/v1/resources/{}", kind.as_str()))
                .await?
        }
    };
    let resources: Vec<AnyResource> = values
        .into_iter()
        .map(AnyResource::from_json)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            Failure::usage(format!(
                "the server sent a resource this kgctl cannot read ({e}); upgrade kgctl"
            ))
        })?;
    match format {
        Format::Table => {
            let rows: Vec<Vec<String>> = resources.iter().map(summary).collect();
            out(&table(headers(kind), &rows));
        }
        Format::Yaml => {
            // Documents separated by `---`: exactly what `create -f` reads.
            let docs: Result<Vec<String>, _> = resources.iter().map(to_yaml).collect();
            out(&docs
                .map_err(|e| Failure::usage(e.to_string()))?
                .join("---\n"));
        }
        Format::Json => {
            let json: Vec<serde_json::Value> =
                resources.iter().filter_map(|r| r.to_json().ok()).collect();
            match (name, json.as_slice()) {
                (Some(_), [one]) => structured(one, format),
                _ => structured(&json, format),
            }
            .map_err(Failure::usage)?;
        }
    }
    Ok(())
}

/// `kgctl create -f FILE [--force]`: validated locally first (with file,
/// line and field in errors), then sent one by one.
pub async fn create(client: &ApiClient, file: &Path, force: bool) -> Result<(), Failure> {
    let (name, text) = if file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| Failure::usage(format!("reading stdin: {e}")))?;
        ("<stdin>".to_owned(), s)
    } else {
        let s = std::fs::read_to_string(file)
            .map_err(|e| Failure::usage(format!("cannot read {}: {e}", file.display())))?;
        (file.display().to_string(), s)
    };
    let docs = load_documents(&name, &text).map_err(|e| Failure::usage(e.to_string()))?;
    if docs.is_empty() {
        return Err(Failure::usage(format!("{name}: no resources found")));
    }
    for d in docs {
        let json = d
            .resource
            .to_json()
            .map_err(|e| Failure::usage(e.to_string()))?;
        let ack: Ack = client
            .post(
                "/v1/resources",
                &PutResourceRequest {
                    resource: json,
                    force,
                },
            )
            .await?;
        out(&format!("{}\n", ack.message));
    }
    Ok(())
}

/// `kgctl rm KIND/NAME`.
pub async fn rm(client: &ApiClient, target: &str) -> Result<(), Failure> {
    let (kind, name) = split_target(target)?;
    let name = name.ok_or_else(|| Failure::usage(format!("{target:?}: write KIND/NAME")))?;
    let ack: Ack = client
        .delete(&format!("/v1/resources/{}/{name}", kind.as_str()))
        .await?;
    out(&format!("{}\n", ack.message));
    Ok(())
}
