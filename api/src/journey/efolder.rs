//! The national e-folder's use cases (docs/domain/efolder.md): self-registration with
//! generated credentials sent by SMS, login, the forced first password change, password
//! reset with a one-time SMS code, and credentials recovery. The handlers in
//! `routes/efolder.rs` parse the request, call one of these and render the answer.
//!
//! Passwords and reset codes exist in clear only in memory: the database holds an
//! Argon2id hash of the password and a keyed hash of the code; the credentials SMS sits
//! sealed in the outbox until it is sent.

use actix_web::web;
use chrono::{DateTime, Duration, Utc};
use domain::DomainError;
use domain::efolder::{self, Registration};
use domain::ids::{Mobile, NationalId};
use persistence::efolder::{AccountRow, Inserted, ResetCodeRow};
use persistence::{DbError, PiiKind};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::auth::Audience;
use crate::error::{ApiCode, ApiError};
use crate::guard::{self, Client, Rule};
use crate::notify::Template;
use crate::state::AppState;

/// A reset code lives 5 minutes, allows 3 guesses, and a new one can be asked for after a minute.
pub const RESET_CODE_MINUTES: i64 = 5;
const RESET_CODE_ATTEMPTS: i32 = 3;
pub const RESET_RESEND_SECONDS: i64 = 60;

/// How the generated credentials reach the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CredentialsDelivery {
    /// Queued as an SMS to the registered mobile.
    Sms,
    /// No SMS could be sent: shown once, in this response (docs/domain/efolder.md).
    Shown,
}

/// A registration that created an account: how its credentials reach the person, and
/// the credentials themselves (shown only when `delivery` is `Shown`).
pub struct Registered {
    pub delivery: CredentialsDelivery,
    pub username: String,
    pub password: String,
}

/// A new e-folder token and what the client needs to know about it.
pub struct Session {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub must_change_password: bool,
}

// ---------------------------------------------------------------- registration

/// Self-registration (docs/domain/efolder.md), the checks in the original guide's order:
/// already registered; the mobile belongs to this national code; the civil registry
/// agrees. Each attempt that reaches the outside inquiries takes a place in the national
/// code's and the client's budgets first ([`RegistrationBudget`]). On success a username
/// and a strong password are generated and sent by SMS (shown instead when the SMS
/// provider is down). A double submit never makes two accounts or two SMS.
pub async fn register(state: &AppState, client: Client, form: Registration) -> Result<Registered, ApiError> {
    form.check_shape()?;
    let subject = match &form.legal_id {
        Some(legal) => state.pii.lookup(PiiKind::NationalId, legal.as_str()),
        None => state.pii.lookup(PiiKind::NationalId, form.national_id.as_str()),
    };

    // 1. Already registered — before any outside inquiry. If the credentials SMS never
    // arrived, the person is sent to credentials recovery instead (issue 19 item 6).
    let s = subject.clone();
    match state.run(move |conn| persistence::efolder::credentials_undelivered(conn, &s)).await? {
        Some(true) => return Err(DomainError::EfolderCredentialsUndelivered.into()),
        Some(false) => return Err(DomainError::EfolderAlreadyRegistered.into()),
        None => {}
    }
    // Each attempt past this point costs a mobile-ownership and a registry inquiry: it
    // takes a place in the national code's and the client's budgets first.
    let budget = RegistrationBudget::of(state, &subject, &client);
    budget.reserve(state).await?;
    // 2. The mobile belongs to this national code; 3. the civil registry agrees.
    let ownership = state.ownership.check(&form.national_id, &form.mobile).await;
    let record = match ownership {
        domain::ports::Ownership::Matched => match state.registry.find(&form.national_id).await {
            Ok(record) => record,
            Err(_) => {
                budget.release(state).await?;
                return Err(DomainError::RegistryUnavailable.into());
            }
        },
        _ => None,
    };
    if let Err(e) = efolder::check_registration(&form, false, ownership, record.as_ref()) {
        if !matches!(e, DomainError::MobileNotOwned | DomainError::RegistryDataMismatch) {
            budget.release(state).await?;
        }
        return Err(e.into());
    }
    budget.release(state).await?;

    // Credentials: generated, hashed off the async workers, sent or shown.
    let password = efolder::generate_password(state.random.as_ref());
    let to_hash = password.clone();
    let password_hash = web::block(move || crate::passwords::hash(&to_hash)).await?;
    let delivery = if state.sms.marked_down() { CredentialsDelivery::Shown } else { CredentialsDelivery::Sms };
    let now = state.now();
    let mut username = String::new();
    for _ in 0..3 {
        username = efolder::generate_username(state.random.as_ref());
        let row = account_row(state, &form, &subject, &username, &password_hash, delivery, now);
        let (pii, mobile, params) =
            (state.pii.clone(), form.mobile.as_str().to_owned(), json!({"username": username, "password": password}));
        let inserted = state
            .run(move |conn| {
                persistence::db::write_tx(conn, |conn| {
                    let inserted = persistence::efolder::insert(conn, &row)?;
                    if inserted == Inserted::Created && delivery == CredentialsDelivery::Sms {
                        let dedupe = Some(format!("efolder-credentials:{}", row.id));
                        crate::notify::sms_to(
                            conn,
                            &pii,
                            &mobile,
                            None,
                            Template::EfolderCredentials,
                            params,
                            dedupe,
                            now,
                        )?;
                    }
                    Ok::<_, DbError>(inserted)
                })
            })
            .await?;
        match inserted {
            Inserted::Created => {
                tracing::info!(
                    delivery = ?delivery,
                    mobile = %form.mobile.masked(),
                    "e-folder account registered"
                );
                state.metrics.event("efolder_registration", delivery_str(delivery));
                return Ok(Registered { delivery, username, password });
            }
            Inserted::AlreadyRegistered => return Err(DomainError::EfolderAlreadyRegistered.into()),
            Inserted::UsernameTaken => continue,
        }
    }
    Err(ApiError::internal(format!("three generated usernames were taken (last {username})")))
}

