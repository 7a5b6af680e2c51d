//! Parsed documents, kept and reused: a query a client sends again skips the
//! parser, and Apollo's automatic persisted queries (APQ) are served from the same
//! cache by their SHA-256.
//!
//! Only documents that passed validation are kept (a refused one is parsed again
//! if it comes back, which costs its sender, not the cache), and both caches are
//! bounded in bytes as well as in entries, so no mix of large documents can grow
//! them past `TRIAGE_DOCUMENT_CACHE_BYTES` (a parsed document is counted as eight
//! times its text, about what its syntax tree takes).
//!
//! A kept document comes with the [`Plan`] of its operation when one covers it
//! (`direct.rs`), made once, when the document is kept.
//!
//! This runs before the schema executes a request, in place of async-graphql
//! extensions: with any extension installed, async-graphql wraps every field's
//! resolution in the extension chain, which cost a tenth of a list page's CPU.

use std::{
    num::NonZeroUsize,
    sync::{Arc, Mutex},
};

use async_graphql::{
    Request, ServerError,
    parser::types::{DocumentOperations, ExecutableDocument, OperationType},
};
use lru::LruCache;
use sha2::{Digest as _, Sha256};

use super::{
    direct::Plan,
    error_codes::{PARSE_FAILED, with_code},
};
use crate::sync::lock;

/// About what one field of a plan takes in memory.
const PLAN_FIELD_BYTES: usize = 64;

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
    parsed: Mutex<Bounded<Arc<Kept>>>,
    persisted: Mutex<Bounded<String>>,
    /// Whether kept documents get plans (`TRIAGE_DIRECT_ANSWERS`).
    plans: bool,
}

/// A document that passed validation, and the plan of its operation if one covers it.
#[derive(Debug)]
pub struct Kept {
    pub document: ExecutableDocument,
    pub plan: Option<Plan>,
}

/// A request and its document: a kept one, or one parsed now and attached to the
/// request.
#[derive(Debug)]
pub struct Prepared {
    pub request: Request,
    /// `None` when the document was parsed now: [`Documents::keep`] it once it has
    /// passed validation.
    pub kept: Option<Arc<Kept>>,
}

impl Documents {
    /// Keeps up to `capacity` documents, and as many persisted-query texts, in at
    /// most `max_bytes` each; with `plans`, a kept document's operation is planned.
    pub fn new(capacity: usize, max_bytes: usize, plans: bool) -> Self {
        Self {
            parsed: Mutex::new(Bounded::new(capacity, max_bytes, |query| query.len().saturating_mul(8))),
            persisted: Mutex::new(Bounded::new(capacity, max_bytes, |query| query.len())),
            plans,
        }
    }

    /// Resolves a persisted query and attaches the parsed document to `request`;
    /// the error, with its `extensions.code`, when the request cannot run.
    pub fn prepare(&self, mut request: Request) -> Result<Prepared, ServerError> {
        if let Some(value) = request.extensions.remove("persistedQuery") {
            request.query = self.persisted_query(value, std::mem::take(&mut request.query))?;
        }
        let kept = lock(&self.parsed).get(&request.query);
        if kept.is_none() {
            request.parsed_query().map_err(|error| with_code(error, PARSE_FAILED))?;
        }
        Ok(Prepared { request, kept })
    }

    /// Keeps the document of `query`, which has passed validation, with its plan.
    pub fn keep(&self, query: String, document: ExecutableDocument) {
        let plan = if self.plans { Plan::compile(&document) } else { None };
        // A plan spreads its fragments: it is weighed by its fields, beside the text.
        let plan_bytes = plan.as_ref().map_or(0, |plan| plan.fields().saturating_mul(PLAN_FIELD_BYTES));
        lock(&self.parsed).put(query, Arc::new(Kept { document, plan }), plan_bytes);
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
            return lock(&self.persisted).get(&persisted.sha256_hash).ok_or_else(|| {
                with_code(ServerError::new("PersistedQueryNotFound", None), "PERSISTED_QUERY_NOT_FOUND")
            });
        }
        if format!("{:x}", Sha256::digest(query.as_bytes())) != persisted.sha256_hash {
            return Err(invalid("provided sha does not match query"));
        }
        lock(&self.persisted).put(persisted.sha256_hash, query.clone(), 0);
        Ok(query)
    }
}

/// An LRU map from text to `V`, bounded in entries and in (estimated) bytes.
#[derive(Debug)]
struct Bounded<V> {
    entries: LruCache<String, (V, usize)>,
    bytes: usize,
    max_bytes: usize,
    weigh: fn(&str) -> usize,
}

impl<V: Clone> Bounded<V> {
    fn new(capacity: usize, max_bytes: usize, weigh: fn(&str) -> usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Self { entries: LruCache::new(capacity), bytes: 0, max_bytes, weigh }
    }

    fn get(&mut self, key: &str) -> Option<V> {
        self.entries.get(key).map(|(value, _)| value.clone())
    }

    /// Keeps `value` under `key`; `extra` is what it weighs beyond its text.
    fn put(&mut self, key: String, value: V, extra: usize) {
        let weight = (self.weigh)(&key).saturating_add(key.len()).saturating_add(extra);
        if weight > self.max_bytes {
            return;
        }
        if let Some((_, old)) = self.entries.pop(&key) {
            self.bytes -= old;
        }
        while self.bytes + weight > self.max_bytes || self.entries.len() == self.entries.cap().get() {
            match self.entries.pop_lru() {
                Some((_, (_, old))) => self.bytes -= old,
                None => break,
            }
        }
        self.bytes += weight;
        self.entries.put(key, (value, weight));
    }
}

impl Prepared {
    /// The type of the operation the request will run, when it names one.
    pub fn operation_type(&mut self) -> Option<OperationType> {
        let name = self.request.operation_name.clone();
        let document = match &self.kept {
            Some(kept) => &kept.document,
            None => self.request.parsed_query().ok()?,
        };
        match (&document.operations, name.as_deref()) {
            (DocumentOperations::Single(op), _) => Some(op.node.ty),
            (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
            (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
                ops.values().next().map(|op| op.node.ty)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_stays_within_its_bytes() {
        let mut cache: Bounded<u8> = Bounded::new(100, 100, str::len);
        for n in 0..50 {
            cache.put(format!("{n:020}"), 0, 0);
            assert!(cache.bytes <= 100, "{} bytes", cache.bytes);
        }
        assert_eq!(cache.entries.len(), 2);
        cache.put("x".repeat(200), 1, 0);
        assert!(cache.get(&"x".repeat(200)).is_none(), "an entry larger than the cache is not kept");
    }
}
