//! Withdrawal over HTTP (issue 19 item 3): the citizen gives the application up before
//! enrollment; a paid fee is refunded — reversed through the gateway on the payment's day,
//! otherwise transferred to the citizen's Sheba number by an administrator, who lists the
//! refunds and records each transfer. The rules: docs/domain/payments.md, "Withdrawal and
//! refunds".

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use domain::iban::Iban;
use persistence::PiiKind;
use persistence::refunds::{RefundMethod, RefundRow, RefundStatus};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{AdminPrincipal, CitizenPrincipal};
use crate::error::{ApiCode, ApiError, FieldErrors};
use crate::journey::view::{ApplicationView, build_view_lang};
use crate::journey::{Target, actor, withdrawal};
use crate::middleware::RequestLang;
use crate::page::PageRequest;
use crate::routes::problems::{CitizenWrite, StaffRead, StaffWrite};
use crate::state::AppState;
use crate::wire;

// ---------------------------------------------------------------- the citizen

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalRequest {
    /// Why (1–200 characters); kept sealed with the application.
    #[schema(example = "دیگر به کارت نیاز ندارم")]
    pub reason: String,
    /// Required when the fee was paid: the Sheba number (`IR` and 24 digits) of the account
    /// the fee goes back to. Checked with its ISO 13616 check digits (422 `iban_invalid`).
    #[schema(example = "IR062960000000100324200001")]
    pub iban: Option<String>,
}

/// A withdrawn fee's refund as the citizen sees it.
#[derive(Serialize, ToSchema)]
pub struct CitizenRefund {
    #[schema(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5d")]
    pub refund_id: String,
    /// Rials.
    #[schema(example = 200000)]
    pub amount: i64,
    /// The Sheba number given, masked.
    #[schema(example = "IR********************0001")]
    pub iban: String,
    pub status: wire::RefundStatus,
    /// Once settled.
    #[schema(example = "reversal")]
    pub method: Option<wire::RefundMethod>,
    #[schema(example = "2026-11-22T06:30:00Z")]
    pub requested_at: DateTime<Utc>,
    #[schema(example = "2026-11-22T06:30:02Z")]
    pub settled_at: Option<DateTime<Utc>>,
}

impl From<&RefundRow> for CitizenRefund {
    fn from(r: &RefundRow) -> Self {
        Self {
            refund_id: r.id.to_string(),
            amount: r.amount,
            iban: r.iban_hint.clone(),
            status: status_of(r),
            method: method_of(r),
            requested_at: r.requested_at.and_utc(),
            settled_at: r.settled_at.map(|t| t.and_utc()),
        }
    }
}

fn status_of(r: &RefundRow) -> wire::RefundStatus {
    match r.status {
        RefundStatus::Reversing => wire::RefundStatus::Reversing,
        RefundStatus::Settled => wire::RefundStatus::Settled,
        RefundStatus::Requested => wire::RefundStatus::Requested,
    }
}

fn method_of(r: &RefundRow) -> Option<wire::RefundMethod> {
    match r.method.as_deref().and_then(RefundMethod::parse)? {
        RefundMethod::Reversal => Some(wire::RefundMethod::Reversal),
        RefundMethod::Transfer => Some(wire::RefundMethod::Transfer),
    }
}

#[derive(Serialize, ToSchema)]
pub struct WithdrawalResult {
    /// The application, now `cancelled`.
    pub application: ApplicationView,
    /// Present when the fee was paid.
    pub refund: Option<CitizenRefund>,
}

