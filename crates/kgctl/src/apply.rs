//! `kgctl plan -f DIR_OR_FILE` and `kgctl apply -f DIR_OR_FILE [--prune]`.

use std::path::{Path, PathBuf};

use keygate_api::{ApiClient, ApplyRequest, ApplyResponse};
use keygate_client::output::{Format, out, structured};
use keygate_types::load_documents;

use crate::Failure;

/// Every `.yaml`, `.yml` and `.json` file of a directory (sorted), or the
/// file itself.
fn files(path: &Path) -> Result<Vec<PathBuf>, Failure> {
    if path.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .and_then(|x| x.to_str())
                    .is_some_and(|x| matches!(x, "yaml" | "yml" | "json"))
            })
            .collect();
        v.sort();
        Ok(v)
    } else {
        Ok(vec![path.to_path_buf()])
    }
}

/// Loads and validates every resource locally (file:line:column errors).
fn load(path: &Path) -> Result<Vec<serde_json::Value>, Failure> {
    let mut out = Vec::new();
    for f in files(path)? {
        let text = std::fs::read_to_string(&f)
            .map_err(|e| Failure::usage(format!("cannot read {}: {e}", f.display())))?;
        for d in load_documents(&f.display().to_string(), &text)
            .map_err(|e| Failure::usage(e.to_string()))?
        {
            out.push(
                d.resource
                    .to_json()
                    .map_err(|e| Failure::usage(e.to_string()))?,
            );
        }
    }
    if out.is_empty() {
        return Err(Failure::usage(format!(
            "{}: no resources found",
            path.display()
        )));
    }
    Ok(out)
}

fn render(r: &ApplyResponse) -> String {
    if r.changes.is_empty() {
        return "No changes: the cluster matches the files.\n".into();
    }
    let mut s = String::new();
    for c in &r.changes {
        let sign = match c.action.as_str() {
            "create" => "+",
            "delete" => "-",
            _ => "~",
        };
        s.push_str(&format!("{sign} {}/{} ({})\n", c.kind, c.name, c.action));
        for f in &c.fields {
            s.push_str(&format!("    ~ {f}\n"));
        }
    }
    let verb = if r.applied { "Applied" } else { "Plan" };
    s.push_str(&format!("{verb}: {} change(s).\n", r.changes.len()));
    s
}

/// `plan` exits 0 with no changes, 1 with changes pending; `apply` exits 0.
pub async fn run(
    client: &ApiClient,
    path: &Path,
    prune: bool,
    dry_run: bool,
    format: Format,
) -> Result<(), Failure> {
    let resources = load(path)?;
    let r: ApplyResponse = client
        .post(
            "/v1/resources/apply",
            &ApplyRequest {
                resources,
                prune,
                dry_run,
            },
        )
        .await?;
    match format {
        Format::Table => out(&render(&r)),
        f => structured(&r, f).map_err(Failure::usage)?,
    }
    if dry_run && !r.changes.is_empty() {
        return Err(Failure {
            code: 1,
            message: String::new(),
        });
    }
    Ok(())
}
