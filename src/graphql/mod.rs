//! The GraphQL layer: thin. Each resolver parses its input into domain values, calls
//! the domain and maps the result; rules live in `domain`.

pub mod admission;
mod budget;
mod context;
mod direct;
mod documents;
mod error_codes;
mod gate;
mod loader;
mod mutation;
mod query;
mod schema;
mod sign_in;
mod subscription;
mod types;

pub use admission::{Admission, AdmissionLimits, Tally};
pub use budget::{BudgetKey, BudgetStatus, Budgets, rate_limited_error, unix_now};
pub use context::RequestContext;
pub use documents::Documents;
pub use error_codes::{fill_codes, is_request_error, with_code};
pub use gate::{Admitted, Gate, MAX_ERRORS};
pub use loader::UserLoader;
pub use schema::{AppSchema, build_schemas, sdl};
pub use sign_in::PUBLIC_FIELDS;
