use std::sync::Arc;

use async_graphql::Schema;

use super::{
    ServiceState, error_codes::ErrorCodes, mutation::MutationRoot, query::QueryRoot,
    subscription::SubscriptionRoot,
};

pub type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Bounds on what one request may ask for.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub depth: usize,
    pub complexity: usize,
}

/// The schemas serving `state`: one for HTTP, whose documents come parsed and whose
/// error codes are filled in by the HTTP layer, and one for WebSocket connections,
/// with the [`ErrorCodes`] extension doing that. (Any extension slows every field's
/// resolution, which a subscription's few events can afford and a list page cannot.)
pub fn build_schemas(state: Arc<ServiceState>, limits: Limits) -> (AppSchema, AppSchema) {
    let build = || {
        Schema::build(QueryRoot::default(), MutationRoot::default(), SubscriptionRoot)
            .data(state.clone())
            .limit_depth(limits.depth)
            .limit_complexity(limits.complexity)
    };
    (build().finish(), build().extension(ErrorCodes).finish())
}

/// The SDL of the schema, as `schema.graphql` holds it.
pub fn sdl() -> String {
    Schema::build(QueryRoot::default(), MutationRoot::default(), SubscriptionRoot).finish().sdl()
}
