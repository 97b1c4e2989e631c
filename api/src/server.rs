//! The HTTP application: routes (registered with their OpenAPI descriptions), error
//! handling for actix's own failures, Swagger UI, and the server itself.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError, UrlencodedError};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use regex::Regex;
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::contract::SecuritySchemes;
use crate::error::{ApiCode, ApiError, Problem, ProblemField};
use crate::routes;
use crate::state::AppState;

/// The contract's frame: info, tags, security schemes and shared schemas. Paths are
/// collected from the handlers as they are registered.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "National Smart ID Card Registration API",
        version = "1.0.0",
        description = "Pre-registration for the smart national ID card (CRS) and self-registration for the national e-folder.\n\nErrors are RFC 9457 `application/problem+json` documents with a stable `code`; messages are Persian unless `Accept-Language` prefers English. Dates are ISO-8601 (Gregorian) with Jalali forms where a citizen reads or types a date; amounts are integer rials.",
        license(name = "MIT OR Apache-2.0")
    ),
    components(schemas(Problem, ProblemField)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "citizen", description = "The citizen's journey: entry, application, booking, payment, receipt"),
        (name = "offices", description = "Enrollment offices and free capacity"),
        (name = "payments", description = "Bank callbacks and the sandbox bank"),
        (name = "public", description = "Status, tracking-code recovery and information, no login"),
        (name = "kiosk", description = "Partner kiosks posting registrations for citizens"),
        (name = "office", description = "Enrollment office operators"),
        (name = "production", description = "The card production line"),
        (name = "admin", description = "Administration"),
        (name = "staff", description = "Staff sign-in"),
        (name = "machine", description = "Machine-client tokens"),
        (name = "efolder", description = "The national e-folder account"),
        (name = "ussd", description = "The *4*6090# USSD service"),
        (name = "operations", description = "Health, metrics, contract"),
    )
)]
pub struct ApiDoc;

/// Registers every route on a utoipa-aware app.
fn register<T>(app: utoipa_actix_web::UtoipaApp<T>) -> utoipa_actix_web::UtoipaApp<T>
where
    T: actix_web::dev::ServiceFactory<
            actix_web::dev::ServiceRequest,
            Config = (),
            Error = actix_web::Error,
            InitError = (),
        >,
{
    app.service(routes::citizen::captcha)
        .service(routes::citizen::create_session)
        .service(routes::citizen::end_citizen_session)
        .service(routes::citizen::get_application)
        .service(routes::citizen::hijri_options)
        .service(routes::citizen::put_personal_info)
        .service(routes::citizen::put_special_needs)
        .service(routes::citizen::put_home_visit)
        .service(routes::citizen::request_reissue)
        .service(routes::citizen::put_family)
        .service(routes::citizen::put_mobile)
        .service(routes::citizen::put_appointment)
        .service(routes::citizen::put_delivery_office)
        .service(routes::withdrawal::withdraw)
        .service(routes::receipt::get_receipt)
        .service(routes::receipt::get_receipt_html)
        .service(routes::receipt::get_receipt_pdf)
        .service(routes::receipt::get_enrollment_receipt)
        .service(routes::receipt::email_receipt)
        .service(routes::receipt::verify_receipt)
        .service(routes::receipt::font)
        .service(routes::payments::start)
        .service(routes::payments::list)
        .service(routes::payments::gateways)
        .service(routes::payments::callback_get)
        .service(routes::payments::callback_post)
        .service(routes::payments::result_page)
        .service(routes::sandbox_bank::register)
        .service(routes::sandbox_bank::pay_page)
        .service(routes::sandbox_bank::pay_submit)
        .service(routes::sandbox_bank::verify)
        .service(routes::sandbox_bank::reverse)
        .service(routes::offices::availability)
        .service(routes::public::status)
        .service(routes::public::recover_tracking_code)
        .service(routes::public::process_info)
        .service(routes::public::registration_conditions)
        .service(routes::public::regions)
        .service(routes::ussd::ussd_menu)
        .service(routes::efolder::register)
        .service(routes::efolder::sign_in)
        .service(routes::efolder::end_efolder_session)
        .service(routes::efolder::change_password)
        .service(routes::efolder::me)
        .service(routes::efolder::request_reset)
        .service(routes::efolder::confirm_reset)
        .service(routes::efolder::recover_credentials)
        .service(routes::staff::sign_in)
        .service(routes::staff::end_staff_session)
        .service(routes::machine::token)
        .service(routes::kiosk::create)
        .service(routes::kiosk::get)
        .service(routes::kiosk::hijri_options)
        .service(routes::machine::production_event)
        .service(routes::machine::production_queue)
        .service(routes::receipt::get_appointment_ics)
        .service(routes::office::appointments)
        .service(routes::office::find_application)
        .service(routes::office::application)
        .service(routes::office::check_in)
        .service(routes::office::completion)
        .service(routes::office::no_show)
        .service(routes::office::delivery)
        .service(routes::office::enrollment_receipt)
        .service(routes::office::home_visits)
        .service(routes::office::schedule_home_visit)
        .service(routes::admin::list_staff)
        .service(routes::admin::create_staff)
        .service(routes::admin::disable_staff)
        .service(routes::admin::enable_staff)
        .service(routes::admin::reset_staff_password)
        .service(routes::admin::list_clients)
        .service(routes::admin::create_client)
        .service(routes::admin::rotate_client)
        .service(routes::admin::disable_client)
        .service(routes::admin::fees)
        .service(routes::admin::add_fee)
        .service(routes::admin::stats)
        .service(routes::admin::audit_log)
        .service(routes::admin::list_payments)
        .service(routes::admin::run_job)
        .service(routes::withdrawal::list_refunds)
        .service(routes::withdrawal::settle_refund)
        .service(routes::admin_offices::list_offices)
        .service(routes::admin_offices::create_office)
        .service(routes::admin_offices::import_offices)
        .service(routes::admin_offices::import_legacy)
        .service(routes::admin_offices::get_office)
        .service(routes::admin_offices::update_office)
        .service(routes::admin_offices::deactivate_office)
        .service(routes::admin_offices::activate_office)
        .service(routes::admin_offices::get_capacity)
        .service(routes::admin_offices::put_capacity)
        .service(routes::admin_offices::post_override)
        .service(routes::admin_offices::list_closures)
        .service(routes::admin_offices::post_closure)
        .service(routes::admin_offices::delete_closure)
        .service(routes::admin_offices::list_holidays)
        .service(routes::admin_offices::post_holiday)
        .service(routes::outbox::list_outbox)
        .service(routes::outbox::list_sandbox_sms)
        .service(routes::outbox::list_sandbox_emails)
        .service(routes::ops::live)
        .service(routes::ops::ready)
        .service(routes::ops::metrics)
        .service(routes::ops::jwks)
        .service(routes::ops::openapi_json)
}

