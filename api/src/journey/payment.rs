//! Paying the card fee (docs/domain/payments.md «پرداخت»). A payment row is written
//! before the bank is called; the callback is never trusted — the payment is verified
//! server to server, amount and order checked, and applied exactly once, however many
//! callbacks, retries and reconciliation jobs race (versioned updates plus a unique index
//! allowing one `verified` payment per application).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use domain::DomainError;
use domain::application::{self, Application, AppointmentStatus, Event, Operation, check, transition};
use domain::fees::fee_on;
use domain::ids::TrackingCode;
use domain::payment::{self as rules, PaymentEvent, PaymentStatus};
use domain::ports::{NotPaidReason, PaymentGateway, PaymentOrder, PortError, VerifyOutcome};
use domain::record_ids::PaymentId;
use persistence::app_write::{self, Along};
use persistence::applications::{self, ApplicationRow};
use persistence::audit::{self, Actor};
use persistence::catalog::Catalog;
use persistence::payments::{self, PaymentRow};
use persistence::{DbConn, DbError, offices, write_tx};

use super::Target;
use crate::error::{ApiCode, ApiError};
use crate::notify::{self, Template};
use crate::state::AppState;

/// What the browser is told after the callback (`outcome` in the result page's query).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failed,
    Cancelled,
    /// Money was taken but not settled: it is returned within 72 hours.
    RefundPending,
    /// The bank did not answer the verification yet; reconciliation will settle it.
    Pending,
    /// The callback arrived but could not be recorded (the database did not answer):
    /// the payment is confirmed later by reconciliation and the citizen told by SMS.
    Received,
    Invalid,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failed => "failed",
            Outcome::Cancelled => "cancelled",
            Outcome::RefundPending => "refund_pending",
            Outcome::Pending => "pending",
            Outcome::Received => "received",
            Outcome::Invalid => "invalid",
        }
    }
}

pub fn gateway(state: &AppState, name: &str) -> Result<Arc<dyn PaymentGateway>, ApiError> {
    state.gateways.get(name).cloned().ok_or(ApiError::field("gateway", ApiCode::Invalid))
}

pub(crate) fn order_of(state: &AppState, p: &PaymentRow) -> PaymentOrder {
    PaymentOrder {
        order_id: p.order_id,
        amount: domain::Rials::new(p.amount).unwrap_or(domain::Rials::ZERO),
        callback_url: callback_url(state, &p.gateway),
        description: "هزینه صدور کارت هوشمند ملی".into(),
    }
}

fn callback_url(state: &AppState, gateway: &str) -> String {
    callback_url_at(&state.config.public_url, gateway)
}

/// Where a gateway's bank sends the browser back: this server's callback for it, under
/// the public URL (the sandbox bank is given it when it is built).
pub fn callback_url_at(public_url: &str, gateway: &str) -> String {
    format!("{}/api/v1/payments/{gateway}/callback", public_url.trim_end_matches('/'))
}

