//! Going live (issue 16, items 3–7): the production profile refuses sandboxes (the real
//! binary, as an operator starts it), sandboxes that are off have no routes, the gateways
//! list, payments that settle without a person — reversals retried until the bank
//! confirms, `refund_failed` listed for administrators — Parsian end to end against a
//! stub speaking its SOAP, a bank callback during a database outage, and the sandbox bank
//! posting back only to this server. In-process tests run on SQLite and PostgreSQL.

use std::process::{Command, Stdio};
use std::time::{Duration as StdDuration, Instant};

use api::seed::offices::MARAGHEH_OFFICE_ID as MARAGHEH;
use api::seed::population::{MALE, SAMPLE};
use chrono::Duration;
use ncr_tests::journey::Person;
use ncr_tests::parsian::ParsianStub;
use ncr_tests::{Backend, TestApp, db_test, spawn_with};
use regex::Regex;
use serde_json::{Value, json};

// ---------------------------------------------------------------- helpers

/// Runs a test body on both databases with the Parsian gateway pointed at a fresh stub;
/// `tweak` adjusts the configuration further.
macro_rules! parsian_test {
    ($name:ident, tweak = $tweak:expr, |$app:ident, $bank:ident| $body:block) => {
        mod $name {
            use super::*;
            async fn run(backend: Backend) {
                let $bank = ParsianStub::start().await;
                let parsian = $bank.config();
                let tweak: fn(&mut api::Config) = $tweak;
                let Some($app) = spawn_with(
                    backend,
                    Box::new(move |c| {
                        c.payments.gateways = vec!["sandbox".into(), "parsian".into()];
                        c.payments.parsian = Some(parsian);
                        tweak(c);
                    }),
                )
                .await
                else {
                    return;
                };
                $body
            }
            #[actix_web::test]
            async fn sqlite() {
                run(Backend::Sqlite).await;
            }
            #[actix_web::test]
            async fn postgres() {
                run(Backend::Postgres).await;
            }
        }
    };
    ($name:ident, |$app:ident, $bank:ident| $body:block) => {
        parsian_test!($name, tweak = |_| {}, |$app, $bank| $body);
    };
}

/// Starts a payment at `gateway` for the citizen's held seat.
async fn start_at(app: &TestApp, token: &str, gateway: &str) -> Value {
    let (status, body) =
        app.post("/api/v1/citizen/application/payments", Some(token), &json!({"gateway": gateway})).await;
    assert_eq!(status, 201, "start payment at {gateway}: {body}");
    body
}

