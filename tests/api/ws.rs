//! A `graphql-transport-ws` client, enough to drive subscriptions from the tests.

use std::{net::SocketAddr, time::Duration};

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{Message, client::IntoClientRequest as _, http::HeaderValue},
};

/// How long a test waits for a message it expects.
const PATIENCE: Duration = Duration::from_secs(10);

pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What the server ended a connection or subscription with.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    Closed(u16),
    Completed,
}

impl WsClient {
    /// Opens `/graphql/ws` and sends `connection_init` with `payload`, not waiting
    /// for the answer.
    pub async fn open(address: SocketAddr, payload: Value) -> Self {
        let mut client = Self::open_silent(address).await;
        client.send(json!({ "type": "connection_init", "payload": payload })).await;
        client
    }

    /// Opens `/graphql/ws` and sends nothing.
    pub async fn open_silent(address: SocketAddr) -> Self {
        let mut request = format!("ws://{address}/graphql/ws").into_client_request().unwrap();
        request
            .headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_static("graphql-transport-ws"));
        let (socket, _) = connect_async(request).await.expect("a WebSocket connection");
        Self { socket }
    }

    /// Whether the server closes or drops the connection within the patience,
    /// whatever it says on the way.
    pub async fn ended(&mut self) -> bool {
        let ended = async {
            loop {
                match self.socket.next().await {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                    Some(Ok(_)) => {}
                }
            }
        };
        tokio::time::timeout(PATIENCE, ended).await.is_ok()
    }

    /// Sends a text message of `bytes` bytes.
    pub async fn send_bytes(&mut self, bytes: usize) -> bool {
        self.socket.send(Message::text("x".repeat(bytes))).await.is_ok()
    }

    /// A connection authenticated with `token`, acknowledged.
    pub async fn connect(address: SocketAddr, token: &str) -> Self {
        let mut client = Self::open(address, json!({ "authorization": format!("Bearer {token}") })).await;
        let ack = client.next().await.expect("connection_ack, not a close");
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        client
    }

    pub async fn send(&mut self, message: Value) {
        self.socket.send(Message::text(message.to_string())).await.expect("sending a message");
    }

    /// Starts subscription `id`.
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        let payload = json!({ "query": query, "variables": variables });
        self.send(json!({ "id": id, "type": "subscribe", "payload": payload })).await;
    }

    /// The next protocol message (pings answered on the way), or how the connection
    /// closed.
    pub async fn next(&mut self) -> Result<Value, u16> {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.socket.next())
                .await
                .expect("a message within the patience")
                .map(|message| message.expect("a readable message"));
            match message {
                Some(Message::Text(text)) => {
                    let message: Value = serde_json::from_str(&text).unwrap();
                    if message["type"] == "ping" {
                        self.send(json!({ "type": "pong" })).await;
                        continue;
                    }
                    return Ok(message);
                }
                Some(Message::Close(frame)) => return Err(frame.map_or(1005, |frame| frame.code.into())),
                None => return Err(1006),
                Some(_) => {}
            }
        }
    }

    /// The payload of the next `next` message of a subscription, or how it ended.
    pub async fn next_payload(&mut self) -> Result<Value, End> {
        match self.next().await {
            Ok(message) if message["type"] == "next" => Ok(message["payload"].clone()),
            Ok(message) if message["type"] == "complete" => Err(End::Completed),
            Ok(message) => panic!("unexpected message {message}"),
            Err(code) => Err(End::Closed(code)),
        }
    }

    /// The next event's `issueEvents` data, failing on anything else.
    pub async fn next_event(&mut self) -> Value {
        let payload = self.next_payload().await.expect("an event");
        assert!(payload.get("errors").is_none(), "{payload}");
        payload["data"]["issueEvents"].clone()
    }
}
