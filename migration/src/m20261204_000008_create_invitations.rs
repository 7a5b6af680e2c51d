use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let (id, timestamp) = if manager.get_database_backend() == DbBackend::Postgres {
            ("BIGSERIAL PRIMARY KEY", "TIMESTAMPTZ")
        } else {
            ("INTEGER PRIMARY KEY AUTOINCREMENT", "TEXT")
        };
        // `token_hash` is the SHA-256 (hex) of the link's token: the token itself is
        // only ever in the email. Accepted and revoked invitations keep their rows:
        // a record of who joined through whom, and what each inviter has sent.
        db.execute_unprepared(&format!(
            "CREATE TABLE invitations (
                id {id},
                project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
                email VARCHAR(320) NOT NULL,
                role VARCHAR(16) NOT NULL,
                token_hash VARCHAR(64) NOT NULL,
                invited_by BIGINT NULL REFERENCES users (id) ON DELETE SET NULL,
                created_at {timestamp} NOT NULL,
                expires_at {timestamp} NOT NULL,
                accepted_at {timestamp} NULL,
                accepted_by BIGINT NULL REFERENCES users (id) ON DELETE SET NULL,
                revoked_at {timestamp} NULL
            )"
        ))
        .await?;
        db.execute_unprepared(
            "CREATE UNIQUE INDEX invitations_token_hash_unique ON invitations (token_hash)",
        )
        .await?;
        // A project's list, newest first; and the pending invitation to one address.
        db.execute_unprepared("CREATE INDEX invitations_project ON invitations (project_id, created_at, id)")
            .await?;
        db.execute_unprepared("CREATE INDEX invitations_project_email ON invitations (project_id, email)")
            .await?;
        // How many invitations one user sent lately.
        db.execute_unprepared("CREATE INDEX invitations_invited_by ON invitations (invited_by, created_at)")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared("DROP TABLE invitations").await?;
        Ok(())
    }
}