/// The browser at Parsian's page: it pays and is posted back; returns (callback, fields).
async fn pay_at_parsian(app: &TestApp, redirect_url: &str) -> (String, Vec<(String, String)>) {
    let page = app.http.get(redirect_url).send().await.expect("bank page");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    let action = Regex::new(r#"action="([^"]+)""#).expect("re").captures(&html).expect("form")[1].replace("&amp;", "&");
    let fields = Regex::new(r#"<input type="hidden" name="([^"]+)" value="([^"]*)">"#)
        .expect("re")
        .captures_iter(&html)
        .map(|c| (c[1].to_owned(), c[2].to_owned()))
        .collect();
    (action, fields)
}

async fn payment_row(app: &TestApp, id: &str) -> persistence::payments::PaymentRow {
    let db = app.state.db.clone();
    let id = id.to_owned();
    tokio::task::spawn_blocking(move || {
        persistence::payments::find(&mut db.get().expect("conn"), &id.as_str().into()).expect("query").expect("payment")
    })
    .await
    .expect("join")
}

/// Two payments for one application, both paid at Parsian: the first registers the
/// citizen, the second is a duplicate whose money goes back. Returns (citizen token, the
/// duplicate's payment id, its Parsian token, the second callback's location).
async fn pay_twice_at_parsian(app: &TestApp, bank: &ParsianStub, person: &Person) -> (String, String, i64, String) {
    let date = app.open_date(MARAGHEH, 2).await;
    let token = app.draft(person).await;
    let (status, body) = app.hold(&token, MARAGHEH, date, "morning").await;
    assert_eq!(status, 200, "{body}");
    let first = start_at(app, &token, "parsian").await;
    let second = start_at(app, &token, "parsian").await;
    let (action, fields) = pay_at_parsian(app, first["redirect_url"].as_str().unwrap()).await;
    assert!(app.post_callback(&action, &fields).await.contains("outcome=success"));
    let (action, fields) = pay_at_parsian(app, second["redirect_url"].as_str().unwrap()).await;
    let location = app.post_callback(&action, &fields).await;
    let id = second["payment_id"].as_str().unwrap().to_owned();
    let bank_token: i64 = payment_row(app, &id).await.token.unwrap().parse().unwrap();
    assert!(bank.sale(bank_token).is_some_and(|s| s.confirmed), "the duplicate was confirmed, so it is reversed");
    (token, id, bank_token, location)
}

// ---------------------------------------------------------------- gateways

db_test!(the_gateways_list_offers_the_sandbox_by_default, |app| {
    let (status, body) = app.get("/api/v1/payments/gateways", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["gateways"],
        json!([{"id": "sandbox", "name_fa": "درگاه آزمایشی", "name_en": "Sandbox bank (test payments)"}])
    );
});

parsian_test!(the_gateways_list_names_every_active_gateway_in_both_languages, |app, _bank| {
    let (status, body) = app.get("/api/v1/payments/gateways", None).await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<&str> = body["gateways"].as_array().unwrap().iter().map(|g| g["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["sandbox", "parsian"]);
    assert_eq!(body["gateways"][1]["name_fa"], "بانک پارسیان");
    assert_eq!(body["gateways"][1]["name_en"], "Parsian Bank");
});

// ---------------------------------------------------------------- Parsian end to end

parsian_test!(parsian_end_to_end_request_redirect_callback_and_confirm, |app, bank| {
    let date = app.open_date(MARAGHEH, 2).await;
    let token = app.draft(&Person::from(&SAMPLE)).await;
    app.hold(&token, MARAGHEH, date, "morning").await;
    // Request: the sale is registered at the bank for the card fee and our own callback.
    let payment = start_at(&app, &token, "parsian").await;
    assert_eq!(payment["status"], "redirected");
    let redirect = payment["redirect_url"].as_str().unwrap();
    assert!(redirect.starts_with(&format!("{}/NewIPG/?Token=", bank.base)), "{redirect}");
    let bank_token: i64 = redirect.rsplit('=').next().unwrap().parse().unwrap();
    let sale = bank.sale(bank_token).expect("the bank knows the sale");
    assert_eq!((sale.amount, sale.order_id), (200_000, payment["order_id"].as_i64().unwrap()));
    assert_eq!(sale.callback_url, app.url("/api/v1/payments/parsian/callback"));
    // Redirect, pay, callback; the callback is confirmed server to server.
    let (action, fields) = pay_at_parsian(&app, redirect).await;
    let location = app.post_callback(&action, &fields).await;
    assert!(location.contains("outcome=success") && location.contains("tracking_code="), "{location}");
    assert!(bank.sale(bank_token).unwrap().confirmed);
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!((view["state"].as_str(), view["payment_status"].as_str()), (Some("registered"), Some("paid")));
    let row = payment_row(&app, payment["payment_id"].as_str().unwrap()).await;
    assert_eq!(row.reference, Some((700_000_000_000 + bank_token).to_string()), "the bank's RRN");
    assert_eq!(row.card_mask.as_deref(), Some("610433******1234"));
    // The same callback again: applied once, confirmed idempotently.
    assert!(app.post_callback(&action, &fields).await.contains("outcome=success"));
    assert_eq!(
        app.count_sql("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'payment_verified'").await,
        1,
        "one transition"
    );
});

parsian_test!(a_hold_moved_while_the_bank_answers_is_the_one_the_payment_waits_on, |app, bank| {
    // Payment start reads the application, asks the bank for a token, then writes the
    // application (payment_pending) with a version check: a change the citizen made while
    // the bank answered — here the hold moved to the afternoon from another device — is
    // not overwritten by the row read before it; the start reads again and goes on.
    let date = app.open_date(MARAGHEH, 2).await;
    let token = app.draft(&Person::from(&SAMPLE)).await;
    let (status, body) = app.hold(&token, MARAGHEH, date, "morning").await;
    assert_eq!(status, 200, "{body}");
    let (_, morning_taken) = app.slot_counts(MARAGHEH, date, "morning").await;
    let (_, afternoon_taken) = app.slot_counts(MARAGHEH, date, "afternoon").await;
    let gate = bank.pause_sales();
    let (payment, moved) = tokio::join!(start_at(&app, &token, "parsian"), async {
        while bank.sales_recorded() == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let moved = app.hold(&token, MARAGHEH, date, "afternoon").await;
        gate.add_permits(1);
        moved
    });
    assert_eq!(moved.0, 200, "{}", moved.1);
    assert_eq!(payment["status"], "redirected");
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!(view["state"], "payment_pending", "{view}");
    assert_eq!(view["appointment"]["shift"], "afternoon", "the move made during the bank call stands: {view}");
    assert_eq!(app.slot_counts(MARAGHEH, date, "morning").await.1, morning_taken - 1, "the morning seat was freed");
    assert_eq!(app.slot_counts(MARAGHEH, date, "afternoon").await.1, afternoon_taken + 1);
    assert_eq!(
        app.count_sql("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'payment_started'").await,
        1,
        "one start written, after the move"
    );
});

parsian_test!(a_duplicate_parsian_payment_is_reversed_and_refunded, |app, bank| {
    let (_, id, bank_token, location) = pay_twice_at_parsian(&app, &bank, &Person::from(&MALE)).await;
    assert!(location.contains("outcome=refund_pending"), "{location}");
    let row = payment_row(&app, &id).await;
    assert_eq!(row.status, "refunded", "the bank confirmed the reversal");
    assert!(bank.sale(bank_token).unwrap().reversed);
    assert_eq!(app.count_sql("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'payment_refunded'").await, 1);
});

// ---------------------------------------------------------------- reversals retried

parsian_test!(a_failed_reversal_is_retried_with_backoff_until_the_bank_confirms, |app, bank| {
    bank.set_reversal_failing(true);
    let (_, id, bank_token, location) = pay_twice_at_parsian(&app, &bank, &Person::from(&MALE)).await;
    assert!(location.contains("outcome=refund_pending"), "{location}");
    let row = payment_row(&app, &id).await;
    assert_eq!((row.status.as_str(), row.reversal_attempts), ("refund_pending", 1), "not refunded yet");
    assert!(row.reversal_error.as_deref().is_some_and(|e| e.contains("Status -1")), "{row:?}");
    let first_wait = row.next_check_at.unwrap().and_utc() - app.clock_now();
    assert_eq!(first_wait, Duration::minutes(2));
    // Not due yet: nothing is tried.
    let calls = bank.books.reversal_calls.load(std::sync::atomic::Ordering::SeqCst);
    api::journey::payment::reconcile(&app.state).await.unwrap();
    assert_eq!(bank.books.reversal_calls.load(std::sync::atomic::Ordering::SeqCst), calls);
    // Due: tried again, still failing; the wait doubles.
    app.clock.advance(Duration::minutes(2));
    api::journey::payment::reconcile(&app.state).await.unwrap();
    let row = payment_row(&app, &id).await;
    assert_eq!((row.status.as_str(), row.reversal_attempts), ("refund_pending", 2));
    assert_eq!(row.next_check_at.unwrap().and_utc() - app.clock_now(), Duration::minutes(4), "backoff doubles");
    // The bank is back: the next retry is confirmed and only then the payment is refunded.
    bank.set_reversal_failing(false);
    app.clock.advance(Duration::minutes(4));
    api::journey::payment::reconcile(&app.state).await.unwrap();
    let row = payment_row(&app, &id).await;
    assert_eq!(row.status, "refunded");
    assert!(row.next_check_at.is_none());
    assert!(bank.sale(bank_token).unwrap().reversed);
    assert_eq!(app.count_sql("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'payment_reversal_retry'").await, 2);
});

parsian_test!(
    a_reversal_failing_past_the_limit_is_refund_failed_and_listed_for_admins,
    tweak = |c| c.payments.reversal_max_attempts = 3,
    |app, bank| {
        bank.set_reversal_failing(true);
        let (_, id, _, _) = pay_twice_at_parsian(&app, &bank, &Person::from(&MALE)).await;
        for minutes in [2, 4] {
            app.clock.advance(Duration::minutes(minutes));
            api::journey::payment::reconcile(&app.state).await.unwrap();
        }
        let row = payment_row(&app, &id).await;
        assert_eq!((row.status.as_str(), row.reversal_attempts), ("refund_failed", 3));
        assert!(row.next_check_at.is_none(), "no more retries");
        // Never retried again.
        let calls = bank.books.reversal_calls.load(std::sync::atomic::Ordering::SeqCst);
        app.clock.advance(Duration::hours(12));
        api::journey::payment::reconcile(&app.state).await.unwrap();
        assert_eq!(bank.books.reversal_calls.load(std::sync::atomic::Ordering::SeqCst), calls);
        // Listed for administrators with the bank's reason, in the usual page shape.
        let admin = app.admin_token().await;
        let (status, page) = app.get("/api/v1/admin/payments?status=refund_failed", Some(&admin)).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{page}");
        assert_eq!(items[0]["payment_id"], id.as_str());
        assert_eq!(items[0]["gateway"], "parsian");
        assert_eq!(items[0]["reversal_attempts"], 3);
        assert_eq!(items[0]["last_error"], "duplicate payment");
        let reason = items[0]["reversal_error"].as_str().unwrap();
        assert!(reason.contains("ReversalRequest refused with Status -1: internal error"), "{reason}");
        assert!(page["next_cursor"].is_null());
        // Every payment, paged.
        let (_, all) = app.get("/api/v1/admin/payments?limit=1", Some(&admin)).await;
        assert_eq!(all["items"].as_array().unwrap().len(), 1);
        let cursor = all["next_cursor"].as_str().expect("a second page").to_owned();
        let (_, rest) = app.get(&format!("/api/v1/admin/payments?limit=1&cursor={cursor}"), Some(&admin)).await;
        assert_ne!(rest["items"][0]["payment_id"], all["items"][0]["payment_id"]);
        let (status, problem) = app.get("/api/v1/admin/payments?status=lost", Some(&admin)).await;
        assert_eq!((status, problem["errors"][0]["field"].as_str()), (422, Some("status")), "{problem}");
        let operator = app.create_operator(&admin, "op-golive", MARAGHEH).await.1;
        assert_eq!(app.get("/api/v1/admin/payments", Some(&operator)).await.0, 403);
        assert_eq!(
            app.count_sql("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'payment_refund_failed'").await,
            1
        );
    }
);

// ---------------------------------------------------------------- callback during an outage

fn two_connections(c: &mut api::Config) {
    c.db.max_connections = 2;
    c.db.connection_timeout_ms = 400;
}

db_test!(
    a_callback_during_a_database_outage_says_received_and_reconciliation_registers,
    tweak = two_connections,
    |app| {
        let date = app.open_date(MARAGHEH, 2).await;
        let token = app.draft(&Person::from(&SAMPLE)).await;
        app.hold(&token, MARAGHEH, date, "morning").await;
        let payment = app.start_payment(&token).await;
        let (action, fields) = app.bank_choose(payment["redirect_url"].as_str().unwrap(), "success").await;
        // The database stops answering (every pooled connection is taken) as the bank posts back.
        let db = app.state.db.clone();
        let held = tokio::task::spawn_blocking(move || [db.get().unwrap(), db.get().unwrap()]).await.unwrap();
        let location = app.post_callback(&action, &fields).await;
        assert!(location.contains("outcome=received"), "never invalid: {location}");
        drop(held);
        let page = app.http.get(&location).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("پرداخت شما دریافت شد و در حال تایید است"), "{page}");
        assert!(page.contains("پیامک"), "the citizen is told an SMS follows: {page}");
        assert!(!page.contains("معتبر نبود"));
        // Reconciliation verifies it with the bank later and registers the citizen, with an SMS.
        app.clock.advance(Duration::minutes(18));
        assert_eq!(api::journey::payment::reconcile(&app.state).await.unwrap(), 1);
        let token = app.login(SAMPLE.national_id, SAMPLE.serial).await;
        let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
        assert_eq!((view["state"].as_str(), view["payment_status"].as_str()), (Some("registered"), Some("paid")));
        let id = view["id"].as_str().unwrap();
        assert_eq!(
            app.count_sql(&format!(
                "SELECT COUNT(*) AS n FROM outbox WHERE application_id = '{id}' AND template = 'registration'"
            ))
            .await,
            1,
            "the citizen gets an SMS"
        );
    }
);

// ---------------------------------------------------------------- the sandbox bank

db_test!(the_sandbox_bank_posts_back_only_to_this_servers_callback, |app| {
    let (status, bank) = app
        .post(
            "/sandbox/bank/api/payments",
            None,
            &json!({"order_id": 424242, "amount": 5000, "callback_url": "https://attacker.example/collect", "merchant": "Totally Real Bank"}),
        )
        .await;
    assert_eq!(status, 201, "{bank}");
    let pay_url = bank["pay_url"].as_str().unwrap();
    let page = app.http.get(pay_url).send().await.unwrap().text().await.unwrap();
    assert!(!page.contains("Totally Real Bank") && page.contains("سازمان ثبت احوال کشور"), "the configured merchant");
    let res = app.http.post(pay_url).form(&[("outcome", "success")]).send().await.unwrap();
    let csp = res.headers()["content-security-policy"].to_str().unwrap().to_owned();
    let back = res.text().await.unwrap();
    let own = app.url("/api/v1/payments/sandbox/callback");
    assert!(back.contains(&format!(r#"action="{own}""#)), "{back}");
    assert!(!back.contains("attacker.example") && !csp.contains("attacker.example"), "{csp}");
    // Without a callback or merchant at all, the same.
    let (status, _) = app.post("/sandbox/bank/api/payments", None, &json!({"order_id": 424243, "amount": 5000})).await;
    assert_eq!(status, 201);
    // Ignored fields still keep their documented bounds.
    let long = "م".repeat(101);
    let (status, problem) = app
        .post("/sandbox/bank/api/payments", None, &json!({"order_id": 424244, "amount": 5000, "merchant": long}))
        .await;
    assert_eq!((status, problem["errors"][0]["field"].as_str()), (422, Some("merchant")), "{problem}");
});

// ---------------------------------------------------------------- sandboxes off: no routes

fn no_sandboxes(c: &mut api::Config) {
    c.payments.gateways = vec!["parsian".into()];
    c.payments.parsian = Some(api::adapters::payments::parsian::ParsianConfig {
        base_url: "http://127.0.0.1:9".into(),
        pin: "x".into(),
        timeout_ms: 100,
    });
    c.sms.mode = api::config::SmsMode::Kavenegar;
    c.sms.kavenegar = Some(
        serde_json::from_value(json!({"base_url": "http://127.0.0.1:9", "api_key": "k"})).expect("kavenegar settings"),
    );
    c.email.mode = api::config::EmailMode::Smtp;
    c.captcha.mode = api::config::CaptchaMode::Production;
}

db_test!(a_sandbox_that_is_off_has_no_routes, tweak = no_sandboxes, |app| {
    let admin = app.admin_token().await;
    for path in ["/api/v1/admin/sandbox/sms", "/api/v1/admin/sandbox/emails"] {
        let (status, problem) = app.get(path, Some(&admin)).await;
        assert_eq!((status, problem["code"].as_str()), (404, Some("route_not_found")), "{path}: {problem}");
    }
    assert_eq!(app.http.get(app.url("/sandbox/bank/pay/abc")).send().await.unwrap().status(), 404);
    let (status, _) = app.post("/sandbox/bank/api/payments", None, &json!({"order_id": 1, "amount": 5000})).await;
    assert_eq!(status, 404);
    let (_, challenge) = app.get("/api/v1/captcha", None).await;
    assert!(challenge.get("sandbox_answer").is_none(), "{challenge}");
    let (_, gateways) = app.get("/api/v1/payments/gateways", None).await;
    assert_eq!(gateways["gateways"][0]["id"], "parsian");
    assert_eq!(gateways["gateways"].as_array().unwrap().len(), 1);
});

// ---------------------------------------------------------------- the real binary

/// Runs `ncr serve` with only these settings (none of the test runner's `NCR_*`).
fn ncr(env: &[(&str, String)]) -> Command {
    let mut cmd = ncr_without_command(env);
    cmd.arg("serve");
    cmd
}

/// The `ncr` binary with only these settings, for a command of the caller's choice.
fn ncr_without_command(env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(ncr_tests::ncr_binary());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("NCR_") || k == "DATABASE_URL") {
        cmd.env_remove(k);
    }
    cmd.env("NCR_LOG_LEVEL", "info").env("NCR_WORKERS", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starting with every sandbox on in the production profile fails with one error naming
/// each sandbox and the setting that fixes it.
fn assert_refused(env: &[(&str, String)]) {
    let out = ncr(env).stdin(Stdio::null()).output().expect("run ncr");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "refused: {stderr}");
    let refusal = stderr.lines().skip_while(|l| !l.starts_with("ncr: refusing")).collect::<Vec<_>>().join("\n");
    assert!(refusal.contains("refusing to start in the production profile"), "{stderr}");
    for (name, fix) in [
        ("captcha", "captcha.mode = \"production\""),
        ("bank", "payments.gateways without \"sandbox\""),
        ("sms", "sms.mode = \"kavenegar\""),
        ("email", "email.mode = \"smtp\""),
        ("registry", "registry.mode = \"http\""),
        ("ownership", "ownership.mode = \"http\""),
        ("demo_data", "demo_data = \"never\""),
    ] {
        assert!(refusal.contains(&format!("sandbox `{name}` is active")), "{name} not named: {refusal}");
        assert!(refusal.contains(fix), "the fix for {name} is not named: {refusal}");
    }
    assert!(refusal.contains("allow_sandboxes"), "{refusal}");
    assert!(refusal.contains("public_url is not set") && refusal.contains("no keys are configured"), "{refusal}");
}

#[test]
fn the_production_profile_refuses_every_sandbox_in_one_error() {
    // A PostgreSQL URL alone means production; nothing is opened before the refusal.
    assert_refused(&[
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ncr_never_opened".into()),
        ("NCR_DEMO_DATA", "always".into()),
        ("NCR_BIND", format!("127.0.0.1:{}", free_port())),
    ]);
    // The embedded database with the profile set explicitly.
    let dir = std::env::temp_dir().join(format!("ncr-golive-{}", uuid::Uuid::new_v4()));
    assert_refused(&[
        ("DATABASE_URL", format!("sqlite://{}/ncr.db", dir.display())),
        ("NCR_DATA_DIR", dir.display().to_string()),
        ("NCR_PROFILE", "production".into()),
        ("NCR_BIND", format!("127.0.0.1:{}", free_port())),
    ]);
    assert!(!dir.join("ncr.db").exists(), "refused before the database was created");
    // Allowing some names only those; a typo in the list is refused too.
    let out = ncr(&[
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ncr_never_opened".into()),
        ("NCR_ALLOW_SANDBOXES", r#"["captcha", "bank", "sms", "email", "registry", "ownership"]"#.into()),
        ("NCR_BIND", format!("127.0.0.1:{}", free_port())),
    ])
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(!stderr.contains("sandbox `captcha`") && !stderr.contains("sandbox `bank`"), "{stderr}");
    assert!(stderr.contains("public_url is not set"), "{stderr}");
    let out = ncr(&[
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ncr_never_opened".into()),
        ("NCR_ALLOW_SANDBOXES", r#"["bnak"]"#.into()),
    ])
    .output()
    .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown sandboxes [\"bnak\"]"));
    // Loading demo data into a production database is refused the same way.
    let mut seed =
        ncr_without_command(&[("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ncr_never_opened".into())]);
    let out = seed.arg("seed-demo").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("refusing to load demo data in the production profile"), "{stderr}");
    assert!(stderr.contains("allow_sandboxes = [\"demo_data\"]"), "{stderr}");
}

/// A server process that is killed when dropped.
struct Server(std::process::Child, std::path::PathBuf);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_ready(base: &str, server: &mut Server) {
    let deadline = Instant::now() + StdDuration::from_secs(60);
    loop {
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!("ncr exited with {status}: {}", std::fs::read_to_string(&server.1).unwrap_or_default());
        }
        if reqwest::get(format!("{base}/health/ready")).await.is_ok_and(|r| r.status() == 200) {
            return;
        }
        assert!(Instant::now() < deadline, "not ready: {}", std::fs::read_to_string(&server.1).unwrap_or_default());
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
}

/// With every real adapter pointed at stubs, the production profile starts; the start-up
/// log names the adapter of every port, and sandbox paths are 404.
async fn production_starts_with_real_adapters(database_url: String) {
    let bank = ParsianStub::start().await;
    let smtp = ncr_tests::smtp::SmtpSink::start().await;
    let dir = std::env::temp_dir().join(format!("ncr-golive-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let keys = Command::new(ncr_tests::ncr_binary()).arg("keygen").output().expect("ncr keygen");
    let config = dir.join("ncr.toml");
    std::fs::write(&config, &keys.stdout).unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let log = dir.join("server.log");
    let out = std::fs::File::create(&log).unwrap();
    let env = [
        ("DATABASE_URL", database_url.clone()),
        ("NCR_PROFILE", "production".into()),
        ("NCR_DATA_DIR", dir.display().to_string()),
        ("NCR_BIND", format!("127.0.0.1:{port}")),
        ("NCR_PUBLIC_URL", base.clone()),
        ("NCR_DEMO_DATA", "never".into()),
        ("NCR_BOOTSTRAP_ADMIN_PASSWORD", ncr_tests::ADMIN_PASSWORD.into()),
        ("NCR_CAPTCHA__MODE", "production".into()),
        ("NCR_PAYMENTS__GATEWAYS", r#"["parsian"]"#.into()),
        ("NCR_PAYMENTS__PARSIAN__BASE_URL", bank.base.clone()),
        ("NCR_PAYMENTS__PARSIAN__PIN", ncr_tests::parsian::PIN.into()),
        ("NCR_PAYMENTS__PARSIAN__TIMEOUT_MS", "5000".into()),
        ("NCR_SMS__MODE", "kavenegar".into()),
        ("NCR_SMS__KAVENEGAR__BASE_URL", bank.base.clone()),
        ("NCR_SMS__KAVENEGAR__API_KEY", "kavenegar-test-key".into()),
        ("NCR_EMAIL__MODE", "smtp".into()),
        ("NCR_EMAIL__SMTP_HOST", "127.0.0.1".into()),
        ("NCR_EMAIL__SMTP_PORT", smtp.port().to_string()),
        ("NCR_EMAIL__SMTP_TLS", "none".into()),
        ("NCR_OWNERSHIP__MODE", "http".into()),
        ("NCR_OWNERSHIP__HTTP__BASE_URL", bank.base.clone()),
        ("NCR_OWNERSHIP__HTTP__TOKEN", "ownership-test-token".into()),
        ("NCR_REGISTRY__MODE", "http".into()),
        ("NCR_REGISTRY__HTTP__BASE_URL", format!("{}/registry", bank.base)),
        ("NCR_REGISTRY__HTTP__TOKEN", "registry-test-token".into()),
        ("NCR_JOBS__ENABLED", "false".into()),
    ];
    let child = ncr(&env)
        .args(["--config", &config.display().to_string()])
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("start ncr");
    let mut server = Server(child, log.clone());
    wait_ready(&base, &mut server).await;
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text.lines().find(|l| l.contains("adapters in use")).unwrap_or_else(|| panic!("{text}"));
    for field in [
        "profile=\"production\"",
        "captcha=\"production\"",
        "payments=\"parsian\"",
        "sms=\"kavenegar\"",
        "email=\"smtp (127.0.0.1:",
        "ownership=\"http (127.0.0.1)\"",
        "registry=\"http (127.0.0.1)\"",
        "demo_data=\"never\"",
    ] {
        assert!(line.contains(field), "{field} not in {line}");
    }
    assert!(line.trim_end().ends_with("sandboxes="), "no sandbox is active: {line}");
    for secret in ["kavenegar-test-key", "ownership-test-token", "registry-test-token"] {
        assert!(!text.contains(secret), "no secrets in the log");
    }
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(status(http.get(format!("{base}/sandbox/bank/pay/abc")).send().await.unwrap()), 404);
    assert_eq!(
        status(
            http.post(format!("{base}/sandbox/bank/api/payments"))
                .json(&json!({"order_id": 1, "amount": 5}))
                .send()
                .await
                .unwrap()
        ),
        404
    );
    let admin = http
        .post(format!("{base}/api/v1/staff/sessions"))
        .json(&json!({"username": "admin", "password": ncr_tests::ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    let admin = ncr_tests::json(admin).await.1["token"].as_str().expect("admin token").to_owned();
    for path in ["/api/v1/admin/sandbox/sms", "/api/v1/admin/sandbox/emails"] {
        let res = http.get(format!("{base}{path}")).bearer_auth(&admin).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
    }
    let (_, challenge) = ncr_tests::json(http.get(format!("{base}/api/v1/captcha")).send().await.unwrap()).await;
    assert!(challenge.get("sandbox_answer").is_none(), "{challenge}");
    let (_, gateways) =
        ncr_tests::json(http.get(format!("{base}/api/v1/payments/gateways")).send().await.unwrap()).await;
    assert_eq!(gateways["gateways"], json!([{"id": "parsian", "name_fa": "بانک پارسیان", "name_en": "Parsian Bank"}]));
    drop(server);

    // Demo data loaded into this database by a development run: production refuses to start.
    let out = ncr_without_command(&[("DATABASE_URL", database_url.clone()), ("NCR_PROFILE", "development".into())])
        .args(["--config", &config.display().to_string(), "seed-demo"])
        .output()
        .unwrap();
    assert!(out.status.success(), "seed-demo in development: {}", String::from_utf8_lossy(&out.stderr));
    let refused = dir.join("refused.log");
    let child = ncr(&env)
        .args(["--config", &config.display().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&refused).unwrap())
        .spawn()
        .unwrap();
    let mut server = Server(child, refused.clone());
    let deadline = Instant::now() + StdDuration::from_secs(60);
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "production started on a database holding demo data");
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    };
    drop(server);
    let stderr = std::fs::read_to_string(&refused).unwrap();
    assert_eq!(status.code(), Some(1), "refused: {stderr}");
    assert!(stderr.contains("demo data is in this database"), "{stderr}");
    assert!(stderr.contains("demo offices") && stderr.contains("allow_sandboxes = [\"demo_data\"]"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[actix_web::test]
async fn production_with_real_adapters_starts_and_sandbox_paths_are_404_sqlite() {
    let dir = std::env::temp_dir().join(format!("ncr-golive-db-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    production_starts_with_real_adapters(format!("sqlite://{}/ncr.db", dir.display())).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[actix_web::test]
async fn production_with_real_adapters_starts_and_sandbox_paths_are_404_postgres() {
    let Some((url, name)) = ncr_tests::empty_postgres().await else {
        ncr_tests::record_skip("the PostgreSQL half");
        return;
    };
    production_starts_with_real_adapters(url).await;
    ncr_tests::drop_postgres(&name).await;
}

#[actix_web::test]
async fn public_url_defaults_to_the_bound_address_so_payments_start_on_any_port() {
    let dir = std::env::temp_dir().join(format!("ncr-golive-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let log = dir.join("server.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = ncr(&[
        ("DATABASE_URL", format!("sqlite://{}/ncr.db", dir.display())),
        ("NCR_DATA_DIR", dir.display().to_string()),
        ("NCR_LIMITS__PER_IP_PER_MINUTE", "100000".into()),
    ])
    .args(["--bind", &format!("127.0.0.1:{port}")])
    .stdin(Stdio::null())
    .stdout(out.try_clone().unwrap())
    .stderr(out)
    .spawn()
    .expect("start ncr");
    let mut server = Server(child, log);
    wait_ready(&base, &mut server).await;
    // The demo data is in (embedded, empty): a sandbox payment is registered with the
    // sandbox bank this server serves, reached at the bound address.
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{base}/sandbox/bank/api/payments"))
        .json(&json!({"order_id": 77, "amount": 5000}))
        .send()
        .await
        .unwrap();
    let (status, body) = ncr_tests::json(res).await;
    assert_eq!(status, 201, "{body}");
    assert!(body["pay_url"].as_str().unwrap().starts_with(&format!("{base}/sandbox/bank/pay/")), "{body}");
    let (_, doc) = ncr_tests::json(http.get(format!("{base}/api/v1/openapi.json")).send().await.unwrap()).await;
    assert_eq!(doc["servers"][0]["url"], base.as_str(), "the served contract lists the bound address");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
