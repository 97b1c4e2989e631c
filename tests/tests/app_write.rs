//! The persistence primitives behind the payment start and the bank callback (issue 21),
//! on SQLite and PostgreSQL: `app_write::save` leaves exactly the rows the one-by-one
//! writes leave and refuses a stale version with nothing written; `payments::mark_callback`
//! marks only the order's open payment at its gateway with its token;
//! `payments::find_with_application` reads both rows and the catalog version.

use api::seed::population::{MALE, SAMPLE};
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use domain::payment::PaymentStatus;
use ncr_tests::journey::Person;
use ncr_tests::{TestApp, db_test};
use persistence::app_write::{self, Along};
use persistence::applications::{self, ApplicationRow};
use persistence::audit::{self, Actor, AuditRow};
use persistence::outbox::{self, NewMessage, OutboxRow};
use persistence::payments::{self, PaymentRow};
use persistence::schema::{audit_log, outbox as outbox_t};
use persistence::{DbConn, DbError, write_tx};

/// A draft application for a person, as stored (the one the draft added: with the test's
/// clock standing still, creation times do not tell).
async fn drafted(app: &TestApp, p: &api::seed::population::Persona) -> ApplicationRow {
    use persistence::schema::applications as t;
    let ids = |app: &TestApp| -> Vec<String> {
        let mut conn = app.state.db.get().unwrap();
        t::table.select(t::id).load(&mut *conn).unwrap()
    };
    let before = ids(app);
    app.draft(&Person::from(p)).await;
    let new: Vec<String> = ids(app).into_iter().filter(|id| !before.contains(id)).collect();
    assert_eq!(new.len(), 1, "{new:?}");
    let mut conn = app.state.db.get().unwrap();
    applications::find(&mut conn, &new[0].clone().into()).unwrap().unwrap()
}

fn new_payment(row: &ApplicationRow, order_id: i64, now: DateTime<Utc>) -> PaymentRow {
    PaymentRow {
        id: persistence::new_id(),
        order_id,
        application_id: row.id.clone(),
        gateway: "sandbox".into(),
        amount: 200_000,
        status: PaymentStatus::Created,
        token: None,
        redirect_url: None,
        reference: None,
        card_mask: None,
        bank_code: None,
        expires_at: (now + Duration::minutes(15)).naive_utc(),
        attempts: 0,
        next_check_at: None,
        last_error: None,
        version: 0,
        created_at: now.naive_utc(),
        updated_at: now.naive_utc(),
        settled_at: None,
        reversal_attempts: 0,
        reversal_error: None,
    }
}

/// The same change, whichever application it is made to.
fn change(row: &mut ApplicationRow, p: &mut PaymentRow) {
    row.state = "payment_pending".into();
    row.payment_status = "pending".into();
    p.status = PaymentStatus::Redirected;
    p.token = Some(format!("tok-{}", p.order_id));
}

fn along_rows(app: &TestApp, row: &ApplicationRow, p: &PaymentRow, now: DateTime<Utc>) -> (AuditRow, OutboxRow) {
    let actor = Actor { kind: "citizen", id: Some("c-1".into()), request_id: Some("r-1".into()), client_ip: None };
    let entry = audit::entry(&actor, "payment_started", Some(&row.id), Some(serde_json::json!({"n": 1})), now);
    let message = outbox::message(
        &app.state.pii,
        NewMessage {
            channel: "sms",
            recipient: "09141234567",
            recipient_hint: "0914***4567".into(),
            template: "payment_result",
            params: serde_json::json!({"success": true}),
            lang: "fa",
            application_id: Some(&row.id),
            dedupe_key: Some(format!("payment:{}", p.id)),
        },
        now,
    );
    (entry, message)
}

/// The entries the test writes (the draft wrote its own before).
fn audit_of(conn: &mut DbConn, row: &ApplicationRow) -> Vec<AuditRow> {
    audit_log::table
        .filter(audit_log::application_id.eq(row.id.as_str()))
        .filter(audit_log::action.eq_any(["payment_started", "edited"]))
        .select(AuditRow::as_select())
        .load(conn)
        .unwrap()
}

