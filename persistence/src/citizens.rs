//! Citizens who entered, and used captchas.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use domain::record_ids::CitizenId;

use crate::db::{DbConn, single_write, write_tx};
use crate::error::DbError;
use crate::prepared::KeepPrepared;
use crate::schema::{applications, captcha_uses, citizens, sessions};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = citizens)]
pub struct CitizenRow {
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub id: CitizenId,
    pub nid_hash: String,
    pub nid_enc: String,
    pub serial_enc: String,
    pub serial_verified: bool,
    pub created_at: NaiveDateTime,
    pub last_entry_at: NaiveDateTime,
}

/// The citizen with this national code (any of its lookup values), created if new.
/// What an entry learned about the person.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// The national code's lookup values (active key first).
    pub hashes: &'a [String],
    pub nid_enc: String,
    pub serial_enc: String,
    pub serial_verified: bool,
}

/// Records an entry: the citizen with this national code, created if new, with the serial used.
pub fn upsert(conn: &mut DbConn, entry: &Entry<'_>, now: DateTime<Utc>) -> Result<CitizenRow, DbError> {
    match try_upsert(conn, entry, now) {
        // Two first entries raced; the other one created the row.
        Err(DbError::Duplicate(_)) => try_upsert(conn, entry, now),
        other => other,
    }
}

fn try_upsert(conn: &mut DbConn, entry: &Entry<'_>, now: DateTime<Utc>) -> Result<CitizenRow, DbError> {
    write_tx(conn, |conn| upsert_in(conn, entry, now).map(|(_, row)| row))
}

/// [`upsert`] in the caller's write transaction (entry writes the citizen, its guess and
/// its session in one), returning the citizen as it was before too. Two first entries
/// racing make the second one's insert a `Duplicate`: the caller runs its transaction again.
pub fn upsert_in(
    conn: &mut DbConn,
    entry: &Entry<'_>,
    now: DateTime<Utc>,
) -> Result<(Option<CitizenRow>, CitizenRow), DbError> {
    if let Some(before) = find_by_nid(conn, entry.hashes)? {
        let mut row = before.clone();
        row.last_entry_at = now.naive_utc();
        row.serial_enc = entry.serial_enc.clone();
        row.serial_verified = entry.serial_verified;
        save_entry(conn, &row)?;
        return Ok((Some(before), row));
    }
    Ok((None, insert_new(conn, entry, now)?))
}

/// PostgreSQL, without a transaction: a first entry — the new citizen from `entry` and her
/// session `session` (its subject the new citizen's id, a fresh [`crate::new_id`]) in one statement,
/// `WITH c AS (INSERT INTO citizens … WHERE NOT EXISTS (… another lookup value) ON CONFLICT
/// DO NOTHING RETURNING id), s AS (INSERT INTO sessions … FROM c) …`: both or neither.
/// `None` when the national code entered before (under any of its lookup values, or a
/// first entry racing this one): nothing is written, and the caller's transaction
/// ([`upsert_in`]) takes the citizen as she is.
///
/// On deadline day nearly every entry is a first one; in a transaction it cost `BEGIN`, the
/// lookup, the insert, the session and `COMMIT`.
pub fn enter_new_alone(
    conn: &mut DbConn,
    entry: &Entry<'_>,
    session: &crate::sessions::SessionRow,
    now: DateTime<Utc>,
) -> Result<Option<CitizenRow>, DbError> {
    use diesel::sql_types::{Bool, Text, Timestamp};
    let DbConn::Pg(pg) = conn else {
        return Err(DbError::Internal("enter_new_alone is for PostgreSQL: SQLite enters in a transaction".into()));
    };
    let (Some(first), others) = (entry.hashes.first(), entry.hashes.get(1..).unwrap_or_default()) else {
        return Err(DbError::Internal("an entry without a lookup value".into()));
    };
    if others.len() > crate::prepared::FEW {
        return Ok(None);
    }
    let row = CitizenRow {
        id: CitizenId::from(session.subject.clone()),
        nid_hash: first.clone(),
        nid_enc: entry.nid_enc.clone(),
        serial_enc: entry.serial_enc.clone(),
        serial_verified: entry.serial_verified,
        created_at: now.naive_utc(),
        last_entry_at: now.naive_utc(),
    };
    // The national code under an older lookup key (its `UNIQUE` catches the active one).
    let elsewhere = if others.is_empty() {
        String::new()
    } else {
        let list = (0..others.len()).map(|i| format!("${}", 11 + i)).collect::<Vec<_>>().join(", ");
        format!(" WHERE NOT EXISTS (SELECT 1 FROM citizens WHERE nid_hash IN ({list}))")
    };
    let sql = format!(
        "WITH c AS (INSERT INTO citizens (id, nid_hash, nid_enc, serial_enc, serial_verified, created_at, last_entry_at) \
         SELECT $1, $2, $3, $4, $5, $6, $6{elsewhere} ON CONFLICT DO NOTHING RETURNING id), \
         s AS (INSERT INTO sessions (id, audience, subject, created_at, last_seen_at, expires_at) \
         SELECT $7, $8, c.id, $9, $9, $10 FROM c RETURNING id) \
         SELECT (SELECT count(*) FROM c) AS citizens, (SELECT count(*) FROM s) AS sessions"
    );
    let mut query = diesel::sql_query(sql)
        .into_boxed::<diesel::pg::Pg>()
        .bind::<Text, _>(row.id.as_str())
        .bind::<Text, _>(&row.nid_hash)
        .bind::<Text, _>(&row.nid_enc)
        .bind::<Text, _>(&row.serial_enc)
        .bind::<Bool, _>(row.serial_verified)
        .bind::<Timestamp, _>(row.created_at)
        .bind::<Text, _>(&session.id)
        .bind::<Text, _>(&session.audience)
        .bind::<Timestamp, _>(session.created_at)
        .bind::<Timestamp, _>(session.expires_at);
    for other in others {
        query = query.bind::<Text, _>(other);
    }
    let written: Written = query.prepared().get_result(pg)?;
    match (written.citizens, written.sessions) {
        (1, 1) => Ok(Some(row)),
        (0, 0) => Ok(None),
        other => Err(DbError::Internal(format!("a citizen and her session written apart: {other:?}"))),
    }
}

