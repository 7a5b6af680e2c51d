//! DataLoaders: the users behind `createdBy` and `assignedTo` of a whole page are
//! fetched in one query, not one per issue.

use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::Loader;
use sea_orm::DatabaseConnection;

use crate::domain::users::{self, User};

#[derive(Debug, Clone)]
pub struct UserLoader {
    db: DatabaseConnection,
}

impl UserLoader {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

impl Loader<i64> for UserLoader {
    type Value = User;
    type Error = Arc<crate::Error>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, User>, Self::Error> {
        let found = users::find_many(&self.db, keys).await.map_err(Arc::new)?;
        Ok(found.into_iter().map(|user| (user.id, user)).collect())
    }
}
