//! The application: its states and orthogonal facts (SPEC §3.6), the one transition
//! function, and the permission table (SPEC §3.7, seed 001 §2.7) with `next_step`
//! (seed 001 §2.2). Handlers ask these functions; they never re-derive a rule.

use chrono::{DateTime, Duration, Months, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::tehran_date;
use crate::error::DomainError;
use crate::ids::TrackingCode;
use crate::offices::{Shift, SpecialNeeds};
use crate::policy::Policy;

macro_rules! str_enum {
    ($name:ident { $($variant:ident => $s:literal),+ $(,)? }) => {
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

/// Where an application is in its life (SPEC §3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Personal information saved ("first page registered").
    Draft,
    /// A seat is held while the citizen pays.
    AppointmentHeld,
    /// The citizen was sent to a bank.
    PaymentPending,
    /// Paid, tracking code issued (appointment booked, or still to be chosen).
    Registered,
    /// Checked in at the office; biometrics under way.
    EnrollmentStarted,
    Enrolled,
    InProduction,
    ReadyForDelivery,
    Delivered,
    /// Withdrawn or expired.
    Cancelled,
}
str_enum!(State {
    Draft => "draft",
    AppointmentHeld => "appointment_held",
    PaymentPending => "payment_pending",
    Registered => "registered",
    EnrollmentStarted => "enrollment_started",
    Enrolled => "enrolled",
    InProduction => "in_production",
    ReadyForDelivery => "ready_for_delivery",
    Delivered => "delivered",
    Cancelled => "cancelled",
});

impl State {
    /// Before the office checked the citizen in (edits and rescheduling still possible).
    pub fn before_enrollment(self) -> bool {
        matches!(self, State::Draft | State::AppointmentHeld | State::PaymentPending | State::Registered)
    }
    /// Before card production started (the delivery office may still change).
    pub fn before_production(self) -> bool {
        self.before_enrollment() || matches!(self, State::EnrollmentStarted | State::Enrolled)
    }

    /// The state in plain words, for public status and USSD (short enough for one screen line).
    pub fn describe(self, lang: crate::Lang) -> &'static str {
        let (fa, en) = match self {
            State::Draft => ("ثبت اولیه (پرداخت نشده)", "First page saved (not paid)"),
            State::AppointmentHeld => ("نوبت در انتظار پرداخت", "Appointment held for payment"),
            State::PaymentPending => ("در حال پرداخت", "Payment in progress"),
            State::Registered => ("ثبت نام شده", "Registered"),
            State::EnrollmentStarted => ("در حال تکمیل ثبت نام", "Enrollment in progress"),
            State::Enrolled => ("تکمیل ثبت نام انجام شد", "Enrollment completed"),
            State::InProduction => ("در حال صدور کارت", "Card in production"),
            State::ReadyForDelivery => ("کارت آماده تحویل", "Card ready for collection"),
            State::Delivered => ("کارت تحویل شد", "Card delivered"),
            State::Cancelled => ("درخواست بسته شد", "Application closed"),
        };
        match lang {
            crate::Lang::Fa => fa,
            crate::Lang::En => en,
        }
    }

    /// The office has completed the enrollment (the enrollment receipt exists).
    pub fn enrollment_completed(self) -> bool {
        matches!(self, State::Enrolled | State::InProduction | State::ReadyForDelivery | State::Delivered)
    }

    /// The card is on its way or handed over: where it is delivered matters to the citizen.
    pub fn card_under_way(self) -> bool {
        !self.before_enrollment() && self != State::Cancelled
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityStatus {
    /// The registry could not be asked yet; a job retries within 24 hours.
    Pending,
    Verified,
    Rejected,
}
str_enum!(IdentityStatus { Pending => "pending", Verified => "verified", Rejected => "rejected" });

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Unpaid,
    Pending,
    Paid,
    Failed,
    RefundPending,
    Refunded,
}
str_enum!(PaymentStatus {
    Unpaid => "unpaid",
    Pending => "pending",
    Paid => "paid",
    Failed => "failed",
    RefundPending => "refund_pending",
    Refunded => "refunded",
});

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppointmentStatus {
    None,
    Held,
    Booked,
    Missed,
    Used,
}
str_enum!(AppointmentStatus { None => "none", Held => "held", Booked => "booked", Missed => "missed", Used => "used" });

/// An office, date and shift.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Slot {
    pub office_id: String,
    pub date: NaiveDate,
    pub shift: Shift,
}

/// The facts of one application that the rules look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Application {
    pub state: State,
    pub identity: IdentityStatus,
    pub payment: PaymentStatus,
    pub appointment: AppointmentStatus,
    /// The held, booked, missed or used seat.
    pub slot: Option<Slot>,
    pub hold_expires_at: Option<DateTime<Utc>>,
    pub special_needs: Option<SpecialNeeds>,
    pub edits_left: u8,
    /// The last day of a no-show ban (inclusive).
    pub no_show_ban_until: Option<NaiveDate>,
    pub tracking_code: Option<TrackingCode>,
    pub paid_at: Option<DateTime<Utc>>,
    pub delivery_office_id: Option<String>,
    /// The serial changed after production started: re-issue after delivery (seed 001 §3.2).
    pub reissue_required: bool,
}

