//! GraphQL over WebSocket at `/graphql/ws`: `graphql-transport-ws` (or the older
//! `graphql-ws`) protocol.
//!
//! The access token comes in `connection_init`'s payload, as
//! `{ "authorization": "Bearer <token>" }` (or `Authorization`); without a valid one
//! the socket is closed with 4403, and without any `connection_init` within
//! `TRIAGE_WS_INIT_TIMEOUT` with 4408. Every operation on the socket passes the same
//! gate as over HTTP (admission, rate budget), and the token's expiry: an operation
//! started after it gets `UNAUTHENTICATED` and the socket is closed with 4403. At
//! most `TRIAGE_WS_MAX_SUBSCRIPTIONS` operations run at once on one socket; messages
//! are at most `TRIAGE_MAX_BODY_BYTES`; the server pings every 30 seconds.

use std::{
    net::{IpAddr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_graphql::{
    Data, Executor, Request, Response, ServerError, futures_util::stream::BoxStream,
    http::ALL_WEBSOCKET_PROTOCOLS,
};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::{
    extract::{
        ConnectInfo, State,
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade},
    },
    http::HeaderMap,
    response::Response as HttpResponse,
};
use chrono::Utc;
use futures_util::{SinkExt as _, StreamExt as _, future, stream};
use tokio::sync::Notify;
use tracing::Instrument as _;

use super::HttpState;
use crate::{
    app::AppState,
    auth::{Actor, Caller},
    graphql::{AppSchema, BudgetKey, Gate, MAX_ERRORS, RequestContext, Tally, rate_limited_error, with_code},
};

/// Why a WebSocket's `connection_init` was refused; the socket is then closed with
/// code 4403, as the `graphql-transport-ws` protocol has it.
const FORBIDDEN: &str = "Forbidden";

/// How often the server pings an open socket.
const PING_EVERY: Duration = Duration::from_secs(30);

pub async fn graphql_ws(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> HttpResponse {
    let limit = state.max_message_bytes;
    // The connection runs on a task of its own, long after this request's response:
    // a span within the request's (so its lines carry the upgrade's request id,
    // echoed on the 101 response) goes with it. ERROR level for the reason
    // `request_id::span` gives.
    let span = tracing::error_span!("websocket");
    let address = state.proxies.client(peer.ip(), &headers);
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| serve_socket(state, protocol, socket, address).instrument(span))
}

/// What one socket's operations share.
#[derive(Clone)]
struct SocketExecutor {
    schema: AppSchema,
    gate: Arc<Gate>,
    /// Operations running on this socket.
    running: Arc<AtomicUsize>,
    max_running: usize,
    /// Told when an operation found the token expired: the socket is then closed.
    expired: Arc<Notify>,
}

impl Executor for SocketExecutor {
    async fn execute(&self, request: Request) -> Response {
        self.schema.execute(request).await
    }

    fn execute_stream(&self, request: Request, session: Option<Arc<Data>>) -> BoxStream<'static, Response> {
        let context = session.as_ref().and_then(|data| {
            let context = data.get(&std::any::TypeId::of::<RequestContext>())?;
            Some((data.clone(), context.downcast_ref::<RequestContext>()?.clone()))
        });
        let Some((session, context)) = context else {
            return refuse(with_code(
                ServerError::new("The connection is not initialised", None),
                "UNAUTHENTICATED",
            ));
        };
        if context.session_ends.is_some_and(|ends| ends <= Utc::now()) {
            let expired = self.expired.clone();
            let error = with_code(
                ServerError::new("The access token expired; reconnect with a new one", None),
                "UNAUTHENTICATED",
            );
            // The error goes out first; the socket closes when its stream ends.
            return stream::once(future::ready(Some(Response::from_errors(vec![error]))))
                .chain(stream::once(async move {
                    expired.notify_one();
                    None
                }))
                .filter_map(future::ready)
                .boxed();
        }
        if self.running.fetch_add(1, Ordering::SeqCst) >= self.max_running {
            self.running.fetch_sub(1, Ordering::SeqCst);
            let message =
                format!("At most {} operations may run at once on one connection", self.max_running);
            return refuse(with_code(ServerError::new(message, None), "TOO_MANY_SUBSCRIPTIONS"));
        }
        let running = Running(self.running.clone());
        let key = match context.caller {
            Caller::User(actor) => BudgetKey::User(actor.user_id),
            _ => BudgetKey::address(context.client_address),
        };
        // As over HTTP: a refused operation costs a point, an admitted one its price.
        let mut tally = Tally::default();
        let (admitted, points) = match self.gate.admit(request, &mut tally) {
            Ok(admitted) => (Ok(admitted), tally.points()),
            Err(error) => (Err(error), 1),
        };
        let budget = match self.gate.budgets.spend(key, points) {
            Some(Err(status)) => return refuse(rate_limited_error(&status)),
            Some(Ok(status)) => Some(status),
            None => None,
        };
        let (request, mut fresh) = match admitted {
            Ok(admitted) => admitted.into_parts(),
            Err(error) => return refuse(error),
        };
        // Request data comes before the connection's: this operation's budget.
        let mut context = context;
        context.budget = budget;
        let request = request.data(context);
        let gate = self.gate.clone();
        let responses = self.schema.execute_stream_with_session_data(request, session);
        // The count drops when the stream ends or the client stops it.
        responses
            .map(move |mut response| {
                let _running = &running;
                if let Some(fresh) = fresh.take() {
                    gate.validated(Some(fresh), &response);
                }
                response.errors.truncate(MAX_ERRORS);
                response
            })
            .boxed()
    }
}

