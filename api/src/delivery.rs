//! The outbox worker (docs/domain/notifications.md): claims due messages, renders them, hands them to the
//! SMS or e-mail provider outside any transaction, and records the outcome with the
//! retry rule of `domain::delivery`. Requests only ever queue messages, so a slow or
//! failing provider slows this worker alone.
//!
//! Several instances may run it at once: a worker claims a batch under a token of its own
//! for [`CLAIM_LEASE`] (30 s, see `persistence::outbox::claim_due`) and pushes the lease
//! ahead every [`CLAIM_RENEW_EVERY`] while it sends, so a live worker keeps its messages
//! however long a batch takes, and a worker that died (`kill -9`, a lost machine) leaves
//! them to the others within the lease. A send is started only while the lease has more
//! than [`SEND_TIMEOUT`] left. A worker that dies between a send and its bookkeeping leaves
//! the message to be handed over again: each hand-over carries the message's own id
//! ([`local_id`], Kavenegar's `localid`), so a provider that de-duplicates — Kavenegar, the
//! sandbox phone — delivers one text. Messages that are only worth something for a while
//! (reset codes, credentials: [`domain::delivery::valid_for`]) are given up once expired,
//! never delivered late.

use std::time::{Duration as StdDuration, Instant};

use base64::Engine;
use domain::Lang;
use domain::delivery::{Attempt, CLAIM_LEASE, CLAIM_RENEW_EVERY, Status, after_attempt};
use domain::ids::Mobile;
use domain::ports::{Attachment, EmailMessage, SendError};
use domain::record_ids::AccountId;
use domain::record_ids::ApplicationId;
use domain::record_ids::OfficeId;
use futures_util::StreamExt;
use persistence::PiiKind;
use persistence::outbox::{self, Delivered, OutboxRow};
use serde::Deserialize;

use crate::error::ApiError;
use crate::notify::Template;
use crate::notify::templates::render;
use crate::state::AppState;

/// The template of pre-rendered e-mails (the receipt): sent exactly as queued.
pub const PRERENDERED_EMAIL: &str = "receipt";

/// Bound on one hand-over to a provider, whatever the adapter does (below the lease).
pub const SEND_TIMEOUT: chrono::Duration = chrono::Duration::seconds(20);

/// A run stops taking new batches after this long, so the other scheduled jobs are not
/// held up by a provider that times out; the next tick continues.
const RUN_BUDGET: StdDuration = StdDuration::from_secs(30);

/// One pass: delivers due messages batch by batch. Returns how many attempts were made.
pub async fn deliver(state: &AppState) -> Result<usize, ApiError> {
    let started = Instant::now();
    let limit = i64::from(state.config.outbox.batch_size.max(1));
    let parallel = state.config.outbox.parallel_sends.max(1) as usize;
    let mut attempted = 0;
    for _ in 0..state.config.outbox.max_batches_per_run.max(1) {
        if state.is_draining() {
            break;
        }
        let now = state.now();
        let lease_until = now + CLAIM_LEASE;
        // The process id first: an operator (and the cluster test) can tell whose claims
        // a dead instance left behind.
        let token = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4());
        let claim = token.clone();
        let batch = state.run(move |conn| outbox::claim_due(conn, now, lease_until, limit, &claim)).await?;
        let claimed = batch.len();
        if claimed == 0 {
            break;
        }
        let lease = std::sync::Mutex::new(lease_until);
        let sends = futures_util::stream::iter(batch)
            .map(|row| attempt(state, row, &lease))
            .buffer_unordered(parallel)
            .collect::<Vec<Result<bool, ApiError>>>();
        let outcomes = tokio::select! {
            outcomes = sends => outcomes,
            never = renew(state, &token, &lease) => match never {},
        };
        for outcome in outcomes {
            attempted += usize::from(outcome?);
        }
        if (claimed as i64) < limit || started.elapsed() > RUN_BUDGET {
            break;
        }
    }
    Ok(attempted)
}

/// Keeps a batch's claim alive while it is being sent (runs until dropped).
async fn renew(
    state: &AppState,
    token: &str,
    lease: &std::sync::Mutex<chrono::DateTime<chrono::Utc>>,
) -> std::convert::Infallible {
    let every = CLAIM_RENEW_EVERY.to_std().unwrap_or(StdDuration::from_secs(5));
    loop {
        tokio::time::sleep(every).await;
        let until = state.now() + CLAIM_LEASE;
        let token = token.to_owned();
        match state.run(move |conn| outbox::renew_claim(conn, &token, until)).await {
            Ok(_) => *lease.lock().unwrap_or_else(|e| e.into_inner()) = until,
            Err(e) => tracing::warn!(error = %e, "could not renew an outbox claim"),
        }
    }
}

