//! Office administration's use cases (`routes/admin_offices.rs`): offices, weekly
//! capacity and date overrides, closures, national holidays, and the bulk CSV imports.
//! Every change is audited and every slot change runs in the same transaction as the rule
//! that caused it, so nothing is half-written; a change that may add seats forgets the
//! slots remembered as full afterwards ([`changing_seats`]). The rules themselves (valid
//! fields, which seats a slot offers, when bookings would be stranded) are
//! `domain::offices`.

use std::collections::{HashMap, HashSet};

use actix_web::web;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use domain::DomainError;
use domain::application::booking_window;
use domain::calendar::{JalaliDate, tehran_date};
use domain::offices::{self as rules, Facilities, OfficeDetails, OfficeInput, Shift, WeeklyCapacity};
use domain::record_ids::OfficeId;
use persistence::applications::DisplacedScope;
use persistence::audit::{self, Actor};
use persistence::offices::{self, Appointments, OfficeRow, SeatsQuery, SlotRow};
use persistence::{DbConn, DbError, write_tx};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::legacy::LegacyResult;
use crate::error::{ApiCode, ApiError, FieldErrors};
use crate::state::AppState;
use crate::wire;

// ---------------------------------------------------------------- results

/// Approved seats of one shift on one weekday.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CapacityRule {
    pub weekday: wire::Weekday,
    pub shift: wire::Shift,
    /// Seats, 0–1000 (0 is the same as leaving the shift out: closed).
    #[schema(example = 25, maximum = 1000)]
    pub capacity: u32,
}

/// One date's capacity instead of the weekday's.
#[derive(Debug, Serialize, ToSchema)]
pub struct OverrideView {
    #[schema(example = "2026-12-01")]
    pub date: NaiveDate,
    #[schema(example = "1405-09-10")]
    pub date_jalali: String,
    pub shift: wire::Shift,
    #[schema(example = 10)]
    pub capacity: u32,
}

/// An office's weekly capacity and its upcoming date overrides.
#[derive(Debug, Serialize, ToSchema)]
pub struct CapacityView {
    #[schema(example = "041-MRG-01")]
    pub office_id: String,
    /// The open shifts, Saturday first.
    pub rules: Vec<CapacityRule>,
    /// Overrides from today on.
    pub overrides: Vec<OverrideView>,
    /// After a change: how many future slots were created or changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = 52)]
    pub slots_changed: Option<usize>,
}

/// A closure declared. The citizens booked on the closed shifts are moved back to choosing
/// (fee kept, no ban, the nearest free seat offered for a few days) and told by SMS.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClosureResult {
    #[schema(example = "041-MRG-01")]
    pub office_id: String,
    #[schema(example = "2026-12-01")]
    pub date: NaiveDate,
    #[schema(example = "1405-09-10")]
    pub date_jalali: String,
    /// The shifts now closed.
    pub shifts: Vec<wire::Shift>,
    #[schema(example = "تعمیرات ساختمان")]
    pub reason: String,
    /// Paid bookings on the closed shifts.
    #[schema(example = 4)]
    pub affected_bookings: i64,
    /// Unpaid holds on the closed shifts (they lapse when their payment window closes).
    #[schema(example = 1)]
    pub affected_holds: i64,
    /// Citizens moved off the closed shifts and told by SMS.
    #[schema(example = 4)]
    pub notified: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReopenResult {
    #[schema(example = "041-MRG-01")]
    pub office_id: String,
    #[schema(example = "2026-12-01")]
    pub date: NaiveDate,
    /// The shifts whose closure was removed.
    pub reopened: Vec<wire::Shift>,
}

