//! Staff accounts: operators and administrators.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use domain::record_ids::{OfficeId, StaffId};

use crate::db::{DbConn, write_tx};
use crate::error::DbError;
use crate::nullable_id::NullableText;
use crate::schema::staff_users;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = staff_users)]
pub struct StaffUser {
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub id: StaffId,
    pub username: String,
    pub password_hash: String,
    pub role: String,
    #[diesel(deserialize_as = NullableText, serialize_as = NullableText)]
    pub office_id: Option<OfficeId>,
    pub disabled: bool,
    pub failed_attempts: i32,
    pub locked_until: Option<NaiveDateTime>,
    pub token_version: i32,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Creates `admin` with the given password hash when no administrator exists yet.
/// Returns whether it was created.
pub fn bootstrap_admin(conn: &mut DbConn, password_hash: &str, now: NaiveDateTime) -> Result<bool, DbError> {
    write_tx(conn, |conn| {
        let admins: i64 = staff_users::table.filter(staff_users::role.eq("admin")).count().get_result(conn)?;
        if admins > 0 {
            return Ok(false);
        }
        let user = StaffUser {
            id: crate::new_id(),
            username: "admin".into(),
            password_hash: password_hash.into(),
            role: "admin".into(),
            office_id: None,
            disabled: false,
            failed_attempts: 0,
            locked_until: None,
            token_version: 0,
            created_at: now,
            updated_at: now,
        };
        // Instances starting together on a new database race here: the username is
        // unique, so one creates the administrator and the others find it made.
        let inserted = match conn {
            DbConn::Pg(c) => {
                diesel::insert_into(staff_users::table).values(user.clone()).on_conflict_do_nothing().execute(c)?
            }
            DbConn::Sqlite(c) => {
                diesel::insert_into(staff_users::table).values(user.clone()).on_conflict_do_nothing().execute(c)?
            }
        };
        Ok(inserted == 1)
    })
}

pub fn find_by_username(conn: &mut DbConn, username: &str) -> Result<Option<StaffUser>, DbError> {
    staff_users::table
        .filter(staff_users::username.eq(username))
        .select(StaffUser::as_select())
        .first(conn)
        .optional()
        .map_err(DbError::from)
}

pub fn find(conn: &mut DbConn, id: &StaffId) -> Result<Option<StaffUser>, DbError> {
    staff_users::table.find(id.as_str()).select(StaffUser::as_select()).first(conn).optional().map_err(DbError::from)
}

pub fn record_success(conn: &mut DbConn, id: &StaffId, now: NaiveDateTime) -> Result<(), DbError> {
    diesel::update(staff_users::table.find(id.as_str()))
        .set((
            staff_users::failed_attempts.eq(0),
            staff_users::locked_until.eq(None::<NaiveDateTime>),
            staff_users::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
        .map_err(DbError::from)
}

pub fn insert(conn: &mut DbConn, user: &StaffUser) -> Result<(), DbError> {
    diesel::insert_into(staff_users::table).values(user.clone()).execute(conn).map(|_| ()).map_err(DbError::from)
}

/// Staff by username order, after a cursor.
pub fn list(conn: &mut DbConn, after_username: Option<&str>, limit: i64) -> Result<Vec<StaffUser>, DbError> {
    let mut q = staff_users::table.select(StaffUser::as_select()).into_boxed();
    if let Some(a) = after_username {
        q = q.filter(staff_users::username.gt(a.to_owned()));
    }
    q.order(staff_users::username.asc()).limit(limit).load(conn).map_err(DbError::from)
}

/// Disables or enables an account; disabling bumps the token version so its tokens stop at once.
pub fn set_disabled(conn: &mut DbConn, id: &StaffId, disabled: bool, now: NaiveDateTime) -> Result<bool, DbError> {
    let n = diesel::update(staff_users::table.find(id.as_str()))
        .set((
            staff_users::disabled.eq(disabled),
            staff_users::token_version.eq(staff_users::token_version + 1),
            staff_users::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// Sets a new password hash; old tokens stop working (token version bumped).
pub fn reset_password(conn: &mut DbConn, id: &StaffId, hash: &str, now: NaiveDateTime) -> Result<bool, DbError> {
    let n = diesel::update(staff_users::table.find(id.as_str()))
        .set((
            staff_users::password_hash.eq(hash),
            staff_users::token_version.eq(staff_users::token_version + 1),
            staff_users::failed_attempts.eq(0),
            staff_users::locked_until.eq(None::<NaiveDateTime>),
            staff_users::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(n == 1)
}
