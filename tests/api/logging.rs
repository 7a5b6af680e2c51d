//! Request ids (`X-Request-Id`) and the log as operators read it.
//!
//! The request id tests go through the in-process server on every backend. The log
//! tests run the real binary as a subprocess with its standard error a pipe, as
//! under systemd, Docker or a log shipper, and read what it wrote: only the binary
//! installs the logger, and only a real pipe shows what a non-terminal gets. They
//! run on SQLite alone: what they check is the log's format, not storage.

use std::{
    io::{BufRead as _, BufReader},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest as _, http::HeaderValue};

use crate::helpers::{PASSWORD, each_backend};

const TRIAGE: &str = env!("CARGO_BIN_EXE_triage");

/// The `X-Request-Id` a request to `path` with `id` (if any) gets back.
async fn echoed(client: &reqwest::Client, url: String, id: Option<&[u8]>) -> String {
    let mut request = client.post(url).json(&json!({ "query": "{ __typename }" }));
    if let Some(id) = id {
        request = request.header("x-request-id", HeaderValue::from_bytes(id).unwrap());
    }
    let response = request.send().await.unwrap();
    let ids: Vec<_> = response.headers().get_all("x-request-id").iter().collect();
    assert_eq!(ids.len(), 1, "exactly one X-Request-Id on the response: {ids:?}");
    ids[0].to_str().unwrap().to_owned()
}

fn is_uuid_v4(id: &str) -> bool {
    id.len() == 36
        && id.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit() && !c.is_ascii_uppercase()
            }
        })
        && id.as_bytes()[14] == b'4'
}

#[tokio::test]
async fn a_given_request_id_is_echoed_on_the_response() {
    each_backend(async |app| {
        let id = echoed(&app.client, app.url("/graphql"), Some(b"client-chosen_42.a:b")).await;
        assert_eq!(id, "client-chosen_42.a:b");
        // Whatever answers: a refused request, a health check, an unknown path.
        for (path, body) in [("/graphql", "not json"), ("/healthz", ""), ("/nowhere", "")] {
            let response = app
                .client
                .post(app.url(path))
                .header("x-request-id", "r-7")
                .header("content-type", "text/plain")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.headers()["x-request-id"], "r-7", "{path} answered {}", response.status());
        }
    })
    .await;
}

#[tokio::test]
async fn a_request_without_an_id_gets_a_new_one() {
    each_backend(async |app| {
        let first = echoed(&app.client, app.url("/graphql"), None).await;
        let second = echoed(&app.client, app.url("/graphql"), None).await;
        assert!(is_uuid_v4(&first), "{first}");
        assert!(is_uuid_v4(&second), "{second}");
        assert_ne!(first, second);
    })
    .await;
}

#[tokio::test]
async fn an_insane_request_id_is_replaced_with_a_new_one() {
    each_backend(async |app| {
        let too_long = "a".repeat(129);
        for given in [b"two words".as_slice(), b"tab\there", b"caf\xc3\xa9", b"", too_long.as_bytes()] {
            let id = echoed(&app.client, app.url("/graphql"), Some(given)).await;
            assert!(is_uuid_v4(&id), "{:?} became {id}", String::from_utf8_lossy(given));
        }
        let longest = "b".repeat(128);
        assert_eq!(echoed(&app.client, app.url("/graphql"), Some(longest.as_bytes())).await, longest);
    })
    .await;
}

#[tokio::test]
async fn a_websocket_upgrade_echoes_its_request_id() {
    each_backend(async |app| {
        let (_socket, response) = open_socket(app.address, "ws-upgrade-1").await;
        assert_eq!(response.headers()["x-request-id"], "ws-upgrade-1");
    })
    .await;
}

async fn open_socket(
    address: SocketAddr,
    id: &'static str,
) -> (
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    tokio_tungstenite::tungstenite::handshake::client::Response,
) {
    let mut request = format!("ws://{address}/graphql/ws").into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert("sec-websocket-protocol", HeaderValue::from_static("graphql-transport-ws"));
    headers.insert("x-request-id", HeaderValue::from_static(id));
    tokio_tungstenite::connect_async(request).await.expect("a WebSocket connection")
}

/// `triage serve` as a subprocess on a fresh SQLite file, its standard error a pipe.
struct Subprocess {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every line read so far.
    log: Vec<String>,
    address: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Subprocess {
    fn start(format: &str, filter: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(TRIAGE)
            .arg("serve")
            // Away from any `.env` of the checkout.
            .current_dir(dir.path())
            .env("DATABASE_URL", format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display()))
            .env("TRIAGE_LISTEN", "127.0.0.1:0")
            .env("TRIAGE_MAIL_DIR", dir.path().join("mail"))
            .env("TRIAGE_MAX_CONCURRENT_HASHES", "1")
            .env("TRIAGE_LOG_FORMAT", format)
            .env("TRIAGE_LOG", filter)
            // So that it is the pipe, not NO_COLOR, that turns colour off.
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Self { child, lines, log: Vec::new(), address: ([0, 0, 0, 0], 0).into(), _dir: dir };
        let serving = server.wait_for(|line| line.contains("serving GraphQL"));
        server.address = address_in(&serving).unwrap_or_else(|| panic!("no address in {serving:?}"));
        server
    }

