//! The gate every operation passes, over HTTP and WebSocket alike, before it runs:
//! its document (cached, or parsed now), its price against the admission limits, and
//! after it ran, its document kept if it passed validation.

use async_graphql::{Request, Response, ServerError, parser::types::ExecutableDocument};

use super::{
    admission::{Admission, Tally},
    budget::Budgets,
    documents::{Documents, Prepared},
    error_codes::is_request_error,
};

/// Most errors one response carries; the rest are left out.
pub const MAX_ERRORS: usize = 50;

/// Documents, admission rules and rate budgets: what every transport checks.
#[derive(Debug)]
pub struct Gate {
    pub documents: Documents,
    pub admission: Admission,
    pub budgets: Budgets,
}

/// An operation that passed admission, ready to run.
#[derive(Debug)]
pub struct Admitted {
    pub request: Request,
    /// Whether it is a mutation (a query or subscription otherwise).
    pub is_mutation: bool,
    /// The document to keep once it has passed validation, when it was parsed now.
    fresh: Option<(String, ExecutableDocument)>,
}

impl Gate {
    /// Prepares and prices `request`, adding it to the request's `tally`; the error,
    /// with its code, when it may not run.
    pub fn admit(&self, request: Request, tally: &mut Tally) -> Result<Admitted, ServerError> {
        let Prepared { mut request, cached } = self.documents.prepare(request)?;
        let operation_name = request.operation_name.take();
        let variables = std::mem::take(&mut request.variables);
        let document = request.parsed_query().map_err(|err| super::with_code(err, "GRAPHQL_PARSE_FAILED"))?;
        let price = self.admission.price(document, operation_name.as_deref(), &variables);
        let is_mutation = price.as_ref().is_ok_and(|price| price.is_mutation);
        let admitted = price.and_then(|price| self.admission.admit(tally, &price));
        let fresh = (!cached && admitted.is_ok()).then(|| document.clone());
        request.operation_name = operation_name;
        request.variables = variables;
        admitted?;
        let fresh = fresh.map(|document| (request.query.clone(), document));
        Ok(Admitted { request, is_mutation, fresh })
    }

    /// Keeps `fresh`'s document when `response` shows it passed validation.
    pub fn validated(&self, fresh: Option<(String, ExecutableDocument)>, response: &Response) {
        if let Some((query, document)) = fresh
            && !is_request_error(response)
        {
            self.documents.keep(query, document);
        }
    }
}

impl Admitted {
    /// Splits off the document to keep, for a caller that runs the request itself.
    pub fn into_parts(self) -> (Request, Option<(String, ExecutableDocument)>) {
        (self.request, self.fresh)
    }
}
