//! The national e-folder (کارپوشه ملی) over HTTP (docs/domain/efolder.md): self-registration
//! with generated credentials sent by SMS, login, the forced first password change, the
//! account, and password reset with a one-time SMS code.
//!
//! Passwords and reset codes exist in clear only in memory: the database holds an
//! Argon2id hash of the password and a keyed hash of the code; the credentials SMS sits
//! sealed in the outbox until it is sent. Every answer here is `Cache-Control: no-store`
//! (set for all of `/api/v1/efolder` by the request middleware).

use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};
use chrono::{DateTime, Duration, Utc};
use domain::DomainError;
use domain::efolder::{self, PersonType, Registration};
use domain::ids::{LegalId, Mobile, NationalId, PostalCode};
use domain::person::PersonName;
use persistence::efolder::{AccountRow, Inserted, ResetCodeRow};
use persistence::{DbError, PiiKind};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::auth::{Audience, EfolderPrincipal};
use crate::error::{ApiError, FieldErrors};
use crate::guard::{self, Client, Rule};
use crate::notify::Template;
use crate::observability::RequestLang;
use crate::routes::problems::PublicWrite;
use crate::state::AppState;
use crate::wire;

/// A reset code lives 5 minutes, allows 3 guesses, and a new one can be asked for after a minute.
const RESET_CODE_MINUTES: i64 = 5;
const RESET_CODE_ATTEMPTS: i32 = 3;
const RESET_RESEND_SECONDS: i64 = 60;

// ---------------------------------------------------------------- registration

/// The registration form (docs/domain/efolder.md). For a legal person, `legal_id` is the
/// organisation's 11-digit national ID and the other fields are its representative's.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistrationRequest {
    /// `natural` when absent.
    pub person_type: Option<wire::PersonType>,
    /// Only for a legal person: the organisation's 11-digit national ID.
    #[schema(example = json!(null))]
    pub legal_id: Option<String>,
    pub gender: wire::Gender,
    /// The 10-digit national code; Persian digits, spaces and dashes are fine.
    #[schema(example = "2580200606")]
    pub national_id: String,
    #[schema(example = "مریم")]
    pub first_name: String,
    #[schema(example = "احمدی")]
    pub last_name: String,
    #[schema(example = "علی")]
    pub father_name: String,
    /// Must belong to this national code (mobile-ownership inquiry).
    #[schema(example = "09145128136")]
    pub mobile: String,
    #[schema(example = "5518743111")]
    pub postal_code: String,
}

/// How the generated credentials reach the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CredentialsDelivery {
    /// Queued as an SMS to the registered mobile.
    Sms,
    /// No SMS could be sent: shown once, in this response (docs/domain/efolder.md).
    Shown,
}

#[derive(Serialize, ToSchema)]
pub struct Credentials {
    #[schema(example = "kpa7m3q9xz")]
    pub username: String,
    /// Must be changed at the first login.
    #[schema(example = "Xk7pQ2m9Lr4hWd")]
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct RegistrationResponse {
    /// The seed's success text, in the request's language; when `credentials_delivery`
    /// is `shown` it carries the username and password as the seed lays them out.
    #[schema(
        example = "ثبت نام شما در سامانه کارپوشه ملی ایرانیان با موفقیت انجام شد. نام کاربری و کلمه عبور طی 24 ساعت آینده برای شما پیامک خواهد شد."
    )]
    pub message: String,
    pub credentials_delivery: CredentialsDelivery,
    /// Present only when `credentials_delivery` is `shown`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,
}

/// Self-registration (docs/domain/efolder.md). Checks in the original guide's order, each with its exact text:
/// already registered (409 `efolder_already_registered`); the mobile does not belong to
/// this national code (422 `mobile_not_owned`; an unanswered inquiry is 503
/// `mobile_check_unavailable`, never "not yours"); the data does not match the civil
/// registry (422 `registry_data_mismatch`). On success a username and a strong password
/// are generated and sent by SMS; when the SMS provider is down they are shown at once,
/// and only then. A double submit never makes two accounts or two SMS. Registrations the
/// inquiries refused are capped per national code per Tehran day
/// (`limits.efolder_registrations_per_day`) and all attempts per client address an hour
/// (`limits.efolder_registrations_per_client_per_hour`); past either, 429
/// `efolder_registration_limit` with `Retry-After`, without new inquiries.
#[utoipa::path(operation_id = "efolder_register", tag = "efolder", request_body = RegistrationRequest,
    responses((status = 201, description = "Registered", body = RegistrationResponse,
        headers(("Cache-Control" = String, description = "no-store"))),
        (status = 409, description = "Already registered (`efolder_already_registered`)", body = crate::error::Problem, content_type = "application/problem+json"),
        PublicWrite))]
