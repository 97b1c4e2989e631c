//! Closures (issue 19 item 2), black-box on SQLite and PostgreSQL: "closing a date (or
//! deactivating an office) with bookings moves each affected application to 'choose another
//! appointment' without a no-show, keeps its payment, sends an SMS, and gives it first pick
//! of the nearest-date seats for a few days …; the no-show job never marks a booking on a
//! closed day; the admin answer counts those notified."

use api::seed::offices::MARAGHEH_OFFICE_ID as MARAGHEH;
use chrono::Duration;
use ncr_tests::journey::{Person, eligible_people};
use ncr_tests::{TestApp, db_test};
use serde_json::{Value, json};

/// The closure's SMS without a seat to offer, and the start of the one with a seat.
const CLOSED_NO_OFFER: &str = "دفتر روز نوبت کارت ملی تعطیل است؛ بدون محرومیت نوبت تازه بگیرید.";
const CLOSED_WITH_OFFER: &str = "دفتر تعطیل شد؛ نوبت ";

async fn phone(app: &TestApp, mobile: &str) -> Vec<String> {
    api::jobs::deliver_outbox(&app.state).await.expect("outbox");
    let admin = app.admin_token().await;
    let (status, page) = app.get(&format!("/api/v1/admin/sandbox/sms?to={mobile}&limit=200"), Some(&admin)).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap().to_owned()).collect()
}

/// The citizen's phone got the closure's offer text exactly once. Other texts (the booking's)
/// may leave in the same outbox batch, in either order.
fn assert_one_offer(texts: &[String]) {
    let offers = texts.iter().filter(|t| t.starts_with(CLOSED_WITH_OFFER)).count();
    assert_eq!(offers, 1, "one closure text with an offer: {texts:?}");
}

async fn view(app: &TestApp, p: &Person) -> Value {
    let token = app.login(&p.national_id, &p.serial).await;
    let (status, v) = app.get("/api/v1/citizen/application", Some(&token)).await;
    assert_eq!(status, 200, "{v}");
    v
}

/// Seats counted in every slot from today on equal the holds, bookings and offered seats
/// pointing at it.
async fn assert_counters_agree(app: &TestApp) {
    let today = domain::calendar::tehran_date(app.clock_now());
    let mismatched = app
        .count_sql(&format!(
            "SELECT COUNT(*) AS n FROM slots s WHERE s.date >= '{today}' AND s.taken <> (SELECT COUNT(*) FROM applications a
               WHERE a.slot_office_id = s.office_id AND a.slot_date = s.date AND a.slot_shift = s.shift
                 AND a.appointment_status IN ('held', 'booked', 'offered'))"
        ))
        .await;
    assert_eq!(mismatched, 0, "slot counters disagree with the applications");
}