/// The budgets of registrations that reach the outside inquiries (issue 24), counted in
/// the database *before* the inquiries are made, so parallel attempts cannot slip past:
/// - per national code (or legal ID) a Tehran day, from all addresses together: attempts
///   the inquiries refused (`limits.efolder_registrations_per_day`); a registration that
///   succeeds or could not be judged gives its place back;
/// - per client address an hour, all national codes together: every attempt
///   (`limits.efolder_registrations_per_client_per_hour`).
///
/// Both answer the same: 429 `efolder_registration_limit` with `Retry-After` until the
/// window ends, before any inquiry.
struct RegistrationBudget {
    subject: String,
    day: chrono::NaiveDateTime,
    client: String,
    hour: chrono::NaiveDateTime,
}

impl RegistrationBudget {
    fn of(state: &AppState, subject: &str, client: &Client) -> Self {
        let key = |scope: &str, value: &str| {
            let hash = state.pii.lookup(PiiKind::Secret, &format!("efolder-registration|{scope}|{value}"));
            format!("efolder_registration:{scope}:{hash}")
        };
        let now = state.now();
        Self {
            subject: key("subject", subject),
            day: crate::guard::window_start(now, Duration::days(1)),
            client: key("client", client.as_str()),
            hour: crate::guard::window_start(now, Duration::hours(1)),
        }
    }

    /// Takes a place in both budgets, or refuses without counting.
    async fn reserve(&self, state: &AppState) -> Result<(), ApiError> {
        let (subject, day, client, hour) = (self.subject.clone(), self.day, self.client.clone(), self.hour);
        let now = state.now().naive_utc();
        let limits = state.config.limits.clone();
        state
            .run_api(move |conn| {
                persistence::db::write_tx(conn, |conn| {
                    let refuse = |ends: chrono::NaiveDateTime| ApiError::TooManyRequests {
                        code: ApiCode::EfolderRegistrationLimit,
                        retry_after: (ends - now).num_seconds().max(1) as u64,
                    };
                    if persistence::attempts::count(conn, &client, hour, now)?
                        > limits.efolder_registrations_per_client_per_hour
                    {
                        return Err(refuse(hour + Duration::hours(1)));
                    }
                    if persistence::attempts::count(conn, &subject, day, now)? > limits.efolder_registrations_per_day {
                        return Err(refuse(day + Duration::days(1)));
                    }
                    Ok(())
                })
            })
            .await
    }

    /// Gives the national code's place back: the attempt was not refused by the inquiries.
    async fn release(&self, state: &AppState) -> Result<(), ApiError> {
        let (subject, day) = (self.subject.clone(), self.day);
        state.run(move |conn| persistence::attempts::uncount(conn, &subject, day)).await?;
        Ok(())
    }
}

