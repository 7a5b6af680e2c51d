//! Invitations, registration modes and who sees whose email, through the API.

use sea_orm::ConnectionTrait as _;
use serde_json::{Value, json};
use triage::config::Registration;

use crate::{
    helpers::{
        PASSWORD, Session, TestApp, each_backend, each_backend_with, error_code, error_field, session_of,
    },
    projects::{add_member, make_instance_admin, project},
    smtp::SmtpSink,
};

const INVITE: &str = "mutation($input: InviteToProjectInput!) { inviteToProject(input: $input) {
    invitation { id email role acceptedAt expiresAt invitedBy { username } project { key } } } }";
const ACCEPT: &str = "mutation($input: AcceptInvitationInput!) { acceptInvitation(input: $input) {
    project { key viewerRole } member { role user { username } } auth { accessToken refreshToken user { id username email } } } }";
const REVOKE: &str =
    "mutation($input: RevokeInvitationInput!) { revokeInvitation(input: $input) { invitation { id } } }";
const INVITATION: &str = "query($token: String!) { invitation(token: $token) {
    email role project { key name viewerRole } invitedBy { username email } } }";
const INVITATIONS: &str = "query($key: String) { project(key: $key) {
    invitations { totalCount nodes { email role acceptedAt } } } }";
const REGISTER: &str = "mutation($input: RegisterInput!) { register(input: $input) { accessToken } }";

fn address(username: &str) -> String {
    format!("{username}@example.com")
}

fn sign_up(username: &str) -> Value {
    json!({
        "email": address(username),
        "username": username,
        "password": PASSWORD,
        "firstName": "Test",
        "lastName": username,
    })
}

async fn invite(app: &TestApp, admin: &Session, project: &str, email: &str, role: &str) -> Value {
    app.graphql(
        Some(&admin.access_token),
        INVITE,
        json!({ "input": { "projectId": project, "email": email, "role": role } }),
    )
    .await
}

/// The token in an invitation email's link.
fn token_in(text: &str) -> String {
    let start = text.find("https://triage.example/invitations/").expect("a link") + 35;
    text[start..].split_whitespace().next().expect("a token").to_owned()
}

/// The token of the last invitation email sent to `username`.
fn last_token(app: &TestApp, username: &str) -> String {
    let sent = app.mail.sent();
    let email = sent.iter().rev().find(|email| email.to_address == address(username)).expect("an invitation");
    token_in(&email.text)
}

async fn sql(app: &TestApp, statement: &str) {
    let db = sea_orm::Database::connect(app.config.database.database_url.expose()).await.unwrap();
    db.execute_unprepared(statement).await.unwrap();
    db.close().await.unwrap();
}

/// Restarts the server with registration in `mode`.
async fn registration(app: &mut TestApp, mode: Registration) {
    app.stop_server().await;
    app.config.registration = mode;
    app.start_server().await;
}

