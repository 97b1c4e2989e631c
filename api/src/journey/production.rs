//! The card production line's queue (issue 20; docs/domain/back-office.md «صدور کارت»): what it has to
//! produce — enrolled applications, oldest enrollment first — with what the card needs,
//! each handed to one production client at a time under a lease
//! ([`persistence::production`]). The `production_started` event takes an application
//! out of the queue ([`crate::journey::office::production_event`]).

use domain::record_ids::ApplicationId;
use domain::record_ids::ClientId;
use domain::record_ids::OfficeId;
use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use persistence::PiiKind;
use persistence::applications::ApplicationRow;
use persistence::back_office::{EnrollmentRow, LatinNames};
use persistence::offices::OfficeRow;
use persistence::production::{self, QueuePosition};

use crate::error::{ApiCode, ApiError};
use crate::page::PageRequest;
use crate::state::AppState;

/// One application to produce, with its personal data opened for the card.
#[derive(Debug, Clone)]
pub struct QueueEntry {
    pub application_id: String,
    pub tracking_code: String,
    pub national_id: String,
    pub serial: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub latin: Option<LatinNames>,
    pub birth_date: NaiveDate,
    pub birth_date_jalali: String,
    pub gender: String,
    pub enrollment: EnrollmentRow,
    pub enrollment_office: OfficeRow,
    pub delivery_office: OfficeRow,
    pub lease_expires_at: DateTime<Utc>,
}

/// A page of the queue now leased to the client, and the cursor of the next one.
pub struct QueuePage {
    pub entries: Vec<QueueEntry>,
    pub next_cursor: Option<String>,
}

/// Claims the next page of enrolled applications for a production client (see
/// [`production::claim`]) and opens what the card needs. `cursor`: the `next_cursor` of
/// the previous page (422 naming `cursor` when it is not one).
pub async fn poll(state: &AppState, client_id: &ClientId, paging: &PageRequest) -> Result<QueuePage, ApiError> {
    let limit = paging.limit;
    let after = match paging.cursor() {
        Some(c) => Some(QueuePosition::decode(c).ok_or_else(|| ApiError::field("cursor", ApiCode::Invalid))?),
        None => None,
    };
    let now = state.now();
    let until = now + Duration::minutes(state.config.production.lease_minutes);
    let client = client_id.clone();
    let (claimed, rows, enrollments, offices) = state
        .run_api(move |conn| {
            let claimed = production::claim(conn, &client, after.as_ref(), limit, now.naive_utc(), until.naive_utc())?;
            let ids: Vec<ApplicationId> = claimed.items.iter().map(|p| p.application_id.clone()).collect();
            if ids.is_empty() {
                return Ok((claimed, Vec::new(), Vec::new(), Vec::new()));
            }
            let rows = persistence::applications::find_many(conn, &ids)?;
            let enrollments = persistence::back_office::enrollments(conn, &ids)?;
            let mut office_ids: Vec<OfficeId> = enrollments.iter().map(|e| e.office_id.clone()).collect();
            office_ids.extend(rows.iter().filter_map(|r| r.delivery_office_id.clone()));
            office_ids.sort_unstable();
            office_ids.dedup();
            let offices = persistence::offices::find_many(conn, &office_ids)?;
            Ok((claimed, rows, enrollments, offices))
        })
        .await?;
    let mut rows: HashMap<ApplicationId, ApplicationRow> = rows.into_iter().map(|r| (r.id.clone(), r)).collect();
    let mut enrollments: HashMap<ApplicationId, EnrollmentRow> =
        enrollments.into_iter().map(|e| (e.application_id.clone(), e)).collect();
    let offices: HashMap<OfficeId, OfficeRow> = offices.into_iter().map(|o| (o.id.clone(), o)).collect();
    let mut entries = Vec::with_capacity(claimed.items.len());
    for position in &claimed.items {
        let (Some(row), Some(enrollment)) =
            (rows.remove(&position.application_id), enrollments.remove(&position.application_id))
        else {
            continue;
        };
        entries.push(entry(state, row, enrollment, &offices, until)?);
    }
    Ok(QueuePage { entries, next_cursor: claimed.next.map(|p| p.encode()) })
}

fn entry(
    state: &AppState,
    row: ApplicationRow,
    enrollment: EnrollmentRow,
    offices: &HashMap<OfficeId, OfficeRow>,
    until: DateTime<Utc>,
) -> Result<QueueEntry, ApiError> {
    let pii = &state.pii;
    let personal = row.personal(pii)?;
    let app = row.to_domain()?;
    let enrollment_office =
        offices.get(&enrollment.office_id).cloned().ok_or_else(|| ApiError::internal("enrollment office"))?;
    // The delivery office defaults to the enrollment office (docs/domain/application.md).
    let delivery_office = app
        .effective_delivery_office()
        .and_then(|id| offices.get(id).cloned())
        .unwrap_or_else(|| enrollment_office.clone());
    let latin = enrollment.latin_names_enc.as_deref().map(|s| LatinNames::open(pii, s)).transpose()?;
    Ok(QueueEntry {
        application_id: row.id.clone().into(),
        tracking_code: row.tracking_code.clone().unwrap_or_default(),
        national_id: pii.open(PiiKind::NationalId, &row.nid_enc)?,
        serial: pii.open(PiiKind::Serial, &row.serial_enc)?,
        first_name: personal.first_name,
        last_name: personal.last_name,
        latin,
        birth_date: personal.birth_date,
        birth_date_jalali: personal.birth_date_jalali,
        gender: personal.gender,
        enrollment,
        enrollment_office,
        delivery_office,
        lease_expires_at: until,
    })
}
