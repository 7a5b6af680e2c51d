use std::sync::Arc;

use async_graphql::{Context, Enum, ID, InputObject, Object};
use chrono::{DateTime, Utc};

use super::{IssueConnection, Project, User, filter_id, to_id, wants_total_count};
use crate::entity::ids::{ProjectId, UserId};
use crate::{
    Error, Result,
    domain::{
        self,
        issues::{IssueFilter as DomainFilter, IssueOrder as DomainOrder, ListedIssue, OrderField},
        page::PageArgs,
        policy,
        users::Profile,
        values::{self, SearchText},
    },
    entity::issues::{Kind, Status},
    graphql::context::ContextExt as _,
};

/// Where an issue stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(remote = "Status")]
pub enum IssueStatus {
    Open,
    InProgress,
    Closed,
}

/// What sort of work an issue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(remote = "Kind")]
pub enum IssueKind {
    Bug,
    Feature,
    Enhancement,
    Task,
}

#[derive(Debug, Clone)]
pub struct Issue {
    issue: domain::issues::Issue,
    /// Its creator and assignee, when they were read with it (a list's page);
    /// otherwise they are looked up through the request's user loader.
    creator: Option<Arc<Profile>>,
    assignee: Option<Arc<Profile>>,
}

impl From<domain::issues::Issue> for Issue {
    fn from(issue: domain::issues::Issue) -> Self {
        Self { issue, creator: None, assignee: None }
    }
}

impl From<ListedIssue> for Issue {
    fn from(listed: ListedIssue) -> Self {
        Self {
            issue: listed.issue,
            creator: listed.creator.map(Arc::new),
            assignee: listed.assignee.map(Arc::new),
        }
    }
}

/// A piece of work to be done.
#[Object]
impl Issue {
    async fn id(&self) -> ID {
        to_id(self.issue.id)
    }

    /// The project it belongs to.
    async fn project(&self, ctx: &Context<'_>) -> Result<Project> {
        Ok(Project(self.project_row(ctx).await?))
    }

    /// Its number in the project, from 1; never given to another issue.
    async fn number(&self) -> i64 {
        self.issue.number
    }

    /// The project's key and the issue's number: `WEB-42`.
    async fn key(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(domain::issues::key_of(&self.project_row(ctx).await?, &self.issue))
    }

    async fn kind(&self) -> IssueKind {
        self.issue.kind.into()
    }

    async fn title(&self) -> &str {
        &self.issue.title
    }

    async fn description(&self) -> &str {
        &self.issue.description
    }

    async fn status(&self) -> IssueStatus {
        self.issue.status.into()
    }

    /// Who opened the issue; only they may edit or delete it.
    async fn created_by(&self, ctx: &Context<'_>) -> Result<User> {
        if let Some(creator) = &self.creator {
            return Ok(User::shared(Arc::clone(creator)));
        }
        load_user(ctx, self.issue.created_by)
            .await?
            .ok_or_else(|| Error::internal("issue creator is missing"))
    }

    /// Who is to work on it, if anyone.
    async fn assigned_to(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        match (&self.assignee, self.issue.assigned_to) {
            (Some(assignee), _) => Ok(Some(User::shared(Arc::clone(assignee)))),
            (None, Some(id)) => load_user(ctx, id).await,
            (None, None) => Ok(None),
        }
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.issue.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.issue.updated_at
    }

    /// When the issue was last closed; null while it is open.
    async fn closed_at(&self) -> Option<DateTime<Utc>> {
        self.issue.closed_at
    }

    /// When it went to the trash; null unless it is there (`restoreIssue` brings it
    /// back within the trash's retention).
    async fn deleted_at(&self) -> Option<DateTime<Utc>> {
        self.issue.deleted_at
    }

    /// The assignment email waiting to go out, if any. Only the issue's creator and
    /// assignee see it; for anyone else it is null.
    async fn pending_notice(&self, ctx: &Context<'_>) -> Result<Option<PendingNotice>> {
        if !policy::may_see_pending_notice(ctx.actor()?, &self.issue) {
            return Ok(None);
        }
        let notice =
            ctx.request()?.loaders().pending_notices.load_one(self.issue.id).await.map_err(Error::from)?;
        Ok(notice.map(|notice| PendingNotice { due_at: notice.due_at, recipient_id: notice.recipient_id }))
    }
}