impl Application {
    /// A new application, created when personal information is first saved.
    pub fn new_draft(policy: &Policy, identity: IdentityStatus) -> Self {
        Self {
            state: State::Draft,
            identity,
            payment: PaymentStatus::Unpaid,
            appointment: AppointmentStatus::None,
            slot: None,
            hold_expires_at: None,
            special_needs: None,
            edits_left: policy.personal_info_edits,
            no_show_ban_until: None,
            tracking_code: None,
            paid_at: None,
            delivery_office_id: None,
            reissue_required: false,
        }
    }

    pub fn home_visit(&self) -> bool {
        self.special_needs.is_some_and(|n| n.needs_home_visit())
    }

    /// The office the card will be handed over at: the chosen one, else the enrollment office.
    pub fn effective_delivery_office(&self) -> Option<&str> {
        self.delivery_office_id.as_deref().or(self.slot.as_ref().map(|s| s.office_id.as_str()))
    }

    /// The last day a paid citizen without a booking may book on (seed 003: two months).
    pub fn booking_deadline(&self, policy: &Policy) -> Option<DateTime<Utc>> {
        (self.state == State::Registered && self.appointment == AppointmentStatus::None && !self.home_visit())
            .then_some(self.paid_at?)
            .and_then(|paid| paid.checked_add_months(Months::new(policy.booking_window_months)))
    }

    fn ban_active(&self, today: NaiveDate) -> Option<NaiveDate> {
        self.no_show_ban_until.filter(|until| today <= *until)
    }
}

/// The day a card enrolled on `enrolled_on` is expected at the delivery office: seed 002,
/// «فرآیند صدور کارت بطور متوسط حدود 20 روز به طول خواهد انجامید» (`policy.card_ready_days`).
pub fn expected_ready_on(enrolled_on: NaiveDate, policy: &Policy) -> NaiveDate {
    enrolled_on + Duration::days(i64::from(policy.card_ready_days))
}

/// The dates a seat may be booked for: from tomorrow (Tehran) to the horizon.
pub fn booking_window(now: DateTime<Utc>, policy: &Policy) -> (NaiveDate, NaiveDate) {
    let today = tehran_date(now);
    (today + Duration::days(1), today + Duration::days(i64::from(policy.booking_horizon_days)))
}

// ---------------------------------------------------------------- permissions

/// Operations a citizen can ask for (seed 001 §2.6, plus the journey's own steps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    PrintReceipt,
    SaveReceiptFile,
    EmailReceipt,
    EditPersonalInfo,
    ChangeMobile,
    ChangeAppointment,
    ChangeDeliveryOffice,
    AnswerSpecialNeeds,
    EditFamily,
    Pay,
    /// Print or save the enrollment receipt (seed 002: given at completion, kept until delivery).
    PrintEnrollmentReceipt,
}
str_enum!(Operation {
    PrintReceipt => "print_receipt",
    SaveReceiptFile => "save_receipt_file",
    EmailReceipt => "email_receipt",
    EditPersonalInfo => "edit_personal_info",
    ChangeMobile => "change_mobile",
    ChangeAppointment => "change_appointment",
    ChangeDeliveryOffice => "change_delivery_office",
    AnswerSpecialNeeds => "answer_special_needs",
    EditFamily => "edit_family",
    Pay => "pay",
    PrintEnrollmentReceipt => "print_enrollment_receipt",
});

