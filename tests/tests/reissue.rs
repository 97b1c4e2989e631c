//! Re-issue (issue 19 item 4). docs/domain/application.md: «در صورتی که تا پیش از تغییر سریال مرحله ی
//! تولید کارت آغاز شده باشد پس از تحویل کارت تولید شده در دفتر تکمیل ثبت نام نسبت به ثبت
//! درخواست صدور مجدد اقدام نموده و کارت جدید دریافت خواهد کرد» — docs/domain/application.md: "Serial changed
//! after production started: the citizen must apply for a re-issue after delivery (a new card
//! cycle)". The new cycle is linked to the delivered one and pays the re-issue fee of the
//! tariff; on both databases.

use api::seed::offices::MARAGHEH_OFFICE_ID as MARAGHEH;
use api::seed::population::SAMPLE;
use chrono::NaiveDate;
use ncr_tests::{TestApp, db_test};
use serde_json::{Value, json};

const NEW_SERIAL: &str = "883999";
const REISSUE_FEE: i64 = 350_000;

fn ops(view: &Value) -> Vec<String> {
    view["allowed_operations"].as_array().unwrap().iter().map(|o| o.as_str().unwrap().to_owned()).collect()
}

async fn post_ok(app: &TestApp, token: &str, path: &str, body: Value, want: u16) -> Value {
    let (status, answer) = app.post(path, Some(token), &body).await;
    assert_eq!(status, want, "{path}: {answer}");
    answer
}

