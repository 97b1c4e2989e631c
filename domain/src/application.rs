//! The application: its states and orthogonal facts (docs/domain/application.md), the one transition
//! function, and the permission table (docs/domain/application.md) with `next_step`
//! (docs/domain/application.md). Handlers ask these functions; they never re-derive a rule.

use chrono::{DateTime, Duration, Months, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::tehran_date;
use crate::error::DomainError;
use crate::iban::Iban;
use crate::ids::TrackingCode;
use crate::offices::{Shift, SpecialNeeds};
use crate::policy::Policy;
use crate::record_ids::OfficeId;

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

/// Where an application is in its life (docs/domain/application.md).
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
    /// A seat kept for a paid citizen whose booked day was closed: theirs if they book it
    /// before `hold_expires_at` (docs/domain/booking.md, "Closures").
    Offered,
}
str_enum!(AppointmentStatus {
    None => "none",
    Held => "held",
    Booked => "booked",
    Missed => "missed",
    Used => "used",
    Offered => "offered",
});

impl AppointmentStatus {
    /// The application holds a seat of its slot (counted in the slot's `taken`).
    pub fn holds_seat(self) -> bool {
        matches!(self, AppointmentStatus::Held | AppointmentStatus::Booked | AppointmentStatus::Offered)
    }
}

/// Why a card is issued again after delivery (issue 19; docs/domain/application.md for a changed serial).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReissueReason {
    /// The birth-certificate serial changed after production started (docs/domain/application.md).
    SerialChanged,
    Lost,
    Damaged,
    /// The holder's recorded data changed (a name, a corrected birth date…).
    DataChanged,
}
str_enum!(ReissueReason {
    SerialChanged => "serial_changed",
    Lost => "lost",
    Damaged => "damaged",
    DataChanged => "data_changed",
});

/// An office, date and shift.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Slot {
    pub office_id: OfficeId,
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
    pub delivery_office_id: Option<OfficeId>,
    /// The serial changed after production started: re-issue after delivery (docs/domain/application.md).
    pub reissue_required: bool,
    /// A citizen who cannot leave home has given the address to visit (needed before paying).
    pub home_visit_address: bool,
    /// This card cycle re-issues a delivered card, for this reason (its fee is the re-issue fee).
    pub reissue: Option<ReissueReason>,
    /// When the office closed on the citizen's booked day (or left service): they book
    /// again without a ban, and the booking deadline counts from then.
    pub displaced_at: Option<DateTime<Utc>>,
}

impl Application {
    /// Whether this application holds one of `slot`'s seats (held, booked or offered).
    pub fn holds_seat_of(&self, slot: &Slot) -> bool {
        self.slot.as_ref() == Some(slot) && self.appointment.holds_seat()
    }

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
            home_visit_address: false,
            reissue: None,
            displaced_at: None,
        }
    }

    /// The tariff line this application pays: the card fee, or the re-issue fee.
    pub fn fee_kind(&self) -> crate::fees::FeeKind {
        if self.reissue.is_some() { crate::fees::FeeKind::Reissue } else { crate::fees::FeeKind::Card }
    }

    pub fn home_visit(&self) -> bool {
        self.special_needs.is_some_and(|n| n.needs_home_visit())
    }

    /// The office the card will be handed over at: the chosen one, else the enrollment office.
    pub fn effective_delivery_office(&self) -> Option<&OfficeId> {
        self.delivery_office_id.as_ref().or(self.slot.as_ref().map(|s| &s.office_id))
    }

    /// The last day a paid citizen without a booking may book on (docs/domain/booking.md: two months),
    /// counted from the payment — or from the closure that took their booking away.
    pub fn booking_deadline(&self, policy: &Policy) -> Option<DateTime<Utc>> {
        let since = self.paid_at?.max(self.displaced_at.unwrap_or(DateTime::<Utc>::MIN_UTC));
        (self.state == State::Registered && self.appointment == AppointmentStatus::None && !self.home_visit())
            .then_some(since)
            .and_then(|since| since.checked_add_months(Months::new(policy.booking_window_months)))
    }

    fn ban_active(&self, today: NaiveDate) -> Option<NaiveDate> {
        self.no_show_ban_until.filter(|until| today <= *until)
    }
}

