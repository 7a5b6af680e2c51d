//! Authentication: who the caller is. What they may do is decided in `domain`, and
//! so is login throttling (`domain::logins`), which counts in the database.

pub mod password;
mod remembered;
pub mod token;
mod turns;

pub use password::PasswordHasher;
pub use token::{AccessToken, TokenKeys, VerifiedToken};

use crate::entity::ids::UserId;

/// The authenticated caller of a request, as proven by a valid access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub user_id: UserId,
}

/// What the HTTP edge learned from the `Authorization` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// No `Authorization` header.
    Anonymous,
    /// A header was sent but did not hold a valid token.
    Rejected,
    /// A valid token.
    User(Actor),
}

impl Caller {
    /// The actor, or `UNAUTHENTICATED` for anyone else.
    pub fn actor(self) -> crate::Result<Actor> {
        match self {
            Self::User(actor) => Ok(actor),
            Self::Anonymous => Err(crate::Error::Unauthenticated(
                "Authentication required: send Authorization: Bearer <accessToken>",
            )),
            Self::Rejected => Err(crate::Error::Unauthenticated("The access token is invalid or expired")),
        }
    }
}
