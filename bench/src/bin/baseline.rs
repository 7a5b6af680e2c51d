//! The baseline of the API benchmark: scenario 1 (a page of 20 issues of one
//! assignee, with `totalCount` and each issue's creator and assignee) served by a
//! minimal axum handler that runs by hand the SQL Triage runs for it and writes the
//! same JSON. What Triage spends beyond this (GraphQL parsing, validation and
//! execution, the ORM, the DataLoader, its middleware) is what the Triage/baseline
//! ratio of `bench/run api` shows. Not part of the product.
//!
//! `POST /graphql` reads only the variable `a` (the assignee's id) of the body and
//! ignores the query text: it answers scenario 1 whatever is asked. It checks the
//! bearer token with Triage's own code and key, so authentication costs both servers
//! the same. `GET /readyz` answers once the pool is open.
//!
//! Env: `DATABASE_URL`, `TRIAGE_TOKEN_KEY`, `TRIAGE_LISTEN`, and
//! `TRIAGE_DB_MAX_CONNECTIONS` (default 16, as Triage's).

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
    time::Duration,
};

use anyhow::Context as _;
use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use chrono::{DateTime, Utc};
use sea_orm::{
    DatabaseBackend,
    sqlx::{self, AssertSqlSafe, Row as _},
};
use serde::{Deserialize, Serialize};
use triage::{
    app::connect,
    auth::TokenKeys,
    config::{DatabaseConfig, Secret},
};

/// Issues on a page, as in `issues(first: 20)`.
const PAGE: usize = 20;

/// Every column of `issues`, as sea-orm selects them for a list.
const ISSUE_COLUMNS: &str = r#""issues"."id", "issues"."title", "issues"."description", "issues"."status", "issues"."created_by", "issues"."assigned_to", "issues"."created_at", "issues"."updated_at", "issues"."closed_at""#;

/// Every column of `users`, as sea-orm selects them for the users' DataLoader.
const USER_COLUMNS: &str = r#""users"."id", "users"."username", "users"."email", "users"."first_name", "users"."last_name", "users"."password_hash", "users"."role", "users"."created_at", "users"."updated_at""#;

/// The statements Triage sends for scenario 1, in its order, as sea-query renders
/// them for the backend: the `totalCount` (sea-orm's `count`, a COUNT over the
/// filtered select), the page (keyset order, newest first, one row more than the page
/// to learn whether another follows), and the page's people by id (the DataLoader's
/// batch, the distinct ids of creators and assignees).
#[derive(Debug)]
struct Statements {
    count: Arc<str>,
    page: Arc<str>,
    /// `users_by_id[n - 1]` selects `n` users.
    users_by_id: Vec<Arc<str>>,
}

