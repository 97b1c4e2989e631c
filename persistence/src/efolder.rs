//! National e-folder accounts and their password-reset codes (docs/domain/efolder.md).
//! Personal values arrive sealed and keyed-hashed from the caller; this module never
//! sees a password or a reset code in clear, only their hashes.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use domain::record_ids::AccountId;

use crate::db::{DbConn, write_tx};
use crate::error::DbError;
use crate::schema::{efolder_accounts, efolder_reset_codes};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = efolder_accounts)]
pub struct AccountRow {
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub id: AccountId,
    pub subject_hash: String,
    pub person_type: String,
    pub legal_id: Option<String>,
    pub nid_hash: String,
    pub national_id_enc: String,
    /// Sealed (`Kind::Personal`).
    pub gender_enc: String,
    pub first_name_enc: String,
    pub last_name_enc: String,
    pub father_name_enc: String,
    pub mobile_enc: String,
    pub mobile_hint: String,
    pub postal_code_enc: String,
    pub username: String,
    pub password_hash: String,
    pub must_change_password: bool,
    pub token_version: i32,
    pub failed_logins: i32,
    pub locked_until: Option<NaiveDateTime>,
    pub credentials_delivery: String,
    pub last_login_at: Option<NaiveDateTime>,
    pub password_changed_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// When the credentials SMS was given up for good (cleared by a recovery).
    pub credentials_undelivered_at: Option<NaiveDateTime>,
}

/// What [`insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    Created,
    /// The subject already has an account (a double submit or a second registration).
    AlreadyRegistered,
    /// The generated username is taken; generate another and retry.
    UsernameTaken,
}

/// Whether the subject (national code or legal national ID) already has an account.
pub fn subject_exists(conn: &mut DbConn, subject_hash: &str) -> Result<bool, DbError> {
    let n: i64 =
        efolder_accounts::table.filter(efolder_accounts::subject_hash.eq(subject_hash)).count().get_result(conn)?;
    Ok(n > 0)
}

/// Inserts an account inside the caller's transaction. A racing second insert for the same
/// subject is told apart by the unique index, never by a read that could be stale.
pub fn insert(conn: &mut DbConn, row: &AccountRow) -> Result<Inserted, DbError> {
    if subject_exists(conn, &row.subject_hash)? {
        return Ok(Inserted::AlreadyRegistered);
    }
    match diesel::insert_into(efolder_accounts::table).values(row.clone()).execute(conn).map_err(DbError::from) {
        Ok(_) => Ok(Inserted::Created),
        Err(DbError::Duplicate(m)) if m.contains("subject_hash") => Ok(Inserted::AlreadyRegistered),
        Err(DbError::Duplicate(m)) if m.contains("username") => Ok(Inserted::UsernameTaken),
        Err(e) => Err(e),
    }
}

pub fn find(conn: &mut DbConn, id: &AccountId) -> Result<Option<AccountRow>, DbError> {
    efolder_accounts::table
        .find(id.as_str())
        .select(AccountRow::as_select())
        .first(conn)
        .optional()
        .map_err(DbError::from)
}

pub fn find_by_username(conn: &mut DbConn, username: &str) -> Result<Option<AccountRow>, DbError> {
    // No stored username holds a NUL (PostgreSQL text cannot), and PostgreSQL refuses to
    // compare with one: such a name is simply not found (contract fuzzing sent one → 500).
    if username.contains('\0') {
        return Ok(None);
    }
    efolder_accounts::table
        .filter(efolder_accounts::username.eq(username))
        .select(AccountRow::as_select())
        .first(conn)
        .optional()
        .map_err(DbError::from)
}

/// The accounts of a person's national code (their own, and legal persons they represent).
pub fn find_by_nid_hash(conn: &mut DbConn, nid_hash: &str) -> Result<Vec<AccountRow>, DbError> {
    efolder_accounts::table
        .filter(efolder_accounts::nid_hash.eq(nid_hash))
        .order(efolder_accounts::created_at.asc())
        .select(AccountRow::as_select())
        .load(conn)
        .map_err(DbError::from)
}

