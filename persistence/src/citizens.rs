//! Citizens who entered, the per-national-code entry lockout, and used captchas.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::db::{DbConn, single_write, write_tx};
use crate::error::DbError;
use crate::schema::{captcha_uses, citizens, entry_attempts};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = citizens)]
pub struct CitizenRow {
    pub id: String,
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
    let hashes = entry.hashes;
    write_tx(conn, |conn| {
        let existing = citizens::table
            .filter(citizens::nid_hash.eq_any(hashes))
            .select(CitizenRow::as_select())
            .first(conn)
            .optional()?;
        if let Some(mut row) = existing {
            row.last_entry_at = now.naive_utc();
            row.serial_enc = entry.serial_enc.clone();
            row.serial_verified = entry.serial_verified;
            diesel::update(citizens::table.find(&row.id))
                .set((
                    citizens::last_entry_at.eq(row.last_entry_at),
                    citizens::serial_enc.eq(&row.serial_enc),
                    citizens::serial_verified.eq(row.serial_verified),
                ))
                .execute(conn)?;
            return Ok(row);
        }
        let row = CitizenRow {
            id: uuid::Uuid::now_v7().to_string(),
            nid_hash: hashes[0].clone(),
            nid_enc: entry.nid_enc.clone(),
            serial_enc: entry.serial_enc.clone(),
            serial_verified: entry.serial_verified,
            created_at: now.naive_utc(),
            last_entry_at: now.naive_utc(),
        };
        diesel::insert_into(citizens::table).values(&row).execute(conn)?;
        Ok(row)
    })
}

pub fn find(conn: &mut DbConn, id: &str) -> Result<Option<CitizenRow>, DbError> {
    citizens::table.find(id).select(CitizenRow::as_select()).first(conn).optional().map_err(DbError::from)
}

/// When entry with this national code is locked, until when.
pub fn entry_locked_until(
    conn: &mut DbConn,
    nid_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, DbError> {
    let locked: Option<Option<NaiveDateTime>> =
        entry_attempts::table.find(nid_hash).select(entry_attempts::locked_until).first(conn).optional()?;
    Ok(locked.flatten().map(|t| t.and_utc()).filter(|t| *t > now))
}

/// Counts a wrong serial; locks entry for `lock` once `threshold` is reached.
/// Returns the failure count so far.
pub fn record_entry_failure(
    conn: &mut DbConn,
    nid_hash: &str,
    now: DateTime<Utc>,
    threshold: i32,
    lock: chrono::Duration,
) -> Result<i32, DbError> {
    write_tx(conn, |conn| {
        let current: Option<i32> =
            entry_attempts::table.find(nid_hash).select(entry_attempts::failures).first(conn).optional()?;
        let failures = current.unwrap_or(0) + 1;
        let locked_until = (failures >= threshold).then(|| (now + lock).naive_utc());
        if current.is_some() {
            diesel::update(entry_attempts::table.find(nid_hash))
                .set((
                    entry_attempts::failures.eq(failures),
                    entry_attempts::locked_until.eq(locked_until),
                    entry_attempts::updated_at.eq(now.naive_utc()),
                ))
                .execute(conn)?;
        } else {
            diesel::insert_into(entry_attempts::table)
                .values((
                    entry_attempts::nid_hash.eq(nid_hash),
                    entry_attempts::failures.eq(failures),
                    entry_attempts::locked_until.eq(locked_until),
                    entry_attempts::updated_at.eq(now.naive_utc()),
                ))
                .execute(conn)?;
        }
        Ok(failures)
    })
}

pub fn clear_entry_failures(conn: &mut DbConn, nid_hash: &str) -> Result<(), DbError> {
    single_write(conn, |conn| diesel::delete(entry_attempts::table.find(nid_hash)).execute(conn))
        .map(|_| ())
        .map_err(DbError::from)
}

/// Marks a captcha as used; `false` if it was used before (a replay).
pub fn use_captcha(conn: &mut DbConn, nonce: &str, expires_at: DateTime<Utc>) -> Result<bool, DbError> {
    let inserted = single_write(conn, |conn| {
        diesel::insert_into(captcha_uses::table)
            .values((captcha_uses::nonce.eq(nonce), captcha_uses::expires_at.eq(expires_at.naive_utc())))
            .execute(conn)
    });
    match inserted {
        Ok(_) => Ok(true),
        Err(e) => match DbError::from(e) {
            DbError::Duplicate(_) => Ok(false),
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
