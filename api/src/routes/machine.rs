//! Machine clients: OAuth2 client-credentials tokens, and the card production line's events.

use actix_web::{HttpResponse, post, web};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::auth::{Audience, ProductionClient};
use crate::error::ApiError;
use crate::journey::office::{self, ProductionKind};
use crate::journey::view::build_view;
use crate::routes::problems::{PublicWrite, StaffWrite};
use crate::state::AppState;

/// SHA-256 of a client secret (secrets are 256-bit random, so a fast hash is enough).
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The only grant this server issues.
#[derive(Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    ClientCredentials,
}

#[derive(Deserialize, ToSchema)]
pub struct TokenRequest {
    pub grant_type: GrantType,
    #[schema(example = "kiosk-pouya-borujerd")]
    pub client_id: String,
    pub client_secret: String,
    /// Optional: a subset of the client's scopes, space-separated. Asking for a scope the
    /// client does not hold is 400 `invalid_scope` (RFC 6749 §5.2).
    #[schema(
        example = "kiosk:applications",
        pattern = r"^(kiosk:applications|production:events)( (kiosk:applications|production:events))*$"
    )]
    pub scope: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    #[schema(example = 900)]
    pub expires_in: i64,
    #[schema(example = "kiosk:applications")]
    pub scope: String,
}

/// OAuth 2.0 client credentials (RFC 6749 §4.4), form-encoded: a short-lived machine
/// token carrying the client's kind (`kiosk`, `production`) and scopes.
#[utoipa::path(tag = "machine", request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "A token", body = TokenResponse), PublicWrite,
        (status = 401, description = "Unknown client, wrong secret or disabled (`client_invalid`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/api/v1/oauth/token")]
pub async fn token(state: web::Data<AppState>, form: web::Form<TokenRequest>) -> Result<HttpResponse, ApiError> {
    let f = form.into_inner();
    let id = f.client_id.clone();
    let client = state.run(move |conn| persistence::back_office::client(conn, &id)).await?;
    let given = hash_secret(&f.client_secret);
    let Some(client) =
        client.filter(|c| !c.disabled && crate::secrets::constant_time_eq(c.secret_hash.as_bytes(), given.as_bytes()))
    else {
        return Err(ApiError::Unauthorized("client_invalid"));
    };
    let granted: Vec<&str> = client.scopes.split_whitespace().collect();
    let scope = match f.scope.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(asked) => {
            if asked.split_whitespace().any(|s| !granted.contains(&s)) {
                return Err(ApiError::BadRequest { code: "invalid_scope", detail: String::new() });
            }
            asked.to_owned()
        }
        None => granted.join(" "),
    };
    let minutes = state.config.auth.machine_token_minutes;
    let mut claims = state.tokens.claims(Audience::Machine, &client.client_id, state.now(), minutes);
    claims.role = Some(client.kind.clone());
    claims.scope = Some(scope.clone());
    claims.office = client.office_id.clone();
    // Rotating the secret or disabling the client bumps it: older tokens stop at once.
    claims.tv = Some(client.token_version);
    let access_token = state.tokens.issue(&claims)?;
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: minutes * 60,
        scope,
    }))
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
    pub office_id: Option<String>,
    pub note: Option<String>,
}

/// Reports card production progress: `production_started` (delivery-office changes stop),
/// `card_produced`, `dispatched`, `ready_for_delivery` (the citizen is told by SMS),
/// `failed`. Validated by the state machine; idempotent per `event_id`.
#[utoipa::path(tag = "production", security(("machine" = [])), params(("tracking_code" = String, Path, example = "4973201670")),
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
        return Err(ApiError::field("event_id", "length"));
    }
    let kind = match b.kind {
        ProductionEventKind::ProductionStarted => ProductionKind::ProductionStarted,
        ProductionEventKind::CardProduced => ProductionKind::CardProduced,
        ProductionEventKind::Dispatched => ProductionKind::Dispatched,
        ProductionEventKind::ReadyForDelivery => ProductionKind::ReadyForDelivery,
        ProductionEventKind::Failed => ProductionKind::Failed,
    };
    let note = b.note.map(|n| n.chars().take(500).collect());
    let (row, created) =
        office::production_event(&state, &client.client_id, &tracking_code, b.event_id, kind, b.office_id, note)
            .await?;
    let view = build_view(&state, row).await?;
    Ok(if created { HttpResponse::Created().json(view) } else { HttpResponse::Ok().json(view) })
}
