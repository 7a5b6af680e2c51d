use serde_json::json;

use crate::helpers::{PASSWORD, each_backend, error_code, error_field};

const UPDATE_ME: &str = "mutation($input: UpdateMeInput!) { updateMe(input: $input) {
    user { id username email firstName lastName } } }";

#[tokio::test]
async fn me_and_user_return_accounts_and_user_is_null_when_there_is_none() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        let bob = app.register("bob").await;
        let token = Some(ada.access_token.as_str());

        let me = app.data(token, "{ me { username email createdAt } }", json!({})).await;
        assert_eq!(me["me"]["username"], "ada");
        assert_eq!(me["me"]["email"], "ada@example.com");

        let query = "query($id: ID!) { user(id: $id) { id username } }";
        let found = app.data(token, query, json!({ "id": bob.id })).await;
        assert_eq!(found["user"]["username"], "bob");
        for missing in ["999999", "not-an-id", "-1"] {
            let none = app.data(token, query, json!({ "id": missing })).await;
            assert!(none["user"].is_null(), "{missing}");
        }
    })
    .await;
}

#[tokio::test]
async fn users_search_matches_username_name_or_email_without_regard_to_case() {
    each_backend(async |app| {
        let alice = app.register("alice").await;
        app.register("bob_builder").await;
        app.register("carol").await;
        let token = Some(alice.access_token.as_str());
        let query = "query($search: String) { users(search: $search) { totalCount nodes { username } } }";
        let names = |data: &serde_json::Value| -> Vec<String> {
            data["users"]["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["username"].as_str().unwrap().to_owned())
                .collect()
        };

        let all = app.data(token, query, json!({ "search": null })).await;
        assert_eq!(names(&all), ["alice", "bob_builder", "carol"], "oldest first");
        assert_eq!(all["users"]["totalCount"], 3);

        assert_eq!(names(&app.data(token, query, json!({ "search": "BUILD" })).await), ["bob_builder"]);
        assert_eq!(names(&app.data(token, query, json!({ "search": "carol@EXAMPLE" })).await), ["carol"]);
        // Every test user's last name is their username.
        assert_eq!(names(&app.data(token, query, json!({ "search": "Alic" })).await), ["alice"]);
        // LIKE wildcards are taken literally.
        assert!(names(&app.data(token, query, json!({ "search": "%" })).await).is_empty());
        assert_eq!(names(&app.data(token, query, json!({ "search": "a_i" })).await), Vec::<String>::new());
    })
    .await;
}

#[tokio::test]
async fn update_me_changes_only_the_fields_given() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        let token = Some(ada.access_token.as_str());
        let data = app
            .data(
                token,
                UPDATE_ME,
                json!({ "input": { "firstName": "Augusta", "email": "Countess@Example.com" } }),
            )
            .await;
        let user = &data["updateMe"]["user"];
        assert_eq!(user["firstName"], "Augusta");
        assert_eq!(user["email"], "countess@example.com");
        assert_eq!(user["username"], "ada");
        assert_eq!(user["lastName"], "ada");

        let login = "mutation($input: LoginInput!) { login(input: $input) { user { username } } }";
        let by_email = app
            .data(
                None,
                login,
                json!({ "input": { "username": "countess@example.com", "password": PASSWORD } }),
            )
            .await;
        assert_eq!(by_email["login"]["user"]["username"], "ada");
    })
    .await;
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        let token = Some(ada.access_token.as_str());
        let login = "mutation($input: LoginInput!) { login(input: $input) { user { username } } }";

        let missing =
            app.graphql(token, UPDATE_ME, json!({ "input": { "password": "a new password" } })).await;
        assert_eq!(error_code(&missing), "BAD_USER_INPUT");
        assert_eq!(error_field(&missing), "currentPassword");
        let wrong = app
            .graphql(
                token,
                UPDATE_ME,
                json!({ "input": { "password": "a new password", "currentPassword": "nope nope" } }),
            )
            .await;
        assert_eq!(error_code(&wrong), "BAD_USER_INPUT");
        assert_eq!(error_field(&wrong), "currentPassword");
        let short = app
            .graphql(
                token,
                UPDATE_ME,
                json!({ "input": { "password": "short", "currentPassword": PASSWORD } }),
            )
            .await;
        assert_eq!(error_field(&short), "password");
        // None of those changed anything.
        app.data(None, login, json!({ "input": { "username": "ada", "password": PASSWORD } })).await;

        app.data(
            token,
            UPDATE_ME,
            json!({ "input": { "password": "a new password", "currentPassword": PASSWORD } }),
        )
        .await;
        let refresh = "mutation($input: RefreshTokenInput!) { refreshToken(input: $input) { accessToken } }";
        let stale =
            app.graphql(None, refresh, json!({ "input": { "refreshToken": ada.refresh_token } })).await;
        assert_eq!(error_code(&stale), "UNAUTHENTICATED", "a new password ends the old sessions");
        let old =
            app.graphql(None, login, json!({ "input": { "username": "ada", "password": PASSWORD } })).await;
        assert_eq!(error_code(&old), "UNAUTHENTICATED");
        app.data(None, login, json!({ "input": { "username": "ada", "password": "a new password" } })).await;
    })
    .await;
}

#[tokio::test]
async fn update_me_conflicts_on_a_taken_username_and_keeps_the_old_one() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        app.register("bob").await;
        let token = Some(ada.access_token.as_str());
        let taken =
            app.graphql(token, UPDATE_ME, json!({ "input": { "username": "BOB", "firstName": "X" } })).await;
        assert_eq!(error_code(&taken), "CONFLICT");
        assert_eq!(error_field(&taken), "username");
        let me = app.data(token, "{ me { username firstName } }", json!({})).await;
        assert_eq!(me["me"]["username"], "ada");
        assert_eq!(me["me"]["firstName"], "Test", "a failed update changes nothing");
    })
    .await;
}

#[tokio::test]
async fn no_response_ever_carries_a_password_hash() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        let token = Some(ada.access_token.as_str());
        app.create_issue(&ada, "An issue", Some(&ada.id)).await;
        let everything = "{ me { id username email firstName lastName createdAt
              assignedIssues { nodes { createdBy { username email } assignedTo { username } } } }
            users { nodes { id username email firstName lastName createdAt } } }";
        let response = app.graphql(token, everything, json!({})).await;
        let login = app
            .graphql(
                None,
                "mutation($input: LoginInput!) { login(input: $input) { user { id username email } } }",
                json!({ "input": { "username": "ada", "password": PASSWORD } }),
            )
            .await;
        for body in [response.to_string(), login.to_string()] {
            assert!(!body.contains("$argon2"), "{body}");
            assert!(!body.contains(PASSWORD), "{body}");
        }
        let sdl = triage::graphql::sdl().to_lowercase();
        let user_type = sdl.split("type user {").nth(1).and_then(|rest| rest.split('}').next()).unwrap();
        assert!(!user_type.contains("password") && !user_type.contains("hash"), "{user_type}");
    })
    .await;
}
