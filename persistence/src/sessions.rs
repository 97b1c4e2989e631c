//! Sessions behind citizen, staff and e-folder tokens (issue 24): a token names its
//! session (`sid`), so the session can be ended on the server (logout) and a staff
//! session can expire after an idle period, whatever the token's own `exp` says.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use crate::db::{DbConn, single_write};
use crate::error::DbError;
use crate::prepared::{FirstRow, KeepPrepared};
use crate::schema::sessions as s;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = s)]
pub struct SessionRow {
    pub id: String,
    /// `citizen`, `staff` or `efolder`.
    pub audience: String,
    /// The citizen, staff member or e-folder account (an opaque id).
    pub subject: String,
    pub created_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub ended_at: Option<NaiveDateTime>,
}

/// Opens a session built by [`new_row`] (its id is the token's `sid`).
pub fn insert(conn: &mut DbConn, row: &SessionRow) -> Result<(), DbError> {
    single_write(conn, |conn| diesel::insert_into(s::table).values(row).prepared().execute(conn))?;
    Ok(())
}

/// A session to open (a new id), for [`insert`] or a statement that writes it with its
/// subject (`citizens::enter_new_alone`).
pub fn new_row(audience: &str, subject: &str, now: NaiveDateTime, expires_at: NaiveDateTime) -> SessionRow {
    SessionRow {
        id: crate::new_id(),
        audience: audience.to_owned(),
        subject: subject.to_owned(),
        created_at: now,
        last_seen_at: now,
        expires_at,
        ended_at: None,
    }
}

/// Why a session no longer admits its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inactive {
    /// Unknown, of another audience or subject, or ended by a logout.
    Ended,
    /// Not used for longer than the idle period.
    Idle,
}

/// Checks that the session is live for this audience and subject. With `idle`, a session
/// unused for longer has expired; a live one is marked as seen (at most once a minute,
/// so a busy session does not write on every request).
pub fn check(
    conn: &mut DbConn,
    id: &str,
    audience: &str,
    subject: &str,
    now: NaiveDateTime,
    idle: Option<Duration>,
) -> Result<Result<(), Inactive>, DbError> {
    let row: Option<SessionRow> = s::table.find(id).select(SessionRow::as_select()).first(conn).optional()?;
    let Some(row) = row.filter(|r| r.audience == audience && r.subject == subject && r.ended_at.is_none()) else {
        return Ok(Err(Inactive::Ended));
    };
    if row.expires_at <= now {
        return Ok(Err(Inactive::Ended));
    }
    if let Some(idle) = idle {
        if row.last_seen_at + idle < now {
            return Ok(Err(Inactive::Idle));
        }
        if row.last_seen_at + Duration::minutes(1) <= now {
            single_write(conn, |conn| {
                diesel::update(s::table.find(id).filter(s::last_seen_at.lt(now)))
                    .set(s::last_seen_at.eq(now))
                    .prepared()
                    .execute(conn)
            })?;
        }
    }
    Ok(Ok(()))
}

/// [`check`] that also reads the catalog's version in the same statement (a scalar
/// subquery), so the request knows how new its copy of the catalog must be at no cost
/// (docs/decisions/0013-catalog-cache.md). Never writes `last_seen_at` (no idle limit).
pub fn check_seeing_catalog(
    conn: &mut DbConn,
    id: &str,
    audience: &str,
    subject: &str,
    now: NaiveDateTime,
) -> Result<(Result<(), Inactive>, Option<i64>), DbError> {
    use crate::schema::catalog_version as cv;
    let found: Option<(SessionRow, Option<i64>)> = s::table
        .find(id)
        .select((SessionRow::as_select(), cv::table.select(cv::version).single_value()))
        .first(conn)
        .optional()?;
    let Some((row, version)) = found else { return Ok((Err(Inactive::Ended), None)) };
    let live = row.audience == audience && row.subject == subject && row.ended_at.is_none() && row.expires_at > now;
    Ok((if live { Ok(()) } else { Err(Inactive::Ended) }, version))
}

/// Ends a session (logout). Returns whether it was live.
pub fn end(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> Result<bool, DbError> {
    let n = single_write(conn, |conn| {
        diesel::update(s::table.find(id).filter(s::ended_at.is_null()))
            .set(s::ended_at.eq(now))
            .prepared()
            .execute(conn)
    })?;
    Ok(n == 1)
}

/// Forgets sessions that expired before `before`.
pub fn purge(conn: &mut DbConn, before: NaiveDateTime) -> Result<usize, DbError> {
    diesel::delete(s::table.filter(s::expires_at.lt(before))).execute(conn).map_err(DbError::from)
}

/// A session a request names (from its verified token), checked in the same statement as
/// the request's first read instead of a statement of its own.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    pub id: &'a str,
    pub audience: &'a str,
    pub subject: &'a str,
    pub now: NaiveDateTime,
}

