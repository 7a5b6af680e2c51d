use std::sync::Arc;

use async_graphql::{EmptySubscription, Schema};

use super::{ServiceState, error_codes::ErrorCodes, mutation::MutationRoot, query::QueryRoot};

pub type AppSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// Bounds on what one request may ask for.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub depth: usize,
    pub complexity: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { depth: 12, complexity: 5000 }
    }
}

/// The schema, serving `state`.
pub fn build_schema(state: Arc<ServiceState>, limits: Limits) -> AppSchema {
    Schema::build(QueryRoot::default(), MutationRoot::default(), EmptySubscription)
        .data(state)
        .extension(ErrorCodes)
        .limit_depth(limits.depth)
        .limit_complexity(limits.complexity)
        .finish()
}

/// The SDL of the schema, as `schema.graphql` holds it.
pub fn sdl() -> String {
    Schema::build(QueryRoot::default(), MutationRoot::default(), EmptySubscription).finish().sdl()
}
