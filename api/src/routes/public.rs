//! Public endpoints without a login (docs/domain/public.md): status lookup,
//! tracking-code recovery, and the information pages. Rate limited per client address by
//! the request middleware, and per national code per day here.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use domain::DomainError;
use domain::application::next_step;
use domain::calendar::{JalaliDate, tehran_date};
use domain::fees::{FeeKind, fee_on};
use domain::ids::{NationalId, TrackingCode};
use domain::record_ids::OfficeId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, FieldErrors, Problem};
use crate::journey::lookup::{self, Proof};
use crate::journey::{actor, entry::spend_captcha};
use crate::middleware::RequestLang;
use crate::page::{Order, PageRequest};
use crate::public_info::{self, Section, Tab, USSD_CODE};
use crate::routes::problems::{PublicRead, PublicWrite};
use crate::state::AppState;
use crate::wire::{self, OfficeSummary};

// ---------------------------------------------------------------- status

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StatusQuery {
    /// The 10-digit national code (Persian digits, spaces and dashes are fine).
    #[param(example = "2580200606")]
    pub national_id: String,
    /// The tracking code from the receipt or SMS. Give this or `birth_date_jalali` (or both: then both must match).
    #[param(example = "4973201670")]
    pub tracking_code: Option<String>,
    /// The solar (Jalali) birth date, `YYYY-MM-DD`.
    #[param(example = "1369-03-19")]
    pub birth_date_jalali: Option<String>,
}

/// The appointment, as anyone holding the national code and tracking code may see it.
#[derive(Serialize, ToSchema)]
pub struct PublicAppointment {
    pub status: wire::AppointmentStatus,
    pub office: OfficeSummary,
    #[schema(example = "2026-11-23")]
    pub date: NaiveDate,
    #[schema(example = "1405-09-02")]
    pub date_jalali: String,
    pub shift: wire::Shift,
}

/// Where an application stands, and what to do next. Nothing personal: no names, mobile,
/// birth date, serial or tracking code.
#[derive(Serialize, ToSchema)]
pub struct PublicStatus {
    pub state: wire::State,
    /// The state in plain words, in the request's language.
    #[schema(example = "ثبت نام شده")]
    pub state_text: String,
    pub payment_status: wire::PaymentStatus,
    pub appointment_status: wire::AppointmentStatus,
    pub next_step: wire::NextStep,
    #[schema(example = "در تاریخ نوبت با شناسنامه به دفتر مراجعه کنید.")]
    pub next_step_text: String,
    /// The held, booked or missed seat.
    pub appointment: Option<PublicAppointment>,
    /// Where the card is handed over, once enrollment has started.
    pub delivery_office: Option<OfficeSummary>,
    /// Last day of a no-show ban (docs/domain/booking.md).
    #[schema(example = "2026-11-27")]
    pub no_show_ban_until: Option<NaiveDate>,
    /// A paid citizen without a booking must book before this (docs/domain/booking.md: two months).
    #[schema(example = "2026-12-07T20:29:59Z")]
    pub booking_deadline: Option<DateTime<Utc>>,
}

/// The status of an application by national code plus tracking code or birth date (seed
/// 003 «مشاهده وضعیت»). A wrong tracking code or birth date answers exactly like an
/// unknown national code (404 `status_not_found`); both are counted as failed guesses
/// before anything is compared: five from one address at one national code lock that
/// address out of it for an hour, and after 20 failures a day from all addresses together
/// each address gets one try (429 `status_lookup_limit`). The right proof always counts
/// as no failure, so strangers cannot lock the owner out.
#[utoipa::path(operation_id = "public_get_status", tag = "public", params(StatusQuery),
    responses(
        (status = 200, description = "The application's status", body = PublicStatus),
        PublicRead,
        (status = 404, description = "No application matches (`status_not_found`): the same answer for an unknown national code and a wrong tracking code or birth date", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed lookups of this national code from this address (`status_lookup_limit`), too many failed lookups from this address (`guesses_limited`), or this address is rate limited (`rate_limited`)", body = Problem, content_type = "application/problem+json"),
    ))]
