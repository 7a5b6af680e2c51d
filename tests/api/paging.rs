use std::collections::HashSet;

use serde_json::{Value, json};

use crate::helpers::{Session, TestApp, each_backend, error_code, error_field};

const PAGE: &str = "query($first: Int, $after: String, $last: Int, $before: String, $order: IssueOrder) {
    issues(first: $first, after: $after, last: $last, before: $before, orderBy: $order) {
        totalCount
        edges { cursor node { id createdAt updatedAt } }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }";

async fn page(app: &TestApp, session: &Session, variables: Value) -> Value {
    app.data(Some(&session.access_token), PAGE, variables).await["issues"].clone()
}

fn ids(page: &Value) -> Vec<i64> {
    page["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().parse().unwrap())
        .collect()
}

/// Walks the whole list forwards with `first`, then backwards with `last`, and checks
/// both walks see every issue once, in `expected` order.
async fn walk(app: &TestApp, session: &Session, order: Value, expected: &[i64]) {
    let mut forwards = Vec::new();
    let mut after = Value::Null;
    let mut pages = 0;
    loop {
        let page = page(app, session, json!({ "first": 37, "after": after, "order": order })).await;
        assert_eq!(page["totalCount"], expected.len());
        assert_eq!(page["pageInfo"]["hasPreviousPage"], !after.is_null(), "{order}");
        forwards.extend(ids(&page));
        pages += 1;
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(forwards, expected, "forwards under {order}");
    assert_eq!(pages, expected.len().div_ceil(37));

    let mut backwards = Vec::new();
    let mut before = Value::Null;
    loop {
        let page = page(app, session, json!({ "last": 41, "before": before, "order": order })).await;
        assert_eq!(page["pageInfo"]["hasNextPage"], !before.is_null(), "{order}");
        let mut chunk = ids(&page);
        chunk.extend(backwards);
        backwards = chunk;
        if page["pageInfo"]["hasPreviousPage"] == false {
            break;
        }
        before = page["pageInfo"]["startCursor"].clone();
    }
    assert_eq!(backwards, expected, "backwards under {order}");
}

#[tokio::test]
async fn paging_walks_250_issues_both_ways_under_every_order_without_gaps_or_repeats() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        let mut created = Vec::new();
        for n in 0..250 {
            let id: i64 = app.create_issue(&ada, &format!("Issue {n}"), None).await.parse().unwrap();
            created.push(id);
        }
        // Touch every third issue, oldest last, so updatedAt order differs from createdAt order.
        let update = "mutation($input: UpdateIssueInput!) { updateIssue(input: $input) { issue { id } } }";
        let mut touched: Vec<i64> = created.iter().copied().step_by(3).collect();
        touched.reverse();
        for id in &touched {
            app.data(
                Some(&ada.access_token),
                update,
                json!({ "input": { "id": id.to_string(), "status": "IN_PROGRESS" } }),
            )
            .await;
        }
        let untouched: Vec<i64> = created.iter().copied().filter(|id| !touched.contains(id)).collect();
        let by_updated_asc: Vec<i64> = untouched.iter().chain(touched.iter()).copied().collect();
        let reversed = |ids: &[i64]| ids.iter().rev().copied().collect::<Vec<_>>();

        walk(app, &ada, json!({ "field": "CREATED_AT", "direction": "ASC" }), &created).await;
        walk(app, &ada, json!({ "field": "CREATED_AT", "direction": "DESC" }), &reversed(&created)).await;
        walk(app, &ada, json!(null), &reversed(&created)).await;
        walk(app, &ada, json!({ "field": "UPDATED_AT", "direction": "ASC" }), &by_updated_asc).await;
        walk(app, &ada, json!({ "field": "UPDATED_AT", "direction": "DESC" }), &reversed(&by_updated_asc))
            .await;
        assert_eq!(created.iter().collect::<HashSet<_>>().len(), 250);
    })
    .await;
}

#[tokio::test]
async fn pages_default_to_20_and_first_or_last_above_100_is_bad_input() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        for n in 0..25 {
            app.create_issue(&ada, &format!("Issue {n}"), None).await;
        }
        let default = page(app, &ada, json!({})).await;
        assert_eq!(ids(&default).len(), 20);
        assert_eq!(default["pageInfo"]["hasNextPage"], true);
        assert_eq!(ids(&page(app, &ada, json!({ "first": 100 })).await).len(), 25);
        assert_eq!(ids(&page(app, &ada, json!({ "first": 0 })).await).len(), 0);

        for (variables, field) in [
            (json!({ "first": 101 }), "first"),
            (json!({ "last": 101 }), "last"),
            (json!({ "first": -1 }), "first"),
            (json!({ "after": "not a cursor" }), "after"),
            (json!({ "before": "bm90OmE6Yg" }), "before"),
        ] {
            let response = app.graphql(Some(&ada.access_token), PAGE, variables.clone()).await;
            assert_eq!(error_code(&response), "BAD_USER_INPUT", "{variables}");
            assert_eq!(error_field(&response), field, "{variables}");
        }

        // A cursor from one order is not accepted by another.
        let by_created = page(app, &ada, json!({ "first": 1 })).await;
        let cursor = by_created["pageInfo"]["endCursor"].clone();
        let response = app
            .graphql(
                Some(&ada.access_token),
                PAGE,
                json!({ "after": cursor, "order": { "field": "UPDATED_AT", "direction": "DESC" } }),
            )
            .await;
        assert_eq!(error_code(&response), "BAD_USER_INPUT");
    })
    .await;
}

#[tokio::test]
async fn a_page_with_creators_and_assignees_costs_one_statement_whatever_its_size() {
    each_backend(async |app| {
        let mut people = Vec::new();
        for n in 0..10 {
            people.push(app.register(&format!("user{n}")).await);
        }
        for n in 0..120 {
            let creator = &people[n % people.len()];
            let assignee = &people[(n * 7 + 3) % people.len()];
            app.create_issue(creator, &format!("Issue {n}"), Some(&assignee.id)).await;
        }
        let query = "query($first: Int, $assignee: ID) {
            issues(first: $first, filter: { assignedTo: $assignee }) {
                totalCount nodes { id title status createdAt createdBy { username } assignedTo { username } } } }";
        let token = Some(people[0].access_token.as_str());
        let mut costs = Vec::new();
        for (first, assignee) in [(1, None), (20, None), (100, None), (20, Some(people[3].id.clone()))] {
            let before = app.sql_statements().await;
            let data = app.data(token, query, json!({ "first": first, "assignee": assignee })).await;
            let after = app.sql_statements().await;
            let nodes = data["issues"]["nodes"].as_array().unwrap();
            assert!(nodes.iter().all(|n| n["createdBy"]["username"].is_string() && n["assignedTo"]["username"].is_string()));
            costs.push(after - before);
        }
        assert!(costs.iter().all(|&cost| cost == costs[0]), "statements per page size 1, 20, 100: {costs:?}");
        assert_eq!(costs[0], 1, "a page, its total and its people are one statement: {costs:?}");
    })
    .await;
}
