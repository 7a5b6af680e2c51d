use async_graphql::{Context, Enum, ID, Object};
use chrono::{DateTime, Utc};

use super::{
    Invitation, InvitationConnection, IssueConnection, IssueFilter, IssueOrder, ProjectMemberConnection,
    User, load_user, page_args, to_id, wants_total_count,
};
use crate::{
    Error, Result,
    domain::{self, IdMatch, issues::IssueFilter as DomainFilter, policy::Standing},
    entity::{project_members::ProjectRole as Role, projects::Visibility as DomainVisibility},
    graphql::context::ContextExt as _,
};

/// Who may read a project and its issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(remote = "DomainVisibility")]
pub enum Visibility {
    /// Every signed-in user.
    Public,
    /// Its members only (and instance admins).
    Private,
}

/// What a member may do in a project; each role may do what the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(remote = "Role")]
pub enum ProjectRole {
    /// Reads the project's issues.
    Viewer,
    /// Also files issues, edits and deletes their own, and can be assigned.
    Member,
    /// Also edits the project, manages its members, archives and restores it.
    Admin,
}

/// Where issues live: a team's work, with members in roles.
#[derive(Debug, Clone)]
pub struct Project(pub domain::projects::Project);

impl From<domain::projects::Project> for Project {
    fn from(project: domain::projects::Project) -> Self {
        Self(project)
    }
}

#[Object]
impl Project {
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }

    /// 2 to 10 upper-case letters and digits; its issues' keys start with it
    /// (`WEB-42`). Fixed once the project exists.
    async fn key(&self) -> &str {
        &self.0.key
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn description(&self) -> &str {
        &self.0.description
    }

    async fn visibility(&self) -> Visibility {
        self.0.visibility.into()
    }

    /// Who made it; null for the default project, or once their account is gone.
    async fn created_by(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        match self.0.created_by {
            Some(id) => load_user(ctx, id).await,
            None => Ok(None),
        }
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// When it was archived; an archived project is read-only. Null while active.
    async fn archived_at(&self) -> Option<DateTime<Utc>> {
        self.0.archived_at
    }

    /// The caller's role here; null when they are not a member (or not signed in).
    /// Instance admins act as ADMIN of every project.
    async fn viewer_role(&self, ctx: &Context<'_>) -> Result<Option<ProjectRole>> {
        if ctx.actor().is_err() {
            return Ok(None);
        }
        Ok(standing(ctx, self).await?.role.map(Into::into))
    }

    /// The members, longest-standing first. `FORBIDDEN` to a caller who may not read
    /// the project (one who holds an invitation to it).
    async fn members(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<ProjectMemberConnection> {
        if !domain::policy::may_read_project(&standing(ctx, self).await?) {
            return Err(Error::Forbidden("Only the project's readers may see its members"));
        }
        let page = domain::projects::members(
            ctx.db()?,
            self.0.id,
            page_args(first, after, last, before),
            wants_total_count(ctx),
        )
        .await?;
        Ok(ProjectMemberConnection::from_page(page, ProjectMember))
    }

    /// The project's issues matching `filter`, newest first unless `orderBy` says
    /// otherwise.
    async fn issues(
        &self,
        ctx: &Context<'_>,
        filter: Option<IssueFilter>,
        order_by: Option<IssueOrder>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<IssueConnection> {
        let mut filter: DomainFilter = filter.map(TryInto::try_into).transpose()?.unwrap_or_default();
        filter.project = match filter.project {
            Some(IdMatch::Id(other)) if other != self.0.id => Some(IdMatch::Nothing),
            Some(IdMatch::Nothing) => Some(IdMatch::Nothing),
            _ => Some(IdMatch::Id(self.0.id)),
        };
        let order = order_by.map(Into::into).unwrap_or_default();
        super::list_issues(ctx, filter, order, page_args(first, after, last, before)).await
    }

    /// Its invitations, pending, expired and accepted, newest first (ADMIN only: `FORBIDDEN`
    /// to anyone else).
    async fn invitations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<InvitationConnection> {
        let page = domain::invitations::list(
            ctx.db()?,
            ctx.actor()?,
            self.0.clone(),
            page_args(first, after, last, before),
            wants_total_count(ctx),
        )
        .await?;
        Ok(InvitationConnection::from_page(page, Invitation))
    }
}

/// The caller's standing in `project`.
async fn standing(ctx: &Context<'_>, project: &Project) -> Result<Standing> {
    domain::projects::standing(ctx.db()?, ctx.actor()?, project.0.clone()).await
}

/// Someone's membership of a project.
#[derive(Debug, Clone)]
pub struct ProjectMember(pub domain::projects::Member);

#[Object]
impl ProjectMember {
    async fn user(&self, ctx: &Context<'_>) -> Result<User> {
        load_user(ctx, self.0.user_id).await?.ok_or_else(|| Error::internal("a member's account is missing"))
    }

    async fn role(&self) -> ProjectRole {
        self.0.role.into()
    }

    async fn added_at(&self) -> DateTime<Utc> {
        self.0.added_at
    }
}
