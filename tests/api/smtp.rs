//! A real SMTP listener on loopback that keeps every message it accepts.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader},
    net::{TcpListener, TcpStream},
    sync::Notify,
    task::JoinHandle,
};

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Received {
    pub to: Vec<String>,
    pub data: String,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_lowercase());
        let headers = self.data.split("\r\n\r\n").next().unwrap_or_default();
        // Unfold continuation lines first.
        let unfolded = headers.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded
            .lines()
            .find(|line| line.to_lowercase().starts_with(&prefix))
            .map(|line| line[prefix.len()..].trim().to_owned())
    }

    /// The decoded body of the part with this content type.
    pub fn part(&self, content_type: &str) -> String {
        let start = self.data.find(&format!("Content-Type: {content_type}")).unwrap_or_else(|| {
            panic!("no {content_type} part in {}", self.data);
        });
        let rest = &self.data[start..];
        let body_start = rest.find("\r\n\r\n").map_or(rest.len(), |i| i + 4);
        let headers = rest[..body_start].to_lowercase();
        let body = &rest[body_start..];
        // A part ends at the message's boundary, not at any line that starts with
        // "--": a quoted-printable soft break can put a token's "--" at a line start.
        let boundary = self.header("Content-Type").and_then(|value| {
            let (_, rest) = value.split_once("boundary=\"")?;
            rest.split('"').next().map(|boundary| format!("\r\n--{boundary}"))
        });
        let end = boundary.and_then(|boundary| body.find(&boundary)).unwrap_or(body.len());
        if headers.contains("content-transfer-encoding: base64") {
            use base64::Engine as _;
            let compact: String = body[..end].split_whitespace().collect();
            let bytes = base64::engine::general_purpose::STANDARD.decode(compact).expect("base64 body");
            return String::from_utf8_lossy(&bytes).replace("\r\n", "\n");
        }
        decode_quoted_printable(&body[..end])
    }
}

#[test]
fn a_line_of_a_part_may_start_with_two_dashes() {
    let data = "Content-Type: multipart/alternative;\r\n boundary=\"b0undary\"\r\n\r\n--b0undary\r\n\
        Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
        Accept: https://triage.example/invitations/ABCDEFGHIJKLMNOPQ=\r\n--TUVWXYZabcdefghijklmnopq\r\n\
        --b0undary--\r\n";
    let message = Received { to: vec![], data: data.to_owned() };
    let text = message.part("text/plain");
    assert_eq!(
        text,
        "Accept: https://triage.example/invitations/ABCDEFGHIJKLMNOPQ--TUVWXYZabcdefghijklmnopq"
    );
}

fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).replace("\r\n", "\n")
}

pub struct SmtpSink {
    pub address: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    /// Replies to the next `RCPT TO` commands, before the sink accepts again.
    rcpt_replies: Arc<Mutex<VecDeque<&'static str>>>,
    /// Every `RCPT TO` seen, accepted or not.
    rcpt_attempts: Arc<Mutex<usize>>,
    arrived: Arc<Notify>,
    task: JoinHandle<()>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    pub async fn start_on(address: SocketAddr) -> Self {
        let listener = TcpListener::bind(address).await.expect("binding the SMTP sink");
        let address = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let arrived = Arc::new(Notify::new());
        let rcpt_replies = Arc::new(Mutex::new(VecDeque::new()));
        let rcpt_attempts = Arc::new(Mutex::new(0));
        let shared = Shared {
            store: received.clone(),
            arrived: arrived.clone(),
            rcpt_replies: rcpt_replies.clone(),
            rcpt_attempts: rcpt_attempts.clone(),
        };
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, shared.clone()));
            }
        });
        Self { address, received, rcpt_replies, rcpt_attempts, arrived, task }
    }

    /// `smtp://` URL for `TRIAGE_SMTP_URL`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.address)
    }

    /// A server configuration that mails through this sink.
    pub fn configure(&self) -> impl Fn(&mut triage::config::Config) + use<> {
        let url = self.url();
        move |config| config.smtp_url = Some(triage::config::Secret::new(url.clone()))
    }

    /// Answers the next `RCPT TO` commands with these replies (`451 ...`, `550 ...`).
    pub fn reply_to_rcpt(&self, replies: &[&'static str]) {
        self.rcpt_replies.lock().unwrap().extend(replies);
    }

    /// How many `RCPT TO` commands arrived, accepted or not.
    pub fn rcpt_attempts(&self) -> usize {
        *self.rcpt_attempts.lock().unwrap()
    }

    /// Forgets what arrived so far (between backends of one test).
    pub fn clear(&self) {
        self.received.lock().unwrap().clear();
    }

    pub fn messages(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until at least `count` messages arrived (failing after `limit`).
    pub async fn wait_for(&self, count: usize, limit: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.arrived.notified();
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("expected {count} messages within {limit:?}, got {}: {messages:#?}", messages.len());
            }
        }
    }

    /// Messages addressed to `address`.
    pub fn to(&self, address: &str) -> Vec<Received> {
        self.messages().into_iter().filter(|m| m.to.iter().any(|to| to == address)).collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct Shared {
    store: Arc<Mutex<Vec<Received>>>,
    arrived: Arc<Notify>,
    rcpt_replies: Arc<Mutex<VecDeque<&'static str>>>,
    rcpt_attempts: Arc<Mutex<usize>>,
}

async fn session(stream: TcpStream, shared: Shared) {
    let Shared { store, arrived, rcpt_replies, rcpt_attempts } = shared;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut recipients = Vec::new();
    if write.write_all(b"220 sink ESMTP\r\n").await.is_err() {
        return;
    }
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let command = line.trim_end().to_uppercase();
        let scripted = if command.starts_with("RCPT TO") {
            *rcpt_attempts.lock().unwrap() += 1;
            rcpt_replies.lock().unwrap().pop_front()
        } else {
            None
        };
        let reply: &[u8] = if let Some(reply) = scripted {
            reply.as_bytes()
        } else if command.starts_with("EHLO") || command.starts_with("HELO") {
            b"250-sink\r\n250 8BITMIME\r\n"
        } else if command.starts_with("MAIL FROM") {
            recipients.clear();
            b"250 OK\r\n"
        } else if command.starts_with("RCPT TO") {
            let address =
                line.trim_end()[8..].trim().trim_start_matches('<').trim_end_matches('>').to_owned();
            recipients.push(address);
            b"250 OK\r\n"
        } else if command == "DATA" {
            if write.write_all(b"354 go ahead\r\n").await.is_err() {
                return;
            }
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                if line == ".\r\n" {
                    break;
                }
                data.push_str(line.strip_prefix('.').filter(|_| line.starts_with("..")).unwrap_or(&line));
            }
            store.lock().unwrap().push(Received { to: recipients.clone(), data });
            arrived.notify_waiters();
            b"250 OK queued\r\n"
        } else if command == "QUIT" {
            let _ = write.write_all(b"221 bye\r\n").await;
            return;
        } else if command == "RSET" || command == "NOOP" {
            b"250 OK\r\n"
        } else {
            b"502 not implemented\r\n"
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}
