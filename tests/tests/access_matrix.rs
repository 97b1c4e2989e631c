//! The access-control matrix (issue 12, docs/architecture.md roles and §6): every operation of the
//! OpenAPI document, called as each kind of caller, against the policy table below.
//!
//! The table lists every operation explicitly — no rule by path prefix — so a new
//! endpoint cannot ship without a decided policy: the first test fails and says what to
//! add. A caller the policy lets in must get the operation's documented success status
//! (its 2xx/3xx in the contract), not merely "not 401/403": [`request`] builds, for each
//! operation, a call that succeeds (with the set-up it needs), and the refused callers
//! send that very call, so their refusal is about who they are.
//!
//! Callers: anonymous, citizens A and B (both registered, paid and booked), kiosk K1 (which
//! registered an applicant) and kiosk K2, an operator of office X (where the office
//! operations' applications are booked) and of office Y, the administrator, a
//! production-line client, an e-folder user and the USSD gateway (its shared secret, no
//! token).

use std::collections::{BTreeSet, HashMap};

use api::seed::offices::MARAGHEH_OFFICE_ID as OFFICE_X;
use api::seed::population::{MALE, SAMPLE};
use chrono::NaiveDate;
use ncr_tests::journey::{Person, eligible_people};
use ncr_tests::{TestApp, db_test};
use serde_json::{Value, json};

/// Another demo office (Tabriz), where operator Y works.
const OFFICE_Y: &str = "041-TBZ-01";
/// A third office the administrator's office operations act on, so they disturb no one.
const OFFICE_SPARE: &str = "021-TEH-01";
const USSD_SECRET: &str = "matrix-ussd-secret-1";
const OPERATOR_PASSWORD: &str = "operator-password-1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    UssdGateway,
}

use Caller::*;

const CALLERS: [Caller; 11] =
    [Anonymous, CitizenA, CitizenB, KioskK1, KioskK2, OperatorX, OperatorY, Admin, Production, Efolder, UssdGateway];

/// What a caller must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Let in: the operation's documented success status.
    Allowed,
    /// Let in, on a resource of their own: the documented success status.
    Own,
    Unauthenticated,
    Forbidden,
    /// Someone else's resource: indistinguishable from a missing one.
    NotFound,
}

use Expect::*;

/// Who may call an operation.
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
    /// Any staff token (administrators and operators): logout.
    Staff,
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
    /// The USSD gateway's shared secret, never a bearer token.
    UssdSecret,
    /// The OAuth token endpoint: client credentials (HTTP Basic or in the form); a bearer
    /// token in `Authorization` is not client authentication (401 `invalid_client`), and
    /// without credentials 401 too (RFC 6749 §5.2, checked apart below).
    ClientCredentials,
}

fn expect(policy: Policy, caller: Caller) -> Expect {
    match (policy, caller) {
        (Policy::Public, _) => Allowed,
        (Policy::ClientCredentials, Anonymous | UssdGateway) => Allowed,
        (Policy::PublicOrCitizen, Anonymous | CitizenA | CitizenB | UssdGateway) => Allowed,
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
        (Policy::UssdSecret, UssdGateway) => Allowed,
        (Policy::Staff, Admin | OperatorX | OperatorY) => Allowed,
        // No token: sign in. A valid token of the wrong kind: signing in again would not help.
        (_, Anonymous | UssdGateway) | (Policy::UssdSecret | Policy::ClientCredentials, _) => Unauthenticated,
        _ => Forbidden,
    }
}