/// The messages the test queues.
fn outbox_of(conn: &mut DbConn, row: &ApplicationRow) -> Vec<OutboxRow> {
    outbox_t::table
        .filter(outbox_t::application_id.eq(row.id.as_str()))
        .filter(outbox_t::template.eq("payment_result"))
        .select(OutboxRow::as_select())
        .load(conn)
        .unwrap()
}

/// What a row says, without what names the application or the row itself.
fn audit_facts(a: &AuditRow) -> String {
    format!(
        "{} {:?} {} {:?} {:?} {:?} {:?}",
        a.at, a.actor_id, a.actor_kind, a.action, a.request_id, a.details, a.client_ip
    )
}

fn outbox_facts(o: &OutboxRow, pii: &persistence::Pii) -> String {
    let params = pii.open(persistence::PiiKind::Secret, &o.params_enc).unwrap();
    let to = pii.open(persistence::PiiKind::Mobile, &o.recipient_enc).unwrap();
    format!(
        "{} {} {} {} {} {} {} {} {:?} {} {:?} {:?}",
        o.channel,
        to,
        o.recipient_hint,
        o.template,
        params,
        o.lang,
        o.status,
        o.attempts,
        o.claimed_until,
        o.next_attempt_at,
        o.dedupe_key.as_ref().map(|k| k.starts_with("payment:")),
        o.sent_at
    )
}

db_test!(the_combined_write_leaves_the_rows_the_one_by_one_writes_leave, |app| {
    let now = app.clock_now();
    let (mut one, mut both) = (drafted(&app, &SAMPLE).await, drafted(&app, &MALE).await);
    let mut conn = app.state.db.get().unwrap();
    let (mut p1, mut p2) = (new_payment(&one, 1_000_001, now), new_payment(&both, 1_000_002, now));
    payments::insert(&mut conn, &p1).unwrap();
    payments::insert(&mut conn, &p2).unwrap();
    let later = now + Duration::seconds(5);

    // One by one, as before.
    change(&mut one, &mut p1);
    let (entry, message) = along_rows(&app, &one, &p1, later);
    write_tx(&mut conn, |conn| {
        applications::update(conn, &mut one, later)?;
        audit::insert(conn, &entry)?;
        assert!(outbox::enqueue_row(conn, &message)?);
        payments::update(conn, &mut p1, later)
    })
    .unwrap();

    // Together.
    change(&mut both, &mut p2);
    let (entry, message) = along_rows(&app, &both, &p2, later);
    let written = write_tx(&mut conn, |conn| {
        app_write::save(
            conn,
            &mut both,
            Along { audit: vec![entry], outbox: vec![message], payment: Some(&mut p2) },
            later,
        )
    })
    .unwrap();
    assert_eq!(written.queued, 1);

    // The rows in memory are the rows stored, and the two ways stored the same.
    let stored_one = applications::find(&mut conn, &one.id).unwrap().unwrap();
    let stored_both = applications::find(&mut conn, &both.id).unwrap().unwrap();
    assert_eq!(stored_one, one);
    assert_eq!(stored_both, both);
    assert_eq!((stored_both.version, stored_both.updated_at), (stored_one.version, stored_one.updated_at));
    assert_eq!((stored_both.state.as_str(), stored_both.payment_status.as_str()), ("payment_pending", "pending"));
    let (sp1, sp2) =
        (payments::find(&mut conn, &p1.id).unwrap().unwrap(), payments::find(&mut conn, &p2.id).unwrap().unwrap());
    assert_eq!((sp1.clone(), sp2.clone()), (p1.clone(), p2.clone()));
    assert_eq!((sp2.version, sp2.status, sp2.updated_at), (sp1.version, sp1.status, sp1.updated_at));
    assert_eq!(sp2.version, 1);

    let (a1, a2) = (audit_of(&mut conn, &one), audit_of(&mut conn, &both));
    assert_eq!(a1.len(), 1);
    assert_eq!(a1.iter().map(audit_facts).collect::<Vec<_>>(), a2.iter().map(audit_facts).collect::<Vec<_>>());
    let (o1, o2) = (outbox_of(&mut conn, &one), outbox_of(&mut conn, &both));
    assert_eq!(o1.len(), 1);
    let pii = app.state.pii.clone();
    assert_eq!(
        o1.iter().map(|o| outbox_facts(o, &pii)).collect::<Vec<_>>(),
        o2.iter().map(|o| outbox_facts(o, &pii)).collect::<Vec<_>>()
    );

    // Without a payment, without messages, outside a transaction: the application and its
    // entry alone.
    let read = both.version;
    both.edits_left -= 1;
    let actor = Actor::system();
    let entry = audit::entry(&actor, "edited", Some(&both.id), None, later);
    let written =
        app_write::save(&mut conn, &mut both, Along { audit: vec![entry], ..Along::default() }, later).unwrap();
    assert_eq!(written.queued, 0);
    assert_eq!(applications::find(&mut conn, &both.id).unwrap().unwrap(), both);
    assert_eq!(both.version, read + 1);
    assert_eq!(audit_of(&mut conn, &both).len(), 2);
});

