//! The citizen's journey over HTTP (docs/domain/application.md, docs/architecture.md): captcha, entry, the
//! application and its first-page sections, appointment and delivery office.

use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};
use chrono::{DateTime, NaiveDate, Utc};
use domain::DomainError;
use domain::application::Slot;
use domain::calendar::{HijriDate, JalaliDate, lunar_birth_options};
use domain::ids::{BirthCertSerial, Mobile, NationalId};
use domain::person::PersonName;
use domain::record_ids::ApplicationId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{CitizenPrincipal, CitizenToken};
use crate::config::CaptchaMode;
use crate::error::{ApiCode, ApiError, FieldErrors};
use crate::journey::view::{ApplicationView, Family, build_view_lang, build_view_with};
use crate::journey::{self, Target, actor};
use crate::middleware::RequestLang;
use crate::routes::problems::{CitizenEntry, CitizenRead, CitizenWrite, PublicRead};
use crate::state::AppState;
use crate::wire;

// ---------------------------------------------------------------- captcha

/// An arithmetic challenge (docs/domain/application.md: «۴+۸=»).
#[derive(Serialize, ToSchema)]
pub struct CaptchaChallenge {
    /// Send back as `captcha_id`.
    #[schema(example = "v1.Jx0d9Pq1b8s3rW1cQ2aZ1A.1795330920.Ywq1T0b8aCk7Zx1N.oP2x8b1Q0aT9cV3eR7uW1g")]
    pub captcha_id: String,
    /// What to do, in the request's language.
    #[schema(example = "حاصل عبارت تصویر را به عدد وارد کنید.")]
    pub question: String,
    /// The sum drawn as SVG strokes with noise.
    #[schema(example = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"160\" height=\"50\">…</svg>")]
    pub image_svg: String,
    #[schema(example = "2026-11-22T06:35:00Z")]
    pub expires_at: DateTime<Utc>,
    /// Only in sandbox mode (demos and tests): the answer. Never present in production.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = 12)]
    pub sandbox_answer: Option<u32>,
}

/// A new captcha challenge, spent by its first answer.
///
/// Expires in 2 minutes; its first answer, right or wrong, spends it. Each client address
/// may fetch `limits.captchas_per_ip_per_minute` a minute (429 `rate_limited` with
/// `Retry-After` past that).
#[utoipa::path(operation_id = "citizen_get_captcha", tag = "citizen", responses((status = 200, description = "A challenge", body = CaptchaChallenge), PublicRead))]
#[get("/api/v1/captcha")]
pub async fn captcha(
    req: HttpRequest,
    state: web::Data<AppState>,
    lang: RequestLang,
) -> Result<HttpResponse, ApiError> {
    if let Some(ip) = crate::client_addr::of(&req) {
        let quota = crate::limits::Quota::per_minute(state.config.limits.captchas_per_minute());
        state.limiter.check("captcha", &ip.to_string(), quota).await.map_err(|r| r.into_error(ApiCode::RateLimited))?;
    }
    let c = crate::captcha::issue(
        &state.captcha_key,
        state.random.as_ref(),
        state.now(),
        chrono::Duration::seconds(state.config.captcha.ttl_seconds),
    );
    let question = match lang.0 {
        domain::Lang::Fa => "حاصل عبارت تصویر را به عدد وارد کنید.",
        domain::Lang::En => "Type the result of the sum in the picture, as a number.",
    };
    Ok(HttpResponse::Ok().json(CaptchaChallenge {
        captcha_id: c.id,
        question: question.into(),
        image_svg: c.svg,
        expires_at: c.expires_at,
        sandbox_answer: (state.config.captcha.mode == CaptchaMode::Sandbox).then_some(c.answer),
    }))
}

