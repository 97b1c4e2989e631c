//! Each rule of SPEC §3.6 and each row of the §3.7 table is a test here.

use super::*;
use crate::calendar::tehran_instant;
use proptest::prelude::*;

fn now() -> DateTime<Utc> {
    tehran_instant(NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(), 10, 0)
}

fn policy() -> Policy {
    Policy::default()
}

fn slot(days_ahead: i64) -> Slot {
    Slot { office_id: "maragheh".into(), date: tehran_date(now()) + Duration::days(days_ahead), shift: Shift::Morning }
}

fn tc() -> TrackingCode {
    TrackingCode::from_random(497_320_167)
}

fn apply(app: &Application, event: Event) -> Application {
    transition(app, event.clone(), now(), &policy())
        .unwrap_or_else(|e| panic!("{} from {:?}: {e}", event.name(), app.state))
}

fn draft() -> Application {
    let a = Application::new_draft(&policy(), IdentityStatus::Verified);
    apply(&a, Event::AnswerSpecialNeeds(SpecialNeeds::TYPICAL))
}

fn held() -> Application {
    apply(&draft(), Event::TakeSlot { slot: slot(3), expires_at: now() + policy().hold_ttl })
}

fn registered() -> Application {
    let paying = apply(&held(), Event::StartPayment);
    apply(&paying, Event::PaymentSucceeded { tracking_code: tc(), seat_held: true })
}

fn at(days: i64) -> DateTime<Utc> {
    now() + Duration::days(days)
}

#[test]
fn the_happy_path_reaches_registered_with_a_tracking_code() {
    let app = registered();
    assert_eq!(app.state, State::Registered);
    assert_eq!(app.payment, PaymentStatus::Paid);
    assert_eq!(app.appointment, AppointmentStatus::Booked);
    assert_eq!(app.tracking_code, Some(tc()));
    assert_eq!(next_step(Some(&app), now()), NextStep::AttendEnrollment);
}

#[test]
fn next_step_routes_a_new_citizen_through_the_first_page() {
    assert_eq!(next_step(None, now()), NextStep::EnterPersonalInfo);
    let fresh = Application::new_draft(&policy(), IdentityStatus::Verified);
    assert_eq!(next_step(Some(&fresh), now()), NextStep::AnswerSpecialNeeds);
    assert_eq!(next_step(Some(&draft()), now()), NextStep::ChooseAppointment);
    assert_eq!(next_step(Some(&held()), now()), NextStep::Pay);
}

/// §3.6: "Payment failure or timeout releases the held slot; the citizen books again."
#[test]
fn payment_failure_or_timeout_releases_the_held_slot() {
    let paying = apply(&held(), Event::StartPayment);
    let failed = apply(&paying, Event::PaymentFailed { money_deducted: false });
    assert_eq!(
        (failed.state, failed.appointment, failed.payment),
        (State::Draft, AppointmentStatus::None, PaymentStatus::Failed)
    );
    assert_eq!(failed.slot, None);
    assert_eq!(next_step(Some(&failed), now()), NextStep::ChooseAppointment);
    assert!(allowed_operations(&failed, now(), &policy()).contains(&Operation::ChangeAppointment));

    let timed_out = apply(&paying, Event::ReleaseHold);
    assert_eq!((timed_out.state, timed_out.appointment), (State::Draft, AppointmentStatus::None));
    assert_eq!(next_step(Some(&timed_out), now()), NextStep::ChooseAppointment);
}

