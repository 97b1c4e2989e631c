//! Machine clients: OAuth2 client-credentials tokens, and the card production line's events.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use domain::record_ids::ClientId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Audience, ProductionClient};
use crate::error::{ApiCode, ApiError};
use crate::journey::office::{self, ProductionKind};
use crate::journey::view::build_view;
use crate::page::PageRequest;
use crate::routes::problems::{StaffRead, StaffWrite};
use crate::secrets::hash_secret;
use crate::state::AppState;

/// The only grant this server issues.
#[derive(Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    ClientCredentials,
}

/// The token request (RFC 6749 §4.4.2), form-encoded. The client authenticates either
/// with HTTP Basic (`client_id:client_secret`, RFC 6749 §2.3.1 — preferred) or with
/// `client_id` and `client_secret` in this form; not both.
#[derive(Deserialize, ToSchema)]
pub struct TokenRequest {
    pub grant_type: GrantType,
    /// With body authentication: the client's id.
    #[schema(example = "kiosk-pouya-borujerd")]
    pub client_id: Option<String>,
    /// With body authentication: the client's secret.
    #[schema(example = "3q2-7wEAAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRo")]
    pub client_secret: Option<String>,
    /// Optional: a subset of the client's scopes, space-separated. Asking for a scope the
    /// client does not hold is 400 `invalid_scope` (RFC 6749 §5.2).
    #[schema(
        example = "kiosk:applications",
        pattern = r"^(kiosk:applications|production:events)( (kiosk:applications|production:events))*$"
    )]
    pub scope: Option<String>,
}

/// A token (RFC 6749 §5.1). Answered with `Cache-Control: no-store`.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    #[schema(example = "eyJhbGciOiJFZERTQSIsImtpZCI6InMxIn0.eyJpc3MiOiJuY3IifQ.c2lnbmF0dXJl")]
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the token expires.
    #[schema(example = 900)]
    pub expires_in: i64,
    #[schema(example = "kiosk:applications")]
    pub scope: String,
}

/// The error codes of RFC 6749 §5.2.
#[derive(Serialize, ToSchema, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OAuthErrorCode {
    InvalidRequest,
    InvalidClient,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
}

/// A token-endpoint error (RFC 6749 §5.2), as `application/json` so OAuth libraries read
/// it; `request_id` is the `X-Request-Id` of the answer.
#[derive(Serialize, ToSchema)]
pub struct OAuthError {
    pub error: OAuthErrorCode,
    /// What was wrong, in English (for the integrator, not for end users).
    #[schema(example = "The client id or secret is wrong, or the client is disabled.")]
    pub error_description: String,
    #[schema(example = "0f9b6a9c-3f4e-4a7e-9a49-7f1f3c2b1d10")]
    pub request_id: String,
}

fn oauth_error(req: &HttpRequest, error: OAuthErrorCode, description: &str) -> HttpResponse {
    use actix_web::HttpMessage;
    let status = if error == OAuthErrorCode::InvalidClient {
        actix_web::http::StatusCode::UNAUTHORIZED
    } else {
        actix_web::http::StatusCode::BAD_REQUEST
    };
    let request_id = req.extensions().get::<crate::middleware::RequestId>().map(|r| r.0.clone()).unwrap_or_default();
    let mut res = HttpResponse::build(status);
    res.insert_header(("Cache-Control", "no-store")).insert_header(("Pragma", "no-cache"));
    if status == actix_web::http::StatusCode::UNAUTHORIZED {
        // RFC 6749 §5.2: a 401 names the authentication scheme to use.
        res.insert_header(("WWW-Authenticate", "Basic realm=\"ncr\""));
    }
    let mut response = res.json(OAuthError { error, error_description: description.into(), request_id });
    response.extensions_mut().insert(crate::error::KeepBody);
    response
}

/// Decodes `%XX` escapes (RFC 6749 §2.3.1 form-encodes the id and secret before Basic).
fn percent_decode(text: &str) -> Option<String> {
    percent_encoding::percent_decode_str(text).decode_utf8().ok().map(|s| s.into_owned())
}

