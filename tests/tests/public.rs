//! Public lookups, information pages and the USSD service (issue 9, parts 3 and 4),
//! black-box over HTTP, on SQLite and PostgreSQL.

use api::seed::offices::MARAGHEH_OFFICE_ID;
use api::seed::population::{MALE, SAMPLE};
use chrono::{Duration, NaiveDate};
use domain::calendar::{JalaliDate, tehran_instant};
use domain::text::persian_digits;
use ncr_tests::journey::eligible_people;
use ncr_tests::{Backend, TestApp, db_test, json};
use persistence::PiiKind;
use serde_json::{Value, json};

const SAMPLE_MOBILE: &str = "09145128136";
const USSD_SECRET: &str = "test-ussd-secret-1234";

/// The registered SAMPLE citizen's own view (tracking code, appointment, id).
async fn registered_sample(app: &TestApp) -> Value {
    let token = app.register_and_pay(&SAMPLE).await;
    let (status, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!(status, 200, "{view}");
    view
}

/// A GET with an `Accept-Language`; returns status, headers and JSON.
async fn get_lang(app: &TestApp, path: &str, lang: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let res = app.http.get(app.url(path)).header("Accept-Language", lang).send().await.expect("request");
    let headers = res.headers().clone();
    let (status, body) = json(res).await;
    (status, headers, body)
}

/// A problem document without what differs between any two requests.
fn without_request(mut problem: Value) -> Value {
    let obj = problem.as_object_mut().expect("object");
    obj.remove("request_id");
    obj.remove("instance");
    problem
}

/// Asserts that a public answer holds nothing personal about SAMPLE.
fn assert_nothing_personal(body: &Value, tracking_code: &str) {
    let text = body.to_string();
    for secret in [
        SAMPLE.national_id,
        SAMPLE.serial,
        SAMPLE.first_name,
        SAMPLE.last_name,
        SAMPLE.mother_name,
        SAMPLE.birth_date,
        "1990-06-09",
        SAMPLE_MOBILE,
        "9145128136",
        tracking_code,
    ] {
        assert!(!text.contains(secret), "{secret} leaked in {text}");
    }
}

db_test!(status_by_tracking_code_or_birth_date_shows_the_state_and_appointment_only, |app| {
    let view = registered_sample(&app).await;
    let code = view["tracking_code"].as_str().unwrap().to_owned();

    let (status, by_code) =
        app.get(&format!("/api/v1/public/status?national_id={}&tracking_code={code}", SAMPLE.national_id), None).await;
    assert_eq!(status, 200, "{by_code}");
    assert_eq!(by_code["state"], "registered");
    assert_eq!(by_code["state_text"], "ثبت نام شده");
    assert_eq!(by_code["payment_status"], "paid");
    assert_eq!(by_code["next_step"], "attend_enrollment");
    assert_eq!(by_code["next_step_text"], view["next_step_text"]);
    let appointment = &by_code["appointment"];
    assert_eq!(appointment["status"], "booked");
    assert_eq!(appointment["office"]["id"], MARAGHEH_OFFICE_ID);
    assert_eq!(appointment["office"]["name"], view["appointment"]["office"]["name"]);
    assert_eq!(appointment["office"]["address"], view["appointment"]["office"]["address"]);
    assert_eq!(appointment["date"], view["appointment"]["date"]);
    assert_eq!(appointment["date_jalali"], view["appointment"]["date_jalali"]);
    assert_eq!(appointment["shift"], view["appointment"]["shift"]);
    assert!(by_code["delivery_office"].is_null(), "delivery matters only once enrollment started: {by_code}");
    assert_nothing_personal(&by_code, &code);

    // The same answer by birth date (Persian digits are fine), without the tracking code.
    let (status, by_birth) =
        app.get("/api/v1/public/status?national_id=۲۵۸۰۲۰۰۶۰۶&birth_date_jalali=۱۳۶۹-۰۳-۱۹", None).await;
    assert_eq!(status, 200, "{by_birth}");
    assert_eq!(by_birth, by_code);

    // Both given: both must match.
    let (status, both) = app
        .get(
            &format!(
                "/api/v1/public/status?national_id={}&tracking_code={code}&birth_date_jalali=1369-03-19",
                SAMPLE.national_id
            ),
            None,
        )
        .await;
    assert_eq!((status, &both), (200, &by_code));

    // English on request.
    let (status, headers, en) =
        get_lang(&app, &format!("/api/v1/public/status?national_id={}&tracking_code={code}", SAMPLE.national_id), "en")
            .await;
    assert_eq!(status, 200);
    assert_eq!(en["state_text"], "Registered");
    assert_eq!(en["next_step_text"], "Go to the office on your appointment date with your birth certificate.");
    assert_eq!(headers["cache-control"], "no-store", "a status is never cached");
});

db_test!(a_wrong_tracking_code_or_birth_date_answers_exactly_like_an_unknown_national_code, |app| {
    let view = registered_sample(&app).await;
    let code = view["tracking_code"].as_str().unwrap().to_owned();
    let mut other = domain::ids::TrackingCode::from_random(123_456_789).to_string();
    if other == code {
        other = domain::ids::TrackingCode::from_random(987_654_321).to_string();
    }
    let unknown = MALE.national_id; // in the registry, but never applied

    let mut bodies = Vec::new();
    for query in [
        format!("national_id={}&tracking_code={other}", SAMPLE.national_id),
        format!("national_id={unknown}&tracking_code={code}"),
        format!("national_id={unknown}&tracking_code={other}"),
        format!("national_id={}&birth_date_jalali=1370-01-01", SAMPLE.national_id),
        format!("national_id={unknown}&birth_date_jalali=1369-03-19"),
        format!("national_id={}&tracking_code={code}&birth_date_jalali=1370-01-01", SAMPLE.national_id),
    ] {
        let res = app.http.get(app.url(&format!("/api/v1/public/status?{query}"))).send().await.unwrap();
        let headers = res.headers().clone();
        let (status, body) = json(res).await;
        assert_eq!((status, body["code"].as_str()), (404, Some("status_not_found")), "{query}: {body}");
        assert!(body["request_id"].is_string());
        assert_eq!(headers["content-type"], "application/problem+json");
        bodies.push(without_request(body));
    }
    for body in &bodies[1..] {
        assert_eq!(body, &bodies[0], "every miss must look the same");
    }

    // Formats are checked per field first.
    let (status, body) = app.get("/api/v1/public/status?national_id=2580200607&tracking_code=123", None).await;
    assert_eq!(status, 422, "{body}");
    let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["national_id", "tracking_code"], "{body}");
    let (status, body) = app.get(&format!("/api/v1/public/status?national_id={}", SAMPLE.national_id), None).await;
    assert_eq!((status, body["errors"][0]["field"].as_str()), (422, Some("tracking_code")), "{body}");
    assert_eq!(body["errors"][0]["code"], "required");
    let (status, body) = app
        .get(&format!("/api/v1/public/status?national_id={}&birth_date_jalali=1369-13-40", SAMPLE.national_id), None)
        .await;
    assert_eq!((status, body["errors"][0]["field"].as_str()), (422, Some("birth_date_jalali")), "{body}");
    let (status, body) = app
        .get(&format!("/api/v1/public/status?national_id={}&mobile={SAMPLE_MOBILE}", SAMPLE.national_id), None)
        .await;
    assert_eq!((status, body["errors"][0]["code"].as_str()), (422, Some("unknown_field")), "{body}");
});

