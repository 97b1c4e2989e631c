//! Office administration: offices, weekly capacity and date overrides, closures, national
//! holidays, and the bulk CSV import. Administrators only (`AdminPrincipal`: 401 without a
//! staff token, 403 for an operator). Every change is audited and every slot change runs in
//! the same transaction as the rule that caused it, so nothing is half-written. The rules
//! themselves (valid fields, which seats a slot offers, when bookings would be stranded)
//! are `domain::offices`.

use std::collections::{HashMap, HashSet};

use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use domain::DomainError;
use domain::application::booking_window;
use domain::calendar::{JalaliDate, tehran_date};
use domain::offices::{
    self as rules, Facilities, OfficeDetails, OfficeInput, Shift, WeeklyCapacity, WeeklyRule, listing_range,
    planning_date,
};
use futures_util::StreamExt;
use persistence::applications::DisplacedScope;
use persistence::audit::{self, Actor};
use persistence::offices::{self, OfficeRow, SeatsQuery};
use persistence::{DbConn, DbError, write_tx};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::AdminPrincipal;
use crate::error::{ApiError, FieldErrors, RowErrors};
use crate::journey::actor;
use crate::page::{self, Page};
use crate::routes::problems::{StaffRead, StaffWrite};
use crate::state::AppState;
use crate::wire;

// ---------------------------------------------------------------- wire types

/// An office's descriptive fields (create and full update).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfficeRequest {
    /// Unique office code: 1–32 Latin letters, digits or dashes.
    #[schema(example = "041-MRG-03")]
    pub code: String,
    #[schema(example = "دفتر پیشخوان دولت خیابان اول مراغه")]
    pub name: String,
    pub kind: wire::OfficeKind,
    #[schema(example = "آذربایجان شرقی")]
    pub province: String,
    #[schema(example = "مراغه")]
    pub city: String,
    /// The city's phone code: 2–4 digits starting with 0.
    #[schema(example = "041")]
    pub city_code: String,
    /// The office landline without the city code (4–8 digits); its first four digits are
    /// the neighbourhood citizens are matched by.
    #[schema(example = "37261234")]
    pub phone: String,
    #[schema(example = "مراغه - خیابان اول - پلاک ۵")]
    pub address: String,
    /// Step-free access for citizens who cannot climb stairs.
    #[serde(default)]
    #[schema(example = true, default = false)]
    pub step_free_access: bool,
    /// Can capture the eyes of citizens whose pupils are not clearly visible.
    #[serde(default)]
    #[schema(example = false, default = false)]
    pub eye_exception_capture: bool,
    /// Can capture exceptional fingerprints.
    #[serde(default)]
    #[schema(example = false, default = false)]
    pub fingerprint_exception_capture: bool,
    /// Sends staff to citizens who cannot leave home.
    #[serde(default)]
    #[schema(example = false, default = false)]
    pub home_visits: bool,
}

/// An office as administrators see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AdminOffice {
    #[schema(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub id: String,
    #[schema(example = "041-MRG-03")]
    pub code: String,
    #[schema(example = "دفتر پیشخوان دولت خیابان اول مراغه")]
    pub name: String,
    pub kind: wire::OfficeKind,
    #[schema(example = "آذربایجان شرقی")]
    pub province: String,
    #[schema(example = "مراغه")]
    pub city: String,
    #[schema(example = "041")]
    pub city_code: String,
    #[schema(example = "37261234")]
    pub phone: String,
    #[schema(example = "مراغه - خیابان اول - پلاک ۵")]
    pub address: String,
    #[schema(example = true)]
    pub step_free_access: bool,
    #[schema(example = false)]
    pub eye_exception_capture: bool,
    #[schema(example = false)]
    pub fingerprint_exception_capture: bool,
    #[schema(example = false)]
    pub home_visits: bool,
    /// Inactive offices are not offered to citizens and take no bookings.
    #[schema(example = true)]
    pub active: bool,
    #[schema(example = "2026-11-22T06:30:00Z")]
    pub created_at: DateTime<Utc>,
    #[schema(example = "2026-11-22T06:30:00Z")]
    pub updated_at: DateTime<Utc>,
}

impl From<&OfficeRow> for AdminOffice {
    fn from(o: &OfficeRow) -> Self {
        Self {
            id: o.id.clone(),
            code: o.code.clone(),
            name: o.name.clone(),
            kind: rules::OfficeKind::parse(&o.kind).map_or(wire::OfficeKind::CivilRegistry, Into::into),
            province: o.province.clone(),
            city: o.city.clone(),
            city_code: o.city_code.clone(),
            phone: o.phone.clone(),
            address: o.address.clone(),
            step_free_access: o.step_free_access,
            eye_exception_capture: o.eye_exception_capture,
            fingerprint_exception_capture: o.fingerprint_exception_capture,
            home_visits: o.home_visits,
            active: o.active,
            created_at: o.created_at.and_utc(),
            updated_at: o.updated_at.and_utc(),
        }
    }
}

