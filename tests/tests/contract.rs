//! The contract as integrators meet it (issue 22): what generated clients need from the
//! document (unique operation ids, one `Problem`, declared security and headers), and the
//! behaviour behind it (CORS for browsers on other origins, RFC 6749 at the token
//! endpoint, 422 naming the field, 401 challenges, 403 for the wrong kind of token,
//! `Location` on 201, problems replayed with their request id).

use std::collections::{BTreeMap, BTreeSet};

use api::seed::offices::MARAGHEH_OFFICE_ID as MARAGHEH;
use api::seed::population::SAMPLE;
use base64::Engine;
use ncr_tests::journey::Person;
use ncr_tests::{TestApp, db_test};
use serde_json::{Value, json};

fn doc() -> Value {
    serde_json::to_value(api::server::openapi()).expect("contract as JSON")
}

/// (method, path, operation) for every operation.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                out.push((method.to_uppercase(), path.clone(), op.clone()));
            }
        }
    }
    out
}

/// Generators name methods after `operationId`: two operations with one id collide (one
/// is dropped or mistyped), and a vague id (`list`, `start`) says nothing. Every id is
/// written in the handler's `#[utoipa::path(operation_id = "<tag>_<verb>_<noun>", …)]`.
fn operation_id_problems(doc: &Value) -> Vec<String> {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut problems = Vec::new();
    let tags: BTreeSet<&str> = doc["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["description"].as_str().and(t["name"].as_str()))
        .collect();
    for (method, path, op) in operations(doc) {
        let at = format!("{method} {path}");
        let id = op["operationId"].as_str().unwrap_or_default().to_owned();
        let tag = op["tags"][0].as_str().unwrap_or_default();
        if let Some(first) = seen.insert(id.clone(), at.clone()) {
            problems.push(format!("operationId {id:?} is used by {first} and {at}"));
        }
        let snake = id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !snake || id.len() <= tag.len() + 1 || !id.starts_with(&format!("{tag}_")) {
            problems.push(format!(
                "{at}: operationId {id:?} must be snake_case and start with its tag ({tag}_…): \
                 set operation_id = \"{tag}_<verb>_<noun>\" in its #[utoipa::path(…)]"
            ));
        }
        if !tags.contains(tag) {
            problems.push(format!("{at}: tag {tag:?} is not declared with a description in ApiDoc"));
        }
    }
    problems
}

#[test]
fn operation_ids_are_unique_readable_and_start_with_their_tag() {
    let doc = doc();
    assert!(operations(&doc).len() >= 85, "the contract lists its operations");
    let problems = operation_id_problems(&doc);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The check fails on a duplicate and on a vague id: shown on doctored copies.
#[test]
fn a_duplicated_or_vague_operation_id_is_caught() {
    let mut doc = doc();
    doc["paths"]["/api/v1/efolder/sessions"]["post"]["operationId"] = json!("staff_sign_in");
    let problems = operation_id_problems(&doc);
    assert!(problems.iter().any(|p| p.contains("\"staff_sign_in\" is used by")), "{problems:?}");
    let mut doc = self::doc();
    doc["paths"]["/api/v1/citizen/application/payments"]["get"]["operationId"] = json!("list");
    let problems = operation_id_problems(&doc);
    assert!(problems.iter().any(|p| p.contains("GET /api/v1/citizen/application/payments")), "{problems:?}");
}

/// Every operation says how it is authenticated (`[]` when public) with schemes the
/// document defines (and scopes the `machine` scheme lists); `servers` is set.
#[test]
fn every_operation_declares_its_security() {
    let doc = doc();
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(schemes["machine"]["type"], "oauth2");
    assert_eq!(schemes["machine"]["flows"]["clientCredentials"]["tokenUrl"], "/api/v1/oauth/token");
    assert_eq!(schemes["ussd_secret"]["type"], "apiKey");
    assert_eq!(schemes["ussd_secret"]["in"], "header");
    let scopes = schemes["machine"]["flows"]["clientCredentials"]["scopes"].as_object().unwrap();
    assert!(doc["servers"][0]["url"].as_str().is_some_and(|u| u.starts_with("http")));
    let mut problems = Vec::new();
    for (method, path, op) in operations(&doc) {
        let Some(requirements) = op["security"].as_array() else {
            problems.push(format!("{method} {path}: no `security` (say `[]` when public)"));
            continue;
        };
        for req in requirements {
            for (name, wanted) in req.as_object().unwrap() {
                if !schemes.contains_key(name) {
                    problems.push(format!("{method} {path}: unknown security scheme {name}"));
                }
                for scope in wanted.as_array().unwrap() {
                    if name != "machine" || !scopes.contains_key(scope.as_str().unwrap()) {
                        problems.push(format!("{method} {path}: scope {scope} not defined for {name}"));
                    }
                }
                if name == "machine" && wanted.as_array().unwrap().is_empty() {
                    problems.push(format!("{method} {path}: a machine operation names its scope"));
                }
            }
        }
        let public = requirements.is_empty();
        let protected_path = ["/api/v1/admin/", "/api/v1/office/", "/api/v1/kiosk/", "/api/v1/production/"]
            .iter()
            .any(|p| path.starts_with(p));
        if public && protected_path {
            problems.push(format!("{method} {path}: declared public"));
        }
        if !op["parameters"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["$ref"] == "#/components/parameters/AcceptLanguage"))
        {
            problems.push(format!("{method} {path}: Accept-Language not declared"));
        }
        for p in op["parameters"].as_array().into_iter().flatten() {
            if p["schema"]["type"].as_array().is_some_and(|t| t.contains(&json!("null"))) {
                problems.push(format!("{method} {path}: parameter {} typed as nullable", p["name"]));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// One `Problem` component, referenced by every error answer with an example of its
/// own status; the headers of every answer are documented.
#[test]
fn errors_reference_one_problem_and_headers_are_documented() {
    let doc = doc();
    let mut problems = Vec::new();
    let mut refs = 0;
    for (method, path, op) in operations(&doc) {
        for (status, response) in op["responses"].as_object().unwrap() {
            let at = format!("{method} {path} {status}");
            let code: u16 = status.parse().unwrap();
            let headers = &response["headers"];
            if headers["X-Request-Id"]["$ref"].is_null() {
                problems.push(format!("{at}: X-Request-Id not documented"));
            }
            let want = match code {
                201 => Some("Location"),
                401 => Some("WWW-Authenticate"),
                429 => Some("Retry-After"),
                _ => None,
            };
            if let Some(h) = want
                && headers[h].is_null()
            {
                problems.push(format!("{at}: {h} not documented"));
            }
            if code < 400 {
                continue;
            }
            for (media, content) in response["content"].as_object().into_iter().flatten() {
                if media == "application/problem+json" {
                    refs += 1;
                    if content["schema"]["$ref"] != "#/components/schemas/Problem" {
                        problems.push(format!("{at}: problem schema inlined"));
                    }
                    if content["example"]["status"] != code {
                        problems.push(format!("{at}: example has status {}", content["example"]["status"]));
                    }
                }
            }
            if response["content"].get("application/problem+json").is_none() && !path.ends_with("/oauth/token") {
                problems.push(format!("{at}: an error answer without application/problem+json"));
            }
        }
    }
    assert!(refs > 300, "{refs} problem answers");
    let text = serde_json::to_string(&doc).unwrap();
    assert_eq!(text.matches("\"description\":\"An RFC 9457 problem document.\"").count(), 1, "Problem inlined");
    let pdf = &doc["paths"]["/api/v1/citizen/application/receipt.pdf"]["get"]["responses"]["200"];
    assert!(pdf["headers"]["Content-Disposition"].is_object());
    let kiosk = &doc["paths"]["/api/v1/kiosk/applications"]["post"]["responses"];
    assert!(kiosk["201"]["headers"]["Idempotent-Replayed"].is_object());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The component a `$ref` names.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => &doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")],
        None => schema,
    }
}

/// Problems with the one page shape: every list is `{items, next_cursor}` (`next_cursor`
/// required, string or null) and takes `limit` and `cursor`; no bare arrays, no other
/// paging fields.
fn page_shape_problems(doc: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let mut lists = 0;
    for (method, path, op) in operations(doc) {
        let Some(schema) = op["responses"]["200"]["content"]["application/json"].get("schema") else { continue };
        let schema = resolve(doc, schema);
        let at = format!("{method} {path}");
        if schema["type"] == "array" {
            problems.push(format!("{at}: a bare array"));
            continue;
        }
        let props = &schema["properties"];
        for other in ["rows", "offset", "next_offset", "page", "next_page"] {
            if !props[other].is_null() {
                problems.push(format!("{at}: `{other}` beside the one page shape"));
            }
        }
        if props["items"].is_null() {
            continue;
        }
        lists += 1;
        let required: Vec<&str> =
            schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        if props["items"]["type"] != "array" || !required.contains(&"items") {
            problems.push(format!("{at}: `items` is not a required array"));
        }
        if props["next_cursor"]["type"] != json!(["string", "null"]) || !required.contains(&"next_cursor") {
            problems.push(format!("{at}: `next_cursor` is not a required string-or-null"));
        }
        let params: Vec<&str> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "query")
            .filter_map(|p| p["name"].as_str())
            .collect();
        for want in ["limit", "cursor"] {
            if !params.contains(&want) {
                problems.push(format!("{at}: no `{want}` parameter"));
            }
        }
    }
    if lists < 12 {
        problems.push(format!("only {lists} lists found"));
    }
    problems
}

/// Issue 22 item 7: one pagination shape on every list.
#[test]
fn every_list_has_the_one_page_shape() {
    let problems = page_shape_problems(&doc());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The check fails on a bare array and on an offset page: shown on doctored copies.
#[test]
fn another_page_shape_is_caught() {
    let mut doc = doc();
    doc["paths"]["/api/v1/citizen/application/payments"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] =
        json!({"type": "array", "items": {"$ref": "#/components/schemas/PaymentView"}});
    let problems = page_shape_problems(&doc);
    assert!(problems.iter().any(|p| p.contains("payments: a bare array")), "{problems:?}");
    let mut doc = self::doc();
    doc["components"]["schemas"]["StaffPage"]["properties"]["next_offset"] = json!({"type": "integer"});
    doc["components"]["schemas"]["StaffPage"]["required"] = json!(["items"]);
    let problems = page_shape_problems(&doc);
    assert!(problems.iter().any(|p| p.contains("staff: `next_offset`")), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("staff: `next_cursor` is not")), "{problems:?}");
}

/// Whether a property shows a value: an example of its own, an enum, or a `$ref` (the
/// component has its examples), also through `allOf`/`oneOf` and array items.
fn shows_a_value(p: &Value) -> bool {
    // `example: null` shows a value too (an optional field left out of the example).
    if p.get("example").is_some() || !p["examples"].is_null() || !p["enum"].is_null() || !p["$ref"].is_null() {
        return true;
    }
    if ["allOf", "oneOf", "anyOf"].iter().any(|k| p[*k].as_array().is_some_and(|v| v.iter().any(shows_a_value))) {
        return true;
    }
    (p["type"] == "array" || p["type"] == json!(["array", "null"])) && shows_a_value(&p["items"])
}

static PROSE_ENUM: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"^`[a-z_]+`(?: \([^)]*\))?(?:, `[a-z_]+`(?: \([^)]*\))?)* or `[a-z_]+`").unwrap()
});