/// The day a card enrolled on `enrolled_on` is expected at the delivery office (docs/domain/back-office.md),
/// «فرآیند صدور کارت بطور متوسط حدود 20 روز به طول خواهد انجامید» (`policy.card_ready_days`).
pub fn expected_ready_on(enrolled_on: NaiveDate, policy: &Policy) -> NaiveDate {
    enrolled_on + Duration::days(i64::from(policy.card_ready_days))
}

/// The dates a seat may be booked for: from tomorrow (Tehran) to the horizon.
pub fn booking_window(now: DateTime<Utc>, policy: &Policy) -> (NaiveDate, NaiveDate) {
    let today = tehran_date(now);
    (today + Duration::days(1), today + Duration::days(i64::from(policy.booking_horizon_days)))
}

// ---------------------------------------------------------------- closures

/// The seat offered to a citizen whose booked day was closed, among `free` seats (each
/// from tomorrow to the horizon, at an office that suits them): the earliest at the office
/// they had booked — their shift first on a day — and only if it has none, the earliest
/// elsewhere, their shift first. The rule is documented in docs/domain/booking.md
/// ("Closures").
pub fn pick_offer<'a>(lost: &Slot, free: &'a [Slot]) -> Option<&'a Slot> {
    free.iter().min_by_key(|s| (s.office_id != lost.office_id, s.date, s.shift != lost.shift, &s.office_id))
}

/// Until when an offered seat is kept: `policy.closure_offer_days` from now, but never past
/// the start (Tehran) of the offered day itself — a seat must be confirmed before its day.
pub fn offer_until(now: DateTime<Utc>, offered: NaiveDate, policy: &Policy) -> DateTime<Utc> {
    let kept = now + Duration::days(i64::from(policy.closure_offer_days));
    kept.min(crate::calendar::tehran_instant(offered, 0, 0))
}

// ---------------------------------------------------------------- permissions

/// Operations a citizen can ask for (docs/domain/application.md, plus the journey's own steps).
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
    /// Give up the application before enrollment (a paid fee is refunded).
    Withdraw,
    /// Print or save the enrollment receipt (docs/domain/back-office.md: given at completion, kept until delivery).
    PrintEnrollmentReceipt,
    /// Give or change the address a home visit goes to (docs/domain/application.md: "no" to leaving home).
    SetHomeVisitAddress,
    /// Ask for a new card after delivery (docs/domain/application.md; lost, damaged, data changed).
    RequestReissue,
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
    Withdraw => "withdraw",
    PrintEnrollmentReceipt => "print_enrollment_receipt",
    SetHomeVisitAddress => "set_home_visit_address",
    RequestReissue => "request_reissue",
});

