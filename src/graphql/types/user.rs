use std::sync::Arc;

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use super::{IssueConnection, IssueStatus, UserConnection, page_args, to_id, wants_total_count};
use crate::domain::IdMatch;
use crate::{
    Error, Result,
    domain::{self, issues::IssueFilter, users::Profile, values::SearchText},
    graphql::context::ContextExt as _,
};

#[derive(Debug, Clone)]
pub struct User {
    account: Arc<Profile>,
    /// Whether the caller is this account whatever the request's token says: the
    /// payload of a new session is the caller's own.
    own: bool,
}

impl User {
    pub fn new(account: impl Into<Profile>) -> Self {
        Self::shared(Arc::new(account.into()))
    }

    /// A profile already shared, such as a listed issue's creator.
    pub fn shared(account: Arc<Profile>) -> Self {
        Self { account, own: false }
    }

    /// The account a session was just started for, shown to its holder.
    pub fn own(account: impl Into<Profile>) -> Self {
        Self { account: Arc::new(account.into()), own: true }
    }
}

/// A member of the team. No field exposes a password or its hash.
#[Object]
impl User {
    async fn id(&self) -> ID {
        to_id(self.account.id)
    }

    async fn username(&self) -> &str {
        &self.account.username
    }

    /// Shown to the user themself, to instance admins and to those who share a
    /// project with them; null to anyone else.
    async fn email(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        let shown = self.own
            || match ctx.request()?.caller.actor() {
                Ok(viewer) if viewer.user_id == self.account.id => true,
                Ok(_) => ctx
                    .request()?
                    .loaders()
                    .emails
                    .load_one(self.account.id)
                    .await
                    .map_err(Error::from)?
                    .is_some(),
                Err(_) => false,
            };
        Ok(shown.then_some(self.account.email.as_str()))
    }

    async fn first_name(&self) -> &str {
        &self.account.first_name
    }

    async fn last_name(&self) -> &str {
        &self.account.last_name
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.account.created_at
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
        let filter =
            IssueFilter { assigned_to: Some(IdMatch::Id(self.account.id)), ..filter_by_status(status)? };
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
        let filter =
            IssueFilter { created_by: Some(IdMatch::Id(self.account.id)), ..filter_by_status(status)? };
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
    let page =
        domain::users::list(ctx.db()?, ctx.actor()?, search.as_ref(), args, wants_total_count(ctx)).await?;
    Ok(UserConnection::from_page(page, User::new))
}
