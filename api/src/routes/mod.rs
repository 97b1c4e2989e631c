//! HTTP handlers, one module per area. Each handler is registered through
//! `utoipa_actix_web`, so the router and the OpenAPI document cannot drift.

pub mod admin;
pub mod admin_offices;
pub mod citizen;
pub mod efolder;
pub mod kiosk;
pub mod machine;
pub mod office;
pub mod offices;
pub mod ops;
pub mod outbox;
pub mod payments;
pub mod problems;
pub mod public;
pub mod receipt;
pub mod sandbox_bank;
pub mod staff;
pub mod ussd;
pub mod withdrawal;
