//! What one request may cost: admission, rate budgets, and the bounds of HTTP.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use triage::config::Switch;

use crate::helpers::{TestApp, each_backend, each_backend_with, error_code};

/// POSTs `body` as JSON; the status, the headers and the JSON answer.
async fn post(app: &TestApp, token: Option<&str>, body: Value) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = app.client.post(app.url("/graphql")).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.json().await.unwrap())
}

/// A chain of `levels` fragments, each spreading the next twice: 2^levels fields.
fn doubling_fragments(levels: usize) -> String {
    let mut query = String::from("query { ...F0 }\n");
    for level in 0..levels {
        let next = level + 1;
        query.push_str(&format!("fragment F{level} on Query {{ ...F{next} ...F{next} }}\n"));
    }
    query.push_str(&format!("fragment F{levels} on Query {{ __typename }}\n"));
    query
}

fn error_code_or_none(response: &Value) -> Option<&str> {
    response["errors"][0]["extensions"]["code"].as_str()
}

fn nested_assigned_issues(levels: usize, first: u32) -> String {
    let mut inner = String::from("id");
    for _ in 0..levels {
        inner = format!("assignedIssues(first: {first}) {{ nodes {{ assignedTo {{ {inner} }} }} }}");
    }
    format!("{{ me {{ {inner} }} }}")
}

#[tokio::test]
async fn a_doubling_fragment_chain_is_refused_before_validation() {
    each_backend(async |app| {
        let response = app.graphql(None, &doubling_fragments(40), json!({})).await;
        assert_eq!(error_code(&response), "QUERY_TOO_COMPLEX", "{response}");
        assert_eq!(response["errors"][0]["extensions"]["limit"], 10_000);
        // The server is free for the next caller.
        assert_eq!(app.graphql(None, "{ __typename }", json!({})).await["data"]["__typename"], "Query");
    })
    .await;
}

#[tokio::test]
async fn nested_lists_are_priced_by_their_page_sizes() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        let token = Some(ada.access_token.as_str());
        let before = app.sql_statements().await;
        let response = app.graphql(token, &nested_assigned_issues(4, 10), json!({})).await;
        assert_eq!(error_code(&response), "QUERY_TOO_COMPLEX", "{response}");
        let response = app.graphql(token, &nested_assigned_issues(3, 100), json!({})).await;
        assert_eq!(error_code(&response), "QUERY_TOO_COMPLEX", "{response}");
        let cost = response["errors"][0]["extensions"]["cost"].as_u64().unwrap();
        assert!(cost > 1_000_000, "cost {cost}");
        assert_eq!(response["errors"][0]["extensions"]["limit"], 10_000);
        assert_eq!(app.sql_statements().await, before, "a refused request touches no table");

        let admitted = app.graphql(token, &nested_assigned_issues(2, 10), json!({})).await;
        assert!(admitted.get("errors").is_none(), "{admitted}");
        // A page size from a variable counts as much as one written out.
        let query = "query($n: Int) { me { assignedIssues(first: $n) { nodes { assignedTo {
            assignedIssues(first: $n) { nodes { assignedTo { assignedIssues(first: $n) { nodes { id } } } } } } } } } }";
        let response = app.graphql(token, query, json!({ "n": 100 })).await;
        assert_eq!(error_code(&response), "QUERY_TOO_COMPLEX", "{response}");
    })
    .await;
}

