//! Office administration: offices, weekly capacity and date overrides, closures, national
//! holidays, and the bulk CSV import. Administrators only (`AdminPrincipal`: 401 without a
//! staff token, 403 for an operator). Every change is audited and every slot change runs in
//! the same transaction as the rule that caused it, so nothing is half-written. The rules
//! themselves (valid fields, which seats a slot offers, when bookings would be stranded)
//! are `domain::offices`.

use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};
use chrono::{DateTime, NaiveDate, Utc};
use domain::calendar::tehran_date;
use domain::offices::{
    self as rules, Facilities, OfficeDetails, OfficeInput, Shift, WeeklyCapacity, WeeklyRule, listing_range,
    planning_date,
};
use domain::record_ids::OfficeId;
use futures_util::StreamExt;
use persistence::audit::Actor;
use persistence::offices::{self, OfficeRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::AdminPrincipal;
use crate::error::{ApiCode, ApiError, FieldErrors};
use crate::journey::actor;
use crate::journey::admin_offices::{self as usecase, jalali};
pub use crate::journey::admin_offices::{
    CapacityRule, CapacityView, ClosureResult, HolidayResult, IMPORT_COLUMNS, IMPORT_MAX_ROWS, ImportResult,
    OverrideView, ReopenResult,
};
use crate::page::{Order, PageRequest};
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
            id: o.id.to_string(),
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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReopenQuery {
    /// Reopen one shift; leave out to reopen every closed shift of the date.
    pub shift: Option<wire::Shift>,
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

// ---------------------------------------------------------------- helpers

fn today(state: &AppState) -> NaiveDate {
    tehran_date(state.now())
}

pub(crate) fn admin_actor(req: &HttpRequest, admin: &AdminPrincipal) -> Actor {
    actor(req, "admin", &admin.0.staff_id)
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
    let paging = PageRequest::new(q.limit, q.cursor)?;
    let filter = offices::OfficeFilter { city_code, active: q.active, after_code: paging.cursor.clone() };
    let fetch = paging.fetch();
    let rows = state.run(move |conn| offices::list(conn, &filter, fetch)).await?;
    let page = paging.page(rows, |o| o.code.clone()).map(|o| AdminOffice::from(&o));
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
    let row = usecase::create_office(&state, admin_actor(&req, &admin), details, facilities).await?;
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
    let row = usecase::office(&state, path.into_inner().into()).await?;
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
    let id = OfficeId::from(path.into_inner());
    let (details, facilities) = parse_office(&body)?;
    let row = usecase::update_office(&state, admin_actor(&req, &admin), id, details, facilities).await?;
    Ok(HttpResponse::Ok().json(AdminOffice::from(&row)))
}

async fn set_active(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: AdminPrincipal,
    id: String,
    active: bool,
) -> Result<HttpResponse, ApiError> {
    let change = usecase::set_active(&state, admin_actor(&req, &admin), id.into(), active).await?;
    Ok(HttpResponse::Ok().json(OfficeStatusChange {
        office: AdminOffice::from(&change.office),
        future_bookings: change.seats.booked,
        future_holds: change.seats.held,
        notified: change.notified,
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
    let view = usecase::capacity(&state, path.into_inner().into(), today(&state)).await?;
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
    let id = OfficeId::from(path.into_inner());
    let list: Vec<WeeklyRule> = body
        .rules
        .iter()
        .map(|r| WeeklyRule { weekday: r.weekday.into(), shift: r.shift.into(), capacity: r.capacity })
        .collect();
    let week = WeeklyCapacity::parse(&list).map_err(|errors| {
        let mut e = FieldErrors::default();
        for (i, error) in errors {
            e.push(format!("rules[{i}]"), error);
        }
        e.finish().expect_err("errors were listed")
    })?;
    let view = usecase::set_capacity(&state, admin_actor(&req, &admin), id, week).await?;
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
    let id = OfficeId::from(path.into_inner());
    let body = body.into_inner();
    let now = state.now();
    let mut e = FieldErrors::default();
    let date = e.take("date", planning_date(body.date, tehran_date(now)));
    let capacity = e.take("capacity", rules::seat_count(body.capacity));
    e.finish()?;
    let (date, capacity) = (date.expect("checked"), capacity.expect("checked"));
    let shift: Shift = body.shift.into();
    let slot = usecase::override_capacity(&state, admin_actor(&req, &admin), id, date, shift, capacity).await?;
    Ok(HttpResponse::Ok().json(SlotView {
        date_jalali: jalali(slot.date),
        office_id: slot.office_id.into(),
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
    let id = OfficeId::from(path.into_inner());
    let (from, to) = range_of(&query, today(&state))?;
    let paging = PageRequest::new(query.limit, query.cursor.clone())?;
    let rows = usecase::closures(&state, id, from, to).await?;
    // A bounded range (at most two years of shifts), paged in memory by date and shift.
    let cursor_of = |(date, shift, _): &(NaiveDate, Shift, String)| format!("{date}.{}", *shift as u8);
    let page = paging.page_in_memory(rows, Order::Ascending, cursor_of).map(|(date, shift, reason)| ClosureView {
        date,
        date_jalali: jalali(date),
        shift: shift.into(),
        reason,
    });
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
    let id = OfficeId::from(path.into_inner());
    let body = body.into_inner();
    let now = state.now();
    let mut e = FieldErrors::default();
    let date = e.take("date", planning_date(body.date, tehran_date(now)));
    let reason = e.take("reason", rules::text(&body.reason));
    e.finish()?;
    let (date, reason) = (date.expect("checked"), reason.expect("checked"));
    let shift = body.shift.map(Shift::from);
    let result = usecase::close(&state, admin_actor(&req, &admin), id, date, shift, reason).await?;
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
    let shift = query.shift.map(Shift::from);
    let result = usecase::reopen(&state, admin_actor(&req, &admin), id.into(), date, shift).await?;
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
    let paging = PageRequest::new(query.limit, query.cursor.clone())?;
    // From the day after the cursor's: a holiday is one date.
    let after = match paging.cursor() {
        Some(c) => {
            Some(NaiveDate::parse_from_str(c, "%Y-%m-%d").map_err(|_| ApiError::field("cursor", ApiCode::Invalid))?)
        }
        None => None,
    };
    let from = after.and_then(|d| d.succ_opt()).map_or(from, |d| d.max(from));
    let rows = state.run(move |conn| offices::holidays_named(conn, from, to)).await?;
    let fetched = rows.into_iter().take(usize::try_from(paging.fetch()).unwrap_or(0)).collect();
    let page = paging.page(fetched, |(d, _): &(NaiveDate, String)| d.to_string()).map(|(date, name)| HolidayView {
        date,
        date_jalali: jalali(date),
        name,
    });
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
    let result = usecase::declare_holiday(&state, admin_actor(&req, &admin), date, name).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/admin/holidays?from={}&to={}", result.date, result.date)))
        .json(result))
}

// ---------------------------------------------------------------- CSV import

/// Reads the body up to a limit (this endpoint takes far more than the JSON limit).
pub(crate) async fn read_body(mut payload: web::Payload, limit: usize) -> Result<web::BytesMut, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest { code: ApiCode::MalformedBody, detail: e.to_string() })?;
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
    let body = read_body(payload, usecase::IMPORT_MAX_BYTES).await?;
    let result = usecase::import_offices(&state, admin_actor(&req, &admin), body).await?;
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
    let result = usecase::import_legacy(&state, admin_actor(&req, &admin), body).await?;
    Ok(HttpResponse::Ok().json(result))
}
