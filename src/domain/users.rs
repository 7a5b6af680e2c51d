//! Accounts: registration, login, profile changes and the user directory.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryResult,
    QuerySelect,
    sea_query::{Condition, Expr, ExprTrait as _, Func},
};

use super::{
    logins::{self, Authenticated, LoginLimits, LoginSubject},
    now,
    page::{self, Keyset, Page, PageArgs, Position},
    policy,
    values::{Email, LoginName, Password, PasswordAttempt, PersonName, SearchText, Username},
};
use crate::entity::ids::{ProjectId, UserId};
use crate::{
    Error, Result,
    auth::{Actor, PasswordHasher},
    entity::{
        project_members::ProjectRole,
        users::{self, Role},
    },
};

pub use users::Model as User;

/// What others see of an account: no password hash, no role. Lists read just these
/// columns of the people they join (see [`Profile::COLUMNS`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub id: UserId,
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub created_at: DateTime<Utc>,
}

impl Profile {
    /// The columns of `users` a profile is read from, in the order
    /// [`Profile::read_at`] reads them.
    pub const COLUMNS: [users::Column; 6] = [
        users::Column::Id,
        users::Column::Username,
        users::Column::Email,
        users::Column::FirstName,
        users::Column::LastName,
        users::Column::CreatedAt,
    ];

    /// The profile in the [`Profile::COLUMNS`] of `row` from position `first` on;
    /// `None` when its id is null (an outer join that found nobody). Read by
    /// position: by name, every column of every row would cost a lookup and, for an
    /// aliased column, a formatted name.
    pub fn read_at(row: &QueryResult, first: usize) -> std::result::Result<Option<Self>, DbErr> {
        let Some(id) = row.try_get_by_index::<Option<UserId>>(first)? else { return Ok(None) };
        Ok(Some(Self {
            id,
            username: row.try_get_by_index(first + 1)?,
            email: row.try_get_by_index(first + 2)?,
            first_name: row.try_get_by_index(first + 3)?,
            last_name: row.try_get_by_index(first + 4)?,
            created_at: row.try_get_by_index(first + 5)?,
        }))
    }
}

impl From<User> for Profile {
    fn from(user: User) -> Self {
        let User { id, username, email, first_name, last_name, created_at, .. } = user;
        Self { id, username, email, first_name, last_name, created_at }
    }
}

/// How the databases name a clash on each unique index of `users` (PostgreSQL names
/// the index, SQLite the index or the column), with the input field and message.
const UNIQUE_INDEXES: &[(&str, &str, &str)] = &[
    ("users_username_unique", "username", "That username is taken"),
    ("users_email_unique", "email", "That email is already registered"),
    ("users.email", "email", "That email is already registered"),
];

/// A registration, parsed.
#[derive(Debug)]
pub struct NewUser {
    pub username: Username,
    pub email: Email,
    pub first_name: PersonName,
    pub last_name: PersonName,
    pub password: Password,
    pub role: Role,
}

/// A profile change; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct ProfileChanges {
    pub username: Option<Username>,
    pub email: Option<Email>,
    pub first_name: Option<PersonName>,
    pub last_name: Option<PersonName>,
    pub password: Option<Password>,
    /// Required, and checked, when `password` is given.
    pub current_password: Option<PasswordAttempt>,
}

/// Creates an account; it joins the project `joins` as MEMBER, if given (the
/// default project, under open registration).
pub async fn register(
    db: &DatabaseConnection,
    hasher: &PasswordHasher,
    new: NewUser,
    joins: Option<ProjectId>,
) -> Result<User> {
    // The hash is computed first: nobody waits for it.
    let password_hash = hasher.hash(new.password.expose()).await?;
    let (txn, _turn) = super::begin_write(db).await?;
    let user = insert(&txn, new, password_hash).await?;
    if let Some(project) = joins {
        super::projects::insert_member(&txn, project, user.id, ProjectRole::Member).await?;
    }
    super::commit(txn).await?;
    Ok(user)
}

