//! DataLoaders: the users behind `createdBy` and `assignedTo` of a whole page, its
//! issues' pending notices and projects, are fetched in one query each, not one per
//! issue.

use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::Loader;
use sea_orm::DatabaseConnection;

use crate::domain::{
    notices::{self, Notice},
    projects::{self, Project},
    users::{self, User},
};
use crate::entity::ids::{IssueId, ProjectId, UserId};

#[derive(Debug, Clone)]
pub struct UserLoader {
    db: DatabaseConnection,
}

impl UserLoader {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

impl Loader<UserId> for UserLoader {
    type Value = User;
    type Error = Arc<crate::Error>;

    async fn load(&self, keys: &[UserId]) -> Result<HashMap<UserId, User>, Self::Error> {
        let found = users::find_many(&self.db, keys).await.map_err(Arc::new)?;
        Ok(found.into_iter().map(|user| (user.id, user)).collect())
    }
}

/// The pending assignment notice of each issue of a page, in one query.
#[derive(Debug, Clone)]
pub struct PendingNoticeLoader {
    db: DatabaseConnection,
}

impl PendingNoticeLoader {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

impl Loader<IssueId> for PendingNoticeLoader {
    type Value = Notice;
    type Error = Arc<crate::Error>;

    async fn load(&self, keys: &[IssueId]) -> Result<HashMap<IssueId, Notice>, Self::Error> {
        let found = notices::pending_for_issues(&self.db, keys).await.map_err(Arc::new)?;
        Ok(found.into_iter().filter_map(|notice| Some((notice.issue_id?, notice))).collect())
    }
}

/// The projects of a page's issues, in one query.
#[derive(Debug, Clone)]
pub struct ProjectLoader {
    db: DatabaseConnection,
}

impl ProjectLoader {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

impl Loader<ProjectId> for ProjectLoader {
    type Value = Project;
    type Error = Arc<crate::Error>;

    async fn load(&self, keys: &[ProjectId]) -> Result<HashMap<ProjectId, Project>, Self::Error> {
        let found = projects::find_many(&self.db, keys.iter().copied()).await.map_err(Arc::new)?;
        Ok(found.into_iter().map(|project| (project.id, project)).collect())
    }
}

/// Which of a response's users the caller may see the email of, in one query.
#[derive(Debug, Clone)]
pub struct EmailLoader {
    db: DatabaseConnection,
    viewer: Option<UserId>,
}

impl EmailLoader {
    /// For `viewer`; an anonymous caller sees nobody's.
    pub fn new(db: DatabaseConnection, viewer: Option<UserId>) -> Self {
        Self { db, viewer }
    }
}

impl Loader<UserId> for EmailLoader {
    type Value = ();
    type Error = Arc<crate::Error>;

    async fn load(&self, keys: &[UserId]) -> Result<HashMap<UserId, ()>, Self::Error> {
        let Some(viewer) = self.viewer else { return Ok(HashMap::new()) };
        let visible = users::emails_visible(&self.db, viewer, keys).await.map_err(Arc::new)?;
        Ok(visible.into_iter().map(|id| (id, ())).collect())
    }
}