    /// The first line (from the start of the log) for which `found` holds, waiting
    /// for it up to ten seconds.
    fn wait_for(&mut self, found: impl Fn(&str) -> bool) -> String {
        if let Some(line) = self.log.iter().find(|line| found(line)) {
            return line.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if found(&line) {
                        return line;
                    }
                }
                Err(_) => panic!("no such line within 10 s; the log so far:\n{}", self.log.join("\n")),
            }
        }
    }

    /// Stops the server and returns its whole log.
    fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The reader ends when the pipe closes.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.log.push(line);
        }
        std::mem::take(&mut self.log)
    }

    async fn register(&self, id: &str, username: &str) -> Value {
        let response = reqwest::Client::new()
            .post(format!("http://{}/graphql", self.address))
            .header("x-request-id", id)
            .json(&json!({
                "query": "mutation($input: RegisterInput!) { register(input: $input) { accessToken } }",
                "variables": { "input": {
                    "email": format!("{username}@example.com"), "username": username,
                    "password": PASSWORD, "firstName": "Log", "lastName": "Reader",
                }},
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["x-request-id"], id);
        let body: Value = response.json().await.unwrap();
        assert!(body["data"]["register"]["accessToken"].is_string(), "{body:#}");
        body
    }
}

/// A test that fails half way leaves no server running.
impl Drop for Subprocess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The listening address in the "serving" line, text (`address=...`) or JSON.
fn address_in(line: &str) -> Option<SocketAddr> {
    if let Ok(json) = serde_json::from_str::<Value>(line) {
        return json["address"].as_str()?.parse().ok();
    }
    let rest = &line[line.find("address=")? + "address=".len()..];
    rest.split_whitespace().next()?.parse().ok()
}

#[tokio::test]
async fn a_text_log_written_to_a_pipe_has_no_colour_codes_and_carries_request_ids() {
    let mut server = Subprocess::start("text", "info");
    server.register("text-log-1", "plain_text").await;
    // Logged by the mutation, on the operation's own task.
    let registered = server.wait_for(|line| line.contains("user registered"));
    assert!(registered.contains("request_id=text-log-1"), "{registered}");
    let log = server.stop().join("\n");
    assert!(!log.contains('\u{1b}'), "escape codes in a log written to a pipe:\n{log:?}");
}

#[tokio::test]
async fn a_json_log_is_one_object_a_line_with_the_request_id_in_its_spans() {
    // Debug for the HTTP layer: its per-request and per-socket lines too.
    let mut server = Subprocess::start("json", "info,triage::http=debug,tower_http=debug");
    let body = server.register("json-log-1", "json_lines").await;
    let token = body["data"]["register"]["accessToken"].as_str().unwrap().to_owned();
    let (socket, _) = open_socket(server.address, "json-ws-1").await;
    let request_id_of = |line: &str| -> Option<String> {
        let json: Value = serde_json::from_str(line).ok()?;
        let spans = json["spans"].as_array()?;
        spans.iter().find_map(|span| Some(span["request_id"].as_str()?.to_owned()))
    };

    let registered = server.wait_for(|line| line.contains("user registered"));
    let registered: Value = serde_json::from_str(&registered).unwrap();
    assert_eq!(registered["level"], "INFO");
    assert!(registered["user_id"].is_number(), "the event's fields at the top level: {registered}");
    assert_eq!(registered["spans"][0]["name"], "request");
    assert_eq!(registered["spans"][0]["request_id"], "json-log-1");
    assert_eq!(registered["spans"][0]["path"], "/graphql");
    // tower-http's line for the response is the request's too.
    let finished = server.wait_for(|line| line.contains("finished processing request"));
    assert_eq!(request_id_of(&finished).as_deref(), Some("json-log-1"), "{finished}");
    // The socket's lines carry the id of the request that opened it.
    let opened = server.wait_for(|line| line.contains("WebSocket open"));
    assert_eq!(request_id_of(&opened).as_deref(), Some("json-ws-1"), "{opened}");
    assert!(opened.contains(r#""name":"websocket""#), "{opened}");
    drop(socket);

    let log = server.stop();
    for line in &log {
        let parsed = serde_json::from_str::<Value>(line);
        assert!(parsed.is_ok_and(|json| json.is_object()), "not a JSON object: {line}");
    }
    let log = log.join("\n");
    assert!(!log.contains(PASSWORD), "the password is in the log");
    assert!(!log.contains(&token), "the access token is in the log");
}
