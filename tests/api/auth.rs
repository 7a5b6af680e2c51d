use chrono::Utc;
use serde_json::{Value, json};
use triage::auth::TokenKeys;

use crate::helpers::{
    PASSWORD, TestApp, each_backend, each_backend_with, error_code, error_field, session_of,
};

const REGISTER: &str = "mutation($input: RegisterInput!) { register(input: $input) {
    accessToken tokenType expiresAt refreshToken user { id username email firstName lastName } } }";
const LOGIN: &str = "mutation($input: LoginInput!) { login(input: $input) {
    accessToken refreshToken tokenType user { id username } } }";
const REFRESH: &str = "mutation($input: RefreshTokenInput!) { refreshToken(input: $input) {
    accessToken refreshToken user { id } } }";
const ME: &str = "{ me { id username } }";

fn registration(username: &str, email: &str, password: &str) -> Value {
    json!({ "input": {
        "email": email, "username": username, "password": password,
        "firstName": "Ada", "lastName": "Lovelace",
    }})
}

async fn user_count(app: &TestApp) -> u64 {
    let admin = app.register("counter").await;
    let data = app.data(Some(&admin.access_token), "{ users { totalCount } }", json!({})).await;
    data["users"]["totalCount"].as_u64().unwrap() - 1
}

#[tokio::test]
async fn register_returns_a_working_session() {
    each_backend(async |app| {
        let data = app.data(None, REGISTER, registration("Ada_L", "Ada@Example.COM", PASSWORD)).await;
        let payload = &data["register"];
        assert_eq!(payload["tokenType"], "Bearer");
        assert_eq!(payload["user"]["username"], "Ada_L");
        assert_eq!(payload["user"]["email"], "ada@example.com", "emails are stored lower-case");
        assert_eq!(payload["user"]["firstName"], "Ada");
        let expires_at: chrono::DateTime<Utc> = payload["expiresAt"].as_str().unwrap().parse().unwrap();
        let ttl = expires_at - Utc::now();
        assert!(ttl > chrono::Duration::minutes(14) && ttl <= chrono::Duration::minutes(15), "{ttl}");

        let session = session_of(payload);
        let me = app.data(Some(&session.access_token), ME, json!({})).await;
        assert_eq!(me["me"]["id"], payload["user"]["id"]);
    })
    .await;
}

#[tokio::test]
async fn register_rejects_invalid_fields_and_stores_nothing() {
    each_backend(async |app| {
        let cases = [
            (registration("ab", "ab@example.com", PASSWORD), "username"),
            (registration("has space", "hs@example.com", PASSWORD), "username"),
            (registration(&"x".repeat(40), "x@example.com", PASSWORD), "username"),
            (registration("valid_name", "not-an-email", PASSWORD), "email"),
            (registration("valid_name", "valid@example.com", "short"), "password"),
            (registration("valid_name", "valid@example.com", &"p".repeat(1025)), "password"),
        ];
        for (variables, field) in cases {
            let response = app.graphql(None, REGISTER, variables).await;
            assert_eq!(error_code(&response), "BAD_USER_INPUT", "{response:#}");
            assert_eq!(error_field(&response), field, "{response:#}");
            assert!(response["data"].is_null());
        }
        assert_eq!(user_count(app).await, 0, "no failed registration left a user behind");
    })
    .await;
}

#[tokio::test]
async fn taken_usernames_and_emails_conflict_without_regard_to_case() {
    each_backend(async |app| {
        app.data(None, REGISTER, registration("grace", "grace@example.com", PASSWORD)).await;
        let same_name =
            app.graphql(None, REGISTER, registration("GRACE", "other@example.com", PASSWORD)).await;
        assert_eq!(error_code(&same_name), "CONFLICT");
        assert_eq!(error_field(&same_name), "username");
        let same_email =
            app.graphql(None, REGISTER, registration("hopper", "Grace@Example.com", PASSWORD)).await;
        assert_eq!(error_code(&same_email), "CONFLICT");
        assert_eq!(error_field(&same_email), "email");
        assert_eq!(user_count(app).await, 1);
    })
    .await;
}

