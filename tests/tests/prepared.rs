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
    // The sandbox phone's store (every journey's SMS): a second hand-over of one message
    // (its local id again) inserts nothing and answers the first one's id.
    let pii = app.state.pii.clone();
    let sms = |conn: &mut DbConn, local_id: &str| {
        persistence::sandbox_messages::store_sms(conn, &pii, "09121234567", "کد رهگیری", Some(local_id), now).unwrap()
    };
    let first = sms(conn, "4242");
    assert_eq!(sms(conn, "4242"), first, "the same message handed over twice is one");
    assert_ne!(sms(conn, "4243"), first, "another message is another");

    if matches!(conn, DbConn::Pg(_)) {
        let prepared = prepared_on(conn);
        for start in [
            r#"UPDATE "applications" SET "citizen_id""#,
            r#"UPDATE "slots" SET "taken" = ("slots"."taken" + $1)"#,
            r#"UPDATE "slots" SET "taken" = ("slots"."taken" - $1)"#,
            "WITH app AS (UPDATE \"applications\"",
            r#"UPDATE "sessions" SET "ended_at""#,
            r#"INSERT INTO "sandbox_sms""#,
        ] {
            assert!(
                prepared.iter().any(|s| s.starts_with(start)),
                "{start}… is prepared on this connection; prepared: {prepared:#?}"
            );
        }
    }
});

#[derive(QueryableByName, Debug)]
struct Plans {
    #[diesel(sql_type = diesel::sql_types::Text)]
    statement: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    generic_plans: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    custom_plans: i64,
}

db_test!(the_journeys_hot_reads_keep_one_plan_instead_of_being_planned_on_every_run, |app| {
    // PostgreSQL plans a prepared statement for its parameters five times, then keeps a
    // generic plan unless it looks dearer. A limit, an offset or an array bound as a
    // parameter made it look dearer for the reads every citizen request makes (the
    // application with the session, newest cycle first), the first page of a search and a
    // right guess given back: each was planned again on every run, the planner taking
    // longer than the execution (`persistence::prepared::LimitOne`).
    let date = app.open_date(MARAGHEH, 2).await;
    app.draft(&Person::from(&SAMPLE)).await;
    let mut pooled = app.state.db.get().unwrap();
    let conn: &mut DbConn = &mut pooled;
    if !matches!(conn, DbConn::Pg(_)) {
        return; // SQLite has no plan cache to keep.
    }
    let (sid, subject): (String, String) = sessions::table
        .filter(sessions::ended_at.is_null())
        .select((sessions::id, sessions::subject))
        .first(conn)
        .unwrap();
    let city: String = persistence::schema::offices::table
        .find(MARAGHEH)
        .select(persistence::schema::offices::city_code)
        .first(conn)
        .unwrap();
    let now = app.clock_now().naive_utc();
    let claim = || persistence::sessions::Claim { id: &sid, audience: "citizen", subject: &subject, now };
    let citizen = domain::record_ids::CitizenId::from(subject.clone());
    let none = std::collections::HashSet::new();
    // The guess counters at the size of a busy day (PostgreSQL's estimates follow it).
    diesel::sql_query(
        "INSERT INTO attempt_counts (key, window_start, hits, updated_at) \
         SELECT 'entry:client:' || g, now(), 1, now() FROM generate_series(1, 30000) AS g",
    )
    .execute(conn)
    .unwrap();
    diesel::sql_query("ANALYZE attempt_counts").execute(conn).unwrap();
    let nid_hash: String = apps::table.select(apps::nid_hash).first(conn).unwrap();
    const RUNS: i64 = 8;
    for _ in 0..RUNS {
        for lock in [false, true] {
            let read = persistence::sessions::current_application(conn, claim(), lock).unwrap();
            assert!(matches!(read, persistence::sessions::Checked::Live { found: Some(_), .. }), "{read:?}");
        }
        assert!(applications::current_for_citizen(conn, &citizen).unwrap().is_some());
        assert!(applications::current_for_citizen_locked(conn, &citizen).unwrap().is_some());
        offices::ranked_page(conn, date, &city, &none, 0, 20).unwrap().expect("a page");
        persistence::attempts::give_back(conn, &["guess:client:x", "guess:subject:y"], now, "guess:pair:z").unwrap();
        // A status lookup: the national code's applications (one lookup value per key), their offices.
        assert_eq!(applications::find_by_nid(conn, std::slice::from_ref(&nid_hash)).unwrap().len(), 1);
        assert_eq!(offices::find_many(conn, &[OfficeId::from(MARAGHEH), OfficeId::from("none")]).unwrap().len(), 1);
    }
    let plans: Vec<Plans> =
        diesel::sql_query("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements")
            .load(conn)
            .unwrap();
    let ran = |s: &&Plans| s.generic_plans + s.custom_plans >= RUNS;
    for (what, needle) in [
        ("the application read with the session", r#"FROM "sessions""#),
        ("the application read alone", r#"FROM "applications" WHERE ("applications"."citizen_id" = $1)"#),
        ("a search's first page", "FROM slots"),
        ("a guess given back", "WITH uncounted AS"),
        ("a status lookup's applications", r#"WHERE ("applications"."nid_hash" = $1)"#),
        ("a status lookup's offices", r#"WHERE (("offices"."id" = $1)"#),
    ] {
        let found: Vec<&Plans> = plans.iter().filter(ran).filter(|s| s.statement.contains(needle)).collect();
        assert!(!found.is_empty(), "{what}: run {RUNS} times on this connection; prepared: {plans:#?}");
        for s in found {
            assert!(
                s.generic_plans > 0,
                "{what} is planned on every run ({} custom plans, no generic one): {}",
                s.custom_plans,
                s.statement
            );
        }
    }
    // The search's first page and the give-back carry their limit and their keys in a form
    // PostgreSQL plans once whatever the table's statistics say.
    for s in plans.iter().filter(ran) {
        if s.statement.contains("FROM slots") {
            assert!(s.statement.contains("LIMIT 20") && !s.statement.contains("OFFSET"), "{}", s.statement);
        }
        if s.statement.contains("WITH uncounted AS") {
            assert!(!s.statement.contains("ANY("), "{}", s.statement);
        }
    }
    // A test database's few rows make PostgreSQL estimate one application per citizen, and
    // a bound limit is then harmless; at national scale (the bench's data set) it was not.
    // So the reads of a citizen's newest application must carry their limit in the text.
    let newest = |s: &&Plans| {
        s.statement.contains(r#"WHERE ("applications"."citizen_id" = $"#)
            && s.statement.contains(r#"ORDER BY "applications"."cycle" DESC"#)
    };
    for s in plans.iter().filter(ran).filter(newest) {
        assert!(
            s.statement.trim_end().ends_with("LIMIT 1"),
            "the newest application is read with `LIMIT 1` in the statement's text: {}",
            s.statement
        );
    }
});
