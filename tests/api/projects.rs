//! Projects, roles and the trash, through the API.

use std::time::Duration;

use sea_orm::ConnectionTrait as _;
use serde_json::{Value, json};

use crate::helpers::{Session, TestApp, each_backend, error_code, error_field};

const CREATE_PROJECT: &str = "mutation($input: CreateProjectInput!) {
    createProject(input: $input) { project { id key name visibility viewerRole archivedAt } } }";
const CREATE_ISSUE: &str = "mutation($input: CreateIssueInput!) {
    createIssue(input: $input) { issue { id number key kind project { key } } } }";
const ADD_MEMBER: &str = "mutation($input: AddProjectMemberInput!) {
    addProjectMember(input: $input) { member { role user { username } } } }";
const DELETE: &str = "mutation($input: DeleteIssueInput!) { deleteIssue(input: $input) { deletedIssueId } }";
const RESTORE: &str =
    "mutation($input: RestoreIssueInput!) { restoreIssue(input: $input) { issue { id deletedAt } } }";

/// Creates a project as `admin`; returns its id.
pub async fn project(app: &TestApp, admin: &Session, key: &str, visibility: &str) -> String {
    let data = app
        .data(
            Some(&admin.access_token),
            CREATE_PROJECT,
            json!({ "input": { "key": key, "name": format!("{key} project"), "visibility": visibility } }),
        )
        .await;
    data["createProject"]["project"]["id"].as_str().unwrap().to_owned()
}

pub async fn add_member(app: &TestApp, admin: &Session, project: &str, user: &Session, role: &str) {
    app.data(
        Some(&admin.access_token),
        ADD_MEMBER,
        json!({ "input": { "projectId": project, "userId": user.id, "role": role } }),
    )
    .await;
}

/// Files an issue in `project` as `session`; returns the whole response.
pub async fn file(app: &TestApp, session: &Session, project: &str, title: &str) -> Value {
    app.graphql(
        Some(&session.access_token),
        CREATE_ISSUE,
        json!({ "input": { "projectId": project, "title": title, "kind": "BUG" } }),
    )
    .await
}

async fn issue_titles(app: &TestApp, session: &Session, filter: Value) -> (Vec<String>, u64) {
    let data = app
        .data(
            Some(&session.access_token),
            "query($filter: IssueFilter) { issues(filter: $filter) { totalCount nodes { title } } }",
            json!({ "filter": filter }),
        )
        .await;
    let titles = data["issues"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| node["title"].as_str().unwrap().to_owned())
        .collect();
    (titles, data["issues"]["totalCount"].as_u64().unwrap())
}

/// Makes `session` an instance admin, as `triage user create --admin` would.
pub async fn make_instance_admin(app: &TestApp, session: &Session) {
    let db = sea_orm::Database::connect(app.config.database.database_url.expose()).await.unwrap();
    db.execute_unprepared(&format!("UPDATE users SET role = 'admin' WHERE id = {}", session.id))
        .await
        .unwrap();
    db.close().await.unwrap();
}

#[tokio::test]
async fn a_client_that_names_no_project_files_into_the_default_one_numbered_from_one() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        let token = Some(ada.access_token.as_str());
        let data = app.data(token, CREATE_ISSUE, json!({ "input": { "title": "First" } })).await;
        let issue = &data["createIssue"]["issue"];
        assert_eq!(issue["key"], "TRIAGE-1");
        assert_eq!(issue["number"], 1);
        assert_eq!(issue["kind"], "TASK");
        assert_eq!(issue["project"]["key"], "TRIAGE");
        let second = app.data(token, CREATE_ISSUE, json!({ "input": { "title": "Second" } })).await;
        assert_eq!(second["createIssue"]["issue"]["key"], "TRIAGE-2");
        let by_key = app.data(token, "{ issue(key: \"TRIAGE-2\") { title } }", json!({})).await;
        assert_eq!(by_key["issue"]["title"], "Second");
        let default =
            app.data(token, "{ project(key: \"TRIAGE\") { name visibility viewerRole } }", json!({})).await;
        assert_eq!(
            default["project"],
            json!({ "name": "General", "visibility": "PUBLIC", "viewerRole": "MEMBER" })
        );
    })
    .await;
}

