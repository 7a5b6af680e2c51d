//! sea-orm entities, one per table. `migration/` owns the schema; these mirror it
//! column for column and carry no rules of their own.

pub mod ids;
pub mod invitations;
pub mod issues;
pub mod login_attempts;
pub mod notices;
pub mod project_members;
pub mod projects;
pub mod refresh_tokens;
pub mod users;
