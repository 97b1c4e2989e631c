//! Security and reliability (issue: security suite): token attacks, input abuse, fault
//! injection on PostgreSQL, and personal-data hygiene in headers.

use api::seed::offices::MARAGHEH_OFFICE_ID as MARAGHEH;
use api::seed::population::{MALE, SAMPLE};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use ncr_tests::journey::Person;
use ncr_tests::{Backend, TestApp, db_test, spawn_with};
use serde_json::{Value, json};
use sha2::Sha256;

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

/// A token service with the test server's own keys, to forge tokens that are validly
/// signed but wrong in some other way.
fn real_signer() -> api::auth::TokenService {
    let keys = api::secrets::parse(&ncr_tests::test_keys()).unwrap();
    api::auth::TokenService::new("ncr", &keys.signing).unwrap()
}

fn signed_raw(header: &Value, claims: &Value) -> String {
    use ed25519_dalek::Signer;
    let keys = api::secrets::parse(&ncr_tests::test_keys()).unwrap();
    let input = format!("{}.{}", b64(header), b64(claims));
    let sig = keys.signing[0].1.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
}

async fn status_with(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    app.get(path, Some(token)).await
}

db_test!(token_attacks_are_401_and_tokens_of_another_kind_403, |app| {
    let citizen = app.login(SAMPLE.national_id, SAMPLE.serial).await;
    let path = "/api/v1/citizen/hijri-birth-date-options?birth_date_jalali=1369-03-19";
    assert_eq!(status_with(&app, path, &citizen).await.0, 200, "the real token works");
    let now = domain::ports::Clock::now(app.clock.as_ref()).timestamp();
    let sub = {
        let payload = citizen.split('.').nth(1).unwrap();
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        claims["sub"].as_str().unwrap().to_owned()
    };
    let claims = json!({"iss": "ncr", "aud": "citizen", "sub": sub, "iat": now, "nbf": now, "exp": now + 600});
    let mut attacks: Vec<(&str, String)> = Vec::new();
    // alg: none
    attacks.push(("alg none", format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&claims))));
    // HS256 keyed with the published public key.
    let (_, jwks) = app.get("/.well-known/jwks.json", None).await;
    let public = URL_SAFE_NO_PAD.decode(jwks["keys"][0]["x"].as_str().unwrap()).unwrap();
    let input = format!("{}.{}", b64(&json!({"alg": "HS256", "typ": "JWT", "kid": "test-s1"})), b64(&claims));
    let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&public).unwrap();
    mac.update(input.as_bytes());
    attacks.push((
        "HS256 with the public key",
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())),
    ));
    // Unknown kid; known kid with another key.
    let other =
        api::auth::TokenService::new("ncr", &[("rogue".into(), ed25519_dalek::SigningKey::from_bytes(&[9; 32]))])
            .unwrap();
    let c = other.claims(api::auth::Audience::Citizen, &sub, chrono::DateTime::from_timestamp(now, 0).unwrap(), 10);
    attacks.push(("unknown kid", other.issue(&c).unwrap()));
    let impostor =
        api::auth::TokenService::new("ncr", &[("test-s1".into(), ed25519_dalek::SigningKey::from_bytes(&[9; 32]))])
            .unwrap();
    attacks.push(("right kid, wrong key", impostor.issue(&c).unwrap()));
    // Validly signed, but wrong in their claims.
    let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": "test-s1"});
    let mut wrong_aud = claims.clone();
    wrong_aud["aud"] = json!("staff");
    attacks.push(("wrong aud", signed_raw(&header, &wrong_aud)));
    let mut wrong_iss = claims.clone();
    wrong_iss["iss"] = json!("someone-else");
    attacks.push(("wrong iss", signed_raw(&header, &wrong_iss)));
    let mut expired = claims.clone();
    expired["exp"] = json!(now - 3600);
    attacks.push(("expired", signed_raw(&header, &expired)));
    let mut future = claims.clone();
    future["nbf"] = json!(now + 3600);
    future["iat"] = json!(now + 3600);
    future["exp"] = json!(now + 7200);
    attacks.push(("nbf in the future", signed_raw(&header, &future)));
    let mut string_exp = claims.clone();
    string_exp["exp"] = json!((now + 600).to_string());
    attacks.push(("exp as a string", signed_raw(&header, &string_exp)));
    let mut no_exp = claims.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    attacks.push(("no exp", signed_raw(&header, &no_exp)));
    let mut no_sub = claims.clone();
    no_sub.as_object_mut().unwrap().remove("sub");
    attacks.push(("no sub", signed_raw(&header, &no_sub)));
    attacks.push(("garbage", "not.a.token".into()));
    // A token of another kind: staff and machine tokens on a citizen endpoint.
    let admin = app.admin_token().await;
    attacks.push(("staff token on a citizen endpoint", admin.clone()));
    let signer = real_signer();
    let mut machine =
        signer.claims(api::auth::Audience::Machine, "kiosk-x", chrono::DateTime::from_timestamp(now, 0).unwrap(), 10);
    machine.role = Some("kiosk".into());
    attacks.push(("machine token on a citizen endpoint", signer.issue(&machine).unwrap()));
    // A genuine token of another kind is 403 `token_wrong_kind` (signing in again would not
    // help); everything else is 401.
    let other_kind = ["wrong aud", "staff token on a citizen endpoint", "machine token on a citizen endpoint"];
    for (name, token) in attacks {
        let res = app.http.get(app.url(path)).bearer_auth(&token).send().await.unwrap();
        let want = if other_kind.contains(&name) { 403 } else { 401 };
        assert_eq!(res.status(), want, "{name}");
        assert_eq!(res.headers()["content-type"], "application/problem+json", "{name}");
    }
    // A citizen token on staff endpoints.
    let today = domain::calendar::tehran_date(app.clock_now());
    let (status, p) = app.get(&format!("/api/v1/office/appointments?date={today}"), Some(&citizen)).await;
    assert_eq!((status, p["code"].as_str()), (403, Some("token_wrong_kind")));
    let (status, _) = app.get("/api/v1/admin/staff", Some(&citizen)).await;
    assert_eq!(status, 403);
});

