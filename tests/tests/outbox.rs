//! The notification outbox and its senders (docs/domain/notifications.md, §5), on SQLite and PostgreSQL:
//! the worker delivers queued SMS to the sandbox phone and e-mail to an SMTP server, backs
//! off while a provider is down, never sends a message twice (not even with two workers
//! racing), and admins see the outbox without recipients or contents.

use std::sync::Arc;

use api::seed::population::SAMPLE;
use base64::Engine;
use chrono::{Duration, NaiveDate};
use ncr_tests::client::personal_info;
use ncr_tests::smtp::SmtpSink;
use ncr_tests::{TestApp, db_test};
use persistence::outbox::{NewMessage, OutboxFilter, OutboxRow};
use serde_json::{Value, json};

const MOBILE: &str = "09145128136";
const TRACKING: &str = "4973201675";

/// Queues a message as the journey code does (the caller's transaction is a plain one here).
async fn enqueue(app: &TestApp, channel: &'static str, to: &str, template: &'static str, params: Value) -> bool {
    enqueue_for(app, channel, to, template, params, None).await
}

async fn enqueue_for(
    app: &TestApp,
    channel: &'static str,
    to: &str,
    template: &'static str,
    params: Value,
    application_id: Option<String>,
) -> bool {
    let (db, pii, now, to) = (app.state.db.clone(), app.state.pii.clone(), app.state.now(), to.to_owned());
    tokio::task::spawn_blocking(move || {
        let hint = if channel == "sms" { domain::mask::mobile(&to) } else { "ma***@example.com".into() };
        let application_id = application_id.map(domain::record_ids::ApplicationId::from);
        let message = NewMessage {
            channel,
            recipient: &to,
            recipient_hint: hint,
            template,
            params,
            lang: "fa",
            application_id: application_id.as_ref(),
            dedupe_key: None,
        };
        persistence::outbox::enqueue(&mut db.get().unwrap(), &pii, message, now).unwrap()
    })
    .await
    .unwrap()
}

async fn outbox(app: &TestApp) -> Vec<OutboxRow> {
    let db = app.state.db.clone();
    let mut rows = tokio::task::spawn_blocking(move || {
        persistence::outbox::list(&mut db.get().unwrap(), &OutboxFilter::default(), 1000).unwrap()
    })
    .await
    .unwrap();
    rows.reverse();
    rows
}

async fn deliver(app: &TestApp) -> usize {
    api::jobs::deliver_outbox(&app.state).await.expect("the worker runs")
}

/// What the sandbox phone shows for a mobile, newest first.
async fn phone(app: &TestApp, admin: &str, mobile: &str) -> Vec<Value> {
    let (status, page) = app.get(&format!("/api/v1/admin/sandbox/sms?to={mobile}&limit=200"), Some(admin)).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

db_test!(a_queued_sms_reaches_the_sandbox_phone, |app| {
    assert!(enqueue(&app, "sms", MOBILE, "tracking_code_recovery", json!({"tracking_code": TRACKING})).await);
    assert!(enqueue(&app, "sms", "09351112233", "identity_result", json!({"verified": true})).await);
    let admin = app.admin_token().await;
    assert!(phone(&app, &admin, MOBILE).await.is_empty(), "nothing is sent while a request queues");

    assert_eq!(deliver(&app).await, 2);
    let got = phone(&app, &admin, MOBILE).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["to"], MOBILE);
    assert_eq!(got[0]["text"], "کد رهگیری کارت هوشمند ملی شما: ۴۹۷۳۲۰۱۶۷۵");
    // Any common form of the number finds the same phone.
    assert_eq!(phone(&app, &admin, "+98%20914%20512%208136").await.len(), 1);
    let other = phone(&app, &admin, "09351112233").await;
    assert_eq!(other[0]["text"], "هویت شما تایید شد؛ ثبت‌نام کارت ملی را ادامه دهید.");

    // The outbox records the delivery with the provider's id.
    let rows = outbox(&app).await;
    assert!(rows.iter().all(|r| r.status == "sent" && r.attempts == 1 && r.sent_at.is_some()), "{rows:?}");
    assert_eq!(rows[0].provider_id.as_deref(), got[0]["id"].as_str());
    assert_eq!(deliver(&app).await, 0, "a sent message is not sent again");

    // Only administrators read the sandbox phone.
    let (status, _) = app.get("/api/v1/admin/sandbox/sms", None).await;
    assert_eq!(status, 401);
    let citizen = app.login(SAMPLE.national_id, SAMPLE.serial).await;
    let (status, _) = app.get("/api/v1/admin/sandbox/sms", Some(&citizen)).await;
    assert_eq!(status, 403, "a citizen token is not a staff token");
    let (status, p) = app.get("/api/v1/admin/sandbox/sms?to=12345", Some(&admin)).await;
    assert_eq!((status, p["errors"][0]["code"].as_str()), (422, Some("mobile_invalid")));
});

