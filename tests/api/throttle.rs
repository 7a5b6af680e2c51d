//! Login throttling: counted in the database per account and per (account, client
//! address), before any password is hashed.

use std::net::{IpAddr, SocketAddr};

use futures_util::future::join_all;
use serde_json::{Value, json};
use triage::jobs::run_login_purge;

use crate::helpers::{PASSWORD, TestApp, each_backend, each_backend_with, error_code, error_field};

const LOGIN: &str = "mutation($input: LoginInput!) { login(input: $input) { user { id } } }";
const UPDATE_ME: &str = "mutation($input: UpdateMeInput!) { updateMe(input: $input) { user { id } } }";

/// A client whose requests come from `ip` (any 127.x.y.z reaches the loopback server).
fn client_from(ip: &str) -> reqwest::Client {
    let ip: IpAddr = ip.parse().unwrap();
    reqwest::Client::builder().local_address(ip).build().unwrap()
}

async fn login_with(client: &reqwest::Client, address: SocketAddr, username: &str, password: &str) -> Value {
    client
        .post(format!("http://{address}/graphql"))
        .json(&json!({
            "query": LOGIN,
            "variables": { "input": { "username": username, "password": password } },
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn login(app: &TestApp, username: &str, password: &str) -> Value {
    login_with(&app.client, app.address, username, password).await
}

/// The `retryAfter` of a `RATE_LIMITED` answer, which must be a positive integer.
fn retry_after(response: &Value) -> u64 {
    assert_eq!(error_code(response), "RATE_LIMITED", "{response:#}");
    let seconds = response["errors"][0]["extensions"]["retryAfter"]
        .as_u64()
        .unwrap_or_else(|| panic!("no integer retryAfter in {response:#}"));
    assert!(seconds >= 1, "{response:#}");
    seconds
}

fn limits(per_client: u32, per_account: u32) -> impl Fn(&mut triage::config::Config) {
    move |config| {
        config.login_max_failures = per_client;
        config.login_max_account_failures = per_account;
    }
}

#[tokio::test]
async fn a_hundred_concurrent_wrong_passwords_reach_the_hasher_at_most_ten_times() {
    each_backend_with(limits(10, 100), async |app: &mut TestApp| {
        app.register("grace").await;
        let attempts = (0..100).map(|_| login(app, "grace", "wrong password"));
        let responses = join_all(attempts).await;
        let hashed = responses.iter().filter(|r| error_code(r) == "UNAUTHENTICATED").count();
        let limited: Vec<&Value> = responses.iter().filter(|r| error_code(r) == "RATE_LIMITED").collect();
        assert!((1..=10).contains(&hashed), "{hashed} attempts reached the hasher");
        assert_eq!(hashed + limited.len(), 100, "every other attempt was refused: {responses:#?}");
        for response in limited {
            assert!(retry_after(response) <= 60, "within the test's 60 s window: {response:#}");
        }
    })
    .await;
}

#[tokio::test]
async fn the_username_and_the_email_count_as_one_account() {
    each_backend(async |app| {
        app.register("grace").await;
        // The test server allows 5 attempts per account and address.
        for name in ["grace", "GRACE", " grace@example.com", "Grace@Example.com", "grace"] {
            let response = login(app, name, "wrong password").await;
            assert_eq!(error_code(&response), "UNAUTHENTICATED", "{name}: {response:#}");
        }
        retry_after(&login(app, "grace@example.com", PASSWORD).await);
    })
    .await;
}

#[tokio::test]
async fn unknown_names_are_counted_too() {
    each_backend(async |app| {
        for _ in 0..5 {
            assert_eq!(error_code(&login(app, "Nobody", "wrong password").await), "UNAUTHENTICATED");
        }
        retry_after(&login(app, " nobody ", "wrong password").await);
    })
    .await;
}

#[tokio::test]
async fn a_correct_login_below_the_limit_clears_the_count() {
    each_backend(async |app| {
        app.register("grace").await;
        for _ in 0..4 {
            assert_eq!(error_code(&login(app, "grace", "wrong password").await), "UNAUTHENTICATED");
        }
        let ok = login(app, "grace", PASSWORD).await;
        assert!(ok.get("errors").is_none(), "{ok:#}");
        // Without the reset the fifth of these would be the ninth attempt.
        for _ in 0..5 {
            assert_eq!(error_code(&login(app, "grace", "wrong password").await), "UNAUTHENTICATED");
        }
        retry_after(&login(app, "grace", PASSWORD).await);
    })
    .await;
}

#[tokio::test]
async fn the_owner_logging_in_from_another_address_is_not_locked_out() {
    each_backend(async |app| {
        app.register("grace").await;
        let attacker = client_from("127.0.0.1");
        for _ in 0..5 {
            let response = login_with(&attacker, app.address, "grace", "wrong password").await;
            assert_eq!(error_code(&response), "UNAUTHENTICATED");
        }
        retry_after(&login_with(&attacker, app.address, "grace", PASSWORD).await);

        let owner = client_from("127.0.0.2");
        let response = login_with(&owner, app.address, "grace", PASSWORD).await;
        assert!(response.get("errors").is_none(), "the owner gets in: {response:#}");
    })
    .await;
}

#[tokio::test]
async fn the_account_limit_holds_across_addresses_and_counts_no_refused_attempt() {
    each_backend_with(limits(3, 5), async |app: &mut TestApp| {
        app.register("grace").await;
        let first = client_from("127.0.0.1");
        for _ in 0..3 {
            let response = login_with(&first, app.address, "grace", "wrong password").await;
            assert_eq!(error_code(&response), "UNAUTHENTICATED");
        }
        // Refused by the address's limit: these must not use up the account's.
        for _ in 0..10 {
            retry_after(&login_with(&first, app.address, "grace", "wrong password").await);
        }
        let second = client_from("127.0.0.2");
        for _ in 0..2 {
            let response = login_with(&second, app.address, "grace", "wrong password").await;
            assert_eq!(error_code(&response), "UNAUTHENTICATED", "{response:#}");
        }
        // Five attempts on the account in all: even a third address waits now.
        let third = client_from("127.0.0.3");
        retry_after(&login_with(&third, app.address, "grace", PASSWORD).await);
    })
    .await;
}

#[tokio::test]
async fn wrong_current_passwords_in_update_me_are_throttled_like_logins() {
    each_backend(async |app| {
        let grace = app.register("grace").await;
        let change = |current: &str| {
            json!({ "input": { "password": "a brand new password", "currentPassword": current } })
        };
        for _ in 0..5 {
            let response = app.graphql(Some(&grace.access_token), UPDATE_ME, change("wrong password")).await;
            assert_eq!(error_code(&response), "BAD_USER_INPUT", "{response:#}");
            assert_eq!(error_field(&response), "currentPassword");
        }
        retry_after(&app.graphql(Some(&grace.access_token), UPDATE_ME, change(PASSWORD)).await);
        retry_after(&login(app, "grace", PASSWORD).await);
    })
    .await;
}

#[tokio::test]
async fn the_purge_deletes_only_counters_whose_window_is_over() {
    each_backend(async |app| {
        app.register("grace").await;
        for _ in 0..3 {
            assert_eq!(error_code(&login(app, "grace", "wrong password").await), "UNAUTHENTICATED");
        }
        let db = triage::startup::connect(&app.config.database, None).await.unwrap();
        let window = app.config.login_window;
        let now = triage::domain::now();
        assert_eq!(run_login_purge(&db, window, now).await.unwrap(), 0, "the window is still running");
        let over = now + window + std::time::Duration::from_millis(1);
        assert_eq!(run_login_purge(&db, window, over).await.unwrap(), 2, "the address's and the account's");
        db.close().await.unwrap();
        // Nothing is counted any more.
        for _ in 0..5 {
            assert_eq!(error_code(&login(app, "grace", "wrong password").await), "UNAUTHENTICATED");
        }
    })
    .await;
}

/// With one hashing thread and a short queue timeout, a burst of logins is partly
/// shed: the shed ones are answered at once with `RATE_LIMITED` and `retryAfter`,
/// are not counted as attempts on the account, and nothing fails otherwise.
#[tokio::test]
async fn logins_that_cannot_start_hashing_in_time_are_shed_at_once_and_not_counted() {
    let configure = |config: &mut triage::config::Config| {
        config.max_concurrent_hashes = Some(1);
        config.login_queue_timeout = std::time::Duration::from_millis(1);
        config.login_max_failures = 4;
    };
    each_backend_with(configure, async |app: &mut TestApp| {
        app.register("grace").await;
        let app = &*app;
        let responses = until_not_all_shed(async || {
            join_all((0..8).map(|_| login(app, "grace", "wrong password"))).await
        })
        .await;
        let shed: Vec<&Value> = responses
            .iter()
            .filter(|r| r.get("errors").is_some() && error_code(r) == "RATE_LIMITED")
            .collect();
        let wrong = responses
            .iter()
            .filter(|r| r.get("errors").is_some() && error_code(r) == "UNAUTHENTICATED")
            .count();
        assert!(!shed.is_empty(), "one thread cannot start eight hashes within 1 ms");
        assert!(wrong >= 1, "the first one gets the thread: {responses:#?}");
        assert_eq!(shed.len() + wrong, responses.len(), "{responses:#?}");
        for response in shed {
            assert_eq!(retry_after(response), 1);
        }
        // Only the attempts that were hashed count: under the limit of four, the owner
        // still gets in, once the thread is free (it may rest after the burst).
        if wrong < 4 {
            let owner = until_not_all_shed(async || vec![login(app, "grace", PASSWORD).await]).await;
            assert!(owner[0].get("errors").is_none(), "{wrong} counted attempts: {owner:#?}");
        }
    })
    .await;
}

/// The logins `send` makes, sent again a little later while every one is shed: the
/// hashing thread keeps its turn while it rests after a hash (up to 200 ms; longer
/// the busier the machine), and a queue timeout of 1 ms does not wait for it.
async fn until_not_all_shed(mut send: impl AsyncFnMut() -> Vec<Value>) -> Vec<Value> {
    let mut responses = send().await;
    for _ in 0..100 {
        if responses.iter().any(|r| r["errors"][0]["extensions"]["code"] != "RATE_LIMITED") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        responses = send().await;
    }
    responses
}
