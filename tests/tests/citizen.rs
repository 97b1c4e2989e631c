//! The citizen's first half of the journey (issue: citizen entry and application),
//! black-box over HTTP, on SQLite and PostgreSQL.

use api::seed::population::{DECEASED, LEAP_ESFAND, MALE, MINOR, Persona, SAMPLE, SERIAL_CHANGED};
use chrono::Duration;
use ncr_tests::client::{personal_info, typical_needs};
use ncr_tests::{TestApp, db_test};
use serde_json::json;

/// The computed lunar option for a persona's birth date.
fn hijri(p: &Persona) -> String {
    let d = domain::calendar::JalaliDate::parse(p.birth_date).unwrap();
    domain::calendar::lunar_birth_options(d)[2].to_string()
}

fn info(p: &Persona) -> serde_json::Value {
    let gender = match p.gender {
        domain::person::Gender::Female => "female",
        domain::person::Gender::Male => "male",
    };
    personal_info(p.birth_date, &hijri(p), gender, p.mother_name, p.mobile.unwrap_or("09121234567"))
}

/// Enters and saves the first page; returns the token.
async fn first_page(app: &TestApp, p: &Persona) -> String {
    let token = app.login(p.national_id, p.serial).await;
    let (status, body) = app.put("/api/v1/citizen/application/personal-info", Some(&token), &info(p)).await;
    assert_eq!(status, 201, "{body}");
    token
}

db_test!(the_sample_citizen_walks_the_first_page, |app| {
    // Captcha → entry.
    let (status, entry) = app.enter(SAMPLE.national_id, SAMPLE.serial).await;
    assert_eq!(status, 201, "{entry}");
    assert_eq!(entry["next_step"], "enter_personal_info");
    assert_eq!(entry["identity_confirmed"], true);
    assert!(entry["application"].is_null());
    let token = entry["token"].as_str().unwrap().to_owned();

    // No application yet.
    let (status, body) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("application_not_found")));

    // The five lunar options for 1369-03-19 include 15 ذیقعده 1410 (docs/domain/application.md).
    let (status, options) =
        app.get("/api/v1/citizen/hijri-birth-date-options?birth_date_jalali=1369-03-19", Some(&token)).await;
    assert_eq!(status, 200);
    let list = options["options"].as_array().unwrap();
    assert_eq!(list.len(), 5);
    assert!(list.iter().any(|o| o["label_fa"] == "15 ذیقعده 1410" && o["date"] == "1410-11-15"), "{options}");
    assert_eq!(options["birth_date"], "1990-06-09");

    // Personal info creates the application in draft.
    let (status, view) = app.put("/api/v1/citizen/application/personal-info", Some(&token), &info(&SAMPLE)).await;
    assert_eq!(status, 201, "{view}");
    assert_eq!(view["state"], "draft");
    assert_eq!(view["identity_status"], "verified");
    assert_eq!(view["next_step"], "answer_special_needs");
    assert_eq!(view["personal_info"]["birth_date_hijri_label"], "15 ذیقعده 1410");
    assert_eq!(view["personal_info"]["first_name"], "مریم", "names come from the registry");
    assert_eq!(view["edits_left"], 3);
    let ops: Vec<&str> = view["allowed_operations"].as_array().unwrap().iter().map(|o| o.as_str().unwrap()).collect();
    assert!(
        ops.contains(&"change_mobile") && ops.contains(&"edit_personal_info") && !ops.contains(&"print_receipt"),
        "{ops:?}"
    );

    // Special needs, then family.
    let (status, view) = app.put("/api/v1/citizen/application/special-needs", Some(&token), &typical_needs()).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["next_step"], "choose_appointment");
    let family = json!({
        "father": {"first_name": "علي", "last_name": "احمدی", "national_id": "0499370899"},
        "mother": {"first_name": "شهرزاد", "last_name": "کریمی", "national_id": null},
        "spouses": [],
        "children": [{"first_name": "سارا", "last_name": "احمدی", "national_id": "۰۷۹۰۴۱۹۹۰۴", "birth_date_jalali": "1395-02-10"}]
    });
    let (status, view) = app.put("/api/v1/citizen/application/family", Some(&token), &family).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["family"]["father"]["first_name"], "علی", "Arabic Yeh normalised");
    assert_eq!(view["family"]["children"][0]["national_id"], "0790419904", "canonical ASCII digits");

    // A bad child national code is refused per field.
    let mut bad = family.clone();
    bad["children"][0]["national_id"] = json!("1234567890");
    let (status, problem) = app.put("/api/v1/citizen/application/family", Some(&token), &bad).await;
    assert_eq!(status, 422);
    assert_eq!(problem["errors"][0]["field"], "children[0].national_id");
    assert_eq!(problem["errors"][0]["code"], "national_id_invalid");

    // The mobile can change.
    let (status, view) =
        app.put("/api/v1/citizen/application/mobile", Some(&token), &json!({"mobile": "+98 935 111 2233"})).await;
    assert_eq!(status, 200);
    assert_eq!(view["personal_info"]["mobile"], "09351112233");

    // Coming back: entry routes to the right step and returns the application.
    let (status, again) = app.enter(SAMPLE.national_id, SAMPLE.serial).await;
    assert_eq!(status, 201);
    assert_eq!(again["next_step"], "choose_appointment");
    assert_eq!(again["application"]["state"], "draft");
});