/// The whole path through a real SMTP server, with registration by invitation only:
/// the email and its link, the accept page's query without a sign-in, signing up
/// through the link, and a link that works once.
#[tokio::test]
async fn an_invitation_reaches_a_real_smtp_server_and_signs_its_holder_up() {
    let sink = SmtpSink::start().await;
    each_backend_with(sink.configure(), async |app| {
        sink.clear();
        let ada = app.register("ada").await;
        let web = project(app, &ada, "WEB", "PRIVATE").await;
        registration(app, Registration::Invite).await;
        let refused = app.graphql(None, REGISTER, json!({ "input": sign_up("eve") })).await;
        assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");

        let invited = invite(app, &ada, &web, " Carol@Example.com ", "MEMBER").await;
        let invitation = &invited["data"]["inviteToProject"]["invitation"];
        assert_eq!(invitation["email"], "carol@example.com", "{invited}");
        assert_eq!(invitation["role"], "MEMBER");
        assert_eq!(invitation["invitedBy"]["username"], "ada");
        assert!(invitation["acceptedAt"].is_null());
        let messages = sink.wait_for(1, crate::helpers::PATIENCE).await;
        let message = &messages[0];
        assert_eq!(message.to, ["carol@example.com"]);
        let subject = message.header("Subject").unwrap();
        assert!(subject.contains("WEB project") && subject.contains("Test ada"), "{subject}");
        let text = message.part("text/plain");
        assert!(text.contains("MEMBER"), "{text}");
        let token = token_in(&text);
        assert_eq!(token.len(), 43, "256 bits, base64url");
        assert!(message.part("text/html").contains(&token));

        let page = app.data(None, INVITATION, json!({ "token": token })).await;
        assert_eq!(
            page["invitation"],
            json!({
                "email": "carol@example.com",
                "role": "MEMBER",
                "project": { "key": "WEB", "name": "WEB project", "viewerRole": null },
                "invitedBy": { "username": "ada", "email": null },
            })
        );
        let other = json!({ "input": { "token": token, "register": sign_up("mallory") } });
        let wrong = app.graphql(None, ACCEPT, other).await;
        assert_eq!((error_code(&wrong), error_field(&wrong)), ("BAD_USER_INPUT", "email"), "{wrong}");

        let accept = json!({ "input": { "token": token, "register": sign_up("carol") } });
        let accepted = app.data(None, ACCEPT, accept.clone()).await;
        let payload = &accepted["acceptInvitation"];
        assert_eq!(payload["member"], json!({ "role": "MEMBER", "user": { "username": "carol" } }));
        assert_eq!(payload["auth"]["user"]["email"], "carol@example.com");
        let carol = session_of(&payload["auth"]);
        let role =
            app.data(Some(&carol.access_token), "{ project(key: \"WEB\") { viewerRole } }", json!({})).await;
        assert_eq!(role["project"]["viewerRole"], "MEMBER");
        let general = app
            .data(Some(&carol.access_token), "{ project(key: \"TRIAGE\") { viewerRole } }", json!({}))
            .await;
        assert_eq!(general["project"]["viewerRole"], Value::Null, "invited accounts join only where invited");

        let again = app.graphql(None, ACCEPT, accept).await;
        assert_eq!((error_code(&again), error_field(&again)), ("BAD_USER_INPUT", "token"), "{again}");
        assert_eq!(app.data(None, INVITATION, json!({ "token": token })).await["invitation"], Value::Null);
        let list = app.data(Some(&ada.access_token), INVITATIONS, json!({ "key": "WEB" })).await;
        let nodes = &list["project"]["invitations"]["nodes"];
        assert_eq!(list["project"]["invitations"]["totalCount"], 1);
        assert!(nodes[0]["acceptedAt"].is_string(), "{list}");
        let hidden = app.graphql(Some(&carol.access_token), INVITATIONS, json!({ "key": "WEB" })).await;
        assert_eq!(error_code(&hidden), "FORBIDDEN", "a MEMBER does not see invitations");
    })
    .await;
}

