//! Administrators' statistics over a date range: registrations per day, payments settled
//! and verified, appointments missed and attended, and seats taken over approved capacity
//! per city and shift. Read-only; the counts that have no diesel query of their own are
//! plain SQL, portable across both backends.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::QueryableByName;
use diesel::prelude::*;
use diesel::sql_types::{Date, Text, Timestamp};
use domain::application::AppointmentStatus;
use domain::payment::PaymentStatus;

use crate::db::DbConn;
use crate::error::DbError;

/// The counts of one date range (both ends included, Tehran dates).
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// Applications that paid (registered), per Tehran day, in date order.
    pub registrations_per_day: Vec<(NaiveDate, i64)>,
    pub payments_settled: i64,
    pub payments_verified: i64,
    pub appointments_missed: i64,
    pub appointments_attended: i64,
    /// Seats over approved capacity of open slots, by city code and shift.
    pub utilisation: Vec<UtilRow>,
}

#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct UtilRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub city_code: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub shift: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub capacity: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub taken: i64,
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// The statistics from `from` to `to`.
pub fn between(conn: &mut DbConn, from: NaiveDate, to: NaiveDate) -> Result<Stats, DbError> {
    let start = from.and_hms_opt(0, 0, 0).expect("midnight");
    let end = (to + chrono::Duration::days(1)).and_hms_opt(0, 0, 0).expect("midnight");
    let paid: Vec<NaiveDateTime> = {
        use crate::schema::applications::dsl as a;
        a::applications
            .filter(a::paid_at.ge(start))
            .filter(a::paid_at.lt(end))
            .select(a::paid_at.assume_not_null())
            .load(conn)?
    };
    let mut per_day = std::collections::BTreeMap::new();
    for t in paid {
        *per_day.entry(domain::calendar::tehran_date(t.and_utc())).or_insert(0i64) += 1;
    }
    let settled = {
        let rows: Vec<CountRow> =
            diesel::sql_query("SELECT COUNT(*) AS n FROM payments WHERE settled_at >= $1 AND settled_at < $2")
                .bind::<Timestamp, _>(start)
                .bind::<Timestamp, _>(end)
                .load(conn)?;
        rows.first().map_or(0, |r| r.n)
    };
    let verified = {
        let rows: Vec<CountRow> = diesel::sql_query(
            "SELECT COUNT(*) AS n FROM payments WHERE settled_at >= $1 AND settled_at < $2 AND status = $3",
        )
        .bind::<Timestamp, _>(start)
        .bind::<Timestamp, _>(end)
        .bind::<Text, _>(PaymentStatus::Verified.as_str())
        .load(conn)?;
        rows.first().map_or(0, |r| r.n)
    };
    let day_count = |conn: &mut DbConn, status: AppointmentStatus| -> Result<i64, DbError> {
        let rows: Vec<CountRow> = diesel::sql_query(
            "SELECT COUNT(*) AS n FROM applications WHERE slot_date >= $1 AND slot_date <= $2 AND appointment_status = $3",
        )
        .bind::<Date, _>(from)
        .bind::<Date, _>(to)
        .bind::<Text, _>(status.as_str())
        .load(conn)?;
        Ok(rows.first().map_or(0, |r| r.n))
    };
    let missed = day_count(conn, AppointmentStatus::Missed)?;
    let attended = day_count(conn, AppointmentStatus::Used)?;
    let utilisation: Vec<UtilRow> = diesel::sql_query(
        "SELECT o.city_code AS city_code, s.shift AS shift, CAST(SUM(s.capacity) AS BIGINT) AS capacity,
                CAST(SUM(s.taken) AS BIGINT) AS taken
           FROM slots s JOIN offices o ON o.id = s.office_id
          WHERE s.date >= $1 AND s.date <= $2 AND s.closed = $3
          GROUP BY o.city_code, s.shift ORDER BY o.city_code, s.shift",
    )
    .bind::<Date, _>(from)
    .bind::<Date, _>(to)
    .bind::<diesel::sql_types::Bool, _>(false)
    .load(conn)?;
    Ok(Stats {
        registrations_per_day: per_day.into_iter().collect(),
        payments_settled: settled,
        payments_verified: verified,
        appointments_missed: missed,
        appointments_attended: attended,
        utilisation,
    })
}
