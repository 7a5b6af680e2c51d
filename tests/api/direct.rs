//! Direct answers (`graphql/direct.rs`): a query a plan covers gets the executor's
//! very bytes. Each request goes to two servers on one database: the app's, whose
//! plans answer a document from its second request on, and a replica with
//! `TRIAGE_DIRECT_ANSWERS=false`, whose executor answers everything.

use std::{collections::HashSet, net::SocketAddr};

use serde_json::{Value, json};

use crate::{
    helpers::{Session, TestApp, each_backend_with},
    projects::{add_member, project},
};

const DIRECT_ANSWERS: &str = "triage_graphql_direct_answers_total";

const LIST: &str = "query($a: ID) { issues(first: 20, filter: {assignedTo: $a}) { totalCount
    nodes { id title status createdAt createdBy { username } assignedTo { username } } } }";

const ONE: &str = "query($id: ID!) { issue(id: $id) { __typename id number kind title description
    status createdAt updatedAt closedAt deletedAt } }";

const ONE_WITH_PEOPLE: &str = "query($id: ID!) { issue(id: $id) { id assignedTo { username } } }";

const PAGES: &str = "query Pages($n: Int = 2, $after: String, $search: String) {
    __typename
    mine: issues(first: $n, after: $after, filter: {search: $search}) { ...Page } }
    fragment Page on IssueConnection { __typename totalCount
        edges { __typename cursor node { id key: number kind title description } }
        nodes { createdBy { ...Person } assignedTo { ...Person } } }
    fragment Person on User { __typename id username firstName lastName createdAt }";

const LAST: &str = "{ last: issues(last: 3, orderBy: {field: UPDATED_AT, direction: ASC}) {
    edges { cursor node { ... on Issue { id updatedAt } ... { closedAt } } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor __typename } } }";

const TRASH: &str = "{ issues(filter: {trashed: true}) { nodes { id deletedAt } } }";

/// Two root fields: the executor puts them in the order they finish, which no plan
/// can know, so it answers these itself (in either order: compared as JSON).
const TYPENAME_LAST: &str = "{ a: issues(first: 1) { totalCount } __typename }";
const NULL_FIRST: &str = "{ b: issues(first: 1) { totalCount } a: issue(id: \"nope\") { id } }";

const BY_KEY_OR_ID: &str = "query($id: ID, $key: String) { issue(id: $id, key: $key) { id } }";

/// Outside every plan: a user's email has its own rule.
const EMAILS: &str = "query { issues(first: 5) { nodes { createdBy { email } } } }";

