//! Projects: where issues live, who belongs to them and in what role.

use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, FromQueryResult,
    IdenStatic as _, Iterable, JoinType, PaginatorTrait as _, QueryFilter, QueryResult, QuerySelect,
    QueryTrait, Select, Statement, Value,
    sea_query::{Alias, Condition, Expr, ExprTrait as _, Func, IntoIden as _, LockType, SelectStatement},
};

use super::{
    Template, begin_write, notices, now,
    page::{self, Keyset, Page, PageArgs, Position},
    policy::{self, Standing},
    values::{ProjectDescription, ProjectKey, ProjectName, SearchText},
};
use crate::{
    Error, Result,
    auth::Actor,
    entity::{
        ids::{IssueId, ProjectId, UserId},
        issues::{self, Model as Issue},
        notices::{Kind as NoticeKind, State as NoticeState},
        project_members::{self, ProjectRole},
        projects::{self, Visibility},
        users,
    },
};

pub use project_members::Model as Member;
pub use projects::Model as Project;

/// How the databases name a clash on the project key.
const UNIQUE_KEY: &[(&str, &str, &str)] =
    &[("projects_key_unique", "key", "That key is taken"), ("projects.key", "key", "That key is taken")];

/// A new project, parsed.
#[derive(Debug)]
pub struct NewProject {
    pub key: ProjectKey,
    pub name: ProjectName,
    pub description: ProjectDescription,
    pub visibility: Visibility,
}

/// An edit; `None` leaves a field as it is. The key never changes.
#[derive(Debug, Default)]
pub struct ProjectChanges {
    pub name: Option<ProjectName>,
    pub description: Option<ProjectDescription>,
    pub visibility: Option<Visibility>,
}

/// A project named by id or by key.
#[derive(Debug, Clone)]
pub enum ProjectRef {
    Id(ProjectId),
    Key(String),
}

/// Which projects a list holds; every given criterion must match.
#[derive(Debug, Default, Clone)]
pub struct ProjectFilter {
    pub search: Option<SearchText>,
    pub viewer_is_member: Option<bool>,
    pub include_archived: bool,
}

