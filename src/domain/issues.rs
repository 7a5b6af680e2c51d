//! Issues: who may change them, what a change does, and how they are listed.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, FromQueryResult,
    IdenStatic as _, Iterable, JoinType, QueryFilter, QueryResult, QuerySelect, QueryTrait, Select, Value,
    sea_query::{Alias, Condition, Expr, ExprTrait as _, Func, IntoIden as _, Query},
};

use super::{
    IdMatch, Template,
    change::{Announce, Change},
    events::{self, IssueEvent},
    notices, now,
    page::{self, Keyset, Listing, Page, PageArgs, Position, Shaped, Shapes},
    policy,
    projects::{self, IssueStanding},
    users::Profile,
    values::{IssueDescription, IssueTitle, SearchText},
};
use crate::entity::ids::{IssueId, ProjectId, UserId};
use crate::{
    Error, Result,
    auth::Actor,
    entity::{
        issues::{self, Kind, Status},
        projects as project_table, users,
    },
};

pub use issues::Model as Issue;

/// An issue's key: its project's key and its number (`WEB-42`).
pub fn key_of(project: &super::projects::Project, issue: &Issue) -> String {
    format!("{}-{}", project.key, issue.number)
}

/// A new issue, parsed.
#[derive(Debug)]
pub struct NewIssue {
    /// The default project when `None`.
    pub project: Option<ProjectId>,
    pub kind: Kind,
    pub title: IssueTitle,
    pub description: IssueDescription,
    pub status: Status,
    pub assigned_to: Option<UserId>,
}

/// An edit; `None` leaves a field as it is. `assigned_to: Some(None)` unassigns.
#[derive(Debug, Default)]
pub struct IssueChanges {
    pub kind: Option<Kind>,
    pub title: Option<IssueTitle>,
    pub description: Option<IssueDescription>,
    pub status: Option<Status>,
    pub assigned_to: Option<Option<UserId>>,
}

/// Which issues a list holds; every given criterion must match.
#[derive(Debug, Default, Clone)]
pub struct IssueFilter {
    pub project: Option<IdMatch<ProjectId>>,
    pub kind: Option<Vec<Kind>>,
    /// `true`: the issues in the trash the caller may restore, instead of the others.
    pub trashed: bool,
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

/// Opens an issue created by `actor` in its project (the default one, `default`,
/// unless it names one); an assignee gets a notice after the delay.
pub async fn create(
    db: &DatabaseConnection,
    announce: Announce<'_>,
    actor: Actor,
    default: ProjectId,
    new: NewIssue,
) -> Result<Issue> {
    let project = new.project.unwrap_or(default);
    // On PostgreSQL the number is taken before the transaction (see `take_number`),
    // once the checks have passed: outside a transaction they read what they would
    // read inside one, as PostgreSQL reads committed rows either way.
    let taken = if numbers_apart(db) {
        may_create(db, actor, project, new.assigned_to).await?;
        Some(take_number(db, project).await?)
    } else {
        None
    };
    let mut change = Change::begin(db, announce).await?;
    let number = match taken {
        Some(number) => number,
        None => {
            may_create(change.txn(), actor, project, new.assigned_to).await?;
            take_number(change.txn(), project).await?
        }
    };
    let at = now();
    let issue = issues::ActiveModel {
        project_id: Set(project),
        number: Set(number),
        kind: Set(new.kind),
        title: Set(new.title.into_inner()),
        description: Set(new.description.into_inner()),
        status: Set(new.status),
        created_by: Set(actor.user_id),
        assigned_to: Set(new.assigned_to),
        created_at: Set(at),
        updated_at: Set(at),
        closed_at: Set((new.status == Status::Closed).then_some(at)),
        deleted_at: Set(None),
        ..Default::default()
    }
    .insert(change.txn())
    .await?;
    notices::on_assignment_change(&mut change, issue.id, actor.user_id, (None, issue.assigned_to), false)
        .await?;
    change.publish(events::created(actor.user_id, &issue));
    change.commit().await?;
    Ok(issue)
}

/// Whether `actor` may open an issue in `project`, assigned to `assignee`.
async fn may_create(
    db: &impl ConnectionTrait,
    actor: Actor,
    project: ProjectId,
    assignee: Option<UserId>,
) -> Result<()> {
    let (standing, assignee) = projects::readable_with_assignee(db, actor, project, assignee)
        .await?
        .ok_or_else(|| Error::bad_input("projectId", "projectId does not name an existing project"))?;
    policy::may_create_issue(&standing)?;
    assignee.ensure_assignable()
}

/// Whether a new issue takes its number in a statement of its own, before its
/// transaction: on PostgreSQL, where creates run side by side. Taken inside, the
/// number would hold its project's counter row locked until the issue commits, and
/// every create in the project would wait for the one before it to commit (a third
/// of the writes a hand-written transaction managed). A create that fails after
/// taking its number leaves that number unused; none is ever given twice. On SQLite,
/// which writes one transaction at a time anyway, the number is taken inside it.
fn numbers_apart(db: &DatabaseConnection) -> bool {
    db.get_database_backend() == DbBackend::Postgres
}

/// The next number of `project`'s issues, taken: the counter moves on, so a number
/// is never given twice, nor again after its issue is gone.
async fn take_number(db: &impl ConnectionTrait, project: ProjectId) -> Result<i64> {
    let statement = Query::update()
        .table(project_table::Entity)
        .value(project_table::Column::NextNumber, Expr::col(project_table::Column::NextNumber).add(1))
        .and_where(project_table::Column::Id.eq(project))
        .returning(Query::returning().column(project_table::Column::NextNumber))
        .to_owned();
    let row =
        db.query_one(&statement).await?.ok_or_else(|| Error::internal("the issue's project vanished"))?;
    // The counter as it was before this issue took its number.
    Ok(row.try_get::<i64>("", "next_number")? - 1)
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
    let found = get_editable(change.txn(), actor, id, Trash::Excluded, changes.assigned_to.flatten()).await?;
    found.assignee.ensure_assignable()?;
    let IssueStanding { issue, notice_pending, .. } = found;
    let at = now();
    let mut model: issues::ActiveModel = issue.clone().into();
    if let Some(kind) = changes.kind {
        model.kind = Set(kind);
    }
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
        (before.assigned_to, issue.assigned_to),
        notice_pending,
    )
    .await?;
    change.publish(events::updated(actor.user_id, &before, &issue));
    change.commit().await?;
    Ok(issue)
}