/// Starts a payment: checks the application may pay now, writes the payment row, asks the
/// bank for a token, and moves the application to `payment_pending`.
pub async fn start(state: &AppState, target: Target, gateway_name: &str, actor: Actor) -> Result<PaymentRow, ApiError> {
    let gw = gateway(state, gateway_name)?;
    let now = state.now();
    // 1. The row, before the bank is called. Order ids are a centisecond clock plus four
    // random digits, so at hundreds of payments a second two can meet: draw again then.
    let mut draws = 0;
    let (payment, read) = loop {
        let policy = state.policy.clone();
        let catalog = state.catalog.clone();
        let order_seed = state.random.next_u64();
        let gateway_owned = gateway_name.to_owned();
        let t = target.clone();
        let attempt = state
            .run_api(move |conn| {
                // No transaction: the application is only read here (the payment row is
                // inert until the bank answers, and step 3 moves the application under its
                // lock, checking the rules again).
                {
                    let row = load(conn, &t, now)?;
                    let app = row.to_domain()?;
                    check(&app, Operation::Pay, now, &policy)?;
                    let tariff = catalog.get(conn)?.tariff.clone();
                    // The card fee, or the re-issue fee for a re-issue cycle (issue 19).
                    let amount = fee_on(&tariff, app.fee_kind(), domain::calendar::tehran_date(now));
                    let expires_at = app.hold_expires_at.unwrap_or(now + policy.hold_ttl);
                    let p = PaymentRow {
                        id: persistence::new_id(),
                        order_id: order_id(order_seed, now),
                        application_id: row.id.clone(),
                        gateway: gateway_owned.clone(),
                        amount: amount.value(),
                        status: PaymentStatus::Created,
                        token: None,
                        redirect_url: None,
                        reference: None,
                        card_mask: None,
                        bank_code: None,
                        expires_at: expires_at.naive_utc(),
                        attempts: 0,
                        next_check_at: Some((expires_at + Duration::minutes(2)).naive_utc()),
                        last_error: None,
                        version: 0,
                        created_at: now.naive_utc(),
                        updated_at: now.naive_utc(),
                        settled_at: None,
                        reversal_attempts: 0,
                        reversal_error: None,
                    };
                    persistence::single_write(conn, |conn| payments::insert(conn, &p))?;
                    Ok::<_, ApiError>((p, row))
                }
            })
            .await;
        match attempt {
            Err(ApiError::Internal(m)) if draws < 5 && m.contains("duplicate") && m.contains("order_id") => draws += 1,
            other => break other?,
        }
    };
    // 2. The bank.
    let redirect = match gw.request(&order_of(state, &payment)).await {
        Ok(r) => r,
        Err(e) => {
            let id = payment.id.clone();
            let reason = e.to_string();
            state
                .run(move |conn| {
                    let mut p = payments::find(conn, &id)?.ok_or(DbError::NotFound)?;
                    p.status = rules::transition(p.status, PaymentEvent::RequestFailed)?;
                    p.last_error = Some(reason);
                    p.next_check_at = None;
                    payments::update(conn, &mut p, now)
                })
                .await?;
            state.metrics.event("payment_request", "gateway_unavailable");
            return Err(DomainError::GatewayUnavailable.into());
        }
    };
    // 3. The application waits for the bank: moved and written with its audit entry and
    // the payment's token in one statement (`app_write`). The rows are those of step 1,
    // not read again: both updates are versioned, so a writer that moved either meanwhile
    // (the citizen, a staff member, reconciliation's claim) makes the write `Stale` with
    // nothing written, and only then, in the next attempt, are they read (the application
    // under its lock) and the rules checked against what is there now.
    let policy = state.policy.clone();
    let now = state.now();
    let paid = state
        .run_api(move |conn| {
            let write = |conn: &mut DbConn, attempt: u32| {
                // A retry locks the payment, then the application — the order the bank's
                // callback locks them in (`find_with_application`), so the two never
                // wait on each other in a circle.
                let mut p = match attempt {
                    1 => payment.clone(),
                    _ => {
                        let p = payments::find(conn, &payment.id)?.ok_or(DbError::NotFound)?;
                        payments::lock(conn, &p)?;
                        p
                    }
                };
                let mut row = match attempt {
                    1 => read.clone(),
                    _ => target.load_locked(conn, now)?.ok_or(ApiError::Domain(DomainError::ApplicationNotFound))?,
                };
                let next = transition(&row.to_domain()?, Event::StartPayment, now, &policy)?;
                row.set_domain(&next);
                p.status = rules::transition(p.status, PaymentEvent::Redirected)?;
                p.token = Some(redirect.token.clone());
                p.redirect_url = Some(redirect.url.clone());
                let entry = audit::entry(
                    &actor,
                    "payment_started",
                    Some(&row.id),
                    Some(serde_json::json!({"payment_id": p.id, "gateway": p.gateway, "amount": p.amount})),
                    now,
                );
                app_write::save(
                    conn,
                    &mut row,
                    Along { audit: vec![entry], payment: Some(&mut p), ..Along::default() },
                    now,
                )?;
                Ok::<_, ApiError>(p)
            };
            let mut attempt = 0;
            loop {
                attempt += 1;
                // The first attempt needs no transaction: `app_write::save` writes all or
                // nothing by itself. A retry reads under a lock, so it takes one.
                let written = match attempt {
                    1 => write(conn, attempt),
                    _ => write_tx(conn, |conn| write(conn, attempt)),
                };
                match written {
                    Err(ApiError::Conflict { code: ApiCode::ConcurrentUpdate, .. }) if attempt < 4 => continue,
                    // Refused on the row read before the bank call (the hold it saw may have
                    // expired since it was moved): decided again on the row as it is now.
                    Err(ApiError::Domain(_)) if attempt == 1 => continue,
                    other => return other,
                }
            }
        })
        .await?;
    Ok(paid)
}

