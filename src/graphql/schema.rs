use std::sync::Arc;

use async_graphql::Schema;

use super::{
    ServiceState, error_codes::ErrorCodes, mutation::MutationRoot, query::QueryRoot,
    subscription::SubscriptionRoot,
};

pub type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// The schemas serving `state`: one for HTTP, whose documents come parsed and whose
/// error codes are filled in by the HTTP layer, and one for WebSocket connections,
/// with the [`ErrorCodes`] extension doing that. (Any extension slows every field's
/// resolution, which a subscription's few events can afford and a list page cannot.)
///
/// Depth and cost are not limited here: admission (`admission.rs`) does it before
/// async-graphql sees the document, whose own depth limit counts introspection's
/// `ofType` chain and whose complexity ignores page sizes. Without `introspection`,
/// `__schema`/`__type` are refused and unknown fields get no "Did you mean" hints.
pub fn build_schemas(state: Arc<ServiceState>, introspection: bool) -> (AppSchema, AppSchema) {
    let build = || {
        let builder = Schema::build(QueryRoot::default(), MutationRoot::default(), SubscriptionRoot)
            .data(state.clone());
        if introspection { builder } else { builder.disable_introspection().disable_suggestions() }
    };
    (build().finish(), build().extension(ErrorCodes).finish())
}

/// The SDL of the schema, as `schema.graphql` holds it.
pub fn sdl() -> String {
    Schema::build(QueryRoot::default(), MutationRoot::default(), SubscriptionRoot).finish().sdl()
}
