//! Settings: defaults, then an optional `ncr.toml`, then `NCR_*` environment variables
//! (`NCR_CAPTCHA__MODE=production` sets `captcha.mode`), then command-line flags.
//! `DATABASE_URL` is honoured as well as `NCR_DATABASE_URL`. The README lists every
//! setting with its default.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub use adapters::smtp::{EmailConfig, EmailMode, SmtpTls};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub bind: String,
    /// `sqlite://path` (embedded default) or `postgres://…`.
    pub database_url: String,
    /// Folder for the embedded database and generated development keys.
    pub data_dir: PathBuf,
    /// The URL citizens' browsers and banks reach this server at (callbacks, QR codes).
    /// Empty (the default): `http://<the bound address>` — right for a server on this
    /// machine only; a deployment sets it (the production profile requires it).
    pub public_url: String,
    /// `development` or `production`. Unset: `production` with a non-embedded database
    /// (PostgreSQL), `development` with the embedded one. In production the server refuses
    /// to start while any sandbox is active (see [`crate::profile`]).
    pub profile: Option<Profile>,
    /// Sandboxes a production-profile deployment (a staging one) may keep: any of
    /// `captcha`, `bank`, `sms`, `email`, `registry`, `ownership`, `demo_data`.
    pub allow_sandboxes: Vec<String>,
    /// Load demo data into an empty embedded database at start-up: `auto`, `always` or `never`.
    pub demo_data: DemoData,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// A tracing filter such as `info` or `api=debug,info`.
    pub log_level: String,
    /// When set and no administrator exists, creates staff user `admin` with this password.
    pub bootstrap_admin_password: Option<String>,
    /// HTTP worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// Load balancers and reverse proxies (addresses or CIDR ranges) whose
    /// `X-Forwarded-For` is believed: the client is the right-most address in it that is
    /// not one of these. Requests from any other peer are the peer's own.
    pub trusted_proxies: Vec<String>,
    pub db: DbConfig,
    pub policy: PolicyConfig,
    pub captcha: CaptchaConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub jobs: JobsConfig,
    pub payments: PaymentsConfig,
    pub sms: SmsConfig,
    pub email: EmailConfig,
    pub outbox: OutboxConfig,
    pub keys: KeysConfig,
    pub ussd: UssdConfig,
    pub registry: RegistryConfig,
    pub ownership: OwnershipConfig,
    pub metrics: MetricsConfig,
    pub shutdown: ShutdownConfig,
    pub cors: CorsConfig,
    pub production: ProductionConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            database_url: "sqlite://data/ncr.db".into(),
            data_dir: PathBuf::from("data"),
            public_url: String::new(),
            profile: None,
            allow_sandboxes: Vec::new(),
            demo_data: DemoData::Auto,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            bootstrap_admin_password: None,
            workers: 0,
            trusted_proxies: Vec::new(),
            db: DbConfig::default(),
            policy: PolicyConfig::default(),
            captcha: CaptchaConfig::default(),
            auth: AuthConfig::default(),
            limits: LimitsConfig::default(),
            jobs: JobsConfig::default(),
            payments: PaymentsConfig::default(),
            sms: SmsConfig::default(),
            email: EmailConfig::default(),
            outbox: OutboxConfig::default(),
            keys: KeysConfig::default(),
            ussd: UssdConfig::default(),
            registry: RegistryConfig::default(),
            ownership: OwnershipConfig::default(),
            metrics: MetricsConfig::default(),
            shutdown: ShutdownConfig::default(),
            cors: CorsConfig::default(),
            production: ProductionConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DemoData {
    Auto,
    Always,
    Never,
}

/// What the deployment is: a developer's or demo machine, or the real service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    Development,
    Production,
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Development => "development",
            Profile::Production => "production",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DbConfig {
    pub max_connections: u32,
    /// How long a request waits for a pooled connection before it is answered 503.
    pub connection_timeout_ms: u64,
    pub sqlite_busy_timeout_ms: u64,
    /// PostgreSQL is reached through a pooler in transaction mode (PgBouncer
    /// `pool_mode = transaction`): no prepared-statement cache, no session settings, and
    /// migrations in one transaction under a transaction-level advisory lock.
    pub transaction_pooler: bool,
}