static JALALI: std::sync::LazyLock<regex::Regex> =
    std::sync::LazyLock::new(|| regex::Regex::new(r"^\d{4}-\d{2}-\d{2}$").unwrap());

/// Problems with the values the document shows: a property without an example, a
/// closed set listed in prose instead of an `enum`, a Jalali date not `YYYY-MM-DD`.
fn example_problems(doc: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let walk = |at: String, props: &Value, problems: &mut Vec<String>| {
        for (name, p) in props.as_object().into_iter().flatten() {
            let at = format!("{at}.{name}");
            if !shows_a_value(p) && p["properties"].is_null() {
                problems.push(format!("{at}: no example"));
            }
            let description = p["description"].as_str().unwrap_or_default();
            if p["enum"].is_null() && p["$ref"].is_null() && PROSE_ENUM.is_match(description) {
                problems.push(format!("{at}: values listed in prose, not an enum: {description}"));
            }
            if let Some(e) = p["example"].as_str() {
                let fits = match p["format"].as_str() {
                    Some("date-time") => chrono::DateTime::parse_from_rfc3339(e).is_ok(),
                    Some("date") => chrono::NaiveDate::parse_from_str(e, "%Y-%m-%d").is_ok(),
                    _ => true,
                };
                if !fits {
                    problems.push(format!("{at}: example {e:?} is not a {}", p["format"]));
                }
            }
            if let (Some(values), false) = (p["enum"].as_array(), p["example"].is_null())
                && !values.contains(&p["example"])
            {
                problems.push(format!("{at}: example {} is not one of {values:?}", p["example"]));
            }
            if name.ends_with("_jalali")
                && let Some(e) = p["example"].as_str()
                && !JALALI.is_match(e)
            {
                problems.push(format!("{at}: Jalali example {e:?} is not YYYY-MM-DD"));
            }
        }
    };
    for (name, schema) in doc["components"]["schemas"].as_object().expect("schemas") {
        walk(name.clone(), &schema["properties"], &mut problems);
        for part in schema["allOf"].as_array().into_iter().flatten() {
            walk(name.clone(), &part["properties"], &mut problems);
        }
    }
    for (method, path, op) in operations(doc) {
        for p in op["parameters"].as_array().into_iter().flatten().filter(|p| p["$ref"].is_null()) {
            let at = format!("{method} {path} {}", p["name"].as_str().unwrap_or("?"));
            let schema = &p["schema"];
            if p["example"].is_null() && !shows_a_value(schema) {
                problems.push(format!("{at}: no example"));
            }
            let description = p["description"].as_str().unwrap_or_default();
            if schema["enum"].is_null() && schema["$ref"].is_null() && PROSE_ENUM.is_match(description) {
                problems.push(format!("{at}: values listed in prose, not an enum: {description}"));
            }
        }
    }
    problems
}

