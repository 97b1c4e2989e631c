//! Withdrawal and its refund (issue 19 item 3; docs/domain/payments.md, "Withdrawal and
//! refunds"). Before enrollment a citizen may give the application up: the seat goes back,
//! the application is `cancelled`. A paid fee is owed back to the Sheba number the citizen
//! gives: on the day of the payment the gateway is asked to reverse it (the issue-16
//! reversal machinery: tried at once, retried by `reconcile_payments` while the bank does
//! not answer); otherwise — or when the bank says no — an administrator transfers it and
//! records the bank's reference. An SMS goes out at each step.

use chrono::{DateTime, Duration, Utc};
use domain::DomainError;
use domain::application::{Event, PaymentStatus, transition};
use domain::calendar::tehran_date;
use domain::iban::Iban;
use domain::payment::{self as payment_rules, PaymentEvent};
use domain::ports::PortError;
use domain::record_ids::RefundId;
use persistence::applications::ApplicationRow;
use persistence::audit::{self, Actor};
use persistence::payments::{self, PaymentRow};
use persistence::refunds::{self, RefundMethod, RefundRow, RefundStatus};
use persistence::{DbConn, DbError, PiiKind, offices, write_tx};

use super::{Target, mutate};
use crate::error::{ApiCode, ApiError};
use crate::notify::{self, Template};
use crate::state::AppState;

/// What a withdrawal did.
#[derive(Debug, Clone)]
pub struct Withdrawn {
    pub application: ApplicationRow,
    /// The refund of a paid fee.
    pub refund: Option<RefundRow>,
}

/// Withdraws the application: in one transaction the application is cancelled, its seat
/// released, a paid fee's payment marked `refund_requested` with its refund row (the Sheba
/// number sealed), the audit entry and the SMS queued. Then, on the payment's own day, the
/// gateway is asked to reverse it.
pub async fn withdraw(
    state: &AppState,
    target: Target,
    reason: String,
    iban: Option<Iban>,
    actor: Actor,
) -> Result<Withdrawn, ApiError> {
    let (policy, pii) = (state.policy.clone(), state.pii.clone());
    let refund_id: RefundId = persistence::new_id();
    let ((refund, freed), application) = mutate(state, target, move |conn, row, app, now| {
        let paid = app.payment == PaymentStatus::Paid;
        let next = transition(app, Event::Withdraw { iban: iban.clone() }, now, &policy)?;
        row.set_domain(&next);
        row.withdrawal_reason_enc = Some(pii.seal(PiiKind::Personal, &reason));
        let refund = match (paid, &iban) {
            (true, Some(iban)) => Some(request_refund(conn, &pii, row, iban, &refund_id, now)?),
            _ => None,
        };
        audit::append(
            conn,
            &actor,
            "application_withdrawn",
            Some(&row.id),
            Some(serde_json::json!({
                "refund_id": refund.as_ref().map(|r| &r.id),
                "refund_status": refund.as_ref().map(|r| &r.status),
                "iban": refund.as_ref().map(|r| &r.iban_hint),
            })),
            now,
        )?;
        notify::sms_to_applicant(
            conn,
            &pii,
            row,
            Template::Withdrawal,
            serde_json::json!({"refund": refund.is_some()}),
            Some(format!("withdrawal:{}", row.id)),
            now,
        )?;
        // The contested seat row last (see `booking::take_slot`).
        let freed = app.slot.clone().filter(|_| app.appointment.holds_seat());
        if let Some(s) = &freed {
            offices::release_seat(conn, &s.office_id, s.date, s.shift)?;
        }
        Ok((refund, freed))
    })
    .await?;
    if let Some(slot) = freed {
        state.full_slots.forget(&slot);
    }
    let Some(r) = refund.clone().filter(|r| r.status == RefundStatus::Reversing) else {
        return Ok(Withdrawn { application, refund });
    };
    let payment_id = r.payment_id.clone();
    if let Some(p) = state.run(move |conn| payments::find(conn, &payment_id)).await? {
        reverse(state, &p).await;
    }
    // As the reversal left them.
    let (id, app_id) = (r.id.clone(), application.id.clone());
    let (refund, application) =
        state.run(move |conn| Ok((refunds::find(conn, &id)?, persistence::applications::find(conn, &app_id)?))).await?;
    let application = application.ok_or(ApiError::Domain(DomainError::ApplicationNotFound))?;
    Ok(Withdrawn { application, refund })
}

