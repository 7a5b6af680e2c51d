//! Triage: a GraphQL issue tracker service.
//!
//! The modules are layers; each imports only those below it:
//!
//! - `startup` wires everything: config, pools, migrations, jobs, schema, router.
//! - `http`: the axum edge (GraphQL over HTTP and WebSocket, health, metrics).
//! - `graphql`: admission, the sign-in gate, the schema's types and thin resolvers.
//! - `app`: the application state the entry points share.
//! - `jobs`: the notice dispatcher and the scheduled jobs, calling `domain` and `mail`.
//! - `domain`: the rules (`policy` decides who may do what), over `entity`.
//! - `events`: the bus carrying committed events between replicas; knows no domain.
//! - `auth`: tokens and password hashing. `mail`: transports and templates.
//! - `entity` (tables and typed ids), `error`, `config`, `sync`: the ground floor.

pub mod app;
pub mod auth;
pub mod clock;
pub mod config;
pub mod domain;
pub mod entity;
pub mod error;
pub mod events;
pub mod graphql;
pub mod http;
pub mod jobs;
pub mod mail;
pub mod startup;
pub mod sync;

pub use error::{Error, Result};
