//! The civil registry over HTTP (issue 16, items 1–2): every identity check — entry,
//! personal information, the inquiry job — asks the configured registry, here a stub
//! speaking the wire contract on its own port. Outage semantics: an application is never
//! opened with a serial nobody could check; a new national code goes the asynchronous way
//! (docs/domain/eligibility.md: pending → settled by the job → SMS).

use api::seed::population::{DECEASED, MALE, Persona, SAMPLE, SERIAL_CHANGED};
use chrono::Duration;
use ncr_tests::client::personal_info;
use ncr_tests::registry_stub::{Answer, RegistryStub};
use ncr_tests::{Backend, TestApp};
use serde_json::{Value, json};

/// A test body run on SQLite and on PostgreSQL, with the registry served by a stub.
macro_rules! registry_test {
    ($name:ident, |$app:ident, $stub:ident| $body:block) => {
        mod $name {
            use super::*;
            #[actix_web::test]
            async fn sqlite() {
                let Some(($app, $stub)) = with_stub(Backend::Sqlite).await else { unreachable!("sqlite always runs") };
                $body
            }
            #[actix_web::test]
            async fn postgres() {
                let Some(($app, $stub)) = with_stub(Backend::Postgres).await else { return };
                $body
            }
        }
    };
}

async fn with_stub(backend: Backend) -> Option<(TestApp, RegistryStub)> {
    let stub = RegistryStub::start().await;
    let config = stub.config();
    let app = ncr_tests::spawn_with(backend, Box::new(move |c| c.registry = config)).await?;
    for p in [&SAMPLE, &MALE, &DECEASED, &SERIAL_CHANGED] {
        stub.load(&app, p.national_id).await;
    }
    Some((app, stub))
}

fn hijri(p: &Persona) -> String {
    let d = domain::calendar::JalaliDate::parse(p.birth_date).unwrap();
    domain::calendar::lunar_birth_options(d)[2].to_string()
}

fn info(p: &Persona) -> Value {
    personal_info(p.birth_date, &hijri(p), p.gender.as_str(), p.mother_name, p.mobile.unwrap_or("09121234567"))
}

const PERSONAL_INFO: &str = "/api/v1/citizen/application/personal-info";

/// The identity-result SMS texts the citizen's phone received (sandbox SMS), oldest first.
async fn identity_texts(app: &TestApp, mobile: &str) -> Vec<String> {
    api::jobs::deliver_outbox(&app.state).await.expect("the outbox worker runs");
    let admin = app.admin_token().await;
    let (status, page) = app.get(&format!("/api/v1/admin/sandbox/sms?to={mobile}&limit=200"), Some(&admin)).await;
    assert_eq!(status, 200, "{page}");
    let mut texts: Vec<String> =
        page["items"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap().to_owned()).collect();
    texts.reverse();
    texts
}

/// Open (not ended, not expired) citizen sessions.
async fn live_sessions(app: &TestApp) -> i64 {
    app.count_sql("SELECT count(*) AS n FROM sessions WHERE audience = 'citizen' AND ended_at IS NULL").await
}

registry_test!(a_match_over_http_is_verified_at_once, |app, stub| {
    assert!(app.state.sandboxes.registry.is_none(), "no sandbox registry is wired in http mode");
    let (status, entry) = app.enter(SAMPLE.national_id, SAMPLE.serial).await;
    assert_eq!(status, 201, "{entry}");
    assert_eq!(entry["identity_confirmed"], true);
    let token = entry["token"].as_str().unwrap().to_owned();
    let (status, view) = app.put(PERSONAL_INFO, Some(&token), &info(&SAMPLE)).await;
    assert_eq!(status, 201, "{view}");
    assert_eq!(view["identity_status"], "verified");
    assert_eq!(view["next_step"], "answer_special_needs");
    assert_eq!(stub.requests(), 2, "entry and personal information each asked the registry over HTTP");

    // The stub, not the synthetic population, is the authority: a new serial there is the
    // only one that opens.
    stub.set_field(MALE.national_id, "serial", json!("111111"));
    let (status, p) = app.enter(MALE.national_id, MALE.serial).await;
    assert_eq!((status, p["code"].as_str()), (422, Some("identity_mismatch")), "{p}");
    let (status, p) = app.enter(MALE.national_id, "111111").await;
    assert_eq!(status, 201, "{p}");
    // A national code the registry does not know (404) gives the same answer as a wrong serial.
    let (status, p) = app.enter("0499370899", "123456").await;
    assert_eq!((status, p["code"].as_str()), (422, Some("identity_mismatch")), "{p}");
});