crate::page_type!(
    /// Offices, by code.
    OfficePage,
    AdminOffice,
    "041-MRG-03"
);

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OfficeListQuery {
    /// Only offices of this city phone code.
    #[param(example = "041")]
    pub city_code: Option<String>,
    /// Only active (`true`) or inactive (`false`) offices.
    #[param(example = true)]
    pub active: Option<bool>,
    /// Page size, 1–500 (default 50).
    #[param(example = 50, minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page (the last code seen).
    #[param(example = "041-MRG-02")]
    pub cursor: Option<String>,
}

/// An office opened or closed for booking, with the appointments it had.
#[derive(Debug, Serialize, ToSchema)]
pub struct OfficeStatusChange {
    pub office: AdminOffice,
    /// Paid bookings from today on when the change was made.
    #[schema(example = 12)]
    pub future_bookings: i64,
    /// Unpaid holds from today on (they lapse when their payment window closes).
    #[schema(example = 1)]
    pub future_holds: i64,
    /// Taken out of service: the citizens booked there from today on who were moved back to
    /// choosing (fee kept, no ban, the nearest free seat offered) and told by SMS.
    #[schema(example = 12)]
    pub notified: usize,
}

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

/// An office's weekly capacity. A weekday and shift not listed is closed — Friday included,
/// unless a rule opens it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WeeklyCapacityRequest {
    #[schema(example = json!([
        {"weekday": "saturday", "shift": "morning", "capacity": 25},
        {"weekday": "saturday", "shift": "afternoon", "capacity": 20},
        {"weekday": "thursday", "shift": "morning", "capacity": 15}
    ]))]
    pub rules: Vec<CapacityRule>,
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OverrideRequest {
    /// Today or later (up to a year ahead).
    #[schema(example = "2026-12-01")]
    pub date: NaiveDate,
    pub shift: wire::Shift,
    /// Seats that day, 0–1000 (0 closes the shift; refused while citizens are booked).
    #[schema(example = 10, maximum = 1000)]
    pub capacity: u32,
}

/// One slot after a change.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlotView {
    #[schema(example = "041-MRG-01")]
    pub office_id: String,
    #[schema(example = "2026-12-01")]
    pub date: NaiveDate,
    #[schema(example = "1405-09-10")]
    pub date_jalali: String,
    pub shift: wire::Shift,
    #[schema(example = 10)]
    pub capacity: i32,
    /// Seats held or booked.
    #[schema(example = 3)]
    pub taken: i32,
    #[schema(example = false)]
    pub closed: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DateRangeQuery {
    /// First date (default today, Tehran).
    #[param(example = "2026-11-22")]
    pub from: Option<NaiveDate>,
    /// Last date (default a year after `from`; at most two years after it).
    #[param(example = "2027-11-22")]
    pub to: Option<NaiveDate>,
    /// 1–500, default 50.
    #[param(minimum = 1, maximum = 500, example = 50)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(example = "2026-12-01.0")]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClosureView {
    #[schema(example = "2026-12-01")]
    pub date: NaiveDate,
    #[schema(example = "1405-09-10")]
    pub date_jalali: String,
    pub shift: wire::Shift,
    #[schema(example = "تعمیرات ساختمان")]
    pub reason: String,
}

