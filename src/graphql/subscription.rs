//! The subscription root, served over WebSocket at `/graphql/ws`.
//!
//! A subscription reads the event bus, which carries every committed issue event,
//! and shows its subscriber those its filter wants, of the projects they may read,
//! until the connection's access token expires.

use std::{collections::VecDeque, pin::Pin, sync::Arc};

use async_graphql::{Context, Subscription};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt as _, stream};
use tokio::sync::broadcast::error::RecvError;

use super::{
    context::ContextExt as _,
    types::{IssueEvent, IssueEventFilter},
};
use crate::{
    Error, Result,
    app::AppState,
    auth::Actor,
    domain::{
        self,
        events::{self as domain_events, EventFilter},
    },
    entity::ids::ProjectId,
    events::Receiver,
};

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
        let viewer = ctx.actor()?;
        let filter = filter.unwrap_or_default().try_into()?;
        let state = ctx.state()?;
        let feed = Feed {
            receiver: state.events.subscribe(),
            state: state.clone(),
            filter,
            viewer,
            expiry: ctx.request()?.session_ends.map(expiry),
            ready: VecDeque::new(),
        };
        let events = stream::unfold(Some(feed), |feed| async move {
            let mut feed = feed?;
            match feed.next().await {
                Ok(Some(event)) => Some((Ok(event), Some(feed))),
                Ok(None) => None,
                Err(err) => Some((Err(err), None)),
            }
        });
        Ok(events.map(|event| event.map(IssueEvent).map_err(Into::into)))
    }
}

/// A timer that fires when the token valid until `until` expires.
fn expiry(until: DateTime<Utc>) -> Pin<Box<tokio::time::Sleep>> {
    let left = (until - Utc::now()).to_std().unwrap_or_default();
    Box::pin(tokio::time::sleep(left))
}

/// One subscriber's view of the bus.
struct Feed {
    receiver: Receiver<domain_events::IssueEvent>,
    state: Arc<AppState>,
    filter: EventFilter,
    viewer: Actor,
    expiry: Option<Pin<Box<tokio::time::Sleep>>>,
    ready: VecDeque<domain_events::IssueEvent>,
}

impl Feed {
    /// Whether the subscriber may read `project` now: an event of a project they
    /// may not read never reaches them. Asked per event, so a change of membership
    /// or visibility applies from the next event on.
    async fn may_read(&self, project: ProjectId) -> Result<bool> {
        let reference = domain::projects::ProjectRef::Id(project);
        Ok(domain::projects::readable(&self.state.db, self.viewer, &reference).await?.is_some())
    }

    /// The next wanted event; `None` when the bus is gone.
    async fn next(&mut self) -> Result<Option<domain_events::IssueEvent>> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Ok(Some(event));
            }
            let expired = async {
                match &mut self.expiry {
                    Some(expiry) => expiry.await,
                    None => std::future::pending().await,
                }
            };
            let batch = tokio::select! {
                () = expired => {
                    return Err(Error::Unauthenticated("The access token expired; subscribe again with a new one"));
                }
                received = self.receiver.recv() => match received {
                    Ok(batch) => batch,
                    Err(RecvError::Lagged(missed)) => return Err(Error::Lagged { missed }),
                    Err(RecvError::Closed) => return Ok(None),
                },
            };
            let mut wanted = Vec::new();
            for event in batch.iter().filter(|event| self.filter.matches(event, self.viewer.user_id)) {
                if self.may_read(event.project_id).await? {
                    wanted.push(event.clone());
                }
            }
            if wanted.iter().any(domain_events::IssueEvent::lacks_issue) {
                domain::issues::fill_in(&self.state.db, &mut wanted).await?;
            }
            self.ready.extend(wanted);
        }
    }
}
