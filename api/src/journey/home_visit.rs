//! Home visits (docs/domain/booking.md «شناسایی شهروندان نیازمند به تکمیل ثبت نام خاص»: «شهروندانی که به
//! پرسش نخست پاسخ خیر می دهند ناگزیر خواهند بود زمان بیشتری در نوبت بمانند»). A citizen who
//! cannot leave home gives the address to visit before paying; the home-visit offices of
//! their city see them in a queue once paid, and one schedules the visit on a date and shift
//! of its own capacity; then check-in and completion happen as at an office. Rules:
//! [docs/domain/booking.md](../../../docs/domain/booking.md#home-visits).

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use domain::DomainError;
use domain::application::{AppointmentStatus, Event, Slot, transition};
use domain::ids::{Landline, PostalCode};
use domain::offices::Shift;
use domain::record_ids::OfficeId;
use persistence::applications::ApplicationRow;
use persistence::audit::{self, Actor};
use persistence::home_visits::{self, HomeVisitDetails, HomeVisitRow, QueueStatus};
use persistence::offices::{self, OfficeRow};

use super::{Target, mutate};
use crate::error::{ApiCode, ApiError};
use crate::notify::{self, Template};
use crate::state::AppState;

/// The address of a visit, as given.
#[derive(Debug, Clone)]
pub struct Address {
    pub address: String,
    pub postal_code: PostalCode,
    pub landline: Landline,
    pub notes: Option<String>,
}

/// Gives or changes the address a home visit goes to (before payment, and after it until
/// the visit is scheduled). Its landline's area code files it under a city.
pub async fn set_address(
    state: &AppState,
    target: Target,
    a: Address,
    actor: Actor,
) -> Result<ApplicationRow, ApiError> {
    let policy = state.policy.clone();
    let pii = state.pii.clone();
    mutate(state, target, move |conn, row, app, now| {
        let next = transition(app, Event::SetHomeVisitAddress, now, &policy)?;
        row.set_domain(&next);
        let details = HomeVisitDetails {
            address: a.address.clone(),
            postal_code: a.postal_code.as_str().to_owned(),
            landline: a.landline.as_str().to_owned(),
            notes: a.notes.clone(),
        };
        home_visits::save(conn, &pii, &row.id, a.landline.city_code(), &details, now)?;
        audit::append(
            conn,
            &actor,
            "home_visit_address_set",
            Some(&row.id),
            Some(serde_json::json!({"city_code": a.landline.city_code()})),
            now,
        )?;
        Ok(())
    })
    .await
    .map(|((), row)| row)
}

/// An active office that makes home visits, or 409 `office_no_home_visits`.
fn home_visit_office(conn: &mut persistence::DbConn, office_id: &OfficeId) -> Result<OfficeRow, ApiError> {
    offices::find(conn, office_id)?
        .filter(|o| o.active && o.home_visits)
        .ok_or(ApiError::Domain(DomainError::OfficeNoHomeVisits))
}

/// A row of the queue: the visit and its application.
pub type QueueRow = (HomeVisitRow, ApplicationRow);

/// The cursor of a queue row: its payment time (microseconds) and application id.
pub fn cursor_of(row: &QueueRow) -> String {
    format!("{}.{}", row.1.paid_at.map_or(0, |t| t.and_utc().timestamp_micros()), row.1.id)
}

fn parse_cursor(cursor: &str) -> Result<(NaiveDateTime, String), ApiError> {
    let bad = || ApiError::field("cursor", ApiCode::Invalid);
    let (micros, id) = cursor.split_once('.').ok_or_else(bad)?;
    let at = micros.parse::<i64>().ok().and_then(DateTime::from_timestamp_micros).ok_or_else(bad)?;
    Ok((at.naive_utc(), id.to_owned()))
}