/// §3.6: "Paid but the browser was closed before returning: … if the held slot was lost the
/// citizen is sent to choose office and time again, then to the receipt."
#[test]
fn paid_after_the_hold_was_lost_sends_the_citizen_to_choose_again_then_the_receipt() {
    let paying = apply(&held(), Event::StartPayment);
    let lost = apply(&paying, Event::ReleaseHold);
    let paid = apply(&lost, Event::PaymentSucceeded { tracking_code: tc(), seat_held: false });
    assert_eq!(
        (paid.state, paid.payment, paid.appointment),
        (State::Registered, PaymentStatus::Paid, AppointmentStatus::None)
    );
    assert_eq!(next_step(Some(&paid), now()), NextStep::ChooseAppointment);
    assert!(check(&paid, Operation::PrintReceipt, now(), &policy()).is_ok());

    let booked = apply(&paid, Event::TakeSlot { slot: slot(5), expires_at: now() });
    assert_eq!(booked.appointment, AppointmentStatus::Booked, "a paid citizen books directly, no second payment");
    assert_eq!(booked.hold_expires_at, None);
    assert_eq!(next_step(Some(&booked), now()), NextStep::AttendEnrollment);
}

/// §3.6: "Money deducted but payment not confirmed: the application stays payable; the
/// payment is marked for reversal/refund."
#[test]
fn money_deducted_but_not_confirmed_stays_payable_and_is_marked_for_refund() {
    let paying = apply(&held(), Event::StartPayment);
    let deducted = apply(&paying, Event::PaymentFailed { money_deducted: true });
    assert_eq!(deducted.payment, PaymentStatus::RefundPending);
    assert_eq!(deducted.state, State::Draft);
    let again = apply(&deducted, Event::TakeSlot { slot: slot(4), expires_at: now() + policy().hold_ttl });
    assert!(check(&again, Operation::Pay, now(), &policy()).is_ok(), "still payable");
    let refunded = apply(&again, Event::RefundSettled);
    assert_eq!(refunded.payment, PaymentStatus::Refunded);
}

#[test]
fn a_payment_applies_exactly_once() {
    let app = registered();
    assert_eq!(
        transition(&app, Event::PaymentSucceeded { tracking_code: tc(), seat_held: true }, now(), &policy()),
        Err(DomainError::AlreadyPaid)
    );
    assert_eq!(
        transition(&app, Event::PaymentFailed { money_deducted: false }, now(), &policy()),
        Err(DomainError::AlreadyPaid)
    );
    assert_eq!(transition(&app, Event::StartPayment, now(), &policy()), Err(DomainError::AlreadyPaid));
}

#[test]
fn pay_needs_a_live_hold() {
    assert_eq!(check(&draft(), Operation::Pay, now(), &policy()), Err(DomainError::NoActiveHold));
    let h = held();
    assert!(check(&h, Operation::Pay, now(), &policy()).is_ok());
    assert_eq!(check(&h, Operation::Pay, now() + Duration::minutes(16), &policy()), Err(DomainError::NoActiveHold));
}

/// §3.6: no-show → appointment `missed`, no new booking for N days (default 4).
#[test]
fn a_no_show_is_banned_from_booking_for_four_days() {
    let app = registered();
    let missed_day = app.slot.as_ref().unwrap().date;
    let after_shift = tehran_instant(missed_day, 20, 0);
    let missed = transition(&app, Event::MarkNoShow, after_shift, &policy()).unwrap();
    assert_eq!(missed.appointment, AppointmentStatus::Missed);
    let until = missed_day + Duration::days(4);
    assert_eq!(missed.no_show_ban_until, Some(until));
    for day in 1..=4 {
        let t = tehran_instant(missed_day + Duration::days(day), 9, 0);
        assert_eq!(
            check(&missed, Operation::ChangeAppointment, t, &policy()),
            Err(DomainError::NoShowBanActive { until }),
            "day {day}"
        );
        assert_eq!(next_step(Some(&missed), t), NextStep::WaitForBanToEnd);
    }
    let free = tehran_instant(missed_day + Duration::days(5), 9, 0);
    assert_eq!(
        check(&missed, Operation::ChangeAppointment, free, &policy()),
        Ok(()),
        "§3.7: allowed even after a missed date"
    );
    assert_eq!(next_step(Some(&missed), free), NextStep::ChooseAppointment);
}

#[test]
fn no_show_cannot_be_marked_before_the_appointment_day() {
    assert!(transition(&registered(), Event::MarkNoShow, now(), &policy()).is_err());
}

