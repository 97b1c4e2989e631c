//! Turning configuration into a running state: database, migrations, keys, demo data
//! and the bootstrap administrator.

use std::sync::Arc;

use adapters::ownership_http::HttpOwnershipCheck;
use adapters::payments::sandbox::SandboxBank;
use adapters::registry_http::HttpCivilRegistry;
use adapters::sandbox::{SandboxEmail, SandboxOwnership, SandboxRegistry, SandboxSms};
use adapters::sms_http::KavenegarSms;
use adapters::smtp::SmtpEmail;
use domain::ports::{CivilRegistry, Clock, EmailSender, MobileOwnershipCheck, RandomSource, SmsSender};
use persistence::{Db, Pii};

use crate::config::{Config, DemoData, EmailMode, OwnershipMode, RegistryMode, SmsMode};
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::tokens::TokenService;

/// What the caller decides: the clock and randomness (tests pass controllable ones).
pub struct Environment {
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn RandomSource>,
}

impl Default for Environment {
    fn default() -> Self {
        Self { clock: Arc::new(domain::ports::SystemClock), random: Arc::new(crate::clock::OsRandom) }
    }
}

/// Opens the database, applies migrations, loads keys, creates the bootstrap admin and
/// — for an empty embedded database — the demo data.
pub fn build_state(mut config: Config, env: Environment) -> Result<AppState, String> {
    config.settle_public_url(None);
    // A mistyped gateway address must stop the start, not silently lock the gateway out.
    config.ussd.networks()?;
    let trusted_proxies = crate::client_addr::TrustedProxies::parse(&config.trusted_proxies)?;
    let metrics = Arc::new(Metrics::new());
    let limiter = match config.limits.redis_url.as_deref().filter(|u| !u.is_empty()) {
        Some(url) => crate::limits::Limiter::redis(url, &config.limits.redis_key_prefix, metrics.clone())?,
        None => {
            if !config.is_embedded() {
                tracing::warn!(
                    "limits.redis_url is not set: every instance counts request rates alone (set it when several instances serve behind a load balancer)"
                );
            }
            crate::limits::Limiter::local(metrics.clone())
        }
    };
    config.cors.validate()?;
    if !(1..=24 * 60).contains(&config.production.lease_minutes) {
        return Err("production.lease_minutes must be 1 to 1440".into());
    }
    let db = Db::connect(&config.db_settings()).map_err(|e| e.to_string())?;
    let applied = db.migrate().map_err(|e| e.to_string())?;
    if applied > 0 {
        tracing::info!(applied, backend = db.backend().as_str(), "migrations applied");
    }
    crate::profile::check_database(&config, &mut *db.get().map_err(|e| e.to_string())?)?;
    let keys = crate::secrets::load(&config)?;
    seal_waiting(&db, &keys.pii)?;
    let tokens = TokenService::new(&config.auth.issuer, &keys.signing)?;
    let (registry, sandbox_registry) = registry(&config, &db)?;
    let pii = Arc::new(keys.pii);
    let messaging = messaging(&config, &db, &pii, &env.clock)?;
    let (ownership, sandbox_ownership) = ownership(&config, &db)?;
    let bank_control = Arc::new(adapters::sandbox::SandboxBankControl::default());
    let (gateways, bank_desk) = gateways(&config, &db, &env, &bank_control)?;
    let state = AppState {
        registry,
        ownership,
        sms: messaging.sms,
        email: messaging.email,
        sandboxes: crate::state::Sandboxes {
            registry: sandbox_registry,
            bank: bank_control,
            bank_desk,
            sms: messaging.sandbox_sms,
            email: messaging.sandbox_email,
            ownership: sandbox_ownership,
        },
        captcha_key: keys.captcha,
        gateways,
        limiter: Arc::new(limiter),
        trusted_proxies,
        draining: Default::default(),
        full_slots: Default::default(),
        catalog: Default::default(),
        policy: config.policy.to_policy(),
        config: Arc::new(config),
        db,
        pii,
        tokens: Arc::new(tokens),
        clock: env.clock,
        random: env.random,
        metrics,
    };
    if let Some(password) = state.config.bootstrap_admin_password.clone() {
        bootstrap_admin(&state, &password)?;
    }
    let load_demo = match state.config.demo_data {
        DemoData::Always => true,
        DemoData::Never => false,
        DemoData::Auto => state.config.is_embedded() && crate::seed::is_empty(&state).map_err(|e| e.to_string())?,
    };
    if load_demo {
        let summary = crate::seed::seed_demo(&state).map_err(|e| e.to_string())?;
        tracing::info!(%summary, "demo data loaded");
    }
    log_adapters(&state.config);
    Ok(state)
}

/// Seals the clear values a migration left waiting (issue 24), before anything is served.
pub fn seal_waiting(db: &Db, pii: &persistence::Pii) -> Result<usize, String> {
    let mut conn = db.get().map_err(|e| e.to_string())?;
    let sealed = persistence::unsealed::seal_waiting(&mut conn, pii).map_err(|e| e.to_string())?;
    if sealed > 0 {
        tracing::info!(sealed, "personal values left by a migration sealed at rest");
    }
    Ok(sealed)
}

/// One start-up line naming the profile and the adapter behind every port.
fn log_adapters(config: &Config) {
    let adapters = crate::profile::adapters(config);
    let get = |port: &str| adapters.iter().find(|(p, _)| *p == port).map(|(_, a)| a.as_str()).unwrap_or_default();
    tracing::info!(
        profile = config.profile().as_str(),
        database = get("database"),
        registry = get("registry"),
        ownership = get("ownership"),
        sms = get("sms"),
        email = get("email"),
        captcha = get("captcha"),
        payments = get("payments"),
        rate_limits = get("rate_limits"),
        demo_data = get("demo_data"),
        sandboxes = %crate::profile::active(config).iter().map(|s| s.name).collect::<Vec<_>>().join(","),
        "adapters in use"
    );
}

