//! The guards this crate keeps, pinned at their edges on SQLite and on PostgreSQL: seats
//! (taken only while free and open, given back once), versioned rows (applications,
//! payments, refunds: a stale writer loses), the sandbox bank's one decision, and attempts
//! (locks and counts of guesses, captchas used once, reset codes, sessions, idempotency
//! keys, public lookups). The black-box suite drives them through the API;
//! `scripts/mutants persistence` runs these tests against every mutant of these functions
//! (README, "Mutation testing").

use chrono::{Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use domain::DomainError;
use domain::offices::Shift;
use domain::payment::{PaymentStatus, RefundStatus};
use domain::record_ids::{AccountId, ApplicationId, OfficeId};
use persistence::applications::{self, ApplicationRow};
use persistence::attempts::{self, Reservation};
use persistence::back_office::{self, IdempotencyRow};
use persistence::citizens::{self, CitizenRow};
use persistence::db::{Backend, DbConn, migration_names, run_migrations};
use persistence::efolder::{self, AccountRow, ResetCodeRow};
use persistence::error::DbError;
use persistence::offices::{self, OfficeRow};
use persistence::payments::{self, PaymentRow, SandboxBankRow};
use persistence::public_lookups::{self, Purpose};
use persistence::refunds::{self, RefundRow};
use persistence::schema;
use persistence::sessions::{self, Inactive};
use sha2::{Digest, Sha256};

// ------------------------------------------------------------------------- databases

/// A fresh in-memory SQLite database and, when PostgreSQL is reachable, a connection to
/// this crate's test database there (every test writes rows under fresh ids, so tests
/// running at once do not meet).
fn databases() -> Vec<DbConn> {
    let mut sqlite = DbConn::Sqlite(SqliteConnection::establish(":memory:").expect("sqlite"));
    sqlite.batch_execute("PRAGMA foreign_keys = ON;").expect("pragma");
    run_migrations(&mut sqlite).expect("sqlite migrations");
    let mut out = vec![sqlite];
    out.extend(postgres());
    out
}

fn pg_admin_url() -> String {
    let url =
        std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    match (url.contains("sslmode="), url.contains('?')) {
        (true, _) => url,
        (false, true) => format!("{url}&sslmode=disable"),
        (false, false) => format!("{url}?sslmode=disable"),
    }
}

/// The crate's PostgreSQL test database, named after the migrations it has (built once,
/// under an advisory lock, by whichever test process comes first). `None` when PostgreSQL
/// is not reachable, which fails the test under CI and is counted as skipped otherwise.
fn postgres() -> Option<DbConn> {
    let admin_url = pg_admin_url();
    let mut admin = match PgConnection::establish(&admin_url) {
        Ok(c) => c,
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("PostgreSQL tests cannot run under CI: cannot connect to {admin_url}: {e}");
            }
            eprintln!("\n!!! SKIPPED the PostgreSQL half of this test: cannot connect to {admin_url} ({e})\n");
            record_skip();
            return None;
        }
    };
    let digest = Sha256::digest(migration_names(Backend::Postgres).join("\n"));
    let name = format!("ncr_persistence_{}", hex::encode(&digest[..6]));
    admin.batch_execute("SELECT pg_advisory_lock(727002)").expect("advisory lock");
    let exists = diesel::dsl::select(diesel::dsl::sql::<diesel::sql_types::Bool>(&format!(
        "EXISTS (SELECT 1 FROM pg_database WHERE datname = '{name}')"
    )))
    .get_result::<bool>(&mut admin)
    .expect("pg_database");
    if !exists {
        admin.batch_execute(&format!("CREATE DATABASE {name}")).expect("create database");
    }
    let (main, query) = admin_url.split_once('?').expect("the URL has a query");
    let base = &main[..main.rfind('/').expect("a database name")];
    let mut conn = DbConn::Pg(PgConnection::establish(&format!("{base}/{name}?{query}")).expect("test database"));
    run_migrations(&mut conn).expect("postgres migrations");
    admin.batch_execute("SELECT pg_advisory_unlock(727002)").expect("advisory unlock");
    Some(conn)
}

/// One line in `NCR_TEST_SKIP_DIR` (as `scripts/test` sets it), which counts skipped halves
/// at the end of a run.
fn record_skip() {
    let Some(dir) = std::env::var_os("NCR_TEST_SKIP_DIR").filter(|d| !d.is_empty()) else { return };
    let dir = std::path::PathBuf::from(dir);
    let name = std::thread::current().name().unwrap_or("a persistence test").to_owned();
    std::fs::create_dir_all(&dir)
        .and_then(|()| {
            use std::io::Write;
            let path = dir.join(format!("{}.txt", std::process::id()));
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
            writeln!(f, "the PostgreSQL half\tpersistence::{name}")
        })
        .expect("record a skipped test");
}

fn id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// 1 December 2026, 08:00 UTC, plus `seconds`.
fn at(seconds: i64) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 12, 1).unwrap().and_hms_opt(8, 0, 0).unwrap() + Duration::seconds(seconds)
}

fn backend(conn: &DbConn) -> &'static str {
    conn.backend().as_str()
}

// ------------------------------------------------------------------------------ seats