/// Deletes issue `id` (see [`policy::may_edit_issue`]): to the trash, or for good
/// (`permanently`, which also empties it from the trash). Its pending notice is
/// cancelled; `DELETED` is published when it leaves the lists.
pub async fn delete(
    db: &DatabaseConnection,
    announce: Announce<'_>,
    actor: Actor,
    id: IssueId,
    permanently: bool,
) -> Result<Issue> {
    let mut change = Change::begin(db, announce).await?;
    let trash = if permanently { Trash::Included } else { Trash::Excluded };
    let IssueStanding { issue, notice_pending, .. } =
        get_editable(change.txn(), actor, id, trash, None).await?;
    if notice_pending {
        notices::cancel_for_issue(&change, issue.id).await?;
    }
    if permanently {
        issues::Entity::delete_by_id(issue.id).exec(change.txn()).await?;
    } else {
        let mut model: issues::ActiveModel = issue.clone().into();
        model.deleted_at = Set(Some(now()));
        model.update(change.txn()).await?;
    }
    if issue.deleted_at.is_none() {
        change.publish(events::deleted(actor.user_id, &issue));
    }
    change.commit().await?;
    Ok(issue)
}

/// Brings issue `id` back from the trash (see [`policy::may_restore_issue`]), if it
/// went there less than `retention` ago; `RESTORED` is published. It comes back as
/// it was, without the assignment notice its deletion cancelled.
pub async fn restore(
    db: &DatabaseConnection,
    announce: Announce<'_>,
    actor: Actor,
    id: IssueId,
    retention: std::time::Duration,
) -> Result<Issue> {
    let mut change = Change::begin(db, announce).await?;
    let IssueStanding { issue, standing, .. } = get_readable(change.txn(), actor, id, None).await?;
    let Some(deleted_at) = issue.deleted_at else {
        return Err(Error::conflict("id", "The issue is not in the trash"));
    };
    if in_trash_until(deleted_at, retention) <= now() {
        return Err(Error::NotFound("Issue"));
    }
    policy::may_restore_issue(actor, &standing, &issue)?;
    let mut model: issues::ActiveModel = issue.into();
    model.deleted_at = Set(None);
    let issue = model.update(change.txn()).await?;
    change.publish(events::restored(actor.user_id, &issue));
    change.commit().await?;
    Ok(issue)
}

