//! Load on the API (#5): seeds 1,000 users (all with one real argon2id hash of a known
//! password) and 100,000 issues, starts the release server and, on the same database,
//! the hand-written baseline (`baseline.rs`), and drives them with `wrk` (Debian
//! package `wrk`) through the Lua scenarios in `bench/wrk/`: 2 threads, 64
//! connections, `SECONDS` each after a warm-up of `WARMUP`.
//!
//! 1. `issues(first: 20)` of one assignee, with people and `totalCount`;
//! 2. `issue(id)`;
//! 3. `createIssue` with an assignee;
//! 4. `updateIssue` changing the assignee;
//! 5. `login`;
//! 6. a mix (80% reads, 15% writes, 5% logins);
//! 7. `issues(first: 20, filter: { projectId })` of one of the 20 PRIVATE projects the
//!    user is a member of (beside the default project).
//!
//! Scenario 1 also runs on the baseline, for the Triage/baseline ratio, and again
//! during a login storm (16 connections of logins, sent and timed by this process so
//! that the logins served and those shed are counted apart), for its p99 beside the
//! one without. Ends with a table (requests/s, p50, p99, errors, the server's peak
//! RSS) and what the server logged.
//!
//! `bench/run api` (`--postgres` for PostgreSQL). Env: `SECONDS` (default 15), `WARMUP`
//! (default 3), `BENCH_DATABASE_URL` (an empty database; default a fresh SQLite file),
//! `BENCH_QUICK` (set: scenario 1 only, beside the baseline and the previous release;
//! `BENCH_QUICK=2,3,4` adds those scenarios, each beside its baseline; `5`, `6` and `7`
//! add those alone, which have none, `hostile` each kind of hostile request alone and
//! `storm` scenario 1 during the login storm, run in the order named; the server's
//! peak RSS is printed last).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use chrono::Utc;
use sea_orm::{ConnectionTrait as _, DatabaseConnection, Statement};
use tokio::process::{Child, Command};
use triage::{
    auth::{PasswordHasher, TokenKeys},
    domain::values::Password,
};
use triage_bench::{
    DEFAULT_PROJECT, Fixture, ISSUE_COLUMNS, Server, at, finish_numbering, insert_rows, peak_rss_kib_of,
    release_binary, rss_kib_of, seed_default_project, seed_users_with_hash, smtp_sink, triage_binary,
};

const USERS: usize = 1000;
const ISSUES: usize = 100_000;
/// The PRIVATE projects beside the default one; every user is a member of all.
const PROJECTS: usize = 20;
/// Every seeded user's password.
const PASSWORD: &str = "bench-password";
const THREADS: u32 = 2;
const CONNECTIONS: u32 = 64;
/// Connections logging in during the storm.
const STORM_CONNECTIONS: u32 = 16;
/// The kinds of `wrk/hostile.lua`, each measured alone for `HOSTILE_SECONDS`.
const HOSTILE_KINDS: [&str; 6] = ["fragments", "fanout", "aliases", "logins", "deep", "oversized"];
const HOSTILE_SECONDS: u64 = 3;
const HOSTILE_CONNECTIONS: u32 = 16;

