//! The HTTP edge: the axum router and the GraphQL-over-HTTP rules.
//!
//! Routes: `POST /graphql` and `GET /graphql?query=...` (queries only), GraphiQL on
//! a browser's `GET /graphql`, subscriptions over WebSocket at `/graphql/ws`,
//! `/healthz` (alive), `/readyz` (database reachable) and `/metrics` (Prometheus text).
//!
//! The caller is authenticated here, once per request, from `Authorization: Bearer`
//! (on a WebSocket, once per connection, from `connection_init`'s payload);
//! resolvers read the result from the request data. A POST must be
//! `Content-Type: application/json` (else 415) and name a `query` or a persisted
//! query's hash (else 400). Responses are `application/graphql-response+json` when
//! the client accepts it, with 4xx for requests that fail before execution; plain
//! `application/json` with 200 otherwise.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use async_graphql::{
    BatchRequest, BatchResponse, Data, Request, ServerError,
    http::{ALL_WEBSOCKET_PROTOCOLS, GraphiQLSource},
    parser::types::OperationType,
};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::{
    Router,
    body::Bytes,
    extract::{
        ConnectInfo, DefaultBodyLimit, RawQuery, State,
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade},
    },
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use futures_util::{SinkExt as _, StreamExt as _, future};
use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    trace::TraceLayer,
};

use crate::{
    auth::{Actor, Caller},
    graphql::{AppSchema, Documents, RequestContext, ServiceState, fill_codes, operation_type, with_code},
};

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// Counters served on `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    pub sql_statements: AtomicU64,
    pub graphql_requests: AtomicU64,
}

/// What every handler shares.
#[derive(Clone)]
pub struct HttpState {
    /// Serves HTTP requests.
    pub schema: AppSchema,
    /// Serves WebSocket connections (the same schema, with error codes added by an
    /// extension).
    pub ws_schema: AppSchema,
    /// Parsed documents and persisted queries.
    pub documents: Arc<Documents>,
    pub services: Arc<ServiceState>,
    pub metrics: Arc<Metrics>,
    pub max_batch: usize,
    /// Becomes `true` when the server stops: open WebSockets are then closed.
    pub stopping: watch::Receiver<bool>,
    /// The operations running; the server waits for them before it closes the pool.
    pub operations: TaskTracker,
}

impl std::fmt::Debug for HttpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpState").field("max_batch", &self.max_batch).finish_non_exhaustive()
    }
}

pub fn router(state: HttpState, max_body_bytes: usize, cors_origins: &[String]) -> anyhow::Result<Router> {
    Ok(Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/graphql/ws", get(graphql_ws))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(cors(cors_origins)?)
        .layer(TraceLayer::new_for_http())
        .with_state(state))
}

