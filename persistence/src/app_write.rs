//! An application's versioned update and the rows that go with it — its audit entries,
//! the messages it queues, the payment it settles — written as one (issue 21): on
//! PostgreSQL one data-modifying statement (`WITH app AS (UPDATE applications …),
//! pay AS (UPDATE payments …), aud AS (INSERT INTO audit_log …), msg AS (INSERT INTO outbox
//! …) SELECT` the counts), on SQLite the same rows as separate statements in the same write
//! transaction (its writer already holds the database, and a statement costs no round trip).
//!
//! The rows written are exactly those `applications::update`, `audit::append`,
//! `outbox::enqueue` and `payments::update` would write one by one. The versions are
//! checked as they check them: if the application's (or the payment's) version moved since
//! it was read, the answer is `Stale` and nothing is written — the write runs in the
//! caller's transaction, which a `Stale` must end (return it; the transaction rolls back),
//! or in one of its own when the caller has none.

use chrono::{DateTime, Utc};
use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::pg::{Pg, PgConnection};
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::BigInt;

use crate::applications::ApplicationRow;
use crate::audit::AuditRow;
use crate::db::{DbConn, write_tx};
use crate::error::DbError;
use crate::outbox::{self, OutboxRow};
use crate::payments::PaymentRow;
use crate::prepared::KeepPrepared;
use crate::schema::{applications as apps, audit_log, outbox as out, payments as pays};

/// What is written with the application.
#[derive(Debug, Default)]
pub struct Along<'a> {
    /// Audit entries (`audit::entry`).
    pub audit: Vec<AuditRow>,
    /// Messages to queue (`outbox::message`); one whose dedupe key is queued already is
    /// left out, as `outbox::enqueue` leaves it.
    pub outbox: Vec<OutboxRow>,
    /// A payment changed with the application, saved if its version is still the one read
    /// (as `payments::update`).
    pub payment: Option<&'a mut PaymentRow>,
}

/// What the write did besides the application (and the payment, if any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Messages queued (those whose dedupe key was queued before are not).
    pub queued: usize,
}

/// Saves the changed application `row` (`row.version` is the version read; bumped, as
/// `updated_at`, when saved) with what goes `along`. `Stale` when the application's or the
/// payment's version moved: nothing is written and both rows keep the versions (and
/// `updated_at`) read.
pub fn save(
    conn: &mut DbConn,
    row: &mut ApplicationRow,
    along: Along<'_>,
    now: DateTime<Utc>,
) -> Result<Written, DbError> {
    let Along { audit, outbox, mut payment } = along;
    let (app_read, pay_read) = (row.version, payment.as_ref().map(|p| p.version));
    let (app_at, pay_at) = (row.updated_at, payment.as_ref().map(|p| p.updated_at));
    row.version += 1;
    row.updated_at = now.naive_utc();
    if let Some(p) = payment.as_deref_mut() {
        p.version += 1;
        p.updated_at = now.naive_utc();
    }
    let written = if in_transaction(conn) {
        write_all(conn, row, app_read, payment.as_deref(), pay_read, &audit, &outbox)
    } else {
        write_tx(conn, |conn| write_all(conn, row, app_read, payment.as_deref(), pay_read, &audit, &outbox))
    };
    if written.is_err() {
        (row.version, row.updated_at) = (app_read, app_at);
        if let (Some(p), Some(read), Some(at)) = (payment, pay_read, pay_at) {
            (p.version, p.updated_at) = (read, at);
        }
    }
    written
}

fn in_transaction(conn: &mut DbConn) -> bool {
    let depth = match conn {
        DbConn::Pg(c) => AnsiTransactionManager::transaction_manager_status_mut(c).transaction_depth(),
        DbConn::Sqlite(c) => AnsiTransactionManager::transaction_manager_status_mut(c).transaction_depth(),
    };
    depth.ok().flatten().is_some()
}

