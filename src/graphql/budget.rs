//! Rate budgets, GitHub-style: each caller has a number of points per hour, and every
//! request spends its price (see [`super::admission::Tally::points`]) before it runs.
//!
//! A signed-in caller is counted by user, anyone else by client address (an IPv6
//! address by its /64, which one host usually holds whole). Budgets are kept in
//! memory, per replica: behind a load balancer of n replicas a caller may spend up to
//! n budgets.

use async_graphql::{ServerError, Value};
use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use super::error_codes::with_code;
use crate::{entity::ids::UserId, sync::lock};

/// How long a budget lasts from its first spend.
const WINDOW: Duration = Duration::from_secs(3600);

/// Callers tracked before finished windows are swept out (at most once a minute).
const SWEEP_AT: usize = 50_000;

/// Callers tracked at most: past that, new anonymous addresses share one budget
/// until a sweep makes room, so a spray of addresses cannot grow the map.
const MAX_TRACKED: usize = 200_000;

/// Whose budget a request spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BudgetKey {
    User(UserId),
    Address(IpAddr),
    /// The addresses that came while the map was full.
    Overflow,
}

impl BudgetKey {
    /// The key of an anonymous caller at `address`.
    pub fn address(address: IpAddr) -> Self {
        match address {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::Address(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    Self::Address(IpAddr::V6(prefix.into()))
                }
            },
            v4 => Self::Address(v4),
        }
    }
}

/// A caller's budget after a request was priced: what `Query.rateLimit` and the
/// `X-RateLimit-*` headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetStatus {
    pub limit: u64,
    /// What this request cost.
    pub cost: u64,
    pub used: u64,
    pub remaining: u64,
    /// When the budget is full again, in seconds since the Unix epoch.
    pub reset_at: u64,
}

impl BudgetStatus {
    /// Seconds until the budget is full again, from `now`.
    pub fn retry_after(&self, now: u64) -> u64 {
        self.reset_at.saturating_sub(now).max(1)
    }
}

/// The per-caller budgets of this replica.
#[derive(Debug)]
pub struct Budgets {
    /// Points per window of a signed-in caller; `None` when rate limits are off.
    signed_in: Option<u64>,
    anonymous: Option<u64>,
    spent: Mutex<Spent>,
}

/// Points spent and the window's end, by caller; when finished windows were last swept.
#[derive(Debug, Default)]
struct Spent {
    by_key: HashMap<BudgetKey, (u64, u64)>,
    swept_at: u64,
}

impl Budgets {
    pub fn new(enabled: bool, signed_in: u64, anonymous: u64) -> Self {
        Self {
            signed_in: enabled.then_some(signed_in),
            anonymous: enabled.then_some(anonymous),
            spent: Mutex::default(),
        }
    }

    /// Spends `cost` points of `key`'s budget; `Err` with the unchanged status when
    /// the budget cannot cover it. `None` when rate limits are off.
    pub fn spend(&self, key: BudgetKey, cost: u64) -> Option<Result<BudgetStatus, BudgetStatus>> {
        let limit = match key {
            BudgetKey::User(_) => self.signed_in?,
            BudgetKey::Address(_) | BudgetKey::Overflow => self.anonymous?,
        };
        let now = unix_now();
        let mut spent = lock(&self.spent);
        if spent.by_key.len() >= SWEEP_AT && spent.swept_at + 60 <= now {
            spent.by_key.retain(|_, (_, reset_at)| *reset_at > now);
            spent.swept_at = now;
        }
        let key = match key {
            BudgetKey::Address(_)
                if spent.by_key.len() >= MAX_TRACKED && !spent.by_key.contains_key(&key) =>
            {
                BudgetKey::Overflow
            }
            key => key,
        };
        let entry = spent.by_key.entry(key).or_insert((0, now + WINDOW.as_secs()));
        if entry.1 <= now {
            *entry = (0, now + WINDOW.as_secs());
        }
        let (used, reset_at) = *entry;
        let status =
            |used: u64| BudgetStatus { limit, cost, used, remaining: limit.saturating_sub(used), reset_at };
        if used.saturating_add(cost) > limit {
            return Some(Err(status(used)));
        }
        entry.0 = used + cost;
        Some(Ok(status(entry.0)))
    }
}

/// The `RATE_LIMITED` error of a request its caller's budget cannot cover.
pub fn rate_limited_error(status: &BudgetStatus) -> ServerError {
    let retry_after = status.retry_after(unix_now());
    let message = format!(
        "This request costs {} points and {} of {} are left this hour; try again in {retry_after} s",
        status.cost, status.remaining, status.limit
    );
    let mut error = with_code(ServerError::new(message, None), "RATE_LIMITED");
    error.extensions.get_or_insert_with(Default::default).set("retryAfter", Value::from(retry_after));
    error
}

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_is_spent_until_it_cannot_cover_a_request() {
        let budgets = Budgets::new(true, 10, 5);
        let user = BudgetKey::User(UserId(1));
        assert_eq!(budgets.spend(user, 6).map(|s| s.map(|s| s.remaining)), Some(Ok(4)));
        let refused = budgets.spend(user, 6).expect("limits are on").expect_err("over budget");
        assert_eq!((refused.used, refused.remaining), (6, 4));
        assert!(budgets.spend(user, 4).is_some_and(|s| s.is_ok()));
    }

    #[test]
    fn an_ipv6_host_is_one_caller() {
        let a: IpAddr = "2001:db8::1".parse().expect("an address");
        let b: IpAddr = "2001:db8::ffff:2".parse().expect("an address");
        assert_eq!(BudgetKey::address(a), BudgetKey::address(b));
    }

    #[test]
    fn off_means_no_budget() {
        assert_eq!(Budgets::new(false, 1, 1).spend(BudgetKey::User(UserId(1)), 100), None);
    }
}
