//! The national e-folder (issue 10, docs/domain/efolder.md), black-box over HTTP, on SQLite and
//! PostgreSQL: each registration outcome with the original guide's exact Persian text, credentials by
//! SMS (or shown when SMS is down), login, the forced first change, lockout, reset codes,
//! and the clear password never reaching the database or the logs.

use api::seed::population::{MALE, Persona, RELATIVE_MOBILE, SAMPLE};
use chrono::Duration;
use ncr_tests::{TestApp, db_test};
use serde_json::{Value, json};

/// The four texts of the e-folder registration, quoted (docs/domain/efolder.md).
const ALREADY_REGISTERED: &str = "اطلاعات شما قبلاً در سیستم وارد شده است.";
const MOBILE_NOT_OWNED: &str = "کاربر گرامی شماره تلفن وارد شده مربوط به این کد ملی نمی باشد لطفا شماره تلفن همراه دیگری را که با این کد ملی ثبت شده است، وارد نمایید.";
const REGISTRY_MISMATCH: &str =
    "اطلاعات وارد شده با اطلاعات موجود در ثبت احوال همخوانی ندارد. لطفا اطلاعات خود را مجددا بررسی فرمایید.";
const SUCCESS_SMS: &str = "ثبت نام شما در سامانه کارپوشه ملی ایرانیان با موفقیت انجام شد. نام کاربری و کلمه عبور طی 24 ساعت آینده برای شما پیامک خواهد شد.";
const SUCCESS_SHOWN: &str = "ثبت نام در سامانه کارپوشه ملی ایرانیان با موفقیت انجام شد.";

/// Every test here logs at `info`, so the log-grep test sees the registration lines
/// (one test binary shares one logger).
fn info_logs(c: &mut api::config::Config) {
    c.log_level = "info".into();
}

fn form(p: &Persona) -> Value {
    json!({
        "gender": p.gender.as_str(),
        "national_id": p.national_id,
        "first_name": p.first_name,
        "last_name": p.last_name,
        "father_name": p.father_name,
        "mobile": p.mobile.expect("persona has a mobile"),
        "postal_code": "5518743111",
    })
}

async fn register(app: &TestApp, body: &Value) -> (u16, Value) {
    app.post("/api/v1/efolder/registrations", None, body).await
}

async fn deliver(app: &TestApp) -> usize {
    api::jobs::deliver_outbox(&app.state).await.expect("the worker runs")
}

/// The texts the sandbox phone received, newest first.
async fn phone(app: &TestApp, mobile: &str) -> Vec<String> {
    let admin = app.admin_token().await;
    let (status, page) = app.get(&format!("/api/v1/admin/sandbox/sms?to={mobile}&limit=200"), Some(&admin)).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap().to_owned()).collect()
}

/// The value after `label` on its line of an SMS.
fn field(text: &str, label: &str) -> String {
    let line = text.lines().find(|l| l.starts_with(label)).unwrap_or_else(|| panic!("no {label} in {text}"));
    line[label.len()..].trim().to_owned()
}

async fn login(app: &TestApp, username: &str, password: &str) -> (u16, Value) {
    ncr_tests::json(login_response(app, username, password).await).await
}

/// The login answer with its headers (for `Retry-After`).
async fn login_response(app: &TestApp, username: &str, password: &str) -> reqwest::Response {
    let body = json!({"username": username, "password": password});
    app.http.post(app.url("/api/v1/efolder/sessions")).json(&body).send().await.expect("request")
}

async fn change_password(app: &TestApp, token: &str, current: &str, new: &str) -> (u16, Value) {
    app.put("/api/v1/efolder/password", Some(token), &json!({"current_password": current, "new_password": new})).await
}

async fn efolder_sms_count(app: &TestApp) -> i64 {
    app.count_sql("SELECT count(*) AS n FROM outbox WHERE template = 'efolder_credentials'").await
}

