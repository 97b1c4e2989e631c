//! Operations: liveness, readiness, metrics, the OpenAPI document and public keys.

use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiCode, ApiError, Problem};
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(value_type = crate::wire::HealthStatus, example = "ok")]
    pub status: &'static str,
    #[schema(value_type = crate::wire::Database, example = "sqlite")]
    pub database: &'static str,
}

/// The process is up.
#[utoipa::path(operation_id = "operations_health_live", tag = "operations", responses((status = 200, description = "Alive", body = Health)))]
#[get("/health/live")]
pub async fn live(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok", database: state.db.backend().as_str() })
}

/// The database answers and every migration is applied.
#[utoipa::path(operation_id = "operations_health_ready", 
    tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = Health),
        (status = 503, description = "Database unreachable or migrations pending", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/health/ready")]
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if state.is_draining() {
        return Err(ApiError::Unavailable("draining: shutting down".into()));
    }
    let turn = state.db.turn().await.map_err(|e| ApiError::Unavailable(e.to_string()))?;
    web::block(move || persistence::db::check_ready(&mut *turn.connect()?))
        .await?
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(HttpResponse::Ok().json(Health { status: "ready", database: state.db.backend().as_str() }))
}

/// Marks the app served on `metrics.bind` (only metrics and health there).
pub struct MetricsListener;

/// Prometheus metrics of this instance: requests by route, method and status; latency
/// histogram; pool usage. With `metrics.bind` set they are served there only (404 here);
/// with `metrics.token` set they need `Authorization: Bearer <token>`.
#[utoipa::path(operation_id = "operations_get_metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),
        (status = 401, description = "`metrics.token` is set and the request does not carry it", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Served on the separate `metrics.bind` address", body = Problem, content_type = "application/problem+json")))]
#[get("/metrics")]
pub async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let on_metrics_listener = req.app_data::<web::Data<MetricsListener>>().is_some();
    if state.config.metrics.bind.is_some() && !on_metrics_listener {
        return Err(ApiError::NotFound(ApiCode::RouteNotFound));
    }
    if let Some(token) = state.config.metrics.token.as_deref().filter(|t| !t.is_empty()) {
        let given = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !crate::secrets::constant_time_eq(given.as_bytes(), token.as_bytes()) {
            return Err(ApiError::Unauthorized(ApiCode::TokenInvalid));
        }
    }
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(state.metrics.render_with_pool(&state.db)))
}

/// The Ed25519 public keys that verify this server's tokens and receipt signatures.
#[utoipa::path(operation_id = "operations_get_jwks", tag = "operations", responses((status = 200, description = "JWK set", body = Object)))]
#[get("/.well-known/jwks.json")]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().insert_header(("Cache-Control", "max-age=300")).json(state.tokens.jwks())
}

/// The pre-rendered OpenAPI document.
pub struct OpenApiJson(pub String);

/// This API's OpenAPI 3.1 document.
#[utoipa::path(operation_id = "operations_get_openapi", tag = "operations", responses((status = 200, description = "OpenAPI 3.1 document", body = Object)))]
#[get("/api/v1/openapi.json")]
pub async fn openapi_json(doc: web::Data<OpenApiJson>) -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(doc.0.clone())
}
