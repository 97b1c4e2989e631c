//! Wire types shared by several endpoints: enums mirrored from the domain with their
//! OpenAPI schemas, and small views. Conversions are explicit `From` impls.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Declares a wire enum mirroring a domain enum (same snake_case names) with `From` both ways.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident = $domain:path { $($variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl From<$domain> for $name {
            fn from(v: $domain) -> Self {
                use $domain as D;
                match v { $(D::$variant => $name::$variant),+ }
            }
        }

        impl From<$name> for $domain {
            fn from(v: $name) -> Self {
                use $domain as D;
                match v { $($name::$variant => D::$variant),+ }
            }
        }
    };
}

wire_enum!(
    /// Where an application is in its life (docs/domain/application.md).
    State = domain::application::State {
        Draft, AppointmentHeld, PaymentPending, Registered, EnrollmentStarted, Enrolled, InProduction,
        ReadyForDelivery, Delivered, Cancelled
    }
);
wire_enum!(
    /// Result of the identity inquiry with the civil registry.
    IdentityStatus = domain::application::IdentityStatus { Pending, Verified, Rejected }
);
wire_enum!(
    PaymentStatus = domain::application::PaymentStatus { Unpaid, Pending, Paid, Failed, RefundPending, Refunded }
);
wire_enum!(
    /// `offered`: a seat kept for a citizen whose booked day was closed, until
    /// `hold_expires_at`; booking it makes it theirs.
    AppointmentStatus = domain::application::AppointmentStatus { None, Held, Booked, Missed, Used, Offered }
);
wire_enum!(
    /// Operations a citizen may ask for now (docs/domain/application.md).
    Operation = domain::application::Operation {
        PrintReceipt, SaveReceiptFile, EmailReceipt, EditPersonalInfo, ChangeMobile, ChangeAppointment,
        ChangeDeliveryOffice, AnswerSpecialNeeds, EditFamily, Pay, Withdraw, PrintEnrollmentReceipt,
        SetHomeVisitAddress, RequestReissue
    }
);
wire_enum!(
    /// Where to send the citizen next (docs/domain/application.md), so clients need no routing logic.
    NextStep = domain::application::NextStep {
        EnterPersonalInfo, WaitForIdentityCheck, CorrectPersonalInfo, VisitRegistryOffice, AnswerSpecialNeeds,
        ChooseAppointment, WaitForBanToEnd, Pay, CompletePayment, EnterHomeVisitAddress, WaitForHomeVisit,
        HomeVisitScheduled, AttendEnrollment, EnrollmentInProgress, WaitForCard, CollectCard, RequestReissue, Done,
        ApplicationClosed
    }
);
wire_enum!(
    /// Why a delivered card is issued again: the birth-certificate serial changed after
    /// production (docs/domain/application.md), lost, damaged, or the holder's data changed.
    ReissueReason = domain::application::ReissueReason { SerialChanged, Lost, Damaged, DataChanged }
);
wire_enum!(Shift = domain::offices::Shift { Morning, Afternoon });
wire_enum!(
    /// A day of the Iranian week (Saturday first).
    Weekday = domain::offices::Weekday { Saturday, Sunday, Monday, Tuesday, Wednesday, Thursday, Friday }
);
wire_enum!(Gender = domain::person::Gender { Female, Male });
wire_enum!(
    /// حقیقی (a natural person, the default) or حقوقی (a legal person, registered by its representative).
    PersonType = domain::efolder::PersonType { Natural, Legal }
);
wire_enum!(Religion = domain::person::Religion { Islam, Christianity, Judaism, Zoroastrianism, Other });
wire_enum!(
    /// Civil-registry office, government counter office (پیشخوان دولت) or post office.
    OfficeKind = domain::offices::OfficeKind { CivilRegistry, GovernmentCounter, PostOffice }
);

/// The four special-needs answers (docs/domain/application.md «شناسایی شهروندان نیازمند به تکمیل ثبت نام خاص»).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpecialNeeds {
    /// «آیا سلامتی کافی برای خروج از خانه دارید؟» — "no" puts the citizen in the home-visit queue.
    #[schema(example = true)]
    pub can_leave_home: bool,
    /// «آیا توان حرکتی برای بالا رفتن از پله دارید؟» — "no": offices with step-free access only.
    #[schema(example = true)]
    pub can_climb_stairs: bool,
    /// «آیا مردمک هر دو چشم شما واضح دیده می شود؟» — "no": offices that capture eye exceptions.
    #[schema(example = true)]
    pub pupils_visible: bool,
    /// «آیا همه ی انگشتان دست شما سه بند سالم دارند؟» — "no": offices that capture fingerprint exceptions.
    #[schema(example = true)]
    pub fingers_intact: bool,
}