/// Creates a project; its creator is its first ADMIN.
pub async fn create(db: &DatabaseConnection, actor: Actor, new: NewProject) -> Result<Project> {
    policy::account_of(db, actor).await?;
    let (txn, _turn) = begin_write(db).await?;
    let at = now();
    let project = projects::ActiveModel {
        key: Set(new.key.as_str().to_owned()),
        name: Set(new.name.into_inner()),
        description: Set(new.description.into_inner()),
        visibility: Set(new.visibility),
        created_by: Set(Some(actor.user_id)),
        next_number: Set(1),
        created_at: Set(at),
        updated_at: Set(at),
        archived_at: Set(None),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(|err| Error::on_unique_violation(err, UNIQUE_KEY))?;
    insert_member(&txn, project.id, actor.user_id, ProjectRole::Admin).await?;
    super::commit(txn).await?;
    Ok(project)
}

/// The default project, with `key`: made PUBLIC and named "General" if it does not
/// exist yet (on a new database, or when `TRIAGE_DEFAULT_PROJECT` names a new key).
pub async fn ensure_default(db: &DatabaseConnection, key: &ProjectKey) -> Result<Project> {
    if let Some(project) = find_by_key(db, key.as_str()).await? {
        return Ok(project);
    }
    let (txn, _turn) = begin_write(db).await?;
    let at = now();
    let inserted = projects::ActiveModel {
        key: Set(key.as_str().to_owned()),
        name: Set("General".to_owned()),
        description: Set(String::new()),
        visibility: Set(Visibility::Public),
        created_by: Set(None),
        next_number: Set(1),
        created_at: Set(at),
        updated_at: Set(at),
        archived_at: Set(None),
        ..Default::default()
    }
    .insert(&txn)
    .await;
    match inserted {
        Ok(project) => {
            super::commit(txn).await?;
            Ok(project)
        }
        Err(err) => match Error::on_unique_violation(err, UNIQUE_KEY) {
            // Another replica made it first.
            Error::Conflict { .. } => {
                drop(txn);
                find_by_key(db, key.as_str())
                    .await?
                    .ok_or_else(|| Error::internal("the default project vanished"))
            }
            other => Err(other),
        },
    }
}

/// The project with `key`, whoever may read it.
pub async fn find_by_key(db: &impl ConnectionTrait, key: &str) -> Result<Option<Project>> {
    super::unique(db, projects::Entity::find().filter(projects::Column::Key.eq(key))).await
}

/// The project with `id`, whoever may read it.
pub async fn find(db: &impl ConnectionTrait, id: ProjectId) -> Result<Option<Project>> {
    super::unique(db, projects::Entity::find_by_id(id)).await
}

/// The projects with these ids (any that exist, each once however often it is
/// named), in no particular order.
pub async fn find_many(
    db: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = ProjectId>,
) -> Result<Vec<Project>> {
    let ids: std::collections::BTreeSet<ProjectId> = ids.into_iter().collect();
    Ok(projects::Entity::find().filter(projects::Column::Id.is_in(ids)).all(db).await?)
}

/// The caller's standing in `project`: their role in it, as [`policy::role_of`] has it.
pub async fn standing(db: &impl ConnectionTrait, actor: Actor, project: Project) -> Result<Standing> {
    let roles = roles_in(db, actor.user_id, project.id)
        .await?
        .ok_or(Error::Unauthenticated("The account no longer exists"))?;
    Ok(Standing { role: policy::role_of(roles.instance, roles.member), project })
}

/// The project `reference` names, with the caller's standing, if the caller may
/// read it: what they may not read does not exist for them.
pub async fn readable(
    db: &impl ConnectionTrait,
    actor: Actor,
    reference: &ProjectRef,
) -> Result<Option<Standing>> {
    let standing = standing_in(db, actor, reference).await?;
    Ok(standing.filter(policy::may_read_project))
}

/// The project `reference` names with `actor`'s standing in it, whether or not they
/// may read it; `None` when there is no such project. One statement (a write's
/// checks are each a hop to the connection's thread, in the write turn): the project
/// with the account's role and its membership role joined.
pub async fn standing_in(
    db: &impl ConnectionTrait,
    actor: Actor,
    reference: &ProjectRef,
) -> Result<Option<Standing>> {
    let select = match reference {
        ProjectRef::Id(id) => standing_select(actor).filter(projects::Column::Id.eq(*id)),
        ProjectRef::Key(key) => standing_select(actor).filter(projects::Column::Key.eq(key.as_str())),
    };
    let Some(found) = select.into_model::<ProjectStanding>().all(db).await?.pop() else { return Ok(None) };
    Ok(Some(found.standing()?))
}

/// Project `id` with the caller's standing in it, if they may read it, and the
/// roles there of the `assignee` a new issue names: one statement, where
/// [`readable`] and the assignee's roles were two (on SQLite each is a hop to the
/// connection's thread, in the write turn).
pub async fn readable_with_assignee(
    db: &impl ConnectionTrait,
    actor: Actor,
    id: ProjectId,
    assignee: Option<UserId>,
) -> Result<Option<(Standing, NamedAssignee)>> {
    let statement = standing_with_assignee_statement(db.get_database_backend(), actor, id, assignee);
    let Some(row) = db.query_all_raw(statement).await?.pop() else { return Ok(None) };
    let standing = ProjectStanding::from_query_result(&row, "")?.standing()?;
    let assignee = NamedAssignee::read(&row, assignee)?;
    Ok(policy::may_read_project(&standing).then_some((standing, assignee)))
}

/// [`readable_with_assignee`]'s statements, built once: without an assignee to
/// read, and with one.
static STANDING_WITH_ASSIGNEE: [Template; 2] = [Template::new(), Template::new()];

/// [`readable_with_assignee`]'s statement, from its template.
fn standing_with_assignee_statement(
    backend: DbBackend,
    actor: Actor,
    id: ProjectId,
    assignee: Option<UserId>,
) -> Statement {
    let build = || standing_with_assignee_select(actor, id, assignee).build(backend);
    // In the build's order: the standing's, then the project.
    let mut values = Vec::new();
    push_standing_values(&mut values, actor, assignee);
    values.push(id.into());
    STANDING_WITH_ASSIGNEE[usize::from(assignee.is_some())].statement(backend, build, values)
}

/// The values a standing's joins bind, in their order: the caller's account and
/// membership, then the assignee's ([`standing_select`], [`join_assignee`]).
fn push_standing_values(values: &mut Vec<Value>, actor: Actor, assignee: Option<UserId>) {
    values.extend([actor.user_id.into(), actor.user_id.into()]);
    if let Some(assignee) = assignee {
        values.extend([assignee.into(), assignee.into()]);
    }
}

/// [`readable_with_assignee`]'s statement, built.
fn standing_with_assignee_select(
    actor: Actor,
    id: ProjectId,
    assignee: Option<UserId>,
) -> Select<projects::Entity> {
    let mut select = standing_select(actor).filter(projects::Column::Id.eq(id));
    join_assignee(QueryTrait::query(&mut select), assignee);
    select
}

/// Issue `id` with the caller's standing in its project and, when the change at hand
/// names a new `assignee`, that user's roles there: one statement, where the issue,
/// [`standing_in`] its project and the assignee's roles were three. On PostgreSQL
/// the issue's row (and only it) is locked `FOR UPDATE`, so that two edits of one
/// issue apply one after the other, each to what the other left; SQLite's write
/// lock is already held.
pub async fn standing_with_issue(
    db: &impl ConnectionTrait,
    actor: Actor,
    id: IssueId,
    assignee: Option<UserId>,
) -> Result<Option<IssueStanding>> {
    let statement = issue_standing_statement(db.get_database_backend(), actor, id, assignee);
    let Some(row) = db.query_all_raw(statement).await?.pop() else { return Ok(None) };
    Ok(Some(IssueStanding {
        issue: Issue::from_query_result(&row, ISSUE_PREFIX)?,
        standing: ProjectStanding::from_query_result(&row, "")?.standing()?,
        assignee: NamedAssignee::read(&row, assignee)?,
        notice_pending: row.try_get("", NOTICE_PENDING)?,
    }))
}

/// [`standing_with_issue`]'s statements, built once: without an assignee to read,
/// and with one. Building one took a twelfth of an `updateIssue`'s instructions.
static ISSUE_STANDING: [Template; 2] = [Template::new(), Template::new()];

/// [`standing_with_issue`]'s statement, from its template.
fn issue_standing_statement(
    backend: DbBackend,
    actor: Actor,
    id: IssueId,
    assignee: Option<UserId>,
) -> Statement {
    let build = || issue_standing_select(actor, id, assignee).build(backend);
    // In the build's order: the notice's EXISTS (its bound 1, kind and state), the
    // standing's, the issue.
    let mut values: Vec<Value> =
        vec![1_i32.into(), NoticeKind::Assignment.into(), NoticeState::Pending.into()];
    push_standing_values(&mut values, actor, assignee);
    values.push(id.into());
    ISSUE_STANDING[usize::from(assignee.is_some())].statement(backend, build, values)
}

/// [`standing_with_issue`]'s statement, built.
fn issue_standing_select(actor: Actor, id: IssueId, assignee: Option<UserId>) -> Select<projects::Entity> {
    let mut select = standing_select(actor);
    let query = QueryTrait::query(&mut select);
    query.join(
        JoinType::InnerJoin,
        issues::Entity,
        Expr::col((issues::Entity, issues::Column::ProjectId))
            .equals((projects::Entity, projects::Column::Id)),
    );
    join_assignee(query, assignee);
    query.expr_as(
        notices::pending_exists(Expr::col((issues::Entity, issues::Column::Id))),
        Alias::new(NOTICE_PENDING),
    );
    query.lock_with_tables(LockType::Update, [issues::Entity.into_iden()]);
    for column in issues::Column::iter() {
        select = select
            .column_as(Expr::col((issues::Entity, column)), format!("{ISSUE_PREFIX}{}", column.as_str()));
    }
    select.filter(Expr::col((issues::Entity, issues::Column::Id)).eq(id))
}

/// Joins to `query`, a select of projects, the account of the `assignee` a change
/// names and its membership in the project, and reads both roles
/// ([`NamedAssignee::read`]).
fn join_assignee(query: &mut SelectStatement, assignee: Option<UserId>) {
    let Some(assignee) = assignee else { return };
    let (user, member) = (Alias::new(ASSIGNEE_INSTANCE), Alias::new(ASSIGNEE_MEMBER));
    query
        .join_as(
            JoinType::LeftJoin,
            users::Entity,
            user.clone(),
            Expr::col((user.clone(), users::Column::Id)).eq(assignee),
        )
        .join_as(
            JoinType::LeftJoin,
            project_members::Entity,
            member.clone(),
            Condition::all()
                .add(
                    Expr::col((member.clone(), project_members::Column::ProjectId))
                        .equals((projects::Entity, projects::Column::Id)),
                )
                .add(Expr::col((member.clone(), project_members::Column::UserId)).eq(assignee)),
        )
        .expr_as(Expr::col((user, users::Column::Role)), Alias::new(ASSIGNEE_INSTANCE))
        .expr_as(Expr::col((member, project_members::Column::Role)), Alias::new(ASSIGNEE_MEMBER));
}

/// The prefix of the issue's columns in [`standing_with_issue`].
const ISSUE_PREFIX: &str = "issue_";
/// Whether the issue has a pending assignment notice, in [`standing_with_issue`].
const NOTICE_PENDING: &str = "notice_pending";
/// The named assignee's account and membership in [`join_assignee`]: each the alias
/// of the table joined and the name of the role read from it.
const ASSIGNEE_INSTANCE: &str = "assignee_instance";
const ASSIGNEE_MEMBER: &str = "assignee_member";

/// An issue read for a change ([`standing_with_issue`]).
#[derive(Debug)]
pub struct IssueStanding {
    pub issue: Issue,
    pub standing: Standing,
    pub assignee: NamedAssignee,
    /// Whether the issue has a pending assignment notice ([`notices::pending_exists`]).
    pub notice_pending: bool,
}

/// The roles in a project of the new assignee a change names, if it names one, read
/// with the caller's standing ([`join_assignee`]).
#[derive(Debug)]
pub struct NamedAssignee(Option<Option<Roles>>);

impl NamedAssignee {
    /// The roles [`join_assignee`] read, if `assignee` was named.
    fn read(row: &QueryResult, assignee: Option<UserId>) -> Result<Self> {
        if assignee.is_none() {
            return Ok(Self(None));
        }
        let roles = match row.try_get::<Option<users::Role>>("", ASSIGNEE_INSTANCE)? {
            Some(instance) => Some(Roles { instance, member: row.try_get("", ASSIGNEE_MEMBER)? }),
            None => None,
        };
        Ok(Self(Some(roles)))
    }

    /// `BAD_USER_INPUT` on `assignedTo` unless the assignee named, if any, exists and
    /// may be assigned the project's issues ([`policy::may_be_assigned`]).
    pub fn ensure_assignable(&self) -> Result<()> {
        self.0.as_ref().map_or(Ok(()), |roles| assignable(roles.as_ref()))
    }
}

/// The projects, each with the caller's account role and membership role in it.
fn standing_select(actor: Actor) -> Select<projects::Entity> {
    let mut select = projects::Entity::find();
    let query = QueryTrait::query(&mut select);
    query.join_as(
        JoinType::LeftJoin,
        users::Entity,
        Alias::new(VIEWER),
        Expr::col((Alias::new(VIEWER), users::Column::Id)).eq(actor.user_id),
    );
    let select = select.column_as(Expr::col((Alias::new(VIEWER), users::Column::Role)), "instance");
    with_member_role(select, Expr::col((projects::Entity, projects::Column::Id)), Expr::value(actor.user_id))
}

/// The alias of the caller's own `users` row in [`standing_in`].
const VIEWER: &str = "viewer";

/// A row of [`standing_in`].
struct ProjectStanding {
    project: Project,
    /// `None` when the account no longer exists.
    instance: Option<users::Role>,
    member: Option<ProjectRole>,
}

impl ProjectStanding {
    /// The caller's standing; `UNAUTHENTICATED` when their account no longer exists.
    fn standing(self) -> Result<Standing> {
        let instance = self.instance.ok_or(Error::Unauthenticated("The account no longer exists"))?;
        Ok(Standing { role: policy::role_of(instance, self.member), project: self.project })
    }
}

impl FromQueryResult for ProjectStanding {
    fn from_query_result(res: &sea_orm::QueryResult, pre: &str) -> Result<Self, sea_orm::DbErr> {
        Ok(Self {
            project: Project::from_query_result(res, pre)?,
            instance: res.try_get(pre, "instance")?,
            member: res.try_get(pre, "member")?,
        })
    }
}

/// Like [`readable`], for the project a mutation acts on: `NOT_FOUND` when the
/// caller may not read it.
pub async fn target(db: &impl ConnectionTrait, actor: Actor, id: ProjectId) -> Result<Standing> {
    readable(db, actor, &ProjectRef::Id(id)).await?.ok_or(Error::NotFound("Project"))
}

/// The account's role and its membership role in one project, read together;
/// `None` when the account no longer exists.
#[derive(Debug, FromQueryResult)]
struct Roles {
    instance: users::Role,
    member: Option<ProjectRole>,
}

async fn roles_in(db: &impl ConnectionTrait, user: UserId, project: ProjectId) -> Result<Option<Roles>> {
    let select = users::Entity::find_by_id(user).select_only().column_as(users::Column::Role, "instance");
    let select =
        with_member_role(select, Expr::value(project), Expr::col((users::Entity, users::Column::Id)));
    Ok(select.into_model::<Roles>().all(db).await?.pop())
}

/// Left-joins to `select` the membership of `user` in `project` (each a column of
/// `select` or a value), its role read as `member` (null for a non-member).
fn with_member_role<E: EntityTrait>(mut select: Select<E>, project: Expr, user: Expr) -> Select<E> {
    QueryTrait::query(&mut select).join(
        JoinType::LeftJoin,
        project_members::Entity,
        Condition::all()
            .add(Expr::col((project_members::Entity, project_members::Column::ProjectId)).eq(project))
            .add(Expr::col((project_members::Entity, project_members::Column::UserId)).eq(user)),
    );
    select.column_as(Expr::col((project_members::Entity, project_members::Column::Role)), "member")
}

/// Changes a project (ADMIN).
pub async fn update(
    db: &DatabaseConnection,
    actor: Actor,
    id: ProjectId,
    changes: ProjectChanges,
) -> Result<Project> {
    let (txn, _turn) = begin_write(db).await?;
    let standing = target(&txn, actor, id).await?;
    policy::may_manage_project(&standing)?;
    let mut model: projects::ActiveModel = standing.project.into();
    if let Some(name) = changes.name {
        model.name = Set(name.into_inner());
    }
    if let Some(description) = changes.description {
        model.description = Set(description.into_inner());
    }
    if let Some(visibility) = changes.visibility {
        model.visibility = Set(visibility);
    }
    model.updated_at = Set(now());
    let project = model.update(&txn).await?;
    super::commit(txn).await?;
    Ok(project)
}

/// Archives (`archived: true`) or restores a project (ADMIN). An archived project is
/// read-only; archiving one that is archived changes nothing.
pub async fn set_archived(
    db: &DatabaseConnection,
    actor: Actor,
    id: ProjectId,
    archived: bool,
) -> Result<Project> {
    let (txn, _turn) = begin_write(db).await?;
    let standing = target(&txn, actor, id).await?;
    policy::may_archive_project(&standing)?;
    if standing.project.archived_at.is_some() == archived {
        return Ok(standing.project);
    }
    let at = now();
    let mut model: projects::ActiveModel = standing.project.into();
    model.archived_at = Set(archived.then_some(at));
    model.updated_at = Set(at);
    let project = model.update(&txn).await?;
    super::commit(txn).await?;
    Ok(project)
}

/// A page of the projects the caller may read, oldest first.
pub async fn list(
    db: &DatabaseConnection,
    actor: Actor,
    filter: &ProjectFilter,
    args: PageArgs,
    with_total: bool,
) -> Result<Page<Project>> {
    let mut select = projects::Entity::find().filter(policy::readable_projects(actor.user_id));
    if !filter.include_archived {
        select = select.filter(projects::Column::ArchivedAt.is_null());
    }
    if let Some(member) = filter.viewer_is_member {
        let membership = projects::Column::Id.in_subquery(
            sea_orm::sea_query::Query::select()
                .column(project_members::Column::ProjectId)
                .from(project_members::Entity)
                .and_where(project_members::Column::UserId.eq(actor.user_id))
                .to_owned(),
        );
        select = select.filter(if member { membership } else { membership.not() });
    }
    if let Some(pattern) = filter.search.as_ref().map(SearchText::contains_pattern) {
        select = select.filter(
            Condition::any()
                .add(Expr::expr(Func::lower(Expr::col(projects::Column::Key))).like(pattern.clone()))
                .add(Expr::expr(Func::lower(Expr::col(projects::Column::Name))).like(pattern)),
        );
    }
    let keyset = Keyset { tag: "p", key: None, id: projects::Column::Id, descending: false };
    page::fetch(
        db,
        select,
        keyset,
        args,
        with_total,
        |select| select,
        |project: &Project| Position { key: None, id: project.id.0 },
    )
    .await
}

/// A page of a project's members, longest-standing first.
pub async fn members(
    db: &DatabaseConnection,
    project: ProjectId,
    args: PageArgs,
    with_total: bool,
) -> Result<Page<Member>> {
    let select = project_members::Entity::find().filter(project_members::Column::ProjectId.eq(project));
    let keyset = Keyset {
        tag: "m",
        key: Some(project_members::Column::AddedAt),
        id: project_members::Column::UserId,
        descending: false,
    };
    page::fetch(
        db,
        select,
        keyset,
        args,
        with_total,
        |select| select,
        |member: &Member| Position { key: Some(member.added_at), id: member.user_id.0 },
    )
    .await
}

/// Adds `user` to a project in `role` (ADMIN). `CONFLICT` if they are a member.
pub async fn add_member(
    db: &DatabaseConnection,
    actor: Actor,
    project: ProjectId,
    user: UserId,
    role: ProjectRole,
) -> Result<Member> {
    let (txn, _turn) = begin_write(db).await?;
    let standing = target(&txn, actor, project).await?;
    policy::may_manage_members(&standing)?;
    if super::unique(&txn, users::Entity::find_by_id(user)).await?.is_none() {
        return Err(Error::bad_input("userId", "userId does not name an existing user"));
    }
    if membership(&txn, project, user).await?.is_some() {
        return Err(Error::conflict("userId", "That user is already a member; change their role instead"));
    }
    let member = insert_member(&txn, project, user, role).await?;
    super::commit(txn).await?;
    Ok(member)
}

/// Changes a member's role (ADMIN). A project keeps at least one ADMIN.
pub async fn update_member(
    db: &DatabaseConnection,
    actor: Actor,
    project: ProjectId,
    user: UserId,
    role: ProjectRole,
) -> Result<Member> {
    let (txn, _turn) = begin_write(db).await?;
    let standing = target(&txn, actor, project).await?;
    policy::may_manage_members(&standing)?;
    let member = membership(&txn, project, user).await?.ok_or(Error::NotFound("Member"))?;
    if member.role == ProjectRole::Admin && role != ProjectRole::Admin {
        keep_an_admin(&txn, project, "role").await?;
    }
    let mut model: project_members::ActiveModel = member.into();
    model.role = Set(role);
    let member = model.update(&txn).await?;
    super::commit(txn).await?;
    Ok(member)
}

/// Removes a member (ADMIN, or the member themself: anyone may leave). A project
/// keeps at least one ADMIN. Their pending notices for the project's issues are
/// cancelled.
pub async fn remove_member(
    db: &DatabaseConnection,
    actor: Actor,
    project: ProjectId,
    user: UserId,
) -> Result<Member> {
    let (txn, _turn) = begin_write(db).await?;
    let standing = target(&txn, actor, project).await?;
    policy::may_remove_member(actor, &standing, user)?;
    let member = membership(&txn, project, user).await?.ok_or(Error::NotFound("Member"))?;
    if member.role == ProjectRole::Admin {
        keep_an_admin(&txn, project, "userId").await?;
    }
    project_members::Entity::delete_by_id((project, user)).exec(&txn).await?;
    super::notices::cancel_for_member(&txn, project, user).await?;
    super::commit(txn).await?;
    Ok(member)
}

/// Whether the account with `email` is a member of `project`.
pub(super) async fn has_member_with_email(
    db: &impl ConnectionTrait,
    project: ProjectId,
    email: &str,
) -> Result<bool> {
    let members = project_members::Entity::find()
        .filter(project_members::Column::ProjectId.eq(project))
        .filter(
            project_members::Column::UserId.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(users::Column::Id)
                    .from(users::Entity)
                    .and_where(users::Column::Email.eq(email))
                    .to_owned(),
            ),
        )
        .count(db)
        .await?;
    Ok(members > 0)
}