/// A national holiday declared: every office is closed that day; the citizens booked on it
/// are moved back to choosing (fee kept, no ban, a seat offered) and told by SMS.
#[derive(Debug, Serialize, ToSchema)]
pub struct HolidayResult {
    #[schema(example = "2027-02-11")]
    pub date: NaiveDate,
    #[schema(example = "1405-11-22")]
    pub date_jalali: String,
    #[schema(example = "پیروزی انقلاب اسلامی")]
    pub name: String,
    /// Slots (office and shift) that were open and are now closed.
    #[schema(example = 38)]
    pub slots_closed: usize,
    /// Paid bookings that day, in every office.
    #[schema(example = 120)]
    pub affected_bookings: i64,
    /// Unpaid holds that day.
    #[schema(example = 3)]
    pub affected_holds: i64,
    /// Citizens moved off that day and told by SMS.
    #[schema(example = 120)]
    pub notified: usize,
}

/// What a CSV import did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportResult {
    /// New codes, created active.
    #[schema(example = 120)]
    pub created: usize,
    /// Existing codes whose fields or capacity changed.
    #[schema(example = 8)]
    pub updated: usize,
    /// Existing codes already exactly as in the file.
    #[schema(example = 2)]
    pub unchanged: usize,
    /// Slots created or changed for the booking horizon.
    #[schema(example = 14640)]
    pub slots_changed: usize,
}

// ---------------------------------------------------------------- helpers

pub fn jalali(d: NaiveDate) -> String {
    JalaliDate::from_gregorian(d).map(|j| j.to_string()).unwrap_or_default()
}

/// The dates slots exist for: tomorrow to one day past the booking horizon, as the daily
/// `materialize_slots` job keeps them.
fn slot_range(now: DateTime<Utc>, state: &AppState) -> (NaiveDate, NaiveDate) {
    let (first, last) = booking_window(now, &state.policy);
    (first, last + Duration::days(1))
}

fn load_office(conn: &mut DbConn, id: &OfficeId) -> Result<OfficeRow, ApiError> {
    offices::find(conn, id)?.ok_or(ApiError::Domain(DomainError::OfficeNotFound))
}

/// The row an office would be with these fields; id, active flag and creation time kept.
fn office_row(base: Option<&OfficeRow>, d: &OfficeDetails, f: &Facilities, now: DateTime<Utc>) -> OfficeRow {
    let now = now.naive_utc();
    OfficeRow {
        id: base.map_or_else(persistence::new_id, |b| b.id.clone()),
        code: d.code.clone(),
        name: d.name.clone(),
        kind: d.kind.as_str().to_owned(),
        province: d.province.clone(),
        city: d.city.clone(),
        city_code: d.city_code.clone(),
        phone: d.phone.clone(),
        address: d.address.clone(),
        step_free_access: f.step_free_access,
        eye_exception_capture: f.eye_exception_capture,
        fingerprint_exception_capture: f.fingerprint_exception_capture,
        home_visits: f.home_visits,
        active: base.is_none_or(|b| b.active),
        created_at: base.map_or(now, |b| b.created_at),
        updated_at: now,
    }
}

/// Whether two rows differ in anything an administrator sets.
fn same_fields(a: &OfficeRow, b: &OfficeRow) -> bool {
    OfficeRow { updated_at: a.updated_at, ..b.clone() } == *a
}

/// A unique-code race lost to another writer is the same conflict as a code found taken.
fn code_taken(e: DbError) -> ApiError {
    match e {
        DbError::Duplicate(_) => ApiError::Domain(DomainError::OfficeCodeTaken),
        other => other.into(),
    }
}

fn stored_rules(conn: &mut DbConn, office_id: &OfficeId) -> Result<Vec<CapacityRule>, DbError> {
    Ok(offices::weekly_capacity(conn, office_id)?
        .into_iter()
        .filter_map(|(w, s, c)| {
            Some(CapacityRule {
                weekday: rules::Weekday::from_index(w)?.into(),
                shift: Shift::parse(&s)?.into(),
                capacity: u32::try_from(c).ok().filter(|c| *c > 0)?,
            })
        })
        .collect())
}

fn as_store(week: &WeeklyCapacity) -> Vec<(i32, Shift, i32)> {
    week.rules().map(|r| (r.weekday.index(), r.shift, i32::try_from(r.capacity).unwrap_or(i32::MAX))).collect()
}

