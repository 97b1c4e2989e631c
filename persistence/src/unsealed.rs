//! Clear personal values waiting to be sealed (issue 24). A migration that seals a
//! column at rest cannot encrypt in SQL — the key is the server's — so it moves the clear
//! values into `unsealed_values` and drops the clear column; [`seal_waiting`] seals them
//! into their new column when the server starts (before it serves) or when `ncr migrate`
//! runs with keys, and deletes each one as it is sealed, in the same transaction.

use diesel::prelude::*;

use crate::applications::Personal;
use crate::db::{DbConn, write_tx};
use crate::error::DbError;
use crate::pii::{Kind, Pii};
use crate::schema::{applications, efolder_accounts, enrollments, unsealed_values as u};

/// How many values one transaction seals.
const BATCH: i64 = 500;

/// Seals every waiting value; returns how many were sealed.
pub fn seal_waiting(conn: &mut DbConn, pii: &Pii) -> Result<usize, DbError> {
    let mut sealed = 0;
    loop {
        let n = write_tx(conn, |conn| {
            let batch: Vec<(String, String, String, String)> = u::table
                .select((u::table_name, u::row_id, u::column_name, u::value))
                .order((u::table_name, u::row_id, u::column_name))
                .limit(BATCH)
                .load(conn)?;
            for (table, row_id, column, value) in &batch {
                seal_one(conn, pii, table, row_id, column, value)?;
                diesel::delete(u::table.find((table, row_id, column))).execute(conn)?;
            }
            Ok::<_, DbError>(batch.len())
        })?;
        sealed += n;
        if n < BATCH as usize {
            return Ok(sealed);
        }
    }
}

fn seal_one(conn: &mut DbConn, pii: &Pii, table: &str, row_id: &str, column: &str, value: &str) -> Result<(), DbError> {
    match (table, column) {
        ("applications", "personal_enc") => {
            let personal: Personal = serde_json::from_str(value)
                .map_err(|e| DbError::Internal(format!("unsealed personal facts of {row_id} do not parse: {e}")))?;
            diesel::update(applications::table.find(row_id))
                .set(applications::personal_enc.eq(personal.seal(pii)))
                .execute(conn)?;
        }
        ("enrollments", "landline_enc") => {
            diesel::update(enrollments::table.find(row_id))
                .set(enrollments::landline_enc.eq(pii.seal(Kind::Secret, value)))
                .execute(conn)?;
        }
        ("enrollments", "exception_note_enc") => {
            diesel::update(enrollments::table.find(row_id))
                .set(enrollments::exception_note_enc.eq(Some(pii.seal(Kind::Secret, value))))
                .execute(conn)?;
        }
        ("efolder_accounts", "gender_enc") => {
            diesel::update(efolder_accounts::table.find(row_id))
                .set(efolder_accounts::gender_enc.eq(pii.seal(Kind::Personal, value)))
                .execute(conn)?;
        }
        _ => return Err(DbError::Internal(format!("no way to seal {table}.{column}"))),
    }
    Ok(())
}

/// Stages a clear value as a migration would (for tests of the move).
pub fn stage(conn: &mut DbConn, table: &str, row_id: &str, column: &str, value: &str) -> Result<(), DbError> {
    diesel::insert_into(u::table)
        .values((u::table_name.eq(table), u::row_id.eq(row_id), u::column_name.eq(column), u::value.eq(value)))
        .execute(conn)?;
    Ok(())
}