db_test!(inputs_that_abuse_the_parser_never_cause_a_500, |app| {
    let token = app.login(SAMPLE.national_id, SAMPLE.serial).await;
    let put = |body: String, ct: &'static str| {
        app.http
            .put(app.url("/api/v1/citizen/application/personal-info"))
            .bearer_auth(&token)
            .header("Content-Type", ct)
            .body(body)
            .send()
    };
    // Oversized body.
    let res = put(format!("{{\"mother_name\": \"{}\"}}", "ا".repeat(80_000)), "application/json").await.unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    // Deeply nested JSON.
    let deep = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
    assert_eq!(put(deep, "application/json").await.unwrap().status(), 400);
    // Wrong content type.
    assert_eq!(put("mother_name=x".into(), "application/x-www-form-urlencoded").await.unwrap().status(), 415);
    assert_eq!(put("{}".into(), "text/plain").await.unwrap().status(), 415);
    // A NUL character, which no text column can hold (PostgreSQL refuses the byte), is an
    // invalid field wherever it is — found by the contract fuzzer as a 500 at staff sign-in.
    let (status, p) =
        app.post("/api/v1/staff/sessions", None, &json!({"username": "ad\u{0}min", "password": "x"})).await;
    assert_eq!(
        (status, p["errors"][0]["field"].as_str(), p["errors"][0]["code"].as_str()),
        (422, Some("username"), Some("invalid")),
        "{p}"
    );
    let mut body = Person::from(&SAMPLE).personal_info();
    body["mother_name"] = json!("مریم\u{0}");
    let (status, p) = app.put("/api/v1/citizen/application/personal-info", Some(&token), &body).await;
    assert_eq!((status, p["errors"][0]["field"].as_str()), (422, Some("mother_name")), "{p}");
    // In a query string too, on every route (the audit log's `action` filter is free text
    // compared in SQL), named as the parameter it is in.
    let admin = app.admin_token().await;
    let (status, p) = app.get("/api/v1/admin/audit-log?action=entry%00x", Some(&admin)).await;
    assert_eq!(
        (status, p["errors"][0]["field"].as_str(), p["errors"][0]["code"].as_str()),
        (422, Some("action"), Some("invalid")),
        "{p}"
    );
    let (status, p) = app.get("/api/v1/public/status?national_id=2580200606&tracking_code=49%0073", None).await;
    assert_eq!(
        (status, p["errors"][0]["field"].as_str(), p["errors"][0]["code"].as_str()),
        (422, Some("tracking_code"), Some("invalid")),
        "{p}"
    );
    // In a path it names nothing; in a machine client's credentials it is a bad request.
    let (status, p) = app.get("/sandbox/bank/pay/a%00b", None).await;
    assert_eq!((status, p["code"].as_str()), (404, Some("not_found")), "{p}");
    let res = app
        .http
        .post(app.url("/api/v1/oauth/token"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&client_id=kiosk%00&client_secret=x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["error"], "invalid_request", "{p}");
    // A bank callback holding one ends on the failure page ("invalid"), not on "received".
    for method in [reqwest::Method::GET, reqwest::Method::POST] {
        let fields = "order_id=1&token=a%00b&status=OK";
        let request = match method {
            reqwest::Method::GET => app.http.get(app.url(&format!("/api/v1/payments/sandbox/callback?{fields}"))),
            _ => app
                .http
                .post(app.url("/api/v1/payments/sandbox/callback"))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(fields),
        };
        let res = request.send().await.unwrap();
        let location = res.headers().get("location").and_then(|l| l.to_str().ok()).unwrap_or_default().to_owned();
        let status = res.status().as_u16();
        assert!(status == 303 && location.contains("outcome=invalid"), "{method}: {status} {location}");
    }
    // Unknown fields are refused.
    let mut body = Person::from(&SAMPLE).personal_info();
    body["is_admin"] = json!(true);
    let (status, p) = app.put("/api/v1/citizen/application/personal-info", Some(&token), &body).await;
    assert_eq!((status, p["errors"][0]["field"].as_str()), (422, Some("is_admin")), "{p}");
    // 10,000-character strings in every field.
    let long = "۱".repeat(10_000);
    for field in ["birth_date_jalali", "birth_date_hijri", "mother_name", "mobile"] {
        let mut body = Person::from(&SAMPLE).personal_info();
        body[field] = json!(long);
        let (status, _) = app.put("/api/v1/citizen/application/personal-info", Some(&token), &body).await;
        assert!(status == 422 || status == 413, "{field}: {status}");
    }
    for (nid, serial) in [(long.as_str(), "883810"), ("2580200606", long.as_str())] {
        let (id, answer) = app.captcha().await;
        let (status, _) = app
            .post(
                "/api/v1/citizen/sessions",
                None,
                &json!({"national_id": nid, "serial": serial, "captcha_id": id, "captcha_answer": answer}),
            )
            .await;
        assert_eq!(status, 422);
    }
    // SQL and HTML metacharacters: refused where a name cannot hold them, stored safely where it can.
    let mut body = Person::from(&SAMPLE).personal_info();
    body["mother_name"] = json!("<script>alert(1)</script>");
    assert_eq!(app.put("/api/v1/citizen/application/personal-info", Some(&token), &body).await.0, 422);
    body["mother_name"] = json!("شهرزاد'; DROP TABLE applications; --");
    assert_eq!(app.put("/api/v1/citizen/application/personal-info", Some(&token), &body).await.0, 422);
    // A name with an apostrophe is a name: read and compared with the registry's (safely)
    // — it is just not this citizen's mother's (only the mother's first name is compared, docs/domain/eligibility.md).
    body["mother_name"] = json!("O'Hara");
    let (status, p) = app.put("/api/v1/citizen/application/personal-info", Some(&token), &body).await;
    assert_eq!((status, p["code"].as_str()), (422, Some("mother_name_mismatch")), "{p}");
    body["mother_name"] = json!(SAMPLE.mother_name);
    let (status, view) = app.put("/api/v1/citizen/application/personal-info", Some(&token), &body).await;
    assert_eq!(status, 201, "{view}");
    // Mixed scripts and Arabic-Indic digits normalise.
    let (status, view) =
        app.put("/api/v1/citizen/application/mobile", Some(&token), &json!({"mobile": "٠٩١٢-٣٤٥ ٦٧٨٩"})).await;
    assert_eq!((status, view["personal_info"]["mobile"].as_str()), (200, Some("09123456789")));
});

