//! Request-rate limits: "at most `limit` requests per `period` for this key", counted
//! once for the whole deployment.
//!
//! Every quota — requests per client address, per machine client, and any later ones —
//! goes through [`Limiter::check`] with a bucket name, a key and a [`Quota`]. The rule is
//! GCRA (the generic cell rate algorithm, as in `governor`): a key may spend `limit`
//! requests at once, and then one more every `period / limit`.
//!
//! - Without `limits.redis_url` (the embedded default) each process counts alone, with
//!   `governor`.
//! - With it, the counters live in Redis and every instance behind the load balancer
//!   shares them: one Lua script per check reads and advances the key's theoretical
//!   arrival time atomically, with Redis's own clock (instances' clocks may differ).
//! - When Redis does not answer within [`REDIS_TIMEOUT`], the instance counts alone again
//!   (each instance then allows up to the quota, so a deployment of N allows up to N×) and
//!   leaves Redis alone for [`RETRY_AFTER_FAILURE`] before it asks again. Requests are never
//!   refused or slowed down because the shared store is down; the outage is logged once per
//!   failure and counted in `ncr_events_total{kind="rate_limit_store",outcome="unavailable"}`.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, RateLimiter};

use crate::error::{ApiCode, ApiError};
use crate::metrics::Metrics;

/// At most `limit` requests per `period` (with a burst of `limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    pub limit: u32,
    pub period: Duration,
}

impl Quota {
    pub fn per_minute(limit: u32) -> Self {
        Self { limit: limit.max(1), period: Duration::from_secs(60) }
    }

    /// Time between two requests once the burst is spent.
    fn interval(&self) -> Duration {
        self.period / self.limit.max(1)
    }
}

/// A refused request: when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub retry_after: Duration,
}

impl Refused {
    /// The 429 answer with `code` and `Retry-After` (whole seconds, at least 1).
    pub fn into_error(self, code: ApiCode) -> ApiError {
        ApiError::TooManyRequests { code, retry_after: self.retry_after.as_secs_f64().ceil().max(1.0) as u64 }
    }
}

/// How long one Redis check may take before this instance counts alone.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(250);
/// After a failed Redis check, how long the instance counts alone before asking again.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

type Local = Arc<DefaultKeyedRateLimiter<String>>;

/// The deployment's rate limiter (see the module).
pub struct Limiter {
    local: Mutex<HashMap<(String, Quota), Local>>,
    shared: Option<RedisCounters>,
    metrics: Arc<Metrics>,
    checks: AtomicU64,
}

impl Limiter {
    /// Counting in this process only.
    pub fn local(metrics: Arc<Metrics>) -> Self {
        Self { local: Mutex::default(), shared: None, metrics, checks: AtomicU64::new(0) }
    }

    /// Counting in Redis at `url` (keys `<prefix>:rl:<bucket>:<key>`). The connection is
    /// made on first use, so a Redis that is down at start-up stops nothing.
    pub fn redis(url: &str, prefix: &str, metrics: Arc<Metrics>) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("limits.redis_url: {e}"))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1);
        let manager = {
            let _in_runtime = REDIS_RUNTIME.enter();
            redis::aio::ConnectionManager::new_lazy_with_config(client, config)
                .map_err(|e| format!("limits.redis_url: {e}"))?
        };
        Ok(Self {
            shared: Some(RedisCounters {
                manager,
                prefix: prefix.to_owned(),
                down_until_ms: Arc::new(AtomicU64::new(0)),
                script: Arc::new(redis::Script::new(GCRA)),
            }),
            ..Self::local(metrics)
        })
    }

    /// Whether counters are shared through Redis.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Counts one request of `key` in `bucket` against `quota`.
    pub async fn check(&self, bucket: &str, key: &str, quota: Quota) -> Result<(), Refused> {
        if let Some(shared) = &self.shared
            && shared.usable()
        {
            match shared.check(bucket, key, quota).await {
                Ok(0) => return Ok(()),
                Ok(wait_ms) => return Err(Refused { retry_after: Duration::from_millis(wait_ms) }),
                Err(e) => {
                    shared.failed();
                    self.metrics.event("rate_limit_store", "unavailable");
                    tracing::warn!(error = %e, "the shared rate-limit store (Redis) does not answer; counting in this instance for now");
                }
            }
        }
        self.check_local(bucket, key, quota)
    }

    fn check_local(&self, bucket: &str, key: &str, quota: Quota) -> Result<(), Refused> {
        let limiter = {
            let mut map = self.local.lock().unwrap_or_else(|e| e.into_inner());
            map.entry((bucket.to_owned(), quota))
                .or_insert_with(|| {
                    let burst = NonZeroU32::new(quota.limit.max(1)).expect("non-zero");
                    let q = governor::Quota::with_period(quota.interval().max(Duration::from_nanos(1)))
                        .expect("non-zero period")
                        .allow_burst(burst);
                    Arc::new(RateLimiter::keyed(q))
                })
                .clone()
        };
        // Keys not seen for a while are forgotten now and then, so memory stays bounded.
        if self.checks.fetch_add(1, Ordering::Relaxed) % 10_000 == 9_999 {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        limiter.check_key(&key.to_owned()).map_err(|not_until| {
            use governor::clock::Clock;
            Refused { retry_after: not_until.wait_time_from(governor::clock::DefaultClock::default().now()) }
        })
    }
}

