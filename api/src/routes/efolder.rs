//! The national e-folder (کارپوشه ملی) over HTTP (docs/domain/efolder.md): self-registration
//! with generated credentials sent by SMS, login, the forced first password change, the
//! account, and password reset with a one-time SMS code.
//!
//! Passwords and reset codes exist in clear only in memory: the database holds an
//! Argon2id hash of the password and a keyed hash of the code; the credentials SMS sits
//! sealed in the outbox until it is sent. Every answer here is `Cache-Control: no-store`
//! (set for all of `/api/v1/efolder` by the request middleware).

use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};
use chrono::{DateTime, Utc};
use domain::efolder::{self, PersonType, Registration};
use domain::ids::{LegalId, Mobile, NationalId, PostalCode};
use domain::person::PersonName;
use persistence::PiiKind;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::EfolderPrincipal;
use crate::error::{ApiError, FieldErrors};
use crate::guard::Client;
pub use crate::journey::efolder::CredentialsDelivery;
use crate::journey::efolder::{self as usecase, RESET_CODE_MINUTES, RESET_RESEND_SECONDS};
use crate::middleware::RequestLang;
use crate::routes::problems::PublicWrite;
use crate::state::AppState;
use crate::wire;

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
    let done = usecase::register(&state, Client::of(&req), form).await?;
    Ok(registered(lang.0, done))
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

fn registered(lang: domain::Lang, done: usecase::Registered) -> HttpResponse {
    let usecase::Registered { delivery, username, password } = done;
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

impl From<usecase::Session> for EfolderSession {
    fn from(s: usecase::Session) -> Self {
        EfolderSession {
            token: s.token,
            token_type: "Bearer",
            expires_at: s.expires_at,
            must_change_password: s.must_change_password,
        }
    }
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
    let session = usecase::sign_in(&state, Client::of(&req), &username, password).await?;
    Ok(HttpResponse::Created().insert_header(("Location", "/api/v1/efolder/me")).json(EfolderSession::from(session)))
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
    let session =
        usecase::change_password(&state, Client::of(&req), who.account, current_password, new_password).await?;
    Ok(HttpResponse::Ok().json(EfolderSession::from(session)))
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
        id: a.id.to_string(),
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
    usecase::request_reset(&state, &username, mobile).await?;
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
    let session = usecase::confirm_reset(&state, &username, &code, new_password).await?;
    Ok(HttpResponse::Ok().json(EfolderSession::from(session)))
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
    usecase::recover_credentials(&state, national_id, mobile).await?;
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
