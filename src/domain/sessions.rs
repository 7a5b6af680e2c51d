//! Sessions: a short-lived stateless access token plus a rotating refresh token.
//!
//! A refresh token is 256 random bits, stored only as its SHA-256. Each use spends it
//! and issues a successor in the same family; presenting a spent token again means it
//! was copied, so the whole family is revoked and both holders must log in again.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, sea_query::Expr,
};

use super::{
    logins::Authenticated,
    now,
    values::{REFRESH_TOKEN_BYTES, RefreshToken},
};
use crate::entity::ids::UserId;
use crate::{
    Error, Result,
    auth::{
        TokenKeys,
        token::{digest, random_token_string},
    },
    entity::{refresh_tokens, users},
};

/// The account a session belongs to.
type User = users::Model;

/// What a login or refresh hands the client.
#[derive(Clone)]
pub struct Session {
    pub access_token: String,
    pub expires_at: DateTime<Utc>,
    pub refresh_token: String,
    pub user: User,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("user_id", &self.user.id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

const REJECTED: Error = Error::Unauthenticated("The refresh token is invalid, expired or revoked");

/// Starts a new session (a new token family) for `user`.
pub async fn start(
    db: &DatabaseConnection,
    keys: &TokenKeys,
    refresh_ttl: Duration,
    user: User,
) -> Result<Session> {
    let family = random_token_string::<16>()?;
    let _turn = super::write_turn(db).await;
    issue(db, keys, refresh_ttl, user, family).await
}

/// Starts the session of a login whose password matched, and clears the attempts the
/// login counted, in one write.
pub async fn log_in(
    db: &DatabaseConnection,
    keys: &TokenKeys,
    refresh_ttl: Duration,
    login: Authenticated,
) -> Result<Session> {
    let family = random_token_string::<16>()?;
    let (txn, _turn) = super::begin_write(db).await?;
    login.forget_attempts(&txn).await?;
    let session = issue(&txn, keys, refresh_ttl, login.user, family).await?;
    super::commit(txn).await?;
    Ok(session)
}

async fn issue(
    db: &impl ConnectionTrait,
    keys: &TokenKeys,
    refresh_ttl: Duration,
    user: User,
    family: String,
) -> Result<Session> {
    let at = now();
    let refresh_token = random_token_string::<REFRESH_TOKEN_BYTES>()?;
    refresh_tokens::ActiveModel {
        user_id: Set(user.id),
        token_hash: Set(digest(&refresh_token)),
        family: Set(family),
        expires_at: Set(at + refresh_ttl),
        created_at: Set(at),
        revoked_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?;
    let access = keys.issue(user.id, at)?;
    Ok(Session { access_token: access.token, expires_at: access.expires_at, refresh_token, user })
}

/// Spends `refresh_token` for a new session in the same family.
pub async fn refresh(
    db: &DatabaseConnection,
    keys: &TokenKeys,
    refresh_ttl: Duration,
    refresh_token: &RefreshToken,
) -> Result<Session> {
    let (txn, _turn) = super::begin_write(db).await?;
    let Some(stored) = refresh_tokens::Entity::find()
        .filter(refresh_tokens::Column::TokenHash.eq(digest(refresh_token.expose())))
        .one(&txn)
        .await?
    else {
        return Err(REJECTED);
    };
    let at = now();
    // Spend the token with one conditional UPDATE: of two concurrent refreshes with the
    // same token exactly one wins; the other is treated as reuse.
    let spent = refresh_tokens::Entity::update_many()
        .col_expr(refresh_tokens::Column::RevokedAt, Expr::value(at))
        .filter(refresh_tokens::Column::Id.eq(stored.id))
        .filter(refresh_tokens::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?;
    if spent.rows_affected == 0 {
        tracing::warn!(user_id = stored.user_id.0, "refresh token reused: revoking its family");
        revoke_family(&txn, &stored.family).await?;
        super::commit(txn).await?;
        return Err(REJECTED);
    }
    if stored.expires_at <= at {
        super::commit(txn).await?;
        return Err(REJECTED);
    }
    let Some(user) = super::unique(&txn, users::Entity::find_by_id(stored.user_id)).await? else {
        return Err(REJECTED);
    };
    let session = issue(&txn, keys, refresh_ttl, user, stored.family).await?;
    super::commit(txn).await?;
    Ok(session)
}

/// Ends the session `refresh_token` belongs to; `false` when the token is unknown.
pub async fn logout(db: &DatabaseConnection, refresh_token: &RefreshToken) -> Result<bool> {
    let stored = refresh_tokens::Entity::find()
        .filter(refresh_tokens::Column::TokenHash.eq(digest(refresh_token.expose())))
        .one(db)
        .await?;
    match stored {
        Some(stored) => {
            let _turn = super::write_turn(db).await;
            revoke_family(db, &stored.family).await?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Revokes every refresh token of `user_id` (after a password change).
pub async fn revoke_all(db: &impl ConnectionTrait, user_id: UserId) -> Result<()> {
    refresh_tokens::Entity::update_many()
        .col_expr(refresh_tokens::Column::RevokedAt, Expr::value(now()))
        .filter(refresh_tokens::Column::UserId.eq(user_id))
        .filter(refresh_tokens::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

async fn revoke_family(db: &impl ConnectionTrait, family: &str) -> Result<()> {
    refresh_tokens::Entity::update_many()
        .col_expr(refresh_tokens::Column::RevokedAt, Expr::value(now()))
        .filter(refresh_tokens::Column::Family.eq(family))
        .filter(refresh_tokens::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}