/// Whether an operation is allowed now, and if not, the error that says why.
/// This is the permission table of docs/domain/application.md as code:
///
/// | operation | allowed for |
/// |---|---|
/// | print / save / e-mail receipt | everyone whose payment succeeded |
/// | edit personal info | everyone who has not started enrollment (and has edits left) |
/// | change mobile | everyone who has saved the first page, paid or not |
/// | change office/time | everyone who has not started enrollment, even after a missed date (subject to the no-show ban) |
/// | change delivery office | everyone whose card production has not started |
/// | withdraw | everyone who has not started enrollment and is not at the bank right now |
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
        SetHomeVisitAddress => {
            before_enrollment()?;
            if !app.home_visit() {
                return Err(DomainError::HomeVisitNotRequired);
            }
            // Until the office has scheduled the visit; not while the citizen is at the bank.
            let unscheduled = matches!(app.appointment, AppointmentStatus::None | AppointmentStatus::Missed);
            if matches!(app.state, State::Draft | State::Registered) && unscheduled {
                Ok(())
            } else {
                Err(DomainError::InvalidTransition { from: app.state.as_str(), event: "set_home_visit_address" })
            }
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
        RequestReissue => {
            if app.state == State::Delivered {
                Ok(())
            } else {
                Err(DomainError::ReissueNotAllowed)
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
                // A home visit needs no seat: the citizen pays once identity is verified and
                // the address to visit is given.
                State::Draft | State::PaymentPending if app.home_visit() => {
                    ready_to_book(app).or_else(|e| match e {
                        DomainError::HomeVisitRequired => Ok(()),
                        e => Err(e),
                    })?;
                    if app.home_visit_address { Ok(()) } else { Err(DomainError::HomeVisitAddressRequired) }
                }
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
        Withdraw => {
            before_enrollment()?;
            // At the bank the outcome is unknown: wait for it (minutes) rather than cancel
            // an application a payment may be about to register.
            if app.state == State::PaymentPending { Err(DomainError::PaymentInProgress) } else { Ok(()) }
        }
    }
}

/// A new card cycle re-issuing the delivered card of `current` (issue 19): a draft with the
/// same identity and special-needs answers, linked by `reason`, paying the re-issue fee. The
/// caller stores it as the citizen's next cycle; `current` stays as it is, in the history.
pub fn start_reissue(
    current: &Application,
    reason: ReissueReason,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Result<Application, DomainError> {
    check(current, Operation::RequestReissue, now, policy)?;
    let mut next = Application::new_draft(policy, current.identity);
    next.special_needs = current.special_needs;
    next.reissue = Some(reason);
    Ok(next)
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
    EnterHomeVisitAddress,
    WaitForHomeVisit,
    HomeVisitScheduled,
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
    EnterHomeVisitAddress => "enter_home_visit_address",
    WaitForHomeVisit => "wait_for_home_visit",
    HomeVisitScheduled => "home_visit_scheduled",
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
            EnterHomeVisitAddress => (
                "نشانی منزل را برای مراجعه مأمور تکمیل ثبت نام وارد کنید.",
                "Enter your home address for the enrollment visit.",
            ),
            WaitForHomeVisit => (
                "برای تکمیل ثبت نام به منزل شما مراجعه می‌کنیم؛ زمان مراجعه پیامک می‌شود.",
                "We will visit you at home to complete your enrollment; the date will be sent by SMS.",
            ),
            HomeVisitScheduled => (
                "برای تکمیل ثبت نام در زمان تعیین شده به منزل شما مراجعه می‌کنیم.",
                "We will visit you at home on the scheduled date to complete your enrollment.",
            ),
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
        State::Draft if app.home_visit() && !app.home_visit_address => NextStep::EnterHomeVisitAddress,
        State::Draft if app.home_visit() => NextStep::Pay,
        State::Draft => NextStep::ChooseAppointment,
        State::AppointmentHeld => NextStep::Pay,
        State::PaymentPending => NextStep::CompletePayment,
        State::Registered => match app.appointment {
            AppointmentStatus::Booked if app.home_visit() => NextStep::HomeVisitScheduled,
            AppointmentStatus::Booked => NextStep::AttendEnrollment,
            _ if app.home_visit() && !app.home_visit_address => NextStep::EnterHomeVisitAddress,
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

/// The next step in plain words for this application: [`NextStep::describe`], with the date
/// and shift of a scheduled home visit written in (Jalali, Persian digits in Persian).
pub fn next_step_text(app: Option<&Application>, now: DateTime<Utc>, lang: crate::Lang) -> String {
    let step = next_step(app, now);
    match (step, app.and_then(|a| a.slot.as_ref())) {
        (NextStep::HomeVisitScheduled, Some(slot)) => {
            let date = crate::calendar::JalaliDate::from_gregorian(slot.date)
                .map(|d| d.to_string().replace('-', "/"))
                .unwrap_or_default();
            match lang {
                crate::Lang::Fa => format!(
                    "در تاریخ {} ({}) برای تکمیل ثبت نام به منزل شما مراجعه می‌کنیم.",
                    crate::text::persian_digits(&date),
                    slot.shift.label_fa()
                ),
                crate::Lang::En => format!(
                    "We will visit you at home on {date} ({}, {}) to complete your enrollment.",
                    slot.date,
                    slot.shift.as_str()
                ),
            }
        }
        _ => step.describe(lang).to_owned(),
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
        office_id: OfficeId,
    },
    CheckIn {
        office_id: OfficeId,
    },
    CompleteEnrollment,
    MarkNoShow,
    ProductionStarted,
    CardProduced,
    Dispatched,
    ReadyForDelivery {
        office_id: OfficeId,
    },
    ProductionFailed,
    Deliver {
        office_id: OfficeId,
    },
    /// The registry reports a new birth certificate serial.
    SerialChanged,
    /// The two-month window to book after paying has passed.
    Expire,
    /// The citizen gave (or changed) the address a home visit goes to.
    SetHomeVisitAddress,
    /// A home-visit office scheduled the visit: a seat of its own capacity on a date and shift.
    ScheduleHomeVisit {
        slot: Slot,
    },
    /// The citizen gives the application up before enrollment. A paid fee goes back to
    /// `iban`, which a paid application must give.
    Withdraw {
        iban: Option<Iban>,
    },
    /// The office will not receive the citizen on their booked (or offered) day: closed,
    /// a holiday, or out of service. The seat is gone, without a no-show; `offer` is a seat
    /// kept for them until its time (docs/domain/booking.md, "Closures").
    OfficeClosed {
        offer: Option<(Slot, DateTime<Utc>)>,
    },
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
            Event::SetHomeVisitAddress => "set_home_visit_address",
            Event::ScheduleHomeVisit { .. } => "schedule_home_visit",
            Event::Withdraw { .. } => "withdraw",
            Event::OfficeClosed { .. } => "office_closed",
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
            Event::SetHomeVisitAddress => Operation::SetHomeVisitAddress,
            Event::Withdraw { .. } => Operation::Withdraw,
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
            match app.appointment {
                AppointmentStatus::Held => next.state = State::Draft,
                // An offered seat lapses; the paid citizen chooses another.
                AppointmentStatus::Offered => {}
                _ => return Err(invalid()),
            }
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
            if app.effective_delivery_office() != Some(office_id) {
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
        Event::SetHomeVisitAddress => next.home_visit_address = true,
        Event::ScheduleHomeVisit { slot } => {
            if !app.home_visit() {
                return Err(DomainError::HomeVisitNotRequired);
            }
            // Paid, the address given, and not yet visited (a scheduled visit may move; a
            // missed one, or one whose day the office closed, is scheduled again).
            let open = matches!(
                app.appointment,
                AppointmentStatus::None
                    | AppointmentStatus::Missed
                    | AppointmentStatus::Booked
                    | AppointmentStatus::Offered
            );
            if app.state != State::Registered || !open {
                return Err(invalid());
            }
            if !app.home_visit_address {
                return Err(DomainError::HomeVisitAddressRequired);
            }
            let (first, last) = booking_window(now, policy);
            if slot.date < first || slot.date > last {
                return Err(DomainError::DateOutsideBookingWindow { first, last });
            }
            next.slot = Some(slot.clone());
            next.appointment = AppointmentStatus::Booked;
            next.hold_expires_at = None;
        }
        Event::Withdraw { iban } => {
            if app.payment == PaymentStatus::Paid {
                if iban.is_none() {
                    return Err(DomainError::IbanRequired);
                }
                next.payment = PaymentStatus::RefundPending;
            }
            next.state = State::Cancelled;
            if app.appointment.holds_seat() {
                next.appointment = AppointmentStatus::None;
                next.slot = None;
            }
            next.hold_expires_at = None;
        }
        Event::OfficeClosed { offer } => {
            let seated = matches!(app.appointment, AppointmentStatus::Booked | AppointmentStatus::Offered);
            if app.state != State::Registered || !seated {
                return Err(invalid());
            }
            match offer {
                Some((slot, until)) => {
                    next.appointment = AppointmentStatus::Offered;
                    next.slot = Some(slot.clone());
                    next.hold_expires_at = Some(*until);
                }
                None => {
                    next.appointment = AppointmentStatus::None;
                    next.slot = None;
                    next.hold_expires_at = None;
                }
            }
            next.displaced_at = Some(now);
        }
    }
    Ok(next)
}

fn expect_state(app: &Application, state: State, invalid: impl Fn() -> DomainError) -> Result<(), DomainError> {
    if app.state == state { Ok(()) } else { Err(invalid()) }
}

#[cfg(test)]
mod tests;
