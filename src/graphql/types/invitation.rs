use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use super::{Project, ProjectRole, User, load_user, to_id};
use crate::{Error, Result, domain, graphql::context::ContextExt as _};

/// An email address asked to join a project in a role, through a link sent to it.
#[derive(Debug, Clone)]
pub struct Invitation(pub domain::invitations::Invitation);

#[Object]
impl Invitation {
    async fn id(&self) -> ID {
        to_id(self.0.id)
    }

    async fn project(&self, ctx: &Context<'_>) -> Result<Project> {
        let project =
            ctx.request()?.loaders().projects.load_one(self.0.project_id).await.map_err(Error::from)?;
        project.map(Project).ok_or_else(|| Error::internal("an invitation's project is missing"))
    }

    /// The address invited; accepting needs an account with it.
    async fn email(&self) -> &str {
        &self.0.email
    }

    /// The role the invitee joins in.
    async fn role(&self) -> ProjectRole {
        self.0.role.into()
    }

    /// Who invited; null once their account is gone.
    async fn invited_by(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        match self.0.invited_by {
            Some(id) => load_user(ctx, id).await,
            None => Ok(None),
        }
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When the link stops working.
    async fn expires_at(&self) -> DateTime<Utc> {
        self.0.expires_at
    }

    /// When it was accepted; null while pending. A link works once.
    async fn accepted_at(&self) -> Option<DateTime<Utc>> {
        self.0.accepted_at
    }
}