fn office(conn: &mut DbConn) -> OfficeId {
    let id = OfficeId::from(id());
    let row = OfficeRow {
        id: id.clone(),
        code: format!("T{}", &id[id.len() - 10..]),
        name: "دفتر آزمون".into(),
        kind: "post_office".into(),
        province: "تهران".into(),
        city: "تهران".into(),
        city_code: "021".into(),
        phone: "02100000000".into(),
        address: "-".into(),
        step_free_access: false,
        eye_exception_capture: false,
        fingerprint_exception_capture: false,
        home_visits: false,
        active: true,
        created_at: at(0),
        updated_at: at(0),
    };
    offices::insert(conn, &[row]).expect("office");
    id
}

fn slot(conn: &mut DbConn, office: &OfficeId, date: NaiveDate, shift: Shift, capacity: i32, closed: bool) {
    use schema::slots::dsl as s;
    diesel::insert_into(s::slots)
        .values((
            s::office_id.eq(office.as_str()),
            s::date.eq(date),
            s::shift.eq(shift.as_str()),
            s::capacity.eq(capacity),
            s::taken.eq(0),
            s::closed.eq(closed),
            s::city_code.eq("021"),
        ))
        .execute(conn)
        .expect("slot");
}

fn taken(conn: &mut DbConn, office: &OfficeId, date: NaiveDate, shift: Shift) -> i32 {
    offices::slot(conn, office, date, shift).expect("read").expect("the slot").taken
}

#[test]
fn a_seat_is_taken_one_at_a_time_only_while_one_is_free_and_the_slot_is_open() {
    for mut conn in databases() {
        let conn = &mut conn;
        let db = backend(conn);
        let office = office(conn);
        let day = NaiveDate::from_ymd_opt(2027, 1, 10).unwrap();
        slot(conn, &office, day, Shift::Morning, 2, false);
        slot(conn, &office, day, Shift::Afternoon, 2, true);

        offices::take_seat(conn, &office, day, Shift::Morning).expect("the first seat");
        assert_eq!(taken(conn, &office, day, Shift::Morning), 1, "{db}: one seat taken");
        offices::take_seat(conn, &office, day, Shift::Morning).expect("the second seat");
        assert_eq!(taken(conn, &office, day, Shift::Morning), 2, "{db}: two seats taken");
        let full = offices::take_seat(conn, &office, day, Shift::Morning);
        assert!(matches!(full, Err(DbError::Domain(DomainError::SlotFull))), "{db}: a full slot: {full:?}");
        assert_eq!(taken(conn, &office, day, Shift::Morning), 2, "{db}: a full slot is not oversold");

        let closed = offices::take_seat(conn, &office, day, Shift::Afternoon);
        assert!(matches!(closed, Err(DbError::Domain(DomainError::SlotClosed))), "{db}: a closed slot: {closed:?}");
        assert_eq!(taken(conn, &office, day, Shift::Afternoon), 0, "{db}: a closed slot gives no seat");
        let missing = offices::take_seat(conn, &office, day.succ_opt().unwrap(), Shift::Morning);
        assert!(matches!(missing, Err(DbError::Domain(DomainError::SlotClosed))), "{db}: no slot: {missing:?}");
    }
}

#[test]
fn a_seat_is_given_back_one_at_a_time_and_never_below_zero() {
    for mut conn in databases() {
        let conn = &mut conn;
        let db = backend(conn);
        let office = office(conn);
        let day = NaiveDate::from_ymd_opt(2027, 1, 11).unwrap();
        slot(conn, &office, day, Shift::Morning, 3, false);
        for _ in 0..3 {
            offices::take_seat(conn, &office, day, Shift::Morning).expect("a seat");
        }
        offices::release_seat(conn, &office, day, Shift::Morning).expect("give one back");
        assert_eq!(taken(conn, &office, day, Shift::Morning), 2, "{db}: one seat given back");
        offices::release_seat(conn, &office, day, Shift::Morning).expect("give one back");
        offices::release_seat(conn, &office, day, Shift::Morning).expect("give one back");
        assert_eq!(taken(conn, &office, day, Shift::Morning), 0, "{db}: all seats given back");
        let none = offices::release_seat(conn, &office, day, Shift::Morning);
        assert!(matches!(none, Err(DbError::Internal(_))), "{db}: nothing to give back: {none:?}");
        assert_eq!(taken(conn, &office, day, Shift::Morning), 0, "{db}: never below zero");
    }
}

// -------------------------------------------------------------------- versioned rows

fn application(conn: &mut DbConn) -> ApplicationRow {
    let citizen = CitizenRow {
        id: id().into(),
        nid_hash: id(),
        nid_enc: "sealed".into(),
        serial_enc: "sealed".into(),
        serial_verified: true,
        created_at: at(0),
        last_entry_at: at(0),
    };
    diesel::insert_into(schema::citizens::table).values(citizen.clone()).execute(conn).expect("citizen");
    let row = ApplicationRow {
        id: id().into(),
        citizen_id: citizen.id,
        cycle: 1,
        state: "draft".into(),
        identity_status: "verified".into(),
        payment_status: "unpaid".into(),
        appointment_status: "none".into(),
        slot_office_id: None,
        slot_date: None,
        slot_shift: None,
        hold_expires_at: None,
        can_leave_home: None,
        can_climb_stairs: None,
        pupils_visible: None,
        fingers_intact: None,
        edits_left: 3,
        no_show_ban_until: None,
        tracking_code: None,
        paid_at: None,
        delivery_office_id: None,
        reissue_required: false,
        home_visit_address: false,
        reissue_reason: None,
        previous_application_id: None,
        nid_hash: id(),
        nid_enc: "sealed".into(),
        serial_enc: "sealed".into(),
        personal_enc: "sealed".into(),
        mobile_hash: id(),
        mobile_enc: "sealed".into(),
        family_enc: None,
        identity_attempts: 0,
        identity_next_check_at: None,
        identity_pending_since: None,
        created_by_client: None,
        version: 1,
        created_at: at(0),
        updated_at: at(0),
        displaced_at: None,
        withdrawal_reason_enc: None,
    };
    applications::insert(conn, &row).expect("application");
    row
}