/// The OpenAPI document (as committed; a running server lists its `public_url` first in `servers`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut api) = register(App::new().into_utoipa_app().openapi(ApiDoc::openapi())).split_for_parts();
    crate::contract::finish(&mut api);
    crate::input_rules::apply(&mut api);
    api
}

/// The document as YAML (`ncr openapi`, and the committed `openapi.yaml`).
pub fn openapi_yaml() -> String {
    crate::contract::to_yaml(&openapi())
}

/// Path templates with their methods, to tell 405 from 404.
pub struct RouteTable(Vec<(Regex, Vec<String>)>);

impl RouteTable {
    fn from_openapi(api: &utoipa::openapi::OpenApi) -> Self {
        let param = Regex::new(r"\{[^}]+\}").expect("regex");
        let routes = api
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let pattern = format!(
                    "^{}$",
                    param.replace_all(&regex::escape(path).replace(r"\{", "{").replace(r"\}", "}"), "[^/]+")
                );
                let mut methods: Vec<String> = [
                    (item.get.is_some(), "GET"),
                    (item.post.is_some(), "POST"),
                    (item.put.is_some(), "PUT"),
                    (item.delete.is_some(), "DELETE"),
                    (item.patch.is_some(), "PATCH"),
                ]
                .into_iter()
                .filter(|(has, _)| *has)
                .map(|(_, m)| m.to_owned())
                .collect();
                methods.sort();
                (Regex::new(&pattern).expect("path regex"), methods)
            })
            .collect();
        Self(routes)
    }

    fn methods_for(&self, path: &str) -> Option<Vec<String>> {
        self.0.iter().find(|(re, _)| re.is_match(path)).map(|(_, m)| m.clone())
    }
}

async fn fallback(req: HttpRequest, routes: web::Data<RouteTable>) -> Result<HttpResponse, ApiError> {
    Err(match routes.methods_for(req.path()) {
        Some(methods) if !methods.iter().any(|m| m == req.method().as_str()) => ApiError::MethodNotAllowed(methods),
        _ => ApiError::NotFound(ApiCode::RouteNotFound),
    })
}

fn json_error(err: JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    match err {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => ApiError::PayloadTooLarge,
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
        JsonPayloadError::Deserialize(e) if e.is_data() => crate::extract::field_error("", &e.to_string()),
        JsonPayloadError::Deserialize(e) => {
            ApiError::BadRequest { code: ApiCode::MalformedJson, detail: e.to_string() }
        }
        other => ApiError::BadRequest { code: ApiCode::MalformedJson, detail: other.to_string() },
    }
    .into()
}

/// A missing or unknown query parameter is 422 naming it; other unreadable queries 400.
fn query_error(err: QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    let text = match &err {
        QueryPayloadError::Deserialize(e) => e.to_string(),
        other => other.to_string(),
    };
    if text.starts_with("missing field") || text.starts_with("unknown field") {
        return crate::extract::field_error("", &text).into();
    }
    ApiError::BadRequest { code: ApiCode::MalformedQuery, detail: err.to_string() }.into()
}

