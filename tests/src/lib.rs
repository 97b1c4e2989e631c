//! The black-box test harness. Every test gets its own fresh database — a copy of a
//! migrated, demo-seeded template — on SQLite and on PostgreSQL, starts the real server
//! on port 0 in-process, and talks HTTP to it. The clock is a `ManualClock` the test
//! moves by hand.
//!
//! PostgreSQL comes from `TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). When it cannot be reached a local run
//! prints a loud SKIPPED line; with `CI=true` the test fails instead.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use api::clock::ManualClock;
use api::config::{Config, DemoData, KeysConfig, PiiKeyConfig, SigningKeyConfig};
use api::{AppState, Environment};
use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use diesel::{Connection, RunQueryDsl};
use serde_json::Value;

pub use persistence::Backend;

pub mod at_rest;
pub mod client;
pub mod fingerprint;
pub mod journey;
pub mod load;
pub mod parsian;
pub mod pgproxy;
pub mod pii;
pub mod registry_stub;
pub mod smtp;

/// The instant every test starts at: Sunday 2026-11-22, 10:00 in Tehran.
pub fn t0() -> DateTime<Utc> {
    domain::calendar::tehran_instant(NaiveDate::from_ymd_opt(2026, 11, 22).expect("date"), 10, 0)
}

/// The password of the `admin` every test server starts with.
pub const ADMIN_PASSWORD: &str = "test-admin-password";

const FINGERPRINT: &str = env!("NCR_TEMPLATE_FINGERPRINT");

/// The PostgreSQL server tests use. TLS is switched off for these local test connections:
/// server threads of finished tests may still hold connections when the test process
/// exits, and OpenSSL's exit-time cleanup racing with them corrupts the heap.
fn pg_admin_url() -> String {
    let url =
        std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    if url.contains("sslmode=") {
        url
    } else if url.contains('?') {
        format!("{url}&sslmode=disable")
    } else {
        format!("{url}?sslmode=disable")
    }
}

/// The same server URL with another database name.
fn with_db(url: &str, db: &str) -> String {
    let (main, query) = url.split_once('?').map_or((url, String::new()), |(m, q)| (m, format!("?{q}")));
    let after_scheme = main.find("://").map_or(0, |i| i + 3);
    let base = match main[after_scheme..].find('/') {
        Some(slash) => &main[..after_scheme + slash],
        None => main,
    };
    format!("{base}/{db}{query}")
}

/// Test-only keys, derived from fixed labels so template data opens in every test.
/// They protect nothing real and are never used outside tests.
pub fn test_keys() -> KeysConfig {
    let derive = |label: &str| {
        let mut out = [0u8; 32];
        for (i, b) in label.bytes().cycle().take(32).enumerate() {
            out[i] = b.wrapping_mul(31).wrapping_add(i as u8);
        }
        base64::engine::general_purpose::STANDARD.encode(out)
    };
    KeysConfig {
        signing: vec![SigningKeyConfig { id: "test-s1".into(), seed: derive("signing") }],
        pii: vec![PiiKeyConfig { id: "test-p1".into(), hmac: derive("pii-hmac"), enc: derive("pii-enc") }],
        pii_active: Some("test-p1".into()),
        captcha: Some(derive("captcha")),
    }
}

/// The configuration every test server starts from.
pub fn test_config(database_url: String) -> Config {
    Config {
        database_url,
        // Tests run with the sandboxes on both databases; the production profile has its own tests.
        profile: Some(api::config::Profile::Development),
        data_dir: std::env::temp_dir().join("ncr-test-data"),
        demo_data: DemoData::Never,
        workers: 1,
        keys: test_keys(),
        log_level: std::env::var("NCR_TEST_LOG").unwrap_or_else(|_| "warn".into()),
        jobs: api::config::JobsConfig { enabled: false, ..Default::default() },
        bootstrap_admin_password: Some(ADMIN_PASSWORD.into()),
        // Tests make many requests from one address; rate limits have their own test.
        limits: api::config::LimitsConfig {
            per_ip_per_minute: 1_000_000,
            efolder_registrations_per_client_per_hour: 1_000_000,
            ..Default::default()
        },
        ..Config::default()
    }
}

fn template_dir() -> PathBuf {
    let dir = PathBuf::from(env!("NCR_TEMPLATE_DIR")).join("db-templates");
    std::fs::create_dir_all(&dir).expect("template dir");
    dir
}

