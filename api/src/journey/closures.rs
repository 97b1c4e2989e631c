//! Closures and the citizens they displace (issue 19 item 2; docs/domain/booking.md,
//! "Closures"). When an office will not receive a citizen on their booked day — the day or
//! shift closed, a national holiday, the office taken out of service — the citizen is not a
//! no-show: the booking goes, the payment stays, no ban applies, and the nearest free seat
//! is kept for them for a few days (`Policy::closure_offer_days`), with an SMS.
//!
//! The administrator's action closes the slots first (its own transaction); then each
//! affected application is moved in a transaction of its own (seat released, seat offered,
//! state, audit entry, SMS — all or nothing). The same sweep runs as the job
//! `displace_closed_bookings`, so a booking the request did not reach (a crash, a payment
//! that completed for a seat held on a day closed meanwhile) is moved within a tick.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use domain::DomainError;
use domain::application::{
    Application, AppointmentStatus, Event, Slot, State, booking_window, offer_until, pick_offer, transition,
};
use domain::calendar::{JalaliDate, tehran_date};
use domain::offices::Shift;
use domain::record_ids::ApplicationId;
use domain::record_ids::OfficeId;
use persistence::applications::{self, DisplacedScope};
use persistence::audit::{self, Actor};
use persistence::offices::{self, OfficeFilter, OfficeRow};
use persistence::{DbConn, DbError};

use super::{Target, mutate};
use crate::error::ApiError;
use crate::notify::{self, Template};
use crate::state::AppState;

/// How many displaced applications one query hands over.
const BATCH: i64 = 200;

/// Moves every application in `scope` whose booked (or offered) seat the office will not
/// honour; returns how many were moved (and told).
pub async fn displace(state: &AppState, scope: DisplacedScope) -> Result<usize, ApiError> {
    let mut moved = 0;
    loop {
        let today = tehran_date(state.now());
        let s = scope.clone();
        let ids = state.run(move |conn| applications::displaced(conn, &s, today, BATCH)).await?;
        let mut progressed = 0;
        for id in ids {
            if displace_one(state, id).await? {
                progressed += 1;
            }
        }
        moved += progressed;
        // Nothing left, or only applications another writer is already moving.
        if progressed == 0 {
            break;
        }
    }
    if moved > 0 {
        state.metrics.event("closure", "displaced");
    }
    Ok(moved)
}

/// Moves one application, if its seat is still one the office will not honour.
async fn displace_one(state: &AppState, id: ApplicationId) -> Result<bool, ApiError> {
    let (policy, pii) = (state.policy.clone(), state.pii.clone());
    let (moved, _) = mutate(state, Target::Id(id), move |conn, row, app, now| {
        let seated = matches!(app.appointment, AppointmentStatus::Booked | AppointmentStatus::Offered);
        let Some(lost) = app.slot.clone().filter(|_| seated && app.state == State::Registered) else {
            return Ok(false);
        };
        let office = offices::find(conn, &lost.office_id)?;
        let closed = offices::slot(conn, &lost.office_id, lost.date, lost.shift)?.is_some_and(|s| s.closed);
        let out_of_service = office.as_ref().is_some_and(|o| !o.active) && lost.date >= tehran_date(now);
        if !closed && !out_of_service {
            return Ok(false);
        }
        // The lost seat first; the offered one (a contested row) last.
        offices::release_seat(conn, &lost.office_id, lost.date, lost.shift)?;
        let (first, last) = booking_window(now, &policy);
        let offer = offer_seat(conn, app, &lost, office.as_ref(), first, last)?;
        let kept = offer.map(|(slot, office)| {
            let until = offer_until(now, slot.date, &policy);
            (slot, until, office)
        });
        let next = transition(
            app,
            Event::OfficeClosed { offer: kept.as_ref().map(|(slot, until, _)| (slot.clone(), *until)) },
            now,
            &policy,
        )?;
        row.set_domain(&next);
        audit::append(
            conn,
            &Actor::system(),
            "appointment_displaced",
            Some(&row.id),
            Some(serde_json::json!({
                "lost": {"office_id": lost.office_id, "date": lost.date, "shift": lost.shift.as_str()},
                "offered": kept.as_ref().map(|(s, until, _)| serde_json::json!({
                    "office_id": s.office_id, "date": s.date, "shift": s.shift.as_str(), "until": until,
                })),
                "reason": if closed { "closed" } else { "office_inactive" },
            })),
            now,
        )?;
        notify::sms_to_applicant(
            conn,
            &pii,
            row,
            Template::OfficeClosed,
            sms_params(kept.as_ref(), &lost, row.tracking_code.as_deref()),
            Some(format!("office_closed:{}:{}:{}", row.id, lost.date, lost.shift.as_str())),
            now,
        )?;
        Ok(true)
    })
    .await?;
    if moved {
        state.full_slots.clear();
    }
    Ok(moved)
}

