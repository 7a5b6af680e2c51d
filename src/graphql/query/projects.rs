use async_graphql::{Context, ID, InputObject, Object};

use super::issues::bounded_key;
use crate::{
    Error, Result,
    domain::{
        self,
        projects::{ProjectFilter as DomainFilter, ProjectRef},
        values::{InvitationToken, SearchText},
    },
    graphql::{
        context::ContextExt as _,
        types::{Invitation, Project, ProjectConnection, lookup, page_args, wants_total_count},
    },
};

/// Narrows `projects(...)`; every criterion given must match.
#[derive(Debug, Default, InputObject)]
pub struct ProjectFilter {
    /// Matches key or name, without regard to case; at most 256 characters.
    pub search: Option<String>,
    /// `true`: only projects the caller is a member of; `false`: only the others.
    pub viewer_is_member: Option<bool>,
    /// Archived projects are left out unless this is `true`.
    pub include_archived: Option<bool>,
}

#[derive(Debug, Default)]
pub struct ProjectQuery;

#[Object]
impl ProjectQuery {
    /// The project with this id, or this key: pass one of the two. Null when there is
    /// none the caller may read.
    async fn project(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
        key: Option<String>,
    ) -> Result<Option<Project>> {
        let reference = match (id, key) {
            (Some(id), None) => match lookup(&id) {
                Some(id) => ProjectRef::Id(id),
                None => return Ok(None),
            },
            (None, Some(key)) => ProjectRef::Key(bounded_key(key)?),
            _ => return Err(Error::bad_input("id", "Pass either id or key")),
        };
        let standing = domain::projects::readable(ctx.db()?, ctx.actor()?, &reference).await?;
        Ok(standing.map(|standing| Project(standing.project)))
    }

    /// The pending invitation a link's token names: the project and who invited, for
    /// an accept page. Null when the token is unknown, expired or used. Needs no
    /// sign-in.
    async fn invitation(&self, ctx: &Context<'_>, token: String) -> Result<Option<Invitation>> {
        let token = InvitationToken::parse(token)?;
        Ok(domain::invitations::pending(ctx.db()?, &token).await?.map(Invitation))
    }

    /// The projects the caller may read, oldest first.
    async fn projects(
        &self,
        ctx: &Context<'_>,
        filter: Option<ProjectFilter>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<ProjectConnection> {
        let filter = filter.unwrap_or_default();
        let filter = DomainFilter {
            search: filter.search.map(|search| SearchText::parse(search, "search")).transpose()?.flatten(),
            viewer_is_member: filter.viewer_is_member,
            include_archived: filter.include_archived.unwrap_or(false),
        };
        let page = domain::projects::list(
            ctx.db()?,
            ctx.actor()?,
            &filter,
            page_args(first, after, last, before),
            wants_total_count(ctx),
        )
        .await?;
        Ok(ProjectConnection::from_page(page, Project))
    }
}
