//! Enrollment-office operators: the day's appointments, check-in, completion, no-show and
//! card delivery — all scoped to the operator's office.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::NaiveDate;
use domain::Rials;
use domain::ids::PostalCode;
use persistence::audit::Actor;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{OperatorPrincipal, StaffPrincipal};
use crate::error::{ApiCode, ApiError, FieldErrors};
use crate::journey::office::{self, Capture, Completion};
use crate::journey::{actor, view::build_view_lang};
use crate::middleware::RequestLang;
use crate::page::PageRequest;
use crate::routes::problems::{StaffRead, StaffWrite};
use crate::state::AppState;
use crate::wire;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AppointmentsQuery {
    #[param(example = "2026-11-25")]
    pub date: NaiveDate,
    pub shift: Option<wire::Shift>,
    /// 1–500, default 50.
    #[param(minimum = 1, maximum = 500, example = 50)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AppointmentRow {
    #[schema(example = "4973201670")]
    pub tracking_code: Option<String>,
    #[schema(example = "مریم")]
    pub first_name: Option<String>,
    #[schema(example = "احمدی")]
    pub last_name: Option<String>,
    /// Masked: `258****606`.
    #[schema(example = "258****606")]
    pub national_id_masked: String,
    pub shift: wire::Shift,
    pub state: wire::State,
    pub appointment_status: wire::AppointmentStatus,
}

crate::page_type!(
    /// Appointments, by shift.
    AppointmentsPage,
    AppointmentRow,
    "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b"
);

fn staff_actor(req: &HttpRequest, staff: &StaffPrincipal) -> Actor {
    let kind = match staff.role {
        crate::auth::StaffRole::Admin => "admin",
        crate::auth::StaffRole::Operator => "operator",
    };
    actor(req, kind, &staff.staff_id)
}

/// The day's appointments at the operator's office (booked, used or missed), by shift.
#[utoipa::path(operation_id = "office_list_appointments", tag = "office", security(("staff" = [])), params(AppointmentsQuery),
    responses((status = 200, description = "A page of appointments", body = AppointmentsPage), StaffRead))]
