//! A digest for 10,000 users with 20 assigned issues each: how long from the run
//! starting until every digest was delivered?
//!
//! `cargo run --release -p triage-bench --bin digest` (or `bench/run`).
//! Env: `USERS` (default 10000), `BENCH_DATABASE_URL` (an empty database).

use std::time::{Duration, Instant};

use chrono::Utc;
use migration::{Migrator, MigratorTrait as _};
use triage::{
    app::connect,
    auth::TokenKeys,
    config::{DatabaseConfig, Secret},
    domain::notices::Outbox,
    jobs::run_digest,
};
use triage_bench::{Server, at, insert_rows, seed_users, smtp_sink};

const ISSUES_EACH: usize = 20;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let users: usize = std::env::var("USERS").ok().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let dir = tempfile::tempdir()?;
    let url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display()));
    let db = connect(&DatabaseConfig { database_url: Secret::new(url.clone()), db_max_connections: 4 }, None)
        .await?;
    Migrator::up(&db, None).await?;

    println!("seeding {users} users with {ISSUES_EACH} assigned issues each");
    seed_users(&db, users).await?;
    let now = at(Utc::now());
    let statuses = ["OPEN", "IN_PROGRESS", "CLOSED"];
    insert_rows(
        &db,
        "issues",
        "title, description, status, created_by, assigned_to, created_at, updated_at",
        (0..users * ISSUES_EACH).map(|i| {
            let assignee = i / ISSUES_EACH + 1;
            let status = statuses[i % statuses.len()];
            format!("('Issue {i}', 'Bench issue', '{status}', 1, {assignee}, {now}, {now})")
        }),
    )
    .await?;

    let (smtp_url, arrivals) = smtp_sink().await?;
    let env = [
        ("DATABASE_URL", url.clone()),
        ("TRIAGE_TOKEN_KEY", TokenKeys::generate_paserk()?),
        ("TRIAGE_SMTP_URL", smtp_url),
        (
            "TRIAGE_MAIL_CONCURRENCY",
            std::env::var("TRIAGE_MAIL_CONCURRENCY").unwrap_or_else(|_| "128".to_owned()),
        ),
        ("TRIAGE_DIGEST_EVERY", "100000h".to_owned()),
        ("TRIAGE_NOTICE_SWEEP", "200ms".to_owned()),
        ("TRIAGE_MAIL_DIR", dir.path().join("mail").display().to_string()),
    ];
    let server = Server::start(&env).await?;
    server.ready().await?;

    let started = Instant::now();
    let enqueued = run_digest(&db, &Outbox::new(Duration::ZERO), "bench", false).await?;
    let enqueue_time = started.elapsed();
    let deadline = started + Duration::from_secs(300);
    let mut peak_kib = server.rss_kib();
    while arrivals.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.len() < users && Instant::now() < deadline
    {
        peak_kib = peak_kib.max(server.rss_kib());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    server.stop().await?;
    db.close().await?;

    let arrivals = arrivals.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let duplicates = arrivals.values().filter(|times| times.len() > 1).count();
    println!("\nresult");
    println!("  enqueued            {enqueued} in {:.0} ms", enqueue_time.as_secs_f64() * 1e3);
    println!("  delivered           {} of {users}, twice: {duplicates}", arrivals.len());
    println!("  run to last email   {:.1} s", elapsed.as_secs_f64());
    println!("  server peak RSS     {:.1} MiB", peak_kib as f64 / 1024.0);
    Ok(())
}