/// Whether an operation is allowed now, and if not, the error that says why.
/// This is the permission table of SPEC §3.7 as code:
///
/// | operation | allowed for |
/// |---|---|
/// | print / save / e-mail receipt | everyone whose payment succeeded |
/// | edit personal info | everyone who has not started enrollment (and has edits left) |
/// | change mobile | everyone who has saved the first page, paid or not |
/// | change office/time | everyone who has not started enrollment, even after a missed date (subject to the no-show ban) |
/// | change delivery office | everyone whose card production has not started |
pub fn check(app: &Application, op: Operation, now: DateTime<Utc>, policy: &Policy) -> Result<(), DomainError> {
    use Operation::*;
    if app.state == State::Cancelled {
        return Err(DomainError::ApplicationCancelled);
    }
    let before_enrollment = || {
        if app.state.before_enrollment() { Ok(()) } else { Err(DomainError::EnrollmentStarted) }
    };
    match op {
        PrintReceipt | SaveReceiptFile | EmailReceipt => {
            if app.payment == PaymentStatus::Paid {
                Ok(())
            } else {
                Err(DomainError::PaymentRequired)
            }
        }
        EditPersonalInfo => {
            before_enrollment()?;
            if app.edits_left == 0 { Err(DomainError::EditLimitReached) } else { Ok(()) }
        }
        ChangeMobile => Ok(()),
        EditFamily => before_enrollment(),
        ChangeDeliveryOffice => {
            if app.state.before_production() {
                Ok(())
            } else {
                Err(DomainError::ProductionStarted)
            }
        }
        ChangeAppointment => {
            before_enrollment()?;
            if app.state == State::PaymentPending {
                return Err(DomainError::PaymentInProgress);
            }
            ready_to_book(app)?;
            if let Some(until) = app.ban_active(tehran_date(now)) {
                return Err(DomainError::NoShowBanActive { until });
            }
            if app.booking_deadline(policy).is_some_and(|deadline| now > deadline) {
                return Err(DomainError::ApplicationCancelled);
            }
            Ok(())
        }
        AnswerSpecialNeeds => {
            before_enrollment()?;
            let no_seat = matches!(app.appointment, AppointmentStatus::None | AppointmentStatus::Missed);
            if matches!(app.state, State::Draft | State::Registered) && no_seat {
                Ok(())
            } else {
                Err(DomainError::InvalidTransition { from: app.state.as_str(), event: "answer_special_needs" })
            }
        }
        PrintEnrollmentReceipt => {
            if app.state.enrollment_completed() {
                Ok(())
            } else {
                Err(DomainError::EnrollmentNotCompleted)
            }
        }
        Pay => {
            if app.payment == PaymentStatus::Paid {
                return Err(DomainError::AlreadyPaid);
            }
            match app.state {
                // A home visit needs no seat: the citizen pays once identity is verified.
                State::Draft | State::PaymentPending if app.home_visit() => ready_to_book(app).or_else(|e| match e {
                    DomainError::HomeVisitRequired => Ok(()),
                    e => Err(e),
                }),
                State::AppointmentHeld | State::PaymentPending => {
                    if app.hold_expires_at.is_some_and(|at| now < at) {
                        Ok(())
                    } else {
                        Err(DomainError::NoActiveHold)
                    }
                }
                State::Draft => Err(DomainError::NoActiveHold),
                _ => Err(DomainError::InvalidTransition { from: app.state.as_str(), event: "pay" }),
            }
        }
    }
}

/// Identity verified, special needs answered, not a home visit.
fn ready_to_book(app: &Application) -> Result<(), DomainError> {
    match app.identity {
        IdentityStatus::Verified => {}
        IdentityStatus::Pending => return Err(DomainError::IdentityNotVerified { pending: true }),
        IdentityStatus::Rejected => return Err(DomainError::IdentityNotVerified { pending: false }),
    }
    match app.special_needs {
        None => Err(DomainError::SpecialNeedsRequired),
        Some(n) if n.needs_home_visit() => Err(DomainError::HomeVisitRequired),
        Some(_) => Ok(()),
    }
}