/// Takes the seat offered to a displaced citizen (`pick_offer`): the lost office's earliest
/// free seat if it still works and suits them, else the earliest at another active office
/// of the city that suits their special-needs answers. `None` when the city has no free
/// seat in the booking window.
fn offer_seat(
    conn: &mut DbConn,
    app: &Application,
    lost: &Slot,
    office: Option<&OfficeRow>,
    first: NaiveDate,
    last: NaiveDate,
) -> Result<Option<(Slot, OfficeRow)>, ApiError> {
    let suits = |o: &OfficeRow| o.active && app.special_needs.is_none_or(|n| n.suits(&o.facilities()));
    let Some(office) = office else { return Ok(None) };
    let mut pools: Vec<Vec<OfficeRow>> = Vec::new();
    if suits(office) {
        pools.push(vec![office.clone()]);
    }
    let city = OfficeFilter { city_code: Some(office.city_code.clone()), active: Some(true), after_code: None };
    pools.push(offices::list(conn, &city, 1000)?.into_iter().filter(|o| o.id != office.id && suits(o)).collect());
    for pool in pools.into_iter().filter(|p| !p.is_empty()) {
        let ids: Vec<OfficeId> = pool.iter().map(|o| o.id.clone()).collect();
        let mut free: Vec<Slot> = offices::free_slots(conn, &ids, first, last, 50)?
            .into_iter()
            .filter_map(|s| Some(Slot { office_id: s.office_id, date: s.date, shift: Shift::parse(&s.shift)? }))
            .collect();
        while let Some(pick) = pick_offer(lost, &free).cloned() {
            match offices::take_seat(conn, &pick.office_id, pick.date, pick.shift) {
                Ok(()) => {
                    let o = pool.iter().find(|o| o.id == pick.office_id).cloned().expect("picked from the pool");
                    return Ok(Some((pick, o)));
                }
                // Taken meanwhile: the next nearest.
                Err(DbError::Domain(DomainError::SlotFull | DomainError::SlotClosed)) => free.retain(|s| s != &pick),
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(None)
}

fn sms_params(
    offer: Option<&(Slot, DateTime<Utc>, OfficeRow)>,
    lost: &Slot,
    tracking: Option<&str>,
) -> serde_json::Value {
    let jalali = |d: NaiveDate| JalaliDate::from_gregorian(d).map(|j| j.to_string()).unwrap_or_default();
    let mut params = serde_json::json!({"lost_date_jalali": jalali(lost.date), "tracking_code": tracking});
    if let Some((slot, until, office)) = offer {
        params["office"] = office.name.clone().into();
        params["date_jalali"] = jalali(slot.date).into();
        params["shift"] = slot.shift.as_str().into();
        // The last day the seat is kept.
        params["until_jalali"] = jalali(tehran_date(*until - Duration::seconds(1))).into();
    }
    params
}

/// The sweep as a job: every application the offices will not honour, everywhere.
pub async fn displace_everywhere(state: &AppState) -> Result<usize, ApiError> {
    displace(state, DisplacedScope::default()).await
}
