//! The HTTP edge: the axum router and the GraphQL-over-HTTP rules.
//!
//! Routes: `POST /graphql` and `GET /graphql?query=...` (queries only), GraphiQL on
//! a browser's `GET /graphql`, subscriptions over WebSocket at `/graphql/ws`,
//! `/healthz` (alive), `/readyz` (database reachable) and `/metrics` (Prometheus text).
//!
//! The caller is authenticated here, once per request, from `Authorization: Bearer`
//! (on a WebSocket, once per connection, from `connection_init`'s payload);
//! resolvers read the result from the request data. Every operation then passes the
//! [`Gate`]: admission (price, depth, root fields) and the caller's rate budget, for
//! the whole batch before any of it runs; a batch is one request. Every response
//! carries `X-RateLimit-*` headers and `Cache-Control: no-store`; one over budget is
//! a 429 with `Retry-After`. Every request has an id, echoed as `X-Request-Id` and
//! on every line it logs (see `request_id.rs`).
//!
//! A browser's `GET /graphql` gets the GraphiQL page of `graphiql.rs`.
//!
//! Bounds: a header-read timeout (`TRIAGE_HEADER_TIMEOUT`, set in `app.rs`), a
//! request timeout (`TRIAGE_REQUEST_TIMEOUT`) for the body to arrive and then again
//! for the request's wait for a place and its operations (an operation still
//! running then is cancelled and its transaction rolled back, unless it has begun to
//! commit: that one gets one timeout more to finish, and is answered with what it
//! did), a body limit, and at most
//! `TRIAGE_MAX_CONCURRENT_REQUESTS` GraphQL requests at once (others wait; `/healthz`
//! never does), of which `TRIAGE_MAX_CONCURRENT_QUERIES` queries running (others
//! wait for a turn before they start; mutations do not). A POST must be
//! `Content-Type: application/json` (else 415) and name a `query` or a persisted
//! query's hash (else 400). Responses are `application/graphql-response+json` when
//! the client accepts it, with 4xx for requests that fail before execution; plain
//! `application/json` with 200 otherwise.

mod client;
mod graphiql;
mod request_id;
mod ws;

use std::{
    net::{IpAddr, SocketAddr},
    panic::AssertUnwindSafe,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use async_graphql::{BatchRequest, BatchResponse, Request, ServerError, parser::types::OperationType};
use axum::{
    Router,
    body::Body,
    extract::{ConnectInfo, RawQuery, State},
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use futures_util::FutureExt as _;
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore, watch},
    time::Instant,
};
use tokio_util::task::TaskTracker;
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    limit::RequestBodyLimitLayer,
    set_header::SetResponseHeaderLayer,
    timeout::TimeoutLayer,
    trace::TraceLayer,
};
use tracing::Instrument as _;

use crate::{
    app::AppState,
    auth::{Actor, Caller},
    domain::Commits,
    graphql::{
        Admitted, AppSchema, BudgetKey, BudgetStatus, Gate, RequestContext, Tally, fill_codes,
        rate_limited_error, unix_now, with_code,
    },
};
pub use client::TrustedProxies;

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const JSON: &str = "application/json";
/// About how many headers a GraphQL response leaves with.
const RESPONSE_HEADERS: usize = 16;

/// Counters served on `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    pub sql_statements: AtomicU64,
    pub graphql_requests: AtomicU64,
    /// Operations answered by their plan rather than the executor.
    pub direct_answers: AtomicU64,
}

