//! Who may do what: one function per decision, called by every entry point that needs
//! it (resolvers, jobs, the CLI). A resolver asks; it never decides.
//!
//! Projects. A PUBLIC project is readable by every signed-in user, a PRIVATE one by
//! its members only; instance admins (`users.role = admin`) act as ADMIN of every
//! project. What a caller may not read does not exist for them (null, `NOT_FOUND`,
//! left out of lists); what they may read but their role does not allow is
//! `FORBIDDEN`. Archived projects are read-only. The list rules ([`readable_issues`],
//! [`readable_projects`], [`restorable_issues`]) are the same decisions as SQL, so
//! a page is still one statement.

use sea_orm::{
    ColumnTrait as _, ConnectionTrait, EntityTrait as _,
    sea_query::{Alias, Condition, Expr, ExprTrait as _, Query, SimpleExpr},
};

use crate::{
    Error, Result,
    auth::Actor,
    config::Registration,
    entity::{
        ids::UserId,
        invitations::Model as Invitation,
        issues::{self, Model as Issue},
        project_members::{self, ProjectRole},
        projects::{self, Model as Project, Visibility},
        users::{self, Role},
    },
};

/// The account of a signed-in caller. A valid token for an account that no longer
/// exists is no longer a way in: `UNAUTHENTICATED`, wherever it is used.
pub async fn account_of(db: &impl ConnectionTrait, actor: Actor) -> Result<users::Model> {
    super::unique(db, users::Entity::find_by_id(actor.user_id))
        .await?
        .ok_or(Error::Unauthenticated("The account no longer exists"))
}

/// A caller's standing in one project.
#[derive(Debug, Clone)]
pub struct Standing {
    pub project: Project,
    /// Their role, as [`role_of`] has it; `None` for a non-member.
    pub role: Option<ProjectRole>,
}

/// The role a caller acts in: an instance admin is ADMIN of every project, anyone
/// else is what their membership says.
pub fn role_of(account: Role, membership: Option<ProjectRole>) -> Option<ProjectRole> {
    match account {
        Role::Admin => Some(ProjectRole::Admin),
        Role::Member => membership,
    }
}

/// Whether the caller may read the project and its issues.
pub fn may_read_project(standing: &Standing) -> bool {
    standing.project.visibility == Visibility::Public || standing.role.is_some()
}

/// `FORBIDDEN` unless the caller has at least `needed` in a project that is not
/// archived.
fn may_write(standing: &Standing, needed: ProjectRole, message: &'static str) -> Result<()> {
    if standing.role < Some(needed) {
        return Err(Error::Forbidden(message));
    }
    writable(standing)
}

/// `FORBIDDEN` when the project is archived.
fn writable(standing: &Standing) -> Result<()> {
    may_join(&standing.project)
}

/// Joining `project` through an invitation: not while it is archived (nor any
/// other change in it).
pub fn may_join(project: &Project) -> Result<()> {
    match project.archived_at {
        Some(_) => Err(Error::Forbidden("The project is archived, and read-only")),
        None => Ok(()),
    }
}

/// Editing a project's name, description and visibility: its ADMINs.
pub fn may_manage_project(standing: &Standing) -> Result<()> {
    may_write(standing, ProjectRole::Admin, "Only a project ADMIN may change the project")
}

/// Archiving and restoring a project: its ADMINs, archived or not.
pub fn may_archive_project(standing: &Standing) -> Result<()> {
    if standing.role < Some(ProjectRole::Admin) {
        return Err(Error::Forbidden("Only a project ADMIN may archive or restore the project"));
    }
    Ok(())
}

/// Adding members and changing their roles: the project's ADMINs.
pub fn may_manage_members(standing: &Standing) -> Result<()> {
    may_write(standing, ProjectRole::Admin, "Only a project ADMIN may manage its members")
}

/// Removing `member` from a project: its ADMINs, or the member themself (anyone
/// may leave, even an archived project).
pub fn may_remove_member(actor: Actor, standing: &Standing, member: UserId) -> Result<()> {
    if actor.user_id == member {
        return Ok(());
    }
    may_manage_members(standing)
}

/// Listing a project's invitations: its ADMINs (archived or not).
pub fn may_see_invitations(standing: &Standing) -> Result<()> {
    if standing.role < Some(ProjectRole::Admin) {
        return Err(Error::Forbidden("Only a project ADMIN may see its invitations"));
    }
    Ok(())
}