#[derive(QueryableByName)]
struct Written {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    citizens: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    sessions: i64,
}

/// The citizen with this national code, or a new one from `entry`, in the caller's
/// transaction (an import writes many in one). An existing citizen is left as it is.
pub fn find_or_insert(conn: &mut DbConn, entry: &Entry<'_>, now: DateTime<Utc>) -> Result<CitizenRow, DbError> {
    if let Some(row) = find_by_nid(conn, entry.hashes)? {
        return Ok(row);
    }
    insert_new(conn, entry, now)
}

/// A new citizen from a first entry (or an import), under the active key's lookup value.
fn insert_new(conn: &mut DbConn, entry: &Entry<'_>, now: DateTime<Utc>) -> Result<CitizenRow, DbError> {
    let row = CitizenRow {
        id: crate::new_id(),
        nid_hash: entry.hashes[0].clone(),
        nid_enc: entry.nid_enc.clone(),
        serial_enc: entry.serial_enc.clone(),
        serial_verified: entry.serial_verified,
        created_at: now.naive_utc(),
        last_entry_at: now.naive_utc(),
    };
    diesel::insert_into(citizens::table).values(row.clone()).prepared().execute(conn)?;
    Ok(row)
}

/// The citizen with this national code (any of its lookup values), if any entered before.
pub fn find_by_nid(conn: &mut DbConn, hashes: &[String]) -> Result<Option<CitizenRow>, DbError> {
    citizens::table
        .filter(citizens::nid_hash.eq_any(hashes))
        .select(CitizenRow::as_select())
        .first(conn)
        .optional()
        .map_err(DbError::from)
}

/// What [`enter_unchecked`] decided.
#[derive(Debug, Clone)]
pub enum UncheckedEntry {
    /// Nobody else's data can be reached: the citizen (new, or without an application,
    /// a live session or a different checked serial) may enter.
    Entered(CitizenRow),
    /// The national code has an application, a live citizen session, or a checked serial
    /// other than this one: nothing was written.
    Refused,
}

