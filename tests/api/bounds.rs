//! Input bounds: every string input is bounded, a NUL byte is `BAD_USER_INPUT` with
//! its field, display text cannot hide or reorder itself, and an id has one spelling.

use serde_json::{Value, json};

use crate::helpers::{Session, TestApp, each_backend, error_code, error_field};

const CREATE: &str = "mutation($input: CreateIssueInput!) { createIssue(input: $input) { issue { id } } }";
const UPDATE: &str = "mutation($input: UpdateIssueInput!) { updateIssue(input: $input) { issue { id } } }";
const ISSUES: &str = "query($filter: IssueFilter, $after: String) {
    issues(filter: $filter, after: $after) { totalCount } }";
const LOGIN: &str = "mutation($input: LoginInput!) { login(input: $input) { user { id } } }";

fn assert_bad_input(response: &Value, field: &str) {
    assert_eq!(error_code(response), "BAD_USER_INPUT", "{response:#}");
    assert_eq!(error_field(response), field, "{response:#}");
}

async fn create(app: &TestApp, session: &Session, input: Value) -> Value {
    app.graphql(Some(&session.access_token), CREATE, json!({ "input": input })).await
}

#[tokio::test]
async fn a_nul_byte_in_any_string_input_is_bad_input_naming_the_field() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        let token = Some(ada.access_token.as_str());
        assert_bad_input(&create(app, &ada, json!({ "title": "Crash\u{0}" })).await, "title");
        assert_bad_input(
            &create(app, &ada, json!({ "title": "Crash", "description": "on \u{0} save" })).await,
            "description",
        );
        let search = app.graphql(token, ISSUES, json!({ "filter": { "search": "cr\u{0}" } })).await;
        assert_bad_input(&search, "search");
        let users = app.graphql(token, "query($s: String) { users(search: $s) { totalCount } }", json!({ "s": "\u{0}" })).await;
        assert_bad_input(&users, "search");
        let login = |username: &str, password: &str| json!({ "input": { "username": username, "password": password } });
        assert_bad_input(&app.graphql(None, LOGIN, login("ada\u{0}", "whatever it is")).await, "username");
        assert_bad_input(&app.graphql(None, LOGIN, login("ada", "correct\u{0}horse")).await, "password");
        let refresh = "mutation($input: RefreshTokenInput!) { refreshToken(input: $input) { accessToken } }";
        let nul_token = app.graphql(None, refresh, json!({ "input": { "refreshToken": "abc\u{0}" } })).await;
        assert_bad_input(&nul_token, "refreshToken");
        let register = "mutation($input: RegisterInput!) { register(input: $input) { accessToken } }";
        let named = app
            .graphql(
                None,
                register,
                json!({ "input": {
                    "email": "bob@example.com", "username": "bob", "password": "long enough password",
                    "firstName": "Bob\u{0}", "lastName": "Builder",
                }}),
            )
            .await;
        assert_bad_input(&named, "firstName");
        // The server is still fine, and stored nothing.
        let total = app.data(token, ISSUES, json!({})).await;
        assert_eq!(total["issues"]["totalCount"], 0);
    })
    .await;
}

#[tokio::test]
async fn titles_refuse_bidi_overrides_and_invisible_text() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        for title in [
            "Fix \u{202E}evas\u{202C} bug",
            "Isolate \u{2066}this\u{2069}",
            "\u{200B}\u{200D}",
            "\u{FEFF}",
            " \u{2060} ",
        ] {
            assert_bad_input(&create(app, &ada, json!({ "title": title })).await, "title");
        }
        let issue = app.create_issue(&ada, "Visible", None).await;
        let update = app
            .graphql(
                Some(&ada.access_token),
                UPDATE,
                json!({ "input": { "id": issue, "title": "\u{200C}" } }),
            )
            .await;
        assert_bad_input(&update, "title");
        let name = app
            .graphql(
                Some(&ada.access_token),
                "mutation($input: UpdateMeInput!) { updateMe(input: $input) { user { id } } }",
                json!({ "input": { "lastName": "Love\u{202E}lace" } }),
            )
            .await;
        assert_bad_input(&name, "lastName");
    })
    .await;
}