/// The rows as saved (versions already bumped), `*_read` the versions read.
fn write_all(
    conn: &mut DbConn,
    row: &ApplicationRow,
    app_read: i32,
    payment: Option<&PaymentRow>,
    pay_read: Option<i32>,
    audit: &[AuditRow],
    messages: &[OutboxRow],
) -> Result<Written, DbError> {
    match conn {
        DbConn::Pg(pg) => write_pg(pg, row, app_read, payment.zip(pay_read), audit, messages),
        DbConn::Sqlite(_) => {
            // The application first: if it is stale, nothing else is written.
            let n = diesel::update(apps::table.filter(apps::id.eq(row.id.as_str())).filter(apps::version.eq(app_read)))
                .set(row.clone())
                .prepared()
                .execute(conn)?;
            if n != 1 {
                return Err(DbError::Stale);
            }
            for entry in audit {
                crate::audit::insert(conn, entry)?;
            }
            let mut queued = 0;
            for m in messages {
                queued += usize::from(outbox::enqueue_row(conn, m)?);
            }
            if let (Some(p), Some(read)) = (payment, pay_read) {
                let n = diesel::update(pays::table.filter(pays::id.eq(p.id.as_str())).filter(pays::version.eq(read)))
                    .set(p.clone())
                    .prepared()
                    .execute(conn)?;
                if n != 1 {
                    // The caller's transaction rolls back what was written above.
                    return Err(DbError::Stale);
                }
            }
            Ok(Written { queued })
        }
    }
}

fn write_pg(
    pg: &mut PgConnection,
    row: &ApplicationRow,
    app_read: i32,
    payment: Option<(&PaymentRow, i32)>,
    audit: &[AuditRow],
    messages: &[OutboxRow],
) -> Result<Written, DbError> {
    let mut parts: Vec<(&'static str, Box<dyn QueryFragment<Pg> + '_>)> = vec![(
        "app",
        Box::new(
            diesel::update(apps::table.filter(apps::id.eq(row.id.as_str())).filter(apps::version.eq(app_read)))
                .set(row.clone())
                .returning(apps::id),
        ),
    )];
    if let Some((p, read)) = payment {
        parts.push((
            "pay",
            Box::new(
                diesel::update(pays::table.filter(pays::id.eq(p.id.as_str())).filter(pays::version.eq(read)))
                    .set(p.clone())
                    .returning(pays::id),
            ),
        ));
    }
    if !audit.is_empty() {
        parts.push(("aud", Box::new(diesel::insert_into(audit_log::table).values(audit.to_vec()))));
    }
    if !messages.is_empty() {
        parts.push((
            "msg",
            Box::new(
                diesel::insert_into(out::table)
                    .values(messages.to_vec())
                    .on_conflict(out::dedupe_key)
                    .do_nothing()
                    .returning(out::id),
            ),
        ));
    }
    let count = |name: &str, present: bool| {
        if present { format!("(SELECT COUNT(*) FROM {name})") } else { "CAST(0 AS BIGINT)".to_owned() }
    };
    let counts = format!(
        " SELECT (SELECT COUNT(*) FROM app), {}, {}",
        count("pay", payment.is_some()),
        count("msg", !messages.is_empty())
    );
    let (apps_written, pays_written, queued): (i64, i64, i64) = Together { parts, counts }.get_result(pg)?;
    if apps_written != 1 || (payment.is_some() && pays_written != 1) {
        // Every part of the statement ran (the audit entries and messages were inserted
        // even so): the transaction this runs in rolls back on `Stale`.
        return Err(DbError::Stale);
    }
    Ok(Written { queued: usize::try_from(queued).unwrap_or(0) })
}

/// `WITH <name> AS (<part>), … <counts>`: diesel's own statements as the parts, their bind
/// parameters numbered in one sequence.
struct Together<'q> {
    parts: Vec<(&'static str, Box<dyn QueryFragment<Pg> + 'q>)>,
    counts: String,
}

impl QueryFragment<Pg> for Together<'_> {
    // Kept prepared under its text (crate::prepared): the parts present and the number of
    // audit entries and messages make a handful of texts, each parsed once per connection.
    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> QueryResult<bool> {
        Ok(true)
    }

    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("WITH ");
        for (i, (name, part)) in self.parts.iter().enumerate() {
            if i > 0 {
                out.push_sql(", ");
            }
            out.push_sql(name);
            out.push_sql(" AS (");
            part.walk_ast(out.reborrow())?;
            out.push_sql(")");
        }
        out.push_sql(&self.counts);
        Ok(())
    }
}

impl QueryId for Together<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Together<'_> {
    type SqlType = (BigInt, BigInt, BigInt);
}

impl RunQueryDsl<PgConnection> for Together<'_> {}