/// Replaces an office's weekly rules and brings its future slots in line (creating any
/// missing up to the horizon). Fails, writing nothing once the caller's transaction rolls
/// back, if a date's new capacity would strand booked citizens.
fn apply_week(
    conn: &mut DbConn,
    office_id: &OfficeId,
    week: &WeeklyCapacity,
    range: (NaiveDate, NaiveDate),
) -> Result<usize, DbError> {
    offices::set_weekly_capacity(conn, office_id, &as_store(week))?;
    let last = offices::last_slot_date(conn, office_id)?.map_or(range.1, |d| d.max(range.1));
    offices::recompute_range(conn, office_id, range.0, last)
}

fn capacity_view(conn: &mut DbConn, office_id: &OfficeId, from: NaiveDate) -> Result<CapacityView, DbError> {
    let overrides = offices::overrides(conn, office_id, from)?
        .into_iter()
        .filter_map(|(date, s, c)| {
            Some(OverrideView {
                date,
                date_jalali: jalali(date),
                shift: Shift::parse(&s)?.into(),
                capacity: u32::try_from(c).unwrap_or(0),
            })
        })
        .collect();
    Ok(CapacityView {
        office_id: office_id.to_string(),
        rules: stored_rules(conn, office_id)?,
        overrides,
        slots_changed: None,
    })
}

/// Runs an office change that may add or free seats (its own write transaction inside
/// `change`), then forgets the slots this instance remembered as full
/// ([`super::full_slots`]): the one place office administration does so.
async fn changing_seats<T, F>(state: &AppState, change: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConn) -> Result<T, ApiError> + Send + 'static,
{
    let out = state.run_api(change).await?;
    // Seats may have been added: forget the slots refused as full.
    state.full_slots.clear();
    Ok(out)
}

// ---------------------------------------------------------------- offices

/// One office (404 `office_not_found`).
pub async fn office(state: &AppState, id: OfficeId) -> Result<OfficeRow, ApiError> {
    state.run_api(move |conn| load_office(conn, &id)).await
}

/// Creates an office (active, no capacity yet) with its slots up to the horizon.
pub async fn create_office(
    state: &AppState,
    actor: Actor,
    details: OfficeDetails,
    facilities: Facilities,
) -> Result<OfficeRow, ApiError> {
    let now = state.now();
    let range = slot_range(now, state);
    state
        .run_api(move |conn| {
            write_tx(conn, |conn| {
                if offices::find_by_code(conn, &details.code)?.is_some() {
                    return Err(ApiError::Domain(DomainError::OfficeCodeTaken));
                }
                let row = office_row(None, &details, &facilities, now);
                offices::insert(conn, std::slice::from_ref(&row)).map_err(code_taken)?;
                offices::materialize_in(conn, Some(std::slice::from_ref(&row.id)), range.0, range.1)?;
                audit::append(
                    conn,
                    &actor,
                    "office_created",
                    None,
                    Some(serde_json::json!({"office_id": row.id, "code": row.code})),
                    now,
                )?;
                Ok(row)
            })
        })
        .await
}

/// Replaces an office's fields (the code may change if the new one is free).
pub async fn update_office(
    state: &AppState,
    actor: Actor,
    id: OfficeId,
    details: OfficeDetails,
    facilities: Facilities,
) -> Result<OfficeRow, ApiError> {
    let now = state.now();
    state
        .run_api(move |conn| {
            write_tx(conn, |conn| {
                let old = load_office(conn, &id)?;
                if old.code != details.code && offices::find_by_code(conn, &details.code)?.is_some() {
                    return Err(ApiError::Domain(DomainError::OfficeCodeTaken));
                }
                let row = office_row(Some(&old), &details, &facilities, now);
                if same_fields(&old, &row) {
                    return Ok(old);
                }
                offices::update(conn, &row).map_err(code_taken)?;
                audit::append(
                    conn,
                    &actor,
                    "office_updated",
                    None,
                    Some(serde_json::json!({"office_id": row.id, "code": row.code, "previous_code": old.code})),
                    now,
                )?;
                Ok(row)
            })
        })
        .await
}

