use async_graphql::{Context, ID, InputObject, Object};

use super::auth::{RegisterInput, redacted_debug};
use crate::{
    Error, Result,
    domain::{
        self,
        invitations::NewInvitation,
        values::{Email, InvitationToken},
    },
    graphql::{
        context::ContextExt as _,
        types::{
            AcceptInvitationPayload, Invitation, InviteToProjectPayload, Project, ProjectMember, ProjectRole,
            RevokeInvitationPayload, target,
        },
    },
};

#[derive(Debug, InputObject)]
pub struct InviteToProjectInput {
    pub project_id: ID,
    /// Where the link goes; accepting needs an account with this address.
    pub email: String,
    pub role: ProjectRole,
}

#[derive(Debug, InputObject)]
pub struct RevokeInvitationInput {
    pub id: ID,
}

#[derive(InputObject)]
pub struct AcceptInvitationInput {
    /// The token from the invitation's link.
    pub token: String,
    /// Signs up with the invited address, for a caller who is not signed in: the
    /// payload then carries the new session.
    pub register: Option<RegisterInput>,
}

redacted_debug!(AcceptInvitationInput { register });

#[derive(Debug, Default)]
pub struct InvitationMutation;

#[Object]
impl InvitationMutation {
    /// Invites an email address into a project (ADMIN) and emails it a link, valid
    /// for 7 days and once. Inviting the address again replaces the pending
    /// invitation. When the email cannot be sent nothing is saved: `BAD_USER_INPUT`
    /// on `email` if the mail server refuses the address, `SERVICE_UNAVAILABLE` if it
    /// defers or cannot be reached.
    async fn invite_to_project(
        &self,
        ctx: &Context<'_>,
        input: InviteToProjectInput,
    ) -> Result<InviteToProjectPayload> {
        let actor = ctx.actor()?;
        let new = NewInvitation {
            project: target(&input.project_id, "Project")?,
            email: Email::parse(input.email)?,
            role: input.role.into(),
        };
        let state = ctx.state()?;
        let invitation = domain::invitations::invite(&state.db, &state.postman, actor, new).await?;
        Ok(InviteToProjectPayload { invitation: Invitation(invitation) })
    }

    /// Withdraws a pending invitation (ADMIN): its link stops working.
    async fn revoke_invitation(
        &self,
        ctx: &Context<'_>,
        input: RevokeInvitationInput,
    ) -> Result<RevokeInvitationPayload> {
        let actor = ctx.actor()?;
        let id = target(&input.id, "Invitation")?;
        let invitation = domain::invitations::revoke(ctx.db()?, actor, id).await?;
        Ok(RevokeInvitationPayload { invitation: Invitation(invitation) })
    }

    /// Joins the invitation's project in its role. A signed-in caller joins as
    /// themself (the invitation must be to their email); anyone else passes
    /// `register` to sign up with the invited address, which works even when
    /// registration is by invitation only. Needs no sign-in.
    async fn accept_invitation(
        &self,
        ctx: &Context<'_>,
        input: AcceptInvitationInput,
    ) -> Result<AcceptInvitationPayload> {
        let token = InvitationToken::parse(input.token)?;
        let state = ctx.state()?;
        let (accepted, signed_up) = match (ctx.actor(), input.register) {
            (Ok(actor), None) => (domain::invitations::accept(&state.db, actor, &token).await?, false),
            (Ok(_), Some(_)) => {
                return Err(Error::bad_input("register", "You are signed in: accept without register"));
            }
            (Err(_), Some(register)) => {
                let new = super::auth::new_user(register)?;
                let accepted = domain::invitations::accept_signing_up(
                    &state.db,
                    &state.hasher,
                    state.registration,
                    &token,
                    new,
                )
                .await?;
                tracing::info!(user_id = accepted.user.id.0, "user registered through an invitation");
                (accepted, true)
            }
            (Err(_), None) => {
                return Err(Error::bad_input("register", "Sign in, or pass register to sign up"));
            }
        };
        let auth = if signed_up {
            let session =
                domain::sessions::start(&state.db, &state.tokens, state.refresh_token_ttl, accepted.user)
                    .await?;
            Some(session.into())
        } else {
            None
        };
        Ok(AcceptInvitationPayload {
            project: Project(accepted.project),
            member: ProjectMember(accepted.member),
            auth,
        })
    }
}
