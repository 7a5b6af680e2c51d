use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use super::ids::{IssueId, ProjectId, UserId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "issues")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: IssueId,
    pub project_id: ProjectId,
    /// Its number in the project, from 1, never given twice.
    pub number: i64,
    pub kind: Kind,
    pub title: String,
    #[sea_orm(column_type = "Text")]
    pub description: String,
    pub status: Status,
    pub created_by: UserId,
    pub assigned_to: Option<UserId>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub closed_at: Option<DateTimeUtc>,
    /// When it went to the trash; `None` while it is not there.
    pub deleted_at: Option<DateTimeUtc>,
}

/// What sort of work an issue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Kind {
    #[sea_orm(string_value = "BUG")]
    Bug,
    #[sea_orm(string_value = "FEATURE")]
    Feature,
    #[sea_orm(string_value = "ENHANCEMENT")]
    Enhancement,
    #[sea_orm(string_value = "TASK")]
    Task,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Status {
    #[sea_orm(string_value = "OPEN")]
    Open,
    #[sea_orm(string_value = "IN_PROGRESS")]
    InProgress,
    #[sea_orm(string_value = "CLOSED")]
    Closed,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
