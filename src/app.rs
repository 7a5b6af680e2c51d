//! The application state: the one set of services every entry point shares, built
//! once at start-up by `startup` and handed down. The GraphQL layer reads it from the
//! schema's data; the HTTP layer keeps it beside its own transport settings
//! (`http::HttpState`); the jobs get the parts they run on.

use std::time::Duration;

use sea_orm::DatabaseConnection;

use crate::{
    auth::{PasswordHasher, TokenKeys},
    config::Registration,
    domain::{change::Announce, events::IssueEvent, logins::LoginLimits, notices::Outbox},
    entity::ids::ProjectId,
    events::EventBus,
    mail::Postman,
};

/// What requests share.
#[derive(Debug)]
pub struct AppState {
    /// The requests' database pool (the jobs have one of their own, so a burst of
    /// mail cannot starve requests of connections).
    pub db: DatabaseConnection,
    /// Seals and opens access tokens.
    pub tokens: TokenKeys,
    /// Hashes and checks passwords on its own threads, a bounded number at once.
    pub hasher: PasswordHasher,
    /// How long a refresh token lasts (`TRIAGE_REFRESH_TOKEN_TTL`).
    pub refresh_token_ttl: Duration,
    /// The assignment delay, and the dispatcher's wake-up when a change commits a
    /// notice.
    pub outbox: Outbox,
    /// Carries committed issue events to subscriptions, on every replica.
    pub events: EventBus<IssueEvent>,
    /// Login throttling's limits (`TRIAGE_LOGIN_*`).
    pub logins: LoginLimits,
    /// The project issues go to when `createIssue` names none, and new accounts join
    /// (`TRIAGE_DEFAULT_PROJECT`).
    pub default_project: ProjectId,
    /// How long a deleted issue can be restored (`TRIAGE_TRASH_RETENTION`).
    pub trash_retention: Duration,
    /// Who may sign up through the API (`TRIAGE_REGISTRATION`).
    pub registration: Registration,
    /// Sends the emails a request causes at once (invitations).
    pub postman: Postman,
}

impl AppState {
    /// Where issue changes are announced.
    pub fn announce(&self) -> Announce<'_> {
        Announce { outbox: &self.outbox, events: &self.events }
    }
}