#[post("/api/v1/efolder/registrations")]
pub async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    lang: RequestLang,
    body: crate::extract::Json<RegistrationRequest>,
) -> Result<HttpResponse, ApiError> {
    let form = parse_registration(body.into_inner())?;
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
    let budget = RegistrationBudget::of(&state, &subject, &Client::of(&req));
    budget.reserve(&state).await?;
    // 2. The mobile belongs to this national code; 3. the civil registry agrees.
    let ownership = state.ownership.check(&form.national_id, &form.mobile).await;
    let record = match ownership {
        domain::ports::Ownership::Matched => match state.registry.find(&form.national_id).await {
            Ok(record) => record,
            Err(_) => {
                budget.release(&state).await?;
                return Err(DomainError::RegistryUnavailable.into());
            }
        },
        _ => None,
    };
    if let Err(e) = efolder::check_registration(&form, false, ownership, record.as_ref()) {
        if !matches!(e, DomainError::MobileNotOwned | DomainError::RegistryDataMismatch) {
            budget.release(&state).await?;
        }
        return Err(e.into());
    }
    budget.release(&state).await?;

    // Credentials: generated, hashed off the async workers, sent or shown.
    let password = efolder::generate_password(state.random.as_ref());
    let to_hash = password.clone();
    let password_hash = web::block(move || crate::passwords::hash(&to_hash)).await?;
    let delivery = if state.sms.marked_down() { CredentialsDelivery::Shown } else { CredentialsDelivery::Sms };
    let now = state.now();
    let mut username = String::new();
    for _ in 0..3 {
        username = efolder::generate_username(state.random.as_ref());
        let row = account_row(&state, &form, &subject, &username, &password_hash, delivery, now);
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
                return Ok(registered(lang.0, delivery, username, password));
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
                        code: "efolder_registration_limit",
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

fn parse_registration(body: RegistrationRequest) -> Result<Registration, ApiError> {
    let mut errors = FieldErrors::default();
    let legal_id = match body.legal_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => errors.take("legal_id", LegalId::parse(s)),
        None => None,
    };
    let national_id = errors.take("national_id", NationalId::parse(&body.national_id));
    let first_name = errors.take("first_name", PersonName::parse(&body.first_name));
    let last_name = errors.take("last_name", PersonName::parse(&body.last_name));
    let father_name = errors.take("father_name", PersonName::parse(&body.father_name));
    let mobile = errors.take("mobile", Mobile::parse(&body.mobile));
    let postal_code = errors.take("postal_code", PostalCode::parse(&body.postal_code));
    errors.finish()?;
    let (Some(national_id), Some(first_name), Some(last_name), Some(father_name), Some(mobile), Some(postal_code)) =
        (national_id, first_name, last_name, father_name, mobile, postal_code)
    else {
        return Err(ApiError::internal("parsed fields missing"));
    };
    Ok(Registration {
        person_type: body.person_type.map_or(PersonType::Natural, Into::into),
        legal_id,
        gender: body.gender.into(),
        national_id,
        first_name,
        last_name,
        father_name,
        mobile,
        postal_code,
    })
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
        id: uuid::Uuid::now_v7().to_string(),
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

fn registered(lang: domain::Lang, delivery: CredentialsDelivery, username: String, password: String) -> HttpResponse {
    let en = lang == domain::Lang::En;
    let body = match delivery {
        CredentialsDelivery::Sms => RegistrationResponse {
            message: if en { efolder::SUCCESS_MESSAGE_EN } else { efolder::SUCCESS_MESSAGE_FA }.into(),
            credentials_delivery: delivery,
            credentials: None,
        },
        CredentialsDelivery::Shown => RegistrationResponse {
            // docs/domain/efolder.md: the heading, then «نام کاربری: …» and «کلمه عبور: …».
            message: if en {
                format!("{}\nUsername: {username}\nPassword: {password}", efolder::SUCCESS_SHOWN_MESSAGE_EN)
            } else {
                format!("{}\nنام کاربری: {username}\nکلمه عبور: {password}", efolder::SUCCESS_SHOWN_MESSAGE_FA)
            },
            credentials_delivery: delivery,
            credentials: Some(Credentials { username, password }),
        },
    };
    HttpResponse::Created().insert_header(("Location", "/api/v1/efolder/me")).json(body)
}

// ---------------------------------------------------------------- sessions

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EfolderLogin {
    #[schema(example = "kpa7m3q9xz")]
    pub username: String,
    #[schema(example = "Xk7pQ2m9Lr4hWd")]
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct EfolderSession {
    /// An e-folder token (`aud=efolder`) for `Authorization: Bearer …`.
    #[schema(example = "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIwMTkzIn0.c2lnbmF0dXJl")]
    pub token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    #[schema(example = "2026-11-22T07:00:00Z")]
    pub expires_at: DateTime<Utc>,
    /// While true, only `PUT /api/v1/efolder/password` is allowed (the generated
    /// password must be changed at the first login).
    #[schema(example = false)]
    pub must_change_password: bool,
}

/// A new e-folder token and the server-side session it names.
async fn session(state: &AppState, account: &AccountRow, now: DateTime<Utc>) -> Result<EfolderSession, ApiError> {
    let minutes = state.config.auth.efolder_token_minutes;
    let id = account.id.clone();
    let sid = state.run(move |conn| crate::auth::open_session(conn, Audience::Efolder, &id, now, minutes)).await?;
    let mut claims = state.tokens.claims(Audience::Efolder, &account.id, now, minutes);
    claims.sid = Some(sid);
    claims.tv = Some(account.token_version);
    claims.pwd_change = Some(account.must_change_password);
    Ok(EfolderSession {
        token: state.tokens.issue(&claims)?,
        token_type: "Bearer",
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
        return Err(ApiError::Unauthorized("credentials_invalid"));
    };
    let hash = account.password_hash.clone();
    if !web::block(move || crate::passwords::verify(&password, &hash)).await? {
        return Err(ApiError::Unauthorized("credentials_invalid"));
    }
    state.run_api(move |conn| guard::release(conn, &attempt)).await?;
    Ok(account)
}

/// Login with the username and password. The first login's token allows only the
/// password change (`must_change_password`).
#[utoipa::path(operation_id = "efolder_sign_in", tag = "efolder", request_body = EfolderLogin,
    responses((status = 201, description = "Signed in", body = EfolderSession), PublicWrite,
        (status = 401, description = "Wrong username or password (`credentials_invalid`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/api/v1/efolder/sessions")]
pub async fn sign_in(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: crate::extract::Json<EfolderLogin>,
) -> Result<HttpResponse, ApiError> {
    let EfolderLogin { username, password } = body.into_inner();
    let account = check_password(&state, Client::of(&req), &username, password).await?;
    let now = state.now();
    let id = account.id.clone();
    state.run(move |conn| persistence::efolder::record_login_success(conn, &id, now.naive_utc())).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", "/api/v1/efolder/me"))
        .json(session(&state, &account, now).await?))
}

// ---------------------------------------------------------------- password

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    #[schema(example = "Xk7pQ2m9Lr4hWd")]
    pub current_password: String,
    /// At least 10 characters; neither the username nor the national code.
    #[schema(example = "a long passphrase of mine")]
    pub new_password: String,
}

/// Changes the password (the one operation a first-login token allows). Answers a new
/// session; every older token stops working.
#[utoipa::path(operation_id = "efolder_change_password", tag = "efolder", request_body = PasswordChange,
    responses((status = 200, description = "Changed; a fresh session", body = EfolderSession), PublicWrite,
        (status = 401, description = "Missing or stale e-folder token, or a wrong current password (`credentials_invalid`)", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("efolder" = [])))]
#[put("/api/v1/efolder/password")]
pub async fn change_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: EfolderPrincipal,
    body: crate::extract::Json<PasswordChange>,
) -> Result<HttpResponse, ApiError> {
    let PasswordChange { current_password, new_password } = body.into_inner();
    let account = who.account;
    let national_id = national_id_of(&state, &account)?;
    efolder::check_new_password(&new_password, &account.username, &national_id)?;
    if new_password == current_password {
        return Err(DomainError::PasswordTooWeak.into());
    }
    check_password(&state, Client::of(&req), &account.username, current_password).await?;
    let account = store_password(&state, account, new_password).await?;
    Ok(HttpResponse::Ok().json(session(&state, &account, state.now()).await?))
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
        return Err(ApiError::Unauthorized("token_invalid"));
    };
    tracing::info!(account = %account.id, "e-folder password changed");
    Ok(AccountRow { token_version: version, must_change_password: false, ..account })
}