fn account_row(
    state: &AppState,
    form: &Registration,
    subject: &str,
    username: &str,
    password_hash: &str,
    delivery: CredentialsDelivery,
    now: DateTime<Utc>,
) -> AccountRow {
    let pii = &state.pii;
    let now = now.naive_utc();
    AccountRow {
        id: persistence::new_id(),
        subject_hash: subject.to_owned(),
        person_type: form.person_type.as_str().into(),
        legal_id: form.legal_id.as_ref().map(|l| l.as_str().to_owned()),
        nid_hash: pii.lookup(PiiKind::NationalId, form.national_id.as_str()),
        national_id_enc: pii.seal(PiiKind::NationalId, form.national_id.as_str()),
        gender_enc: pii.seal(PiiKind::Personal, form.gender.as_str()),
        first_name_enc: pii.seal(PiiKind::Family, form.first_name.as_str()),
        last_name_enc: pii.seal(PiiKind::Family, form.last_name.as_str()),
        father_name_enc: pii.seal(PiiKind::Family, form.father_name.as_str()),
        mobile_enc: pii.seal(PiiKind::Mobile, form.mobile.as_str()),
        mobile_hint: form.mobile.masked(),
        postal_code_enc: pii.seal(PiiKind::Family, form.postal_code.as_str()),
        username: username.to_owned(),
        password_hash: password_hash.to_owned(),
        must_change_password: true,
        token_version: 0,
        failed_logins: 0,
        locked_until: None,
        credentials_delivery: delivery_str(delivery).into(),
        last_login_at: None,
        password_changed_at: None,
        created_at: now,
        updated_at: now,
        credentials_undelivered_at: None,
    }
}

fn delivery_str(d: CredentialsDelivery) -> &'static str {
    match d {
        CredentialsDelivery::Sms => "sms",
        CredentialsDelivery::Shown => "shown",
    }
}

// ---------------------------------------------------------------- sessions

/// A new e-folder token and the server-side session it names.
async fn session(state: &AppState, account: &AccountRow, now: DateTime<Utc>) -> Result<Session, ApiError> {
    let minutes = state.config.auth.efolder_token_minutes;
    let id = account.id.clone();
    let sid = state.run(move |conn| crate::auth::open_session(conn, Audience::Efolder, &id, now, minutes)).await?;
    let mut claims = state.tokens.claims(Audience::Efolder, &account.id, now, minutes);
    claims.sid = Some(sid);
    claims.tv = Some(account.token_version);
    claims.pwd_change = Some(account.must_change_password);
    Ok(Session {
        token: state.tokens.issue(&claims)?,
        expires_at: now + Duration::minutes(minutes),
        must_change_password: account.must_change_password,
    })
}

/// Checks a password for a username, the guess counted first ([`crate::guard`]: a growing
/// lock per account and client address — failures in a row lock for 1, 2, 4 … minutes
/// from the fifth on — and budgets per address and per account): 401
/// `credentials_invalid` for a wrong password or an unknown username (the same work and
/// answer), 429 `account_locked` (with `Retry-After`) while locked. The account is
/// looked up in the same database visit.
async fn check_password(
    state: &AppState,
    client: Client,
    username: &str,
    password: String,
) -> Result<AccountRow, ApiError> {
    let now = state.now();
    let name = username.trim().to_ascii_lowercase();
    let (pii, rule) = (state.pii.clone(), Rule::efolder_login(&state.config));
    let (attempt, account) = state
        .run_api(move |conn| {
            let attempt = guard::begin(conn, &pii, &rule, &name, &client, now)?;
            Ok((attempt, persistence::efolder::find_by_username(conn, &name)?))
        })
        .await?;
    state.metrics.event("guess_checked", "efolder_login");
    let Some(account) = account else {
        // Same work and answer as a wrong password, so usernames cannot be probed.
        web::block(move || crate::passwords::dummy_verify(&password)).await?;
        return Err(ApiError::Unauthorized(ApiCode::CredentialsInvalid));
    };
    let hash = account.password_hash.clone();
    if !web::block(move || crate::passwords::verify(&password, &hash)).await? {
        return Err(ApiError::Unauthorized(ApiCode::CredentialsInvalid));
    }
    state.run_api(move |conn| guard::release(conn, &attempt)).await?;
    Ok(account)
}

/// Login with the username and password. The first login's token allows only the
/// password change (`must_change_password`).
pub async fn sign_in(state: &AppState, client: Client, username: &str, password: String) -> Result<Session, ApiError> {
    let account = check_password(state, client, username, password).await?;
    let now = state.now();
    let id = account.id.clone();
    state.run(move |conn| persistence::efolder::record_login_success(conn, &id, now.naive_utc())).await?;
    session(state, &account, now).await
}

// ---------------------------------------------------------------- password

