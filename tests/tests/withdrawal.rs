//! Withdrawal and refunds (issue 19 item 3), black-box on SQLite and PostgreSQL: "before
//! enrollment starts: seat freed, application `cancelled`. Unpaid → done. Paid → the citizen
//! gives a Sheba number (IR + 24 digits, ISO 13616 check digits), the payment becomes
//! `refund_requested`; admins list and settle them; SMS at each step. A same-day Sadad
//! reverse is used when the bank still allows it."

use api::seed::offices::MARAGHEH_OFFICE_ID as MARAGHEH;
use api::seed::population::{MALE, SAMPLE};
use chrono::Duration;
use ncr_tests::journey::{Person, eligible_people};
use ncr_tests::{TestApp, db_test};
use serde_json::{Value, json};

/// A published Sheba number (the SWIFT IBAN registry's example for Iran).
const IBAN: &str = "IR710570029971601460641001";
const REASON: &str = "به خارج از کشور مهاجرت می‌کنم";

async fn withdraw(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    app.post("/api/v1/citizen/application/withdrawal", Some(token), &body).await
}

/// The texts the sandbox phone received, newest first (after the outbox worker ran).
async fn phone(app: &TestApp, mobile: &str) -> Vec<String> {
    api::jobs::deliver_outbox(&app.state).await.expect("outbox");
    let admin = app.admin_token().await;
    let (status, page) = app.get(&format!("/api/v1/admin/sandbox/sms?to={mobile}&limit=200"), Some(&admin)).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap().to_owned()).collect()
}

async fn payment_statuses(app: &TestApp, token: &str) -> Vec<String> {
    let (status, page) = app.get("/api/v1/citizen/application/payments", Some(token)).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().iter().map(|p| p["status"].as_str().unwrap().to_owned()).collect()
}

// Issue 19: "Unpaid → done": the held seat goes back, the application is closed, an SMS
// confirms; nothing is owed. Asking again is refused; the citizen may start a new cycle.
db_test!(an_unpaid_citizen_withdraws_and_the_held_seat_goes_back, |app| {
    let p = Person::from(&SAMPLE);
    let date = app.open_date(MARAGHEH, 2).await;
    let (_, before) = app.slot_counts(MARAGHEH, date, "morning").await;
    let token = app.draft(&p).await;
    let (status, view) = app.hold(&token, MARAGHEH, date, "morning").await;
    assert_eq!(status, 200, "{view}");
    assert!(view["allowed_operations"].as_array().unwrap().contains(&json!("withdraw")), "{view}");
    assert_eq!(app.slot_counts(MARAGHEH, date, "morning").await.1, before + 1);

    let (status, out) = withdraw(&app, &token, json!({"reason": REASON})).await;
    assert_eq!(status, 200, "{out}");
    let v = &out["application"];
    assert_eq!((v["state"].as_str(), v["next_step"].as_str()), (Some("cancelled"), Some("application_closed")));
    assert_eq!((v["payment_status"].as_str(), v["appointment_status"].as_str()), (Some("unpaid"), Some("none")));
    assert_eq!(v["allowed_operations"], json!([]));
    assert!(out["refund"].is_null(), "nothing was paid: {out}");
    assert_eq!(app.slot_counts(MARAGHEH, date, "morning").await.1, before, "the seat is freed");
    assert_eq!(phone(&app, &p.mobile).await, ["انصراف شما ثبت شد و درخواست کارت ملی بسته شد."]);

    let (status, again) = withdraw(&app, &token, json!({"reason": REASON})).await;
    assert_eq!((status, again["code"].as_str()), (409, Some("application_cancelled")), "{again}");
    // A new card cycle starts with the first page again.
    let (status, fresh) = app.put("/api/v1/citizen/application/personal-info", Some(&token), &p.personal_info()).await;
    assert_eq!((status, fresh["state"].as_str()), (201, Some("draft")), "{fresh}");
});

