//! Home visits (issue 19 item 1). docs/domain/booking.md, «شناسایی شهروندان نیازمند به تکمیل ثبت نام خاص»:
//! «شهروندانی که به پرسش نخست پاسخ خیر می دهند ناگزیر خواهند بود زمان بیشتری در نوبت
//! بمانند» — a citizen who answers "no" to «آیا سلامتی کافی برای خروج از خانه دارید؟» is
//! enrolled at home (docs/domain/booking.md: "'No' to the first puts the citizen in the home-visit queue").
//! The address is given before payment; the home-visit offices of the city see the queue and
//! schedule the visit on their own capacity; then check-in, completion, production and
//! delivery as usual — on both databases.

use chrono::NaiveDate;
use domain::text::persian_digits;
use ncr_tests::journey::{Person, eligible_people};
use ncr_tests::{TestApp, db_test};
use serde_json::{Value, json};

/// Tehran's office that makes home visits (demo data), and two that cannot serve this citizen.
const HOME_OFFICE: &str = "021-TEH-01";
const NO_VISITS_OFFICE: &str = "021-TEH-02";
const OTHER_CITY_OFFICE: &str = "051-MHD-01";
const USSD_SECRET: &str = "home-visit-ussd-secret";
const ADDRESS: &str = "تهران - تجریش - خیابان شهید دربندی - کوچه ۵ - پلاک ۱۲";

fn with_ussd(c: &mut api::config::Config) {
    c.ussd.secret = Some(USSD_SECRET.into());
}

fn home_needs() -> Value {
    json!({"can_leave_home": false, "can_climb_stairs": true, "pupils_visible": true, "fingers_intact": true})
}

fn home_address() -> Value {
    json!({"address": ADDRESS, "postal_code": "1964713811", "landline": "021-2271 2345", "notes": "زنگ دوم"})
}

fn ops(view: &Value) -> Vec<String> {
    view["allowed_operations"].as_array().unwrap().iter().map(|o| o.as_str().unwrap().to_owned()).collect()
}

fn jalali_fa(d: NaiveDate) -> String {
    persian_digits(&domain::calendar::JalaliDate::from_gregorian(d).unwrap().to_string().replace('-', "/"))
}

/// Entry, personal information and "cannot leave home"; returns the token.
async fn home_draft(app: &TestApp, p: &Person) -> String {
    let token = app.login(&p.national_id, &p.serial).await;
    let (status, body) = app.put("/api/v1/citizen/application/personal-info", Some(&token), &p.personal_info()).await;
    assert_eq!(status, 201, "{body}");
    let (status, view) = app.put("/api/v1/citizen/application/special-needs", Some(&token), &home_needs()).await;
    assert_eq!(status, 200, "{view}");
    token
}

/// Pays the card fee at the sandbox bank (no seat); returns the application.
async fn pay(app: &TestApp, token: &str) -> Value {
    let payment = app.start_payment(token).await;
    let (action, fields) = app.bank_choose(payment["redirect_url"].as_str().unwrap(), "success").await;
    let location = app.post_callback(&action, &fields).await;
    assert!(location.contains("outcome=success"), "{location}");
    let (_, view) = app.get("/api/v1/citizen/application", Some(token)).await;
    assert_eq!(view["state"], "registered", "{view}");
    view
}

async fn queue(app: &TestApp, op: &str, status: &str) -> (u16, Value) {
    app.get(&format!("/api/v1/office/home-visits?status={status}"), Some(op)).await
}

fn has(page: &Value, tracking: &str) -> bool {
    page["items"].as_array().unwrap().iter().any(|r| r["tracking_code"] == tracking)
}

async fn texts_to(app: &TestApp, admin: &str, mobile: &str) -> Vec<String> {
    api::jobs::deliver_outbox(&app.state).await.expect("outbox");
    let (status, page) = app.get(&format!("/api/v1/admin/sandbox/sms?to={mobile}&limit=200"), Some(admin)).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap().to_owned()).collect()
}