// ---------------------------------------------------------------- entry

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    /// The 10-digit national code; Persian digits, spaces and dashes are fine.
    #[schema(example = "2580200606")]
    pub national_id: String,
    /// The six-digit number of the birth-certificate serial (optionally with its letter
    /// series). Give exactly one of `serial`, `tracking_code` and `birth_date_jalali`.
    #[schema(example = "883810")]
    pub serial: Option<String>,
    /// Instead of the serial: the tracking code of a paid registration (the booking page of
    /// docs/domain/eligibility.md).
    #[schema(example = "4973201670")]
    pub tracking_code: Option<String>,
    /// Instead of the serial: the solar birth date of an unpaid registration, to continue
    /// its draft (docs/domain/eligibility.md, «ویرایش ثبت نام قبلی»).
    #[schema(example = "1369-03-19")]
    pub birth_date_jalali: Option<String>,
    #[schema(example = "v1.Jx0d9Pq1b8s3rW1cQ2aZ1A.1795330920.Ywq1T0b8aCk7Zx1N.oP2x8b1Q0aT9cV3eR7uW1g")]
    pub captcha_id: String,
    #[schema(example = "12")]
    pub captcha_answer: String,
}

#[derive(Serialize, ToSchema)]
pub struct SessionResponse {
    /// A short-lived citizen token for `Authorization: Bearer …`.
    #[schema(example = "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIwMTkzIn0.c2lnbmF0dXJl")]
    pub token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    #[schema(example = "2026-11-22T07:00:00Z")]
    pub expires_at: DateTime<Utc>,
    /// Whether the civil registry confirmed the serial now. `false` only for a national
    /// code without an application while the registry is unreachable: the identity is then
    /// `pending` and checked in the background (docs/domain/eligibility.md). An entry by tracking code or
    /// birth date asks no registry: whether the application's identity is `verified`.
    #[schema(example = true)]
    pub identity_confirmed: bool,
    /// Where to send the citizen next (docs/domain/application.md).
    pub next_step: wire::NextStep,
    #[schema(example = "مشخصات فردی خود را وارد کنید.")]
    pub next_step_text: String,
    /// The current application, if there is one.
    pub application: Option<ApplicationView>,
}

/// Entry: national code + serial (or tracking code, or birth date) + captcha → citizen
/// token and where to go next.
///
/// Three ways in, with the same captcha and the same lock: the **serial** (anyone; the
/// civil registry checks it), the **tracking code** of a paid registration (docs/domain/eligibility.md:
/// `tracking_code_mismatch` when no application of the national code has it), or the
/// **birth date** of an unpaid registration (docs/domain/eligibility.md: `draft_not_found` when no unpaid
/// registration of the national code has it; a paid one answers 409
/// `tracking_code_required`). Wrong tracking codes and birth dates count against the
/// national code's entry lock like wrong serials (429 `entry_locked`). Each token opens the
/// citizen's current application with its `next_step`.
///
/// The docs/domain/eligibility.md checks run in order. "No such person" and "serial does not match" give
/// the same `identity_mismatch`; `person_not_alive`, `underage` and
/// `serial_recently_changed` (come back after 48 working hours) are told only after the
/// serial matched. Repeated wrong serials are slowed down, then locked (429 `entry_locked`).
///
/// When the registry cannot check the serial (outage, or its answer is pending): a
/// national code that already has an application (or a live session, or another confirmed
/// serial) gets 503 `registry_unavailable` with `Retry-After` — nothing is opened, written
/// or counted against the entry lock; a new national code is let in with
/// `identity_confirmed: false` and its identity stays `pending` until the inquiry job
/// settles it.
#[utoipa::path(operation_id = "citizen_sign_in", tag = "citizen", request_body = SessionRequest,
    responses((status = 201, description = "Signed in", body = SessionResponse), CitizenEntry))]
