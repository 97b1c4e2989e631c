//! The notification outbox: messages are written in the same transaction as the change
//! that causes them, and a worker delivers them later with retries, so a slow or failing
//! provider never fails or slows a citizen's request. Recipients and parameters are
//! sealed (they can hold a mobile or even generated credentials).

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};
use domain::delivery::Status;

use domain::record_ids::ApplicationId;

use crate::db::{DbConn, write_tx};
use crate::error::DbError;
use crate::nullable_id::NullableText;
use crate::pii::{Kind, Pii};
use crate::prepared::KeepPrepared;
use crate::schema::outbox;

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = outbox)]
pub struct OutboxRow {
    pub id: String,
    pub channel: String,
    pub recipient_enc: String,
    pub recipient_hint: String,
    pub template: String,
    pub params_enc: String,
    pub lang: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub claimed_until: Option<NaiveDateTime>,
    pub provider_id: Option<String>,
    pub last_error: Option<String>,
    #[diesel(deserialize_as = NullableText, serialize_as = NullableText)]
    pub application_id: Option<ApplicationId>,
    pub dedupe_key: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
    /// The claim a `sending` row is under (one per worker batch).
    pub claim_token: Option<String>,
}

/// A message to queue.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    /// `sms` or `email`.
    pub channel: &'a str,
    /// A mobile (`09…`) or an e-mail address.
    pub recipient: &'a str,
    /// Shown to admins instead of the recipient (e.g. `0914***8136`).
    pub recipient_hint: String,
    pub template: &'a str,
    pub params: serde_json::Value,
    pub lang: &'a str,
    pub application_id: Option<&'a ApplicationId>,
    /// When set, a second message with the same key is not queued (exactly one notification).
    pub dedupe_key: Option<String>,
}

/// Queues a message. Returns `false` when its dedupe key was already queued (also when
/// another transaction queued it at the same moment: the unique key decides, not a read).
pub fn enqueue(conn: &mut DbConn, pii: &Pii, m: NewMessage<'_>, now: DateTime<Utc>) -> Result<bool, DbError> {
    enqueue_row(conn, &message(pii, m, now))
}

/// The row [`enqueue`] writes for a message, sealed, for a caller that writes it together
/// with its application ([`crate::app_write`]).
pub fn message(pii: &Pii, m: NewMessage<'_>, now: DateTime<Utc>) -> OutboxRow {
    let kind = if m.channel == "email" { Kind::Email } else { Kind::Mobile };
    OutboxRow {
        id: crate::new_id(),
        channel: m.channel.to_owned(),
        recipient_enc: pii.seal(kind, m.recipient),
        recipient_hint: m.recipient_hint,
        template: m.template.to_owned(),
        params_enc: pii.seal(Kind::Secret, &m.params.to_string()),
        lang: m.lang.to_owned(),
        status: Status::Queued.as_str().into(),
        attempts: 0,
        next_attempt_at: now.naive_utc(),
        claimed_until: None,
        provider_id: None,
        last_error: None,
        application_id: m.application_id.cloned(),
        dedupe_key: m.dedupe_key,
        created_at: now.naive_utc(),
        updated_at: now.naive_utc(),
        sent_at: None,
        claim_token: None,
    }
}

/// Queues a message built by [`message`]; `false` when its dedupe key was already queued.
pub fn enqueue_row(conn: &mut DbConn, row: &OutboxRow) -> Result<bool, DbError> {
    // `ON CONFLICT DO NOTHING` rather than catching the violation: on PostgreSQL a failed
    // insert would abort the caller's whole transaction.
    let inserted = match conn {
        DbConn::Pg(c) => diesel::insert_into(outbox::table)
            .values(row.clone())
            .on_conflict(outbox::dedupe_key)
            .do_nothing()
            .prepared()
            .execute(c)?,
        DbConn::Sqlite(c) => diesel::insert_into(outbox::table)
            .values(row.clone())
            .on_conflict(outbox::dedupe_key)
            .do_nothing()
            .prepared()
            .execute(c)?,
    };
    Ok(inserted > 0)
}

