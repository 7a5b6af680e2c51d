//! GraphQL object, input and enum types. They wrap domain values rather than being
//! the entity models, so the API and the tables can change apart.

mod connection;
mod event;
mod invitation;
mod issue;
mod payload;
mod project;
mod user;

pub use connection::*;
pub use event::*;
pub use invitation::*;
pub use issue::*;
pub use payload::*;
pub use project::*;
pub use user::*;

use async_graphql::ID;

use crate::{Error, Result, domain::IdMatch, entity::ids::RowId};

// An id the client sends is parsed once, here, into a typed id. One policy for an id
// that is malformed (spelled in a way no row id is) or names no row:
// - an argument naming the one object a query returns: the query answers null;
// - the object a mutation acts on: `NOT_FOUND`;
// - an input field that must name an existing object: `BAD_USER_INPUT` with `field`;
// - a filter: it matches nothing.

/// The API id of a row.
pub fn to_id(id: impl std::fmt::Display) -> ID {
    ID(id.to_string())
}

/// The row a query's id argument names; `None` (the query answers null) when none.
pub fn lookup<T: RowId>(id: &ID) -> Option<T> {
    T::parse(id.as_str())
}

/// The object a mutation acts on, named `what` in the error: `NOT_FOUND` when the id
/// cannot name one (the domain answers the same for an unknown one).
pub fn target<T: RowId>(id: &ID, what: &'static str) -> Result<T> {
    T::parse(id.as_str()).ok_or(Error::NotFound(what))
}

/// An input `field` that must name an existing object: `BAD_USER_INPUT` when the id
/// cannot name one (the domain answers the same for an unknown one).
pub fn reference<T: RowId>(id: &ID, field: &'static str, what: &str) -> Result<T> {
    T::parse(id.as_str())
        .ok_or_else(|| Error::bad_input(field, format!("{field} does not name an existing {what}")))
}

/// A filter's id: one that cannot name a row matches nothing.
pub fn filter_id<T: RowId>(id: &ID) -> IdMatch<T> {
    T::parse(id.as_str()).map_or(IdMatch::Nothing, IdMatch::Id)
}
