//! Payments: one row per attempt, written before the bank is called; status moves are
//! versioned so racing callbacks and jobs apply a payment exactly once; a partial unique
//! index allows at most one `verified` payment per application.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
pub use domain::payment::PaymentStatus;
use domain::record_ids::{ApplicationId, PaymentId};

use crate::applications::ApplicationRow;
use crate::db::{DbConn, single_write};
use crate::error::DbError;
use crate::prepared::{FirstRow, KeepPrepared};
use crate::schema::{applications, catalog_version, fee_rates, payments, sandbox_bank_payments};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset, Identifiable)]
#[diesel(table_name = payments, treat_none_as_null = true)]
pub struct PaymentRow {
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub id: PaymentId,
    pub order_id: i64,
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub application_id: ApplicationId,
    pub gateway: String,
    pub amount: i64,
    /// Its moves: `domain::payment::transition`. Stored as its text.
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub status: PaymentStatus,
    pub token: Option<String>,
    pub redirect_url: Option<String>,
    pub reference: Option<String>,
    pub card_mask: Option<String>,
    pub bank_code: Option<String>,
    pub expires_at: NaiveDateTime,
    pub attempts: i32,
    pub next_check_at: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub version: i32,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub settled_at: Option<NaiveDateTime>,
    /// Reversals the bank did not confirm so far.
    pub reversal_attempts: i32,
    /// The bank's reason for the last reversal it did not confirm.
    pub reversal_error: Option<String>,
}

impl PaymentRow {
    /// Still waiting for an answer from the bank.
    pub fn is_open(&self) -> bool {
        self.status.is_open()
    }
}

/// Statuses as the stored text, for filters.
fn texts(statuses: &[PaymentStatus]) -> Vec<&'static str> {
    statuses.iter().map(|s| s.as_str()).collect()
}

pub fn insert(conn: &mut DbConn, row: &PaymentRow) -> Result<(), DbError> {
    diesel::insert_into(payments::table).values(row.clone()).prepared().execute(conn).map(|_| ()).map_err(DbError::from)
}

pub fn find(conn: &mut DbConn, id: &PaymentId) -> Result<Option<PaymentRow>, DbError> {
    payments::table.find(id.as_str()).select(PaymentRow::as_select()).first(conn).optional().map_err(DbError::from)
}

/// A payment and its application in one statement — with `lock`, locked for the rest of
/// the write transaction (`FOR UPDATE` of both rows on PostgreSQL; on SQLite the write
/// transaction already holds the database, see `applications::find_locked`) — with the
/// catalog's version (`catalog::version`) read in the same statement, so a caller that
/// needs an office from memory knows how new a copy it must use without another read.
pub fn find_with_application(
    conn: &mut DbConn,
    id: &PaymentId,
    lock: bool,
) -> Result<Option<(PaymentRow, ApplicationRow, i64)>, DbError> {
    let version = catalog_version::table.select(catalog_version::version).single_value();
    let query = payments::table
        .inner_join(applications::table.on(applications::id.eq(payments::application_id)))
        .filter(payments::id.eq(id.as_str()));
    let found: Option<(PaymentRow, ApplicationRow, Option<i64>)> = match conn {
        DbConn::Pg(pg) if lock => query
            .select((PaymentRow::as_select(), ApplicationRow::as_select(), version))
            .for_update()
            .limit_one()
            .get_result(pg)
            .optional()?,
        DbConn::Pg(pg) => query
            .select((PaymentRow::as_select(), ApplicationRow::as_select(), version))
            .limit_one()
            .get_result(pg)
            .optional()?,
        DbConn::Sqlite(lite) => {
            query.select((PaymentRow::as_select(), ApplicationRow::as_select(), version)).first(lite).optional()?
        }
    };
    found
        .map(|(p, a, v)| Ok((p, a, v.ok_or_else(|| DbError::Internal("catalog_version has no row".into()))?)))
        .transpose()
}

pub fn find_by_order(conn: &mut DbConn, order_id: i64) -> Result<Option<PaymentRow>, DbError> {
    payments::table
        .filter(payments::order_id.eq(order_id))
        .select(PaymentRow::as_select())
        .first(conn)
        .optional()
        .map_err(DbError::from)
}