/// §3.6: "A citizen who has a tracking code but no booking must book within 2 months, or the application expires."
#[test]
fn a_paid_citizen_without_a_booking_expires_after_two_months() {
    let paying = apply(&held(), Event::StartPayment);
    let lost = apply(&paying, Event::ReleaseHold);
    let paid = apply(&lost, Event::PaymentSucceeded { tracking_code: tc(), seat_held: false });
    assert!(transition(&paid, Event::Expire, at(59), &policy()).is_err());
    assert!(check(&paid, Operation::ChangeAppointment, at(59), &policy()).is_ok());
    let expired = transition(&paid, Event::Expire, at(62), &policy()).unwrap();
    assert_eq!(expired.state, State::Cancelled);
    assert_eq!(next_step(Some(&expired), at(62)), NextStep::ApplicationClosed);
    assert!(allowed_operations(&expired, at(62), &policy()).is_empty());
    assert!(transition(&registered(), Event::Expire, at(62), &policy()).is_err(), "a booked citizen does not expire");
}

/// §3.6: "Delivery office defaults to the enrollment office; it can be changed until production starts."
#[test]
fn delivery_office_defaults_to_the_enrollment_office_and_changes_until_production() {
    let app = registered();
    assert_eq!(app.effective_delivery_office(), Some("maragheh"));
    let t = tehran_instant(app.slot.as_ref().unwrap().date, 9, 0);
    let started = transition(&app, Event::CheckIn { office_id: "maragheh".into() }, t, &policy()).unwrap();
    let enrolled = transition(&started, Event::CompleteEnrollment, t, &policy()).unwrap();
    assert_eq!(enrolled.delivery_office_id.as_deref(), Some("maragheh"));
    let moved =
        transition(&enrolled, Event::ChangeDeliveryOffice { office_id: "tabriz".into() }, t, &policy()).unwrap();
    assert_eq!(moved.effective_delivery_office(), Some("tabriz"));
    let producing = transition(&moved, Event::ProductionStarted, t, &policy()).unwrap();
    assert_eq!(
        transition(&producing, Event::ChangeDeliveryOffice { office_id: "shiraz".into() }, t, &policy()),
        Err(DomainError::ProductionStarted)
    );
}

/// §3.6: "Serial changed after production started: the citizen must apply for a re-issue after delivery."
#[test]
fn a_serial_change_after_production_asks_for_a_reissue_after_delivery() {
    let app = registered();
    let t = tehran_instant(app.slot.as_ref().unwrap().date, 9, 0);
    let mut a = app;
    for e in [
        Event::CheckIn { office_id: "maragheh".into() },
        Event::CompleteEnrollment,
        Event::ProductionStarted,
        Event::SerialChanged,
    ] {
        a = transition(&a, e, t, &policy()).unwrap();
    }
    assert!(a.reissue_required);
    for e in [Event::CardProduced, Event::Dispatched, Event::ReadyForDelivery { office_id: "maragheh".into() }] {
        a = transition(&a, e, t, &policy()).unwrap();
    }
    assert_eq!(next_step(Some(&a), t), NextStep::CollectCard);
    assert_eq!(
        transition(&a, Event::Deliver { office_id: "tabriz".into() }, t, &policy()),
        Err(DomainError::ApplicationNotFound),
        "only the delivery office hands the card over"
    );
    let delivered = transition(&a, Event::Deliver { office_id: "maragheh".into() }, t, &policy()).unwrap();
    assert_eq!(next_step(Some(&delivered), t), NextStep::RequestReissue);

    // Before production a serial change changes nothing here (the citizen re-enters with the new serial).
    let before = transition(&registered(), Event::SerialChanged, t, &policy()).unwrap();
    assert!(!before.reissue_required);
}

