//! YAML/JSON loading with precise errors.
//!
//! Each document is parsed twice: first for its `kind`/`version` header,
//! then into the kind's strict schema (`deny_unknown_fields`), so an unknown
//! field is reported with its name and position.

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::{AnyResource, Kind, TypesError};

/// Largest input accepted, to bound memory on hostile files.
const MAX_INPUT: usize = 4 << 20;
/// Most documents in one input.
const MAX_DOCUMENTS: usize = 10_000;

/// A resource and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedResource {
    /// The validated resource.
    pub resource: AnyResource,
    /// 1-based line where its document starts.
    pub line: u64,
}

#[derive(Deserialize)]
struct Header {
    kind: Option<String>,
    version: Option<String>,
}

/// Parses every `---`-separated document of `text` (YAML or JSON).
/// Empty documents are skipped. `source_name` names the file in errors.
pub fn load_documents(source_name: &str, text: &str) -> Result<Vec<LoadedResource>, TypesError> {
    if text.len() > MAX_INPUT {
        return Err(TypesError::invalid(source_name, "input larger than 4 MiB"));
    }
    let mut out = Vec::new();
    for (offset, doc) in split_documents(text) {
        if doc.lines().all(|l| {
            let t = l.trim();
            t.is_empty() || t.starts_with('#')
        }) {
            continue;
        }
        if out.len() >= MAX_DOCUMENTS {
            return Err(TypesError::invalid(
                source_name,
                "more than 10000 documents",
            ));
        }
        out.push(LoadedResource {
            resource: load_one(source_name, offset, doc)?,
            line: offset + 1,
        });
    }
    Ok(out)
}

/// Splits on lines that are exactly `---` (optionally followed by a
/// comment), returning each document with its 0-based starting line.
fn split_documents(text: &str) -> Vec<(u64, &str)> {
    let mut docs = Vec::new();
    let mut start_byte = 0usize;
    let mut start_line = 0u64;
    let mut pos = 0usize;
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let t = line.trim_end();
        if t == "---" || t.starts_with("--- #") {
            docs.push((start_line, text.get(start_byte..pos).unwrap_or("")));
            start_byte = pos + line.len();
            start_line = n as u64 + 1;
        }
        pos += line.len();
    }
    docs.push((start_line, text.get(start_byte..).unwrap_or("")));
    docs
}

fn syntax(source: &str, line_offset: u64, e: &serde_saphyr::Error) -> TypesError {
    let (line, column) = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((1, 1));
    // The library's message may carry a rendered snippet; keep the first line.
    let full = e.to_string();
    let message = full.lines().next().unwrap_or("invalid document").to_owned();
    TypesError::Syntax {
        source_name: source.to_owned(),
        line: line + line_offset,
        column,
        message,
    }
}

fn parse<T: DeserializeOwned>(source: &str, offset: u64, doc: &str) -> Result<T, TypesError> {
    serde_saphyr::from_str(doc).map_err(|e| syntax(source, offset, &e))
}

fn load_one(source: &str, offset: u64, doc: &str) -> Result<AnyResource, TypesError> {
    let header: Header = parse(source, offset, doc)?;
    let kind_str = header.kind.ok_or_else(|| TypesError::Syntax {
        source_name: source.to_owned(),
        line: offset + 1,
        column: 1,
        message: "missing field `kind`".to_owned(),
    })?;
    let kind: Kind = kind_str.parse()?;
    if let Some(v) = header.version.as_deref()
        && v != crate::V1
    {
        return Err(TypesError::UnsupportedVersion {
            kind: kind_str,
            version: v.to_owned(),
        });
    }
    let r = match kind {
        Kind::User => AnyResource::User(parse(source, offset, doc)?),
        Kind::Role => AnyResource::Role(parse(source, offset, doc)?),
        Kind::Token => AnyResource::Token(parse(source, offset, doc)?),
        Kind::Lock => AnyResource::Lock(parse(source, offset, doc)?),
        Kind::Node => AnyResource::Node(parse(source, offset, doc)?),
        Kind::AuthPreference => AnyResource::AuthPreference(parse(source, offset, doc)?),
    };
    let mut r = r;
    r.canonicalize();
    r.validate().map_err(|e| match e {
        TypesError::Invalid { field, message } => TypesError::Invalid {
            field: format!(
                "{source}:{}: {} {:?}: {field}",
                offset + 1,
                r.kind(),
                r.name()
            ),
            message,
        },
        other => other,
    })?;
    Ok(r)
}