/// The client credentials of a Basic `Authorization` header, if there is one.
fn basic_credentials(req: &HttpRequest) -> Result<Option<(String, String)>, ()> {
    use base64::Engine;
    let Some(value) = req.headers().get(actix_web::http::header::AUTHORIZATION) else { return Ok(None) };
    let text = value.to_str().map_err(|_| ())?;
    let (scheme, encoded) = text.split_once(' ').ok_or(())?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(());
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| ())?;
    let decoded = String::from_utf8(decoded).map_err(|_| ())?;
    let (id, secret) = decoded.split_once(':').ok_or(())?;
    Ok(Some((percent_decode(id).ok_or(())?, percent_decode(secret).ok_or(())?)))
}

/// OAuth 2.0 client credentials (RFC 6749 §4.4): a short-lived machine token carrying
/// the client's kind (`kiosk`, `production`) and scopes. Client authentication by HTTP
/// Basic (RFC 6749 §2.3.1) or by `client_id` + `client_secret` in the form body.
/// Errors are RFC 6749 §5.2 `{"error", "error_description"}` documents (`application/json`),
/// answers carry `Cache-Control: no-store`.
#[utoipa::path(operation_id = "machine_issue_token", tag = "machine",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    security((), ("client_basic" = [])),
    responses(
        (status = 200, description = "A token", body = TokenResponse,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, description = "`invalid_request` (malformed form, missing `grant_type` or credentials, two authentication methods), `unsupported_grant_type`, `invalid_scope`, `unauthorized_client`",
            body = OAuthError, content_type = "application/json",
            example = json!({"error": "invalid_scope", "error_description": "The requested scope is not granted to this client.", "request_id": "0f9b6a9c-3f4e-4a7e-9a49-7f1f3c2b1d10"})),
        (status = 401, description = "`invalid_client`: unknown client, wrong secret or a disabled client",
            body = OAuthError, content_type = "application/json",
            example = json!({"error": "invalid_client", "error_description": "The client id or secret is wrong, or the client is disabled.", "request_id": "0f9b6a9c-3f4e-4a7e-9a49-7f1f3c2b1d10"})),
        (status = 413, description = "Body too large", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Database unavailable", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/api/v1/oauth/token")]