fn utc(t: NaiveDateTime) -> chrono::DateTime<Utc> {
    Utc.from_utc_datetime(&t)
}

#[test]
fn an_application_saved_from_a_stale_read_loses_and_keeps_the_version_it_read() {
    for mut conn in databases() {
        let conn = &mut conn;
        let db = backend(conn);
        let read = application(conn);
        let mut first = read.clone();
        let mut second = read.clone();

        applications::lock(conn, &first).expect("the version read is current: the lock is taken");
        first.edits_left = 2;
        applications::update(conn, &mut first, utc(at(60))).expect("the first writer wins");
        assert_eq!(first.version, 2, "{db}: the winner's version is bumped");
        let stored = applications::find(conn, &read.id).unwrap().unwrap();
        assert_eq!((stored.version, stored.edits_left, stored.updated_at), (2, 2, at(60)), "{db}: stored");

        let lock = applications::lock(conn, &second);
        assert!(matches!(lock, Err(DbError::Stale)), "{db}: locking a stale read: {lock:?}");
        second.edits_left = 1;
        let lost = applications::update(conn, &mut second, utc(at(120)));
        assert!(matches!(lost, Err(DbError::Stale)), "{db}: saving a stale read: {lost:?}");
        assert_eq!(second.version, 1, "{db}: the loser keeps the version it read");
        let stored = applications::find(conn, &read.id).unwrap().unwrap();
        assert_eq!((stored.version, stored.edits_left), (2, 2), "{db}: the loser changed nothing");
    }
}

fn payment(conn: &mut DbConn, application: &ApplicationId) -> PaymentRow {
    let row = PaymentRow {
        id: id().into(),
        order_id: (uuid::Uuid::new_v4().as_u128() % 1_000_000_000_000) as i64,
        application_id: application.clone(),
        gateway: "sandbox".into(),
        amount: 450_000,
        status: PaymentStatus::Redirected,
        token: None,
        redirect_url: None,
        reference: None,
        card_mask: None,
        bank_code: None,
        expires_at: at(900),
        attempts: 0,
        next_check_at: None,
        last_error: None,
        version: 1,
        created_at: at(0),
        updated_at: at(0),
        settled_at: None,
        reversal_attempts: 0,
        reversal_error: None,
    };
    payments::insert(conn, &row).expect("payment");
    row
}

#[test]
fn a_payment_saved_from_a_stale_read_loses_and_keeps_the_version_it_read() {
    for mut conn in databases() {
        let conn = &mut conn;
        let db = backend(conn);
        let app = application(conn);
        let read = payment(conn, &app.id);
        let mut first = read.clone();
        let mut second = read.clone();

        payments::lock(conn, &first).expect("the version read is current: the lock is taken");
        first.attempts = 1;
        payments::update(conn, &mut first, utc(at(30))).expect("the first writer wins");
        assert_eq!(first.version, 2, "{db}: the winner's version is bumped");
        let stored = payments::find(conn, &read.id).unwrap().unwrap();
        assert_eq!((stored.version, stored.attempts, stored.updated_at), (2, 1, at(30)), "{db}: stored");

        let lock = payments::lock(conn, &second);
        assert!(matches!(lock, Err(DbError::Stale)), "{db}: locking a stale read: {lock:?}");
        second.attempts = 5;
        let lost = payments::update(conn, &mut second, utc(at(40)));
        assert!(matches!(lost, Err(DbError::Stale)), "{db}: saving a stale read: {lost:?}");
        assert_eq!(second.version, 1, "{db}: the loser keeps the version it read");
        let stored = payments::find(conn, &read.id).unwrap().unwrap();
        assert_eq!((stored.version, stored.attempts), (2, 1), "{db}: the loser changed nothing");
    }
}

#[test]
fn a_refund_saved_from_a_stale_read_loses() {
    for mut conn in databases() {
        let conn = &mut conn;
        let db = backend(conn);
        let app = application(conn);
        let pay = payment(conn, &app.id);
        let read = RefundRow {
            id: id().into(),
            application_id: app.id.clone(),
            payment_id: pay.id.clone(),
            amount: pay.amount,
            iban_enc: "sealed".into(),
            iban_hint: "IR…1234".into(),
            status: RefundStatus::Requested,
            method: None,
            bank_reference: None,
            reversal_error: None,
            requested_at: at(0),
            settled_at: None,
            settled_by: None,
            version: 1,
            updated_at: at(0),
        };
        refunds::insert(conn, &read).expect("refund");
        let mut first = read.clone();
        let mut second = read.clone();
        first.bank_reference = Some("first".into());
        refunds::update(conn, &mut first, utc(at(10))).expect("the first writer wins");
        second.bank_reference = Some("second".into());
        let lost = refunds::update(conn, &mut second, utc(at(20)));
        assert!(matches!(lost, Err(DbError::Stale)), "{db}: saving a stale read: {lost:?}");
        let stored = refunds::find(conn, &read.id).unwrap().unwrap();
        assert_eq!((stored.version, stored.bank_reference.as_deref()), (2, Some("first")), "{db}: the first write");
    }
}

