//! Query roots, one per domain, merged into `QueryRoot`.

mod issues;
mod rate_limit;
mod users;

#[derive(Debug, Default, async_graphql::MergedObject)]
#[graphql(name = "Query")]
pub struct QueryRoot(users::UserQuery, issues::IssueQuery, rate_limit::RateLimitQuery);
