//! Assignment notices: due exactly `TRIAGE_ASSIGNMENT_DELAY` after the assignment by
//! the jobs' clock, which these tests move; emails go to the in-memory outbox, except
//! in the one test that sends them to a real SMTP listener.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use triage::{
    domain::notices as outbox,
    entity::notices::{self, State},
    mail::SendError,
    startup::connect,
};

use crate::{
    helpers::{PATIENCE, Session, TestApp, each_backend_with},
    smtp::SmtpSink,
};

const PENDING: &str = "query($id: ID!) { issue(id: $id) { pendingNotice { dueAt recipient { username } } } }";
const UPDATE: &str = "mutation($input: UpdateIssueInput!) { updateIssue(input: $input) { issue { id } } }";
const DELETE: &str = "mutation($input: DeleteIssueInput!) { deleteIssue(input: $input) { deletedIssueId } }";

/// The default `TRIAGE_ASSIGNMENT_DELAY`, which the tests keep.
const DELAY: Duration = Duration::from_secs(12 * 60);
const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);

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

fn transient(reply: &str) -> SendError {
    SendError::Transient(reply.to_owned())
}

#[tokio::test]
async fn an_assignment_notice_goes_out_once_exactly_when_due_with_the_issue_as_it_is_then() {
    each_backend_with(
        |_| {},
        async |app| {
            let ada = app.register("ada").await;
            let bob = app.register("bob").await;
            let eve = app.register("eve").await;
            let assigned_at = app.clock.now();
            let issue = app.create_issue(&ada, "Crash on save", Some(&bob.id)).await;

            let notice = pending(app, &ada, &issue).await;
            assert_eq!(notice["recipient"]["username"], "bob");
            assert_eq!(pending(app, &bob, &issue).await, notice, "the assignee sees it too");
            assert!(pending(app, &eve, &issue).await.is_null(), "nobody else does");
            let due = due_at(&notice);
            assert_eq!(due, assigned_at + DELAY);

            // Renaming before it is due changes what it says, not when it goes.
            app.data(
                Some(&ada.access_token),
                UPDATE,
                json!({ "input": { "id": issue, "title": "Crash on <save>" } }),
            )
            .await;
            assert_eq!(due_at(&pending(app, &ada, &issue).await), due);

            app.advance(DELAY - SECOND);
            app.settled().await;
            assert!(app.mail.sent().is_empty(), "nothing a second before it is due");
            app.advance(SECOND);
            let sent = app.exactly_emails(1).await;
            let message = &sent[0];
            assert_eq!(message.at, due, "sent the moment it is due");
            assert_eq!(
                (message.to_address.as_str(), message.to_name.as_str()),
                (email("bob").as_str(), "Test bob")
            );
            assert!(message.subject.contains("Crash on <save>"), "{}", message.subject);
            assert!(message.message_id.starts_with('<') && message.message_id.ends_with("@triage.example>"));
            for fact in
                ["Crash on <save>", "OPEN", "Test ada", &format!("https://triage.example/issues/{issue}")]
            {
                assert!(message.text.contains(fact), "text lacks {fact}: {}", message.text);
            }
            let html = &message.html;
            assert!(
                html.contains("Crash on &lt;save&gt;") && html.contains("Test ada") && html.contains("OPEN"),
                "{html}"
            );
            assert!(pending(app, &ada, &issue).await.is_null(), "nothing is pending once it went out");

            // Reassigned after it went out: nothing to cancel, and the new assignee's is due in full.
            app.data(
                Some(&ada.access_token),
                UPDATE,
                json!({ "input": { "id": issue, "assignedTo": eve.id } }),
            )
            .await;
            assert_eq!(due_at(&pending(app, &eve, &issue).await), app.clock.now() + DELAY);
            app.advance(DELAY);
            let sent = app.exactly_emails(2).await;
            assert_eq!((sent[0].to_name.as_str(), sent[1].to_name.as_str()), ("Test bob", "Test eve"));
        },
    )
    .await;
}