/// A unique-enough numeric order id: time in centiseconds and random digits (a unique
/// index catches the rare collision).
fn order_id(seed: u64, now: DateTime<Utc>) -> i64 {
    let cs = (now.timestamp_millis() / 10) % 100_000_000_000;
    cs * 10_000 + (seed % 10_000) as i64
}

fn load(conn: &mut DbConn, target: &Target, now: DateTime<Utc>) -> Result<ApplicationRow, ApiError> {
    target.load(conn, now)?.ok_or(ApiError::Domain(DomainError::ApplicationNotFound))
}

/// What a callback or a verification ended in: the outcome for the browser, the payment
/// (if found) and, for one that registered the application here, its tracking code (so
/// the result page needs no second read).
pub type Applied = (Outcome, Option<PaymentRow>, Option<String>);

/// Handles a bank callback: finds the payment, verifies it with the bank, applies the
/// result. Returns the outcome for the browser, the payment (if found) and the tracking
/// code when this callback registered the application.
pub async fn callback(state: &AppState, gateway_name: &str, fields: Vec<(String, String)>) -> Applied {
    let Ok(gw) = gateway(state, gateway_name) else { return (Outcome::Invalid, None, None) };
    // No bank sends a NUL character; text holding one must not reach the database (which
    // would refuse it, and the browser would be told its payment was received).
    let nul = fields.iter().any(|(k, v)| k.contains('\0') || v.contains('\0'));
    let parsed = if nul { None } else { gw.parse_callback(&fields).ok() };
    let Some(data) = parsed else {
        state.metrics.event("payment_callback", "unparseable");
        return (Outcome::Invalid, None, None);
    };
    let order = data.order_id;
    // The common case in one statement: the order's open payment, its token matching,
    // marked as called back. If that wrote nothing, the payment is read to say why.
    let now = state.now();
    let (gateway_owned, token) = (gateway_name.to_owned(), data.token.clone());
    let code: String = data.status_code.chars().take(32).collect();
    let marked = state
        .run(move |conn| {
            if let Some(marked) = payments::mark_callback(conn, order, &gateway_owned, token.as_deref(), &code, now)? {
                return Ok((Some(marked), None));
            }
            Ok((None, payments::find_by_order(conn, order)?))
        })
        .await;
    let found = match marked {
        Ok((Some(marked), _)) => return verify_and_apply_row(state, marked).await,
        Ok((None, found)) => found,
        // The database did not answer: the citizen may well have paid. Reconciliation
        // verifies every open payment with its bank later and the citizen gets an SMS.
        Err(e) => {
            tracing::warn!(error = %e, "payment callback while the database is unavailable; reconciliation will settle it");
            state.metrics.event("payment_callback", "database_unavailable");
            return (Outcome::Received, None, None);
        }
    };
    let Some(payment) = found.filter(|p| p.gateway == gateway_name) else {
        state.metrics.event("payment_callback", "unknown_order");
        return (Outcome::Invalid, None, None);
    };
    // A token in the callback must be the one the bank gave us for this order.
    if let (Some(given), Some(ours)) = (&data.token, &payment.token)
        && given != ours
    {
        state.metrics.event("payment_callback", "token_mismatch");
        return (Outcome::Invalid, Some(payment), None);
    }
    // Past `callback_received` already (a repeated callback, reconciliation, or a racer
    // that marked it first): verified and applied as it stands, exactly once.
    verify_and_apply_row(state, payment).await
}

/// Asks the bank about a payment and applies the answer exactly once.
pub async fn verify_and_apply(state: &AppState, payment_id: &PaymentId) -> Applied {
    let id = payment_id.clone();
    let payment = match state.run(move |conn| payments::find(conn, &id)).await {
        Ok(Some(p)) => p,
        Ok(None) => return (Outcome::Invalid, None, None),
        Err(_) => return (Outcome::Received, None, None),
    };
    verify_and_apply_row(state, payment).await
}