#[tokio::test]
async fn each_project_numbers_its_issues_and_a_number_is_never_given_twice() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        let web = project(app, &ada, "WEB", "PUBLIC").await;
        let first = file(app, &ada, &web, "One").await;
        assert_eq!(first["data"]["createIssue"]["issue"]["key"], "WEB-1", "{first}");
        let id = first["data"]["createIssue"]["issue"]["id"].clone();
        let token = Some(ada.access_token.as_str());
        app.data(token, DELETE, json!({ "input": { "id": id, "permanently": true } })).await;
        let second = file(app, &ada, &web, "Two").await;
        assert_eq!(second["data"]["createIssue"]["issue"]["key"], "WEB-2");
        let taken =
            app.graphql(token, CREATE_PROJECT, json!({ "input": { "key": "WEB", "name": "Again" } })).await;
        assert_eq!(error_code(&taken), "CONFLICT");
        assert_eq!(error_field(&taken), "key");
        let bad =
            app.graphql(token, CREATE_PROJECT, json!({ "input": { "key": "web-1", "name": "x" } })).await;
        assert_eq!((error_code(&bad), error_field(&bad)), ("BAD_USER_INPUT", "key"));
    })
    .await;
}

#[tokio::test]
async fn creates_side_by_side_take_every_number_once_and_a_refused_one_takes_none() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        let eve = app.register("eve").await;
        let web = project(app, &ada, "WEB", "PRIVATE").await;
        let refused = file(app, &eve, &web, "Not a member").await;
        assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{refused}");
        let token = Some(ada.access_token.as_str());
        let unassignable = json!({ "input": { "projectId": web, "title": "x", "assignedTo": eve.id } });
        let refused = app.graphql(token, CREATE_ISSUE, unassignable).await;
        assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{refused}");
        let titles: Vec<String> = (0..16).map(|n| format!("Issue {n}")).collect();
        let creates = titles.iter().map(|title| file(app, &ada, &web, title));
        let mut numbers: Vec<u64> = futures_util::future::join_all(creates)
            .await
            .iter()
            .map(|created| created["data"]["createIssue"]["issue"]["number"].as_u64().expect("a number"))
            .collect();
        numbers.sort_unstable();
        assert_eq!(numbers, (1..=16).collect::<Vec<_>>());
    })
    .await;
}

#[tokio::test]
async fn a_project_keeps_an_admin_and_anyone_may_leave() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        let bob = app.register("bob").await;
        let web = project(app, &ada, "WEB", "PRIVATE").await;
        add_member(app, &ada, &web, &bob, "MEMBER").await;
        let demote = "mutation($input: UpdateProjectMemberInput!) { updateProjectMember(input: $input) { member { role } } }";
        let remove = "mutation($input: RemoveProjectMemberInput!) { removeProjectMember(input: $input) { member { role } } }";
        let last = app
            .graphql(
                Some(&ada.access_token),
                demote,
                json!({ "input": { "projectId": web, "userId": ada.id, "role": "MEMBER" } }),
            )
            .await;
        assert_eq!(error_code(&last), "CONFLICT");
        let gone =
            app.graphql(Some(&ada.access_token), remove, json!({ "input": { "projectId": web, "userId": ada.id } })).await;
        assert_eq!(error_code(&gone), "CONFLICT");
        let twice = app
            .graphql(
                Some(&ada.access_token),
                ADD_MEMBER,
                json!({ "input": { "projectId": web, "userId": bob.id, "role": "VIEWER" } }),
            )
            .await;
        assert_eq!(error_code(&twice), "CONFLICT");
        let left =
            app.data(Some(&bob.access_token), remove, json!({ "input": { "projectId": web, "userId": bob.id } })).await;
        assert_eq!(left["removeProjectMember"]["member"]["role"], "MEMBER");
        let hidden = app.data(Some(&bob.access_token), "query($id: ID) { project(id: $id) { key } }", json!({ "id": web })).await;
        assert!(hidden["project"].is_null(), "a private project is gone for who left it");
    })
    .await;
}

#[tokio::test]
async fn only_members_can_be_assigned_and_a_removed_member_gets_no_email() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        let bob = app.register("bob").await;
        let web = project(app, &ada, "WEB", "PUBLIC").await;
        let assign = |assignee: &str| {
            json!({ "input": { "projectId": web, "title": "Assigned", "assignedTo": assignee } })
        };
        let refused = app.graphql(Some(&ada.access_token), CREATE_ISSUE, assign(&bob.id)).await;
        assert_eq!((error_code(&refused), error_field(&refused)), ("BAD_USER_INPUT", "assignedTo"));
        add_member(app, &ada, &web, &bob, "MEMBER").await;
        app.data(Some(&ada.access_token), CREATE_ISSUE, assign(&bob.id)).await;
        app.data(
            Some(&ada.access_token),
            "mutation($input: RemoveProjectMemberInput!) { removeProjectMember(input: $input) { member { role } } }",
            json!({ "input": { "projectId": web, "userId": bob.id } }),
        )
        .await;
        app.advance(Duration::from_secs(13 * 60));
        app.settled().await;
        assert!(app.mail.sent().is_empty(), "{:#?}", app.mail.sent());
    })
    .await;
}

