//! What a resolver can reach: the shared services, and who is calling.

use std::{net::IpAddr, sync::Arc, time::Duration};

use async_graphql::{
    Context,
    dataloader::{DataLoader, HashMapCache},
};
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;

use super::loader::{PendingNoticeLoader, UserLoader};
use crate::{
    Error, Result,
    auth::{Actor, Caller, PasswordHasher, TokenKeys},
    domain::{issues::Announce, logins::LoginLimits, notices::Outbox},
    events::EventBus,
};

/// The services every request shares; built once at start-up.
#[derive(Debug)]
pub struct ServiceState {
    pub db: DatabaseConnection,
    pub tokens: TokenKeys,
    pub hasher: PasswordHasher,
    pub refresh_token_ttl: Duration,
    pub outbox: Outbox,
    pub events: EventBus,
    /// Login throttling's limits.
    pub logins: LoginLimits,
}

impl ServiceState {
    /// Where issue changes are announced.
    pub fn announce(&self) -> Announce<'_> {
        Announce { outbox: &self.outbox, events: &self.events }
    }
}

/// Per-request data: the caller and the request's DataLoaders (shared by the
/// operations of one batch).
#[derive(Clone)]
pub struct RequestContext {
    pub caller: Caller,
    /// The address the request came from (the TCP peer), for login throttling;
    /// `None` where the transport did not say.
    pub client_ip: Option<IpAddr>,
    /// When the caller's access token expires, for a subscription's connection;
    /// `None` for one HTTP request.
    pub session_ends: Option<DateTime<Utc>>,
    /// Users by id, cached for the request.
    pub users: Arc<DataLoader<UserLoader, HashMapCache>>,
    /// Pending assignment notices by issue id.
    pub pending_notices: Arc<DataLoader<PendingNoticeLoader>>,
}

impl RequestContext {
    pub fn new(caller: Caller, state: &Arc<ServiceState>) -> Self {
        let loader =
            DataLoader::with_cache(UserLoader::new(state.db.clone()), tokio::spawn, HashMapCache::default());
        let pending_notices = DataLoader::new(PendingNoticeLoader::new(state.db.clone()), tokio::spawn);
        Self {
            caller,
            client_ip: None,
            session_ends: None,
            users: Arc::new(loader),
            pending_notices: Arc::new(pending_notices),
        }
    }

    /// The same context, for a request from `client_ip`.
    pub fn with_client_ip(self, client_ip: Option<IpAddr>) -> Self {
        Self { client_ip, ..self }
    }

    /// The context of a subscription's connection, which lasts until `session_ends`:
    /// nothing is cached, so every event shows people as they are now.
    pub fn for_connection(caller: Caller, session_ends: DateTime<Utc>, state: &Arc<ServiceState>) -> Self {
        let context = Self { session_ends: Some(session_ends), ..Self::new(caller, state) };
        context.users.enable_all_cache(false);
        context
    }
}

impl std::fmt::Debug for RequestContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestContext")
            .field("caller", &self.caller)
            .field("client_ip", &self.client_ip)
            .finish_non_exhaustive()
    }
}

/// Typed access to the schema and request data, with errors instead of panics.
pub(crate) trait ContextExt {
    fn state(&self) -> Result<&Arc<ServiceState>>;
    fn request(&self) -> Result<&RequestContext>;
    /// The authenticated caller, or `UNAUTHENTICATED`.
    fn actor(&self) -> Result<Actor>;
    fn db(&self) -> Result<&DatabaseConnection> {
        Ok(&self.state()?.db)
    }
}

impl ContextExt for Context<'_> {
    fn state(&self) -> Result<&Arc<ServiceState>> {
        self.data::<Arc<ServiceState>>().map_err(|_| Error::internal("service state missing from the schema"))
    }

    fn request(&self) -> Result<&RequestContext> {
        self.data::<RequestContext>().map_err(|_| Error::internal("request context missing from the request"))
    }

    fn actor(&self) -> Result<Actor> {
        self.request()?.caller.actor()
    }
}
