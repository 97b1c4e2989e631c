//! The call policy shared by every HTTP client to an outside system: a bound on each
//! attempt, retries with exponential backoff and jitter, and a circuit breaker.
//!
//! * **Timeout** covers a whole attempt — connecting, sending and reading the body — so a
//!   server that trickles its answer cannot hold a worker.
//! * **Retries** happen only when another attempt could plausibly get a different answer:
//!   timeouts, transport errors, `5xx` and `429`. Any other status is the server's answer
//!   and is returned at once.
//! * **Circuit breaker** counts attempts, not calls: after `breaker_failures` consecutive
//!   failed attempts it opens and every call fails fast with [`Failure::CircuitOpen`]
//!   without touching the network. After `breaker_cooldown_ms` it lets exactly one trial
//!   attempt through (half-open); success closes it, failure opens it for another cool-down.
//!   Counting attempts keeps the half-open trial to one request even when retries are on.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use reqwest::{RequestBuilder, Response, StatusCode};
use serde::{Deserialize, Serialize};

/// The longest body we read from an outside system; anything bigger is not an answer we expect.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The longest pause between two attempts, whatever the base and attempt number.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// How hard to try, and when to stop trying, when calling one outside system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResilienceConfig {
    /// Bound on one attempt, body included.
    pub timeout_ms: u64,
    /// Extra attempts after the first one fails with a retryable outcome.
    pub retries: u32,
    /// The first backoff; each later one doubles, with jitter.
    pub backoff_base_ms: u64,
    /// Consecutive failed attempts that open the breaker (at least 1).
    pub breaker_failures: u32,
    /// How long the breaker stays open before one trial attempt.
    pub breaker_cooldown_ms: u64,
}

impl Default for ResilienceConfig {
    fn default() -> Self {
        Self { timeout_ms: 2_000, retries: 2, backoff_base_ms: 100, breaker_failures: 5, breaker_cooldown_ms: 30_000 }
    }
}

impl ResilienceConfig {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// A client could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("invalid base url: {0}")]
    BaseUrl(String),
    #[error("cannot build the http client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("credentials: {0}")]
    Credentials(&'static str),
}

/// Parses a base URL that path segments can be appended to.
pub(crate) fn parse_base_url(base: &str) -> Result<reqwest::Url, BuildError> {
    let url = reqwest::Url::parse(base).map_err(|e| BuildError::BaseUrl(e.to_string()))?;
    if url.cannot_be_a_base() || !matches!(url.scheme(), "http" | "https") {
        return Err(BuildError::BaseUrl("expected an http(s) URL".to_owned()));
    }
    Ok(url)
}

/// The HTTP client every adapter uses: no redirects (an API that redirects is misconfigured,
/// and following one would resend the credentials elsewhere) and a connect bound.
pub(crate) fn http_client(config: &ResilienceConfig) -> Result<reqwest::Client, BuildError> {
    Ok(reqwest::Client::builder()
        .connect_timeout(config.timeout())
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

/// A complete answer: status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

/// Why a call produced no usable reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The breaker is open; the network was not touched.
    CircuitOpen,
    /// The last attempt did not finish within the timeout.
    Timeout,
    /// Connection refused, reset, TLS failure and the like.
    Transport(String),
    /// The last attempt got a retryable status (`5xx`, `429`).
    Status(HttpReply),
    /// The request could not be built or the body was too large: retrying cannot help.
    Invalid(String),
}

impl Failure {
    /// Whether another attempt could get a different outcome.
    fn retryable(&self) -> bool {
        matches!(self, Failure::Timeout | Failure::Transport(_) | Failure::Status(_))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::CircuitOpen => f.write_str("circuit open"),
            Failure::Timeout => f.write_str("timed out"),
            Failure::Transport(e) => write!(f, "transport error: {e}"),
            Failure::Status(reply) => write!(f, "http status {}", reply.status.as_u16()),
            Failure::Invalid(e) => write!(f, "invalid request: {e}"),
        }
    }
}

fn retryable_status(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

/// A source of "now", injectable so breaker tests need not sleep.
pub type Now = Arc<dyn Fn() -> Instant + Send + Sync>;

/// What a breaker is doing, for tests and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One trial attempt is in flight; everyone else fails fast.
    HalfOpen,
}

/// Consecutive-failure circuit breaker with a single half-open trial.
pub struct CircuitBreaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
    now: Now,
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("threshold", &self.threshold)
            .field("cooldown", &self.cooldown)
            .field("state", &self.state())
            .finish()
    }
}