#[tokio::test]
async fn aliased_mutations_are_capped_per_request() {
    each_backend(async |app| {
        let ada = app.register("ada").await;
        let token = Some(ada.access_token.as_str());
        let aliases = |n: usize| {
            let fields: String = (0..n)
                .map(|i| format!("i{i}: createIssue(input: {{ title: \"t{i}\" }}) {{ issue {{ id }} }}\n"))
                .collect();
            format!("mutation {{ {fields} }}")
        };
        let response = app.graphql(token, &aliases(21), json!({})).await;
        assert_eq!(error_code(&response), "QUERY_TOO_COMPLEX", "{response}");
        assert_eq!(response["errors"][0]["extensions"]["rootFields"], 21);
        let issues = app.data(token, "{ issues { totalCount } }", json!({})).await;
        assert_eq!(issues["issues"]["totalCount"], 0, "nothing of a refused request ran");

        assert!(app.graphql(token, &aliases(20), json!({})).await.get("errors").is_none());

        // A batch is one request: two operations of 15 fields are 30.
        let batch = json!([{ "query": aliases(15) }, { "query": aliases(15) }]);
        let (_, _, body) = post(app, token, batch).await;
        assert_eq!(body[0]["errors"][0]["extensions"]["code"], "QUERY_TOO_COMPLEX", "{body}");
        assert_eq!(body[1]["errors"][0]["extensions"]["code"], "QUERY_TOO_COMPLEX", "{body}");
    })
    .await;
}

#[tokio::test]
async fn one_credential_mutation_per_request() {
    each_backend(async |app| {
        app.register("ada").await;
        let login = r#"login(input: { username: "ada", password: "wrong password" }) { accessToken }"#;
        let response = app.graphql(None, &format!("mutation {{ a: {login} b: {login} }}"), json!({})).await;
        assert_eq!(error_code(&response), "QUERY_TOO_COMPLEX", "{response}");

        let single = json!({ "query": format!("mutation {{ {login} }}") });
        let (_, _, body) = post(app, None, json!([single, single])).await;
        assert_eq!(body[0]["errors"][0]["extensions"]["code"], "QUERY_TOO_COMPLEX", "{body}");

        let password_change = "mutation($input: UpdateMeInput!) { a: updateMe(input: $input) { user { id } }
            b: updateMe(input: $input) { user { id } } }";
        let input = json!({ "input": { "password": "a new password", "currentPassword": "x" } });
        let response = app.graphql(None, password_change, input).await;
        assert_eq!(error_code(&response), "QUERY_TOO_COMPLEX", "{response}");
    })
    .await;
}

#[tokio::test]
async fn a_response_carries_at_most_fifty_errors() {
    each_backend(async |app| {
        let fields: String = (0..200).map(|i| format!("f{i}: nope{i} ")).collect();
        let response = app.graphql(None, &format!("{{ {fields} }}"), json!({})).await;
        assert_eq!(response["errors"].as_array().map(Vec::len), Some(50), "{response}");
    })
    .await;
}

#[tokio::test]
async fn the_standard_introspection_query_is_admitted() {
    each_backend(async |app| {
        let response =
            app.graphql(None, triage::graphql::admission::STANDARD_INTROSPECTION_QUERY, json!({})).await;
        assert!(response.get("errors").is_none(), "{response}");
        assert_eq!(response["data"]["__schema"]["queryType"]["name"], "Query");
    })
    .await;
}

#[tokio::test]
async fn introspection_can_be_turned_off_with_its_suggestions() {
    each_backend_with(
        |config| config.introspection = false,
        async |app: &mut TestApp| {
            let response = app.graphql(None, "{ __schema { types { name } } }", json!({})).await;
            assert_eq!(error_code(&response), "GRAPHQL_VALIDATION_FAILED", "{response}");
            let response = app.graphql(None, "{ rateLimi }", json!({})).await;
            let message = response["errors"][0]["message"].as_str().unwrap();
            assert!(!message.contains("Did you mean"), "{message}");
            assert_eq!(app.graphql(None, "{ __typename }", json!({})).await["data"]["__typename"], "Query");
        },
    )
    .await;
}