impl Default for DbConfig {
    fn default() -> Self {
        Self {
            max_connections: 16,
            connection_timeout_ms: 5000,
            sqlite_busy_timeout_ms: 5000,
            transaction_pooler: false,
        }
    }
}

/// Who may read `/metrics`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// A separate listen address serving only `/metrics` and the health checks (keep it
    /// off the load balancer); the API address then answers 404 for `/metrics`.
    pub bind: Option<String>,
    /// When set, `/metrics` requires `Authorization: Bearer <token>` (401 otherwise).
    pub token: Option<String>,
}

/// What happens on SIGTERM (see the README's "Behind a load balancer").
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownConfig {
    /// Seconds the instance keeps answering after SIGTERM — not ready, every answer with
    /// `Connection: close` — before it stops listening. Longer than the proxy's upstream
    /// keep-alive timeout, so no idle proxy connection is left to close under a request.
    pub drain_seconds: u64,
    /// Seconds requests still running after the drain may take before the process exits.
    pub grace_seconds: u64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self { drain_seconds: 10, grace_seconds: 30 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    pub min_age_years: u32,
    pub personal_info_edits: u8,
    pub no_show_ban_days: u32,
    pub booking_window_months: u32,
    pub hold_minutes: i64,
    pub booking_horizon_days: u32,
    /// Days a seat offered after a closure is kept for the displaced citizen.
    pub closure_offer_days: u32,
    pub card_ready_days: u32,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        let p = domain::Policy::default();
        Self {
            min_age_years: p.min_age_years,
            personal_info_edits: p.personal_info_edits,
            no_show_ban_days: p.no_show_ban_days,
            booking_window_months: p.booking_window_months,
            hold_minutes: p.hold_ttl.num_minutes(),
            booking_horizon_days: p.booking_horizon_days,
            closure_offer_days: p.closure_offer_days,
            card_ready_days: p.card_ready_days,
        }
    }
}