db_test!(a_citizen_notification_is_delivered_with_its_persian_text, |app| {
    // The registry is down at entry: the identity is settled later and the citizen told by SMS.
    let registry = app.state.sandboxes.registry.clone().unwrap();
    registry.set_available(false);
    let token = app.login(SAMPLE.national_id, SAMPLE.serial).await;
    let hijri = domain::calendar::lunar_birth_options(domain::calendar::JalaliDate::parse(SAMPLE.birth_date).unwrap())
        [2]
    .to_string();
    let info = personal_info(SAMPLE.birth_date, &hijri, "female", SAMPLE.mother_name, MOBILE);
    // The SMS operator is down too: the citizen's request does not notice.
    app.state.sandboxes.sms.clone().unwrap().set_available(false);
    let (status, view) = app.put("/api/v1/citizen/application/personal-info", Some(&token), &info).await;
    assert_eq!(status, 201, "{view}");
    registry.set_available(true);
    app.clock.advance(Duration::minutes(2));
    assert_eq!(api::jobs::settle_identities(&app.state).await.unwrap(), 1);
    assert_eq!(deliver(&app).await, 1);
    assert_eq!(outbox(&app).await[0].status, "failed_temporary");

    app.state.sandboxes.sms.clone().unwrap().set_available(true);
    app.clock.advance(Duration::minutes(1));
    assert_eq!(deliver(&app).await, 1);
    let admin = app.admin_token().await;
    let got = phone(&app, &admin, MOBILE).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["text"], "هویت شما تایید شد؛ ثبت‌نام کارت ملی را ادامه دهید.");
    assert!(!got[0]["text"].as_str().unwrap().contains("۲۵۸۰۲۰۰۶۰۶"), "never the national code");
});

db_test!(an_sms_outage_backs_off_then_delivers_exactly_once, |app| {
    let sms = app.state.sandboxes.sms.clone().unwrap();
    sms.set_available(false);
    enqueue(&app, "sms", MOBILE, "tracking_code_recovery", json!({"tracking_code": TRACKING})).await;
    let t0 = app.state.now();

    assert_eq!(deliver(&app).await, 1);
    let row = outbox(&app).await.remove(0);
    assert_eq!((row.status.as_str(), row.attempts), ("failed_temporary", 1));
    assert_eq!(row.last_error.as_deref(), Some("sandbox sms outage"));
    assert_eq!(row.next_attempt_at.and_utc(), t0 + Duration::minutes(1));
    assert_eq!(deliver(&app).await, 0, "not due before its backoff");

    app.clock.advance(Duration::minutes(1));
    assert_eq!(deliver(&app).await, 1);
    let row = outbox(&app).await.remove(0);
    assert_eq!((row.status.as_str(), row.attempts), ("failed_temporary", 2));
    assert_eq!(row.next_attempt_at.and_utc(), t0 + Duration::minutes(1 + 2), "the wait doubles");

    sms.set_available(true);
    app.clock.advance(Duration::minutes(1));
    assert_eq!(deliver(&app).await, 0);
    app.clock.advance(Duration::minutes(1));
    assert_eq!(deliver(&app).await, 1);
    let row = outbox(&app).await.remove(0);
    assert_eq!((row.status.as_str(), row.attempts, row.last_error.as_deref()), ("sent", 3, None));
    app.clock.advance(Duration::hours(2));
    assert_eq!(deliver(&app).await, 0);
    let admin = app.admin_token().await;
    assert_eq!(phone(&app, &admin, MOBILE).await.len(), 1, "delivered exactly once");
});

