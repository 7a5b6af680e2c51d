//! The GraphQL layer: thin. Each resolver parses its input into domain values, calls
//! the domain and maps the result; rules live in `domain`.

mod context;
mod documents;
mod error_codes;
mod loader;
mod mutation;
mod query;
mod schema;
mod subscription;
mod types;

pub use context::{RequestContext, ServiceState};
pub use documents::{Documents, operation_type};
pub use error_codes::{fill_codes, is_request_error, with_code};
pub use loader::UserLoader;
pub use schema::{AppSchema, Limits, build_schemas, sdl};