impl CircuitBreaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self::with_clock(threshold, cooldown, Arc::new(Instant::now))
    }

    pub fn with_clock(threshold: u32, cooldown: Duration, now: Now) -> Self {
        Self { threshold: threshold.max(1), cooldown, state: Mutex::new(State::Closed { failures: 0 }), now }
    }

    // The state is a plain value that is always consistent, so a panic elsewhere while
    // holding the lock leaves nothing half-done: recover instead of propagating the poison.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn state(&self) -> BreakerState {
        match *self.lock() {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen => BreakerState::HalfOpen,
        }
    }

    /// Permission for one attempt, or `None` to fail fast.
    pub fn acquire(&self) -> Option<Permit<'_>> {
        let mut state = self.lock();
        match *state {
            State::Closed { .. } => Some(Permit { breaker: self, trial: false, settled: false }),
            State::Open { until } if (self.now)() >= until => {
                *state = State::HalfOpen;
                Some(Permit { breaker: self, trial: true, settled: false })
            }
            State::Open { .. } | State::HalfOpen => None,
        }
    }

    fn record(&self, ok: bool) {
        let mut state = self.lock();
        *state = match (*state, ok) {
            // Any success proves the service answers, even one started before a trial.
            (_, true) => State::Closed { failures: 0 },
            (State::Closed { failures }, false) if failures + 1 < self.threshold => {
                State::Closed { failures: failures + 1 }
            }
            (State::Closed { .. } | State::HalfOpen, false) => State::Open { until: (self.now)() + self.cooldown },
            (open @ State::Open { .. }, false) => open,
        };
    }

    /// A trial that ended without an outcome (its future was dropped): let the next caller try.
    fn abandon_trial(&self) {
        let mut state = self.lock();
        if matches!(*state, State::HalfOpen) {
            *state = State::Open { until: (self.now)() };
        }
    }
}

/// Leave to make one attempt. Report its outcome with [`Permit::success`] or
/// [`Permit::failure`]; dropping it unreported (a cancelled call) counts as neither.
#[must_use = "report the attempt's outcome"]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    trial: bool,
    settled: bool,
}

impl Permit<'_> {
    pub fn success(mut self) {
        self.settled = true;
        self.breaker.record(true);
    }
    pub fn failure(mut self) {
        self.settled = true;
        self.breaker.record(false);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.settled && self.trial {
            self.breaker.abandon_trial();
        }
    }
}

/// Timeout + retries + breaker for one outside system. Share one per system so that the
/// breaker sees every caller's failures.
#[derive(Debug)]
pub struct Resilience {
    config: ResilienceConfig,
    breaker: CircuitBreaker,
}

impl Resilience {
    pub fn new(config: ResilienceConfig) -> Self {
        Self::with_clock(config, Arc::new(Instant::now))
    }

    pub fn with_clock(config: ResilienceConfig, now: Now) -> Self {
        let breaker =
            CircuitBreaker::with_clock(config.breaker_failures, Duration::from_millis(config.breaker_cooldown_ms), now);
        Self { config, breaker }
    }

    pub fn config(&self) -> &ResilienceConfig {
        &self.config
    }

    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// Sends the request that `build` makes (called once per attempt) under the policy.
    /// `Ok` carries every non-retryable answer, `4xx` included: what it means is the caller's call.
    pub async fn execute<F>(&self, mut build: F) -> Result<HttpReply, Failure>
    where
        F: FnMut() -> RequestBuilder,
    {
        self.run(|| {
            let request = build();
            async move { read_reply(request.send().await.map_err(ReadError::Http)?).await }
        })
        .await
    }

