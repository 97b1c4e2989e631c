//! The deployment profile (issue 16). `development` runs with whatever sandboxes are
//! configured; `production` — the default with a non-embedded database — refuses to start
//! while any sandbox is active, with one error naming every offender and the setting that
//! switches it off. A staging deployment keeps named sandboxes with `allow_sandboxes`.

use crate::config::{CaptchaMode, Config, DemoData, EmailMode, OwnershipMode, Profile, RegistryMode, SmsMode};

/// A sandbox stand-in that must not reach production unnoticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sandbox {
    /// Its name in `allow_sandboxes`.
    pub name: &'static str,
    /// What it does, for the refusal.
    pub what: &'static str,
    /// The setting that switches it off.
    pub fix: &'static str,
}

/// Every sandbox, in the order the refusal lists them.
pub const SANDBOXES: [Sandbox; 7] = [
    Sandbox {
        name: "captcha",
        what: "the captcha sandbox hands every challenge's answer to the client (sandbox_answer)",
        fix: "captcha.mode = \"production\" (NCR_CAPTCHA__MODE=production)",
    },
    Sandbox {
        name: "bank",
        what: "the sandbox bank takes \"payments\" without money and serves a bank-looking page under /sandbox/bank/",
        fix: "payments.gateways without \"sandbox\", e.g. [\"sadad\"] with [payments.sadad] (NCR_PAYMENTS__GATEWAYS='[\"sadad\"]')",
    },
    Sandbox {
        name: "sms",
        what: "the sandbox SMS operator keeps every text (passwords, reset codes) in a table administrators read",
        fix: "sms.mode = \"kavenegar\" with [sms.kavenegar] api_key (NCR_SMS__MODE=kavenegar)",
    },
    Sandbox {
        name: "email",
        what: "the sandbox mailbox keeps every e-mail in a table administrators read",
        fix: "email.mode = \"smtp\" with email.smtp_host and email.from (NCR_EMAIL__MODE=smtp)",
    },
    Sandbox {
        name: "registry",
        what: "the sandbox civil registry answers from a synthetic population, not the real registry",
        fix: REGISTRY_FIX,
    },
    Sandbox {
        name: "ownership",
        what: "the sandbox mobile-ownership inquiry answers from a synthetic table, not the operators",
        fix: "ownership.mode = \"http\" with [ownership.http] base_url and token (NCR_OWNERSHIP__MODE=http)",
    },
    Sandbox {
        name: "demo_data",
        what: "demo data (offices, a synthetic population, sandbox pairs) is loaded at start-up",
        fix: "demo_data = \"never\" (NCR_DEMO_DATA=never)",
    },
];

/// The setting that connects the real civil registry.
const REGISTRY_FIX: &str =
    "registry.mode = \"http\" with [registry.http] base_url and credentials (NCR_REGISTRY__MODE=http)";

/// Whether the civil registry in use is the sandbox one.
pub fn registry_is_sandbox(config: &Config) -> bool {
    config.registry.mode == RegistryMode::Sandbox
}

/// Whether the named sandbox is active under this configuration.
fn is_active(config: &Config, name: &str) -> bool {
    match name {
        "captcha" => config.captcha.mode == CaptchaMode::Sandbox,
        "bank" => config.payments.sandbox_enabled(),
        "sms" => config.sms.mode == SmsMode::Sandbox,
        "email" => config.email.mode == EmailMode::Sandbox,
        "registry" => registry_is_sandbox(config),
        "ownership" => config.ownership.mode == OwnershipMode::Sandbox,
        "demo_data" => match config.demo_data {
            DemoData::Always => true,
            DemoData::Auto => config.is_embedded(),
            DemoData::Never => false,
        },
        _ => false,
    }
}

/// The sandboxes this configuration runs with.
pub fn active(config: &Config) -> Vec<Sandbox> {
    SANDBOXES.iter().copied().filter(|s| is_active(config, s.name)).collect()
}

