//! Operations: liveness, readiness, metrics, the OpenAPI document and public keys.

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, Problem};
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
    /// `sqlite` or `postgres`.
    #[schema(example = "sqlite")]
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
    let db = state.db.clone();
    web::block(move || db.ready()).await?.map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(HttpResponse::Ok().json(Health { status: "ready", database: state.db.backend().as_str() }))
}

/// Prometheus metrics: requests by route, method and status; latency histogram; pool usage.
#[utoipa::path(operation_id = "operations_get_metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(crate::observability::render_metrics(&state))
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
