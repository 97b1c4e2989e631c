//! Guesses at secrets, counted *before* the secret is compared (issue 24), so a burst of
//! parallel guesses cannot slip past a lock that each of them read as open.
//!
//! Two shapes of counter, both keyed by opaque text the caller derives (keyed hashes of
//! the purpose, the subject and the client address — never a national code or an address):
//! - a lock: failures in a row for one key and the lock they earned ([`reserve`], [`clear`]);
//! - a count: hits per key in a fixed window ([`count`], [`uncount`], [`hits`]).
//!
//! [`reserve`] takes the guess's place in the row under the row's write lock (one
//! conditional upsert), so on PostgreSQL concurrent guesses queue on the row and each
//! sees the lock the previous one set; on SQLite the caller's `write_tx` serialises them.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use diesel::sql_types::{Text, Timestamp};

use crate::db::DbConn;
use crate::error::DbError;
use crate::prepared::KeepPrepared;
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
///
/// One statement when the guess is counted and sets no lock (an upsert whose update only
/// applies while the key is open and under its cap, returning the new count; failures
/// older than a day count as none); a second one sets a lock it earns, or reads why it
/// was refused. On PostgreSQL the upsert locks the row either way, so concurrent guesses
/// queue on it.
pub fn reserve(
    conn: &mut DbConn,
    key: &str,
    now: NaiveDateTime,
    cap: Option<i32>,
    lock_after: &dyn Fn(i32) -> Option<Duration>,
) -> Result<Reservation, DbError> {
    use diesel::dsl::case_when;
    let cap = cap.unwrap_or(i32::MAX);
    // A key that may never be guessed (no row needed to say so).
    if cap <= 0 {
        return why_refused(conn, key, now);
    }
    let open = l::locked_until.is_null().or(l::locked_until.le(now));
    // Old failures are forgotten once nothing is locked.
    let in_a_row =
        case_when(l::updated_at.lt(now - forget()), 0.into_sql::<diesel::sql_types::Integer>()).otherwise(l::failures);
    let upsert = diesel::insert_into(l::table)
        .values((l::key.eq(key), l::failures.eq(1), l::locked_until.eq(None::<NaiveDateTime>), l::updated_at.eq(now)))
        .on_conflict(l::key)
        .do_update()
        .set((l::failures.eq(in_a_row + 1), l::updated_at.eq(now)));
    // `ON CONFLICT … DO UPDATE … WHERE`: a refused guess changes nothing.
    let counted = diesel::query_dsl::methods::FilterDsl::filter(upsert, open.and(in_a_row.lt(cap)))
        .returning(l::failures)
        .prepared();
    let taken: Option<i32> = match conn {
        DbConn::Pg(c) => counted.get_result(c).optional(),
        DbConn::Sqlite(c) => counted.get_result(c).optional(),
    }?;
    let Some(failures) = taken else { return why_refused(conn, key, now) };
    let locks_until = lock_after(failures).map(|d| now + d);
    if locks_until.is_some() {
        diesel::update(l::table.find(key)).set(l::locked_until.eq(locks_until)).prepared().execute(conn)?;
    }
    Ok(Reservation::Granted { failures, locks_until })
}

/// What [`count_and_reserve`] counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Counted: the client's and the subject's hits in the window, this guess included, and
    /// the guess's place among the pair's failures in a row when it was reserved (`None`
    /// when it was not: the client over its budget, or the pair locked or capped by a guess
    /// that came first — the caller takes the counts back).
    Counted { client: i32, subject: i32, failures: Option<i32> },
    /// Not counted: the pair was locked or capped, or the client's budget spent, when the
    /// statement looked (without waiting for a row).
    Refused,
}

/// The keys of one guess.
#[derive(Debug, Clone, Copy)]
pub struct GuessKeys<'a> {
    pub client: &'a str,
    pub subject: &'a str,
    pub pair: &'a str,
}

/// The budgets a guess is judged by.
#[derive(Debug, Clone, Copy)]
pub struct Budgets<'a> {
    /// The client's most hits in a window.
    pub client: i32,
    /// The subject's hits in a window beyond which its pairs are capped at one failure.
    pub subject: i32,
    /// The lock the pair's `n`-th failure in a row sets, in seconds (`0`: none), at
    /// `lock_seconds[n - 1]`; failures past the end use the last.
    pub lock_seconds: &'a [i64],
}