db_test!(a_message_that_keeps_failing_is_given_up_after_eight_attempts, |app| {
    app.state.sandboxes.sms.clone().unwrap().set_available(false);
    enqueue(&app, "sms", MOBILE, "identity_result", json!({"verified": false})).await;
    // A template missing its parameters can never be sent: given up at once.
    enqueue(&app, "sms", MOBILE, "tracking_code_recovery", json!({})).await;
    for _ in 0..8 {
        deliver(&app).await;
        app.clock.advance(Duration::minutes(61));
    }
    let rows = outbox(&app).await;
    assert_eq!((rows[0].status.as_str(), rows[0].attempts), ("failed_permanent", 8));
    assert_eq!((rows[1].status.as_str(), rows[1].attempts), ("failed_permanent", 1));
    assert!(rows[1].last_error.as_deref().unwrap().contains("tracking_code"), "{:?}", rows[1].last_error);
    app.state.sandboxes.sms.clone().unwrap().set_available(true);
    assert_eq!(deliver(&app).await, 0, "given-up messages stay given up");
});

db_test!(two_workers_racing_never_send_a_message_twice, |app| {
    for i in 0..40 {
        let code = domain::ids::TrackingCode::from_random(100_000 + i).as_str().to_owned();
        enqueue(&app, "sms", MOBILE, "tracking_code_recovery", json!({"tracking_code": code})).await;
    }
    // A second instance of the server on the same database, claiming small batches.
    let mut config = (*app.state.config).clone();
    config.outbox.batch_size = 3;
    config.outbox.max_batches_per_run = 100;
    let env = api::Environment { clock: app.clock.clone(), random: Arc::new(api::clock::OsRandom) };
    let other = tokio::task::spawn_blocking(move || api::build_state(config, env)).await.unwrap().unwrap();
    let mut config = (*app.state.config).clone();
    config.outbox.batch_size = 4;
    config.outbox.max_batches_per_run = 100;
    let env = api::Environment { clock: app.clock.clone(), random: Arc::new(api::clock::OsRandom) };
    let first = tokio::task::spawn_blocking(move || api::build_state(config, env)).await.unwrap().unwrap();

    let (a, b) = tokio::join!(api::jobs::deliver_outbox(&first), api::jobs::deliver_outbox(&other));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a + b, 40, "every message attempted once in all ({a} + {b})");
    let rows = outbox(&app).await;
    assert!(rows.iter().all(|r| r.status == "sent" && r.attempts == 1), "{rows:?}");
    let admin = app.admin_token().await;
    let got = phone(&app, &admin, MOBILE).await;
    assert_eq!(got.len(), 40);
    let mut texts: Vec<&str> = got.iter().map(|m| m["text"].as_str().unwrap()).collect();
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), 40, "no text arrived twice");
});

// Issue 21: the worker's bookkeeping is one statement for a batch's claim and one for each
// message's outcome; on PostgreSQL none of them opens a transaction (the claim locks its
// rows with `SKIP LOCKED` and marks them in the same `UPDATE`).
db_test!(the_workers_bookkeeping_is_one_statement_per_message, |app| {
    for i in 0..5 {
        let code = domain::ids::TrackingCode::from_random(200_000 + i).as_str().to_owned();
        enqueue(&app, "sms", MOBILE, "tracking_code_recovery", json!({"tracking_code": code})).await;
    }
    let before = app.state.db.counts();
    assert_eq!(deliver(&app).await, 5);
    let after = app.state.db.counts();
    let rows = outbox(&app).await;
    assert!(rows.iter().all(|r| r.status == "sent" && r.attempts == 1 && r.claim_token.is_none()), "{rows:?}");
    let work = (after.statements - after.control) - (before.statements - before.control);
    let transactions = after.transactions - before.transactions;
    // The claim, each outcome, and the sandbox phone's copy of each text (a real
    // provider is HTTP, not a row).
    assert_eq!(work, 1 + 5 + 5, "{before:?} → {after:?}");
    if app.state.db.backend() == persistence::Backend::Postgres {
        assert_eq!(transactions, 0, "{before:?} → {after:?}");
    }
});