// ---------------------------------------------------------------- me

#[derive(Serialize, ToSchema)]
pub struct EfolderAccount {
    #[schema(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub id: String,
    #[schema(example = "kpa7m3q9xz")]
    pub username: String,
    pub person_type: wire::PersonType,
    /// A legal person's national ID.
    #[schema(example = "10102030405")]
    pub legal_id: Option<String>,
    #[schema(example = "2580200606")]
    pub national_id: String,
    pub gender: wire::Gender,
    #[schema(example = "مریم")]
    pub first_name: String,
    #[schema(example = "احمدی")]
    pub last_name: String,
    #[schema(example = "علی")]
    pub father_name: String,
    /// Masked (`0914***8136`).
    #[schema(example = "0914***8136")]
    pub mobile: String,
    #[schema(example = "5518743111")]
    pub postal_code: String,
    #[schema(example = "2026-11-22T06:30:00Z")]
    pub created_at: DateTime<Utc>,
    #[schema(example = "2026-11-23T08:00:00Z")]
    pub last_login_at: Option<DateTime<Utc>>,
    #[schema(example = "2026-11-23T08:01:00Z")]
    pub password_changed_at: Option<DateTime<Utc>>,
}

/// The signed-in account. 403 `password_change_required` until the generated password
/// is changed.
#[utoipa::path(operation_id = "efolder_get_account", tag = "efolder",
    responses((status = 200, description = "The account", body = EfolderAccount,
        headers(("Cache-Control" = String, description = "no-store"))),
        (status = 401, description = "Missing, invalid or stale e-folder token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The generated password must be changed first (`password_change_required`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database unavailable", body = crate::error::Problem, content_type = "application/problem+json")),
    security(("efolder" = [])))]