pub async fn token(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    use OAuthErrorCode::*;
    let form_type =
        req.headers().get(actix_web::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
            v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    let basic = basic_credentials(&req);
    if !form_type {
        return Ok(oauth_error(&req, InvalidRequest, "The body must be application/x-www-form-urlencoded."));
    }
    let fields: Vec<(String, String)> = match serde_urlencoded::from_bytes(&body) {
        Ok(f) => f,
        Err(_) => return Ok(oauth_error(&req, InvalidRequest, "The form body cannot be read.")),
    };
    // No client id, secret or scope holds a NUL character (and no database column could).
    let nul = fields.iter().any(|(k, v)| k.contains('\0') || v.contains('\0'))
        || basic
            .as_ref()
            .ok()
            .and_then(|b| b.as_ref())
            .is_some_and(|(id, secret)| id.contains('\0') || secret.contains('\0'));
    if nul {
        return Ok(oauth_error(&req, InvalidRequest, "A parameter holds a NUL character."));
    }
    let field = |name: &str| -> Result<Option<&str>, ()> {
        let mut values = fields.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let first = values.next();
        // RFC 6749 §3.2: parameters must not be included more than once.
        if values.next().is_some() { Err(()) } else { Ok(first) }
    };
    let (Ok(grant_type), Ok(body_id), Ok(body_secret), Ok(scope)) =
        (field("grant_type"), field("client_id"), field("client_secret"), field("scope"))
    else {
        return Ok(oauth_error(&req, InvalidRequest, "A parameter is repeated."));
    };
    let (client_id, secret) = match (basic, body_id, body_secret) {
        (Err(()), _, _) => {
            return Ok(oauth_error(&req, InvalidClient, "The Authorization header is not valid HTTP Basic."));
        }
        (Ok(Some(_)), _, Some(_)) => {
            return Ok(oauth_error(&req, InvalidRequest, "Use one client authentication method, not two."));
        }
        (Ok(Some((id, secret))), body_id, None) => {
            if body_id.is_some_and(|b| b != id) {
                return Ok(oauth_error(&req, InvalidRequest, "client_id differs from the Basic credentials."));
            }
            (id, secret)
        }
        (Ok(None), Some(id), Some(secret)) => (id.to_owned(), secret.to_owned()),
        (Ok(None), _, _) => {
            return Ok(oauth_error(
                &req,
                InvalidClient,
                "Client authentication is required: HTTP Basic, or client_id and client_secret in the body.",
            ));
        }
    };
    match grant_type {
        Some("client_credentials") => {}
        Some(_) => return Ok(oauth_error(&req, UnsupportedGrantType, "Only client_credentials is issued.")),
        None => return Ok(oauth_error(&req, InvalidRequest, "grant_type is required.")),
    }
    let id = ClientId::from(client_id.as_str());
    let client = state.run(move |conn| persistence::back_office::client(conn, &id)).await?;
    let given = hash_secret(&secret);
    let Some(client) =
        client.filter(|c| !c.disabled && crate::secrets::constant_time_eq(c.secret_hash.as_bytes(), given.as_bytes()))
    else {
        return Ok(oauth_error(&req, InvalidClient, "The client id or secret is wrong, or the client is disabled."));
    };
    let granted: Vec<&str> = client.scopes.split_whitespace().collect();
    let scope = match scope.map(str::trim).filter(|s| !s.is_empty()) {
        Some(asked) => {
            if asked.split(' ').any(|s| !granted.contains(&s)) {
                return Ok(oauth_error(&req, InvalidScope, "The requested scope is not granted to this client."));
            }
            asked.to_owned()
        }
        None => granted.join(" "),
    };
    let minutes = state.config.auth.machine_token_minutes;
    let mut claims = state.tokens.claims(Audience::Machine, &client.client_id, state.now(), minutes);
    claims.role = Some(client.kind.clone());
    claims.scope = Some(scope.clone());
    claims.office = client.office_id.clone().map(String::from);
    // Rotating the secret or disabling the client bumps it: older tokens stop at once.
    claims.tv = Some(client.token_version);
    let access_token = state.tokens.issue(&claims)?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Pragma", "no-cache"))
        .json(TokenResponse { access_token, token_type: "Bearer", expires_in: minutes * 60, scope }))
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProductionEventKind {
    ProductionStarted,
    CardProduced,
    Dispatched,
    ReadyForDelivery,
    Failed,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductionEventRequest {
    /// The production system's own id for this event; repeats are answered idempotently.
    #[schema(example = "evt-2026-11-30-000123")]
    pub event_id: String,
    pub kind: ProductionEventKind,
    /// For `ready_for_delivery`: where the card is (defaults to the delivery office).
    #[schema(example = "041-MRG-01")]
    pub office_id: Option<String>,
    #[schema(example = "batch 2026-48")]
    pub note: Option<String>,
}

/// Reports card production progress: `production_started` (delivery-office changes stop),
/// `card_produced`, `dispatched`, `ready_for_delivery` (the citizen is told by SMS),
/// `failed`. Validated by the state machine; idempotent per `event_id`.
#[utoipa::path(operation_id = "production_report_event", tag = "production", security(("machine" = ["production:events"])), params(("tracking_code" = String, Path, example = "4973201670")),
    request_body = ProductionEventRequest,
    responses(
        (status = 201, description = "Recorded", body = crate::journey::view::ApplicationView),
        (status = 200, description = "Already recorded (same event id)", body = crate::journey::view::ApplicationView),
        StaffWrite))]
