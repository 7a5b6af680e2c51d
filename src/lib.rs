//! Triage: a GraphQL issue tracker service.
//!
//! The modules are the layers of the design, top to bottom: `http` serves `graphql`,
//! which calls `domain`, which reads and writes `entity`. `app` wires them together.

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

pub use error::{Error, Result};
