use serde_json::{Value, json};

use crate::helpers::{TestApp, each_backend, error_code};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

async fn post(app: &TestApp, accept: Option<&str>, body: String) -> (u16, String, Value) {
    let mut request =
        app.client.post(app.url("/graphql")).header("content-type", "application/json").body(body);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    (status, content_type, response.json().await.unwrap())
}

#[tokio::test]
async fn health_and_readiness_answer() {
    each_backend(async |app| {
        for path in ["/healthz", "/readyz"] {
            let response = app.client.get(app.url(path)).send().await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
        }
    })
    .await;
}

#[tokio::test]
async fn the_response_type_follows_the_accept_header() {
    each_backend(async |app| {
        let invalid = json!({ "query": "{ me { nope } }" }).to_string();
        let (status, content_type, body) = post(app, Some(GRAPHQL_RESPONSE), invalid.clone()).await;
        assert_eq!((status, content_type.as_str()), (400, GRAPHQL_RESPONSE));
        assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED");
        assert!(body.get("data").is_none(), "a request that never ran has no data: {body}");

        let (status, content_type, body) = post(app, Some("application/json"), invalid).await;
        assert_eq!((status, content_type.as_str()), (200, "application/json"));
        assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED");

        let unparsable = json!({ "query": "{ me { " }).to_string();
        let (status, _, body) = post(app, Some(GRAPHQL_RESPONSE), unparsable).await;
        assert_eq!(status, 400);
        assert_eq!(error_code(&body), "GRAPHQL_PARSE_FAILED");

        // An execution error is still a 200 with data under the new type.
        let unauthenticated = json!({ "query": "{ me { id } }" }).to_string();
        let (status, _, body) = post(app, Some(GRAPHQL_RESPONSE), unauthenticated).await;
        assert_eq!(status, 200);
        assert_eq!(error_code(&body), "UNAUTHENTICATED");
        assert!(body.get("data").is_some());
    })
    .await;
}

#[tokio::test]
async fn malformed_bodies_and_oversized_batches_get_coded_errors() {
    each_backend(async |app| {
        let (status, _, body) = post(app, None, "{ not json".to_owned()).await;
        assert_eq!(status, 400);
        assert_eq!(error_code(&body), "BAD_REQUEST");

        let one = json!({ "query": "{ __typename }" });
        let batch = Value::Array(vec![one.clone(); 11]).to_string();
        let (status, _, body) = post(app, None, batch).await;
        assert_eq!(status, 400);
        assert_eq!(error_code(&body), "BAD_REQUEST");

        let (status, _, body) = post(app, None, Value::Array(vec![one; 2]).to_string()).await;
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!([{ "data": { "__typename": "Query" } }, { "data": { "__typename": "Query" } }])
        );
    })
    .await;
}

#[tokio::test]
async fn a_post_must_say_its_body_is_json() {
    each_backend(async |app| {
        let body = json!({ "query": "{ __typename }" }).to_string();
        let send = async |content_type: Option<&str>| {
            let mut request = app.client.post(app.url("/graphql")).body(body.clone());
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        };

        for refused in [None, Some("text/plain;charset=UTF-8"), Some("application/x-www-form-urlencoded")] {
            let (status, body) = send(refused).await;
            assert_eq!(status, 415, "{refused:?}");
            assert_eq!(error_code(&body), "BAD_REQUEST", "{refused:?}");
        }
        let (status, body) = send(Some("Application/JSON; charset=utf-8")).await;
        assert_eq!(status, 200);
        assert_eq!(body, json!({ "data": { "__typename": "Query" } }));
    })
    .await;
}

