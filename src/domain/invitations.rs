//! Invitations: a project ADMIN invites an email address in a role; the link in the
//! email lets its holder join, signing up on the way if they have no account (even
//! when registration is by invitation only).
//!
//! The link's token is 256 random bits, stored only as its SHA-256, valid for
//! [`INVITATION_TTL`] and used once. Inviting an address again replaces its pending
//! invitation (the old link stops working). Each email goes to an address nobody
//! has shown they own, so one user sends at most [`INVITATIONS_PER_HOUR`]. The email goes out within the request,
//! after the invitation commits; if it cannot be sent, the invitation is withdrawn
//! and the caller told, so an inviter never waits for an email that is not coming:
//! `BAD_USER_INPUT` on `email` when the mail server refuses the address for good,
//! `SERVICE_UNAVAILABLE` when it may take it later.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, sea_query::Expr,
};

use super::{
    begin_write, now,
    page::{self, Keyset, Page, PageArgs, Position},
    policy::{self, Standing},
    projects::{self, Member, Project},
    users::{self, NewUser, User},
    values::{Email, InvitationToken},
};
use crate::{
    Error, Result,
    auth::{
        Actor, PasswordHasher,
        token::{digest, random_token_string},
    },
    config::Registration,
    entity::{
        ids::{InvitationId, ProjectId},
        invitations,
        project_members::ProjectRole,
    },
    mail::{Email as Outgoing, InvitationEmail, Postman, SendError},
};

pub use invitations::Model as Invitation;

/// How long an invitation's link works.
pub const INVITATION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Most invitations one user may send in an hour (revoked ones count).
pub const INVITATIONS_PER_HOUR: u64 = 50;

/// Random bytes in an invitation's token.
const TOKEN_BYTES: usize = 32;

const INVALID: &str = "The invitation is invalid, expired or used";

/// An invitation to make.
#[derive(Debug)]
pub struct NewInvitation {
    pub project: ProjectId,
    pub email: Email,
    pub role: ProjectRole,
}

/// What accepting an invitation did.
#[derive(Debug)]
pub struct Accepted {
    pub project: Project,
    pub member: Member,
    /// The account that joined (made by the acceptance, when it signed up).
    pub user: User,
}

/// Invites `new.email` into a project (ADMIN) and emails them the link. `CONFLICT`
/// when the address belongs to a member already.
pub async fn invite(
    db: &DatabaseConnection,
    postman: &Postman,
    actor: Actor,
    new: NewInvitation,
) -> Result<Invitation> {
    let token = random_token_string::<TOKEN_BYTES>()?;
    let (txn, turn) = begin_write(db).await?;
    let standing = projects::target(&txn, actor, new.project).await?;
    policy::may_manage_members(&standing)?;
    if projects::has_member_with_email(&txn, new.project, new.email.as_str()).await? {
        return Err(Error::conflict("email", "Someone with that email is a member already"));
    }
    let at = now();
    within_hourly_limit(&txn, actor, at).await?;
    invitations::Entity::update_many()
        .col_expr(invitations::Column::RevokedAt, Expr::value(at))
        .filter(invitations::Column::ProjectId.eq(new.project))
        .filter(invitations::Column::Email.eq(new.email.as_str()))
        .filter(unused())
        .exec(&txn)
        .await?;
    let invitation = invitations::ActiveModel {
        project_id: Set(new.project),
        email: Set(new.email.into_inner()),
        role: Set(new.role),
        token_hash: Set(digest(&token)),
        invited_by: Set(Some(actor.user_id)),
        created_at: Set(at),
        expires_at: Set(at + chrono::Duration::from_std(INVITATION_TTL).unwrap_or(chrono::Duration::MAX)),
        accepted_at: Set(None),
        accepted_by: Set(None),
        revoked_at: Set(None),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let inviter = policy::account_of(&txn, actor).await?;
    super::commit(txn).await?;
    drop(turn);
    let refused = match send(postman, &invitation, &standing, &inviter, &token).await {
        Ok(Ok(())) => None,
        Ok(Err(SendError::Permanent(reason))) => Some((
            reason,
            Error::bad_input("email", "The mail server refused this address; nothing was saved"),
        )),
        Ok(Err(SendError::Transient(reason))) => Some((
            reason,
            Error::Unavailable("The invitation email could not be sent, so nothing was saved; try again"),
        )),
        Err(err) => Some((err.to_string(), err)),
    };
    if let Some((reason, err)) = refused {
        tracing::warn!(invitation_id = invitation.id.0, %reason, "sending an invitation failed; withdrawn");
        withdraw(db, invitation.id).await?;
        return Err(err);
    }
    tracing::info!(invitation_id = invitation.id.0, project_id = invitation.project_id.0, "invitation sent");
    Ok(invitation)
}

/// `RATE_LIMITED` when the caller sent [`INVITATIONS_PER_HOUR`] in the hour before
/// `at`, with the seconds until the oldest of them leaves the hour.
async fn within_hourly_limit(db: &impl ConnectionTrait, actor: Actor, at: DateTime<Utc>) -> Result<()> {
    let hour_ago = at - chrono::Duration::hours(1);
    let recent: Vec<DateTime<Utc>> = invitations::Entity::find()
        .select_only()
        .column(invitations::Column::CreatedAt)
        .filter(invitations::Column::InvitedBy.eq(actor.user_id))
        .filter(invitations::Column::CreatedAt.gt(hour_ago))
        .order_by_desc(invitations::Column::CreatedAt)
        .limit(INVITATIONS_PER_HOUR)
        .into_tuple()
        .all(db)
        .await?;
    match recent.last() {
        Some(oldest) if recent.len() as u64 >= INVITATIONS_PER_HOUR => Err(Error::RateLimited {
            message: "Too many invitations sent in the last hour",
            retry_after: (*oldest - hour_ago).num_seconds().max(1) as u64,
        }),
        _ => Ok(()),
    }
}

/// Neither accepted nor revoked, as a condition on `invitations`.
fn unused() -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(invitations::Column::AcceptedAt.is_null())
        .add(invitations::Column::RevokedAt.is_null())
}

