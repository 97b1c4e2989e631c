//! The sandbox bank (the embedded default's payment gateway): an HTML payment page like a
//! real Shaparak gateway's — merchant, amount, order id, remaining time — with a form
//! whose buttons are `success`, `cancel` and `failed_after_debit`; after the choice it
//! sends the browser back to the merchant's callback with an auto-submitting form, as
//! real banks do. Its API (register, verify, reverse) is documented for integrators; the
//! payment journey calls the same bank in process (`adapters::payments::sandbox`). All of
//! it answers 404 unless the `sandbox` gateway is enabled. It posts back only to this
//! server's own callback path and shows only the configured merchant name.

use actix_web::{HttpResponse, get, post, web};
use std::sync::Arc;

use adapters::payments::sandbox::{
    BankError, BankOutcome, SandboxBank, SandboxPaymentRequest, SandboxPaymentToken, SandboxTokenRequest,
    SandboxVerifyResponse,
};
use persistence::payments::SandboxBankRow;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::error::{ApiCode, ApiError};
use crate::html::{escape, nonce, page};
use crate::routes::problems::PublicWrite;
use crate::state::AppState;

/// The sandbox bank, or 404 when the `sandbox` gateway is not enabled.
fn bank(state: &AppState) -> Result<Arc<SandboxBank>, ApiError> {
    state.sandboxes.bank_desk.clone().ok_or(ApiError::NotFound(ApiCode::RouteNotFound))
}

