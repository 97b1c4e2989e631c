//! Paying through the sandbox bank (docs/domain/payments.md «پرداخت»), every seed
//! scenario, on SQLite and PostgreSQL.

use api::seed::offices::MARAGHEH_OFFICE_ID as MARAGHEH;
use api::seed::population::{MALE, SAMPLE};
use chrono::Duration;
use futures_util::future::join_all;
use ncr_tests::db_test;
use ncr_tests::journey::Person;
use serde_json::json;

db_test!(the_whole_journey_through_the_sandbox_bank_form, |app| {
    let date = app.open_date(MARAGHEH, 2).await;
    let token = app.draft(&Person::from(&SAMPLE)).await;
    let (status, _) = app.hold(&token, MARAGHEH, date, "morning").await;
    assert_eq!(status, 200);
    let (_, taken) = app.slot_counts(MARAGHEH, date, "morning").await;
    let payment = app.start_payment(&token).await;
    assert_eq!(payment["amount"], 200_000, "the card fee from the 2017 tariff");
    assert_eq!(payment["status"], "redirected");
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!((view["state"].as_str(), view["payment_status"].as_str()), (Some("payment_pending"), Some("pending")));

    // The bank page shows merchant, amount, order id and the remaining time.
    let page = app.http.get(payment["redirect_url"].as_str().unwrap()).send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'none'"));
    let html = page.text().await.unwrap();
    assert!(
        html.contains("سازمان ثبت احوال کشور")
            && html.contains("۲۰۰,۰۰۰")
            && html.contains(&payment["order_id"].to_string())
    );
    assert!(html.contains(r#"id="remaining""#) && html.contains("15:00"));

    let (action, fields) = app.bank_choose(payment["redirect_url"].as_str().unwrap(), "success").await;
    let location = app.post_callback(&action, &fields).await;
    assert!(location.contains("/payment/result?outcome=success"), "{location}");
    assert!(location.contains("tracking_code="), "{location}");

    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!(view["state"], "registered");
    assert_eq!(view["payment_status"], "paid");
    assert_eq!(view["appointment_status"], "booked");
    assert_eq!(view["next_step"], "attend_enrollment");
    let code = view["tracking_code"].as_str().unwrap();
    assert!(domain::ids::TrackingCode::parse(code).is_ok() && location.ends_with(code));
    assert_eq!(
        app.slot_counts(MARAGHEH, date, "morning").await.1,
        taken,
        "the hold became the booking: no second seat"
    );
    let result = app.http.get(location).send().await.unwrap().text().await.unwrap();
    assert!(result.contains(code));
});

db_test!(five_concurrent_callbacks_make_one_transition_and_one_notification, |app| {
    let date = app.open_date(MARAGHEH, 2).await;
    let token = app.draft(&Person::from(&SAMPLE)).await;
    app.hold(&token, MARAGHEH, date, "morning").await;
    let payment = app.start_payment(&token).await;
    let (action, fields) = app.bank_choose(payment["redirect_url"].as_str().unwrap(), "success").await;
    let locations = join_all((0..5).map(|_| app.post_callback(&action, &fields))).await;
    assert!(locations.iter().all(|l| l.contains("outcome=success")), "{locations:?}");
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    let id = view["id"].as_str().unwrap();
    assert_eq!(
        app.count_sql(&format!(
            "SELECT COUNT(*) AS n FROM audit_log WHERE application_id = '{id}' AND action = 'payment_verified'"
        ))
        .await,
        1
    );
    assert_eq!(
        app.count_sql(&format!(
            "SELECT COUNT(*) AS n FROM outbox WHERE application_id = '{id}' AND template = 'registration'"
        ))
        .await,
        1
    );
    assert_eq!(
        app.count_sql(&format!(
            "SELECT COUNT(*) AS n FROM payments WHERE application_id = '{id}' AND status = 'verified'"
        ))
        .await,
        1
    );
});

db_test!(a_forged_callback_leaves_the_application_unpaid, |app| {
    let date = app.open_date(MARAGHEH, 2).await;
    let token = app.draft(&Person::from(&SAMPLE)).await;
    app.hold(&token, MARAGHEH, date, "morning").await;
    let payment = app.start_payment(&token).await;
    // The citizen never paid; someone posts "OK" for the order anyway.
    let token_at_bank = payment["redirect_url"].as_str().unwrap().rsplit('/').next().unwrap().to_owned();
    let fields = vec![
        ("token".to_owned(), token_at_bank),
        ("order_id".to_owned(), payment["order_id"].to_string()),
        ("status".to_owned(), "OK".to_owned()),
    ];
    let location = app.post_callback(&app.url("/api/v1/payments/sandbox/callback"), &fields).await;
    assert!(location.contains("outcome=pending"), "{location}");
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!(view["payment_status"], "pending");
    assert!(view["tracking_code"].is_null());
    // A callback for an unknown order, or with a token that is not the order's, is invalid.
    let bogus = vec![("order_id".to_owned(), "42".to_owned()), ("status".to_owned(), "OK".to_owned())];
    assert!(app.post_callback(&app.url("/api/v1/payments/sandbox/callback"), &bogus).await.contains("outcome=invalid"));
    let wrong_token = vec![
        ("token".to_owned(), "feedface".to_owned()),
        ("order_id".to_owned(), payment["order_id"].to_string()),
        ("status".to_owned(), "OK".to_owned()),
    ];
    assert!(
        app.post_callback(&app.url("/api/v1/payments/sandbox/callback"), &wrong_token)
            .await
            .contains("outcome=invalid")
    );
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_ne!(view["payment_status"], "paid");
});

db_test!(a_cancelled_payment_releases_the_hold, |app| {
    let date = app.open_date(MARAGHEH, 2).await;
    let (_, before) = app.slot_counts(MARAGHEH, date, "morning").await;
    let (token, location) = app.hold_and_pay(&Person::from(&SAMPLE), MARAGHEH, date, "cancel").await;
    assert!(location.contains("outcome=cancelled"), "{location}");
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!((view["state"].as_str(), view["payment_status"].as_str()), (Some("draft"), Some("failed")));
    assert_eq!(view["next_step"], "choose_appointment", "back to choosing a slot");
    assert_eq!(app.slot_counts(MARAGHEH, date, "morning").await.1, before, "the seat is free again");
    // …and the citizen can book and pay again.
    let (status, _) = app.hold(&token, MARAGHEH, date, "morning").await;
    assert_eq!(status, 200);
    app.start_payment(&token).await;
});

db_test!(money_deducted_but_not_confirmed_is_refund_pending_and_still_payable, |app| {
    let date = app.open_date(MARAGHEH, 2).await;
    let (token, location) = app.hold_and_pay(&Person::from(&SAMPLE), MARAGHEH, date, "failed_after_debit").await;
    assert!(location.contains("outcome=refund_pending"), "{location}");
    let page = app.http.get(&location).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("۷۲ ساعت"), "the citizen is told refunds take up to 72 hours");
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!(view["payment_status"], "refund_pending");
    assert_eq!(view["next_step"], "choose_appointment");
    let (_, payments) = app.get("/api/v1/citizen/application/payments", Some(&token)).await;
    assert_eq!(payments["items"][0]["status"], "refund_pending");
    assert!(payments["next_cursor"].is_null(), "{payments}");
    // Still payable: hold and pay again, successfully.
    app.hold(&token, MARAGHEH, date, "morning").await;
    let payment = app.start_payment(&token).await;
    let (action, fields) = app.bank_choose(payment["redirect_url"].as_str().unwrap(), "success").await;
    assert!(app.post_callback(&action, &fields).await.contains("outcome=success"));
});

db_test!(the_bank_never_answering_releases_the_hold_and_expires_the_payment, |app| {
    let date = app.open_date(MARAGHEH, 2).await;
    let (_, before) = app.slot_counts(MARAGHEH, date, "morning").await;
    let token = app.draft(&Person::from(&SAMPLE)).await;
    app.hold(&token, MARAGHEH, date, "morning").await;
    let payment = app.start_payment(&token).await;
    // The citizen walks away from the bank page.
    app.clock.advance(Duration::minutes(16));
    assert_eq!(api::jobs::release_expired_holds(&app.state).await.unwrap(), 1);
    assert_eq!(app.slot_counts(MARAGHEH, date, "morning").await.1, before);
    app.clock.advance(Duration::minutes(5));
    assert_eq!(api::journey::payment::reconcile(&app.state).await.unwrap(), 1);
    let id = payment["payment_id"].as_str().unwrap();
    assert_eq!(
        app.count_sql(&format!("SELECT COUNT(*) AS n FROM payments WHERE id = '{id}' AND status = 'expired'")).await,
        1
    );
    let token = app.login(SAMPLE.national_id, SAMPLE.serial).await;
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!((view["state"].as_str(), view["next_step"].as_str()), (Some("draft"), Some("choose_appointment")));
});

db_test!(paid_but_the_browser_closed_is_found_by_reconciliation, |app| {
    let date = app.open_date(MARAGHEH, 2).await;
    let token = app.draft(&Person::from(&SAMPLE)).await;
    app.hold(&token, MARAGHEH, date, "morning").await;
    let (_, before) = app.slot_counts(MARAGHEH, date, "morning").await;
    let payment = app.start_payment(&token).await;
    // Paid at the bank, but the browser closed before the callback.
    let _ = app.bank_choose(payment["redirect_url"].as_str().unwrap(), "success").await;
    // The hold runs out, then reconciliation verifies the payment server to server.
    app.clock.advance(Duration::minutes(16));
    api::jobs::release_expired_holds(&app.state).await.unwrap();
    assert_eq!(app.slot_counts(MARAGHEH, date, "morning").await.1, before - 1, "the seat was released");
    app.clock.advance(Duration::minutes(2));
    assert_eq!(api::journey::payment::reconcile(&app.state).await.unwrap(), 1);
    let token = app.login(SAMPLE.national_id, SAMPLE.serial).await;
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!((view["state"].as_str(), view["payment_status"].as_str()), (Some("registered"), Some("paid")));
    assert_eq!(view["next_step"], "choose_appointment", "seed 001 §3.5: choose office and time again");
    assert!(view["tracking_code"].is_string());
    assert!(view["booking_deadline"].is_string(), "two months to book");
    // Choosing again books directly, then the receipt operations open.
    let (status, view) = app.hold(&token, MARAGHEH, date, "afternoon").await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["appointment_status"], "booked");
    assert!(view["allowed_operations"].as_array().unwrap().iter().any(|o| o == "print_receipt"));
    assert_eq!(view["next_step"], "attend_enrollment");
});