/// The bank's callback for an order, recorded in one statement: the order's payment at
/// this gateway moves to `callback_received` (with the bank's status code) if it still may
/// (the domain's `CallbackReceived` move) and if the callback's token, when it carries one,
/// is the one the bank gave for the order. Returns the payment as written, or `None` when
/// nothing was written (unknown order, another gateway's, a token that is not the order's,
/// or a payment already past that point): the caller reads it to tell which.
pub fn mark_callback(
    conn: &mut DbConn,
    order_id: i64,
    gateway: &str,
    token: Option<&str>,
    bank_code: &str,
    now: DateTime<Utc>,
) -> Result<Option<PaymentRow>, DbError> {
    use domain::payment::{PaymentEvent, transition};
    let from: Vec<&str> = PaymentStatus::ALL
        .iter()
        .filter(|s| transition(**s, PaymentEvent::CallbackReceived) == Ok(PaymentStatus::CallbackReceived))
        .map(|s| s.as_str())
        .collect();
    // A callback without a token passes the token test (`$no_token`); one with a token must
    // carry the order's.
    let statement = diesel::update(
        payments::table
            .filter(payments::order_id.eq(order_id))
            .filter(payments::gateway.eq(gateway))
            .filter(payments::status.eq_any(from))
            .filter(
                token
                    .is_none()
                    .into_sql::<diesel::sql_types::Bool>()
                    .or(payments::token.is_null())
                    .or(payments::token.eq(token.unwrap_or_default())),
            ),
    )
    .set((
        payments::status.eq(PaymentStatus::CallbackReceived.as_str()),
        payments::bank_code.eq(bank_code),
        payments::version.eq(payments::version + 1),
        payments::updated_at.eq(now.naive_utc()),
    ));
    single_write(conn, |conn| match conn {
        DbConn::Pg(c) => statement.returning(PaymentRow::as_returning()).prepared().get_result(c).optional(),
        DbConn::Sqlite(c) => statement.returning(PaymentRow::as_returning()).prepared().get_result(c).optional(),
    })
    .map_err(DbError::from)
}

pub fn for_application(conn: &mut DbConn, application_id: &ApplicationId) -> Result<Vec<PaymentRow>, DbError> {
    payments::table
        .filter(payments::application_id.eq(application_id.as_str()))
        .order(payments::created_at.desc())
        .select(PaymentRow::as_select())
        .load(conn)
        .map_err(DbError::from)
}

crate::versioned::versioned!(PaymentRow);

/// Saves a changed row if nobody changed it since it was read; `Stale` otherwise.
pub fn update(conn: &mut DbConn, row: &mut PaymentRow, now: DateTime<Utc>) -> Result<(), DbError> {
    crate::versioned::save(conn, row, now, |conn, row, read| {
        diesel::update(payments::table.filter(payments::id.eq(row.id.as_str())).filter(payments::version.eq(read)))
            .set(row.clone())
            .prepared()
            .execute(conn)
    })
}

/// Locks a payment row if it still has the version read (see `applications::lock`).
pub fn lock(conn: &mut DbConn, row: &PaymentRow) -> Result<(), DbError> {
    let n = diesel::update(
        payments::table.filter(payments::id.eq(row.id.as_str())).filter(payments::version.eq(row.version)),
    )
    .set(payments::version.eq(row.version))
    .prepared()
    .execute(conn)?;
    if n == 1 { Ok(()) } else { Err(DbError::Stale) }
}

/// Open payments due for a check with the bank.
pub fn due_for_reconciliation(conn: &mut DbConn, now: DateTime<Utc>, limit: i64) -> Result<Vec<PaymentRow>, DbError> {
    payments::table
        .filter(payments::status.eq_any(texts(&PaymentStatus::OPEN)))
        .filter(payments::next_check_at.le(now.naive_utc()))
        .order(payments::next_check_at.asc())
        .limit(limit)
        .select(PaymentRow::as_select())
        .load(conn)
        .map_err(DbError::from)
}

/// Payments to give back whose reversal is due: duplicates and mismatches
/// (`refund_pending`), and withdrawn fees the bank may still reverse (`refund_requested`
/// with a check planned).
pub fn due_reversals(conn: &mut DbConn, now: DateTime<Utc>, limit: i64) -> Result<Vec<PaymentRow>, DbError> {
    payments::table
        .filter(
            (payments::status.eq(PaymentStatus::RefundPending.as_str()).and(payments::last_error.is_not_null()))
                .or(payments::status.eq(PaymentStatus::RefundRequested.as_str())),
        )
        .filter(payments::next_check_at.le(now.naive_utc()))
        .limit(limit)
        .select(PaymentRow::as_select())
        .load(conn)
        .map_err(DbError::from)
}

/// Payments newest first (ids are time-ordered), optionally of one status, before the
/// cursor id: the administrators' listing.
pub fn list(
    conn: &mut DbConn,
    status: Option<PaymentStatus>,
    before_id: Option<&str>,
    limit: i64,
) -> Result<Vec<PaymentRow>, DbError> {
    let mut q = payments::table.select(PaymentRow::as_select()).into_boxed();
    if let Some(s) = status {
        q = q.filter(payments::status.eq(s.as_str()));
    }
    if let Some(c) = before_id {
        q = q.filter(payments::id.lt(c.to_owned()));
    }
    q.order(payments::id.desc()).limit(limit).load(conn).map_err(DbError::from)
}

