//! Ports: the traits through which the rules reach outside systems (docs/architecture.md), and the
//! types they exchange. Every outcome keeps "no / mismatch" apart from "the service
//! did not answer", so an outage is never reported to a citizen as a refusal.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::JalaliDate;
use crate::ids::{Mobile, NationalId};
use crate::money::Rials;
use crate::person::{Gender, PersonName};

/// The outside system did not give a usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// Timed out, refused, 5xx, circuit open: the answer is unknown; try later.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// The service answered, but with something we cannot use (a protocol error).
    #[error("unexpected answer: {0}")]
    Protocol(String),
}

// ---------------------------------------------------------------- civil registry

/// What the civil registry (ثبت احوال) holds about a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryRecord {
    pub national_id: NationalId,
    /// The six-digit serial of the current birth certificate.
    pub serial: String,
    pub first_name: PersonName,
    pub last_name: PersonName,
    pub father_name: PersonName,
    pub mother_name: PersonName,
    pub gender: Gender,
    pub birth_date: JalaliDate,
    pub alive: bool,
    /// When the birth certificate (and so its serial) was last replaced.
    pub serial_changed_at: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait CivilRegistry: Send + Sync {
    /// The person with this national code; `Ok(None)` when the registry has no such person.
    async fn find(&self, id: &NationalId) -> Result<Option<RegistryRecord>, PortError>;
}

// ---------------------------------------------------------------- mobile ownership

/// Does this mobile belong to this national code?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ownership {
    Matched,
    NotMatched,
    /// The inquiry service did not answer; never shown to a user as "not your number".
    Unavailable,
}

#[async_trait]
pub trait MobileOwnershipCheck: Send + Sync {
    async fn check(&self, id: &NationalId, mobile: &Mobile) -> Ownership;
}

// ---------------------------------------------------------------- messaging

/// Why a message could not be handed over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth retrying later (timeout, 5xx, connection refused, rate limited).
    #[error("temporary failure: {0}")]
    Temporary(String),
    /// Will never succeed (invalid recipient, rejected content).
    #[error("permanent failure: {0}")]
    Permanent(String),
}

#[async_trait]
pub trait SmsSender: Send + Sync {
    /// Hands a text to the provider; returns the provider's message id.
    async fn send(&self, to: &Mobile, text: &str) -> Result<String, SendError>;

    /// Like [`send`](Self::send), with the sender's own id of the message: a provider that
    /// de-duplicates by it (Kavenegar's `localid`) delivers one text however often the
    /// same message is handed over (a worker died after a send, before recording it).
    async fn send_once(&self, to: &Mobile, text: &str, local_id: &str) -> Result<String, SendError> {
        let _ = local_id;
        self.send(to, text).await
    }

    /// Whether the provider is known to be down right now (an open circuit breaker, a
    /// sandbox outage), so a caller that must reach the citizen can choose another way.
    fn marked_down(&self) -> bool {
        false
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailMessage {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    pub attachments: Vec<Attachment>,
}

#[async_trait]
pub trait EmailSender: Send + Sync {
    /// Hands a message to the mail server; returns its message id.
    async fn send(&self, message: &EmailMessage) -> Result<String, SendError>;
}

// ---------------------------------------------------------------- payment gateways

/// What we ask a bank to collect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentOrder {
    /// Our unique, numeric order id (banks require digits).
    pub order_id: i64,
    pub amount: Rials,
    /// Where the bank sends the citizen's browser back to.
    pub callback_url: String,
    pub description: String,
}

/// How to send the browser to the bank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayRedirect {
    /// The bank's token for this payment, needed to verify it.
    pub token: String,
    /// The page the citizen's browser opens.
    pub url: String,
}

/// What a bank's callback claims. Never trusted: only [`PaymentGateway::verify`] is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackData {
    pub order_id: i64,
    pub token: Option<String>,
    /// The bank's claim that the citizen completed the payment.
    pub claims_success: bool,
    /// The bank's status code as sent.
    pub status_code: String,
}

/// Why a bank says a payment did not happen. Each adapter maps its own codes to it; the
/// rules above the port never read a bank's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotPaidReason {
    /// The citizen cancelled on the bank's page.
    Cancelled,
    /// Its time ran out before it was paid.
    Expired,
    /// Declined, or any other "not paid".
    Declined,
}

/// The server-to-server verification's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VerifyOutcome {
    /// The bank confirms the money for this order and amount.
    Verified { reference: String, amount: Rials, card_mask: Option<String> },
    /// The bank says the payment did not happen; `code` is the bank's own, kept for the
    /// audit log.
    NotPaid { reason: NotPaidReason, code: String },
    /// The bank debited the card but will not settle it to us (it will be reversed).
    DebitedNotSettled { code: String },
    /// The bank answered about another order: whatever it took for this one is given back.
    OtherOrder,
}

#[async_trait]
pub trait PaymentGateway: Send + Sync {
    /// The gateway's id in URLs and configuration (`sandbox`, `sadad`, `parsian`).
    fn name(&self) -> &'static str;
    /// Registers the order with the bank and returns where to send the browser.
    async fn request(&self, order: &PaymentOrder) -> Result<GatewayRedirect, PortError>;
    /// Reads the fields the bank posted (or put in the query) to the callback.
    fn parse_callback(&self, fields: &[(String, String)]) -> Result<CallbackData, PortError>;
    /// Asks the bank, server to server, whether this payment really happened.
    /// `PortError::Unavailable` means the outcome is unknown — never treat it as failed.
    async fn verify(&self, order: &PaymentOrder, token: &str) -> Result<VerifyOutcome, PortError>;
    /// Asks the bank to give the money back (amount or order mismatch, duplicate payment).
    async fn reverse(&self, order: &PaymentOrder, token: &str) -> Result<(), PortError>;
    /// What a code this bank gave for a payment that was not paid means (a repeated
    /// callback is answered from the stored payment and its stored code).
    fn not_paid_reason(&self, code: &str) -> NotPaidReason {
        let _ = code;
        NotPaidReason::Declined
    }
}

// ---------------------------------------------------------------- clock and randomness

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

pub trait RandomSource: Send + Sync {
    fn next_u64(&self) -> u64;
    fn fill_bytes(&self, buf: &mut [u8]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::task::{Context, Poll, Waker};

    /// A provider that implements only `send`: what the defaults give every such adapter.
    struct Plain(Mutex<Vec<String>>);

    #[async_trait]
    impl SmsSender for Plain {
        async fn send(&self, to: &Mobile, text: &str) -> Result<String, SendError> {
            self.0.lock().unwrap().push(format!("{}:{text}", to.as_str()));
            Ok("id-7".into())
        }
    }

    /// Polls a future that never waits (the sender above answers at once).
    fn ready<T>(f: impl std::future::Future<Output = T>) -> T {
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("the test sender never waits"),
        }
    }

    /// A provider without de-duplication still delivers through `send_once` (the local id
    /// is simply not used), and is never reported down.
    #[test]
    fn the_sms_defaults_send_through_send_and_are_never_down() {
        let sms = Plain(Mutex::new(Vec::new()));
        let to = Mobile::parse("09145128136").unwrap();
        assert_eq!(ready(sms.send_once(&to, "سلام", "local-1")), Ok("id-7".to_owned()));
        assert_eq!(*sms.0.lock().unwrap(), ["09145128136:سلام"]);
        assert!(!sms.marked_down());
    }
}