#[tokio::test]
async fn an_update_assigns_only_members_and_a_refused_one_changes_nothing() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        let bob = app.register("bob").await;
        let web = project(app, &ada, "WEB", "PUBLIC").await;
        let token = Some(ada.access_token.as_str());
        let created = file(app, &ada, &web, "Unassigned").await;
        let id = created["data"]["createIssue"]["issue"]["id"].clone();
        let update = "mutation($input: UpdateIssueInput!) {
            updateIssue(input: $input) { issue { title assignedTo { username } } } }";
        let assign =
            |assignee: &str| json!({ "input": { "id": id, "title": "Changed", "assignedTo": assignee } });
        for (assignee, message) in [(bob.id.as_str(), "MEMBER or ADMIN"), ("987654", "existing user")] {
            let refused = app.graphql(token, update, assign(assignee)).await;
            assert_eq!((error_code(&refused), error_field(&refused)), ("BAD_USER_INPUT", "assignedTo"));
            assert!(refused["errors"][0]["message"].as_str().unwrap().contains(message), "{refused}");
        }
        let unchanged = app.data(token, update, json!({ "input": { "id": id } })).await;
        assert_eq!(unchanged["updateIssue"]["issue"], json!({ "title": "Unassigned", "assignedTo": null }));
        let stranger = app.graphql(Some(&bob.access_token), update, assign(&bob.id)).await;
        assert_eq!(error_code(&stranger), "FORBIDDEN", "the issue's edit rights come before the assignee's");
        add_member(app, &ada, &web, &bob, "MEMBER").await;
        let assigned = app.data(token, update, assign(&bob.id)).await;
        assert_eq!(
            assigned["updateIssue"]["issue"],
            json!({ "title": "Changed", "assignedTo": { "username": "bob" } })
        );
    })
    .await;
}

#[tokio::test]
async fn a_deleted_issue_waits_in_the_trash_until_restored_or_purged() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        let token = Some(ada.access_token.as_str());
        let keep = app.create_issue(&ada, "Keep me", None).await;
        let lose = app.create_issue(&ada, "Lose me", None).await;
        for id in [&keep, &lose] {
            app.data(token, DELETE, json!({ "input": { "id": id } })).await;
        }
        assert_eq!(issue_titles(app, &ada, json!({})).await.1, 0, "the trash leaves every list");
        let (trashed, _) = issue_titles(app, &ada, json!({ "trashed": true })).await;
        assert_eq!(trashed.len(), 2);
        let bob = app.register("bob").await;
        assert_eq!(issue_titles(app, &bob, json!({ "trashed": true })).await.1, 0, "nobody else's trash");
        let refused = app.graphql(Some(&bob.access_token), RESTORE, json!({ "input": { "id": keep } })).await;
        assert_eq!(error_code(&refused), "FORBIDDEN");

        let restored = app.data(token, RESTORE, json!({ "input": { "id": keep } })).await;
        assert!(restored["restoreIssue"]["issue"]["deletedAt"].is_null());
        assert_eq!(issue_titles(app, &ada, json!({})).await.0, ["Keep me"]);
        let again = app.graphql(token, RESTORE, json!({ "input": { "id": keep } })).await;
        assert_eq!(error_code(&again), "CONFLICT");

        // The daily purge, a day past the 30 days of retention.
        app.advance(Duration::from_secs(31 * 24 * 3600));
        app.settled().await;
        assert_eq!(issue_titles(app, &ada, json!({ "trashed": true })).await.1, 0, "purged");
        let purged = app.graphql(token, RESTORE, json!({ "input": { "id": lose } })).await;
        assert_eq!(error_code(&purged), "NOT_FOUND");
        assert_eq!(issue_titles(app, &ada, json!({})).await.0, ["Keep me"]);
    })
    .await;
}

/// How many migrations the release before projects had.
const PREVIOUS_RELEASE: u32 = 6;

async fn down_to_previous_release(db: &sea_orm::DatabaseConnection) {
    use migration::{Migrator, MigratorTrait as _};
    let applied = Migrator::get_applied_migrations(db).await.unwrap().len() as u32;
    Migrator::down(db, Some(applied - PREVIOUS_RELEASE)).await.unwrap();
}

