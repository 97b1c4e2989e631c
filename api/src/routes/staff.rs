//! Staff sign-in (operators and administrators).

use actix_web::{HttpResponse, post, web};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Audience;
use crate::error::ApiError;
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
    pub token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    pub expires_at: DateTime<Utc>,
    /// `operator` or `admin`.
    #[schema(example = "operator")]
    pub role: String,
    /// The operator's office.
    pub office_id: Option<String>,
}

const FAILURES_BEFORE_LOCK: i32 = 5;

/// Signs a staff member in: argon2id password check, lockout after 5 failures in a row
/// (15 minutes), a staff token (`aud=staff`) carrying role, office and token version.
#[utoipa::path(operation_id = "staff_sign_in", tag = "staff", request_body = StaffLogin,
    responses((status = 201, description = "Signed in", body = StaffSession), PublicWrite,
        (status = 401, description = "Wrong username or password, or a disabled account", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/api/v1/staff/sessions")]
pub async fn sign_in(
    state: web::Data<AppState>,
    body: crate::extract::Json<StaffLogin>,
) -> Result<HttpResponse, ApiError> {
    let StaffLogin { username, password } = body.into_inner();
    let now = state.now();
    let user = state.run(move |conn| persistence::staff::find_by_username(conn, &username)).await?;
    let Some(user) = user else {
        // Same work and answer as a wrong password, so usernames cannot be probed.
        web::block(move || crate::passwords::dummy_verify(&password)).await?;
        return Err(ApiError::Unauthorized("credentials_invalid"));
    };
    if let Some(until) = user.locked_until.map(|t| t.and_utc()).filter(|t| *t > now) {
        return Err(ApiError::TooManyRequests {
            code: "account_locked",
            retry_after: (until - now).num_seconds().max(1) as u64,
        });
    }
    let hash = user.password_hash.clone();
    let ok = web::block(move || crate::passwords::verify(&password, &hash)).await?;
    let id = user.id.clone();
    if !ok {
        state
            .run(move |conn| {
                persistence::staff::record_failure(
                    conn,
                    &id,
                    now.naive_utc(),
                    FAILURES_BEFORE_LOCK,
                    Duration::minutes(15),
                )
            })
            .await?;
        return Err(ApiError::Unauthorized("credentials_invalid"));
    }
    if user.disabled {
        return Err(ApiError::Unauthorized("account_disabled"));
    }
    state.run(move |conn| persistence::staff::record_success(conn, &id, now.naive_utc())).await?;
    let minutes = state.config.auth.staff_token_minutes;
    let mut claims = state.tokens.claims(Audience::Staff, &user.id, now, minutes);
    claims.role = Some(user.role.clone());
    claims.office = user.office_id.clone();
    claims.tv = Some(user.token_version);
    let token = state.tokens.issue(&claims)?;
    // Where this token leads: an operator's day list, an administrator's overview.
    let location = if user.role == "admin" { "/api/v1/admin/stats" } else { "/api/v1/office/appointments" };
    Ok(HttpResponse::Created().insert_header(("Location", location)).json(StaffSession {
        token,
        token_type: "Bearer",
        expires_at: now + Duration::minutes(minutes),
        role: user.role,
        office_id: user.office_id,
    }))
}