db_test!(a_verify_outage_is_unknown_until_reconciliation_settles_it, |app| {
    let date = app.open_date(MARAGHEH, 2).await;
    let token = app.draft(&Person::from(&MALE)).await;
    app.hold(&token, MARAGHEH, date, "morning").await;
    let payment = app.start_payment(&token).await;
    let (action, fields) = app.bank_choose(payment["redirect_url"].as_str().unwrap(), "success").await;
    app.state.sandboxes.bank.set_verify_unavailable(true);
    let location = app.post_callback(&action, &fields).await;
    assert!(location.contains("outcome=pending"), "{location}");
    let id = payment["payment_id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.count_sql(&format!("SELECT COUNT(*) AS n FROM payments WHERE id = '{id}' AND status = 'unknown'")).await,
        1,
        "never verified, never failed"
    );
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!(view["payment_status"], "pending");
    // Still down: reconciliation keeps it unknown.
    app.clock.advance(Duration::minutes(3));
    assert_eq!(api::journey::payment::reconcile(&app.state).await.unwrap(), 0);
    app.state.sandboxes.bank.set_verify_unavailable(false);
    app.clock.advance(Duration::minutes(5));
    assert_eq!(api::journey::payment::reconcile(&app.state).await.unwrap(), 1);
    let token = app.login(MALE.national_id, MALE.serial).await;
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!(view["payment_status"], "paid");
});

