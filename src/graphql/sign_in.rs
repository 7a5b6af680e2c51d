//! The sign-in gate: every root field needs a signed-in caller, except those on
//! [`PUBLIC_FIELDS`].
//!
//! The gate wraps the three roots ([`SignedIn`]), so it runs once per root field,
//! before the field's resolver; nested fields are reached only through a root field
//! and need no check of their own. A resolver that forgets to ask for the caller
//! therefore still serves no one anonymous. `__typename`, `__schema` and `__type`
//! never reach the gate: async-graphql answers them before the root's fields.

use std::borrow::Cow;

use async_graphql::{
    ContainerType, Context, ContextSelectionSet, ObjectType, OutputType, Positioned, Response, ServerResult,
    SubscriptionType, Value,
    futures_util::{Stream, stream},
    parser::types::Field,
    registry::Registry,
};

use super::context::ContextExt as _;

/// The root fields anyone may call: signing up, in and out, the caller's rate budget
/// (which an anonymous client has too), and reading and accepting an invitation
/// (whose link is the credential).
pub const PUBLIC_FIELDS: &[&str] =
    &["register", "login", "refreshToken", "logout", "rateLimit", "invitation", "acceptInvitation"];

/// A root type whose fields pass the sign-in gate; its GraphQL name and fields are
/// those of `T`.
#[derive(Debug, Default)]
pub struct SignedIn<T>(pub T);

/// `UNAUTHENTICATED` for a root field off the public list when nobody is signed in.
fn admit(ctx: &Context<'_>) -> ServerResult<()> {
    if PUBLIC_FIELDS.contains(&ctx.item.node.name.node.as_str()) {
        return Ok(());
    }
    ctx.actor()
        .map(drop)
        .map_err(|err| ctx.set_error_path(async_graphql::Error::from(err).into_server_error(ctx.item.pos)))
}

impl<T: OutputType> OutputType for SignedIn<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(&self, ctx: &ContextSelectionSet<'_>, field: &Positioned<Field>) -> ServerResult<Value> {
        self.0.resolve(ctx, field).await
    }
}

impl<T: ContainerType> ContainerType for SignedIn<T> {
    async fn resolve_field(&self, ctx: &Context<'_>) -> ServerResult<Option<Value>> {
        admit(ctx)?;
        self.0.resolve_field(ctx).await
    }
}

impl<T: ObjectType> ObjectType for SignedIn<T> {}

impl<T: SubscriptionType> SubscriptionType for SignedIn<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    fn create_field_stream<'a>(
        &'a self,
        ctx: &'a Context<'_>,
    ) -> Option<std::pin::Pin<Box<dyn Stream<Item = Response> + Send + 'a>>> {
        match admit(ctx) {
            Ok(()) => self.0.create_field_stream(ctx),
            Err(err) => Some(Box::pin(stream::once(async move { Response::from_errors(vec![err]) }))),
        }
    }
}