/// Registers SAMPLE with the SMS up and reads the credentials off the sandbox phone.
async fn registered_by_sms(app: &TestApp) -> (String, String) {
    let (status, body) = register(app, &form(&SAMPLE)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(deliver(app).await, 1);
    let texts = phone(app, SAMPLE.mobile.unwrap()).await;
    assert_eq!(texts.len(), 1, "{texts:?}");
    (field(&texts[0], "نام کاربری:"), field(&texts[0], "کلمه عبور:"))
}

db_test!(each_outcome_of_seed_000_has_its_exact_text_in_the_seed_order, tweak = info_logs, |app| {
    // Mobile not owned: RELATIVE_MOBILE's number is registered to her husband.
    let (status, p) = register(&app, &form(&RELATIVE_MOBILE)).await;
    assert_eq!((status, p["code"].as_str()), (422, Some("mobile_not_owned")), "{p}");
    assert_eq!(p["detail"], MOBILE_NOT_OWNED);
    // …even when the rest of the form is wrong too: ownership is checked before the registry.
    let mut wrong_and_foreign = form(&RELATIVE_MOBILE);
    wrong_and_foreign["father_name"] = json!("کسی دیگر");
    let (_, p) = register(&app, &wrong_and_foreign).await;
    assert_eq!(p["code"], "mobile_not_owned");

    // Data does not match the civil registry: father's name, gender, names.
    for (key, value) in [("father_name", json!("حسن")), ("gender", json!("male")), ("last_name", json!("کریمی"))]
    {
        let mut wrong = form(&SAMPLE);
        wrong[key] = value;
        let (status, p) = register(&app, &wrong).await;
        assert_eq!((status, p["code"].as_str()), (422, Some("registry_data_mismatch")), "{key}: {p}");
        assert_eq!(p["detail"], REGISTRY_MISMATCH);
    }

    // An outage of the ownership inquiry is "try later", never "not your number".
    let ownership = app.state.sandboxes.ownership.clone().expect("sandbox ownership");
    ownership.set_available(false);
    let (status, p) = register(&app, &form(&SAMPLE)).await;
    assert_eq!((status, p["code"].as_str()), (503, Some("mobile_check_unavailable")), "{p}");
    ownership.set_available(true);
    // So is an outage of the registry.
    let registry = app.state.sandboxes.registry.clone().unwrap();
    registry.set_available(false);
    let (status, p) = register(&app, &form(&SAMPLE)).await;
    assert_eq!((status, p["code"].as_str()), (503, Some("registry_unavailable")), "{p}");
    registry.set_available(true);
    assert_eq!(app.count_sql("SELECT count(*) AS n FROM efolder_accounts").await, 0, "no failure wrote an account");

    // Success with SMS: the original guide's text, nothing secret in the answer, never cached.
    // Arabic Yeh and Kaf in the names match the registry's Persian letters.
    let mut arabic = form(&SAMPLE);
    arabic["first_name"] = json!("مريم");
    let res = app.http.post(app.url("/api/v1/efolder/registrations")).json(&arabic).send().await.unwrap();
    assert_eq!(res.headers()["cache-control"], "no-store");
    let (status, body) = ncr_tests::json(res).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["message"], SUCCESS_SMS);
    assert_eq!(body["credentials_delivery"], "sms");
    assert!(body.get("credentials").is_none(), "credentials are shown only when no SMS can be sent: {body}");

    // Already registered — checked first, before the mobile and the registry.
    let mut again = form(&SAMPLE);
    again["mobile"] = json!(RELATIVE_MOBILE.mobile.unwrap());
    let (status, p) = register(&app, &again).await;
    assert_eq!((status, p["code"].as_str()), (409, Some("efolder_already_registered")), "{p}");
    assert_eq!(p["detail"], ALREADY_REGISTERED);

    // Field errors name every bad field at once.
    let (status, p) = register(
        &app,
        &json!({"gender": "female", "national_id": "1234567890", "first_name": "", "last_name": "x",
                "father_name": "علی", "mobile": "0912", "postal_code": "12"}),
    )
    .await;
    assert_eq!(status, 422, "{p}");
    let fields: Vec<&str> = p["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    for f in ["national_id", "first_name", "mobile", "postal_code"] {
        assert!(fields.contains(&f), "{f} missing in {p}");
    }
    // A legal person needs its 11-digit legal national ID.
    let mut legal = form(&MALE);
    legal["person_type"] = json!("legal");
    let (status, p) = register(&app, &legal).await;
    assert_eq!((status, p["code"].as_str()), (422, Some("representative_required")), "{p}");
    legal["legal_id"] = json!("10380284791");
    let (status, p) = register(&app, &legal).await;
    assert_eq!((status, p["errors"][0]["field"].as_str()), (422, Some("legal_id")), "{p}");
    legal["legal_id"] = json!("10380284790");
    let (status, body) = register(&app, &legal).await;
    assert_eq!(status, 201, "a representative registers the organisation: {body}");
    let (status, p) = register(&app, &legal).await;
    assert_eq!((status, p["code"].as_str()), (409, Some("efolder_already_registered")), "{p}");
    // The representative's own, natural-person account is a separate one.
    let (status, body) = register(&app, &form(&MALE)).await;
    assert_eq!(status, 201, "{body}");
});