/// Creating an account through the API under `mode`; `invited` when it comes with
/// an invitation.
pub fn may_register(mode: Registration, invited: bool) -> Result<()> {
    match (mode, invited) {
        (Registration::Open, _) | (Registration::Invite, true) => Ok(()),
        (Registration::Invite, false) => {
            Err(Error::Forbidden("Registration is by invitation only: accept an invitation to join"))
        }
        (Registration::Closed, _) => Err(Error::Forbidden("Registration is closed; ask an administrator")),
    }
}

/// Accepting `invitation` as a signed-in account with `email`: it must be the
/// address invited (the link is proof of that mailbox, not of any other).
pub fn may_accept_invitation(invitation: &Invitation, email: &str) -> Result<()> {
    if invitation.email != email {
        return Err(Error::Forbidden("This invitation was sent to another email address"));
    }
    Ok(())
}

/// Whether a new account joins the default project: under open registration.
pub fn joins_default_project(mode: Registration) -> bool {
    mode == Registration::Open
}

/// Filing issues in a project: its MEMBERs and ADMINs.
pub fn may_create_issue(standing: &Standing) -> Result<()> {
    may_write(standing, ProjectRole::Member, "Only a project MEMBER or ADMIN may file issues in it")
}

/// Whether someone with `role` in an issue's project may be its assignee: MEMBERs
/// and ADMINs may (`BAD_USER_INPUT` on `assignedTo` otherwise).
pub fn may_be_assigned(role: Option<ProjectRole>) -> bool {
    role >= Some(ProjectRole::Member)
}

/// Editing or deleting `issue`: only its creator may, and only while they can still
/// file issues in its project.
pub fn may_edit_issue(actor: Actor, standing: &Standing, issue: &Issue) -> Result<()> {
    if issue.created_by != actor.user_id {
        return Err(Error::Forbidden("Only the issue's creator may change or delete it"));
    }
    may_create_issue(standing)
}

/// Bringing `issue` back from the trash: its creator (while they may still file
/// issues in its project), or an ADMIN of the project.
pub fn may_restore_issue(actor: Actor, standing: &Standing, issue: &Issue) -> Result<()> {
    let as_creator = issue.created_by == actor.user_id && standing.role >= Some(ProjectRole::Member);
    if !(as_creator || standing.role == Some(ProjectRole::Admin)) {
        return Err(Error::Forbidden("Only the issue's creator or a project ADMIN may restore it"));
    }
    writable(standing)
}

/// Whether `viewer` may see the assignment email waiting to go out for `issue`: its
/// creator and its assignee may; to anyone else there is none.
pub fn may_see_pending_notice(viewer: Actor, issue: &Issue) -> bool {
    viewer.user_id == issue.created_by || Some(viewer.user_id) == issue.assigned_to
}

/// Whether a due assignment notice to `recipient` is still wanted: its issue still
/// exists, is not in the trash, and is still assigned to them.
pub fn assignment_notice_wanted(issue: Option<&Issue>, recipient: UserId) -> bool {
    issue.is_some_and(|issue| issue.deleted_at.is_none() && issue.assigned_to == Some(recipient))
}

/// Whether a digest listing `total` issues is worth sending: not an empty one,
/// unless empty digests are asked for.
pub fn digest_wanted(total: usize, include_empty: bool) -> bool {
    total > 0 || include_empty
}

/// `viewer` is an instance admin, as SQL.
fn is_instance_admin(viewer: UserId) -> SimpleExpr {
    Expr::exists(
        Query::select()
            .expr(Expr::val(1))
            .from(users::Entity)
            .and_where(users::Column::Id.eq(viewer))
            .and_where(users::Column::Role.eq(Role::Admin))
            .to_owned(),
    )
}

/// The projects `viewer` is a member of in one of `roles`, as a subquery.
fn member_of(viewer: UserId, roles: &[ProjectRole]) -> sea_orm::sea_query::SelectStatement {
    let mut members = Query::select()
        .column(project_members::Column::ProjectId)
        .from(project_members::Entity)
        .and_where(project_members::Column::UserId.eq(viewer))
        .to_owned();
    if roles != ANY_ROLE {
        members.and_where(project_members::Column::Role.is_in(roles.iter().copied()));
    }
    members
}

