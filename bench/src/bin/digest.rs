//! A digest for 10,000 users with 20 assigned issues each: how long from the run
//! starting until every digest was delivered?
//!
//! `cargo run --release -p triage-bench --bin digest` (or `bench/run`).
//! Env: `USERS` (default 10000), `BENCH_DATABASE_URL` (an empty database).

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use chrono::Utc;
use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _};
use triage::{clock::Clock, domain::notices::Outbox, entity::notices, jobs::run_digest};
use triage_bench::{
    Arrivals, DEFAULT_PROJECT, Fixture, ISSUE_COLUMNS, Server, at, finish_numbering, insert_rows,
    seed_default_project, seed_users, smtp_sink,
};

const ISSUES_EACH: usize = 20;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let users: usize = std::env::var("USERS").ok().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let fixture = Fixture::new().await?;
    let db = &fixture.db;

    println!("seeding {users} users with {ISSUES_EACH} assigned issues each");
    seed_users(db, users).await?;
    seed_default_project(db, users).await?;
    let now = at(Utc::now());
    let statuses = ["OPEN", "IN_PROGRESS", "CLOSED"];
    insert_rows(
        db,
        "issues",
        ISSUE_COLUMNS,
        (0..users * ISSUES_EACH).map(|i| {
            let assignee = i / ISSUES_EACH + 1;
            let status = statuses[i % statuses.len()];
            let number = i + 1;
            format!(
                "({DEFAULT_PROJECT}, {number}, 'Issue {i}', 'Bench issue', '{status}', 1, {assignee}, {now}, {now})"
            )
        }),
    )
    .await?;
    finish_numbering(db).await?;

    let (smtp_url, arrivals) = smtp_sink().await?;
    let env = fixture.server_env(smtp_url)?;
    let server = Server::start(&env).await?;
    server.ready().await?;

    let started = Instant::now();
    // This process's outbox wakes no dispatcher: the server's own sweep finds the digests.
    let clock = Clock::system();
    let outbox = Outbox::new(Duration::ZERO, clock.clone(), clock.timer().handle());
    let enqueued = run_digest(db, &outbox, "bench", false, clock.now()).await?;
    let enqueue_time = started.elapsed();
    let ours: HashSet<i64> = notices::Entity::find()
        .filter(notices::Column::DedupeKey.like("digest:bench:%"))
        .all(db)
        .await?
        .into_iter()
        .map(|notice| notice.id.0)
        .collect();
    let delivered = |arrivals: &Arrivals| -> anyhow::Result<usize> {
        let arrivals = arrivals.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        Ok(arrivals.keys().filter(|id| ours.contains(id)).count())
    };
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

    let delivered = delivered(&arrivals)?;
    let arrivals = arrivals.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let duplicates = arrivals.iter().filter(|(id, times)| ours.contains(id) && times.len() > 1).count();
    println!("\nresult");
    println!("  enqueued            {enqueued} in {:.0} ms", enqueue_time.as_secs_f64() * 1e3);
    println!("  delivered           {delivered} of {users}, twice: {duplicates}");
    println!("  run to last email   {:.1} s", elapsed.as_secs_f64());
    println!("  server peak RSS     {:.1} MiB", peak_kib as f64 / 1024.0);
    Ok(())
}
