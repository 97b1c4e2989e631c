//! Payments over HTTP: start a payment, the bank callbacks, the result page.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::CitizenPrincipal;
use crate::error::ApiError;
use crate::html::{escape, nonce, page};
use crate::journey::payment::{self, Outcome};
use crate::journey::{Target, actor};
use crate::routes::problems::{CitizenRead, CitizenWrite, PublicRead, PublicWrite};
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    /// `sandbox` (embedded default), `sadad` (Bank Melli) or `parsian`.
    #[schema(example = "sandbox")]
    pub gateway: String,
}

#[derive(Serialize, ToSchema)]
pub struct PaymentView {
    #[schema(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub payment_id: String,
    #[schema(example = "sandbox")]
    pub gateway: String,
    #[schema(example = 179_532_096_001_234_i64)]
    pub order_id: i64,
    /// Rials.
    #[schema(example = 200000)]
    pub amount: i64,
    /// `created`, `redirected`, `callback_received`, `verified`, `failed`, `expired`,
    /// `unknown`, `refund_pending` (money to give back), `refunded` (the bank confirmed
    /// the reversal) or `refund_failed` (it did not, after every retry: an administrator acts).
    #[schema(example = "redirected")]
    pub status: String,
    /// Send the citizen's browser here.
    pub redirect_url: Option<String>,
    /// The bank's reference once verified.
    pub reference: Option<String>,
    /// Pay before this (the seat is held until then).
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl From<&persistence::payments::PaymentRow> for PaymentView {
    fn from(p: &persistence::payments::PaymentRow) -> Self {
        Self {
            payment_id: p.id.clone(),
            gateway: p.gateway.clone(),
            order_id: p.order_id,
            amount: p.amount,
            status: p.status.clone(),
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
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Optional: a retry with the same key returns the first answer instead of starting a second payment")),
    responses((status = 201, description = "Send the browser to `redirect_url`", body = PaymentView), CitizenWrite))]
#[post("/api/v1/citizen/application/payments")]
pub async fn start(
    req: HttpRequest,
    state: web::Data<AppState>,
    citizen: CitizenPrincipal,
    body: crate::extract::Json<PaymentRequest>,
) -> Result<HttpResponse, ApiError> {
    let key = crate::idempotency::key_of(req.headers(), false)?;
    let scope = format!("citizen:{}", citizen.citizen_id);
    let gateway = body.into_inner().gateway;
    crate::idempotency::once(&req, &state, &scope, key, gateway.as_bytes(), || async {
        let actor = actor(&req, "citizen", &citizen.citizen_id);
        let p = payment::start(&state, Target::Citizen(citizen.citizen_id.clone()), &gateway, actor).await?;
        Ok(HttpResponse::Created()
            .insert_header(("Location", "/api/v1/citizen/application/payments"))
            .json(PaymentView::from(&p)))
    })
    .await
}

/// The application's payments, newest first.
#[utoipa::path(operation_id = "citizen_list_payments", tag = "citizen", security(("citizen" = [])),
    responses((status = 200, description = "Payments", body = Vec<PaymentView>), CitizenRead))]
#[get("/api/v1/citizen/application/payments")]
pub async fn list(state: web::Data<AppState>, citizen: CitizenPrincipal) -> Result<HttpResponse, ApiError> {
    let id = citizen.citizen_id;
    let rows = state
        .run_api(move |conn| {
            let app = persistence::applications::current_for_citizen(conn, &id)?
                .ok_or(ApiError::Domain(domain::DomainError::ApplicationNotFound))?;
            Ok(persistence::payments::for_application(conn, &app.id)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(rows.iter().map(PaymentView::from).collect::<Vec<_>>()))
}

/// A payment gateway citizens may choose.
#[derive(Serialize, ToSchema)]
pub struct GatewayInfo {
    /// What `POST /api/v1/citizen/application/payments` takes as `gateway`.
    #[schema(example = "sadad")]
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
            let (fa, en) = crate::adapters::payments::display_names(id);
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
    let (outcome, p) = payment::callback(state, gateway, fields).await;
    let tracking = match (&p, outcome) {
        (Some(p), Outcome::Success) => {
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
#[utoipa::path(operation_id = "payments_bank_callback_get", tag = "payments", params(("gateway" = String, Path, description = "`sandbox`, `sadad` or `parsian`")),
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
#[utoipa::path(operation_id = "payments_bank_callback_post", tag = "payments", params(("gateway" = String, Path, description = "`sandbox`, `sadad` or `parsian`")),
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
    /// `success`, `failed`, `cancelled`, `refund_pending`, `pending`, `received` or `invalid`.
    pub outcome: String,
    pub tracking_code: Option<String>,
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
