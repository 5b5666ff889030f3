use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::TypesError;

/// Checks a resource name: 1–253 bytes of letters, digits and `._-@+:`, not
/// starting with a separator.
pub fn validate_name(field: &str, s: &str) -> Result<(), TypesError> {
    if s.is_empty() || s.len() > 253 {
        return Err(TypesError::invalid(field, "must be 1 to 253 characters"));
    }
    let ok = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-@+:".contains(c));
    if !ok {
        return Err(TypesError::invalid(
            field,
            format!("{s:?} may contain only letters, digits and . _ - @ + :"),
        ));
    }
    if s.starts_with(['.', '-', ':']) {
        return Err(TypesError::invalid(
            field,
            format!("{s:?} must not start with . - or :"),
        ));
    }
    Ok(())
}

macro_rules! newtype {
    ($(#[$doc:meta])* $name:ident, $check:path) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = TypesError;
            fn from_str(s: &str) -> Result<Self, TypesError> {
                $check(s)?;
                Ok(Self(s.to_owned()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = TypesError;
            fn try_from(s: String) -> Result<Self, TypesError> {
                $check(&s)?;
                Ok(Self(s))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

fn check_user(s: &str) -> Result<(), TypesError> {
    if s.starts_with('@') || s.starts_with("system:") {
        return Err(TypesError::invalid(
            "user name",
            format!("{s:?} is reserved: names starting with '@' or 'system:' belong to Keygate"),
        ));
    }
    validate_name("user name", s)
}

fn check_role(s: &str) -> Result<(), TypesError> {
    validate_name("role name", s)
}

/// POSIX-portable login names (what `useradd` accepts), at most 32 bytes.
fn check_login(s: &str) -> Result<(), TypesError> {
    let valid_chars = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if s.is_empty() || s.len() > 32 || !valid_chars || s.starts_with('-') {
        return Err(TypesError::invalid(
            "login",
            format!(
                "{s:?} is not a valid OS login: 1-32 letters, digits, . _ -, not starting with -"
            ),
        ));
    }
    Ok(())
}

newtype!(
    /// A Keygate user name (local or SSO). Reserved prefixes are refused.
    UserName,
    check_user
);
newtype!(
    /// A role name.
    RoleName,
    check_role
);
newtype!(
    /// An OS login a certificate may carry as a principal.
    Login,
    check_login
);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reserved_user_names_are_refused() {
        assert!("@bot".parse::<UserName>().is_err());
        assert!("system:auth".parse::<UserName>().is_err());
        assert!("alice@example.com".parse::<UserName>().is_ok());
    }

    #[test]
    fn logins_are_posix() {
        assert!("ubuntu".parse::<Login>().is_ok());
        assert!("kgt-alice".parse::<Login>().is_ok());
        for bad in [
            "",
            "-x",
            "a b",
            "root;rm",
            "x".repeat(33).as_str(),
            "{{internal.logins}}",
        ] {
            assert!(bad.parse::<Login>().is_err(), "{bad}");
        }
    }
}