pub fn record_login_success(conn: &mut DbConn, id: &AccountId, now: NaiveDateTime) -> Result<(), DbError> {
    diesel::update(efolder_accounts::table.find(id.as_str()))
        .set((
            efolder_accounts::failed_logins.eq(0),
            efolder_accounts::locked_until.eq(None::<NaiveDateTime>),
            efolder_accounts::last_login_at.eq(Some(now)),
            efolder_accounts::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Replaces the password hash, clears the first-login flag, the failures and any reset
/// code, and bumps the token version so older tokens stop working. Returns the new
/// version, or `None` when `expected_version` is stale (another change won).
pub fn set_password(
    conn: &mut DbConn,
    id: &AccountId,
    expected_version: i32,
    password_hash: &str,
    now: NaiveDateTime,
) -> Result<Option<i32>, DbError> {
    write_tx(conn, |conn| {
        let changed = diesel::update(
            efolder_accounts::table.find(id.as_str()).filter(efolder_accounts::token_version.eq(expected_version)),
        )
        .set((
            efolder_accounts::password_hash.eq(password_hash),
            efolder_accounts::must_change_password.eq(false),
            efolder_accounts::token_version.eq(expected_version + 1),
            efolder_accounts::failed_logins.eq(0),
            efolder_accounts::locked_until.eq(None::<NaiveDateTime>),
            efolder_accounts::password_changed_at.eq(Some(now)),
            efolder_accounts::updated_at.eq(now),
        ))
        .execute(conn)?;
        if changed == 0 {
            return Ok(None);
        }
        diesel::delete(efolder_reset_codes::table.find(id.as_str())).execute(conn)?;
        Ok(Some(expected_version + 1))
    })
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = efolder_reset_codes)]
pub struct ResetCodeRow {
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub account_id: AccountId,
    pub code_hash: String,
    pub attempts: i32,
    pub expires_at: NaiveDateTime,
    pub sent_at: NaiveDateTime,
}

pub fn reset_code(conn: &mut DbConn, account_id: &AccountId) -> Result<Option<ResetCodeRow>, DbError> {
    efolder_reset_codes::table
        .find(account_id.as_str())
        .select(ResetCodeRow::as_select())
        .first(conn)
        .optional()
        .map_err(DbError::from)
}

/// Makes `row` the account's one active code, unless a code was sent less than
/// `resend_after` ago. Returns whether it was stored; the caller queues the SMS in the
/// same transaction.
pub fn replace_reset_code(conn: &mut DbConn, row: &ResetCodeRow, resend_after: Duration) -> Result<bool, DbError> {
    if let Some(old) = reset_code(conn, &row.account_id)?
        && old.sent_at + resend_after > row.sent_at
    {
        return Ok(false);
    }
    diesel::delete(efolder_reset_codes::table.find(row.account_id.as_str())).execute(conn)?;
    diesel::insert_into(efolder_reset_codes::table).values(row.clone()).execute(conn)?;
    Ok(true)
}

/// Takes one of the code's guesses *before* it is compared, in one conditional update,
/// so parallel guesses cannot use more than `max_attempts`. Returns the code with this
/// guess counted, or `None` when there is no code or its guesses are used up.
pub fn take_reset_attempt(
    conn: &mut DbConn,
    account_id: &AccountId,
    max_attempts: i32,
) -> Result<Option<ResetCodeRow>, DbError> {
    write_tx(conn, |conn| {
        let taken = diesel::update(
            efolder_reset_codes::table.find(account_id.as_str()).filter(efolder_reset_codes::attempts.lt(max_attempts)),
        )
        .set(efolder_reset_codes::attempts.eq(efolder_reset_codes::attempts + 1))
        .execute(conn)?;
        if taken == 0 {
            return Ok(None);
        }
        reset_code(conn, account_id)
    })
}

pub fn delete_reset_code(conn: &mut DbConn, account_id: &AccountId) -> Result<(), DbError> {
    diesel::delete(efolder_reset_codes::table.find(account_id.as_str())).execute(conn)?;
    Ok(())
}

// ---------------------------------------------------------------- credentials recovery

/// Whether the subject's account never got its credentials (`None`: no account). Such a
/// person is told to use recovery when registering again (issue 19 item 6).
pub fn credentials_undelivered(conn: &mut DbConn, subject_hash: &str) -> Result<Option<bool>, DbError> {
    let found: Option<Option<NaiveDateTime>> = efolder_accounts::table
        .filter(efolder_accounts::subject_hash.eq(subject_hash))
        .select(efolder_accounts::credentials_undelivered_at)
        .first(conn)
        .optional()?;
    Ok(found.map(|at| at.is_some()))
}

/// Marks an account whose credentials SMS was given up (inside the outbox worker's
/// transaction) — only if those credentials are still the account's: the same token
/// version (`version`), not yet changed at a first login.
pub fn mark_credentials_undelivered(
    conn: &mut DbConn,
    id: &AccountId,
    version: i32,
    now: NaiveDateTime,
) -> Result<usize, DbError> {
    diesel::update(
        efolder_accounts::table
            .find(id.as_str())
            .filter(efolder_accounts::must_change_password.eq(true))
            .filter(efolder_accounts::token_version.eq(version)),
    )
    .set((efolder_accounts::credentials_undelivered_at.eq(Some(now)), efolder_accounts::updated_at.eq(now)))
    .execute(conn)
    .map_err(DbError::from)
}

/// Fresh generated credentials after a recovery: the new password hash, a forced change at
/// the next login, every older token and reset code void, the lock cleared, the delivery
/// `sms` again (no longer undelivered). Inside the caller's transaction (which queues the SMS); `false` when the
/// account changed since it was read (`expected_version`).
pub fn reset_credentials(
    conn: &mut DbConn,
    id: &AccountId,
    expected_version: i32,
    password_hash: &str,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let changed = diesel::update(
        efolder_accounts::table.find(id.as_str()).filter(efolder_accounts::token_version.eq(expected_version)),
    )
    .set((
        efolder_accounts::password_hash.eq(password_hash),
        efolder_accounts::must_change_password.eq(true),
        efolder_accounts::token_version.eq(expected_version + 1),
        efolder_accounts::failed_logins.eq(0),
        efolder_accounts::locked_until.eq(None::<NaiveDateTime>),
        efolder_accounts::credentials_delivery.eq("sms"),
        efolder_accounts::credentials_undelivered_at.eq(None::<NaiveDateTime>),
        efolder_accounts::updated_at.eq(now),
    ))
    .execute(conn)?;
    if changed == 1 {
        diesel::delete(efolder_reset_codes::table.find(id.as_str())).execute(conn)?;
    }
    Ok(changed == 1)
}
