use sea_orm_migration::{prelude::*, schema::*};

use crate::{m20261125_000001_create_users::Users, m20261125_000002_create_issues::Issues};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Notices::Table)
                    .col(big_pk_auto(Notices::Id))
                    // `assignment` or `digest`.
                    .col(string_len(Notices::Kind, 16))
                    // Kept (as null) when the issue is deleted, so the history stays.
                    .col(big_integer_null(Notices::IssueId))
                    .col(big_integer(Notices::RecipientId))
                    // Who made the change that caused the notice.
                    .col(big_integer_null(Notices::ActorId))
                    // One notice per key: a digest period per user is enqueued once,
                    // however many replicas or retries try.
                    .col(string_len_null(Notices::DedupeKey, 128))
                    .col(timestamp_with_time_zone(Notices::DueAt))
                    // `pending`, `sent`, `cancelled` or `failed`.
                    .col(string_len(Notices::State, 16))
                    .col(integer(Notices::Attempts).default(0))
                    .col(text_null(Notices::LastError))
                    // A sender holds a notice until this time; one whose lease ran out
                    // (its sender died) may be claimed again.
                    .col(timestamp_with_time_zone_null(Notices::LeaseUntil))
                    .col(timestamp_with_time_zone_null(Notices::SentAt))
                    .col(timestamp_with_time_zone(Notices::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("notices_issue_id_fkey")
                            .from(Notices::Table, Notices::IssueId)
                            .to(Issues::Table, Issues::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("notices_recipient_id_fkey")
                            .from(Notices::Table, Notices::RecipientId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("notices_actor_id_fkey")
                            .from(Notices::Table, Notices::ActorId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("notices_dedupe_key_unique")
                    .table(Notices::Table)
                    .col(Notices::DedupeKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // The dispatcher's query: pending notices by due time.
        manager
            .create_index(
                Index::create()
                    .name("notices_state_due_at")
                    .table(Notices::Table)
                    .col(Notices::State)
                    .col(Notices::DueAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("notices_issue_id_state")
                    .table(Notices::Table)
                    .col(Notices::IssueId)
                    .col(Notices::State)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Notices::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Notices {
    Table,
    Id,
    Kind,
    IssueId,
    RecipientId,
    ActorId,
    DedupeKey,
    DueAt,
    State,
    Attempts,
    LastError,
    LeaseUntil,
    SentAt,
    CreatedAt,
}