/// [`verify_and_apply`] with the payment as just read or written by the caller.
async fn verify_and_apply_row(state: &AppState, payment: PaymentRow) -> Applied {
    if !payment.is_open() {
        return (settled_outcome(state, &payment), Some(payment), None);
    }
    let Ok(gw) = gateway(state, &payment.gateway) else { return (Outcome::Invalid, Some(payment), None) };
    let Some(token) = payment.token.clone() else {
        // Never reached the bank: nothing to verify; it expires.
        let verdict = if state.now() > payment.expires_at.and_utc() {
            Ok(VerifyOutcome::NotPaid { reason: NotPaidReason::Expired, code: "expired".into() })
        } else {
            Err(PortError::Unavailable("not sent to the bank yet".into()))
        };
        return apply(state, &payment, verdict).await;
    };
    let verdict = gw.verify(&order_of(state, &payment), &token).await;
    apply(state, &payment, verdict).await
}

/// The outcome of a payment that was settled before (a repeated callback, or one that came
/// after reconciliation): read from its status, and for one not paid, from what its bank's
/// stored code means.
fn settled_outcome(state: &AppState, p: &PaymentRow) -> Outcome {
    match p.status {
        PaymentStatus::Verified => Outcome::Success,
        PaymentStatus::RefundPending
        | PaymentStatus::RefundRequested
        | PaymentStatus::Refunded
        | PaymentStatus::RefundFailed => Outcome::RefundPending,
        PaymentStatus::Failed | PaymentStatus::Expired => {
            let cancelled = p
                .bank_code
                .as_deref()
                .zip(gateway(state, &p.gateway).ok())
                .is_some_and(|(code, gw)| gw.not_paid_reason(code) == NotPaidReason::Cancelled);
            if cancelled { Outcome::Cancelled } else { Outcome::Failed }
        }
        PaymentStatus::Created
        | PaymentStatus::Redirected
        | PaymentStatus::CallbackReceived
        | PaymentStatus::Unknown => Outcome::Pending,
    }
}

/// What the verification decided, before it is applied.
enum Decision {
    Paid {
        reference: String,
        card_mask: Option<String>,
    },
    NotPaid {
        reason: NotPaidReason,
        code: String,
    },
    Debited {
        code: String,
    },
    /// The bank confirmed a different amount: reverse it and alert.
    Mismatch {
        reference: String,
    },
    Unknown {
        error: String,
    },
}