#[post("/api/v1/citizen/sessions")]
pub async fn create_session(
    req: HttpRequest,
    state: web::Data<AppState>,
    lang: RequestLang,
    body: crate::extract::Json<SessionRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut errors = FieldErrors::default();
    let national_id = errors.take("national_id", NationalId::parse(&body.national_id));
    let given: Vec<&str> = [
        ("serial", body.serial.is_some()),
        ("tracking_code", body.tracking_code.is_some()),
        ("birth_date_jalali", body.birth_date_jalali.is_some()),
    ]
    .into_iter()
    .filter_map(|(field, given)| given.then_some(field))
    .collect();
    if given.is_empty() {
        errors.push("serial", DomainError::Required);
    }
    if let Some(second) = given.get(1) {
        errors.finish()?;
        return Err(ApiError::field(second, ApiCode::Exclusive));
    }
    let serial = body.serial.as_deref().and_then(|s| errors.take("serial", BirthCertSerial::parse(s)));
    let tracking_code =
        body.tracking_code.as_deref().and_then(|t| errors.take("tracking_code", domain::ids::TrackingCode::parse(t)));
    let birth_date = body.birth_date_jalali.as_deref().and_then(|d| {
        errors.take("birth_date_jalali", JalaliDate::parse(d).map(domain::calendar::JalaliDate::to_gregorian))
    });
    errors.finish()?;
    let national_id = national_id.expect("checked");
    let challenge = (body.captcha_id.as_str(), body.captcha_answer.as_str());
    let client = crate::guard::Client::of(&req);
    let proof = match (serial, tracking_code, birth_date) {
        (Some(serial), _, _) => {
            let actor = actor(&req, "citizen", "entry");
            let outcome = journey::entry::enter(&state, national_id, serial, challenge, client, actor).await?;
            return session_created(&state, lang, outcome).await;
        }
        (_, Some(code), _) => journey::entry::Proof::TrackingCode(code),
        (_, _, Some(date)) => journey::entry::Proof::BirthDate(date),
        (None, None, None) => return Err(ApiError::field("serial", ApiCode::Required)),
    };
    let outcome = journey::entry::enter_with_proof(&state, national_id, proof, challenge, client).await?;
    session_created(&state, lang, outcome).await
}

/// The 201 of an entry, its application in the request's language.
async fn session_created(
    state: &AppState,
    lang: RequestLang,
    outcome: journey::entry::EntryOutcome,
) -> Result<HttpResponse, ApiError> {
    let application = match outcome.application {
        Some(v) => Some(relang(state, ApplicationId::from(v.id.as_str()), lang).await?),
        None => None,
    };
    Ok(HttpResponse::Created().insert_header(("Location", "/api/v1/citizen/application")).json(SessionResponse {
        token: outcome.token,
        token_type: "Bearer",
        expires_at: outcome.expires_at,
        identity_confirmed: outcome.identity_confirmed,
        next_step: outcome.next_step.into(),
        next_step_text: application
            .as_ref()
            .filter(|a| a.next_step == outcome.next_step.into())
            .map_or_else(|| outcome.next_step.describe(lang.0).into(), |a| a.next_step_text.clone()),
        application,
    }))
}

async fn relang(state: &AppState, id: ApplicationId, lang: RequestLang) -> Result<ApplicationView, ApiError> {
    let row = state
        .run(move |conn| persistence::applications::find(conn, &id))
        .await?
        .ok_or(ApiError::NotFound(ApiCode::NotFound))?;
    build_view_lang(state, row, lang.0).await
}

// ---------------------------------------------------------------- the application

/// The citizen's application with its state, `allowed_operations` and `next_step`.
#[utoipa::path(operation_id = "citizen_get_application", tag = "citizen", security(("citizen" = [])),
    responses((status = 200, description = "The application", body = ApplicationView), CitizenRead))]
