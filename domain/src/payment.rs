//! One payment's life with its bank, and a withdrawn fee's refund (docs/domain/payments.md,
//! "A payment's life" and "Withdrawal and refunds"). The statuses are stored as their
//! snake_case text; [`transition`] is the one place that knows which moves are allowed.
//!
//! ```text
//! created ─┬─> redirected ─┬─> callback_received ─┬─> verified ──> refund_requested ──> refunded
//!          │               │   (and unknown) ─────┼─> failed | expired
//!          └─> failed      │                      ├─> unknown (checked again later)
//!                          └──────────────────────┴─> refund_pending ─┬─> refunded
//!                                                                     └─> refund_failed
//! ```
//! `created`, `redirected`, `callback_received` and `unknown` are *open*: they still wait for
//! the bank, and every settling event may apply to any of them (the reconciliation job
//! settles a payment whose callback never came).

use std::fmt;

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::error::DomainError;

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The stored (and wire) text.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some($name::$variant),)+ _ => None }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        /// Stored text back to the value: the row boundary's one conversion.
        impl TryFrom<String> for $name {
            type Error = UnknownStatus;
            fn try_from(s: String) -> Result<Self, UnknownStatus> {
                Self::parse(&s).ok_or(UnknownStatus { kind: stringify!($name), text: s })
            }
        }
        /// Compares with stored text.
        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
        /// The value as stored text.
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.as_str().to_owned()
            }
        }
    };
}

/// A stored status the code does not know (a row written by a newer version, or by hand).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {text:?}")]
pub struct UnknownStatus {
    pub kind: &'static str,
    pub text: String,
}

text_enum!(
    /// Where one payment is with its bank.
    PaymentStatus {
        /// The row is written; the bank was not asked yet.
        Created => "created",
        /// The bank gave a token; the browser was sent there.
        Redirected => "redirected",
        /// The browser came back; the bank is being asked.
        CallbackReceived => "callback_received",
        /// The bank confirmed the money for this order and amount.
        Verified => "verified",
        /// Not paid (cancelled, declined), or the bank refused the request.
        Failed => "failed",
        /// Never paid in time.
        Expired => "expired",
        /// The bank gave no usable answer yet; checked again later.
        Unknown => "unknown",
        /// Money to give back (a duplicate, a mismatch, or debited but not settled).
        RefundPending => "refund_pending",
        /// The money is back with the citizen.
        Refunded => "refunded",
        /// The bank did not confirm the reversal after every retry: an administrator's case.
        RefundFailed => "refund_failed",
        /// A verified fee the citizen withdrew: reversed on its day or transferred.
        RefundRequested => "refund_requested",
    }
);

text_enum!(
    /// Where a withdrawn fee's refund is.
    RefundStatus {
        /// The gateway is asked to reverse the payment (on the payment's own day).
        Reversing => "reversing",
        /// Waiting for an administrator's transfer to the Sheba number.
        Requested => "requested",
        /// The money is back.
        Settled => "settled",
    }
);

text_enum!(
    /// How a refund went back.
    RefundMethod {
        /// The gateway reversed the payment.
        Reversal => "reversal",
        /// An administrator transferred it to the Sheba number.
        Transfer => "transfer",
    }
);

impl PaymentStatus {
    /// Statuses that still wait for an answer from the bank.
    pub const OPEN: [PaymentStatus; 4] =
        [PaymentStatus::Created, PaymentStatus::Redirected, PaymentStatus::CallbackReceived, PaymentStatus::Unknown];

    pub fn is_open(self) -> bool {
        Self::OPEN.contains(&self)
    }
}

/// What happens to a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentEvent {
    /// The bank gave a token and the browser is sent to it.
    Redirected,
    /// The bank refused the request or did not answer it.
    RequestFailed,
    /// The browser came back from the bank.
    CallbackReceived,
    /// The verification gave no usable answer.
    NoAnswer,
    /// Paid, the same amount, and the application took it.
    Verified,
    /// Not paid: cancelled or declined.
    NotPaid,
    /// Not paid in time (or never sent to the bank before its time ran out).
    Expired,
    /// Money that must go back: debited but not settled, a duplicate, a mismatch.
    GiveBack,
    /// The bank confirmed our reversal, or an administrator recorded a transfer.
    Refunded,
    /// The reversal was not confirmed after every retry.
    ReversalAbandoned,
    /// The citizen withdrew and the verified fee goes back.
    Withdrawn,
}