/// Emails the invitation's link; the outer error is Triage's own (a template), the
/// inner one the mail server's answer.
async fn send(
    postman: &Postman,
    invitation: &Invitation,
    standing: &Standing,
    inviter: &User,
    token: &str,
) -> Result<Result<(), SendError>> {
    let rendered = postman.templates.invitation(&InvitationEmail {
        inviter_name: users::display_name(inviter),
        project_key: standing.project.key.clone(),
        project_name: standing.project.name.clone(),
        role: sea_orm::ActiveEnum::to_value(&invitation.role),
        url: postman.link(&format!("invitations/{token}")),
        expires_at: invitation.expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
    })?;
    let email = Outgoing {
        to_address: invitation.email.clone(),
        to_name: String::new(),
        message_id: postman.message_id(&format!("invitation-{}", invitation.id)),
        rendered,
    };
    Ok(postman.mailer.send(&email).await)
}

async fn withdraw(db: &DatabaseConnection, id: InvitationId) -> Result<()> {
    let _turn = super::write_turn(db).await;
    invitations::Entity::delete_by_id(id).exec(db).await?;
    Ok(())
}

/// Withdraws a pending invitation (ADMIN): its link stops working. `CONFLICT` once it
/// has been accepted; revoking a revoked one changes nothing. A revoked invitation
/// no longer exists for the API, except in this payload.
pub async fn revoke(db: &DatabaseConnection, actor: Actor, id: InvitationId) -> Result<Invitation> {
    let (txn, _turn) = begin_write(db).await?;
    let invitation = super::unique(&txn, invitations::Entity::find_by_id(id))
        .await?
        .ok_or(Error::NotFound("Invitation"))?;
    let standing = projects::readable(&txn, actor, &projects::ProjectRef::Id(invitation.project_id))
        .await?
        .ok_or(Error::NotFound("Invitation"))?;
    policy::may_manage_members(&standing)?;
    if invitation.accepted_at.is_some() {
        return Err(Error::conflict("id", "The invitation was accepted already"));
    }
    if invitation.revoked_at.is_some() {
        return Err(Error::NotFound("Invitation"));
    }
    let mut model: invitations::ActiveModel = invitation.into();
    model.revoked_at = Set(Some(now()));
    let invitation = model.update(&txn).await?;
    super::commit(txn).await?;
    Ok(invitation)
}