/// PostgreSQL, without a transaction: [`count_many`] of the client's and the subject's
/// hits, then [`reserve`] of the pair — with the lock its failure earns — in one statement:
/// `WITH counted AS (INSERT INTO attempt_counts … ON CONFLICT … DO UPDATE … RETURNING),
/// pair AS (INSERT INTO attempt_locks … SELECT … WHERE <the client within its budget> ON
/// CONFLICT (key) DO UPDATE … WHERE <open and under the cap the subject's count sets>)`.
/// The rows are locked in the same order as there (the counts in key order, then the
/// pair), and the pair's lock is set by the statement that counts the failure, so a
/// parallel guess waiting on the row sees it.
///
/// A guess at a locked or capped pair, or from a client whose budget is spent, is not
/// counted at all (a look at the rows without their locks comes first): a flood of refused guesses must
/// not raise the counts that an owner or the other citizens behind one address are judged
/// by. Refused only after waiting for the rows (a guess just before it set the lock or
/// spent the budget), it has been counted: the caller takes the counts back
/// ([`uncount_many`]) — in a transaction they would be rolled back — and meanwhile a
/// parallel guess sees them one higher.
pub fn count_and_reserve(
    conn: &mut DbConn,
    keys: GuessKeys<'_>,
    window_start: NaiveDateTime,
    now: NaiveDateTime,
    budgets: Budgets<'_>,
) -> Result<Counted, DbError> {
    use diesel::sql_types::{Array, BigInt, Integer, Nullable};
    let DbConn::Pg(pg) = conn else {
        return Err(DbError::Internal("count_and_reserve is for PostgreSQL: SQLite counts in a transaction".into()));
    };
    if budgets.lock_seconds.is_empty() {
        return Err(DbError::Internal("a lock schedule without entries".into()));
    }
    let mut sorted = [keys.client, keys.subject];
    sorted.sort_unstable();
    // $1 $2 the counts' keys in order, $3 the window, $4 now, $5 the pair, $6 the client,
    // $7 the subject, $8 $9 their budgets, $10 when failures are forgotten, $11 the locks.
    let in_a_row = "(CASE WHEN l.updated_at < $10 THEN 0 ELSE l.failures END)";
    // The lock the `failures`-th failure sets, or `otherwise`.
    let lock = |failures: &str, otherwise: &str| {
        let seconds = format!("($11::bigint[])[LEAST({failures}, cardinality($11::bigint[]))]");
        format!("(CASE WHEN {seconds} > 0 THEN $4 + {seconds} * interval '1 second' ELSE {otherwise} END)")
    };
    let sql = format!(
        "WITH counted AS (INSERT INTO attempt_counts (key, window_start, hits, updated_at) \
         SELECT k, $3, 1, $4 FROM (VALUES ($1::text), ($2::text)) AS v (k) \
         WHERE NOT EXISTS (SELECT 1 FROM attempt_locks WHERE key = $5 AND locked_until > $4) \
         AND coalesce((SELECT hits FROM attempt_counts WHERE key = $6 AND window_start = $3), 0) < $8 \
         AND NOT (coalesce((SELECT hits FROM attempt_counts WHERE key = $7 AND window_start = $3), 0) >= $9 \
             AND coalesce((SELECT {in_a_row} FROM attempt_locks AS l WHERE key = $5), 0) >= 1) \
         ORDER BY k \
         ON CONFLICT (key, window_start) DO UPDATE SET hits = attempt_counts.hits + 1, updated_at = $4 \
         RETURNING key, hits), \
         pair AS (INSERT INTO attempt_locks AS l (key, failures, locked_until, updated_at) \
         SELECT $5, 1, {first_lock}, $4 WHERE (SELECT hits FROM counted WHERE key = $6) <= $8 \
         ON CONFLICT (key) DO UPDATE SET failures = {in_a_row} + 1, locked_until = {next_lock}, updated_at = $4 \
         WHERE (l.locked_until IS NULL OR l.locked_until <= $4) \
         AND {in_a_row} < (CASE WHEN (SELECT hits FROM counted WHERE key = $7) > $9 THEN 1 ELSE 2147483647 END) \
         RETURNING failures) \
         SELECT (SELECT hits FROM counted WHERE key = $6) AS client, (SELECT hits FROM counted WHERE key = $7) AS subject, \
         (SELECT failures FROM pair) AS failures",
        first_lock = lock("1", "NULL::timestamp"),
        next_lock = lock(&format!("{in_a_row} + 1"), "l.locked_until"),
    );
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Nullable<Integer>)]
        client: Option<i32>,
        #[diesel(sql_type = Nullable<Integer>)]
        subject: Option<i32>,
        #[diesel(sql_type = Nullable<Integer>)]
        failures: Option<i32>,
    }
    let row: Row = diesel::sql_query(sql)
        .bind::<Text, _>(sorted[0])
        .bind::<Text, _>(sorted[1])
        .bind::<Timestamp, _>(window_start)
        .bind::<Timestamp, _>(now)
        .bind::<Text, _>(keys.pair)
        .bind::<Text, _>(keys.client)
        .bind::<Text, _>(keys.subject)
        .bind::<Integer, _>(budgets.client)
        .bind::<Integer, _>(budgets.subject)
        .bind::<Timestamp, _>(now - forget())
        .bind::<Array<BigInt>, _>(budgets.lock_seconds)
        .prepared()
        .get_result(pg)?;
    Ok(match (row.client, row.subject) {
        (Some(client), Some(subject)) => Counted::Counted { client, subject, failures: row.failures },
        _ => Counted::Refused,
    })
}

