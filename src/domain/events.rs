//! Issue events: what a committed change to an issue tells its subscribers, and
//! which subscribers it is for.
//!
//! One mutation can yield several events. They come in a fixed order:
//! `CREATED`, `UPDATED`, `ASSIGNED` or `UNASSIGNED`, then `CLOSED` or `REOPENED`;
//! `DELETED` and `RESTORED` come alone. So an update that reassigns and closes yields `ASSIGNED`
//! then `CLOSED`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::IdMatch;
use crate::entity::{
    ids::{IssueId, ProjectId, UserId},
    issues::{Model as Issue, Status},
};

/// What happened; the GraphQL `IssueEventKind` documents each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    Created,
    Updated,
    Assigned,
    Unassigned,
    Closed,
    Reopened,
    Deleted,
    Restored,
}

/// One thing that happened to an issue, as committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueEvent {
    pub kind: EventKind,
    pub issue_id: IssueId,
    /// The issue's project: who may see the event is who may read the project.
    pub project_id: ProjectId,
    /// Who made the change.
    pub actor_id: UserId,
    pub at: DateTime<Utc>,
    pub created_by: UserId,
    /// The assignee before and after the change (the same unless it was reassigned).
    pub assignee_before: Option<UserId>,
    pub assignee_after: Option<UserId>,
    /// The issue just after the change; `None` once it is deleted, and when it was too
    /// large to carry between replicas (the receiver then reads it again).
    pub issue: Option<Issue>,
}

impl crate::events::Message for IssueEvent {
    /// The issue is what makes an event large; a receiver reads it again
    /// ([`super::issues::fill_in`]).
    fn shrink(&mut self) {
        self.issue = None;
    }
}

impl IssueEvent {
    /// Whether the event should carry its issue but travelled without it.
    pub fn lacks_issue(&self) -> bool {
        self.issue.is_none() && self.kind != EventKind::Deleted
    }

    fn new(kind: EventKind, actor_id: UserId, before: Option<&Issue>, after: Option<&Issue>) -> Option<Self> {
        let any = after.or(before)?;
        Some(Self {
            kind,
            issue_id: any.id,
            project_id: any.project_id,
            actor_id,
            at: after.map_or_else(super::now, |issue| issue.updated_at),
            created_by: any.created_by,
            assignee_before: before.and_then(|issue| issue.assigned_to),
            assignee_after: after.and_then(|issue| issue.assigned_to),
            issue: after.cloned(),
        })
    }
}

/// The events of opening `issue`: `CREATED`, and `ASSIGNED` when it has an assignee.
pub fn created(actor_id: UserId, issue: &Issue) -> Vec<IssueEvent> {
    let mut kinds = vec![EventKind::Created];
    if issue.assigned_to.is_some() {
        kinds.push(EventKind::Assigned);
    }
    events(actor_id, None, Some(issue), kinds)
}

/// The events of changing `before` into `after`, in the module's order; none when
/// nothing a client sees changed.
pub fn updated(actor_id: UserId, before: &Issue, after: &Issue) -> Vec<IssueEvent> {
    let was_closed = before.status == Status::Closed;
    let is_closed = after.status == Status::Closed;
    let mut kinds = Vec::new();
    let edited =
        before.title != after.title || before.description != after.description || before.kind != after.kind;
    if edited || (before.status != after.status && was_closed == is_closed) {
        kinds.push(EventKind::Updated);
    }
    if before.assigned_to != after.assigned_to {
        kinds.push(if after.assigned_to.is_some() { EventKind::Assigned } else { EventKind::Unassigned });
    }
    match (was_closed, is_closed) {
        (false, true) => kinds.push(EventKind::Closed),
        (true, false) => kinds.push(EventKind::Reopened),
        _ => {}
    }
    events(actor_id, Some(before), Some(after), kinds)
}

/// The event of deleting `issue`.
pub fn deleted(actor_id: UserId, issue: &Issue) -> Vec<IssueEvent> {
    events(actor_id, Some(issue), None, vec![EventKind::Deleted])
}

/// The event of bringing `issue` back from the trash.
pub fn restored(actor_id: UserId, issue: &Issue) -> Vec<IssueEvent> {
    events(actor_id, None, Some(issue), vec![EventKind::Restored])
}

