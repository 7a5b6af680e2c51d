//! Parsed documents, kept and reused: a query a client sends again skips the
//! parser, and Apollo's automatic persisted queries (APQ) are served from the same
//! cache by their SHA-256.
//!
//! This runs before the schema executes a request, in place of async-graphql
//! extensions: with any extension installed, async-graphql wraps every field's
//! resolution in the extension chain, which cost a tenth of a list page's CPU.

use std::{num::NonZeroUsize, sync::Mutex};

use async_graphql::{
    Request, ServerError,
    parser::types::{DocumentOperations, ExecutableDocument, OperationType},
};
use lru::LruCache;
use sha2::{Digest as _, Sha256};

use super::error_codes::{PARSE_FAILED, with_code};

/// What the client's `extensions.persistedQuery` says.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct PersistedQuery {
    version: u32,
    sha256_hash: String,
}

/// Parsed documents by query text, and query texts by their SHA-256 (for APQ).
#[derive(Debug)]
pub struct Documents {
    parsed: Mutex<LruCache<String, ExecutableDocument>>,
    persisted: Mutex<LruCache<String, String>>,
}

impl Documents {
    /// Keeps up to `capacity` documents, and as many persisted-query hashes.
    pub fn new(capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Self { parsed: Mutex::new(LruCache::new(capacity)), persisted: Mutex::new(LruCache::new(capacity)) }
    }

    /// Resolves a persisted query and attaches the parsed document to `request`;
    /// the error, with its `extensions.code`, when the request cannot run.
    pub fn prepare(&self, mut request: Request) -> Result<Request, ServerError> {
        if let Some(value) = request.extensions.remove("persistedQuery") {
            request.query = self.persisted_query(value, std::mem::take(&mut request.query))?;
        }
        let cached = lock(&self.parsed).get(&request.query).cloned();
        match cached {
            Some(document) => request.set_parsed_query(document),
            None => {
                let document =
                    request.parsed_query().map_err(|error| with_code(error, PARSE_FAILED))?.clone();
                lock(&self.parsed).put(request.query.clone(), document);
            }
        }
        Ok(request)
    }

    /// The query text of an APQ request: the one sent (checked against its hash, and
    /// kept), or the one kept for the hash.
    fn persisted_query(&self, value: async_graphql::Value, query: String) -> Result<String, ServerError> {
        let invalid = |message: &str| with_code(ServerError::new(message, None), "BAD_USER_INPUT");
        let persisted: PersistedQuery = value
            .into_json()
            .ok()
            .and_then(|json| serde_json::from_value(json).ok())
            .ok_or_else(|| invalid("Invalid \"PersistedQuery\" extension configuration."))?;
        if persisted.version != 1 {
            return Err(invalid("Only version 1 of the \"PersistedQuery\" extension is supported."));
        }
        if query.is_empty() {
            return lock(&self.persisted).get(&persisted.sha256_hash).cloned().ok_or_else(|| {
                with_code(ServerError::new("PersistedQueryNotFound", None), "PERSISTED_QUERY_NOT_FOUND")
            });
        }
        if format!("{:x}", Sha256::digest(query.as_bytes())) != persisted.sha256_hash {
            return Err(invalid("provided sha does not match query"));
        }
        lock(&self.persisted).put(persisted.sha256_hash, query.clone());
        Ok(query)
    }
}

/// The type of the operation a prepared request will run, when it names one.
pub fn operation_type(request: &mut Request) -> Option<OperationType> {
    let name = request.operation_name.clone();
    let document = request.parsed_query().ok()?;
    match (&document.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name.as_str()).map(|op| op.node.ty),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| op.node.ty)
        }
        _ => None,
    }
}

/// A cache's lock; a poisoned one only means a panic elsewhere mid-update of an LRU,
/// which leaves it usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