#[get("/api/v1/citizen/application")]
pub async fn get_application(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    citizen: CitizenToken,
    lang: RequestLang,
) -> Result<HttpResponse, ApiError> {
    let now = state.now();
    let row = state
        .run_api(move |conn| Ok(citizen.current_application(conn, now, false)?.1))
        .await?
        .ok_or(ApiError::Domain(DomainError::ApplicationNotFound))?;
    let view = build_view_lang(&state, row, lang.0).await?;
    // Personal: never stored by a cache; an app keeps the tag and the view itself.
    let mut builder = HttpResponse::Ok();
    builder.insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"));
    crate::etag::json(&req, builder, &view)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HijriQuery {
    /// The solar birth date (Jalali), e.g. `1369-03-19`.
    #[param(example = "1369-03-19", pattern = "^[0-9۰-۹]{4}[-/][0-9۰-۹]{1,2}[-/][0-9۰-۹]{1,2}$")]
    pub birth_date_jalali: String,
}

#[derive(Serialize, ToSchema)]
pub struct HijriOption {
    #[schema(example = "1410-11-15")]
    pub date: String,
    #[schema(example = "15 ذیقعده 1410")]
    pub label_fa: String,
    /// The day computed from the solar date (the others are ±1 and ±2 days).
    #[schema(example = true)]
    pub computed: bool,
}

#[derive(Serialize, ToSchema)]
pub struct HijriOptions {
    #[schema(example = "1369-03-19")]
    pub birth_date_jalali: String,
    #[schema(example = "1990-06-09")]
    pub birth_date: NaiveDate,
    /// Five options; if the certificate's lunar date is not among them, it must be corrected first.
    pub options: Vec<HijriOption>,
}

/// The five Lunar Hijri birth-date options for a solar birth date (docs/domain/application.md).
#[utoipa::path(operation_id = "citizen_list_hijri_birth_date_options", tag = "citizen", security(("citizen" = [])), params(HijriQuery),
    responses((status = 200, description = "Five options", body = HijriOptions), CitizenRead, PublicRead))]
#[get("/api/v1/citizen/hijri-birth-date-options")]
pub async fn hijri_options(
    _citizen: CitizenPrincipal,
    query: web::Query<HijriQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(lunar_options(&query)?))
}

/// The five options for a query (the citizen's and the kiosk's operation).
pub fn lunar_options(query: &HijriQuery) -> Result<HijriOptions, ApiError> {
    let mut errors = FieldErrors::default();
    let date = errors.take("birth_date_jalali", JalaliDate::parse(&query.birth_date_jalali));
    errors.finish()?;
    let date = date.expect("checked");
    let options = lunar_birth_options(date)
        .into_iter()
        .enumerate()
        .map(|(i, h)| HijriOption { date: h.to_string(), label_fa: h.label_fa(), computed: i == 2 })
        .collect();
    Ok(HijriOptions { birth_date_jalali: date.to_string(), birth_date: date.to_gregorian(), options })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonalInfoRequest {
    /// Must equal the civil registry's.
    #[schema(example = "1369-03-19")]
    pub birth_date_jalali: String,
    /// One of the five options of `/citizen/hijri-birth-date-options`.
    #[schema(example = "1410-11-15")]
    pub birth_date_hijri: String,
    /// Must equal the civil registry's.
    pub gender: wire::Gender,
    pub religion: wire::Religion,
    /// The mother's first name only (docs/domain/application.md).
    #[schema(example = "شهرزاد")]
    pub mother_name: String,
    /// Every notification goes to this number; USSD works best from it.
    #[schema(example = "09145128136")]
    pub mobile: String,
}

impl PersonalInfoRequest {
    pub fn parse(&self) -> Result<journey::personal::PersonalInfo, ApiError> {
        let mut e = FieldErrors::default();
        let birth_date = e.take("birth_date_jalali", JalaliDate::parse(&self.birth_date_jalali));
        let hijri = e.take("birth_date_hijri", HijriDate::parse(&self.birth_date_hijri));
        let mother = e.take("mother_name", PersonName::parse(&self.mother_name));
        let mobile = e.take("mobile", Mobile::parse(&self.mobile));
        e.finish()?;
        Ok(journey::personal::PersonalInfo {
            birth_date: birth_date.expect("checked"),
            birth_date_hijri: hijri.expect("checked"),
            gender: self.gender.into(),
            religion: self.religion.into(),
            mother_name: mother.expect("checked"),
            mobile: mobile.expect("checked"),
        })
    }
}

/// Saves personal information. The first save creates the application (`draft`, "first
/// page registered", 201); later saves are edits (200), limited in number and refused
/// once enrollment has started. The serial, solar birth date, gender and mother's first
/// name are checked against the civil registry (422 `identity_mismatch`,
/// `birth_date_mismatch`, `gender_mismatch`, `mother_name_mismatch`); if it cannot be
/// reached the application is saved with identity `pending` (booking answers 409
/// `identity_not_verified` until the inquiry job verifies it) and the citizen is told the
/// result by SMS.
#[utoipa::path(operation_id = "citizen_set_personal_info", tag = "citizen", security(("citizen" = [])), request_body = PersonalInfoRequest,
    responses(
        (status = 200, description = "Edited", body = ApplicationView),
        (status = 201, description = "Application created", body = ApplicationView),
        CitizenWrite))]
