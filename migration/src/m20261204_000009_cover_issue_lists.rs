use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The issue lists' indexes (old name, new name, the columns each orders by): a list
/// by creation or update time, within its filter column. Since projects, a list and
/// its `totalCount` also read every row's `deleted_at` and `project_id` (the trash
/// and the visibility rule); carried in the index, the count reads the index alone
/// instead of the table row by row.
///
/// Each new index gets a new name and is made before the old one is dropped, so no
/// list is without one in between.
const INDEXES: [(&str, &str, &str); 6] = [
    ("issues_created_at", "issues_list_created", "created_at, id"),
    ("issues_updated_at", "issues_list_updated", "updated_at, id"),
    ("issues_assigned_to", "issues_list_assignee", "assigned_to, created_at, id"),
    ("issues_created_by", "issues_list_creator", "created_by, created_at, id"),
    ("issues_status", "issues_list_status", "status, created_at, id"),
    ("issues_project", "issues_list_project", "project_id, created_at, id"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (old, new, ordered) in INDEXES {
            let carried =
                if ordered.starts_with("project_id") { "deleted_at" } else { "deleted_at, project_id" };
            db.execute_unprepared(&format!("CREATE INDEX {new} ON issues ({ordered}, {carried})")).await?;
            db.execute_unprepared(&format!("DROP INDEX {old}")).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (old, new, ordered) in INDEXES {
            db.execute_unprepared(&format!("CREATE INDEX {old} ON issues ({ordered})")).await?;
            db.execute_unprepared(&format!("DROP INDEX {new}")).await?;
        }
        Ok(())
    }
}