/// An office put in or taken out of service, with the appointments it had.
pub struct StatusChange {
    pub office: OfficeRow,
    /// Paid bookings and unpaid holds from today on when the change was made.
    pub seats: Appointments,
    /// Taken out of service: the citizens moved back to choosing and told by SMS.
    pub notified: usize,
}

/// Puts an office in service (its missing slots are created) or takes it out (the
/// citizens booked there from today on are moved back to choosing and told by SMS).
pub async fn set_active(state: &AppState, actor: Actor, id: OfficeId, active: bool) -> Result<StatusChange, ApiError> {
    let now = state.now();
    let today = tehran_date(now);
    let range = slot_range(now, state);
    let (row, seats) = changing_seats(state, move |conn| {
        write_tx(conn, |conn| {
            let old = load_office(conn, &id)?;
            if old.active != active {
                offices::set_active(conn, &id, active, now.naive_utc())?;
                if active {
                    // Slots may have stopped being made while the office was inactive.
                    offices::materialize_in(conn, Some(std::slice::from_ref(&id)), range.0, range.1)?;
                }
                let action = if active { "office_activated" } else { "office_deactivated" };
                audit::append(conn, &actor, action, None, Some(serde_json::json!({"office_id": id})), now)?;
            }
            let seats = offices::appointments(
                conn,
                &SeatsQuery { office_id: Some(&id), from: Some(today), ..Default::default() },
            )?;
            Ok((load_office(conn, &id)?, seats))
        })
    })
    .await?;
    let notified = if row.active {
        0
    } else {
        let scope = DisplacedScope { office_id: Some(row.id.clone()), from: Some(today), to: None };
        super::closures::displace(state, scope).await?
    };
    Ok(StatusChange { office: row, seats, notified })
}

// ---------------------------------------------------------------- capacity

/// An office's weekly capacity and its date overrides from `from` on.
pub async fn capacity(state: &AppState, id: OfficeId, from: NaiveDate) -> Result<CapacityView, ApiError> {
    state
        .run_api(move |conn| {
            load_office(conn, &id)?;
            Ok(capacity_view(conn, &id, from)?)
        })
        .await
}

/// Replaces the weekly capacity and recomputes the future slots in the same transaction;
/// `capacity_below_bookings` (nothing changed) when a date would strand booked citizens.
pub async fn set_capacity(
    state: &AppState,
    actor: Actor,
    id: OfficeId,
    week: WeeklyCapacity,
) -> Result<CapacityView, ApiError> {
    let now = state.now();
    let range = slot_range(now, state);
    changing_seats(state, move |conn| {
        write_tx(conn, |conn| {
            load_office(conn, &id)?;
            let changed = apply_week(conn, &id, &week, range)?;
            let rules: Vec<_> = week
                .rules()
                .map(|r| serde_json::json!({"weekday": r.weekday, "shift": r.shift, "capacity": r.capacity}))
                .collect();
            audit::append(
                conn,
                &actor,
                "office_capacity_set",
                None,
                Some(serde_json::json!({"office_id": id, "rules": rules, "slots_changed": changed})),
                now,
            )?;
            let mut view = capacity_view(conn, &id, tehran_date(now))?;
            view.slots_changed = Some(changed);
            Ok(view)
        })
    })
    .await
}

/// Sets one date's capacity for one shift instead of the weekday's; returns the slot.
pub async fn override_capacity(
    state: &AppState,
    actor: Actor,
    id: OfficeId,
    date: NaiveDate,
    shift: Shift,
    capacity: u32,
) -> Result<SlotRow, ApiError> {
    let now = state.now();
    changing_seats(state, move |conn| {
        write_tx(conn, |conn| {
            load_office(conn, &id)?;
            offices::set_override(conn, &id, date, shift, i32::try_from(capacity).unwrap_or(i32::MAX))?;
            offices::recompute_slot(conn, &id, date, shift)?;
            audit::append(
                conn,
                &actor,
                "office_capacity_override",
                None,
                Some(serde_json::json!({"office_id": id, "date": date, "shift": shift, "capacity": capacity})),
                now,
            )?;
            offices::slot(conn, &id, date, shift)?.ok_or_else(|| ApiError::internal("slot missing"))
        })
    })
    .await
}