// ------------------------------------------------------------------- sandbox bank

#[test]
fn the_sandbox_bank_records_the_customers_first_choice_only() {
    for mut conn in databases() {
        let conn = &mut conn;
        let db = backend(conn);
        let token = id();
        let row = SandboxBankRow {
            token: token.clone(),
            order_id: 1,
            amount: 450_000,
            merchant: "m".into(),
            callback_url: "http://127.0.0.1/callback".into(),
            outcome: None,
            reference: None,
            verified: false,
            reversed: false,
            created_at: at(0),
            expires_at: at(900),
        };
        payments::sandbox_insert(conn, &row).expect("sandbox payment");
        let expired = SandboxBankRow { token: id(), expires_at: at(10), ..row.clone() };
        payments::sandbox_insert(conn, &expired).expect("an expiring sandbox payment");
        assert_eq!(payments::sandbox_verify_paid(conn, &token).unwrap(), None, "{db}: not paid yet");
        let decide = |conn: &mut DbConn, token: &str, outcome: &str, reference: &str| {
            payments::sandbox_decide_open(conn, token, outcome, reference, at(10)).unwrap()
        };
        let first = decide(conn, &token, "success", "ref-1").expect("the first choice");
        assert_eq!((first.outcome.as_deref(), first.reference.as_deref()), (Some("success"), Some("ref-1")), "{db}");
        assert_eq!(decide(conn, &token, "cancel", "ref-2"), None, "{db}: a second choice");
        assert_eq!(decide(conn, &id(), "success", "ref-3"), None, "{db}: an unknown token");
        assert!(payments::sandbox_decide_open(conn, &expired.token, "success", "r", at(11)).unwrap().is_none(), "{db}");
        assert_eq!(payments::sandbox_find(conn, &expired.token).unwrap().unwrap().outcome, None, "{db}: expired");
        assert!(decide(conn, &expired.token, "cancel", "r").is_some(), "{db}: open until its last second");
        assert_eq!(payments::sandbox_verify_paid(conn, &expired.token).unwrap(), None, "{db}: cancelled");
        let stored = payments::sandbox_find(conn, &token).unwrap().unwrap();
        assert_eq!((stored.outcome.as_deref(), stored.reference.as_deref()), (Some("success"), Some("ref-1")), "{db}");
        assert!(!stored.verified, "{db}");

        let verified = payments::sandbox_verify_paid(conn, &token).unwrap().expect("paid");
        assert_eq!((verified.verified, verified.reversed), (true, false), "{db}: verified");
        let stored = payments::sandbox_find(conn, &token).unwrap().unwrap();
        assert_eq!((stored.verified, stored.reversed), (true, false), "{db}: verified");
        assert!(payments::sandbox_reverse(conn, &token).unwrap(), "{db}: reversed");
        assert!(payments::sandbox_reverse(conn, &token).unwrap(), "{db}: a second reversal is one too (204 again)");
        assert!(!payments::sandbox_reverse(conn, "no-such-token").unwrap(), "{db}: no such token");
        let stored = payments::sandbox_find(conn, &token).unwrap().unwrap();
        assert_eq!((stored.verified, stored.reversed), (true, true), "{db}: reversed");
        assert_eq!(payments::sandbox_verify_paid(conn, &token).unwrap(), None, "{db}: reversed is not paid");
    }
}

// ------------------------------------------------------------------------ attempts

/// Two failures in a row lock for a minute; at most two failures are ever counted.
fn lock_after_two(failures: i32) -> Option<Duration> {
    (failures >= 2).then(|| Duration::minutes(1))
}

#[test]
fn guesses_are_counted_before_they_are_compared_and_lock_the_key() {
    for mut conn in databases() {
        let conn = &mut conn;
        let db = backend(conn);
        let key = id();
        let r = attempts::reserve(conn, &key, at(0), Some(2), &lock_after_two).unwrap();
        assert_eq!(r, Reservation::Granted { failures: 1, locks_until: None }, "{db}: the first guess");
        let r = attempts::reserve(conn, &key, at(1), Some(2), &lock_after_two).unwrap();
        assert_eq!(r, Reservation::Granted { failures: 2, locks_until: Some(at(61)) }, "{db}: the second guess");
        let r = attempts::reserve(conn, &key, at(30), Some(2), &lock_after_two).unwrap();
        assert_eq!(r, Reservation::Locked(at(61)), "{db}: while locked");
        // The lock has run out exactly now, but the cap of two failures still stands.
        let r = attempts::reserve(conn, &key, at(61), Some(2), &lock_after_two).unwrap();
        assert_eq!(r, Reservation::Capped, "{db}: capped once the lock ran out");

        // Without a cap, the guess after the lock is counted as the third.
        let other = id();
        for s in 0..2 {
            attempts::reserve(conn, &other, at(s), None, &lock_after_two).unwrap();
        }
        let r = attempts::reserve(conn, &other, at(62), None, &lock_after_two).unwrap();
        assert_eq!(r, Reservation::Granted { failures: 3, locks_until: Some(at(122)) }, "{db}: uncapped");

        // A right guess clears the key.
        attempts::clear(conn, &key).unwrap();
        let r = attempts::reserve(conn, &key, at(62), Some(2), &lock_after_two).unwrap();
        assert_eq!(r, Reservation::Granted { failures: 1, locks_until: None }, "{db}: after clear");
    }
}

