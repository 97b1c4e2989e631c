//! The sandbox civil registry's table (a stand-in for an outside system, so it keeps
//! clear values), and the sandbox mobile-ownership pairs.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use domain::calendar::JalaliDate;
use domain::ids::NationalId;
use domain::person::{Gender, PersonName};
use domain::ports::RegistryRecord;

use crate::db::{DbConn, write_tx};
use crate::error::DbError;
use crate::schema::{registry_people, sandbox_mobile_owners};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = registry_people)]
pub struct PersonRow {
    pub national_id: String,
    pub serial: String,
    pub first_name: String,
    pub last_name: String,
    pub father_name: String,
    pub mother_name: String,
    pub gender: String,
    pub birth_date_jalali: String,
    pub alive: bool,
    pub serial_changed_at: Option<NaiveDateTime>,
    pub mobile: Option<String>,
}

impl PersonRow {
    pub fn to_record(&self) -> Result<RegistryRecord, DbError> {
        let bad = |what: &str| DbError::Internal(format!("registry_people holds an invalid {what}"));
        Ok(RegistryRecord {
            national_id: NationalId::parse(&self.national_id).map_err(|_| bad("national_id"))?,
            serial: self.serial.clone(),
            first_name: PersonName::parse(&self.first_name).map_err(|_| bad("first_name"))?,
            last_name: PersonName::parse(&self.last_name).map_err(|_| bad("last_name"))?,
            father_name: PersonName::parse(&self.father_name).map_err(|_| bad("father_name"))?,
            mother_name: PersonName::parse(&self.mother_name).map_err(|_| bad("mother_name"))?,
            gender: Gender::parse(&self.gender).ok_or_else(|| bad("gender"))?,
            birth_date: JalaliDate::parse(&self.birth_date_jalali).map_err(|_| bad("birth_date_jalali"))?,
            alive: self.alive,
            serial_changed_at: self.serial_changed_at.map(|t| t.and_utc()),
        })
    }
}

pub fn find(conn: &mut DbConn, national_id: &str) -> Result<Option<PersonRow>, DbError> {
    registry_people::table
        .find(national_id)
        .select(PersonRow::as_select())
        .first(conn)
        .optional()
        .map_err(DbError::from)
}

pub fn count(conn: &mut DbConn) -> Result<i64, DbError> {
    registry_people::table.count().get_result(conn).map_err(DbError::from)
}

/// Inserts people in batches, skipping any already present (idempotent).
pub fn insert_people(conn: &mut DbConn, people: &[PersonRow]) -> Result<usize, DbError> {
    let mut inserted = 0;
    write_tx(conn, |conn| {
        for chunk in people.chunks(500) {
            inserted += match conn {
                DbConn::Pg(c) => {
                    diesel::insert_into(registry_people::table).values(chunk).on_conflict_do_nothing().execute(c)?
                }
                DbConn::Sqlite(c) => diesel::insert_or_ignore_into(registry_people::table).values(chunk).execute(c)?,
            };
        }
        Ok::<_, DbError>(())
    })?;
    Ok(inserted)
}

/// Inserts mobile-ownership pairs, skipping existing ones.
pub fn insert_owners(conn: &mut DbConn, pairs: &[(String, String)]) -> Result<usize, DbError> {
    let rows: Vec<_> = pairs
        .iter()
        .map(|(m, n)| (sandbox_mobile_owners::mobile.eq(m.as_str()), sandbox_mobile_owners::national_id.eq(n.as_str())))
        .collect();
    let mut inserted = 0;
    write_tx(conn, |conn| {
        for chunk in rows.chunks(500) {
            inserted += match conn {
                DbConn::Pg(c) => diesel::insert_into(sandbox_mobile_owners::table)
                    .values(chunk)
                    .on_conflict_do_nothing()
                    .execute(c)?,
                DbConn::Sqlite(c) => {
                    diesel::insert_or_ignore_into(sandbox_mobile_owners::table).values(chunk).execute(c)?
                }
            };
        }
        Ok::<_, DbError>(())
    })?;
    Ok(inserted)
}

/// Whether a mobile is registered to a national code (the sandbox ownership service).
pub fn owns(conn: &mut DbConn, mobile: &str, national_id: &str) -> Result<bool, DbError> {
    let n: i64 = sandbox_mobile_owners::table
        .filter(sandbox_mobile_owners::mobile.eq(mobile))
        .filter(sandbox_mobile_owners::national_id.eq(national_id))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Replaces a person's serial, as a registry does when a birth certificate is reissued.
pub fn change_serial(conn: &mut DbConn, national_id: &str, serial: &str, at: DateTime<Utc>) -> Result<(), DbError> {
    diesel::update(registry_people::table.find(national_id))
        .set((registry_people::serial.eq(serial), registry_people::serial_changed_at.eq(Some(at.naive_utc()))))
        .execute(conn)
        .map(|_| ())
        .map_err(DbError::from)
}