/// Marks the application's verified payment `refund_requested` and writes its refund. On
/// the payment's own (Tehran) day the gateway may still reverse it: the refund starts
/// `reversing` with a check planned (the request tries at once; `reconcile_payments` picks
/// it up if that attempt is lost). Otherwise it waits for a transfer (`requested`).
fn request_refund(
    conn: &mut DbConn,
    pii: &persistence::Pii,
    row: &ApplicationRow,
    iban: &Iban,
    refund_id: &RefundId,
    now: DateTime<Utc>,
) -> Result<RefundRow, ApiError> {
    let mut p = payments::for_application(conn, &row.id)?
        .into_iter()
        .find(|p| p.status == payment_rules::PaymentStatus::Verified)
        .ok_or_else(|| ApiError::internal("a paid application without a verified payment"))?;
    payments::lock(conn, &p)?;
    let same_day = p.token.is_some() && p.settled_at.is_some_and(|t| tehran_date(t.and_utc()) == tehran_date(now));
    p.status = payment_rules::transition(p.status, PaymentEvent::Withdrawn)?;
    p.last_error = Some("withdrawn by the citizen".into());
    p.next_check_at = same_day.then(|| (now + Duration::minutes(2)).naive_utc());
    payments::update(conn, &mut p, now)?;
    let refund = RefundRow {
        id: refund_id.clone(),
        application_id: row.id.clone(),
        payment_id: p.id.clone(),
        amount: p.amount,
        iban_enc: pii.seal(PiiKind::Iban, iban.as_str()),
        iban_hint: iban.masked(),
        status: if same_day { RefundStatus::Reversing } else { RefundStatus::Requested },
        method: None,
        bank_reference: None,
        reversal_error: None,
        requested_at: now.naive_utc(),
        settled_at: None,
        settled_by: None,
        version: 0,
        updated_at: now.naive_utc(),
    };
    refunds::insert(conn, &refund)?;
    Ok(refund)
}

/// Asks the gateway to reverse a withdrawn payment (called by [`withdraw`] and by the
/// reconciliation job through `payment::reverse`). Only on the payment's own day: after it
/// the bank has settled and the money goes back by transfer. The bank's answer:
/// - reversed → the payment `refunded`, the refund settled (`reversal`), the application's
///   refund settled, an SMS;
/// - no answer, still the same day → tried again with the reversal backoff;
/// - refused (Sadad never reverses a verified payment), or the day is over → the refund
///   waits for a transfer (`requested`), with the bank's reason for the administrators.
pub async fn reverse(state: &AppState, p: &PaymentRow) {
    let now = state.now();
    let same_day = p.settled_at.is_some_and(|t| tehran_date(t.and_utc()) == tehran_date(now));
    let answer = match (same_day, p.token.as_deref(), super::payment::gateway(state, &p.gateway)) {
        (true, Some(token), Ok(gw)) => gw.reverse(&super::payment::order_of(state, p), token).await,
        (false, _, _) => Err(PortError::Protocol("the payment's day is over: the bank no longer reverses it".into())),
        _ => Err(PortError::Protocol("no gateway can reverse this payment".into())),
    };
    let id = p.id.clone();
    let (policy, pii) = (state.policy.clone(), state.pii.clone());
    let max_attempts = i32::try_from(state.config.payments.reversal_max_attempts).unwrap_or(i32::MAX).max(1);
    let base_minutes = state.config.payments.reversal_retry_minutes;
    let failure = answer.as_ref().err().cloned();
    let recorded = state
        .run_api(move |conn| {
            write_tx(conn, |conn| {
                let mut p = payments::find(conn, &id)?.ok_or(DbError::NotFound)?;
                let Some(mut refund) = refunds::find_by_payment(conn, &p.id)? else { return Ok("none") };
                if p.status != payment_rules::PaymentStatus::RefundRequested || refund.status != RefundStatus::Reversing
                {
                    return Ok("none");
                }
                let outcome = match &failure {
                    None => {
                        p.status = payment_rules::transition(p.status, PaymentEvent::Refunded)?;
                        p.next_check_at = None;
                        p.reversal_error = None;
                        refund.status = RefundStatus::Settled;
                        refund.method = Some(RefundMethod::Reversal.into());
                        refund.settled_at = Some(now.naive_utc());
                        "refunded"
                    }
                    Some(PortError::Unavailable(reason)) if same_day && p.reversal_attempts + 1 < max_attempts => {
                        p.reversal_attempts += 1;
                        p.reversal_error = Some(reason.chars().take(300).collect());
                        let retry = domain::payment::reversal_retry_after(base_minutes, p.reversal_attempts);
                        p.next_check_at = Some((now + retry).naive_utc());
                        "retry"
                    }
                    Some(e) => {
                        let reason: String = e.to_string().chars().take(300).collect();
                        p.reversal_attempts += 1;
                        p.reversal_error = Some(reason.clone());
                        p.next_check_at = None;
                        refund.status = RefundStatus::Requested;
                        refund.reversal_error = Some(reason);
                        "transfer"
                    }
                };
                payments::update(conn, &mut p, now)?;
                refunds::update(conn, &mut refund, now)?;
                if outcome == "refunded" {
                    settle_application(conn, &pii, &policy, &refund, &Actor::system(), now)?;
                } else if outcome == "transfer" {
                    audit::append(
                        conn,
                        &Actor::system(),
                        "refund_awaits_transfer",
                        Some(&refund.application_id),
                        Some(serde_json::json!({"refund_id": refund.id, "reason": refund.reversal_error})),
                        now,
                    )?;
                }
                Ok::<_, ApiError>(outcome)
            })
        })
        .await;
    match recorded {
        Ok("refunded") => state.metrics.event("refund", "reversed"),
        Ok("transfer") => state.metrics.event("refund", "awaits_transfer"),
        Ok("retry") => tracing::warn!(payment_id = %p.id, "withdrawal reversal not answered; will retry"),
        Ok(_) => {}
        // The bank's answer could not be recorded: the payment stays due and is tried
        // again (a repeated reversal of the same token is "already reversed").
        Err(e) => {
            tracing::warn!(payment_id = %p.id, error = %e, "withdrawal reversal outcome not recorded; will retry")
        }
    }
}

