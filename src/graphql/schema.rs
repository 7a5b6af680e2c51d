use std::sync::Arc;

use async_graphql::{
    Schema,
    extensions::apollo_persisted_queries::{ApolloPersistedQueries, LruCacheStorage},
};

use super::{
    ServiceState, error_codes::ErrorCodes, mutation::MutationRoot, query::QueryRoot,
    subscription::SubscriptionRoot,
};

pub type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Bounds on what one request may ask for, and the persisted-query cache.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub depth: usize,
    pub complexity: usize,
    /// Parsed documents kept for automatic persisted queries.
    pub persisted_queries: usize,
}

/// The schema, serving `state`.
pub fn build_schema(state: Arc<ServiceState>, limits: Limits) -> AppSchema {
    Schema::build(QueryRoot::default(), MutationRoot::default(), SubscriptionRoot)
        .data(state)
        .extension(ErrorCodes)
        .extension(ApolloPersistedQueries::new(LruCacheStorage::new(limits.persisted_queries.max(1))))
        .limit_depth(limits.depth)
        .limit_complexity(limits.complexity)
        .finish()
}

/// The SDL of the schema, as `schema.graphql` holds it.
pub fn sdl() -> String {
    Schema::build(QueryRoot::default(), MutationRoot::default(), SubscriptionRoot).finish().sdl()
}