/// Refuses a configuration the profile does not allow, with one error listing every
/// problem and its fix. Call it before `public_url` is filled in from the bound address.
pub fn check(config: &Config) -> Result<(), String> {
    let unknown: Vec<&str> =
        config.allow_sandboxes.iter().map(String::as_str).filter(|n| !SANDBOXES.iter().any(|s| s.name == *n)).collect();
    if !unknown.is_empty() {
        let names: Vec<&str> = SANDBOXES.iter().map(|s| s.name).collect();
        return Err(format!(
            "allow_sandboxes names unknown sandboxes {unknown:?}; the sandboxes are {}",
            names.join(", ")
        ));
    }
    if config.profile() != Profile::Production {
        return Ok(());
    }
    let mut problems: Vec<String> = active(config)
        .into_iter()
        .filter(|s| !config.allow_sandboxes.iter().any(|a| a == s.name))
        .map(|s| format!("sandbox `{}` is active: {}. Fix: {}", s.name, s.what, s.fix))
        .collect();
    if config.public_url.trim().is_empty() {
        problems.push(
            "public_url is not set: bank callbacks and receipt links need the address citizens reach. \
             Fix: public_url = \"https://…\" (NCR_PUBLIC_URL)"
                .into(),
        );
    }
    if config.keys.is_empty() {
        problems.push(
            "no keys are configured: every instance must share them. Fix: a [keys] section from `ncr keygen` \
             (or NCR_KEYS__…)"
                .into(),
        );
    }
    if problems.is_empty() {
        return Ok(());
    }
    let why = match config.profile {
        Some(_) => "profile = \"production\"".to_owned(),
        None => "profile is production because database_url is not the embedded database".to_owned(),
    };
    Err(format!(
        "refusing to start in the production profile ({why}):\n{}\n\
         A staging deployment may keep named sandboxes with allow_sandboxes = [\"bank\", …] \
         (NCR_ALLOW_SANDBOXES='[\"bank\"]'); profile = \"development\" (NCR_PROFILE=development) \
         turns these checks off.",
        problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")
    ))
}

/// `ncr seed-demo` in the production profile: demo data (offices, a synthetic population,
/// sandbox pairs) must not land in a real database unless a staging deployment allows it.
pub fn check_demo_seed(config: &Config) -> Result<(), String> {
    if config.profile() == Profile::Production && !config.allow_sandboxes.iter().any(|a| a == "demo_data") {
        return Err("refusing to load demo data in the production profile: it would add demo offices and a \
                    synthetic population to this database. A staging deployment allows it with \
                    allow_sandboxes = [\"demo_data\"]; profile = \"development\" (NCR_PROFILE=development) \
                    for a development database"
            .into());
    }
    Ok(())
}

/// The production profile on a database that already holds demo data (loaded by a
/// development run): demo offices would take real bookings and the synthetic population
/// would pass as citizens. Refused unless a staging deployment allows `demo_data`.
pub fn check_database(config: &Config, conn: &mut persistence::DbConn) -> Result<(), String> {
    if config.profile() != Profile::Production || config.allow_sandboxes.iter().any(|a| a == "demo_data") {
        return Ok(());
    }
    let codes: Vec<String> = crate::seed::offices::OFFICES.iter().map(|o| o.code.to_owned()).collect();
    let offices = persistence::offices::find_by_codes(conn, &codes).map_err(|e| e.to_string())?.len();
    // The sandbox registry's table holds only synthetic people; with the real registry
    // connected, anything in it came from the demo data.
    let people =
        if registry_is_sandbox(config) { 0 } else { persistence::registry::count(conn).map_err(|e| e.to_string())? };
    if offices == 0 && people == 0 {
        return Ok(());
    }
    Err(format!(
        "refusing to start in the production profile: demo data is in this database ({offices} demo offices, \
         {people} synthetic people of the sandbox registry). Fix: a database without demo data (demo data is \
         loaded by a development run or `ncr seed-demo`); a staging deployment may keep it with \
         allow_sandboxes = [\"demo_data\"]"
    ))
}

