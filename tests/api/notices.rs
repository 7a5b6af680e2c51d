use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use triage::{
    config::{Config, Secret},
    domain::notices as outbox,
    entity::notices::{self, State},
    startup::connect,
};

use crate::{
    helpers::{Session, TestApp, each_backend_with},
    smtp::{Received, SmtpSink, unused_address},
};

const PENDING: &str = "query($id: ID!) { issue(id: $id) { pendingNotice { dueAt recipient { username } } } }";
const UPDATE: &str = "mutation($input: UpdateIssueInput!) { updateIssue(input: $input) { issue { id } } }";
const DELETE: &str = "mutation($input: DeleteIssueInput!) { deleteIssue(input: $input) { deletedIssueId } }";

/// Lateness allowed by "within one second of its due time".
const ON_TIME: chrono::Duration = chrono::Duration::milliseconds(1000);

fn with_smtp(sink: &SmtpSink, delay: Duration) -> impl Fn(&mut Config) {
    let url = sink.url();
    move |config: &mut Config| {
        config.smtp_url = Some(Secret::new(url.clone()));
        config.assignment_delay = delay;
    }
}

async fn pending(app: &TestApp, session: &Session, issue: &str) -> Value {
    app.data(Some(&session.access_token), PENDING, json!({ "id": issue })).await["issue"]["pendingNotice"]
        .clone()
}

fn due_at(notice: &Value) -> DateTime<Utc> {
    notice["dueAt"].as_str().unwrap().parse().unwrap()
}

fn email(username: &str) -> String {
    format!("{username}@example.com")
}

fn assert_on_time(message: &Received, due: DateTime<Utc>) {
    assert!(message.at >= due, "sent {} before its due time {due}", message.at);
    assert!(message.at - due <= ON_TIME, "sent {} for {due}: {} late", message.at, message.at - due);
}