/// Every operation allowed now, in the table's order. Every API answer about an
/// application lists these.
pub fn allowed_operations(app: &Application, now: DateTime<Utc>, policy: &Policy) -> Vec<Operation> {
    Operation::ALL.iter().copied().filter(|&op| check(app, op, now, policy).is_ok()).collect()
}

/// Where to send the citizen next, so clients need no routing logic of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NextStep {
    EnterPersonalInfo,
    WaitForIdentityCheck,
    CorrectPersonalInfo,
    VisitRegistryOffice,
    AnswerSpecialNeeds,
    ChooseAppointment,
    WaitForBanToEnd,
    Pay,
    CompletePayment,
    WaitForHomeVisit,
    AttendEnrollment,
    EnrollmentInProgress,
    WaitForCard,
    CollectCard,
    RequestReissue,
    Done,
    ApplicationClosed,
}
str_enum!(NextStep {
    EnterPersonalInfo => "enter_personal_info",
    WaitForIdentityCheck => "wait_for_identity_check",
    CorrectPersonalInfo => "correct_personal_info",
    VisitRegistryOffice => "visit_registry_office",
    AnswerSpecialNeeds => "answer_special_needs",
    ChooseAppointment => "choose_appointment",
    WaitForBanToEnd => "wait_for_ban_to_end",
    Pay => "pay",
    CompletePayment => "complete_payment",
    WaitForHomeVisit => "wait_for_home_visit",
    AttendEnrollment => "attend_enrollment",
    EnrollmentInProgress => "enrollment_in_progress",
    WaitForCard => "wait_for_card",
    CollectCard => "collect_card",
    RequestReissue => "request_reissue",
    Done => "done",
    ApplicationClosed => "application_closed",
});

impl NextStep {
    /// The step in plain words, for public status, SMS and USSD.
    pub fn describe(self, lang: crate::Lang) -> &'static str {
        use NextStep::*;
        let (fa, en) = match self {
            EnterPersonalInfo => ("مشخصات فردی خود را وارد کنید.", "Enter your personal information."),
            WaitForIdentityCheck => {
                ("استعلام هویت در حال انجام است (حداکثر ۲۴ ساعت).", "Your identity check is under way (up to 24 hours).")
            }
            CorrectPersonalInfo => (
                "اطلاعات هویتی تایید نشد؛ مشخصات را اصلاح کنید.",
                "Your identity was not confirmed; correct your details.",
            ),
            VisitRegistryOffice => (
                "برای اصلاح اطلاعات به اداره ثبت احوال مراجعه کنید.",
                "Visit a civil registry office to correct your records.",
            ),
            AnswerSpecialNeeds => ("به پرسش‌های تکمیل ثبت نام خاص پاسخ دهید.", "Answer the special-needs questions."),
            ChooseAppointment => ("زمان و مکان تکمیل ثبت نام را انتخاب کنید.", "Choose an office, date and shift."),
            WaitForBanToEnd => {
                ("پس از پایان محرومیت عدم مراجعه، دوباره نوبت بگیرید.", "Book again when the no-show ban ends.")
            }
            Pay => ("هزینه ثبت نام را پرداخت کنید.", "Pay the registration fee."),
            CompletePayment => ("پرداخت در حال انجام است.", "Your payment is being processed."),
            WaitForHomeVisit => {
                ("برای تکمیل ثبت نام در منزل با شما تماس گرفته می‌شود.", "You will be contacted for a home visit.")
            }
            AttendEnrollment => (
                "در تاریخ نوبت با شناسنامه به دفتر مراجعه کنید.",
                "Go to the office on your appointment date with your birth certificate.",
            ),
            EnrollmentInProgress => {
                ("تکمیل ثبت نام در دفتر در حال انجام است.", "Your enrollment at the office is in progress.")
            }
            WaitForCard => ("کارت شما در حال صدور است (حدود ۲۰ روز).", "Your card is being produced (about 20 days)."),
            CollectCard => {
                ("کارت آماده تحویل است؛ برای دریافت مراجعه کنید.", "Your card is ready; collect it in person.")
            }
            RequestReissue => (
                "کارت تحویل شد؛ به دلیل تعویض شناسنامه درخواست صدور مجدد دهید.",
                "Card delivered; because your certificate changed, apply for a re-issue.",
            ),
            Done => ("کارت هوشمند ملی تحویل شده است.", "Your smart national ID card has been delivered."),
            ApplicationClosed => ("این درخواست بسته شده است.", "This application is closed."),
        };
        match lang {
            crate::Lang::Fa => fa,
            crate::Lang::En => en,
        }
    }
}

