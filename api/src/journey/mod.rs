//! The citizen's journey as operations on an application. The HTTP handlers (citizen
//! and kiosk alike) call these; they hold no rule of their own — every decision is
//! `domain::application::transition` or another domain function.

pub mod admin;
pub mod admin_offices;
pub mod booking;
pub mod closures;
pub mod efolder;
pub mod entry;
pub mod home_visit;
pub mod kiosk;
pub mod legacy;
pub mod lookup;
pub mod office;
pub mod payment;
pub mod personal;
pub mod production;
pub mod receipt;
pub mod reissue;
pub mod sandbox;
pub mod view;
pub mod withdrawal;

// The cache of slots just refused as full is the server state's (it outlives a request);
// named here too, where the booking use cases read and clear it.
pub use crate::full_slots;

use actix_web::HttpRequest;
use chrono::{DateTime, Utc};
use domain::DomainError;
use domain::application::Application;
use domain::record_ids::{ApplicationId, CitizenId};
use persistence::applications::{self, ApplicationRow};
use persistence::audit::Actor;
use persistence::{DbConn, DbError, write_tx};

use crate::auth::CitizenToken;
use crate::error::{ApiCode, ApiError};
use crate::middleware::RequestId;
use crate::state::AppState;

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        ApiError::from(DbError::from(e))
    }
}

/// Which application an operation is about.
#[derive(Debug, Clone)]
pub enum Target {
    /// The current application of a citizen whose session was checked.
    Citizen(CitizenId),
    /// The current application of a citizen whose session is checked by the read of it
    /// (in the same statement; 401 `session_ended` if it is not live).
    Session(CitizenToken),
    Id(ApplicationId),
    TrackingCode(String),
}

impl Target {
    /// The application, its row locked for the rest of the write transaction (one
    /// statement: `SELECT … FOR UPDATE` on PostgreSQL; SQLite's writer holds the database).
    fn load_locked(&self, conn: &mut DbConn, now: DateTime<Utc>) -> Result<Option<ApplicationRow>, ApiError> {
        Ok(match self {
            Target::Citizen(id) => applications::current_for_citizen_locked(conn, id)?,
            Target::Session(token) => token.current_application(conn, now, true)?.1,
            Target::Id(id) => applications::find_locked(conn, id)?,
            Target::TrackingCode(code) => applications::find_by_tracking_code_locked(conn, code)?,
        })
    }

    /// The application, read without a lock.
    pub fn load(&self, conn: &mut DbConn, now: DateTime<Utc>) -> Result<Option<ApplicationRow>, ApiError> {
        Ok(match self {
            Target::Citizen(id) => applications::current_for_citizen(conn, id)?,
            Target::Session(token) => token.current_application(conn, now, false)?.1,
            Target::Id(id) => applications::find(conn, id)?,
            Target::TrackingCode(code) => applications::find_by_tracking_code(conn, code)?,
        })
    }

    /// [`Self::load`] as a function of the connection and the time, for a use case that
    /// takes its first read from its caller.
    pub fn reader(self) -> impl FnOnce(&mut DbConn, DateTime<Utc>) -> Result<Option<ApplicationRow>, ApiError> {
        move |conn, now| self.load(conn, now)
    }

    /// Whether the application (read without a lock) holds one of `slot`'s seats — or
    /// there is none, which the write path answers.
    fn may_hold_seat_of(
        &self,
        conn: &mut DbConn,
        slot: &domain::application::Slot,
        now: DateTime<Utc>,
    ) -> Result<bool, ApiError> {
        let Some(row) = self.load(conn, now)? else { return Ok(true) };
        let app = row.to_domain()?;
        Ok(app.holds_seat_of(slot))
    }
}

/// The actor of a request, for the audit log.
pub fn actor(req: &HttpRequest, kind: &'static str, id: impl Into<String>) -> Actor {
    use actix_web::HttpMessage;
    Actor {
        kind,
        id: Some(id.into()),
        request_id: req.extensions().get::<RequestId>().map(|r| r.0.clone()),
        client_ip: crate::client_addr::of(req).map(|ip| ip.to_string()),
    }
}

/// Loads an application, lets `change` decide (through the domain) what happens, and
/// saves it — all in one write transaction, retried if another writer got there first.
/// `change` gets the row to edit, the domain view of it as read, and the time. A row
/// `change` leaves untouched is not written, nor one it saved itself (its version moved:
/// `take_slot`). Returns `change`'s result and the saved row.
pub async fn mutate<T, F>(state: &AppState, target: Target, change: F) -> Result<(T, ApplicationRow), ApiError>
where
    T: Send + 'static,
    F: Fn(&mut DbConn, &mut ApplicationRow, &Application, DateTime<Utc>) -> Result<T, ApiError> + Send + 'static,
{
    let now = state.now();
    state.run_api(move |conn| mutate_in(conn, &target, now, &change)).await
}