/// When an issue deleted at `deleted_at` leaves the trash for good.
fn in_trash_until(deleted_at: DateTime<Utc>, retention: std::time::Duration) -> DateTime<Utc> {
    deleted_at + chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX)
}

/// Deletes for good the issues that went to the trash `retention` or longer before
/// `at`; returns how many.
pub async fn purge_trash(
    db: &DatabaseConnection,
    at: DateTime<Utc>,
    retention: std::time::Duration,
) -> Result<u64> {
    let Some(cutoff) =
        chrono::Duration::from_std(retention).ok().and_then(|retention| at.checked_sub_signed(retention))
    else {
        return Ok(0);
    };
    let _turn = super::write_turn(db).await;
    let purged = issues::Entity::delete_many().filter(issues::Column::DeletedAt.lte(cutoff)).exec(db).await?;
    Ok(purged.rows_affected)
}

/// Whether [`get_editable`] finds issues in the trash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trash {
    Excluded,
    Included,
}

/// The issue `id`, locked for the change, with the caller's standing in its
/// project (and the roles there of the new `assignee` the change names, if any),
/// if they may read it: `NOT_FOUND` otherwise.
async fn get_readable(
    db: &impl ConnectionTrait,
    actor: Actor,
    id: IssueId,
    assignee: Option<UserId>,
) -> Result<IssueStanding> {
    let found =
        projects::standing_with_issue(db, actor, id, assignee).await?.ok_or(Error::NotFound("Issue"))?;
    if !policy::may_read_project(&found.standing) {
        return Err(Error::NotFound("Issue"));
    }
    Ok(found)
}

/// Like [`get_readable`], if the actor may also edit it (`FORBIDDEN` otherwise); an
/// issue in the trash is `NOT_FOUND` unless `trash` includes it.
async fn get_editable(
    db: &impl ConnectionTrait,
    actor: Actor,
    id: IssueId,
    trash: Trash,
    assignee: Option<UserId>,
) -> Result<IssueStanding> {
    let found = get_readable(db, actor, id, assignee).await?;
    if found.issue.deleted_at.is_some() && trash == Trash::Excluded {
        return Err(Error::NotFound("Issue"));
    }
    policy::may_edit_issue(actor, &found.standing, &found.issue)?;
    Ok(found)
}

/// An issue named by id or by key (`WEB-42`).
#[derive(Debug, Clone)]
pub enum IssueRef {
    Id(IssueId),
    Key(String),
}

/// The issue `reference` names, if the caller may read it and it is not in the
/// trash (`issues(filter: { trashed: true })` lists those, for whoever may restore
/// them): a deleted issue is gone, as it always was, for a client that knows
/// nothing of the trash.
pub async fn readable(db: &DatabaseConnection, actor: Actor, reference: &IssueRef) -> Result<Option<Issue>> {
    let statement = match reference {
        IssueRef::Id(id) => {
            let build =
                || readable_select(actor).filter(issues::Column::Id.eq(*id)).build(db.get_database_backend());
            READABLE_BY_ID.statement(db.get_database_backend(), build, readable_by_id_values(actor, *id))
        }
        IssueRef::Key(key) => {
            let Some((project, number)) = parse_key(key) else { return Ok(None) };
            readable_select(actor)
                .filter(Expr::col((Alias::new(PROJECT), project_table::Column::Key)).eq(project))
                .filter(issues::Column::Number.eq(number))
                .build(db.get_database_backend())
        }
    };
    Ok(super::fetch::<Issue>(db, statement).await?.pop())
}

/// The issues `actor` may read and not in the trash, each joined to its project for
/// the visibility rule: one statement.
fn readable_select(actor: Actor) -> Select<issues::Entity> {
    with_project()
        .filter(policy::readable_issues(actor.user_id, PROJECT))
        .filter(issues::Column::DeletedAt.is_null())
}

/// [`readable`]'s statement for an issue by id (`issue(id)`).
static READABLE_BY_ID: Template = Template::new();

/// The values [`readable_select`] binds, then the id's.
fn readable_by_id_values(actor: Actor, id: IssueId) -> Vec<sea_orm::Value> {
    let mut values = policy::readable_issues_values(actor.user_id);
    values.push(id.into());
    values
}

