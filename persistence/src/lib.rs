//! Persistence on SQLite (the embedded default) and PostgreSQL through one code base:
//! a diesel `MultiConnection`, one portable `schema.rs`, embedded migrations per
//! backend, an r2d2 pool, and repositories that speak domain types.
//!
//! Where the two backends differ (immediate transactions, `RETURNING`, upsert, row
//! claiming) the difference is decided by matching the connection variant in one small
//! function next to its use.

pub mod app_write;
pub mod applications;
pub mod attempts;
pub mod audit;
pub mod back_office;
pub mod catalog;
pub mod citizens;
pub mod db;
pub mod efolder;
pub mod error;
pub mod home_visits;
pub mod legacy;
mod nullable_id;
pub mod offices;
pub mod outbox;
pub mod payments;
pub mod pii;
pub mod prepared;
pub mod production;
pub mod public_lookups;
pub mod refunds;
pub mod registry;
pub mod sandbox_messages;
pub mod schema;
pub mod sessions;
pub mod staff;
pub mod stats;
pub mod unsealed;
mod versioned;

pub use db::{Backend, Db, DbConn, DbCounts, DbSettings, PooledConn, Turn, single_write, write_tx};
pub use error::DbError;
pub use nullable_id::NullableText;
pub use pii::{Kind as PiiKind, Pii, PiiKey};

/// A new id for a stored row: a time-ordered UUID (v7) as text, so ids sort by creation
/// (lists page by id). Typed where the caller wants it (`domain::record_ids`).
pub fn new_id<T: From<String>>() -> T {
    T::from(uuid::Uuid::now_v7().to_string())
}
