use std::process::Command;

use serde_json::{Value, json};
use triage::{
    config::Secret,
    startup::{Application, Overrides},
};

use crate::helpers::{Server, test_config};

const TRIAGE: &str = env!("CARGO_BIN_EXE_triage");

async fn post(server: &Server, token: Option<&str>, query: &str, variables: Value) -> Value {
    let mut request = reqwest::Client::new()
        .post(format!("http://{}/graphql", server.address))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn without_a_key_sqlite_generates_one_beside_the_database_and_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("triage.db");
    let mut config = test_config(format!("sqlite://{}?mode=rwc", db_path.display()), String::new());
    config.token_key = None;

    let server = Server::start(config.clone(), Overrides::default()).await;
    let register = post(
        &server,
        None,
        "mutation { register(input: { email: \"k@example.com\", username: \"keeper\", password: \"long enough\",
            firstName: \"K\", lastName: \"K\" }) { accessToken } }",
        json!({}),
    )
    .await;
    let token = register["data"]["register"]["accessToken"].as_str().unwrap().to_owned();
    server.stop().await;

    let key_path = dir.path().join("triage.db.token-key");
    let key = std::fs::read_to_string(&key_path).unwrap();
    assert!(key.starts_with("k4.local."), "{key}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is private");
    }

    // After a restart the same key is used, so the token from before still works.
    let server = Server::start(config, Overrides::default()).await;
    let me = post(&server, Some(&token), "{ me { username } }", json!({})).await;
    assert_eq!(me, json!({ "data": { "me": { "username": "keeper" } } }));
    server.stop().await;
}

#[tokio::test]
async fn postgres_without_a_key_refuses_to_start() {
    let mut config = test_config("postgres://postgres@127.0.0.1:1/none".to_owned(), String::new());
    config.token_key = None;
    let err = Application::build(config).await.expect_err("no key, no start").to_string();
    assert!(err.contains("TRIAGE_TOKEN_KEY"), "{err}");
}

#[tokio::test]
async fn a_malformed_key_is_a_start_up_error() {
    let mut config = test_config("sqlite::memory:".to_owned(), String::new());
    config.token_key = Some(Secret::new("k4.local.not-a-key"));
    let err = Application::build(config).await.expect_err("a bad key, no start").to_string();
    assert!(err.contains("TRIAGE_TOKEN_KEY"), "{err}");
}

#[tokio::test]
async fn no_turns_for_queries_is_a_start_up_error() {
    let mut config = test_config("sqlite::memory:".to_owned(), String::new());
    config.max_concurrent_queries = Some(0);
    let err = Application::build(config).await.expect_err("no turns, no start").to_string();
    assert!(err.contains("TRIAGE_MAX_CONCURRENT_QUERIES must be at least 1"), "{err}");
}

fn triage(args: &[&str], database_url: &str) -> std::process::Output {
    Command::new(TRIAGE)
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("TRIAGE_NEW_USER_PASSWORD", "bootstrap password")
        .env("TRIAGE_LOG", "warn")
        .output()
        .unwrap()
}

#[test]
fn migrate_and_user_create_work_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("cli.db").display());
    let stdout = |output: &std::process::Output| {
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout.clone()).unwrap()
    };

    let status = stdout(&triage(&["migrate", "status"], &url));
    assert!(status.lines().all(|line| line.starts_with("Pending")), "{status}");
    stdout(&triage(&["migrate", "up"], &url));
    let status = stdout(&triage(&["migrate", "status"], &url));
    assert!(
        status.lines().count() >= 3 && status.lines().all(|line| line.starts_with("Applied")),
        "{status}"
    );

    let created = stdout(&triage(
        &[
            "user",
            "create",
            "--username",
            "root_admin",
            "--email",
            "admin@example.com",
            "--first-name",
            "Ada",
        ],
        &url,
    ));
    assert!(created.contains("root_admin"), "{created}");
    let again = triage(&["user", "create", "--username", "ROOT_ADMIN", "--email", "other@example.com"], &url);
    assert!(!again.status.success(), "a taken username is refused");

    stdout(&triage(&["migrate", "down"], &url));
    let status = stdout(&triage(&["migrate", "status"], &url));
    assert!(status.lines().last().unwrap().starts_with("Pending"), "{status}");
}

/// The bundled SQLite is built without memory statistics (`.cargo/config.toml`):
/// with them, every allocation takes a global mutex.
#[tokio::test]
async fn sqlite_is_built_without_memory_statistics() {
    use sea_orm::ConnectionTrait as _;
    let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
    let statement = sea_orm::Statement::from_string(db.get_database_backend(), "PRAGMA compile_options");
    let options: Vec<String> = db
        .query_all_raw(statement)
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get_by_index::<String>(0).unwrap())
        .collect();
    assert!(options.iter().any(|option| option == "DEFAULT_MEMSTATUS=0"), "{options:?}");
}

/// Every SQLite connection the server opens keeps a small page cache (256 KiB, in
/// place of SQLite's 2,000): the rest comes from the operating system's file cache.
#[tokio::test]
async fn sqlite_connections_keep_a_small_page_cache() {
    use sea_orm::ConnectionTrait as _;
    let dir = tempfile::tempdir().unwrap();
    let config = triage::config::DatabaseConfig {
        database_url: Secret::new(format!("sqlite://{}?mode=rwc", dir.path().join("cache.db").display())),
        db_max_connections: Some(2),
        db_statement_timeout: std::time::Duration::from_secs(30),
    };
    let db = triage::startup::connect(&config, None).await.unwrap();
    let statement = sea_orm::Statement::from_string(db.get_database_backend(), "PRAGMA cache_size");
    let rows = db.query_all_raw(statement).await.unwrap();
    assert_eq!(rows[0].try_get_by_index::<i64>(0).unwrap(), -256);
}