#[test]
fn check_in_only_on_the_appointment_day_at_the_booked_office() {
    let app = registered();
    assert_eq!(
        transition(&app, Event::CheckIn { office_id: "maragheh".into() }, now(), &policy()),
        Err(DomainError::AppointmentNotToday)
    );
    let t = tehran_instant(app.slot.as_ref().unwrap().date, 9, 0);
    assert_eq!(
        transition(&app, Event::CheckIn { office_id: "tabriz".into() }, t, &policy()),
        Err(DomainError::ApplicationNotFound)
    );
}

// ---- the permission table (§3.7)

#[test]
fn receipt_operations_need_a_successful_payment() {
    for op in [Operation::PrintReceipt, Operation::SaveReceiptFile, Operation::EmailReceipt] {
        assert_eq!(check(&held(), op, now(), &policy()), Err(DomainError::PaymentRequired));
        assert_eq!(check(&registered(), op, now(), &policy()), Ok(()));
    }
}

/// Seed 002 «تکمیل ثبت نام»: "after enrollment a receipt is given to the applicant, to be
/// kept until the card is handed over" — from completion on, never before.
#[test]
fn the_enrollment_receipt_exists_from_completion_until_delivery() {
    let reg = registered();
    let op = Operation::PrintEnrollmentReceipt;
    assert_eq!(check(&held(), op, now(), &policy()), Err(DomainError::EnrollmentNotCompleted));
    assert_eq!(check(&reg, op, now(), &policy()), Err(DomainError::EnrollmentNotCompleted));
    let t = tehran_instant(reg.slot.as_ref().unwrap().date, 9, 0);
    let mut a = transition(&reg, Event::CheckIn { office_id: "maragheh".into() }, t, &policy()).unwrap();
    assert_eq!(check(&a, op, t, &policy()), Err(DomainError::EnrollmentNotCompleted), "checked in, not completed");
    assert!(!allowed_operations(&a, t, &policy()).contains(&op));
    for e in [
        Event::CompleteEnrollment,
        Event::ProductionStarted,
        Event::ReadyForDelivery { office_id: "maragheh".into() },
        Event::Deliver { office_id: "maragheh".into() },
    ] {
        a = transition(&a, e, t, &policy()).unwrap();
        assert_eq!(check(&a, op, t, &policy()), Ok(()), "{:?}", a.state);
        assert!(allowed_operations(&a, t, &policy()).contains(&op));
    }
    let mut closed = a;
    closed.state = State::Cancelled;
    assert_eq!(check(&closed, op, t, &policy()), Err(DomainError::ApplicationCancelled));
}

/// Seed 002 «صدور کارت»: "about 20 days" from enrollment.
#[test]
fn the_card_is_expected_twenty_days_after_enrollment() {
    let d = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
    assert_eq!(expected_ready_on(d, &policy()), NaiveDate::from_ymd_opt(2026, 12, 15).unwrap());
    let quick = Policy { card_ready_days: 7, ..policy() };
    assert_eq!(expected_ready_on(d, &quick), NaiveDate::from_ymd_opt(2026, 12, 2).unwrap());
}

#[test]
fn edits_stop_at_enrollment_and_after_the_limit() {
    let mut app = draft();
    for _ in 0..3 {
        app = apply(&app, Event::EditPersonalInfo { identity: IdentityStatus::Verified });
    }
    assert_eq!(app.edits_left, 0);
    assert_eq!(
        transition(&app, Event::EditPersonalInfo { identity: IdentityStatus::Verified }, now(), &policy()),
        Err(DomainError::EditLimitReached),
        "a fourth edit is refused"
    );
    let reg = registered();
    let t = tehran_instant(reg.slot.as_ref().unwrap().date, 9, 0);
    let started = transition(&reg, Event::CheckIn { office_id: "maragheh".into() }, t, &policy()).unwrap();
    for op in [Operation::EditPersonalInfo, Operation::ChangeAppointment, Operation::EditFamily] {
        assert_eq!(check(&started, op, t, &policy()), Err(DomainError::EnrollmentStarted), "{op:?}");
    }
    assert_eq!(check(&started, Operation::ChangeMobile, t, &policy()), Ok(()), "mobile may change any time");
}