impl PaymentEvent {
    pub const ALL: [PaymentEvent; 11] = [
        PaymentEvent::Redirected,
        PaymentEvent::RequestFailed,
        PaymentEvent::CallbackReceived,
        PaymentEvent::NoAnswer,
        PaymentEvent::Verified,
        PaymentEvent::NotPaid,
        PaymentEvent::Expired,
        PaymentEvent::GiveBack,
        PaymentEvent::Refunded,
        PaymentEvent::ReversalAbandoned,
        PaymentEvent::Withdrawn,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PaymentEvent::Redirected => "redirected",
            PaymentEvent::RequestFailed => "request_failed",
            PaymentEvent::CallbackReceived => "callback_received",
            PaymentEvent::NoAnswer => "no_answer",
            PaymentEvent::Verified => "verified",
            PaymentEvent::NotPaid => "not_paid",
            PaymentEvent::Expired => "expired",
            PaymentEvent::GiveBack => "give_back",
            PaymentEvent::Refunded => "refunded",
            PaymentEvent::ReversalAbandoned => "reversal_abandoned",
            PaymentEvent::Withdrawn => "withdrawn",
        }
    }
}

/// The one place that knows how an event moves a payment; a move the life above does not
/// have is `invalid_transition`.
pub fn transition(from: PaymentStatus, event: PaymentEvent) -> Result<PaymentStatus, DomainError> {
    use PaymentEvent as E;
    use PaymentStatus as S;
    let to = match (from, event) {
        (S::Created, E::Redirected) => S::Redirected,
        (S::Created, E::RequestFailed) => S::Failed,
        (S::Created | S::Redirected | S::Unknown, E::CallbackReceived) => S::CallbackReceived,
        (s, E::NoAnswer) if s.is_open() => S::Unknown,
        (s, E::Verified) if s.is_open() => S::Verified,
        (s, E::NotPaid) if s.is_open() => S::Failed,
        (s, E::Expired) if s.is_open() => S::Expired,
        (s, E::GiveBack) if s.is_open() => S::RefundPending,
        (S::RefundPending | S::RefundRequested, E::Refunded) => S::Refunded,
        (S::RefundPending, E::ReversalAbandoned) => S::RefundFailed,
        (S::Verified, E::Withdrawn) => S::RefundRequested,
        _ => return Err(DomainError::InvalidTransition { from: from.as_str(), event: event.name() }),
    };
    Ok(to)
}

/// When a payment whose verification got no usable answer is checked again, after
/// `attempts` such answers (this one included): 2, 4, 8 … minutes, at most 64 apart.
pub fn recheck_after(attempts: i32) -> Duration {
    crate::backoff::exponential(Duration::minutes(1), attempts, Duration::minutes(64))
}

/// How long after `failures` unconfirmed reversals the next one is tried: doubling from
/// `base_minutes` (`payments.reversal_retry_minutes`), at most six hours apart.
pub fn reversal_retry_after(base_minutes: u32, failures: i32) -> Duration {
    crate::backoff::exponential(
        Duration::minutes(i64::from(base_minutes.max(1))),
        failures.saturating_sub(1),
        Duration::hours(6),
    )
}

#[cfg(test)]
mod tests {
    use super::PaymentEvent as E;
    use super::PaymentStatus as S;
    use super::*;

    /// Every allowed move, written out once; every other pair must be refused.
    const ALLOWED: &[(S, E, S)] = &[
        (S::Created, E::Redirected, S::Redirected),
        (S::Created, E::RequestFailed, S::Failed),
        (S::Created, E::CallbackReceived, S::CallbackReceived),
        (S::Redirected, E::CallbackReceived, S::CallbackReceived),
        (S::Unknown, E::CallbackReceived, S::CallbackReceived),
        (S::Created, E::NoAnswer, S::Unknown),
        (S::Redirected, E::NoAnswer, S::Unknown),
        (S::CallbackReceived, E::NoAnswer, S::Unknown),
        (S::Unknown, E::NoAnswer, S::Unknown),
        (S::Created, E::Verified, S::Verified),
        (S::Redirected, E::Verified, S::Verified),
        (S::CallbackReceived, E::Verified, S::Verified),
        (S::Unknown, E::Verified, S::Verified),
        (S::Created, E::NotPaid, S::Failed),
        (S::Redirected, E::NotPaid, S::Failed),
        (S::CallbackReceived, E::NotPaid, S::Failed),
        (S::Unknown, E::NotPaid, S::Failed),
        (S::Created, E::Expired, S::Expired),
        (S::Redirected, E::Expired, S::Expired),
        (S::CallbackReceived, E::Expired, S::Expired),
        (S::Unknown, E::Expired, S::Expired),
        (S::Created, E::GiveBack, S::RefundPending),
        (S::Redirected, E::GiveBack, S::RefundPending),
        (S::CallbackReceived, E::GiveBack, S::RefundPending),
        (S::Unknown, E::GiveBack, S::RefundPending),
        (S::RefundPending, E::Refunded, S::Refunded),
        (S::RefundRequested, E::Refunded, S::Refunded),
        (S::RefundPending, E::ReversalAbandoned, S::RefundFailed),
        (S::Verified, E::Withdrawn, S::RefundRequested),
    ];