/// The SMS and e-mail senders the configuration chooses, with the sandbox handles.
struct Messaging {
    sms: Arc<dyn SmsSender>,
    email: Arc<dyn EmailSender>,
    sandbox_sms: Option<Arc<SandboxSms>>,
    sandbox_email: Option<Arc<SandboxEmail>>,
}

fn messaging(config: &Config, db: &Db, pii: &Arc<Pii>, clock: &Arc<dyn Clock>) -> Result<Messaging, String> {
    let (sms, sandbox_sms): (Arc<dyn SmsSender>, _) = match config.sms.mode {
        SmsMode::Sandbox => {
            let s = Arc::new(SandboxSms::new(db.clone(), pii.clone(), clock.clone()));
            (s.clone(), Some(s))
        }
        SmsMode::Kavenegar => {
            let c = config.sms.kavenegar.clone().ok_or("sms.mode is kavenegar but [sms.kavenegar] is missing")?;
            (Arc::new(KavenegarSms::new(c).map_err(|e| format!("sms.kavenegar: {e}"))?), None)
        }
    };
    let (email, sandbox_email): (Arc<dyn EmailSender>, _) = match config.email.mode {
        EmailMode::Sandbox => {
            let s = Arc::new(SandboxEmail::new(db.clone(), pii.clone(), clock.clone()));
            (s.clone(), Some(s))
        }
        EmailMode::Smtp => (Arc::new(SmtpEmail::new(&config.email)?), None),
    };
    Ok(Messaging { sms, email, sandbox_sms, sandbox_email })
}

type RegistryChoice = (Arc<dyn CivilRegistry>, Option<Arc<SandboxRegistry>>);

/// The civil registry the configuration chooses, with the sandbox handle.
fn registry(config: &Config, db: &Db) -> Result<RegistryChoice, String> {
    Ok(match config.registry.mode {
        RegistryMode::Sandbox => {
            let s = Arc::new(SandboxRegistry::new(db.clone()));
            (s.clone(), Some(s))
        }
        RegistryMode::Http => {
            let c = config.registry.http.clone().ok_or("registry.mode is http but [registry.http] is missing")?;
            (Arc::new(HttpCivilRegistry::new(c).map_err(|e| format!("registry.http: {e}"))?), None)
        }
    })
}

type OwnershipChoice = (Arc<dyn MobileOwnershipCheck>, Option<Arc<SandboxOwnership>>);

/// The mobile-ownership inquiry the configuration chooses, with the sandbox handle.
fn ownership(config: &Config, db: &Db) -> Result<OwnershipChoice, String> {
    Ok(match config.ownership.mode {
        OwnershipMode::Sandbox => {
            let s = Arc::new(SandboxOwnership::new(db.clone()));
            (s.clone(), Some(s))
        }
        OwnershipMode::Http => {
            let c = config.ownership.http.clone().ok_or("ownership.mode is http but [ownership.http] is missing")?;
            (Arc::new(HttpOwnershipCheck::new(c).map_err(|e| format!("ownership.http: {e}"))?), None)
        }
    })
}

/// The payment gateways the configuration names, with the sandbox bank when `sandbox` is
/// one of them (its pages and API are served from it; the journey calls it in process).
fn gateways(
    config: &Config,
    db: &Db,
    env: &Environment,
    control: &Arc<adapters::sandbox::SandboxBankControl>,
) -> Result<(crate::state::Gateways, Option<Arc<SandboxBank>>), String> {
    use adapters::payments::{parsian::ParsianGateway, sadad::SadadGateway};
    let http =
        reqwest::Client::builder().timeout(std::time::Duration::from_secs(15)).build().map_err(|e| e.to_string())?;
    let mut out = crate::state::Gateways::default();
    let mut desk = None;
    for name in &config.payments.gateways {
        let gw: Arc<dyn domain::ports::PaymentGateway> = match name.as_str() {
            "sandbox" => {
                let bank = Arc::new(SandboxBank::new(
                    db.clone(),
                    env.clock.clone(),
                    env.random.clone(),
                    control.clone(),
                    adapters::payments::sandbox::SandboxBankSite {
                        merchant: &config.payments.merchant_name,
                        public_url: &config.public_url,
                        callback_url: crate::journey::payment::callback_url_at(&config.public_url, "sandbox"),
                    },
                ));
                desk = Some(bank.clone());
                bank
            }
            "sadad" => Arc::new(SadadGateway::new(
                config.payments.sadad.clone().ok_or("payments.gateways names sadad but [payments.sadad] is missing")?,
                http.clone(),
            )),
            "parsian" => Arc::new(ParsianGateway::new(
                config
                    .payments
                    .parsian
                    .clone()
                    .ok_or("payments.gateways names parsian but [payments.parsian] is missing")?,
                http.clone(),
            )),
            other => return Err(format!("unknown payment gateway {other}")),
        };
        out.insert(name.clone(), gw);
    }
    Ok((out, desk))
}

fn bootstrap_admin(state: &AppState, password: &str) -> Result<(), String> {
    if password.chars().count() < 10 {
        return Err("NCR_BOOTSTRAP_ADMIN_PASSWORD must be at least 10 characters".into());
    }
    let hash = crate::passwords::hash(password);
    let mut conn = state.db.get().map_err(|e| e.to_string())?;
    let created =
        persistence::staff::bootstrap_admin(&mut conn, &hash, state.now().naive_utc()).map_err(|e| e.to_string())?;
    if created {
        tracing::info!("created the bootstrap administrator `admin`");
    }
    Ok(())
}