#[tokio::test]
async fn the_rate_budget_is_reported_and_enforced() {
    each_backend_with(
        |config| {
            config.rate_limit = Switch::On;
            config.rate_limit_anonymous_points = 8;
            config.rate_limit_points = 100;
        },
        async |app: &mut TestApp| {
            // A mutation costs 5 points: 3 are left to this address.
            let ada = app.register("ada").await;
            let query = json!({ "query": "{ rateLimit { limit cost remaining used resetAt } }" });
            let (status, headers, body) = post(app, None, query.clone()).await;
            assert_eq!(status, 200);
            let budget = &body["data"]["rateLimit"];
            assert_eq!(
                (&budget["limit"], &budget["cost"], &budget["used"]),
                (&json!(8), &json!(1), &json!(6))
            );
            assert_eq!(budget["remaining"], 2);
            assert!(budget["resetAt"].is_string());
            assert_eq!(headers["x-ratelimit-limit"], "8");
            assert_eq!(headers["x-ratelimit-used"], "6");
            assert_eq!(headers["x-ratelimit-remaining"], "2");
            assert!(headers.contains_key("x-ratelimit-reset"));

            post(app, None, query.clone()).await;
            post(app, None, query.clone()).await;
            let (status, headers, body) = post(app, None, query.clone()).await;
            assert_eq!(status, 429, "{body}");
            assert_eq!(error_code(&body), "RATE_LIMITED");
            let retry_after = body["errors"][0]["extensions"]["retryAfter"].as_u64().unwrap();
            assert!((1..=3600).contains(&retry_after), "{retry_after}");
            assert_eq!(headers["retry-after"], retry_after.to_string().as_str());

            // A signed-in caller spends a budget of their own.
            let (status, _, body) = post(app, Some(&ada.access_token), query).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["data"]["rateLimit"]["limit"], 100);
            assert_eq!(body["data"]["rateLimit"]["used"], 1);
        },
    )
    .await;
}

#[tokio::test]
async fn a_refused_request_spends_a_point_so_a_flood_of_them_runs_dry() {
    each_backend_with(
        |config| {
            config.rate_limit = Switch::On;
            config.rate_limit_anonymous_points = 3;
        },
        async |app: &mut TestApp| {
            let hostile = json!({ "query": doubling_fragments(40) });
            for used in 1..=3 {
                let (status, headers, body) = post(app, None, hostile.clone()).await;
                assert_eq!((status, error_code(&body)), (200, "QUERY_TOO_COMPLEX"), "{body}");
                assert_eq!(headers["x-ratelimit-used"], used.to_string().as_str());
            }
            let (status, _, body) = post(app, None, hostile).await;
            assert_eq!((status, error_code(&body)), (429, "RATE_LIMITED"), "{body}");
        },
    )
    .await;
}

#[tokio::test]
async fn forwarded_addresses_count_only_behind_trusted_proxies() {
    each_backend_with(
        |config| {
            config.rate_limit = Switch::On;
            config.rate_limit_anonymous_points = 1;
            config.trusted_proxies = vec!["127.0.0.1".to_owned()];
        },
        async |app: &mut TestApp| {
            let ask = async |forwarded: &str| {
                let response = app
                    .client
                    .post(app.url("/graphql"))
                    .header("x-forwarded-for", forwarded)
                    .json(&json!({ "query": "{ __typename }" }))
                    .send()
                    .await
                    .unwrap();
                response.status().as_u16()
            };
            assert_eq!(ask("198.51.100.1").await, 200);
            assert_eq!(ask("198.51.100.1").await, 429);
            assert_eq!(ask("198.51.100.2").await, 200, "another client behind the proxy");
        },
    )
    .await;
}

#[tokio::test]
async fn responses_say_not_to_cache_or_sniff_and_graphiql_has_a_policy() {
    each_backend(async |app| {
        let (_, headers, _) = post(app, None, json!({ "query": "{ __typename }" })).await;
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let page = app.client.get(app.url("/graphql")).header("accept", "text/html").send().await.unwrap();
        let policy = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert!(
            policy.contains("default-src 'none'") && policy.contains("frame-ancestors 'none'"),
            "{policy}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    each_backend_with(
        |config| config.header_timeout = Duration::from_millis(300),
        async |app: &mut TestApp| {
            let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
            stream.write_all(b"POST /graphql HTTP/1.1\r\nHost: x\r\n").await.unwrap();
            let mut buffer = Vec::new();
            let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buffer)).await;
            assert!(read.is_ok(), "the server closed the connection");
            // Meanwhile and after, everyone else is served.
            assert_eq!(app.client.get(app.url("/healthz")).send().await.unwrap().status(), 200);
        },
    )
    .await;
}

