//! Sending: lettre's pooled async SMTP (rustls), or `.eml` files in a folder when no
//! SMTP server is configured, so `cargo run` shows what would be sent, or an outbox
//! in memory that tests read ([`MemoryMail`]).

use std::{path::PathBuf, time::Duration};

use lettre::{
    AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
    transport::smtp::PoolConfig,
};

use super::{MemoryMail, Rendered};
use crate::config::Secret;

/// How to reach the mail server.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// `smtp://`, `smtps://` or `smtp://...?tls=required`; `None` writes files instead.
    pub smtp_url: Option<Secret>,
    pub mail_dir: PathBuf,
    pub from: String,
    pub timeout: Duration,
    pub pool_size: u32,
}

/// One email, ready to send.
#[derive(Debug, Clone)]
pub struct Email {
    pub to_address: String,
    pub to_name: String,
    /// Stable per notice, so a receiver can spot a duplicate.
    pub message_id: String,
    pub rendered: Rendered,
}

/// Why a send failed, which decides whether it is retried.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// Timeouts, connection errors and 4xx replies: worth another try.
    #[error("transient: {0}")]
    Transient(String),
    /// 5xx replies and malformed messages: another try would fail the same way.
    #[error("permanent: {0}")]
    Permanent(String),
}

#[derive(Debug, Clone)]
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(PathBuf),
    Memory(MemoryMail),
}

#[derive(Debug, Clone)]
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
}

fn sender(from: &str) -> anyhow::Result<Mailbox> {
    from.parse().map_err(|err| anyhow::anyhow!("TRIAGE_MAIL_FROM is not a mailbox ({err})"))
}

impl Mailer {
    pub fn new(config: &MailConfig) -> anyhow::Result<Self> {
        let from = sender(&config.from)?;
        let transport = match &config.smtp_url {
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                    .map_err(|err| anyhow::anyhow!("TRIAGE_SMTP_URL is not usable: {err}"))?
                    .timeout(Some(config.timeout))
                    .pool_config(PoolConfig::new().max_size(config.pool_size.max(1)))
                    .build();
                Transport::Smtp(transport)
            }
            None => {
                std::fs::create_dir_all(&config.mail_dir).map_err(|err| {
                    anyhow::anyhow!("creating the mail folder {}: {err}", config.mail_dir.display())
                })?;
                tracing::info!(dir = %config.mail_dir.display(), "no TRIAGE_SMTP_URL: emails are written as .eml files");
                Transport::Files(config.mail_dir.clone())
            }
        };
        Ok(Self { transport, from })
    }

    /// A mailer that keeps every email in `outbox` (tests), built like any other.
    pub fn in_memory(outbox: MemoryMail, from: &str) -> anyhow::Result<Self> {
        Ok(Self { transport: Transport::Memory(outbox), from: sender(from)? })
    }

    pub async fn send(&self, email: &Email) -> Result<(), SendError> {
        let to = Mailbox::new(
            Some(email.to_name.clone()).filter(|name| !name.trim().is_empty()),
            email.to_address.parse().map_err(|err| SendError::Permanent(format!("bad recipient: {err}")))?,
        );
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.rendered.subject.clone())
            .message_id(Some(email.message_id.clone()))
            .multipart(MultiPart::alternative_plain_html(
                email.rendered.text.clone(),
                email.rendered.html.clone(),
            ))
            .map_err(|err| SendError::Permanent(format!("building the message: {err}")))?;
        match &self.transport {
            Transport::Smtp(smtp) => smtp.send(message).await.map(drop).map_err(|err| {
                if err.is_permanent() {
                    SendError::Permanent(err.to_string())
                } else {
                    SendError::Transient(err.to_string())
                }
            }),
            Transport::Files(dir) => {
                let name: String = email
                    .message_id
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' })
                    .collect();
                let path = dir.join(format!("{}.eml", name.trim_matches('_')));
                tokio::fs::write(&path, message.formatted())
                    .await
                    .map_err(|err| SendError::Transient(format!("writing {}: {err}", path.display())))?;
                tracing::info!(path = %path.display(), subject = %email.rendered.subject, "email written");
                Ok(())
            }
            Transport::Memory(outbox) => outbox.send(email),
        }
    }
}