registry_test!(each_mismatch_is_told_and_nothing_is_created, |app, stub| {
    let _ = &stub;
    let token = app.login(SAMPLE.national_id, SAMPLE.serial).await;
    let cases: [(&str, Value, &str, &str); 4] = [
        // 1369-03-20 with a lunar option offered for it: only the solar date is wrong.
        (
            "birth_date_jalali",
            json!("1369-03-20"),
            "birth_date_mismatch",
            "تاریخ تولد شمسی با اطلاعات ثبت احوال مطابقت ندارد.",
        ),
        ("gender", json!("male"), "gender_mismatch", "جنسیت وارد شده با اطلاعات ثبت احوال مطابقت ندارد."),
        ("birth_date_hijri", json!("1410-11-25"), "lunar_date_not_offered", "تاریخ تولد قمری"),
        // The original guide's example: «نام مادر: شهرزاد»; «مریم» is someone else's mother.
        ("mother_name", json!("مریم"), "mother_name_mismatch", "نام مادر وارد شده با اطلاعات ثبت احوال مطابقت ندارد."),
    ];
    for (field, value, code, message) in cases {
        let mut wrong = info(&SAMPLE);
        wrong[field] = value;
        if field == "birth_date_jalali" {
            wrong["birth_date_hijri"] = json!("1410-11-16");
        }
        let (status, p) = app.put(PERSONAL_INFO, Some(&token), &wrong).await;
        assert_eq!(status, 422, "{field}: {p}");
        let error = &p["errors"][0];
        assert_eq!((error["field"].as_str(), error["code"].as_str()), (Some(field), Some(code)), "{p}");
        assert!(error["message"].as_str().unwrap().starts_with(message), "{p}");
    }
    let (status, _) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!(status, 404, "no mismatch created an application");
    assert_eq!(app.count_sql("SELECT count(*) AS n FROM applications").await, 0);

    // Letter forms and spacing are not a mismatch; the right details are verified.
    let mut right = info(&SAMPLE);
    right["mother_name"] = json!(" شهرزاد ");
    let (status, view) = app.put(PERSONAL_INFO, Some(&token), &right).await;
    assert_eq!(status, 201, "{view}");
    assert_eq!(view["identity_status"], "verified");
});

