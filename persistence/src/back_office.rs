//! Enrollment records, production events, machine clients and idempotency keys.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use domain::record_ids::{ApplicationId, ClientId, OfficeId};

use crate::db::DbConn;
use crate::error::DbError;
use crate::nullable_id::NullableText;
use crate::schema::{clients, enrollments, idempotency_keys, production_events};

// ---------------------------------------------------------------- enrollments

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = enrollments, treat_none_as_null = true)]
pub struct EnrollmentRow {
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub application_id: ApplicationId,
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub office_id: OfficeId,
    pub postal_code_enc: String,
    pub address_enc: String,
    /// Sealed (`Kind::Secret`), like the postal code and address.
    pub landline_enc: String,
    pub documents_checked: bool,
    /// `captured` or `exception`.
    pub fingerprints: String,
    /// `captured` or `exception`.
    pub face: String,
    /// Sealed (`Kind::Secret`): it may describe the citizen's body.
    pub exception_note_enc: Option<String>,
    /// The capture system's reference (no raw biometrics are kept here).
    pub capture_reference: String,
    pub counter_fee: i64,
    pub completed_by: String,
    pub completed_at: NaiveDateTime,
    pub delivered_by: Option<String>,
    pub delivered_at: Option<NaiveDateTime>,
    #[diesel(deserialize_as = NullableText, serialize_as = NullableText)]
    pub delivery_office_id: Option<OfficeId>,
    pub delivery_fee: Option<i64>,
    /// The names in Latin letters as the office entered them, sealed (`Kind::Personal`):
    /// `{"first_name": …, "last_name": …}`.
    pub latin_names_enc: Option<String>,
}

pub fn insert_enrollment(conn: &mut DbConn, row: &EnrollmentRow) -> Result<(), DbError> {
    diesel::insert_into(enrollments::table).values(row.clone()).execute(conn).map(|_| ()).map_err(DbError::from)
}

pub fn enrollment(conn: &mut DbConn, application_id: &ApplicationId) -> Result<Option<EnrollmentRow>, DbError> {
    enrollments::table
        .find(application_id.as_str())
        .select(EnrollmentRow::as_select())
        .first(conn)
        .optional()
        .map_err(DbError::from)
}

pub fn record_delivery(
    conn: &mut DbConn,
    application_id: &ApplicationId,
    by: &str,
    office_id: &OfficeId,
    fee: Option<i64>,
    at: DateTime<Utc>,
) -> Result<(), DbError> {
    diesel::update(enrollments::table.find(application_id.as_str()))
        .set((
            enrollments::delivered_by.eq(Some(by)),
            enrollments::delivered_at.eq(Some(at.naive_utc())),
            enrollments::delivery_office_id.eq(Some(office_id.as_str())),
            enrollments::delivery_fee.eq(fee),
        ))
        .execute(conn)
        .map(|_| ())
        .map_err(DbError::from)
}

// ---------------------------------------------------------------- production events

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = production_events)]
pub struct ProductionEventRow {
    pub event_id: String,
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub application_id: ApplicationId,
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub client_id: ClientId,
    pub kind: String,
    #[diesel(deserialize_as = NullableText, serialize_as = NullableText)]
    pub office_id: Option<OfficeId>,
    pub note: Option<String>,
    pub result_state: String,
    pub received_at: NaiveDateTime,
}

pub fn production_event(conn: &mut DbConn, event_id: &str) -> Result<Option<ProductionEventRow>, DbError> {
    production_events::table
        .find(event_id)
        .select(ProductionEventRow::as_select())
        .first(conn)
        .optional()
        .map_err(DbError::from)
}

pub fn insert_production_event(conn: &mut DbConn, row: &ProductionEventRow) -> Result<(), DbError> {
    diesel::insert_into(production_events::table).values(row.clone()).execute(conn).map(|_| ()).map_err(DbError::from)
}

pub fn production_events_of(
    conn: &mut DbConn,
    application_id: &ApplicationId,
) -> Result<Vec<ProductionEventRow>, DbError> {
    production_events::table
        .filter(production_events::application_id.eq(application_id.as_str()))
        .order(production_events::received_at.asc())
        .select(ProductionEventRow::as_select())
        .load(conn)
        .map_err(DbError::from)
}

// ---------------------------------------------------------------- machine clients

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = clients, treat_none_as_null = true)]
pub struct ClientRow {
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub client_id: ClientId,
    pub name: String,
    /// `kiosk` or `production`.
    pub kind: String,
    /// SHA-256 of the (high-entropy, generated) secret.
    pub secret_hash: String,
    /// Space-separated scopes.
    pub scopes: String,
    #[diesel(deserialize_as = NullableText, serialize_as = NullableText)]
    pub office_id: Option<OfficeId>,
    pub disabled: bool,
    pub rate_per_minute: i32,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// Carried by its tokens; bumped when the secret is rotated or the client disabled.
    pub token_version: i32,
}

pub fn client(conn: &mut DbConn, client_id: &ClientId) -> Result<Option<ClientRow>, DbError> {
    clients::table.find(client_id.as_str()).select(ClientRow::as_select()).first(conn).optional().map_err(DbError::from)
}

pub fn insert_client(conn: &mut DbConn, row: &ClientRow) -> Result<(), DbError> {
    diesel::insert_into(clients::table).values(row.clone()).execute(conn).map(|_| ()).map_err(DbError::from)
}

