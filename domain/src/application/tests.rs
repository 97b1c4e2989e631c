//! Each rule of docs/domain/application.md and each row of the §3.7 table is a test here.

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
    assert_eq!(app.effective_delivery_office().map(OfficeId::as_str), Some("maragheh"));
    let t = tehran_instant(app.slot.as_ref().unwrap().date, 9, 0);
    let started = transition(&app, Event::CheckIn { office_id: "maragheh".into() }, t, &policy()).unwrap();
    let enrolled = transition(&started, Event::CompleteEnrollment, t, &policy()).unwrap();
    assert_eq!(enrolled.delivery_office_id.as_deref(), Some("maragheh"));
    let moved =
        transition(&enrolled, Event::ChangeDeliveryOffice { office_id: "tabriz".into() }, t, &policy()).unwrap();
    assert_eq!(moved.effective_delivery_office().map(OfficeId::as_str), Some("tabriz"));
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

/// Issue 19: after delivery (docs/domain/application.md for a changed serial; also lost, damaged, data
/// changed) a re-issue starts a new card cycle that pays the re-issue fee; never before.
#[test]
fn a_reissue_starts_a_new_cycle_after_delivery_only() {
    let reg = registered();
    assert_eq!(start_reissue(&reg, ReissueReason::Lost, now(), &policy()), Err(DomainError::ReissueNotAllowed));
    assert!(!allowed_operations(&reg, now(), &policy()).contains(&Operation::RequestReissue));
    assert_eq!(reg.fee_kind(), crate::fees::FeeKind::Card);
    let t = tehran_instant(reg.slot.as_ref().unwrap().date, 9, 0);
    let mut a = reg;
    for e in [
        Event::CheckIn { office_id: "maragheh".into() },
        Event::CompleteEnrollment,
        Event::ProductionStarted,
        Event::SerialChanged,
        Event::ReadyForDelivery { office_id: "maragheh".into() },
    ] {
        a = transition(&a, e, t, &policy()).unwrap();
        assert_eq!(check(&a, Operation::RequestReissue, t, &policy()), Err(DomainError::ReissueNotAllowed));
    }
    let delivered = transition(&a, Event::Deliver { office_id: "maragheh".into() }, t, &policy()).unwrap();
    assert_eq!(next_step(Some(&delivered), t), NextStep::RequestReissue);
    assert!(allowed_operations(&delivered, t, &policy()).contains(&Operation::RequestReissue));

    let next = start_reissue(&delivered, ReissueReason::SerialChanged, t, &policy()).unwrap();
    assert_eq!(
        (next.state, next.payment, next.appointment),
        (State::Draft, PaymentStatus::Unpaid, AppointmentStatus::None)
    );
    assert_eq!((next.reissue, next.tracking_code.clone()), (Some(ReissueReason::SerialChanged), None));
    assert_eq!((next.special_needs, next.identity), (delivered.special_needs, IdentityStatus::Verified));
    assert_eq!(next.edits_left, policy().personal_info_edits);
    assert!(!next.reissue_required && next.delivery_office_id.is_none());
    assert_eq!(next.fee_kind(), crate::fees::FeeKind::Reissue);
    assert_eq!(next_step(Some(&next), t), NextStep::ChooseAppointment);
    // The new cycle walks the usual path and keeps its kind.
    let seat = Slot { date: tehran_date(t) + Duration::days(3), ..slot(3) };
    let held =
        transition(&next, Event::TakeSlot { slot: seat, expires_at: t + policy().hold_ttl }, t, &policy()).unwrap();
    let paying = transition(&held, Event::StartPayment, t, &policy()).unwrap();
    let paid = transition(
        &paying,
        Event::PaymentSucceeded { tracking_code: TrackingCode::from_random(111_222_333), seat_held: true },
        t,
        &policy(),
    )
    .unwrap();
    assert_eq!((paid.state, paid.fee_kind()), (State::Registered, crate::fees::FeeKind::Reissue));
    // A plain delivered card may be re-issued too (lost, damaged, data changed).
    let mut plain = delivered;
    plain.reissue_required = false;
    assert_eq!(next_step(Some(&plain), t), NextStep::Done);
    for reason in [ReissueReason::Lost, ReissueReason::Damaged, ReissueReason::DataChanged] {
        assert_eq!(start_reissue(&plain, reason, t, &policy()).unwrap().reissue, Some(reason));
        assert_eq!(ReissueReason::parse(reason.as_str()), Some(reason));
    }
    let mut closed = plain;
    closed.state = State::Cancelled;
    assert_eq!(start_reissue(&closed, ReissueReason::Lost, t, &policy()), Err(DomainError::ApplicationCancelled));
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

/// docs/domain/back-office.md, «تکمیل ثبت نام»: "after enrollment a receipt is given to the applicant, to be
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

/// docs/domain/back-office.md, «صدور کارت»: "about 20 days" from enrollment.
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

fn home_needs() -> SpecialNeeds {
    SpecialNeeds { can_leave_home: false, ..SpecialNeeds::TYPICAL }
}

/// A home-visit citizen, paid, waiting for the office to schedule the visit.
fn home_waiting() -> Application {
    let app = Application::new_draft(&policy(), IdentityStatus::Verified);
    let home = apply(&app, Event::AnswerSpecialNeeds(home_needs()));
    let home = apply(&home, Event::SetHomeVisitAddress);
    let paying = apply(&home, Event::StartPayment);
    apply(&paying, Event::PaymentSucceeded { tracking_code: tc(), seat_held: false })
}

/// docs/domain/booking.md: "no" to «آیا سلامتی کافی برای خروج از خانه دارید؟» — the address to visit is
/// asked before payment; a citizen who can leave home has none to give.
#[test]
fn a_home_visit_needs_its_address_before_payment() {
    let app = Application::new_draft(&policy(), IdentityStatus::Verified);
    let home = apply(&app, Event::AnswerSpecialNeeds(home_needs()));
    assert_eq!(next_step(Some(&home), now()), NextStep::EnterHomeVisitAddress);
    assert_eq!(check(&home, Operation::Pay, now(), &policy()), Err(DomainError::HomeVisitAddressRequired));
    assert!(allowed_operations(&home, now(), &policy()).contains(&Operation::SetHomeVisitAddress));
    let given = apply(&home, Event::SetHomeVisitAddress);
    assert!(given.home_visit_address);
    assert_eq!(next_step(Some(&given), now()), NextStep::Pay);
    assert_eq!(check(&given, Operation::Pay, now(), &policy()), Ok(()));
    assert_eq!(
        check(&draft(), Operation::SetHomeVisitAddress, now(), &policy()),
        Err(DomainError::HomeVisitNotRequired),
        "an office citizen has no home visit"
    );
    // While at the bank the address stays as it is; after payment it may change until scheduled.
    let paying = apply(&given, Event::StartPayment);
    assert!(check(&paying, Operation::SetHomeVisitAddress, now(), &policy()).is_err());
    let waiting = home_waiting();
    assert_eq!(check(&waiting, Operation::SetHomeVisitAddress, now(), &policy()), Ok(()));
}

/// Issue 19: a home-visit office schedules the visit (a seat on a date and shift); the
/// citizen is told "we will visit you" with the date; check-in and completion follow as at
/// an office; a missed visit is scheduled again.
#[test]
fn the_office_schedules_the_visit_and_enrolls_at_home() {
    let waiting = home_waiting();
    assert_eq!(next_step(Some(&waiting), now()), NextStep::WaitForHomeVisit);
    let visit = Slot { office_id: "tehran".into(), ..slot(3) };
    assert!(matches!(
        transition(&waiting, Event::ScheduleHomeVisit { slot: slot(0) }, now(), &policy()),
        Err(DomainError::DateOutsideBookingWindow { .. })
    ));
    let scheduled = apply(&waiting, Event::ScheduleHomeVisit { slot: visit.clone() });
    assert_eq!((scheduled.appointment, scheduled.slot.clone()), (AppointmentStatus::Booked, Some(visit.clone())));
    assert_eq!(next_step(Some(&scheduled), now()), NextStep::HomeVisitScheduled);
    let text = next_step_text(Some(&scheduled), now(), crate::Lang::Fa);
    let jalali = crate::calendar::JalaliDate::from_gregorian(visit.date).unwrap().to_string().replace('-', "/");
    assert!(text.contains(&crate::text::persian_digits(&jalali)) && text.contains("به منزل شما مراجعه"), "{text}");
    assert!(next_step_text(Some(&scheduled), now(), crate::Lang::En).contains(&visit.date.to_string()));
    // The citizen cannot move it (the office does), nor change the address now.
    assert_eq!(check(&scheduled, Operation::ChangeAppointment, now(), &policy()), Err(DomainError::HomeVisitRequired));
    assert!(check(&scheduled, Operation::SetHomeVisitAddress, now(), &policy()).is_err());
    // The office moves it.
    let moved = apply(&scheduled, Event::ScheduleHomeVisit { slot: Slot { office_id: "tehran".into(), ..slot(5) } });
    assert_eq!(moved.slot.as_ref().map(|s| s.date), Some(slot(5).date));
    // A missed visit goes back to the queue and is scheduled again.
    let day = tehran_instant(visit.date, 20, 0);
    let missed = transition(&scheduled, Event::MarkNoShow, day, &policy()).unwrap();
    assert_eq!(next_step(Some(&missed), day), NextStep::WaitForHomeVisit);
    let again = transition(
        &missed,
        Event::ScheduleHomeVisit { slot: Slot { office_id: "tehran".into(), ..slot(6) } },
        day,
        &policy(),
    )
    .unwrap();
    assert_eq!(again.appointment, AppointmentStatus::Booked);
    // The office closed on the visit's day: the displaced visit is scheduled again.
    let displaced = apply(&scheduled, Event::OfficeClosed { offer: None });
    assert_eq!(next_step(Some(&displaced), now()), NextStep::WaitForHomeVisit);
    let offered =
        apply(&scheduled, Event::OfficeClosed { offer: Some((Slot { office_id: "tehran".into(), ..slot(4) }, at(2))) });
    for d in [displaced, offered] {
        let again = apply(&d, Event::ScheduleHomeVisit { slot: Slot { office_id: "tehran".into(), ..slot(7) } });
        assert_eq!((again.appointment, again.slot.map(|s| s.date)), (AppointmentStatus::Booked, Some(slot(7).date)));
    }
    // On the day: check-in at the home by the scheduling office, completion.
    let t = tehran_instant(visit.date, 9, 0);
    let started = transition(&scheduled, Event::CheckIn { office_id: "tehran".into() }, t, &policy()).unwrap();
    let enrolled = transition(&started, Event::CompleteEnrollment, t, &policy()).unwrap();
    assert_eq!(enrolled.effective_delivery_office().map(OfficeId::as_str), Some("tehran"));
    // Only home visits, only paid, only with an address.
    assert_eq!(
        transition(&registered(), Event::ScheduleHomeVisit { slot: slot(3) }, now(), &policy()),
        Err(DomainError::HomeVisitNotRequired)
    );
    let unpaid = apply(
        &apply(&Application::new_draft(&policy(), IdentityStatus::Verified), Event::AnswerSpecialNeeds(home_needs())),
        Event::SetHomeVisitAddress,
    );
    assert!(matches!(
        transition(&unpaid, Event::ScheduleHomeVisit { slot: slot(3) }, now(), &policy()),
        Err(DomainError::InvalidTransition { .. })
    ));
    let mut no_address = home_waiting();
    no_address.home_visit_address = false;
    assert_eq!(next_step(Some(&no_address), now()), NextStep::EnterHomeVisitAddress);
    assert_eq!(
        transition(&no_address, Event::ScheduleHomeVisit { slot: slot(3) }, now(), &policy()),
        Err(DomainError::HomeVisitAddressRequired)
    );
}

/// Issue 19: changing the first answer back to "yes" returns a waiting citizen to the office path.
#[test]
fn answering_yes_again_returns_to_the_office_path() {
    let waiting = home_waiting();
    let office = apply(&waiting, Event::AnswerSpecialNeeds(SpecialNeeds::TYPICAL));
    assert!(!office.home_visit());
    assert_eq!(next_step(Some(&office), now()), NextStep::ChooseAppointment);
    assert_eq!(check(&office, Operation::ChangeAppointment, now(), &policy()), Ok(()));
    assert!(office.booking_deadline(&policy()).is_some(), "the two-month booking window applies again");
    // A scheduled visit keeps the answers until the office's visit (or a missed one).
    let scheduled = apply(&waiting, Event::ScheduleHomeVisit { slot: Slot { office_id: "tehran".into(), ..slot(3) } });
    assert!(check(&scheduled, Operation::AnswerSpecialNeeds, now(), &policy()).is_err());
}

#[test]
fn a_citizen_who_cannot_leave_home_pays_without_a_seat_and_waits_for_a_visit() {
    let app = Application::new_draft(&policy(), IdentityStatus::Verified);
    let home = apply(&app, Event::AnswerSpecialNeeds(SpecialNeeds { can_leave_home: false, ..SpecialNeeds::TYPICAL }));
    let home = apply(&home, Event::SetHomeVisitAddress);
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
    let office = prop_oneof![Just(OfficeId::from("maragheh")), Just(OfficeId::from("tabriz"))];
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
        office.clone().prop_map(|office_id| Event::Deliver { office_id }),
        Just(Event::SerialChanged),
        Just(Event::Expire),
        Just(Event::SetHomeVisitAddress),
        (1i64..8).prop_map(|d| Event::ScheduleHomeVisit {
            slot: Slot {
                office_id: "tehran".into(),
                date: tehran_date(now()) + Duration::days(d),
                shift: Shift::Morning
            },
        }),
        any::<bool>().prop_map(|given| Event::Withdraw { iban: given.then(iban) }),
        (proptest::option::of(1i64..8), office).prop_map(|(days, office_id)| Event::OfficeClosed {
            offer: days.map(|d| (
                Slot { office_id, date: tehran_date(now()) + Duration::days(d), shift: Shift::Afternoon },
                now() + Duration::days(3),
            )),
        }),
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
            // Re-issue: exactly after delivery.
            prop_assert_eq!(has(Operation::RequestReissue), app.state == State::Delivered);
            // Enrollment receipt: exactly those whose enrollment was completed.
            prop_assert_eq!(has(Operation::PrintEnrollmentReceipt), app.state.enrollment_completed());
            // Mobile: everyone with an application that is not closed.
            prop_assert_eq!(has(Operation::ChangeMobile), app.state != State::Cancelled);
            // Delivery office: never once production started.
            if matches!(app.state, State::InProduction | State::ReadyForDelivery | State::Delivered) {
                prop_assert!(!has(Operation::ChangeDeliveryOffice));
            }
            // Home visits: paying needs the address; a scheduled visit is a home visit, paid.
            if app.home_visit() && has(Operation::Pay) { prop_assert!(app.home_visit_address); }
            if has(Operation::SetHomeVisitAddress) { prop_assert!(app.home_visit()); }
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
            // A seat offered after a closure is a paid citizen's, before enrollment.
            if app.appointment == AppointmentStatus::Offered {
                prop_assert!(app.state == State::Registered && app.payment == PaymentStatus::Paid);
                prop_assert!(app.slot.is_some() && app.hold_expires_at.is_some());
            }
            // Withdrawal: only before enrollment, never at the bank, never twice.
            if has(Operation::Withdraw) {
                prop_assert!(app.state.before_enrollment() && app.state != State::PaymentPending);
            }
            // A withdrawn paid fee is owed back.
            if app.state == State::Cancelled && before.state != State::Cancelled && app.payment != before.payment {
                prop_assert_eq!(app.payment, PaymentStatus::RefundPending, "a withdrawn paid fee is owed back");
            }
            // A closed application holds no seat.
            if app.state == State::Cancelled {
                prop_assert!(!app.appointment.holds_seat());
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

// ---------------------------------------------------------------- withdrawal (issue 19 item 3)

fn iban() -> crate::iban::Iban {
    crate::iban::Iban::parse("IR710570029971601460641001").unwrap()
}

/// Issue 19: "before enrollment starts: seat freed, application `cancelled`. Unpaid →
/// done."
#[test]
fn an_unpaid_citizen_withdraws_and_the_hold_is_given_up() {
    for app in [draft(), held()] {
        assert!(allowed_operations(&app, now(), &policy()).contains(&Operation::Withdraw));
        let out = apply(&app, Event::Withdraw { iban: None });
        assert_eq!((out.state, out.appointment, out.slot.clone()), (State::Cancelled, AppointmentStatus::None, None));
        assert_eq!(out.payment, app.payment, "nothing to refund");
        assert_eq!(out.hold_expires_at, None);
        assert_eq!(next_step(Some(&out), now()), NextStep::ApplicationClosed);
        assert!(allowed_operations(&out, now(), &policy()).is_empty(), "a closed application allows nothing");
        assert_eq!(
            transition(&out, Event::Withdraw { iban: None }, now(), &policy()),
            Err(DomainError::ApplicationCancelled),
            "not twice"
        );
    }
}

/// Issue 19: "Paid → the citizen gives a Sheba number …, the payment becomes
/// `refund_requested`" — the application's payment fact is owed back until settled.
#[test]
fn a_paid_citizen_withdraws_only_with_a_sheba_number_and_the_fee_is_owed_back() {
    let app = registered();
    assert_eq!(transition(&app, Event::Withdraw { iban: None }, now(), &policy()), Err(DomainError::IbanRequired));
    let out = apply(&app, Event::Withdraw { iban: Some(iban()) });
    assert_eq!((out.state, out.payment), (State::Cancelled, PaymentStatus::RefundPending));
    assert_eq!((out.appointment, out.slot.clone()), (AppointmentStatus::None, None), "the booked seat is freed");
    assert_eq!(out.tracking_code, app.tracking_code, "the tracking code still finds it");
    let settled = apply(&out, Event::RefundSettled);
    assert_eq!((settled.state, settled.payment), (State::Cancelled, PaymentStatus::Refunded));
}

#[test]
fn no_withdrawal_at_the_bank_or_once_enrollment_started() {
    let paying = apply(&held(), Event::StartPayment);
    assert_eq!(
        transition(&paying, Event::Withdraw { iban: None }, now(), &policy()),
        Err(DomainError::PaymentInProgress)
    );
    let mut app = registered();
    app.slot = Some(slot(0));
    let started = apply(&app, Event::CheckIn { office_id: "maragheh".into() });
    assert_eq!(
        transition(&started, Event::Withdraw { iban: Some(iban()) }, now(), &policy()),
        Err(DomainError::EnrollmentStarted)
    );
    assert!(!allowed_operations(&started, now(), &policy()).contains(&Operation::Withdraw));
    // A missed appointment (and its ban) does not stop a withdrawal.
    let missed = transition(&registered(), Event::MarkNoShow, at(3), &policy()).unwrap();
    assert!(check(&missed, Operation::Withdraw, at(3), &policy()).is_ok());
}

// ---------------------------------------------------------------- closures (issue 19 item 2)

fn other_office(days: i64, shift: Shift) -> Slot {
    Slot { office_id: "tabriz".into(), date: tehran_date(now()) + Duration::days(days), shift }
}

/// Issue 19: closing a booked day "moves each affected application to 'choose another
/// appointment' without a no-show, keeps its payment" and offers the nearest seat.
#[test]
fn a_closed_day_moves_the_citizen_back_to_choosing_without_a_ban() {
    let booked = registered();
    let offer = (other_office(4, Shift::Morning), now() + Duration::days(3));
    let moved = apply(&booked, Event::OfficeClosed { offer: Some(offer.clone()) });
    assert_eq!((moved.state, moved.payment), (State::Registered, PaymentStatus::Paid));
    assert_eq!((moved.appointment, moved.slot.clone()), (AppointmentStatus::Offered, Some(offer.0.clone())));
    assert_eq!(moved.hold_expires_at, Some(offer.1));
    assert_eq!(moved.no_show_ban_until, None, "no ban");
    assert_eq!(moved.displaced_at, Some(now()));
    assert_eq!(next_step(Some(&moved), now()), NextStep::ChooseAppointment);
    assert!(allowed_operations(&moved, now(), &policy()).contains(&Operation::ChangeAppointment));
    // The day of the lost appointment passes: never a no-show, never a check-in.
    assert!(transition(&moved, Event::MarkNoShow, at(5), &policy()).is_err());
    assert!(transition(&moved, Event::CheckIn { office_id: "tabriz".into() }, at(4), &policy()).is_err());
    // Booking the offered seat makes it the appointment.
    let confirmed = apply(&moved, Event::TakeSlot { slot: offer.0.clone(), expires_at: now() });
    assert_eq!((confirmed.appointment, confirmed.hold_expires_at), (AppointmentStatus::Booked, None));
    // Unconfirmed, the offer lapses and the citizen still chooses (paid, registered).
    let lapsed = apply(&moved, Event::ReleaseHold);
    assert_eq!((lapsed.state, lapsed.appointment, lapsed.slot), (State::Registered, AppointmentStatus::None, None));
    // No seat to offer: straight back to choosing.
    let bare = apply(&booked, Event::OfficeClosed { offer: None });
    assert_eq!((bare.appointment, bare.slot.clone()), (AppointmentStatus::None, None));
    assert_eq!(next_step(Some(&bare), now()), NextStep::ChooseAppointment);
}

#[test]
fn only_a_booked_or_offered_seat_is_displaced() {
    for app in [draft(), held(), apply(&held(), Event::StartPayment)] {
        assert!(transition(&app, Event::OfficeClosed { offer: None }, now(), &policy()).is_err(), "{:?}", app.state);
    }
    let missed = transition(&registered(), Event::MarkNoShow, at(3), &policy()).unwrap();
    assert!(transition(&missed, Event::OfficeClosed { offer: None }, at(3), &policy()).is_err());
    // An offered seat whose day closes too is displaced again.
    let offered = apply(&registered(), Event::OfficeClosed { offer: Some((slot(5), at(3))) });
    assert!(transition(&offered, Event::OfficeClosed { offer: None }, now(), &policy()).is_ok());
}

/// The booking deadline (two months) counts from the closure, not from the payment: a
/// citizen who paid long ago is not expired because their office closed.
#[test]
fn the_booking_deadline_restarts_at_the_closure() {
    let p = policy();
    let booked = registered();
    let late = at(59);
    let moved = transition(&booked, Event::OfficeClosed { offer: None }, late, &p).unwrap();
    let deadline = moved.booking_deadline(&p).unwrap();
    assert_eq!(deadline, late.checked_add_months(Months::new(2)).unwrap());
    assert!(transition(&moved, Event::Expire, at(70), &p).is_err(), "not expired ten days after the closure");
    assert!(check(&moved, Operation::ChangeAppointment, at(70), &p).is_ok());
    assert!(transition(&moved, Event::Expire, deadline + Duration::seconds(1), &p).is_ok());
}

/// The offer: the lost office's earliest free seat (its shift first on a day); another
/// office's only when the lost office has none.
#[test]
fn the_offer_is_the_nearest_seat_at_the_same_office_first() {
    let lost = slot(2);
    let same_later = Slot { date: lost.date + Duration::days(3), ..lost.clone() };
    let same_later_afternoon = Slot { shift: Shift::Afternoon, ..same_later.clone() };
    let same_sooner_afternoon = Slot { date: lost.date + Duration::days(1), shift: Shift::Afternoon, ..lost.clone() };
    let elsewhere_sooner = other_office(1, Shift::Morning);
    let free = [elsewhere_sooner.clone(), same_later_afternoon.clone(), same_later.clone()];
    assert_eq!(
        pick_offer(&lost, &free),
        Some(&same_later),
        "same office, then its shift, before an earlier day elsewhere"
    );
    let free = [same_later.clone(), same_sooner_afternoon.clone()];
    assert_eq!(pick_offer(&lost, &free), Some(&same_sooner_afternoon), "the nearest day beats the shift");
    let free = [other_office(6, Shift::Afternoon), other_office(6, Shift::Morning), other_office(9, Shift::Morning)];
    assert_eq!(pick_offer(&lost, &free), Some(&free[1]));
    assert_eq!(pick_offer(&lost, &[]), None);
}

#[test]
fn an_offer_is_kept_for_three_days_but_not_into_its_own_day() {
    let p = policy();
    let far = tehran_date(now()) + Duration::days(10);
    assert_eq!(offer_until(now(), far, &p), now() + Duration::days(3));
    let tomorrow = tehran_date(now()) + Duration::days(1);
    assert_eq!(offer_until(now(), tomorrow, &p), tehran_instant(tomorrow, 0, 0));
}

#[test]
fn the_new_events_and_operation_have_their_names() {
    assert_eq!(Event::Withdraw { iban: None }.name(), "withdraw");
    assert_eq!(Event::Withdraw { iban: None }.operation(), Some(Operation::Withdraw));
    assert_eq!(Event::OfficeClosed { offer: None }.name(), "office_closed");
    assert_eq!(Event::OfficeClosed { offer: None }.operation(), None);
    assert_eq!(Operation::parse("withdraw"), Some(Operation::Withdraw));
    assert_eq!(AppointmentStatus::parse("offered"), Some(AppointmentStatus::Offered));
    assert!(AppointmentStatus::Offered.holds_seat() && AppointmentStatus::Booked.holds_seat());
    assert!(!AppointmentStatus::Missed.holds_seat() && !AppointmentStatus::None.holds_seat());
}

/// A paid citizen without a booking may book until the deadline itself, and not a second
/// after it: the application is then as good as closed (docs/domain/booking.md).
#[test]
fn booking_is_refused_only_after_the_booking_deadline() {
    let p = policy();
    let moved = transition(&registered(), Event::OfficeClosed { offer: None }, now(), &p).unwrap();
    let deadline = moved.booking_deadline(&p).unwrap();
    assert!(check(&moved, Operation::ChangeAppointment, deadline - Duration::seconds(1), &p).is_ok());
    assert!(check(&moved, Operation::ChangeAppointment, deadline, &p).is_ok(), "the deadline itself still counts");
    assert_eq!(
        check(&moved, Operation::ChangeAppointment, deadline + Duration::seconds(1), &p),
        Err(DomainError::ApplicationCancelled)
    );
}

/// A hold is paid for strictly before it expires: at the expiry instant it is gone.
#[test]
fn a_hold_cannot_be_paid_at_its_expiry_instant() {
    let app = held();
    let expires = app.hold_expires_at.unwrap();
    assert_eq!(check(&app, Operation::Pay, expires - Duration::seconds(1), &policy()), Ok(()));
    assert_eq!(check(&app, Operation::Pay, expires, &policy()), Err(DomainError::NoActiveHold));
}

/// Identity problems route the citizen only before enrollment and never while at the bank:
/// a card in production or a payment under way is not sent back to the first page.
#[test]
fn identity_steps_are_offered_only_before_enrollment_and_not_at_the_bank() {
    let mut paying = apply(&held(), Event::StartPayment);
    paying.identity = IdentityStatus::Rejected;
    assert_eq!(next_step(Some(&paying), now()), NextStep::CompletePayment);
    let mut producing = registered();
    producing.state = State::InProduction;
    producing.identity = IdentityStatus::Rejected;
    assert_eq!(next_step(Some(&producing), now()), NextStep::WaitForCard);
    producing.identity = IdentityStatus::Pending;
    producing.payment = PaymentStatus::Unpaid;
    assert_eq!(next_step(Some(&producing), now()), NextStep::WaitForCard);
}

/// Answering the special-needs questions and giving a home address are citizen operations:
/// the transition refuses them where the permission table does.
#[test]
fn special_needs_and_home_address_events_obey_the_permission_table() {
    let e = transition(&held(), Event::AnswerSpecialNeeds(SpecialNeeds::TYPICAL), now(), &policy());
    assert!(matches!(e, Err(DomainError::InvalidTransition { event: "answer_special_needs", .. })), "{e:?}");
    let e = transition(&draft(), Event::SetHomeVisitAddress, now(), &policy());
    assert_eq!(e, Err(DomainError::HomeVisitNotRequired));
    assert_eq!(Event::AnswerSpecialNeeds(SpecialNeeds::TYPICAL).operation(), Some(Operation::AnswerSpecialNeeds));
    assert_eq!(Event::SetHomeVisitAddress.operation(), Some(Operation::SetHomeVisitAddress));
}

/// A payment books the held seat only when the seat was still held for it: a lost hold
/// leaves a paid citizen without a seat, and a home visit (no hold) is never "booked".
#[test]
fn a_payment_books_only_a_seat_still_held() {
    let paying = apply(&held(), Event::StartPayment);
    let lost = apply(&paying, Event::PaymentSucceeded { tracking_code: tc(), seat_held: false });
    assert_eq!((lost.appointment, lost.slot.clone()), (AppointmentStatus::None, None));
    assert_eq!(next_step(Some(&lost), now()), NextStep::ChooseAppointment);
    let home =
        apply(&Application::new_draft(&policy(), IdentityStatus::Verified), Event::AnswerSpecialNeeds(home_needs()));
    let home = apply(&apply(&home, Event::SetHomeVisitAddress), Event::StartPayment);
    let paid = apply(&home, Event::PaymentSucceeded { tracking_code: tc(), seat_held: true });
    assert_eq!(paid.appointment, AppointmentStatus::None, "no seat was held for a home visit");
}

/// A failed payment reported while the seat is still only held releases it too: the citizen
/// is back at the draft with nothing held (docs/domain/payments.md).
#[test]
fn a_failed_payment_on_a_held_seat_releases_it() {
    let failed = apply(&held(), Event::PaymentFailed { money_deducted: false });
    assert_eq!(failed.state, State::Draft);
    assert_eq!(
        (failed.appointment, failed.slot.clone(), failed.hold_expires_at),
        (AppointmentStatus::None, None, None)
    );
    assert_eq!(failed.payment, PaymentStatus::Failed);
}

/// The office and the production line move a card one step at a time: every back-office
/// event is refused from any state but its own.
#[test]
fn back_office_events_are_refused_out_of_order() {
    let reg = registered();
    let events = [
        Event::CompleteEnrollment,
        Event::ProductionStarted,
        Event::CardProduced,
        Event::Dispatched,
        Event::ReadyForDelivery { office_id: "maragheh".into() },
        Event::ProductionFailed,
        Event::Deliver { office_id: "maragheh".into() },
    ];
    for event in events {
        let name = event.name();
        let e = transition(&reg, event, now(), &policy());
        assert!(matches!(e, Err(DomainError::InvalidTransition { from: "registered", .. })), "{name}: {e:?}");
    }
}

/// A home visit is scheduled from tomorrow to the booking horizon, both ends included.
#[test]
fn a_home_visit_is_scheduled_inside_the_booking_window_only() {
    let (first, last) = booking_window(now(), &policy());
    let at = |date| Event::ScheduleHomeVisit { slot: Slot { office_id: "tehran".into(), date, shift: Shift::Morning } };
    let waiting = home_waiting();
    assert!(transition(&waiting, at(first), now(), &policy()).is_ok(), "the first day");
    assert!(transition(&waiting, at(last), now(), &policy()).is_ok(), "the last day");
    for outside in [first - Duration::days(1), last + Duration::days(1)] {
        assert!(matches!(
            transition(&waiting, at(outside), now(), &policy()),
            Err(DomainError::DateOutsideBookingWindow { .. })
        ));
    }
}
