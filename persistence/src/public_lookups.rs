//! Daily counters of public lookups per national code (status, tracking-code recovery).
//! The per-address limiter cannot stop one code being probed from many addresses; these
//! counters can. Keyed by the code's HMAC lookup value, never the code.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;

use crate::db::DbConn;
use crate::error::DbError;
use crate::schema::public_lookup_counts as t;

/// What a counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Status,
    Recovery,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Status => "status",
            Purpose::Recovery => "recovery",
        }
    }
}

/// Counts one lookup and returns the day's count so far, this one included. One atomic
/// upsert, so racing requests never lose a count.
pub fn hit(
    conn: &mut DbConn,
    nid_hash: &str,
    purpose: Purpose,
    day: NaiveDate,
    now: DateTime<Utc>,
) -> Result<i32, DbError> {
    let at = now.naive_utc();
    let query = diesel::insert_into(t::table)
        .values((
            t::nid_hash.eq(nid_hash),
            t::purpose.eq(purpose.as_str()),
            t::day.eq(day),
            t::hits.eq(1),
            t::updated_at.eq(at),
        ))
        .on_conflict((t::nid_hash, t::purpose, t::day))
        .do_update()
        .set((t::hits.eq(t::hits + 1), t::updated_at.eq(at)))
        .returning(t::hits);
    // Upsert with RETURNING is not available on the combined connection.
    match conn {
        DbConn::Pg(c) => query.get_result(c),
        DbConn::Sqlite(c) => query.get_result(c),
    }
    .map_err(DbError::from)
}

/// Forgets counters of days before `day`.
pub fn purge_before(conn: &mut DbConn, day: NaiveDate) -> Result<usize, DbError> {
    diesel::delete(t::table.filter(t::day.lt(day))).execute(conn).map_err(DbError::from)
}