db_test!(admins_list_the_outbox_with_filters_and_without_recipients, |app| {
    let first = app.login(SAMPLE.national_id, SAMPLE.serial).await;
    let hijri = domain::calendar::lunar_birth_options(domain::calendar::JalaliDate::parse(SAMPLE.birth_date).unwrap())
        [2]
    .to_string();
    let info = personal_info(SAMPLE.birth_date, &hijri, "female", SAMPLE.mother_name, MOBILE);
    let (_, view) = app.put("/api/v1/citizen/application/personal-info", Some(&first), &info).await;
    let application_id = view["id"].as_str().unwrap().to_owned();

    let booking = json!({"office": "اداره ثبت احوال مراغه", "date_jalali": "1405-09-10", "shift": "morning", "tracking_code": TRACKING});
    enqueue_for(&app, "sms", MOBILE, "booking", booking, Some(application_id.clone())).await;
    enqueue(&app, "sms", "09351112233", "tracking_code_recovery", json!({"tracking_code": TRACKING})).await;
    enqueue(&app, "email", "maryam@example.com", "card_ready", json!({})).await;
    app.state.sandboxes.sms.clone().unwrap().set_available(false);
    deliver(&app).await;

    let admin = app.admin_token().await;
    let list = |query: &'static str| {
        let (app, admin) = (&app, admin.clone());
        async move {
            let (status, page) = app.get(&format!("/api/v1/admin/outbox{query}"), Some(&admin)).await;
            assert_eq!(status, 200, "{page}");
            page
        }
    };
    let all = list("").await;
    assert_eq!(all["items"].as_array().unwrap().len(), 3);
    assert!(all["next_cursor"].is_null());
    assert_eq!(all["items"][0]["template"], "card_ready", "newest first");
    let text = all.to_string();
    for secret in [MOBILE, "09351112233", "maryam@example.com", TRACKING, "۴۹۷۳۲۰۱۶۷۵"] {
        assert!(!text.contains(secret), "the listing shows {secret}: {text}");
    }
    assert_eq!(all["items"][2]["recipient_hint"], "0914***8136");

    let page = list("?status=failed_temporary").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert!(page["items"].as_array().unwrap().iter().all(|i| i["last_error"] == "sandbox sms outage"));
    let page = list("?status=sent&channel=email").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["channel"], "email");
    let page = list("?template=booking").await;
    assert_eq!(page["items"][0]["application_id"], application_id.as_str());
    let by_app = app.get(&format!("/api/v1/admin/outbox?application_id={application_id}"), Some(&admin)).await.1;
    assert_eq!(by_app["items"].as_array().unwrap().len(), 1);
    assert_eq!(by_app["items"][0]["template"], "booking");

    // Cursor pagination.
    let first_page = list("?limit=2").await;
    assert_eq!(first_page["items"].as_array().unwrap().len(), 2);
    let cursor = first_page["next_cursor"].as_str().unwrap().to_owned();
    let (_, second) = app.get(&format!("/api/v1/admin/outbox?limit=2&cursor={cursor}"), Some(&admin)).await;
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert_eq!(second["items"][0]["template"], "booking");
    assert!(second["next_cursor"].is_null());
    // A page that ends the list exactly has no cursor (never one to an empty page).
    let whole = list("?limit=3").await;
    assert_eq!((whole["items"].as_array().unwrap().len(), whole["next_cursor"].is_null()), (3, true), "{whole}");

    // Bad filters are 422, listed per field; no token is 401.
    let (status, p) = app.get("/api/v1/admin/outbox?status=lost&channel=fax&limit=0", Some(&admin)).await;
    assert_eq!(status, 422, "{p}");
    let fields: Vec<&str> = p["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["limit", "status", "channel"]);
    let (status, _) = app.get("/api/v1/admin/outbox", None).await;
    assert_eq!(status, 401);
    let (status, p) = app.get("/api/v1/admin/outbox?colour=red", Some(&admin)).await;
    assert_eq!((status, p["errors"][0]["field"].as_str()), (422, Some("colour")), "an unknown parameter is named");
});