#[tokio::test]
async fn a_body_that_never_arrives_times_out() {
    each_backend_with(
        |config| config.request_timeout = Duration::from_millis(300),
        async |app: &mut TestApp| {
            let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
            let head = "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{";
            stream.write_all(head.as_bytes()).await.unwrap();
            let mut buffer = vec![0; 1024];
            let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await;
            let read = read.expect("an answer before the test's patience").unwrap();
            let answer = String::from_utf8_lossy(&buffer[..read]).into_owned();
            assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        },
    )
    .await;
}

#[tokio::test]
async fn many_slow_clients_do_not_starve_the_rest() {
    each_backend_with(
        |config| config.header_timeout = Duration::from_secs(30),
        async |app: &mut TestApp| {
            let ada = app.register("ada").await;
            let mut slow = Vec::new();
            for _ in 0..500 {
                let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
                stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
                slow.push(stream);
            }
            let healthz = app.client.get(app.url("/healthz")).timeout(Duration::from_secs(5)).send().await;
            assert_eq!(healthz.unwrap().status(), 200);
            let me = app.data(Some(&ada.access_token), "{ me { username } }", json!({})).await;
            assert_eq!(me["me"]["username"], "ada");
        },
    )
    .await;
}

mod sockets {
    use super::*;
    use crate::ws::WsClient;

    const CREATE: &str = "mutation { createIssue(input: { title: \"over the socket\" }) { issue { id } } }";
    const EVENTS: &str = "subscription { issueEvents { kind } }";

    #[tokio::test]
    async fn an_operation_after_the_token_expired_is_refused_and_the_socket_closed() {
        each_backend_with(
            |config| config.access_token_ttl = Duration::from_secs(2),
            async |app: &mut TestApp| {
                let ada = app.register("ada").await;
                let mut socket = WsClient::connect(app.address, &ada.access_token).await;
                socket.subscribe("1", CREATE, json!({})).await;
                let first = socket.next_payload().await.expect("the mutation's result");
                assert!(first.get("errors").is_none(), "{first}");
                // The token was backdated a few seconds and lives two: wait it out.
                tokio::time::sleep(Duration::from_secs(3)).await;
                let mut closed = None;
                socket.subscribe("2", CREATE, json!({})).await;
                while closed.is_none() {
                    match socket.next().await {
                        Ok(message) if message["type"] == "next" => {
                            assert_eq!(
                                message["payload"]["errors"][0]["extensions"]["code"],
                                "UNAUTHENTICATED"
                            );
                        }
                        Ok(_) => {}
                        Err(code) => closed = Some(code),
                    }
                }
                assert_eq!(closed, Some(4403));
                let issues = app
                    .data(
                        Some(&app.register("bob").await.access_token),
                        "{ issues { totalCount } }",
                        json!({}),
                    )
                    .await;
                assert_eq!(issues["issues"]["totalCount"], 1, "the second createIssue never ran");
            },
        )
        .await;
    }

    #[tokio::test]
    async fn a_socket_that_never_initialises_is_closed_with_4408() {
        each_backend_with(
            |config| config.ws_init_timeout = Duration::from_millis(300),
            async |app: &mut TestApp| {
                let mut socket = WsClient::open_silent(app.address).await;
                assert_eq!(socket.next().await, Err(4408));
            },
        )
        .await;
    }

