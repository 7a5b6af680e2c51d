//! Query roots, one per domain, merged into `QueryRoot`.

pub(super) mod issues;
mod projects;
mod rate_limit;
mod users;

#[derive(Debug, Default, async_graphql::MergedObject)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    users::UserQuery,
    projects::ProjectQuery,
    issues::IssueQuery,
    rate_limit::RateLimitQuery,
);
