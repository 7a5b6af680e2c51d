use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261125_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Issues::Table)
                    .col(big_pk_auto(Issues::Id))
                    .col(string_len(Issues::Title, 256))
                    .col(text(Issues::Description))
                    .col(string_len(Issues::Status, 16))
                    .col(big_integer(Issues::CreatedBy))
                    .col(big_integer_null(Issues::AssignedTo))
                    .col(timestamp_with_time_zone(Issues::CreatedAt))
                    .col(timestamp_with_time_zone(Issues::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Issues::ClosedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("issues_created_by_fkey")
                            .from(Issues::Table, Issues::CreatedBy)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("issues_assigned_to_fkey")
                            .from(Issues::Table, Issues::AssignedTo)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        // One index per list the API serves. Each ends in the sort key and id, so a
        // filtered, keyset-paginated page is an index range scan, not a sort.
        let indexes: [(&str, &[Issues]); 5] = [
            ("issues_created_at", &[Issues::CreatedAt, Issues::Id]),
            ("issues_updated_at", &[Issues::UpdatedAt, Issues::Id]),
            ("issues_assigned_to", &[Issues::AssignedTo, Issues::CreatedAt, Issues::Id]),
            ("issues_created_by", &[Issues::CreatedBy, Issues::CreatedAt, Issues::Id]),
            ("issues_status", &[Issues::Status, Issues::CreatedAt, Issues::Id]),
        ];
        for (name, columns) in indexes {
            let mut index = Index::create();
            index.name(name).table(Issues::Table);
            for column in columns {
                index.col(*column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Issues::Table).to_owned()).await
    }
}

#[derive(DeriveIden, Clone, Copy)]
pub enum Issues {
    Table,
    Id,
    Title,
    Description,
    Status,
    CreatedBy,
    AssignedTo,
    CreatedAt,
    UpdatedAt,
    ClosedAt,
}