#[test]
fn old_failures_are_forgotten_after_a_day_and_an_unjudged_guess_is_taken_back() {
    for mut conn in databases() {
        let conn = &mut conn;
        let db = backend(conn);
        let key = id();
        let never = |_: i32| None;
        attempts::reserve(conn, &key, at(0), None, &never).unwrap();
        let r = attempts::reserve(conn, &key, at(3600), None, &never).unwrap();
        assert_eq!(r, Reservation::Granted { failures: 2, locks_until: None }, "{db}: within a day");
        let r = attempts::reserve(conn, &key, at(3600 + 25 * 3600), None, &never).unwrap();
        assert_eq!(r, Reservation::Granted { failures: 1, locks_until: None }, "{db}: a day later");

        // A guess that could not be compared: the failure and the lock it set are taken back.
        let key = id();
        attempts::reserve(conn, &key, at(0), None, &lock_after_two).unwrap();
        let r = attempts::reserve(conn, &key, at(1), None, &lock_after_two).unwrap();
        assert_eq!(r, Reservation::Granted { failures: 2, locks_until: Some(at(61)) }, "{db}");
        attempts::unreserve(conn, &key, true).unwrap();
        let r = attempts::reserve(conn, &key, at(2), None, &lock_after_two).unwrap();
        assert_eq!(r, Reservation::Granted { failures: 2, locks_until: Some(at(62)) }, "{db}: taken back and lifted");
        attempts::unreserve(conn, &key, false).unwrap();
        let r = attempts::reserve(conn, &key, at(3), None, &lock_after_two).unwrap();
        assert_eq!(r, Reservation::Locked(at(62)), "{db}: taken back, the lock kept");
    }
}

#[test]
fn hits_are_counted_per_key_and_window_and_one_can_be_taken_back() {
    for mut conn in databases() {
        let conn = &mut conn;
        let db = backend(conn);
        let key = id();
        let window = at(0);
        assert_eq!(attempts::hits(conn, &key, window).unwrap(), 0, "{db}: nothing yet");
        assert_eq!(attempts::count(conn, &key, window, at(1)).unwrap(), 1, "{db}: the first hit");
        assert_eq!(attempts::count(conn, &key, window, at(2)).unwrap(), 2, "{db}: the second hit");
        assert_eq!(attempts::count(conn, &key, window, at(3)).unwrap(), 3, "{db}: the third hit");
        assert_eq!(attempts::hits(conn, &key, window).unwrap(), 3, "{db}: so far");
        assert_eq!(attempts::count(conn, &key, at(600), at(601)).unwrap(), 1, "{db}: a new window");
        attempts::uncount(conn, &key, window).unwrap();
        assert_eq!(attempts::hits(conn, &key, window).unwrap(), 2, "{db}: one taken back");
        attempts::uncount(conn, &key, window).unwrap();
        attempts::uncount(conn, &key, window).unwrap();
        attempts::uncount(conn, &key, window).unwrap();
        assert_eq!(attempts::hits(conn, &key, window).unwrap(), 0, "{db}: never below zero");
    }
}

#[test]
fn hits_of_several_keys_are_counted_and_taken_back_in_one_statement() {
    for mut conn in databases() {
        let conn = &mut conn;
        let db = backend(conn);
        let (a, b) = (id(), id());
        let window = at(0);
        assert_eq!(attempts::count(conn, &b, window, at(1)).unwrap(), 1, "{db}: b alone");
        let counted = attempts::count_many(conn, &[&a, &b], window, at(2)).unwrap();
        assert_eq!(counted, vec![1, 2], "{db}: each key's count, in the order given");
        let counted = attempts::count_many(conn, &[&b, &a], window, at(3)).unwrap();
        assert_eq!(counted, vec![3, 2], "{db}: the other order");
        attempts::uncount_many(conn, &[&a, &b], window).unwrap();
        assert_eq!((attempts::hits(conn, &a, window).unwrap(), attempts::hits(conn, &b, window).unwrap()), (1, 2));
        attempts::uncount_many(conn, &[&a, &b], window).unwrap();
        attempts::uncount_many(conn, &[&a, &b], window).unwrap();
        assert_eq!(attempts::hits(conn, &a, window).unwrap(), 0, "{db}: never below zero");
        assert_eq!(attempts::hits(conn, &b, at(600)).unwrap(), 0, "{db}: another window untouched");
    }
}