/// The scenarios of the table, in its order: the Lua script's name and a label.
const SCENARIOS: [(&str, &str); 7] = [
    ("issues_by_assignee", "1 issues(first: 20) by assignee"),
    ("issue_by_id", "2 issue(id)"),
    ("create_issue", "3 createIssue with an assignee"),
    ("update_issue", "4 updateIssue, new assignee"),
    ("login", "5 login"),
    ("mix", "6 mix 80/15/5"),
    ("issues_by_project", "7 issues(first: 20) of one of 20 projects"),
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds = env_seconds("SECONDS", 15)?;
    let warmup = env_seconds("WARMUP", 3)?;
    let fixture = Fixture::new().await?;
    let db = &fixture.db;
    println!(
        "{:?} database, {} cores; wrk -t{THREADS} -c{CONNECTIONS}, {seconds} s after a {warmup} s warm-up",
        db.get_database_backend(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );

    println!("seeding {USERS} users and {ISSUES} issues");
    let started = Instant::now();
    // One hash by the product's own hasher (argon2id at its parameters), shared by all.
    let password = Password::parse(PASSWORD.to_owned())?;
    let password_hash = PasswordHasher::new(1, Duration::from_secs(60))?.hash(password.expose()).await?;
    seed(db, &password_hash).await?;
    // The bulk insert leaves its pages in SQLite's write-ahead log, which every read
    // would look through until a later write resets it: fold it into the database
    // first, as a long-running database would have, so that whichever server is
    // measured first is not slowed by it.
    // On PostgreSQL, autovacuum would by then have set the visibility map of the bulk
    // insert's pages: until it does, a count reads every row's page instead of the
    // covering index alone (scenario 7's page took 3.8 ms rather than 0.7 ms).
    match db.get_database_backend() {
        sea_orm::DatabaseBackend::Sqlite => {
            db.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)").await?;
        }
        _ => {
            db.execute_unprepared("VACUUM ANALYZE").await?;
        }
    }
    let parameters = password_hash.rsplitn(3, '$').nth(2).unwrap_or_default();
    println!("seeded in {:.1} s; every password hash is {parameters}$...", started.elapsed().as_secs_f64());

    let (smtp_url, _arrivals) = smtp_sink().await?;
    let mut env = fixture.server_env(smtp_url)?;
    // No digest during the run: a fresh server mails the current interval's digest at
    // its first tick, and 1,000 digests of 100 issues each (a benchmark of their own,
    // `digest`) would land in the middle of a scenario. A yearly cron line never fires
    // within the run.
    env.retain(|(name, _)| *name != "TRIAGE_DIGEST_EVERY");
    env.push(("TRIAGE_DIGEST_CRON", "0 0 0 1 1 *".to_owned()));
    // Rate limits stay on, so every request pays for its budget's bookkeeping and
    // headers; but every scenario comes from one address and a few users, far past
    // any real budget, so the budgets are set out of reach.
    env.push(("TRIAGE_RATE_LIMIT_POINTS", "1000000000000".to_owned()));
    env.push(("TRIAGE_RATE_LIMIT_ANONYMOUS_POINTS", "1000000000000".to_owned()));
    let key = env
        .iter()
        .find(|(name, _)| *name == "TRIAGE_TOKEN_KEY")
        .map(|(_, key)| key.clone())
        .context("the server's environment has no token key")?;
    // Tokens outlive the run: every scenario's requests are authenticated.
    let keys = TokenKeys::from_paserk(&key, "triage", Duration::from_secs(3600))?;
    let tokens = (1..=USERS as i64)
        .map(|user| Ok(keys.issue(triage::entity::ids::UserId(user), Utc::now())?.token))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let tokens_file = fixture.dir.path().join("tokens.txt");
    std::fs::write(&tokens_file, tokens.join("\n") + "\n")?;

    let triage_log = fixture.dir.path().join("triage.log");
    let server = Server::spawn(&triage_binary(), &["serve"], &env, Some(&triage_log))?;
    let ready = server.ready().await?;
    let idle_kib = server.rss_kib();
    println!(
        "triage: ready {:.0} ms after start; idle RSS {:.1} MiB",
        ready.as_secs_f64() * 1e3,
        idle_kib as f64 / 1024.0
    );
    let baseline_log = fixture.dir.path().join("baseline.log");
    let baseline = Server::spawn(&release_binary("baseline"), &[], &env, Some(&baseline_log))?;
    baseline.ready().await?;

    let wrk = Wrk {
        dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("wrk"),
        env: vec![
            ("USERS", USERS.to_string()),
            ("ISSUES", ISSUES.to_string()),
            ("TOKEN", tokens[0].clone()),
            ("TOKENS", tokens_file.display().to_string()),
            ("PASSWORD", PASSWORD.to_owned()),
            ("PROJECTS", PROJECTS.to_string()),
        ],
    };
    let same = compare_with_baseline(&wrk.dir, &server, &baseline, &tokens[0]).await?;
    let mut log = Log { path: triage_log, read: 0 };
    let mut baseline_log = Log { path: baseline_log, read: 0 };
    let at_start = log.take()?;

    // Scenario 1 and the baseline first, on the seeded data alone; the writes of 3, 4
    // and 6 add issues and move assignments, which changes what scenario 1 reads.
    let mut results = BTreeMap::new();
    let (first, label) = SCENARIOS[0];
    let mut scenario_1 = wrk.scenario(first, label, &server, warmup, seconds).await?;
    scenario_1.logged = log.take()?;
    results.insert(first, scenario_1.clone());
    let mut on_baseline = wrk.scenario(first, "1 on the baseline", &baseline, warmup, seconds).await?;
    on_baseline.logged = baseline_log.take()?;
    let (second, _) = SCENARIOS[1];
    let mut second_on_baseline =
        wrk.scenario(second, "2 on the baseline", &baseline, warmup, seconds).await?;
    second_on_baseline.logged = baseline_log.take()?;
    let previous = match std::env::var_os("BENCH_PREVIOUS_TRIAGE") {
        Some(_) if db.get_database_backend() != sea_orm::DatabaseBackend::Sqlite => {
            println!("previous release: compared on SQLite only");
            None
        }
        Some(binary) => {
            let run = PreviousRun { wrk: &wrk, server: &server, env: &env, warmup, seconds };
            Some(run.compare(Path::new(&binary), &fixture, &password_hash).await?)
        }
        None => None,
    };

    // `BENCH_QUICK`: scenario 1 alone (with the baseline and the previous release),
    // for trying a change to the list.
    if let Some(quick) = std::env::var_os("BENCH_QUICK") {
        println!("{}", scenario_1.row());
        println!("{}", on_baseline.row());
        // `BENCH_QUICK=2,3`: scenarios 2, 3 or 4 as well, each beside its baseline;
        // 5, 6 or 7 alone (the login, the mix, the projects' list); `hostile`: each
        // kind of hostile request alone; `storm`: scenario 1 during the login storm.
        // In the order named, so that one can be measured after another.
        let quick = quick.to_string_lossy().into_owned();
        for wanted in quick.split(',').map(str::trim).filter(|wanted| !wanted.is_empty()) {
            match wanted {
                "hostile" => print_hostile_costs(&wrk.hostile_costs(&server).await?),
                "storm" => {
                    let (during_storm, storm) = storm_beside(&wrk, first, &server, seconds).await?;
                    println!("{}", during_storm.row());
                    println!("{}", storm.row());
                    println!("{}", storm.summary(&during_storm, &scenario_1));
                }
                number => {
                    let n = match number.parse::<usize>() {
                        // Scenario 1 has run already.
                        Ok(1) => continue,
                        Ok(n) if (2..=SCENARIOS.len()).contains(&n) => n - 1,
                        _ => anyhow::bail!("BENCH_QUICK names {number:?}: not a scenario, hostile or storm"),
                    };
                    let (scenario, label) = SCENARIOS[n];
                    let on_triage = wrk.scenario(scenario, label, &server, warmup, seconds).await?;
                    let baseline_run = match n {
                        1 => second_on_baseline.clone(),
                        2 | 3 => {
                            let label = format!("{} on the baseline", n + 1);
                            wrk.scenario(scenario, &label, &baseline, warmup, seconds).await?
                        }
                        _ => continue,
                    };
                    let ratio = on_triage.requests_per_s / baseline_run.requests_per_s;
                    println!("Triage/baseline for scenario {}: {ratio:.2}x", n + 1);
                }
            }
        }
        for outcome in previous.iter().flat_map(|previous| &previous.rows) {
            println!("{}", outcome.row());
        }
        println!("Triage/baseline: {:.2}x", scenario_1.requests_per_s / on_baseline.requests_per_s);
        if let Some(previous) = &previous {
            println!("this build/previous release: {:.2}x", previous.ratio);
        }
        let peak_kib = server.child.id().and_then(peak_rss_kib_of).unwrap_or(0);
        println!("server: peak RSS {:.1} MiB over the run", peak_kib as f64 / 1024.0);
        server.stop().await?;
        baseline.stop().await?;
        return Ok(());
    }

    // Scenario 2 right after the baseline's: measured minutes apart, with the storm
    // and the hostile requests between, the ratio moved with the machine's noise.
    let mut scenario_2 = wrk.scenario(second, SCENARIOS[1].1, &server, warmup, seconds).await?;
    scenario_2.logged = log.take()?;
    results.insert(second, scenario_2);

    let (mut during_storm, storm) = storm_beside(&wrk, first, &server, seconds).await?;
    println!("{}", storm.row());
    during_storm.logged = log.take()?;

    // Hostile requests: what each kind costs the server, then scenario 1 beside them.
    let hostile_costs = wrk.hostile_costs(&server).await?;
    let hostile = wrk.spawn_with(
        "hostile",
        &[("HOSTILE_KIND", "all")],
        1,
        HOSTILE_CONNECTIONS,
        Duration::from_secs(seconds + 4),
        &server.url,
    )?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut beside_hostile =
        wrk.measure(first, "1 beside hostile requests", &server, Duration::from_secs(seconds)).await?;
    let hostile = Outcome::parse("hostile requests", &hostile.wait_with_output().await?.stdout, 0)?;
    beside_hostile.logged = log.take()?;

    for (scenario, label) in &SCENARIOS[2..] {
        let mut outcome = wrk.scenario(scenario, label, &server, warmup, seconds).await?;
        outcome.logged = log.take()?;
        results.insert(scenario, outcome);
    }
    // The writes on the baseline: one transaction a request, the same rows.
    let mut writes_on_baseline = BTreeMap::new();
    for (scenario, label) in [("create_issue", "3 on the baseline"), ("update_issue", "4 on the baseline")] {
        let mut outcome = wrk.scenario(scenario, label, &baseline, warmup, seconds).await?;
        outcome.logged = baseline_log.take()?;
        writes_on_baseline.insert(scenario, outcome);
    }
    let peak_kib = server.child.id().and_then(peak_rss_kib_of).unwrap_or(0);
    let baseline_peak_kib = baseline.child.id().and_then(peak_rss_kib_of).unwrap_or(0);
    server.stop().await?;
    baseline.stop().await?;
    let at_stop = log.take()?;

    println!();
    println!("| scenario | req/s | p50 ms | p99 ms | errors | shed logins | peak RSS MiB |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (scenario, _) in SCENARIOS {
        if let Some(outcome) = results.get(scenario) {
            println!("{}", outcome.row());
        }
    }
    println!("{}", on_baseline.row());
    println!("{}", second_on_baseline.row());
    for outcome in writes_on_baseline.values() {
        println!("{}", outcome.row());
    }
    if let Some(previous) = &previous {
        for outcome in &previous.rows {
            println!("{}", outcome.row());
        }
    }
    println!("{}", during_storm.row());
    println!("{}", storm.row());
    println!("{}", beside_hostile.row());
    println!();
    println!(
        "baseline: Triage/baseline for scenario 1: {:.2}x the requests/s, {:.2}x the p50, {:.2}x the p99{}",
        scenario_1.requests_per_s / on_baseline.requests_per_s,
        scenario_1.p50_ms / on_baseline.p50_ms,
        scenario_1.p99_ms / on_baseline.p99_ms,
        if same { "" } else { " (NOT COMPARABLE: the baseline's JSON differs from Triage's, see above)" }
    );
    if let Some(scenario_2) = results.get(second) {
        println!(
            "baseline: Triage/baseline for scenario 2: {:.2}x the requests/s, {:.2}x the p99 (target: at least 0.80x)",
            scenario_2.requests_per_s / second_on_baseline.requests_per_s,
            scenario_2.p99_ms / second_on_baseline.p99_ms,
        );
    }
    if let Some(previous) = &previous {
        println!(
            "previous release: scenario 1 on this build/on the release before projects, alternating in \
             this run: {:.2}x the requests/s (target: at least 0.90)",
            previous.ratio
        );
    }
    let storm_ratio = during_storm.p99_ms / scenario_1.p99_ms;
    println!("{}", storm.summary(&during_storm, &scenario_1));
    println!();
    print_hostile_costs(&hostile_costs);
    let hostile_ratio = beside_hostile.p99_ms / scenario_1.p99_ms;
    println!(
        "hostile: scenario 1's p99 {:.1} ms beside {:.0} hostile requests/s ({} connections) vs {:.1} ms \
         without: {hostile_ratio:.2}x ({} 2x)",
        beside_hostile.p99_ms,
        hostile.requests_per_s,
        HOSTILE_CONNECTIONS,
        scenario_1.p99_ms,
        if hostile_ratio <= 2.0 { "within" } else { "BEYOND" }
    );
    let postgres = db.get_database_backend() == sea_orm::DatabaseBackend::Postgres;
    let ratio = |a: &Outcome, b: &Outcome| a.requests_per_s / b.requests_per_s;
    let mut targets = vec![Target::at_least(
        "scenario 1 req/s / baseline's",
        ratio(&scenario_1, &on_baseline),
        if postgres { 0.70 } else { 0.75 },
    )];
    if !postgres {
        targets.push(Target::at_most(
            "scenario 1 p99 / baseline's",
            scenario_1.p99_ms / on_baseline.p99_ms,
            1.5,
        ));
    }
    if let Some(scenario_2) = results.get(second) {
        targets.push(Target::at_least(
            "scenario 2 req/s / baseline's",
            ratio(scenario_2, &second_on_baseline),
            0.80,
        ));
    }
    for (scenario, on_baseline) in &writes_on_baseline {
        if let Some(outcome) = results.get(scenario) {
            let label = format!("scenario {} req/s / baseline's", &outcome.label[..1]);
            targets.push(Target::at_least(&label, ratio(outcome, on_baseline), 0.70));
            let label = format!("scenario {} errors", &outcome.label[..1]);
            targets.push(Target::at_most(&label, outcome.errors as f64, 0.0));
        }
    }
    let locked = [&at_start, &at_stop]
        .into_iter()
        .chain(results.values().map(|outcome| &outcome.logged))
        .flatten()
        .filter(|line| line.contains("database is locked"))
        .count();
    targets.extend([
        Target::at_most("lines logging \"database is locked\"", locked as f64, 0.0),
        Target::at_most("served logins' p99 during the storm, ms", storm.p99_ms, 500.0),
        Target::at_most("scenario 1 p99 during the storm / alone", storm_ratio, 1.5),
        Target::at_most("peak RSS over the run, MiB", peak_kib as f64 / 1024.0, 40.0),
        Target::at_most("idle RSS, MiB", idle_kib as f64 / 1024.0, 20.0),
        Target::at_most(
            "ready after start, ms",
            ready.as_secs_f64() * 1e3,
            if postgres { 300.0 } else { 100.0 },
        ),
    ]);
    println!();
    println!("| target | figure | goal | met |");
    println!("|---|---:|---:|---|");
    for target in &targets {
        println!("{}", target.row());
    }
    println!();
    println!(
        "server: ready {:.0} ms after start, idle RSS {:.1} MiB, peak RSS {:.1} MiB over the run \
         (the baseline's {:.1} MiB)",
        ready.as_secs_f64() * 1e3,
        idle_kib as f64 / 1024.0,
        peak_kib as f64 / 1024.0,
        baseline_peak_kib as f64 / 1024.0
    );
    for outcome in results.values().chain([&on_baseline, &during_storm]) {
        if let Some(sample) = &outcome.error_sample {
            println!("first error in {}: {sample}", outcome.label);
        }
    }
    summarize_log("triage, at start", &at_start);
    for outcome in results.values().chain([&on_baseline, &during_storm, &beside_hostile]) {
        summarize_log(&outcome.label, &outcome.logged);
    }
    summarize_log("triage, at stop", &at_stop);
    summarize_log("the baseline, after its run", &baseline_log.take()?);
    Ok(())
}

