//! Targets for `keygate-types`: the YAML/JSON loader, JSON resources and
//! the parsed newtypes.

use keygate_types::{
    AnyResource, Login, RoleName, Ttl, UserName, load_documents, to_yaml, validate_name,
};

use crate::input;
use crate::invariant::{check, check_eq, fail, must};

/// `load_documents` on arbitrary text. Every resource it accepts must come
/// back unchanged through the JSON form (what storage and the API keep) and
/// through `to_yaml` (what `kgctl get --format yaml` prints for re-applying).
pub fn types_load(data: &[u8]) {
    let Some(text) = input::text(data) else {
        return;
    };
    let Ok(docs) = load_documents("fuzz.yaml", text) else {
        return;
    };
    for doc in docs {
        let line = usize::try_from(doc.line).unwrap_or(usize::MAX);
        check(
            doc.line >= 1 && line <= text.lines().count().max(1),
            "document line is inside the input",
            &doc.line,
        );
        json_round_trip(&doc.resource);
        let yaml = must(to_yaml(&doc.resource), "to_yaml of a loaded resource");
        let again = must(
            load_documents("again.yaml", &yaml),
            "loading to_yaml output again",
        );
        match again.as_slice() {
            [one] => check_eq(&one.resource, &doc.resource, "YAML round trip"),
            other => fail("to_yaml gives exactly one document", &other),
        }
    }
}

/// `AnyResource::from_json` on any JSON value. An accepted resource must
/// survive `to_json` and must load the same way from a file (the API and
/// `kgctl create -f` must agree on what a resource is).
pub fn types_json(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let text = value.to_string();
    let Ok(resource) = AnyResource::from_json(value) else {
        return;
    };
    json_round_trip(&resource);
    // serde_json writes DEL, most C1 controls and U+FFFE/U+FFFF raw, and
    // YAML 1.2 forbids them raw, so such JSON text cannot load as YAML
    // (a known limitation of loading JSON through the YAML parser).
    if !text.chars().all(yaml_printable) {
        return;
    }
    let loaded = must(
        load_documents("fuzz.json", &text),
        "loading a resource from_json accepted",
    );
    match loaded.as_slice() {
        [one] => check_eq(&one.resource, &resource, "JSON text loads like from_json"),
        other => fail("a JSON resource is one document", &other),
    }
}

/// `Ttl`, `UserName`, `RoleName` and `Login` parsing: whatever is accepted
/// prints back to text that parses to the same value.
pub fn types_names(data: &[u8]) {
    let Some(text) = input::text(data) else {
        return;
    };
    if let Ok(ttl) = text.parse::<Ttl>() {
        check(
            ttl.as_secs() >= 1 && ttl.as_secs() <= 3650 * 86_400,
            "a TTL is between 1 s and 10 years",
            &ttl,
        );
        let printed = ttl.to_string();
        check_eq(
            &must(printed.parse::<Ttl>(), "re-parsing a printed TTL"),
            &ttl,
            "TTL round trip",
        );
        let via_serde: Ttl = must(
            serde_json::from_value(serde_json::Value::String(text.to_owned())),
            "TTL through serde",
        );
        check_eq(&via_serde, &ttl, "serde and FromStr agree on TTLs");
    }
    let user = text.parse::<UserName>();
    let role = text.parse::<RoleName>();
    if let Ok(user) = &user {
        check_eq(&user.as_str(), &text, "a user name is kept verbatim");
        check(
            role.is_ok(),
            "every user name is also a valid role name",
            &text,
        );
        check(
            !text.starts_with('@') && !text.starts_with("system:"),
            "reserved user names are refused",
            &text,
        );
    }
    if let Ok(role) = &role {
        check_eq(
            &role.to_string().as_str(),
            &text,
            "a role name prints as is",
        );
        check(
            validate_name("fuzz", text).is_ok(),
            "role names are exactly the valid names",
            &text,
        );
    }
    if let Ok(login) = text.parse::<Login>() {
        check_eq(&login.as_str(), &text, "a login is kept verbatim");
        check(
            (1..=32).contains(&text.len()),
            "a login has 1 to 32 bytes",
            &text,
        );
    }
}

/// `to_json` then `from_json` gives the same resource.
fn json_round_trip(resource: &AnyResource) {
    let json = must(resource.to_json(), "to_json of an accepted resource");
    let back = must(AnyResource::from_json(json), "from_json of to_json output");
    check_eq(&back, resource, "JSON round trip");
}

/// YAML 1.2 `c-printable`: the characters a YAML stream may contain raw.
fn yaml_printable(c: char) -> bool {
    matches!(c,
        '\t' | '\n' | '\r' | ' '..='~' | '\u{85}' | '\u{A0}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}