impl PolicyConfig {
    pub fn to_policy(&self) -> domain::Policy {
        domain::Policy {
            min_age_years: self.min_age_years,
            personal_info_edits: self.personal_info_edits,
            no_show_ban_days: self.no_show_ban_days,
            booking_window_months: self.booking_window_months,
            hold_ttl: chrono::Duration::minutes(self.hold_minutes),
            booking_horizon_days: self.booking_horizon_days,
            closure_offer_days: self.closure_offer_days,
            card_ready_days: self.card_ready_days,
            ..domain::Policy::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptchaMode {
    /// Answers carry `sandbox_answer` so demos and tests can pass.
    Sandbox,
    Production,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaptchaConfig {
    pub mode: CaptchaMode,
    pub ttl_seconds: i64,
}

impl Default for CaptchaConfig {
    fn default() -> Self {
        Self { mode: CaptchaMode::Sandbox, ttl_seconds: 120 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// `iss` of every token this server issues and accepts.
    pub issuer: String,
    pub citizen_token_minutes: i64,
    pub staff_token_minutes: i64,
    pub machine_token_minutes: i64,
    pub efolder_token_minutes: i64,
    /// A staff session unused for this long ends, whatever its token's lifetime.
    pub staff_idle_minutes: i64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            issuer: "ncr".into(),
            citizen_token_minutes: 30,
            staff_token_minutes: 480,
            machine_token_minutes: 15,
            efolder_token_minutes: 60,
            staff_idle_minutes: 30,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest JSON or form body accepted (larger: 413).
    pub body_bytes: usize,
    /// Requests per minute one client address may make to public and citizen endpoints.
    pub per_ip_per_minute: u32,
    /// Wrong serials for one national code before entry is slowed down and then locked.
    pub entry_failures_before_lock: i32,
    pub entry_lock_minutes: i64,
    /// Failed public status lookups (and recoveries) per national code per (Tehran) day,
    /// from all addresses together, before each address gets one try a day at it.
    pub status_lookups_per_day: i32,
    /// Tracking-code recoveries (SMS sent) per national code per day.
    pub recoveries_per_day: i32,
    /// Redis (`redis://host:6379/0`) holding the request-rate counters every instance
    /// shares. Unset: each process counts alone (the embedded default). When Redis does
    /// not answer, each instance counts alone until it does again.
    pub redis_url: Option<String>,
    /// Prefix of the counters' keys in Redis (deployments sharing one Redis).
    pub redis_key_prefix: String,
    /// Length of the windows below.
    pub failure_window_minutes: i64,
    /// Wrong guesses (serials, passwords) at one national code or account from all
    /// addresses together per window, before each address gets one guess at it.
    pub subject_failures_per_window: i32,
    /// Wrong guesses from one client address at all national codes or accounts per window
    /// (status lookups and recoveries: per day).
    pub client_failures_per_window: i32,
    /// E-folder registrations of one national code (or legal ID) refused by the
    /// mobile-ownership or registry inquiry per Tehran day, before no more are inquired.
    pub efolder_registrations_per_day: i32,
    /// E-folder registrations that reach the inquiries from one client address per hour,
    /// all national codes together (each costs two outside inquiries).
    pub efolder_registrations_per_client_per_hour: i32,
    /// E-folder credentials recoveries one national code may ask for per Tehran day
    /// (each resets the password and sends an SMS).
    pub efolder_credential_recoveries_per_day: i32,
    /// Captcha challenges one client address may fetch per minute. Unset: a tenth of
    /// `per_ip_per_minute` (60 by default), so raising that for a load test raises this too.
    pub captchas_per_ip_per_minute: Option<u32>,
}

impl LimitsConfig {
    /// Captcha challenges per client address per minute (see `captchas_per_ip_per_minute`).
    pub fn captchas_per_minute(&self) -> u32 {
        self.captchas_per_ip_per_minute.unwrap_or(self.per_ip_per_minute / 10).max(1)
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            body_bytes: 64 * 1024,
            per_ip_per_minute: 600,
            entry_failures_before_lock: 5,
            entry_lock_minutes: 15,
            status_lookups_per_day: 20,
            recoveries_per_day: 3,
            redis_url: None,
            redis_key_prefix: "ncr".into(),
            failure_window_minutes: 60,
            subject_failures_per_window: 20,
            client_failures_per_window: 50,
            efolder_registrations_per_day: 5,
            efolder_registrations_per_client_per_hour: 10,
            efolder_credential_recoveries_per_day: 3,
            captchas_per_ip_per_minute: None,
        }
    }
}

/// The card production line's queue (`GET /api/v1/production/applications`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ProductionConfig {
    /// How long an application handed to one production client is kept from the others
    /// (until its `production_started` event, or until the lease ends).
    pub lease_minutes: i64,
}

impl Default for ProductionConfig {
    fn default() -> Self {
        Self { lease_minutes: 10 }
    }
}

/// Who may call `POST /api/v1/ussd`. With a secret, every request must carry it in
/// Cross-origin access for browser apps on other origins (a portal at
/// `https://portal.example`). Empty (the default): no CORS headers at all, so browsers
/// keep other origins out. Tokens travel in `Authorization`, never in cookies, so
/// credentialed requests are not allowed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct CorsConfig {
    /// Exact origins (`https://portal.example`, `http://localhost:5173`), or `"*"` for any.
    pub allowed_origins: Vec<String>,
    /// How long a browser may cache a preflight answer.
    pub max_age_seconds: usize,
}

impl Default for CorsConfig {
    fn default() -> Self {
        Self { allowed_origins: Vec::new(), max_age_seconds: 600 }
    }
}

impl CorsConfig {
    /// Checks every entry is `*` or a bare origin (`scheme://host[:port]`, no path).
    pub fn validate(&self) -> Result<(), String> {
        for origin in &self.allowed_origins {
            if origin == "*" {
                continue;
            }
            let bad = || format!("cors.allowed_origins: {origin:?} is not an origin such as https://portal.example");
            let (scheme, rest) = origin.split_once("://").ok_or_else(bad)?;
            let host_ok = !rest.is_empty()
                && rest.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
            if !matches!(scheme, "http" | "https") || !host_ok {
                return Err(bad());
            }
        }
        Ok(())
    }
}

/// `X-USSD-Secret`; with an allow-list, it must come from one of those addresses; with
/// both, both. With neither, only the embedded (SQLite) default answers, and only to
/// requests from this machine; any other deployment answers 503 `ussd_not_configured`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct UssdConfig {
    /// The shared secret the gateway sends in `X-USSD-Secret`.
    pub secret: Option<String>,
    /// Gateway addresses: single IPs (`10.20.0.7`) or CIDR ranges (`10.20.0.0/24`).
    pub allowed_ips: Vec<String>,
}

impl UssdConfig {
    /// The allow-list parsed as (network, prefix length); an error names the bad entry.
    pub fn networks(&self) -> Result<Vec<(std::net::IpAddr, u8)>, String> {
        parse_networks("ussd.allowed_ips", &self.allowed_ips)
    }

    /// Whether an address is on the allow-list.
    pub fn allows(&self, addr: std::net::IpAddr) -> bool {
        let networks = self.networks().unwrap_or_default();
        networks.iter().any(|&(net, len)| in_network(addr, net, len))
    }
}

/// Addresses and CIDR ranges (`10.0.0.7`, `10.20.0.0/24`, `fd00::/8`) as (network, prefix
/// length); an error names the setting and the bad entry.
pub fn parse_networks(setting: &str, entries: &[String]) -> Result<Vec<(std::net::IpAddr, u8)>, String> {
    entries
        .iter()
        .map(|entry| {
            let bad = || format!("{setting}: {entry:?} is not an IP address or CIDR range");
            let (ip, len) = entry.trim().split_once('/').map_or((entry.trim(), None), |(a, l)| (a, Some(l)));
            let ip: std::net::IpAddr = ip.parse().map_err(|_| bad())?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let len = match len {
                Some(l) => l.parse::<u8>().ok().filter(|l| *l <= max).ok_or_else(bad)?,
                None => max,
            };
            Ok((ip, len))
        })
        .collect()
}

/// Whether `addr` (IPv4-mapped IPv6 counts as IPv4) is in `net`/`len`.
pub fn in_network(addr: std::net::IpAddr, net: std::net::IpAddr, len: u8) -> bool {
    use std::net::IpAddr;
    // An IPv4 peer may arrive as an IPv4-mapped IPv6 address.
    let addr = match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    };
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Run the background workers in this process.
    pub enabled: bool,
    /// Seconds between two runs of the frequent jobs (holds, outbox, inquiries, payments).
    pub interval_seconds: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self { enabled: true, interval_seconds: 5 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentsConfig {
    /// Gateways citizens may choose: `sandbox`, `sadad`, `parsian`.
    pub gateways: Vec<String>,
    /// Where the browser goes after the bank (outcome in the query). Empty: this server's
    /// own result page, `<public_url>/payment/result`.
    pub result_url: String,
    /// The merchant name the sandbox bank shows.
    pub merchant_name: String,
    pub sadad: Option<adapters::payments::sadad::SadadConfig>,
    pub parsian: Option<adapters::payments::parsian::ParsianConfig>,
    /// Reversals (money given back: duplicates, mismatches) the bank may leave
    /// unconfirmed before the payment becomes `refund_failed` for an administrator.
    pub reversal_max_attempts: u32,
    /// Minutes before the first retry of an unconfirmed reversal; each later retry waits
    /// twice as long (at most six hours).
    pub reversal_retry_minutes: u32,
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        Self {
            gateways: vec!["sandbox".into()],
            result_url: String::new(),
            merchant_name: "سازمان ثبت احوال کشور".into(),
            sadad: None,
            parsian: None,
            reversal_max_attempts: 10,
            reversal_retry_minutes: 2,
        }
    }
}

impl PaymentsConfig {
    pub fn sandbox_enabled(&self) -> bool {
        self.gateways.iter().any(|g| g == "sandbox")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistryMode {
    /// The synthetic population in `registry_people`, loaded with the demo data.
    Sandbox,
    /// The civil registry's inquiry service over HTTP; needs `[registry.http]`.
    Http,
}

/// The civil registry (ثبت احوال) every identity check asks: entry, personal information,
/// the identity inquiry job and e-folder registration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    pub mode: RegistryMode,
    /// `base_url`, `token` (or `username` + `password`) and `resilience` (timeout,
    /// retries, circuit breaker).
    pub http: Option<adapters::registry_http::RegistryHttpConfig>,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self { mode: RegistryMode::Sandbox, http: None }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnershipMode {
    /// Pairs in `sandbox_mobile_owners`, loaded with the demo population.
    Sandbox,
    /// The operators' inquiry service over HTTP; needs `[ownership.http]`.
    Http,
}

/// The mobile-ownership inquiry used by e-folder registration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OwnershipConfig {
    pub mode: OwnershipMode,
    /// `base_url`, `token` and `resilience` (timeout, retries, circuit breaker).
    pub http: Option<adapters::ownership_http::OwnershipHttpConfig>,
}

impl Default for OwnershipConfig {
    fn default() -> Self {
        Self { mode: OwnershipMode::Sandbox, http: None }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmsMode {
    /// Texts are stored in `sandbox_sms` (the sandbox phone, listed to admins).
    Sandbox,
    /// Texts go to Kavenegar's REST API; needs `[sms.kavenegar]`.
    Kavenegar,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmsConfig {
    pub mode: SmsMode,
    /// `api_key`, optional `sender` line, `base_url` and `resilience`.
    pub kavenegar: Option<adapters::sms_http::SmsHttpConfig>,
}

impl Default for SmsConfig {
    fn default() -> Self {
        Self { mode: SmsMode::Sandbox, kavenegar: None }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxConfig {
    /// Messages one worker claims at a time.
    pub batch_size: u32,
    /// Messages of a batch handed to providers at the same time.
    pub parallel_sends: u32,
    /// Batches one run of the worker goes through at most (then the next tick continues).
    pub max_batches_per_run: u32,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self { batch_size: 50, parallel_sends: 8, max_batches_per_run: 20 }
    }
}

/// Key material. When nothing is configured, the embedded default generates keys once
/// and keeps them in `<data_dir>/secrets.toml` (mode 0600). `ncr keygen` prints a fresh set.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct KeysConfig {
    /// Ed25519 signing keys for tokens and receipt signatures; the first one signs.
    pub signing: Vec<SigningKeyConfig>,
    /// Keys protecting personal identifiers at rest; `pii_active` names the one in use.
    pub pii: Vec<PiiKeyConfig>,
    pub pii_active: Option<String>,
    /// HMAC key for stateless captcha challenges (base64, 32 bytes).
    pub captcha: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SigningKeyConfig {
    pub id: String,
    /// The 32-byte Ed25519 seed, base64.
    pub seed: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PiiKeyConfig {
    pub id: String,
    pub hmac: String,
    pub enc: String,
}

impl KeysConfig {
    pub fn is_empty(&self) -> bool {
        self.signing.is_empty() && self.pii.is_empty() && self.captcha.is_none()
    }
}

/// Variables that are not settings (`k` without `NCR_`): the scripts' own, and
/// `NCR_CONFIG`, the command line's `--config` (which file to read, not a value in it).
fn is_tooling_variable(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    k == "config" || ["test_", "fuzz_", "skip_", "bench_"].iter().any(|p| k.starts_with(p))
}

impl Config {
    /// Reads defaults, `config_file` (if it exists), then the environment.
    pub fn load(config_file: Option<&Path>) -> Result<Self, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        let file = config_file.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("ncr.toml"));
        if file.exists() {
            figment = figment.merge(Toml::file(file));
        }
        figment
            .merge(Env::raw().only(&["DATABASE_URL"]).map(|_| "database_url".into()))
            // `NCR_TEST_*`, `NCR_FUZZ_*`, `NCR_SKIP_*` and `NCR_BENCH_*` belong to the test
            // and benchmark scripts, `NCR_CONFIG` to the command line; every other `NCR_`
            // variable must be a setting.
            .merge(Env::prefixed("NCR_").filter(|k| !is_tooling_variable(k.as_str())).split("__"))
            .extract()
            .map_err(Box::new)
    }

    pub fn db_settings(&self) -> persistence::DbSettings {
        persistence::DbSettings {
            url: self.database_url.clone(),
            max_connections: self.db.max_connections,
            connection_timeout: std::time::Duration::from_millis(self.db.connection_timeout_ms),
            sqlite_busy_timeout: std::time::Duration::from_millis(self.db.sqlite_busy_timeout_ms),
            transaction_pooler: self.db.transaction_pooler,
        }
    }

    pub fn is_embedded(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }

    /// The profile in force: the configured one, else `production` for a non-embedded
    /// database and `development` for the embedded one.
    pub fn profile(&self) -> Profile {
        self.profile.unwrap_or(if self.is_embedded() { Profile::Development } else { Profile::Production })
    }

    /// Fills an empty `public_url` with `http://<address>`: the address the server is
    /// listening on when known (`bound`), else `bind` as configured. An unspecified
    /// address (`0.0.0.0`, `[::]`) becomes the loopback one, which a browser can reach.
    pub fn settle_public_url(&mut self, bound: Option<std::net::SocketAddr>) {
        if !self.public_url.trim().is_empty() {
            return;
        }
        let addr = bound.or_else(|| self.bind.parse::<std::net::SocketAddr>().ok());
        self.public_url = match addr {
            Some(mut a) => {
                if a.ip().is_unspecified() {
                    a.set_ip(if a.is_ipv4() {
                        std::net::Ipv4Addr::LOCALHOST.into()
                    } else {
                        std::net::Ipv6Addr::LOCALHOST.into()
                    });
                }
                format!("http://{a}")
            }
            None => format!("http://{}", self.bind),
        };
    }
}

#[cfg(test)]
#[expect(clippy::result_large_err, reason = "figment's Jail API returns its own error type")]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_embedded_setup() {
        figment::Jail::expect_with(|jail| {
            // The scripts' own variables are not settings and never stop a start.
            jail.set_env("NCR_SKIP_FUZZ", "1");
            jail.set_env("NCR_TEST_LOG_DIR", "/tmp/logs");
            // Nor does the command line's NCR_CONFIG (which file to read).
            jail.set_env("NCR_CONFIG", "elsewhere.toml");
            let c = Config::load(None).map_err(|e| *e)?;
            assert_eq!(c.bind, "127.0.0.1:8080");
            assert_eq!(c.database_url, "sqlite://data/ncr.db");
            assert_eq!(c.captcha.mode, CaptchaMode::Sandbox);
            assert_eq!(c.profile(), Profile::Development);
            Ok(())
        });
    }

    #[test]
    fn file_then_environment_override() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("ncr.toml", "bind = \"0.0.0.0:9000\"\n[captcha]\nmode = \"production\"\n")?;
            jail.set_env("DATABASE_URL", "postgres://postgres@127.0.0.1/ncr");
            jail.set_env("NCR_POLICY__NO_SHOW_BAN_DAYS", "3");
            let c = Config::load(None).map_err(|e| *e)?;
            assert_eq!(c.bind, "0.0.0.0:9000");
            assert_eq!(c.captcha.mode, CaptchaMode::Production);
            assert_eq!(c.database_url, "postgres://postgres@127.0.0.1/ncr");
            assert_eq!(c.policy.to_policy().no_show_ban_days, 3);
            jail.set_env("NCR_BIND", "127.0.0.1:1");
            assert_eq!(Config::load(None).map_err(|e| *e)?.bind, "127.0.0.1:1");
            Ok(())
        });
    }

    #[test]
    fn messaging_sections_and_secrets_stay_out_of_debug() {
        figment::Jail::expect_with(|jail| {
            let c = Config::load(None).map_err(|e| *e)?;
            assert_eq!((c.sms.mode, c.email.mode), (SmsMode::Sandbox, EmailMode::Sandbox));
            jail.create_file(
                "ncr.toml",
                "[sms]\nmode = \"kavenegar\"\n[sms.kavenegar]\napi_key = \"kv-key\"\n\
                 [email]\nmode = \"smtp\"\nsmtp_host = \"mail.example.ir\"\nsmtp_port = 465\nsmtp_tls = \"tls\"\n",
            )?;
            jail.set_env("NCR_EMAIL__PASSWORD", "smtp-secret");
            let c = Config::load(None).map_err(|e| *e)?;
            assert_eq!(c.sms.mode, SmsMode::Kavenegar);
            assert_eq!(c.sms.kavenegar.as_ref().map(|k| k.api_key.as_str()), Some("kv-key"));
            assert_eq!((c.email.mode, c.email.smtp_port, c.email.smtp_tls), (EmailMode::Smtp, 465, SmtpTls::Tls));
            assert_eq!(c.email.password.as_deref(), Some("smtp-secret"));
            let debug = format!("{c:?}");
            assert!(!debug.contains("smtp-secret") && !debug.contains("kv-key"), "{debug}");
            jail.create_file("ncr.toml", "[email]\nsmtp_hots = \"typo\"\n")?;
            assert!(Config::load(None).is_err());
            Ok(())
        });
    }

    #[test]
    fn the_ownership_inquiry_is_sandbox_by_default_or_http_with_a_hidden_token() {
        figment::Jail::expect_with(|jail| {
            let c = Config::load(None).map_err(|e| *e)?;
            assert_eq!(c.ownership.mode, OwnershipMode::Sandbox);
            jail.create_file(
                "ncr.toml",
                "[ownership]\nmode = \"http\"\n[ownership.http]\nbase_url = \"https://inquiry.example.ir/v1\"\n",
            )?;
            jail.set_env("NCR_OWNERSHIP__HTTP__TOKEN", "inquiry-secret");
            let c = Config::load(None).map_err(|e| *e)?;
            assert_eq!(c.ownership.mode, OwnershipMode::Http);
            assert_eq!(c.ownership.http.as_ref().map(|h| h.token.as_str()), Some("inquiry-secret"));
            assert!(!format!("{c:?}").contains("inquiry-secret"));
            Ok(())
        });
    }

    #[test]
    fn the_registry_is_sandbox_by_default_or_http_from_the_environment_alone() {
        figment::Jail::expect_with(|jail| {
            let c = Config::load(None).map_err(|e| *e)?;
            assert_eq!(c.registry.mode, RegistryMode::Sandbox);
            assert!(c.registry.http.is_none());
            // Every documented setting works as an environment variable, without a file.
            jail.set_env("NCR_REGISTRY__MODE", "http");
            jail.set_env("NCR_REGISTRY__HTTP__BASE_URL", "https://registry.example.ir/v1");
            jail.set_env("NCR_REGISTRY__HTTP__TOKEN", "registry-secret");
            jail.set_env("NCR_REGISTRY__HTTP__RESILIENCE__TIMEOUT_MS", "1500");
            jail.set_env("NCR_REGISTRY__HTTP__RESILIENCE__RETRIES", "1");
            jail.set_env("NCR_REGISTRY__HTTP__RESILIENCE__BREAKER_FAILURES", "7");
            let c = Config::load(None).map_err(|e| *e)?;
            assert_eq!(c.registry.mode, RegistryMode::Http);
            let http = c.registry.http.clone().expect("[registry.http]");
            assert_eq!(http.base_url, "https://registry.example.ir/v1");
            assert_eq!(http.token.as_deref(), Some("registry-secret"));
            assert_eq!((http.resilience.timeout_ms, http.resilience.retries), (1500, 1));
            assert_eq!(http.resilience.breaker_failures, 7);
            assert_eq!(http.resilience.backoff_base_ms, 100, "unset resilience settings keep their defaults");
            assert!(!format!("{c:?}").contains("registry-secret"));
            // Basic credentials from a file, the password from the environment.
            jail.clear_env();
            jail.create_file(
                "ncr.toml",
                "[registry]\nmode = \"http\"\n[registry.http]\nbase_url = \"https://r.example\"\nusername = \"ncr\"\n",
            )?;
            jail.set_env("NCR_REGISTRY__HTTP__PASSWORD", "basic-secret");
            let c = Config::load(None).map_err(|e| *e)?;
            let http = c.registry.http.clone().expect("[registry.http]");
            assert_eq!((http.username.as_deref(), http.password.as_deref()), (Some("ncr"), Some("basic-secret")));
            assert!(!format!("{c:?}").contains("basic-secret"));
            jail.set_env("NCR_REGISTRY__MOD", "http");
            assert!(Config::load(None).is_err(), "a misspelt setting is still refused");
            Ok(())
        });
    }

    #[test]
    fn ussd_allow_list_takes_ips_and_ranges() {
        let c = UssdConfig { secret: None, allowed_ips: vec!["10.20.0.0/24".into(), "192.0.2.7".into()] };
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert!(c.allows(ip("10.20.0.200")));
        assert!(!c.allows(ip("10.20.1.1")));
        assert!(c.allows(ip("192.0.2.7")));
        assert!(c.allows(ip("::ffff:192.0.2.7")), "IPv4-mapped peers match IPv4 entries");
        assert!(!c.allows(ip("192.0.2.8")));
        assert!(UssdConfig { secret: None, allowed_ips: vec!["10.0.0.0/33".into()] }.networks().is_err());
        assert!(UssdConfig { secret: None, allowed_ips: vec!["gateway".into()] }.networks().is_err());
        assert!(UssdConfig { secret: None, allowed_ips: vec!["0.0.0.0/0".into()] }.allows(ip("8.8.8.8")));
    }

    #[test]
    fn a_non_embedded_database_means_production_unless_development_is_set() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("DATABASE_URL", "postgres://postgres@127.0.0.1/ncr");
            assert_eq!(Config::load(None).map_err(|e| *e)?.profile(), Profile::Production);
            jail.set_env("NCR_PROFILE", "development");
            jail.set_env("NCR_ALLOW_SANDBOXES", "[\"bank\", \"sms\"]");
            let c = Config::load(None).map_err(|e| *e)?;
            assert_eq!(c.profile(), Profile::Development);
            assert_eq!(c.allow_sandboxes, ["bank", "sms"]);
            jail.set_env("DATABASE_URL", "sqlite://data/x.db");
            jail.set_env("NCR_PROFILE", "production");
            assert_eq!(Config::load(None).map_err(|e| *e)?.profile(), Profile::Production);
            Ok(())
        });
    }

    #[test]
    fn public_url_defaults_to_the_bound_address() {
        let mut c = Config { bind: "0.0.0.0:9123".into(), ..Config::default() };
        c.settle_public_url(None);
        assert_eq!(c.public_url, "http://127.0.0.1:9123");
        let mut c = Config { bind: "127.0.0.1:0".into(), ..Config::default() };
        c.settle_public_url(Some("127.0.0.1:40555".parse().unwrap()));
        assert_eq!(c.public_url, "http://127.0.0.1:40555", "the port actually bound");
        let mut c = Config { bind: "[::]:9000".into(), ..Config::default() };
        c.settle_public_url(None);
        assert_eq!(c.public_url, "http://[::1]:9000");
        let mut c = Config { public_url: "https://ncr.example.ir".into(), ..Config::default() };
        c.settle_public_url(Some("127.0.0.1:1".parse().unwrap()));
        assert_eq!(c.public_url, "https://ncr.example.ir", "a configured URL is kept");
    }

    #[test]
    fn unknown_settings_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("ncr.toml", "bnid = \"typo\"\n")?;
            assert!(Config::load(None).is_err());
            Ok(())
        });
    }
}
