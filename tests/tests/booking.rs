//! Offices, availability, holds and bookings that never oversell (docs/domain/application.md),
//! black-box on SQLite and PostgreSQL.

use api::seed::offices::MARAGHEH_OFFICE_ID as MARAGHEH;
use api::seed::population::{MALE, SAMPLE};
use chrono::Duration;
use futures_util::future::join_all;
use ncr_tests::journey::{Person, eligible_people};
use ncr_tests::{TestApp, db_test};
use serde_json::json;

/// Seats taken in every slot from today on equal the holds and bookings pointing at it
/// (a past no-show's seat stays spent).
async fn assert_counters_agree(app: &TestApp) {
    let today = domain::calendar::tehran_date(app.clock_now());
    let mismatched = app
        .count_sql(&format!(
            "SELECT COUNT(*) AS n FROM slots s WHERE s.date >= '{today}' AND s.taken <> (SELECT COUNT(*) FROM applications a
               WHERE a.slot_office_id = s.office_id AND a.slot_date = s.date AND a.slot_shift = s.shift
                 AND a.appointment_status IN ('held', 'booked'))"
        ))
        .await;
    assert_eq!(mismatched, 0, "slot counters disagree with the applications");
    // The search's count of ranked shifts per city and date (docs/decisions/0014-indexed-search.md).
    assert_eq!(app.slot_counts_off().await, (0, 0), "slot_counts disagrees with the slots");
}

db_test!(two_hundred_concurrent_holds_for_twenty_seats, |app| {
    let people = eligible_people(&app, 200).await;
    assert_eq!(people.len(), 200);
    let tokens: Vec<String> = join_all(people.chunks(20).map(|chunk| {
        let app = &app;
        async move {
            let mut out = Vec::new();
            for p in chunk {
                out.push(app.draft(p).await);
            }
            out
        }
    }))
    .await
    .into_iter()
    .flatten()
    .collect();
    let date = app.open_date(MARAGHEH, 3).await;
    app.set_slot(MARAGHEH, date, "morning", 20).await;

    let results = join_all(tokens.iter().map(|t| app.hold(t, MARAGHEH, date, "morning"))).await;
    let won = results.iter().filter(|(s, _)| *s == 200).count();
    let full = results.iter().filter(|(s, b)| *s == 409 && b["code"] == "slot_full").count();
    assert_eq!(won, 20, "exactly the free seats are held");
    assert_eq!(
        full,
        180,
        "everyone else is told slot_full: {:?}",
        results.iter().find(|(s, b)| *s != 200 && b["code"] != "slot_full")
    );
    assert_eq!(app.slot_counts(MARAGHEH, date, "morning").await, (20, 20));
    assert_counters_agree(&app).await;
});

db_test!(expired_holds_are_released_exactly_once, |app| {
    let people = eligible_people(&app, 6).await;
    let date = app.open_date(MARAGHEH, 2).await;
    let (_, before) = app.slot_counts(MARAGHEH, date, "afternoon").await;
    let mut tokens = Vec::new();
    for p in &people {
        let t = app.draft(p).await;
        let (status, _) = app.hold(&t, MARAGHEH, date, "afternoon").await;
        assert_eq!(status, 200);
        tokens.push(t);
    }
    assert_eq!(app.slot_counts(MARAGHEH, date, "afternoon").await.1, before + 6);
    app.clock.advance(Duration::minutes(16));
    // Two job runs race (two instances), plus a citizen moving her hold at the same time.
    let state = app.state.clone();
    let (a, b, moved) = tokio::join!(
        api::jobs::release_expired_holds(&state),
        api::jobs::release_expired_holds(&state),
        app.hold(&tokens[0], MARAGHEH, date, "morning"),
    );
    let released = a.unwrap() + b.unwrap();
    assert!(released <= 6, "a hold is released at most once");
    assert_eq!(app.slot_counts(MARAGHEH, date, "afternoon").await.1, before, "every expired seat came back once");
    assert_eq!(moved.0, 200, "{}", moved.1);
    assert_eq!(api::jobs::release_expired_holds(&app.state).await.unwrap(), 0);
    assert_counters_agree(&app).await;
    let (_, view) = app.get("/api/v1/citizen/application", Some(&tokens[1])).await;
    assert_eq!((view["state"].as_str(), view["next_step"].as_str()), (Some("draft"), Some("choose_appointment")));
});

