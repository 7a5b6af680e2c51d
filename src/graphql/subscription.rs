//! The subscription root, served over WebSocket at `/graphql/ws`.

use async_graphql::{Context, Subscription};
use futures_util::{Stream, StreamExt as _};

use super::{
    context::ContextExt as _,
    types::{IssueEvent, IssueEventFilter},
};
use crate::Result;

#[derive(Debug, Default)]
pub struct SubscriptionRoot;

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// Changes to issues as they commit, on any replica. No filter means every
    /// event. Ends with `UNAUTHENTICATED` when the connection's access token
    /// expires, and with `SUBSCRIPTION_LAGGED` if this subscriber falls too far
    /// behind.
    async fn issue_events(
        &self,
        ctx: &Context<'_>,
        filter: Option<IssueEventFilter>,
    ) -> Result<impl Stream<Item = async_graphql::Result<IssueEvent>> + use<>> {
        let actor = ctx.actor()?;
        let filter = filter.unwrap_or_default().try_into()?;
        let until = ctx.request()?.session_ends;
        Ok(ctx
            .state()?
            .events
            .feed(filter, actor.user_id, until)
            .map(|event| event.map(IssueEvent).map_err(Into::into)))
    }
}
