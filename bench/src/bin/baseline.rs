//! The baseline of the API benchmark: minimal axum handlers that run by hand the SQL
//! Triage runs, and write the same JSON. What Triage spends beyond them (GraphQL
//! parsing, validation and execution, the ORM, its middleware, its checks) is what
//! the Triage/baseline ratios of `bench/run api` show. Not part of the product.
//!
//! - Scenario 1 (a page of 20 issues of one assignee, with `totalCount` and each
//!   issue's creator and assignee) and scenario 2 (one issue by id): Triage's very
//!   statement, and byte-identical JSON (`api` checks both).
//! - Scenario 3 (`createIssue` with an assignee) and 4 (`updateIssue` giving a new
//!   assignee): one transaction a request that writes what Triage's writes, the
//!   issue row (with its number from the project's counter) and its assignee's
//!   notice row, cancelling the former assignee's; it checks nothing Triage checks
//!   beyond the creator of an updated issue. Writers take turns on one in-process
//!   lock, as Triage's do, and begin with `BEGIN IMMEDIATE` on SQLite.
//!
//! `POST /graphql` reads only the variables of the body and ignores the query text:
//! `t` (a title) is scenario 3, `id` with `a` scenario 4, `a` scenario 1, `id`
//! scenario 2. It checks the bearer token with Triage's own code and key, so
//! authentication costs both servers the same. `GET /readyz` answers once the pool is
//! open.
//!
//! Env: `DATABASE_URL`, `TRIAGE_TOKEN_KEY`, `TRIAGE_LISTEN`, `TRIAGE_ASSIGNMENT_DELAY`
//! (as Triage reads it; default 12 minutes) and `TRIAGE_DB_MAX_CONNECTIONS` (default as
//! Triage's: 4 on SQLite, 16 on PostgreSQL).

use std::{sync::Arc, time::Duration};

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
    auth::TokenKeys,
    config::{DatabaseConfig, Secret},
    startup::connect,
};

/// Issues on a page, as in `issues(first: 20)`.
const PAGE: usize = 20;

/// Every column of `issues`, as sea-orm selects them for a list.
const ISSUE_COLUMNS: &str = r#""issues"."id", "issues"."project_id", "issues"."number", "issues"."kind", "issues"."title", "issues"."description", "issues"."status", "issues"."created_by", "issues"."assigned_to", "issues"."created_at", "issues"."updated_at", "issues"."closed_at", "issues"."deleted_at""#;

/// The columns of `users` a list joins for each person (Triage's `Profile::COLUMNS`).
const USER_COLUMNS: [&str; 6] = ["id", "username", "email", "first_name", "last_name", "created_at"];

/// The one statement Triage sends for scenario 1, as sea-query renders it for the
/// backend (read off the statement sea-orm sends): the page in keyset order, newest
/// first, one row more than the page to learn whether another follows, with each
/// issue's creator and assignee joined, `totalCount` as a scalar subquery, and
/// the visibility rule (a PUBLIC project, one of the caller's projects, or an
/// instance admin) in both the page and the count, which join the project for it.
///
/// `issue` is scenario 2's: one issue by id, joined to its project for the same rule.
#[derive(Debug)]
struct Statements {
    page: Arc<str>,
    issue: Arc<str>,
    /// Scenarios 3 and 4, in the order a write runs them.
    begin: &'static str,
    take_number: Arc<str>,
    insert_issue: Arc<str>,
    reassign: Arc<str>,
    cancel_notice: Arc<str>,
    insert_notice: Arc<str>,
}