db_test!(a_stale_version_is_refused_with_nothing_written, |app| {
    let now = app.clock_now();
    let mut row = drafted(&app, &SAMPLE).await;
    let mut conn = app.state.db.get().unwrap();
    let mut p = new_payment(&row, 2_000_001, now);
    payments::insert(&mut conn, &p).unwrap();
    let stored_row = applications::find(&mut conn, &row.id).unwrap().unwrap();
    let later = now + Duration::seconds(1);

    // Another writer moved the application since it was read.
    let mut other = stored_row.clone();
    other.edits_left -= 1;
    applications::update(&mut conn, &mut other, later).unwrap();
    change(&mut row, &mut p);
    let (entry, message) = along_rows(&app, &row, &p, later);
    let (row_before, p_before) = (row.clone(), p.clone());
    // Outside a transaction (it opens its own) and inside the caller's.
    let alone = app_write::save(
        &mut conn,
        &mut row,
        Along { audit: vec![entry.clone()], outbox: vec![message.clone()], payment: Some(&mut p) },
        later,
    );
    assert!(matches!(alone, Err(DbError::Stale)), "{alone:?}");
    assert_eq!((&row, &p), (&row_before, &p_before), "the rows keep the versions read");
    let inside = write_tx(&mut conn, |conn| {
        app_write::save(
            conn,
            &mut row,
            Along { audit: vec![entry.clone()], outbox: vec![message.clone()], payment: Some(&mut p) },
            later,
        )
    });
    assert!(matches!(inside, Err(DbError::Stale)), "{inside:?}");
    assert_eq!(applications::find(&mut conn, &row.id).unwrap().unwrap(), other);
    assert_eq!(payments::find(&mut conn, &p.id).unwrap().unwrap().version, 0);
    let (au, ou) = (audit_of(&mut conn, &row), outbox_of(&mut conn, &row));
    assert!(
        au.is_empty() && ou.is_empty(),
        "{:?} {:?}",
        au.iter().map(audit_facts).collect::<Vec<_>>(),
        ou.iter().map(|o| o.template.clone()).collect::<Vec<_>>()
    );

    // The application current, the payment moved meanwhile (reconciliation's claim).
    let mut row = other.clone();
    row.state = "payment_pending".into();
    let mut claimed = payments::find(&mut conn, &p.id).unwrap().unwrap();
    claimed.next_check_at = Some(later.naive_utc());
    payments::update(&mut conn, &mut claimed, later).unwrap();
    // Outside a transaction (PostgreSQL: the one statement writes all or nothing) and inside.
    let alone = app_write::save(
        &mut conn,
        &mut row,
        Along { audit: vec![entry.clone()], outbox: vec![message.clone()], payment: Some(&mut p) },
        later,
    );
    assert!(matches!(alone, Err(DbError::Stale)), "{alone:?}");
    assert_eq!(applications::find(&mut conn, &row.id).unwrap().unwrap(), other, "the application is not half-written");
    assert!(audit_of(&mut conn, &row).is_empty() && outbox_of(&mut conn, &row).is_empty());
    let stale_payment = write_tx(&mut conn, |conn| {
        app_write::save(
            conn,
            &mut row,
            Along { audit: vec![entry.clone()], outbox: vec![message.clone()], payment: Some(&mut p) },
            later,
        )
    });
    assert!(matches!(stale_payment, Err(DbError::Stale)), "{stale_payment:?}");
    assert_eq!((row.version, p.version), (other.version, 0));
    assert_eq!(applications::find(&mut conn, &row.id).unwrap().unwrap(), other, "the application is not half-written");
    assert_eq!(payments::find(&mut conn, &p.id).unwrap().unwrap(), claimed);
    assert!(audit_of(&mut conn, &row).is_empty() && outbox_of(&mut conn, &row).is_empty());

    // With the payment as it now is, it is written; a message already queued is not again.
    let mut p = claimed.clone();
    p.status = PaymentStatus::Redirected;
    let written = app_write::save(
        &mut conn,
        &mut row,
        Along { audit: vec![entry.clone()], outbox: vec![message.clone()], payment: Some(&mut p) },
        later,
    )
    .unwrap();
    assert_eq!(written.queued, 1);
    let mut again = row.clone();
    again.edits_left -= 1;
    let mut dup = message.clone();
    dup.id = persistence::new_id();
    let written =
        app_write::save(&mut conn, &mut again, Along { outbox: vec![dup], ..Along::default() }, later).unwrap();
    assert_eq!(written.queued, 0);
    assert_eq!((audit_of(&mut conn, &row).len(), outbox_of(&mut conn, &row).len()), (1, 1));
    assert_eq!(payments::find(&mut conn, &p.id).unwrap().unwrap().status, PaymentStatus::Redirected);
});