#[tokio::test]
async fn login_accepts_the_username_in_any_case_or_the_email() {
    each_backend(async |app| {
        let registered = app.register("linus").await;
        for login in ["linus", "LINUS", "linus@example.com", "Linus@Example.com"] {
            let data =
                app.data(None, LOGIN, json!({ "input": { "username": login, "password": PASSWORD } })).await;
            assert_eq!(data["login"]["user"]["id"].as_str(), Some(registered.id.as_str()), "{login}");
            assert_eq!(data["login"]["tokenType"], "Bearer");
        }
    })
    .await;
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_error() {
    each_backend(async |app| {
        app.register("margaret").await;
        let wrong_password = app
            .graphql(
                None,
                LOGIN,
                json!({ "input": { "username": "margaret", "password": "wrong password" } }),
            )
            .await;
        let unknown_user = app
            .graphql(None, LOGIN, json!({ "input": { "username": "nobody", "password": PASSWORD } }))
            .await;
        assert_eq!(error_code(&wrong_password), "UNAUTHENTICATED");
        assert_eq!(wrong_password["errors"][0]["message"], unknown_user["errors"][0]["message"]);
        assert_eq!(wrong_password["errors"][0]["extensions"], unknown_user["errors"][0]["extensions"]);
    })
    .await;
}

#[tokio::test]
async fn refreshing_rotates_the_token_and_reuse_revokes_the_chain() {
    each_backend(async |app| {
        let first = app.register("barbara").await;
        let refresh = |token: &str| json!({ "input": { "refreshToken": token } });

        let second = app.data(None, REFRESH, refresh(&first.refresh_token)).await;
        let second = second["refreshToken"].clone();
        let second_token = second["refreshToken"].as_str().unwrap().to_owned();
        assert_ne!(second_token, first.refresh_token);
        let me = app.data(Some(second["accessToken"].as_str().unwrap()), ME, json!({})).await;
        assert_eq!(me["me"]["id"].as_str(), Some(first.id.as_str()));

        // The spent token no longer works, and presenting it revokes its successor too.
        let reuse = app.graphql(None, REFRESH, refresh(&first.refresh_token)).await;
        assert_eq!(error_code(&reuse), "UNAUTHENTICATED");
        let successor = app.graphql(None, REFRESH, refresh(&second_token)).await;
        assert_eq!(error_code(&successor), "UNAUTHENTICATED", "the whole chain is revoked");

        // A new login starts a new, unaffected chain.
        let login =
            app.data(None, LOGIN, json!({ "input": { "username": "barbara", "password": PASSWORD } })).await;
        let fresh = login["login"]["refreshToken"].as_str().unwrap();
        app.data(None, REFRESH, refresh(fresh)).await;
    })
    .await;
}

#[tokio::test]
async fn logout_ends_the_session() {
    each_backend(async |app| {
        let session = app.register("dennis").await;
        let logout = "mutation($input: LogoutInput!) { logout(input: $input) { success } }";
        let input = json!({ "input": { "refreshToken": session.refresh_token } });
        let data = app.data(None, logout, input.clone()).await;
        assert_eq!(data["logout"]["success"], true);
        let refresh = app.graphql(None, REFRESH, input).await;
        assert_eq!(error_code(&refresh), "UNAUTHENTICATED");
        let unknown = app.data(None, logout, json!({ "input": { "refreshToken": "no-such-token" } })).await;
        assert_eq!(unknown["logout"]["success"], false);
    })
    .await;
}

#[tokio::test]
async fn a_token_used_before_stops_working_when_it_expires() {
    each_backend_with(
        |config| config.access_token_ttl = std::time::Duration::from_secs(2),
        async |app: &mut TestApp| {
            let ada = app.register("ada").await;
            // Used twice: checked in full, then answered as already checked.
            for _ in 0..2 {
                let me = app.data(Some(&ada.access_token), ME, json!({})).await;
                assert_eq!(me["me"]["username"], "ada");
            }
            // The token lives at most two seconds (its `exp` has whole seconds).
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            let late = app.graphql(Some(&ada.access_token), ME, json!({})).await;
            assert_eq!(error_code(&late), "UNAUTHENTICATED", "{late:#}");
        },
    )
    .await;
}

#[tokio::test]
async fn missing_malformed_expired_tampered_and_foreign_tokens_are_unauthenticated() {
    each_backend(async |app| {
        let session = app.register("ken").await;
        let user_id = triage::entity::ids::UserId(session.id.parse().unwrap());
        let ours =
            TokenKeys::from_paserk(&app.token_key, "triage", std::time::Duration::from_secs(60)).unwrap();
        let expired = ours.issue(user_id, Utc::now() - chrono::Duration::minutes(5)).unwrap().token;
        let foreign_key = TokenKeys::generate_paserk().unwrap();
        let foreign = TokenKeys::from_paserk(&foreign_key, "triage", std::time::Duration::from_secs(60))
            .unwrap()
            .issue(user_id, Utc::now())
            .unwrap()
            .token;
        // The genuine token is used first, so that a tampered copy meets it remembered.
        let me = app.data(Some(&session.access_token), ME, json!({})).await;
        assert_eq!(me["me"]["username"], "ken");
        let mut tampered = session.access_token.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });

        let no_token = app.graphql(None, ME, json!({})).await;
        assert_eq!(error_code(&no_token), "UNAUTHENTICATED");
        for token in ["garbage", "v4.local.AAAA", expired.as_str(), foreign.as_str(), tampered.as_str()] {
            let response = app.graphql(Some(token), ME, json!({})).await;
            assert_eq!(error_code(&response), "UNAUTHENTICATED", "{token}: {response:#}");
        }
        // A non-Bearer scheme is no token either.
        let basic = app
            .client
            .post(app.url("/graphql"))
            .header("authorization", format!("Basic {}", session.access_token))
            .json(&json!({ "query": ME }))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        assert_eq!(error_code(&basic), "UNAUTHENTICATED");
        // And the real one still works.
        app.data(Some(&session.access_token), ME, json!({})).await;
    })
    .await;
}

#[tokio::test]
async fn repeated_failed_logins_are_rate_limited_per_account() {
    each_backend(async |app| {
        app.register("grace").await;
        app.register("alan").await;
        let login = |username: &str, password: &str| json!({ "input": { "username": username, "password": password } });
        // The test server allows 5 failures a minute.
        for _ in 0..5 {
            let response = app.graphql(None, LOGIN, login("grace", "wrong password")).await;
            assert_eq!(error_code(&response), "UNAUTHENTICATED");
        }
        let limited = app.graphql(None, LOGIN, login("GRACE", PASSWORD)).await;
        assert_eq!(error_code(&limited), "RATE_LIMITED", "even the right password waits: {limited}");
        app.data(None, LOGIN, login("alan", PASSWORD)).await;
    })
    .await;
}