db_test!(concurrent_moves_and_expiry_keep_counters_exact, |app| {
    let people = eligible_people(&app, 12).await;
    let date = app.open_date(MARAGHEH, 4).await;
    let other = app.open_date(MARAGHEH, 6).await;
    app.set_slot(MARAGHEH, date, "morning", 100).await;
    app.set_slot(MARAGHEH, other, "afternoon", 100).await;
    let (_, morning_before) = app.slot_counts(MARAGHEH, date, "morning").await;
    let (_, afternoon_before) = app.slot_counts(MARAGHEH, other, "afternoon").await;
    let mut tokens = Vec::new();
    for p in &people {
        let t = app.draft(p).await;
        let (status, body) = app.hold(&t, MARAGHEH, date, "morning").await;
        assert_eq!(status, 200, "hold: {body}");
        tokens.push(t);
    }
    assert_eq!(app.slot_counts(MARAGHEH, date, "morning").await.1, morning_before + 12, "twelve seats held");
    app.clock.advance(Duration::minutes(16));
    let state = app.state.clone();
    let moves = join_all(tokens.iter().map(|t| app.hold(t, MARAGHEH, other, "afternoon")));
    let (moves, released) = tokio::join!(moves, api::jobs::release_expired_holds(&state));
    released.unwrap();
    // Every citizen moves her (expired) hold; the job releases what is left, and no seat
    // is counted twice or lost.
    for (status, body) in &moves {
        assert_eq!(*status, 200, "move: {body}");
    }
    assert_eq!(app.slot_counts(MARAGHEH, date, "morning").await.1, morning_before, "the old seats came back once");
    assert_eq!(
        app.slot_counts(MARAGHEH, other, "afternoon").await.1,
        afternoon_before + 12,
        "the new seats are taken once each"
    );
    assert_counters_agree(&app).await;
});