db_test!(a_second_application_of_the_same_cycle_is_refused_with_nothing_written, |app| {
    // Two first saves of personal information race: the one per citizen and cycle wins,
    // the other is `Stale` (and reads again) with neither the row nor its entry written.
    let now = app.clock_now();
    let first = drafted(&app, &SAMPLE).await;
    let mut conn = app.state.db.get().unwrap();
    let mut twin = first.clone();
    twin.id = persistence::new_id();
    let entry = audit::entry(&Actor::system(), "application_created", Some(&twin.id), None, now);
    let refused = app_write::create(&mut conn, &twin, std::slice::from_ref(&entry));
    assert!(matches!(refused, Err(DbError::Stale)), "{refused:?}");
    assert!(applications::find(&mut conn, &twin.id).unwrap().is_none());
    let entries: i64 = audit_log::table.filter(audit_log::id.eq(&entry.id)).count().get_result(&mut *conn).unwrap();
    assert_eq!(entries, 0, "the entry went with the refused row");
    // The next cycle is created, with its entry.
    twin.cycle += 1;
    let entry = audit::entry(&Actor::system(), "application_created", Some(&twin.id), None, now);
    app_write::create(&mut conn, &twin, std::slice::from_ref(&entry)).unwrap();
    assert_eq!(applications::find(&mut conn, &twin.id).unwrap().unwrap(), twin);
    let entries: i64 = audit_log::table.filter(audit_log::id.eq(&entry.id)).count().get_result(&mut *conn).unwrap();
    assert_eq!(entries, 1);
});