db_test!(an_amount_mismatch_is_reversed_and_the_application_stays_payable, |app| {
    let date = app.open_date(MARAGHEH, 2).await;
    let token = app.draft(&Person::from(&SAMPLE)).await;
    app.hold(&token, MARAGHEH, date, "morning").await;
    let payment = app.start_payment(&token).await;
    let (action, fields) = app.bank_choose(payment["redirect_url"].as_str().unwrap(), "success").await;
    app.state.sandboxes.bank.set_amount_delta(-1_000);
    let location = app.post_callback(&action, &fields).await;
    assert!(location.contains("outcome=refund_pending"), "{location}");
    let id = payment["payment_id"].as_str().unwrap();
    assert_eq!(
        app.count_sql(&format!("SELECT COUNT(*) AS n FROM payments WHERE id = '{id}' AND status = 'refunded'")).await,
        1
    );
    assert_eq!(
        app.count_sql("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'payment_mismatch'").await,
        1,
        "alerted"
    );
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_ne!(view["payment_status"], "paid");
    assert!(view["tracking_code"].is_null());
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"ncr_events_total{kind="payment",outcome="mismatch_reversed"} 1"#), "{metrics}");
});

db_test!(paying_needs_a_live_hold_and_a_known_gateway, |app| {
    let token = app.draft(&Person::from(&SAMPLE)).await;
    let (status, p) =
        app.post("/api/v1/citizen/application/payments", Some(&token), &json!({"gateway": "sandbox"})).await;
    assert_eq!((status, p["code"].as_str()), (409, Some("no_active_hold")));
    let date = app.open_date(MARAGHEH, 2).await;
    app.hold(&token, MARAGHEH, date, "morning").await;
    let (status, p) =
        app.post("/api/v1/citizen/application/payments", Some(&token), &json!({"gateway": "nobank"})).await;
    assert_eq!((status, p["errors"][0]["field"].as_str()), (422, Some("gateway")));
    app.clock.advance(Duration::minutes(16));
    let token = app.login(SAMPLE.national_id, SAMPLE.serial).await;
    let (status, p) =
        app.post("/api/v1/citizen/application/payments", Some(&token), &json!({"gateway": "sandbox"})).await;
    assert_eq!((status, p["code"].as_str()), (409, Some("no_active_hold")), "the hold has expired");
});

