//! The foundation: health, problem+json for every kind of failure, request ids,
//! metrics, Swagger UI, the OpenAPI contract, pool exhaustion, and both databases.

use std::time::{Duration, Instant};

use ncr_tests::{Backend, db_test, json, spawn_with};

db_test!(ready_and_live_answer, |app| {
    let (status, body) = json(app.http.get(app.url("/health/ready")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(body["database"], app.backend.as_str());
    let live = app.http.get(app.url("/health/live")).send().await.unwrap();
    assert_eq!(live.status(), 200);
});

db_test!(unknown_paths_and_wrong_methods_are_problems, |app| {
    let res = app.http.get(app.url("/api/v1/nothing-here")).header("Accept-Language", "en").send().await.unwrap();
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let (status, body) = json(res).await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "route_not_found");
    assert_eq!(body["type"], "urn:ncr:problem:route_not_found");
    assert_eq!(body["request_id"], request_id.as_str());
    assert_eq!(body["instance"], "/api/v1/nothing-here");
    assert_eq!(body["detail"], "There is no such path in this API.");

    let res = app.http.delete(app.url("/health/ready")).send().await.unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "GET");
    let (_, body) = json(res).await;
    assert_eq!(body["code"], "method_not_allowed");
    assert_eq!(body["detail"], "این روش درخواست برای این نشانی مجاز نیست.", "Persian by default");
});

db_test!(request_ids_are_echoed_or_made, |app| {
    let res = app.http.get(app.url("/health/live")).header("X-Request-Id", "kiosk-42_abc").send().await.unwrap();
    assert_eq!(res.headers()["x-request-id"], "kiosk-42_abc");
    let res = app.http.get(app.url("/health/live")).header("X-Request-Id", "bad id with spaces").send().await.unwrap();
    assert_ne!(res.headers()["x-request-id"], "bad id with spaces");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
});