    #[tokio::test]
    async fn a_socket_runs_a_bounded_number_of_subscriptions() {
        each_backend_with(
            |config| config.ws_max_subscriptions = 2,
            async |app: &mut TestApp| {
                let ada = app.register("ada").await;
                let mut socket = WsClient::connect(app.address, &ada.access_token).await;
                socket.subscribe("1", EVENTS, json!({})).await;
                socket.subscribe("2", EVENTS, json!({})).await;
                app.subscribed(2).await;
                socket.subscribe("3", EVENTS, json!({})).await;
                let refused = socket.next().await.expect("an answer to the third");
                assert_eq!(refused["id"], "3", "{refused}");
                assert_eq!(refused["payload"]["errors"][0]["extensions"]["code"], "TOO_MANY_SUBSCRIPTIONS");
                // Stopping one makes room.
                socket.send(json!({ "id": "1", "type": "complete" })).await;
                app.subscribed(1).await;
                socket.subscribe("4", EVENTS, json!({})).await;
                app.subscribed(2).await;
                app.create_issue(&ada, "seen by 2 and 4", None).await;
                let mut seen = Vec::new();
                while seen.len() < 2 {
                    let message = socket.next().await.expect("a message");
                    if message["type"] == "next" {
                        assert!(message["payload"].get("errors").is_none(), "{message}");
                        seen.push(message["id"].as_str().unwrap().to_owned());
                    }
                }
                seen.sort();
                assert_eq!(seen, ["2", "4"]);
            },
        )
        .await;
    }

    #[tokio::test]
    async fn socket_operations_pass_admission() {
        each_backend(async |app| {
            let ada = app.register("ada").await;
            let mut socket = WsClient::connect(app.address, &ada.access_token).await;
            socket.subscribe("1", &doubling_fragments(40), json!({})).await;
            let refused = socket.next_payload().await.expect("an error");
            assert_eq!(refused["errors"][0]["extensions"]["code"], "QUERY_TOO_COMPLEX", "{refused}");
        })
        .await;
    }

    #[tokio::test]
    async fn an_oversized_message_closes_the_socket() {
        each_backend(async |app| {
            let ada = app.register("ada").await;
            let mut socket = WsClient::connect(app.address, &ada.access_token).await;
            socket.send_bytes(2 * 1024 * 1024).await;
            assert!(socket.ended().await, "the server ends the connection");
        })
        .await;
    }
}

#[tokio::test]
async fn an_operation_past_the_request_timeout_is_cancelled_and_rolled_back() {
    each_backend_with(
        |config| config.request_timeout = Duration::from_millis(500),
        async |app: &mut TestApp| {
            let ada = app.register("ada").await;
            let db = sea_orm::Database::connect(app.config.database.database_url.expose()).await.unwrap();
            // A trigger that keeps the insert of one title busy for a few times the
            // timeout, after the issue row is written (3M rows take SQLite about 1.5 s
            // optimised and 3 s in a debug build).
            let slow = if app.config.database.is_sqlite() {
                vec![
                    "CREATE TRIGGER slow AFTER INSERT ON issues WHEN NEW.title = 'Slow' BEGIN \
                     SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
                     WHERE x < 3000000) SELECT x FROM c); END",
                ]
            } else {
                vec![
                    "CREATE FUNCTION slow() RETURNS trigger AS $$ BEGIN \
                     IF NEW.title = 'Slow' THEN PERFORM pg_sleep(3); END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
                    "CREATE TRIGGER slow AFTER INSERT ON issues FOR EACH ROW EXECUTE FUNCTION slow()",
                ]
            };
            for statement in slow {
                sea_orm::ConnectionTrait::execute_unprepared(&db, statement).await.unwrap();
            }
            let token = Some(ada.access_token.as_str());
            let create = "mutation($input: CreateIssueInput!) { createIssue(input: $input) { issue { id } } }";
            let response = app.graphql(token, create, json!({ "input": { "title": "Slow" } })).await;
            assert_eq!(error_code(&response), "TIMEOUT", "{response}");
            // Writes go on once the cancelled one has let go (SQLite finishes the
            // statement it was in before it rolls back), and it left nothing.
            let quick = json!({ "input": { "title": "Quick" } });
            let mut attempts = 0;
            while error_code_or_none(&app.graphql(token, create, quick.clone()).await) == Some("TIMEOUT") {
                attempts += 1;
                assert!(attempts < 40, "writes never resumed");
            }
            // The slow one left nothing, and the quick one is there once: one that ran
            // out of time was cancelled before its commit, or was let finish it.
            let issues = app.data(token, "{ issues { nodes { title } } }", json!({})).await;
            let titles: Vec<&str> =
                issues["issues"]["nodes"].as_array().unwrap().iter().map(|n| n["title"].as_str().unwrap()).collect();
            assert_eq!(titles, ["Quick"]);
        },
    )
    .await;
}