    /// The policy over any attempt; split from [`Self::execute`] so it can be tested without HTTP.
    async fn run<F, Fut>(&self, mut attempt: F) -> Result<HttpReply, Failure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<HttpReply, ReadError>>,
    {
        let mut tries = 0;
        loop {
            let Some(permit) = self.breaker.acquire() else {
                return Err(Failure::CircuitOpen);
            };
            let outcome = match tokio::time::timeout(self.config.timeout(), attempt()).await {
                Err(_) => Err(Failure::Timeout),
                Ok(Err(e)) => Err(e.into_failure()),
                Ok(Ok(reply)) if retryable_status(reply.status) => Err(Failure::Status(reply)),
                Ok(Ok(reply)) => Ok(reply),
            };
            let failure = match outcome {
                Ok(reply) => {
                    permit.success();
                    return Ok(reply);
                }
                Err(failure) if failure.retryable() => {
                    permit.failure();
                    failure
                }
                // Our own mistake says nothing about the remote's health.
                Err(failure) => {
                    drop(permit);
                    return Err(failure);
                }
            };
            if tries >= self.config.retries {
                return Err(failure);
            }
            tracing::debug!(attempt = tries + 1, %failure, "retrying");
            tokio::time::sleep(self.backoff(tries)).await;
            tries += 1;
        }
    }

    /// "Equal jitter": half the exponential delay is fixed, half random, so concurrent
    /// callers that failed together do not retry in lockstep.
    fn backoff(&self, retry: u32) -> Duration {
        let exp = Duration::from_millis(self.config.backoff_base_ms)
            .saturating_mul(2u32.saturating_pow(retry))
            .min(MAX_BACKOFF);
        let half = exp / 2;
        let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(rand::random_range(0..=jitter_ms))
    }
}

/// Why one attempt failed before producing a reply.
#[derive(Debug)]
enum ReadError {
    Http(reqwest::Error),
    TooLarge,
}

impl ReadError {
    fn into_failure(self) -> Failure {
        match self {
            ReadError::TooLarge => Failure::Invalid(format!("body larger than {MAX_BODY_BYTES} bytes")),
            // `without_url`: URLs carry API keys and personal identifiers and must not reach logs.
            ReadError::Http(e) if e.is_builder() => Failure::Invalid(e.without_url().to_string()),
            ReadError::Http(e) if e.is_timeout() => Failure::Timeout,
            ReadError::Http(e) => Failure::Transport(e.without_url().to_string()),
        }
    }
}

