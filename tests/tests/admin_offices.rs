//! Office administration (issue "Enrollment offices, shift capacity…", part 1): offices,
//! weekly capacity, closures, national holidays and the CSV import, black-box over HTTP on
//! SQLite and PostgreSQL.

use api::seed::offices::MARAGHEH_OFFICE_ID;
use api::seed::population::{Persona, SAMPLE};
use ncr_tests::client::{personal_info, typical_needs};
use ncr_tests::{TestApp, db_test, json as read_json};
use serde_json::{Value, json};

/// A Sunday inside the booking window (the tests start on Sunday 2026-11-22).
const SUNDAY: &str = "2026-11-29";
/// The Monday after it.
const MONDAY: &str = "2026-11-30";
/// A Thursday: morning shift only in the standard week.
const THURSDAY: &str = "2026-11-26";

const CSV_HEADER: &str = "code,name,kind,province,city,city_code,phone,address,step_free_access,eye_exception_capture,fingerprint_exception_capture,home_visits,morning_capacity,afternoon_capacity";

fn new_office(code: &str) -> Value {
    json!({
        "code": code,
        "name": "دفتر پیشخوان دولت خیابان اول",
        "kind": "government_counter",
        "province": "آذربایجان شرقی",
        "city": "مراغه",
        "city_code": "041",
        "phone": "37261234",
        "address": "مراغه - خیابان اول - پلاک ۵",
        "step_free_access": true
    })
}

/// The personal information the registry expects for a persona.
fn info(p: &Persona) -> Value {
    let d = domain::calendar::JalaliDate::parse(p.birth_date).unwrap();
    let hijri = domain::calendar::lunar_birth_options(d)[2].to_string();
    let gender = match p.gender {
        domain::person::Gender::Female => "female",
        domain::person::Gender::Male => "male",
    };
    personal_info(p.birth_date, &hijri, gender, p.mother_name, p.mobile.unwrap_or("09121234567"))
}

/// SAMPLE through the first page and the special-needs questions; returns her token.
async fn citizen_ready(app: &TestApp) -> String {
    let token = app.login(SAMPLE.national_id, SAMPLE.serial).await;
    let (status, body) = app.put("/api/v1/citizen/application/personal-info", Some(&token), &info(&SAMPLE)).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app.put("/api/v1/citizen/application/special-needs", Some(&token), &typical_needs()).await;
    assert_eq!(status, 200, "{body}");
    token
}

async fn take_seat(app: &TestApp, token: &str, office: &str, date: &str, shift: &str) -> (u16, Value) {
    app.put(
        "/api/v1/citizen/application/appointment",
        Some(token),
        &json!({"office_id": office, "date": date, "shift": shift}),
    )
    .await
}