/// One of issue #12's targets, beside its figure.
struct Target {
    label: String,
    figure: f64,
    goal: f64,
    /// `true`: the figure must reach the goal; `false`: stay at or under it.
    at_least: bool,
}

impl Target {
    fn at_least(label: &str, figure: f64, goal: f64) -> Self {
        Self { label: label.to_owned(), figure, goal, at_least: true }
    }

    fn at_most(label: &str, figure: f64, goal: f64) -> Self {
        Self { label: label.to_owned(), figure, goal, at_least: false }
    }

    fn row(&self) -> String {
        let (met, sign) =
            if self.at_least { (self.figure >= self.goal, "≥") } else { (self.figure <= self.goal, "≤") };
        format!(
            "| {} | {:.2} | {sign} {} | {} |",
            self.label,
            self.figure,
            self.goal,
            if met { "yes" } else { "NO" }
        )
    }
}

/// What one kind of hostile request cost the server, measured alone.
struct HostileCost {
    kind: &'static str,
    refused_per_s: f64,
    cpu_us: f64,
    /// The server's RSS high-water mark once it was done: a kind that raised it shows
    /// as the step up from the row before.
    peak_kib: u64,
}

fn print_hostile_costs(costs: &[HostileCost]) {
    println!("| hostile request | refused/s | server CPU per request µs | server peak RSS so far MiB |");
    println!("|---|---:|---:|---:|");
    for cost in costs {
        println!(
            "| {} | {:.0} | {:.0} | {:.1} |",
            cost.kind,
            cost.refused_per_s,
            cost.cpu_us,
            cost.peak_kib as f64 / 1024.0
        );
    }
}