/// Messages about an application, oldest first.
pub fn for_application(conn: &mut DbConn, application_id: &ApplicationId) -> Result<Vec<OutboxRow>, DbError> {
    outbox::table
        .filter(outbox::application_id.eq(application_id.as_str()))
        .order(outbox::created_at.asc())
        .select(OutboxRow::as_select())
        .load(conn)
        .map_err(DbError::from)
}

/// Claims up to `limit` due messages for one worker: `queued` or `failed_temporary` ones
/// whose time has come, and `sending` ones whose claim ran out (their worker died). They
/// become `sending` until `lease_until`. For a `sending` row `next_attempt_at` mirrors
/// `claimed_until`, so one condition (and the partial index `outbox_due`) finds them all.
///
/// No two workers get the same row: on PostgreSQL the rows are locked with
/// `FOR UPDATE SKIP LOCKED` (a concurrent worker skips them) and marked in the same
/// transaction; SQLite has no row locks, so one `UPDATE … WHERE id IN (SELECT … LIMIT n)
/// RETURNING *` runs in an immediate (write-locked) transaction.
pub fn claim_due(
    conn: &mut DbConn,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
    token: &str,
) -> Result<Vec<OutboxRow>, DbError> {
    let (now, lease) = (now.naive_utc(), lease_until.naive_utc());
    // PostgreSQL locks the due rows it picks (`SKIP LOCKED`: a worker claiming at the same
    // moment passes them over) and marks them in the same statement, without a
    // transaction; SQLite has no row locks and runs it under its one writer.
    let lock = if matches!(conn, DbConn::Pg(_)) { " FOR UPDATE SKIP LOCKED" } else { "" };
    // The statuses are those of `Status::DUE`. SQLite numbers `$n` parameters in order of
    // first appearance: keep them in order.
    let claim = format!(
        "UPDATE outbox SET status = 'sending', claimed_until = $1, next_attempt_at = $1, updated_at = $2, \
         claim_token = $3 \
         WHERE id IN (SELECT id FROM outbox \
             WHERE status IN ('queued', 'failed_temporary', 'sending') AND next_attempt_at <= $2 \
             ORDER BY next_attempt_at LIMIT $4{lock}) \
         RETURNING *"
    );
    let mut rows = crate::db::single_write(conn, |conn| {
        diesel::sql_query(claim)
            .bind::<Timestamp, _>(lease)
            .bind::<Timestamp, _>(now)
            .bind::<Text, _>(token)
            .bind::<BigInt, _>(limit)
            .prepared()
            .load::<OutboxRow>(conn)
            .map_err(DbError::from)
    })?;
    // Oldest first (`RETURNING` keeps no order).
    rows.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(rows)
}

/// Pushes the end of a live worker's claim to `lease_until` (for the rows it still owns).
/// Returns how many rows it still owns.
pub fn renew_claim(conn: &mut DbConn, token: &str, lease_until: DateTime<Utc>) -> Result<usize, DbError> {
    let lease = lease_until.naive_utc();
    crate::db::single_write(conn, |conn| {
        diesel::update(
            outbox::table.filter(outbox::claim_token.eq(token)).filter(outbox::status.eq(Status::Sending.as_str())),
        )
        .set((outbox::claimed_until.eq(Some(lease)), outbox::next_attempt_at.eq(lease)))
        .prepared()
        .execute(conn)
        .map_err(DbError::from)
    })
}

/// What an attempt to deliver a claimed message led to.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub status: Status,
    pub attempts: i32,
    pub retry_at: Option<DateTime<Utc>>,
    pub provider_id: Option<String>,
    /// Without personal identifiers (providers' answers, not the message).
    pub error: Option<String>,
}

/// Records the attempt on a message this worker still owns. Returns `false` when the claim
/// was lost (it ran out and another worker took the message over): then nothing changes.
/// One statement (on PostgreSQL without a transaction).
pub fn finish(conn: &mut DbConn, row: &OutboxRow, d: &Delivered, now: DateTime<Utc>) -> Result<bool, DbError> {
    finish_then(conn, row, d, now, None::<fn(&mut DbConn) -> Result<(), DbError>>)
}

