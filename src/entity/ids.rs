//! Typed row ids: a `UserId` cannot be passed where an `IssueId` is wanted, from the
//! GraphQL edge down to the SQL (each is its column's sea-orm value type).
//!
//! In the API an id is the decimal row id, spelled the one way [`std::fmt::Display`]
//! writes it (no sign, no leading zero, no spaces, no fraction). Any other spelling
//! names no row, so one row has one id and a cache keyed by id cannot hold it twice.

use sea_orm::DeriveValueType;
use serde::{Deserialize, Serialize};

/// What every typed id can do.
pub trait RowId: Sized + Copy {
    /// The row an API id names, if it is spelled as one.
    fn parse(id: &str) -> Option<Self>;
}

macro_rules! row_id {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, DeriveValueType, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl RowId for $name {
            fn parse(id: &str) -> Option<Self> {
                parse_row_id(id).map(Self)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}

row_id! {
    /// A `users` row.
    UserId,
    /// An `issues` row.
    IssueId,
    /// A `notices` row.
    NoticeId,
    /// A `projects` row.
    ProjectId,
    /// An `invitations` row.
    InvitationId,
}

/// The row id of `id` when it is spelled the one canonical way.
fn parse_row_id(id: &str) -> Option<i64> {
    let canonical = id.len() <= 19
        && id.as_bytes().first().is_some_and(|first| (b'1'..=b'9').contains(first))
        && id.bytes().all(|byte| byte.is_ascii_digit());
    if !canonical {
        return None;
    }
    id.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_has_one_spelling() {
        assert_eq!(IssueId::parse("1"), Some(IssueId(1)));
        assert_eq!(UserId::parse("9223372036854775807"), Some(UserId(i64::MAX)));
        assert_eq!(IssueId(42).to_string(), "42");
        for other in
            ["", "0", "01", "+1", "-1", " 1", "1 ", "1.0", "1e3", "0x1", "9223372036854775808", "1\0"]
        {
            assert_eq!(IssueId::parse(other), None, "{other:?}");
        }
    }
}