#[test]
fn a_right_guess_is_given_back_in_one_step() {
    for mut conn in databases() {
        let conn = &mut conn;
        let db = backend(conn);
        let (client, subject, pair, other) = (id(), id(), id(), id());
        let window = at(0);
        for _ in 0..2 {
            attempts::count_many(conn, &[&client, &subject], window, at(1)).unwrap();
        }
        for key in [&pair, &other] {
            let r = attempts::reserve(conn, key, at(2), Some(5), &lock_after_two).unwrap();
            assert!(matches!(r, Reservation::Granted { failures: 1, .. }), "{db}: {r:?}");
        }
        attempts::give_back(conn, &[&client, &subject], window, &pair).unwrap();
        let hits = |conn: &mut DbConn, k: &str| attempts::hits(conn, k, window).unwrap();
        assert_eq!((hits(conn, &client), hits(conn, &subject)), (1, 1), "{db}: one hit back each");
        // The pair's failures are forgotten: its next guess is the first in a row; the
        // other pair still has its failure.
        let next = attempts::reserve(conn, &pair, at(3), Some(5), &lock_after_two).unwrap();
        assert!(matches!(next, Reservation::Granted { failures: 1, .. }), "{db}: {next:?}");
        let other_next = attempts::reserve(conn, &other, at(3), Some(5), &lock_after_two).unwrap();
        assert!(matches!(other_next, Reservation::Granted { failures: 2, .. }), "{db}: {other_next:?}");
        attempts::give_back(conn, &[&client, &subject], window, &pair).unwrap();
        attempts::give_back(conn, &[&client, &subject], window, &pair).unwrap();
        assert_eq!((hits(conn, &client), hits(conn, &subject)), (0, 0), "{db}: never below zero");
    }
}

/// PostgreSQL only (SQLite's one writer has no row locks): the counters of a guess are
/// locked in the keys' sorted order whatever order the caller gives, and a give-back locks
/// them before the pair's row, as counting does — so two requests of the same client for
/// the same national code never wait on each other in a circle (a deadlock).
#[test]
fn guess_counters_are_locked_in_one_order() {
    let Some(mut holder) = postgres() else { return };
    let (Some(mut waiter), Some(mut probe)) = (postgres(), postgres()) else { return };
    let window = at(0);
    let (mut a, mut b, pair) = (id(), id(), id());
    if a > b {
        std::mem::swap(&mut a, &mut b);
    }
    attempts::count_many(&mut holder, &[&a, &b], window, at(1)).unwrap();
    attempts::reserve(&mut holder, &pair, at(1), Some(5), &lock_after_two).unwrap();
    probe.batch_execute("SET lock_timeout = '200ms'").unwrap();
    let locked = |probe: &mut DbConn, table: &str, key: &str| {
        probe.batch_execute(&format!("BEGIN; SELECT 1 FROM {table} WHERE key = '{key}' FOR UPDATE NOWAIT")).is_err()
    };
    let release = |probe: &mut DbConn| probe.batch_execute("ROLLBACK").unwrap();
    for give_back in [false, true] {
        // The holder keeps b (the later key) locked; the waiter then counts b before a
        // (or gives both back with the pair) and must stop at b holding a, and nothing else.
        holder.batch_execute("BEGIN").unwrap();
        attempts::uncount_many(&mut holder, &[&b], window).unwrap();
        let (b2, a2, pair2) = (b.clone(), a.clone(), pair.clone());
        let waiting = std::thread::spawn(move || {
            waiter.batch_execute("BEGIN").unwrap();
            if give_back {
                attempts::give_back(&mut waiter, &[&b2, &a2], window, &pair2).unwrap();
            } else {
                attempts::count_many(&mut waiter, &[&b2, &a2], window, at(2)).unwrap();
            }
            waiter.batch_execute("COMMIT").unwrap();
        });
        // Until the waiter holds a (it never will if it went for b first).
        let mut a_locked = false;
        for _ in 0..500 {
            std::thread::sleep(std::time::Duration::from_millis(20));
            a_locked = locked(&mut probe, "attempt_counts", &a);
            release(&mut probe);
            if a_locked {
                break;
            }
        }
        assert!(a_locked, "give_back={give_back}: the waiter locks a, the first key, before it waits on b");
        let pair_locked = locked(&mut probe, "attempt_locks", &pair);
        release(&mut probe);
        assert!(!pair_locked, "give_back={give_back}: the pair's row is locked only after the counts");
        holder.batch_execute("COMMIT").unwrap();
        waiting.join().unwrap();
        waiter = postgres().expect("postgres");
    }
}

/// Audit entries appended inside `audit::deferring` are handed back instead of written
/// (the caller writes them with the change they record); nested calls keep their own, and
/// after it (also after a panic inside it) entries are written at once again.
#[test]
fn deferred_audit_entries_are_handed_back_not_written() {
    use persistence::audit::{self, Actor};
    for mut conn in databases() {
        let conn = &mut conn;
        let db = backend(conn);
        let who = Actor::system();
        let action = format!("t-{}", id());
        let count = |conn: &mut DbConn| -> i64 {
            schema::audit_log::table.filter(schema::audit_log::action.eq(&action)).count().get_result(conn).unwrap()
        };
        let ((), outer) = audit::deferring(|| {
            audit::append(conn, &who, &action, None, None, utc(at(1))).unwrap();
            let ((), inner) = audit::deferring(|| audit::append(conn, &who, &action, None, None, utc(at(2))).unwrap());
            assert_eq!(inner.len(), 1, "{db}: the nested call's own entry");
            audit::append(conn, &who, &action, None, None, utc(at(3))).unwrap();
        });
        assert_eq!(outer.iter().map(|r| r.at).collect::<Vec<_>>(), vec![at(1), at(3)], "{db}");
        assert_eq!(count(conn), 0, "{db}: nothing written while deferred");
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            audit::deferring(|| panic!("inside"));
        }));
        assert!(panicked.is_err());
        audit::append(conn, &who, &action, None, None, utc(at(4))).unwrap();
        assert_eq!(count(conn), 1, "{db}: written at once outside, also after a panic inside");
    }
}