/// [`finish`], with `then` (when there is one) run in the same transaction when the
/// outcome was recorded: what a message's fate changes elsewhere (an e-folder account whose
/// credentials never arrived) is written with it or not at all.
pub fn finish_then(
    conn: &mut DbConn,
    row: &OutboxRow,
    d: &Delivered,
    now: DateTime<Utc>,
    then: Option<impl FnOnce(&mut DbConn) -> Result<(), DbError>>,
) -> Result<bool, DbError> {
    let now_naive = now.naive_utc();
    let next = d.retry_at.map_or(now_naive, |t| t.naive_utc());
    let sent_at = (d.status == Status::Sent).then_some(now_naive);
    let error = d.error.as_ref().map(|e| e.chars().take(500).collect::<String>());
    // Credentials and one-time codes are not kept once delivered (or given up), not even
    // sealed: erased by the statement that records the outcome, only if it does.
    let over = matches!(d.status, Status::Sent | Status::FailedPermanent);
    let erase = over && ERASED_WHEN_SENT.contains(&row.template.as_str());
    let record = |conn: &mut DbConn| -> Result<bool, DbError> {
        let changed = diesel::update(
            outbox::table
                .filter(outbox::id.eq(&row.id))
                .filter(outbox::status.eq(Status::Sending.as_str()))
                .filter(outbox::claim_token.eq(&row.claim_token)),
        )
        .set((
            outbox::claim_token.eq(None::<String>),
            outbox::status.eq(d.status.as_str()),
            outbox::attempts.eq(d.attempts),
            outbox::next_attempt_at.eq(next),
            outbox::claimed_until.eq(None::<NaiveDateTime>),
            outbox::provider_id.eq(&d.provider_id),
            outbox::last_error.eq(error),
            outbox::sent_at.eq(sent_at),
            outbox::updated_at.eq(now_naive),
            outbox::params_enc.eq(diesel::dsl::sql::<Text>("CASE WHEN ")
                .bind::<diesel::sql_types::Bool, _>(erase)
                .sql(" THEN '' ELSE params_enc END")),
        ))
        .prepared()
        .execute(conn)?;
        Ok(changed == 1)
    };
    match then {
        None => crate::db::single_write(conn, record),
        Some(then) => write_tx(conn, |conn| {
            let kept = record(conn)?;
            if kept {
                then(conn)?;
            }
            Ok(kept)
        }),
    }
}

/// Templates whose parameters are secrets (a generated password, a reset code).
pub const ERASED_WHEN_SENT: [&str; 2] = ["efolder_credentials", "efolder_reset_code"];

/// Filters for the admin listing.
#[derive(Debug, Clone, Default)]
pub struct OutboxFilter {
    pub status: Option<String>,
    pub channel: Option<String>,
    pub template: Option<String>,
    pub application_id: Option<String>,
    /// Messages older than this id (the cursor; ids are time-ordered UUIDv7).
    pub before_id: Option<String>,
}

/// Messages, newest first.
pub fn list(conn: &mut DbConn, f: &OutboxFilter, limit: i64) -> Result<Vec<OutboxRow>, DbError> {
    let mut q = outbox::table.select(OutboxRow::as_select()).into_boxed();
    if let Some(v) = &f.status {
        q = q.filter(outbox::status.eq(v.clone()));
    }
    if let Some(v) = &f.channel {
        q = q.filter(outbox::channel.eq(v.clone()));
    }
    if let Some(v) = &f.template {
        q = q.filter(outbox::template.eq(v.clone()));
    }
    if let Some(v) = &f.application_id {
        q = q.filter(outbox::application_id.eq(v.clone()));
    }
    if let Some(v) = &f.before_id {
        q = q.filter(outbox::id.lt(v.clone()));
    }
    q.order(outbox::id.desc()).limit(limit).load(conn).map_err(DbError::from)
}