/// The pending invitation a link's token names, if it is still good.
pub async fn pending(db: &impl ConnectionTrait, token: &InvitationToken) -> Result<Option<Invitation>> {
    let invitation = super::unique(
        db,
        invitations::Entity::find().filter(invitations::Column::TokenHash.eq(digest(token.expose()))),
    )
    .await?;
    Ok(invitation.filter(|invitation| is_pending(invitation, now())))
}

fn is_pending(invitation: &Invitation, at: DateTime<Utc>) -> bool {
    invitation.accepted_at.is_none() && invitation.revoked_at.is_none() && invitation.expires_at > at
}

/// The caller joins the project the token's invitation is for. The invitation must
/// be addressed to the caller's email.
pub async fn accept(db: &DatabaseConnection, actor: Actor, token: &InvitationToken) -> Result<Accepted> {
    let (txn, _turn) = begin_write(db).await?;
    let invitation = pending(&txn, token).await?.ok_or_else(|| Error::bad_input("token", INVALID))?;
    let user = policy::account_of(&txn, actor).await?;
    policy::may_accept_invitation(&invitation, &user.email)?;
    if projects::has_member_with_email(&txn, invitation.project_id, &user.email).await? {
        return Err(Error::conflict("token", "You are a member of the project already"));
    }
    let accepted = join(&txn, &invitation, user).await?;
    super::commit(txn).await?;
    Ok(accepted)
}

/// Signs `new` up and joins them to the project the token's invitation is for,
/// whatever the registration mode short of `closed`. The account's email must be
/// the one invited (`BAD_USER_INPUT` on `email` otherwise).
pub async fn accept_signing_up(
    db: &DatabaseConnection,
    hasher: &PasswordHasher,
    registration: Registration,
    token: &InvitationToken,
    new: NewUser,
) -> Result<Accepted> {
    policy::may_register(registration, true)?;
    // Checked before the slow hash, and again in the transaction.
    let invitation = pending(db, token).await?.ok_or_else(|| Error::bad_input("token", INVALID))?;
    if invitation.email != new.email.as_str() {
        return Err(Error::bad_input("email", "Sign up with the email address the invitation was sent to"));
    }
    let password_hash = hasher.hash(new.password.expose()).await?;
    let (txn, _turn) = begin_write(db).await?;
    let invitation = pending(&txn, token).await?.ok_or_else(|| Error::bad_input("token", INVALID))?;
    let user = users::insert(&txn, new, password_hash).await?;
    let accepted = join(&txn, &invitation, user).await?;
    super::commit(txn).await?;
    Ok(accepted)
}

/// Within a transaction: `user` joins in the invitation's role, and the invitation
/// is used up. Refused in an archived project.
async fn join(db: &impl ConnectionTrait, invitation: &Invitation, user: User) -> Result<Accepted> {
    let project = projects::find(db, invitation.project_id).await?.ok_or(Error::NotFound("Project"))?;
    policy::may_join(&project)?;
    let at = now();
    let used = invitations::Entity::update_many()
        .col_expr(invitations::Column::AcceptedAt, Expr::value(at))
        .col_expr(invitations::Column::AcceptedBy, Expr::value(user.id))
        .filter(invitations::Column::Id.eq(invitation.id))
        .filter(unused())
        .exec(db)
        .await?;
    if used.rows_affected == 0 {
        return Err(Error::bad_input("token", INVALID));
    }
    let member = projects::insert_member(db, project.id, user.id, invitation.role).await?;
    Ok(Accepted { project, member, user })
}

/// A page of a project's invitations, pending, expired and accepted (not revoked),
/// newest first (ADMIN).
pub async fn list(
    db: &DatabaseConnection,
    actor: Actor,
    project: Project,
    args: PageArgs,
    with_total: bool,
) -> Result<Page<Invitation>> {
    let standing = projects::standing(db, actor, project).await?;
    policy::may_see_invitations(&standing)?;
    let select = invitations::Entity::find()
        .filter(invitations::Column::ProjectId.eq(standing.project.id))
        .filter(invitations::Column::RevokedAt.is_null());
    let keyset = Keyset {
        tag: "i",
        key: Some(invitations::Column::CreatedAt),
        id: invitations::Column::Id,
        descending: true,
    };
    page::fetch(
        db,
        select,
        keyset,
        args,
        with_total,
        |select| select,
        |invitation: &Invitation| Position { key: Some(invitation.created_at), id: invitation.id.0 },
    )
    .await
}
