use async_graphql::{ID, SimpleObject};
use chrono::{DateTime, Utc};

use super::{Invitation, Issue, Project, ProjectMember, User};
use crate::domain::sessions::Session;

/// A new session: a short-lived access token and a refresh token to renew it.
#[derive(Debug, SimpleObject)]
pub struct AuthPayload {
    /// Send as `Authorization: Bearer <accessToken>`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// When `accessToken` stops working; renew it with `refreshToken` before then.
    pub expires_at: DateTime<Utc>,
    /// Single use: `refreshToken(input:)` spends it and returns a new one.
    pub refresh_token: String,
    pub user: User,
}

impl From<Session> for AuthPayload {
    fn from(session: Session) -> Self {
        Self {
            access_token: session.access_token,
            token_type: "Bearer".to_owned(),
            expires_at: session.expires_at,
            refresh_token: session.refresh_token,
            user: User::own(session.user),
        }
    }
}

#[derive(Debug, SimpleObject)]
pub struct LogoutPayload {
    /// Whether the refresh token named a session, now ended.
    pub success: bool,
}

#[derive(Debug, SimpleObject)]
pub struct UpdateMePayload {
    pub user: User,
}

#[derive(Debug, SimpleObject)]
pub struct CreateIssuePayload {
    pub issue: Issue,
}

#[derive(Debug, SimpleObject)]
pub struct UpdateIssuePayload {
    pub issue: Issue,
}

#[derive(Debug, SimpleObject)]
pub struct DeleteIssuePayload {
    pub deleted_issue_id: ID,
}

#[derive(Debug, SimpleObject)]
pub struct RestoreIssuePayload {
    pub issue: Issue,
}

/// Declares payload types that each carry one `field`.
macro_rules! payloads {
    ($doc:literal, $field:ident: $type:ty => $($name:ident),+ $(,)?) => {$(
        #[doc = $doc]
        #[derive(Debug, SimpleObject)]
        pub struct $name {
            pub $field: $type,
        }
    )+};
}

payloads!(
    "The project as the mutation left it.",
    project: Project => CreateProjectPayload, UpdateProjectPayload, ArchiveProjectPayload, RestoreProjectPayload,
);
payloads!(
    "The membership as the mutation left it (as it was, for a removal).",
    member: ProjectMember => AddProjectMemberPayload, UpdateProjectMemberPayload, RemoveProjectMemberPayload,
);
payloads!(
    "The invitation as the mutation left it (as it was, for a revocation).",
    invitation: Invitation => InviteToProjectPayload, RevokeInvitationPayload,
);

/// What accepting an invitation did.
#[derive(Debug, SimpleObject)]
pub struct AcceptInvitationPayload {
    pub project: Project,
    /// The new membership.
    pub member: ProjectMember,
    /// The new account's session, when the acceptance signed up (`register`); null
    /// for a caller who was signed in.
    pub auth: Option<AuthPayload>,
}