#[tokio::test]
async fn a_post_without_a_query_is_a_bad_request() {
    each_backend(async |app| {
        for accept in [None, Some(GRAPHQL_RESPONSE)] {
            let misspelt = json!({ "qeury": "{ __typename }" }).to_string();
            let (status, _, body) = post(app, accept, misspelt).await;
            assert_eq!(status, 400, "{accept:?}");
            assert_eq!(error_code(&body), "BAD_REQUEST", "{accept:?}");

            let batch = json!([{ "query": "{ __typename }" }, { "query": "" }]).to_string();
            let (status, _, body) = post(app, accept, batch).await;
            assert_eq!(status, 400, "{accept:?}");
            assert_eq!(error_code(&body), "BAD_REQUEST", "{accept:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn queries_too_deep_are_refused_with_a_code() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        let mut selection = "id".to_owned();
        for _ in 0..8 {
            selection = format!("createdIssues {{ nodes {{ createdBy {{ {selection} }} }} }}");
        }
        let response =
            app.graphql(Some(&ada.access_token), &format!("{{ me {{ {selection} }} }}"), json!({})).await;
        assert_eq!(error_code(&response), "QUERY_TOO_COMPLEX", "{response}");
        assert_eq!(response["errors"][0]["extensions"]["limit"], 12, "{response}");
        assert!(response["errors"][0]["extensions"]["depth"].as_u64() > Some(12), "{response}");
    })
    .await;
}

#[tokio::test]
async fn get_runs_queries_but_not_mutations() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        let response = app
            .client
            .get(app.url("/graphql"))
            .query(&[("query", "{ me { username } }")])
            .bearer_auth(&ada.access_token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({ "data": { "me": { "username": "ada" } } })
        );

        let mutation = "mutation { logout(input: { refreshToken: \"x\" }) { success } }";
        let response =
            app.client.get(app.url("/graphql")).query(&[("query", mutation)]).send().await.unwrap();
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers()["allow"], "POST");

        let page = app.client.get(app.url("/graphql")).header("accept", "text/html").send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().to_lowercase().contains("graphiql"));
    })
    .await;
}

#[tokio::test]
async fn automatic_persisted_queries_work_over_post_and_get() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        let query = "{ me { username } }";
        let hash = {
            use sha2::Digest as _;
            sha2::Sha256::digest(query.as_bytes()).iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        let extensions = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });
        let post = async |body: Value| -> Value {
            let response = app
                .client
                .post(app.url("/graphql"))
                .bearer_auth(&ada.access_token)
                .json(&body)
                .send()
                .await
                .unwrap();
            response.json().await.unwrap()
        };

        let unknown = post(json!({ "extensions": extensions })).await;
        assert_eq!(error_code(&unknown), "PERSISTED_QUERY_NOT_FOUND");
        assert_eq!(unknown["errors"][0]["message"], "PersistedQueryNotFound");

        let registered = post(json!({ "query": query, "extensions": extensions })).await;
        assert_eq!(registered, json!({ "data": { "me": { "username": "ada" } } }));
        let by_hash = post(json!({ "extensions": extensions })).await;
        assert_eq!(by_hash, json!({ "data": { "me": { "username": "ada" } } }));

        let get = app
            .client
            .get(app.url("/graphql"))
            .query(&[("extensions", extensions.to_string())])
            .bearer_auth(&ada.access_token)
            .send()
            .await
            .unwrap();
        assert_eq!(get.status(), 200);
        assert_eq!(get.json::<Value>().await.unwrap(), json!({ "data": { "me": { "username": "ada" } } }));

        let wrong = post(json!({ "query": "{ me { id } }", "extensions": extensions })).await;
        assert_eq!(error_code(&wrong), "BAD_USER_INPUT");
    })
    .await;
}

#[tokio::test]
async fn browsers_on_an_allowed_origin_may_call_the_api() {
    each_backend(async |app| {
        let preflight = async |origin: &str| {
            app.client
                .request(reqwest::Method::OPTIONS, app.url("/graphql"))
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "authorization, content-type")
                .send()
                .await
                .unwrap()
        };
        let allowed = preflight("https://app.example").await;
        assert_eq!(allowed.headers()["access-control-allow-origin"], "https://app.example");
        let headers = allowed.headers()["access-control-allow-headers"].to_str().unwrap().to_lowercase();
        assert!(headers.contains("authorization") && headers.contains("content-type"), "{headers}");
        let other = preflight("https://evil.example").await;
        assert!(other.headers().get("access-control-allow-origin").is_none());
    })
    .await;
}