/// The logins of the storm: those served (with their latencies) and those shed.
struct Storm {
    served: u64,
    shed: u64,
    errors: u64,
    served_per_s: f64,
    shed_per_s: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    slowest_ms: f64,
}

impl Storm {
    /// The storm beside scenario 1's run during it and the one without.
    fn summary(&self, during: &Outcome, alone: &Outcome) -> String {
        format!(
            "login storm: scenario 1's p99 {:.1} ms during {:.0} logins served/s and {:.0} shed/s ({} \
             connections, {} served, {} shed, {} errors; served logins p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, \
             slowest {:.0} ms) vs {:.1} ms without: {:.2}x",
            during.p99_ms,
            self.served_per_s,
            self.shed_per_s,
            STORM_CONNECTIONS,
            self.served,
            self.shed,
            self.errors,
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.slowest_ms,
            alone.p99_ms,
            during.p99_ms / alone.p99_ms,
        )
    }

    fn row(&self) -> String {
        format!(
            "| logins of the storm (served) | {:.0} | {:.1} | {:.1} | {} | {} | |",
            self.served_per_s, self.p50_ms, self.p99_ms, self.errors, self.shed
        )
    }
}

/// Scenario 1 (`first`) during a login storm, and the storm. The logins start first,
/// and outlast scenario 1's run. They are sent by this process, which times each
/// answer: wrk's latencies would mix the logins served with those shed at once.
async fn storm_beside(
    wrk: &Wrk,
    first: &str,
    server: &Server,
    seconds: u64,
) -> anyhow::Result<(Outcome, Storm)> {
    let storm =
        tokio::spawn(login_storm(server.url.clone(), STORM_CONNECTIONS, Duration::from_secs(seconds + 4)));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = wrk.measure(first, "1 during a login storm", server, Duration::from_secs(seconds)).await?;
    Ok((during, storm.await??))
}