// Issue 19: paid, on the day of the payment: "a same-day … reverse is used when the bank
// still allows it" — the gateway reverses it at once, the refund is settled, two SMS.
db_test!(a_paid_citizen_withdrawing_the_same_day_is_refunded_by_a_reversal, |app| {
    let p = Person::from(&SAMPLE);
    let date = app.open_date(MARAGHEH, 3).await;
    let (token, location) = app.hold_and_pay(&p, MARAGHEH, date, "success").await;
    assert!(location.contains("outcome=success"), "{location}");
    let (_, taken) = app.slot_counts(MARAGHEH, date, "morning").await;

    // A paid fee needs a valid Sheba number: a clear problem for each mistake, nothing changed.
    let (status, p1) = withdraw(&app, &token, json!({"reason": REASON})).await;
    assert_eq!((status, p1["code"].as_str()), (422, Some("iban_required")), "{p1}");
    assert_eq!(p1["errors"][0]["field"], "iban");
    let (status, p2) = withdraw(&app, &token, json!({"reason": REASON, "iban": "IR710570029971601460641002"})).await;
    assert_eq!((status, p2["errors"][0]["code"].as_str()), (422, Some("iban_invalid")), "a wrong check digit: {p2}");
    let (status, p3) = withdraw(&app, &token, json!({"reason": "  ", "iban": "IR7105"})).await;
    assert_eq!(status, 422, "{p3}");
    let fields: Vec<&str> = p3["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["reason", "iban"]);
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!((view["state"].as_str(), view["payment_status"].as_str()), (Some("registered"), Some("paid")));
    assert_eq!(app.slot_counts(MARAGHEH, date, "morning").await.1, taken);

    // Typed as people type it: spaces and Persian digits.
    let typed = "IR71 0570 0299 7160 ۱۴۶۰ ۶۴۱۰ ۰۱";
    let (status, out) = withdraw(&app, &token, json!({"reason": REASON, "iban": typed})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["application"]["state"], "cancelled");
    let refund = &out["refund"];
    assert_eq!((refund["status"].as_str(), refund["method"].as_str()), (Some("settled"), Some("reversal")), "{out}");
    assert_eq!(
        (refund["amount"].as_i64(), refund["iban"].as_str()),
        (Some(200_000), Some("IR********************1001"))
    );
    assert_eq!(out["application"]["payment_status"], "refunded", "the reversal settled it");
    assert_eq!(app.slot_counts(MARAGHEH, date, "morning").await.1, taken - 1, "the booked seat is freed");
    assert_eq!(payment_statuses(&app, &token).await, ["refunded"]);
    assert_eq!(
        app.count_sql("SELECT count(*) AS n FROM sandbox_bank_payments WHERE reversed").await,
        1,
        "the bank reversed the payment"
    );
    // Both texts leave in one outbox batch, in either order.
    let mut texts = phone(&app, &p.mobile).await;
    texts.truncate(2);
    texts.sort();
    let mut expected = [
        "هزینه کارت ملی به کارت پرداخت‌کننده بازگشت.",
        "انصراف ثبت شد؛ هزینه کارت ملی به حساب شبای شما بازگردانده می‌شود.",
    ];
    expected.sort();
    assert_eq!(texts, expected, "the withdrawal's two texts");

    // The Sheba number and the reason are sealed at rest (outside the sandbox bank).
    let hits = ncr_tests::at_rest::clear_values(&app, &[IBAN.to_owned(), REASON.to_owned()]).await;
    let leaked: Vec<_> = hits.into_iter().filter(|h| !h.in_sandbox()).collect();
    assert!(leaked.is_empty(), "in clear: {leaked:?}");
    let log = std::fs::read_to_string(ncr_tests::test_log_path()).unwrap_or_default();
    assert!(!log.contains(IBAN) && !log.contains("0570029971601460641001"), "the Sheba number is in the log");
});

// Issue 19: paid, after the day of the payment (the bank settled it; no reversal): the
// payment becomes `refund_requested`; an administrator lists it with the Sheba number,
// transfers the money and records the bank's reference; the citizen gets an SMS with it.
db_test!(a_paid_withdrawal_after_the_payment_day_is_settled_by_an_administrator, |app| {
    let p = Person::from(&MALE);
    let date = app.open_date(MARAGHEH, 4).await;
    let (token, _) = app.hold_and_pay(&p, MARAGHEH, date, "success").await;
    app.clock.advance(Duration::days(1));
    let token = {
        let _ = token;
        app.login(&p.national_id, &p.serial).await
    };
    let (status, out) = withdraw(&app, &token, json!({"reason": REASON, "iban": IBAN})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!((out["refund"]["status"].as_str(), out["refund"]["method"].as_str()), (Some("requested"), None));
    assert_eq!(out["application"]["payment_status"], "refund_pending");
    assert_eq!(payment_statuses(&app, &token).await, ["refund_requested"]);
    assert_eq!(app.count_sql("SELECT count(*) AS n FROM sandbox_bank_payments WHERE reversed").await, 0);

    let admin = app.admin_token().await;
    let (status, page) = app.get("/api/v1/admin/refunds?status=requested", Some(&admin)).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["next_cursor"], Value::Null);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    let item = &items[0];
    assert_eq!(
        (item["iban"].as_str(), item["amount"].as_i64()),
        (Some(IBAN), Some(200_000)),
        "the admin sees where to pay"
    );
    assert_eq!(item["tracking_code"], out["application"]["tracking_code"]);
    let id = item["refund_id"].as_str().unwrap().to_owned();

    // Bad settlements: a clear problem each, nothing written.
    let settle = |id: String, body: Value| {
        let (app, admin) = (&app, admin.clone());
        async move { app.post(&format!("/api/v1/admin/refunds/{id}/settle"), Some(&admin), &body).await }
    };
    let (status, p1) = settle(id.clone(), json!({"bank_reference": ""})).await;
    assert_eq!((status, p1["errors"][0]["field"].as_str()), (422, Some("bank_reference")), "{p1}");
    let (status, p2) = settle("no-such-refund".into(), json!({"bank_reference": "700000810000002"})).await;
    assert_eq!((status, p2["code"].as_str()), (404, Some("refund_not_found")), "{p2}");
    let (status, p3) = settle(id.clone(), json!({"reference": "700000810000002"})).await;
    assert_eq!(status, 422, "{p3}");

    let (status, settled) = settle(id.clone(), json!({"bank_reference": "700000810000002"})).await;
    assert_eq!(status, 200, "{settled}");
    assert_eq!((settled["status"].as_str(), settled["method"].as_str()), (Some("settled"), Some("transfer")));
    assert_eq!(settled["bank_reference"], "700000810000002");
    assert!(settled["settled_by"].is_string() && settled["settled_at"].is_string());
    let (status, twice) = settle(id.clone(), json!({"bank_reference": "700000810000003"})).await;
    assert_eq!((status, twice["code"].as_str()), (409, Some("refund_already_settled")), "{twice}");

    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!((view["state"].as_str(), view["payment_status"].as_str()), (Some("cancelled"), Some("refunded")));
    assert_eq!(payment_statuses(&app, &token).await, ["refunded"]);
    // Both SMS (withdrawal registered, refund paid) go out in one outbox batch here, in
    // either order: look for the one that matters, not for the newest.
    let texts = phone(&app, &p.mobile).await;
    let paid = "هزینه کارت ملی به حساب شبای شما واریز شد. پیگیری: 700000810000002";
    assert!(texts.iter().any(|t| t == paid), "{texts:?}");
    let (_, requested) = app.get("/api/v1/admin/refunds?status=requested", Some(&admin)).await;
    assert_eq!(requested["items"], json!([]));
    let (status, bad) = app.get("/api/v1/admin/refunds?status=lost", Some(&admin)).await;
    assert_eq!((status, bad["errors"][0]["field"].as_str()), (422, Some("status")));
    // Every step is in the audit log.
    let actions = app
        .count_sql(&format!(
            "SELECT count(*) AS n FROM audit_log WHERE application_id = '{}' AND action IN ('application_withdrawn', 'refund_settled')",
            view["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(actions, 2);
});

// The gateway does not answer the same-day reversal: the refund stays with the gateway
// (an administrator cannot pay it twice), the reconciliation job retries, and once the
// day is over it waits for a transfer.
db_test!(a_reversal_the_bank_does_not_answer_is_retried_then_transferred, |app| {
    let p = Person::from(&SAMPLE);
    let date = app.open_date(MARAGHEH, 3).await;
    let (token, _) = app.hold_and_pay(&p, MARAGHEH, date, "success").await;
    app.state.sandboxes.bank.set_reverse_unavailable(true);
    let (status, out) = withdraw(&app, &token, json!({"reason": REASON, "iban": IBAN})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["refund"]["status"], "reversing", "{out}");
    let id = out["refund"]["refund_id"].as_str().unwrap().to_owned();
    let admin = app.admin_token().await;
    let path = format!("/api/v1/admin/refunds/{id}/settle");
    let (status, busy) = app.post(&path, Some(&admin), &json!({"bank_reference": "R-1"})).await;
    assert_eq!((status, busy["code"].as_str()), (409, Some("refund_reversal_in_progress")), "{busy}");

    // Still down at the next check; then the day ends.
    app.clock.advance(Duration::minutes(5));
    api::jobs::run(&app.state, "reconcile_payments").await.unwrap();
    let (_, page) = app.get("/api/v1/admin/refunds?status=reversing", Some(&admin)).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "retried, still with the gateway: {page}");
    app.clock.advance(Duration::days(1));
    api::jobs::run(&app.state, "reconcile_payments").await.unwrap();
    let admin = app.admin_token().await;
    let (_, page) = app.get("/api/v1/admin/refunds?status=requested", Some(&admin)).await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert!(items[0]["reversal_error"].as_str().is_some_and(|e| e.contains("day")), "{page}");
    app.state.sandboxes.bank.set_reverse_unavailable(false);
    let (status, settled) = app.post(&path, Some(&admin), &json!({"bank_reference": "R-2"})).await;
    assert_eq!((status, settled["method"].as_str()), (200, Some("transfer")), "{settled}");
    assert_eq!(
        app.count_sql("SELECT count(*) AS n FROM sandbox_bank_payments WHERE reversed").await,
        0,
        "paid back once"
    );
});

// No withdrawal once enrollment started or while a payment is at the bank; nothing
// half-written when a withdrawal fails inside its transaction.
db_test!(withdrawal_is_refused_once_enrollment_started_and_leaves_nothing_half_written, |app| {
    let people = eligible_people(&app, 2).await;
    let date = app.open_date(MARAGHEH, 2).await;
    // At the bank.
    let token = app.draft(&people[0]).await;
    app.hold(&token, MARAGHEH, date, "morning").await;
    app.start_payment(&token).await;
    let (status, p) = withdraw(&app, &token, json!({"reason": REASON})).await;
    assert_eq!((status, p["code"].as_str()), (409, Some("payment_in_progress")), "{p}");

    // A failure after the first writes of the transaction (its verified payment is gone):
    // the application, the seat, the outbox and the audit log are as before.
    let (token, _) = app.hold_and_pay(&people[1], MARAGHEH, date, "success").await;
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    let id = view["id"].as_str().unwrap().to_owned();
    let (_, taken) = app.slot_counts(MARAGHEH, date, "morning").await;
    app.exec_sql(&format!("UPDATE payments SET status = 'unknown' WHERE application_id = '{id}'")).await;
    let count = |sql: &str| {
        let sql = sql.replace("{id}", &id);
        let app = &app;
        async move { app.count_sql(&sql).await }
    };
    let outbox = count("SELECT count(*) AS n FROM outbox WHERE application_id = '{id}'").await;
    let audit = count("SELECT count(*) AS n FROM audit_log WHERE application_id = '{id}'").await;
    let (status, p) = withdraw(&app, &token, json!({"reason": REASON, "iban": IBAN})).await;
    assert_eq!((status, p["code"].as_str()), (500, Some("internal_error")), "{p}");
    let (_, after) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!((after["state"].as_str(), after["appointment_status"].as_str()), (Some("registered"), Some("booked")));
    assert_eq!(app.slot_counts(MARAGHEH, date, "morning").await.1, taken, "the seat is still taken");
    assert_eq!(count("SELECT count(*) AS n FROM refunds WHERE application_id = '{id}'").await, 0);
    assert_eq!(count("SELECT count(*) AS n FROM outbox WHERE application_id = '{id}'").await, outbox);
    assert_eq!(count("SELECT count(*) AS n FROM audit_log WHERE application_id = '{id}'").await, audit);
    assert_eq!(
        count("SELECT count(*) AS n FROM applications WHERE id = '{id}' AND withdrawal_reason_enc IS NOT NULL").await,
        0
    );

    // Checked in: enrollment started.
    app.exec_sql(&format!("UPDATE payments SET status = 'verified' WHERE application_id = '{id}'")).await;
    app.clock.set(domain::calendar::tehran_instant(date, 9, 0));
    let admin = app.admin_token().await;
    let (_, op) = app.create_operator(&admin, "withdrawal.op", MARAGHEH).await;
    let code = after["tracking_code"].as_str().unwrap();
    let (status, body) = app.post(&format!("/api/v1/office/applications/{code}/check-in"), Some(&op), &json!({})).await;
    assert_eq!(status, 200, "{body}");
    let token = app.login(&people[1].national_id, &people[1].serial).await;
    let (status, p) = withdraw(&app, &token, json!({"reason": REASON, "iban": IBAN})).await;
    assert_eq!((status, p["code"].as_str()), (409, Some("enrollment_started")), "{p}");
});
