use std::time::Duration;

use sea_orm::{ConnectionTrait as _, Statement};
use serde_json::json;
use triage::{
    config::{Config, Secret},
    domain::notices::Outbox,
    jobs::run_digest,
    startup::connect,
};

use crate::{
    helpers::{Session, TestApp, each_backend_with},
    smtp::{Received, SmtpSink},
};

const UPDATE: &str = "mutation($input: UpdateIssueInput!) { updateIssue(input: $input) { issue { id } } }";

fn digests(sink: &SmtpSink, every: Duration, include_empty: bool) -> impl Fn(&mut Config) {
    let url = sink.url();
    move |config: &mut Config| {
        config.smtp_url = Some(Secret::new(url.clone()));
        config.assignment_delay = Duration::from_secs(3600);
        config.digest_every = every;
        config.digest_include_empty = include_empty;
    }
}

/// Ada assigns bob an open, an in-progress and a closed issue, and carol one; dave
/// has nothing.
async fn team(app: &TestApp) -> [Session; 4] {
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let dave = app.register("dave").await;
    let set_status = async |id: &str, status: &str| {
        app.data(Some(&ada.access_token), UPDATE, json!({ "input": { "id": id, "status": status } })).await;
    };
    app.create_issue(&ada, "Bob open", Some(&bob.id)).await;
    let working = app.create_issue(&ada, "Bob in progress", Some(&bob.id)).await;
    set_status(&working, "IN_PROGRESS").await;
    let done = app.create_issue(&ada, "Bob closed", Some(&bob.id)).await;
    set_status(&done, "CLOSED").await;
    app.create_issue(&ada, "Carol open", Some(&carol.id)).await;
    [ada, bob, carol, dave]
}

async fn enqueue(app: &TestApp, period: &str, include_empty: bool) -> u64 {
    let db = connect(&app.config.database, None).await.unwrap();
    let enqueued = run_digest(&db, &Outbox::new(Duration::ZERO), period, include_empty).await.unwrap();
    db.close().await.unwrap();
    enqueued
}

fn only(messages: Vec<Received>) -> Received {
    assert_eq!(messages.len(), 1, "{messages:#?}");
    messages.into_iter().next().unwrap()
}

#[tokio::test]
async fn a_digest_lists_exactly_each_users_assigned_issues_grouped_open_first() {
    let sink = SmtpSink::start().await;
    each_backend_with(digests(&sink, Duration::from_secs(24 * 3600), false), async |app| {
        sink.clear();
        team(app).await;
        assert_eq!(enqueue(app, "test-period", false).await, 2, "bob and carol; dave has nothing assigned");
        assert_eq!(enqueue(app, "test-period", false).await, 0, "a second run of a period enqueues nothing");
        sink.wait_for(2, Duration::from_secs(20)).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(sink.messages().len(), 2);

        let bob = only(sink.to("bob@example.com"));
        let subject = bob.header("Subject").unwrap();
        assert!(subject.contains("3 issues") && subject.contains("2 open"), "{subject}");
        let (text, html) = (bob.part("text/plain"), bob.part("text/html"));
        let order =
            ["OPEN (1)", "Bob open", "IN_PROGRESS (1)", "Bob in progress", "CLOSED (1)", "Bob closed"];
        for part in [&text, &html] {
            let positions: Vec<usize> = order
                .iter()
                .map(|fact| part.find(fact).unwrap_or_else(|| panic!("{fact} missing: {part}")))
                .collect();
            assert!(positions.windows(2).all(|w| w[0] < w[1]), "grouped open first: {part}");
            assert!(!part.contains("Carol open"), "only bob's issues: {part}");
        }
        let carol = only(sink.to("carol@example.com"));
        assert!(carol.part("text/plain").contains("Carol open"));
        assert!(carol.header("Subject").unwrap().contains("1 issue assigned"));
        assert!(sink.to("dave@example.com").is_empty() && sink.to("ada@example.com").is_empty());
    })
    .await;
}

#[tokio::test]
async fn with_include_empty_everyone_gets_a_digest() {
    let sink = SmtpSink::start().await;
    each_backend_with(digests(&sink, Duration::from_secs(24 * 3600), true), async |app| {
        sink.clear();
        team(app).await;
        assert_eq!(enqueue(app, "everyone", true).await, 4);
        sink.wait_for(4, Duration::from_secs(20)).await;
        let dave = only(sink.to("dave@example.com"));
        assert!(dave.header("Subject").unwrap().contains("0 issues"));
        assert!(dave.part("text/plain").contains("No issues are assigned to you"));
    })
    .await;
}

#[tokio::test]
async fn the_digest_goes_out_every_period_once_even_with_two_servers() {
    let sink = SmtpSink::start().await;
    let every = Duration::from_secs(2);
    each_backend_with(digests(&sink, every, false), async |app| {
        sink.clear();
        app.start_replica().await;
        let [_, bob, ..] = team(app).await;
        // Three periods of two seconds, seen by both servers; then both stop, finishing
        // the sends in flight.
        tokio::time::sleep(Duration::from_secs(7)).await;
        app.stop_replicas().await;
        app.stop_server().await;

        let to_bob = sink.to("bob@example.com");
        assert!(to_bob.len() >= 3, "a digest every period: {}", to_bob.len());
        let mut ids: Vec<String> = to_bob.iter().map(|m| m.header("Message-ID").unwrap()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), to_bob.len(), "no digest was sent twice");

        let db = connect(&app.config.database, None).await.unwrap();
        let backend = db.get_database_backend();
        let sql = format!(
            "SELECT COUNT(*) AS periods, COUNT(DISTINCT dedupe_key) AS distinct_periods FROM notices \
             WHERE kind = 'digest' AND state = 'sent' AND recipient_id = {}",
            bob.id.parse::<i64>().unwrap()
        );
        let row = db.query_one_raw(Statement::from_string(backend, sql)).await.unwrap().unwrap();
        let periods: i64 = row.try_get("", "periods").unwrap();
        let distinct: i64 = row.try_get("", "distinct_periods").unwrap();
        assert_eq!(periods, distinct, "one digest per period");
        assert_eq!(to_bob.len() as i64, periods, "each digest sent arrived once");
        db.close().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_cron_line_schedules_the_digest_instead() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let configure = move |config: &mut Config| {
        config.smtp_url = Some(Secret::new(url.clone()));
        config.assignment_delay = Duration::from_secs(3600);
        config.digest_cron = Some("*/2 * * * * *".to_owned());
    };
    each_backend_with(configure, async |app| {
        sink.clear();
        team(app).await;
        let messages = sink.wait_for(2, Duration::from_secs(10)).await;
        assert!(messages.iter().all(|m| m.header("Subject").unwrap().contains("digest")), "{messages:#?}");
    })
    .await;
}
