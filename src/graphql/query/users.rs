use async_graphql::{Context, ID, Object};

use crate::{
    Result, domain,
    graphql::{
        context::ContextExt as _,
        types::{User, UserConnection, list_users, lookup, page_args},
    },
};

#[derive(Debug, Default)]
pub struct UserQuery;

#[Object]
impl UserQuery {
    /// The caller.
    async fn me(&self, ctx: &Context<'_>) -> Result<User> {
        Ok(User::new(domain::policy::account_of(ctx.db()?, ctx.actor()?).await?))
    }

    /// The user with this id; null when there is none.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<Option<User>> {
        let Some(id) = lookup(&id) else { return Ok(None) };
        Ok(domain::users::find(ctx.db()?, id).await?.map(User::new))
    }

    /// The team, oldest account first. `search` matches username, first or last name,
    /// or an email the caller may see (`User.email`), without regard to case (at most
    /// 256 characters).
    async fn users(
        &self,
        ctx: &Context<'_>,
        search: Option<String>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<UserConnection> {
        list_users(ctx, search, page_args(first, after, last, before)).await
    }
}
