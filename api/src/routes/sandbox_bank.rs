//! The sandbox bank (the embedded default's payment gateway): an HTML payment page like a
//! real Shaparak gateway's — merchant, amount, order id, remaining time — with a form
//! whose buttons are `success`, `cancel` and `failed_after_debit`; after the choice it
//! sends the browser back to the merchant's callback with an auto-submitting form, as
//! real banks do. Its API (request, verify, reverse) is what `SandboxBankGateway` calls.
//! All of it answers 404 unless the `sandbox` gateway is enabled. It posts back only to
//! this server's own callback path and shows only the configured merchant name.

use actix_web::{HttpResponse, get, post, web};
use adapters::payments::sandbox::{
    SandboxPaymentRequest, SandboxPaymentToken, SandboxStatus, SandboxTokenRequest, SandboxVerifyResponse,
};
use chrono::Duration;
use persistence::payments::{self, SandboxBankRow};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::error::{ApiCode, ApiError};
use crate::html::{escape, nonce, page};
use crate::routes::problems::PublicWrite;
use crate::state::AppState;

fn enabled(state: &AppState) -> Result<(), ApiError> {
    if state.config.payments.sandbox_enabled() { Ok(()) } else { Err(ApiError::NotFound(ApiCode::RouteNotFound)) }
}

fn random_token(state: &AppState) -> String {
    let mut b = [0u8; 16];
    state.random.fill_bytes(&mut b);
    hex::encode(b)
}

