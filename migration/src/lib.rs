//! The database schema of Triage, as an append-only list of migrations.
//!
//! A merged migration is never edited: a change to the schema is a new file, with
//! both `up` and `down`.

pub use sea_orm_migration::prelude::*;

mod m20261125_000001_create_users;
mod m20261125_000002_create_issues;
mod m20261125_000003_create_refresh_tokens;
mod m20261125_000004_create_notices;
mod m20261201_000005_create_login_attempts;
mod m20261201_000006_add_notice_claims;
mod m20261204_000007_create_projects;
mod m20261204_000008_create_invitations;
mod m20261204_000009_cover_issue_lists;

/// Every migration, oldest first.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_users::Migration),
            Box::new(m20261125_000002_create_issues::Migration),
            Box::new(m20261125_000003_create_refresh_tokens::Migration),
            Box::new(m20261125_000004_create_notices::Migration),
            Box::new(m20261201_000005_create_login_attempts::Migration),
            Box::new(m20261201_000006_add_notice_claims::Migration),
            Box::new(m20261204_000007_create_projects::Migration),
            Box::new(m20261204_000008_create_invitations::Migration),
            Box::new(m20261204_000009_cover_issue_lists::Migration),
        ]
    }
}
