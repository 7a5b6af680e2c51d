//! The permission matrix: every project query and mutation, by every kind of caller,
//! on every kind of project, each with the answer it must get; and a refused
//! mutation must leave the database exactly as it was.

use sea_orm::{ConnectionTrait as _, DatabaseConnection, Statement};
use serde_json::{Value, json};

use crate::{
    helpers::{Session, TestApp, each_backend, error_code},
    projects::{add_member, file, make_instance_admin, project},
};

/// Who a row of the matrix is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Caller {
    Outsider,
    Viewer,
    Member,
    Admin,
    InstanceAdmin,
}

const CALLERS: [Caller; 5] =
    [Caller::Outsider, Caller::Viewer, Caller::Member, Caller::Admin, Caller::InstanceAdmin];

/// The kinds of project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Public,
    Private,
    /// PRIVATE, and archived.
    Archived,
}

/// What an operation must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Data, no error.
    Done,
    /// An error with this code.
    Refused(&'static str),
}

use Expect::{Done, Refused};

/// One fixture: a project as its kind has it, with a member of each role, a
/// bystander VIEWER, an issue, one in the trash and a pending invitation.
struct Fixture {
    project: String,
    issue: String,
    trashed: String,
    invitation: String,
    bystander: Session,
    spare: Session,
}

/// The answers a caller must get on a kind of project.
struct Rules {
    readable: bool,
    /// The role they act in (instance admins act as ADMIN).
    admin: bool,
    files: bool,
    archived: bool,
}

impl Rules {
    fn of(caller: Caller, kind: Kind) -> Self {
        Self {
            readable: kind == Kind::Public || caller != Caller::Outsider,
            admin: caller >= Caller::Admin,
            files: caller >= Caller::Member,
            archived: kind == Kind::Archived,
        }
    }

    /// A change an ADMIN may make while the project is not archived.
    fn manage(&self) -> Expect {
        self.write(self.admin)
    }

    /// A change `allowed` to the caller's role, in a project that may be archived.
    fn write(&self, allowed: bool) -> Expect {
        match (self.readable, allowed && !self.archived) {
            (false, _) => Refused("NOT_FOUND"),
            (true, false) => Refused("FORBIDDEN"),
            (true, true) => Done,
        }
    }

    /// Something only an ADMIN may do, archived or not.
    fn admin_only(&self) -> Expect {
        match (self.readable, self.admin) {
            (false, _) => Refused("NOT_FOUND"),
            (true, false) => Refused("FORBIDDEN"),
            (true, true) => Done,
        }
    }
}

/// A readable snapshot of everything a project holds, straight from the database.
async fn snapshot(db: &DatabaseConnection, project: &str) -> Vec<Vec<Option<String>>> {
    let tables: [(&str, &[&str], &str); 4] = [
        ("projects", &["name", "description", "visibility", "archived_at", "next_number"], "id"),
        ("project_members", &["user_id", "role", "added_at"], "project_id"),
        (
            "issues",
            &["id", "title", "status", "kind", "assigned_to", "deleted_at", "updated_at"],
            "project_id",
        ),
        ("invitations", &["id", "email", "role", "accepted_at", "revoked_at"], "project_id"),
    ];
    let mut rows = Vec::new();
    for (table, columns, key) in tables {
        let select: Vec<String> = columns.iter().map(|column| format!("CAST({column} AS TEXT)")).collect();
        let sql = format!("SELECT {} FROM {table} WHERE {key} = {project} ORDER BY 1", select.join(", "));
        let statement = Statement::from_string(db.get_database_backend(), sql);
        for row in db.query_all_raw(statement).await.unwrap() {
            rows.push(
                (0..columns.len()).map(|i| row.try_get_by_index::<Option<String>>(i).unwrap()).collect(),
            );
        }
    }
    rows
}