db_test!(availability_ranks_by_neighbourhood_then_free_percentage, |app| {
    let date = app.open_date("021-TEH-01", 2).await;
    let (status, body) =
        app.get(&format!("/api/v1/offices/availability?date={date}&city_code=021&phone=22711234"), None).await;
    assert_eq!(status, 200, "{body}");
    let rows = body["items"].as_array().unwrap();
    assert!(rows.len() >= 4, "{body}");
    assert_eq!(body["filtered_by_special_needs"], false);
    // Nearest neighbourhood first, then by free percentage within it.
    for pair in rows.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let (ca, cb) = (a["closeness"].as_u64().unwrap(), b["closeness"].as_u64().unwrap());
        assert!(ca >= cb, "closeness order");
        if ca == cb {
            let ra = a["free"].as_f64().unwrap() / a["approved"].as_f64().unwrap();
            let rb = b["free"].as_f64().unwrap() / b["approved"].as_f64().unwrap();
            assert!(ra >= rb - 1e-9, "free percentage order: {a} then {b}");
        }
    }
    assert_eq!(rows[0]["closeness"], 4, "an office of the 2271 exchange comes first");
    // One row per office per shift.
    let mut keys: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r["office"]["id"].as_str().unwrap().into(), r["shift"].as_str().unwrap().into()))
        .collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n);

    // Taking seats lowers a shift's percentage and moves it down the list: the first row
    // of the nearest group gets two seats, one of them held, so it drops below the rows of
    // its group that are still wholly free.
    let nearest = rows[0]["closeness"].as_u64().unwrap();
    let group: Vec<&serde_json::Value> = rows.iter().filter(|r| r["closeness"].as_u64() == Some(nearest)).collect();
    assert!(group.len() >= 2, "the nearest group has several rows: {body}");
    assert!(group.iter().all(|r| r["free"] == r["approved"]), "the demo slots start wholly free: {body}");
    let (first_office, first_shift) =
        (rows[0]["office"]["id"].as_str().unwrap().to_owned(), rows[0]["shift"].as_str().unwrap().to_owned());
    app.set_slot(&first_office, date, &first_shift, 2).await;
    let token = app.draft(&Person::from(&SAMPLE)).await;
    let (status, held) = app.hold(&token, &first_office, date, &first_shift).await;
    assert_eq!(status, 200, "{held}");
    let (_, after) =
        app.get(&format!("/api/v1/offices/availability?date={date}&city_code=021&phone=22711234"), None).await;
    let after = after["items"].as_array().unwrap();
    let position = after
        .iter()
        .position(|r| r["office"]["id"] == first_office.as_str() && r["shift"] == first_shift.as_str())
        .expect("the row is still listed");
    assert_eq!((after[position]["free"].as_u64(), after[position]["approved"].as_u64()), (Some(1), Some(2)));
    let wholly_free: Vec<usize> = (0..after.len())
        .filter(|&i| {
            let r = &after[i];
            r["closeness"].as_u64() == Some(nearest) && r["approved"].as_u64() > Some(0) && r["free"] == r["approved"]
        })
        .collect();
    assert!(!wholly_free.is_empty());
    assert!(
        wholly_free.iter().all(|&i| i < position),
        "the half-full shift (row {position}) comes after every wholly free one of its group {wholly_free:?}: {after:?}"
    );

    let (status, _) = app.get("/api/v1/offices/availability?date=not-a-date&city_code=021", None).await;
    assert_eq!(status, 400);
    let (status, p) = app.get(&format!("/api/v1/offices/availability?date={date}&city_code=021&phone=12"), None).await;
    assert_eq!((status, p["errors"][0]["field"].as_str()), (422, Some("phone")));
});