/// The message's id as the provider's de-duplication id: a decimal number (Kavenegar's
/// `localid` is numeric), the same for every hand-over of the message.
pub fn local_id(message_id: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(message_id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) >> 1).to_string()
}

/// Sends one claimed message and records the outcome. `false` when it was left alone
/// because its claim would run out before a send could finish (it is due again then).
async fn attempt(
    state: &AppState,
    row: OutboxRow,
    lease: &std::sync::Mutex<chrono::DateTime<chrono::Utc>>,
) -> Result<bool, ApiError> {
    let lease_until = *lease.lock().unwrap_or_else(|e| e.into_inner());
    if state.now() + SEND_TIMEOUT >= lease_until {
        return Ok(false);
    }
    let timeout = SEND_TIMEOUT.to_std().unwrap_or(StdDuration::from_secs(20));
    let (outcome, expired) = if domain::delivery::expired(&row.template, row.created_at.and_utc(), state.now()) {
        (Err(SendError::Permanent("expired before delivery".into())), "expired")
    } else if !still_wanted(state, &row).await? {
        (Err(SendError::Permanent("withdrawn: the appointment was moved or cancelled".into())), "withdrawn")
    } else {
        let outcome = match tokio::time::timeout(timeout, send(state, &row)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(SendError::Temporary("provider timed out".into())),
        };
        (outcome, "")
    };
    let now = state.now();
    let (kind, provider_id, error) = match outcome {
        Ok(id) => (Attempt::Sent, Some(id), None),
        Err(SendError::Temporary(e)) => (Attempt::Temporary, None, Some(e)),
        Err(SendError::Permanent(e)) => (Attempt::Permanent, None, Some(e)),
    };
    let next = after_attempt(row.attempts, kind, now);
    let outcome_label = if expired.is_empty() { next.status.as_str() } else { expired };
    state.metrics.event(&format!("outbox_{}", row.channel), outcome_label);
    if next.status == Status::FailedPermanent {
        tracing::warn!(id = %row.id, template = %row.template, error = ?error, "message given up");
    }
    let done = Delivered { status: next.status, attempts: next.attempts, retry_at: next.retry_at, provider_id, error };
    // E-folder credentials that will never arrive: the account is marked, so the next
    // registration attempt points to credentials recovery (issue 19 item 6).
    let undelivered = (next.status == Status::FailedPermanent).then(|| credentials_account(&row)).flatten();
    if undelivered.is_some() {
        state.metrics.event("efolder_credentials", "undelivered");
    }
    let kept = state
        .run(move |conn| {
            let then = undelivered.map(|(id, version)| {
                move |conn: &mut persistence::DbConn| {
                    persistence::efolder::mark_credentials_undelivered(conn, &id, version, now.naive_utc()).map(|_| ())
                }
            });
            outbox::finish_then(conn, &row, &done, now, then)
        })
        .await?;
    if !kept {
        tracing::warn!("an outbox claim ran out during a send; the outcome was not recorded");
    }
    Ok(true)
}

/// The e-folder account a credentials SMS was for, and the account's token version the
/// credentials belong to: its dedupe key is `efolder-credentials:<account>` (registration,
/// version 0) or `efolder-credentials:<account>:recovery:<version>`.
fn credentials_account(row: &OutboxRow) -> Option<(AccountId, i32)> {
    if row.template != crate::notify::Template::EfolderCredentials.as_str() {
        return None;
    }
    let mut parts = row.dedupe_key.as_deref()?.strip_prefix("efolder-credentials:")?.split(':');
    let id = AccountId::from(parts.next().filter(|id| !id.is_empty())?);
    let version = match (parts.next(), parts.next()) {
        (None, _) => 0,
        (Some("recovery"), Some(v)) => v.parse().ok()?,
        _ => return None,
    };
    Some((id, version))
}