db_test!(register_then_sms_then_login_then_forced_change_then_login_again, tweak = info_logs, |app| {
    let (username, password) = registered_by_sms(&app).await;
    assert!(username.starts_with("kp") && username.len() == 10, "{username}");
    assert!(password.len() >= 14, "a strong generated password: {password}");

    // First login: a token that allows only the password change.
    let (status, session) = login(&app, &username, &password).await;
    assert_eq!(status, 201, "{session}");
    assert_eq!(session["must_change_password"], true);
    let first = session["token"].as_str().unwrap().to_owned();
    let (status, p) = app.get("/api/v1/efolder/me", Some(&first)).await;
    assert_eq!((status, p["code"].as_str()), (403, Some("password_change_required")), "{p}");

    // The policy: ≥ 10 characters, not the username, not the national code.
    for weak in ["short1", &format!("{username}-extra"), &format!("x{}x", SAMPLE.national_id)] {
        let (status, p) = change_password(&app, &first, &password, weak).await;
        assert_eq!((status, p["code"].as_str()), (422, Some("password_too_weak")), "{weak}: {p}");
    }
    let (status, p) = change_password(&app, &first, "not-the-password", "a long passphrase of mine").await;
    assert_eq!((status, p["code"].as_str()), (401, Some("credentials_invalid")), "{p}");

    let new_password = "a long passphrase of mine";
    let (status, changed) = change_password(&app, &first, &password, new_password).await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["must_change_password"], false);
    let (status, p) = app.get("/api/v1/efolder/me", Some(&first)).await;
    assert_eq!((status, p["code"].as_str()), (401, Some("token_invalid")), "the first token died with the change: {p}");

    // Login again with the new password; the generated one no longer works.
    let (status, p) = login(&app, &username, &password).await;
    assert_eq!((status, p["code"].as_str()), (401, Some("credentials_invalid")));
    let (status, session) = login(&app, &username, new_password).await;
    assert_eq!(status, 201, "{session}");
    assert_eq!(session["must_change_password"], false);
    let token = session["token"].as_str().unwrap();
    let res = app.http.get(app.url("/api/v1/efolder/me")).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.headers()["cache-control"], "no-store");
    let (status, me) = ncr_tests::json(res).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["username"], username);
    assert_eq!(me["national_id"], SAMPLE.national_id);
    assert_eq!(me["first_name"], SAMPLE.first_name);
    assert_eq!(me["father_name"], SAMPLE.father_name);
    assert_eq!(me["person_type"], "natural");
    assert_eq!(me["mobile"], "0914***8136");
    assert!(me["password_changed_at"].is_string());

    // A citizen token is not an e-folder token, nor the other way round (403: signing in
    // again would not help).
    let citizen = app.login(SAMPLE.national_id, SAMPLE.serial).await;
    assert_eq!(app.get("/api/v1/efolder/me", Some(&citizen)).await.0, 403);
    assert_eq!(app.get("/api/v1/citizen/application", Some(token)).await.0, 403);
    assert_eq!(app.get("/api/v1/efolder/me", None).await.0, 401);
});