#[put("/api/v1/citizen/application/personal-info")]
pub async fn put_personal_info(
    req: HttpRequest,
    state: web::Data<AppState>,
    citizen: CitizenToken,
    lang: RequestLang,
    body: crate::extract::Json<PersonalInfoRequest>,
) -> Result<HttpResponse, ApiError> {
    let info = body.parse()?;
    let actor = citizen.actor(&req);
    let applicant = journey::personal::Applicant::Session(citizen);
    let (row, created) = journey::personal::save_personal_info(&state, applicant, info, actor).await?;
    let view = build_view_lang(&state, row, lang.0).await?;
    Ok(if created {
        HttpResponse::Created().insert_header(("Location", "/api/v1/citizen/application")).json(view)
    } else {
        HttpResponse::Ok().json(view)
    })
}

/// The four special-needs questions. "No" to the first puts the citizen in the
/// home-visit queue; "no" to the others limits the offices offered.
#[utoipa::path(operation_id = "citizen_set_special_needs", tag = "citizen", security(("citizen" = [])), request_body = wire::SpecialNeeds,
    responses((status = 200, description = "Saved", body = ApplicationView), CitizenWrite))]
#[put("/api/v1/citizen/application/special-needs")]
pub async fn put_special_needs(
    req: HttpRequest,
    state: web::Data<AppState>,
    citizen: CitizenToken,
    lang: RequestLang,
    body: crate::extract::Json<wire::SpecialNeeds>,
) -> Result<HttpResponse, ApiError> {
    let actor = citizen.actor(&req);
    let row =
        journey::personal::answer_special_needs(&state, Target::Session(citizen), body.into_inner().into(), actor)
            .await?;
    Ok(HttpResponse::Ok().json(build_view_lang(&state, row, lang.0).await?))
}

/// Where a home visit goes (docs/domain/application.md: "no" to «آیا سلامتی کافی برای خروج از خانه دارید؟»).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HomeVisitRequest {
    /// The full address to visit (5–300 characters).
    #[schema(example = "تهران - تجریش - خیابان شهید دربندی - کوچه ۵ - پلاک ۱۲ - طبقه دوم")]
    pub address: String,
    #[schema(example = "1964713811")]
    pub postal_code: String,
    /// The home's landline with its area code (`0` + two digits + eight digits); the area
    /// code decides which city's home-visit offices see the request.
    #[schema(example = "02122712345")]
    pub landline: String,
    /// Anything the visiting officer should know (how to reach the door, a companion's phone); up to 500 characters.
    #[schema(example = "زنگ دوم؛ لطفا قبل از مراجعه تماس بگیرید.")]
    pub notes: Option<String>,
}

impl HomeVisitRequest {
    fn parse(self) -> Result<journey::home_visit::Address, ApiError> {
        let mut e = FieldErrors::default();
        let postal = e.take("postal_code", domain::ids::PostalCode::parse(&self.postal_code));
        let landline = e.take("landline", domain::ids::Landline::parse(&self.landline));
        let address = domain::text::normalize_name(&self.address);
        match address.chars().count() {
            0..5 => e.push("address", domain::DomainError::Required),
            301.. => e.push("address", domain::DomainError::TooLong { max: 300 }),
            _ => {}
        }
        let notes = self.notes.map(|n| domain::text::normalize_name(&n)).filter(|n| !n.is_empty());
        if notes.as_ref().is_some_and(|n| n.chars().count() > 500) {
            e.push("notes", domain::DomainError::TooLong { max: 500 });
        }
        e.finish()?;
        Ok(journey::home_visit::Address {
            address,
            postal_code: postal.expect("checked"),
            landline: landline.expect("checked"),
            notes,
        })
    }
}