crate::page_type!(
    /// An office's closures, by date and shift.
    ClosurePage,
    ClosureView,
    "2026-12-01.0"
);

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClosureRequest {
    /// Today or later (up to a year ahead).
    #[schema(example = "2026-12-01")]
    pub date: NaiveDate,
    /// One shift; leave out to close the whole day.
    #[serde(default)]
    pub shift: Option<wire::Shift>,
    /// Why (up to 200 characters), for the audit log and the operators.
    #[schema(example = "تعمیرات ساختمان")]
    pub reason: String,
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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReopenQuery {
    /// Reopen one shift; leave out to reopen every closed shift of the date.
    pub shift: Option<wire::Shift>,
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

#[derive(Debug, Serialize, ToSchema)]
pub struct HolidayView {
    #[schema(example = "2027-02-11")]
    pub date: NaiveDate,
    #[schema(example = "1405-11-22")]
    pub date_jalali: String,
    #[schema(example = "پیروزی انقلاب اسلامی")]
    pub name: String,
}

crate::page_type!(
    /// National holidays, by date.
    HolidayPage,
    HolidayView,
    "2027-02-11"
);

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HolidayRequest {
    /// Today or later (up to a year ahead). Declaring a date again renames it.
    #[schema(example = "2027-02-11")]
    pub date: NaiveDate,
    #[schema(example = "پیروزی انقلاب اسلامی")]
    pub name: String,
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

fn jalali(d: NaiveDate) -> String {
    JalaliDate::from_gregorian(d).map(|j| j.to_string()).unwrap_or_default()
}

fn today(state: &AppState) -> NaiveDate {
    tehran_date(state.now())
}

/// The dates slots exist for: tomorrow to one day past the booking horizon, as the daily
/// `materialize_slots` job keeps them.
fn slot_range(now: DateTime<Utc>, state: &AppState) -> (NaiveDate, NaiveDate) {
    let (first, last) = booking_window(now, &state.policy);
    (first, last + Duration::days(1))
}

pub(crate) fn admin_actor(req: &HttpRequest, admin: &AdminPrincipal) -> Actor {
    actor(req, "admin", &admin.0.staff_id)
}

fn load_office(conn: &mut DbConn, id: &str) -> Result<OfficeRow, ApiError> {
    offices::find(conn, id)?.ok_or(ApiError::Domain(DomainError::OfficeNotFound))
}

/// Parses an office request into valid fields, or a 422 listing every bad field.
fn parse_office(body: &OfficeRequest) -> Result<(OfficeDetails, Facilities), ApiError> {
    let kind: rules::OfficeKind = body.kind.into();
    let input = OfficeInput {
        code: &body.code,
        name: &body.name,
        kind: kind.as_str(),
        province: &body.province,
        city: &body.city,
        city_code: &body.city_code,
        phone: &body.phone,
        address: &body.address,
    };
    let details = OfficeDetails::parse(&input).map_err(|errors| {
        let mut e = FieldErrors::default();
        for (field, error) in errors {
            e.push(field, error);
        }
        e.finish().expect_err("errors were listed")
    })?;
    let facilities = Facilities {
        step_free_access: body.step_free_access,
        eye_exception_capture: body.eye_exception_capture,
        fingerprint_exception_capture: body.fingerprint_exception_capture,
        home_visits: body.home_visits,
    };
    Ok((details, facilities))
}

/// The row an office would be with these fields; id, active flag and creation time kept.
fn office_row(base: Option<&OfficeRow>, d: &OfficeDetails, f: &Facilities, now: DateTime<Utc>) -> OfficeRow {
    let now = now.naive_utc();
    OfficeRow {
        id: base.map_or_else(|| uuid::Uuid::now_v7().to_string(), |b| b.id.clone()),
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

fn stored_rules(conn: &mut DbConn, office_id: &str) -> Result<Vec<CapacityRule>, DbError> {
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
    office_id: &str,
    week: &WeeklyCapacity,
    range: (NaiveDate, NaiveDate),
) -> Result<usize, DbError> {
    offices::set_weekly_capacity(conn, office_id, &as_store(week))?;
    let last = offices::last_slot_date(conn, office_id)?.map_or(range.1, |d| d.max(range.1));
    offices::recompute_range(conn, office_id, range.0, last)
}

fn capacity_view(conn: &mut DbConn, office_id: &str, from: NaiveDate) -> Result<CapacityView, DbError> {
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
        office_id: office_id.to_owned(),
        rules: stored_rules(conn, office_id)?,
        overrides,
        slots_changed: None,
    })
}

fn shifts_of(shift: Option<wire::Shift>) -> Vec<Shift> {
    shift.map_or_else(|| Shift::ALL.to_vec(), |s| vec![s.into()])
}

// ---------------------------------------------------------------- offices

/// Offices by code, a page at a time, optionally of one city or only (in)active ones.
#[utoipa::path(operation_id = "admin_list_offices", tag = "admin", security(("staff" = [])), params(OfficeListQuery),
    responses((status = 200, description = "A page of offices", body = OfficePage), StaffRead))]
#[get("/api/v1/admin/offices")]
pub async fn list_offices(
    state: web::Data<AppState>,
    _admin: AdminPrincipal,
    query: web::Query<OfficeListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let mut e = FieldErrors::default();
    let city_code = q.city_code.as_deref().and_then(|c| e.take("city_code", rules::city_code(c)));
    e.finish()?;
    let limit = page::limit(q.limit)?;
    let filter = offices::OfficeFilter { city_code, active: q.active, after_code: q.cursor };
    let rows = state.run(move |conn| offices::list(conn, &filter, page::fetch(limit))).await?;
    let page = Page::of(rows, limit, |o| o.code.clone()).map(|o| AdminOffice::from(&o));
    Ok(HttpResponse::Ok().json(OfficePage::from(page)))
}

/// Creates an office (active, no capacity yet: set it with `PUT …/capacity`).
#[utoipa::path(operation_id = "admin_create_office", tag = "admin", security(("staff" = [])), request_body = OfficeRequest,
    responses((status = 201, description = "Created", body = AdminOffice,
        headers(("Location" = String, description = "The new office"))), StaffWrite))]