db_test!(failed_lookups_lock_one_address_out_of_one_national_code_for_an_hour, |app| {
    let path = |nid: &str| format!("/api/v1/public/status?national_id={nid}&birth_date_jalali=1369-03-19");
    for _ in 0..5 {
        let (status, body) = app.get(&path(MALE.national_id), None).await;
        assert_eq!(status, 404, "{body}");
    }
    let res = app.http.get(app.url(&path(MALE.national_id))).send().await.unwrap();
    let retry_after: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    let (status, body) = json(res).await;
    assert_eq!((status, body["code"].as_str()), (429, Some("status_lookup_limit")), "{body}");
    assert_eq!(retry_after, 3600);
    // Another national code is not affected; the same one works again an hour later.
    let (status, _) = app.get(&path(SAMPLE.national_id), None).await;
    assert_eq!(status, 404);
    app.clock.advance(Duration::minutes(61));
    let (status, _) = app.get(&path(MALE.national_id), None).await;
    assert_eq!(status, 404);
});

/// POST /public/tracking-code-recovery with a fresh captcha.
async fn recover(app: &TestApp, national_id: &str, birth: &str) -> (u16, Value) {
    let (id, answer) = app.captcha().await;
    app.post(
        "/api/v1/public/tracking-code-recovery",
        None,
        &json!({"national_id": national_id, "birth_date_jalali": birth, "captcha_id": id, "captcha_answer": answer}),
    )
    .await
}