#[get("/api/v1/public/status")]
pub async fn status(
    req: HttpRequest,
    state: web::Data<AppState>,
    lang: RequestLang,
    query: web::Query<StatusQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let mut errors = FieldErrors::default();
    let national_id = errors.take("national_id", NationalId::parse(&q.national_id));
    let tracking_code = q.tracking_code.as_deref().and_then(|s| errors.take("tracking_code", TrackingCode::parse(s)));
    let birth = q.birth_date_jalali.as_deref().and_then(|s| errors.take("birth_date_jalali", JalaliDate::parse(s)));
    if q.tracking_code.is_none() && q.birth_date_jalali.is_none() {
        errors.push("tracking_code", DomainError::Required);
    }
    errors.finish()?;
    let national_id = national_id.expect("checked");
    let proof = Proof { tracking_code, birth_date: birth.map(JalaliDate::to_gregorian) };
    let found = lookup::status(&state, &national_id, proof, crate::guard::Client::of(&req))
        .await?
        .ok_or(ApiError::Domain(DomainError::StatusNotFound))?;

    let now = state.now();
    let app = found.row.to_domain()?;
    let office = |id: &OfficeId| found.offices.iter().find(|o| &o.id == id).map(OfficeSummary::from);
    let appointment =
        app.slot.as_ref().filter(|_| app.appointment != domain::application::AppointmentStatus::Used).and_then(
            |slot| {
                Some(PublicAppointment {
                    status: app.appointment.into(),
                    office: office(&slot.office_id)?,
                    date: slot.date,
                    date_jalali: JalaliDate::from_gregorian(slot.date).map(|d| d.to_string()).unwrap_or_default(),
                    shift: slot.shift.into(),
                })
            },
        );
    let step = next_step(Some(&app), now);
    Ok(HttpResponse::Ok().json(PublicStatus {
        state: app.state.into(),
        state_text: app.state.describe(lang.0).into(),
        payment_status: app.payment.into(),
        appointment_status: app.appointment.into(),
        next_step: step.into(),
        next_step_text: domain::application::next_step_text(Some(&app), now, lang.0),
        appointment,
        delivery_office: app.effective_delivery_office().filter(|_| app.state.card_under_way()).and_then(office),
        no_show_ban_until: app.no_show_ban_until.filter(|until| *until >= tehran_date(now)),
        booking_deadline: app.booking_deadline(&state.policy),
    }))
}

// ---------------------------------------------------------------- tracking-code recovery

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoveryRequest {
    #[schema(example = "2580200606")]
    pub national_id: String,
    /// The solar (Jalali) birth date, `YYYY-MM-DD`.
    #[schema(example = "1369-03-19")]
    pub birth_date_jalali: String,
    #[schema(example = "v1.Jx0d9Pq1b8s3rW1cQ2aZ1A.1795330920.Ywq1T0b8aCk7Zx1N.oP2x8b1Q0aT9cV3eR7uW1g")]
    pub captcha_id: String,
    #[schema(example = "12")]
    pub captcha_answer: String,
}

#[derive(Serialize, ToSchema)]
pub struct RecoveryQueued {
    /// Always `queued`: the SMS leaves through the outbox, with retries.
    #[schema(value_type = crate::wire::Queued, example = "queued")]
    pub status: &'static str,
    /// The registered mobile, masked. The tracking code itself is only ever sent by SMS.
    #[schema(example = "0914***8136")]
    pub mobile_hint: String,
    #[schema(example = "کد رهگیری به شماره همراه 0914***8136 پیامک می‌شود.")]
    pub message: String,
}

