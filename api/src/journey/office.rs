//! The enrollment office's side (docs/domain/back-office.md «تکمیل ثبت نام», «تحویل کارت»): the day's
//! appointments, check-in, completion, no-show and card delivery — each scoped to the
//! operator's office (another office's application is "not found"), each a domain
//! transition — and the card production line's events.

use chrono::{DateTime, Utc};
use domain::application::{Event, transition};
use domain::fees::{FeeKind, check_collected};
use domain::ids::PostalCode;
use domain::offices::OfficeKind;
use domain::record_ids::ApplicationId;
use domain::record_ids::ClientId;
use domain::record_ids::OfficeId;
use domain::{DomainError, Rials};
use persistence::audit::{self, Actor};
use persistence::back_office::{self, EnrollmentRow, ProductionEventRow};
use persistence::{DbError, PiiKind, offices};

use super::{Target, mutate};
use crate::error::{ApiCode, ApiError};
use crate::notify::{self, Template};
use crate::state::AppState;

fn not_found() -> ApiError {
    ApiError::Domain(DomainError::ApplicationNotFound)
}

/// Whether an application is this office's: booked there, or handed over there.
pub fn at_office(row: &persistence::applications::ApplicationRow, office_id: &OfficeId) -> bool {
    row.slot_office_id.as_ref() == Some(office_id)
        || row.to_domain().ok().is_some_and(|a| a.effective_delivery_office() == Some(office_id))
}

/// The newest application of a national code that is this office's ([`at_office`]); 404
/// `application_not_found` for an unknown code and another office's citizen alike. The
/// find is audited as `personal_data_viewed`, a miss as `application_search_missed`.
pub async fn find_by_national_id(
    state: &AppState,
    office_id: &OfficeId,
    national_id: &domain::ids::NationalId,
    actor: Actor,
) -> Result<persistence::applications::ApplicationRow, ApiError> {
    let hashes = state.pii.lookups(PiiKind::NationalId, national_id.as_str());
    let office = office_id.to_owned();
    let now = state.now();
    state
        .run_api(move |conn| {
            let found =
                persistence::applications::find_by_nid(conn, &hashes)?.into_iter().find(|r| at_office(r, &office));
            let details = Some(serde_json::json!({"by": "national_id"}));
            persistence::single_write(conn, |conn| match &found {
                Some(row) => audit::append(conn, &actor, "personal_data_viewed", Some(&row.id), details, now),
                None => audit::append(conn, &actor, "application_search_missed", None, details, now),
            })?;
            found.ok_or_else(not_found)
        })
        .await
}

/// Checks the citizen in: enrollment starts; edits and rescheduling stop.
pub async fn check_in(
    state: &AppState,
    office_id: &OfficeId,
    tracking: &str,
    actor: Actor,
) -> Result<persistence::applications::ApplicationRow, ApiError> {
    let policy = state.policy.clone();
    let office = office_id.to_owned();
    mutate(state, Target::TrackingCode(tracking.to_owned()), move |conn, row, app, now| {
        if row.slot_office_id.as_deref() != Some(office.as_str()) {
            return Err(not_found());
        }
        let next = transition(app, Event::CheckIn { office_id: office.clone() }, now, &policy)?;
        row.set_domain(&next);
        audit::append(conn, &actor, "checked_in", Some(&row.id), None, now)?;
        Ok(())
    })
    .await
    .map(|((), row)| row)
    .map_err(hide_other_office)
}

/// `application_not_found` for any lookup miss, so other offices' data stays invisible.
fn hide_other_office(e: ApiError) -> ApiError {
    match e {
        ApiError::Domain(DomainError::ApplicationNotFound) => not_found(),
        other => other,
    }
}

/// A biometric capture's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capture {
    Captured,
    Exception,
}

impl Capture {
    pub fn as_str(self) -> &'static str {
        match self {
            Capture::Captured => "captured",
            Capture::Exception => "exception",
        }
    }
}

/// What the office records at completion.
#[derive(Debug, Clone)]
pub struct Completion {
    pub postal_code: PostalCode,
    pub address: String,
    pub landline: String,
    pub documents_checked: bool,
    pub fingerprints: Capture,
    pub face: Capture,
    pub exception_note: Option<String>,
    pub capture_reference: String,
    pub counter_fee: Option<Rials>,
    /// The names in Latin letters, when the office entered them.
    pub latin: Option<persistence::back_office::LatinNames>,
}

