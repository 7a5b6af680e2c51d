//! The PostgreSQL databases tests run on.
//!
//! Creating a database costs PostgreSQL a copy of its template and an fsync, and the
//! server copies one database at a time: with a database per test that was half the
//! suite's time. So a test takes an *empty* database rather than a new one:
//! - The first test of a run migrates a template; databases are copied from it when
//!   none is spare.
//! - A finished test's database is emptied (`TRUNCATE ... RESTART IDENTITY`, so ids
//!   start at 1 again) and kept for the next test of the run, unless the test
//!   changed its schema (a trigger, say): then it is dropped.
//! - Every database a run makes is named after its process, and the first test of a
//!   run drops those of processes that have ended (a run that was killed, or simply
//!   finished: nothing drops a run's databases when it exits). Runs at the same time,
//!   of the same build or not, leave each other's alone.

use std::sync::Mutex;

use sea_orm::{ConnectionTrait as _, Database, DatabaseConnection, Statement};
use triage::auth::TokenKeys;

/// The admin URL of a PostgreSQL server to test against, if any.
pub const ADMIN_URL_ENV: &str = "TRIAGE_TEST_DATABASE_URL";

/// Every database the suite makes starts with this, then the number of the process
/// that made it and `_`.
const PREFIX: &str = "triage_test_p";

/// The start of the names of this process's databases.
fn own_prefix() -> String {
    format!("{PREFIX}{}_", std::process::id())
}

/// One test's database.
#[derive(Debug)]
pub struct PostgresDatabase {
    admin_url: String,
    name: String,
}

/// Emptied databases of finished tests.
static SPARE: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The migrated template, made once a run.
static TEMPLATE: tokio::sync::OnceCell<Template> = tokio::sync::OnceCell::const_new();

#[derive(Debug)]
struct Template {
    name: String,
    /// The template's triggers and functions: a database with others was changed.
    schema: String,
}

impl PostgresDatabase {
    /// A spare database, else a new copy of the template.
    pub async fn take() -> Self {
        let admin_url = std::env::var(ADMIN_URL_ENV).expect("TRIAGE_TEST_DATABASE_URL");
        let template = template(&admin_url).await;
        let spare = SPARE.lock().expect("the spare list").pop();
        let name = match spare {
            Some(name) => name,
            None => {
                let name = format!("{}{}", own_prefix(), random_name());
                let admin = connect(&admin_url).await;
                execute(&admin, &format!("CREATE DATABASE \"{name}\" TEMPLATE \"{}\"", template.name)).await;
                admin.close().await.expect("closing the admin connection");
                name
            }
        };
        Self { admin_url, name }
    }

    pub fn url(&self) -> String {
        database_url(&self.admin_url, &self.name)
    }

    /// Empties the database for the next test, or drops it if its schema changed.
    /// Every server on it must have stopped.
    pub async fn release(self) {
        let template = TEMPLATE.get().expect("a template, since a database was taken");
        let db = connect(&self.url()).await;
        let reusable = schema_of(&db).await == template.schema;
        if reusable {
            let tables = user_tables(&db).await;
            execute(&db, &format!("TRUNCATE {} RESTART IDENTITY CASCADE", tables.join(", "))).await;
        }
        db.close().await.expect("closing the test database");
        if reusable {
            SPARE.lock().expect("the spare list").push(self.name);
        } else {
            let admin = connect(&self.admin_url).await;
            execute(&admin, &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name)).await;
            admin.close().await.expect("closing the admin connection");
        }
    }
}