impl Statements {
    fn new(backend: DatabaseBackend) -> Self {
        let postgres = backend == DatabaseBackend::Postgres;
        let param = |n: usize| if postgres { format!("${n}") } else { "?".to_owned() };
        let filtered =
            format!(r#"SELECT {ISSUE_COLUMNS} FROM "issues" WHERE "issues"."assigned_to" = {}"#, param(1));
        let count = format!(r#"SELECT COUNT(*) AS num_items FROM ({filtered}) AS "sub_query""#);
        let page = format!(
            r#"{filtered} ORDER BY "issues"."created_at" DESC, "issues"."id" DESC LIMIT {}"#,
            param(2)
        );
        let users_by_id = (1..=2 * PAGE)
            .map(|n| {
                let params: Vec<String> = (1..=n).map(param).collect();
                format!(r#"SELECT {USER_COLUMNS} FROM "users" WHERE "users"."id" IN ({})"#, params.join(", "))
                    .into()
            })
            .collect();
        Self { count: count.into(), page: page.into(), users_by_id }
    }
}

#[derive(Debug, Clone)]
enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

#[derive(Debug)]
struct App {
    pool: Pool,
    statements: Statements,
    tokens: TokenKeys,
}

/// The body of a scenario 1 request; only `variables.a` is read.
#[derive(Debug, Deserialize)]
struct GraphqlRequest {
    variables: Variables,
}

#[derive(Debug, Deserialize)]
struct Variables {
    a: String,
}

/// The response, field for field in the order of scenario 1's selection, as Triage
/// writes it.
#[derive(Debug, Serialize)]
struct GraphqlResponse {
    data: Data,
}

#[derive(Debug, Serialize)]
struct Data {
    issues: Connection,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Connection {
    total_count: i64,
    nodes: Vec<Node>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Node {
    id: String,
    title: String,
    status: String,
    created_at: String,
    created_by: Person,
    assigned_to: Option<Person>,
}

#[derive(Debug, Clone, Serialize)]
struct Person {
    username: String,
}

/// The columns of an issue the response needs.
#[derive(Debug)]
struct IssueRow {
    id: i64,
    title: String,
    status: String,
    created_by: i64,
    assigned_to: Option<i64>,
    created_at: DateTime<Utc>,
}

/// Runs scenario 1's statements on `$pool` (either backend's pool: the code is the
/// same, the types differ); evaluates to the total, the page and the people by id.
macro_rules! scenario_1 {
    ($pool:expr, $statements:expr, $assignee:expr) => {{
        let statements = $statements;
        let total: i64 = sqlx::query_scalar(AssertSqlSafe(statements.count.clone()))
            .bind($assignee)
            .fetch_one($pool)
            .await?;
        let rows = sqlx::query(AssertSqlSafe(statements.page.clone()))
            .bind($assignee)
            .bind(PAGE as i64 + 1)
            .fetch_all($pool)
            .await?;
        let issues = rows
            .iter()
            .take(PAGE)
            .map(|row| {
                Ok(IssueRow {
                    id: row.try_get("id")?,
                    title: row.try_get("title")?,
                    status: row.try_get("status")?,
                    created_by: row.try_get("created_by")?,
                    assigned_to: row.try_get("assigned_to")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let ids: BTreeSet<i64> =
            issues.iter().flat_map(|issue| [Some(issue.created_by), issue.assigned_to]).flatten().collect();
        let mut people = HashMap::with_capacity(ids.len());
        if let Some(statement) = ids.len().checked_sub(1).and_then(|n| statements.users_by_id.get(n)) {
            let mut query = sqlx::query(AssertSqlSafe(statement.clone()));
            for id in &ids {
                query = query.bind(*id);
            }
            for row in query.fetch_all($pool).await? {
                people.insert(row.try_get::<i64, _>("id")?, Person { username: row.try_get("username")? });
            }
        }
        (total, issues, people)
    }};
}

impl App {
    async fn issues_by_assignee(&self, assignee: i64) -> anyhow::Result<GraphqlResponse> {
        let (total_count, issues, people) = match &self.pool {
            Pool::Sqlite(pool) => scenario_1!(pool, &self.statements, assignee),
            Pool::Postgres(pool) => scenario_1!(pool, &self.statements, assignee),
        };
        let person = |id: i64| people.get(&id).cloned();
        let nodes = issues
            .into_iter()
            .map(|issue| {
                Ok(Node {
                    id: issue.id.to_string(),
                    title: issue.title,
                    // Stored as the GraphQL enum's names (`OPEN`, `IN_PROGRESS`, `CLOSED`).
                    status: issue.status,
                    created_at: issue.created_at.to_rfc3339(),
                    created_by: person(issue.created_by).context("issue creator is missing")?,
                    assigned_to: issue.assigned_to.and_then(person),
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(GraphqlResponse { data: Data { issues: Connection { total_count, nodes } } })
    }

    /// Whether the request carries a valid access token, checked as Triage checks it.
    fn authenticated(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .is_some_and(|(_, token)| self.tokens.verify(token.trim()).is_ok())
    }
}

async fn graphql(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    if !app.authenticated(&headers) {
        return error(StatusCode::UNAUTHORIZED, "The access token is invalid or expired");
    }
    let Ok(request) = serde_json::from_slice::<GraphqlRequest>(&body) else {
        return error(StatusCode::BAD_REQUEST, "Expected scenario 1's variables: {\"a\": \"<user id>\"}");
    };
    // As Triage reads a filter's id: one that names no row filters to nothing.
    let assignee = request.variables.a.parse::<i64>().ok().filter(|id| *id > 0).unwrap_or(0);
    let body = match app.issues_by_assignee(assignee).await {
        Ok(response) => serde_json::to_vec(&response),
        Err(err) => {
            eprintln!("baseline: scenario 1 failed: {err:#}");
            return error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error");
        }
    };
    match body {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error"),
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "errors": [{ "message": message }] }))).into_response()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = |name: &str| std::env::var(name).with_context(|| format!("{name} must be set"));
    let max_connections = match std::env::var("TRIAGE_DB_MAX_CONNECTIONS") {
        Ok(value) => value.parse().context("TRIAGE_DB_MAX_CONNECTIONS must be a number")?,
        Err(_) => 16,
    };
    let config = DatabaseConfig {
        database_url: Secret::new(env("DATABASE_URL")?),
        db_max_connections: max_connections,
    };
    // Triage's own pool settings (SQLite in WAL mode, busy timeout and all); the
    // statements then go to the sqlx pool underneath, by hand.
    let db = connect(&config, None).await?;
    let backend = db.get_database_backend();
    let pool = match backend {
        DatabaseBackend::Sqlite => Pool::Sqlite(db.get_sqlite_connection_pool().clone()),
        DatabaseBackend::Postgres => Pool::Postgres(db.get_postgres_connection_pool().clone()),
        other => anyhow::bail!("the baseline runs on SQLite or PostgreSQL, not {other:?}"),
    };
    let tokens = TokenKeys::from_paserk(&env("TRIAGE_TOKEN_KEY")?, "triage", Duration::from_secs(3600))?;
    let app = Arc::new(App { pool, statements: Statements::new(backend), tokens });
    let router = Router::new()
        .route("/graphql", post(graphql))
        .route("/readyz", get(|| async { "ready" }))
        .with_state(app);
    let listen = env("TRIAGE_LISTEN")?;
    let listener =
        tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("binding {listen}"))?;
    axum::serve(listener, router).await.context("serving HTTP")
}
