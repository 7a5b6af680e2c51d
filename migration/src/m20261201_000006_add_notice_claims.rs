use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The claim that holds a notice's lease: set by each claiming UPDATE, and
        // required by every outcome UPDATE, so a sender whose lease ran out and whose
        // notice was claimed again cannot overwrite the newer claim's outcome.
        manager
            .alter_table(
                Table::alter()
                    .table(Notices::Table)
                    .add_column(string_len_null(Notices::ClaimToken, 64))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(Notices::Table).drop_column(Notices::ClaimToken).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Notices {
    Table,
    ClaimToken,
}
