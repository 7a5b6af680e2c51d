//! What a resolver can reach: the application state, and who is calling.

use std::{net::IpAddr, sync::Arc};

use async_graphql::{
    Context,
    dataloader::{DataLoader, HashMapCache},
};
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;

use super::{
    budget::BudgetStatus,
    loader::{EmailLoader, PendingNoticeLoader, ProjectLoader, UserLoader},
};
use crate::{
    Error, Result,
    app::AppState,
    auth::{Actor, Caller},
};

/// Per-request data: the caller and the request's DataLoaders (shared by the
/// operations of one batch).
#[derive(Clone)]
pub struct RequestContext {
    pub caller: Caller,
    /// The client's address (behind trusted proxies, the one they forward).
    pub client_address: IpAddr,
    /// The caller's rate budget after this request was charged; `None` when rate
    /// limits are off.
    pub budget: Option<BudgetStatus>,
    /// When the caller's access token expires, for a subscription's connection;
    /// `None` for one HTTP request.
    pub session_ends: Option<DateTime<Utc>>,
    /// Users by id, cached for the request.
    pub users: Arc<DataLoader<UserLoader, HashMapCache>>,
    /// Pending assignment notices by issue id.
    pub pending_notices: Arc<DataLoader<PendingNoticeLoader>>,
    /// Projects by id, cached for the request.
    pub projects: Arc<DataLoader<ProjectLoader, HashMapCache>>,
    /// The users whose email the caller may see, cached for the request.
    pub emails: Arc<DataLoader<EmailLoader, HashMapCache>>,
}

impl RequestContext {
    pub fn new(caller: Caller, client_address: IpAddr, state: &Arc<AppState>) -> Self {
        let loader =
            DataLoader::with_cache(UserLoader::new(state.db.clone()), tokio::spawn, HashMapCache::default());
        let pending_notices = DataLoader::new(PendingNoticeLoader::new(state.db.clone()), tokio::spawn);
        let projects = DataLoader::with_cache(
            ProjectLoader::new(state.db.clone()),
            tokio::spawn,
            HashMapCache::default(),
        );
        let viewer = caller.actor().ok().map(|actor| actor.user_id);
        let emails = DataLoader::with_cache(
            EmailLoader::new(state.db.clone(), viewer),
            tokio::spawn,
            HashMapCache::default(),
        );
        Self {
            caller,
            client_address,
            budget: None,
            session_ends: None,
            users: Arc::new(loader),
            pending_notices: Arc::new(pending_notices),
            projects: Arc::new(projects),
            emails: Arc::new(emails),
        }
    }

    /// The context of a subscription's connection, which lasts until `session_ends`:
    /// nothing is cached, so every event shows people as they are now.
    pub fn for_connection(
        caller: Caller,
        client_address: IpAddr,
        session_ends: DateTime<Utc>,
        state: &Arc<AppState>,
    ) -> Self {
        let context = Self { session_ends: Some(session_ends), ..Self::new(caller, client_address, state) };
        context.users.enable_all_cache(false);
        context.projects.enable_all_cache(false);
        context.emails.enable_all_cache(false);
        context
    }
}

impl std::fmt::Debug for RequestContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestContext")
            .field("caller", &self.caller)
            .field("client_address", &self.client_address)
            .finish_non_exhaustive()
    }
}

/// Typed access to the schema and request data, with errors instead of panics.
pub(crate) trait ContextExt {
    fn state(&self) -> Result<&Arc<AppState>>;
    fn request(&self) -> Result<&RequestContext>;
    /// The authenticated caller, or `UNAUTHENTICATED`.
    fn actor(&self) -> Result<Actor>;
    fn db(&self) -> Result<&DatabaseConnection> {
        Ok(&self.state()?.db)
    }
}

impl ContextExt for Context<'_> {
    fn state(&self) -> Result<&Arc<AppState>> {
        self.data::<Arc<AppState>>().map_err(|_| Error::internal("service state missing from the schema"))
    }

    fn request(&self) -> Result<&RequestContext> {
        self.data::<RequestContext>().map_err(|_| Error::internal("request context missing from the request"))
    }

    fn actor(&self) -> Result<Actor> {
        self.request()?.caller.actor()
    }
}
