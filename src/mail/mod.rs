//! Email: the transport (pooled SMTP, or `.eml` files when no SMTP server is
//! configured, or memory in tests) and the templates, rendered as plain text and
//! HTML with the same facts.

mod memory;
mod templates;
mod transport;

pub use memory::{MemoryMail, SentEmail};
pub use templates::{AssignmentEmail, DigestEmail, DigestGroup, IssueSummary, Rendered, Templates};
pub use transport::{Email, MailConfig, Mailer, SendError};
