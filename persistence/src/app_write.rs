//! An application's versioned update and the rows that go with it — its audit entries,
//! the messages it queues, the payment it settles — written as one (issue 21): on
//! PostgreSQL one data-modifying statement (`WITH paid AS (SELECT … FOR UPDATE), app AS
//! (UPDATE applications …), pay AS (UPDATE payments …), aud0 AS (INSERT INTO audit_log …),
//! msg0 AS (INSERT INTO outbox …) SELECT` the counts), on SQLite the same rows as separate
//! statements in one write transaction (its writer already holds the database, and a
//! statement costs no round trip).
//!
//! The rows written are exactly those `applications::update`, `audit::append`,
//! `outbox::enqueue` and `payments::update` would write one by one. The versions are
//! checked as they check them, and the write is all or nothing: if the application's (or
//! the payment's) version moved since it was read, the answer is `Stale` and nothing is
//! written. On PostgreSQL every part of the statement waits on the application's update
//! (`WHERE EXISTS (SELECT 1 FROM app)`), and the application's on the payment's row locked
//! at the version read, so the statement needs no transaction around it: a use case that
//! only changes the application may read it without a lock and save it with this
//! (`journey::amend`), retrying on `Stale`.

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
use crate::schema::{applications as apps, payments as pays};

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
    // PostgreSQL: one statement that writes all or nothing, so it needs no transaction of
    // its own. SQLite: the rows one by one, in the caller's transaction or one of their own.
    let written = if in_transaction(conn) || matches!(conn, DbConn::Pg(_)) {
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

/// Inserts a new application `row` with its audit entries, all or nothing: on PostgreSQL
/// one statement (`WITH app AS (INSERT INTO applications …), aud0 AS (INSERT INTO audit_log
/// … WHERE EXISTS (SELECT 1 FROM app)) …`, no transaction needed), on SQLite the rows one by
/// one in the caller's transaction or one of its own. `Stale` when the citizen has an
/// application of that cycle already (another request created it first; `ON CONFLICT
/// (citizen_id, cycle) DO NOTHING`): nothing written.
pub fn create(conn: &mut DbConn, row: &ApplicationRow, audit: &[AuditRow]) -> Result<(), DbError> {
    let insert =
        diesel::insert_into(apps::table).values(row.clone()).on_conflict((apps::citizen_id, apps::cycle)).do_nothing();
    match conn {
        DbConn::Pg(pg) => {
            let mut parts: Vec<(String, Box<dyn QueryFragment<Pg> + '_>)> =
                vec![("app".into(), Box::new(insert.returning(apps::id)))];
            for (i, entry) in audit.iter().enumerate() {
                parts.push((format!("aud{i}"), Box::new(AuditIfWritten::new(entry))));
            }
            let counts = " SELECT (SELECT COUNT(*) FROM app), CAST(0 AS BIGINT), CAST(0 AS BIGINT)".to_owned();
            let (inserted, _, _): (i64, i64, i64) = Together { parts, counts }.get_result(pg)?;
            if inserted == 1 { Ok(()) } else { Err(DbError::Stale) }
        }
        DbConn::Sqlite(_) => {
            let write = |conn: &mut DbConn| {
                let DbConn::Sqlite(sqlite) = &mut *conn else { unreachable!("matched above") };
                if insert.prepared().execute(sqlite)? != 1 {
                    return Err(DbError::Stale);
                }
                audit.iter().try_for_each(|entry| crate::audit::insert(conn, entry))
            };
            if in_transaction(conn) { write(conn) } else { write_tx(conn, write) }
        }
    }
}

/// Takes one seat of `office`'s `shift` on `date` and saves the changed application `row`
/// (read under its lock, in the caller's write transaction) in one statement on
/// PostgreSQL: `WITH seat AS (UPDATE slots SET taken = taken + 1 WHERE … AND taken <
/// capacity …), app AS (UPDATE applications … WHERE EXISTS (SELECT 1 FROM seat))`. The
/// slot's row is the one a rush contests: its lock is then held for the rest of that one
/// statement and until the caller's `COMMIT` (one round trip). A first hold needs no
/// transaction at all on PostgreSQL: [`take_seat_alone`].
/// SQLite: `take_seat`, then the update. A full or closed slot is `SlotFull` / `SlotClosed`
/// and the application is not written.
pub fn take_seat_and_save(
    conn: &mut DbConn,
    office: &domain::record_ids::OfficeId,
    date: chrono::NaiveDate,
    shift: domain::offices::Shift,
    row: &mut ApplicationRow,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    use crate::schema::slots;
    let DbConn::Pg(pg) = conn else {
        crate::offices::take_seat(conn, office, date, shift)?;
        return crate::applications::update(conn, row, now);
    };
    let read = row.version;
    let mut saved = row.clone();
    saved.version += 1;
    saved.updated_at = now.naive_utc();
    let seat = diesel::update(crate::offices::open_seat(office.as_str(), date, shift.as_str()))
        .set(slots::taken.eq(slots::taken + 1))
        .returning(slots::taken);
    let app = diesel::update(
        apps::table.filter(apps::id.eq(saved.id.as_str())).filter(apps::version.eq(read)).filter(diesel::dsl::sql::<
            diesel::sql_types::Bool,
        >(
            "EXISTS (SELECT 1 FROM seat)",
        )),
    )
    .set(saved.clone())
    .returning(apps::id);
    let parts: Vec<(String, Box<dyn QueryFragment<Pg> + '_>)> =
        vec![("seat".into(), Box::new(seat)), ("app".into(), Box::new(app))];
    let counts = " SELECT (SELECT COUNT(*) FROM seat), (SELECT COUNT(*) FROM app), CAST(0 AS BIGINT)".to_owned();
    let (seats, apps_written, _): (i64, i64, i64) = Together { parts, counts }.get_result(pg)?;
    if seats != 1 {
        // Why not, read as `take_seat` reads it (the transaction rolls back).
        return Err(crate::offices::no_seat(conn, office, date, shift)?);
    }
    if apps_written != 1 {
        // The caller read the row under its lock, so this is not expected: the seat taken
        // above goes with the caller's rollback.
        return Err(DbError::Stale);
    }
    *row = saved;
    Ok(())
}

/// What [`take_seat_alone`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatTaken {
    /// The seat is taken and the application saved with its audit entries.
    Taken,
    /// The application's version moved since it was read: nothing is written.
    Stale,
}

/// PostgreSQL, without a transaction: takes one seat of `office`'s `shift` on `date` and
/// saves the application `row` (read without a lock, `row.version` the version read) with
/// its `audit` entries, all or nothing, in one statement — `WITH locked AS (SELECT … FROM
/// applications WHERE id = … AND version = <read> FOR UPDATE), seat AS (UPDATE slots …
/// WHERE … AND taken < capacity AND EXISTS (SELECT 1 FROM locked)), app AS (UPDATE
/// applications … WHERE EXISTS (SELECT 1 FROM seat)), aud0 AS (INSERT INTO audit_log …
/// WHERE EXISTS (SELECT 1 FROM app))`. The application's row is locked before the slot's,
/// as [`take_seat_and_save`]'s callers lock them.
///
/// The slot's row is the one a rush contests. In a transaction its lock is held until the
/// server has read the statement's answer and sent `COMMIT` — a round trip for each of the
/// hundred winners in a row, each waiting for the one before, while the server's two cores
/// are busy with the thousand requests; here it is held for the statement and its commit
/// inside PostgreSQL alone. A full or closed slot is `SlotFull` / `SlotClosed`.
pub fn take_seat_alone(
    conn: &mut DbConn,
    office: &domain::record_ids::OfficeId,
    date: chrono::NaiveDate,
    shift: domain::offices::Shift,
    row: &mut ApplicationRow,
    audit: &[AuditRow],
    now: DateTime<Utc>,
) -> Result<SeatTaken, DbError> {
    use crate::schema::slots;
    use diesel::dsl::sql;
    use diesel::sql_types::Bool;
    let DbConn::Pg(pg) = &mut *conn else {
        return Err(DbError::Internal(
            "take_seat_alone is for PostgreSQL: SQLite takes a seat in a transaction".into(),
        ));
    };
    let read = row.version;
    let mut saved = row.clone();
    saved.version += 1;
    saved.updated_at = now.naive_utc();
    let locked =
        apps::table.filter(apps::id.eq(saved.id.as_str())).filter(apps::version.eq(read)).select(apps::id).for_update();
    let seat = diesel::update(
        crate::offices::open_seat(office.as_str(), date, shift.as_str())
            .filter(sql::<Bool>("EXISTS (SELECT 1 FROM locked)")),
    )
    .set(slots::taken.eq(slots::taken + 1))
    .returning(slots::taken);
    let app = diesel::update(
        apps::table
            .filter(apps::id.eq(saved.id.as_str()))
            .filter(apps::version.eq(read))
            .filter(sql::<Bool>("EXISTS (SELECT 1 FROM seat)")),
    )
    .set(saved.clone())
    .returning(apps::id);
    let mut parts: Vec<(String, Box<dyn QueryFragment<Pg> + '_>)> =
        vec![("locked".into(), Box::new(locked)), ("seat".into(), Box::new(seat)), ("app".into(), Box::new(app))];
    for (i, entry) in audit.iter().enumerate() {
        parts.push((format!("aud{i}"), Box::new(AuditIfWritten::new(entry))));
    }
    let counts =
        " SELECT (SELECT COUNT(*) FROM seat), (SELECT COUNT(*) FROM app), (SELECT COUNT(*) FROM locked)".to_owned();
    let (seats, written, locked): (i64, i64, i64) = Together { parts, counts }.get_result(pg)?;
    match (locked, seats, written) {
        (1, 1, 1) => {
            *row = saved;
            Ok(SeatTaken::Taken)
        }
        (0, 0, 0) => Ok(SeatTaken::Stale),
        // Full or closed: why, read as `take_seat` reads it.
        (1, 0, 0) => Err(crate::offices::no_seat(conn, office, date, shift)?),
        // Not expected (the application's row is locked at the version read before the seat
        // is taken), but the statement has committed: a seat taken without its application
        // is given back.
        (_, 1, 0) => {
            crate::offices::release_seat(conn, office, date, shift)?;
            Err(DbError::Internal("a seat taken without its application (given back)".into()))
        }
        other => Err(DbError::Internal(format!("a seat and its application written apart: {other:?}"))),
    }
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
    use diesel::dsl::sql;
    use diesel::sql_types::Bool;
    // All or nothing: the application is updated only if its version (and the payment's,
    // whose row `paid` locks first) is the one read; everything else only if it was.
    let app = apps::table.filter(apps::id.eq(row.id.as_str())).filter(apps::version.eq(app_read));
    let mut parts: Vec<(String, Box<dyn QueryFragment<Pg> + '_>)> = Vec::new();
    if let Some((p, read)) = payment {
        let pay = pays::table.filter(pays::id.eq(p.id.as_str())).filter(pays::version.eq(read));
        parts.push(("paid".into(), Box::new(pay.select(pays::id).for_update())));
        parts.push((
            "app".into(),
            Box::new(
                diesel::update(app.filter(sql::<Bool>("EXISTS (SELECT 1 FROM paid)")))
                    .set(row.clone())
                    .returning(apps::id),
            ),
        ));
        parts.push((
            "pay".into(),
            Box::new(
                diesel::update(pay.filter(sql::<Bool>("EXISTS (SELECT 1 FROM app)")))
                    .set(p.clone())
                    .returning(pays::id),
            ),
        ));
    } else {
        parts.push(("app".into(), Box::new(diesel::update(app).set(row.clone()).returning(apps::id))));
    }
    for (i, entry) in audit.iter().enumerate() {
        parts.push((format!("aud{i}"), Box::new(AuditIfWritten::new(entry))));
    }
    for (i, message) in messages.iter().enumerate() {
        parts.push((format!("msg{i}"), Box::new(MessageIfWritten::new(message))));
    }
    let queued = if messages.is_empty() {
        "CAST(0 AS BIGINT)".to_owned()
    } else {
        (0..messages.len()).map(|i| format!("(SELECT COUNT(*) FROM msg{i})")).collect::<Vec<_>>().join(" + ")
    };
    let counts = format!(
        " SELECT (SELECT COUNT(*) FROM app), {}, {queued}",
        if payment.is_some() { "(SELECT COUNT(*) FROM pay)" } else { "CAST(0 AS BIGINT)" },
    );
    let (apps_written, pays_written, queued): (i64, i64, i64) = Together { parts, counts }.get_result(pg)?;
    if apps_written != 1 {
        // Nothing was written: every other part waits on the application's update.
        return Err(DbError::Stale);
    }
    if payment.is_some() && pays_written != 1 {
        // `paid` locked the payment at the version read, so its update cannot miss.
        return Err(DbError::Internal("the payment locked at the version read was not updated".into()));
    }
    Ok(Written { queued: usize::try_from(queued).unwrap_or(0) })
}

/// The columns [`AuditIfWritten`] and [`MessageIfWritten`] write, in the order they bind
/// them: every column of the table (a unit test compares them with diesel's insert).
const AUDIT_COLUMNS: &str = "id, at, actor_kind, actor_id, action, application_id, request_id, details, client_ip";
const OUTBOX_COLUMNS: &str = "id, channel, recipient_enc, recipient_hint, template, params_enc, lang, status, attempts, \
     next_attempt_at, claimed_until, provider_id, last_error, application_id, dedupe_key, created_at, updated_at, \
     sent_at, claim_token";

/// `INSERT INTO audit_log (…) SELECT <the row> WHERE EXISTS (SELECT 1 FROM app)`: an audit
/// entry written only if the application's update in the same `WITH` was.
struct AuditIfWritten<'a> {
    row: &'a AuditRow,
    application_id: Option<String>,
}

impl<'a> AuditIfWritten<'a> {
    fn new(row: &'a AuditRow) -> Self {
        Self { row, application_id: row.application_id.as_ref().map(|id| id.as_str().to_owned()) }
    }
}

impl QueryFragment<Pg> for AuditIfWritten<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        use diesel::sql_types::{Nullable, Text, Timestamp};
        let r = self.row;
        out.push_sql("INSERT INTO audit_log (");
        out.push_sql(AUDIT_COLUMNS);
        out.push_sql(") SELECT ");
        out.push_bind_param::<Text, _>(&r.id)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&r.at)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&r.actor_kind)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&r.actor_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&r.action)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&self.application_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&r.request_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&r.details)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&r.client_ip)?;
        out.push_sql(" WHERE EXISTS (SELECT 1 FROM app)");
        Ok(())
    }
}

