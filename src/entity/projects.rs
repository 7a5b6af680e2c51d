use sea_orm::entity::prelude::*;

use super::ids::{ProjectId, UserId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "projects")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: ProjectId,
    pub key: String,
    pub name: String,
    #[sea_orm(column_type = "Text")]
    pub description: String,
    pub visibility: Visibility,
    /// `None` for the default project a migration made, or once its creator is gone.
    pub created_by: Option<UserId>,
    /// The number the project's next issue gets.
    pub next_number: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub archived_at: Option<DateTimeUtc>,
}

/// Who may read a project's issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Visibility {
    /// Every signed-in user.
    #[sea_orm(string_value = "PUBLIC")]
    Public,
    /// Its members only.
    #[sea_orm(string_value = "PRIVATE")]
    Private,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
