use async_graphql::{Context, Enum, ID, InputObject, Object};
use chrono::{DateTime, Utc};

use super::{Issue, Project, User, filter_id, issue::load_user, to_id};
use crate::{
    Error, Result,
    domain::events::{self, EventFilter, EventKind},
    graphql::context::ContextExt as _,
};

/// What happened to an issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(remote = "EventKind")]
pub enum IssueEventKind {
    /// It was opened.
    Created,
    /// Its title or description changed, or its status changed without closing or
    /// reopening it.
    Updated,
    /// It was given an assignee, or a new one.
    Assigned,
    /// Its assignee was taken away.
    Unassigned,
    Closed,
    Reopened,
    /// It went to the trash, or was deleted for good; `issue` is null.
    Deleted,
    /// It came back from the trash.
    Restored,
}

/// A change to an issue, as committed. One mutation can yield several, in this
/// order: `CREATED`, `UPDATED`, `ASSIGNED` or `UNASSIGNED`, then `CLOSED` or
/// `REOPENED`; `DELETED` and `RESTORED` come alone.
#[derive(Debug, Clone)]
pub struct IssueEvent(pub events::IssueEvent);

#[Object]
impl IssueEvent {
    async fn kind(&self) -> IssueEventKind {
        self.0.kind.into()
    }

    /// The issue just after the change; null after `DELETED`.
    async fn issue(&self) -> Option<Issue> {
        self.0.issue.clone().map(Issue::from)
    }

    async fn issue_id(&self) -> ID {
        to_id(self.0.issue_id)
    }

    /// The issue's project.
    async fn project(&self, ctx: &Context<'_>) -> Result<Project> {
        ctx.request()?
            .loaders()
            .projects
            .load_one(self.0.project_id)
            .await
            .map_err(Error::from)?
            .map(Project)
            .ok_or_else(|| Error::internal("an event's project is missing"))
    }

    /// Who made the change.
    async fn actor(&self, ctx: &Context<'_>) -> Result<User> {
        load_user(ctx, self.0.actor_id).await?.ok_or_else(|| Error::internal("event actor is missing"))
    }

    /// When the change was made.
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
}

/// Narrows `issueEvents`; every criterion given must match.
#[derive(Debug, Default, InputObject)]
pub struct IssueEventFilter {
    /// Only this issue's events.
    pub issue_id: Option<ID>,
    /// `true`: issues assigned to the caller before or after the change; `false`: others.
    pub assigned_to_me: Option<bool>,
    /// `true`: issues the caller created; `false`: others.
    pub created_by_me: Option<bool>,
}

impl TryFrom<IssueEventFilter> for EventFilter {
    type Error = Error;

    fn try_from(filter: IssueEventFilter) -> Result<Self> {
        let issue_id = filter.issue_id.as_ref().map(filter_id);
        Ok(Self {
            issue_id,
            assigned_to_viewer: filter.assigned_to_me,
            created_by_viewer: filter.created_by_me,
        })
    }
}
