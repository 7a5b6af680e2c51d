use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use super::{IssueConnection, IssueStatus, UserConnection, page_args, to_id, wants_total_count};
use crate::domain::IdMatch;
use crate::{
    Result,
    domain::{self, issues::IssueFilter, values::SearchText},
    graphql::context::ContextExt as _,
};

#[derive(Debug, Clone)]
pub struct User(pub domain::users::User);

/// A member of the team. No field exposes a password or its hash.
#[Object]
impl User {
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }

    async fn username(&self) -> &str {
        &self.0.username
    }

    async fn email(&self) -> &str {
        &self.0.email
    }

    async fn first_name(&self) -> &str {
        &self.0.first_name
    }

    async fn last_name(&self) -> &str {
        &self.0.last_name
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// Issues assigned to this user, newest first.
    async fn assigned_issues(
        &self,
        ctx: &Context<'_>,
        status: Option<Vec<IssueStatus>>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<IssueConnection> {
        let filter = IssueFilter { assigned_to: Some(IdMatch::Id(self.0.id)), ..filter_by_status(status)? };
        super::list_issues(ctx, filter, Default::default(), page_args(first, after, last, before)).await
    }

    /// Issues this user created, newest first.
    async fn created_issues(
        &self,
        ctx: &Context<'_>,
        status: Option<Vec<IssueStatus>>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<IssueConnection> {
        let filter = IssueFilter { created_by: Some(IdMatch::Id(self.0.id)), ..filter_by_status(status)? };
        super::list_issues(ctx, filter, Default::default(), page_args(first, after, last, before)).await
    }
}

fn filter_by_status(status: Option<Vec<IssueStatus>>) -> Result<IssueFilter> {
    Ok(IssueFilter { status: super::issue::statuses(status)?, ..Default::default() })
}

/// Lists users for `users(...)`.
pub async fn list_users(
    ctx: &Context<'_>,
    search: Option<String>,
    args: domain::page::PageArgs,
) -> Result<UserConnection> {
    let search = search.map(|search| SearchText::parse(search, "search")).transpose()?.flatten();
    let page = domain::users::list(ctx.db()?, search.as_ref(), args, wants_total_count(ctx)).await?;
    Ok(UserConnection::from_page(page, User))
}