db_test!(recovery_sends_the_code_by_sms_and_shows_only_the_masked_mobile, |app| {
    let view = registered_sample(&app).await;
    let code = view["tracking_code"].as_str().unwrap().to_owned();
    let application_id = view["id"].as_str().unwrap().to_owned();

    let (status, body) = recover(&app, SAMPLE.national_id, SAMPLE.birth_date).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "queued");
    assert_eq!(body["mobile_hint"], "0914***8136");
    assert!(body["message"].as_str().unwrap().contains("0914***8136"));
    assert_nothing_personal(&body, &code);

    // The SMS is in the outbox for her registered mobile, and only its sealed params hold the code.
    let (db, pii, id) = (app.state.db.clone(), app.state.pii.clone(), application_id.clone());
    let (messages, audit) = tokio::task::spawn_blocking(move || {
        let mut conn = db.get().unwrap();
        let messages: Vec<_> = persistence::outbox::for_application(&mut conn, &id.as_str().into())
            .unwrap()
            .into_iter()
            .filter(|m| m.template == "tracking_code_recovery")
            .map(|m| {
                let params: Value = serde_json::from_str(&pii.open(PiiKind::Secret, &m.params_enc).unwrap()).unwrap();
                let recipient = pii.open(PiiKind::Mobile, &m.recipient_enc).unwrap();
                (m.channel, m.recipient_hint, recipient, params)
            })
            .collect();
        let filter = persistence::audit::AuditFilter {
            application_id: Some(id),
            action: Some("tracking_code_recovery".into()),
            ..Default::default()
        };
        (messages, persistence::audit::list(&mut conn, &filter, 10).unwrap())
    })
    .await
    .unwrap();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let (channel, hint, recipient, params) = &messages[0];
    assert_eq!((channel.as_str(), hint.as_str(), recipient.as_str()), ("sms", "0914***8136", SAMPLE_MOBILE));
    assert_eq!(params["tracking_code"], code.as_str());
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].actor_kind, "public");
    assert!(!audit[0].details.clone().unwrap_or_default().contains(&code));

    // No such person and a wrong birth date look the same.
    let (status, wrong_birth) = recover(&app, SAMPLE.national_id, "1369-03-20").await;
    assert_eq!((status, wrong_birth["code"].as_str()), (404, Some("recovery_not_found")), "{wrong_birth}");
    let (status, unknown) = recover(&app, MALE.national_id, SAMPLE.birth_date).await;
    assert_eq!(status, 404);
    assert_eq!(without_request(unknown), without_request(wrong_birth));

    // A wrong captcha is refused before anything is looked up or counted.
    let (status, body) = app
        .post(
            "/api/v1/public/tracking-code-recovery",
            None,
            &json!({"national_id": SAMPLE.national_id, "birth_date_jalali": SAMPLE.birth_date, "captcha_id": "v1.x", "captcha_answer": "1"}),
        )
        .await;
    assert_eq!((status, body["errors"][0]["code"].as_str()), (422, Some("captcha_invalid")), "{body}");

    // Three SMS a day per national code; the failures above are not counted against the
    // owner: the second and third work, the fourth waits until Tehran midnight.
    for _ in 0..2 {
        let (status, _) = recover(&app, SAMPLE.national_id, SAMPLE.birth_date).await;
        assert_eq!(status, 202);
    }
    let (captcha_id, answer) = app.captcha().await;
    let res = app
        .http
        .post(app.url("/api/v1/public/tracking-code-recovery"))
        .json(&json!({"national_id": SAMPLE.national_id, "birth_date_jalali": SAMPLE.birth_date, "captcha_id": captcha_id, "captcha_answer": answer}))
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("retry-after"));
    let (status, body) = json(res).await;
    assert_eq!((status, body["code"].as_str()), (429, Some("recovery_limit")), "{body}");
    app.clock.advance(Duration::days(1));
    let (status, _) = recover(&app, SAMPLE.national_id, SAMPLE.birth_date).await;
    assert_eq!(status, 202, "a new day, a new allowance");
});

