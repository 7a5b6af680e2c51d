//! Digests: one per user per period. On the test clock the server runs the digest
//! at the start of each period the clock reaches; one test keeps the real scheduler,
//! the system clock and a real SMTP listener.

use std::time::Duration;

use sea_orm::{ConnectionTrait as _, Statement};
use serde_json::json;
use triage::{
    clock::Clock,
    config::{Config, Secret},
    domain::{digest::period_of, notices::Outbox},
    jobs::run_digest,
    mail::SentEmail,
    startup::connect,
};

use crate::{
    helpers::{PATIENCE, Session, TestApp, Timing, each_backend_timed, each_backend_with},
    smtp::SmtpSink,
};

const UPDATE: &str = "mutation($input: UpdateIssueInput!) { updateIssue(input: $input) { issue { id } } }";
const DAY: Duration = Duration::from_secs(24 * 3600);

/// Digests every `every`; assignment notices out of the way.
fn digests(every: Duration, include_empty: bool) -> impl Fn(&mut Config) {
    move |config: &mut Config| {
        config.assignment_delay = 50 * 365 * DAY;
        config.digest_every = every;
        config.digest_cron = None;
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

fn only(messages: Vec<SentEmail>) -> SentEmail {
    assert_eq!(messages.len(), 1, "{messages:#?}");
    messages.into_iter().next().unwrap()
}

/// The digest notices of `user` by state, and how many distinct periods they have.
async fn digest_rows(app: &TestApp, user: &Session) -> (i64, i64) {
    let db = connect(&app.config.database, None).await.unwrap();
    let sql = format!(
        "SELECT COUNT(*) AS periods, COUNT(DISTINCT dedupe_key) AS distinct_periods FROM notices \
         WHERE kind = 'digest' AND state = 'sent' AND recipient_id = {}",
        user.id.parse::<i64>().unwrap()
    );
    let row =
        db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
    let counts = (row.try_get("", "periods").unwrap(), row.try_get("", "distinct_periods").unwrap());
    db.close().await.unwrap();
    counts
}

#[tokio::test]
async fn a_digest_lists_exactly_each_users_assigned_issues_grouped_open_first() {
    each_backend_with(digests(DAY, false), async |app| {
        team(app).await;
        // A day on, one period has started: bob and carol get their digests; dave has
        // nothing assigned.
        app.advance(DAY);
        app.exactly_emails(2).await;

        let bob = only(app.mail.to("bob@example.com"));
        assert!(bob.subject.contains("3 issues") && bob.subject.contains("2 open"), "{}", bob.subject);
        let order =
            ["OPEN (1)", "Bob open", "IN_PROGRESS (1)", "Bob in progress", "CLOSED (1)", "Bob closed"];
        for part in [&bob.text, &bob.html] {
            let positions: Vec<usize> = order
                .iter()
                .map(|fact| part.find(fact).unwrap_or_else(|| panic!("{fact} missing: {part}")))
                .collect();
            assert!(positions.windows(2).all(|w| w[0] < w[1]), "grouped open first: {part}");
            assert!(!part.contains("Carol open"), "only bob's issues: {part}");
        }
        let carol = only(app.mail.to("carol@example.com"));
        assert!(carol.text.contains("Carol open"));
        assert!(carol.subject.contains("1 issue assigned"));
        assert!(app.mail.to("dave@example.com").is_empty() && app.mail.to("ada@example.com").is_empty());

        // Running the job again in the same period, as another replica would, enqueues nothing.
        let db = connect(&app.config.database, None).await.unwrap();
        let outbox =
            Outbox::new(app.config.assignment_delay, Clock::system(), Clock::system().timer().handle());
        let at = app.clock.now();
        let period = period_of(at, DAY);
        assert_eq!(run_digest(&db, &outbox, &period, false, at).await.unwrap(), 0);
        db.close().await.unwrap();
        app.settled().await;
        assert_eq!(app.mail.sent().len(), 2);
    })
    .await;
}

#[tokio::test]
async fn with_include_empty_everyone_gets_a_digest() {
    each_backend_with(digests(DAY, true), async |app| {
        team(app).await;
        app.advance(DAY);
        app.exactly_emails(4).await;
        let dave = only(app.mail.to("dave@example.com"));
        assert!(dave.subject.contains("0 issues"), "{}", dave.subject);
        assert!(dave.text.contains("No issues are assigned to you"));
    })
    .await;
}

#[tokio::test]
async fn the_digest_goes_out_every_period_once_even_with_two_servers() {
    let every = Duration::from_secs(3600);
    each_backend_with(digests(every, false), async |app| {
        app.start_replica().await;
        let [_, bob, ..] = team(app).await;
        // Three periods, seen by both servers.
        for period in 1..=3 {
            app.advance(every);
            app.exactly_emails(2 * period).await;
        }
        let to_bob = app.mail.to("bob@example.com");
        assert_eq!(to_bob.len(), 3, "a digest every period");
        let mut ids: Vec<&str> = to_bob.iter().map(|m| m.message_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 3, "no digest was sent twice");
        assert_eq!(digest_rows(app, &bob).await, (3, 3), "one digest per period, each sent once");
    })
    .await;
}

#[tokio::test]
async fn a_cron_line_schedules_the_digest_instead() {
    let hourly = |config: &mut Config| {
        digests(DAY, false)(config);
        config.digest_cron = Some("0 0 * * * *".to_owned());
    };
    each_backend_with(hourly, async |app| {
        let [_, bob, ..] = team(app).await;
        // However far into its hour the clock started, an hour on holds one tick.
        app.advance(Duration::from_secs(3600));
        app.exactly_emails(2).await;
        app.advance(Duration::from_secs(3600));
        app.exactly_emails(4).await;
        assert_eq!(digest_rows(app, &bob).await, (2, 2));
    })
    .await;
}

/// The end-to-end path: the real scheduler on the system clock, every second, and
/// a real SMTP server on loopback.
#[tokio::test]
async fn the_scheduler_sends_digests_over_smtp_in_real_time() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let configure = move |config: &mut Config| {
        digests(DAY, false)(config);
        config.smtp_url = Some(Secret::new(url.clone()));
        config.digest_cron = Some("* * * * * *".to_owned());
    };
    each_backend_timed(Timing::Real, configure, async |app| {
        sink.clear();
        team(app).await;
        // Bob's and carol's of one second go out together; wait for one of bob's.
        let mut count = 1;
        while sink.to("bob@example.com").is_empty() {
            sink.wait_for(count, PATIENCE).await;
            count += 1;
        }
        for message in sink.messages() {
            let subject = message.header("Subject").unwrap();
            assert!(subject.contains("digest"), "{subject}");
            assert!(
                ["bob@example.com", "carol@example.com"].contains(&message.to[0].as_str()),
                "{message:?}"
            );
        }
        let bob = sink.to("bob@example.com").into_iter().next().unwrap();
        assert!(bob.part("text/plain").contains("Bob in progress"));
    })
    .await;
}

/// The digest groups a user's issues by project, and lists nothing from a PRIVATE
/// project they are no longer a member of, nor from the trash.
#[tokio::test]
async fn a_digest_groups_by_project_and_lists_only_what_its_recipient_may_read() {
    use crate::projects::{add_member, file, project};
    each_backend_with(digests(DAY, false), async |app| {
        let ada = app.register("ada").await;
        let bob = app.register("bob").await;
        let web = project(app, &ada, "WEB", "PRIVATE").await;
        let ops = project(app, &ada, "OPS", "PRIVATE").await;
        add_member(app, &ada, &web, &bob, "MEMBER").await;
        add_member(app, &ada, &ops, &bob, "MEMBER").await;
        let token = Some(ada.access_token.as_str());
        let assign = async |project: &str, title: &str| {
            let filed = file(app, &ada, project, title).await;
            let id = filed["data"]["createIssue"]["issue"]["id"].clone();
            app.data(token, UPDATE, json!({ "input": { "id": id, "assignedTo": bob.id } })).await;
            id
        };
        assign(&web, "Web one").await;
        let trashed = assign(&web, "Web trashed").await;
        assign(&ops, "Ops secret").await;
        app.create_issue(&ada, "General one", Some(&bob.id)).await;
        app.data(
            token,
            "mutation($input: DeleteIssueInput!) { deleteIssue(input: $input) { deletedIssueId } }",
            json!({ "input": { "id": trashed } }),
        )
        .await;
        app.data(
            token,
            "mutation($input: RemoveProjectMemberInput!) { removeProjectMember(input: $input) { member { role } } }",
            json!({ "input": { "projectId": ops, "userId": bob.id } }),
        )
        .await;

        app.advance(DAY);
        let digest = only(app.exactly_emails(1).await);
        assert!(digest.subject.contains("2 issues"), "{}", digest.subject);
        for part in [&digest.text, &digest.html] {
            let general = part.find("General (TRIAGE)").unwrap_or_else(|| panic!("{part}"));
            let web = part.find("WEB project (WEB)").unwrap_or_else(|| panic!("{part}"));
            assert!(general < part.find("TRIAGE-1 General one").unwrap(), "{part}");
            assert!(general < web && web < part.find("WEB-1 Web one").unwrap(), "by project, in key order: {part}");
            assert!(!part.contains("Ops") && !part.contains("OPS"), "not from a project bob left: {part}");
            assert!(!part.contains("trashed"), "not from the trash: {part}");
        }
    })
    .await;
}