/// The adapter behind every port, as the start-up log lists them.
pub fn adapters(config: &Config) -> Vec<(&'static str, String)> {
    let host = |url: &str| reqwest::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_owned));
    let backend = if config.is_embedded() { "sqlite" } else { "postgres" };
    let registry = match (config.registry.mode, &config.registry.http) {
        (RegistryMode::Http, Some(h)) => format!("http ({})", host(&h.base_url).unwrap_or_default()),
        (RegistryMode::Http, None) => "http".to_owned(),
        (RegistryMode::Sandbox, _) => "sandbox".to_owned(),
    };
    let ownership = match (config.ownership.mode, &config.ownership.http) {
        (OwnershipMode::Http, Some(h)) => format!("http ({})", host(&h.base_url).unwrap_or_default()),
        (OwnershipMode::Http, None) => "http".to_owned(),
        (OwnershipMode::Sandbox, _) => "sandbox".to_owned(),
    };
    let sms = match config.sms.mode {
        SmsMode::Sandbox => "sandbox",
        SmsMode::Kavenegar => "kavenegar",
    };
    let email = match config.email.mode {
        EmailMode::Sandbox => "sandbox".to_owned(),
        EmailMode::Smtp => format!("smtp ({}:{})", config.email.smtp_host, config.email.smtp_port),
    };
    let captcha = match config.captcha.mode {
        CaptchaMode::Sandbox => "sandbox",
        CaptchaMode::Production => "production",
    };
    let limits = if config.limits.redis_url.as_deref().is_some_and(|u| !u.is_empty()) { "redis" } else { "local" };
    vec![
        ("database", if config.db.transaction_pooler { format!("{backend} (pooler)") } else { backend.to_owned() }),
        ("registry", registry),
        ("ownership", ownership),
        ("sms", sms.to_owned()),
        ("email", email),
        ("captcha", captcha.to_owned()),
        ("payments", config.payments.gateways.join(",")),
        ("rate_limits", limits.to_owned()),
        ("demo_data", format!("{:?}", config.demo_data).to_lowercase()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn production() -> Config {
        Config {
            database_url: "postgres://postgres@127.0.0.1/ncr".into(),
            keys: crate::secrets::generate(),
            public_url: "https://ncr.example.ir".into(),
            ..Config::default()
        }
    }

    #[test]
    fn production_names_every_active_sandbox_and_its_fix_in_one_error() {
        let mut c = production();
        c.demo_data = DemoData::Always;
        let error = check(&c).unwrap_err();
        for s in SANDBOXES {
            assert!(error.contains(&format!("sandbox `{}`", s.name)), "{} missing: {error}", s.name);
            assert!(error.contains(s.fix), "{error}");
        }
        assert!(error.contains("allow_sandboxes"), "{error}");
        // Allowed ones are not offenders; the others still are.
        c.allow_sandboxes = vec!["bank".into(), "captcha".into()];
        let error = check(&c).unwrap_err();
        assert!(!error.contains("sandbox `bank`") && !error.contains("sandbox `captcha`"), "{error}");
        assert!(error.contains("sandbox `sms`"), "{error}");
        c.allow_sandboxes = SANDBOXES.iter().map(|s| s.name.to_owned()).collect();
        assert_eq!(check(&c), Ok(()));
        c.allow_sandboxes.push("bnak".into());
        assert!(check(&c).unwrap_err().contains("bnak"));
    }

    #[test]
    fn development_runs_with_sandboxes_and_production_needs_keys_and_public_url() {
        let mut c = production();
        c.profile = Some(Profile::Development);
        assert_eq!(check(&c), Ok(()));
        assert_eq!(check(&Config::default()), Ok(()), "the embedded default is development");
        let mut c = production();
        c.allow_sandboxes = SANDBOXES.iter().map(|s| s.name.to_owned()).collect();
        c.public_url = String::new();
        c.keys = Default::default();
        let error = check(&c).unwrap_err();
        assert!(error.contains("public_url is not set") && error.contains("no keys are configured"), "{error}");
    }

    #[test]
    fn the_log_lists_every_port() {
        let ports: Vec<&str> = adapters(&Config::default()).into_iter().map(|(p, _)| p).collect();
        for port in ["database", "registry", "ownership", "sms", "email", "captcha", "payments", "rate_limits"] {
            assert!(ports.contains(&port), "{port}");
        }
    }
}