/// One page of the office's queue, oldest payment first. Every row shown is a staff read
/// of personal data, recorded by `read`.
pub async fn queue<F>(
    state: &AppState,
    office_id: &OfficeId,
    status: QueueStatus,
    cursor: Option<String>,
    fetch: i64,
    read: F,
) -> Result<(OfficeRow, Vec<QueueRow>), ApiError>
where
    F: Fn(&mut persistence::DbConn, &ApplicationRow) -> Result<(), ApiError> + Send + 'static,
{
    let office_id = office_id.to_owned();
    let after = cursor.as_deref().map(parse_cursor).transpose()?;
    state
        .run_api(move |conn| {
            let office = home_visit_office(conn, &office_id)?;
            let rows = home_visits::queue(conn, &office.city_code, &office.id, status, after, fetch)?;
            for (_, app) in rows.iter().take(usize::try_from(fetch - 1).unwrap_or(0)) {
                read(conn, app)?;
            }
            Ok((office, rows))
        })
        .await
}

/// Schedules (or moves) a visit: a seat of the office's own capacity on that date and
/// shift, taken in the same transaction as the application's change, so visits never
/// oversell a shift either. Only a home-visit office of the citizen's city sees a waiting
/// visit; a scheduled one belongs to its office (any other: 404). The citizen gets an SMS.
pub async fn schedule(
    state: &AppState,
    office_id: &OfficeId,
    tracking_code: &str,
    date: NaiveDate,
    shift: Shift,
    actor: Actor,
) -> Result<(ApplicationRow, OfficeRow), ApiError> {
    let policy = state.policy.clone();
    let pii = state.pii.clone();
    let office_id = office_id.clone();
    let not_found = || ApiError::Domain(DomainError::ApplicationNotFound);
    let result = mutate(state, Target::TrackingCode(tracking_code.to_owned()), move |conn, row, app, now| {
        let office = offices::find(conn, &office_id)?.filter(|o| o.active && o.home_visits).ok_or_else(not_found)?;
        let visit = home_visits::find(conn, &row.id)?.ok_or_else(not_found)?;
        let elsewhere =
            app.appointment == AppointmentStatus::Booked && app.slot.as_ref().is_some_and(|s| s.office_id != office.id);
        if !app.home_visit() || visit.city_code != office.city_code || elsewhere {
            return Err(not_found());
        }
        let slot = Slot { office_id: office.id.clone(), date, shift };
        let same = app.appointment == AppointmentStatus::Booked && app.slot.as_ref() == Some(&slot);
        let next = transition(app, Event::ScheduleHomeVisit { slot: slot.clone() }, now, &policy)?;
        row.set_domain(&next);
        let by = actor.id.clone().unwrap_or_default();
        home_visits::mark_scheduled(conn, &row.id, &by, now)?;
        audit::append(
            conn,
            &actor,
            "home_visit_scheduled",
            Some(&row.id),
            Some(serde_json::json!({"office_id": office.id, "date": date, "shift": shift.as_str()})),
            now,
        )?;
        if !same {
            notify::sms_to_applicant(
                conn,
                &pii,
                row,
                Template::HomeVisitScheduled,
                super::booking::booking_params(&office, &slot, row),
                Some(format!("home_visit:{}:{date}:{}", row.id, shift.as_str())),
                now,
            )?;
            // The seat counters last, as in booking: the contested row is locked briefly.
            // A booked visit, or the seat offered after its office closed, is given back.
            if let Some(old) = app.slot.as_ref().filter(|_| app.appointment.holds_seat()) {
                offices::release_seat(conn, &old.office_id, old.date, old.shift)?;
            }
            offices::take_seat(conn, &slot.office_id, slot.date, slot.shift)?;
        }
        Ok(office)
    })
    .await;
    result.map(|(office, row)| (row, office))
}

/// The sealed details of a visit, opened.
pub fn details(state: &AppState, visit: &HomeVisitRow) -> Result<HomeVisitDetails, ApiError> {
    Ok(visit.details(&state.pii)?)
}

/// The visit of an application, if it has one (for views and receipts).
pub fn find(conn: &mut persistence::DbConn, row: &ApplicationRow) -> Result<Option<HomeVisitRow>, ApiError> {
    Ok(home_visits::for_application(conn, row)?)
}

/// When the application entered the queue (its payment).
pub fn waiting_since(row: &ApplicationRow) -> Option<DateTime<Utc>> {
    row.paid_at.map(|t| t.and_utc())
}