/// Registers a payment with the sandbox bank (server to server; this server's own payments reach it in process).
#[utoipa::path(operation_id = "payments_sandbox_bank_register", tag = "payments", request_body = SandboxPaymentRequest,
    responses((status = 201, description = "Payment registered; send the customer to `pay_url`", body = SandboxPaymentToken), PublicWrite,
        (status = 404, description = "The sandbox gateway is disabled", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/sandbox/bank/api/payments")]
pub async fn register(
    state: web::Data<AppState>,
    body: crate::extract::Json<SandboxPaymentRequest>,
) -> Result<HttpResponse, ApiError> {
    let bank = bank(&state)?;
    let body = body.into_inner();
    // Whatever callback and merchant it is given, the sandbox bank posts back only to this
    // server's own callback and shows the configured merchant: it cannot be used to put a
    // bank-looking page on this address that sends a browser (and its form) elsewhere.
    // Ignored, but held to the documented bounds like any input.
    if body.callback_url.as_deref().is_some_and(|u| u.chars().count() > 2000) {
        return Err(ApiError::field("callback_url", ApiCode::Length));
    }
    if body.merchant.as_deref().is_some_and(|m| m.chars().count() > 100) {
        return Err(ApiError::field("merchant", ApiCode::Length));
    }
    let token: SandboxPaymentToken = bank.register(body.order_id, body.amount).await?;
    Ok(HttpResponse::Created().insert_header(("Location", token.pay_url.clone())).json(token))
}

/// The bank's refusals as the API answers them: a field out of bounds 422, a played outage
/// 503, its table unreachable as any database failure.
impl From<BankError> for ApiError {
    fn from(e: BankError) -> Self {
        match e {
            BankError::OutOfBounds(field) => ApiError::field(field, ApiCode::Range),
            BankError::Outage(what) => ApiError::Unavailable(what.into()),
            BankError::Database(e) => e.into(),
        }
    }
}

fn known<T>(found: Option<T>) -> Result<T, ApiError> {
    found.ok_or(ApiError::NotFound(ApiCode::NotFound))
}

const STYLE: &str = "body{font-family:Vazirmatn,Tahoma,sans-serif;background:#f3f5f8;margin:0;padding:2rem}main{max-width:28rem;margin:auto;background:#fff;border-radius:8px;padding:1.5rem;box-shadow:0 1px 4px #0002}dt{color:#555}dd{margin:0 0 .8rem;font-weight:bold}button{font:inherit;padding:.6rem 1rem;margin:.3rem;border-radius:6px;border:1px solid #888;cursor:pointer}.ok{background:#0a7d3b;color:#fff}.no{background:#eee}.bad{background:#b3261e;color:#fff}";

/// The bank's payment page.
#[utoipa::path(operation_id = "payments_sandbox_bank_pay_page", tag = "payments", params(("token" = String, Path, description = "The sandbox bank's payment token", example = "Zq3xV8")),
    responses((status = 200, description = "The payment page", content_type = "text/html", body = String),
        (status = 404, description = "Unknown token or sandbox disabled", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/sandbox/bank/pay/{token}")]
pub async fn pay_page(state: web::Data<AppState>, token: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let row: SandboxBankRow = known(bank(&state)?.find(&token).await?)?;
    let remaining = (row.expires_at.and_utc() - state.now()).num_seconds().max(0);
    let n = nonce();
    let amount = domain::text::persian_digits(&domain::Rials::new(row.amount).unwrap_or(domain::Rials::ZERO).grouped());
    let body = format!(
        r#"<!doctype html><html lang="fa" dir="rtl"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>درگاه پرداخت آزمایشی</title><style>{STYLE}</style></head><body><main>
<h1>درگاه پرداخت آزمایشی (Sandbox)</h1>
<dl><dt>نام پذیرنده</dt><dd id="merchant">{merchant}</dd><dt>مبلغ تراکنش (ریال)</dt><dd id="amount">{amount}</dd><dt>شماره سفارش</dt><dd id="order" dir="ltr">{order}</dd><dt>زمان باقی مانده</dt><dd id="remaining" data-seconds="{remaining}">{mm:02}:{ss:02}</dd></dl>
<form method="post" action="/sandbox/bank/pay/{token}">
<button class="ok" type="submit" name="outcome" value="success">پرداخت موفق</button>
<button class="no" type="submit" name="outcome" value="cancel">انصراف</button>
<button class="bad" type="submit" name="outcome" value="failed_after_debit">کسر وجه بدون تایید</button>
</form></main>
<script nonce="{n}">(function(){{var e=document.getElementById('remaining'),s=+e.dataset.seconds;setInterval(function(){{if(s>0)s--;e.textContent=String(Math.floor(s/60)).padStart(2,'0')+':'+String(s%60).padStart(2,'0')}},1000)}})();</script>
</body></html>"#,
        merchant = escape(&row.merchant),
        order = row.order_id,
        mm = remaining / 60,
        ss = remaining % 60,
        token = escape(&row.token),
    );
    Ok(page(body, &n, "'self'"))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayForm {
    pub outcome: BankOutcome,
}

/// The customer's choice; the browser is then sent back to the merchant's callback.
#[utoipa::path(operation_id = "payments_sandbox_bank_pay_submit", tag = "payments", params(("token" = String, Path, description = "The sandbox bank's payment token", example = "Zq3xV8")),
    request_body(content = PayForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "An auto-submitting form back to the merchant's callback", content_type = "text/html", body = String),
        (status = 404, description = "Unknown token or sandbox disabled", body = crate::error::Problem, content_type = "application/problem+json"),
        PublicWrite))]
#[post("/sandbox/bank/pay/{token}")]
pub async fn pay_submit(
    state: web::Data<AppState>,
    token: web::Path<String>,
    form: web::Form<PayForm>,
) -> Result<HttpResponse, ApiError> {
    let (row, status) = known(bank(&state)?.choose(&token, form.into_inner().outcome).await?)?;
    let n = nonce();
    let body = format!(
        r#"<!doctype html><html lang="fa" dir="rtl"><head><meta charset="utf-8"><title>بازگشت به سایت پذیرنده</title><style>{STYLE}</style></head><body><main>
<p>در حال بازگشت به سایت پذیرنده…</p>
<form id="back" method="post" action="{callback}">
<input type="hidden" name="token" value="{token}"><input type="hidden" name="order_id" value="{order}"><input type="hidden" name="status" value="{status}">
<button class="ok" type="submit">بازگشت به سایت پذیرنده</button></form></main>
<script nonce="{n}">document.getElementById('back').submit();</script></body></html>"#,
        callback = escape(&row.callback_url),
        token = escape(&row.token),
        order = row.order_id,
    );
    let origin = origin_of(&row.callback_url);
    Ok(page(body, &n, &origin))
}

/// The callback's origin for `form-action` (always this server's own callback).
fn origin_of(url: &str) -> String {
    reqwest::Url::parse(url).map(|u| u.origin().ascii_serialization()).unwrap_or_else(|_| "'none'".into())
}

/// Server-to-server verification (what a merchant's client calls; never the browser).
#[utoipa::path(operation_id = "payments_sandbox_bank_verify", tag = "payments", request_body = SandboxTokenRequest,
    responses((status = 200, description = "The bank's verdict", body = SandboxVerifyResponse), PublicWrite,
        (status = 404, description = "Unknown token or sandbox disabled", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/sandbox/bank/api/verify")]
pub async fn verify(
    state: web::Data<AppState>,
    body: crate::extract::Json<SandboxTokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let verdict: SandboxVerifyResponse = known(bank(&state)?.verdict(&body.into_inner().token).await?)?;
    Ok(HttpResponse::Ok().json(verdict))
}

/// Gives the money back.
#[utoipa::path(operation_id = "payments_sandbox_bank_reverse", tag = "payments", request_body = SandboxTokenRequest,
    responses((status = 204, description = "Reversed"), PublicWrite,
        (status = 404, description = "Unknown token or sandbox disabled", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/sandbox/bank/api/reverse")]
pub async fn reverse(
    state: web::Data<AppState>,
    body: crate::extract::Json<SandboxTokenRequest>,
) -> Result<HttpResponse, ApiError> {
    known(bank(&state)?.give_back(&body.into_inner().token).await?.then_some(()))?;
    Ok(HttpResponse::NoContent().finish())
}