db_test!(reminders_are_queued_the_day_before_once, |app| {
    let token = app.login(SAMPLE.national_id, SAMPLE.serial).await;
    let hijri = domain::calendar::lunar_birth_options(domain::calendar::JalaliDate::parse(SAMPLE.birth_date).unwrap())
        [2]
    .to_string();
    let info = personal_info(SAMPLE.birth_date, &hijri, "female", SAMPLE.mother_name, MOBILE);
    let (_, view) = app.put("/api/v1/citizen/application/personal-info", Some(&token), &info).await;
    let id = view["id"].as_str().unwrap().to_owned();
    // Booked for Monday 2026-11-23, the day after t0 (Sunday 10:00 in Tehran).
    let monday = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
    let (db, now) = (app.state.db.clone(), app.state.now());
    tokio::task::spawn_blocking(move || {
        let mut conn = db.get().unwrap();
        let mut row = persistence::applications::find(&mut conn, &id.as_str().into()).unwrap().unwrap();
        row.state = "registered".into();
        row.payment_status = "paid".into();
        row.appointment_status = "booked".into();
        row.slot_office_id = Some(api::seed::offices::MARAGHEH_OFFICE_ID.into());
        row.slot_date = Some(monday);
        row.slot_shift = Some("morning".into());
        row.tracking_code = Some(TRACKING.into());
        persistence::applications::update(&mut conn, &mut row, now).unwrap();
    })
    .await
    .unwrap();

    // The evening before (issue 20): nothing at 10:00, the reminder from 18:00, once.
    assert_eq!(api::jobs::queue_reminders(&app.state).await.unwrap(), 0, "not in the morning");
    app.clock.advance(Duration::hours(8));
    assert_eq!(api::jobs::queue_reminders(&app.state).await.unwrap(), 1);
    assert_eq!(api::jobs::queue_reminders(&app.state).await.unwrap(), 0, "one reminder per booking");
    app.clock.advance(Duration::hours(3));
    assert_eq!(api::jobs::queue_reminders(&app.state).await.unwrap(), 0);
    assert_eq!(deliver(&app).await, 1);
    let admin = app.admin_token().await;
    let got = phone(&app, &admin, MOBILE).await;
    assert_eq!(got[0]["text"], "یادآوری: نوبت کارت ملی فردا ۱۴۰۵/۰۹/۰۲ صبح، اداره ثبت احوال مراغه");
    let rows = outbox(&app).await;
    assert_eq!(
        rows[0].dedupe_key.as_deref(),
        Some(
            format!(
                "reminder:{}:2026-11-23:morning:{}",
                view["id"].as_str().unwrap(),
                api::seed::offices::MARAGHEH_OFFICE_ID
            )
            .as_str()
        )
    );

    // At night, and on the appointment day itself, nothing more.
    app.clock.advance(Duration::hours(2));
    assert_eq!(api::jobs::queue_reminders(&app.state).await.unwrap(), 0);
    app.clock.advance(Duration::hours(12));
    assert_eq!(api::jobs::queue_reminders(&app.state).await.unwrap(), 0);
});

/// Starts a server that sends e-mail through `sink`.
async fn with_smtp(backend: ncr_tests::Backend, sink: &SmtpSink) -> Option<TestApp> {
    let port = sink.port();
    ncr_tests::spawn_with(
        backend,
        Box::new(move |c| {
            c.email.mode = api::config::EmailMode::Smtp;
            c.email.smtp_host = "127.0.0.1".into();
            c.email.smtp_port = port;
            c.email.smtp_tls = api::config::SmtpTls::None;
            c.email.from = "NCR <no-reply@ncr.test>".into();
            c.email.timeout_seconds = 5;
        }),
    )
    .await
}

fn receipt(name: &str) -> Value {
    json!({
        "subject": "رسید پیش ثبت نام کارت هوشمند ملی",
        "text": format!("کد رهگیری: {TRACKING}"),
        "html": format!("<p>کد رهگیری: <b>{TRACKING}</b></p>"),
        "attachments": [{
            "filename": name,
            "content_type": "application/pdf",
            "base64": base64::engine::general_purpose::STANDARD.encode(b"%PDF-1.7 test receipt"),
        }],
    })
}