#[post("/api/v1/admin/offices")]
pub async fn create_office(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AdminPrincipal,
    body: crate::extract::Json<OfficeRequest>,
) -> Result<HttpResponse, ApiError> {
    let (details, facilities) = parse_office(&body)?;
    let now = state.now();
    let range = slot_range(now, &state);
    let actor = admin_actor(&req, &admin);
    let row = state
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
        .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/admin/offices/{}", row.id)))
        .json(AdminOffice::from(&row)))
}

/// One office.
#[utoipa::path(operation_id = "admin_get_office", tag = "admin", security(("staff" = [])),
    params(("id" = String, Path, description = "Office id", example = "041-MRG-01")),
    responses((status = 200, description = "The office", body = AdminOffice), StaffRead))]
#[get("/api/v1/admin/offices/{id}")]
pub async fn get_office(
    state: web::Data<AppState>,
    _admin: AdminPrincipal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let row = state.run_api(move |conn| load_office(conn, &id)).await?;
    Ok(HttpResponse::Ok().json(AdminOffice::from(&row)))
}

/// Replaces an office's fields.
///
/// The code may change if the new one is free. Capacity and the active flag have their own
/// endpoints.
#[utoipa::path(operation_id = "admin_update_office", tag = "admin", security(("staff" = [])), request_body = OfficeRequest,
    params(("id" = String, Path, description = "Office id", example = "041-MRG-01")),
    responses((status = 200, description = "Updated", body = AdminOffice), StaffWrite))]
#[put("/api/v1/admin/offices/{id}")]
pub async fn update_office(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AdminPrincipal,
    path: web::Path<String>,
    body: crate::extract::Json<OfficeRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let (details, facilities) = parse_office(&body)?;
    let now = state.now();
    let actor = admin_actor(&req, &admin);
    let row = state
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
        .await?;
    Ok(HttpResponse::Ok().json(AdminOffice::from(&row)))
}

async fn set_active(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AdminPrincipal,
    id: String,
    active: bool,
) -> Result<HttpResponse, ApiError> {
    let now = state.now();
    let today = tehran_date(now);
    let range = slot_range(now, &state);
    let actor = admin_actor(&req, &admin);
    let (row, seats) = state
        .run_api(move |conn| {
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
    // Seats may have been added: forget the slots refused as full.
    state.full_slots.clear();
    let notified = if row.active {
        0
    } else {
        let scope = DisplacedScope { office_id: Some(row.id.clone()), from: Some(today), to: None };
        crate::journey::closures::displace(&state, scope).await?
    };
    Ok(HttpResponse::Ok().json(OfficeStatusChange {
        office: AdminOffice::from(&row),
        future_bookings: seats.booked,
        future_holds: seats.held,
        notified,
    }))
}

/// Takes an office out of service.
///
/// It disappears from availability and takes no new bookings. The citizens booked there from
/// today on are moved back to choosing — fee kept, no no-show, the nearest free seat in the
/// city kept for them for a few days — and told by SMS; `notified` counts them.
#[utoipa::path(operation_id = "admin_deactivate_office", tag = "admin", security(("staff" = [])),
    params(("id" = String, Path, description = "Office id", example = "041-MRG-01")),
    responses((status = 200, description = "Deactivated (or already inactive)", body = OfficeStatusChange), StaffWrite))]
#[post("/api/v1/admin/offices/{id}/deactivate")]
pub async fn deactivate_office(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AdminPrincipal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    set_active(req, state, admin, path.into_inner(), false).await
}

/// Puts an office back in service (its missing slots are created).
#[utoipa::path(operation_id = "admin_activate_office", tag = "admin", security(("staff" = [])),
    params(("id" = String, Path, description = "Office id", example = "041-MRG-01")),
    responses((status = 200, description = "Activated (or already active)", body = OfficeStatusChange), StaffWrite))]
#[post("/api/v1/admin/offices/{id}/activate")]
pub async fn activate_office(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AdminPrincipal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    set_active(req, state, admin, path.into_inner(), true).await
}

// ---------------------------------------------------------------- capacity

/// The weekly capacity and upcoming date overrides of an office.
#[utoipa::path(operation_id = "admin_get_office_capacity", tag = "admin", security(("staff" = [])),
    params(("id" = String, Path, description = "Office id", example = "041-MRG-01")),
    responses((status = 200, description = "Capacity", body = CapacityView), StaffRead))]
