//! The one error type of Triage.
//!
//! Every layer below GraphQL returns [`Error`]; each variant documents the
//! `extensions.code` a client sees. Database and unexpected errors are logged in full
//! where they are turned into a GraphQL error, and reach the client as
//! `INTERNAL_SERVER_ERROR` with no detail. `anyhow` is for start-up and jobs only.

use async_graphql::ErrorExtensions;
use sea_orm::{DbErr, SqlErr};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `UNAUTHENTICATED`: no token, a bad or expired one, or a wrong login.
    #[error("{0}")]
    Unauthenticated(&'static str),

    /// `FORBIDDEN`: the caller is known but may not do this.
    #[error("{0}")]
    Forbidden(&'static str),

    /// `NOT_FOUND`: the thing the operation names does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),

    /// `BAD_USER_INPUT`, with the offending input `field`.
    #[error("{message}")]
    BadInput { field: &'static str, message: String },

    /// `RATE_LIMITED`, with `retryAfter`: the whole seconds to wait before trying again.
    #[error("{message}")]
    RateLimited { message: &'static str, retry_after: u64 },

    /// `SUBSCRIPTION_LAGGED`: a subscriber fell too far behind and was closed.
    #[error("This subscription fell {missed} changes behind and was closed; subscribe again and refetch")]
    Lagged { missed: u64 },

    /// `CONFLICT`, with the `field` whose value is taken.
    #[error("{message}")]
    Conflict { field: &'static str, message: String },

    /// `SERVICE_UNAVAILABLE`: something the operation needs outside Triage (the mail
    /// server) failed; nothing was changed, and trying again later may work.
    #[error("{0}")]
    Unavailable(&'static str),

    /// `INTERNAL_SERVER_ERROR`: a database failure; the detail is logged, never shown.
    #[error("database error")]
    Database(#[from] DbErr),

    /// `INTERNAL_SERVER_ERROR`: anything else unexpected; logged, never shown.
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl Error {
    pub fn bad_input(field: &'static str, message: impl Into<String>) -> Self {
        Self::BadInput { field, message: message.into() }
    }

    pub fn conflict(field: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict { field, message: message.into() }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal(anyhow::anyhow!(message.into()))
    }

    /// The `extensions.code` this error carries.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::BadInput { .. } => "BAD_USER_INPUT",
            Self::Conflict { .. } => "CONFLICT",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::Lagged { .. } => "SUBSCRIPTION_LAGGED",
            Self::Unavailable(_) => "SERVICE_UNAVAILABLE",
            Self::Database(_) | Self::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }

    /// Maps a unique-constraint violation on one of `indexes` (index name, input field,
    /// message) to [`Error::Conflict`]; any other database error stays what it is.
    ///
    /// The constraint is the authority on uniqueness: a check before the insert
    /// would race with a concurrent one.
    pub fn on_unique_violation(err: DbErr, indexes: &[(&str, &'static str, &str)]) -> Self {
        if let Some(SqlErr::UniqueConstraintViolation(detail)) = err.sql_err() {
            for (index, field, message) in indexes {
                if detail.contains(index) {
                    return Self::conflict(field, *message);
                }
            }
        }
        Self::Database(err)
    }
}

impl ErrorExtensions for Error {
    fn extend(&self) -> async_graphql::Error {
        let message = match self {
            Self::Database(err) => {
                tracing::error!(error = %err, "database error");
                "Internal server error".to_owned()
            }
            Self::Internal(err) => {
                tracing::error!(error = ?err, "internal error");
                "Internal server error".to_owned()
            }
            other => other.to_string(),
        };
        async_graphql::Error::new(message).extend_with(|_, ext| {
            ext.set("code", self.code());
            if let Self::BadInput { field, .. } | Self::Conflict { field, .. } = self {
                ext.set("field", *field);
            }
            if let Self::RateLimited { retry_after, .. } = self {
                ext.set("retryAfter", *retry_after);
            }
        })
    }
}

/// A shared error, as a DataLoader hands one to every field that waited on its load:
/// kept whole when this is its last holder, else described in full, so the log keeps
/// the database's own message either way.
impl From<std::sync::Arc<Error>> for Error {
    fn from(err: std::sync::Arc<Error>) -> Self {
        std::sync::Arc::try_unwrap(err).unwrap_or_else(|shared| Self::Internal(anyhow::anyhow!("{shared:?}")))
    }
}

impl From<Error> for async_graphql::Error {
    fn from(err: Error) -> Self {
        err.extend()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_detail() {
        let err: async_graphql::Error = Error::internal("disk on fire at /srv/secret").into();
        assert_eq!(err.message, "Internal server error");
    }

    #[test]
    fn bad_input_names_its_field() {
        let err: async_graphql::Error = Error::bad_input("title", "Title is blank").into();
        let ext = err.extensions.expect("extensions are set");
        assert_eq!(ext.get("code"), Some(&async_graphql::Value::from("BAD_USER_INPUT")));
        assert_eq!(ext.get("field"), Some(&async_graphql::Value::from("title")));
    }

    #[test]
    fn rate_limited_says_when_to_try_again() {
        let err: async_graphql::Error =
            Error::RateLimited { message: "Too many failed logins", retry_after: 42 }.into();
        let ext = err.extensions.expect("extensions are set");
        assert_eq!(ext.get("code"), Some(&async_graphql::Value::from("RATE_LIMITED")));
        assert_eq!(ext.get("retryAfter"), Some(&async_graphql::Value::from(42)));
    }
}