/// The policy table: every operation of the contract, by method and path template.
/// Adding an endpoint? Add its line here (and, if its success needs a body, ids or some
/// set-up, a case in [`request`]).
const OPERATIONS: &[(&str, &str, Policy)] = {
    use Policy::*;
    &[
        ("GET", "/.well-known/jwks.json", Public),
        ("GET", "/api/v1/admin/audit-log", Admin),
        ("GET", "/api/v1/admin/fees", Admin),
        ("POST", "/api/v1/admin/fees", Admin),
        ("GET", "/api/v1/admin/holidays", Admin),
        ("POST", "/api/v1/admin/holidays", Admin),
        ("POST", "/api/v1/admin/jobs/{name}", Admin),
        ("GET", "/api/v1/admin/kiosk-clients", Admin),
        ("POST", "/api/v1/admin/kiosk-clients", Admin),
        ("POST", "/api/v1/admin/legacy-applications", Admin),
        ("POST", "/api/v1/admin/kiosk-clients/{client_id}/disable", Admin),
        ("POST", "/api/v1/admin/kiosk-clients/{client_id}/rotate", Admin),
        ("GET", "/api/v1/admin/offices", Admin),
        ("POST", "/api/v1/admin/offices", Admin),
        ("POST", "/api/v1/admin/offices/import", Admin),
        ("GET", "/api/v1/admin/offices/{id}", Admin),
        ("PUT", "/api/v1/admin/offices/{id}", Admin),
        ("POST", "/api/v1/admin/offices/{id}/activate", Admin),
        ("GET", "/api/v1/admin/offices/{id}/capacity", Admin),
        ("PUT", "/api/v1/admin/offices/{id}/capacity", Admin),
        ("POST", "/api/v1/admin/offices/{id}/capacity-overrides", Admin),
        ("GET", "/api/v1/admin/offices/{id}/closures", Admin),
        ("POST", "/api/v1/admin/offices/{id}/closures", Admin),
        ("DELETE", "/api/v1/admin/offices/{id}/closures/{date}", Admin),
        ("POST", "/api/v1/admin/offices/{id}/deactivate", Admin),
        ("GET", "/api/v1/admin/outbox", Admin),
        ("GET", "/api/v1/admin/payments", Admin),
        ("GET", "/api/v1/admin/refunds", Admin),
        ("POST", "/api/v1/admin/refunds/{id}/settle", Admin),
        ("GET", "/api/v1/admin/sandbox/emails", Admin),
        ("GET", "/api/v1/admin/sandbox/sms", Admin),
        ("GET", "/api/v1/admin/staff", Admin),
        ("POST", "/api/v1/admin/staff", Admin),
        ("POST", "/api/v1/admin/staff/{id}/disable", Admin),
        ("POST", "/api/v1/admin/staff/{id}/enable", Admin),
        ("POST", "/api/v1/admin/staff/{id}/reset-password", Admin),
        ("GET", "/api/v1/admin/stats", Admin),
        ("GET", "/api/v1/captcha", Public),
        ("GET", "/api/v1/citizen/application", Citizen),
        ("PUT", "/api/v1/citizen/application/appointment", Citizen),
        ("GET", "/api/v1/citizen/application/appointment.ics", Citizen),
        ("PUT", "/api/v1/citizen/application/delivery-office", Citizen),
        ("GET", "/api/v1/citizen/application/enrollment-receipt", Citizen),
        ("PUT", "/api/v1/citizen/application/family", Citizen),
        ("PUT", "/api/v1/citizen/application/home-visit", Citizen),
        ("PUT", "/api/v1/citizen/application/mobile", Citizen),
        ("GET", "/api/v1/citizen/application/payments", Citizen),
        ("POST", "/api/v1/citizen/application/payments", Citizen),
        ("PUT", "/api/v1/citizen/application/personal-info", Citizen),
        ("GET", "/api/v1/citizen/application/receipt", Citizen),
        ("POST", "/api/v1/citizen/application/reissue", Citizen),
        ("GET", "/api/v1/citizen/application/receipt.html", Citizen),
        ("GET", "/api/v1/citizen/application/receipt.pdf", Citizen),
        ("POST", "/api/v1/citizen/application/receipt/email", Citizen),
        ("PUT", "/api/v1/citizen/application/special-needs", Citizen),
        ("POST", "/api/v1/citizen/application/withdrawal", Citizen),
        ("GET", "/api/v1/citizen/hijri-birth-date-options", Citizen),
        ("POST", "/api/v1/citizen/sessions", Public),
        ("DELETE", "/api/v1/citizen/sessions/current", Citizen),
        ("POST", "/api/v1/efolder/credentials-recovery", Public),
        ("GET", "/api/v1/efolder/me", Efolder),
        ("PUT", "/api/v1/efolder/password", Efolder),
        ("POST", "/api/v1/efolder/password-reset", Public),
        ("POST", "/api/v1/efolder/password-reset/confirm", Public),
        ("POST", "/api/v1/efolder/registrations", Public),
        ("POST", "/api/v1/efolder/sessions", Public),
        ("DELETE", "/api/v1/efolder/sessions/current", Efolder),
        ("POST", "/api/v1/kiosk/applications", KioskCreate),
        ("GET", "/api/v1/kiosk/applications/{id}", KioskRead),
        ("GET", "/api/v1/kiosk/hijri-birth-date-options", KioskCreate),
        ("POST", "/api/v1/oauth/token", ClientCredentials),
        ("GET", "/api/v1/office/applications", OfficeApplication),
        ("GET", "/api/v1/office/applications/{tracking_code}", OfficeApplication),
        ("POST", "/api/v1/office/applications/{tracking_code}/check-in", OfficeApplication),
        ("POST", "/api/v1/office/applications/{tracking_code}/completion", OfficeApplication),
        ("POST", "/api/v1/office/applications/{tracking_code}/delivery", OfficeApplication),
        ("GET", "/api/v1/office/applications/{tracking_code}/enrollment-receipt", OfficeApplication),
        ("POST", "/api/v1/office/applications/{tracking_code}/no-show", OfficeApplication),
        ("GET", "/api/v1/office/appointments", OfficeList),
        ("GET", "/api/v1/office/home-visits", OfficeList),
        ("POST", "/api/v1/office/home-visits/{tracking_code}/schedule", OfficeApplication),
        ("GET", "/api/v1/offices/availability", PublicOrCitizen),
        ("GET", "/api/v1/openapi.json", Public),
        ("GET", "/api/v1/payments/gateways", Public),
        ("GET", "/api/v1/payments/{gateway}/callback", Public),
        ("POST", "/api/v1/payments/{gateway}/callback", Public),
        ("GET", "/api/v1/production/applications", Production),
        ("POST", "/api/v1/production/applications/{tracking_code}/events", Production),
        ("GET", "/api/v1/public/process-info", Public),
        ("GET", "/api/v1/public/regions", Public),
        ("GET", "/api/v1/public/receipts/verify", Public),
        ("GET", "/api/v1/public/registration-conditions", Public),
        ("GET", "/api/v1/public/status", Public),
        ("POST", "/api/v1/public/tracking-code-recovery", Public),
        ("POST", "/api/v1/staff/sessions", Public),
        ("DELETE", "/api/v1/staff/sessions/current", Staff),
        ("POST", "/api/v1/ussd", UssdSecret),
        ("GET", "/assets/fonts/{name}", Public),
        ("GET", "/health/live", Public),
        ("GET", "/health/ready", Public),
        ("GET", "/metrics", Public),
        ("GET", "/payment/result", Public),
        ("POST", "/sandbox/bank/api/payments", Public),
        ("POST", "/sandbox/bank/api/reverse", Public),
        ("POST", "/sandbox/bank/api/verify", Public),
        ("GET", "/sandbox/bank/pay/{token}", Public),
        ("POST", "/sandbox/bank/pay/{token}", Public),
    ]
};

fn policy(method: &str, path: &str) -> Option<Policy> {
    OPERATIONS.iter().find(|(m, p, _)| *m == method && *p == path).map(|(_, _, policy)| *policy)
}

/// An operation of the contract: method, path template, request content type, and the
/// statuses it documents as success (2xx and 3xx).
struct Operation {
    method: String,
    path: String,
    content: Option<String>,
    success: Vec<u16>,
}

fn operations() -> Vec<Operation> {
    let doc: Value = serde_json::to_value(api::server::openapi()).expect("contract as JSON");
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().unwrap() {
            if !["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                continue;
            }
            let content = op["requestBody"]["content"].as_object().and_then(|c| c.keys().next().cloned());
            let success = op["responses"]
                .as_object()
                .map(|r| r.keys().filter_map(|k| k.parse::<u16>().ok()).filter(|s| (200..400).contains(s)).collect())
                .unwrap_or_default();
            out.push(Operation { method: method.to_uppercase(), path: path.clone(), content, success });
        }
    }
    out
}

/// Every operation of the contract has an explicit line in [`OPERATIONS`], and every line
/// names an operation that exists.
#[test]
fn every_operation_of_the_contract_has_a_policy() {
    let ops = operations();
    let missing: Vec<String> = ops
        .iter()
        .filter(|o| policy(&o.method, &o.path).is_none())
        .map(|o| format!("        (\"{}\", \"{}\", Policy::???),", o.method, o.path))
        .collect();
    assert!(
        missing.is_empty(),
        "{} operations of the contract have no access policy. Add each to OPERATIONS in \
         tests/tests/access_matrix.rs, with the policy that decides who may call it \
         (Public, PublicOrCitizen, Citizen, Admin, Staff, OfficeApplication, OfficeList, KioskCreate, \
         KioskRead, Production, Efolder, UssdSecret, ClientCredentials — or a new one in `expect`):\n{}\n\
         Then, if a caller the policy lets in needs a body, real ids or some set-up for the \
         operation to succeed, add a case for it in `request()` in the same file.",
        missing.len(),
        missing.join("\n")
    );
    let known: BTreeSet<(String, String)> = ops.iter().map(|o| (o.method.clone(), o.path.clone())).collect();
    let stale: Vec<String> = OPERATIONS
        .iter()
        .filter(|(m, p, _)| !known.contains(&((*m).to_owned(), (*p).to_owned())))
        .map(|(m, p, _)| format!("{m} {p}"))
        .collect();
    assert!(stale.is_empty(), "OPERATIONS lists operations the contract no longer has; remove:\n{}", stale.join("\n"));
    for o in &ops {
        assert!(!o.success.is_empty(), "{} {} documents no success status", o.method, o.path);
    }
}

/// A machine client's id and secret.
struct Client {
    id: String,
    secret: String,
}

/// An e-folder account.
#[derive(Clone)]
struct Account {
    username: String,
    password: String,
    mobile: String,
}