/// Migrates and seeds a database, as every template is built.
fn build_template(url: &str) {
    let mut config = test_config(url.to_owned());
    config.demo_data = DemoData::Always;
    let clock: Arc<ManualClock> = Arc::new(ManualClock::new(t0()));
    api::build_state(config, Environment { clock, random: Arc::new(api::clock::OsRandom) })
        .unwrap_or_else(|e| panic!("cannot build the test template: {e}"));
}

/// A fresh SQLite database file copied from the template.
fn fresh_sqlite() -> (String, PathBuf) {
    let dir = template_dir();
    let template = dir.join(format!("sqlite-{FINGERPRINT}.db"));
    let lock_path = dir.join(format!("sqlite-{FINGERPRINT}.lock"));
    if !template.exists() {
        let lock = std::fs::File::create(&lock_path).expect("lock file");
        lock.lock().expect("template lock");
        if !template.exists() {
            let building = dir.join(format!("sqlite-{FINGERPRINT}-{}.db", uuid::Uuid::new_v4()));
            build_template(&format!("sqlite://{}", building.display()));
            // A consistent, self-contained snapshot (no WAL), whatever connections are still open.
            let snapshot = dir.join(format!("sqlite-{FINGERPRINT}-{}.snapshot", uuid::Uuid::new_v4()));
            let mut conn = diesel::sqlite::SqliteConnection::establish(&building.display().to_string()).expect("open");
            diesel::sql_query(format!("VACUUM INTO '{}'", snapshot.display())).execute(&mut conn).expect("snapshot");
            drop(conn);
            std::fs::rename(&snapshot, &template).expect("publish template");
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", building.display()));
            }
        }
        lock.unlock().expect("unlock");
    }
    let path = std::env::temp_dir().join(format!("ncr-test-{}.db", uuid::Uuid::new_v4()));
    std::fs::copy(&template, &path).expect("copy template");
    (format!("sqlite://{}", path.display()), path)
}

/// Notes a skipped part of a test (`what`: "the PostgreSQL half", "the browser receipt
/// test") in `NCR_TEST_SKIP_DIR` (as `scripts/test` sets it), one line per test, so the
/// run ends with one loud count: the test harness itself reports such a test as passed.
pub fn record_skip(what: &str) {
    let Some(dir) = std::env::var_os("NCR_TEST_SKIP_DIR").filter(|d| !d.is_empty()) else { return };
    let dir = PathBuf::from(dir);
    let name = std::thread::current().name().unwrap_or("a test").to_owned();
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("{}.txt", std::process::id())))?;
        writeln!(f, "{what}\t{name}")
    });
    if let Err(e) = written {
        panic!("cannot record a skipped test in {}: {e}", dir.display());
    }
}

/// A fresh PostgreSQL database created from the template, or `None` when PostgreSQL is
/// not reachable (a failure under CI).
fn fresh_postgres() -> Option<(String, String)> {
    let admin_url = pg_admin_url();
    let mut admin = match diesel::pg::PgConnection::establish(&admin_url) {
        Ok(c) => c,
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("PostgreSQL tests cannot run under CI: cannot connect to {admin_url}: {e}");
            }
            eprintln!("\n!!! SKIPPED the PostgreSQL half of this test: cannot connect to {admin_url} ({e})\n");
            record_skip("the PostgreSQL half");
            return None;
        }
    };
    let template = format!("ncr_tpl_{FINGERPRINT}");
    // One process builds the template; the others wait on the advisory lock.
    diesel::sql_query("SELECT pg_advisory_lock(727001)").execute(&mut admin).expect("advisory lock");
    let exists: i64 = diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
        "SELECT count(*) FROM pg_database WHERE datname = '{template}'"
    ))
    .get_result(&mut admin)
    .expect("query");
    if exists == 0 {
        let building = format!("{template}_build");
        diesel::sql_query(format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
            .execute(&mut admin)
            .expect("drop");
        diesel::sql_query(format!("CREATE DATABASE {building}")).execute(&mut admin).expect("create");
        build_template(&with_db(&admin_url, &building));
        diesel::sql_query(format!("ALTER DATABASE {building} RENAME TO {template}"))
            .execute(&mut admin)
            .expect("rename");
        diesel::sql_query(format!("ALTER DATABASE {template} WITH IS_TEMPLATE true"))
            .execute(&mut admin)
            .expect("mark");
    }
    diesel::sql_query("SELECT pg_advisory_unlock(727001)").execute(&mut admin).expect("unlock");
    let name = format!("ncr_t_{}", uuid::Uuid::new_v4().simple());
    diesel::sql_query(format!("CREATE DATABASE {name} TEMPLATE {template}"))
        .execute(&mut admin)
        .expect("create test db");
    Some((with_db(&admin_url, &name), name))
}