/// The projects migration on a database the previous release filled: its issues
/// move into the default project in creation order, its users become MEMBERs, and
/// `down` then `up` again gives the same.
#[tokio::test]
async fn the_projects_migration_moves_earlier_issues_into_the_default_project() {
    use migration::{Migrator, MigratorTrait as _};
    let dir = tempfile::tempdir().unwrap();
    let mut databases = vec![(format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display()), None)];
    if std::env::var(crate::postgres::ADMIN_URL_ENV).is_ok_and(|url| !url.is_empty()) {
        let database = crate::postgres::PostgresDatabase::take().await;
        databases.push((database.url(), Some(database)));
    }
    for (url, postgres) in databases {
        let db = sea_orm::Database::connect(&url).await.unwrap();
        // Every migration up to the one before projects.
        Migrator::up(&db, None).await.unwrap();
        down_to_previous_release(&db).await;
        // What the previous release wrote: two users, and three issues created out
        // of id order.
        for statement in [
            "INSERT INTO users (id, username, email, first_name, last_name, password_hash, role, created_at, updated_at) \
             VALUES (1, 'ada', 'ada@example.com', 'A', 'L', 'x', 'member', '2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00'), \
             (2, 'bob', 'bob@example.com', 'B', 'S', 'x', 'member', '2026-01-02 00:00:00+00:00', '2026-01-02 00:00:00+00:00')",
            "INSERT INTO issues (id, title, description, status, created_by, assigned_to, created_at, updated_at) \
             VALUES (10, 'Third', '', 'OPEN', 1, 2, '2026-01-05 00:00:00+00:00', '2026-01-05 00:00:00+00:00'), \
             (11, 'First', '', 'OPEN', 1, NULL, '2026-01-03 00:00:00+00:00', '2026-01-03 00:00:00+00:00'), \
             (12, 'Second', '', 'CLOSED', 2, NULL, '2026-01-04 00:00:00+00:00', '2026-01-04 00:00:00+00:00')",
        ] {
            db.execute_unprepared(statement).await.unwrap();
        }
        for round in ["up", "down then up"] {
            Migrator::up(&db, None).await.unwrap();
            let rows = db
                .query_all_raw(sea_orm::Statement::from_string(
                    db.get_database_backend(),
                    "SELECT i.title, i.number, i.kind, p.key, p.next_number, \
                     (SELECT count(*) FROM project_members m WHERE m.project_id = p.id AND m.role = 'MEMBER') AS members \
                     FROM issues i JOIN projects p ON p.id = i.project_id ORDER BY i.number",
                ))
                .await
                .unwrap();
            let seen: Vec<(String, i64, String, String, i64, i64)> = rows
                .iter()
                .map(|row| {
                    (
                        row.try_get("", "title").unwrap(),
                        row.try_get("", "number").unwrap(),
                        row.try_get("", "kind").unwrap(),
                        row.try_get("", "key").unwrap(),
                        row.try_get("", "next_number").unwrap(),
                        row.try_get("", "members").unwrap(),
                    )
                })
                .collect();
            let expected: Vec<_> = [("First", 1), ("Second", 2), ("Third", 3)]
                .into_iter()
                .map(|(title, number)| {
                    (title.to_owned(), number, "TASK".to_owned(), "TRIAGE".to_owned(), 4, 2)
                })
                .collect();
            assert_eq!(seen, expected, "{url} ({round})");
            down_to_previous_release(&db).await;
        }
        Migrator::up(&db, None).await.unwrap();
        db.close().await.unwrap();
        if let Some(database) = postgres {
            database.release().await;
        }
    }
}

#[tokio::test]
async fn a_subscriber_never_sees_events_of_a_private_project_they_are_not_in() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        let bob = app.register("bob").await;
        let secret = project(app, &ada, "SEC", "PRIVATE").await;
        let mut bobs = crate::ws::WsClient::connect(app.address, &bob.access_token).await;
        bobs.subscribe(
            "1",
            "subscription { issueEvents { kind issue { title } project { key } } }",
            json!({}),
        )
        .await;
        app.subscribed(1).await;
        let filed = file(app, &ada, &secret, "Secret plan").await;
        assert!(filed.get("errors").is_none(), "{filed}");
        app.create_issue(&ada, "Public note", None).await;
        let event = bobs.next_payload().await.expect("an event");
        assert_eq!(
            event["data"]["issueEvents"],
            json!({ "kind": "CREATED", "issue": { "title": "Public note" }, "project": { "key": "TRIAGE" } })
        );
    })
    .await;
}