#[get("/api/v1/office/appointments")]
pub async fn appointments(
    req: HttpRequest,
    state: web::Data<AppState>,
    staff: OperatorPrincipal,
    query: web::Query<AppointmentsQuery>,
) -> Result<HttpResponse, ApiError> {
    let office_id = staff.office()?.to_owned();
    let q = query.into_inner();
    let paging = PageRequest::new(q.limit, q.cursor)?;
    let actor = staff_actor(&req, &staff.0);
    let pii = state.pii.clone();
    let now = state.now();
    let shift = q.shift.map(|s| domain::offices::Shift::from(s).as_str().to_owned());
    let asked = paging.clone();
    let rows = state
        .run(move |conn| {
            let rows = persistence::applications::at_office(
                conn,
                &office_id,
                q.date,
                shift.as_deref(),
                asked.cursor(),
                asked.fetch(),
            )?;
            for r in rows.iter().take(usize::try_from(asked.limit).unwrap_or(0)) {
                office::record_read(conn, &actor, &r.id, now)?;
            }
            Ok(rows)
        })
        .await?;
    let page = paging.page(rows, |r| r.id.to_string());
    let items = page
        .items
        .iter()
        .map(|r| {
            let app = r.to_domain()?;
            let nid = pii.open(persistence::PiiKind::NationalId, &r.nid_enc)?;
            let personal = r.personal(&pii)?;
            Ok(AppointmentRow {
                tracking_code: r.tracking_code.clone(),
                first_name: personal.first_name,
                last_name: personal.last_name,
                national_id_masked: domain::mask::national_id(&nid),
                shift: app.slot.as_ref().map_or(wire::Shift::Morning, |s| s.shift.into()),
                state: app.state.into(),
                appointment_status: app.appointment.into(),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(HttpResponse::Ok().json(AppointmentsPage { items, next_cursor: page.next_cursor }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ApplicationSearch {
    /// The citizen's 10-digit national code (Persian digits, spaces and dashes are fine).
    #[param(example = "2580200606")]
    pub national_id: String,
}

/// Finds this office's application of a citizen by national code, for a citizen who forgot
/// the tracking code (issue 20): the newest card cycle booked at or delivered by the
/// operator's office. Another office's citizen and an unknown national code answer the
/// same 404 `application_not_found`, as for tracking codes. Every search is audited: a
/// find as `personal_data_viewed` of the application, a miss as `application_search_missed`
/// (no national code is written to the log).
#[utoipa::path(operation_id = "office_find_application", tag = "office", security(("staff" = [])), params(ApplicationSearch),
    responses((status = 200, description = "The application", body = crate::journey::view::ApplicationView), StaffRead))]
#[get("/api/v1/office/applications")]
pub async fn find_application(
    req: HttpRequest,
    state: web::Data<AppState>,
    staff: OperatorPrincipal,
    lang: RequestLang,
    query: web::Query<ApplicationSearch>,
) -> Result<HttpResponse, ApiError> {
    let office_id = staff.office()?.to_owned();
    let mut errors = FieldErrors::default();
    let national_id = errors.take("national_id", domain::ids::NationalId::parse(&query.national_id));
    errors.finish()?;
    let national_id = national_id.expect("checked");
    let actor = staff_actor(&req, &staff.0);
    let row = office::find_by_national_id(&state, &office_id, &national_id, actor).await?;
    Ok(HttpResponse::Ok().json(build_view_lang(&state, row, lang.0).await?))
}

/// One application of this office (its personal data; the read is audited).
#[utoipa::path(operation_id = "office_get_application", tag = "office", security(("staff" = [])), params(("tracking_code" = String, Path, example = "4973201670")),
    responses((status = 200, description = "The application", body = crate::journey::view::ApplicationView), StaffRead))]
#[get("/api/v1/office/applications/{tracking_code}")]
pub async fn application(
    req: HttpRequest,
    state: web::Data<AppState>,
    staff: OperatorPrincipal,
    lang: RequestLang,
    tracking_code: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let office_id = staff.office()?.to_owned();
    let actor = staff_actor(&req, &staff.0);
    let now = state.now();
    let code = tracking_code.into_inner();
    let row = state
        .run_api(move |conn| {
            let row = persistence::applications::find_by_tracking_code(conn, &code)?
                .filter(|r| office::at_office(r, &office_id))
                .ok_or(ApiError::Domain(domain::DomainError::ApplicationNotFound))?;
            office::record_read(conn, &actor, &row.id, now)?;
            Ok(row)
        })
        .await?;
    Ok(HttpResponse::Ok().json(build_view_lang(&state, row, lang.0).await?))
}

/// Checks the citizen in on the appointment day: enrollment starts (edits and
/// rescheduling stop).
#[utoipa::path(operation_id = "office_check_in", tag = "office", security(("staff" = [])), params(("tracking_code" = String, Path, example = "4973201670")),
    responses((status = 200, description = "Enrollment started", body = crate::journey::view::ApplicationView), StaffWrite))]
#[post("/api/v1/office/applications/{tracking_code}/check-in")]
pub async fn check_in(
    req: HttpRequest,
    state: web::Data<AppState>,
    staff: OperatorPrincipal,
    lang: RequestLang,
    tracking_code: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let office_id = staff.office()?.to_owned();
    let row = office::check_in(&state, &office_id, &tracking_code, staff_actor(&req, &staff.0)).await?;
    Ok(HttpResponse::Ok().json(build_view_lang(&state, row, lang.0).await?))
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaptureOutcome {
    Captured,
    /// An exception procedure was used (e.g. missing fingers, eye condition).
    Exception,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompletionRequest {
    #[schema(example = "5518743111")]
    pub postal_code: String,
    #[schema(example = "مراغه - خیابان پاسداران - کوچه ۵ - پلاک ۱۲")]
    pub address: String,
    /// Landline with city code.
    #[schema(example = "04137221234")]
    pub landline: String,
    /// The birth certificate and national code were checked.
    #[schema(example = true)]
    pub documents_checked: bool,
    pub fingerprints: CaptureOutcome,
    pub face: CaptureOutcome,
    /// Required when an exception was used.
    #[schema(example = "انگشت سبابه راست قطع است")]
    pub exception_note: Option<String>,
    /// The capture system's reference (no raw biometrics are sent or kept).
    #[schema(example = "CAP-2026-000123")]
    pub capture_reference: String,
    /// Rials collected by a counter or post office (≤ 90,000).
    #[schema(example = 90000, minimum = 0, maximum = 90000)]
    pub counter_fee: Option<i64>,
    /// The citizen's first name in Latin letters as on her documents, for the card (with
    /// `last_name_latin`, or neither): letters, spaces, `-` and `'`, at most 60.
    #[schema(example = "Maryam", max_length = 60)]
    pub first_name_latin: Option<String>,
    #[schema(example = "Ahmadi", max_length = 60)]
    pub last_name_latin: Option<String>,
}

/// A name in Latin letters: ASCII letters, with single spaces, `-` or `'` between them.
fn latin_name(field: &str, given: &str) -> Result<String, ApiError> {
    let name = given.split_whitespace().collect::<Vec<_>>().join(" ");
    let ok = (1..=60).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphabetic() || b" -'".contains(&b))
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic());
    if ok { Ok(name) } else { Err(ApiError::field(field, ApiCode::Invalid)) }
}

/// Completes the enrollment: postal code, address, landline, documents, biometric
/// outcomes and — at counter and post offices — the fee collected.
#[utoipa::path(operation_id = "office_complete_enrollment", tag = "office", security(("staff" = [])), params(("tracking_code" = String, Path, example = "4973201670")),
    request_body = CompletionRequest,
    responses((status = 200, description = "Enrolled", body = crate::journey::view::ApplicationView), StaffWrite))]
