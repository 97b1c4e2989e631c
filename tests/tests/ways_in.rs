//! Issue 20, "ways in and ways through", black-box on SQLite and PostgreSQL: the region
//! list that builds a portal's office picker and drives availability (province, office
//! kind, Jalali date), and the operator's search by national code.

use api::seed::offices::MARAGHEH_OFFICE_ID as MARAGHEH;
use api::seed::population::{MALE, SAMPLE};
use ncr_tests::journey::eligible_people;
use ncr_tests::{TestApp, db_test};
use serde_json::{Value, json};

const TABRIZ_OFFICE: &str = "041-TBZ-01";

/// Every province of the region list, walking its pages.
async fn all_regions(app: &TestApp, limit: u32) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/public/regions?limit={limit}&cursor={}", urlencode(c)),
            None => format!("/api/v1/public/regions?limit={limit}"),
        };
        let (status, page) = app.get(&path, None).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().expect("items").clone();
        assert!(!items.is_empty(), "never a cursor to an empty page");
        out.extend(items);
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

db_test!(the_region_list_drives_availability_by_province_kind_and_jalali_date, |app| {
    // The list: provinces with their cities, phone codes and office kinds, cacheable.
    let res = app.http.get(app.url("/api/v1/public/regions")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "public, max-age=300");
    let tag = res.headers()["etag"].to_str().unwrap().to_owned();
    let again = app.http.get(app.url("/api/v1/public/regions")).header("If-None-Match", &tag).send().await.unwrap();
    assert_eq!(again.status(), 304, "unchanged offices: 304");

    let regions = all_regions(&app, 500).await;
    assert_eq!(all_regions(&app, 2).await, regions, "paging walks the same list once");
    let names: Vec<&str> = regions.iter().map(|r| r["province"].as_str().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(names, sorted, "provinces once each, in order");
    let azarbaijan = regions.iter().find(|r| r["province"] == "آذربایجان شرقی").expect("East Azerbaijan");
    let maragheh = azarbaijan["cities"].as_array().unwrap().iter().find(|c| c["city"] == "مراغه").expect("Maragheh");
    assert_eq!(maragheh["city_code"], "041");
    let kinds: Vec<&str> = maragheh["office_kinds"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
    assert!(kinds.contains(&"civil_registry"), "{kinds:?}");
    assert!(
        azarbaijan["cities"].as_array().unwrap().iter().any(|c| c["city"] == "تبریز"),
        "Tabriz is a city of the same province: {azarbaijan}"
    );

    // The picker's choice — province, office kind — and a date typed in Jalali.
    let date = app.open_date(MARAGHEH, 3).await;
    let jalali = domain::calendar::JalaliDate::from_gregorian(date).unwrap().to_string();
    let persian_digits = domain::text::persian_digits(&jalali);
    let province = azarbaijan["province"].as_str().unwrap();
    let query = format!(
        "/api/v1/offices/availability?province={}&office_kind=civil_registry&date_jalali={}",
        urlencode(province),
        urlencode(&persian_digits)
    );
    let (status, page) = app.get(&query, None).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        (page["date"].as_str(), page["date_jalali"].as_str()),
        (Some(date.to_string().as_str()), Some(jalali.as_str()))
    );
    assert_eq!((page["province"].as_str(), page["office_kind"].as_str()), (Some(province), Some("civil_registry")));
    assert!(page["city_code"].is_null(), "a whole province: {page}");
    let rows = page["items"].as_array().unwrap();
    assert!(rows.iter().any(|r| r["office"]["id"] == MARAGHEH), "Maragheh's registry office: {page}");
    let cities: Vec<&str> =
        azarbaijan["cities"].as_array().unwrap().iter().map(|c| c["city"].as_str().unwrap()).collect();
    for r in rows {
        assert_eq!(r["office"]["kind"], "civil_registry", "{r}");
        assert!(cities.contains(&r["office"]["city"].as_str().unwrap()), "an office of the province: {r}");
    }
    // The same day given in Gregorian, or both ways at once, is the same list.
    let (status, gregorian) = app
        .get(
            &format!(
                "/api/v1/offices/availability?province={}&office_kind=civil_registry&date={date}",
                urlencode(province)
            ),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(gregorian["items"], page["items"]);
    let (status, both) = app.get(&format!("{query}&date={date}"), None).await;
    assert_eq!((status, both["total"].clone()), (200, page["total"].clone()));
    // Another kind narrows the list; a city of the province narrows it to the city.
    let (_, counters) = app
        .get(
            &format!(
                "/api/v1/offices/availability?province={}&office_kind=post_office&date={date}",
                urlencode(province)
            ),
            None,
        )
        .await;
    assert!(counters["items"].as_array().unwrap().iter().all(|r| r["office"]["kind"] == "post_office"), "{counters}");
    assert!(!counters["items"].as_array().unwrap().iter().any(|r| r["office"]["id"] == MARAGHEH));

    // Wrong values name their field.
    for (q, field, code) in [
        (format!("province={}&date={date}", urlencode("کهکشان")), "province", "province_unknown"),
        (format!("city_code=041&date={date}&date_jalali=1300-01-01"), "date_jalali", "dates_disagree"),
        ("city_code=041&date_jalali=1405-13-01".to_owned(), "date_jalali", "date_invalid"),
        (format!("city_code=041&office_kind=palace&date={date}"), "office_kind", "office_kind_invalid"),
        (format!("date={date}"), "city_code", "required"),
        ("city_code=041".to_owned(), "date", "required"),
    ] {
        let (status, problem) = app.get(&format!("/api/v1/offices/availability?{q}"), None).await;
        assert_eq!(status, 422, "{q}: {problem}");
        assert!(
            problem["errors"].as_array().unwrap().iter().any(|e| e["field"] == field && e["code"] == code),
            "{q}: {problem}"
        );
    }

    // A new office in a new province appears in the list, with a new tag.
    let admin = app.admin_token().await;
    let (status, body) = app
        .post(
            "/api/v1/admin/offices",
            Some(&admin),
            &serde_json::json!({"code": "081-HMD-01", "name": "اداره ثبت احوال همدان", "kind": "civil_registry",
                "province": "همدان", "city": "همدان", "city_code": "081", "phone": "38261234",
                "address": "همدان - میدان امام"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let res = app.http.get(app.url("/api/v1/public/regions")).header("If-None-Match", &tag).send().await.unwrap();
    assert_eq!(res.status(), 200, "the offices changed: a new answer");
    let (_, page) = ncr_tests::json(res).await;
    assert!(page["items"].as_array().unwrap().iter().any(|r| r["province"] == "همدان"), "{page}");
});

db_test!(an_operator_finds_her_offices_citizen_by_national_code_only, |app| {
    let admin = app.admin_token().await;
    let (_, x) = app.create_operator(&admin, "search.x", MARAGHEH).await;
    let (_, y) = app.create_operator(&admin, "search.y", TABRIZ_OFFICE).await;
    let token = app.register_and_pay(&SAMPLE).await;
    let (_, mine) = app.get("/api/v1/citizen/application", Some(&token)).await;

    // Persian digits and separators, as a clerk types them.
    let typed = domain::text::persian_digits(&format!("{}-{}", &SAMPLE.national_id[..3], &SAMPLE.national_id[3..]));
    let (status, found) =
        app.get(&format!("/api/v1/office/applications?national_id={}", urlencode(&typed)), Some(&x)).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!((&found["id"], &found["tracking_code"]), (&mine["id"], &mine["tracking_code"]));

    // Another office's operator, an unknown or never-registered national code: the same 404.
    let search = |nid: &str| format!("/api/v1/office/applications?national_id={nid}");
    let (status, other) = app.get(&search(SAMPLE.national_id), Some(&y)).await;
    assert_eq!((status, other["code"].as_str()), (404, Some("application_not_found")), "{other}");
    let (status, nobody) = app.get(&search(MALE.national_id), Some(&x)).await;
    assert_eq!((status, nobody["code"].as_str()), (404, Some("application_not_found")), "{nobody}");
    let (status, bad) = app.get(&search("1234567890"), Some(&x)).await;
    assert_eq!(status, 422, "{bad}");
    assert_eq!(bad["errors"][0]["field"], "national_id");
    let (status, _) = app.get(&search(SAMPLE.national_id), Some(&admin)).await;
    assert_eq!(status, 403, "administrators do not serve citizens at a counter");

    // Audited: the find against the application, each miss without one — and no national code.
    let (status, log) = app.get("/api/v1/admin/audit-log?actor_kind=operator&limit=50", Some(&admin)).await;
    assert_eq!(status, 200, "{log}");
    let entries = log["items"].as_array().unwrap();
    assert!(
        entries.iter().any(|e| e["action"] == "personal_data_viewed" && e["application_id"] == mine["id"]),
        "{log}"
    );
    assert_eq!(entries.iter().filter(|e| e["action"] == "application_search_missed").count(), 2, "{log}");
    assert!(!log.to_string().contains(SAMPLE.national_id), "{log}");
});

/// POST /citizen/sessions with a fresh captcha and these fields besides it.
async fn enter_with(app: &TestApp, fields: Value) -> (u16, Value) {
    let (id, answer) = app.captcha().await;
    let mut body = fields;
    body["captcha_id"] = id.into();
    body["captcha_answer"] = answer.into();
    app.post("/api/v1/citizen/sessions", None, &body).await
}

/// A well-formed tracking code (its check digit right) that is not `not`.
fn another_tracking_code(not: &str) -> String {
    (0..10_000u32)
        .map(|n| format!("97{n:07}"))
        .flat_map(|stem| (0..10).map(move |d| format!("{stem}{d}")))
        .find(|c| c != not && domain::ids::TrackingCode::parse(c).is_ok())
        .expect("a valid tracking code")
}

db_test!(the_booking_page_by_tracking_code_and_the_draft_by_birth_date, |app| {
    // A paid citizen enters the booking page with her tracking code (docs/domain/eligibility.md).
    let token = app.register_and_pay(&SAMPLE).await;
    let (_, by_serial) = app.enter(SAMPLE.national_id, SAMPLE.serial).await;
    let (_, mine) = app.get("/api/v1/citizen/application", Some(&token)).await;
    let code = mine["tracking_code"].as_str().unwrap().to_owned();
    let (status, entry) = enter_with(&app, json!({"national_id": SAMPLE.national_id, "tracking_code": code})).await;
    assert_eq!(status, 201, "{entry}");
    assert_eq!(entry["next_step"], by_serial["next_step"], "the same next step as by serial");
    assert_eq!(entry["application"]["id"], mine["id"]);
    assert_eq!(entry["identity_confirmed"], true);
    let by_code = entry["token"].as_str().unwrap().to_owned();
    let (status, view) = app.get("/api/v1/citizen/application", Some(&by_code)).await;
    assert_eq!((status, &view["id"], &view["allowed_operations"]), (200, &mine["id"], &mine["allowed_operations"]));
    // Her birth date does not open a paid registration: the tracking code does.
    let (status, paid) =
        enter_with(&app, json!({"national_id": SAMPLE.national_id, "birth_date_jalali": SAMPLE.birth_date})).await;
    assert_eq!((status, paid["code"].as_str()), (409, Some("tracking_code_required")), "{paid}");

    // An unpaid applicant continues her draft with national code and birth date (docs/domain/eligibility.md).
    let person = &eligible_people(&app, 1).await[0];
    let draft = app.draft(person).await;
    let (_, before) = app.get("/api/v1/citizen/application", Some(&draft)).await;
    let typed = domain::text::persian_digits(&person.birth_date.replace('-', "/"));
    let (status, entry) =
        enter_with(&app, json!({"national_id": person.national_id, "birth_date_jalali": typed})).await;
    assert_eq!(status, 201, "{entry}");
    assert_eq!((entry["next_step"].as_str(), &entry["application"]["id"]), (Some("choose_appointment"), &before["id"]));
    let (status, held) =
        app.hold(entry["token"].as_str().unwrap(), MARAGHEH, app.open_date(MARAGHEH, 3).await, "morning").await;
    assert_eq!(status, 200, "the draft goes on: {held}");

    // Wrong ones: their own codes, naming the field.
    let (status, wrong) =
        enter_with(&app, json!({"national_id": SAMPLE.national_id, "tracking_code": another_tracking_code(&code)}))
            .await;
    assert_eq!((status, wrong["code"].as_str()), (422, Some("tracking_code_mismatch")), "{wrong}");
    assert_eq!(wrong["errors"][0]["field"], "tracking_code");
    let (status, wrong) =
        enter_with(&app, json!({"national_id": person.national_id, "birth_date_jalali": "1360-01-01"})).await;
    assert_eq!((status, wrong["code"].as_str()), (422, Some("draft_not_found")), "{wrong}");
    assert_eq!(wrong["errors"][0]["field"], "birth_date_jalali");
    // Nothing, two proofs, a mistyped one.
    let nid = SAMPLE.national_id;
    for (fields, field, code) in [
        (json!({"national_id": nid}), "serial", "required"),
        (json!({"national_id": nid, "serial": SAMPLE.serial, "tracking_code": code}), "tracking_code", "exclusive"),
        (json!({"national_id": nid, "tracking_code": "12345"}), "tracking_code", "tracking_code_invalid"),
        (json!({"national_id": nid, "birth_date_jalali": "1369-13-40"}), "birth_date_jalali", "date_invalid"),
    ] {
        let (status, problem) = enter_with(&app, fields.clone()).await;
        assert_eq!(status, 422, "{fields}: {problem}");
        assert!(
            problem["errors"].as_array().unwrap().iter().any(|e| e["field"] == field && e["code"] == code),
            "{problem}"
        );
    }
    // The captcha rules are the serial's: a wrong answer, and a challenge used twice.
    let (id, answer) = app.captcha().await;
    let body = json!({"national_id": nid, "tracking_code": code, "captcha_id": id, "captcha_answer": "999"});
    let (status, problem) = app.post("/api/v1/citizen/sessions", None, &body).await;
    assert_eq!((status, problem["code"].as_str()), (422, Some("validation_failed")), "{problem}");
    assert_eq!(problem["errors"][0]["code"], "captcha_invalid");
    let body = json!({"national_id": nid, "tracking_code": code, "captcha_id": id, "captcha_answer": answer});
    let (status, problem) = app.post("/api/v1/citizen/sessions", None, &body).await;
    assert_eq!((status, problem["errors"][0]["code"].as_str()), (422, Some("captcha_invalid")), "spent: {problem}");
});

db_test!(wrong_tracking_codes_and_birth_dates_count_against_the_serials_lock, |app| {
    let token = app.register_and_pay(&MALE).await;
    let (_, mine) = app.get("/api/v1/citizen/application", Some(&token)).await;
    let code = mine["tracking_code"].as_str().unwrap().to_owned();
    let nid = MALE.national_id;
    let wrong_code = another_tracking_code(&code);
    // Five wrong guesses of the three kinds together reach the entry lock (5 in a row).
    let guesses = [
        json!({"national_id": nid, "serial": "111111"}),
        json!({"national_id": nid, "tracking_code": wrong_code}),
        json!({"national_id": nid, "birth_date_jalali": "1350-01-01"}),
        json!({"national_id": nid, "serial": "222222"}),
        json!({"national_id": nid, "tracking_code": wrong_code}),
    ];
    for (i, g) in guesses.iter().enumerate() {
        let (status, problem) = enter_with(&app, g.clone()).await;
        let want = if i < 4 { 422 } else { 429 };
        assert_eq!(status, want, "guess {}: {problem}", i + 1);
    }
    // Locked: the right tracking code and the right serial wait too.
    let (status, locked) = enter_with(&app, json!({"national_id": nid, "tracking_code": code})).await;
    assert_eq!((status, locked["code"].as_str()), (429, Some("entry_locked")), "{locked}");
    let (status, locked) = app.enter(nid, MALE.serial).await;
    assert_eq!((status, locked["code"].as_str()), (429, Some("entry_locked")), "{locked}");
    // After the lock, the right tracking code opens the application and clears the count.
    app.clock.advance(chrono::Duration::minutes(16));
    let (status, entry) = enter_with(&app, json!({"national_id": nid, "tracking_code": code})).await;
    assert_eq!(status, 201, "{entry}");
    assert_eq!(entry["application"]["id"], mine["id"]);
    for _ in 0..4 {
        let (status, _) = enter_with(&app, json!({"national_id": nid, "tracking_code": wrong_code})).await;
        assert_eq!(status, 422, "a right guess cleared the failures in a row");
    }
});

fn long_machine_tokens(c: &mut api::config::Config) {
    c.auth.machine_token_minutes = 240;
    c.auth.staff_token_minutes = 240;
    c.auth.staff_idle_minutes = 240;
}

/// `n` people booked at Maragheh on one day, checked in and enrolled there (the clock is
/// then on that day); their tracking codes and national codes.
async fn enrolled(app: &TestApp, n: usize) -> Vec<(String, String)> {
    let people = eligible_people(app, n).await;
    let date = app.open_date(MARAGHEH, 3).await;
    app.set_slot(MARAGHEH, date, "morning", 500).await;
    let mut tokens = Vec::new();
    for p in &people {
        let (token, location) = app.hold_and_pay(p, MARAGHEH, date, "success").await;
        assert!(location.contains("outcome=success"), "{location}");
        tokens.push(token);
    }
    app.clock.set(domain::calendar::tehran_instant(date, 9, 0));
    let admin = app.admin_token().await;
    let (_, operator) = app.create_operator(&admin, "queue.x", MARAGHEH).await;
    let mut out = Vec::new();
    for (i, p) in people.iter().enumerate() {
        let (_, byid) =
            app.get(&format!("/api/v1/office/applications?national_id={}", p.national_id), Some(&operator)).await;
        let tc = byid["tracking_code"].as_str().expect("tracking code").to_owned();
        let (status, body) =
            app.post(&format!("/api/v1/office/applications/{tc}/check-in"), Some(&operator), &json!({})).await;
        assert_eq!(status, 200, "{body}");
        let mut completion = json!({"postal_code": "5518743111", "address": "مراغه، خیابان اول", "landline": "04137221234",
            "documents_checked": true, "fingerprints": "captured", "face": "captured",
            "capture_reference": format!("CAP-{i:04}")});
        if i == 0 {
            completion["first_name_latin"] = json!("  Maryam ");
            completion["last_name_latin"] = json!("Ahmadi-Rad");
        }
        let (status, body) =
            app.post(&format!("/api/v1/office/applications/{tc}/completion"), Some(&operator), &completion).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["state"], "enrolled");
        out.push((tc, p.national_id.clone()));
    }
    out
}

/// A production client's page of the queue.
async fn poll(app: &TestApp, token: &str, limit: u32, cursor: Option<&str>) -> Value {
    let path = match cursor {
        Some(c) => format!("/api/v1/production/applications?state=enrolled&limit={limit}&cursor={}", urlencode(c)),
        None => format!("/api/v1/production/applications?limit={limit}"),
    };
    let (status, page) = app.get(&path, Some(token)).await;
    assert_eq!(status, 200, "{page}");
    page
}

fn codes(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|i| i["tracking_code"].as_str().unwrap().to_owned()).collect()
}

/// Walks the queue to its end as a production line does: each item it is handed is
/// started at once. Returns the tracking codes it started, in order.
async fn drain(app: &TestApp, token: &str, name: &str) -> Vec<String> {
    let mut started = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = poll(app, token, 3, cursor.as_deref()).await;
        for tc in codes(&page) {
            let event = json!({"event_id": format!("{name}-{tc}"), "kind": "production_started"});
            let (status, body) =
                app.post(&format!("/api/v1/production/applications/{tc}/events"), Some(token), &event).await;
            assert_eq!(status, 201, "{body}");
            assert_eq!(body["state"], "in_production");
            started.push(tc);
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return started,
        }
    }
}

db_test!(two_production_clients_drain_the_queue_without_overlap, tweak = long_machine_tokens, |app| {
    let apps = enrolled(&app, 14).await;
    let admin = app.admin_token().await;
    let line_a = app.machine_token(&admin, "factory-a", "production").await;
    let line_b = app.machine_token(&admin, "factory-b", "production").await;
    let kiosk = app.machine_token(&admin, "queue-kiosk", "kiosk").await;
    let (status, _) = app.get("/api/v1/production/applications", Some(&kiosk)).await;
    assert_eq!(status, 403, "a kiosk has no production scope");

    // What production needs, oldest enrollment first.
    let first = poll(&app, &line_a, 2, None).await;
    let (tc0, nid0) = &apps[0];
    assert_eq!(codes(&first), vec![tc0.clone(), apps[1].0.clone()], "oldest first: {first}");
    let item = &first["items"][0];
    assert_eq!(item["national_id"], nid0.as_str());
    assert_eq!(item["latin_name"], json!({"first_name": "Maryam", "last_name": "Ahmadi-Rad"}));
    assert!(item["first_name"].is_string() && item["serial"].is_string(), "{item}");
    assert_eq!(
        (item["delivery_office"]["id"].as_str(), item["capture_reference"].as_str()),
        (Some(MARAGHEH), Some("CAP-0000"))
    );
    assert!(first["items"][1]["latin_name"].is_null());
    assert!(first["next_cursor"].is_string());

    // Leased: another client is not handed them; their holder is, again; after the lease
    // anyone is.
    let other = poll(&app, &line_b, 2, None).await;
    assert_eq!(codes(&other), vec![apps[2].0.clone(), apps[3].0.clone()], "{other}");
    assert_eq!(codes(&poll(&app, &line_a, 2, None).await), codes(&first), "the holder gets its own again");
    app.clock.advance(chrono::Duration::minutes(11));
    assert_eq!(codes(&poll(&app, &line_b, 2, None).await), codes(&first), "the lease ended");
    let (status, bad) = app.get("/api/v1/production/applications?cursor=yesterday", Some(&line_a)).await;
    assert_eq!((status, bad["errors"][0]["field"].as_str()), (422, Some("cursor")), "{bad}");
    app.clock.advance(chrono::Duration::minutes(11));

    // Two lines drain the queue at once: disjoint, and every enrolled application once.
    let (a, b) = tokio::join!(drain(&app, &line_a, "a"), drain(&app, &line_b, "b"));
    let mut all: Vec<String> = a.iter().chain(b.iter()).cloned().collect();
    assert!(a.iter().all(|tc| !b.contains(tc)), "no application twice: {a:?} {b:?}");
    all.sort();
    let mut want: Vec<String> = apps.iter().map(|(tc, _)| tc.clone()).collect();
    want.sort();
    assert_eq!(all, want, "every enrolled application exactly once");
    // Started applications are out of the queue.
    let rest = poll(&app, &line_a, 500, None).await;
    assert_eq!((rest["items"].as_array().unwrap().len(), rest["next_cursor"].is_null()), (0, true), "{rest}");
});

/// What the sandbox phone received for a mobile, newest first.
async fn texts(app: &TestApp, mobile: &str) -> Vec<String> {
    let admin = app.admin_token().await;
    let (status, page) = app.get(&format!("/api/v1/admin/sandbox/sms?to={mobile}&limit=200"), Some(&admin)).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap().to_owned()).collect()
}

fn reminder_about(texts: &[String], date: chrono::NaiveDate) -> usize {
    let jalali = domain::calendar::JalaliDate::from_gregorian(date).unwrap();
    let day = domain::text::persian_digits(&format!("{:04}/{:02}/{:02}", jalali.year(), jalali.month(), jalali.day()));
    texts.iter().filter(|t| t.starts_with("یادآوری") && t.contains(&day)).count()
}

db_test!(
    reminders_go_the_evening_before_once_and_never_for_a_moved_or_cancelled_booking,
    tweak = long_machine_tokens,
    |app| {
        let people = eligible_people(&app, 4).await;
        let day = app.open_date(MARAGHEH, 3).await;
        let today = domain::calendar::tehran_date(app.clock_now());
        let later = app.open_date(MARAGHEH, (day - today).num_days() + 2).await;
        for d in [day, later] {
            app.set_slot(MARAGHEH, d, "morning", 100).await;
            app.set_slot(MARAGHEH, d, "afternoon", 100).await;
        }
        let mut tokens = Vec::new();
        for p in &people {
            let (token, location) = app.hold_and_pay(p, MARAGHEH, day, "success").await;
            assert!(location.contains("outcome=success"), "{location}");
            tokens.push(token);
        }
        let [stays, moves_early, moves_late, cancelled] = [0, 1, 2, 3];
        // One citizen moves to a later day well before the evening: no reminder for `day`.
        let (status, body) = app.hold(&tokens[moves_early], MARAGHEH, later, "morning").await;
        assert_eq!(status, 200, "{body}");
        let run = || api::jobs::queue_reminders(&app.state);

        // The evening before, Tehran time: not at 17:59, at 18:00, once.
        app.clock.set(domain::calendar::tehran_instant(day - chrono::Duration::days(1), 17, 59));
        assert_eq!(run().await.unwrap(), 0, "too early");
        app.clock.set(domain::calendar::tehran_instant(day - chrono::Duration::days(1), 18, 0));
        assert_eq!(run().await.unwrap(), 3, "the three booked for tomorrow");
        assert_eq!(run().await.unwrap(), 0, "once per booking");
        // After the reminders were queued: one citizen moves to the afternoon, one application
        // is cancelled. Their reminders are withdrawn, not sent.
        let token = app.login(&people[moves_late].national_id, &people[moves_late].serial).await;
        let (status, body) = app.hold(&token, MARAGHEH, day, "afternoon").await;
        assert_eq!(status, 200, "{body}");
        let other = app.login(&people[cancelled].national_id, &people[cancelled].serial).await;
        let cancelled_id =
            app.get("/api/v1/citizen/application", Some(&other)).await.1["id"].as_str().unwrap().to_owned();
        app.exec_sql(&format!(
        "UPDATE applications SET state = 'cancelled', appointment_status = 'none', slot_office_id = NULL, slot_date = NULL, slot_shift = NULL, version = version + 1 WHERE id = '{cancelled_id}'"
    ))
    .await;
        app.clock.advance(chrono::Duration::hours(2));
        assert_eq!(run().await.unwrap(), 1, "the moved booking is a new booking: its own reminder");
        api::jobs::deliver_outbox(&app.state).await.unwrap();
        assert_eq!(reminder_about(&texts(&app, &people[stays].mobile).await, day), 1);
        let moved = texts(&app, &people[moves_late].mobile).await;
        assert_eq!(reminder_about(&moved, day), 1, "one reminder, for the afternoon: {moved:?}");
        assert!(moved.iter().any(|t| t.contains("عصر")), "{moved:?}");
        assert_eq!(reminder_about(&texts(&app, &people[cancelled].mobile).await, day), 0, "cancelled");
        assert_eq!(reminder_about(&texts(&app, &people[moves_early].mobile).await, day), 0, "moved away");
        let withdrawn = app
        .count_sql("SELECT COUNT(*) AS n FROM outbox WHERE template = 'reminder' AND status = 'failed_permanent' AND last_error LIKE 'withdrawn%'")
        .await;
        assert_eq!(withdrawn, 2, "the moved morning and the cancelled booking");
        // Late at night and on the day itself: nothing more.
        app.clock.set(domain::calendar::tehran_instant(day - chrono::Duration::days(1), 23, 30));
        assert_eq!(run().await.unwrap(), 0);
        app.clock.set(domain::calendar::tehran_instant(day, 18, 30));
        assert_eq!(run().await.unwrap(), 0, "nobody is booked for the day after");

        // The one who moved early is reminded the evening before her new day.
        app.clock.set(domain::calendar::tehran_instant(later - chrono::Duration::days(1), 19, 0));
        assert_eq!(run().await.unwrap(), 1);
        api::jobs::deliver_outbox(&app.state).await.unwrap();
        assert_eq!(reminder_about(&texts(&app, &people[moves_early].mobile).await, later), 1);
    }
);

/// The one event of a calendar file, parsed by an RFC 5545 parser.
fn the_event(text: &str) -> icalendar::Event {
    use icalendar::{CalendarComponent, Component};
    assert!(text.starts_with("BEGIN:VCALENDAR\r\n") && text.ends_with("END:VCALENDAR\r\n"), "{text}");
    assert!(text.split("\r\n").all(|l| l.len() <= 75), "content lines fold at 75 octets: {text}");
    let calendar: icalendar::Calendar = text.parse().unwrap_or_else(|e| panic!("not iCalendar ({e}): {text}"));
    let events: Vec<icalendar::Event> = calendar
        .components
        .into_iter()
        .filter_map(|c| match c {
            CalendarComponent::Event(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(events.len(), 1, "{text}");
    let event = events.into_iter().next().unwrap();
    assert!(event.get_uid().is_some(), "{text}");
    event
}

db_test!(the_appointment_ics_parses_and_rides_with_the_receipt_email, |app| {
    use icalendar::{CalendarDateTime, Component, DatePerhapsTime, EventLike};
    let draft = app.draft(&eligible_people(&app, 1).await[0]).await;
    let res =
        app.http.get(app.url("/api/v1/citizen/application/appointment.ics")).bearer_auth(&draft).send().await.unwrap();
    let (status, problem) = ncr_tests::json(res).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("no_booked_appointment")), "{problem}");

    let token = app.register_and_pay(&SAMPLE).await;
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    let appointment = &view["appointment"];
    let date: chrono::NaiveDate = appointment["date"].as_str().unwrap().parse().unwrap();
    let shift = domain::offices::Shift::parse(appointment["shift"].as_str().unwrap()).unwrap();
    let res =
        app.http.get(app.url("/api/v1/citizen/application/appointment.ics")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/calendar; charset=utf-8");
    assert_eq!(res.headers()["content-disposition"], "attachment; filename=\"appointment.ics\"");
    let text = res.text().await.unwrap();
    let event = the_event(&text);
    let at = |hour| DatePerhapsTime::DateTime(CalendarDateTime::Utc(domain::calendar::tehran_instant(date, hour, 0)));
    assert_eq!(event.get_start(), Some(at(shift.starts_at_hour())), "{text}");
    assert_eq!(event.get_end(), Some(at(shift.ends_at_hour())), "{text}");
    assert!(event.get_summary().unwrap().contains("اداره ثبت احوال مراغه"), "{text}");
    assert!(event.get_location().unwrap().contains(appointment["office"]["address"].as_str().unwrap()), "{text}");
    let description = event.get_description().unwrap();
    assert!(
        description.contains(view["tracking_code"].as_str().unwrap()) && description.contains('\n'),
        "{description}"
    );
    assert!(event.get_uid().unwrap().contains(view["id"].as_str().unwrap()));
    assert!(!text.contains(SAMPLE.national_id), "no national code in the file");

    // The receipt e-mail carries the same file.
    let (status, body) = app
        .post("/api/v1/citizen/application/receipt/email", Some(&token), &json!({"email": "maryam@example.ir"}))
        .await;
    assert_eq!(status, 202, "{body}");
    let id = view["id"].as_str().unwrap().to_owned();
    let rows =
        app.state.run(move |conn| persistence::outbox::for_application(conn, &id.as_str().into())).await.unwrap();
    let mail = rows.iter().find(|m| m.template == "receipt").expect("the receipt e-mail");
    let params: Value =
        serde_json::from_str(&app.state.pii.open(persistence::PiiKind::Secret, &mail.params_enc).unwrap()).unwrap();
    let ics = params["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["filename"] == "appointment.ics")
        .expect("attached");
    assert_eq!(ics["content_type"], "text/calendar; charset=utf-8");
    use base64::Engine;
    let attached =
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(ics["base64"].as_str().unwrap()).unwrap())
            .unwrap();
    assert_eq!(the_event(&attached).get_start(), event.get_start());
    api::jobs::deliver_outbox(&app.state).await.unwrap();
    let admin = app.admin_token().await;
    let (_, mails) = app.get("/api/v1/admin/sandbox/emails?limit=10", Some(&admin)).await;
    assert!(mails.to_string().contains("appointment.ics"), "{mails}");
});

db_test!(a_card_waiting_thirty_days_uncollected_is_reminded_once, tweak = long_machine_tokens, |app| {
    let apps = enrolled(&app, 2).await;
    let admin = app.admin_token().await;
    let line = app.machine_token(&admin, "factory-r", "production").await;
    for (tc, _) in &apps {
        for (i, kind) in
            ["production_started", "card_produced", "dispatched", "ready_for_delivery"].into_iter().enumerate()
        {
            let event = json!({"event_id": format!("r-{tc}-{i}"), "kind": kind});
            let (status, body) =
                app.post(&format!("/api/v1/production/applications/{tc}/events"), Some(&line), &event).await;
            assert_eq!(status, 201, "{body}");
        }
    }
    let ready_at = app.clock_now();
    // One citizen collects her card in time.
    let (_, operator) = app.create_operator(&admin, "deliver.x", MARAGHEH).await;
    let (status, body) = app
        .post(
            &format!("/api/v1/office/applications/{}/delivery", apps[1].0),
            Some(&operator),
            &json!({"fingerprint_match": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let run = || api::jobs::queue_uncollected(&app.state);
    // 29 days later: nothing; past 30 days, at night: nothing; in the morning: once.
    app.clock.set(ready_at + chrono::Duration::days(29));
    assert_eq!(run().await.unwrap(), 0);
    let day30 = domain::calendar::tehran_date(ready_at + chrono::Duration::days(31));
    app.clock.set(domain::calendar::tehran_instant(day30, 3, 0));
    assert_eq!(run().await.unwrap(), 0, "not at night");
    app.clock.set(domain::calendar::tehran_instant(day30, 10, 0));
    assert_eq!(run().await.unwrap(), 1, "the card still waiting");
    assert_eq!(run().await.unwrap(), 0, "once");
    app.clock.advance(chrono::Duration::days(5));
    assert_eq!(run().await.unwrap(), 0, "once, however long it waits");
    api::jobs::deliver_outbox(&app.state).await.unwrap();
    let operator = app.staff_token("deliver.x", "operator-password-1").await;
    let (_, byid) = app.get(&format!("/api/v1/office/applications?national_id={}", apps[0].1), Some(&operator)).await;
    let mobile = byid["personal_info"]["mobile"].as_str().unwrap().to_owned();
    let got = texts(&app, &mobile).await;
    assert!(got.iter().any(|t| t.contains("کارت") && t.contains("منتظر دریافت") && t.contains("۳۱")), "{got:?}");
});

const LEGACY_HEADER: &str = "legacy_id,national_id,serial,birth_date_jalali,birth_date_hijri,gender,religion,mother_name,mobile,first_name,last_name,state,tracking_code,appointment_office,appointment_date_jalali,appointment_shift,delivery_office,can_leave_home,can_climb_stairs,pupils_visible,fingers_intact";

/// A valid national code made from nine digits.
fn national_code(body: u64) -> String {
    let digits: Vec<u64> = format!("{body:09}").bytes().map(|b| u64::from(b - b'0')).collect();
    let sum: u64 = digits.iter().enumerate().map(|(i, d)| d * (10 - i as u64)).sum();
    let check = if sum % 11 < 2 { sum % 11 } else { 11 - sum % 11 };
    format!("{body:09}{check}")
}

/// A valid tracking code made from nine digits.
fn tracking(body: u64) -> String {
    (0..10)
        .map(|d| format!("{body:09}{d}"))
        .find(|c| domain::ids::TrackingCode::parse(c).is_ok())
        .expect("a check digit")
}

fn jalali(date: chrono::NaiveDate) -> String {
    domain::calendar::JalaliDate::from_gregorian(date).unwrap().to_string()
}

/// POSTs a legacy file as the administrator.
async fn import_legacy(app: &TestApp, admin: &str, csv: &str) -> (u16, Value) {
    let res = app
        .http
        .post(app.url("/api/v1/admin/legacy-applications"))
        .bearer_auth(admin)
        .header("Content-Type", "text/csv")
        .body(csv.to_owned())
        .send()
        .await
        .unwrap();
    ncr_tests::json(res).await
}

db_test!(a_thousand_old_applications_carry_over_once_and_their_citizens_go_on, |app| {
    let admin = app.admin_token().await;
    let people = eligible_people(&app, 2).await;
    let day = app.open_date(MARAGHEH, 3).await;
    let today = domain::calendar::tehran_date(app.clock_now());
    let other_day = app.open_date(MARAGHEH, (day - today).num_days() + 2).await;
    for shift in ["morning", "afternoon"] {
        app.set_slot(MARAGHEH, day, shift, 400).await;
    }
    let before =
        (app.slot_counts(MARAGHEH, day, "morning").await.1, app.slot_counts(MARAGHEH, day, "afternoon").await.1);
    let (p1, p2) = (&people[0], &people[1]);
    let t1 = tracking(811_000_001);
    let mut csv = format!("{LEGACY_HEADER}\n");
    // An applicant who paid and booked on the old Portal, and one who never paid.
    csv += &format!(
        "P-0,{},{},{},,{},islam,{},{},,,registered,{t1},{MARAGHEH},{},morning,,true,true,true,true\n",
        p1.national_id,
        p1.serial,
        p1.birth_date,
        p1.gender,
        p1.mother_name,
        p1.mobile,
        jalali(day)
    );
    csv += &format!(
        "P-1,{},{},{},,{},islam,{},{},,,draft,,,,,,true,true,true,true\n",
        p2.national_id, p2.serial, p2.birth_date, p2.gender, p2.mother_name, p2.mobile
    );
    let mut seats = (1, 0);
    for i in 2..1000u64 {
        let (nid, mobile) = (national_code(990_000_000 + i * 7), format!("0912{:07}", 1_000_000 + i));
        let gender = if i % 2 == 0 { "female" } else { "male" };
        let common = format!(
            "P-{i},{nid},{:06},1370-0{}-1{},,{gender},islam,زهرا,{mobile},مریم,احمدی",
            100_000 + i,
            1 + i % 9,
            i % 10
        );
        csv += &match i % 3 {
            0 => {
                let shift = if i % 2 == 0 { "morning" } else { "afternoon" };
                if shift == "morning" {
                    seats.0 += 1
                } else {
                    seats.1 += 1
                }
                format!("{common},registered,{},{MARAGHEH},{},{shift},,,,,\n", tracking(812_000_000 + i), jalali(day))
            }
            1 => format!("{common},registered,{},,,,041-TBZ-01,,,,\n", tracking(813_000_000 + i)),
            _ => format!("{common},draft,,,,,,,,,\n"),
        };
    }
    let started = std::time::Instant::now();
    let (status, result) = import_legacy(&app, &admin, &csv).await;
    assert_eq!(status, 200, "{result}");
    eprintln!("1,000 legacy rows on {:?}: {:?}", app.backend, started.elapsed());
    assert_eq!(result, json!({"created": 1000, "unchanged": 0, "seats_taken": seats.0 + seats.1}));
    let after =
        (app.slot_counts(MARAGHEH, day, "morning").await.1, app.slot_counts(MARAGHEH, day, "afternoon").await.1);
    assert_eq!((after.0 - before.0, after.1 - before.1), seats, "a seat per imported appointment");
    // Sealed like any other application: no national code or mobile in clear.
    let clear = app
        .count_sql(&format!(
            "SELECT COUNT(*) AS n FROM applications WHERE nid_enc LIKE '%{0}%' OR mobile_enc LIKE '%{1}%' OR personal_enc LIKE '%{2}%'",
            p1.national_id, p1.mobile, p1.mother_name
        ))
        .await;
    assert_eq!(clear, 0);

    // A re-run changes nothing; so does the command line's import of the same file.
    let (status, again) = import_legacy(&app, &admin, &csv).await;
    assert_eq!((status, again), (200, json!({"created": 0, "unchanged": 1000, "seats_taken": 0})));
    let state = app.state.clone();
    let bytes = csv.clone().into_bytes();
    let cli =
        tokio::task::spawn_blocking(move || api::journey::legacy::import_now(&state, &bytes)).await.unwrap().unwrap();
    assert_eq!((cli.created, cli.unchanged), (0, 1000));
    assert_eq!(app.slot_counts(MARAGHEH, day, "morning").await.1, after.0);

    // A bad file imports nothing and names every bad cell.
    let count = || app.count_sql("SELECT COUNT(*) AS n FROM applications");
    let applications = count().await;
    let bad = format!(
        "{LEGACY_HEADER}\n\
         Q-1,{},123456,1370-01-01,,female,islam,زهرا,09121111111,,,registered,{},,,,,,,,\n\
         Q-2,1234567890,123456,1370-13-01,,woman,islam,زهرا,0912,,,paid,,,,,,,,,\n\
         Q-3,{},123456,1370-01-01,,female,islam,زهرا,09121111112,,,draft,{},{MARAGHEH},{},morning,,maybe,true,true,true\n\
         Q-3,{},123456,1370-01-01,,female,islam,زهرا,09121111113,,,registered,,,,,,,,,\n",
        national_code(970_000_001),
        tracking(970_000_001),
        national_code(970_000_002),
        tracking(970_000_002),
        jalali(day),
        national_code(970_000_003),
    );
    let (status, problem) = import_legacy(&app, &admin, &bad).await;
    assert_eq!(status, 422, "{problem}");
    let cells: Vec<String> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap().to_owned()).collect();
    for want in [
        "row 3: national_id",
        "row 3: birth_date_jalali",
        "row 3: gender",
        "row 3: mobile",
        "row 3: state",
        "row 4: tracking_code",
        "row 4: appointment_office",
        "row 4: can_leave_home",
        "row 5: legacy_id",
        "row 5: tracking_code",
    ] {
        assert!(cells.contains(&want.to_owned()), "{want} missing from {cells:?}");
    }
    assert!(!cells.iter().any(|c| c.starts_with("row 2")), "row 2 is good: {cells:?}");
    assert_eq!(count().await, applications, "nothing imported");
    // Cells the database refuses are named too: a national code that has an application,
    // a tracking code in use, an office that does not exist.
    let refused = format!(
        "{LEGACY_HEADER}\n\
         R-1,{},{},{},,{},islam,{},{},,,draft,,,,,,,,,\n\
         R-2,{},123456,1370-01-01,,female,islam,زهرا,09121111114,,,registered,{t1},,,,,,,,\n\
         R-3,{},123456,1370-01-01,,female,islam,زهرا,09121111115,,,registered,{},999-NOPE-01,{},morning,,,,,\n\
         R-4,{},123456,1370-01-01,,female,islam,زهرا,09121111116,,,draft,,,,,,,,,\n",
        p1.national_id,
        p1.serial,
        p1.birth_date,
        p1.gender,
        p1.mother_name,
        p1.mobile,
        national_code(960_000_002),
        national_code(960_000_003),
        tracking(960_000_003),
        jalali(day),
        national_code(960_000_004),
    );
    let (status, problem) = import_legacy(&app, &admin, &refused).await;
    assert_eq!(status, 422, "{problem}");
    let cells: Vec<String> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap().to_owned()).collect();
    assert_eq!(cells, ["row 2: national_id", "row 3: tracking_code", "row 4: appointment_office"], "{problem}");
    assert_eq!(count().await, applications, "nothing imported, the good row 5 either");
    assert_eq!(app.slot_counts(MARAGHEH, day, "morning").await.1, after.0, "no seat kept");

    // The paid applicant enters — with her serial or her tracking code — and reschedules.
    let token = app.login(&p1.national_id, &p1.serial).await;
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!(
        (view["state"].as_str(), view["tracking_code"].as_str()),
        (Some("registered"), Some(t1.as_str())),
        "{view}"
    );
    assert_eq!(view["appointment"]["date"], day.to_string());
    let (status, entry) = enter_with(&app, json!({"national_id": p1.national_id, "tracking_code": t1})).await;
    assert_eq!((status, &entry["application"]["id"]), (201, &view["id"]), "{entry}");
    let (status, moved) = app.hold(&token, MARAGHEH, other_day, "morning").await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(
        (moved["appointment_status"].as_str(), moved["appointment"]["date"].as_str()),
        (Some("booked"), Some(other_day.to_string().as_str()))
    );
    assert_eq!(app.slot_counts(MARAGHEH, day, "morning").await.1, after.0 - 1, "the old seat came back");
    // The unpaid one is checked with the registry, then continues her draft by birth date.
    while api::jobs::settle_identities(&app.state).await.unwrap() > 0 {}
    let (status, entry) =
        enter_with(&app, json!({"national_id": p2.national_id, "birth_date_jalali": p2.birth_date})).await;
    assert_eq!(status, 201, "{entry}");
    assert_eq!(entry["application"]["identity_status"], "verified", "{entry}");
    assert_eq!(entry["next_step"], "choose_appointment", "{entry}");
});

/// Runs `ncr --config <file with the test keys> import-legacy <csv>` on the test server's
/// database; (exit code, stdout, stderr).
async fn ncr_import_legacy(app: &TestApp, csv: &str) -> (i32, String, String) {
    let dir = std::env::temp_dir().join(format!("ncr-legacy-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let keys = toml::to_string(&ncr_tests::test_keys())
        .unwrap()
        .replace("[[signing]]", "[[keys.signing]]")
        .replace("[[pii]]", "[[keys.pii]]");
    std::fs::write(dir.join("ncr.toml"), format!("[keys]\n{keys}")).unwrap();
    std::fs::write(dir.join("old.csv"), csv).unwrap();
    let database_url = app.state.config.database_url.clone();
    tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new(ncr_tests::ncr_binary());
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("NCR_") || k == "DATABASE_URL") {
            cmd.env_remove(k);
        }
        let out = cmd
            .env("NCR_DATABASE_URL", database_url)
            .env("NCR_PROFILE", "development")
            .env("NCR_DEMO_DATA", "never")
            .env("NCR_DATA_DIR", dir.display().to_string())
            .env("NCR_LOG_LEVEL", "error")
            .arg("--config")
            .arg(dir.join("ncr.toml"))
            .arg("import-legacy")
            .arg(dir.join("old.csv"))
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run ncr import-legacy");
        let _ = std::fs::remove_dir_all(&dir);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

db_test!(the_command_line_imports_legacy_files_all_or_nothing, |app| {
    // The command runs on the machine's own clock: rows without an appointment, so the
    // test does not depend on today's date.
    let person = &eligible_people(&app, 1).await[0];
    let code = tracking(814_000_001);
    let csv = format!(
        "{LEGACY_HEADER}\n\
         C-1,{},{},{},,{},islam,{},{},,,registered,{code},,,,{MARAGHEH},true,true,true,true\n\
         C-2,{},123456,1370-01-01,,female,islam,زهرا,09121112233,,,draft,,,,,,,,,\n",
        person.national_id,
        person.serial,
        person.birth_date,
        person.gender,
        person.mother_name,
        person.mobile,
        national_code(940_000_001),
    );
    let (status, out, err) = ncr_import_legacy(&app, &csv).await;
    assert_eq!(status, 0, "{out}\n{err}");
    assert_eq!(out.lines().last(), Some("2 created, 0 unchanged, 0 seats taken"), "{out}\n{err}");
    let (status, out, err) = ncr_import_legacy(&app, &csv).await;
    assert_eq!((status, out.lines().last()), (0, Some("0 created, 2 unchanged, 0 seats taken")), "{out}\n{err}");
    // A bad file: every bad cell on standard error, nothing imported, exit code 1.
    let bad = format!("{LEGACY_HEADER}\nC-3,1234567890,123456,1370-01-01,,female,islam,زهرا,0912,,,draft,,,,,,,,,\n");
    let (status, out, err) = ncr_import_legacy(&app, &bad).await;
    assert_eq!(status, 1, "{out}\n{err}");
    assert!(
        err.contains("row 2: national_id: national_id_invalid") && err.contains("row 2: mobile: mobile_invalid"),
        "{err}"
    );
    assert!(err.contains("nothing imported"), "{err}");
    assert!(!err.contains("1234567890") && !err.contains(&person.national_id), "no national code printed: {err}");
    // Sealed with the server's keys: the citizen enters and finds her application.
    let (status, entry) = enter_with(&app, json!({"national_id": person.national_id, "tracking_code": code})).await;
    assert_eq!(status, 201, "{entry}");
    assert_eq!(entry["application"]["delivery_office"]["id"], MARAGHEH, "{entry}");
    let token = app.login(&person.national_id, &person.serial).await;
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!(view["personal_info"]["mobile"], person.mobile.as_str());
});