/// What a read that also checked the session found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked<T> {
    /// The session is ended, expired, unknown, or of another audience or subject: nothing
    /// read is to be used.
    Ended,
    /// The session is live; what was read, and the catalog's version read with it.
    Live { found: T, catalog: Option<i64> },
}

/// The session's id if it is live for the claim (a scalar subquery: `NULL` if not).
macro_rules! live_session {
    ($claim:expr) => {
        s::table
            .filter(s::id.eq($claim.id))
            .filter(s::audience.eq($claim.audience))
            .filter(s::subject.eq($claim.subject))
            .filter(s::ended_at.is_null())
            .filter(s::expires_at.gt($claim.now))
            .select(s::id)
            .single_value()
    };
}

/// The catalog's version (a scalar subquery).
macro_rules! catalog_version {
    () => {
        crate::schema::catalog_version::table.select(crate::schema::catalog_version::version).single_value()
    };
}

/// [`check_seeing_catalog`] for a claim (a request whose first read is not one of those
/// below), the session's conditions in SQL as in those reads.
pub fn check_claim(conn: &mut DbConn, claim: Claim<'_>) -> Result<Checked<()>, DbError> {
    let (live, catalog): (Option<String>, Option<i64>) =
        diesel::select((live_session!(claim), catalog_version!())).get_result(conn)?;
    Ok(if live.is_some() { Checked::Live { found: (), catalog } } else { Checked::Ended })
}

/// The subject's current application (its newest card cycle) read in one statement with
/// the session's liveness and the catalog's version — locked as
/// [`crate::applications::current_for_citizen_locked`] is when `lock` (PostgreSQL's
/// `FOR UPDATE`; SQLite's writer holds the whole database). A subject without an
/// application costs a second statement: the session is then checked on its own.
pub fn current_application(
    conn: &mut DbConn,
    claim: Claim<'_>,
    lock: bool,
) -> Result<Checked<Option<crate::applications::ApplicationRow>>, DbError> {
    use crate::applications::ApplicationRow;
    use crate::schema::applications as a;
    // Built per backend: the selected row's type is the backend's.
    macro_rules! query {
        () => {
            a::table.filter(a::citizen_id.eq(claim.subject)).order(a::cycle.desc()).select((
                ApplicationRow::as_select(),
                live_session!(claim),
                catalog_version!(),
            ))
        };
    }
    type Found = (ApplicationRow, Option<String>, Option<i64>);
    // `LIMIT 1` in the text: PostgreSQL keeps one plan for it (`prepared::LimitOne`).
    let found: Option<Found> = match conn {
        DbConn::Pg(pg) if lock => query!().for_update().limit_one().get_result(pg).optional()?,
        _ => query!().limit_one().get_result(conn).optional()?,
    };
    checked(conn, claim, found)
}

/// What a row read with the session's liveness and the catalog's version says; no row: the
/// session is checked on its own.
fn checked<T>(
    conn: &mut DbConn,
    claim: Claim<'_>,
    found: Option<(T, Option<String>, Option<i64>)>,
) -> Result<Checked<Option<T>>, DbError> {
    Ok(match found {
        Some((_, None, _)) => Checked::Ended,
        Some((row, Some(_), catalog)) => Checked::Live { found: Some(row), catalog },
        None => match check_claim(conn, claim)? {
            Checked::Live { catalog, .. } => Checked::Live { found: None, catalog },
            Checked::Ended => Checked::Ended,
        },
    })
}

/// The subject's citizen row read in one statement with the session's liveness and the
/// catalog's version (an unknown citizen: the session is checked on its own).
pub fn citizen(conn: &mut DbConn, claim: Claim<'_>) -> Result<Checked<Option<crate::citizens::CitizenRow>>, DbError> {
    use crate::citizens::CitizenRow;
    use crate::schema::citizens as c;
    let found: Option<(CitizenRow, Option<String>, Option<i64>)> = c::table
        .find(claim.subject)
        .select((CitizenRow::as_select(), live_session!(claim), catalog_version!()))
        .first(conn)
        .optional()?;
    checked(conn, claim, found)
}
