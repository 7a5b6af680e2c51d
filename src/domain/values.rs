//! Domain values, parsed once from input: an invalid one cannot exist.
//!
//! Each `parse` fails with `BAD_USER_INPUT` naming the GraphQL input field.

use crate::{Error, Result};

/// A username: 3 to 39 letters, digits, `-` or `_`. Kept as typed; unique without
/// regard to case (the database indexes `lower(username)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(value: String) -> Result<Self> {
        let len = value.chars().count();
        if !(3..=39).contains(&len) {
            return Err(Error::bad_input("username", "Username must be 3 to 39 characters"));
        }
        if !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(Error::bad_input(
                "username",
                "Username may contain only letters, digits, '-' and '_'",
            ));
        }
        Ok(Self(value))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// An email address in a real shape, stored lower-case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(value: String) -> Result<Self> {
        let invalid = || Error::bad_input("email", "Email is not a valid address");
        let value = value.trim().to_lowercase();
        if value.len() > 254 {
            return Err(invalid());
        }
        let (local, domain) = value.rsplit_once('@').ok_or_else(invalid)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
            && labels
                .last()
                .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_alphabetic()) && tld.len() >= 2);
        if local_ok && domain_ok { Ok(Self(value)) } else { Err(invalid()) }
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A new password: at least 8 characters, at most 1024 bytes. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn parse(value: String) -> Result<Self> {
        Self::parse_field(value, "password")
    }

    pub fn parse_field(value: String, field: &'static str) -> Result<Self> {
        if value.chars().count() < 8 {
            return Err(Error::bad_input(field, "Password must be at least 8 characters"));
        }
        if value.len() > 1024 {
            return Err(Error::bad_input(field, "Password must be at most 1024 bytes"));
        }
        Ok(Self(value))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// A first or last name: at most 100 characters, surrounding spaces dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(value: String, field: &'static str) -> Result<Self> {
        let value = value.trim();
        if value.chars().count() > 100 {
            return Err(Error::bad_input(field, "Name must be at most 100 characters"));
        }
        if value.chars().any(char::is_control) {
            return Err(Error::bad_input(field, "Name must not contain control characters"));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// An issue title: 1 to 256 characters, not blank, surrounding spaces dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueTitle(String);

impl IssueTitle {
    pub fn parse(value: String) -> Result<Self> {
        let value = value.trim();
        if value.is_empty() {
            return Err(Error::bad_input("title", "Title must not be blank"));
        }
        if value.chars().count() > 256 {
            return Err(Error::bad_input("title", "Title must be at most 256 characters"));
        }
        // A title is one line: it becomes an email subject, among other places.
        if value.chars().any(char::is_control) {
            return Err(Error::bad_input(
                "title",
                "Title must not contain line breaks or control characters",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// An issue description: at most 64 KiB of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueDescription(String);

impl IssueDescription {
    pub const MAX_BYTES: usize = 64 * 1024;

    pub fn parse(value: String) -> Result<Self> {
        if value.len() > Self::MAX_BYTES {
            return Err(Error::bad_input("description", "Description must be at most 64 KiB"));
        }
        Ok(Self(value))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of<T: std::fmt::Debug>(result: Result<T>) -> &'static str {
        match result {
            Err(Error::BadInput { field, .. }) => field,
            other => panic!("expected BAD_USER_INPUT, got {other:?}"),
        }
    }

    #[test]
    fn usernames() {
        assert!(Username::parse("ada_l-1".into()).is_ok());
        assert_eq!(field_of(Username::parse("ab".into())), "username");
        assert_eq!(field_of(Username::parse("a".repeat(40))), "username");
        assert!(Username::parse("a".repeat(39)).is_ok());
        assert_eq!(field_of(Username::parse("ada lovelace".into())), "username");
        assert_eq!(field_of(Username::parse("adä".into())), "username");
    }

    #[test]
    fn emails_are_lower_cased_and_shaped() {
        assert_eq!(
            Email::parse(" Ada@Example.COM ".into()).map(Email::into_inner).ok(),
            Some("ada@example.com".into())
        );
        assert!(Email::parse("a.b+tag@mail.example.org".into()).is_ok());
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@@example.com",
            "a..b@example.com",
            "ada@exa mple.com",
            "ada@-x.com",
        ] {
            assert_eq!(field_of(Email::parse(bad.into())), "email", "{bad:?}");
        }
    }

    #[test]
    fn passwords() {
        assert!(Password::parse("12345678".into()).is_ok());
        assert_eq!(field_of(Password::parse("1234567".into())), "password");
        assert!(Password::parse("x".repeat(1024)).is_ok());
        assert_eq!(field_of(Password::parse("x".repeat(1025))), "password");
        assert_eq!(format!("{:?}", Password::parse("12345678".into()).ok()), "Some(Password([redacted]))");
    }

    #[test]
    fn titles_and_descriptions() {
        assert_eq!(
            IssueTitle::parse("  Fix it ".into()).map(IssueTitle::into_inner).ok(),
            Some("Fix it".into())
        );
        assert_eq!(field_of(IssueTitle::parse("   ".into())), "title");
        assert!(IssueTitle::parse("é".repeat(256)).is_ok());
        assert_eq!(field_of(IssueTitle::parse("x".repeat(257))), "title");
        assert_eq!(field_of(IssueTitle::parse("Subject\r\nBcc: x@example.com".into())), "title");
        assert!(IssueDescription::parse("x".repeat(65536)).is_ok());
        assert_eq!(field_of(IssueDescription::parse("x".repeat(65537))), "description");
    }
}