/// The address of a home visit, for a citizen who answered "no" to the first special-needs
/// question: required before paying (409 `home_visit_address_required` otherwise), and may
/// change until the visit is scheduled. The landline's area code files the request under a
/// city; that city's home-visit offices see it in their queue once the fee is paid. The
/// address, postal code, landline and notes are sealed at rest. Anyone else: 409
/// `home_visit_not_required`.
#[utoipa::path(operation_id = "citizen_set_home_visit", tag = "citizen", security(("citizen" = [])), request_body = HomeVisitRequest,
    responses((status = 200, description = "Saved", body = ApplicationView), CitizenWrite))]
#[put("/api/v1/citizen/application/home-visit")]
pub async fn put_home_visit(
    req: HttpRequest,
    state: web::Data<AppState>,
    citizen: CitizenToken,
    lang: RequestLang,
    body: crate::extract::Json<HomeVisitRequest>,
) -> Result<HttpResponse, ApiError> {
    let address = body.into_inner().parse()?;
    let actor = citizen.actor(&req);
    let row = journey::home_visit::set_address(&state, Target::Session(citizen), address, actor).await?;
    Ok(HttpResponse::Ok().json(build_view_lang(&state, row, lang.0).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReissueRequest {
    pub reason: wire::ReissueReason,
}

/// Asks for a new card after delivery (docs/domain/application.md: a serial changed after production
/// started; also a lost or damaged card, or changed data): starts the next card cycle,
/// linked to the delivered one, with the same identity and special-needs answers. It books
/// an office and pays the **re-issue fee** of the tariff (`reissue` in `/admin/fees`), then
/// goes the usual way to a new card; `history` lists the earlier cycles. Allowed only once
/// the card is delivered (`request_reissue` in `allowed_operations`; otherwise 409
/// `reissue_not_allowed`). The same request again answers 200 with the cycle it started.
#[utoipa::path(operation_id = "citizen_request_reissue", tag = "citizen", security(("citizen" = [])), request_body = ReissueRequest,
    responses(
        (status = 201, description = "The new card cycle", body = ApplicationView,
            headers(("Location" = String, description = "`/api/v1/citizen/application`"))),
        (status = 200, description = "Already started by the same request", body = ApplicationView),
        CitizenWrite))]
#[post("/api/v1/citizen/application/reissue")]
pub async fn request_reissue(
    req: HttpRequest,
    state: web::Data<AppState>,
    citizen: CitizenPrincipal,
    lang: RequestLang,
    body: crate::extract::Json<ReissueRequest>,
) -> Result<HttpResponse, ApiError> {
    let actor = actor(&req, "citizen", &citizen.citizen_id);
    let (row, created) =
        journey::reissue::request(&state, &citizen.citizen_id, body.into_inner().reason.into(), actor).await?;
    let view = build_view_lang(&state, row, lang.0).await?;
    Ok(if created {
        HttpResponse::Created().insert_header(("Location", "/api/v1/citizen/application")).json(view)
    } else {
        HttpResponse::Ok().json(view)
    })
}

/// Father, mother, spouses and children (docs/domain/application.md); national codes are validated.
#[utoipa::path(operation_id = "citizen_set_family", tag = "citizen", security(("citizen" = [])), request_body = Family,
    responses((status = 200, description = "Saved", body = ApplicationView), CitizenWrite))]