#[post("/api/v1/production/applications/{tracking_code}/events")]
pub async fn production_event(
    state: web::Data<AppState>,
    ProductionClient(client): ProductionClient,
    tracking_code: web::Path<String>,
    body: crate::extract::Json<ProductionEventRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    if b.event_id.trim().is_empty() || b.event_id.len() > 100 {
        return Err(ApiError::field("event_id", ApiCode::Length));
    }
    let kind = match b.kind {
        ProductionEventKind::ProductionStarted => ProductionKind::ProductionStarted,
        ProductionEventKind::CardProduced => ProductionKind::CardProduced,
        ProductionEventKind::Dispatched => ProductionKind::Dispatched,
        ProductionEventKind::ReadyForDelivery => ProductionKind::ReadyForDelivery,
        ProductionEventKind::Failed => ProductionKind::Failed,
    };
    let note = b.note.map(|n| n.chars().take(500).collect());
    let (row, created) = office::production_event(
        &state,
        &client.client_id,
        &tracking_code,
        b.event_id,
        kind,
        b.office_id.map(Into::into),
        note,
    )
    .await?;
    let view = build_view(&state, row).await?;
    Ok(if created {
        HttpResponse::Created()
            .insert_header(("Location", format!("/api/v1/office/applications/{}", tracking_code.as_str())))
            .json(view)
    } else {
        HttpResponse::Ok().json(view)
    })
}

// ---------------------------------------------------------------- the production queue

/// The queue's one state: applications whose enrollment is complete.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum QueueState {
    Enrolled,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct QueueQuery {
    /// Which applications: `enrolled` (the default), ready to produce.
    #[param(inline, example = "enrolled")]
    pub state: Option<QueueState>,
    /// 1–500, default 50.
    #[param(minimum = 1, maximum = 500, example = 50)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(example = "2026-11-30T08:15:00.000000000~0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub cursor: Option<String>,
}

/// The citizen's names in Latin letters, as the enrollment office entered them.
#[derive(Serialize, ToSchema)]
pub struct LatinName {
    #[schema(example = "Maryam")]
    pub first_name: String,
    #[schema(example = "Ahmadi")]
    pub last_name: String,
}

/// An office as the production line needs it: where to send the card.
#[derive(Serialize, ToSchema)]
pub struct ProductionOffice {
    #[schema(example = "041-MRG-01")]
    pub id: String,
    #[schema(example = "041-MRG-01")]
    pub code: String,
    #[schema(example = "اداره ثبت احوال مراغه")]
    pub name: String,
    #[schema(example = "مراغه")]
    pub city: String,
    #[schema(example = "مراغه - خ پاسداران - اداره ثبت احوال مراغه")]
    pub address: String,
}

impl From<&persistence::offices::OfficeRow> for ProductionOffice {
    fn from(o: &persistence::offices::OfficeRow) -> Self {
        Self {
            id: o.id.to_string(),
            code: o.code.clone(),
            name: o.name.clone(),
            city: o.city.clone(),
            address: o.address.clone(),
        }
    }
}

/// An enrolled application to produce a card for.
#[derive(Serialize, ToSchema)]
pub struct ProductionItem {
    #[schema(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub application_id: String,
    /// Report progress at `POST /api/v1/production/applications/{tracking_code}/events`.
    #[schema(example = "4973201670")]
    pub tracking_code: String,
    #[schema(example = "2580200606")]
    pub national_id: String,
    /// The birth certificate's serial (its six-digit number).
    #[schema(example = "883810")]
    pub serial: String,
    /// The names in Persian, from the civil registry; `null` until the registry confirmed
    /// the identity (then the application is not enrolled yet either).
    #[schema(example = "مریم", required = true)]
    pub first_name: Option<String>,
    #[schema(example = "احمدی", required = true)]
    pub last_name: Option<String>,
    /// The names in Latin letters as the enrollment office entered them; `null` when it
    /// entered none.
    #[schema(required = true)]
    pub latin_name: Option<LatinName>,
    #[schema(example = "1990-06-09")]
    pub birth_date: NaiveDate,
    #[schema(example = "1369-03-19")]
    pub birth_date_jalali: String,
    pub gender: crate::wire::Gender,
    /// Where the citizen enrolled.
    pub enrollment_office: ProductionOffice,
    /// Where the card goes (the enrollment office unless the citizen chose another).
    pub delivery_office: ProductionOffice,
    #[schema(example = "2026-11-30T08:15:00Z")]
    pub enrolled_at: DateTime<Utc>,
    /// The capture system's record of the photo and fingerprints (no raw biometrics here).
    #[schema(example = "CAP-2026-000123")]
    pub capture_reference: String,
    pub fingerprints: crate::routes::office::CaptureOutcome,
    pub face: crate::routes::office::CaptureOutcome,
    /// Until then no other production client is handed this application; report
    /// `production_started` before it ends.
    #[schema(example = "2026-11-30T08:25:00Z")]
    pub lease_expires_at: DateTime<Utc>,
}

