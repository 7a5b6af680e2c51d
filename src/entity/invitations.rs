use sea_orm::entity::prelude::*;

use super::{
    ids::{InvitationId, ProjectId, UserId},
    project_members::ProjectRole,
};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "invitations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: InvitationId,
    pub project_id: ProjectId,
    /// The address invited, lower-cased.
    pub email: String,
    /// The role the invitee joins in.
    pub role: ProjectRole,
    /// SHA-256 of the link's token, hex.
    pub token_hash: String,
    pub invited_by: Option<UserId>,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub accepted_at: Option<DateTimeUtc>,
    pub accepted_by: Option<UserId>,
    pub revoked_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
