use async_graphql::{Context, ID, Object};

use crate::{
    Error, Result,
    domain::{self, issues::IssueRef},
    graphql::{
        context::ContextExt as _,
        types::{self, Issue, IssueConnection, IssueFilter, IssueOrder, lookup, page_args},
    },
};

#[derive(Debug, Default)]
pub struct IssueQuery;

#[Object]
impl IssueQuery {
    /// The issue with this id, or this key (`WEB-42`): pass one of the two. Null
    /// when there is none the caller may read.
    async fn issue(&self, ctx: &Context<'_>, id: Option<ID>, key: Option<String>) -> Result<Option<Issue>> {
        let reference = match (id, key) {
            (Some(id), None) => match lookup(&id) {
                Some(id) => IssueRef::Id(id),
                None => return Ok(None),
            },
            (None, Some(key)) => IssueRef::Key(bounded_key(key)?),
            _ => return Err(Error::bad_input("id", "Pass either id or key")),
        };
        Ok(domain::issues::readable(ctx.db()?, ctx.actor()?, &reference).await?.map(Issue::from))
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

/// A key argument, bounded before it reaches a query: longer than any key could be
/// is `BAD_USER_INPUT`.
pub(super) fn bounded_key(key: String) -> Result<String> {
    // A project key (10) and a number (19 digits) with the dash between.
    if key.len() > 30 {
        return Err(Error::bad_input("key", "key is too long to name anything"));
    }
    Ok(key)
}