/// The run's template, migrated on first use.
async fn template(admin_url: &str) -> &'static Template {
    TEMPLATE
        .get_or_init(async || {
            let admin = connect(admin_url).await;
            let existing = query_strings(
                &admin,
                &format!("SELECT datname::text FROM pg_database WHERE datname LIKE '{PREFIX}%'"),
            )
            .await;
            for stale in existing.iter().filter(|name| made_by_an_ended_process(name)) {
                execute(&admin, &format!("DROP DATABASE IF EXISTS \"{stale}\" WITH (FORCE)")).await;
            }
            let name = format!("{}template", own_prefix());
            execute(&admin, &format!("CREATE DATABASE \"{name}\"")).await;
            let db = connect(&database_url(admin_url, &name)).await;
            <migration::Migrator as migration::MigratorTrait>::up(&db, None)
                .await
                .expect("migrating the template");
            db.close().await.expect("closing the template");
            admin.close().await.expect("closing the admin connection");
            let db = connect(&database_url(admin_url, &name)).await;
            let schema = schema_of(&db).await;
            assert_no_seed_rows(&db).await;
            db.close().await.expect("closing the template");
            Template { name, schema }
        })
        .await
}

/// The names of the triggers and functions a database's tables have.
async fn schema_of(db: &DatabaseConnection) -> String {
    let triggers =
        query_strings(db, "SELECT tgname::text FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1").await;
    let functions = query_strings(
        db,
        "SELECT proname::text FROM pg_proc JOIN pg_namespace n ON n.oid = pronamespace \
         WHERE n.nspname = 'public' ORDER BY 1",
    )
    .await;
    format!("triggers: {triggers:?}; functions: {functions:?}")
}

/// Refuses a template whose migrations left rows: emptying a spare would lose them.
async fn assert_no_seed_rows(db: &DatabaseConnection) {
    let tables = user_tables(db).await;
    for table in tables {
        let rows = query_strings(db, &format!("SELECT count(*)::text FROM {table}")).await;
        assert_eq!(
            rows,
            ["0"],
            "the migrations put rows in {table}: a spare test database must get them back when emptied"
        );
    }
}

/// The tables the migrations made, quoted; not the migrations' own.
async fn user_tables(db: &DatabaseConnection) -> Vec<String> {
    query_strings(
        db,
        "SELECT quote_ident(tablename) FROM pg_tables \
         WHERE schemaname = 'public' AND tablename <> 'seaql_migrations'",
    )
    .await
}

async fn connect(url: &str) -> DatabaseConnection {
    Database::connect(url).await.unwrap_or_else(|err| panic!("connecting to PostgreSQL: {err}"))
}

async fn execute(db: &DatabaseConnection, sql: &str) {
    db.execute_unprepared(sql).await.unwrap_or_else(|err| panic!("{sql}: {err}"));
}

/// The first column of every row `sql` returns.
async fn query_strings(db: &DatabaseConnection, sql: &str) -> Vec<String> {
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap_or_else(|err| panic!("{sql}: {err}"));
    rows.iter().map(|row| row.try_get_by_index(0).expect("a text column")).collect()
}

/// Whether the database `name` was made by a process of this machine that has
/// ended.
fn made_by_an_ended_process(name: &str) -> bool {
    let process = name.strip_prefix(PREFIX).and_then(|rest| rest.split_once('_')).map(|(process, _)| process);
    match process.and_then(|process| process.parse::<u32>().ok()) {
        Some(process) => !std::path::Path::new(&format!("/proc/{process}")).exists(),
        None => false,
    }
}

/// `admin_url` with its database replaced by `name` (its parameters kept).
fn database_url(admin_url: &str, name: &str) -> String {
    let (address, parameters) = admin_url.split_once('?').map_or((admin_url, None), |(a, p)| (a, Some(p)));
    let base = address.rsplit_once('/').map_or(address, |(base, _)| base);
    match parameters {
        Some(parameters) => format!("{base}/{name}?{parameters}"),
        None => format!("{base}/{name}"),
    }
}

/// A short random lower-case name.
fn random_name() -> String {
    let random = TokenKeys::generate_paserk().expect("randomness");
    random.bytes().rev().take(12).map(|b| char::from(b'a' + b % 26)).collect()
}