/// Sends a forgotten tracking code by SMS to the registered mobile (docs/domain/public.md
/// «بازیابی کد رهگیری»). The answer shows only the masked mobile, never the code. An
/// unknown national code and a wrong birth date get the same 404 `recovery_not_found`;
/// 409 `no_tracking_code` when they match an application that was never paid. Failed
/// recoveries are counted like failed status lookups (three from one address at one
/// national code lock it for an hour); three SMS per national code per day (429
/// `recovery_limit` for both).
#[utoipa::path(operation_id = "public_recover_tracking_code", tag = "public", request_body = RecoveryRequest,
    responses(
        (status = 202, description = "The SMS is queued", body = RecoveryQueued),
        PublicWrite,
        (status = 404, description = "No application with this national code and birth date (`recovery_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The application has no tracking code yet: it is issued when the fee is paid (`no_tracking_code`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (`errors[]`) or a wrong or reused captcha (`captcha_invalid`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Three recoveries for this national code today, or too many failed ones from this address (`recovery_limit`); too many failed guesses from this address (`guesses_limited`); or rate limited", body = Problem, content_type = "application/problem+json"),
    ))]
#[post("/api/v1/public/tracking-code-recovery")]
pub async fn recover_tracking_code(
    req: HttpRequest,
    state: web::Data<AppState>,
    lang: RequestLang,
    body: web::Json<RecoveryRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut errors = FieldErrors::default();
    let national_id = errors.take("national_id", NationalId::parse(&body.national_id));
    let birth = errors.take("birth_date_jalali", JalaliDate::parse(&body.birth_date_jalali));
    errors.finish()?;
    let (national_id, birth) = (national_id.expect("checked"), birth.expect("checked"));
    spend_captcha(&state, &body.captcha_id, &body.captcha_answer).await?;
    let actor = actor(&req, "public", "tracking_code_recovery");
    let hint = lookup::recover_tracking_code(
        &state,
        &national_id,
        birth.to_gregorian(),
        crate::guard::Client::of(&req),
        actor,
    )
    .await?;
    let message = match lang.0 {
        domain::Lang::Fa => format!("کد رهگیری به شماره همراه {hint} پیامک می‌شود."),
        domain::Lang::En => format!("The tracking code is being sent by SMS to {hint}."),
    };
    Ok(HttpResponse::Accepted().json(RecoveryQueued { status: "queued", mobile_hint: hint, message }))
}

// ---------------------------------------------------------------- information pages

/// The fees in force today, in rials (docs/domain/payments.md).
#[derive(Serialize, ToSchema)]
pub struct FeesToday {
    /// Paid online at pre-registration (the tariff in force today).
    #[schema(example = 200000)]
    pub card_fee: i64,
    /// The most a government counter or post office may charge for enrollment.
    #[schema(example = 90000)]
    pub counter_fee_max: i64,
    /// What those offices charge for handing the card over.
    #[schema(example = 20000)]
    pub delivery_fee: i64,
    /// Paid online for a new card after delivery (lost, damaged, serial or data changed).
    #[schema(example = 300000)]
    pub reissue_fee: i64,
}

/// The configured numbers of the rules (docs/domain/).
#[derive(Serialize, ToSchema)]
pub struct Rules {
    #[schema(example = 15)]
    pub min_age_years: u32,
    /// Months a paid citizen without a booking has to book (docs/domain/booking.md).
    #[schema(example = 2)]
    pub booking_window_months: u32,
    /// Days a no-show may not book again (docs/domain/public.md).
    #[schema(example = 4)]
    pub no_show_ban_days: u32,
    /// Minutes a chosen seat is held for payment.
    #[schema(example = 15)]
    pub hold_minutes: i64,
    #[schema(example = 3)]
    pub personal_info_edits: u8,
}

/// «آگاهی از فرایند» (docs/domain/public.md): one tab per process, each step explained briefly.
#[derive(Serialize, ToSchema)]
pub struct ProcessInfo {
    /// Per `Accept-Language` (Persian by default).
    #[schema(value_type = crate::wire::Lang, example = "fa")]
    pub lang: &'static str,
    #[schema(example = "آگاهی از فرایند کارت هوشمند ملی")]
    pub title: String,
    #[schema(example = "ثبت نام اینترنتی، پرداخت، مراجعه به دفتر و تحویل کارت")]
    pub summary: String,
    /// `registration`, `production`, `delivery`.
    pub tabs: Vec<Tab>,
    pub fees: FeesToday,
    pub rules: Rules,
    #[schema(example = "*4*6090#")]
    pub ussd_code: &'static str,
}