db_test!(a_callback_marks_only_the_open_payment_of_its_order_gateway_and_token, |app| {
    let now = app.clock_now();
    let row = drafted(&app, &SAMPLE).await;
    let mut conn = app.state.db.get().unwrap();
    let mut p = new_payment(&row, 3_000_001, now);
    p.status = PaymentStatus::Redirected;
    p.token = Some("tok-a".into());
    payments::insert(&mut conn, &p).unwrap();
    let later = now + Duration::seconds(3);
    let mark = |conn: &mut DbConn, order, gateway: &str, token: Option<&str>| {
        payments::mark_callback(conn, order, gateway, token, "OK", later).unwrap()
    };
    assert_eq!(mark(&mut conn, 3_000_002, "sandbox", None), None, "an unknown order");
    assert_eq!(mark(&mut conn, 3_000_001, "parsian", None), None, "another gateway's");
    assert_eq!(mark(&mut conn, 3_000_001, "sandbox", Some("tok-b")), None, "not the order's token");
    assert_eq!(payments::find(&mut conn, &p.id).unwrap().unwrap(), p, "nothing written");
    let marked = mark(&mut conn, 3_000_001, "sandbox", Some("tok-a")).expect("the order's payment");
    assert_eq!(
        (marked.status, marked.version, marked.bank_code.as_deref()),
        (PaymentStatus::CallbackReceived, 1, Some("OK"))
    );
    assert_eq!(marked.updated_at, later.naive_utc());
    assert_eq!(payments::find(&mut conn, &p.id).unwrap().unwrap(), marked);
    assert_eq!(mark(&mut conn, 3_000_001, "sandbox", None), None, "called back already");

    // Without a token in the callback, and from `unknown`, it is marked; a settled one never.
    let mut q = new_payment(&row, 3_000_003, now);
    q.status = PaymentStatus::Unknown;
    payments::insert(&mut conn, &q).unwrap();
    assert!(mark(&mut conn, 3_000_003, "sandbox", None).is_some());
    let mut r = new_payment(&row, 3_000_004, now);
    r.status = PaymentStatus::Failed;
    payments::insert(&mut conn, &r).unwrap();
    assert_eq!(mark(&mut conn, 3_000_004, "sandbox", None), None);

    // The payment and its application together, with the catalog version.
    let (pp, aa, v) = write_tx(&mut conn, |conn| payments::find_with_application(conn, &p.id, true)).unwrap().unwrap();
    assert_eq!((pp, aa), (marked, applications::find(&mut conn, &row.id).unwrap().unwrap()));
    assert_eq!(v, persistence::catalog::version(&mut conn).unwrap());
    let none = payments::find_with_application(&mut conn, &persistence::new_id(), true).unwrap();
    assert!(none.is_none());
});

