//! Who may do what: one function per decision, called by every entry point that needs
//! it (resolvers, jobs, the CLI). A resolver asks; it never decides.

use sea_orm::{ConnectionTrait, EntityTrait as _};

use crate::{
    Error, Result,
    auth::Actor,
    entity::{ids::UserId, issues::Model as Issue, users},
};

/// The account of a signed-in caller. A valid token for an account that no longer
/// exists is no longer a way in: `UNAUTHENTICATED`, wherever it is used.
pub async fn account_of(db: &impl ConnectionTrait, actor: Actor) -> Result<users::Model> {
    super::unique(db, users::Entity::find_by_id(actor.user_id))
        .await?
        .ok_or(Error::Unauthenticated("The account no longer exists"))
}

/// Whether `viewer` may read `issue`: every signed-in user may read every issue.
pub fn may_read_issue(_viewer: Actor, _issue: &Issue) -> bool {
    true
}

/// Whether `actor` may edit or delete `issue`: only its creator may (`FORBIDDEN`).
pub fn may_edit_issue(actor: Actor, issue: &Issue) -> Result<()> {
    if issue.created_by == actor.user_id {
        Ok(())
    } else {
        Err(Error::Forbidden("Only the issue's creator may change or delete it"))
    }
}

/// Whether `viewer` may see the assignment email waiting to go out for `issue`: its
/// creator and its assignee may; to anyone else there is none.
pub fn may_see_pending_notice(viewer: Actor, issue: &Issue) -> bool {
    viewer.user_id == issue.created_by || Some(viewer.user_id) == issue.assigned_to
}

/// Whether a due assignment notice to `recipient` is still wanted: its issue still
/// exists and is still assigned to them.
pub fn assignment_notice_wanted(issue: Option<&Issue>, recipient: UserId) -> bool {
    issue.is_some_and(|issue| issue.assigned_to == Some(recipient))
}

/// Whether a digest listing `total` issues is worth sending: not an empty one,
/// unless empty digests are asked for.
pub fn digest_wanted(total: usize, include_empty: bool) -> bool {
    total > 0 || include_empty
}
