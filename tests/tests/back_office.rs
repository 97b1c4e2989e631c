//! Back office (issue: staff accounts, office operations, production events,
//! administration, audit log) and partner kiosks, on SQLite and PostgreSQL.

use api::seed::offices::MARAGHEH_OFFICE_ID as MARAGHEH;
use api::seed::population::{MALE, SAMPLE};
use chrono::NaiveDate;
use ncr_tests::journey::Person;
use ncr_tests::{TestApp, db_test};
use serde_json::{Value, json};

/// Creates an operator of an office; returns their token.
async fn operator(app: &TestApp, admin: &str, username: &str, office: &str) -> String {
    app.create_operator(admin, username, office).await.1
}

/// Registers a machine client and returns a token for it.
async fn machine(app: &TestApp, admin: &str, client_id: &str, kind: &str) -> String {
    app.machine_token(admin, client_id, kind).await
}

async fn audit_actions(app: &TestApp, admin: &str, application_id: &str) -> Vec<String> {
    let (status, page) =
        app.get(&format!("/api/v1/admin/audit-log?application_id={application_id}&limit=200"), Some(admin)).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_owned()).collect()
}

db_test!(an_application_walks_from_registered_to_delivered, |app| {
    let admin = app.admin_token().await;
    let op = operator(&app, &admin, "op.maragheh", MARAGHEH).await;
    let production = machine(&app, &admin, "card-factory", "production").await;
    let token = app.register_and_pay(&SAMPLE).await;
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    let tracking = view["tracking_code"].as_str().unwrap().to_owned();
    let id = view["id"].as_str().unwrap().to_owned();
    let date: NaiveDate = view["appointment"]["date"].as_str().unwrap().parse().unwrap();

    // The day's list at the office.
    let (status, list) = app.get(&format!("/api/v1/office/appointments?date={date}"), Some(&op)).await;
    assert_eq!(status, 200, "{list}");
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["tracking_code"] == tracking.as_str() && r["national_id_masked"] == "258****606")
    );

    let check_in = format!("/api/v1/office/applications/{tracking}/check-in");
    let (status, p) = app.post(&check_in, Some(&op), &json!({})).await;
    assert_eq!((status, p["code"].as_str()), (409, Some("appointment_not_today")));
    app.clock.set(domain::calendar::tehran_instant(date, 9, 0));
    let op = app.staff_token("op.maragheh", "operator-password-1").await;
    let admin = app.admin_token().await;
    let production = {
        let res = app
            .http
            .post(app.url("/api/v1/oauth/token"))
            .form(&[("grant_type", "client_credentials"), ("client_id", "card-factory"), ("client_secret", "wrong")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "a wrong secret gets no token");
        let _ = production;
        let (status, rotated) =
            app.post("/api/v1/admin/kiosk-clients/card-factory/rotate", Some(&admin), &json!({})).await;
        assert_eq!(status, 200);
        let secret = rotated["client_secret"].as_str().unwrap().to_owned();
        let res = app
            .http
            .post(app.url("/api/v1/oauth/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "card-factory"),
                ("client_secret", secret.as_str()),
            ])
            .send()
            .await
            .unwrap();
        let (_, body) = ncr_tests::json(res).await;
        body["access_token"].as_str().unwrap().to_owned()
    };
    let (status, v) = app.post(&check_in, Some(&op), &json!({})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["state"], "enrollment_started");

    // The citizen sees it, and the permission table now refuses edits and rescheduling.
    let token = app.login(SAMPLE.national_id, SAMPLE.serial).await;
    let (_, v) = app.get("/api/v1/citizen/application", Some(&token)).await;
    let ops: Vec<&str> = v["allowed_operations"].as_array().unwrap().iter().map(|o| o.as_str().unwrap()).collect();
    assert!(
        !ops.contains(&"edit_personal_info") && !ops.contains(&"change_appointment") && ops.contains(&"change_mobile"),
        "{ops:?}"
    );
    let mut info = Person::from(&SAMPLE).personal_info();
    info["religion"] = json!("other");
    let (status, p) = app.put("/api/v1/citizen/application/personal-info", Some(&token), &info).await;
    assert_eq!((status, p["code"].as_str()), (409, Some("enrollment_started")));

    // Completion.
    let completion = json!({
        "postal_code": "5518743111", "address": "مراغه - خیابان پاسداران - پلاک ۱۲", "landline": "04137221234",
        "documents_checked": true, "fingerprints": "captured", "face": "captured", "capture_reference": "CAP-1",
        "counter_fee": 90000
    });
    let path = format!("/api/v1/office/applications/{tracking}/completion");
    let (status, p) = app.post(&path, Some(&op), &completion).await;
    assert_eq!(
        (status, p["errors"][0]["code"].as_str()),
        (422, Some("fee_not_applicable")),
        "a civil-registry office collects no fee"
    );
    assert_eq!(p["errors"][0]["message"], "این دفتر چنین هزینه‌ای دریافت نمی‌کند.", "{p}");
    let mut completion = completion;
    completion["counter_fee"] = Value::Null;
    let (status, v) = app.post(&path, Some(&op), &completion).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["state"], "enrolled");

    // Production.
    let event = |kind: &str, id: &str| json!({"event_id": id, "kind": kind});
    let events = format!("/api/v1/production/applications/{tracking}/events");
    let (status, p) = app.post(&events, Some(&production), &event("ready_for_delivery", "e0")).await;
    assert_eq!((status, p["code"].as_str()), (409, Some("invalid_transition")), "not in production yet");
    let (status, v) = app.post(&events, Some(&production), &event("production_started", "e1")).await;
    assert_eq!((status, v["state"].as_str()), (201, Some("in_production")), "{v}");
    let (status, _) = app.post(&events, Some(&production), &event("production_started", "e1")).await;
    assert_eq!(status, 200, "the same event again is answered idempotently");
    let (status, p) =
        app.put("/api/v1/citizen/application/delivery-office", Some(&token), &json!({"office_id": "041-TBZ-01"})).await;
    assert_eq!((status, p["code"].as_str()), (409, Some("production_started")), "SPEC §3.7");
    for (kind, id) in [("card_produced", "e2"), ("dispatched", "e3"), ("ready_for_delivery", "e4")] {
        let (status, v) = app.post(&events, Some(&production), &event(kind, id)).await;
        assert_eq!(status, 201, "{kind}: {v}");
    }
    let (_, v) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!((v["state"].as_str(), v["next_step"].as_str()), (Some("ready_for_delivery"), Some("collect_card")));
    assert_eq!(
        app.count_sql(&format!(
            "SELECT COUNT(*) AS n FROM outbox WHERE application_id = '{id}' AND template = 'card_ready'"
        ))
        .await,
        1
    );

    // Delivery with a fingerprint match.
    let delivery = format!("/api/v1/office/applications/{tracking}/delivery");
    let (status, p) = app.post(&delivery, Some(&op), &json!({"fingerprint_match": false})).await;
    assert_eq!((status, p["code"].as_str()), (409, Some("fingerprint_mismatch")));
    assert_eq!(p["detail"], "اثر انگشت با اثر ثبت شده روی کارت مطابقت ندارد؛ کارت تحویل نشد.", "{p}");
    let (status, v) = app.post(&delivery, Some(&op), &json!({"fingerprint_match": true})).await;
    assert_eq!(status, 200, "{v}");
    let (_, v) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!((v["state"].as_str(), v["next_step"].as_str()), (Some("delivered"), Some("done")));

    // Every step is in the audit log.
    let actions = audit_actions(&app, &admin, &id).await;
    for a in [
        "application_created",
        "payment_verified",
        "checked_in",
        "enrollment_completed",
        "production_started",
        "card_produced",
        "dispatched",
        "ready_for_delivery",
        "card_delivered",
        "personal_data_viewed",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} missing from {actions:?}");
    }
});

