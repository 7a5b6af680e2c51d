//! 100,000 pending assignment notices due within one minute: are they all delivered
//! exactly once, on time, in bounded memory, and does a restart with all of them
//! pending come back quickly?
//!
//! `cargo run --release -p triage-bench --bin notices` (or `bench/run`).
//! Env: `NOTICES` (default 100000), `BENCH_DATABASE_URL` (an empty database; default:
//! a fresh SQLite file).

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use sea_orm::EntityTrait as _;
use triage::entity::notices;
use triage_bench::{
    DEFAULT_PROJECT, Fixture, ISSUE_COLUMNS, Server, at, finish_numbering, insert_rows, percentile,
    seed_default_project, seed_users, smtp_sink,
};

const USERS: usize = 1000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let count: usize = std::env::var("NOTICES").ok().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let fixture = Fixture::new().await?;
    let db = &fixture.db;

    println!("seeding {USERS} users, {USERS} issues and {count} notices due within one minute");
    seed_users(db, USERS).await?;
    seed_default_project(db, USERS).await?;
    let now = at(Utc::now());
    insert_rows(
        db,
        "issues",
        ISSUE_COLUMNS,
        (1..=USERS).map(|n| {
            format!("({DEFAULT_PROJECT}, {n}, 'Issue {n}', 'Bench issue', 'OPEN', 1, {n}, {now}, {now})")
        }),
    )
    .await?;
    finish_numbering(db).await?;
    let first_due = Utc::now() + chrono::Duration::seconds(20);
    let spread_us = 60_000_000 / count.max(1) as i64;
    insert_rows(
        db,
        "notices",
        "kind, issue_id, recipient_id, actor_id, due_at, state, attempts, created_at",
        (0..count).map(|i| {
            let issue = i % USERS + 1;
            let due = first_due + chrono::Duration::microseconds(spread_us * i as i64);
            format!("('assignment', {issue}, {issue}, 1, {}, 'pending', 0, {now})", at(due))
        }),
    )
    .await?;
    let due: HashMap<i64, DateTime<Utc>> =
        notices::Entity::find().all(db).await?.into_iter().map(|n| (n.id.0, n.due_at)).collect();
    let seeded_in = Utc::now();
    println!(
        "seeded; first notice due in {:.1} s",
        (first_due - seeded_in).num_milliseconds() as f64 / 1000.0
    );

    let (smtp_url, arrivals) = smtp_sink().await?;
    let env = fixture.server_env(smtp_url)?;

    // A start, then a restart, with every notice pending.
    let server = Server::start(&env).await?;
    let first_ready = server.ready().await?;
    server.stop().await?;
    let server = Server::start(&env).await?;
    let restart_ready = server.ready().await?;
    let baseline_kib = server.rss_kib();
    println!(
        "ready {:.0} ms after start, {:.0} ms after a restart with {count} pending",
        first_ready.as_secs_f64() * 1e3,
        restart_ready.as_secs_f64() * 1e3
    );

    let last_due = first_due + chrono::Duration::seconds(60);
    let deadline =
        Instant::now() + (last_due - Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(60);
    let mut peak_kib = baseline_kib;
    loop {
        peak_kib = peak_kib.max(server.rss_kib());
        let delivered = arrivals
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .keys()
            .filter(|id| due.contains_key(id))
            .count();
        if delivered >= count || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Anything late or doubled would show up in the next seconds.
    tokio::time::sleep(Duration::from_secs(3)).await;
    peak_kib = peak_kib.max(server.rss_kib());
    server.stop().await?;

    let mut arrivals = arrivals.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
    arrivals.retain(|id, _| due.contains_key(id));
    let duplicates = arrivals.values().filter(|times| times.len() > 1).count();
    let early = arrivals.iter().filter(|(id, times)| due.get(id).is_some_and(|d| times[0] < *d)).count();
    let mut lateness: Vec<f64> = arrivals
        .iter()
        .filter_map(|(id, times)| {
            due.get(id).map(|d| (times[0] - *d).num_microseconds().unwrap_or(0) as f64 / 1e3)
        })
        .collect();
    lateness.sort_by(f64::total_cmp);
    println!("\nresult");
    println!(
        "  delivered           {} of {count} (missing {})",
        arrivals.len(),
        count - arrivals.len().min(count)
    );
    println!("  delivered twice     {duplicates}");
    println!("  delivered early     {early}");
    println!(
        "  lateness ms         p50 {:.0}, p99 {:.0}, max {:.0}",
        percentile(&lateness, 50.0),
        percentile(&lateness, 99.0),
        percentile(&lateness, 100.0)
    );
    println!(
        "  server RSS MiB      {:.1} after restart, {:.1} peak, growth {:.1}",
        baseline_kib as f64 / 1024.0,
        peak_kib as f64 / 1024.0,
        (peak_kib - baseline_kib) as f64 / 1024.0
    );
    println!("  restart to ready   {:.0} ms", restart_ready.as_secs_f64() * 1e3);
    Ok(())
}
