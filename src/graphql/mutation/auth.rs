use async_graphql::{Context, InputObject, Object};

use crate::{
    Result,
    domain::{
        self,
        users::NewUser,
        values::{Email, LoginName, Password, PasswordAttempt, PersonName, RefreshToken, Username},
    },
    entity::users::Role,
    graphql::{
        context::ContextExt as _,
        types::{AuthPayload, LogoutPayload},
    },
};

#[derive(InputObject)]
pub struct RegisterInput {
    pub email: String,
    /// 3 to 39 letters, digits, `-` or `_`; unique without regard to case.
    pub username: String,
    /// At least 8 characters, at most 1024 bytes.
    pub password: String,
    pub first_name: String,
    pub last_name: String,
}

#[derive(InputObject)]
pub struct LoginInput {
    /// The username, or the email address; at most 320 characters.
    pub username: String,
    /// At most 1024 bytes.
    pub password: String,
}

#[derive(InputObject)]
pub struct RefreshTokenInput {
    pub refresh_token: String,
}

#[derive(InputObject)]
pub struct LogoutInput {
    pub refresh_token: String,
}

/// Inputs that carry a password or a token print without it.
macro_rules! redacted_debug {
    ($($input:ident { $($shown:ident),* }),* $(,)?) => {$(
        impl std::fmt::Debug for $input {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($input))$(.field(stringify!($shown), &self.$shown))*.finish_non_exhaustive()
            }
        }
    )*};
}
pub(crate) use redacted_debug;

redacted_debug!(
    RegisterInput { email, username, first_name, last_name },
    LoginInput { username },
    RefreshTokenInput {},
    LogoutInput {},
);

/// The account a registration asks for, parsed.
pub(super) fn new_user(input: RegisterInput) -> Result<NewUser> {
    Ok(NewUser {
        username: Username::parse(input.username)?,
        email: Email::parse(input.email)?,
        first_name: PersonName::parse(input.first_name, "firstName")?,
        last_name: PersonName::parse(input.last_name, "lastName")?,
        password: Password::parse(input.password)?,
        role: Role::Member,
    })
}

#[derive(Debug, Default)]
pub struct AuthMutation;

/// Sessions. These four need no access token.
#[Object]
impl AuthMutation {
    /// Creates an account and logs it in.
    /// `FORBIDDEN` unless registration is open (`TRIAGE_REGISTRATION`); under
    /// `invite`, sign up with `acceptInvitation` instead.
    async fn register(&self, ctx: &Context<'_>, input: RegisterInput) -> Result<AuthPayload> {
        let state = ctx.state()?;
        domain::policy::may_register(state.registration, false)?;
        let new = new_user(input)?;
        let joins =
            domain::policy::joins_default_project(state.registration).then_some(state.default_project);
        let user = domain::users::register(&state.db, &state.hasher, new, joins).await?;
        tracing::info!(user_id = user.id.0, "user registered");
        let session =
            domain::sessions::start(&state.db, &state.tokens, state.refresh_token_ttl, user).await?;
        Ok(session.into())
    }

    /// Logs in with a username (or email) and password. Attempts on one account are
    /// limited per client address and in all, within a window: beyond that the
    /// answer is `RATE_LIMITED`, with `retryAfter` seconds.
    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> Result<AuthPayload> {
        let login = LoginName::parse(input.username, "username")?;
        let password = PasswordAttempt::parse(input.password, "password")?;
        let state = ctx.state()?;
        let client = Some(ctx.request()?.client_address);
        let authenticated =
            domain::users::authenticate(&state.db, &state.hasher, &state.logins, &login, &password, client)
                .await?;
        let session =
            domain::sessions::log_in(&state.db, &state.tokens, state.refresh_token_ttl, authenticated)
                .await?;
        Ok(session.into())
    }

    /// Spends a refresh token for a new session. Presenting a spent one again revokes
    /// every token descended from the same login.
    async fn refresh_token(&self, ctx: &Context<'_>, input: RefreshTokenInput) -> Result<AuthPayload> {
        let token = RefreshToken::parse(input.refresh_token)?;
        let state = ctx.state()?;
        let session =
            domain::sessions::refresh(&state.db, &state.tokens, state.refresh_token_ttl, &token).await?;
        Ok(session.into())
    }

    /// Ends the session a refresh token belongs to. Access tokens already issued stay
    /// valid until they expire: they are stateless.
    async fn logout(&self, ctx: &Context<'_>, input: LogoutInput) -> Result<LogoutPayload> {
        let token = RefreshToken::parse(input.refresh_token)?;
        let success = domain::sessions::logout(ctx.db()?, &token).await?;
        Ok(LogoutPayload { success })
    }
}