registry_test!(an_outage_never_opens_an_existing_application, |app, stub| {
    let token = app.register_and_pay(&SAMPLE).await;
    let (_, before) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!(before["state"], "registered", "{before}");
    assert_eq!(
        app.status_of(reqwest::Method::DELETE, "/api/v1/citizen/sessions/current", Some(&token), &json!({})).await,
        204
    );
    let sessions = live_sessions(&app).await;
    let citizens = app.count_sql("SELECT count(*) AS n FROM citizens").await;
    let audit = app.count_sql("SELECT count(*) AS n FROM audit_log").await;

    stub.answer(Answer::Down);
    // More tries than the entry lock allows, with made-up serials and with the right one.
    for (i, serial) in
        ["123456", "654321", "111111", "222222", "333333", "444444", "555555", SAMPLE.serial].into_iter().enumerate()
    {
        let (id, answer) = app.captcha().await;
        let res = app
            .http
            .post(app.url("/api/v1/citizen/sessions"))
            .json(&json!({"national_id": SAMPLE.national_id, "serial": serial, "captcha_id": id, "captcha_answer": answer}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 503, "try {i}");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        assert!(res.headers().get("retry-after").is_some(), "Retry-After tells when to try again");
        let p: Value = res.json().await.unwrap();
        assert_eq!(p["code"], "registry_unavailable", "{p}");
        assert!(p.get("token").is_none());
    }
    assert_eq!(live_sessions(&app).await, sessions, "no session was opened");
    assert_eq!(app.count_sql("SELECT count(*) AS n FROM citizens").await, citizens);
    assert_eq!(app.count_sql("SELECT count(*) AS n FROM audit_log").await, audit, "nothing was written");

    // The registry is back: nothing was counted against the citizen's entry lock — a wrong
    // serial is the first failure (not 429), and the right one opens the untouched application.
    stub.answer(Answer::Normal);
    let (status, p) = app.enter(SAMPLE.national_id, "123456").await;
    assert_eq!((status, p["code"].as_str()), (422, Some("identity_mismatch")), "{p}");
    let (status, entry) = app.enter(SAMPLE.national_id, SAMPLE.serial).await;
    assert_eq!(status, 201, "{entry}");
    let application = &entry["application"];
    assert_eq!(application["tracking_code"], before["tracking_code"]);
    assert_eq!(application["personal_info"]["mobile"], before["personal_info"]["mobile"]);
    assert_eq!(application["state"], "registered");
});

registry_test!(an_unchecked_session_is_alone_and_ends_when_the_serial_is_confirmed, |app, stub| {
    // A new national code during an outage: one unchecked session, not two.
    stub.answer(Answer::Down);
    let (status, attacker) = app.enter(SAMPLE.national_id, "123456").await;
    assert_eq!(status, 201, "{attacker}");
    assert_eq!(attacker["identity_confirmed"], false);
    let attacker = attacker["token"].as_str().unwrap().to_owned();
    let (status, p) = app.enter(SAMPLE.national_id, SAMPLE.serial).await;
    assert_eq!((status, p["code"].as_str()), (503, Some("registry_unavailable")), "a live session is not shared");

    // The registry is back and the real citizen enters: the unchecked session is over.
    stub.answer(Answer::Normal);
    let (status, entry) = app.enter(SAMPLE.national_id, SAMPLE.serial).await;
    assert_eq!(status, 201, "{entry}");
    assert_eq!(entry["identity_confirmed"], true);
    let (status, p) = app.get("/api/v1/citizen/application", Some(&attacker)).await;
    assert_eq!((status, p["code"].as_str()), (401, Some("session_ended")), "{p}");
    let token = entry["token"].as_str().unwrap();
    let (status, view) = app.put(PERSONAL_INFO, Some(token), &info(&SAMPLE)).await;
    assert_eq!(status, 201, "{view}");
    assert_eq!(view["identity_status"], "verified");
});

registry_test!(an_outage_for_a_new_national_code_is_pending_then_verified_with_an_sms, |app, stub| {
    stub.answer(Answer::Down);
    let (status, entry) = app.enter(SAMPLE.national_id, SAMPLE.serial).await;
    assert_eq!(status, 201, "{entry}");
    assert_eq!(entry["identity_confirmed"], false);
    let token = entry["token"].as_str().unwrap().to_owned();
    let (status, view) = app.put(PERSONAL_INFO, Some(&token), &info(&SAMPLE)).await;
    assert_eq!(status, 201, "accepted while the registry is down: {view}");
    assert_eq!(view["identity_status"], "pending");
    assert_eq!(view["next_step"], "wait_for_identity_check");
    assert_eq!(view["next_step_text"], "استعلام هویت در حال انجام است (حداکثر ۲۴ ساعت).");
    let (status, _) =
        app.put("/api/v1/citizen/application/special-needs", Some(&token), &ncr_tests::client::typical_needs()).await;
    assert_eq!(status, 200);
    // Booking stays closed until the identity is verified.
    let office = api::seed::offices::MARAGHEH_OFFICE_ID;
    let date = app.open_date(office, 2).await;
    let (status, p) = app.hold(&token, office, date, "morning").await;
    assert_eq!((status, p["code"].as_str()), (409, Some("identity_not_verified")), "{p}");

    // The job asks again with backoff: not before the next check is due.
    let asked = stub.requests();
    app.clock.advance(Duration::minutes(2));
    assert_eq!(api::jobs::settle_identities(&app.state).await.unwrap(), 0);
    assert_eq!(stub.requests(), asked + 1);
    assert_eq!(api::jobs::settle_identities(&app.state).await.unwrap(), 0);
    assert_eq!(stub.requests(), asked + 1, "backoff: the next inquiry waits");
    // The registry answers "queued, no answer yet" (202): still pending.
    stub.answer(Answer::Pending);
    app.clock.advance(Duration::minutes(3));
    assert_eq!(api::jobs::settle_identities(&app.state).await.unwrap(), 0);
    assert_eq!(stub.requests(), asked + 2);
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!(view["identity_status"], "pending");

    // Still down past the promised 24 hours (docs/domain/eligibility.md): never a refusal, but an alarm for the operators.
    let overdue = |app: &TestApp| {
        app.state
            .metrics
            .render()
            .lines()
            .any(|l| l.starts_with("ncr_events_total{") && l.contains("identity_overdue") && !l.ends_with(" 0"))
    };
    assert!(!overdue(&app));
    stub.answer(Answer::Down);
    app.clock.advance(Duration::hours(25));
    assert_eq!(api::jobs::settle_identities(&app.state).await.unwrap(), 0);
    assert!(overdue(&app), "an identity pending past 24 hours is reported");
    assert_eq!(app.count_sql("SELECT count(*) AS n FROM applications WHERE identity_status = 'pending'").await, 1);
    // (The citizen's token expired meanwhile; entering again waits for the registry.)
    let (status, p) = app.enter(SAMPLE.national_id, SAMPLE.serial).await;
    assert_eq!((status, p["code"].as_str()), (503, Some("registry_unavailable")), "{p}");

    // Recovery: settled at the next inquiry (at most 64 minutes apart).
    stub.answer(Answer::Normal);
    app.clock.advance(Duration::minutes(65));
    assert_eq!(api::jobs::settle_identities(&app.state).await.unwrap(), 1);
    let token = app.login(SAMPLE.national_id, SAMPLE.serial).await;
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!(view["identity_status"], "verified", "{view}");
    assert_eq!(view["next_step"], "choose_appointment", "{view}");
    assert_eq!(
        identity_texts(&app, SAMPLE.mobile.unwrap()).await,
        ["هویت شما تایید شد؛ ثبت‌نام کارت ملی را ادامه دهید."],
        "the citizen is told by SMS"
    );
    let date = app.open_date(office, 2).await;
    let (status, body) = app.hold(&token, office, date, "morning").await;
    assert_eq!(status, 200, "booking opens once verified: {body}");
    // Settled once: the job has nothing more to do.
    app.clock.advance(Duration::hours(2));
    assert_eq!(api::jobs::settle_identities(&app.state).await.unwrap(), 0);
});

registry_test!(a_pending_inquiry_that_does_not_match_is_rejected_and_corrected, |app, stub| {
    stub.answer(Answer::Down);
    let token = app.login(SAMPLE.national_id, SAMPLE.serial).await;
    let mut wrong = info(&SAMPLE);
    wrong["mother_name"] = json!("مریم");
    let (status, view) = app.put(PERSONAL_INFO, Some(&token), &wrong).await;
    assert_eq!(status, 201, "{view}");
    assert_eq!(view["identity_status"], "pending");

    stub.answer(Answer::Normal);
    app.clock.advance(Duration::minutes(2));
    assert_eq!(api::jobs::settle_identities(&app.state).await.unwrap(), 1);
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!(view["identity_status"], "rejected", "the job compares the mother's name too");
    assert_eq!(view["next_step"], "correct_personal_info");
    assert_eq!(
        identity_texts(&app, SAMPLE.mobile.unwrap()).await,
        ["اطلاعات شما با ثبت احوال همخوانی ندارد؛ آن را اصلاح کنید."]
    );
    let office = api::seed::offices::MARAGHEH_OFFICE_ID;
    let date = app.open_date(office, 2).await;
    let (status, p) = app.hold(&token, office, date, "morning").await;
    assert_eq!((status, p["code"].as_str()), (409, Some("identity_not_verified")), "{p}");

    // Correcting it (an edit) verifies at once now that the registry answers.
    let (status, view) = app.put(PERSONAL_INFO, Some(&token), &info(&SAMPLE)).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["identity_status"], "verified");
    assert_eq!(view["edits_left"], 2);
});

