//! `issueEvents` over WebSocket (`graphql-transport-ws`): auth, filters, order,
//! rollback, slow subscribers, and events crossing replicas.

use std::{net::SocketAddr, time::Duration};

use sea_orm::{ConnectionTrait as _, Database};
use serde_json::{Value, json};

use crate::{
    helpers::{Session, TestApp, each_backend, each_backend_with, error_code},
    ws::{End, WsClient},
};

const EVENTS: &str = "subscription($filter: IssueEventFilter) {
    issueEvents(filter: $filter) { kind issueId at actor { username } issue { id title status assignedTo { username } } }
}";

const UPDATE: &str = "mutation($input: UpdateIssueInput!) { updateIssue(input: $input) { issue { id } } }";
const DELETE: &str = "mutation($input: DeleteIssueInput!) { deleteIssue(input: $input) { deletedIssueId } }";

async fn update(app: &TestApp, address: SocketAddr, session: &Session, input: Value) {
    let response =
        app.graphql_at(address, Some(&session.access_token), UPDATE, json!({ "input": input })).await;
    assert!(response.get("errors").is_none(), "{response}");
}

/// Opens, edits, closes and deletes an issue of `creator`'s assigned to `assignee`,
/// through the server at `address`; returns its id.
async fn life_of_an_issue(
    app: &TestApp,
    address: SocketAddr,
    creator: &Session,
    assignee: &Session,
) -> String {
    let create = "mutation($input: CreateIssueInput!) { createIssue(input: $input) { issue { id } } }";
    let input = json!({ "input": { "title": "Printer on fire", "assignedTo": assignee.id } });
    let response = app.graphql_at(address, Some(&creator.access_token), create, input).await;
    let id = response["data"]["createIssue"]["issue"]["id"].as_str().expect("an issue id").to_owned();
    update(app, address, creator, json!({ "id": id, "title": "Printer on fire, again" })).await;
    update(app, address, creator, json!({ "id": id, "status": "CLOSED" })).await;
    let response =
        app.graphql_at(address, Some(&creator.access_token), DELETE, json!({ "input": { "id": id } })).await;
    assert!(response.get("errors").is_none(), "{response}");
    id
}

async fn kinds_of(client: &mut WsClient, count: usize) -> Vec<(String, Value)> {
    let mut events = Vec::new();
    for _ in 0..count {
        let event = client.next_event().await;
        events.push((event["kind"].as_str().unwrap().to_owned(), event));
    }
    events
}

#[tokio::test]
async fn the_assignee_sees_an_issue_s_life_in_order() {
    each_backend(async |app| {
        let (ada, bob) = (app.register("ada").await, app.register("bob").await);
        let mut bobs = WsClient::connect(app.address, &bob.access_token).await;
        bobs.subscribe("1", EVENTS, json!({ "filter": { "assignedToMe": true } })).await;
        app.subscribed(1).await;

        let id = life_of_an_issue(app, app.address, &ada, &bob).await;
        let events = kinds_of(&mut bobs, 5).await;
        let kinds: Vec<&str> = events.iter().map(|(kind, _)| kind.as_str()).collect();
        assert_eq!(kinds, ["CREATED", "ASSIGNED", "UPDATED", "CLOSED", "DELETED"]);
        for (_, event) in &events {
            assert_eq!(event["issueId"], id.as_str());
            assert_eq!(event["actor"]["username"], "ada");
        }
        assert_eq!(events[1].1["issue"]["assignedTo"]["username"], "bob");
        assert_eq!(events[2].1["issue"]["title"], "Printer on fire, again");
        assert_eq!(events[3].1["issue"]["status"], "CLOSED");
        assert_eq!(events[4].1["issue"], Value::Null, "a deleted issue is gone");
    })
    .await;
}