db_test!(with_the_sms_provider_down_the_credentials_are_shown_once_and_work, tweak = info_logs, |app| {
    let sms = app.state.sandboxes.sms.clone().expect("sandbox sms");
    sms.set_available(false);
    let (status, body) = register(&app, &form(&SAMPLE)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["credentials_delivery"], "shown");
    let username = body["credentials"]["username"].as_str().unwrap().to_owned();
    let password = body["credentials"]["password"].as_str().unwrap().to_owned();
    // Laid out as the original guide shows it (docs/domain/efolder.md).
    assert_eq!(body["message"], format!("{SUCCESS_SHOWN}\nنام کاربری: {username}\nکلمه عبور: {password}"));
    assert_eq!(efolder_sms_count(&app).await, 0, "shown, so not also sent");
    sms.set_available(true);
    assert_eq!(deliver(&app).await, 0);
    assert!(phone(&app, SAMPLE.mobile.unwrap()).await.is_empty());

    let (status, session) = login(&app, &username, &password).await;
    assert_eq!(status, 201, "{session}");
    assert_eq!(session["must_change_password"], true);
    assert_eq!(
        app.count_sql("SELECT count(*) AS n FROM efolder_accounts WHERE credentials_delivery = 'shown'").await,
        1
    );
});

db_test!(a_double_submit_makes_one_account_and_one_sms, tweak = info_logs, |app| {
    let body = form(&SAMPLE);
    let attempts = (0..6).map(|_| register(&app, &body));
    let results = futures_util::future::join_all(attempts).await;
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    let already = results.iter().filter(|(s, p)| *s == 409 && p["code"] == "efolder_already_registered").count();
    // Attempts in flight hold places in the national code's daily budget of 5 (issue 24),
    // so a sixth submit made while five are being inquired may be refused as over it.
    let limited = results.iter().filter(|(s, p)| *s == 429 && p["code"] == "efolder_registration_limit").count();
    assert_eq!(created, 1, "{results:?}");
    assert!(already + limited == 5 && limited <= 1, "{results:?}");
    assert_eq!(app.count_sql("SELECT count(*) AS n FROM efolder_accounts").await, 1);
    assert_eq!(efolder_sms_count(&app).await, 1);
});

db_test!(wrong_passwords_lock_the_account_for_longer_each_time, tweak = info_logs, |app| {
    let (username, password) = registered_by_sms(&app).await;
    for i in 1..=5 {
        let (status, p) = login(&app, &username, "wrong-password").await;
        assert_eq!((status, p["code"].as_str()), (401, Some("credentials_invalid")), "attempt {i}: {p}");
    }
    // Locked for a minute after the fifth failure — even the right password waits.
    let res = login_response(&app, &username, &password).await;
    assert_eq!(res.headers()["retry-after"], "60");
    let (status, p) = ncr_tests::json(res).await;
    assert_eq!((status, p["code"].as_str()), (429, Some("account_locked")), "{p}");

    // After the minute, one more failure locks for two.
    app.clock.advance(Duration::seconds(61));
    assert_eq!(login(&app, &username, "wrong-again-password").await.0, 401);
    let res = login_response(&app, &username, &password).await;
    assert_eq!((res.status().as_u16(), res.headers()["retry-after"].to_str().unwrap()), (429, "120"));

    // Once it passes, the right password works and the count starts over.
    app.clock.advance(Duration::seconds(121));
    assert_eq!(login(&app, &username, &password).await.0, 201);
    assert_eq!(login(&app, &username, "wrong-password").await.0, 401, "one failure does not lock");
    assert_eq!(login(&app, &username, &password).await.0, 201);
    // An unknown username answers exactly like a wrong password.
    let (status, p) = login(&app, "kpnosuchuser", "whatever-password").await;
    assert_eq!((status, p["code"].as_str()), (401, Some("credentials_invalid")));
});