#[test]
fn booking_needs_verified_identity_and_answered_questions() {
    let pending = Application::new_draft(&policy(), IdentityStatus::Pending);
    let pending = apply(&pending, Event::AnswerSpecialNeeds(SpecialNeeds::TYPICAL));
    assert_eq!(
        check(&pending, Operation::ChangeAppointment, now(), &policy()),
        Err(DomainError::IdentityNotVerified { pending: true })
    );
    assert_eq!(next_step(Some(&pending), now()), NextStep::WaitForIdentityCheck);
    let settled = apply(&pending, Event::IdentitySettled { verified: true });
    assert_eq!(next_step(Some(&settled), now()), NextStep::ChooseAppointment);
    let rejected = apply(&pending, Event::IdentitySettled { verified: false });
    assert_eq!(next_step(Some(&rejected), now()), NextStep::CorrectPersonalInfo);

    let unanswered = Application::new_draft(&policy(), IdentityStatus::Verified);
    assert_eq!(
        check(&unanswered, Operation::ChangeAppointment, now(), &policy()),
        Err(DomainError::SpecialNeedsRequired)
    );
}

#[test]
fn a_citizen_who_cannot_leave_home_pays_without_a_seat_and_waits_for_a_visit() {
    let app = Application::new_draft(&policy(), IdentityStatus::Verified);
    let home = apply(&app, Event::AnswerSpecialNeeds(SpecialNeeds { can_leave_home: false, ..SpecialNeeds::TYPICAL }));
    assert_eq!(check(&home, Operation::ChangeAppointment, now(), &policy()), Err(DomainError::HomeVisitRequired));
    assert_eq!(next_step(Some(&home), now()), NextStep::Pay);
    assert!(check(&home, Operation::Pay, now(), &policy()).is_ok());
    let paying = apply(&home, Event::StartPayment);
    let paid = apply(&paying, Event::PaymentSucceeded { tracking_code: tc(), seat_held: false });
    assert_eq!(next_step(Some(&paid), now()), NextStep::WaitForHomeVisit);
    assert!(transition(&paid, Event::Expire, at(90), &policy()).is_err(), "no booking window for home visits");
}

#[test]
fn seats_only_from_tomorrow_to_the_horizon() {
    let d = draft();
    for days in [0, 61] {
        let r = transition(&d, Event::TakeSlot { slot: slot(days), expires_at: now() }, now(), &policy());
        assert!(matches!(r, Err(DomainError::DateOutsideBookingWindow { .. })), "{days}");
    }
    assert!(transition(&d, Event::TakeSlot { slot: slot(1), expires_at: now() }, now(), &policy()).is_ok());
    assert!(transition(&d, Event::TakeSlot { slot: slot(60), expires_at: now() }, now(), &policy()).is_ok());
}

#[test]
fn no_rescheduling_while_at_the_bank() {
    let paying = apply(&held(), Event::StartPayment);
    assert_eq!(check(&paying, Operation::ChangeAppointment, now(), &policy()), Err(DomainError::PaymentInProgress));
}

// ---- property: a random walk never reaches an operation the table forbids