/// A signed-in invitee, and every way an acceptance or an invitation is refused:
/// each leaves the invitation, the members and the accounts as they were.
#[tokio::test]
async fn invitations_are_refused_to_the_wrong_people_and_change_nothing_then() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        let bob = app.register("bob").await;
        let carol = app.register("carol").await;
        let web = project(app, &ada, "WEB", "PRIVATE").await;
        add_member(app, &ada, &web, &bob, "MEMBER").await;

        // Who may invite: an ADMIN; a MEMBER may not, an outsider cannot see the project.
        let by_member = invite(app, &bob, &web, &address("carol"), "VIEWER").await;
        assert_eq!(error_code(&by_member), "FORBIDDEN");
        let by_outsider = invite(app, &carol, &web, &address("dave"), "VIEWER").await;
        assert_eq!(error_code(&by_outsider), "NOT_FOUND");
        let member_again = invite(app, &ada, &web, &address("bob"), "ADMIN").await;
        assert_eq!((error_code(&member_again), error_field(&member_again)), ("CONFLICT", "email"));
        let bad = invite(app, &ada, &web, "not an address", "VIEWER").await;
        assert_eq!((error_code(&bad), error_field(&bad)), ("BAD_USER_INPUT", "email"));
        assert!(app.mail.sent().is_empty(), "{:#?}", app.mail.sent());

        // Inviting an address again replaces the pending invitation.
        assert!(invite(app, &ada, &web, &address("carol"), "VIEWER").await.get("errors").is_none());
        let first = last_token(app, "carol");
        assert!(invite(app, &ada, &web, &address("carol"), "ADMIN").await.get("errors").is_none());
        let second = last_token(app, "carol");
        assert_ne!(first, second);
        let list = app.data(Some(&ada.access_token), INVITATIONS, json!({ "key": "WEB" })).await;
        assert_eq!(
            list["project"]["invitations"]["nodes"],
            json!([{ "email": "carol@example.com", "role": "ADMIN", "acceptedAt": null }])
        );
        let stale =
            app.graphql(Some(&carol.access_token), ACCEPT, json!({ "input": { "token": first } })).await;
        assert_eq!((error_code(&stale), error_field(&stale)), ("BAD_USER_INPUT", "token"));

        // Someone else signed in cannot use carol's link; nor can anyone without a way in.
        let stolen =
            app.graphql(Some(&bob.access_token), ACCEPT, json!({ "input": { "token": second } })).await;
        assert_eq!(error_code(&stolen), "FORBIDDEN");
        let nobody = app.graphql(None, ACCEPT, json!({ "input": { "token": second } })).await;
        assert_eq!((error_code(&nobody), error_field(&nobody)), ("BAD_USER_INPUT", "register"));
        let garbage = app.graphql(None, ACCEPT, json!({ "input": { "token": "x".repeat(5000) } })).await;
        assert_eq!((error_code(&garbage), error_field(&garbage)), ("BAD_USER_INPUT", "token"));
        let role = app.data(Some(&carol.access_token), "{ project(key: \"WEB\") { id } }", json!({})).await;
        assert!(role["project"].is_null(), "carol is not in yet");

        // Carol, signed in, joins in the role of the latest invitation.
        let accepted =
            app.data(Some(&carol.access_token), ACCEPT, json!({ "input": { "token": second } })).await;
        assert_eq!(accepted["acceptInvitation"]["member"]["role"], "ADMIN");
        assert_eq!(accepted["acceptInvitation"]["project"]["viewerRole"], "ADMIN");
        assert!(accepted["acceptInvitation"]["auth"].is_null());

        // Revoking: an ADMIN may, a MEMBER may not; a revoked link and an expired one are dead.
        invite(app, &ada, &web, &address("dave"), "VIEWER").await;
        let dave_token = last_token(app, "dave");
        let pending = app.data(Some(&ada.access_token), INVITATIONS, json!({ "key": "WEB" })).await;
        let nodes = pending["project"]["invitations"]["nodes"].as_array().unwrap().clone();
        assert_eq!(nodes.len(), 2, "{pending}");
        let invited = invite(app, &ada, &web, &address("erin"), "VIEWER").await;
        let erin_id = invited["data"]["inviteToProject"]["invitation"]["id"].clone();
        let erin_token = last_token(app, "erin");
        let by_bob =
            app.graphql(Some(&bob.access_token), REVOKE, json!({ "input": { "id": erin_id } })).await;
        assert_eq!(error_code(&by_bob), "FORBIDDEN");
        assert!(app.data(None, INVITATION, json!({ "token": erin_token })).await["invitation"].is_object());
        app.data(Some(&ada.access_token), REVOKE, json!({ "input": { "id": erin_id } })).await;
        assert!(app.data(None, INVITATION, json!({ "token": erin_token })).await["invitation"].is_null());
        let twice = app.graphql(Some(&ada.access_token), REVOKE, json!({ "input": { "id": erin_id } })).await;
        assert_eq!(error_code(&twice), "NOT_FOUND");
        sql(app, "UPDATE invitations SET expires_at = created_at WHERE email = 'dave@example.com'").await;
        let expired = json!({ "input": { "token": dave_token, "register": sign_up("dave") } });
        let late = app.graphql(None, ACCEPT, expired).await;
        assert_eq!((error_code(&late), error_field(&late)), ("BAD_USER_INPUT", "token"));
        let login = app
            .graphql(
                None,
                "mutation($input: LoginInput!) { login(input: $input) { accessToken } }",
                json!({ "input": { "username": "dave", "password": PASSWORD } }),
            )
            .await;
        assert_eq!(error_code(&login), "UNAUTHENTICATED", "the refused sign-up made no account");

        // An archived project takes nobody in.
        invite(app, &ada, &web, &address("frank"), "VIEWER").await;
        let frank_token = last_token(app, "frank");
        app.data(
            Some(&ada.access_token),
            "mutation($input: ArchiveProjectInput!) { archiveProject(input: $input) { project { id } } }",
            json!({ "input": { "id": web } }),
        )
        .await;
        let archived = json!({ "input": { "token": frank_token, "register": sign_up("frank") } });
        assert_eq!(error_code(&app.graphql(None, ACCEPT, archived).await), "FORBIDDEN");
        assert_eq!(error_code(&invite(app, &ada, &web, &address("gina"), "VIEWER").await), "FORBIDDEN");
    })
    .await;
}