/// The PUBLIC projects, as a subquery.
fn public_projects() -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(projects::Column::Id)
        .from(projects::Entity)
        .and_where(projects::Column::Visibility.eq(Visibility::Public))
        .to_owned()
}

const ANY_ROLE: [ProjectRole; 3] = [ProjectRole::Viewer, ProjectRole::Member, ProjectRole::Admin];

/// [`may_read_project`] as a condition on `projects`.
pub fn readable_projects(viewer: UserId) -> Condition {
    Condition::any()
        .add(projects::Column::Visibility.eq(Visibility::Public))
        .add(projects::Column::Id.in_subquery(member_of(viewer, &ANY_ROLE)))
        .add(is_instance_admin(viewer))
}

/// The accounts whose email `viewer` may see, as a condition on `users`: their own,
/// every one to an instance admin, and those of the people they share a project
/// with.
pub fn email_visible_to(viewer: UserId) -> Condition {
    let co_members = Query::select()
        .column(project_members::Column::UserId)
        .from(project_members::Entity)
        .and_where(project_members::Column::ProjectId.in_subquery(member_of(viewer, &ANY_ROLE)))
        .to_owned();
    Condition::any()
        .add(users::Column::Id.eq(viewer))
        .add(users::Column::Id.in_subquery(co_members))
        .add(is_instance_admin(viewer))
}

/// The issues whose project `viewer` may read, as a condition on `issues` joined to
/// their project as `project`. The cheap test comes first: for an issue of a PUBLIC
/// project the membership subquery is never run, and SQLite builds it only once
/// a row needs it.
pub fn readable_issues(viewer: UserId, project: &str) -> Condition {
    let project = Alias::new(project);
    Condition::any()
        .add(Expr::col((project.clone(), projects::Column::Visibility)).eq(Visibility::Public))
        .add(Expr::col((project, projects::Column::Id)).in_subquery(member_of(viewer, &ANY_ROLE)))
        .add(is_instance_admin(viewer))
}

/// The values [`readable_issues`] binds, in its order.
pub fn readable_issues_values(viewer: UserId) -> Vec<sea_orm::Value> {
    // The admin test selects a bound 1.
    vec![Visibility::Public.into(), viewer.into(), 1_i32.into(), viewer.into(), Role::Admin.into()]
}

/// The issues their own assignee may read (for the digest, which lists many
/// people's issues in one statement), as a condition on `issues`.
pub fn readable_by_assignee() -> Condition {
    let member = Query::select()
        .expr(Expr::val(1))
        .from(project_members::Entity)
        .and_where(
            Expr::col((project_members::Entity, project_members::Column::ProjectId))
                .equals((issues::Entity, issues::Column::ProjectId)),
        )
        .and_where(
            Expr::col((project_members::Entity, project_members::Column::UserId))
                .equals((issues::Entity, issues::Column::AssignedTo)),
        )
        .to_owned();
    let admin = Query::select()
        .expr(Expr::val(1))
        .from(users::Entity)
        .and_where(
            Expr::col((users::Entity, users::Column::Id))
                .equals((issues::Entity, issues::Column::AssignedTo)),
        )
        .and_where(users::Column::Role.eq(Role::Admin))
        .to_owned();
    Condition::any()
        .add(issues::Column::ProjectId.in_subquery(public_projects()))
        .add(Expr::exists(member))
        .add(Expr::exists(admin))
}

/// The issues in the trash `viewer` may restore ([`may_restore_issue`]), as a
/// condition on `issues`; archived projects' issues are left out.
pub fn restorable_issues(viewer: UserId) -> Condition {
    let open_projects = Query::select()
        .column(projects::Column::Id)
        .from(projects::Entity)
        .and_where(projects::Column::ArchivedAt.is_null())
        .to_owned();
    let as_creator = Condition::all().add(issues::Column::CreatedBy.eq(viewer)).add(
        issues::Column::ProjectId.in_subquery(member_of(viewer, &[ProjectRole::Member, ProjectRole::Admin])),
    );
    let as_admin = Condition::any()
        .add(issues::Column::ProjectId.in_subquery(member_of(viewer, &[ProjectRole::Admin])))
        .add(is_instance_admin(viewer));
    Condition::all()
        .add(issues::Column::ProjectId.in_subquery(open_projects))
        .add(Condition::any().add(as_creator).add(as_admin))
}