impl Issue {
    async fn project_row(&self, ctx: &Context<'_>) -> Result<domain::projects::Project> {
        ctx.request()?
            .loaders()
            .projects
            .load_one(self.issue.project_id)
            .await
            .map_err(Error::from)?
            .ok_or_else(|| Error::internal("an issue's project is missing"))
    }
}

/// An email scheduled to be sent.
#[derive(Debug, Clone)]
pub struct PendingNotice {
    due_at: DateTime<Utc>,
    recipient_id: UserId,
}

#[Object]
impl PendingNotice {
    /// When it goes out.
    async fn due_at(&self) -> DateTime<Utc> {
        self.due_at
    }

    /// Who gets it.
    async fn recipient(&self, ctx: &Context<'_>) -> Result<User> {
        load_user(ctx, self.recipient_id).await?.ok_or_else(|| Error::internal("notice recipient is missing"))
    }
}

pub(super) async fn load_user(ctx: &Context<'_>, id: UserId) -> Result<Option<User>> {
    let user = ctx.request()?.loaders().users.load_one(id).await.map_err(Error::from)?;
    Ok(user.map(User::new))
}

/// Narrows `issues(...)`; every criterion given must match.
#[derive(Debug, Default, InputObject)]
pub struct IssueFilter {
    /// In this project.
    pub project_id: Option<ID>,
    /// Any of these kinds (at most 10 entries).
    pub kind: Option<Vec<IssueKind>>,
    /// `true`: the issues in the trash the caller may restore, instead of the
    /// others.
    pub trashed: Option<bool>,
    /// Any of these statuses (at most 10 entries).
    pub status: Option<Vec<IssueStatus>>,
    /// Assigned to this user.
    pub assigned_to: Option<ID>,
    /// Created by this user.
    pub created_by: Option<ID>,
    /// `true`: only issues with no assignee; `false`: only assigned ones.
    pub unassigned: Option<bool>,
    /// Matches title or description, without regard to case; at most 256 characters.
    pub search: Option<String>,
}

impl TryFrom<IssueFilter> for DomainFilter {
    type Error = Error;

    fn try_from(filter: IssueFilter) -> Result<Self> {
        let user = |id: Option<ID>| id.as_ref().map(filter_id);
        Ok(Self {
            project: filter.project_id.as_ref().map(filter_id::<ProjectId>),
            kind: filter
                .kind
                .map(|kind| {
                    Ok::<_, Error>(values::bounded_list(kind, "kind")?.into_iter().map(Into::into).collect())
                })
                .transpose()?,
            trashed: filter.trashed.unwrap_or(false),
            status: statuses(filter.status)?,
            assigned_to: user(filter.assigned_to),
            created_by: user(filter.created_by),
            unassigned: filter.unassigned,
            search: filter.search.map(|search| SearchText::parse(search, "search")).transpose()?.flatten(),
        })
    }
}

/// A `status: [IssueStatus!]` filter: at most [`MAX_LIST_LEN`](values::MAX_LIST_LEN) entries.
pub(super) fn statuses(status: Option<Vec<IssueStatus>>) -> Result<Option<Vec<Status>>> {
    status
        .map(|status| Ok(values::bounded_list(status, "status")?.into_iter().map(Into::into).collect()))
        .transpose()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum IssueOrderField {
    CreatedAt,
    UpdatedAt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum OrderDirection {
    Asc,
    Desc,
}

/// The order of `issues(...)`; ties are broken by id, so pages are stable.
#[derive(Debug, Clone, Copy, InputObject)]
pub struct IssueOrder {
    pub field: IssueOrderField,
    pub direction: OrderDirection,
}

impl From<IssueOrder> for DomainOrder {
    fn from(order: IssueOrder) -> Self {
        Self {
            field: match order.field {
                IssueOrderField::CreatedAt => OrderField::CreatedAt,
                IssueOrderField::UpdatedAt => OrderField::UpdatedAt,
            },
            descending: order.direction == OrderDirection::Desc,
        }
    }
}

/// Lists issues for every `IssueConnection` field; each issue's people come with it.
pub async fn list_issues(
    ctx: &Context<'_>,
    filter: DomainFilter,
    order: DomainOrder,
    args: PageArgs,
) -> Result<IssueConnection> {
    let page =
        domain::issues::list(ctx.db()?, ctx.actor()?, &filter, order, args, wants_total_count(ctx)).await?;
    Ok(IssueConnection::from_page(page, Issue::from))
}