/// Registration modes: `closed` lets nobody sign up through the API, not even with
/// an invitation; a signed-in invitee still joins.
#[tokio::test]
async fn closed_registration_makes_no_accounts_through_the_api() {
    each_backend_with(
        |_| {},
        async |app| {
            let ada = app.register("ada").await;
            let bob = app.register("bob").await;
            let web = project(app, &ada, "WEB", "PRIVATE").await;
            invite(app, &ada, &web, &address("bob"), "VIEWER").await;
            invite(app, &ada, &web, &address("carol"), "VIEWER").await;
            let (bob_token, carol_token) = (last_token(app, "bob"), last_token(app, "carol"));
            registration(app, Registration::Closed).await;
            let refused = app.graphql(None, REGISTER, json!({ "input": sign_up("eve") })).await;
            assert_eq!(error_code(&refused), "FORBIDDEN");
            let carol = json!({ "input": { "token": carol_token, "register": sign_up("carol") } });
            assert_eq!(error_code(&app.graphql(None, ACCEPT, carol).await), "FORBIDDEN");
            assert!(
                app.data(None, INVITATION, json!({ "token": carol_token })).await["invitation"].is_object()
            );
            let joined =
                app.data(Some(&bob.access_token), ACCEPT, json!({ "input": { "token": bob_token } })).await;
            assert_eq!(joined["acceptInvitation"]["member"]["role"], "VIEWER");
        },
    )
    .await;
}

/// An invitation whose email cannot be sent is withdrawn, and the inviter told: an
/// address the mail server refuses for good is bad input, one it defers is a
/// service unavailable for now.
#[tokio::test]
async fn an_invitation_the_mail_server_refuses_is_not_kept() {
    let sink = SmtpSink::start().await;
    each_backend_with(sink.configure(), async |app| {
        let ada = app.register("ada").await;
        let web = project(app, &ada, "WEB", "PRIVATE").await;
        sink.reply_to_rcpt(&["550 5.1.1 no such user\r\n"]);
        let refused = invite(app, &ada, &web, &address("carol"), "VIEWER").await;
        assert_eq!((error_code(&refused), error_field(&refused)), ("BAD_USER_INPUT", "email"), "{refused}");
        sink.reply_to_rcpt(&["451 4.3.0 try again later\r\n"]);
        let deferred = invite(app, &ada, &web, &address("carol"), "VIEWER").await;
        assert_eq!(error_code(&deferred), "SERVICE_UNAVAILABLE", "{deferred}");
        let list = app.data(Some(&ada.access_token), INVITATIONS, json!({ "key": "WEB" })).await;
        assert_eq!(list["project"]["invitations"]["totalCount"], 0);
        let sent = invite(app, &ada, &web, &address("carol"), "VIEWER").await;
        assert!(sent.get("errors").is_none(), "the next try goes out: {sent}");
    })
    .await;
}