// Behind a load balancer an instance often cannot reach the public address itself (no
// hairpin route). The sandbox bank is called in process, so a payment starts, is verified
// and registers the citizen all the same; the pages it sends the browser to are still under
// the public address.
fn unreachable_public_url(config: &mut api::config::Config) {
    config.public_url = "http://ncr-public.invalid".into();
}

db_test!(
    sandbox_payments_do_not_need_the_server_to_reach_its_own_public_address,
    tweak = unreachable_public_url,
    |app| {
        let date = app.open_date(MARAGHEH, 2).await;
        let token = app.draft(&Person::from(&SAMPLE)).await;
        app.hold(&token, MARAGHEH, date, "morning").await;
        let payment = app.start_payment(&token).await;
        let page = payment["redirect_url"].as_str().unwrap();
        let path = page.strip_prefix("http://ncr-public.invalid").unwrap_or_else(|| panic!("{payment}"));
        assert!(path.starts_with("/sandbox/bank/pay/"), "{payment}");
        let (action, fields) = app.bank_choose(&app.url(path), "success").await;
        let callback = action.strip_prefix("http://ncr-public.invalid").unwrap_or_else(|| panic!("{action}"));
        let location = app.post_callback(&app.url(callback), &fields).await;
        assert!(location.contains("outcome=success"), "{location}");
        let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
        assert_eq!(view["payment_status"], "paid", "{view}");
        assert!(view["tracking_code"].is_string(), "{view}");
    }
);

