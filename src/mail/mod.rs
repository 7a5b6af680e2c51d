//! Email: the transport (pooled SMTP, or `.eml` files when no SMTP server is
//! configured, or memory in tests) and the templates, rendered as plain text and
//! HTML with the same facts.

mod memory;
mod templates;
mod transport;

pub use memory::{MemoryMail, SentEmail};
pub use templates::{
    AssignmentEmail, DigestEmail, DigestGroup, DigestProject, InvitationEmail, IssueSummary, Rendered,
    Templates,
};
pub use transport::{Email, MailConfig, Mailer, SendError};

/// Sends the emails a request causes at once, rather than through the outbox: an
/// invitation's link carries a token that is stored only hashed, so it cannot wait
/// in the outbox.
#[derive(Debug)]
pub struct Postman {
    pub mailer: Mailer,
    pub templates: Templates,
    /// Base URL of the web app, for links (`TRIAGE_PUBLIC_URL`).
    pub public_url: String,
}

impl Postman {
    /// The Message-ID of the email about `what` (`invitation-7`), in the web app's
    /// domain.
    pub fn message_id(&self, what: &str) -> String {
        format!("<{what}@{}>", message_host(&self.public_url))
    }

    /// `path` under the web app's base URL.
    pub fn link(&self, path: &str) -> String {
        format!("{}/{}", self.public_url.trim_end_matches('/'), path.trim_start_matches('/'))
    }
}

/// The host of `public_url`, for Message-IDs; `triage.invalid` when it has none.
pub fn message_host(public_url: &str) -> &str {
    let rest = public_url.split_once("://").map_or(public_url, |(_, rest)| rest);
    let host = rest.split(['/', ':']).next().unwrap_or_default();
    if host.is_empty() { "triage.invalid" } else { host }
}