async fn apply(state: &AppState, payment: &PaymentRow, verdict: Result<VerifyOutcome, PortError>) -> Applied {
    let decision = match verdict {
        Ok(VerifyOutcome::Verified { reference, amount, card_mask }) if amount.value() == payment.amount => {
            Decision::Paid { reference, card_mask }
        }
        Ok(VerifyOutcome::Verified { reference, .. }) => Decision::Mismatch { reference },
        Ok(VerifyOutcome::NotPaid { reason, code }) => Decision::NotPaid { reason, code },
        Ok(VerifyOutcome::DebitedNotSettled { code }) => Decision::Debited { code },
        Ok(VerifyOutcome::OtherOrder) => Decision::Mismatch { reference: String::new() },
        // Any other error leaves the outcome unknown: checked again later.
        Err(e) => Decision::Unknown { error: e.to_string() },
    };
    if let Decision::Mismatch { .. } = decision {
        tracing::error!(payment_id = %payment.id, "ALERT: the bank confirmed a different amount or order; reversing");
        state.metrics.event("payment", "mismatch_reversed");
    }
    let now = state.now();
    let policy = state.policy.clone();
    let pii = state.pii.clone();
    let catalog = state.catalog.clone();
    let random_seed = state.random.next_u64();
    let pid = payment.id.clone();
    let result = state
        .run_api(move |conn| {
            let mut attempt = 0u64;
            loop {
                let seed = random_seed.wrapping_add(attempt.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                // PostgreSQL settles a payment the bank confirmed without a transaction
                // first: the rows read without a lock, then written in one versioned
                // statement (`app_write`), which a racer that moved either makes `Stale`.
                // Any other decision, a second attempt, or a payment that turns out
                // not to move its application (money given back) takes the transaction.
                let alone = attempt == 0 && matches!(conn, DbConn::Pg(_)) && matches!(decision, Decision::Paid { .. });
                let r = if alone {
                    settle(conn, &pid, &decision, seed, now, &policy, &pii, &catalog, false)
                } else {
                    write_tx(conn, |conn| settle(conn, &pid, &decision, seed, now, &policy, &pii, &catalog, true))
                };
                match r {
                    // A tracking-code collision or a racing writer: try again.
                    Err(ApiError::Conflict { code: ApiCode::ConcurrentUpdate, .. }) | Err(ApiError::Internal(_))
                        if attempt < 4 =>
                    {
                        attempt += 1;
                    }
                    other => return other,
                }
            }
        })
        .await;
    match result {
        Ok((outcome, p, tracking)) => {
            let outcome = outcome.unwrap_or_else(|| settled_outcome(state, &p));
            state.metrics.event("payment", outcome.as_str());
            if outcome != Outcome::Success {
                // A failed payment gives its held seat back.
                state.full_slots.clear();
            }
            // Money we settled but must not keep goes back now; a debit the bank never
            // settled is returned by the bank itself (within 72 hours, docs/domain/payments.md).
            if p.status == PaymentStatus::RefundPending && p.token.is_some() && p.last_error.is_some() {
                reverse(state, &p).await;
            }
            (outcome, Some(p), tracking)
        }
        Err(e) => {
            tracing::warn!(payment_id = %payment.id, error = %e, "payment could not be applied now; reconciliation will retry");
            // The bank answered but its answer could not be recorded: the citizen is told
            // it is being confirmed (and gets an SMS when it is), never that it failed.
            (Outcome::Received, Some(payment.clone()), None)
        }
    }
}

/// Applies a decision in one transaction. Idempotent: a payment that is no longer open is
/// left alone (`None`: its outcome is read from it), and the versioned update lets exactly
/// one racer apply it. Each decision has its own step below, which changes the rows in
/// memory and gathers their audit entries and messages; this one locks the rows before and
/// writes them all after (`app_write`: one statement on PostgreSQL).
#[expect(clippy::too_many_arguments, reason = "the decision, what settling it reads and how, all required")]
fn settle(
    conn: &mut DbConn,
    payment_id: &PaymentId,
    decision: &Decision,
    seed: u64,
    now: DateTime<Utc>,
    policy: &domain::Policy,
    pii: &persistence::Pii,
    catalog: &Catalog,
    locked: bool,
) -> Result<(Option<Outcome>, PaymentRow, Option<String>), ApiError> {
    // The payment and its application locked together (each decision below but `Unknown`
    // moves the application too), with the catalog version the SMS's office is read at.
    // Unlocked (`locked` false, PostgreSQL without a transaction), only the one versioned
    // statement below may write.
    let (mut p, mut row, catalog_seen) =
        payments::find_with_application(conn, payment_id, locked)?.ok_or(DbError::NotFound)?;
    if !p.is_open() {
        return Ok((None, p, None));
    }
    if let Decision::Unknown { error } = decision {
        // Nothing is settled: the payment is asked about again later.
        p.status = rules::transition(p.status, PaymentEvent::NoAnswer)?;
        p.attempts += 1;
        p.last_error = Some(error.chars().take(300).collect());
        p.next_check_at = Some((now + rules::recheck_after(p.attempts)).naive_utc());
        payments::update(conn, &mut p, now)?;
        return Ok((Some(Outcome::Pending), p, None));
    }
    let app = row.to_domain()?;
    let mut s = Settling {
        conn: &mut *conn,
        p: &mut p,
        row: &mut row,
        app: &app,
        now,
        policy,
        pii,
        catalog,
        catalog_seen,
        app_changed: false,
        audit: Vec::new(),
        messages: Vec::new(),
    };
    let outcome = match decision {
        Decision::Unknown { .. } => unreachable!("handled above"),
        Decision::Paid { reference, card_mask } => s.paid(reference, card_mask.as_deref(), seed)?,
        Decision::NotPaid { reason, code } => s.not_paid(*reason, code)?,
        Decision::Debited { code } => s.debited(code)?,
        Decision::Mismatch { reference } => s.give_back(reference, "amount or order mismatch", "payment_mismatch")?,
    };
    let Settling { app_changed, audit, messages, .. } = s;
    if !locked && !app_changed {
        // Rows to write one by one: in the transaction (the caller's next attempt).
        return Err(ApiError::Conflict { code: ApiCode::ConcurrentUpdate, retry_after: None });
    }
    // Only money still to be reversed keeps a check planned.
    if p.status != PaymentStatus::RefundPending || p.last_error.is_none() {
        p.next_check_at = None;
    }
    p.settled_at = Some(now.naive_utc());
    let written = if app_changed {
        app_write::save(conn, &mut row, Along { audit, outbox: messages, payment: Some(&mut p) }, now).map(|_| ())
    } else {
        // The application stays as it is (money given back, or an older payment failing).
        let queued: Result<(), DbError> = audit
            .iter()
            .try_for_each(|e| persistence::audit::insert(conn, e))
            .and_then(|()| messages.iter().try_for_each(|m| persistence::outbox::enqueue_row(conn, m).map(|_| ())));
        queued.and_then(|()| payments::update(conn, &mut p, now))
    };
    match written {
        Ok(()) => Ok((Some(outcome), p, row.tracking_code)),
        // Another racer applied it first, or the tracking code drawn is taken: this
        // transaction rolls back and `apply` runs it again (with another code).
        Err(DbError::Stale | DbError::Duplicate(_)) => {
            Err(ApiError::Conflict { code: ApiCode::ConcurrentUpdate, retry_after: None })
        }
        Err(e) => Err(e.into()),
    }
}

/// One open payment being settled, with its locked application, and what is written
/// when the step is done.
struct Settling<'a> {
    conn: &'a mut DbConn,
    p: &'a mut PaymentRow,
    row: &'a mut ApplicationRow,
    app: &'a Application,
    now: DateTime<Utc>,
    policy: &'a domain::Policy,
    pii: &'a persistence::Pii,
    /// The offices in memory (docs/decisions/0013-catalog-cache.md): the SMS names the office.
    catalog: &'a Catalog,
    /// The catalog version read with the payment: the copy used is at least this new.
    catalog_seen: i64,
    /// The application was moved (`row` is saved with the payment).
    app_changed: bool,
    audit: Vec<persistence::audit::AuditRow>,
    messages: Vec<persistence::outbox::OutboxRow>,
}