db_test!(a_first_seat_taken_alone_writes_the_seat_the_application_and_its_entry_or_nothing, |app| {
    // PostgreSQL's hold without a transaction (`app_write::take_seat_alone`): the seat is
    // taken only with the application at the version read, the audit entry only with both;
    // a stale version or a full slot leaves every row as it was. (SQLite takes its seats in
    // a transaction: the primitive refuses it.)
    use api::seed::offices::MARAGHEH_OFFICE_ID as MARAGHEH;
    use domain::offices::Shift;
    use domain::record_ids::OfficeId;
    use persistence::offices;
    let date = app.open_date(MARAGHEH, 2).await;
    let first = drafted(&app, &SAMPLE).await;
    let second = drafted(&app, &MALE).await;
    let now = app.clock_now();
    let office = OfficeId::from(MARAGHEH);
    let mut conn = app.state.db.get().unwrap();
    let conn: &mut DbConn = &mut conn;
    let actor = Actor { kind: "citizen", id: Some("c-1".into()), request_id: None, client_ip: None };
    let held = |row: &ApplicationRow| {
        let mut row = row.clone();
        row.appointment_status = "held".into();
        row.slot_office_id = Some(MARAGHEH.into());
        row.slot_date = Some(date);
        row.slot_shift = Some("morning".into());
        let entry = audit::entry(&actor, "appointment_held", Some(&row.id), None, now);
        (row, entry)
    };
    let entries = |conn: &mut DbConn, id: &str| -> i64 {
        audit_log::table
            .filter(audit_log::application_id.eq(id))
            .filter(audit_log::action.eq("appointment_held"))
            .count()
            .get_result(conn)
            .unwrap()
    };
    let taken = |conn: &mut DbConn| offices::slot(conn, &office, date, Shift::Morning).unwrap().unwrap().taken;
    if matches!(conn, DbConn::Sqlite(_)) {
        let (mut row, entry) = held(&first);
        assert!(app_write::take_seat_alone(conn, &office, date, Shift::Morning, &mut row, &[entry], now).is_err());
        return;
    }
    let before = taken(conn);

    // Stale: the application moved since it was read.
    let (mut stale, entry) = held(&first);
    stale.version -= 1;
    let done = app_write::take_seat_alone(conn, &office, date, Shift::Morning, &mut stale, &[entry], now).unwrap();
    assert_eq!(done, app_write::SeatTaken::Stale);
    assert_eq!(taken(conn), before, "no seat taken for a stale application");
    assert_eq!(entries(conn, &first.id), 0);
    assert_eq!(applications::find(conn, &first.id).unwrap().unwrap(), first, "the application as it was");

    // Taken: the seat, the application (its version bumped) and its entry.
    let (mut row, entry) = held(&first);
    let done = app_write::take_seat_alone(conn, &office, date, Shift::Morning, &mut row, &[entry], now).unwrap();
    assert_eq!(done, app_write::SeatTaken::Taken);
    assert_eq!(taken(conn), before + 1);
    assert_eq!(entries(conn, &first.id), 1);
    let stored = applications::find(conn, &first.id).unwrap().unwrap();
    assert_eq!((stored.version, stored.appointment_status.as_str()), (first.version + 1, "held"));
    assert_eq!(stored, row, "the row as saved is the row returned");

    // Full: the slot has no seat left; the second application stays a draft.
    diesel::update(
        persistence::schema::slots::table
            .filter(persistence::schema::slots::office_id.eq(MARAGHEH))
            .filter(persistence::schema::slots::date.eq(date))
            .filter(persistence::schema::slots::shift.eq("morning")),
    )
    .set(persistence::schema::slots::capacity.eq(before + 1))
    .execute(conn)
    .unwrap();
    let (mut row, entry) = held(&second);
    let refused = app_write::take_seat_alone(conn, &office, date, Shift::Morning, &mut row, &[entry], now);
    assert!(matches!(refused, Err(DbError::Domain(domain::DomainError::SlotFull))), "{refused:?}");
    assert_eq!(taken(conn), before + 1);
    assert_eq!(entries(conn, &second.id), 0);
    assert_eq!(applications::find(conn, &second.id).unwrap().unwrap(), second);
});