/// Whether a message still says something true: an appointment reminder only while its
/// application is still booked on the very seat it names (a moved or cancelled booking's
/// reminder is withdrawn, never sent). Other messages always are.
async fn still_wanted(state: &AppState, row: &OutboxRow) -> Result<bool, ApiError> {
    if row.template != Template::Reminder.as_str() {
        return Ok(true);
    }
    let Some(application_id) = row.application_id.clone() else { return Ok(true) };
    let params = state.pii.open(PiiKind::Secret, &row.params_enc)?;
    let Some(booked) = serde_json::from_str::<serde_json::Value>(&params).ok().map(|p| p["slot"].clone()) else {
        return Ok(true);
    };
    let application = state.run(move |conn| persistence::applications::find(conn, &application_id)).await?;
    let Some(app) = application.map(|r| r.to_domain()).transpose()? else { return Ok(false) };
    Ok(app.appointment == domain::application::AppointmentStatus::Booked
        && app.slot.as_ref().is_some_and(|s| booked == slot_param(s)))
}

/// A seat as a reminder's parameters name it.
fn slot_param(slot: &domain::application::Slot) -> serde_json::Value {
    serde_json::json!({"office_id": slot.office_id, "date": slot.date, "shift": slot.shift.as_str()})
}

/// Renders and hands one message to its provider.
async fn send(state: &AppState, row: &OutboxRow) -> Result<String, SendError> {
    let kind = if row.channel == "email" { PiiKind::Email } else { PiiKind::Mobile };
    // A key that cannot open the values is a configuration fault an operator can fix.
    let recipient = state.pii.open(kind, &row.recipient_enc).map_err(|e| SendError::Temporary(e.to_string()))?;
    let params = state.pii.open(PiiKind::Secret, &row.params_enc).map_err(|e| SendError::Temporary(e.to_string()))?;
    let params: serde_json::Value =
        serde_json::from_str(&params).map_err(|_| SendError::Permanent("parameters are not JSON".into()))?;
    let lang = if row.lang == "en" { Lang::En } else { Lang::Fa };
    match row.channel.as_str() {
        "sms" => {
            let to = Mobile::parse(&recipient).map_err(|_| SendError::Permanent("invalid mobile".into()))?;
            let template = Template::parse(&row.template)
                .ok_or_else(|| SendError::Permanent(format!("unknown template {}", row.template)))?;
            let text = render(template, lang, &params).map_err(|e| SendError::Permanent(e.to_string()))?.text;
            state.sms.send_once(&to, &text, &local_id(&row.id)).await
        }
        "email" => {
            let message = if row.template == PRERENDERED_EMAIL {
                prerendered(recipient, params)?
            } else {
                let template = Template::parse(&row.template)
                    .ok_or_else(|| SendError::Permanent(format!("unknown template {}", row.template)))?;
                let r = render(template, lang, &params).map_err(|e| SendError::Permanent(e.to_string()))?;
                EmailMessage { to: recipient, subject: r.subject, text: r.text, html: None, attachments: vec![] }
            };
            state.email.send(&message).await
        }
        other => Err(SendError::Permanent(format!("unknown channel {other}"))),
    }
}

/// The parameters of a pre-rendered e-mail.
#[derive(Deserialize)]
struct Prerendered {
    subject: String,
    text: String,
    html: Option<String>,
    #[serde(default)]
    attachments: Vec<PrerenderedAttachment>,
}

#[derive(Deserialize)]
struct PrerenderedAttachment {
    filename: String,
    content_type: String,
    base64: String,
}

fn prerendered(to: String, params: serde_json::Value) -> Result<EmailMessage, SendError> {
    let bad = |what: &str| SendError::Permanent(format!("pre-rendered e-mail: {what}"));
    let p: Prerendered = serde_json::from_value(params).map_err(|e| bad(&e.to_string()))?;
    let attachments = p
        .attachments
        .into_iter()
        .map(|a| {
            let bytes =
                base64::engine::general_purpose::STANDARD.decode(a.base64.as_bytes()).map_err(|_| bad("base64"))?;
            Ok(Attachment { filename: a.filename, content_type: a.content_type, bytes })
        })
        .collect::<Result<Vec<_>, SendError>>()?;
    Ok(EmailMessage { to, subject: p.subject, text: p.text, html: p.html, attachments })
}

