//! Mutation roots, one per domain, merged into `MutationRoot`. Each takes one `input`
//! and returns a payload object.

mod auth;
mod invitations;
mod issues;
mod projects;
mod users;

#[derive(Debug, Default, async_graphql::MergedObject)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    auth::AuthMutation,
    users::UserMutation,
    projects::ProjectMutation,
    invitations::InvitationMutation,
    issues::IssueMutation,
);
