//! Domain values, parsed once from input: an invalid one cannot exist.
//!
//! Each `parse` fails with `BAD_USER_INPUT` naming the GraphQL input field.

use crate::{Error, Result};

/// Most entries a list input (a filter's `status: [...]`, say) may hold.
pub const MAX_LIST_LEN: usize = 10;

/// Refuses a NUL byte, which PostgreSQL cannot store in text (it would fail the
/// statement, an internal error, instead of naming the input).
fn no_nul(value: &str, field: &'static str) -> Result<()> {
    if value.contains('\0') {
        return Err(Error::bad_input(field, format!("{field} must not contain a NUL byte")));
    }
    Ok(())
}

/// Unicode bidirectional overrides and isolates, which can make text display in an
/// order other than the one it is stored in (a title that reads differently in an
/// email subject than in the list, say).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that show nothing: whitespace, zero-width and joiner characters,
/// direction marks, variation selectors, fillers and tags.
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || is_bidi_control(c)
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2060}'..='\u{2064}'
                | '\u{206A}'..='\u{206F}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E0FFF}'
        )
}

/// The checks a line of display text (a title, a name) passes besides its length:
/// no control or bidirectional-override characters, and something visible.
fn display_line(value: &str, field: &'static str, what: &str) -> Result<()> {
    no_nul(value, field)?;
    if value.chars().any(char::is_control) {
        return Err(Error::bad_input(
            field,
            format!("{what} must not contain line breaks or control characters"),
        ));
    }
    if value.chars().any(is_bidi_control) {
        return Err(Error::bad_input(
            field,
            format!("{what} must not contain bidirectional override or isolate characters"),
        ));
    }
    if !value.is_empty() && value.chars().all(is_invisible) {
        return Err(Error::bad_input(field, format!("{what} must contain a visible character")));
    }
    Ok(())
}