/// CORS for browser apps on other origins: `*`, a list of origins, or none.
fn cors(origins: &[String]) -> anyhow::Result<CorsLayer> {
    let origins: Vec<&str> = origins.iter().map(|o| o.trim()).filter(|o| !o.is_empty()).collect();
    let allow_origin = if origins.contains(&"*") {
        AllowOrigin::any()
    } else {
        let parsed = origins
            .iter()
            .map(|origin| {
                HeaderValue::from_str(origin.trim_end_matches('/'))
                    .map_err(|_| anyhow::anyhow!("TRIAGE_CORS_ORIGINS: {origin:?} is not an origin"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        AllowOrigin::list(parsed)
    };
    Ok(CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .max_age(std::time::Duration::from_secs(600)))
}

async fn graphql_post(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let media = ResponseMedia::negotiate(&headers);
    // The spec asks servers to refuse a POST that does not say its body is JSON; a
    // browser sends a form or `text/plain` cross-origin without a CORS preflight.
    if !is_json(&headers) {
        return media.error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "A GraphQL POST must have `Content-Type: application/json`".to_owned(),
        );
    }
    let batch: BatchRequest = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(err) => return media.request_error(format!("The body is not a GraphQL request: {err}")),
    };
    let requests = match &batch {
        BatchRequest::Single(request) => std::slice::from_ref(request),
        BatchRequest::Batch(requests) => requests.as_slice(),
    };
    if requests.iter().any(|request| !has_document(request)) {
        return media.request_error("The request has no `query`".to_owned());
    }
    if let BatchRequest::Batch(requests) = &batch
        && requests.len() > state.max_batch
    {
        return media.request_error(format!("A batch may hold at most {} operations", state.max_batch));
    }
    execute(&state, &headers, peer, media, batch).await
}

async fn graphql_get(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let media = ResponseMedia::negotiate(&headers);
    let query = query.unwrap_or_default();
    // A query, or a persisted query's hash in `extensions`.
    if !query.split('&').any(|pair| pair.starts_with("query=") || pair.starts_with("extensions=")) {
        if accepts(&headers, "text/html") {
            return Html(GraphiQLSource::build().endpoint("/graphql").finish()).into_response();
        }
        return media.request_error("Missing the `query` parameter".to_owned());
    }
    let request = match async_graphql::http::parse_query_string(&query) {
        Ok(request) => request,
        Err(err) => return media.request_error(format!("The query string is not a GraphQL request: {err}")),
    };
    // Prepared here to see the operation (a persisted one included); `execute`
    // prepares it again, from the cache.
    let mut request = match state.documents.prepare(request) {
        Ok(request) => request,
        Err(error) => {
            return media.respond(BatchResponse::Single(async_graphql::Response::from_errors(vec![error])));
        }
    };
    if operation_type(&mut request) == Some(OperationType::Mutation) {
        let mut response =
            media.error(StatusCode::METHOD_NOT_ALLOWED, "Mutations must be sent with POST".to_owned());
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    execute(&state, &headers, peer, media, BatchRequest::Single(request)).await
}

async fn execute(
    state: &HttpState,
    headers: &HeaderMap,
    peer: SocketAddr,
    media: ResponseMedia,
    batch: BatchRequest,
) -> Response {
    state.metrics.graphql_requests.fetch_add(1, Ordering::Relaxed);
    let context =
        RequestContext::new(authenticate(state, headers), &state.services).with_client_ip(Some(peer.ip()));
    let response = match batch {
        BatchRequest::Single(request) => BatchResponse::Single(run(state, &context, request).await),
        BatchRequest::Batch(requests) => {
            // One after the other, as a batch's mutations must be.
            let mut responses = Vec::with_capacity(requests.len());
            for request in requests {
                responses.push(run(state, &context, request).await);
            }
            BatchResponse::Batch(responses)
        }
    };
    media.respond(response)
}

/// Runs one operation: its document from the cache (or parsed now), then the schema.
async fn run(state: &HttpState, context: &RequestContext, request: Request) -> async_graphql::Response {
    let request = match state.documents.prepare(request) {
        Ok(request) => request.data(context.clone()),
        Err(error) => return async_graphql::Response::from_errors(vec![error]),
    };
    // On a task of its own: a client that hangs up must not cancel a mutation half
    // way through its transaction (the connection would go back to the pool with
    // the transaction open).
    let schema = state.schema.clone();
    let mut response = match state.operations.spawn(async move { schema.execute(request).await }).await {
        Ok(response) => response,
        Err(err) => {
            tracing::error!(error = %err, "a GraphQL operation's task failed");
            let error = with_code(ServerError::new("Internal server error", None), "INTERNAL_SERVER_ERROR");
            return async_graphql::Response::from_errors(vec![error]);
        }
    };
    fill_codes(&mut response);
    response
}

/// Reads the caller from `Authorization: Bearer <token>`.
fn authenticate(state: &HttpState, headers: &HeaderMap) -> Caller {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Caller::Anonymous };
    match value.to_str().ok().and_then(bearer_token).map(|token| state.services.tokens.verify(token)) {
        Some(Ok(verified)) => Caller::User(Actor { user_id: verified.user_id }),
        _ => Caller::Rejected,
    }
}

/// The token of a `Bearer <token>` credential.
fn bearer_token(credential: &str) -> Option<&str> {
    credential
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}

/// Why a WebSocket's `connection_init` was refused; the socket is then closed with
/// code 4403, as the `graphql-transport-ws` protocol has it.
const FORBIDDEN: &str = "Forbidden";

/// GraphQL over WebSocket, `graphql-transport-ws` (or the older `graphql-ws`)
/// protocol. The access token comes in `connection_init`'s payload, as
/// `{ "authorization": "Bearer <token>" }` (or `Authorization`); without a valid
/// one the socket is closed with 4403.
async fn graphql_ws(
    State(state): State<HttpState>,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade.protocols(ALL_WEBSOCKET_PROTOCOLS).on_upgrade(move |socket| serve_socket(state, protocol, socket))
}

async fn serve_socket(state: HttpState, protocol: GraphQLProtocol, socket: WebSocket) {
    let (sink, stream) = socket.split();
    // The protocol library closes a refused connection with 1002; graphql-ws wants 4403.
    let sink = sink.with(|message| future::ready(Ok::<_, axum::Error>(forbidden_as_4403(message))));
    let services = state.services.clone();
    let connection = GraphQLWebSocket::new_with_pair(sink, stream, state.ws_schema.clone(), protocol)
        .on_connection_init(move |payload| future::ready(connection_data(&services, &payload)))
        .serve();
    let mut stopping = state.stopping.clone();
    tokio::select! {
        () = connection => {}
        _ = stopping.wait_for(|stopping| *stopping) => {}
    }
}

/// The caller of a WebSocket connection, from `connection_init`'s payload.
fn connection_data(services: &Arc<ServiceState>, payload: &serde_json::Value) -> async_graphql::Result<Data> {
    let credential = ["authorization", "Authorization"].iter().find_map(|key| payload.get(key)?.as_str());
    let verified = credential
        .and_then(bearer_token)
        .and_then(|token| services.tokens.verify(token).ok())
        .ok_or_else(|| async_graphql::Error::new(FORBIDDEN))?;
    let caller = Caller::User(Actor { user_id: verified.user_id });
    let mut data = Data::default();
    data.insert(RequestContext::for_connection(caller, verified.expires_at, services));
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

/// Whether a POST body is declared `application/json` (parameters such as
/// `charset` allowed).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(JSON))
}

/// Whether a request names something to run: a `query`, or the hash of a persisted
/// one. (A `query` that is present but empty counts as missing.)
fn has_document(request: &Request) -> bool {
    !request.query.trim().is_empty() || request.extensions.0.contains_key("persistedQuery")
}

fn accepts(headers: &HeaderMap, media_type: &str) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.split(';').next().is_some_and(|ty| ty.trim().eq_ignore_ascii_case(media_type)))
}

