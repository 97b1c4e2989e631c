//! `Idempotency-Key` for POSTs that create something (docs/architecture.md): the same key and body
//! replay the first answer (status and body); the same key with a different body is 422;
//! a request still in progress with that key is 409 with `Retry-After`; keys are scoped
//! per client and kept 48 hours. A request that failed with a server error had no effect
//! (its transaction rolled back), so its key is released for a retry.

use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpResponse, ResponseError};
use chrono::Duration;
use persistence::back_office::{self, IdempotencyRow};
use sha2::{Digest, Sha256};

use crate::error::{ApiCode, ApiError};
use crate::state::AppState;

pub const HEADER: &str = "Idempotency-Key";

/// The key from the request headers, validated.
pub fn key_of(headers: &HeaderMap, required: bool) -> Result<Option<String>, ApiError> {
    match headers.get(HEADER) {
        None if required => Err(ApiError::BadRequest { code: ApiCode::IdempotencyKeyRequired, detail: String::new() }),
        None => Ok(None),
        Some(v) => {
            let k = v
                .to_str()
                .map_err(|_| ApiError::BadRequest { code: ApiCode::IdempotencyKeyInvalid, detail: String::new() })?;
            if k.is_empty() || k.len() > 255 || !k.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ApiError::BadRequest { code: ApiCode::IdempotencyKeyInvalid, detail: String::new() });
            }
            Ok(Some(k.to_owned()))
        }
    }
}

/// Runs `f` at most once per (scope, key); later calls with the same key get its answer.
/// A failure is stored as the problem document the caller saw (their language, the path,
/// the first request's `request_id`), so a replay answers exactly the same.
pub async fn once<F, Fut>(
    req: &actix_web::HttpRequest,
    state: &AppState,
    scope: &str,
    key: Option<String>,
    fingerprint: &[u8],
    f: F,
) -> Result<HttpResponse, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<HttpResponse, ApiError>>,
{
    once_located(req, state, scope, key, fingerprint, |_| None, f).await
}

/// [`once`], for an operation whose 201 carries a `Location` computed from its body, so
/// a replayed 201 carries it too.
pub async fn once_located<F, Fut>(
    req: &actix_web::HttpRequest,
    state: &AppState,
    scope: &str,
    key: Option<String>,
    fingerprint: &[u8],
    location: impl Fn(&str) -> Option<String>,
    f: F,
) -> Result<HttpResponse, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<HttpResponse, ApiError>>,
{
    let Some(key) = key else { return f().await };
    let now = state.now();
    let row = IdempotencyRow {
        scope: scope.to_owned(),
        key: key.clone(),
        request_hash: hex::encode(Sha256::digest(fingerprint)),
        status: "in_progress".into(),
        response_status: None,
        response_body: None,
        created_at: now.naive_utc(),
        expires_at: (now + Duration::hours(48)).naive_utc(),
    };
    let claim = row.clone();
    let existing = state.run(move |conn| back_office::claim_key(conn, &claim, Duration::seconds(60))).await?;
    if let Some(e) = existing {
        if e.request_hash != row.request_hash {
            return Err(ApiError::Unprocessable { code: ApiCode::IdempotencyKeyReused });
        }
        return match (e.status.as_str(), e.response_status, e.response_body) {
            ("done", Some(status), Some(sealed)) => {
                let body = opened(state, sealed)?;
                let mut response = replay(status, &body);
                if response.status() == actix_web::http::StatusCode::CREATED
                    && let Some(l) = location(&body).and_then(|l| header::HeaderValue::from_str(&l).ok())
                {
                    response.headers_mut().insert(header::LOCATION, l);
                }
                Ok(response)
            }
            _ => Err(ApiError::Conflict { code: ApiCode::IdempotencyRequestInProgress, retry_after: Some(2) }),
        };
    }
    let response = match f().await {
        Ok(r) => r,
        Err(e) => {
            if e.status_code().is_server_error() {
                // Answered here, not by the middleware: log the cause here.
                tracing::error!(code = e.code(), cause = %e, "request failed");
            }
            use actix_web::HttpMessage;
            let lang = req.extensions().get::<crate::middleware::RequestLang>().map_or(domain::Lang::Fa, |l| l.0);
            let mut problem = e.problem(lang);
            problem.instance = Some(req.path().to_owned());
            problem.request_id = req.extensions().get::<crate::middleware::RequestId>().map(|r| r.0.clone());
            let mut response = crate::error::problem_response(e.status_code(), &problem, None);
            for (name, value) in e.error_response().headers() {
                if !response.headers().contains_key(name) {
                    response.headers_mut().insert(name.clone(), value.clone());
                }
            }
            response
        }
    };
    let status = response.status();
    let headers = response.headers().clone();
    let body =
        actix_web::body::to_bytes(response.into_body()).await.map_err(|_| ApiError::internal("response body"))?;
    let text = String::from_utf8_lossy(&body).into_owned();
    let (scope_owned, key_owned) = (scope.to_owned(), key);
    if status.is_server_error() {
        let _ = state.run(move |conn| back_office::release_key(conn, &scope_owned, &key_owned)).await;
    } else {
        // Kiosk answers carry names, birth dates, the mobile and family members' national
        // codes: kept 48 hours, so sealed like every personal value at rest.
        let stored = state.pii.seal(persistence::PiiKind::Secret, &text);
        let code = i32::from(status.as_u16());
        state.run(move |conn| back_office::finish_key(conn, &scope_owned, &key_owned, code, &stored)).await?;
    }
    let mut out = HttpResponse::build(status);
    for (name, value) in &headers {
        out.insert_header((name.clone(), value.clone()));
    }
    if status == actix_web::http::StatusCode::CREATED
        && !headers.contains_key(header::LOCATION)
        && let Some(l) = location(&text)
    {
        out.insert_header((header::LOCATION, l));
    }
    Ok(out.body(text))
}

/// A stored answer, opened. Answers stored before they were sealed (at most 48 hours old
/// when this shipped) are JSON as they are.
fn opened(state: &AppState, stored: String) -> Result<String, ApiError> {
    if stored.starts_with('{') || stored.starts_with('[') {
        return Ok(stored);
    }
    Ok(state.pii.open(persistence::PiiKind::Secret, &stored)?)
}

fn replay(status: i32, body: &str) -> HttpResponse {
    let code = actix_web::http::StatusCode::from_u16(u16::try_from(status).unwrap_or(500))
        .unwrap_or(actix_web::http::StatusCode::OK);
    let content_type =
        if code.is_client_error() || code.is_server_error() { crate::error::PROBLEM_JSON } else { "application/json" };
    HttpResponse::build(code)
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header(("Idempotent-Replayed", "true"))
        .body(body.to_owned())
}
