//! The per-request middleware: request ids, the caller's language, the draining refusal,
//! the per-address rate limit ([`crate::limits`]), a tracing span, problem+json rendering
//! in the caller's language, security headers, metrics and the access log.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use domain::Lang;
use tracing::Instrument;

use crate::error::{ApiCode, ApiError, PROBLEM_JSON, ProblemSource, problem_response};

/// The request's id, in request extensions (and the `X-Request-Id` response header).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The caller's language, from `Accept-Language`; also an extractor.
#[derive(Debug, Clone, Copy)]
pub struct RequestLang(pub Lang);

impl actix_web::FromRequest for RequestLang {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, actix_web::Error>>;
    fn from_request(req: &actix_web::HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let lang = req.extensions().get::<RequestLang>().map_or(Lang::Fa, |l| l.0);
        std::future::ready(Ok(RequestLang(lang)))
    }
}

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

fn incoming_request_id(req: &ServiceRequest) -> Option<String> {
    let v = req.headers().get(&X_REQUEST_ID)?.to_str().ok()?;
    (!v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| v.to_owned())
}

/// Wraps every request: id, language, span, metrics, access log, problem rendering,
/// security headers.
pub async fn request_middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = incoming_request_id(&req).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let lang = crate::error::lang_from_header(req.headers().get(header::ACCEPT_LANGUAGE));
    req.extensions_mut().insert(RequestId(request_id.clone()));
    req.extensions_mut().insert(RequestLang(lang));
    let app_state = req.app_data::<web::Data<crate::state::AppState>>().cloned();
    let metrics = app_state.as_ref().map(|s| s.metrics.clone());
    let method = req.method().to_string();
    let path = req.path().to_owned();
    let client = match &app_state {
        Some(s) => crate::client_addr::resolve(req.peer_addr().map(|a| a.ip()), req.headers(), &s.trusted_proxies),
        None => req.peer_addr().map(|a| a.ip()),
    };
    if let Some(ip) = client {
        req.extensions_mut().insert(crate::client_addr::ClientAddr(ip));
    }
    let client_text = client.map(|ip| ip.to_string()).unwrap_or_default();
    let span = tracing::info_span!("request", request_id = %request_id, method = %method, path = %crate::logging::mask_text(&path), client = %client_text);

    let limited = match (&app_state, client) {
        // Shutting down: a safe request (GET, HEAD) is refused unprocessed, so the proxy
        // sends it to another instance and counts this one failed (`proxy_next_upstream
        // http_503`, `max_fails`), which stops new connections to it well before it
        // closes its listener (README, "Rolling restarts"). Requests that change
        // something are still served.
        (Some(s), _) if s.is_draining() && draining_refuses(req.method(), &path) => {
            Some(crate::error::ApiError::Unavailable("draining: shutting down".into()))
        }
        (Some(s), Some(ip)) => {
            crate::limits::per_client_address(&s.limiter, s.config.limits.per_ip_per_minute, ip, &path).await
        }
        _ => None,
    };
    // A NUL character (`%00`) in the path names nothing (404); in a query parameter it is
    // that parameter's error — except for a bank's callback, which always ends on the
    // result page (`journey::payment::callback` refuses it there).
    let limited = limited.or_else(|| {
        if req.uri().path().contains("%00") {
            Some(ApiError::NotFound(ApiCode::NotFound))
        } else if path.starts_with("/api/v1/payments/") && path.ends_with("/callback") {
            None
        } else {
            crate::extract::nul_in_query(req.query_string())
        }
    });
    let result = match limited {
        Some(error) => Ok(req.into_response(actix_web::ResponseError::error_response(&error)).map_into_boxed_body()),
        None => crate::state::CATALOG_SEEN
            .scope(std::cell::Cell::new(None), next.call(req).instrument(span.clone()))
            .await
            .map(ServiceResponse::map_into_boxed_body),
    };
    let mut res = match result {
        Ok(res) => res,
        Err(err) => {
            // An error that escaped the handlers' own conversion.
            span.in_scope(|| tracing::error!(cause = %err, "request failed outside its handler"));
            return Err(err);
        }
    };

    render_problem(&mut res, lang, &request_id, &path, &span);

    let headers = res.headers_mut();
    headers.insert(
        X_REQUEST_ID.clone(),
        HeaderValue::from_str(&request_id).unwrap_or(HeaderValue::from_static("invalid")),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if path.starts_with("/api/") && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if path == "/docs" || path.starts_with("/docs/") {
        // Staff paste admin tokens here: no framing, no foreign scripts, nothing sent
        // anywhere but this server. Swagger UI needs its own scripts, inline styles and
        // data: images (icons), and talks only to this origin.
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(DOCS_CSP));
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }

    if app_state.as_ref().is_some_and(|s| s.is_draining()) {
        // Shutting down: the proxy must not send another request on this connection.
        res.response_mut().head_mut().set_connection_type(actix_web::http::ConnectionType::Close);
    }

    let status = res.status().as_u16();
    let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".into());
    let elapsed = started.elapsed();
    if let Some(m) = metrics {
        m.requests.with_label_values(&[&route, &method, &status.to_string()]).inc();
        m.latency.with_label_values(&[&route, &method]).observe(elapsed.as_secs_f64());
    }
    span.in_scope(|| {
        tracing::info!(status, route = %route, latency_us = elapsed.as_micros() as u64, "request");
    });
    Ok(res)
}

