//! Payments over HTTP: start a payment, the bank callbacks, the result page.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{CitizenPrincipal, CitizenToken};
use crate::error::ApiError;
use crate::html::{escape, nonce, page};
use crate::journey::Target;
use crate::journey::payment::{self, Outcome};
use crate::page::{Order, PageRequest};
use crate::routes::problems::{CitizenRead, CitizenWrite, PublicRead, PublicWrite};
use crate::state::AppState;
use crate::wire;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    /// One of the deployment's enabled gateways (`payments.gateways`).
    #[schema(value_type = wire::Gateway, example = "sandbox")]
    pub gateway: String,
}

#[derive(Serialize, ToSchema)]
pub struct PaymentView {
    #[schema(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub payment_id: String,
    #[schema(value_type = wire::Gateway, example = "sandbox")]
    pub gateway: String,
    #[schema(example = 179_532_096_001_234_i64)]
    pub order_id: i64,
    /// Rials.
    #[schema(example = 200000)]
    pub amount: i64,
    /// `refund_pending`: money to give back; `refunded`: the bank confirmed the reversal;
    /// `refund_failed`: it did not, after every retry (an administrator acts).
    #[schema(value_type = wire::PaymentState, example = "redirected")]
    pub status: String,
    /// Send the citizen's browser here.
    #[schema(example = "http://127.0.0.1:8080/sandbox/bank/pay/Zq3xV8")]
    pub redirect_url: Option<String>,
    /// The bank's reference once verified.
    #[schema(example = "SBX-482913")]
    pub reference: Option<String>,
    /// Pay before this (the seat is held until then).
    #[schema(example = "2026-11-22T06:45:00Z")]
    pub expires_at: DateTime<Utc>,
    #[schema(example = "2026-11-22T06:30:00Z")]
    pub created_at: DateTime<Utc>,
}

impl From<&persistence::payments::PaymentRow> for PaymentView {
    fn from(p: &persistence::payments::PaymentRow) -> Self {
        Self {
            payment_id: p.id.to_string(),
            gateway: p.gateway.clone(),
            order_id: p.order_id,
            amount: p.amount,
            status: p.status.to_string(),
            redirect_url: p.redirect_url.clone(),
            reference: p.reference.clone(),
            expires_at: p.expires_at.and_utc(),
            created_at: p.created_at.and_utc(),
        }
    }
}

/// Starts paying the card fee: requires a held seat (or a home visit). The payment is
/// recorded before the bank is called; send the browser to `redirect_url`.
#[utoipa::path(operation_id = "citizen_start_payment", tag = "citizen", security(("citizen" = [])), request_body = PaymentRequest,
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", example = "pay-2026-11-22-0001", description = "Optional: a retry with the same key returns the first answer instead of starting a second payment")),
    responses((status = 201, description = "Send the browser to `redirect_url`", body = PaymentView), CitizenWrite))]
#[post("/api/v1/citizen/application/payments")]
pub async fn start(
    req: HttpRequest,
    state: web::Data<AppState>,
    citizen: CitizenToken,
    body: crate::extract::Json<PaymentRequest>,
) -> Result<HttpResponse, ApiError> {
    let key = crate::idempotency::key_of(req.headers(), false)?;
    let gateway = body.into_inner().gateway;
    let actor = citizen.actor(&req);
    let started = |target| async {
        let p = payment::start(&state, target, &gateway, actor).await?;
        Ok(HttpResponse::Created()
            .insert_header(("Location", "/api/v1/citizen/application/payments"))
            .json(PaymentView::from(&p)))
    };
    // Without a key the application's first read checks the session; with one, the
    // stored answer of an earlier try is read first, so the session is checked before.
    let Some(key) = key else { return started(Target::Session(citizen)).await };
    let citizen = citizen.check(&state).await?;
    let scope = format!("citizen:{}", citizen.citizen_id);
    let target = Target::Citizen(citizen.citizen_id);
    crate::idempotency::once(&req, &state, &scope, Some(key), gateway.as_bytes(), || started(target)).await
}

crate::page_type!(
    /// Payments, newest first.
    PaymentPage,
    PaymentView,
    "20261124T083000.000000_0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b"
);

/// `limit` and `cursor` of a page.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PaymentsQuery {
    /// 1–500, default 50.
    #[param(minimum = 1, maximum = 500, example = 50)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(example = "20261124T083000.000000_0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub cursor: Option<String>,
}