/// Changes the password (the one operation a first-login token allows): a fresh session;
/// every older token stops working.
pub async fn change_password(
    state: &AppState,
    client: Client,
    account: AccountRow,
    current_password: String,
    new_password: String,
) -> Result<Session, ApiError> {
    let national_id = national_id_of(state, &account)?;
    efolder::check_new_password(&new_password, &account.username, &national_id)?;
    if new_password == current_password {
        return Err(DomainError::PasswordTooWeak.into());
    }
    check_password(state, client, &account.username, current_password).await?;
    let account = store_password(state, account, new_password).await?;
    session(state, &account, state.now()).await
}

fn national_id_of(state: &AppState, account: &AccountRow) -> Result<NationalId, ApiError> {
    let clear = state.pii.open(PiiKind::NationalId, &account.national_id_enc)?;
    NationalId::parse(&clear).map_err(ApiError::internal)
}

/// Hashes and stores a new password; the returned row carries the new token version.
async fn store_password(state: &AppState, account: AccountRow, password: String) -> Result<AccountRow, ApiError> {
    let hash = web::block(move || crate::passwords::hash(&password)).await?;
    let now = state.now();
    let (id, version) = (account.id.clone(), account.token_version);
    let stored =
        state.run(move |conn| persistence::efolder::set_password(conn, &id, version, &hash, now.naive_utc())).await?;
    let Some(version) = stored else {
        // Another change or reset won the race; this token's version is stale.
        return Err(ApiError::Unauthorized(ApiCode::TokenInvalid));
    };
    tracing::info!(account = %account.id, "e-folder password changed");
    Ok(AccountRow { token_version: version, must_change_password: false, ..account })
}

// ---------------------------------------------------------------- password reset

/// Sends a 6-digit reset code by SMS to the account's mobile when the username and
/// mobile match (the caller answers the same either way); one code is active at a time
/// and a new one is sent at most once a minute.
pub async fn request_reset(state: &AppState, username: &str, mobile: Mobile) -> Result<(), ApiError> {
    let name = username.trim().to_ascii_lowercase();
    let account = state.run(move |conn| persistence::efolder::find_by_username(conn, &name)).await?;
    let matching = match account {
        Some(a) if state.pii.open(PiiKind::Mobile, &a.mobile_enc)? == mobile.as_str() => Some(a),
        _ => None,
    };
    if let Some(account) = matching {
        let code = efolder::generate_reset_code(state.random.as_ref());
        let now = state.now();
        let row = ResetCodeRow {
            code_hash: code_hash(state, &account.id, &code),
            account_id: account.id.clone(),
            attempts: 0,
            expires_at: (now + Duration::minutes(RESET_CODE_MINUTES)).naive_utc(),
            sent_at: now.naive_utc(),
        };
        let pii = state.pii.clone();
        let sent = state
            .run(move |conn| {
                persistence::db::write_tx(conn, |conn| {
                    if !persistence::efolder::replace_reset_code(conn, &row, Duration::seconds(RESET_RESEND_SECONDS))? {
                        return Ok::<_, DbError>(false);
                    }
                    let dedupe = Some(format!("efolder-reset:{}:{}", row.account_id, now.timestamp()));
                    crate::notify::sms_to(
                        conn,
                        &pii,
                        mobile.as_str(),
                        None,
                        Template::EfolderResetCode,
                        json!({"code": code}),
                        dedupe,
                        now,
                    )
                })
            })
            .await?;
        tracing::info!(account = %account.id, sent, "e-folder password reset asked");
    }
    Ok(())
}

/// A keyed hash bound to the account, so a stolen table cannot be brute-forced offline.
fn code_hash(state: &AppState, account_id: &str, code: &str) -> String {
    state.pii.lookup(PiiKind::Secret, &format!("efolder-reset:{account_id}:{code}"))
}