#[get("/api/v1/admin/offices/{id}/capacity")]
pub async fn get_capacity(
    state: web::Data<AppState>,
    _admin: AdminPrincipal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let today = today(&state);
    let view = state
        .run_api(move |conn| {
            load_office(conn, &id)?;
            Ok(capacity_view(conn, &id, today)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Replaces the weekly capacity and recomputes the future slots.
///
/// Every slot from tomorrow to the booking horizon (and beyond, wherever slots exist) is
/// recomputed in the same transaction. A capacity below the seats already taken on some
/// date is refused with `capacity_below_bookings`, naming the first such date, shift and
/// count, and nothing changes.
#[utoipa::path(operation_id = "admin_set_office_capacity", tag = "admin", security(("staff" = [])), request_body = WeeklyCapacityRequest,
    params(("id" = String, Path, description = "Office id", example = "041-MRG-01")),
    responses((status = 200, description = "Saved; slots recomputed", body = CapacityView), StaffWrite))]
#[put("/api/v1/admin/offices/{id}/capacity")]
pub async fn put_capacity(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AdminPrincipal,
    path: web::Path<String>,
    body: crate::extract::Json<WeeklyCapacityRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let list: Vec<WeeklyRule> = body
        .rules
        .iter()
        .map(|r| WeeklyRule { weekday: r.weekday.into(), shift: r.shift.into(), capacity: r.capacity })
        .collect();
    let week = WeeklyCapacity::parse(&list).map_err(|errors| {
        let mut e = FieldErrors::default();
        for (i, error) in errors {
            e.push(&format!("rules[{i}]"), error);
        }
        e.finish().expect_err("errors were listed")
    })?;
    let now = state.now();
    let range = slot_range(now, &state);
    let actor = admin_actor(&req, &admin);
    let view = state
        .run_api(move |conn| {
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
        .await?;
    // Seats may have been added: forget the slots refused as full.
    state.full_slots.clear();
    Ok(HttpResponse::Ok().json(view))
}

/// Sets one date's capacity for one shift instead of the weekday's.
///
/// 0 closes the shift. Refused with `capacity_below_bookings` when fewer seats than already
/// taken.
#[utoipa::path(operation_id = "admin_override_office_capacity", tag = "admin", security(("staff" = [])), request_body = OverrideRequest,
    params(("id" = String, Path, description = "Office id", example = "041-MRG-01")),
    responses((status = 200, description = "The slot as it now is", body = SlotView), StaffWrite))]
#[post("/api/v1/admin/offices/{id}/capacity-overrides")]
pub async fn post_override(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AdminPrincipal,
    path: web::Path<String>,
    body: crate::extract::Json<OverrideRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let body = body.into_inner();
    let now = state.now();
    let mut e = FieldErrors::default();
    let date = e.take("date", planning_date(body.date, tehran_date(now)));
    let capacity = e.take("capacity", rules::seat_count(body.capacity));
    e.finish()?;
    let (date, capacity) = (date.expect("checked"), capacity.expect("checked"));
    let shift: Shift = body.shift.into();
    let actor = admin_actor(&req, &admin);
    let slot = state
        .run_api(move |conn| {
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
        .await?;
    // Seats may have been added: forget the slots refused as full.
    state.full_slots.clear();
    Ok(HttpResponse::Ok().json(SlotView {
        date_jalali: jalali(slot.date),
        office_id: slot.office_id,
        date: slot.date,
        shift: shift.into(),
        capacity: slot.capacity,
        taken: slot.taken,
        closed: slot.closed,
    }))
}

// ---------------------------------------------------------------- closures

/// An office's closures in a date range (default: from today, a year ahead).
#[utoipa::path(operation_id = "admin_list_office_closures", tag = "admin", security(("staff" = [])), params(
        ("id" = String, Path, description = "Office id", example = "041-MRG-01"), DateRangeQuery),
    responses((status = 200, description = "Closures, by date", body = ClosurePage), StaffRead))]
#[get("/api/v1/admin/offices/{id}/closures")]
pub async fn list_closures(
    state: web::Data<AppState>,
    _admin: AdminPrincipal,
    path: web::Path<String>,
    query: web::Query<DateRangeQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let (from, to) = range_of(&query, today(&state))?;
    let limit = page::limit(query.limit)?;
    let rows: Vec<(NaiveDate, Shift, String)> = state
        .run_api(move |conn| {
            load_office(conn, &id)?;
            Ok(offices::closures_between(conn, &id, from, to)?
                .into_iter()
                .filter_map(|(date, s, reason)| Some((date, Shift::parse(&s)?, reason)))
                .collect())
        })
        .await?;
    // A bounded range (at most two years of shifts), paged in memory by date and shift.
    let cursor_of = |(date, shift, _): &(NaiveDate, Shift, String)| format!("{date}.{}", *shift as u8);
    let page = Page::after(rows, page::Order::Ascending, query.cursor.as_deref(), limit, cursor_of)
        .map(|(date, shift, reason)| ClosureView { date, date_jalali: jalali(date), shift: shift.into(), reason });
    Ok(HttpResponse::Ok().json(ClosurePage::from(page)))
}

fn range_of(q: &DateRangeQuery, today: NaiveDate) -> Result<(NaiveDate, NaiveDate), ApiError> {
    listing_range(q.from, q.to, today).map_err(|(field, error)| {
        let mut e = FieldErrors::default();
        e.push(field, error);
        e.finish().expect_err("an error was listed")
    })
}

/// Closes an office on a date (one shift, or both).
///
/// Its slots close at once. Each citizen booked there is moved back to choosing an
/// appointment — no no-show, no ban, the fee kept — with the nearest free seat (this office
/// first) kept for them for a few days, and told by SMS; `notified` counts them. The no-show
/// job never marks a booking on a closed day.
#[utoipa::path(operation_id = "admin_close_office", tag = "admin", security(("staff" = [])), request_body = ClosureRequest,
    params(("id" = String, Path, description = "Office id", example = "041-MRG-01")),
    responses((status = 201, description = "Closed", body = ClosureResult), StaffWrite))]