/// Waits until `sink` has `count` messages, then a little longer to be sure no more come.
async fn settled(sink: &SmtpSink, count: usize) -> Vec<Received> {
    sink.wait_for(count, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let messages = sink.messages();
    assert_eq!(messages.len(), count, "{messages:#?}");
    messages
}

#[tokio::test]
async fn an_assignment_notice_arrives_once_on_time_with_the_issue_as_it_is_then() {
    let sink = SmtpSink::start().await;
    each_backend_with(with_smtp(&sink, Duration::from_secs(2)), async |app| {
        sink.clear();
        let ada = app.register("ada").await;
        let bob = app.register("bob").await;
        let eve = app.register("eve").await;
        let issue = app.create_issue(&ada, "Crash on save", Some(&bob.id)).await;

        let notice = pending(app, &ada, &issue).await;
        assert_eq!(notice["recipient"]["username"], "bob");
        assert_eq!(pending(app, &bob, &issue).await, notice, "the assignee sees it too");
        assert!(pending(app, &eve, &issue).await.is_null(), "nobody else does");
        let due = due_at(&notice);

        // Renaming before it is due changes what it says, not when it goes.
        app.data(
            Some(&ada.access_token),
            UPDATE,
            json!({ "input": { "id": issue, "title": "Crash on <save>" } }),
        )
        .await;
        assert_eq!(due_at(&pending(app, &ada, &issue).await), due);

        let messages = settled(&sink, 1).await;
        let message = &messages[0];
        assert_on_time(message, due);
        assert_eq!(message.to, [email("bob")]);
        let subject = message.header("Subject").unwrap();
        assert!(subject.contains("Crash on <save>"), "{subject}");
        assert!(message.header("From").unwrap().contains("triage@example.com"));
        assert_eq!(message.header("Message-ID").unwrap(), message.header("Message-ID").unwrap());
        assert!(message.header("Message-ID").unwrap().contains("@triage.example>"));
        let text = message.part("text/plain");
        let html = message.part("text/html");
        for fact in ["Crash on <save>", "OPEN", "Test ada", &format!("https://triage.example/issues/{issue}")]
        {
            assert!(text.contains(fact), "text lacks {fact}: {text}");
        }
        assert!(
            html.contains("Crash on &lt;save&gt;") && html.contains("Test ada") && html.contains("OPEN"),
            "{html}"
        );
        assert!(pending(app, &ada, &issue).await.is_null(), "nothing is pending once it went out");
    })
    .await;
}

#[tokio::test]
async fn reassigning_before_it_is_due_notifies_only_the_new_assignee_from_the_reassignment() {
    let sink = SmtpSink::start().await;
    each_backend_with(with_smtp(&sink, Duration::from_secs(3)), async |app| {
        sink.clear();
        let ada = app.register("ada").await;
        let bob = app.register("bob").await;
        let carol = app.register("carol").await;
        let issue = app.create_issue(&ada, "Flaky build", Some(&bob.id)).await;
        let first_due = due_at(&pending(app, &ada, &issue).await);
        tokio::time::sleep(Duration::from_millis(700)).await;

        app.data(
            Some(&ada.access_token),
            UPDATE,
            json!({ "input": { "id": issue, "assignedTo": carol.id } }),
        )
        .await;
        let notice = pending(app, &ada, &issue).await;
        assert_eq!(notice["recipient"]["username"], "carol");
        let due = due_at(&notice);
        assert!(due - first_due >= chrono::Duration::milliseconds(700), "due from the reassignment");

        let messages = settled(&sink, 1).await;
        assert_eq!(messages[0].to, [email("carol")]);
        assert_on_time(&messages[0], due);
        assert!(sink.to(&email("bob")).is_empty(), "the former assignee gets nothing");
    })
    .await;
}

#[tokio::test]
async fn unassigning_or_deleting_cancels_the_notice() {
    let sink = SmtpSink::start().await;
    each_backend_with(with_smtp(&sink, Duration::from_secs(1)), async |app| {
        sink.clear();
        let ada = app.register("ada").await;
        let bob = app.register("bob").await;
        let carol = app.register("carol").await;
        let token = Some(ada.access_token.as_str());
        let unassigned = app.create_issue(&ada, "Unassigned later", Some(&bob.id)).await;
        let deleted = app.create_issue(&ada, "Deleted later", Some(&bob.id)).await;
        app.data(token, UPDATE, json!({ "input": { "id": unassigned, "assignedTo": null } })).await;
        assert!(pending(app, &ada, &unassigned).await.is_null());
        app.data(token, DELETE, json!({ "input": { "id": deleted } })).await;
        // A notice created after the others, and due after them: once it arrives, theirs would have.
        app.create_issue(&ada, "Marker", Some(&carol.id)).await;

        let messages = settled(&sink, 1).await;
        assert_eq!(messages[0].to, [email("carol")]);
        assert!(sink.to(&email("bob")).is_empty());
    })
    .await;
}

#[tokio::test]
async fn pending_notices_survive_a_restart_and_go_out_exactly_once() {
    let sink = SmtpSink::start().await;
    each_backend_with(with_smtp(&sink, Duration::from_secs(2)), async |app| {
        sink.clear();
        let ada = app.register("ada").await;
        let bob = app.register("bob").await;
        let carol = app.register("carol").await;
        let overdue = app.create_issue(&ada, "Overdue after the restart", Some(&bob.id)).await;
        let overdue_due = due_at(&pending(app, &ada, &overdue).await);

        app.stop_server().await;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(sink.messages().len(), 0, "nothing is sent while the server is down");
        app.start_server().await;
        let restarted = Utc::now();
        assert!(restarted > overdue_due);
        let later = app.create_issue(&ada, "Due after the restart", Some(&carol.id)).await;
        let later_due = due_at(&pending(app, &ada, &later).await);

        let messages = settled(&sink, 2).await;
        let to_bob = sink.to(&email("bob"));
        assert_eq!(to_bob.len(), 1);
        assert!(to_bob[0].at - restarted <= ON_TIME, "an overdue notice goes out at once");
        let to_carol = sink.to(&email("carol"));
        assert_eq!(to_carol.len(), 1);
        assert_on_time(&to_carol[0], later_due);
        assert_eq!(messages.len(), 2);
    })
    .await;
}

#[tokio::test]
async fn a_notice_is_retried_until_the_mail_server_is_back_and_arrives_once() {
    let address = unused_address();
    let url = format!("smtp://{address}");
    let configure = move |config: &mut Config| {
        config.smtp_url = Some(Secret::new(url.clone()));
        config.assignment_delay = Duration::from_millis(500);
        config.mail_retry_base = Duration::from_millis(200);
        config.mail_timeout = Duration::from_secs(1);
    };
    each_backend_with(configure, async |app| {
        let ada = app.register("ada").await;
        let bob = app.register("bob").await;
        // The mutation does not wait for, or fail because of, the missing mail server.
        let started = std::time::Instant::now();
        app.create_issue(&ada, "Mail is down", Some(&bob.id)).await;
        assert!(started.elapsed() < Duration::from_secs(1));
        tokio::time::sleep(Duration::from_secs(2)).await;

        let sink = SmtpSink::start_on(address).await;
        let messages = sink.wait_for(1, Duration::from_secs(30)).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(sink.messages().len(), 1, "{messages:#?}");
        assert_eq!(messages[0].to, [email("bob")]);
        drop(sink);
    })
    .await;
}

#[tokio::test]
async fn two_servers_on_one_database_send_each_notice_once() {
    let sink = SmtpSink::start().await;
    each_backend_with(with_smtp(&sink, Duration::from_secs(1)), async |app| {
        sink.clear();
        let replica = app.start_replica().await;
        let ada = app.register("ada").await;
        let mut people = Vec::new();
        for n in 0..6 {
            people.push(app.register(&format!("person{n}")).await);
        }
        for (n, person) in people.iter().enumerate() {
            let input = json!({ "input": { "title": format!("Issue {n}"), "assignedTo": person.id } });
            let create =
                "mutation($input: CreateIssueInput!) { createIssue(input: $input) { issue { id } } }";
            // Half through each server.
            let address = if n % 2 == 0 { app.address } else { replica };
            let response = app.graphql_at(address, Some(&ada.access_token), create, input).await;
            assert!(response.get("errors").is_none(), "{response}");
        }
        let messages = settled(&sink, people.len()).await;
        let mut ids: Vec<String> = messages.iter().map(|m| m.header("Message-ID").unwrap()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), people.len(), "no notice went out twice");
        for n in 0..people.len() {
            assert_eq!(sink.to(&email(&format!("person{n}"))).len(), 1);
        }
    })
    .await;
}