/// A new, empty PostgreSQL database (not migrated, no data): its URL and name, or `None`
/// when PostgreSQL is not reachable (a failure under CI).
pub async fn empty_postgres() -> Option<(String, String)> {
    tokio::task::spawn_blocking(|| {
        let admin_url = pg_admin_url();
        let mut admin = match diesel::pg::PgConnection::establish(&admin_url) {
            Ok(c) => c,
            Err(e) => {
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("PostgreSQL tests cannot run under CI: cannot connect to {admin_url}: {e}");
                }
                eprintln!("\n!!! SKIPPED a PostgreSQL test: cannot connect to {admin_url} ({e})\n");
                return None;
            }
        };
        let name = format!("ncr_e_{}", uuid::Uuid::new_v4().simple());
        diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut admin).expect("create database");
        Some((with_db(&admin_url, &name), name))
    })
    .await
    .expect("join")
}

/// Drops a database made by [`empty_postgres`], closing its connections.
pub async fn drop_postgres(name: &str) {
    let name = name.to_owned();
    tokio::task::spawn_blocking(move || {
        if let Ok(mut admin) = diesel::pg::PgConnection::establish(&pg_admin_url()) {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin);
        }
    })
    .await
    .expect("join");
}

/// The `ncr` binary of this build (`target/<profile>/ncr`), for tests that run the server
/// as separate processes. `scripts/test` builds it before the tests; `NCR_TEST_BIN`
/// overrides the path.
pub fn ncr_binary() -> PathBuf {
    if let Ok(path) = std::env::var("NCR_TEST_BIN") {
        return PathBuf::from(path);
    }
    // Test binaries live in target/<profile>/deps/.
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>");
    let bin = profile_dir.join("ncr");
    assert!(
        bin.exists(),
        "{} is missing: build it first with `cargo build --workspace --all-targets` (scripts/test does)",
        bin.display()
    );
    bin
}

/// Where this test process's logs go: a file per process in `NCR_TEST_LOG_DIR` (as
/// `scripts/test` sets it, so the whole run's logs can be scanned for personal data), or
/// in the build's output folder when it is unset, so a test can always read its own logs.
pub fn test_log_path() -> PathBuf {
    let dir = std::env::var("NCR_TEST_LOG_DIR")
        .ok()
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("NCR_TEMPLATE_DIR")).join("test-logs"));
    dir.join(format!("{}.log", std::process::id()))
}

fn init_test_logging(config: &Config) {
    let path = test_log_path();
    std::fs::create_dir_all(path.parent().expect("log dir")).expect("log dir");
    let file = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("log file");
    api::logging::init_logging_to(config, api::logging::MaskingFile(Arc::new(std::sync::Mutex::new(file))));
}

/// A running server on a fresh database.
pub struct TestApp {
    pub base: String,
    pub backend: Backend,
    pub state: Arc<AppState>,
    pub clock: Arc<ManualClock>,
    pub http: reqwest::Client,
    cleanup: Cleanup,
    server: actix_web::dev::ServerHandle,
}

enum Cleanup {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let handle = self.server.clone();
        drop(handle.stop(false));
        match &self.cleanup {
            Cleanup::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Cleanup::Postgres(name) => {
                let name = name.clone();
                // Best effort; the database is dropped with any open connections closed.
                let _ = std::thread::spawn(move || {
                    if let Ok(mut admin) = diesel::pg::PgConnection::establish(&pg_admin_url()) {
                        let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&mut admin);
                    }
                })
                .join();
            }
        }
    }
}

/// Options for [`spawn_with`].
pub type Tweak = Box<dyn FnOnce(&mut Config)>;

/// Starts a server on a fresh database of `backend`; `None` if PostgreSQL is skipped.
pub async fn spawn(backend: Backend) -> Option<TestApp> {
    spawn_with(backend, Box::new(|_| {})).await
}

pub async fn spawn_with(backend: Backend, tweak: Tweak) -> Option<TestApp> {
    spawn_on(backend, tweak, TcpListener::bind("127.0.0.1:0").expect("bind")).await
}