fn arb_event() -> impl Strategy<Value = Event> {
    let office = prop_oneof![Just("maragheh".to_owned()), Just("tabriz".to_owned())];
    prop_oneof![
        any::<bool>().prop_map(|v| Event::EditPersonalInfo {
            identity: if v { IdentityStatus::Verified } else { IdentityStatus::Pending }
        }),
        any::<bool>().prop_map(|verified| Event::IdentitySettled { verified }),
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
            |(a, b, c, d)| Event::AnswerSpecialNeeds(SpecialNeeds {
                can_leave_home: a || b,
                can_climb_stairs: b,
                pupils_visible: c,
                fingers_intact: d
            })
        ),
        Just(Event::EditFamily),
        Just(Event::ChangeMobile),
        (0i64..8, office.clone()).prop_map(|(d, office_id)| Event::TakeSlot {
            slot: Slot { office_id, date: tehran_date(now()) + Duration::days(d), shift: Shift::Morning },
            expires_at: now() + Duration::minutes(15),
        }),
        Just(Event::ReleaseHold),
        Just(Event::StartPayment),
        any::<bool>().prop_map(|seat_held| Event::PaymentSucceeded { tracking_code: tc(), seat_held }),
        any::<bool>().prop_map(|money_deducted| Event::PaymentFailed { money_deducted }),
        Just(Event::RefundSettled),
        office.clone().prop_map(|office_id| Event::ChangeDeliveryOffice { office_id }),
        office.clone().prop_map(|office_id| Event::CheckIn { office_id }),
        Just(Event::CompleteEnrollment),
        Just(Event::MarkNoShow),
        Just(Event::ProductionStarted),
        Just(Event::CardProduced),
        office.clone().prop_map(|office_id| Event::ReadyForDelivery { office_id }),
        Just(Event::ProductionFailed),
        office.prop_map(|office_id| Event::Deliver { office_id }),
        Just(Event::SerialChanged),
        Just(Event::Expire),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn a_random_walk_never_reaches_an_operation_the_table_forbids(
        steps in proptest::collection::vec((arb_event(), 0i64..4), 1..60)
    ) {
        let p = policy();
        let mut app = Application::new_draft(&p, IdentityStatus::Verified);
        let mut t = now();
        for (event, days) in steps {
            t += Duration::days(days);
            let before = app.clone();
            if let Ok(after) = transition(&before, event.clone(), t, &p) {
                // A citizen operation succeeds only if the table allowed it beforehand.
                if let Some(op) = event.operation() {
                    prop_assert!(allowed_operations(&before, t, &p).contains(&op), "{:?} from {:?}", op, before.state);
                }
                app = after;
            }
            let ops = allowed_operations(&app, t, &p);
            let has = |op| ops.contains(&op);
            // Receipt: exactly those whose payment succeeded.
            let paid = app.payment == PaymentStatus::Paid && app.state != State::Cancelled;
            prop_assert_eq!(has(Operation::PrintReceipt), paid);
            prop_assert_eq!(has(Operation::EmailReceipt), paid);
            // Edit and reschedule: never once enrollment started.
            if !app.state.before_enrollment() {
                prop_assert!(!has(Operation::EditPersonalInfo) && !has(Operation::ChangeAppointment));
            }
            if has(Operation::EditPersonalInfo) { prop_assert!(app.edits_left > 0); }
            // Enrollment receipt: exactly those whose enrollment was completed.
            prop_assert_eq!(has(Operation::PrintEnrollmentReceipt), app.state.enrollment_completed());
            // Mobile: everyone with an application that is not closed.
            prop_assert_eq!(has(Operation::ChangeMobile), app.state != State::Cancelled);
            // Delivery office: never once production started.
            if matches!(app.state, State::InProduction | State::ReadyForDelivery | State::Delivered) {
                prop_assert!(!has(Operation::ChangeDeliveryOffice));
            }
            // The no-show ban is honoured.
            if app.no_show_ban_until.is_some_and(|u| tehran_date(t) <= u) {
                prop_assert!(!has(Operation::ChangeAppointment));
            }
            // The facts stay consistent with the state.
            if app.state == State::Registered { prop_assert!(app.payment == PaymentStatus::Paid && app.tracking_code.is_some()); }
            if app.appointment == AppointmentStatus::Booked { prop_assert_eq!(app.payment, PaymentStatus::Paid); }
            if app.appointment == AppointmentStatus::Held {
                prop_assert!(matches!(app.state, State::AppointmentHeld | State::PaymentPending));
            }
            if app.state == State::AppointmentHeld || (app.state == State::PaymentPending && !app.home_visit()) {
                prop_assert_eq!(app.appointment, AppointmentStatus::Held);
            }
        }
    }
}

// ---------------------------------------------------------------- words and names (mutation testing)