/// The next step for a citizen with (or without) an application.
pub fn next_step(app: Option<&Application>, now: DateTime<Utc>) -> NextStep {
    let Some(app) = app else { return NextStep::EnterPersonalInfo };
    if app.state.before_enrollment() && app.state != State::PaymentPending {
        match app.identity {
            IdentityStatus::Verified => {}
            IdentityStatus::Pending if app.payment != PaymentStatus::Paid => return NextStep::WaitForIdentityCheck,
            IdentityStatus::Pending => {}
            IdentityStatus::Rejected if app.edits_left > 0 => return NextStep::CorrectPersonalInfo,
            IdentityStatus::Rejected => return NextStep::VisitRegistryOffice,
        }
    }
    match app.state {
        State::Draft if app.special_needs.is_none() => NextStep::AnswerSpecialNeeds,
        State::Draft if app.home_visit() => NextStep::Pay,
        State::Draft => NextStep::ChooseAppointment,
        State::AppointmentHeld => NextStep::Pay,
        State::PaymentPending => NextStep::CompletePayment,
        State::Registered => match app.appointment {
            AppointmentStatus::Booked => NextStep::AttendEnrollment,
            _ if app.home_visit() => NextStep::WaitForHomeVisit,
            _ if app.ban_active(tehran_date(now)).is_some() => NextStep::WaitForBanToEnd,
            _ => NextStep::ChooseAppointment,
        },
        State::EnrollmentStarted => NextStep::EnrollmentInProgress,
        State::Enrolled | State::InProduction => NextStep::WaitForCard,
        State::ReadyForDelivery => NextStep::CollectCard,
        State::Delivered if app.reissue_required => NextStep::RequestReissue,
        State::Delivered => NextStep::Done,
        State::Cancelled => NextStep::ApplicationClosed,
    }
}

// ---------------------------------------------------------------- transitions