#[post("/api/v1/office/applications/{tracking_code}/completion")]
pub async fn completion(
    req: HttpRequest,
    state: web::Data<AppState>,
    staff: OperatorPrincipal,
    lang: RequestLang,
    tracking_code: web::Path<String>,
    body: crate::extract::Json<CompletionRequest>,
) -> Result<HttpResponse, ApiError> {
    let office_id = staff.office()?.to_owned();
    let b = body.into_inner();
    let mut e = FieldErrors::default();
    let postal = e.take("postal_code", PostalCode::parse(&b.postal_code));
    let landline = domain::text::digits_only(&b.landline).filter(|d| (8..=11).contains(&d.len()));
    if landline.is_none() {
        e.push("landline", domain::DomainError::PhoneInvalid);
    }
    let fee = b.counter_fee.map(Rials::new).transpose();
    let fee = e.take("counter_fee", fee);
    e.finish()?;
    let address = b.address.trim().to_owned();
    if address.is_empty() || address.chars().count() > 300 {
        return Err(ApiError::field("address", ApiCode::Length));
    }
    if b.capture_reference.trim().is_empty() || b.capture_reference.len() > 100 {
        return Err(ApiError::field("capture_reference", ApiCode::Length));
    }
    let latin = match (b.first_name_latin.as_deref(), b.last_name_latin.as_deref()) {
        (Some(first), Some(last)) => Some(persistence::back_office::LatinNames {
            first_name: latin_name("first_name_latin", first)?,
            last_name: latin_name("last_name_latin", last)?,
        }),
        (None, None) => None,
        (Some(_), None) => return Err(ApiError::field("last_name_latin", ApiCode::Required)),
        (None, Some(_)) => return Err(ApiError::field("first_name_latin", ApiCode::Required)),
    };
    let capture = |c: CaptureOutcome| match c {
        CaptureOutcome::Captured => Capture::Captured,
        CaptureOutcome::Exception => Capture::Exception,
    };
    let completion = Completion {
        postal_code: postal.expect("checked"),
        address,
        landline: landline.expect("checked"),
        documents_checked: b.documents_checked,
        fingerprints: capture(b.fingerprints),
        face: capture(b.face),
        exception_note: b.exception_note.map(|n| n.chars().take(500).collect()),
        capture_reference: b.capture_reference.trim().to_owned(),
        counter_fee: fee.flatten(),
        latin,
    };
    let row = office::complete(&state, &office_id, &tracking_code, completion, staff_actor(&req, &staff.0)).await?;
    Ok(HttpResponse::Ok().json(build_view_lang(&state, row, lang.0).await?))
}