#[test]
fn a_captcha_is_used_once() {
    for mut conn in databases() {
        let conn = &mut conn;
        let db = backend(conn);
        let nonce = id();
        assert!(citizens::use_captcha(conn, &nonce, utc(at(300))).unwrap(), "{db}: first use");
        assert!(!citizens::use_captcha(conn, &nonce, utc(at(300))).unwrap(), "{db}: a replay");
        assert!(citizens::use_captcha(conn, &id(), utc(at(300))).unwrap(), "{db}: another captcha");
    }
}

#[test]
fn public_lookups_are_counted_per_code_purpose_and_day() {
    for mut conn in databases() {
        let conn = &mut conn;
        let db = backend(conn);
        let nid = id();
        let day = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let hit = |conn: &mut DbConn, purpose, day| public_lookups::hit(conn, &nid, purpose, day, utc(at(0))).unwrap();
        assert_eq!(hit(conn, Purpose::Status, day), 1, "{db}: the first lookup");
        assert_eq!(hit(conn, Purpose::Status, day), 2, "{db}: the second lookup");
        assert_eq!(hit(conn, Purpose::Status, day), 3, "{db}: the third lookup");
        assert_eq!(hit(conn, Purpose::Recovery, day), 1, "{db}: another purpose");
        assert_eq!(hit(conn, Purpose::Status, day.succ_opt().unwrap()), 1, "{db}: the next day");
    }
}

// ---------------------------------------------------------------- e-folder guesses

fn account(conn: &mut DbConn) -> AccountId {
    let id = AccountId::from(id());
    let row = AccountRow {
        id: id.clone(),
        subject_hash: self::id(),
        person_type: "natural".into(),
        legal_id: None,
        nid_hash: self::id(),
        national_id_enc: "sealed".into(),
        gender_enc: "sealed".into(),
        first_name_enc: "sealed".into(),
        last_name_enc: "sealed".into(),
        father_name_enc: "sealed".into(),
        mobile_enc: "sealed".into(),
        mobile_hint: "0912***1234".into(),
        postal_code_enc: "sealed".into(),
        username: self::id(),
        password_hash: "hash".into(),
        must_change_password: false,
        token_version: 1,
        failed_logins: 4,
        locked_until: Some(at(600)),
        credentials_delivery: "sms".into(),
        last_login_at: None,
        password_changed_at: None,
        created_at: at(0),
        updated_at: at(0),
        credentials_undelivered_at: None,
    };
    efolder::insert(conn, &row).expect("account");
    id
}

#[test]
fn a_login_clears_the_failures_and_the_lock() {
    for mut conn in databases() {
        let conn = &mut conn;
        let db = backend(conn);
        let account = account(conn);
        efolder::record_login_success(conn, &account, at(700)).unwrap();
        let row = efolder::find(conn, &account).unwrap().unwrap();
        assert_eq!((row.failed_logins, row.locked_until, row.last_login_at), (0, None, Some(at(700))), "{db}");
    }
}

fn code(account: &str, hash: &str, sent_at: NaiveDateTime) -> ResetCodeRow {
    ResetCodeRow {
        account_id: account.into(),
        code_hash: hash.into(),
        attempts: 0,
        expires_at: sent_at + Duration::minutes(10),
        sent_at,
    }
}

#[test]
fn a_reset_code_is_replaced_only_after_the_resend_wait_and_guessed_a_bounded_number_of_times() {
    for mut conn in databases() {
        let conn = &mut conn;
        let db = backend(conn);
        let account = account(conn);
        let wait = Duration::seconds(120);
        assert!(efolder::replace_reset_code(conn, &code(&account, "one", at(0)), wait).unwrap(), "{db}: the first");
        assert!(!efolder::replace_reset_code(conn, &code(&account, "two", at(119)), wait).unwrap(), "{db}: too soon");
        assert_eq!(efolder::reset_code(conn, &account).unwrap().unwrap().code_hash, "one", "{db}: kept");
        assert!(efolder::replace_reset_code(conn, &code(&account, "three", at(120)), wait).unwrap(), "{db}: on time");
        assert_eq!(efolder::reset_code(conn, &account).unwrap().unwrap().code_hash, "three", "{db}: replaced");

        let first = efolder::take_reset_attempt(conn, &account, 2).unwrap().expect("the first guess");
        assert_eq!((first.code_hash.as_str(), first.attempts), ("three", 1), "{db}: the first guess counted");
        let second = efolder::take_reset_attempt(conn, &account, 2).unwrap().expect("the second guess");
        assert_eq!(second.attempts, 2, "{db}: the second guess counted");
        assert!(efolder::take_reset_attempt(conn, &account, 2).unwrap().is_none(), "{db}: guesses used up");
        assert!(efolder::take_reset_attempt(conn, &id().into(), 2).unwrap().is_none(), "{db}: no code");
    }
}

// ------------------------------------------------------------------------ sessions