/// The end-to-end path: a real SMTP server on loopback, which first defers, then
/// accepts, and rejects a second email for good.
#[tokio::test]
async fn an_assignment_notice_reaches_a_real_smtp_server_after_a_deferral() {
    let sink = SmtpSink::start().await;
    each_backend_with(sink.configure(), async |app| {
        sink.clear();
        let ada = app.register("ada").await;
        let bob = app.register("bob").await;
        let attempts_before = sink.rcpt_attempts();
        sink.reply_to_rcpt(&["451 4.3.0 try again later\r\n"]);
        let issue = app.create_issue(&ada, "Crash on <save>", Some(&bob.id)).await;

        app.advance(DELAY);
        app.settled().await;
        assert_eq!(sink.rcpt_attempts() - attempts_before, 1, "tried once, deferred");
        assert!(sink.messages().is_empty());
        // The retry is due within the first backoff.
        app.advance(app.config.mail_retry_base);
        sink.wait_for(1, PATIENCE).await;
        app.settled().await;
        let messages = sink.messages();
        assert_eq!(messages.len(), 1, "{messages:#?}");
        assert_eq!(sink.rcpt_attempts() - attempts_before, 2);

        let message = &messages[0];
        assert_eq!(message.to, [email("bob")]);
        let subject = message.header("Subject").unwrap();
        assert_eq!(subject, "[TRIAGE-1] Crash on <save>");
        assert!(message.header("From").unwrap().contains("triage@example.com"));
        assert!(message.header("Message-ID").unwrap().contains("@triage.example>"));
        let text = message.part("text/plain");
        let html = message.part("text/html");
        for fact in ["Crash on <save>", "OPEN", "Test ada", &format!("https://triage.example/issues/{issue}")]
        {
            assert!(text.contains(fact), "text lacks {fact}: {text}");
        }
        assert!(html.contains("Crash on &lt;save&gt;") && html.contains("Test ada"), "{html}");

        // "No such user" is final: one attempt, nothing left pending.
        let attempts_before = sink.rcpt_attempts();
        sink.reply_to_rcpt(&["550 5.1.1 no such user\r\n"]);
        let rejected = app.create_issue(&ada, "Rejected", Some(&bob.id)).await;
        app.advance(DELAY);
        app.settled().await;
        assert_eq!(sink.rcpt_attempts() - attempts_before, 1, "a permanent failure is not retried");
        assert!(pending(app, &ada, &rejected).await.is_null());
        assert_eq!(sink.messages().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn reassigning_before_it_is_due_notifies_only_the_new_assignee_from_the_reassignment() {
    each_backend_with(
        |_| {},
        async |app| {
            let ada = app.register("ada").await;
            let bob = app.register("bob").await;
            let carol = app.register("carol").await;
            let issue = app.create_issue(&ada, "Flaky build", Some(&bob.id)).await;
            let first_due = due_at(&pending(app, &ada, &issue).await);
            app.advance(MINUTE);

            app.data(
                Some(&ada.access_token),
                UPDATE,
                json!({ "input": { "id": issue, "assignedTo": carol.id } }),
            )
            .await;
            let notice = pending(app, &ada, &issue).await;
            assert_eq!(notice["recipient"]["username"], "carol");
            let due = due_at(&notice);
            assert_eq!(due, first_due + MINUTE, "due a delay after the reassignment");

            app.advance(DELAY - MINUTE);
            app.settled().await;
            assert!(app.mail.sent().is_empty(), "nothing at the first assignment's due time");
            app.advance(MINUTE);
            let sent = app.exactly_emails(1).await;
            assert_eq!((sent[0].to_address.as_str(), sent[0].at), (email("carol").as_str(), due));
            assert!(app.mail.to(&email("bob")).is_empty(), "the former assignee gets nothing");
        },
    )
    .await;
}

#[tokio::test]
async fn unassigning_or_deleting_cancels_the_notice() {
    each_backend_with(
        |_| {},
        async |app| {
            let ada = app.register("ada").await;
            let bob = app.register("bob").await;
            let carol = app.register("carol").await;
            let token = Some(ada.access_token.as_str());
            let unassigned = app.create_issue(&ada, "Unassigned later", Some(&bob.id)).await;
            let deleted = app.create_issue(&ada, "Deleted later", Some(&bob.id)).await;
            app.data(token, UPDATE, json!({ "input": { "id": unassigned, "assignedTo": null } })).await;
            assert!(pending(app, &ada, &unassigned).await.is_null());
            app.data(token, DELETE, json!({ "input": { "id": deleted } })).await;
            // Due at the same moment as the other two would have been.
            app.create_issue(&ada, "Marker", Some(&carol.id)).await;

            app.advance(DELAY);
            let sent = app.exactly_emails(1).await;
            assert_eq!(sent[0].to_address, email("carol"));
            assert!(app.mail.to(&email("bob")).is_empty());
        },
    )
    .await;
}

#[tokio::test]
async fn pending_notices_survive_a_restart_and_go_out_exactly_once() {
    each_backend_with(
        |_| {},
        async |app| {
            let ada = app.register("ada").await;
            let bob = app.register("bob").await;
            let carol = app.register("carol").await;
            let overdue = app.create_issue(&ada, "Overdue after the restart", Some(&bob.id)).await;
            let overdue_due = due_at(&pending(app, &ada, &overdue).await);

            app.stop_server().await;
            app.advance(DELAY + MINUTE);
            assert!(app.mail.sent().is_empty(), "nothing is sent while the server is down");
            app.start_server().await;
            let restarted = app.clock.now();
            assert!(restarted > overdue_due);
            let to_bob = app.emails(1).await;
            assert_eq!(
                (to_bob[0].to_address.as_str(), to_bob[0].at),
                (email("bob").as_str(), restarted),
                "at once"
            );

            let later = app.create_issue(&ada, "Due after the restart", Some(&carol.id)).await;
            let later_due = due_at(&pending(app, &ada, &later).await);
            assert_eq!(later_due, restarted + DELAY);
            app.advance(DELAY);
            app.exactly_emails(2).await;
            assert_eq!(app.mail.to(&email("bob")).len(), 1);
            let to_carol = app.mail.to(&email("carol"));
            assert_eq!(to_carol.len(), 1);
            assert_eq!(to_carol[0].at, later_due);
        },
    )
    .await;
}

#[tokio::test]
async fn a_notice_is_retried_with_backoff_until_the_mail_server_is_back_and_arrives_once() {
    each_backend_with(
        |_| {},
        async |app| {
            let ada = app.register("ada").await;
            let bob = app.register("bob").await;
            let base = app.config.mail_retry_base;
            app.mail.set_down(Some(transient("connection refused")));
            // The mutation neither waits for nor fails because of the missing mail server.
            let issue = app.create_issue(&ada, "Mail is down", Some(&bob.id)).await;

            app.advance(DELAY);
            for attempt in 1..=3u32 {
                app.attempts(attempt as usize).await;
                app.settled().await;
                assert_eq!(app.mail.attempts(), attempt as usize, "one attempt at a time");
                // Retried after base * 2^(attempt-1), less up to a quarter of jitter.
                let full = base * 2u32.pow(attempt - 1);
                let wait = (due_at(&pending(app, &ada, &issue).await) - app.clock.now()).to_std().unwrap();
                assert!(wait <= full && wait >= full.mul_f64(0.75), "attempt {attempt}: retry in {wait:?}");
                if attempt < 3 {
                    app.advance(full);
                }
            }
            assert!(app.mail.sent().is_empty());

            app.mail.set_down(None);
            app.advance(base * 4);
            let sent = app.exactly_emails(1).await;
            assert_eq!(sent[0].to_address, email("bob"));
            assert_eq!(app.mail.attempts(), 4);
            assert!(pending(app, &ada, &issue).await.is_null());
        },
    )
    .await;
}

#[tokio::test]
async fn a_temporary_failure_is_retried_and_a_permanent_one_is_not() {
    each_backend_with(
        |_| {},
        async |app| {
            let ada = app.register("ada").await;
            let bob = app.register("bob").await;
            let base = app.config.mail_retry_base;

            // Two "try again later" replies, then the server accepts: three attempts, one email.
            app.mail
                .fail_next([transient("451 4.3.0 try again later"), transient("451 4.3.0 try again later")]);
            app.create_issue(&ada, "Retried", Some(&bob.id)).await;
            app.advance(DELAY);
            app.attempts(1).await;
            app.settled().await;
            app.advance(base);
            app.attempts(2).await;
            app.settled().await;
            app.advance(base * 2);
            let sent = app.exactly_emails(1).await;
            assert_eq!(sent[0].to_address, email("bob"));
            assert_eq!(app.mail.attempts(), 3);

            // "No such user" is final: one attempt, no email, nothing left pending.
            app.mail.fail_next([SendError::Permanent("550 5.1.1 no such user".to_owned())]);
            let issue = app.create_issue(&ada, "Rejected", Some(&bob.id)).await;
            app.advance(DELAY);
            app.attempts(4).await;
            app.settled().await;
            assert!(pending(app, &ada, &issue).await.is_null());
            // Past every retry it could have had.
            app.advance(Duration::from_secs(3600));
            app.settled().await;
            assert_eq!(app.mail.attempts(), 4, "a permanent failure is not retried");
            assert_eq!(app.mail.sent().len(), 1);
        },
    )
    .await;
}

#[tokio::test]
async fn two_servers_on_one_database_send_each_notice_once() {
    each_backend_with(
        |_| {},
        async |app| {
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
            // Both servers wake for them at the same moment.
            app.advance(DELAY);
            let sent = app.exactly_emails(people.len()).await;
            let mut ids: Vec<&str> = sent.iter().map(|m| m.message_id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), people.len(), "no notice went out twice");
            for n in 0..people.len() {
                assert_eq!(app.mail.to(&email(&format!("person{n}"))).len(), 1);
            }
        },
    )
    .await;
}

#[tokio::test]
async fn a_page_shows_each_pending_notice_to_the_creator_and_assignee_only() {
    each_backend_with(
        |_| {},
        async |app| {
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
        },
    )
    .await;
}

/// Ada assigns bob an issue, the server stops, and the notice is due at `at`: what is
/// left is the database, for a test to drive the outbox's functions on.
async fn one_due_notice(app: &mut TestApp, at: DateTime<Utc>) -> sea_orm::DatabaseConnection {
    use sea_orm::{EntityTrait as _, sea_query::Expr};
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;
    app.create_issue(&ada, "Stale", Some(&bob.id)).await;
    app.stop_server().await;
    let db = connect(&app.config.database, None).await.unwrap();
    notices::Entity::update_many()
        .col_expr(notices::Column::DueAt, Expr::value(at - chrono::Duration::seconds(1)))
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
    each_backend_with(
        |_| {},
        async |app: &mut TestApp| {
            let at = app.clock.now();
            let db = one_due_notice(app, at).await;
            // A sender claims the notice, and its lease runs out at once...
            let stale = outbox::claim_due(&db, at, Duration::ZERO, 10).await.unwrap();
            assert_eq!(stale.len(), 1);
            // ...so another claims it again a moment later.
            let later = at + chrono::Duration::milliseconds(1);
            let fresh = outbox::claim_due(&db, later, MINUTE, 10).await.unwrap();
            assert_eq!(fresh.len(), 1);
            let (stale, fresh) = (&stale[0], &fresh[0]);
            assert_eq!(stale.id, fresh.id);
            assert_ne!(stale.claim_token, fresh.claim_token);

            assert!(!outbox::mark_sent(&db, stale, later).await.unwrap());
            assert!(!outbox::mark_failed(&db, stale, "late").await.unwrap());
            assert!(!outbox::mark_retry(&db, stale, "late", later).await.unwrap());
            assert!(!outbox::mark_cancelled(&db, stale, "late").await.unwrap());
            let row = notice(&db, fresh.id).await;
            assert_eq!(row.state, State::Pending);
            assert_eq!(row.claim_token, fresh.claim_token, "still the newer claim's");
            assert_eq!(row.lease_until, fresh.lease_until);
            assert_eq!((row.attempts, row.last_error, row.sent_at), (2, None, None));

            // The newer claim records its outcome, and the stale one cannot overwrite it.
            assert!(outbox::mark_sent(&db, fresh, later).await.unwrap());
            assert!(!outbox::mark_failed(&db, stale, "late").await.unwrap());
            assert!(!outbox::mark_retry(&db, fresh, "twice", later).await.unwrap(), "settled once");
            let row = notice(&db, fresh.id).await;
            assert_eq!(row.state, State::Sent);
            assert_eq!((row.sent_at, row.last_error, row.lease_until), (Some(later), None, None));
            db.close().await.unwrap();
        },
    )
    .await;
}

#[tokio::test]
async fn a_late_outcome_counts_while_nobody_has_claimed_the_notice_again() {
    each_backend_with(
        |_| {},
        async |app: &mut TestApp| {
            let at = app.clock.now();
            let db = one_due_notice(app, at).await;
            let claimed = outbox::claim_due(&db, at, Duration::ZERO, 10).await.unwrap();
            // The lease has run out, but no one claimed the notice since: the retry stands.
            let retry_at = at + chrono::Duration::seconds(30);
            assert!(outbox::mark_retry(&db, &claimed[0], "421 try later", retry_at).await.unwrap());
            let row = notice(&db, claimed[0].id).await;
            assert_eq!(
                (row.state, row.lease_until, row.last_error.as_deref(), row.due_at),
                (State::Pending, None, Some("421 try later"), retry_at)
            );
            db.close().await.unwrap();
        },
    )
    .await;
}