/// `connections` clients logging in as the seeded users, one login after another,
/// for `duration`; each answer timed, and counted as served, shed (`RATE_LIMITED`)
/// or failed.
async fn login_storm(url: String, connections: u32, duration: Duration) -> anyhow::Result<Storm> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let query =
        "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { accessToken } }";
    let end = Instant::now() + duration;
    let clients = (0..connections as usize).map(|n| {
        let (client, url) = (client.clone(), format!("{url}/graphql"));
        tokio::spawn(async move {
            let (mut served, mut shed, mut errors) = (Vec::new(), 0_u64, 0_u64);
            let mut user = n * 61;
            while Instant::now() < end {
                user = (user + 7) % USERS;
                let body = serde_json::json!({
                    "query": query,
                    "variables": { "u": format!("user{}", user + 1), "p": PASSWORD },
                });
                let started = Instant::now();
                let answer = match client.post(&url).json(&body).send().await {
                    Ok(response) => response.text().await.unwrap_or_default(),
                    Err(_) => String::new(),
                };
                if answer.contains("RATE_LIMITED") {
                    shed += 1;
                } else if answer.contains("accessToken") && !answer.contains("\"errors\"") {
                    served.push(started.elapsed());
                } else {
                    errors += 1;
                }
            }
            (served, shed, errors)
        })
    });
    let (mut served, mut shed, mut errors) = (Vec::new(), 0, 0);
    for client in clients.collect::<Vec<_>>() {
        let (times, shed_by, errors_by) = client.await?;
        served.extend(times);
        shed += shed_by;
        errors += errors_by;
    }
    served.sort();
    let percentile = |p: f64| {
        let at = ((served.len() as f64 * p).ceil() as usize).clamp(1, served.len().max(1)) - 1;
        served.get(at).map_or(0.0, |time| time.as_secs_f64() * 1e3)
    };
    let seconds = duration.as_secs_f64();
    Ok(Storm {
        served: served.len() as u64,
        shed,
        errors,
        served_per_s: served.len() as f64 / seconds,
        shed_per_s: shed as f64 / seconds,
        p50_ms: percentile(0.50),
        p90_ms: percentile(0.90),
        p99_ms: percentile(0.99),
        slowest_ms: percentile(1.0),
    })
}

fn env_seconds(name: &str, default: u64) -> anyhow::Result<u64> {
    match std::env::var(name) {
        Ok(value) => value.parse().with_context(|| format!("{name} must be a whole number of seconds")),
        Err(_) => Ok(default),
    }
}

