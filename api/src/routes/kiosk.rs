//! Partner kiosks (café-nets, government counter and post offices) post a whole
//! registration for a citizen in one call, through the same journey functions and domain
//! rules as the citizen path. `Idempotency-Key` is required; a kiosk sees only the
//! applications it created; each client has its own rate limit.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use domain::DomainError;
use domain::application::Slot;
use domain::ids::{BirthCertSerial, NationalId};
use domain::record_ids::ApplicationId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{KioskClient, MachinePrincipal};
use crate::error::{ApiCode, ApiError, FieldErrors};
use crate::journey::view::{ApplicationView, Family, build_view};
use crate::journey::{self, actor};
use crate::routes::citizen::{AppointmentRequest, PersonalInfoRequest};
use crate::routes::payments::PaymentView;
use crate::routes::problems::StaffWrite;
use crate::state::AppState;
use crate::wire;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KioskApplication {
    #[schema(example = "2580200606")]
    pub national_id: String,
    #[schema(example = "883810")]
    pub serial: String,
    pub personal_info: PersonalInfoRequest,
    pub special_needs: wire::SpecialNeeds,
    pub family: Option<Family>,
    /// The office, date and shift chosen with the citizen (absent for a home visit).
    pub appointment: Option<AppointmentRequest>,
    /// Gateway for the citizen's payment link (default: the first enabled one).
    #[schema(value_type = Option<wire::Gateway>, example = "sandbox")]
    pub gateway: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct KioskResult {
    pub application: ApplicationView,
    /// The tracking code; `null` until the payment succeeds (it is issued then).
    #[schema(example = "4973201670", required = true)]
    pub tracking_code: Option<String>,
    /// The link the citizen pays at (when payment is due).
    pub payment: Option<PaymentView>,
}

/// The client's row, if enabled, and its own rate limit (429 with `Retry-After`).
async fn admit(state: &AppState, client: &MachinePrincipal) -> Result<(), ApiError> {
    let id = client.client_id.clone();
    let row = state.run(move |conn| persistence::back_office::client(conn, &id)).await?;
    let row = row.filter(|c| !c.disabled).ok_or(ApiError::Unauthorized(ApiCode::TokenInvalid))?;
    let quota = crate::limits::Quota::per_minute(u32::try_from(row.rate_per_minute).unwrap_or(1));
    state.limiter.check("client", &row.client_id, quota).await.map_err(|r| r.into_error(ApiCode::RateLimited))
}

/// A whole registration in one call: entry checks, personal information, special needs,
/// family, the chosen seat (held for the payment timeout) and the citizen's payment link.
/// Requires `Idempotency-Key`: a retry with the same key and body gets the same answer and
/// has no second effect; the same key with another body is 422; one still running is 409.
#[utoipa::path(operation_id = "kiosk_register_application", tag = "kiosk", security(("machine" = ["kiosk:applications"])), request_body = KioskApplication,
    params(("Idempotency-Key" = String, Header, pattern = "^[!-~]{1,255}$", example = "kiosk-reg-2026-11-22-0001", description = "Unique per registration attempt (≤ 255 printable characters), kept 48 hours")),
    responses((status = 201, description = "Registered for payment", body = KioskResult), StaffWrite,
        (status = 429, description = "Rate limited for this client", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/api/v1/kiosk/applications")]
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    KioskClient(client): KioskClient,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    admit(&state, &client).await?;
    if !crate::extract::is_json(&req) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let key = crate::idempotency::key_of(req.headers(), true)?;
    let scope = format!("kiosk:{}", client.client_id);
    let state2 = state.clone();
    let fingerprint = body.clone();
    let req2 = req.clone();
    // Where the kiosk reads the registration back (also on a replayed 201).
    let location = |body: &str| {
        let v: serde_json::Value = serde_json::from_str(body).ok()?;
        Some(format!("/api/v1/kiosk/applications/{}", v["application"]["id"].as_str()?))
    };
    crate::idempotency::once_located(&req2, &state, &scope, key, &fingerprint, location, || async move {
        let input: KioskApplication = crate::extract::parse_object(&body)?;
        let result = register(&state2, &req, &client, input).await?;
        Ok(HttpResponse::Created().json(result))
    })
    .await
}

/// Parses a kiosk's registration and registers it ([`journey::kiosk::register`]).
async fn register(
    state: &AppState,
    req: &HttpRequest,
    client: &MachinePrincipal,
    input: KioskApplication,
) -> Result<KioskResult, ApiError> {
    let mut e = FieldErrors::default();
    let national_id = e.take("national_id", NationalId::parse(&input.national_id));
    let serial = e.take("serial", BirthCertSerial::parse(&input.serial));
    e.finish()?;
    let (national_id, serial) = (national_id.expect("checked"), serial.expect("checked"));
    let info = input.personal_info.parse().map_err(|err| prefix_fields(err, "personal_info."))?;
    let family = input
        .family
        .as_ref()
        .map(journey::personal::validate_family)
        .transpose()
        .map_err(|err| prefix_fields(err, "family."))?;
    let registration = journey::kiosk::Registration {
        national_id,
        serial,
        info,
        needs: input.special_needs.into(),
        family,
        slot: input.appointment.map(|a| Slot { office_id: a.office_id.into(), date: a.date, shift: a.shift.into() }),
        gateway: input.gateway.or_else(|| state.config.payments.gateways.first().cloned()).unwrap_or_default(),
    };
    let actor = actor(req, "kiosk", &client.client_id);
    let done = journey::kiosk::register(state, &client.client_id, actor, registration).await?;
    Ok(KioskResult {
        tracking_code: done.application.tracking_code.clone(),
        application: build_view(state, done.application).await?,
        payment: done.payment.as_ref().map(PaymentView::from),
    })
}

/// Puts a prefix on field names (e.g. `personal_info.mobile`).
fn prefix_fields(e: ApiError, prefix: &str) -> ApiError {
    match e {
        ApiError::Fields(mut f) => {
            f.iter_mut().for_each(|e| e.field = format!("{prefix}{}", e.field));
            ApiError::Fields(f)
        }
        other => other,
    }
}

/// The five Lunar Hijri birth-date options for a solar birth date, as the citizen's
/// `/citizen/hijri-birth-date-options` answers them: the kiosk shows them and sends the
/// one on the birth certificate as `personal_info.birth_date_hijri`.
#[utoipa::path(operation_id = "kiosk_list_hijri_birth_date_options", tag = "kiosk", security(("machine" = ["kiosk:applications"])),
    params(crate::routes::citizen::HijriQuery),
    responses((status = 200, description = "Five options", body = crate::routes::citizen::HijriOptions), crate::routes::problems::StaffRead,
        (status = 429, description = "Rate limited for this client", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/api/v1/kiosk/hijri-birth-date-options")]
pub async fn hijri_options(
    state: web::Data<AppState>,
    KioskClient(client): KioskClient,
    query: web::Query<crate::routes::citizen::HijriQuery>,
) -> Result<HttpResponse, ApiError> {
    admit(&state, &client).await?;
    Ok(HttpResponse::Ok().json(crate::routes::citizen::lunar_options(&query)?))
}

/// An application this kiosk created, by id or tracking code.
#[utoipa::path(operation_id = "kiosk_get_application", tag = "kiosk", security(("machine" = ["kiosk:applications"])), params(("id" = String, Path, description = "Application id or tracking code", example = "4973201670")),
    responses((status = 200, description = "The application", body = ApplicationView), crate::routes::problems::StaffRead,
        (status = 429, description = "Rate limited for this client", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/api/v1/kiosk/applications/{id}")]
pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    KioskClient(client): KioskClient,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    admit(&state, &client).await?;
    let id = id.into_inner();
    let row = state
        .run(move |conn| match persistence::applications::find_by_tracking_code(conn, &id)? {
            Some(r) => Ok(Some(r)),
            None => persistence::applications::find(conn, &ApplicationId::from(id.as_str())),
        })
        .await?
        .filter(|r| r.created_by_client.as_deref() == Some(client.client_id.as_str()))
        .ok_or(ApiError::Domain(DomainError::ApplicationNotFound))?;
    let mut builder = HttpResponse::Ok();
    builder.insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"));
    crate::etag::json(&req, builder, &build_view(&state, row).await?)
}
