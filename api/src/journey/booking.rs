//! Office, date and shift (seed 001 «انتخاب زمان و مکان», SPEC §3.8): availability,
//! holding a seat while the citizen pays, booking and rescheduling in one transaction,
//! releasing expired holds, and the delivery office.

use chrono::{DateTime, NaiveDate, Utc};
use domain::DomainError;
use domain::application::{AppointmentStatus, Event, Slot, booking_window, transition};
use domain::offices::{NeighbourhoodPrefix, Shift, ShiftSeats, SpecialNeeds, rank};
use persistence::applications::ApplicationRow;
use persistence::audit::{self, Actor};
use persistence::offices;

use super::{Target, mutate};
use crate::error::ApiError;
use crate::notify::{self, Template};
use crate::state::AppState;

/// One row of the availability list: an office in one shift.
#[derive(Debug, Clone)]
pub struct AvailabilityRow {
    pub office: offices::OfficeRow,
    pub shift: Shift,
    pub approved: u32,
    pub free: u32,
    pub free_percent: u8,
    /// 0–4: how many leading digits of the phone the office shares (4 = same neighbourhood).
    pub closeness: u8,
}

/// Offices of a city with seats on a date, filtered by special needs, nearest
/// neighbourhood first and then by free percentage (seed 001).
pub async fn availability(
    state: &AppState,
    date: NaiveDate,
    city_code: String,
    near: Option<NeighbourhoodPrefix>,
    needs: Option<SpecialNeeds>,
) -> Result<Vec<AvailabilityRow>, ApiError> {
    let (first, last) = booking_window(state.now(), &state.policy);
    if date < first || date > last {
        return Err(DomainError::DateOutsideBookingWindow { first, last }.into());
    }
    let rows = state.run(move |conn| offices::availability(conn, &city_code, date)).await?;
    let seats: Vec<ShiftSeats<String>> = rows
        .iter()
        .filter_map(|(o, s)| {
            let shift = Shift::parse(&s.shift)?;
            let approved = if s.closed { 0 } else { u32::try_from(s.capacity).unwrap_or(0) };
            Some(ShiftSeats {
                office_id: o.id.clone(),
                office_phone: o.phone.clone(),
                facilities: o.facilities(),
                shift,
                approved,
                free: approved.saturating_sub(u32::try_from(s.taken).unwrap_or(0)),
            })
        })
        .collect();
    let ranked = rank(seats, needs.as_ref(), near.as_ref());
    // By id, so a city with a thousand offices is not searched once per row.
    let mut by_id = std::collections::HashMap::with_capacity(rows.len());
    for (o, _) in &rows {
        by_id.entry(o.id.as_str()).or_insert(o);
    }
    Ok(ranked
        .into_iter()
        .filter_map(|r| {
            let office = (*by_id.get(r.seats.office_id.as_str())?).clone();
            Some(AvailabilityRow {
                free_percent: r.seats.free_percent(),
                office,
                shift: r.seats.shift,
                approved: r.seats.approved,
                free: r.seats.free,
                closeness: r.closeness,
            })
        })
        .collect())
}

