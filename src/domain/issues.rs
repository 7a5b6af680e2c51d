//! Issues: who may change them, what a change does, and how they are listed.

use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, FromQueryResult, IdenStatic as _,
    Iterable as _, JoinType, QueryFilter, QueryResult, QuerySelect, QueryTrait, Select,
    sea_query::{Alias, Condition, Expr, ExprTrait as _, Func, IntoIden as _},
};

use super::{
    IdMatch,
    change::{Announce, Change},
    events::{self, IssueEvent},
    notices, now,
    page::{self, Keyset, Page, PageArgs, Position},
    policy,
    users::{User, contains_pattern},
    values::{IssueDescription, IssueTitle, SearchText},
};
use crate::entity::ids::{IssueId, UserId};
use crate::{
    Error, Result,
    auth::Actor,
    entity::{
        issues::{self, Status},
        users,
    },
};

pub use issues::Model as Issue;

/// A new issue, parsed.
#[derive(Debug)]
pub struct NewIssue {
    pub title: IssueTitle,
    pub description: IssueDescription,
    pub status: Status,
    pub assigned_to: Option<UserId>,
}

/// An edit; `None` leaves a field as it is. `assigned_to: Some(None)` unassigns.
#[derive(Debug, Default)]
pub struct IssueChanges {
    pub title: Option<IssueTitle>,
    pub description: Option<IssueDescription>,
    pub status: Option<Status>,
    pub assigned_to: Option<Option<UserId>>,
}