/// Every USSD screen of the mobile's one application, following `0` (more) while offered.
async fn ussd_pages(app: &TestApp, mobile: &str) -> String {
    let mut path: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for _ in 0..12 {
        let res = app
            .http
            .post(app.url("/api/v1/ussd"))
            .header("X-USSD-Secret", USSD_SECRET)
            .form(&[
                ("sessionId", "hv"),
                ("phoneNumber", mobile),
                ("serviceCode", "*4*6090#"),
                ("text", &path.join("*")),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        let body = res.text().await.unwrap();
        let more = body.contains("۰ بیشتر");
        out.push(body);
        if !more {
            break;
        }
        path.push("0");
    }
    out.join("\n")
}

db_test!(a_home_visit_citizen_goes_from_entry_to_delivery, tweak = with_ussd, |app| {
    let admin = app.admin_token().await;
    for (user, office) in [("op.home", HOME_OFFICE), ("op.vanak", NO_VISITS_OFFICE), ("op.mashhad", OTHER_CITY_OFFICE)]
    {
        app.create_operator(&admin, user, office).await;
    }
    let p = eligible_people(&app, 1).await.remove(0);

    // "No" to the first question: no office seat, the address first.
    let token = home_draft(&app, &p).await;
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!(
        (view["home_visit"].as_bool(), view["next_step"].as_str()),
        (Some(true), Some("enter_home_visit_address"))
    );
    assert!(ops(&view).contains(&"set_home_visit_address".into()) && !ops(&view).contains(&"pay".into()), "{view}");
    let (status, problem) =
        app.post("/api/v1/citizen/application/payments", Some(&token), &json!({"gateway": "sandbox"})).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("home_visit_address_required")), "{problem}");
    assert_eq!(problem["detail"], "ابتدا نشانی منزل را برای مراجعه مأمور تکمیل ثبت نام وارد کنید.");

    // The address: checked, normalised, filed under the landline's city, sealed at rest.
    let path = "/api/v1/citizen/application/home-visit";
    let mut bad = home_address();
    bad["landline"] = json!("09121234567");
    bad["postal_code"] = json!("1234");
    let (status, problem) = app.put(path, Some(&token), &bad).await;
    assert_eq!(status, 422, "{problem}");
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert!(fields.contains(&"landline") && fields.contains(&"postal_code"), "{problem}");
    let (status, view) = app.put(path, Some(&token), &home_address()).await;
    assert_eq!(status, 200, "{view}");
    let given = &view["home_visit_address"];
    assert_eq!((given["landline"].as_str(), given["city_code"].as_str()), (Some("02122712345"), Some("021")));
    assert_eq!((given["address"].as_str(), given["notes"].as_str()), (Some(ADDRESS), Some("زنگ دوم")));
    assert_eq!(view["next_step"], "pay");
    assert_eq!(app.count_sql("SELECT COUNT(*) AS n FROM home_visits").await, 1);
    assert_eq!(
        app.count_sql("SELECT COUNT(*) AS n FROM home_visits WHERE details_enc LIKE '%دربندی%' OR details_enc LIKE '%02122712345%'")
            .await,
        0,
        "sealed at rest"
    );

    // Paid without a seat: "we will visit you".
    let view = pay(&app, &token).await;
    let tracking = view["tracking_code"].as_str().unwrap().to_owned();
    assert_eq!(view["next_step"], "wait_for_home_visit");
    assert!(view["next_step_text"].as_str().unwrap().contains("به منزل شما مراجعه می‌کنیم"), "{view}");
    let (status, receipt) = app.get("/api/v1/citizen/application/receipt", Some(&token)).await;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!((receipt["home_visit"].as_bool(), receipt["home_visit_address"].as_str()), (Some(true), Some(ADDRESS)));
    assert!(receipt["prerequisites"][0]["fa"].as_str().unwrap().contains("به منزل شما مراجعه"), "{receipt}");
    let page = app
        .http
        .get(app.url("/api/v1/citizen/application/receipt.html"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("تکمیل ثبت نام در منزل") && page.contains("دربندی"), "the receipt says home visit");
    assert!(!page.contains("دفتر تکمیل ثبت نام منتخب"));

    // The queue: the city's home-visit offices see it; others do not.
    let op = app.staff_token("op.home", "operator-password-1").await;
    let (status, waiting) = queue(&app, &op, "waiting").await;
    assert_eq!(status, 200, "{waiting}");
    let row = waiting["items"].as_array().unwrap().iter().find(|r| r["tracking_code"] == tracking.as_str()).unwrap();
    assert_eq!((row["address"].as_str(), row["landline"].as_str()), (Some(ADDRESS), Some("02122712345")));
    assert_eq!((row["mobile"].as_str(), row["status"].as_str()), (Some(p.mobile.as_str()), Some("waiting")));
    assert!(row["waiting_since"].is_string() && row["visit"].is_null(), "{row}");
    assert!(waiting["next_cursor"].is_null());
    let vanak = app.staff_token("op.vanak", "operator-password-1").await;
    let (status, problem) = queue(&app, &vanak, "waiting").await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("office_no_home_visits")), "{problem}");
    assert_eq!(problem["detail"], "این دفتر مراجعه در منزل انجام نمی‌دهد.", "{problem}");
    let mashhad = app.staff_token("op.mashhad", "operator-password-1").await;
    let (status, theirs) = queue(&app, &mashhad, "waiting").await;
    assert!(status == 200 && !has(&theirs, &tracking), "another city's queue: {theirs}");
    let (status, _) = app.get("/api/v1/office/home-visits?status=someday", Some(&op)).await;
    assert_eq!(status, 400);

    // Scheduling takes a seat of the office's capacity; another city's office cannot.
    let schedule = format!("/api/v1/office/home-visits/{tracking}/schedule");
    let today = domain::calendar::tehran_date(app.clock_now());
    let first = app.open_date(HOME_OFFICE, 2).await;
    let full = app.open_date(HOME_OFFICE, (first - today).num_days() + 1).await;
    let visit_day = app.open_date(HOME_OFFICE, (full - today).num_days() + 1).await;
    let (status, problem) = app.post(&schedule, Some(&mashhad), &json!({"date": first, "shift": "morning"})).await;
    assert_eq!((status, problem["code"].as_str()), (404, Some("application_not_found")), "{problem}");
    let (status, problem) = app.post(&schedule, Some(&op), &json!({"date": today, "shift": "morning"})).await;
    assert_eq!((status, problem["code"].as_str()), (422, Some("date_outside_booking_window")), "{problem}");
    let (_, taken) = app.slot_counts(HOME_OFFICE, full, "morning").await;
    app.set_slot(HOME_OFFICE, full, "morning", taken).await;
    let (status, problem) = app.post(&schedule, Some(&op), &json!({"date": full, "shift": "morning"})).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("slot_full")), "capacity counts: {problem}");
    let before_first = app.slot_counts(HOME_OFFICE, first, "morning").await;
    let (status, view) = app.post(&schedule, Some(&op), &json!({"date": first, "shift": "morning"})).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(app.slot_counts(HOME_OFFICE, first, "morning").await.1, before_first.1 + 1);
    // The office moves it: the first seat is given back.
    let before_visit = app.slot_counts(HOME_OFFICE, visit_day, "afternoon").await;
    let (status, view) = app.post(&schedule, Some(&op), &json!({"date": visit_day, "shift": "afternoon"})).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(app.slot_counts(HOME_OFFICE, first, "morning").await.1, before_first.1);
    assert_eq!(app.slot_counts(HOME_OFFICE, visit_day, "afternoon").await.1, before_visit.1 + 1);
    assert_eq!(
        (view["appointment"]["office"]["id"].as_str(), view["appointment"]["status"].as_str()),
        (Some(HOME_OFFICE), Some("booked"))
    );

    // The citizen is told, with the date, everywhere.
    let date_fa = jalali_fa(visit_day);
    let texts = texts_to(&app, &admin, &p.mobile).await;
    assert!(
        texts.iter().any(|t| t.contains("به منزلتان می‌آییم") && t.contains(&date_fa) && t.contains("عصر")),
        "{texts:?}"
    );
    let token = app.login(&p.national_id, &p.serial).await;
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!(view["next_step"], "home_visit_scheduled");
    let text = view["next_step_text"].as_str().unwrap();
    assert!(text.contains(&date_fa) && text.contains("به منزل شما مراجعه"), "{text}");
    let (status, problem) = app.put(path, Some(&token), &home_address()).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("invalid_transition")), "scheduled: {problem}");
    let (status, public) =
        app.get(&format!("/api/v1/public/status?national_id={}&tracking_code={tracking}", p.national_id), None).await;
    assert_eq!(status, 200, "{public}");
    assert_eq!(public["next_step"], "home_visit_scheduled");
    assert!(public["next_step_text"].as_str().unwrap().contains(&date_fa), "{public}");
    let ussd = ussd_pages(&app, &p.mobile).await;
    assert!(ussd.contains(&date_fa) && ussd.contains("منزل"), "{ussd}");
    let (_, receipt) = app.get("/api/v1/citizen/application/receipt", Some(&token)).await;
    assert_eq!(receipt["enrollment"]["date"], visit_day.to_string());
    let (_, waiting) = queue(&app, &op, "waiting").await;
    assert!(!has(&waiting, &tracking));
    let (_, scheduled) = queue(&app, &op, "scheduled").await;
    assert!(has(&scheduled, &tracking), "{scheduled}");
    assert_eq!(scheduled["items"][0]["visit"]["date"], visit_day.to_string());

    // The visit: check-in at the home, completion, as at the office.
    app.clock.set(domain::calendar::tehran_instant(visit_day, 14, 0));
    let op = app.staff_token("op.home", "operator-password-1").await;
    let office = |step: &str| format!("/api/v1/office/applications/{tracking}/{step}");
    let (status, view) = app.post(&office("check-in"), Some(&op), &json!({})).await;
    assert_eq!((status, view["state"].as_str()), (200, Some("enrollment_started")), "{view}");
    let completion = json!({
        "postal_code": "1964713811", "address": ADDRESS, "landline": "02122712345", "documents_checked": true,
        "fingerprints": "captured", "face": "captured", "capture_reference": "HOME-1"
    });
    let (status, view) = app.post(&office("completion"), Some(&op), &completion).await;
    assert_eq!((status, view["state"].as_str()), (200, Some("enrolled")), "{view}");
    let (_, done) = queue(&app, &op, "done").await;
    assert!(has(&done, &tracking), "{done}");
    let (status, receipt) = app.get(&office("enrollment-receipt"), Some(&op)).await;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(
        (receipt["home_visit"].as_bool(), receipt["delivery_office"]["id"].as_str()),
        (Some(true), Some(HOME_OFFICE))
    );

    // Production and delivery.
    let admin = app.admin_token().await;
    let factory = app.machine_token(&admin, "home-factory", "production").await;
    let events = format!("/api/v1/production/applications/{tracking}/events");
    for (i, kind) in ["production_started", "card_produced", "dispatched", "ready_for_delivery"].into_iter().enumerate()
    {
        let (status, v) =
            app.post(&events, Some(&factory), &json!({"event_id": format!("hv-{i}"), "kind": kind})).await;
        assert_eq!(status, 201, "{kind}: {v}");
    }
    let (status, view) = app.post(&office("delivery"), Some(&op), &json!({"fingerprint_match": true})).await;
    assert_eq!((status, view["state"].as_str()), (200, Some("delivered")), "{view}");
    let token = app.login(&p.national_id, &p.serial).await;
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!((view["state"].as_str(), view["next_step"].as_str()), (Some("delivered"), Some("done")));
});

