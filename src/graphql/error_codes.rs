//! Gives every error a client sees an `extensions.code`.
//!
//! Our own errors carry one already (`crate::Error`); async-graphql's parse,
//! validation, limit and input-coercion errors do not, so they are added here:
//! `GRAPHQL_PARSE_FAILED`, `GRAPHQL_VALIDATION_FAILED`, `BAD_USER_INPUT` for values
//! that do not fit their type, and `INTERNAL_SERVER_ERROR` for anything left. Over
//! HTTP, [`fill_codes`] does it after execution (documents are parsed beforehand, in
//! `documents`); over WebSocket, the [`ErrorCodes`] extension does.

use std::sync::Arc;

use async_graphql::{
    Response, ServerError, ServerResult, ValidationResult, Value, Variables,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextRequest, NextValidation,
    },
    parser::types::ExecutableDocument,
};

pub const PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
pub const VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
pub const QUERY_TOO_COMPLEX: &str = "QUERY_TOO_COMPLEX";

#[derive(Debug, Default)]
pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodes)
    }
}

fn set_code(error: &mut ServerError, code: &str) {
    let has_code = error.extensions.as_ref().is_some_and(|ext| ext.get("code").is_some());
    if !has_code {
        error.extensions.get_or_insert_with(Default::default).set("code", Value::from(code));
    }
}

/// `error`, given `code` unless it has one.
pub fn with_code(mut error: ServerError, code: &str) -> ServerError {
    set_code(&mut error, code);
    error
}

/// Gives every error of an executed HTTP `response` its code. The document was
/// parsed already, so an error before execution is a validation error.
pub fn fill_codes(response: &mut Response) {
    let otherwise = if is_request_error(response) { VALIDATION_FAILED } else { "INTERNAL_SERVER_ERROR" };
    code_errors(&mut response.errors, otherwise);
}

/// Codes the errors that have none: `BAD_USER_INPUT` for a value that does not fit
/// its type, `otherwise` for the rest.
fn code_errors(errors: &mut [ServerError], otherwise: &str) {
    for error in errors {
        let code = if is_input_coercion(&error.message) { "BAD_USER_INPUT" } else { otherwise };
        set_code(error, code);
    }
}

/// Whether async-graphql's message says a value did not fit its input type.
fn is_input_coercion(message: &str) -> bool {
    message.starts_with("Invalid value for argument")
        || message.starts_with("Failed to parse")
        || (message.starts_with("Variable") && message.contains("value"))
}

#[async_graphql::async_trait::async_trait]
impl Extension for ErrorCodes {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        code_errors(&mut response.errors, "INTERNAL_SERVER_ERROR");
        response
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables).await.map_err(|error| with_code(error, PARSE_FAILED))
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|mut errors| {
            code_errors(&mut errors, VALIDATION_FAILED);
            errors
        })
    }
}

/// Whether `response` failed before execution (a parse or validation error), which the
/// GraphQL-over-HTTP spec answers with a 4xx and no `data`.
pub fn is_request_error(response: &Response) -> bool {
    response.data == Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|error| error.path.is_empty())
}
