//! Guesses at secrets, counted *before* the secret is compared (issue 24), so a burst of
//! parallel guesses cannot slip past a lock that each of them read as open.
//!
//! Two shapes of counter, both keyed by opaque text the caller derives (keyed hashes of
//! the purpose, the subject and the client address — never a national code or an address):
//! - a lock: failures in a row for one key and the lock they earned ([`reserve`], [`clear`]);
//! - a count: hits per key in a fixed window ([`count`], [`uncount`], [`hits`]).
//!
//! [`reserve`] takes the guess's place in the row under the row's write lock (one
//! conditional `UPDATE`), so on PostgreSQL concurrent guesses queue on the row and each
//! sees the lock the previous one set; on SQLite the caller's `write_tx` serialises them.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use crate::db::DbConn;
use crate::error::DbError;
use crate::schema::{attempt_counts as c, attempt_locks as l};

/// Failures in a row older than this are forgotten (when not locked).
const FORGET_AFTER_HOURS: i64 = 24;

/// What [`reserve`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The guess may be compared. It is already counted as the `failures`-th failure in a
    /// row; `locks_until` is the lock that now stands unless the guess turns out right.
    Granted { failures: i32, locks_until: Option<NaiveDateTime> },
    /// Locked until then; the guess must not be compared.
    Locked(NaiveDateTime),
    /// The key already holds `cap` failures in a row; the guess must not be compared.
    Capped,
}

/// Takes a guess's place for `key`, inside the caller's write transaction: refused while
/// locked or when `cap` failures in a row are already counted; otherwise counted at once,
/// with the lock `lock_after(failures)` set in the same transaction.
pub fn reserve(
    conn: &mut DbConn,
    key: &str,
    now: NaiveDateTime,
    cap: Option<i32>,
    lock_after: &dyn Fn(i32) -> Option<Duration>,
) -> Result<Reservation, DbError> {
    let insert = diesel::insert_into(l::table)
        .values((l::key.eq(key), l::failures.eq(0), l::locked_until.eq(None::<NaiveDateTime>), l::updated_at.eq(now)))
        .on_conflict_do_nothing();
    // Upsert is not available on the combined connection.
    match conn {
        DbConn::Pg(c) => insert.execute(c),
        DbConn::Sqlite(c) => insert.execute(c),
    }?;
    let open = l::locked_until.is_null().or(l::locked_until.le(now));
    // Old failures are forgotten once nothing is locked.
    diesel::update(l::table.filter(l::key.eq(key)).filter(open).filter(l::updated_at.lt(now - forget())))
        .set(l::failures.eq(0))
        .execute(conn)?;
    let taken =
        diesel::update(l::table.filter(l::key.eq(key)).filter(open).filter(l::failures.lt(cap.unwrap_or(i32::MAX))))
            .set((l::failures.eq(l::failures + 1), l::updated_at.eq(now)))
            .execute(conn)?;
    let (failures, locked_until): (i32, Option<NaiveDateTime>) =
        l::table.find(key).select((l::failures, l::locked_until)).first(conn)?;
    if taken == 0 {
        return Ok(match locked_until.filter(|t| *t > now) {
            Some(until) => Reservation::Locked(until),
            None => Reservation::Capped,
        });
    }
    let locks_until = lock_after(failures).map(|d| now + d);
    if locks_until.is_some() {
        diesel::update(l::table.find(key)).set(l::locked_until.eq(locks_until)).execute(conn)?;
    }
    Ok(Reservation::Granted { failures, locks_until })
}

/// Forgets a key's failures and lock (the guess was right, or was never judged).
pub fn clear(conn: &mut DbConn, key: &str) -> Result<(), DbError> {
    diesel::delete(l::table.find(key)).execute(conn)?;
    Ok(())
}

/// Takes back a guess [`reserve`] counted that was never judged (the secret could not be
/// compared): one failure fewer in the row, and the lock it set (if it set one) lifted.
/// Unlike [`clear`], the failures before it still stand.
pub fn unreserve(conn: &mut DbConn, key: &str, lift_lock: bool) -> Result<(), DbError> {
    diesel::update(l::table.find(key).filter(l::failures.gt(0))).set(l::failures.eq(l::failures - 1)).execute(conn)?;
    if lift_lock {
        diesel::update(l::table.find(key)).set(l::locked_until.eq(None::<NaiveDateTime>)).execute(conn)?;
    }
    Ok(())
}

/// Counts one hit for `key` in the window starting at `window_start`; returns the
/// window's count, this one included. One atomic upsert.
pub fn count(conn: &mut DbConn, key: &str, window_start: NaiveDateTime, now: NaiveDateTime) -> Result<i32, DbError> {
    let query = diesel::insert_into(c::table)
        .values((c::key.eq(key), c::window_start.eq(window_start), c::hits.eq(1), c::updated_at.eq(now)))
        .on_conflict((c::key, c::window_start))
        .do_update()
        .set((c::hits.eq(c::hits + 1), c::updated_at.eq(now)))
        .returning(c::hits);
    match conn {
        DbConn::Pg(c) => query.get_result(c),
        DbConn::Sqlite(c) => query.get_result(c),
    }
    .map_err(DbError::from)
}

/// Takes one hit back (a guess that turned out right).
pub fn uncount(conn: &mut DbConn, key: &str, window_start: NaiveDateTime) -> Result<(), DbError> {
    diesel::update(c::table.find((key, window_start)).filter(c::hits.gt(0)))
        .set(c::hits.eq(c::hits - 1))
        .execute(conn)?;
    Ok(())
}

/// The window's count so far.
pub fn hits(conn: &mut DbConn, key: &str, window_start: NaiveDateTime) -> Result<i32, DbError> {
    Ok(c::table.find((key, window_start)).select(c::hits).first(conn).optional()?.unwrap_or(0))
}

/// Forgets windows that ended before `before`, and idle unlocked keys.
pub fn purge(conn: &mut DbConn, before: NaiveDateTime) -> Result<usize, DbError> {
    let counts = diesel::delete(c::table.filter(c::window_start.lt(before))).execute(conn)?;
    let locks = diesel::delete(
        l::table.filter(l::updated_at.lt(before)).filter(l::locked_until.is_null().or(l::locked_until.lt(before))),
    )
    .execute(conn)?;
    Ok(counts + locks)
}

fn forget() -> Duration {
    Duration::hours(FORGET_AFTER_HOURS)
}