db_test!(answering_yes_again_returns_a_waiting_citizen_to_the_office_path, |app| {
    let admin = app.admin_token().await;
    app.create_operator(&admin, "op.home", HOME_OFFICE).await;
    let p = eligible_people(&app, 1).await.remove(0);
    let token = home_draft(&app, &p).await;
    let (status, _) = app.put("/api/v1/citizen/application/home-visit", Some(&token), &home_address()).await;
    assert_eq!(status, 200);
    let view = pay(&app, &token).await;
    let tracking = view["tracking_code"].as_str().unwrap().to_owned();
    let op = app.staff_token("op.home", "operator-password-1").await;
    assert!(has(&queue(&app, &op, "waiting").await.1, &tracking));

    // "Yes, I can leave home" after all: back to choosing an office, out of the queue.
    let (status, view) =
        app.put("/api/v1/citizen/application/special-needs", Some(&token), &ncr_tests::client::typical_needs()).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!((view["home_visit"].as_bool(), view["next_step"].as_str()), (Some(false), Some("choose_appointment")));
    assert!(view["booking_deadline"].is_string() && ops(&view).contains(&"change_appointment".into()), "{view}");
    assert!(!has(&queue(&app, &op, "waiting").await.1, &tracking));
    let (status, problem) = app.put("/api/v1/citizen/application/home-visit", Some(&token), &home_address()).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("home_visit_not_required")));
    // Paid already: the seat is booked at once.
    let date = app.open_date(HOME_OFFICE, 2).await;
    let (status, view) = app.hold(&token, HOME_OFFICE, date, "morning").await;
    assert_eq!((status, view["appointment_status"].as_str()), (200, Some("booked")), "{view}");
    assert_eq!(view["next_step"], "attend_enrollment");
    let (status, problem) = app
        .post(
            &format!("/api/v1/office/home-visits/{tracking}/schedule"),
            Some(&op),
            &json!({"date": date, "shift": "morning"}),
        )
        .await;
    assert_eq!(status, 404, "no longer a home visit: {problem}");
});