db_test!(reset_codes_expire_allow_three_guesses_and_one_at_a_time, tweak = info_logs, |app| {
    let (username, _) = registered_by_sms(&app).await;
    let app = &app;
    let mobile = SAMPLE.mobile.unwrap();
    let reset = |mobile: &'static str| {
        let body = json!({"username": username, "mobile": mobile});
        async move { app.post("/api/v1/efolder/password-reset", None, &body).await }
    };
    let codes_sent = || app.count_sql("SELECT count(*) AS n FROM outbox WHERE template = 'efolder_reset_code'");

    // A wrong mobile gets the same answer and no SMS.
    let (status, wrong) = reset("09121112233").await;
    let (status2, right) = reset(mobile).await;
    assert_eq!((status, status2), (202, 202));
    assert_eq!(wrong, right, "the answer does not tell whether the details matched");
    assert_eq!(codes_sent().await, 1);
    // One active code; a new one only after the resend delay.
    assert_eq!(reset(mobile).await.0, 202);
    assert_eq!(codes_sent().await, 1, "no second code within a minute");

    let read_code = || async {
        deliver(app).await;
        let texts = phone(app, mobile).await;
        let text = texts.iter().find(|t| t.contains("کد بازیابی")).expect("a reset SMS").clone();
        text.rsplit(' ').next().unwrap().to_owned()
    };
    let code = read_code().await;
    assert_eq!(code.len(), 6, "{code}");
    let confirm = |code: String, password: &'static str| {
        let body = json!({"username": username, "code": code, "new_password": password});
        async move { app.post("/api/v1/efolder/password-reset/confirm", None, &body).await }
    };
    let wrong_code = if code == "000000" { "111111" } else { "000000" }.to_owned();

    // A weak password does not use up a guess; three wrong guesses void the code.
    let (status, p) = confirm(code.clone(), "short").await;
    assert_eq!((status, p["code"].as_str()), (422, Some("password_too_weak")), "{p}");
    for expected in ["reset_code_invalid", "reset_code_invalid", "reset_code_attempts_exhausted"] {
        let (status, p) = confirm(wrong_code.clone(), "a long passphrase of mine").await;
        assert_eq!((status, p["code"].as_str()), (422, Some(expected)), "{p}");
    }
    let (_, p) = confirm(code.clone(), "a long passphrase of mine").await;
    assert_eq!(p["code"], "reset_code_invalid", "the right code is void after three wrong ones");

    // A new code after the delay; it expires after five minutes.
    app.clock.advance(Duration::seconds(61));
    assert_eq!(reset(mobile).await.0, 202);
    assert_eq!(codes_sent().await, 2);
    let code = read_code().await;
    app.clock.advance(Duration::seconds(301));
    let (_, p) = confirm(code, "a long passphrase of mine").await;
    assert_eq!(p["code"], "reset_code_expired", "{p}");

    // A fresh code works once, in Persian digits too, and ends the first-login state.
    assert_eq!(reset(mobile).await.0, 202);
    let code = read_code().await;
    let persian: String = code.chars().map(|c| char::from_u32(c as u32 - '0' as u32 + '۰' as u32).unwrap()).collect();
    let (status, session) = confirm(persian, "a long passphrase of mine").await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["must_change_password"], false);
    let (status, _) = confirm(code, "another long passphrase").await;
    assert_eq!(status, 422, "a code works once");
    let (status, session) = login(app, &username, "a long passphrase of mine").await;
    assert_eq!(status, 201, "{session}");
    assert_eq!(app.get("/api/v1/efolder/me", session["token"].as_str()).await.0, 200);
});

