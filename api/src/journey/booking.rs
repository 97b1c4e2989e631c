//! Office, date and shift (docs/domain/booking.md «انتخاب زمان و مکان», docs/domain/booking.md): availability,
//! holding a seat while the citizen pays, booking and rescheduling in one transaction,
//! releasing expired holds, and the delivery office.

use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use domain::DomainError;
use domain::application::{AppointmentStatus, Event, Slot, booking_window, transition};
use domain::offices::{NeighbourhoodPrefix, Shift, ShiftSeats, SpecialNeeds, rank};
use domain::record_ids::ApplicationId;
use domain::record_ids::OfficeId;
use persistence::applications::ApplicationRow;
use persistence::audit::{self, Actor};
use persistence::offices;

use super::{Target, mutate};
use crate::auth::CitizenToken;
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

/// One page of the availability list and what it was computed with.
#[derive(Debug, Clone)]
pub struct AvailabilityPage {
    pub rows: Vec<AvailabilityRow>,
    /// Rows in the whole ranked list (the page is `offset..offset + limit` of it).
    pub total: usize,
    /// Whether the citizen's special needs were applied (a citizen was given).
    pub filtered_by_special_needs: bool,
    /// The citizen cannot leave home: no office is offered.
    pub home_visit: bool,
}

/// Offices of a city, a province or both (of one kind, if given) with seats on a date,
/// filtered by the citizen's special needs (when a citizen is given), nearest
/// neighbourhood first and then by free percentage (docs/domain/booking.md); the rows
/// `offset..offset + limit` of that list. One pooled connection: the citizen's needs,
/// every shift of the scope (only what ranking needs), then the page's offices.
pub async fn availability(
    state: &AppState,
    date: NaiveDate,
    scope: offices::SeatScope,
    near: Option<NeighbourhoodPrefix>,
    citizen: Option<CitizenToken>,
    offset: usize,
    limit: usize,
) -> Result<AvailabilityPage, ApiError> {
    let (first, last) = booking_window(state.now(), &state.policy);
    if date < first || date > last {
        return Err(DomainError::DateOutsideBookingWindow { first, last }.into());
    }
    let catalog = state.catalog.clone();
    let metrics = state.metrics.clone();
    let now = state.now();
    state
        .run_api(move |conn| {
            // The citizen's application first: it checks the session too.
            let needs: Option<Option<SpecialNeeds>> = match citizen {
                Some(token) => {
                    let (_, row) = token.current_application(conn, now, false)?;
                    Some(row.map(|r| r.to_domain()).transpose()?.and_then(|a| a.special_needs))
                }
                None => None,
            };
            // A province no office lies in is a wrong value, not an empty list (issue 20).
            if let Some(p) = &scope.province
                && !offices::province_exists(conn, p)?
            {
                return Err(ApiError::field("province", DomainError::ProvinceUnknown));
            }
            let filtered_by_special_needs = needs.is_some();
            // Needs every office serves filter nothing: such a citizen gets the list
            // everyone gets (and the indexed path below).
            let needs = needs.flatten().filter(SpecialNeeds::narrow_the_offices);
            if needs.is_some_and(|n| n.needs_home_visit()) {
                return Ok(AvailabilityPage {
                    rows: Vec::new(),
                    total: 0,
                    filtered_by_special_needs,
                    home_visit: true,
                });
            }
            let catalog = catalog.get(conn)?;
            // One city, no neighbourhood, no needs any office could fail (an anonymous
            // search, or a citizen's with typical needs): one page of the city's ranked
            // index (docs/decisions/0014-indexed-search.md).
            if let (Some(city), None, None, None, None) =
                (&scope.city_code, &scope.province, &scope.kind, &near, &needs)
                && let Some((rows, total)) = ranked_city_page(conn, &catalog, city, date, offset, limit)?
            {
                metrics.event("search", "ranked_index");
                return Ok(AvailabilityPage { rows, total, filtered_by_special_needs, home_visit: false });
            }
            metrics.event("search", "ranked_in_memory");
            // Otherwise every shift of the scope, ranked here: the scope's offices from
            // memory, their slots of the date from the database.
            let seats: Vec<ShiftSeats<OfficeId>> = offices::seats_of(conn, catalog.scope_offices(&scope), date)?
                .into_iter()
                .filter_map(|s| {
                    let shift = Shift::parse(&s.shift)?;
                    let approved = if s.closed { 0 } else { u32::try_from(s.capacity).unwrap_or(0) };
                    Some(ShiftSeats {
                        facilities: s.facilities,
                        office_id: s.office_id,
                        office_phone: s.phone,
                        shift,
                        approved,
                        free: approved.saturating_sub(u32::try_from(s.taken).unwrap_or(0)),
                    })
                })
                .collect();
            let ranked = rank(seats, needs.as_ref(), near.as_ref());
            let total = ranked.len();
            let page: Vec<_> = ranked.into_iter().skip(offset).take(limit).collect();
            let mut ids: Vec<OfficeId> = page.iter().map(|r| r.seats.office_id.clone()).collect();
            ids.sort_unstable();
            ids.dedup();
            let by_id: std::collections::HashMap<OfficeId, offices::OfficeRow> =
                catalog.offices(&ids).into_iter().map(|o| (o.id.clone(), o)).collect();
            let rows = page
                .into_iter()
                .filter_map(|r| {
                    Some(AvailabilityRow {
                        free_percent: r.seats.free_percent(),
                        office: by_id.get(&r.seats.office_id)?.clone(),
                        shift: r.seats.shift,
                        approved: r.seats.approved,
                        free: r.seats.free,
                        closeness: r.closeness,
                    })
                })
                .collect();
            Ok(AvailabilityPage { rows, total, filtered_by_special_needs, home_visit: false })
        })
        .await
}

