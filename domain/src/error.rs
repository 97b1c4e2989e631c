//! The one list of domain errors. Each has a stable machine `code`, a kind the
//! API maps to an HTTP status in one place, and a message in Persian and English.
//! Where a seed document gives the citizen-facing text, that text is used verbatim.

use chrono::NaiveDate;

/// Language of a user-facing message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Fa,
    En,
}

/// What sort of failure an error is; the API turns this into an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input is malformed or fails a checksum.
    Invalid,
    /// The input is well-formed but a rule rejects it (eligibility, registry mismatch…).
    Rejected,
    /// The operation is not allowed in the application's current state.
    Conflict,
    /// The thing asked for does not exist (or is not the caller's).
    NotFound,
    /// An outside system did not answer; try again later.
    Unavailable,
    /// Too many attempts; try again later.
    TooMany,
}

/// Errors of the domain rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    // ---- input formats
    #[error("national_id_invalid")]
    NationalIdInvalid,
    #[error("legal_id_invalid")]
    LegalIdInvalid,
    #[error("mobile_invalid")]
    MobileInvalid,
    #[error("postal_code_invalid")]
    PostalCodeInvalid,
    #[error("serial_invalid")]
    SerialInvalid,
    #[error("tracking_code_invalid")]
    TrackingCodeInvalid,
    #[error("name_invalid")]
    NameInvalid,
    #[error("date_invalid")]
    DateInvalid,
    #[error("amount_invalid")]
    AmountInvalid,
    #[error("phone_invalid")]
    PhoneInvalid,
    #[error("password_too_weak")]
    PasswordTooWeak,

    // ---- eligibility at entry (docs/domain/eligibility.md), in the order they are checked
    #[error("identity_mismatch")]
    IdentityMismatch,
    #[error("person_not_alive")]
    PersonNotAlive,
    #[error("underage")]
    Underage { min_age: u32 },
    #[error("serial_recently_changed")]
    SerialRecentlyChanged,
    #[error("not_eligible")]
    NotEligible,
    /// Entry by tracking code (docs/domain/eligibility.md): no application of this national code has it.
    #[error("tracking_code_mismatch")]
    TrackingCodeMismatch,
    /// Entry by birth date (docs/domain/eligibility.md, «ویرایش ثبت نام قبلی»): no unpaid registration of
    /// this national code has it.
    #[error("draft_not_found")]
    DraftNotFound,
    /// Entry by birth date of a registration that is paid: the tracking code (or the
    /// serial) opens it.
    #[error("tracking_code_required")]
    TrackingCodeRequired,

    // ---- personal information against the registry
    #[error("birth_date_mismatch")]
    BirthDateMismatch,
    #[error("gender_mismatch")]
    GenderMismatch,
    #[error("mother_name_mismatch")]
    MotherNameMismatch,
    #[error("lunar_date_not_offered")]
    LunarDateNotOffered,

    // ---- the application's state (docs/domain/application.md, §3.7)
    #[error("application_not_found")]
    ApplicationNotFound,
    #[error("application_exists")]
    ApplicationExists,
    #[error("application_cancelled")]
    ApplicationCancelled,
    #[error("edit_limit_reached")]
    EditLimitReached,
    #[error("enrollment_started")]
    EnrollmentStarted,
    #[error("production_started")]
    ProductionStarted,
    #[error("enrollment_not_completed")]
    EnrollmentNotCompleted,
    #[error("reissue_not_allowed")]
    ReissueNotAllowed,
    #[error("identity_not_verified")]
    IdentityNotVerified { pending: bool },
    #[error("special_needs_required")]
    SpecialNeedsRequired,
    #[error("home_visit_required")]
    HomeVisitRequired,
    #[error("home_visit_not_required")]
    HomeVisitNotRequired,
    #[error("home_visit_address_required")]
    HomeVisitAddressRequired,
    #[error("no_show_ban_active")]
    NoShowBanActive { until: NaiveDate },
    #[error("no_active_hold")]
    NoActiveHold,
    #[error("payment_in_progress")]
    PaymentInProgress,
    #[error("payment_required")]
    PaymentRequired,
    #[error("already_paid")]
    AlreadyPaid,
    #[error("invalid_transition")]
    InvalidTransition { from: &'static str, event: &'static str },

    // ---- booking (docs/domain/booking.md)
    #[error("office_not_found")]
    OfficeNotFound,
    #[error("office_unsuitable")]
    OfficeUnsuitable,
    #[error("slot_full")]
    SlotFull,
    #[error("slot_closed")]
    SlotClosed,
    #[error("date_outside_booking_window")]
    DateOutsideBookingWindow { first: NaiveDate, last: NaiveDate },
    #[error("appointment_not_today")]
    AppointmentNotToday,

    // ---- payment (docs/domain/payments.md)
    #[error("amount_mismatch")]
    AmountMismatch,
    #[error("fee_exceeds_maximum")]
    FeeExceedsMaximum { max: i64 },

    // ---- withdrawal and refunds (issue 19)
    #[error("iban_invalid")]
    IbanInvalid,
    #[error("iban_required")]
    IbanRequired,
    #[error("refund_not_found")]
    RefundNotFound,
    #[error("refund_already_settled")]
    RefundAlreadySettled,
    #[error("refund_reversal_in_progress")]
    RefundReversalInProgress,

    // ---- outside systems
    #[error("registry_unavailable")]
    RegistryUnavailable,
    #[error("mobile_check_unavailable")]
    MobileCheckUnavailable,
    #[error("gateway_unavailable")]
    GatewayUnavailable,

    // ---- e-folder (docs/domain/efolder.md)
    #[error("efolder_already_registered")]
    EfolderAlreadyRegistered,
    #[error("mobile_not_owned")]
    MobileNotOwned,
    #[error("registry_data_mismatch")]
    RegistryDataMismatch,
    #[error("representative_required")]
    RepresentativeRequired,
    #[error("efolder_credentials_undelivered")]
    EfolderCredentialsUndelivered,

    // ---- office administration
    #[error("office_code_invalid")]
    OfficeCodeInvalid,
    #[error("office_kind_invalid")]
    OfficeKindInvalid,
    #[error("city_code_invalid")]
    CityCodeInvalid,
    #[error("required")]
    Required,
    #[error("too_long")]
    TooLong { max: usize },
    #[error("flag_invalid")]
    FlagInvalid,
    #[error("capacity_invalid")]
    CapacityInvalid { max: u32 },
    #[error("capacity_rule_duplicate")]
    CapacityRuleDuplicate,
    #[error("office_code_taken")]
    OfficeCodeTaken,
    #[error("capacity_below_bookings")]
    CapacityBelowBookings { date: NaiveDate, shift: crate::offices::Shift, taken: u32, capacity: u32 },
    #[error("closure_not_found")]
    ClosureNotFound,

    // ---- back office: staff, clients, fees (docs/domain/back-office.md)
    #[error("username_taken")]
    UsernameTaken,
    #[error("client_id_taken")]
    ClientIdTaken,
    #[error("fee_exists_for_date")]
    FeeExistsForDate,
    #[error("cannot_reset_self")]
    CannotResetSelf,
    #[error("cannot_disable_self")]
    CannotDisableSelf,

    // ---- enrollment, production and delivery at the office
    #[error("documents_not_checked")]
    DocumentsNotChecked,
    #[error("fee_not_applicable")]
    FeeNotApplicable,
    #[error("fingerprint_mismatch")]
    FingerprintMismatch,
    #[error("event_id_reused")]
    EventIdReused,
    #[error("office_no_home_visits")]
    OfficeNoHomeVisits,

    // ---- public lookups, recovery and receipts (docs/domain/public.md)
    #[error("province_unknown")]
    ProvinceUnknown,
    #[error("status_not_found")]
    StatusNotFound,
    #[error("recovery_not_found")]
    RecoveryNotFound,
    #[error("no_tracking_code")]
    NoTrackingCode,
    #[error("no_booked_appointment")]
    NoBookedAppointment,
    #[error("receipt_signature_invalid")]
    ReceiptSignatureInvalid,

    // ---- e-folder password reset (docs/domain/efolder.md)
    #[error("reset_code_invalid")]
    ResetCodeInvalid,
    #[error("reset_code_expired")]
    ResetCodeExpired,
    #[error("reset_code_attempts_exhausted")]
    ResetCodeAttemptsExhausted,

    // ---- carrying applications over from the old Portal (docs/domain/legacy-import.md)
    #[error("legacy_state_invalid")]
    LegacyStateInvalid,
    #[error("not_for_draft")]
    NotForDraft,
    #[error("legacy_id_duplicate")]
    LegacyIdDuplicate,
    #[error("legacy_changed")]
    LegacyChanged,
    #[error("tracking_code_taken")]
    TrackingCodeTaken,
}