#[put("/api/v1/citizen/application/family")]
pub async fn put_family(
    req: HttpRequest,
    state: web::Data<AppState>,
    citizen: CitizenToken,
    lang: RequestLang,
    body: crate::extract::Json<Family>,
) -> Result<HttpResponse, ApiError> {
    let actor = citizen.actor(&req);
    let row = journey::personal::save_family(&state, Target::Session(citizen), body.into_inner(), actor).await?;
    Ok(HttpResponse::Ok().json(build_view_lang(&state, row, lang.0).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MobileRequest {
    #[schema(example = "09145128136")]
    pub mobile: String,
}

/// A new mobile number; allowed any time after the first page (docs/domain/application.md).
#[utoipa::path(operation_id = "citizen_set_mobile", tag = "citizen", security(("citizen" = [])), request_body = MobileRequest,
    responses((status = 200, description = "Saved", body = ApplicationView), CitizenWrite))]
#[put("/api/v1/citizen/application/mobile")]
pub async fn put_mobile(
    req: HttpRequest,
    state: web::Data<AppState>,
    citizen: CitizenToken,
    lang: RequestLang,
    body: crate::extract::Json<MobileRequest>,
) -> Result<HttpResponse, ApiError> {
    let mut e = FieldErrors::default();
    let mobile = e.take("mobile", Mobile::parse(&body.mobile));
    e.finish()?;
    let actor = citizen.actor(&req);
    let row =
        journey::personal::change_mobile(&state, Target::Session(citizen), mobile.expect("checked"), actor).await?;
    Ok(HttpResponse::Ok().json(build_view_lang(&state, row, lang.0).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppointmentRequest {
    /// An office id from `/offices/availability`.
    #[schema(example = "041-MRG-01")]
    pub office_id: String,
    #[schema(example = "2026-11-25")]
    pub date: NaiveDate,
    pub shift: wire::Shift,
}

/// Holds a seat (unpaid: for the payment timeout, 15 minutes by default) or books it
/// (paid). Calling it again moves the hold; rescheduling a booking frees the old seat and
/// takes the new one in one transaction. Seats are never oversold (`slot_full`).
#[utoipa::path(operation_id = "citizen_book_appointment", tag = "citizen", security(("citizen" = [])), request_body = AppointmentRequest,
    responses((status = 200, description = "Held or booked", body = ApplicationView), CitizenWrite))]
#[put("/api/v1/citizen/application/appointment")]
pub async fn put_appointment(
    req: HttpRequest,
    state: web::Data<AppState>,
    citizen: CitizenToken,
    lang: RequestLang,
    body: crate::extract::Json<AppointmentRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let slot = Slot { office_id: body.office_id.into(), date: body.date, shift: body.shift.into() };
    let actor = citizen.actor(&req);
    let (row, office) = journey::booking::take_slot(&state, Target::Session(citizen), slot, actor).await?;
    Ok(HttpResponse::Ok().json(build_view_with(&state, row, vec![office], lang.0).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryOfficeRequest {
    #[schema(example = "041-TBZ-01")]
    pub office_id: String,
}

/// Where to collect the card (defaults to the enrollment office); until production starts.
#[utoipa::path(operation_id = "citizen_set_delivery_office", tag = "citizen", security(("citizen" = [])), request_body = DeliveryOfficeRequest,
    responses((status = 200, description = "Saved", body = ApplicationView), CitizenWrite))]
#[put("/api/v1/citizen/application/delivery-office")]
pub async fn put_delivery_office(
    req: HttpRequest,
    state: web::Data<AppState>,
    citizen: CitizenToken,
    lang: RequestLang,
    body: crate::extract::Json<DeliveryOfficeRequest>,
) -> Result<HttpResponse, ApiError> {
    let actor = citizen.actor(&req);
    let row = journey::booking::change_delivery_office(
        &state,
        Target::Session(citizen),
        body.into_inner().office_id.into(),
        actor,
    )
    .await?;
    Ok(HttpResponse::Ok().json(build_view_lang(&state, row, lang.0).await?))
}

/// Logout: ends this session on the server. The token, and any copy of it, gets 401
/// `session_ended` afterwards.
#[utoipa::path(operation_id = "citizen_sign_out", tag = "citizen", security(("citizen" = [])),
    responses((status = 204, description = "Signed out; this token gets 401 from now on"), crate::routes::problems::SessionEnd))]
#[delete("/api/v1/citizen/sessions/current")]
pub async fn end_citizen_session(state: web::Data<AppState>, who: CitizenPrincipal) -> Result<HttpResponse, ApiError> {
    let (sid, now) = (who.session_id, state.now().naive_utc());
    state.run(move |conn| persistence::sessions::end(conn, &sid, now)).await?;
    Ok(HttpResponse::NoContent().finish())
}