db_test!(personal_data_is_never_cached_and_pages_are_locked_down, |app| {
    let token = app.register_and_pay(&SAMPLE).await;
    for path in
        ["/api/v1/citizen/application", "/api/v1/citizen/application/receipt", "/api/v1/citizen/application/payments"]
    {
        let res = app.http.get(app.url(path)).bearer_auth(&token).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["cache-control"], "no-store", "{path}");
        assert_eq!(res.headers()["x-content-type-options"], "nosniff", "{path}");
    }
    let res =
        app.http.get(app.url("/api/v1/citizen/application/receipt.html")).bearer_auth(&token).send().await.unwrap();
    let csp = res.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    let res = app.http.get(app.url("/payment/result?outcome=success")).send().await.unwrap();
    assert!(res.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'nonce-"));
});

/// The database goes away mid-run: answers are 503 problem+json within 5 s, readiness
/// turns 503, nothing is half-written; when it is back the same server recovers, and a
/// retried kiosk POST with the same Idempotency-Key has exactly one effect.
#[actix_web::test]
async fn a_postgres_outage_answers_503_and_recovers() {
    let upstream = "127.0.0.1:5432".to_owned();
    let proxy = std::sync::Arc::new(ncr_tests::pgproxy::PgProxy::start(upstream.clone()).await);
    let port = proxy.port;
    let Some(app) = spawn_with(
        Backend::Postgres,
        Box::new(move |c| {
            c.database_url = c.database_url.replace(&upstream, &format!("127.0.0.1:{port}"));
            c.db.connection_timeout_ms = 2_000;
        }),
    )
    .await
    else {
        return;
    };
    assert!(app.state.config.database_url.contains(&format!(":{port}/")), "the server goes through the proxy");
    let admin = app.admin_token().await;
    let (_, created) = app
        .post(
            "/api/v1/admin/kiosk-clients",
            Some(&admin),
            &json!({"client_id": "kiosk-f", "name": "f", "kind": "kiosk"}),
        )
        .await;
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let res = app
        .http
        .post(app.url("/api/v1/oauth/token"))
        .form(&[("grant_type", "client_credentials"), ("client_id", "kiosk-f"), ("client_secret", secret.as_str())])
        .send()
        .await
        .unwrap();
    let kiosk = ncr_tests::json(res).await.1["access_token"].as_str().unwrap().to_owned();
    let date = app.open_date(MARAGHEH, 2).await;
    let p = Person::from(&MALE);
    let body = json!({
        "national_id": p.national_id, "serial": p.serial, "personal_info": p.personal_info(),
        "special_needs": {"can_leave_home": true, "can_climb_stairs": true, "pupils_visible": true, "fingers_intact": true},
        "appointment": {"office_id": MARAGHEH, "date": date, "shift": "morning"},
    });
    assert_eq!(app.get("/health/ready", None).await.0, 200);

    proxy.cut();
    let started = std::time::Instant::now();
    let res = app.http.get(app.url("/health/ready")).send().await.unwrap();
    assert_eq!(res.status(), 503, "readiness turns 503");
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "readiness answered in {:?}", started.elapsed());
    // A captcha needs no database (it is signed, not stored): it is still issued, promptly.
    let started = std::time::Instant::now();
    let (status, challenge) = app.get("/api/v1/captcha", None).await;
    assert_eq!(status, 200, "{challenge}");
    assert!(challenge["captcha_id"].as_str().is_some_and(|id| !id.is_empty()), "{challenge}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "the captcha answered in {:?}", started.elapsed());
    let started = std::time::Instant::now();
    let res = app
        .http
        .post(app.url("/api/v1/kiosk/applications"))
        .bearer_auth(&kiosk)
        .header("Idempotency-Key", "outage-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "answered in {:?}", started.elapsed());
    let (_, problem) = ncr_tests::json(res).await;
    assert_eq!(problem["code"], "service_unavailable");

    proxy.restore();
    let mut ready = false;
    for _ in 0..50 {
        if app.get("/health/ready", None).await.0 == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(ready, "the same server recovers without a restart");
    for _ in 0..3 {
        let res = app
            .http
            .post(app.url("/api/v1/kiosk/applications"))
            .bearer_auth(&kiosk)
            .header("Idempotency-Key", "outage-1")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    }
    assert_eq!(app.count_sql("SELECT COUNT(*) AS n FROM applications").await, 1, "exactly one effect");
    assert_eq!(app.count_sql("SELECT COUNT(*) AS n FROM payments").await, 1);
}