#[tokio::test]
async fn a_mutation_whose_commit_outlasts_the_request_timeout_is_answered_with_what_it_did_and_a_request_waits_no_longer()
 {
    each_backend_with(
        |config| {
            config.request_timeout = Duration::from_secs(1);
            config.max_concurrent_requests = 1;
        },
        async |app: &mut TestApp| {
            // Only PostgreSQL can make a COMMIT itself slow: a deferred constraint
            // trigger runs at COMMIT. It outlasts the timeout, not the time one more
            // gives it to finish.
            if app.config.database.is_sqlite() {
                return;
            }
            let ada = app.register("ada").await;
            let db = sea_orm::Database::connect(app.config.database.database_url.expose()).await.unwrap();
            for statement in [
                "CREATE FUNCTION slow_commit() RETURNS trigger AS $$ BEGIN \
                 IF NEW.title = 'Slow commit' THEN PERFORM pg_sleep(1.5); END IF; RETURN NEW; END $$ \
                 LANGUAGE plpgsql",
                "CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON issues DEFERRABLE INITIALLY DEFERRED \
                 FOR EACH ROW EXECUTE FUNCTION slow_commit()",
            ] {
                sea_orm::ConnectionTrait::execute_unprepared(&db, statement).await.unwrap();
            }
            let token = Some(ada.access_token.as_str());
            let create =
                "mutation($input: CreateIssueInput!) { createIssue(input: $input) { issue { title } } }";
            let response = app.graphql(token, create, json!({ "input": { "title": "Slow commit" } })).await;
            assert_eq!(response["data"]["createIssue"]["issue"]["title"], "Slow commit", "{response}");
            let issues = app.data(token, "{ issues { totalCount } }", json!({})).await;
            assert_eq!(issues["issues"]["totalCount"], 1);
        },
    )
    .await;
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_refused_and_one_cut_short_is_bad_request() {
    each_backend(async |app| {
        // No declared length: the limit is met while the body streams in.
        let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
        let head = "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                    Transfer-Encoding: chunked\r\n\r\n";
        stream.write_all(head.as_bytes()).await.unwrap();
        let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "x".repeat(64 * 1024));
        let mut answer = Vec::new();
        for _ in 0..40 {
            if stream.write_all(chunk.as_bytes()).await.is_err() {
                break;
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer).into_owned();
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        // A chunk that says it is longer than what follows before the stream ends.
        let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
        stream.write_all(format!("{head}ff\r\n{{\"query\"").as_bytes()).await.unwrap();
        stream.shutdown().await.unwrap();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer).into_owned();
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    })
    .await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_before_it_is_read() {
    each_backend(async |app| {
        let padding = "x".repeat(2 * 1024 * 1024);
        let body = json!({ "query": "{ __typename }", "padding": padding });
        let response = app.client.post(app.url("/graphql")).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 413);
        assert_eq!(app.graphql(None, "{ __typename }", json!({})).await["data"]["__typename"], "Query");
    })
    .await;
}

#[tokio::test]
async fn a_chain_ending_in_an_unknown_fragment_is_refused_too() {
    each_backend(async |app| {
        let mut query = doubling_fragments(30);
        query = query.replace("fragment F30 on Query { __typename }", "fragment F30 on Query { ...Nope }");
        let response = app.graphql(None, &query, json!({})).await;
        assert_eq!(error_code(&response), "GRAPHQL_VALIDATION_FAILED", "{response}");
    })
    .await;
}

#[tokio::test]
async fn fragments_still_work_with_introspection_off() {
    each_backend_with(
        |config| config.introspection = false,
        async |app: &mut TestApp| {
            let ada = app.register("ada").await;
            let query = "query { ...Me } fragment Me on Query { me { username } }";
            let data = app.data(Some(&ada.access_token), query, json!({})).await;
            assert_eq!(data["me"]["username"], "ada");
        },
    )
    .await;
}