impl From<SpecialNeeds> for domain::offices::SpecialNeeds {
    fn from(n: SpecialNeeds) -> Self {
        Self {
            can_leave_home: n.can_leave_home,
            can_climb_stairs: n.can_climb_stairs,
            pupils_visible: n.pupils_visible,
            fingers_intact: n.fingers_intact,
        }
    }
}

impl From<domain::offices::SpecialNeeds> for SpecialNeeds {
    fn from(n: domain::offices::SpecialNeeds) -> Self {
        Self {
            can_leave_home: n.can_leave_home,
            can_climb_stairs: n.can_climb_stairs,
            pupils_visible: n.pupils_visible,
            fingers_intact: n.fingers_intact,
        }
    }
}

/// An office as shown to citizens.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OfficeSummary {
    #[schema(example = "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub id: String,
    #[schema(example = "041-0101")]
    pub code: String,
    #[schema(example = "اداره ثبت احوال مراغه")]
    pub name: String,
    pub kind: OfficeKind,
    #[schema(example = "مراغه")]
    pub city: String,
    #[schema(example = "041")]
    pub city_code: String,
    #[schema(example = "11222226")]
    pub phone: String,
    #[schema(example = "مراغه - خ پاسداران - اداره ثبت احوال مراغه")]
    pub address: String,
}

impl From<&persistence::offices::OfficeRow> for OfficeSummary {
    fn from(o: &persistence::offices::OfficeRow) -> Self {
        Self {
            id: o.id.to_string(),
            code: o.code.clone(),
            name: o.name.clone(),
            kind: domain::offices::OfficeKind::parse(&o.kind).map(Into::into).unwrap_or(OfficeKind::CivilRegistry),
            city: o.city.clone(),
            city_code: o.city_code.clone(),
            phone: o.phone.clone(),
            address: o.address.clone(),
        }
    }
}

/// Declares a closed set of string values (the variants' snake_case names) as an `enum`
/// schema of the contract. Fields that carry one keep their string
/// (`#[schema(value_type = wire::Name)]`); the contract fuzzing checks answers against it.
macro_rules! closed_set {
    ($(#[$meta:meta])* $name:ident { $($variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }
    };
}

closed_set!(
    /// A staff account's role.
    StaffRole { Operator, Admin }
);
closed_set!(
    /// A machine client's kind: a kiosk (scope `kiosk:applications`) or the card production
    /// line (scope `production:events`).
    ClientKind { Kiosk, Production }
);
closed_set!(
    /// Where a notification is in its delivery.
    OutboxStatus {
        Queued, Sending, Sent, FailedTemporary,
        FailedPermanent,
    }
);
closed_set!(
    /// How a notification travels.
    Channel { Sms, Email }
);
closed_set!(
    /// A language of messages and texts.
    Lang { Fa, En }
);
closed_set!(
    /// Where one payment is with its bank.
    PaymentState {
        Created, Redirected, CallbackReceived,
        Verified, Failed, Expired, Unknown,
        RefundPending, Refunded, RefundFailed,
        RefundRequested,
    }
);
closed_set!(
    /// Where a withdrawn fee's refund is: the gateway reversing it on the payment's day
    /// (`reversing`), waiting for a transfer to the Sheba number (`requested`), or back with
    /// the citizen (`settled`).
    RefundStatus { Reversing, Requested, Settled }
);
closed_set!(
    /// How a refund went back: the gateway reversed the payment, or a bank transfer.
    RefundMethod { Reversal, Transfer }
);
closed_set!(
    /// A payment gateway: `sandbox` (the embedded default), `sadad` (Bank Melli) or `parsian`.
    /// A deployment enables some of them (`payments.gateways`).
    Gateway { Sandbox, Sadad, Parsian }
);
closed_set!(
    /// Who did something recorded in the audit log.
    ActorKind {
        Citizen, Kiosk, Operator, Admin,
        Production, System,
    }
);
closed_set!(
    /// A fee of the schedule.
    FeeKind { Card, CounterEnrollment, Delivery, Reissue }
);
closed_set!(
    /// The database this server runs on.
    Database { Sqlite, Postgres }
);
closed_set!(
    /// A tab of «آگاهی از فرایند».
    TabId { Registration, Production, Delivery }
);
closed_set!(
    /// A section of «شرایط ثبت نام».
    SectionId {
        Eligibility, Fees, Documents, Rules,
        FollowUp,
    }
);
closed_set!(
    /// Queued for sending through the outbox.
    Queued { Queued }
);
closed_set!(
    /// The server's health.
    HealthStatus { Ok, Ready }
);