/// Issue 22 item 8: an example on every field and parameter, enums for closed sets, one
/// Jalali format.
#[test]
fn every_field_shows_a_value_and_closed_sets_are_enums() {
    let problems = example_problems(&doc());
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

/// The check fails on a missing example, a prose enum and a slashed Jalali date.
#[test]
fn a_missing_example_or_a_prose_enum_is_caught() {
    let mut doc = doc();
    let view = &mut doc["components"]["schemas"]["ApplicationView"]["properties"];
    view["created_at"].as_object_mut().unwrap().remove("example");
    doc["components"]["schemas"]["PaymentView"]["properties"]["status"] =
        json!({"type": "string", "description": "`created`, `verified` or `failed`.", "example": "created"});
    doc["components"]["schemas"]["ReceiptView"]["properties"]["issued_at_jalali"]["example"] =
        json!("1405/09/01 10:00");
    let problems = example_problems(&doc);
    for want in [
        "ApplicationView.created_at: no example",
        "PaymentView.status: values listed",
        "ReceiptView.issued_at_jalali: Jalali",
    ] {
        assert!(problems.iter().any(|p| p.starts_with(want)), "{want}: {problems:?}");
    }
}

// ---------------------------------------------------------------- behaviour

fn header(res: &reqwest::Response, name: &str) -> String {
    res.headers().get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

async fn new_client(app: &TestApp, id: &str) -> String {
    let admin = app.admin_token().await;
    let (status, body) = app
        .post("/api/v1/admin/kiosk-clients", Some(&admin), &json!({"client_id": id, "name": id, "kind": "kiosk"}))
        .await;
    assert_eq!(status, 201, "{body}");
    body["client_secret"].as_str().unwrap().to_owned()
}

db_test!(the_token_endpoint_speaks_rfc_6749, |app| {
    let secret = new_client(&app, "kiosk-rfc").await;
    let url = app.url("/api/v1/oauth/token");
    // HTTP Basic (RFC 6749 §2.3.1), form-encoded id and secret.
    let res = app
        .http
        .post(&url)
        .basic_auth("kiosk-rfc", Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "cache-control"), "no-store");
    let (status, token) = ncr_tests::json(res).await;
    assert_eq!(status, 200, "{token}");
    assert_eq!((token["token_type"].as_str(), token["scope"].as_str()), (Some("Bearer"), Some("kiosk:applications")));
    // In the body.
    let res = app
        .http
        .post(&url)
        .form(&[("grant_type", "client_credentials"), ("client_id", "kiosk-rfc"), ("client_secret", &secret)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // §5.2 errors: JSON {error, error_description}, never a token.
    let wrong = app
        .http
        .post(&url)
        .basic_auth("kiosk-rfc", Some("not-the-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(header(&wrong, "www-authenticate"), "Basic realm=\"ncr\"");
    assert_eq!(header(&wrong, "cache-control"), "no-store");
    assert!(header(&wrong, "content-type").starts_with("application/json"));
    let request_id = header(&wrong, "x-request-id");
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert!(body["error_description"].as_str().is_some_and(|d| !d.is_empty()));
    assert_eq!(body["request_id"], request_id.as_str());
    assert!(body.get("access_token").is_none());

    type Form<'a> = &'a [(&'a str, &'a str)];
    let cases: [(Form<'_>, bool, u16, &str); 5] = [
        (&[("grant_type", "password")], true, 400, "unsupported_grant_type"),
        (&[("scope", "kiosk:applications")], true, 400, "invalid_request"),
        (&[("grant_type", "client_credentials"), ("scope", "production:events")], true, 400, "invalid_scope"),
        (&[("grant_type", "client_credentials"), ("client_secret", "x")], true, 400, "invalid_request"),
        (&[("grant_type", "client_credentials")], false, 401, "invalid_client"),
    ];
    for (form, basic, want_status, want_error) in cases {
        let mut req = app.http.post(&url).form(form);
        if basic {
            req = req.basic_auth("kiosk-rfc", Some(&secret));
        }
        let (status, body) = ncr_tests::json(req.send().await.unwrap()).await;
        assert_eq!((status, body["error"].as_str()), (want_status, Some(want_error)), "{form:?}: {body}");
    }
    // Percent-encoded credentials in Basic are decoded (RFC 6749 §2.3.1).
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("kiosk%2Drfc:{secret}"));
    let res = app
        .http
        .post(&url)
        .header("Authorization", format!("Basic {encoded}"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
});

db_test!(a_missing_or_mistyped_field_is_422_naming_it_in_both_languages, |app| {
    let (id, answer) = app.captcha().await;
    let url = app.url("/api/v1/citizen/sessions");
    let res = app
        .http
        .post(&url)
        .json(&json!({"national_id": SAMPLE.national_id, "captcha_id": id, "captcha_answer": answer}))
        .send()
        .await
        .unwrap();
    let (status, p) = ncr_tests::json(res).await;
    assert_eq!((status, p["code"].as_str()), (422, Some("validation_failed")), "{p}");
    assert_eq!((p["errors"][0]["field"].as_str(), p["errors"][0]["code"].as_str()), (Some("serial"), Some("required")));
    assert_eq!(p["errors"][0]["message"], "این مورد الزامی است.");
    let res = app
        .http
        .post(&url)
        .header("Accept-Language", "en")
        .json(&json!({"national_id": SAMPLE.national_id, "serial": 883810, "captcha_id": id, "captcha_answer": answer}))
        .send()
        .await
        .unwrap();
    let (status, p) = ncr_tests::json(res).await;
    assert_eq!(status, 422, "{p}");
    assert_eq!((p["errors"][0]["field"].as_str(), p["errors"][0]["code"].as_str()), (Some("serial"), Some("type")));
    assert!(p["errors"][0]["message"].as_str().unwrap().starts_with("The value has the wrong type"), "{p}");
    // Not JSON at all stays 400.
    let res = app.http.post(&url).header("Content-Type", "application/json").body("{\"national_id\":").send().await;
    assert_eq!(res.unwrap().status(), 400);
});

db_test!(unauthenticated_is_401_with_a_challenge_and_the_wrong_kind_of_token_403, |app| {
    let res = app.http.get(app.url("/api/v1/admin/stats")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(header(&res, "www-authenticate"), "Bearer realm=\"ncr\"");
    let res = app.http.get(app.url("/api/v1/admin/stats")).bearer_auth("not.a.token").send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(header(&res, "www-authenticate").contains("error=\"invalid_token\""));

    let citizen = app.login(SAMPLE.national_id, SAMPLE.serial).await;
    let (status, p) = app.get("/api/v1/admin/stats", Some(&citizen)).await;
    assert_eq!((status, p["code"].as_str()), (403, Some("token_wrong_kind")), "{p}");
    let admin = app.admin_token().await;
    let (status, p) = app.get("/api/v1/citizen/application", Some(&admin)).await;
    assert_eq!((status, p["code"].as_str()), (403, Some("token_wrong_kind")), "{p}");
});

db_test!(created_answers_say_where_and_replayed_problems_keep_their_request_id, |app| {
    let (id, answer) = app.captcha().await;
    let res = app
        .http
        .post(app.url("/api/v1/citizen/sessions"))
        .json(&json!({"national_id": SAMPLE.national_id, "serial": SAMPLE.serial, "captcha_id": id, "captcha_answer": answer}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(header(&res, "location"), "/api/v1/citizen/application");

    // A payment started without a seat fails; the same key replays that problem whole.
    let token = app.login(SAMPLE.national_id, SAMPLE.serial).await;
    let pay = |key: &'static str| {
        app.http
            .post(app.url("/api/v1/citizen/application/payments"))
            .bearer_auth(&token)
            .header("Idempotency-Key", key)
            .json(&json!({"gateway": "sandbox"}))
            .send()
    };
    let first = pay("contract-replay-1").await.unwrap();
    let first_id = header(&first, "x-request-id");
    let (status, p1) = ncr_tests::json(first).await;
    assert!(status >= 400, "{p1}");
    assert_eq!(p1["request_id"], first_id.as_str());
    let again = pay("contract-replay-1").await.unwrap();
    assert_eq!(header(&again, "idempotent-replayed"), "true");
    assert_ne!(header(&again, "x-request-id"), first_id, "a new request has its own id");
    let (status2, p2) = ncr_tests::json(again).await;
    assert_eq!((status2, &p2), (status, &p1), "the replay is the first answer, request id included");
});

// Issue 22 item 7: ETag and If-None-Match on the application and the public pages.
db_test!(the_application_and_the_public_pages_answer_304_while_unchanged, |app| {
    for path in ["/api/v1/public/process-info", "/api/v1/public/registration-conditions"] {
        let res = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let tag = header(&res, "etag");
        assert!(tag.starts_with('"') && tag.len() > 2, "{path}: {tag:?}");
        let res = app.http.get(app.url(path)).header("If-None-Match", &tag).send().await.unwrap();
        assert_eq!((res.status().as_u16(), header(&res, "etag")), (304, tag.clone()), "{path}");
        assert_eq!(header(&res, "cache-control"), "public, max-age=300", "{path}: caching headers kept");
        assert!(res.bytes().await.unwrap().is_empty(), "{path}: a 304 has no body");
        // Another language is another answer, with its own tag.
        let en = app.http.get(app.url(path)).header("Accept-Language", "en").header("If-None-Match", &tag);
        let en = en.send().await.unwrap();
        assert_eq!(en.status(), 200, "{path}");
        assert_ne!(header(&en, "etag"), tag);
    }

    let token = app.draft(&Person::from(&SAMPLE)).await;
    let get = |tag: String| {
        app.http.get(app.url("/api/v1/citizen/application")).bearer_auth(&token).header("If-None-Match", tag).send()
    };
    let first = get("\"another\"".into()).await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, "cache-control"), "no-store", "personal: never kept by a cache");
    let tag = header(&first, "etag");
    let same = get(tag.clone()).await.unwrap();
    assert_eq!((same.status().as_u16(), header(&same, "etag")), (304, tag.clone()));
    let weak = get(format!("W/{tag}")).await.unwrap();
    assert_eq!(weak.status(), 304, "If-None-Match compares weakly");
    // The application changes (a seat held): the old tag gets the new answer.
    let date = app.open_date(MARAGHEH, 2).await;
    assert_eq!(app.hold(&token, MARAGHEH, date, "morning").await.0, 200);
    let changed = get(tag.clone()).await.unwrap();
    assert_eq!(changed.status(), 200);
    assert_ne!(header(&changed, "etag"), tag);
    let (_, view) = ncr_tests::json(changed).await;
    assert_eq!(view["appointment_status"], "held");
});

/// Every operation the contract says answers with an ETag does, and honours it.
#[test]
fn the_tagged_operations_are_documented() {
    let doc = doc();
    let mut tagged = 0;
    for (method, path, op) in operations(&doc) {
        let id = op["operationId"].as_str().unwrap();
        let listed = api::etag::OPERATIONS.contains(&id);
        let documented = !op["responses"]["304"].is_null();
        assert_eq!(listed, documented, "{method} {path}");
        if listed {
            tagged += 1;
            assert!(op["responses"]["200"]["headers"]["ETag"].is_object(), "{path}");
            assert!(
                op["parameters"].as_array().unwrap().iter().any(|p| p["$ref"] == "#/components/parameters/IfNoneMatch")
            );
        }
    }
    assert_eq!(tagged, api::etag::OPERATIONS.len());
}

// Issue 22 item 8: a kiosk gets the lunar birth-date options it must choose from.
db_test!(a_kiosk_gets_the_lunar_birth_date_options, |app| {
    let admin = app.admin_token().await;
    let kiosk = app.machine_token(&admin, "kiosk-lunar", "kiosk").await;
    let citizen = app.login(SAMPLE.national_id, SAMPLE.serial).await;
    let path = "/api/v1/kiosk/hijri-birth-date-options?birth_date_jalali=1369-03-19";
    let (status, options) = app.get(path, Some(&kiosk)).await;
    assert_eq!(status, 200, "{options}");
    assert_eq!(options["options"].as_array().unwrap().len(), 5);
    let (_, citizens) =
        app.get("/api/v1/citizen/hijri-birth-date-options?birth_date_jalali=1369-03-19", Some(&citizen)).await;
    assert_eq!(options, citizens, "the same five options as the citizen's");
    let (status, p) =
        app.get("/api/v1/kiosk/hijri-birth-date-options?birth_date_jalali=1369-13-40", Some(&kiosk)).await;
    assert_eq!((status, p["errors"][0]["field"].as_str()), (422, Some("birth_date_jalali")), "{p}");
    let (status, p) = app.get(path, Some(&citizen)).await;
    assert_eq!((status, p["code"].as_str()), (403, Some("token_wrong_kind")), "{p}");
});

// ---------------------------------------------------------------- CORS

const PORTAL: &str = "http://portal.example";

fn with_portal(c: &mut api::config::Config) {
    c.cors.allowed_origins = vec![PORTAL.into()];
}

db_test!(cors_answers_listed_origins_only, tweak = with_portal, |app| {
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/citizen/application/payments"))
        .header("Origin", PORTAL)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "authorization, content-type, idempotency-key")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "preflight: {}", preflight.status());
    assert_eq!(header(&preflight, "access-control-allow-origin"), PORTAL);
    let allowed = header(&preflight, "access-control-allow-headers").to_ascii_lowercase();
    for h in ["authorization", "content-type", "idempotency-key"] {
        assert!(allowed.contains(h), "{h} not allowed: {allowed}");
    }
    assert!(header(&preflight, "access-control-allow-methods").contains("POST"));
    assert!(header(&preflight, "access-control-allow-credentials").is_empty(), "no credentialed requests");

    let res = app.http.get(app.url("/api/v1/captcha")).header("Origin", PORTAL).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "access-control-allow-origin"), PORTAL);
    let exposed = header(&res, "access-control-expose-headers").to_ascii_lowercase();
    for h in ["x-request-id", "retry-after", "location", "idempotent-replayed"] {
        assert!(exposed.contains(h), "{h} not exposed: {exposed}");
    }
    // An error answer is readable too.
    let res = app.http.get(app.url("/api/v1/admin/stats")).header("Origin", PORTAL).send().await.unwrap();
    assert_eq!((res.status().as_u16(), header(&res, "access-control-allow-origin")), (401, PORTAL.to_owned()));

    // Another origin is served (same-origin pages and non-browser clients are unaffected)
    // but gets no permission to read.
    let res = app.http.get(app.url("/api/v1/captcha")).header("Origin", "http://evil.example").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(header(&res, "access-control-allow-origin").is_empty());
});

db_test!(without_allowed_origins_there_are_no_cors_headers, |app| {
    let res = app.http.get(app.url("/api/v1/captcha")).header("Origin", PORTAL).send().await.unwrap();
    assert!(header(&res, "access-control-allow-origin").is_empty());
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/captcha"))
        .header("Origin", PORTAL)
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await
        .unwrap();
    assert!(header(&preflight, "access-control-allow-origin").is_empty());
});

// ---------------------------------------------------------------- a real browser

/// The Chromium binary (`NCR_CHROMIUM` overrides), if one is installed.
fn chromium() -> Option<String> {
    let candidates = std::env::var("NCR_CHROMIUM").map(|c| vec![c]).unwrap_or_else(|_| {
        ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"].map(String::from).to_vec()
    });
    candidates
        .into_iter()
        .find(|c| std::process::Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()))
}

/// A portal page: the citizen's first steps against the API at `api`, from its own
/// origin. It writes what it could read into `<pre id="out">`.
fn portal_page(api: &str) -> String {
    format!(
        r#"<!doctype html><meta charset="utf-8"><title>portal</title><pre id="out">running</pre>
<script>
const api = "{api}";
const out = {{}};
(async () => {{
  try {{
    const info = await fetch(api + "/api/v1/public/process-info", {{headers: {{"Accept-Language": "en"}}}});
    out.info = info.status; out.info_request_id = info.headers.get("X-Request-Id");
    const tag = info.headers.get("ETag");
    const again = await fetch(api + "/api/v1/public/process-info",
      {{headers: {{"Accept-Language": "en", "If-None-Match": tag || "none"}}, cache: "no-store"}});
    out.info_tag = tag; out.info_again = again.status;
    const cond = await fetch(api + "/api/v1/public/registration-conditions");
    out.conditions = cond.status; out.conditions_sections = (await cond.json()).sections.length;
    const c = await fetch(api + "/api/v1/captcha");
    const captcha = await c.json();
    const s = await fetch(api + "/api/v1/citizen/sessions", {{method: "POST",
      headers: {{"Content-Type": "application/json"}},
      body: JSON.stringify({{national_id: "{nid}", serial: "{serial}", captcha_id: captcha.captcha_id,
                            captcha_answer: String(captcha.sandbox_answer)}})}});
    out.session = s.status; out.location = s.headers.get("Location");
    const token = (await s.json()).token;
    const a = await fetch(api + "/api/v1/citizen/application", {{headers: {{"Authorization": "Bearer " + token}}}});
    const app = await a.json();
    out.application = a.status; out.application_says = app.state || app.code;
    const p = await fetch(api + "/api/v1/citizen/application/payments", {{method: "POST",
      headers: {{"Authorization": "Bearer " + token, "Content-Type": "application/json", "Idempotency-Key": "portal-1"}},
      body: JSON.stringify({{gateway: "sandbox"}})}});
    out.payment = p.status; out.payment_code = (await p.json()).code; out.payment_request_id = p.headers.get("X-Request-Id");
  }} catch (e) {{ out.error = String(e); }}
  document.getElementById("out").textContent = JSON.stringify(out);
}})();
</script>"#,
        nid = SAMPLE.national_id,
        serial = SAMPLE.serial,
    )
}

/// Serves one page on its own port (its own origin) until the process ends.
fn serve_page(page: String) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                page.len()
            );
            let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(page.as_bytes()));
        }
    });
    origin
}