/// [`spawn_with`] on a listener the test bound already (to know the server's address
/// before configuring it, e.g. for a page that calls it).
pub async fn spawn_on(backend: Backend, tweak: Tweak, listener: TcpListener) -> Option<TestApp> {
    let (url, cleanup) = match backend {
        Backend::Sqlite => {
            let (url, path) = tokio::task::spawn_blocking(fresh_sqlite).await.expect("join");
            (url, Cleanup::Sqlite(path))
        }
        Backend::Postgres => {
            let (url, name) = tokio::task::spawn_blocking(fresh_postgres).await.expect("join")?;
            (url, Cleanup::Postgres(name))
        }
    };
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let mut config = test_config(url);
    config.public_url = base.clone();
    tweak(&mut config);
    init_test_logging(&config);
    let clock = Arc::new(ManualClock::new(t0()));
    let env = Environment { clock: clock.clone(), random: Arc::new(api::clock::OsRandom) };
    let state = tokio::task::spawn_blocking(move || api::build_state(config, env)).await.expect("join").expect("state");
    let state = Arc::new(state);
    let server = api::server::serve(state.clone(), listener).expect("server");
    let handle = server.handle();
    actix_web::rt::spawn(server);
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    Some(TestApp { base, backend, state, clock, http, cleanup, server: handle })
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// Reads a response as JSON (panics with the body if it is not).
pub async fn json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, value)
}

/// Runs a test body against SQLite and PostgreSQL, as two separate tests.
#[macro_export]
macro_rules! db_test {
    ($(#[$meta:meta])* $name:ident, |$app:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[actix_web::test]
            $(#[$meta])*
            async fn sqlite() {
                let $app = $crate::spawn($crate::Backend::Sqlite).await.expect("sqlite always runs");
                $body
            }
            #[actix_web::test]
            $(#[$meta])*
            async fn postgres() {
                let Some($app) = $crate::spawn($crate::Backend::Postgres).await else { return };
                $body
            }
        }
    };
    // With a configuration tweak: `db_test!(name, tweak = some_fn, |app| { … })`.
    ($(#[$meta:meta])* $name:ident, tweak = $tweak:path, |$app:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[actix_web::test]
            $(#[$meta])*
            async fn sqlite() {
                let $app = $crate::spawn_with($crate::Backend::Sqlite, Box::new($tweak)).await.expect("sqlite always runs");
                $body
            }
            #[actix_web::test]
            $(#[$meta])*
            async fn postgres() {
                let Some($app) = $crate::spawn_with($crate::Backend::Postgres, Box::new($tweak)).await else { return };
                $body
            }
        }
    };
}

#[cfg(test)]
mod template_fingerprint {
    use std::path::{Path, PathBuf};

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    /// A copy of the fingerprint's inputs in a fresh folder.
    fn copy_inputs(to: &Path) {
        fn copy(from: &Path, to: &Path) {
            if from.is_dir() {
                std::fs::create_dir_all(to).expect("dir");
                for e in std::fs::read_dir(from).expect("read").flatten() {
                    copy(&e.path(), &to.join(e.file_name()));
                }
            } else if from.is_file() {
                std::fs::create_dir_all(to.parent().expect("parent")).expect("dir");
                std::fs::copy(from, to).expect("copy");
            }
        }
        for input in super::fingerprint::INPUTS {
            copy(&root().join(input), &to.join(input));
        }
    }

    #[test]
    fn the_built_fingerprint_is_the_trees() {
        assert_eq!(super::fingerprint::fingerprint(&root()), env!("NCR_TEMPLATE_FINGERPRINT"));
    }

    /// Code that shapes stored data outside the migrations and the seed — PII sealing,
    /// the domain's rules, the harness's keys — names a new template when it changes.
    #[test]
    fn a_change_to_code_that_writes_data_names_a_new_template() {
        let dir = std::env::temp_dir().join(format!("ncr-fingerprint-{}", uuid::Uuid::new_v4()));
        copy_inputs(&dir);
        let before = super::fingerprint::fingerprint(&dir);
        assert_eq!(before, super::fingerprint::fingerprint(&root()), "the copy is complete");
        for file in ["persistence/src/pii.rs", "domain/src/ids.rs", "seed/src/lib.rs", "tests/src/lib.rs"] {
            let path = dir.join(file);
            let original = std::fs::read(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
            let mut changed = original.clone();
            changed.extend_from_slice(b"\n// changed\n");
            std::fs::write(&path, &changed).expect("write");
            assert_ne!(super::fingerprint::fingerprint(&dir), before, "{file} is not covered");
            std::fs::write(&path, &original).expect("restore");
        }
        assert_eq!(super::fingerprint::fingerprint(&dir), before);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
