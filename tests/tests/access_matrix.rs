//! The access-control matrix (issue 12, SPEC §2 roles and §6): every operation of the
//! OpenAPI document, called as each kind of caller, against the policy table below. An
//! operation missing from the table fails the test, so a new endpoint cannot ship
//! without a decided policy.
//!
//! Callers: anonymous, citizen A (registered, paid, booked at office X), citizen B (a
//! draft), kiosk K1 (which registered an applicant) and kiosk K2, an operator of office X
//! (A's office) and of office Y, the administrator, a production-line client and an
//! e-folder user.

use api::seed::offices::MARAGHEH_OFFICE_ID as OFFICE_X;
use api::seed::population::{MALE, SAMPLE};
use ncr_tests::journey::{Person, eligible_people};
use ncr_tests::{TestApp, db_test};
use serde_json::{Value, json};

/// Another demo office (Tabriz), where operator Y works.
const OFFICE_Y: &str = "041-TBZ-01";
/// A third office the administrator's office operations act on, so they disturb no one.
const OFFICE_SPARE: &str = "021-TEH-01";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Anonymous,
    CitizenA,
    CitizenB,
    KioskK1,
    KioskK2,
    OperatorX,
    OperatorY,
    Admin,
    Production,
    Efolder,
}

use Caller::*;

const CALLERS: [Caller; 10] =
    [Anonymous, CitizenA, CitizenB, KioskK1, KioskK2, OperatorX, OperatorY, Admin, Production, Efolder];

/// What a caller must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Let in: neither 401 nor 403 nor a server error (a business 4xx is fine).
    Allowed,
    /// Let in and the resource is theirs: also not 404.
    Own,
    Unauthenticated,
    Forbidden,
    /// Someone else's resource: indistinguishable from a missing one.
    NotFound,
}

use Expect::*;

/// Who may call what kind of operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    /// No login (public pages, sign-ins, callbacks, health, the contract itself).
    Public,
    /// Citizen tokens only; each acts on their own application (no ids in paths).
    Citizen,
    /// Anyone, or a citizen (who then sees their own choices); another kind of token is
    /// refused rather than silently ignored.
    PublicOrCitizen,
    /// Administrators; operators are staff but 403.
    Admin,
    /// Operators, on applications of their own office (another office's: 404).
    OfficeApplication,
    /// Operators, their own office's list.
    OfficeList,
    /// Machine clients of kind kiosk; production clients lack the scope (403).
    KioskCreate,
    /// The kiosk that made the registration (another kiosk: 404).
    KioskRead,
    /// Production-line clients; kiosks lack the scope (403).
    Production,
    /// E-folder tokens only.
    Efolder,
    /// Any staff token (administrators and operators): logout.
    Staff,
    /// The USSD gateway's shared secret, never a bearer token.
    UssdSecret,
    /// The OAuth token endpoint: client credentials (HTTP Basic or in the form), never a
    /// bearer token; without them 401 `invalid_client` (RFC 6749 §5.2).
    ClientCredentials,
}

fn expect(policy: Policy, caller: Caller) -> Expect {
    match (policy, caller) {
        (Policy::Public, _) => Allowed,
        (Policy::PublicOrCitizen, Anonymous | CitizenA | CitizenB) => Allowed,
        (Policy::Citizen, CitizenA | CitizenB) => Allowed,
        (Policy::Admin, Admin) => Allowed,
        (Policy::Admin, OperatorX | OperatorY) => Forbidden,
        (Policy::OfficeApplication, OperatorX) => Own,
        (Policy::OfficeApplication, OperatorY) => NotFound,
        (Policy::OfficeApplication | Policy::OfficeList, Admin) => Forbidden,
        (Policy::OfficeList, OperatorX | OperatorY) => Allowed,
        (Policy::KioskCreate, KioskK1 | KioskK2) => Allowed,
        (Policy::KioskCreate | Policy::KioskRead, Production) => Forbidden,
        (Policy::KioskRead, KioskK1) => Own,
        (Policy::KioskRead, KioskK2) => NotFound,
        (Policy::Production, Production) => Allowed,
        (Policy::Production, KioskK1 | KioskK2) => Forbidden,
        (Policy::Efolder, Efolder) => Allowed,
        (Policy::Staff, Admin | OperatorX | OperatorY) => Allowed,
        // No token: sign in. A valid token of the wrong kind: signing in again would not help.
        (_, Anonymous) | (Policy::UssdSecret | Policy::ClientCredentials, _) => Unauthenticated,
        _ => Forbidden,
    }
}