/// Something that happens to an application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The citizen saved edited personal information; `identity` is the result of
    /// re-checking it against the registry (`Pending` if the registry did not answer).
    EditPersonalInfo {
        identity: IdentityStatus,
    },
    /// The background inquiry settled a pending identity.
    IdentitySettled {
        verified: bool,
    },
    AnswerSpecialNeeds(SpecialNeeds),
    EditFamily,
    ChangeMobile,
    /// A seat was taken for the citizen: held until `expires_at` if unpaid, booked if paid.
    TakeSlot {
        slot: Slot,
        expires_at: DateTime<Utc>,
    },
    /// The hold expired or was released.
    ReleaseHold,
    StartPayment,
    /// The bank confirmed the money. `seat_held`: the application still holds a seat,
    /// which becomes the booking; otherwise the citizen chooses a seat again.
    PaymentSucceeded {
        tracking_code: TrackingCode,
        seat_held: bool,
    },
    /// The payment did not go through; `money_deducted` marks it for refund.
    PaymentFailed {
        money_deducted: bool,
    },
    RefundSettled,
    ChangeDeliveryOffice {
        office_id: String,
    },
    CheckIn {
        office_id: String,
    },
    CompleteEnrollment,
    MarkNoShow,
    ProductionStarted,
    CardProduced,
    Dispatched,
    ReadyForDelivery {
        office_id: String,
    },
    ProductionFailed,
    Deliver {
        office_id: String,
    },
    /// The registry reports a new birth certificate serial.
    SerialChanged,
    /// The two-month window to book after paying has passed.
    Expire,
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::EditPersonalInfo { .. } => "edit_personal_info",
            Event::IdentitySettled { .. } => "identity_settled",
            Event::AnswerSpecialNeeds(_) => "answer_special_needs",
            Event::EditFamily => "edit_family",
            Event::ChangeMobile => "change_mobile",
            Event::TakeSlot { .. } => "take_slot",
            Event::ReleaseHold => "release_hold",
            Event::StartPayment => "start_payment",
            Event::PaymentSucceeded { .. } => "payment_succeeded",
            Event::PaymentFailed { .. } => "payment_failed",
            Event::RefundSettled => "refund_settled",
            Event::ChangeDeliveryOffice { .. } => "change_delivery_office",
            Event::CheckIn { .. } => "check_in",
            Event::CompleteEnrollment => "complete_enrollment",
            Event::MarkNoShow => "mark_no_show",
            Event::ProductionStarted => "production_started",
            Event::CardProduced => "card_produced",
            Event::Dispatched => "dispatched",
            Event::ReadyForDelivery { .. } => "ready_for_delivery",
            Event::ProductionFailed => "production_failed",
            Event::Deliver { .. } => "deliver",
            Event::SerialChanged => "serial_changed",
            Event::Expire => "expire",
        }
    }

    /// The citizen operation this event performs, if it is one (checked against the table).
    pub fn operation(&self) -> Option<Operation> {
        Some(match self {
            Event::EditPersonalInfo { .. } => Operation::EditPersonalInfo,
            Event::AnswerSpecialNeeds(_) => Operation::AnswerSpecialNeeds,
            Event::EditFamily => Operation::EditFamily,
            Event::ChangeMobile => Operation::ChangeMobile,
            Event::TakeSlot { .. } => Operation::ChangeAppointment,
            Event::StartPayment => Operation::Pay,
            Event::ChangeDeliveryOffice { .. } => Operation::ChangeDeliveryOffice,
            _ => return None,
        })
    }
}