#[tokio::test]
async fn one_update_yields_its_kinds_in_the_documented_order() {
    each_backend(async |app| {
        let (ada, bob, cy) =
            (app.register("ada").await, app.register("bob").await, app.register("cyd").await);
        let mut adas = WsClient::connect(app.address, &ada.access_token).await;
        adas.subscribe("all", EVENTS, json!({})).await;
        app.subscribed(1).await;
        // Opened after subscribing: on PostgreSQL an event committed just before a
        // subscription may still be on its way to the listener, and arrive after it.
        let id = app.create_issue(&ada, "Flaky test", Some(&bob.id)).await;
        let opened: Vec<String> = kinds_of(&mut adas, 2).await.into_iter().map(|(kind, _)| kind).collect();
        assert_eq!(opened, ["CREATED", "ASSIGNED"]);

        let everything = json!({ "id": id, "title": "Flaky", "assignedTo": cy.id, "status": "CLOSED" });
        update(app, app.address, &ada, everything).await;
        update(app, app.address, &ada, json!({ "id": id, "assignedTo": null, "status": "OPEN" })).await;
        let kinds: Vec<String> = kinds_of(&mut adas, 5).await.into_iter().map(|(kind, _)| kind).collect();
        assert_eq!(kinds, ["UPDATED", "ASSIGNED", "CLOSED", "UNASSIGNED", "REOPENED"]);
    })
    .await;
}

