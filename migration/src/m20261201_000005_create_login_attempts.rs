use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Login throttling counts, in the database so every replica shares them. A
        // row is a counter: an account (`account:<user id or name>`) or an account
        // from one client address (`client:<ip>:<user id or name>`), with the
        // attempts counted since its window started. Rows are upserted before a
        // password is hashed and deleted by a successful login.
        manager
            .create_table(
                Table::create()
                    .table(LoginAttempts::Table)
                    .col(text(LoginAttempts::Key).primary_key())
                    .col(integer(LoginAttempts::Attempts))
                    .col(timestamp_with_time_zone(LoginAttempts::WindowStartedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(LoginAttempts::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum LoginAttempts {
    Table,
    Key,
    Attempts,
    WindowStartedAt,
}