/// Completes the enrollment: contact details, documents, biometric outcomes (never raw
/// biometrics) and — for counter and post offices — the fee collected (≤ 90,000 rials).
pub async fn complete(
    state: &AppState,
    office_id: &OfficeId,
    tracking: &str,
    c: Completion,
    actor: Actor,
) -> Result<persistence::applications::ApplicationRow, ApiError> {
    if !c.documents_checked {
        return Err(ApiError::field("documents_checked", DomainError::DocumentsNotChecked));
    }
    if (c.fingerprints == Capture::Exception || c.face == Capture::Exception)
        && c.exception_note.as_deref().is_none_or(str::is_empty)
    {
        return Err(ApiError::field("exception_note", ApiCode::Required));
    }
    let policy = state.policy.clone();
    let pii = state.pii.clone();
    let office = office_id.to_owned();
    mutate(state, Target::TrackingCode(tracking.to_owned()), move |conn, row, app, now| {
        if row.slot_office_id.as_deref() != Some(office.as_str()) {
            return Err(not_found());
        }
        let office_row = offices::find(conn, &office)?.ok_or_else(not_found)?;
        let kind = OfficeKind::parse(&office_row.kind).unwrap_or(OfficeKind::CivilRegistry);
        let fee = c.counter_fee.unwrap_or(Rials::ZERO);
        if fee > Rials::ZERO && !kind.collects_office_fees() {
            return Err(ApiError::field("counter_fee", DomainError::FeeNotApplicable));
        }
        check_collected(FeeKind::CounterEnrollment, fee)?;
        let next = transition(app, Event::CompleteEnrollment, now, &policy)?;
        row.set_domain(&next);
        back_office::insert_enrollment(
            conn,
            &EnrollmentRow {
                application_id: row.id.clone(),
                office_id: office.clone(),
                postal_code_enc: pii.seal(PiiKind::Secret, c.postal_code.as_str()),
                address_enc: pii.seal(PiiKind::Secret, &c.address),
                landline_enc: pii.seal(PiiKind::Secret, &c.landline),
                documents_checked: c.documents_checked,
                fingerprints: c.fingerprints.as_str().into(),
                face: c.face.as_str().into(),
                exception_note_enc: c.exception_note.as_deref().map(|n| pii.seal(PiiKind::Secret, n)),
                capture_reference: c.capture_reference.clone(),
                counter_fee: fee.value(),
                completed_by: actor.id.clone().unwrap_or_default(),
                completed_at: now.naive_utc(),
                delivered_by: None,
                delivered_at: None,
                delivery_office_id: None,
                delivery_fee: None,
                latin_names_enc: c.latin.as_ref().map(|l| l.seal(&pii)),
            },
        )?;
        audit::append(
            conn,
            &actor,
            "enrollment_completed",
            Some(&row.id),
            Some(serde_json::json!({"fingerprints": c.fingerprints.as_str(), "face": c.face.as_str(), "counter_fee": fee.value()})),
            now,
        )?;
        Ok(())
    })
    .await
    .map(|((), row)| row)
    .map_err(hide_other_office)
}

/// The citizen did not come: the appointment is missed and re-booking waits N days.
pub async fn no_show(
    state: &AppState,
    office_id: &OfficeId,
    tracking: &str,
    actor: Actor,
) -> Result<persistence::applications::ApplicationRow, ApiError> {
    let policy = state.policy.clone();
    let pii = state.pii.clone();
    let office = office_id.to_owned();
    mutate(state, Target::TrackingCode(tracking.to_owned()), move |conn, row, app, now| {
        if row.slot_office_id.as_deref() != Some(office.as_str()) {
            return Err(not_found());
        }
        let next = transition(app, Event::MarkNoShow, now, &policy)?;
        row.set_domain(&next);
        audit::append(conn, &actor, "no_show", Some(&row.id), None, now)?;
        let until = next.no_show_ban_until.map(|d| d.to_string());
        notify::sms_to_applicant(
            conn,
            &pii,
            row,
            Template::NoShow,
            serde_json::json!({"ban_until": until}),
            Some(format!("no_show:{}:{}", row.id, row.slot_date.map(|d| d.to_string()).unwrap_or_default())),
            now,
        )?;
        Ok(())
    })
    .await
    .map(|((), row)| row)
    .map_err(hide_other_office)
}

/// Hands the card over — only at the delivery office, only when the card is ready there
/// and the fingerprint matched the card chip (docs/domain/back-office.md «تحویل کارت»).
pub async fn deliver(
    state: &AppState,
    office_id: &OfficeId,
    tracking: &str,
    fingerprint_match: bool,
    delivery_fee: Option<Rials>,
    actor: Actor,
) -> Result<persistence::applications::ApplicationRow, ApiError> {
    let policy = state.policy.clone();
    let office = office_id.to_owned();
    mutate(state, Target::TrackingCode(tracking.to_owned()), move |conn, row, app, now| {
        if app.effective_delivery_office() != Some(&office) {
            return Err(not_found());
        }
        if !fingerprint_match {
            return Err(ApiError::Domain(DomainError::FingerprintMismatch));
        }
        let office_row = offices::find(conn, &office)?.ok_or_else(not_found)?;
        let kind = OfficeKind::parse(&office_row.kind).unwrap_or(OfficeKind::CivilRegistry);
        let fee = delivery_fee.unwrap_or(Rials::ZERO);
        if fee > Rials::ZERO && !kind.collects_office_fees() {
            return Err(ApiError::field("delivery_fee", DomainError::FeeNotApplicable));
        }
        check_collected(FeeKind::Delivery, fee)?;
        let next = transition(app, Event::Deliver { office_id: office.clone() }, now, &policy)?;
        row.set_domain(&next);
        let by = actor.id.clone().unwrap_or_default();
        back_office::record_delivery(
            conn,
            &row.id,
            &by,
            &office,
            kind.collects_office_fees().then_some(fee.value()),
            now,
        )?;
        audit::append(
            conn,
            &actor,
            "card_delivered",
            Some(&row.id),
            Some(serde_json::json!({"delivery_fee": fee.value()})),
            now,
        )?;
        Ok(())
    })
    .await
    .map(|((), row)| row)
    .map_err(hide_other_office)
}