/// Holds one place of a socket's running operations until dropped.
struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn refuse(error: ServerError) -> BoxStream<'static, Response> {
    stream::once(future::ready(Response::from_errors(vec![error]))).boxed()
}

async fn serve_socket(state: Arc<HttpState>, protocol: GraphQLProtocol, socket: WebSocket, address: IpAddr) {
    tracing::debug!(protocol = ?protocol, "WebSocket open");
    let (mut sink, stream) = socket.split();
    let (outgoing, mut to_send) = tokio::sync::mpsc::channel::<Message>(16);
    let executor = SocketExecutor {
        schema: state.ws_schema.clone(),
        gate: state.gate.clone(),
        running: Arc::default(),
        max_running: state.ws_max_subscriptions,
        expired: Arc::default(),
    };
    let expired = executor.expired.clone();
    let initialised = Arc::new(AtomicBool::new(false));
    let services = state.app.clone();
    let on_init = {
        let initialised = initialised.clone();
        move |payload: serde_json::Value| {
            initialised.store(true, Ordering::SeqCst);
            future::ready(connection_data(&services, &payload, address))
        }
    };
    // The protocol library closes a refused connection with 1002; graphql-ws wants 4403.
    let outgoing = tokio_util::sync::PollSender::new(outgoing)
        .sink_map_err(|_| axum::Error::new("the socket closed"))
        .with(|message| future::ready(Ok::<_, axum::Error>(forbidden_as_4403(message))));
    let connection = GraphQLWebSocket::new_with_pair(outgoing, stream, executor, protocol)
        .on_connection_init(on_init)
        .serve();
    tokio::pin!(connection);
    let mut stopping = state.stopping.clone();
    let stopping = async move {
        let _ = stopping.wait_for(|stopping| *stopping).await;
    };
    tokio::pin!(stopping);
    let init_deadline = tokio::time::sleep(state.ws_init_timeout);
    tokio::pin!(init_deadline);
    let mut pings = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    let close = loop {
        tokio::select! {
            biased;
            message = to_send.recv() => match message {
                Some(message) => {
                    if sink.send(message).await.is_err() {
                        return;
                    }
                }
                None => return,
            },
            () = &mut connection => {
                // Whatever it queued last (a close frame, say) still goes out.
                while let Ok(message) = to_send.try_recv() {
                    if sink.send(message).await.is_err() {
                        return;
                    }
                }
                return;
            }
            () = expired.notified() => break (4403, FORBIDDEN),
            () = &mut init_deadline, if !initialised.load(Ordering::SeqCst) => {
                break (4408, "Connection initialisation timeout");
            }
            () = &mut stopping => break (1001, "The server is stopping"),
            _ = pings.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
        }
    };
    let (code, reason) = close;
    tracing::debug!(code, reason, "closing the WebSocket");
    // What was queued before the reason to close (an operation's error) goes first.
    while let Ok(message) = to_send.try_recv() {
        if sink.send(message).await.is_err() {
            return;
        }
    }
    let _ = sink.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
}

/// The caller of a WebSocket connection, from `connection_init`'s payload.
fn connection_data(
    services: &Arc<AppState>,
    payload: &serde_json::Value,
    address: IpAddr,
) -> async_graphql::Result<Data> {
    let credential = ["authorization", "Authorization"].iter().find_map(|key| payload.get(key)?.as_str());
    let verified = credential
        .and_then(super::bearer_token)
        .and_then(|token| services.tokens.verify(token).ok())
        .ok_or_else(|| async_graphql::Error::new(FORBIDDEN))?;
    let caller = Caller::User(Actor { user_id: verified.user_id });
    let mut data = Data::default();
    data.insert(RequestContext::for_connection(caller, address, verified.expires_at, services));
    Ok(data)
}

fn forbidden_as_4403(message: Message) -> Message {
    match message {
        Message::Close(Some(frame)) if frame.code == 1002 && frame.reason.as_str() == FORBIDDEN => {
            Message::Close(Some(CloseFrame { code: 4403, reason: frame.reason }))
        }
        other => other,
    }
}