/// What every handler shares: the application state, and how this edge serves it.
#[derive(Clone)]
pub struct HttpState {
    /// Serves HTTP requests.
    pub schema: AppSchema,
    /// Serves WebSocket connections (the same schema, with error codes added by an
    /// extension).
    pub ws_schema: AppSchema,
    /// Documents, admission and budgets, for every transport.
    pub gate: Arc<Gate>,
    /// The application state (`app.rs`): callers are authenticated against its keys.
    pub app: Arc<AppState>,
    /// What `/metrics` reports.
    pub metrics: Arc<Metrics>,
    /// Most operations in one batched request (`TRIAGE_MAX_BATCH`).
    pub max_batch: usize,
    /// Who the client is behind which proxies.
    pub proxies: Arc<TrustedProxies>,
    /// How long one operation may run before it is cancelled.
    pub request_timeout: Duration,
    /// Places for GraphQL requests running at once.
    pub running: Arc<Semaphore>,
    /// Turns for queries running at once, within the places.
    pub queries: Arc<Semaphore>,
    /// Largest POST body and WebSocket message (`TRIAGE_MAX_BODY_BYTES`).
    pub max_message_bytes: usize,
    /// How long a WebSocket may take to send `connection_init` (`TRIAGE_WS_INIT_TIMEOUT`).
    pub ws_init_timeout: Duration,
    /// Most subscriptions open on one WebSocket (`TRIAGE_WS_MAX_SUBSCRIPTIONS`).
    pub ws_max_subscriptions: usize,
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
    // `/graphql` bounds its own time, in its handlers: the body's read, then the wait
    // for a place and the operations (an operation that has begun to commit gets one
    // timeout more, see `within_deadline`). Its body is read there too, within the
    // body limit. The other routes are bounded here.
    let bounded = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, state.request_timeout));
    Ok(Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/graphql/ws", get(ws::graphql_ws))
        .merge(bounded)
        // A declared length over the limit is refused before a byte of the body is read.
        .layer(RequestBodyLimitLayer::new(max_body_bytes))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(cors(cors_origins)?)
        .layer(TraceLayer::new_for_http().make_span_with(request_id::span))
        // Outside the trace layer, so the span it makes carries the id.
        .layer(axum::middleware::from_fn(request_id::assign))
        // Behind one `Arc`: a handler's `State` is then one count, not one per field.
        .with_state(Arc::new(state)))
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
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            request_id::X_REQUEST_ID,
        ])
        // A browser app may read the id back, to quote it in a bug report.
        .expose_headers([request_id::X_REQUEST_ID])
        .max_age(std::time::Duration::from_secs(600)))
}

async fn graphql_post(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let media = ResponseMedia::negotiate(&headers);
    // A client that never finishes sending has the request timeout to do it.
    let body = match tokio::time::timeout(
        state.request_timeout,
        axum::body::to_bytes(body, state.max_message_bytes),
    )
    .await
    {
        Ok(Ok(body)) => body,
        // Past the body limit (`TRIAGE_MAX_BODY_BYTES`).
        Ok(Err(err)) if is_too_long(&err) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
        Ok(Err(err)) => return media.request_error(format!("The body could not be read: {err}")),
        Err(_elapsed) => return StatusCode::REQUEST_TIMEOUT.into_response(),
    };
    match read_post(&state, &headers, media, &body) {
        Ok(batch) => execute(&state, peer.ip(), &headers, media, batch).await,
        Err(refused) => charge_refusal(&state, peer.ip(), &headers, media, refused),
    }
}