impl Settling<'_> {
    fn audit(&mut self, action: &str, details: serde_json::Value) {
        self.audit.push(audit::entry(&Actor::system(), action, Some(&self.row.id), Some(details), self.now));
    }

    /// Paid, the same amount: the application is registered (the held seat becomes the
    /// booking) — unless it was paid by another payment or closed, and this money goes back.
    fn paid(&mut self, reference: &str, card_mask: Option<&str>, seed: u64) -> Result<Outcome, ApiError> {
        // Not looked up first: the unique index refuses a code already given, which rolls
        // this transaction back, and `apply` runs it again with another seed (with 10⁹
        // codes, even ten million registrations make that one settlement in a hundred).
        let tracking = TrackingCode::from_random(seed);
        let seat_held = self.app.appointment == AppointmentStatus::Held;
        let next = match transition(
            self.app,
            Event::PaymentSucceeded { tracking_code: tracking, seat_held },
            self.now,
            self.policy,
        ) {
            Ok(next) => next,
            Err(
                DomainError::AlreadyPaid | DomainError::ApplicationCancelled | DomainError::InvalidTransition { .. },
            ) => {
                return self.give_back(reference, "duplicate payment", "payment_duplicate");
            }
            Err(e) => return Err(e.into()),
        };
        let held = self.app.slot.clone().filter(|_| seat_held);
        self.row.set_domain(&next);
        self.app_changed = true;
        let p = &mut *self.p;
        p.status = rules::transition(p.status, PaymentEvent::Verified)?;
        p.reference = Some(reference.to_owned());
        p.card_mask = card_mask.map(str::to_owned);
        let (payment_id, amount) = (p.id.clone(), p.amount);
        self.audit("payment_verified", serde_json::json!({"payment_id": payment_id, "booked": held.is_some()}));
        let mut params =
            serde_json::json!({"tracking_code": self.row.tracking_code, "amount": amount, "reference": reference});
        if let Some(slot) = held
            && let Some(office) = self.catalog.at_least(self.conn, self.catalog_seen)?.office(&slot.office_id)
        {
            params = crate::journey::booking::booking_params(office, &slot, self.row);
        }
        let sms = notify::sms_message_to_applicant(
            self.pii,
            self.row,
            Template::Registration,
            params,
            Some(format!("payment:{payment_id}")),
            self.now,
        )?;
        self.messages.push(sms);
        Ok(Outcome::Success)
    }

    /// Money we hold but must not keep (a duplicate, a mismatch): reversed right after
    /// this transaction, and by the reconciliation job until the bank confirms.
    fn give_back(&mut self, reference: &str, why: &str, action: &str) -> Result<Outcome, ApiError> {
        let p = &mut *self.p;
        p.status = rules::transition(p.status, PaymentEvent::GiveBack)?;
        p.reference = Some(reference.to_owned());
        p.last_error = Some(why.to_owned());
        p.next_check_at = Some((self.now + Duration::minutes(10)).naive_utc());
        let payment_id = p.id.clone();
        self.audit(action, serde_json::json!({"payment_id": payment_id}));
        Ok(Outcome::RefundPending)
    }

    /// Not paid (cancelled, declined, expired).
    fn not_paid(&mut self, reason: NotPaidReason, code: &str) -> Result<Outcome, ApiError> {
        let event = if reason == NotPaidReason::Expired { PaymentEvent::Expired } else { PaymentEvent::NotPaid };
        self.p.status = rules::transition(self.p.status, event)?;
        self.unpaid(code, false, "payment_failed")?;
        Ok(if reason == NotPaidReason::Cancelled { Outcome::Cancelled } else { Outcome::Failed })
    }

    /// Debited but the bank will not settle it to us: the bank itself returns it.
    fn debited(&mut self, code: &str) -> Result<Outcome, ApiError> {
        self.p.status = rules::transition(self.p.status, PaymentEvent::GiveBack)?;
        self.unpaid(code, true, "payment_refund_pending")?;
        Ok(Outcome::RefundPending)
    }

    /// The application of a payment that did not bring its money: if it is the latest
    /// payment of an application still waiting for one, the application goes back (its held
    /// seat released) and the citizen is told.
    fn unpaid(&mut self, code: &str, debited: bool, action: &str) -> Result<(), ApiError> {
        let (app, now) = (self.app, self.now);
        self.p.bank_code = Some(code.to_owned());
        let payment_id = self.p.id.clone();
        let latest = payments::for_application(self.conn, &self.row.id)?.first().map(|x| x.id.clone())
            == Some(payment_id.clone());
        if latest && app.payment != application::PaymentStatus::Paid && app.state != application::State::Cancelled {
            let next = transition(app, Event::PaymentFailed { money_deducted: debited }, now, self.policy)?;
            if app.appointment == AppointmentStatus::Held
                && next.appointment == AppointmentStatus::None
                && let Some(s) = &app.slot
            {
                offices::release_seat(self.conn, &s.office_id, s.date, s.shift)?;
            }
            self.row.set_domain(&next);
            self.app_changed = true;
            let sms = notify::sms_message_to_applicant(
                self.pii,
                self.row,
                Template::PaymentResult,
                serde_json::json!({"success": false, "refund": debited}),
                Some(format!("payment:{payment_id}")),
                now,
            )?;
            self.messages.push(sms);
        }
        self.audit(action, serde_json::json!({"payment_id": payment_id, "code": code}));
        Ok(())
    }
}

