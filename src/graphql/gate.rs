//! The gate every operation passes, over HTTP and WebSocket alike, before it runs:
//! its document (cached, or parsed now), its price against the admission limits, and
//! after it ran, its document kept if it passed validation.

use std::sync::Arc;

use async_graphql::{Request, Response, ServerError, parser::types::ExecutableDocument};
use sea_orm::DatabaseConnection;

use crate::auth::Caller;

use super::{
    admission::{Admission, Tally},
    budget::Budgets,
    direct::Plan,
    documents::{Documents, Kept, Prepared},
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
    /// The request, without its document when that is `kept`.
    request: Request,
    /// Whether it is a mutation (a query or subscription otherwise).
    pub is_mutation: bool,
    /// Its document, when it was kept from an earlier request.
    kept: Option<Arc<Kept>>,
    /// The document to keep once it has passed validation, when it was parsed now.
    fresh: Option<(String, ExecutableDocument)>,
}

impl Gate {
    /// Prepares and prices `request`, adding it to the request's `tally`; the error,
    /// with its code, when it may not run.
    pub fn admit(&self, request: Request, tally: &mut Tally) -> Result<Admitted, ServerError> {
        let Prepared { mut request, kept } = self.documents.prepare(request)?;
        let operation_name = request.operation_name.take();
        let variables = std::mem::take(&mut request.variables);
        let document = match &kept {
            Some(kept) => &kept.document,
            None => request.parsed_query().map_err(|err| super::with_code(err, "GRAPHQL_PARSE_FAILED"))?,
        };
        let price = self.admission.price(document, operation_name.as_deref(), &variables);
        let is_mutation = price.as_ref().is_ok_and(|price| price.is_mutation);
        let admitted = price.and_then(|price| self.admission.admit(tally, &price));
        let fresh = (kept.is_none() && admitted.is_ok()).then(|| document.clone());
        request.operation_name = operation_name;
        request.variables = variables;
        admitted?;
        let fresh = fresh.map(|document| (request.query.clone(), document));
        Ok(Admitted { request, is_mutation, kept, fresh })
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
    /// The operation's answer from its plan (`direct.rs`), for `caller`; `None` when
    /// it has none, or the plan leaves this request to the executor.
    pub async fn answer_directly(&self, db: &DatabaseConnection, caller: Caller) -> Option<Vec<u8>> {
        self.plan()?.answer(db, caller, &self.request.variables).await
    }

    fn plan(&self) -> Option<&Plan> {
        let plan = self.kept.as_ref()?.plan.as_ref()?;
        (!self.is_mutation && plan.runs(self.request.operation_name.as_deref())).then_some(plan)
    }

    /// The request with its document, for the executor, and the document to keep
    /// once it has passed validation.
    pub fn into_parts(self) -> (Request, Option<(String, ExecutableDocument)>) {
        let mut request = self.request;
        if let Some(kept) = self.kept {
            request.set_parsed_query(kept.document.clone());
        }
        (request, self.fresh)
    }
}
