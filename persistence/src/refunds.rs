//! Fees owed back after a withdrawal (issue 19; docs/domain/payments.md, "Withdrawal and
//! refunds"): one row per refunded payment, with the citizen's Sheba number sealed
//! (`Kind::Iban`) and only its masked form in clear. Status moves are versioned so a
//! reversal and an administrator can never both settle one refund.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

pub use domain::payment::{RefundMethod, RefundStatus};
use domain::record_ids::{ApplicationId, PaymentId, RefundId};

use crate::db::DbConn;
use crate::error::DbError;
use crate::schema::refunds;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset, Identifiable)]
#[diesel(table_name = refunds, treat_none_as_null = true)]
pub struct RefundRow {
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub id: RefundId,
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub application_id: ApplicationId,
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub payment_id: PaymentId,
    /// Rials: the payment's amount.
    pub amount: i64,
    /// The Sheba number, sealed.
    pub iban_enc: String,
    /// `IR` and its last four digits.
    pub iban_hint: String,
    /// Stored as its text, like a payment's status.
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub status: RefundStatus,
    /// `RefundMethod`'s text once settled.
    pub method: Option<String>,
    /// The bank's reference of the transfer (or the gateway's of the reversal).
    pub bank_reference: Option<String>,
    /// Why the gateway did not reverse it (the refund then waits for a transfer).
    pub reversal_error: Option<String>,
    pub requested_at: NaiveDateTime,
    pub settled_at: Option<NaiveDateTime>,
    /// The administrator who recorded the transfer.
    pub settled_by: Option<String>,
    pub version: i32,
    pub updated_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConn, row: &RefundRow) -> Result<(), DbError> {
    diesel::insert_into(refunds::table).values(row.clone()).execute(conn).map(|_| ()).map_err(DbError::from)
}

pub fn find(conn: &mut DbConn, id: &RefundId) -> Result<Option<RefundRow>, DbError> {
    refunds::table.find(id.as_str()).select(RefundRow::as_select()).first(conn).optional().map_err(DbError::from)
}

pub fn find_by_payment(conn: &mut DbConn, payment_id: &PaymentId) -> Result<Option<RefundRow>, DbError> {
    refunds::table
        .filter(refunds::payment_id.eq(payment_id.as_str()))
        .select(RefundRow::as_select())
        .first(conn)
        .optional()
        .map_err(DbError::from)
}

crate::versioned::versioned!(RefundRow);

/// Saves a changed row if nobody changed it since it was read; `Stale` otherwise.
pub fn update(conn: &mut DbConn, row: &mut RefundRow, now: DateTime<Utc>) -> Result<(), DbError> {
    crate::versioned::save(conn, row, now, |conn, row, read| {
        diesel::update(refunds::table.filter(refunds::id.eq(row.id.as_str())).filter(refunds::version.eq(read)))
            .set(row.clone())
            .execute(conn)
    })
}

/// Refunds oldest first (ids are time-ordered), optionally of one status, after the
/// cursor id: the administrators' work list.
pub fn list(
    conn: &mut DbConn,
    status: Option<RefundStatus>,
    after_id: Option<&str>,
    limit: i64,
) -> Result<Vec<RefundRow>, DbError> {
    let mut q = refunds::table.select(RefundRow::as_select()).into_boxed();
    if let Some(s) = status {
        q = q.filter(refunds::status.eq(s.as_str()));
    }
    if let Some(c) = after_id {
        q = q.filter(refunds::id.gt(c.to_owned()));
    }
    q.order(refunds::id.asc()).limit(limit).load(conn).map_err(DbError::from)
}