const ALL_STATES: [State; 10] = [
    State::Draft,
    State::AppointmentHeld,
    State::PaymentPending,
    State::Registered,
    State::EnrollmentStarted,
    State::Enrolled,
    State::InProduction,
    State::ReadyForDelivery,
    State::Delivered,
    State::Cancelled,
];

/// Every state has its own words in both languages (public status and USSD show them).
#[test]
fn each_state_is_described_in_its_own_words() {
    assert_eq!(State::Registered.describe(crate::Lang::Fa), "ثبت نام شده");
    assert_eq!(State::InProduction.describe(crate::Lang::En), "Card in production");
    for lang in [crate::Lang::Fa, crate::Lang::En] {
        let words: std::collections::BTreeSet<&str> = ALL_STATES.iter().map(|s| s.describe(lang)).collect();
        assert_eq!(words.len(), ALL_STATES.len(), "{lang:?}: distinct");
        assert!(words.iter().all(|w| !w.is_empty()));
    }
}

/// The card is under way from enrollment until delivery, never before, never once closed.
#[test]
fn the_card_is_under_way_from_enrollment_on() {
    let under_way: Vec<State> = ALL_STATES.into_iter().filter(|s| s.card_under_way()).collect();
    assert_eq!(
        under_way,
        [State::EnrollmentStarted, State::Enrolled, State::InProduction, State::ReadyForDelivery, State::Delivered]
    );
}

/// Next steps have their own words, and events their stable names and operations.
#[test]
fn next_steps_and_events_have_their_names() {
    assert_eq!(NextStep::EnterPersonalInfo.describe(crate::Lang::Fa), "مشخصات فردی خود را وارد کنید.");
    assert_eq!(NextStep::EnterPersonalInfo.describe(crate::Lang::En), "Enter your personal information.");
    assert_ne!(NextStep::Pay.describe(crate::Lang::En), NextStep::Done.describe(crate::Lang::En));
    assert_eq!(Event::EditFamily.name(), "edit_family");
    assert_eq!(Event::ChangeMobile.name(), "change_mobile");
    assert_eq!(Event::StartPayment.name(), "start_payment");
    assert_eq!(Event::EditFamily.operation(), Some(Operation::EditFamily));
    assert_eq!(Event::ChangeMobile.operation(), Some(Operation::ChangeMobile));
    let take = Event::TakeSlot { slot: slot(3), expires_at: now() };
    assert_eq!((take.name(), take.operation()), ("take_slot", Some(Operation::ChangeAppointment)));
    assert_eq!(Event::StartPayment.operation(), Some(Operation::Pay));
    assert_eq!(Event::CardProduced.operation(), None);
}

/// Paid or not, draft or registered: the next step follows identity, payment and edits.
#[test]
fn next_step_follows_identity_payment_and_edits() {
    let mut pending = draft();
    pending.identity = IdentityStatus::Pending;
    assert_eq!(next_step(Some(&pending), now()), NextStep::WaitForIdentityCheck);
    let mut rejected = draft();
    rejected.identity = IdentityStatus::Rejected;
    assert_eq!(next_step(Some(&rejected), now()), NextStep::CorrectPersonalInfo);
    rejected.edits_left = 0;
    assert_eq!(next_step(Some(&rejected), now()), NextStep::VisitRegistryOffice);
    rejected.edits_left = 1;
    assert_eq!(next_step(Some(&rejected), now()), NextStep::CorrectPersonalInfo, "one edit left is enough");
    // Paid with identity still pending: the booking goes on.
    let mut paid = registered();
    paid.identity = IdentityStatus::Pending;
    assert_eq!(next_step(Some(&paid), now()), NextStep::AttendEnrollment);
    // Delivered: done, unless a re-issue is due.
    let mut delivered = registered();
    delivered.state = State::Delivered;
    assert_eq!(next_step(Some(&delivered), now()), NextStep::Done);
    delivered.reissue_required = true;
    assert_eq!(next_step(Some(&delivered), now()), NextStep::RequestReissue);
}