db_test!(a_card_is_reissued_after_delivery_with_its_fee, |app| {
    let admin = app.admin_token().await;
    // The tariff has a re-issue fee of its own.
    let today = domain::calendar::tehran_date(app.clock_now());
    post_ok(
        &app,
        &admin,
        "/api/v1/admin/fees",
        json!({"kind": "reissue", "amount": REISSUE_FEE, "effective_from": today}),
        201,
    )
    .await;
    let (_, fees) = app.get("/api/v1/admin/fees", Some(&admin)).await;
    assert!(
        fees["current"].as_array().unwrap().iter().any(|f| f["kind"] == "reissue" && f["amount"] == REISSUE_FEE),
        "{fees}"
    );
    let (_, info) = app.get("/api/v1/public/process-info", None).await;
    assert_eq!(info["fees"]["reissue_fee"], REISSUE_FEE, "{info}");
    app.create_operator(&admin, "op.maragheh", MARAGHEH).await;
    let factory = app.machine_token(&admin, "reissue-factory", "production").await;

    // First cycle: registered and paid (the card fee).
    let token = app.register_and_pay(&SAMPLE).await;
    let (status, problem) =
        app.post("/api/v1/citizen/application/reissue", Some(&token), &json!({"reason": "lost"})).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("reissue_not_allowed")), "before delivery: {problem}");
    let (status, problem) =
        app.post("/api/v1/citizen/application/reissue", Some(&token), &json!({"reason": "stolen?"})).await;
    assert_eq!(status, 422, "{problem}");
    let (_, first) = app.get("/api/v1/citizen/application", Some(&token)).await;
    let first_tracking = first["tracking_code"].as_str().unwrap().to_owned();
    let (_, payments) = app.get("/api/v1/citizen/application/payments", Some(&token)).await;
    assert_eq!(payments["items"][0]["amount"], 200_000, "the first cycle paid the card fee: {payments}");
    let date: NaiveDate = first["appointment"]["date"].as_str().unwrap().parse().unwrap();

    // Enrolled, and production starts.
    app.clock.set(domain::calendar::tehran_instant(date, 9, 0));
    let op = app.staff_token("op.maragheh", "operator-password-1").await;
    let factory = {
        let _ = factory;
        let admin = app.admin_token().await;
        let (status, rotated) =
            app.post("/api/v1/admin/kiosk-clients/reissue-factory/rotate", Some(&admin), &json!({})).await;
        assert_eq!(status, 200, "{rotated}");
        let res = app
            .http
            .post(app.url("/api/v1/oauth/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "reissue-factory"),
                ("client_secret", rotated["client_secret"].as_str().unwrap()),
            ])
            .send()
            .await
            .unwrap();
        ncr_tests::json(res).await.1["access_token"].as_str().unwrap().to_owned()
    };
    let office = |step: &str| format!("/api/v1/office/applications/{first_tracking}/{step}");
    post_ok(&app, &op, &office("check-in"), json!({}), 200).await;
    let completion = json!({
        "postal_code": "5518743111", "address": "مراغه - خیابان پاسداران - پلاک ۱۲", "landline": "04137221234",
        "documents_checked": true, "fingerprints": "captured", "face": "captured", "capture_reference": "CAP-R1"
    });
    post_ok(&app, &op, &office("completion"), completion, 200).await;
    let events = format!("/api/v1/production/applications/{first_tracking}/events");
    post_ok(&app, &factory, &events, json!({"event_id": "r-1", "kind": "production_started"}), 201).await;

    // The birth certificate is replaced after production started (the registry knows the new
    // serial since three days): entry with it marks the card for re-issue after delivery.
    let changed = app
        .exec_sql(&format!(
            "UPDATE registry_people SET serial = '{NEW_SERIAL}', serial_changed_at = '{}' WHERE national_id = '{}'",
            (app.clock_now() - chrono::Duration::days(3)).naive_utc().format("%Y-%m-%d %H:%M:%S"),
            SAMPLE.national_id
        ))
        .await;
    assert_eq!(changed, 1);
    let token = app.login(SAMPLE.national_id, NEW_SERIAL).await;
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!((view["state"].as_str(), view["reissue_required"].as_bool()), (Some("in_production"), Some(true)));
    for (i, kind) in ["card_produced", "dispatched", "ready_for_delivery"].into_iter().enumerate() {
        post_ok(&app, &factory, &events, json!({"event_id": format!("r-{}", i + 2), "kind": kind}), 201).await;
    }
    post_ok(&app, &op, &office("delivery"), json!({"fingerprint_match": true}), 200).await;

    // Entry routes the citizen to the re-issue.
    let (status, session) = app.enter(SAMPLE.national_id, NEW_SERIAL).await;
    assert_eq!(status, 201, "{session}");
    assert_eq!(session["next_step"], "request_reissue", "{session}");
    assert!(session["next_step_text"].as_str().unwrap().contains("صدور مجدد"));
    let token = session["token"].as_str().unwrap().to_owned();
    assert!(ops(&session["application"]).contains(&"request_reissue".into()), "{session}");

    // The new cycle, linked to the delivered one.
    let path = "/api/v1/citizen/application/reissue";
    let (status, second) = app.post(path, Some(&token), &json!({"reason": "serial_changed"})).await;
    assert_eq!(status, 201, "{second}");
    assert_eq!((second["cycle"].as_i64(), second["state"].as_str()), (Some(2), Some("draft")));
    assert_eq!(second["reissue"]["reason"], "serial_changed");
    assert_eq!(second["reissue"]["previous_tracking_code"], first_tracking.as_str());
    assert!(second["tracking_code"].is_null() && second["payment_status"] == "unpaid", "{second}");
    assert_eq!(second["next_step"], "choose_appointment", "identity and answers carried over: {second}");
    let history = second["history"].as_array().unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        (history[0]["cycle"].as_i64(), history[0]["state"].as_str(), history[0]["tracking_code"].as_str()),
        (Some(1), Some("delivered"), Some(first_tracking.as_str()))
    );
    assert_eq!(second["personal_info"]["mother_name"], SAMPLE.mother_name);
    // The same request again: the same cycle; another reason: refused.
    let (status, again) = app.post(path, Some(&token), &json!({"reason": "serial_changed"})).await;
    assert_eq!((status, again["id"].clone()), (200, second["id"].clone()), "{again}");
    let (status, problem) = app.post(path, Some(&token), &json!({"reason": "lost"})).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("reissue_not_allowed")));
    assert_eq!(app.count_sql(&format!("SELECT COUNT(*) AS n FROM applications WHERE nid_hash = (SELECT nid_hash FROM applications WHERE tracking_code = '{first_tracking}')")).await, 2);

    // Book and pay: the re-issue fee.
    let seat = app.open_date(MARAGHEH, 2).await;
    let (status, held) = app.hold(&token, MARAGHEH, seat, "morning").await;
    assert_eq!(status, 200, "{held}");
    let payment = app.start_payment(&token).await;
    assert_eq!(payment["amount"], REISSUE_FEE, "{payment}");
    let (action, fields) = app.bank_choose(payment["redirect_url"].as_str().unwrap(), "success").await;
    let location = app.post_callback(&action, &fields).await;
    assert!(location.contains("outcome=success"), "{location}");
    let (_, paid) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!((paid["state"].as_str(), paid["payment_status"].as_str()), (Some("registered"), Some("paid")));
    let second_tracking = paid["tracking_code"].as_str().unwrap();
    assert_ne!(second_tracking, first_tracking, "a new cycle, a new tracking code");
    assert_eq!(paid["next_step"], "attend_enrollment");
    assert_eq!(paid["history"][0]["tracking_code"], first_tracking.as_str());
    let (_, receipt) = app.get("/api/v1/citizen/application/receipt", Some(&token)).await;
    assert_eq!(receipt["payment"]["amount"], REISSUE_FEE, "{receipt}");
    // The audit log links both cycles.
    let reissued =
        app.count_sql("SELECT COUNT(*) AS n FROM audit_log WHERE action IN ('reissue_requested', 'reissued')").await;
    assert_eq!(reissued, 2);
});