// The sandbox bank's server-to-server API, as an integrator's client calls it: a verdict
// while the customer has not chosen, unknown tokens (404), the outages it plays (503 with
// nothing changed), and a reversal that can be asked twice.
db_test!(the_sandbox_banks_api_answers_unknown_tokens_outages_and_repeated_reversals, |app| {
    let (status, registered) =
        app.post("/sandbox/bank/api/payments", None, &json!({"order_id": 424_242, "amount": 5000})).await;
    assert_eq!(status, 201, "{registered}");
    let token = registered["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 32, "{registered}");
    let app = &app;
    let verify = |token: &str| {
        let body = json!({"token": token});
        async move { app.post("/sandbox/bank/api/verify", None, &body).await }
    };
    let (status, verdict) = verify(&token).await;
    assert_eq!(status, 200, "{verdict}");
    assert_eq!((verdict["status"].as_str(), verdict["order_id"].as_i64()), (Some("pending"), Some(424_242)));
    assert_eq!((verdict["amount"].as_i64(), verdict["reference"].is_null()), (Some(5000), true), "{verdict}");
    let reverse = |token: &str| {
        let body = json!({"token": token});
        async move { app.status_of(reqwest::Method::POST, "/sandbox/bank/api/reverse", None, &body).await }
    };
    let unknown = "0123456789abcdef0123456789abcdef";
    let (status, problem) = verify(unknown).await;
    assert_eq!((status, problem["status"].as_u64()), (404, Some(404)), "{problem}");
    assert_eq!(reverse(unknown).await, 404);

    app.state.sandboxes.bank.set_verify_unavailable(true);
    let (status, problem) = verify(&token).await;
    assert_eq!((status, problem["code"].as_str()), (503, Some("service_unavailable")), "{problem}");
    app.state.sandboxes.bank.set_verify_unavailable(false);
    app.state.sandboxes.bank.set_reverse_unavailable(true);
    assert_eq!(reverse(&token).await, 503);
    app.state.sandboxes.bank.set_reverse_unavailable(false);
    assert_eq!(verify(&token).await.1["status"], "pending", "the outage changed nothing");

    assert_eq!(reverse(&token).await, 204);
    assert_eq!(reverse(&token).await, 204, "a reversal asked again");
    assert_eq!(verify(&token).await.1["status"], "cancelled");
});

// The sandbox bank keeps its contract's bounds (contract fuzzing found 10^12 + 1 Rials taken).
db_test!(the_sandbox_bank_refuses_amounts_out_of_its_bounds, |app| {
    let body = |amount: i64| {
        json!({"order_id": 179_532_096_001_234_i64, "amount": amount, "merchant": "ncr-demo",
               "callback_url": app.url("/api/v1/payments/sandbox/callback")})
    };
    for amount in [0, 1_000_000_000_001] {
        let (status, p) = app.post("/sandbox/bank/api/payments", None, &body(amount)).await;
        assert_eq!((status, p["errors"][0]["field"].as_str()), (422, Some("amount")), "{amount}: {p}");
    }
    let (status, token) = app.post("/sandbox/bank/api/payments", None, &body(1_000_000_000_000)).await;
    assert_eq!(status, 201, "{token}");
});

// Two payments of one application, both confirmed at the bank, whose callbacks arrive at
// the same moment (the citizen paid in two tabs): on PostgreSQL each is first settled
// without a transaction, from rows read unlocked, and the versioned write lets only one
// register the application; the other is settled again in a transaction and sees a paid
// application, so its money goes back. Either order, one registration and one refund.
db_test!(two_payments_of_one_application_confirmed_at_once_register_it_once_and_give_one_back, |app| {
    for person in [Person::from(&SAMPLE), Person::from(&MALE)] {
        let date = app.open_date(MARAGHEH, 2).await;
        let token = app.draft(&person).await;
        let (status, body) = app.hold(&token, MARAGHEH, date, "morning").await;
        assert_eq!(status, 200, "{body}");
        let taken = format!(
            "SELECT CAST(taken AS BIGINT) AS n FROM slots WHERE office_id = '{MARAGHEH}' AND date = '{date}' \
             AND shift = 'morning'"
        );
        let taken_with_the_hold = app.count_sql(&taken).await;
        let payments = [app.start_payment(&token).await, app.start_payment(&token).await];
        let mut chosen = Vec::new();
        for p in &payments {
            chosen.push(app.bank_choose(p["redirect_url"].as_str().unwrap(), "success").await);
        }
        let locations = join_all(chosen.iter().map(|(action, fields)| app.post_callback(action, fields))).await;
        let won = locations.iter().filter(|l| l.contains("outcome=success")).count();
        let refunded = locations.iter().filter(|l| l.contains("outcome=refund_pending")).count();
        assert_eq!((won, refunded), (1, 1), "one registers the application, one is given back: {locations:?}");

        let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
        assert_eq!((view["state"].as_str(), view["payment_status"].as_str()), (Some("registered"), Some("paid")));
        assert_eq!(view["appointment_status"], "booked", "{view}");
        let id = view["id"].as_str().unwrap();
        let statuses = |status: &'static str| {
            format!("SELECT COUNT(*) AS n FROM payments WHERE application_id = '{id}' AND status = '{status}'")
        };
        assert_eq!(app.count_sql(&statuses("verified")).await, 1, "one payment is kept");
        assert_eq!(
            app.count_sql(&statuses("refunded")).await,
            1,
            "the other's money went back (the sandbox bank reversed it)"
        );
        let audit = |action: &'static str| {
            format!("SELECT COUNT(*) AS n FROM audit_log WHERE application_id = '{id}' AND action = '{action}'")
        };
        assert_eq!(app.count_sql(&audit("payment_verified")).await, 1);
        assert_eq!(app.count_sql(&audit("payment_refunded")).await, 1);
        let sms =
            format!("SELECT COUNT(*) AS n FROM outbox WHERE application_id = '{id}' AND template = 'registration'");
        assert_eq!(app.count_sql(&sms).await, 1, "one registration message");
        // Her held seat became her booking, once: neither settlement took a second one.
        assert_eq!(app.count_sql(&taken).await, taken_with_the_hold, "the slot's seats taken did not move");
    }
});