#[post("/api/v1/admin/offices/{id}/closures")]
pub async fn post_closure(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AdminPrincipal,
    path: web::Path<String>,
    body: crate::extract::Json<ClosureRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let body = body.into_inner();
    let now = state.now();
    let mut e = FieldErrors::default();
    let date = e.take("date", planning_date(body.date, tehran_date(now)));
    let reason = e.take("reason", rules::text(&body.reason));
    e.finish()?;
    let (date, reason) = (date.expect("checked"), reason.expect("checked"));
    let shifts = shifts_of(body.shift);
    let actor = admin_actor(&req, &admin);
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
                    &SeatsQuery {
                        office_id: Some(&id),
                        from: Some(date),
                        to: Some(date),
                        shift: body.shift.map(Into::into),
                    },
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
                    office_id: id,
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
    let scope = DisplacedScope { office_id: Some(result.office_id.clone()), from: Some(date), to: Some(date) };
    let result = ClosureResult { notified: crate::journey::closures::displace(&state, scope).await?, ..result };
    Ok(HttpResponse::Created()
        .insert_header((
            "Location",
            format!("/api/v1/admin/offices/{}/closures?from={}&to={}", result.office_id, result.date, result.date),
        ))
        .json(result))
}

/// Removes a closure and reopens the slots.
///
/// One shift, or every closed shift of the date. The slots reopen as the capacity rules
/// say (a holiday keeps them closed).
#[utoipa::path(operation_id = "admin_reopen_office", tag = "admin", security(("staff" = [])), params(
        ("id" = String, Path, description = "Office id", example = "041-MRG-01"),
        ("date" = NaiveDate, Path, description = "The closed date", example = "2026-12-01"),
        ReopenQuery),
    responses((status = 200, description = "Reopened", body = ReopenResult), StaffWrite))]
#[delete("/api/v1/admin/offices/{id}/closures/{date}")]
pub async fn delete_closure(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AdminPrincipal,
    path: web::Path<(String, NaiveDate)>,
    query: web::Query<ReopenQuery>,
) -> Result<HttpResponse, ApiError> {
    let (id, date) = path.into_inner();
    let shifts = shifts_of(query.shift);
    let now = state.now();
    let actor = admin_actor(&req, &admin);
    let result = state
        .run_api(move |conn| {
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
                Ok(ReopenResult { office_id: id, date, reopened: reopened.into_iter().map(Into::into).collect() })
            })
        })
        .await?;
    // Seats may have been added: forget the slots refused as full.
    state.full_slots.clear();
    Ok(HttpResponse::Ok().json(result))
}

// ---------------------------------------------------------------- holidays

/// National holidays in a date range (default: from today, a year ahead).
#[utoipa::path(operation_id = "admin_list_holidays", tag = "admin", security(("staff" = [])), params(DateRangeQuery),
    responses((status = 200, description = "Holidays, by date", body = HolidayPage), StaffRead))]
#[get("/api/v1/admin/holidays")]
pub async fn list_holidays(
    state: web::Data<AppState>,
    _admin: AdminPrincipal,
    query: web::Query<DateRangeQuery>,
) -> Result<HttpResponse, ApiError> {
    let (from, to) = range_of(&query, today(&state))?;
    let limit = page::limit(query.limit)?;
    // From the day after the cursor's: a holiday is one date.
    let after = match query.cursor.as_deref() {
        Some(c) => Some(NaiveDate::parse_from_str(c, "%Y-%m-%d").map_err(|_| ApiError::field("cursor", "invalid"))?),
        None => None,
    };
    let from = after.and_then(|d| d.succ_opt()).map_or(from, |d| d.max(from));
    let rows = state.run(move |conn| offices::holidays_named(conn, from, to)).await?;
    let page =
        Page::of(rows.into_iter().take(usize::try_from(page::fetch(limit)).unwrap_or(0)).collect(), limit, |(d, _)| {
            d.to_string()
        })
        .map(|(date, name)| HolidayView { date, date_jalali: jalali(date), name });
    Ok(HttpResponse::Ok().json(HolidayPage::from(page)))
}

