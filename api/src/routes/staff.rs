//! Staff sign-in (operators and administrators).

use actix_web::{HttpRequest, HttpResponse, delete, post, web};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Audience;
use crate::error::{ApiCode, ApiError};
use crate::guard::{self, Client, Rule};
use crate::routes::problems::PublicWrite;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffLogin {
    #[schema(example = "admin")]
    pub username: String,
    #[schema(example = "a-long-password")]
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct StaffSession {
    #[schema(example = "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIwMTkzIn0.c2lnbmF0dXJl")]
    pub token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    #[schema(example = "2026-11-22T14:30:00Z")]
    pub expires_at: DateTime<Utc>,
    #[schema(value_type = crate::wire::StaffRole, example = "operator")]
    pub role: String,
    /// The operator's office.
    #[schema(example = "041-MRG-01")]
    pub office_id: Option<String>,
}

/// Signs a staff member in: the guess is counted before the argon2id check (a growing
/// lock per account and client address — five failures in a row lock for 1 minute, each
/// further one for twice as long, at most an hour — and budgets per address and per
/// account, see the README's "Guessing and lockouts"), then a staff token (`aud=staff`)
/// carrying role, office and token version.
#[utoipa::path(operation_id = "staff_sign_in", tag = "staff", request_body = StaffLogin,
    responses((status = 201, description = "Signed in", body = StaffSession), PublicWrite,
        (status = 401, description = "Wrong username or password, or a disabled account", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/api/v1/staff/sessions")]
pub async fn sign_in(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: crate::extract::Json<StaffLogin>,
) -> Result<HttpResponse, ApiError> {
    let StaffLogin { username, password } = body.into_inner();
    let now = state.now();
    // Unknown usernames are counted like known ones, so neither answers nor locks tell them apart.
    let subject = username.trim().to_lowercase();
    let (pii, rule, client) = (state.pii.clone(), Rule::staff_login(&state.config), Client::of(&req));
    let (attempt, user) = state
        .run_api(move |conn| {
            let attempt = guard::begin(conn, &pii, &rule, &subject, &client, now)?;
            Ok((attempt, persistence::staff::find_by_username(conn, &username)?))
        })
        .await?;
    state.metrics.event("guess_checked", "staff_login");
    let Some(user) = user else {
        // Same work and answer as a wrong password, so usernames cannot be probed.
        web::block(move || crate::passwords::dummy_verify(&password)).await?;
        return Err(ApiError::Unauthorized(ApiCode::CredentialsInvalid));
    };
    let hash = user.password_hash.clone();
    if !web::block(move || crate::passwords::verify(&password, &hash)).await? {
        return Err(ApiError::Unauthorized(ApiCode::CredentialsInvalid));
    }
    if user.disabled {
        state.run_api(move |conn| guard::release(conn, &attempt)).await?;
        return Err(ApiError::Unauthorized(ApiCode::AccountDisabled));
    }
    let id = user.id.clone();
    let minutes = state.config.auth.staff_token_minutes;
    let sid = state
        .run_api(move |conn| {
            guard::release(conn, &attempt)?;
            persistence::staff::record_success(conn, &id, now.naive_utc())?;
            Ok(crate::auth::open_session(conn, Audience::Staff, &id, now, minutes)?)
        })
        .await?;
    let mut claims = state.tokens.claims(Audience::Staff, &user.id, now, minutes);
    claims.sid = Some(sid);
    claims.role = Some(user.role.clone());
    claims.office = user.office_id.clone().map(String::from);
    claims.tv = Some(user.token_version);
    let token = state.tokens.issue(&claims)?;
    // Where this token leads: an operator's day list, an administrator's overview.
    let location = if user.role == "admin" { "/api/v1/admin/stats" } else { "/api/v1/office/appointments" };
    Ok(HttpResponse::Created().insert_header(("Location", location)).json(StaffSession {
        token,
        token_type: "Bearer",
        expires_at: now + Duration::minutes(minutes),
        role: user.role,
        office_id: user.office_id.map(String::from),
    }))
}

/// Logout: ends this session on the server. The token, and any copy of it, gets 401
/// `session_ended` afterwards. A staff session also ends after `auth.staff_idle_minutes`
/// without a request (401 `session_idle`).
#[utoipa::path(operation_id = "staff_sign_out", tag = "staff", security(("staff" = [])),
    responses((status = 204, description = "Signed out; this token gets 401 from now on"), crate::routes::problems::SessionEnd))]
#[delete("/api/v1/staff/sessions/current")]
pub async fn end_staff_session(
    state: web::Data<AppState>,
    who: crate::auth::StaffPrincipal,
) -> Result<HttpResponse, ApiError> {
    let (sid, now) = (who.session_id, state.now().naive_utc());
    state.run(move |conn| persistence::sessions::end(conn, &sid, now)).await?;
    Ok(HttpResponse::NoContent().finish())
}