/// Whether a draining instance refuses this request: safe methods, except liveness and
/// metrics (the process is still alive and still counts).
fn draining_refuses(method: &actix_web::http::Method, path: &str) -> bool {
    use actix_web::http::Method;
    (method == Method::GET || method == Method::HEAD) && path != "/health/live" && path != "/metrics"
}

/// The Content-Security-Policy of Swagger UI at `/docs/`.
pub const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Turns every error response into problem+json in the caller's language, with the
/// request id and the path.
fn render_problem(res: &mut ServiceResponse<BoxBody>, lang: Lang, request_id: &str, path: &str, span: &tracing::Span) {
    let status = res.status();
    if !status.is_client_error() && !status.is_server_error() {
        return;
    }
    if res.response().extensions().get::<crate::error::KeepBody>().is_some() {
        return;
    }
    let source = res.response().extensions().get::<ProblemSource>().cloned();
    let error = match source {
        Some(ProblemSource(e)) => e,
        None => {
            let already_problem = res
                .headers()
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
            if already_problem {
                return;
            }
            std::sync::Arc::new(match status.as_u16() {
                400 => ApiError::BadRequest { code: ApiCode::MalformedBody, detail: String::new() },
                401 => ApiError::Unauthorized(ApiCode::TokenInvalid),
                403 => ApiError::Forbidden(ApiCode::Forbidden),
                404 => ApiError::NotFound(ApiCode::RouteNotFound),
                405 => ApiError::MethodNotAllowed(vec![]),
                413 => ApiError::PayloadTooLarge,
                415 => ApiError::UnsupportedMediaType,
                406 => ApiError::NotAcceptable,
                429 => ApiError::TooManyRequests { code: ApiCode::RateLimited, retry_after: 1 },
                503 => ApiError::Unavailable(String::new()),
                _ if status.is_server_error() => ApiError::Internal(String::new()),
                _ => ApiError::BadRequest { code: ApiCode::MalformedBody, detail: String::new() },
            })
        }
    };
    if status.is_server_error() {
        // The cause (masked like every line) is in the log, never in the answer.
        span.in_scope(
            || tracing::error!(status = status.as_u16(), code = error.code(), cause = %error, "request failed"),
        );
    }
    let mut problem = error.problem(lang);
    problem.status = status.as_u16();
    problem.request_id = Some(request_id.to_owned());
    problem.instance = Some(path.to_owned());
    let allow = match &*error {
        ApiError::MethodNotAllowed(m) if !m.is_empty() => Some(m.clone()),
        _ => None,
    };
    let mut rebuilt = problem_response(status, &problem, allow.as_deref());
    // Keep headers the handler set on purpose (e.g. WWW-Authenticate), replacing the body's.
    for (name, value) in res.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH && !rebuilt.headers().contains_key(name) {
            rebuilt.headers_mut().insert(name.clone(), value.clone());
        }
    }
    let req = res.request().clone();
    *res = ServiceResponse::new(req, rebuilt);
}