/// One user sends at most 50 invitations an hour, revoked ones included.
#[tokio::test]
async fn invitations_are_limited_per_inviter() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        let web = project(app, &ada, "WEB", "PRIVATE").await;
        for n in 0..50 {
            let sent = invite(app, &ada, &web, &address(&format!("user{n}")), "VIEWER").await;
            assert!(sent.get("errors").is_none(), "{sent}");
        }
        let limited = invite(app, &ada, &web, &address("user50"), "VIEWER").await;
        assert_eq!(error_code(&limited), "RATE_LIMITED", "{limited}");
        let retry = limited["errors"][0]["extensions"]["retryAfter"].as_u64().unwrap();
        assert!((3000..=3600).contains(&retry), "{retry}");
        assert_eq!(app.mail.sent().len(), 50);
    })
    .await;
}

/// `User.email`: the user, instance admins and people who share a project with them
/// see it; nobody else, and `users(search:)` does not match it for them either.
#[tokio::test]
async fn an_email_is_seen_only_by_those_who_share_a_project() {
    each_backend_with(
        |_| {},
        async |app| {
            let ada = app.register("ada").await;
            let dave = app.register("dave").await;
            let root = app.register("root").await;
            make_instance_admin(app, &root).await;
            let web = project(app, &ada, "WEB", "PRIVATE").await;
            registration(app, Registration::Invite).await;
            invite(app, &ada, &web, &address("carol"), "VIEWER").await;
            let token = last_token(app, "carol");
            let accepted = app
                .data(None, ACCEPT, json!({ "input": { "token": token, "register": sign_up("carol") } }))
                .await;
            let carol = session_of(&accepted["acceptInvitation"]["auth"]);

            let email_of = async |viewer: &Session, user: &Session| {
                let data = app
                    .data(
                        Some(&viewer.access_token),
                        "query($id: ID!) { user(id: $id) { email } }",
                        json!({ "id": user.id }),
                    )
                    .await;
                data["user"]["email"].as_str().map(str::to_owned)
            };
            assert_eq!(email_of(&carol, &carol).await.as_deref(), Some("carol@example.com"), "oneself");
            assert_eq!(email_of(&ada, &carol).await.as_deref(), Some("carol@example.com"), "WEB together");
            assert_eq!(email_of(&root, &carol).await.as_deref(), Some("carol@example.com"), "instance admin");
            assert_eq!(email_of(&dave, &carol).await, None, "no project in common");
            assert_eq!(email_of(&carol, &dave).await, None, "either way");
            assert_eq!(
                email_of(&dave, &ada).await.as_deref(),
                Some("ada@example.com"),
                "the default project"
            );

            let search = async |viewer: &Session, text: &str| {
                let data = app
                    .data(
                        Some(&viewer.access_token),
                        "query($s: String) { users(search: $s) { totalCount nodes { username email } } }",
                        json!({ "s": text }),
                    )
                    .await;
                data["users"].clone()
            };
            assert_eq!(search(&dave, "carol@").await["totalCount"], 0, "dave cannot find carol by email");
            assert_eq!(
                search(&dave, "carol").await["nodes"],
                json!([{ "username": "carol", "email": null }]),
                "by name, without the email"
            );
            assert_eq!(search(&ada, "carol@").await["totalCount"], 1);
            assert_eq!(search(&root, "carol@").await["totalCount"], 1);
        },
    )
    .await;
}
