use sea_orm::entity::prelude::*;

use super::ids::{ProjectId, UserId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "project_members")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub project_id: ProjectId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: UserId,
    pub role: ProjectRole,
    pub added_at: DateTimeUtc,
}

/// What a member may do in a project; each role may do all the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum ProjectRole {
    /// Reads the project's issues.
    #[sea_orm(string_value = "VIEWER")]
    Viewer,
    /// Also creates issues, and can be assigned.
    #[sea_orm(string_value = "MEMBER")]
    Member,
    /// Also edits the project and manages its members; archives and restores it.
    #[sea_orm(string_value = "ADMIN")]
    Admin,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