#[tokio::test]
async fn a_temporary_rejection_is_retried_and_a_permanent_one_is_not() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let configure = move |config: &mut Config| {
        config.smtp_url = Some(Secret::new(url.clone()));
        config.assignment_delay = Duration::from_millis(300);
        config.mail_retry_base = Duration::from_millis(100);
    };
    each_backend_with(configure, async |app| {
        sink.clear();
        let ada = app.register("ada").await;
        let bob = app.register("bob").await;

        // Two "try again later" replies, then the server accepts: three attempts, one email.
        let attempts_before = sink.rcpt_attempts();
        sink.reply_to_rcpt(&["451 4.3.0 try again later\r\n", "451 4.3.0 try again later\r\n"]);
        app.create_issue(&ada, "Retried", Some(&bob.id)).await;
        let messages = settled(&sink, 1).await;
        assert_eq!(messages[0].to, [email("bob")]);
        assert_eq!(sink.rcpt_attempts() - attempts_before, 3);

        // "No such user" is final: one attempt, no email, nothing left pending.
        let attempts_before = sink.rcpt_attempts();
        sink.reply_to_rcpt(&["550 5.1.1 no such user\r\n"]);
        let issue = app.create_issue(&ada, "Rejected", Some(&bob.id)).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(sink.rcpt_attempts() - attempts_before, 1, "a permanent failure is not retried");
        assert_eq!(sink.messages().len(), 1);
        assert!(pending(app, &ada, &issue).await.is_null());
    })
    .await;
}

