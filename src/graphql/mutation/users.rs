use async_graphql::{Context, InputObject, Object};

use crate::{
    Result,
    domain::{
        self,
        users::ProfileChanges,
        values::{Email, Password, PasswordAttempt, PersonName, Username},
    },
    graphql::{
        context::ContextExt as _,
        types::{UpdateMePayload, User},
    },
};

/// Every field is optional; those left out stay as they are.
#[derive(InputObject)]
pub struct UpdateMeInput {
    pub email: Option<String>,
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// A new password; needs `currentPassword`.
    pub password: Option<String>,
    pub current_password: Option<String>,
}

super::auth::redacted_debug!(UpdateMeInput { email, username, first_name, last_name });

#[derive(Debug, Default)]
pub struct UserMutation;

#[Object]
impl UserMutation {
    /// Changes the caller's own account.
    async fn update_me(&self, ctx: &Context<'_>, input: UpdateMeInput) -> Result<UpdateMePayload> {
        let actor = ctx.actor()?;
        let changes = ProfileChanges {
            username: input.username.map(Username::parse).transpose()?,
            email: input.email.map(Email::parse).transpose()?,
            first_name: input.first_name.map(|n| PersonName::parse(n, "firstName")).transpose()?,
            last_name: input.last_name.map(|n| PersonName::parse(n, "lastName")).transpose()?,
            password: input.password.map(Password::parse).transpose()?,
            current_password: input
                .current_password
                .map(|current| PasswordAttempt::parse(current, "currentPassword"))
                .transpose()?,
        };
        let state = ctx.state()?;
        let client = Some(ctx.request()?.client_address);
        let user =
            domain::users::update_profile(&state.db, &state.hasher, &state.logins, actor, changes, client)
                .await?;
        Ok(UpdateMePayload { user: User::new(user) })
    }
}