/// Why [`reserve`] or [`count_and_reserve`] did not count a guess: the lock that stands,
/// or the cap.
pub fn why_refused(conn: &mut DbConn, key: &str, now: NaiveDateTime) -> Result<Reservation, DbError> {
    let locked_until: Option<Option<NaiveDateTime>> =
        l::table.find(key).select(l::locked_until).first(conn).optional()?;
    Ok(match locked_until.flatten().filter(|t| *t > now) {
        Some(until) => Reservation::Locked(until),
        None => Reservation::Capped,
    })
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
    diesel::update(l::table.find(key).filter(l::failures.gt(0)))
        .set(l::failures.eq(l::failures - 1))
        .prepared()
        .execute(conn)?;
    if lift_lock {
        diesel::update(l::table.find(key)).set(l::locked_until.eq(None::<NaiveDateTime>)).prepared().execute(conn)?;
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
        .returning(c::hits)
        .prepared();
    match conn {
        DbConn::Pg(c) => query.get_result(c),
        DbConn::Sqlite(c) => query.get_result(c),
    }
    .map_err(DbError::from)
}

/// Counts one hit for each of `keys` (distinct) in the window starting at `window_start`,
/// in one statement; returns each key's count, this one included, in the order given.
/// Rows are locked in the keys' sorted order, as [`uncount_many`] and [`give_back`] lock
/// them, so two requests sharing two keys never wait on each other in a circle.
pub fn count_many(
    conn: &mut DbConn,
    keys: &[&str],
    window_start: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<Vec<i32>, DbError> {
    let mut sorted = keys.to_vec();
    sorted.sort_unstable();
    // The rows of a multi-row upsert are inserted (and conflicting rows locked) in order.
    let rows: Vec<_> = sorted
        .iter()
        .map(|k| (c::key.eq(*k), c::window_start.eq(window_start), c::hits.eq(1), c::updated_at.eq(now)))
        .collect();
    let query = diesel::insert_into(c::table)
        .values(rows)
        .on_conflict((c::key, c::window_start))
        .do_update()
        .set((c::hits.eq(c::hits + 1), c::updated_at.eq(now)))
        .returning((c::key, c::hits));
    let counted: Vec<(String, i32)> = match conn {
        // One text per number of keys (one or two). (diesel writes SQLite's multi-row
        // insert its own way, which a wrapper would hide from it.)
        DbConn::Pg(c) => query.prepared().get_results(c),
        DbConn::Sqlite(c) => query.get_results(c),
    }?;
    keys.iter()
        .map(|k| {
            counted
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, hits)| *hits)
                .ok_or_else(|| DbError::Internal(format!("hit not counted for {k}")))
        })
        .collect()
}

