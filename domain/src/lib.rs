//! The rules of the national smart ID card pre-registration (CRS) and of the
//! national e-folder self-registration, as pure functions and types.
//!
//! Nothing here does I/O. Outside systems are reached through the traits in
//! [`ports`]; the `persistence` and `api` crates supply implementations.
//! A value of an identifier type ([`ids::NationalId`], [`ids::Mobile`], …)
//! exists only if it was parsed successfully, so no other code re-validates it.

pub mod application;
pub mod backoff;
pub mod calendar;
pub mod delivery;
pub mod efolder;
pub mod eligibility;
pub mod error;
pub mod fees;
pub mod iban;
pub mod ids;
pub mod mask;
pub mod money;
pub mod offices;
pub mod payment;
pub mod person;
pub mod policy;
pub mod ports;
pub mod record_ids;
pub mod text;

pub use error::{DomainError, ErrorKind, Lang};
pub use money::Rials;
pub use policy::Policy;