/// Records a transfer an administrator made to the refund's Sheba number: the refund
/// settled (`transfer`, the bank's reference), the payment `refunded`, the application's
/// refund settled, an SMS — in one transaction, once. A refund still being reversed by the
/// gateway is refused (409 `refund_reversal_in_progress`), so the money never goes back
/// twice.
pub async fn settle_by_transfer(
    state: &AppState,
    refund_id: RefundId,
    bank_reference: String,
    actor: Actor,
) -> Result<RefundRow, ApiError> {
    let now = state.now();
    let (policy, pii) = (state.policy.clone(), state.pii.clone());
    state
        .run_api(move |conn| {
            write_tx(conn, |conn| {
                let mut refund =
                    refunds::find(conn, &refund_id)?.ok_or(ApiError::Domain(DomainError::RefundNotFound))?;
                match refund.status {
                    RefundStatus::Settled => return Err(DomainError::RefundAlreadySettled.into()),
                    RefundStatus::Reversing => return Err(DomainError::RefundReversalInProgress.into()),
                    RefundStatus::Requested => {}
                }
                let mut p = payments::find(conn, &refund.payment_id)?.ok_or(DbError::NotFound)?;
                p.status = payment_rules::transition(p.status, PaymentEvent::Refunded)?;
                p.next_check_at = None;
                payments::update(conn, &mut p, now)?;
                refund.status = RefundStatus::Settled;
                refund.method = Some(RefundMethod::Transfer.into());
                refund.bank_reference = Some(bank_reference.clone());
                refund.settled_at = Some(now.naive_utc());
                refund.settled_by = actor.id.clone();
                refunds::update(conn, &mut refund, now).map_err(|e| match e {
                    DbError::Stale => ApiError::Conflict { code: ApiCode::ConcurrentUpdate, retry_after: Some(1) },
                    e => e.into(),
                })?;
                settle_application(conn, &pii, &policy, &refund, &actor, now)?;
                Ok(refund)
            })
        })
        .await
}

/// The application's side of a settled refund: `refund_settled` (payment fact `refunded`),
/// the audit entry and the citizen's SMS.
fn settle_application(
    conn: &mut DbConn,
    pii: &persistence::Pii,
    policy: &domain::Policy,
    refund: &RefundRow,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let mut row = persistence::applications::find(conn, &refund.application_id)?.ok_or(DbError::NotFound)?;
    persistence::applications::lock(conn, &row)?;
    let next = transition(&row.to_domain()?, Event::RefundSettled, now, policy)?;
    row.set_domain(&next);
    persistence::applications::update(conn, &mut row, now)?;
    audit::append(
        conn,
        actor,
        "refund_settled",
        Some(&row.id),
        Some(serde_json::json!({
            "refund_id": refund.id, "method": refund.method, "bank_reference": refund.bank_reference,
            "amount": refund.amount,
        })),
        now,
    )?;
    notify::sms_to_applicant(
        conn,
        pii,
        &row,
        Template::RefundSettled,
        serde_json::json!({"method": refund.method, "bank_reference": refund.bank_reference, "amount": refund.amount}),
        Some(format!("refund:{}", refund.id)),
        now,
    )?;
    Ok(())
}