db_test!(closing_a_booked_day_moves_its_citizens_with_an_sms_no_ban_and_a_seat_kept_for_them, |app| {
    let people = eligible_people(&app, 4).await;
    let (a, b, c, late) = (&people[0], &people[1], &people[2], &people[3]);
    let day = app.open_date(MARAGHEH, 6).await;
    // The office's nearest days: tomorrow has one free morning seat, nothing else nearer.
    let tomorrow = domain::calendar::tehran_date(app.clock_now()) + Duration::days(1);
    for (a_, b_) in [(a, day), (b, day)] {
        let (_, location) = app.hold_and_pay(a_, MARAGHEH, b_, "success").await;
        assert!(location.contains("outcome=success"), "{location}");
    }
    // A citizen still at the bank for a seat that day when it closes.
    let late_token = app.draft(late).await;
    let (status, _) = app.hold(&late_token, MARAGHEH, day, "morning").await;
    assert_eq!(status, 200);
    let payment = app.start_payment(&late_token).await;
    // The office's nearest days are full but for one morning seat tomorrow.
    let last_near = tomorrow + Duration::days(4);
    app.exec_sql(&format!(
        "UPDATE slots SET capacity = taken WHERE office_id = '{MARAGHEH}' AND date BETWEEN '{tomorrow}' AND '{last_near}'"
    ))
    .await;
    let (_, taken) = app.slot_counts(MARAGHEH, tomorrow, "morning").await;
    app.set_slot(MARAGHEH, tomorrow, "morning", taken + 1).await;

    let admin = app.admin_token().await;
    let (status, closed) = app
        .post(
            &format!("/api/v1/admin/offices/{MARAGHEH}/closures"),
            Some(&admin),
            &json!({"date": day, "reason": "قطع برق ساختمان"}),
        )
        .await;
    assert_eq!(status, 201, "{closed}");
    assert_eq!(closed["affected_bookings"], 2, "{closed}");
    assert_eq!(closed["affected_holds"], 1, "{closed}");
    assert_eq!(closed["notified"], 2, "the admin answer counts those notified: {closed}");

    // A got the one seat of tomorrow, B the office's next free one; both paid, not banned.
    let (va, vb) = (view(&app, a).await, view(&app, b).await);
    for v in [&va, &vb] {
        assert_eq!((v["state"].as_str(), v["payment_status"].as_str()), (Some("registered"), Some("paid")), "{v}");
        assert_eq!(v["appointment_status"], "offered", "{v}");
        assert_eq!(v["next_step"], "choose_appointment");
        assert_eq!(v["no_show_ban_until"], Value::Null);
        assert!(v["allowed_operations"].as_array().unwrap().contains(&json!("change_appointment")));
        assert_eq!(v["appointment"]["office"]["id"], MARAGHEH, "the same office first");
        assert!(v["appointment"]["hold_expires_at"].is_string());
    }
    let offered = |v: &Value| {
        (v["appointment"]["date"].as_str().unwrap().to_owned(), v["appointment"]["shift"].as_str().unwrap().to_owned())
    };
    let mut offers = [offered(&va), offered(&vb)];
    offers.sort();
    assert_eq!(offers[0], (tomorrow.to_string(), "morning".to_owned()), "the nearest seat: {offers:?}");
    assert!(offers[1].0 > last_near.to_string(), "the next free day after the full ones: {offers:?}");
    for p in [a, b] {
        let texts = phone(&app, &p.mobile).await;
        assert_one_offer(&texts);
    }
    assert_counters_agree(&app).await;

    // Priority: the kept seat is not offered to anyone else.
    let c_token = app.draft(c).await;
    let (status, full) = app.hold(&c_token, MARAGHEH, tomorrow, "morning").await;
    assert_eq!((status, full["code"].as_str()), (409, Some("slot_full")), "{full}");

    // The one who got tomorrow confirms it; the other lets the offer lapse and books another.
    let (first, second) = if offered(&va).0 == tomorrow.to_string() { (a, b) } else { (b, a) };
    let first_token = app.login(&first.national_id, &first.serial).await;
    let (status, booked) = app.hold(&first_token, MARAGHEH, tomorrow, "morning").await;
    assert_eq!(status, 200, "{booked}");
    assert_eq!(
        (booked["appointment_status"].as_str(), booked["next_step"].as_str()),
        (Some("booked"), Some("attend_enrollment"))
    );
    assert_eq!(booked["appointment"]["hold_expires_at"], Value::Null);
    assert!(phone(&app, &first.mobile).await[0].starts_with("نوبت کارت ملی"), "a booking SMS");

    // The late payer's payment completes for the closed day.
    let (action, fields) = app.bank_choose(payment["redirect_url"].as_str().unwrap(), "success").await;
    let location = app.post_callback(&action, &fields).await;
    assert!(location.contains("outcome=success"), "{location}");
    let vl = view(&app, late).await;
    assert_eq!(vl["appointment_status"], "booked", "{vl}");

    // Days pass: the unconfirmed offer lapses without a ban.
    app.clock.advance(Duration::days(4));
    assert!(api::jobs::release_expired_holds(&app.state).await.unwrap() >= 1);
    let v2 = view(&app, second).await;
    assert_eq!(
        (v2["appointment_status"].as_str(), v2["next_step"].as_str()),
        (Some("none"), Some("choose_appointment")),
        "{v2}"
    );
    assert!(v2["booking_deadline"].is_string(), "the two months count from the closure");

    // The closed day's shifts end: the no-show job leaves its booking alone …
    app.clock.set(domain::calendar::tehran_instant(day, 20, 0));
    api::jobs::mark_no_shows(&app.state).await.unwrap();
    let late_id = vl["id"].as_str().unwrap();
    assert_eq!(view(&app, late).await["appointment_status"], "booked", "not missed on a closed day");
    assert_eq!(
        app.count_sql(&format!(
            "SELECT count(*) AS n FROM audit_log WHERE action = 'no_show' AND application_id = '{late_id}'"
        ))
        .await,
        0
    );
    // … and the closure sweep moves it, with its SMS.
    assert_eq!(api::jobs::run(&app.state, "displace_closed_bookings").await.unwrap(), 1);
    let vl = view(&app, late).await;
    assert_eq!(
        (vl["appointment_status"].as_str(), vl["payment_status"].as_str()),
        (Some("offered"), Some("paid")),
        "{vl}"
    );
    assert_eq!(vl["no_show_ban_until"], Value::Null);
    assert_one_offer(&phone(&app, &late.mobile).await);
    assert_eq!(api::jobs::run(&app.state, "displace_closed_bookings").await.unwrap(), 0, "once");

    // The one whose offer lapsed books again at once: no ban.
    let second_token = app.login(&second.national_id, &second.serial).await;
    let later = app.open_date(MARAGHEH, 2).await;
    let (status, rebooked) = app.hold(&second_token, MARAGHEH, later, "afternoon").await;
    assert_eq!((status, rebooked["appointment_status"].as_str()), (200, Some("booked")), "no ban: {rebooked}");
    assert_counters_agree(&app).await;
});