/// «شرایط ثبت نام» (docs/domain/public.md): what a citizen should know before registering.
#[derive(Serialize, ToSchema)]
pub struct RegistrationConditions {
    /// Per `Accept-Language` (Persian by default).
    #[schema(value_type = crate::wire::Lang, example = "fa")]
    pub lang: &'static str,
    #[schema(example = "شرایط ثبت نام")]
    pub title: String,
    #[schema(example = "چه کسانی می‌توانند ثبت نام کنند و چه مدارکی لازم است")]
    pub summary: String,
    /// `eligibility`, `fees`, `documents` (what to bring), `rules`, `follow_up`.
    pub sections: Vec<Section>,
    pub fees: FeesToday,
    pub rules: Rules,
    #[schema(example = "*4*6090#")]
    pub ussd_code: &'static str,
}

async fn values(state: &AppState) -> Result<(public_info::Values, FeesToday, Rules), ApiError> {
    let today = tehran_date(state.now());
    let tariff = state.run(persistence::payments::tariff).await?;
    let fee = |kind| fee_on(&tariff, kind, today).value();
    let fees = FeesToday {
        card_fee: fee(FeeKind::Card),
        counter_fee_max: fee(FeeKind::CounterEnrollment),
        delivery_fee: fee(FeeKind::Delivery),
        reissue_fee: fee(FeeKind::Reissue),
    };
    let p = &state.policy;
    let rules = Rules {
        min_age_years: p.min_age_years,
        booking_window_months: p.booking_window_months,
        no_show_ban_days: p.no_show_ban_days,
        hold_minutes: p.hold_ttl.num_minutes(),
        personal_info_edits: p.personal_info_edits,
    };
    let values = public_info::Values {
        card_fee: fees.card_fee,
        counter_fee_max: fees.counter_fee_max,
        delivery_fee: fees.delivery_fee,
        min_age_years: rules.min_age_years,
        personal_info_edits: rules.personal_info_edits,
        booking_window_months: rules.booking_window_months,
        no_show_ban_days: rules.no_show_ban_days,
        hold_minutes: rules.hold_minutes,
    };
    Ok((values, fees, rules))
}

fn lang_tag(lang: domain::Lang) -> &'static str {
    match lang {
        domain::Lang::Fa => "fa",
        domain::Lang::En => "en",
    }
}

/// Not personal, the same for everyone: caches may keep it five minutes, per language.
fn cacheable() -> actix_web::HttpResponseBuilder {
    let mut builder = HttpResponse::Ok();
    builder
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .insert_header((header::VARY, "Accept-Language"));
    builder
}

/// «آگاهی از فرایند»: the registration, production and delivery processes step by step,
/// with today's fees and the configured rules. Persian, or English per `Accept-Language`.
#[utoipa::path(operation_id = "public_get_process_info", tag = "public",
    responses((status = 200, description = "The process, in the request's language", body = ProcessInfo,
        headers(("Cache-Control" = String, description = "`public, max-age=300`"), ("Vary" = String, description = "`Accept-Language`"))),
        PublicRead))]
#[get("/api/v1/public/process-info")]
pub async fn process_info(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    lang: RequestLang,
) -> Result<HttpResponse, ApiError> {
    let (values, fees, rules) = values(&state).await?;
    let text = public_info::process(lang.0, &values);
    crate::etag::json(
        &req,
        cacheable(),
        &ProcessInfo {
            lang: lang_tag(lang.0),
            title: text.title,
            summary: text.summary,
            tabs: text.tabs,
            fees,
            rules,
            ussd_code: USSD_CODE,
        },
    )
}