#[get("/api/v1/efolder/me")]
pub async fn me(state: web::Data<AppState>, who: EfolderPrincipal) -> Result<HttpResponse, ApiError> {
    who.require_password_changed()?;
    let a = who.account;
    let open = |kind, v: &str| state.pii.open(kind, v).map_err(ApiError::from);
    let view = EfolderAccount {
        id: a.id.clone(),
        username: a.username.clone(),
        person_type: PersonType::parse(&a.person_type).ok_or_else(|| ApiError::internal("stored person type"))?.into(),
        legal_id: a.legal_id.clone(),
        national_id: open(PiiKind::NationalId, &a.national_id_enc)?,
        gender: domain::person::Gender::parse(&open(PiiKind::Personal, &a.gender_enc)?)
            .ok_or_else(|| ApiError::internal("stored gender"))?
            .into(),
        first_name: open(PiiKind::Family, &a.first_name_enc)?,
        last_name: open(PiiKind::Family, &a.last_name_enc)?,
        father_name: open(PiiKind::Family, &a.father_name_enc)?,
        mobile: a.mobile_hint.clone(),
        postal_code: open(PiiKind::Family, &a.postal_code_enc)?,
        created_at: a.created_at.and_utc(),
        last_login_at: a.last_login_at.map(|t| t.and_utc()),
        password_changed_at: a.password_changed_at.map(|t| t.and_utc()),
    };
    Ok(HttpResponse::Ok().json(view))
}

// ---------------------------------------------------------------- password reset

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    #[schema(example = "kpa7m3q9xz")]
    pub username: String,
    /// The mobile registered with the account.
    #[schema(example = "09145128136")]
    pub mobile: String,
}

