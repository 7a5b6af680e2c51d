use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(big_pk_auto(Users::Id))
                    .col(string_len(Users::Username, 39))
                    .col(string_len(Users::Email, 254))
                    .col(string_len(Users::FirstName, 100))
                    .col(string_len(Users::LastName, 100))
                    .col(string(Users::PasswordHash))
                    .col(string_len(Users::Role, 16).default("member"))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .col(timestamp_with_time_zone(Users::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        // Usernames are unique without regard to case, so the index is on lower(username):
        // `Alice` and `alice` are one account. Both backends accept expression indexes.
        manager
            .get_connection()
            .execute_unprepared("CREATE UNIQUE INDEX users_username_unique ON users (lower(username))")
            .await?;
        // Emails are stored lower-case, so a plain unique index is enough.
        manager
            .create_index(
                Index::create()
                    .name("users_email_unique")
                    .table(Users::Table)
                    .col(Users::Email)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Users::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum Users {
    Table,
    Id,
    Username,
    Email,
    FirstName,
    LastName,
    PasswordHash,
    Role,
    CreatedAt,
    UpdatedAt,
}