/// Within a transaction, writes the account `new` with its password already hashed.
pub(super) async fn insert(db: &impl ConnectionTrait, new: NewUser, password_hash: String) -> Result<User> {
    let at = now();
    users::ActiveModel {
        username: Set(new.username.into_inner()),
        email: Set(new.email.into_inner()),
        first_name: Set(new.first_name.into_inner()),
        last_name: Set(new.last_name.into_inner()),
        password_hash: Set(password_hash),
        role: Set(new.role),
        created_at: Set(at),
        updated_at: Set(at),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(|err| Error::on_unique_violation(err, UNIQUE_INDEXES))
}

/// The user a login names, by username (any case) or email, if the password matches.
/// A wrong password and an unknown user get the same error after the same work.
/// Once a hashing thread is free (else `RATE_LIMITED` at once, uncounted), and
/// before any hashing, the attempt is counted against the account (known or not)
/// from `client` and from anywhere, and refused with `RATE_LIMITED` when either count
/// is used up (see [`super::logins`]); the session a success starts clears both.
pub async fn authenticate(
    db: &DatabaseConnection,
    hasher: &PasswordHasher,
    limits: &LoginLimits,
    login: &LoginName,
    password: &PasswordAttempt,
    client: Option<IpAddr>,
) -> Result<Authenticated> {
    // The user is looked up while the login waits for a hashing thread. A login shed
    // for want of one is not counted as an attempt.
    let (user, turn) = tokio::join!(find_by_login(db, login), hasher.turn());
    let (user, turn) = (user?, turn?);
    let subject = LoginSubject::of(user.as_ref(), login);
    logins::reserve(db, limits, &subject, client).await?;
    let verified = turn.verify(user.as_ref().map(|u| u.password_hash.as_str()), password.expose()).await?;
    match user {
        Some(user) if verified => Ok(Authenticated::new(user, subject, client)),
        _ => {
            tracing::warn!(account = %subject, client = ?client, "login failed: wrong username or password");
            Err(Error::Unauthenticated("Invalid username or password"))
        }
    }
}

/// Clears a subject's attempt counts after a correct current password. A failure here
/// must not turn the correct password away: it is logged, and the counts expire anyway.
async fn forget_attempts(db: &DatabaseConnection, subject: &LoginSubject, client: Option<IpAddr>) {
    let _turn = super::write_turn(db).await;
    if let Err(err) = logins::clear(db, subject, client).await {
        tracing::error!(account = %subject, error = %err, "clearing login attempt counts failed");
    }
}

async fn find_by_login(db: &impl ConnectionTrait, login: &LoginName) -> Result<Option<User>> {
    let login = login.normalized();
    let condition = if login.contains('@') {
        users::Column::Email.eq(login)
    } else {
        Expr::expr(Func::lower(Expr::col(users::Column::Username))).eq(login)
    };
    Ok(users::Entity::find().filter(condition).one(db).await?)
}

/// Applies `changes` to the caller's own account. A new password ends every session
/// (refresh token) the account had.
///
/// Checking `currentPassword` counts as a login attempt on the account from
/// `client`, throttled the same way, so a stolen access token cannot be used to
/// guess the password.
pub async fn update_profile(
    db: &DatabaseConnection,
    hasher: &PasswordHasher,
    limits: &LoginLimits,
    actor: Actor,
    changes: ProfileChanges,
    client: Option<IpAddr>,
) -> Result<User> {
    let user = policy::account_of(db, actor).await?;
    let mut model: users::ActiveModel = user.clone().into();
    if let Some(password) = &changes.password {
        let current = changes.current_password.as_ref().ok_or_else(|| {
            Error::bad_input("currentPassword", "The current password is required to change it")
        })?;
        let subject = LoginSubject::User(user.id);
        let turn = hasher.turn().await?;
        logins::reserve(db, limits, &subject, client).await?;
        if !turn.verify(Some(&user.password_hash), current.expose()).await? {
            tracing::warn!(account = %subject, client = ?client, "updateMe: wrong current password");
            return Err(Error::bad_input("currentPassword", "The current password is wrong"));
        }
        forget_attempts(db, &subject, client).await;
        model.password_hash = Set(hasher.hash(password.expose()).await?);
    }
    if let Some(username) = changes.username {
        model.username = Set(username.into_inner());
    }
    if let Some(email) = changes.email {
        model.email = Set(email.into_inner());
    }
    if let Some(first_name) = changes.first_name {
        model.first_name = Set(first_name.into_inner());
    }
    if let Some(last_name) = changes.last_name {
        model.last_name = Set(last_name.into_inner());
    }
    model.updated_at = Set(now());
    let (txn, _turn) = super::begin_write(db).await?;
    let user = model.update(&txn).await.map_err(|err| Error::on_unique_violation(err, UNIQUE_INDEXES))?;
    if changes.password.is_some() {
        super::sessions::revoke_all(&txn, user.id).await?;
    }
    super::commit(txn).await?;
    Ok(user)
}

/// The user with `id`, if any.
pub async fn find(db: &impl ConnectionTrait, id: UserId) -> Result<Option<User>> {
    super::unique(db, users::Entity::find_by_id(id)).await
}

/// The users with these ids (any that exist), in no particular order.
pub async fn find_many(db: &impl ConnectionTrait, ids: &[UserId]) -> Result<Vec<User>> {
    Ok(users::Entity::find().filter(users::Column::Id.is_in(ids.iter().copied())).all(db).await?)
}

/// The accounts among `ids` whose email `viewer` may see ([`policy::email_visible_to`]).
pub async fn emails_visible(
    db: &impl ConnectionTrait,
    viewer: UserId,
    ids: &[UserId],
) -> Result<Vec<UserId>> {
    Ok(users::Entity::find()
        .select_only()
        .column(users::Column::Id)
        .filter(users::Column::Id.is_in(ids.iter().copied()))
        .filter(policy::email_visible_to(viewer))
        .into_tuple()
        .all(db)
        .await?)
}

/// The directory, oldest account first, optionally narrowed by `search` (a
/// case-insensitive match on username, first or last name, or on the email where
/// `viewer` may see it).
pub async fn list(
    db: &DatabaseConnection,
    viewer: Actor,
    search: Option<&SearchText>,
    args: PageArgs,
    with_total: bool,
) -> Result<Page<User>> {
    let mut select = users::Entity::find();
    if let Some(pattern) = search.map(SearchText::contains_pattern) {
        let mut any = Condition::any();
        for column in [users::Column::Username, users::Column::FirstName, users::Column::LastName] {
            any = any.add(Expr::expr(Func::lower(Expr::col(column))).like(pattern.clone()));
        }
        let email = Condition::all()
            .add(Expr::expr(Func::lower(Expr::col(users::Column::Email))).like(pattern))
            .add(policy::email_visible_to(viewer.user_id));
        select = select.filter(any.add(email));
    }
    let keyset = Keyset { tag: "u", key: None, id: users::Column::Id, descending: false };
    page::fetch(
        db,
        select,
        keyset,
        args,
        with_total,
        |select| select,
        |user: &User| Position { key: None, id: user.id.0 },
    )
    .await
}

/// How emails address someone: their full name, or their username when they gave
/// none.
pub fn display_name(user: &User) -> String {
    let name = format!("{} {}", user.first_name, user.last_name);
    let name = name.trim();
    if name.is_empty() { user.username.clone() } else { name.to_owned() }
}
