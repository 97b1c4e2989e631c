//! Enrollment offices and their free seats (docs/domain/booking.md «انتخاب زمان و دفتر تکمیل ثبت نام»).

use actix_web::{HttpResponse, get, web};
use chrono::NaiveDate;
use domain::offices::NeighbourhoodPrefix;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::MaybeCitizenToken;
use crate::error::{ApiCode, ApiError, FieldErrors};
use crate::page::PageRequest;
use crate::routes::problems::PublicRead;
use crate::state::AppState;
use crate::wire::{self, OfficeSummary};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityQuery {
    /// Desired date (Gregorian, ISO-8601), from tomorrow to the booking horizon. Give this
    /// or `date_jalali` (or both: then they must be the same day).
    #[param(example = "2026-11-25")]
    pub date: Option<NaiveDate>,
    /// The desired date in the solar (Jalali) calendar, `YYYY-MM-DD` (Persian digits are fine).
    #[param(example = "1405-09-04")]
    pub date_jalali: Option<String>,
    /// The city's phone code, e.g. `041` for Tabriz and Maragheh (see
    /// `GET /api/v1/public/regions`). Give this or `province` (or both).
    #[param(example = "041")]
    pub city_code: Option<String>,
    /// A province, as `GET /api/v1/public/regions` names it: every city of it is searched
    /// (only the given city's offices when `city_code` is given too).
    #[param(example = "آذربایجان شرقی")]
    pub province: Option<String>,
    /// Only offices of this kind.
    #[param(value_type = Option<wire::OfficeKind>, example = "civil_registry")]
    pub office_kind: Option<String>,
    /// A landline of the neighbourhood (without the city code). Only its first four digits
    /// are used, to put nearby offices first; it is never stored.
    #[param(example = "11222265")]
    pub phone: Option<String>,
    /// How many rows to answer, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500, example = 50)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(example = "50")]
    pub cursor: Option<String>,
}

/// The furthest a cursor may point into the ranked list.
const MAX_OFFSET: usize = 100_000;

#[derive(Serialize, ToSchema)]
pub struct AvailabilityRow {
    pub office: OfficeSummary,
    pub shift: wire::Shift,
    /// Approved capacity of the shift.
    #[schema(example = 20)]
    pub approved: u32,
    #[schema(example = 10)]
    pub free: u32,
    /// `free` as a whole percentage of `approved`; the list is ordered by it.
    #[schema(example = 50)]
    pub free_percent: u8,
    /// 0–4: leading digits shared with the given phone (4 = same neighbourhood).
    #[schema(example = 4)]
    pub closeness: u8,
}

#[derive(Serialize, ToSchema)]
pub struct Availability {
    #[schema(example = "2026-11-25")]
    pub date: NaiveDate,
    #[schema(example = "1405-09-04")]
    pub date_jalali: String,
    /// The city searched; `null` when a whole province was.
    #[schema(example = "041", required = true)]
    pub city_code: Option<String>,
    /// The province searched, if one was given.
    #[schema(example = "آذربایجان شرقی", required = true)]
    pub province: Option<String>,
    /// The kind of office searched, if one was given.
    #[schema(required = true)]
    pub office_kind: Option<wire::OfficeKind>,
    /// Whether the citizen's special needs were applied (a citizen token was sent).
    #[schema(example = true)]
    pub filtered_by_special_needs: bool,
    /// The citizen cannot leave home: no office is offered; a home visit is arranged instead.
    #[schema(example = false)]
    pub home_visit: bool,
    /// Rows in the whole list.
    #[schema(example = 57)]
    pub total: u32,
    /// One row per office per shift: nearest neighbourhood first, then by free percentage.
    pub items: Vec<AvailabilityRow>,
    /// Pass as `cursor` to get the next page; `null` on the last page. Seats change between
    /// requests, so a later page is ranked afresh.
    #[schema(example = "50", required = true)]
    pub next_cursor: Option<String>,
}