/// Withdraws the application before enrollment.
///
/// The seat (held, booked or offered) goes back and the application is `cancelled`
/// (`allowed_operations` lists `withdraw` while this is allowed). Unpaid: that is all. Paid:
/// `iban` is required (422 `iban_required`, `iban_invalid`); the fee is refunded — on the
/// payment's own day the bank gateway is asked to reverse it at once (`refund.status`
/// `settled`, `method` `reversal` when it did), otherwise it waits for a transfer to that
/// account (`requested`) which an administrator records. An SMS confirms each step. Refused
/// once enrollment started (409 `enrollment_started`), while a payment is at the bank (409
/// `payment_in_progress`) and twice (409 `application_cancelled`). With an
/// `Idempotency-Key`, a retry gets the first answer.
#[utoipa::path(operation_id = "citizen_withdraw_application", tag = "citizen", security(("citizen" = [])),
    request_body = WithdrawalRequest,
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", example = "withdraw-2026-11-22-0001", description = "Optional: a retry with the same key returns the first answer")),
    responses((status = 200, description = "Withdrawn", body = WithdrawalResult), CitizenWrite))]
#[post("/api/v1/citizen/application/withdrawal")]
pub async fn withdraw(
    req: HttpRequest,
    state: web::Data<AppState>,
    citizen: CitizenPrincipal,
    lang: RequestLang,
    body: crate::extract::Json<WithdrawalRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut e = FieldErrors::default();
    let reason = e.take("reason", domain::offices::text(&body.reason));
    let iban = match body.iban.as_deref() {
        Some(i) => e.take("iban", Iban::parse(i)).map(Some),
        None => Some(None),
    };
    e.finish()?;
    let (reason, iban) = (reason.expect("checked"), iban.expect("checked"));
    let key = crate::idempotency::key_of(req.headers(), false)?;
    let scope = format!("citizen:{}", citizen.citizen_id);
    let fingerprint =
        serde_json::json!({"op": "withdrawal", "reason": reason, "iban": iban.as_ref().map(Iban::as_str)});
    crate::idempotency::once(&req, &state, &scope, key, fingerprint.to_string().as_bytes(), || async {
        let actor = actor(&req, "citizen", &citizen.citizen_id);
        let done =
            withdrawal::withdraw(&state, Target::Citizen(citizen.citizen_id.clone()), reason, iban, actor).await?;
        Ok(HttpResponse::Ok().json(WithdrawalResult {
            application: build_view_lang(&state, done.application, lang.0).await?,
            refund: done.refund.as_ref().map(CitizenRefund::from),
        }))
    })
    .await
}

// ---------------------------------------------------------------- administrators

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RefundsQuery {
    /// Only refunds in this status; `requested` is the work list (transfers to make).
    #[param(value_type = Option<wire::RefundStatus>, example = "requested")]
    pub status: Option<String>,
    /// 1–500, default 50.
    #[param(minimum = 1, maximum = 500, example = 50)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5d")]
    pub cursor: Option<String>,
}

/// A refund as administrators see it: the full Sheba number, to make the transfer.
#[derive(Serialize, ToSchema)]
pub struct AdminRefund {
    #[schema(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5d")]
    pub refund_id: String,
    #[schema(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5c")]
    pub application_id: String,
    #[schema(example = "4973201670")]
    pub tracking_code: Option<String>,
    #[schema(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub payment_id: String,
    /// Rials.
    #[schema(example = 200000)]
    pub amount: i64,
    /// Where the money goes.
    #[schema(example = "IR062960000000100324200001")]
    pub iban: String,
    pub status: wire::RefundStatus,
    #[schema(example = "transfer")]
    pub method: Option<wire::RefundMethod>,
    /// The bank's reference of the transfer.
    #[schema(example = "700000810000002")]
    pub bank_reference: Option<String>,
    /// Why the gateway did not reverse it (then it waits for a transfer).
    #[schema(example = "sadad: manual refund required (no reversal API; the payment may have been verified)")]
    pub reversal_error: Option<String>,
    #[schema(example = "2026-11-22T06:30:00Z")]
    pub requested_at: DateTime<Utc>,
    #[schema(example = "2026-11-24T09:15:00Z")]
    pub settled_at: Option<DateTime<Utc>>,
    /// The administrator who recorded the transfer.
    #[schema(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a60")]
    pub settled_by: Option<String>,
}