fn path_error(err: PathError, _: &HttpRequest) -> actix_web::Error {
    ApiError::BadRequest { code: ApiCode::MalformedPath, detail: err.to_string() }.into()
}

fn form_error(err: UrlencodedError, _: &HttpRequest) -> actix_web::Error {
    match err {
        UrlencodedError::Overflow { .. } => ApiError::PayloadTooLarge,
        UrlencodedError::ContentType => ApiError::UnsupportedMediaType,
        other => ApiError::BadRequest { code: ApiCode::MalformedForm, detail: other.to_string() },
    }
    .into()
}

/// Builds the app for one worker.
pub fn app(
    state: web::Data<AppState>,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let limit = state.config.limits.body_bytes;
    let cors = state.config.cors.clone();
    let (app, mut api) = register(App::new().into_utoipa_app().openapi(ApiDoc::openapi())).split_for_parts();
    crate::contract::finish(&mut api);
    crate::input_rules::apply(&mut api);
    crate::contract::serve_at(&mut api, &state.config.public_url);
    let routes = web::Data::new(RouteTable::from_openapi(&api));
    let json = web::Data::new(routes::ops::OpenApiJson(crate::contract::to_json(&api)));
    app.app_data(state)
        .app_data(routes)
        .app_data(json)
        .app_data(web::JsonConfig::default().limit(limit).error_handler(json_error))
        .app_data(web::QueryConfig::default().error_handler(query_error))
        .app_data(web::PathConfig::default().error_handler(path_error))
        .app_data(web::FormConfig::default().limit(limit).error_handler(form_error))
        .app_data(web::PayloadConfig::default().limit(limit))
        .service(
            web::resource("/docs").route(
                web::get().to(|| async { HttpResponse::Found().insert_header(("Location", "/docs/")).finish() }),
            ),
        )
        .service(SwaggerUi::new("/docs/{_:.*}").config(utoipa_swagger_ui::Config::from("/api/v1/openapi.json")))
        .default_service(web::to(fallback))
        .wrap(from_fn(crate::middleware::request_middleware))
        .wrap(actix_web::middleware::Condition::new(!cors.allowed_origins.is_empty(), cors_middleware(&cors)))
}

/// The response headers a page on another origin may read.
pub const EXPOSED_HEADERS: [&str; 7] = [
    "X-Request-Id",
    "Retry-After",
    "Location",
    "Idempotent-Replayed",
    "Content-Disposition",
    "WWW-Authenticate",
    "ETag",
];

/// CORS for `cors.allowed_origins` (outermost, so rate-limit and other early answers
/// carry the headers too). A request from another origin is still served — a browser
/// just cannot read it — and same-origin pages (Swagger UI, the sandbox bank's form)
/// are unaffected.
fn cors_middleware(config: &crate::config::CorsConfig) -> actix_cors::Cors {
    use actix_web::http::header;
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "DELETE"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::ACCEPT_LANGUAGE,
            header::IF_NONE_MATCH,
            header::HeaderName::from_static("idempotency-key"),
            header::HeaderName::from_static("x-request-id"),
        ])
        .expose_headers(EXPOSED_HEADERS)
        .max_age(config.max_age_seconds)
        .block_on_origin_mismatch(false);
    for origin in &config.allowed_origins {
        cors = if origin == "*" { cors.allow_any_origin().send_wildcard() } else { cors.allowed_origin(origin) };
    }
    cors
}

/// How long an idle client connection is kept open. Longer than the proxy's upstream
/// keep-alive timeout (`deploy/nginx.conf`: 4 s), so the proxy always closes an idle
/// connection first and never sends a request on one this server is closing.
pub const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(75);

/// Starts the HTTP server on a bound listener (port 0 works for tests). Signals are left
/// to [`crate::shutdown`] (a drain before the stop).
pub fn serve(state: Arc<AppState>, listener: TcpListener) -> std::io::Result<Server> {
    let workers = match state.config.workers {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let grace = state.config.shutdown.grace_seconds;
    let data = web::Data::from(state);
    let server = HttpServer::new(move || app(data.clone()))
        .workers(workers)
        .backlog(4096)
        .max_connection_rate(2048)
        .keep_alive(KEEP_ALIVE)
        .shutdown_timeout(grace)
        .disable_signals()
        .listen(listener)?
        .run();
    Ok(server)
}

/// The `metrics.bind` server: `/metrics` and the health checks only, one worker.
pub fn serve_metrics(state: Arc<AppState>, listener: TcpListener) -> std::io::Result<Server> {
    let data = web::Data::from(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::Data::new(routes::ops::MetricsListener))
            .service(routes::ops::metrics)
            .service(routes::ops::live)
            .service(routes::ops::ready)
            .default_service(web::to(|| async { Err::<HttpResponse, _>(ApiError::NotFound(ApiCode::RouteNotFound)) }))
            .wrap(from_fn(crate::middleware::request_middleware))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}