db_test!(format_errors_are_specific_and_listed_per_field, |app| {
    let (id, answer) = app.captcha().await;
    let (status, p) = app
        .post(
            "/api/v1/citizen/sessions",
            None,
            &json!({"national_id": "1234567890", "serial": "12", "captcha_id": id, "captcha_answer": answer}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(p["code"], "validation_failed");
    let fields: Vec<(&str, &str)> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    assert_eq!(fields, [("national_id", "national_id_invalid"), ("serial", "serial_invalid")]);
    assert_eq!(p["errors"][0]["message"], "شماره ملی وارد شده معتبر نیست.");
});

db_test!(unknown_person_and_wrong_serial_answer_identically, |app| {
    let (s1, unknown) = app.enter("0499370899", "123456").await;
    let (s2, wrong) = app.enter(SAMPLE.national_id, "123456").await;
    assert_eq!((s1, s2), (422, 422));
    assert_eq!(unknown["code"], "identity_mismatch");
    for key in ["type", "title", "status", "detail", "code", "errors"] {
        assert_eq!(unknown[key], wrong[key], "{key} differs");
    }
});

db_test!(alive_age_and_serial_change_are_told_after_the_serial_matched, |app| {
    let (status, p) = app.enter(DECEASED.national_id, DECEASED.serial).await;
    assert_eq!((status, p["code"].as_str()), (422, Some("person_not_alive")));
    assert_eq!(
        p["detail"], "شهروند گرامی در حال حاضر شما واجد شرایط ثبت نام کارت هوشمند ملی نمی‌باشید.",
        "seed 004's message"
    );
    let (status, p) = app.enter(DECEASED.national_id, "999999").await;
    assert_eq!((status, p["code"].as_str()), (422, Some("identity_mismatch")));

    let (status, p) = app.enter(MINOR.national_id, MINOR.serial).await;
    assert_eq!((status, p["code"].as_str()), (422, Some("underage")), "a 14-year-old is refused: {p}");

    let (status, p) = app.enter(SERIAL_CHANGED.national_id, SERIAL_CHANGED.serial).await;
    assert_eq!((status, p["code"].as_str()), (429, Some("serial_recently_changed")), "{p}");
    assert!(p["detail"].as_str().unwrap().contains("۴۸ ساعت"));
    // 48 working hours later (Friday 2026-11-27 does not count) it works.
    app.clock.advance(Duration::hours(24 * 4));
    let (status, _) = app.enter(SERIAL_CHANGED.national_id, SERIAL_CHANGED.serial).await;
    assert_eq!(status, 201);

    let (status, _) = app.enter(LEAP_ESFAND.national_id, LEAP_ESFAND.serial).await;
    assert_eq!(status, 201, "born on 30 Esfand 1387: 17 years old");
});

db_test!(captcha_answers_work_once_and_wrong_ones_fail, |app| {
    let (id, answer) = app.captcha().await;
    let body =
        json!({"national_id": SAMPLE.national_id, "serial": SAMPLE.serial, "captcha_id": id, "captcha_answer": answer});
    let (status, _) = app.post("/api/v1/citizen/sessions", None, &body).await;
    assert_eq!(status, 201);
    let (status, p) = app.post("/api/v1/citizen/sessions", None, &body).await;
    assert_eq!((status, p["code"].as_str()), (422, Some("validation_failed")), "a replayed answer fails");
    assert_eq!(p["errors"][0]["code"], "captcha_invalid");

    let (id, answer) = app.captcha().await;
    let wrong = (answer.parse::<u32>().unwrap() + 1).to_string();
    let (status, p) = app
        .post("/api/v1/citizen/sessions", None, &json!({"national_id": SAMPLE.national_id, "serial": SAMPLE.serial, "captcha_id": id, "captcha_answer": wrong}))
        .await;
    assert_eq!((status, p["errors"][0]["code"].as_str()), (422, Some("captcha_invalid")));

    let (id, answer) = app.captcha().await;
    app.clock.advance(Duration::minutes(3));
    let (status, _) = app
        .post("/api/v1/citizen/sessions", None, &json!({"national_id": SAMPLE.national_id, "serial": SAMPLE.serial, "captcha_id": id, "captcha_answer": answer}))
        .await;
    assert_eq!(status, 422, "expired after 2 minutes");

    let (status, c) = app.get("/api/v1/captcha", None).await;
    assert_eq!(status, 200);
    assert!(c["image_svg"].as_str().unwrap().starts_with("<svg"));
});

db_test!(repeated_wrong_serials_lock_entry_for_a_while, |app| {
    for _ in 0..4 {
        let (status, _) = app.enter(MALE.national_id, "111111").await;
        assert_eq!(status, 422);
    }
    let res = {
        let (id, answer) = app.captcha().await;
        app.http
            .post(app.url("/api/v1/citizen/sessions"))
            .json(&json!({"national_id": MALE.national_id, "serial": "111111", "captcha_id": id, "captcha_answer": answer}))
            .send()
            .await
            .unwrap()
    };
    assert_eq!(res.status(), 429);
    assert!(res.headers().get("retry-after").is_some());
    // Locked: even the right serial waits.
    let (status, p) = app.enter(MALE.national_id, MALE.serial).await;
    assert_eq!((status, p["code"].as_str()), (429, Some("entry_locked")));
    app.clock.advance(Duration::minutes(16));
    let (status, _) = app.enter(MALE.national_id, MALE.serial).await;
    assert_eq!(status, 201);
});

db_test!(personal_info_must_match_the_registry, |app| {
    let token = app.login(SAMPLE.national_id, SAMPLE.serial).await;
    let mut wrong = info(&SAMPLE);
    wrong["gender"] = json!("male");
    let (status, p) = app.put("/api/v1/citizen/application/personal-info", Some(&token), &wrong).await;
    assert_eq!((status, p["code"].as_str()), (422, Some("gender_mismatch")));
    let mut wrong = info(&SAMPLE);
    wrong["birth_date_jalali"] = json!("1369-03-20");
    wrong["birth_date_hijri"] = json!("1410-11-16");
    let (status, p) = app.put("/api/v1/citizen/application/personal-info", Some(&token), &wrong).await;
    assert_eq!((status, p["code"].as_str()), (422, Some("birth_date_mismatch")));
    let mut wrong = info(&SAMPLE);
    wrong["birth_date_hijri"] = json!("1410-11-25");
    let (status, p) = app.put("/api/v1/citizen/application/personal-info", Some(&token), &wrong).await;
    assert_eq!((status, p["code"].as_str()), (422, Some("lunar_date_not_offered")));
    let (status, _) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!(status, 404, "nothing was created");
});

db_test!(a_fourth_edit_is_refused, |app| {
    let token = first_page(&app, &SAMPLE).await;
    // Saving the same information again is not an edit.
    let (status, view) = app.put("/api/v1/citizen/application/personal-info", Some(&token), &info(&SAMPLE)).await;
    assert_eq!((status, view["edits_left"].as_u64()), (200, Some(3)));
    for (left, mobile) in [(2, "09351110001"), (1, "09351110002"), (0, "09351110003")] {
        let mut edited = info(&SAMPLE);
        edited["mobile"] = json!(mobile);
        let (status, view) = app.put("/api/v1/citizen/application/personal-info", Some(&token), &edited).await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["edits_left"], left);
    }
    let mut edited = info(&SAMPLE);
    edited["religion"] = json!("other");
    let (status, p) = app.put("/api/v1/citizen/application/personal-info", Some(&token), &edited).await;
    assert_eq!((status, p["code"].as_str()), (409, Some("edit_limit_reached")));
});

db_test!(a_token_reaches_only_its_own_application, |app| {
    let a = first_page(&app, &SAMPLE).await;
    let b = first_page(&app, &MALE).await;
    let (_, view_a) = app.get("/api/v1/citizen/application", Some(&a)).await;
    let (_, view_b) = app.get("/api/v1/citizen/application", Some(&b)).await;
    assert_ne!(view_a["id"], view_b["id"]);
    assert_eq!(view_a["personal_info"]["mother_name"], SAMPLE.mother_name);
    assert_eq!(view_b["personal_info"]["mother_name"], MALE.mother_name);
    // B changing its mobile leaves A untouched.
    let (status, changed_b) =
        app.put("/api/v1/citizen/application/mobile", Some(&b), &json!({"mobile": "09359998877"})).await;
    assert_eq!(status, 200, "{changed_b}");
    assert_eq!(changed_b["id"], view_b["id"], "B's token changed B's application");
    let (_, again_b) = app.get("/api/v1/citizen/application", Some(&b)).await;
    assert_eq!(again_b["personal_info"]["mobile"], "09359998877", "B's change was saved");
    let (_, again_a) = app.get("/api/v1/citizen/application", Some(&a)).await;
    assert_eq!(again_a["personal_info"]["mobile"], SAMPLE.mobile.unwrap());
    assert_eq!(again_a["personal_info"], view_a["personal_info"], "nothing of A changed");
});

db_test!(expired_and_tampered_tokens_get_401, |app| {
    let token = first_page(&app, &SAMPLE).await;
    let mut tampered = token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let (status, p) = app.get("/api/v1/citizen/application", Some(&tampered)).await;
    assert_eq!((status, p["code"].as_str()), (401, Some("token_invalid")));
    let (status, p) = app.get("/api/v1/citizen/application", None).await;
    assert_eq!((status, p["code"].as_str()), (401, Some("token_missing")));
    app.clock.advance(Duration::minutes(31));
    let (status, p) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!((status, p["code"].as_str()), (401, Some("token_expired")));
});

db_test!(an_unreachable_registry_leads_to_pending_then_verified, |app| {
    let registry = app.state.sandboxes.registry.clone().unwrap();
    registry.set_available(false);
    let (status, entry) = app.enter(SAMPLE.national_id, SAMPLE.serial).await;
    assert_eq!(status, 201, "{entry}");
    assert_eq!(entry["identity_confirmed"], false);
    let token = entry["token"].as_str().unwrap().to_owned();
    let (status, view) = app.put("/api/v1/citizen/application/personal-info", Some(&token), &info(&SAMPLE)).await;
    assert_eq!(status, 201, "accepted while the registry is down: {view}");
    assert_eq!(view["identity_status"], "pending");
    assert_eq!(view["next_step"], "wait_for_identity_check");

    // The job retries while the registry is still down, with backoff.
    app.clock.advance(Duration::minutes(2));
    assert_eq!(api::jobs::settle_identities(&app.state).await.unwrap(), 0);
    registry.set_available(true);
    app.clock.advance(Duration::minutes(5));
    assert_eq!(api::jobs::settle_identities(&app.state).await.unwrap(), 1);
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!(view["identity_status"], "verified");
    assert_eq!(view["next_step"], "answer_special_needs");
    // …and the citizen is notified.
    let id = view["id"].as_str().unwrap().to_owned();
    let db = app.state.db.clone();
    let messages = tokio::task::spawn_blocking(move || {
        persistence::outbox::for_application(&mut db.get().unwrap(), &id.as_str().into()).unwrap()
    })
    .await
    .unwrap();
    assert!(messages.iter().any(|m| m.template == "identity_result"), "{messages:?}");
});

db_test!(a_wrong_birth_date_during_an_outage_is_rejected_later, |app| {
    let registry = app.state.sandboxes.registry.clone().unwrap();
    registry.set_available(false);
    let token = app.login(SAMPLE.national_id, SAMPLE.serial).await;
    let mut wrong = info(&SAMPLE);
    wrong["birth_date_jalali"] = json!("1369-03-20");
    wrong["birth_date_hijri"] = json!("1410-11-16");
    let (status, _) = app.put("/api/v1/citizen/application/personal-info", Some(&token), &wrong).await;
    assert_eq!(status, 201);
    registry.set_available(true);
    app.clock.advance(Duration::minutes(2));
    assert_eq!(api::jobs::settle_identities(&app.state).await.unwrap(), 1);
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!(view["identity_status"], "rejected");
    assert_eq!(view["next_step"], "correct_personal_info");
    // Correcting it (an edit) verifies at once now that the registry answers.
    let (status, view) = app.put("/api/v1/citizen/application/personal-info", Some(&token), &info(&SAMPLE)).await;
    assert_eq!(status, 200);
    assert_eq!(view["identity_status"], "verified");
    assert_eq!(view["edits_left"], 2);
});

db_test!(english_messages_on_request, |app| {
    let res = app
        .http
        .get(app.url("/api/v1/citizen/application"))
        .header("Accept-Language", "en-US,en;q=0.9")
        .send()
        .await
        .unwrap();
    let (_, p) = ncr_tests::json(res).await;
    assert_eq!(p["detail"], "Sign in first: a bearer token is required.");
});

db_test!(first_entries_of_one_national_code_at_once_are_one_citizen, |app| {
    // On PostgreSQL a first entry writes the citizen and her session in one statement
    // (ADR 0016, item 6); entries racing it meet on the national code's unique lookup value
    // and take the transaction, which finds her. Every one is in, as the same citizen.
    let answers = futures_util::future::join_all((0..4).map(|_| app.enter(MALE.national_id, MALE.serial))).await;
    let tokens: Vec<String> = answers
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 201, "{body}");
            body["token"].as_str().expect("a token").to_owned()
        })
        .collect();
    let (status, saved) = app.put("/api/v1/citizen/application/personal-info", Some(&tokens[0]), &info(&MALE)).await;
    assert_eq!(status, 201, "{saved}");
    for token in &tokens[1..] {
        let (status, view) = app.get("/api/v1/citizen/application", Some(token)).await;
        assert_eq!((status, view["id"].as_str()), (200, saved["id"].as_str()), "{view}");
    }
});
