//! Applications carried over from the old Portal: which old id became which application,
//! and a keyed digest of the row it came from, so a re-run of the same file changes
//! nothing and a changed row is told apart.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use domain::record_ids::ApplicationId;

use crate::db::DbConn;
use crate::error::DbError;
use crate::schema::legacy_imports;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = legacy_imports)]
pub struct LegacyRow {
    pub legacy_id: String,
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub application_id: ApplicationId,
    /// A keyed HMAC of the imported row (never the row itself).
    pub row_digest: String,
    pub imported_at: NaiveDateTime,
}

pub fn find(conn: &mut DbConn, legacy_id: &str) -> Result<Option<LegacyRow>, DbError> {
    legacy_imports::table.find(legacy_id).select(LegacyRow::as_select()).first(conn).optional().map_err(DbError::from)
}

pub fn insert(
    conn: &mut DbConn,
    legacy_id: &str,
    application_id: &ApplicationId,
    row_digest: &str,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let row = LegacyRow {
        legacy_id: legacy_id.to_owned(),
        application_id: application_id.clone(),
        row_digest: row_digest.to_owned(),
        imported_at: now.naive_utc(),
    };
    diesel::insert_into(legacy_imports::table).values(row).execute(conn).map(|_| ()).map_err(DbError::from)
}
