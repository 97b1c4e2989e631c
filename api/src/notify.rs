//! Queuing citizen notifications in the outbox, inside the caller's transaction
//! (docs/domain/notifications.md). Rendering ([`templates`]) and delivery belong to the outbox worker.

pub mod templates;

use chrono::{DateTime, Utc};
use domain::record_ids::ApplicationId;
use persistence::applications::ApplicationRow;
use persistence::outbox::{self, NewMessage};
use persistence::{DbConn, DbError, Pii, PiiKind};

/// The notifications a citizen gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    Registration,
    PaymentResult,
    Booking,
    Reminder,
    NoShow,
    IdentityResult,
    CardReady,
    /// The card has waited 30 days at its delivery office (issue 20).
    CardUncollected,
    TrackingCodeRecovery,
    /// E-folder: the generated username and password (docs/domain/notifications.md).
    EfolderCredentials,
    /// E-folder: a one-time password-reset code.
    EfolderResetCode,
    /// The office will not receive the citizen on their day (closure, holiday, out of
    /// service): no ban, the fee kept, a seat offered (issue 19).
    OfficeClosed,
    /// The citizen withdrew; a paid fee is refunded (issue 19).
    Withdrawal,
    /// A withdrawn fee is back with the citizen.
    RefundSettled,
    /// A home-visit office scheduled the visit (issue 19): date, shift, office.
    HomeVisitScheduled,
}

impl Template {
    pub const ALL: [Template; 15] = [
        Template::Registration,
        Template::PaymentResult,
        Template::Booking,
        Template::Reminder,
        Template::NoShow,
        Template::IdentityResult,
        Template::CardReady,
        Template::CardUncollected,
        Template::TrackingCodeRecovery,
        Template::EfolderCredentials,
        Template::EfolderResetCode,
        Template::OfficeClosed,
        Template::Withdrawal,
        Template::RefundSettled,
        Template::HomeVisitScheduled,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Template::Registration => "registration",
            Template::PaymentResult => "payment_result",
            Template::Booking => "booking",
            Template::Reminder => "reminder",
            Template::NoShow => "no_show",
            Template::IdentityResult => "identity_result",
            Template::CardReady => "card_ready",
            Template::CardUncollected => "card_uncollected",
            Template::TrackingCodeRecovery => "tracking_code_recovery",
            Template::EfolderCredentials => "efolder_credentials",
            Template::EfolderResetCode => "efolder_reset_code",
            Template::OfficeClosed => "office_closed",
            Template::Withdrawal => "withdrawal",
            Template::RefundSettled => "refund_settled",
            Template::HomeVisitScheduled => "home_visit_scheduled",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// Queues an SMS to the application's mobile. With a `dedupe` key, a second identical
/// notification is not queued (exactly one, however many requests race).
pub fn sms_to_applicant(
    conn: &mut DbConn,
    pii: &Pii,
    row: &ApplicationRow,
    template: Template,
    params: serde_json::Value,
    dedupe: Option<String>,
    now: DateTime<Utc>,
) -> Result<bool, DbError> {
    outbox::enqueue_row(conn, &sms_message_to_applicant(pii, row, template, params, dedupe, now)?)
}

/// The SMS [`sms_to_applicant`] queues, as a row to write together with the application
/// (`persistence::app_write`).
pub fn sms_message_to_applicant(
    pii: &Pii,
    row: &ApplicationRow,
    template: Template,
    params: serde_json::Value,
    dedupe: Option<String>,
    now: DateTime<Utc>,
) -> Result<outbox::OutboxRow, DbError> {
    let mobile = pii.open(PiiKind::Mobile, &row.mobile_enc)?;
    Ok(outbox::message(pii, sms(&mobile, Some(&row.id), template, params, dedupe), now))
}

/// An SMS to a mobile, optionally tied to an application.
fn sms<'a>(
    mobile: &'a str,
    application_id: Option<&'a ApplicationId>,
    template: Template,
    params: serde_json::Value,
    dedupe: Option<String>,
) -> NewMessage<'a> {
    NewMessage {
        channel: "sms",
        recipient: mobile,
        recipient_hint: domain::mask::mobile(mobile),
        template: template.as_str(),
        params,
        lang: "fa",
        application_id,
        dedupe_key: dedupe,
    }
}

/// Queues an SMS to a mobile number (`09…`), optionally tied to an application.
#[expect(clippy::too_many_arguments, reason = "the message and its routing, all required")]
pub fn sms_to(
    conn: &mut DbConn,
    pii: &Pii,
    mobile: &str,
    application_id: Option<&ApplicationId>,
    template: Template,
    params: serde_json::Value,
    dedupe: Option<String>,
    now: DateTime<Utc>,
) -> Result<bool, DbError> {
    outbox::enqueue(conn, pii, sms(mobile, application_id, template, params, dedupe), now)
}
