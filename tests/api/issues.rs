use serde_json::{Value, json};

use crate::helpers::{TestApp, each_backend, error_code, error_field};

const ISSUE_FIELDS: &str = "id title description status createdAt updatedAt closedAt
    createdBy { id username } assignedTo { id username }";

fn create_query() -> String {
    format!(
        "mutation($input: CreateIssueInput!) {{ createIssue(input: $input) {{ issue {{ {ISSUE_FIELDS} }} }} }}"
    )
}

fn update_query() -> String {
    format!(
        "mutation($input: UpdateIssueInput!) {{ updateIssue(input: $input) {{ issue {{ {ISSUE_FIELDS} }} }} }}"
    )
}

const DELETE: &str = "mutation($input: DeleteIssueInput!) { deleteIssue(input: $input) { deletedIssueId } }";

async fn fetch_issue(app: &TestApp, token: &str, id: &str) -> Value {
    let query = format!("query($id: ID!) {{ issue(id: $id) {{ {ISSUE_FIELDS} }} }}");
    app.data(Some(token), &query, json!({ "id": id })).await["issue"].clone()
}

async fn issue_count(app: &TestApp, token: &str) -> u64 {
    app.data(Some(token), "{ issues { totalCount } }", json!({})).await["issues"]["totalCount"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn create_issue_records_the_caller_as_creator_and_defaults_to_open() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        let bob = app.register("bob").await;
        let data = app
            .data(
                Some(&ada.access_token),
                &create_query(),
                json!({ "input": { "title": "  Login page is slow ", "description": "Takes 3s", "assignedTo": bob.id } }),
            )
            .await;
        let issue = &data["createIssue"]["issue"];
        assert_eq!(issue["title"], "Login page is slow", "surrounding spaces are dropped");
        assert_eq!(issue["description"], "Takes 3s");
        assert_eq!(issue["status"], "OPEN");
        assert_eq!(issue["createdBy"]["username"], "ada");
        assert_eq!(issue["assignedTo"]["username"], "bob");
        assert!(issue["closedAt"].is_null());
        assert_eq!(issue["createdAt"], issue["updatedAt"]);

        let fetched = fetch_issue(app, &bob.access_token, issue["id"].as_str().unwrap()).await;
        assert_eq!(&fetched, issue);

        let closed = app
            .data(Some(&ada.access_token), &create_query(), json!({ "input": { "title": "Done already", "status": "CLOSED" } }))
            .await;
        let closed = &closed["createIssue"]["issue"];
        assert!(closed["assignedTo"].is_null());
        assert_eq!(closed["description"], "");
        assert_eq!(closed["closedAt"], closed["createdAt"], "an issue created closed was closed when created");
    })
    .await;
}

#[tokio::test]
async fn update_issue_changes_only_the_fields_given() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        let bob = app.register("bob").await;
        let token = Some(ada.access_token.as_str());
        let id = app.create_issue(&ada, "Original", Some(&bob.id)).await;
        let before = fetch_issue(app, &ada.access_token, &id).await;

        let data =
            app.data(token, &update_query(), json!({ "input": { "id": id, "title": "Renamed" } })).await;
        let after = &data["updateIssue"]["issue"];
        assert_eq!(after["title"], "Renamed");
        assert_eq!(after["description"], before["description"]);
        assert_eq!(after["status"], "OPEN");
        assert_eq!(after["assignedTo"]["username"], "bob", "an absent assignedTo leaves the assignee");
        assert_ne!(after["updatedAt"], before["updatedAt"]);
        assert_eq!(after["createdAt"], before["createdAt"]);

        let data =
            app.data(token, &update_query(), json!({ "input": { "id": id, "assignedTo": null } })).await;
        assert!(data["updateIssue"]["issue"]["assignedTo"].is_null(), "assignedTo: null unassigns");
        assert_eq!(data["updateIssue"]["issue"]["title"], "Renamed");

        let data =
            app.data(token, &update_query(), json!({ "input": { "id": id, "assignedTo": ada.id } })).await;
        assert_eq!(data["updateIssue"]["issue"]["assignedTo"]["username"], "ada");
    })
    .await;
}

