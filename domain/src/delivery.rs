//! Delivering notifications (docs/domain/notifications.md): a queued message's states and what one attempt
//! to hand it to a provider leads to. The outbox worker asks; it never decides itself.
//!
//! ```text
//! queued ─┐                 ┌─> sent
//!         ├─> sending ──────┼─> failed_temporary ─(backoff)─> sending …
//! failed_temporary ┘        └─> failed_permanent (permanent error, or MAX_ATTEMPTS used)
//! ```
//! A `sending` row whose claim ran out (its worker died) is due again.

use chrono::{DateTime, Duration, NaiveDate, Timelike, Utc};

use crate::calendar::{tehran, tehran_date};

/// Attempts before a message that keeps failing temporarily is given up.
pub const MAX_ATTEMPTS: i32 = 8;

/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::minutes(60);

/// How long a worker owns the messages it claimed unless it renews the claim. A live
/// worker renews it every [`CLAIM_RENEW_EVERY`] while it sends, so a long batch keeps its
/// messages; a worker that died leaves them to the others within this time.
pub const CLAIM_LEASE: Duration = Duration::seconds(30);

/// How often a sending worker pushes its claim's end [`CLAIM_LEASE`] ahead again.
pub const CLAIM_RENEW_EVERY: Duration = Duration::seconds(5);

/// How long a message is worth delivering, by template: a one-time code or generated
/// credentials delivered late are useless or misleading, so once this has passed since
/// the message was queued it is given up instead of sent. `None`: no limit.
pub fn valid_for(template: &str) -> Option<Duration> {
    match template {
        // The code itself expires after 5 minutes.
        "efolder_reset_code" => Some(Duration::minutes(5)),
        // The citizen can ask for a reset code instead.
        "efolder_credentials" => Some(Duration::hours(24)),
        _ => None,
    }
}

/// Whether a message of `template` queued at `queued_at` may no longer be delivered.
pub fn expired(template: &str, queued_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    valid_for(template).is_some_and(|v| now >= queued_at + v)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Queued,
    Sending,
    Sent,
    FailedTemporary,
    FailedPermanent,
}

impl Status {
    pub const ALL: [Status; 5] =
        [Status::Queued, Status::Sending, Status::Sent, Status::FailedTemporary, Status::FailedPermanent];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Sending => "sending",
            Status::Sent => "sent",
            Status::FailedTemporary => "failed_temporary",
            Status::FailedPermanent => "failed_permanent",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Statuses a worker may pick up (once `next_attempt_at` has come).
    pub const DUE: [Status; 3] = [Status::Queued, Status::FailedTemporary, Status::Sending];
}

/// How one attempt went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Sent,
    /// Worth trying again (timeout, outage, 4xx from a mail server).
    Temporary,
    /// Will never succeed as it is (invalid recipient, rejected content, broken template).
    Permanent,
}

/// What the message becomes after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfterAttempt {
    pub status: Status,
    /// Attempts made so far, this one included.
    pub attempts: i32,
    /// When to try again (only for `failed_temporary`).
    pub retry_at: Option<DateTime<Utc>>,
}

/// The wait after the `attempts`-th failed attempt: 1, 2, 4 … minutes, at most [`MAX_BACKOFF`].
pub fn backoff(attempts: i32) -> Duration {
    crate::backoff::exponential(Duration::minutes(1), attempts.saturating_sub(1), MAX_BACKOFF)
}

/// The outcome of the attempt that follows `attempts_before` earlier ones.
pub fn after_attempt(attempts_before: i32, attempt: Attempt, now: DateTime<Utc>) -> AfterAttempt {
    let attempts = attempts_before.saturating_add(1);
    let (status, retry_at) = match attempt {
        Attempt::Sent => (Status::Sent, None),
        Attempt::Permanent => (Status::FailedPermanent, None),
        Attempt::Temporary if attempts >= MAX_ATTEMPTS => (Status::FailedPermanent, None),
        Attempt::Temporary => (Status::FailedTemporary, Some(now + backoff(attempts))),
    };
    AfterAttempt { status, attempts, retry_at }
}