/// An entry whose serial the civil registry could not check (it was unreachable). In one
/// write transaction: refused when the national code already has an application (in any
/// cycle), a live citizen session, or a serial the registry confirmed that is not this
/// one (`same_serial` opens and compares a sealed serial); otherwise the citizen is
/// recorded as with [`upsert`], the serial unverified (a confirmed serial that equals
/// this one stays confirmed).
pub fn enter_unchecked(
    conn: &mut DbConn,
    entry: &Entry<'_>,
    same_serial: &dyn Fn(&str) -> bool,
    now: DateTime<Utc>,
) -> Result<UncheckedEntry, DbError> {
    let attempt = |conn: &mut DbConn| {
        write_tx(conn, |conn| {
            let has_application: i64 =
                applications::table.filter(applications::nid_hash.eq_any(entry.hashes)).count().get_result(conn)?;
            if has_application > 0 {
                return Ok(UncheckedEntry::Refused);
            }
            let Some(mut row) = find_by_nid(conn, entry.hashes)? else {
                let row = CitizenRow {
                    id: crate::new_id(),
                    nid_hash: entry.hashes[0].clone(),
                    nid_enc: entry.nid_enc.clone(),
                    serial_enc: entry.serial_enc.clone(),
                    serial_verified: false,
                    created_at: now.naive_utc(),
                    last_entry_at: now.naive_utc(),
                };
                diesel::insert_into(citizens::table).values(row.clone()).prepared().execute(conn)?;
                return Ok(UncheckedEntry::Entered(row));
            };
            let live_sessions: i64 = sessions::table
                .filter(sessions::audience.eq("citizen"))
                .filter(sessions::subject.eq(row.id.as_str()))
                .filter(sessions::ended_at.is_null())
                .filter(sessions::expires_at.gt(now.naive_utc()))
                .count()
                .get_result(conn)?;
            let same = same_serial(&row.serial_enc);
            if live_sessions > 0 || (row.serial_verified && !same) {
                return Ok(UncheckedEntry::Refused);
            }
            row.last_entry_at = now.naive_utc();
            if !same {
                row.serial_enc = entry.serial_enc.clone();
                row.serial_verified = false;
            }
            save_entry(conn, &row)?;
            Ok(UncheckedEntry::Entered(row))
        })
    };
    match attempt(conn) {
        // Two first entries raced; the other one created the row.
        Err(DbError::Duplicate(_)) => attempt(conn),
        other => other,
    }
}

/// Ends every live session of a citizen but `keep` (a confirmed serial replaced one the
/// registry never checked: whoever entered with that one is out). Returns how many ended.
pub fn end_other_sessions(
    conn: &mut DbConn,
    citizen_id: &CitizenId,
    keep: Option<&str>,
    now: DateTime<Utc>,
) -> Result<usize, DbError> {
    let mut query = diesel::update(sessions::table)
        .filter(sessions::audience.eq("citizen"))
        .filter(sessions::subject.eq(citizen_id.as_str()))
        .filter(sessions::ended_at.is_null())
        .into_boxed();
    if let Some(keep) = keep {
        query = query.filter(sessions::id.ne(keep));
    }
    query.set(sessions::ended_at.eq(now.naive_utc())).execute(conn).map_err(DbError::from)
}

pub fn find(conn: &mut DbConn, id: &CitizenId) -> Result<Option<CitizenRow>, DbError> {
    citizens::table.find(id.as_str()).select(CitizenRow::as_select()).first(conn).optional().map_err(DbError::from)
}

/// Marks a captcha as used; `false` if it was used before (a replay).
pub fn use_captcha(conn: &mut DbConn, nonce: &str, expires_at: DateTime<Utc>) -> Result<bool, DbError> {
    Ok(spend_captcha(conn, nonce, expires_at)?.is_some())
}

/// Marks a captcha as used and reads the catalog's version in the same statement (for a
/// request with no session to read it from, [`crate::catalog::Catalog::at_least`]):
/// `Some(version)` on the first use, `None` on a replay.
pub fn spend_captcha(conn: &mut DbConn, nonce: &str, expires_at: DateTime<Utc>) -> Result<Option<i64>, DbError> {
    use crate::schema::catalog_version as cv;
    let inserted = single_write(conn, |conn| {
        let query = diesel::insert_into(captcha_uses::table)
            .values((captcha_uses::nonce.eq(nonce), captcha_uses::expires_at.eq(expires_at.naive_utc())))
            .returning(cv::table.select(cv::version).single_value());
        match conn {
            DbConn::Pg(c) => query.get_result::<Option<i64>>(c),
            DbConn::Sqlite(c) => query.get_result::<Option<i64>>(c),
        }
    });
    match inserted {
        Ok(version) => version.map(Some).ok_or_else(|| DbError::Internal("no catalog version".into())),
        Err(e) => match DbError::from(e) {
            DbError::Duplicate(_) => Ok(None),
            other => Err(other),
        },
    }
}

/// Forgets used captchas that have expired anyway.
pub fn purge_captchas(conn: &mut DbConn, now: DateTime<Utc>) -> Result<usize, DbError> {
    diesel::delete(captcha_uses::table.filter(captcha_uses::expires_at.lt(now.naive_utc())))
        .execute(conn)
        .map_err(DbError::from)
}

/// Stores what an entry changes on the citizen's row: when, and the serial used.
fn save_entry(conn: &mut DbConn, row: &CitizenRow) -> Result<(), diesel::result::Error> {
    diesel::update(citizens::table.find(row.id.as_str()))
        .set((
            citizens::last_entry_at.eq(row.last_entry_at),
            citizens::serial_enc.eq(&row.serial_enc),
            citizens::serial_verified.eq(row.serial_verified),
        ))
        .prepared()
        .execute(conn)?;
    Ok(())
}
