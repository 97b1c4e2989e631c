//! The deployment of issue 17, for real: three `ncr` processes behind nginx (Debian's
//! `nginx-light`, as `deploy/nginx.conf` but on local ports) on one PostgreSQL database,
//! sharing their request-rate counters in Redis, and PgBouncer (Debian's `pgbouncer`) in
//! transaction mode. Each part asserts what the "Done when" lists:
//!
//! 1. three instances started at once on an empty database all become ready;
//! 2. one client over its limit through nginx is refused while another is not, the limit
//!    is counted once for the three instances (and a kiosk client's too), a spoofed
//!    `X-Forwarded-For` changes nothing, and the USSD allow-list admits the gateway through
//!    the proxy and refuses others;
//! 3. the rush through nginx: exactly N winners, counters equal bookings;
//! 4. concurrent identical Idempotency-Key POSTs: one effect, no 500;
//! 5. `kill -9` of one instance mid-load: no acknowledged journey lost, its outbox claims
//!    free within the lease, no message delivered twice;
//! 6. a rolling restart of every instance under journey load: 0 failed requests;
//! 7. the journey through PgBouncer in transaction mode: 0 errors.
//!
//! Without nginx, pgbouncer, Redis or PostgreSQL a local run prints SKIPPED; under
//! `CI=true` it fails (`.ci/run` installs nginx-light and pgbouncer).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diesel::RunQueryDsl;
use ncr_tests::load::{Options, Scenario, run};
use serde_json::{Value, json};

const ADMIN_PASSWORD: &str = "cluster-admin-password";
const GATEWAY: &str = "127.0.0.20";

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A program from the system, or `None` (SKIPPED locally, a failure under CI).
fn program(name: &str, package: &str) -> Option<PathBuf> {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return Some(p);
        }
    }
    if ci() {
        panic!("the cluster test needs `{name}` (Debian package {package}); .ci/run installs it");
    }
    eprintln!("\n!!! SKIPPED the cluster test: `{name}` is not installed (apt-get install {package})\n");
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// One `ncr serve` process.
struct Instance {
    port: u16,
    child: Option<Child>,
}

struct Cluster {
    dir: PathBuf,
    db_url: String,
    db_name: String,
    config: PathBuf,
    redis_url: String,
    redis_prefix: String,
    nginx_port: u16,
    nginx: Option<Child>,
    instances: Vec<Instance>,
    per_ip_per_minute: u32,
    others: Vec<Child>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in &mut self.instances {
            if let Some(c) = i.child.as_mut() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        // nginx's master stops its workers on SIGTERM; a SIGKILL would orphan them.
        if let Some(c) = self.nginx.as_mut() {
            let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
            let _ = c.wait();
        }
        for c in self.others.iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Ok(mut admin) = diesel::pg::PgConnection::establish_admin() {
            let _ =
                diesel::sql_query(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db_name)).execute(&mut admin);
        }
        // The servers' own logs join the run's logs, so the personal-data scan reads them too.
        if let Some(logs) = std::env::var_os("NCR_TEST_LOG_DIR").filter(|d| !d.is_empty()) {
            let logs = PathBuf::from(logs);
            let _ = std::fs::create_dir_all(&logs);
            for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with("ncr") && name.ends_with(".log") {
                    let _ = std::fs::copy(entry.path(), logs.join(format!("cluster-{}-{name}", std::process::id())));
                }
            }
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("cluster logs kept in {}", self.dir.display());
        }
    }
}

/// The admin connection of the test PostgreSQL.
trait EstablishAdmin: Sized {
    fn establish_admin() -> Result<Self, diesel::ConnectionError>;
}

impl EstablishAdmin for diesel::pg::PgConnection {
    fn establish_admin() -> Result<Self, diesel::ConnectionError> {
        use diesel::Connection;
        let url =
            std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let url = if url.contains("sslmode") { url } else { format!("{url}?sslmode=disable") };
        diesel::pg::PgConnection::establish(&url)
    }
}

