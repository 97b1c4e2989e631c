//! The `ncr` server: REST API under `/api/v1`, OpenAPI contract, authentication, the
//! use cases (`journey`), background jobs, and the wiring of the adapters (crate
//! `adapters`), receipts (crate `receipt`) and demo data (crate `seed`).

/// The outside-system clients are a crate of their own; named here too so
/// `api::adapters::…` keeps working.
pub use adapters;
pub mod auth;
pub mod bootstrap;
pub mod captcha;
pub mod client_addr;
pub mod clock;
pub mod config;
pub mod contract;
pub mod delivery;
pub mod error;
pub mod etag;
pub mod extract;
pub mod full_slots;
pub mod guard;
pub mod html;
pub mod ics;
pub mod idempotency;
pub mod input_rules;
pub mod jobs;
pub mod journey;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod middleware;
#[cfg(test)]
mod module_graph;
pub mod notify;
pub mod page;
pub mod passwords;
pub mod profile;
pub mod public_info;
pub mod receipt;
pub mod routes;
pub mod secrets;
pub mod seed;
pub mod server;
pub mod shutdown;
pub mod state;
pub mod tokens;
pub mod ussd;
pub mod wire;

pub use bootstrap::{Environment, build_state};
pub use config::Config;
pub use state::AppState;