/// Registers a payment with the sandbox bank (called by the gateway client).
#[utoipa::path(operation_id = "payments_sandbox_bank_register", tag = "payments", request_body = SandboxPaymentRequest,
    responses((status = 201, description = "Payment registered; send the customer to `pay_url`", body = SandboxPaymentToken), PublicWrite,
        (status = 404, description = "The sandbox gateway is disabled", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/sandbox/bank/api/payments")]
pub async fn register(
    state: web::Data<AppState>,
    body: crate::extract::Json<SandboxPaymentRequest>,
) -> Result<HttpResponse, ApiError> {
    enabled(&state)?;
    let body = body.into_inner();
    if body.amount <= 0 || body.amount > 1_000_000_000_000 {
        return Err(ApiError::field("amount", ApiCode::Range));
    }
    if body.order_id <= 0 {
        return Err(ApiError::field("order_id", ApiCode::Range));
    }
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
    let callback = crate::journey::payment::callback_url(&state, "sandbox");
    let merchant = state.config.payments.merchant_name.trim();
    let now = state.now();
    let token = random_token(&state);
    let row = SandboxBankRow {
        token: token.clone(),
        order_id: body.order_id,
        amount: body.amount,
        merchant: merchant.to_owned(),
        callback_url: callback,
        outcome: None,
        reference: None,
        verified: false,
        reversed: false,
        created_at: now.naive_utc(),
        expires_at: (now + Duration::minutes(15)).naive_utc(),
    };
    state.run(move |conn| payments::sandbox_insert(conn, &row)).await?;
    let pay_url = format!("{}/sandbox/bank/pay/{token}", state.config.public_url.trim_end_matches('/'));
    Ok(HttpResponse::Created()
        .insert_header(("Location", pay_url.clone()))
        .json(SandboxPaymentToken { token, pay_url }))
}

async fn load(state: &AppState, token: String) -> Result<SandboxBankRow, ApiError> {
    state.run(move |conn| payments::sandbox_find(conn, &token)).await?.ok_or(ApiError::NotFound(ApiCode::NotFound))
}

const STYLE: &str = "body{font-family:Vazirmatn,Tahoma,sans-serif;background:#f3f5f8;margin:0;padding:2rem}main{max-width:28rem;margin:auto;background:#fff;border-radius:8px;padding:1.5rem;box-shadow:0 1px 4px #0002}dt{color:#555}dd{margin:0 0 .8rem;font-weight:bold}button{font:inherit;padding:.6rem 1rem;margin:.3rem;border-radius:6px;border:1px solid #888;cursor:pointer}.ok{background:#0a7d3b;color:#fff}.no{background:#eee}.bad{background:#b3261e;color:#fff}";

/// The bank's payment page.
#[utoipa::path(operation_id = "payments_sandbox_bank_pay_page", tag = "payments", params(("token" = String, Path, description = "The sandbox bank's payment token", example = "Zq3xV8")),
    responses((status = 200, description = "The payment page", content_type = "text/html", body = String),
        (status = 404, description = "Unknown token or sandbox disabled", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/sandbox/bank/pay/{token}")]
pub async fn pay_page(state: web::Data<AppState>, token: web::Path<String>) -> Result<HttpResponse, ApiError> {
    enabled(&state)?;
    let row = load(&state, token.into_inner()).await?;
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

/// The customer's choice on the sandbox bank page.
#[derive(Deserialize, ToSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BankOutcome {
    Success,
    Cancel,
    FailedAfterDebit,
}

impl BankOutcome {
    fn as_str(self) -> &'static str {
        match self {
            BankOutcome::Success => "success",
            BankOutcome::Cancel => "cancel",
            BankOutcome::FailedAfterDebit => "failed_after_debit",
        }
    }
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
    enabled(&state)?;
    let outcome = form.into_inner().outcome.as_str().to_owned();
    let (token, now) = (token.into_inner(), state.now());
    // The first choice on an open page is recorded in one statement; otherwise the row is
    // read to tell an expired page (and an unknown token) from a second choice, which is
    // ignored like a real bank page does.
    let reference = format!("{:012}", state.random.next_u64() % 1_000_000_000_000);
    let (t, o) = (token.clone(), outcome.clone());
    let decided =
        state.run(move |conn| payments::sandbox_decide_open(conn, &t, &o, &reference, now.naive_utc())).await?;
    let row = match decided {
        Some(row) => row,
        None => load(&state, token).await?,
    };
    let status = if now > row.expires_at.and_utc() {
        "EXPIRED"
    } else {
        match outcome.as_str() {
            "success" => "OK",
            "cancel" => "CANCELLED",
            _ => "FAILED",
        }
    };
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

/// The callback's origin for `form-action` (the URL was validated when registered).
fn origin_of(url: &str) -> String {
    reqwest::Url::parse(url).map(|u| u.origin().ascii_serialization()).unwrap_or_else(|_| "'none'".into())
}

/// Server-to-server verification (what the gateway client calls; never the browser).
#[utoipa::path(operation_id = "payments_sandbox_bank_verify", tag = "payments", request_body = SandboxTokenRequest,
    responses((status = 200, description = "The bank's verdict", body = SandboxVerifyResponse), PublicWrite,
        (status = 404, description = "Unknown token or sandbox disabled", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/sandbox/bank/api/verify")]
pub async fn verify(
    state: web::Data<AppState>,
    body: crate::extract::Json<SandboxTokenRequest>,
) -> Result<HttpResponse, ApiError> {
    enabled(&state)?;
    if state.sandboxes.bank.verify_unavailable() {
        return Err(ApiError::Unavailable("sandbox bank verify outage".into()));
    }
    let token = body.into_inner().token;
    // A paid one is marked verified as it is read; any other is only read.
    let t = token.clone();
    let row = match state.run(move |conn| payments::sandbox_verify_paid(conn, &t)).await? {
        Some(row) => row,
        None => load(&state, token).await?,
    };
    let status = match row.outcome.as_deref() {
        _ if row.reversed => SandboxStatus::Cancelled,
        Some("success") => SandboxStatus::Paid,
        Some("cancel") => SandboxStatus::Cancelled,
        Some(_) => SandboxStatus::DebitedNotSettled,
        None if state.now() > row.expires_at.and_utc() => SandboxStatus::Expired,
        None => SandboxStatus::Pending,
    };
    Ok(HttpResponse::Ok().json(SandboxVerifyResponse {
        status,
        order_id: row.order_id,
        amount: row.amount + state.sandboxes.bank.amount_delta(),
        reference: row.reference.filter(|_| status == SandboxStatus::Paid),
    }))
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
    enabled(&state)?;
    if state.sandboxes.bank.reverse_unavailable() {
        return Err(ApiError::Unavailable("sandbox bank reverse outage".into()));
    }
    let row = load(&state, body.into_inner().token).await?;
    state.run(move |conn| payments::sandbox_mark(conn, &row.token, None, Some(true))).await?;
    Ok(HttpResponse::NoContent().finish())
}