impl Cluster {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.nginx_port)
    }

    fn log(&self, name: &str) -> std::fs::File {
        std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join(name)).unwrap()
    }

    fn command(&self, extra: &[(&str, String)]) -> Command {
        let mut cmd = Command::new(ncr_tests::ncr_binary());
        // The test runner's own NCR_* variables are not the server's settings.
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("NCR_")) {
            cmd.env_remove(k);
        }
        cmd.arg("--config")
            .arg(&self.config)
            .env("DATABASE_URL", &self.db_url)
            .env("NCR_PUBLIC_URL", self.base())
            .env("NCR_DEMO_DATA", "never")
            .env("NCR_PROFILE", "development")
            .env("NCR_LOG_LEVEL", "warn")
            .env("NCR_WORKERS", "2")
            .env("NCR_DB__MAX_CONNECTIONS", "6")
            .env("NCR_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("NCR_TRUSTED_PROXIES", "[\"127.0.0.1\"]")
            .env("NCR_USSD__ALLOWED_IPS", format!("[\"{GATEWAY}\"]"))
            .env("NCR_LIMITS__REDIS_URL", &self.redis_url)
            .env("NCR_LIMITS__REDIS_KEY_PREFIX", &self.redis_prefix)
            .env("NCR_LIMITS__PER_IP_PER_MINUTE", self.per_ip_per_minute.to_string())
            .env("NCR_JOBS__INTERVAL_SECONDS", "1")
            .env("NCR_OUTBOX__BATCH_SIZE", "100")
            .env("NCR_OUTBOX__PARALLEL_SENDS", "2")
            .env("NCR_SHUTDOWN__DRAIN_SECONDS", "3")
            .env("NCR_SHUTDOWN__GRACE_SECONDS", "10")
            .stdin(Stdio::null());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd
    }

    fn start(&mut self, i: usize) {
        let port = self.instances[i].port;
        let out = self.log(&format!("ncr{i}.log"));
        let child = self
            .command(&[("NCR_BIND", format!("127.0.0.1:{port}"))])
            .arg("serve")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start ncr");
        self.instances[i].child = Some(child);
    }

    fn pid(&self, i: usize) -> u32 {
        self.instances[i].child.as_ref().expect("running").id()
    }

    /// SIGTERM, and wait for the exit (the drain, then the running requests).
    fn stop(&mut self, i: usize) {
        let mut child = self.instances[i].child.take().expect("running");
        Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "instance {i} exits cleanly after SIGTERM: {status}");
    }

    fn kill9(&mut self, i: usize) {
        let mut child = self.instances[i].child.take().expect("running");
        child.kill().unwrap();
        let _ = child.wait();
    }

    async fn wait_ready(&mut self, i: usize) {
        let url = format!("http://127.0.0.1:{}/health/ready", self.instances[i].port);
        let deadline = Instant::now() + Duration::from_secs(60);
        let http = reqwest::Client::new();
        loop {
            if let Some(status) = self.instances[i].child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                let log = std::fs::read_to_string(self.dir.join(format!("ncr{i}.log"))).unwrap_or_default();
                panic!("instance {i} exited ({status}) before it was ready:\n{log}");
            }
            if http.get(&url).send().await.is_ok_and(|r| r.status() == 200) {
                return;
            }
            assert!(Instant::now() < deadline, "instance {i} not ready within 60 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn start_nginx(&mut self, nginx: &Path) {
        let d = self.dir.display();
        let servers: String = self
            .instances
            .iter()
            .map(|i| format!("        server 127.0.0.1:{} max_fails=3 fail_timeout=2s;\n", i.port))
            .collect();
        // As deploy/nginx.conf, on local ports, with the drain of the test (3 s) outliving
        // nginx's idle upstream connections (1 s).
        let conf = format!(
            "{user}worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log warn;\ndaemon off;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n    access_log off;\n    client_body_temp_path {d}/nginx-body;\n    proxy_temp_path {d}/nginx-proxy;\n\
                 fastcgi_temp_path {d}/nginx-fcgi;\n    uwsgi_temp_path {d}/nginx-uwsgi;\n    scgi_temp_path {d}/nginx-scgi;\n\
                 upstream ncr {{\n        least_conn;\n        zone ncr 64k;\n{servers}        keepalive 32;\n        keepalive_timeout 1s;\n    }}\n\
                 server {{\n        listen 127.0.0.1:{port};\n        client_max_body_size 1m;\n\
                     location = /metrics {{ return 404; }}\n\
                     location / {{\n            proxy_pass http://ncr;\n            proxy_http_version 1.1;\n\
                         proxy_set_header Connection \"\";\n            proxy_set_header Host $http_host;\n\
                         proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
                         proxy_set_header X-Request-Id $request_id;\n            proxy_next_upstream error timeout http_503;\n\
                         proxy_next_upstream_tries 3;\n            proxy_connect_timeout 2s;\n        }}\n    }}\n}}\n",
            user = if is_root() { "user root;\n" } else { "" },
            port = self.nginx_port,
        );
        let path = self.dir.join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        let out = self.log("nginx.out");
        let child = Command::new(nginx)
            .arg("-c")
            .arg(&path)
            .arg("-p")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start nginx");
        self.nginx = Some(child);
    }
}