db_test!(recovery_before_payment_says_there_is_no_tracking_code_yet, |app| {
    let person = eligible_people(&app, 1).await.remove(0);
    app.draft(&person).await;
    let (status, body) = recover(&app, &person.national_id, &person.birth_date).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("no_tracking_code")), "{body}");
    let (status, body) = recover(&app, &person.national_id, "1300-01-01").await;
    assert_eq!((status, body["code"].as_str()), (404, Some("recovery_not_found")), "{body}");
});

db_test!(the_information_pages_come_in_persian_and_english_with_todays_fees, |app| {
    let (status, headers, fa) = get_lang(&app, "/api/v1/public/process-info", "fa-IR").await;
    assert_eq!(status, 200, "{fa}");
    assert_eq!(headers["cache-control"], "public, max-age=300");
    assert_eq!(headers["vary"], "Accept-Language");
    assert_eq!(fa["lang"], "fa");
    let tabs: Vec<&str> = fa["tabs"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(tabs, ["registration", "production", "delivery"]);
    assert!(fa["tabs"].as_array().unwrap().iter().all(|t| !t["steps"].as_array().unwrap().is_empty()));
    assert_eq!(
        fa["fees"],
        json!({"card_fee": 200000, "counter_fee_max": 90000, "delivery_fee": 20000, "reissue_fee": 300000}),
        "{fa}"
    );
    assert_eq!(fa["ussd_code"], "*4*6090#");
    let text = fa.to_string();
    assert!(text.contains("۲۰۰٬۰۰۰ ریال") && text.contains("۹۰٬۰۰۰") && !text.contains("{card_fee}"), "{text}");

    let (status, _, en) = get_lang(&app, "/api/v1/public/process-info", "en-US,en;q=0.9").await;
    assert_eq!(status, 200);
    assert_eq!(en["lang"], "en");
    assert_eq!(en["tabs"][2]["title"], "Delivery");
    assert!(en.to_string().contains("200,000 rials"), "{en}");

    // Persian is the default.
    let (status, conditions) = app.get("/api/v1/public/registration-conditions", None).await;
    assert_eq!(status, 200);
    assert_eq!(conditions["lang"], "fa");
    assert_eq!(conditions["rules"]["no_show_ban_days"], 4);
    assert_eq!(conditions["rules"]["booking_window_months"], 2);
    let sections: Vec<&str> =
        conditions["sections"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert!(
        sections.contains(&"documents") && sections.contains(&"rules") && sections.contains(&"fees"),
        "{sections:?}"
    );
    let documents = conditions["sections"].as_array().unwrap().iter().find(|s| s["id"] == "documents").unwrap();
    assert!(documents["items"][0].as_str().unwrap().contains("شناسنامه"), "{documents}");
    let text = conditions.to_string();
    assert!(text.contains("تا ۴ روز") && text.contains("۲ ماه"), "{text}");

    let (_, _, en) = get_lang(&app, "/api/v1/public/registration-conditions", "en").await;
    assert!(en.to_string().contains("cannot book again for 4 days"), "{en}");

    // A new tariff line shows at once: the numbers are filled in per request.
    let admin = app.admin_token().await;
    let today = domain::calendar::tehran_date(app.state.now());
    let (status, body) = app
        .post("/api/v1/admin/fees", Some(&admin), &json!({"kind": "card", "amount": 250000, "effective_from": today}))
        .await;
    assert_eq!(status, 201, "{body}");
    let (_, _, en) = get_lang(&app, "/api/v1/public/registration-conditions", "en").await;
    assert_eq!(en["fees"]["card_fee"], 250000);
    assert!(en.to_string().contains("Card fee: 250,000 rials"), "{en}");
});

// ---------------------------------------------------------------- USSD

/// Runs a test body on both databases with `[ussd] secret` configured.
macro_rules! ussd_test {
    ($name:ident, |$app:ident| $body:block) => {
        mod $name {
            use super::*;
            #[actix_web::test]
            async fn sqlite() {
                let $app = with_ussd_secret(Backend::Sqlite).await.expect("sqlite always runs");
                $body
            }
            #[actix_web::test]
            async fn postgres() {
                let Some($app) = with_ussd_secret(Backend::Postgres).await else { return };
                $body
            }
        }
    };
}

async fn with_ussd_secret(backend: Backend) -> Option<TestApp> {
    ncr_tests::spawn_with(backend, Box::new(|c| c.ussd.secret = Some(USSD_SECRET.into()))).await
}

/// One gateway request; returns the status and the body.
async fn dial(app: &TestApp, secret: Option<&str>, phone: &str, text: &str) -> (u16, String) {
    let mut req = app.http.post(app.url("/api/v1/ussd")).form(&[
        ("sessionId", "ATUid_test"),
        ("phoneNumber", phone),
        ("serviceCode", "*4*6090#"),
        ("text", text),
    ]);
    if let Some(s) = secret {
        req = req.header("X-USSD-Secret", s);
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    if status == 200 {
        assert_eq!(res.headers()["content-type"], "text/plain; charset=utf-8");
    }
    (status, res.text().await.expect("body"))
}

/// A screen, checked: at most 80 characters, `CON ` or `END `.
async fn screen(app: &TestApp, text: &str) -> String {
    let (status, body) = dial(app, Some(USSD_SECRET), "+989145128136", text).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("CON ") || body.starts_with("END "), "{body}");
    assert!(body.chars().count() <= 80, "{} characters: {body}", body.chars().count());
    body
}

/// Every page of a detail reached by `prefix` (following `0` while offered), joined.
async fn all_pages(app: &TestApp, prefix: &str) -> String {
    let mut path: Vec<String> = if prefix.is_empty() { vec![] } else { vec![prefix.to_owned()] };
    let mut out = Vec::new();
    for _ in 0..12 {
        let body = screen(app, &path.join("*")).await;
        let more = body.contains("۰ بیشتر");
        out.push(body);
        if !more {
            return out.join("\n");
        }
        path.push("0".into());
    }
    panic!("too many pages: {out:?}");
}

fn jalali_fa(date: &str) -> String {
    let d = JalaliDate::from_gregorian(date.parse::<NaiveDate>().unwrap()).unwrap();
    persian_digits(&d.to_string().replace('-', "/"))
}

ussd_test!(ussd_shows_her_appointment_and_follows_live_state, |app| {
    let view = registered_sample(&app).await;
    let code = view["tracking_code"].as_str().unwrap().to_owned();
    let date = view["appointment"]["date"].as_str().unwrap().to_owned();
    let office = view["appointment"]["office"]["name"].as_str().unwrap().to_owned();

    // One application: straight to it, paged.
    let first = screen(&app, "").await;
    assert!(first.starts_with("CON "), "{first}");
    assert!(first.contains(&format!("{} ({})", SAMPLE.first_name, persian_digits(&code[6..]))), "{first}");
    let pages = all_pages(&app, "").await;
    assert!(pages.contains("ثبت نام شده"), "{pages}");
    assert!(pages.contains(&jalali_fa(&date)), "the appointment date in Persian digits: {pages}");
    assert!(pages.contains(&office), "{pages}");
    assert!(!pages.contains("مراجعه نشد"), "{pages}");
    for secret in [SAMPLE.national_id, &persian_digits(SAMPLE.national_id), &code, &persian_digits(&code)] {
        assert!(!pages.contains(secret), "{secret} on screen: {pages}");
    }
    // `00` on a later page goes back.
    assert_eq!(screen(&app, "0*00").await, first);

    // She misses the appointment: the next dial shows it and the ban, no cache in between.
    let day: NaiveDate = date.parse().unwrap();
    app.clock.set(tehran_instant(day, 20, 0));
    assert_eq!(api::jobs::mark_no_shows(&app.state).await.unwrap(), 1);
    let after = all_pages(&app, "").await;
    assert!(after.contains("مراجعه نشد"), "{after}");
    assert!(after.contains(&jalali_fa(&(day + Duration::days(4)).to_string())), "the ban's end: {after}");
    assert_ne!(after, pages);
});

ussd_test!(a_mother_sees_every_application_on_her_mobile, |app| {
    registered_sample(&app).await;
    // Her daughter registers with the mother's mobile, a little later.
    app.clock.advance(Duration::minutes(5));
    let mut child = eligible_people(&app, 1).await.remove(0);
    child.mobile = SAMPLE_MOBILE.into();
    let token = app.draft(&child).await;
    let (_, child_view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    let child_name = child_view["personal_info"]["first_name"].as_str().unwrap().to_owned();

    let list = screen(&app, "").await;
    assert!(list.starts_with("CON "), "{list}");
    assert!(list.contains(&format!("۱. {}", SAMPLE.first_name)), "{list}");
    assert!(list.contains(&format!("۲. {child_name}")), "{list}");

    let first = all_pages(&app, "1").await;
    assert!(first.contains("ثبت نام شده") && first.contains("مراغه"), "{first}");
    let second = all_pages(&app, "2").await;
    assert!(second.contains(&child_name) && second.contains("ثبت اولیه"), "{second}");
    assert!(second.contains("زمان و مکان"), "her next step is to choose an appointment: {second}");
    assert!(!second.contains(&child.national_id), "{second}");
    // Back from the application to the list; an unknown option changes nothing.
    assert_eq!(screen(&app, "2*00").await, list);
    assert_eq!(screen(&app, "7").await, list);

    // Another mobile has nothing.
    let (status, none) = dial(&app, Some(USSD_SECRET), "09121111111", "").await;
    assert_eq!(status, 200);
    assert!(none.starts_with("END "), "{none}");
});

ussd_test!(the_gateway_must_know_the_secret, |app| {
    let (status, body) = dial(&app, Some("wrong"), SAMPLE_MOBILE, "").await;
    assert_eq!(status, 401, "{body}");
    let problem: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["code"], "ussd_secret_invalid");
    let (status, _) = dial(&app, None, SAMPLE_MOBILE, "").await;
    assert_eq!(status, 401);
    let (status, body) = dial(&app, Some(USSD_SECRET), SAMPLE_MOBILE, "").await;
    assert_eq!((status, body.starts_with("END ")), (200, true), "{body}");
});

mod ussd_without_configuration {
    use super::*;

    /// The embedded default answers this machine; an allow-list without it refuses.
    #[actix_web::test]
    async fn sqlite() {
        let app = ncr_tests::spawn(Backend::Sqlite).await.expect("sqlite");
        let (status, body) = dial(&app, None, SAMPLE_MOBILE, "").await;
        assert_eq!(status, 200, "{body}");
        let app =
            ncr_tests::spawn_with(Backend::Sqlite, Box::new(|c| c.ussd.allowed_ips = vec!["192.0.2.0/24".into()]))
                .await
                .expect("sqlite");
        let (status, body) = dial(&app, None, SAMPLE_MOBILE, "").await;
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("ussd_address_forbidden"), "{body}");
    }

    /// A production database with nothing configured does not serve USSD at all.
    #[actix_web::test]
    async fn postgres() {
        let Some(app) = ncr_tests::spawn(Backend::Postgres).await else { return };
        let (status, body) = dial(&app, None, SAMPLE_MOBILE, "").await;
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("ussd_not_configured"), "{body}");
        let Some(app) =
            ncr_tests::spawn_with(Backend::Postgres, Box::new(|c| c.ussd.allowed_ips = vec!["127.0.0.1".into()])).await
        else {
            return;
        };
        let (status, body) = dial(&app, None, SAMPLE_MOBILE, "").await;
        assert_eq!(status, 200, "an allow-list alone is enough: {body}");
    }
}