/// Holds a seat (unpaid) or books it (paid): the new seat is taken and the old one
/// released in one transaction; the database refuses to oversell.
pub async fn take_slot(state: &AppState, target: Target, slot: Slot, actor: Actor) -> Result<ApplicationRow, ApiError> {
    let policy = state.policy.clone();
    let pii = state.pii.clone();
    mutate(state, target, move |conn, row, app, now| {
        let office = offices::find(conn, &slot.office_id)?
            .filter(|o| o.active)
            .ok_or(ApiError::Domain(DomainError::OfficeNotFound))?;
        if app.special_needs.is_some_and(|n| !n.suits(&office.facilities())) {
            return Err(DomainError::OfficeUnsuitable.into());
        }
        let same_seat = app.slot.as_ref() == Some(&slot)
            && matches!(app.appointment, AppointmentStatus::Held | AppointmentStatus::Booked);
        let mut next =
            transition(app, Event::TakeSlot { slot: slot.clone(), expires_at: now + policy.hold_ttl }, now, &policy)?;
        if same_seat {
            // Asking again for the seat one holds keeps it, without extending the hold.
            next.hold_expires_at = app.hold_expires_at;
        } else {
            offices::take_seat(conn, &slot.office_id, slot.date, slot.shift)?;
            if let Some(old) = app
                .slot
                .as_ref()
                .filter(|_| matches!(app.appointment, AppointmentStatus::Held | AppointmentStatus::Booked))
            {
                offices::release_seat(conn, &old.office_id, old.date, old.shift)?;
            }
        }
        row.set_domain(&next);
        let action =
            if next.appointment == AppointmentStatus::Booked { "appointment_booked" } else { "appointment_held" };
        audit::append(
            conn,
            &actor,
            action,
            Some(&row.id),
            Some(serde_json::json!({"office_id": slot.office_id, "date": slot.date, "shift": slot.shift.as_str()})),
            now,
        )?;
        if next.appointment == AppointmentStatus::Booked && !same_seat {
            notify::sms_to_applicant(
                conn,
                &pii,
                row,
                Template::Booking,
                booking_params(&office, &slot, row),
                None,
                now,
            )?;
        }
        Ok(())
    })
    .await
    .map(|((), row)| row)
}

pub fn booking_params(office: &offices::OfficeRow, slot: &Slot, row: &ApplicationRow) -> serde_json::Value {
    serde_json::json!({
        "office": office.name,
        "address": office.address,
        "date_jalali": domain::calendar::JalaliDate::from_gregorian(slot.date).map(|d| d.to_string()).unwrap_or_default(),
        "shift": slot.shift.as_str(),
        "tracking_code": row.tracking_code,
    })
}

/// Releases one expired hold; `false` when there was nothing to release (already
/// released, paid, or moved). Safe to race: the versioned update lets one caller win.
pub fn release_expired_hold(
    conn: &mut persistence::DbConn,
    id: &str,
    now: DateTime<Utc>,
    policy: &domain::Policy,
) -> Result<bool, ApiError> {
    let target = Target::Id(id.to_owned());
    let change = |conn: &mut persistence::DbConn,
                  row: &mut ApplicationRow,
                  app: &domain::application::Application,
                  now: DateTime<Utc>| {
        let expired = app.appointment == AppointmentStatus::Held && app.hold_expires_at.is_some_and(|t| t <= now);
        if !expired {
            return Ok(false);
        }
        let slot = app.slot.clone().ok_or_else(|| ApiError::internal("a held application without a slot"))?;
        let next = transition(app, Event::ReleaseHold, now, policy)?;
        offices::release_seat(conn, &slot.office_id, slot.date, slot.shift)?;
        row.set_domain(&next);
        audit::append(conn, &Actor::system(), "hold_expired", Some(&row.id), None, now)?;
        Ok(true)
    };
    super::mutate_in(conn, &target, now, &change).map(|(released, _)| released)
}

/// Changes the card-delivery office (until production starts).
pub async fn change_delivery_office(
    state: &AppState,
    target: Target,
    office_id: String,
    actor: Actor,
) -> Result<ApplicationRow, ApiError> {
    let policy = state.policy.clone();
    mutate(state, target, move |conn, row, app, now| {
        offices::find(conn, &office_id)?.filter(|o| o.active).ok_or(ApiError::Domain(DomainError::OfficeNotFound))?;
        let next = transition(app, Event::ChangeDeliveryOffice { office_id: office_id.clone() }, now, &policy)?;
        row.set_domain(&next);
        audit::append(
            conn,
            &actor,
            "delivery_office_changed",
            Some(&row.id),
            Some(serde_json::json!({"office_id": office_id})),
            now,
        )?;
        Ok(())
    })
    .await
    .map(|((), row)| row)
}