/// A client whose connections come from `source` (any 127.x address is this machine): to
/// nginx it is a different client.
fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source.parse::<IpAddr>().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn status_of(req: reqwest::RequestBuilder) -> u16 {
    req.send().await.expect("request").status().as_u16()
}

async fn wait_http(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while reqwest::get(url).await.is_err() {
        assert!(Instant::now() < deadline, "{url} does not answer");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn count(db: &persistence::Db, sql: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = db.get().unwrap();
    diesel::sql_query(sql).get_result::<N>(&mut conn).unwrap().n
}

fn options(base: &str, scenario: Scenario, first_citizen: u64) -> Options {
    let mut codes: Vec<String> = api::seed::offices::OFFICES.iter().map(|o| o.city_code.to_owned()).collect();
    codes.sort();
    codes.dedup();
    Options {
        base: base.to_owned(),
        scenario,
        concurrency: 4,
        duration: None,
        count: None,
        warmup: None,
        first_citizen,
        today: domain::calendar::tehran_date(chrono::Utc::now()),
        horizon_days: 20,
        city_codes: codes,
        seats: 8,
        server_pid: None,
    }
}

async fn admin_token(http: &reqwest::Client, base: &str) -> String {
    let res = http
        .post(format!("{base}/api/v1/staff/sessions"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    res.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned()
}

/// A kiosk client allowed `rate` calls a minute; returns a token.
async fn kiosk_token(http: &reqwest::Client, base: &str, admin: &str, id: &str, rate: u32) -> String {
    let res = http
        .post(format!("{base}/api/v1/admin/kiosk-clients"))
        .bearer_auth(admin)
        .json(&json!({"client_id": id, "name": id, "kind": "kiosk", "rate_per_minute": rate}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let secret = res.json::<Value>().await.unwrap()["client_secret"].as_str().unwrap().to_owned();
    let res = http
        .post(format!("{base}/api/v1/oauth/token"))
        .form(&[("grant_type", "client_credentials"), ("client_id", id), ("client_secret", &secret)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_behind_nginx() {
    let Some(nginx) = program("nginx", "nginx-light") else { return };
    let Some(pgbouncer) = program("pgbouncer", "pgbouncer") else { return };
    let redis_url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    if std::net::TcpStream::connect("127.0.0.1:6379").is_err() && redis_url.contains("127.0.0.1:6379") {
        assert!(!ci(), "the cluster test needs Redis at {redis_url}");
        eprintln!("\n!!! SKIPPED the cluster test: no Redis at {redis_url}\n");
        return;
    }
    let Some((db_url, db_name)) = ncr_tests::empty_postgres().await else { return };
    let dir = std::env::temp_dir().join(format!("ncr-cluster-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let keys = Command::new(ncr_tests::ncr_binary()).arg("keygen").output().expect("ncr keygen");
    assert!(keys.status.success());
    let config = dir.join("keys.toml");
    std::fs::write(&config, &keys.stdout).unwrap();
    let mut cluster = Cluster {
        dir: dir.clone(),
        db_url: db_url.clone(),
        db_name,
        config,
        redis_url,
        redis_prefix: format!("ncr-cluster-{}", uuid::Uuid::new_v4().simple()),
        nginx_port: free_port(),
        nginx: None,
        instances: (0..3).map(|_| Instance { port: free_port(), child: None }).collect(),
        per_ip_per_minute: 30,
        others: Vec::new(),
    };

    // 1. Three instances at once on an empty database: the first migrates, the others
    //    wait for its advisory lock; all become ready.
    for i in 0..3 {
        cluster.start(i);
    }
    for i in 0..3 {
        cluster.wait_ready(i).await;
    }
    for i in 0..3 {
        let log = std::fs::read_to_string(dir.join(format!("ncr{i}.log"))).unwrap();
        assert!(!log.contains("duplicate key"), "instance {i}: {log}");
    }

    // The data: demo offices with their slots and the load-test citizens, loaded with the
    // cluster's own keys (the state is also this test's handle on the database and keys).
    #[derive(serde::Deserialize)]
    struct KeysFile {
        keys: api::config::KeysConfig,
    }
    let file: KeysFile = toml::from_str(&std::fs::read_to_string(&cluster.config).unwrap()).expect("ncr keygen output");
    let mut config = ncr_tests::test_config(db_url.clone());
    config.keys = file.keys;
    config.bootstrap_admin_password = None;
    let state = tokio::task::spawn_blocking(move || {
        let state = api::build_state(config, api::Environment::default()).expect("state");
        api::seed::seed_demo(&state).expect("demo data");
        api::seed::loadtest::seed_citizens(&state, 4000).expect("citizens");
        state
    })
    .await
    .unwrap();
    let db = state.db.clone();

    cluster.start_nginx(&nginx);
    let base = cluster.base();
    wait_http(&format!("{base}/health/live")).await;

    // 2. Limits through nginx (30 a minute per client address, counted in Redis).
    let a = client_from("127.0.0.2");
    let b = client_from("127.0.0.3");
    let page = format!("{base}/api/v1/public/process-info");
    let mut admitted = 0;
    for _ in 0..45 {
        if status_of(a.get(&page)).await == 200 {
            admitted += 1;
        }
    }
    // Spread over three instances by least_conn: counted alone, 45 would pass.
    assert!((30..=31).contains(&admitted), "one client through nginx: {admitted} of 45 admitted at 30/min");
    assert_eq!(status_of(a.get(&page)).await, 429, "over its limit");
    for _ in 0..5 {
        assert_eq!(status_of(b.get(&page)).await, 200, "another client is not refused");
    }
    assert_eq!(
        status_of(a.get(&page).header("X-Forwarded-For", "127.0.0.99")).await,
        429,
        "a made-up X-Forwarded-For through nginx changes nothing"
    );
    // Straight to an instance, the peer is not a trusted proxy: its header means nothing.
    let direct = client_from("127.0.0.4");
    let direct_page = format!("http://127.0.0.1:{}/api/v1/public/process-info", cluster.instances[0].port);
    let mut direct_admitted = 0;
    for i in 0..32 {
        let spoof = format!("10.9.{}.{}", i / 200, i % 200);
        if status_of(direct.get(&direct_page).header("X-Forwarded-For", spoof)).await == 200 {
            direct_admitted += 1;
        }
    }
    assert!((30..=31).contains(&direct_admitted), "a direct client cannot pick its address: {direct_admitted}");
    // The USSD gateway through the proxy is admitted; another address is not.
    let ussd = |c: &reqwest::Client| {
        c.post(format!("{base}/api/v1/ussd")).form(&[
            ("sessionId", "s1"),
            ("phoneNumber", "+989145128136"),
            ("serviceCode", "*4*6090#"),
            ("text", ""),
        ])
    };
    assert_eq!(status_of(ussd(&client_from(GATEWAY))).await, 200, "the gateway through nginx");
    assert_eq!(status_of(ussd(&client_from("127.0.0.21"))).await, 403, "a stranger through nginx");
    assert_eq!(
        status_of(ussd(&client_from("127.0.0.21")).header("X-Forwarded-For", GATEWAY)).await,
        403,
        "a stranger claiming to be the gateway"
    );
    // A kiosk client's quota (10 a minute) is counted once too.
    let admin_client = client_from("127.0.0.5");
    let admin = admin_token(&admin_client, &base).await;
    let kiosk = kiosk_token(&admin_client, &base, &admin, "kiosk-quota", 10).await;
    let mut kiosk_admitted = 0;
    for _ in 0..20 {
        let s = status_of(
            admin_client
                .post(format!("{base}/api/v1/kiosk/applications"))
                .bearer_auth(&kiosk)
                .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
                .json(&json!({})),
        )
        .await;
        if s != 429 {
            kiosk_admitted += 1;
        }
    }
    assert!((10..=11).contains(&kiosk_admitted), "kiosk quota 10/min through nginx: {kiosk_admitted} of 20");

    // The rest runs journeys from one address: restart every instance with a high limit.
    cluster.per_ip_per_minute = 1_000_000;
    for i in 0..3 {
        tokio::task::block_in_place(|| cluster.stop(i));
        cluster.start(i);
    }
    for i in 0..3 {
        cluster.wait_ready(i).await;
    }

    // 3. The rush through nginx: exactly 8 winners of 40; the counter equals the bookings.
    let mut rush = options(&base, Scenario::Rush, 0);
    rush.count = Some(40);
    let report = run(&rush, Some(db.clone())).await;
    let check = report.rush.clone().expect("rush check");
    assert_eq!(report.server_errors(), 0, "{}", report.table());
    assert_eq!(check.winners, 8, "{}", report.table());
    assert!(check.ok, "bookings in the database equal the winners and the slot's counter: {}", report.table());

    // 4. Nine identical kiosk POSTs with one key at once: one effect, no 500.
    let http = reqwest::Client::new();
    let kiosk = kiosk_token(&http, &base, &admin_token(&http, &base).await, "kiosk-race", 1000).await;
    let person = api::seed::loadtest::citizen(3999).unwrap();
    // The first open day from three days on (today + 3 may be a Friday or a holiday,
    // depending on when the test runs).
    let today = domain::calendar::tehran_date(chrono::Utc::now());
    let date = ncr_tests::journey::open_date_in(&db, api::seed::offices::MARAGHEH_OFFICE_ID, today, 3);
    let p = ncr_tests::journey::Person {
        national_id: person.national_id.clone(),
        serial: person.serial.clone(),
        gender: person.gender.clone(),
        birth_date: person.birth_date_jalali.clone(),
        mother_name: person.mother_name.clone(),
        mobile: person.mobile.clone().unwrap(),
    };
    let body = json!({
        "national_id": p.national_id,
        "serial": p.serial,
        "personal_info": p.personal_info(),
        "special_needs": {"can_leave_home": true, "can_climb_stairs": true, "pupils_visible": true, "fingers_intact": true},
        "appointment": {"office_id": api::seed::offices::MARAGHEH_OFFICE_ID, "date": date, "shift": "morning"},
    });
    let before = count(&db, "SELECT count(*) AS n FROM applications");
    let posts = (0..9).map(|_| {
        http.post(format!("{base}/api/v1/kiosk/applications"))
            .bearer_auth(&kiosk)
            .header("Idempotency-Key", "cluster-race-1")
            .json(&body)
            .send()
    });
    let answers = futures_util::future::join_all(posts).await;
    let mut statuses = Vec::new();
    for a in answers {
        let a = a.unwrap();
        statuses.push(a.status().as_u16());
    }
    assert!(statuses.iter().all(|s| *s == 201 || *s == 409), "no 500: {statuses:?}");
    assert!(statuses.contains(&201), "{statuses:?}");
    assert_eq!(count(&db, "SELECT count(*) AS n FROM applications"), before + 1, "one effect: {statuses:?}");

    // 5. kill -9 of one instance while journeys run and the outbox drains a backlog.
    let pii = state.pii.clone();
    let now = chrono::Utc::now();
    let backlog = 1200;
    {
        let (db, pii) = (db.clone(), pii.clone());
        tokio::task::spawn_blocking(move || {
            let mut conn = db.get().unwrap();
            persistence::write_tx(&mut conn, |conn| {
                for i in 0..backlog {
                    let m = persistence::outbox::NewMessage {
                        channel: "sms",
                        recipient: "09145128136",
                        recipient_hint: "0914***8136".into(),
                        template: "tracking_code_recovery",
                        params: json!({"tracking_code": format!("{:010}", 4_000_000_000u64 + i)}),
                        lang: "fa",
                        application_id: None,
                        dedupe_key: None,
                    };
                    persistence::outbox::enqueue(conn, &pii, m, now)?;
                }
                Ok::<_, persistence::DbError>(())
            })
            .unwrap();
        })
        .await
        .unwrap();
    }
    let paid_before = count(&db, "SELECT count(*) AS n FROM applications WHERE tracking_code IS NOT NULL");
    let mut journeys = options(&base, Scenario::Journey, 100);
    journeys.duration = Some(Duration::from_secs(8));
    let load = tokio::spawn(async move { run(&journeys, None).await });
    // Kill the second instance while it holds outbox claims.
    let victim = cluster.pid(1);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let held = count(
            &db,
            &format!("SELECT count(*) AS n FROM outbox WHERE status = 'sending' AND claim_token LIKE '{victim}-%'"),
        );
        if held > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "instance 1 never claimed outbox messages");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    cluster.kill9(1);
    let killed_at = Instant::now();
    let left = count(
        &db,
        &format!("SELECT count(*) AS n FROM outbox WHERE status = 'sending' AND claim_token LIKE '{victim}-%'"),
    );
    let report = load.await.unwrap();
    eprintln!("journeys while one instance was killed:\n{}", report.table());
    // Every journey the client saw complete is in the database.
    let paid_after = count(&db, "SELECT count(*) AS n FROM applications WHERE tracking_code IS NOT NULL");
    assert!(report.journeys > 0, "{}", report.table());
    assert!(paid_after - paid_before >= report.journeys as i64, "acknowledged journeys lost: {}", report.table());
    // Its claims are free again within the 30 s lease, and then sent by the others.
    let deadline = killed_at + Duration::from_secs(45);
    loop {
        let pending = count(&db, "SELECT count(*) AS n FROM outbox WHERE status IN ('queued', 'sending')");
        if pending == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{pending} messages still pending 45 s after the kill ({left} were held)");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!("kill -9 left {left} claimed messages; all delivered {:?} after the kill", killed_at.elapsed());
    let sent = count(&db, "SELECT count(*) AS n FROM outbox WHERE channel = 'sms' AND status = 'sent'");
    let texts = count(&db, "SELECT count(*) AS n FROM sandbox_sms");
    let distinct = count(&db, "SELECT count(DISTINCT local_id) AS n FROM sandbox_sms");
    assert!(sent >= backlog as i64, "{sent}");
    assert_eq!(texts, sent, "every sent message arrived once: no loss, no second text");
    assert_eq!(distinct, texts);
    cluster.start(1);
    cluster.wait_ready(1).await;

    // 6. A rolling restart of every instance under journey load: not one failed request.
    let mut journeys = options(&base, Scenario::Journey, 1000);
    journeys.duration = Some(Duration::from_secs(18));
    journeys.concurrency = 12;
    let load = tokio::spawn(async move { run(&journeys, None).await });
    tokio::time::sleep(Duration::from_secs(2)).await;
    for i in 0..3 {
        tokio::task::block_in_place(|| cluster.stop(i));
        cluster.start(i);
        cluster.wait_ready(i).await;
    }
    let report = load.await.unwrap();
    eprintln!("rolling restart under load:\n{}", report.table());
    assert!(report.journeys > 0, "{}", report.table());
    assert_eq!(report.error_count(), 0, "failed requests during the rolling restart: {}", report.table());

    // 7. Through PgBouncer in transaction mode.
    let bouncer_dir = dir.join("pgbouncer");
    std::fs::create_dir_all(&bouncer_dir).unwrap();
    let bouncer_port = free_port();
    let (host_db, pg_name) = (db_url.split('?').next().unwrap().to_owned(), cluster.db_name.clone());
    let pg_port = host_db.rsplit_once(':').and_then(|(_, p)| p.split('/').next()).unwrap_or("5432").to_owned();
    std::fs::write(bouncer_dir.join("userlist.txt"), "\"postgres\" \"\"\n").unwrap();
    std::fs::write(
        bouncer_dir.join("pgbouncer.ini"),
        format!(
            "[databases]\n{pg_name} = host=127.0.0.1 port={pg_port} dbname={pg_name} user=postgres\n\n\
             [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {bouncer_port}\nauth_type = trust\n\
             auth_file = {d}/userlist.txt\npool_mode = transaction\nmax_client_conn = 200\ndefault_pool_size = 4\n\
             logfile = {d}/pgbouncer.log\npidfile = {d}/pgbouncer.pid\nunix_socket_dir =\n\
             ignore_startup_parameters = extra_float_digits,options\n",
            d = bouncer_dir.display()
        ),
    )
    .unwrap();
    let mut bouncer = Command::new(&pgbouncer);
    if is_root() {
        // PgBouncer refuses to run as root.
        Command::new("chmod").args(["-R", "a+rwX"]).arg(&dir).status().unwrap();
        bouncer.args(["-u", "postgres"]);
    }
    let out = cluster.log("pgbouncer.out");
    let child = bouncer
        .arg(bouncer_dir.join("pgbouncer.ini"))
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("start pgbouncer");
    cluster.others.push(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", bouncer_port)).is_err() {
        assert!(Instant::now() < deadline, "pgbouncer does not listen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let through_bouncer = format!("postgres://postgres@127.0.0.1:{bouncer_port}/{pg_name}?sslmode=disable");
    let port = free_port();
    let out = cluster.log("ncr-bouncer.log");
    let child = cluster
        .command(&[
            ("NCR_BIND", format!("127.0.0.1:{port}")),
            ("DATABASE_URL", through_bouncer),
            ("NCR_DB__TRANSACTION_POOLER", "true".into()),
            ("NCR_PUBLIC_URL", format!("http://127.0.0.1:{port}")),
        ])
        .arg("serve")
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("start ncr");
    cluster.instances.push(Instance { port, child: Some(child) });
    cluster.wait_ready(3).await;
    let mut journeys = options(&format!("http://127.0.0.1:{port}"), Scenario::Journey, 3000);
    journeys.count = Some(30);
    let report = run(&journeys, None).await;
    eprintln!("through PgBouncer:\n{}", report.table());
    assert_eq!(report.journeys, 30, "{}", report.table());
    assert_eq!(report.error_count(), 0, "journeys through PgBouncer: {}", report.table());
}