/// The availability rows of a city on a date.
async fn availability(app: &TestApp, city_code: &str, date: &str) -> Vec<Value> {
    let (status, body) =
        app.get(&format!("/api/v1/offices/availability?date={date}&city_code={city_code}&limit=100"), None).await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

/// (approved, free) of one office's shift in availability, if it is offered.
async fn seats(app: &TestApp, office: &str, date: &str, shift: &str) -> Option<(u64, u64)> {
    availability(app, "041", date)
        .await
        .into_iter()
        .find(|r| r["office"]["id"] == office && r["shift"] == shift)
        .map(|r| (r["approved"].as_u64().unwrap(), r["free"].as_u64().unwrap()))
}

/// Maragheh's standard week with some shifts changed.
fn week(changes: &[(&str, &str, Option<u32>)]) -> Value {
    let mut rules = Vec::new();
    for day in ["saturday", "sunday", "monday", "tuesday", "wednesday", "thursday"] {
        for shift in ["morning", "afternoon"] {
            if day == "thursday" && shift == "afternoon" {
                continue;
            }
            let change = changes.iter().find(|(d, s, _)| *d == day && *s == shift);
            match change {
                Some((_, _, None)) => {}
                Some((_, _, Some(c))) => rules.push(json!({"weekday": day, "shift": shift, "capacity": c})),
                None => rules.push(json!({"weekday": day, "shift": shift, "capacity": 20})),
            }
        }
    }
    json!({ "rules": rules })
}

async fn delete(app: &TestApp, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = app.http.delete(app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    read_json(req.send().await.unwrap()).await
}

async fn post_csv(app: &TestApp, token: Option<&str>, content_type: &str, body: String) -> (u16, Value) {
    let mut req =
        app.http.post(app.url("/api/v1/admin/offices/import")).header("Content-Type", content_type).body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    read_json(req.send().await.unwrap()).await
}

/// The codes of a city's offices as the admin list shows them.
async fn codes_in(app: &TestApp, token: &str, city_code: &str) -> Vec<String> {
    let (status, page) = app.get(&format!("/api/v1/admin/offices?city_code={city_code}&limit=500"), Some(token)).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().iter().map(|o| o["code"].as_str().unwrap().to_owned()).collect()
}

/// An operator of the Maragheh office, signed in.
async fn operator_token(app: &TestApp) -> String {
    let now = app.state.now().naive_utc();
    let user = persistence::staff::StaffUser {
        id: uuid::Uuid::now_v7().to_string().into(),
        username: "operator-mrg".into(),
        password_hash: api::passwords::hash("operator-password-1"),
        role: "operator".into(),
        office_id: Some(MARAGHEH_OFFICE_ID.into()),
        disabled: false,
        failed_attempts: 0,
        locked_until: None,
        token_version: 0,
        created_at: now,
        updated_at: now,
    };
    let mut conn = app.state.db.get().unwrap();
    persistence::staff::insert(&mut conn, &user).unwrap();
    app.staff_token("operator-mrg", "operator-password-1").await
}

fn error_fields(problem: &Value) -> Vec<String> {
    problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap().to_owned()).collect()
}

db_test!(a_new_office_is_offered_once_it_has_capacity_and_hidden_when_deactivated, |app| {
    let admin = app.admin_token().await;

    // Bad fields are all listed at once.
    let mut bad = new_office("041-MRG-09");
    bad["city_code"] = json!("41");
    bad["phone"] = json!("12");
    bad["name"] = json!("  ");
    let (status, p) = app.post("/api/v1/admin/offices", Some(&admin), &bad).await;
    assert_eq!(status, 422, "{p}");
    assert_eq!(error_fields(&p), ["name", "city_code", "phone"]);

    let (status, office) = app.post("/api/v1/admin/offices", Some(&admin), &new_office("041-MRG-09")).await;
    assert_eq!(status, 201, "{office}");
    let id = office["id"].as_str().unwrap().to_owned();
    assert_eq!((office["active"].as_bool(), office["kind"].as_str()), (Some(true), Some("government_counter")));
    let (status, p) = app.post("/api/v1/admin/offices", Some(&admin), &new_office("041-MRG-09")).await;
    assert_eq!((status, p["code"].as_str()), (409, Some("office_code_taken")));
    let (status, p) = app.post("/api/v1/admin/offices", Some(&admin), &new_office(MARAGHEH_OFFICE_ID)).await;
    assert_eq!((status, p["code"].as_str()), (409, Some("office_code_taken")));

    // No capacity yet: not offered.
    assert_eq!(seats(&app, &id, SUNDAY, "morning").await, None);
    let rules = json!({"rules": [
        {"weekday": "sunday", "shift": "morning", "capacity": 7},
        {"weekday": "monday", "shift": "afternoon", "capacity": 4},
    ]});
    let (status, cap) = app.put(&format!("/api/v1/admin/offices/{id}/capacity"), Some(&admin), &rules).await;
    assert_eq!(status, 200, "{cap}");
    assert_eq!(cap["rules"].as_array().unwrap().len(), 2);
    assert!(cap["slots_changed"].as_u64().unwrap() > 0);
    assert_eq!(seats(&app, &id, SUNDAY, "morning").await, Some((7, 7)));
    assert_eq!(seats(&app, &id, SUNDAY, "afternoon").await, None, "a shift without a rule is closed");
    assert_eq!(seats(&app, &id, MONDAY, "afternoon").await, Some((4, 4)));

    // Read, list, update.
    let (status, got) = app.get(&format!("/api/v1/admin/offices/{id}"), Some(&admin)).await;
    assert_eq!((status, got["code"].as_str()), (200, Some("041-MRG-09")));
    assert!(codes_in(&app, &admin, "041").await.contains(&"041-MRG-09".to_owned()));
    assert!(!codes_in(&app, &admin, "021").await.contains(&"041-MRG-09".to_owned()));
    let mut changed = new_office("041-MRG-10");
    changed["name"] = json!("دفتر پيشخوان تازه");
    let (status, updated) = app.put(&format!("/api/v1/admin/offices/{id}"), Some(&admin), &changed).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["name"], "دفتر پیشخوان تازه", "Arabic Yeh normalised");
    assert_eq!(updated["code"], "041-MRG-10");
    let rows = availability(&app, "041", SUNDAY).await;
    let row = rows.iter().find(|r| r["office"]["id"] == id.as_str()).unwrap();
    assert_eq!(row["office"]["name"], "دفتر پیشخوان تازه");
    let (status, p) =
        app.put(&format!("/api/v1/admin/offices/{id}"), Some(&admin), &new_office(MARAGHEH_OFFICE_ID)).await;
    assert_eq!((status, p["code"].as_str()), (409, Some("office_code_taken")));
    let (status, p) = app.get("/api/v1/admin/offices/no-such-office", Some(&admin)).await;
    assert_eq!((status, p["code"].as_str()), (404, Some("office_not_found")));

    // Deactivated: gone from availability; activated: back.
    let (status, change) = app.post(&format!("/api/v1/admin/offices/{id}/deactivate"), Some(&admin), &json!({})).await;
    assert_eq!(status, 200, "{change}");
    assert_eq!((change["office"]["active"].as_bool(), change["future_bookings"].as_i64()), (Some(false), Some(0)));
    assert_eq!(seats(&app, &id, SUNDAY, "morning").await, None);
    let (status, page) = app.get("/api/v1/admin/offices?city_code=041&active=false", Some(&admin)).await;
    assert_eq!(status, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let (status, _) = app.post(&format!("/api/v1/admin/offices/{id}/activate"), Some(&admin), &json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(seats(&app, &id, SUNDAY, "morning").await, Some((7, 7)));

    // Every change is in the audit log under the admin.
    let actions: Vec<String> = {
        use diesel::prelude::*;
        use persistence::schema::audit_log;
        let mut conn = app.state.db.get().unwrap();
        audit_log::table
            .filter(audit_log::actor_kind.eq("admin"))
            .order(audit_log::id)
            .select(audit_log::action)
            .load(&mut conn)
            .unwrap()
    };
    assert_eq!(
        actions,
        ["office_created", "office_capacity_set", "office_updated", "office_deactivated", "office_activated"]
    );
});

db_test!(the_office_list_pages_by_code, |app| {
    let admin = app.admin_token().await;
    let (status, first) = app.get("/api/v1/admin/offices?limit=5", Some(&admin)).await;
    assert_eq!(status, 200, "{first}");
    let items = first["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    let cursor = first["next_cursor"].as_str().unwrap();
    assert_eq!(cursor, items[4]["code"].as_str().unwrap());
    let mut seen: Vec<String> = items.iter().map(|o| o["code"].as_str().unwrap().to_owned()).collect();
    let mut cursor = Some(cursor.to_owned());
    while let Some(c) = cursor {
        let (status, page) = app.get(&format!("/api/v1/admin/offices?limit=5&cursor={c}"), Some(&admin)).await;
        assert_eq!(status, 200);
        seen.extend(page["items"].as_array().unwrap().iter().map(|o| o["code"].as_str().unwrap().to_owned()));
        cursor = page["next_cursor"].as_str().map(str::to_owned);
    }
    assert_eq!(seen.len(), 19, "every demo office once");
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
    let (status, p) = app.get("/api/v1/admin/offices?limit=0", Some(&admin)).await;
    assert_eq!(status, 422, "{p}");
});

db_test!(capacity_changes_show_in_free_seats_and_never_strand_bookings, |app| {
    let admin = app.admin_token().await;
    let token = citizen_ready(&app).await;
    let (status, view) = take_seat(&app, &token, MARAGHEH_OFFICE_ID, SUNDAY, "morning").await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(seats(&app, MARAGHEH_OFFICE_ID, SUNDAY, "morning").await, Some((20, 19)));

    let path = format!("/api/v1/admin/offices/{MARAGHEH_OFFICE_ID}/capacity");
    let (status, cap) = app.put(&path, Some(&admin), &week(&[("sunday", "morning", Some(5))])).await;
    assert_eq!(status, 200, "{cap}");
    assert_eq!(seats(&app, MARAGHEH_OFFICE_ID, SUNDAY, "morning").await, Some((5, 4)));
    assert_eq!(seats(&app, MARAGHEH_OFFICE_ID, MONDAY, "morning").await, Some((20, 20)));

    // Closing the booked shift by capacity is refused, naming the date, shift and count.
    let (status, p) = app.put(&path, Some(&admin), &week(&[("sunday", "morning", None)])).await;
    assert_eq!((status, p["code"].as_str()), (409, Some("capacity_below_bookings")), "{p}");
    let res = app
        .http
        .put(app.url(&path))
        .bearer_auth(&admin)
        .header("Accept-Language", "en")
        .json(&week(&[("sunday", "morning", Some(0)), ("monday", "morning", Some(3))]))
        .send()
        .await
        .unwrap();
    let (status, p) = read_json(res).await;
    assert_eq!(status, 409);
    let detail = p["detail"].as_str().unwrap();
    assert!(detail.contains(SUNDAY) && detail.contains("morning") && detail.starts_with("1 seats"), "{detail}");
    // Nothing changed: neither the rules nor any slot (Monday's 3 was not half-applied).
    let (status, cap) = app.get(&path, Some(&admin)).await;
    assert_eq!(status, 200);
    let sunday_morning =
        cap["rules"].as_array().unwrap().iter().find(|r| r["weekday"] == "sunday" && r["shift"] == "morning").unwrap();
    assert_eq!(sunday_morning["capacity"], 5);
    assert_eq!(seats(&app, MARAGHEH_OFFICE_ID, SUNDAY, "morning").await, Some((5, 4)));
    assert_eq!(seats(&app, MARAGHEH_OFFICE_ID, MONDAY, "morning").await, Some((20, 20)));

    // One date's override follows the same rule.
    let overrides = format!("/api/v1/admin/offices/{MARAGHEH_OFFICE_ID}/capacity-overrides");
    let (status, p) =
        app.post(&overrides, Some(&admin), &json!({"date": SUNDAY, "shift": "morning", "capacity": 0})).await;
    assert_eq!((status, p["code"].as_str()), (409, Some("capacity_below_bookings")));
    let (status, slot) =
        app.post(&overrides, Some(&admin), &json!({"date": SUNDAY, "shift": "morning", "capacity": 2})).await;
    assert_eq!(status, 200, "{slot}");
    assert_eq!((slot["capacity"].as_i64(), slot["taken"].as_i64()), (Some(2), Some(1)));
    assert_eq!(seats(&app, MARAGHEH_OFFICE_ID, SUNDAY, "morning").await, Some((2, 1)));
    let (_, cap) = app.get(&path, Some(&admin)).await;
    assert_eq!(cap["overrides"][0]["date"], SUNDAY);
    let (status, p) =
        app.post(&overrides, Some(&admin), &json!({"date": "2026-11-01", "shift": "morning", "capacity": 2})).await;
    assert_eq!((status, p["errors"][0]["field"].as_str()), (422, Some("date")), "the past cannot change");

    // Duplicate or oversized rules are refused per rule.
    let dup = json!({"rules": [
        {"weekday": "sunday", "shift": "morning", "capacity": 5},
        {"weekday": "sunday", "shift": "morning", "capacity": 6},
        {"weekday": "friday", "shift": "morning", "capacity": 5000},
    ]});
    let (status, p) = app.put(&path, Some(&admin), &dup).await;
    assert_eq!(status, 422);
    assert_eq!(error_fields(&p), ["rules[1]", "rules[2]"]);
});

db_test!(a_closure_closes_the_slot_and_reports_who_is_booked, |app| {
    let admin = app.admin_token().await;
    let token = citizen_ready(&app).await;
    let (status, _) = take_seat(&app, &token, MARAGHEH_OFFICE_ID, SUNDAY, "morning").await;
    assert_eq!(status, 200);

    let closures = format!("/api/v1/admin/offices/{MARAGHEH_OFFICE_ID}/closures");
    let (status, p) = app.post(&closures, Some(&admin), &json!({"date": SUNDAY, "reason": " "})).await;
    assert_eq!((status, p["errors"][0]["field"].as_str()), (422, Some("reason")));
    let (status, closed) =
        app.post(&closures, Some(&admin), &json!({"date": SUNDAY, "reason": "تعمیرات ساختمان"})).await;
    assert_eq!(status, 201, "{closed}");
    assert_eq!(closed["shifts"], json!(["morning", "afternoon"]));
    assert_eq!((closed["affected_holds"].as_i64(), closed["affected_bookings"].as_i64()), (Some(1), Some(0)));
    assert_eq!(seats(&app, MARAGHEH_OFFICE_ID, SUNDAY, "morning").await, None);
    assert_eq!(seats(&app, MARAGHEH_OFFICE_ID, SUNDAY, "afternoon").await, None);
    assert!(seats(&app, "041-MRG-02", SUNDAY, "morning").await.is_some(), "other offices stay open");

    // Booking the closed office fails; the citizen's existing hold stays.
    let (status, p) = take_seat(&app, &token, MARAGHEH_OFFICE_ID, SUNDAY, "afternoon").await;
    assert_eq!((status, p["code"].as_str()), (409, Some("slot_closed")), "{p}");
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!(view["appointment_status"], "held", "{view}");

    let (status, list) = app.get(&closures, Some(&admin)).await;
    assert_eq!(status, 200);
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert_eq!(list["items"][0]["reason"], "تعمیرات ساختمان");
    assert!(list["next_cursor"].is_null(), "{list}");
    // The one page shape: a page at a time, never a cursor to an empty page.
    let (_, first) = app.get(&format!("{closures}?limit=1"), Some(&admin)).await;
    let cursor = first["next_cursor"].as_str().expect("a second page").to_owned();
    let (_, second) = app.get(&format!("{closures}?limit=1&cursor={cursor}"), Some(&admin)).await;
    assert_eq!((&first["items"][0], &second["items"][0]), (&list["items"][0], &list["items"][1]));
    assert!(second["next_cursor"].is_null(), "{second}");

    // Reopening one shift.
    let (status, reopened) = delete(&app, &format!("{closures}/{SUNDAY}?shift=afternoon"), Some(&admin)).await;
    assert_eq!(status, 200, "{reopened}");
    assert_eq!(reopened["reopened"], json!(["afternoon"]));
    assert_eq!(seats(&app, MARAGHEH_OFFICE_ID, SUNDAY, "afternoon").await, Some((20, 20)));
    assert_eq!(seats(&app, MARAGHEH_OFFICE_ID, SUNDAY, "morning").await, None);
    let (status, _) = take_seat(&app, &token, MARAGHEH_OFFICE_ID, SUNDAY, "afternoon").await;
    assert_eq!(status, 200);
    let (status, p) = delete(&app, &format!("{closures}/{SUNDAY}?shift=afternoon"), Some(&admin)).await;
    assert_eq!((status, p["code"].as_str()), (404, Some("closure_not_found")));
});

db_test!(a_national_holiday_closes_every_office, |app| {
    let admin = app.admin_token().await;
    assert!(!availability(&app, "041", MONDAY).await.is_empty());
    assert!(!availability(&app, "021", MONDAY).await.is_empty());
    let (status, h) =
        app.post("/api/v1/admin/holidays", Some(&admin), &json!({"date": MONDAY, "name": "تعطیل رسمی"})).await;
    assert_eq!(status, 201, "{h}");
    assert_eq!(h["slots_closed"], 38, "19 demo offices, two shifts each");
    assert_eq!(h["affected_bookings"], 0);
    assert!(availability(&app, "041", MONDAY).await.is_empty());
    assert!(availability(&app, "021", MONDAY).await.is_empty());
    assert!(!availability(&app, "041", SUNDAY).await.is_empty(), "only that day");

    let (status, list) = app.get(&format!("/api/v1/admin/holidays?from={MONDAY}&to={MONDAY}"), Some(&admin)).await;
    assert_eq!(status, 200);
    assert_eq!(list["items"], json!([{"date": MONDAY, "date_jalali": "1405-09-09", "name": "تعطیل رسمی"}]));
    assert!(list["next_cursor"].is_null(), "{list}");
    // Paged like every list: a second holiday is on the second page of one.
    let (status, _) =
        app.post("/api/v1/admin/holidays", Some(&admin), &json!({"date": "2026-12-02", "name": "دوم"})).await;
    assert_eq!(status, 201);
    let range = format!("/api/v1/admin/holidays?from={MONDAY}&to=2026-12-02&limit=1");
    let (_, first) = app.get(&range, Some(&admin)).await;
    assert_eq!(first["items"][0]["date"], MONDAY);
    let cursor = first["next_cursor"].as_str().expect("a second page").to_owned();
    let (_, second) = app.get(&format!("{range}&cursor={cursor}"), Some(&admin)).await;
    assert_eq!((second["items"][0]["date"].as_str(), second["next_cursor"].as_str()), (Some("2026-12-02"), None));
    let (status, p) = app.get(&format!("{range}&cursor=yesterday"), Some(&admin)).await;
    assert_eq!((status, p["errors"][0]["field"].as_str()), (422, Some("cursor")), "{p}");

    // A capacity change afterwards keeps the holiday closed.
    let path = format!("/api/v1/admin/offices/{MARAGHEH_OFFICE_ID}/capacity");
    let (status, _) = app.put(&path, Some(&admin), &week(&[("monday", "morning", Some(30))])).await;
    assert_eq!(status, 200);
    assert_eq!(seats(&app, MARAGHEH_OFFICE_ID, MONDAY, "morning").await, None);
});

db_test!(a_csv_import_creates_and_updates_offices, |app| {
    let admin = app.admin_token().await;
    let csv = format!(
        "{CSV_HEADER}\n\
         041-CSV-01,دفتر پست ولیعصر مراغه,post_office,آذربایجان شرقی,مراغه,041,37269999,\"مراغه، خیابان ولیعصر، پلاک ۱\",true,false,false,false,12,8\n\
         041-MRG-02,دفتر پیشخوان دولت مراغه (نوسازی شده),government_counter,آذربایجان شرقی,مراغه,041,37251234,مراغه - خیابان خواجه نصیر - پلاک ۱۲,false,false,false,false,25,20\n"
    );
    let (status, result) = post_csv(&app, Some(&admin), "text/csv; charset=utf-8", csv.clone()).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!((result["created"].as_u64(), result["updated"].as_u64()), (Some(1), Some(1)));

    let (_, page) = app.get("/api/v1/admin/offices?city_code=041&limit=500", Some(&admin)).await;
    let items = page["items"].as_array().unwrap();
    let created = items.iter().find(|o| o["code"] == "041-CSV-01").unwrap();
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["kind"], "post_office");
    assert_eq!(created["step_free_access"], true);
    let updated = items.iter().find(|o| o["code"] == "041-MRG-02").unwrap();
    assert_eq!(updated["name"], "دفتر پیشخوان دولت مراغه (نوسازی شده)");

    // The standard week: Saturday–Wednesday both shifts, Thursday morning, no Friday.
    assert_eq!(seats(&app, id, SUNDAY, "morning").await, Some((12, 12)));
    assert_eq!(seats(&app, id, SUNDAY, "afternoon").await, Some((8, 8)));
    assert_eq!(seats(&app, id, THURSDAY, "morning").await, Some((12, 12)));
    assert_eq!(seats(&app, id, THURSDAY, "afternoon").await, None);
    let (_, cap) = app.get(&format!("/api/v1/admin/offices/{id}/capacity"), Some(&admin)).await;
    assert_eq!(cap["rules"].as_array().unwrap().len(), 11);
    // Wednesday afternoon of 041-MRG-02 was 16 in the demo week; the file makes it 20.
    assert_eq!(seats(&app, "041-MRG-02", "2026-11-25", "afternoon").await, Some((20, 20)));

    // The same file again changes nothing.
    let (status, again) = post_csv(&app, Some(&admin), "text/csv", csv).await;
    assert_eq!(status, 200);
    assert_eq!(
        (again["created"].as_u64(), again["updated"].as_u64(), again["unchanged"].as_u64()),
        (Some(0), Some(0), Some(2))
    );
});

db_test!(a_csv_file_with_bad_rows_imports_nothing, |app| {
    let admin = app.admin_token().await;
    let csv = format!(
        "{CSV_HEADER}\n\
         041-CSV-01,دفتر یک,post_office,آذربایجان شرقی,مراغه,041,37269999,نشانی یک,true,false,false,false,12,8\n\
         041-CSV-02,دفتر دو,post_office,آذربایجان شرقی,مراغه,041,12,نشانی دو,true,false,false,false,12,8\n\
         041-CSV-03,دفتر سه,bank,آذربایجان شرقی,مراغه,041,37269998,نشانی سه,true,false,false,false,12,8\n"
    );
    let (status, p) = post_csv(&app, Some(&admin), "text/csv", csv.clone()).await;
    assert_eq!(status, 422, "{p}");
    assert_eq!(p["code"], "validation_failed");
    assert_eq!(error_fields(&p), ["row 3: phone", "row 4: kind"]);
    assert_eq!(p["errors"][0]["code"], "phone_invalid");
    let codes = codes_in(&app, &admin, "041").await;
    assert!(!codes.iter().any(|c| c.starts_with("041-CSV")), "nothing imported: {codes:?}");

    // Not CSV, too many rows.
    let (status, p) = post_csv(&app, Some(&admin), "application/json", csv).await;
    assert_eq!((status, p["code"].as_str()), (415, Some("unsupported_media_type")));
    let mut big = format!("{CSV_HEADER}\n");
    for i in 0..10_001 {
        big.push_str(&format!("X-{i},دفتر,post_office,استان,شهر,041,37269999,نشانی,true,false,false,false,1,1\n"));
    }
    let (status, p) = post_csv(&app, Some(&admin), "text/csv", big).await;
    assert_eq!((status, p["code"].as_str()), (422, Some("csv_too_many_rows")));
});

db_test!(a_capacity_in_a_csv_update_cannot_strand_bookings, |app| {
    let admin = app.admin_token().await;
    let token = citizen_ready(&app).await;
    let (status, _) = take_seat(&app, &token, MARAGHEH_OFFICE_ID, SUNDAY, "afternoon").await;
    assert_eq!(status, 200);
    let csv = format!(
        "{CSV_HEADER}\n\
         041-CSV-01,دفتر یک,post_office,آذربایجان شرقی,مراغه,041,37269999,نشانی یک,true,false,false,false,12,8\n\
         {MARAGHEH_OFFICE_ID},اداره ثبت احوال مراغه,civil_registry,آذربایجان شرقی,مراغه,041,11222226,مراغه - خ پاسداران - اداره ثبت احوال مراغه,true,false,false,false,20,0\n"
    );
    let (status, p) = post_csv(&app, Some(&admin), "text/csv", csv).await;
    assert_eq!(status, 422, "{p}");
    assert_eq!(error_fields(&p), ["row 3: afternoon_capacity"]);
    assert_eq!(p["errors"][0]["code"], "capacity_below_bookings");
    assert!(!codes_in(&app, &admin, "041").await.contains(&"041-CSV-01".to_owned()));
    assert_eq!(seats(&app, MARAGHEH_OFFICE_ID, SUNDAY, "afternoon").await, Some((20, 19)));
});

db_test!(only_administrators_reach_office_administration, |app| {
    let operator = operator_token(&app).await;
    let citizen = app.login(SAMPLE.national_id, SAMPLE.serial).await;
    let office = format!("/api/v1/admin/offices/{MARAGHEH_OFFICE_ID}");
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    let put = reqwest::Method::PUT;
    let routes: Vec<(reqwest::Method, String, Value)> = vec![
        (get.clone(), "/api/v1/admin/offices".into(), Value::Null),
        (post.clone(), "/api/v1/admin/offices".into(), new_office("041-MRG-77")),
        (get.clone(), office.clone(), Value::Null),
        (put.clone(), office.clone(), new_office(MARAGHEH_OFFICE_ID)),
        (post.clone(), format!("{office}/deactivate"), json!({})),
        (post.clone(), format!("{office}/activate"), json!({})),
        (get.clone(), format!("{office}/capacity"), Value::Null),
        (put.clone(), format!("{office}/capacity"), week(&[])),
        (
            post.clone(),
            format!("{office}/capacity-overrides"),
            json!({"date": SUNDAY, "shift": "morning", "capacity": 3}),
        ),
        (get.clone(), format!("{office}/closures"), Value::Null),
        (post.clone(), format!("{office}/closures"), json!({"date": SUNDAY, "reason": "test"})),
        (reqwest::Method::DELETE, format!("{office}/closures/{SUNDAY}"), Value::Null),
        (get.clone(), "/api/v1/admin/holidays".into(), Value::Null),
        (post.clone(), "/api/v1/admin/holidays".into(), json!({"date": SUNDAY, "name": "test"})),
    ];
    for (method, path, body) in &routes {
        for (token, expected) in [(None, 401), (Some(operator.as_str()), 403), (Some(citizen.as_str()), 403)] {
            let mut req = app.http.request(method.clone(), app.url(path));
            if !body.is_null() {
                req = req.json(body);
            }
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let (status, p) = read_json(req.send().await.unwrap()).await;
            assert_eq!(status, expected, "{method} {path} with {token:?}: {p}");
            assert!(p["code"].is_string());
        }
    }
    let csv = format!("{CSV_HEADER}\n");
    let (status, _) = post_csv(&app, None, "text/csv", csv.clone()).await;
    assert_eq!(status, 401);
    let (status, _) = post_csv(&app, Some(&operator), "text/csv", csv).await;
    assert_eq!(status, 403);
    // Nothing changed on the way.
    let admin = app.admin_token().await;
    let (_, office_now) = app.get(&office, Some(&admin)).await;
    assert_eq!(office_now["active"], true);
    assert!(!codes_in(&app, &admin, "041").await.contains(&"041-MRG-77".to_owned()));
});

// Slots carry their office's city for the search (issue 11): moving an office to another
// city moves its seats there too.
db_test!(an_office_moved_to_another_city_is_searched_there, |app| {
    let admin = app.admin_token().await;
    let (status, office) = app.post("/api/v1/admin/offices", Some(&admin), &new_office("041-MRG-09")).await;
    assert_eq!(status, 201, "{office}");
    let id = office["id"].as_str().unwrap().to_owned();
    let rules = json!({"rules": [{"weekday": "sunday", "shift": "morning", "capacity": 7}]});
    let (status, cap) = app.put(&format!("/api/v1/admin/offices/{id}/capacity"), Some(&admin), &rules).await;
    assert_eq!(status, 200, "{cap}");
    let offered = |rows: Vec<Value>| rows.iter().any(|r| r["office"]["id"] == id.as_str());
    assert!(offered(availability(&app, "041", SUNDAY).await));
    let mut moved = new_office("044-URM-09");
    moved["city_code"] = json!("044");
    moved["city"] = json!("ارومیه");
    let (status, updated) = app.put(&format!("/api/v1/admin/offices/{id}"), Some(&admin), &moved).await;
    assert_eq!(status, 200, "{updated}");
    assert!(offered(availability(&app, "044", SUNDAY).await), "searched in its new city");
    assert!(!offered(availability(&app, "041", SUNDAY).await), "and no longer in the old one");
});