#[tokio::test]
async fn the_budget_is_reported_over_a_websocket_too() {
    each_backend_with(
        |config| config.rate_limit = Switch::On,
        async |app: &mut TestApp| {
            let ada = app.register("ada").await;
            let mut socket = crate::ws::WsClient::connect(app.address, &ada.access_token).await;
            socket.subscribe("1", "{ rateLimit { limit used } }", json!({})).await;
            let payload = socket.next_payload().await.expect("a result");
            assert_eq!(payload["data"]["rateLimit"]["limit"], 20_000, "{payload}");
            assert_eq!(payload["data"]["rateLimit"]["used"], 1, "{payload}");
        },
    )
    .await;
}

#[tokio::test]
async fn a_request_that_is_not_graphql_reports_the_budget_too() {
    each_backend_with(
        |config| config.rate_limit = Switch::On,
        async |app: &mut TestApp| {
            let response = app.client.post(app.url("/graphql")).body("{}").send().await.unwrap();
            assert_eq!(response.status(), 415);
            assert_eq!(response.headers()["x-ratelimit-used"], "1");
            let response = app.client.get(app.url("/graphql")).query(&[("nope", "1")]).send().await.unwrap();
            assert_eq!(response.status(), 400);
            assert_eq!(response.headers()["x-ratelimit-used"], "2");
        },
    )
    .await;
}

#[tokio::test]
async fn a_query_waits_for_a_turn_and_a_mutation_does_not() {
    each_backend_with(
        |config| config.max_concurrent_queries = Some(1),
        async |app: &mut TestApp| {
            // Only PostgreSQL can hold a query inside the database: it waits on a lock
            // another connection holds on `issues`.
            if app.config.database.is_sqlite() {
                return;
            }
            let ada = app.register("ada").await;
            let token = Some(ada.access_token.as_str());
            let db = sea_orm::Database::connect(app.config.database.database_url.expose()).await.unwrap();
            let lock = sea_orm::TransactionTrait::begin(&db).await.unwrap();
            sea_orm::ConnectionTrait::execute_unprepared(&lock, "LOCK TABLE issues IN ACCESS EXCLUSIVE MODE")
                .await
                .unwrap();
            let second_done = std::sync::atomic::AtomicBool::new(false);
            let held = app.graphql(token, "{ issues { totalCount } }", json!({}));
            let waiting = async {
                a_query_waits_on_a_lock(&db).await;
                let me = app.graphql(token, "{ me { username } }", json!({})).await;
                second_done.store(true, std::sync::atomic::Ordering::SeqCst);
                me
            };
            let unblock = async {
                a_query_waits_on_a_lock(&db).await;
                let mutation = "mutation { updateMe(input: { firstName: \"Ada\" }) { user { firstName } } }";
                let updated = app.data(token, mutation, json!({})).await;
                assert_eq!(updated["updateMe"]["user"]["firstName"], "Ada");
                // The mutation needed no turn; the query touching no locked table
                // still waits for the one the locked query holds.
                tokio::time::sleep(Duration::from_millis(300)).await;
                assert!(
                    !second_done.load(std::sync::atomic::Ordering::SeqCst),
                    "the second query had no turn to run"
                );
                lock.commit().await.unwrap();
            };
            let (held, waiting, ()) = tokio::join!(held, waiting, unblock);
            assert_eq!(held["data"]["issues"]["totalCount"], 0, "{held}");
            assert_eq!(waiting["data"]["me"]["username"], "ada", "{waiting}");
        },
    )
    .await;
}

/// Returns once a statement of this test's PostgreSQL database waits on a lock.
async fn a_query_waits_on_a_lock(db: &sea_orm::DatabaseConnection) {
    let sql =
        "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()";
    for _ in 0..400 {
        let statement = sea_orm::Statement::from_string(sea_orm::DbBackend::Postgres, sql);
        if sea_orm::ConnectionTrait::query_one_raw(db, statement).await.unwrap().is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no statement waited on the lock");
}