/// GCRA over one key: `KEYS[1]` holds the theoretical arrival time (ms, Redis clock);
/// `ARGV[1]` the interval between requests (ms), `ARGV[2]` the burst. Returns 0 when the
/// request is allowed (and counted), else the milliseconds to wait.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - interval * burst
if now < allow_at then return allow_at - now end
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now)
return 0
";

/// Redis calls run on one small runtime of their own: the connection's driver task must
/// outlive whichever HTTP worker happened to make the first request.
static REDIS_RUNTIME: LazyLock<tokio::runtime::Handle> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("redis runtime");
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("ncr-redis".into())
        .spawn(move || runtime.block_on(std::future::pending::<()>()))
        .expect("redis thread");
    handle
});

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now_ms() -> u64 {
    EPOCH.elapsed().as_millis() as u64
}

struct RedisCounters {
    manager: redis::aio::ConnectionManager,
    prefix: String,
    down_until_ms: Arc<AtomicU64>,
    script: Arc<redis::Script>,
}

impl RedisCounters {
    fn usable(&self) -> bool {
        now_ms() >= self.down_until_ms.load(Ordering::Relaxed)
    }

    fn failed(&self) {
        self.down_until_ms.store(now_ms() + RETRY_AFTER_FAILURE.as_millis() as u64, Ordering::Relaxed);
    }

    async fn check(&self, bucket: &str, key: &str, quota: Quota) -> Result<u64, String> {
        let mut conn = self.manager.clone();
        let script = self.script.clone();
        let redis_key = format!("{}:rl:{bucket}:{key}", self.prefix);
        let interval_ms = quota.interval().as_millis().max(1) as u64;
        let call = REDIS_RUNTIME.spawn(async move {
            script.key(redis_key).arg(interval_ms).arg(quota.limit).invoke_async::<u64>(&mut conn).await
        });
        match tokio::time::timeout(REDIS_TIMEOUT, call).await {
            Ok(Ok(Ok(wait))) => Ok(wait),
            Ok(Ok(Err(e))) => Err(e.to_string()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".into()),
        }
    }
}

/// Paths limited per client address (public and citizen endpoints, docs/architecture.md).
fn rate_limited_path(path: &str) -> bool {
    [
        "/api/v1/citizen",
        "/api/v1/public",
        "/api/v1/captcha",
        "/api/v1/offices",
        "/api/v1/efolder",
        "/api/v1/staff/sessions",
    ]
    .iter()
    .any(|p| path.starts_with(p))
}

/// The per-address limit every public and citizen request passes (from the request
/// middleware): a 429 `rate_limited` when the client address exceeded `per_minute`
/// (counted once for the deployment).
pub async fn per_client_address(
    limiter: &Limiter,
    per_minute: u32,
    ip: std::net::IpAddr,
    path: &str,
) -> Option<ApiError> {
    if !rate_limited_path(path) {
        return None;
    }
    limiter
        .check("ip", &ip.to_string(), Quota::per_minute(per_minute))
        .await
        .err()
        .map(|r| r.into_error(ApiCode::RateLimited))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn in_process_a_key_spends_its_burst_then_waits() {
        let limiter = Limiter::local(Arc::new(Metrics::new()));
        let q = Quota::per_minute(3);
        for _ in 0..3 {
            assert!(limiter.check("ip", "a", q).await.is_ok());
        }
        let refused = limiter.check("ip", "a", q).await.unwrap_err();
        assert!(refused.retry_after > Duration::from_secs(15) && refused.retry_after <= Duration::from_secs(20));
        assert!(limiter.check("ip", "b", q).await.is_ok(), "another key has its own budget");
        assert!(limiter.check("client", "a", q).await.is_ok(), "another bucket has its own budget");
        assert!(matches!(
            refused.into_error(ApiCode::RateLimited),
            ApiError::TooManyRequests { retry_after: 17..=20, .. }
        ));
    }
}