/// `INSERT INTO outbox (…) SELECT <the row> WHERE EXISTS (SELECT 1 FROM app) ON CONFLICT
/// (dedupe_key) DO NOTHING RETURNING id`: a message queued only if the application's update
/// in the same `WITH` was (and its dedupe key is new, as `outbox::enqueue` queues).
struct MessageIfWritten<'a> {
    row: &'a OutboxRow,
    application_id: Option<String>,
}

impl<'a> MessageIfWritten<'a> {
    fn new(row: &'a OutboxRow) -> Self {
        Self { row, application_id: row.application_id.as_ref().map(|id| id.as_str().to_owned()) }
    }
}

impl QueryFragment<Pg> for MessageIfWritten<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        use diesel::sql_types::{Integer, Nullable, Text, Timestamp};
        let r = self.row;
        out.push_sql("INSERT INTO outbox (");
        out.push_sql(OUTBOX_COLUMNS);
        out.push_sql(") SELECT ");
        for text in
            [&r.id, &r.channel, &r.recipient_enc, &r.recipient_hint, &r.template, &r.params_enc, &r.lang, &r.status]
        {
            out.push_bind_param::<Text, _>(text)?;
            out.push_sql(", ");
        }
        out.push_bind_param::<Integer, _>(&r.attempts)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&r.next_attempt_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Timestamp>, _>(&r.claimed_until)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&r.provider_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&r.last_error)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&self.application_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&r.dedupe_key)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&r.created_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&r.updated_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Timestamp>, _>(&r.sent_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&r.claim_token)?;
        out.push_sql(" WHERE EXISTS (SELECT 1 FROM app) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id");
        Ok(())
    }
}