/// The application's payments, newest first.
#[utoipa::path(operation_id = "citizen_list_payments", tag = "citizen", security(("citizen" = [])), params(PaymentsQuery),
    responses((status = 200, description = "A page of payments", body = PaymentPage), CitizenRead,
        (status = 400, description = "An unreadable query (`malformed_query`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "`limit` out of range or an unknown parameter (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/api/v1/citizen/application/payments")]
pub async fn list(
    state: web::Data<AppState>,
    citizen: CitizenPrincipal,
    query: web::Query<PaymentsQuery>,
) -> Result<HttpResponse, ApiError> {
    let paging = PageRequest::new(query.limit, query.cursor.clone())?;
    let id = citizen.citizen_id;
    let rows = state
        .run_api(move |conn| {
            let app = persistence::applications::current_for_citizen(conn, &id)?
                .ok_or(ApiError::Domain(domain::DomainError::ApplicationNotFound))?;
            Ok(persistence::payments::for_application(conn, &app.id)?)
        })
        .await?;
    // One application's payments: a short list, paged in memory.
    let cursor_of =
        |p: &persistence::payments::PaymentRow| format!("{}_{}", p.created_at.format("%Y%m%dT%H%M%S%.6f"), p.id);
    let page = paging.page_in_memory(rows, Order::Descending, cursor_of).map(|p| PaymentView::from(&p));
    Ok(HttpResponse::Ok().json(PaymentPage::from(page)))
}

/// A payment gateway citizens may choose.
#[derive(Serialize, ToSchema)]
pub struct GatewayInfo {
    /// What `POST /api/v1/citizen/application/payments` takes as `gateway`.
    #[schema(value_type = wire::Gateway, example = "sadad")]
    pub id: String,
    #[schema(example = "بانک ملی ایران (سداد)")]
    pub name_fa: String,
    #[schema(example = "Bank Melli Iran (Sadad)")]
    pub name_en: String,
}

#[derive(Serialize, ToSchema)]
pub struct GatewayList {
    /// In the configured order (`payments.gateways`).
    pub gateways: Vec<GatewayInfo>,
}

/// The payment gateways this deployment accepts, for clients to offer.
#[utoipa::path(operation_id = "payments_list_gateways", tag = "payments",
    responses((status = 200, description = "The active gateways", body = GatewayList), PublicRead))]
#[get("/api/v1/payments/gateways")]
pub async fn gateways(state: web::Data<AppState>) -> HttpResponse {
    let gateways = state
        .config
        .payments
        .gateways
        .iter()
        .filter(|id| state.gateways.contains_key(id.as_str()))
        .map(|id| {
            let (fa, en) = adapters::payments::display_names(id);
            GatewayInfo { id: id.clone(), name_fa: fa.to_owned(), name_en: en.to_owned() }
        })
        .collect();
    HttpResponse::Ok().json(GatewayList { gateways })
}

fn result_location(
    state: &AppState,
    outcome: Outcome,
    p: Option<&persistence::payments::PaymentRow>,
    tracking: Option<String>,
) -> String {
    let base = if state.config.payments.result_url.is_empty() {
        format!("{}/payment/result", state.config.public_url.trim_end_matches('/'))
    } else {
        state.config.payments.result_url.clone()
    };
    let sep = if base.contains('?') { '&' } else { '?' };
    let mut url = format!("{base}{sep}outcome={}", outcome.as_str());
    if let Some(p) = p {
        url.push_str(&format!("&payment_id={}", p.id));
    }
    if let Some(t) = tracking {
        url.push_str(&format!("&tracking_code={t}"));
    }
    url
}

async fn handle_callback(state: &AppState, gateway: &str, fields: Vec<(String, String)>) -> HttpResponse {
    let (outcome, p, tracking) = payment::callback(state, gateway, fields).await;
    // The settling transaction returns the tracking code; a repeated callback of a payment
    // settled before reads it.
    let tracking = match (&p, outcome, tracking) {
        (Some(_), Outcome::Success, Some(t)) => Some(t),
        (Some(p), Outcome::Success, None) => {
            let id = p.application_id.clone();
            state
                .run(move |conn| persistence::applications::find(conn, &id))
                .await
                .ok()
                .flatten()
                .and_then(|a| a.tracking_code)
        }
        _ => None,
    };
    HttpResponse::SeeOther().insert_header(("Location", result_location(state, outcome, p.as_ref(), tracking))).finish()
}

/// The bank sends the browser back here (query string). Nothing in it is trusted: the
/// payment is verified server to server, then the browser is redirected (303) to the
/// result page with `outcome` = `success`, `failed`, `cancelled`, `refund_pending`,
/// `pending`, `received` (the database did not answer: the payment is confirmed later and
/// the citizen told by SMS) or `invalid`.
#[utoipa::path(operation_id = "payments_bank_callback_get", tag = "payments", params(("gateway" = String, Path, description = "The bank the callback comes from: a `Gateway` value; any other name ends on the failure page", example = "sandbox")),
    responses((status = 303, description = "Redirect to the result page"), PublicRead))]
