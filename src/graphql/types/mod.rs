//! GraphQL object, input and enum types. They wrap domain values rather than being
//! the entity models, so the API and the tables can change apart.

mod connection;
mod event;
mod issue;
mod payload;
mod user;

pub use connection::*;
pub use event::*;
pub use issue::*;
pub use payload::*;
pub use user::*;

use async_graphql::ID;

use crate::domain::parse_id;

/// The API id of a row.
pub fn to_id(id: i64) -> ID {
    ID(id.to_string())
}

/// The row an API id names; `None` for an id that cannot name one.
pub fn from_id(id: &ID) -> Option<i64> {
    parse_id(id.as_str())
}