async fn membership(db: &impl ConnectionTrait, project: ProjectId, user: UserId) -> Result<Option<Member>> {
    super::unique(db, project_members::Entity::find_by_id((project, user))).await
}

pub(super) async fn insert_member(
    db: &impl ConnectionTrait,
    project: ProjectId,
    user: UserId,
    role: ProjectRole,
) -> Result<Member> {
    Ok(project_members::ActiveModel {
        project_id: Set(project),
        user_id: Set(user),
        role: Set(role),
        added_at: Set(now()),
    }
    .insert(db)
    .await?)
}

/// `CONFLICT` on `field` when the project has one ADMIN only: the change at hand
/// would leave it with none.
async fn keep_an_admin(db: &impl ConnectionTrait, project: ProjectId, field: &'static str) -> Result<()> {
    let admins = project_members::Entity::find()
        .filter(project_members::Column::ProjectId.eq(project))
        .filter(project_members::Column::Role.eq(ProjectRole::Admin))
        .count(db)
        .await?;
    if admins <= 1 {
        return Err(Error::conflict(field, "A project must keep at least one ADMIN"));
    }
    Ok(())
}

/// `BAD_USER_INPUT` on `assignedTo` unless the user whose `roles` in a project these
/// are exists (`None`: no such user) and may be assigned its issues
/// ([`policy::may_be_assigned`]).
fn assignable(roles: Option<&Roles>) -> Result<()> {
    let roles =
        roles.ok_or_else(|| Error::bad_input("assignedTo", "assignedTo does not name an existing user"))?;
    if !policy::may_be_assigned(policy::role_of(roles.instance, roles.member)) {
        return Err(Error::bad_input(
            "assignedTo",
            "The assignee must be a MEMBER or ADMIN of the issue's project",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issue_read_for_a_change_locks_its_own_row_alone() {
        let actor = Actor { user_id: UserId(1) };
        let sql = |backend| issue_standing_select(actor, IssueId(2), None).build(backend).sql;
        assert!(
            sql(DbBackend::Postgres).ends_with(r#"FOR UPDATE OF "issues""#),
            "{}",
            sql(DbBackend::Postgres)
        );
        assert!(!sql(DbBackend::Sqlite).contains("FOR UPDATE"));
    }

    #[test]
    fn the_templates_of_the_reads_that_begin_a_change_bind_what_the_build_would() {
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            for (viewer, id, assignee) in [(1, 10, None), (7, 3, Some(4)), (1, 10, Some(1)), (2, 5, None)] {
                let actor = Actor { user_id: UserId(viewer) };
                let (id, assignee) = (IssueId(id), assignee.map(UserId));
                let built = issue_standing_select(actor, id, assignee).build(backend);
                let kept = issue_standing_statement(backend, actor, id, assignee);
                assert_eq!(kept, built, "{backend:?} {assignee:?}");
                let project = ProjectId(id.0 + 1);
                let built = standing_with_assignee_select(actor, project, assignee).build(backend);
                let kept = standing_with_assignee_statement(backend, actor, project, assignee);
                assert_eq!(kept, built, "{backend:?} {assignee:?}");
            }
        }
    }
}