/// Queues a `reminder` SMS for every appointment booked for tomorrow (Tehran), on the
/// evening before (18:00–23:00, [`domain::delivery::reminder_day`]). Safe to run often and
/// on several instances: the dedupe key `reminder:<application>:<date>:<shift>:<office>`
/// queues one reminder per booking. A booking moved or cancelled after its reminder was
/// queued has it withdrawn at delivery ([`still_wanted`]).
pub async fn queue_reminders(state: &AppState) -> Result<usize, ApiError> {
    let now = state.now();
    let Some(day) = domain::delivery::reminder_day(now) else { return Ok(0) };
    let mut queued = 0;
    let mut after: Option<ApplicationId> = None;
    loop {
        let pii = state.pii.clone();
        let cursor = after.clone();
        let (n, last, page) = state
            .run_api(move |conn| {
                let rows =
                    persistence::applications::booked_on(conn, day, cursor.as_ref().map(ApplicationId::as_str), 500)?;
                let office_ids: Vec<OfficeId> = rows.iter().filter_map(|r| r.slot_office_id.clone()).collect();
                let offices = persistence::offices::find_many(conn, &office_ids)?;
                let queued = persistence::write_tx(conn, |conn| {
                    let mut queued = 0;
                    for row in &rows {
                        let Some(slot) = row.to_domain()?.slot else { continue };
                        let Some(office) = offices.iter().find(|o| o.id == slot.office_id) else { continue };
                        let mut params = crate::journey::booking::booking_params(office, &slot, row);
                        params["slot"] = slot_param(&slot);
                        let key = format!("reminder:{}:{}:{}:{}", row.id, day, slot.shift.as_str(), slot.office_id);
                        let sent = crate::notify::sms_to_applicant(
                            conn,
                            &pii,
                            row,
                            Template::Reminder,
                            params,
                            Some(key),
                            now,
                        )?;
                        queued += usize::from(sent);
                    }
                    Ok::<_, ApiError>(queued)
                })?;
                Ok((queued, rows.last().map(|r| r.id.clone()), rows.len()))
            })
            .await?;
        queued += n;
        if page < 500 {
            break;
        }
        after = last;
    }
    Ok(queued)
}

/// Queues one `card_uncollected` SMS for each card that has waited
/// [`domain::delivery::UNCOLLECTED_AFTER_DAYS`] (30) days at its delivery office since
/// `ready_for_delivery`, in the daytime (Tehran). Once per application (dedupe key
/// `card_uncollected:<application>`); a card handed over meanwhile is no longer ready.
pub async fn queue_uncollected(state: &AppState) -> Result<usize, ApiError> {
    let now = state.now();
    if !domain::delivery::daytime(now) {
        return Ok(0);
    }
    let ready_before = (now - chrono::Duration::days(domain::delivery::UNCOLLECTED_AFTER_DAYS)).naive_utc();
    let mut queued = 0;
    loop {
        let pii = state.pii.clone();
        let (n, page) = state
            .run_api(move |conn| {
                let waiting = persistence::production::uncollected(conn, ready_before, 200)?;
                let ids: Vec<ApplicationId> = waiting.iter().map(|(id, _)| id.clone()).collect();
                let rows = persistence::applications::find_many(conn, &ids)?;
                let office_ids: Vec<OfficeId> = rows.iter().filter_map(|r| r.delivery_office_id.clone()).collect();
                let offices = persistence::offices::find_many(conn, &office_ids)?;
                let queued = persistence::write_tx(conn, |conn| {
                    let mut queued = 0;
                    for row in &rows {
                        let Some((_, ready_at)) = waiting.iter().find(|(id, _)| *id == row.id) else { continue };
                        let office =
                            row.delivery_office_id.as_ref().and_then(|id| offices.iter().find(|o| o.id == *id));
                        let days = (now.naive_utc() - *ready_at).num_days();
                        let params = serde_json::json!({
                            "office": office.map(|o| o.name.clone()),
                            "address": office.map(|o| o.address.clone()),
                            "days": days,
                            "tracking_code": row.tracking_code,
                        });
                        let key = format!("card_uncollected:{}", row.id);
                        let sent = crate::notify::sms_to_applicant(
                            conn,
                            &pii,
                            row,
                            Template::CardUncollected,
                            params,
                            Some(key),
                            now,
                        )?;
                        queued += usize::from(sent);
                    }
                    Ok::<_, ApiError>(queued)
                })?;
                Ok((queued, waiting.len()))
            })
            .await?;
        queued += n;
        if page < 200 || n == 0 {
            break;
        }
    }
    Ok(queued)
}