db_test!(a_visit_on_a_day_the_office_closes_goes_back_to_the_queue, |app| {
    let admin = app.admin_token().await;
    app.create_operator(&admin, "op.home", HOME_OFFICE).await;
    let p = eligible_people(&app, 1).await.remove(0);
    let token = home_draft(&app, &p).await;
    let (status, _) = app.put("/api/v1/citizen/application/home-visit", Some(&token), &home_address()).await;
    assert_eq!(status, 200);
    let tracking = pay(&app, &token).await["tracking_code"].as_str().unwrap().to_owned();
    let op = app.staff_token("op.home", "operator-password-1").await;
    let day = app.open_date(HOME_OFFICE, 3).await;
    let schedule = format!("/api/v1/office/home-visits/{tracking}/schedule");
    let (status, view) = app.post(&schedule, Some(&op), &json!({"date": day, "shift": "morning"})).await;
    assert_eq!(status, 200, "{view}");

    // The office closes that day: no no-show, and the visit waits in the queue again.
    let (status, closed) = app
        .post(
            &format!("/api/v1/admin/offices/{HOME_OFFICE}/closures"),
            Some(&admin),
            &json!({"date": day, "reason": "تعمیرات"}),
        )
        .await;
    assert_eq!(status, 201, "{closed}");
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!(view["next_step"], "wait_for_home_visit", "{view}");
    assert!(view["no_show_ban_until"].is_null());
    let (_, waiting) = queue(&app, &op, "waiting").await;
    assert!(has(&waiting, &tracking), "{waiting}");
    let (_, scheduled) = queue(&app, &op, "scheduled").await;
    assert!(!has(&scheduled, &tracking));

    // Scheduled again on another day; every seat is accounted for.
    let next = app.open_date(HOME_OFFICE, (day - domain::calendar::tehran_date(app.clock_now())).num_days() + 1).await;
    let before = app.slot_counts(HOME_OFFICE, next, "morning").await.1;
    let (status, view) = app.post(&schedule, Some(&op), &json!({"date": next, "shift": "morning"})).await;
    assert_eq!((status, view["next_step"].as_str()), (200, Some("home_visit_scheduled")), "{view}");
    assert_eq!(app.slot_counts(HOME_OFFICE, next, "morning").await.1, before + 1);
    let held = app
        .count_sql(&format!(
            "SELECT COUNT(*) AS n FROM applications WHERE tracking_code = '{tracking}' AND appointment_status = 'booked'"
        ))
        .await;
    assert_eq!(held, 1);
});