/// YAML form of a resource (what `kgctl get --format yaml` prints).
pub fn to_yaml(r: &AnyResource) -> Result<String, TypesError> {
    let json = r
        .to_json()
        .map_err(|e| TypesError::invalid("resource", e.to_string()))?;
    serde_saphyr::to_string(&json).map_err(|e| TypesError::invalid("resource", e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;

    const ROLE: &str = "kind: role
version: v1
metadata:
  name: prod-ops
spec:
  options:
    max_session_ttl: 8h
  allow:
    logins: ['{{internal.logins}}', ubuntu]
    node_labels: {env: prod, team: [a, b]}
  deny:
    logins: [root]
";

    #[test]
    fn loads_multi_document_yaml() {
        let text = format!(
            "{ROLE}---\nkind: user\nversion: v1\nmetadata: {{name: alice}}\nspec: {{roles: [prod-ops], traits: {{logins: [alice]}}}}\n"
        );
        let docs = load_documents("x.yaml", &text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].line, 14);
        let AnyResource::Role(r) = &docs[0].resource else {
            panic!()
        };
        assert_eq!(r.spec.options.max_session_ttl.unwrap().as_secs(), 8 * 3600);
        assert_eq!(r.spec.deny.logins, vec!["root"]);
    }

    #[test]
    fn unknown_field_names_field_and_line() {
        let text = format!(
            "# leading comment\n---\n{}",
            ROLE.replace("  deny:", "  denny:")
        );
        let err = load_documents("roles.yaml", &text).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("roles.yaml:"), "{msg}");
        assert!(msg.contains("denny"), "{msg}");
        let TypesError::Syntax { line, .. } = err else {
            panic!("{err:?}")
        };
        assert_eq!(line, 13, "{msg}");
    }

    #[test]
    fn bad_inputs_are_clear_errors() {
        let cases = [
            (
                "kind: role\nversion: v1\nmetadata: {name: x}\nspec: {allow: {logins: ['root; rm']}}",
                "login",
            ),
            ("kind: robot\nversion: v1", "unknown kind"),
            (
                "kind: role\nversion: v9\nmetadata: {name: x}\nspec: {}",
                "unsupported version",
            ),
            (
                "kind: role\nversion: v1\nmetadata: {name: x}\nspec: {options: {max_session_ttl: forever}}",
                "duration",
            ),
            (
                "kind: user\nversion: v1\nmetadata: {name: '@admin'}\nspec: {}",
                "reserved",
            ),
            (
                "kind: role\nversion: v1\nmetadata: {name: x}\nspec: {allow: {node_labels: {env: '^(unclosed$'}}}",
                "regular expression",
            ),
            ("kind: [unterminated", ""),
            ("version: v1", "kind"),
        ];
        for (text, needle) in cases {
            let err = load_documents("t.yaml", text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?} gave {err}");
        }
    }

    #[test]
    fn yaml_round_trips() {
        let docs = load_documents("x.yaml", ROLE).unwrap();
        let yaml = to_yaml(&docs[0].resource).unwrap();
        let again = load_documents("again.yaml", &yaml).unwrap();
        assert_eq!(docs[0].resource, again[0].resource);
    }

    #[test]
    fn builtin_roles_validate() {
        for r in crate::builtin_roles() {
            AnyResource::Role(r).validate().unwrap();
        }
    }
}