/// The policy table: every operation of the contract, by method and path template.
fn policy(method: &str, path: &str) -> Option<Policy> {
    use Policy as P;
    let p = match (method, path) {
        (_, p) if p.starts_with("/api/v1/admin/") => P::Admin,
        (_, p) if p.starts_with("/api/v1/citizen/") && p != "/api/v1/citizen/sessions" => P::Citizen,
        ("POST", "/api/v1/citizen/sessions") => P::Public,
        (_, p) if p.starts_with("/api/v1/office/applications/") => P::OfficeApplication,
        ("GET", "/api/v1/office/appointments") => P::OfficeList,
        ("POST", "/api/v1/kiosk/applications") => P::KioskCreate,
        ("GET", "/api/v1/kiosk/applications/{id}") => P::KioskRead,
        ("POST", "/api/v1/production/applications/{tracking_code}/events") => P::Production,
        ("GET", "/api/v1/efolder/me") | ("PUT", "/api/v1/efolder/password") => P::Efolder,
        ("DELETE", "/api/v1/efolder/sessions/current") => P::Efolder,
        ("DELETE", "/api/v1/staff/sessions/current") => P::Staff,
        (
            "POST",
            "/api/v1/efolder/registrations"
            | "/api/v1/efolder/sessions"
            | "/api/v1/efolder/password-reset"
            | "/api/v1/efolder/password-reset/confirm",
        ) => P::Public,
        ("POST", "/api/v1/ussd") => P::UssdSecret,
        ("POST", "/api/v1/staff/sessions") => P::Public,
        ("POST", "/api/v1/oauth/token") => P::ClientCredentials,
        ("GET", "/api/v1/captcha") => P::Public,
        ("GET", "/api/v1/offices/availability") => P::PublicOrCitizen,
        (
            "GET",
            "/api/v1/public/status"
            | "/api/v1/public/process-info"
            | "/api/v1/public/registration-conditions"
            | "/api/v1/public/receipts/verify",
        ) => P::Public,
        ("POST", "/api/v1/public/tracking-code-recovery") => P::Public,
        ("GET" | "POST", "/api/v1/payments/{gateway}/callback") | ("GET", "/payment/result") => P::Public,
        (_, p) if p.starts_with("/sandbox/bank/") => P::Public,
        ("GET", "/health/live" | "/health/ready" | "/metrics" | "/api/v1/openapi.json" | "/.well-known/jwks.json") => {
            P::Public
        }
        ("GET", "/assets/fonts/{name}") => P::Public,
        _ => return None,
    };
    Some(p)
}

struct World {
    tokens: std::collections::HashMap<&'static str, String>,
    tracking_code_a: String,
    kiosk_registration: String,
    victim_staff: String,
    victim_client: String,
}

impl World {
    fn token(&self, caller: Caller) -> Option<&str> {
        let key = match caller {
            Anonymous => return None,
            CitizenA => "citizen_a",
            CitizenB => "citizen_b",
            KioskK1 => "k1",
            KioskK2 => "k2",
            OperatorX => "operator_x",
            OperatorY => "operator_y",
            Admin => "admin",
            Production => "production",
            Efolder => "efolder",
        };
        self.tokens.get(key).map(String::as_str)
    }

    /// A concrete path for a template: ids that exist, and that belong to A, K1, X.
    fn path(&self, template: &str) -> String {
        let id = if template.starts_with("/api/v1/admin/offices/") {
            OFFICE_SPARE
        } else if template.starts_with("/api/v1/admin/staff/") {
            &self.victim_staff
        } else {
            &self.kiosk_registration
        };
        template
            .replace("{tracking_code}", &self.tracking_code_a)
            .replace("{client_id}", &self.victim_client)
            .replace("{id}", id)
            .replace("{name}", if template.contains("fonts") { "Vazirmatn-Regular.ttf" } else { "expire_holds" })
            .replace("{date}", "2026-12-20")
            .replace("{gateway}", "sandbox")
            .replace("{token}", "not-a-real-token")
    }
}