/// Declares a national holiday.
///
/// Every office's slots that day close at once. The citizens booked that day are moved back
/// to choosing (fee kept, no ban, a seat offered) and told by SMS; `notified` counts them.
#[utoipa::path(operation_id = "admin_declare_holiday", tag = "admin", security(("staff" = [])), request_body = HolidayRequest,
    responses((status = 201, description = "Declared", body = HolidayResult), StaffWrite))]
#[post("/api/v1/admin/holidays")]
pub async fn post_holiday(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AdminPrincipal,
    body: crate::extract::Json<HolidayRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let now = state.now();
    let mut e = FieldErrors::default();
    let date = e.take("date", planning_date(body.date, tehran_date(now)));
    let name = e.take("name", rules::text(&body.name));
    e.finish()?;
    let (date, name) = (date.expect("checked"), name.expect("checked"));
    let actor = admin_actor(&req, &admin);
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
    let result = HolidayResult { notified: crate::journey::closures::displace(&state, scope).await?, ..result };
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/admin/holidays?from={}&to={}", result.date, result.date)))
        .json(result))
}

// ---------------------------------------------------------------- CSV import

/// The most data rows one import may carry.
pub const IMPORT_MAX_ROWS: usize = 10_000;
/// The largest import body (10,000 rows of long Persian addresses fit easily).
const IMPORT_MAX_BYTES: usize = 16 * 1024 * 1024;

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
    let mut errors = RowErrors::default();
    for (i, record) in reader.records().enumerate() {
        let row = i + 2;
        if i >= IMPORT_MAX_ROWS {
            return Err(ApiError::Unprocessable { code: "csv_too_many_rows" });
        }
        let record = match record {
            Ok(r) if r.len() == at.len() => r,
            _ => {
                errors.code(format!("row {row}"), "csv_row_malformed");
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
            .map_err(|list| list.iter().for_each(|(column, e)| errors.domain(row, column, e)))
            .ok();
        let mut flag = |column: &str| rules::flag(cell(column)).map_err(|e| errors.domain(row, column, &e)).ok();
        let facilities = (
            flag("step_free_access"),
            flag("eye_exception_capture"),
            flag("fingerprint_exception_capture"),
            flag("home_visits"),
        );
        let mut seats = |column: &str| rules::seats(cell(column)).map_err(|e| errors.domain(row, column, &e)).ok();
        let (morning, afternoon) = (seats("morning_capacity"), seats("afternoon_capacity"));
        if let Ok(code) = rules::office_code(cell("code"))
            && !codes.insert(code)
        {
            errors.domain(row, "code", &DomainError::OfficeCodeTaken);
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
    errors.finish()?;
    if rows.is_empty() {
        return Err(ApiError::Unprocessable { code: "csv_empty" });
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
    let mut errors = RowErrors::default();
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
                    errors.domain(r.row, column, &e);
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
    errors.finish()?;
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
    let ids: Vec<String> = inserts.into_iter().map(|o| o.id).collect();
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

/// Reads the body up to a limit (this endpoint takes far more than the JSON limit).
pub(crate) async fn read_body(mut payload: web::Payload, limit: usize) -> Result<web::BytesMut, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest { code: "malformed_body", detail: e.to_string() })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Creates and updates offices in bulk from a CSV file.
///
/// The body is `text/csv`, UTF-8, with a header row and at most 10,000 rows. Columns: `code,name,kind,province,city,city_code,phone,address,
/// step_free_access,eye_exception_capture,fingerprint_exception_capture,home_visits,
/// morning_capacity,afternoon_capacity`; flags are `true`/`false` (or `1`/`0`, `yes`/`no`,
/// `بله`/`خیر`); the capacities apply Saturday to Wednesday, Thursday has the morning
/// shift only, Friday is closed. All or nothing: if any cell is bad the answer is 422 with
/// every bad cell in `errors[]` (`field` = `row 3: phone`, the header being row 1) and
/// nothing is imported. Otherwise one transaction creates new codes (active, slots up to
/// the booking horizon) and updates existing ones (future slots recomputed).
#[utoipa::path(operation_id = "admin_import_offices", tag = "admin", security(("staff" = [])),
    request_body(content = String, content_type = "text/csv", description = "The office table, UTF-8, with a header row",
        example = "code,name,kind,province,city,city_code,phone,address,step_free_access,eye_exception_capture,fingerprint_exception_capture,home_visits,morning_capacity,afternoon_capacity\n041-MRG-03,دفتر پیشخوان دولت خیابان اول,government_counter,آذربایجان شرقی,مراغه,041,37261234,مراغه - خیابان اول - پلاک ۵,true,false,false,false,25,20\n"),
    responses((status = 200, description = "Imported", body = ImportResult), StaffWrite))]
#[post("/api/v1/admin/offices/import")]
pub async fn import_offices(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AdminPrincipal,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let is_csv = actix_web::HttpMessage::mime_type(&req)
        .ok()
        .flatten()
        .is_some_and(|m| m.type_() == "text" && m.subtype() == "csv");
    if !is_csv {
        return Err(ApiError::UnsupportedMediaType);
    }
    let body = read_body(payload, IMPORT_MAX_BYTES).await?;
    let rows = web::block(move || parse_import(&body)).await??;
    let now = state.now();
    let range = slot_range(now, &state);
    let actor = admin_actor(&req, &admin);
    let result =
        state.run_api(move |conn| write_tx(conn, |conn| apply_import(conn, &rows, &actor, now, range))).await?;
    // Seats may have been added: forget the slots refused as full.
    state.full_slots.clear();
    Ok(HttpResponse::Ok().json(result))
}

/// Carries applications over from the old Portal (docs/domain/legacy-import.md) from a CSV file: the
/// same import as `ncr import-legacy FILE`.
///
/// The body is `text/csv`, UTF-8, with a header row (columns in
/// `docs/domain/legacy-import.md`: `legacy_id,national_id,serial,birth_date_jalali,
/// birth_date_hijri,gender,religion,mother_name,mobile,first_name,last_name,state,
/// tracking_code,appointment_office,appointment_date_jalali,appointment_shift,
/// delivery_office,can_leave_home,can_climb_stairs,pupils_visible,fingers_intact`; the
/// optional ones may be left out). `state` is `draft` (unpaid) or `registered` (paid, with
/// its tracking code and, if booked, its appointment). All or nothing: if any cell is bad —
/// in the file, or against the database (a national code that already has an application,
/// a tracking code in use, a full or closed slot, an unknown office) — the answer is 422
/// with every bad cell in `errors[]` (`field` = `row 3: mobile`) and nothing is imported.
/// Idempotent: a row imported before, unchanged, is counted as `unchanged`; changed, it is
/// a bad cell (`legacy_changed`). Personal data is sealed like every other application's.
#[utoipa::path(operation_id = "admin_import_legacy_applications", tag = "admin", security(("staff" = [])),
    request_body(content = String, content_type = "text/csv", description = "The old applications, UTF-8, with a header row",
        example = "legacy_id,national_id,serial,birth_date_jalali,gender,religion,mother_name,mobile,state,tracking_code,appointment_office,appointment_date_jalali,appointment_shift\nP-000123,2580200606,883810,1369-03-19,female,islam,شهرزاد,09145128136,registered,4973201670,041-MRG-01,1405-09-10,morning\n"),
    responses((status = 200, description = "Imported (or nothing to do)", body = crate::journey::legacy::LegacyResult), StaffWrite))]