#[tokio::test]
async fn closing_sets_closed_at_and_reopening_clears_it() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        let token = Some(ada.access_token.as_str());
        let id = app.create_issue(&ada, "Flaky test", None).await;
        let set_status = async |status: &str| {
            let data =
                app.data(token, &update_query(), json!({ "input": { "id": id, "status": status } })).await;
            data["updateIssue"]["issue"].clone()
        };

        let in_progress = set_status("IN_PROGRESS").await;
        assert_eq!(in_progress["status"], "IN_PROGRESS");
        assert!(in_progress["closedAt"].is_null());

        let closed = set_status("CLOSED").await;
        assert_eq!(closed["status"], "CLOSED");
        assert_eq!(closed["closedAt"], closed["updatedAt"]);

        let still_closed =
            app.data(token, &update_query(), json!({ "input": { "id": id, "title": "Flaky" } })).await;
        assert_eq!(
            still_closed["updateIssue"]["issue"]["closedAt"], closed["closedAt"],
            "editing keeps closedAt"
        );

        let reopened = set_status("OPEN").await;
        assert!(reopened["closedAt"].is_null());
    })
    .await;
}

#[tokio::test]
async fn delete_issue_removes_it() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        let id = app.create_issue(&ada, "Remove me", None).await;
        let data = app.data(Some(&ada.access_token), DELETE, json!({ "input": { "id": id } })).await;
        assert_eq!(data["deleteIssue"]["deletedIssueId"].as_str(), Some(id.as_str()));
        assert!(fetch_issue(app, &ada.access_token, &id).await.is_null());
        let again = app.graphql(Some(&ada.access_token), DELETE, json!({ "input": { "id": id } })).await;
        assert_eq!(error_code(&again), "NOT_FOUND");
    })
    .await;
}

#[tokio::test]
async fn non_creator_cannot_update_or_delete_an_issue() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        let mallory = app.register("mallory").await;
        let id = app.create_issue(&ada, "Ada's issue", Some(&mallory.id)).await;
        let before = fetch_issue(app, &ada.access_token, &id).await;
        let token = Some(mallory.access_token.as_str());

        let update = app
            .graphql(
                token,
                &update_query(),
                json!({ "input": { "id": id, "title": "Mine now", "status": "CLOSED" } }),
            )
            .await;
        assert_eq!(error_code(&update), "FORBIDDEN", "even the assignee may not edit");
        let delete = app.graphql(token, DELETE, json!({ "input": { "id": id } })).await;
        assert_eq!(error_code(&delete), "FORBIDDEN");

        assert_eq!(fetch_issue(app, &ada.access_token, &id).await, before, "the issue is unchanged");
    })
    .await;
}

#[tokio::test]
async fn mutations_on_missing_issues_are_not_found() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        let token = Some(ada.access_token.as_str());
        for id in ["424242", "not-an-id"] {
            let update =
                app.graphql(token, &update_query(), json!({ "input": { "id": id, "title": "x" } })).await;
            assert_eq!(error_code(&update), "NOT_FOUND", "{id}");
            let delete = app.graphql(token, DELETE, json!({ "input": { "id": id } })).await;
            assert_eq!(error_code(&delete), "NOT_FOUND", "{id}");
        }
        let none = app.data(token, "{ issue(id: \"424242\") { id } }", json!({})).await;
        assert!(none["issue"].is_null());
    })
    .await;
}

#[tokio::test]
async fn invalid_issue_input_is_rejected_and_nothing_is_stored() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        let token = Some(ada.access_token.as_str());
        let cases = [
            (json!({ "title": "   " }), "title"),
            (json!({ "title": "" }), "title"),
            (json!({ "title": "t".repeat(257) }), "title"),
            (json!({ "title": "ok", "description": "d".repeat(64 * 1024 + 1) }), "description"),
            (json!({ "title": "ok", "assignedTo": "987654" }), "assignedTo"),
            (json!({ "title": "ok", "assignedTo": "nobody" }), "assignedTo"),
        ];
        for (input, field) in cases {
            let response = app.graphql(token, &create_query(), json!({ "input": input })).await;
            assert_eq!(error_code(&response), "BAD_USER_INPUT", "{response:#}");
            assert_eq!(error_field(&response), field);
        }
        assert_eq!(issue_count(app, &ada.access_token).await, 0);

        let id = app.create_issue(&ada, "Valid", None).await;
        let before = fetch_issue(app, &ada.access_token, &id).await;
        let response = app
            .graphql(
                token,
                &update_query(),
                json!({ "input": { "id": id, "status": "CLOSED", "assignedTo": "987654" } }),
            )
            .await;
        assert_eq!(error_field(&response), "assignedTo");
        assert_eq!(fetch_issue(app, &ada.access_token, &id).await, before, "a failed update changes nothing");

        let bad_enum =
            app.graphql(token, &create_query(), json!({ "input": { "title": "x", "status": "DONE" } })).await;
        assert_eq!(error_code(&bad_enum), "BAD_USER_INPUT");
    })
    .await;
}