/// Offices with free seats on a date in a city, a province, or a city of a province,
/// optionally of one kind of office. The date is Gregorian (`date`) or Jalali
/// (`date_jalali`); both may be given when they are the same day. With a citizen token
/// the citizen's special needs filter the list; without one it is unfiltered. One page of
/// the ranked list is answered (`limit`, `cursor`); `total` tells how many rows the list
/// has. A bad value, a province no office lies in (`province_unknown`) or two dates that
/// disagree (`dates_disagree`) answer 422 naming the field.
#[utoipa::path(operation_id = "offices_search_availability", tag = "offices", params(AvailabilityQuery), security((), ("citizen" = [])),
    responses((status = 200, description = "Offices and free seats", body = Availability), PublicRead,
        (status = 401, description = "An invalid citizen token was sent", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/api/v1/offices/availability")]
pub async fn availability(
    state: web::Data<AppState>,
    citizen: MaybeCitizenToken,
    query: web::Query<AvailabilityQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let mut errors = FieldErrors::default();
    let near = query.phone.as_deref().and_then(|p| errors.take("phone", NeighbourhoodPrefix::from_phone(p)));
    let city_code = query.city_code.as_deref().and_then(|c| {
        let code = domain::text::digits_only(c).filter(|c| (2..=4).contains(&c.len()));
        if code.is_none() {
            errors.push("city_code", domain::DomainError::PhoneInvalid);
        }
        code
    });
    let province = query.province.as_deref().and_then(|p| errors.take("province", domain::offices::text(p)));
    let office_kind = query.office_kind.as_deref().and_then(|k| {
        let kind = domain::offices::OfficeKind::parse(k.trim());
        if kind.is_none() {
            errors.push("office_kind", domain::DomainError::OfficeKindInvalid);
        }
        kind
    });
    let jalali =
        query.date_jalali.as_deref().and_then(|d| errors.take("date_jalali", domain::calendar::JalaliDate::parse(d)));
    if query.city_code.is_none() && query.province.is_none() {
        errors.push("city_code", domain::DomainError::Required);
    }
    if query.date.is_none() && query.date_jalali.is_none() {
        errors.push("date", domain::DomainError::Required);
    }
    errors.finish()?;
    let date = match (query.date, jalali.map(domain::calendar::JalaliDate::to_gregorian)) {
        (Some(g), Some(j)) if g != j => return Err(ApiError::field("date_jalali", ApiCode::DatesDisagree)),
        (Some(d), _) | (None, Some(d)) => d,
        (None, None) => return Err(ApiError::field("date", ApiCode::Required)),
    };
    let city_code = city_code.map(|c| if c.starts_with('0') { c } else { format!("0{c}") });
    let paging = PageRequest::new(query.limit, query.cursor.clone())?;
    let limit = usize::try_from(paging.limit).unwrap_or(0);
    // The cursor is the position in the ranked list where the next page starts.
    let offset = match paging.cursor() {
        None => 0,
        Some(c) => c
            .parse::<usize>()
            .ok()
            .filter(|o| *o <= MAX_OFFSET && c.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| ApiError::field("cursor", ApiCode::Invalid))?,
    };
    let scope = persistence::offices::SeatScope {
        city_code: city_code.clone(),
        province: province.clone(),
        kind: office_kind.map(|k| k.as_str().to_owned()),
    };
    let page = crate::journey::booking::availability(&state, date, scope, near, citizen.0, offset, limit).await?;
    let total = u32::try_from(page.total).unwrap_or(u32::MAX);
    let next = offset.saturating_add(limit);
    Ok(HttpResponse::Ok().json(Availability {
        date,
        date_jalali: domain::calendar::JalaliDate::from_gregorian(date).map(|d| d.to_string()).unwrap_or_default(),
        city_code,
        province,
        office_kind: office_kind.map(Into::into),
        filtered_by_special_needs: page.filtered_by_special_needs,
        home_visit: page.home_visit,
        total,
        next_cursor: (next < page.total).then(|| next.to_string()),
        items: page
            .rows
            .into_iter()
            .map(|r| AvailabilityRow {
                office: OfficeSummary::from(&r.office),
                shift: r.shift.into(),
                approved: r.approved,
                free: r.free,
                free_percent: r.free_percent,
                closeness: r.closeness,
            })
            .collect(),
    }))
}