/// Whether reading a body failed because it ran past the body limit.
fn is_too_long(err: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(error) = cause {
        if error.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// The operations of a POST, or the answer to one that is not a GraphQL request.
#[expect(clippy::result_large_err, reason = "the answer goes straight back to the client")]
fn read_post(
    state: &HttpState,
    headers: &HeaderMap,
    media: ResponseMedia,
    body: &[u8],
) -> Result<BatchRequest, Response> {
    // The spec asks servers to refuse a POST that does not say its body is JSON; a
    // browser sends a form or `text/plain` cross-origin without a CORS preflight.
    if !is_json(headers) {
        return Err(media.error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "A GraphQL POST must have `Content-Type: application/json`".to_owned(),
        ));
    }
    let batch: BatchRequest = serde_json::from_slice(body)
        .map_err(|err| media.request_error(format!("The body is not a GraphQL request: {err}")))?;
    let requests = match &batch {
        BatchRequest::Single(request) => std::slice::from_ref(request),
        BatchRequest::Batch(requests) => requests.as_slice(),
    };
    if requests.iter().any(|request| !has_document(request)) {
        return Err(media.request_error("The request has no `query`".to_owned()));
    }
    if let BatchRequest::Batch(requests) = &batch
        && requests.len() > state.max_batch
    {
        return Err(media.request_error(format!("A batch may hold at most {} operations", state.max_batch)));
    }
    Ok(batch)
}

async fn graphql_get(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let media = ResponseMedia::negotiate(&headers);
    let query = query.unwrap_or_default();
    // A query, or a persisted query's hash in `extensions`.
    let names_a_document =
        query.split('&').any(|pair| pair.starts_with("query=") || pair.starts_with("extensions="));
    if !names_a_document && accepts(&headers, "text/html") {
        let csp = graphiql::CSP.as_str();
        return ([(header::CONTENT_SECURITY_POLICY, csp)], Html(graphiql::PAGE)).into_response();
    }
    match read_get(&state, media, &query) {
        Ok(request) => execute(&state, peer.ip(), &headers, media, BatchRequest::Single(request)).await,
        Err(refused) => charge_refusal(&state, peer.ip(), &headers, media, refused),
    }
}

/// The operation of a GET, or the answer to one that may not run.
#[expect(clippy::result_large_err, reason = "the answer goes straight back to the client")]
fn read_get(state: &HttpState, media: ResponseMedia, query: &str) -> Result<Request, Response> {
    if !query.split('&').any(|pair| pair.starts_with("query=") || pair.starts_with("extensions=")) {
        return Err(media.request_error("Missing the `query` parameter".to_owned()));
    }
    let request = async_graphql::http::parse_query_string(query)
        .map_err(|err| media.request_error(format!("The query string is not a GraphQL request: {err}")))?;
    // Prepared here to see the operation (a persisted one included); `execute`
    // prepares it again, from the cache.
    let mut prepared = state.gate.documents.prepare(request).map_err(|error| {
        media.respond(BatchResponse::Single(async_graphql::Response::from_errors(vec![error])))
    })?;
    if prepared.operation_type() == Some(OperationType::Mutation) {
        let mut response =
            media.error(StatusCode::METHOD_NOT_ALLOWED, "Mutations must be sent with POST".to_owned());
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        return Err(response);
    }
    Ok(prepared.request)
}

/// A request refused before it was read as operations costs its caller a point, like
/// one refused by admission, and carries the budget's headers.
fn charge_refusal(
    state: &HttpState,
    peer: IpAddr,
    headers: &HeaderMap,
    media: ResponseMedia,
    refused: Response,
) -> Response {
    let key = budget_key(authenticate(state, headers), state.proxies.client(peer, headers));
    match state.gate.budgets.spend(key, 1) {
        None => refused,
        Some(Ok(status)) => with_budget_headers(refused, Some(&status)),
        Some(Err(status)) => over_budget(media, true, 1, &status),
    }
}

fn budget_key(caller: Caller, address: IpAddr) -> BudgetKey {
    match caller {
        Caller::User(actor) => BudgetKey::User(actor.user_id),
        Caller::Anonymous | Caller::Rejected => BudgetKey::address(address),
    }
}

/// The 429 of a request its caller's budget cannot cover.
fn over_budget(media: ResponseMedia, single: bool, count: usize, status: &BudgetStatus) -> Response {
    tracing::info!(cost = status.cost, "over the rate budget");
    let mut response = media.respond(refusal(single, count, rate_limited_error(status)));
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let retry_after = HeaderValue::from(status.retry_after(unix_now()));
    response.headers_mut().insert(header::RETRY_AFTER, retry_after);
    with_budget_headers(response, Some(status))
}

async fn execute(
    state: &HttpState,
    peer: IpAddr,
    headers: &HeaderMap,
    media: ResponseMedia,
    batch: BatchRequest,
) -> Response {
    state.metrics.graphql_requests.fetch_add(1, Ordering::Relaxed);
    // One deadline for the request, from now: its wait for a place and its
    // operations, one after the other.
    let deadline = Instant::now() + state.request_timeout;
    let (requests, single) = match batch {
        BatchRequest::Single(request) => (vec![request], true),
        BatchRequest::Batch(requests) => (requests, false),
    };
    let count = requests.len();
    // Held by every operation's task too: one whose client hung up keeps its place.
    let place = match tokio::time::timeout_at(deadline, state.running.clone().acquire_owned()).await {
        Ok(Ok(place)) => Arc::new(place),
        Ok(Err(_closed)) => {
            return media.error(StatusCode::SERVICE_UNAVAILABLE, "The server is stopping".to_owned());
        }
        Err(_elapsed) => {
            tracing::warn!("a request waited its whole time for a place and was not run");
            return media.respond(refusal(single, count, timed_out(state.request_timeout)));
        }
    };
    let caller = authenticate(state, headers);
    let address = state.proxies.client(peer, headers);
    let key = budget_key(caller, address);
    // The whole request is priced before any of it runs. A refused one costs a point,
    // so that a flood of them runs out of budget too.
    let mut tally = Tally::default();
    let mut admitted = Vec::with_capacity(count);
    let mut refused = None;
    for request in requests {
        match state.gate.admit(request, &mut tally) {
            Ok(operation) => admitted.push(operation),
            Err(error) => {
                refused = Some(error);
                break;
            }
        }
    }
    let points = if refused.is_some() { 1 } else { tally.points() };
    let budget = match state.gate.budgets.spend(key, points) {
        None => None,
        Some(Ok(status)) => Some(status),
        Some(Err(status)) => return over_budget(media, single, count, &status),
    };
    if let Some(error) = refused {
        return with_budget_headers(media.respond(refusal(single, count, error)), budget.as_ref());
    }
    let mut context = RequestContext::new(caller, address, &state.app);
    context.budget = budget;
    let mut answers = Vec::with_capacity(count);
    for operation in admitted {
        // One after the other, as a batch's mutations must be.
        answers.push(run(state, &context, operation, place.clone(), deadline).await);
    }
    with_budget_headers(media.answer(single, answers), budget.as_ref())
}

/// One operation's answer: from the executor, or the JSON its plan wrote.
enum Answer {
    Executed(async_graphql::Response),
    Direct(Vec<u8>),
}

/// The answer to a request refused before it ran: the error, once per operation.
fn refusal(single: bool, count: usize, error: ServerError) -> BatchResponse {
    let response = || async_graphql::Response::from_errors(vec![error.clone()]);
    if single {
        BatchResponse::Single(response())
    } else {
        BatchResponse::Batch((0..count).map(|_| response()).collect())
    }
}

/// Leaves at most [`crate::graphql::MAX_ERRORS`] errors across a batch's answers.
fn cap_errors(answers: &mut [Answer]) {
    let mut left = crate::graphql::MAX_ERRORS;
    for answer in answers {
        if let Answer::Executed(response) = answer {
            response.errors.truncate(left);
            left -= response.errors.len();
        }
    }
}

/// Adds the `X-RateLimit-*` headers of `budget`, when rate limits are on.
fn with_budget_headers(mut response: Response, budget: Option<&BudgetStatus>) -> Response {
    if let Some(budget) = budget {
        let headers = response.headers_mut();
        for (name, value) in [
            ("x-ratelimit-limit", budget.limit),
            ("x-ratelimit-remaining", budget.remaining),
            ("x-ratelimit-used", budget.used),
            ("x-ratelimit-reset", budget.reset_at),
        ] {
            headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
        }
    }
    response
}

/// Runs one admitted operation, until the request's `deadline`.
async fn run(
    state: &HttpState,
    context: &RequestContext,
    operation: Admitted,
    place: Arc<OwnedSemaphorePermit>,
    deadline: Instant,
) -> Answer {
    let is_mutation = operation.is_mutation;
    let context = context.clone();
    let schema = state.schema.clone();
    let db = state.app.db.clone();
    let metrics = state.metrics.clone();
    let grace = state.request_timeout;
    let operation = async move {
        if let Some(body) = operation.answer_directly(&db, context.caller).await {
            metrics.direct_answers.fetch_add(1, Ordering::Relaxed);
            return (Answer::Direct(body), None);
        }
        let (request, fresh) = operation.into_parts();
        // Boxed: the executor's future is many times the size of a plan's, and inline
        // every request would carry it, answered directly or not.
        (Answer::Executed(Box::pin(schema.execute(request.data(context))).await), fresh)
    };
    // A query waits for its turn before it starts: queued, it holds this future
    // alone, not the database layer's (tens of KiB a statement, boxed as it starts).
    let queries = (!is_mutation).then(|| state.queries.clone());
    // Boxed: a future is copied each time it is moved, and one holding this one
    // inline (a mutation's task, the handler's future, each layer of the router's)
    // would be tens of KiB.
    let execution = Box::pin(async move {
        let _place = place;
        // No turn by the deadline: the operation is cancelled, as one that ran out.
        let _turn = match queries {
            Some(queries) => {
                Some(tokio::time::timeout_at(deadline, queries.acquire_owned()).await.ok()?.ok()?)
            }
            None => None,
        };
        within_deadline(deadline, grace, operation).await
    });
    // A mutation runs on a task of its own: a client that hangs up must not cancel it
    // half way through its transaction. The deadline does cancel it, until it begins
    // to commit: the transaction is dropped, which rolls it back before the
    // connection is used again. A query stops with its client; a panic in it is
    // caught as the task's would be. The task carries the request's span, so what
    // the operation logs carries its id.
    let outcome = if is_mutation {
        state
            .operations
            .spawn(execution.instrument(tracing::Span::current()))
            .await
            .map_err(|err| err.to_string())
    } else {
        AssertUnwindSafe(execution).catch_unwind().await.map_err(|_| "a query panicked".to_owned())
    };
    let (mut response, fresh) = match outcome {
        Ok(Some((Answer::Executed(response), fresh))) => (response, fresh),
        Ok(Some((direct, _))) => return direct,
        Ok(None) => {
            tracing::warn!(timeout = ?state.request_timeout, "an operation ran out of time and was cancelled");
            return Answer::Executed(async_graphql::Response::from_errors(vec![timed_out(
                state.request_timeout,
            )]));
        }
        Err(err) => {
            tracing::error!(error = %err, "a GraphQL operation's task failed");
            let error = with_code(ServerError::new("Internal server error", None), "INTERNAL_SERVER_ERROR");
            return Answer::Executed(async_graphql::Response::from_errors(vec![error]));
        }
    };
    fill_codes(&mut response);
    state.gate.validated(fresh, &response);
    response.errors.truncate(crate::graphql::MAX_ERRORS);
    Answer::Executed(response)
}

/// The error of a request that ran out of time.
fn timed_out(timeout: Duration) -> ServerError {
    let message =
        format!("The operation took longer than {} and was cancelled", humantime::format_duration(timeout));
    with_code(ServerError::new(message, None), "TIMEOUT")
}

/// Runs `operation` until it ends or `deadline` has passed; `None` when it was
/// cancelled. One that has begun to commit by then is given `grace` more to finish:
/// its writes stand, and its answer should say so rather than `TIMEOUT` (see
/// [`Commits`]).
async fn within_deadline<F: Future>(deadline: Instant, grace: Duration, operation: F) -> Option<F::Output> {
    let commits = Commits::default();
    let operation = commits.watch(operation);
    tokio::pin!(operation);
    tokio::select! {
        output = &mut operation => Some(output),
        () = tokio::time::sleep_until(deadline) => {
            if !commits.started() {
                return None;
            }
            tracing::info!("an operation ran out of time after it began to commit; it is given time to finish");
            tokio::time::timeout(grace, operation).await.ok()
        }
    }
}

/// Reads the caller from `Authorization: Bearer <token>`.
fn authenticate(state: &HttpState, headers: &HeaderMap) -> Caller {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Caller::Anonymous };
    match value.to_str().ok().and_then(bearer_token).map(|token| state.app.tokens.verify(token)) {
        Some(Ok(verified)) => Caller::User(Actor { user_id: verified.user_id }),
        _ => Caller::Rejected,
    }
}

