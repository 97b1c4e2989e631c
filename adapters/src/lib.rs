//! Adapters to outside systems: real protocol clients and sandbox stand-ins, each an
//! implementation of a port from `domain::ports`.

pub mod ownership_http;
pub mod payments;
pub mod registry_http;
pub mod resilience;
pub mod sandbox;
pub mod sms_http;
pub mod smtp;
