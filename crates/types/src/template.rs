//! Role value templates: a role value that is exactly `{{ … }}` stands for
//! values computed from the user's traits.
//!
//! ```text
//! {{internal.logins}}                                   every value of trait `logins`
//! {{external.email}}  {{external["http://x/claim"]}}    the same lookup (SSO traits)
//! {{email.local(external.email)}}                       the part before `@`
//! {{regexp.replace(internal.groups, "^(.*)-admin$", "$1")}}
//! ```
//!
//! Grammar (whitespace allowed between tokens):
//!
//! ```text
//! template := "{{" expr "}}"                    (the whole value)
//! expr     := ( "internal" | "external" ) ( "." NAME | "[" STRING "]" )
//!           | "email.local" "(" expr ")"
//!           | "regexp.replace" "(" expr "," STRING "," STRING ")"
//! NAME     := letters, digits and `_ - . @ + :`
//! STRING   := '"' ( any character but '"' and '\' | '\"' | '\\' )* '"'
//! ```
//!
//! Expansion never invents access: a trait that does not exist expands to
//! nothing, `email.local` drops values without `@`, and `regexp.replace`
//! drops values its pattern does not match (and results that are empty).
//! Patterns are compiled at parse time with a size limit and match in linear
//! time, so a role with a bad or hostile pattern fails at `create`.

use std::collections::BTreeMap;

use crate::ExprError;

/// Longest template accepted, in bytes.
pub const MAX_TEMPLATE_BYTES: usize = 256;
/// Deepest nesting of template functions.
pub const MAX_TEMPLATE_DEPTH: usize = 4;
/// Largest compiled program of one `regexp.replace` pattern, in bytes.
const MAX_REGEX_BYTES: usize = 1 << 20;

/// A parsed template, ready to expand.
#[derive(Debug, Clone)]
pub struct Template {
    /// The function tree.
    root: Part,
}

/// One node of a template.
#[derive(Debug, Clone)]
enum Part {
    /// `internal.X` / `external.X`: every value of trait `X`.
    Trait(String),
    /// `email.local(e)`: the local part of each value of `e`.
    EmailLocal(Box<Part>),
    /// `regexp.replace(e, "re", "with")`: each matching value of `e` with
    /// every match replaced (`$1`, `${name}` refer to groups).
    Replace {
        /// The values to rewrite.
        input: Box<Part>,
        /// The compiled pattern.
        pattern: regex::Regex,
        /// The replacement text.
        with: String,
    },
}

impl Template {
    /// Is `value` meant as a template (it contains `{{`)? Such a value must
    /// parse; anything else is literal text.
    pub fn is_template(value: &str) -> bool {
        value.contains("{{")
    }

    /// Parses a whole-value template. Errors carry the byte offset into
    /// `value`.
    pub fn parse(value: &str) -> Result<Self, ExprError> {
        if value.len() > MAX_TEMPLATE_BYTES {
            return Err(ExprError::at(
                value,
                MAX_TEMPLATE_BYTES,
                format!(
                    "template is {} bytes; at most {MAX_TEMPLATE_BYTES} are allowed",
                    value.len()
                ),
            ));
        }
        let (Some(rest), true) = (value.strip_prefix("{{"), value.ends_with("}}")) else {
            return Err(ExprError::at(
                value,
                0,
                "a template must be the whole value, as in '{{internal.logins}}'",
            ));
        };
        let mut c = Cursor {
            src: value,
            pos: value.len() - rest.len(),
            end: value.len().saturating_sub(2),
        };
        let root = c.expr(0)?;
        c.skip_ws();
        if c.pos < c.end {
            return Err(c.err("unexpected text after the template expression; close it with `}}`"));
        }
        Ok(Self { root })
    }

    /// Every value the template stands for, given the user's traits.
    pub fn expand(&self, traits: &BTreeMap<String, Vec<String>>) -> Vec<String> {
        expand(&self.root, traits)
    }
}

fn expand(part: &Part, traits: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    match part {
        Part::Trait(name) => traits.get(name).cloned().unwrap_or_default(),
        Part::EmailLocal(inner) => expand(inner, traits)
            .into_iter()
            .filter_map(|v| v.split_once('@').map(|(local, _)| local.to_owned()))
            .filter(|l| !l.is_empty())
            .collect(),
        Part::Replace {
            input,
            pattern,
            with,
        } => expand(input, traits)
            .into_iter()
            .filter(|v| pattern.is_match(v))
            .map(|v| pattern.replace_all(&v, with.as_str()).into_owned())
            .filter(|v| !v.is_empty())
            .collect(),
    }
}