db_test!(metrics_count_requests_by_route, |app| {
    for _ in 0..3 {
        app.http.get(app.url("/health/live")).send().await.unwrap();
    }
    app.http.get(app.url("/nope")).send().await.unwrap();
    let text = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains(r#"ncr_http_requests_total{method="GET",route="/health/live",status="200"} 3"#), "{text}");
    assert!(text.contains(r#"route="unmatched",status="404""#));
    assert!(text.contains("ncr_http_request_duration_seconds_bucket"));
    assert!(text.contains("ncr_db_pool_max_connections"));
    // Each turn at the database (a connection taken, used on a blocking thread) is counted:
    // the readiness check reads the database in one.
    let turns = |text: &str| {
        text.lines().find_map(|l| l.strip_prefix("ncr_db_turns_total ")?.trim().parse::<u64>().ok()).expect("turns")
    };
    let before = turns(&text);
    assert_eq!(app.http.get(app.url("/health/ready")).send().await.unwrap().status(), 200);
    let text = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(turns(&text) > before, "{before} → {text}");
});

db_test!(swagger_ui_and_the_contract_are_served_offline, |app| {
    let res = app.http.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(res.status(), 302);
    let page = app.http.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"));
    assert!(!html.contains("https://"), "no asset comes from the internet");
    let init = app.http.get(app.url("/docs/swagger-initializer.js")).send().await.unwrap().text().await.unwrap();
    assert!(init.contains("/api/v1/openapi.json"));
    let bundle = app.http.get(app.url("/docs/swagger-ui-bundle.js")).send().await.unwrap();
    assert_eq!(bundle.status(), 200);
    let (status, doc) = json(app.http.get(app.url("/api/v1/openapi.json")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
});

db_test!(jwks_publishes_the_verification_key, |app| {
    let (status, body) = json(app.http.get(app.url("/.well-known/jwks.json")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(body["keys"][0]["crv"], "Ed25519");
    assert_eq!(body["keys"][0]["kid"], "test-s1");
});

/// A saturated pool answers 503 problem+json within the configured wait, not after 30 s.
async fn saturated_pool(backend: Backend) {
    let Some(app) = spawn_with(
        backend,
        Box::new(|c| {
            c.db.max_connections = 1;
            c.db.connection_timeout_ms = 300;
        }),
    )
    .await
    else {
        return;
    };
    let db = app.state.db.clone();
    let held = tokio::task::spawn_blocking(move || db.get().unwrap()).await.unwrap();
    let started = Instant::now();
    let res = app.http.get(app.url("/health/ready")).send().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(3), "answered in {:?}", started.elapsed());
    assert_eq!(res.headers()["retry-after"], "5");
    let (status, body) = json(res).await;
    assert_eq!(status, 503);
    assert_eq!(body["code"], "service_unavailable");
    drop(held);
    let res = app.http.get(app.url("/health/ready")).send().await.unwrap();
    assert_eq!(res.status(), 200, "recovers once a connection is free");
}

#[actix_web::test]
async fn saturated_pool_sqlite() {
    saturated_pool(Backend::Sqlite).await;
}

#[actix_web::test]
async fn saturated_pool_postgres() {
    saturated_pool(Backend::Postgres).await;
}

#[test]
fn both_migration_folders_have_the_same_migrations() {
    let pg = persistence::db::migration_names(Backend::Postgres);
    let sqlite = persistence::db::migration_names(Backend::Sqlite);
    assert!(!pg.is_empty());
    assert_eq!(pg, sqlite, "migrations/postgres and migrations/sqlite must have identical folder names");
}

/// The committed contract is exactly what the code generates.
#[test]
fn openapi_yaml_is_up_to_date() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi.yaml");
    let generated = api::server::openapi_yaml();
    // Only compared, never written: a test that rewrote the file would pass on drift.
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi.yaml differs from the code. Regenerate it with:\n    cargo run -q -p api --bin ncr -- openapi > openapi.yaml\n"
    );
}

/// utoipa names a component after its Rust type and silently keeps one of two types with
/// the same name, so a response would be documented with another type's schema. Every
/// type deriving `ToSchema` in `api` must have its own name (or an `as = …` alias).
#[test]
fn openapi_schema_names_are_unique() {
    let files = api_sources();
    let mut seen: std::collections::HashMap<String, String> = Default::default();
    let mut clashes = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            // Types declared by the schema-making macros (`page_type!`, `closed_set!`,
            // `wire_enum!`): the name is the first word after the doc comments.
            let t = line.trim_start();
            if ["page_type!(", "closed_set!(", "wire_enum!("].iter().any(|m| t.ends_with(m))
                && !t.starts_with("macro_rules!")
            {
                let name = lines[i + 1..]
                    .iter()
                    .map(|l| l.trim_start())
                    .find(|l| !l.starts_with("///"))
                    .and_then(|l| l.split(|c: char| !c.is_alphanumeric() && c != '_').next())
                    .unwrap_or_default()
                    .to_owned();
                let place = format!("{}:{}", file.display(), i + 1);
                if let Some(first) = seen.insert(name.clone(), place.clone()) {
                    clashes.push(format!("{name}: {first} and {place}"));
                }
                continue;
            }
            if !(line.trim_start().starts_with("#[derive(") && line.contains("ToSchema")) {
                continue;
            }
            // The item follows the derive, after any further attributes and doc comments.
            let mut alias = None;
            let item = lines[i + 1..].iter().find_map(|l| {
                let l = l.trim_start();
                if let Some(rest) = l.strip_prefix("#[schema(as = ") {
                    alias = rest.split([')', ',']).next().map(str::to_owned);
                }
                ["pub struct ", "pub enum ", "struct ", "enum "]
                    .iter()
                    .find_map(|k| l.strip_prefix(k))
                    .map(|rest| rest.split(|c: char| !c.is_alphanumeric() && c != '_').next().unwrap().to_owned())
            });
            // A macro's own `pub struct $name` is counted at each invocation instead.
            let Some(name) = alias.or(item).filter(|n| !n.is_empty()) else { continue };
            let place = format!("{}:{}", file.display(), i + 1);
            if let Some(first) = seen.insert(name.clone(), place.clone()) {
                clashes.push(format!("{name}: {first} and {place}"));
            }
        }
    }
    assert!(seen.len() > 50, "the scan found the schemas ({})", seen.len());
    assert!(clashes.is_empty(), "schema names used twice:\n{}", clashes.join("\n"));
}

/// Every Rust file of the `api` crate.
fn api_sources() -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../api/src"), &mut files);
    assert!(files.len() > 20, "the api's sources are found");
    files
}

/// Every code the API answers with has its own Persian and English message: the API's
/// own codes (`api::error::ApiCode`, whose message match has no catch-all arm) and every
/// business refusal (`domain::DomainError`). None answers «درخواست قابل انجام نیست.».
#[test]
fn every_code_the_api_answers_with_has_its_own_message() {
    let mut codes: Vec<(String, String, String)> = api::error::ApiCode::ALL
        .iter()
        .map(|c| {
            (c.as_str().to_owned(), c.message(domain::Lang::Fa).to_owned(), c.message(domain::Lang::En).to_owned())
        })
        .collect();
    codes.extend(
        domain::DomainError::every()
            .into_iter()
            .map(|e| (e.code().to_owned(), e.message(domain::Lang::Fa), e.message(domain::Lang::En))),
    );
    for code in ["username_taken", "fee_not_applicable", "token_missing", "slot_full"] {
        assert!(codes.iter().any(|(c, _, _)| c == code), "the walk finds {code}");
    }
    for (code, fa, en) in &codes {
        assert!(fa.chars().any(|c| ('\u{0600}'..='\u{06FF}').contains(&c)), "{code}: Persian text");
        assert_ne!(fa, "درخواست قابل انجام نیست.", "{code}: its own message");
        assert!(en.is_ascii() && en.ends_with('.'), "{code}: an English sentence: {en}");
    }
}