/// Opens `url` in headless Chromium and returns the JSON the page wrote.
async fn browse(browser: String, url: String) -> Value {
    let dom = tokio::task::spawn_blocking(move || {
        let profile = std::env::temp_dir().join(format!("ncr-cors-{}", uuid::Uuid::new_v4()));
        let output = std::process::Command::new(&browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--virtual-time-budget=15000",
                &format!("--user-data-dir={}", profile.display()),
                "--dump-dom",
                &url,
            ])
            .output()
            .expect("run chromium");
        let _ = std::fs::remove_dir_all(&profile);
        String::from_utf8_lossy(&output.stdout).into_owned()
    })
    .await
    .unwrap();
    let start = dom.find("<pre id=\"out\">").expect("the page") + "<pre id=\"out\">".len();
    let text = &dom[start..start + dom[start..].find("</pre>").unwrap()];
    serde_json::from_str(&text.replace("&quot;", "\"").replace("&amp;", "&"))
        .unwrap_or_else(|_| panic!("the page did not finish: {text}"))
}

async fn a_browser_on_another_origin(backend: ncr_tests::Backend) {
    let Some(browser) = chromium() else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("Chromium is required under CI=true (apt-get install chromium)");
        }
        eprintln!("\n!!! SKIPPED the cross-origin browser test: Chromium is not installed\n");
        return;
    };
    // Two portals on two origins; only the first is listed.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    let listed = serve_page(portal_page(&api));
    let unlisted = serve_page(portal_page(&api));
    let origin = listed.clone();
    let tweak: ncr_tests::Tweak = Box::new(move |c| c.cors.allowed_origins = vec![origin]);
    let Some(app) = ncr_tests::spawn_on(backend, tweak, listener).await else { return };

    let seen = browse(browser.clone(), format!("{listed}/")).await;
    assert!(seen.get("error").is_none(), "{seen}");
    assert_eq!(seen["info"], 200, "{seen}");
    assert!(seen["info_request_id"].as_str().is_some_and(|id| !id.is_empty()), "X-Request-Id readable: {seen}");
    // The public pages: the ETag is readable, and sent back it gets 304.
    assert!(seen["info_tag"].as_str().is_some_and(|t| t.starts_with('"')), "ETag readable: {seen}");
    assert_eq!(seen["info_again"], 304, "{seen}");
    assert_eq!(seen["conditions"], 200, "{seen}");
    assert!(seen["conditions_sections"].as_u64() > Some(0), "{seen}");
    assert_eq!((seen["session"].as_u64(), seen["location"].as_str()), (Some(201), Some("/api/v1/citizen/application")));
    // A GET with a bearer token (preflighted): the citizen has no application yet, and the
    // page can read why.
    assert_eq!(
        (seen["application"].as_u64(), seen["application_says"].as_str()),
        (Some(404), Some("application_not_found")),
        "{seen}"
    );
    // The JSON POST with a bearer token went through (preflight included); its problem is readable.
    let payment = seen["payment"].as_u64().unwrap();
    assert!((400..500).contains(&payment) && seen["payment_code"].is_string(), "{seen}");
    assert!(seen["payment_request_id"].is_string(), "{seen}");

    // The same page on an unlisted origin reads nothing.
    let blocked = browse(browser, format!("{unlisted}/")).await;
    assert!(blocked["error"].as_str().is_some_and(|e| e.contains("Failed to fetch")), "{blocked}");
    drop(app);
}

#[actix_web::test]
async fn a_browser_on_another_origin_walks_the_public_pages_and_the_entry_sqlite() {
    a_browser_on_another_origin(ncr_tests::Backend::Sqlite).await;
}

#[actix_web::test]
async fn a_browser_on_another_origin_walks_the_public_pages_and_the_entry_postgres() {
    a_browser_on_another_origin(ncr_tests::Backend::Postgres).await;
}
