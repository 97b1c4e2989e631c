//! The demo data (`ncr seed-demo`) as every test database holds it: the sample citizen and
//! the documented personas, a valid and varied synthetic population, the demo offices with
//! their slots, determinism and idempotence — on SQLite and PostgreSQL.

use std::collections::HashSet;

use api::seed::offices::{MARAGHEH_OFFICE_ID, OFFICES, SLOT_DAYS};
use api::seed::population::{
    self, DECEASED, LEAP_ESFAND, MALE, MINOR, PERSONAS, RELATIVE_MOBILE, SAMPLE, SERIAL_CHANGED,
};
use chrono::{Datelike, Duration, Weekday};
use diesel::prelude::*;
use domain::calendar::{JalaliDate, age_in_full_years, tehran_date};
use domain::ids::NationalId;
use ncr_tests::{db_test, t0};
use persistence::DbConn;
use persistence::offices::SlotRow;
use persistence::registry::PersonRow;
use persistence::schema::{holidays, office_capacity, offices, registry_people, sandbox_mobile_owners, slots};

fn counts(conn: &mut DbConn) -> Vec<i64> {
    vec![
        registry_people::table.count().get_result(conn).unwrap(),
        sandbox_mobile_owners::table.count().get_result(conn).unwrap(),
        offices::table.count().get_result(conn).unwrap(),
        office_capacity::table.count().get_result(conn).unwrap(),
        holidays::table.count().get_result(conn).unwrap(),
        slots::table.count().get_result(conn).unwrap(),
    ]
}

db_test!(demo_data_is_complete_deterministic_and_idempotent, |app| {
    let state = app.state.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = state.db.get().unwrap();
        let conn: &mut DbConn = &mut conn;
        assert!(!api::seed::is_empty(&state).unwrap());

        // The seed's sample citizen, exactly.
        let sample = persistence::registry::find(conn, "2580200606").unwrap().expect("the sample citizen");
        assert_eq!(sample.serial, "883810");
        assert_eq!(sample.gender, "female");
        assert_eq!(sample.birth_date_jalali, "1369-03-19");
        assert_eq!(
            (sample.first_name.as_str(), sample.last_name.as_str(), sample.father_name.as_str()),
            ("مریم", "احمدی", "علی")
        );
        assert_eq!(sample.mother_name, "شهرزاد");
        assert_eq!(sample.mobile.as_deref(), Some("09145128136"));
        assert!(sample.alive);
        assert_eq!(sample.serial_changed_at, None);
        assert_eq!(SAMPLE.national_id, "2580200606");
        assert!(persistence::registry::owns(conn, "09145128136", "2580200606").unwrap());

        // The personas.
        for p in &PERSONAS {
            let row = persistence::registry::find(conn, p.national_id).unwrap().expect("persona");
            assert_eq!((row.serial.as_str(), row.birth_date_jalali.as_str()), (p.serial, p.birth_date));
            assert_eq!(row.alive, p.alive);
            assert_eq!(row.mobile.as_deref(), p.mobile);
        }
        let today = JalaliDate::from_gregorian(tehran_date(t0())).unwrap();
        assert_eq!(age_in_full_years(JalaliDate::parse(MINOR.birth_date).unwrap(), today), 14);
        assert!(!persistence::registry::find(conn, DECEASED.national_id).unwrap().unwrap().alive);
        let changed = persistence::registry::find(conn, SERIAL_CHANGED.national_id).unwrap().unwrap();
        assert_eq!(t0() - changed.serial_changed_at.unwrap().and_utc(), Duration::hours(10));
        assert_eq!(LEAP_ESFAND.birth_date, "1387-12-30");
        assert_eq!(MALE.gender.as_str(), "male");
        assert!(!persistence::registry::owns(conn, "09124567890", RELATIVE_MOBILE.national_id).unwrap());
        assert!(persistence::registry::owns(conn, "09124567890", MALE.national_id).unwrap());

        // The synthetic population.
        let people: Vec<PersonRow> = registry_people::table
            .order(registry_people::national_id)
            .select(PersonRow::as_select())
            .load(conn)
            .unwrap();
        assert!(people.len() >= 5_000, "{} people", people.len());
        let (mut dead, mut minors, mut esfand30, mut recent) = (0, 0, 0, 0);
        for p in &people {
            assert!(NationalId::parse(&p.national_id).is_ok(), "{} is not a valid national code", p.national_id);
            let birth = JalaliDate::parse(&p.birth_date_jalali).unwrap();
            dead += usize::from(!p.alive);
            minors += usize::from(age_in_full_years(birth, today) < 15);
            esfand30 += usize::from(birth.month() == 12 && birth.day() == 30);
            recent += usize::from(p.serial_changed_at.is_some_and(|at| t0() - at.and_utc() < Duration::hours(48)));
        }
        assert!(dead >= 1 && minors >= 1 && esfand30 >= 1 && recent >= 1, "{dead} {minors} {esfand30} {recent}");

        // Determinism: the stored people are exactly what the generator makes for this clock.
        let mut expected = population::generate(t0()).people;
        expected.sort_by(|a, b| a.national_id.cmp(&b.national_id));
        assert_eq!(population::digest(&people), population::digest(&expected));

        // The Maragheh office of the original guide's example.
        let maragheh = persistence::offices::find(conn, &MARAGHEH_OFFICE_ID.into()).unwrap().expect("Maragheh");
        assert_eq!(maragheh.name, "اداره ثبت احوال مراغه");
        assert_eq!((maragheh.city.as_str(), maragheh.city_code.as_str()), ("مراغه", "041"));
        assert_eq!(maragheh.phone, "11222226");
        assert_eq!(maragheh.address, "مراغه - خ پاسداران - اداره ثبت احوال مراغه");
        assert_eq!(maragheh.kind, "civil_registry");
        assert!(maragheh.step_free_access && maragheh.active);
        let cities: HashSet<String> = offices::table.select(offices::city).load(conn).unwrap().into_iter().collect();
        assert!(cities.len() >= 6);

        // Slots: tomorrow to 90 days ahead; Fridays and Thursday afternoons closed.
        let first = tehran_date(t0()) + Duration::days(1);
        let last = tehran_date(t0()) + Duration::days(SLOT_DAYS);
        let all: Vec<SlotRow> = slots::table.select(SlotRow::as_select()).load(conn).unwrap();
        assert_eq!(all.len(), OFFICES.len() * SLOT_DAYS as usize * 2);
        assert!(all.iter().all(|s| s.date >= first && s.date <= last && s.taken == 0));
        let holidays = persistence::offices::holidays_between(conn, first, last).unwrap();
        assert!(!holidays.is_empty());
        for s in &all {
            let weekday = s.date.weekday();
            if weekday == Weekday::Fri || (weekday == Weekday::Thu && s.shift == "afternoon") {
                assert!(s.closed && s.capacity == 0, "{s:?}");
            } else if holidays.contains(&s.date) {
                assert!(s.closed, "{s:?}");
            } else {
                assert!(!s.closed && s.capacity >= 1, "{s:?}");
            }
        }
        assert!(all.iter().any(|s| s.date.weekday() == Weekday::Fri));

        // A second run adds nothing.
        let before = counts(conn);
        let summary = api::seed::seed_demo(&state).unwrap();
        assert!(summary.contains("added 0 of 5000 people, 0 of"), "{summary}");
        assert!(summary.contains(" 0 holidays, 0 slots"), "{summary}");
        assert_eq!(counts(conn), before);
    })
    .await
    .unwrap();
});
