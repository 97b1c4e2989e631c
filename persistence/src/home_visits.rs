//! Home visits (docs/domain/booking.md: "no" to «آیا سلامتی کافی برای خروج از خانه دارید؟»): the address to
//! visit, sealed, and the queue a home-visit office reads — the paid citizens of its city
//! waiting for a visit, the visits it scheduled, the ones it made — oldest payment first.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use domain::record_ids::{ApplicationId, OfficeId};

use crate::applications::ApplicationRow;
use crate::db::DbConn;
use crate::error::DbError;
use crate::pii::{Kind, Pii};
use crate::schema::{applications, home_visits};

/// What the citizen gives for the visit, sealed together at rest (`Kind::HomeVisit`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HomeVisitDetails {
    pub address: String,
    pub postal_code: String,
    pub landline: String,
    pub notes: Option<String>,
}

impl HomeVisitDetails {
    pub fn seal(&self, pii: &Pii) -> String {
        pii.seal(Kind::HomeVisit, &serde_json::to_string(self).expect("plain fields serialise"))
    }

    pub fn open(pii: &Pii, sealed: &str) -> Result<Self, DbError> {
        serde_json::from_str(&pii.open(Kind::HomeVisit, sealed)?)
            .map_err(|e| DbError::Internal(format!("a home visit's details do not parse: {e}")))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = home_visits, treat_none_as_null = true)]
pub struct HomeVisitRow {
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub application_id: ApplicationId,
    /// The city whose home-visit offices see it (the landline's area code, e.g. `041`).
    pub city_code: String,
    /// [`HomeVisitDetails`], sealed.
    pub details_enc: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// The operator who scheduled the visit last, and when.
    pub scheduled_by: Option<String>,
    pub scheduled_at: Option<NaiveDateTime>,
}

impl HomeVisitRow {
    pub fn details(&self, pii: &Pii) -> Result<HomeVisitDetails, DbError> {
        HomeVisitDetails::open(pii, &self.details_enc)
    }
}

pub fn find(conn: &mut DbConn, application_id: &ApplicationId) -> Result<Option<HomeVisitRow>, DbError> {
    home_visits::table
        .find(application_id.as_str())
        .select(HomeVisitRow::as_select())
        .first(conn)
        .optional()
        .map_err(DbError::from)
}

/// The visit of an application that asked for one (cannot leave home, address given).
pub fn for_application(conn: &mut DbConn, row: &ApplicationRow) -> Result<Option<HomeVisitRow>, DbError> {
    if row.can_leave_home == Some(false) && row.home_visit_address { find(conn, &row.id) } else { Ok(None) }
}

/// Saves the address of an application's visit (a new one, or a changed one). Called
/// inside the application's write transaction, which serialises writers of the row.
pub fn save(
    conn: &mut DbConn,
    pii: &Pii,
    application_id: &ApplicationId,
    city_code: &str,
    details: &HomeVisitDetails,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let sealed = details.seal(pii);
    match find(conn, application_id)? {
        Some(_) => diesel::update(home_visits::table.find(application_id.as_str()))
            .set((
                home_visits::city_code.eq(city_code),
                home_visits::details_enc.eq(sealed),
                home_visits::updated_at.eq(now.naive_utc()),
            ))
            .execute(conn)
            .map(|_| ())
            .map_err(DbError::from),
        None => diesel::insert_into(home_visits::table)
            .values(HomeVisitRow {
                application_id: application_id.clone(),
                city_code: city_code.to_owned(),
                details_enc: sealed,
                created_at: now.naive_utc(),
                updated_at: now.naive_utc(),
                scheduled_by: None,
                scheduled_at: None,
            })
            .execute(conn)
            .map(|_| ())
            .map_err(DbError::from),
    }
}

/// Records who scheduled the visit.
pub fn mark_scheduled(
    conn: &mut DbConn,
    application_id: &ApplicationId,
    by: &str,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    diesel::update(home_visits::table.find(application_id.as_str()))
        .set((
            home_visits::scheduled_by.eq(Some(by)),
            home_visits::scheduled_at.eq(Some(now.naive_utc())),
            home_visits::updated_at.eq(now.naive_utc()),
        ))
        .execute(conn)
        .map(|_| ())
        .map_err(DbError::from)
}

/// Which part of the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueStatus {
    /// Paid, the address given, no visit scheduled (or the last one missed): every
    /// home-visit office of the city sees them.
    Waiting,
    /// A visit this office scheduled, not made yet.
    Scheduled,
    /// Visits this office made (enrollment started or completed there).
    Done,
}

/// A page of the queue, oldest payment first; `after` is the last row of the previous
/// page (its `paid_at` and application id).
pub fn queue(
    conn: &mut DbConn,
    city_code: &str,
    office_id: &OfficeId,
    status: QueueStatus,
    after: Option<(NaiveDateTime, String)>,
    limit: i64,
) -> Result<Vec<(HomeVisitRow, ApplicationRow)>, DbError> {
    let mut q = home_visits::table
        .inner_join(applications::table)
        .filter(home_visits::city_code.eq(city_code))
        .filter(applications::can_leave_home.eq(false))
        .filter(applications::home_visit_address.eq(true))
        .filter(applications::paid_at.is_not_null())
        .select((HomeVisitRow::as_select(), ApplicationRow::as_select()))
        .into_boxed();
    q = match status {
        QueueStatus::Waiting => q
            .filter(applications::state.eq("registered"))
            .filter(applications::appointment_status.eq_any(["none", "missed", "offered"])),
        QueueStatus::Scheduled => q
            .filter(applications::state.eq("registered"))
            .filter(applications::appointment_status.eq("booked"))
            .filter(applications::slot_office_id.eq(office_id.as_str())),
        QueueStatus::Done => q
            .filter(applications::appointment_status.eq("used"))
            .filter(applications::state.ne("cancelled"))
            .filter(applications::slot_office_id.eq(office_id.as_str())),
    };
    if let Some((paid_at, id)) = after {
        let paid = applications::paid_at.assume_not_null();
        q = q.filter(paid.gt(paid_at).or(paid.eq(paid_at).and(applications::id.gt(id))));
    }
    q.order((applications::paid_at.asc(), applications::id.asc())).limit(limit).load(conn).map_err(DbError::from)
}
