use async_graphql::{Context, ID, Object};

use crate::{
    Error, Result,
    domain::{self, issues::IssueRef, page::PageArgs},
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
        let Some(reference) = issue_reference(id, key)? else { return Ok(None) };
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
        let listing = IssueListing::read(filter, order_by, page_args(first, after, last, before))?;
        types::list_issues(ctx, listing.filter, listing.order, listing.page).await
    }
}

/// The issue `issue(id, key)` names; `None` (the query answers null) for an id that
/// cannot name one.
pub(in crate::graphql) fn issue_reference(id: Option<ID>, key: Option<String>) -> Result<Option<IssueRef>> {
    match (id, key) {
        (Some(id), None) => Ok(lookup(&id).map(IssueRef::Id)),
        (None, Some(key)) => Ok(Some(IssueRef::Key(bounded_key(key)?))),
        _ => Err(Error::bad_input("id", "Pass either id or key")),
    }
}

/// What `issues(...)` lists, read from its arguments.
pub(in crate::graphql) struct IssueListing {
    pub filter: domain::issues::IssueFilter,
    pub order: domain::issues::IssueOrder,
    pub page: PageArgs,
}

impl IssueListing {
    pub fn read(filter: Option<IssueFilter>, order_by: Option<IssueOrder>, page: PageArgs) -> Result<Self> {
        Ok(Self {
            filter: filter.map(TryInto::try_into).transpose()?.unwrap_or_default(),
            order: order_by.map(Into::into).unwrap_or_default(),
            page,
        })
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