crate::page_type!(
    /// Refunds, oldest first.
    AdminRefundPage,
    AdminRefund,
    "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5d"
);

fn admin_view(state: &AppState, r: RefundRow, tracking_code: Option<String>) -> Result<AdminRefund, ApiError> {
    Ok(AdminRefund {
        iban: state.pii.open(PiiKind::Iban, &r.iban_enc)?,
        status: status_of(&r),
        method: method_of(&r),
        refund_id: r.id.into(),
        application_id: r.application_id.into(),
        tracking_code,
        payment_id: r.payment_id.into(),
        amount: r.amount,
        bank_reference: r.bank_reference,
        reversal_error: r.reversal_error,
        requested_at: r.requested_at.and_utc(),
        settled_at: r.settled_at.map(|t| t.and_utc()),
        settled_by: r.settled_by,
    })
}

/// Refunds of withdrawn fees, oldest first: `?status=requested` is the list of transfers
/// to make (each with its Sheba number and amount).
#[utoipa::path(operation_id = "admin_list_refunds", tag = "admin", security(("staff" = [])), params(RefundsQuery),
    responses((status = 200, description = "A page of refunds", body = AdminRefundPage), StaffRead))]
#[get("/api/v1/admin/refunds")]
pub async fn list_refunds(
    state: web::Data<AppState>,
    _admin: AdminPrincipal,
    q: web::Query<RefundsQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let paging = PageRequest::new(q.limit, q.cursor)?;
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(RefundStatus::parse(s).ok_or(ApiError::field("status", ApiCode::Invalid))?),
    };
    let asked = paging.clone();
    let rows = state
        .run(move |conn| {
            let rows = persistence::refunds::list(conn, status, asked.cursor(), asked.fetch())?;
            rows.into_iter()
                .map(|r| {
                    let code = persistence::applications::find(conn, &r.application_id)?.and_then(|a| a.tracking_code);
                    Ok((r, code))
                })
                .collect::<Result<Vec<_>, persistence::DbError>>()
        })
        .await?;
    let page = paging.page(rows, |(r, _)| r.id.to_string());
    let items = page.items.into_iter().map(|(r, code)| admin_view(&state, r, code)).collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(AdminRefundPage { items, next_cursor: page.next_cursor }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettleRefundRequest {
    /// The bank's reference of the transfer to the refund's Sheba number (1–200 characters).
    #[schema(example = "700000810000002")]
    pub bank_reference: String,
}

/// Records the transfer of a refund to its Sheba number.
///
/// The refund is settled (`transfer`), the payment `refunded`, the application's payment
/// status `refunded`, and the citizen gets an SMS with the reference — once: 409
/// `refund_already_settled` after that, and 409 `refund_reversal_in_progress` while the
/// gateway is still reversing it (so the money never goes back twice). 404
/// `refund_not_found` for an unknown id.
#[utoipa::path(operation_id = "admin_settle_refund", tag = "admin", security(("staff" = [])),
    request_body = SettleRefundRequest,
    params(("id" = String, Path, description = "Refund id", example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5d")),
    responses((status = 200, description = "Settled", body = AdminRefund), StaffWrite))]
#[post("/api/v1/admin/refunds/{id}/settle")]
pub async fn settle_refund(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AdminPrincipal,
    path: web::Path<String>,
    body: crate::extract::Json<SettleRefundRequest>,
) -> Result<HttpResponse, ApiError> {
    let mut e = FieldErrors::default();
    let reference = e.take("bank_reference", domain::offices::text(&body.bank_reference));
    e.finish()?;
    let actor = actor(&req, "admin", &admin.0.staff_id);
    let refund =
        withdrawal::settle_by_transfer(&state, path.into_inner().into(), reference.expect("checked"), actor).await?;
    let id = refund.application_id.clone();
    let code = state.run(move |conn| persistence::applications::find(conn, &id)).await?.and_then(|a| a.tracking_code);
    Ok(HttpResponse::Ok().json(admin_view(&state, refund, code)?))
}