/// Gives money back through the bank. Only when the bank confirms is the payment
/// `refunded` (and the application's refund settled); an unconfirmed reversal is tried
/// again with backoff, and past `payments.reversal_max_attempts` the payment becomes
/// `refund_failed`, listed for administrators with the bank's reason.
async fn reverse(state: &AppState, p: &PaymentRow) {
    // A fee the citizen withdrew: reversed only on its own day, else transferred.
    if p.status == PaymentStatus::RefundRequested {
        return super::withdrawal::reverse(state, p).await;
    }
    let Ok(gw) = gateway(state, &p.gateway) else { return };
    let Some(token) = p.token.clone() else { return };
    let answer = gw.reverse(&order_of(state, p), &token).await;
    let id = p.id.clone();
    let now = state.now();
    let policy = state.policy.clone();
    let max_attempts = i32::try_from(state.config.payments.reversal_max_attempts).unwrap_or(i32::MAX).max(1);
    let base_minutes = state.config.payments.reversal_retry_minutes;
    let failure = answer.as_ref().err().map(|e| e.to_string().chars().take(300).collect::<String>());
    let recorded = state
        .run_api(move |conn| {
            write_tx(conn, |conn| {
                let mut p = payments::find(conn, &id)?.ok_or(DbError::NotFound)?;
                if p.status != PaymentStatus::RefundPending {
                    return Ok(p.status);
                }
                let action = match &failure {
                    None => {
                        p.status = rules::transition(p.status, PaymentEvent::Refunded)?;
                        p.next_check_at = None;
                        p.reversal_error = None;
                        "payment_refunded"
                    }
                    Some(reason) => {
                        p.reversal_attempts += 1;
                        p.reversal_error = Some(reason.clone());
                        if p.reversal_attempts >= max_attempts {
                            p.status = rules::transition(p.status, PaymentEvent::ReversalAbandoned)?;
                            p.next_check_at = None;
                            "payment_refund_failed"
                        } else {
                            let wait = rules::reversal_retry_after(base_minutes, p.reversal_attempts);
                            p.next_check_at = Some((now + wait).naive_utc());
                            "payment_reversal_retry"
                        }
                    }
                };
                payments::update(conn, &mut p, now)?;
                let mut row = applications::find(conn, &p.application_id)?.ok_or(DbError::NotFound)?;
                if p.status == PaymentStatus::Refunded
                    && let Ok(next) = transition(&row.to_domain()?, Event::RefundSettled, now, &policy)
                {
                    row.set_domain(&next);
                    applications::update(conn, &mut row, now)?;
                }
                audit::append(
                    conn,
                    &Actor::system(),
                    action,
                    Some(&row.id),
                    Some(serde_json::json!({"payment_id": p.id, "attempts": p.reversal_attempts, "reason": p.reversal_error})),
                    now,
                )?;
                Ok::<_, ApiError>(p.status)
            })
        })
        .await;
    match (recorded, answer) {
        (Ok(PaymentStatus::RefundFailed), _) => {
            tracing::error!(payment_id = %p.id, "ALERT: the bank did not confirm a reversal after every retry; listed as refund_failed");
            state.metrics.event("payment_reversal", "refund_failed");
        }
        (Ok(PaymentStatus::Refunded), Ok(())) => state.metrics.event("payment_reversal", "refunded"),
        (Ok(_), Err(e)) => {
            tracing::warn!(payment_id = %p.id, error = %e, "reversal not confirmed; will retry");
            state.metrics.event("payment_reversal", "retry");
        }
        (Ok(_), Ok(())) => {}
        // The bank's answer could not be recorded: the payment stays due and is tried again
        // (banks treat a repeated reversal of the same token as already reversed).
        (Err(e), _) => tracing::warn!(payment_id = %p.id, error = %e, "reversal outcome not recorded; will retry"),
    }
}