/// The citizen did not come: the appointment is missed; re-booking waits (default 4 days).
#[utoipa::path(operation_id = "office_mark_no_show", tag = "office", security(("staff" = [])), params(("tracking_code" = String, Path, example = "4973201670")),
    responses((status = 200, description = "Marked as missed", body = crate::journey::view::ApplicationView), StaffWrite))]
#[post("/api/v1/office/applications/{tracking_code}/no-show")]
pub async fn no_show(
    req: HttpRequest,
    state: web::Data<AppState>,
    staff: OperatorPrincipal,
    lang: RequestLang,
    tracking_code: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let office_id = staff.office()?.to_owned();
    let row = office::no_show(&state, &office_id, &tracking_code, staff_actor(&req, &staff.0)).await?;
    Ok(HttpResponse::Ok().json(build_view_lang(&state, row, lang.0).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryRequest {
    /// The citizen's fingerprint matched the one on the card's chip.
    #[schema(example = true)]
    pub fingerprint_match: bool,
    /// Rials collected by a counter or post office (≤ 20,000).
    #[schema(example = 20000, minimum = 0, maximum = 20000)]
    pub delivery_fee: Option<i64>,
}

/// Hands the card over: only at the delivery office, when the card is ready there and
/// the fingerprint matched the card (409 `fingerprint_mismatch` otherwise).
#[utoipa::path(operation_id = "office_deliver_card", tag = "office", security(("staff" = [])), params(("tracking_code" = String, Path, example = "4973201670")),
    request_body = DeliveryRequest,
    responses((status = 200, description = "Delivered", body = crate::journey::view::ApplicationView), StaffWrite))]
#[post("/api/v1/office/applications/{tracking_code}/delivery")]
pub async fn delivery(
    req: HttpRequest,
    state: web::Data<AppState>,
    staff: OperatorPrincipal,
    lang: RequestLang,
    tracking_code: web::Path<String>,
    body: crate::extract::Json<DeliveryRequest>,
) -> Result<HttpResponse, ApiError> {
    let office_id = staff.office()?.to_owned();
    let mut e = FieldErrors::default();
    let fee = e.take("delivery_fee", body.delivery_fee.map(Rials::new).transpose());
    e.finish()?;
    let row = office::deliver(
        &state,
        &office_id,
        &tracking_code,
        body.fingerprint_match,
        fee.flatten(),
        staff_actor(&req, &staff.0),
    )
    .await?;
    Ok(HttpResponse::Ok().json(build_view_lang(&state, row, lang.0).await?))
}

/// The enrollment receipt of an application this office enrolled or delivers (docs/domain/back-office.md: the
/// office hands it over at completion): the delivery office and the day the card is
/// expected there. The same content negotiation as the citizen's copy — JSON, `text/html`
/// for the printable page, `application/pdf` for the file; before completion 409
/// `enrollment_not_completed`; another office's application 404. The read is audited.
#[utoipa::path(operation_id = "office_get_enrollment_receipt", tag = "office", security(("staff" = [])),
    params(("tracking_code" = String, Path, example = "4973201670")),
    responses(
        (status = 200, description = "The enrollment receipt in the negotiated format", content(
            (crate::receipt::enrollment::EnrollmentReceiptView = "application/json"),
            (String = "text/html"),
            (crate::routes::receipt::BinaryFile = "application/pdf"))),
        (status = 406, description = "None of the `Accept`ed formats can be produced (`not_acceptable`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The enrollment is not completed yet (`enrollment_not_completed`)", body = crate::error::Problem, content_type = "application/problem+json"),
        StaffRead))]
#[get("/api/v1/office/applications/{tracking_code}/enrollment-receipt")]
pub async fn enrollment_receipt(
    req: HttpRequest,
    state: web::Data<AppState>,
    staff: OperatorPrincipal,
    tracking_code: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let format = crate::routes::receipt::accepted_format(&req)?;
    let office_id = staff.office()?.to_owned();
    let actor = staff_actor(&req, &staff.0);
    let now = state.now();
    let receipt = crate::receipt::enrollment::for_office(&state, &office_id, &tracking_code, move |conn, row| {
        office::record_read(conn, &actor, &row.id, now)?;
        Ok(())
    })
    .await?;
    crate::routes::receipt::send_enrollment_receipt(receipt, format).await
}