#[tokio::test]
async fn plans_answer_with_the_executors_bytes() {
    each_backend_with(
        |_| {},
        async |app| {
            let executor = app.start_replica_with(|config| config.direct_answers = false).await;
            let ada = app.register("ada").await;
            let bob = app.register("bob").await;
            let eve = app.register("eve").await;
            let web = project(app, &ada, "WEB", "PRIVATE").await;
            add_member(app, &ada, &web, &bob, "MEMBER").await;
            let token = Some(ada.access_token.as_str());
            let mut ids = Vec::new();
            for (n, description) in
                ["", "Quotes \" and \\ and\nlines", "Ünïcödé ✓ 🐛 \u{2028} </script>", "\t\u{1}"].iter().enumerate()
            {
                let input = json!({ "input": { "projectId": web, "title": format!("Issue \"{n}\""),
                    "description": description, "assignedTo": if n % 2 == 0 { Value::from(bob.id.clone()) } else { Value::Null } } });
                let data = app.data(token, "mutation($input: CreateIssueInput!) { createIssue(input: $input) { issue { id } } }", input).await;
                ids.push(data["createIssue"]["issue"]["id"].as_str().unwrap().to_owned());
            }
            let close = json!({ "input": { "id": ids[1], "status": "CLOSED", "kind": "BUG" } });
            app.data(token, "mutation($input: UpdateIssueInput!) { updateIssue(input: $input) { issue { id } } }", close)
                .await;
            let public = app.create_issue(&eve, "Eve's own", Some(&eve.id)).await;
            let trashed = app.create_issue(&ada, "Trashed", None).await;
            let delete = json!({ "input": { "id": trashed } });
            app.data(token, "mutation($input: DeleteIssueInput!) { deleteIssue(input: $input) { deletedIssueId } }", delete)
                .await;

            let same = Same { app, executor };
            let mut direct = 0;
            // Each case: the session, the document, its variables, and whether the plan
            // answers it (from the document's second request on: the first keeps it).
            let cases: Vec<(&Session, &str, Value, bool)> = vec![
                (&ada, LIST, json!({ "a": bob.id }), true),
                (&bob, LIST, json!({ "a": bob.id }), true),
                (&eve, LIST, json!({ "a": bob.id }), true),
                (&ada, LIST, json!({ "a": "not an id" }), true),
                (&ada, LIST, json!({ "a": null }), true),
                // An omitted nullable variable is null.
                (&ada, LIST, json!({}), true),
                (&ada, ONE, json!({ "id": ids[1] }), true),
                (&ada, ONE, json!({ "id": 2 }), true),
                (&eve, ONE, json!({ "id": ids[0] }), true),
                (&ada, ONE, json!({ "id": public }), true),
                (&ada, ONE, json!({ "id": "nope" }), true),
                (&ada, PAGES, json!({}), true),
                (&ada, PAGES, json!({ "n": 1, "after": null, "search": "issue" }), true),
                (&ada, LAST, json!({}), true),
                (&ada, TRASH, json!({}), true),
                (&ada, TYPENAME_LAST, json!({}), false),
                (&ada, NULL_FIRST, json!({}), false),
                // A single issue's people are left to the executor.
                (&ada, ONE_WITH_PEOPLE, json!({ "id": ids[1] }), false),
                (&bob, BY_KEY_OR_ID, json!({ "key": "WEB-2" }), true),
                (&ada, BY_KEY_OR_ID, json!({ "id": ids[0], "key": null }), true),
            ];
            let mut kept = HashSet::new();
            for (session, query, variables, planned) in &cases {
                for _ in 0..2 {
                    let body = json!({ "query": query, "variables": variables });
                    if [TYPENAME_LAST, NULL_FIRST].contains(query) {
                        same.check_as_json(Some(session), body).await;
                    } else {
                        same.check(Some(session), body).await;
                    }
                    // A document is kept, with its plan, once it has run.
                    direct += u64::from(!kept.insert(*query) && *planned);
                }
                assert_eq!(app.counter(DIRECT_ANSWERS).await, direct, "{query} with {variables}");
            }

            // Kept documents whose request the plan leaves to the executor.
            let refused: Vec<(Option<&Session>, &str, Value)> = vec![
                (Some(&ada), ONE_WITH_PEOPLE, json!({ "id": ids[0] })),
                (None, LIST, json!({ "a": bob.id })),
                (None, ONE, json!({ "id": "nope" })),
                (Some(&ada), ONE, json!({ "id": true })),
                (Some(&ada), ONE, json!({ "id": 1.5 })),
                // A non-null variable left out.
                (Some(&ada), ONE, json!({})),
                (Some(&ada), LIST, json!({ "a": ["1"] })),
                (Some(&ada), PAGES, json!({ "n": 3_000_000_000_u64 })),
                (Some(&ada), PAGES, json!({ "n": 500, "after": null, "search": null })),
                (Some(&ada), PAGES, json!({ "after": "not a cursor", "search": null })),
                (Some(&ada), PAGES, json!({ "after": null, "search": "x".repeat(300) })),
                (Some(&ada), BY_KEY_OR_ID, json!({ "id": ids[0], "key": "WEB-1" })),
                (Some(&ada), BY_KEY_OR_ID, json!({ "id": null, "key": "K".repeat(40) })),
                (Some(&ada), EMAILS, json!({})),
                (Some(&ada), EMAILS, json!({})),
            ];
            for (session, query, variables) in refused {
                same.check(session, json!({ "query": query, "variables": variables })).await;
                assert_eq!(app.counter(DIRECT_ANSWERS).await, direct, "{query} with {variables}");
            }

            // A token that does not verify, and another operation's name.
            let forged = Session { access_token: "v4.local.forged".to_owned(), ..ada.clone() };
            same.check(Some(&forged), json!({ "query": LIST, "variables": { "a": bob.id } })).await;
            same.check(Some(&ada), json!({ "query": PAGES, "operationName": "Other" })).await;
            assert_eq!(app.counter(DIRECT_ANSWERS).await, direct);

            // A batch mixes planned answers with the executor's.
            let batch = json!([
                { "query": LIST, "variables": { "a": bob.id } },
                { "query": EMAILS },
                { "query": ONE, "variables": { "id": "nope" } },
            ]);
            same.check(Some(&ada), batch).await;
            assert_eq!(app.counter(DIRECT_ANSWERS).await, direct + 2);
        },
    )
    .await;
}

/// Two servers that must answer alike.
struct Same<'a> {
    app: &'a TestApp,
    executor: SocketAddr,
}

impl Same<'_> {
    /// Sends `body` to both; their responses must be the same bytes.
    async fn check(&self, session: Option<&Session>, body: Value) {
        let (direct, executed) = self.send(session, &body).await;
        assert_eq!(direct, executed, "{body}");
    }

    /// Sends `body` to both; their responses must be the same JSON, in any order.
    async fn check_as_json(&self, session: Option<&Session>, body: Value) {
        let (direct, executed) = self.send(session, &body).await;
        let parsed = |text: &str| serde_json::from_str::<Value>(text).unwrap();
        assert_eq!(parsed(&direct), parsed(&executed), "{body}");
    }

    async fn send(&self, session: Option<&Session>, body: &Value) -> (String, String) {
        let token = session.map(|session| session.access_token.as_str());
        let direct = self.app.post_at(self.app.address, token, body).await;
        let executed = self.app.post_at(self.executor, token, body).await;
        (direct, executed)
    }
}