db_test!(taking_an_office_out_of_service_moves_its_citizens_to_another_office_of_the_city, |app| {
    let people = eligible_people(&app, 1).await;
    let p = &people[0];
    let day = app.open_date(MARAGHEH, 3).await;
    app.hold_and_pay(p, MARAGHEH, day, "success").await;
    let admin = app.admin_token().await;
    let (status, out) =
        app.post(&format!("/api/v1/admin/offices/{MARAGHEH}/deactivate"), Some(&admin), &json!({})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!((out["future_bookings"].as_i64(), out["notified"].as_i64()), (Some(1), Some(1)), "{out}");
    let v = view(&app, p).await;
    assert_eq!(v["appointment_status"], "offered", "{v}");
    let office = v["appointment"]["office"].clone();
    assert_ne!(office["id"], MARAGHEH);
    assert_eq!(office["city_code"], "041", "the same city: {office}");
    assert_one_offer(&phone(&app, &p.mobile).await);
    // Deactivating again moves no one twice.
    let (_, again) = app.post(&format!("/api/v1/admin/offices/{MARAGHEH}/deactivate"), Some(&admin), &json!({})).await;
    assert_eq!(again["notified"], 0);
    assert_eq!(api::jobs::run(&app.state, "displace_closed_bookings").await.unwrap(), 0);
    assert_counters_agree(&app).await;
});

db_test!(a_holiday_moves_the_day_s_citizens_and_without_a_free_seat_they_simply_choose_again, |app| {
    let people = eligible_people(&app, 1).await;
    let p = &people[0];
    let day = app.open_date(MARAGHEH, 3).await;
    app.hold_and_pay(p, MARAGHEH, day, "success").await;
    // No free seat anywhere in the city within the booking window.
    app.exec_sql("UPDATE slots SET capacity = taken WHERE city_code = '041'").await;
    let admin = app.admin_token().await;
    let (status, out) =
        app.post("/api/v1/admin/holidays", Some(&admin), &json!({"date": day, "name": "تعطیل آزمایشی"})).await;
    assert_eq!(status, 201, "{out}");
    assert_eq!(out["notified"], 1, "{out}");
    let v = view(&app, p).await;
    assert_eq!((v["appointment_status"].as_str(), v["appointment"].clone()), (Some("none"), Value::Null), "{v}");
    assert_eq!((v["payment_status"].as_str(), v["next_step"].as_str()), (Some("paid"), Some("choose_appointment")));
    assert_eq!(phone(&app, &p.mobile).await[0], CLOSED_NO_OFFER);
    assert_counters_agree(&app).await;
});
