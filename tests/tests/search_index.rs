//! A city's search answered from the ranked index (docs/decisions/0014-indexed-search.md)
//! is exactly `domain::offices::rank` over the same shifts: the same rows in the same
//! order, the same total, page by page — with ties, full and closed shifts, shifts with no
//! capacity and inactive offices, and after seats, closures, capacity, new and removed
//! slots change. Black-box on SQLite and PostgreSQL.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use domain::offices::{Facilities, Shift, ShiftSeats, rank, rank_key};
use ncr_tests::{TestApp, db_test};
use serde_json::Value;

const CITY: &str = "0991";
const OTHER_CITY: &str = "0992";
const PROVINCE: &str = "استان آزمون";

/// One shift of the test's city: what the database holds, as the test wrote it.
#[derive(Debug, Clone)]
struct Seats {
    capacity: i32,
    taken: i32,
    closed: bool,
}

/// The test's own copy of its city: office id → (active, shifts).
type Model = BTreeMap<String, (bool, BTreeMap<Shift, Seats>)>;

/// Office ids whose byte order differs from a dictionary's (case, dashes, digits).
fn office_ids() -> Vec<String> {
    let mut ids: Vec<String> = ["s-B", "s-a", "s_c", "s-10", "s-9", "S-z", "s-a-1", "s-a1", "s-Ab", "s-ab"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    ids.extend((0..26).map(|i| format!("srch-{i:02}")));
    ids
}

/// A small deterministic generator (the same data on both databases).
struct Lcg(u64);
impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn sql_bool(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

async fn insert_office(app: &TestApp, id: &str, city_code: &str, active: bool) {
    app.exec_sql(&format!(
        "INSERT INTO offices (id, code, name, kind, province, city, city_code, phone, address, step_free_access,
             eye_exception_capture, fingerprint_exception_capture, home_visits, active, created_at, updated_at)
         VALUES ('{id}', 'code-{id}', 'دفتر {id}', 'government_counter', '{PROVINCE}', 'شهر آزمون', '{city_code}',
             '55{:06}', 'نشانی', false, false, false, false, {}, '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
        id.len() * 1000 + id.bytes().map(usize::from).sum::<usize>(),
        sql_bool(active)
    ))
    .await;
}

async fn insert_slot(app: &TestApp, id: &str, city_code: &str, date: NaiveDate, shift: Shift, s: &Seats) {
    app.exec_sql(&format!(
        "INSERT INTO slots (office_id, date, shift, capacity, taken, closed, city_code)
         VALUES ('{id}', '{date}', '{}', {}, {}, {}, '{city_code}')",
        shift.as_str(),
        s.capacity,
        s.taken,
        sql_bool(s.closed)
    ))
    .await;
}

/// (office id, shift, approved, free, free %) in the order `rank` gives them.
fn expected(model: &Model) -> Vec<(String, String, u64, u64, u64)> {
    let seats = model
        .iter()
        .filter(|(_, (active, _))| *active)
        .flat_map(|(id, (_, shifts))| {
            shifts.iter().map(move |(shift, s)| {
                let approved = if s.closed { 0 } else { s.capacity as u32 };
                ShiftSeats {
                    office_id: id.clone(),
                    office_phone: String::new(),
                    facilities: Facilities::default(),
                    shift: *shift,
                    approved,
                    free: approved.saturating_sub(s.taken as u32),
                }
            })
        })
        .collect();
    rank(seats, None, None)
        .into_iter()
        .map(|r| {
            let percent = u64::from(r.seats.free_percent());
            (
                r.seats.office_id,
                r.seats.shift.as_str().to_owned(),
                u64::from(r.seats.approved),
                u64::from(r.seats.free),
                percent,
            )
        })
        .collect()
}

fn row(v: &Value) -> (String, String, u64, u64, u64) {
    (
        v["office"]["id"].as_str().unwrap().to_owned(),
        v["shift"].as_str().unwrap().to_owned(),
        v["approved"].as_u64().unwrap(),
        v["free"].as_u64().unwrap(),
        v["free_percent"].as_u64().unwrap(),
    )
}

/// Searches answered from the ranked index, or by ranking the whole scope in memory.
fn searches(app: &TestApp, how: &str) -> u64 {
    let text = app.state.metrics.render();
    let label = format!("outcome=\"{how}\"");
    text.lines()
        .find(|l| l.contains("events_total{") && l.contains("kind=\"search\"") && l.contains(&label))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

/// The whole list in one page, then page by page through the cursor: both are `rank`'s,
/// and every one of these searches was answered from the index.
async fn assert_same_as_rank(app: &TestApp, date: NaiveDate, model: &Model, when: &str) {
    let want = expected(model);
    assert!(want.len() > 10, "{when}: a list worth paging");
    let base = format!("/api/v1/offices/availability?date={date}&city_code={CITY}");
    // The same city within its province is ranked in memory, as every search was before.
    let (status, ranked_here) = app.get(&format!("{base}&province={PROVINCE}&limit=100"), None).await;
    assert_eq!(status, 200, "{when}: {ranked_here}");
    let here: Vec<_> = ranked_here["items"].as_array().unwrap().iter().map(row).collect();
    assert_eq!((here, ranked_here["total"].as_u64()), (want.clone(), Some(want.len() as u64)), "{when}: in memory");
    let in_memory = searches(app, "ranked_in_memory");
    let from_index = searches(app, "ranked_index");
    let (status, all) = app.get(&format!("{base}&limit=100"), None).await;
    assert_eq!(status, 200, "{when}: {all}");
    let got: Vec<_> = all["items"].as_array().unwrap().iter().map(row).collect();
    assert_eq!(got, want, "{when}: one page");
    assert_eq!(all["total"].as_u64(), Some(want.len() as u64), "{when}: total");
    for limit in [1, 3, 7] {
        let mut paged = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let after = cursor.as_ref().map(|c| format!("&cursor={c}")).unwrap_or_default();
            let (status, page) = app.get(&format!("{base}&limit={limit}{after}"), None).await;
            assert_eq!(status, 200, "{when}: {page}");
            assert_eq!(page["total"].as_u64(), Some(want.len() as u64), "{when}: total of a page");
            paged.extend(page["items"].as_array().unwrap().iter().map(row));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(paged, want, "{when}: pages of {limit}");
    }
    // Past the end: no rows, the same total.
    let (_, past) = app.get(&format!("{base}&limit=5&cursor={}", want.len() + 3), None).await;
    assert_eq!((past["items"].as_array().map(Vec::len), past["total"].as_u64()), (Some(0), Some(want.len() as u64)));
    assert_eq!(searches(app, "ranked_in_memory"), in_memory, "{when}: no search ranked the city in memory");
    assert!(searches(app, "ranked_index") > from_index + 10, "{when}: the index answered");
    assert_stored_keys_and_counts(app).await;
}

/// Every slot's stored key is `domain::offices::rank_key` of its seats, and every city's
/// count of ranked shifts per date is what its slots say.
async fn assert_stored_keys_and_counts(app: &TestApp) {
    let db = app.state.db.clone();
    let slots = tokio::task::spawn_blocking(move || {
        use diesel::prelude::*;
        use persistence::schema::slots::dsl as s;
        s::slots
            .select((s::capacity, s::taken, s::closed, s::rank_key))
            .load::<(i32, i32, bool, Option<i64>)>(&mut db.get().expect("conn"))
            .expect("slots")
    })
    .await
    .expect("join");
    assert!(!slots.is_empty());
    for (capacity, taken, closed, key) in slots {
        let approved = if closed { 0 } else { u32::try_from(capacity).unwrap_or(0) };
        let free = approved.saturating_sub(u32::try_from(taken).unwrap_or(0));
        assert_eq!(key, rank_key(approved, free), "capacity {capacity}, taken {taken}, closed {closed}");
    }
    assert_eq!(app.slot_counts_off().await, (0, 0), "slot_counts agrees with the slots");
}

db_test!(the_ranked_index_answers_exactly_as_rank_does, |app| {
    let date = app.open_date("021-TEH-01", 2).await;
    let next_day = date.succ_opt().unwrap();
    let mut rng = Lcg(0x005E_A7C4);
    // Few distinct capacities and takens: many equal ratios, equal free seats, full shifts.
    let capacities = [0, 1, 2, 3, 4, 6, 10, 20, 1000];
    let mut model = Model::new();
    for (i, id) in office_ids().into_iter().enumerate() {
        let active = i % 9 != 4;
        insert_office(&app, &id, CITY, active).await;
        let mut shifts = BTreeMap::new();
        for shift in Shift::ALL {
            let capacity = capacities[rng.below(capacities.len() as u64) as usize];
            let taken = match rng.below(4) {
                0 => 0,
                1 => capacity,
                _ => rng.below(capacity as u64 + 1) as i32,
            };
            let s = Seats { capacity, taken, closed: capacity == 0 || rng.below(7) == 0 };
            insert_slot(&app, &id, CITY, date, shift, &s).await;
            shifts.insert(shift, s);
        }
        model.insert(id, (active, shifts));
    }
    // Identical offices: only the id and the shift order them.
    for id in ["s-tie-2", "s-tie-1", "s-tie-10"] {
        insert_office(&app, id, CITY, true).await;
        let mut shifts = BTreeMap::new();
        for shift in Shift::ALL {
            let s = Seats { capacity: 20, taken: 10, closed: false };
            insert_slot(&app, id, CITY, date, shift, &s).await;
            shifts.insert(shift, s);
        }
        model.insert(id.to_owned(), (true, shifts));
    }
    // Another city the same day and this city another day: never in the list.
    insert_office(&app, "o-other", OTHER_CITY, true).await;
    let open = Seats { capacity: 50, taken: 0, closed: false };
    insert_slot(&app, "o-other", OTHER_CITY, date, Shift::Morning, &open).await;
    insert_slot(&app, "srch-00", CITY, next_day, Shift::Morning, &open).await;
    assert_same_as_rank(&app, date, &model, "as seeded").await;

    // Seats taken and given back, shifts closed, opened and resized, an office closed
    // for good and another opened: the list follows.
    let mut changed = 0;
    for (id, (_, shifts)) in model.iter_mut() {
        for (shift, s) in shifts.iter_mut() {
            let (capacity, taken, closed) = match rng.below(6) {
                0 if s.taken < s.capacity => (s.capacity, s.taken + 1, s.closed),
                1 if s.taken > 0 => (s.capacity, s.taken - 1, s.closed),
                2 => (s.capacity, s.taken, !s.closed && s.capacity > 0 || s.capacity == 0),
                3 => (s.capacity.max(s.taken) + 3, s.taken, false),
                4 => (s.taken, s.taken, s.taken == 0),
                _ => continue,
            };
            app.exec_sql(&format!(
                "UPDATE slots SET capacity = {capacity}, taken = {taken}, closed = {} \
                 WHERE office_id = '{id}' AND date = '{date}' AND shift = '{}'",
                sql_bool(closed),
                shift.as_str()
            ))
            .await;
            *s = Seats { capacity, taken, closed };
            changed += 1;
        }
    }
    assert!(changed > 10, "{changed}");
    app.exec_sql("UPDATE offices SET active = false WHERE id = 's-tie-1'").await;
    model.get_mut("s-tie-1").unwrap().0 = false;
    app.exec_sql("UPDATE offices SET active = true WHERE id = 'srch-04'").await;
    model.get_mut("srch-04").unwrap().0 = true;
    assert_same_as_rank(&app, date, &model, "after changes").await;

    // A slot removed, a new office's slots added (the nightly job), a holiday closing the city.
    app.exec_sql(&format!("DELETE FROM slots WHERE office_id = 's-tie-2' AND date = '{date}' AND shift = 'morning'"))
        .await;
    model.get_mut("s-tie-2").unwrap().1.remove(&Shift::Morning);
    insert_office(&app, "s-new", CITY, true).await;
    let mut shifts = BTreeMap::new();
    for (shift, taken) in [(Shift::Morning, 2), (Shift::Afternoon, 0)] {
        let s = Seats { capacity: 4, taken, closed: false };
        insert_slot(&app, "s-new", CITY, date, shift, &s).await;
        shifts.insert(shift, s);
    }
    model.insert("s-new".to_owned(), (true, shifts));
    assert_same_as_rank(&app, date, &model, "after a removal and a new office").await;
    app.exec_sql(&format!("UPDATE slots SET closed = true WHERE date = '{date}' AND city_code = '{CITY}'")).await;
    let base = format!("/api/v1/offices/availability?date={date}&city_code={CITY}");
    let (_, none) = app.get(&base, None).await;
    assert_eq!((none["items"].as_array().map(Vec::len), none["total"].as_u64()), (Some(0), Some(0)), "{none}");
    assert_stored_keys_and_counts(&app).await;
});