async fn fixture(
    app: &TestApp,
    owner: &Session,
    key: &str,
    kind: Kind,
    members: &[(Caller, Session)],
) -> Fixture {
    let visibility = if kind == Kind::Public { "PUBLIC" } else { "PRIVATE" };
    let id = project(app, owner, key, visibility).await;
    for (caller, session) in members {
        let role = match caller {
            Caller::Viewer => "VIEWER",
            Caller::Member => "MEMBER",
            Caller::Admin => "ADMIN",
            Caller::Outsider | Caller::InstanceAdmin => continue,
        };
        add_member(app, owner, &id, session, role).await;
    }
    let bystander = app.register(&format!("by{}", key.to_lowercase())).await;
    add_member(app, owner, &id, &bystander, "VIEWER").await;
    let spare = app.register(&format!("sp{}", key.to_lowercase())).await;
    let issue_of =
        |response: Value| response["data"]["createIssue"]["issue"]["id"].as_str().unwrap().to_owned();
    let issue = issue_of(file(app, owner, &id, "Kept").await);
    let trashed = issue_of(file(app, owner, &id, "Trashed").await);
    let token = Some(owner.access_token.as_str());
    app.data(
        token,
        "mutation($input: DeleteIssueInput!) { deleteIssue(input: $input) { deletedIssueId } }",
        json!({ "input": { "id": trashed } }),
    )
    .await;
    let invited = app
        .data(
            token,
            "mutation($input: InviteToProjectInput!) { inviteToProject(input: $input) { invitation { id } } }",
            json!({ "input": { "projectId": id, "email": format!("{}@example.org", key.to_lowercase()), "role": "VIEWER" } }),
        )
        .await;
    let invitation = invited["inviteToProject"]["invitation"]["id"].as_str().unwrap().to_owned();
    if kind == Kind::Archived {
        app.data(
            token,
            "mutation($input: ArchiveProjectInput!) { archiveProject(input: $input) { project { id } } }",
            json!({ "input": { "id": id } }),
        )
        .await;
    }
    Fixture { project: id, issue, trashed, invitation, bystander, spare }
}

/// One row: the operation's name, its document, its variables and what it must get.
type Row = (&'static str, &'static str, Value, Expect);

fn queries(f: &Fixture, rules: &Rules) -> Vec<(&'static str, &'static str, Value, Value)> {
    let readable = rules.readable;
    let restorable = u64::from(rules.admin && !rules.archived);
    vec![
        (
            "project",
            "query($id: ID) { project(id: $id) { id } }",
            json!({ "id": f.project }),
            json!({ "project": if readable { json!({ "id": f.project }) } else { Value::Null } }),
        ),
        (
            "issue",
            "query($id: ID) { issue(id: $id) { id } }",
            json!({ "id": f.issue }),
            json!({ "issue": if readable { json!({ "id": f.issue }) } else { Value::Null } }),
        ),
        (
            "issues",
            "query($id: ID) { issues(filter: { projectId: $id }) { totalCount } }",
            json!({ "id": f.project }),
            json!({ "issues": { "totalCount": u64::from(readable) } }),
        ),
        (
            "trash",
            "query($id: ID) { issues(filter: { projectId: $id, trashed: true }) { totalCount } }",
            json!({ "id": f.project }),
            json!({ "issues": { "totalCount": restorable } }),
        ),
        (
            "projects",
            "query { projects(filter: { includeArchived: true }) { nodes { id } } }",
            json!({}),
            json!(readable),
        ),
    ]
}