/// `WITH <name> AS (<part>), … <counts>`: diesel's own statements as the parts, their bind
/// parameters numbered in one sequence.
struct Together<'q> {
    parts: Vec<(String, Box<dyn QueryFragment<Pg> + 'q>)>,
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

#[cfg(test)]
mod tests {
    use diesel::pg::Pg;

    use super::*;
    use crate::schema::{audit_log, outbox};

    /// The column names of diesel's own insert of a whole row, in order.
    fn columns_of(sql: &str) -> String {
        let list = &sql[sql.find('(').expect("(") + 1..sql.find(") VALUES").expect("VALUES")];
        list.split(", ").map(|c| c.trim_matches('"')).collect::<Vec<_>>().join(", ")
    }

    #[test]
    fn the_conditional_inserts_write_every_column_diesel_writes() {
        let now = chrono::Utc::now();
        let entry = crate::audit::entry(&crate::audit::Actor::system(), "x", None, None, now);
        let sql = diesel::debug_query::<Pg, _>(&diesel::insert_into(audit_log::table).values(entry)).to_string();
        assert_eq!(AUDIT_COLUMNS, columns_of(&sql));
        let message = outbox::all_columns;
        let sql = diesel::debug_query::<Pg, _>(&outbox::table.select(message)).to_string();
        let selected: Vec<&str> = sql["SELECT ".len()..sql.find(" FROM").expect("FROM")]
            .split(", ")
            .map(|c| c.rsplit('.').next().expect("column").trim_matches('"'))
            .collect();
        assert_eq!(OUTBOX_COLUMNS.split(", ").map(str::trim).collect::<Vec<_>>(), selected);
    }
}
