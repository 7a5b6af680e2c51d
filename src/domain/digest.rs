//! The periodic digest: which period a run belongs to, and what it lists.

use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};

use super::projects::Project;
use crate::{
    Result,
    entity::{
        ids::UserId,
        issues::{self, Status},
    },
};

/// The statuses in the order a digest lists them: open work first.
pub const STATUS_ORDER: [Status; 3] = [Status::Open, Status::InProgress, Status::Closed];

/// The period of an interval schedule that `at` falls in, the same on every replica:
/// periods are aligned to the Unix epoch, so replicas started at different times
/// agree on them.
pub fn period_of(at: DateTime<Utc>, every: Duration) -> String {
    let every = every.as_millis().max(1000) as i64;
    format!("every{}s:{}", every / 1000, at.timestamp_millis().div_euclid(every))
}

/// When the first interval period after `at` starts (the boundary [`period_of`]
/// changes at).
pub fn next_period_start(at: DateTime<Utc>, every: Duration) -> DateTime<Utc> {
    let every = every.as_millis().max(1000) as i64;
    let next = (at.timestamp_millis().div_euclid(every) + 1).saturating_mul(every);
    DateTime::from_timestamp_millis(next).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The period of a cron schedule: the scheduled tick itself, to the second.
pub fn period_of_tick(tick: DateTime<Utc>) -> String {
    format!("cron:{}", tick.timestamp())
}

/// One project's part of a digest: the recipient's issues there, by status.
#[derive(Debug, Clone)]
pub struct ProjectDigest {
    pub project: Project,
    /// In [`STATUS_ORDER`], newest first within a status; statuses with no issue are
    /// left out.
    pub groups: Vec<(Status, Vec<issues::Model>)>,
}

/// The issues assigned to each of `user_ids`, by project (in key order), then by
/// status; users with nothing assigned are left out. Only issues out of the trash
/// that the assignee may read are listed.
pub async fn assigned_by_project(
    db: &impl ConnectionTrait,
    user_ids: &[UserId],
) -> Result<HashMap<UserId, Vec<ProjectDigest>>> {
    let assigned = issues::Entity::find()
        .filter(issues::Column::AssignedTo.is_in(user_ids.iter().copied()))
        .filter(issues::Column::DeletedAt.is_null())
        .filter(super::policy::readable_by_assignee())
        .order_by_desc(issues::Column::CreatedAt)
        .order_by_desc(issues::Column::Id)
        .all(db)
        .await?;
    let mut projects = super::projects::find_many(db, assigned.iter().map(|issue| issue.project_id)).await?;
    projects.sort_by(|a, b| a.key.cmp(&b.key));
    let mut by_user: HashMap<UserId, Vec<issues::Model>> = HashMap::new();
    for issue in assigned {
        if let Some(user) = issue.assigned_to {
            by_user.entry(user).or_default().push(issue);
        }
    }
    Ok(by_user
        .into_iter()
        .map(|(user, issues)| {
            let digest = projects
                .iter()
                .filter_map(|project| {
                    let groups: Vec<_> = STATUS_ORDER
                        .into_iter()
                        .map(|status| {
                            let group = issues
                                .iter()
                                .filter(|i| i.status == status && i.project_id == project.id)
                                .cloned()
                                .collect::<Vec<_>>();
                            (status, group)
                        })
                        .filter(|(_, group)| !group.is_empty())
                        .collect();
                    (!groups.is_empty()).then(|| ProjectDigest { project: project.clone(), groups })
                })
                .collect();
            (user, digest)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_agree_on_the_period_whenever_they_run_in_it() {
        let every = Duration::from_secs(10);
        let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let a = period_of(start + chrono::Duration::milliseconds(1), every);
        let b = period_of(start + chrono::Duration::milliseconds(9_999), every);
        let c = period_of(start + chrono::Duration::seconds(10), every);
        assert_eq!(a, b);
        assert_ne!(b, c);
        assert_ne!(
            period_of(start, Duration::from_secs(20)),
            period_of(start, every),
            "a new interval, new periods"
        );
    }

    #[test]
    fn the_next_period_starts_where_the_period_changes() {
        let every = Duration::from_secs(10);
        let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        for offset in [0, 1, 9_999] {
            let at = start + chrono::Duration::milliseconds(offset);
            let next = next_period_start(at, every);
            assert_eq!(next, start + chrono::Duration::seconds(10), "from {at}");
            assert_ne!(period_of(next, every), period_of(at, every));
            assert_eq!(period_of(next - chrono::Duration::milliseconds(1), every), period_of(at, every));
        }
    }
}
