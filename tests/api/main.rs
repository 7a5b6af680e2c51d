//! The API, through real HTTP to a server on a random loopback port, with an empty
//! database per test: a fresh SQLite file always, and a PostgreSQL database too when
//! `TRIAGE_TEST_DATABASE_URL` names an admin connection (see `postgres.rs`).

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly by design")]

mod auth;
mod bounds;
mod digest;
mod direct;
mod helpers;
mod http;
mod invitations;
mod issues;
mod limits;
mod logging;
mod matrix;
mod notices;
mod paging;
mod postgres;
mod projects;
mod schema;
mod sign_in;
mod smtp;
mod startup;
mod subscriptions;
mod throttle;
mod users;
mod ws;