registry_test!(a_made_up_serial_during_an_outage_is_rejected_later, |app, stub| {
    // A new national code entered with a serial nobody could check: its application is
    // only ever pending, then rejected once the registry compares the serial.
    stub.answer(Answer::Down);
    let token = app.login(MALE.national_id, "123456").await;
    let (status, view) = app.put(PERSONAL_INFO, Some(&token), &info(&MALE)).await;
    assert_eq!(status, 201, "{view}");
    assert_eq!(view["identity_status"], "pending");
    stub.answer(Answer::Normal);
    app.clock.advance(Duration::minutes(2));
    assert_eq!(api::jobs::settle_identities(&app.state).await.unwrap(), 1);
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!(view["identity_status"], "rejected");
});

registry_test!(e_folder_registration_asks_the_registry_over_http, |app, stub| {
    let form = |p: &Persona| {
        json!({
            "gender": p.gender.as_str(),
            "national_id": p.national_id,
            "first_name": p.first_name,
            "last_name": p.last_name,
            "father_name": p.father_name,
            "mobile": p.mobile.unwrap(),
            "postal_code": "5518743111",
        })
    };
    // The stub is the authority: a father's name it does not hold is a mismatch.
    stub.set_field(SAMPLE.national_id, "father_name", json!("حسن"));
    let (status, p) = app.post("/api/v1/efolder/registrations", None, &form(&SAMPLE)).await;
    assert_eq!((status, p["code"].as_str()), (422, Some("registry_data_mismatch")), "{p}");
    stub.set_field(SAMPLE.national_id, "father_name", json!(SAMPLE.father_name));
    // An outage (or a pending answer) is "try later".
    for answer in [Answer::Down, Answer::Pending] {
        stub.answer(answer);
        let (status, p) = app.post("/api/v1/efolder/registrations", None, &form(&SAMPLE)).await;
        assert_eq!((status, p["code"].as_str()), (503, Some("registry_unavailable")), "{answer:?}: {p}");
    }
    assert_eq!(app.count_sql("SELECT count(*) AS n FROM efolder_accounts").await, 0);
    stub.answer(Answer::Normal);
    let (status, p) = app.post("/api/v1/efolder/registrations", None, &form(&SAMPLE)).await;
    assert_eq!(status, 201, "{p}");
});

