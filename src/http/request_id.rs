//! Request ids: every request gets one, and every line it logs carries it.
//!
//! The id is the client's (or its proxy's) `X-Request-Id` when that is sane, so one
//! id joins the proxy's log, ours and the client's bug report; otherwise it is a new
//! version 4 UUID, unique to this process. It is echoed on the response as
//! `X-Request-Id`, and [`span`] puts it into the tracing span that covers the
//! request, its GraphQL operations (which run on tasks of their own, instrumented
//! with the span) and, for a WebSocket, the whole connection.

use std::sync::{
    OnceLock,
    atomic::{AtomicU64, Ordering},
};

use axum::{
    extract::Request,
    http::{HeaderMap, HeaderName, HeaderValue},
    middleware::Next,
    response::Response,
};

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest accepted incoming id: room for a UUID, a trace id or a proxy's own
/// format, not for a client to make every log line of its request a kilobyte long.
pub const MAX_LEN: usize = 128;

/// Longest path written into the span (and so into each line of the request).
const MAX_LOGGED_PATH: usize = 200;

/// The id of one request, in its extensions.
#[derive(Debug, Clone)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// The incoming `X-Request-Id` when it is one sane value, else a new id.
    pub fn of(headers: &HeaderMap) -> Self {
        let mut given = headers.get_all(&X_REQUEST_ID).iter();
        match (given.next(), given.next()) {
            (Some(value), None) if is_sane(value.as_bytes()) => Self(value.clone()),
            // Two ids say two different things: neither is trusted.
            _ => Self::generate(),
        }
    }

    /// A new version 4 UUID: [`PREFIX`]'s random bits, then a count.
    pub fn generate() -> Self {
        let count = COUNT.fetch_add(1, Ordering::Relaxed);
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&PREFIX.get_or_init(random_prefix).to_be_bytes());
        bytes[8..].copy_from_slice(&count.to_be_bytes());
        let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
        let mut text = uuid::Uuid::encode_buffer();
        let text = id.hyphenated().encode_lower(&mut text);
        // A UUID's text is always a valid header value; the fallback cannot happen.
        Self(HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static("-")))
    }

    pub fn as_str(&self) -> &str {
        // Only visible ASCII is ever stored, which `to_str` always accepts.
        self.0.to_str().unwrap_or("-")
    }

    pub fn header_value(&self) -> HeaderValue {
        self.0.clone()
    }
}

/// Bounded, non-empty, visible ASCII only: nothing that could break a log line, a
/// JSON log's quoting or a terminal.
fn is_sane(value: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&value.len()) && value.iter().all(|byte| byte.is_ascii_graphic())
}

/// The first half of every id this process makes: drawn once from the operating
/// system's random source, so that ids stay apart across processes and restarts,
/// while an id costs no system call (one a request was measurable in scenario 2).
/// A request id must be unique, not secret: a client may send its own.
static PREFIX: OnceLock<u64> = OnceLock::new();

/// The second half: how many ids this process made before.
static COUNT: AtomicU64 = AtomicU64::new(0);

/// Eight random bytes; should the random source ever fail, the clock's nanoseconds,
/// which still tell this process's ids from another's. A request is not refused for it.
fn random_prefix() -> u64 {
    use argon2::password_hash::rand_core::{OsRng, RngCore as _};

    let mut bytes = [0u8; 8];
    if OsRng.try_fill_bytes(&mut bytes).is_ok() {
        return u64::from_be_bytes(bytes);
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64)
}

/// Middleware: gives the request its id and echoes it on the response, whatever
/// answered (a handler, the timeout, CORS, a 404).
pub async fn assign(mut request: Request, next: Next) -> Response {
    let id = RequestId::of(request.headers());
    let value = id.header_value();
    request.extensions_mut().insert(id);
    let mut response = next.run(request).await;
    response.headers_mut().insert(X_REQUEST_ID, value);
    response
}

/// The span of one request (tower-http's `TraceLayer` makes it; the request has
/// passed [`assign`] by then).
///
/// At ERROR level, because a span is recorded only when its level passes the
/// filter: at INFO, `TRIAGE_LOG=warn` would drop it and with it the id from the very
/// warnings an operator looks for. The path is logged without the query string: a
/// GET's query string is the operation and its variables, which may hold anything.
pub fn span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    let id = request.extensions().get::<RequestId>().map_or("-", RequestId::as_str);
    let path = request.uri().path();
    let path = path.get(..MAX_LOGGED_PATH).unwrap_or(path);
    // Displayed, not quoted: an id is visible ASCII and a path URI characters, so
    // neither holds a space or a line break that could split or forge a line.
    tracing::error_span!("request", request_id = %id, method = %request.method(), path = %path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers
                .append(X_REQUEST_ID, HeaderValue::from_bytes(value).unwrap_or(HeaderValue::from_static("")));
        }
        headers
    }

    #[test]
    fn a_sane_incoming_id_is_kept() {
        let id = RequestId::of(&headers(&[b"req-42_abc.DEF:1"]));
        assert_eq!(id.as_str(), "req-42_abc.DEF:1");
        let longest = "a".repeat(MAX_LEN);
        assert_eq!(RequestId::of(&headers(&[longest.as_bytes()])).as_str(), longest);
    }

    #[test]
    fn an_insane_incoming_id_is_replaced() {
        let too_long = "a".repeat(MAX_LEN + 1);
        for value in [b"".as_slice(), b"has space", b"tab\there", "caf\u{e9}".as_bytes(), too_long.as_bytes()]
        {
            let id = RequestId::of(&headers(&[value]));
            assert_ne!(id.as_str().as_bytes(), value);
            assert_eq!(id.as_str().len(), 36, "a generated UUID");
        }
        let two = RequestId::of(&headers(&[b"one", b"two"]));
        assert!(!["one", "two"].contains(&two.as_str()), "two ids: neither is taken");
    }

    #[test]
    fn generated_ids_are_version_4_uuids_and_differ() {
        let (a, b) = (RequestId::generate(), RequestId::generate());
        assert_ne!(a.as_str(), b.as_str());
        let parsed = uuid::Uuid::try_parse(a.as_str()).map(|id| id.get_version_num());
        assert_eq!(parsed, Ok(4), "{}", a.as_str());
    }

    #[test]
    fn generated_ids_do_not_repeat() {
        let ids: std::collections::HashSet<String> =
            (0..10_000).map(|_| RequestId::generate().as_str().to_owned()).collect();
        assert_eq!(ids.len(), 10_000);
    }
}