impl Statements {
    fn new(backend: DatabaseBackend) -> Self {
        let postgres = backend == DatabaseBackend::Postgres;
        let param = |n: usize| if postgres { format!("${n}") } else { "?".to_owned() };
        let aliased = |alias: &str, columns: &[&str]| -> Vec<String> {
            columns.iter().map(|column| format!(r#""{alias}"."{column}" AS "{alias}_{column}""#)).collect()
        };
        let mut joined = aliased("creator", &USER_COLUMNS);
        joined.extend(aliased("assignee", &USER_COLUMNS));
        let condition = |first: usize| {
            let p = |n: usize| param(first + n);
            format!(
                r#"("proj"."visibility" = {} OR "proj"."id" IN (SELECT "project_id" FROM "project_members" WHERE "project_members"."user_id" = {}) OR EXISTS(SELECT {} FROM "users" WHERE "users"."id" = {} AND "users"."role" = {})) AND "issues"."deleted_at" IS NULL AND "issues"."assigned_to" = {}"#,
                p(0),
                p(1),
                p(2),
                p(3),
                p(4),
                p(5),
            )
        };
        let with_project =
            r#""issues" INNER JOIN "projects" AS "proj" ON "proj"."id" = "issues"."project_id""#;
        let page = format!(
            r#"SELECT {ISSUE_COLUMNS}, {}, (SELECT COUNT(*) AS "n" FROM {with_project} WHERE {}) AS "page_total" FROM {with_project} LEFT JOIN "users" AS "creator" ON "creator"."id" = "issues"."created_by" LEFT JOIN "users" AS "assignee" ON "assignee"."id" = "issues"."assigned_to" WHERE {} ORDER BY "issues"."created_at" DESC, "issues"."id" DESC LIMIT {}"#,
            joined.join(", "),
            condition(1),
            condition(7),
            PAGE + 1,
        );
        let issue = format!(
            r#"SELECT {ISSUE_COLUMNS} FROM {with_project} WHERE {}"#,
            condition(1).replace(r#""issues"."assigned_to""#, r#""issues"."id""#)
        );
        let numbered = |sql: &str| {
            let mut n = 0;
            sql.split('?')
                .enumerate()
                .map(|(i, part)| {
                    if i == 0 {
                        return part.to_owned();
                    }
                    n += 1;
                    format!("{}{part}", param(n))
                })
                .collect::<String>()
        };
        Self {
            page: page.into(),
            issue: issue.into(),
            begin: if postgres { "BEGIN" } else { "BEGIN IMMEDIATE" },
            take_number: numbered(
                r#"UPDATE "projects" SET "next_number" = "next_number" + 1 WHERE "id" = ? RETURNING "next_number""#,
            )
            .into(),
            insert_issue: numbered(
                r#"INSERT INTO "issues" ("project_id", "number", "kind", "title", "description", "status", "created_by", "assigned_to", "created_at", "updated_at") VALUES (?, ?, 'TASK', ?, '', 'OPEN', ?, ?, ?, ?) RETURNING "id""#,
            )
            .into(),
            reassign: numbered(
                r#"UPDATE "issues" SET "assigned_to" = ?, "updated_at" = ? WHERE "id" = ? AND "created_by" = ? AND "deleted_at" IS NULL RETURNING "id""#,
            )
            .into(),
            cancel_notice: numbered(
                r#"UPDATE "notices" SET "state" = 'cancelled', "last_error" = 'cancelled: the assignment changed' WHERE "issue_id" = ? AND "kind" = 'assignment' AND "state" = 'pending'"#,
            )
            .into(),
            insert_notice: numbered(
                r#"INSERT INTO "notices" ("kind", "issue_id", "recipient_id", "actor_id", "due_at", "state", "attempts", "created_at") VALUES ('assignment', ?, ?, ?, ?, 'pending', 0, ?)"#,
            )
            .into(),
        }
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
    /// One writer at a time, as in Triage.
    write_turn: tokio::sync::Mutex<()>,
    /// How long after an assignment its notice is due.
    assignment_delay: chrono::Duration,
}

/// The body of a scenario 1 request; only `variables.a` is read.
#[derive(Debug, Deserialize)]
struct GraphqlRequest {
    variables: Variables,
}

#[derive(Debug, Deserialize)]
struct Variables {
    /// Scenario 1's assignee, and the new assignee of 3 and 4.
    a: Option<String>,
    /// Scenario 2's issue, and 4's.
    id: Option<String>,
    /// Scenario 3's title.
    t: Option<String>,
}

/// Scenario 2's response: `issue(id) { id title status createdAt }`.
#[derive(Debug, Serialize)]
struct IssueResponse {
    data: IssueData,
}

#[derive(Debug, Serialize)]
struct IssueData {
    issue: Option<IssueNode>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct IssueNode {
    id: String,
    title: String,
    status: String,
    created_at: String,
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

/// Runs scenario 1's statement on `$pool` (either backend's pool: the code is the
/// same, the types differ); evaluates to the total and the page's nodes.
macro_rules! scenario_1 {
    ($pool:expr, $statements:expr, $viewer:expr, $assignee:expr) => {{
        let mut query = sqlx::query(AssertSqlSafe($statements.page.clone()));
        for _ in 0..2 {
            query =
                query.bind("PUBLIC").bind($viewer).bind(1_i32).bind($viewer).bind("admin").bind($assignee);
        }
        let rows = query.fetch_all($pool).await?;
        let total = match rows.first() {
            Some(row) => row.try_get::<i64, _>("page_total")?,
            None => 0,
        };
        let nodes = rows
            .iter()
            .take(PAGE)
            .map(|row| {
                let created_at: DateTime<Utc> = row.try_get("created_at")?;
                let assignee: Option<String> = row.try_get("assignee_username")?;
                Ok(Node {
                    id: row.try_get::<i64, _>("id")?.to_string(),
                    title: row.try_get("title")?,
                    // Stored as the GraphQL enum's names (`OPEN`, `IN_PROGRESS`, `CLOSED`).
                    status: row.try_get("status")?,
                    created_at: created_at.to_rfc3339(),
                    created_by: Person { username: row.try_get("creator_username")? },
                    assigned_to: assignee.map(|username| Person { username }),
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        (total, nodes)
    }};
}

/// Runs scenario 2's statement on `$pool`; evaluates to the issue, if readable.
macro_rules! scenario_2 {
    ($pool:expr, $statements:expr, $viewer:expr, $id:expr) => {{
        let row = sqlx::query(AssertSqlSafe($statements.issue.clone()))
            .bind("PUBLIC")
            .bind($viewer)
            .bind(1_i32)
            .bind($viewer)
            .bind("admin")
            .bind($id)
            .fetch_optional($pool)
            .await?;
        match row {
            Some(row) => {
                let created_at: DateTime<Utc> = row.try_get("created_at")?;
                Some(IssueNode {
                    id: row.try_get::<i64, _>("id")?.to_string(),
                    title: row.try_get("title")?,
                    status: row.try_get("status")?,
                    created_at: created_at.to_rfc3339(),
                })
            }
            None => None,
        }
    }};
}

/// Runs one write of scenario 3 or 4 on `$pool` in one transaction: for an issue of
/// `$creator` (scenario 4; its id) or a new one titled `$title` (scenario 3), the
/// assignee `$assignee` and a notice for them. Evaluates to the issue's id, or `None`
/// when `$creator` did not create the issue.
macro_rules! write_scenario {
    ($pool:expr, $statements:expr, $delay:expr, $creator:expr, $title:expr, $issue:expr, $assignee:expr) => {{
        let statements = $statements;
        let mut txn = $pool.begin_with(statements.begin).await?;
        let now = Utc::now();
        let id: Option<i64> = match ($title, $issue) {
            (Some(title), _) => {
                let next: i64 = sqlx::query_scalar(AssertSqlSafe(statements.take_number.clone()))
                    .bind(DEFAULT_PROJECT)
                    .fetch_one(&mut *txn)
                    .await?;
                let id = sqlx::query_scalar(AssertSqlSafe(statements.insert_issue.clone()))
                    .bind(DEFAULT_PROJECT)
                    .bind(next - 1)
                    .bind(title)
                    .bind($creator)
                    .bind($assignee)
                    .bind(now)
                    .bind(now)
                    .fetch_one(&mut *txn)
                    .await?;
                Some(id)
            }
            (None, Some(issue)) => {
                let id = sqlx::query_scalar(AssertSqlSafe(statements.reassign.clone()))
                    .bind($assignee)
                    .bind(now)
                    .bind(issue)
                    .bind($creator)
                    .fetch_optional(&mut *txn)
                    .await?;
                if id.is_some() {
                    sqlx::query(AssertSqlSafe(statements.cancel_notice.clone()))
                        .bind(issue)
                        .execute(&mut *txn)
                        .await?;
                }
                id
            }
            (None, None) => None,
        };
        if let Some(id) = id {
            sqlx::query(AssertSqlSafe(statements.insert_notice.clone()))
                .bind(id)
                .bind($assignee)
                .bind($creator)
                .bind(now + $delay)
                .bind(now)
                .execute(&mut *txn)
                .await?;
        }
        txn.commit().await?;
        id
    }};
}

/// The default project, where scenario 3's issues go.
const DEFAULT_PROJECT: i64 = 1;

impl App {
    /// Scenario 3 (`title`) or 4 (`issue`): the response's JSON.
    async fn write(
        &self,
        creator: i64,
        title: Option<&str>,
        issue: Option<i64>,
        assignee: i64,
    ) -> anyhow::Result<serde_json::Value> {
        let _turn = self.write_turn.lock().await;
        let delay = self.assignment_delay;
        let id = match &self.pool {
            Pool::Sqlite(pool) => {
                write_scenario!(pool, &self.statements, delay, creator, title, issue, assignee)
            }
            Pool::Postgres(pool) => {
                write_scenario!(pool, &self.statements, delay, creator, title, issue, assignee)
            }
        };
        let field = if title.is_some() { "createIssue" } else { "updateIssue" };
        Ok(match id {
            Some(id) => serde_json::json!({ "data": { field: { "issue": { "id": id.to_string() } } } }),
            None => serde_json::json!({
                "data": null,
                "errors": [{ "message": "Only the issue's creator may change it", "extensions": { "code": "FORBIDDEN" } }],
            }),
        })
    }

    async fn issue_by_id(&self, viewer: i64, id: i64) -> anyhow::Result<IssueResponse> {
        let issue = match &self.pool {
            Pool::Sqlite(pool) => scenario_2!(pool, &self.statements, viewer, id),
            Pool::Postgres(pool) => scenario_2!(pool, &self.statements, viewer, id),
        };
        Ok(IssueResponse { data: IssueData { issue } })
    }

    async fn issues_by_assignee(&self, viewer: i64, assignee: i64) -> anyhow::Result<GraphqlResponse> {
        let (total_count, nodes) = match &self.pool {
            Pool::Sqlite(pool) => scenario_1!(pool, &self.statements, viewer, assignee),
            Pool::Postgres(pool) => scenario_1!(pool, &self.statements, viewer, assignee),
        };
        Ok(GraphqlResponse { data: Data { issues: Connection { total_count, nodes } } })
    }

    /// The caller, if the request carries a valid access token, checked in full as
    /// Triage checks a token it has not seen before (Triage then remembers it until
    /// it expires; a hand-written handler checks every time).
    fn authenticated(&self, headers: &HeaderMap) -> Option<i64> {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .and_then(|(_, token)| self.tokens.verify_in_full(token.trim()).ok())
            .map(|verified| verified.user_id.0)
    }
}

async fn graphql(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(viewer) = app.authenticated(&headers) else {
        return error(StatusCode::UNAUTHORIZED, "The access token is invalid or expired");
    };
    let Ok(request) = serde_json::from_slice::<GraphqlRequest>(&body) else {
        return error(StatusCode::BAD_REQUEST, "Expected scenario 1's or 2's variables: {\"a\"} or {\"id\"}");
    };
    // As Triage reads an id: one that names no row names nothing.
    let id_of = |id: &str| id.parse::<i64>().ok().filter(|id| *id > 0).unwrap_or(0);
    let Variables { a, id, t } = &request.variables;
    let body = match (t, id, a) {
        (Some(title), _, Some(assignee)) => {
            app.write(viewer, Some(title), None, id_of(assignee)).await.map(|r| serde_json::to_vec(&r))
        }
        (None, Some(issue), Some(assignee)) => {
            app.write(viewer, None, Some(id_of(issue)), id_of(assignee)).await.map(|r| serde_json::to_vec(&r))
        }
        (None, None, Some(assignee)) => {
            app.issues_by_assignee(viewer, id_of(assignee)).await.map(|r| serde_json::to_vec(&r))
        }
        (None, Some(id), None) => app.issue_by_id(viewer, id_of(id)).await.map(|r| serde_json::to_vec(&r)),
        _ => return error(StatusCode::BAD_REQUEST, "Expected the variables of scenario 1, 2, 3 or 4"),
    };
    let body = match body {
        Ok(body) => body,
        Err(err) => {
            eprintln!("baseline: a scenario failed: {err:#}");
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
        Ok(value) => Some(value.parse().context("TRIAGE_DB_MAX_CONNECTIONS must be a number")?),
        Err(_) => None,
    };
    let config = DatabaseConfig {
        database_url: Secret::new(env("DATABASE_URL")?),
        db_max_connections: max_connections,
        db_statement_timeout: std::time::Duration::from_secs(30),
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
    let assignment_delay = match std::env::var("TRIAGE_ASSIGNMENT_DELAY") {
        Ok(value) => humantime::parse_duration(&value).context("TRIAGE_ASSIGNMENT_DELAY")?,
        Err(_) => Duration::from_secs(12 * 60),
    };
    let app = Arc::new(App {
        pool,
        statements: Statements::new(backend),
        tokens,
        write_turn: tokio::sync::Mutex::new(()),
        assignment_delay: chrono::Duration::from_std(assignment_delay)?,
    });
    let router = Router::new()
        .route("/graphql", post(graphql))
        .route("/readyz", get(|| async { "ready" }))
        .with_state(app);
    let listen = env("TRIAGE_LISTEN")?;
    let listener =
        tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("binding {listen}"))?;
    axum::serve(listener, router).await.context("serving HTTP")
}
