use std::collections::BTreeMap;

/// Expands one role value against the user's traits.
///
/// `{{internal.X}}` and `{{external.X}}` expand to every value of trait `X`;
/// `{{email.local(internal.X)}}` to the local parts of those values. A value
/// without a template expands to itself. A trait that does not exist, or a
/// malformed template, expands to nothing — never to a wildcard.
pub fn expand_template(value: &str, traits: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let Some(inner) = value.strip_prefix("{{").and_then(|v| v.strip_suffix("}}")) else {
        return vec![value.to_owned()];
    };
    let inner = inner.trim();
    if let Some(arg) = inner
        .strip_prefix("email.local(")
        .and_then(|v| v.strip_suffix(')'))
    {
        return lookup(arg.trim(), traits)
            .iter()
            .filter_map(|v| v.split_once('@').map(|(local, _)| local.to_owned()))
            .filter(|l| !l.is_empty())
            .collect();
    }
    lookup(inner, traits).to_vec()
}

fn lookup<'a>(path: &str, traits: &'a BTreeMap<String, Vec<String>>) -> &'a [String] {
    let name = path
        .strip_prefix("internal.")
        .or_else(|| path.strip_prefix("external."));
    match name.and_then(|n| traits.get(n)) {
        Some(v) => v.as_slice(),
        None => &[],
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
                vec!["alice".to_owned(), "ubuntu".to_owned()],
            ),
            ("email".to_owned(), vec!["bob@example.com".to_owned()]),
        ]);
        assert_eq!(
            expand_template("{{internal.logins}}", &t),
            vec!["alice", "ubuntu"]
        );
        assert_eq!(
            expand_template("{{external.logins}}", &t),
            vec!["alice", "ubuntu"]
        );
        assert_eq!(
            expand_template("{{email.local(external.email)}}", &t),
            vec!["bob"]
        );
        assert!(expand_template("{{internal.missing}}", &t).is_empty());
        assert!(expand_template("{{bogus}}", &t).is_empty());
        assert_eq!(expand_template("root", &t), vec!["root"]);
    }
}
