//! What a resolver can reach: the application state, and who is calling.

use std::{
    net::IpAddr,
    sync::{Arc, OnceLock},
};

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
    entity::ids::UserId,
};

/// Per-request data: the caller and the request's DataLoaders (shared by the
/// operations of one batch, and made when a resolver first needs one).
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
    loaders: Arc<OnceLock<Loaders>>,
    db: DatabaseConnection,
}

/// The DataLoaders of a request.
pub struct Loaders {
    /// Users by id, cached for the request.
    pub users: DataLoader<UserLoader, HashMapCache>,
    /// Pending assignment notices by issue id.
    pub pending_notices: DataLoader<PendingNoticeLoader>,
    /// Projects by id, cached for the request.
    pub projects: DataLoader<ProjectLoader, HashMapCache>,
    /// The users whose email the caller may see, cached for the request.
    pub emails: DataLoader<EmailLoader, HashMapCache>,
}

impl std::fmt::Debug for Loaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaders").finish_non_exhaustive()
    }
}

impl Loaders {
    fn new(db: &DatabaseConnection, viewer: Option<UserId>) -> Self {
        Self {
            users: cached(UserLoader::new(db.clone())),
            pending_notices: DataLoader::new(PendingNoticeLoader::new(db.clone()), tokio::spawn),
            projects: cached(ProjectLoader::new(db.clone())),
            emails: cached(EmailLoader::new(db.clone(), viewer)),
        }
    }
}

/// A DataLoader that caches what it loaded for the request.
fn cached<T>(loader: T) -> DataLoader<T, HashMapCache> {
    DataLoader::with_cache(loader, tokio::spawn, HashMapCache::default())
}

impl RequestContext {
    pub fn new(caller: Caller, client_address: IpAddr, state: &Arc<AppState>) -> Self {
        Self {
            caller,
            client_address,
            budget: None,
            session_ends: None,
            loaders: Arc::default(),
            db: state.db.clone(),
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
        Self { session_ends: Some(session_ends), ..Self::new(caller, client_address, state) }
    }

    /// The request's DataLoaders, made on first use.
    pub fn loaders(&self) -> &Loaders {
        self.loaders.get_or_init(|| {
            let loaders = Loaders::new(&self.db, self.caller.actor().ok().map(|actor| actor.user_id));
            if self.session_ends.is_some() {
                loaders.users.enable_all_cache(false);
                loaders.projects.enable_all_cache(false);
                loaders.emails.enable_all_cache(false);
            }
            loaders
        })
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
