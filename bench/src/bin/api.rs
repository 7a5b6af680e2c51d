//! Load on the API itself (the start of #5's benchmark): seeds 1,000 users and
//! 100,000 issues, starts the release server, and drives it with `wrk` (Debian
//! package `wrk`) through the Lua scenarios in `bench/wrk/`, 64 connections, after a
//! warm-up. Prints requests/s, p50, p99, transport errors and the server's peak RSS.
//!
//! `cargo run --release -p triage-bench --bin api`. Env: `SECONDS` (default 15).

use std::{
    path::Path,
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use chrono::Utc;
use triage::auth::TokenKeys;
use triage_bench::{Fixture, Server, at, insert_rows, rss_kib_of, seed_users, smtp_sink};

const USERS: usize = 1000;
const ISSUES: usize = 100_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds = std::env::var("SECONDS").unwrap_or_else(|_| "15".to_owned());
    let fixture = Fixture::new().await?;
    let db = &fixture.db;
    println!("seeding {USERS} users and {ISSUES} issues");
    seed_users(db, USERS).await?;
    let now = Utc::now();
    let statuses = ["OPEN", "IN_PROGRESS", "CLOSED"];
    insert_rows(
        db,
        "issues",
        "title, description, status, created_by, assigned_to, created_at, updated_at",
        (0..ISSUES).map(|i| {
            let created = at(now - chrono::Duration::seconds((ISSUES - i) as i64));
            let (creator, assignee) = (i % USERS + 1, (i * 7 + 3) % USERS + 1);
            let status = statuses[i % statuses.len()];
            format!("('Issue {i}', 'Seeded issue', '{status}', {creator}, {assignee}, {created}, {created})")
        }),
    )
    .await?;

    let (smtp_url, _arrivals) = smtp_sink().await?;
    let env = fixture.server_env(smtp_url)?;
    let key = env
        .iter()
        .find(|(name, _)| *name == "TRIAGE_TOKEN_KEY")
        .map(|(_, key)| key.clone())
        .unwrap_or_default();
    let token =
        TokenKeys::from_paserk(&key, "triage", Duration::from_secs(3600))?.issue(1, Utc::now())?.token;
    let server = Server::start(&env).await?;
    let ready = server.ready().await?;
    println!(
        "ready {:.0} ms after start; idle RSS {:.1} MiB",
        ready.as_secs_f64() * 1e3,
        server.rss_kib() as f64 / 1024.0
    );

    let wrk_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("wrk");
    for scenario in ["issues_by_assignee", "issue_by_id"] {
        let script = wrk_dir.join(format!("{scenario}.lua"));
        let run = |duration: &str| {
            Command::new("wrk")
                .args(["-t2", "-c64", "-d", duration, "-s"])
                .arg(&script)
                .arg(&server.url)
                .env("TOKEN", &token)
                .env("WRK_DIR", &wrk_dir)
                .env("USERS", USERS.to_string())
                .env("ISSUES", ISSUES.to_string())
                .output()
        };
        run("3s")?; // warm-up
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = sample_rss(server.child.id(), stop.clone());
        let output = run(&format!("{seconds}s"))?;
        stop.store(true, Ordering::Relaxed);
        let peak_kib = sampler.await.unwrap_or(0);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let result = stdout
            .lines()
            .find(|line| line.starts_with("RESULT"))
            .unwrap_or("RESULT (wrk failed; is it installed?)");
        println!(
            "{scenario:<20} {} peak_rss_mib={:.1}",
            &result[7.min(result.len())..],
            peak_kib as f64 / 1024.0
        );
    }
    server.stop().await?;
    Ok(())
}

/// Samples the server's RSS every 100 ms until `stop`; resolves to the peak, in KiB.
fn sample_rss(pid: Option<u32>, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    tokio::task::spawn_blocking(move || {
        let mut peak = 0;
        while !stop.load(Ordering::Relaxed) {
            peak = peak.max(pid.and_then(rss_kib_of).unwrap_or(0));
            std::thread::sleep(Duration::from_millis(100));
        }
        peak
    })
}