registry_test!(the_job_applies_the_entry_checks_a_citizen_let_in_during_an_outage_skipped, |app, stub| {
    stub.answer(Answer::Down);
    let dead = app.login(DECEASED.national_id, DECEASED.serial).await;
    let changed = app.login(SERIAL_CHANGED.national_id, SERIAL_CHANGED.serial).await;
    for token in [&dead, &changed] {
        let persona = if token == &dead { &DECEASED } else { &SERIAL_CHANGED };
        let (status, view) = app.put(PERSONAL_INFO, Some(token), &info(persona)).await;
        assert_eq!(status, 201, "{view}");
        assert_eq!(view["identity_status"], "pending");
    }
    stub.answer(Answer::Normal);
    app.clock.advance(Duration::minutes(2));
    // The deceased person's details match the registry, but nobody registers for them.
    assert_eq!(api::jobs::settle_identities(&app.state).await.unwrap(), 1);
    let (_, view) = app.get("/api/v1/citizen/application", Some(&dead)).await;
    assert_eq!(view["identity_status"], "rejected");
    // A serial replaced ten hours ago is "not yet": still pending, asked again later…
    let (_, view) = app.get("/api/v1/citizen/application", Some(&changed)).await;
    assert_eq!(view["identity_status"], "pending");
    // …and verified once 48 working hours have passed (a week covers any weekend).
    for _ in 0..(7 * 24) {
        app.clock.advance(Duration::hours(1));
        if api::jobs::settle_identities(&app.state).await.unwrap() == 1 {
            break;
        }
    }
    let changed = app.login(SERIAL_CHANGED.national_id, SERIAL_CHANGED.serial).await;
    let (_, view) = app.get("/api/v1/citizen/application", Some(&changed)).await;
    assert_eq!(view["identity_status"], "verified", "{view}");
});