/// The token of a `Bearer <token>` credential.
pub(crate) fn bearer_token(credential: &str) -> Option<&str> {
    credential
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
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
        let headers = [(header::CONTENT_TYPE, self.content_type()), (header::CACHE_CONTROL, "no-store")];
        let mut response = (status, headers, body).into_response();
        // Room for the headers still to come (the budget's four, the request id, the
        // layers'), so that the map is not grown and rehashed three times on the way.
        response.headers_mut().reserve(RESPONSE_HEADERS);
        response
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

    /// The response to a request's operations, one (`single`) or a batch.
    fn answer(self, single: bool, mut answers: Vec<Answer>) -> Response {
        if single && let Some(answer) = answers.pop() {
            return match answer {
                Answer::Executed(response) => self.respond(BatchResponse::Single(response)),
                Answer::Direct(body) => self.json(StatusCode::OK, body),
            };
        }
        cap_errors(&mut answers);
        // A batch is the array of its operations' responses, each written as alone.
        let mut body = b"[".to_vec();
        for (n, answer) in answers.iter().enumerate() {
            if n > 0 {
                body.push(b',');
            }
            let written = match answer {
                Answer::Executed(response) => serde_json::to_writer(&mut body, response),
                Answer::Direct(direct) => {
                    body.extend_from_slice(direct);
                    Ok(())
                }
            };
            if let Err(err) = written {
                tracing::error!(error = %err, "serialising a GraphQL response failed");
                return self.error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error".to_owned());
            }
        }
        body.push(b']');
        self.json(StatusCode::OK, body)
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

async fn readyz(State(state): State<Arc<HttpState>>) -> Response {
    match state.app.db.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
        }
    }
}

async fn metrics(State(state): State<Arc<HttpState>>) -> Response {
    let body = format!(
        "# HELP triage_sql_statements_total SQL statements sent to the database.\n\
         # TYPE triage_sql_statements_total counter\n\
         triage_sql_statements_total {}\n\
         # HELP triage_graphql_requests_total GraphQL HTTP requests served.\n\
         # TYPE triage_graphql_requests_total counter\n\
         triage_graphql_requests_total {}\n\
         # HELP triage_graphql_direct_answers_total GraphQL operations answered by their plan, without the executor.\n\
         # TYPE triage_graphql_direct_answers_total counter\n\
         triage_graphql_direct_answers_total {}\n",
        state.metrics.sql_statements.load(Ordering::Relaxed),
        state.metrics.graphql_requests.load(Ordering::Relaxed),
        state.metrics.direct_answers.load(Ordering::Relaxed),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