/// [`mutate`] on a connection the caller already holds (jobs, other transactions' callers).
pub fn mutate_in<T, F>(
    conn: &mut DbConn,
    target: &Target,
    now: DateTime<Utc>,
    change: &F,
) -> Result<(T, ApplicationRow), ApiError>
where
    F: Fn(&mut DbConn, &mut ApplicationRow, &Application, DateTime<Utc>) -> Result<T, ApiError>,
{
    retrying(|_| {
        write_tx(conn, |conn| {
            let mut row = target.load_locked(conn, now)?.ok_or(ApiError::Domain(DomainError::ApplicationNotFound))?;
            let before = row.clone();
            let app = row.to_domain()?;
            // The audit entries `change` appends are written with the application, in one
            // statement on PostgreSQL (`app_write`).
            let (out, audit) = persistence::audit::deferring(|| change(conn, &mut row, &app, now));
            let out = out?;
            if row.version == before.version && row != before {
                if audit.is_empty() {
                    applications::update(conn, &mut row, now)?;
                } else {
                    let along = persistence::app_write::Along { audit, outbox: Vec::new(), payment: None };
                    persistence::app_write::save(conn, &mut row, along, now)?;
                }
            } else {
                // Unchanged, or saved by `change` itself (its version moved: a hold takes its
                // seat in the statement that saves the application): its entries alone.
                for entry in &audit {
                    persistence::audit::insert(conn, entry)?;
                }
            }
            Ok((out, row))
        })
    })
}

/// Runs `attempt` (given its number, from 1) again while it loses a race to another writer
/// (`409 concurrent_update`: nothing it wrote stayed), four times at most.
pub(crate) fn retrying<T>(mut attempt: impl FnMut(u32) -> Result<T, ApiError>) -> Result<T, ApiError> {
    let mut n = 0;
    loop {
        n += 1;
        match attempt(n) {
            Err(ApiError::Conflict { code: ApiCode::ConcurrentUpdate, .. }) if n < 4 => continue,
            other => return other,
        }
    }
}

/// [`mutate`] for a change to nothing but the application and its audit entries (`change`
/// pushes those onto the list it is given): the application is read without a lock or a
/// transaction and saved with its entries by one all-or-nothing statement whose versioned
/// update notices another writer (`app_write`) — then read again and decided again. Saves
/// the transaction and the row lock a [`mutate`] takes (PostgreSQL: 2 statements, not 4).
pub async fn amend<T, F>(state: &AppState, target: Target, change: F) -> Result<(T, ApplicationRow), ApiError>
where
    T: Send + 'static,
    F: Fn(
            &mut ApplicationRow,
            &Application,
            DateTime<Utc>,
            &mut Vec<persistence::audit::AuditRow>,
        ) -> Result<T, ApiError>
        + Send
        + 'static,
{
    let now = state.now();
    state
        .run_api(move |conn| {
            retrying(|_| {
                let mut row = target.load(conn, now)?.ok_or(ApiError::Domain(DomainError::ApplicationNotFound))?;
                let before = row.clone();
                let app = row.to_domain()?;
                let mut audit = Vec::new();
                let out = change(&mut row, &app, now, &mut audit)?;
                let saved = if row != before {
                    let along = persistence::app_write::Along { audit, ..Default::default() };
                    persistence::app_write::save(conn, &mut row, along, now).map(|_| ())
                } else {
                    // The application stays as it was: its entries alone, if any.
                    match audit.as_slice() {
                        [] => Ok(()),
                        [entry] => persistence::single_write(conn, |conn| persistence::audit::insert(conn, entry)),
                        _ => write_tx(conn, |conn| audit.iter().try_for_each(|e| persistence::audit::insert(conn, e))),
                    }
                };
                saved.map_err(ApiError::from).map(|()| (out, row))
            })
        })
        .await
}

/// National holidays around a date (for working-hour counts): 14 days back, 1 ahead.
pub fn holidays_near(conn: &mut DbConn, now: DateTime<Utc>) -> Result<Vec<chrono::NaiveDate>, DbError> {
    let (from, to) = holiday_span(now);
    persistence::offices::holidays_between(conn, from, to)
}

/// [`holidays_near`] from a catalog copy.
pub fn holidays_around(catalog: &persistence::catalog::Snapshot, now: DateTime<Utc>) -> Vec<chrono::NaiveDate> {
    let (from, to) = holiday_span(now);
    catalog.holidays_between(from, to)
}

fn holiday_span(now: DateTime<Utc>) -> (chrono::NaiveDate, chrono::NaiveDate) {
    let today = domain::calendar::tehran_date(now);
    (today - chrono::Duration::days(14), today + chrono::Duration::days(1))
}