db_test!(a_seat_taken_alone_while_another_writer_holds_the_application_writes_nothing, |app| {
    // The race the one statement must lose cleanly: another writer holds the application's
    // row and commits a new version while `take_seat_alone` waits for it. The statement then
    // finds no row at the version it read — `Stale`, no seat, no entry (PostgreSQL).
    use api::seed::offices::MARAGHEH_OFFICE_ID as MARAGHEH;
    use domain::offices::Shift;
    use domain::record_ids::OfficeId;
    use persistence::offices;
    let date = app.open_date(MARAGHEH, 2).await;
    let first = drafted(&app, &SAMPLE).await;
    let now = app.clock_now();
    let office = OfficeId::from(MARAGHEH);
    let db = app.state.db.clone();
    let mut writer = db.get().unwrap();
    if matches!(&*writer, DbConn::Sqlite(_)) {
        return; // one writer at a time there: the hold takes its seat in a transaction.
    }
    let taken = |conn: &mut DbConn| offices::slot(conn, &office, date, Shift::Morning).unwrap().unwrap().taken;
    let before = taken(&mut writer);
    diesel::sql_query("BEGIN").execute(&mut *writer).unwrap();
    diesel::sql_query("UPDATE applications SET version = version + 1 WHERE id = $1")
        .bind::<diesel::sql_types::Text, _>(first.id.as_str())
        .execute(&mut *writer)
        .unwrap();
    let mut row = first.clone();
    row.appointment_status = "held".into();
    row.slot_office_id = Some(MARAGHEH.into());
    row.slot_date = Some(date);
    row.slot_shift = Some("morning".into());
    let actor = Actor { kind: "citizen", id: Some("c-1".into()), request_id: None, client_ip: None };
    let entry = audit::entry(&actor, "appointment_held", Some(&row.id), None, now);
    let (db2, office2) = (db.clone(), office.clone());
    let waiting = std::thread::spawn(move || {
        let mut conn = db2.get().unwrap();
        app_write::take_seat_alone(&mut conn, &office2, date, Shift::Morning, &mut row, &[entry], now)
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!waiting.is_finished(), "the statement waits for the application's row");
    diesel::sql_query("COMMIT").execute(&mut *writer).unwrap();
    let done = waiting.join().unwrap().unwrap();
    assert_eq!(done, app_write::SeatTaken::Stale);
    assert_eq!(taken(&mut writer), before, "no seat taken for an application that changed meanwhile");
    let entries: i64 = audit_log::table
        .filter(audit_log::application_id.eq(first.id.as_str()))
        .filter(audit_log::action.eq("appointment_held"))
        .count()
        .get_result(&mut *writer)
        .unwrap();
    assert_eq!(entries, 0);
    let stored = applications::find(&mut writer, &first.id).unwrap().unwrap();
    assert_eq!(
        (stored.version, &stored.appointment_status),
        (first.version + 1, &first.appointment_status),
        "only the other writer's change"
    );
});

db_test!(a_first_entry_writes_the_citizen_and_her_session_together_or_nothing, |app| {
    // PostgreSQL's first entry without a transaction (`citizens::enter_new_alone`): a new
    // national code gets its citizen and her session in one statement; a national code that
    // entered before — under the active lookup value or an older one — gets neither, and
    // the caller takes the transaction. (SQLite enters in a transaction: the primitive
    // refuses it.)
    use persistence::citizens::{self, Entry};
    use persistence::schema::{citizens as c, sessions as s};
    let now = app.clock_now();
    let mut conn = app.state.db.get().unwrap();
    let conn: &mut DbConn = &mut conn;
    fn entry(hashes: &[String]) -> Entry<'_> {
        Entry { hashes, nid_enc: "sealed-nid".into(), serial_enc: "sealed-serial".into(), serial_verified: true }
    }
    let hashes = &["lookup-new-1".to_owned()][..];
    let session = |subject: &str| api::tokens::session_row(api::tokens::Audience::Citizen, subject, now, 30);
    let counts = |conn: &mut DbConn| -> (i64, i64) {
        (c::table.count().get_result(conn).unwrap(), s::table.count().get_result(conn).unwrap())
    };
    if matches!(conn, DbConn::Sqlite(_)) {
        assert!(citizens::enter_new_alone(conn, &entry(hashes), &session("c-x"), now).is_err());
        return;
    }
    let before = counts(conn);

    let first = session(&persistence::new_id::<String>());
    let citizen = citizens::enter_new_alone(conn, &entry(hashes), &first, now).unwrap().expect("a new citizen");
    assert_eq!(citizen.id.as_str(), first.subject);
    assert_eq!(counts(conn), (before.0 + 1, before.1 + 1));
    let stored = citizens::find_by_nid(conn, hashes).unwrap().expect("stored");
    assert_eq!((stored.id.as_str(), stored.serial_verified), (first.subject.as_str(), true));
    let opened: persistence::sessions::SessionRow =
        s::table.find(&first.id).select(persistence::sessions::SessionRow::as_select()).first(conn).unwrap();
    assert_eq!(opened, first, "the session as built");

    // The same national code again: nothing written.
    let again = session(&persistence::new_id::<String>());
    assert!(citizens::enter_new_alone(conn, &entry(hashes), &again, now).unwrap().is_none());
    assert_eq!(counts(conn), (before.0 + 1, before.1 + 1));

    // The national code stored under an older lookup key, entered under a new active one.
    let rotated = &["lookup-rotated".to_owned(), hashes[0].clone()][..];
    let third = session(&persistence::new_id::<String>());
    assert!(citizens::enter_new_alone(conn, &entry(rotated), &third, now).unwrap().is_none());
    assert_eq!(counts(conn), (before.0 + 1, before.1 + 1));
});