#[get("/api/v1/payments/{gateway}/callback")]
pub async fn callback_get(
    state: web::Data<AppState>,
    gateway: web::Path<String>,
    query: web::Query<Vec<(String, String)>>,
) -> HttpResponse {
    handle_callback(&state, &gateway, query.into_inner()).await
}

/// The bank posts the browser back here (form fields). Handled like the GET callback.
#[utoipa::path(operation_id = "payments_bank_callback_post", tag = "payments", params(("gateway" = String, Path, description = "The bank the callback comes from: a `Gateway` value; any other name ends on the failure page", example = "sandbox")),
    request_body(content = Object, content_type = "application/x-www-form-urlencoded", description = "The bank's callback fields"),
    responses((status = 303, description = "Redirect to the result page"), PublicWrite))]
#[post("/api/v1/payments/{gateway}/callback")]
pub async fn callback_post(
    state: web::Data<AppState>,
    gateway: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    handle_callback(&state, &gateway, form.into_inner()).await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResultQuery {
    /// How the payment ended: `success`, `failed`, `cancelled`, `refund_pending`, `pending` or
    /// `received` (anything else shows the failure page).
    #[param(example = "success")]
    pub outcome: String,
    #[param(example = "4973201670")]
    pub tracking_code: Option<String>,
    #[param(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub payment_id: Option<String>,
}

/// A simple result page for the embedded default (deployments point `payments.result_url`
/// at their own portal).
#[utoipa::path(operation_id = "payments_result_page", tag = "payments", params(ResultQuery),
    responses((status = 200, description = "The payment result", content_type = "text/html", body = String), PublicRead))]
#[get("/payment/result")]
pub async fn result_page(query: web::Query<ResultQuery>) -> HttpResponse {
    let (title, text) = match query.outcome.as_str() {
        "success" => ("پرداخت موفق", "ثبت نام شما با موفقیت انجام شد."),
        "cancelled" => {
            ("پرداخت لغو شد", "پرداخت انجام نشد؛ نوبت شما آزاد شد. برای ادامه دوباره وارد شوید و نوبت بگیرید.")
        }
        "refund_pending" => (
            "پرداخت ناموفق",
            "پرداخت تایید نشد. اگر مبلغی از حساب شما کسر شده باشد، حداکثر تا ۷۲ ساعت به حساب شما بازگردانده می‌شود؛ در غیر این صورت از طریق بانک پیگیری کنید.",
        ),
        "pending" => {
            ("در حال بررسی", "نتیجه پرداخت هنوز از بانک دریافت نشده است؛ چند دقیقه بعد وضعیت درخواست را بررسی کنید.")
        }
        "received" => {
            ("پرداخت دریافت شد", "پرداخت شما دریافت شد و در حال تایید است؛ نتیجه با پیامک به شما اطلاع داده می‌شود.")
        }
        "invalid" => ("نامعتبر", "اطلاعات بازگشتی از بانک معتبر نبود."),
        _ => ("پرداخت ناموفق", "پرداخت انجام نشد؛ نوبت شما آزاد شد. برای ادامه دوباره وارد شوید و نوبت بگیرید."),
    };
    let tracking = query
        .tracking_code
        .as_deref()
        .map(|t| format!(r#"<p>کد رهگیری: <strong dir="ltr" id="tracking-code">{}</strong></p>"#, escape(t)))
        .unwrap_or_default();
    let n = nonce();
    let body = format!(
        r#"<!doctype html><html lang="fa" dir="rtl"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>{title}</title><style>body{{font-family:Vazirmatn,Tahoma,sans-serif;padding:2rem}}</style></head><body><main><h1 id="outcome" data-outcome="{outcome}">{title}</h1><p>{text}</p>{tracking}</main></body></html>"#,
        outcome = escape(&query.outcome),
    );
    page(body, &n, "'none'")
}