/// One page of a city's shifts that offer seats on a date, ranked as [`rank`] ranks them
/// without a neighbourhood or special needs, read from the database's ranked index; the
/// city's inactive offices are left out. `None` when the index cannot answer exactly (an
/// office or shift the catalog does not know): the caller ranks the whole city instead.
fn ranked_city_page(
    conn: &mut persistence::DbConn,
    catalog: &persistence::catalog::Snapshot,
    city: &str,
    date: NaiveDate,
    offset: usize,
    limit: usize,
) -> Result<Option<(Vec<AvailabilityRow>, usize)>, ApiError> {
    let skip: std::collections::HashSet<&str> = catalog.inactive_in_city(city).iter().map(OfficeId::as_str).collect();
    let Some((page, total)) = offices::ranked_page(conn, date, city, &skip, offset, limit)? else {
        return Ok(None);
    };
    let mut rows = Vec::with_capacity(page.len());
    for s in page {
        let (Some(office), Some(shift)) = (catalog.office(&s.office_id), Shift::parse(&s.shift)) else {
            return Ok(None);
        };
        if !office.active || office.city_code != city {
            return Ok(None);
        }
        let approved = u32::try_from(s.capacity).unwrap_or(0);
        let seats = ShiftSeats {
            office_id: (),
            office_phone: String::new(),
            facilities: office.facilities(),
            shift,
            approved,
            free: approved.saturating_sub(u32::try_from(s.taken).unwrap_or(0)),
        };
        rows.push(AvailabilityRow {
            free_percent: seats.free_percent(),
            office: office.clone(),
            shift,
            approved: seats.approved,
            free: seats.free,
            closeness: 0,
        });
    }
    Ok(Some((rows, total)))
}

