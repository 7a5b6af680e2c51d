use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The project a database filled by an earlier release moves its issues into. On an
/// empty database nothing is made here: the server makes its default project at
/// start-up (`TRIAGE_DEFAULT_PROJECT`), whatever key it is given.
const DEFAULT_KEY: &str = "TRIAGE";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let postgres = manager.get_database_backend() == DbBackend::Postgres;
        let (id, timestamp) = if postgres {
            ("BIGSERIAL PRIMARY KEY", "TIMESTAMPTZ")
        } else {
            ("INTEGER PRIMARY KEY AUTOINCREMENT", "TEXT")
        };
        // `next_number` is the number the project's next issue gets: numbers are
        // handed out by incrementing it in the transaction, so one is never
        // given twice, nor again after its issue is deleted.
        db.execute_unprepared(&format!(
            "CREATE TABLE projects (
                id {id},
                key VARCHAR(10) NOT NULL,
                name VARCHAR(128) NOT NULL,
                description TEXT NOT NULL,
                visibility VARCHAR(16) NOT NULL,
                created_by BIGINT NULL REFERENCES users (id) ON DELETE SET NULL,
                next_number BIGINT NOT NULL DEFAULT 1,
                created_at {timestamp} NOT NULL,
                updated_at {timestamp} NOT NULL,
                archived_at {timestamp} NULL
            )"
        ))
        .await?;
        db.execute_unprepared("CREATE UNIQUE INDEX projects_key_unique ON projects (key)").await?;
        db.execute_unprepared(&format!(
            "CREATE TABLE project_members (
                project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
                user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                role VARCHAR(16) NOT NULL,
                added_at {timestamp} NOT NULL,
                PRIMARY KEY (project_id, user_id)
            )"
        ))
        .await?;
        // The visibility rule of every issue list asks "is the caller a member?" by
        // user first.
        db.execute_unprepared("CREATE INDEX project_members_user ON project_members (user_id, project_id)")
            .await?;

        // SQLite adds a column with a REFERENCES clause only as nullable, and drops
        // such a column only by rebuilding the table; projects are never deleted
        // (they are archived), so on SQLite the reference is the application's to keep.
        let project_reference = if postgres { " REFERENCES projects (id) ON DELETE CASCADE" } else { "" };
        for column in [
            format!("project_id BIGINT NULL{project_reference}"),
            "number BIGINT NULL".to_owned(),
            "kind VARCHAR(16) NOT NULL DEFAULT 'TASK'".to_owned(),
            format!("deleted_at {timestamp} NULL"),
        ] {
            db.execute_unprepared(&format!("ALTER TABLE issues ADD COLUMN {column}")).await?;
        }

        // A database an earlier release filled: its issues move into the default
        // project, numbered in creation order, and every user becomes a MEMBER (from
        // when they registered).
        db.execute_unprepared(&format!(
            "INSERT INTO projects (key, name, description, visibility, created_by, created_at, updated_at)
             SELECT '{DEFAULT_KEY}', 'General', '', 'PUBLIC', NULL, first.at, first.at
             FROM (SELECT min(created_at) AS at FROM users) AS first WHERE first.at IS NOT NULL"
        ))
        .await?;
        db.execute_unprepared(&format!(
            "UPDATE issues SET project_id = (SELECT id FROM projects WHERE key = '{DEFAULT_KEY}'), number = ordered.n
             FROM (SELECT id, row_number() OVER (ORDER BY created_at, id) AS n FROM issues) AS ordered
             WHERE issues.id = ordered.id"
        ))
        .await?;
        db.execute_unprepared(&format!(
            "UPDATE projects SET next_number = (SELECT count(*) FROM issues) + 1 WHERE key = '{DEFAULT_KEY}'"
        ))
        .await?;
        db.execute_unprepared(&format!(
            "INSERT INTO project_members (project_id, user_id, role, added_at)
             SELECT projects.id, users.id, 'MEMBER', users.created_at FROM projects, users
             WHERE projects.key = '{DEFAULT_KEY}'"
        ))
        .await?;
        if postgres {
            db.execute_unprepared(
                "ALTER TABLE issues ALTER COLUMN project_id SET NOT NULL, ALTER COLUMN number SET NOT NULL",
            )
            .await?;
        }

        // Issue keys (`WEB-42`) name one issue; lists by project page on the second.
        db.execute_unprepared("CREATE UNIQUE INDEX issues_project_number ON issues (project_id, number)")
            .await?;
        db.execute_unprepared("CREATE INDEX issues_project ON issues (project_id, created_at, id)").await?;
        // The trash purge reads the oldest deleted issues.
        db.execute_unprepared("CREATE INDEX issues_deleted_at ON issues (deleted_at)").await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        // Issues in the trash are gone for good, as the previous release had them.
        db.execute_unprepared("DELETE FROM issues WHERE deleted_at IS NOT NULL").await?;
        for index in ["issues_deleted_at", "issues_project", "issues_project_number"] {
            db.execute_unprepared(&format!("DROP INDEX {index}")).await?;
        }
        for column in ["deleted_at", "kind", "number", "project_id"] {
            db.execute_unprepared(&format!("ALTER TABLE issues DROP COLUMN {column}")).await?;
        }
        db.execute_unprepared("DROP TABLE project_members").await?;
        db.execute_unprepared("DROP TABLE projects").await?;
        Ok(())
    }
}