    #[test]
    fn every_allowed_transition() {
        for &(from, event, to) in ALLOWED {
            assert_eq!(transition(from, event), Ok(to), "{from} --{}-->", event.name());
        }
    }

    #[test]
    fn every_other_transition_is_refused() {
        let mut refused = 0;
        for &from in S::ALL {
            for event in E::ALL {
                if ALLOWED.iter().any(|&(f, e, _)| f == from && e == event) {
                    continue;
                }
                assert_eq!(
                    transition(from, event),
                    Err(DomainError::InvalidTransition { from: from.as_str(), event: event.name() }),
                    "{from} --{}--> must be refused",
                    event.name()
                );
                refused += 1;
            }
        }
        assert_eq!(refused + ALLOWED.len(), S::ALL.len() * E::ALL.len());
    }

    #[test]
    fn settled_payments_never_move_back_to_open() {
        for &from in S::ALL.iter().filter(|s| !s.is_open()) {
            for event in E::ALL {
                if let Ok(to) = transition(from, event) {
                    assert!(!to.is_open(), "{from} --{}--> {to}", event.name());
                }
            }
        }
    }

    #[test]
    fn open_statuses() {
        let open: Vec<_> = S::ALL.iter().copied().filter(|s| s.is_open()).collect();
        assert_eq!(open, [S::Created, S::Redirected, S::CallbackReceived, S::Unknown]);
    }

    #[test]
    fn waits() {
        let minutes = |d: Duration| d.num_minutes();
        assert_eq!((1..=8).map(|n| minutes(recheck_after(n))).collect::<Vec<_>>(), [2, 4, 8, 16, 32, 64, 64, 64]);
        assert_eq!(
            (0..=7).map(|n| minutes(reversal_retry_after(10, n))).collect::<Vec<_>>(),
            [10, 10, 20, 40, 80, 160, 320, 360]
        );
        assert_eq!(minutes(reversal_retry_after(0, 1)), 1);
        assert_eq!(minutes(reversal_retry_after(10, i32::MAX)), 360);
    }

    #[test]
    fn text_round_trips() {
        for &s in S::ALL {
            assert_eq!(S::try_from(String::from(s)), Ok(s));
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::Value::from(s.as_str()));
        }
        for &s in RefundStatus::ALL {
            assert_eq!(RefundStatus::try_from(String::from(s)), Ok(s));
        }
        for &m in RefundMethod::ALL {
            assert_eq!(RefundMethod::try_from(String::from(m)), Ok(m));
        }
        assert_eq!(
            S::try_from("reversed".to_owned()),
            Err(UnknownStatus { kind: "PaymentStatus", text: "reversed".into() })
        );
    }

    /// A refused move names the status and the event as logs and audits show them.
    #[test]
    fn a_refused_move_names_its_status_and_event() {
        assert_eq!(
            transition(PaymentStatus::Refunded, PaymentEvent::Redirected),
            Err(DomainError::InvalidTransition { from: "refunded", event: "redirected" })
        );
        let names: Vec<&str> = PaymentEvent::ALL.iter().map(|e| e.name()).collect();
        assert_eq!(
            names,
            [
                "redirected",
                "request_failed",
                "callback_received",
                "no_answer",
                "verified",
                "not_paid",
                "expired",
                "give_back",
                "refunded",
                "reversal_abandoned",
                "withdrawn"
            ]
        );
    }
}