#[derive(Serialize, ToSchema)]
pub struct ResetRequested {
    #[schema(example = "در صورت درستی مشخصات، کد بازیابی به تلفن همراه ثبت شده پیامک می‌شود.")]
    pub message: String,
    /// A code lives this long.
    #[schema(example = 300)]
    pub code_valid_seconds: i64,
    /// A new code can be asked for after this long.
    #[schema(example = 60)]
    pub resend_after_seconds: i64,
}

/// Sends a 6-digit reset code by SMS to the account's mobile. The answer is the same
/// whether or not the username and mobile match, so accounts cannot be probed; one code
/// is active at a time and a new one is sent at most once a minute.
#[utoipa::path(operation_id = "efolder_request_password_reset", tag = "efolder", request_body = ResetRequest,
    responses((status = 202, description = "If the details match, a code was sent", body = ResetRequested), PublicWrite))]
#[post("/api/v1/efolder/password-reset")]
pub async fn request_reset(
    state: web::Data<AppState>,
    lang: RequestLang,
    body: crate::extract::Json<ResetRequest>,
) -> Result<HttpResponse, ApiError> {
    let ResetRequest { username, mobile } = body.into_inner();
    let mobile = Mobile::parse(&mobile).map_err(ApiError::from)?;
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
            code_hash: code_hash(&state, &account.id, &code),
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
    let message = match lang.0 {
        domain::Lang::Fa => "در صورت درستی مشخصات، کد بازیابی به تلفن همراه ثبت شده پیامک می‌شود.",
        domain::Lang::En => "If the details match, a reset code is sent by SMS to the registered mobile.",
    };
    Ok(HttpResponse::Accepted().json(ResetRequested {
        message: message.into(),
        code_valid_seconds: RESET_CODE_MINUTES * 60,
        resend_after_seconds: RESET_RESEND_SECONDS,
    }))
}

/// A keyed hash bound to the account, so a stolen table cannot be brute-forced offline.
fn code_hash(state: &AppState, account_id: &str, code: &str) -> String {
    state.pii.lookup(PiiKind::Secret, &format!("efolder-reset:{account_id}:{code}"))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirm {
    #[schema(example = "kpa7m3q9xz")]
    pub username: String,
    /// The 6-digit code from the SMS; Persian digits are fine.
    #[schema(example = "482915")]
    pub code: String,
    /// At least 10 characters; neither the username nor the national code.
    #[schema(example = "a long passphrase of mine")]
    pub new_password: String,
}

/// Sets a new password with the SMS code: 422 `reset_code_invalid` for a wrong code
/// (3 guesses per code, then `reset_code_attempts_exhausted`), `reset_code_expired`
/// after 5 minutes. Success ends the first-login state and every older token.
#[utoipa::path(operation_id = "efolder_confirm_password_reset", tag = "efolder", request_body = ResetConfirm,
    responses((status = 200, description = "Password set; a fresh session", body = EfolderSession), PublicWrite))]
#[post("/api/v1/efolder/password-reset/confirm")]
pub async fn confirm_reset(
    state: web::Data<AppState>,
    body: crate::extract::Json<ResetConfirm>,
) -> Result<HttpResponse, ApiError> {
    let ResetConfirm { username, code, new_password } = body.into_inner();
    let code = domain::text::ascii_digits(code.trim());
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::Unprocessable { code: "reset_code_invalid" });
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
        return Err(ApiError::Unprocessable { code: "reset_code_invalid" });
    };
    let now = state.now();
    if stored.expires_at.and_utc() <= now {
        let id = account.id.clone();
        state.run(move |conn| persistence::efolder::delete_reset_code(conn, &id)).await?;
        return Err(ApiError::Unprocessable { code: "reset_code_expired" });
    }
    // A weak new password does not use up a guess.
    efolder::check_new_password(&new_password, &account.username, &national_id_of(&state, &account)?)?;
    // The guess is counted before the code is compared: parallel guesses get at most
    // RESET_CODE_ATTEMPTS comparisons between them.
    let id = account.id.clone();
    let Some(taken) =
        state.run(move |conn| persistence::efolder::take_reset_attempt(conn, &id, RESET_CODE_ATTEMPTS)).await?
    else {
        return Err(ApiError::Unprocessable { code: "reset_code_invalid" });
    };
    state.metrics.event("guess_checked", "reset_code");
    let expected = code_hash(&state, &account.id, &code);
    if !crate::secrets::constant_time_eq(expected.as_bytes(), taken.code_hash.as_bytes()) {
        if taken.attempts < RESET_CODE_ATTEMPTS {
            return Err(ApiError::Unprocessable { code: "reset_code_invalid" });
        }
        let id = account.id.clone();
        state.run(move |conn| persistence::efolder::delete_reset_code(conn, &id)).await?;
        return Err(ApiError::Unprocessable { code: "reset_code_attempts_exhausted" });
    }
    let account = store_password(&state, account, new_password).await?;
    Ok(HttpResponse::Ok().json(session(&state, &account, now).await?))
}