/// Every text value the database holds, as one string (PostgreSQL), or the database
/// file's bytes (SQLite).
async fn database_contents(app: &TestApp) -> Vec<u8> {
    let url = app.state.config.database_url.clone();
    if let Some(path) = url.strip_prefix("sqlite://") {
        // Checkpoint first, then read the file and its WAL.
        app.count_sql("SELECT count(*) AS n FROM (SELECT 1) x").await;
        let mut bytes = std::fs::read(path).expect("database file");
        bytes.extend(std::fs::read(format!("{path}-wal")).unwrap_or_default());
        return bytes;
    }
    let db = app.state.db.clone();
    tokio::task::spawn_blocking(move || {
        use diesel::prelude::*;
        #[derive(QueryableByName)]
        struct Text {
            #[diesel(sql_type = diesel::sql_types::Text)]
            t: String,
        }
        let mut conn = db.get().expect("conn");
        let tables: Vec<Text> = diesel::sql_query(
            "SELECT table_name::text AS t FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .load(&mut conn)
        .expect("tables");
        let mut all = String::new();
        for table in tables {
            let rows: Vec<Text> = diesel::sql_query(format!("SELECT CAST(x AS TEXT) AS t FROM \"{}\" x", table.t))
                .load(&mut conn)
                .expect("rows");
            for r in rows {
                all.push_str(&r.t);
                all.push('\n');
            }
        }
        all.into_bytes()
    })
    .await
    .expect("join")
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

db_test!(the_clear_password_never_reaches_the_database_or_the_logs, tweak = info_logs, |app| {
    // One password shown (SMS down), one sent by SMS, one chosen at the first change,
    // one set through a reset code.
    let sms = app.state.sandboxes.sms.clone().unwrap();
    sms.set_available(false);
    let (status, shown) = register(&app, &form(&MALE)).await;
    assert_eq!(status, 201, "{shown}");
    let shown_password = shown["credentials"]["password"].as_str().unwrap().to_owned();
    sms.set_available(true);
    let (username, sent_password) = registered_by_sms(&app).await;
    let token = login(&app, &username, &sent_password).await.1["token"].as_str().unwrap().to_owned();
    let chosen = "chosen passphrase 7431";
    let (status, _) = change_password(&app, &token, &sent_password, chosen).await;
    assert_eq!(status, 200);
    let reset = "reset passphrase 5512";
    let mobile = SAMPLE.mobile.unwrap();
    let (status, _) =
        app.post("/api/v1/efolder/password-reset", None, &json!({"username": username, "mobile": mobile})).await;
    assert_eq!(status, 202);
    deliver(&app).await;
    let texts = phone(&app, mobile).await;
    let code = texts.iter().find(|t| t.contains("کد بازیابی")).expect("a reset SMS").rsplit(' ').next().unwrap();
    let (status, session) = app
        .post(
            "/api/v1/efolder/password-reset/confirm",
            None,
            &json!({"username": username, "code": code, "new_password": reset}),
        )
        .await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(login(&app, &username, reset).await.0, 201, "the password set through the code is the one in use");

    // Once sent, the sealed credentials are erased from the outbox too.
    assert_eq!(
        app.count_sql(
            "SELECT count(*) AS n FROM outbox WHERE template = 'efolder_credentials' AND status = 'sent' AND params_enc = ''"
        )
        .await,
        1
    );
    let db = database_contents(&app).await;
    assert!(contains(&db, "$argon2id$"), "the hashes are there, so the scan reads real rows");
    for secret in [&shown_password, &sent_password, chosen, reset] {
        assert!(!contains(&db, secret), "{secret} is in the database in clear");
    }
    let log = std::fs::read(ncr_tests::test_log_path()).expect("this process's log");
    assert!(contains(&log, "e-folder account registered"), "the log holds the registrations");
    for secret in [&shown_password, &sent_password, chosen, reset, &username] {
        assert!(!contains(&log, secret), "{secret} is in the log");
    }
});

// ---------------------------------------------------------------- credentials recovery (issue 19 item 6)

/// The recovery answer's text: the same whether or not the details matched an account.
const RECOVERY_SENT: &str = "در صورت درستی مشخصات، نام کاربری و کلمه عبور تازه به تلفن همراه ثبت شده پیامک می‌شود؛ کلمه عبور را در نخستین ورود تغییر دهید.";

async fn recover(app: &TestApp, national_id: &str, mobile: &str) -> (u16, Value) {
    app.post("/api/v1/efolder/credentials-recovery", None, &json!({"national_id": national_id, "mobile": mobile})).await
}

// Issue 19: "registrations promised an SMS just before the provider went down never get
// their username and password" — they are promised (docs/domain/efolder.md) within 24 hours. When that SMS
// fails for good the account is marked; registering again says to use recovery instead of
// «اطلاعات شما قبلاً در سیستم وارد شده است.» alone; recovery sends fresh credentials that
// must be changed at the first login.
db_test!(credentials_recovery_after_the_credentials_sms_failed_for_good, tweak = info_logs, |app| {
    let mobile = SAMPLE.mobile.unwrap();
    let (status, body) = register(&app, &form(&SAMPLE)).await;
    assert_eq!((status, body["credentials_delivery"].as_str()), (201, Some("sms")), "{body}");
    assert_eq!(body["message"], SUCCESS_SMS, "seed 000: the SMS was promised");
    // The provider goes down just after; the SMS is retried, then given up once the 24
    // promised hours (docs/domain/efolder.md) are over.
    let sms = app.state.sandboxes.sms.clone().unwrap();
    sms.set_available(false);
    deliver(&app).await;
    let (status, again) = register(&app, &form(&SAMPLE)).await;
    assert_eq!((status, again["detail"].as_str()), (409, Some(ALREADY_REGISTERED)), "still under way: {again}");
    app.clock.advance(Duration::hours(25));
    deliver(&app).await;
    assert_eq!(
        app.count_sql(
            "SELECT count(*) AS n FROM outbox WHERE template = 'efolder_credentials' AND status = 'failed_permanent'"
        )
        .await,
        1
    );
    assert_eq!(
        app.count_sql("SELECT count(*) AS n FROM efolder_accounts WHERE credentials_undelivered_at IS NOT NULL").await,
        1,
        "the account is marked in the same transaction"
    );
    sms.set_available(true);
    assert!(phone(&app, mobile).await.is_empty(), "nothing reached the phone");

    // Registering again: still "already registered" (docs/domain/efolder.md), and now where to go.
    let (status, p) = register(&app, &form(&SAMPLE)).await;
    assert_eq!((status, p["code"].as_str()), (409, Some("efolder_credentials_undelivered")), "{p}");
    let detail = p["detail"].as_str().unwrap();
    assert!(detail.starts_with(ALREADY_REGISTERED) && detail.contains("بازیابی نام کاربری و کلمه عبور"), "{detail}");

    // Recovery with a mobile that is not the account's: the same answer, nothing sent.
    let (status, wrong) = recover(&app, SAMPLE.national_id, "09121112233").await;
    assert_eq!((status, wrong["message"].as_str()), (202, Some(RECOVERY_SENT)), "{wrong}");
    deliver(&app).await;
    assert!(phone(&app, mobile).await.is_empty());
    // A national code without an account: the same answer.
    let (status, none) = recover(&app, "0013542419", mobile).await;
    assert_eq!((status, &none), (202, &wrong));

    // The right pair: fresh credentials by SMS (Persian digits typed are fine).
    let (status, right) = recover(&app, "۲۵۸۰۲۰۰۶۰۶", "۰۹۱۴ ۵۱۲ ۸۱۳۶").await;
    assert_eq!((status, &right), (202, &wrong), "the same answer either way");
    assert_eq!(deliver(&app).await, 1);
    let texts = phone(&app, mobile).await;
    assert_eq!(texts.len(), 1, "{texts:?}");
    let (username, password) = (field(&texts[0], "نام کاربری:"), field(&texts[0], "کلمه عبور:"));
    let (status, session) = login(&app, &username, &password).await;
    assert_eq!((status, session["must_change_password"].as_bool()), (201, Some(true)), "{session}");
    let token = session["token"].as_str().unwrap();
    assert_eq!(app.get("/api/v1/efolder/me", Some(token)).await.0, 403, "the change comes first");
    let (status, changed) = change_password(&app, token, &password, "my own passphrase 2026").await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(login(&app, &username, "my own passphrase 2026").await.0, 201);
    // Delivered now: registering again is plain "already registered".
    let (status, p) = register(&app, &form(&SAMPLE)).await;
    assert_eq!((status, p["code"].as_str()), (409, Some("efolder_already_registered")), "{p}");
    assert_eq!(p["detail"], ALREADY_REGISTERED);
});

// A recovery replaces the password and ends every session; a national code may ask three
// times a day (counted whether or not anything matched); bad input is a 422 naming the field.
db_test!(credentials_recovery_is_capped_per_national_code_and_ends_old_sessions, tweak = info_logs, |app| {
    let (username, password) = registered_by_sms(&app).await;
    let (_, session) = login(&app, &username, &password).await;
    let old_token = session["token"].as_str().unwrap().to_owned();
    let mobile = SAMPLE.mobile.unwrap();
    for _ in 0..3 {
        assert_eq!(recover(&app, SAMPLE.national_id, mobile).await.0, 202);
    }
    let res = app
        .http
        .post(app.url("/api/v1/efolder/credentials-recovery"))
        .json(&json!({"national_id": SAMPLE.national_id, "mobile": mobile}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().get("retry-after").is_some());
    let (_, p) = ncr_tests::json(res).await;
    assert_eq!(p["code"], "efolder_recovery_limit");
    // Another national code has its own budget; wrong mobiles count too.
    for _ in 0..3 {
        assert_eq!(recover(&app, MALE.national_id, "09121112233").await.0, 202);
    }
    assert_eq!(recover(&app, MALE.national_id, MALE.mobile.unwrap()).await.0, 429);
    // Tomorrow (Tehran) the budget is new.
    app.clock.advance(Duration::days(1));
    assert_eq!(recover(&app, SAMPLE.national_id, mobile).await.0, 202);

    // Each recovery made a new password: the first one and the old session are void.
    assert_eq!(login(&app, &username, &password).await.0, 401);
    assert_eq!(app.get("/api/v1/efolder/me", Some(&old_token)).await.0, 401);
    deliver(&app).await;
    let texts = phone(&app, mobile).await;
    let newest = texts.iter().find(|t| t.contains("کلمه عبور:")).unwrap();
    assert_eq!(field(newest, "نام کاربری:"), username);
    assert_eq!(login(&app, &username, &field(newest, "کلمه عبور:")).await.0, 201, "the newest password works");

    // Bad input: 422 naming each field, in the problem+json envelope.
    let (status, p) = recover(&app, "1234567890", "0912").await;
    assert_eq!((status, p["code"].as_str()), (422, Some("validation_failed")), "{p}");
    let fields: Vec<&str> = p["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["national_id", "mobile"]);
    let (status, p) =
        app.post("/api/v1/efolder/credentials-recovery", None, &json!({"national_id": SAMPLE.national_id})).await;
    assert_eq!(status, 422, "{p}");
});