/// The project key and number of an issue key (`WEB-42`), if it is spelled as one.
fn parse_key(key: &str) -> Option<(&str, i64)> {
    let (project, number) = key.rsplit_once('-')?;
    let number = number.parse::<i64>().ok().filter(|number| *number > 0)?;
    Some((project, number))
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
    pub creator: Option<Profile>,
    pub assignee: Option<Profile>,
}

/// The table aliases of the people joined to a listed issue, and the column naming each.
const PEOPLE: [(&str, issues::Column); 2] =
    [("creator", issues::Column::CreatedBy), ("assignee", issues::Column::AssignedTo)];

/// The table alias of a listed issue's project (not `project`: its `id` column
/// would read as the issue's `project_id`).
const PROJECT: &str = "proj";

/// A listed issue is read by position: the issue's columns in their entity order
/// (all of them, first, as `Entity::find()` selects them), then each of [`PEOPLE`]'s
/// [`Profile::COLUMNS`] (see [`with_people`]). By name, each of a page's 500 values
/// cost a lookup, and each person's a formatted name: a tenth of the page's time.
impl FromQueryResult for ListedIssue {
    fn from_query_result(res: &QueryResult, _pre: &str) -> Result<Self, DbErr> {
        let issue_columns = issues::Column::iter().len();
        let person = |n: usize| Profile::read_at(res, issue_columns + n * Profile::COLUMNS.len());
        Ok(Self { issue: issue_at(res)?, creator: person(0)?, assignee: person(1)? })
    }
}

/// The issue in the first columns of `row`, in the entity's column order.
fn issue_at(row: &QueryResult) -> Result<Issue, DbErr> {
    Ok(Issue {
        id: row.try_get_by_index(0)?,
        project_id: row.try_get_by_index(1)?,
        number: row.try_get_by_index(2)?,
        kind: row.try_get_by_index(3)?,
        title: row.try_get_by_index(4)?,
        description: row.try_get_by_index(5)?,
        status: row.try_get_by_index(6)?,
        created_by: row.try_get_by_index(7)?,
        assigned_to: row.try_get_by_index(8)?,
        created_at: row.try_get_by_index(9)?,
        updated_at: row.try_get_by_index(10)?,
        closed_at: row.try_get_by_index(11)?,
        deleted_at: row.try_get_by_index(12)?,
    })
}

/// Joins `table` as `alias` (`join`: inner or left) where its `id` is the issue's `on`.
fn join_as<E: EntityTrait>(
    mut select: Select<issues::Entity>,
    join: JoinType,
    table: E,
    alias: &str,
    on: issues::Column,
) -> Select<issues::Entity> {
    let iden = Alias::new(alias).into_iden();
    QueryTrait::query(&mut select).join_as(
        join,
        table,
        iden.clone(),
        Expr::col((iden, Alias::new("id"))).equals((issues::Entity, on)),
    );
    select
}

/// The issues, each joined to its project as [`PROJECT`], whose `visibility` the
/// visibility rule reads (see `policy::readable_issues`).
fn with_project() -> Select<issues::Entity> {
    join_as(
        issues::Entity::find(),
        JoinType::InnerJoin,
        project_table::Entity,
        PROJECT,
        issues::Column::ProjectId,
    )
}

/// Joins each issue's creator and assignee to a list's select, their columns named
/// `<alias>_<column>`. (It joins the project already, for the visibility rule, but
/// reads none of its columns: decoding them cost every page a tenth of its time, and
/// the few projects of a page come from the request's loader when asked for.)
fn with_people(mut select: Select<issues::Entity>) -> Select<issues::Entity> {
    for (alias, on) in PEOPLE {
        select = join_as(select, JoinType::LeftJoin, users::Entity, alias, on);
        let iden = Alias::new(alias).into_iden();
        for column in Profile::COLUMNS {
            select =
                select.column_as(Expr::col((iden.clone(), column)), format!("{alias}_{}", column.as_str()));
        }
    }
    select
}

/// The keyset of issues in `order`.
fn keyset_of(order: IssueOrder) -> Keyset<issues::Column> {
    let (tag, key) = match order.field {
        OrderField::CreatedAt => ("c", issues::Column::CreatedAt),
        OrderField::UpdatedAt => ("u", issues::Column::UpdatedAt),
    };
    Keyset { tag, key: Some(key), id: issues::Column::Id, descending: order.descending }
}