/// Sets a new password with the SMS code: 422 `reset_code_invalid` for a wrong code
/// (3 guesses per code, then `reset_code_attempts_exhausted`), `reset_code_expired`
/// after 5 minutes. Success ends the first-login state and every older token.
pub async fn confirm_reset(
    state: &AppState,
    username: &str,
    code: &str,
    new_password: String,
) -> Result<Session, ApiError> {
    let code = domain::text::ascii_digits(code.trim());
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::Domain(DomainError::ResetCodeInvalid));
    }
    let name = username.trim().to_ascii_lowercase();
    let found = state
        .run(move |conn| {
            let Some(account) = persistence::efolder::find_by_username(conn, &name)? else {
                return Ok(None);
            };
            let code = persistence::efolder::reset_code(conn, &account.id)?;
            Ok(Some((account, code)))
        })
        .await?;
    let Some((account, Some(stored))) = found else {
        return Err(ApiError::Domain(DomainError::ResetCodeInvalid));
    };
    let now = state.now();
    if stored.expires_at.and_utc() <= now {
        let id = account.id.clone();
        state.run(move |conn| persistence::efolder::delete_reset_code(conn, &id)).await?;
        return Err(ApiError::Domain(DomainError::ResetCodeExpired));
    }
    // A weak new password does not use up a guess.
    efolder::check_new_password(&new_password, &account.username, &national_id_of(state, &account)?)?;
    // The guess is counted before the code is compared: parallel guesses get at most
    // RESET_CODE_ATTEMPTS comparisons between them.
    let id = account.id.clone();
    let Some(taken) =
        state.run(move |conn| persistence::efolder::take_reset_attempt(conn, &id, RESET_CODE_ATTEMPTS)).await?
    else {
        return Err(ApiError::Domain(DomainError::ResetCodeInvalid));
    };
    state.metrics.event("guess_checked", "reset_code");
    let expected = code_hash(state, &account.id, &code);
    if !crate::secrets::constant_time_eq(expected.as_bytes(), taken.code_hash.as_bytes()) {
        if taken.attempts < RESET_CODE_ATTEMPTS {
            return Err(ApiError::Domain(DomainError::ResetCodeInvalid));
        }
        let id = account.id.clone();
        state.run(move |conn| persistence::efolder::delete_reset_code(conn, &id)).await?;
        return Err(ApiError::Domain(DomainError::ResetCodeAttemptsExhausted));
    }
    let account = store_password(state, account, new_password).await?;
    session(state, &account, now).await
}

// ---------------------------------------------------------------- credentials recovery

/// Credentials recovery: when the national code and mobile match registered accounts,
/// a fresh generated password and the username go by SMS to that mobile; the old password
/// and every session stop working. The same work is done when nothing matches. Each
/// national code may ask `limits.efolder_credential_recoveries_per_day` times a Tehran day
/// (429 `efolder_recovery_limit`), counted before anything is looked up.
pub async fn recover_credentials(state: &AppState, national_id: NationalId, mobile: Mobile) -> Result<(), ApiError> {
    // The day's budget of this national code, spent before anything is looked up.
    let now = state.now();
    let nid_hash = state.pii.lookup(PiiKind::NationalId, national_id.as_str());
    let key = format!(
        "efolder_recovery:{}",
        state.pii.lookup(PiiKind::Secret, &format!("efolder-recovery|{}", national_id.as_str()))
    );
    let day = crate::guard::window_start(now, Duration::days(1));
    let cap = state.config.limits.efolder_credential_recoveries_per_day;
    let (k, at) = (key.clone(), now.naive_utc());
    let accounts = state
        .run_api(move |conn| {
            let hits = persistence::db::write_tx(conn, |conn| persistence::attempts::count(conn, &k, day, at))?;
            if hits > cap {
                return Err(ApiError::TooManyRequests {
                    code: ApiCode::EfolderRecoveryLimit,
                    retry_after: ((day + Duration::days(1)) - at).num_seconds().max(1) as u64,
                });
            }
            Ok(persistence::efolder::find_by_nid_hash(conn, &nid_hash)?)
        })
        .await?;
    let mut matching = Vec::new();
    for a in accounts {
        if state.pii.open(PiiKind::Mobile, &a.mobile_enc)? == mobile.as_str() {
            matching.push(a);
        }
    }
    if matching.is_empty() {
        // The same work as a match: one password hashed.
        let dummy = efolder::generate_password(state.random.as_ref());
        web::block(move || crate::passwords::hash(&dummy)).await?;
    }
    for account in matching {
        let password = efolder::generate_password(state.random.as_ref());
        let to_hash = password.clone();
        let hash = web::block(move || crate::passwords::hash(&to_hash)).await?;
        let pii = state.pii.clone();
        let (id, version, username, to) =
            (account.id.clone(), account.token_version, account.username.clone(), mobile.as_str().to_owned());
        let sent = state
            .run(move |conn| {
                persistence::db::write_tx(conn, |conn| {
                    if !persistence::efolder::reset_credentials(conn, &id, version, &hash, now.naive_utc())? {
                        return Ok::<_, DbError>(false);
                    }
                    let dedupe = Some(format!("efolder-credentials:{id}:recovery:{}", version + 1));
                    crate::notify::sms_to(
                        conn,
                        &pii,
                        &to,
                        None,
                        Template::EfolderCredentials,
                        json!({"username": username, "password": password}),
                        dedupe,
                        now,
                    )
                })
            })
            .await?;
        tracing::info!(account = %account.id, sent, "e-folder credentials recovered");
        state.metrics.event("efolder_recovery", if sent { "sent" } else { "raced" });
    }
    Ok(())
}