#[tokio::test]
async fn filters_pick_the_events_a_subscriber_asked_for() {
    each_backend(async |app| {
        let (ada, bob, cy) =
            (app.register("ada").await, app.register("bob").await, app.register("cyd").await);
        let watched = app.create_issue(&ada, "Watched", None).await;
        let mut cys = WsClient::connect(app.address, &cy.access_token).await;
        cys.subscribe("mine", EVENTS, json!({ "filter": { "createdByMe": true } })).await;
        cys.subscribe("watched", EVENTS, json!({ "filter": { "issueId": watched } })).await;
        app.subscribed(2).await;

        // Neither of Cy's subscriptions wants this one...
        app.create_issue(&ada, "Not Cy's", Some(&bob.id)).await;
        // ...each wants one of these.
        update(app, app.address, &ada, json!({ "id": watched, "status": "IN_PROGRESS" })).await;
        let own = app.create_issue(&cy, "Cy's own", None).await;

        // Two subscriptions of one connection interleave in no set order.
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let message = cys.next().await.unwrap();
            let event = &message["payload"]["data"]["issueEvents"];
            let seen_now = (message["id"].clone(), event["kind"].clone(), event["issueId"].clone());
            // On PostgreSQL the watched issue's opening, committed just before the
            // subscription, may still be on its way and arrive after it.
            if seen_now != (json!("watched"), json!("CREATED"), json!(watched)) {
                seen.push(seen_now);
            }
        }
        seen.sort_by_key(|(id, _, _)| id.to_string());
        assert_eq!(
            seen,
            [
                (json!("mine"), json!("CREATED"), json!(own)),
                (json!("watched"), json!("UPDATED"), json!(watched))
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn a_missing_or_bad_token_closes_the_socket_with_4403() {
    each_backend(async |app| {
        for payload in [json!({}), json!({ "authorization": "Bearer not-a-token" }), json!(null)] {
            let mut client = WsClient::open(app.address, payload.clone()).await;
            assert_eq!(client.next().await, Err(4403), "connection_init with {payload}");
        }
        let ada = app.register("ada").await;
        let mut client =
            WsClient::open(app.address, json!({ "Authorization": format!("Bearer {}", ada.access_token) }))
                .await;
        assert_eq!(
            client.next().await.unwrap()["type"],
            "connection_ack",
            "the header's own spelling works too"
        );
    })
    .await;
}

#[tokio::test]
async fn an_expiring_token_ends_the_subscription() {
    let short_lived = |config: &mut triage::config::Config| config.access_token_ttl = Duration::from_secs(2);
    each_backend_with(short_lived, async |app| {
        let ada = app.register("ada").await;
        let mut client = WsClient::connect(app.address, &ada.access_token).await;
        client.subscribe("1", EVENTS, json!({})).await;
        let ended = client.next_payload().await.expect("an error before the end");
        assert_eq!(error_code(&ended), "UNAUTHENTICATED", "{ended}");
        assert_eq!(client.next_payload().await, Err(End::Completed));
        // A new subscription on the same connection is refused too.
        client.subscribe("2", EVENTS, json!({})).await;
        let refused = client.next_payload().await.expect("an error");
        assert_eq!(error_code(&refused), "UNAUTHENTICATED", "{refused}");
    })
    .await;
}

#[tokio::test]
async fn a_rolled_back_change_publishes_nothing() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        let db = Database::connect(app.config.database.database_url.expose()).await.unwrap();
        // A trigger that fails the insert of one title, after the issue row is written.
        let refuse = if app.config.database.is_sqlite() {
            vec![
                "CREATE TRIGGER refuse AFTER INSERT ON issues WHEN NEW.title = 'Doomed' \
                 BEGIN SELECT RAISE(ABORT, 'refused'); END",
            ]
        } else {
            vec![
                "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN \
                 IF NEW.title = 'Doomed' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER refuse AFTER INSERT ON issues FOR EACH ROW EXECUTE FUNCTION refuse()",
            ]
        };
        for statement in refuse {
            db.execute_unprepared(statement).await.unwrap();
        }
        let mut client = WsClient::connect(app.address, &ada.access_token).await;
        client.subscribe("1", EVENTS, json!({})).await;
        app.subscribed(1).await;

        let create = "mutation($input: CreateIssueInput!) { createIssue(input: $input) { issue { id } } }";
        let failed = app.graphql(Some(&ada.access_token), create, json!({ "input": { "title": "Doomed" } })).await;
        assert_eq!(error_code(&failed), "INTERNAL_SERVER_ERROR", "{failed}");
        let kept = app.create_issue(&ada, "Kept", None).await;

        let first = client.next_event().await;
        assert_eq!(first["issueId"], kept.as_str(), "the rolled-back issue had no event: {first}");
        let count = app.data(Some(&ada.access_token), "{ issues { totalCount } }", json!({})).await;
        assert_eq!(count["issues"]["totalCount"], 1, "and no row");
    })
    .await;
}

#[tokio::test]
async fn a_slow_subscriber_is_told_and_closed_without_holding_anyone_up() {
    let small_buffer = |config: &mut triage::config::Config| config.subscription_buffer = 4;
    each_backend_with(small_buffer, async |app| {
        let ada = app.register("ada").await;
        let mut slow = WsClient::connect(app.address, &ada.access_token).await;
        // Each event carries the description four times over (aliases): bytes to fill
        // the socket buffers, in few changes (each a mutation to commit).
        let big = "subscription { issueEvents { kind issue { a: description b: description c: description d: description } } }";
        slow.subscribe("slow", big, json!({})).await;
        let mut quick = WsClient::connect(app.address, &ada.access_token).await;
        quick.subscribe("quick", "subscription { issueEvents { kind } }", json!({})).await;
        app.subscribed(2).await;
        let id = app.create_issue(&ada, "Big", None).await;
        assert_eq!(quick.next_event().await["kind"], "CREATED");

        // 240 KiB an event, 18 MB in all: far more than the socket buffers hold while
        // `slow` reads nothing (here it falls behind after about 4 MB).
        const CHANGES: usize = 75;
        let description = "x".repeat(60 * 1024);
        for n in 0..CHANGES {
            let input = json!({ "id": id, "description": format!("{n} {description}") });
            update(app, app.address, &ada, input).await;
            // The quick subscriber keeps up, and sees every change.
            let event = quick.next_event().await;
            assert_eq!(event["kind"], "UPDATED");
        }

        let mut delivered = 0;
        let lagged = loop {
            let payload = slow.next_payload().await.expect("events, then the lag error");
            if payload.get("errors").is_some() {
                break payload;
            }
            delivered += 1;
        };
        assert_eq!(error_code(&lagged), "SUBSCRIPTION_LAGGED", "{lagged}");
        assert!(delivered < CHANGES, "it fell behind after {delivered} events");
        assert_eq!(slow.next_payload().await, Err(End::Completed));
    })
    .await;
}

#[tokio::test]
async fn events_cross_replicas() {
    each_backend_with(
        |_| {},
        async |app| {
            if app.config.database.is_sqlite() {
                return; // one process per SQLite file: there are no replicas to cross
            }
            let replica = app.start_replica().await;
            let (ada, bob) = (app.register("ada").await, app.register("bob").await);
            let mut bobs = WsClient::connect(app.address, &bob.access_token).await;
            bobs.subscribe("1", EVENTS, json!({ "filter": { "assignedToMe": true } })).await;
            app.subscribed(1).await;

            life_of_an_issue(app, replica, &ada, &bob).await;
            let kinds: Vec<String> = kinds_of(&mut bobs, 5).await.into_iter().map(|(kind, _)| kind).collect();
            assert_eq!(kinds, ["CREATED", "ASSIGNED", "UPDATED", "CLOSED", "DELETED"]);
        },
    )
    .await;
}