// ---------------------------------------------------------------- home visits

/// The parts of the home-visit queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HomeVisitStatus {
    /// Paid, address given, no visit scheduled (or the last one missed): all home-visit offices of the city.
    Waiting,
    /// Visits this office scheduled and has not made yet.
    Scheduled,
    /// Visits this office made (enrollment started or completed at the home).
    Done,
}

impl From<HomeVisitStatus> for persistence::home_visits::QueueStatus {
    fn from(s: HomeVisitStatus) -> Self {
        use persistence::home_visits::QueueStatus as Q;
        match s {
            HomeVisitStatus::Waiting => Q::Waiting,
            HomeVisitStatus::Scheduled => Q::Scheduled,
            HomeVisitStatus::Done => Q::Done,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HomeVisitsQuery {
    /// `waiting` (default), `scheduled` or `done`.
    #[param(example = "waiting")]
    pub status: Option<HomeVisitStatus>,
    /// 1–500, default 50.
    #[param(minimum = 1, maximum = 500, example = 50)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(example = "1795330920000000.0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub cursor: Option<String>,
}

/// The scheduled visit.
#[derive(Serialize, ToSchema)]
pub struct HomeVisitSlot {
    #[schema(example = "2026-11-25")]
    pub date: NaiveDate,
    #[schema(example = "1405-09-04")]
    pub date_jalali: String,
    pub shift: wire::Shift,
    #[schema(example = "021-TEH-01")]
    pub office_id: String,
}

/// One citizen of the queue: who, where, since when.
#[derive(Serialize, ToSchema)]
pub struct HomeVisitRow {
    #[schema(example = "4973201670")]
    pub tracking_code: Option<String>,
    #[schema(example = "مریم")]
    pub first_name: Option<String>,
    #[schema(example = "احمدی")]
    pub last_name: Option<String>,
    /// Masked: `258****606`.
    #[schema(example = "258****606")]
    pub national_id_masked: String,
    /// To call before the visit.
    #[schema(example = "09145128136")]
    pub mobile: String,
    #[schema(example = "تهران - تجریش - خیابان شهید دربندی - کوچه ۵ - پلاک ۱۲ - طبقه دوم")]
    pub address: String,
    #[schema(example = "1964713811")]
    pub postal_code: String,
    #[schema(example = "02122712345")]
    pub landline: String,
    #[schema(example = "زنگ دوم؛ لطفا قبل از مراجعه تماس بگیرید.")]
    pub notes: Option<String>,
    #[schema(example = "021")]
    pub city_code: String,
    /// When the fee was paid: the queue runs oldest first.
    #[schema(example = "2026-11-22T06:35:00Z")]
    pub waiting_since: Option<chrono::DateTime<chrono::Utc>>,
    pub status: HomeVisitStatus,
    pub state: wire::State,
    pub appointment_status: wire::AppointmentStatus,
    /// The visit, once scheduled (also a missed one, until it is scheduled again).
    pub visit: Option<HomeVisitSlot>,
}

crate::page_type!(
    /// Home visits, oldest payment first.
    HomeVisitsPage,
    HomeVisitRow,
    "1795330920000000.0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b"
);

/// The home-visit queue of the operator's office (docs/domain/back-office.md: citizens who cannot leave home
/// wait longer, with no office seat): `waiting` — the paid citizens of the office's city
/// (by their landline's area code) with no visit scheduled, seen by every home-visit office
/// of the city; `scheduled` and `done` — this office's visits. Oldest payment first, paged
/// `{items, next_cursor}`. Each row shown is an audited read of personal data. An office
/// that does not make home visits (`home_visits = false`): 409 `office_no_home_visits`.
#[utoipa::path(operation_id = "office_list_home_visits", tag = "office", security(("staff" = [])), params(HomeVisitsQuery),
    responses(
        (status = 200, description = "A page of the queue", body = HomeVisitsPage),
        (status = 409, description = "This office makes no home visits (`office_no_home_visits`)", body = crate::error::Problem, content_type = "application/problem+json"),
        StaffRead))]
#[get("/api/v1/office/home-visits")]
pub async fn home_visits(
    req: HttpRequest,
    state: web::Data<AppState>,
    staff: OperatorPrincipal,
    query: web::Query<HomeVisitsQuery>,
) -> Result<HttpResponse, ApiError> {
    let office_id = staff.office()?.to_owned();
    let q = query.into_inner();
    let paging = PageRequest::new(q.limit, q.cursor)?;
    let status = q.status.unwrap_or(HomeVisitStatus::Waiting);
    let actor = staff_actor(&req, &staff.0);
    let now = state.now();
    let (_, rows) = crate::journey::home_visit::queue(
        &state,
        &office_id,
        status.into(),
        paging.cursor.clone(),
        paging.fetch(),
        move |conn, app| Ok(office::record_read(conn, &actor, &app.id, now)?),
    )
    .await?;
    let page = paging.page(rows, crate::journey::home_visit::cursor_of);
    let pii = state.pii.clone();
    let items = page
        .items
        .iter()
        .map(|(visit, r)| {
            let app = r.to_domain()?;
            let details = visit.details(&pii)?;
            let personal = r.personal(&pii)?;
            let nid = pii.open(persistence::PiiKind::NationalId, &r.nid_enc)?;
            Ok(HomeVisitRow {
                tracking_code: r.tracking_code.clone(),
                first_name: personal.first_name,
                last_name: personal.last_name,
                national_id_masked: domain::mask::national_id(&nid),
                mobile: pii.open(persistence::PiiKind::Mobile, &r.mobile_enc)?,
                address: details.address,
                postal_code: details.postal_code,
                landline: details.landline,
                notes: details.notes,
                city_code: visit.city_code.clone(),
                waiting_since: crate::journey::home_visit::waiting_since(r),
                status,
                state: app.state.into(),
                appointment_status: app.appointment.into(),
                visit: app.slot.as_ref().map(|s| HomeVisitSlot {
                    date: s.date,
                    date_jalali: domain::calendar::JalaliDate::from_gregorian(s.date)
                        .map(|d| d.to_string())
                        .unwrap_or_default(),
                    shift: s.shift.into(),
                    office_id: s.office_id.to_string(),
                }),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(HttpResponse::Ok().json(HomeVisitsPage { items, next_cursor: page.next_cursor }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleHomeVisitRequest {
    /// From tomorrow to the booking horizon (60 days).
    #[schema(example = "2026-11-25")]
    pub date: NaiveDate,
    pub shift: wire::Shift,
}

/// Schedules a home visit (or moves one this office scheduled): takes a seat of this
/// office's capacity on that date and shift (409 `slot_full` / `slot_closed` otherwise),
/// tells the citizen by SMS, and from then on the citizen's `next_step` is
/// `home_visit_scheduled` with the date. On the day, check-in and completion work as at
/// the office. Only a home-visit office of the citizen's city sees a waiting visit; a
/// scheduled visit belongs to its office (any other office: 404).
#[utoipa::path(operation_id = "office_schedule_home_visit", tag = "office", security(("staff" = [])),
    params(("tracking_code" = String, Path, example = "4973201670")), request_body = ScheduleHomeVisitRequest,
    responses((status = 200, description = "Scheduled", body = crate::journey::view::ApplicationView), StaffWrite))]
#[post("/api/v1/office/home-visits/{tracking_code}/schedule")]
pub async fn schedule_home_visit(
    req: HttpRequest,
    state: web::Data<AppState>,
    staff: OperatorPrincipal,
    lang: RequestLang,
    tracking_code: web::Path<String>,
    body: crate::extract::Json<ScheduleHomeVisitRequest>,
) -> Result<HttpResponse, ApiError> {
    let office_id = staff.office()?.to_owned();
    let b = body.into_inner();
    let (row, _) = crate::journey::home_visit::schedule(
        &state,
        &office_id,
        &tracking_code,
        b.date,
        b.shift.into(),
        staff_actor(&req, &staff.0),
    )
    .await?;
    Ok(HttpResponse::Ok().json(build_view_lang(&state, row, lang.0).await?))
}
