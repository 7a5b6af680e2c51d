use async_graphql::{Context, ID, InputObject, Object};

use crate::{
    Result,
    domain::{
        self,
        projects::{NewProject, ProjectChanges},
        values::{ProjectDescription, ProjectKey, ProjectName},
    },
    entity::ids::{ProjectId, UserId},
    graphql::{
        context::ContextExt as _,
        types::{
            AddProjectMemberPayload, ArchiveProjectPayload, CreateProjectPayload, Project, ProjectMember,
            ProjectRole, RemoveProjectMemberPayload, RestoreProjectPayload, UpdateProjectMemberPayload,
            UpdateProjectPayload, Visibility, reference, target,
        },
    },
};

#[derive(Debug, InputObject)]
pub struct CreateProjectInput {
    /// 2 to 10 upper-case letters and digits, starting with a letter; unique, and
    /// fixed once the project exists.
    pub key: String,
    /// 1 to 128 characters, not blank.
    pub name: String,
    /// At most 4 KiB; empty when left out.
    pub description: Option<String>,
    /// `PRIVATE` when left out.
    pub visibility: Option<Visibility>,
}

/// Only the fields given change.
#[derive(Debug, InputObject)]
pub struct UpdateProjectInput {
    pub id: ID,
    pub name: Option<String>,
    pub description: Option<String>,
    pub visibility: Option<Visibility>,
}

#[derive(Debug, InputObject)]
pub struct ArchiveProjectInput {
    pub id: ID,
}

#[derive(Debug, InputObject)]
pub struct RestoreProjectInput {
    pub id: ID,
}

#[derive(Debug, InputObject)]
pub struct AddProjectMemberInput {
    pub project_id: ID,
    pub user_id: ID,
    pub role: ProjectRole,
}

#[derive(Debug, InputObject)]
pub struct UpdateProjectMemberInput {
    pub project_id: ID,
    pub user_id: ID,
    pub role: ProjectRole,
}

#[derive(Debug, InputObject)]
pub struct RemoveProjectMemberInput {
    pub project_id: ID,
    pub user_id: ID,
}

#[derive(Debug, Default)]
pub struct ProjectMutation;

/// The project a mutation acts on, and the member it names.
fn membership(project: &ID, user: &ID) -> Result<(ProjectId, UserId)> {
    Ok((target(project, "Project")?, reference(user, "userId", "user")?))
}

#[Object]
impl ProjectMutation {
    /// Creates a project; the caller is its first ADMIN.
    async fn create_project(
        &self,
        ctx: &Context<'_>,
        input: CreateProjectInput,
    ) -> Result<CreateProjectPayload> {
        let actor = ctx.actor()?;
        let new = NewProject {
            key: ProjectKey::parse(input.key, "key")?,
            name: ProjectName::parse(input.name)?,
            description: ProjectDescription::parse(input.description.unwrap_or_default())?,
            visibility: input.visibility.unwrap_or(Visibility::Private).into(),
        };
        let project = domain::projects::create(ctx.db()?, actor, new).await?;
        Ok(CreateProjectPayload { project: Project(project) })
    }

    /// Changes a project's name, description or visibility (ADMIN).
    async fn update_project(
        &self,
        ctx: &Context<'_>,
        input: UpdateProjectInput,
    ) -> Result<UpdateProjectPayload> {
        let actor = ctx.actor()?;
        let id = target(&input.id, "Project")?;
        let changes = ProjectChanges {
            name: input.name.map(ProjectName::parse).transpose()?,
            description: input.description.map(ProjectDescription::parse).transpose()?,
            visibility: input.visibility.map(Into::into),
        };
        let project = domain::projects::update(ctx.db()?, actor, id, changes).await?;
        Ok(UpdateProjectPayload { project: Project(project) })
    }

    /// Archives a project (ADMIN): it becomes read-only.
    async fn archive_project(
        &self,
        ctx: &Context<'_>,
        input: ArchiveProjectInput,
    ) -> Result<ArchiveProjectPayload> {
        let actor = ctx.actor()?;
        let project =
            domain::projects::set_archived(ctx.db()?, actor, target(&input.id, "Project")?, true).await?;
        Ok(ArchiveProjectPayload { project: Project(project) })
    }

    /// Brings an archived project back (ADMIN).
    async fn restore_project(
        &self,
        ctx: &Context<'_>,
        input: RestoreProjectInput,
    ) -> Result<RestoreProjectPayload> {
        let actor = ctx.actor()?;
        let project =
            domain::projects::set_archived(ctx.db()?, actor, target(&input.id, "Project")?, false).await?;
        Ok(RestoreProjectPayload { project: Project(project) })
    }

    /// Adds a user to a project (ADMIN).
    async fn add_project_member(
        &self,
        ctx: &Context<'_>,
        input: AddProjectMemberInput,
    ) -> Result<AddProjectMemberPayload> {
        let actor = ctx.actor()?;
        let (project, user) = membership(&input.project_id, &input.user_id)?;
        let member = domain::projects::add_member(ctx.db()?, actor, project, user, input.role.into()).await?;
        Ok(AddProjectMemberPayload { member: ProjectMember(member) })
    }

    /// Changes a member's role (ADMIN); a project keeps at least one ADMIN.
    async fn update_project_member(
        &self,
        ctx: &Context<'_>,
        input: UpdateProjectMemberInput,
    ) -> Result<UpdateProjectMemberPayload> {
        let actor = ctx.actor()?;
        let (project, user) = membership(&input.project_id, &input.user_id)?;
        let member =
            domain::projects::update_member(ctx.db()?, actor, project, user, input.role.into()).await?;
        Ok(UpdateProjectMemberPayload { member: ProjectMember(member) })
    }

    /// Removes a member (ADMIN; anyone may remove themself); a project keeps at least
    /// one ADMIN. Their pending assignment emails for the project are cancelled.
    async fn remove_project_member(
        &self,
        ctx: &Context<'_>,
        input: RemoveProjectMemberInput,
    ) -> Result<RemoveProjectMemberPayload> {
        let actor = ctx.actor()?;
        let (project, user) = membership(&input.project_id, &input.user_id)?;
        let member = domain::projects::remove_member(ctx.db()?, actor, project, user).await?;
        Ok(RemoveProjectMemberPayload { member: ProjectMember(member) })
    }
}