fn mutations(f: &Fixture, rules: &Rules) -> Vec<Row> {
    let issue_change = if rules.readable { Refused("FORBIDDEN") } else { Refused("NOT_FOUND") };
    let restore = rules.write(rules.admin);
    let (archive_name, archive_doc) = if rules.archived {
        (
            "restoreProject",
            "mutation($input: RestoreProjectInput!) { restoreProject(input: $input) { project { id } } }",
        )
    } else {
        (
            "archiveProject",
            "mutation($input: ArchiveProjectInput!) { archiveProject(input: $input) { project { id } } }",
        )
    };
    vec![
        (
            "invitations",
            "query($id: ID) { project(id: $id) { invitations { totalCount } } }",
            json!({ "id": f.project }),
            match (rules.readable, rules.admin) {
                (false, _) => Done,
                (true, false) => Refused("FORBIDDEN"),
                (true, true) => Done,
            },
        ),
        (
            "createIssue",
            "mutation($input: CreateIssueInput!) { createIssue(input: $input) { issue { id } } }",
            json!({ "input": { "projectId": f.project, "title": "New" } }),
            match rules.write(rules.files) {
                Refused("NOT_FOUND") => Refused("BAD_USER_INPUT"),
                other => other,
            },
        ),
        (
            "updateIssue",
            "mutation($input: UpdateIssueInput!) { updateIssue(input: $input) { issue { id } } }",
            json!({ "input": { "id": f.issue, "title": "Hijacked" } }),
            issue_change,
        ),
        (
            "deleteIssue",
            "mutation($input: DeleteIssueInput!) { deleteIssue(input: $input) { deletedIssueId } }",
            json!({ "input": { "id": f.issue } }),
            issue_change,
        ),
        (
            "restoreIssue",
            "mutation($input: RestoreIssueInput!) { restoreIssue(input: $input) { issue { id } } }",
            json!({ "input": { "id": f.trashed } }),
            restore,
        ),
        (
            "updateProject",
            "mutation($input: UpdateProjectInput!) { updateProject(input: $input) { project { id } } }",
            json!({ "input": { "id": f.project, "name": "Renamed" } }),
            rules.manage(),
        ),
        (
            "addProjectMember",
            "mutation($input: AddProjectMemberInput!) { addProjectMember(input: $input) { member { role } } }",
            json!({ "input": { "projectId": f.project, "userId": f.spare.id, "role": "MEMBER" } }),
            rules.manage(),
        ),
        (
            "updateProjectMember",
            "mutation($input: UpdateProjectMemberInput!) { updateProjectMember(input: $input) { member { role } } }",
            json!({ "input": { "projectId": f.project, "userId": f.bystander.id, "role": "MEMBER" } }),
            rules.manage(),
        ),
        (
            "inviteToProject",
            "mutation($input: InviteToProjectInput!) { inviteToProject(input: $input) { invitation { id } } }",
            json!({ "input": { "projectId": f.project, "email": "newcomer@example.org", "role": "VIEWER" } }),
            rules.manage(),
        ),
        (
            "revokeInvitation",
            "mutation($input: RevokeInvitationInput!) { revokeInvitation(input: $input) { invitation { id } } }",
            json!({ "input": { "id": f.invitation } }),
            match rules.manage() {
                Refused("NOT_FOUND") => Refused("NOT_FOUND"),
                other => other,
            },
        ),
        (
            "removeProjectMember",
            "mutation($input: RemoveProjectMemberInput!) { removeProjectMember(input: $input) { member { role } } }",
            json!({ "input": { "projectId": f.project, "userId": f.bystander.id } }),
            rules.manage(),
        ),
        (archive_name, archive_doc, json!({ "input": { "id": f.project } }), rules.admin_only()),
    ]
}

fn outcome(response: &Value) -> Expect {
    match response.get("errors") {
        None => Done,
        Some(_) => Refused(match error_code(response) {
            "NOT_FOUND" => "NOT_FOUND",
            "FORBIDDEN" => "FORBIDDEN",
            "BAD_USER_INPUT" => "BAD_USER_INPUT",
            "CONFLICT" => "CONFLICT",
            other => panic!("unexpected code {other}: {response}"),
        }),
    }
}

#[tokio::test]
async fn every_caller_gets_its_answer_and_a_refusal_changes_nothing() {
    each_backend(async |app| {
        let db = sea_orm::Database::connect(app.config.database.database_url.expose()).await.unwrap();
        let owner = app.register("owner").await;
        let mut members = Vec::new();
        for caller in CALLERS {
            let session = app.register(&format!("{caller:?}").to_lowercase()).await;
            if caller == Caller::InstanceAdmin {
                make_instance_admin(app, &session).await;
            }
            members.push((caller, session));
        }
        for (k, kind) in [Kind::Public, Kind::Private, Kind::Archived].into_iter().enumerate() {
            for (c, (caller, session)) in members.iter().enumerate() {
                let key = format!("K{k}C{c}");
                let f = fixture(app, &owner, &key, kind, &members).await;
                let rules = Rules::of(*caller, kind);
                let token = Some(session.access_token.as_str());
                for (name, query, variables, expected) in queries(&f, &rules) {
                    let data = app.data(token, query, variables).await;
                    let context = format!("{caller:?} on {kind:?}: {name}");
                    if name == "projects" {
                        let listed = data["projects"]["nodes"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|p| p["id"] == f.project);
                        assert_eq!(json!(listed), expected, "{context}");
                    } else {
                        assert_eq!(data, expected, "{context}");
                    }
                }
                for (name, document, variables, expected) in mutations(&f, &rules) {
                    let before = snapshot(&db, &f.project).await;
                    assert!(before.len() >= 8, "the project, its members, issues and invitation");
                    let response = app.graphql(token, document, variables).await;
                    let context = format!("{caller:?} on {kind:?}: {name}");
                    assert_eq!(outcome(&response), expected, "{context}: {response}");
                    if expected != Done {
                        assert_eq!(snapshot(&db, &f.project).await, before, "{context} changed something");
                    }
                }
            }
        }
        // No email went anywhere but to the invitations the fixtures and ADMINs made.
        for email in app.mail.sent() {
            assert!(email.to_address.ends_with("@example.org"), "{email:?}");
        }
        db.close().await.unwrap();
    })
    .await;
}