/// Seeds the users, the projects and the issues: issue `i` (id `i + 1`, the database
/// being fresh) is created by user `i % USERS + 1`, which scenario 4 relies on, and
/// assigned to user `(7i + 3) % USERS + 1`. Every tenth issue is in one of
/// [`PROJECTS`] PRIVATE projects (ids 2 on; scenario 7 lists them), the rest in the
/// PUBLIC default project; every user is a MEMBER of all of them.
async fn seed(db: &DatabaseConnection, password_hash: &str) -> anyhow::Result<()> {
    seed_users_with_hash(db, USERS, password_hash).await?;
    seed_default_project(db, USERS).await?;
    let now = Utc::now();
    insert_rows(
        db,
        "projects",
        "id, key, name, description, visibility, next_number, created_at, updated_at",
        (0..PROJECTS).map(|p| {
            let (id, created) = (DEFAULT_PROJECT + 1 + p as i64, at(now));
            format!("({id}, 'P{p:02}', 'Project {p}', '', 'PRIVATE', 1, {created}, {created})")
        }),
    )
    .await?;
    insert_rows(
        db,
        "project_members",
        "project_id, user_id, role, added_at",
        (0..PROJECTS * USERS).map(|n| {
            let (project, user) = (DEFAULT_PROJECT + 1 + (n / USERS) as i64, n % USERS + 1);
            format!("({project}, {user}, 'MEMBER', {})", at(now))
        }),
    )
    .await?;
    let statuses = ["OPEN", "IN_PROGRESS", "CLOSED"];
    let mut numbers = [0_usize; PROJECTS + 1];
    insert_rows(
        db,
        "issues",
        ISSUE_COLUMNS,
        (0..ISSUES).map(|i| {
            let created = at(now - chrono::Duration::seconds((ISSUES - i) as i64));
            let (creator, assignee) = (i % USERS + 1, (i * 7 + 3) % USERS + 1);
            let status = statuses[i % statuses.len()];
            let slot = if i % 10 == 0 { 1 + (i / 10) % PROJECTS } else { 0 };
            numbers[slot] += 1;
            let (project, number) = (DEFAULT_PROJECT + slot as i64, numbers[slot]);
            format!(
                "({project}, {number}, 'Issue {i}', 'Seeded issue', '{status}', {creator}, {assignee}, {created}, {created})"
            )
        }),
    )
    .await?;
    finish_numbering(db).await?;
    let misplaced = scalar(
        db,
        format!("SELECT COUNT(*) FROM issues WHERE created_by <> (id - 1) % {USERS} + 1 OR id > {ISSUES}"),
    )
    .await?;
    anyhow::ensure!(misplaced == 0, "{misplaced} issues do not have the ids scenario 4 expects");
    Ok(())
}

/// How many migrations the release before projects had: a database of its schema is
/// one of this build's, migrated down to there.
const PREVIOUS_MIGRATIONS: u32 = 6;

/// Scenario 1 on the release before projects (`BENCH_PREVIOUS_TRIAGE`: its `triage`
/// binary, which `bench/run --previous REV` builds), on a database of its own seeded
/// as that release had it, alternating with this build's server: what projects and
/// the visibility rule cost the list.
struct PreviousRun<'a> {
    wrk: &'a Wrk,
    server: &'a Server,
    env: &'a [(&'static str, String)],
    warmup: u64,
    seconds: u64,
}

struct PreviousOutcome {
    rows: Vec<Outcome>,
    /// This build's requests/s over the previous release's, over all rounds.
    ratio: f64,
}

impl PreviousRun<'_> {
    async fn compare(
        &self,
        binary: &Path,
        fixture: &Fixture,
        password_hash: &str,
    ) -> anyhow::Result<PreviousOutcome> {
        use migration::{Migrator, MigratorTrait as _};
        let url = format!("sqlite://{}?mode=rwc", fixture.dir.path().join("previous.db").display());
        let db = sea_orm::Database::connect(&url).await?;
        Migrator::up(&db, None).await?;
        let applied = Migrator::get_applied_migrations(&db).await?.len() as u32;
        Migrator::down(&db, Some(applied - PREVIOUS_MIGRATIONS)).await?;
        seed_users_with_hash(&db, USERS, password_hash).await?;
        let now = Utc::now();
        let statuses = ["OPEN", "IN_PROGRESS", "CLOSED"];
        insert_rows(
            &db,
            "issues",
            "title, description, status, created_by, assigned_to, created_at, updated_at",
            (0..ISSUES).map(|i| {
                let created = at(now - chrono::Duration::seconds((ISSUES - i) as i64));
                let (creator, assignee) = (i % USERS + 1, (i * 7 + 3) % USERS + 1);
                let status = statuses[i % statuses.len()];
                format!(
                    "('Issue {i}', 'Seeded issue', '{status}', {creator}, {assignee}, {created}, {created})"
                )
            }),
        )
        .await?;
        db.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)").await?;
        db.close().await?;
        let mut env = self.env.to_vec();
        env.retain(|(name, _)| *name != "DATABASE_URL");
        env.push(("DATABASE_URL", url));
        let previous = Server::spawn(binary, &["serve"], &env, None)?;
        previous.ready().await?;
        let (first, _) = SCENARIOS[0];
        let mut rows = Vec::new();
        let (mut this, mut that) = (0.0, 0.0);
        for round in 1..=2 {
            let label = format!("1 on the previous release, round {round}");
            let outcome = self.wrk.scenario(first, &label, &previous, self.warmup, self.seconds).await?;
            that += outcome.requests_per_s;
            rows.push(outcome);
            let label = format!("1 on this build, round {round}");
            let outcome = self.wrk.scenario(first, &label, self.server, self.warmup, self.seconds).await?;
            this += outcome.requests_per_s;
            rows.push(outcome);
        }
        previous.stop().await?;
        Ok(PreviousOutcome { rows, ratio: this / that })
    }
}

async fn scalar(db: &DatabaseConnection, sql: String) -> anyhow::Result<i64> {
    let statement = Statement::from_string(db.get_database_backend(), sql);
    let row = db.query_one_raw(statement).await?.context("no row")?;
    Ok(row.try_get_by_index(0)?)
}

