use async_graphql::{Context, ID, Object};

use crate::{
    Result, domain,
    graphql::{
        context::ContextExt as _,
        types::{self, Issue, IssueConnection, IssueFilter, IssueOrder, lookup, page_args},
    },
};

#[derive(Debug, Default)]
pub struct IssueQuery;

#[Object]
impl IssueQuery {
    /// The issue with this id; null when there is none.
    async fn issue(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Issue>> {
        let Some(id) = lookup(&id) else { return Ok(None) };
        Ok(domain::issues::find(ctx.db()?, id).await?.map(Issue::from))
    }

    /// Issues matching `filter`, newest first unless `orderBy` says otherwise.
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
        let filter = filter.map(TryInto::try_into).transpose()?.unwrap_or_default();
        let order = order_by.map(Into::into).unwrap_or_default();
        types::list_issues(ctx, filter, order, page_args(first, after, last, before)).await
    }
}