/// The one place that knows how an event changes an application.
pub fn transition(
    app: &Application,
    event: Event,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Result<Application, DomainError> {
    if let Some(op) = event.operation() {
        check(app, op, now, policy)?;
    }
    let invalid = || DomainError::InvalidTransition { from: app.state.as_str(), event: event.name() };
    let mut next = app.clone();
    match &event {
        Event::EditPersonalInfo { identity } => {
            next.edits_left -= 1;
            next.identity = *identity;
        }
        Event::IdentitySettled { verified } => {
            if app.identity != IdentityStatus::Pending {
                return Err(invalid());
            }
            next.identity = if *verified { IdentityStatus::Verified } else { IdentityStatus::Rejected };
        }
        Event::AnswerSpecialNeeds(needs) => next.special_needs = Some(*needs),
        Event::EditFamily | Event::ChangeMobile => {}
        Event::TakeSlot { slot, expires_at } => {
            let (first, last) = booking_window(now, policy);
            if slot.date < first || slot.date > last {
                return Err(DomainError::DateOutsideBookingWindow { first, last });
            }
            next.slot = Some(slot.clone());
            if app.payment == PaymentStatus::Paid {
                next.appointment = AppointmentStatus::Booked;
                next.hold_expires_at = None;
            } else {
                next.state = State::AppointmentHeld;
                next.appointment = AppointmentStatus::Held;
                next.hold_expires_at = Some(*expires_at);
            }
        }
        Event::ReleaseHold => {
            if app.appointment != AppointmentStatus::Held {
                return Err(invalid());
            }
            next.state = State::Draft;
            next.appointment = AppointmentStatus::None;
            next.slot = None;
            next.hold_expires_at = None;
        }
        Event::StartPayment => {
            next.state = State::PaymentPending;
            next.payment = PaymentStatus::Pending;
        }
        Event::PaymentSucceeded { tracking_code, seat_held } => {
            if app.payment == PaymentStatus::Paid {
                return Err(DomainError::AlreadyPaid);
            }
            if !matches!(app.state, State::Draft | State::AppointmentHeld | State::PaymentPending) {
                return Err(invalid());
            }
            let seat_held = *seat_held && app.appointment == AppointmentStatus::Held;
            next.state = State::Registered;
            next.payment = PaymentStatus::Paid;
            next.paid_at = Some(now);
            next.tracking_code = Some(app.tracking_code.clone().unwrap_or_else(|| tracking_code.clone()));
            next.hold_expires_at = None;
            if seat_held {
                next.appointment = AppointmentStatus::Booked;
            } else {
                next.appointment = AppointmentStatus::None;
                next.slot = None;
            }
        }
        Event::PaymentFailed { money_deducted } => {
            if app.payment == PaymentStatus::Paid {
                return Err(DomainError::AlreadyPaid);
            }
            if !matches!(app.state, State::Draft | State::AppointmentHeld | State::PaymentPending) {
                return Err(invalid());
            }
            next.payment = if *money_deducted { PaymentStatus::RefundPending } else { PaymentStatus::Failed };
            if app.state == State::PaymentPending || app.state == State::AppointmentHeld {
                next.state = State::Draft;
                next.appointment = AppointmentStatus::None;
                next.slot = None;
                next.hold_expires_at = None;
            }
        }
        Event::RefundSettled => {
            if app.payment != PaymentStatus::RefundPending {
                return Err(invalid());
            }
            next.payment = PaymentStatus::Refunded;
        }
        Event::ChangeDeliveryOffice { office_id } => next.delivery_office_id = Some(office_id.clone()),
        Event::CheckIn { office_id } => {
            let slot = app
                .slot
                .as_ref()
                .filter(|_| app.state == State::Registered && app.appointment == AppointmentStatus::Booked);
            let Some(slot) = slot else { return Err(invalid()) };
            if &slot.office_id != office_id {
                return Err(DomainError::ApplicationNotFound);
            }
            if slot.date != tehran_date(now) {
                return Err(DomainError::AppointmentNotToday);
            }
            next.state = State::EnrollmentStarted;
            next.appointment = AppointmentStatus::Used;
        }
        Event::CompleteEnrollment => {
            expect_state(app, State::EnrollmentStarted, invalid)?;
            next.state = State::Enrolled;
            if next.delivery_office_id.is_none() {
                next.delivery_office_id = app.slot.as_ref().map(|s| s.office_id.clone());
            }
        }
        Event::MarkNoShow => {
            let slot = app
                .slot
                .as_ref()
                .filter(|_| app.state == State::Registered && app.appointment == AppointmentStatus::Booked);
            let Some(slot) = slot else { return Err(invalid()) };
            if slot.date > tehran_date(now) {
                return Err(invalid());
            }
            next.appointment = AppointmentStatus::Missed;
            next.no_show_ban_until = Some(slot.date + Duration::days(i64::from(policy.no_show_ban_days)));
        }
        Event::ProductionStarted => {
            expect_state(app, State::Enrolled, invalid)?;
            next.state = State::InProduction;
        }
        Event::CardProduced | Event::Dispatched => expect_state(app, State::InProduction, invalid)?,
        Event::ReadyForDelivery { office_id } => {
            expect_state(app, State::InProduction, invalid)?;
            next.state = State::ReadyForDelivery;
            next.delivery_office_id = Some(office_id.clone());
        }
        Event::ProductionFailed => {
            expect_state(app, State::InProduction, invalid)?;
            next.state = State::Enrolled;
        }
        Event::Deliver { office_id } => {
            expect_state(app, State::ReadyForDelivery, invalid)?;
            if app.effective_delivery_office() != Some(office_id.as_str()) {
                return Err(DomainError::ApplicationNotFound);
            }
            next.state = State::Delivered;
        }
        Event::SerialChanged => {
            if !app.state.before_production() && app.state != State::Cancelled {
                next.reissue_required = true;
            }
        }
        Event::Expire => {
            if app.booking_deadline(policy).is_none_or(|deadline| now <= deadline) {
                return Err(invalid());
            }
            next.state = State::Cancelled;
        }
    }
    Ok(next)
}

fn expect_state(app: &Application, state: State, invalid: impl Fn() -> DomainError) -> Result<(), DomainError> {
    if app.state == state { Ok(()) } else { Err(invalid()) }
}

#[cfg(test)]
mod tests;
