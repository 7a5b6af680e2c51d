//! Mutation roots, one per domain, merged into `MutationRoot`. Each takes one `input`
//! and returns a payload object.

mod auth;
mod issues;
mod users;

#[derive(Debug, Default, async_graphql::MergedObject)]
pub struct MutationRoot(auth::AuthMutation, users::UserMutation, issues::IssueMutation);