db_test!(another_office_sees_nothing, |app| {
    let admin = app.admin_token().await;
    let other = operator(&app, &admin, "op.tabriz", "041-TBZ-01").await;
    let token = app.register_and_pay(&SAMPLE).await;
    let (_, view) = app.get("/api/v1/citizen/application", Some(&token)).await;
    let tracking = view["tracking_code"].as_str().unwrap();
    let completion = json!({
        "postal_code": "5518743111", "address": "تبریز", "landline": "04137221234", "documents_checked": true,
        "fingerprints": "captured", "face": "captured", "capture_reference": "CAP-1"
    });
    for (path, body) in [
        ("check-in", json!({})),
        ("no-show", json!({})),
        ("completion", completion),
        ("delivery", json!({"fingerprint_match": true})),
    ] {
        let (status, p) =
            app.post(&format!("/api/v1/office/applications/{tracking}/{path}"), Some(&other), &body).await;
        assert_eq!((status, p["code"].as_str()), (404, Some("application_not_found")), "{path}: {p}");
    }
    let (status, _) = app.get(&format!("/api/v1/office/applications/{tracking}"), Some(&other)).await;
    assert_eq!(status, 404);
});

// Every staff and admin route of the contract, called as each kind of caller.
db_test!(staff_routes_enforce_roles, |app| {
    let admin = app.admin_token().await;
    let op = operator(&app, &admin, "op.maragheh", MARAGHEH).await;
    let citizen = app.login(MALE.national_id, MALE.serial).await;
    let doc = api::server::openapi();
    let param = regex::Regex::new(r"\{[^}]+\}").unwrap();
    let mut checked = 0;
    for (path, item) in &doc.paths.paths {
        let admin_route = path.starts_with("/api/v1/admin/");
        let office_route = path.starts_with("/api/v1/office/");
        if !admin_route && !office_route {
            continue;
        }
        let concrete = path
            .replace("{id}", "x")
            .replace("{tracking_code}", "1234567890")
            .replace("{client_id}", "x")
            .replace("{name}", "x")
            .replace("{date}", "2026-12-01");
        let concrete = param.replace_all(&concrete, "x").into_owned();
        for (method, present) in [
            (reqwest::Method::GET, item.get.is_some()),
            (reqwest::Method::POST, item.post.is_some()),
            (reqwest::Method::PUT, item.put.is_some()),
            (reqwest::Method::DELETE, item.delete.is_some()),
        ] {
            if !present {
                continue;
            }
            let call = |token: Option<String>| {
                let mut r = app
                    .http
                    .request(method.clone(), app.url(&concrete))
                    .header("Content-Type", "application/json")
                    .body("{}");
                if let Some(t) = token {
                    r = r.bearer_auth(t);
                }
                r.send()
            };
            let anon = call(None).await.unwrap().status().as_u16();
            assert_eq!(anon, 401, "{method} {path} anonymous");
            let as_citizen = call(Some(citizen.clone())).await.unwrap().status().as_u16();
            assert_eq!(as_citizen, 403, "{method} {path} with a citizen token (a token of another kind)");
            if admin_route {
                let as_operator = call(Some(op.clone())).await.unwrap().status().as_u16();
                assert_eq!(as_operator, 403, "{method} {path} as operator");
                let as_admin = call(Some(admin.clone())).await.unwrap().status().as_u16();
                assert!(as_admin != 401 && as_admin != 403, "{method} {path} as admin: {as_admin}");
            } else {
                let as_admin = call(Some(admin.clone())).await.unwrap().status().as_u16();
                assert_eq!(as_admin, 403, "{method} {path} as admin (no office)");
                let as_operator = call(Some(op.clone())).await.unwrap().status().as_u16();
                assert!(as_operator != 401 && as_operator != 403, "{method} {path} as operator: {as_operator}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 25, "only {checked} staff operations found");
});

db_test!(disabled_or_reset_staff_tokens_stop_working_and_failures_lock, |app| {
    let admin = app.admin_token().await;
    let (status, created) = app
        .post(
            "/api/v1/admin/staff",
            Some(&admin),
            &json!({"username": "op.one", "role": "operator", "office_id": MARAGHEH}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, p) = app
        .post(
            "/api/v1/admin/staff",
            Some(&admin),
            &json!({"username": "op.one", "role": "operator", "office_id": MARAGHEH}),
        )
        .await;
    assert_eq!(
        (status, p["code"].as_str(), p["detail"].as_str()),
        (409, Some("username_taken"), Some("این نام کاربری قبلا ثبت شده است.")),
        "a taken username is refused with its own message: {p}"
    );
    let password = created["generated_password"].as_str().unwrap().to_owned();
    let id = created["staff"]["id"].as_str().unwrap().to_owned();
    let token = app.staff_token("op.one", &password).await;
    let today = domain::calendar::tehran_date(app.clock_now());
    let list = format!("/api/v1/office/appointments?date={today}");
    assert_eq!(app.get(&list, Some(&token)).await.0, 200);
    assert_eq!(
        app.status_of(reqwest::Method::POST, &format!("/api/v1/admin/staff/{id}/disable"), Some(&admin), &json!({}))
            .await,
        204
    );
    let (status, p) = app.get(&list, Some(&token)).await;
    assert_eq!((status, p["code"].as_str()), (401, Some("token_invalid")), "a disabled account's token stops at once");
    assert_eq!(
        app.status_of(reqwest::Method::POST, &format!("/api/v1/admin/staff/{id}/enable"), Some(&admin), &json!({}))
            .await,
        204
    );
    assert_eq!(app.get(&list, Some(&token)).await.0, 401, "old tokens stay dead");
    let token = app.staff_token("op.one", &password).await;
    let (status, reset) = app.post(&format!("/api/v1/admin/staff/{id}/reset-password"), Some(&admin), &json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(app.get(&list, Some(&token)).await.0, 401, "a reset kills old tokens");
    let new_password = reset["password"].as_str().unwrap();
    app.staff_token("op.one", new_password).await;
    for _ in 0..5 {
        let (status, _) = app
            .post("/api/v1/staff/sessions", None, &json!({"username": "op.one", "password": "wrong-password"}))
            .await;
        assert_eq!(status, 401);
    }
    let (status, p) =
        app.post("/api/v1/staff/sessions", None, &json!({"username": "op.one", "password": new_password})).await;
    assert_eq!((status, p["code"].as_str()), (429, Some("account_locked")));
    let (status, p) =
        app.post("/api/v1/staff/sessions", None, &json!({"username": "nobody", "password": "whatever12"})).await;
    assert_eq!((status, p["code"].as_str()), (401, Some("credentials_invalid")));
});

db_test!(fees_take_effect_from_their_date_only, |app| {
    let admin = app.admin_token().await;
    let tomorrow = domain::calendar::tehran_date(app.clock_now()) + chrono::Duration::days(1);
    let (status, _) = app
        .post(
            "/api/v1/admin/fees",
            Some(&admin),
            &json!({"kind": "card", "amount": 300000, "effective_from": tomorrow}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, p) = app
        .post(
            "/api/v1/admin/fees",
            Some(&admin),
            &json!({"kind": "card", "amount": 300000, "effective_from": tomorrow}),
        )
        .await;
    assert_eq!(
        (status, p["code"].as_str(), p["detail"].as_str()),
        (409, Some("fee_exists_for_date"), Some("برای این نوع هزینه از این تاریخ قبلا تعرفه‌ای ثبت شده است.")),
        "{p}"
    );
    let (status, p) = app
        .post(
            "/api/v1/admin/fees",
            Some(&admin),
            &json!({"kind": "counter_enrollment", "amount": 95000, "effective_from": tomorrow}),
        )
        .await;
    assert_eq!((status, p["code"].as_str()), (422, Some("fee_exceeds_maximum")));
    let (_, fees) = app.get("/api/v1/admin/fees", Some(&admin)).await;
    assert!(fees["current"].as_array().unwrap().iter().any(|f| f["kind"] == "card" && f["amount"] == 200000));
    let token = app.draft(&Person::from(&SAMPLE)).await;
    let date = app.open_date(MARAGHEH, 2).await;
    app.hold(&token, MARAGHEH, date, "morning").await;
    assert_eq!(app.start_payment(&token).await["amount"], 200000, "today's payment keeps today's fee");
    app.clock.advance(chrono::Duration::days(1));
    let admin = app.admin_token().await;
    let token = app.draft(&Person::from(&MALE)).await;
    let date = app.open_date(MARAGHEH, 2).await;
    app.hold(&token, MARAGHEH, date, "morning").await;
    assert_eq!(app.start_payment(&token).await["amount"], 300000);
    let (status, stats) = app.get(&format!("/api/v1/admin/stats?from={date}&to={date}"), Some(&admin)).await;
    assert_eq!(status, 200, "{stats}");
    assert!(stats["utilisation"].as_array().unwrap().iter().any(|u| u["city_code"] == "041"));
});

fn kiosk_body(p: &Person, date: NaiveDate) -> Value {
    json!({
        "national_id": p.national_id,
        "serial": p.serial,
        "personal_info": p.personal_info(),
        "special_needs": {"can_leave_home": true, "can_climb_stairs": true, "pupils_visible": true, "fingers_intact": true},
        "appointment": {"office_id": MARAGHEH, "date": date, "shift": "morning"},
    })
}

async fn kiosk_post(app: &TestApp, token: &str, key: Option<&str>, body: &Value) -> (u16, String, Option<String>) {
    let mut r = app.http.post(app.url("/api/v1/kiosk/applications")).bearer_auth(token).json(body);
    if let Some(k) = key {
        r = r.header("Idempotency-Key", k);
    }
    let res = r.send().await.unwrap();
    let status = res.status().as_u16();
    let replayed = res.headers().get("idempotent-replayed").map(|v| v.to_str().unwrap().to_owned());
    (status, res.text().await.unwrap(), replayed)
}

db_test!(a_kiosk_retry_has_one_effect_and_identical_answers, |app| {
    let admin = app.admin_token().await;
    let k1 = machine(&app, &admin, "kiosk-one", "kiosk").await;
    let k2 = machine(&app, &admin, "kiosk-two", "kiosk").await;
    let date = app.open_date(MARAGHEH, 2).await;
    let (_, before) = app.slot_counts(MARAGHEH, date, "morning").await;
    let body = kiosk_body(&Person::from(&SAMPLE), date);
    let first = kiosk_post(&app, &k1, Some("reg-0001"), &body).await;
    assert_eq!(first.0, 201, "{}", first.1);
    for _ in 0..2 {
        let again = kiosk_post(&app, &k1, Some("reg-0001"), &body).await;
        assert_eq!((again.0, &again.1), (first.0, &first.1), "identical replay");
        assert_eq!(again.2.as_deref(), Some("true"));
    }
    let created: Value = serde_json::from_str(&first.1).unwrap();
    assert_eq!(created["application"]["state"], "payment_pending");
    assert!(created["tracking_code"].is_null(), "issued once the payment succeeds: {created}");
    assert!(created["payment"]["redirect_url"].as_str().unwrap().contains("/sandbox/bank/pay/"));
    assert_eq!(app.count_sql(&format!("SELECT COUNT(*) AS n FROM applications WHERE nid_hash = (SELECT nid_hash FROM applications WHERE id = '{}')", created["application"]["id"].as_str().unwrap())).await, 1);
    assert_eq!(app.slot_counts(MARAGHEH, date, "morning").await.1, before + 1, "one seat, however many retries");
    assert_eq!(app.count_sql("SELECT COUNT(*) AS n FROM payments").await, 1);

    // Same key, different body → 422; no key → 400.
    let mut other = body.clone();
    other["personal_info"]["religion"] = json!("other");
    let (status, text, _) = kiosk_post(&app, &k1, Some("reg-0001"), &other).await;
    assert_eq!(status, 422, "{text}");
    assert!(text.contains("idempotency_key_reused"));
    let (status, text, _) = kiosk_post(&app, &k1, None, &body).await;
    assert_eq!(status, 400);
    assert!(text.contains("idempotency_key_required"));

    // Kiosk B cannot read kiosk A's application; A can.
    let id = created["application"]["id"].as_str().unwrap();
    assert_eq!(app.get(&format!("/api/v1/kiosk/applications/{id}"), Some(&k2)).await.0, 404);
    assert_eq!(app.get(&format!("/api/v1/kiosk/applications/{id}"), Some(&k1)).await.0, 200);
    // The audit log records the kiosk.
    let (_, page) =
        app.get(&format!("/api/v1/admin/audit-log?application_id={id}&actor_kind=kiosk"), Some(&admin)).await;
    assert!(
        page["items"].as_array().unwrap().iter().all(|e| e["actor_id"] == "kiosk-one")
            && !page["items"].as_array().unwrap().is_empty()
    );
});

db_test!(a_request_in_progress_with_the_same_key_is_409, |app| {
    let admin = app.admin_token().await;
    let k1 = machine(&app, &admin, "kiosk-one", "kiosk").await;
    let date = app.open_date(MARAGHEH, 2).await;
    let body = kiosk_body(&Person::from(&MALE), date);
    let fingerprint = serde_json::to_vec(&body).unwrap();
    let hash = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&fingerprint))
    };
    // Another instance is still working on this key.
    let now = app.clock_now().naive_utc();
    let db = app.state.db.clone();
    tokio::task::spawn_blocking(move || {
        let row = persistence::back_office::IdempotencyRow {
            scope: "kiosk:kiosk-one".into(),
            key: "busy-1".into(),
            request_hash: hash,
            status: "in_progress".into(),
            response_status: None,
            response_body: None,
            created_at: now,
            expires_at: now + chrono::Duration::hours(48),
        };
        persistence::back_office::claim_key(&mut db.get().unwrap(), &row, chrono::Duration::seconds(60)).unwrap();
    })
    .await
    .unwrap();
    let res = app
        .http
        .post(app.url("/api/v1/kiosk/applications"))
        .bearer_auth(&k1)
        .header("Idempotency-Key", "busy-1")
        .body(fingerprint)
        .header("Content-Type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    assert_eq!(res.headers()["retry-after"], "2");
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["code"], "idempotency_request_in_progress", "the IETF draft's answer: {problem}");
    // A claim abandoned for over a minute is taken over by the same kiosk's retry of the
    // same key (same scope, same request): the retry does the work once.
    app.clock.advance(chrono::Duration::minutes(2));
    let (status, text, replayed) = kiosk_post(&app, &k1, Some("busy-1"), &body).await;
    assert_eq!(status, 201, "{text}");
    assert_eq!(replayed, None, "the first real answer, not a replay");
    let (status, again, replayed) = kiosk_post(&app, &k1, Some("busy-1"), &body).await;
    assert_eq!((status, replayed.as_deref()), (201, Some("true")), "the finished claim now replays: {again}");
    assert_eq!(again, text, "the replay is the same answer");
    assert_eq!(app.count_sql("SELECT COUNT(*) AS n FROM applications").await, 1, "one effect");
});

db_test!(concurrent_identical_requests_with_one_key_have_one_effect_and_no_500, |app| {
    let admin = app.admin_token().await;
    let k1 = machine(&app, &admin, "kiosk-one", "kiosk").await;
    let date = app.open_date(MARAGHEH, 2).await;
    let (_, before) = app.slot_counts(MARAGHEH, date, "morning").await;
    let body = kiosk_body(&Person::from(&SAMPLE), date);
    // Nine at the same moment (issue 17 saw one or two 500s: a duplicate key on the
    // idempotency table's primary key).
    let answers = futures_util::future::join_all((0..9).map(|_| kiosk_post(&app, &k1, Some("race-1"), &body))).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    assert!(statuses.iter().all(|s| *s == 201 || *s == 409), "{statuses:?}: {answers:?}");
    for (status, text, _) in answers.iter().filter(|a| a.0 == 409) {
        assert!(text.contains("idempotency_request_in_progress"), "{status} {text}");
    }
    let first: Vec<&String> = answers.iter().filter(|a| a.0 == 201).map(|a| &a.1).collect();
    assert!(!first.is_empty(), "{statuses:?}");
    assert!(first.iter().all(|t| *t == first[0]), "every 201 is the same answer");
    // Afterwards the first answer replays.
    let again = kiosk_post(&app, &k1, Some("race-1"), &body).await;
    assert_eq!((again.0, &again.1, again.2.as_deref()), (201, first[0], Some("true")));
    let (_, after) = app.slot_counts(MARAGHEH, date, "morning").await;
    assert_eq!(after, before + 1, "one seat taken: one effect");
});