/// An event from the card production line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProductionKind {
    ProductionStarted,
    CardProduced,
    Dispatched,
    ReadyForDelivery,
    Failed,
}

impl ProductionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProductionKind::ProductionStarted => "production_started",
            ProductionKind::CardProduced => "card_produced",
            ProductionKind::Dispatched => "dispatched",
            ProductionKind::ReadyForDelivery => "ready_for_delivery",
            ProductionKind::Failed => "failed",
        }
    }
}

/// Records a production event, idempotent per event id: the same event again answers
/// as the first time; an event id reused for another application is refused.
pub async fn production_event(
    state: &AppState,
    client_id: &ClientId,
    tracking: &str,
    event_id: String,
    kind: ProductionKind,
    office_id: Option<OfficeId>,
    note: Option<String>,
) -> Result<(persistence::applications::ApplicationRow, bool), ApiError> {
    let policy = state.policy.clone();
    let pii = state.pii.clone();
    let client = client_id.clone();
    let eid = event_id.clone();
    let actor = Actor { kind: "production", id: Some(client.to_string()), request_id: None, client_ip: None };
    let result = mutate(state, Target::TrackingCode(tracking.to_owned()), move |conn, row, app, now| {
        if let Some(seen) = back_office::production_event(conn, &eid)? {
            if seen.application_id != row.id {
                return Err(ApiError::Domain(DomainError::EventIdReused));
            }
            return Ok(false);
        }
        let event = match kind {
            ProductionKind::ProductionStarted => Event::ProductionStarted,
            ProductionKind::CardProduced => Event::CardProduced,
            ProductionKind::Dispatched => Event::Dispatched,
            ProductionKind::ReadyForDelivery => Event::ReadyForDelivery {
                office_id: office_id
                    .clone()
                    .or_else(|| app.effective_delivery_office().cloned())
                    .ok_or_else(|| ApiError::field("office_id", ApiCode::Required))?,
            },
            ProductionKind::Failed => Event::ProductionFailed,
        };
        if let Event::ReadyForDelivery { office_id } = &event
            && offices::find(conn, office_id)?.is_none()
        {
            return Err(DomainError::OfficeNotFound.into());
        }
        let next = transition(app, event, now, &policy)?;
        row.set_domain(&next);
        back_office::insert_production_event(
            conn,
            &ProductionEventRow {
                event_id: eid.clone(),
                application_id: row.id.clone(),
                client_id: client.clone(),
                kind: kind.as_str().into(),
                office_id: office_id.clone(),
                note: note.clone(),
                result_state: next.state.as_str().into(),
                received_at: now.naive_utc(),
            },
        )?;
        audit::append(conn, &actor, kind.as_str(), Some(&row.id), Some(serde_json::json!({"event_id": eid})), now)?;
        if kind == ProductionKind::ProductionStarted {
            // Out of the production queue: its lease is of no further use.
            persistence::production::release(conn, &row.id)?;
        }
        if kind == ProductionKind::ReadyForDelivery
            && let Some(o) = next.delivery_office_id.as_ref().map(|id| offices::find(conn, id)).transpose()?.flatten()
        {
            notify::sms_to_applicant(
                conn,
                &pii,
                row,
                Template::CardReady,
                serde_json::json!({"office": o.name, "address": o.address, "tracking_code": row.tracking_code}),
                Some(format!("card_ready:{}:{eid}", row.id)),
                now,
            )?;
        }
        Ok(true)
    })
    .await;
    match result {
        Ok((created, row)) => Ok((row, created)),
        Err(ApiError::Internal(m)) if m.contains("duplicate") => {
            Err(ApiError::Conflict { code: ApiCode::ConcurrentUpdate, retry_after: Some(1) })
        }
        Err(e) => Err(hide_other_office(e)),
    }
}

/// A staff read of an application's personal data, recorded in the audit log.
pub fn record_read(
    conn: &mut persistence::DbConn,
    actor: &Actor,
    application_id: &ApplicationId,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    audit::append(conn, actor, "personal_data_viewed", Some(application_id), None, now)
}