/// The response media type the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResponseMedia {
    /// `application/graphql-response+json`: status codes say what failed.
    GraphqlResponse,
    /// `application/json`: always 200 for a well-formed request, as legacy clients expect.
    Json,
}

impl ResponseMedia {
    fn negotiate(headers: &HeaderMap) -> Self {
        if accepts(headers, GRAPHQL_RESPONSE_JSON) { Self::GraphqlResponse } else { Self::Json }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::GraphqlResponse => GRAPHQL_RESPONSE_JSON,
            Self::Json => JSON,
        }
    }

    fn json(self, status: StatusCode, body: Vec<u8>) -> Response {
        (status, [(header::CONTENT_TYPE, self.content_type())], body).into_response()
    }

    /// A request that could not be read at all: 400 under either media type.
    fn request_error(self, message: String) -> Response {
        self.error(StatusCode::BAD_REQUEST, message)
    }

    fn error(self, status: StatusCode, message: String) -> Response {
        let mut error = ServerError::new(message, None);
        error.extensions.get_or_insert_with(Default::default).set("code", "BAD_REQUEST");
        let body = serde_json::json!({ "errors": [error] });
        self.json(status, serde_json::to_vec(&body).unwrap_or_default())
    }

    fn respond(self, response: BatchResponse) -> Response {
        let failed_before_execution = match &response {
            BatchResponse::Single(single) => crate::graphql::is_request_error(single),
            BatchResponse::Batch(_) => false,
        };
        let status = if failed_before_execution && self == Self::GraphqlResponse {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        };
        let body = match (&response, failed_before_execution) {
            // A request that never executed has no `data` entry at all.
            (BatchResponse::Single(single), true) => {
                serde_json::to_vec(&serde_json::json!({ "errors": single.errors }))
            }
            _ => serde_json::to_vec(&response),
        };
        match body {
            Ok(body) => self.json(status, body),
            Err(err) => {
                tracing::error!(error = %err, "serialising a GraphQL response failed");
                self.error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error".to_owned())
            }
        }
    }
}

async fn readyz(State(state): State<HttpState>) -> Response {
    match state.services.db.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
        }
    }
}

async fn metrics(State(state): State<HttpState>) -> Response {
    let body = format!(
        "# HELP triage_sql_statements_total SQL statements sent to the database.\n\
         # TYPE triage_sql_statements_total counter\n\
         triage_sql_statements_total {}\n\
         # HELP triage_graphql_requests_total GraphQL HTTP requests served.\n\
         # TYPE triage_graphql_requests_total counter\n\
         triage_graphql_requests_total {}\n",
        state.metrics.sql_statements.load(Ordering::Relaxed),
        state.metrics.graphql_requests.load(Ordering::Relaxed),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