pub fn update_client(conn: &mut DbConn, row: &ClientRow) -> Result<(), DbError> {
    diesel::update(clients::table.find(row.client_id.as_str()))
        .set(row.clone())
        .execute(conn)
        .map(|_| ())
        .map_err(DbError::from)
}

pub fn list_clients(conn: &mut DbConn, after: Option<&str>, limit: i64) -> Result<Vec<ClientRow>, DbError> {
    let mut q = clients::table.select(ClientRow::as_select()).into_boxed();
    if let Some(a) = after {
        q = q.filter(clients::client_id.gt(a.to_owned()));
    }
    q.order(clients::client_id.asc()).limit(limit).load(conn).map_err(DbError::from)
}

// ---------------------------------------------------------------- idempotency keys

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = idempotency_keys)]
pub struct IdempotencyRow {
    pub scope: String,
    pub key: String,
    pub request_hash: String,
    /// `in_progress` or `done`.
    pub status: String,
    pub response_status: Option<i32>,
    pub response_body: Option<String>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

/// Claims a key for a new request. `Ok(None)`: claimed; `Ok(Some(row))`: the key exists
/// (compare hashes, replay or wait). An abandoned in-progress claim (older than
/// `stale_after`) is taken over, and so is an expired key.
///
/// Safe when identical requests race, on one instance or several: the insert does
/// nothing when the key exists (on PostgreSQL it waits for a concurrent claimer's
/// transaction and then does nothing), so exactly one request claims it; a take-over is a
/// conditional update that one request wins. Never a duplicate-key error.
pub fn claim_key(
    conn: &mut DbConn,
    row: &IdempotencyRow,
    stale_after: chrono::Duration,
) -> Result<Option<IdempotencyRow>, DbError> {
    crate::db::write_tx(conn, |conn| {
        loop {
            let inserted = match conn {
                DbConn::Pg(c) => {
                    diesel::insert_into(idempotency_keys::table).values(row).on_conflict_do_nothing().execute(c)?
                }
                DbConn::Sqlite(c) => {
                    diesel::insert_into(idempotency_keys::table).values(row).on_conflict_do_nothing().execute(c)?
                }
            };
            if inserted == 1 {
                return Ok(None);
            }
            let this = idempotency_keys::table.find((&row.scope, &row.key));
            let expired = diesel::update(this.filter(idempotency_keys::expires_at.lt(row.created_at)))
                .set((
                    idempotency_keys::request_hash.eq(&row.request_hash),
                    idempotency_keys::status.eq(&row.status),
                    idempotency_keys::response_status.eq(None::<i32>),
                    idempotency_keys::response_body.eq(None::<String>),
                    idempotency_keys::created_at.eq(row.created_at),
                    idempotency_keys::expires_at.eq(row.expires_at),
                ))
                .execute(conn)?;
            if expired == 1 {
                return Ok(None);
            }
            let abandoned = diesel::update(
                this.filter(idempotency_keys::status.eq("in_progress"))
                    .filter(idempotency_keys::request_hash.eq(&row.request_hash))
                    .filter(idempotency_keys::created_at.lt(row.created_at - stale_after)),
            )
            .set(idempotency_keys::created_at.eq(row.created_at))
            .execute(conn)?;
            if abandoned == 1 {
                return Ok(None);
            }
            // Gone since the insert (its request failed and released it): claim it again.
            if let Some(existing) = this.select(IdempotencyRow::as_select()).first(conn).optional()? {
                return Ok(Some(existing));
            }
        }
    })
}

pub fn finish_key(conn: &mut DbConn, scope: &str, key: &str, status: i32, body: &str) -> Result<(), DbError> {
    diesel::update(idempotency_keys::table.find((scope, key)))
        .set((
            idempotency_keys::status.eq("done"),
            idempotency_keys::response_status.eq(Some(status)),
            idempotency_keys::response_body.eq(Some(body)),
        ))
        .execute(conn)
        .map(|_| ())
        .map_err(DbError::from)
}

/// Forgets a claim whose request had no effect (it failed before changing anything).
pub fn release_key(conn: &mut DbConn, scope: &str, key: &str) -> Result<(), DbError> {
    diesel::delete(idempotency_keys::table.find((scope, key))).execute(conn).map(|_| ()).map_err(DbError::from)
}

pub fn purge_keys(conn: &mut DbConn, now: DateTime<Utc>) -> Result<usize, DbError> {
    diesel::delete(idempotency_keys::table.filter(idempotency_keys::expires_at.lt(now.naive_utc())))
        .execute(conn)
        .map_err(DbError::from)
}

/// Enrollments of these applications (any order).
pub fn enrollments(conn: &mut DbConn, application_ids: &[ApplicationId]) -> Result<Vec<EnrollmentRow>, DbError> {
    enrollments::table
        .filter(
            enrollments::application_id.eq_any(application_ids.iter().map(ApplicationId::as_str).collect::<Vec<_>>()),
        )
        .select(EnrollmentRow::as_select())
        .load(conn)
        .map_err(DbError::from)
}

/// The names in Latin letters an office entered at completion.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct LatinNames {
    pub first_name: String,
    pub last_name: String,
}

impl LatinNames {
    pub fn seal(&self, pii: &crate::Pii) -> String {
        pii.seal(crate::PiiKind::Personal, &serde_json::to_string(self).expect("plain fields serialise"))
    }

    pub fn open(pii: &crate::Pii, sealed: &str) -> Result<Self, DbError> {
        serde_json::from_str(&pii.open(crate::PiiKind::Personal, sealed)?)
            .map_err(|e| DbError::Internal(format!("an enrollment's Latin names do not parse: {e}")))
    }
}