/// «شرایط ثبت نام»: who may register, fees, documents to bring, booking rules and
/// follow-up. Persian, or English per `Accept-Language`.
#[utoipa::path(operation_id = "public_get_registration_conditions", tag = "public",
    responses((status = 200, description = "The conditions, in the request's language", body = RegistrationConditions,
        headers(("Cache-Control" = String, description = "`public, max-age=300`"), ("Vary" = String, description = "`Accept-Language`"))),
        PublicRead))]
#[get("/api/v1/public/registration-conditions")]
pub async fn registration_conditions(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    lang: RequestLang,
) -> Result<HttpResponse, ApiError> {
    let (values, fees, rules) = values(&state).await?;
    let text = public_info::conditions(lang.0, &values);
    crate::etag::json(
        &req,
        cacheable(),
        &RegistrationConditions {
            lang: lang_tag(lang.0),
            title: text.title,
            summary: text.summary,
            sections: text.sections,
            fees,
            rules,
            ussd_code: USSD_CODE,
        },
    )
}

// ---------------------------------------------------------------- regions

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RegionsQuery {
    /// Provinces to answer, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500, example = 50)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(example = "آذربایجان شرقی")]
    pub cursor: Option<String>,
}

/// A city with at least one active office.
#[derive(Serialize, ToSchema)]
pub struct RegionCity {
    #[schema(example = "مراغه")]
    pub city: String,
    /// The city's phone code: what `GET /api/v1/offices/availability` takes as `city_code`.
    #[schema(example = "041")]
    pub city_code: String,
    /// The kinds of office the city has (for `office_kind`).
    pub office_kinds: Vec<wire::OfficeKind>,
}

/// A province and its cities, each once.
#[derive(Serialize, ToSchema)]
pub struct Region {
    /// What `GET /api/v1/offices/availability` takes as `province`.
    #[schema(example = "آذربایجان شرقی")]
    pub province: String,
    pub cities: Vec<RegionCity>,
}

crate::page_type!(
    /// Provinces, in alphabetical order, with their cities.
    RegionPage,
    Region,
    "آذربایجان شرقی"
);

/// The provinces and cities that have an active enrollment office, with the cities' phone
/// codes and office kinds: what a portal's office picker offers (docs/domain/public.md: choose
/// province, city, office type), derived from the offices table. Cacheable: five minutes,
/// `ETag` and `If-None-Match`.
#[utoipa::path(operation_id = "public_list_regions", tag = "public", params(RegionsQuery),
    responses((status = 200, description = "A page of provinces with their cities", body = RegionPage,
        headers(("Cache-Control" = String, description = "`public, max-age=300`"))),
        PublicRead))]
#[get("/api/v1/public/regions")]
pub async fn regions(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<RegionsQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let paging = PageRequest::new(q.limit, q.cursor)?;
    let mut places = state.run(persistence::offices::regions).await?;
    // One order on both databases (their collations differ): by code point.
    places.sort_unstable();
    let mut provinces: Vec<Region> = Vec::new();
    for (province, city, city_code, kind) in places {
        let Some(kind) = domain::offices::OfficeKind::parse(&kind) else { continue };
        if provinces.last().is_none_or(|r| r.province != province) {
            provinces.push(Region { province: province.clone(), cities: Vec::new() });
        }
        let region = provinces.last_mut().expect("pushed");
        match region.cities.last_mut() {
            Some(c) if c.city == city && c.city_code == city_code => c.office_kinds.push(kind.into()),
            _ => region.cities.push(RegionCity { city, city_code, office_kinds: vec![kind.into()] }),
        }
    }
    let page = paging.page_in_memory(provinces, Order::Ascending, |r: &Region| r.province.clone());
    let mut builder = HttpResponse::Ok();
    builder.insert_header((header::CACHE_CONTROL, "public, max-age=300"));
    crate::etag::json(&req, builder, &RegionPage::from(page))
}