impl DomainError {
    /// The stable machine code clients switch on.
    pub fn code(&self) -> &'static str {
        use DomainError::*;
        match self {
            NationalIdInvalid => "national_id_invalid",
            LegalIdInvalid => "legal_id_invalid",
            MobileInvalid => "mobile_invalid",
            PostalCodeInvalid => "postal_code_invalid",
            SerialInvalid => "serial_invalid",
            TrackingCodeInvalid => "tracking_code_invalid",
            NameInvalid => "name_invalid",
            DateInvalid => "date_invalid",
            AmountInvalid => "amount_invalid",
            PhoneInvalid => "phone_invalid",
            PasswordTooWeak => "password_too_weak",
            IdentityMismatch => "identity_mismatch",
            PersonNotAlive => "person_not_alive",
            Underage { .. } => "underage",
            SerialRecentlyChanged => "serial_recently_changed",
            NotEligible => "not_eligible",
            TrackingCodeMismatch => "tracking_code_mismatch",
            DraftNotFound => "draft_not_found",
            TrackingCodeRequired => "tracking_code_required",
            BirthDateMismatch => "birth_date_mismatch",
            GenderMismatch => "gender_mismatch",
            MotherNameMismatch => "mother_name_mismatch",
            LunarDateNotOffered => "lunar_date_not_offered",
            ApplicationNotFound => "application_not_found",
            ApplicationExists => "application_exists",
            ApplicationCancelled => "application_cancelled",
            EditLimitReached => "edit_limit_reached",
            EnrollmentStarted => "enrollment_started",
            ProductionStarted => "production_started",
            EnrollmentNotCompleted => "enrollment_not_completed",
            ReissueNotAllowed => "reissue_not_allowed",
            IdentityNotVerified { .. } => "identity_not_verified",
            SpecialNeedsRequired => "special_needs_required",
            HomeVisitRequired => "home_visit_required",
            HomeVisitNotRequired => "home_visit_not_required",
            HomeVisitAddressRequired => "home_visit_address_required",
            NoShowBanActive { .. } => "no_show_ban_active",
            NoActiveHold => "no_active_hold",
            PaymentInProgress => "payment_in_progress",
            PaymentRequired => "payment_required",
            AlreadyPaid => "already_paid",
            InvalidTransition { .. } => "invalid_transition",
            OfficeNotFound => "office_not_found",
            OfficeUnsuitable => "office_unsuitable",
            SlotFull => "slot_full",
            SlotClosed => "slot_closed",
            DateOutsideBookingWindow { .. } => "date_outside_booking_window",
            AppointmentNotToday => "appointment_not_today",
            AmountMismatch => "amount_mismatch",
            FeeExceedsMaximum { .. } => "fee_exceeds_maximum",
            IbanInvalid => "iban_invalid",
            IbanRequired => "iban_required",
            RefundNotFound => "refund_not_found",
            RefundAlreadySettled => "refund_already_settled",
            RefundReversalInProgress => "refund_reversal_in_progress",
            RegistryUnavailable => "registry_unavailable",
            MobileCheckUnavailable => "mobile_check_unavailable",
            GatewayUnavailable => "gateway_unavailable",
            EfolderAlreadyRegistered => "efolder_already_registered",
            MobileNotOwned => "mobile_not_owned",
            RegistryDataMismatch => "registry_data_mismatch",
            RepresentativeRequired => "representative_required",
            EfolderCredentialsUndelivered => "efolder_credentials_undelivered",
            OfficeCodeInvalid => "office_code_invalid",
            OfficeKindInvalid => "office_kind_invalid",
            CityCodeInvalid => "city_code_invalid",
            Required => "required",
            TooLong { .. } => "too_long",
            FlagInvalid => "flag_invalid",
            CapacityInvalid { .. } => "capacity_invalid",
            CapacityRuleDuplicate => "capacity_rule_duplicate",
            OfficeCodeTaken => "office_code_taken",
            CapacityBelowBookings { .. } => "capacity_below_bookings",
            ClosureNotFound => "closure_not_found",
            UsernameTaken => "username_taken",
            ClientIdTaken => "client_id_taken",
            FeeExistsForDate => "fee_exists_for_date",
            CannotResetSelf => "cannot_reset_self",
            CannotDisableSelf => "cannot_disable_self",
            DocumentsNotChecked => "documents_not_checked",
            FeeNotApplicable => "fee_not_applicable",
            FingerprintMismatch => "fingerprint_mismatch",
            EventIdReused => "event_id_reused",
            OfficeNoHomeVisits => "office_no_home_visits",
            ProvinceUnknown => "province_unknown",
            StatusNotFound => "status_not_found",
            RecoveryNotFound => "recovery_not_found",
            NoTrackingCode => "no_tracking_code",
            NoBookedAppointment => "no_booked_appointment",
            ReceiptSignatureInvalid => "receipt_signature_invalid",
            ResetCodeInvalid => "reset_code_invalid",
            ResetCodeExpired => "reset_code_expired",
            ResetCodeAttemptsExhausted => "reset_code_attempts_exhausted",
            LegacyStateInvalid => "legacy_state_invalid",
            NotForDraft => "not_for_draft",
            LegacyIdDuplicate => "legacy_id_duplicate",
            LegacyChanged => "legacy_changed",
            TrackingCodeTaken => "tracking_code_taken",
        }
    }

    /// One of each error (both answers of `identity_not_verified`), for the tests that
    /// walk every code and its messages. `every_error_is_listed` checks the list against
    /// the arms of [`code`](Self::code), whose match names each variant.
    pub fn every() -> Vec<DomainError> {
        use DomainError::*;
        let day = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap_or_default();
        vec![
            NationalIdInvalid,
            LegalIdInvalid,
            MobileInvalid,
            PostalCodeInvalid,
            SerialInvalid,
            TrackingCodeInvalid,
            NameInvalid,
            DateInvalid,
            AmountInvalid,
            PhoneInvalid,
            PasswordTooWeak,
            IdentityMismatch,
            PersonNotAlive,
            Underage { min_age: 15 },
            SerialRecentlyChanged,
            NotEligible,
            TrackingCodeMismatch,
            DraftNotFound,
            TrackingCodeRequired,
            BirthDateMismatch,
            GenderMismatch,
            MotherNameMismatch,
            LunarDateNotOffered,
            ApplicationNotFound,
            ApplicationExists,
            ApplicationCancelled,
            EditLimitReached,
            EnrollmentStarted,
            ProductionStarted,
            EnrollmentNotCompleted,
            ReissueNotAllowed,
            IdentityNotVerified { pending: true },
            IdentityNotVerified { pending: false },
            SpecialNeedsRequired,
            HomeVisitRequired,
            HomeVisitNotRequired,
            HomeVisitAddressRequired,
            NoShowBanActive { until: day },
            NoActiveHold,
            PaymentInProgress,
            PaymentRequired,
            AlreadyPaid,
            InvalidTransition { from: "registered", event: "pay" },
            OfficeNotFound,
            OfficeUnsuitable,
            SlotFull,
            SlotClosed,
            DateOutsideBookingWindow { first: day, last: day },
            AppointmentNotToday,
            AmountMismatch,
            FeeExceedsMaximum { max: 10_000_000 },
            IbanInvalid,
            IbanRequired,
            RefundNotFound,
            RefundAlreadySettled,
            RefundReversalInProgress,
            RegistryUnavailable,
            MobileCheckUnavailable,
            GatewayUnavailable,
            EfolderAlreadyRegistered,
            MobileNotOwned,
            RegistryDataMismatch,
            RepresentativeRequired,
            EfolderCredentialsUndelivered,
            OfficeCodeInvalid,
            OfficeKindInvalid,
            CityCodeInvalid,
            Required,
            TooLong { max: 100 },
            FlagInvalid,
            CapacityInvalid { max: 500 },
            CapacityRuleDuplicate,
            OfficeCodeTaken,
            CapacityBelowBookings { date: day, shift: crate::offices::Shift::Morning, taken: 3, capacity: 2 },
            ClosureNotFound,
            UsernameTaken,
            ClientIdTaken,
            FeeExistsForDate,
            CannotResetSelf,
            CannotDisableSelf,
            DocumentsNotChecked,
            FeeNotApplicable,
            FingerprintMismatch,
            EventIdReused,
            OfficeNoHomeVisits,
            ProvinceUnknown,
            StatusNotFound,
            RecoveryNotFound,
            NoTrackingCode,
            NoBookedAppointment,
            ReceiptSignatureInvalid,
            ResetCodeInvalid,
            ResetCodeExpired,
            ResetCodeAttemptsExhausted,
            LegacyStateInvalid,
            NotForDraft,
            LegacyIdDuplicate,
            LegacyChanged,
            TrackingCodeTaken,
        ]
    }

    pub fn kind(&self) -> ErrorKind {
        use DomainError::*;
        match self {
            NationalIdInvalid
            | LegalIdInvalid
            | MobileInvalid
            | PostalCodeInvalid
            | SerialInvalid
            | TrackingCodeInvalid
            | NameInvalid
            | DateInvalid
            | AmountInvalid
            | PhoneInvalid
            | PasswordTooWeak
            | RepresentativeRequired
            | OfficeCodeInvalid
            | OfficeKindInvalid
            | CityCodeInvalid
            | Required
            | TooLong { .. }
            | FlagInvalid
            | CapacityInvalid { .. }
            | CapacityRuleDuplicate
            | IbanInvalid
            | IbanRequired
            | LegacyStateInvalid
            | NotForDraft
            | LegacyIdDuplicate => ErrorKind::Invalid,
            IdentityMismatch
            | PersonNotAlive
            | Underage { .. }
            | NotEligible
            | TrackingCodeMismatch
            | DraftNotFound
            | BirthDateMismatch
            | GenderMismatch
            | MotherNameMismatch
            | LunarDateNotOffered
            | OfficeUnsuitable
            | AmountMismatch
            | FeeExceedsMaximum { .. }
            | MobileNotOwned
            | RegistryDataMismatch
            | DateOutsideBookingWindow { .. }
            | DocumentsNotChecked
            | FeeNotApplicable
            | ProvinceUnknown
            | ReceiptSignatureInvalid
            | ResetCodeInvalid
            | ResetCodeExpired
            | ResetCodeAttemptsExhausted => ErrorKind::Rejected,
            SerialRecentlyChanged => ErrorKind::TooMany,
            ApplicationNotFound | OfficeNotFound | ClosureNotFound | RefundNotFound | StatusNotFound
            | RecoveryNotFound => ErrorKind::NotFound,
            RegistryUnavailable | MobileCheckUnavailable | GatewayUnavailable => ErrorKind::Unavailable,
            ApplicationExists
            | TrackingCodeRequired
            | ApplicationCancelled
            | EditLimitReached
            | EnrollmentStarted
            | ProductionStarted
            | EnrollmentNotCompleted
            | ReissueNotAllowed
            | IdentityNotVerified { .. }
            | SpecialNeedsRequired
            | HomeVisitRequired
            | HomeVisitNotRequired
            | HomeVisitAddressRequired
            | NoShowBanActive { .. }
            | NoActiveHold
            | PaymentInProgress
            | PaymentRequired
            | AlreadyPaid
            | InvalidTransition { .. }
            | SlotFull
            | SlotClosed
            | AppointmentNotToday
            | EfolderAlreadyRegistered
            | OfficeCodeTaken
            | CapacityBelowBookings { .. }
            | RefundAlreadySettled
            | RefundReversalInProgress
            | EfolderCredentialsUndelivered
            | UsernameTaken
            | ClientIdTaken
            | FeeExistsForDate
            | CannotResetSelf
            | CannotDisableSelf
            | FingerprintMismatch
            | EventIdReused
            | OfficeNoHomeVisits
            | NoTrackingCode
            | NoBookedAppointment
            | LegacyChanged
            | TrackingCodeTaken => ErrorKind::Conflict,
        }
    }

    /// The input field an error is about, when there is one.
    pub fn field(&self) -> Option<&'static str> {
        use DomainError::*;
        Some(match self {
            NationalIdInvalid => "national_id",
            LegalIdInvalid => "legal_id",
            MobileInvalid => "mobile",
            PostalCodeInvalid => "postal_code",
            SerialInvalid => "serial",
            TrackingCodeInvalid | TrackingCodeMismatch => "tracking_code",
            DraftNotFound => "birth_date_jalali",
            PhoneInvalid => "phone",
            PasswordTooWeak => "new_password",
            BirthDateMismatch => "birth_date_jalali",
            GenderMismatch => "gender",
            MotherNameMismatch => "mother_name",
            LunarDateNotOffered => "birth_date_hijri",
            OfficeCodeInvalid | OfficeCodeTaken => "code",
            OfficeKindInvalid => "kind",
            CityCodeInvalid => "city_code",
            CapacityInvalid { .. } | CapacityBelowBookings { .. } => "capacity",
            IbanInvalid | IbanRequired => "iban",
            _ => return None,
        })
    }

    /// The user-facing message.
    pub fn message(&self, lang: Lang) -> String {
        let (fa, en) = self.texts();
        match lang {
            Lang::Fa => fa,
            Lang::En => en,
        }
    }

    fn texts(&self) -> (String, String) {
        use DomainError::*;
        let s = |fa: &str, en: &str| (fa.to_owned(), en.to_owned());
        match self {
            NationalIdInvalid => s("شماره ملی وارد شده معتبر نیست.", "The national code is not valid."),
            LegalIdInvalid => s("شناسه ملی شخص حقوقی معتبر نیست.", "The legal person's national ID is not valid."),
            MobileInvalid => {
                s("شماره تلفن همراه معتبر نیست.", "The mobile number is not a valid Iranian mobile number.")
            }
            PostalCodeInvalid => s("کد پستی معتبر نیست.", "The postal code is not valid."),
            SerialInvalid => s(
                "سریال شناسنامه معتبر نیست؛ بخش عددی شش رقمی سریال را وارد کنید.",
                "The birth certificate serial is not valid; enter its six-digit number.",
            ),
            TrackingCodeInvalid => s("کد رهگیری معتبر نیست.", "The tracking code is not valid."),
            NameInvalid => s("نام وارد شده معتبر نیست.", "The name is not valid."),
            DateInvalid => s("تاریخ وارد شده معتبر نیست.", "The date is not valid."),
            AmountInvalid => s("مبلغ معتبر نیست.", "The amount is not valid."),
            PhoneInvalid => s("شماره تلفن معتبر نیست.", "The phone number is not valid."),
            PasswordTooWeak => s(
                "کلمه عبور باید دست کم ۱۰ نویسه باشد و با نام کاربری یا کد ملی یکی نباشد.",
                "The password must be at least 10 characters and differ from the username and national code.",
            ),
            IdentityMismatch => s(
                "شماره ملی و سریال شناسنامه با یکدیگر مطابقت ندارند.",
                "The national code and the birth certificate serial do not match.",
            ),
            TrackingCodeMismatch => s(
                "شماره ملی و کد رهگیری با یکدیگر مطابقت ندارند.",
                "The national code and the tracking code do not match.",
            ),
            DraftNotFound => s(
                "ثبت نام پرداخت‌نشده‌ای با این شماره ملی و تاریخ تولد یافت نشد.",
                "No unpaid registration matches this national code and birth date.",
            ),
            TrackingCodeRequired => s(
                "هزینه ثبت نام شما پرداخت شده است؛ با شماره ملی و کد رهگیری وارد شوید.",
                "Your registration is paid: enter with your national code and tracking code.",
            ),
            PersonNotAlive | NotEligible => s(
                "شهروند گرامی در حال حاضر شما واجد شرایط ثبت نام کارت هوشمند ملی نمی‌باشید.",
                "Dear citizen, you are not eligible to register for the smart national ID card at this time.",
            ),
            Underage { min_age } => (
                format!(
                    "شهروند گرامی در حال حاضر شما واجد شرایط ثبت نام کارت هوشمند ملی نمی‌باشید. حداقل سن ثبت نام {} سال تمام است.",
                    crate::text::persian_digits(&min_age.to_string())
                ),
                format!("You must be at least {min_age} full years old to register."),
            ),
            SerialRecentlyChanged => s(
                "سریال شناسنامه شما به تازگی تغییر کرده است؛ لطفا ۴۸ ساعت کاری بعد مراجعه نمایید.",
                "Your birth certificate serial changed recently; please come back after 48 working hours.",
            ),
            BirthDateMismatch => s(
                "تاریخ تولد شمسی با اطلاعات ثبت احوال مطابقت ندارد.",
                "The solar birth date does not match the civil registry.",
            ),
            GenderMismatch => {
                s("جنسیت وارد شده با اطلاعات ثبت احوال مطابقت ندارد.", "The gender does not match the civil registry.")
            }
            MotherNameMismatch => s(
                "نام مادر وارد شده با اطلاعات ثبت احوال مطابقت ندارد.",
                "The mother's first name does not match the civil registry.",
            ),
            LunarDateNotOffered => s(
                "تاریخ تولد قمری باید یکی از گزینه‌های پیشنهادی باشد. اگر تاریخ درج شده در شناسنامه شما در فهرست نیست، برای اصلاح شناسنامه به اداره ثبت احوال مراجعه کنید و پس از اصلاح برای کارت هوشمند ملی اقدام نمایید.",
                "The lunar birth date must be one of the offered options. If the date in your certificate is not offered, have the certificate corrected at a civil registry office first.",
            ),
            ApplicationNotFound => s("درخواستی یافت نشد.", "No application was found."),
            ApplicationExists => s("برای شما درخواست ثبت شده است.", "An application already exists."),
            ApplicationCancelled => {
                s("این درخواست لغو یا منقضی شده است.", "This application has been cancelled or has expired.")
            }
            EditLimitReached => s(
                "تعداد دفعات مجاز ویرایش مشخصات به پایان رسیده است.",
                "You have used all allowed edits of your personal information.",
            ),
            EnrollmentStarted => s(
                "تکمیل ثبت نام شما آغاز شده است و این عملیات دیگر مجاز نیست.",
                "Your enrollment has started; this operation is no longer allowed.",
            ),
            ProductionStarted => s(
                "تولید کارت شما آغاز شده است و این عملیات دیگر مجاز نیست.",
                "Production of your card has started; this operation is no longer allowed.",
            ),
            EnrollmentNotCompleted => s(
                "رسید تکمیل ثبت نام پس از پایان تکمیل ثبت نام در دفتر صادر می‌شود.",
                "The enrollment receipt is issued once the office has completed your enrollment.",
            ),
            ReissueNotAllowed => s(
                "درخواست صدور مجدد کارت پس از تحویل کارت امکان‌پذیر است.",
                "A new card can be requested once the current one has been delivered.",
            ),
            IdentityNotVerified { pending: true } => s(
                "استعلام اطلاعات هویتی شما در حال انجام است (حداکثر ۲۴ ساعت). لطفا بعدا وضعیت درخواست را بررسی کنید.",
                "Your identity inquiry is under way (up to 24 hours). Please check your status later.",
            ),
            IdentityNotVerified { pending: false } => s(
                "اطلاعات هویتی شما تایید نشد؛ لطفا مشخصات را اصلاح کنید.",
                "Your identity data was not confirmed; please correct your personal information.",
            ),
            SpecialNeedsRequired => {
                s("ابتدا به پرسش‌های تکمیل ثبت نام خاص پاسخ دهید.", "Answer the special-needs questions first.")
            }
            HomeVisitRequired => s(
                "با توجه به پاسخ شما، تکمیل ثبت نام در منزل انجام می‌شود و نیازی به انتخاب دفتر نیست.",
                "You are in the home-visit queue; no office appointment is needed.",
            ),
            HomeVisitNotRequired => s(
                "مراجعه در منزل برای کسانی است که به پرسش «آیا سلامتی کافی برای خروج از خانه دارید؟» پاسخ خیر داده‌اند.",
                "Home visits are for those who answered \"no\" to \"can you leave home?\".",
            ),
            HomeVisitAddressRequired => s(
                "ابتدا نشانی منزل را برای مراجعه مأمور تکمیل ثبت نام وارد کنید.",
                "Enter your home address for the enrollment visit first.",
            ),
            NoShowBanActive { until } => (
                format!(
                    "به دلیل عدم مراجعه در نوبت قبلی، تا تاریخ {} مجاز به نوبت‌گیری مجدد نیستید.",
                    crate::calendar::JalaliDate::from_gregorian(*until)
                        .map(|d| crate::text::persian_digits(&d.to_string()))
                        .unwrap_or_default()
                ),
                format!("Because you missed your appointment you may book again from {until}."),
            ),
            NoActiveHold => {
                s("ابتدا زمان و مکان تکمیل ثبت نام را انتخاب کنید.", "Choose an office, date and shift first.")
            }
            PaymentInProgress => s(
                "پرداخت شما در حال انجام است؛ لطفا چند دقیقه بعد دوباره تلاش کنید.",
                "Your payment is in progress; please try again in a few minutes.",
            ),
            PaymentRequired => s("ابتدا هزینه ثبت نام را پرداخت کنید.", "Pay the registration fee first."),
            AlreadyPaid => s("هزینه ثبت نام قبلا پرداخت شده است.", "The registration fee has already been paid."),
            InvalidTransition { .. } => s(
                "این عملیات در وضعیت فعلی درخواست مجاز نیست.",
                "This operation is not allowed in the application's current state.",
            ),
            OfficeNotFound => s("دفتر مورد نظر یافت نشد.", "The office was not found."),
            OfficeUnsuitable => s(
                "این دفتر امکانات لازم برای شرایط تندرستی شما را ندارد.",
                "This office lacks the facilities your answers require.",
            ),
            SlotFull => s(
                "ظرفیت این دفتر در تاریخ و شیفت انتخاب شده تکمیل است؛ لطفا تاریخ یا دفتر دیگری انتخاب کنید.",
                "This office has no free capacity on that date and shift; choose another date or office.",
            ),
            SlotClosed => s("دفتر در این تاریخ و شیفت تعطیل است.", "The office is closed on that date and shift."),
            DateOutsideBookingWindow { first, last } => (
                format!("نوبت فقط از {} تا {} قابل انتخاب است.", jalali_fa(*first), jalali_fa(*last)),
                format!("Appointments can be booked from {first} to {last}."),
            ),
            AppointmentNotToday => s("نوبت این متقاضی برای امروز نیست.", "This applicant's appointment is not today."),
            AmountMismatch => s("مبلغ پرداخت با مبلغ سفارش مطابقت ندارد.", "The paid amount does not match the order."),
            FeeExceedsMaximum { max } => (
                format!("مبلغ از سقف مجاز ({} ریال) بیشتر است.", crate::text::persian_digits(&max.to_string())),
                format!("The amount exceeds the maximum of {max} rials."),
            ),
            RegistryUnavailable => s(
                "ارتباط با سامانه ثبت احوال برقرار نیست؛ لطفا دقایقی بعد تلاش کنید.",
                "The civil registry cannot be reached; please try again in a few minutes.",
            ),
            MobileCheckUnavailable => s(
                "استعلام مالکیت تلفن همراه در حال حاضر امکان‌پذیر نیست؛ لطفا دقایقی بعد تلاش کنید.",
                "The mobile-ownership check is unavailable; please try again in a few minutes.",
            ),
            GatewayUnavailable => s(
                "درگاه پرداخت در دسترس نیست؛ لطفا درگاه دیگری را انتخاب کنید یا بعدا تلاش کنید.",
                "The payment gateway is unavailable; choose another gateway or try later.",
            ),
            EfolderAlreadyRegistered => {
                s("اطلاعات شما قبلاً در سیستم وارد شده است.", "Your details are already registered in the system.")
            }
            MobileNotOwned => s(
                "کاربر گرامی شماره تلفن وارد شده مربوط به این کد ملی نمی باشد لطفا شماره تلفن همراه دیگری را که با این کد ملی ثبت شده است، وارد نمایید.",
                "This mobile number is not registered to this national code; please enter another mobile number registered to it.",
            ),
            RegistryDataMismatch => s(
                "اطلاعات وارد شده با اطلاعات موجود در ثبت احوال همخوانی ندارد. لطفا اطلاعات خود را مجددا بررسی فرمایید.",
                "The details do not match the civil registry. Please check them again.",
            ),
            RepresentativeRequired => s(
                "برای شخص حقوقی، شناسه ملی و کد ملی نماینده الزامی است.",
                "A legal person needs its national ID and the representative's national code.",
            ),
            OfficeCodeInvalid => s(
                "کد دفتر باید ۱ تا ۳۲ نویسه از حروف لاتین، رقم و خط تیره باشد.",
                "The office code must be 1 to 32 Latin letters, digits or dashes.",
            ),
            OfficeKindInvalid => s(
                "نوع دفتر باید civil_registry، government_counter یا post_office باشد.",
                "The office kind must be civil_registry, government_counter or post_office.",
            ),
            CityCodeInvalid => s(
                "پیش‌شماره شهر باید ۲ تا ۴ رقم و با صفر آغاز شود (مانند ۰۴۱).",
                "The city code must be 2 to 4 digits starting with 0 (e.g. 041).",
            ),
            Required => s("این مورد الزامی است.", "This field is required."),
            TooLong { max } => (
                format!("این مورد حداکثر {} نویسه است.", crate::text::persian_digits(&max.to_string())),
                format!("This field takes at most {max} characters."),
            ),
            FlagInvalid => s(
                "مقدار باید true یا false (یا ۱/۰، بله/خیر) باشد.",
                "The value must be true or false (or 1/0, yes/no).",
            ),
            CapacityInvalid { max } => (
                format!("ظرفیت باید عددی از ۰ تا {} باشد.", crate::text::persian_digits(&max.to_string())),
                format!("The capacity must be a whole number from 0 to {max}."),
            ),
            CapacityRuleDuplicate => s(
                "برای هر روز هفته و شیفت فقط یک ظرفیت می‌توان تعیین کرد.",
                "Give at most one capacity per weekday and shift.",
            ),
            OfficeCodeTaken => s("دفتری با این کد وجود دارد.", "An office with this code already exists."),
            CapacityBelowBookings { date, shift, taken, capacity } => (
                format!(
                    "در تاریخ {} شیفت {} تعداد {} نوبت ثبت شده است و ظرفیت نمی‌تواند به {} کاهش یابد؛ ابتدا نوبت‌ها را جابه‌جا کنید یا دفتر را در آن تاریخ تعطیل اعلام کنید.",
                    jalali_fa(*date),
                    shift.label_fa(),
                    crate::text::persian_digits(&taken.to_string()),
                    crate::text::persian_digits(&capacity.to_string()),
                ),
                format!(
                    "{taken} seats are already taken on {date} ({}); the capacity cannot drop to {capacity}. Move those appointments or declare a closure for that date instead.",
                    shift.as_str()
                ),
            ),
            ClosureNotFound => {
                s("تعطیلی‌ای برای این دفتر در این تاریخ ثبت نشده است.", "This office has no closure on that date.")
            }
            IbanInvalid => s(
                "شماره شبا معتبر نیست؛ IR و ۲۴ رقم پس از آن را بدون اشتباه وارد کنید.",
                "The Sheba number (IBAN) is not valid: enter IR followed by its 24 digits.",
            ),
            IbanRequired => s(
                "هزینه ثبت نام پرداخت شده است؛ برای بازگرداندن آن شماره شبای حساب بانکی خود را وارد کنید.",
                "The fee was paid: give the Sheba number (IBAN) of your bank account to have it refunded.",
            ),
            RefundNotFound => s("درخواست بازگرداندن وجهی یافت نشد.", "No such refund."),
            RefundAlreadySettled => s("این مبلغ قبلا بازگردانده شده است.", "This refund has already been settled."),
            RefundReversalInProgress => s(
                "بازگرداندن این مبلغ از طریق درگاه بانک در حال انجام است؛ پس از پایان آن دوباره بررسی کنید.",
                "The bank gateway is still reversing this payment; check again when it has answered.",
            ),
            EfolderCredentialsUndelivered => s(
                "اطلاعات شما قبلاً در سیستم وارد شده است. پیامک نام کاربری و کلمه عبور به شما نرسید؛ از «بازیابی نام کاربری و کلمه عبور» با کد ملی و شماره تلفن همراه خود استفاده کنید.",
                "Your details are already registered in the system. The SMS with your username and password did not reach you: use credentials recovery with your national code and mobile number.",
            ),
            UsernameTaken => s("این نام کاربری قبلا ثبت شده است.", "This username is already taken."),
            ClientIdTaken => s("این شناسه سرویس‌گیرنده قبلا ثبت شده است.", "This client id is already registered."),
            FeeExistsForDate => s(
                "برای این نوع هزینه از این تاریخ قبلا تعرفه‌ای ثبت شده است.",
                "A fee of this kind is already set from this date.",
            ),
            CannotResetSelf | CannotDisableSelf => s(
                "مدیر نمی‌تواند حساب خود را از این مسیر غیرفعال یا کلمه عبور آن را بازنشانی کند.",
                "An administrator cannot disable or reset their own account here.",
            ),
            DocumentsNotChecked => s(
                "پیش از تکمیل ثبت نام، بررسی مدارک باید تایید شود.",
                "Confirm that the documents were checked before completing the enrollment.",
            ),
            FeeNotApplicable => {
                s("این دفتر چنین هزینه‌ای دریافت نمی‌کند.", "This kind of office does not collect this fee.")
            }
            FingerprintMismatch => s(
                "اثر انگشت با اثر ثبت شده روی کارت مطابقت ندارد؛ کارت تحویل نشد.",
                "The fingerprint does not match the card's; the card was not handed over.",
            ),
            EventIdReused => s(
                "این شناسه رویداد قبلا برای رویداد دیگری به کار رفته است.",
                "This event id was already used for a different event.",
            ),
            OfficeNoHomeVisits => s("این دفتر مراجعه در منزل انجام نمی‌دهد.", "This office does not make home visits."),
            ProvinceUnknown => s("در این استان دفتری وجود ندارد.", "No office lies in this province."),
            StatusNotFound => s(
                "درخواستی با این مشخصات یافت نشد؛ شماره ملی و کد رهگیری یا تاریخ تولد را بررسی کنید.",
                "No application matches these details; check the national code and the tracking code or birth date.",
            ),
            RecoveryNotFound => s(
                "درخواستی با این شماره ملی و تاریخ تولد یافت نشد.",
                "No application matches this national code and birth date.",
            ),
            NoTrackingCode => s(
                "برای این درخواست هنوز کد رهگیری صادر نشده است؛ کد رهگیری پس از پرداخت موفق صادر می‌شود.",
                "No tracking code has been issued yet: it is issued once the fee is paid.",
            ),
            NoBookedAppointment => s(
                "هنوز نوبتی برای شما قطعی نشده است؛ پس از پرداخت، نوبت قطعی می‌شود.",
                "No appointment is booked yet: a seat is booked once the fee is paid.",
            ),
            ReceiptSignatureInvalid => s(
                "امضای این رسید معتبر نیست؛ رسید تغییر داده شده یا توسط این سامانه صادر نشده است.",
                "The receipt's signature is not valid: it was altered or not issued by this service.",
            ),
            ResetCodeInvalid => s("کد بازیابی نادرست است.", "The reset code is wrong."),
            ResetCodeExpired => {
                s("کد بازیابی منقضی شده است؛ کد جدید درخواست کنید.", "The reset code has expired; ask for a new one.")
            }
            ResetCodeAttemptsExhausted => s(
                "کد بازیابی سه بار نادرست وارد شد و باطل شد؛ کد جدید درخواست کنید.",
                "The reset code was entered wrongly three times and is void; ask for a new one.",
            ),
            LegacyStateInvalid => s(
                "وضعیت باید draft (پرداخت‌نشده) یا registered (پرداخت‌شده) باشد.",
                "The state must be draft (unpaid) or registered (paid).",
            ),
            NotForDraft => s(
                "درخواست پرداخت‌نشده (draft) کد رهگیری یا نوبت ندارد؛ این خانه باید خالی باشد.",
                "An unpaid (draft) application has no tracking code or appointment: leave this cell empty.",
            ),
            LegacyIdDuplicate => s("این شناسه در فایل دو بار آمده است.", "This legacy id appears twice in the file."),
            LegacyChanged => s(
                "این درخواست پیش‌تر با داده‌های دیگری منتقل شده است و دوباره منتقل نمی‌شود.",
                "This application was imported before with other data; it is not imported again.",
            ),
            TrackingCodeTaken => {
                s("این کد رهگیری به درخواست دیگری تعلق دارد.", "This tracking code belongs to another application.")
            }
        }
    }
}