#[tokio::test]
async fn every_issue_field_needs_a_token() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        let id = app.create_issue(&ada, "Secret", None).await;
        for query in [
            "{ issues { totalCount } }".to_owned(),
            format!("{{ issue(id: \"{id}\") {{ title }} }}"),
            "{ users { totalCount } }".to_owned(),
            format!("{{ user(id: \"{}\") {{ username }} }}", ada.id),
            format!("mutation {{ deleteIssue(input: {{ id: \"{id}\" }}) {{ deletedIssueId }} }}"),
            "mutation { createIssue(input: { title: \"x\" }) { issue { id } } }".to_owned(),
            format!(
                "mutation {{ updateIssue(input: {{ id: \"{id}\", title: \"x\" }}) {{ issue {{ id }} }} }}"
            ),
            "mutation { updateMe(input: { firstName: \"x\" }) { user { id } } }".to_owned(),
        ] {
            let response = app.graphql(None, &query, json!({})).await;
            assert_eq!(error_code(&response), "UNAUTHENTICATED", "{query}");
        }
        assert_eq!(issue_count(app, &ada.access_token).await, 1);
    })
    .await;
}

#[tokio::test]
async fn issues_can_be_filtered_by_status_people_and_text() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        let bob = app.register("bob").await;
        let token = Some(ada.access_token.as_str());
        let login_bug = app.create_issue(&ada, "Login bug", Some(&bob.id)).await;
        let docs = app.create_issue(&ada, "Write docs", None).await;
        let bobs = app.create_issue(&bob, "Bob's cleanup", Some(&ada.id)).await;
        app.data(
            token,
            &update_query(),
            json!({ "input": { "id": docs, "status": "CLOSED",
            "description": "Explain the LOGIN flow" } }),
        )
        .await;

        let ids = async |filter: Value| -> Vec<String> {
            let data = app
                .data(
                    token,
                    "query($f: IssueFilter) { issues(filter: $f) { totalCount nodes { id } } }",
                    json!({ "f": filter }),
                )
                .await;
            let nodes = data["issues"]["nodes"].as_array().unwrap();
            assert_eq!(data["issues"]["totalCount"].as_u64().unwrap() as usize, nodes.len());
            nodes.iter().map(|n| n["id"].as_str().unwrap().to_owned()).collect::<Vec<String>>()
        };
        assert_eq!(
            ids(json!(null)).await,
            [bobs.as_str(), docs.as_str(), login_bug.as_str()],
            "newest first"
        );
        assert_eq!(ids(json!({ "status": ["CLOSED"] })).await, [docs.as_str()]);
        assert_eq!(
            ids(json!({ "status": ["OPEN", "IN_PROGRESS"] })).await,
            [bobs.as_str(), login_bug.as_str()]
        );
        assert_eq!(ids(json!({ "assignedTo": bob.id })).await, [login_bug.as_str()]);
        assert_eq!(ids(json!({ "createdBy": bob.id })).await, [bobs.as_str()]);
        assert_eq!(ids(json!({ "unassigned": true })).await, [docs.as_str()]);
        assert_eq!(ids(json!({ "unassigned": false })).await, [bobs.as_str(), login_bug.as_str()]);
        assert_eq!(
            ids(json!({ "search": "login" })).await,
            [docs.as_str(), login_bug.as_str()],
            "title or description"
        );
        assert_eq!(ids(json!({ "search": "login", "status": ["OPEN"] })).await, [login_bug.as_str()]);
        assert!(ids(json!({ "assignedTo": "999999" })).await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn users_list_their_assigned_and_created_issues() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        let bob = app.register("bob").await;
        let first = app.create_issue(&ada, "First", Some(&bob.id)).await;
        let second = app.create_issue(&ada, "Second", Some(&bob.id)).await;
        app.create_issue(&bob, "Bob's own", None).await;
        app.data(
            Some(&ada.access_token),
            &update_query(),
            json!({ "input": { "id": first, "status": "CLOSED" } }),
        )
        .await;

        let query = "query($id: ID!) { user(id: $id) {
            assignedIssues { totalCount nodes { id } }
            openAssigned: assignedIssues(status: [OPEN]) { nodes { id } }
            createdIssues { totalCount nodes { title } } } }";
        let data = app.data(Some(&ada.access_token), query, json!({ "id": bob.id })).await;
        let user = &data["user"];
        assert_eq!(user["assignedIssues"]["totalCount"], 2);
        assert_eq!(user["assignedIssues"]["nodes"], json!([{ "id": second }, { "id": first }]));
        assert_eq!(user["openAssigned"]["nodes"], json!([{ "id": second }]));
        assert_eq!(user["createdIssues"]["nodes"], json!([{ "title": "Bob's own" }]));
    })
    .await;
}
