use async_graphql::{Context, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::{Result, graphql::context::ContextExt as _};

/// The caller's rate budget, GitHub-style: points per hour, spent by every request
/// before it runs.
#[derive(Debug, SimpleObject)]
pub struct RateLimit {
    /// Points per hour.
    pub limit: u64,
    /// What this request cost: its nodes / 100 (at least 1), plus 5 per mutation
    /// field.
    pub cost: u64,
    /// Points left until `resetAt`.
    pub remaining: u64,
    /// Points spent since the budget was last full, this request included.
    pub used: u64,
    /// When the budget is full again.
    pub reset_at: DateTime<Utc>,
}

#[derive(Debug, Default)]
pub struct RateLimitQuery;

#[Object]
impl RateLimitQuery {
    /// The caller's rate budget after this request; null when rate limits are off.
    /// Needs no sign-in: anonymous callers are counted by address.
    async fn rate_limit(&self, ctx: &Context<'_>) -> Result<Option<RateLimit>> {
        Ok(ctx.request()?.budget.map(|budget| RateLimit {
            limit: budget.limit,
            cost: budget.cost,
            remaining: budget.remaining,
            used: budget.used,
            reset_at: i64::try_from(budget.reset_at)
                .ok()
                .and_then(|seconds| DateTime::from_timestamp(seconds, 0))
                .unwrap_or_else(Utc::now),
        }))
    }
}
