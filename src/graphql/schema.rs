use std::sync::Arc;

use crate::app::AppState;

use async_graphql::Schema;

use super::{
    error_codes::ErrorCodes, mutation::MutationRoot, query::QueryRoot, sign_in::SignedIn,
    subscription::SubscriptionRoot,
};

/// The schema; every root field passes the sign-in gate (`sign_in.rs`).
pub type AppSchema = Schema<SignedIn<QueryRoot>, SignedIn<MutationRoot>, SignedIn<SubscriptionRoot>>;

fn builder()
-> async_graphql::SchemaBuilder<SignedIn<QueryRoot>, SignedIn<MutationRoot>, SignedIn<SubscriptionRoot>> {
    Schema::build(SignedIn::default(), SignedIn::default(), SignedIn(SubscriptionRoot))
}

/// The schemas serving `state`: one for HTTP, whose documents come parsed and whose
/// error codes are filled in by the HTTP layer, and one for WebSocket connections,
/// with the [`ErrorCodes`] extension doing that. (Any extension slows every field's
/// resolution, which a subscription's few events can afford and a list page cannot.)
///
/// Depth and cost are not limited here: admission (`admission.rs`) does it before
/// async-graphql sees the document, whose own depth limit counts introspection's
/// `ofType` chain and whose complexity ignores page sizes. Without `introspection`,
/// `__schema`/`__type` are refused and unknown fields get no "Did you mean" hints.
pub fn build_schemas(state: Arc<AppState>, introspection: bool) -> (AppSchema, AppSchema) {
    let build = || {
        let builder = builder().data(state.clone());
        if introspection { builder } else { builder.disable_introspection().disable_suggestions() }
    };
    (build().finish(), build().extension(ErrorCodes).finish())
}

/// The SDL of the schema, as `schema.graphql` holds it.
pub fn sdl() -> String {
    builder().finish().sdl()
}
