//! The one optimistic save for versioned rows (payments and refunds): the row's `version`
//! is bumped and `updated_at` set, the caller's update is conditioned on the version that
//! was read, and if it touched no row somebody else saved first (`Stale`, and the row keeps
//! the version it was read with).

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::QueryResult;

use crate::db::DbConn;
use crate::error::DbError;

pub(crate) trait Versioned {
    fn version(&mut self) -> &mut i32;
    fn updated_at(&mut self) -> &mut NaiveDateTime;
}

/// `write(conn, row, version_read)` must update the row only where its version is still
/// `version_read`, and return how many rows it updated.
pub(crate) fn save<R: Versioned>(
    conn: &mut DbConn,
    row: &mut R,
    now: DateTime<Utc>,
    write: impl FnOnce(&mut DbConn, &R, i32) -> QueryResult<usize>,
) -> Result<(), DbError> {
    let read = *row.version();
    *row.version() += 1;
    *row.updated_at() = now.naive_utc();
    match write(conn, row, read) {
        Ok(1) => Ok(()),
        other => {
            *row.version() = read;
            other?;
            Err(DbError::Stale)
        }
    }
}

macro_rules! versioned {
    ($row:ty) => {
        impl $crate::versioned::Versioned for $row {
            fn version(&mut self) -> &mut i32 {
                &mut self.version
            }
            fn updated_at(&mut self) -> &mut chrono::NaiveDateTime {
                &mut self.updated_at
            }
        }
    };
}
pub(crate) use versioned;