fn events(
    actor_id: UserId,
    before: Option<&Issue>,
    after: Option<&Issue>,
    kinds: Vec<EventKind>,
) -> Vec<IssueEvent> {
    kinds.into_iter().filter_map(|kind| IssueEvent::new(kind, actor_id, before, after)).collect()
}

/// Which events a subscriber wants; every criterion given must match, and none
/// given means every event (of the projects the subscriber may read: the
/// subscription checks that).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EventFilter {
    pub issue_id: Option<IdMatch<IssueId>>,
    /// `true`: the viewer was the assignee before the change or is after it;
    /// `false`: neither.
    pub assigned_to_viewer: Option<bool>,
    /// `true`: the viewer created the issue; `false`: someone else did.
    pub created_by_viewer: Option<bool>,
}

impl EventFilter {
    pub fn matches(&self, event: &IssueEvent, viewer: UserId) -> bool {
        let assigned = event.assignee_before == Some(viewer) || event.assignee_after == Some(viewer);
        self.issue_id.is_none_or(|wanted| wanted.is(event.issue_id))
            && self.assigned_to_viewer.is_none_or(|wanted| wanted == assigned)
            && self.created_by_viewer.is_none_or(|wanted| wanted == (event.created_by == viewer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(assigned_to: Option<UserId>, status: Status) -> Issue {
        let at = super::super::now();
        Issue {
            id: IssueId(7),
            project_id: ProjectId(1),
            number: 7,
            kind: crate::entity::issues::Kind::Task,
            title: "Crash on save".to_owned(),
            description: String::new(),
            status,
            created_by: UserId(1),
            assigned_to,
            created_at: at,
            updated_at: at,
            closed_at: None,
            deleted_at: None,
        }
    }

    fn kinds(events: &[IssueEvent]) -> Vec<EventKind> {
        events.iter().map(|event| event.kind).collect()
    }

    #[test]
    fn opening_an_assigned_issue_is_created_then_assigned() {
        use EventKind::*;
        assert_eq!(kinds(&created(UserId(1), &issue(Some(UserId(2)), Status::Open))), [Created, Assigned]);
        assert_eq!(kinds(&created(UserId(1), &issue(None, Status::Open))), [Created]);
    }

    #[test]
    fn an_update_yields_its_kinds_in_order() {
        use EventKind::*;
        let before = issue(Some(UserId(2)), Status::Open);
        let mut after = issue(Some(UserId(3)), Status::Closed);
        after.title = "Crash on save (again)".to_owned();
        assert_eq!(kinds(&updated(UserId(1), &before, &after)), [Updated, Assigned, Closed]);
        assert_eq!(
            kinds(&updated(UserId(1), &after, &issue(None, Status::InProgress))),
            [Updated, Unassigned, Reopened]
        );
        assert_eq!(
            kinds(&updated(UserId(1), &before, &issue(Some(UserId(2)), Status::InProgress))),
            [Updated]
        );
        assert_eq!(kinds(&updated(UserId(1), &before, &before)), []);
        assert_eq!(kinds(&deleted(UserId(1), &before)), [Deleted]);
    }

    #[test]
    fn assigned_to_me_matches_the_former_and_the_new_assignee() {
        let reassigned =
            &updated(UserId(1), &issue(Some(UserId(2)), Status::Open), &issue(Some(UserId(3)), Status::Open))
                [0];
        let mine = EventFilter { assigned_to_viewer: Some(true), ..Default::default() };
        assert!(
            mine.matches(reassigned, UserId(2))
                && mine.matches(reassigned, UserId(3))
                && !mine.matches(reassigned, UserId(4))
        );
        let not_mine = EventFilter { assigned_to_viewer: Some(false), ..Default::default() };
        assert!(!not_mine.matches(reassigned, UserId(2)) && not_mine.matches(reassigned, UserId(4)));
        let created_by_me = EventFilter {
            created_by_viewer: Some(true),
            issue_id: Some(IdMatch::Id(IssueId(7))),
            ..Default::default()
        };
        assert!(
            created_by_me.matches(reassigned, UserId(1)) && !created_by_me.matches(reassigned, UserId(2))
        );
        assert!(EventFilter::default().matches(reassigned, UserId(99)));
    }
}