/// Searches answered from the ranked index, or by ranking the whole scope in memory.
fn searches(app: &TestApp, how: &str) -> u64 {
    let label = format!("outcome=\"{how}\"");
    app.state
        .metrics
        .render()
        .lines()
        .find(|l| l.contains("events_total{") && l.contains("kind=\"search\"") && l.contains(&label))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

db_test!(special_needs_filter_the_offices_and_home_visits_get_none, |app| {
    let token = app.draft(&Person::from(&SAMPLE)).await;
    let date = app.open_date(MARAGHEH, 2).await;
    let (_, all) = app.get(&format!("/api/v1/offices/availability?date={date}&city_code=041"), None).await;
    // Typical needs (every office serves them) filter nothing: her list is everyone's,
    // read from the city's ranked index like an anonymous search.
    let (in_memory, from_index) = (searches(&app, "ranked_in_memory"), searches(&app, "ranked_index"));
    let (status, typical) =
        app.get(&format!("/api/v1/offices/availability?date={date}&city_code=041"), Some(&token)).await;
    assert_eq!(status, 200, "{typical}");
    assert_eq!(typical["filtered_by_special_needs"], true, "{typical}");
    assert_eq!(
        (&typical["items"], &typical["total"]),
        (&all["items"], &all["total"]),
        "typical needs: everyone's list"
    );
    assert_eq!(
        (searches(&app, "ranked_in_memory"), searches(&app, "ranked_index")),
        (in_memory, from_index + 1),
        "typical needs: the index answered"
    );
    let (status, _) = app
        .put(
            "/api/v1/citizen/application/special-needs",
            Some(&token),
            &json!({"can_leave_home": true, "can_climb_stairs": false, "pupils_visible": true, "fingers_intact": true}),
        )
        .await;
    assert_eq!(status, 200);
    let res = app
        .http
        .get(app.url(&format!("/api/v1/offices/availability?date={date}&city_code=041")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (_, filtered) = ncr_tests::json(res).await;
    assert_eq!(filtered["filtered_by_special_needs"], true);
    assert_eq!(searches(&app, "ranked_in_memory"), in_memory + 1, "a need some offices fail: ranked in memory");
    let n_all = all["items"].as_array().unwrap().len();
    let n_filtered = filtered["items"].as_array().unwrap().len();
    assert!(n_filtered > 0 && n_filtered < n_all, "{n_filtered} of {n_all}");
    // An office without step-free access is refused for her.
    let stairs_only = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["office"]["id"].as_str().unwrap().to_owned())
        .find(|id| !filtered["items"].as_array().unwrap().iter().any(|r| r["office"]["id"] == id.as_str()))
        .expect("an office without step-free access");
    let (status, p) = app.hold(&token, &stairs_only, date, "morning").await;
    assert_eq!((status, p["code"].as_str()), (422, Some("office_unsuitable")));

    let (status, _) = app
        .put(
            "/api/v1/citizen/application/special-needs",
            Some(&token),
            &json!({"can_leave_home": false, "can_climb_stairs": false, "pupils_visible": true, "fingers_intact": true}),
        )
        .await;
    assert_eq!(status, 200);
    let res = app
        .http
        .get(app.url(&format!("/api/v1/offices/availability?date={date}&city_code=041")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (_, home) = ncr_tests::json(res).await;
    assert_eq!(home["home_visit"], true);
    assert!(home["items"].as_array().unwrap().is_empty());
    let (status, p) = app.hold(&token, MARAGHEH, date, "morning").await;
    assert_eq!((status, p["code"].as_str()), (409, Some("home_visit_required")));
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    // Issue 19: the address to visit comes before the payment.
    assert_eq!(
        (view["home_visit"].as_bool(), view["next_step"].as_str()),
        (Some(true), Some("enter_home_visit_address"))
    );
});

db_test!(dates_must_be_open_and_within_the_horizon, |app| {
    let token = app.draft(&Person::from(&SAMPLE)).await;
    let today = domain::calendar::tehran_date(app.clock_now());
    let (status, p) = app.hold(&token, MARAGHEH, today, "morning").await;
    assert_eq!((status, p["code"].as_str()), (422, Some("date_outside_booking_window")), "not today");
    let (status, p) = app.hold(&token, MARAGHEH, today + Duration::days(61), "morning").await;
    assert_eq!((status, p["code"].as_str()), (422, Some("date_outside_booking_window")), "not past the horizon");
    let (status, _) = app.get(&format!("/api/v1/offices/availability?date={today}&city_code=041"), None).await;
    assert_eq!(status, 422);
    // Fridays are closed.
    let friday = (1..8)
        .map(|d| today + Duration::days(d))
        .find(|d| chrono::Datelike::weekday(d) == chrono::Weekday::Fri)
        .unwrap();
    let (status, p) = app.hold(&token, MARAGHEH, friday, "morning").await;
    assert_eq!((status, p["code"].as_str()), (409, Some("slot_closed")));
    // A national holiday closes every office.
    let holiday = api::seed::offices::HOLIDAYS[0];
    let holiday = chrono::NaiveDate::from_ymd_opt(holiday.0, holiday.1, holiday.2).unwrap();
    if holiday <= today + Duration::days(60) {
        let (status, p) = app.hold(&token, MARAGHEH, holiday, "morning").await;
        assert_eq!((status, p["code"].as_str()), (409, Some("slot_closed")), "holiday {holiday}");
        let (_, list) = app.get(&format!("/api/v1/offices/availability?date={holiday}&city_code=041"), None).await;
        assert!(list["items"].as_array().unwrap().is_empty(), "{list}");
    }
});

db_test!(moving_a_hold_takes_the_new_seat_and_frees_the_old, |app| {
    let token = app.draft(&Person::from(&MALE)).await;
    let d1 = app.open_date(MARAGHEH, 2).await;
    let d2 = app.open_date(MARAGHEH, 5).await;
    let (_, t1) = app.slot_counts(MARAGHEH, d1, "morning").await;
    let (_, t2) = app.slot_counts(MARAGHEH, d2, "afternoon").await;
    let (status, view) = app.hold(&token, MARAGHEH, d1, "morning").await;
    assert_eq!(status, 200);
    assert_eq!(view["state"], "appointment_held");
    assert_eq!(view["next_step"], "pay");
    assert!(view["appointment"]["hold_expires_at"].is_string());
    // Asking again for the same seat keeps it (no second seat, no extension).
    let (status, again) = app.hold(&token, MARAGHEH, d1, "morning").await;
    assert_eq!(status, 200);
    assert_eq!(again["appointment"]["hold_expires_at"], view["appointment"]["hold_expires_at"]);
    assert_eq!(app.slot_counts(MARAGHEH, d1, "morning").await.1, t1 + 1);
    let (status, _) = app.hold(&token, MARAGHEH, d2, "afternoon").await;
    assert_eq!(status, 200);
    assert_eq!(app.slot_counts(MARAGHEH, d1, "morning").await.1, t1);
    assert_eq!(app.slot_counts(MARAGHEH, d2, "afternoon").await.1, t2 + 1);
    assert_counters_agree(&app).await;
});

db_test!(a_no_show_waits_four_days_then_books_again, |app| {
    let date = app.open_date(MARAGHEH, 2).await;
    let (_, location) = app.hold_and_pay(&Person::from(&SAMPLE), MARAGHEH, date, "success").await;
    assert!(location.contains("outcome=success"), "{location}");
    // The shift ends; the job marks the no-show.
    app.clock.set(domain::calendar::tehran_instant(date, 20, 0));
    assert_eq!(api::jobs::mark_no_shows(&app.state).await.unwrap(), 1);
    let token = app.login(SAMPLE.national_id, SAMPLE.serial).await;
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!(view["appointment_status"], "missed");
    let until = date + Duration::days(4);
    assert_eq!(view["no_show_ban_until"], until.to_string());
    assert_eq!(view["next_step"], "wait_for_ban_to_end");
    let later = app.open_date(MARAGHEH, 3).await;
    let (status, p) = app.hold(&token, MARAGHEH, later, "morning").await;
    assert_eq!((status, p["code"].as_str()), (409, Some("no_show_ban_active")));
    // After the ban — even though the date passed without showing up — booking is allowed (docs/domain/application.md).
    app.clock.set(domain::calendar::tehran_instant(until + Duration::days(1), 9, 0));
    let token = app.login(SAMPLE.national_id, SAMPLE.serial).await;
    let next = app.open_date(MARAGHEH, 2).await;
    let (status, view) = app.hold(&token, MARAGHEH, next, "morning").await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["appointment_status"], "booked", "already paid: booked directly");
    assert_counters_agree(&app).await;
});

db_test!(delivery_office_defaults_to_enrollment_office_and_can_change, |app| {
    let date = app.open_date(MARAGHEH, 2).await;
    let (token, _) = app.hold_and_pay(&Person::from(&SAMPLE), MARAGHEH, date, "success").await;
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!(view["delivery_office"]["id"], MARAGHEH);
    let (status, view) =
        app.put("/api/v1/citizen/application/delivery-office", Some(&token), &json!({"office_id": "041-TBZ-01"})).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["delivery_office"]["id"], "041-TBZ-01");
    let (status, p) =
        app.put("/api/v1/citizen/application/delivery-office", Some(&token), &json!({"office_id": "nope"})).await;
    assert_eq!((status, p["code"].as_str()), (404, Some("office_not_found")));
});

// Issue 11: a city of a thousand offices must not be sent whole to a phone.
db_test!(availability_answers_pages_of_the_ranked_list, |app| {
    let date = app.open_date("021-TEH-01", 2).await;
    let base = format!("/api/v1/offices/availability?date={date}&city_code=021&phone=22711234");
    let (status, all) = app.get(&format!("{base}&limit=100"), None).await;
    assert_eq!(status, 200, "{all}");
    let rows = all["items"].as_array().unwrap().clone();
    assert!(rows.len() >= 4, "{all}");
    assert_eq!(all["total"].as_u64(), Some(rows.len() as u64));
    assert!(all["next_cursor"].is_null(), "one page holds everything: no next page: {all}");
    let key = |r: &serde_json::Value| (r["office"]["id"].to_string(), r["shift"].to_string());
    // Page by page, two rows at a time, the same list in the same order (the one page shape).
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let after = cursor.as_ref().map(|c| format!("&cursor={c}")).unwrap_or_default();
        let (status, page) = app.get(&format!("{base}&limit=2{after}"), None).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["total"], all["total"]);
        let items = page["items"].as_array().unwrap();
        assert!(!items.is_empty() && items.len() <= 2, "never a cursor to an empty page: {page}");
        paged.extend(items.iter().map(key));
        assert!(paged.len() <= rows.len(), "paging ends");
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(paged, rows.iter().map(key).collect::<Vec<_>>());
    // Without `limit`, the default page.
    let (_, first) = app.get(&base, None).await;
    assert_eq!(first["items"].as_array().unwrap().len() as i64, (rows.len() as i64).min(api::page::DEFAULT_LIMIT));
    // Bad sizes and cursors are named.
    for bad in ["limit=0", "limit=501", "cursor=100001", "cursor=-1", "cursor=x"] {
        let (status, p) = app.get(&format!("{base}&{bad}"), None).await;
        let field = bad.split('=').next().unwrap();
        assert_eq!((status, p["errors"][0]["field"].as_str()), (422, Some(field)), "{bad}: {p}");
    }
});

// Issue 11 (`rush`): a slot just refused as full is refused again from memory, but never
// to the citizen holding its seat, and never after a seat was given back here.
db_test!(a_slot_known_full_still_serves_its_holder_and_frees_at_once, |app| {
    let people = eligible_people(&app, 3).await;
    let (a, b, c) = (app.draft(&people[0]).await, app.draft(&people[1]).await, app.draft(&people[2]).await);
    let date = app.open_date(MARAGHEH, 3).await;
    let other = app.open_date(MARAGHEH, 5).await;
    app.set_slot(MARAGHEH, date, "morning", 1).await;
    assert_eq!(app.hold(&a, MARAGHEH, date, "morning").await.0, 200);
    let (status, p) = app.hold(&b, MARAGHEH, date, "morning").await;
    assert_eq!((status, p["code"].as_str()), (409, Some("slot_full")), "{p}");
    // Known full now: others are refused again — without a write transaction (on SQLite
    // it would queue behind the one writer) — and the holder keeps her seat.
    let before = app.state.db.counts();
    let (status, p) = app.hold(&c, MARAGHEH, date, "morning").await;
    assert_eq!((status, p["code"].as_str()), (409, Some("slot_full")), "{p}");
    let after = app.state.db.counts();
    assert_eq!(after.transactions, before.transactions, "refused from memory: {before:?} → {after:?}");
    let (status, view) = app.hold(&a, MARAGHEH, date, "morning").await;
    assert_eq!((status, view["state"].as_str()), (200, Some("appointment_held")), "{view}");
    // She moves: her seat is offered at once.
    assert_eq!(app.hold(&a, MARAGHEH, other, "afternoon").await.0, 200);
    let (status, view) = app.hold(&b, MARAGHEH, date, "morning").await;
    assert_eq!(status, 200, "the freed seat is taken at once: {view}");
    // Refused again, then the hold expires and the job frees it: offered at once too.
    assert_eq!(app.hold(&c, MARAGHEH, date, "morning").await.0, 409);
    app.clock.advance(Duration::minutes(16));
    assert!(api::jobs::release_expired_holds(&app.state).await.unwrap() >= 1);
    assert_eq!(app.hold(&c, MARAGHEH, date, "morning").await.0, 200);
    assert_eq!(app.slot_counts(MARAGHEH, date, "morning").await, (1, 1));
    assert_counters_agree(&app).await;
});
