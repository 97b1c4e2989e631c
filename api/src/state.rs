//! Everything a request handler needs, shared by all workers.

use std::sync::Arc;

use actix_web::web;
use adapters::sandbox::{SandboxEmail, SandboxOwnership, SandboxRegistry, SandboxSms};
use chrono::{DateTime, Utc};
use domain::Policy;
use domain::ports::{CivilRegistry, Clock, EmailSender, MobileOwnershipCheck, RandomSource, SmsSender};
use persistence::{Db, DbConn, DbError, Pii};

use crate::config::Config;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::tokens::TokenService;

/// Handles to the sandbox stand-ins, so demos and tests can simulate outages.
#[derive(Default)]
pub struct Sandboxes {
    pub registry: Option<Arc<SandboxRegistry>>,
    pub bank: Arc<adapters::sandbox::SandboxBankControl>,
    /// Set when `[sms] mode = "sandbox"`.
    pub sms: Option<Arc<SandboxSms>>,
    /// Set when `[email] mode = "sandbox"`.
    pub email: Option<Arc<SandboxEmail>>,
    /// Set when `[ownership] mode = "sandbox"`.
    pub ownership: Option<Arc<SandboxOwnership>>,
}

pub struct AppState {
    pub config: Arc<Config>,
    pub policy: Policy,
    pub db: Db,
    pub pii: Arc<Pii>,
    pub tokens: Arc<TokenService>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn RandomSource>,
    pub metrics: Arc<Metrics>,
    pub registry: Arc<dyn CivilRegistry>,
    /// Does this mobile belong to this national code (e-folder registration).
    pub ownership: Arc<dyn MobileOwnershipCheck>,
    /// Used only by the outbox worker: requests queue messages, they never send.
    pub sms: Arc<dyn SmsSender>,
    pub email: Arc<dyn EmailSender>,
    pub sandboxes: Sandboxes,
    pub captcha_key: [u8; 32],
    /// Payment gateways by name (`sandbox`, `sadad`, `parsian`).
    pub gateways: std::collections::HashMap<String, Arc<dyn domain::ports::PaymentGateway>>,
    /// Every request-rate quota (per client address, per machine client, …), counted
    /// once for the deployment when Redis is configured ([`crate::limits`]).
    pub limiter: Arc<crate::limits::Limiter>,
    /// Proxies whose `X-Forwarded-For` is believed ([`crate::client_addr`]).
    pub trusted_proxies: crate::client_addr::TrustedProxies,
    /// Set on SIGTERM: not ready, every answer closes its connection, jobs stop.
    pub draining: std::sync::atomic::AtomicBool,
    /// Slots just refused as full (answered from memory for a moment; see the module).
    pub full_slots: Arc<crate::full_slots::FullSlots>,
}

impl AppState {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Whether SIGTERM was received (see [`crate::shutdown`]).
    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Runs blocking database work on the blocking pool with a pooled connection.
    pub async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, DbError> + Send + 'static,
    {
        self.run_api(move |conn| f(conn).map_err(ApiError::from)).await
    }

    /// Like [`run`](Self::run), for closures that return API errors themselves. Waits for a
    /// turn at the database first (see [`persistence::Db`]); the turn goes with the closure
    /// and ends with it.
    pub async fn run_api<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, ApiError> + Send + 'static,
    {
        let turn = self.db.turn().await?;
        web::block(move || {
            let mut conn = turn.connect()?;
            f(&mut conn)
        })
        .await?
    }
}