#[test]
fn a_session_admits_only_its_own_audience_and_subject_while_live() {
    for mut conn in databases() {
        let conn = &mut conn;
        let db = backend(conn);
        let subject = id();
        let session = sessions::new_row("citizen", &subject, at(0), at(3600));
        sessions::insert(conn, &session).unwrap();
        let sid = session.id;
        let check = |conn: &mut DbConn, audience: &str, subject: &str, now| {
            sessions::check(conn, &sid, audience, subject, now, None).unwrap()
        };
        assert_eq!(check(conn, "citizen", &subject, at(10)), Ok(()), "{db}: live");
        assert_eq!(check(conn, "staff", &subject, at(10)), Err(Inactive::Ended), "{db}: another audience");
        assert_eq!(check(conn, "citizen", &id(), at(10)), Err(Inactive::Ended), "{db}: another subject");
        assert_eq!(check(conn, "citizen", &subject, at(3599)), Ok(()), "{db}: just before it expires");
        assert_eq!(check(conn, "citizen", &subject, at(3600)), Err(Inactive::Ended), "{db}: expired");
        let unknown = sessions::check(conn, &id(), "citizen", &subject, at(10), None).unwrap();
        assert_eq!(unknown, Err(Inactive::Ended), "{db}: an unknown session");
        assert!(sessions::end(conn, &sid, at(20)).unwrap(), "{db}: logout");
        assert_eq!(check(conn, "citizen", &subject, at(30)), Err(Inactive::Ended), "{db}: after logout");
    }
}

#[test]
fn an_idle_session_expires_and_a_used_one_is_marked_seen_at_most_once_a_minute() {
    for mut conn in databases() {
        let conn = &mut conn;
        let db = backend(conn);
        let subject = id();
        let session = sessions::new_row("staff", &subject, at(0), at(86_400));
        sessions::insert(conn, &session).unwrap();
        let sid = session.id;
        let idle = Some(Duration::minutes(15));
        let check = |conn: &mut DbConn, now| sessions::check(conn, &sid, "staff", &subject, now, idle).unwrap();
        let seen = |conn: &mut DbConn| {
            use schema::sessions::dsl as s;
            s::sessions.find(&sid).select(s::last_seen_at).first::<NaiveDateTime>(conn).unwrap()
        };
        assert_eq!(check(conn, at(59)), Ok(()), "{db}: used within the first minute");
        assert_eq!(seen(conn), at(0), "{db}: not marked again within a minute");
        assert_eq!(check(conn, at(60)), Ok(()), "{db}: used a minute later");
        assert_eq!(seen(conn), at(60), "{db}: marked seen");
        assert_eq!(check(conn, at(60 + 900)), Ok(()), "{db}: used exactly at the idle limit");
        assert_eq!(seen(conn), at(960), "{db}: marked seen");
        assert_eq!(check(conn, at(960 + 901)), Err(Inactive::Idle), "{db}: idle too long");
        assert_eq!(seen(conn), at(960), "{db}: an idle session is not revived");
    }
}

// ---------------------------------------------------------------- idempotency keys

fn claim(scope: &str, key: &str, hash: &str, created_at: NaiveDateTime) -> IdempotencyRow {
    IdempotencyRow {
        scope: scope.into(),
        key: key.into(),
        request_hash: hash.into(),
        status: "in_progress".into(),
        response_status: None,
        response_body: None,
        created_at,
        expires_at: created_at + Duration::hours(24),
    }
}

#[test]
fn an_idempotency_key_is_claimed_once_taken_over_when_abandoned_or_expired() {
    for mut conn in databases() {
        let conn = &mut conn;
        let db = backend(conn);
        let stale = Duration::seconds(60);
        let (scope, key) = (id(), id());
        assert_eq!(back_office::claim_key(conn, &claim(&scope, &key, "h1", at(0)), stale).unwrap(), None, "{db}");
        let held = back_office::claim_key(conn, &claim(&scope, &key, "h1", at(30)), stale).unwrap();
        assert_eq!(held.map(|r| r.created_at), Some(at(0)), "{db}: a live claim is reported, not taken");
        let other = back_office::claim_key(conn, &claim(&scope, &key, "h2", at(120)), stale).unwrap();
        assert_eq!(other.map(|r| r.request_hash), Some("h1".into()), "{db}: another request's claim is not taken");
        let held = back_office::claim_key(conn, &claim(&scope, &key, "h1", at(60)), stale).unwrap();
        assert!(held.is_some(), "{db}: exactly at the stale limit the claim still stands");
        assert_eq!(
            back_office::claim_key(conn, &claim(&scope, &key, "h1", at(61)), stale).unwrap(),
            None,
            "{db}: an abandoned claim of the same request is taken over"
        );
        let row = back_office::claim_key(conn, &claim(&scope, &key, "h1", at(62)), stale).unwrap().unwrap();
        assert_eq!(row.created_at, at(61), "{db}: the take-over restarted the claim");

        // A finished key answers with its response until it expires; then a new request claims it.
        back_office::finish_key(conn, &scope, &key, 201, "{}").unwrap();
        let done = back_office::claim_key(conn, &claim(&scope, &key, "h3", at(3600)), stale).unwrap().unwrap();
        assert_eq!((done.status.as_str(), done.response_status), ("done", Some(201)), "{db}: replayed");
        let later = at(61) + Duration::hours(24) + Duration::seconds(1);
        assert_eq!(back_office::claim_key(conn, &claim(&scope, &key, "h3", later), stale).unwrap(), None, "{db}");
        let row = back_office::claim_key(conn, &claim(&scope, &key, "h4", later), stale).unwrap().unwrap();
        assert_eq!((row.request_hash.as_str(), row.status.as_str()), ("h3", "in_progress"), "{db}: the new claim");
    }
}