/// Sends scenario 1's request for a few assignees to both servers; prints whether the
/// baseline answered each exactly (byte for byte) as Triage did, and returns it.
async fn compare_with_baseline(
    wrk_dir: &Path,
    server: &Server,
    baseline: &Server,
    token: &str,
) -> anyhow::Result<bool> {
    let client = reqwest::Client::new();
    let checks = [
        ("issues_by_assignee", "a", [1, 2, USERS / 2, USERS, USERS + 1]),
        ("issue_by_id", "id", [1, 2, ISSUES / 2, ISSUES, ISSUES + 1]),
    ];
    let mut all_same = true;
    for (scenario, variable, values) in checks {
        let query = std::fs::read_to_string(wrk_dir.join(format!("{scenario}.graphql")))?;
        let mut same = 0;
        for value in values {
            let body =
                serde_json::json!({ "query": query.trim(), "variables": { variable: value.to_string() } });
            let mut answers = Vec::new();
            for url in [&server.url, &baseline.url] {
                let response =
                    client.post(format!("{url}/graphql")).bearer_auth(token).json(&body).send().await?;
                answers.push(response.bytes().await?);
            }
            if answers[0] == answers[1] {
                same += 1;
            } else {
                let excerpt =
                    |bytes: &[u8]| String::from_utf8_lossy(&bytes[..bytes.len().min(400)]).into_owned();
                println!(
                    "baseline check: {scenario} {variable}={value}: the answers differ\n  triage:   {}\n  baseline: {}",
                    excerpt(&answers[0]),
                    excerpt(&answers[1])
                );
            }
        }
        println!(
            "baseline check: the same JSON as Triage's for {same} of {} requests of {scenario}",
            values.len()
        );
        all_same &= same == values.len();
    }
    Ok(all_same)
}

/// Runs the Lua scenarios of `dir` with the environment they read.
#[derive(Debug)]
struct Wrk {
    dir: PathBuf,
    env: Vec<(&'static str, String)>,
}

impl Wrk {
    /// Starts `wrk` on `scenario`.lua, its stdout piped.
    fn spawn(
        &self,
        scenario: &str,
        threads: u32,
        connections: u32,
        duration: Duration,
        url: &str,
    ) -> anyhow::Result<Child> {
        self.spawn_with(scenario, &[], threads, connections, duration, url)
    }

    /// Runs `hostile.lua` with each kind alone for [`HOSTILE_SECONDS`]: the refusals
    /// per second, the server's CPU time (user and system) per refusal, in
    /// microseconds, and its RSS high-water mark after.
    async fn hostile_costs(&self, server: &Server) -> anyhow::Result<Vec<HostileCost>> {
        let pid = server.child.id().context("the server is not running")?;
        let duration = Duration::from_secs(HOSTILE_SECONDS);
        let mut costs = Vec::new();
        for kind in HOSTILE_KINDS {
            let before = cpu_seconds_of(pid)?;
            let output = self
                .spawn_with("hostile", &[("HOSTILE_KIND", kind)], 1, 8, duration, &server.url)?
                .wait_with_output()
                .await?;
            let cpu = cpu_seconds_of(pid)? - before;
            let outcome = Outcome::parse(kind, &output.stdout, 0)?;
            let requests = outcome.requests_per_s * duration.as_secs_f64();
            costs.push(HostileCost {
                kind,
                refused_per_s: outcome.requests_per_s,
                cpu_us: cpu * 1e6 / requests.max(1.0),
                peak_kib: peak_rss_kib_of(pid).unwrap_or(0),
            });
        }
        Ok(costs)
    }

