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

/// Payment gateways by name.
pub type Gateways = std::collections::HashMap<String, Arc<dyn domain::ports::PaymentGateway>>;

/// Handles to the sandbox stand-ins, so demos and tests can simulate outages.
#[derive(Default)]
pub struct Sandboxes {
    pub registry: Option<Arc<SandboxRegistry>>,
    /// The sandbox bank's fault switches (outages, a wrong amount), for demos and tests.
    pub bank: Arc<adapters::sandbox::SandboxBankControl>,
    /// Set when the `sandbox` payment gateway is enabled: the bank its pages and API serve.
    pub bank_desk: Option<Arc<adapters::payments::sandbox::SandboxBank>>,
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
    pub gateways: Gateways,
    /// Every request-rate quota (per client address, per machine client, …), counted
    /// once for the deployment when Redis is configured ([`crate::limits`]).
    pub limiter: Arc<crate::limits::Limiter>,
    /// Proxies whose `X-Forwarded-For` is believed ([`crate::client_addr`]).
    pub trusted_proxies: crate::client_addr::TrustedProxies,
    /// Set on SIGTERM: not ready, every answer closes its connection, jobs stop.
    pub draining: std::sync::atomic::AtomicBool,
    /// Slots just refused as full (answered from memory for a moment; see the module).
    pub full_slots: Arc<crate::full_slots::FullSlots>,
    /// Offices, fee rates and holidays in memory (docs/decisions/0013-catalog-cache.md).
    pub catalog: Arc<persistence::catalog::Catalog>,
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
        // The catalog version this request's session check read, for the turn's thread.
        let seen = catalog_seen_now();
        let (out, learned) = web::block(move || {
            let seen = SeenInTurn::set(seen);
            let out = turn.connect().map_err(ApiError::from).and_then(|mut conn| f(&mut conn));
            (out, seen.learned())
        })
        .await?;
        // A version the turn read with its first read (a citizen's session checked in
        // the same statement) holds for the request's later turns too.
        if let Some(v) = learned {
            catalog_seen(v);
        }
        out
    }
}

tokio::task_local! {
    /// The catalog version the current request's session check read (set by
    /// `auth`, scoped to each request by the request middleware); see
    /// docs/decisions/0013-catalog-cache.md.
    pub static CATALOG_SEEN: std::cell::Cell<Option<i64>>;
}

/// Records a version the request read (outside a request scope: nothing).
pub fn catalog_seen(version: i64) {
    let _ = CATALOG_SEEN.try_with(|c| c.set(Some(c.get().map_or(version, |v| v.max(version)))));
}

/// The catalog version the current request read, if any (for a turn taken without
/// [`AppState::run_api`]).
pub fn catalog_seen_now() -> Option<i64> {
    CATALOG_SEEN.try_with(std::cell::Cell::get).ok().flatten()
}

/// Sets [`persistence::catalog::SEEN_IN_TURN`] for one turn on a blocking thread and
/// clears it after (the thread serves other requests next).
pub struct SeenInTurn;

impl SeenInTurn {
    pub fn set(seen: Option<i64>) -> Self {
        persistence::catalog::SEEN_IN_TURN.with(|c| c.set(seen));
        SeenInTurn
    }

    /// Records a version read during the turn (see [`Self::learned`]).
    pub fn saw(version: i64) {
        persistence::catalog::SEEN_IN_TURN.with(|c| c.set(Some(c.get().map_or(version, |v| v.max(version)))));
    }

    /// The version the turn has seen so far: the one it started with, or a newer one it
    /// read itself ([`Self::saw`]); the caller hands it to the request's later turns.
    pub fn learned(&self) -> Option<i64> {
        persistence::catalog::SEEN_IN_TURN.with(std::cell::Cell::get)
    }
}

impl Drop for SeenInTurn {
    fn drop(&mut self) {
        persistence::catalog::SEEN_IN_TURN.with(|c| c.set(None));
    }
}