// ---------------------------------------------------------------- closures

/// An office's closures from `from` to `to`, by date and shift.
pub async fn closures(
    state: &AppState,
    id: OfficeId,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(NaiveDate, Shift, String)>, ApiError> {
    state
        .run_api(move |conn| {
            load_office(conn, &id)?;
            Ok(offices::closures_between(conn, &id, from, to)?
                .into_iter()
                .filter_map(|(date, s, reason)| Some((date, Shift::parse(&s)?, reason)))
                .collect())
        })
        .await
}

/// Closes an office on a date (one shift, or both): its slots close at once, then each
/// citizen booked there is moved back to choosing and told by SMS.
pub async fn close(
    state: &AppState,
    actor: Actor,
    id: OfficeId,
    date: NaiveDate,
    shift: Option<Shift>,
    reason: String,
) -> Result<ClosureResult, ApiError> {
    let now = state.now();
    let shifts = shift.map_or_else(|| Shift::ALL.to_vec(), |s| vec![s]);
    let result = state
        .run_api(move |conn| {
            write_tx(conn, |conn| {
                load_office(conn, &id)?;
                for &shift in &shifts {
                    offices::add_closure(conn, &id, date, shift, &reason)?;
                    offices::recompute_slot(conn, &id, date, shift)?;
                }
                let seats = offices::appointments(
                    conn,
                    &SeatsQuery { office_id: Some(&id), from: Some(date), to: Some(date), shift },
                )?;
                audit::append(
                    conn,
                    &actor,
                    "office_closed",
                    None,
                    Some(serde_json::json!({
                        "office_id": id, "date": date, "shifts": shifts, "reason": reason,
                        "affected_bookings": seats.booked, "affected_holds": seats.held,
                    })),
                    now,
                )?;
                Ok(ClosureResult {
                    office_id: id.into(),
                    date,
                    date_jalali: jalali(date),
                    shifts: shifts.iter().map(|s| (*s).into()).collect(),
                    reason,
                    affected_bookings: seats.booked,
                    affected_holds: seats.held,
                    notified: 0,
                })
            })
        })
        .await?;
    let scope =
        DisplacedScope { office_id: Some(OfficeId::from(result.office_id.as_str())), from: Some(date), to: Some(date) };
    Ok(ClosureResult { notified: super::closures::displace(state, scope).await?, ..result })
}

/// Removes a closure (one shift, or every closed shift of the date) and reopens the slots
/// as the capacity rules say (a holiday keeps them closed).
pub async fn reopen(
    state: &AppState,
    actor: Actor,
    id: OfficeId,
    date: NaiveDate,
    shift: Option<Shift>,
) -> Result<ReopenResult, ApiError> {
    let shifts = shift.map_or_else(|| Shift::ALL.to_vec(), |s| vec![s]);
    let now = state.now();
    changing_seats(state, move |conn| {
        write_tx(conn, |conn| {
            load_office(conn, &id)?;
            let mut reopened = Vec::new();
            for &shift in &shifts {
                if offices::remove_closure(conn, &id, date, shift)? > 0 {
                    offices::recompute_slot(conn, &id, date, shift)?;
                    reopened.push(shift);
                }
            }
            if reopened.is_empty() {
                return Err(ApiError::Domain(DomainError::ClosureNotFound));
            }
            audit::append(
                conn,
                &actor,
                "office_reopened",
                None,
                Some(serde_json::json!({"office_id": id, "date": date, "shifts": reopened})),
                now,
            )?;
            Ok(ReopenResult { office_id: id.into(), date, reopened: reopened.into_iter().map(Into::into).collect() })
        })
    })
    .await
}

// ---------------------------------------------------------------- holidays

/// Declares a national holiday: every office's slots that day close at once, then the
/// citizens booked that day are moved back to choosing and told by SMS.
pub async fn declare_holiday(
    state: &AppState,
    actor: Actor,
    date: NaiveDate,
    name: String,
) -> Result<HolidayResult, ApiError> {
    let now = state.now();
    let result = state
        .run_api(move |conn| {
            write_tx(conn, |conn| {
                offices::add_holiday(conn, date, &name)?;
                let slots_closed = offices::close_all_on(conn, date)?;
                let seats = offices::appointments(
                    conn,
                    &SeatsQuery { from: Some(date), to: Some(date), ..Default::default() },
                )?;
                audit::append(
                    conn,
                    &actor,
                    "holiday_declared",
                    None,
                    Some(serde_json::json!({
                        "date": date, "name": name, "slots_closed": slots_closed,
                        "affected_bookings": seats.booked, "affected_holds": seats.held,
                    })),
                    now,
                )?;
                Ok(HolidayResult {
                    date,
                    date_jalali: jalali(date),
                    name,
                    slots_closed,
                    affected_bookings: seats.booked,
                    affected_holds: seats.held,
                    notified: 0,
                })
            })
        })
        .await?;
    let scope = DisplacedScope { office_id: None, from: Some(date), to: Some(date) };
    Ok(HolidayResult { notified: super::closures::displace(state, scope).await?, ..result })
}

// ---------------------------------------------------------------- imports

/// Creates and updates offices in bulk from a CSV file: all or nothing, in one
/// transaction (every bad cell listed otherwise).
pub async fn import_offices(state: &AppState, actor: Actor, body: web::BytesMut) -> Result<ImportResult, ApiError> {
    let rows = web::block(move || parse_import(&body)).await??;
    let now = state.now();
    let range = slot_range(now, state);
    changing_seats(state, move |conn| write_tx(conn, |conn| apply_import(conn, &rows, &actor, now, range))).await
}

/// Carries applications over from the old Portal ([`super::legacy::import`]).
pub async fn import_legacy(state: &AppState, actor: Actor, body: web::BytesMut) -> Result<LegacyResult, ApiError> {
    let now = state.now();
    let (pii, policy) = (state.pii.clone(), state.policy.clone());
    // Seats were taken: a slot remembered as full is still full, but be exact.
    changing_seats(state, move |conn| super::legacy::import(conn, &pii, &policy, &body, &actor, now)).await
}

/// The most data rows one import may carry.
pub const IMPORT_MAX_ROWS: usize = 10_000;
/// The largest import body (10,000 rows of long Persian addresses fit easily).
pub const IMPORT_MAX_BYTES: usize = 16 * 1024 * 1024;

/// The import file's columns, in the documented order (any order is accepted).
pub const IMPORT_COLUMNS: [&str; 14] = [
    "code",
    "name",
    "kind",
    "province",
    "city",
    "city_code",
    "phone",
    "address",
    "step_free_access",
    "eye_exception_capture",
    "fingerprint_exception_capture",
    "home_visits",
    "morning_capacity",
    "afternoon_capacity",
];

/// One valid row of an import file.
#[derive(Debug)]
struct ImportRow {
    /// The row's number as a spreadsheet shows it (the header is row 1).
    row: usize,
    details: OfficeDetails,
    facilities: Facilities,
    week: WeeklyCapacity,
}

/// Reads and checks a whole import file; any bad cell fails the file, listing them all.
fn parse_import(bytes: &[u8]) -> Result<Vec<ImportRow>, ApiError> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(bytes);
    let at = crate::error::csv_header(&mut reader, &IMPORT_COLUMNS, &IMPORT_COLUMNS)?;

    let mut rows = Vec::new();
    let mut codes = HashSet::new();
    let mut errors = FieldErrors::default();
    for (i, record) in reader.records().enumerate() {
        let row = i + 2;
        if i >= IMPORT_MAX_ROWS {
            return Err(ApiError::Unprocessable { code: ApiCode::CsvTooManyRows });
        }
        let record = match record {
            Ok(r) if r.len() == at.len() => r,
            _ => {
                errors.push(format!("row {row}"), ApiCode::CsvRowMalformed);
                continue;
            }
        };
        let cell = |column: &str| at.get(column).and_then(|&i| record.get(i)).unwrap_or("");
        let input = OfficeInput {
            code: cell("code"),
            name: cell("name"),
            kind: cell("kind"),
            province: cell("province"),
            city: cell("city"),
            city_code: cell("city_code"),
            phone: cell("phone"),
            address: cell("address"),
        };
        let details = OfficeDetails::parse(&input)
            .map_err(|list| list.iter().for_each(|(column, e)| errors.cell(row, column, e.clone())))
            .ok();
        let mut flag = |column: &str| rules::flag(cell(column)).map_err(|e| errors.cell(row, column, e)).ok();
        let facilities = (
            flag("step_free_access"),
            flag("eye_exception_capture"),
            flag("fingerprint_exception_capture"),
            flag("home_visits"),
        );
        let mut seats = |column: &str| rules::seats(cell(column)).map_err(|e| errors.cell(row, column, e)).ok();
        let (morning, afternoon) = (seats("morning_capacity"), seats("afternoon_capacity"));
        if let Ok(code) = rules::office_code(cell("code"))
            && !codes.insert(code)
        {
            errors.cell(row, "code", DomainError::OfficeCodeTaken);
        }
        let (Some(details), (Some(a), Some(b), Some(c), Some(d)), Some(morning), Some(afternoon)) =
            (details, facilities, morning, afternoon)
        else {
            continue;
        };
        let week =
            WeeklyCapacity::standard(morning, afternoon).map_err(|_| ApiError::internal("seat counts were checked"))?;
        let facilities = Facilities {
            step_free_access: a,
            eye_exception_capture: b,
            fingerprint_exception_capture: c,
            home_visits: d,
        };
        rows.push(ImportRow { row, details, facilities, week });
    }
    errors.finish_file()?;
    if rows.is_empty() {
        return Err(ApiError::Unprocessable { code: ApiCode::CsvEmpty });
    }
    Ok(rows)
}