async fn world(app: &TestApp) -> World {
    let mut tokens = std::collections::HashMap::new();
    let admin = app.admin_token().await;
    let citizen_a = app.register_and_pay(&SAMPLE).await;
    let (_, view) = app.get("/api/v1/citizen/application", Some(&citizen_a)).await;
    let tracking_code_a = view["tracking_code"].as_str().expect("A is registered").to_owned();
    tokens.insert("citizen_b", app.draft(&Person::from(&MALE)).await);
    tokens.insert("citizen_a", citizen_a);
    let k1 = app.machine_token(&admin, "matrix-k1", "kiosk").await;
    tokens.insert("k2", app.machine_token(&admin, "matrix-k2", "kiosk").await);
    tokens.insert("production", app.machine_token(&admin, "matrix-factory", "production").await);
    let victim_client = {
        let (status, body) = app
            .post(
                "/api/v1/admin/kiosk-clients",
                Some(&admin),
                &json!({"client_id": "matrix-victim", "name": "victim", "kind": "kiosk"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        "matrix-victim".to_owned()
    };
    tokens.insert("operator_x", app.create_operator(&admin, "matrix.x", OFFICE_X).await.1);
    tokens.insert("operator_y", app.create_operator(&admin, "matrix.y", OFFICE_Y).await.1);
    let (victim_staff, _) = app.create_operator(&admin, "matrix.victim", OFFICE_Y).await;

    // K1 registers an applicant (the kiosk's own resource).
    let person = eligible_people(app, 1).await.remove(0);
    let date = app.open_date(OFFICE_X, 3).await;
    let res = app
        .http
        .post(app.url("/api/v1/kiosk/applications"))
        .bearer_auth(&k1)
        .header("Idempotency-Key", "matrix-0001")
        .json(&json!({
            "national_id": person.national_id,
            "serial": person.serial,
            "personal_info": person.personal_info(),
            "special_needs": {"can_leave_home": true, "can_climb_stairs": true, "pupils_visible": true, "fingers_intact": true},
            "appointment": {"office_id": OFFICE_X, "date": date, "shift": "morning"},
        }))
        .send()
        .await
        .unwrap();
    let (status, body) = ncr_tests::json(res).await;
    assert_eq!(status, 201, "{body}");
    let kiosk_registration = body["application"]["id"].as_str().expect("registration id").to_owned();
    tokens.insert("k1", k1);

    // An e-folder user past the first change (credentials shown: SMS marked down).
    let sms = app.state.sandboxes.sms.clone().unwrap();
    sms.set_available(false);
    let (status, reg) = app
        .post(
            "/api/v1/efolder/registrations",
            None,
            &json!({"gender": "male", "national_id": MALE.national_id, "first_name": MALE.first_name,
                    "last_name": MALE.last_name, "father_name": MALE.father_name,
                    "mobile": MALE.mobile.unwrap(), "postal_code": "5518743111"}),
        )
        .await;
    sms.set_available(true);
    assert_eq!(status, 201, "{reg}");
    let (user, password) = (reg["credentials"]["username"].clone(), reg["credentials"]["password"].clone());
    let (_, first) = app.post("/api/v1/efolder/sessions", None, &json!({"username": user, "password": password})).await;
    let (status, changed) = app
        .put(
            "/api/v1/efolder/password",
            first["token"].as_str(),
            &json!({"current_password": password, "new_password": "matrix passphrase 1"}),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    tokens.insert("efolder", changed["token"].as_str().unwrap().to_owned());
    tokens.insert("admin", admin);
    World { tokens, tracking_code_a, kiosk_registration, victim_staff, victim_client }
}

/// The operations of the contract: method, path template, request content type.
fn operations() -> Vec<(String, String, Option<String>)> {
    let doc: Value = serde_json::to_value(api::server::openapi()).expect("contract as JSON");
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().unwrap() {
            if !["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                continue;
            }
            let content = op["requestBody"]["content"].as_object().and_then(|c| c.keys().next().cloned());
            out.push((method.to_uppercase(), path.clone(), content));
        }
    }
    out
}

/// A body that passes validation where the policy turns on the resource (so a 404 or
/// 403 is the access decision, not a complaint about the body); `{}` elsewhere.
fn valid_body(template: &str) -> Value {
    if template.ends_with("/completion") {
        json!({"postal_code": "5518743111", "address": "مراغه، خیابان اول", "landline": "04137221234",
               "documents_checked": true, "fingerprints": "captured", "face": "captured",
               "capture_reference": "matrix-capture-1"})
    } else if template.ends_with("/delivery") {
        json!({"fingerprint_match": true})
    } else if template.ends_with("/events") {
        json!({"event_id": "matrix-event-1", "kind": "production_started"})
    } else {
        json!({})
    }
}

/// Every (method, path) gets a decision; none falls through.
#[test]
fn every_operation_of_the_contract_has_a_policy() {
    let missing: Vec<String> = operations()
        .into_iter()
        .filter(|(m, p, _)| policy(m, p).is_none())
        .map(|(m, p, _)| format!("{m} {p}"))
        .collect();
    assert!(missing.is_empty(), "operations without an access policy:\n{}", missing.join("\n"));
    assert!(operations().len() >= 85, "the contract lists its operations");
}

fn with_ussd_secret(c: &mut api::config::Config) {
    c.ussd.secret = Some("matrix-ussd-secret-1".into());
}

db_test!(every_operation_answers_every_caller_as_the_policy_says, tweak = with_ussd_secret, |app| {
    let world = world(&app).await;
    let mut breaches = Vec::new();
    let mut calls = 0;
    for (method, template, content) in operations() {
        if is_logout(&method, &template) {
            continue; // last: it ends the callers' sessions
        }
        let policy = policy(&method, &template).unwrap_or_else(|| panic!("{method} {template} has no policy"));
        let path = world.path(&template);
        // Callers that must be turned away go first, so an allowed call that changes
        // something (a disabled client, a moved appointment) cannot hide a breach.
        let mut callers = CALLERS.to_vec();
        callers.sort_by_key(|c| matches!(expect(policy, *c), Allowed | Own));
        for caller in callers {
            let want = expect(policy, caller);
            let mut req = app.http.request(method.parse().unwrap(), app.url(&path));
            if let Some(token) = world.token(caller) {
                req = req.bearer_auth(token);
            }
            req = match content.as_deref() {
                Some("application/json") => req.json(&valid_body(&template)),
                Some(other) => req.header("Content-Type", other).body(""),
                None => req,
            };
            let status = req.send().await.expect("request").status().as_u16();
            calls += 1;
            let ok = match want {
                Allowed => status != 401 && status != 403 && status < 500,
                Own => status != 401 && status != 403 && status != 404 && status < 500,
                Unauthenticated => status == 401,
                Forbidden => status == 403,
                NotFound => status == 404,
            };
            if !ok {
                breaches.push(format!("{method} {template} as {caller:?}: {status}, policy {policy:?} wants {want:?}"));
            }
        }
    }
    // Unknown fields on every JSON write body are refused (SPEC §6) with a 422 naming the
    // field, asked as a caller the policy lets in, so the answer is about the body.
    let mut lenient = Vec::new();
    for (method, template, content) in operations() {
        if content.as_deref() != Some("application/json") {
            continue;
        }
        let policy = policy(&method, &template).unwrap();
        let Some(caller) = CALLERS.into_iter().find(|c| matches!(expect(policy, *c), Allowed | Own)) else {
            continue;
        };
        let mut body = valid_body(&template);
        body["zz_unknown_field"] = json!(1);
        // In English the problem names what was wrong with the body (for developers).
        let mut req = app
            .http
            .request(method.parse().unwrap(), app.url(&world.path(&template)))
            .header("Accept-Language", "en")
            .header("Idempotency-Key", "matrix-unknown-field")
            .json(&body);
        if let Some(token) = world.token(caller) {
            req = req.bearer_auth(token);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        if status != 422 || !text.contains("\"field\":\"zz_unknown_field\"") {
            lenient.push(format!("{method} {template} as {caller:?}: {status} {text}"));
        }
    }
    assert!(lenient.is_empty(), "write bodies that accept an unknown field:\n{}", lenient.join("\n"));
    // Logouts last, the callers who may not end a session first.
    for (method, template, _) in operations().into_iter().filter(|(m, p, _)| is_logout(m, p)) {
        let policy = policy(&method, &template).unwrap();
        let mut callers = CALLERS.to_vec();
        callers.sort_by_key(|c| matches!(expect(policy, *c), Allowed | Own));
        for caller in callers {
            let mut req = app.http.request(method.parse().unwrap(), app.url(&template));
            if let Some(token) = world.token(caller) {
                req = req.bearer_auth(token);
            }
            let status = req.send().await.expect("request").status().as_u16();
            calls += 1;
            let want = expect(policy, caller);
            let ok = match want {
                Allowed | Own => status == 204,
                Unauthenticated => status == 401,
                Forbidden => status == 403,
                NotFound => status == 404,
            };
            if !ok {
                breaches.push(format!("{method} {template} as {caller:?}: {status}, policy {policy:?} wants {want:?}"));
            }
        }
    }
    assert!(calls >= 850, "{calls} calls");
    assert!(breaches.is_empty(), "{} of {calls} calls broke the policy:\n{}", breaches.len(), breaches.join("\n"));
});

/// `DELETE …/sessions/current`: ends the caller's session, so it runs after everything else.
fn is_logout(method: &str, template: &str) -> bool {
    method == "DELETE" && template.ends_with("/sessions/current")
}