/// Appointment reminders go out the evening before (issue 20), from this hour Tehran time…
pub const REMINDER_FROM_HOUR: u32 = 18;
/// …until this one, so nobody is woken by one late at night.
pub const REMINDER_UNTIL_HOUR: u32 = 23;

/// The appointment day whose reminders are due now — tomorrow, in Tehran, on the evening
/// before ([`REMINDER_FROM_HOUR`]–[`REMINDER_UNTIL_HOUR`]) — or `None` at other hours.
pub fn reminder_day(now: DateTime<Utc>) -> Option<NaiveDate> {
    let hour = now.with_timezone(&tehran()).hour();
    (REMINDER_FROM_HOUR..REMINDER_UNTIL_HOUR).contains(&hour).then(|| tehran_date(now) + Duration::days(1))
}

/// A card ready for delivery that has waited this many days uncollected gets one reminder.
pub const UNCOLLECTED_AFTER_DAYS: i64 = 30;

/// Whether reminders that can wait (an uncollected card) may be sent now: daytime in
/// Tehran, 09:00–21:00.
pub fn daytime(now: DateTime<Utc>) -> bool {
    (9..21).contains(&now.with_timezone(&tehran()).hour())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap()
    }

    /// A reset code is worth sending for its 5 minutes, generated credentials for a day;
    /// anything else never goes stale.
    #[test]
    fn one_time_messages_expire_after_their_validity() {
        assert_eq!(valid_for("efolder_reset_code"), Some(Duration::minutes(5)));
        assert_eq!(valid_for("efolder_credentials"), Some(Duration::hours(24)));
        assert_eq!(valid_for("registered"), None);
        let queued = now();
        let code = "efolder_reset_code";
        assert!(!expired(code, queued, queued + Duration::minutes(5) - Duration::seconds(1)));
        assert!(expired(code, queued, queued + Duration::minutes(5)), "at the end of its 5 minutes");
        assert!(!expired("efolder_credentials", queued, queued + Duration::hours(23)));
        assert!(expired("efolder_credentials", queued, queued + Duration::hours(24)));
        assert!(!expired("registered", queued, queued + Duration::days(365)));
    }

    #[test]
    fn backoff_doubles_from_one_minute_and_is_capped() {
        let minutes: Vec<i64> = (1..=9).map(|n| backoff(n).num_minutes()).collect();
        assert_eq!(minutes, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff(0), Duration::minutes(1));
        assert_eq!(backoff(i32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn temporary_failures_retry_until_the_last_attempt() {
        let first = after_attempt(0, Attempt::Temporary, now());
        assert_eq!(first.status, Status::FailedTemporary);
        assert_eq!(first.attempts, 1);
        assert_eq!(first.retry_at, Some(now() + Duration::minutes(1)));
        let seventh = after_attempt(6, Attempt::Temporary, now());
        assert_eq!((seventh.status, seventh.retry_at), (Status::FailedTemporary, Some(now() + MAX_BACKOFF)));
        let last = after_attempt(MAX_ATTEMPTS - 1, Attempt::Temporary, now());
        assert_eq!((last.status, last.attempts, last.retry_at), (Status::FailedPermanent, MAX_ATTEMPTS, None));
    }

    #[test]
    fn success_and_permanent_failures_are_final() {
        assert_eq!(after_attempt(3, Attempt::Sent, now()).status, Status::Sent);
        assert_eq!(after_attempt(0, Attempt::Permanent, now()).status, Status::FailedPermanent);
    }

    #[test]
    fn reminders_are_for_tomorrow_in_tehran_on_the_evening_before() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        let at = |h, m| crate::calendar::tehran_instant(day, h, m);
        assert_eq!(reminder_day(at(9, 30)), None);
        assert_eq!(reminder_day(at(17, 59)), None);
        assert_eq!(reminder_day(at(18, 0)), Some(day + Duration::days(1)));
        assert_eq!(reminder_day(at(22, 59)), Some(day + Duration::days(1)));
        assert_eq!(reminder_day(at(23, 0)), None);
        assert!(!daytime(at(8, 59)) && daytime(at(9, 0)) && daytime(at(20, 59)) && !daytime(at(21, 0)));
    }

    #[test]
    fn statuses_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("lost"), None);
    }
}
