//! The journey's writes are kept prepared (issue 21, `persistence::prepared`): diesel never
//! caches an `UPDATE`, an upsert, an insert with a nullable column or raw SQL, so
//! PostgreSQL parsed and planned each of them on every run. Marked statements are prepared
//! once per connection; `Prepared::execute` counts changed rows exactly as diesel's
//! `execute` does (a versioned update that matches nothing is `Stale`), on both databases.

use api::seed::offices::MARAGHEH_OFFICE_ID as MARAGHEH;
use api::seed::population::SAMPLE;
use diesel::prelude::*;
use domain::offices::Shift;
use domain::record_ids::OfficeId;
use ncr_tests::db_test;
use ncr_tests::journey::Person;
use persistence::app_write::{self, Along};
use persistence::audit::{self, Actor};
use persistence::prepared::KeepPrepared;
use persistence::schema::{applications as apps, sessions};
use persistence::{DbConn, DbError, applications, offices};

#[derive(QueryableByName, Debug)]
struct Statement {
    #[diesel(sql_type = diesel::sql_types::Text)]
    statement: String,
}

/// The statements prepared on this connection (PostgreSQL).
fn prepared_on(conn: &mut DbConn) -> Vec<String> {
    diesel::sql_query("SELECT statement FROM pg_prepared_statements")
        .load::<Statement>(conn)
        .expect("pg_prepared_statements")
        .into_iter()
        .map(|s| s.statement)
        .collect()
}

db_test!(the_journeys_writes_are_prepared_once_per_connection_and_count_rows_as_execute_does, |app| {
    let date = app.open_date(MARAGHEH, 2).await;
    app.draft(&Person::from(&SAMPLE)).await;
    let now = app.clock_now();
    let mut pooled = app.state.db.get().unwrap();
    let conn: &mut DbConn = &mut pooled;
    let id: String = apps::table.select(apps::id).first(conn).unwrap();
    let mut row = applications::find(conn, &id.into()).unwrap().unwrap();
    let office = OfficeId::from(MARAGHEH);
    let taken = offices::slot(conn, &office, date, Shift::Morning).unwrap().unwrap().taken;

    // Each write twice (kept under its text: the second run reuses it).
    for _ in 0..2 {
        applications::update(conn, &mut row, now).unwrap();
        offices::take_seat(conn, &office, date, Shift::Morning).unwrap();
        offices::release_seat(conn, &office, date, Shift::Morning).unwrap();
        let entry = audit::entry(&Actor::system(), "test_prepared", Some(&row.id), None, now);
        app_write::save(conn, &mut row, Along { audit: vec![entry], ..Along::default() }, now).unwrap();
    }
    // Rows counted as `execute` counts them: a stale version matches nothing.
    let mut stale = row.clone();
    stale.version -= 1;
    assert!(matches!(applications::update(conn, &mut stale, now), Err(DbError::Stale)));
    assert_eq!(stale.version, row.version - 1, "a stale update leaves the version read");
    let changed = diesel::update(
        sessions::table.filter(sessions::subject.eq(row.citizen_id.as_str())).filter(sessions::ended_at.is_null()),
    )
    .set(sessions::ended_at.eq(now.naive_utc()))
    .prepared()
    .execute(conn)
    .unwrap();
    assert_eq!(changed, 1, "the draft's one session ended");
    let again = diesel::update(
        sessions::table.filter(sessions::subject.eq(row.citizen_id.as_str())).filter(sessions::ended_at.is_null()),
    )
    .set(sessions::ended_at.eq(now.naive_utc()))
    .prepared()
    .execute(conn)
    .unwrap();
    assert_eq!(again, 0);
    assert_eq!(offices::slot(conn, &office, date, Shift::Morning).unwrap().unwrap().taken, taken, "taken and released");

    if matches!(conn, DbConn::Pg(_)) {
        let prepared = prepared_on(conn);
        for start in [
            r#"UPDATE "applications" SET "citizen_id""#,
            r#"UPDATE "slots" SET "taken" = ("slots"."taken" + $1)"#,
            r#"UPDATE "slots" SET "taken" = ("slots"."taken" - $1)"#,
            "WITH app AS (UPDATE \"applications\"",
            r#"UPDATE "sessions" SET "ended_at""#,
        ] {
            assert!(
                prepared.iter().any(|s| s.starts_with(start)),
                "{start}… is prepared on this connection; prepared: {prepared:#?}"
            );
        }
    }
});