/// Someone the e-folder may register: the registry's names and an owned mobile.
#[derive(Clone)]
struct EfolderPerson {
    national_id: String,
    gender: String,
    first_name: String,
    last_name: String,
    father_name: String,
    mobile: String,
}

impl EfolderPerson {
    fn form(&self) -> Value {
        json!({"gender": self.gender, "national_id": self.national_id, "first_name": self.first_name,
               "last_name": self.last_name, "father_name": self.father_name, "mobile": self.mobile,
               "postal_code": "5518743111"})
    }
}

struct World {
    tokens: HashMap<Caller, String>,
    clients: HashMap<&'static str, Client>,
    /// The office operations' day (the clock is on it) and a later open day.
    today: NaiveDate,
    later: NaiveDate,
    /// Citizen A's and B's tracking codes; A's receipt verification query.
    tracking_a: String,
    verify_query: String,
    /// Applications at office X in the state each office operation needs.
    office_tracking: HashMap<&'static str, String>,
    /// The national code of the one checked in (an operator's search finds it).
    office_national_id: String,
    /// Two citizens holding a seat, not yet paid (for starting a payment).
    holders: [String; 2],
    /// Two citizens with a draft (for the special-needs questions).
    drafts: [String; 2],
    /// Two citizens with a draft, to withdraw (A and B keep their applications).
    withdrawers: [String; 2],
    /// A withdrawn fee waiting for an administrator's transfer.
    refund_id: String,
    /// Two enrolled citizens (for the enrollment receipt).
    enrolled: [String; 2],
    /// Two citizens who cannot leave home, with a draft (for the home-visit address).
    home_drafts: [String; 2],
    /// A home visit office X scheduled (office X may move it).
    home_visit: String,
    /// Two citizens whose cards were delivered (for the re-issue).
    delivered: [String; 2],
    kiosk_registration: String,
    victim_staff: String,
    efolder: Account,
    /// Accounts whose passwords the reset confirmation sets, one per call.
    reset_accounts: Vec<Account>,
    /// People the e-folder has not seen, one per registration.
    efolder_people: Vec<EfolderPerson>,
    /// Eligible people nobody has used, one per kiosk registration.
    kiosk_people: Vec<Person>,
    bank_token: String,
    calls: u64,
}

impl World {
    fn token(&self, caller: Caller) -> Option<&str> {
        self.tokens.get(&caller).map(String::as_str)
    }
}

async fn create_client(app: &TestApp, admin: &str, id: &str, kind: &str) -> Client {
    let (status, body) =
        app.post("/api/v1/admin/kiosk-clients", Some(admin), &json!({"client_id": id, "name": id, "kind": kind})).await;
    assert_eq!(status, 201, "{body}");
    Client { id: id.to_owned(), secret: body["client_secret"].as_str().expect("secret").to_owned() }
}

async fn client_token(app: &TestApp, c: &Client) -> String {
    let res = app
        .http
        .post(app.url("/api/v1/oauth/token"))
        .form(&[("grant_type", "client_credentials"), ("client_id", &c.id), ("client_secret", &c.secret)])
        .send()
        .await
        .expect("request");
    let (status, body) = ncr_tests::json(res).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().expect("token").to_owned()
}

/// The texts the sandbox phone received for a number, newest first.
async fn texts_to(app: &TestApp, admin: &str, mobile: &str) -> Vec<String> {
    api::jobs::deliver_outbox(&app.state).await.expect("outbox");
    let (status, page) = app.get(&format!("/api/v1/admin/sandbox/sms?to={mobile}&limit=200"), Some(admin)).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap().to_owned()).collect()
}

/// The value after `label` on its line of an SMS.
fn field(text: &str, label: &str) -> String {
    let line = text.lines().find(|l| l.starts_with(label)).unwrap_or_else(|| panic!("no {label} in {text}"));
    line[label.len()..].trim().to_owned()
}