crate::page_type!(
    /// Enrolled applications to produce, oldest enrollment first.
    ProductionQueuePage,
    ProductionItem,
    "2026-11-30T08:15:00.000000000~0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b"
);

impl TryFrom<crate::journey::production::QueueEntry> for ProductionItem {
    type Error = ApiError;

    fn try_from(e: crate::journey::production::QueueEntry) -> Result<Self, ApiError> {
        let gender = domain::person::Gender::parse(&e.gender).ok_or_else(|| ApiError::internal("gender"))?;
        let capture = |c: &str| match c {
            "exception" => crate::routes::office::CaptureOutcome::Exception,
            _ => crate::routes::office::CaptureOutcome::Captured,
        };
        Ok(ProductionItem {
            application_id: e.application_id,
            tracking_code: e.tracking_code,
            national_id: e.national_id,
            serial: e.serial,
            first_name: e.first_name,
            last_name: e.last_name,
            latin_name: e.latin.map(|l| LatinName { first_name: l.first_name, last_name: l.last_name }),
            birth_date: e.birth_date,
            birth_date_jalali: e.birth_date_jalali,
            gender: gender.into(),
            enrollment_office: (&e.enrollment_office).into(),
            delivery_office: (&e.delivery_office).into(),
            enrolled_at: e.enrollment.completed_at.and_utc(),
            capture_reference: e.enrollment.capture_reference.clone(),
            fingerprints: capture(&e.enrollment.fingerprints),
            face: capture(&e.enrollment.face),
            lease_expires_at: e.lease_expires_at,
        })
    }
}

/// The production line's queue: enrolled applications, oldest enrollment first, with what
/// the card needs (names in Persian and in Latin letters, birth date, national code,
/// serial, enrollment and delivery offices, the capture record's reference).
///
/// Each page is **leased** to the client that polled it for `production.lease_minutes`
/// (10): no other production client is handed those applications before the lease ends,
/// so several clients can drain the queue at once without producing a card twice. Report
/// `production_started` for each (`POST …/{tracking_code}/events`) to take it out of the
/// queue; an application not started before its lease ends is handed out again. The same
/// client polling again from the start gets its own leased applications again (renewed).
/// Under concurrent polling a page may hold fewer than `limit` items; walk `next_cursor`
/// until it is `null`.
#[utoipa::path(operation_id = "production_list_applications", tag = "production", security(("machine" = ["production:events"])),
    params(QueueQuery),
    responses((status = 200, description = "A page of the queue, now leased to the caller", body = ProductionQueuePage), StaffRead))]
#[get("/api/v1/production/applications")]
pub async fn production_queue(
    state: web::Data<AppState>,
    ProductionClient(client): ProductionClient,
    query: web::Query<QueueQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let paging = PageRequest::new(q.limit, q.cursor)?;
    let page = crate::journey::production::poll(&state, &client.client_id, &paging).await?;
    let items = page.entries.into_iter().map(ProductionItem::try_from).collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(ProductionQueuePage { items, next_cursor: page.next_cursor }))
}
