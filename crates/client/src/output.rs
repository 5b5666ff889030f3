//! `--format table|json|yaml`, shared by kg and kgctl.

use std::io::Write;

use serde::Serialize;

/// Output format of commands that print data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// For humans (default).
    #[default]
    Table,
    /// Stable JSON.
    Json,
    /// YAML (resources print in the form `kgctl create -f` reads).
    Yaml,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "table" | "text" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            "yaml" => Ok(Format::Yaml),
            other => Err(format!("unknown format {other:?}: use table, json or yaml")),
        }
    }
}

/// Writes text to stdout; a closed pipe is not an error worth a panic.
pub fn out(text: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes());
    let _ = o.flush();
}

/// Prints `value` as JSON or YAML (callers handle `Table` themselves).
pub fn structured<T: Serialize>(value: &T, format: Format) -> Result<(), String> {
    let text = match format {
        Format::Yaml => {
            let v = serde_json::to_value(value).map_err(|e| e.to_string())?;
            serde_saphyr::to_string(&v).map_err(|e| e.to_string())?
        }
        _ => {
            let mut s = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
            s.push('\n');
            s
        }
    };
    out(&text);
    Ok(())
}

/// Renders rows as an aligned table with a header.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| -> String {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths.get(i).copied().unwrap_or(0)))
            .collect();
        format!("{}\n", parts.join("  ").trim_end())
    };
    let mut s = line(headers.iter().map(|h| (*h).to_owned()).collect());
    s.push_str(&line(widths.iter().map(|w| "-".repeat(*w)).collect()));
    for r in rows {
        s.push_str(&line(r.clone()));
    }
    s
}
