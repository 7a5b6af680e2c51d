use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object};

use crate::entity::ids::{ProjectId, UserId};

use crate::{
    Result,
    domain::{
        self,
        issues::{IssueChanges, NewIssue},
        values::{IssueDescription, IssueTitle},
    },
    graphql::{
        context::ContextExt as _,
        types::{
            CreateIssuePayload, DeleteIssuePayload, IssueKind, IssueStatus, RestoreIssuePayload,
            UpdateIssuePayload, reference, target, to_id,
        },
    },
};

#[derive(Debug, InputObject)]
pub struct CreateIssueInput {
    /// The project to file it in; the default project when left out.
    pub project_id: Option<ID>,
    /// `TASK` when left out.
    pub kind: Option<IssueKind>,
    /// 1 to 256 characters, not blank.
    pub title: String,
    /// At most 64 KiB; empty when left out.
    pub description: Option<String>,
    /// A MEMBER or ADMIN of the issue's project.
    pub assigned_to: Option<ID>,
    /// `OPEN` when left out.
    pub status: Option<IssueStatus>,
}

/// Only the fields given change.
#[derive(Debug, InputObject)]
pub struct UpdateIssueInput {
    pub id: ID,
    pub kind: Option<IssueKind>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub status: Option<IssueStatus>,
    /// A user id to assign (a MEMBER or ADMIN of the issue's project), or `null` to
    /// unassign.
    pub assigned_to: MaybeUndefined<ID>,
}

#[derive(Debug, InputObject)]
pub struct DeleteIssueInput {
    pub id: ID,
    /// `true`: delete it for good, skipping the trash (or emptying it from there).
    pub permanently: Option<bool>,
}

#[derive(Debug, InputObject)]
pub struct RestoreIssueInput {
    pub id: ID,
}

#[derive(Debug, Default)]
pub struct IssueMutation;

/// An `assignedTo` id, which must name a user.
fn assignee(id: &ID) -> Result<UserId> {
    reference(id, "assignedTo", "user")
}

#[Object]
impl IssueMutation {
    /// Opens an issue; the caller is its creator.
    async fn create_issue(&self, ctx: &Context<'_>, input: CreateIssueInput) -> Result<CreateIssuePayload> {
        let actor = ctx.actor()?;
        let new = NewIssue {
            project: input
                .project_id
                .as_ref()
                .map(|id| reference::<ProjectId>(id, "projectId", "project"))
                .transpose()?,
            kind: input.kind.unwrap_or(IssueKind::Task).into(),
            title: IssueTitle::parse(input.title)?,
            description: IssueDescription::parse(input.description.unwrap_or_default())?,
            status: input.status.unwrap_or(IssueStatus::Open).into(),
            assigned_to: input.assigned_to.as_ref().map(assignee).transpose()?,
        };
        let state = ctx.state()?;
        let issue =
            domain::issues::create(&state.db, state.announce(), actor, state.default_project, new).await?;
        Ok(CreateIssuePayload { issue: issue.into() })
    }

    /// Changes an issue; only its creator may.
    async fn update_issue(&self, ctx: &Context<'_>, input: UpdateIssueInput) -> Result<UpdateIssuePayload> {
        let actor = ctx.actor()?;
        let id = target(&input.id, "Issue")?;
        let changes = IssueChanges {
            kind: input.kind.map(Into::into),
            title: input.title.map(IssueTitle::parse).transpose()?,
            description: input.description.map(IssueDescription::parse).transpose()?,
            status: input.status.map(Into::into),
            assigned_to: match &input.assigned_to {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(id) => Some(Some(assignee(id)?)),
            },
        };
        let state = ctx.state()?;
        let issue = domain::issues::update(&state.db, state.announce(), actor, id, changes).await?;
        Ok(UpdateIssuePayload { issue: issue.into() })
    }

    /// Moves an issue to the trash, or deletes it for good (`permanently`); only its
    /// creator may.
    async fn delete_issue(&self, ctx: &Context<'_>, input: DeleteIssueInput) -> Result<DeleteIssuePayload> {
        let actor = ctx.actor()?;
        let state = ctx.state()?;
        let id = target(&input.id, "Issue")?;
        let permanently = input.permanently.unwrap_or(false);
        let issue = domain::issues::delete(&state.db, state.announce(), actor, id, permanently).await?;
        Ok(DeleteIssuePayload { deleted_issue_id: to_id(issue.id) })
    }

    /// Brings an issue back from the trash, within `TRIAGE_TRASH_RETENTION` of its
    /// deletion; its creator or a project ADMIN may.
    async fn restore_issue(
        &self,
        ctx: &Context<'_>,
        input: RestoreIssueInput,
    ) -> Result<RestoreIssuePayload> {
        let actor = ctx.actor()?;
        let state = ctx.state()?;
        let id = target(&input.id, "Issue")?;
        let issue =
            domain::issues::restore(&state.db, state.announce(), actor, id, state.trash_retention).await?;
        Ok(RestoreIssuePayload { issue: issue.into() })
    }
}