/// Parser position inside `{{ … }}`.
struct Cursor<'s> {
    /// The whole value (for error positions).
    src: &'s str,
    /// Byte offset of the next character.
    pos: usize,
    /// Byte offset of the closing `}}`.
    end: usize,
}

impl Cursor<'_> {
    fn err(&self, msg: impl Into<String>) -> ExprError {
        ExprError::at(self.src, self.pos, msg)
    }

    fn rest(&self) -> &str {
        self.src.get(self.pos..self.end).unwrap_or("")
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        let blank = rest.len() - rest.trim_start().len();
        self.pos += blank;
    }

    /// Consumes `c` (after whitespace) or explains what is there instead.
    fn expect(&mut self, c: char, what: &str) -> Result<(), ExprError> {
        self.skip_ws();
        if self.rest().starts_with(c) {
            self.pos += c.len_utf8();
            Ok(())
        } else {
            Err(self.err(format!("expected {what}")))
        }
    }

    /// A name: letters, digits and `_ - . @ + :`.
    fn name(&mut self) -> &str {
        self.skip_ws();
        let rest = self.rest();
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || "_-.@+:".contains(c)))
            .unwrap_or(rest.len());
        let start = self.pos;
        self.pos += len;
        self.src.get(start..self.pos).unwrap_or("")
    }

    /// A double-quoted string with `\"` and `\\` escapes.
    fn string(&mut self, what: &str) -> Result<String, ExprError> {
        self.expect('"', what)?;
        let open = self.pos - 1;
        let mut out = String::new();
        let src = self.src;
        let mut chars = src.get(self.pos..self.end).unwrap_or("").char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, c @ ('"' | '\\'))) => out.push(c),
                    _ => {
                        self.pos += i;
                        return Err(self.err(
                            "unknown escape in a string; only `\\\"` and `\\\\` are allowed",
                        ));
                    }
                },
                c => out.push(c),
            }
        }
        self.pos = open;
        Err(self.err("string is not closed; add the closing `\"`"))
    }

    fn expr(&mut self, depth: usize) -> Result<Part, ExprError> {
        if depth > MAX_TEMPLATE_DEPTH {
            return Err(self.err(format!(
                "template functions nest deeper than {MAX_TEMPLATE_DEPTH} levels"
            )));
        }
        self.skip_ws();
        let start = self.pos;
        let name = self.name().to_owned();
        match name.as_str() {
            "email.local" => {
                self.expect('(', "`(` after email.local")?;
                let inner = self.expr(depth + 1)?;
                self.expect(')', "`)` to close email.local(")?;
                Ok(Part::EmailLocal(Box::new(inner)))
            }
            "regexp.replace" => {
                self.expect('(', "`(` after regexp.replace")?;
                let input = self.expr(depth + 1)?;
                self.expect(',', "`,` then the pattern in double quotes")?;
                self.skip_ws();
                let at = self.pos;
                let pattern = self.string("the pattern in double quotes")?;
                let pattern = regex::RegexBuilder::new(&pattern)
                    .size_limit(MAX_REGEX_BYTES)
                    .dfa_size_limit(MAX_REGEX_BYTES)
                    .build()
                    .map_err(|e| {
                        let detail = e.to_string().replace('\n', " ");
                        ExprError::at(
                            self.src,
                            at,
                            format!("invalid regular expression: {detail}"),
                        )
                    })?;
                self.expect(',', "`,` then the replacement in double quotes")?;
                let with = self.string("the replacement in double quotes")?;
                self.expect(')', "`)` to close regexp.replace(")?;
                Ok(Part::Replace {
                    input: Box::new(input),
                    pattern,
                    with,
                })
            }
            "internal" | "external" => {
                self.expect('[', "`.` or `[` after internal/external")?;
                let key = self.string("a trait name in double quotes")?;
                self.expect(']', "`]` after the trait name")?;
                Ok(Part::Trait(key))
            }
            other => match other
                .strip_prefix("internal.")
                .or_else(|| other.strip_prefix("external."))
            {
                Some(trait_name) if !trait_name.is_empty() => {
                    Ok(Part::Trait(trait_name.to_owned()))
                }
                _ => {
                    self.pos = start;
                    Err(self.err(format!(
                        "unknown template {:?}; expected internal.NAME, external.NAME, email.local(…) or regexp.replace(…, \"pattern\", \"replacement\")",
                        other
                    )))
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn traits() -> BTreeMap<String, Vec<String>> {
        BTreeMap::from([
            (
                "logins".to_owned(),
                vec!["alice".to_owned(), "ubuntu".to_owned()],
            ),
            (
                "email".to_owned(),
                vec![
                    "bob@example.com".to_owned(),
                    "no-at".to_owned(),
                    "@x".to_owned(),
                ],
            ),
            (
                "groups".to_owned(),
                vec!["db-admin".to_owned(), "web".to_owned(), "-admin".to_owned()],
            ),
            ("http://x/claim".to_owned(), vec!["c".to_owned()]),
        ])
    }

    fn expand(t: &str) -> Vec<String> {
        Template::parse(t)
            .unwrap_or_else(|e| panic!("{t}: {e}"))
            .expand(&traits())
    }

    #[test]
    fn expansion_table() {
        let table: &[(&str, &[&str])] = &[
            ("{{internal.logins}}", &["alice", "ubuntu"]),
            ("{{ external.logins }}", &["alice", "ubuntu"]),
            ("{{external[\"http://x/claim\"]}}", &["c"]),
            ("{{internal.missing}}", &[]),
            ("{{email.local(external.email)}}", &["bob"]),
            (
                "{{regexp.replace(internal.groups, \"^(.*)-admin$\", \"$1\")}}",
                &["db"],
            ),
            (
                "{{regexp.replace(internal.groups, \"^(?P<g>[a-z]+)$\", \"team-${g}\")}}",
                &["team-web"],
            ),
            (
                "{{regexp.replace(email.local(external.email), \"^b\", \"B\")}}",
                &["Bob"],
            ),
            ("{{regexp.replace(internal.missing, \".*\", \"x\")}}", &[]),
        ];
        for (t, want) in table {
            assert_eq!(expand(t), *want, "{t}");
        }
    }

    #[test]
    fn errors_carry_positions() {
        let table: &[(&str, usize, &str)] = &[
            ("{{bogus}}", 2, "unknown template"),
            ("{{internal.}}", 2, "unknown template"),
            ("x-{{internal.logins}}", 0, "whole value"),
            ("{{internal.logins}} ", 0, "whole value"),
            ("{{internal.logins x}}", 18, "unexpected text"),
            ("{{email.local(internal.a}}", 24, "`)` to close"),
            (
                "{{regexp.replace(internal.a, \"^(x$\", \"y\")}}",
                29,
                "invalid regular expression",
            ),
            ("{{regexp.replace(internal.a, \"x)}}", 29, "not closed"),
            (
                "{{regexp.replace(internal.a, x, \"y\")}}",
                29,
                "pattern in double quotes",
            ),
            ("{{regexp.replace(internal.a, \"x\")}}", 32, "replacement"),
            ("{{internal[\"a\\n\"]}}", 13, "unknown escape"),
            (
                "{{regexp.replace(internal.a, \"^(a{1000}){1000}$\", \"\")}}",
                29,
                "invalid regular expression",
            ),
        ];
        for (t, pos, msg) in table {
            let e = Template::parse(t).expect_err(t);
            assert_eq!(e.position, *pos, "{t}: {e}");
            assert!(e.message.contains(msg), "{t}: {e}");
        }
        let deep = format!(
            "{{{{{}internal.a{}}}}}",
            "email.local(".repeat(MAX_TEMPLATE_DEPTH + 1),
            ")".repeat(MAX_TEMPLATE_DEPTH + 1)
        );
        assert!(
            Template::parse(&deep)
                .unwrap_err()
                .message
                .contains("deeper")
        );
        let long = format!("{{{{internal.{}}}}}", "a".repeat(MAX_TEMPLATE_BYTES));
        assert!(
            Template::parse(&long)
                .unwrap_err()
                .message
                .contains("at most 256")
        );
    }
}