/// The reconciliation job: payments stuck in `created`, `redirected`,
/// `callback_received` or `unknown` are verified with their bank and settled. Safe on
/// several instances: a payment is claimed by a versioned update before the bank is asked.
pub async fn reconcile(state: &AppState) -> Result<usize, ApiError> {
    let now = state.now();
    let due = state.run(move |conn| payments::due_for_reconciliation(conn, now, 100)).await?;
    let mut settled = 0;
    for p in due {
        // Claim: push its next check out; only one instance wins the versioned update.
        let id = p.id.clone();
        let claimed = state
            .run(move |conn| {
                let Some(mut row) = payments::find(conn, &id)? else { return Ok(false) };
                if !row.is_open() {
                    return Ok(false);
                }
                row.next_check_at = Some((now + Duration::minutes(2)).naive_utc());
                match payments::update(conn, &mut row, now) {
                    Ok(()) => Ok(true),
                    Err(DbError::Stale) => Ok(false),
                    Err(e) => Err(e),
                }
            })
            .await?;
        if !claimed {
            continue;
        }
        let (outcome, _, _) = verify_and_apply(state, &p.id).await;
        if outcome != Outcome::Pending {
            settled += 1;
        }
    }
    // Retry reversals of money we must give back.
    let reversals = state.run(move |conn| payments::due_reversals(conn, now, 50)).await?;
    for p in reversals {
        let id = p.id.clone();
        let claimed = state
            .run(move |conn| {
                let Some(mut row) = payments::find(conn, &id)? else { return Ok(None) };
                row.next_check_at = Some((now + Duration::minutes(10)).naive_utc());
                match payments::update(conn, &mut row, now) {
                    Ok(()) => Ok(Some(row)),
                    Err(DbError::Stale) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await?;
        if let Some(row) = claimed {
            reverse(state, &row).await;
        }
    }
    Ok(settled)
}