#[post("/api/v1/admin/legacy-applications")]
pub async fn import_legacy(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AdminPrincipal,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let is_csv = actix_web::HttpMessage::mime_type(&req)
        .ok()
        .flatten()
        .is_some_and(|m| m.type_() == "text" && m.subtype() == "csv");
    if !is_csv {
        return Err(ApiError::UnsupportedMediaType);
    }
    let body = read_body(payload, crate::journey::legacy::MAX_BYTES).await?;
    let actor = admin_actor(&req, &admin);
    let now = state.now();
    let (pii, policy) = (state.pii.clone(), state.policy.clone());
    let result =
        state.run_api(move |conn| crate::journey::legacy::import(conn, &pii, &policy, &body, &actor, now)).await?;
    // Seats were taken: a slot remembered as full is still full, but be exact.
    state.full_slots.clear();
    Ok(HttpResponse::Ok().json(result))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "code,name,kind,province,city,city_code,phone,address,step_free_access,eye_exception_capture,fingerprint_exception_capture,home_visits,morning_capacity,afternoon_capacity";

    fn fields(e: ApiError) -> Vec<(String, String)> {
        match e {
            ApiError::Fields(f) => f.into_iter().map(|(field, code, _, _)| (field, code)).collect(),
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
        assert!(matches!(parse_import(many.as_bytes()), Err(ApiError::Unprocessable { code: "csv_too_many_rows" })));
        assert!(matches!(
            parse_import(format!("{HEADER}\n").as_bytes()),
            Err(ApiError::Unprocessable { code: "csv_empty" })
        ));
    }
}
