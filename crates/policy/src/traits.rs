//! Expanding role values against the user's traits (the template language
//! itself lives in `keygate_types::template`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use keygate_types::Template;

/// Most parsed templates remembered (roles hold few distinct ones).
const TEMPLATE_CACHE_SIZE: usize = 1024;

/// A parsed template, or `None` when it does not parse.
type Parsed = Arc<Option<Template>>;

/// Parses a template once; later calls return the remembered result. Pure
/// memoisation: no I/O, no time.
fn parsed(value: &str) -> Parsed {
    static CACHE: OnceLock<Mutex<HashMap<String, Parsed>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(hit) = cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(value)
    {
        return Arc::clone(hit);
    }
    let parsed: Parsed = Arc::new(Template::parse(value).ok());
    let mut map = cache.lock().unwrap_or_else(PoisonError::into_inner);
    if map.len() >= TEMPLATE_CACHE_SIZE {
        map.clear();
    }
    map.insert(value.to_owned(), Arc::clone(&parsed));
    parsed
}

/// Expands one role value against the user's traits.
///
/// `{{internal.X}}` and `{{external.X}}` expand to every value of trait `X`;
/// `{{email.local(…)}}` to the local parts of those values;
/// `{{regexp.replace(…, "re", "with")}}` to the values `re` matches,
/// rewritten (values it does not match are dropped). A value without `{{`
/// expands to itself. A trait that does not exist, or a template that does
/// not parse, expands to nothing — never to a wildcard.
pub fn expand_template(value: &str, traits: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    if !Template::is_template(value) {
        return vec![value.to_owned()];
    }
    match parsed(value).as_ref() {
        Some(t) => t.expand(traits),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_traits_and_never_invents() {
        let t = BTreeMap::from([
            (
                "logins".to_owned(),
                vec!["alice".to_owned(), "ubuntu-admin".to_owned()],
            ),
            ("email".to_owned(), vec!["bob@example.com".to_owned()]),
        ]);
        assert_eq!(
            expand_template("{{internal.logins}}", &t),
            vec!["alice", "ubuntu-admin"]
        );
        assert_eq!(
            expand_template("{{external.logins}}", &t),
            vec!["alice", "ubuntu-admin"]
        );
        assert_eq!(
            expand_template("{{email.local(external.email)}}", &t),
            vec!["bob"]
        );
        assert_eq!(
            expand_template(
                r#"{{regexp.replace(internal.logins, "^(.*)-admin$", "$1")}}"#,
                &t
            ),
            vec!["ubuntu"]
        );
        assert!(expand_template("{{internal.missing}}", &t).is_empty());
        assert!(expand_template("{{bogus}}", &t).is_empty());
        assert!(expand_template("x-{{internal.logins}}", &t).is_empty());
        assert_eq!(expand_template("root", &t), vec!["root"]);
    }
}