/// Which issues a list holds; every given criterion must match.
#[derive(Debug, Default, Clone)]
pub struct IssueFilter {
    pub status: Option<Vec<Status>>,
    pub assigned_to: Option<IdMatch<UserId>>,
    pub created_by: Option<IdMatch<UserId>>,
    pub unassigned: Option<bool>,
    pub search: Option<SearchText>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OrderField {
    #[default]
    CreatedAt,
    UpdatedAt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IssueOrder {
    pub field: OrderField,
    pub descending: bool,
}

impl Default for IssueOrder {
    /// Newest first.
    fn default() -> Self {
        Self { field: OrderField::CreatedAt, descending: true }
    }
}

/// Opens an issue created by `actor`; an assignee gets a notice after the delay.
pub async fn create(
    db: &DatabaseConnection,
    announce: Announce<'_>,
    actor: Actor,
    new: NewIssue,
) -> Result<Issue> {
    let mut change = Change::begin(db, announce).await?;
    if let Some(assignee) = new.assigned_to {
        ensure_user_exists(change.txn(), assignee).await?;
    }
    let at = now();
    let issue = issues::ActiveModel {
        title: Set(new.title.into_inner()),
        description: Set(new.description.into_inner()),
        status: Set(new.status),
        created_by: Set(actor.user_id),
        assigned_to: Set(new.assigned_to),
        created_at: Set(at),
        updated_at: Set(at),
        closed_at: Set((new.status == Status::Closed).then_some(at)),
        ..Default::default()
    }
    .insert(change.txn())
    .await?;
    notices::on_assignment_change(&mut change, issue.id, actor.user_id, None, issue.assigned_to).await?;
    change.publish(events::created(actor.user_id, &issue));
    change.commit().await?;
    Ok(issue)
}

/// Applies `changes` to issue `id` (see [`policy::may_edit_issue`]). A new assignee
/// replaces the pending notice of the former one.
pub async fn update(
    db: &DatabaseConnection,
    announce: Announce<'_>,
    actor: Actor,
    id: IssueId,
    changes: IssueChanges,
) -> Result<Issue> {
    let mut change = Change::begin(db, announce).await?;
    let issue = get_editable(change.txn(), actor, id).await?;
    if let Some(Some(assignee)) = changes.assigned_to {
        ensure_user_exists(change.txn(), assignee).await?;
    }
    let at = now();
    let mut model: issues::ActiveModel = issue.clone().into();
    if let Some(title) = changes.title {
        model.title = Set(title.into_inner());
    }
    if let Some(description) = changes.description {
        model.description = Set(description.into_inner());
    }
    if let Some(status) = changes.status {
        model.status = Set(status);
        // closedAt records when the issue last became closed; reopening clears it.
        match (issue.status == Status::Closed, status == Status::Closed) {
            (false, true) => model.closed_at = Set(Some(at)),
            (true, false) => model.closed_at = Set(None),
            _ => {}
        }
    }
    if let Some(assigned_to) = changes.assigned_to {
        model.assigned_to = Set(assigned_to);
    }
    model.updated_at = Set(at);
    let before = issue;
    let issue = model.update(change.txn()).await?;
    notices::on_assignment_change(
        &mut change,
        issue.id,
        actor.user_id,
        before.assigned_to,
        issue.assigned_to,
    )
    .await?;
    change.publish(events::updated(actor.user_id, &before, &issue));
    change.commit().await?;
    Ok(issue)
}

/// Deletes issue `id` (see [`policy::may_edit_issue`]), cancelling its pending notice.
pub async fn delete(
    db: &DatabaseConnection,
    announce: Announce<'_>,
    actor: Actor,
    id: IssueId,
) -> Result<Issue> {
    let mut change = Change::begin(db, announce).await?;
    let issue = get_editable(change.txn(), actor, id).await?;
    notices::cancel_for_issue(&mut change, issue.id).await?;
    issues::Entity::delete_by_id(issue.id).exec(change.txn()).await?;
    change.publish(events::deleted(actor.user_id, &issue));
    change.commit().await?;
    Ok(issue)
}

/// The issue `id`, locked for the change, if the actor may edit it: `NOT_FOUND` or
/// `FORBIDDEN` otherwise.
async fn get_editable(db: &impl ConnectionTrait, actor: Actor, id: IssueId) -> Result<Issue> {
    // FOR UPDATE on PostgreSQL (SQLite's write lock is already held): two edits of one
    // issue apply one after the other, each to what the other left.
    let issue = super::unique(db, issues::Entity::find_by_id(id).lock_exclusive())
        .await?
        .filter(|issue| policy::may_read_issue(actor, issue))
        .ok_or(Error::NotFound("Issue"))?;
    policy::may_edit_issue(actor, &issue)?;
    Ok(issue)
}

async fn ensure_user_exists(db: &impl ConnectionTrait, id: UserId) -> Result<()> {
    match super::users::find(db, id).await? {
        Some(_) => Ok(()),
        None => Err(Error::bad_input("assignedTo", "assignedTo does not name an existing user")),
    }
}

/// The issue with `id`, if any.
pub async fn find(db: &impl ConnectionTrait, id: IssueId) -> Result<Option<Issue>> {
    super::unique(db, issues::Entity::find_by_id(id)).await
}

/// The issues with these ids (any that exist), in no particular order.
pub async fn find_many(db: &impl ConnectionTrait, ids: &[IssueId]) -> Result<Vec<Issue>> {
    Ok(issues::Entity::find().filter(issues::Column::Id.is_in(ids.iter().copied())).all(db).await?)
}

/// Reads back the issues of events that travelled without them (see
/// [`crate::events::Message::shrink`]).
pub async fn fill_in(db: &impl ConnectionTrait, events: &mut [IssueEvent]) -> Result<()> {
    let wanted: Vec<IssueId> =
        events.iter().filter(|event| event.lacks_issue()).map(|event| event.issue_id).collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let found = find_many(db, &wanted).await?;
    for event in events.iter_mut().filter(|event| event.lacks_issue()) {
        event.issue = found.iter().find(|issue| issue.id == event.issue_id).cloned();
    }
    Ok(())
}

/// An issue of a list, with the people it names, read in the same statement.
#[derive(Debug, Clone)]
pub struct ListedIssue {
    pub issue: Issue,
    pub creator: Option<User>,
    pub assignee: Option<User>,
}

/// The table aliases of the people joined to a listed issue, and the column naming each.
const PEOPLE: [(&str, issues::Column); 2] =
    [("creator", issues::Column::CreatedBy), ("assignee", issues::Column::AssignedTo)];

impl FromQueryResult for ListedIssue {
    fn from_query_result(res: &QueryResult, pre: &str) -> Result<Self, DbErr> {
        let person = |alias: &str| -> Result<Option<User>, DbErr> {
            let prefix = format!("{pre}{alias}_");
            match res.try_get::<Option<i64>>(&prefix, "id")? {
                Some(_) => User::from_query_result(res, &prefix).map(Some),
                None => Ok(None),
            }
        };
        let [(creator, _), (assignee, _)] = PEOPLE;
        Ok(Self {
            issue: Issue::from_query_result(res, pre)?,
            creator: person(creator)?,
            assignee: person(assignee)?,
        })
    }
}

/// Joins each issue's creator and assignee, their columns named `<alias>_<column>`.
fn with_people(mut select: Select<issues::Entity>) -> Select<issues::Entity> {
    for (alias, on) in PEOPLE {
        let table = Alias::new(alias).into_iden();
        QueryTrait::query(&mut select).join_as(
            JoinType::LeftJoin,
            users::Entity,
            table.clone(),
            Expr::col((table.clone(), users::Column::Id)).equals((issues::Entity, on)),
        );
        for column in users::Column::iter() {
            select =
                select.column_as(Expr::col((table.clone(), column)), format!("{alias}_{}", column.as_str()));
        }
    }
    select
}

/// A page of the issues matching `filter`, in `order`, each with its people.
pub async fn list(
    db: &impl ConnectionTrait,
    filter: &IssueFilter,
    order: IssueOrder,
    args: PageArgs,
    with_total: bool,
) -> Result<Page<ListedIssue>> {
    let (tag, key) = match order.field {
        OrderField::CreatedAt => ("c", issues::Column::CreatedAt),
        OrderField::UpdatedAt => ("u", issues::Column::UpdatedAt),
    };
    let keyset = Keyset { tag, key: Some(key), id: issues::Column::Id, descending: order.descending };
    let position = move |listed: &ListedIssue| Position {
        key: Some(match order.field {
            OrderField::CreatedAt => listed.issue.created_at,
            OrderField::UpdatedAt => listed.issue.updated_at,
        }),
        id: listed.issue.id.0,
    };
    let select = issues::Entity::find().filter(filter.condition());
    page::fetch(db, select, keyset, args, with_total, with_people, position).await
}

impl IssueFilter {
    fn condition(&self) -> Condition {
        let mut all = Condition::all();
        if let Some(statuses) = &self.status {
            all = all.add(issues::Column::Status.is_in(statuses.iter().copied()));
        }
        for (column, wanted) in
            [(issues::Column::AssignedTo, self.assigned_to), (issues::Column::CreatedBy, self.created_by)]
        {
            match wanted {
                Some(IdMatch::Id(user)) => all = all.add(column.eq(user)),
                Some(IdMatch::Nothing) => all = all.add(Expr::value(false)),
                None => {}
            }
        }
        match self.unassigned {
            Some(true) => all = all.add(issues::Column::AssignedTo.is_null()),
            Some(false) => all = all.add(issues::Column::AssignedTo.is_not_null()),
            None => {}
        }
        if let Some(pattern) = self.search.as_ref().map(|search| contains_pattern(search.as_str())) {
            all = all.add(
                Condition::any()
                    .add(Expr::expr(Func::lower(Expr::col(issues::Column::Title))).like(pattern.clone()))
                    .add(Expr::expr(Func::lower(Expr::col(issues::Column::Description))).like(pattern)),
            );
        }
        all
    }
}