#[tokio::test]
async fn a_page_shows_each_pending_notice_to_the_creator_and_assignee_only() {
    let configure = |config: &mut Config| config.assignment_delay = Duration::from_secs(3600);
    each_backend_with(configure, async |app| {
        let ada = app.register("ada").await;
        let bob = app.register("bob").await;
        let carol = app.register("carol").await;
        let eve = app.register("eve").await;
        app.create_issue(&ada, "For bob", Some(&bob.id)).await;
        app.create_issue(&ada, "For carol", Some(&carol.id)).await;
        app.create_issue(&ada, "For nobody", None).await;
        let query = "{ issues { nodes { pendingNotice { recipient { username } } } } }";
        let recipients = async |session: &Session| -> Vec<Value> {
            let data = app.data(Some(&session.access_token), query, json!({})).await;
            data["issues"]["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|node| node["pendingNotice"]["recipient"]["username"].clone())
                .collect()
        };
        assert_eq!(recipients(&ada).await, [json!(null), json!("carol"), json!("bob")]);
        assert_eq!(recipients(&bob).await, [json!(null), json!(null), json!("bob")]);
        assert_eq!(recipients(&eve).await, [json!(null), json!(null), json!(null)]);
    })
    .await;
}

/// Ada assigns bob an issue, the server stops, and the notice is due: what is left is
/// the database, for a test to drive the outbox's functions on.
async fn one_due_notice(app: &mut TestApp) -> sea_orm::DatabaseConnection {
    use sea_orm::{EntityTrait as _, sea_query::Expr};
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;
    app.create_issue(&ada, "Stale", Some(&bob.id)).await;
    app.stop_server().await;
    let db = connect(&app.config.database, None).await.unwrap();
    notices::Entity::update_many()
        .col_expr(notices::Column::DueAt, Expr::value(Utc::now() - chrono::Duration::seconds(1)))
        .exec(&db)
        .await
        .unwrap();
    db
}

async fn notice(db: &sea_orm::DatabaseConnection, id: triage::entity::ids::NoticeId) -> notices::Model {
    use sea_orm::EntityTrait as _;
    notices::Entity::find_by_id(id).one(db).await.unwrap().unwrap()
}

#[tokio::test]
async fn a_stale_claims_outcome_changes_nothing() {
    let later = |config: &mut Config| config.assignment_delay = Duration::from_secs(3600);
    each_backend_with(later, async |app: &mut TestApp| {
        let db = one_due_notice(app).await;
        // A sender claims the notice, and its lease runs out at once...
        let stale = outbox::claim_due(&db, Duration::ZERO, 10).await.unwrap();
        assert_eq!(stale.len(), 1);
        tokio::time::sleep(Duration::from_millis(5)).await;
        // ...so another claims it again.
        let fresh = outbox::claim_due(&db, Duration::from_secs(60), 10).await.unwrap();
        assert_eq!(fresh.len(), 1);
        let (stale, fresh) = (&stale[0], &fresh[0]);
        assert_eq!(stale.id, fresh.id);
        assert_ne!(stale.claim_token, fresh.claim_token);

        assert!(!outbox::mark_sent(&db, stale).await.unwrap());
        assert!(!outbox::mark_failed(&db, stale, "late").await.unwrap());
        assert!(!outbox::mark_retry(&db, stale, "late", Utc::now()).await.unwrap());
        assert!(!outbox::mark_cancelled(&db, stale, "late").await.unwrap());
        let row = notice(&db, fresh.id).await;
        assert_eq!(row.state, State::Pending);
        assert_eq!(row.claim_token, fresh.claim_token, "still the newer claim's");
        assert_eq!(row.lease_until, fresh.lease_until);
        assert_eq!((row.attempts, row.last_error, row.sent_at), (2, None, None));

        // The newer claim records its outcome, and the stale one cannot overwrite it.
        assert!(outbox::mark_sent(&db, fresh).await.unwrap());
        assert!(!outbox::mark_failed(&db, stale, "late").await.unwrap());
        assert!(!outbox::mark_retry(&db, fresh, "twice", Utc::now()).await.unwrap(), "settled once");
        let row = notice(&db, fresh.id).await;
        assert_eq!(row.state, State::Sent);
        assert!(row.sent_at.is_some() && row.last_error.is_none() && row.lease_until.is_none());
        db.close().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_late_outcome_counts_while_nobody_has_claimed_the_notice_again() {
    let later = |config: &mut Config| config.assignment_delay = Duration::from_secs(3600);
    each_backend_with(later, async |app: &mut TestApp| {
        let db = one_due_notice(app).await;
        let claimed = outbox::claim_due(&db, Duration::ZERO, 10).await.unwrap();
        // The lease has run out, but no one claimed the notice since: the retry stands.
        let again = claimed;
        let retry_at = Utc::now() + chrono::Duration::seconds(30);
        assert!(outbox::mark_retry(&db, &again[0], "421 try later", retry_at).await.unwrap());
        let row = notice(&db, again[0].id).await;
        assert_eq!(
            (row.state, row.lease_until, row.last_error.as_deref()),
            (State::Pending, None, Some("421 try later"))
        );
        db.close().await.unwrap();
    })
    .await;
}