/// Holds a seat (unpaid) or books it (paid): the new seat is taken and the old one
/// released in one transaction; the database refuses to oversell. On PostgreSQL a first
/// hold (no seat held, nothing booked at once) is one statement without a transaction
/// ([`Alone`]); any other hold then costs that read once more, in the transaction.
///
/// A slot refused as full a moment ago is refused again from memory, without taking its
/// contested row, except to the citizen holding one of its seats ([`super::full_slots`]).
pub async fn take_slot(
    state: &AppState,
    target: Target,
    slot: Slot,
    actor: Actor,
) -> Result<(ApplicationRow, offices::OfficeRow), ApiError> {
    let (full, metrics) = (state.full_slots.clone(), state.metrics.clone());
    let policy = state.policy.clone();
    let pii = state.pii.clone();
    let catalog = state.catalog.clone();
    let wanted = slot.clone();
    let hold_actor = actor.clone();
    let change = move |conn: &mut persistence::DbConn,
                       row: &mut ApplicationRow,
                       app: &domain::application::Application,
                       now: DateTime<Utc>| {
        let office = office_for(&catalog, conn, &slot, app)?;
        let same_seat = app.holds_seat_of(&slot);
        // A slot the database refused as full a moment ago is refused again without its
        // contested row — but never to the citizen whose application holds one of its
        // seats: that is read from the application itself, the same on every instance.
        if !same_seat && full.refuses(&slot, Instant::now()) {
            metrics.event("booking", "slot_full_from_memory");
            return Err(DomainError::SlotFull.into());
        }
        let mut next =
            transition(app, Event::TakeSlot { slot: slot.clone(), expires_at: now + policy.hold_ttl }, now, &policy)?;
        if same_seat && app.appointment == AppointmentStatus::Held {
            // Asking again for the seat one holds keeps it, without extending the hold.
            next.hold_expires_at = app.hold_expires_at;
        }
        row.set_domain(&next);
        let action =
            if next.appointment == AppointmentStatus::Booked { "appointment_booked" } else { "appointment_held" };
        // Written now, not with the application (`mutate`'s deferred entries): whatever
        // is written after the seat is taken holds the contested row's lock longer.
        audit::insert(conn, &audit::entry(&actor, action, Some(&row.id), Some(slot_details(&slot)), now))?;
        // A new booking, or the seat offered after a closure now confirmed.
        let confirmed_offer = app.appointment == AppointmentStatus::Offered;
        if next.appointment == AppointmentStatus::Booked && (!same_seat || confirmed_offer) {
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
        // The contested row last: everyone asking for this slot waits on its lock, so it is
        // taken by the statement that saves the application (`mutate_in` then has nothing
        // left to write), and held for the rest of that statement and the commit.
        let mut released = None;
        if !same_seat {
            if let Some(old) = app.slot.as_ref().filter(|_| app.appointment.holds_seat()) {
                offices::release_seat(conn, &old.office_id, old.date, old.shift)?;
                released = Some(old.clone());
            }
            persistence::app_write::take_seat_and_save(conn, &slot.office_id, slot.date, slot.shift, row, now)?;
        }
        Ok((released, office))
    };
    // When a thousand citizens ask at once, they all pass the check above before the
    // first refusal; they queue for a turn at the database, so it is asked again at their
    // turn, and a refusal is remembered before the next one in the queue looks.
    let turn = state.db.turn().await?;
    let (full, now) = (state.full_slots.clone(), state.now());
    let metrics = state.metrics.clone();
    let seen = crate::state::catalog_seen_now();
    let alone = Alone {
        catalog: state.catalog.clone(),
        policy: state.policy.clone(),
        full: state.full_slots.clone(),
        actor: hold_actor,
    };
    let (taken, learned) = actix_web::web::block(move || {
        let seen = crate::state::SeenInTurn::set(seen);
        let taken = (|| {
            let mut conn = turn.connect()?;
            if matches!(*conn, persistence::DbConn::Pg(_)) {
                // PostgreSQL: a first seat in one statement, without a transaction.
                match alone.hold(&mut conn, &target, &wanted, now) {
                    Ok(Held::Alone(done)) => {
                        let (row, office) = *done;
                        return Ok(((None, office), row));
                    }
                    Ok(Held::FullFromMemory) => {
                        metrics.event("booking", "slot_full_from_memory");
                        return Err(DomainError::SlotFull.into());
                    }
                    Ok(Held::InTransaction) => {}
                    Err(e) => {
                        if let ApiError::Domain(DomainError::SlotFull) = &e {
                            full.remember(&wanted, Instant::now());
                        }
                        return Err(e);
                    }
                }
            } else if full.refuses(&wanted, Instant::now()) && !target.may_hold_seat_of(&mut conn, &wanted, now)? {
                // A slot remembered full is refused after one plain read of the application
                // (is this citizen one of its holders?), without a write transaction: the
                // hundreds refused would otherwise queue for the one writer. The check
                // inside `change` stays for the slots found full while this request waited.
                metrics.event("booking", "slot_full_from_memory");
                return Err(DomainError::SlotFull.into());
            }
            let taken = super::mutate_in(&mut conn, &target, now, &change);
            if let Err(ApiError::Domain(DomainError::SlotFull)) = &taken {
                full.remember(&wanted, Instant::now());
            }
            taken
        })();
        (taken, seen.learned())
    })
    .await?;
    // A version the application's read learned with the session (as `AppState::run_api` does).
    if let Some(v) = learned {
        crate::state::catalog_seen(v);
    }
    let ((released, office), row) = taken?;
    if let Some(old) = released {
        state.full_slots.forget(&old);
    }
    Ok((row, office))
}

/// The office of the slot a citizen asks for: active, and suiting her special needs.
fn office_for(
    catalog: &persistence::catalog::Catalog,
    conn: &mut persistence::DbConn,
    slot: &Slot,
    app: &domain::application::Application,
) -> Result<offices::OfficeRow, ApiError> {
    let office = catalog
        .get(conn)?
        .office(&slot.office_id)
        .cloned()
        .filter(|o| o.active)
        .ok_or(ApiError::Domain(DomainError::OfficeNotFound))?;
    if app.special_needs.is_some_and(|n| !n.suits(&office.facilities())) {
        return Err(DomainError::OfficeUnsuitable.into());
    }
    Ok(office)
}

/// The audit entry's details of a seat held or booked.
fn slot_details(slot: &Slot) -> serde_json::Value {
    serde_json::json!({"office_id": slot.office_id, "date": slot.date, "shift": slot.shift.as_str()})
}

/// What [`Alone::hold`] did.
enum Held {
    /// The seat is taken and the application saved (one statement).
    Alone(Box<(ApplicationRow, offices::OfficeRow)>),
    /// The slot was refused as full a moment ago, and this citizen holds none of its seats.
    FullFromMemory,
    /// Not for one statement: the transaction of [`super::mutate_in`] decides.
    InTransaction,
}

/// A first seat taken on PostgreSQL without a transaction (`app_write::take_seat_alone`):
/// the application read without a lock (with the session), the hold decided as `change`
/// in [`take_slot`] decides it, and the seat, the application and its audit entry written
/// in one statement whose versioned update notices another writer. In a rush, the slot's
/// row is then locked for that statement and its commit inside PostgreSQL, not also for a
/// round trip to this server and back with `COMMIT` for each winner in turn.
///
/// Left to the transaction: an application that holds a seat already (kept, or given back
/// for the new one), a hold that books at once (a message is queued with it), and an
/// application changed by another writer meanwhile (read again there, under its lock).
struct Alone {
    catalog: std::sync::Arc<persistence::catalog::Catalog>,
    policy: domain::Policy,
    full: std::sync::Arc<crate::full_slots::FullSlots>,
    actor: Actor,
}

impl Alone {
    fn hold(
        &self,
        conn: &mut persistence::DbConn,
        target: &Target,
        slot: &Slot,
        now: DateTime<Utc>,
    ) -> Result<Held, ApiError> {
        let Some(mut row) = target.load(conn, now)? else { return Ok(Held::InTransaction) };
        let app = row.to_domain()?;
        let same_seat = app.holds_seat_of(slot);
        if !same_seat && self.full.refuses(slot, Instant::now()) {
            return Ok(Held::FullFromMemory);
        }
        if app.appointment.holds_seat() {
            return Ok(Held::InTransaction);
        }
        let office = office_for(&self.catalog, conn, slot, &app)?;
        let next = transition(
            &app,
            Event::TakeSlot { slot: slot.clone(), expires_at: now + self.policy.hold_ttl },
            now,
            &self.policy,
        )?;
        if next.appointment != AppointmentStatus::Held {
            return Ok(Held::InTransaction);
        }
        row.set_domain(&next);
        let entry = audit::entry(&self.actor, "appointment_held", Some(&row.id), Some(slot_details(slot)), now);
        match persistence::app_write::take_seat_alone(
            conn,
            &slot.office_id,
            slot.date,
            slot.shift,
            &mut row,
            &[entry],
            now,
        )? {
            persistence::app_write::SeatTaken::Taken => Ok(Held::Alone(Box::new((row, office)))),
            persistence::app_write::SeatTaken::Stale => Ok(Held::InTransaction),
        }
    }
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
    id: &ApplicationId,
    now: DateTime<Utc>,
    policy: &domain::Policy,
) -> Result<bool, ApiError> {
    let target = Target::Id(id.clone());
    let change = |conn: &mut persistence::DbConn,
                  row: &mut ApplicationRow,
                  app: &domain::application::Application,
                  now: DateTime<Utc>| {
        // A hold not paid in time, or a seat offered after a closure and not booked in time.
        let kept = matches!(app.appointment, AppointmentStatus::Held | AppointmentStatus::Offered);
        let expired = kept && app.hold_expires_at.is_some_and(|t| t <= now);
        if !expired {
            return Ok(false);
        }
        let slot = app.slot.clone().ok_or_else(|| ApiError::internal("a held application without a slot"))?;
        let next = transition(app, Event::ReleaseHold, now, policy)?;
        offices::release_seat(conn, &slot.office_id, slot.date, slot.shift)?;
        row.set_domain(&next);
        let action = if app.appointment == AppointmentStatus::Offered { "offer_expired" } else { "hold_expired" };
        audit::append(conn, &Actor::system(), action, Some(&row.id), None, now)?;
        Ok(true)
    };
    super::mutate_in(conn, &target, now, &change).map(|(released, _)| released)
}

/// Changes the card-delivery office (until production starts).
pub async fn change_delivery_office(
    state: &AppState,
    target: Target,
    office_id: OfficeId,
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
