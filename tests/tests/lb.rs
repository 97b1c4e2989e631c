//! Behind the load balancer (issue 17), one process at a time: the client address from a
//! trusted proxy and never from a direct client, limits shared through Redis (and what
//! happens when Redis is down), the USSD allow-list through the proxy, `/metrics`
//! protection, the drain, outbox leases, expiry and de-duplication, and jobs and
//! migrations racing. `tests/tests/cluster.rs` runs real processes behind nginx.

use std::sync::Arc;

use chrono::Duration;
use ncr_tests::{Backend, TestApp, db_test, spawn_with};
use persistence::outbox::NewMessage;
use serde_json::json;

const MOBILE: &str = "09145128136";

/// `GET /api/v1/offices/availability`-like rate-limited request (a public one), from a
/// client that says it comes through `xff`.
async fn public_get(app: &TestApp, xff: Option<&str>) -> u16 {
    let mut req = app.http.get(app.url("/api/v1/public/process-info"));
    if let Some(x) = xff {
        req = req.header("X-Forwarded-For", x);
    }
    req.send().await.expect("request").status().as_u16()
}

fn limit_of_3(c: &mut api::config::Config) {
    c.limits.per_ip_per_minute = 3;
}

db_test!(a_direct_client_cannot_choose_its_address, tweak = limit_of_3, |app| {
    // No trusted proxies (the default): X-Forwarded-For from the peer means nothing.
    for i in 0..3 {
        assert_eq!(public_get(&app, Some(&format!("198.51.100.{i}"))).await, 200);
    }
    assert_eq!(public_get(&app, Some("198.51.100.99")).await, 429, "a made-up address is not a new budget");
    assert_eq!(public_get(&app, None).await, 429);
});

fn behind_proxy(c: &mut api::config::Config) {
    c.limits.per_ip_per_minute = 3;
    c.trusted_proxies = vec!["127.0.0.0/8".into()];
    c.ussd.allowed_ips = vec!["198.51.100.20".into()];
}