/// A page of the issues matching `filter`, in `order`, each with its people.
pub async fn list(
    db: &DatabaseConnection,
    viewer: Actor,
    filter: &IssueFilter,
    order: IssueOrder,
    args: PageArgs,
    with_total: bool,
) -> Result<Page<ListedIssue>> {
    let keyset = keyset_of(order);
    let position = move |listed: &ListedIssue| Position {
        key: Some(match order.field {
            OrderField::CreatedAt => listed.issue.created_at,
            OrderField::UpdatedAt => listed.issue.updated_at,
        }),
        id: listed.issue.id.0,
    };
    // The project is joined to the list and to its count alike.
    let select = with_project().filter(filter.condition(viewer.user_id));
    let listing = Listing { select, shaped: filter.shaped(viewer.user_id) };
    page::fetch(db, listing, keyset, args, with_total, with_people, position).await
}

/// The SQL of issue lists, by shape.
static LIST_SHAPES: LazyLock<Shapes> = LazyLock::new(Shapes::new);

/// Lists of kinds or statuses longer than this are not kept by shape (a list may
/// repeat a value, and each is a placeholder).
const MAX_SHAPED_LIST: usize = 8;

impl IssueFilter {
    /// The filter's shape and the values [`Self::condition`] binds, in its order, for
    /// [`LIST_SHAPES`]; none for the trash, a search, or a long list of kinds or
    /// statuses, which are built each time.
    fn shaped(&self, viewer: UserId) -> Option<Shaped<'static>> {
        if self.trashed || self.search.is_some() {
            return None;
        }
        let mut values = policy::readable_issues_values(viewer);
        // Each criterion is a digit of the shape, in a base wide enough for its states.
        let mut shape: u64 = 0;
        let mut digit = |state: usize, states: usize| shape = shape * states as u64 + state as u64;
        let id_match = |wanted: Option<IdMatch<Value>>, values: &mut Vec<Value>| match wanted {
            None => 0,
            Some(IdMatch::Id(id)) => {
                values.push(id);
                1
            }
            Some(IdMatch::Nothing) => {
                values.push(false.into());
                2
            }
        };
        digit(id_match(self.project.map(|m| m.map(Into::into)), &mut values), 3);
        for list in [
            self.kind.as_ref().map(|kinds| kinds.iter().map(|&kind| kind.into()).collect::<Vec<Value>>()),
            self.status.as_ref().map(|statuses| statuses.iter().map(|&status| status.into()).collect()),
        ] {
            match list {
                None => digit(0, MAX_SHAPED_LIST + 2),
                Some(list) if list.len() <= MAX_SHAPED_LIST => {
                    digit(list.len() + 1, MAX_SHAPED_LIST + 2);
                    if list.is_empty() {
                        // sea-query spells `IN ()` as `1 = 2`, both bound.
                        values.extend([1_i32.into(), 2_i32.into()]);
                    }
                    values.extend(list);
                }
                Some(_) => return None,
            }
        }
        digit(id_match(self.assigned_to.map(|m| m.map(Into::into)), &mut values), 3);
        digit(id_match(self.created_by.map(|m| m.map(Into::into)), &mut values), 3);
        digit(self.unassigned.map_or(0, |unassigned| 1 + usize::from(unassigned)), 3);
        Some(Shaped { shapes: &LIST_SHAPES, filter: shape, values })
    }

    /// The filter as SQL, within what `viewer` may read.
    fn condition(&self, viewer: UserId) -> Condition {
        let mut all = Condition::all().add(policy::readable_issues(viewer, PROJECT));
        all = if self.trashed {
            all.add(issues::Column::DeletedAt.is_not_null()).add(policy::restorable_issues(viewer))
        } else {
            all.add(issues::Column::DeletedAt.is_null())
        };
        match self.project {
            Some(IdMatch::Id(project)) => all = all.add(issues::Column::ProjectId.eq(project)),
            Some(IdMatch::Nothing) => all = all.add(Expr::value(false)),
            None => {}
        }
        if let Some(kinds) = &self.kind {
            all = all.add(issues::Column::Kind.is_in(kinds.iter().copied()));
        }
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
        if let Some(pattern) = self.search.as_ref().map(SearchText::contains_pattern) {
            all = all.add(
                Condition::any()
                    .add(
                        Expr::expr(Func::lower(Expr::col((issues::Entity, issues::Column::Title))))
                            .like(pattern.clone()),
                    )
                    .add(
                        Expr::expr(Func::lower(Expr::col((issues::Entity, issues::Column::Description))))
                            .like(pattern),
                    ),
            );
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Filters of every shape [`IssueFilter::shaped`] keeps, and some it does not.
    fn filters() -> Vec<IssueFilter> {
        let mut filters = vec![IssueFilter::default()];
        let one = |change: fn(&mut IssueFilter)| {
            let mut filter = IssueFilter::default();
            change(&mut filter);
            filter
        };
        filters.push(one(|f| f.project = Some(IdMatch::Id(ProjectId(3)))));
        filters.push(one(|f| f.project = Some(IdMatch::Nothing)));
        filters.push(one(|f| f.kind = Some(vec![])));
        filters.push(one(|f| f.kind = Some(vec![Kind::Bug, Kind::Task, Kind::Bug])));
        filters.push(one(|f| f.status = Some(vec![Status::Closed])));
        filters.push(one(|f| f.assigned_to = Some(IdMatch::Id(UserId(7)))));
        filters.push(one(|f| f.created_by = Some(IdMatch::Nothing)));
        filters.push(one(|f| f.unassigned = Some(false)));
        filters.push(one(|f| f.unassigned = Some(true)));
        filters.push(one(|f| f.trashed = true));
        filters.push(one(|f| f.status = Some(vec![Status::Open; MAX_SHAPED_LIST + 1])));
        filters.push(IssueFilter {
            project: Some(IdMatch::Id(ProjectId(2))),
            kind: Some(vec![Kind::Feature, Kind::Enhancement]),
            status: Some(vec![Status::Open, Status::InProgress]),
            assigned_to: Some(IdMatch::Nothing),
            created_by: Some(IdMatch::Id(UserId(4))),
            unassigned: Some(true),
            ..IssueFilter::default()
        });
        filters
    }

    #[test]
    fn the_kept_sql_of_a_page_binds_what_the_build_would() {
        let position = |id| Position { key: DateTime::from_timestamp_micros(1_700_000_000_000_000 + id), id };
        let mut shapes = std::collections::HashSet::new();
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            for filter in filters() {
                for (order, after, before, backward, limit, with_total) in [
                    (IssueOrder::default(), None, None, false, 20, true),
                    (IssueOrder::default(), Some(position(5)), None, false, 3, false),
                    (
                        IssueOrder { field: OrderField::UpdatedAt, descending: false },
                        None,
                        None,
                        true,
                        7,
                        true,
                    ),
                    (IssueOrder::default(), Some(position(9)), Some(position(2)), true, 100, true),
                ] {
                    // Two viewers, so the second run of each shape binds other values
                    // to the SQL kept from the first.
                    for viewer in [UserId(1), UserId(8)] {
                        let keyset = keyset_of(order);
                        let bounds = page::Bounds { after, before, backward, limit };
                        let select = with_project().filter(filter.condition(viewer));
                        let shaped = filter.shaped(viewer);
                        if let Some(shaped) = &shaped {
                            shapes.insert((
                                backend == DbBackend::Postgres,
                                shaped.filter,
                                format!("{after:?}{before:?}{backward}{limit}{with_total}"),
                            ));
                        }
                        let kept = page::statement(
                            backend,
                            &select,
                            shaped,
                            keyset,
                            bounds,
                            with_total,
                            with_people,
                        );
                        let built =
                            page::statement(backend, &select, None, keyset, bounds, with_total, with_people);
                        assert_eq!(kept, built, "{backend:?} {filter:?}");
                    }
                }
            }
        }
        // Different filters have different shapes: 11 of the 13 are kept by shape.
        assert_eq!(shapes.len(), 2 * 11 * 4);
    }

    #[test]
    fn the_template_of_an_issue_by_id_binds_what_the_build_would() {
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            for (viewer, id) in [(1, 10), (7, 3), (1, 10)] {
                let actor = Actor { user_id: UserId(viewer) };
                let id = IssueId(id);
                let build = || readable_select(actor).filter(issues::Column::Id.eq(id)).build(backend);
                let bound = READABLE_BY_ID.statement(backend, build, readable_by_id_values(actor, id));
                assert_eq!(bound, build(), "{backend:?}");
            }
        }
    }
}
