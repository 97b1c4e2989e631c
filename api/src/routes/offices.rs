//! Enrollment offices and their free seats (seed 001 «انتخاب زمان و دفتر تکمیل ثبت نام»).

use actix_web::{HttpResponse, get, web};
use chrono::NaiveDate;
use domain::offices::NeighbourhoodPrefix;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::MaybeCitizen;
use crate::error::{ApiError, FieldErrors};
use crate::routes::problems::PublicRead;
use crate::state::AppState;
use crate::wire::{self, OfficeSummary};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityQuery {
    /// Desired date (Gregorian, ISO-8601), from tomorrow to the booking horizon.
    #[param(example = "2026-11-25")]
    pub date: NaiveDate,
    /// The city's phone code, e.g. `041` for Tabriz and Maragheh.
    #[param(example = "041")]
    pub city_code: String,
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
    #[schema(example = "041")]
    pub city_code: String,
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

/// Offices with free seats on a date in a city. With a citizen token the citizen's
/// special needs filter the list; without one it is unfiltered. One page of the ranked
/// list is answered (`limit`, `cursor`); `total` tells how many rows the list has.
#[utoipa::path(operation_id = "offices_search_availability", tag = "offices", params(AvailabilityQuery), security((), ("citizen" = [])),
    responses((status = 200, description = "Offices and free seats", body = Availability), PublicRead,
        (status = 401, description = "An invalid citizen token was sent", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/api/v1/offices/availability")]
pub async fn availability(
    state: web::Data<AppState>,
    citizen: MaybeCitizen,
    query: web::Query<AvailabilityQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let mut errors = FieldErrors::default();
    let near = query.phone.as_deref().and_then(|p| errors.take("phone", NeighbourhoodPrefix::from_phone(p)));
    let city_code = domain::text::digits_only(&query.city_code).filter(|c| (2..=4).contains(&c.len()));
    if city_code.is_none() {
        errors.push("city_code", domain::DomainError::PhoneInvalid);
    }
    errors.finish()?;
    let city_code = city_code.expect("checked");
    let city_code = if city_code.starts_with('0') { city_code } else { format!("0{city_code}") };
    let limit = usize::try_from(crate::page::limit(query.limit)?).unwrap_or(0);
    // The cursor is the position in the ranked list where the next page starts.
    let offset = match query.cursor.as_deref() {
        None => 0,
        Some(c) => c
            .parse::<usize>()
            .ok()
            .filter(|o| *o <= MAX_OFFSET && c.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| ApiError::field("cursor", "invalid"))?,
    };
    let page = crate::journey::booking::availability(
        &state,
        query.date,
        city_code.clone(),
        near,
        citizen.0.map(|c| c.citizen_id),
        offset,
        limit,
    )
    .await?;
    let total = u32::try_from(page.total).unwrap_or(u32::MAX);
    let next = offset.saturating_add(limit);
    Ok(HttpResponse::Ok().json(Availability {
        date: query.date,
        date_jalali: domain::calendar::JalaliDate::from_gregorian(query.date)
            .map(|d| d.to_string())
            .unwrap_or_default(),
        city_code,
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