/// Reads a response into an [`HttpReply`], refusing bodies over [`MAX_BODY_BYTES`].
async fn read_reply(mut response: Response) -> Result<HttpReply, ReadError> {
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Http)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(HttpReply { status, body })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// A hand-driven clock for the breaker.
    #[derive(Clone)]
    struct FakeClock(Arc<Mutex<Instant>>);

    impl FakeClock {
        fn new() -> Self {
            Self(Arc::new(Mutex::new(Instant::now())))
        }
        fn advance(&self, by: Duration) {
            *self.0.lock().unwrap() += by;
        }
        fn now(&self) -> Now {
            let inner = self.0.clone();
            Arc::new(move || *inner.lock().unwrap())
        }
    }

    fn config(retries: u32, breaker_failures: u32) -> ResilienceConfig {
        ResilienceConfig { timeout_ms: 200, retries, backoff_base_ms: 1, breaker_failures, breaker_cooldown_ms: 1_000 }
    }

    fn reply(status: u16) -> Result<HttpReply, ReadError> {
        Ok(HttpReply { status: StatusCode::from_u16(status).unwrap(), body: Vec::new() })
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = ResilienceConfig::default();
        assert_eq!(
            (c.timeout_ms, c.retries, c.backoff_base_ms, c.breaker_failures, c.breaker_cooldown_ms),
            (2_000, 2, 100, 5, 30_000)
        );
    }

    #[test]
    fn breaker_opens_after_n_failures_and_half_opens_after_cooldown() {
        let clock = FakeClock::new();
        let breaker = CircuitBreaker::with_clock(3, Duration::from_secs(30), clock.now());
        for _ in 0..2 {
            breaker.acquire().unwrap().failure();
        }
        assert_eq!(breaker.state(), BreakerState::Closed);
        breaker.acquire().unwrap().failure();
        assert_eq!(breaker.state(), BreakerState::Open);
        assert!(breaker.acquire().is_none(), "open: fail fast");

        clock.advance(Duration::from_secs(29));
        assert!(breaker.acquire().is_none(), "still cooling down");
        clock.advance(Duration::from_secs(1));
        let trial = breaker.acquire().expect("one trial after the cool-down");
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert!(breaker.acquire().is_none(), "only one trial at a time");
        trial.failure();
        assert_eq!(breaker.state(), BreakerState::Open, "a failed trial reopens");
        assert!(breaker.acquire().is_none());

        clock.advance(Duration::from_secs(30));
        breaker.acquire().unwrap().success();
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert!(breaker.acquire().is_some());
    }

    #[test]
    fn a_success_resets_the_consecutive_count() {
        let breaker = CircuitBreaker::new(2, Duration::from_secs(30));
        breaker.acquire().unwrap().failure();
        breaker.acquire().unwrap().success();
        breaker.acquire().unwrap().failure();
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[test]
    fn an_abandoned_trial_lets_the_next_caller_try() {
        let clock = FakeClock::new();
        let breaker = CircuitBreaker::with_clock(1, Duration::from_secs(5), clock.now());
        breaker.acquire().unwrap().failure();
        clock.advance(Duration::from_secs(5));
        drop(breaker.acquire().unwrap());
        assert!(breaker.acquire().is_some(), "a cancelled trial must not wedge the breaker half-open");
    }

    #[test]
    fn breaker_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Resilience>();
    }

    #[tokio::test]
    async fn retries_only_retryable_outcomes() {
        for (status, expected_calls) in [(503, 3), (429, 3), (500, 3), (400, 1), (404, 1), (200, 1)] {
            let policy = Resilience::new(config(2, 100));
            let calls = AtomicU32::new(0);
            let _ = policy
                .run(|| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    async move { reply(status) }
                })
                .await;
            assert_eq!(calls.load(Ordering::SeqCst), expected_calls, "status {status}");
        }
    }

    #[tokio::test]
    async fn times_out_each_attempt() {
        let policy = Resilience::new(config(1, 100));
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let outcome = policy
            .run(|| {
                calls.fetch_add(1, Ordering::SeqCst);
                async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    reply(200)
                }
            })
            .await;
        assert_eq!(outcome, Err(Failure::Timeout));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn an_open_breaker_stops_the_retries_and_fails_fast() {
        let clock = FakeClock::new();
        let policy = Resilience::with_clock(config(5, 2), clock.now());
        let calls = AtomicU32::new(0);
        let attempt = || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { reply(502) }
        };
        assert_eq!(policy.run(attempt).await, Err(Failure::CircuitOpen));
        assert_eq!(calls.load(Ordering::SeqCst), 2, "the breaker opened after two attempts");
        let attempt = || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { reply(200) }
        };
        assert_eq!(policy.run(attempt).await, Err(Failure::CircuitOpen));
        assert_eq!(calls.load(Ordering::SeqCst), 2, "nothing sent while open");
        clock.advance(Duration::from_millis(1_000));
        assert!(policy.run(attempt).await.is_ok());
        assert_eq!(policy.breaker().state(), BreakerState::Closed);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = Resilience::new(ResilienceConfig { backoff_base_ms: 100, ..ResilienceConfig::default() });
        for retry in 0..4 {
            let exp = Duration::from_millis(100 * 2u64.pow(retry));
            let d = policy.backoff(retry);
            assert!(d >= exp / 2 && d <= exp, "retry {retry}: {d:?}");
        }
        assert!(policy.backoff(40) <= MAX_BACKOFF);
    }
}
