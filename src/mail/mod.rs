//! Email: the transport (pooled SMTP, or `.eml` files when no SMTP server is
//! configured) and the templates, rendered as plain text and HTML with the same facts.

mod templates;
mod transport;

pub use templates::{AssignmentEmail, DigestEmail, DigestGroup, IssueSummary, Rendered, Templates};
pub use transport::{Email, MailConfig, Mailer, SendError};
