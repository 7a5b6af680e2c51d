//! The sign-in gate, walked over the schema itself: every root field off the public
//! list answers `UNAUTHENTICATED` to a caller without a valid token, so a field added
//! tomorrow is covered without a test of its own.

use serde_json::{Map, Value, json};
use triage::graphql::PUBLIC_FIELDS;

use crate::{
    helpers::{TestApp, each_backend},
    ws::WsClient,
};

const TYPE_REF: &str =
    "kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } }";

/// The schema's roots and types, by introspection.
async fn schema(app: &TestApp) -> Value {
    let query = format!(
        "{{ __schema {{
            queryType {{ name }} mutationType {{ name }} subscriptionType {{ name }}
            types {{
                name kind enumValues {{ name }}
                fields {{ name type {{ {TYPE_REF} }} args {{ name type {{ {TYPE_REF} }} }} }}
                inputFields {{ name type {{ {TYPE_REF} }} }}
            }}
        }} }}"
    );
    app.data(None, &query, json!({})).await["__schema"].clone()
}

fn named<'a>(schema: &'a Value, name: &str) -> &'a Value {
    schema["types"].as_array().unwrap().iter().find(|t| t["name"] == name).unwrap()
}

/// A type reference as GraphQL spells it in a variable definition.
fn spelled(ty: &Value) -> String {
    match ty["kind"].as_str().unwrap() {
        "NON_NULL" => format!("{}!", spelled(&ty["ofType"])),
        "LIST" => format!("[{}]", spelled(&ty["ofType"])),
        _ => ty["name"].as_str().unwrap().to_owned(),
    }
}

/// The named type under the list and non-null wrappers.
fn innermost(ty: &Value) -> &Value {
    if ty["ofType"].is_object() { innermost(&ty["ofType"]) } else { ty }
}

/// A value of type `ty` that passes validation, with every required input field set.
fn sample(schema: &Value, ty: &Value) -> Value {
    match ty["kind"].as_str().unwrap() {
        "NON_NULL" => sample(schema, &ty["ofType"]),
        "LIST" => json!([sample(schema, &ty["ofType"])]),
        "ENUM" => named(schema, ty["name"].as_str().unwrap())["enumValues"][0]["name"].clone(),
        "INPUT_OBJECT" => {
            let input = named(schema, ty["name"].as_str().unwrap());
            let fields = input["inputFields"].as_array().unwrap();
            let required = fields.iter().filter(|field| field["type"]["kind"] == "NON_NULL");
            let object: Map<String, Value> = required
                .map(|field| (field["name"].as_str().unwrap().to_owned(), sample(schema, &field["type"])))
                .collect();
            Value::Object(object)
        }
        _ => match ty["name"].as_str().unwrap() {
            "Int" => json!(1),
            "Float" => json!(1.5),
            "Boolean" => json!(true),
            "ID" => json!("1"),
            "DateTime" => json!("2026-01-01T00:00:00Z"),
            _ => json!("x"),
        },
    }
}

/// An operation calling root field `field` of an `operation` with its required
/// arguments as variables; selects `__typename` of an object result.
fn call(schema: &Value, operation: &str, field: &Value) -> (String, Value) {
    let name = field["name"].as_str().unwrap();
    let mut definitions = Vec::new();
    let mut arguments = Vec::new();
    let mut variables = Map::new();
    for arg in field["args"].as_array().unwrap().iter().filter(|arg| arg["type"]["kind"] == "NON_NULL") {
        let arg_name = arg["name"].as_str().unwrap();
        definitions.push(format!("${arg_name}: {}", spelled(&arg["type"])));
        arguments.push(format!("{arg_name}: ${arg_name}"));
        variables.insert(arg_name.to_owned(), sample(schema, &arg["type"]));
    }
    let selection = match innermost(&field["type"])["kind"].as_str().unwrap() {
        "OBJECT" | "INTERFACE" | "UNION" => " { __typename }",
        _ => "",
    };
    let definitions =
        if definitions.is_empty() { String::new() } else { format!("({})", definitions.join(", ")) };
    let arguments = if arguments.is_empty() { String::new() } else { format!("({})", arguments.join(", ")) };
    (format!("{operation}{definitions} {{ {name}{arguments}{selection} }}"), Value::Object(variables))
}

/// The fields of the root type `root` names (`queryType`, ...).
fn root_fields<'a>(schema: &'a Value, root: &str) -> &'a [Value] {
    named(schema, schema[root]["name"].as_str().unwrap())["fields"].as_array().unwrap()
}

#[tokio::test]
async fn every_root_field_off_the_public_list_needs_a_signed_in_caller() {
    each_backend(async |app| {
        let schema = schema(app).await;
        let mut checked = 0;
        for (root, operation) in [("queryType", "query"), ("mutationType", "mutation")] {
            for field in root_fields(&schema, root) {
                let name = field["name"].as_str().unwrap();
                if PUBLIC_FIELDS.contains(&name) {
                    continue;
                }
                let (document, variables) = call(&schema, operation, field);
                for token in [None, Some("not-a-token")] {
                    let response = app.graphql(token, &document, variables.clone()).await;
                    let errors =
                        response["errors"].as_array().unwrap_or_else(|| panic!("{document}: {response}"));
                    let refused = errors.iter().any(|error| {
                        error["path"] == json!([name]) && error["extensions"]["code"] == "UNAUTHENTICATED"
                    });
                    assert!(refused, "{document} with token {token:?} answered {response}");
                    assert!(response["data"].is_null() || response["data"][name].is_null(), "{response}");
                }
                checked += 1;
            }
        }
        assert!(checked >= 8, "only {checked} root fields were checked");

        // Subscriptions run over WebSocket, where a connection without a token is
        // refused at `connection_init`, before any subscription's field is reached.
        assert!(!root_fields(&schema, "subscriptionType").is_empty());
        let mut anonymous = WsClient::open(app.address, json!({})).await;
        assert_eq!(anonymous.next().await, Err(4403));
    })
    .await;
}

#[tokio::test]
async fn the_public_list_names_root_fields_that_answer_anyone() {
    each_backend(async |app| {
        let schema = schema(app).await;
        let roots: Vec<&str> = ["queryType", "mutationType"]
            .iter()
            .flat_map(|root| root_fields(&schema, root))
            .map(|field| field["name"].as_str().unwrap())
            .collect();
        for public in PUBLIC_FIELDS {
            assert!(roots.contains(public), "{public} is not a root field");
        }
        let response = app.graphql(None, "{ rateLimit { limit } }", json!({})).await;
        assert!(response.get("errors").is_none(), "{response}");
        let response = app
            .graphql(None, "mutation { login(input: { username: \"nobody\", password: \"wrong horse\" }) { accessToken } }", json!({}))
            .await;
        assert_eq!(response["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{response}");
        assert_ne!(response["errors"][0]["message"], "Authentication required: send Authorization: Bearer <accessToken>");
    })
    .await;
}