db_test!(behind_a_trusted_proxy_each_client_has_its_own_budget, tweak = behind_proxy, |app| {
    // The proxy appends the address it saw; anything left of it came from the client.
    for _ in 0..3 {
        assert_eq!(public_get(&app, Some("203.0.113.1, 198.51.100.7")).await, 200);
    }
    assert_eq!(public_get(&app, Some("198.51.100.7")).await, 429, "one client over its limit is refused");
    assert_eq!(public_get(&app, Some("198.51.100.8")).await, 200, "another client is not");
    assert_eq!(public_get(&app, Some("198.51.100.7, 198.51.100.8")).await, 200, "the right-most hop counts");

    // The audit log keeps the client's address, not the proxy's.
    let res = app
        .http
        .post(app.url("/api/v1/staff/sessions"))
        .header("X-Forwarded-For", "198.51.100.44")
        .json(&json!({"username": "admin", "password": ncr_tests::ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let admin: serde_json::Value = res.json().await.unwrap();
    let admin = admin["token"].as_str().unwrap().to_owned();
    let res = app
        .http
        .post(app.url("/api/v1/admin/staff"))
        .bearer_auth(&admin)
        .header("X-Forwarded-For", "198.51.100.45")
        .json(&json!({"username": "op.audit", "password": "operator-password-1", "role": "operator", "office_id": api::seed::offices::MARAGHEH_OFFICE_ID}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let (_, page) = app.get("/api/v1/admin/audit-log?actor_kind=admin", Some(&admin)).await;
    let items = page["items"].as_array().unwrap();
    assert!(!items.is_empty(), "{page}");
    assert_eq!(items[0]["client_ip"], "198.51.100.45", "{page}");

    // The USSD gateway is recognised through the proxy; the proxy itself and others are not.
    let dial = |xff: Option<&'static str>| {
        let app = &app;
        async move {
            let mut req = app.http.post(app.url("/api/v1/ussd")).form(&[
                ("sessionId", "s1"),
                ("phoneNumber", "+989145128136"),
                ("serviceCode", "*4*6090#"),
                ("text", ""),
            ]);
            if let Some(x) = xff {
                req = req.header("X-Forwarded-For", x);
            }
            req.send().await.unwrap().status().as_u16()
        }
    };
    assert_eq!(dial(Some("198.51.100.20")).await, 200, "the gateway through the proxy");
    assert_eq!(dial(Some("198.51.100.21")).await, 403, "a stranger through the proxy");
    assert_eq!(dial(Some("198.51.100.20, 198.51.100.21")).await, 403, "a stranger claiming to be the gateway");
    assert_eq!(dial(None).await, 403, "the proxy's own address is not the gateway");
});

/// The Redis the tests use (`TEST_REDIS_URL`, default `redis://127.0.0.1:6379`), or `None`
/// when it is not running (a failure under CI).
fn test_redis() -> Option<String> {
    let url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let addr = url.trim_start_matches("redis://").split('/').next().unwrap_or("127.0.0.1:6379").to_owned();
    let up = addr
        .parse::<std::net::SocketAddr>()
        .ok()
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, std::time::Duration::from_secs(1)).is_ok());
    if up {
        return Some(url);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("Redis tests cannot run under CI: nothing answers at {url}");
    }
    eprintln!("\n!!! SKIPPED a Redis test: nothing answers at {url}\n");
    None
}

#[actix_web::test]
async fn limits_are_counted_once_for_every_instance_sharing_redis() {
    let Some(url) = test_redis() else { return };
    let prefix = format!("ncr-test-{}", uuid::Uuid::new_v4().simple());
    let shared = |url: String, prefix: String| -> ncr_tests::Tweak {
        Box::new(move |c: &mut api::config::Config| {
            c.limits.per_ip_per_minute = 4;
            c.limits.redis_url = Some(url);
            c.limits.redis_key_prefix = prefix;
        })
    };
    let a = spawn_with(Backend::Sqlite, shared(url.clone(), prefix.clone())).await.unwrap();
    let b = spawn_with(Backend::Sqlite, shared(url.clone(), prefix.clone())).await.unwrap();
    assert!(a.state.limiter.is_shared());
    // A staff sign-in counts toward the address's quota too.
    let admin = a.admin_token().await;
    assert_eq!(public_get(&b, None).await, 200);
    assert_eq!(public_get(&a, None).await, 200);
    assert_eq!(public_get(&b, None).await, 200);
    // Four in all, two on each instance: the fifth is refused wherever it lands.
    let res = b.http.get(b.url("/api/v1/public/process-info")).send().await.unwrap();
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=15).contains(&retry), "one request back every 15 s: {retry}");
    assert_eq!(public_get(&a, None).await, 429);

    // Kiosk quotas too: 2 a minute for this client, then none.
    let (status, body) = a
        .post(
            "/api/v1/admin/kiosk-clients",
            Some(&admin),
            &json!({"client_id": "kiosk-shared", "name": "k", "kind": "kiosk", "rate_per_minute": 2}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let secret = body["client_secret"].as_str().unwrap().to_owned();
    let token = |app: &TestApp| {
        let (http, url, secret) = (app.http.clone(), app.url("/api/v1/oauth/token"), secret.clone());
        async move {
            let res = http
                .post(url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", "kiosk-shared"),
                    ("client_secret", &secret),
                ])
                .send()
                .await
                .unwrap();
            res.json::<serde_json::Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
        }
    };
    // (The two test instances have separate databases and the client exists on `a`; that
    // its quota is a Redis counter is what matters here.)
    let t = token(&a).await;
    let kiosk = |app: &TestApp| {
        let (http, url, t) = (app.http.clone(), app.url("/api/v1/kiosk/applications"), t.clone());
        async move {
            http.post(url)
                .bearer_auth(t)
                .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
                .json(&json!({}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_ne!(kiosk(&a).await, 429);
    assert_ne!(kiosk(&a).await, 429);
    assert_eq!(kiosk(&a).await, 429, "the client's own quota");
    let before = redis_keys(&url, &prefix);
    assert!(before.iter().any(|k| k.contains(":rl:client:kiosk-shared")), "{before:?}");
}

/// Keys under a prefix (the counters really are in Redis).
fn redis_keys(url: &str, prefix: &str) -> Vec<String> {
    let out = std::process::Command::new("redis-cli")
        .args(["-u", url, "--scan", "--pattern", &format!("{prefix}:*")])
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

fn redis_down(c: &mut api::config::Config) {
    c.limits.per_ip_per_minute = 3;
    // Nothing listens on port 9 (discard) here: the shared store is down.
    c.limits.redis_url = Some("redis://127.0.0.1:9/0".into());
}

db_test!(with_redis_down_each_instance_counts_alone_and_nothing_fails, tweak = redis_down, |app| {
    let started = std::time::Instant::now();
    for _ in 0..3 {
        assert_eq!(public_get(&app, None).await, 200, "requests are served while Redis is down");
    }
    assert_eq!(public_get(&app, None).await, 429, "and still limited, by this instance alone");
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "no request waits long for a dead Redis");
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(r#"ncr_events_total{kind="rate_limit_store",outcome="unavailable"}"#),
        "the outage is counted: {metrics}"
    );
});

fn metrics_token(c: &mut api::config::Config) {
    c.metrics.token = Some("scrape-token-for-tests".into());
}

db_test!(metrics_behind_a_token, tweak = metrics_token, |app| {
    let res = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let res = app.http.get(app.url("/metrics")).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(res.status(), 401);
    let res = app.http.get(app.url("/metrics")).bearer_auth("scrape-token-for-tests").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("ncr_http_requests_total"));
});

fn metrics_elsewhere(c: &mut api::config::Config) {
    c.metrics.bind = Some("127.0.0.1:0".into());
}

db_test!(metrics_on_their_own_address_are_not_on_the_api_address, tweak = metrics_elsewhere, |app| {
    assert_eq!(app.http.get(app.url("/metrics")).send().await.unwrap().status(), 404);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = api::server::serve_metrics(app.state.clone(), listener).unwrap();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    let res = app.http.get(format!("http://{addr}/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(app.http.get(format!("http://{addr}/api/v1/public/process-info")).send().await.unwrap().status(), 404);
    handle.stop(false).await;
});

// README, "Rolling restarts": a draining instance is not ready, refuses safe requests
// unprocessed with 503 (nginx retries them elsewhere and counts the instance failed, so it
// stops sending new connections before the listener closes), still serves requests that
// change something, and closes every connection after its answer.
db_test!(a_draining_instance_is_not_ready_refuses_gets_and_closes_every_connection, |app| {
    let res = app.http.get(app.url("/health/ready")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_ne!(res.headers().get("connection").map(|v| v.to_str().unwrap()), Some("close"));
    let res = app.http.get(app.url("/api/v1/public/process-info")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    app.state.draining.store(true, std::sync::atomic::Ordering::SeqCst);
    let res = app.http.get(app.url("/health/ready")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["connection"], "close");
    let res = app.http.get(app.url("/api/v1/public/process-info")).send().await.unwrap();
    assert_eq!(res.status(), 503, "a GET is refused during the drain, for the proxy to retry elsewhere");
    assert_eq!(res.headers()["connection"], "close");
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let res = app.http.head(app.url("/api/v1/public/process-info")).send().await.unwrap();
    assert_eq!(res.status(), 503, "HEAD too");
    let res = app.http.get(app.url("/health/live")).send().await.unwrap();
    assert_eq!(res.status(), 200, "still alive while draining");
    let res = app.http.post(app.url("/api/v1/citizen/sessions")).json(&serde_json::json!({})).send().await.unwrap();
    assert_eq!(res.status(), 422, "a POST is still served (and answered on its merits) during the drain");
    assert_eq!(res.headers()["connection"], "close");
    assert_eq!(api::jobs::deliver_outbox(&app.state).await.unwrap(), 0, "no new outbox work");
});

async fn enqueue(app: &TestApp, template: &'static str, params: serde_json::Value) {
    let (db, pii, now) = (app.state.db.clone(), app.state.pii.clone(), app.state.now());
    tokio::task::spawn_blocking(move || {
        let message = NewMessage {
            channel: "sms",
            recipient: MOBILE,
            recipient_hint: domain::mask::mobile(MOBILE),
            template,
            params,
            lang: "fa",
            application_id: None,
            dedupe_key: None,
        };
        persistence::outbox::enqueue(&mut app_conn(&db), &pii, message, now).unwrap()
    })
    .await
    .unwrap();
}

fn app_conn(db: &persistence::Db) -> persistence::PooledConn {
    db.get().unwrap()
}

async fn outbox(app: &TestApp) -> Vec<persistence::outbox::OutboxRow> {
    let db = app.state.db.clone();
    tokio::task::spawn_blocking(move || {
        persistence::outbox::list(&mut app_conn(&db), &Default::default(), 1000).unwrap()
    })
    .await
    .unwrap()
}

async fn sandbox_texts(app: &TestApp) -> i64 {
    let db = app.state.db.clone();
    tokio::task::spawn_blocking(move || {
        use diesel::prelude::*;
        persistence::schema::sandbox_sms::table.count().get_result::<i64>(&mut app_conn(&db)).unwrap()
    })
    .await
    .unwrap()
}

db_test!(a_reset_code_is_never_delivered_after_it_expires, |app| {
    enqueue(&app, "efolder_reset_code", json!({"code": "123456", "username": "kp12345678"})).await;
    enqueue(&app, "tracking_code_recovery", json!({"tracking_code": "4973201675"})).await;
    // The providers were down for longer than the code lives.
    app.clock.advance(Duration::minutes(6));
    api::jobs::deliver_outbox(&app.state).await.unwrap();
    let rows = outbox(&app).await;
    let code = rows.iter().find(|r| r.template == "efolder_reset_code").unwrap();
    assert_eq!(code.status, "failed_permanent", "{code:?}");
    assert_eq!(code.last_error.as_deref(), Some("expired before delivery"));
    assert_eq!(code.params_enc, "", "the undelivered code is not kept");
    let other = rows.iter().find(|r| r.template == "tracking_code_recovery").unwrap();
    assert_eq!(other.status, "sent", "messages without a time limit are still delivered");
    assert_eq!(sandbox_texts(&app).await, 1);
});

db_test!(a_dead_workers_claims_are_free_within_the_lease_and_resent_once, |app| {
    enqueue(&app, "tracking_code_recovery", json!({"tracking_code": "4973201675"})).await;
    // A worker claimed the message and died before recording anything.
    let (db, now) = (app.state.db.clone(), app.state.now());
    let claimed = tokio::task::spawn_blocking(move || {
        persistence::outbox::claim_due(&mut app_conn(&db), now, now + domain::delivery::CLAIM_LEASE, 10, "dead-worker")
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(claimed.len(), 1);
    // It had handed the message to the provider already.
    let text = "resent text";
    app.state
        .sms
        .send_once(&domain::ids::Mobile::parse(MOBILE).unwrap(), text, &api::delivery::local_id(&claimed[0].id))
        .await
        .unwrap();
    assert_eq!(api::jobs::deliver_outbox(&app.state).await.unwrap(), 0, "claimed by another worker");
    app.clock.advance(domain::delivery::CLAIM_LEASE + Duration::seconds(1));
    assert_eq!(api::jobs::deliver_outbox(&app.state).await.unwrap(), 1, "free again after the 30 s lease");
    let rows = outbox(&app).await;
    assert_eq!(rows[0].status, "sent");
    assert_eq!(sandbox_texts(&app).await, 1, "the provider de-duplicates by the message's id: one text");
    // The dead worker's late bookkeeping changes nothing.
    let (db, now, row) = (app.state.db.clone(), app.state.now(), claimed[0].clone());
    let kept = tokio::task::spawn_blocking(move || {
        let d = persistence::outbox::Delivered {
            status: domain::delivery::Status::FailedTemporary,
            attempts: 1,
            retry_at: None,
            provider_id: None,
            error: None,
        };
        persistence::outbox::finish(&mut app_conn(&db), &row, &d, now).unwrap()
    })
    .await
    .unwrap();
    assert!(!kept);
});

db_test!(a_live_worker_renews_its_claim, |app| {
    enqueue(&app, "tracking_code_recovery", json!({"tracking_code": "4973201675"})).await;
    let (db, now) = (app.state.db.clone(), app.state.now());
    let lease = now + domain::delivery::CLAIM_LEASE;
    let claimed = tokio::task::spawn_blocking(move || {
        let mut conn = app_conn(&db);
        let rows = persistence::outbox::claim_due(&mut conn, now, lease, 10, "live-worker").unwrap();
        let renewed =
            persistence::outbox::renew_claim(&mut conn, "live-worker", lease + Duration::seconds(25)).unwrap();
        assert_eq!(renewed, 1);
        assert_eq!(persistence::outbox::renew_claim(&mut conn, "another", lease + Duration::minutes(9)).unwrap(), 0);
        rows
    })
    .await
    .unwrap();
    assert_eq!(claimed.len(), 1);
    // Past the first lease, within the renewed one: still the live worker's.
    app.clock.advance(domain::delivery::CLAIM_LEASE + Duration::seconds(10));
    assert_eq!(api::jobs::deliver_outbox(&app.state).await.unwrap(), 0);
    app.clock.advance(Duration::seconds(20));
    assert_eq!(api::jobs::deliver_outbox(&app.state).await.unwrap(), 1);
});

db_test!(instances_materialising_the_same_days_at_once_do_not_fail, |app| {
    // Issue 17: two of three instances logged duplicate `slots_pkey` failures.
    let (db, today) = (app.state.db.clone(), domain::calendar::tehran_date(app.state.now()));
    let far = today + Duration::days(400);
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let db = db.clone();
            tokio::task::spawn_blocking(move || {
                persistence::offices::materialize(&mut app_conn(&db), None, far, far + Duration::days(3))
            })
        })
        .collect();
    let mut added = 0;
    for run in runs {
        added += run.await.unwrap().expect("no duplicate-key failure");
    }
    let again = tokio::task::spawn_blocking(move || {
        persistence::offices::materialize(&mut app_conn(&db), None, far, far + Duration::days(3)).unwrap()
    })
    .await
    .unwrap();
    assert!(added > 0);
    assert_eq!(again, 0, "every slot exists once");
});

#[actix_web::test]
async fn instances_starting_together_on_an_empty_database_all_start() {
    let Some((url, name)) = ncr_tests::empty_postgres().await else { return };
    let starts: Vec<_> = (0..3)
        .map(|_| {
            let mut config = ncr_tests::test_config(url.clone());
            config.bootstrap_admin_password = None;
            tokio::task::spawn_blocking(move || {
                api::build_state(config, api::Environment::default()).map(|s| Arc::new(s).db.ready())
            })
        })
        .collect();
    for start in starts {
        start.await.unwrap().expect("started").expect("ready");
    }
    ncr_tests::drop_postgres(&name).await;
}