#[tokio::test]
async fn searches_lists_logins_tokens_and_cursors_are_bounded() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        let token = Some(ada.access_token.as_str());
        let longest = app.graphql(token, ISSUES, json!({ "filter": { "search": "x".repeat(256) } })).await;
        assert!(longest.get("errors").is_none(), "{longest:#}");
        let too_long = app.graphql(token, ISSUES, json!({ "filter": { "search": "x".repeat(257) } })).await;
        assert_bad_input(&too_long, "search");

        let statuses = vec!["OPEN"; 11];
        let listed = app.graphql(token, ISSUES, json!({ "filter": { "status": statuses } })).await;
        assert_bad_input(&listed, "status");
        let assigned = app
            .graphql(
                token,
                "query($s: [IssueStatus!]) { me { assignedIssues(status: $s) { totalCount } } }",
                json!({ "s": vec!["CLOSED"; 11] }),
            )
            .await;
        assert_bad_input(&assigned, "status");

        let cursor = app.graphql(token, ISSUES, json!({ "after": "A".repeat(1000) })).await;
        assert_bad_input(&cursor, "after");

        let login = json!({ "input": { "username": "a".repeat(321), "password": "whatever it is" } });
        assert_bad_input(&app.graphql(None, LOGIN, login).await, "username");
        let login = json!({ "input": { "username": "ada", "password": "p".repeat(1025) } });
        assert_bad_input(&app.graphql(None, LOGIN, login).await, "password");
        let logout = "mutation($input: LogoutInput!) { logout(input: $input) { success } }";
        let long_token =
            app.graphql(None, logout, json!({ "input": { "refreshToken": "t".repeat(44) } })).await;
        assert_bad_input(&long_token, "refreshToken");
    })
    .await;
}

#[tokio::test]
async fn an_id_has_one_canonical_spelling() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        let token = Some(ada.access_token.as_str());
        let issue = app.create_issue(&ada, "One", None).await;
        assert_eq!(issue, "1");
        let found = app.data(token, "query($id: ID!) { issue(id: $id) { id } }", json!({ "id": "1" })).await;
        assert_eq!(found["issue"]["id"], "1");
        for other in ["01", "+1", " 1", "1.0", "1 ", "1\u{0}"] {
            let issue =
                app.data(token, "query($id: ID!) { issue(id: $id) { id } }", json!({ "id": other })).await;
            assert!(issue["issue"].is_null(), "{other:?} names nothing: {issue:#}");
            let user =
                app.data(token, "query($id: ID!) { user(id: $id) { id } }", json!({ "id": other })).await;
            assert!(user["user"].is_null(), "{other:?} names nobody: {user:#}");
            let update =
                app.graphql(token, UPDATE, json!({ "input": { "id": other, "title": "Two" } })).await;
            assert_eq!(error_code(&update), "NOT_FOUND", "{other:?}: {update:#}");
            let assign = create(app, &ada, json!({ "title": "Two", "assignedTo": other })).await;
            assert_bad_input(&assign, "assignedTo");
        }
        // A filter naming nobody, malformed or unknown, matches nothing; an unknown
        // object named by a mutation or an input is NOT_FOUND or BAD_USER_INPUT, as a
        // malformed one is.
        let mine = app.create_issue(&ada, "Mine", Some(&ada.id)).await;
        for nobody in ["01", "999"] {
            let list = app
                .data(
                    token,
                    "query($id: ID!) { issues(filter: { assignedTo: $id }) { totalCount }                      all: issues(filter: { createdBy: $id }) { totalCount } }",
                    json!({ "id": nobody }),
                )
                .await;
            assert_eq!((list["issues"]["totalCount"].as_i64(), list["all"]["totalCount"].as_i64()), (Some(0), Some(0)));
        }
        let listed = app
            .data(token, "query($id: ID!) { issues(filter: { assignedTo: $id }) { totalCount } }", json!({ "id": ada.id }))
            .await;
        assert_eq!(listed["issues"]["totalCount"], 1, "{mine}");
        let update = app.graphql(token, UPDATE, json!({ "input": { "id": "999", "title": "Two" } })).await;
        assert_eq!(error_code(&update), "NOT_FOUND", "{update:#}");
        assert_bad_input(&create(app, &ada, json!({ "title": "Two", "assignedTo": "999" })).await, "assignedTo");
    })
    .await;
}