// ---------------------------------------------------------------- fees

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = fee_rates)]
pub struct FeeRateRow {
    pub id: String,
    pub kind: String,
    pub amount: i64,
    pub effective_from: NaiveDate,
    pub created_at: NaiveDateTime,
    pub created_by: Option<String>,
}

pub fn fee_rates(conn: &mut DbConn) -> Result<Vec<FeeRateRow>, DbError> {
    fee_rates::table
        .order((fee_rates::kind, fee_rates::effective_from))
        .select(FeeRateRow::as_select())
        .load(conn)
        .map_err(DbError::from)
}

pub fn insert_fee_rate(conn: &mut DbConn, row: &FeeRateRow) -> Result<(), DbError> {
    diesel::insert_into(fee_rates::table).values(row).execute(conn).map(|_| ()).map_err(DbError::from)
}

/// The tariff as domain values.
pub fn tariff(conn: &mut DbConn) -> Result<Vec<domain::fees::FeeRate>, DbError> {
    Ok(fee_rates(conn)?
        .into_iter()
        .filter_map(|r| {
            Some(domain::fees::FeeRate {
                kind: domain::fees::FeeKind::parse(&r.kind)?,
                amount: domain::Rials::new(r.amount).ok()?,
                effective_from: r.effective_from,
            })
        })
        .collect())
}

// ---------------------------------------------------------------- the sandbox bank's books

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = sandbox_bank_payments)]
pub struct SandboxBankRow {
    pub token: String,
    pub order_id: i64,
    pub amount: i64,
    pub merchant: String,
    pub callback_url: String,
    /// `success`, `cancel` or `failed_after_debit` once the customer chose.
    pub outcome: Option<String>,
    pub reference: Option<String>,
    pub verified: bool,
    pub reversed: bool,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

pub fn sandbox_insert(conn: &mut DbConn, row: &SandboxBankRow) -> Result<(), DbError> {
    single_write(conn, |conn| diesel::insert_into(sandbox_bank_payments::table).values(row).prepared().execute(conn))
        .map(|_| ())
        .map_err(DbError::from)
}

pub fn sandbox_find(conn: &mut DbConn, token: &str) -> Result<Option<SandboxBankRow>, DbError> {
    sandbox_bank_payments::table
        .find(token)
        .select(SandboxBankRow::as_select())
        .first(conn)
        .optional()
        .map_err(DbError::from)
}

/// Records the customer's first choice (a second one is ignored, like a real bank page) in
/// one statement returning the row, while the payment is undecided and not expired at
/// `now`; `None` when it was decided before, expired or is unknown (the caller reads it
/// then to tell which).
pub fn sandbox_decide_open(
    conn: &mut DbConn,
    token: &str,
    outcome: &str,
    reference: &str,
    now: NaiveDateTime,
) -> Result<Option<SandboxBankRow>, DbError> {
    use sandbox_bank_payments as b;
    single_write(conn, |conn| {
        let query = diesel::update(
            b::table.filter(b::token.eq(token)).filter(b::outcome.is_null()).filter(b::expires_at.ge(now)),
        )
        .set((b::outcome.eq(outcome), b::reference.eq(reference)))
        .returning(b::all_columns)
        .prepared();
        match conn {
            DbConn::Pg(c) => query.get_result::<SandboxBankRow>(c).optional(),
            DbConn::Sqlite(c) => query.get_result::<SandboxBankRow>(c).optional(),
        }
    })
    .map_err(DbError::from)
}

/// A paid sandbox payment (the customer chose success, never reversed) marked verified in
/// one statement returning the row; `None` for any other (the caller reads it then).
pub fn sandbox_verify_paid(conn: &mut DbConn, token: &str) -> Result<Option<SandboxBankRow>, DbError> {
    use sandbox_bank_payments as b;
    single_write(conn, |conn| {
        let query = diesel::update(
            b::table.filter(b::token.eq(token)).filter(b::outcome.eq("success")).filter(b::reversed.eq(false)),
        )
        .set(b::verified.eq(true))
        .returning(b::all_columns)
        .prepared();
        match conn {
            DbConn::Pg(c) => query.get_result::<SandboxBankRow>(c).optional(),
            DbConn::Sqlite(c) => query.get_result::<SandboxBankRow>(c).optional(),
        }
    })
    .map_err(DbError::from)
}

/// Marks a sandbox payment given back; `false` when there is no such token.
pub fn sandbox_reverse(conn: &mut DbConn, token: &str) -> Result<bool, DbError> {
    single_write(conn, |conn| {
        diesel::update(sandbox_bank_payments::table.find(token))
            .set(sandbox_bank_payments::reversed.eq(true))
            .execute(conn)
    })
    .map(|n| n > 0)
    .map_err(DbError::from)
}