/// A list input of at most [`MAX_LIST_LEN`] entries.
pub fn bounded_list<T>(items: Vec<T>, field: &'static str) -> Result<Vec<T>> {
    if items.len() > MAX_LIST_LEN {
        return Err(Error::bad_input(field, format!("{field} may hold at most {MAX_LIST_LEN} entries")));
    }
    Ok(items)
}

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
        if value.len() > 4 * 254 {
            return Err(invalid());
        }
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

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A new password: at least 8 characters, at most 1024 bytes. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub const MAX_BYTES: usize = 1024;

    pub fn parse(value: String) -> Result<Self> {
        Self::parse_field(value, "password")
    }

    pub fn parse_field(value: String, field: &'static str) -> Result<Self> {
        if value.chars().count() < 8 {
            return Err(Error::bad_input(field, "Password must be at least 8 characters"));
        }
        if value.len() > Self::MAX_BYTES {
            return Err(Error::bad_input(field, "Password must be at most 1024 bytes"));
        }
        no_nul(&value, field)?;
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
        display_line(value, field, "Name")?;
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
        display_line(value, "title", "Title")?;
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
        no_nul(&value, "description")?;
        Ok(Self(value))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A project key: 2 to 10 upper-case letters and digits, starting with a letter
/// (`WEB`, `IOS2`). It prefixes the project's issue keys (`WEB-42`), so it is fixed
/// once the project exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectKey(String);

impl ProjectKey {
    pub fn parse(value: String, field: &'static str) -> Result<Self> {
        let shape = (2..=10).contains(&value.len())
            && value.starts_with(|c: char| c.is_ascii_uppercase())
            && value.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if !shape {
            return Err(Error::bad_input(
                field,
                "Key must be 2 to 10 upper-case letters and digits, starting with a letter",
            ));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A project name: 1 to 128 characters on one line, not blank, surrounding spaces
/// dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectName(String);

impl ProjectName {
    pub fn parse(value: String) -> Result<Self> {
        let value = value.trim();
        if value.is_empty() {
            return Err(Error::bad_input("name", "Name must not be blank"));
        }
        if value.chars().count() > 128 {
            return Err(Error::bad_input("name", "Name must be at most 128 characters"));
        }
        display_line(value, "name", "Name")?;
        Ok(Self(value.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A project description: at most 4 KiB of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectDescription(String);

impl ProjectDescription {
    pub const MAX_BYTES: usize = 4 * 1024;

    pub fn parse(value: String) -> Result<Self> {
        if value.len() > Self::MAX_BYTES {
            return Err(Error::bad_input("description", "Description must be at most 4 KiB"));
        }
        no_nul(&value, "description")?;
        Ok(Self(value))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A search text: at most 256 characters, surrounding spaces dropped; `None` when
/// nothing is left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchText(String);

impl SearchText {
    pub const MAX_CHARS: usize = 256;

    pub fn parse(value: String, field: &'static str) -> Result<Option<Self>> {
        // Counting stops at the bound, so a megabyte of text costs no more than 257
        // characters.
        if value.chars().nth(Self::MAX_CHARS).is_some() {
            return Err(Error::bad_input(field, format!("{field} must be at most 256 characters")));
        }
        no_nul(&value, field)?;
        let value = value.trim();
        Ok((!value.is_empty()).then(|| Self(value.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A LIKE pattern matching the text anywhere, lower-cased, with `%`, `_` and `\`
    /// taken literally.
    pub fn contains_pattern(&self) -> sea_orm::sea_query::LikeExpr {
        let mut pattern = String::with_capacity(self.0.len() + 2);
        pattern.push('%');
        for c in self.0.to_lowercase().chars() {
            if matches!(c, '%' | '_' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        sea_orm::sea_query::LikeExpr::new(pattern).escape('\\')
    }
}

/// What a login names its account by: a username or an email address, as typed.
/// At most 320 characters (the longest email address), no NUL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginName(String);

impl LoginName {
    pub const MAX_CHARS: usize = 320;

    pub fn parse(value: String, field: &'static str) -> Result<Self> {
        if value.chars().nth(Self::MAX_CHARS).is_some() {
            return Err(Error::bad_input(field, format!("{field} must be at most 320 characters")));
        }
        no_nul(&value, field)?;
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as it is looked up and counted: trimmed and lower-cased.
    pub fn normalized(&self) -> String {
        self.0.trim().to_lowercase()
    }
}

/// A password offered to be checked (a login's, or `currentPassword`): at most
/// 1024 bytes, no NUL, and no other rule, so a wrong one is just wrong. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordAttempt(String);

impl PasswordAttempt {
    pub fn parse(value: String, field: &'static str) -> Result<Self> {
        if value.len() > Password::MAX_BYTES {
            return Err(Error::bad_input(field, format!("{field} must be at most 1024 bytes")));
        }
        no_nul(&value, field)?;
        Ok(Self(value))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PasswordAttempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordAttempt([redacted])")
    }
}

/// How many random bytes a refresh token holds.
pub const REFRESH_TOKEN_BYTES: usize = 32;

/// A token as presented: at most as long as one we issue of `REFRESH_TOKEN_BYTES`
/// random bytes (unpadded base64url), no NUL.
fn opaque_token(value: String, field: &'static str, message: &'static str) -> Result<String> {
    if value.len() > RefreshToken::MAX_LEN {
        return Err(Error::bad_input(field, message));
    }
    no_nul(&value, field)?;
    Ok(value)
}

macro_rules! opaque_token {
    ($($(#[$doc:meta])* $name:ident($field:literal, $message:literal)),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: String) -> Result<Self> {
                opaque_token(value, $field, $message).map(Self)
            }

            pub fn expose(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    )*};
}

opaque_token! {
    /// A refresh token as presented. Never printed.
    RefreshToken("refreshToken", "Invalid refresh token"),
    /// An invitation link's token as presented. Never printed.
    InvitationToken("token", "The invitation is invalid, expired or used"),
}

impl RefreshToken {
    pub const MAX_LEN: usize = (REFRESH_TOKEN_BYTES * 4).div_ceil(3);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_project_key_is_upper_case_letters_and_digits_starting_with_a_letter() {
        for good in ["WEB", "IO", "IOS2", "ABCDEFGHIJ"] {
            assert!(ProjectKey::parse(good.to_owned(), "key").is_ok(), "{good}");
        }
        for bad in ["", "W", "web", "2WEB", "WEB-1", "ABCDEFGHIJK", "WÉB", "WEB "] {
            assert!(ProjectKey::parse(bad.to_owned(), "key").is_err(), "{bad:?}");
        }
    }

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
        assert_eq!(field_of(IssueDescription::parse("a\0b".into())), "description");
    }

    #[test]
    fn titles_and_names_refuse_bidi_overrides_and_invisible_text() {
        for bidi in ['\u{202A}', '\u{202E}', '\u{2066}', '\u{2069}'] {
            assert_eq!(field_of(IssueTitle::parse(format!("Fix {bidi}it"))), "title", "{bidi:?}");
            assert_eq!(field_of(PersonName::parse(format!("Ada{bidi}"), "firstName")), "firstName");
        }
        for invisible in ["\u{200B}", "\u{200B}\u{200C}\u{200D}", "\u{2060}", "\u{FEFF}", " \u{3164} "] {
            assert_eq!(field_of(IssueTitle::parse(invisible.into())), "title", "{invisible:?}");
            assert_eq!(field_of(PersonName::parse(invisible.into(), "lastName")), "lastName");
        }
        assert!(IssueTitle::parse("Zero\u{200B}width inside".into()).is_ok());
        assert!(IssueTitle::parse("שלום עולם".into()).is_ok(), "right-to-left text is fine");
        assert!(PersonName::parse(String::new(), "firstName").is_ok(), "a name may be left empty");
        assert_eq!(field_of(PersonName::parse("A\0".into(), "firstName")), "firstName");
    }

    #[test]
    fn searches_logins_and_tokens_are_bounded_and_refuse_nul() {
        assert!(SearchText::parse("x".repeat(256), "search").is_ok());
        assert_eq!(field_of(SearchText::parse("x".repeat(257), "search")), "search");
        assert_eq!(field_of(SearchText::parse("a\0".into(), "search")), "search");
        assert!(matches!(SearchText::parse("  ".into(), "search"), Ok(None)));
        assert!(LoginName::parse("x".repeat(320), "username").is_ok());
        assert_eq!(field_of(LoginName::parse("x".repeat(321), "username")), "username");
        assert_eq!(field_of(LoginName::parse("ada\0".into(), "username")), "username");
        assert!(PasswordAttempt::parse("x".repeat(1024), "password").is_ok());
        assert_eq!(field_of(PasswordAttempt::parse("x".repeat(1025), "password")), "password");
        assert_eq!(field_of(PasswordAttempt::parse("pass\0word".into(), "password")), "password");
        assert_eq!(field_of(Password::parse("pass\0word".into())), "password");
        assert_eq!(RefreshToken::MAX_LEN, 43);
        assert!(RefreshToken::parse("x".repeat(43)).is_ok());
        assert_eq!(field_of(RefreshToken::parse("x".repeat(44))), "refreshToken");
        assert_eq!(field_of(bounded_list(vec![0; 11], "status")), "status");
        assert!(bounded_list(vec![0; 10], "status").is_ok());
    }
}
