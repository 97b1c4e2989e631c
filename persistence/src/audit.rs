//! The audit log: who (citizen, kiosk, operator, admin, system) did what to which
//! application, when, under which request. Append-only — this module has no update or
//! delete, and nothing else writes the table but [`crate::app_write`], which inserts the
//! entries built here together with their application's update.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use domain::record_ids::ApplicationId;

use crate::db::DbConn;
use crate::error::DbError;
use crate::nullable_id::NullableText;
use crate::prepared::KeepPrepared;
use crate::schema::audit_log;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_log)]
pub struct AuditRow {
    pub id: String,
    pub at: NaiveDateTime,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub action: String,
    #[diesel(deserialize_as = NullableText, serialize_as = NullableText)]
    pub application_id: Option<ApplicationId>,
    pub request_id: Option<String>,
    /// JSON without personal identifiers.
    pub details: Option<String>,
    /// The caller's address (behind a load balancer: the client's, see `trusted_proxies`).
    pub client_ip: Option<String>,
}

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub kind: &'static str,
    pub id: Option<String>,
    pub request_id: Option<String>,
    pub client_ip: Option<String>,
}

impl Actor {
    pub fn system() -> Self {
        Self { kind: "system", id: None, request_id: None, client_ip: None }
    }
}

pub fn append(
    conn: &mut DbConn,
    actor: &Actor,
    action: &str,
    application_id: Option<&ApplicationId>,
    details: Option<serde_json::Value>,
    at: DateTime<Utc>,
) -> Result<(), DbError> {
    let row = entry(actor, action, application_id, details, at);
    // Inside [`deferring`], the entry waits to be written with the change it records.
    let kept = DEFERRED.with(|d| d.borrow_mut().as_mut().map(|rows| rows.push(row.clone())).is_some());
    if kept { Ok(()) } else { insert(conn, &row) }
}

thread_local! {
    /// The entries [`append`] keeps while [`deferring`] runs on this thread.
    static DEFERRED: std::cell::RefCell<Option<Vec<AuditRow>>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` with every [`append`] on this thread kept instead of written, and returns
/// them with `f`'s result: the caller writes them in the same transaction, with the change
/// they record, in one statement where it can ([`crate::app_write::save`]). Entries of an
/// `f` that fails are dropped with the transaction it was part of. Nested calls keep their
/// own entries.
pub fn deferring<T>(f: impl FnOnce() -> T) -> (T, Vec<AuditRow>) {
    /// Puts back what was deferred before, also when `f` panics.
    struct Restore(Option<Option<Vec<AuditRow>>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(before) = self.0.take() {
                DEFERRED.with(|d| *d.borrow_mut() = before);
            }
        }
    }
    let restore = Restore(Some(DEFERRED.with(|d| d.borrow_mut().replace(Vec::new()))));
    let out = f();
    let rows = DEFERRED.with(|d| d.borrow_mut().take()).unwrap_or_default();
    drop(restore);
    (out, rows)
}

/// Writes an entry built by [`entry`].
pub fn insert(conn: &mut DbConn, row: &AuditRow) -> Result<(), DbError> {
    diesel::insert_into(audit_log::table)
        .values(row.clone())
        .prepared()
        .execute(conn)
        .map(|_| ())
        .map_err(DbError::from)
}

/// The entry [`append`] writes, for a caller that writes it together with its
/// application ([`crate::app_write`]).
pub fn entry(
    actor: &Actor,
    action: &str,
    application_id: Option<&ApplicationId>,
    details: Option<serde_json::Value>,
    at: DateTime<Utc>,
) -> AuditRow {
    AuditRow {
        id: crate::new_id(),
        at: at.naive_utc(),
        actor_kind: actor.kind.to_owned(),
        actor_id: actor.id.clone(),
        action: action.to_owned(),
        application_id: application_id.cloned(),
        request_id: actor.request_id.clone(),
        details: details.map(|d| d.to_string()),
        client_ip: actor.client_ip.clone(),
    }
}

/// Filters for listing.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub application_id: Option<String>,
    pub actor_kind: Option<String>,
    pub action: Option<String>,
    pub from: Option<NaiveDateTime>,
    pub to: Option<NaiveDateTime>,
    /// Entries with an id below this (ids are time-ordered): the cursor.
    pub before_id: Option<String>,
}

/// Newest first, `limit` entries.
pub fn list(conn: &mut DbConn, f: &AuditFilter, limit: i64) -> Result<Vec<AuditRow>, DbError> {
    let mut q = audit_log::table.select(AuditRow::as_select()).into_boxed();
    if let Some(a) = &f.application_id {
        q = q.filter(audit_log::application_id.eq(a.clone()));
    }
    if let Some(k) = &f.actor_kind {
        q = q.filter(audit_log::actor_kind.eq(k.clone()));
    }
    if let Some(a) = &f.action {
        q = q.filter(audit_log::action.eq(a.clone()));
    }
    if let Some(t) = f.from {
        q = q.filter(audit_log::at.ge(t));
    }
    if let Some(t) = f.to {
        q = q.filter(audit_log::at.lt(t));
    }
    if let Some(c) = &f.before_id {
        q = q.filter(audit_log::id.lt(c.clone()));
    }
    q.order(audit_log::id.desc()).limit(limit).load(conn).map_err(DbError::from)
}