async fn email_over_smtp(backend: ncr_tests::Backend) {
    let mut sink = SmtpSink::start().await;
    let Some(app) = with_smtp(backend, &sink).await else { return };

    // A pre-rendered receipt and a templated notice.
    enqueue(&app, "email", "maryam@example.com", "receipt", receipt("receipt-4973201675.pdf")).await;
    enqueue(&app, "email", "maryam@example.com", "tracking_code_recovery", json!({"tracking_code": TRACKING})).await;
    assert_eq!(deliver(&app).await, 2);
    let got = sink.messages();
    assert_eq!(got.len(), 2, "{got:?}");
    let receipt_mail = got.iter().find(|m| !m.attachment_names().is_empty()).expect("the receipt");
    assert_eq!(receipt_mail.rcpt_to, ["maryam@example.com"]);
    assert_eq!(receipt_mail.mail_from, "no-reply@ncr.test");
    assert_eq!(receipt_mail.header("Subject").as_deref(), Some("رسید پیش ثبت نام کارت هوشمند ملی"));
    assert_eq!(receipt_mail.attachment_names(), ["receipt-4973201675.pdf"]);
    assert!(receipt_mail.data.contains("text/html") && receipt_mail.data.contains("text/plain"));
    let notice = got.iter().find(|m| m.attachment_names().is_empty()).unwrap();
    assert_eq!(notice.header("Subject").as_deref(), Some("سامانه کارت هوشمند ملی"));
    let rows = outbox(&app).await;
    assert!(rows.iter().all(|r| r.status == "sent"), "{rows:?}");
    let ids: Vec<String> = got.iter().map(|m| m.header("Message-ID").unwrap()).collect();
    assert!(rows.iter().all(|r| ids.contains(r.provider_id.as_ref().unwrap())), "{ids:?} {rows:?}");

    // Refusals: 550 is permanent, 451 temporary.
    enqueue(&app, "email", "reject-me@example.com", "card_ready", json!({})).await;
    enqueue(&app, "email", "busy-me@example.com", "card_ready", json!({})).await;
    assert_eq!(deliver(&app).await, 2);
    let rows = outbox(&app).await;
    assert_eq!(
        (rows[2].status.as_str(), rows[2].last_error.as_deref()),
        ("failed_permanent", Some("smtp 550: message rejected"))
    );
    assert_eq!((rows[3].status.as_str(), rows[3].last_error.as_deref()), ("failed_temporary", Some("smtp 451")));
    let before = sink.messages().len();
    assert_eq!(before, 2);

    // The server dies in the middle of a run: the rest waits, then goes out once.
    for i in 0..5 {
        enqueue(&app, "email", &format!("citizen{i}@example.com"), "receipt", receipt(&format!("r{i}.pdf"))).await;
    }
    sink.stop_after(before + 2);
    assert_eq!(deliver(&app).await, 5);
    assert!(!sink.is_running());
    assert_eq!(sink.messages().len(), before + 2, "two went through before it died");
    let rows = outbox(&app).await;
    let batch = &rows[4..];
    assert_eq!(batch.iter().filter(|r| r.status == "sent").count(), 2, "{batch:?}");
    assert_eq!(batch.iter().filter(|r| r.status == "failed_temporary").count(), 3, "{batch:?}");
    // Still down a minute later: the three are tried again (with the 451 one), still waiting.
    app.clock.advance(Duration::minutes(1));
    assert_eq!(deliver(&app).await, 4);
    assert!(outbox(&app).await[4..].iter().filter(|r| r.status != "sent").all(|r| r.attempts == 2));

    sink.restart().await;
    app.clock.advance(Duration::minutes(2));
    // The 451 one is due too (and still refused).
    deliver(&app).await;
    app.clock.advance(Duration::hours(2));
    deliver(&app).await;
    let rows = outbox(&app).await;
    assert!(rows[4..].iter().all(|r| r.status == "sent"), "{rows:?}");
    let got = sink.messages();
    assert_eq!(got.len(), before + 5, "each message arrived once");
    let mut names: Vec<String> = got.iter().flat_map(|m| m.attachment_names()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 6, "{names:?}");
    let mut ids: Vec<String> = got.iter().map(|m| m.header("Message-ID").unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), got.len(), "no message id twice");
}

mod email_is_sent_over_smtp_and_survives_a_dead_server {
    use super::*;

    #[actix_web::test]
    async fn sqlite() {
        email_over_smtp(ncr_tests::Backend::Sqlite).await;
    }

    #[actix_web::test]
    async fn postgres() {
        email_over_smtp(ncr_tests::Backend::Postgres).await;
    }
}