/// Registers an e-folder account (credentials by SMS) and makes the forced first change.
async fn efolder_account(app: &TestApp, admin: &str, p: &EfolderPerson, password: &str) -> Account {
    let (status, reg) = app.post("/api/v1/efolder/registrations", None, &p.form()).await;
    assert_eq!(status, 201, "{reg}");
    let text = texts_to(app, admin, &p.mobile)
        .await
        .into_iter()
        .find(|t| t.contains("نام کاربری"))
        .expect("the credentials SMS");
    let (username, first) = (field(&text, "نام کاربری:"), field(&text, "کلمه عبور:"));
    let (_, session) =
        app.post("/api/v1/efolder/sessions", None, &json!({"username": username, "password": first})).await;
    let (status, changed) = app
        .put(
            "/api/v1/efolder/password",
            session["token"].as_str(),
            &json!({"current_password": first, "new_password": password}),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    Account { username, password: password.to_owned(), mobile: p.mobile.clone() }
}

/// People of the registry the e-folder accepts (alive, owning their mobile), from the end
/// of the registry so they do not meet [`eligible_people`].
async fn efolder_people(app: &TestApp, n: usize) -> Vec<EfolderPerson> {
    let db = app.state.db.clone();
    tokio::task::spawn_blocking(move || {
        use diesel::prelude::*;
        use persistence::schema::registry_people::dsl as r;
        use persistence::schema::sandbox_mobile_owners::dsl as o;
        let mut conn = db.get().expect("conn");
        let rows: Vec<persistence::registry::PersonRow> = r::registry_people
            .filter(r::alive.eq(true))
            .filter(r::mobile.is_not_null())
            .order(r::national_id.desc())
            .limit((n * 3) as i64)
            .select(persistence::registry::PersonRow::as_select())
            .load(&mut conn)
            .expect("people");
        let personas: Vec<&str> = api::seed::population::PERSONAS.iter().map(|p| p.national_id).collect();
        rows.into_iter()
            .filter(|p| !personas.contains(&p.national_id.as_str()))
            .filter(|p| {
                let m = p.mobile.clone().expect("mobile");
                o::sandbox_mobile_owners
                    .filter(o::mobile.eq(m))
                    .filter(o::national_id.eq(&p.national_id))
                    .count()
                    .get_result::<i64>(&mut conn)
                    .expect("owner")
                    == 1
            })
            .take(n)
            .map(|p| EfolderPerson {
                national_id: p.national_id,
                gender: p.gender,
                first_name: p.first_name,
                last_name: p.last_name,
                father_name: p.father_name,
                mobile: p.mobile.expect("mobile"),
            })
            .collect()
    })
    .await
    .expect("join")
}

/// A persona or person through the whole journey to a booked, paid seat at `office` on
/// `date` (morning); returns the token.
async fn book_and_pay(app: &TestApp, p: &Person, office: &str, date: NaiveDate) -> String {
    let (token, location) = app.hold_and_pay(p, office, date, "success").await;
    assert!(location.contains("outcome=success"), "{location}");
    token
}

async fn tracking_code(app: &TestApp, token: &str) -> String {
    let (status, view) = app.get("/api/v1/citizen/application", Some(token)).await;
    assert_eq!(status, 200, "{view}");
    view["tracking_code"].as_str().expect("registered").to_owned()
}

async fn ok(app: &TestApp, token: &str, path: &str, body: Value, want: u16) {
    let (status, answer) = app.post(path, Some(token), &body).await;
    assert_eq!(status, want, "{path}: {answer}");
}

fn completion_body() -> Value {
    json!({"postal_code": "5518743111", "address": "مراغه، خیابان اول", "landline": "04137221234",
           "documents_checked": true, "fingerprints": "captured", "face": "captured",
           "capture_reference": "matrix-capture-1"})
}

async fn world(app: &TestApp) -> World {
    let admin = app.admin_token().await;
    let mut clients = HashMap::new();
    for (key, id, kind) in [
        ("k1", "matrix-k1", "kiosk"),
        ("k2", "matrix-k2", "kiosk"),
        ("production", "matrix-factory", "production"),
        ("oauth", "matrix-oauth", "kiosk"),
        ("disable", "matrix-victim", "kiosk"),
        ("rotate", "matrix-rotate", "kiosk"),
    ] {
        clients.insert(key, create_client(app, &admin, id, kind).await);
    }
    app.create_operator(&admin, "matrix.x", OFFICE_X).await;
    app.create_operator(&admin, "matrix.y", OFFICE_Y).await;
    let (victim_staff, _) = app.create_operator(&admin, "matrix.victim", OFFICE_Y).await;

    // The office operations' day, and a later day for everyone else's seats.
    let today = app.open_date(OFFICE_X, 3).await;
    let later = app.open_date(OFFICE_X, (today - domain::calendar::tehran_date(app.clock_now())).num_days() + 7).await;
    for date in [today, later] {
        app.set_slot(OFFICE_X, date, "morning", 200).await;
    }

    let people = eligible_people(app, 22).await;
    let (office_people, rest) = people.split_at(5);
    let (delivered_people, rest) = rest.split_at(2);
    let (holder_people, rest) = rest.split_at(2);
    let (draft_people, rest) = rest.split_at(2);
    let (withdrawer_people, rest) = rest.split_at(2);
    let (refund_person, rest) = rest.split_at(1);
    let (home_people, kiosk_people) = rest.split_at(3);
    // Offices X and Y (one city) make home visits.
    let flagged =
        app.exec_sql(&format!("UPDATE offices SET home_visits = TRUE WHERE id IN ('{OFFICE_X}', '{OFFICE_Y}')")).await;
    assert_eq!(flagged, 2);
    let citizen_a = book_and_pay(app, &Person::from(&SAMPLE), OFFICE_X, later).await;
    book_and_pay(app, &Person::from(&MALE), OFFICE_X, later).await;
    let tracking_a = tracking_code(app, &citizen_a).await;
    // A citizen who paid and withdraws on a later day: a refund for the administrator.
    book_and_pay(app, &refund_person[0], OFFICE_X, later).await;
    let (status, receipt) = app.get("/api/v1/citizen/application/receipt", Some(&citizen_a)).await;
    assert_eq!(status, 200, "{receipt}");
    let verify_query = receipt["verify_url"].as_str().expect("verify_url").split_once('?').expect("query").1.to_owned();
    let mut office_tracking = HashMap::new();
    let mut delivered_tracking = Vec::new();
    for p in delivered_people {
        let token = book_and_pay(app, p, OFFICE_X, today).await;
        delivered_tracking.push(tracking_code(app, &token).await);
    }
    for (key, p) in ["check-in", "completion", "delivery", "no-show", "production"].into_iter().zip(office_people) {
        let token = book_and_pay(app, p, OFFICE_X, today).await;
        office_tracking.insert(key, tracking_code(app, &token).await);
    }

    // K1 registers an applicant (the kiosk's own resource).
    let k1 = client_token(app, &clients["k1"]).await;
    let person = &kiosk_people[0];
    let res = app
        .http
        .post(app.url("/api/v1/kiosk/applications"))
        .bearer_auth(&k1)
        .header("Idempotency-Key", "matrix-0001")
        .json(&kiosk_body(person, later))
        .send()
        .await
        .unwrap();
    let (status, body) = ncr_tests::json(res).await;
    assert_eq!(status, 201, "{body}");
    let kiosk_registration = body["application"]["id"].as_str().expect("registration id").to_owned();

    // E-folder accounts: the e-folder caller's, and one per reset confirmation.
    let mut candidates = efolder_people(app, 3 + CALLERS.len() * 2).await;
    assert_eq!(candidates.len(), 3 + CALLERS.len() * 2, "enough e-folder people");
    let efolder = efolder_account(app, &admin, &candidates.pop().unwrap(), "matrix passphrase 1").await;
    let mut reset_accounts = Vec::new();
    // One per call, and one more to show refused and malformed calls.
    for _ in 0..=CALLERS.len() {
        reset_accounts.push(efolder_account(app, &admin, &candidates.pop().unwrap(), "matrix passphrase 1").await);
    }

    // The day of the office operations comes; every session is opened afresh.
    app.clock.set(domain::calendar::tehran_instant(today, 9, 0));
    let admin = app.admin_token().await;
    let mut tokens = HashMap::new();
    tokens.insert(Admin, admin.clone());
    tokens.insert(OperatorX, app.staff_token("matrix.x", OPERATOR_PASSWORD).await);
    tokens.insert(OperatorY, app.staff_token("matrix.y", OPERATOR_PASSWORD).await);
    tokens.insert(KioskK1, client_token(app, &clients["k1"]).await);
    tokens.insert(KioskK2, client_token(app, &clients["k2"]).await);
    tokens.insert(Production, client_token(app, &clients["production"]).await);
    tokens.insert(CitizenA, app.login(SAMPLE.national_id, SAMPLE.serial).await);
    tokens.insert(CitizenB, app.login(MALE.national_id, MALE.serial).await);
    let (status, session) = app
        .post("/api/v1/efolder/sessions", None, &json!({"username": efolder.username, "password": efolder.password}))
        .await;
    assert_eq!(status, 201, "{session}");
    tokens.insert(Efolder, session["token"].as_str().unwrap().to_owned());

    // Each office operation's application in the state it needs.
    let (op, factory) = (tokens[&OperatorX].clone(), tokens[&Production].clone());
    for key in ["completion", "delivery", "production"] {
        let tc = &office_tracking[key];
        ok(app, &op, &format!("/api/v1/office/applications/{tc}/check-in"), json!({}), 200).await;
    }
    for key in ["delivery", "production"] {
        let tc = &office_tracking[key];
        ok(app, &op, &format!("/api/v1/office/applications/{tc}/completion"), completion_body(), 200).await;
    }
    let events = format!("/api/v1/production/applications/{}/events", office_tracking["delivery"]);
    for (i, kind) in ["production_started", "card_produced", "dispatched", "ready_for_delivery"].into_iter().enumerate()
    {
        ok(app, &factory, &events, json!({"event_id": format!("matrix-ready-{i}"), "kind": kind}), 201).await;
    }

    // Two citizens whose cards were delivered.
    let mut delivered = Vec::new();
    for (tc, p) in delivered_tracking.iter().zip(delivered_people) {
        ok(app, &op, &format!("/api/v1/office/applications/{tc}/check-in"), json!({}), 200).await;
        ok(app, &op, &format!("/api/v1/office/applications/{tc}/completion"), completion_body(), 200).await;
        let events = format!("/api/v1/production/applications/{tc}/events");
        for (i, kind) in ["production_started", "ready_for_delivery"].into_iter().enumerate() {
            ok(app, &factory, &events, json!({"event_id": format!("matrix-{tc}-{i}"), "kind": kind}), 201).await;
        }
        ok(app, &op, &format!("/api/v1/office/applications/{tc}/delivery"), json!({"fingerprint_match": true}), 200)
            .await;
        delivered.push(app.login(&p.national_id, &p.serial).await);
    }

    // Two enrolled citizens (the office operations' "delivery" and "production" people).
    let mut enrolled = Vec::new();
    for p in [&office_people[2], &office_people[4]] {
        enrolled.push(app.login(&p.national_id, &p.serial).await);
    }

    // Two home-visit drafts, and a home visit paid and scheduled by office X.
    let mut home_drafts = Vec::new();
    for p in &home_people[..2] {
        home_drafts.push(home_visit_draft(app, p).await);
    }
    let home = home_visit_draft(app, &home_people[2]).await;
    let (status, body) = app
        .put(
            "/api/v1/citizen/application/home-visit",
            Some(&home),
            &json!({"address": "مراغه، خیابان دوم، پلاک ۳", "postal_code": "5518743111", "landline": "04137221234"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let payment = app.start_payment(&home).await;
    let (action, fields) = app.bank_choose(payment["redirect_url"].as_str().unwrap(), "success").await;
    app.post_callback(&action, &fields).await;
    let home_visit = tracking_code(app, &home).await;
    ok(
        app,
        &tokens[&OperatorX],
        &format!("/api/v1/office/home-visits/{home_visit}/schedule"),
        json!({"date": later, "shift": "morning"}),
        200,
    )
    .await;

    // Two citizens holding a seat (not paid).
    let mut holders = Vec::new();
    for p in holder_people {
        let token = app.draft(p).await;
        let (status, body) = app.hold(&token, OFFICE_X, later, "morning").await;
        assert_eq!(status, 200, "{body}");
        holders.push(token);
    }

    // Two citizens with a draft.
    let mut drafts = Vec::new();
    for p in draft_people {
        drafts.push(app.draft(p).await);
    }
    let mut withdrawers = Vec::new();
    for p in withdrawer_people {
        withdrawers.push(app.draft(p).await);
    }
    // The paid citizen withdraws after the day of the payment: a transfer to make.
    let token = app.login(&refund_person[0].national_id, &refund_person[0].serial).await;
    let (status, out) = app
        .post(
            "/api/v1/citizen/application/withdrawal",
            Some(&token),
            &json!({"reason": "matrix", "iban": "IR062960000000100324200001"}),
        )
        .await;
    assert_eq!((status, out["refund"]["status"].as_str()), (200, Some("requested")), "{out}");
    let refund_id = out["refund"]["refund_id"].as_str().unwrap().to_owned();

    // A payment the sandbox bank knows.
    let (status, bank) = app.post("/sandbox/bank/api/payments", None, &sandbox_payment(app)).await;
    assert_eq!(status, 201, "{bank}");

    World {
        tokens,
        clients,
        today,
        later,
        tracking_a,
        verify_query,
        office_tracking,
        office_national_id: office_people[0].national_id.clone(),
        holders: holders.try_into().expect("two holders"),
        drafts: drafts.try_into().expect("two drafts"),
        withdrawers: withdrawers.try_into().expect("two withdrawers"),
        refund_id,
        enrolled: enrolled.try_into().expect("two enrolled"),
        home_drafts: home_drafts.try_into().expect("two home drafts"),
        home_visit,
        delivered: delivered.try_into().expect("two delivered"),
        kiosk_registration,
        victim_staff,
        efolder,
        reset_accounts,
        efolder_people: candidates,
        kiosk_people: kiosk_people[1..].to_vec(),
        bank_token: bank["token"].as_str().unwrap().to_owned(),
        calls: 0,
    }
}

/// Entry, personal information and "cannot leave home" (docs/domain/application.md first question); the token.
async fn home_visit_draft(app: &TestApp, p: &Person) -> String {
    let token = app.login(&p.national_id, &p.serial).await;
    let (status, body) = app.put("/api/v1/citizen/application/personal-info", Some(&token), &p.personal_info()).await;
    assert_eq!(status, 201, "{body}");
    let needs =
        json!({"can_leave_home": false, "can_climb_stairs": true, "pupils_visible": true, "fingers_intact": true});
    let (status, body) = app.put("/api/v1/citizen/application/special-needs", Some(&token), &needs).await;
    assert_eq!(status, 200, "{body}");
    token
}

fn kiosk_body(p: &Person, date: NaiveDate) -> Value {
    json!({
        "national_id": p.national_id,
        "serial": p.serial,
        "personal_info": p.personal_info(),
        "special_needs": {"can_leave_home": true, "can_climb_stairs": true, "pupils_visible": true, "fingers_intact": true},
        "appointment": {"office_id": OFFICE_X, "date": date, "shift": "morning"},
    })
}

fn sandbox_payment(app: &TestApp) -> Value {
    json!({"order_id": 990001, "amount": 10000, "callback_url": app.url("/api/v1/payments/sandbox/callback"),
           "merchant": "matrix"})
}

/// What a request carries.
enum Body {
    None,
    Json(Value),
    Form(Vec<(String, String)>),
    Text(&'static str, String),
}

/// A concrete call of an operation.
struct Call {
    path: String,
    body: Body,
    headers: Vec<(&'static str, String)>,
}

impl Call {
    fn to(path: impl Into<String>) -> Self {
        Self { path: path.into(), body: Body::None, headers: Vec::new() }
    }
    fn json(mut self, body: Value) -> Self {
        self.body = Body::Json(body);
        self
    }
    fn form(mut self, fields: &[(&str, &str)]) -> Self {
        self.body = Body::Form(fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect());
        self
    }
}

/// A call of `method template` that succeeds for a caller the policy lets in. `fresh`:
/// the call will be let in, so take fresh data (a new person, a new reset code); a refused
/// caller sends the same kind of call without using any up.
async fn request(app: &TestApp, world: &mut World, method: &str, template: &str, fresh: bool) -> Call {
    world.calls += 1;
    let n = world.calls;
    let admin = world.tokens[&Admin].clone();
    let offices = |rest: &str| format!("/api/v1/admin/offices/{OFFICE_SPARE}{rest}");
    let spare_day = world.later + chrono::Duration::days(1);
    match (method, template) {
        // ---------------------------------------------------------------- administration
        ("GET", "/api/v1/admin/audit-log") => Call::to("/api/v1/admin/audit-log?limit=5"),
        ("GET", "/api/v1/admin/stats") => Call::to(format!("{template}?from={}&to={}", world.today, world.later)),
        ("POST", "/api/v1/admin/fees") => Call::to(template).json(json!({"kind": "card", "amount": 250000 + n, "effective_from": world.later})),
        ("GET", "/api/v1/admin/holidays") => Call::to(format!("/api/v1/admin/holidays?from={}&to={}", world.today, world.later)),
        ("POST", "/api/v1/admin/holidays") => Call::to(template).json(json!({"date": spare_day + chrono::Duration::days(30), "name": "تعطیل ماتریس"})),
        ("POST", "/api/v1/admin/jobs/{name}") => Call::to("/api/v1/admin/jobs/release_expired_holds"),
        ("POST", "/api/v1/admin/refunds/{id}/settle") => Call::to(format!("/api/v1/admin/refunds/{}/settle", world.refund_id))
            .json(json!({"bank_reference": format!("matrix-{n}")})),
        ("POST", "/api/v1/admin/kiosk-clients") => {
            Call::to(template).json(json!({"client_id": format!("matrix-new-{n}"), "name": "new", "kind": "kiosk"}))
        }
        ("POST", "/api/v1/admin/kiosk-clients/{client_id}/disable") => {
            Call::to(format!("/api/v1/admin/kiosk-clients/{}/disable", world.clients["disable"].id))
        }
        ("POST", "/api/v1/admin/kiosk-clients/{client_id}/rotate") => {
            Call::to(format!("/api/v1/admin/kiosk-clients/{}/rotate", world.clients["rotate"].id))
        }
        ("POST", "/api/v1/admin/offices") => Call::to(template).json(office_body(&format!("021-MTX-{:02}", n % 100), "021")),
        ("POST", "/api/v1/admin/offices/import") => {
            let csv = format!(
                "code,name,kind,province,city,city_code,phone,address,step_free_access,eye_exception_capture,fingerprint_exception_capture,home_visits,morning_capacity,afternoon_capacity\n\
                 021-CSV-{:02},دفتر پیشخوان ماتریس,government_counter,تهران,تهران,021,22711234,تهران - خیابان اول,true,false,false,false,10,10\n",
                n % 100
            );
            Call { path: template.into(), body: Body::Text("text/csv", csv), headers: Vec::new() }
        }
        ("POST", "/api/v1/admin/legacy-applications") => {
            // An unpaid application of the old Portal; the same file again is "unchanged".
            let csv = format!(
                "legacy_id,national_id,serial,birth_date_jalali,gender,religion,mother_name,mobile,state,tracking_code\n\
                 matrix-{n},{},123456,1370-01-01,female,islam,زهرا,0912{:07},draft,\n",
                national_code(950_000_000 + n),
                n
            );
            Call { path: template.into(), body: Body::Text("text/csv", csv), headers: Vec::new() }
        }
        ("PUT", "/api/v1/admin/offices/{id}") => {
            let (_, current) = app.get(&offices(""), Some(&admin)).await;
            let mut body = office_body(OFFICE_SPARE, "021");
            for key in ["name", "kind", "province", "city", "city_code", "phone", "address", "step_free_access"] {
                if !current[key].is_null() {
                    body[key] = current[key].clone();
                }
            }
            Call::to(offices("")).json(body)
        }
        ("PUT", "/api/v1/admin/offices/{id}/capacity") => Call::to(offices("/capacity")).json(json!({"rules": [
            {"weekday": "saturday", "shift": "morning", "capacity": 20}, {"weekday": "sunday", "shift": "morning", "capacity": 20}]})),
        ("POST", "/api/v1/admin/offices/{id}/capacity-overrides") => {
            Call::to(offices("/capacity-overrides")).json(json!({"date": spare_day, "shift": "morning", "capacity": 3}))
        }
        ("POST", "/api/v1/admin/offices/{id}/closures") => {
            Call::to(offices("/closures")).json(json!({"date": spare_day, "reason": "تعمیرات"}))
        }
        ("DELETE", "/api/v1/admin/offices/{id}/closures/{date}") => Call::to(offices(&format!("/closures/{spare_day}"))),
        ("POST" | "GET", p) if p.starts_with("/api/v1/admin/offices/{id}") => Call::to(offices(&p["/api/v1/admin/offices/{id}".len()..])),
        ("POST", "/api/v1/admin/staff") => Call::to(template).json(json!({"username": format!("matrix.new{n}"), "role": "operator",
            "office_id": OFFICE_Y, "password": OPERATOR_PASSWORD})),
        ("POST", p) if p.starts_with("/api/v1/admin/staff/{id}/") => Call::to(p.replace("{id}", &world.victim_staff)),
        // ---------------------------------------------------------------- citizens
        ("PUT", "/api/v1/citizen/application/appointment") => Call::to(template)
            .json(json!({"office_id": OFFICE_X, "date": world.later + chrono::Duration::days(7), "shift": "morning"})),
        ("PUT", "/api/v1/citizen/application/delivery-office") => Call::to(template).json(json!({"office_id": OFFICE_Y})),
        ("PUT", "/api/v1/citizen/application/family") => Call::to(template).json(json!({
            "father": {"first_name": "علی", "last_name": "احمدی", "national_id": "0499370899"},
            "mother": {"first_name": "شهرزاد", "last_name": "کریمی", "national_id": null},
            "spouses": [], "children": []})),
        ("PUT", "/api/v1/citizen/application/mobile") => Call::to(template).json(json!({"mobile": "09359998877"})),
        ("PUT", "/api/v1/citizen/application/home-visit") => Call::to(template).json(json!({
            "address": "مراغه، خیابان اول، پلاک ۵", "postal_code": "5518743111", "landline": "04137221234",
            "notes": "طبقه دوم"})),
        ("POST", "/api/v1/citizen/application/payments") => Call::to(template).json(json!({"gateway": "sandbox"})),
        // The caller's own information again (not an edit); set in `run` per citizen.
        ("PUT", "/api/v1/citizen/application/personal-info") => Call::to(template),
        ("POST", "/api/v1/citizen/application/receipt/email") => Call::to(template).json(json!({"email": "matrix@example.com"})),
        ("POST", "/api/v1/citizen/application/reissue") => Call::to(template).json(json!({"reason": "lost"})),
        ("PUT", "/api/v1/citizen/application/special-needs") => Call::to(template).json(ncr_tests::client::typical_needs()),
        ("POST", "/api/v1/citizen/application/withdrawal") => Call::to(template).json(json!({"reason": "matrix"})),
        ("GET", "/api/v1/citizen/hijri-birth-date-options" | "/api/v1/kiosk/hijri-birth-date-options") => {
            Call::to(format!("{template}?birth_date_jalali=1369-03-19"))
        }
        ("POST", "/api/v1/citizen/sessions") => {
            let (id, answer) = app.captcha().await;
            Call::to(template).json(json!({"national_id": SAMPLE.national_id, "serial": SAMPLE.serial,
                                           "captcha_id": id, "captcha_answer": answer}))
        }
        // ---------------------------------------------------------------- e-folder
        ("PUT", "/api/v1/efolder/password") => Call::to(template).json(json!({
            "current_password": world.efolder.password, "new_password": format!("matrix passphrase {n}")})),
        ("POST", "/api/v1/efolder/password-reset") => Call::to(template)
            .json(json!({"username": world.efolder.username, "mobile": world.efolder.mobile})),
        ("POST", "/api/v1/efolder/password-reset/confirm") => {
            let account = if fresh { world.reset_accounts.pop().expect("a reset account per call") } else { world.reset_accounts[0].clone() };
            let code = if fresh {
                let (status, _) = app.post("/api/v1/efolder/password-reset", None,
                    &json!({"username": account.username, "mobile": account.mobile})).await;
                assert_eq!(status, 202);
                let texts = texts_to(app, &admin, &account.mobile).await;
                texts.iter().find(|t| t.contains("کد بازیابی")).expect("a reset SMS").rsplit(' ').next().unwrap().to_owned()
            } else {
                "000000".into()
            };
            Call::to(template).json(json!({"username": account.username, "code": code, "new_password": format!("matrix reset {n}")}))
        }
        // A national code of its own per call (each has a daily budget); the answer is the
        // same whether or not it has an account.
        ("POST", "/api/v1/efolder/credentials-recovery") => {
            Call::to(template).json(json!({"national_id": recovery_national_code(n), "mobile": "09121234567"}))
        }
        ("POST", "/api/v1/efolder/registrations") => {
            let p = if fresh { world.efolder_people.pop().expect("an e-folder person per call") } else { world.efolder_people[0].clone() };
            Call::to(template).json(p.form())
        }
        ("POST", "/api/v1/efolder/sessions") => Call::to(template)
            .json(json!({"username": world.efolder.username, "password": world.efolder.password})),
        // ---------------------------------------------------------------- machines
        ("POST", "/api/v1/kiosk/applications") => {
            let p = if fresh { world.kiosk_people.pop().expect("a person per kiosk registration") } else { world.kiosk_people[0].clone() };
            let mut call = Call::to(template).json(kiosk_body(&p, world.later));
            call.headers.push(("Idempotency-Key", format!("matrix-create-{n}")));
            call
        }
        ("GET", "/api/v1/kiosk/applications/{id}") => Call::to(format!("/api/v1/kiosk/applications/{}", world.kiosk_registration)),
        ("POST", "/api/v1/oauth/token") => {
            let c = &world.clients["oauth"];
            Call::to(template).form(&[("grant_type", "client_credentials"), ("client_id", &c.id), ("client_secret", &c.secret)])
        }
        ("POST", "/api/v1/production/applications/{tracking_code}/events") => Call::to(format!(
            "/api/v1/production/applications/{}/events",
            world.office_tracking["production"]
        ))
        .json(json!({"event_id": format!("matrix-event-{n}"), "kind": "production_started"})),
        // ---------------------------------------------------------------- offices
        ("GET", "/api/v1/office/applications") => {
            Call::to(format!("{template}?national_id={}", world.office_national_id))
        }
        ("GET", "/api/v1/office/applications/{tracking_code}") => {
            Call::to(format!("/api/v1/office/applications/{}", world.office_tracking["check-in"]))
        }
        ("GET", "/api/v1/office/applications/{tracking_code}/enrollment-receipt") => Call::to(format!(
            "/api/v1/office/applications/{}/enrollment-receipt",
            world.office_tracking["production"]
        )),
        ("POST", p) if p.starts_with("/api/v1/office/applications/{tracking_code}/") => {
            let step = p.rsplit('/').next().unwrap();
            let call = Call::to(p.replace("{tracking_code}", &world.office_tracking[step]));
            match step {
                "completion" => call.json(completion_body()),
                "delivery" => call.json(json!({"fingerprint_match": true})),
                _ => call,
            }
        }
        ("GET", "/api/v1/office/appointments") => Call::to(format!("{template}?date={}", world.today)),
        ("GET", "/api/v1/office/home-visits") => Call::to(format!("{template}?status=waiting&limit=5")),
        ("POST", "/api/v1/office/home-visits/{tracking_code}/schedule") => {
            Call::to(format!("/api/v1/office/home-visits/{}/schedule", world.home_visit))
                .json(json!({"date": world.later + chrono::Duration::days(7), "shift": "morning"}))
        }
        ("GET", "/api/v1/offices/availability") => Call::to(format!("{template}?date={}&city_code=041", world.later)),
        // ---------------------------------------------------------------- payments and public
        ("GET", "/api/v1/payments/{gateway}/callback") => Call::to("/api/v1/payments/sandbox/callback?token=none"),
        ("POST", "/api/v1/payments/{gateway}/callback") => Call::to("/api/v1/payments/sandbox/callback").form(&[("token", "none")]),
        ("GET", "/payment/result") => Call::to("/payment/result?outcome=success"),
        ("GET", "/api/v1/public/receipts/verify") => Call::to(format!("{template}?{}", world.verify_query)),
        ("GET", "/api/v1/public/status") => {
            Call::to(format!("{template}?national_id={}&tracking_code={}", SAMPLE.national_id, world.tracking_a))
        }
        ("POST", "/api/v1/public/tracking-code-recovery") => {
            let (id, answer) = app.captcha().await;
            Call::to(template).json(json!({"national_id": SAMPLE.national_id, "birth_date_jalali": SAMPLE.birth_date,
                                           "captcha_id": id, "captcha_answer": answer}))
        }
        ("POST", "/api/v1/staff/sessions") => Call::to(template).json(json!({"username": "admin", "password": ncr_tests::ADMIN_PASSWORD})),
        ("POST", "/api/v1/ussd") => Call::to(template).form(&[
            ("sessionId", "matrix-session"), ("phoneNumber", SAMPLE.mobile.unwrap()), ("serviceCode", "*4*6090#"), ("text", "")]),
        ("GET", "/assets/fonts/{name}") => Call::to("/assets/fonts/Vazirmatn-Regular.ttf"),
        ("POST", "/sandbox/bank/api/payments") => Call::to(template).json(sandbox_payment(app)),
        ("POST", "/sandbox/bank/api/verify" | "/sandbox/bank/api/reverse") => Call::to(template).json(json!({"token": world.bank_token})),
        ("GET", "/sandbox/bank/pay/{token}") => Call::to(format!("/sandbox/bank/pay/{}", world.bank_token)),
        ("POST", "/sandbox/bank/pay/{token}") => Call::to(format!("/sandbox/bank/pay/{}", world.bank_token)).form(&[("outcome", "success")]),
        // Everything else needs no body and no ids.
        _ => Call::to(template),
    }
}

/// A valid national code made from nine digits.
fn national_code(body: u64) -> String {
    let digits: Vec<u64> = format!("{body:09}").bytes().map(|b| u64::from(b - b'0')).collect();
    let sum: u64 = digits.iter().enumerate().map(|(i, d)| d * (10 - i as u64)).sum();
    let check = if sum % 11 < 2 { sum % 11 } else { 11 - sum % 11 };
    format!("{body:09}{check}")
}

/// A valid national code made from `n`, one per call.
fn recovery_national_code(n: u64) -> String {
    national_code(100_000_000 + (n * 7_919) % 800_000_000)
}

fn office_body(code: &str, city_code: &str) -> Value {
    json!({"code": code, "name": "دفتر پیشخوان دولت ماتریس", "kind": "government_counter", "province": "تهران",
           "city": "تهران", "city_code": city_code, "phone": "22711234", "address": "تهران - خیابان اول - پلاک ۵",
           "step_free_access": true})
}

/// Sends a call as a caller; the status.
async fn send(
    app: &TestApp,
    world: &World,
    method: &str,
    call: &Call,
    caller: Caller,
    extra: Option<(&str, &str)>,
) -> (u16, String) {
    let mut req = app.http.request(method.parse().unwrap(), app.url(&call.path));
    // Starting a payment needs a held seat, answering the special-needs questions a draft:
    // two citizens in that state stand in for A and B there.
    let stand_ins = match (method, call.path.as_str()) {
        ("POST", "/api/v1/citizen/application/payments") => Some(&world.holders),
        ("PUT", "/api/v1/citizen/application/special-needs") => Some(&world.drafts),
        ("POST", "/api/v1/citizen/application/withdrawal") => Some(&world.withdrawers),
        ("GET", "/api/v1/citizen/application/enrollment-receipt") => Some(&world.enrolled),
        ("PUT", "/api/v1/citizen/application/home-visit") => Some(&world.home_drafts),
        ("POST", "/api/v1/citizen/application/reissue") => Some(&world.delivered),
        _ => None,
    };
    let token = match (caller, stand_ins) {
        (CitizenA, Some(s)) => Some(s[0].as_str()),
        (CitizenB, Some(s)) => Some(s[1].as_str()),
        _ => world.token(caller),
    };
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if caller == UssdGateway {
        req = req.header("X-USSD-Secret", USSD_SECRET);
    }
    for (k, v) in &call.headers {
        req = req.header(*k, v);
    }
    if let Some((k, v)) = extra {
        req = req.header(k, v);
    }
    req = match &call.body {
        Body::None => req,
        Body::Json(v) => req.json(v),
        Body::Form(fields) => req.form(fields),
        Body::Text(content_type, text) => req.header("Content-Type", *content_type).body(text.clone()),
    };
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    (status, res.text().await.unwrap_or_default())
}

fn with_ussd_secret(c: &mut api::config::Config) {
    c.ussd.secret = Some(USSD_SECRET.into());
    // Every caller recovers A's tracking code once.
    c.limits.recoveries_per_day = 100;
}

db_test!(every_operation_answers_every_caller_as_the_policy_says, tweak = with_ussd_secret, |app| {
    let mut world = world(&app).await;
    // Unknown fields on every JSON write body are refused (docs/architecture.md) with a 422 naming the
    // field, asked as a caller the policy lets in, so the answer is about the body. (First:
    // nothing is changed by a refused body, while the logouts below end sessions.)
    let mut lenient = Vec::new();
    for op in operations() {
        if op.content.as_deref() != Some("application/json") {
            continue;
        }
        let policy = policy(&op.method, &op.path).unwrap();
        let Some(caller) = CALLERS.into_iter().find(|c| matches!(expect(policy, *c), Allowed | Own)) else {
            continue;
        };
        let mut call = request(&app, &mut world, &op.method, &op.path, false).await;
        let mut body = match call.body {
            Body::Json(v) => v,
            _ => json!({}),
        };
        body["zz_unknown_field"] = json!(1);
        call.body = Body::Json(body);
        // In English the problem names what was wrong with the body (for developers).
        let (status, text) = send(&app, &world, &op.method, &call, caller, Some(("Accept-Language", "en"))).await;
        if status != 422 || !text.contains("\"field\":\"zz_unknown_field\"") {
            lenient.push(format!("{} {} as {caller:?}: {status} {text}", op.method, op.path));
        }
    }
    assert!(lenient.is_empty(), "write bodies that accept an unknown field:\n{}", lenient.join("\n"));
    let mut breaches = Vec::new();
    let mut calls = 0;
    // Logouts last: they end the callers' sessions.
    let mut ops = operations();
    ops.sort_by_key(|o| is_logout(&o.method, &o.path));
    for op in ops {
        let policy = policy(&op.method, &op.path).unwrap_or_else(|| panic!("{} {} has no policy", op.method, op.path));
        // Callers that must be turned away go first, so an allowed call that changes
        // something (a disabled client, a moved appointment) cannot hide a breach.
        let mut callers = CALLERS.to_vec();
        callers.sort_by_key(|c| matches!(expect(policy, *c), Allowed | Own));
        for caller in callers {
            let want = expect(policy, caller);
            let mut call = request(&app, &mut world, &op.method, &op.path, matches!(want, Allowed | Own)).await;
            if op.path == "/api/v1/citizen/application/personal-info" {
                let who = if caller == CitizenB { &MALE } else { &SAMPLE };
                call.body = Body::Json(Person::from(who).personal_info());
            }
            if op.content.is_some() && matches!(call.body, Body::None) {
                call.body = Body::Json(json!({}));
            }
            let (status, text) = send(&app, &world, &op.method, &call, caller, None).await;
            calls += 1;
            let ok = match want {
                Allowed | Own => op.success.contains(&status),
                Unauthenticated => status == 401,
                Forbidden => status == 403,
                NotFound => status == 404,
            };
            if !ok {
                let hint = if matches!(want, Allowed | Own) {
                    format!(
                        " (documented success {:?}; if the call itself is wrong — a body, an id or a set-up the operation \
                         needs — teach `request()` in tests/tests/access_matrix.rs to make it succeed): {}",
                        op.success,
                        text.chars().take(300).collect::<String>()
                    )
                } else {
                    String::new()
                };
                breaches.push(format!(
                    "{} {} as {caller:?}: {status}, policy {policy:?} wants {want:?}{hint}",
                    op.method, op.path
                ));
            } else if want == Allowed && caller == Efolder && op.path == "/api/v1/efolder/password" {
                // The e-folder caller's new password and session.
                let v: Value = serde_json::from_str(&text).expect("json");
                world.tokens.insert(Efolder, v["token"].as_str().expect("token").to_owned());
                if let Body::Json(b) = &call.body {
                    world.efolder.password = b["new_password"].as_str().unwrap().to_owned();
                }
            }
        }
    }
    // The token endpoint without client credentials: 401, with or without a bearer token.
    for caller in CALLERS {
        let mut req = app.http.post(app.url("/api/v1/oauth/token")).form(&[("grant_type", "client_credentials")]);
        if let Some(token) = world.token(caller) {
            req = req.bearer_auth(token);
        }
        let status = req.send().await.expect("request").status().as_u16();
        if status != 401 {
            breaches.push(format!(
                "POST /api/v1/oauth/token without client credentials as {caller:?}: {status}, wants 401"
            ));
        }
    }
    assert!(calls >= OPERATIONS.len() * CALLERS.len(), "{calls} calls");
    assert!(breaches.is_empty(), "{} of {calls} calls broke the policy:\n{}", breaches.len(), breaches.join("\n"));
});

/// `DELETE …/sessions/current`: ends the caller's session, so it runs after everything else.
fn is_logout(method: &str, template: &str) -> bool {
    method == "DELETE" && template.ends_with("/sessions/current")
}