    /// Starts `wrk` on `scenario`.lua with `extra` environment variables.
    fn spawn_with(
        &self,
        scenario: &str,
        extra: &[(&str, &str)],
        threads: u32,
        connections: u32,
        duration: Duration,
        url: &str,
    ) -> anyhow::Result<Child> {
        let mut command = Command::new("wrk");
        command
            .arg(format!("-t{threads}"))
            .arg(format!("-c{connections}"))
            .arg(format!("-d{}s", duration.as_secs()))
            // Logins queue for the hasher; wrk's default 2 s would count a slow one as
            // an error rather than in the latency.
            .arg("--timeout=30s")
            .arg("-s")
            .arg(self.dir.join(format!("{scenario}.lua")))
            .arg(url)
            .env("WRK_DIR", &self.dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (name, value) in &self.env {
            command.env(name, value);
        }
        for (name, value) in extra {
            command.env(name, value);
        }
        command.spawn().context("starting wrk (apt-get install wrk)")
    }

    /// A warm-up of `warmup` seconds (unless 0), then the measured run.
    async fn scenario(
        &self,
        scenario: &str,
        label: &str,
        server: &Server,
        warmup: u64,
        seconds: u64,
    ) -> anyhow::Result<Outcome> {
        if warmup > 0 {
            let warm =
                self.spawn(scenario, THREADS, CONNECTIONS, Duration::from_secs(warmup), &server.url)?;
            warm.wait_with_output().await?;
        }
        self.measure(scenario, label, server, Duration::from_secs(seconds)).await
    }

    /// One measured run, with the server's peak RSS over it.
    async fn measure(
        &self,
        scenario: &str,
        label: &str,
        server: &Server,
        duration: Duration,
    ) -> anyhow::Result<Outcome> {
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = sample_rss(server.child.id(), stop.clone());
        let pid = server.child.id().context("the server is not running")?;
        let cpu_before = cpu_seconds_of(pid)?;
        let output =
            self.spawn(scenario, THREADS, CONNECTIONS, duration, &server.url)?.wait_with_output().await;
        let cpu = cpu_seconds_of(pid).unwrap_or(cpu_before) - cpu_before;
        stop.store(true, Ordering::Relaxed);
        let peak_kib = sampler.await.unwrap_or(0);
        let outcome =
            Outcome::parse(label, &output?.stdout, peak_kib).with_context(|| server_state(server))?;
        // CPU per request is steadier than requests/s on a machine shared with wrk.
        let requests = outcome.requests_per_s * duration.as_secs_f64();
        println!("{}  (server CPU {:.0} µs a request)", outcome.row(), cpu * 1e6 / requests.max(1.0));
        Ok(outcome)
    }
}

/// Whether `server` still runs and, if it does not, the end of its log: for a run
/// that failed.
fn server_state(server: &Server) -> String {
    if server.is_running() {
        return format!("the server at {} is running", server.url);
    }
    let log = server.log.as_ref().and_then(|path| std::fs::read_to_string(path).ok()).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    format!("the server at {} has exited; the end of its log:\n{tail}", server.url)
}

/// What one `wrk` run measured (from the `RESULT` line of `common.lua`).
#[derive(Debug, Clone)]
struct Outcome {
    /// The row's label in the table.
    label: String,
    requests_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    /// Answers of `RATE_LIMITED`: logins shed at once.
    shed: u64,
    error_sample: Option<String>,
    peak_rss_kib: u64,
    /// What the server logged during the run (and its warm-up).
    logged: Vec<String>,
}

impl Outcome {
    fn parse(label: &str, stdout: &[u8], peak_rss_kib: u64) -> anyhow::Result<Self> {
        let stdout = String::from_utf8_lossy(stdout);
        let result = stdout
            .lines()
            .find_map(|line| line.strip_prefix("RESULT "))
            .with_context(|| format!("wrk printed no RESULT line:\n{stdout}"))?;
        let fields: BTreeMap<&str, &str> =
            result.split_whitespace().filter_map(|f| f.split_once('=')).collect();
        let number = |name: &str| -> anyhow::Result<f64> {
            fields.get(name).and_then(|v| v.parse().ok()).with_context(|| format!("no {name} in {result}"))
        };
        Ok(Self {
            label: label.to_owned(),
            requests_per_s: number("requests_per_s")?,
            p50_ms: number("p50_ms")?,
            p99_ms: number("p99_ms")?,
            errors: number("errors")? as u64,
            shed: number("shed").unwrap_or(0.0) as u64,
            error_sample: stdout
                .lines()
                .find_map(|line| line.strip_prefix("ERROR_SAMPLE "))
                .map(str::to_owned),
            peak_rss_kib,
            logged: Vec::new(),
        })
    }

    fn row(&self) -> String {
        format!(
            "| {} | {:.0} | {:.1} | {:.1} | {} | {} | {:.1} |",
            self.label,
            self.requests_per_s,
            self.p50_ms,
            self.p99_ms,
            self.errors,
            self.shed,
            self.peak_rss_kib as f64 / 1024.0
        )
    }
}

/// The CPU time process `pid` has used so far (user and system), in seconds.
fn cpu_seconds_of(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name is in parentheses and may hold spaces: count from after it.
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).context("an unreadable /proc stat")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| -> anyhow::Result<f64> {
        Ok(fields.get(index).context("a short /proc stat")?.parse::<f64>()?)
    };
    // utime and stime are fields 14 and 15 of stat(5), 12 and 13 after the name; the
    // kernel counts them in USER_HZ, 100 on Linux.
    Ok((ticks(11)? + ticks(12)?) / 100.0)
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

/// A server's log file, read as it grows.
#[derive(Debug)]
struct Log {
    path: PathBuf,
    /// Bytes already taken.
    read: usize,
}

impl Log {
    /// The whole lines logged since the last call, timestamps and colours left out.
    fn take(&mut self) -> anyhow::Result<Vec<String>> {
        let bytes = std::fs::read(&self.path).with_context(|| format!("reading {}", self.path.display()))?;
        let new = bytes.get(self.read..).unwrap_or_default();
        let Some(end) = new.iter().rposition(|b| *b == b'\n') else { return Ok(Vec::new()) };
        self.read += end + 1;
        Ok(String::from_utf8_lossy(&new[..end]).lines().map(|line| message(&strip_ansi(line))).collect())
    }
}

/// A log line without its leading RFC 3339 timestamp (tracing's lines have one).
fn message(line: &str) -> String {
    let line = line.trim();
    match line.split_once(' ') {
        Some((first, rest)) if first.len() >= 20 && first.as_bytes().get(4) == Some(&b'-') => {
            rest.trim().to_owned()
        }
        _ => line.to_owned(),
    }
}

/// Prints how many lines were logged during `phase`, and the most frequent ones with
/// their counts; nothing when none was.
fn summarize_log(phase: &str, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for line in lines.iter().filter(|line| !line.is_empty()) {
        *counts.entry(line.chars().take(240).collect()).or_default() += 1;
    }
    let mut by_count: Vec<_> = counts.into_iter().collect();
    by_count.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
    println!("logged during {phase}: {} lines", lines.len());
    for (line, count) in by_count.iter().take(6) {
        println!("  {count:>6} x {line}");
    }
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters, ending in a letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