/// Writes a checked import in the caller's transaction: new codes created (active, with
/// their slots), existing codes updated (their future slots recomputed). A capacity that
/// would strand booked citizens is a bad cell like any other.
fn apply_import(
    conn: &mut DbConn,
    rows: &[ImportRow],
    actor: &Actor,
    now: DateTime<Utc>,
    range: (NaiveDate, NaiveDate),
) -> Result<ImportResult, ApiError> {
    let codes: Vec<String> = rows.iter().map(|r| r.details.code.clone()).collect();
    let existing: HashMap<String, OfficeRow> =
        offices::find_by_codes(conn, &codes)?.into_iter().map(|o| (o.code.clone(), o)).collect();
    let mut result = ImportResult { created: 0, updated: 0, unchanged: 0, slots_changed: 0 };
    let mut errors = FieldErrors::default();
    let mut new_rows = Vec::new();
    for r in rows {
        let Some(old) = existing.get(&r.details.code) else {
            new_rows.push((office_row(None, &r.details, &r.facilities, now), r));
            continue;
        };
        let row = office_row(Some(old), &r.details, &r.facilities, now);
        let fields_changed = !same_fields(old, &row);
        if fields_changed {
            offices::update(conn, &row)?;
        }
        let week_changed = offices::weekly_capacity(conn, &old.id)? != sorted(as_store(&r.week));
        if week_changed {
            match apply_week(conn, &old.id, &r.week, range) {
                Ok(n) => result.slots_changed += n,
                Err(DbError::Domain(e @ DomainError::CapacityBelowBookings { shift, .. })) => {
                    let column = match shift {
                        Shift::Morning => "morning_capacity",
                        Shift::Afternoon => "afternoon_capacity",
                    };
                    errors.cell(r.row, column, e);
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if fields_changed || week_changed {
            result.updated += 1;
            audit::append(
                conn,
                actor,
                "office_updated",
                None,
                Some(serde_json::json!({"office_id": old.id, "code": old.code, "via": "import"})),
                now,
            )?;
        } else {
            result.unchanged += 1;
        }
    }
    errors.finish_file()?;
    let inserts: Vec<OfficeRow> = new_rows.iter().map(|(o, _)| o.clone()).collect();
    offices::insert(conn, &inserts).map_err(code_taken)?;
    for (office, r) in &new_rows {
        offices::set_weekly_capacity(conn, &office.id, &as_store(&r.week))?;
        audit::append(
            conn,
            actor,
            "office_created",
            None,
            Some(serde_json::json!({"office_id": office.id, "code": office.code, "via": "import"})),
            now,
        )?;
    }
    let ids: Vec<OfficeId> = inserts.into_iter().map(|o| o.id).collect();
    if !ids.is_empty() {
        result.slots_changed += offices::materialize_in(conn, Some(&ids), range.0, range.1)?;
    }
    result.created = ids.len();
    audit::append(
        conn,
        actor,
        "offices_imported",
        None,
        Some(serde_json::json!({"created": result.created, "updated": result.updated, "unchanged": result.unchanged})),
        now,
    )?;
    Ok(result)
}

/// Weekly rules in the order `weekly_capacity` reads them back.
fn sorted(mut rules: Vec<(i32, Shift, i32)>) -> Vec<(i32, String, i32)> {
    rules.sort_by(|a, b| (a.0, a.1.as_str()).cmp(&(b.0, b.1.as_str())));
    rules.into_iter().map(|(w, s, c)| (w, s.as_str().to_owned(), c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "code,name,kind,province,city,city_code,phone,address,step_free_access,eye_exception_capture,fingerprint_exception_capture,home_visits,morning_capacity,afternoon_capacity";

    fn fields(e: ApiError) -> Vec<(String, String)> {
        match e {
            ApiError::Fields(f) => f.into_iter().map(|e| (e.field.clone(), e.code().to_owned())).collect(),
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    #[test]
    fn a_good_file_parses_with_spreadsheet_row_numbers() {
        let csv = format!(
            "\u{feff}{HEADER}\n041-X-1,دفتر یک,post_office,آذربایجان شرقی,مراغه,041,37261234,\"مراغه, خیابان اول\",true,0,no,خیر,20,15\n\n021-X-2,دفتر دو,civil_registry,تهران,تهران,۰۲۱,22712345,تهران,1,1,1,1,30,0\n"
        );
        let rows = parse_import(csv.as_bytes()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].details.address, "مراغه, خیابان اول");
        assert!(rows[0].facilities.step_free_access && !rows[0].facilities.home_visits);
        assert_eq!(rows[1].details.city_code, "021");
        assert_eq!(rows[1].week.rules().count(), 6, "no afternoons");
    }

    #[test]
    fn every_bad_cell_is_named_by_row_and_column() {
        let csv = format!(
            "{HEADER}\n041-X-1,دفتر,bank,استان,شهر,41,12,نشانی,true,false,false,false,20,15\n041-X-1,دفتر,post_office,استان,شهر,041,1234,نشانی,true,false,false,maybe,20,-3\nonly,three,cells\n"
        );
        let got = fields(parse_import(csv.as_bytes()).unwrap_err());
        let want: Vec<(String, String)> = [
            ("row 2: kind", "office_kind_invalid"),
            ("row 2: city_code", "city_code_invalid"),
            ("row 2: phone", "phone_invalid"),
            ("row 3: home_visits", "flag_invalid"),
            ("row 3: afternoon_capacity", "capacity_invalid"),
            ("row 3: code", "office_code_taken"),
            ("row 4", "csv_row_malformed"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn the_header_must_name_every_column_once() {
        let csv = "code,name,colour\n";
        let got = fields(parse_import(csv.as_bytes()).unwrap_err());
        assert!(got.contains(&("row 1: colour".into(), "csv_column_unknown".into())));
        assert!(got.contains(&("row 1: phone".into(), "csv_column_missing".into())));
        let many = format!("{HEADER}\n{}", "x\n".repeat(IMPORT_MAX_ROWS + 1));
        assert!(matches!(
            parse_import(many.as_bytes()),
            Err(ApiError::Unprocessable { code: ApiCode::CsvTooManyRows })
        ));
        assert!(matches!(
            parse_import(format!("{HEADER}\n").as_bytes()),
            Err(ApiError::Unprocessable { code: ApiCode::CsvEmpty })
        ));
    }
}