fn jalali_fa(d: NaiveDate) -> String {
    crate::calendar::JalaliDate::from_gregorian(d)
        .map(|j| crate::text::persian_digits(&j.to_string()))
        .unwrap_or_else(|_| d.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_messages_are_verbatim() {
        // docs/domain/eligibility.md
        assert_eq!(
            DomainError::NotEligible.message(Lang::Fa),
            "شهروند گرامی در حال حاضر شما واجد شرایط ثبت نام کارت هوشمند ملی نمی‌باشید."
        );
        // docs/domain/efolder.md
        assert_eq!(DomainError::EfolderAlreadyRegistered.message(Lang::Fa), "اطلاعات شما قبلاً در سیستم وارد شده است.");
        assert!(
            DomainError::MobileNotOwned
                .message(Lang::Fa)
                .starts_with("کاربر گرامی شماره تلفن وارد شده مربوط به این کد ملی نمی باشد")
        );
        assert_eq!(
            DomainError::RegistryDataMismatch.message(Lang::Fa),
            "اطلاعات وارد شده با اطلاعات موجود در ثبت احوال همخوانی ندارد. لطفا اطلاعات خود را مجددا بررسی فرمایید."
        );
    }

    /// Issue 19: the registration answer for credentials that never arrived starts with
    /// the text of docs/domain/efolder.md, then says where to go.
    #[test]
    fn undelivered_credentials_keep_the_seed_text_and_point_to_recovery() {
        let fa = DomainError::EfolderCredentialsUndelivered.message(Lang::Fa);
        assert!(fa.starts_with("اطلاعات شما قبلاً در سیستم وارد شده است.") && fa.contains("بازیابی"), "{fa}");
        assert_eq!(DomainError::EfolderCredentialsUndelivered.kind(), ErrorKind::Conflict);
        assert_eq!((DomainError::IbanInvalid.field(), DomainError::IbanRequired.field()), (Some("iban"), Some("iban")));
        assert_eq!(DomainError::RefundNotFound.kind(), ErrorKind::NotFound);
    }

    /// Each field error names the request field a client highlights.
    #[test]
    fn field_errors_name_their_field() {
        use DomainError::*;
        let cases = [
            (NationalIdInvalid, Some("national_id")),
            (LegalIdInvalid, Some("legal_id")),
            (MobileInvalid, Some("mobile")),
            (PostalCodeInvalid, Some("postal_code")),
            (SerialInvalid, Some("serial")),
            (TrackingCodeInvalid, Some("tracking_code")),
            (PhoneInvalid, Some("phone")),
            (TrackingCodeMismatch, Some("tracking_code")),
            (DraftNotFound, Some("birth_date_jalali")),
            (PasswordTooWeak, Some("new_password")),
            (BirthDateMismatch, Some("birth_date_jalali")),
            (GenderMismatch, Some("gender")),
            (MotherNameMismatch, Some("mother_name")),
            (LunarDateNotOffered, Some("birth_date_hijri")),
            (OfficeCodeInvalid, Some("code")),
            (OfficeCodeTaken, Some("code")),
            (OfficeKindInvalid, Some("kind")),
            (CityCodeInvalid, Some("city_code")),
            (CapacityInvalid { max: 500 }, Some("capacity")),
            (SlotFull, None),
            (NotEligible, None),
        ];
        for (e, field) in cases {
            assert_eq!(e.field(), field, "{e:?}");
        }
    }

    /// The kind decides the HTTP status; one of each.
    #[test]
    fn kinds_sort_errors_into_statuses() {
        use DomainError::*;
        for (e, kind) in [
            (NationalIdInvalid, ErrorKind::Invalid),
            (NotEligible, ErrorKind::Rejected),
            (SerialRecentlyChanged, ErrorKind::TooMany),
            (OfficeNotFound, ErrorKind::NotFound),
            (RegistryUnavailable, ErrorKind::Unavailable),
            (SlotFull, ErrorKind::Conflict),
        ] {
            assert_eq!(e.kind(), kind, "{e:?}");
        }
    }

    /// Messages exist in both languages; dates in the Persian one are Jalali with Persian
    /// digits, in the English one ISO.
    #[test]
    fn messages_speak_both_languages_and_dates_in_each_calendar() {
        let window = DomainError::DateOutsideBookingWindow {
            first: NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
            last: NaiveDate::from_ymd_opt(2027, 1, 21).unwrap(),
        };
        assert_eq!(window.message(Lang::Fa), "نوبت فقط از ۱۴۰۵-۰۹-۰۲ تا ۱۴۰۵-۱۱-۰۱ قابل انتخاب است.");
        assert_eq!(window.message(Lang::En), "Appointments can be booked from 2026-11-23 to 2027-01-21.");
        assert_eq!(DomainError::NationalIdInvalid.message(Lang::En), "The national code is not valid.");
        assert_eq!(DomainError::NationalIdInvalid.message(Lang::Fa), "شماره ملی وارد شده معتبر نیست.");
    }

    /// [`DomainError::every`] holds one of each variant: the codes it yields are exactly
    /// the codes the exhaustive match of [`DomainError::code`] names, read from this file.
    #[test]
    fn every_error_is_listed() {
        let source = include_str!("error.rs");
        let from = source.find("pub fn code(&self)").expect("code()");
        let to = source.find("pub fn every()").expect("every()");
        let arms: std::collections::BTreeSet<&str> = source[from..to]
            .lines()
            .filter_map(|l| l.split("=> \"").nth(1))
            .map(|r| r.trim_end_matches("\","))
            .collect();
        let listed: Vec<&str> = DomainError::every().iter().map(DomainError::code).collect();
        let distinct: std::collections::BTreeSet<&str> = listed.iter().copied().collect();
        let missing: Vec<&&str> = arms.difference(&distinct).collect();
        let unknown: Vec<&&str> = distinct.difference(&arms).collect();
        assert!(missing.is_empty() && unknown.is_empty(), "not in every(): {missing:?}; not in code(): {unknown:?}");
        assert!(arms.len() > 90, "the walk reads the arms ({})", arms.len());
    }

    /// Every error speaks Persian (with Persian letters, never the generic «درخواست قابل
    /// انجام نیست.») and English, and its code is stable snake_case.
    #[test]
    fn every_error_has_its_own_persian_and_english_message() {
        for e in DomainError::every() {
            let (fa, en) = (e.message(Lang::Fa), e.message(Lang::En));
            assert!(fa.chars().filter(|c| ('\u{0621}'..='\u{06CC}').contains(c)).count() >= 3, "{e:?}: {fa}");
            assert_ne!(fa.trim(), "درخواست قابل انجام نیست.", "{e:?}");
            assert!(en.chars().filter(char::is_ascii_alphabetic).count() >= 3 && en.ends_with('.'), "{e:?}: {en}");
            assert_eq!(e.code(), e.to_string());
            assert!(e.code().chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{e:?}");
        }
    }

    #[test]
    fn codes_are_stable_snake_case() {
        for e in [
            DomainError::SlotFull,
            DomainError::IdentityMismatch,
            DomainError::Underage { min_age: 15 },
            DomainError::MobileNotOwned,
        ] {
            assert_eq!(e.code(), e.to_string());
            assert!(e.code().chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        }
    }
}