/// Takes one hit back from each of `keys` in one statement (a guess that turned out right
/// or was never judged), locking the rows in the keys' sorted order like [`count_many`].
pub fn uncount_many(conn: &mut DbConn, keys: &[&str], window_start: NaiveDateTime) -> Result<(), DbError> {
    if keys.is_empty() {
        return Ok(());
    }
    match conn {
        DbConn::Pg(pg) => {
            let sql = format!("{} SELECT count(*) AS n FROM uncounted", uncount_sorted(keys.len()));
            let mut query = diesel::sql_query(sql).into_boxed::<diesel::pg::Pg>();
            for key in keys {
                query = query.bind::<Text, _>(*key);
            }
            query.bind::<Timestamp, _>(window_start).prepared().get_result::<Uncounted>(pg)?;
        }
        // SQLite's writer holds the whole database: there is no row order to keep.
        DbConn::Sqlite(_) => {
            diesel::update(
                c::table.filter(c::key.eq_any(keys)).filter(c::window_start.eq(window_start)).filter(c::hits.gt(0)),
            )
            .set(c::hits.eq(c::hits - 1))
            .execute(conn)?;
        }
    }
    Ok(())
}

#[derive(QueryableByName)]
struct Uncounted {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    #[expect(dead_code, reason = "read to run the statement; how many does not matter")]
    n: i64,
}

/// PostgreSQL: one hit taken back from each of `keys` keys (`$1` … `$keys`) in the window
/// `$keys+1`, the rows locked in key order (a sorted `SELECT … FOR UPDATE` locks as it
/// returns). An `UPDATE … WHERE key IN (…)` alone would lock in whatever order its plan
/// scans them. The keys are parameters of their own, not one array (`key = ANY($1)`):
/// PostgreSQL estimates an array of unknown length too dearly to keep a generic plan, and
/// planned the statement again on every run (see `prepared::LimitOne`).
fn uncount_sorted(keys: usize) -> String {
    let list = (1..=keys).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
    let window = keys + 1;
    format!(
        "WITH uncounted AS (UPDATE attempt_counts SET hits = attempt_counts.hits - 1 \
         FROM (SELECT key FROM attempt_counts WHERE key IN ({list}) AND window_start = ${window} AND hits > 0 \
         ORDER BY key FOR UPDATE) AS sorted \
         WHERE attempt_counts.key = sorted.key AND attempt_counts.window_start = ${window} RETURNING 1)"
    )
}

/// A right guess given back: one hit fewer for each of `keys` in the window and the
/// failures in a row of `pair` forgotten ([`clear`]). One statement on PostgreSQL (the
/// counts' update and the lock's delete in one `WITH`: it needs no transaction), two on
/// SQLite (in the caller's write transaction). The counts are locked before the pair's row, as [`count_many`] then
/// [`reserve`] lock them: the delete waits on a one-time filter that reads the update's
/// rows (the parts of a `WITH` otherwise run in no promised order).
pub fn give_back(conn: &mut DbConn, keys: &[&str], window_start: NaiveDateTime, pair: &str) -> Result<(), DbError> {
    match conn {
        // (`key IN ()` is no statement.)
        DbConn::Pg(_) if keys.is_empty() => clear(conn, pair),
        DbConn::Pg(pg) => {
            let sql = format!(
                "{} DELETE FROM attempt_locks WHERE (SELECT count(*) FROM uncounted) >= 0 AND key = ${}",
                uncount_sorted(keys.len()),
                keys.len() + 2
            );
            let mut query = diesel::sql_query(sql).into_boxed::<diesel::pg::Pg>();
            for key in keys {
                query = query.bind::<Text, _>(*key);
            }
            query.bind::<Timestamp, _>(window_start).bind::<Text, _>(pair).prepared().execute(pg)?;
            Ok(())
        }
        DbConn::Sqlite(_) => {
            uncount_many(conn, keys, window_start)?;
            clear(conn, pair)
        }
    }
}

/// Takes one hit back (a guess that turned out right).
pub fn uncount(conn: &mut DbConn, key: &str, window_start: NaiveDateTime) -> Result<(), DbError> {
    diesel::update(c::table.find((key, window_start)).filter(c::hits.gt(0)))
        .set(c::hits.eq(c::hits - 1))
        .prepared()
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