/// Logout: ends this session on the server. The token, and any copy of it, gets 401
/// `session_ended` afterwards.
#[utoipa::path(operation_id = "efolder_sign_out", tag = "efolder", security(("efolder" = [])),
    responses((status = 204, description = "Signed out; this token gets 401 from now on"), crate::routes::problems::SessionEnd))]
#[delete("/api/v1/efolder/sessions/current")]
pub async fn end_efolder_session(state: web::Data<AppState>, who: EfolderPrincipal) -> Result<HttpResponse, ApiError> {
    let (sid, now) = (who.session_id, state.now().naive_utc());
    state.run(move |conn| persistence::sessions::end(conn, &sid, now)).await?;
    Ok(HttpResponse::NoContent().finish())
}

// ---------------------------------------------------------------- credentials recovery

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialsRecoveryRequest {
    /// The national code the account was registered with (a legal person's representative's).
    #[schema(example = "2580200606")]
    pub national_id: String,
    /// The mobile registered with the account.
    #[schema(example = "09145128136")]
    pub mobile: String,
}

#[derive(Serialize, ToSchema)]
pub struct CredentialsRecoveryRequested {
    /// The same text whether or not the details matched an account.
    #[schema(
        example = "در صورت درستی مشخصات، نام کاربری و کلمه عبور تازه به تلفن همراه ثبت شده پیامک می‌شود؛ کلمه عبور را در نخستین ورود تغییر دهید."
    )]
    pub message: String,
}

/// Credentials recovery: a forgotten username, or credentials whose SMS never arrived.
///
/// When the national code and mobile match a registered account, a fresh generated
/// password and the username go by SMS to that mobile; the old password and every session
/// stop working, and the new password must be changed at the first login. The answer is the
/// same (202) whether or not they match, and takes the same work. Each national code may
/// ask `limits.efolder_credential_recoveries_per_day` times a Tehran day (429
/// `efolder_recovery_limit` with `Retry-After`), counted before anything is looked up.
#[utoipa::path(operation_id = "efolder_recover_credentials", tag = "efolder", request_body = CredentialsRecoveryRequest,
    responses((status = 202, description = "If the details match, new credentials were sent", body = CredentialsRecoveryRequested), PublicWrite))]
#[post("/api/v1/efolder/credentials-recovery")]
pub async fn recover_credentials(
    state: web::Data<AppState>,
    lang: RequestLang,
    body: crate::extract::Json<CredentialsRecoveryRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut errors = FieldErrors::default();
    let national_id = errors.take("national_id", NationalId::parse(&body.national_id));
    let mobile = errors.take("mobile", Mobile::parse(&body.mobile));
    errors.finish()?;
    let (national_id, mobile) = (national_id.expect("checked"), mobile.expect("checked"));

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
                    code: "efolder_recovery_limit",
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
    let message = match lang.0 {
        domain::Lang::Fa => {
            "در صورت درستی مشخصات، نام کاربری و کلمه عبور تازه به تلفن همراه ثبت شده پیامک می‌شود؛ کلمه عبور را در نخستین ورود تغییر دهید."
        }
        domain::Lang::En => {
            "If the details match an account, its username and a new password are sent by SMS to the registered mobile; change the password at the first login."
        }
    };
    Ok(HttpResponse::Accepted().json(CredentialsRecoveryRequested { message: message.into() }))
}
